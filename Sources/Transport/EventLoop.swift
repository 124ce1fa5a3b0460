import Dispatch
import Synchronization

/// Which event loop implementation drives the sockets (SPEC §10, `transport.event_loop`).
public enum EventLoopKind: String, Sendable, CaseIterable {
    case dispatch
    case epoll
}

/// One thread of control that owns a set of connections.
///
/// Everything a connection holds is touched only on its loop (STYLE.md habit 7): bytes read
/// from one socket can be written to another on the same loop without a thread hop. The
/// implementation behind it is replaceable: Dispatch (serial queue + DispatchSources) or an
/// epoll loop on a dedicated thread. Nothing above `Transport` sees fds or sources.
public final class EventLoop: Sendable {
    let backend: any EventLoopBackend
    /// Scratch buffer for reads, shared by every connection of this loop (loop-confined).
    nonisolated(unsafe) let readBuffer: UnsafeMutableRawBufferPointer

    public let kind: EventLoopKind

    public init(kind: EventLoopKind = .dispatch, label: String = "deribit-gateway.loop") {
        self.kind = kind
        switch kind {
        case .dispatch: backend = DispatchEventLoopBackend(label: label)
        case .epoll: backend = EpollEventLoopBackend(label: label)
        }
        readBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 256 * 1024, alignment: 16)
    }

    deinit {
        readBuffer.deallocate()
    }

    /// True when called from this loop's thread.
    public var inEventLoop: Bool { backend.inEventLoop }

    /// Runs `work` on the loop, after work already queued.
    public func execute(_ work: @escaping @Sendable () -> Void) {
        backend.execute(work)
    }

    /// Runs `work` on the loop once `delay` has passed, unless the task is cancelled first.
    @discardableResult
    public func schedule(after delay: Duration, _ work: @escaping @Sendable () -> Void) -> ScheduledTask {
        let task = ScheduledTask(work: work, repeatEvery: nil)
        backend.schedule(task, afterNanoseconds: delay.nanoseconds)
        return task
    }

    /// Runs `work` on the loop every `interval` until the task is cancelled.
    @discardableResult
    public func scheduleRepeating(every interval: Duration, _ work: @escaping @Sendable () -> Void) -> ScheduledTask {
        let nanos = max(interval.nanoseconds, 1)
        let task = ScheduledTask(work: work, repeatEvery: nanos)
        backend.schedule(task, afterNanoseconds: nanos)
        return task
    }

    /// Checks confinement in debug builds.
    @inline(__always)
    public func assertInEventLoop(file: StaticString = #fileID, line: UInt = #line) {
        assert(inEventLoop, "not on the event loop", file: file, line: line)
    }

    func register(fd: Int32, handler: any IOHandler) -> any IORegistration {
        backend.register(fd: fd, handler: handler)
    }

    /// Stops the loop's thread (epoll) once queued work has run. Connections must be closed first.
    public func shutdown() {
        backend.shutdown()
    }
}

/// A timer. `cancel()` may be called from any thread; the work never runs after it returns
/// when called on the loop itself.
public final class ScheduledTask: Sendable {
    let work: @Sendable () -> Void
    let repeatEvery: UInt64?
    private let cancelledFlag = Atomic<Bool>(false)

    init(work: @escaping @Sendable () -> Void, repeatEvery: UInt64?) {
        self.work = work
        self.repeatEvery = repeatEvery
    }

    public func cancel() {
        cancelledFlag.store(true, ordering: .relaxed)
    }

    public var isCancelled: Bool { cancelledFlag.load(ordering: .relaxed) }
}

extension Duration {
    var nanoseconds: UInt64 {
        let (s, atto) = components
        if s < 0 { return 0 }
        return UInt64(s) * 1_000_000_000 + UInt64(atto / 1_000_000_000)
    }
}

/// What a connection does when its fd is ready. Called on the loop.
protocol IOHandler: AnyObject {
    func readable()
    func writable()
}

/// An fd registered with a loop. All methods are called on the loop.
protocol IORegistration: AnyObject {
    func setReadInterest(_ on: Bool)
    func setWriteInterest(_ on: Bool)
    /// Stops watching and closes the fd once the loop no longer refers to it. Idempotent.
    func close()
}

protocol EventLoopBackend: AnyObject, Sendable {
    var inEventLoop: Bool { get }
    func execute(_ work: @escaping @Sendable () -> Void)
    func schedule(_ task: ScheduledTask, afterNanoseconds: UInt64)
    func register(fd: Int32, handler: any IOHandler) -> any IORegistration
    func shutdown()
}
