@testable import Transport
import Dispatch
import Glibc
import XCTest

/// The epoll loop's registration table: an event still queued for a registration closed
/// earlier in the same batch never reaches the registration that took its slot.
final class EpollRegistrationTests: XCTestCase {
    private final class Handler: IOHandler {
        let name: String
        var onReadable: (Handler) -> Void = { _ in }
        var registration: (any IORegistration)?
        init(_ name: String) { self.name = name }
        func readable() { onReadable(self) }
        func writable() {}
    }

    private func socketPair() -> (Int32, Int32) {
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds), 0)
        return (fds[0], fds[1])
    }

    func testAStaleEventDoesNotReachTheSlotsNextTenant() throws {
        let loop = EventLoop(kind: .epoll, label: "epoll-registration-test")
        defer { loop.shutdown() }
        let (a, aPeer) = socketPair()
        let (b, bPeer) = socketPair()
        let (c, cPeer) = socketPair()
        defer { for fd in [aPeer, bPeer, cPeer] { close(fd) } }
        // a and b are readable before the loop polls them: one batch carries both events.
        for fd in [aPeer, bPeer] { XCTAssertEqual(write(fd, "x", 1), 1) }

        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var lateTenantCalls = 0
        nonisolated(unsafe) var handlers: [Handler] = []
        loop.execute {
            let first = Handler("a"), second = Handler("b"), tenant = Handler("c")
            tenant.onReadable = { _ in lateTenantCalls += 1 }
            // Whichever of a and b runs first closes the other and registers c, which has
            // nothing to read and so takes the closed one's slot with no event of its own.
            for (me, other) in [(first, second), (second, first)] {
                me.onReadable = { me in
                    guard tenant.registration == nil else { return }
                    other.registration?.close()
                    other.registration = nil
                    tenant.registration = loop.register(fd: c, handler: tenant)
                    tenant.registration?.setReadInterest(true)
                    var byte: UInt8 = 0
                    _ = read(me === first ? a : b, &byte, 1)
                }
            }
            first.registration = loop.register(fd: a, handler: first)
            second.registration = loop.register(fd: b, handler: second)
            first.registration?.setReadInterest(true)
            second.registration?.setReadInterest(true)
            handlers = [first, second, tenant]
            _ = loop.schedule(after: .milliseconds(100)) { done.signal() }
        }
        XCTAssertEqual(done.wait(timeout: .now() + 5), .success)
        let closedAll = DispatchSemaphore(value: 0)
        loop.execute {
            for h in handlers { h.registration?.close() }
            handlers = []
            closedAll.signal()
        }
        XCTAssertEqual(closedAll.wait(timeout: .now() + 5), .success)
        XCTAssertEqual(lateTenantCalls, 0)
    }
}
