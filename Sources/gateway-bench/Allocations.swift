#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Transport

/// Workload 6: heap allocations per forwarded notification (SPEC §10: "no allocation per
/// forwarded notification in steady state"), counted in a gateway that runs under the
/// `scripts/malloc-count.c` LD_PRELOAD shim. Three windows per gateway pair:
///
/// - *idle*: N subscribers on the hot channel, nothing published, as long as the hot window: the
///   background (timers, heartbeats, the simulator's own ticks) that a reader can subtract;
/// - *hot*: after a warm-up batch every subscriber has received, a paced batch published through
///   `POST /sim/publish`; the window ends when every subscriber has received all of it;
/// - *mix* (optional, a second gateway on the mix simulator): the Deribit-like mix with its book
///   changes, without the churn connection (no client requests in the window); upstream
///   notifications are the simulator's `notifications_sent`, so that nothing is asked of the
///   gateway during the window but to forward.
///
/// The count is read only at the window edges, never while the gateway works.
struct AllocationWindow {
    var workload: String
    var seconds: Double
    var upstream: Int?       // notifications into the gateway (nil: only the simulator's own ticks)
    var deliveries: Int      // notification frames the clients received
    var expectedDeliveries: Int?
    var allocations: UInt64

    var perSecond: Double { seconds > 0 ? Double(allocations) / seconds : 0 }
}

/// The allocation count of a process running under scripts/malloc-count.c. The shim writes the
/// count on SIGUSR2 to a temporary file and renames it to `path`; the reader removes `path`,
/// signals, and waits (inotify, with a deadline) for the rename.
final class AllocationCounter {
    let pid: Int32
    let path: String
    private let inotifyFD: Int32

    init(pid: Int32, path: String) throws {
        self.pid = pid
        self.path = path
        inotifyFD = inotify_init1(Int32(IN_CLOEXEC | IN_NONBLOCK))
        guard inotifyFD >= 0 else { throw BenchError("inotify_init1: errno \(errno)") }
        let dir = (path as NSString).deletingLastPathComponent
        guard inotify_add_watch(inotifyFD, dir.isEmpty ? "." : dir, UInt32(IN_MOVED_TO)) >= 0 else {
            close(inotifyFD)
            throw BenchError("inotify_add_watch \(dir): errno \(errno)")
        }
    }

    deinit { close(inotifyFD) }

    func read(timeoutMs: Int = 5000) throws -> UInt64 {
        unlink(path)
        guard kill(pid, SIGUSR2) == 0 else { throw BenchError("kill -USR2 \(pid): errno \(errno)") }
        let deadline = monotonicNanos() + UInt64(timeoutMs) * 1_000_000
        var events = [UInt8](repeating: 0, count: 4096)
        while true {
            // Checked before every wait: a rename between this check and poll() is still queued.
            if let text = try? String(contentsOfFile: path, encoding: .utf8),
               let v = UInt64(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
                return v
            }
            let now = monotonicNanos()
            guard now < deadline else {
                throw BenchError("no allocation count in \(path) within \(timeoutMs) ms: is pid \(pid) running under malloc-count.so?")
            }
            var p = pollfd(fd: inotifyFD, events: Int16(POLLIN), revents: 0)
            _ = poll(&p, 1, Int32((deadline - now) / 1_000_000) + 1)
            _ = events.withUnsafeMutableBytes { Glibc.read(inotifyFD, $0.baseAddress, $0.count) }  // drain
        }
    }
}

/// Clients on non-blocking sockets, read from the calling thread.
private final class AllocationClients {
    let readers: [FrameReader]
    let ep = Epoll()
    var next: [UInt64]       // per client: one past the highest bench_seq received
    var tagged: [Int]        // per client: notifications carrying a bench_seq
    var frames = 0           // all text frames, every client
    var closed = 0

    init(_ readers: [FrameReader]) {
        self.readers = readers
        next = Array(repeating: 0, count: readers.count)
        tagged = Array(repeating: 0, count: readers.count)
        for (i, r) in readers.enumerated() { ep.addReadable(r.fd, token: i) }
    }

    deinit { readers.forEach { close($0.fd) } }

    var taggedTotal: Int { tagged.reduce(0, +) }

    /// Reads until `done()` or `deadline` (CLOCK_MONOTONIC ns); returns `done()`.
    @discardableResult
    func pump(until deadline: UInt64, done: () -> Bool = { false }) -> Bool {
        while !done() {
            let now = monotonicNanos()
            guard now < deadline else { return false }
            ep.wait(timeoutMs: Int32(min(50, (deadline - now) / 1_000_000 + 1))) { i in
                let r = readers[i]
                r.readAvailable { msg in
                    frames += 1
                    guard let a = find(#""bench_seq":"#, in: msg), let seq = parseUInt(msg, at: a) else { return }
                    tagged[i] += 1
                    next[i] = max(next[i], seq + 1)
                }
                if r.closed {
                    closed += 1
                    ep.remove(r.fd)
                }
            }
        }
        return true
    }
}

private func connectClients(_ endpoint: Endpoint, count: Int, channels: (Int) -> [String]) throws -> AllocationClients {
    var readers: [FrameReader] = []
    var encoder = FrameEncoder()
    do {
        for i in 0..<count {
            let (fd, extra) = try openWebSocket(endpoint)
            let reader = FrameReader(fd: fd, initial: extra)
            readers.append(reader)
            let list = channels(i).map { "\"\($0)\"" }.joined(separator: ",")
            let answer = try call(fd, reader, &encoder, id: i + 1, method: "public/subscribe", params: "{\"channels\":[\(list)]}")
            guard answer.contains("\"result\"") else { throw BenchError("subscribe refused: \(answer.prefix(300))") }
            setNonBlocking(fd, true)
        }
    } catch {
        readers.forEach { close($0.fd) }
        throw error
    }
    return AllocationClients(readers)
}

/// The idle and hot windows on one gateway.
func runHotAllocations(endpoint: Endpoint, simPort: UInt16, channel: String, subscribers: Int, warmup: Int,
                       count: Int, rate: Int, counter: AllocationCounter) throws -> (idle: AllocationWindow, hot: AllocationWindow) {
    let clients = try connectClients(endpoint, count: subscribers) { _ in [channel] }
    let pubFD = try connectTCP("127.0.0.1", simPort)
    defer { close(pubFD) }
    setNonBlocking(pubFD, true)
    let interval = 1e9 / Double(rate)

    /// Publishes seq first..<first+n, paced from now; reads until every subscriber has the last
    /// one (or 10 s after it was due). Returns whether all arrived.
    func publishAndWait(first: Int, n: Int) -> Bool {
        let t0 = monotonicNanos() + 20_000_000
        let publisher = Worker("publisher") {
            var scratch = [UInt8](repeating: 0, count: 65536)
            for k in 0..<n {
                let due = t0 + UInt64(Double(k) * interval)
                if monotonicNanos() < due { sleepUntil(due) }
                let body = FanOutRun.payload(seq: first + k, ts: due)
                let head = "POST /sim/publish?channel=\(channel) HTTP/1.1\r\nHost: sim\r\nContent-Length: \(body.count)\r\n\r\n"
                writeAll(pubFD, Array(head.utf8) + body)
                _ = scratch.withUnsafeMutableBytes { recv(pubFD, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            }
        }
        let target = UInt64(first + n)
        let deadline = t0 + UInt64(Double(n) * interval) + 10_000_000_000
        let all = clients.pump(until: deadline) { clients.next.allSatisfy { $0 >= target } }
        publisher.join()
        return all
    }

    // Warm-up: connections, queues and caches reach their steady size.
    guard publishAndWait(first: 0, n: warmup) else {
        throw BenchError("warm-up: not every subscriber received \(warmup) notifications (closed: \(clients.closed))")
    }
    let windowSeconds = Double(count) / Double(rate)

    // Idle window: nothing published.
    let a0 = try counter.read()
    let f0 = clients.frames
    let i0 = monotonicNanos()
    clients.pump(until: i0 + UInt64(windowSeconds * 1e9))
    let a1 = try counter.read()
    let i1 = monotonicNanos()
    let idle = AllocationWindow(workload: "idle: \(subscribers) subscribers, nothing published", seconds: Double(i1 - i0) / 1e9,
                                upstream: nil, deliveries: clients.frames - f0, expectedDeliveries: nil,
                                allocations: a1 - a0)

    // Hot window.
    let tagged0 = clients.taggedTotal
    let complete = publishAndWait(first: warmup, n: count)
    let a2 = try counter.read()
    let h1 = monotonicNanos()
    if !complete {
        FileHandle.standardError.write(Data("allocations: not every subscriber received all \(count) notifications (closed: \(clients.closed)); counted at the deadline\n".utf8))
    }
    let hot = AllocationWindow(workload: "hot channel: \(count) at \(rate)/s to \(subscribers) subscribers",
                               seconds: Double(h1 - i1) / 1e9, upstream: count,
                               deliveries: clients.taggedTotal - tagged0, expectedDeliveries: count * subscribers,
                               allocations: a2 - a1)
    return (idle, hot)
}

/// The mix window on one gateway (its upstream the mix simulator, which has no other client).
func runMixAllocations(endpoint: Endpoint, simPort: UInt16, instruments: [String], clients clientCount: Int,
                       settle: Double, duration: Double, counter: AllocationCounter) throws -> AllocationWindow {
    let all = MixRun.channels(instruments)
    // As in the mix workload: client i holds every fourth channel, so each channel has clients/4 holders.
    let clients = try connectClients(endpoint, count: clientCount) { i in all.indices.filter { $0 % 4 == i % 4 }.map { all[$0] } }
    clients.pump(until: monotonicNanos() + UInt64(settle * 1e9))  // snapshots, the gateway's books and caches
    guard clients.closed == 0 else { throw BenchError("mix: \(clients.closed) clients closed while settling") }
    let a0 = try counter.read()
    let n0 = simulatorNotificationsSent(port: simPort)
    let f0 = clients.frames
    let t0 = monotonicNanos()
    clients.pump(until: t0 + UInt64(duration * 1e9))
    let a1 = try counter.read()
    let t1 = monotonicNanos()
    let f1 = clients.frames
    let n1 = simulatorNotificationsSent(port: simPort)
    var upstream: Int?
    if let n0, let n1 { upstream = Int(n1 - n0) }
    if upstream == nil { FileHandle.standardError.write(Data("mix: the simulator's /sim/state did not answer\n".utf8)) }
    return AllocationWindow(workload: "mix: \(all.count) channels to \(clientCount) clients, no churn", seconds: Double(t1 - t0) / 1e9,
                            upstream: upstream, deliveries: f1 - f0, expectedDeliveries: nil, allocations: a1 - a0)
}

func allocationsHeader() -> String {
    """
    | path | window | seconds | upstream notifications | deliveries | allocations | allocations/s | per upstream notification | per delivery | per upstream notification, idle rate subtracted |
    |---|---|---|---|---|---|---|---|---|---|
    """
}

func allocationsRow(_ label: String, _ w: AllocationWindow, idlePerSecond: Double?) -> String {
    let ratio: (Double, Int?) -> String = { v, d in d.flatMap { $0 > 0 ? String(format: "%.2f", v / Double($0)) : nil } ?? "–" }
    let net = idlePerSecond.map { Double(w.allocations) - $0 * w.seconds }
    var deliveries = "\(w.deliveries)"
    if let e = w.expectedDeliveries, e != w.deliveries { deliveries += " (of \(e))" }
    return "| \(label) | \(w.workload) | \(String(format: "%.1f", w.seconds)) | \(w.upstream.map(String.init) ?? "–") | \(deliveries) | "
        + "\(w.allocations) | \(String(format: "%.0f", w.perSecond)) | \(ratio(Double(w.allocations), w.upstream)) | "
        + "\(w.upstream == nil ? "–" : ratio(Double(w.allocations), w.deliveries)) | \(net.map { ratio($0, w.upstream) } ?? "–") |"
}
