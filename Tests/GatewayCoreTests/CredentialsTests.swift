@testable import GatewayCore
import XCTest

/// SPEC §8: bounded token stores, expiring and single-use tokens, no replayed signature,
/// failed authentication throttled, each on a fake clock.
final class CredentialsTests: XCTestCase {
    private let a = ClientID(slot: 1, generation: 1)
    private let b = ClientID(slot: 2, generation: 1)

    func testTokensExpireAreRedeemedOnceAndDieWithTheirSession() {
        var t = TokenStore()
        t.issue(access: "A1", refresh: "R1", client: "alpha", session: a, now: 0)
        t.issue(access: "H1", refresh: "HR1", client: "http", session: nil, now: 0)
        XCTAssertEqual(t.client(forAccess: "A1", now: TokenStore.accessLifetime - 1), "alpha")
        XCTAssertNil(t.client(forAccess: "A1", now: TokenStore.accessLifetime), "expired")
        XCTAssertEqual(t.redeem(refresh: "R1", now: 1), "alpha")
        XCTAssertNil(t.redeem(refresh: "R1", now: 2), "single use")
        XCTAssertNil(t.redeem(refresh: "HR1", now: TokenStore.refreshLifetime), "expired")

        t.issue(access: "A2", refresh: "R2", client: "alpha", session: a, now: 10)
        t.issue(access: "A3", refresh: "R3", client: "alpha", session: a, now: 20)
        XCTAssertNil(t.client(forAccess: "A2", now: 21), "authenticating again revokes the previous pair")
        t.revoke(session: a)
        XCTAssertNil(t.client(forAccess: "A3", now: 21))
        XCTAssertNil(t.redeem(refresh: "R3", now: 21), "revoked with the connection")
        XCTAssertEqual(t.client(forAccess: "H1", now: 21), "http", "an HTTP call's tokens live out their lifetime")
    }

    func testTheStoreIsBounded() {
        var t = TokenStore()
        for k in 0..<(TokenStore.maxTokens + 10) {
            t.issue(access: "a\(k)", refresh: "r\(k)", client: "c", session: nil, now: UInt64(k))
        }
        XCTAssertEqual(t.count.access, TokenStore.maxTokens)
        XCTAssertEqual(t.count.refresh, TokenStore.maxTokens)
        XCTAssertNil(t.client(forAccess: "a0", now: 0), "the oldest went first")
        XCTAssertEqual(t.client(forAccess: "a\(TokenStore.maxTokens + 9)", now: 0), "c")
    }

    func testASignedRequestIsAdmittedOnceWithinTheWindow() {
        var g = SignatureReplayGuard()
        let now: Int64 = 1_800_000_000_000
        XCTAssertTrue(g.admit(client: "c", timestamp: now, nonce: "n", signature: "AB", nowMilliseconds: now))
        XCTAssertFalse(g.admit(client: "c", timestamp: now, nonce: "n", signature: "ab", nowMilliseconds: now + 1), "replayed")
        XCTAssertTrue(g.admit(client: "c", timestamp: now, nonce: "n2", signature: "cd", nowMilliseconds: now + 1), "another nonce")
        XCTAssertFalse(g.admit(client: "c", timestamp: now - 60_001, nonce: "x", signature: "ef", nowMilliseconds: now), "outside the window")
        XCTAssertFalse(g.admit(client: "c", timestamp: now + 60_001, nonce: "y", signature: "ef", nowMilliseconds: now))
    }

    func testFailuresSlowAConnectionThenCloseIt() {
        var t = AuthThrottle()
        let ms = UInt64(1_000_000)
        XCTAssertEqual(t.failed(connection: a, peer: "p", now: 0), .answer(blockedUntil: 250 * ms))
        XCTAssertEqual(t.failed(connection: a, peer: "p", now: 0), .answer(blockedUntil: 500 * ms))
        XCTAssertEqual(t.failed(connection: a, peer: "p", now: 0), .answer(blockedUntil: 750 * ms))
        XCTAssertEqual(t.failed(connection: a, peer: "p", now: 0), .answer(blockedUntil: 1_000 * ms))
        XCTAssertEqual(t.failed(connection: a, peer: "p", now: 0), .answerAndClose, "the fifth")
        XCTAssertEqual(t.failed(connection: b, peer: "other", now: 0), .answer(blockedUntil: 250 * ms), "per connection")
    }

    func testAPeerOverItsBudgetIsClosedAtOnceUntilTheWindowPasses() {
        var t = AuthThrottle()
        for k in 0..<AuthThrottle.maxFailuresPerPeer {
            _ = t.failed(connection: ClientID(slot: k, generation: 1), peer: "p", now: 0)
        }
        XCTAssertEqual(t.failed(connection: ClientID(slot: 99, generation: 1), peer: "p", now: 1), .answerAndClose)
        XCTAssertEqual(t.failed(connection: ClientID(slot: 100, generation: 1), peer: "p", now: AuthThrottle.peerWindow + 1),
                       .answer(blockedUntil: AuthThrottle.peerWindow + 1 + AuthThrottle.failureDelay), "the old failures aged out")
    }
}
