import Dispatch
import Transport
import XCTest

final class EventLoopTests: XCTestCase {
    func testExecuteRunsOnTheLoopInOrder_dispatch() throws { try executeRunsOnTheLoopInOrder(.dispatch) }
    func testExecuteRunsOnTheLoopInOrder_epoll() throws { try executeRunsOnTheLoopInOrder(.epoll) }

    private func executeRunsOnTheLoopInOrder(_ kind: EventLoopKind) throws {
        let loop = makeLoop(kind)
        XCTAssertFalse(loop.inEventLoop)
        let order = Locked<[Int]>([])
        let inLoop = Locked<Bool>(true)
        for i in 0..<100 {
            loop.execute {
                order.update { $0.append(i) }
                if !loop.inEventLoop { inLoop.update { $0 = false } }
            }
        }
        try onLoop(loop) {}
        XCTAssertEqual(order.value, Array(0..<100))
        XCTAssertTrue(inLoop.value)
        XCTAssertFalse(loop.inEventLoop)
    }

    func testScheduleFiresAfterItsDelay_dispatch() throws { try scheduleFiresAfterItsDelay(.dispatch) }
    func testScheduleFiresAfterItsDelay_epoll() throws { try scheduleFiresAfterItsDelay(.epoll) }

    private func scheduleFiresAfterItsDelay(_ kind: EventLoopKind) throws {
        let loop = makeLoop(kind)
        let fired = Waiter<(elapsed: UInt64, inLoop: Bool)>()
        let start = DispatchTime.now().uptimeNanoseconds
        loop.schedule(after: .milliseconds(50)) {
            fired.fulfil((DispatchTime.now().uptimeNanoseconds - start, loop.inEventLoop))
        }
        let result = try fired.wait("the timer")
        XCTAssertGreaterThanOrEqual(result.elapsed, 49_000_000)
        XCTAssertTrue(result.inLoop)
    }

    func testTimersFireInDeadlineOrder_dispatch() throws { try timersFireInDeadlineOrder(.dispatch) }
    func testTimersFireInDeadlineOrder_epoll() throws { try timersFireInDeadlineOrder(.epoll) }

    private func timersFireInDeadlineOrder(_ kind: EventLoopKind) throws {
        let loop = makeLoop(kind)
        let order = Channel<Int>()
        try onLoop(loop) {
            loop.schedule(after: .milliseconds(60)) { order.push(3) }
            loop.schedule(after: .milliseconds(20)) { order.push(1) }
            loop.schedule(after: .milliseconds(40)) { order.push(2) }
        }
        XCTAssertEqual(try [order.next("1"), order.next("2"), order.next("3")], [1, 2, 3])
    }

    func testCancelledTimerNeverFires_dispatch() throws { try cancelledTimerNeverFires(.dispatch) }
    func testCancelledTimerNeverFires_epoll() throws { try cancelledTimerNeverFires(.epoll) }

    private func cancelledTimerNeverFires(_ kind: EventLoopKind) throws {
        let loop = makeLoop(kind)
        let cancelledRan = Locked(false)
        let later = Waiter<Bool>()
        // Cancelled from another thread, before its deadline.
        let fromOutside = loop.schedule(after: .milliseconds(30)) { cancelledRan.update { $0 = true } }
        fromOutside.cancel()
        XCTAssertTrue(fromOutside.isCancelled)
        try onLoop(loop) {
            // Cancelled on the loop: guaranteed never to run.
            let onLoop = loop.schedule(after: .milliseconds(10)) { cancelledRan.update { $0 = true } }
            onLoop.cancel()
            // A later timer on the same loop: once it ran, the earlier deadlines have passed.
            loop.schedule(after: .milliseconds(100)) { later.fulfil(cancelledRan.value) }
        }
        XCTAssertEqual(try later.wait("the later timer"), false)
    }

    func testRepeatingTimerRunsUntilCancelled_dispatch() throws { try repeatingTimerRunsUntilCancelled(.dispatch) }
    func testRepeatingTimerRunsUntilCancelled_epoll() throws { try repeatingTimerRunsUntilCancelled(.epoll) }

    private func repeatingTimerRunsUntilCancelled(_ kind: EventLoopKind) throws {
        let loop = makeLoop(kind)
        let count = Locked(0)
        let reachedFive = Waiter<Void>()
        let afterwards = Waiter<Int>()
        let task = Locked<ScheduledTask?>(nil)
        try onLoop(loop) {
            task.update {
                $0 = loop.scheduleRepeating(every: .milliseconds(5)) {
                    let n = count.update { $0 += 1; return $0 }
                    guard n == 5 else { return }
                    // Cancel from inside its own run: no sixth run.
                    task.value?.cancel()
                    reachedFive.fulfil(())
                    loop.schedule(after: .milliseconds(60)) { afterwards.fulfil(count.value) }
                }
            }
        }
        try reachedFive.wait("five repetitions")
        XCTAssertEqual(try afterwards.wait("the check after cancelling"), 5)
    }

    func testWorkQueuedFromTheLoopRunsLater_dispatch() throws { try workQueuedFromTheLoopRunsLater(.dispatch) }
    func testWorkQueuedFromTheLoopRunsLater_epoll() throws { try workQueuedFromTheLoopRunsLater(.epoll) }

    /// `execute` from the loop itself defers (never runs inline) and wakes the loop.
    private func workQueuedFromTheLoopRunsLater(_ kind: EventLoopKind) throws {
        let loop = makeLoop(kind)
        let order = Locked<[String]>([])
        let done = Waiter<Void>()
        loop.execute {
            loop.execute {
                order.update { $0.append("inner") }
                done.fulfil(())
            }
            order.update { $0.append("outer") }
        }
        try done.wait("the nested work")
        XCTAssertEqual(order.value, ["outer", "inner"])
    }
}
