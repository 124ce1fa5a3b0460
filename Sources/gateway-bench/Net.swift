// Raw loopback sockets for the load generator. The bench drives its own blocking/non-blocking
// sockets from a few threads (a paced sender, poll()-driven readers) so that what it measures is
// the server, not an event loop of the project under test.
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Transport

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

// MARK: - time

/// Sleeps until the CLOCK_MONOTONIC instant `deadline` (ns, as `monotonicNanos()` reads it).
func sleepUntil(_ deadline: UInt64) {
    var ts = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
    while clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nil) == EINTR {}
}

/// The default timer slack (50 µs) would delay every paced send; 1 ns makes sleeps precise.
/// New threads inherit the slack of the thread that creates them, so call this first.
func tightenTimerSlack() {
    if let f = fopen("/proc/self/timerslack_ns", "w") {
        fputs("1", f)
        fclose(f)
    }
}

/// CPU seconds (user + system) used by this process so far.
func selfCPUSeconds() -> Double {
    var u = rusage()
    getrusage(RUSAGE_SELF.rawValue, &u)
    return Double(u.ru_utime.tv_sec) + Double(u.ru_utime.tv_usec) / 1e6 + Double(u.ru_stime.tv_sec) + Double(u.ru_stime.tv_usec) / 1e6
}

/// utime + stime of another process from /proc/PID/stat, seconds.
func processCPUSeconds(_ pid: Int32) -> Double? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = text.lastIndex(of: ")") else { return nil }
    let fields = text[text.index(after: close)...].split(separator: " ")
    // After "(comm)": state is field 3, utime field 14, stime field 15 (1-based in proc(5)).
    guard fields.count > 13, let ut = Double(fields[11]), let st = Double(fields[12]) else { return nil }
    return (ut + st) / Double(sysconf(Int32(_SC_CLK_TCK)))
}

/// VmRSS of a process, bytes.
func processRSS(_ pid: Int32) -> Int? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
    for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        let kb = line.split(separator: " ").compactMap { Int($0) }.first
        return kb.map { $0 * 1024 }
    }
    return nil
}

// MARK: - URLs

struct Endpoint {
    let host: String
    let port: UInt16
    let path: String

    /// `ws://HOST:PORT/PATH` or `http://HOST:PORT/PATH`; HOST must be an IPv4 address.
    init(_ url: String) throws {
        var rest = Substring(url)
        for scheme in ["ws://", "http://"] where rest.hasPrefix(scheme) { rest = rest.dropFirst(scheme.count) }
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let authority = rest[..<slash]
        path = slash == rest.endIndex ? "/" : String(rest[slash...])
        guard let colon = authority.lastIndex(of: ":"), let p = UInt16(authority[authority.index(after: colon)...]) else {
            throw BenchError("bad URL \(url): expected ws://HOST:PORT/PATH")
        }
        host = String(authority[..<colon])
        port = p
    }
}

// MARK: - sockets

func setNonBlocking(_ fd: Int32, _ on: Bool) {
    let flags = fcntl(fd, F_GETFL)
    _ = fcntl(fd, F_SETFL, on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK)
}

func setNoDelay(_ fd: Int32) {
    var one: Int32 = 1
    setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
}

func makeAddress(_ host: String, _ port: UInt16) -> sockaddr_in {
    var a = sockaddr_in()
    a.sin_family = sa_family_t(AF_INET)
    a.sin_port = port.bigEndian
    inet_pton(AF_INET, host == "localhost" ? "127.0.0.1" : host, &a.sin_addr)
    return a
}

/// A blocking TCP connection with TCP_NODELAY.
func connectTCP(_ host: String, _ port: UInt16) throws -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw BenchError("socket: errno \(errno)") }
    var addr = makeAddress(host, port)
    let rc = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard rc == 0 else {
        let e = errno
        close(fd)
        throw BenchError("connect \(host):\(port): errno \(e)")
    }
    setNoDelay(fd)
    return fd
}

/// Writes everything, waiting for POLLOUT when the socket is non-blocking and full.
@discardableResult
func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
    var off = 0
    while off < bytes.count {
        let n = send(fd, bytes.baseAddress! + off, bytes.count - off, Int32(MSG_NOSIGNAL))
        if n > 0 {
            off += n
        } else if n < 0 && (errno == EAGAIN || errno == EINTR) {
            var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            _ = poll(&p, 1, 100)
        } else {
            return false
        }
    }
    return true
}

@discardableResult
func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
    bytes.withUnsafeBytes { writeAll(fd, $0) }
}

/// A tiny HTTP/1.1 exchange on a fresh connection (`Connection: close`); returns status and body.
func httpRequest(_ method: String, host: String = "127.0.0.1", port: UInt16, path: String, body: [UInt8] = [],
                 timeoutMs: Int32 = 5000) throws -> (status: Int, body: String) {
    let fd = try connectTCP(host, port)
    defer { close(fd) }
    var tv = timeval(tv_sec: Int(timeoutMs / 1000), tv_usec: Int(timeoutMs % 1000) * 1000)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    let head = "\(method) \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nConnection: close\r\nContent-Length: \(body.count)\r\n\r\n"
    guard writeAll(fd, Array(head.utf8) + body) else { throw BenchError("write to \(port) failed") }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n <= 0 { break }
        out += buf[0..<n]
    }
    let text = String(decoding: out, as: UTF8.self)
    guard text.hasPrefix("HTTP/1."), let status = Int(text.dropFirst(9).prefix(3)) else {
        throw BenchError("no HTTP response from \(port)\(path)")
    }
    let body = text.range(of: "\r\n\r\n").map { String(text[$0.upperBound...]) } ?? ""
    return (status, body)
}

// MARK: - WebSocket client (RFC 6455, the parts a load generator needs)

/// Opens a WebSocket on a blocking socket; returns the fd (left blocking) and any bytes that
/// arrived after the 101 response.
func openWebSocket(_ ep: Endpoint) throws -> (fd: Int32, extra: [UInt8]) {
    let fd = try connectTCP(ep.host, ep.port)
    let key = Data((0..<16).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
    let request = "GET \(ep.path) HTTP/1.1\r\nHost: \(ep.host):\(ep.port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        + "Sec-WebSocket-Key: \(key)\r\nSec-WebSocket-Version: 13\r\n\r\n"
    guard writeAll(fd, Array(request.utf8)) else { close(fd); throw BenchError("handshake write failed") }
    var got: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 4096)
    var tv = timeval(tv_sec: 10, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    while true {
        let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { close(fd); throw BenchError("handshake: connection closed or timed out (\(ep.host):\(ep.port))") }
        got += buf[0..<n]
        if let end = findHeaderEnd(got) {
            let head = String(decoding: got[0..<end], as: UTF8.self)
            guard head.hasPrefix("HTTP/1.1 101") else {
                close(fd)
                throw BenchError("handshake refused: \(head.prefix(while: { $0 != "\r" }))")
            }
            tv = timeval(tv_sec: 0, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            return (fd, Array(got[(end + 4)...]))
        }
    }
}

func findHeaderEnd(_ b: [UInt8]) -> Int? {
    guard b.count >= 4 else { return nil }
    for i in 0...(b.count - 4) where b[i] == 13 && b[i + 1] == 10 && b[i + 2] == 13 && b[i + 3] == 10 { return i }
    return nil
}

/// A masked client text frame. The masking key comes from a per-thread xorshift: unpredictable
/// enough for a benchmark on loopback (RFC 6455 §5.3 is about proxies of hostile pages).
struct FrameEncoder {
    private var state: UInt64 = UInt64.random(in: 1 ... .max)

    mutating func text(_ payload: [UInt8]) -> [UInt8] {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        let key = UInt32(truncatingIfNeeded: state)
        var out: [UInt8] = []
        out.reserveCapacity(payload.count + 14)
        out.append(0x81)
        if payload.count < 126 {
            out.append(0x80 | UInt8(payload.count))
        } else if payload.count < 65536 {
            out += [0x80 | 126, UInt8(payload.count >> 8), UInt8(payload.count & 0xff)]
        } else {
            out.append(0x80 | 127)
            for s in stride(from: 56, through: 0, by: -8) { out.append(UInt8((UInt64(payload.count) >> UInt64(s)) & 0xff)) }
        }
        let k = [UInt8(key >> 24), UInt8((key >> 16) & 0xff), UInt8((key >> 8) & 0xff), UInt8(key & 0xff)]
        out += k
        for (i, b) in payload.enumerated() { out.append(b ^ k[i & 3]) }
        return out
    }
}

/// Reassembles the server's (unmasked) frames from a byte stream and hands each complete text
/// payload to `onMessage` as a pointer into the receive buffer: no copy, no allocation.
final class FrameReader: @unchecked Sendable {
    let fd: Int32
    private var buffer: UnsafeMutableRawPointer
    private var capacity: Int
    private var start = 0
    private var end = 0
    var closed = false
    var bytesReceived = 0

    init(fd: Int32, initial: [UInt8] = [], capacity: Int = 256 * 1024) {
        self.fd = fd
        self.capacity = Swift.max(capacity, initial.count * 2)
        buffer = UnsafeMutableRawPointer.allocate(byteCount: self.capacity, alignment: 16)
        initial.withUnsafeBytes { buffer.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        end = initial.count
    }

    deinit { buffer.deallocate() }

    /// Reads what the socket has (non-blocking) and delivers complete messages. Returns false
    /// when the connection is gone.
    @discardableResult
    func readAvailable(_ onMessage: (UnsafeRawBufferPointer) -> Void) -> Bool {
        deliver(onMessage)
        while !closed {
            if end == capacity {
                if start > 0 {
                    buffer.copyMemory(from: buffer + start, byteCount: end - start)
                    end -= start
                    start = 0
                } else {
                    let bigger = UnsafeMutableRawPointer.allocate(byteCount: capacity * 2, alignment: 16)
                    bigger.copyMemory(from: buffer, byteCount: end)
                    buffer.deallocate()
                    buffer = bigger
                    capacity *= 2
                }
            }
            let n = recv(fd, buffer + end, capacity - end, Int32(MSG_DONTWAIT))
            if n > 0 {
                end += n
                bytesReceived += n
                deliver(onMessage)
                // A short read drained the socket; poll() is level-triggered, so a second recv
                // that would only say EAGAIN is skipped.
                if end < capacity && n < 16384 { return true }
            } else if n == 0 {
                closed = true
            } else if errno == EAGAIN || errno == EINTR {
                return true
            } else {
                closed = true
            }
        }
        return false
    }

    private func deliver(_ onMessage: (UnsafeRawBufferPointer) -> Void) {
        while end - start >= 2 {
            let p = buffer + start
            let b0 = p.load(fromByteOffset: 0, as: UInt8.self)
            let b1 = p.load(fromByteOffset: 1, as: UInt8.self)
            var len = Int(b1 & 0x7f)
            var header = 2
            if len == 126 {
                guard end - start >= 4 else { break }
                len = Int(p.load(fromByteOffset: 2, as: UInt8.self)) << 8 | Int(p.load(fromByteOffset: 3, as: UInt8.self))
                header = 4
            } else if len == 127 {
                guard end - start >= 10 else { break }
                len = 0
                for i in 2..<10 { len = len << 8 | Int(p.load(fromByteOffset: i, as: UInt8.self)) }
                header = 10
            }
            if b1 & 0x80 != 0 { header += 4 }  // servers never mask; tolerate it anyway
            guard end - start >= header + len else {
                if header + len > capacity {  // make room for a large frame (book snapshots)
                    let bigger = UnsafeMutableRawPointer.allocate(byteCount: (header + len) * 2, alignment: 16)
                    bigger.copyMemory(from: buffer + start, byteCount: end - start)
                    buffer.deallocate()
                    buffer = bigger
                    capacity = (header + len) * 2
                    end -= start
                    start = 0
                }
                break
            }
            let opcode = b0 & 0x0f
            if opcode == 0x8 { closed = true }
            if opcode == 0x1 || opcode == 0x0 {
                onMessage(UnsafeRawBufferPointer(start: p + header, count: len))
            }
            start += header + len
        }
        if start == end {
            start = 0
            end = 0
        }
    }
}

// MARK: - scanning JSON text without parsing it

/// Offset just past the first occurrence of `needle` in `hay`, or nil.
@inline(__always)
func find(_ needle: StaticString, in hay: UnsafeRawBufferPointer, from: Int = 0) -> Int? {
    let n = needle.utf8CodeUnitCount
    let np = needle.utf8Start
    guard hay.count >= n, from <= hay.count - n else { return nil }
    let first = np[0]
    var i = from
    let last = hay.count - n
    while i <= last {
        if hay[i] == first {
            var j = 1
            while j < n && hay[i + j] == np[j] { j += 1 }
            if j == n { return i + n }
        }
        i += 1
    }
    return nil
}

/// The unsigned integer starting at `at`.
@inline(__always)
func parseUInt(_ hay: UnsafeRawBufferPointer, at: Int) -> UInt64? {
    var i = at
    var v: UInt64 = 0
    var any = false
    while i < hay.count, hay[i] >= 48, hay[i] <= 57 {
        v = v &* 10 &+ UInt64(hay[i] - 48)
        i += 1
        any = true
    }
    return any ? v : nil
}

/// Sends one request and reads messages until the response with `id` arrives (blocking socket
/// set up by `openWebSocket`; notifications that arrive first are dropped).
func call(_ fd: Int32, _ reader: FrameReader, _ encoder: inout FrameEncoder, id: Int, method: String, params: String,
          timeoutMs: Int32 = 10_000) throws -> String {
    let text = #"{"jsonrpc":"2.0","id":\#(id),"method":"\#(method)","params":\#(params)}"#
    guard writeAll(fd, encoder.text(Array(text.utf8))) else { throw BenchError("write failed") }
    let marker = Array(#""id":\#(id),"#.utf8)
    let deadline = monotonicNanos() + UInt64(timeoutMs) * 1_000_000
    var answer: String?
    while answer == nil {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        _ = poll(&p, 1, 100)
        let alive = reader.readAvailable { msg in
            guard answer == nil, find(#""method":"subscription""#, in: msg) == nil else { return }
            if msg.count >= marker.count, marker.withUnsafeBytes({ m in containsBytes(msg, m) }) {
                answer = String(decoding: msg, as: UTF8.self)
            }
        }
        if answer != nil { break }
        if !alive { throw BenchError("connection closed while waiting for \(method)") }
        if monotonicNanos() > deadline { throw BenchError("no answer to \(method) within \(timeoutMs) ms") }
    }
    return answer!
}

func containsBytes(_ hay: UnsafeRawBufferPointer, _ needle: UnsafeRawBufferPointer) -> Bool {
    guard needle.count <= hay.count else { return false }
    for i in 0...(hay.count - needle.count) {
        if memcmp(hay.baseAddress! + i, needle.baseAddress!, needle.count) == 0 { return true }
    }
    return false
}

// MARK: - epoll without a C shim

/// `<sys/epoll.h>` is not visible through Swift's Glibc module (the project's CEpoll shim is not a
/// dependency of this target), so the three calls are looked up with dlsym. `struct epoll_event`
/// is packed on x86_64 (12 bytes: u32 events, u64 data); it is read and written by hand.
final class Epoll: @unchecked Sendable {
    private typealias CreateFn = @convention(c) (Int32) -> Int32
    private typealias CtlFn = @convention(c) (Int32, Int32, Int32, UnsafeMutableRawPointer?) -> Int32
    private typealias WaitFn = @convention(c) (Int32, UnsafeMutableRawPointer, Int32, Int32) -> Int32
    nonisolated(unsafe) private static let handle = dlopen(nil, RTLD_NOW)
    private static let create: CreateFn = unsafeBitCast(dlsym(handle, "epoll_create1"), to: CreateFn.self)
    private static let ctl: CtlFn = unsafeBitCast(dlsym(handle, "epoll_ctl"), to: CtlFn.self)
    private static let wait: WaitFn = unsafeBitCast(dlsym(handle, "epoll_wait"), to: WaitFn.self)
    #if arch(x86_64)
    private static let eventSize = 12
    #else
    private static let eventSize = 16
    #endif
    private static let dataOffset = eventSize - 8

    let fd: Int32
    private let events: UnsafeMutableRawPointer
    private let maxEvents = 1024

    init() {
        fd = Self.create(Int32(O_CLOEXEC))
        precondition(fd >= 0, "epoll_create1 failed: errno \(errno)")
        events = UnsafeMutableRawPointer.allocate(byteCount: Self.eventSize * maxEvents, alignment: 16)
    }

    deinit {
        events.deallocate()
        close(fd)
    }

    /// Watches `target` for input (level-triggered); `token` comes back from `wait`.
    func addReadable(_ target: Int32, token: Int) {
        let ev = UnsafeMutableRawPointer.allocate(byteCount: Self.eventSize, alignment: 16)
        defer { ev.deallocate() }
        ev.storeBytes(of: UInt32(0x001), toByteOffset: 0, as: UInt32.self)  // EPOLLIN
        ev.storeBytes(of: UInt64(token), toByteOffset: Self.dataOffset, as: UInt64.self)
        _ = Self.ctl(fd, 1, target, ev)  // EPOLL_CTL_ADD
    }

    func remove(_ target: Int32) {
        _ = Self.ctl(fd, 2, target, nil)  // EPOLL_CTL_DEL
    }

    /// Calls `ready` with the token of every readable descriptor.
    func wait(timeoutMs: Int32, _ ready: (Int) -> Void) {
        let n = Self.wait(fd, events, Int32(maxEvents), timeoutMs)
        guard n > 0 else { return }
        for i in 0..<Int(n) {
            ready(Int(events.loadUnaligned(fromByteOffset: i * Self.eventSize + Self.dataOffset, as: UInt64.self)))
        }
    }
}
