import Foundation
import Gateway
import TestSupport
import Transport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// SPEC §7 and §8 at the edges: cancel-on-disconnect cancels that expire or get ambiguous
/// answers, shutdown under a slow or stalled exchange, orders closed or created while the
/// upstream was away, edits, and an upstream that answers nothing while data keeps flowing.
/// Each test drives the simulator's faults and checks the orders left open at the exchange.
final class OrdersNeverLeftBehindTests: XCTestCase {
    // MARK: 1. cancels are never given up

    /// Deribit's lowest matching-engine tier is 5/s, burst 20: 30 cancels take seconds, far longer
    /// than `request_timeout_ms`. Every one of them must still reach the exchange.
    func testCancelsWaitingForMatchingEngineCreditsAreNeverDropped() throws {
        let f = try SessionFixture(self, simArguments: ["--me-rate", "10", "--me-burst", "5"],
                                   upstream: ["request_timeout_ms": 400, "credits": ["matching_engine_rate": 10, "matching_engine_burst": 5]])
        defer { f.stop() }
        let a = try f.client("A")
        let b = try f.client("B")
        var mine: Set<String> = []
        for k in 0..<15 { mine.insert(try f.placeOrder(a, label: "low-\(k)")) }
        let kept = try f.placeOrder(b, label: "kept")
        XCTAssertEqual(try f.openOrders(), mine.union([kept]))

        a.kill()
        try f.waitForOpenOrders("every one of A's 15 orders cancelled", timeout: 20) { $0 == [kept] }
        try f.waitForMetric("deribit_gateway_cod_cancels_pending", atMost: 0)
        XCTAssertEqual(try f.metric(#"deribit_gateway_cod_cancels_total{client="A"}"#), 15)
        XCTAssertFalse(f.gatewayLog.contains("cancel-on-disconnect failed"), f.gatewayLog)
        XCTAssertEqual(try f.gw.health().status, 200, "the exchange never closed the session for credits")
    }

    /// A cancel whose answer is lost (-32001) is ambiguous: the gateway asks for the order's state,
    /// and cancels again when the order is still open.
    func testAnUnansweredCancelIsCheckedAndSentAgain() throws {
        let f = try SessionFixture(self, upstream: ["request_timeout_ms": 300])
        defer { f.stop() }
        let a = try f.client("A")
        let order = try f.placeOrder(a, label: "lost-cancel")
        // The first cancel is dropped unread: the order stays open at the exchange.
        XCTAssertEqual(try f.sim.post("/sim/fault/lose_answer?method=private/cancel&count=1&execute=false"), 200)
        a.kill()
        try f.waitForOpenOrders("the order cancelled after the check", timeout: 10) { !$0.contains(order) }
        XCTAssertEqual(try f.methodCalls("private/cancel"), 1, "the dropped one was never seen; the second went through")
        XCTAssertGreaterThanOrEqual(try f.methodCalls("private/get_order_state"), 1)
        try f.waitForMetric("deribit_gateway_cod_cancels_pending", atMost: 0)
        XCTAssertGreaterThanOrEqual(try f.metric("deribit_gateway_cod_cancel_failures_total"), 1)
        let log = f.gatewayLog
        XCTAssertTrue(log.split(separator: "\n").contains { $0.contains("not confirmed") && $0.contains("client=A") && $0.contains("order_id=\(order)") }, log)
    }

    /// The cancel took effect and only its answer was lost: the check finds the order cancelled,
    /// and nothing is sent again.
    func testACancelWhoseAnswerWasLostIsConfirmedByTheCheck() throws {
        let f = try SessionFixture(self, upstream: ["request_timeout_ms": 300])
        defer { f.stop() }
        let a = try f.client("A")
        let order = try f.placeOrder(a, label: "answer-lost")
        XCTAssertEqual(try f.sim.post("/sim/fault/lose_answer?method=private/cancel&count=1&execute=true"), 200)
        a.kill()
        try f.waitForOpenOrders("the order cancelled", timeout: 10) { !$0.contains(order) }
        try f.waitForMetric("deribit_gateway_cod_cancels_pending", atMost: 0)
        XCTAssertEqual(try f.methodCalls("private/cancel"), 1, "confirmed by get_order_state, not cancelled twice")
        XCTAssertEqual(try f.methodCalls("private/get_order_state"), 1)
    }

    // MARK: 2. shutdown waits for the confirmations

    /// Creations in flight under a 3 s exchange delay: the shutdown waits for their answers,
    /// cancels the orders, and only then logs out.
    func testShutdownWaitsForCreationsUnderASlowExchange() throws {
        let f = try SessionFixture(self)
        defer { f.stop() }
        let a = try f.client("A")
        let b = try f.client("B")
        let survivor = try f.placeOrder(b, label: "b-survives")
        XCTAssertEqual(try f.sim.post("/sim/fault/delay?ms=3000"), 200)
        for k in 0..<5 {
            try a.send("private/buy", ["instrument_name": "BTC-PERPETUAL", "amount": 10, "type": "limit", "price": 1000, "label": "slow-\(k)"])
        }
        try pollUntil("the five orders at the exchange") { try f.openOrders().count == 6 }

        XCTAssertEqual(kill(f.gw.child.process.processIdentifier, SIGTERM), 0)
        XCTAssertEqual(try f.gw.child.waitForExit(timeout: 20), 0, "exit code; log:\n\(f.gatewayLog)")
        XCTAssertEqual(try f.openOrders(), [survivor], "every in-flight order cancelled, the unflagged client's kept")
        XCTAssertEqual(try f.methodCalls("private/logout"), 1)
    }

    /// Thirty orders at a low tier (8/s, burst 5): their cancels take longer than the old fixed
    /// 2.5 s bound; the shutdown paces them and waits for all of them.
    func testShutdownAtTheLowestTierCancelsEveryFlaggedOrder() throws {
        let f = try SessionFixture(self, simArguments: ["--me-rate", "8", "--me-burst", "5"],
                                   upstream: ["credits": ["matching_engine_rate": 8, "matching_engine_burst": 5]])
        defer { f.stop() }
        let a = try f.client("A")
        for k in 0..<30 { try f.placeOrder(a, label: "tier-\(k)") }
        XCTAssertEqual(try f.openOrders().count, 30)
        XCTAssertEqual(kill(f.gw.child.process.processIdentifier, SIGTERM), 0)
        XCTAssertEqual(try f.gw.child.waitForExit(timeout: 20), 0, "exit code; log:\n\(f.gatewayLog)")
        XCTAssertEqual(try f.openOrders(), [])
    }

    /// The upstream is lost in the middle of the shutdown's cancels (without Deribit's own
    /// cancel-on-disconnect, the orders outlive it): the gateway reconnects and finishes them.
    func testShutdownReconnectsToFinishItsCancels() throws {
        let f = try SessionFixture(self, upstream: ["cancel_on_disconnect": false])
        defer { f.stop() }
        let a = try f.client("A")
        let b = try f.client("B")
        let kept = try f.placeOrder(b, label: "kept")
        for k in 0..<3 { try f.placeOrder(a, label: "a-\(k)") }
        XCTAssertEqual(try f.sim.post("/sim/fault/drop_on?method=private/cancel"), 200)
        XCTAssertEqual(kill(f.gw.child.process.processIdentifier, SIGTERM), 0)
        XCTAssertEqual(try f.gw.child.waitForExit(timeout: 15), 0, "exit code; log:\n\(f.gatewayLog)")
        XCTAssertEqual(try f.openOrders(), [kept], "A's orders cancelled over a second connection, B's kept")
        XCTAssertGreaterThanOrEqual(try f.sim.simTotals()["connections_opened"] ?? 0, 2)
        XCTAssertEqual(try f.methodCalls("private/logout"), 1)
    }

    /// An exchange that answers nothing: at `shutdown.cancel_wait_ms` the gateway logs every
    /// order left open and exits with status 3.
    func testShutdownBoundLogsEachOrderLeftOpenAndExitsThree() throws {
        // Without Deribit's own cancel-on-disconnect, the orders outlive the aborted upstream too.
        let f = try SessionFixture(self, upstream: ["cancel_on_disconnect": false], extra: ["shutdown": ["cancel_wait_ms": 500]])
        defer { f.stop() }
        let a = try f.client("A")
        let o1 = try f.placeOrder(a, label: "stuck-1")
        let o2 = try f.placeOrder(a, label: "stuck-2")
        XCTAssertEqual(try f.sim.post("/sim/fault/stop_answering?on=true"), 200)
        XCTAssertEqual(kill(f.gw.child.process.processIdentifier, SIGTERM), 0)
        XCTAssertEqual(try f.gw.child.waitForExit(timeout: 10), GatewayMain.exitOrdersLeftOpen, "log:\n\(f.gatewayLog)")
        let lines = f.gatewayLog.split(separator: "\n").filter { $0.contains("order left open") }
        for id in [o1, o2] {
            XCTAssertTrue(lines.contains { $0.contains("client=A") && $0.contains("order_id=\(id)") }, "logged: \(id)\n\(lines)")
        }
        XCTAssertEqual(try f.openOrders(), [o1, o2], "they are indeed still open")
    }

    // MARK: 3. orders closed while the upstream was away reach the strategies

    func testOrdersCancelledByTheUpstreamLossAreDeliveredAsUserOrdersNotifications() throws {
        let f = try SessionFixture(self)
        defer { f.stop() }
        let b = try f.client("B")
        let raw = "user.orders.BTC-PERPETUAL.raw"
        let aggregated = "user.orders.future.BTC.100ms"
        XCTAssertEqual(try b.call("private/subscribe", ["channels": [raw, aggregated]])["result"] as? [String], [raw, aggregated])
        let order = try f.placeOrder(b, label: "away")
        // Its own `user.orders` notifications of the creation, before the loss.
        _ = try b.notification(channel: raw)
        _ = try b.notification(channel: aggregated)

        // Deribit's cancel-on-disconnect (upstream.cancel_on_disconnect) cancels it with the session.
        XCTAssertEqual(try f.sim.post("/sim/fault/drop_all"), 200)
        var byChannel: [String: [String: Any]] = [:]
        while byChannel.count < 2 {
            let m = try RPCClient.decode(try b.next("the user.orders notifications", timeout: 10))
            if let ch = (m["params"] as? [String: Any])?["channel"] as? String { byChannel[ch] = m }
        }
        let single = try XCTUnwrap(byChannel[raw])
        let data = try XCTUnwrap((single["params"] as? [String: Any])?["data"] as? [String: Any], "\(single)")
        XCTAssertEqual(data["order_id"] as? String, order)
        XCTAssertEqual(data["order_state"] as? String, "cancelled")
        XCTAssertEqual(data["cancel_reason"] as? String, "cancel_on_disconnect", "the exchange's own order object")
        let list = try XCTUnwrap(byChannel[aggregated])
        let items = try XCTUnwrap((list["params"] as? [String: Any])?["data"] as? [[String: Any]], "\(list)")
        XCTAssertEqual(items.map { $0["order_id"] as? String }, [order])
        XCTAssertEqual(try f.openOrders(), [])
    }

    // MARK: 4. orders whose creation answer was lost

    func testAnOrderWhoseCreationAnswerWasLostIsAttributedAndCancelled() throws {
        let f = try SessionFixture(self, upstream: ["cancel_on_disconnect": false])
        defer { f.stop() }
        let a = try f.client("A")
        let b = try f.client("B")
        let other = try f.placeOrder(b, label: "b-order")
        XCTAssertEqual(try f.sim.post("/sim/fault/drop_on?method=private/buy"), 200)
        let r = try a.call("private/buy", ["instrument_name": "BTC-PERPETUAL", "amount": 20, "type": "limit", "price": 1100, "label": "lost"])
        XCTAssertEqual((r["error"] as? [String: Any])?["code"] as? Int, -32000, "the answer was lost with the upstream: \(r)")
        let lost = try XCTUnwrap(try f.openOrders(label: "lost").first, "the order exists all the same")
        try f.gw.waitForHealth(200)
        try pollUntil("the gateway to attribute the order") { f.gatewayLog.contains("attributed") }
        XCTAssertTrue(f.gatewayLog.split(separator: "\n").contains { $0.contains("attributed") && $0.contains("client=A") && $0.contains("order_id=\(lost)") }, f.gatewayLog)

        a.kill()
        try f.waitForOpenOrders("the lost order cancelled with its client") { $0 == [other] }
    }

    // MARK: 5. an edit never moves ownership

    func testAnEditDoesNotMoveTheOrderToTheEditor() throws {
        let f = try SessionFixture(self)
        defer { f.stop() }
        let a = try f.client("A")
        let order = try f.placeOrder(a, label: "a-order")
        // A leaves without cancelling: private/logout releases its orders.
        try a.send("private/logout")
        XCTAssertEqual(try a.waitClosed().code, 1000)

        let editor = try f.client("F")
        XCTAssertEqual(try editor.call("private/enable_cancel_on_disconnect")["result"] as? String, "ok")
        let own = try f.placeOrder(editor, label: "f-order")
        let edited = try editor.call("private/edit", ["order_id": order, "amount": 20, "price": 1001])
        XCTAssertEqual(((edited["result"] as? [String: Any])?["order"] as? [String: Any])?["order_id"] as? String, order, "\(edited)")
        editor.kill()
        try f.waitForOpenOrders("the editor's own order cancelled") { !$0.contains(own) }
        try f.upstreamBarrier(try f.client("B"))
        XCTAssertEqual(try f.openOrders(), [order], "A's order, edited by F, is not F's to cancel")
    }
}

/// SPEC §8: liveness comes from answers. On a manual clock, the gateway's probe goes unanswered
/// while market data keeps flowing; /health turns 503 with the reason and the gateway reconnects.
final class UpstreamLivenessTests: XCTestCase {
    func testAnUpstreamThatAnswersNothingIsUnhealthyAndReplacedWhileDataFlows() throws {
        let f = try InProcessGateway(self) { config in
            config.upstream.heartbeatIntervalSeconds = 10
            config.upstream.reconnectMinMilliseconds = 50
            config.upstream.reconnectMaxMilliseconds = 100
        }
        defer { f.stop() }
        let loop = makeLoop(.dispatch)
        let client = try RPCClient(url: f.wsURL, loop: loop)
        let channel = "ticker.BTC-PERPETUAL.100ms"
        XCTAssertEqual(try client.call("public/subscribe", ["channels": [channel]])["result"] as? [String], [channel])
        _ = try client.notification(channel: channel)

        XCTAssertEqual(try f.sim.post("/sim/fault/stop_answering?on=true"), 200)
        // The probe goes out at 10 s; nothing answers it. Data keeps the upstream "fresh".
        for _ in 0..<2 {
            try f.advance(seconds: 10)
            _ = try client.notification(channel: channel)
            XCTAssertEqual(try f.health().status, 200, "not yet past the bound (20 s: two heartbeat intervals)")
        }
        try f.advance(seconds: 10)
        let (status, body) = try f.health()
        XCTAssertEqual(status, 503)
        let upstream = try XCTUnwrap(body["upstream"] as? [String: Any])
        XCTAssertTrue((upstream["last_error"] as? String)?.contains("no answer") == true, "\(body)")
        XCTAssertNotEqual(upstream["state"] as? String, "ready")

        // The exchange answers again: the gateway's new session becomes ready.
        XCTAssertEqual(try f.sim.post("/sim/fault/stop_answering?on=false"), 200)
        try pollUntil("a new, ready session") {
            try f.advance(seconds: 0.2)
            return try f.health().status == 200
        }
        XCTAssertGreaterThanOrEqual(try f.sim.simTotals()["connections_opened"] ?? 0, 2)
        XCTAssertNil(try? client.closed.wait("no close", timeout: 0.01), "clients stay connected")
    }
}
