/// Byte splicing: requests are forwarded with a new id and without `params.access_token`,
/// responses go back with the client's original id bytes; nothing is re-serialized
/// (STYLE habit 8). Every function takes the scan of the same `bytes`.
public enum JSONRPCSplice {
    /// `bytes` with `range` replaced by `replacement`.
    public static func replacing(
        _ range: Range<Int>, in bytes: [UInt8], with replacement: some Collection<UInt8>
    ) -> [UInt8] {
        splice(range, in: bytes, with: replacement)
    }

    /// The same for an array replacement (a client's id): concrete, so specialized here.
    public static func replacing(_ range: Range<Int>, in bytes: [UInt8], with replacement: [UInt8]) -> [UInt8] {
        splice(range, in: bytes, with: replacement)
    }

    private static func splice(
        _ range: Range<Int>, in bytes: [UInt8], with replacement: some Collection<UInt8>
    ) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count - range.count + replacement.count)
        out.append(contentsOf: bytes[..<range.lowerBound])
        out.append(contentsOf: replacement)
        out.append(contentsOf: bytes[range.upperBound...])
        return out
    }

    /// `bytes` with the id replaced by the decimal `newID`. A message without an id gets
    /// `"id":newID` as its first member, so the result always carries `newID`.
    public static func replacingID(in bytes: [UInt8], scan: JSONRPCScan, with newID: UInt64) -> [UInt8] {
        let (range, replacement) = idEdit(in: bytes, scan: scan, newID: newID)
        return replacing(range, in: bytes, with: replacement)
    }

    /// `bytes` without `params.access_token`; unchanged when there is none.
    public static func removingAccessToken(in bytes: [UInt8], scan: JSONRPCScan) -> [UInt8] {
        guard let removal = scan.accessTokenRemoval else { return bytes }
        return replacing(removal, in: bytes, with: EmptyCollection())
    }

    /// Both edits in one copy: the forwarding path of a client request (SPEC §6.3).
    public static func replacingIDAndRemovingAccessToken(
        in bytes: [UInt8], scan: JSONRPCScan, with newID: UInt64
    ) -> [UInt8] {
        let (idRange, idBytes) = idEdit(in: bytes, scan: scan, newID: newID)
        guard let removal = scan.accessTokenRemoval else {
            return replacing(idRange, in: bytes, with: idBytes)
        }
        // The id is a top-level member and the token sits inside params: never overlapping.
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count - idRange.count + idBytes.count - removal.count)
        if idRange.lowerBound < removal.lowerBound {
            out.append(contentsOf: bytes[..<idRange.lowerBound])
            out.append(contentsOf: idBytes)
            out.append(contentsOf: bytes[idRange.upperBound..<removal.lowerBound])
            out.append(contentsOf: bytes[removal.upperBound...])
        } else {
            out.append(contentsOf: bytes[..<removal.lowerBound])
            out.append(contentsOf: bytes[removal.upperBound..<idRange.lowerBound])
            out.append(contentsOf: idBytes)
            out.append(contentsOf: bytes[idRange.upperBound...])
        }
        return out
    }

    /// The range to replace and its replacement for a new id.
    private static func idEdit(in bytes: [UInt8], scan: JSONRPCScan, newID: UInt64) -> (Range<Int>, [UInt8]) {
        if let id = scan.id { return (id, decimalBytes(newID)) }
        var member = Array(#""id":"#.utf8)
        appendDecimal(newID, to: &member)
        // `{}` gets no comma; anything else has a first member after the brace.
        var j = scan.objectStart + 1
        while j < bytes.count, bytes[j] == 0x20 || bytes[j] == 0x0A || bytes[j] == 0x0D || bytes[j] == 0x09 {
            j += 1
        }
        if j < bytes.count, bytes[j] != ASCII.closeBrace { member.append(ASCII.comma) }
        let at = scan.objectStart + 1
        return (at..<at, member)
    }

    /// The decimal digits of `value`.
    public static func decimalBytes(_ value: UInt64) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(20)
        appendDecimal(value, to: &out)
        return out
    }

    /// Appends the decimal digits of `value` (at most 20) without intermediate storage.
    public static func appendDecimal(_ value: UInt64, to out: inout [UInt8]) {
        if value < 10 {
            out.append(ASCII.zero &+ UInt8(truncatingIfNeeded: value))
            return
        }
        var digits = 1
        var probe = value
        while probe >= 10 {
            probe /= 10
            digits += 1
        }
        let start = out.count
        out.append(contentsOf: repeatElement(ASCII.zero, count: digits))
        var v = value
        var k = start + digits - 1
        while v > 0 {
            out[k] = ASCII.zero &+ UInt8(truncatingIfNeeded: v % 10)
            v /= 10
            k -= 1
        }
    }
}
