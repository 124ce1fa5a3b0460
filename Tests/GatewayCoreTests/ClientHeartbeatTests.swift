@testable import GatewayCore
import JSONRPC
import XCTest

/// SPEC §6.2: `public/set_heartbeat` emulated per client with Deribit's semantics.
final class ClientHeartbeatTests: XCTestCase {
    // MARK: validate

    func testAnIntervalThatIsNotANumberIsInvalidParams() {
        for interval in [nil, Double.nan, .infinity, -.infinity] {
            XCTAssertEqual(ClientHeartbeat.validate(interval: interval),
                           .failure(.invalidParams(param: "interval", reason: "must be a number")), "\(String(describing: interval))")
        }
    }

    func testBelowTenSecondsIsDeribitsInvalidParamsWithData() throws {
        guard case .failure(let error) = ClientHeartbeat.validate(interval: 9.99) else { return XCTFail("9.99 accepted") }
        XCTAssertEqual(error.code, -32602)
        XCTAssertEqual(error.message, "Invalid params")
        XCTAssertEqual(error.data?.text, #"{"param":"interval","reason":"must be >= 10"}"#)
        XCTAssertEqual(ClientHeartbeat.validate(interval: 0), .failure(error))
        XCTAssertEqual(ClientHeartbeat.validate(interval: -10), .failure(error))
    }

    func testTenIsTheMinimumAndAHugeIntervalIsClampedToADay() {
        XCTAssertEqual(ClientHeartbeat.validate(interval: 10), .success(10))
        XCTAssertEqual(ClientHeartbeat.validate(interval: 12.5), .success(12.5))
        XCTAssertEqual(ClientHeartbeat.validate(interval: 86_400), .success(86_400))
        XCTAssertEqual(ClientHeartbeat.validate(interval: 1e300), .success(86_400))

        var hb = ClientHeartbeat()
        hb.set(intervalSeconds: 86_400, now: 5)
        XCTAssertEqual(hb.nextWakeup, 5 + 86_400 * second, "the timer arithmetic stays in range")
    }

    // MARK: the schedule

    func testTestRequestAfterOneIntervalThenDisconnectAfterAnother() {
        var hb = ClientHeartbeat()
        XCTAssertNil(hb.nextWakeup, "no heartbeat until set_heartbeat")
        var now: Nanos = 1_000 * second
        hb.set(intervalSeconds: 10, now: now)
        XCTAssertEqual(hb.nextWakeup, now + 10 * second)

        XCTAssertEqual(hb.timerFired(now: now + 10 * second - 1), .none, "nothing before 10 s")
        now += 10 * second
        XCTAssertEqual(hb.timerFired(now: now), .sendTestRequest)
        XCTAssertEqual(hb.answerDeadline, now + 10 * second)
        XCTAssertEqual(hb.nextWakeup, now + 10 * second)

        XCTAssertEqual(hb.timerFired(now: now + 10 * second - 1), .none)
        now += 10 * second
        XCTAssertEqual(hb.timerFired(now: now), .disconnect, "no public/test within 10 s of the test_request")
        XCTAssertNil(hb.nextWakeup, "a disconnected client has no timer")
        XCTAssertEqual(hb.timerFired(now: now + 100 * second), .none)
    }

    func testAnAnsweringClientStaysAndTheNextTestRequestComesOnSchedule() {
        var hb = ClientHeartbeat()
        hb.set(intervalSeconds: 10, now: 0)
        XCTAssertEqual(hb.timerFired(now: 10 * second), .sendTestRequest)
        hb.receivedTest()  // at 13 s
        XCTAssertNil(hb.answerDeadline)
        XCTAssertEqual(hb.nextWakeup, 20 * second, "10 s after the previous test_request, not after the answer")

        XCTAssertEqual(hb.timerFired(now: 20 * second), .sendTestRequest, "kept, and tested again")
        hb.receivedTest()
        XCTAssertEqual(hb.timerFired(now: 30 * second), .sendTestRequest)
        XCTAssertEqual(hb.nextWakeup, 40 * second)
        // This one goes unanswered.
        XCTAssertEqual(hb.timerFired(now: 40 * second), .disconnect)
    }

    func testAPublicTestBeforeTheTestRequestDoesNotAnswerIt() {
        var hb = ClientHeartbeat()
        hb.set(intervalSeconds: 10, now: 0)
        hb.receivedTest()  // at 5 s
        XCTAssertEqual(hb.timerFired(now: 10 * second), .sendTestRequest)
        XCTAssertEqual(hb.timerFired(now: 20 * second), .disconnect)
    }

    func testAFractionalInterval() {
        var hb = ClientHeartbeat()
        hb.set(intervalSeconds: 12.5, now: 0)
        XCTAssertEqual(hb.nextWakeup, 12_500 * millisecond)
        XCTAssertEqual(hb.timerFired(now: 12_500 * millisecond), .sendTestRequest)
        XCTAssertEqual(hb.nextWakeup, 25_000 * millisecond)
    }

    func testDisableStopsEverything() {
        var hb = ClientHeartbeat()
        hb.set(intervalSeconds: 10, now: 0)
        XCTAssertEqual(hb.timerFired(now: 10 * second), .sendTestRequest)
        hb.disable()
        XCTAssertNil(hb.nextWakeup)
        XCTAssertNil(hb.interval)
        XCTAssertEqual(hb.timerFired(now: 20 * second), .none, "the pending answer is no longer required")
        XCTAssertEqual(hb.timerFired(now: 1_000 * second), .none)
    }

    func testSetAgainRestartsTheScheduleAndForgetsThePendingAnswer() {
        var hb = ClientHeartbeat()
        hb.set(intervalSeconds: 10, now: 0)
        XCTAssertEqual(hb.timerFired(now: 10 * second), .sendTestRequest)
        hb.set(intervalSeconds: 30, now: 15 * second)
        XCTAssertNil(hb.answerDeadline)
        XCTAssertEqual(hb.nextWakeup, 45 * second)
        XCTAssertEqual(hb.timerFired(now: 20 * second), .none)
        XCTAssertEqual(hb.timerFired(now: 45 * second), .sendTestRequest)
    }

    // MARK: a late timer

    func testALateTimerSendsOneTestRequestAndGivesAFullIntervalToAnswer() {
        var hb = ClientHeartbeat()
        hb.set(intervalSeconds: 10, now: 0)
        // Due at 10 s; the loop was busy until 35 s.
        XCTAssertEqual(hb.timerFired(now: 35 * second), .sendTestRequest)
        XCTAssertEqual(hb.answerDeadline, 45 * second, "an interval from when it was actually sent")
        XCTAssertEqual(hb.nextWakeup, 45 * second, "no burst of missed test_requests")
        XCTAssertEqual(hb.timerFired(now: 35 * second), .none)
        hb.receivedTest()
        XCTAssertEqual(hb.timerFired(now: 45 * second), .sendTestRequest)
        XCTAssertEqual(hb.nextWakeup, 55 * second)
    }

    func testALateTimerAfterAnUnansweredTestRequestDisconnects() {
        var hb = ClientHeartbeat()
        hb.set(intervalSeconds: 10, now: 0)
        XCTAssertEqual(hb.timerFired(now: 10 * second), .sendTestRequest)
        XCTAssertEqual(hb.timerFired(now: 35 * second), .disconnect)
    }

    func testALateTimerAfterAnAnsweredTestRequestStaysOnTheOriginalGrid() {
        var hb = ClientHeartbeat()
        hb.set(intervalSeconds: 10, now: 0)
        XCTAssertEqual(hb.timerFired(now: 10 * second), .sendTestRequest)
        hb.receivedTest()
        // Due at 20 s, fired at 25 s: the next one is still due at 30 s.
        XCTAssertEqual(hb.timerFired(now: 25 * second), .sendTestRequest)
        XCTAssertEqual(hb.answerDeadline, 35 * second)
        XCTAssertEqual(hb.nextWakeup, 30 * second)
        hb.receivedTest()
        XCTAssertEqual(hb.timerFired(now: 30 * second), .sendTestRequest)
    }
}
