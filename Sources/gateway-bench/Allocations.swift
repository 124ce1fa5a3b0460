#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization

/// Workload 6: heap allocations in the relaying process per forwarded notification, in steady
/// state (SPEC §10). The process runs under `scripts/malloc-count.c` (LD_PRELOAD), which writes its
/// allocation count to a file on SIGUSR2. N subscribers hold the hot channel; a warm-up batch is
/// published and fully delivered first (buffers grow to their working size), then the count is
/// read around an idle window and around a measured batch of the same length.
struct AllocationResult {
    var label: String
    var subscribers: Int
    var published: Int
    var delivered: Int
    var idleAllocations: Int
    var windowAllocations: Int
    var seconds: Double

    /// The window's allocations minus the idle window's (timers, heartbeats), per notification.
    var perNotification: Double { published > 0 ? Double(windowAllocations - idleAllocations) / Double(published) : 0 }
    var perDelivery: Double { delivered > 0 ? Double(windowAllocations - idleAllocations) / Double(delivered) : 0 }
}

final class DeliveryCount: Sendable {
    let value = Atomic<Int>(0)
}

struct AllocationRun {
    let endpoint: Endpoint
    let simPort: UInt16
    let channel: String
    let subscribers: Int
    let rate: Int
    let count: Int
    let warmup: Int
    let pid: Int32
    let countFile: String

    /// The process's allocation count: remove the file, signal, wait (with a deadline) for it.
    func readCount() throws -> Int {
        unlink(countFile)
        guard kill(pid, SIGUSR2) == 0 else { throw BenchError("kill -USR2 \(pid): errno \(errno)") }
        let deadline = nowNanos() + 5_000_000_000
        while nowNanos() < deadline {
            if let text = try? String(contentsOfFile: countFile, encoding: .utf8), text.hasSuffix("\n"),
               let n = Int(text.dropLast()) {
                return n
            }
            usleep(1000)
        }
        throw BenchError("no allocation count in \(countFile) within 5 s (is the process running under malloc-count.so?)")
    }

    func run(label: String) throws -> AllocationResult {
        var fds: [Int32] = []
        defer { fds.forEach { close($0) } }
        var readers: [FrameReader] = []
        var encoder = FrameEncoder()
        for i in 0..<subscribers {
            let (fd, extra) = try openWebSocket(endpoint)
            fds.append(fd)
            let reader = FrameReader(fd: fd, initial: extra)
            let answer = try call(fd, reader, &encoder, id: i + 1, method: "public/subscribe",
                                  params: #"{"channels":["\#(channel)"]}"#)
            guard answer.contains(channel) else { throw BenchError("subscribe refused: \(answer)") }
            setNonBlocking(fd, true)
            readers.append(reader)
        }

        // One thread drains every subscriber and counts the bench's notifications.
        let counts = readers.map { _ in DeliveryCount() }
        let subscriberReaders = readers
        let stop = DeliveryCount()
        let drain = Worker("drain") {
            let ep = Epoll()
            for (i, r) in subscriberReaders.enumerated() { ep.addReadable(r.fd, token: i) }
            while stop.value.load(ordering: .relaxed) == 0 {
                ep.wait(timeoutMs: 20) { i in
                    var n = 0
                    subscriberReaders[i].readAvailable { msg in if find(#""bench_seq":"#, in: msg) != nil { n += 1 } }
                    counts[i].value.add(n, ordering: .relaxed)
                }
            }
        }
        defer {
            stop.value.store(1, ordering: .relaxed)
            drain.join()
        }

        let pubFD = try connectTCP("127.0.0.1", simPort)
        defer { close(pubFD) }
        setNonBlocking(pubFD, true)
        var seq = 0
        func publish(_ n: Int) {
            let interval = 1e9 / Double(rate)
            let t0 = nowNanos()
            var scratch = [UInt8](repeating: 0, count: 65536)
            for k in 0..<n {
                let due = t0 + UInt64(Double(k) * interval)
                if nowNanos() < due { sleepUntil(due) }
                let body = FanOutRun.payload(seq: seq, ts: due)
                seq += 1
                let head = "POST /sim/publish?channel=\(channel) HTTP/1.1\r\nHost: sim\r\nContent-Length: \(body.count)\r\n\r\n"
                _ = writeAll(pubFD, Array(head.utf8) + body)
                _ = scratch.withUnsafeMutableBytes { recv(pubFD, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            }
        }
        func awaitDelivery(of total: Int) throws {
            let deadline = nowNanos() + 10_000_000_000
            while counts.contains(where: { $0.value.load(ordering: .relaxed) < total }) {
                guard nowNanos() < deadline else {
                    let got = counts.map { $0.value.load(ordering: .relaxed) }
                    throw BenchError("\(label): not every subscriber got \(total) notifications within 10 s: \(got)")
                }
                usleep(2000)
            }
        }

        publish(warmup)
        try awaitDelivery(of: warmup)
        let seconds = Double(count) / Double(rate)
        // Idle window: what the process allocates anyway over the same time (timers, heartbeats).
        let c0 = try readCount()
        usleep(UInt32(seconds * 1e6))
        let c1 = try readCount()
        publish(count)
        try awaitDelivery(of: warmup + count)
        let c2 = try readCount()
        return AllocationResult(label: label, subscribers: subscribers, published: count, delivered: count * subscribers,
                                idleAllocations: c1 - c0, windowAllocations: c2 - c1, seconds: seconds)
    }
}

func allocationHeader() -> String {
    """
    | path | subscribers | published | delivered | allocations, idle window | allocations, publish window | per notification (net of idle) | per delivery (net of idle) |
    |---|---|---|---|---|---|---|---|
    """
}

func allocationRow(_ r: AllocationResult) -> String {
    "| \(r.label) | \(r.subscribers) | \(r.published) | \(r.delivered) | \(r.idleAllocations) | \(r.windowAllocations) | "
        + "\(String(format: "%.3f", r.perNotification)) | \(String(format: "%.4f", r.perDelivery)) |"
}
