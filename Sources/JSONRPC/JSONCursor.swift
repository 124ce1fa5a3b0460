// The validating byte cursor shared by the scanner and the slow-path helpers.
//
// Grammar: RFC 8259. Every read is checked against `end` before it happens, so a
// truncated message is an error, never an out-of-bounds read. Nesting is walked
// iteratively with a bit stack, so depth costs no native stack and is capped by
// `JSONRPCScanner.maxDepth`.
//
// Not checked here: UTF-8 well-formedness of string bytes (RFC 8259 §8.1). Text frames
// are UTF-8-validated by the WebSocket layer (RFC 6455 §8.1) before they reach us.

enum ASCII {
    static let quote: UInt8 = 0x22        // "
    static let backslash: UInt8 = 0x5C    // \
    static let slash: UInt8 = 0x2F        // /
    static let comma: UInt8 = 0x2C        // ,
    static let colon: UInt8 = 0x3A        // :
    static let openBrace: UInt8 = 0x7B    // {
    static let closeBrace: UInt8 = 0x7D   // }
    static let openBracket: UInt8 = 0x5B  // [
    static let closeBracket: UInt8 = 0x5D // ]
    static let minus: UInt8 = 0x2D        // -
    static let plus: UInt8 = 0x2B         // +
    static let dot: UInt8 = 0x2E          // .
    static let zero: UInt8 = 0x30
    static let nine: UInt8 = 0x39
    static let lowerE: UInt8 = 0x65
    static let upperE: UInt8 = 0x45
    static let lowerU: UInt8 = 0x75
    static let lowerT: UInt8 = 0x74
    static let lowerF: UInt8 = 0x66
    static let lowerN: UInt8 = 0x6E

    @inline(__always) static func isDigit(_ b: UInt8) -> Bool { b &- zero < 10 }

    @inline(__always) static func hexValue(_ b: UInt8) -> UInt32? {
        switch b {
        case 0x30...0x39: return UInt32(b - 0x30)
        case 0x41...0x46: return UInt32(b - 0x41 + 10)
        case 0x61...0x66: return UInt32(b - 0x61 + 10)
        default: return nil
        }
    }
}

/// Which open containers are objects: one bit per level, `JSONRPCScanner.maxDepth` levels.
struct NestingStack {
    private var low: UInt64 = 0
    private var high: UInt64 = 0

    @inline(__always) mutating func set(_ level: Int, isObject: Bool) {
        if level < 64 {
            let bit: UInt64 = 1 &<< UInt64(level)
            low = isObject ? low | bit : low & ~bit
        } else {
            let bit: UInt64 = 1 &<< UInt64(level - 64)
            high = isObject ? high | bit : high & ~bit
        }
    }

    @inline(__always) func isObject(_ level: Int) -> Bool {
        level < 64 ? low & (1 &<< UInt64(level)) != 0 : high & (1 &<< UInt64(level - 64)) != 0
    }
}

struct JSONCursor {
    let bytes: UnsafeRawBufferPointer
    var i: Int
    let end: Int

    init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
        self.i = 0
        self.end = bytes.count
    }

    /// A cursor over `range`, or nil when the range does not lie inside `bytes`.
    init?(_ bytes: UnsafeRawBufferPointer, range: Range<Int>) {
        guard range.lowerBound >= 0, range.upperBound <= bytes.count else { return nil }
        self.bytes = bytes
        self.i = range.lowerBound
        self.end = range.upperBound
    }

    @inline(__always) var atEnd: Bool { i >= end }

    /// The byte at the cursor; the caller has checked `!atEnd`.
    @inline(__always) var current: UInt8 { bytes[i] }

    @inline(__always) func peek() throws(JSONRPCScanError) -> UInt8 {
        guard i < end else { throw .notJSON }
        return bytes[i]
    }

    /// RFC 8259 §2: ws = space, tab, LF, CR.
    @inline(__always) mutating func skipWhitespace() {
        while i < end {
            switch bytes[i] {
            case 0x20, 0x0A, 0x0D, 0x09: i += 1
            default: return
            }
        }
    }

    @inline(__always) mutating func expect(_ b: UInt8) throws(JSONRPCScanError) {
        guard i < end, bytes[i] == b else { throw .notJSON }
        i += 1
    }

    /// At the opening quote; leaves the cursor after the closing quote. Returns whether the
    /// content holds escapes (then byte comparison is not enough). RFC 8259 §7: control
    /// characters must be escaped; escapes are `\" \\ \/ \b \f \n \r \t \uXXXX`. Lone
    /// surrogate escapes are accepted, as the grammar allows (RFC 8259 §8.2).
    @inline(__always) mutating func scanString() throws(JSONRPCScanError) -> Bool {
        i += 1
        var escaped = false
        while i < end {
            let b = bytes[i]
            if b == ASCII.quote {
                i += 1
                return escaped
            }
            if b == ASCII.backslash {
                escaped = true
                try scanEscape()
                continue
            }
            guard b >= 0x20 else { throw .notJSON }
            i += 1
        }
        throw .notJSON
    }

    /// At a backslash inside a string; leaves the cursor after the escape.
    private mutating func scanEscape() throws(JSONRPCScanError) {
        i += 1
        guard i < end else { throw .notJSON }
        switch bytes[i] {
        case ASCII.quote, ASCII.backslash, ASCII.slash,
             0x62 /* b */, 0x66 /* f */, 0x6E /* n */, 0x72 /* r */, 0x74 /* t */:
            i += 1
        case ASCII.lowerU:
            guard end - i > 4 else { throw .notJSON }
            for k in 1...4 where ASCII.hexValue(bytes[i + k]) == nil { throw .notJSON }
            i += 5
        default:
            throw .notJSON
        }
    }

    /// RFC 8259 §6: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    mutating func scanNumber() throws(JSONRPCScanError) {
        if bytes[i] == ASCII.minus { i += 1 }
        guard i < end else { throw .notJSON }
        let first = bytes[i]
        if first == ASCII.zero {
            i += 1
        } else if ASCII.isDigit(first) {
            i += 1
            skipDigits()
        } else {
            throw .notJSON
        }
        if i < end, bytes[i] == ASCII.dot {
            i += 1
            guard i < end, ASCII.isDigit(bytes[i]) else { throw .notJSON }
            skipDigits()
        }
        if i < end, bytes[i] == ASCII.lowerE || bytes[i] == ASCII.upperE {
            i += 1
            if i < end, bytes[i] == ASCII.plus || bytes[i] == ASCII.minus { i += 1 }
            guard i < end, ASCII.isDigit(bytes[i]) else { throw .notJSON }
            skipDigits()
        }
    }

    @inline(__always) private mutating func skipDigits() {
        while i < end, ASCII.isDigit(bytes[i]) { i += 1 }
    }

    private mutating func scanLiteral(_ literal: StaticString) throws(JSONRPCScanError) {
        let n = literal.utf8CodeUnitCount
        guard end - i >= n else { throw .notJSON }
        let p = literal.utf8Start
        for k in 0..<n where bytes[i + k] != p[k] { throw .notJSON }
        i += n
    }

    /// At a member's opening quote: scans the key, the colon and the whitespace around it.
    /// Returns the key's content span and whether it holds escapes.
    @inline(__always) mutating func scanKey() throws(JSONRPCScanError) -> (Range<Int>, Bool) {
        guard i < end, bytes[i] == ASCII.quote else { throw .notJSON }
        let start = i + 1
        let escaped = try scanString()
        let key = start..<(i - 1)
        skipWhitespace()
        try expect(ASCII.colon)
        skipWhitespace()
        return (key, escaped)
    }

    /// Validates one value starting at the cursor (no leading whitespace) and leaves the
    /// cursor after it. `depth` is the number of containers already open around it.
    mutating func skipValue(depth: Int) throws(JSONRPCScanError) -> JSONValueKind {
        guard i < end else { throw .notJSON }
        let kind: JSONValueKind
        switch bytes[i] {
        case ASCII.openBrace: kind = .object
        case ASCII.openBracket: kind = .array
        case ASCII.quote: kind = .string
        case ASCII.lowerT: kind = .trueLiteral
        case ASCII.lowerF: kind = .falseLiteral
        case ASCII.lowerN: kind = .null
        case ASCII.minus, ASCII.zero...ASCII.nine: kind = .number
        default: throw .notJSON
        }
        // Scalars, the common case, skip the container machinery.
        switch kind {
        case .string: _ = try scanString(); return kind
        case .number: try scanNumber(); return kind
        case .trueLiteral: try scanLiteral("true"); return kind
        case .falseLiteral: try scanLiteral("false"); return kind
        case .null: try scanLiteral("null"); return kind
        case .object, .array: break
        }

        var stack = NestingStack()
        var level = 0
        while true {
            // A value starts at the cursor.
            guard i < end else { throw .notJSON }
            switch bytes[i] {
            case ASCII.openBrace, ASCII.openBracket:
                let isObject = bytes[i] == ASCII.openBrace
                guard depth + level < JSONRPCScanner.maxDepth else { throw .nestingTooDeep }
                stack.set(level, isObject: isObject)
                level += 1
                i += 1
                skipWhitespace()
                guard i < end else { throw .notJSON }
                if bytes[i] == (isObject ? ASCII.closeBrace : ASCII.closeBracket) {
                    i += 1
                    level -= 1
                } else {
                    if isObject { _ = try scanKey() }
                    continue
                }
            case ASCII.quote: _ = try scanString()
            case ASCII.minus, ASCII.zero...ASCII.nine: try scanNumber()
            case ASCII.lowerT: try scanLiteral("true")
            case ASCII.lowerF: try scanLiteral("false")
            case ASCII.lowerN: try scanLiteral("null")
            default: throw .notJSON
            }
            // After a value: a separator, or the end of one or more containers.
            while true {
                if level == 0 { return kind }
                skipWhitespace()
                guard i < end else { throw .notJSON }
                let isObject = stack.isObject(level - 1)
                let b = bytes[i]
                if b == ASCII.comma {
                    i += 1
                    skipWhitespace()
                    if isObject { _ = try scanKey() }
                    break
                }
                guard b == (isObject ? ASCII.closeBrace : ASCII.closeBracket) else { throw .notJSON }
                i += 1
                level -= 1
            }
        }
    }

    /// Whether the string content at `range` equals the ASCII `literal`, decoding escapes
    /// when there are any (`"m\u0065thod"` is `method` to every JSON parser upstream).
    @inline(__always)
    func content(_ range: Range<Int>, hasEscapes: Bool, equals literal: StaticString) -> Bool {
        let n = literal.utf8CodeUnitCount
        let p = literal.utf8Start
        if !hasEscapes {
            guard range.count == n else { return false }
            for k in 0..<n where bytes[range.lowerBound + k] != p[k] { return false }
            return true
        }
        var j = range.lowerBound
        var k = 0
        while j < range.upperBound {
            guard k < n, let (scalar, next) = Self.unit(bytes, at: j, end: range.upperBound),
                  scalar == UInt32(p[k]) else { return false }
            j = next
            k += 1
        }
        return k == n
    }

    /// One unit of string content at `j`: a raw byte, or the code unit an escape stands for
    /// (a `\uXXXX` value, surrogates not combined). Nil on a malformed escape.
    static func unit(_ bytes: UnsafeRawBufferPointer, at j: Int, end: Int) -> (UInt32, Int)? {
        let b = bytes[j]
        guard b == ASCII.backslash else { return (UInt32(b), j + 1) }
        guard j + 1 < end else { return nil }
        switch bytes[j + 1] {
        case ASCII.quote: return (0x22, j + 2)
        case ASCII.backslash: return (0x5C, j + 2)
        case ASCII.slash: return (0x2F, j + 2)
        case 0x62: return (0x08, j + 2)
        case 0x66: return (0x0C, j + 2)
        case 0x6E: return (0x0A, j + 2)
        case 0x72: return (0x0D, j + 2)
        case 0x74: return (0x09, j + 2)
        case ASCII.lowerU:
            guard end - j >= 6 else { return nil }
            var v: UInt32 = 0
            for k in 2...5 {
                guard let h = ASCII.hexValue(bytes[j + k]) else { return nil }
                v = v << 4 | h
            }
            return (v, j + 6)
        default: return nil
        }
    }
}
