import Foundation
import XCTest
@testable import DeribitSim
import TLS

final class SessionTests: XCTestCase {
    func testClientCredentialsResultShape() {
        let h = Harness()
        let c = h.open()
        let r = h.call(c, "public/auth", ["grant_type": "client_credentials", "client_id": "sim-client",
                                          "client_secret": "sim-secret", "state": "s1"]).result ?? [:]
        XCTAssertEqual(r["token_type"] as? String, "bearer")
        XCTAssertEqual(r["expires_in"] as? Int, 31_536_000)
        XCTAssertEqual(r["scope"] as? String, "connection mainaccount")
        XCTAssertEqual(r["enabled_features"] as? [String], [])
        XCTAssertEqual(r["state"] as? String, "s1")
        XCTAssertFalse((r["access_token"] as? String ?? "").isEmpty)
        XCTAssertNotEqual(r["access_token"] as? String, r["refresh_token"] as? String)
    }

    func testBadCredentials13004() {
        let h = Harness()
        let c = h.open()
        let r = h.call(c, "public/auth", ["grant_type": "client_credentials", "client_id": "sim-client", "client_secret": "wrong"])
        XCTAssertEqual(r.errorCode, 13004)
        XCTAssertEqual(r.error?["message"] as? String, "invalid_credentials")
        let sig = h.call(c, "public/auth", ["grant_type": "client_signature", "client_id": "sim-client",
                                            "timestamp": 1, "nonce": "n", "signature": "00"])
        XCTAssertEqual(sig.errorCode, 13004)
        XCTAssertEqual(h.call(c, "public/auth", ["grant_type": "refresh_token", "refresh_token": "nope"]).errorCode, 13004)
    }

    func testClientSignatureAndRefreshTokenAndScopeExpires() {
        let h = Harness(SimConfig(keys: [("k1", "s3cret")]))
        let c = h.open()
        let ts = 1_700_000_000_000, nonce = "abcd", data = "payload"
        let sig = Crypto.hex(Crypto.hmacSHA256(key: Array("s3cret".utf8), message: Array("\(ts)\n\(nonce)\n\(data)".utf8)))
        let r = h.call(c, "public/auth", ["grant_type": "client_signature", "client_id": "k1", "timestamp": ts,
                                          "nonce": nonce, "data": data, "signature": sig,
                                          "scope": "session:abc expires:60"]).result ?? [:]
        XCTAssertEqual(r["expires_in"] as? Int, 60)
        XCTAssertEqual(r["scope"] as? String, "session:abc expires:60")
        let refresh = r["refresh_token"] as! String
        let c2 = h.open()
        let r2 = h.call(c2, "public/auth", ["grant_type": "refresh_token", "refresh_token": refresh]).result ?? [:]
        XCTAssertNotNil(r2["access_token"])
        // A refresh token is single-use.
        XCTAssertEqual(h.call(c2, "public/auth", ["grant_type": "refresh_token", "refresh_token": refresh]).errorCode, 13004)
        // The 60 s token expires: private calls are refused afterwards.
        XCTAssertNotNil(h.call(c, "private/get_open_orders_by_currency", ["currency": "BTC"])["result"])
        _ = h.advance(seconds: 61)
        XCTAssertEqual(h.call(c, "private/get_open_orders_by_currency", ["currency": "BTC"]).errorCode, 13009)
    }

    func testPrivateNeedsAuthOrAccessTokenParam() {
        let h = Harness()
        let c = h.open()
        let r = h.call(c, "private/get_open_orders_by_currency", ["currency": "BTC"])
        XCTAssertEqual(r.errorCode, 13009)
        XCTAssertEqual(r.error?["message"] as? String, "unauthorized")
        let other = h.open()
        let token = h.call(other, "public/auth", ["grant_type": "client_credentials", "client_id": "sim-client",
                                                  "client_secret": "sim-secret"]).result?["access_token"] as! String
        XCTAssertNotNil(h.call(c, "private/get_open_orders_by_currency", ["currency": "BTC", "access_token": token])["result"])
        XCTAssertEqual(h.call(c, "private/get_open_orders_by_currency", ["currency": "BTC", "access_token": "bad"]).errorCode, 13009)
    }

    func testSetHeartbeatBelowTenIsInvalidParams() {
        let h = Harness()
        let c = h.open()
        let r = h.call(c, "public/set_heartbeat", ["interval": 5])
        XCTAssertEqual(r.errorCode, -32602)
        XCTAssertEqual(r.error?["message"] as? String, "Invalid params")
        let data = r.error?["data"] as? [String: Any]
        XCTAssertEqual(data?["param"] as? String, "interval")
        XCTAssertNotNil(data?["reason"] as? String)
        XCTAssertEqual(h.call(c, "public/set_heartbeat", ["interval": "x"]).errorCode, -32602)
        XCTAssertEqual(h.call(c, "public/set_heartbeat", ["interval": 10])["result"] as? String, "ok")
    }

    func testHeartbeatUnansweredDropsAndCancelsOnDisconnect() {
        let h = Harness()
        let c = h.open()
        h.authenticate(c)
        XCTAssertEqual(h.call(c, "private/enable_cancel_on_disconnect")["result"] as? String, "ok")
        _ = h.call(c, "private/buy", ["instrument_name": "BTC-PERPETUAL", "amount": 10, "price": 1000, "label": "a"])
        XCTAssertEqual(h.call(c, "public/set_heartbeat", ["interval": 10])["result"] as? String, "ok")
        XCTAssertTrue(h.advance(seconds: 9.9).isEmpty)
        let beat = h.advance(seconds: 0.2)
        XCTAssertEqual(beat, [.send(c, Array(#"{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}"#.utf8))])
        XCTAssertTrue(h.advance(seconds: 10.5).isEmpty)   // within interval + grace (1 s)
        let end = h.advance(seconds: 1)
        XCTAssertEqual(end.first, .drop(c))
        XCTAssertTrue(h.sim.openOrders.isEmpty)
        XCTAssertEqual(h.sim.closedOrders.values.first?.cancelReason, "cancel_on_disconnect")
        XCTAssertTrue(h.sim.connectionClosed(c, nowMicros: h.now).isEmpty)   // already forgotten
    }

    func testHeartbeatAnsweredStays() {
        let h = Harness()
        let c = h.open()
        _ = h.call(c, "public/set_heartbeat", ["interval": 10])
        for _ in 0..<5 {
            let beat = h.advance(seconds: 10)
            XCTAssertEqual(Harness.frames(beat, to: c).first?["method"] as? String, "heartbeat")
            _ = h.advance(seconds: 5)
            XCTAssertNotNil(h.call(c, "public/test")["result"])
        }
        XCTAssertNotNil(h.sim.connections[c])
        XCTAssertEqual(h.call(c, "public/disable_heartbeat")["result"] as? String, "ok")
        XCTAssertTrue(h.advance(seconds: 100).isEmpty)
    }

    func testCreditsOverdrawAnswers10028ThenCloses() {
        let h = Harness(SimConfig(defaultCredits: .init(cost: 500, max: 2_000, refillPerSecond: 10)))
        let c = h.open()
        for _ in 0..<4 { XCTAssertNotNil(h.call(c, "public/test")["result"]) }
        let effects = h.send(c, #"{"jsonrpc":"2.0","id":"last","method":"public/test"}"#)
        guard case .send(_, let bytes) = effects.first else { return XCTFail("\(effects)") }
        let r = Harness.decode(bytes)
        XCTAssertEqual(r.errorCode, 10028)
        XCTAssertEqual(r.error?["message"] as? String, "too_many_requests")
        XCTAssertEqual(r["id"] as? String, "last")
        XCTAssertEqual(effects[1], .close(c, code: 1008, reason: "too_many_requests"))
        XCTAssertTrue(h.send(c, #"{"id":1,"method":"public/test"}"#).isEmpty)
    }

    func testCreditsRefillContinuously() {
        let h = Harness(SimConfig(defaultCredits: .init(cost: 500, max: 1_000, refillPerSecond: 10_000)))
        let c = h.open()
        for _ in 0..<50 {
            XCTAssertNotNil(h.call(c, "public/test")["result"])
            h.now += 50_000   // 50 ms refills 500
        }
    }

    func testLogoutClosesWithoutResponseOrCOD() {
        let h = Harness()
        let c = h.open()
        h.authenticate(c)
        _ = h.call(c, "private/enable_cancel_on_disconnect")
        _ = h.call(c, "private/buy", ["instrument_name": "BTC-PERPETUAL", "amount": 10, "price": 1000])
        let effects = h.send(c, #"{"jsonrpc":"2.0","id":1,"method":"private/logout"}"#)
        XCTAssertEqual(effects, [.close(c, code: 1000, reason: "logout")])
        XCTAssertTrue(h.sim.connectionClosed(c, nowMicros: h.now).isEmpty)
        XCTAssertEqual(h.sim.openOrders.count, 1)
    }

    func testStateJSON() {
        let h = Harness()
        let a = h.open(), b = h.open()
        _ = h.call(a, "public/subscribe", ["channels": ["ticker.BTC-PERPETUAL.100ms"]])
        _ = h.call(b, "public/subscribe", ["channels": ["ticker.BTC-PERPETUAL.100ms", "nope"]])
        h.authenticate(b)
        _ = h.call(b, "private/buy", ["instrument_name": "ETH-PERPETUAL", "amount": 1, "price": 10, "label": "L"])
        let s = Harness.decode(h.sim.stateJSON(nowMicros: h.now))
        XCTAssertEqual((s["subscriptions"] as? [String: [Int]])?["ticker.BTC-PERPETUAL.100ms"], [1, 2])
        XCTAssertEqual((s["subscribe_requests"] as? [String: Int])?["ticker.BTC-PERPETUAL.100ms"], 2)
        XCTAssertEqual((s["method_calls"] as? [String: Int])?["public/subscribe"], 2)
        let conns = s["connections"] as? [[String: Any]] ?? []
        XCTAssertEqual(conns.count, 2)
        XCTAssertEqual(conns[1]["client_id"] as? String, "sim-client")
        XCTAssertEqual(conns[1]["authenticated"] as? Bool, true)
        XCTAssertEqual(conns[0]["subscriptions"] as? [String], ["ticker.BTC-PERPETUAL.100ms"])
        let orders = s["open_orders"] as? [[String: Any]] ?? []
        XCTAssertEqual(orders.first?["label"] as? String, "L")
        XCTAssertEqual(orders.first?["connection"] as? Int, 2)
        XCTAssertNotNil(s["credits"])
    }
}
