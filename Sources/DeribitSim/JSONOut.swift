// Hand-written JSON output for the simulator. Notifications go out at 100k+ a second, so they are
// written straight into a byte buffer; no Foundation encoder on this path.

/// A decimal with four fractional digits, stored as an integer (price 65000.5 = 650_005_000).
/// Deribit prices and amounts are decimal; an integer representation makes book levels exact keys.
struct Fixed: Hashable, Comparable, Sendable {
    static let scale: Int64 = 10_000
    var raw: Int64
    init(raw: Int64) { self.raw = raw }
    init(_ value: Double) { raw = Int64((value * Double(Fixed.scale)).rounded()) }
    init(units: Int64) { raw = units * Fixed.scale }
    static let zero = Fixed(raw: 0)
    var double: Double { Double(raw) / Double(Fixed.scale) }
    static func < (a: Fixed, b: Fixed) -> Bool { a.raw < b.raw }
    static func + (a: Fixed, b: Fixed) -> Fixed { Fixed(raw: a.raw + b.raw) }
    static func - (a: Fixed, b: Fixed) -> Fixed { Fixed(raw: a.raw - b.raw) }
    static func * (a: Fixed, n: Int64) -> Fixed { Fixed(raw: a.raw * n) }
}

/// A JSON value for responses and notifications. `raw` splices bytes that are already JSON
/// (a request id exactly as the client sent it, data injected through `publish`).
indirect enum J {
    case null
    case bool(Bool)
    case int(Int64)
    case fixed(Fixed)
    case double(Double)
    case string(String)
    case array([J])
    case object([(String, J)])
    case raw([UInt8])

    static func num(_ v: Int) -> J { .int(Int64(v)) }
    static func num(_ v: UInt64) -> J { .int(Int64(v)) }
}

struct JSONOut {
    var bytes: [UInt8] = []

    init(capacity: Int = 256) { bytes.reserveCapacity(capacity) }

    mutating func ascii(_ s: StaticString) {
        s.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    mutating func write(_ v: J) {
        switch v {
        case .null: ascii("null")
        case .bool(let b): if b { ascii("true") } else { ascii("false") }
        case .int(let i): int(i)
        case .fixed(let f): fixed(f)
        case .double(let d): double(d)
        case .string(let s): string(s)
        case .raw(let r): bytes.append(contentsOf: r)
        case .array(let items):
            bytes.append(UInt8(ascii: "["))
            for (i, item) in items.enumerated() {
                if i > 0 { bytes.append(UInt8(ascii: ",")) }
                write(item)
            }
            bytes.append(UInt8(ascii: "]"))
        case .object(let members):
            bytes.append(UInt8(ascii: "{"))
            for (i, (k, item)) in members.enumerated() {
                if i > 0 { bytes.append(UInt8(ascii: ",")) }
                string(k)
                bytes.append(UInt8(ascii: ":"))
                write(item)
            }
            bytes.append(UInt8(ascii: "}"))
        }
    }

    mutating func int(_ value: Int64) {
        if value == 0 { bytes.append(UInt8(ascii: "0")); return }
        var v = value.magnitude
        if value < 0 { bytes.append(UInt8(ascii: "-")) }
        var tmp: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                  UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var n = 0
        withUnsafeMutableBytes(of: &tmp) { buf in
            while v > 0 { buf[n] = UInt8(truncatingIfNeeded: v % 10) + 48; v /= 10; n += 1 }
            for i in stride(from: n - 1, through: 0, by: -1) { bytes.append(buf[i]) }
        }
    }

    /// Shortest decimal: 65000.5, 10, 0.0125.
    mutating func fixed(_ f: Fixed) {
        var r = f.raw
        if r < 0 { bytes.append(UInt8(ascii: "-")); r = -r }
        int(r / Fixed.scale)
        var frac = r % Fixed.scale
        guard frac != 0 else { return }
        bytes.append(UInt8(ascii: "."))
        var div = Fixed.scale / 10
        while frac != 0 {
            bytes.append(UInt8(truncatingIfNeeded: frac / div) + 48)
            frac %= div
            div /= 10
        }
    }

    mutating func double(_ d: Double) {
        if d.isFinite, d == d.rounded(), abs(d) < 1e15 { int(Int64(d)); return }
        if !d.isFinite { ascii("null"); return }
        bytes.append(contentsOf: Array("\(d)".utf8))
    }

    /// RFC 8259 §7: quote, backslash and control characters are escaped.
    mutating func string(_ s: String) {
        bytes.append(UInt8(ascii: "\""))
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "\""): ascii("\\\"")
            case UInt8(ascii: "\\"): ascii("\\\\")
            case 0x0A: ascii("\\n")
            case 0x0D: ascii("\\r")
            case 0x09: ascii("\\t")
            case 0..<0x20:
                ascii("\\u00")
                let hex: [UInt8] = Array("0123456789abcdef".utf8)
                bytes.append(hex[Int(b >> 4)]); bytes.append(hex[Int(b & 15)])
            default: bytes.append(b)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}

extension J {
    var encoded: [UInt8] { var o = JSONOut(); o.write(self); return o.bytes }
}
