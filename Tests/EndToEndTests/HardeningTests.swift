import Foundation
import TLS
import TestSupport
import Transport
import XCTest

/// What a client chooses to send never breaks the gateway's own output: error `data`, log lines.
final class HardeningTests: XCTestCase {
    /// The -32002 `data` names the method: written by the JSON writer, a quote or a newline in
    /// the name neither breaks the JSON nor adds members to it.
    func testAMethodNameInAnErrorsDataCannotBreakOrExtendIt() throws {
        let f = try SessionFixture(self)
        defer { f.stop() }
        let b = try f.client("B")
        let method = "private/withdraw\",\"injected\":\"yes\n"
        let raw = try b.response(idJSON: "\(try b.send(method))")
        let obj = try RPCClient.decode(raw)  // valid JSON, or this throws
        let error = try XCTUnwrap(obj["error"] as? [String: Any], "\(obj)")
        XCTAssertEqual(error["code"] as? Int, -32002)
        let data = try XCTUnwrap(error["data"] as? [String: Any])
        XCTAssertEqual(Set(data.keys), ["reason"], "no member injected")
        XCTAssertEqual(data["reason"] as? String, "scope trade does not allow \(method)")
    }

    /// A newline in `public/hello`'s client_name cannot forge a log line.
    func testClientTextInALogLineIsEscaped() throws {
        let f = try SessionFixture(self)
        defer { f.stop() }
        let c = try f.client("B")
        let forged = "evil\n2026-12-02T00:00:00+0000 critical deribit-gateway: FORGED"
        XCTAssertNotNil(try c.call("public/hello", ["client_name": forged, "client_version": "1\r\n2"])["result"])
        try pollUntil("the hello in the log") { f.gatewayLog.contains("client hello") }
        let lines = f.gatewayLog.split(separator: "\n")
        XCTAssertFalse(lines.contains { $0.hasPrefix("2026-12-02T00:00:00") }, "a forged line")
        XCTAssertTrue(lines.contains { $0.contains("client hello") && $0.contains(#"client_name="evil\u000a2026"#) }, f.gatewayLog)
    }

    // MARK: authentication (SPEC §8)

    /// 50 wrong secrets sent at once on one connection: the first is checked, the others come
    /// during its penalty and are refused unchecked; five checked failures close the connection.
    func testGuessingIsThrottledPerConnection() throws {
        let f = try SessionFixture(self)
        defer { f.stop() }
        let c = try RPCClient(url: f.gw.wsURL, loop: f.loop)
        for k in 0..<50 {
            _ = try c.send("public/auth", ["grant_type": "client_credentials", "client_id": "A", "client_secret": "guess-\(k)"])
        }
        var codes: [Int] = []
        for _ in 0..<50 { codes.append(rpcErrorCode(try RPCClient.decode(try c.next("an answer"))) ?? 0) }
        XCTAssertEqual(codes.first, 13004)
        XCTAssertEqual(codes.filter { $0 == 13004 }.count, 1, "only the first guess was checked: \(codes)")
        XCTAssertEqual(codes.filter { $0 == 10028 }.count, 49)
        // Four more, each after its penalty (250, 500, 750, 1000 ms): the fifth failure closes.
        for k in 0..<4 {
            let r = try pollValue("guess \(k) checked", timeout: 5) { () -> [String: Any]? in
                let r = try c.call("public/auth", ["grant_type": "client_credentials", "client_id": "A", "client_secret": "late-\(k)"])
                return rpcErrorCode(r) == 10028 ? nil : r
            }
            XCTAssertEqual(rpcErrorCode(r), 13004)
        }
        let close = try c.waitClosed()
        XCTAssertEqual(close.code, 1008)
        XCTAssertEqual(close.reason, "too many authentication failures")
        XCTAssertEqual(try f.metric("deribit_gateway_auth_failures_total"), 5)
        XCTAssertNotNil(try f.client("A"), "the right secret still works on a new connection")
    }

    /// One address past 20 failures a minute: each new connection is closed at its first failure.
    func testGuessingIsThrottledPerPeer() throws {
        let f = try SessionFixture(self)
        defer { f.stop() }
        for k in 0..<20 {
            let c = try RPCClient(url: f.gw.wsURL, loop: f.loop)
            let r = try c.call("public/auth", ["grant_type": "client_credentials", "client_id": "A", "client_secret": "g\(k)"])
            XCTAssertEqual(rpcErrorCode(r), 13004)
            c.close()
        }
        let next = try RPCClient(url: f.gw.wsURL, loop: f.loop)
        let r = try next.call("public/auth", ["grant_type": "client_credentials", "client_id": "A", "client_secret": "again"])
        XCTAssertEqual(rpcErrorCode(r), 13004)
        XCTAssertEqual(try next.waitClosed().code, 1008, "closed at its first failure")
        XCTAssertEqual(try f.metric("deribit_gateway_auth_failures_total"), 21)
    }

    /// Refresh tokens die with the connection that got them (disconnect or logout).
    func testRefreshTokensAreRevokedWithTheirConnection() throws {
        let f = try SessionFixture(self)
        defer { f.stop() }
        for ending in ["close", "logout"] {
            let a = try RPCClient(url: f.gw.wsURL, loop: f.loop)
            let auth = try a.call("public/auth", ["grant_type": "client_credentials", "client_id": "B", "client_secret": "b-secret"])
            let refresh = try XCTUnwrap((auth["result"] as? [String: Any])?["refresh_token"] as? String)
            XCTAssertEqual((auth["result"] as? [String: Any])?["expires_in"] as? Int, 900)
            if ending == "close" { a.close() } else { _ = try a.send("private/logout") }
            _ = try a.waitClosed()
            try f.waitForConnectedClients(0)
            let b = try RPCClient(url: f.gw.wsURL, loop: f.loop)
            let r = try b.call("public/auth", ["grant_type": "refresh_token", "refresh_token": refresh])
            XCTAssertEqual(rpcErrorCode(r), 13004, "\(ending): \(r)")
        }
    }

    /// A `client_signature` seen once cannot be replayed, on this connection or another.
    func testASignatureCannotBeReplayed() throws {
        let f = try SessionFixture(self)
        defer { f.stop() }
        let timestamp = Int64(Date().timeIntervalSince1970 * 1000)
        let nonce = "replay-\(timestamp)"
        let signature = Crypto.hex(Crypto.hmacSHA256(key: Array("b-secret".utf8), message: Array("\(timestamp)\n\(nonce)\n".utf8)))
        let params: [String: Any] = ["grant_type": "client_signature", "client_id": "B", "timestamp": timestamp, "nonce": nonce,
                                     "data": "", "signature": signature]
        let first = try RPCClient(url: f.gw.wsURL, loop: f.loop)
        XCTAssertNotNil(try first.call("public/auth", params)["result"])
        let second = try RPCClient(url: f.gw.wsURL, loop: f.loop)
        XCTAssertEqual(rpcErrorCode(try second.call("public/auth", params)), 13004)
    }

    // MARK: anonymous clients (SPEC §8)

    /// An anonymous client flooding requests is held to its own limit and the anonymous
    /// share: a configured strategy's requests meanwhile all go through.
    func testAnAnonymousFloodDoesNotStarveAConfiguredClient() throws {
        let f = try SessionFixture(self)
        defer { f.stop() }
        let flooder = try RPCClient(url: f.gw.wsURL, loop: f.loop)
        let strategy = try f.client("B")
        for _ in 0..<400 { _ = try flooder.send("public/get_time") }
        var refused = 0
        for _ in 0..<60 {
            let r = try strategy.call("public/get_time")
            if rpcErrorCode(r) != nil { refused += 1 }
        }
        XCTAssertEqual(refused, 0, "the strategy's requests all answered")
        var flooderRefused = 0
        for _ in 0..<400 {
            let m = try RPCClient.decode(try flooder.next("the flood's answers"))
            if rpcErrorCode(m) == 10028 { flooderRefused += 1 }
        }
        XCTAssertGreaterThan(flooderRefused, 300, "held to the anonymous limits")
        XCTAssertGreaterThan(try f.metric(#"deribit_gateway_rate_limited_total{client="anonymous"}"#), 300)
    }
}
