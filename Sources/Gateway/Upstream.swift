import Foundation
import JSONRPC
import Logging
import Transport

/// Who waits for an upstream response.
enum PendingOwner {
    /// A client's forwarded request; its original id is restored byte-for-byte.
    case client(ClientSession, originalID: [UInt8])
    /// The gateway's own request.
    case local((UpstreamOutcome) -> Void)
}

enum UpstreamOutcome {
    case response(bytes: [UInt8], scan: JSONRPCScan)
    case failed(code: Int, message: String)

    /// The `result` value's raw bytes, when the response has one.
    var result: ArraySlice<UInt8>? {
        if case .response(let bytes, let scan) = self, let r = scan.result { return bytes[r] }
        return nil
    }

    func decodedResult() -> Any? {
        guard let r = result else { return nil }
        return try? JSONSerialization.jsonObject(with: Data(r), options: [.fragmentsAllowed])
    }
}

struct PendingRequest {
    let owner: PendingOwner
    let method: MethodTraits
    var sentAt: UInt64
    /// Written to the upstream socket (not just queued for readiness or credits).
    var sent = false
    let deadline: UInt64
}

/// A request waiting for the upstream to become ready (or for credits).
struct QueuedRequest {
    let upstreamID: UInt64
    let bytes: [UInt8]
    let bucket: CreditBucket
    let deadline: UInt64
    /// Clients' requests leave a reserve in the credit model for the gateway's own.
    var keepsReserve = true
}

enum CreditBucket { case standard, subscribe, matchingEngine }

extension Gateway {
    // MARK: connection lifecycle (SPEC §6.5)

    func connectUpstream() {
        guard !stopping else { return }
        upstreamState = .connecting
        upstreamGeneration += 1
        let generation = upstreamGeneration
        guard let url = WebSocketURL(config.upstream.url.text) else {
            logger.critical("invalid upstream url \(config.upstream.url)")
            return
        }
        logger.info("connecting upstream", metadata: ["url": "\(url)"])
        let limits = WebSocketLimits(maxFrameBytes: 64 << 20, maxMessageBytes: 64 << 20, maxBufferedBytes: 256 << 20)
        WebSocketClient.connect(url: url, loop: loop, tls: tlsContext, limits: limits, timeout: .milliseconds(Int64(max(config.upstream.requestTimeoutMilliseconds, 1000)))) { [weak self] result in
            guard let self else { return }
            self.loop.execute { self.upstreamConnectResult(result, generation: generation) }
        }
    }

    private func upstreamConnectResult(_ result: Result<WebSocketConnection, TransportError>, generation: Int) {
        guard generation == upstreamGeneration, !stopping else {
            if case .success(let ws) = result { ws.close(code: 1001) }
            return
        }
        switch result {
        case .failure(let error):
            logger.warning("upstream connect failed: \(error)")
            scheduleReconnect()
        case .success(let ws):
            upstream = ws
            upstreamConnectedAt = now
            upstreamLastMessageAt = now
            ws.onText = { [unowned self] _, bytes in self.upstreamMessage(bytes) }
            ws.onDrained = { [unowned self] _ in self.upstreamDrained() }
            ws.onReadBatchEnd = { [unowned self] _ in self.flushClients() }
            ws.onClose = { [unowned self] _, event in self.upstreamClosed(event, generation: generation) }
            upstreamState = .authenticating
            runHandshake()
        }
    }

    /// hello → auth → set_heartbeat → enable_cancel_on_disconnect → re-subscribe → ready.
    private func runHandshake() {
        let generation = upstreamGeneration
        sendLocal("public/hello", params: #"{"client_name":"deribit-gateway","client_version":"\#(Gateway.version)"}"#) { [unowned self] outcome in
            guard generation == self.upstreamGeneration else { return }
            if let r = outcome.decodedResult() as? [String: Any], let v = r["version"] as? String { self.upstreamVersion = v }
            self.authenticateUpstream(generation)
        }
    }

    private func authenticateUpstream(_ generation: Int) {
        guard let creds = config.upstream.credentials else {
            upstreamAuthenticated = false
            setUpstreamHeartbeat(generation)
            return
        }
        let params = "{\"grant_type\":\"client_credentials\",\"client_id\":\(quoted(creds.clientID)),\"client_secret\":\(quoted(creds.clientSecret.revealed))}"
        sendLocal("public/auth", params: params) { [unowned self] outcome in
            guard generation == self.upstreamGeneration else { return }
            guard self.handleAuthResult(outcome) else {
                self.logger.error("upstream authentication failed: \(self.describe(outcome))")
                self.upstream?.close(code: 1000)
                return
            }
            self.setUpstreamHeartbeat(generation)
        }
    }

    /// Records tokens and schedules the refresh. Tokens never reach a log line.
    func handleAuthResult(_ outcome: UpstreamOutcome) -> Bool {
        guard let r = outcome.decodedResult() as? [String: Any], r["access_token"] is String else { return false }
        upstreamAuthenticated = true
        upstreamRefreshToken = r["refresh_token"] as? String
        let expiresIn = (r["expires_in"] as? NSNumber)?.doubleValue ?? 900
        // Refresh well before expiry: a minute early for long tokens, at 70% for short ones.
        let after = expiresIn > 120 ? expiresIn - 60 : expiresIn * 0.7
        refreshTimer?.cancel()
        let generation = upstreamGeneration
        refreshTimer = loop.schedule(after: .milliseconds(Int64(after * 1000))) { [weak self] in
            self?.refreshUpstreamToken(generation)
        }
        logger.info("upstream authenticated", metadata: ["expires_in": "\(Int(expiresIn))"])
        return true
    }

    private func refreshUpstreamToken(_ generation: Int) {
        guard generation == upstreamGeneration, let token = upstreamRefreshToken, upstream != nil else { return }
        sendLocal("public/auth", params: "{\"grant_type\":\"refresh_token\",\"refresh_token\":\(quoted(token))}") { [unowned self] outcome in
            guard generation == self.upstreamGeneration else { return }
            if self.handleAuthResult(outcome) {
                self.logger.info("upstream token refreshed")
            } else {
                self.logger.error("upstream token refresh failed: \(self.describe(outcome)); reconnecting")
                self.upstream?.close(code: 1000)
            }
        }
    }

    private func setUpstreamHeartbeat(_ generation: Int) {
        sendLocal("public/set_heartbeat", params: "{\"interval\":\(config.upstream.heartbeatIntervalSeconds)}") { [unowned self] outcome in
            guard generation == self.upstreamGeneration else { return }
            if case .failed = outcome { self.logger.warning("upstream set_heartbeat failed: \(self.describe(outcome))") }
            self.enableUpstreamCancelOnDisconnect(generation)
        }
    }

    private func enableUpstreamCancelOnDisconnect(_ generation: Int) {
        guard config.upstream.cancelOnDisconnect, upstreamAuthenticated else {
            becomeReady(generation)
            return
        }
        // SPEC §7: a crash of the gateway or a loss of the upstream cancels every order placed through it.
        sendLocal("private/enable_cancel_on_disconnect", params: #"{"scope":"connection"}"#) { [unowned self] outcome in
            guard generation == self.upstreamGeneration else { return }
            if case .failed = outcome { self.logger.warning("upstream enable_cancel_on_disconnect failed: \(self.describe(outcome))") }
            self.becomeReady(generation)
        }
    }

    private func becomeReady(_ generation: Int) {
        guard generation == upstreamGeneration else { return }
        upstreamState = .ready
        reconnectAttempt = 0
        logger.notice("upstream ready", metadata: ["version": "\(upstreamVersion ?? "?")", "authenticated": "\(upstreamAuthenticated)"])
        pinOrderTrackingChannel()
        resubscribeAll()
        let queued = waitingForReady
        waitingForReady = []
        for q in queued where pending.contains(q.upstreamID) {
            dispatch(q, reserve: q.keepsReserve)
        }
    }

    private func upstreamClosed(_ event: WebSocketCloseEvent, generation: Int) {
        guard generation == upstreamGeneration else { return }
        upstream = nil
        flushClients()
        upstreamDrained()
        upstreamAuthenticated = false
        upstreamConnectedAt = nil
        refreshTimer?.cancel()
        logger.warning("upstream connection lost: \(event)")
        // SPEC §6.5: every pending request fails with -32000; clients stay connected.
        for p in pending.removeAll() {
            complete(p, .failed(code: JSONRPCErrorCode.upstreamUnavailable, message: "upstream_unavailable"))
        }
        upstreamLostForSubscriptions()
        if stopping {
            upstreamState = .stopped
            return
        }
        scheduleReconnect()
    }

    func scheduleReconnect() {
        guard !stopping else { return }
        upstreamState = .backoff
        metrics.upstreamReconnects += 1
        let minMs = Double(config.upstream.reconnectMinMilliseconds)
        let maxMs = Double(config.upstream.reconnectMaxMilliseconds)
        let base = min(maxMs, minMs * pow(2, Double(min(reconnectAttempt, 30))))
        // Full jitter over the upper half, so a fleet of gateways does not reconnect in step.
        let delay = max(minMs, base * Double.random(in: 0.5...1.0))
        reconnectAttempt += 1
        logger.info("upstream reconnect in \(Int(delay)) ms")
        reconnectTimer?.cancel()
        reconnectTimer = loop.schedule(after: .milliseconds(Int64(delay))) { [weak self] in self?.connectUpstream() }
    }

    func describe(_ outcome: UpstreamOutcome) -> String {
        switch outcome {
        case .failed(let code, let message): return "\(code) \(message)"
        case .response(let bytes, let scan):
            if let e = scan.error { return String(decoding: bytes[e], as: UTF8.self) }
            return "unexpected response"
        }
    }

    // MARK: sending

    /// Sends the gateway's own request (handshake, heartbeat answers, subscriptions, cancels).
    /// These come first in the credit model: no reserve is kept from them.
    func sendLocal(_ method: String, params: String?, bucket: CreditBucket = .standard, whenReady: Bool = false, completion: @escaping (UpstreamOutcome) -> Void) {
        let deadline = now + UInt64(config.upstream.requestTimeoutMilliseconds) * 1_000_000
        let id = pending.add(PendingRequest(owner: .local(completion), method: MethodPolicy.traits(of: method), sentAt: now, deadline: deadline))
        let bytes = JSONRPCWire.request(id: id, method: method, paramsJSON: params.map { Array($0.utf8) })
        let q = QueuedRequest(upstreamID: id, bytes: bytes, bucket: bucket, deadline: deadline, keepsReserve: false)
        if whenReady && upstreamState != .ready {
            waitingForReady.append(q)
        } else if upstream == nil {
            waitingForReady.append(q)
        } else {
            dispatch(q, reserve: false)
        }
    }

    /// Forwards a client's request with a fresh upstream id (SPEC §6.3).
    func forward(_ request: ClientRequest) {
        let session = request.session
        if session.pendingCount >= maxPendingPerClient {
            refuse(request, code: JSONRPCErrorCode.tooManyPendingRequests, message: "too_many_pending_requests")
            return
        }
        if var bucket = session.rateLimit {
            let ok = bucket.tryTake(1, now: now)
            session.rateLimit = bucket
            guard ok else {
                metrics.rateLimited[session.label, default: 0] += 1
                refuse(request, code: 10028, message: "too_many_requests", data: #"{"reason":"client rate_limit exceeded"}"#)
                return
            }
        }
        let id = pending.nextID
        // One pass: the fresh id in, and a client's `access_token` out (the upstream session is
        // already authenticated; clients' tokens are the gateway's).
        JSONRPCSplice.replacingID(in: request.bytes, scan: request.scan, with: id, removingAccessToken: true, into: &spliceBuffer)
        let out = spliceBuffer
        // Deribit answers requests over 32 kB with an error that has no id: never send one.
        guard out.count <= 32_000 else {
            refuse(request, code: JSONRPCErrorCode.invalidRequest, message: "request entity too large")
            return
        }
        let deadline = now + UInt64(config.upstream.requestTimeoutMilliseconds) * 1_000_000
        let tracked = pending.add(PendingRequest(owner: .client(session, originalID: request.id), method: request.method, sentAt: now, deadline: deadline))
        assert(tracked == id, "the id spliced in is the one tracked")
        session.pendingCount += 1
        countRequest(session, .forwarded)
        let bucket: CreditBucket = request.method.isMatchingEngine ? .matchingEngine : .standard
        let q = QueuedRequest(upstreamID: id, bytes: out, bucket: bucket, deadline: deadline)
        if upstreamState == .ready {
            dispatch(q, reserve: true)
        } else {
            // SPEC §6.5: wait up to request_timeout_ms for the upstream.
            waitingForReady.append(q)
        }
    }

    /// Sends now if the credit model allows, later (bounded) if it soon will, else 10028.
    func dispatch(_ q: QueuedRequest, reserve: Bool = true) {
        let t = now
        let c = config.upstream.credits
        let cost: Double
        let keep: Double
        switch q.bucket {
        case .standard:
            cost = Double(c.defaultCost)
            keep = reserve ? Double(c.max) * 0.1 : 0
        case .subscribe:
            cost = Double(c.subscribeCost)
            keep = 0
        case .matchingEngine:
            cost = 1
            keep = reserve ? min(2, Double(c.matchingEngineBurst) * 0.1) : 0
        }
        var ok = false
        var wait = 0.0
        withBucket(q.bucket) { b in
            ok = b.tryTake(cost, keeping: keep, now: t)
            if !ok {
                wait = b.secondsUntilAvailable(cost, keeping: keep, now: t)
                if wait <= maxCreditWaitSeconds || !reserve { b.borrow(cost, now: t) }
            }
        }
        if ok {
            sendUpstream(q)
        } else if wait <= maxCreditWaitSeconds || !reserve {
            loop.schedule(after: .milliseconds(Int64(wait * 1000) + 1)) { [weak self] in
                guard let self, self.pending.contains(q.upstreamID) else { return }
                self.sendUpstream(q)
            }
        } else if let p = pending.remove(q.upstreamID) {
            if case .client(let s, _) = p.owner { metrics.rateLimited[s.label, default: 0] += 1 }
            complete(p, .failed(code: 10028, message: "too_many_requests"))
        }
    }

    private func withBucket(_ bucket: CreditBucket, _ body: (inout TokenBucket) -> Void) {
        switch bucket {
        case .standard: body(&defaultBucket)
        case .subscribe: body(&subscribeBucket)
        case .matchingEngine: body(&matchingBucket)
        }
    }

    private func sendUpstream(_ q: QueuedRequest) {
        guard let ws = upstream else {
            waitingForReady.append(q)
            return
        }
        pending.markSent(q.upstreamID, at: now)
        ws.sendText(q.bytes)
        if ws.bufferedBytes > Self.upstreamHighWatermark && !clientsPaused {
            // Backpressure: the upstream socket is not draining; stop reading clients
            // until it does, rather than queueing without bound.
            clientsPaused = true
            logger.warning("upstream write buffer over \(Self.upstreamHighWatermark) bytes: pausing client reads")
            for c in clients.values { c.ws.pauseReading() }
        }
    }

    static var upstreamHighWatermark: Int { 4 << 20 }

    func upstreamDrained() {
        guard clientsPaused else { return }
        clientsPaused = false
        for c in clients.values { c.ws.resumeReading() }
    }

    // MARK: receiving

    func upstreamMessage(_ bytes: [UInt8]) {
        upstreamLastMessageAt = now
        let scan: JSONRPCScan
        do throws(JSONRPCScanError) {
            scan = try JSONRPCScanner.scan(bytes)
        } catch {
            logger.warning("upstream sent a frame that is not JSON-RPC (\(error)), \(bytes.count) bytes")
            return
        }
        if let m = scan.method {
            if bytes[m].elementsEqual("subscription".utf8) {
                notification(bytes, scan)
            } else if bytes[m].elementsEqual("heartbeat".utf8) {
                // Deribit: an unanswered test_request closes the connection. Never shown to clients.
                if let t = scan.heartbeatType, bytes[t].elementsEqual("test_request".utf8) {
                    sendLocal("public/test", params: nil) { _ in }
                }
            } else {
                logger.debug("upstream notification ignored: \(String(decoding: bytes[m], as: UTF8.self))")
            }
            return
        }
        guard let idRange = scan.id, let id = Self.parseID(bytes[idRange]) else {
            // Deribit's error for an oversized frame has no id; the gateway never sends one.
            logger.error("upstream response without a routable id: \(String(decoding: bytes.prefix(300), as: UTF8.self))")
            return
        }
        guard let p = pending.remove(id) else {
            lateResponse(id, bytes, scan)  // timed out already; an order it made still counts
            return
        }
        let seconds = Double(now - p.sentAt) / 1e9
        metrics.requestDuration.observe(seconds)
        upstreamRTTMillis = seconds * 1000
        complete(p, .response(bytes: bytes, scan: scan))
    }

    static func parseID(_ bytes: ArraySlice<UInt8>) -> UInt64? {
        guard !bytes.isEmpty, bytes.count <= 19 else { return nil }
        var v: UInt64 = 0
        for b in bytes {
            guard b >= 48, b <= 57 else { return nil }
            v = v * 10 + UInt64(b - 48)
        }
        return v
    }

    /// Delivers an outcome to whoever waits for it.
    func complete(_ p: PendingRequest, _ outcome: UpstreamOutcome) {
        switch p.owner {
        case .local(let completion):
            completion(outcome)
        case .client(let session, let originalID):
            session.pendingCount -= 1
            orderResponse(session, method: p.method, outcome: outcome)
            guard !session.closed else { return }
            switch outcome {
            case .response(let bytes, let scan):
                // The client's id goes back byte-for-byte.
                session.send(bytes, replacing: scan.id!, with: originalID)
            case .failed(let code, let message):
                session.send(JSONRPCWire.error(id: originalID, code: code, message: message))
            }
        }
    }

    // MARK: timers

    /// Expires requests past `request_timeout_ms` and checks the upstream's liveness.
    func sweep() {
        let t = now
        while let (id, p) = pending.removeFirstExpired(now: t) {
            if p.sent { keepLateOrderRequest(id, p) }
            // Never sent: the upstream was unavailable (-32000). Sent and unanswered: -32001.
            complete(p, p.sent
                ? .failed(code: JSONRPCErrorCode.upstreamTimeout, message: "upstream_timeout")
                : .failed(code: JSONRPCErrorCode.upstreamUnavailable, message: "upstream_unavailable"))
        }
        if !waitingForReady.isEmpty {
            waitingForReady.removeAll { !pending.contains($0.upstreamID) }
        }
        // Deribit sends a test_request every interval: 3 intervals of silence mean a dead link.
        if upstreamState == .ready || upstreamState == .authenticating, let last = upstreamLastMessageAt,
           t - last > UInt64(config.upstream.heartbeatIntervalSeconds) * 3_000_000_000 {
            logger.warning("upstream silent for \(3 * config.upstream.heartbeatIntervalSeconds) s; reconnecting")
            upstreamLastMessageAt = t
            upstream?.abort(reason: "heartbeat timeout")
        }
    }

    func quoted(_ s: String) -> String {
        String(decoding: JSONRPCWire.quoted(s), as: UTF8.self)
    }
}
