import Foundation
import JSONRPC
import TLS
import Transport

extension Gateway {
    /// The methods of SPEC §6.2, answered by the gateway itself. Returns false to forward.
    func handleLocally(_ request: ClientRequest) -> Bool {
        let session = request.session
        switch request.method.local {
        case nil:
            return false
        case .auth:
            localAuth(request)
        case .test:
            // Answered locally so heartbeat answers never wait on the upstream.
            session.testRequestDeadline?.cancel()
            session.testRequestDeadline = nil
            session.send(resultBytes(request, "{\"version\":\(quoted(upstreamVersion ?? Gateway.version))}"))
        case .hello:
            let p = request.params()
            session.helloName = p["client_name"] as? String
            session.helloVersion = p["client_version"] as? String
            logger.info("client hello", metadata: ["conn.id": "\(session.id)", "client": "\(session.label)",
                                                    "client_name": "\(session.helloName ?? "")", "client_version": "\(session.helloVersion ?? "")"])
            session.send(resultBytes(request, "{\"version\":\(quoted(upstreamVersion ?? Gateway.version))}"))
        case .setHeartbeat:
            setHeartbeat(request)
        case .disableHeartbeat:
            session.heartbeatTimer?.cancel()
            session.testRequestDeadline?.cancel()
            session.heartbeatInterval = nil
            session.send(resultBytes(request, "\"ok\""))
        case .identityChange:
            refuse(request, code: JSONRPCErrorCode.forbiddenByPolicy, message: "forbidden",
                   data: #"{"reason":"would change the identity of the shared upstream session"}"#)
        case .logout:
            guard authorize(request, required: .read) else { return true }
            // Deribit: closes at once without a response; cancel-on-disconnect is not triggered.
            // The session ends at once: nothing it sends after this is acted on.
            session.loggedOut = true
            disconnect(session, code: 1000, reason: "logout", metricReason: "logout")
        case .enableCancelOnDisconnect, .disableCancelOnDisconnect, .getCancelOnDisconnect:
            let scope = request.params()["scope"] as? String ?? "connection"
            if scope == "account" {
                // Account scope changes the shared session's account: full scope only, forwarded.
                guard authorize(request, required: .full) else { return true }
                return false
            }
            guard scope == "connection" else {
                refuse(request, code: JSONRPCErrorCode.invalidParams, message: "Invalid params", data: #"{"param":"scope","reason":"must be connection or account"}"#)
                return true
            }
            guard authorize(request, required: .read) else { return true }
            switch request.method.local {
            case .enableCancelOnDisconnect:
                session.cancelOnDisconnect = true
                session.send(resultBytes(request, "\"ok\""))
            case .disableCancelOnDisconnect:
                session.cancelOnDisconnect = false
                session.send(resultBytes(request, "\"ok\""))
            default:
                session.send(resultBytes(request, "{\"scope\":\"connection\",\"enabled\":\(session.cancelOnDisconnect)}"))
            }
        case .publicSubscribe:
            clientSubscribe(request, isPrivate: false)
        case .privateSubscribe:
            guard authorize(request, required: .read) else { return true }
            clientSubscribe(request, isPrivate: true)
        case .unsubscribe:
            clientUnsubscribe(request)
        case .unsubscribeAll:
            clientUnsubscribeAll(request)
        }
        return true
    }

    // MARK: heartbeats (SPEC §6.2)

    func setHeartbeat(_ request: ClientRequest) {
        let session = request.session
        guard let n = request.params()["interval"] as? NSNumber else {
            refuse(request, code: JSONRPCErrorCode.invalidParams, message: "Invalid params", data: #"{"param":"interval","reason":"must be a number"}"#)
            return
        }
        // Deribit sets no maximum; a day bounds the timer arithmetic.
        let interval = min(n.doubleValue, 86_400)
        guard interval >= 10 else {
            refuse(request, code: JSONRPCErrorCode.invalidParams, message: "Invalid params", data: #"{"param":"interval","reason":"must be >= 10"}"#)
            return
        }
        session.heartbeatTimer?.cancel()
        session.testRequestDeadline?.cancel()
        session.heartbeatInterval = Int(interval)
        session.send(resultBytes(request, "\"ok\""))
        let ms = Int64(interval * 1000)
        session.heartbeatTimer = loop.scheduleRepeating(every: .milliseconds(ms)) { [weak self, weak session] in
            guard let self, let session, !session.closed else { return }
            session.send(Array(#"{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}"#.utf8))
            if session.testRequestDeadline == nil {
                session.testRequestDeadline = self.loop.schedule(after: .milliseconds(ms)) { [weak self, weak session] in
                    guard let self, let session, !session.closed else { return }
                    self.logger.warning("client missed heartbeat; disconnecting", metadata: ["conn.id": "\(session.id)", "client": "\(session.label)"])
                    self.disconnect(session, code: 1000, reason: "heartbeat timeout", metricReason: "heartbeat")
                }
            }
        }
    }

    // MARK: public/auth against `clients` (SPEC §6.2)

    func localAuth(_ request: ClientRequest) {
        let session = request.session
        let p = request.params()
        let grant = p["grant_type"] as? String ?? ""
        var matched: GatewayConfig.Client?
        switch grant {
        case "client_credentials":
            if let id = p["client_id"] as? String, let secret = p["client_secret"] as? String,
               let c = config.client(named: id), c.secret.matches(secret) {
                matched = c
            }
        case "client_signature":
            // Deribit: signature = hex(HMAC-SHA256(secret, timestamp + "\n" + nonce + "\n" + data)).
            if let id = p["client_id"] as? String, let c = config.client(named: id),
               let ts = p["timestamp"] as? NSNumber, let sig = p["signature"] as? String {
                let nonce = p["nonce"] as? String ?? ""
                let data = p["data"] as? String ?? ""
                let message = "\(ts.int64Value)\n\(nonce)\n\(data)"
                let expected = Crypto.hex(Crypto.hmacSHA256(key: Array(c.secret.revealed.utf8), message: Array(message.utf8)))
                let skewMs = abs(Int64(wallMillis()) - ts.int64Value)
                if Secret(expected).matches(sig.lowercased()), skewMs <= 60_000 { matched = c }
            }
        case "refresh_token":
            if let token = p["refresh_token"] as? String, let name = refreshTokens[token], let c = config.client(named: name) {
                refreshTokens[token] = nil
                matched = c
            }
        default:
            refuse(request, code: JSONRPCErrorCode.invalidParams, message: "Invalid params", data: #"{"param":"grant_type","reason":"must be client_credentials, client_signature or refresh_token"}"#)
            return
        }
        guard let client = matched else {
            logger.notice("client authentication failed", metadata: ["conn.id": "\(session.id)", "grant_type": "\(grant)"])
            refuse(request, code: 13004, message: "invalid_credentials")
            return
        }
        session.client = client
        session.scope = client.scope
        session.cancelOnDisconnect = client.cancelOnDisconnect
        if let rl = client.rateLimit {
            session.rateLimit = TokenBucket(capacity: Double(rl.burst), refillPerSecond: rl.perSecond, now: now)
        }
        if let old = session.accessToken { accessTokens[old] = nil }
        let access = Crypto.hex(Crypto.randomBytes(16))
        let refresh = Crypto.hex(Crypto.randomBytes(16))
        session.accessToken = access
        accessTokens[access] = client.name
        refreshTokens[refresh] = client.name
        var scopeWords = [deribitScope(client.scope)]
        if let requested = p["scope"] as? String {
            for word in requested.split(separator: " ") where word.hasPrefix("session:") || word.hasPrefix("expires:") {
                scopeWords.insert(String(word), at: 0)
            }
        }
        if !scopeWords.contains(where: { $0.hasPrefix("session:") }) { scopeWords.insert("connection", at: 0) }
        var result = "{\"access_token\":\(quoted(access)),\"expires_in\":31536000,\"refresh_token\":\(quoted(refresh)),\"scope\":\(quoted(scopeWords.joined(separator: " "))),\"token_type\":\"bearer\",\"enabled_features\":[]"
        if let state = p["state"] as? String { result += ",\"state\":\(quoted(state))" }
        result += "}"
        logger.info("client authenticated", metadata: ["conn.id": "\(session.id)", "client": "\(client.name)", "scope": "\(client.scope.name)"])
        session.send(resultBytes(request, result))
    }

    func deribitScope(_ s: Scope) -> String {
        switch s {
        case .none, .public: return "mainaccount"
        case .read: return "mainaccount account:read trade:read wallet:read block_trade:read"
        case .trade: return "mainaccount account:read trade:read_write wallet:read block_trade:read_write"
        case .full: return "mainaccount account:read_write trade:read_write wallet:read_write block_trade:read_write"
        }
    }
}
