import CEpoll
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// An epoll loop on one dedicated thread (SPEC §10): readiness, timers and queued work are all
/// handled by that thread, so a frame read from one socket is written to another without any
/// cross-thread wake-up. Level-triggered, like the Dispatch sources it replaces.
final class EpollEventLoopBackend: EventLoopBackend, @unchecked Sendable {
    private let epfd: Int32
    private let wakeFD: Int32
    private let pending = Mutex<[@Sendable () -> Void]>([])
    /// The batch `runPending` is running; loop thread only.
    private var running: [@Sendable () -> Void] = []
    private let wakePending = Atomic<Bool>(false)
    private let stopped = Atomic<Bool>(false)
    private nonisolated(unsafe) var thread: pthread_t?

    // Loop-confined state.
    /// Registrations by slot. A token is `serial << 32 | slot` with a serial not reused for
    /// 2^32 registrations, so an event still queued for a closed registration is told from its
    /// slot's next tenant by comparing tokens: two readiness events per forwarded request cost
    /// an index each instead of a hash lookup.
    private var registrations: [EpollIORegistration?] = []
    private var freeSlots: [Int] = []
    private var nextSerial: UInt64 = 1
    private var timers = TimerHeap()
    private var timerSequence: UInt64 = 0
    private static let wakeToken: UInt64 = 0

    init(label: String) {
        epfd = cepoll_create()
        wakeFD = cepoll_eventfd()
        precondition(epfd >= 0 && wakeFD >= 0, "epoll/eventfd unavailable")
        _ = cepoll_ctl(epfd, 1, wakeFD, UInt32(CEPOLL_IN), Self.wakeToken)
        let started = DispatchSemaphore(value: 0)
        let t = Thread { [self] in
            self.thread = pthread_self()
            started.signal()
            self.run()
        }
        t.name = label
        t.start()
        started.wait()
    }

    var inEventLoop: Bool {
        guard let thread else { return false }
        return pthread_equal(thread, pthread_self()) != 0
    }

    func execute(_ work: @escaping @Sendable () -> Void) {
        pending.withLock { $0.append(work) }
        if !wakePending.exchange(true, ordering: .acquiringAndReleasing) {
            _ = cepoll_eventfd_signal(wakeFD)
        }
    }

    func schedule(_ task: ScheduledTask, afterNanoseconds nanos: UInt64) {
        let deadline = monotonicNanos() &+ nanos
        if inEventLoop {
            addTimer(task, deadline: deadline)
        } else {
            execute { [self] in self.addTimer(task, deadline: deadline) }
        }
    }

    private func addTimer(_ task: ScheduledTask, deadline: UInt64) {
        timerSequence += 1
        timers.push(TimerEntry(deadline: deadline, sequence: timerSequence, task: task))
    }

    func register(fd: Int32, handler: any IOHandler) -> any IORegistration {
        let slot: Int
        if let free = freeSlots.popLast() {
            slot = free
        } else {
            slot = registrations.count
            registrations.append(nil)
        }
        // Never 0 (the wake-up's token): the serial is at least 1.
        let token = nextSerial << 32 | UInt64(slot)
        nextSerial = nextSerial == UInt64(UInt32.max) ? 1 : nextSerial + 1
        let reg = EpollIORegistration(fd: fd, token: token, backend: self, handler: handler)
        registrations[slot] = reg
        _ = cepoll_ctl(epfd, 1, fd, 0, token)
        return reg
    }

    private func registration(for token: UInt64) -> EpollIORegistration? {
        let slot = Int(truncatingIfNeeded: token & 0xFFFF_FFFF)
        guard slot < registrations.count, let reg = registrations[slot], reg.token == token else { return nil }
        return reg
    }

    func modify(_ reg: EpollIORegistration, events: UInt32) {
        _ = cepoll_ctl(epfd, 3, reg.fd, events, reg.token)
    }

    func deregister(_ reg: EpollIORegistration) {
        _ = cepoll_ctl(epfd, 2, reg.fd, 0, 0)
        let slot = Int(truncatingIfNeeded: reg.token & 0xFFFF_FFFF)
        if registrations[slot] === reg {
            registrations[slot] = nil
            freeSlots.append(slot)
        }
    }

    func shutdown() {
        stopped.store(true, ordering: .releasing)
        _ = cepoll_eventfd_signal(wakeFD)
    }

    private func run() {
        let maxEvents = 256
        let events = UnsafeMutablePointer<UInt32>.allocate(capacity: maxEvents)
        let datas = UnsafeMutablePointer<UInt64>.allocate(capacity: maxEvents)
        defer { events.deallocate(); datas.deallocate() }
        while !stopped.load(ordering: .acquiring) {
            var timeout: Int32 = -1
            if let next = timers.nextDeadline {
                let now = monotonicNanos()
                timeout = next <= now ? 0 : Int32(min((next - now + 999_999) / 1_000_000, 60_000))
            }
            let n = cepoll_wait(epfd, events, datas, Int32(maxEvents), timeout)
            if n > 0 {
                for i in 0..<Int(n) {
                    let token = datas[i]
                    if token == Self.wakeToken {
                        _ = cepoll_eventfd_drain(wakeFD)
                        continue
                    }
                    // A handler earlier in this batch may have closed this registration.
                    guard let reg = registration(for: token) else { continue }
                    let ev = events[i]
                    let failed = ev & UInt32(CEPOLL_ERR | CEPOLL_HUP) != 0
                    if ev & UInt32(CEPOLL_IN) != 0 || (failed && reg.wantsRead) {
                        reg.handler?.readable()
                    }
                    if ev & UInt32(CEPOLL_OUT) != 0 || (failed && reg.wantsWrite), !reg.isClosed {
                        reg.handler?.writable()
                    }
                }
            }
            runTimers()
            runPending()
        }
        Syscall.close(epfd)
        Syscall.close(wakeFD)
    }

    private func runPending() {
        // `execute` queues, then sets the flag and signals the eventfd if it was clear: a clear
        // flag means nothing was queued, or the signal for it is on its way and wakes the loop
        // again. Most turns (a socket was readable) skip the lock.
        guard wakePending.load(ordering: .acquiring) else { return }
        wakePending.store(false, ordering: .releasing)
        // Two buffers swapped under the lock: work queued while these run goes to the other one,
        // and neither is reallocated (this runs on every turn of the loop).
        pending.withLock { queue in
            if !queue.isEmpty { swap(&queue, &running) }
        }
        guard !running.isEmpty else { return }
        for w in running { w() }
        running.removeAll(keepingCapacity: true)
    }

    private func runTimers() {
        guard let next = timers.nextDeadline else { return }
        let now = monotonicNanos()
        guard next <= now else { return }
        while let top = timers.peek(), top.deadline <= now {
            _ = timers.pop()
            guard !top.task.isCancelled else { continue }
            top.task.work()
            if let every = top.task.repeatEvery, !top.task.isCancelled {
                addTimer(top.task, deadline: now &+ every)
            }
        }
    }
}

final class EpollIORegistration: IORegistration {
    let fd: Int32
    let token: UInt64
    unowned let backend: EpollEventLoopBackend
    weak var handler: (any IOHandler)?
    private(set) var wantsRead = false
    private(set) var wantsWrite = false
    /// Closed (and deregistered), possibly by a handler earlier in the same batch of events.
    private(set) var isClosed = false

    init(fd: Int32, token: UInt64, backend: EpollEventLoopBackend, handler: any IOHandler) {
        self.fd = fd
        self.token = token
        self.backend = backend
        self.handler = handler
    }

    private func update() {
        var ev: UInt32 = 0
        if wantsRead { ev |= UInt32(CEPOLL_IN) }
        if wantsWrite { ev |= UInt32(CEPOLL_OUT) }
        backend.modify(self, events: ev)
    }

    func setReadInterest(_ on: Bool) {
        guard !isClosed, on != wantsRead else { return }
        wantsRead = on
        update()
    }

    func setWriteInterest(_ on: Bool) {
        guard !isClosed, on != wantsWrite else { return }
        wantsWrite = on
        update()
    }

    func close() {
        guard !isClosed else { return }
        isClosed = true
        backend.deregister(self)
        Syscall.close(fd)
    }
}

struct TimerEntry {
    let deadline: UInt64
    let sequence: UInt64
    let task: ScheduledTask

    func before(_ other: TimerEntry) -> Bool {
        deadline != other.deadline ? deadline < other.deadline : sequence < other.sequence
    }
}

/// Binary min-heap of timers ordered by deadline, then insertion order.
struct TimerHeap {
    private var items: [TimerEntry] = []
    var isEmpty: Bool { items.isEmpty }
    func peek() -> TimerEntry? { items.first }
    /// The earliest deadline, without touching the entry's task.
    var nextDeadline: UInt64? { items.first?.deadline }

    mutating func push(_ e: TimerEntry) {
        items.append(e)
        var i = items.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            guard items[i].before(items[p]) else { break }
            items.swapAt(i, p)
            i = p
        }
    }

    mutating func pop() -> TimerEntry? {
        guard !items.isEmpty else { return nil }
        items.swapAt(0, items.count - 1)
        let top = items.removeLast()
        var i = 0
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < items.count, items[l].before(items[m]) { m = l }
            if r < items.count, items[r].before(items[m]) { m = r }
            if m == i { break }
            items.swapAt(i, m)
            i = m
        }
        return top
    }
}
