/// `application/x-www-form-urlencoded` query strings (WHATWG URL §5.1).
public enum HTTPQuery {
    /// `a=1&b=x%20y&c&d=` → `[(a, 1), (b, "x y"), (c, ""), (d, "")]`, in order.
    /// `+` is a space; `%XX` is a byte; an invalid escape (`%zz`, a trailing `%`)
    /// is kept as written. The decoded bytes are read as UTF-8, invalid sequences
    /// becoming U+FFFD. Empty pieces (`a=1&&b=2`) are skipped.
    public static func parse(_ query: String) -> [(name: String, value: String)] {
        query.utf8.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true).map { piece in
            if let equals = piece.firstIndex(of: UInt8(ascii: "=")) {
                return (
                    decode(piece[..<equals], plusAsSpace: true),
                    decode(piece[piece.index(after: equals)...], plusAsSpace: true)
                )
            }
            return (decode(piece, plusAsSpace: true), "")
        }
    }

    /// As `parse`, but nil when a name or value decodes to bytes that are not valid UTF-8:
    /// for callers that must not pass on altered text (the gateway's upstream frames).
    public static func parseValidUTF8(_ query: String) -> [(name: String, value: String)]? {
        var out: [(name: String, value: String)] = []
        for piece in query.utf8.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            let name: [UInt8]
            let value: [UInt8]
            if let equals = piece.firstIndex(of: UInt8(ascii: "=")) {
                name = decodeBytes(piece[..<equals], plusAsSpace: true)
                value = decodeBytes(piece[piece.index(after: equals)...], plusAsSpace: true)
            } else {
                name = decodeBytes(piece, plusAsSpace: true)
                value = []
            }
            guard let n = String(validating: name, as: UTF8.self), let v = String(validating: value, as: UTF8.self) else { return nil }
            out.append((n, v))
        }
        return out
    }

    /// Percent-decodes `string` (RFC 3986 §2.1), keeping invalid escapes as written.
    /// With `plusAsSpace`, `+` decodes to a space as in form encoding; paths keep it.
    public static func percentDecode(_ string: String, plusAsSpace: Bool = false) -> String {
        decode(string.utf8[...], plusAsSpace: plusAsSpace)
    }

    private static func decode(_ bytes: Substring.UTF8View.SubSequence, plusAsSpace: Bool) -> String {
        String(decoding: decodeBytes(bytes, plusAsSpace: plusAsSpace), as: UTF8.self)
    }

    private static func decodeBytes(_ bytes: Substring.UTF8View.SubSequence, plusAsSpace: Bool) -> [UInt8] {
        let bytes = Array(bytes)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            let byte = bytes[i]
            if byte == UInt8(ascii: "%"), i + 2 < bytes.count, let high = hexValue(bytes[i + 1]),
                let low = hexValue(bytes[i + 2])
            {
                out.append(high << 4 | low)
                i += 3
            } else {
                out.append(plusAsSpace && byte == UInt8(ascii: "+") ? UInt8(ascii: " ") : byte)
                i += 1
            }
        }
        return out
    }
}
