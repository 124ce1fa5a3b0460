import Synchronization
import TLS
import WebSocket

/// How a WebSocket connection ended, as the application sees it.
public struct WebSocketCloseEvent: Sendable, Equatable, CustomStringConvertible {
    /// The close code that ended it: the peer's when it started the handshake, ours when we
    /// did, 1006 (RFC 6455 §7.1.5) when the transport went away without a close frame.
    public let code: UInt16
    public let reason: String
    /// True when this side decided to close (including protocol errors we detected).
    public let initiatedLocally: Bool

    public init(code: UInt16, reason: String, initiatedLocally: Bool) {
        self.code = code
        self.reason = reason
        self.initiatedLocally = initiatedLocally
    }

    public var description: String {
        "\(code)\(reason.isEmpty ? "" : " \(reason)")\(initiatedLocally ? " (local)" : " (remote)")"
    }
}

/// Limits of one WebSocket connection; every limit has a name and a default.
public struct WebSocketLimits: Sendable {
    /// Largest single frame accepted (checked from the header, before buffering).
    public var maxFrameBytes: Int
    /// Largest reassembled message (SPEC §6.1: `limits.max_message_bytes`, close 1009).
    public var maxMessageBytes: Int
    /// Unsent outbound bytes after which the peer is a slow consumer (SPEC §8, close 1008).
    public var maxBufferedBytes: Int
    /// How long to wait for the peer's close frame or TCP close after we sent ours.
    public var closeTimeout: Duration
    /// How long a frame, or a fragmented message, may stay incomplete: a peer that half-sends
    /// one and stops holds its buffer only this long, then is closed with 1008 (SPEC §8).
    public var partialMessageTimeout: Duration
    /// After this long without a byte from the peer, a ping goes out; without a byte for as long
    /// again, the connection is closed with 1001 (a peer that vanished, SPEC §8). Nil: never.
    public var idleTimeout: Duration?

    public static let defaultPartialMessageTimeout: Duration = .seconds(10)
    public static let defaultIdleTimeout: Duration = .seconds(60)

    public init(
        maxFrameBytes: Int = 1 << 20, maxMessageBytes: Int = 1 << 20,
        maxBufferedBytes: Int = 16 << 20, closeTimeout: Duration = .seconds(3),
        partialMessageTimeout: Duration = defaultPartialMessageTimeout, idleTimeout: Duration? = defaultIdleTimeout
    ) {
        self.maxFrameBytes = maxFrameBytes
        self.maxMessageBytes = maxMessageBytes
        self.maxBufferedBytes = maxBufferedBytes
        self.closeTimeout = closeTimeout
        self.partialMessageTimeout = partialMessageTimeout
        self.idleTimeout = idleTimeout
    }
}

private let connectionIDs = Atomic<UInt64>(0)

/// An RFC 6455 connection (either role) over a `TCPConnection`.
///
/// Confined to `loop`: every method must be called there and every callback runs there.
/// Text messages only (Deribit's API is text): binary messages close with 1003.
public final class WebSocketConnection: @unchecked Sendable {
    public let id: UInt64
    public let role: WebSocketRole
    public let tcp: TCPConnection
    public var loop: EventLoop { tcp.loop }
    public let limits: WebSocketLimits

    private var parser: WebSocketFrameParser
    /// Payload storage for the frame being read, handed to `onText` without a copy.
    private var frameStorage: [UInt8] = []
    private static let keptFrameStorage = 64 << 10
    private var assembler: WebSocketMessageAssembler
    private var machine: WebSocketConnectionStateMachine
    private var closeTimer: ScheduledTask?
    private var partialTimer: ScheduledTask?
    /// Since when a frame or a fragmented message has been incomplete.
    private var partialSince: UInt64?
    private var idleTimer: ScheduledTask?
    /// When the peer last sent a byte, and whether the idle ping is out.
    private var lastReceivedAt: UInt64 = 0
    private var idlePingSent = false
    private var closeEvent: WebSocketCloseEvent?
    private var finished = false

    /// A complete text message (payload bytes, valid UTF-8).
    public var onText: ((WebSocketConnection, [UInt8]) -> Void)?
    /// Called once when the connection is gone.
    public var onClose: ((WebSocketConnection, WebSocketCloseEvent) -> Void)?
    /// Called when a backlog (bytes the kernel could not take at once) has been written out.
    public var onDrained: ((WebSocketConnection) -> Void)?
    /// Called after every message of one read from the socket was delivered: a relay that
    /// queued frames with `enqueueEncodedFrame` flushes them here, one write per peer.
    public var onReadBatchEnd: ((WebSocketConnection) -> Void)?

    /// Bytes queued for this peer and not yet written.
    public var bufferedBytes: Int { tcp.bufferedBytes }
    public var isOpen: Bool { machine.canSendData && !finished }

    init(tcp: TCPConnection, role: WebSocketRole, limits: WebSocketLimits, initialBytes: [UInt8]) {
        self.id = connectionIDs.add(1, ordering: .relaxed).newValue
        self.tcp = tcp
        self.role = role
        self.limits = limits
        parser = WebSocketFrameParser(role: role, maxFrameSize: limits.maxFrameBytes, maxMessageSize: limits.maxMessageBytes)
        assembler = WebSocketMessageAssembler(maxMessageSize: limits.maxMessageBytes, acceptBinary: false)
        machine = WebSocketConnectionStateMachine(role: role)
        tcp.onBytes = { [weak self] bytes in self?.received(bytes) }
        tcp.onClose = { [weak self] reason in self?.transportClosed(reason) }
        tcp.onDrained = { [weak self] in
            guard let self else { return }
            self.onDrained?(self)
        }
        if !initialBytes.isEmpty {
            parser.feed(initialBytes)
        }
    }

    /// A connection dropped by its owner without a close is aborted, so its fd never leaks.
    deinit {
        if !finished {
            tcp.onBytes = nil
            tcp.onClose = nil
            tcp.onDrained = nil
            let tcp = self.tcp
            tcp.loop.execute { tcp.abort() }
        }
    }

    /// Processes bytes that arrived together with the handshake. Call once callbacks are set.
    public func start() {
        loop.assertInEventLoop()
        lastReceivedAt = monotonicNanos()
        armIdleTimer()
        if parser.bufferedByteCount > 0 { processFrames() }
        checkPartial()
    }

    // MARK: receiving

    private func received(_ bytes: UnsafeRawBufferPointer) {
        if limits.idleTimeout != nil {
            lastReceivedAt = monotonicNanos()
            idlePingSent = false
        }
        parser.feed(bytes)
        processFrames()
        checkPartial()
        onReadBatchEnd?(self)
    }

    // MARK: timeouts (SPEC §8)

    /// A frame or a fragmented message left incomplete gets `partialMessageTimeout` to finish.
    /// Reads that end mid-frame are common under load, so this only notes since when; one
    /// timer at a time checks it (no timer is made or cancelled per read).
    private func checkPartial() {
        let partial = !finished && (parser.bufferedByteCount > 0 || assembler.isAssemblingMessage)
        if !partial {
            partialSince = nil
        } else if partialSince == nil {
            partialSince = monotonicNanos()
            if partialTimer == nil { armPartialTimer() }
        }
    }

    private func armPartialTimer() {
        guard let since = partialSince else { return }
        let due = since &+ limits.partialMessageTimeout.nanoseconds
        let now = monotonicNanos()
        partialTimer = loop.schedule(after: .nanoseconds(Int64(due > now ? due - now : 0))) { [weak self] in
            guard let self, !self.finished else { return }
            self.partialTimer = nil
            guard let since = self.partialSince else { return }  // completed meanwhile
            if monotonicNanos() &- since >= self.limits.partialMessageTimeout.nanoseconds {
                self.closeForPolicy(code: 1008, reason: "message incomplete for too long")
            } else {
                self.armPartialTimer()  // a newer partial frame: its own time
            }
        }
    }

    private func armIdleTimer() {
        guard let idle = limits.idleTimeout, !finished else { return }
        idleTimer?.cancel()
        let due = lastReceivedAt &+ idle.nanoseconds
        let now = monotonicNanos()
        idleTimer = loop.schedule(after: .nanoseconds(Int64(due > now ? due - now : 0))) { [weak self] in
            self?.idleTimerFired()
        }
    }

    private func idleTimerFired() {
        guard let idle = limits.idleTimeout, !finished else { return }
        if monotonicNanos() &- lastReceivedAt < idle.nanoseconds {
            armIdleTimer()  // the peer spoke meanwhile
        } else if !idlePingSent {
            // RFC 6455 §5.5.2: any peer answers a ping with a pong.
            idlePingSent = true
            writeFrame(.ping, [])
            lastReceivedAt = monotonicNanos()
            armIdleTimer()
        } else {
            closeForPolicy(code: 1001, reason: "idle timeout")
        }
    }

    private func closeForPolicy(code: UInt16, reason: String) {
        if closeEvent == nil { closeEvent = WebSocketCloseEvent(code: code, reason: reason, initiatedLocally: true) }
        perform(machine.sendClose(code: code, reason: reason))
        if machine.state != .open { tcp.close() }
    }

    private func processFrames() {
        defer {
            // A huge message's storage is not kept for the small ones that follow.
            if frameStorage.capacity > Self.keptFrameStorage { frameStorage = [] }
        }
        while !finished {
            let message: WebSocketMessage
            do throws(WebSocketProtocolError) {
                // The payload lands in `frameStorage`, reused from frame to frame: a message the
                // application does not keep costs no allocation (steady-state fan-out).
                guard let frame = try parser.next(reusing: &frameStorage) else { return }
                guard let m = try assembler.receive(frame) else { continue }
                message = m
            } catch {
                fail(error)
                return
            }
            if case .close(let code, let reason) = message, closeEvent == nil {
                closeEvent = WebSocketCloseEvent(code: code ?? 1005, reason: reason, initiatedLocally: false)
            }
            perform(machine.receivedMessage(message))
        }
    }

    private func fail(_ error: WebSocketProtocolError) {
        if closeEvent == nil {
            closeEvent = WebSocketCloseEvent(code: error.closeCode, reason: "\(error)", initiatedLocally: true)
        }
        perform(machine.protocolError(error))
    }

    private func perform(_ action: WebSocketConnectionStateMachine.Action) {
        switch action {
        case .deliverText(let bytes):
            onText?(self, bytes)
        case .deliverBinary:
            break  // unreachable: the assembler refuses binary (1003)
        case .sendPong(let payload):
            writeFrame(.pong, payload)
        case .sendClose(let code, let reason):
            writeFrame(.close, WebSocketFrameEncoder.closePayload(code: code, reason: reason))
            armCloseTimer()
        case .sendCloseThenCloseTransport(let code, let reason):
            writeFrame(.close, WebSocketFrameEncoder.closePayload(code: code, reason: reason))
            tcp.close()
            armCloseTimer()
        case .closeTransport:
            tcp.close()
            armCloseTimer()
        case .awaitTransportClose:
            armCloseTimer()
        case .ignore:
            break
        }
    }

    private func armCloseTimer() {
        guard closeTimer == nil else { return }
        closeTimer = loop.schedule(after: limits.closeTimeout) { [weak self] in
            guard let self, !self.finished else { return }
            _ = self.machine.closeTimerFired()
            self.tcp.abort()
        }
    }

    private func transportClosed(_ reason: TransportCloseReason) {
        guard !finished else { return }
        finished = true
        closeTimer?.cancel()
        partialTimer?.cancel()
        idleTimer?.cancel()
        _ = machine.transportClosed()
        let event = closeEvent ?? WebSocketCloseEvent(code: 1006, reason: reason.description, initiatedLocally: false)
        let cb = onClose
        onClose = nil
        onText = nil
        onDrained = nil
        onReadBatchEnd = nil
        cb?(self, event)
    }

    // MARK: sending

    private var maskingKey: WebSocketMaskingKey? {
        guard role == .client else { return nil }
        // RFC 6455 §5.3: a fresh, unpredictable key for every frame a client sends, from the
        // system's strong source, fetched in blocks so that a frame costs no system call.
        if maskingEntropyIndex == maskingEntropy.count {
            // 256 keys from OpenSSL's CSPRNG at once (SystemRandomNumberGenerator would make one
            // getrandom(2) per key: strace showed one system call per forwarded request).
            let bytes = Crypto.randomBytes(256 * 4)
            maskingEntropy = bytes.withUnsafeBytes { Array($0.bindMemory(to: UInt32.self)) }
            maskingEntropyIndex = 0
        }
        let r = maskingEntropy[maskingEntropyIndex]
        maskingEntropyIndex += 1
        return (UInt8(r >> 24), UInt8(truncatingIfNeeded: r >> 16), UInt8(truncatingIfNeeded: r >> 8), UInt8(truncatingIfNeeded: r))
    }

    /// Empty until the first client frame: server connections never pay for it.
    private var maskingEntropy: [UInt32] = []
    private var maskingEntropyIndex = 0

    private func writeFrame(_ opcode: WebSocketOpcode, _ payload: [UInt8]) {
        if role == .server, payload.count > 4096 {
            // Header and payload as two iovecs: the payload is not copied.
            tcp.write(WebSocketFrameEncoder.header(opcode: opcode, payloadLength: payload.count), payload)
        } else {
            // Framed (and, as a client, masked) in a buffer reused from frame to frame, then
            // copied into the connection's own write buffer: no allocation per frame.
            WebSocketFrameEncoder.encode(opcode: opcode, payload: payload, maskingKey: maskingKey, into: &frameScratch)
            frameScratch.withUnsafeBytes { tcp.write(copying: $0) }
            if frameScratch.capacity > Self.keptFrameStorage { frameScratch = [] }
        }
        checkSlowConsumer()
    }

    /// Where `writeFrame` builds a frame before it is copied into the write buffer.
    private var frameScratch: [UInt8] = []

    /// Sends one text message.
    public func sendText(_ payload: [UInt8]) {
        loop.assertInEventLoop()
        guard isOpen else { return }
        writeFrame(.text, payload)
    }

    /// Queues an already-encoded server frame (see `WebSocketConnection.encodeTextFrame`).
    /// The same array can be queued to many connections: it is never copied.
    public func sendEncodedFrame(_ frame: [UInt8]) {
        loop.assertInEventLoop()
        guard isOpen else { return }
        precondition(role == .server, "clients must mask each frame")
        tcp.write(frame)
        checkSlowConsumer()
    }

    /// Like `sendEncodedFrame` without flushing; call `flush()` after a batch.
    public func enqueueEncodedFrame(_ frame: [UInt8]) {
        loop.assertInEventLoop()
        guard isOpen else { return }
        tcp.enqueueWithoutFlush(frame)
        checkSlowConsumer()
    }

    /// Queues one text message as a server frame without flushing (call `flush()` after the
    /// batch): header and payload are copied into this connection's own reusable buffer, so a
    /// notification fanned out to many clients costs no allocation per client or per frame.
    public func enqueueText(_ payload: UnsafeRawBufferPointer) {
        loop.assertInEventLoop()
        guard isOpen else { return }
        enqueueTextFrame(payload)
        checkSlowConsumer()
    }

    /// Sends `message` with `range` replaced by `replacement` (a response with the client's own
    /// id spliced back in) as one server text frame: the pieces are copied straight into the
    /// connection's write buffer, with no intermediate message or frame array.
    public func sendText(_ message: [UInt8], replacing range: Range<Int>, with replacement: [UInt8]) {
        loop.assertInEventLoop()
        guard isOpen else { return }
        message.withUnsafeBytes { m in
            replacement.withUnsafeBytes { r in
                enqueueTextFrame(UnsafeRawBufferPointer(rebasing: m[..<range.lowerBound]), r,
                                 UnsafeRawBufferPointer(rebasing: m[range.upperBound...]))
            }
        }
        tcp.flush()
        checkSlowConsumer()
    }

    /// Queues one server text frame whose payload is the concatenation of the parts: the
    /// header (at most 10 bytes, RFC 6455 §5.2) is built on the stack.
    private func enqueueTextFrame(
        _ first: UnsafeRawBufferPointer,
        _ second: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0),
        _ third: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0)
    ) {
        precondition(role == .server, "clients must mask each frame")
        var header: (UInt64, UInt64) = (0, 0)
        withUnsafeMutableBytes(of: &header) { h in
            let n = WebSocketFrameEncoder.writeHeader(into: h, opcode: .text, payloadLength: first.count + second.count + third.count)
            tcp.enqueueCopying(UnsafeRawBufferPointer(rebasing: h[..<n]), first, second, third)
        }
    }

    public func flush() {
        loop.assertInEventLoop()
        tcp.flush()
    }

    /// Encodes a server-role text frame once, to be queued to any number of connections.
    public static func encodeTextFrame(_ payload: [UInt8]) -> [UInt8] {
        WebSocketFrameEncoder.encode(opcode: .text, payload: payload)
    }

    private func checkSlowConsumer() {
        // SPEC §8: a peer whose unsent data passes the limit is closed with 1008; nobody waits for it.
        if tcp.bufferedBytes > limits.maxBufferedBytes, !finished {
            closeEvent = closeEvent ?? WebSocketCloseEvent(code: 1008, reason: "slow consumer", initiatedLocally: true)
            // Its queue is not going to drain: send the close frame in place of the backlog.
            tcp.abortQueue()
            perform(machine.sendClose(code: 1008, reason: "slow consumer"))
            if !finished { tcp.close() }
        }
    }

    /// Starts the close handshake (RFC 6455 §7.1.2).
    public func close(code: UInt16 = 1000, reason: String = "") {
        loop.assertInEventLoop()
        guard !finished else { return }
        if closeEvent == nil {
            closeEvent = WebSocketCloseEvent(code: code, reason: reason, initiatedLocally: true)
        }
        let action = machine.sendClose(code: code, reason: reason)
        perform(action)
        if role == .server, case .sendClose = action {
            // We will close TCP when the peer's close frame arrives, or at the timer.
        }
    }

    /// Closes the TCP connection at once, without a close frame.
    public func abort(reason: String = "aborted") {
        loop.assertInEventLoop()
        guard !finished else { return }
        if closeEvent == nil {
            closeEvent = WebSocketCloseEvent(code: 1006, reason: reason, initiatedLocally: true)
        }
        tcp.abort()
    }

    /// Stops reading from this peer (backpressure).
    public func pauseReading() {
        loop.assertInEventLoop()
        tcp.pauseReading()
    }
    public func resumeReading() {
        loop.assertInEventLoop()
        tcp.resumeReading()
    }
}
