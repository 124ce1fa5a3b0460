import Foundation

/// The gateway's counters and gauges, rendered in the Prometheus text format (SPEC §5).
/// Labels stay bounded: configured client names, `anonymous`, and fixed enums.
/// Confined to the gateway's loop.
struct GatewayMetrics {
    var upstreamReconnects = 0
    var clientDisconnects: [String: Int] = [:]
    /// Request counts by `client` label, in slots: the request path adds to an array element
    /// instead of hashing a label. Slot 0 is `anonymous`; configured names get one on first
    /// use, so the number of slots stays bounded by the configuration.
    private(set) var requestLabels: [String] = ["anonymous"]
    private(set) var requestCounts: [RequestCounts] = [RequestCounts()]
    private var requestSlots: [String: Int] = ["anonymous": 0]
    var notifications = 0
    var authFailures = 0
    var framesSent = 0
    var codCancels: [String: Int] = [:]
    var rateLimited: [String: Int] = [:]
    var requestDuration = Histogram(bounds: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10])

    /// The slot of a `client` label (see `requestCounts`).
    mutating func requestSlot(for label: String) -> Int {
        if let slot = requestSlots[label] { return slot }
        requestLabels.append(label)
        requestCounts.append(RequestCounts())
        requestSlots[label] = requestLabels.count - 1
        return requestLabels.count - 1
    }

    mutating func request(slot: Int, _ outcome: Outcome) {
        requestCounts[slot][outcome] += 1
    }

    /// Non-zero request counts as (client, outcome, count), sorted by client, then outcome.
    var requests: [(client: String, outcome: String, count: Int)] {
        var out: [(client: String, outcome: String, count: Int)] = []
        for (label, counts) in zip(requestLabels, requestCounts) {
            for outcome in Outcome.allCases where counts[outcome] > 0 {
                out.append((label, outcome.rawValue, counts[outcome]))
            }
        }
        return out.sorted { ($0.client, $0.outcome) < ($1.client, $1.outcome) }
    }

    enum Outcome: String, CaseIterable { case forwarded, local, refused }

    struct RequestCounts {
        private var counts = (forwarded: 0, local: 0, refused: 0)

        subscript(outcome: Outcome) -> Int {
            get {
                switch outcome {
                case .forwarded: return counts.forwarded
                case .local: return counts.local
                case .refused: return counts.refused
                }
            }
            set {
                switch outcome {
                case .forwarded: counts.forwarded = newValue
                case .local: counts.local = newValue
                case .refused: counts.refused = newValue
                }
            }
        }
    }

    struct Histogram {
        let bounds: [Double]
        /// Observations per bucket: `bucketCounts[i]` counts those in (bounds[i-1], bounds[i]].
        private var bucketCounts: [Int]
        var sum = 0.0
        var count = 0

        init(bounds: [Double]) {
            self.bounds = bounds
            bucketCounts = Array(repeating: 0, count: bounds.count)
        }

        /// One bucket is counted; most observations land in the first few.
        mutating func observe(_ v: Double) {
            if let i = bounds.firstIndex(where: { v <= $0 }) { bucketCounts[i] += 1 }
            sum += v
            count += 1
        }

        /// Prometheus' cumulative counts: observations <= bounds[i].
        var counts: [Int] {
            var total = 0
            return bucketCounts.map { total += $0; return total }
        }
    }
}

/// Builds Prometheus exposition text.
struct PrometheusWriter {
    private(set) var text = ""

    mutating func family(_ name: String, _ type: String, _ help: String) {
        text += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
    }

    mutating func sample(_ name: String, _ labels: [(String, String)] = [], _ value: Double) {
        text += name
        if !labels.isEmpty {
            text += "{" + labels.map { "\($0.0)=\"\(Self.escape($0.1))\"" }.joined(separator: ",") + "}"
        }
        text += " " + Self.format(value) + "\n"
    }

    static func format(_ v: Double) -> String {
        if v == v.rounded(), abs(v) < 1e15 { return String(Int64(v)) }
        return String(v)
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
    }
}
