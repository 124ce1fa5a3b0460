// RFC 6455 §5.2 base framing:
//
//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +-+-+-+-+-------+-+-------------+-------------------------------+
//  |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
//  |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
//  |N|V|V|V|       |S|             |   (if payload len==126/127)   |
//  | |1|2|3|       |K|             |                               |
//  +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
//  |     Extended payload length continued, if payload len == 127  |
//  + - - - - - - - - - - - - - - - +-------------------------------+
//  |                               |Masking-key, if MASK set to 1  |
//  +-------------------------------+-------------------------------+
//  | Masking-key (continued)       |          Payload Data         |
//  +-------------------------------- - - - - - - - - - - - - - - - +
//  :                     Payload Data continued ...                :
//  +---------------------------------------------------------------+

/// The opcodes defined by RFC 6455 §5.2. Every other value is reserved and rejected.
public enum WebSocketOpcode: UInt8, Sendable {
    case continuation = 0x0
    case text = 0x1
    case binary = 0x2
    case close = 0x8
    case ping = 0x9
    case pong = 0xA

    /// RFC 6455 §5.5: opcodes with the most significant bit set are control frames.
    public var isControl: Bool { rawValue & 0x8 != 0 }
}

/// Which end of the connection we are. RFC 6455 §5.1: a client masks every frame it sends,
/// a server masks none, and each side closes the connection when the other gets it wrong.
public enum WebSocketRole: Sendable {
    /// Expects masked frames from its peer and sends unmasked ones.
    case server
    /// Expects unmasked frames from its peer and sends masked ones.
    case client
}

/// The 4-byte masking key of RFC 6455 §5.3, in wire order.
public typealias WebSocketMaskingKey = (UInt8, UInt8, UInt8, UInt8)

/// One frame as it came off the wire, with its payload already unmasked.
public struct WebSocketFrame: Sendable, Equatable {
    public var fin: Bool
    /// RSV1–RSV3 as a 3-bit value (RSV1 is 0b100). Always 0 without negotiated extensions.
    public var rsv: UInt8
    public var opcode: WebSocketOpcode
    public var payload: [UInt8]

    public init(fin: Bool = true, rsv: UInt8 = 0, opcode: WebSocketOpcode, payload: [UInt8]) {
        self.fin = fin
        self.rsv = rsv
        self.opcode = opcode
        self.payload = payload
    }
}
