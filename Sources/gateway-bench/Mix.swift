#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Transport
import Synchronization

/// Workload 3: a Deribit-like mix. The simulator runs with many instruments at a modest `--rate`;
/// 20 clients each hold a quarter of the ~200 channels (ticker, trades, incremental book, grouped
/// book of every instrument; each channel has 5 holders), and one more connection subscribes and
/// unsubscribes a book channel every `churn` seconds so that a 15–30 KB snapshot goes out now and
/// then. Measured over the window: the server's CPU (utime+stime from /proc/PID/stat) and RSS.
struct MixResult {
    var label: String
    var clients: Int
    var channels: Int
    var upstreamPerSecond = 0.0
    var delivered = 0.0
    var bytesPerSecond = 0.0
    var serverCPU: Double?
    var serverRSS: Int?
    var simCPU: Double?
    var benchCPU = 0.0
    var snapshots = 0
    var closed = 0
}

final class MixRun: @unchecked Sendable {
    let endpoint: Endpoint
    let simPort: UInt16
    let instruments: [String]
    let clients: Int
    let duration: Double
    let serverPID: Int32?
    let simPID: Int32?
    let churnEvery: Double

    init(endpoint: Endpoint, simPort: UInt16, instruments: [String], clients: Int, duration: Double, serverPID: Int32?, simPID: Int32?, churnEvery: Double) {
        self.endpoint = endpoint
        self.simPort = simPort
        self.instruments = instruments
        self.clients = clients
        self.duration = duration
        self.serverPID = serverPID
        self.simPID = simPID
        self.churnEvery = churnEvery
    }

    static func channels(_ instruments: [String]) -> [String] {
        instruments.flatMap { ["ticker.\($0).100ms", "trades.\($0).100ms", "book.\($0).100ms", "book.\($0).none.10.100ms"] }
    }

    func simNotificationsSent() -> Double? { simulatorNotificationsSent(port: simPort) }

    func run(label: String) throws -> MixResult {
        let all = Self.channels(instruments)
        var fds: [Int32] = []
        var readers: [FrameReader] = []
        defer { fds.forEach { close($0) } }
        var encoder = FrameEncoder()
        for i in 0..<clients {
            let (fd, extra) = try openWebSocket(endpoint)
            fds.append(fd)
            let reader = FrameReader(fd: fd, initial: extra)
            let mine = all.indices.filter { $0 % 4 == i % 4 }.map { "\"\(all[$0])\"" }.joined(separator: ",")
            _ = try call(fd, reader, &encoder, id: 1, method: "public/subscribe", params: "{\"channels\":[\(mine)]}")
            setNonBlocking(fd, true)
            readers.append(reader)
        }
        // The churn connection: a book channel held by others, joined and left in turn.
        let (churnFD, churnExtra) = try openWebSocket(endpoint)
        fds.append(churnFD)
        let churnReader = FrameReader(fd: churnFD, initial: churnExtra)
        let churnChannel = "book.\(instruments[0]).100ms"

        let stop = StopFlag()
        let counts = Mutex((messages: 0, bytes: 0, closed: 0))
        let readerList = readers
        let reader = Worker("mix-reader") {
            let ep = Epoll()
            for (i, r) in readerList.enumerated() { ep.addReadable(r.fd, token: i) }
            var messages = 0
            var bytes = 0
            var closed = 0
            while !stop.isSet {
                ep.wait(timeoutMs: 50) { i in
                    readerList[i].readAvailable { msg in
                        messages += 1
                        bytes += msg.count
                    }
                    if readerList[i].closed {
                        closed += 1
                        ep.remove(readerList[i].fd)
                    }
                }
                counts.withLock { $0 = (messages, bytes, closed) }
            }
        }
        // Let the subscriptions settle (books' first snapshots, the gateway's caches).
        usleep(1_000_000)
        let start = counts.withLock { $0 }
        let n0 = simNotificationsSent()
        let cpu0 = serverPID.flatMap(processCPUSeconds)
        let sim0 = simPID.flatMap(processCPUSeconds)
        let self0 = selfCPUSeconds()
        let t0 = monotonicNanos()
        let end = t0 + UInt64(duration * 1e9)
        var snapshots = 0
        var id = 100
        var joined = false
        while monotonicNanos() < end {
            let next = min(end, monotonicNanos() + UInt64(churnEvery * 1e9))
            sleepUntil(next)
            guard monotonicNanos() < end else { break }
            id += 1
            let method = joined ? "public/unsubscribe" : "public/subscribe"
            _ = try call(churnFD, churnReader, &encoder, id: id, method: method, params: "{\"channels\":[\"\(churnChannel)\"]}")
            if !joined { snapshots += 1 }
            joined.toggle()
        }
        let t1 = monotonicNanos()
        let cpu1 = serverPID.flatMap(processCPUSeconds)
        let sim1 = simPID.flatMap(processCPUSeconds)
        let n1 = simNotificationsSent()
        let stopCounts = counts.withLock { $0 }
        let self1 = selfCPUSeconds()
        stop.set()
        reader.join()

        let seconds = Double(t1 - t0) / 1e9
        var result = MixResult(label: label, clients: clients, channels: all.count)
        if let n0, let n1 { result.upstreamPerSecond = (n1 - n0) / seconds }
        result.delivered = Double(stopCounts.messages - start.messages) / seconds
        result.bytesPerSecond = Double(stopCounts.bytes - start.bytes) / seconds
        if let cpu0, let cpu1 { result.serverCPU = (cpu1 - cpu0) / seconds }
        if let sim0, let sim1 { result.simCPU = (sim1 - sim0) / seconds }
        result.serverRSS = serverPID.flatMap(processRSS)
        result.benchCPU = (self1 - self0) / seconds
        result.snapshots = snapshots
        result.closed = stopCounts.closed
        return result
    }
}

/// The simulator's `totals.notifications_sent` (GET /sim/state).
func simulatorNotificationsSent(port: UInt16) -> Double? {
    guard let r = try? httpRequest("GET", port: port, path: "/sim/state"), r.status == 200,
          let obj = try? JSONSerialization.jsonObject(with: Data(r.body.utf8)) as? [String: Any],
          let totals = obj["totals"] as? [String: Any], let n = totals["notifications_sent"] as? NSNumber else { return nil }
    return n.doubleValue
}

func mixHeader() -> String {
    """
    | path | clients | channels | sim notif/s sent | delivered msg/s | MB/s | snapshots | server CPU (1 core) | server RSS MiB | sim CPU | bench CPU | closed |
    |---|---|---|---|---|---|---|---|---|---|---|---|
    """
}

func percent(_ v: Double?) -> String { v.map { String(format: "%.1f%%", $0 * 100) } ?? "–" }

func mixRow(_ r: MixResult) -> String {
    "| \(r.label) | \(r.clients) | \(r.channels) | \(String(format: "%.0f", r.upstreamPerSecond)) | \(String(format: "%.0f", r.delivered)) | "
        + "\(String(format: "%.2f", r.bytesPerSecond / 1e6)) | \(r.snapshots) | \(percent(r.serverCPU)) | "
        + "\(r.serverRSS.map { String(format: "%.1f", Double($0) / 1_048_576) } ?? "–") | \(percent(r.simCPU)) | \(percent(r.benchCPU)) | \(r.closed) |"
}

/// A flag one thread sets and another polls.
final class StopFlag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .releasing) }
    var isSet: Bool { value.load(ordering: .acquiring) }
}
