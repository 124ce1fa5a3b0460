import Foundation
import TLS

/// One request being handled. `after` collects effects that follow the response (a book snapshot
/// after subscribe, user.orders notifications after buy).
struct Ctx {
    var conn: Conn?
    var params: Params
    var now: UInt64
    var overWebSocket: Bool
    var after: [SimEffect] = []
    var nowMillis: Int64 { Int64(now / 1_000) }
}

enum Outcome {
    case result(J)
    case error(RPCError)
    case logout
}

extension SimExchange {
    typealias Handler = @Sendable (SimExchange, inout Ctx) throws(RPCError) -> J

    static let publicHandlers: [String: Handler] = [
        "public/hello": { ex, _ in .object([("version", .string(ex.config.version))]) },
        "public/test": { ex, ctx in ex.test(&ctx) },
        "public/get_time": { _, ctx in .int(ctx.nowMillis) },
        "public/status": { _, _ in .object([("locked", .string("false")), ("locked_indices", .array([]))]) },
        "public/get_currencies": { ex, _ in .array(ex.currencies.map(ex.currencyJSON)) },
        "public/get_instruments": { ex, ctx throws(RPCError) in try ex.getInstruments(&ctx) },
        "public/ticker": { ex, ctx throws(RPCError) in
            let i = try ex.instrumentParam(ctx.params)
            return ex.tickerJSON(i, now: ctx.nowMillis)
        },
        "public/get_order_book": { ex, ctx throws(RPCError) in try ex.getOrderBook(&ctx) },
        "public/auth": { ex, ctx throws(RPCError) in try ex.auth(&ctx) },
        "public/set_heartbeat": { ex, ctx throws(RPCError) in try ex.setHeartbeat(&ctx) },
        "public/disable_heartbeat": { ex, ctx throws(RPCError) in
            guard let conn = ctx.conn else { throw .websocketOnly }
            conn.heartbeatMicros = nil
            conn.testRequestSentAt = nil
            return .string("ok")
        },
        "public/subscribe": { ex, ctx throws(RPCError) in try ex.subscribe(&ctx, isPrivate: false) },
        "public/unsubscribe": { ex, ctx throws(RPCError) in try ex.unsubscribe(&ctx) },
        "public/unsubscribe_all": { ex, ctx throws(RPCError) in try ex.unsubscribeAll(&ctx) },
    ]

    /// Private handlers get the authenticated account as their third argument.
    typealias PrivateHandler = @Sendable (SimExchange, inout Ctx, String) throws(RPCError) -> J

    static let privateHandlers: [String: PrivateHandler] = [
        "private/subscribe": { ex, ctx, _ throws(RPCError) in try ex.subscribe(&ctx, isPrivate: true) },
        "private/unsubscribe": { ex, ctx, _ throws(RPCError) in try ex.unsubscribe(&ctx) },
        "private/unsubscribe_all": { ex, ctx, _ throws(RPCError) in try ex.unsubscribeAll(&ctx) },
        "private/enable_cancel_on_disconnect": { ex, ctx, acct throws(RPCError) in try ex.setCOD(&ctx, acct, true) },
        "private/disable_cancel_on_disconnect": { ex, ctx, acct throws(RPCError) in try ex.setCOD(&ctx, acct, false) },
        "private/get_cancel_on_disconnect": { ex, ctx, acct throws(RPCError) in try ex.getCOD(&ctx, acct) },
        "private/buy": { ex, ctx, acct throws(RPCError) in try ex.placeOrder(&ctx, acct, direction: .buy) },
        "private/sell": { ex, ctx, acct throws(RPCError) in try ex.placeOrder(&ctx, acct, direction: .sell) },
        "private/edit": { ex, ctx, acct throws(RPCError) in try ex.edit(&ctx, acct) },
        "private/cancel": { ex, ctx, acct throws(RPCError) in try ex.cancelOne(&ctx, acct) },
        "private/cancel_all": { ex, ctx, acct throws(RPCError) in ex.cancelMatching(&ctx, acct) { _ in true } },
        "private/cancel_all_by_instrument": { ex, ctx, acct throws(RPCError) in
            let i = try ex.instrumentParam(ctx.params)
            return ex.cancelMatching(&ctx, acct) { $0.instrument == i }
        },
        "private/cancel_all_by_currency": { ex, ctx, acct throws(RPCError) in
            let filter = try ex.currencyFilter(ctx.params)
            return ex.cancelMatching(&ctx, acct) { filter($0) }
        },
        "private/cancel_by_label": { ex, ctx, acct throws(RPCError) in
            let label = try ctx.params.requiredString("label")
            let currency = try ctx.params.string("currency")
            return ex.cancelMatching(&ctx, acct) {
                $0.label == label && (currency == nil || ex.instruments[$0.instrument].baseCurrency == currency)
            }
        },
        "private/get_open_orders": { ex, ctx, acct throws(RPCError) in ex.openOrdersJSON(acct) { _ in true } },
        "private/get_open_orders_by_currency": { ex, ctx, acct throws(RPCError) in
            let filter = try ex.currencyFilter(ctx.params)
            return ex.openOrdersJSON(acct) { filter($0) }
        },
        "private/get_open_orders_by_instrument": { ex, ctx, acct throws(RPCError) in
            let i = try ex.instrumentParam(ctx.params)
            return ex.openOrdersJSON(acct) { $0.instrument == i }
        },
        "private/get_order_state": { ex, ctx, acct throws(RPCError) in
            let id = try ctx.params.requiredString("order_id")
            guard let o = ex.openOrders[id] ?? ex.closedOrders[id], o.account == acct else { throw .orderNotFound }
            return ex.orderJSON(o)
        },
    ]

    /// Methods Deribit serves over WebSocket only.
    static let webSocketOnly: Set<String> = [
        "public/set_heartbeat", "public/disable_heartbeat", "public/subscribe", "public/unsubscribe",
        "public/unsubscribe_all", "private/subscribe", "private/unsubscribe", "private/unsubscribe_all",
        "private/logout",
    ]

    func dispatch(_ method: String, _ ctx: inout Ctx) -> Outcome {
        if !ctx.overWebSocket, Self.webSocketOnly.contains(method) { return .error(.websocketOnly) }
        do {
            if let h = Self.publicHandlers[method] { return .result(try h(self, &ctx)) }
            if method.hasPrefix("private/") {
                guard Self.privateHandlers[method] != nil || method == "private/logout" else { return .error(.methodNotFound) }
                let account = try authorize(ctx)
                if method == "private/logout" {
                    // Deribit: invalidate_token (default true) revokes the session's tokens.
                    if try ctx.params.bool("invalidate_token") ?? true, let token = ctx.conn?.accessToken {
                        accessTokens[token] = nil
                    }
                    return .logout
                }
                return .result(try Self.privateHandlers[method]!(self, &ctx, account))
            }
            return .error(.methodNotFound)
        } catch {
            return .error(error)
        }
    }

    /// The account behind a private request: an `access_token` param, else the connection's session.
    func authorize(_ ctx: Ctx) throws(RPCError) -> String {
        if let token = try ctx.params.string("access_token") {
            guard let t = accessTokens[token], ctx.now < t.expiresAt else {
                throw RPCError(code: 13009, message: "unauthorized", data: .object([("reason", .string("invalid_token"))]))
            }
            return t.clientID
        }
        guard let account = ctx.conn?.account(now: ctx.now) else { throw .unauthorized }
        return account
    }

    // MARK: public/test, heartbeat

    func test(_ ctx: inout Ctx) -> J {
        // Answering a test_request is what keeps a heartbeat connection open.
        ctx.conn?.testRequestSentAt = nil
        return .object([("version", .string(config.version))])
    }

    func setHeartbeat(_ ctx: inout Ctx) throws(RPCError) -> J {
        guard let conn = ctx.conn else { throw .websocketOnly }
        guard let interval = try? ctx.params.number("interval") else {
            throw .invalidParams("interval", "must be a number")
        }
        // Deribit: "The heartbeat interval in seconds, but not less than 10".
        guard interval >= 10 else { throw .invalidParams("interval", "must be greater than or equal to 10") }
        let micros = UInt64(interval * 1_000_000)
        conn.heartbeatMicros = micros
        conn.testRequestSentAt = nil
        conn.nextTestRequestAt = ctx.now + micros
        return .string("ok")
    }

    // MARK: auth

    func auth(_ ctx: inout Ctx) throws(RPCError) -> J {
        let p = ctx.params
        let grant = try p.requiredString("grant_type")
        var clientID: String
        var scope = try p.string("scope")
        switch grant {
        case "client_credentials":
            clientID = try p.requiredString("client_id")
            let secret = try p.requiredString("client_secret")
            guard secrets[clientID] == secret else { throw .invalidCredentials }
        case "client_signature":
            // Deribit: signature = hex(HMAC-SHA256(secret, timestamp + "\n" + nonce + "\n" + data)).
            clientID = try p.requiredString("client_id")
            guard let ts = try p.number("timestamp") else { throw .missing("timestamp") }
            let nonce = try p.requiredString("nonce")
            let signature = try p.requiredString("signature")
            let data = try p.string("data") ?? ""
            guard let secret = secrets[clientID] else { throw .invalidCredentials }
            let text = "\(Int64(ts))\n\(nonce)\n\(data)"
            let expected = Crypto.hex(Crypto.hmacSHA256(key: Array(secret.utf8), message: Array(text.utf8)))
            guard expected == signature.lowercased() else { throw .invalidCredentials }
        case "refresh_token":
            let token = try p.requiredString("refresh_token")
            guard let t = refreshTokens[token], ctx.now < t.expiresAt else { throw .invalidCredentials }
            refreshTokens[token] = nil
            clientID = t.clientID
            if scope == nil { scope = t.scope }
        default:
            throw .invalidParams("grant_type", "must be one of client_credentials, client_signature, refresh_token")
        }
        var lifetime = config.tokenLifetimeSeconds
        // Deribit scope `expires:NUMBER` sets the token lifetime in seconds.
        for part in (scope ?? "").split(separator: " ") where part.hasPrefix("expires:") {
            if let n = UInt64(part.dropFirst(8)), n > 0 { lifetime = n }
        }
        let grantedScope = scope ?? "connection mainaccount"
        let expiresAt = ctx.now + lifetime * 1_000_000
        let access = newToken(now: ctx.now)
        let refresh = newToken(now: ctx.now)
        accessTokens[access] = Token(clientID: clientID, scope: grantedScope, expiresAt: expiresAt)
        refreshTokens[refresh] = Token(clientID: clientID, scope: grantedScope, expiresAt: ctx.now + max(lifetime, config.tokenLifetimeSeconds) * 1_000_000)
        if let conn = ctx.conn {
            conn.clientID = clientID
            conn.accessToken = access
            conn.authExpiresAt = expiresAt
            // Deribit: account-scope cancel-on-disconnect applies to connections opened after it.
            if !conn.cancelOnDisconnectSetExplicitly { conn.cancelOnDisconnect = accountCOD[clientID] ?? false }
        }
        var result: [(String, J)] = [
            ("access_token", .string(access)),
            ("expires_in", .num(lifetime)),
            ("refresh_token", .string(refresh)),
            ("scope", .string(grantedScope)),
        ]
        if let state = try p.string("state") { result.append(("state", .string(state))) }
        result += [("enabled_features", .array([])), ("token_type", .string("bearer"))]
        return .object(result)
    }

    /// Deribit-looking token: `millis.8chars.64chars`, random.
    func newToken(now: UInt64) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        func chunk(_ n: Int) -> String {
            String((0..<n).map { _ in alphabet[Int(tokenRNG.next() % 64)] })
        }
        return "\(now / 1_000).\(chunk(8)).\(chunk(64))"
    }

    // MARK: cancel-on-disconnect

    func codScope(_ p: Params) throws(RPCError) -> String {
        let scope = try p.string("scope") ?? "connection"
        guard scope == "connection" || scope == "account" else {
            throw .invalidParams("scope", "must be one of connection, account")
        }
        return scope
    }

    func setCOD(_ ctx: inout Ctx, _ account: String, _ on: Bool) throws(RPCError) -> J {
        if try codScope(ctx.params) == "account" {
            accountCOD[account] = on
        } else {
            // Deribit: scope connection works over WebSocket only.
            guard let conn = ctx.conn else { throw .websocketOnly }
            conn.cancelOnDisconnect = on
            conn.cancelOnDisconnectSetExplicitly = true
        }
        return .string("ok")
    }

    func getCOD(_ ctx: inout Ctx, _ account: String) throws(RPCError) -> J {
        let scope = try codScope(ctx.params)
        let enabled = scope == "account" ? (accountCOD[account] ?? false) : (ctx.conn?.cancelOnDisconnect ?? false)
        return .object([("scope", .string(scope)), ("enabled", .bool(enabled))])
    }

    // MARK: market data methods

    func instrumentParam(_ p: Params) throws(RPCError) -> Int {
        let name = try p.requiredString("instrument_name")
        guard let i = instrumentIndex[name] else { throw .invalidParams("instrument_name", "instrument not found") }
        return i
    }

    func getInstruments(_ ctx: inout Ctx) throws(RPCError) -> J {
        let currency = try ctx.params.requiredString("currency")
        guard currency == "any" || currencies.contains(currency) else {
            throw .invalidParams("currency", "must be one of \(currencies.joined(separator: ", ")), any")
        }
        let kind = try ctx.params.string("kind")
        if let kind, !["future", "option", "spot", "future_combo", "option_combo"].contains(kind) {
            throw .invalidParams("kind", "must be one of future, option, spot, future_combo, option_combo")
        }
        // The simulator lists no expired instruments.
        if try ctx.params.bool("expired") == true { return .array([]) }
        return .array(instruments.indices.filter {
            (currency == "any" || instruments[$0].baseCurrency == currency) && (kind == nil || instruments[$0].kind.rawValue == kind)
        }.map(instrumentJSON))
    }

    func getOrderBook(_ ctx: inout Ctx) throws(RPCError) -> J {
        let i = try instrumentParam(ctx.params)
        let depth = try ctx.params.number("depth").map { Int($0) } ?? config.bookDepth
        let m = markets[i]
        let level: (Fixed, Fixed) -> J = { .array([.fixed($0), .fixed($1)]) }
        var fields = tickerFields(i, now: ctx.nowMillis)
        fields.insert(("change_id", .int(m.book.changeID)), at: 0)
        fields.append(("bids", .array(m.book.levels(bids: true, limit: max(1, depth)).map(level))))
        fields.append(("asks", .array(m.book.levels(bids: false, limit: max(1, depth)).map(level))))
        return .object(fields)
    }
}
