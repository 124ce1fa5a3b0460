// Market-data streams and the fault endpoints of docs/SIM.md over real sockets.
@testable import DeribitSim
import Foundation
import Transport
import XCTest

final class SocketStreamTests: XCTestCase {
    /// The book stream: a snapshot, then changes whose prev_change_id is the previous change_id,
    /// over many messages; a second subscriber joining later gets its own snapshot and chain.
    func testBookChangeIDChainIsUnbroken() throws {
        var config = SimConfig()
        config.notificationRatePerSecond = 500
        let sim = try startSim(config)
        let loop = clientLoop()
        let a = try connect(sim, loop)
        let channel = "book.BTC-PERPETUAL.100ms"
        let before = try a.result("public/get_order_book", ["instrument_name": "BTC-PERPETUAL"]) as! [String: Any]
        XCTAssertEqual(try a.result("public/subscribe", ["channels": [channel]]) as? [String], [channel])

        let snapshot = try a.notificationData(channel: channel) as! [String: Any]
        assertShape(snapshot, documented: DocExamples.bookSnapshot, "book snapshot")
        XCTAssertEqual(snapshot["type"] as? String, "snapshot")
        XCTAssertNil(snapshot["prev_change_id"])
        XCTAssertEqual(snapshot["change_id"] as? Int, before["change_id"] as? Int, "get_order_book's change_id is the stream's")
        // The local book from the snapshot, kept up to date with every change.
        var bids: [Double: Double] = [:]
        var asks: [Double: Double] = [:]
        func apply(_ levels: Any?, _ side: inout [Double: Double], _ where_: String) {
            for level in levels as? [[Any]] ?? [] {
                let action = level[0] as! String
                let price = (level[1] as! NSNumber).doubleValue
                let amount = (level[2] as! NSNumber).doubleValue
                switch action {
                case "new": XCTAssertNil(side[price], "\(where_): new level \(price) already present"); side[price] = amount
                case "change": XCTAssertNotNil(side[price], "\(where_): change of absent level \(price)"); side[price] = amount
                case "delete": XCTAssertNotNil(side[price], "\(where_): delete of absent level \(price)"); side[price] = nil
                default: XCTFail("\(where_): unknown action \(action)")
                }
            }
        }
        apply(snapshot["bids"], &bids, "snapshot")
        apply(snapshot["asks"], &asks, "snapshot")

        var last = snapshot["change_id"] as! Int
        var b: RPCClient?
        var bLast: Int?
        for n in 1...600 {
            let change = try a.notificationData(channel: channel) as! [String: Any]
            if n == 1 { assertShape(change, documented: DocExamples.bookChange, "book change") }
            XCTAssertEqual(change["type"] as? String, "change")
            guard change["prev_change_id"] as? Int == last else {
                return XCTFail("chain broken at message \(n): prev_change_id \(change["prev_change_id"] ?? "nil") after change_id \(last)")
            }
            last = change["change_id"] as! Int
            apply(change["bids"], &bids, "change \(last)")
            apply(change["asks"], &asks, "change \(last)")
            XCTAssertLessThan(bids.keys.max() ?? 0, asks.keys.min() ?? .infinity, "crossed book at \(last)")
            if n == 300 {
                b = try connect(sim, loop)
                XCTAssertEqual(try b!.result("public/subscribe", ["channels": [channel]]) as? [String], [channel])
                let snap = try b!.notificationData(channel: channel) as! [String: Any]
                XCTAssertEqual(snap["type"] as? String, "snapshot")
                bLast = snap["change_id"] as? Int
            }
        }
        for _ in 1...100 {
            let change = try b!.notificationData(channel: channel) as! [String: Any]
            XCTAssertEqual(change["prev_change_id"] as? Int, bLast, "second subscriber's chain")
            bLast = change["change_id"] as? Int
        }
        let subscriptions = (try sim.state())["subscriptions"] as? [String: [Any]]
        XCTAssertEqual(subscriptions?[channel]?.count, 2, "both connections hold the channel")
    }

    func testFaultDelay() throws {
        let sim = try startSim()
        let c = try connect(sim, clientLoop())
        let on = try sim.post("/sim/fault/delay?ms=300")
        XCTAssertEqual(on.status, 200)
        XCTAssertEqual(on.body["delay_ms"] as? Int, 300)
        let start = Date()
        XCTAssertNotNil(try c.call("public/test")["result"])
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(start), 0.3, "the answer came before the delay")
        XCTAssertEqual(try sim.post("/sim/fault/delay?ms=0").body["delay_ms"] as? Int, 0)
        let again = Date()
        XCTAssertNotNil(try c.call("public/test")["result"])
        XCTAssertLessThan(Date().timeIntervalSince(again), 0.3, "still delayed after ms=0")
    }

    func testFaultStopAnswering() throws {
        let sim = try startSim()
        let c = try connect(sim, clientLoop())
        let channel = "ticker.BTC-PERPETUAL.100ms"
        XCTAssertEqual(try c.result("public/subscribe", ["channels": [channel]]) as? [String], [channel])

        let on = try sim.post("/sim/fault/stop_answering?on=true")
        XCTAssertEqual(on.status, 200)
        XCTAssertEqual(on.body["stop_answering"] as? Bool, true)
        let lost = try c.send("public/test")
        // Notifications continue while requests go unanswered.
        for _ in 0..<5 { _ = try c.notificationData(channel: channel) }
        XCTAssertNil(try? c.responseObject(idJSON: lost, timeout: 0.3), "answered while stop_answering was on")
        XCTAssertFalse(c.closed.isSet, "stop_answering does not close connections")

        XCTAssertEqual(try sim.post("/sim/fault/stop_answering?on=false").body["stop_answering"] as? Bool, false)
        XCTAssertNotNil(try c.call("public/test")["result"])
        XCTAssertNil(try? c.responseObject(idJSON: lost, timeout: 0.1), "the dropped request was answered later")
    }

    /// While stop_answering is on the exchange sends no test_request and drops nobody for not
    /// answering one (no socket: 10 s heartbeats would make this slow; the core is what decides).
    func testStopAnsweringPausesHeartbeatEnforcement() {
        var config = SimConfig()
        config.heartbeatGraceSeconds = 1
        let h = Harness(config)
        let c = h.open()
        XCTAssertEqual(h.call(c, "public/set_heartbeat", ["interval": 10])["result"] as? String, "ok")
        h.sim.setHeartbeatsPaused(true, nowMicros: h.now)
        var effects: [SimEffect] = []
        for _ in 0..<60 { effects += h.advance(seconds: 1) }
        XCTAssertEqual(effects, [], "test_request or drop while paused")
        h.sim.setHeartbeatsPaused(false, nowMicros: h.now)
        XCTAssertEqual(h.advance(seconds: 9.9), [], "a fresh interval starts on resume")
        XCTAssertEqual(h.advance(seconds: 0.2), [.send(c, SimExchange.testRequestFrame)])
        XCTAssertEqual(h.advance(seconds: 10 + 1.1), [.drop(c)])
    }

    func testFaultDropAll() throws {
        let sim = try startSim()
        let loop = clientLoop()
        let a = try connect(sim, loop)
        let b = try connect(sim, loop)
        try a.authenticate()
        XCTAssertEqual(try a.result("private/enable_cancel_on_disconnect") as? String, "ok")
        let r = try a.result("private/buy", ["instrument_name": "BTC-PERPETUAL", "amount": 10, "price": 40000]) as! [String: Any]
        XCTAssertNotNil(r["order"])
        XCTAssertNotNil(try b.call("public/test")["result"])

        let dropped = try sim.post("/sim/fault/drop_all")
        XCTAssertEqual(dropped.status, 200)
        XCTAssertEqual(dropped.body["dropped"] as? Int, 2)
        for c in [a, b] {
            let e = try c.waitClosed()
            XCTAssertEqual(e.code, 1006, "TCP close without a close frame: \(e)")
            XCTAssertFalse(e.initiatedLocally)
        }
        let state = try sim.waitForState("no connections") { ($0["connections"] as? [Any])?.isEmpty == true }
        XCTAssertEqual((state["open_orders"] as? [Any])?.count, 0, "cancel-on-disconnect applies to drop_all")
        // New connections are accepted afterwards.
        XCTAssertNotNil(try connect(sim, loop).call("public/test")["result"])
    }

    func testPublishReachesTheChannelsSubscribers() throws {
        let sim = try startSim()
        let loop = clientLoop()
        let subscriber = try connect(sim, loop)
        let other = try connect(sim, loop)
        let channel = "trades.BTC-PERPETUAL.100ms"
        XCTAssertEqual(try subscriber.result("public/subscribe", ["channels": [channel]]) as? [String], [channel])
        XCTAssertEqual(try other.result("public/subscribe", ["channels": ["ticker.ETH-PERPETUAL.100ms"]]) as? [String], ["ticker.ETH-PERPETUAL.100ms"])

        let data = #"[{"trade_id":"published-1","price":12345.5,"amount":7}]"#
        let published = try sim.post("/sim/publish?channel=\(channel)", body: data)
        XCTAssertEqual(published.status, 200)
        var found = false
        for _ in 0..<200 where !found {
            let d = try subscriber.notificationData(channel: channel) as? [[String: Any]]
            found = d?.first?["trade_id"] as? String == "published-1"
            if found { XCTAssertEqual((d?.first?["price"] as? NSNumber)?.doubleValue, 12345.5) }
        }
        XCTAssert(found, "the published data never arrived")
        XCTAssertThrowsError(try other.notificationData(channel: channel, timeout: 0.3), "sent to a connection not subscribed")
        XCTAssertEqual(try sim.post("/sim/publish").status, 400, "channel is required")
    }
}
