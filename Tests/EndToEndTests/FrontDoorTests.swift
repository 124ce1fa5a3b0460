import Foundation
import Transport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// SPEC §5: one port for the WebSocket API, /health, /metrics and Deribit's HTTP API.
final class FrontDoorTests: XCTestCase {
    var sim: SimProcess!
    var gw: GatewayProcess!

    override func setUpWithError() throws {
        sim = try SimProcess()
        gw = try GatewayProcess(config: GatewayProcess.config(
            sim: sim,
            clients: [["name": "mm", "secret": "mm-secret", "scope": "trade"]],
            extra: ["limits": ["max_clients": 2], "allowed_origins": ["https://ops.example"]]))
        try gw.waitForHealth(200)
    }

    override func tearDown() {
        gw?.stop()
        sim?.stop()
    }

    func testHealthBodyReflectsTheUpstream() throws {
        let h = try gw.health()
        XCTAssertEqual(h.status, 200)
        XCTAssertEqual(h.body["status"] as? String, "ok")
        let up = try XCTUnwrap(h.body["upstream"] as? [String: Any])
        XCTAssertEqual(up["state"] as? String, "ready")
        XCTAssertEqual(up["authenticated"] as? Bool, true)
        XCTAssertEqual(up["url"] as? String, sim.wsURL)
        XCTAssertEqual(up["heartbeat_interval_s"] as? Int, 10)
        XCTAssertNotNil(up["last_message_age_ms"] as? Int)
        XCTAssertEqual((h.body["clients"] as? [String: Any])?["connected"] as? Int, 0)
        XCTAssertNotNil(h.body["uptime_s"])
        XCTAssertEqual(h.body["version"] as? String, "0.1.0")
    }

    func testUnknownPathIs404AndMalformedRequestIs400() throws {
        XCTAssertEqual(try HTTPClient.request("GET", port: gw.port, path: "/nope").status, 404)
        XCTAssertEqual(try HTTPClient.request("GET", port: gw.port, path: "/ws/api/v2").status, 400, "no upgrade headers")
        // A request line with a space inside the target.
        let fd = try rawConnect(gw.port)
        defer { close(fd) }
        let bad = Array("GET /a b HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
        _ = bad.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        let answer = String(decoding: try readAll(fd), as: UTF8.self)
        XCTAssertTrue(answer.hasPrefix("HTTP/1.1 400 "), answer)
    }

    func testMetricsExposition() throws {
        let r = try HTTPClient.request("GET", port: gw.port, path: "/metrics")
        XCTAssertEqual(r.status, 200)
        XCTAssertTrue(r.headers["content-type"]?.hasPrefix("text/plain") ?? false)
        let text = String(decoding: r.body, as: UTF8.self)
        for name in ["deribit_gateway_upstream_up 1", "deribit_gateway_upstream_reconnects_total",
                     "deribit_gateway_upstream_request_duration_seconds_bucket", "deribit_gateway_clients_connected",
                     "deribit_gateway_notifications_total", "deribit_gateway_frames_sent_total",
                     "deribit_gateway_subscribed_channels", "deribit_gateway_credits_available{bucket=\"default\"}"] {
            XCTAssertTrue(text.contains(name), "missing \(name)")
        }
    }

    func testOriginNotAllowedIs403AndListedOriginUpgrades() throws {
        // A 101 leaves the connection open: read the status line only.
        func upgrade(origin: String) throws -> Int {
            let fd = try rawConnect(gw.port)
            defer { close(fd) }
            let req = Array(("GET /ws/api/v2 HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                + "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: \(origin)\r\n\r\n").utf8)
            _ = req.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            var head: [UInt8] = []
            var byte: UInt8 = 0
            while !head.suffix(4).elementsEqual("\r\n\r\n".utf8) {
                guard recv(fd, &byte, 1, 0) == 1 else { throw TestFailure("no HTTP head: \(String(decoding: head, as: UTF8.self))") }
                head.append(byte)
            }
            return Int(String(decoding: head, as: UTF8.self).split(separator: " ")[1]) ?? 0
        }
        XCTAssertEqual(try upgrade(origin: "https://evil.example"), 403)
        XCTAssertEqual(try upgrade(origin: "https://ops.example"), 101)
    }

    func testMaxClientsIs503() throws {
        let loop = makeLoop(.dispatch)
        let a = try RPCClient(url: gw.wsURL, loop: loop)
        let b = try RPCClient(url: gw.wsURL, loop: loop)
        _ = try a.call("public/test")
        _ = try b.call("public/test")
        XCTAssertThrowsError(try RPCClient(url: gw.wsURL, loop: loop)) { error in
            XCTAssertTrue("\(error)".contains("503"), "\(error)")
        }
        let status = try HTTPClient.request("GET", port: gw.port, path: "/ws/api/v2", headers: [
            "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        ]).status
        XCTAssertEqual(status, 503)
    }

    /// docs/CONFIG.md: `max_clients` bounds WebSocket clients and HTTP JSON-RPC calls in flight
    /// together; `max_message_bytes` bounds an HTTP body as it bounds a WebSocket message.
    func testHTTPCallsCountAgainstMaxClientsAndMaxMessageBytes() throws {
        let loop = makeLoop(.dispatch)
        let a = try RPCClient(url: gw.wsURL, loop: loop)
        _ = try a.call("public/test")
        // One WebSocket client and one HTTP call fit under max_clients = 2.
        XCTAssertEqual(try HTTPClient.request("GET", port: gw.port, path: "/api/v2/public/get_time").status, 200)
        let b = try RPCClient(url: gw.wsURL, loop: loop)
        _ = try b.call("public/test")
        let refused = try HTTPClient.request("GET", port: gw.port, path: "/api/v2/public/get_time")
        XCTAssertEqual(refused.status, 503, String(decoding: refused.body, as: UTF8.self))
        XCTAssertTrue(String(decoding: refused.body, as: UTF8.self).contains("too many clients"))
        // /health and /metrics stay reachable for ops.
        XCTAssertEqual(try HTTPClient.request("GET", port: gw.port, path: "/metrics").status, 200)
        b.close()
        _ = try b.waitClosed()
        try pollUntil("the gateway to count one client") {
            try HTTPClient.request("GET", port: self.gw.port, path: "/api/v2/public/get_time").status == 200
        }

        let config = GatewayProcess.config(sim: sim, extra: ["limits": ["max_message_bytes": 1000]])
        let small = try GatewayProcess(config: config)
        defer { small.stop() }
        try small.waitForHealth(200)
        let padding = String(repeating: "x", count: 1200)
        let big = try HTTPClient.request("POST", port: small.port, path: "/api/v2",
                                         body: Array(#"{"jsonrpc":"2.0","id":1,"method":"public/test","params":{"pad":"\#(padding)"}}"#.utf8))
        XCTAssertEqual(big.status, 413)
        let fits = try HTTPClient.request("POST", port: small.port, path: "/api/v2",
                                          body: Array(#"{"jsonrpc":"2.0","id":1,"method":"public/test","params":{}}"#.utf8))
        XCTAssertEqual(fits.status, 200)
    }

    /// SPEC §6.1: every text frame sent upstream is valid UTF-8. An HTTP body or a query that
    /// decodes to invalid UTF-8 gets -32700 to its sender alone; the shared session stays.
    func testInvalidUTF8OverHTTPIsRefusedAndNeverReachesTheUpstream() throws {
        let opened = try sim.simTotals()["connections_opened"]
        var body = Array(#"{"jsonrpc":"2.0","id":1,"method":"public/get_time","params":{"x":""#.utf8)
        body += [0xFF, 0xFE]
        body += Array(#""}}"#.utf8)
        let post = try HTTPClient.request("POST", port: gw.port, path: "/api/v2", body: body)
        XCTAssertEqual(post.status, 400, String(decoding: post.body, as: UTF8.self))
        XCTAssertEqual(((try RPCClient.decode(post.body))["error"] as? [String: Any])?["code"] as? Int, -32700)

        let get = try HTTPClient.request("GET", port: gw.port, path: "/api/v2/public/get_time?label=%FF%FE")
        XCTAssertEqual(get.status, 400, String(decoding: get.body, as: UTF8.self))
        XCTAssertEqual(((try RPCClient.decode(get.body))["error"] as? [String: Any])?["code"] as? Int, -32700)

        // The session is the same one, and it still answers.
        let ok = try HTTPClient.request("GET", port: gw.port, path: "/api/v2/public/get_time")
        XCTAssertEqual(ok.status, 200)
        XCTAssertEqual(try sim.simTotals()["connections_opened"], opened, "the upstream session was never failed")
        XCTAssertEqual(try sim.methodCalls("public/get_time"), 1, "only the valid call reached the exchange")
    }

    /// The HTTP API has the WebSocket's Origin policy: a web page on the host can reach neither.
    /// A browser sends `Origin` on a cross-site POST (a `text/plain` one needs no preflight) and
    /// `Sec-Fetch-Site` on every request; listed origins compare as RFC 6454 says.
    func testTheHTTPAPIRefusesWebPagesAsTheUpgradeDoes() throws {
        let body = Array(#"{"jsonrpc":"2.0","id":1,"method":"public/get_time","params":{}}"#.utf8)
        let evil = try HTTPClient.request("POST", port: gw.port, path: "/api/v2",
                                          headers: ["Origin": "https://evil.example", "Content-Type": "text/plain"], body: body)
        XCTAssertEqual(evil.status, 403, String(decoding: evil.body, as: UTF8.self))
        let noCors = try HTTPClient.request("GET", port: gw.port, path: "/api/v2/public/get_time", headers: ["Sec-Fetch-Site": "cross-site"])
        XCTAssertEqual(noCors.status, 403)
        XCTAssertEqual(try sim.methodCalls("public/get_time"), 0, "neither reached the exchange")

        // A listed origin, written with other case and the default port, is the same origin.
        let listed = try HTTPClient.request("POST", port: gw.port, path: "/api/v2",
                                            headers: ["Origin": "HTTPS://Ops.Example:443", "Sec-Fetch-Site": "cross-site"], body: body)
        XCTAssertEqual(listed.status, 200, String(decoding: listed.body, as: UTF8.self))
        let sameOrigin = try HTTPClient.request("GET", port: gw.port, path: "/api/v2/public/get_time", headers: ["Sec-Fetch-Site": "same-origin"])
        XCTAssertEqual(sameOrigin.status, 200)
        let plain = try HTTPClient.request("GET", port: gw.port, path: "/api/v2/public/get_time")
        XCTAssertEqual(plain.status, 200, "strategies and curl send neither header")
    }

    func testHEADIsAnsweredForTheGETEndpoints() throws {
        for path in ["/health", "/metrics", "/api/v2/public/get_time"] {
            let get = try HTTPClient.request("GET", port: gw.port, path: path)
            let fd = try connectBlocking(port: gw.port)
            defer { close(fd) }
            let head = Array("HEAD \(path) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8)
            XCTAssertEqual(head.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }, head.count)
            let text = String(decoding: try readAll(fd), as: UTF8.self)
            XCTAssertTrue(text.hasPrefix("HTTP/1.1 \(get.status) "), "\(path): \(text)")
            let parts = text.components(separatedBy: "\r\n\r\n")
            XCTAssertEqual(parts.count, 2, text)
            XCTAssertEqual(parts.last, "", "\(path): no body after the head")
            XCTAssertTrue(parts[0].lowercased().contains("content-length: "), parts[0])
        }
    }

    /// Connections that never send a request count too: past max_clients (2 here) a new one
    /// gets 503 at once, and the silent ones are dropped at the request timeout.
    func testSilentConnectionsCountAgainstMaxClients() throws {
        let silent = try (0..<2).map { _ in try connectBlocking(port: gw.port) }
        defer { silent.forEach { close($0) } }
        try pollUntil("the gateway to refuse a third connection") {
            (try? HTTPClient.request("GET", port: self.gw.port, path: "/health"))?.status == 503
        }
        let refused = try HTTPClient.request("GET", port: gw.port, path: "/health")
        XCTAssertEqual(refused.status, 503)
        XCTAssertTrue(String(decoding: refused.body, as: UTF8.self).contains("too many connections"))
    }

    func testHTTPJSONRPC() throws {
        let get = try HTTPClient.request("GET", port: gw.port, path: "/api/v2/public/get_time")
        XCTAssertEqual(get.status, 200)
        XCTAssertNotNil((try RPCClient.decode(get.body))["result"] as? Int)

        let post = try HTTPClient.request("POST", port: gw.port, path: "/api/v2", body: Array(#"{"jsonrpc":"2.0","id":"p-1","method":"public/test","params":{}}"#.utf8))
        XCTAssertEqual(post.status, 200)
        XCTAssertTrue(String(decoding: post.body, as: UTF8.self).contains("\"id\":\"p-1\""))

        let anon = try HTTPClient.request("GET", port: gw.port, path: "/api/v2/private/get_open_orders_by_currency?currency=BTC")
        XCTAssertEqual(anon.status, 400)
        XCTAssertEqual(((try RPCClient.decode(anon.body))["error"] as? [String: Any])?["code"] as? Int, 13009)

        let auth = try HTTPClient.request("GET", port: gw.port, path: "/api/v2/public/auth?grant_type=client_credentials&client_id=mm&client_secret=mm-secret")
        XCTAssertEqual(auth.status, 200)
        let token = try XCTUnwrap(((try RPCClient.decode(auth.body))["result"] as? [String: Any])?["access_token"] as? String)
        let orders = try HTTPClient.request("GET", port: gw.port, path: "/api/v2/private/get_open_orders_by_currency?currency=BTC",
                                            headers: ["Authorization": "Bearer \(token)"])
        XCTAssertEqual(orders.status, 200, String(decoding: orders.body, as: UTF8.self))
        XCTAssertNotNil((try RPCClient.decode(orders.body))["result"] as? [Any])

        let bad = try HTTPClient.request("GET", port: gw.port, path: "/api/v2/private/get_open_orders_by_currency?currency=BTC",
                                         headers: ["Authorization": "Bearer not-a-token"])
        XCTAssertEqual(bad.status, 401)

        let wsOnly = try HTTPClient.request("GET", port: gw.port, path: "/api/v2/public/subscribe?channels=x")
        XCTAssertEqual(((try RPCClient.decode(wsOnly.body))["error"] as? [String: Any])?["code"] as? Int, 11050)
    }

    // MARK: raw sockets

    func rawConnect(_ port: Int) throws -> Int32 {
        try connectBlocking(port: port)
    }

    func readAll(_ fd: Int32) throws -> [UInt8] {
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n == 0 { return out }
            guard n > 0 else { throw TestFailure("recv errno \(errno)") }
            out += buf[0..<n]
        }
    }
}
