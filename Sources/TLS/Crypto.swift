import COpenSSL

/// Primitives shared by the gateway (Deribit `client_signature` auth) and the simulator.
public enum Crypto {
    /// HMAC-SHA256 (RFC 2104, FIPS 180-4): 32 bytes.
    public static func hmacSHA256(key: [UInt8], message: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let result = withNonNullBytes(key) { keyPointer in
            withNonNullBytes(message) { messagePointer in
                HMAC(EVP_sha256(), keyPointer, Int32(key.count),
                     messagePointer.assumingMemoryBound(to: UInt8.self), message.count, &out, &length)
            }
        }
        precondition(result != nil, "HMAC-SHA256 failed")
        return Array(out.prefix(Int(length)))
    }

    /// SHA-256 (FIPS 180-4): 32 bytes.
    public static func sha256(_ bytes: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let rc = withNonNullBytes(bytes) { pointer in
            EVP_Digest(pointer, bytes.count, &out, &length, EVP_sha256(), nil)
        }
        precondition(rc == 1, "SHA-256 failed")
        return Array(out.prefix(Int(length)))
    }

    /// `count` bytes from OpenSSL's CSPRNG. A failing CSPRNG is not recoverable.
    public static func randomBytes(_ count: Int) -> [UInt8] {
        guard count > 0 else { return [] }
        var out = [UInt8](repeating: 0, count: count)
        let rc = RAND_bytes(&out, Int32(count))
        precondition(rc == 1, "RAND_bytes failed")
        return out
    }

    /// Lowercase hexadecimal, two digits per byte.
    public static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var ascii: [UInt8] = []
        ascii.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            ascii.append(digits[Int(byte >> 4)])
            ascii.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: ascii, as: UTF8.self)
    }

    /// OpenSSL treats a NULL key or message specially; an empty array must still pass a
    /// valid pointer.
    private static func withNonNullBytes<R>(_ bytes: [UInt8], _ body: (UnsafeRawPointer) -> R) -> R {
        if bytes.isEmpty {
            var zero: UInt8 = 0
            return withUnsafePointer(to: &zero) { body(UnsafeRawPointer($0)) }
        }
        return bytes.withUnsafeBytes { body($0.baseAddress!) }
    }
}
