import JSONRPC

/// A JSON value the gateway writes itself: error `data`, local results, /health.
///
/// Every string goes through `JSONRPCWire.appendQuoted`, so a method name or a client's text
/// can never break the document or add members to it.
package indirect enum JSONValue: Equatable, Sendable, ExpressibleByStringLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral
{
    case string(String)
    case int(Int64)
    case uint(UInt64)
    case double(Double, decimals: Int)
    case bool(Bool)
    case null
    case array([JSONValue])
    case object([(String, JSONValue)])
    /// Bytes that are JSON already (a value taken verbatim from a valid upstream message).
    case raw([UInt8])

    package init(stringLiteral s: String) { self = .string(s) }
    package init(integerLiteral i: Int) { self = .int(Int64(i)) }
    package init(booleanLiteral b: Bool) { self = .bool(b) }
    package init(arrayLiteral elements: JSONValue...) { self = .array(elements) }

    package static func strings(_ items: [String]) -> JSONValue { .array(items.map { .string($0) }) }

    package static func == (a: JSONValue, b: JSONValue) -> Bool { a.bytes == b.bytes }

    package var bytes: [UInt8] {
        var out: [UInt8] = []
        write(to: &out)
        return out
    }

    package var text: String { String(decoding: bytes, as: UTF8.self) }

    package func write(to out: inout [UInt8]) {
        switch self {
        case .string(let s): JSONRPCWire.appendQuoted(s, to: &out)
        case .int(let i): out.append(contentsOf: String(i).utf8)
        case .uint(let u): out.append(contentsOf: String(u).utf8)
        case .double(let d, let decimals):
            guard d.isFinite else { out.append(contentsOf: "null".utf8); return }
            out.append(contentsOf: Self.fixed(d, decimals: decimals).utf8)
        case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case .null: out.append(contentsOf: "null".utf8)
        case .raw(let bytes): out.append(contentsOf: bytes)
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (k, item) in items.enumerated() {
                if k > 0 { out.append(UInt8(ascii: ",")) }
                item.write(to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            for (k, (name, value)) in members.enumerated() {
                if k > 0 { out.append(UInt8(ascii: ",")) }
                JSONRPCWire.appendQuoted(name, to: &out)
                out.append(UInt8(ascii: ":"))
                value.write(to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    /// `d` with a fixed number of decimals, without Foundation's `String(format:)`.
    static func fixed(_ d: Double, decimals: Int) -> String {
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let scaled = (abs(d) * scale).rounded()
        guard scaled < 9.0e18 else { return String(d) }
        let n = UInt64(scaled)
        let whole = n / UInt64(scale)
        let sign = d < 0 && n > 0 ? "-" : ""
        guard decimals > 0 else { return sign + String(whole) }
        var frac = String(n % UInt64(scale))
        while frac.count < decimals { frac = "0" + frac }
        return sign + String(whole) + "." + frac
    }
}
