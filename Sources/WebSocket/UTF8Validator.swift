/// Strict UTF-8 validation (RFC 3629 §4, as RFC 6455 §8.1 requires for text): rejects
/// overlong forms, UTF-16 surrogates (U+D800–U+DFFF), code points above U+10FFFF and
/// truncated sequences.
public enum UTF8Validator {
    public static func isValid(_ bytes: some Collection<UInt8>) -> Bool {
        var validator = Incremental()
        return validator.feed(bytes) && validator.isAtCharacterBoundary
    }

    /// Validates a text message fragment by fragment, so a code point split across frames
    /// is accepted and an invalid one is rejected as soon as its bytes arrive (RFC 6455 §8.1).
    public struct Incremental: Sendable {
        /// Continuation bytes still expected for the current code point.
        private var pending: UInt8 = 0
        /// Allowed range of the next continuation byte; narrower than 0x80–0xBF only right
        /// after the lead bytes that could start an overlong form, a surrogate or > U+10FFFF.
        private var lower: UInt8 = 0x80
        private var upper: UInt8 = 0xBF
        private var failed = false

        public init() {}

        /// True when every byte fed so far is valid and no code point is cut in half:
        /// the condition for the end of a text message.
        public var isAtCharacterBoundary: Bool { !failed && pending == 0 }

        /// Feeds the next bytes; false (for good) as soon as they cannot be valid UTF-8.
        public mutating func feed(_ bytes: some Collection<UInt8>) -> Bool {
            guard !failed else { return false }
            let valid = bytes.withContiguousStorageIfAvailable { consume($0) }
                ?? Array(bytes).withUnsafeBufferPointer { consume($0) }
            if !valid { failed = true }
            return valid
        }

        private mutating func consume(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
            let count = bytes.count
            var i = 0
            while i < count {
                // JSON is mostly ASCII: skip 8 plain bytes at a time between code points.
                if pending == 0, count - i >= 8 {
                    let word = UnsafeRawPointer(bytes.baseAddress! + i).loadUnaligned(as: UInt64.self)
                    if word & 0x8080_8080_8080_8080 == 0 {
                        i += 8
                        continue
                    }
                }
                guard step(bytes[i]) else { return false }
                i += 1
            }
            return true
        }

        private mutating func step(_ byte: UInt8) -> Bool {
            if pending > 0 {
                guard byte >= lower, byte <= upper else { return false }
                pending -= 1
                lower = 0x80
                upper = 0xBF
                return true
            }
            // RFC 3629 §4 syntax of UTF8-char, by lead byte.
            switch byte {
            case 0x00...0x7F: return true
            case 0xC2...0xDF: pending = 1
            case 0xE0: pending = 2; lower = 0xA0  // no overlong 3-byte forms
            case 0xE1...0xEC, 0xEE...0xEF: pending = 2
            case 0xED: pending = 2; upper = 0x9F  // no surrogates
            case 0xF0: pending = 3; lower = 0x90  // no overlong 4-byte forms
            case 0xF1...0xF3: pending = 3
            case 0xF4: pending = 3; upper = 0x8F  // nothing above U+10FFFF
            default: return false  // continuation byte without lead, 0xC0, 0xC1, 0xF5–0xFF
            }
            return true
        }
    }
}
