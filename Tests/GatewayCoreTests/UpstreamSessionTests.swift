@testable import GatewayCore
import JSONRPC
import XCTest

/// SPEC §6.5: the one upstream session, as events in and one action out.
final class UpstreamSessionTests: XCTestCase {
    private let hello = #"{"jsonrpc":"2.0","id":1,"result":{"version":"1.2.26"},"usIn":1,"usOut":2,"usDiff":1,"testnet":true}"#

    private func authResult(id: Int = 2, expiresIn: Int? = 900, refreshToken: String = "RT1") -> String {
        let expires = expiresIn.map { #","expires_in":\#($0)"# } ?? ""
        return #"{"jsonrpc":"2.0","id":\#(id),"result":{"access_token":"AT1","refresh_token":"\#(refreshToken)"\#(expires),"scope":"connection mainaccount trade:read_write","token_type":"bearer"}}"#
    }

    private let ok = #"{"jsonrpc":"2.0","id":3,"result":"ok"}"#

    private func settings(credentials: Bool, cancelOnDisconnect: Bool = true) -> UpstreamSession.Settings {
        var s = UpstreamSession.Settings()
        s.hasCredentials = credentials
        s.cancelOnDisconnect = cancelOnDisconnect
        return s
    }

    /// A session taken through the handshake with credentials; ready at `now`.
    private func readySession(_ settings: UpstreamSession.Settings = {
        var s = UpstreamSession.Settings()
        s.hasCredentials = true
        return s
    }(), seed: UInt64 = 1, now: Nanos = 0) throws -> UpstreamSession {
        var s = UpstreamSession(settings, seed: seed)
        XCTAssertEqual(s.start(now: now), .connect)
        XCTAssertEqual(s.connected(now: now), .send(.hello))
        let g = s.generation
        var action = s.answered(.hello, generation: g, try upstreamResponse(hello), now: now)
        if action == .send(.auth) { action = s.answered(.auth, generation: g, try upstreamResponse(authResult()), now: now) }
        XCTAssertEqual(action, .send(.setHeartbeat))
        action = s.answered(.setHeartbeat, generation: g, try upstreamResponse(ok), now: now)
        if action == .send(.enableCancelOnDisconnect) {
            action = s.answered(.enableCancelOnDisconnect, generation: g, try upstreamResponse(ok), now: now)
        }
        XCTAssertEqual(action, .becomeReady)
        XCTAssertEqual(s.state, .ready)
        return s
    }

    // MARK: the handshake

    func testHandshakeWithCredentials() throws {
        var s = UpstreamSession(settings(credentials: true), seed: 1)
        XCTAssertEqual(s.state, .stopped)
        XCTAssertEqual(s.start(now: 0), .connect)
        XCTAssertEqual(s.state, .connecting)
        XCTAssertEqual(s.generation, 1)
        XCTAssertEqual(s.start(now: 0), .none, "already started")

        XCTAssertEqual(s.connected(now: 5 * millisecond), .send(.hello))
        XCTAssertEqual(s.state, .authenticating)
        XCTAssertEqual(s.connectedAt, 5 * millisecond)

        XCTAssertEqual(s.answered(.hello, generation: 1, try upstreamResponse(hello), now: 10 * millisecond), .send(.auth))
        XCTAssertEqual(s.version, "1.2.26", "public/test is answered locally with it")

        let authAt = 20 * millisecond
        XCTAssertEqual(s.answered(.auth, generation: 1, try upstreamResponse(authResult()), now: authAt), .send(.setHeartbeat))
        XCTAssertTrue(s.authenticated)
        XCTAssertEqual(s.tokenForRefresh, "RT1")
        XCTAssertEqual(s.refreshAt, authAt + 840 * second, "a 900 s token is refreshed a minute early")

        XCTAssertEqual(s.answered(.setHeartbeat, generation: 1, try upstreamResponse(ok), now: authAt), .send(.enableCancelOnDisconnect))
        XCTAssertEqual(s.state, .authenticating, "not ready before cancel-on-disconnect is on")
        XCTAssertEqual(s.answered(.enableCancelOnDisconnect, generation: 1, try upstreamResponse(ok), now: authAt), .becomeReady)
        XCTAssertEqual(s.state, .ready)
        XCTAssertNil(s.lastError)
    }

    func testHandshakeWithoutCredentialsSkipsAuthAndCancelOnDisconnect() throws {
        var s = UpstreamSession(settings(credentials: false, cancelOnDisconnect: true), seed: 1)
        XCTAssertEqual(s.start(now: 0), .connect)
        XCTAssertEqual(s.connected(now: 0), .send(.hello))
        XCTAssertEqual(s.answered(.hello, generation: 1, try upstreamResponse(hello), now: 0), .send(.setHeartbeat))
        XCTAssertEqual(s.answered(.setHeartbeat, generation: 1, try upstreamResponse(ok), now: 0), .becomeReady,
                       "Deribit's cancel-on-disconnect needs an authenticated session")
        XCTAssertFalse(s.authenticated)
        XCTAssertNil(s.refreshAt)
    }

    func testCancelOnDisconnectOffSkipsIt() throws {
        var s = UpstreamSession(settings(credentials: true, cancelOnDisconnect: false), seed: 1)
        _ = s.start(now: 0)
        _ = s.connected(now: 0)
        XCTAssertEqual(s.answered(.hello, generation: 1, try upstreamResponse(hello), now: 0), .send(.auth))
        XCTAssertEqual(s.answered(.auth, generation: 1, try upstreamResponse(authResult()), now: 0), .send(.setHeartbeat))
        XCTAssertEqual(s.answered(.setHeartbeat, generation: 1, try upstreamResponse(ok), now: 0), .becomeReady)
    }

    func testAHelloWithoutAVersionStillGoesOn() throws {
        var s = UpstreamSession(settings(credentials: false), seed: 1)
        _ = s.start(now: 0)
        _ = s.connected(now: 0)
        XCTAssertEqual(s.answered(.hello, generation: 1, .failed(.upstreamTimeout), now: 0), .send(.setHeartbeat))
        XCTAssertNil(s.version)
    }

    func testRefreshTimeFollowsTheTokensLifetime() throws {
        for (expiresIn, after) in [(900, 840.0), (121, 61.0), (120, 84.0), (100, 70.0), (nil, 840.0)] as [(Int?, Double)] {
            var s = UpstreamSession(settings(credentials: true), seed: 1)
            _ = s.start(now: 0)
            _ = s.connected(now: 0)
            _ = s.answered(.hello, generation: 1, try upstreamResponse(hello), now: 0)
            let now = 7 * second
            _ = s.answered(.auth, generation: 1, try upstreamResponse(authResult(expiresIn: expiresIn)), now: now)
            XCTAssertEqual(s.refreshAt, now + .seconds(after), "expires_in \(String(describing: expiresIn))")
        }
    }

    func testAuthenticationFailureClosesTheConnection() throws {
        var s = UpstreamSession(settings(credentials: true), seed: 1)
        _ = s.start(now: 0)
        _ = s.connected(now: 0)
        _ = s.answered(.hello, generation: 1, try upstreamResponse(hello), now: 0)
        let refusal = #"{"jsonrpc":"2.0","id":2,"error":{"message":"invalid_credentials","code":13004}}"#
        let action = s.answered(.auth, generation: 1, try upstreamResponse(refusal), now: 0)
        XCTAssertEqual(action, .close(reason: #"authentication failed: {"message":"invalid_credentials","code":13004}"#))
        XCTAssertFalse(s.authenticated)
        XCTAssertEqual(s.lastError, #"authentication failed: {"message":"invalid_credentials","code":13004}"#)
        guard case .armReconnect = s.closed("closed by the gateway", now: 0) else { return XCTFail("no reconnect") }

        // A timed-out auth is a failure too, and a result without a token.
        var t = UpstreamSession(settings(credentials: true), seed: 1)
        _ = t.start(now: 0)
        _ = t.connected(now: 0)
        XCTAssertEqual(t.answered(.auth, generation: 1, .failed(.upstreamTimeout), now: 0),
                       .close(reason: "authentication failed: -32001 upstream_timeout"))
        var u = UpstreamSession(settings(credentials: true), seed: 1)
        _ = u.start(now: 0)
        _ = u.connected(now: 0)
        XCTAssertEqual(u.answered(.auth, generation: 1, try upstreamResponse(#"{"jsonrpc":"2.0","id":2,"result":{"access_token":""}}"#), now: 0),
                       .close(reason: "authentication failed: no access_token"))
    }

    // MARK: token refresh

    func testTickAtRefreshTimeSendsTheRefreshOnce() throws {
        var s = try readySession()
        let at = try XCTUnwrap(s.refreshAt)
        XCTAssertEqual(at, 840 * second)
        s.received(now: at - 1)
        XCTAssertEqual(s.tick(now: at - 1), .none)
        s.received(now: at)
        XCTAssertEqual(s.tick(now: at), .send(.refresh))
        XCTAssertEqual(s.tokenForRefresh, "RT1")
        XCTAssertNil(s.refreshAt)
        XCTAssertEqual(s.tick(now: at), .none, "sent once")

        let refreshed = authResult(id: 9, expiresIn: 100, refreshToken: "RT2")
        XCTAssertEqual(s.answered(.refresh, generation: s.generation, try upstreamResponse(refreshed), now: at), .none)
        XCTAssertEqual(s.tokenForRefresh, "RT2")
        XCTAssertEqual(s.refreshAt, at + 70 * second)
        XCTAssertEqual(s.state, .ready)
    }

    func testAFailedRefreshClosesTheConnection() throws {
        var s = try readySession()
        let at = try XCTUnwrap(s.refreshAt)
        s.received(now: at)
        XCTAssertEqual(s.tick(now: at), .send(.refresh))
        let refusal = #"{"jsonrpc":"2.0","id":9,"error":{"message":"invalid_token","code":13010}}"#
        XCTAssertEqual(s.answered(.refresh, generation: s.generation, try upstreamResponse(refusal), now: at),
                       .close(reason: #"token refresh failed: {"message":"invalid_token","code":13010}"#))
    }

    // MARK: generations

    func testAnswersOfAnOlderConnectionAreIgnored() throws {
        var s = UpstreamSession(settings(credentials: true), seed: 1)
        _ = s.start(now: 0)
        _ = s.connected(now: 0)
        let old = s.generation
        guard case .armReconnect(let at) = s.closed("reset", now: 0) else { return XCTFail("no reconnect") }
        XCTAssertEqual(s.answered(.hello, generation: old, try upstreamResponse(hello), now: 0), .none, "in backoff")
        XCTAssertEqual(s.reconnectDue(now: at), .connect)
        XCTAssertEqual(s.generation, old + 1)
        XCTAssertEqual(s.connected(now: at), .send(.hello))

        XCTAssertEqual(s.answered(.hello, generation: old, try upstreamResponse(hello), now: at), .none)
        XCTAssertNil(s.version)
        XCTAssertEqual(s.answered(.auth, generation: old, try upstreamResponse(authResult()), now: at), .none)
        XCTAssertFalse(s.authenticated)
        XCTAssertEqual(s.answered(.hello, generation: old + 1, try upstreamResponse(hello), now: at), .send(.auth))
    }

    // MARK: backoff

    /// The delays of `failures` connection attempts that fail at once.
    private func delays(seed: UInt64, failures: Int, _ settings: UpstreamSession.Settings = UpstreamSession.Settings()) -> [Nanos] {
        var s = UpstreamSession(settings, seed: seed)
        var now: Nanos = 1_000 * second
        XCTAssertEqual(s.start(now: now), .connect)
        var out: [Nanos] = []
        for _ in 0..<failures {
            guard case .armReconnect(let at) = s.connectFailed("connection refused", now: now) else {
                XCTFail("no reconnect armed")
                return out
            }
            out.append(at - now)
            now = at
            XCTAssertEqual(s.reconnectDue(now: now), .connect)
        }
        XCTAssertEqual(s.attempt, failures)
        return out
    }

    func testBackoffGrowsExponentiallyWithJitterUpToTheMax() {
        let min = 200 * millisecond
        let max = 10_000 * millisecond
        for seed in UInt64(0)..<300 {
            for (attempt, delay) in delays(seed: seed, failures: 12).enumerated() {
                let base = Swift.min(max, min << UInt64(attempt))
                XCTAssertGreaterThanOrEqual(delay, base, "seed \(seed) attempt \(attempt)")
                XCTAssertLessThanOrEqual(delay, Swift.min(max, 2 * base), "seed \(seed) attempt \(attempt)")
            }
        }
    }

    func testJitterSpreadsEveryAttemptTheFirstIncluded() {
        // The first retry: in [0.2 s, 0.4 s), not every gateway at 0.2 s.
        let first = (UInt64(0)..<300).map { delays(seed: $0, failures: 1)[0] }
        XCTAssertGreaterThan(Set(first).count, 250, "not in step")
        XCTAssertTrue(first.contains { $0 < 250 * millisecond } && first.contains { $0 > 350 * millisecond })
        // Attempt 3: base 1.6 s, delays in [1.6 s, 3.2 s).
        let third = (UInt64(0)..<300).map { delays(seed: $0, failures: 4)[3] }
        XCTAssertGreaterThan(Set(third).count, 250, "not in step")
        XCTAssertTrue(third.contains { $0 < 1_800 * millisecond }, "reaches the bottom")
        XCTAssertTrue(third.contains { $0 > 3_000 * millisecond }, "reaches the top")
        // Capped: from attempt 6 on (base 12.8 s) every delay is the 10 s max.
        let late = (UInt64(0)..<50).flatMap { delays(seed: $0, failures: 20).dropFirst(6) }
        XCTAssertTrue(late.allSatisfy { $0 == 10 * second })
        // Attempt 5 (base 6.4 s): spread up to the cap.
        let fifth = (UInt64(0)..<300).map { delays(seed: $0, failures: 6)[5] }
        XCTAssertTrue(fifth.allSatisfy { $0 >= 6_400 * millisecond && $0 <= 10 * second })
        XCTAssertTrue(fifth.contains { $0 < 8 * second } && fifth.contains { $0 == 10 * second })
    }

    func testTheSameSeedGivesTheSameDelays() {
        XCTAssertEqual(delays(seed: 42, failures: 10), delays(seed: 42, failures: 10))
        XCTAssertNotEqual(delays(seed: 42, failures: 10), delays(seed: 43, failures: 10))
    }

    func testBackoffHonoursConfiguredBounds() {
        var settings = UpstreamSession.Settings()
        settings.reconnectMin = 1_000 * millisecond
        settings.reconnectMax = 3_000 * millisecond
        let d = delays(seed: 7, failures: 8, settings)
        XCTAssertTrue(d[0] >= 1 * second && d[0] < 2 * second, "\(d)")
        XCTAssertTrue(d.allSatisfy { $0 >= 1 * second && $0 <= 3 * second }, "\(d)")
        XCTAssertTrue(d.dropFirst(2).allSatisfy { $0 == 3 * second }, "capped at 3 s")
    }

    func testReadyResetsTheAttempts() throws {
        var s = UpstreamSession(settings(credentials: false), seed: 3)
        var now: Nanos = 0
        _ = s.start(now: now)
        for _ in 0..<5 {
            guard case .armReconnect(let at) = s.connectFailed("refused", now: now) else { return XCTFail() }
            now = at
            XCTAssertEqual(s.reconnectDue(now: now), .connect)
        }
        XCTAssertEqual(s.attempt, 5)
        _ = s.connected(now: now)
        XCTAssertEqual(s.attempt, 5, "a connection is not yet a session")
        _ = s.answered(.hello, generation: s.generation, try upstreamResponse(hello), now: now)
        XCTAssertEqual(s.answered(.setHeartbeat, generation: s.generation, try upstreamResponse(ok), now: now), .becomeReady)
        XCTAssertEqual(s.attempt, 0)
        guard case .armReconnect(let at) = s.closed("reset by peer", now: now) else { return XCTFail("no reconnect") }
        XCTAssertTrue(at - now >= 200 * millisecond && at - now < 400 * millisecond, "back to the first attempt's [min, 2 × min)")
        XCTAssertEqual(s.lastError, "reset by peer")
    }

    func testAFailedHandshakeKeepsGrowingTheBackoff() throws {
        var s = UpstreamSession(settings(credentials: true), seed: 3)
        _ = s.start(now: 0)
        _ = s.connected(now: 0)
        guard case .armReconnect(let first) = s.closed("reset", now: 0) else { return XCTFail() }
        XCTAssertEqual(s.reconnectDue(now: first), .connect)
        _ = s.connected(now: first)
        guard case .armReconnect(let again) = s.closed("reset", now: first) else { return XCTFail() }
        XCTAssertEqual(s.attempt, 2, "never ready: the attempts add up")
        XCTAssertGreaterThanOrEqual(again - first, 400 * millisecond, "the second attempt's base")
        XCTAssertLessThan(again - first, 800 * millisecond)
    }

    func testReconnectDueBeforeItsTimeRearms() {
        var s = UpstreamSession(UpstreamSession.Settings(), seed: 9)
        _ = s.start(now: 0)
        guard case .armReconnect(let at) = s.connectFailed("refused", now: 0) else { return XCTFail() }
        XCTAssertEqual(s.state, .backoff)
        XCTAssertEqual(s.reconnectAt, at)
        XCTAssertEqual(s.reconnectDue(now: at - 1), .armReconnect(at: at), "an early timer arms again")
        XCTAssertEqual(s.state, .backoff)
        XCTAssertEqual(s.reconnectDue(now: at), .connect)
        XCTAssertEqual(s.generation, 2)
        XCTAssertNil(s.reconnectAt)
        XCTAssertEqual(s.reconnectDue(now: at), .none, "not in backoff")
    }

    func testEventsOutOfPlaceDoNothing() {
        var s = UpstreamSession(UpstreamSession.Settings(), seed: 9)
        XCTAssertEqual(s.connected(now: 0), .none)
        XCTAssertEqual(s.connectFailed("x", now: 0), .none)
        XCTAssertEqual(s.closed("x", now: 0), .none)
        XCTAssertEqual(s.tick(now: 100 * second), .none)
        XCTAssertEqual(s.reconnectDue(now: 0), .none)
        XCTAssertEqual(s.state, .stopped)
        XCTAssertEqual(s.generation, 0)
    }

    // MARK: liveness

    func testSilenceForThreeHeartbeatIntervalsAbortsTheConnection() throws {
        var s = try readySession(now: 0)
        XCTAssertEqual(s.tick(now: 30 * second), .none, "exactly three intervals is not yet silence")
        XCTAssertEqual(s.tick(now: 30 * second + 1), .abort(reason: "heartbeat timeout"))
        XCTAssertEqual(s.lastError, "silent for 30 s")
        XCTAssertEqual(s.tick(now: 30 * second + 2), .none, "aborted once; closed follows")
        guard case .armReconnect = s.closed("aborted", now: 30 * second + 2) else { return XCTFail("no reconnect") }
        XCTAssertFalse(s.authenticated)
        XCTAssertNil(s.refreshAt)
        XCTAssertNil(s.tokenForRefresh)
    }

    func testAnyMessageKeepsTheConnectionAlive() throws {
        var s = try readySession(now: 0)
        var now: Nanos = 0
        for _ in 0..<10 {
            now += 25 * second
            s.received(now: now)
            XCTAssertEqual(s.tick(now: now + 5 * second), .none)
        }
        XCTAssertEqual(s.tick(now: now + 30 * second + 1), .abort(reason: "heartbeat timeout"))
    }

    func testASilentHandshakeIsAbortedToo() {
        var s = UpstreamSession(UpstreamSession.Settings(), seed: 1)
        _ = s.start(now: 0)
        _ = s.connected(now: 0)
        XCTAssertEqual(s.tick(now: 31 * second), .abort(reason: "heartbeat timeout"))
    }

    func testHealthyWhenReadyAndHeardWithinTwoIntervals() throws {
        var s = UpstreamSession(settings(credentials: false), seed: 1)
        XCTAssertFalse(s.isHealthy(now: 0), "stopped")
        _ = s.start(now: 0)
        _ = s.connected(now: 0)
        XCTAssertFalse(s.isHealthy(now: 0), "not ready")
        _ = s.answered(.hello, generation: 1, try upstreamResponse(hello), now: 0)
        _ = s.answered(.setHeartbeat, generation: 1, try upstreamResponse(ok), now: 0)
        XCTAssertTrue(s.isHealthy(now: 0))
        XCTAssertTrue(s.isHealthy(now: 20 * second - 1))
        XCTAssertFalse(s.isHealthy(now: 20 * second))
        s.received(now: 25 * second)
        XCTAssertTrue(s.isHealthy(now: 30 * second))
        _ = s.closed("reset", now: 30 * second)
        XCTAssertFalse(s.isHealthy(now: 30 * second))
    }

    // MARK: stop

    func testAfterStopAClosedConnectionIsNotReconnected() throws {
        var s = try readySession()
        s.stop()
        XCTAssertEqual(s.state, .stopped)
        XCTAssertNil(s.refreshAt)
        XCTAssertEqual(s.closed("logged out", now: 1 * second), .none)
        XCTAssertEqual(s.tick(now: 100 * second), .none)
        XCTAssertNil(s.reconnectAt)
    }

    func testStopDuringBackoffCancelsTheReconnect() {
        var s = UpstreamSession(UpstreamSession.Settings(), seed: 1)
        _ = s.start(now: 0)
        guard case .armReconnect(let at) = s.connectFailed("refused", now: 0) else { return XCTFail() }
        s.stop()
        XCTAssertEqual(s.reconnectDue(now: at), .none)
        XCTAssertEqual(s.generation, 1)
    }


    // MARK: liveness from answers (SPEC §8)

    private func probing(every interval: Nanos, answerTimeout: Nanos = 20 * second) -> UpstreamSession.Settings {
        var st = settings(credentials: true)
        st.probeInterval = interval
        st.answerTimeout = answerTimeout
        return st
    }

    func testTheAnswerTimeoutIsTheLongerOfTheRequestTimeoutAndTwoHeartbeats() {
        typealias S = UpstreamSession.Settings
        XCTAssertEqual(S.answerTimeout(requestTimeout: 15 * second, heartbeatIntervalSeconds: 10), 20 * second)
        XCTAssertEqual(S.answerTimeout(requestTimeout: 30 * second, heartbeatIntervalSeconds: 10), 30 * second)
        XCTAssertEqual(S.answerTimeout(requestTimeout: 15 * second, heartbeatIntervalSeconds: 5), 15 * second)
        XCTAssertEqual(S.answerTimeout(requestTimeout: 20 * second, heartbeatIntervalSeconds: 10), 20 * second)
        XCTAssertEqual(S().answerTimeout, 20 * second, "the default: 15 s requests, 10 s heartbeats")
        XCTAssertEqual(S().probeInterval, 0, "off unless the runtime sets it")
    }

    func testTheProbeGoesEveryIntervalOnceReady() throws {
        var s = UpstreamSession(probing(every: 10 * second), seed: 1)
        _ = s.start(now: 0)
        _ = s.connected(now: 0)
        XCTAssertNil(s.probeAt)
        XCTAssertEqual(s.tick(now: 12 * second), .none, "no probe during the handshake")
        _ = s.answered(.hello, generation: 1, try upstreamResponse(hello), now: 12 * second)
        _ = s.answered(.auth, generation: 1, try upstreamResponse(authResult()), now: 12 * second)
        _ = s.answered(.setHeartbeat, generation: 1, try upstreamResponse(ok), now: 12 * second)
        s.received(now: 13 * second)
        XCTAssertEqual(s.answered(.enableCancelOnDisconnect, generation: 1, try upstreamResponse(ok), now: 13 * second), .becomeReady)
        XCTAssertEqual(s.probeAt, 23 * second, "an interval after ready")

        XCTAssertEqual(s.tick(now: 23 * second - 1), .none)
        XCTAssertEqual(s.tick(now: 23 * second), .send(.probe))
        XCTAssertEqual(s.probeAt, 33 * second)
        XCTAssertEqual(s.tick(now: 23 * second), .none, "once per interval")
        for k in 1...5 {
            let at = (23 + 10 * UInt64(k)) * second
            s.received(now: at - 1 * second)
            XCTAssertEqual(s.tick(now: at - 1), .none)
            XCTAssertEqual(s.tick(now: at), .send(.probe), "probe \(k + 1)")
        }
        // A probe's answer is any answer: it changes nothing but the liveness clock.
        s.requestSent(now: 73 * second)
        XCTAssertEqual(s.answered(.probe, generation: 1, .failed(.upstreamTimeout), now: 74 * second), .none)
        XCTAssertEqual(s.state, .ready)

        guard case .armReconnect(let at) = s.closed("reset", now: 75 * second) else { return XCTFail("no reconnect") }
        XCTAssertNil(s.probeAt, "no probe without a session")
        XCTAssertEqual(s.tick(now: 100 * second), .none)
        _ = s.reconnectDue(now: at)
        _ = s.connected(now: at)
        _ = s.answered(.hello, generation: 2, try upstreamResponse(hello), now: at)
        _ = s.answered(.auth, generation: 2, try upstreamResponse(authResult()), now: at)
        _ = s.answered(.setHeartbeat, generation: 2, try upstreamResponse(ok), now: at)
        _ = s.answered(.enableCancelOnDisconnect, generation: 2, try upstreamResponse(ok), now: at)
        XCTAssertEqual(s.probeAt, at + 10 * second, "ready again: probing again")
    }

    func testNoProbeWithoutAnInterval() throws {
        var s = try readySession()
        XCTAssertNil(s.probeAt)
        for k in 1...20 {
            s.received(now: UInt64(k) * 5 * second)
            XCTAssertEqual(s.tick(now: UInt64(k) * 5 * second), .none)
        }
    }

    func testWaitingForAnswersIsTrackedFromTheOldestUnansweredSince() throws {
        var s = try readySession(probing(every: 0))
        XCTAssertNil(s.awaitingAnswerSince)
        s.requestSent(now: 1 * second)
        s.requestSent(now: 2 * second)
        XCTAssertEqual(s.awaitingAnswerSince, 1 * second, "a later request does not move the clock")
        s.answerReceived(now: 3 * second, stillAwaiting: true)
        XCTAssertEqual(s.awaitingAnswerSince, 3 * second, "an answer proves the link: the rest wait since now")
        s.answerReceived(now: 4 * second, stillAwaiting: false)
        XCTAssertNil(s.awaitingAnswerSince, "nothing waits")
        s.answerReceived(now: 5 * second, stillAwaiting: false)
        XCTAssertNil(s.awaitingAnswerSince)
        s.requestSent(now: 6 * second)
        XCTAssertEqual(s.awaitingAnswerSince, 6 * second)
    }

    func testMarketDataWithoutAnswersAbortsTheConnection() throws {
        var s = try readySession(probing(every: 10 * second))
        s.requestSent(now: 1 * second)
        var now: Nanos = 1 * second
        while now < 21 * second {
            now += 500 * millisecond
            s.received(now: now)  // ticker notifications keep coming
            let action = s.tick(now: now)
            if action == .send(.probe) { s.requestSent(now: now) }  // unanswered too
            if now < 21 * second { XCTAssertNotEqual(action, .abort(reason: "upstream not answering"), "at \(now)") }
            else { XCTAssertEqual(action, .abort(reason: "upstream not answering"), "answer_timeout after the oldest request") }
        }
        XCTAssertEqual(s.lastError, "no answer from the upstream for 20000 ms")
        XCTAssertEqual(s.lastErrorAt, 21 * second)
        XCTAssertNil(s.awaitingAnswerSince)
        XCTAssertEqual(s.tick(now: 21 * second + 1), .none, "aborted once; closed follows")
        guard case .armReconnect = s.closed("aborted", now: 21 * second + 1) else { return XCTFail("no reconnect") }
        XCTAssertEqual(s.lastError, "no answer from the upstream for 20000 ms", "the gateway's reason says more than the close")
        XCTAssertEqual(s.lastErrorAt, 21 * second)
    }

    func testATimedOutRequestIsNoAnswer() throws {
        var s = try readySession()
        s.requestSent(now: 0)
        // The request times out at 15 s (-32001): nothing reaches the session, the clock runs on.
        for k: UInt64 in 1...19 {
            let t = k * second
            s.received(now: t)
            XCTAssertEqual(s.tick(now: t), .none)
        }
        s.requestSent(now: 19 * second)
        s.received(now: 20 * second)
        XCTAssertEqual(s.tick(now: 20 * second - 1), .none)
        XCTAssertEqual(s.tick(now: 20 * second), .abort(reason: "upstream not answering"))
    }

    func testAnAnswerRestartsTheClock() throws {
        var s = try readySession()
        s.requestSent(now: 0)
        s.received(now: 15 * second)
        s.answerReceived(now: 15 * second, stillAwaiting: true)
        s.received(now: 30 * second)
        XCTAssertEqual(s.tick(now: 35 * second - 1), .none, "20 s from the answer, not from the request")
        XCTAssertEqual(s.tick(now: 35 * second), .abort(reason: "upstream not answering"))

        var t = try readySession()
        t.requestSent(now: 0)
        t.answerReceived(now: 10 * second, stillAwaiting: false)
        for k in 1...10 {
            t.received(now: 10 * second + UInt64(k) * 10 * second)
            XCTAssertEqual(t.tick(now: 10 * second + UInt64(k) * 10 * second), .none, "nothing waits: nothing to time out")
        }
    }

    func testTheLastErrorIsKeptUntilReady() throws {
        var s = UpstreamSession(settings(credentials: false), seed: 1)
        _ = s.start(now: 0)
        guard case .armReconnect(let first) = s.connectFailed("connection refused", now: 1 * second) else { return XCTFail() }
        XCTAssertEqual(s.lastError, "connection refused")
        XCTAssertEqual(s.lastErrorAt, 1 * second)
        _ = s.reconnectDue(now: first)
        _ = s.connected(now: first)
        XCTAssertEqual(s.lastError, "connection refused", "a connection is not yet a session")
        _ = s.answered(.hello, generation: 2, try upstreamResponse(hello), now: first)
        XCTAssertEqual(s.answered(.setHeartbeat, generation: 2, try upstreamResponse(ok), now: first), .becomeReady)
        XCTAssertNil(s.lastError)
        XCTAssertNil(s.lastErrorAt)
        _ = s.closed("reset by peer", now: first + 5 * second)
        XCTAssertEqual(s.lastError, "reset by peer")
        XCTAssertEqual(s.lastErrorAt, first + 5 * second)
    }

    func testANewConnectionForgetsTheOldOnesUnansweredRequests() throws {
        var s = try readySession()
        s.requestSent(now: 0)
        guard case .armReconnect(let at) = s.closed("reset", now: 5 * second) else { return XCTFail() }
        XCTAssertNil(s.awaitingAnswerSince, "their requests failed with -32000")
        _ = s.reconnectDue(now: at)
        _ = s.connected(now: at)
        XCTAssertNil(s.awaitingAnswerSince)
        XCTAssertEqual(s.tick(now: at + 20 * second), .none)
    }
}
