import Foundation
import HTTP1
import JSONRPC
import Logging
import Transport

extension Gateway {
    /// SPEC §5: 200 when the upstream is ready and heard from within 2 × heartbeat interval.
    func healthBody() -> (Int, String) {
        let t = now
        let age = upstreamLastMessageAt.map { Double(t - $0) / 1e6 }
        let fresh = age.map { $0 < Double(config.upstream.heartbeatIntervalSeconds) * 2000 } ?? false
        let ok = upstreamState == .ready && fresh
        var up: [String] = [
            "\"state\":\"\(upstreamState.rawValue)\"",
            "\"url\":\(quoted(config.upstream.url.text))",
            "\"authenticated\":\(upstreamAuthenticated)",
            "\"connected_for_s\":\(upstreamConnectedAt.map { String(format: "%.1f", Double(t - $0) / 1e9) } ?? "null")",
            "\"reconnects\":\(metrics.upstreamReconnects)",
            "\"last_message_age_ms\":\(age.map { String(Int($0)) } ?? "null")",
            "\"heartbeat_interval_s\":\(config.upstream.heartbeatIntervalSeconds)",
            "\"rtt_ms\":\(upstreamRTTMillis.map { String(format: "%.3f", $0) } ?? "null")",
        ]
        if let v = upstreamVersion { up.append("\"version\":\(quoted(v))") }
        let hellos = clients.values.compactMap { s -> String? in
            guard s.helloName != nil || s.client != nil else { return nil }
            return "{\"conn_id\":\(s.id),\"client\":\(quoted(s.label)),\"client_name\":\(quoted(s.helloName ?? "")),\"client_version\":\(quoted(s.helloVersion ?? ""))}"
        }
        let body = "{\"status\":\"\(ok ? "ok" : "unavailable")\",\"upstream\":{\(up.joined(separator: ","))},"
            + "\"clients\":{\"connected\":\(clients.count),\"sessions\":[\(hellos.joined(separator: ","))]},"
            + "\"subscriptions\":{\"channels\":\(channels.count)},"
            + "\"uptime_s\":\(String(format: "%.1f", Double(t - startedAt) / 1e9)),\"version\":\"\(Gateway.version)\"}"
        return (ok ? 200 : 503, body)
    }

    func metricsText() -> String {
        var w = PrometheusWriter()
        w.family("deribit_gateway_upstream_up", "gauge", "1 when the upstream session is ready.")
        w.sample("deribit_gateway_upstream_up", [], upstreamState == .ready ? 1 : 0)
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
        w.sample("deribit_gateway_clients_connected", [], Double(clients.count))
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
        w.sample("deribit_gateway_subscribed_channels", [], Double(channels.count))
        w.family("deribit_gateway_cod_cancels_total", "counter", "Orders cancelled on a client's disconnect.")
        for (c, n) in metrics.codCancels.sorted(by: { $0.key < $1.key }) {
            w.sample("deribit_gateway_cod_cancels_total", [("client", c)], Double(n))
        }
        w.family("deribit_gateway_credits_available", "gauge", "The local model of Deribit's credit buckets.")
        let t = now
        defaultBucket.refill(now: t)
        subscribeBucket.refill(now: t)
        matchingBucket.refill(now: t)
        w.sample("deribit_gateway_credits_available", [("bucket", "default")], defaultBucket.tokens.rounded(.down))
        w.sample("deribit_gateway_credits_available", [("bucket", "subscribe")], subscribeBucket.tokens.rounded(.down))
        w.sample("deribit_gateway_credits_available", [("bucket", "matching_engine")], matchingBucket.tokens.rounded(.down))
        w.family("deribit_gateway_rate_limited_total", "counter", "Requests answered 10028 by the gateway.")
        for (c, n) in metrics.rateLimited.sorted(by: { $0.key < $1.key }) {
            w.sample("deribit_gateway_rate_limited_total", [("client", c)], Double(n))
        }
        return w.text
    }

    // MARK: HTTP JSON-RPC over the shared upstream (SPEC §5)

    /// `POST /api/v2` with a JSON-RPC body.
    func httpJSONRPC(body: [UInt8], request: HTTPRequest) -> HTTPServerAction {
        httpCall(body, authorization: request.headers["Authorization"])
    }

    /// `GET /api/v2/{public,private}/METHOD?params`: params from the query string.
    func httpGetJSONRPC(_ request: HTTPRequest) -> HTTPServerAction {
        let method = String(request.path.dropFirst("/api/v2/".count))
        var params: [String] = []
        for (name, value) in HTTPQuery.parse(request.query ?? "") {
            params.append("\(quoted(name)):\(Self.queryValueJSON(value))")
        }
        let body = "{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\(quoted(method)),\"params\":{\(params.joined(separator: ","))}}"
        return httpCall(Array(body.utf8), authorization: request.headers["Authorization"])
    }

    /// Query values are strings; numbers and booleans are passed as JSON numbers and booleans,
    /// as Deribit's HTTP API reads them.
    static func queryValueJSON(_ v: String) -> String {
        if v == "true" || v == "false" { return v }
        if !v.isEmpty, Double(v) != nil, v.allSatisfy({ "0123456789.-eE+".contains($0) }), !v.hasPrefix("+") {
            return v
        }
        return String(decoding: JSONRPCWire.quoted(v), as: UTF8.self)
    }

    /// Runs one request through the same router as a WebSocket message, on a transient
    /// session whose scope comes from the bearer token (a gateway-issued access token).
    func httpCall(_ body: [UInt8], authorization: String?) -> HTTPServerAction {
        var client: GatewayConfig.Client?
        if let auth = authorization {
            let parts = auth.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, parts[0].lowercased() == "bearer", let name = accessTokens[String(parts[1])],
                  let c = config.client(named: name) else {
                return .respond(jsonResponse(401, String(decoding: JSONRPCWire.error(id: JSONRPCWire.nullID, code: 13009, message: "unauthorized"), as: UTF8.self)))
            }
            client = c
        }
        httpCallCounter += 1
        let callID = UInt64.max - httpCallCounter
        let scope = client?.scope ?? config.anonymousScope
        return .deferred { [unowned self] respond in
            let session = ClientSession(httpCallID: callID, scope: scope, client: client) { bytes in
                let isError = (try? JSONRPCScanner.scan(bytes))?.error != nil
                var headers = HTTPHeaders()
                headers.add(name: "Content-Type", value: "application/json")
                respond(HTTPResponse(status: isError ? 400 : 200, headers: headers, body: bytes))
            }
            if let c = client {
                session.cancelOnDisconnect = false
                if let rl = c.rateLimit { session.rateLimit = TokenBucket(capacity: Double(rl.burst), refillPerSecond: rl.perSecond, now: self.now) }
            }
            if let scan = try? JSONRPCScanner.scan(body), let m = JSONRPCScanner.method(in: body, scan: scan), Self.webSocketOnly.contains(m) {
                let id = scan.id.map { Array(body[$0]) } ?? JSONRPCWire.nullID
                session.send(JSONRPCWire.error(id: id, code: 11050, message: "bad_request", data: Array(#"{"reason":"only available over WebSocket"}"#.utf8)))
                return
            }
            // JSON-RPC over HTTP may omit the id; the router needs one to answer.
            self.clientMessage(session, body, httpDefaultID: true)
        }
    }

    static let webSocketOnly: Set<String> = [
        "public/subscribe", "private/subscribe", "public/unsubscribe", "private/unsubscribe",
        "public/unsubscribe_all", "private/unsubscribe_all", "public/set_heartbeat", "public/disable_heartbeat",
        "private/logout", "private/enable_cancel_on_disconnect", "private/disable_cancel_on_disconnect",
        "private/get_cancel_on_disconnect",
    ]
}

/// Runs the gateway until SIGINT/SIGTERM.
public enum GatewayMain {
    public static func run(config: GatewayConfig, logger: Logger) throws -> Never {
        let kind: EventLoopKind = config.transport.eventLoop == .epoll ? .epoll : .dispatch
        let loop = EventLoop(kind: kind, label: "deribit-gateway")
        let gateway = Gateway(config: config, loop: loop, logger: logger)
        for notice in config.notices { logger.notice("\(notice)") }
        let started = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var failure: Error?
        loop.execute {
            do {
                let bound = try gateway.start()
                logger.notice("listening on \(bound)", metadata: ["port": "\(bound.port)"])
                // One machine-readable line for tools and tests (the port may have been 0).
                FileHandle.standardOutput.write(Data("deribit-gateway listening on \(bound)\n".utf8))
            } catch {
                failure = error
            }
            started.signal()
        }
        started.wait()
        if let failure {
            logger.critical("cannot start: \(failure)")
            exit(1)
        }
        let signals = [SIGINT, SIGTERM].map { sig -> DispatchSourceSignal in
            let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            s.setEventHandler {
                logger.notice("signal \(sig): shutting down")
                loop.execute {
                    gateway.shutdown { exit(0) }
                }
            }
            s.resume()
            return s
        }
        withExtendedLifetime(signals) {
            dispatchMain()
        }
    }
}
