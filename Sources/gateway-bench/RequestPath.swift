#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Transport

/// A thread that can be waited for.
final class Worker: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)

    init(_ name: String, _ body: @escaping @Sendable () -> Void) {
        let done = self.done
        let t = Thread {
            body()
            done.signal()
        }
        t.name = name
        t.stackSize = 1 << 20
        t.start()
    }

    func join() { done.wait() }
}

/// Workload 1: `public/get_time` sent on a fixed schedule (request k at t0 + k/rate, spread over
/// the clients round-robin); latency of each response measured from the request's SCHEDULED time,
/// so a stall anywhere (ours included) is charged to every request it delays.
struct RequestPathResult {
    var label: String
    var rate: Int
    var clients: Int
    var sent = 0
    var ok = 0
    var errors = 0
    var histogram = Histogram()
    var seconds = 0.0
    var benchCPU = 0.0
    var lateSends = 0
    var firstError = ""

    var lost: Int { sent - ok - errors }
    var throughput: Double { seconds > 0 ? Double(ok) / seconds : 0 }
}

final class RequestPathRun: @unchecked Sendable {
    let endpoint: Endpoint
    let rate: Int
    let clients: Int
    let warmup: Double
    let duration: Double
    var fds: [Int32] = []
    var readers: [FrameReader] = []

    /// How long before each send the sender stops sleeping and spins (0: sleep only).
    var spinNanos: UInt64 = 0

    init(endpoint: Endpoint, rate: Int, clients: Int, warmup: Double, duration: Double) {
        self.endpoint = endpoint
        self.rate = rate
        self.clients = clients
        self.warmup = warmup
        self.duration = duration
    }

    func run(label: String) throws -> RequestPathResult {
        for _ in 0..<clients {
            let (fd, extra) = try openWebSocket(endpoint)
            setNonBlocking(fd, true)
            fds.append(fd)
            readers.append(FrameReader(fd: fd, initial: extra))
        }
        defer { fds.forEach { close($0) } }

        let interval = 1e9 / Double(rate)
        let warmupCount = Int(warmup * Double(rate))
        let total = warmupCount + Int(duration * Double(rate))
        let t0 = monotonicNanos() + 20_000_000
        let cpu0 = selfCPUSeconds()
        var result = RequestPathResult(label: label, rate: rate, clients: clients)
        result.sent = total - warmupCount

        let fds = self.fds
        let lateBox = Box(0)
        let spinNanos = self.spinNanos
        let sender = Worker("sender") {
            var encoder = FrameEncoder()
            var late = 0
            for k in 0..<total {
                let due = t0 + UInt64(Double(k) * interval)
                let now = monotonicNanos()
                if now < due {
                    // Sleep to just before the send time, then spin: a sleeping thread wakes tens
                    // of µs late now and then, and that lateness would land in every path's p99.
                    if due - now > spinNanos { sleepUntil(due - spinNanos) }
                    while monotonicNanos() < due {}
                } else if now - due > 1_000_000 { late += 1 }
                let text = #"{"jsonrpc":"2.0","id":\#(k),"method":"public/get_time","params":{}}"#
                writeAll(fds[k % fds.count], encoder.text(Array(text.utf8)))
            }
            lateBox.value = late
        }

        // Reader: this thread.
        var pollfds = fds.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        let lastDue = t0 + UInt64(Double(total - 1) * interval)
        let deadline = lastDue + 3_000_000_000
        var answered = 0
        var lastArrival = t0
        var histogram = Histogram()
        var ok = 0
        var errors = 0
        var firstError = ""
        while answered < total, monotonicNanos() < deadline {
            let n = poll(&pollfds, nfds_t(pollfds.count), 50)
            guard n > 0 else { continue }
            for i in pollfds.indices where pollfds[i].revents != 0 {
                let arrival = monotonicNanos()
                readers[i].readAvailable { msg in
                    guard let at = find(#""id":"#, in: msg), let id = parseUInt(msg, at: at) else { return }
                    answered += 1
                    let k = Int(id)
                    guard k >= warmupCount, k < total else { return }
                    if find(#""error":"#, in: msg) != nil {
                        errors += 1
                        if firstError.isEmpty { firstError = String(decoding: msg, as: UTF8.self) }
                        return
                    }
                    let due = t0 + UInt64(Double(k) * interval)
                    histogram.record(arrival > due ? arrival - due : 0)
                    ok += 1
                    lastArrival = arrival
                }
                if readers[i].closed {
                    pollfds[i].fd = -1
                }
            }
            if pollfds.allSatisfy({ $0.fd < 0 }) { break }
        }
        sender.join()
        result.ok = ok
        result.errors = errors
        result.firstError = firstError
        result.histogram = histogram
        let measuredStart = t0 + UInt64(Double(warmupCount) * interval)
        result.seconds = Double(max(lastArrival, lastDue) - measuredStart) / 1e9
        result.benchCPU = (selfCPUSeconds() - cpu0) / (Double(monotonicNanos() - t0) / 1e9)
        result.lateSends = lateBox.value
        return result
    }
}

final class Box<T>: @unchecked Sendable {
    var value: T
    init(_ v: T) { value = v }
}

func micros(_ ns: UInt64) -> String {
    let us = Double(ns) / 1000
    if us >= 10_000 { return String(format: "%.0f", us) }
    return String(format: "%.1f", us)
}

func requestPathHeader() -> String {
    """
    | path | clients | rate/s | sent | ok | err | lost | p50 µs | p99 µs | p99.9 µs | max µs | throughput/s | bench CPU |
    |---|---|---|---|---|---|---|---|---|---|---|---|---|
    """
}

func requestPathRow(_ r: RequestPathResult) -> String {
    let h = r.histogram
    return "| \(r.label) | \(r.clients) | \(r.rate) | \(r.sent) | \(r.ok) | \(r.errors) | \(r.lost) | "
        + "\(micros(h.value(atQuantile: 0.5))) | \(micros(h.value(atQuantile: 0.99))) | \(micros(h.value(atQuantile: 0.999))) | "
        + "\(micros(h.max)) | \(String(format: "%.0f", r.throughput)) | \(String(format: "%.0f%%", r.benchCPU * 100)) |"
}
