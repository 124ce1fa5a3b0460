import Foundation
import HTTP1
import TestSupport
import Transport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// SPEC §8: no file descriptor outlives its connection, and an HTTP answer that takes longer
/// than the request timeout still arrives. Measured on the process itself (`/proc/self/fd`).
final class HTTPServerLifetimeTests: XCTestCase {
    func testConnectionsTheServerClosesReleaseTheirFds_dispatch() throws { try churnReleasesFds(.dispatch) }
    func testConnectionsTheServerClosesReleaseTheirFds_epoll() throws { try churnReleasesFds(.epoll) }

    func testADeferredAnswerOutlivesTheRequestTimeout_dispatch() throws { try deferredAnswerArrives(.dispatch) }
    func testADeferredAnswerOutlivesTheRequestTimeout_epoll() throws { try deferredAnswerArrives(.epoll) }

    private func openFds() throws -> Int {
        try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count
    }

    /// `Connection: close`, HTTP/1.0, a parse error and a refused upgrade: each is closed by
    /// the server itself, and each must give its descriptor back.
    private func churnReleasesFds(_ kind: EventLoopKind) throws {
        let loop = makeLoop(kind)
        let port = try startEchoServer(on: loop, testCase: self)
        // One request of each kind first, so that lazily opened descriptors are in the baseline.
        try churn(port, rounds: 1)
        let baseline = try openFds()
        try churn(port, rounds: 50)
        var now = 0
        try pollUntil("the server's descriptors to be released", detail: { "open \(now), baseline \(baseline)" }) {
            now = try self.openFds()
            return now <= baseline
        }
    }

    private func churn(_ port: Int, rounds: Int) throws {
        let requests = [
            "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            "GET /hello HTTP/1.0\r\n\r\n",
            "GET /hello HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
            "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
        ]
        for _ in 0..<rounds {
            for text in requests {
                let socket = try RawSocket(port: port)
                try socket.send(text)
                let answer = try socket.readToEOF()
                XCTAssertTrue(answer.starts(with: Array("HTTP/1.1 ".utf8)), String(decoding: answer, as: UTF8.self))
                socket.close()
            }
        }
    }

    private func deferredAnswerArrives(_ kind: EventLoopKind) throws {
        let loop = makeLoop(kind)
        let limits = HTTPServerLimits(requestTimeout: .milliseconds(200), idleTimeout: .seconds(5))
        let server = HTTPServer(address: SocketAddress(host: "127.0.0.1", port: 0)!, loop: loop, limits: limits) { _, _ in
            .deferred { respond in
                // Answered well after the request timeout, as an upstream answer may be.
                nonisolated(unsafe) let answer = respond  // runs on this loop, like the server
                loop.schedule(after: .milliseconds(600)) {
                    answer(HTTPResponse(status: 200, headers: ["Content-Type": "text/plain"], body: Array("late".utf8)))
                }
            }
        }
        let port = try onLoop(loop) { try server.start() }.port
        addTeardownBlock { _ = try? onLoop(loop) { server.stopAccepting(); server.closeHTTPConnections() } }
        let socket = try RawSocket(port: port)
        defer { socket.close() }
        try socket.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        let response = try socket.readResponse()
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.body, Array("late".utf8))
    }
}
