import Foundation
import Transport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// SPEC §8 graceful shutdown on SIGTERM: flagged clients' orders cancelled (and confirmed),
/// clients closed with 1001, `private/logout` upstream so the other orders survive, exit 0.
final class SessionShutdownTests: XCTestCase {
    func testSIGTERMCancelsFlaggedOrdersLogsOutAndExitsZero() throws {
        let f = try SessionFixture(self)
        defer { f.stop() }
        let a = try f.client("A")
        let b = try f.client("B")
        let a1 = try f.placeOrder(a, label: "a")
        let a2 = try f.placeOrder(a, label: "a")
        let b1 = try f.placeOrder(b, label: "b")
        XCTAssertEqual(try f.openOrders(), [a1, a2, b1])
        XCTAssertEqual(try f.methodCalls("private/logout"), 0)

        XCTAssertEqual(kill(f.gw.child.process.processIdentifier, SIGTERM), 0)
        XCTAssertEqual(try f.gw.child.waitForExit(timeout: 10), 0, "exit code; log:\n\(f.gatewayLog)")

        for (name, c) in [("A", a), ("B", b)] {
            let event = try c.waitClosed(timeout: 5)
            XCTAssertEqual(event.code, 1001, "\(name): \(event)")
            XCTAssertFalse(event.initiatedLocally, "\(name) got the gateway's close frame")
        }
        XCTAssertEqual(try f.openOrders(), [b1], "A's orders cancelled, B's remain")
        XCTAssertEqual(try f.methodCalls("private/logout"), 1, "the gateway logged out upstream")
        let log = f.gatewayLog
        for id in [a1, a2] {
            XCTAssertTrue(log.split(separator: "\n").contains { $0.contains("cancel-on-disconnect") && $0.contains("client=A") && $0.contains("order_id=\(id)") }, "logged: \(id)")
        }
        XCTAssertFalse(log.contains("unconfirmed"), "every cancel was confirmed before the logout")
    }

    /// Shutdown while a flagged client's order is still on its way: the order is cancelled once
    /// its creation response arrives, before the logout.
    func testSIGTERMWaitsForAnOrderInFlight() throws {
        let f = try SessionFixture(self)
        defer { f.stop() }
        let a = try f.client("A")
        XCTAssertEqual(try f.sim.post("/sim/fault/delay?ms=500"), 200)
        try a.send("private/buy", ["instrument_name": "BTC-PERPETUAL", "amount": 10, "type": "limit", "price": 1000, "label": "inflight"])
        try pollUntil("the order at the exchange", every: 10_000) { try !f.openOrders(label: "inflight").isEmpty }
        XCTAssertEqual(try f.openOrders(label: "inflight").count, 1)

        XCTAssertEqual(kill(f.gw.child.process.processIdentifier, SIGTERM), 0)
        XCTAssertEqual(try f.gw.child.waitForExit(timeout: 10), 0, "exit code; log:\n\(f.gatewayLog)")
        XCTAssertEqual(try a.waitClosed(timeout: 5).code, 1001)
        XCTAssertEqual(try f.openOrders(), [], "the in-flight order was cancelled")
        XCTAssertEqual(try f.methodCalls("private/logout"), 1)
    }
}
