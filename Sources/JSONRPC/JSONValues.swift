// Slow-path readers for the few methods the gateway answers itself (SPEC §6.2):
// subscribe channels, heartbeat intervals, auth params. They validate what they read
// and return nil instead of throwing: the caller answers -32602 Invalid params.

/// Decodes the content of a JSON string (the bytes between the quotes).
public enum JSONStringDecoder {
    /// The decoded string, or nil on a malformed escape, a raw control character or a lone
    /// surrogate escape (`\uD800` not followed by `\uDC00`…`\uDFFF`, or a lone low half):
    /// the scanner lets those through as RFC 8259 §8.2 allows, but they name no character.
    /// Invalid UTF-8 is repaired with U+FFFD; text frames are validated before this.
    public static func decode(_ bytes: some Collection<UInt8>) -> String? {
        if !bytes.contains(ASCII.backslash) {
            if bytes.contains(where: { $0 < 0x20 }) { return nil }
            return String(decoding: bytes, as: UTF8.self)
        }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var it = bytes.makeIterator()
        var pendingHigh: UInt32?
        while let b = it.next() {
            if b != ASCII.backslash {
                guard pendingHigh == nil, b >= 0x20 else { return nil }
                out.append(b)
                continue
            }
            guard let e = it.next() else { return nil }
            let unit: UInt32
            switch e {
            case ASCII.quote: unit = 0x22
            case ASCII.backslash: unit = 0x5C
            case ASCII.slash: unit = 0x2F
            case 0x62: unit = 0x08
            case 0x66: unit = 0x0C
            case 0x6E: unit = 0x0A
            case 0x72: unit = 0x0D
            case 0x74: unit = 0x09
            case ASCII.lowerU:
                var v: UInt32 = 0
                for _ in 0..<4 {
                    guard let h = it.next().flatMap(ASCII.hexValue) else { return nil }
                    v = v << 4 | h
                }
                unit = v
            default:
                return nil
            }
            let scalarValue: UInt32
            if let high = pendingHigh {
                guard (0xDC00...0xDFFF).contains(unit) else { return nil }
                scalarValue = 0x10000 + ((high - 0xD800) << 10) + (unit - 0xDC00)
                pendingHigh = nil
            } else if (0xD800...0xDBFF).contains(unit) {
                pendingHigh = unit
                continue
            } else if (0xDC00...0xDFFF).contains(unit) {
                return nil
            } else {
                scalarValue = unit
            }
            guard let scalar = Unicode.Scalar(scalarValue) else { return nil }
            out.append(contentsOf: UTF8.encode(scalar)!)
        }
        guard pendingHigh == nil else { return nil }
        return String(decoding: out, as: UTF8.self)
    }
}

/// Reads a JSON array whose elements are all strings, e.g. `params.channels` of
/// `public/subscribe`.
public enum JSONArrayOfStrings {
    /// The decoded strings of the array at `range` (a raw value span, whitespace around it
    /// allowed), or nil when it is not an array of strings.
    public static func parse(_ bytes: UnsafeRawBufferPointer, range: Range<Int>) -> [String]? {
        guard var c = JSONCursor(bytes, range: range) else { return nil }
        c.skipWhitespace()
        guard !c.atEnd, c.current == ASCII.openBracket else { return nil }
        c.i += 1
        c.skipWhitespace()
        var strings: [String] = []
        if !c.atEnd, c.current == ASCII.closeBracket {
            c.i += 1
        } else {
            while true {
                guard !c.atEnd, c.current == ASCII.quote else { return nil }
                let start = c.i + 1
                guard (try? c.scanString()) != nil,
                      let string = JSONStringDecoder.decode(UnsafeRawBufferPointer(rebasing: bytes[start..<(c.i - 1)]))
                else { return nil }
                strings.append(string)
                c.skipWhitespace()
                guard !c.atEnd else { return nil }
                let b = c.current
                c.i += 1
                if b == ASCII.closeBracket { break }
                guard b == ASCII.comma else { return nil }
                c.skipWhitespace()
            }
        }
        c.skipWhitespace()
        return c.atEnd ? strings : nil
    }

    public static func parse(_ bytes: [UInt8], range: Range<Int>) -> [String]? {
        bytes.withUnsafeBytes { parse($0, range: range) }
    }
}

/// Reads members of an object span and scalar values, validating as it goes.
public enum JSONObjectReader {
    /// The raw value span of the first member named `key` of the object at `range`
    /// (e.g. `scan.params`), or nil when absent or when the span is not a valid object.
    /// Only the object's own members are considered, never nested ones.
    public static func member(
        _ key: String, inObject range: Range<Int>, of bytes: UnsafeRawBufferPointer
    ) -> Range<Int>? {
        guard var c = JSONCursor(bytes, range: range) else { return nil }
        do {
            c.skipWhitespace()
            try c.expect(ASCII.openBrace)
            c.skipWhitespace()
            if try c.peek() == ASCII.closeBrace { return nil }
            while true {
                let (name, escaped) = try c.scanKey()
                let valueStart = c.i
                _ = try c.skipValue(depth: 1)
                if keyMatches(name, escaped: escaped, key, bytes) { return valueStart..<c.i }
                c.skipWhitespace()
                let b = try c.peek()
                c.i += 1
                if b == ASCII.closeBrace { return nil }
                guard b == ASCII.comma else { return nil }
                c.skipWhitespace()
            }
        } catch {
            return nil
        }
    }

    public static func member(_ key: String, inObject range: Range<Int>, of bytes: [UInt8]) -> Range<Int>? {
        bytes.withUnsafeBytes { member(key, inObject: range, of: $0) }
    }

    private static func keyMatches(
        _ name: Range<Int>, escaped: Bool, _ key: String, _ bytes: UnsafeRawBufferPointer
    ) -> Bool {
        let raw = UnsafeRawBufferPointer(rebasing: bytes[name])
        if !escaped { return raw.elementsEqual(key.utf8) }
        return JSONStringDecoder.decode(raw) == key
    }
}

/// Scalar values at a raw value span.
public enum JSONScalar {
    /// The kind of the value at `range`, from its first byte.
    public static func kind(_ bytes: [UInt8], _ range: Range<Int>) -> JSONValueKind? {
        guard range.lowerBound >= 0, range.lowerBound < range.upperBound, range.upperBound <= bytes.count else {
            return nil
        }
        switch bytes[range.lowerBound] {
        case ASCII.openBrace: return .object
        case ASCII.openBracket: return .array
        case ASCII.quote: return .string
        case ASCII.lowerT: return .trueLiteral
        case ASCII.lowerF: return .falseLiteral
        case ASCII.lowerN: return .null
        case ASCII.minus, ASCII.zero...ASCII.nine: return .number
        default: return nil
        }
    }

    /// A non-negative integer written as plain digits (an upstream id the gateway issued);
    /// nil for signs, fractions, exponents, leading zeros and values above `UInt64.max`.
    public static func uint64(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> UInt64? {
        guard range.lowerBound >= 0, range.upperBound <= bytes.count, !range.isEmpty, range.count <= 20 else {
            return nil
        }
        if range.count > 1, bytes[range.lowerBound] == ASCII.zero { return nil }
        var v: UInt64 = 0
        for j in range {
            let d = bytes[j] &- ASCII.zero
            guard d < 10 else { return nil }
            let (m, o1) = v.multipliedReportingOverflow(by: 10)
            let (s, o2) = m.addingReportingOverflow(UInt64(d))
            guard !o1, !o2 else { return nil }
            v = s
        }
        return v
    }

    public static func uint64(_ bytes: [UInt8], _ range: Range<Int>) -> UInt64? {
        bytes.withUnsafeBytes { uint64($0, range) }
    }

    /// A JSON number (RFC 8259 §6) as a Double; nil for anything else.
    public static func double(_ bytes: [UInt8], _ range: Range<Int>) -> Double? {
        guard kind(bytes, range) == .number else { return nil }
        let valid: Bool = bytes.withUnsafeBytes { buffer in
            guard var c = JSONCursor(buffer, range: range), (try? c.scanNumber()) != nil else { return false }
            return c.atEnd
        }
        guard valid else { return nil }
        return Double(String(decoding: bytes[range], as: UTF8.self))
    }

    /// `true` or `false`; nil for anything else.
    public static func bool(_ bytes: [UInt8], _ range: Range<Int>) -> Bool? {
        guard range.lowerBound >= 0, range.upperBound <= bytes.count else { return nil }
        let s = bytes[range]
        if s.elementsEqual("true".utf8) { return true }
        if s.elementsEqual("false".utf8) { return false }
        return nil
    }

    /// The decoded string at a raw value span (with its quotes); nil when not a string.
    public static func string(_ bytes: [UInt8], _ range: Range<Int>) -> String? {
        guard kind(bytes, range) == .string, range.count >= 2, bytes[range.upperBound - 1] == ASCII.quote else {
            return nil
        }
        return JSONStringDecoder.decode(bytes[(range.lowerBound + 1)..<(range.upperBound - 1)])
    }
}

/// Reads the elements of an array span, validating as it goes.
public enum JSONArrayReader {
    /// The raw value spans of the elements of the array at `range`, or nil when the span is not
    /// a valid array. Nested values are skipped, not read.
    public static func elements(inArray range: Range<Int>, of bytes: UnsafeRawBufferPointer) -> [Range<Int>]? {
        guard var c = JSONCursor(bytes, range: range) else { return nil }
        var out: [Range<Int>] = []
        do {
            c.skipWhitespace()
            try c.expect(ASCII.openBracket)
            c.skipWhitespace()
            if try c.peek() == ASCII.closeBracket {
                c.i += 1
            } else {
                while true {
                    c.skipWhitespace()
                    let start = c.i
                    _ = try c.skipValue(depth: 1)
                    out.append(start..<c.i)
                    c.skipWhitespace()
                    let b = try c.peek()
                    c.i += 1
                    if b == ASCII.closeBracket { break }
                    guard b == ASCII.comma else { return nil }
                }
            }
            c.skipWhitespace()
            return c.atEnd ? out : nil
        } catch {
            return nil
        }
    }

    public static func elements(inArray range: Range<Int>, of bytes: [UInt8]) -> [Range<Int>]? {
        bytes.withUnsafeBytes { elements(inArray: range, of: $0) }
    }
}
