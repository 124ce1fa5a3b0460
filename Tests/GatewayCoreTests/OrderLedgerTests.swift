@testable import GatewayCore
import XCTest

/// SPEC §7: the record of which client created which order holds only open orders.
final class OrderLedgerTests: XCTestCase {
    func testOpenedThenClosedIsForgotten() {
        var l = OrderLedger()
        XCTAssertTrue(l.opened("1", by: 7))
        XCTAssertTrue(l.opened("2", by: 7))
        XCTAssertTrue(l.opened("3", by: 8))
        XCTAssertEqual(l.orders(of: 7), ["1", "2"])
        XCTAssertEqual(l.closed("1"), 7)
        XCTAssertEqual(l.orders(of: 7), ["2"])
        XCTAssertNil(l.owner(of: "1"))
        XCTAssertNil(l.closed("unknown"))
        l.release(7)
        XCTAssertEqual(l.allOrders, ["3"])
    }

    func testACreationResponseAfterTheClosingNotificationDoesNotRevive() {
        var l = OrderLedger()
        l.closed("9")
        XCTAssertFalse(l.opened("9", by: 1))
        XCTAssertTrue(l.allOrders.isEmpty)
    }

    func testRecentlyClosedIsBounded() {
        var l = OrderLedger()
        let n = OrderLedger.recentlyClosedCapacity
        for i in 0..<(n + 10) { l.closed("c\(i)") }
        // The oldest ids fell out of the ring; the newest are still known closed.
        XCTAssertTrue(l.opened("c0", by: 1))
        XCTAssertFalse(l.opened("c\(n + 9)", by: 1))
    }

    func testTriggerOrdersAreLive() {
        XCTAssertTrue(OrderLedger.isLive("open"))
        XCTAssertTrue(OrderLedger.isLive("untriggered"))
        XCTAssertTrue(OrderLedger.isLive("triggered"))
        XCTAssertFalse(OrderLedger.isLive("filled"))
        XCTAssertFalse(OrderLedger.isLive("cancelled"))
        XCTAssertFalse(OrderLedger.isLive("rejected"))
    }
}
