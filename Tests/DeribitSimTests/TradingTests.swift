import Foundation
import XCTest
@testable import DeribitSim

final class TradingTests: XCTestCase {
    func testLimitOrderRestsWithDeribitOrderFields() {
        let h = Harness()
        let c = h.open()
        h.authenticate(c)
        let r = h.call(c, "private/buy", ["instrument_name": "BTC-PERPETUAL", "amount": 40, "price": 50000.5,
                                          "label": "mm", "post_only": true]).result ?? [:]
        XCTAssertEqual((r["trades"] as? [Any])?.count, 0)
        let o = r["order"] as? [String: Any] ?? [:]
        XCTAssertEqual(o["order_state"] as? String, "open")
        XCTAssertEqual(o["instrument_name"] as? String, "BTC-PERPETUAL")
        XCTAssertEqual(o["direction"] as? String, "buy")
        XCTAssertEqual(o["price"] as? Double, 50000.5)
        XCTAssertEqual(o["amount"] as? Double, 40)
        XCTAssertEqual(o["filled_amount"] as? Double, 0)
        XCTAssertEqual(o["label"] as? String, "mm")
        XCTAssertEqual(o["order_type"] as? String, "limit")
        XCTAssertEqual(o["time_in_force"] as? String, "good_til_cancelled")
        XCTAssertEqual(o["post_only"] as? Bool, true)
        XCTAssertEqual(o["reduce_only"] as? Bool, false)
        XCTAssertEqual(o["api"] as? Bool, true)
        XCTAssertEqual(o["replaced"] as? Bool, false)
        XCTAssertEqual(o["creation_timestamp"] as? Int64, Int64(h.now / 1000))
        XCTAssertNotNil(o["last_update_timestamp"])
        let id = o["order_id"] as! String
        let open = h.call(c, "private/get_open_orders_by_instrument", ["instrument_name": "BTC-PERPETUAL"])["result"] as? [[String: Any]]
        XCTAssertEqual(open?.map { $0["order_id"] as? String }, [id])
        XCTAssertEqual((h.call(c, "private/get_open_orders_by_currency", ["currency": "ETH"])["result"] as? [Any])?.count, 0)
        XCTAssertEqual(h.call(c, "private/get_order_state", ["order_id": id]).result?["order_state"] as? String, "open")
    }

    func testCrossingAndMarketOrdersFill() {
        let h = Harness()
        let c = h.open()
        h.authenticate(c)
        let ask = h.call(c, "public/ticker", ["instrument_name": "BTC-PERPETUAL"]).result!["best_ask_price"] as! Double
        let r = h.call(c, "private/buy", ["instrument_name": "BTC-PERPETUAL", "amount": 10, "price": ask + 100]).result!
        XCTAssertEqual((r["order"] as! [String: Any])["order_state"] as? String, "filled")
        let trade = (r["trades"] as! [[String: Any]])[0]
        XCTAssertEqual(trade["price"] as? Double, ask)
        XCTAssertEqual(trade["amount"] as? Double, 10)
        let m = h.call(c, "private/sell", ["instrument_name": "ETH-PERPETUAL", "amount": 1, "type": "market"]).result!
        XCTAssertEqual((m["order"] as! [String: Any])["order_state"] as? String, "filled")
        XCTAssertTrue(h.sim.openOrders.isEmpty)
        XCTAssertEqual(h.call(c, "private/buy", ["instrument_name": "BTC-PERPETUAL", "amount": 10]).errorCode, -32602)
    }

    func testEditCancelAndErrors() {
        let h = Harness()
        let c = h.open()
        h.authenticate(c)
        let id = (h.call(c, "private/sell", ["instrument_name": "BTC-PERPETUAL", "amount": 10, "price": 90000]).result!["order"] as! [String: Any])["order_id"] as! String
        let e = h.call(c, "private/edit", ["order_id": id, "amount": 20, "price": 91000]).result!["order"] as! [String: Any]
        XCTAssertEqual(e["replaced"] as? Bool, true)
        XCTAssertEqual(e["amount"] as? Double, 20)
        XCTAssertEqual(e["price"] as? Double, 91000)
        let cancelled = h.call(c, "private/cancel", ["order_id": id]).result!
        XCTAssertEqual(cancelled["order_state"] as? String, "cancelled")
        XCTAssertEqual(cancelled["cancel_reason"] as? String, "user_request")
        XCTAssertEqual(h.call(c, "private/edit", ["order_id": id, "amount": 10, "price": 1]).errorCode, 11044)
        let nf = h.call(c, "private/cancel", ["order_id": "12345"])
        XCTAssertEqual(nf.errorCode, 10004)
        XCTAssertEqual(nf.error?["message"] as? String, "order_not_found")
        for p in [10.0, 20.0, 30.0] { _ = h.call(c, "private/buy", ["instrument_name": "BTC-PERPETUAL", "amount": 10, "price": p, "label": p == 10 ? "x" : "y"]) }
        XCTAssertEqual(h.call(c, "private/cancel_by_label", ["label": "y"])["result"] as? Int, 2)
        XCTAssertEqual(h.call(c, "private/cancel_all")["result"] as? Int, 1)
    }

    func testUserOrdersNotificationsRawAndBatched() {
        let h = Harness()
        let a = h.open(), b = h.open(), other = h.open()
        h.authenticate(a); h.authenticate(b)
        _ = h.call(b, "private/subscribe", ["channels": ["user.orders.BTC-PERPETUAL.raw", "user.orders.any.any.100ms"]])
        let effects = h.send(a, #"{"jsonrpc":"2.0","id":1,"method":"private/buy","params":{"instrument_name":"BTC-PERPETUAL","amount":10,"price":100}}"#)
        let raw = Harness.notifications(effects, to: b, channel: "user.orders.BTC-PERPETUAL.raw")
        XCTAssertEqual(raw.first?["order_state"] as? String, "open")
        let batched = Harness.notifications(effects, to: b, channel: "user.orders.any.any.100ms")
        XCTAssertEqual((batched.first?["array"] as? [[String: Any]])?.first?["order_state"] as? String, "open")
        XCTAssertTrue(Harness.frames(effects, to: other).isEmpty)
    }

    func testCancelOnDisconnectConnectionScope() {
        let h = Harness()
        let a = h.open(), b = h.open(), watcher = h.open()
        for c in [a, b, watcher] { h.authenticate(c) }
        _ = h.call(watcher, "private/subscribe", ["channels": ["user.orders.any.BTC.raw"]])
        XCTAssertEqual(h.call(a, "private/enable_cancel_on_disconnect", ["scope": "connection"])["result"] as? String, "ok")
        XCTAssertEqual(h.call(a, "private/get_cancel_on_disconnect").result?["enabled"] as? Bool, true)
        XCTAssertEqual(h.call(a, "private/get_cancel_on_disconnect").result?["scope"] as? String, "connection")
        _ = h.call(b, "private/enable_cancel_on_disconnect")
        _ = h.call(a, "private/buy", ["instrument_name": "BTC-PERPETUAL", "amount": 10, "price": 100])
        _ = h.call(a, "private/buy", ["instrument_name": "BTC-PERPETUAL", "amount": 10, "price": 101])
        let keep = (h.call(b, "private/buy", ["instrument_name": "BTC-PERPETUAL", "amount": 10, "price": 102]).result!["order"] as! [String: Any])["order_id"] as! String
        let effects = h.sim.connectionClosed(a, nowMicros: h.now)
        let notes = Harness.notifications(effects, to: watcher, channel: "user.orders.any.BTC.raw")
        XCTAssertEqual(notes.count, 2)
        XCTAssertEqual(notes.map { $0["cancel_reason"] as? String }, ["cancel_on_disconnect", "cancel_on_disconnect"])
        XCTAssertEqual(notes.map { $0["order_state"] as? String }, ["cancelled", "cancelled"])
        XCTAssertEqual(Array(h.sim.openOrders.keys), [keep])
    }

    func testNoCancelOnDisconnectWhenDisabled() {
        let h = Harness()
        let a = h.open()
        h.authenticate(a)
        _ = h.call(a, "private/buy", ["instrument_name": "BTC-PERPETUAL", "amount": 10, "price": 100])
        XCTAssertTrue(h.sim.connectionClosed(a, nowMicros: h.now).isEmpty)
        XCTAssertEqual(h.sim.openOrders.count, 1)
    }

    func testAccountScopeAppliesToNewConnections() {
        let h = Harness()
        let a = h.open()
        h.authenticate(a)
        XCTAssertEqual(h.call(a, "private/enable_cancel_on_disconnect", ["scope": "account"])["result"] as? String, "ok")
        XCTAssertEqual(h.call(a, "private/get_cancel_on_disconnect", ["scope": "account"]).result?["enabled"] as? Bool, true)
        XCTAssertEqual(h.call(a, "private/get_cancel_on_disconnect").result?["enabled"] as? Bool, false)
        let b = h.open()
        h.authenticate(b)
        XCTAssertEqual(h.call(b, "private/get_cancel_on_disconnect").result?["enabled"] as? Bool, true)
        _ = h.call(b, "private/buy", ["instrument_name": "BTC-PERPETUAL", "amount": 10, "price": 100])
        _ = h.sim.connectionClosed(b, nowMicros: h.now)
        XCTAssertTrue(h.sim.openOrders.isEmpty)
        XCTAssertEqual(h.call(a, "private/enable_cancel_on_disconnect", ["scope": "bogus"]).errorCode, -32602)
    }

    func testMatchingEngineBucket() {
        let h = Harness(SimConfig(matchingEngineRate: 1, matchingEngineBurst: 3))
        let c = h.open()
        h.authenticate(c)
        for _ in 0..<3 { XCTAssertNotNil(h.call(c, "private/cancel_all")["result"]) }
        XCTAssertEqual(h.call(c, "private/cancel_all").errorCode, 10028)
    }
}
