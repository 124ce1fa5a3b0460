import TLS
#if canImport(Glibc)
import Glibc
#endif

/// Why a transport connection ended.
public enum TransportCloseReason: Sendable, Equatable, CustomStringConvertible {
    /// We closed it (`close` or `abort`).
    case local
    /// The peer closed its side (read returned 0).
    case peerClosed
    /// A system call failed (ECONNRESET, EPIPE, …).
    case error(SystemError)
    /// TLS failed after the handshake.
    case tls(String)

    public var description: String {
        switch self {
        case .local: return "closed locally"
        case .peerClosed: return "peer closed"
        case .error(let e): return e.description
        case .tls(let s): return "tls: \(s)"
        }
    }
}

public enum TransportError: Error, Sendable, CustomStringConvertible {
    case system(SystemError)
    case tls(TLSError)
    case timeout(String)
    case handshake(String)
    case invalidURL(String)

    public var description: String {
        switch self {
        case .system(let e): return e.description
        case .tls(let e): return "TLS: \(e)"
        case .timeout(let what): return "timed out: \(what)"
        case .handshake(let why): return "handshake failed: \(why)"
        case .invalidURL(let u): return "invalid URL: \(u)"
        }
    }
}

/// A non-blocking TCP byte stream, optionally wrapped in TLS.
///
/// Confined to `loop`: every method must be called there, and every callback runs there.
/// Writes are queued and flushed with vectored `sendmsg` until EAGAIN; the write interest
/// is armed only while something is queued.
public final class TCPConnection: IOHandler, @unchecked Sendable {
    public let loop: EventLoop
    public let peer: SocketAddress?
    let fd: Int32
    private var registration: (any IORegistration)?

    private enum State { case connecting, tlsHandshaking, open, flushingThenClose, halfClosed, closed }
    private var state: State

    private var tls: TLSSession?
    private var plaintextScratch: [UInt8] = []

    // Outbound queue: chunks[head...] with `offset` bytes of chunks[head] already sent.
    private var chunks: [Chunk] = []
    /// A written-out buffer of our own, kept (emptied, capacity intact) for the next
    /// `enqueueCopying`: a connection that keeps up copies its frames without allocating.
    private var spare: [UInt8] = []
    private static let keptSpareCapacity = 256 << 10

    private struct Chunk {
        var bytes: [UInt8]
        /// Our own buffer (filled by `enqueueCopying`), never shared: bytes may be appended
        /// to it in place, and once written it becomes the spare.
        var owned: Bool
    }
    private var head = 0
    private var offset = 0
    /// Bytes queued and not yet accepted by the kernel.
    public private(set) var bufferedBytes = 0

    /// Called with every chunk of (plaintext) bytes read.
    public var onBytes: ((UnsafeRawBufferPointer) -> Void)?
    /// Called once, when the connection is gone.
    public var onClose: ((TransportCloseReason) -> Void)?
    /// Called when the queue of unsent bytes becomes empty after the kernel refused part of it
    /// (EAGAIN): a backlog has drained. Not called for writes that went out at once.
    public var onDrained: (() -> Void)?
    /// The kernel refused queued bytes since the queue was last empty.
    private var backlogged = false

    private var connectCompletion: ((Result<TCPConnection, TransportError>) -> Void)?
    private var connectTimer: ScheduledTask?
    /// Keeps a connecting socket alive: the loop holds its handler weakly and nobody else
    /// has it before `completion` runs.
    private var retainedWhileConnecting: TCPConnection?
    /// Keeps a closing socket alive until `finalClose` has run: once its owner lets go, the
    /// loop holds its handler only weakly, and a half-closed fd nobody holds is never closed
    /// (STYLE.md: whatever drains and closes it must hold it strongly until `close` has run).
    private var retainedWhileClosing: TCPConnection?
    private var lingerTimer: ScheduledTask?

    /// How long `close()` keeps flushing queued bytes to a peer that does not read before it
    /// closes anyway: a stalled peer never holds a descriptor for long.
    public static let flushBeforeCloseTimeout: Duration = .seconds(5)
    /// After our FIN, how long the peer's last bytes are drained before the descriptor is closed
    /// (closing at once could make the kernel reset the connection and destroy a final response).
    public static let drainAfterShutdownTimeout: Duration = .seconds(2)
    /// This connection's two bounds (tests shorten them). Loop-confined.
    public var closeTimeouts = (flush: TCPConnection.flushBeforeCloseTimeout, drain: TCPConnection.drainAfterShutdownTimeout)
    private var readingPaused = false

    /// Wraps an accepted, non-blocking socket. Call `start()` on the loop.
    init(acceptedFD fd: Int32, loop: EventLoop) {
        self.fd = fd
        self.loop = loop
        self.peer = SocketAddress.peer(of: fd)
        self.state = .open
        Syscall.setNoDelay(fd)
    }

    private init(connectingFD fd: Int32, loop: EventLoop, peer: SocketAddress) {
        self.fd = fd
        self.loop = loop
        self.peer = peer
        self.state = .connecting
    }

    func start() {
        loop.assertInEventLoop()
        registration = loop.register(fd: fd, handler: self)
        registration?.setReadInterest(true)
    }

    /// The local address of the socket.
    public var localAddress: SocketAddress? { SocketAddress.local(of: fd) }

    public var isOpen: Bool { state == .open || state == .tlsHandshaking }

    // MARK: connecting

    /// Opens a TCP connection to `address` (and a TLS session when `tls` is given), then calls
    /// `completion` on the loop. Must be called on the loop.
    public static func connect(
        to address: SocketAddress,
        loop: EventLoop,
        tls: (context: TLSContext, serverName: String?)?,
        timeout: Duration,
        completion: @escaping (Result<TCPConnection, TransportError>) -> Void
    ) {
        loop.assertInEventLoop()
        let fd = socket(address.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else {
            completion(.failure(.system(SystemError("socket", errno: errno))))
            return
        }
        Syscall.setNoDelay(fd)
        let rc = address.withSockAddr { Glibc.connect(fd, $0, $1) }
        if rc != 0 && errno != EINPROGRESS {
            let e = errno
            Syscall.close(fd)
            completion(.failure(.system(SystemError("connect \(address)", errno: e))))
            return
        }
        let conn = TCPConnection(connectingFD: fd, loop: loop, peer: address)
        if let tls {
            do throws(TLSError) {
                conn.tls = try TLSSession(context: tls.context, serverName: tls.serverName)
            } catch {
                Syscall.close(fd)
                completion(.failure(.tls(error)))
                return
            }
        }
        conn.connectCompletion = completion
        conn.retainedWhileConnecting = conn
        conn.registration = loop.register(fd: fd, handler: conn)
        conn.registration?.setWriteInterest(true)
        conn.connectTimer = loop.schedule(after: timeout) { [weak conn] in
            conn?.failConnect(.timeout("connect to \(address)"))
        }
    }

    private func failConnect(_ error: TransportError) {
        guard let completion = connectCompletion else { return }
        connectCompletion = nil
        connectTimer?.cancel()
        state = .closed
        registration?.close()
        registration = nil
        completion(.failure(error))
        retainedWhileConnecting = nil
    }

    private func finishConnect() {
        connectTimer?.cancel()
        guard let completion = connectCompletion else { return }
        connectCompletion = nil
        state = .open
        registration?.setReadInterest(!readingPaused)
        completion(.success(self))
        retainedWhileConnecting = nil
    }

    private func connectWritable() {
        let err = Syscall.socketError(fd)
        guard err == 0 else {
            failConnect(.system(SystemError("connect \(peer.map { "\($0)" } ?? "")", errno: err)))
            return
        }
        registration?.setWriteInterest(false)
        if tls != nil {
            state = .tlsHandshaking
            registration?.setReadInterest(true)
            driveTLSHandshake()
        } else {
            finishConnect()
        }
    }

    private func driveTLSHandshake() {
        guard let tls else { return }
        do throws(TLSError) {
            let result = try tls.handshake()
            flushTLSOutput()
            if result == .complete {
                finishConnect()
                // Application data may have arrived with the last handshake record.
                if state == .open { deliverTLSPlaintext() }
            }
        } catch {
            flushTLSOutput()
            failConnect(.tls(error))
        }
    }

    // MARK: IOHandler

    func readable() {
        switch state {
        case .connecting:
            return
        case .closed:
            return
        default:
            break
        }
        let buffer = loop.readBuffer
        // Bounded loop: give other sockets on this loop a turn.
        for _ in 0..<4 {
            let result: IOResult
            do throws(SystemError) {
                result = try Syscall.read(fd, into: buffer)
            } catch {
                if state == .tlsHandshaking { failConnect(.system(error)) } else { finalClose(.error(error)) }
                return
            }
            switch result {
            case .wouldBlock:
                return
            case .eof:
                if state == .tlsHandshaking {
                    failConnect(.handshake("connection closed during TLS handshake"))
                } else {
                    finalClose(state == .halfClosed ? .local : .peerClosed)
                }
                return
            case .processed(let n):
                let chunk = UnsafeRawBufferPointer(rebasing: buffer[0..<n])
                if state == .halfClosed || state == .flushingThenClose {
                    continue // draining: discard what the peer still sends
                }
                if let tls {
                    tls.feedCiphertext(chunk)
                    if state == .tlsHandshaking {
                        driveTLSHandshake()
                    } else {
                        deliverTLSPlaintext()
                    }
                } else {
                    onBytes?(chunk)
                }
                if state == .closed || readingPaused { return }
                if n < buffer.count { return }
            }
        }
    }

    private func deliverTLSPlaintext() {
        guard let tls else { return }
        plaintextScratch.removeAll(keepingCapacity: true)
        do throws(TLSError) {
            let r = try tls.read(into: &plaintextScratch)
            flushTLSOutput()
            if !plaintextScratch.isEmpty {
                plaintextScratch.withUnsafeBytes { onBytes?($0) }
            }
            if r == .closed, state != .closed {
                finalClose(.peerClosed)
            }
        } catch {
            finalClose(.tls(error.description))
        }
    }

    func writable() {
        switch state {
        case .connecting: connectWritable()
        case .closed: return
        default: flush()
        }
    }

    // MARK: writing

    /// Queues bytes and writes what the kernel takes now.
    public func write(_ bytes: [UInt8]) {
        loop.assertInEventLoop()
        guard state == .open, !bytes.isEmpty else { return }
        if tls != nil {
            bytes.withUnsafeBytes { write(copying: $0) }
            return
        }
        enqueue(bytes)
        flush()
    }

    /// Queues several byte arrays (e.g. a frame header and a shared payload) with one flush.
    public func write(_ parts: [UInt8], _ more: [UInt8]) {
        loop.assertInEventLoop()
        guard state == .open else { return }
        if tls != nil {
            write(parts)
            write(more)
            return
        }
        enqueue(parts)
        enqueue(more)
        flush()
    }

    /// Queues without flushing; call `flush()` after a batch.
    public func enqueueWithoutFlush(_ bytes: [UInt8]) {
        loop.assertInEventLoop()
        guard state == .open, !bytes.isEmpty else { return }
        if tls != nil { write(bytes); return }
        enqueue(bytes)
    }

    private func enqueue(_ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        chunks.append(Chunk(bytes: bytes, owned: false))
        bufferedBytes += bytes.count
    }

    /// Queues a copy of `first` followed by `second` without flushing; call `flush()` after a
    /// batch. The bytes go to the end of the last queued buffer when it is our own, otherwise
    /// into the spare buffer: no allocation once the connection's buffers have grown to its
    /// traffic. For small frames sent to many peers (a copy costs less than a shared array).
    public func enqueueCopying(
        _ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer,
        _ third: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0),
        _ fourth: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0)
    ) {
        loop.assertInEventLoop()
        guard state == .open else { return }
        let count = first.count + second.count + third.count + fourth.count
        guard count > 0 else { return }
        if tls != nil {
            if encrypt(first), encrypt(second), encrypt(third), encrypt(fourth) { flushTLSOutput() }
            return
        }
        appendToOwnedTail { bytes in
            bytes.append(contentsOf: first)
            bytes.append(contentsOf: second)
            bytes.append(contentsOf: third)
            bytes.append(contentsOf: fourth)
        }
    }

    /// Queues a copy of `bytes` and writes what the kernel takes now.
    public func write(copying bytes: UnsafeRawBufferPointer) {
        loop.assertInEventLoop()
        guard state == .open, !bytes.isEmpty else { return }
        if tls != nil {
            if encrypt(bytes) { flushTLSOutput() }
            return
        }
        enqueueCopying(bytes, UnsafeRawBufferPointer(start: nil, count: 0))
        flush()
    }

    /// Hands plaintext to TLS (records come out in `flushTLSOutput`); on failure the
    /// connection is closed and the answer is false.
    private func encrypt(_ plaintext: UnsafeRawBufferPointer) -> Bool {
        guard let tls, !plaintext.isEmpty else { return tls != nil }
        do throws(TLSError) {
            _ = try tls.write(plaintext)
            return true
        } catch {
            finalClose(.tls(error.description))
            return false
        }
    }

    /// Lets `fill` append to the last queued buffer when it is our own, else to the spare
    /// buffer queued as a new chunk; counts what it appended.
    private func appendToOwnedTail(_ fill: (inout [UInt8]) -> Void) {
        if let last = chunks.indices.last, last >= head, chunks[last].owned {
            let before = chunks[last].bytes.count
            fill(&chunks[last].bytes)
            bufferedBytes += chunks[last].bytes.count - before
        } else {
            var bytes: [UInt8] = []
            swap(&bytes, &spare)
            fill(&bytes)
            guard !bytes.isEmpty else {
                swap(&bytes, &spare)
                return
            }
            bufferedBytes += bytes.count
            chunks.append(Chunk(bytes: consume bytes, owned: true))
        }
    }

    private func flushTLSOutput() {
        guard let tls, tls.hasPendingCiphertext else { return }
        // Records go into our own reusable buffer, like plaintext frames: no array per write.
        appendToOwnedTail { tls.takeCiphertext(appendingTo: &$0) }
        flush()
    }

    /// Writes queued bytes until the queue is empty or the kernel says EAGAIN.
    public func flush() {
        loop.assertInEventLoop()
        guard state != .closed, state != .connecting else { return }
        let maxIOV = 64
        while head < chunks.count {
            let count = min(maxIOV, chunks.count - head)
            let result: IOResult
            do throws(SystemError) {
                result = try withIOVecs(count: count) { iov throws(SystemError) in try Syscall.sendmsg(fd, iov) }
            } catch {
                finalClose(.error(error))
                return
            }
            switch result {
            case .wouldBlock, .eof:
                backlogged = true
                registration?.setWriteInterest(true)
                return
            case .processed(var n):
                bufferedBytes -= n
                while n > 0 {
                    let remaining = chunks[head].bytes.count - offset
                    if n >= remaining {
                        n -= remaining
                        if chunks[head].owned, chunks[head].bytes.capacity <= Self.keptSpareCapacity,
                           chunks[head].bytes.capacity > spare.capacity {
                            swap(&spare, &chunks[head].bytes)
                            spare.removeAll(keepingCapacity: true)
                        }
                        chunks[head] = Chunk(bytes: [], owned: false)
                        head += 1
                        offset = 0
                    } else {
                        offset += n
                        n = 0
                    }
                }
            }
        }
        // Everything written.
        chunks.removeAll(keepingCapacity: chunks.capacity <= 1024)
        head = 0
        offset = 0
        registration?.setWriteInterest(false)
        if state == .flushingThenClose {
            beginHalfClose()
        } else if backlogged {
            backlogged = false
            onDrained?()
        }
    }

    private func withIOVecs<R>(count: Int, _ body: (UnsafeMutableBufferPointer<iovec>) throws(SystemError) -> R) throws(SystemError) -> R {
        try withUnsafeTemporaryAllocation(of: iovec.self, capacity: count) { iov throws(SystemError) -> R in
            // The arrays stay alive in `chunks` for the duration of the call.
            for i in 0..<count {
                let idx = head + i
                let skip = i == 0 ? offset : 0
                chunks[idx].bytes.withUnsafeBytes { raw in
                    iov[i] = iovec(iov_base: UnsafeMutableRawPointer(mutating: raw.baseAddress! + skip), iov_len: raw.count - skip)
                }
            }
            return try body(iov)
        }
    }

    /// Drops every queued byte not yet partly written (a slow consumer's backlog), so that a
    /// close frame queued next goes out as soon as the peer reads again.
    public func abortQueue() {
        loop.assertInEventLoop()
        // Queued TLS records cannot be dropped without breaking the stream.
        guard tls == nil, head < chunks.count else { return }
        let keep = offset > 0 ? 1 : 0
        let dropped = chunks[(head + keep)...].reduce(0) { $0 + $1.bytes.count }
        chunks.removeSubrange((head + keep)...)
        bufferedBytes -= dropped
    }

    // MARK: flow control

    /// Stops reading (backpressure: the peer we forward to is full).
    public func pauseReading() {
        loop.assertInEventLoop()
        guard !readingPaused else { return }
        readingPaused = true
        if state == .open { registration?.setReadInterest(false) }
    }

    public func resumeReading() {
        loop.assertInEventLoop()
        guard readingPaused else { return }
        readingPaused = false
        if state == .open { registration?.setReadInterest(true) }
    }

    // MARK: closing

    /// Graceful close: flush what is queued, send FIN, drain the peer briefly, then close.
    /// STYLE.md: closing right after a final response would let the kernel reset it.
    public func close() {
        loop.assertInEventLoop()
        switch state {
        case .open, .tlsHandshaking:
            tls?.shutdown()
            flushTLSOutput()
            if state == .closed { return }
            retainedWhileClosing = self
            if bufferedBytes > 0 {
                state = .flushingThenClose
                lingerTimer = loop.schedule(after: closeTimeouts.flush) { [weak self] in self?.finalClose(.local) }
            } else {
                beginHalfClose()
            }
        case .connecting:
            failConnect(.handshake("closed before connected"))
        default:
            return
        }
    }

    private func beginHalfClose() {
        state = .halfClosed
        Syscall.shutdownWrite(fd)
        registration?.setReadInterest(true)
        lingerTimer?.cancel()
        lingerTimer = loop.schedule(after: closeTimeouts.drain) { [weak self] in self?.finalClose(.local) }
    }

    /// Abrupt close: RST, nothing flushed.
    public func abort() {
        loop.assertInEventLoop()
        guard state != .closed else { return }
        if state == .connecting || connectCompletion != nil {
            failConnect(.handshake("aborted"))
            return
        }
        Syscall.setLingerZero(fd)
        finalClose(.local)
    }

    private func finalClose(_ reason: TransportCloseReason) {
        guard state != .closed else { return }
        if connectCompletion != nil {
            failConnect(.handshake(reason.description))
            return
        }
        state = .closed
        lingerTimer?.cancel()
        registration?.close()
        registration = nil
        chunks = []
        spare = []
        head = 0
        offset = 0
        bufferedBytes = 0
        let cb = onClose
        onClose = nil
        onBytes = nil
        onDrained = nil
        cb?(reason)
        retainedWhileClosing = nil
    }
}
