#if canImport(Glibc)
import Glibc
#endif

/// A non-blocking listening socket on a loop. Accepts until EAGAIN; on EMFILE/ENFILE it stops
/// watching and retries from a timer instead of spinning (STYLE.md).
public final class TCPListener: IOHandler, @unchecked Sendable {
    public let loop: EventLoop
    private let fd: Int32
    private var registration: (any IORegistration)?
    private var backoff: ScheduledTask?
    private let onAccept: (TCPConnection) -> Void
    public let address: SocketAddress

    /// Binds and listens. Accepted connections live on this loop, where `onAccept` runs: the
    /// hot path (upstream frame in, client frames out) stays on one loop. Call on `loop`.
    public init(
        address: SocketAddress, loop: EventLoop, backlog: Int32 = 1024,
        onAccept: @escaping (TCPConnection) -> Void
    ) throws(SystemError) {
        self.loop = loop
        self.onAccept = onAccept
        let fd = socket(address.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError("socket", errno: errno) }
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        if address.withSockAddr({ bind(fd, $0, $1) }) != 0 {
            let e = errno
            Syscall.close(fd)
            throw SystemError("bind \(address)", errno: e)
        }
        if listen(fd, backlog) != 0 {
            let e = errno
            Syscall.close(fd)
            throw SystemError("listen", errno: e)
        }
        self.fd = fd
        self.address = SocketAddress.local(of: fd) ?? address
    }

    /// Starts accepting. Call on `loop`.
    public func start() {
        loop.assertInEventLoop()
        registration = loop.register(fd: fd, handler: self)
        registration?.setReadInterest(true)
    }

    /// Stops accepting and closes the socket. Idempotent.
    public func stop() {
        backoff?.cancel()
        registration?.close()
        registration = nil
    }

    func readable() {
        // Linux: `source.data` is not a count of pending connections; accept until EAGAIN.
        while registration != nil {
            let accepted: Int32?
            do throws(SystemError) {
                accepted = try Syscall.accept(fd)
            } catch {
                if error.errno == EMFILE || error.errno == ENFILE || error.errno == ENOBUFS || error.errno == ENOMEM {
                    registration?.setReadInterest(false)
                    backoff = loop.schedule(after: .milliseconds(100)) { [weak self] in
                        self?.registration?.setReadInterest(true)
                    }
                }
                return
            }
            guard let cfd = accepted else { return }
            onAccept(TCPConnection(acceptedFD: cfd, loop: loop))
        }
    }

    func writable() {}
}
