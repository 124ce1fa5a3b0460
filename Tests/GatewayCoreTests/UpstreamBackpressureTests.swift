@testable import GatewayCore
import XCTest

/// SPEC §8: the 4 MiB upstream watermark, at its edge.
final class UpstreamBackpressureTests: XCTestCase {
    func testClientsPauseAboveTheWatermarkOnceAndResumeWhenDrained() {
        XCTAssertEqual(UpstreamBackpressure.highWatermark, 4 * 1024 * 1024)
        var b = UpstreamBackpressure()
        XCTAssertEqual(b.wrote(buffered: UpstreamBackpressure.highWatermark), .none, "at the watermark: still reading")
        XCTAssertEqual(b.wrote(buffered: UpstreamBackpressure.highWatermark + 1), .pauseClients)
        XCTAssertTrue(b.clientsPaused)
        XCTAssertEqual(b.wrote(buffered: 64 << 20), .none, "paused once")
        XCTAssertEqual(b.drained(), .resumeClients)
        XCTAssertFalse(b.clientsPaused)
        XCTAssertEqual(b.drained(), .none, "resumed once")
        XCTAssertEqual(b.wrote(buffered: 1), .none)
    }
}
