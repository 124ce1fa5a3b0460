@testable import GatewayCore
import XCTest

/// The upstream id window: consecutive ids, answers in any order, expiry from the oldest.
final class PendingRequestsTests: XCTestCase {
    private func request(deadline: UInt64) -> PendingRequest {
        PendingRequest(owner: .gateway(.heartbeatAnswer), method: MethodTraits(), sentAt: 0, deadline: deadline)
    }

    func testIdsAreConsecutiveAndAnswersMayComeInAnyOrder() {
        var p = PendingRequests()
        let a = p.add(request(deadline: 10))
        let b = p.add(request(deadline: 11))
        let c = p.add(request(deadline: 12))
        XCTAssertEqual([a, b, c], [1, 2, 3])
        XCTAssertEqual(p.remove(b)?.deadline, 11)
        XCTAssertNil(p.remove(b), "answered once")
        XCTAssertTrue(p.contains(a) && p.contains(c) && !p.contains(b))
        XCTAssertEqual(p.remove(a)?.deadline, 10)
        XCTAssertEqual(p.firstID, 3, "the window starts at the oldest pending id")
        XCTAssertEqual(p.count, 1)
        XCTAssertNil(p.remove(99), "never issued")
        XCTAssertNil(p.remove(0))
        XCTAssertEqual(p.remove(c)?.deadline, 12)
        XCTAssertTrue(p.isEmpty)
        XCTAssertEqual(p.add(request(deadline: 13)), 4)
    }

    func testGrowsPastItsCapacityWithAnOldRequestHoldingTheWindow() {
        var p = PendingRequests()
        let old = p.add(request(deadline: 0))
        for k in 1...1000 {
            let id = p.add(request(deadline: UInt64(k)))
            XCTAssertEqual(p.remove(id)?.deadline, UInt64(k))
        }
        var held: [UInt64] = []
        for k in 0..<300 { held.append(p.add(request(deadline: UInt64(1001 + k)))) }
        XCTAssertEqual(p.count, 301)
        XCTAssertEqual(p.remove(old)?.deadline, 0)
        XCTAssertEqual(p.firstID, held[0])
        XCTAssertEqual(p.values.map(\.deadline), (1001...1300).map { UInt64($0) })
        for id in held.reversed() { XCTAssertNotNil(p.remove(id)) }
        XCTAssertTrue(p.isEmpty)
        XCTAssertEqual(p.firstID, p.nextID)
    }

    func testExpiresFromTheOldestSkippingAnsweredOnes() {
        var p = PendingRequests()
        let a = p.add(request(deadline: 100))
        let b = p.add(request(deadline: 200))
        let c = p.add(request(deadline: 300))
        XCTAssertNil(p.removeFirstExpired(now: 99))
        XCTAssertEqual(p.removeFirstExpired(now: 250)?.id, a)
        _ = p.remove(b)
        XCTAssertNil(p.removeFirstExpired(now: 250))
        XCTAssertEqual(p.removeFirstExpired(now: 300)?.id, c)
        XCTAssertNil(p.removeFirstExpired(now: 1000))
    }

    func testMarkSent() {
        var p = PendingRequests()
        let a = p.add(request(deadline: 1))
        p.markSent(a, at: 42)
        p.markSent(a + 1, at: 43)  // not issued: ignored
        let r = p.remove(a)
        XCTAssertEqual(r?.sent, true)
        XCTAssertEqual(r?.sentAt, 42)
    }

    func testRemoveAllKeepsIdsRisingAndSkippedIdsAreNotTracked() {
        var p = PendingRequests()
        _ = p.add(request(deadline: 1))
        let skipped = p.skipID()
        _ = p.add(request(deadline: 2))
        XCTAssertFalse(p.contains(skipped))
        XCTAssertEqual(p.removeAll().map(\.deadline), [1, 2])
        XCTAssertTrue(p.isEmpty)
        XCTAssertEqual(p.skipID(), 4)
        XCTAssertEqual(p.add(request(deadline: 3)), 5)
        XCTAssertEqual(p.firstID, 5)
        XCTAssertEqual(p.values.count, 1)
    }
}
