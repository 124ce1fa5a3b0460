import Foundation
import HTTP1
import TestSupport
import Transport
import XCTest

/// SPEC §8: every limit that protects the shared session has a name, a default and a test:
/// the handshake timeout, the partial-message timeout and the idle timeout, seen from a raw socket.
final class WebSocketTimeoutTests: XCTestCase {
    private let short = WebSocketLimits(partialMessageTimeout: .milliseconds(200), idleTimeout: .milliseconds(300))

    func testTheDefaultsAreNamed() {
        XCTAssertEqual(WebSocketLimits().partialMessageTimeout, .seconds(10))
        XCTAssertEqual(WebSocketLimits().idleTimeout, .seconds(60))
        XCTAssertEqual(HTTPServerLimits().requestTimeout, .seconds(10), "the handshake's bound: the upgrade request's")
    }

    func testHalfAFrameIsClosedWith1008_dispatch() throws { try halfAFrame(.dispatch) }
    func testHalfAFrameIsClosedWith1008_epoll() throws { try halfAFrame(.epoll) }
    func testHalfAFragmentedMessageIsClosedWith1008_dispatch() throws { try halfAMessage(.dispatch) }
    func testHalfAFragmentedMessageIsClosedWith1008_epoll() throws { try halfAMessage(.epoll) }
    func testASilentPeerIsPingedThenClosed_dispatch() throws { try silentPeer(.dispatch) }
    func testASilentPeerIsPingedThenClosed_epoll() throws { try silentPeer(.epoll) }
    func testAPeerThatAnswersThePingStays_dispatch() throws { try answeringPeer(.dispatch) }
    func testAPeerThatAnswersThePingStays_epoll() throws { try answeringPeer(.epoll) }
    func testHalfAnUpgradeRequestIsDroppedAtTheHandshakeBound_dispatch() throws { try halfAHandshake(.dispatch) }
    func testHalfAnUpgradeRequestIsDroppedAtTheHandshakeBound_epoll() throws { try halfAHandshake(.epoll) }

    private func upgraded(_ kind: EventLoopKind) throws -> RawSocket {
        let loop = makeLoop(kind)
        let port = try startEchoServer(on: loop, limits: short, testCase: self)
        let socket = try RawSocket(port: port)
        try socket.upgrade()
        return socket
    }

    private func closeCode(_ frame: (fin: Bool, opcode: UInt8, payload: [UInt8])) -> UInt16? {
        guard frame.opcode == 0x8, frame.payload.count >= 2 else { return nil }
        return UInt16(frame.payload[0]) << 8 | UInt16(frame.payload[1])
    }

    private func halfAFrame(_ kind: EventLoopKind) throws {
        let socket = try upgraded(kind)
        let frame = clientFrame(opcode: 0x1, payload: asciiPayload(1000))
        try socket.send(Array(frame.prefix(500)))
        XCTAssertEqual(closeCode(try socket.readFrame()), 1008)
    }

    private func halfAMessage(_ kind: EventLoopKind) throws {
        let socket = try upgraded(kind)
        try socket.send(clientFrame(opcode: 0x1, payload: asciiPayload(100), fin: false))
        XCTAssertEqual(closeCode(try socket.readFrame()), 1008)
    }

    private func silentPeer(_ kind: EventLoopKind) throws {
        let socket = try upgraded(kind)
        let ping = try socket.readFrame()
        XCTAssertEqual(ping.opcode, 0x9, "a ping after the idle time")
        XCTAssertEqual(closeCode(try socket.readFrame()), 1001, "closed after as long again")
    }

    private func answeringPeer(_ kind: EventLoopKind) throws {
        let socket = try upgraded(kind)
        for _ in 0..<3 {
            let ping = try socket.readFrame()
            XCTAssertEqual(ping.opcode, 0x9)
            try socket.send(clientFrame(opcode: 0xA, payload: ping.payload))
        }
        // Still open: an echo comes back.
        try socket.send(clientFrame(opcode: 0x1, payload: Array("still here".utf8)))
        var frame = try socket.readFrame()
        while frame.opcode == 0x9 { frame = try socket.readFrame() }
        XCTAssertEqual(frame.payload, Array("still here".utf8))
    }

    private func halfAHandshake(_ kind: EventLoopKind) throws {
        let loop = makeLoop(kind)
        let server = HTTPServer(address: SocketAddress(host: "127.0.0.1", port: 0)!, loop: loop,
                                limits: HTTPServerLimits(requestTimeout: .milliseconds(200))) { _, _ in
            .upgradeToWebSocket(WebSocketLimits()) { _ in }
        }
        let port = try onLoop(loop) { try server.start() }.port
        addTeardownBlock { _ = try? onLoop(loop) { server.stopAccepting(); server.closeHTTPConnections() } }
        let socket = try RawSocket(port: port)
        defer { socket.close() }
        try socket.send("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n")
        let started = Date()
        XCTAssertEqual(try socket.readToEOF(), [], "dropped without an answer")
        XCTAssertLessThan(Date().timeIntervalSince(started), 3)
    }
}
