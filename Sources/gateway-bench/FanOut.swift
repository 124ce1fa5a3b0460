#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Transport

/// Workload 2: one hot channel. The simulator publishes (`POST /sim/publish`, keep-alive, paced on
/// a fixed schedule) ticker-shaped notifications of about 550 bytes that carry a sequence number
/// and their scheduled time; N subscribers receive them. Loss is a missing sequence number at the
/// end, reordering a number lower than one already seen, and latency is receive time minus the
/// scheduled publish time (one way: bench → simulator → [proxy] → bench, same clock).
struct FanOutResult {
    var label: String
    var subscribers: Int
    var rate: Int
    var published = 0
    var received = 0
    var outOfOrder = 0
    var closed = 0
    var histogram = Histogram()
    var seconds = 0.0
    var benchCPU = 0.0
    var lateSends = 0
    var notificationBytes = 0
    var serverCPU: Double?
    var simCPU: Double?

    var expected: Int { published * subscribers }
    var lost: Int { expected - received }
    var delivered: Double { seconds > 0 ? Double(received) / seconds : 0 }
    /// Kept up: nothing lost, reordered or closed, and p99 within 20 ms of the schedule (a backlog
    /// that grows for the whole run ends far above that).
    var sustained: Bool { lost == 0 && outOfOrder == 0 && closed == 0 && histogram.value(atQuantile: 0.99) < 20_000_000 }
}

final class SubscriberState: @unchecked Sendable {
    let reader: FrameReader
    var next: UInt64 = 0
    var received = 0
    var outOfOrder = 0
    init(reader: FrameReader) { self.reader = reader }
}

final class FanOutRun: @unchecked Sendable {
    let endpoint: Endpoint
    let simPort: UInt16
    let channel: String
    let subscribers: Int
    let rate: Int
    let duration: Double
    let readerThreads: Int
    let batchMicros: UInt32
    var serverPID: Int32?
    var simPID: Int32?

    init(endpoint: Endpoint, simPort: UInt16, channel: String, subscribers: Int, rate: Int, duration: Double, readerThreads: Int, batchMicros: UInt32) {
        self.batchMicros = batchMicros
        self.endpoint = endpoint
        self.simPort = simPort
        self.channel = channel
        self.subscribers = subscribers
        self.rate = rate
        self.duration = duration
        self.readerThreads = max(1, readerThreads)
    }

    /// The `data` of a notification: a Deribit ticker's fields plus the bench's own two.
    static func payload(seq: Int, ts: UInt64) -> [UInt8] {
        let text = #"{"bench_seq":\#(seq),"bench_ts":\#(ts),"timestamp":1700000000000,"stats":{"volume":12345.6789,"price_change":-1.2345,"low":61234.5,"high":63456.5},"state":"open","settlement_price":62345.67,"open_interest":123456789,"min_price":61000.25,"max_price":64000.75,"mark_price":62500.12,"last_price":62500.5,"instrument_name":"BTC-PERPETUAL","index_price":62499.87,"funding_8h":0.00012345,"current_funding":0.00001234,"estimated_delivery_price":62499.87,"best_bid_price":62500.0,"best_bid_amount":12340.0,"best_ask_price":62500.5,"best_ask_amount":5670.0,"interest_value":0.0123456}"#
        return Array(text.utf8)
    }

    func run(label: String) throws -> FanOutResult {
        var states: [SubscriberState] = []
        var fds: [Int32] = []
        defer { fds.forEach { close($0) } }
        var encoder = FrameEncoder()
        for i in 0..<subscribers {
            let (fd, extra) = try openWebSocket(endpoint)
            fds.append(fd)
            let reader = FrameReader(fd: fd, initial: extra)
            let answer = try call(fd, reader, &encoder, id: i + 1, method: "public/subscribe",
                                  params: #"{"channels":["\#(channel)"]}"#)
            guard answer.contains(channel) else { throw BenchError("subscribe refused: \(answer)") }
            setNonBlocking(fd, true)
            states.append(SubscriberState(reader: reader))
        }

        let total = Int(duration * Double(rate))
        let warmupCount = total / 10
        let interval = 1e9 / Double(rate)
        let t0 = monotonicNanos() + 50_000_000
        let cpu0 = selfCPUSeconds()
        let server0 = serverPID.flatMap(processCPUSeconds)
        let sim0 = simPID.flatMap(processCPUSeconds)
        var result = FanOutResult(label: label, subscribers: subscribers, rate: rate)
        result.published = total
        result.notificationBytes = 85 + channel.utf8.count + Self.payload(seq: total, ts: t0).count

        let pubFD = try connectTCP("127.0.0.1", simPort)
        defer { close(pubFD) }
        setNonBlocking(pubFD, true)
        let channel = self.channel
        let lateBox = Box(0)
        let publisher = Worker("publisher") {
            var late = 0
            var scratch = [UInt8](repeating: 0, count: 65536)
            for k in 0..<total {
                let due = t0 + UInt64(Double(k) * interval)
                let now = monotonicNanos()
                if now < due { sleepUntil(due) } else if now - due > 1_000_000 { late += 1 }
                let body = Self.payload(seq: k, ts: due)
                let head = "POST /sim/publish?channel=\(channel) HTTP/1.1\r\nHost: sim\r\nContent-Length: \(body.count)\r\n\r\n"
                writeAll(pubFD, Array(head.utf8) + body)
                _ = scratch.withUnsafeMutableBytes { recv(pubFD, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            }
            lateBox.value = late
        }

        let lastDue = t0 + UInt64(Double(max(total - 1, 0)) * interval)
        let deadline = lastDue + 3_000_000_000
        let groups = (0..<readerThreads).map { g in stride(from: g, to: states.count, by: readerThreads).map { states[$0] } }
        let histograms = groups.map { _ in Box(Histogram()) }
        let lastArrivals = groups.map { _ in Box(t0) }
        let workers = groups.indices.map { g in
            let group = groups[g]
            let hbox = histograms[g]
            let lastBox = lastArrivals[g]
            return Worker("reader-\(g)") {
                var histogram = Histogram()
                let ep = Epoll()
                for (i, s) in group.enumerated() { ep.addReadable(s.reader.fd, token: i) }
                var complete = 0
                var lastArrival = t0
                let batch = self.batchMicros
                while complete < group.count, monotonicNanos() < deadline {
                    if batch > 0 { usleep(batch) }
                    ep.wait(timeoutMs: 50) { i in
                        let s = group[i]
                        let arrival = monotonicNanos()
                        s.reader.readAvailable { msg in
                            guard let a = find(#""bench_seq":"#, in: msg), let seq = parseUInt(msg, at: a),
                                  let b = find(#""bench_ts":"#, in: msg, from: a), let ts = parseUInt(msg, at: b) else { return }
                            if seq == s.next {
                                s.next += 1
                            } else if seq > s.next {
                                s.next = seq + 1
                            } else {
                                s.outOfOrder += 1
                            }
                            s.received += 1
                            if seq >= UInt64(warmupCount) { histogram.record(arrival > ts ? arrival - ts : 0) }
                            lastArrival = arrival
                        }
                        if s.next == UInt64(total) || s.reader.closed {
                            complete += 1
                            ep.remove(s.reader.fd)
                        }
                    }
                }
                hbox.value = histogram
                lastBox.value = lastArrival
            }
        }
        publisher.join()
        workers.forEach { $0.join() }
        for h in histograms { result.histogram.merge(h.value) }
        for s in states {
            result.received += s.received
            result.outOfOrder += s.outOfOrder
            if s.reader.closed { result.closed += 1 }
        }
        let lastArrival = lastArrivals.map(\.value).max() ?? t0
        result.seconds = Double(max(lastArrival, lastDue) - t0) / 1e9
        let elapsed = Double(monotonicNanos() - t0) / 1e9
        result.benchCPU = (selfCPUSeconds() - cpu0) / elapsed
        if let a = server0, let b = serverPID.flatMap(processCPUSeconds) { result.serverCPU = (b - a) / elapsed }
        if let a = sim0, let b = simPID.flatMap(processCPUSeconds) { result.simCPU = (b - a) / elapsed }
        result.lateSends = lateBox.value
        return result
    }
}

func fanOutHeader() -> String {
    """
    | path | subscribers | publish/s | delivered msg/s | expected | lost | reordered | closed | p50 µs | p99 µs | p99.9 µs | max µs | server CPU | sim CPU | bench CPU | kept up |
    |---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
    """
}

func fanOutRow(_ r: FanOutResult) -> String {
    let h = r.histogram
    return "| \(r.label) | \(r.subscribers) | \(r.rate) | \(String(format: "%.0f", r.delivered)) | \(r.expected) | \(r.lost) | "
        + "\(r.outOfOrder) | \(r.closed) | \(micros(h.value(atQuantile: 0.5))) | \(micros(h.value(atQuantile: 0.99))) | "
        + "\(micros(h.value(atQuantile: 0.999))) | \(micros(h.max)) | \(percent(r.serverCPU)) | \(percent(r.simCPU)) | \(String(format: "%.0f%%", r.benchCPU * 100)) | \(r.sustained ? "yes" : "no") |"
}
