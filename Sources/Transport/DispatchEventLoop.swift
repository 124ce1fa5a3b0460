import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// The default loop: one serial queue; a read and a write DispatchSource per fd.
final class DispatchEventLoopBackend: EventLoopBackend, @unchecked Sendable {
    let queue: DispatchQueue
    private let key = DispatchSpecificKey<ObjectIdentifier>()

    init(label: String) {
        queue = DispatchQueue(label: label, qos: .userInitiated)
        queue.setSpecific(key: key, value: ObjectIdentifier(self))
    }

    var inEventLoop: Bool {
        DispatchQueue.getSpecific(key: key) == ObjectIdentifier(self)
    }

    func execute(_ work: @escaping @Sendable () -> Void) {
        queue.async(execute: work)
    }

    func schedule(_ task: ScheduledTask, afterNanoseconds nanos: UInt64) {
        queue.asyncAfter(deadline: .now() + .nanoseconds(Int(min(nanos, UInt64(Int.max))))) { [self] in
            guard !task.isCancelled else { return }
            task.work()
            if let every = task.repeatEvery, !task.isCancelled {
                schedule(task, afterNanoseconds: every)
            }
        }
    }

    func register(fd: Int32, handler: any IOHandler) -> any IORegistration {
        DispatchIORegistration(fd: fd, queue: queue, handler: handler)
    }

    func shutdown() {}
}

/// Read and write sources on one fd.
///
/// Linux rules (STYLE.md): sources start suspended and suspend/resume must balance; a source
/// must be resumed to be cancelled; the fd is closed only after the cancel handlers of BOTH
/// sources ran, since they share one epoll registration inside libdispatch.
final class DispatchIORegistration: IORegistration, @unchecked Sendable {
    private let fd: Int32
    private let readSource: DispatchSourceRead
    private let writeSource: DispatchSourceWrite
    private var readResumed = false
    private var writeResumed = false
    private var closed = false
    private var pendingCancelHandlers = 2

    init(fd: Int32, queue: DispatchQueue, handler: any IOHandler) {
        self.fd = fd
        readSource = DispatchSource.makeReadSource(fileDescriptor: fd, queue: queue)
        writeSource = DispatchSource.makeWriteSource(fileDescriptor: fd, queue: queue)
        readSource.setEventHandler { [weak handler] in handler?.readable() }
        writeSource.setEventHandler { [weak handler] in handler?.writable() }
        let done: @Sendable () -> Void = { [self] in
            self.pendingCancelHandlers -= 1
            if self.pendingCancelHandlers == 0 {
                Syscall.close(fd)
            }
        }
        readSource.setCancelHandler(handler: done)
        writeSource.setCancelHandler(handler: done)
    }

    func setReadInterest(_ on: Bool) {
        guard !closed, on != readResumed else { return }
        readResumed = on
        if on { readSource.resume() } else { readSource.suspend() }
    }

    func setWriteInterest(_ on: Bool) {
        guard !closed, on != writeResumed else { return }
        writeResumed = on
        if on { writeSource.resume() } else { writeSource.suspend() }
    }

    func close() {
        guard !closed else { return }
        closed = true
        readSource.cancel()
        writeSource.cancel()
        // A cancelled source runs its cancel handler only once resumed.
        if !readResumed { readSource.resume() }
        if !writeResumed { writeSource.resume() }
    }
}
