import CEpoll
import Logging
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A failed system call: its name and `errno`. Never sent to a peer.
public struct SystemError: Error, CustomStringConvertible, Sendable, Equatable {
    public let syscall: String
    public let errno: Int32

    public init(_ syscall: String, errno: Int32) {
        self.syscall = syscall
        self.errno = errno
    }

    public var description: String {
        "\(syscall): \(String(cString: strerror(errno))) (errno \(errno))"
    }
}

/// The outcome of a non-blocking read or write. STYLE.md habit 6: EAGAIN is a value.
enum IOResult: Equatable {
    case processed(Int)
    case wouldBlock
    case eof
}

/// Where the syscall layer reports the bugs it catches in release builds; no logger is
/// injected this deep, and these lines should never appear.
private let syscallLogger = Logger(label: "transport.syscall")

/// Thin wrappers over the socket calls. EINTR is retried inside (never for `close`).
enum Syscall {
    static func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) throws(SystemError) -> IOResult {
        while true {
            let n = Glibc.read(fd, buffer.baseAddress, buffer.count)
            // read() == 0 is EOF, checked before errno.
            if n > 0 { return .processed(n) }
            if n == 0 { return .eof }
            let e = Glibc.errno
            if e == EINTR { continue }
            if e == EAGAIN || e == EWOULDBLOCK { return .wouldBlock }
            throw SystemError("read", errno: e)
        }
    }

    /// Vectored send with `MSG_NOSIGNAL`, so a peer that went away is an EPIPE, not a signal.
    static func sendmsg(_ fd: Int32, _ iov: UnsafeMutableBufferPointer<iovec>) throws(SystemError) -> IOResult {
        var header = msghdr()
        header.msg_iov = iov.baseAddress
        header.msg_iovlen = iov.count
        while true {
            let n = Glibc.sendmsg(fd, &header, Int32(MSG_NOSIGNAL))
            if n >= 0 { return .processed(n) }
            let e = Glibc.errno
            if e == EINTR { continue }
            if e == EAGAIN || e == EWOULDBLOCK { return .wouldBlock }
            throw SystemError("sendmsg", errno: e)
        }
    }

    static func accept(_ fd: Int32) throws(SystemError) -> Int32? {
        while true {
            let c = cepoll_accept_nonblock(fd)
            if c >= 0 { return c }
            let e = Glibc.errno
            if e == EINTR || e == ECONNABORTED { continue }
            if e == EAGAIN || e == EWOULDBLOCK { return nil }
            throw SystemError("accept4", errno: e)
        }
    }

    /// Closes `fd`. EBADF is a bug in the caller (a double close, or a descriptor it does not
    /// own, which may by now belong to libdispatch or another connection): a debug build stops
    /// here, a release build logs it. Other errors are ignored: on Linux the descriptor is
    /// released whatever `close` returns.
    static func close(_ fd: Int32) {
        guard let e = closeReportingError(fd), e == EBADF else { return }
        assertionFailure("close(\(fd)): EBADF, a double close or a descriptor this code does not own")
        syscallLogger.error("close: EBADF, a double close or a descriptor this code does not own", metadata: ["fd": "\(fd)"])
    }

    /// `close(fd)` once, returning `errno` when it failed. Never retried on EINTR: the
    /// descriptor is gone either way on Linux, and a retry could close one reused meanwhile.
    static func closeReportingError(_ fd: Int32) -> Int32? {
        Glibc.close(fd) == 0 ? nil : Glibc.errno
    }

    static func setNoDelay(_ fd: Int32) {
        var one: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    /// Linger 0: `close` sends RST instead of FIN. Used for abrupt drops.
    static func setLingerZero(_ fd: Int32) {
        var l = linger(l_onoff: 1, l_linger: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, socklen_t(MemoryLayout<linger>.size))
    }

    static func shutdownWrite(_ fd: Int32) {
        _ = Glibc.shutdown(fd, Int32(SHUT_WR))
    }

    static func socketError(_ fd: Int32) -> Int32 {
        var err: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        if getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 { return Glibc.errno }
        return err
    }
}

/// Ignore SIGPIPE process-wide. Writes use MSG_NOSIGNAL too; this covers anything else.
public func ignoreSIGPIPE() {
    _ = signal(SIGPIPE, SIG_IGN)
}
