import Foundation
import Transport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Helpers of the session tests (heartbeats, cancel-on-disconnect, slow consumers, shutdown):
/// a simulator and a gateway whose `clients` are A (flag on), B (flag off) and F (scope full).
final class SessionFixture {
    let sim: SimProcess
    let gw: GatewayProcess
    let loop: EventLoop

    static var clients: [[String: Any]] { [
        ["name": "A", "secret": "a-secret", "scope": "trade", "cancel_on_disconnect": true],
        ["name": "B", "secret": "b-secret", "scope": "trade", "cancel_on_disconnect": false],
        ["name": "F", "secret": "f-secret", "scope": "full"],
    ] }

    init(_ test: XCTestCase, simArguments: [String] = [], upstream: [String: Any] = [:], extra: [String: Any] = [:]) throws {
        sim = try SimProcess(simArguments)
        do {
            gw = try GatewayProcess(config: GatewayProcess.config(sim: sim, clients: Self.clients, upstream: upstream, extra: extra))
        } catch {
            sim.stop()
            throw error
        }
        loop = test.makeLoop(.dispatch)
        try gw.waitForHealth(200)
    }

    func stop() {
        gw.stop()
        sim.stop()
    }

    /// A client authenticated as `name` (secret `<lowercased name>-secret`).
    func client(_ name: String) throws -> RPCClient {
        let c = try RPCClient(url: gw.wsURL, loop: loop)
        let r = try c.call("public/auth", ["grant_type": "client_credentials", "client_id": name, "client_secret": "\(name.lowercased())-secret"])
        guard r["result"] != nil else { throw TestFailure("auth as \(name) failed: \(r)") }
        return c
    }

    /// A resting limit buy far below the market; returns the order id.
    @discardableResult
    func placeOrder(_ c: RPCClient, label: String) throws -> String {
        let r = try c.call("private/buy", ["instrument_name": "BTC-PERPETUAL", "amount": 10, "type": "limit", "price": 1000, "label": label])
        guard let order = (r["result"] as? [String: Any])?["order"] as? [String: Any], let id = order["order_id"] as? String else {
            throw TestFailure("private/buy failed: \(r)")
        }
        guard order["order_state"] as? String == "open" else { throw TestFailure("order not resting: \(order)") }
        return id
    }

    /// Order ids open at the exchange, the source of truth.
    func openOrders() throws -> Set<String> {
        let orders = try sim.state()["open_orders"] as? [[String: Any]] ?? []
        return Set(orders.compactMap { $0["order_id"] as? String })
    }

    func openOrders(label: String) throws -> Set<String> {
        let orders = try sim.state()["open_orders"] as? [[String: Any]] ?? []
        return Set(orders.filter { $0["label"] as? String == label }.compactMap { $0["order_id"] as? String })
    }

    func methodCalls(_ method: String) throws -> Int {
        (try sim.state()["method_calls"] as? [String: Any])?[method] as? Int ?? 0
    }

    /// Polls the simulator's state (no event to wait for) until `condition` holds.
    func waitForOpenOrders(_ what: String, timeout: Double = testDeadline, _ condition: (Set<String>) -> Bool) throws {
        var last: Set<String> = []
        try pollUntil(what, timeout: timeout, detail: { "open orders: \(last.sorted())" }) {
            last = try openOrders()
            return condition(last)
        }
    }

    /// `deribit_gateway_…{labels} value` from /metrics (0 when absent).
    func metric(_ sample: String) throws -> Double {
        let r = try HTTPClient.request("GET", port: gw.port, path: "/metrics")
        let text = String(decoding: r.body, as: UTF8.self)
        for line in text.split(separator: "\n") where line.hasPrefix(sample + " ") {
            return Double(line.split(separator: " ").last ?? "") ?? 0
        }
        return 0
    }

    func waitForMetric(_ sample: String, atLeast value: Double, timeout: Double = testDeadline) throws {
        var now = 0.0
        try pollUntil("\(sample) to reach \(value)", timeout: timeout, detail: { "now \(now)" }) {
            now = try metric(sample)
            return now >= value
        }
    }

    /// Waits until the gateway counts `n` connected clients.
    func waitForConnectedClients(_ n: Int) throws {
        try waitForMetric("deribit_gateway_clients_connected", atMost: Double(n))
    }

    func waitForMetric(_ sample: String, atMost value: Double, timeout: Double = testDeadline) throws {
        var now = 0.0
        try pollUntil("\(sample) to fall to \(value)", timeout: timeout, detail: { "now \(now)" }) {
            now = try metric(sample)
            return now <= value
        }
    }

    /// A round trip through the shared upstream connection: every request the gateway sent
    /// upstream before it (a cancel, say) has been handled by the exchange when it returns.
    func upstreamBarrier(_ via: RPCClient) throws {
        let r = try via.call("public/get_time")
        guard r["result"] != nil else { throw TestFailure("public/get_time: \(r)") }
    }

    var gatewayLog: String { gw.child.stderrText }
}
