/// Every reason this layer fails a WebSocket connection (RFC 6455 §7.1.7).
///
/// `closeCode` is the only mapping to the wire; the case itself never reaches the peer.
/// After a parser or assembler throws, its state is undefined: send the close frame and
/// close the connection.
public enum WebSocketProtocolError: Error, Equatable, Sendable {
    /// RFC 6455 §5.2: RSV1–3 must be 0 unless an extension defines them; we negotiate none.
    case reservedBitsSet
    /// RFC 6455 §5.2: reserved opcodes 0x3–0x7 and 0xB–0xF.
    case unknownOpcode(UInt8)
    /// RFC 6455 §5.5: control frames carry at most 125 bytes.
    case controlFrameTooLarge
    /// RFC 6455 §5.5: control frames must not be fragmented.
    case fragmentedControlFrame
    /// RFC 6455 §5.1: a server closes the connection on an unmasked client frame.
    case unmaskedClientFrame
    /// RFC 6455 §5.1: a client closes the connection on a masked server frame.
    case maskedServerFrame
    /// RFC 6455 §5.2: the 64-bit length's most significant bit must be 0.
    case lengthHighBitSet
    /// RFC 6455 §5.2: "the minimal number of bytes MUST be used to encode the length".
    case nonMinimalLength
    /// A single frame longer than the parser's `maxFrameSize`.
    case frameTooLarge
    /// A message whose fragments add up to more than the assembler's `maxMessageSize`.
    case messageTooLarge
    /// RFC 6455 §8.1: text messages and close reasons must be valid UTF-8.
    case invalidUTF8
    /// RFC 6455 §5.4: a continuation frame with no message in progress.
    case continuationWithoutStart
    /// RFC 6455 §5.4: a new text/binary frame while a fragmented message is in progress.
    case dataFrameDuringFragmentedMessage
    /// RFC 6455 §5.5.1: a close payload of exactly one byte.
    case invalidClosePayload
    /// RFC 6455 §7.4: a close code that must not appear on the wire.
    case invalidCloseCode(UInt16)
    /// A binary message where the application accepts only text.
    case binaryNotAccepted

    /// The status code of the close frame to send before closing (RFC 6455 §7.4.1).
    public var closeCode: UInt16 {
        switch self {
        case .invalidUTF8:
            return 1007  // invalid frame payload data
        case .frameTooLarge, .messageTooLarge:
            return 1009  // message too big
        case .binaryNotAccepted:
            return 1003  // unsupported data
        case .reservedBitsSet, .unknownOpcode, .controlFrameTooLarge, .fragmentedControlFrame,
             .unmaskedClientFrame, .maskedServerFrame, .lengthHighBitSet, .nonMinimalLength,
             .continuationWithoutStart, .dataFrameDuringFragmentedMessage,
             .invalidClosePayload, .invalidCloseCode:
            return 1002  // protocol error
        }
    }
}
