import Foundation
import Transport
import XCTest

/// Reference-counted subscriptions, fan-out and order-book late joiners through the real
/// gateway (SPEC §6.4).
final class GatewayCoreSubscriptionTests: XCTestCase {
    func testTwoHoldersShareOneUpstreamSubscriptionAndReleaseItOnce() throws {
        let (sim, gw) = try startGateway(simArguments: ["--rate", "50"])
        let loop = makeLoop(.dispatch)
        let a = try RPCClient(url: gw.wsURL, loop: loop)
        let b = try RPCClient(url: gw.wsURL, loop: loop)
        let ch1 = "ticker.ETH-PERPETUAL.100ms"
        let ch2 = "trades.ETH-PERPETUAL.100ms"

        XCTAssertEqual(try a.call("public/subscribe", ["channels": [ch1, ch2]])["result"] as? [String], [ch1, ch2])
        XCTAssertEqual(try b.call("public/subscribe", ["channels": [ch2, ch1]])["result"] as? [String], [ch2, ch1])
        for c in [a, b] {
            XCTAssertNotNil(try c.notification(channel: ch1)["params"])
            XCTAssertNotNil(try c.notification(channel: ch2)["params"])
        }
        XCTAssertEqual(try sim.subscribeRequests(ch1), 1)
        XCTAssertEqual(try sim.subscribeRequests(ch2), 1)
        XCTAssertEqual(try sim.channelHolders(ch1).count, 1)

        // ch1: both unsubscribe explicitly. The first release stays local.
        XCTAssertEqual(try a.call("public/unsubscribe", ["channels": [ch1]])["result"] as? [String], [ch1])
        XCTAssertNotNil(try a.call("public/get_time")["result"])  // the upstream processed all before it
        XCTAssertEqual(try sim.unsubscribeRequests(ch1), 0)
        XCTAssertNotNil(try b.notification(channel: ch1)["params"], "the remaining holder still receives")
        XCTAssertEqual(try b.call("public/unsubscribe", ["channels": [ch1]])["result"] as? [String], [ch1])
        try pollUntil("one upstream unsubscribe of \(ch1)") { try sim.unsubscribeRequests(ch1) == 1 }

        // ch2: one leaves with unsubscribe_all, the other's connection just dies.
        XCTAssertEqual(try a.call("public/unsubscribe_all")["result"] as? String, "ok")
        XCTAssertNotNil(try a.call("public/get_time")["result"])
        XCTAssertEqual(try sim.unsubscribeRequests(ch2), 0)
        b.kill()
        try pollUntil("one upstream unsubscribe of \(ch2)") { try sim.unsubscribeRequests(ch2) == 1 }
        XCTAssertNotNil(try a.call("public/get_time")["result"])
        XCTAssertEqual(try sim.unsubscribeRequests(ch1), 1)
        XCTAssertEqual(try sim.unsubscribeRequests(ch2), 1)
        XCTAssertEqual(try sim.subscribeRequests(ch1), 1)
        XCTAssertEqual(try sim.subscribeRequests(ch2), 1)
        XCTAssertEqual(try sim.channelHolders(ch1), [])
        XCTAssertEqual(try sim.channelHolders(ch2), [])
    }

    /// The last holder leaves and the gateway's unsubscribe goes unanswered (lost in a stall): it
    /// is sent again, so the exchange does not keep a channel nobody holds.
    func testALostUpstreamUnsubscribeIsSentAgain() throws {
        let (sim, gw) = try startGateway(simArguments: ["--rate", "20"], upstream: ["request_timeout_ms": 300])
        let loop = makeLoop(.dispatch)
        let a = try RPCClient(url: gw.wsURL, loop: loop)
        let ch = "ticker.ETH-PERPETUAL.100ms"
        XCTAssertEqual(try a.call("public/subscribe", ["channels": [ch]])["result"] as? [String], [ch])
        XCTAssertEqual(try sim.channelHolders(ch).count, 1)
        XCTAssertEqual(try sim.post("/sim/fault/lose_answer?method=private/unsubscribe&count=1&execute=false"), 200)
        XCTAssertEqual(try a.call("public/unsubscribe", ["channels": [ch]])["result"] as? [String], [ch])
        try pollUntil("the channel released at the exchange") { try sim.channelHolders(ch).isEmpty }
        XCTAssertEqual(try sim.unsubscribeRequests(ch), 1, "the lost one was never seen; the second went through")
        XCTAssertNotNil(try a.call("public/get_time")["result"], "the session is the same and answers")
    }

    func testConcurrentFirstSubscribesSendOneUpstreamRequest() throws {
        let (sim, gw) = try startGateway()
        let loop = makeLoop(.dispatch)
        let channel = "ticker.BTC-25DEC26.100ms"
        let subscribe = rawRequestText(id: "7", "public/subscribe", #"{"channels":["\#(channel)"]}"#)

        let ours = try (0..<3).map { _ in try RPCClient(url: gw.wsURL, loop: loop) }
        let peers = try (0..<2).map { _ in
            try PythonRPCPeer(url: gw.wsURL, steps: [["print": "READY"], ["wait_stdin": true], ["send": subscribe], ["until_id": "7"]])
        }
        defer { peers.forEach { $0.stop() } }
        for p in peers { try p.waitFor("READY") }
        // The first upstream answer is held, so every later ask arrives while it is pending.
        XCTAssertEqual(try sim.post("/sim/fault/delay?ms=300"), 200)
        for c in ours { c.sendRaw(subscribe) }
        for p in peers { p.proceed() }

        var answers = try ours.map { try $0.response(idJSON: "7") }
        for p in peers { answers.append(try XCTUnwrap(try p.finish().last)) }
        for m in answers {
            XCTAssertEqual(try RPCClient.decode(m)["result"] as? [String], [channel], utf8String(m))
        }
        XCTAssertEqual(try sim.subscribeRequests(channel), 1)
        XCTAssertEqual(try sim.post("/sim/fault/delay?ms=0"), 200)
        for c in ours { XCTAssertNotNil(try c.notification(channel: channel)["params"]) }
    }

    /// Deribit handles a connection's requests in order: subscribe then unsubscribe leaves
    /// nothing subscribed, even while the subscribe is still on its way upstream.
    func testUnsubscribeWhileTheFirstSubscribeIsPendingLeavesNothingHeld() throws {
        let (sim, gw) = try startGateway(simArguments: ["--rate", "50"])
        let loop = makeLoop(.dispatch)
        let c = try RPCClient(url: gw.wsURL, loop: loop)
        let ch1 = "ticker.BTC-26MAR27.100ms"
        let ch2 = "ticker.ETH-25DEC26.100ms"

        XCTAssertEqual(try sim.post("/sim/fault/delay?ms=300"), 200)
        c.sendRaw(rawRequestText(id: "1", "public/subscribe", #"{"channels":["\#(ch1)"]}"#))
        c.sendRaw(rawRequestText(id: "2", "public/unsubscribe", #"{"channels":["\#(ch1)"]}"#))
        c.sendRaw(rawRequestText(id: "3", "public/subscribe", #"{"channels":["\#(ch2)"]}"#))
        c.sendRaw(rawRequestText(id: "4", "public/unsubscribe_all"))
        XCTAssertEqual(try RPCClient.decode(try c.response(idJSON: "1"))["result"] as? [String], [ch1])
        XCTAssertEqual(try RPCClient.decode(try c.response(idJSON: "2"))["result"] as? [String], [ch1])
        XCTAssertEqual(try RPCClient.decode(try c.response(idJSON: "3"))["result"] as? [String], [ch2])
        XCTAssertEqual(try RPCClient.decode(try c.response(idJSON: "4"))["result"] as? String, "ok")
        XCTAssertEqual(try sim.post("/sim/fault/delay?ms=0"), 200)

        // Released upstream once, and the client hears nothing more from either channel.
        try pollUntil("both channels released upstream") {
            try sim.unsubscribeRequests(ch1) == 1 && sim.unsubscribeRequests(ch2) == 1
        }
        XCTAssertEqual(try sim.channelHolders(ch1), [])
        XCTAssertEqual(try sim.channelHolders(ch2), [])
        XCTAssertNotNil(try c.call("public/get_time")["result"])
        let late = c.drainMessages(for: 0.3).filter { utf8String($0).contains(#""method":"subscription""#) }
        XCTAssertEqual(late.count, 0, "notifications after unsubscribing: \(late.prefix(2).map(utf8String))")
    }

    func testFanOutToTenClientsIsByteIdenticalAndInOrder() throws {
        let (sim, gw) = try startGateway(simArguments: ["--rate", "50"])
        let loop = makeLoop(.dispatch)
        let channel = "ticker.BTC-PERPETUAL.100ms"
        let marker = #"{"marker":"fan-out-start"}"#
        let count = 40  // the marker and the notifications after it

        let ours = try (0..<8).map { _ in try RPCClient(url: gw.wsURL, loop: loop) }
        let peers = try (0..<2).map { _ in
            try PythonRPCPeer(url: gw.wsURL, steps: [
                ["send": rawRequestText(id: "1", "public/subscribe", #"{"channels":["\#(channel)"]}"#)],
                ["until_id": "1"], ["print": "SUBSCRIBED"],
                ["until_contains": "fan-out-start"], ["collect": count - 1, "contains": channel],
            ])
        }
        defer { peers.forEach { $0.stop() } }
        for c in ours {
            XCTAssertEqual(try c.call("public/subscribe", ["channels": [channel]])["result"] as? [String], [channel])
        }
        for p in peers { try p.waitFor("SUBSCRIBED") }
        // Everyone holds the channel: from the marker on, all must see the same stream.
        XCTAssertEqual(try sim.post("/sim/publish?channel=\(channel)", body: marker), 200)

        var streams: [[[UInt8]]] = []
        for c in ours {
            var m = try c.next("the marker")
            while !utf8String(m).contains("fan-out-start") { m = try c.next("the marker") }
            streams.append([m] + (try c.nextMessages(count - 1)))
        }
        for p in peers {
            let all = try p.finish()
            let start = try XCTUnwrap(all.firstIndex { utf8String($0).contains("fan-out-start") })
            streams.append(Array(all[start...]))
        }
        XCTAssertEqual(try sim.subscribeRequests(channel), 1)
        let reference = streams[0]
        XCTAssertEqual(reference.count, count)
        XCTAssertTrue(reference.allSatisfy { utf8String($0).contains(#""channel":"\#(channel)""#) })
        for (i, s) in streams.enumerated() {
            XCTAssertEqual(s.count, count, "client \(i)")
            for (j, m) in s.enumerated() where j < reference.count && m != reference[j] {
                XCTFail("client \(i) message \(j) differs:\n\(utf8String(m))\n\(utf8String(reference[j]))")
                break
            }
        }
    }

    /// SPEC §6.4: a late joiner of an incremental book gets a snapshot consistent with the changes.
    func testLateJoinerOfAnIncrementalBookGetsAConsistentSnapshot() throws {
        let (sim, gw) = try startGateway(simArguments: ["--rate", "50"])
        let loop = makeLoop(.dispatch)
        let channel = "book.BTC-PERPETUAL.100ms"

        let a = try RPCClient(url: gw.wsURL, loop: loop)
        XCTAssertEqual(try a.call("public/subscribe", ["channels": [channel]])["result"] as? [String], [channel])
        var bookA = BookReplica()
        // A's own stream: snapshot, then some changes, before B arrives.
        for _ in 0..<10 { try bookA.apply(try a.notification(channel: channel), who: "A") }

        let b = try RPCClient(url: gw.wsURL, loop: loop)
        XCTAssertEqual(try b.call("public/subscribe", ["channels": [channel]])["result"] as? [String], [channel])
        var bookB = BookReplica()
        let first = try b.notification(channel: channel)
        XCTAssertEqual(BookReplica.data(first)["type"] as? String, "snapshot", "B's first book message must be a snapshot")
        try bookB.apply(first, who: "B")
        let joinedAt = bookB.changeID
        for _ in 0..<30 { try bookB.apply(try b.notification(channel: channel), who: "B") }

        // A's replica at B's snapshot change_id equals B's snapshot; at the end both agree.
        while bookA.changeID < bookB.changeID {
            try bookA.apply(try a.notification(channel: channel), who: "A")
        }
        XCTAssertEqual(bookA.changeID, bookB.changeID)
        let atJoin = try XCTUnwrap(bookA.history[joinedAt], "A never saw change_id \(joinedAt) that B's snapshot carries")
        XCTAssertEqual(atJoin.bids, bookB.snapshotBids, "bids of B's snapshot")
        XCTAssertEqual(atJoin.asks, bookB.snapshotAsks, "asks of B's snapshot")
        XCTAssertEqual(bookA.bids, bookB.bids)
        XCTAssertEqual(bookA.asks, bookB.asks)
        XCTAssertEqual(try sim.subscribeRequests(channel), 1)
    }
}

/// A client's copy of an incremental Deribit book, checking the change_id chain.
struct BookReplica {
    var bids: [Double: Double] = [:]
    var asks: [Double: Double] = [:]
    var changeID: Int64 = 0
    var started = false
    var snapshotBids: [Double: Double] = [:]
    var snapshotAsks: [Double: Double] = [:]
    /// Book state after each change_id.
    var history: [Int64: (bids: [Double: Double], asks: [Double: Double])] = [:]

    static func data(_ notification: [String: Any]) -> [String: Any] {
        ((notification["params"] as? [String: Any])?["data"] as? [String: Any]) ?? [:]
    }

    mutating func apply(_ notification: [String: Any], who: String) throws {
        let d = Self.data(notification)
        guard let id = (d["change_id"] as? NSNumber)?.int64Value else { throw TestFailure("\(who): no change_id in \(d)") }
        if d["type"] as? String == "snapshot" {
            guard !started else { throw TestFailure("\(who): a second snapshot at \(id) without a reconnect") }
            bids = [:]
            asks = [:]
            Self.apply(d["bids"], &bids)
            Self.apply(d["asks"], &asks)
            snapshotBids = bids
            snapshotAsks = asks
            started = true
        } else {
            guard started else { throw TestFailure("\(who): a change before any snapshot") }
            let prev = (d["prev_change_id"] as? NSNumber)?.int64Value
            guard prev == changeID else {
                throw TestFailure("\(who): broken chain, prev_change_id \(prev.map(String.init) ?? "nil") after change_id \(changeID)")
            }
            Self.apply(d["bids"], &bids)
            Self.apply(d["asks"], &asks)
        }
        changeID = id
        history[id] = (bids, asks)
    }

    static func apply(_ levels: Any?, _ side: inout [Double: Double]) {
        for case let level as [Any] in (levels as? [Any]) ?? [] {
            guard level.count == 3, let action = level[0] as? String,
                  let price = (level[1] as? NSNumber)?.doubleValue,
                  let amount = (level[2] as? NSNumber)?.doubleValue else { continue }
            if action == "delete" { side[price] = nil } else { side[price] = amount }
        }
    }
}
