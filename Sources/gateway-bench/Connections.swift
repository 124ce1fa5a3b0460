#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Transport

/// Workload 4: N idle WebSocket clients. Connections are opened with at most `concurrency`
/// handshakes in flight (non-blocking connect, poll), each counted from connect() to the `101`;
/// once all are up and idle for a second, the server's RSS growth is divided by the number held.
struct ConnectionsResult {
    var label: String
    var target: Int
    var established = 0
    var failed = 0
    var firstFailure = ""
    var seconds = 0.0
    var handshake = Histogram()
    var rssBefore: Int?
    var rssAfter: Int?
    var stillOpen = 0

    var perClient: Double? {
        guard let a = rssAfter, let b = rssBefore, established > 0 else { return nil }
        return Double(a - b) / Double(established)
    }
}

/// Raises RLIMIT_NOFILE to its hard limit.
func raiseFileLimit() -> Int {
    var r = rlimit()
    getrlimit(Int32(RLIMIT_NOFILE.rawValue), &r)
    r.rlim_cur = r.rlim_max
    setrlimit(Int32(RLIMIT_NOFILE.rawValue), &r)
    return Int(r.rlim_cur)
}

func runConnections(label: String, endpoint: Endpoint, count: Int, concurrency: Int, hold: Double, serverPID: Int32?) -> ConnectionsResult {
    var result = ConnectionsResult(label: label, target: count)
    result.rssBefore = serverPID.flatMap(processRSS)
    enum Phase { case connecting, reading }
    struct Pending {
        var fd: Int32
        var phase: Phase
        var started: UInt64
        var got: [UInt8]
    }
    var idle: [Int32] = []
    idle.reserveCapacity(count)
    var pending: [Pending] = []
    var launched = 0
    var addr = makeAddress(endpoint.host, endpoint.port)
    let request = Array(("GET \(endpoint.path) HTTP/1.1\r\nHost: \(endpoint.host):\(endpoint.port)\r\nUpgrade: websocket\r\n"
        + "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").utf8)
    var buf = [UInt8](repeating: 0, count: 4096)
    let t0 = monotonicNanos()
    let deadline = t0 + 120_000_000_000

    func fail(_ p: Pending, _ why: String) {
        close(p.fd)
        result.failed += 1
        if result.firstFailure.isEmpty { result.firstFailure = why }
    }

    while (launched < count || !pending.isEmpty), monotonicNanos() < deadline {
        while launched < count, pending.count < concurrency {
            launched += 1
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            if fd < 0 {
                result.failed += 1
                if result.firstFailure.isEmpty { result.firstFailure = "socket: errno \(errno)" }
                continue
            }
            setNoDelay(fd)
            let rc = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            let p = Pending(fd: fd, phase: .connecting, started: monotonicNanos(), got: [])
            if rc != 0 && errno != EINPROGRESS { fail(p, "connect: errno \(errno)"); continue }
            pending.append(p)
        }
        var pfds = pending.map { pollfd(fd: $0.fd, events: Int16($0.phase == .connecting ? POLLOUT : POLLIN), revents: 0) }
        guard poll(&pfds, nfds_t(pfds.count), 100) > 0 else { continue }
        var keep: [Pending] = []
        keep.reserveCapacity(pending.count)
        for (i, var p) in pending.enumerated() {
            let ev = pfds[i].revents
            if ev == 0 { keep.append(p); continue }
            if p.phase == .connecting {
                var err: Int32 = 0
                var len = socklen_t(MemoryLayout<Int32>.size)
                getsockopt(p.fd, SOL_SOCKET, SO_ERROR, &err, &len)
                if err != 0 { fail(p, "connect: errno \(err)"); continue }
                guard writeAll(p.fd, request) else { fail(p, "write failed"); continue }
                p.phase = .reading
                keep.append(p)
                continue
            }
            let n = buf.withUnsafeMutableBytes { recv(p.fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 {
                if n < 0 && errno == EAGAIN { keep.append(p); continue }
                fail(p, "closed during handshake")
                continue
            }
            p.got += buf[0..<n]
            guard findHeaderEnd(p.got) != nil else { keep.append(p); continue }
            if p.got.starts(with: Array("HTTP/1.1 101".utf8)) {
                result.handshake.record(monotonicNanos() - p.started)
                idle.append(p.fd)
            } else {
                fail(p, String(decoding: p.got.prefix(while: { $0 != 13 }), as: UTF8.self))
            }
        }
        pending = keep
    }
    for p in pending { fail(p, "timed out") }
    result.established = idle.count
    result.seconds = Double(monotonicNanos() - t0) / 1e9
    usleep(UInt32(max(1, hold) * 1_000_000))
    result.rssAfter = serverPID.flatMap(processRSS)
    // Count the clients the server kept (an idle client must not be dropped).
    var pfds = idle.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
    _ = poll(&pfds, nfds_t(pfds.count), 0)
    result.stillOpen = pfds.filter { $0.revents == 0 }.count
    idle.forEach { close($0) }
    return result
}

func connectionsHeader() -> String {
    """
    | path | clients | established | failed | handshakes/s | handshake p50 µs | p99 µs | max µs | server RSS before MiB | after MiB | per client KiB | still open |
    |---|---|---|---|---|---|---|---|---|---|---|---|
    """
}

func connectionsRow(_ r: ConnectionsResult) -> String {
    let h = r.handshake
    let mib: (Int?) -> String = { $0.map { String(format: "%.1f", Double($0) / 1_048_576) } ?? "–" }
    return "| \(r.label) | \(r.target) | \(r.established) | \(r.failed) | \(String(format: "%.0f", Double(r.established) / max(r.seconds, 1e-9))) | "
        + "\(micros(h.value(atQuantile: 0.5))) | \(micros(h.value(atQuantile: 0.99))) | \(micros(h.max)) | "
        + "\(mib(r.rssBefore)) | \(mib(r.rssAfter)) | \(r.perClient.map { String(format: "%.1f", $0 / 1024) } ?? "–") | \(r.stillOpen) |"
}
