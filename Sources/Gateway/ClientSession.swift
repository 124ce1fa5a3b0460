import Transport
import JSONRPC

/// One strategy's WebSocket connection to the gateway, or one HTTP JSON-RPC call.
///
/// Confined to the gateway's event loop, like everything it points to.
final class ClientSession: @unchecked Sendable {
    /// Nil only for an HTTP call, which never reaches WebSocket-only code paths.
    let ws: WebSocketConnection!
    let id: UInt64
    /// For an HTTP call: where its one response goes.
    private var httpResponder: (([UInt8]) -> Void)?
    /// The configured client it authenticated as; nil while anonymous.
    var client: GatewayConfig.Client? {
        didSet { metricSlot = nil }
    }
    /// Where `label`'s request counts are (`GatewayMetrics.requestSlot`), once looked up.
    var metricSlot: Int?
    var scope: Scope
    /// `public/hello` data: logged and shown in /health, never a metric label.
    var helloName: String?
    var helloVersion: String?
    /// Forwarded requests still waiting for the upstream.
    var pendingCount = 0
    /// Channels this client holds.
    var channels: Set<String> = []
    /// Per-connection cancel-on-disconnect flag (SPEC §7).
    var cancelOnDisconnect: Bool
    var rateLimit: TokenBucket?
    var closed = false
    /// Notification frames are queued for it and wait for `Gateway.flushClients`.
    var needsFlush = false
    /// Set by `private/logout`: the disconnect does not cancel orders.
    var loggedOut = false
    /// Why the gateway closed it (heartbeat, shutdown, …), for logs and metrics.
    var closeReason: String?

    // Heartbeat emulation (SPEC §6.2).
    var heartbeatInterval: Int?
    var heartbeatTimer: ScheduledTask?
    var testRequestDeadline: ScheduledTask?

    // Gateway-issued tokens of this connection.
    var accessToken: String?

    init(ws: WebSocketConnection, anonymousScope: Scope) {
        self.ws = ws
        self.id = ws.id
        self.scope = anonymousScope
        self.cancelOnDisconnect = false
    }

    /// The bounded metric label: a configured client name or `anonymous`.
    var label: String { client?.name ?? "anonymous" }

    var isAuthenticated: Bool { client != nil }

    /// A transient session for one HTTP JSON-RPC request (SPEC §5).
    init(httpCallID: UInt64, scope: Scope, client: GatewayConfig.Client?, responder: @escaping ([UInt8]) -> Void) {
        self.ws = nil
        self.id = httpCallID
        self.scope = scope
        self.client = client
        self.cancelOnDisconnect = false
        self.httpResponder = responder
    }

    func send(_ bytes: [UInt8]) {
        guard !closed else { return }
        if let responder = httpResponder {
            httpResponder = nil
            closed = true
            responder(bytes)
            return
        }
        ws.sendText(bytes)
    }

    /// `bytes` with `range` (the upstream's id) replaced by `replacement` (the client's id).
    func send(_ bytes: [UInt8], replacing range: Range<Int>, with replacement: [UInt8]) {
        guard !closed else { return }
        if httpResponder != nil {
            send(JSONRPCSplice.replacing(range, in: bytes, with: replacement))
            return
        }
        ws.sendText(bytes, replacing: range, with: replacement)
    }
}
