/// Base64 with the standard alphabet and padding (RFC 4648 §4), as RFC 6455 §4 uses it
/// for Sec-WebSocket-Key and Sec-WebSocket-Accept.
enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    static func encode(_ bytes: some Collection<UInt8>) -> String {
        let input = Array(bytes)
        var output: [UInt8] = []
        output.reserveCapacity((input.count + 2) / 3 * 4)
        var i = 0
        while i < input.count {
            let b0 = input[i]
            let b1 = i + 1 < input.count ? input[i + 1] : 0
            let b2 = i + 2 < input.count ? input[i + 2] : 0
            output.append(alphabet[Int(b0 >> 2)])
            output.append(alphabet[Int((b0 & 0x03) << 4 | b1 >> 4)])
            output.append(i + 1 < input.count ? alphabet[Int((b1 & 0x0F) << 2 | b2 >> 6)] : UInt8(ascii: "="))
            output.append(i + 2 < input.count ? alphabet[Int(b2 & 0x3F)] : UInt8(ascii: "="))
            i += 3
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// Strict decoding: padded to a multiple of 4, no whitespace, padding only at the end,
    /// unused trailing bits zero (RFC 4648 §3.5 canonical encoding). Nil otherwise.
    static func decode(_ string: String) -> [UInt8]? {
        let input = Array(string.utf8)
        guard input.count % 4 == 0 else { return nil }
        var output: [UInt8] = []
        output.reserveCapacity(input.count / 4 * 3)
        var i = 0
        while i < input.count {
            let isLast = i + 4 == input.count
            let padding = isLast ? (input[i + 3] == UInt8(ascii: "=") ? (input[i + 2] == UInt8(ascii: "=") ? 2 : 1) : 0) : 0
            var quantum: UInt32 = 0
            for j in 0..<(4 - padding) {
                guard let value = sextet(input[i + j]) else { return nil }
                quantum = quantum << 6 | UInt32(value)
            }
            quantum <<= UInt32(6 * padding)
            switch padding {
            case 0:
                output.append(contentsOf: [UInt8(quantum >> 16), UInt8(truncatingIfNeeded: quantum >> 8), UInt8(truncatingIfNeeded: quantum)])
            case 1:
                guard quantum & 0xFF == 0 else { return nil }
                output.append(contentsOf: [UInt8(quantum >> 16), UInt8(truncatingIfNeeded: quantum >> 8)])
            default:
                guard quantum & 0xFFFF == 0 else { return nil }
                output.append(UInt8(quantum >> 16))
            }
            i += 4
        }
        return output
    }

    private static func sextet(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): return c - UInt8(ascii: "A")
        case UInt8(ascii: "a")...UInt8(ascii: "z"): return c - UInt8(ascii: "a") + 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0") + 52
        case UInt8(ascii: "+"): return 62
        case UInt8(ascii: "/"): return 63
        default: return nil
        }
    }
}
