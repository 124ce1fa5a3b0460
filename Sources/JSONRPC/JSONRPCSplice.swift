/// Byte splicing: requests are forwarded with a new id and without `params.access_token`,
/// responses go back with the client's original id bytes; nothing is re-serialized
/// (STYLE habit 8). Every function takes the scan of the same `bytes`.
///
/// The `into:` forms write the result into a buffer the caller keeps (its contents replaced,
/// its capacity kept), so a relay splicing every message allocates nothing per message.
public enum JSONRPCSplice {
    /// `bytes` with `range` replaced by `replacement` (a response given the client's id back).
    public static func replacing(_ range: Range<Int>, in bytes: [UInt8], with replacement: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        replacing(range, in: bytes, with: replacement, into: &out)
        return out
    }

    /// `bytes` with `range` replaced by `replacement`, written into `out`.
    public static func replacing(
        _ range: Range<Int>, in bytes: [UInt8], with replacement: [UInt8], into out: inout [UInt8]
    ) {
        out.removeAll(keepingCapacity: true)
        out.reserveCapacity(bytes.count - range.count + replacement.count)
        out.append(contentsOf: bytes[..<range.lowerBound])
        out.append(contentsOf: replacement)
        out.append(contentsOf: bytes[range.upperBound...])
    }

    /// `bytes` with the id replaced by the decimal `newID` and, when asked, without
    /// `params.access_token`, written into `out` in one copy. A message without an id gets
    /// `"id":newID` as its first member, so the result always carries `newID`.
    public static func replacingID(
        in bytes: [UInt8], scan: JSONRPCScan, with newID: UInt64, removingAccessToken: Bool = false,
        into out: inout [UInt8]
    ) {
        out.removeAll(keepingCapacity: true)
        // The id is a top-level member and the token sits inside params: never overlapping.
        let removal = removingAccessToken ? scan.accessTokenRemoval : nil
        out.reserveCapacity(bytes.count + 26 - (removal?.count ?? 0))
        let idRange = scan.id ?? (scan.objectStart + 1)..<(scan.objectStart + 1)
        var copied = 0
        if let removal, removal.lowerBound < idRange.lowerBound {
            out.append(contentsOf: bytes[..<removal.lowerBound])
            copied = removal.upperBound
        }
        out.append(contentsOf: bytes[copied..<idRange.lowerBound])
        if scan.id != nil {
            appendDecimal(newID, to: &out)
        } else {
            out.append(contentsOf: #""id":"#.utf8)
            appendDecimal(newID, to: &out)
            if !isEmptyObject(bytes, at: scan.objectStart) { out.append(ASCII.comma) }
        }
        copied = idRange.upperBound
        if let removal, removal.lowerBound >= idRange.upperBound {
            out.append(contentsOf: bytes[copied..<removal.lowerBound])
            copied = removal.upperBound
        }
        out.append(contentsOf: bytes[copied...])
    }

    /// Whether the object opening at `start` is `{}` (whitespace allowed): a member added
    /// first then needs no comma after it.
    private static func isEmptyObject(_ bytes: [UInt8], at start: Int) -> Bool {
        var j = start + 1
        while j < bytes.count, bytes[j] == 0x20 || bytes[j] == 0x0A || bytes[j] == 0x0D || bytes[j] == 0x09 {
            j += 1
        }
        return j < bytes.count && bytes[j] == ASCII.closeBrace
    }

    /// The decimal digits of `value`.
    public static func decimalBytes(_ value: UInt64) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(20)
        appendDecimal(value, to: &out)
        return out
    }

    /// Appends the decimal digits of `value` (at most 20), written backwards on the stack.
    public static func appendDecimal(_ value: UInt64, to out: inout [UInt8]) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
            var i = digits.count
            var v = value
            repeat {
                i -= 1
                digits[i] = ASCII.zero &+ UInt8(truncatingIfNeeded: v % 10)
                v /= 10
            } while v > 0
            out.append(contentsOf: UnsafeBufferPointer(rebasing: digits[i...]))
        }
    }
}
