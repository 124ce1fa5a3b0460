import GatewayCore
import JSONRPC
import Logging
import Transport

/// One strategy's WebSocket connection to the gateway, or one HTTP JSON-RPC call.
///
/// Confined to the gateway's event loop, like everything it points to.
final class ClientSession: @unchecked Sendable {
    /// How answers reach the client.
    enum Link {
        case webSocket(WebSocketConnection)
        /// One HTTP call: where its one response goes (nil once sent).
        case http
    }

    let id: ClientID
    let link: Link
    private var httpResponder: (([UInt8]) -> Void)?
    /// `conn.id`, and `client` once authenticated: set once, not per log line.
    private(set) var logger: Logger
    /// The configured client it authenticated as; nil while anonymous.
    private(set) var client: GatewayConfig.Client?
    /// Where `label`'s request counts are (`GatewayMetrics.requestSlot`), once looked up.
    var metricSlot: Int?
    var scope: Scope
    /// `public/hello` data: logged and shown in /health, never a metric label.
    var helloName: String?
    var helloVersion: String?
    /// Forwarded requests still waiting for the upstream.
    var pendingCount = 0
    /// Per-connection cancel-on-disconnect flag (SPEC §7).
    var cancelOnDisconnect = false
    var rateLimit: TokenBucket?
    var closed = false
    /// Notification frames are queued for it and wait for `Gateway.flushClients`.
    var needsFlush = false
    /// Set by `private/logout`: the disconnect does not cancel orders.
    var loggedOut = false
    /// Why the gateway closed it (heartbeat, shutdown, …), for logs and metrics.
    var closeReason: String?
    /// SPEC §6.2 heartbeat emulation, and the timer that drives it.
    var heartbeat = ClientHeartbeat()
    var heartbeatTimer: (any GatewayTimer)?
    /// Where it connects from (the address, without the port): failed authentication is also
    /// throttled per peer.
    let peer: String
    /// After a failed authentication, no attempt is checked before this time (SPEC §8).
    var authBlockedUntil: Nanos?

    /// An anonymous session's rate limit (SPEC §8); replaced by the client's own on authentication.
    func limitAnonymous(_ limit: GatewayConfig.RateLimit, now: Nanos) {
        rateLimit = TokenBucket(capacity: Double(limit.burst), refillPerSecond: limit.perSecond, now: now)
    }

    init(id: ClientID, webSocket ws: WebSocketConnection, scope: Scope, logger: Logger) {
        self.id = id
        link = .webSocket(ws)
        peer = ws.tcp.peer?.host ?? "?"
        self.scope = scope
        var l = logger
        l[metadataKey: "conn.id"] = "\(ws.id)"
        self.logger = l
    }

    /// A transient session for one HTTP JSON-RPC request (SPEC §5).
    init(id: ClientID, httpConnection: UInt64, peer: String, scope: Scope, logger: Logger, responder: @escaping ([UInt8]) -> Void) {
        self.id = id
        link = .http
        self.peer = peer
        self.scope = scope
        httpResponder = responder
        var l = logger
        l[metadataKey: "conn.id"] = "http-\(httpConnection)"
        self.logger = l
    }

    var webSocket: WebSocketConnection? {
        if case .webSocket(let ws) = link { return ws }
        return nil
    }

    /// The bounded metric label: a configured client name or `anonymous`.
    var label: String { client?.name ?? "anonymous" }

    var isAuthenticated: Bool { client != nil }

    /// Whether this session's disconnect cancels its orders (SPEC §7).
    var cancelsOnDisconnect: Bool { cancelOnDisconnect && !loggedOut }

    /// The client authenticated (or, for an HTTP call, came with a valid credential).
    func authenticated(as c: GatewayConfig.Client, now: Nanos) {
        client = c
        metricSlot = nil
        scope = c.scope
        cancelOnDisconnect = link.isWebSocket ? c.cancelOnDisconnect : false
        rateLimit = c.rateLimit.map { TokenBucket(capacity: Double($0.burst), refillPerSecond: $0.perSecond, now: now) }
        logger[metadataKey: "client"] = "\(c.name)"
    }

    func send(_ bytes: [UInt8]) {
        guard !closed else { return }
        switch link {
        case .webSocket(let ws):
            ws.sendText(bytes)
        case .http:
            guard let responder = httpResponder else { return }
            httpResponder = nil
            closed = true
            responder(bytes)
        }
    }

    /// `bytes` with `range` (the upstream's id) replaced by `replacement` (the client's id).
    func send(_ bytes: [UInt8], replacing range: Range<Int>, with replacement: [UInt8]) {
        guard !closed else { return }
        switch link {
        case .webSocket(let ws): ws.sendText(bytes, replacing: range, with: replacement)
        case .http: send(JSONRPCSplice.replacing(range, in: bytes, with: replacement))
        }
    }
}

extension ClientSession.Link {
    var isWebSocket: Bool {
        if case .webSocket = self { return true }
        return false
    }
}

/// The sessions by `ClientID`: a slot table, so that the fan-out finds a holder by an index
/// instead of a hash lookup, and an id whose session has gone finds nothing.
struct SessionTable {
    private var slots: [ClientSession?] = []
    private var generations: [UInt32] = []
    private var free: [Int] = []
    /// WebSocket clients.
    private(set) var webSocketCount = 0
    /// HTTP JSON-RPC calls waiting for their answer.
    var httpCallCount: Int { occupied - webSocketCount }
    private var occupied = 0

    /// Takes a slot and makes the session that fills it.
    mutating func insert(_ make: (ClientID) -> ClientSession) -> ClientSession {
        let slot: Int
        if let s = free.popLast() {
            slot = s
        } else {
            slot = slots.count
            slots.append(nil)
            generations.append(0)
        }
        generations[slot] &+= 1
        let session = make(ClientID(slot: slot, generation: generations[slot]))
        slots[slot] = session
        occupied += 1
        if session.link.isWebSocket { webSocketCount += 1 }
        return session
    }

    subscript(id: ClientID) -> ClientSession? {
        let slot = id.slot
        guard slot < slots.count, let s = slots[slot], s.id == id else { return nil }
        return s
    }

    mutating func remove(_ id: ClientID) {
        guard let s = self[id] else { return }
        slots[id.slot] = nil
        free.append(id.slot)
        occupied -= 1
        if s.link.isWebSocket { webSocketCount -= 1 }
    }

    /// The WebSocket clients, in slot order.
    var webSockets: [ClientSession] { slots.compactMap { $0?.link.isWebSocket == true ? $0 : nil } }
}
