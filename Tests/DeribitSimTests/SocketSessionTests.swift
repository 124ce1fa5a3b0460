// Session rules over real sockets: heartbeats, cancel-on-disconnect, credits, the 32 kB limit.
import DeribitSim
import Foundation
import Transport
import XCTest

final class SocketSessionTests: XCTestCase {
    func openOrderIDs(_ sim: LiveSim) throws -> Set<String> {
        Set(((try sim.state())["open_orders"] as? [[String: Any]] ?? []).compactMap { $0["order_id"] as? String })
    }

    func restingBuy(_ c: RPCClient, label: String) throws -> String {
        let r = try c.result("private/buy", ["instrument_name": "BTC-PERPETUAL", "amount": 10, "price": 40000, "label": label]) as! [String: Any]
        let order = r["order"] as! [String: Any]
        XCTAssertEqual(order["order_state"] as? String, "open")
        return order["order_id"] as! String
    }

    /// One ~21 s test: interval 10 (Deribit's minimum), grace 0.5 s. The idle client gets its
    /// test_request at 10 s and is dropped (TCP close, no close frame) once 10 s + grace pass
    /// without public/test; its cancel-on-disconnect runs. The answering client stays open.
    func testHeartbeatDropsTheIdleClientOnly() throws {
        var config = SimConfig()
        config.heartbeatGraceSeconds = 0.5
        let sim = try startSim(config)
        let loop = clientLoop()
        let idle = try connect(sim, loop)
        let answering = try connect(sim, loop)
        try idle.authenticate()
        try answering.authenticate()
        XCTAssertEqual(try idle.result("private/enable_cancel_on_disconnect") as? String, "ok")
        let order = try restingBuy(idle, label: "idle")

        let start = Date()
        XCTAssertEqual(try idle.result("public/set_heartbeat", ["interval": 10]) as? String, "ok")
        XCTAssertEqual(try answering.result("public/set_heartbeat", ["interval": 10]) as? String, "ok")

        var answered = 0
        while !idle.closed.isSet {
            guard Date().timeIntervalSince(start) < 30 else { throw TestFailure("the idle client was not dropped within 30 s") }
            guard let m = try? answering.next("a message", timeout: 0.05) else { continue }
            let o = try decodeObject(m)
            if o["method"] as? String == "heartbeat" {
                XCTAssertEqual((o["params"] as? [String: Any])?["type"] as? String, "test_request")
                XCTAssertNotNil(try answering.call("public/test")["result"])
                answered += 1
            }
        }
        let droppedAfter = Date().timeIntervalSince(start)
        let event = try idle.waitClosed()
        XCTAssertEqual(event.code, 1006, "dropped without a close frame: \(event)")
        XCTAssertFalse(event.initiatedLocally)
        XCTAssertGreaterThanOrEqual(droppedAfter, 20, "dropped before interval + interval + grace")
        XCTAssertGreaterThanOrEqual(answered, 1, "the answering client got no test_request")

        // The idle client did get its test_request before it was dropped.
        var idleMessages: [[String: Any]] = []
        while let m = try? idle.next("a message", timeout: 0) { idleMessages.append(try decodeObject(m)) }
        XCTAssert(idleMessages.contains { $0["method"] as? String == "heartbeat" }, "\(idleMessages)")

        // Heartbeat failure applies cancel-on-disconnect.
        let state = try answering.result("private/get_order_state", ["order_id": order]) as! [String: Any]
        XCTAssertEqual(state["order_state"] as? String, "cancelled")
        XCTAssertEqual(state["cancel_reason"] as? String, "cancel_on_disconnect")

        // The answering client is still served, and still on heartbeats.
        XCTAssertFalse(answering.closed.isSet)
        XCTAssertNotNil(try answering.call("public/test")["result"])
        let conns = (try sim.state())["connections"] as! [[String: Any]]
        XCTAssertEqual(conns.count, 1)
        XCTAssertEqual(conns.first?["heartbeat_interval"] as? Int, 10)
    }

    func testCancelOnDisconnectOnCloseAndCrashButNotOnLogout() throws {
        let sim = try startSim()
        let loop = clientLoop()
        let watcher = try connect(sim, loop)
        try watcher.authenticate()
        XCTAssertEqual(try watcher.result("private/subscribe", ["channels": ["user.orders.any.any.raw"]]) as? [String], ["user.orders.any.any.raw"])

        var clients: [String: RPCClient] = [:]
        var orders: [String: String] = [:]
        for name in ["closes", "crashes", "logs-out", "flag-off"] {
            let c = try connect(sim, loop)
            try c.authenticate()
            if name != "flag-off" {
                XCTAssertEqual(try c.result("private/enable_cancel_on_disconnect", ["scope": "connection"]) as? String, "ok")
                let cod = try c.result("private/get_cancel_on_disconnect") as! [String: Any]
                XCTAssertEqual(cod["enabled"] as? Bool, true)
                XCTAssertEqual(cod["scope"] as? String, "connection")
            }
            clients[name] = c
            orders[name] = try restingBuy(c, label: name)
        }
        let watcherOrder = try restingBuy(watcher, label: "watcher")
        XCTAssertEqual(try openOrderIDs(sim), Set(orders.values).union([watcherOrder]))

        func cancelNotification(for orderID: String) throws -> [String: Any] {
            while true {
                let o = try watcher.notificationData(channel: "user.orders.any.any.raw") as! [String: Any]
                if o["order_id"] as? String == orderID, o["order_state"] as? String == "cancelled" { return o }
            }
        }

        // A close handshake started by the client.
        clients["closes"]!.close()
        XCTAssertEqual(try clients["closes"]!.waitClosed().code, 1000)
        XCTAssertEqual(try cancelNotification(for: orders["closes"]!)["cancel_reason"] as? String, "cancel_on_disconnect")
        XCTAssertFalse(try openOrderIDs(sim).contains(orders["closes"]!))

        // TCP gone without a close frame.
        clients["crashes"]!.kill()
        XCTAssertEqual(try cancelNotification(for: orders["crashes"]!)["cancel_reason"] as? String, "cancel_on_disconnect")

        // private/logout: closed with 1000 "logout", no response, orders stay.
        let logoutID = try clients["logs-out"]!.send("private/logout")
        let event = try clients["logs-out"]!.waitClosed()
        XCTAssertEqual(event.code, 1000)
        XCTAssertEqual(event.reason, "logout")
        XCTAssertNil(try? clients["logs-out"]!.responseObject(idJSON: logoutID, timeout: 0.2), "private/logout has no response")

        // The flag off: nothing cancelled.
        clients["flag-off"]!.kill()
        _ = try sim.waitForState("only the watcher connected") { ($0["connections"] as? [Any])?.count == 1 }
        XCTAssertEqual(try openOrderIDs(sim), [orders["logs-out"]!, orders["flag-off"]!, watcherOrder])
        let open = (try sim.state())["open_orders"] as! [[String: Any]]
        XCTAssertEqual(open.first { $0["order_id"] as? String == orders["logs-out"] }?["label"] as? String, "logs-out")
    }

    func testAccountScopeCancelOnDisconnect() throws {
        let sim = try startSim()
        let loop = clientLoop()
        let setter = try connect(sim, loop)
        try setter.authenticate()
        XCTAssertEqual(try setter.result("private/enable_cancel_on_disconnect", ["scope": "account"]) as? String, "ok")
        XCTAssertEqual((try setter.result("private/get_cancel_on_disconnect", ["scope": "account"]) as? [String: Any])?["enabled"] as? Bool, true)
        let later = try connect(sim, loop)
        try later.authenticate()
        XCTAssertEqual((try later.result("private/get_cancel_on_disconnect") as? [String: Any])?["enabled"] as? Bool, true)
        let order = try restingBuy(later, label: "later")
        later.kill()
        _ = try sim.waitForState("the order cancelled on disconnect") { s in
            !((s["open_orders"] as? [[String: Any]]) ?? []).contains { $0["order_id"] as? String == order }
        }
        let state = try setter.result("private/get_order_state", ["order_id": order]) as! [String: Any]
        XCTAssertEqual(state["cancel_reason"] as? String, "cancel_on_disconnect")
    }

    /// The binary with small buckets: 10028 answers the request that overdraws, with its id, and the
    /// connection is closed (1008); cancel-on-disconnect applies.
    func testTooManyRequestsThenClose() throws {
        let (_, port) = try startSimBinary(["--credit-max", "1500", "--credit-cost", "500", "--credit-refill", "1",
                                            "--me-burst", "2", "--me-rate", "0.01"])
        let loop = clientLoop()
        let url = "ws://127.0.0.1:\(port)/ws/api/v2"

        let anon = try RPCClient(url: url, loop: loop)
        addTeardownBlock { anon.kill() }
        for _ in 0..<3 { XCTAssertNotNil(try anon.call("public/test")["result"]) }
        let id = try anon.send("public/test")
        let over = try anon.responseObject(idJSON: id)
        XCTAssertEqual((over["error"] as? [String: Any])?["code"] as? Int, 10028)
        XCTAssertEqual((over["error"] as? [String: Any])?["message"] as? String, "too_many_requests")
        XCTAssertEqual(over["id"] as? Int, Int(id))
        let closed = try anon.waitClosed()
        XCTAssertEqual(closed.code, 1008)
        XCTAssertEqual(closed.reason, "too_many_requests")

        // The matching-engine bucket (burst 2) of an account.
        let trader = try RPCClient(url: url, loop: loop)
        addTeardownBlock { trader.kill() }
        try trader.authenticate()
        XCTAssertEqual(try trader.result("private/enable_cancel_on_disconnect") as? String, "ok")
        for _ in 0..<2 { _ = try restingBuy(trader, label: "me") }
        let third = try trader.call("private/buy", ["instrument_name": "BTC-PERPETUAL", "amount": 10, "price": 40000])
        XCTAssertEqual((third["error"] as? [String: Any])?["code"] as? Int, 10028)
        XCTAssertEqual(try trader.waitClosed().code, 1008)
        var open = -1
        try? pollUntil("cancel-on-disconnect after 10028", timeout: testDeadline) {
            let s = try decodeObject(try HTTPClient.request("GET", port: port, path: "/sim/state").body)
            open = (s["open_orders"] as? [Any])?.count ?? -1
            return open == 0
        }
        XCTAssertEqual(open, 0, "cancel-on-disconnect after 10028")
    }

    func testFramesOver32kBGetInvalidRequestWithoutID() throws {
        let sim = try startSim()
        let c = try connect(sim, clientLoop())
        func request(id: Int, padding: Int) -> [UInt8] {
            Array(#"{"jsonrpc":"2.0","id":\#(id),"method":"public/test","params":{"pad":""#.utf8)
                + Array(repeating: UInt8(ascii: "x"), count: padding) + Array(#""}}"#.utf8)
        }
        let under = request(id: 31, padding: 32_768 - 80)
        XCTAssertLessThanOrEqual(under.count, 32_768)
        c.sendRaw(under)
        XCTAssertNotNil(try c.responseObject(idJSON: "31")["result"], "a frame of \(under.count) bytes is served")

        let over = request(id: 32, padding: 40_000)
        c.sendRaw(over)
        let answer = try decodeObject(try XCTUnwrap(try? c.next(), "no answer to a \(over.count)-byte frame"))
        XCTAssertNil(answer["id"], "no id: Deribit does not parse the frame")
        XCTAssertEqual((answer["error"] as? [String: Any])?["code"] as? Int, -32600)
        XCTAssertEqual(answer["testnet"] as? Bool, true)
        // The connection stays open.
        XCTAssertNotNil(try c.call("public/test")["result"])
        XCTAssertFalse(c.closed.isSet)
    }
}
