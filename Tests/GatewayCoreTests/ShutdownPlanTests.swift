@testable import GatewayCore
import XCTest

/// SPEC §8: graceful shutdown — cancel flagged clients' orders (bounded), log out upstream
/// (bounded), flush the clients' close frames, exit within the total bound.
final class ShutdownPlanTests: XCTestCase {
    private let start: Nanos = 100 * second

    private func plan(cancels: Int = 0, clients: Int = 0, upstreamOpen: Bool = true) -> ShutdownPlan {
        ShutdownPlan(now: start, cancelsOutstanding: cancels, clientsOpen: clients, upstreamOpen: upstreamOpen)
    }

    func testWithoutCancelsItLogsOutAtOnceThenWaitsForTheUpstreamAndTheClients() {
        var p = plan(clients: 2)
        XCTAssertEqual(p.begin(now: start), [.logoutUpstream])
        XCTAssertEqual(p.phase, .loggingOut)
        XCTAssertEqual(p.deadline, start + 1 * second)

        XCTAssertEqual(p.upstreamClosed(now: start + 100 * millisecond), [])
        XCTAssertEqual(p.phase, .flushing)
        XCTAssertEqual(p.deadline, start + 4 * second, "the total bound, from the start")
        XCTAssertEqual(p.clientsChanged(open: 1, now: start + 150 * millisecond), [])
        XCTAssertEqual(p.clientsChanged(open: 0, now: start + 200 * millisecond), [.finish(unflushedClients: 0, unconfirmedCancels: 0)])
        XCTAssertEqual(p.phase, .finished)
        XCTAssertNil(p.deadline)
        XCTAssertEqual(p.timerFired(now: start + 10 * second), [], "finished once")
        XCTAssertEqual(p.clientsChanged(open: 0, now: start + 10 * second), [])
    }

    func testNothingToWaitForFinishesAtOnce() {
        var p = plan(upstreamOpen: false)
        XCTAssertEqual(p.begin(now: start), [.finish(unflushedClients: 0, unconfirmedCancels: 0)])
        XCTAssertEqual(p.phase, .finished)
    }

    func testAClosedUpstreamIsNotLoggedOut() {
        var p = plan(clients: 1, upstreamOpen: false)
        XCTAssertEqual(p.begin(now: start), [])
        XCTAssertEqual(p.phase, .flushing)
        XCTAssertEqual(p.clientsChanged(open: 0, now: start + 1), [.finish(unflushedClients: 0, unconfirmedCancels: 0)])
    }

    func testOutstandingCancelsAreAwaitedBeforeTheLogout() {
        // SPEC §8: the logout must not come first, or Deribit's session-scoped state goes with it.
        var p = plan(cancels: 3)
        XCTAssertEqual(p.begin(now: start), [])
        XCTAssertEqual(p.phase, .cancelling)
        XCTAssertEqual(p.deadline, start + 2_500 * millisecond)
        XCTAssertEqual(p.cancelsChanged(outstanding: 1, now: start + 1 * second), [])
        XCTAssertEqual(p.upstreamClosed(now: start + 1 * second), [], "an upstream loss does not cut the cancel wait short")
        XCTAssertEqual(p.phase, .cancelling)

        var q = plan(cancels: 3)
        _ = q.begin(now: start)
        XCTAssertEqual(q.cancelsChanged(outstanding: 0, now: start + 1_500 * millisecond), [.logoutUpstream])
        XCTAssertEqual(q.phase, .loggingOut)
        XCTAssertEqual(q.deadline, start + 2_500 * millisecond, "the logout wait starts when the logout is sent")
        XCTAssertEqual(q.upstreamClosed(now: start + 1_600 * millisecond), [.finish(unflushedClients: 0, unconfirmedCancels: 0)])
    }

    func testTheCancelWaitIsBoundedAndTheUnconfirmedCancelsAreReported() {
        var p = plan(cancels: 2, clients: 0)
        XCTAssertEqual(p.begin(now: start), [])
        XCTAssertEqual(p.timerFired(now: start + 2_500 * millisecond - 1), [])
        XCTAssertEqual(p.timerFired(now: start + 2_500 * millisecond), [.logoutUpstream])
        XCTAssertEqual(p.unconfirmedCancels, 2)
        XCTAssertEqual(p.cancelsChanged(outstanding: 0, now: start + 2_600 * millisecond), [], "too late to count")
        XCTAssertEqual(p.upstreamClosed(now: start + 2_700 * millisecond), [.finish(unflushedClients: 0, unconfirmedCancels: 2)])
    }

    func testTheLogoutWaitIsBounded() {
        var p = plan(clients: 1)
        XCTAssertEqual(p.begin(now: start), [.logoutUpstream])
        XCTAssertEqual(p.timerFired(now: start + 1 * second - 1), [])
        XCTAssertEqual(p.timerFired(now: start + 1 * second), [.abortUpstream])
        XCTAssertEqual(p.phase, .flushing)
        XCTAssertEqual(p.deadline, start + 4 * second)
        XCTAssertEqual(p.upstreamClosed(now: start + 1_100 * millisecond), [], "aborted once")

        var q = plan(clients: 0)
        _ = q.begin(now: start)
        XCTAssertEqual(q.timerFired(now: start + 1 * second), [.abortUpstream, .finish(unflushedClients: 0, unconfirmedCancels: 0)])
    }

    func testTheTotalBoundEndsTheFlushWithTheClientsStillOpen() {
        var p = plan(clients: 3, upstreamOpen: false)
        XCTAssertEqual(p.begin(now: start), [])
        XCTAssertEqual(p.clientsChanged(open: 2, now: start + 1 * second), [])
        XCTAssertEqual(p.timerFired(now: start + 4 * second - 1), [])
        XCTAssertEqual(p.timerFired(now: start + 4 * second), [.finish(unflushedClients: 2, unconfirmedCancels: 0)])
    }

    func testEveryBoundInTurnEndsWithinTheTotal() {
        var p = plan(cancels: 1, clients: 1)
        var actions: [ShutdownPlan.Action] = []
        var fired: [Nanos] = []
        actions += p.begin(now: start)
        // The runtime arms one timer at `deadline` and fires it there.
        while let at = p.deadline {
            fired.append(at - start)
            actions += p.timerFired(now: at)
        }
        XCTAssertEqual(actions, [.logoutUpstream, .abortUpstream, .finish(unflushedClients: 1, unconfirmedCancels: 1)])
        XCTAssertEqual(fired, [2_500 * millisecond, 3_500 * millisecond, 4_000 * millisecond])
    }

    func testALateTimerStillGivesTheLogoutItsWaitThenFinishesAtOnce() {
        var p = plan(cancels: 1, clients: 1)
        _ = p.begin(now: start)
        let late = start + 60 * second
        XCTAssertEqual(p.timerFired(now: late), [.logoutUpstream])
        XCTAssertEqual(p.deadline, late + 1 * second, "the logout wait counts from the logout")
        XCTAssertEqual(p.timerFired(now: late + 1 * second),
                       [.abortUpstream, .finish(unflushedClients: 1, unconfirmedCancels: 1)], "the total bound is long past")
    }

    func testConfiguredBounds() {
        var bounds = ShutdownPlan.Bounds()
        bounds.cancelWait = 500 * millisecond
        bounds.logoutWait = 200 * millisecond
        bounds.total = 1 * second
        var p = ShutdownPlan(bounds: bounds, now: 0, cancelsOutstanding: 1, clientsOpen: 1, upstreamOpen: true)
        XCTAssertEqual(p.begin(now: 0), [])
        XCTAssertEqual(p.deadline, 500 * millisecond)
        XCTAssertEqual(p.timerFired(now: 500 * millisecond), [.logoutUpstream])
        XCTAssertEqual(p.deadline, 700 * millisecond)
        XCTAssertEqual(p.upstreamClosed(now: 600 * millisecond), [])
        XCTAssertEqual(p.deadline, 1 * second)
    }
}
