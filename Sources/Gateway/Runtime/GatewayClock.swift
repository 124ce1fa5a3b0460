import Synchronization
import Transport

/// A timer the runtime can cancel.
public protocol GatewayTimer: AnyObject, Sendable {
    func cancel()
}

extension ScheduledTask: GatewayTimer {}

/// Where the runtime gets time and timers. The core never reads a clock: the runtime reads
/// this one and passes `now` in. In production it is the system's monotonic clock and the
/// event loop's timers; tests use `ManualClock` and drive heartbeats, backoff, timeouts and
/// shutdown phases in milliseconds.
public protocol GatewayClock: AnyObject, Sendable {
    /// Monotonic nanoseconds.
    var now: UInt64 { get }
    /// Runs `work` on `loop` once `deadline` has come, unless the timer is cancelled first.
    func schedule(at deadline: UInt64, on loop: EventLoop, _ work: @escaping @Sendable () -> Void) -> any GatewayTimer
    /// Runs `work` on `loop` every `interval` until the timer is cancelled.
    func scheduleRepeating(every interval: UInt64, on loop: EventLoop, _ work: @escaping @Sendable () -> Void) -> any GatewayTimer
}

/// The monotonic clock and the event loop's own timers.
public final class SystemClock: GatewayClock {
    public init() {}

    public var now: UInt64 { monotonicNanos() }

    public func schedule(at deadline: UInt64, on loop: EventLoop, _ work: @escaping @Sendable () -> Void) -> any GatewayTimer {
        let t = now
        return loop.schedule(after: .nanoseconds(Int64(deadline > t ? deadline - t : 0)), work)
    }

    /// The loop's own repeating timer: no allocation per period.
    public func scheduleRepeating(every interval: UInt64, on loop: EventLoop, _ work: @escaping @Sendable () -> Void) -> any GatewayTimer {
        loop.scheduleRepeating(every: .nanoseconds(Int64(interval)), work)
    }
}

/// A clock that moves only when told to: `advance(by:)` runs every timer that comes due on the
/// way, in deadline order, at its own deadline. Call `advance` on the loop the timers run on.
public final class ManualClock: GatewayClock {
    private final class Timer: GatewayTimer, @unchecked Sendable {
        let deadline: UInt64
        let sequence: UInt64
        let work: @Sendable () -> Void
        let cancelled = Atomic<Bool>(false)

        init(deadline: UInt64, sequence: UInt64, work: @escaping @Sendable () -> Void) {
            self.deadline = deadline
            self.sequence = sequence
            self.work = work
        }

        func cancel() { cancelled.store(true, ordering: .relaxed) }
    }

    private struct State {
        var now: UInt64
        var sequence: UInt64 = 0
        var timers: [Timer] = []
    }

    private let state: Mutex<State>

    /// Starts at an arbitrary, large time: nothing in the gateway may assume a clock starts at 0.
    public init(start: UInt64 = 1_000_000_000_000) {
        state = Mutex(State(now: start))
    }

    public var now: UInt64 { state.withLock { $0.now } }

    public func schedule(at deadline: UInt64, on loop: EventLoop, _ work: @escaping @Sendable () -> Void) -> any GatewayTimer {
        state.withLock { s in
            s.sequence += 1
            let timer = Timer(deadline: deadline, sequence: s.sequence, work: work)
            s.timers.append(timer)
            return timer
        }
    }

    public func scheduleRepeating(every interval: UInt64, on loop: EventLoop, _ work: @escaping @Sendable () -> Void) -> any GatewayTimer {
        let repeating = RepeatingTimer()
        @Sendable func arm(_ at: UInt64) {
            repeating.current = schedule(at: at, on: loop) { [weak self] in
                guard !repeating.cancelled.load(ordering: .relaxed) else { return }
                work()
                arm(at + interval)
                _ = self
            }
        }
        arm(now + interval)
        return repeating
    }

    private final class RepeatingTimer: GatewayTimer, @unchecked Sendable {
        let cancelled = Atomic<Bool>(false)
        var current: (any GatewayTimer)?
        func cancel() {
            cancelled.store(true, ordering: .relaxed)
            current?.cancel()
        }
    }

    /// Moves time forward by `nanos`, running each timer due on the way at its deadline.
    public func advance(by nanos: UInt64) {
        let target = now + nanos
        while let timer = takeNext(upTo: target) {
            if !timer.cancelled.load(ordering: .relaxed) { timer.work() }
        }
        state.withLock { $0.now = Swift.max($0.now, target) }
    }

    /// Timers not run or cancelled yet.
    public var pendingTimers: Int {
        state.withLock { $0.timers.count { !$0.cancelled.load(ordering: .relaxed) } }
    }

    private func takeNext(upTo target: UInt64) -> Timer? {
        state.withLock { s in
            s.timers.removeAll { $0.cancelled.load(ordering: .relaxed) }
            guard let k = s.timers.indices.min(by: { (s.timers[$0].deadline, s.timers[$0].sequence) < (s.timers[$1].deadline, s.timers[$1].sequence) }),
                  s.timers[k].deadline <= target else { return nil }
            let timer = s.timers.remove(at: k)
            s.now = Swift.max(s.now, timer.deadline)
            return timer
        }
    }
}
