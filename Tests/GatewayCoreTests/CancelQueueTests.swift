@testable import GatewayCore
import JSONRPC
import XCTest

/// SPEC §7: "A cancellation is never given up: it is re-checked (`private/get_order_state`)
/// when its answer is late or ambiguous, and is retried until the exchange confirms the order
/// closed or unknown, across reconnects."
final class CancelQueueTests: XCTestCase {
    private let alice = client(1)

    // MARK: helpers

    private func cancel(_ id: String, _ c: ClientID = client(1), _ label: String = "alpha") -> OrderTracker.Cancel {
        OrderTracker.Cancel(orderID: id, client: c, label: label)
    }

    /// A queue holding `ids`, enqueued at `now` in this order.
    private func queue(_ ids: String..., now: Nanos = 0) -> CancelQueue {
        var q = CancelQueue()
        for id in ids { XCTAssertTrue(q.enqueue(cancel(id), now: now)) }
        return q
    }

    /// Takes the next due job and describes it: "A cancel", "A checkState", or nil.
    private func next(_ q: inout CancelQueue, now: Nanos) -> String? {
        q.next(now: now).map { "\($0.cancel.orderID) \($0.work)" }
    }

    /// The order as `private/cancel` and `private/get_order_state` return it.
    private func orderAnswer(_ id: String, _ state: String) throws -> UpstreamOutcome {
        try upstreamResponse(#"{"jsonrpc":"2.0","id":9,"result":{"order_id":"\#(id)","order_state":"\#(state)","instrument_name":"BTC-PERPETUAL","amount":10},"usIn":1,"usOut":2,"usDiff":1,"testnet":true}"#)
    }

    private func deribitError(_ code: Int, _ message: String) throws -> UpstreamOutcome {
        try upstreamResponse(#"{"jsonrpc":"2.0","id":9,"error":{"message":"\#(message)","code":\#(code)},"usIn":1,"usOut":2,"usDiff":1,"testnet":true}"#)
    }

    private func job(_ q: CancelQueue, _ id: String) -> CancelQueue.Job? {
        q.pending.first { $0.cancel.orderID == id }
    }

    // MARK: enqueue and next

    func testAnOrderIsQueuedOnce() {
        var q = CancelQueue()
        XCTAssertTrue(q.isEmpty)
        XCTAssertTrue(q.enqueue(cancel("A"), now: 0))
        XCTAssertFalse(q.enqueue(cancel("A", client(2), "bravo"), now: 1 * second), "already queued, whoever asks")
        XCTAssertEqual(q.count, 1)
        XCTAssertTrue(q.contains("A"))
        XCTAssertFalse(q.contains("B"))
        XCTAssertEqual(q.pending.map(\.cancel), [cancel("A")], "the first one stays")
        XCTAssertEqual(q.pending.map(\.queuedAt), [0])
        XCTAssertEqual(q.pending.map(\.work), [.cancel])
        XCTAssertEqual(q.pending.map(\.dueAt), [0], "due at once")
    }

    func testNextHandsOutDueWorkInArrivalOrderAndNothingInFlightTwice() {
        var q = queue("B", "A", now: 0)
        XCTAssertTrue(q.enqueue(cancel("C"), now: 5 * millisecond))
        XCTAssertEqual(q.nextDueAt, 0)

        XCTAssertEqual(next(&q, now: 0), "B cancel", "arrival, not name, decides")
        XCTAssertEqual(next(&q, now: 0), "A cancel")
        XCTAssertNil(next(&q, now: 5 * millisecond - 1), "C is not due yet; A and B are in flight")
        XCTAssertEqual(q.nextDueAt, 5 * millisecond)
        XCTAssertEqual(next(&q, now: 5 * millisecond), "C cancel")

        XCTAssertNil(next(&q, now: 100 * second), "all in flight: none is handed out twice")
        XCTAssertNil(q.nextDueAt)
        XCTAssertEqual(q.count, 3, "in flight is still queued")
        XCTAssertEqual(q.pending.map(\.cancel.orderID), ["B", "A", "C"])
        XCTAssertEqual(q.pending.map(\.dueAt), [nil, nil, nil])
    }

    func testAnswersForOrdersNotQueuedChangeNothing() throws {
        var q = queue("A")
        XCTAssertNil(q.cancelAnswered("Z", try orderAnswer("Z", "cancelled"), now: 0))
        XCTAssertNil(q.stateAnswered("Z", .failed(.upstreamTimeout), now: 0))
        XCTAssertEqual(q.failures, 0)
        XCTAssertEqual(q.count, 1)
    }

    // MARK: the cancel's answer

    func testACancelAnsweredWithTheOrderClosedSettlesIt() throws {
        for state in ["cancelled", "filled", "rejected"] {
            var q = queue("A", "B")
            XCTAssertEqual(next(&q, now: 0), "A cancel")
            XCTAssertEqual(q.cancelAnswered("A", try orderAnswer("A", state), now: 1 * millisecond), .closed(state: state))
            XCTAssertFalse(q.contains("A"), state)
            XCTAssertEqual(q.count, 1)
            XCTAssertEqual(q.pending.map(\.cancel.orderID), ["B"])
            XCTAssertEqual(next(&q, now: 1 * second), "B cancel", "the settled job is never handed out again")
            XCTAssertNil(next(&q, now: 1 * second))
            XCTAssertEqual(q.failures, 0)
        }
    }

    func testACancelAnsweredWithTheOrderStillOpenChecksItsStateAtOnce() throws {
        for state in ["open", "untriggered", "triggered"] {
            var q = queue("A")
            _ = q.next(now: 0)
            let t = 3 * second
            XCTAssertNil(q.cancelAnswered("A", try orderAnswer("A", state), now: t), state)
            XCTAssertEqual(job(q, "A")?.work, .checkState)
            XCTAssertEqual(job(q, "A")?.dueAt, t, "due now, no backoff: the exchange answered")
            XCTAssertEqual(q.nextDueAt, t)
            XCTAssertEqual(next(&q, now: t), "A checkState")
            XCTAssertEqual(q.failures, 0, "an answer is no failure")
        }
    }

    func testACancelAnsweredWithoutAnOrderStateChecksItsState() throws {
        var q = queue("A")
        _ = q.next(now: 0)
        XCTAssertNil(q.cancelAnswered("A", try upstreamResponse(#"{"jsonrpc":"2.0","id":9,"result":{"order_id":"A"}}"#), now: 1 * second))
        XCTAssertEqual(next(&q, now: 1 * second), "A checkState")
    }

    func testAnOrderNotOpenOrNotFoundSettlesTheCancel() throws {
        for (code, message) in [(11044, "not_open_order"), (10004, "order_not_found")] {
            var q = queue("A")
            _ = q.next(now: 0)
            XCTAssertEqual(q.cancelAnswered("A", try deribitError(code, message), now: 0), .notOpen(code: code))
            XCTAssertTrue(q.isEmpty, message)
        }
    }

    func testOtherErrorsAreRetriedAfterABackoffThatDoublesUpToTheMax() throws {
        XCTAssertEqual(CancelQueue.retryDelay, 500 * millisecond)
        XCTAssertEqual(CancelQueue.maxRetryDelay, 10 * second)
        var q = queue("A")
        var now: Nanos = 0
        let expected: [Nanos] = [500, 1_000, 2_000, 4_000, 8_000, 10_000, 10_000, 10_000].map { $0 * millisecond }
        for (k, delay) in expected.enumerated() {
            XCTAssertEqual(next(&q, now: now), "A cancel", "attempt \(k)")
            XCTAssertNil(q.cancelAnswered("A", try deribitError(10028, "too_many_requests"), now: now))
            XCTAssertEqual(q.nextDueAt, now + delay, "after failure \(k + 1)")
            XCTAssertNil(next(&q, now: now + delay - 1), "never early")
            XCTAssertEqual(job(q, "A")?.failures, k + 1)
            now += delay
        }
        XCTAssertEqual(q.failures, expected.count)
        XCTAssertTrue(q.contains("A"), "never given up")
    }

    func testAGatewayFailureOtherThanTimeoutOrLossBacksOffToo() {
        var q = queue("A")
        _ = q.next(now: 0)
        XCTAssertNil(q.cancelAnswered("A", .failed(.tooManyRequests(reason: nil)), now: 0))
        XCTAssertEqual(job(q, "A")?.work, .cancel)
        XCTAssertEqual(q.nextDueAt, CancelQueue.retryDelay)
        XCTAssertEqual(q.failures, 1)
    }

    func testACancelUnansweredInTimeIsAmbiguousItsStateIsCheckedAtOnce() {
        var q = queue("A")
        _ = q.next(now: 0)
        let t = 15 * second
        XCTAssertNil(q.cancelAnswered("A", .failed(.upstreamTimeout), now: t))
        XCTAssertEqual(q.failures, 1, "counted for /metrics")
        XCTAssertEqual(job(q, "A")?.work, .checkState, "it may have been cancelled: ask before sending it again")
        XCTAssertEqual(q.nextDueAt, t)
        XCTAssertEqual(next(&q, now: t), "A checkState")
    }

    func testACancelLostWithTheUpstreamIsSentAgainAtOnce() {
        var q = queue("A")
        _ = q.next(now: 0)
        let t = 2 * second
        XCTAssertNil(q.cancelAnswered("A", .failed(.upstreamUnavailable), now: t))
        XCTAssertEqual(q.failures, 1)
        XCTAssertEqual(job(q, "A")?.work, .cancel, "a cancel is idempotent")
        XCTAssertEqual(q.nextDueAt, t)
        XCTAssertEqual(next(&q, now: t), "A cancel")
    }

    // MARK: the state's answer

    /// A queue whose only job, "A", is a state check in flight.
    private func checking(now: Nanos = 0) throws -> CancelQueue {
        var q = queue("A", now: now)
        _ = q.next(now: now)
        XCTAssertNil(q.cancelAnswered("A", try orderAnswer("A", "open"), now: now))
        XCTAssertEqual(next(&q, now: now), "A checkState")
        return q
    }

    func testAnOrderStillOpenIsCancelledAgain() throws {
        for state in ["open", "untriggered"] {
            var q = try checking()
            XCTAssertNil(q.stateAnswered("A", try orderAnswer("A", state), now: 1 * second))
            XCTAssertEqual(job(q, "A")?.work, .cancel, state)
            XCTAssertEqual(next(&q, now: 1 * second), "A cancel", "at once")
        }
    }

    func testAnOrderClosedOrUnknownSettlesTheCheck() throws {
        var q = try checking()
        XCTAssertEqual(q.stateAnswered("A", try orderAnswer("A", "cancelled"), now: 0), .closed(state: "cancelled"))
        XCTAssertTrue(q.isEmpty)

        q = try checking()
        XCTAssertEqual(q.stateAnswered("A", try orderAnswer("A", "filled"), now: 0), .closed(state: "filled"))
        XCTAssertTrue(q.isEmpty)

        q = try checking()
        XCTAssertEqual(q.stateAnswered("A", try deribitError(10004, "order_not_found"), now: 0), .notOpen(code: 10004))
        XCTAssertTrue(q.isEmpty)

        q = try checking()
        XCTAssertEqual(q.stateAnswered("A", try deribitError(11044, "not_open_order"), now: 0), .notOpen(code: 11044))
        XCTAssertTrue(q.isEmpty)
    }

    func testAFailedCheckIsCheckedAgainAfterABackoff() throws {
        var q = try checking()
        XCTAssertNil(q.stateAnswered("A", .failed(.upstreamTimeout), now: 1 * second))
        XCTAssertEqual(job(q, "A")?.work, .checkState, "still not known whether it is open: ask, don't cancel blind")
        XCTAssertEqual(q.nextDueAt, 1 * second + CancelQueue.retryDelay)
        XCTAssertNil(next(&q, now: 1 * second + CancelQueue.retryDelay - 1))
        XCTAssertEqual(next(&q, now: 1 * second + CancelQueue.retryDelay), "A checkState")

        XCTAssertNil(q.stateAnswered("A", try deribitError(10028, "too_many_requests"), now: 2 * second))
        XCTAssertEqual(q.nextDueAt, 2 * second + 2 * CancelQueue.retryDelay, "doubled")
        XCTAssertEqual(q.failures, 2)

        _ = q.next(now: 3 * second)
        XCTAssertNil(q.stateAnswered("A", try upstreamResponse(#"{"jsonrpc":"2.0","id":9,"result":{}}"#), now: 3 * second),
                     "a result without a state says nothing")
        XCTAssertEqual(job(q, "A")?.work, .checkState)
        XCTAssertEqual(q.failures, 3)
    }

    func testACheckLostWithTheUpstreamIsAskedAgainAtOnce() throws {
        var q = try checking()
        XCTAssertNil(q.stateAnswered("A", .failed(.upstreamUnavailable), now: 4 * second))
        XCTAssertEqual(q.failures, 1)
        XCTAssertEqual(next(&q, now: 4 * second), "A checkState")
    }

    // MARK: the whole queue

    func testNextDueAtIsTheEarliestOfTheWaitingJobs() throws {
        var q = queue("A", "B", "C", now: 0)
        for _ in 0..<3 { _ = q.next(now: 0) }
        XCTAssertNil(q.nextDueAt)
        _ = q.cancelAnswered("A", try deribitError(10028, "too_many_requests"), now: 1 * second)   // due at 1.5 s
        _ = q.cancelAnswered("B", .failed(.upstreamTimeout), now: 1_200 * millisecond)            // due at 1.2 s
        XCTAssertEqual(q.nextDueAt, 1_200 * millisecond)
        XCTAssertEqual(q.pending.map(\.cancel.orderID), ["A", "B", "C"], "arrival order, whatever the work")
        XCTAssertEqual(q.pending.map(\.work), [.cancel, .checkState, .cancel])
        XCTAssertEqual(q.pending.map(\.dueAt), [1_500 * millisecond, 1_200 * millisecond, nil])

        XCTAssertEqual(next(&q, now: 2 * second), "A cancel", "both due: the older first")
        XCTAssertEqual(next(&q, now: 2 * second), "B checkState")
        XCTAssertEqual(q.cancelAnswered("C", try orderAnswer("C", "cancelled"), now: 2 * second), .closed(state: "cancelled"))
        XCTAssertEqual(q.count, 2)
        XCTAssertTrue(q.enqueue(cancel("C"), now: 3 * second), "a settled order may be queued again")
        XCTAssertEqual(q.pending.map(\.cancel.orderID), ["A", "B", "C"])
    }

    /// One order's cancel goes wrong in every way the upstream knows before it is confirmed:
    /// it is never dropped, and each answer leads to the right next step.
    func testACancelLostThreeTimesInDifferentWaysEndsSettled() throws {
        var q = queue("A", "B", now: 0)
        var now: Nanos = 0
        func step(_ expected: String, _ line: UInt = #line) {
            // B, queued alongside, is settled at once and never disturbs A.
            XCTAssertEqual(next(&q, now: now), expected, line: line)
            XCTAssertTrue(q.contains("A"), line: line)
        }

        step("A cancel")
        XCTAssertEqual(q.cancelAnswered("B", try orderAnswer("B", "cancelled"), now: now), .closed(state: "cancelled"))
        // 1. The connection drops with the cancel unanswered: sent again once the upstream is back.
        XCTAssertNil(q.cancelAnswered("A", .failed(.upstreamUnavailable), now: now))
        now += 3 * second
        step("A cancel")
        // 2. Sent, and no answer in time: maybe cancelled, maybe not. Ask.
        now += 15 * second
        XCTAssertNil(q.cancelAnswered("A", .failed(.upstreamTimeout), now: now))
        step("A checkState")
        // The check is lost with the connection too: asked again.
        XCTAssertNil(q.stateAnswered("A", .failed(.upstreamUnavailable), now: now))
        now += 2 * second
        step("A checkState")
        XCTAssertNil(q.stateAnswered("A", try orderAnswer("A", "open"), now: now), "it was not cancelled")
        step("A cancel")
        // 3. The exchange refuses it for credits: retried after the backoff.
        XCTAssertNil(q.cancelAnswered("A", try deribitError(10028, "too_many_requests"), now: now))
        XCTAssertNil(next(&q, now: now + CancelQueue.retryDelay - 1))
        now += CancelQueue.retryDelay
        step("A cancel")
        XCTAssertEqual(q.cancelAnswered("A", try orderAnswer("A", "cancelled"), now: now), .closed(state: "cancelled"))

        XCTAssertTrue(q.isEmpty)
        XCTAssertNil(q.nextDueAt)
        XCTAssertEqual(q.failures, 4, "lost, timed out, check lost, refused")
    }

    /// The backoff doubles per *consecutive* failure (CancelQueue.retryDelay's doc): an answer
    /// that is not a failure (the state check saying the order is still open) starts it over.
    func testTheBackoffStartsOverAfterAnAnswer() throws {
        var q = queue("A")
        var now: Nanos = 0
        for _ in 0..<2 {
            _ = q.next(now: now)
            XCTAssertNil(q.cancelAnswered("A", try deribitError(10028, "too_many_requests"), now: now))
            now = try XCTUnwrap(q.nextDueAt)
        }
        XCTAssertEqual(now, 1_500 * millisecond, "500 ms, then 1 s")
        _ = q.next(now: now)
        XCTAssertNil(q.cancelAnswered("A", .failed(.upstreamTimeout), now: now))
        XCTAssertEqual(next(&q, now: now), "A checkState")
        XCTAssertNil(q.stateAnswered("A", try orderAnswer("A", "open"), now: now), "an answer: the exchange is talking")
        XCTAssertEqual(next(&q, now: now), "A cancel")
        XCTAssertNil(q.cancelAnswered("A", try deribitError(10028, "too_many_requests"), now: now))
        XCTAssertEqual(q.nextDueAt, now + CancelQueue.retryDelay, "the first failure after an answer waits the first delay")
    }
}
