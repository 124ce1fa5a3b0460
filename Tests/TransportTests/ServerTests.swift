import Foundation
import Transport
import XCTest

/// Our `HTTPServer` + `WebSocketConnection` seen from a raw socket: the exact bytes on the wire.
final class ServerTests: XCTestCase {
    /// A close frame from the server (unmasked, RFC 6455 §5.5.1) with a bare status code.
    private func closeFrame(_ code: UInt16) -> [UInt8] {
        [0x88, 0x02, UInt8(code >> 8), UInt8(code & 0xFF)]
    }

    private func upgradedSocket(_ kind: EventLoopKind, limits: WebSocketLimits? = nil) throws -> (RawSocket, ServerEvents) {
        let loop = makeLoop(kind)
        let events = ServerEvents()
        let port = try limits.map { try startEchoServer(on: loop, limits: $0, events: events, testCase: self) }
            ?? startEchoServer(on: loop, events: events, testCase: self)
        let socket = try RawSocket(port: port)
        try socket.upgrade()
        return (socket, events)
    }

    // MARK: protocol violations (RFC 6455 §7.1.7: fail the connection)

    func testUnmaskedClientFrameCloses1002_dispatch() throws { try unmaskedClientFrameCloses1002(.dispatch) }
    func testUnmaskedClientFrameCloses1002_epoll() throws { try unmaskedClientFrameCloses1002(.epoll) }

    /// RFC 6455 §5.1: a server closes the connection on an unmasked client frame.
    private func unmaskedClientFrameCloses1002(_ kind: EventLoopKind) throws {
        let (socket, events) = try upgradedSocket(kind)
        try socket.send(clientFrame(opcode: 0x1, payload: Array("hello".utf8), masked: false))
        XCTAssertEqual(try socket.readToEOF(), closeFrame(1002))
        socket.close()
        let event = try events.closes.next("the server-side close")
        XCTAssertEqual(event.code, 1002)
        XCTAssertTrue(event.initiatedLocally)
    }

    func testMessageOverLimitCloses1009_dispatch() throws { try messageOverLimitCloses1009(.dispatch) }
    func testMessageOverLimitCloses1009_epoll() throws { try messageOverLimitCloses1009(.epoll) }

    private func messageOverLimitCloses1009(_ kind: EventLoopKind) throws {
        let limits = WebSocketLimits(maxMessageBytes: 1024)
        // One frame over the limit.
        do {
            let (socket, events) = try upgradedSocket(kind, limits: limits)
            try socket.send(clientFrame(opcode: 0x1, payload: asciiPayload(1024)))
            XCTAssertEqual(try socket.readFrame().payload, asciiPayload(1024), "a message at the limit is accepted")
            try socket.send(clientFrame(opcode: 0x1, payload: asciiPayload(2000)))
            XCTAssertEqual(try socket.readToEOF(), closeFrame(1009))
            socket.close()
            XCTAssertEqual(try events.closes.next("the server-side close").code, 1009)
        }
        // Fragments that only together pass the limit.
        do {
            let (socket, events) = try upgradedSocket(kind, limits: limits)
            try socket.send(clientFrame(opcode: 0x1, payload: asciiPayload(600), fin: false))
            try socket.send(clientFrame(opcode: 0x0, payload: asciiPayload(600), fin: true))
            XCTAssertEqual(try socket.readToEOF(), closeFrame(1009))
            socket.close()
            XCTAssertEqual(try events.closes.next("the server-side close").code, 1009)
        }
    }

    func testBinaryFrameCloses1003_dispatch() throws { try binaryFrameCloses1003(.dispatch) }
    func testBinaryFrameCloses1003_epoll() throws { try binaryFrameCloses1003(.epoll) }

    private func binaryFrameCloses1003(_ kind: EventLoopKind) throws {
        let (socket, events) = try upgradedSocket(kind)
        try socket.send(clientFrame(opcode: 0x2, payload: [1, 2, 3]))
        XCTAssertEqual(try socket.readToEOF(), closeFrame(1003))
        socket.close()
        XCTAssertEqual(try events.closes.next("the server-side close").code, 1003)
    }

    func testPingGetsPongWithSamePayload_dispatch() throws { try pingGetsPongWithSamePayload(.dispatch) }
    func testPingGetsPongWithSamePayload_epoll() throws { try pingGetsPongWithSamePayload(.epoll) }

    /// RFC 6455 §5.5.2–3, also between the fragments of a message (§5.4).
    private func pingGetsPongWithSamePayload(_ kind: EventLoopKind) throws {
        let (socket, _) = try upgradedSocket(kind)
        try socket.send(clientFrame(opcode: 0x9, payload: Array("ping-1".utf8)))
        XCTAssertEqual(try socket.read(exactly: 8), [0x8A, 0x06] + Array("ping-1".utf8))
        try socket.send(clientFrame(opcode: 0x1, payload: Array("frag".utf8), fin: false))
        try socket.send(clientFrame(opcode: 0x9, payload: []))
        try socket.send(clientFrame(opcode: 0x0, payload: Array("mented".utf8), fin: true))
        XCTAssertEqual(try socket.read(exactly: 2), [0x8A, 0x00])
        let echo = try socket.readFrame()
        XCTAssertEqual(echo.opcode, 0x1)
        XCTAssertTrue(echo.fin)
        XCTAssertEqual(echo.payload, Array("fragmented".utf8))
    }

    func testClientInitiatedCloseIsEchoed_dispatch() throws { try clientInitiatedCloseIsEchoed(.dispatch) }
    func testClientInitiatedCloseIsEchoed_epoll() throws { try clientInitiatedCloseIsEchoed(.epoll) }

    /// RFC 6455 §5.5.1: the server echoes the status code and, being the server, closes TCP (§7.1.1).
    private func clientInitiatedCloseIsEchoed(_ kind: EventLoopKind) throws {
        let (socket, events) = try upgradedSocket(kind)
        try socket.send(clientFrame(opcode: 0x8, payload: [0x0F, 0xA1] + Array("bye".utf8)))  // 4001
        XCTAssertEqual(try socket.readToEOF(), closeFrame(4001), "close frame, then the server's FIN")
        socket.close()
        let event = try events.closes.next("the server-side close")
        XCTAssertEqual(event.code, 4001)
        XCTAssertEqual(event.reason, "bye")
        XCTAssertFalse(event.initiatedLocally)
    }

    // MARK: HTTP on the same port

    func testBadRequestLineGets400AndClose_dispatch() throws { try badRequestLineGets400AndClose(.dispatch) }
    func testBadRequestLineGets400AndClose_epoll() throws { try badRequestLineGets400AndClose(.epoll) }

    private func badRequestLineGets400AndClose(_ kind: EventLoopKind) throws {
        let loop = makeLoop(kind)
        let socket = try RawSocket(port: try startEchoServer(on: loop, testCase: self))
        try socket.send("THIS IS NOT HTTP\r\n\r\n")
        let response = try socket.readResponse()
        XCTAssertEqual(response.status, 400)
        XCTAssertEqual(try socket.readToEOF(), [], "the connection is closed after the 400")
    }

    func testKeepAliveServesTwoRequests_dispatch() throws { try keepAliveServesTwoRequests(.dispatch) }
    func testKeepAliveServesTwoRequests_epoll() throws { try keepAliveServesTwoRequests(.epoll) }

    private func keepAliveServesTwoRequests(_ kind: EventLoopKind) throws {
        let loop = makeLoop(kind)
        let socket = try RawSocket(port: try startEchoServer(on: loop, testCase: self))
        try socket.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        let first = try socket.readResponse()
        XCTAssertEqual(first.status, 200)
        XCTAssertEqual(first.body, Array("hello".utf8))
        // Second request on the same connection, pipelined with a third that asks to close.
        try socket.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        let second = try socket.readResponse()
        XCTAssertEqual(second.status, 200)
        XCTAssertEqual(second.body, Array("hello".utf8))
        let third = try socket.readResponse()
        XCTAssertEqual(third.status, 200)
        XCTAssertEqual(third.headers["connection"]?.lowercased(), "close")
        XCTAssertEqual(try socket.readToEOF(), [])
    }

    func testUpgradeWithoutKeyGets400_dispatch() throws { try upgradeWithoutKeyGets400(.dispatch) }
    func testUpgradeWithoutKeyGets400_epoll() throws { try upgradeWithoutKeyGets400(.epoll) }

    private func upgradeWithoutKeyGets400(_ kind: EventLoopKind) throws {
        let loop = makeLoop(kind)
        let socket = try RawSocket(port: try startEchoServer(on: loop, testCase: self))
        try socket.send("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n")
        XCTAssertEqual(try socket.readResponse().status, 400)
        XCTAssertEqual(try socket.readToEOF(), [])
    }

    func testUpgradeWithVersion8Gets426_dispatch() throws { try upgradeWithVersion8Gets426(.dispatch) }
    func testUpgradeWithVersion8Gets426_epoll() throws { try upgradeWithVersion8Gets426(.epoll) }

    /// RFC 6455 §4.4: an unsupported version gets 426 with the versions we speak.
    private func upgradeWithVersion8Gets426(_ kind: EventLoopKind) throws {
        let loop = makeLoop(kind)
        let socket = try RawSocket(port: try startEchoServer(on: loop, testCase: self))
        try socket.send("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n")
        let response = try socket.readResponse()
        XCTAssertEqual(response.status, 426)
        XCTAssertEqual(response.headers["sec-websocket-version"], "13")
    }

    // MARK: copied and shared frames in one queue

    func testCopiedAndSharedFramesArriveInOrder_dispatch() throws { try copiedAndSharedFramesArriveInOrder(.dispatch) }
    func testCopiedAndSharedFramesArriveInOrder_epoll() throws { try copiedAndSharedFramesArriveInOrder(.epoll) }

    /// `enqueueText` copies into the connection's own reusable buffer and `enqueueEncodedFrame`
    /// queues a shared array; mixed, with a small receive window so that writes stop part-way
    /// (EAGAIN) and buffers are reused while others are still queued, every frame arrives whole
    /// and in order.
    private func copiedAndSharedFramesArriveInOrder(_ kind: EventLoopKind) throws {
        let loop = makeLoop(kind)
        let events = ServerEvents()
        let port = try startEchoServer(on: loop, events: events, testCase: self)
        let socket = try RawSocket(port: port, receiveBuffer: 4096)
        try socket.upgrade()
        let ws = try events.upgraded.next("the upgrade")
        // Sizes on both sides of each length encoding (7-bit, 16-bit, 64-bit) and of the
        // gateway's copy/share threshold.
        let sizes = [0, 1, 125, 126, 550, 65535, 65536, 200_000, 550, 8192, 30_000]
        var expected: [(opcode: UInt8, payload: [UInt8])] = []
        for round in 0..<12 {
            for (i, size) in sizes.enumerated() {
                let payload = (0..<size).map { UInt8(ascii: "a") + UInt8(($0 &+ i &+ round) % 26) }
                expected.append((1, payload))
            }
        }
        let batches = expected.count / 4
        let frames = expected.map(\.payload)
        try onLoop(loop) {
            for (i, payload) in frames.enumerated() {
                if i % 3 == 2 {
                    ws.enqueueEncodedFrame(WebSocketConnection.encodeTextFrame(payload))
                } else {
                    payload.withUnsafeBytes { ws.enqueueText($0) }
                }
                if i % batches == batches - 1 { ws.flush() }
            }
            ws.flush()
        }
        for (i, want) in expected.enumerated() {
            let got = try socket.readFrame()
            XCTAssertTrue(got.fin, "frame \(i)")
            XCTAssertEqual(got.opcode, want.opcode, "frame \(i)")
            XCTAssertEqual(got.payload.count, want.payload.count, "frame \(i)")
            XCTAssertTrue(got.payload == want.payload, "frame \(i): payload differs")
        }
    }

    // MARK: slow consumer (SPEC §8)

    func testSlowConsumerIsClosed1008_dispatch() throws { try slowConsumerIsClosed1008(.dispatch) }
    func testSlowConsumerIsClosed1008_epoll() throws { try slowConsumerIsClosed1008(.epoll) }

    private func slowConsumerIsClosed1008(_ kind: EventLoopKind) throws {
        let loop = makeLoop(kind)
        let events = ServerEvents()
        let limits = WebSocketLimits(maxBufferedBytes: 64 * 1024, closeTimeout: .milliseconds(500))
        let port = try startEchoServer(on: loop, limits: limits, events: events, testCase: self)
        // A small receive window, and nobody reading: the server's queue has to grow.
        let socket = try RawSocket(port: port, receiveBuffer: 4096)
        try socket.upgrade()
        let ws = try events.upgraded.next("the upgrade")
        let sentMessages = try onLoop(loop) { () -> Int in
            let message = asciiPayload(64 * 1024)
            var sent = 0
            // 10 MB offered; sendText becomes a no-op once the connection is closing.
            for _ in 0..<160 where ws.isOpen {
                ws.sendText(message)
                sent += 1
            }
            return sent
        }
        XCTAssertLessThan(sentMessages, 160, "the connection should have stopped accepting data")
        let event = try events.closes.next("the slow consumer's close")
        XCTAssertEqual(event.code, 1008)
        XCTAssertEqual(event.reason, "slow consumer")
        XCTAssertTrue(event.initiatedLocally)
    }
}
