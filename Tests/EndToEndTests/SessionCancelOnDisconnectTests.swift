import Foundation
import Transport
import XCTest

/// SPEC §7 and the §6.2 rows for cancel-on-disconnect and logout: a client's orders are cancelled
/// when its connection ends with its flag on, and only then. The simulator's open orders are the
/// truth; the gateway's log and /metrics say what it did.
final class SessionCancelOnDisconnectTests: XCTestCase {
    var f: SessionFixture!

    override func setUpWithError() throws {
        f = try SessionFixture(self)
    }

    override func tearDown() {
        f?.stop()
    }

    func testKilledClientWithTheFlagLosesExactlyItsOrders() throws {
        let a = try f.client("A")
        let b = try f.client("B")
        let a1 = try f.placeOrder(a, label: "a")
        let a2 = try f.placeOrder(a, label: "a")
        let b1 = try f.placeOrder(b, label: "b")
        let b2 = try f.placeOrder(b, label: "b")
        XCTAssertEqual(try f.openOrders(), [a1, a2, b1, b2])

        a.kill()
        try f.waitForOpenOrders("A's orders cancelled") { !$0.contains(a1) && !$0.contains(a2) }
        XCTAssertEqual(try f.openOrders(), [b1, b2], "B's orders stay")
        XCTAssertEqual(try f.metric(#"deribit_gateway_cod_cancels_total{client="A"}"#), 2)
        XCTAssertEqual(try f.metric(#"deribit_gateway_client_disconnects_total{reason="closed"}"#), 1)
        let log = f.gatewayLog
        for id in [a1, a2] {
            XCTAssertTrue(log.split(separator: "\n").contains { $0.contains("cancel-on-disconnect") && $0.contains("client=A") && $0.contains("order_id=\(id)") }, "log names client and order \(id)")
        }

        // B has the flag off: its end cancels nothing.
        let cancelsBefore = try f.methodCalls("private/cancel")
        b.kill()
        try f.waitForConnectedClients(0)
        let c = try f.client("F")
        try f.upstreamBarrier(c)
        XCTAssertEqual(try f.openOrders(), [b1, b2])
        XCTAssertEqual(try f.methodCalls("private/cancel"), cancelsBefore)
        XCTAssertEqual(try f.metric(#"deribit_gateway_cod_cancels_total{client="B"}"#), 0)
    }

    func testOrderWhoseResponseArrivesAfterTheDisconnectIsCancelled() throws {
        let a = try f.client("A")
        let b = try f.client("B")
        let b1 = try f.placeOrder(b, label: "b")
        XCTAssertEqual(try f.sim.post("/sim/fault/delay?ms=1000"), 200)
        let started = Date()
        try a.send("private/buy", ["instrument_name": "BTC-PERPETUAL", "amount": 10, "type": "limit", "price": 1000, "label": "late"])
        // The order exists at once; its response is held back for a second.
        var lateID: String?
        try pollUntil("the order at the exchange", every: 10_000) {
            lateID = try f.openOrders(label: "late").first
            return lateID != nil
        }
        let id = try XCTUnwrap(lateID, "the order reached the exchange")
        a.kill()
        XCTAssertLessThan(Date().timeIntervalSince(started), 0.9, "killed before the response could arrive")
        XCTAssertEqual(a.messages.count, 0, "no response reached A")

        try f.waitForOpenOrders("the late order cancelled") { !$0.contains(id) }
        XCTAssertEqual(try f.openOrders(), [b1])
        XCTAssertEqual(try f.metric(#"deribit_gateway_cod_cancels_total{client="A"}"#), 1)
        XCTAssertTrue(f.gatewayLog.contains("order_id=\(id)"))
        XCTAssertEqual(try f.sim.post("/sim/fault/delay?ms=0"), 200)
    }

    func testLogoutClosesWith1000WithoutResponseAndKeepsOrders() throws {
        let a = try f.client("A")
        let a1 = try f.placeOrder(a, label: "a")
        try a.send("private/logout", id: "bye")
        let event = try a.waitClosed()
        XCTAssertEqual(event.code, 1000)
        XCTAssertFalse(event.initiatedLocally)
        XCTAssertThrowsError(try a.response(idJSON: "\"bye\"", timeout: 0.2), "logout has no response")

        try f.waitForMetric(#"deribit_gateway_client_disconnects_total{reason="logout"}"#, atLeast: 1)
        let c = try f.client("F")
        try f.upstreamBarrier(c)
        XCTAssertEqual(try f.openOrders(), [a1], "logout does not cancel")
        XCTAssertEqual(try f.metric(#"deribit_gateway_cod_cancels_total{client="A"}"#), 0)
        XCTAssertEqual(try f.methodCalls("private/logout"), 0, "the upstream session is untouched")
        XCTAssertEqual(try f.gw.health().status, 200)
    }

    func testFlagToggledAtRunTime() throws {
        // A starts with the flag on and turns it off.
        let a = try f.client("A")
        try assertFlag(a, true)
        XCTAssertEqual(try a.call("private/disable_cancel_on_disconnect")["result"] as? String, "ok")
        try assertFlag(a, false)
        let a1 = try f.placeOrder(a, label: "a")

        // B starts with it off and turns it on.
        let b = try f.client("B")
        try assertFlag(b, false)
        XCTAssertEqual(try b.call("private/enable_cancel_on_disconnect")["result"] as? String, "ok")
        try assertFlag(b, true)
        let b1 = try f.placeOrder(b, label: "b")

        // Scope account changes the shared account: forwarded for scope full only.
        let e = try b.call("private/enable_cancel_on_disconnect", ["scope": "account"])
        XCTAssertEqual((e["error"] as? [String: Any])?["code"] as? Int, -32002, "\(e)")
        let g = try b.call("private/get_cancel_on_disconnect", ["scope": "account"])
        XCTAssertEqual((g["error"] as? [String: Any])?["code"] as? Int, -32002, "\(g)")
        XCTAssertEqual(try f.methodCalls("private/get_cancel_on_disconnect"), 0)
        let full = try f.client("F")
        let fg = try full.call("private/get_cancel_on_disconnect", ["scope": "account"])
        XCTAssertEqual((fg["result"] as? [String: Any])?["scope"] as? String, "account", "\(fg)")
        XCTAssertEqual(try f.methodCalls("private/get_cancel_on_disconnect"), 1, "forwarded upstream")

        a.kill()
        b.kill()
        try f.waitForOpenOrders("B's order cancelled") { !$0.contains(b1) }
        try f.waitForConnectedClients(1)
        try f.upstreamBarrier(full)
        XCTAssertEqual(try f.openOrders(), [a1], "A turned its flag off")
        XCTAssertEqual(try f.metric(#"deribit_gateway_cod_cancels_total{client="B"}"#), 1)
        XCTAssertEqual(try f.metric(#"deribit_gateway_cod_cancels_total{client="A"}"#), 0)
    }

    /// SPEC §7: the record holds only open orders. An order cancelled by a method whose result
    /// does not list it (`cancel_by_label` returns a count) is forgotten through the gateway's own
    /// `user.orders` subscription, and a filled order is never recorded.
    func testOrdersClosedElsewhereAreForgotten() throws {
        let a = try f.client("A")
        _ = try f.placeOrder(a, label: "gone")
        let kept = try f.placeOrder(a, label: "kept")
        let n = try a.call("private/cancel_by_label", ["label": "gone"])
        XCTAssertEqual(n["result"] as? Int, 1, "\(n)")
        // Crosses the synthetic book: filled at once.
        let filled = try a.call("private/buy", ["instrument_name": "BTC-PERPETUAL", "amount": 10, "type": "market"])
        XCTAssertEqual(((filled["result"] as? [String: Any])?["order"] as? [String: Any])?["order_state"] as? String, "filled")
        try f.upstreamBarrier(a)
        XCTAssertEqual(try f.openOrders(), [kept])

        // A client holding the gateway's own channel too still gets it, and keeps it after unsubscribing.
        let c = try f.client("F")
        let sub = try c.call("private/subscribe", ["channels": ["user.orders.any.any.raw"]])
        XCTAssertEqual(sub["result"] as? [String], ["user.orders.any.any.raw"])

        let cancelsBefore = try f.methodCalls("private/cancel")
        a.kill()
        try f.waitForOpenOrders("A's open order cancelled") { $0.isEmpty }
        let note = try c.notification(channel: "user.orders.any.any.raw")
        let data = try XCTUnwrap((note["params"] as? [String: Any])?["data"] as? [String: Any])
        XCTAssertEqual(data["order_id"] as? String, kept)
        XCTAssertEqual(data["order_state"] as? String, "cancelled")
        XCTAssertEqual(try f.methodCalls("private/cancel"), cancelsBefore + 1, "only the open order was cancelled")
        XCTAssertEqual(try f.metric(#"deribit_gateway_cod_cancels_total{client="A"}"#), 1)

        XCTAssertEqual(try c.call("private/unsubscribe", ["channels": ["user.orders.any.any.raw"]])["result"] as? [String], ["user.orders.any.any.raw"])
        try f.upstreamBarrier(c)
        let subs = try f.sim.state()["subscriptions"] as? [String: Any] ?? [:]
        XCTAssertNotNil(subs["user.orders.any.any.raw"], "the gateway still holds its own subscription")
    }

    /// A protocol error ends the connection like any other end: the flag applies.
    func testProtocolErrorIsCountedAndCancels() throws {
        let raw = try StalledWebSocket(port: f.gw.port)
        defer { raw.close() }
        try raw.sendText(#"{"jsonrpc":"2.0","id":1,"method":"public/auth","params":{"grant_type":"client_credentials","client_id":"A","client_secret":"a-secret"}}"#)
        try raw.sendText(#"{"jsonrpc":"2.0","id":2,"method":"private/buy","params":{"instrument_name":"BTC-PERPETUAL","amount":10,"type":"limit","price":1000,"label":"raw"}}"#)
        try pollUntil("the order at the exchange", every: 10_000) { try !f.openOrders(label: "raw").isEmpty }
        let id = try XCTUnwrap(try f.openOrders(label: "raw").first)
        // SPEC §6.1: binary frames close with 1003.
        try raw.sendFrame(opcode: 0x2, [1, 2, 3])
        try f.waitForOpenOrders("the order cancelled") { !$0.contains(id) }
        XCTAssertEqual(try f.metric(#"deribit_gateway_client_disconnects_total{reason="protocol_error"}"#), 1)
        XCTAssertEqual(try f.metric(#"deribit_gateway_cod_cancels_total{client="A"}"#), 1)
        XCTAssertTrue(try raw.drainUntilClosed())
    }

    /// An order request that timed out (-32001) may still have made an order: its late response
    /// attributes it, and the flag applies to it.
    func testOrderAnsweredAfterTheRequestTimeoutIsStillCancelled() throws {
        f.stop()
        f = try SessionFixture(self, upstream: ["request_timeout_ms": 400])
        let a = try f.client("A")
        XCTAssertEqual(try f.sim.post("/sim/fault/delay?ms=1200"), 200)
        let r = try a.call("private/buy", ["instrument_name": "BTC-PERPETUAL", "amount": 10, "type": "limit", "price": 1000, "label": "slow"])
        XCTAssertEqual((r["error"] as? [String: Any])?["code"] as? Int, -32001, "\(r)")
        let id = try XCTUnwrap(try f.openOrders(label: "slow").first, "the order exists all the same")
        a.kill()
        try f.waitForOpenOrders("the order cancelled once its response arrived") { !$0.contains(id) }
        XCTAssertTrue(f.gatewayLog.contains("late order response"))
        XCTAssertEqual(try f.sim.post("/sim/fault/delay?ms=0"), 200)
    }

    /// Orders the exchange cancelled while the upstream was away (Deribit's own
    /// cancel-on-disconnect) are forgotten after the reconnect: no cancel is sent for them.
    func testOrdersClosedWhileTheUpstreamWasAwayAreForgotten() throws {
        let a = try f.client("A")
        let a1 = try f.placeOrder(a, label: "a")
        XCTAssertEqual(try f.sim.post("/sim/fault/drop_all"), 200)
        try f.waitForOpenOrders("the exchange's cancel-on-disconnect") { !$0.contains(a1) }
        try f.gw.waitForHealth(503)
        try f.gw.waitForHealth(200)
        try f.upstreamBarrier(a)
        let cancelsBefore = try f.methodCalls("private/cancel")
        XCTAssertFalse(a.isClosed, "clients stay connected")
        a.kill()
        try f.waitForConnectedClients(0)
        let c = try f.client("F")
        try f.upstreamBarrier(c)
        XCTAssertEqual(try f.methodCalls("private/cancel"), cancelsBefore)
        XCTAssertEqual(try f.metric(#"deribit_gateway_cod_cancels_total{client="A"}"#), 0)
    }

    /// `private/get_cancel_on_disconnect` answers `{"scope":"connection","enabled":…}`.
    func assertFlag(_ c: RPCClient, _ enabled: Bool, line: UInt = #line) throws {
        let r = try c.call("private/get_cancel_on_disconnect")
        let result = try XCTUnwrap(r["result"] as? [String: Any], "\(r)", line: line)
        XCTAssertEqual(result["scope"] as? String, "connection", line: line)
        XCTAssertEqual(result["enabled"] as? Bool, enabled, line: line)
        XCTAssertEqual(result.count, 2, "\(result)", line: line)
    }
}
