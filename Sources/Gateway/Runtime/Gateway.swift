import Foundation
import GatewayCore
import HTTP1
import JSONRPC
import Logging
import TLS
import Transport

/// The product: one upstream Deribit session shared by many local clients (SPEC §1).
///
/// This is the runtime: it owns the Transport objects (listener, upstream and client
/// connections, timers), turns their callbacks into events for the core's state machines
/// (`UpstreamSession`, `RequestRouter`, `SubscriptionRegistry`, `OrderTracker`,
/// `ClientHeartbeat`, `ShutdownPlan`) and carries out the actions they return. Everything
/// here is confined to `loop` (STYLE.md habit 7): an upstream frame is scanned, looked up and
/// written to clients without any thread hop.
public final class Gateway: @unchecked Sendable {
    public let config: GatewayConfig
    public let loop: EventLoop
    /// Time and timers: the system clock in production, a manual one in tests.
    let clock: any GatewayClock
    let logger: Logger
    let startedAt: Nanos
    public static let version = "0.1.0"

    var server: HTTPServer?
    var sessions = SessionTable()
    var metrics = GatewayMetrics()
    /// WebSocket connections whose transport has not closed yet (the shutdown waits for them).
    var openTransports = 0
    var httpCallCounter: UInt64 = 0
    var sweepTimer: (any GatewayTimer)?

    // The upstream (SPEC §6.5).
    var session: UpstreamSession
    var upstream: WebSocketConnection?
    var reconnectTimer: (any GatewayTimer)?
    var router: RequestRouter
    var creditTimer: (any GatewayTimer)?
    var creditTimerAt: Nanos?
    var upstreamRTTMillis: Double?
    let tlsContext: TLSContext?
    /// Clients with queued notification frames during the current upstream read.
    var clientsToFlush: [ClientSession] = []
    /// Client reads pause while the upstream's write buffer is over its high watermark.
    var backpressure = UpstreamBackpressure()

    // Subscriptions (SPEC §6.4) and cancel-on-disconnect (SPEC §7).
    var subscriptions = SubscriptionRegistry()
    var orders = OrderTracker()
    var cancels = CancelQueue()

    /// What every anonymous client together may send upstream (SPEC §8 `anonymous_limits`).
    var anonymousBucket: TokenBucket

    /// SPEC §4 `allowed_origins`, compared as RFC 6454 says.
    let originPolicy: OriginPolicy

    // Local credentials (SPEC §6.2 public/auth, §8).
    var tokens = TokenStore()
    var signatures = SignatureReplayGuard()
    var authThrottle = AuthThrottle()

    // Graceful shutdown (SPEC §8).
    var shutdownPlan: ShutdownPlan?
    var shutdownTimer: (any GatewayTimer)?
    var shutdownDone: (@Sendable (Int32) -> Void)?
    var stopping = false
    /// Set when the shutdown finishes: the sweep does not re-arm.
    var sweepStopped = false

    public init(config: GatewayConfig, loop: EventLoop, logger: Logger, tlsContext: TLSContext? = nil, clock: any GatewayClock = SystemClock()) {
        self.config = config
        self.loop = loop
        self.clock = clock
        originPolicy = OriginPolicy(allowed: config.allowedOrigins)
        let total = config.anonymousLimits.totalRateLimit
        anonymousBucket = TokenBucket(capacity: Double(total.burst), refillPerSecond: total.perSecond, now: clock.now)
        self.logger = logger
        self.tlsContext = tlsContext
        let now = clock.now
        startedAt = now
        let up = config.upstream
        var s = UpstreamSession.Settings()
        s.heartbeatIntervalSeconds = up.heartbeatIntervalSeconds
        s.reconnectMin = .milliseconds(up.reconnectMinMilliseconds)
        s.reconnectMax = .milliseconds(up.reconnectMaxMilliseconds)
        s.hasCredentials = up.credentials != nil
        s.cancelOnDisconnect = up.cancelOnDisconnect
        s.answerTimeout = UpstreamSession.Settings.answerTimeout(
            requestTimeout: .milliseconds(up.requestTimeoutMilliseconds), heartbeatIntervalSeconds: up.heartbeatIntervalSeconds)
        s.probeInterval = .milliseconds(up.heartbeatIntervalSeconds * 1000)
        session = UpstreamSession(s, seed: UInt64.random(in: 0...UInt64.max))
        var r = RequestRouter.Settings()
        r.requestTimeout = .milliseconds(up.requestTimeoutMilliseconds)
        r.credits.defaultCost = up.credits.defaultCost
        r.credits.max = up.credits.max
        r.credits.refillPerSecond = up.credits.refillPerSecond
        r.credits.subscribeCost = up.credits.subscribeCost
        r.credits.subscribeMax = up.credits.subscribeMax
        r.credits.matchingEngineRate = up.credits.matchingEngineRate
        r.credits.matchingEngineBurst = up.credits.matchingEngineBurst
        router = RequestRouter(r, now: now)
    }

    /// Binds the listener and starts the upstream session. Call on the loop.
    @discardableResult
    public func start() throws -> SocketAddress {
        loop.assertInEventLoop()
        guard let address = SocketAddress(host: config.listen.host == "localhost" ? "127.0.0.1" : config.listen.host, port: Int(config.listen.port)) else {
            throw TransportError.invalidURL("listen \(config.listen)")
        }
        // docs/CONFIG.md: `max_message_bytes` bounds an HTTP body as it bounds a WebSocket message.
        // `max_clients` bounds every kind of connection: WebSocket clients (counted by the
        // gateway) and connections still speaking HTTP (counted by the server).
        let limits = HTTPServerLimits(parser: HTTPParserLimits(maxBodyBytes: config.limits.maxMessageBytes),
                                      maxConnections: config.limits.maxClients)
        let server = HTTPServer(address: address, loop: loop, limits: limits) { [unowned self] request, context in
            self.route(request, context)
        }
        let bound = try server.start()
        self.server = server
        armSweep()
        perform(session.start(now: now))
        return bound
    }

    /// How often request timeouts, departed clients and the upstream's liveness are checked.
    static let sweepInterval: Nanos = .milliseconds(50)

    /// The one place the runtime reads the clock for the core.
    var now: Nanos { clock.now }

    /// Runs `work` on the loop at `deadline` (the clock's time).
    func schedule(at deadline: Nanos, _ work: @escaping @Sendable () -> Void) -> any GatewayTimer {
        clock.schedule(at: deadline, on: loop, work)
    }

    private func armSweep() {
        sweepTimer = clock.scheduleRepeating(every: Self.sweepInterval, on: loop) { [weak self] in
            guard let self, !self.sweepStopped else { return }
            self.sweep()
        }
    }

    // MARK: clients

    func clientConnected(_ ws: WebSocketConnection) {
        loop.assertInEventLoop()
        let s = sessions.insert { ClientSession(id: $0, webSocket: ws, scope: config.anonymousScope, logger: logger) }
        s.limitAnonymous(config.anonymousLimits.rateLimit, now: now)
        openTransports += 1
        ws.onText = { [unowned self] _, bytes in self.clientMessage(s, bytes) }
        ws.onClose = { [unowned self] _, event in
            self.clientClosed(s, event)
            self.openTransports -= 1
            self.shutdownEvent { $0.clientsChanged(open: self.openTransports, now: $1) }
        }
        if backpressure.clientsPaused { ws.pauseReading() }
        s.logger.debug("client connected", metadata: ["peer": "\(ws.tcp.peer.map { "\($0)" } ?? "?")"])
    }

    /// The session ends: its channels are released and its cancel-on-disconnect applies.
    func clientClosed(_ s: ClientSession, _ event: WebSocketCloseEvent) {
        guard !s.closed else { return }
        s.closed = true
        sessions.remove(s.id)
        s.heartbeatTimer?.cancel()
        tokens.revoke(session: s.id)
        authThrottle.connectionClosed(s.id)
        let reason = disconnectReason(s, event)
        metrics.clientDisconnects[reason, default: 0] += 1
        s.logger.info("client disconnected", metadata: ["client": "\(s.label)", "reason": "\(reason)", "close": "\(event)"])
        apply(subscriptions.releaseAll(of: s.id, gone: true))
        enqueueCancels(orders.clientDisconnected(s.id, label: s.label, cancels: s.cancelsOnDisconnect, now: now))
    }

    func disconnectReason(_ s: ClientSession, _ event: WebSocketCloseEvent) -> String {
        if s.loggedOut { return "logout" }
        if let r = s.closeReason { return r }
        switch event.code {
        case 1008 where event.reason == "slow consumer": return "slow_consumer"
        case 1002, 1003, 1007, 1009: return "protocol_error"
        case 1001 where event.initiatedLocally: return "shutdown"
        default: return "closed"
        }
    }

    /// Closes a client with a reason recorded for logs and metrics.
    func disconnect(_ s: ClientSession, code: UInt16, reason: String, metricReason: String) {
        guard !s.closed, let ws = s.webSocket else { return }
        s.closeReason = metricReason
        ws.close(code: code, reason: reason)
        // The session ends now: its cancel-on-disconnect and channels do not wait for a peer
        // that may never answer the close handshake.
        clientClosed(s, WebSocketCloseEvent(code: code, reason: reason, initiatedLocally: true))
    }

    // MARK: client messages (SPEC §6.1)

    func clientMessage(_ s: ClientSession, _ bytes: [UInt8], httpDefaultID: Bool = false) {
        loop.assertInEventLoop()
        guard !s.closed else { return }
        let receivedBytes = bytes.count
        var bytes = bytes
        var scan: JSONRPCScan
        do throws(JSONRPCScanError) {
            scan = try JSONRPCScanner.scan(bytes)
            if httpDefaultID && scan.id == nil {
                // HTTP callers may leave the id out: answer with "id":null like Deribit's HTTP API.
                bytes = JSONRPCSplice.replacing(scan.objectStart + 1 ..< scan.objectStart + 1, in: bytes, with: Array("\"id\":null,".utf8))
                scan = try JSONRPCScanner.scan(bytes)
            }
        } catch {
            // -32700 with a null id for non-JSON; -32600 for arrays and scalars.
            refuse(s, id: JSONRPCWire.nullID, .malformed(error))
            return
        }
        let idBytes: [UInt8] = scan.id.map { Array(bytes[$0]) } ?? JSONRPCWire.nullID
        // Duplicate keys could make the upstream read another id or method than we did.
        guard let methodRange = scan.method, scan.id != nil, !scan.hasDuplicateKeys else {
            refuse(s, id: idBytes, .invalidRequest)
            return
        }
        let method = scan.methodHasEscapes
            ? MethodPolicy.traits(of: JSONStringDecoder.decode(bytes[methodRange]) ?? "")
            : bytes.withUnsafeBytes { MethodPolicy.traits(of: UnsafeRawBufferPointer(rebasing: $0[methodRange])) }
        let request = ClientRequest(session: s, id: idBytes, method: method, bytes: bytes, scan: scan, receivedAt: wallMicros())
        // SPEC §6.1: over 32,000 bytes as the client sent it, whatever the method, except the
        // subscriptions, which are split.
        if receivedBytes > RequestRouter.Settings.maxUpstreamRequestBytes && !method.isSplit {
            refuse(request, .requestTooLarge)
            return
        }
        if let local = method.local {
            answerLocally(request, local)
            return
        }
        guard method.isDeribitMethod else {
            refuse(request, .methodNotFound)
            return
        }
        guard authorize(request, required: method.requiredScope) else { return }
        forward(request)
    }

    /// SPEC §6.3: 13009 for an unauthenticated client, -32002 for an authenticated one.
    func authorize(_ request: ClientRequest, required: Scope) -> Bool {
        let s = request.session
        if s.scope.covers(required) { return true }
        if s.isAuthenticated {
            refuse(request, .forbidden(reason: "scope \(s.scope.name) does not allow \(request.methodName)"))
        } else {
            refuse(request, .unauthorized)
        }
        return false
    }

    func refuse(_ request: ClientRequest, _ error: GatewayError) {
        refuse(request.session, id: request.id, error)
    }

    func refuse(_ s: ClientSession, id: [UInt8], _ error: GatewayError) {
        countRequest(s, .refused)
        s.send(error.response(id: id))
        endIfHTTP(s)
    }

    /// A local answer: Deribit-shaped, with `usIn`, `usOut`, `usDiff` and `testnet`.
    func reply(_ request: ClientRequest, _ result: JSONValue) {
        countRequest(request.session, .local)
        request.session.send(resultBytes(id: request.id, receivedAt: request.receivedAt, result.bytes))
        endIfHTTP(request.session)
    }

    /// An HTTP call's session lives for its one answer.
    func endIfHTTP(_ s: ClientSession) {
        if !s.link.isWebSocket && s.closed { sessions.remove(s.id) }
    }

    /// `deribit_gateway_requests_total{client, outcome}`, without hashing the label per request.
    func countRequest(_ s: ClientSession, _ outcome: GatewayMetrics.Outcome) {
        let slot: Int
        if let cached = s.metricSlot {
            slot = cached
        } else {
            slot = metrics.requestSlot(for: s.label)
            s.metricSlot = slot
        }
        metrics.request(slot: slot, outcome)
    }

    func resultBytes(id: [UInt8], receivedAt: UInt64, _ resultJSON: [UInt8]) -> [UInt8] {
        let out = wallMicros()
        return JSONRPCWire.result(id: id, resultJSON: resultJSON, extra: [
            ("usIn", Array(String(receivedAt).utf8)), ("usOut", Array(String(out).utf8)),
            ("usDiff", Array(String(out &- receivedAt).utf8)), ("testnet", Array((upstreamTestnet ? "true" : "false").utf8)),
        ])
    }

    /// Deribit's `testnet` flag: every upstream but production (the test net, the simulator).
    var upstreamTestnet: Bool { config.upstream.url.host != "www.deribit.com" }
}

/// Text a client chose, for a log line: JSON-quoted, so control characters and quotes are
/// escaped and a newline can never start a forged line.
func quotedForLog(_ text: String) -> String { JSONValue.string(text).text }

/// One request from a client, as the runtime sees it.
struct ClientRequest {
    let session: ClientSession
    /// The client's id, byte-for-byte (number, string or null).
    let id: [UInt8]
    let method: MethodTraits
    let bytes: [UInt8]
    let scan: JSONRPCScan
    let receivedAt: UInt64

    /// The method's name, escapes decoded: for error messages, built only when one is sent.
    var methodName: String {
        guard let r = scan.method else { return "" }
        return scan.methodHasEscapes ? (JSONStringDecoder.decode(bytes[r]) ?? "") : String(decoding: bytes[r], as: UTF8.self)
    }

    /// A member of `params`, as its raw span.
    func param(_ key: String) -> Range<Int>? {
        guard let p = scan.params else { return nil }
        return JSONObjectReader.member(key, inObject: p, of: bytes)
    }

    func stringParam(_ key: String) -> String? { param(key).flatMap { JSONScalar.string(bytes, $0) } }

    func numberParam(_ key: String) -> Double? { param(key).flatMap { JSONScalar.double(bytes, $0) } }

    /// `params.channels` when it is an array of strings.
    func channelsParam() -> [String]? { param("channels").flatMap { JSONArrayOfStrings.parse(bytes, range: $0) } }
}
