import Foundation
import TestSupport
@testable import Transport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// `TCPConnection.close()` is bounded twice: flushing to a peer that never reads, and draining
/// a peer that never closes its side after our FIN. Either way the descriptor is released.
final class CloseBoundsTests: XCTestCase {
    func testTheBoundsAreNamed() {
        XCTAssertEqual(TCPConnection.flushBeforeCloseTimeout, .seconds(5))
        XCTAssertEqual(TCPConnection.drainAfterShutdownTimeout, .seconds(2))
    }

    func testAPeerThatNeverReadsIsClosedAtTheFlushBound_dispatch() throws { try peerThatNeverReads(.dispatch) }
    func testAPeerThatNeverReadsIsClosedAtTheFlushBound_epoll() throws { try peerThatNeverReads(.epoll) }

    func testAPeerThatNeverClosesIsClosedAtTheDrainBound_dispatch() throws { try peerThatNeverCloses(.dispatch) }
    func testAPeerThatNeverClosesIsClosedAtTheDrainBound_epoll() throws { try peerThatNeverCloses(.epoll) }

    private func peerThatNeverReads(_ kind: EventLoopKind) throws {
        let (loop, accepted, listener) = try listen(kind)
        defer { withExtendedLifetime(listener) {} }
        let peer = try RawSocket(port: listener.address.port, receiveBuffer: 4096)
        defer { peer.close() }
        let conn = try accepted.next("the accepted connection")
        let closed = Waiter<Void>()
        let started = Date()
        try onLoop(loop) {
            conn.closeTimeouts = (flush: .milliseconds(200), drain: .milliseconds(200))
            conn.onClose = { _ in closed.fulfil(()) }
            // Far more than the socket buffers hold: the peer never reads, so it stays queued.
            conn.write([UInt8](repeating: 0x61, count: 16 << 20))
            conn.close()
        }
        try closed.wait("the close at the flush bound", timeout: 5)
        XCTAssertLessThan(Date().timeIntervalSince(started), 3, "bounded by the 200 ms flush bound, not the peer")
    }

    private func peerThatNeverCloses(_ kind: EventLoopKind) throws {
        let (loop, accepted, listener) = try listen(kind)
        defer { withExtendedLifetime(listener) {} }
        let peer = try RawSocket(port: listener.address.port)
        defer { peer.close() }
        let conn = try accepted.next("the accepted connection")
        let closed = Waiter<Void>()
        try onLoop(loop) {
            conn.closeTimeouts = (flush: .milliseconds(200), drain: .milliseconds(200))
            conn.onClose = { _ in closed.fulfil(()) }
            conn.write(Array("bye".utf8))
            conn.close()
        }
        // The peer gets the bytes and the FIN at once, and never closes its own side.
        XCTAssertEqual(try peer.readToEOF(), Array("bye".utf8))
        try closed.wait("the close at the drain bound", timeout: 5)
    }

    private func listen(_ kind: EventLoopKind) throws -> (EventLoop, Channel<TCPConnection>, TCPListener) {
        let loop = makeLoop(kind)
        let accepted = Channel<TCPConnection>()
        let listener = try onLoop(loop) {
            try TCPListener(address: SocketAddress(host: "127.0.0.1", port: 0)!, loop: loop) { conn in
                conn.start()
                accepted.push(conn)
            }
        }
        try onLoop(loop) { listener.start() }
        return (loop, accepted, listener)
    }
}
