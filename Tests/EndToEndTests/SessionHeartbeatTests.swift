import Foundation
import Transport
import XCTest

/// SPEC §6.2 `public/set_heartbeat`: per-client heartbeats with Deribit's semantics, emulated by
/// the gateway. Deribit's minimum interval is 10 s, so this test takes about 32 s.
final class SessionHeartbeatTests: XCTestCase {
    static let testRequest = #"{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}"#

    func testSilentClientIsDisconnectedAndAnsweringClientStays() throws {
        let f = try SessionFixture(self)
        defer { f.stop() }
        let silent = try f.client("A")
        let answering = try f.client("B")
        let order = try f.placeOrder(silent, label: "silent")
        let kept = try f.placeOrder(answering, label: "answering")

        for bad: Any in [9, 5.5, "10"] {
            let r = try answering.call("public/set_heartbeat", ["interval": bad])
            let error = try XCTUnwrap(r["error"] as? [String: Any], "\(r)")
            XCTAssertEqual(error["code"] as? Int, -32602)
            XCTAssertEqual((error["data"] as? [String: Any])?["param"] as? String, "interval", "\(error)")
        }
        let setAt = Date()
        XCTAssertEqual(try silent.call("public/set_heartbeat", ["interval": 10])["result"] as? String, "ok")
        XCTAssertEqual(try answering.call("public/set_heartbeat", ["interval": 10])["result"] as? String, "ok")

        // The silent client sees its test_request and never answers it.
        let first = String(decoding: try silent.next("a test_request", timeout: 15), as: UTF8.self)
        XCTAssertEqual(first, Self.testRequest)
        let requestedAt = Date()
        XCTAssertEqual(requestedAt.timeIntervalSince(setAt), 10, accuracy: 1.5)

        // Meanwhile the answering client answers each of its test_requests, for three intervals.
        var answered = 0
        var silentClosedAt: Date?
        while Date().timeIntervalSince(setAt) < 32 {
            if silentClosedAt == nil, silent.isClosed { silentClosedAt = Date() }
            guard let m = try? answering.next("a message", timeout: 0.05) else { continue }
            let text = String(decoding: m, as: UTF8.self)
            guard text == Self.testRequest else { continue }
            answered += 1
            let r = try answering.call("public/test")
            XCTAssertNotNil((r["result"] as? [String: Any])?["version"], "\(r)")
        }
        XCTAssertEqual(answered, 3, "a test_request every 10 s")
        XCTAssertFalse(answering.isClosed, "the answering client stays connected")

        let closedAt = try XCTUnwrap(silentClosedAt, "the silent client was disconnected")
        let after = closedAt.timeIntervalSince(requestedAt)
        XCTAssertGreaterThan(after, 9, "not before the interval")
        XCTAssertLessThan(after, 11.5, "within the interval plus a small grace")
        XCTAssertEqual(try f.metric(#"deribit_gateway_client_disconnects_total{reason="heartbeat"}"#), 1)

        // Its cancel-on-disconnect applied; the other's order stays.
        try f.waitForOpenOrders("the silent client's order cancelled") { !$0.contains(order) }
        XCTAssertEqual(try f.openOrders(), [kept])
        XCTAssertEqual(try answering.call("public/disable_heartbeat")["result"] as? String, "ok")
    }
}
