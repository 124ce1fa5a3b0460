import Foundation
import Transport
import XCTest

/// The shared upstream session through the real gateway: heartbeats, loss and reconnect, token
/// refresh, credits, health (SPEC §5, §6.5, §6.6).
final class GatewayCoreUpstreamTests: XCTestCase {
    func testUpstreamTestRequestsAreAnsweredAndNeverShownToClients() throws {
        let (sim, gw) = try startGateway(simArguments: ["--rate", "50"], upstream: ["heartbeat_interval_s": 10])
        let loop = makeLoop(.dispatch)
        let client = try RPCClient(url: gw.wsURL, loop: loop)
        let channel = "ticker.BTC-PERPETUAL.100ms"
        XCTAssertEqual(try client.call("public/subscribe", ["channels": [channel]])["result"] as? [String], [channel])

        let connection = try XCTUnwrap(try sim.openConnections().first)
        XCTAssertEqual(connection["heartbeat_interval"] as? Int, 10)
        let connectionID = try XCTUnwrap(connection["id"] as? Int)
        // The simulator's test_request, sent now rather than after the 10 s interval; public/test
        // is the gateway's answer.
        XCTAssertEqual(try sim.post("/sim/fault/test_request"), 200)
        try pollUntil("the gateway to answer a test_request") { try sim.methodCalls("public/test") >= 1 }
        let afterAnswer = try XCTUnwrap(try sim.openConnections().first)
        XCTAssertEqual(afterAnswer["awaiting_test_response"] as? Bool, false)
        XCTAssertEqual(afterAnswer["id"] as? Int, connectionID)
        XCTAssertEqual(try sim.simTotals()["connections_opened"], 1)
        XCTAssertEqual(try gw.health().status, 200)

        // The client, which set no heartbeat, saw market data from before the test_request to
        // after its answer, and never a heartbeat message.
        var seen: [[UInt8]] = []
        while seen.count < 20 { seen.append(try client.next("ticker data")) }
        for m in seen {
            XCTAssertTrue(utf8String(m).contains(#""channel":"\#(channel)""#), "unexpected message: \(utf8String(m))")
            XCTAssertFalse(utf8String(m).contains("heartbeat"), "a heartbeat reached the client: \(utf8String(m))")
        }
        XCTAssertNil(try? client.closed.wait("no close", timeout: 0.01))
    }

    func testUpstreamLossFailsPendingKeepsClientsAndResubscribes() throws {
        let (sim, gw) = try startGateway(simArguments: ["--rate", "20"])
        let loop = makeLoop(.dispatch)
        let a = try RPCClient(url: gw.wsURL, loop: loop)
        let b = try RPCClient(url: gw.wsURL, loop: loop)
        let channel = "ticker.BTC-PERPETUAL.100ms"
        XCTAssertEqual(try a.call("public/subscribe", ["channels": [channel]])["result"] as? [String], [channel])
        XCTAssertNotNil(try a.notification(channel: channel)["params"])
        let before = try XCTUnwrap(try sim.openConnections().first?["id"] as? Int)

        // A request held by the exchange when the connection drops fails with -32000.
        XCTAssertEqual(try sim.post("/sim/fault/delay?ms=2000"), 200)
        b.sendRaw(rawRequestText(id: #""pending-1""#, "public/get_time"))
        try pollUntil("the held request to reach the exchange") { try sim.methodCalls("public/get_time") == 1 }
        XCTAssertEqual(try sim.post("/sim/fault/drop_all"), 200)
        let failed = try b.response(idJSON: #""pending-1""#)
        XCTAssertEqual(rpcErrorCode(try RPCClient.decode(failed)), -32000, utf8String(failed))
        XCTAssertEqual(responseIDBytes(failed).map(utf8String), #""pending-1""#)
        // The new session's handshake is held by the delay: unhealthy meanwhile.
        try gw.waitForHealth(503)
        // A request made while the upstream is away waits for the next session (SPEC §6.5).
        b.sendRaw(rawRequestText(id: #""while-down""#, "public/get_time"))
        XCTAssertEqual(try sim.post("/sim/fault/delay?ms=0"), 200)
        try gw.waitForHealth(200)
        let waited = try b.response(idJSON: #""while-down""#)
        XCTAssertNotNil(try RPCClient.decode(waited)["result"], utf8String(waited))

        // Clients stayed connected; the held channel was subscribed again on the new session.
        XCTAssertNil(try? a.closed.wait("no close", timeout: 0.01))
        XCTAssertNil(try? b.closed.wait("no close", timeout: 0.01))
        try pollUntil("the re-subscription") { try sim.subscribeRequests(channel) == 2 }
        let after = try XCTUnwrap(try sim.openConnections().first?["id"] as? Int)
        XCTAssertNotEqual(after, before)
        try pollUntil("the new session to hold \(channel)") { try sim.channelHolders(channel) == [after] }
        XCTAssertEqual(try sim.post("/sim/publish?channel=\(channel)", body: #"{"marker":"after-reconnect"}"#), 200)
        var m = try a.notification(channel: channel)
        while (m["params"] as? [String: Any])?["data"] as? [String: String] != ["marker": "after-reconnect"] {
            m = try a.notification(channel: channel)
        }
        XCTAssertNotNil(try b.call("public/get_time")["result"])
        XCTAssertEqual(try sim.simTotals()["connections_opened"], 2)
    }

    /// A second loss while the held channels are being subscribed again must not lose them.
    func testHeldChannelsSurviveALossDuringTheirReSubscription() throws {
        let (sim, gw) = try startGateway(simArguments: ["--rate", "20"])
        let loop = makeLoop(.dispatch)
        let a = try RPCClient(url: gw.wsURL, loop: loop)
        let channel = "ticker.ETH-PERPETUAL.100ms"
        XCTAssertEqual(try a.call("public/subscribe", ["channels": [channel]])["result"] as? [String], [channel])

        // Every answer of the next session is held, so its re-subscription is still pending when
        // that session is lost too.
        XCTAssertEqual(try sim.post("/sim/fault/delay?ms=300"), 200)
        XCTAssertEqual(try sim.post("/sim/fault/drop_all"), 200)
        try pollUntil("the re-subscription on the second session") { try sim.subscribeRequests(channel) == 2 }
        XCTAssertEqual(try sim.post("/sim/fault/drop_all"), 200)
        XCTAssertEqual(try sim.post("/sim/fault/delay?ms=0"), 200)
        try pollUntil("the re-subscription on the third session") { try sim.subscribeRequests(channel) == 3 }
        try gw.waitForHealth(200)
        let session = try XCTUnwrap(try sim.openConnections().first?["id"] as? Int)
        try pollUntil("the third session to hold \(channel)") { try sim.channelHolders(channel) == [session] }
        XCTAssertEqual(try sim.post("/sim/publish?channel=\(channel)", body: #"{"marker":"third-session"}"#), 200)
        var m = try a.notification(channel: channel)
        while (m["params"] as? [String: Any])?["data"] as? [String: String] != ["marker": "third-session"] {
            m = try a.notification(channel: channel)
        }
        XCTAssertEqual(try sim.simTotals()["connections_opened"], 3)
    }

    func testUpstreamTokenIsRefreshedWithoutDroppingTheSession() throws {
        let (sim, gw) = try startGateway(simArguments: ["--token-lifetime", "3"], clients: [["name": "viewer", "secret": "v", "scope": "read"]])
        let started = Date()
        let connectionID = try XCTUnwrap(try sim.openConnections().first?["id"] as? Int)
        // The first token expires after 3 s; by then the gateway must have used its refresh token.
        try pollUntil("a refresh_token grant and the first token's expiry", timeout: 10, every: 100_000) {
            try sim.methodCalls("public/auth") >= 2 && Date().timeIntervalSince(started) > 3.5
        }
        try gw.waitForHealth(200)
        let connections = try sim.openConnections()
        XCTAssertEqual(connections.count, 1)
        XCTAssertEqual(connections.first?["id"] as? Int, connectionID)
        XCTAssertEqual(connections.first?["authenticated"] as? Bool, true)
        XCTAssertEqual(try sim.simTotals()["connections_opened"], 1)
        // A private call after the first token's expiry works: the session is authenticated still.
        let loop = makeLoop(.dispatch)
        let c = try RPCClient(url: gw.wsURL, loop: loop)
        try c.authenticate("viewer", "v")
        let orders = try c.call("private/get_open_orders_by_currency", ["currency": "BTC"])
        XCTAssertNotNil(orders["result"] as? [Any], "\(orders)")
    }

    func testCreditModelKeepsTheSessionAndRateLimitsAnswerAtOnce() throws {
        let sim = try SimProcess(["--credit-max", "5000", "--credit-cost", "500", "--credit-refill", "1000"])
        defer { sim.stop() }
        let clients: [[String: Any]] = [
            ["name": "limited", "secret": "l", "scope": "read", "rate_limit": ["per_s": 1, "burst": 2]],
        ]
        let gw = try GatewayProcess(config: GatewayProcess.config(
            sim: sim, clients: clients, upstream: ["credits": ["max": 5000, "default_cost": 500, "refill_per_s": 1000]]))
        defer { gw.stop() }
        try gw.waitForHealth(200)
        let connectionID = try XCTUnwrap(try sim.openConnections().first?["id"] as? Int)
        let loop = makeLoop(.dispatch)

        // A client over its own rate_limit gets 10028 at once, before the exchange answers anything.
        let limited = try RPCClient(url: gw.wsURL, loop: loop)
        try limited.authenticate("limited", "l")
        try pollUntil("the credit model to refill") {
            (try gw.metricValue(#"deribit_gateway_credits_available{bucket="default"}"#) ?? 0) >= 4000
        }
        XCTAssertEqual(try sim.post("/sim/fault/delay?ms=300"), 200)
        for i in 1...5 { limited.sendRaw(rawRequestText(id: "\(i)", "public/get_time")) }
        let early = try limited.nextMessages(3)
        for m in early {
            let obj = try RPCClient.decode(m)
            XCTAssertEqual(rpcErrorCode(obj), 10028, utf8String(m))
            XCTAssertNil(obj["usIn"], "the gateway answers this itself")
        }
        XCTAssertEqual(Set(early.compactMap(responseIDBytes).map(utf8String)), ["3", "4", "5"])
        for m in try limited.nextMessages(2) { XCTAssertNotNil(try RPCClient.decode(m)["result"], utf8String(m)) }
        XCTAssertEqual(try sim.post("/sim/fault/delay?ms=0"), 200)

        // One greedy client: the gateway answers some requests 10028 itself; the exchange never does.
        let greedy = try RPCClient(url: gw.wsURL, loop: loop)
        let other = try RPCClient(url: gw.wsURL, loop: loop)
        let callsBefore = try sim.methodCalls("public/get_time")
        let n = 60
        for i in 1...n { greedy.sendRaw(rawRequestText(id: "\(i)", "public/get_time")) }
        var results = 0
        var refused = 0
        for m in try greedy.nextMessages(n) {
            let obj = try RPCClient.decode(m)
            if obj["result"] != nil {
                results += 1
            } else {
                XCTAssertEqual(rpcErrorCode(obj), 10028, utf8String(m))
                XCTAssertNil(obj["usIn"], "a 10028 from the exchange reached the client: \(utf8String(m))")
                refused += 1
            }
        }
        XCTAssertGreaterThan(results, 0)
        XCTAssertGreaterThan(refused, 0)
        XCTAssertEqual(try sim.methodCalls("public/get_time") - callsBefore, results, "every forwarded request was answered")
        let connections = try sim.openConnections()
        XCTAssertEqual(connections.count, 1)
        XCTAssertEqual(connections.first?["id"] as? Int, connectionID, "the exchange closed the gateway's session")
        XCTAssertEqual(try sim.simTotals()["connections_opened"], 1)
        let account = ((try sim.state()["credits"] as? [String: Any])?["accounts"] as? [String: Any])?["gw"] as? [String: Any]
        XCTAssertGreaterThanOrEqual((account?["default"] as? NSNumber)?.doubleValue ?? -1, 0)

        // Once the model has refilled, another client's request goes through; nobody was disconnected.
        try pollUntil("the credit model to refill") {
            (try gw.metricValue(#"deribit_gateway_credits_available{bucket="default"}"#) ?? 0) >= 1500
        }
        XCTAssertNotNil(try other.call("public/get_time")["result"])
        XCTAssertNotNil(try greedy.call("public/get_time")["result"])
        XCTAssertEqual(try gw.health().status, 200)
        for c in [limited, greedy, other] { XCTAssertNil(try? c.closed.wait("no close", timeout: 0.01)) }
    }

    func testHealthFollowsTheSimulatorComingAndGoing() throws {
        let port = try freeLoopbackPort()
        let url = "ws://127.0.0.1:\(port)/ws/api/v2"
        let gw = try GatewayProcess(config: [
            "upstream": ["url": url, "client_id": "gw", "client_secret": "gw-secret", "reconnect_min_ms": 50, "reconnect_max_ms": 300],
        ])
        defer { gw.stop() }
        // Nothing listens: unhealthy, and it stays so across several reconnect attempts.
        for _ in 0..<10 {
            let h = try gw.health()
            XCTAssertEqual(h.status, 503)
            XCTAssertNotEqual((h.body["upstream"] as? [String: Any])?["state"] as? String, "ready")
            usleep(50_000)
        }
        let sim = try SimProcess(["--listen", "127.0.0.1:\(port)"])
        defer { sim.stop() }
        XCTAssertEqual(sim.port, port)
        try gw.waitForHealth(200)
        XCTAssertEqual((try gw.health().body["upstream"] as? [String: Any])?["state"] as? String, "ready")

        // The simulator goes away: 503; a new one on the same port: 200 again.
        sim.stop()
        try gw.waitForHealth(503)
        let sim2 = try SimProcess(["--listen", "127.0.0.1:\(port)"])
        defer { sim2.stop() }
        try gw.waitForHealth(200)
        XCTAssertEqual(try sim2.simTotals()["connections_opened"], 1)
    }
}
