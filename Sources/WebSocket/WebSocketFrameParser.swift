/// An incremental RFC 6455 frame parser: feed it bytes as they arrive, take frames out.
///
/// The header is validated as soon as the bytes that carry each field have arrived, before
/// any of the payload is buffered: a frame that is too large, masked the wrong way or
/// otherwise invalid is rejected from its first bytes. Frames come out one at a time,
/// unmasked, in wire order; fragmentation is the `WebSocketMessageAssembler`'s business.
///
/// Errors are terminal: once `next()` has thrown, it throws the same error again.
public struct WebSocketFrameParser: Sendable {
    /// 16 MiB unless told otherwise; the gateway passes its `max_message_bytes`.
    public static let defaultMaxFrameSize = 1 << 24

    public let role: WebSocketRole
    /// The largest payload accepted in one frame (RFC 6455 §10.4); larger frames are 1009.
    public let maxFrameSize: Int
    /// The largest data message; pass the assembler's limit so that the header of the
    /// fragment that crosses it is refused (1009) before that fragment is buffered.
    public let maxMessageSize: Int
    /// Payload bytes of the data message in progress, counted over its fragments. Fragment
    /// order is the assembler's to check; this is only a memory bound.
    private var messageBytes = 0

    /// Received bytes; everything before `readIndex` has been consumed. Compacted only when
    /// the consumed prefix is at least as long as what remains, so each byte moves O(1) times.
    private var buffer: [UInt8] = []
    private var readIndex = 0
    private var failure: WebSocketProtocolError?

    public init(
        role: WebSocketRole,
        maxFrameSize: Int = WebSocketFrameParser.defaultMaxFrameSize,
        maxMessageSize: Int = .max
    ) {
        self.role = role
        self.maxFrameSize = max(0, maxFrameSize)
        self.maxMessageSize = max(0, maxMessageSize)
    }

    /// Bytes fed but not yet returned as frames.
    public var bufferedByteCount: Int { buffer.count - readIndex }

    public mutating func feed<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        compact()
        buffer.append(contentsOf: bytes)
    }

    /// The socket's read buffer, as it comes: a concrete overload, so that the copy is a
    /// `memcpy` rather than an unspecialized generic append in the caller's module.
    public mutating func feed(_ bytes: UnsafeRawBufferPointer) {
        compact()
        buffer.append(contentsOf: bytes)
    }

    private mutating func compact() {
        if readIndex > 0, readIndex >= buffer.count - readIndex {
            buffer.removeSubrange(0..<readIndex)
            readIndex = 0
        }
    }

    /// The next complete frame, or `nil` when more bytes are needed.
    public mutating func next() throws(WebSocketProtocolError) -> WebSocketFrame? {
        var payload: [UInt8] = []
        return try next(reusing: &payload)
    }

    /// Like `next()`, but the payload is written into `storage` (emptied first, its capacity
    /// kept) and the frame shares that storage. A reader that lets go of each frame before
    /// asking for the next one gets every frame without a heap allocation; one that keeps a
    /// frame's payload keeps a private copy (arrays are copied on write).
    public mutating func next(reusing storage: inout [UInt8]) throws(WebSocketProtocolError) -> WebSocketFrame? {
        if let failure { throw failure }
        do throws(WebSocketProtocolError) {
            return try parseFrame(into: &storage)
        } catch {
            failure = error
            throw error
        }
    }

    private mutating func parseFrame(into payload: inout [UInt8]) throws(WebSocketProtocolError) -> WebSocketFrame? {
        let available = buffer.count - readIndex
        guard available >= 2 else { return nil }
        let byte0 = buffer[readIndex]
        let byte1 = buffer[readIndex + 1]

        let fin = byte0 & 0x80 != 0
        let rsv = (byte0 >> 4) & 0x07
        guard rsv == 0 else { throw .reservedBitsSet }
        guard let opcode = WebSocketOpcode(rawValue: byte0 & 0x0F) else {
            throw .unknownOpcode(byte0 & 0x0F)
        }
        let masked = byte1 & 0x80 != 0
        let length7 = byte1 & 0x7F
        if opcode.isControl {
            // RFC 6455 §5.5: control frames are ≤ 125 bytes and never fragmented.
            guard fin else { throw .fragmentedControlFrame }
            guard length7 <= 125 else { throw .controlFrameTooLarge }
        }
        switch role {
        case .server: guard masked else { throw .unmaskedClientFrame }
        case .client: guard !masked else { throw .maskedServerFrame }
        }

        var offset = readIndex + 2
        let length: UInt64
        switch length7 {
        case 126:
            guard available >= 4 else { return nil }
            length = UInt64(buffer[offset]) << 8 | UInt64(buffer[offset + 1])
            guard length >= 126 else { throw .nonMinimalLength }
            offset += 2
        case 127:
            guard available >= 10 else { return nil }
            var value: UInt64 = 0
            for i in 0..<8 { value = value << 8 | UInt64(buffer[offset + i]) }
            guard value & (1 << 63) == 0 else { throw .lengthHighBitSet }
            guard value > 0xFFFF else { throw .nonMinimalLength }
            length = value
            offset += 8
        default:
            length = UInt64(length7)
        }
        guard length <= UInt64(maxFrameSize) else { throw .frameTooLarge }
        let payloadLength = Int(length)
        var messageBytes = self.messageBytes
        if !opcode.isControl {
            messageBytes = opcode == .continuation ? messageBytes : 0
            guard payloadLength <= maxMessageSize - messageBytes else { throw .messageTooLarge }
            messageBytes += payloadLength
        }

        var maskingKey: WebSocketMaskingKey?
        if masked {
            guard buffer.count - offset >= 4 else { return nil }
            maskingKey = (buffer[offset], buffer[offset + 1], buffer[offset + 2], buffer[offset + 3])
            offset += 4
        }
        guard buffer.count - offset >= payloadLength else { return nil }

        payload.removeAll(keepingCapacity: true)
        payload.append(contentsOf: buffer[offset..<(offset + payloadLength)])
        if let maskingKey { WebSocketMasking.apply(maskingKey, to: &payload) }
        readIndex = offset + payloadLength
        self.messageBytes = messageBytes
        if readIndex == buffer.count {
            // Keep a modest buffer for the next read; give back the memory of a huge frame.
            buffer.removeAll(keepingCapacity: buffer.capacity <= 1 << 16)
            readIndex = 0
        }
        return WebSocketFrame(fin: fin, rsv: rsv, opcode: opcode, payload: payload)
    }
}

/// RFC 6455 §5.3: octet i of the payload is XORed with octet i mod 4 of the masking key.
/// Masking and unmasking are the same operation.
enum WebSocketMasking {
    static func apply(_ key: WebSocketMaskingKey, to bytes: inout [UInt8], from start: Int = 0) {
        let keyBytes = (key.0, key.1, key.2, key.3, key.0, key.1, key.2, key.3)
        withUnsafeBytes(of: keyBytes) { keyRaw in
            let key64 = keyRaw.loadUnaligned(as: UInt64.self)
            bytes.withUnsafeMutableBytes { raw in
                var i = start
                let end = raw.count
                // 8 is a multiple of 4, so the key phase stays aligned with `i - start`.
                while end - i >= 8 {
                    let word = raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                    raw.storeBytes(of: word ^ key64, toByteOffset: i, as: UInt64.self)
                    i += 8
                }
                while i < end {
                    raw[i] ^= keyRaw[(i - start) & 3]
                    i += 1
                }
            }
        }
    }
}
