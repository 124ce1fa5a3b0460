import Foundation
import Transport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// SPEC §8: a client whose unsent data passes `client_buffer_bytes` is closed with 1008
/// `slow consumer`; the upstream and the other clients never wait for it.
final class SessionSlowConsumerTests: XCTestCase {
    static let book = "book.BTC-PERPETUAL.100ms"
    static let streams = [
        book, "ticker.BTC-PERPETUAL.100ms", "trades.BTC-PERPETUAL.100ms",
        "book.ETH-PERPETUAL.100ms", "ticker.ETH-PERPETUAL.100ms", "book.BTC-25DEC26.100ms", "ticker.BTC-25DEC26.100ms",
    ]

    func testStalledReaderIsClosedWhileAnotherKeepsAnUnbrokenBook() throws {
        let f = try SessionFixture(self, simArguments: ["--rate", "500"], extra: ["limits": ["client_buffer_bytes": 65536]])
        defer { f.stop() }

        let fast = try RPCClient(url: f.gw.wsURL, loop: f.loop)
        XCTAssertEqual(try fast.call("public/subscribe", ["channels": [Self.book]])["result"] as? [String], [Self.book])
        var chain = BookChain()
        try chain.take(try fast.notification(channel: Self.book))

        // A reader that upgrades, subscribes, and then never reads again.
        let stalled = try StalledWebSocket(port: f.gw.port)
        defer { stalled.close() }
        try stalled.sendText(#"{"jsonrpc":"2.0","id":1,"method":"public/subscribe","params":{"channels":\#(jsonArray(Self.streams))}}"#)

        // The fast client keeps receiving every change while the stalled one is found out.
        let deadline = Date().addingTimeInterval(testDeadline)
        var detectedAfter: Int?
        while Date() < deadline {
            try chain.take(try fast.notification(channel: Self.book))
            if detectedAfter == nil, chain.count % 50 == 0,
               try f.metric(#"deribit_gateway_client_disconnects_total{reason="slow_consumer"}"#) >= 1 {
                detectedAfter = chain.count
            }
            if let n = detectedAfter, chain.count >= n + 500 { break }  // a second more at 500/s
        }
        XCTAssertNotNil(detectedAfter, "the stalled reader was closed as a slow consumer")
        XCTAssertGreaterThan(chain.count, 500)
        XCTAssertFalse(fast.isClosed)
        XCTAssertEqual(try f.metric(#"deribit_gateway_client_disconnects_total{reason="slow_consumer"}"#), 1)
        XCTAssertTrue(f.gatewayLog.split(separator: "\n").contains { $0.contains("client disconnected") && $0.contains("reason=slow_consumer") && $0.contains("1008 slow consumer") },
                      "the gateway logs the close")
        XCTAssertTrue(try stalled.drainUntilClosed(), "the gateway closed the stalled connection")
        XCTAssertEqual((try f.gw.health().body["clients"] as? [String: Any])?["connected"] as? Int, 1)
    }

    func jsonArray(_ items: [String]) -> String {
        "[" + items.map { "\"\($0)\"" }.joined(separator: ",") + "]"
    }
}

/// Follows an incremental book's `change_id` chain (SPEC §6.4).
struct BookChain {
    var last: Int?
    var count = 0

    mutating func take(_ notification: [String: Any]) throws {
        guard let data = (notification["params"] as? [String: Any])?["data"] as? [String: Any],
              let id = data["change_id"] as? Int else { throw TestFailure("not a book notification: \(notification)") }
        if let last {
            guard data["type"] as? String == "change", data["prev_change_id"] as? Int == last else {
                throw TestFailure("book chain broken after \(count) messages: prev_change_id \(data["prev_change_id"] ?? "nil") after \(last) (\(data["type"] ?? "?"))")
            }
        } else if data["type"] as? String != "snapshot" {
            throw TestFailure("the first book message is not a snapshot: \(data["type"] ?? "?")")
        }
        last = id
        count += 1
    }
}

/// A WebSocket client over a blocking socket with a tiny receive buffer, which stops reading
/// after the handshake: the gateway's queue for it can only grow.
final class StalledWebSocket {
    let fd: Int32

    init(port: Int) throws {
        // A small receive window, so that the gateway's writes back up quickly.
        fd = try connectBlocking(port: port, receiveBuffer: 4096)
        try write(Array("GET /ws/api/v2 HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".utf8))
        // Read exactly the 101 head, one byte at a time, so nothing after it is consumed.
        var head: [UInt8] = []
        while !head.suffix(4).elementsEqual(Array("\r\n\r\n".utf8)) {
            var b: UInt8 = 0
            guard recv(fd, &b, 1, 0) == 1 else { throw TestFailure("handshake: errno \(errno)") }
            head.append(b)
        }
        guard String(decoding: head, as: UTF8.self).hasPrefix("HTTP/1.1 101") else {
            throw TestFailure("no upgrade: \(String(decoding: head, as: UTF8.self))")
        }
    }

    /// One masked text frame (RFC 6455 §5.2; a zero mask keeps the payload readable).
    func sendText(_ text: String) throws {
        try sendFrame(opcode: 0x1, Array(text.utf8))
    }

    func sendFrame(opcode: UInt8, _ payload: [UInt8]) throws {
        var frame: [UInt8] = [0x80 | opcode]
        if payload.count < 126 {
            frame.append(0x80 | UInt8(payload.count))
        } else {
            frame += [0x80 | 126, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
        }
        frame += [0, 0, 0, 0] + payload
        try write(frame)
    }

    private func write(_ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw TestFailure("send: errno \(errno)") }
            sent += n
        }
    }

    /// Reads until the gateway's end of the connection (EOF or reset); false on timeout.
    func drainUntilClosed() throws -> Bool {
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 { continue }
            if n == 0 { return true }
            if errno == ECONNRESET { return true }
            if errno == EINTR { continue }
            return false  // EAGAIN: SO_RCVTIMEO passed
        }
    }

    func close() { Glibc.close(fd) }
}
