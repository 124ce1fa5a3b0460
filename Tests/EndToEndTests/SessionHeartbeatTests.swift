import Foundation
import TestSupport
import Transport
import XCTest

/// SPEC §6.2 `public/set_heartbeat`: per-client heartbeats with Deribit's semantics, emulated by
/// the gateway. Deribit's minimum interval is 10 s: the gateway runs in process on a manual
/// clock, so the 32 seconds of this exchange take milliseconds, while every message still
/// crosses a real socket and the orders are checked at the simulator.
final class SessionHeartbeatTests: XCTestCase {
    static let testRequest = #"{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}"#

    func testSilentClientIsDisconnectedAndAnsweringClientStays() throws {
        let f = try InProcessGateway(self)
        defer { f.stop() }
        let clientLoop = makeLoop(.dispatch)
        let silent = try f.client("A", loop: clientLoop)
        let answering = try f.client("B", loop: clientLoop)
        let order = try placeOrder(silent, label: "silent")
        let kept = try placeOrder(answering, label: "answering")

        for bad: Any in [9, 5.5, "10"] {
            let r = try answering.call("public/set_heartbeat", ["interval": bad])
            let error = try XCTUnwrap(r["error"] as? [String: Any], "\(r)")
            XCTAssertEqual(error["code"] as? Int, -32602)
            XCTAssertEqual((error["data"] as? [String: Any])?["param"] as? String, "interval", "\(error)")
        }
        XCTAssertEqual(try silent.call("public/set_heartbeat", ["interval": 10])["result"] as? String, "ok")
        XCTAssertEqual(try answering.call("public/set_heartbeat", ["interval": 10])["result"] as? String, "ok")

        // Nothing before the interval.
        try f.advance(seconds: 9.9)
        try assertNothingSentBefore(silent)
        try assertNothingSentBefore(answering)

        // At 10 s both see a test_request; only one answers it.
        try f.advance(seconds: 0.1)
        XCTAssertEqual(String(decoding: try silent.next("a test_request"), as: UTF8.self), Self.testRequest)
        XCTAssertEqual(String(decoding: try answering.next("a test_request"), as: UTF8.self), Self.testRequest)
        XCTAssertNotNil((try answering.call("public/test")["result"] as? [String: Any])?["version"])

        // Just before 20 s the silent one is still there.
        try f.advance(seconds: 9.9)
        XCTAssertFalse(silent.isClosed)

        // At 20 s: the silent client is disconnected; the answering one gets its next test_request.
        try f.advance(seconds: 0.1)
        let close = try silent.waitClosed()
        XCTAssertEqual(close.code, 1000)
        XCTAssertEqual(close.reason, "heartbeat timeout")
        XCTAssertEqual(String(decoding: try answering.next("the second test_request"), as: UTF8.self), Self.testRequest)
        XCTAssertNotNil((try answering.call("public/test")["result"] as? [String: Any])?["version"])

        // Its cancel-on-disconnect applied; the other's order stays.
        try pollUntil("the silent client's order cancelled") { !(try f.openOrders()).contains(order) }
        XCTAssertEqual(try f.openOrders(), [kept])
        XCTAssertEqual(try f.metric(#"deribit_gateway_client_disconnects_total{reason="heartbeat"}"#), 1)

        // A third interval: the answering client stays, answering each test_request.
        try f.advance(seconds: 10)
        XCTAssertEqual(String(decoding: try answering.next("the third test_request"), as: UTF8.self), Self.testRequest)
        XCTAssertNotNil((try answering.call("public/test")["result"] as? [String: Any])?["version"])
        try f.advance(seconds: 10)
        XCTAssertEqual(String(decoding: try answering.next("the fourth test_request"), as: UTF8.self), Self.testRequest)
        XCTAssertFalse(answering.isClosed, "the answering client stays connected")

        // Disabled: no more test_requests, however long.
        XCTAssertEqual(try answering.call("public/disable_heartbeat")["result"] as? String, "ok")
        try f.advance(seconds: 60)
        try assertNothingSentBefore(answering)
        XCTAssertFalse(answering.isClosed)
    }

    /// Nothing reached `c` before this point: the gateway handles a connection in order on one
    /// loop, so the first message after a local call is its answer unless something came first.
    private func assertNothingSentBefore(_ c: RPCClient, file: StaticString = #filePath, line: UInt = #line) throws {
        let id = try c.send("public/hello", ["client_name": "probe", "client_version": "1"])
        let m = try c.next("the hello answer")
        XCTAssertTrue(RPCClient.hasID(m, "\(id)"), "got \(String(decoding: m, as: UTF8.self)) first", file: file, line: line)
    }

    private func placeOrder(_ c: RPCClient, label: String) throws -> String {
        let r = try c.call("private/buy", ["instrument_name": "BTC-PERPETUAL", "amount": 10, "type": "limit", "price": 1000, "label": label])
        guard let order = (r["result"] as? [String: Any])?["order"] as? [String: Any], let id = order["order_id"] as? String else {
            throw TestFailure("private/buy failed: \(r)")
        }
        return id
    }
}
