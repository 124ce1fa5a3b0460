/// Builders of the exact bytes the gateway writes itself. Output is compact JSON with
/// members in JSON-RPC 2.0 order (`jsonrpc`, `id`, then `method`/`params` or
/// `result`/`error`), as Deribit writes them.
public enum JSONRPCWire {
    /// The id of a response to a message whose id could not be read (JSON-RPC 2.0 §5).
    public static let nullID: [UInt8] = Array("null".utf8)

    /// Deribit's heartbeat probe (SPEC §6.2).
    public static let heartbeatTestRequest: [UInt8] =
        Array(#"{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}"#.utf8)

    private static let header: [UInt8] = Array(#"{"jsonrpc":"2.0","#.utf8)

    /// `{"jsonrpc":"2.0","id":<id>,"result":<resultJSON>[,"<key>":<value>…]}`. `id` is raw
    /// JSON (the client's own id bytes); `extra` carries members such as Deribit's `usIn`.
    public static func result(
        id: some Collection<UInt8>, resultJSON: some Collection<UInt8>, extra: [(String, [UInt8])] = []
    ) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(32 + id.count + resultJSON.count)
        out.append(contentsOf: header)
        out.append(contentsOf: #""id":"#.utf8)
        out.append(contentsOf: id)
        out.append(contentsOf: #","result":"#.utf8)
        out.append(contentsOf: resultJSON)
        for (key, value) in extra {
            out.append(ASCII.comma)
            appendQuoted(key, to: &out)
            out.append(ASCII.colon)
            out.append(contentsOf: value)
        }
        out.append(ASCII.closeBrace)
        return out
    }

    /// `{"jsonrpc":"2.0","id":<id>,"error":{"code":<code>,"message":"<message>"[,"data":<data>]}}`.
    public static func error(
        id: some Collection<UInt8>, code: Int, message: String, data: [UInt8]? = nil
    ) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(64 + id.count + message.utf8.count + (data?.count ?? 0))
        out.append(contentsOf: header)
        out.append(contentsOf: #""id":"#.utf8)
        out.append(contentsOf: id)
        out.append(contentsOf: #","error":{"code":"#.utf8)
        if code < 0 { out.append(ASCII.minus) }
        JSONRPCSplice.appendDecimal(UInt64(code.magnitude), to: &out)
        out.append(contentsOf: #","message":"#.utf8)
        appendQuoted(message, to: &out)
        if let data {
            out.append(contentsOf: #","data":"#.utf8)
            out.append(contentsOf: data)
        }
        out.append(contentsOf: "}}".utf8)
        return out
    }

    /// `{"jsonrpc":"2.0","method":"<method>","params":<paramsJSON>}`.
    public static func notification(method: String, paramsJSON: some Collection<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(48 + method.utf8.count + paramsJSON.count)
        out.append(contentsOf: header)
        out.append(contentsOf: #""method":"#.utf8)
        appendQuoted(method, to: &out)
        out.append(contentsOf: #","params":"#.utf8)
        out.append(contentsOf: paramsJSON)
        out.append(ASCII.closeBrace)
        return out
    }

    /// `{"jsonrpc":"2.0","id":<id>,"method":"<method>"[,"params":<paramsJSON>]}`.
    public static func request(id: UInt64, method: String, paramsJSON: [UInt8]?) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(64 + method.utf8.count + (paramsJSON?.count ?? 0))
        out.append(contentsOf: header)
        out.append(contentsOf: #""id":"#.utf8)
        JSONRPCSplice.appendDecimal(id, to: &out)
        out.append(contentsOf: #","method":"#.utf8)
        appendQuoted(method, to: &out)
        if let paramsJSON {
            out.append(contentsOf: #","params":"#.utf8)
            out.append(contentsOf: paramsJSON)
        }
        out.append(ASCII.closeBrace)
        return out
    }

    /// `s` as a JSON string with its quotes. RFC 8259 §7: `"` and `\` are escaped with a
    /// backslash, control characters as `\u00XX`; everything else, `/` and non-ASCII
    /// included, is written as UTF-8.
    public static func quoted(_ s: String) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(s.utf8.count + 2)
        appendQuoted(s, to: &out)
        return out
    }

    public static func appendQuoted(_ s: String, to out: inout [UInt8]) {
        out.append(ASCII.quote)
        for b in s.utf8 {
            switch b {
            case ASCII.quote, ASCII.backslash:
                out.append(ASCII.backslash)
                out.append(b)
            case 0x00..<0x20:
                out.append(contentsOf: #"\u00"#.utf8)
                out.append(hexDigit(b >> 4))
                out.append(hexDigit(b & 0x0F))
            default:
                out.append(b)
            }
        }
        out.append(ASCII.quote)
    }

    @inline(__always) private static func hexDigit(_ v: UInt8) -> UInt8 {
        v < 10 ? ASCII.zero + v : 0x61 + v - 10
    }
}
