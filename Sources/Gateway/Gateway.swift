import Foundation
import HTTP1
import JSONRPC
import Logging
import TLS
import Transport

/// The product: one upstream Deribit session shared by many local clients (SPEC §1).
///
/// Everything here is confined to `loop` (STYLE.md habit 7): the upstream connection, every
/// client connection, the subscription registry and the books. An upstream frame is scanned,
/// looked up and written to clients without any thread hop.
public final class Gateway: @unchecked Sendable {
    public let config: GatewayConfig
    public let loop: EventLoop
    let logger: Logger
    let startedAt = monotonicNanos()
    public static let version = "0.1.0"

    var server: HTTPServer?
    var clients: [UInt64: ClientSession] = [:]
    var metrics = GatewayMetrics()
    var stopping = false

    // Upstream session (SPEC §6.5).
    enum UpstreamState: String { case connecting, authenticating, ready, backoff, stopped }
    var upstreamState: UpstreamState = .stopped
    var upstream: WebSocketConnection?
    var upstreamGeneration = 0
    var upstreamConnectedAt: UInt64?
    var upstreamLastMessageAt: UInt64?
    var upstreamVersion: String?
    var upstreamAuthenticated = false
    var upstreamRefreshToken: String?
    var refreshTimer: ScheduledTask?
    var reconnectTimer: ScheduledTask?
    var reconnectAttempt = 0
    var upstreamRTTMillis: Double?
    /// Requests waiting for an upstream response; it issues the upstream ids.
    var pending = PendingRequests()
    /// Where a forwarded request gets its upstream id: it is handed on (and normally written)
    /// before the next request is spliced, so the capacity is reused instead of allocating.
    var spliceBuffer: [UInt8] = []
    /// Forwarded requests that arrived while the upstream was not ready.
    var waitingForReady: [QueuedRequest] = []
    var sweepTimer: ScheduledTask?
    var httpCallCounter: UInt64 = 0
    /// Clients with queued notification frames during the current upstream read.
    var clientsToFlush: [ClientSession] = []
    /// Client reads are paused while the upstream's write buffer is over its high watermark.
    var clientsPaused = false
    var tlsContext: TLSContext?

    // Credits (SPEC §6.6).
    var defaultBucket: TokenBucket
    var subscribeBucket: TokenBucket
    var matchingBucket: TokenBucket
    /// Longest a request may wait for credits before the gateway answers 10028 itself.
    let maxCreditWaitSeconds = 0.25

    // Subscriptions (SPEC §6.4).
    var channels: [String: ChannelEntry] = [:]
    var channelsLowercased: [String: String] = [:]
    /// `channels` indexed by the hash of the name's bytes, for the notification hot path.
    var channelsByHash: [UInt64: [ChannelEntry]] = [:]

    // Local tokens (SPEC §6.2 public/auth).
    var accessTokens: [String: String] = [:]
    var refreshTokens: [String: String] = [:]

    let maxPendingPerClient = 1024

    // Cancel-on-disconnect (SPEC §7): which client created which open order (Orders.swift).
    var orderLedger = OrderLedger()
    var lateOrderRequests: [UInt64: LateOrderRequest] = [:]

    public init(config: GatewayConfig, loop: EventLoop, logger: Logger, tlsContext: TLSContext? = nil) {
        self.config = config
        self.loop = loop
        self.logger = logger
        self.tlsContext = tlsContext
        let now = monotonicNanos()
        let c = config.upstream.credits
        defaultBucket = TokenBucket(capacity: Double(c.max), refillPerSecond: Double(c.refillPerSecond), now: now)
        subscribeBucket = TokenBucket(capacity: Double(c.subscribeMax), refillPerSecond: Double(c.refillPerSecond), now: now)
        matchingBucket = TokenBucket(capacity: Double(c.matchingEngineBurst), refillPerSecond: Double(c.matchingEngineRate), now: now)
    }

    /// Binds the listener and starts the upstream session. Call on the loop.
    @discardableResult
    public func start() throws -> SocketAddress {
        loop.assertInEventLoop()
        guard let address = SocketAddress(host: config.listen.host == "localhost" ? "127.0.0.1" : config.listen.host, port: Int(config.listen.port)) else {
            throw TransportError.invalidURL("listen \(config.listen)")
        }
        let limits = HTTPServerLimits()
        let server = HTTPServer(address: address, loop: loop, limits: limits) { [unowned self] request, context in
            self.route(request, context)
        }
        let bound = try server.start()
        self.server = server
        sweepTimer = loop.scheduleRepeating(every: .milliseconds(50)) { [weak self] in self?.sweep() }
        connectUpstream()
        return bound
    }

    var now: UInt64 { monotonicNanos() }

    // MARK: HTTP front door (SPEC §5)

    func route(_ request: HTTPRequest, _ context: HTTPRequestContext) -> HTTPServerAction {
        switch (request.method, request.path) {
        case ("GET", "/ws/api/v2"):
            guard request.headers["Upgrade"] != nil else {
                return .respond(jsonResponse(400, #"{"error":"websocket upgrade expected"}"#))
            }
            if let origin = request.headers["Origin"], !config.allowedOrigins.contains(origin) {
                // SPEC §4: browsers send Origin; a web page must not reach the gateway.
                logger.notice("refused WebSocket upgrade from origin \(origin)")
                return .respond(jsonResponse(403, #"{"error":"origin not allowed"}"#))
            }
            if stopping {
                return .respond(jsonResponse(503, #"{"error":"shutting down"}"#))
            }
            if clients.count >= config.limits.maxClients {
                return .respond(jsonResponse(503, #"{"error":"too many clients"}"#))
            }
            let limits = WebSocketLimits(
                maxFrameBytes: config.limits.maxMessageBytes, maxMessageBytes: config.limits.maxMessageBytes,
                maxBufferedBytes: config.limits.clientBufferBytes)
            return .upgradeToWebSocket(limits) { [unowned self] ws in self.clientConnected(ws) }
        case ("GET", "/health"):
            let (status, body) = healthBody()
            return .respond(jsonResponse(status, body))
        case ("GET", "/metrics"):
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: "text/plain; version=0.0.4; charset=utf-8")
            return .respond(HTTPResponse(status: 200, headers: headers, body: Array(metricsText().utf8)))
        case ("POST", "/api/v2"), ("POST", "/api/v2/"):
            return httpJSONRPC(body: request.body, request: request)
        case ("GET", let path) where path.hasPrefix("/api/v2/public/") || path.hasPrefix("/api/v2/private/"):
            return httpGetJSONRPC(request)
        default:
            return .respond(jsonResponse(404, #"{"error":"not found"}"#))
        }
    }

    func jsonResponse(_ status: Int, _ body: String) -> HTTPResponse {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        return HTTPResponse(status: status, headers: headers, body: Array(body.utf8))
    }

    // MARK: clients

    func clientConnected(_ ws: WebSocketConnection) {
        let session = ClientSession(ws: ws, anonymousScope: config.anonymousScope == .none ? .none : config.anonymousScope)
        clients[ws.id] = session
        ws.onText = { [unowned self] _, bytes in self.clientMessage(session, bytes) }
        ws.onClose = { [unowned self] _, event in self.clientClosed(session, event) }
        if clientsPaused { ws.pauseReading() }
        logger.debug("client connected", metadata: ["conn.id": "\(ws.id)", "peer": "\(ws.tcp.peer.map { "\($0)" } ?? "?")"])
    }

    func clientClosed(_ session: ClientSession, _ event: WebSocketCloseEvent) {
        guard !session.closed else { return }
        session.closed = true
        clients[session.id] = nil
        session.heartbeatTimer?.cancel()
        session.testRequestDeadline?.cancel()
        if let token = session.accessToken { accessTokens[token] = nil }
        let reason = disconnectReason(session, event)
        metrics.clientDisconnects[reason, default: 0] += 1
        logger.info("client disconnected", metadata: [
            "conn.id": "\(session.id)", "client": "\(session.label)", "reason": "\(reason)", "close": "\(event)",
        ])
        releaseAllChannels(of: session)
        clientDisconnectedForOrders(session, reason: reason)
    }

    func disconnectReason(_ session: ClientSession, _ event: WebSocketCloseEvent) -> String {
        if session.loggedOut { return "logout" }
        if let r = session.closeReason { return r }
        switch event.code {
        case 1008 where event.reason == "slow consumer": return "slow_consumer"
        case 1002, 1003, 1007, 1009: return "protocol_error"
        case 1001 where event.initiatedLocally: return "shutdown"
        default: return "closed"
        }
    }

    /// Closes a client with a reason recorded for logs and metrics.
    func disconnect(_ session: ClientSession, code: UInt16, reason: String, metricReason: String) {
        guard !session.closed else { return }
        session.closeReason = metricReason
        session.ws.close(code: code, reason: reason)
        // The session ends now: its cancel-on-disconnect and channels do not wait for a peer
        // that may never answer the close handshake.
        clientClosed(session, WebSocketCloseEvent(code: code, reason: reason, initiatedLocally: true))
    }

    // MARK: client messages (SPEC §6.1)

    func clientMessage(_ session: ClientSession, _ bytes: [UInt8], httpDefaultID: Bool = false) {
        guard !session.closed else { return }
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
            countRequest(session, .refused)
            session.send(JSONRPCWire.error(id: JSONRPCWire.nullID, code: error.jsonRPCCode, message: error.jsonRPCMessage))
            return
        }
        let idBytes: [UInt8] = scan.id.map { Array(bytes[$0]) } ?? JSONRPCWire.nullID
        // Duplicate keys could make the upstream read another id or method than we did.
        guard let methodRange = scan.method, scan.id != nil, !scan.hasDuplicateKeys else {
            countRequest(session, .refused)
            session.send(JSONRPCWire.error(id: idBytes, code: JSONRPCErrorCode.invalidRequest, message: "Invalid Request"))
            return
        }
        let method = scan.methodHasEscapes
            ? MethodPolicy.traits(of: JSONStringDecoder.decode(bytes[methodRange]) ?? "")
            : bytes.withUnsafeBytes { MethodPolicy.traits(of: UnsafeRawBufferPointer(rebasing: $0[methodRange])) }
        let request = ClientRequest(session: session, id: idBytes, method: method, bytes: bytes, scan: scan, receivedAt: wallMicros())
        if handleLocally(request) {
            countRequest(session, .local)
            return
        }
        guard method.isDeribitMethod else {
            refuse(request, code: JSONRPCErrorCode.methodNotFound, message: "Method not found")
            return
        }
        guard authorize(request, required: method.requiredScope) else { return }
        forward(request)
    }

    /// SPEC §6.3: 13009 for an unauthenticated client, -32002 for an authenticated one.
    func authorize(_ request: ClientRequest, required: Scope) -> Bool {
        let session = request.session
        if session.scope.covers(required) { return true }
        if session.isAuthenticated {
            refuse(request, code: JSONRPCErrorCode.forbiddenByPolicy, message: "forbidden",
                   data: #"{"reason":"scope \#(session.scope.name) does not allow \#(request.methodName)"}"#)
        } else {
            refuse(request, code: 13009, message: "unauthorized")
        }
        return false
    }

    func refuse(_ request: ClientRequest, code: Int, message: String, data: String? = nil) {
        countRequest(request.session, .refused)
        request.session.send(errorBytes(request, code: code, message: message, data: data))
    }

    /// `deribit_gateway_requests_total{client, outcome}`, without hashing the label per request.
    func countRequest(_ session: ClientSession, _ outcome: GatewayMetrics.Outcome) {
        if let slot = session.metricSlot {
            metrics.request(slot: slot, outcome)
        } else {
            let slot = metrics.requestSlot(for: session.label)
            session.metricSlot = slot
            metrics.request(slot: slot, outcome)
        }
    }

    func errorBytes(_ request: ClientRequest, code: Int, message: String, data: String? = nil) -> [UInt8] {
        JSONRPCWire.error(id: request.id, code: code, message: message, data: data.map { Array($0.utf8) })
    }

    /// A Deribit-shaped local result: `usIn`, `usOut`, `usDiff`, `testnet` like the exchange sends.
    func resultBytes(_ request: ClientRequest, _ resultJSON: String) -> [UInt8] {
        resultBytes(id: request.id, receivedAt: request.receivedAt, Array(resultJSON.utf8))
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

/// One request from a client, as the router sees it.
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

    /// Fully decoded params: only for the few methods the gateway answers itself.
    func params() -> [String: Any] {
        guard let r = scan.params,
              let obj = try? JSONSerialization.jsonObject(with: Data(bytes[r]), options: [.fragmentsAllowed]) as? [String: Any]
        else { return [:] }
        return obj
    }
}
