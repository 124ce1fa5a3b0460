import Foundation
import GatewayCore
import HTTP1
import JSONRPC
import Logging
import Transport

/// SPEC §5: the HTTP side of the one port (WebSocket upgrades, /health, /metrics, and
/// Deribit's HTTP JSON-RPC carried over the shared upstream).
extension Gateway {
    func route(_ request: HTTPRequest, _ context: HTTPRequestContext) -> HTTPServerAction {
        // RFC 9110 §9.3.2: HEAD is GET without the content (the server leaves the body out).
        let method = request.method == "HEAD" ? "GET" : request.method
        switch (method, request.path) {
        case ("GET", "/ws/api/v2"):
            guard request.headers["Upgrade"] != nil else {
                return .respond(jsonResponse(400, .object([("error", "websocket upgrade expected")])))
            }
            if let refused = refusedOrigin(request, what: "WebSocket upgrade") { return .respond(refused) }
            if stopping {
                return .respond(jsonResponse(503, .object([("error", "shutting down")])))
            }
            if atClientLimit { return .respond(tooManyClients) }
            let limits = WebSocketLimits(
                maxFrameBytes: config.limits.maxMessageBytes, maxMessageBytes: config.limits.maxMessageBytes,
                maxBufferedBytes: config.limits.clientBufferBytes)
            return .upgradeToWebSocket(limits) { [unowned self] ws in self.clientConnected(ws) }
        case ("GET", "/health"):
            let (status, body) = health()
            return .respond(jsonResponse(status, body))
        case ("GET", "/metrics"):
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: "text/plain; version=0.0.4; charset=utf-8")
            return .respond(HTTPResponse(status: 200, headers: headers, body: Array(metricsText().utf8)))
        case ("POST", "/api/v2"), ("POST", "/api/v2/"):
            if let refused = refusedOrigin(request, what: "HTTP API call") { return .respond(refused) }
            if atClientLimit { return .respond(tooManyClients) }
            return httpCall(request.body, authorization: request.headers["Authorization"], context: context)
        case ("GET", let path) where path.hasPrefix("/api/v2/public/") || path.hasPrefix("/api/v2/private/"):
            if let refused = refusedOrigin(request, what: "HTTP API call") { return .respond(refused) }
            if atClientLimit { return .respond(tooManyClients) }
            return httpGetJSONRPC(request, context)
        default:
            return .respond(jsonResponse(404, .object([("error", "not found")])))
        }
    }

    /// SPEC §4: a web page on the host must reach neither the WebSocket API nor the HTTP API.
    func refusedOrigin(_ request: HTTPRequest, what: String) -> HTTPResponse? {
        let origin = request.headers["Origin"]
        guard !originPolicy.admits(origin: origin, fetchSite: request.headers["Sec-Fetch-Site"]) else { return nil }
        logger.notice("refused \(what) from a web page", metadata: [
            "origin": "\(quotedForLog(origin ?? ""))", "sec_fetch_site": "\(quotedForLog(request.headers["Sec-Fetch-Site"] ?? ""))",
        ])
        return jsonResponse(403, .object([("error", "origin not allowed")]))
    }

    /// `limits.max_clients` bounds WebSocket clients and HTTP JSON-RPC calls in flight together
    /// (/health and /metrics stay reachable for ops).
    var atClientLimit: Bool { sessions.webSocketCount + sessions.httpCallCount >= config.limits.maxClients }

    var tooManyClients: HTTPResponse { jsonResponse(503, .object([("error", "too many clients")])) }

    func jsonResponse(_ status: Int, _ body: JSONValue) -> HTTPResponse {
        jsonResponse(status, body.bytes)
    }

    func jsonResponse(_ status: Int, _ body: [UInt8]) -> HTTPResponse {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        return HTTPResponse(status: status, headers: headers, body: body)
    }

    // MARK: /health

    /// SPEC §5: 200 when the upstream is ready and heard from within 2 × heartbeat interval.
    func health() -> (Int, JSONValue) {
        let t = now
        let ok = session.isHealthy(now: t)
        let age = session.lastMessageAt.map { Double(t &- $0) / 1e6 }
        var upstream: [(String, JSONValue)] = [
            ("state", .string(session.state.rawValue)),
            ("url", .string(config.upstream.url.text)),
            ("authenticated", .bool(session.authenticated)),
            ("connected_for_s", session.connectedAt.map { .double(Double(t &- $0) / 1e9, decimals: 1) } ?? .null),
            ("reconnects", .int(Int64(metrics.upstreamReconnects))),
            ("last_message_age_ms", age.map { .int(Int64($0)) } ?? .null),
            ("heartbeat_interval_s", .int(Int64(config.upstream.heartbeatIntervalSeconds))),
            ("rtt_ms", upstreamRTTMillis.map { .double($0, decimals: 3) } ?? .null),
        ]
        if let v = session.version { upstream.append(("version", .string(v))) }
        if let e = session.lastError, !ok {
            // Why it is not ok, and since when.
            upstream.append(("last_error", .string(e)))
            if let at = session.lastErrorAt { upstream.append(("last_error_age_s", .double(Double(t &- at) / 1e9, decimals: 1))) }
        }
        let hellos: [JSONValue] = sessions.webSockets.compactMap { s in
            guard s.helloName != nil || s.isAuthenticated else { return nil }
            return .object([("conn_id", .uint(s.webSocket?.id ?? 0)), ("client", .string(s.label)),
                            ("client_name", .string(s.helloName ?? "")), ("client_version", .string(s.helloVersion ?? ""))])
        }
        let body: JSONValue = .object([
            ("status", ok ? "ok" : "unavailable"),
            ("upstream", .object(upstream)),
            ("clients", .object([("connected", .int(Int64(sessions.webSocketCount))), ("sessions", .array(hellos))])),
            ("subscriptions", .object([("channels", .int(Int64(subscriptions.channels.count)))])),
            ("orders", .object([
                ("tracked", .int(Int64(orders.ledger.owners.count))),
                ("cancels_pending", .int(Int64(cancels.count))),
                // SPEC §7: open orders found after an upstream loss that no client could be given.
                ("unattributed", .strings(orders.unattributed)),
            ])),
            ("uptime_s", .double(Double(t &- startedAt) / 1e9, decimals: 1)),
            ("version", .string(Gateway.version)),
        ])
        return (ok ? 200 : 503, body)
    }

    // MARK: /metrics

    func metricsText() -> String {
        var w = PrometheusWriter()
        w.family("deribit_gateway_upstream_up", "gauge", "1 when the upstream session is ready.")
        w.sample("deribit_gateway_upstream_up", [], session.state == .ready ? 1 : 0)
        w.family("deribit_gateway_upstream_reconnects_total", "counter", "Upstream reconnect attempts.")
        w.sample("deribit_gateway_upstream_reconnects_total", [], Double(metrics.upstreamReconnects))
        w.family("deribit_gateway_upstream_request_duration_seconds", "histogram", "Round trip of upstream requests.")
        let h = metrics.requestDuration
        for (b, n) in zip(h.bounds, h.counts) {
            w.sample("deribit_gateway_upstream_request_duration_seconds_bucket", [("le", PrometheusWriter.format(b))], Double(n))
        }
        w.sample("deribit_gateway_upstream_request_duration_seconds_bucket", [("le", "+Inf")], Double(h.count))
        w.sample("deribit_gateway_upstream_request_duration_seconds_sum", [], h.sum)
        w.sample("deribit_gateway_upstream_request_duration_seconds_count", [], Double(h.count))
        w.family("deribit_gateway_clients_connected", "gauge", "Connected WebSocket clients.")
        w.sample("deribit_gateway_clients_connected", [], Double(sessions.webSocketCount))
        w.family("deribit_gateway_client_disconnects_total", "counter", "Client disconnects by reason.")
        for (reason, n) in metrics.clientDisconnects.sorted(by: { $0.key < $1.key }) {
            w.sample("deribit_gateway_client_disconnects_total", [("reason", reason)], Double(n))
        }
        w.family("deribit_gateway_requests_total", "counter", "Client requests by outcome.")
        for r in metrics.requests {
            w.sample("deribit_gateway_requests_total", [("client", r.client), ("outcome", r.outcome)], Double(r.count))
        }
        w.family("deribit_gateway_notifications_total", "counter", "Upstream notifications routed.")
        w.sample("deribit_gateway_notifications_total", [], Double(metrics.notifications))
        w.family("deribit_gateway_frames_sent_total", "counter", "Notification frames queued to clients.")
        w.sample("deribit_gateway_frames_sent_total", [], Double(metrics.framesSent))
        w.family("deribit_gateway_subscribed_channels", "gauge", "Channels held upstream.")
        w.sample("deribit_gateway_subscribed_channels", [], Double(subscriptions.channels.count))
        w.family("deribit_gateway_cod_cancels_total", "counter", "Orders cancelled on a client's disconnect.")
        for (c, n) in metrics.codCancels.sorted(by: { $0.key < $1.key }) {
            w.sample("deribit_gateway_cod_cancels_total", [("client", c)], Double(n))
        }
        w.family("deribit_gateway_cod_cancels_pending", "gauge", "Cancel-on-disconnect cancels not confirmed by the exchange yet.")
        w.sample("deribit_gateway_cod_cancels_pending", [], Double(cancels.count))
        w.family("deribit_gateway_cod_cancel_failures_total", "counter", "Cancel-on-disconnect attempts that failed or were ambiguous (each is retried).")
        w.sample("deribit_gateway_cod_cancel_failures_total", [], Double(cancels.failures))
        w.family("deribit_gateway_auth_failures_total", "counter", "Failed public/auth attempts (throttled, SPEC §8).")
        w.sample("deribit_gateway_auth_failures_total", [], Double(metrics.authFailures))
        w.family("deribit_gateway_credits_available", "gauge", "The local model of Deribit's credit buckets.")
        let t = now
        for bucket in CreditBucket.allCases {
            w.sample("deribit_gateway_credits_available", [("bucket", bucket.label)], router.creditsAvailable(bucket, now: t))
        }
        w.family("deribit_gateway_rate_limited_total", "counter", "Requests answered 10028 by the gateway.")
        for (c, n) in metrics.rateLimited.sorted(by: { $0.key < $1.key }) {
            w.sample("deribit_gateway_rate_limited_total", [("client", c)], Double(n))
        }
        return w.text
    }

    // MARK: HTTP JSON-RPC over the shared upstream (SPEC §5)

    /// `GET /api/v2/{public,private}/METHOD?params`: params from the query string.
    func httpGetJSONRPC(_ request: HTTPRequest, _ context: HTTPRequestContext) -> HTTPServerAction {
        let method = String(request.path.dropFirst("/api/v2/".count))
        // SPEC §6.1: a query that decodes to invalid UTF-8 is refused, never passed on altered.
        guard let query = HTTPQuery.parseValidUTF8(request.query ?? "") else {
            return .respond(jsonResponse(400, GatewayError.malformed(.notJSON).response(id: JSONRPCWire.nullID)))
        }
        var params: [(String, JSONValue)] = []
        for (name, value) in query {
            params.append((name, Self.queryValue(value)))
        }
        let body: JSONValue = .object([("jsonrpc", "2.0"), ("id", .null), ("method", .string(method)), ("params", .object(params))])
        return httpCall(body.bytes, authorization: request.headers["Authorization"], context: context)
    }

    /// Query values are strings; numbers and booleans are passed as JSON numbers and booleans,
    /// as Deribit's HTTP API reads them.
    static func queryValue(_ v: String) -> JSONValue {
        if v == "true" || v == "false" { return .bool(v == "true") }
        if !v.isEmpty, Double(v) != nil, v.allSatisfy({ "0123456789.-eE+".contains($0) }), !v.hasPrefix("+") {
            return .raw(Array(v.utf8))
        }
        return .string(v)
    }

    /// Runs one request through the same router as a WebSocket message, on a transient
    /// session whose scope comes from the bearer token (a gateway-issued access token).
    func httpCall(_ body: [UInt8], authorization: String?, context: HTTPRequestContext) -> HTTPServerAction {
        var client: GatewayConfig.Client?
        if let auth = authorization {
            let parts = auth.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, parts[0].lowercased() == "bearer", let name = tokens.client(forAccess: String(parts[1]), now: now),
                  let c = config.client(named: name) else {
                return .respond(jsonResponse(401, GatewayError.unauthorized.response(id: JSONRPCWire.nullID)))
            }
            client = c
        }
        // SPEC §6.1: every text frame sent upstream is valid UTF-8. A WebSocket text frame is
        // checked by RFC 6455 (1007); an HTTP body is checked here: -32700 to its sender alone.
        guard String(validating: body, as: UTF8.self) != nil else {
            return .respond(jsonResponse(400, GatewayError.malformed(.notJSON).response(id: JSONRPCWire.nullID)))
        }
        return .deferred { [unowned self] respond in
            let s = self.sessions.insert { id in
                ClientSession(id: id, httpConnection: context.connectionID, peer: context.peer?.host ?? "?",
                              scope: self.config.anonymousScope, logger: self.logger) { bytes in
                    let isError = (try? JSONRPCScanner.scan(bytes))?.error != nil
                    var headers = HTTPHeaders()
                    headers.add(name: "Content-Type", value: "application/json")
                    respond(HTTPResponse(status: isError ? 400 : 200, headers: headers, body: bytes))
                }
            }
            if let c = client { s.authenticated(as: c, now: self.now) } else { s.limitAnonymous(self.config.anonymousLimits.rateLimit, now: self.now) }
            if let scan = try? JSONRPCScanner.scan(body), let m = JSONRPCScanner.method(in: body, scan: scan), Self.webSocketOnly.contains(m) {
                let id = scan.id.map { Array(body[$0]) } ?? JSONRPCWire.nullID
                self.refuse(s, id: id, .webSocketOnly)
                return
            }
            // JSON-RPC over HTTP may omit the id; the router needs one to answer.
            self.clientMessage(s, body, httpDefaultID: true)
        }
    }

    static let webSocketOnly: Set<String> = [
        "public/subscribe", "private/subscribe", "public/unsubscribe", "private/unsubscribe",
        "public/unsubscribe_all", "private/unsubscribe_all", "public/set_heartbeat", "public/disable_heartbeat",
        "private/logout", "private/enable_cancel_on_disconnect", "private/disable_cancel_on_disconnect",
        "private/get_cancel_on_disconnect",
    ]
}
