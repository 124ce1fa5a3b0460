import Foundation
import Gateway
import Logging
import TestSupport
import Transport
import XCTest

/// The gateway as an object in the test process, on a `ManualClock`, in front of a real
/// `deribit-sim` process and reached by real WebSocket clients: heartbeats, timeouts and
/// shutdown bounds are driven in milliseconds while every byte still crosses a socket.
final class InProcessGateway: @unchecked Sendable {
    let sim: SimProcess
    let loop: EventLoop
    let clock = ManualClock()
    let gateway: Gateway
    let port: Int

    static let clients: [GatewayConfig.Client] = [
        .init(name: "A", secret: Secret("a-secret"), scope: .trade, cancelOnDisconnect: true),
        .init(name: "B", secret: Secret("b-secret"), scope: .trade, cancelOnDisconnect: false),
    ]

    init(_ test: XCTestCase, configure: (inout GatewayConfig) -> Void = { _ in }) throws {
        sim = try SimProcess()
        var config = GatewayConfig()
        config.listen = ListenAddress(host: "127.0.0.1", port: 0, family: .ipv4)
        guard case .success(let url) = UpstreamURL.parse(sim.wsURL) else { throw TestFailure("bad sim url") }
        config.upstream.url = url
        config.upstream.credentials = .init(clientID: "gw", clientSecret: Secret("gw-secret"))
        // The simulator's clock runs for real while this one stands still between advances:
        // an interval of an hour keeps the upstream's silence check out of the way.
        config.upstream.heartbeatIntervalSeconds = 3600
        config.clients = Self.clients
        if let kind = ProcessInfo.processInfo.environment["E2E_EVENT_LOOP"], let k = EventLoopKind(rawValue: kind) {
            config.transport.eventLoop = k
        }
        configure(&config)
        loop = test.makeLoop(config.transport.eventLoop)
        var logger = Logger(label: "in-process-gateway")
        logger.logLevel = .critical
        let gateway = Gateway(config: config, loop: loop, logger: logger, clock: clock)
        self.gateway = gateway
        do {
            port = try onLoop(loop) { Int(try gateway.start().port) }
        } catch {
            sim.stop()
            throw error
        }
        try pollUntil("the upstream session to be ready") { try self.health().status == 200 }
    }

    var wsURL: String { "ws://127.0.0.1:\(port)/ws/api/v2" }

    /// Moves the gateway's clock forward, running what comes due on its loop.
    func advance(seconds: Double) throws {
        let clock = self.clock
        try onLoop(loop) { clock.advance(by: UInt64(seconds * 1e9)) }
    }

    func health() throws -> (status: Int, body: [String: Any]) {
        let r = try HTTPClient.request("GET", port: port, path: "/health")
        return (r.status, (try? JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any]) ?? [:])
    }

    func metric(_ sample: String) throws -> Double {
        let text = String(decoding: try HTTPClient.request("GET", port: port, path: "/metrics").body, as: UTF8.self)
        for line in text.split(separator: "\n") where line.hasPrefix(sample + " ") {
            return Double(line.split(separator: " ").last ?? "") ?? 0
        }
        return 0
    }

    /// A client authenticated as `name` (secret `<lowercased name>-secret`).
    func client(_ name: String, loop clientLoop: EventLoop) throws -> RPCClient {
        let c = try RPCClient(url: wsURL, loop: clientLoop)
        let r = try c.call("public/auth", ["grant_type": "client_credentials", "client_id": name, "client_secret": "\(name.lowercased())-secret"])
        guard r["result"] != nil else { throw TestFailure("auth as \(name) failed: \(r)") }
        return c
    }

    func openOrders() throws -> Set<String> {
        let orders = try sim.state()["open_orders"] as? [[String: Any]] ?? []
        return Set(orders.compactMap { $0["order_id"] as? String })
    }

    func stop() {
        let gateway = self.gateway
        let stopped = Waiter<Void>()
        loop.execute { gateway.shutdown { _ in stopped.fulfil(()) } }
        // The shutdown's bounds are on the manual clock: move it past them.
        for _ in 0..<50 where (try? stopped.wait("", timeout: 0.05)) == nil {
            try? advance(seconds: 1)
        }
        sim.stop()
    }
}
