import Foundation
import XCTest
@testable import DeribitSim

final class SubscriptionTests: XCTestCase {
    func testSubscribeLeavesOutUnknownChannels() {
        let h = Harness()
        let c = h.open()
        let r = h.call(c, "public/subscribe", ["channels": ["ticker.BTC-PERPETUAL.100ms", "ticker.NOPE.100ms", "bogus",
                                                            "book.ETH-PERPETUAL.none.10.100ms", "user.orders.any.any.100ms",
                                                            "trades.BTC-PERPETUAL.100ms"]])
        XCTAssertEqual(r["result"] as? [String], ["ticker.BTC-PERPETUAL.100ms", "book.ETH-PERPETUAL.none.10.100ms",
                                                  "trades.BTC-PERPETUAL.100ms"])
        let un = h.call(c, "public/unsubscribe", ["channels": ["trades.BTC-PERPETUAL.100ms", "never"]])
        XCTAssertEqual(un["result"] as? [String], ["trades.BTC-PERPETUAL.100ms"])
        XCTAssertEqual(h.call(c, "public/unsubscribe_all")["result"] as? String, "ok")
        XCTAssertTrue(h.sim.subscribers.isEmpty)
    }

    func testRawWithoutAuthIs13778() {
        let h = Harness()
        let c = h.open()
        let r = h.call(c, "public/subscribe", ["channels": ["ticker.BTC-PERPETUAL.raw"]])
        XCTAssertEqual(r.errorCode, 13778)
        XCTAssertEqual(r.error?["message"] as? String, "raw_subscriptions_not_available_for_unauthorized")
        h.authenticate(c)
        XCTAssertEqual(h.call(c, "public/subscribe", ["channels": ["ticker.BTC-PERPETUAL.raw"]])["result"] as? [String],
                       ["ticker.BTC-PERPETUAL.raw"])
    }

    func testUserChannelsOnlyOnPrivateSubscribe() {
        let h = Harness()
        let c = h.open()
        h.authenticate(c)
        XCTAssertEqual(h.call(c, "public/subscribe", ["channels": ["user.orders.BTC-PERPETUAL.raw"]])["result"] as? [String], [])
        XCTAssertEqual(h.call(c, "private/subscribe", ["channels": ["user.orders.BTC-PERPETUAL.raw", "user.trades.future.BTC.100ms"]])["result"] as? [String],
                       ["user.orders.BTC-PERPETUAL.raw", "user.trades.future.BTC.100ms"])
        let anon = h.open()
        XCTAssertEqual(h.call(anon, "private/subscribe", ["channels": ["ticker.BTC-PERPETUAL.100ms"]]).errorCode, 13009)
    }

    func testNotificationsAreOneBroadcastPerChannelAtTheConfiguredRate() {
        let h = Harness(SimConfig(notificationRatePerSecond: 100))
        let a = h.open(), b = h.open()
        for c in [a, b] { _ = h.call(c, "public/subscribe", ["channels": ["ticker.BTC-PERPETUAL.100ms"]]) }
        let effects = h.advance(seconds: 1)
        XCTAssertEqual(effects.count, 100)
        for e in effects {
            guard case .broadcast(let ids, let bytes) = e else { return XCTFail("\(e)") }
            XCTAssertEqual(ids, [a, b])
            let n = Harness.decode(bytes)
            XCTAssertEqual(n["method"] as? String, "subscription")
            XCTAssertEqual((n["params"] as? [String: Any])?["channel"] as? String, "ticker.BTC-PERPETUAL.100ms")
        }
    }

    func testPublishInjectsNotification() {
        let h = Harness()
        let c = h.open()
        _ = h.call(c, "public/subscribe", ["channels": ["ticker.BTC-PERPETUAL.100ms"]])
        let effects = h.sim.publish(channel: "ticker.BTC-PERPETUAL.100ms", dataJSON: Array(#"{"x":1}"#.utf8), nowMicros: h.now)
        XCTAssertEqual(effects, [.broadcast([c], Array(#"{"jsonrpc":"2.0","method":"subscription","params":{"channel":"ticker.BTC-PERPETUAL.100ms","data":{"x":1}}}"#.utf8))])
        XCTAssertTrue(h.sim.publish(channel: "nobody", dataJSON: [], nowMicros: h.now).isEmpty)
    }

    func testBookSnapshotThenUnbrokenChangeChainAndGetOrderBookAgrees() {
        let h = Harness(SimConfig(notificationRatePerSecond: 1_000, bookDepth: 30))
        let a = h.open()
        var effects = [SimEffect]()
        let sub = Array(#"{"jsonrpc":"2.0","id":1,"method":"public/subscribe","params":{"channels":["book.BTC-PERPETUAL.100ms"]}}"#.utf8)
        effects += h.sim.received(text: sub, from: a, nowMicros: h.now)
        for _ in 0..<200 { effects += h.advance(seconds: 0.0037) }
        let frames = Harness.frames(effects, to: a)
        XCTAssertNotNil(frames[0]["result"])
        let data = frames.dropFirst().compactMap { ($0["params"] as? [String: Any])?["data"] as? [String: Any] }
        XCTAssertGreaterThan(data.count, 500)
        XCTAssertEqual(data[0]["type"] as? String, "snapshot")
        XCTAssertNil(data[0]["prev_change_id"])
        // Rebuild the book from the notifications and compare with public/get_order_book.
        var bids: [Double: Double] = [:], asks: [Double: Double] = [:]
        func apply(_ levels: [[Any]], _ side: inout [Double: Double]) {
            for l in levels {
                let action = l[0] as! String, price = (l[1] as! NSNumber).doubleValue, amount = (l[2] as! NSNumber).doubleValue
                switch action {
                case "new": XCTAssertNil(side[price]); side[price] = amount
                case "change": XCTAssertNotNil(side[price]); side[price] = amount
                default: XCTAssertNotNil(side[price]); side[price] = nil
                }
            }
        }
        var last = data[0]["change_id"] as! Int64
        apply(data[0]["bids"] as! [[Any]], &bids)
        apply(data[0]["asks"] as! [[Any]], &asks)
        for d in data.dropFirst() {
            XCTAssertEqual(d["type"] as? String, "change")
            XCTAssertEqual(d["prev_change_id"] as? Int64, last)
            last = d["change_id"] as! Int64
            apply(d["bids"] as! [[Any]], &bids)
            apply(d["asks"] as! [[Any]], &asks)
        }
        let book = h.call(a, "public/get_order_book", ["instrument_name": "BTC-PERPETUAL", "depth": 1000]).result!
        XCTAssertEqual(book["change_id"] as? Int64, last)
        let snapBids = Dictionary(uniqueKeysWithValues: (book["bids"] as! [[Double]]).map { ($0[0], $0[1]) })
        let snapAsks = Dictionary(uniqueKeysWithValues: (book["asks"] as! [[Double]]).map { ($0[0], $0[1]) })
        XCTAssertEqual(snapBids, bids)
        XCTAssertEqual(snapAsks, asks)
        XCTAssertEqual(bids.count, 30)
    }

    func testLateBookSubscriberGetsSnapshotConsistentWithNextChange() {
        let h = Harness(SimConfig(notificationRatePerSecond: 100))
        let a = h.open(), b = h.open()
        _ = h.call(a, "public/subscribe", ["channels": ["book.ETH-PERPETUAL.100ms"]])
        _ = h.advance(seconds: 0.5)
        let sub = h.send(b, #"{"jsonrpc":"2.0","id":1,"method":"public/subscribe","params":{"channels":["book.ETH-PERPETUAL.100ms"]}}"#)
        let snap = Harness.notifications(sub, to: b, channel: "book.ETH-PERPETUAL.100ms")
        XCTAssertEqual(snap.first?["type"] as? String, "snapshot")
        let next = Harness.notifications(h.advance(seconds: 0.01), to: b, channel: "book.ETH-PERPETUAL.100ms")
        XCTAssertEqual(next.first?["prev_change_id"] as? Int64, snap.first?["change_id"] as? Int64)
    }

    func testLargeSnapshotWhenAsked() {
        let h = Harness(SimConfig(bookDepth: 400))
        let c = h.open()
        let effects = h.send(c, #"{"jsonrpc":"2.0","id":1,"method":"public/subscribe","params":{"channels":["book.BTC-PERPETUAL.100ms"]}}"#)
        guard case .send(_, let snap) = effects[1] else { return XCTFail() }
        XCTAssertGreaterThan(snap.count, 15_000)
        XCTAssertLessThan(snap.count, 30_000)
    }
}

final class ThroughputTests: XCTestCase {
    /// Not a timed assertion: checks that a busy second produces every notification, encoded once.
    func testManyChannelsOneSecond() {
        let h = Harness(SimConfig(notificationRatePerSecond: 2_000))
        let subs = (0..<20).map { _ in h.open() }
        let channels = ["ticker.BTC-PERPETUAL.100ms", "book.BTC-PERPETUAL.100ms", "trades.ETH-PERPETUAL.100ms",
                        "book.ETH-PERPETUAL.none.20.100ms"]
        for c in subs { _ = h.call(c, "public/subscribe", ["channels": channels]) }
        var broadcasts = 0
        for _ in 0..<1_000 { broadcasts += h.advance(seconds: 0.001).count }
        XCTAssertEqual(broadcasts, 8_000)
    }
}
