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

    /// Percent-decodes `string` (RFC 3986 §2.1), keeping invalid escapes as written.
    /// With `plusAsSpace`, `+` decodes to a space as in form encoding; paths keep it.
    public static func percentDecode(_ string: String, plusAsSpace: Bool = false) -> String {
        decode(string.utf8[...], plusAsSpace: plusAsSpace)
    }

    private static func decode(_ bytes: Substring.UTF8View.SubSequence, plusAsSpace: Bool) -> String {
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
        return String(decoding: out, as: UTF8.self)
    }
}
