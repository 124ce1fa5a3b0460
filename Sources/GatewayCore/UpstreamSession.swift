/// The one upstream Deribit session (SPEC §6.5), as decisions:
///
///     stopped ─start─▶ connecting ─connected─▶ authenticating ─hello, auth, set_heartbeat,
///        ▲                 │  ▲                     │            enable_cancel_on_disconnect─▶ ready
///        │           failed│  │reconnect due        │closed                                     │
///        │                 ▼  │                     ▼                                           │
///        └──────stop─── backoff ◀───────────────────┴───────────────────closed──────────────────┘
///
/// Each event returns the one thing the runtime must do. Time is passed in; the backoff's
/// jitter comes from a seeded generator.
package struct UpstreamSession {
    package enum State: String, Sendable {
        case connecting, authenticating, ready, backoff, stopped
    }

    /// The handshake's requests, in order (SPEC §6.5), and the token refresh.
    package enum Step: String, Sendable, Equatable {
        case hello, auth, setHeartbeat, enableCancelOnDisconnect, refresh
        /// `public/test` of the gateway's own while ready: an answer proves the link (SPEC §8).
        case probe
    }

    package enum Action: Sendable, Equatable {
        case none
        /// Open a new connection (the generation has been advanced).
        case connect
        /// Send this step's request.
        case send(Step)
        /// The session is ready: pin the gateway's channels, re-subscribe, release waiting requests.
        case becomeReady
        /// Close the connection (authentication failed); `closed` follows.
        case close(reason: String)
        /// Drop the connection at once (it went silent); `closed` follows.
        case abort(reason: String)
        /// Call `reconnectDue` at this time.
        case armReconnect(at: Nanos)
    }

    package struct Settings: Sendable {
        package var heartbeatIntervalSeconds = 10
        package var reconnectMin: Nanos = .milliseconds(200)
        package var reconnectMax: Nanos = .milliseconds(10_000)
        package var hasCredentials = false
        /// SPEC §7: `upstream.cancel_on_disconnect` enables Deribit's own, connection scope.
        package var cancelOnDisconnect = true

        /// SPEC §8: liveness comes from answers. A request (or the gateway's own probe) sent and
        /// unanswered for this long while the connection is up makes /health 503 and the
        /// gateway reconnect. See `answerTimeout(requestTimeout:heartbeatIntervalSeconds:)`.
        package var answerTimeout: Nanos = .milliseconds(20_000)
        /// How often the gateway sends its own probe while ready; 0 turns it off. The runtime
        /// sets it to the heartbeat interval.
        package var probeInterval: Nanos = 0

        /// Deribit sends a `test_request` every interval: this many intervals of silence mean a dead link.
        package static let silentIntervals: UInt64 = 3
        /// A token that lives longer than this is refreshed this long before it expires; a
        /// shorter one at `shortTokenRefreshShare` of its life.
        package static let refreshMargin: Double = 60
        package static let shortTokenRefreshShare = 0.7
        /// When Deribit gives no `expires_in`.
        package static let defaultTokenLifetime: Double = 900

        package init() {}

        /// The liveness bound: the longer of `request_timeout_ms` and two heartbeat intervals.
        /// A slow answer first times out (-32001, the request is ambiguous); only a link that
        /// answers nothing for this long is dead.
        package static func answerTimeout(requestTimeout: Nanos, heartbeatIntervalSeconds: Int) -> Nanos {
            max(requestTimeout, 2 * UInt64(heartbeatIntervalSeconds) * 1_000_000_000)
        }

        var heartbeatNanos: Nanos { UInt64(heartbeatIntervalSeconds) * 1_000_000_000 }
    }

    package let settings: Settings
    package private(set) var state = State.stopped
    /// Advances with every connection attempt: answers of an older connection are stale.
    package private(set) var generation = 0
    package private(set) var connectedAt: Nanos?
    package private(set) var lastMessageAt: Nanos?
    package private(set) var version: String?
    package private(set) var authenticated = false
    /// Consecutive failed attempts, for the backoff.
    package private(set) var attempt = 0
    package private(set) var reconnectAt: Nanos?
    package private(set) var refreshAt: Nanos?
    /// The last thing that went wrong, and when, for logs and /health (cleared when ready).
    package private(set) var lastError: String?
    package private(set) var lastErrorAt: Nanos?
    /// When the next probe is due while ready.
    package private(set) var probeAt: Nanos?
    /// Since when requests have been waiting with no answer coming (nil: none waits).
    package private(set) var awaitingAnswerSince: Nanos?
    /// Never logged.
    private var refreshToken: String?
    private var random: SplitMix64

    package init(_ settings: Settings, seed: UInt64) {
        self.settings = settings
        random = SplitMix64(seed: seed)
    }

    /// The refresh token for `.send(.refresh)`.
    package var tokenForRefresh: String? { refreshToken }

    // MARK: events

    package mutating func start(now: Nanos) -> Action {
        guard state == .stopped else { return .none }
        return connect()
    }

    package mutating func connectFailed(_ reason: String, now: Nanos) -> Action {
        guard state == .connecting else { return .none }
        record(reason, now: now)
        return backoff(now: now)
    }

    package mutating func connected(now: Nanos) -> Action {
        guard state == .connecting else { return .none }
        state = .authenticating
        connectedAt = now
        lastMessageAt = now
        awaitingAnswerSince = nil
        return .send(.hello)
    }

    /// Any message from the upstream.
    package mutating func received(now: Nanos) {
        lastMessageAt = now
    }

    /// A step's request was answered (or failed). `outcome` of an older generation is ignored.
    package mutating func answered(_ step: Step, generation g: Int, _ outcome: UpstreamOutcome, now: Nanos) -> Action {
        guard g == generation, state == .authenticating || state == .ready else { return .none }
        switch step {
        case .hello:
            if let v = outcome.resultString("version") { version = v }
            return settings.hasCredentials ? .send(.auth) : .send(.setHeartbeat)
        case .auth, .refresh:
            guard let token = outcome.resultString("access_token"), !token.isEmpty else {
                record((step == .auth ? "authentication failed: " : "token refresh failed: ") + (outcome.errorDescription ?? "no access_token"), now: now)
                return .close(reason: lastError!)
            }
            authenticated = true
            refreshToken = outcome.resultString("refresh_token")
            let expiresIn = outcome.resultNumber("expires_in") ?? Settings.defaultTokenLifetime
            // Refresh well before expiry: a minute early for long tokens, at 70% for short ones.
            let after = expiresIn > 2 * Settings.refreshMargin ? expiresIn - Settings.refreshMargin : expiresIn * Settings.shortTokenRefreshShare
            refreshAt = now + .seconds(after)
            return step == .auth ? .send(.setHeartbeat) : .none
        case .setHeartbeat:
            if settings.cancelOnDisconnect && authenticated { return .send(.enableCancelOnDisconnect) }
            return becomeReady(now: now)
        case .enableCancelOnDisconnect:
            return becomeReady(now: now)
        case .probe:
            return .none
        }
    }

    /// The connection closed, whoever closed it.
    package mutating func closed(_ reason: String, now: Nanos) -> Action {
        guard state == .authenticating || state == .ready else { return .none }
        // The gateway's own reason for closing (silence, no answers, failed auth) says more
        // than the close itself.
        if lastError == nil { record(reason, now: now) }
        connectedAt = nil
        authenticated = false
        refreshAt = nil
        probeAt = nil
        awaitingAnswerSince = nil
        refreshToken = nil
        return backoff(now: now)
    }

    /// The backoff timer fired.
    package mutating func reconnectDue(now: Nanos) -> Action {
        guard state == .backoff, let at = reconnectAt else { return .none }
        guard now >= at else { return .armReconnect(at: at) }
        return connect()
    }

    /// A request went out on the connection.
    package mutating func requestSent(now: Nanos) {
        if awaitingAnswerSince == nil { awaitingAnswerSince = now }
    }

    /// A response came. `stillAwaiting`: other requests are still unanswered.
    package mutating func answerReceived(now: Nanos, stillAwaiting: Bool) {
        awaitingAnswerSince = stillAwaiting ? now : nil
    }

    /// Periodic check: token refresh, the probe, and liveness.
    package mutating func tick(now: Nanos) -> Action {
        guard state == .authenticating || state == .ready else { return .none }
        // SPEC §8: liveness comes from answers, not from market data that keeps flowing. A
        // request that timed out is no answer: the clock runs on until one comes.
        if let since = awaitingAnswerSince, now > since, now - since >= settings.answerTimeout {
            lastMessageAt = now
            awaitingAnswerSince = nil
            record("no answer from the upstream for \((now - since) / 1_000_000) ms", now: now)
            return .abort(reason: "upstream not answering")
        }
        // Deribit sends a test_request every interval: silence means a dead link.
        if let last = lastMessageAt, now > last, now - last > Settings.silentIntervals * settings.heartbeatNanos {
            lastMessageAt = now
            record("silent for \(Settings.silentIntervals * UInt64(settings.heartbeatIntervalSeconds)) s", now: now)
            return .abort(reason: "heartbeat timeout")
        }
        if state == .ready, let at = refreshAt, now >= at, refreshToken != nil {
            refreshAt = nil
            return .send(.refresh)
        }
        if state == .ready, let at = probeAt, now >= at {
            probeAt = now + settings.probeInterval
            return .send(.probe)
        }
        return .none
    }

    /// Graceful shutdown: no reconnect after this.
    package mutating func stop() {
        state = .stopped
        reconnectAt = nil
        refreshAt = nil
    }

    // MARK: health

    /// SPEC §5: ok when ready and heard from within 2 × heartbeat interval.
    package func isHealthy(now: Nanos) -> Bool {
        guard state == .ready, let last = lastMessageAt else { return false }
        return now < last || now - last < 2 * settings.heartbeatNanos
    }

    // MARK: inside

    private mutating func record(_ reason: String, now: Nanos) {
        lastError = reason
        lastErrorAt = now
    }

    private mutating func connect() -> Action {
        state = .connecting
        generation += 1
        reconnectAt = nil
        return .connect
    }

    private mutating func becomeReady(now: Nanos) -> Action {
        state = .ready
        attempt = 0
        lastError = nil
        lastErrorAt = nil
        probeAt = settings.probeInterval > 0 ? now + settings.probeInterval : nil
        return .becomeReady
    }

    /// Exponential from `reconnect_min_ms` to `reconnect_max_ms` with jitter: attempt n waits a
    /// uniform time in [base, 2 × base), base = min × 2ⁿ, capped at the max. The first retry is
    /// spread too, so that a fleet of gateways that lost the exchange together does not come back
    /// in step.
    private mutating func backoff(now: Nanos) -> Action {
        guard state != .stopped else { return .none }
        state = .backoff
        let maxDelay = Double(settings.reconnectMax)
        let base = min(maxDelay, Double(settings.reconnectMin) * Double(1 << min(attempt, 30)))
        let jitter = Double(random.next() >> 11) / Double(1 << 53)
        let delay = max(Double(settings.reconnectMin), min(maxDelay, base * (1 + jitter)))
        attempt += 1
        let at = now + UInt64(delay)
        reconnectAt = at
        return .armReconnect(at: at)
    }
}
