/// A complete message as the application sees it.
public enum WebSocketMessage: Sendable, Equatable {
    /// Validated UTF-8, left as bytes so JSON can be scanned without decoding a String.
    case text([UInt8])
    case binary([UInt8])
    case ping([UInt8])
    case pong([UInt8])
    /// `code` is nil when the close frame had no body (RFC 6455 §7.1.5: status 1005).
    case close(code: UInt16?, reason: String)
}

/// Turns frames into messages: reassembles fragmented text and binary messages (RFC 6455
/// §5.4), lets control frames through between fragments, enforces the message size limit as
/// each fragment arrives and validates text as UTF-8 incrementally.
///
/// Errors are terminal: fail the connection with the error's `closeCode`.
public struct WebSocketMessageAssembler: Sendable {
    /// 1 MiB: the gateway's default `max_message_bytes`.
    public static let defaultMaxMessageSize = 1 << 20

    public let maxMessageSize: Int
    /// When false a binary message fails with `binaryNotAccepted` (close 1003), RFC 6455 §7.4.1.
    public let acceptBinary: Bool

    /// The opcode of the fragmented message in progress (.text or .binary), if any.
    private var fragmentedOpcode: WebSocketOpcode?
    private var fragments: [UInt8] = []
    private var utf8 = UTF8Validator.Incremental()

    public init(maxMessageSize: Int = WebSocketMessageAssembler.defaultMaxMessageSize, acceptBinary: Bool = true) {
        self.maxMessageSize = max(0, maxMessageSize)
        self.acceptBinary = acceptBinary
    }

    /// True while a fragmented message is partly received.
    public var isAssemblingMessage: Bool { fragmentedOpcode != nil }

    /// The message this frame completes, or nil when it was a non-final fragment.
    public mutating func receive(_ frame: WebSocketFrame) throws(WebSocketProtocolError) -> WebSocketMessage? {
        guard frame.rsv == 0 else { throw .reservedBitsSet }
        switch frame.opcode {
        case .ping, .pong, .close:
            // The parser already enforces this; repeated for frames that come from elsewhere.
            guard frame.fin else { throw .fragmentedControlFrame }
            guard frame.payload.count <= 125 else { throw .controlFrameTooLarge }
            switch frame.opcode {
            case .ping: return .ping(frame.payload)
            case .pong: return .pong(frame.payload)
            default: return try Self.parseClose(frame.payload)
            }

        case .text, .binary:
            // RFC 6455 §5.4: fragments of different messages must not interleave.
            guard fragmentedOpcode == nil else { throw .dataFrameDuringFragmentedMessage }
            if frame.opcode == .binary, !acceptBinary { throw .binaryNotAccepted }
            guard frame.payload.count <= maxMessageSize else { throw .messageTooLarge }
            if frame.opcode == .text {
                utf8 = UTF8Validator.Incremental()
                guard utf8.feed(frame.payload) else { throw .invalidUTF8 }
            }
            if frame.fin {
                if frame.opcode == .text {
                    guard utf8.isAtCharacterBoundary else { throw .invalidUTF8 }
                    return .text(frame.payload)
                }
                return .binary(frame.payload)
            }
            fragmentedOpcode = frame.opcode
            fragments = frame.payload
            return nil

        case .continuation:
            guard let opcode = fragmentedOpcode else { throw .continuationWithoutStart }
            guard frame.payload.count <= maxMessageSize - fragments.count else { throw .messageTooLarge }
            if opcode == .text {
                guard utf8.feed(frame.payload) else { throw .invalidUTF8 }
            }
            fragments.append(contentsOf: frame.payload)
            guard frame.fin else { return nil }
            let message = fragments
            fragments = []
            fragmentedOpcode = nil
            if opcode == .text {
                guard utf8.isAtCharacterBoundary else { throw .invalidUTF8 }
                return .text(message)
            }
            return .binary(message)
        }
    }

    /// RFC 6455 §5.5.1: an empty body, or a 2-byte code followed by a UTF-8 reason.
    static func parseClose(_ payload: [UInt8]) throws(WebSocketProtocolError) -> WebSocketMessage {
        if payload.isEmpty { return .close(code: nil, reason: "") }
        guard payload.count >= 2 else { throw .invalidClosePayload }
        let code = UInt16(payload[0]) << 8 | UInt16(payload[1])
        guard isValidReceivedCloseCode(code) else { throw .invalidCloseCode(code) }
        let reason = payload[2...]
        guard UTF8Validator.isValid(reason) else { throw .invalidUTF8 }
        return .close(code: code, reason: String(decoding: reason, as: UTF8.self))
    }

    /// RFC 6455 §7.4: codes a peer may put in a close frame. 1004 is reserved; 1005, 1006
    /// and 1015 are for reporting only and never sent; below 1000 and 1016–2999 are not
    /// assigned (1012–1014 are IANA-registered since); 3000–4999 belong to libraries and
    /// applications.
    public static func isValidReceivedCloseCode(_ code: UInt16) -> Bool {
        switch code {
        case 1000...1003, 1007...1014, 3000...4999: return true
        default: return false
        }
    }
}
