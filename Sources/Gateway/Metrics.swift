import Foundation

/// The gateway's counters and gauges, rendered in the Prometheus text format (SPEC §5).
/// Labels stay bounded: configured client names, `anonymous`, and fixed enums.
/// Confined to the gateway's loop.
struct GatewayMetrics {
    var upstreamReconnects = 0
    var clientDisconnects: [String: Int] = [:]
    var requests: [LabelPair: Int] = [:]
    var notifications = 0
    var framesSent = 0
    var codCancels: [String: Int] = [:]
    var rateLimited: [String: Int] = [:]
    var requestDuration = Histogram(bounds: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10])

    struct LabelPair: Hashable {
        let client: String
        let outcome: String
    }

    mutating func request(_ client: String, _ outcome: Outcome) {
        requests[LabelPair(client: client, outcome: outcome.rawValue), default: 0] += 1
    }

    enum Outcome: String { case forwarded, local, refused }

    struct Histogram {
        let bounds: [Double]
        var counts: [Int]
        var sum = 0.0
        var count = 0

        init(bounds: [Double]) {
            self.bounds = bounds
            counts = Array(repeating: 0, count: bounds.count)
        }

        mutating func observe(_ v: Double) {
            for (i, b) in bounds.enumerated() where v <= b { counts[i] += 1 }
            sum += v
            count += 1
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
