/// The gateway's own tokens (SPEC §6.2 `public/auth`): bounded, expiring, revoked with the
/// connection that got them.
///
/// Access tokens let HTTP calls act as a configured client (`Authorization: Bearer`); refresh
/// tokens are redeemed once by `grant_type=refresh_token`. Tokens issued on a WebSocket die
/// with that connection (logout or disconnect); tokens issued over HTTP live out their lifetime.
package struct TokenStore: Sendable {
    package struct Grant: Sendable, Equatable {
        package let client: String
        package let session: ClientID?
        package let expiresAt: Nanos
    }

    /// Deribit's access tokens last 15 minutes; so do the gateway's (`expires_in`).
    package static let accessLifetime: Nanos = .milliseconds(900_000)
    /// A refresh token can be redeemed for a day, once.
    package static let refreshLifetime: Nanos = .milliseconds(86_400_000)
    /// Tokens of each kind held at most; the one closest to expiry goes first (so expired tokens
    /// need no sweep: they are the first to go, and refused on use meanwhile).
    package static let maxTokens = 8192

    private var access: [String: Grant] = [:]
    private var refresh: [String: Grant] = [:]
    private var bySession: [ClientID: [String]] = [:]

    package init() {}

    package var count: (access: Int, refresh: Int) { (access.count, refresh.count) }

    /// Records a fresh pair for `client`. A session that authenticates again loses its old pair.
    package mutating func issue(access a: String, refresh r: String, client: String, session: ClientID?, now: Nanos) {
        if let session { revoke(session: session) }
        access[a] = Grant(client: client, session: session, expiresAt: now + Self.accessLifetime)
        refresh[r] = Grant(client: client, session: session, expiresAt: now + Self.refreshLifetime)
        if let session { bySession[session] = [a, r] }
        Self.bound(&access)
        Self.bound(&refresh)
    }

    /// The client an access token acts as, while it is valid.
    package func client(forAccess token: String, now: Nanos) -> String? {
        guard let g = access[token], g.expiresAt > now else { return nil }
        return g.client
    }

    /// Redeems a refresh token: once, before it expires.
    package mutating func redeem(refresh token: String, now: Nanos) -> String? {
        guard let g = refresh.removeValue(forKey: token), g.expiresAt > now else { return nil }
        return g.client
    }

    /// The connection ended (or logged out): its tokens go with it.
    package mutating func revoke(session: ClientID) {
        for t in bySession.removeValue(forKey: session) ?? [] {
            access[t] = nil
            refresh[t] = nil
        }
    }

    private static func bound(_ tokens: inout [String: Grant]) {
        while tokens.count > maxTokens, let oldest = tokens.min(by: { $0.value.expiresAt < $1.value.expiresAt })?.key {
            tokens[oldest] = nil
        }
    }
}

/// Deribit's `client_signature` grant is valid within a window around its timestamp; inside it
/// the same signed request must not be accepted twice (SPEC §8: a signature seen on one
/// connection cannot be replayed on another).
package struct SignatureReplayGuard: Sendable {
    /// Deribit's window, each side of the gateway's clock.
    package static let windowMilliseconds: Int64 = 60_000
    package static let maxRemembered = 16_384

    private var seen: [String: Int64] = [:]  // key → timestamp (ms)

    package init() {}

    /// Whether this signed request is new. `nowMilliseconds` is wall-clock time.
    package mutating func admit(client: String, timestamp: Int64, nonce: String, signature: String, nowMilliseconds: Int64) -> Bool {
        guard abs(nowMilliseconds - timestamp) <= Self.windowMilliseconds else { return false }
        if seen.count >= Self.maxRemembered {
            // Past the window a replay is refused by its timestamp anyway.
            seen = seen.filter { abs(nowMilliseconds - $0.value) <= Self.windowMilliseconds }
            while seen.count >= Self.maxRemembered, let oldest = seen.min(by: { $0.value < $1.value })?.key { seen[oldest] = nil }
        }
        let key = "\(client)\n\(timestamp)\n\(nonce)\n\(signature.lowercased())"
        guard seen[key] == nil else { return false }
        seen[key] = timestamp
        return true
    }
}

/// Failed authentication, throttled (SPEC §8): each failure makes the connection wait before its
/// next attempt is even checked; a connection is closed after `maxFailuresPerConnection`, and a
/// peer address with `maxFailuresPerPeer` failures within `peerWindow` has each further failing
/// connection closed at its first failure.
package struct AuthThrottle: Sendable {
    package enum Verdict: Sendable, Equatable {
        /// Answer the failure; the next attempt is not checked before `blockedUntil`.
        case answer(blockedUntil: Nanos)
        /// Answer the failure, then close the connection.
        case answerAndClose
    }

    package static let maxFailuresPerConnection = 5
    /// The pause after the nth failure of a connection: n × this, at most `maxDelay`.
    package static let failureDelay: Nanos = .milliseconds(250)
    package static let maxDelay: Nanos = .milliseconds(2_000)
    package static let maxFailuresPerPeer = 20
    package static let peerWindow: Nanos = .milliseconds(60_000)
    /// Peers remembered at most (the oldest are forgotten first).
    package static let maxPeers = 4096

    private var byConnection: [ClientID: Int] = [:]
    private var byPeer: [String: [Nanos]] = [:]

    package init() {}

    package mutating func failed(connection: ClientID, peer: String, now: Nanos) -> Verdict {
        let n = byConnection[connection, default: 0] + 1
        byConnection[connection] = n
        var times = (byPeer[peer] ?? []).filter { now < $0 + Self.peerWindow }
        times.append(now)
        byPeer[peer] = times
        if byPeer.count > Self.maxPeers, let stale = byPeer.min(by: { ($0.value.last ?? 0) < ($1.value.last ?? 0) })?.key {
            byPeer[stale] = nil
        }
        if n >= Self.maxFailuresPerConnection || times.count > Self.maxFailuresPerPeer { return .answerAndClose }
        return .answer(blockedUntil: now + min(Self.maxDelay, Self.failureDelay * UInt64(n)))
    }

    package mutating func connectionClosed(_ connection: ClientID) {
        byConnection[connection] = nil
    }
}
