/// Builds frames for the wire (RFC 6455 §5.2). A client passes a fresh random masking key
/// for every frame (§5.3); a server passes none.
public enum WebSocketFrameEncoder {
    /// Header and payload in one buffer; the payload is masked when a key is given.
    public static func encode(
        opcode: WebSocketOpcode,
        payload: some Collection<UInt8>,
        fin: Bool = true,
        maskingKey: WebSocketMaskingKey? = nil
    ) -> [UInt8] {
        var frame: [UInt8] = []
        write(opcode: opcode, payload: payload, fin: fin, maskingKey: maskingKey, into: &frame)
        return frame
    }

    /// The same for an array: a concrete overload, specialized here, so that callers in other
    /// modules do not go through an unspecialized generic append (callgrind: ~2,000
    /// instructions per frame and a metadata lookup per call).
    public static func encode(
        opcode: WebSocketOpcode,
        payload: [UInt8],
        fin: Bool = true,
        maskingKey: WebSocketMaskingKey? = nil
    ) -> [UInt8] {
        var frame: [UInt8] = []
        write(opcode: opcode, payload: payload, fin: fin, maskingKey: maskingKey, into: &frame)
        return frame
    }

    /// The same frame written into `frame` (emptied first, its capacity kept), for a sender
    /// that reuses one buffer for every frame.
    public static func encode(
        opcode: WebSocketOpcode,
        payload: [UInt8],
        fin: Bool = true,
        maskingKey: WebSocketMaskingKey? = nil,
        into frame: inout [UInt8]
    ) {
        write(opcode: opcode, payload: payload, fin: fin, maskingKey: maskingKey, into: &frame)
    }

    private static func write(
        opcode: WebSocketOpcode,
        payload: some Collection<UInt8>,
        fin: Bool,
        maskingKey: WebSocketMaskingKey?,
        into frame: inout [UInt8]
    ) {
        let count = payload.count
        frame.removeAll(keepingCapacity: true)
        frame.reserveCapacity(headerLength(payloadLength: count, masked: maskingKey != nil) + count)
        appendHeader(to: &frame, opcode: opcode, payloadLength: count, fin: fin, maskingKey: maskingKey)
        let payloadStart = frame.count
        frame.append(contentsOf: payload)
        if let maskingKey { WebSocketMasking.apply(maskingKey, to: &frame, from: payloadStart) }
    }

    /// The 2–14 header bytes alone, for writing header and payload with one `writev`.
    /// With a masking key the caller must mask the payload itself; a server (no key) sends
    /// the payload bytes unchanged, so one notification can be queued to many clients.
    public static func header(
        opcode: WebSocketOpcode,
        payloadLength: Int,
        fin: Bool = true,
        maskingKey: WebSocketMaskingKey? = nil
    ) -> [UInt8] {
        var header: [UInt8] = []
        header.reserveCapacity(headerLength(payloadLength: payloadLength, masked: maskingKey != nil))
        appendHeader(to: &header, opcode: opcode, payloadLength: payloadLength, fin: fin, maskingKey: maskingKey)
        return header
    }

    /// 2 bytes, plus 2 or 8 for the extended length, plus 4 for a masking key.
    public static func headerLength(payloadLength: Int, masked: Bool) -> Int {
        2 + (payloadLength < 126 ? 0 : payloadLength <= 0xFFFF ? 2 : 8) + (masked ? 4 : 0)
    }

    /// Appends the header to `header` (which may already hold other frames).
    public static func appendHeader(
        to header: inout [UInt8],
        opcode: WebSocketOpcode,
        payloadLength: Int,
        fin: Bool = true,
        maskingKey: WebSocketMaskingKey? = nil
    ) {
        precondition(payloadLength >= 0, "negative payload length")
        header.append((fin ? 0x80 : 0) | opcode.rawValue)
        let maskBit: UInt8 = maskingKey == nil ? 0 : 0x80
        // RFC 6455 §5.2: the minimal encoding of the length.
        switch payloadLength {
        case ..<126:
            header.append(maskBit | UInt8(payloadLength))
        case ...0xFFFF:
            header.append(maskBit | 126)
            header.append(UInt8(truncatingIfNeeded: payloadLength >> 8))
            header.append(UInt8(truncatingIfNeeded: payloadLength))
        default:
            header.append(maskBit | 127)
            let length = UInt64(payloadLength)
            for shift in stride(from: 56, through: 0, by: -8) {
                header.append(UInt8(truncatingIfNeeded: length >> UInt64(shift)))
            }
        }
        if let key = maskingKey {
            header.append(key.0)
            header.append(key.1)
            header.append(key.2)
            header.append(key.3)
        }
    }

    /// Writes an unmasked (server) header into `buffer`, which must hold at least 10 bytes,
    /// and returns its length: the same bytes as `appendHeader` without a key, no array.
    public static func writeHeader(
        into buffer: UnsafeMutableRawBufferPointer,
        opcode: WebSocketOpcode,
        payloadLength: Int,
        fin: Bool = true
    ) -> Int {
        precondition(payloadLength >= 0, "negative payload length")
        precondition(buffer.count >= 10, "a header needs up to 10 bytes")
        buffer[0] = (fin ? 0x80 : 0) | opcode.rawValue
        switch payloadLength {
        case ..<126:
            buffer[1] = UInt8(payloadLength)
            return 2
        case ...0xFFFF:
            buffer[1] = 126
            buffer[2] = UInt8(truncatingIfNeeded: payloadLength >> 8)
            buffer[3] = UInt8(truncatingIfNeeded: payloadLength)
            return 4
        default:
            buffer[1] = 127
            let length = UInt64(payloadLength)
            for i in 0..<8 {
                buffer[2 + i] = UInt8(truncatingIfNeeded: length >> UInt64(56 - 8 * i))
            }
            return 10
        }
    }

    /// A close frame body (RFC 6455 §5.5.1): the code in network byte order, then the reason
    /// in UTF-8, cut at a character boundary so the whole fits a 125-byte control frame.
    public static func closePayload(code: UInt16, reason: String) -> [UInt8] {
        var payload: [UInt8] = [UInt8(code >> 8), UInt8(truncatingIfNeeded: code)]
        for scalar in reason.unicodeScalars {
            guard payload.count + scalar.utf8.count <= 125 else { break }
            payload.append(contentsOf: scalar.utf8)
        }
        return payload
    }
}
