import GatewayCore
import JSONRPC
import TLS
import Transport

extension Gateway {
    /// The methods of SPEC §6.2, answered by the gateway itself (never reach the upstream),
    /// except account-scope cancel-on-disconnect, which is forwarded for scope `full`.
    func answerLocally(_ request: ClientRequest, _ method: LocalMethod) {
        let s = request.session
        switch method {
        case .auth:
            localAuth(request)
        case .test:
            // Answered locally so heartbeat answers never wait on the upstream.
            s.heartbeat.receivedTest()
            armHeartbeat(s)
            reply(request, .object([("version", .string(session.version ?? Gateway.version))]))
        case .hello:
            s.helloName = request.stringParam("client_name")
            s.helloVersion = request.stringParam("client_version")
            // Client text is quoted and escaped: a newline in it cannot forge a log line.
            s.logger.info("client hello", metadata: ["client": "\(s.label)", "client_name": "\(quotedForLog(s.helloName ?? ""))",
                                                      "client_version": "\(quotedForLog(s.helloVersion ?? ""))"])
            reply(request, .object([("version", .string(session.version ?? Gateway.version))]))
        case .setHeartbeat:
            switch ClientHeartbeat.validate(interval: request.numberParam("interval")) {
            case .failure(let error):
                refuse(request, error)
            case .success(let interval):
                s.heartbeat.set(intervalSeconds: interval, now: now)
                reply(request, "ok")
                armHeartbeat(s)
            }
        case .disableHeartbeat:
            s.heartbeat.disable()
            armHeartbeat(s)
            reply(request, "ok")
        case .identityChange:
            refuse(request, .forbidden(reason: "would change the identity of the shared upstream session"))
        case .logout:
            guard authorize(request, required: .read) else { return }
            // Deribit: closes at once without a response; cancel-on-disconnect is not triggered.
            // The session ends at once: nothing it sends after this is acted on.
            countRequest(s, .local)
            s.loggedOut = true
            disconnect(s, code: 1000, reason: "logout", metricReason: "logout")
        case .enableCancelOnDisconnect, .disableCancelOnDisconnect, .getCancelOnDisconnect:
            let scope = request.stringParam("scope") ?? "connection"
            if scope == "account" {
                // Account scope changes the shared session's account: full scope only, forwarded.
                if authorize(request, required: .full) { forward(request) }
                return
            }
            guard scope == "connection" else {
                refuse(request, .invalidParams(param: "scope", reason: "must be connection or account"))
                return
            }
            guard authorize(request, required: .read) else { return }
            switch method {
            case .enableCancelOnDisconnect:
                s.cancelOnDisconnect = true
                reply(request, "ok")
            case .disableCancelOnDisconnect:
                s.cancelOnDisconnect = false
                reply(request, "ok")
            default:
                reply(request, .object([("scope", "connection"), ("enabled", .bool(s.cancelOnDisconnect))]))
            }
        case .publicSubscribe:
            subscribe(request, isPrivate: false)
        case .privateSubscribe:
            guard authorize(request, required: .read) else { return }
            subscribe(request, isPrivate: true)
        case .unsubscribe:
            guard let channels = request.channelsParam() else {
                refuse(request, .invalidParams(param: "channels", reason: "must be an array of strings"))
                return
            }
            let (removed, effects) = subscriptions.unsubscribe(s.id, channels: channels)
            apply(effects)
            reply(request, .strings(removed))
        case .unsubscribeAll:
            apply(subscriptions.releaseAll(of: s.id, gone: false))
            reply(request, "ok")
        }
    }

    private func subscribe(_ request: ClientRequest, isPrivate: Bool) {
        let s = request.session
        guard let channels = request.channelsParam() else {
            refuse(request, .invalidParams(param: "channels", reason: "must be an array of strings"))
            return
        }
        let asker = SubscribeRequest(client: s.id, id: request.id, receivedAt: request.receivedAt)
        switch subscriptions.subscribe(asker, channels: channels, scope: s.scope, isPrivate: isPrivate) {
        case .failure(let error):
            refuse(request, error)
        case .success(let effects):
            countRequest(s, .local)
            apply(effects)
        }
    }

    // MARK: heartbeats (SPEC §6.2)

    /// One timer per client, at the heartbeat machine's next deadline.
    func armHeartbeat(_ s: ClientSession) {
        s.heartbeatTimer?.cancel()
        s.heartbeatTimer = nil
        guard let at = s.heartbeat.nextWakeup, !s.closed else { return }
        s.heartbeatTimer = schedule(at: at) { [weak self, weak s] in
            guard let self, let s, !s.closed else { return }
            switch s.heartbeat.timerFired(now: self.now) {
            case .none:
                break
            case .sendTestRequest:
                s.send(JSONRPCWire.heartbeatTestRequest)
            case .disconnect:
                s.logger.warning("client missed heartbeat; disconnecting", metadata: ["client": "\(s.label)"])
                self.disconnect(s, code: 1000, reason: "heartbeat timeout", metricReason: "heartbeat")
                return
            }
            self.armHeartbeat(s)
        }
    }

    // MARK: public/auth against `clients` (SPEC §6.2)

    func localAuth(_ request: ClientRequest) {
        let s = request.session
        let grant = request.stringParam("grant_type") ?? ""
        if let until = s.authBlockedUntil, now < until {
            // SPEC §8: after a failure, the next attempt must wait; one that does not is not
            // checked at all (so guesses cannot be pipelined), nor counted against the client.
            refuse(request, .tooManyRequests(reason: "authentication throttled; retry in \((until - now) / 1_000_000 + 1) ms"))
            return
        }
        var matched: GatewayConfig.Client?
        switch grant {
        case "client_credentials":
            if let id = request.stringParam("client_id"), let secret = request.stringParam("client_secret"),
               let c = config.client(named: id), c.secret.matches(secret) {
                matched = c
            }
        case "client_signature":
            // Deribit: signature = hex(HMAC-SHA256(secret, timestamp + "\n" + nonce + "\n" + data)).
            if let id = request.stringParam("client_id"), let c = config.client(named: id),
               let ts = request.numberParam("timestamp"), ts.isFinite, abs(ts) < 1e15, let sig = request.stringParam("signature") {
                let nonce = request.stringParam("nonce") ?? ""
                let data = request.stringParam("data") ?? ""
                let message = "\(Int64(ts))\n\(nonce)\n\(data)"
                let expected = Crypto.hex(Crypto.hmacSHA256(key: Array(c.secret.revealed.utf8), message: Array(message.utf8)))
                // Within Deribit's window, and never the same signed request twice.
                if Secret(expected).matches(sig.lowercased()),
                   signatures.admit(client: c.name, timestamp: Int64(ts), nonce: nonce, signature: sig, nowMilliseconds: Int64(wallMillis())) {
                    matched = c
                }
            }
        case "refresh_token":
            if let token = request.stringParam("refresh_token"), let name = tokens.redeem(refresh: token, now: now),
               let c = config.client(named: name) {
                matched = c
            }
        default:
            refuse(request, .invalidParams(param: "grant_type", reason: "must be client_credentials, client_signature or refresh_token"))
            return
        }
        guard let client = matched else {
            authFailed(request, grant: grant, .invalidCredentials)
            return
        }
        s.authenticated(as: client, now: now)
        let access = Crypto.hex(Crypto.randomBytes(16))
        let refresh = Crypto.hex(Crypto.randomBytes(16))
        // Tokens of a WebSocket die with it; those of an HTTP call live out their lifetime.
        tokens.issue(access: access, refresh: refresh, client: client.name, session: s.link.isWebSocket ? s.id : nil, now: now)
        var scopeWords = [Self.deribitScope(client.scope)]
        if let requested = request.stringParam("scope") {
            for word in requested.split(separator: " ") where word.hasPrefix("session:") || word.hasPrefix("expires:") {
                scopeWords.insert(String(word), at: 0)
            }
        }
        if !scopeWords.contains(where: { $0.hasPrefix("session:") }) { scopeWords.insert("connection", at: 0) }
        var result: [(String, JSONValue)] = [
            ("access_token", .string(access)), ("expires_in", .int(Int64(TokenStore.accessLifetime / 1_000_000_000))),
            ("refresh_token", .string(refresh)),
            ("scope", .string(scopeWords.joined(separator: " "))), ("token_type", "bearer"), ("enabled_features", []),
        ]
        if let state = request.stringParam("state") { result.append(("state", .string(state))) }
        s.logger.info("client authenticated", metadata: ["scope": "\(client.scope.name)"])
        reply(request, .object(result))
    }

    /// A failed `public/auth`: counted, answered, and throttled per connection and per peer.
    private func authFailed(_ request: ClientRequest, grant: String, _ error: GatewayError) {
        let s = request.session
        metrics.authFailures += 1
        let verdict = authThrottle.failed(connection: s.id, peer: s.peer, now: now)
        s.logger.notice("client authentication failed", metadata: ["grant_type": "\(quotedForLog(grant))", "peer": "\(s.peer)"])
        refuse(request, error)
        switch verdict {
        case .answer(let until):
            s.authBlockedUntil = until
        case .answerAndClose:
            s.logger.warning("too many authentication failures; closing", metadata: ["peer": "\(s.peer)"])
            disconnect(s, code: 1008, reason: "too many authentication failures", metricReason: "auth_failures")
        }
    }

    static func deribitScope(_ s: Scope) -> String {
        switch s {
        case .none, .public: return "mainaccount"
        case .read: return "mainaccount account:read trade:read wallet:read block_trade:read"
        case .trade: return "mainaccount account:read trade:read_write wallet:read block_trade:read_write"
        case .full: return "mainaccount account:read_write trade:read_write wallet:read_write block_trade:read_write"
        }
    }
}
