/// The close handshake of RFC 6455 §5.5.1 and §7, as decisions: each method is an event,
/// each returns the one thing the connection must do. No I/O happens here.
///
/// Who closes TCP (RFC 6455 §7.1.1): the server, so that it and not the client holds
/// TIME_WAIT. A server closes the transport once it has both sent and received a close
/// frame; a client, in that situation, waits for the server to close it and closes it
/// itself only when its close timer fires. Failing the connection (§7.1.7) closes the
/// transport at once on either side.
///
///     open ──sendClose──────────▶ closeSent ──peer's close──▶ closed
///       │                                                       ▲
///       └──peer's close (reply with a close)────────────────────┘
public struct WebSocketConnectionStateMachine: Sendable {
    public enum State: Sendable, Equatable {
        /// Messages flow both ways.
        case open
        /// We sent a close frame and wait for the peer's. We send nothing more (§5.5.1).
        case closeSent
        /// Both close frames went by, or the connection failed: only the TCP close is left.
        case closed
    }

    public enum Action: Sendable, Equatable {
        /// Hand a complete text message to the application.
        case deliverText([UInt8])
        /// Hand a complete binary message to the application.
        case deliverBinary([UInt8])
        /// RFC 6455 §5.5.2: answer a ping with a pong carrying the same payload.
        case sendPong([UInt8])
        /// Write this close frame and keep reading: a close frame from the peer, or (client)
        /// the server's TCP close, is expected. Arm the close timer.
        case sendClose(code: UInt16, reason: String)
        /// Write this close frame, then close the transport once it is flushed.
        case sendCloseThenCloseTransport(code: UInt16, reason: String)
        /// Close the transport now (after flushing what is already queued).
        case closeTransport
        /// Client only: the close handshake is done; wait for the server to close TCP,
        /// bounded by the close timer (RFC 6455 §7.1.1).
        case awaitTransportClose
        /// Nothing to do.
        case ignore
    }

    public let role: WebSocketRole
    public private(set) var state: State = .open

    public init(role: WebSocketRole) {
        self.role = role
    }

    /// RFC 6455 §5.5.1: no data frames after a close frame has been sent.
    public var canSendData: Bool { state == .open }

    /// A message came out of the assembler.
    public mutating func receivedMessage(_ message: WebSocketMessage) -> Action {
        switch (state, message) {
        case (.closed, _):
            return .ignore

        // Data the peer sent before it saw our close is still the peer's data.
        case (.open, .text(let bytes)), (.closeSent, .text(let bytes)):
            return .deliverText(bytes)
        case (.open, .binary(let bytes)), (.closeSent, .binary(let bytes)):
            return .deliverBinary(bytes)

        case (.open, .ping(let payload)):
            return .sendPong(payload)
        case (.closeSent, .ping):
            return .ignore  // nothing may follow our close frame
        case (_, .pong):
            return .ignore  // RFC 6455 §5.5.3: an unsolicited pong needs no answer

        case (.open, .close(let code, _)):
            // RFC 6455 §5.5.1: reply with a close, echoing the status code received.
            state = .closed
            let reply = code ?? 1000
            switch role {
            case .server: return .sendCloseThenCloseTransport(code: reply, reason: "")
            case .client: return .sendClose(code: reply, reason: "")
            }
        case (.closeSent, .close):
            state = .closed
            switch role {
            case .server: return .closeTransport
            case .client: return .awaitTransportClose
            }
        }
    }

    /// The application wants to close (RFC 6455 §7.1.2, _Start the WebSocket Closing Handshake_).
    public mutating func sendClose(code: UInt16, reason: String = "") -> Action {
        guard state == .open else { return .ignore }
        state = .closeSent
        return .sendClose(code: code, reason: reason)
    }

    /// The parser or assembler threw: _Fail the WebSocket Connection_ (RFC 6455 §7.1.7).
    public mutating func protocolError(_ error: WebSocketProtocolError) -> Action {
        let previous = state
        state = .closed
        switch previous {
        case .open: return .sendCloseThenCloseTransport(code: error.closeCode, reason: "")
        case .closeSent, .closed: return .closeTransport
        }
    }

    /// The peer did not complete the close handshake (or, for a client, close TCP) in time.
    public mutating func closeTimerFired() -> Action {
        guard state != .open else { return .ignore }
        state = .closed
        return .closeTransport
    }

    /// The transport reached EOF or failed. Without a close frame from the peer this is an
    /// abnormal closure (RFC 6455 §7.1.5, code 1006) that the caller may log; either way
    /// nothing is left to send, only our side of the transport to close.
    public mutating func transportClosed() -> Action {
        state = .closed
        return .closeTransport
    }
}
