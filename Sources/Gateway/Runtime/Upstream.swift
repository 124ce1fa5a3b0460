import GatewayCore
import JSONRPC
import Logging
import Transport

/// The runtime side of the upstream session: the connection, the actions of `UpstreamSession`
/// and `RequestRouter`, answers routed back to their owners, and the notification fan-out.
extension Gateway {
    // MARK: the session's actions (SPEC §6.5)

    func perform(_ action: UpstreamSession.Action) {
        switch action {
        case .none:
            break
        case .connect:
            openUpstream()
        case .send(let step):
            sendStep(step)
        case .becomeReady:
            becomeReady()
        case .close(let reason):
            logger.error("upstream \(reason); reconnecting")
            upstream?.close(code: 1000)
        case .abort(let reason):
            logger.warning("upstream \(reason) (\(session.lastError ?? "")); reconnecting")
            upstream?.abort(reason: reason)
        case .armReconnect(let at):
            reconnectTimer?.cancel()
            reconnectTimer = schedule(at: at) { [weak self] in
                guard let self else { return }
                self.perform(self.session.reconnectDue(now: self.now))
            }
        }
    }

    private func openUpstream() {
        let generation = session.generation
        guard let url = WebSocketURL(config.upstream.url.text) else {
            logger.critical("invalid upstream url \(config.upstream.url)")
            return
        }
        logger.info("connecting upstream", metadata: ["url": "\(url)"])
        let limits = WebSocketLimits(maxFrameBytes: 64 << 20, maxMessageBytes: 64 << 20, maxBufferedBytes: 256 << 20)
        let timeout = Duration.milliseconds(Int64(max(config.upstream.requestTimeoutMilliseconds, 1000)))
        WebSocketClient.connect(url: url, loop: loop, tls: tlsContext, limits: limits, timeout: timeout) { [weak self] result in
            guard let self else { return }
            self.loop.execute { self.upstreamConnectResult(result, generation: generation) }
        }
    }

    private func upstreamConnectResult(_ result: Result<WebSocketConnection, TransportError>, generation: Int) {
        guard generation == session.generation, session.state != .stopped else {
            if case .success(let ws) = result { ws.close(code: 1001) }
            return
        }
        switch result {
        case .failure(let error):
            logger.warning("upstream connect failed: \(error)")
            backoff(session.connectFailed("connect failed: \(error)", now: now))
        case .success(let ws):
            upstream = ws
            ws.onText = { [unowned self] _, bytes in self.upstreamMessage(bytes) }
            ws.onDrained = { [unowned self] _ in self.upstreamDrained() }
            ws.onReadBatchEnd = { [unowned self] _ in self.flushClients() }
            ws.onClose = { [unowned self] _, event in self.upstreamClosed(event, generation: generation) }
            router.connected()
            perform(session.connected(now: now))
        }
    }

    /// A backoff decision: counted (`deribit_gateway_upstream_reconnects_total`) and logged.
    private func backoff(_ action: UpstreamSession.Action) {
        if case .armReconnect(let at) = action {
            metrics.upstreamReconnects += 1
            logger.info("upstream reconnect in \((at &- now) / 1_000_000) ms")
        }
        perform(action)
    }

    /// hello → auth → set_heartbeat → enable_cancel_on_disconnect, and the token refresh.
    private func sendStep(_ step: UpstreamSession.Step) {
        let method: String
        let params: JSONValue?
        switch step {
        case .hello:
            method = "public/hello"
            params = .object([("client_name", "deribit-gateway"), ("client_version", .string(Gateway.version))])
        case .auth:
            guard let creds = config.upstream.credentials else { return }
            method = "public/auth"
            params = .object([("grant_type", "client_credentials"), ("client_id", .string(creds.clientID)),
                              ("client_secret", .string(creds.clientSecret.revealed))])
        case .refresh:
            guard let token = session.tokenForRefresh else { return }
            method = "public/auth"
            params = .object([("grant_type", "refresh_token"), ("refresh_token", .string(token))])
        case .setHeartbeat:
            method = "public/set_heartbeat"
            params = .object([("interval", .int(Int64(config.upstream.heartbeatIntervalSeconds)))])
        case .enableCancelOnDisconnect:
            // SPEC §7: a crash of the gateway or a loss of the upstream cancels every order placed through it.
            method = "private/enable_cancel_on_disconnect"
            params = .object([("scope", "connection")])
        case .probe:
            method = "public/test"
            params = nil
        }
        submit(.session(step, generation: session.generation), method, params)
    }

    private func stepAnswered(_ step: UpstreamSession.Step, generation: Int, _ outcome: UpstreamOutcome) {
        let action = session.answered(step, generation: generation, outcome, now: now)
        switch (step, action) {
        case (.auth, .send), (.refresh, .none):
            if generation == session.generation {
                logger.info(step == .auth ? "upstream authenticated" : "upstream token refreshed")
            }
        case (.setHeartbeat, _), (.enableCancelOnDisconnect, _):
            if let e = outcome.errorDescription, generation == session.generation {
                logger.warning("upstream \(step.rawValue) failed: \(e)")
            }
        default:
            break
        }
        perform(action)
    }

    private func becomeReady() {
        logger.notice("upstream ready", metadata: ["version": "\(session.version ?? "?")", "authenticated": "\(session.authenticated)"])
        if session.authenticated {
            // SPEC §7: orders may have closed while no `user.orders` notification could reach the
            // gateway (on a lost upstream, Deribit's cancel-on-disconnect cancels them), and orders
            // may exist whose creation answer was lost. Only orders known before the query are
            // judged; later ones may postdate its answer.
            if orders.needsReconciliation {
                submit(.reconcileOrders(known: orders.ledger.allOrders), "private/get_open_orders", nil)
            }
            subscriptions.pin(OrderTracker.trackingChannel)
        }
        let again = subscriptions.upstreamReady()
        if !again.isEmpty { logger.info("re-subscribing \(subscriptions.channels.values.filter { $0.state == .pending }.count) channels") }
        apply(again)
        carryOut(router.ready(now: now))
        pumpCancels()
    }

    private func upstreamClosed(_ event: WebSocketCloseEvent, generation: Int) {
        guard generation == session.generation else { return }
        upstream = nil
        flushClients()
        upstreamDrained()
        logger.warning("upstream connection lost: \(event)")
        // SPEC §6.5: every pending request fails with -32000; clients stay connected. Creations
        // that were sent may have made orders: they are looked for after the reconnect (SPEC §7).
        let lost = router.lost()
        for p in lost where p.sent {
            guard case .client(let id, _) = p.owner, let intent = p.intent else { continue }
            orders.creationLost(client: id, label: clientLabel(id), intent: intent)
        }
        orders.upstreamLost { self.clientLabel($0) }
        for p in lost { complete(p, .failed(.upstreamUnavailable)) }
        subscriptions.upstreamLost()
        backoff(session.closed("connection lost: \(event)", now: now))
        // Only the logout's close ends a phase: a loss before it is reconnected.
        if shutdownPlan?.phase == .loggingOut { shutdownEvent { plan, t in plan.upstreamClosed(now: t) } }
    }

    // MARK: sending

    /// Sends the gateway's own request; `whenReady` holds it until the session is ready.
    func submit(_ task: GatewayTask, _ method: String, _ params: JSONValue?, bucket: CreditBucket = .standard, whenReady: Bool = false) {
        if let bytes = router.submit(task, method: method, params: params?.bytes, bucket: bucket, whenReady: whenReady, now: now) {
            writeUpstream(bytes)
        }
        armCreditTimer()
    }

    /// Forwards a client's request with a fresh upstream id (SPEC §6.3).
    func forward(_ request: ClientRequest) {
        let s = request.session
        if var bucket = s.rateLimit {
            let ok = bucket.tryTake(1, now: now)
            s.rateLimit = bucket
            guard ok else {
                metrics.rateLimited[s.label, default: 0] += 1
                refuse(request, .tooManyRequests(reason: s.isAuthenticated ? "client rate_limit exceeded" : "anonymous rate_limit exceeded"))
                return
            }
        }
        // Anonymous clients together keep to their share, so that strategies keep theirs.
        if !s.isAuthenticated && !anonymousBucket.tryTake(1, now: now) {
            metrics.rateLimited[s.label, default: 0] += 1
            refuse(request, .tooManyRequests(reason: "anonymous total_rate_limit exceeded"))
            return
        }
        let intent = request.method.createsOrders ? OrderIntent.parse(method: request.method, bytes: request.bytes, params: request.scan.params) : nil
        switch router.forward(client: s.id, originalID: request.id, bytes: request.bytes, scan: request.scan,
                              method: request.method, clientPending: s.pendingCount, intent: intent, now: now) {
        case .send(let bytes):
            s.pendingCount += 1
            countRequest(s, .forwarded)
            writeUpstream(bytes)
        case .queued:
            s.pendingCount += 1
            countRequest(s, .forwarded)
            armCreditTimer()
        case .refused(let error):
            if case .tooManyRequests = error { metrics.rateLimited[s.label, default: 0] += 1 }
            refuse(request, error)
        }
    }

    /// Carries out what the router decided after an event.
    func carryOut(_ outputs: [RequestRouter.Output]) {
        for o in outputs {
            switch o {
            case .write(let bytes):
                writeUpstream(bytes)
            case .fail(let p, let error):
                if case .client(let id, _) = p.owner, let s = sessions[id] { metrics.rateLimited[s.label, default: 0] += 1 }
                complete(p, .failed(error))
            }
        }
        armCreditTimer()
    }

    private func writeUpstream(_ bytes: [UInt8]) {
        guard let ws = upstream else {
            assertionFailure("the router sends only while connected")
            return
        }
        ws.sendText(bytes)
        session.requestSent(now: now)
        if backpressure.wrote(buffered: ws.bufferedBytes) == .pauseClients {
            logger.warning("upstream write buffer over \(UpstreamBackpressure.highWatermark) bytes: pausing client reads")
            for c in sessions.webSockets { c.webSocket?.pauseReading() }
        }
    }

    func upstreamDrained() {
        guard backpressure.drained() == .resumeClients else { return }
        for c in sessions.webSockets { c.webSocket?.resumeReading() }
    }

    /// One timer at the router's next credit time.
    private func armCreditTimer() {
        guard let at = router.nextCreditTime else { return }
        if let armed = creditTimerAt, armed <= at { return }
        creditTimer?.cancel()
        creditTimerAt = at
        creditTimer = schedule(at: at) { [weak self] in
            guard let self else { return }
            self.creditTimerAt = nil
            self.carryOut(self.router.due(now: self.now))
        }
    }

    // MARK: receiving

    func upstreamMessage(_ bytes: [UInt8]) {
        loop.assertInEventLoop()
        let t = now
        session.received(now: t)
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
                    submit(.heartbeatAnswer, "public/test", nil)
                }
            } else {
                logger.debug("upstream notification ignored: \(String(decoding: bytes[m], as: UTF8.self))")
            }
            return
        }
        guard let idRange = scan.id, let id = JSONScalar.uint64(bytes, idRange) else {
            // Deribit's error for an oversized frame has no id; the gateway never sends one.
            logger.error("upstream response without a routable id: \(String(decoding: bytes.prefix(300), as: UTF8.self))")
            return
        }
        let answered = router.answered(id)
        session.answerReceived(now: t, stillAwaiting: !router.pending.isEmpty)
        guard let p = answered else {
            lateResponse(id, bytes, scan)
            return
        }
        let seconds = Double(t &- p.sentAt) / 1e9
        metrics.requestDuration.observe(seconds)
        upstreamRTTMillis = seconds * 1000
        complete(p, .response(bytes: bytes, scan: scan))
    }

    /// Delivers an outcome to whoever waits for it: the client is answered first, then the
    /// order bookkeeping runs.
    func complete(_ p: PendingRequest, _ outcome: UpstreamOutcome) {
        switch p.owner {
        case .gateway(let task):
            taskAnswered(task, outcome)
        case .client(let id, let originalID):
            let s = sessions[id]
            if let s {
                s.pendingCount -= 1
                switch outcome {
                case .response(let bytes, let scan):
                    // The client's id goes back byte-for-byte.
                    s.send(bytes, replacing: scan.id!, with: originalID)
                case .failed(let error):
                    s.send(error.response(id: originalID))
                }
                endIfHTTP(s)
            }
            if p.method.createsOrders || p.method.isCancel, case .response(let bytes, let scan) = outcome, let r = scan.result {
                enqueueCancels(orders.responded(client: id, label: clientLabel(id), method: p.method, bytes: bytes, result: r))
            }
        }
        if stopping { shutdownEvent { plan, t in plan.cancelsChanged(outstanding: self.cancelsOutstanding, now: t) } }
    }

    /// What an answer to the gateway's own request is for.
    private func taskAnswered(_ task: GatewayTask, _ outcome: UpstreamOutcome) {
        switch task {
        case .session(let step, let generation):
            stepAnswered(step, generation: generation, outcome)
        case .heartbeatAnswer:
            break
        case .unsubscribe(let chunk, let generation):
            // Unanswered on a connection that is still there (a stall): the exchange may still
            // hold the channels. Released again unless a client took them back meanwhile.
            guard case .failed(.upstreamTimeout) = outcome, generation == session.generation else { return }
            let stillReleased = chunk.filter { subscriptions.channels[$0] == nil }
            if !stillReleased.isEmpty { apply([.unsubscribeUpstream(stillReleased)]) }
        case .subscribe(let chunk, _):
            apply(subscriptions.upstreamAnswered(chunk, outcome))
        case .bookResyncUnsubscribed(let channel, let generation):
            guard generation == session.generation, subscriptions.isActive(channel) else { return }
            submit(.bookResyncSubscribed(channel: channel), subscribeMethod, .object([("channels", .strings([channel]))]), bucket: .subscribe)
        case .bookResyncSubscribed(let channel):
            if (outcome.stringArrayResult ?? []).isEmpty { logger.error("book \(channel): re-subscribe refused") }
        case .cancelOnDisconnect(let orderID):
            cancelAnswered(orderID, outcome, check: false)
        case .cancelCheck(let orderID):
            cancelAnswered(orderID, outcome, check: true)
        case .reconcileOrders(let known):
            reconciled(known: known, outcome)
        case .reconcileOrderState(let orderID):
            closedWhileAway(orderID, outcome)
        case .probe:
            break
        }
    }

    /// A response to a request that had timed out: only its order matters now.
    private func lateResponse(_ id: UInt64, _ bytes: [UInt8], _ scan: JSONRPCScan) {
        guard let late = orders.lateResponse(upstreamID: id), let r = scan.result else { return }
        let label = clientLabel(late.client)
        logger.notice("late order response", metadata: ["client": "\(label)", "conn.id": "\(late.client)", "method": "\(late.method.name.map { "\($0)" } ?? "?")"])
        enqueueCancels(orders.responded(client: late.client, label: label, method: late.method, bytes: bytes, result: r))
    }

    // MARK: subscriptions (SPEC §6.4)

    var subscribeMethod: String { session.authenticated ? "private/subscribe" : "public/subscribe" }
    var unsubscribeMethod: String { session.authenticated ? "private/unsubscribe" : "public/unsubscribe" }

    func apply(_ effects: [SubscriptionEffect]) {
        for effect in effects {
            switch effect {
            case .answer(let request, let channels, let snapshots):
                guard let s = sessions[request.client] else { continue }
                s.send(resultBytes(id: request.id, receivedAt: request.receivedAt, JSONValue.strings(channels).bytes))
                for snapshot in snapshots { s.send(snapshot) }
            case .answerFailure(let request, let outcome):
                guard let s = sessions[request.client] else { continue }
                switch outcome {
                case .response(let bytes, let scan): s.send(JSONRPCSplice.replacing(scan.id!, in: bytes, with: request.id))
                case .failed(let error): s.send(error.response(id: request.id))
                }
            case .subscribeUpstream(let chunk):
                submit(.subscribe(chunk, generation: session.generation), subscribeMethod, .object([("channels", .strings(chunk))]),
                       bucket: .subscribe, whenReady: true)
            case .unsubscribeUpstream(let chunk):
                submit(.unsubscribe(chunk, generation: session.generation), unsubscribeMethod, .object([("channels", .strings(chunk))]),
                       bucket: .subscribe, whenReady: true)
            case .warning(let text):
                logger.warning("\(text)")
            }
        }
    }

    // MARK: notifications (the hot path)

    func notification(_ bytes: [UInt8], _ scan: JSONRPCScan) {
        guard let chRange = scan.channel, let entry = subscriptions.entry(named: bytes, chRange) else { return }
        metrics.notifications += 1
        if let book = entry.book {
            switch book.apply(notification: bytes, scan: scan) {
            case .forward:
                break
            case .drop:
                return
            case .gap:
                // The chain broke: every holder gets a fresh snapshot after a re-subscribe.
                logger.warning("book \(entry.name): change_id gap; re-subscribing")
                submit(.bookResyncUnsubscribed(channel: entry.name, generation: session.generation), unsubscribeMethod,
                       .object([("channels", .strings([entry.name]))]), bucket: .subscribe)
                return
            }
        }
        if entry.heldByGateway { orders.notification(bytes, scan: scan) }
        let holders = entry.holders
        guard !holders.isEmpty else { return }
        // A local copy of the table: no exclusivity check per holder (a slow consumer closed on
        // the way copies the table's storage once).
        let table = sessions
        if bytes.count <= Self.copiedNotificationBytes {
            // Copied with its header into each holder's own reusable buffer: no allocation.
            bytes.withUnsafeBytes { payload in
                for h in holders { table[h]?.webSocket?.enqueueText(payload) }
            }
        } else {
            // A large notification (a book snapshot) is framed once and shared by every holder.
            let frame = WebSocketConnection.encodeTextFrame(bytes)
            for h in holders { table[h]?.webSocket?.enqueueEncodedFrame(frame) }
        }
        for h in holders {
            // Written once per client at the end of the upstream read (one write carries
            // every frame of the batch).
            guard let s = table[h], !s.needsFlush else { continue }
            s.needsFlush = true
            clientsToFlush.append(s)
        }
        metrics.framesSent += holders.count
    }

    /// Larger notifications are framed once and shared rather than copied per holder.
    static let copiedNotificationBytes = 8 << 10

    /// Writes what notifications queued for each client during one upstream read.
    func flushClients() {
        guard !clientsToFlush.isEmpty else { return }
        for c in clientsToFlush {
            c.needsFlush = false
            if !c.closed { c.webSocket?.flush() }
        }
        clientsToFlush.removeAll(keepingCapacity: true)
    }

    // MARK: timers

    /// Expires requests past `request_timeout_ms` and checks the upstream's liveness.
    func sweep() {
        let t = now
        perform(session.tick(now: t))
        for (id, p, error) in router.expire(now: t) {
            if p.sent, case .client(let client, _) = p.owner {
                orders.requestTimedOut(upstreamID: id, client: client, method: p.method, intent: p.intent, now: t)
            }
            complete(p, .failed(error))
        }
        orders.expire(now: t)
        pumpCancels()
    }
}
