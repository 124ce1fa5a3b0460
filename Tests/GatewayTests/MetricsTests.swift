@testable import Gateway
import XCTest

/// SPEC §5: the counters behind `/metrics`.
final class MetricsTests: XCTestCase {
    func testRequestCountsBySlotAreListedByClientThenOutcome() {
        var m = GatewayMetrics()
        let alice = m.requestSlot(for: "alice")
        let bob = m.requestSlot(for: "bob")
        XCTAssertEqual(m.requestSlot(for: "anonymous"), 0)
        XCTAssertEqual(m.requestSlot(for: "alice"), alice)
        m.request(slot: bob, .refused)
        m.request(slot: alice, .forwarded)
        m.request(slot: alice, .forwarded)
        m.request(slot: 0, .local)
        m.request(slot: alice, .local)
        let rows = m.requests.map { "\($0.client) \($0.outcome) \($0.count)" }
        // Only counters that moved, as with label pairs created on first use.
        XCTAssertEqual(rows, ["alice forwarded 2", "alice local 1", "anonymous local 1", "bob refused 1"])
    }

    func testHistogramCountsAreCumulative() {
        var h = GatewayMetrics.Histogram(bounds: [0.001, 0.01, 0.1])
        for v in [0.0005, 0.001, 0.002, 0.05, 5.0] { h.observe(v) }
        XCTAssertEqual(h.counts, [2, 3, 4])
        XCTAssertEqual(h.count, 5)
        XCTAssertEqual(h.sum, 5.0535, accuracy: 1e-9)
    }
}
