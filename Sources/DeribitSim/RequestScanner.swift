// Finds the raw bytes of a request's top-level "id" so the response can echo it unchanged:
// a string id comes back as the same string, a number as the same number text (Deribit echoes
// the id it was given; JSONSerialization would turn 1.0 into 1 and lose large integers).

enum RawID: Equatable {
    case absent
    case value([UInt8])      // number or string, verbatim
    case invalid             // object, array, boolean: not a JSON-RPC id
}

struct RequestScanner {
    /// Scans `{"k": v, ...}` at the top level only. Returns `.absent` when the text is not an
    /// object; the caller has already checked that it parses.
    static func id(in text: [UInt8]) -> RawID {
        var i = 0
        let n = text.count
        func skipWS() { while i < n, text[i] == 0x20 || text[i] == 0x0A || text[i] == 0x0D || text[i] == 0x09 { i += 1 } }
        /// Skips a string starting at `i` (on the quote); leaves `i` after the closing quote.
        func skipString() {
            i += 1
            while i < n {
                if text[i] == UInt8(ascii: "\\") { i += 2; continue }
                if text[i] == UInt8(ascii: "\"") { i += 1; return }
                i += 1
            }
        }
        func skipValue() {
            guard i < n else { return }
            switch text[i] {
            case UInt8(ascii: "\""): skipString()
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                var depth = 0
                while i < n {
                    let c = text[i]
                    if c == UInt8(ascii: "\"") { skipString(); continue }
                    if c == UInt8(ascii: "{") || c == UInt8(ascii: "[") { depth += 1 }
                    if c == UInt8(ascii: "}") || c == UInt8(ascii: "]") {
                        depth -= 1
                        if depth == 0 { i += 1; return }
                    }
                    i += 1
                }
            default:
                while i < n, text[i] != UInt8(ascii: ","), text[i] != UInt8(ascii: "}"),
                      text[i] != 0x20, text[i] != 0x0A, text[i] != 0x0D, text[i] != 0x09 { i += 1 }
            }
        }
        skipWS()
        guard i < n, text[i] == UInt8(ascii: "{") else { return .absent }
        i += 1
        var found = RawID.absent
        while i < n {
            skipWS()
            guard i < n, text[i] == UInt8(ascii: "\"") else { break }
            let keyStart = i + 1
            skipString()
            let key = text[keyStart..<max(keyStart, i - 1)]
            skipWS()
            guard i < n, text[i] == UInt8(ascii: ":") else { break }
            i += 1
            skipWS()
            let valueStart = i
            skipValue()
            if key.elementsEqual("id".utf8) {
                let v = Array(text[valueStart..<i])
                switch v.first ?? 0 {
                case UInt8(ascii: "\""), UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): found = .value(v)
                case UInt8(ascii: "n"): found = .absent     // "id": null
                default: found = .invalid
                }
            }
            skipWS()
            if i < n, text[i] == UInt8(ascii: ",") { i += 1 } else { break }
        }
        return found
    }
}
