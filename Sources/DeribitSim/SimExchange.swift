import Foundation

/// The simulated Deribit exchange: every decision of the simulator, no I/O.
///
/// Feed it events (a connection opened, a text frame arrived, time passed) and it returns the
/// effects the glue must perform. Time is always passed in (`nowMicros`, microseconds since the
/// Unix epoch), so tests drive it without clocks or sockets; only `usOut` may read the glue's `clock`.
///
/// Not thread-safe: an instance is confined to the glue's event loop; every call must come from it.
public final class SimExchange {
    let config: SimConfig
    var connections: [SimConnectionID: Conn] = [:]
    var rng: SplitMix64
    var tokenRNG = SystemRandomNumberGenerator()

    // Instruments and their synthetic markets, by index.
    var instruments: [SimInstrument]
    var instrumentIndex: [String: Int] = [:]
    var markets: [MarketState] = []
    var currencies: [String] = []

    // Subscriptions.
    var subscribers: [String: [SimConnectionID]] = [:]
    var channelInfo: [String: Channel] = [:]
    /// Market-data channels with at least one subscriber, per instrument, sorted.
    var instrumentChannels: [[String]]

    // Accounts and tokens.
    var secrets: [String: String] = [:]
    var accessTokens: [String: Token] = [:]
    var refreshTokens: [String: Token] = [:]
    var accountCOD: [String: Bool] = [:]
    var accountCredits: [String: Credits] = [:]

    // Orders.
    var openOrders: [String: Order] = [:]
    var closedOrders: [String: Order] = [:]
    var closedOrderIDs: [String] = []
    var orderSeq: Int64 = 3_000_000_000
    var tradeSeq: Int64 = 1_000_000

    // Observability for /sim/state.
    var methodCalls: [String: Int] = [:]
    var subscribeRequests: [String: Int] = [:]
    var unsubscribeRequests: [String: Int] = [:]
    var notificationsSent: UInt64 = 0
    var connectionsOpened: UInt64 = 0

    /// Reads the wall clock (µs since the epoch) when a response is encoded, so `usOut` / `usDiff`
    /// measure the time spent handling the request. Nil (unit tests): `usOut` is the event's time.
    public var clock: (() -> UInt64)?
    /// While true, no `test_request` is sent and no connection is dropped for not answering one
    /// (the glue's `stop_answering` fault: a stalled exchange does not hang up on its clients).
    public private(set) var heartbeatsPaused = false

    let stepMicros: UInt64
    static let maxStepsPerTick = 1_000
    static let maxClosedOrders = 10_000

    public init(config: SimConfig) {
        self.config = config
        rng = SplitMix64(seed: config.seed)
        instruments = config.instruments
        instrumentChannels = Array(repeating: [], count: config.instruments.count)
        stepMicros = UInt64(max(1, (1_000_000 / max(config.notificationRatePerSecond, 0.001)).rounded()))
        for (i, inst) in instruments.enumerated() {
            instrumentIndex[inst.name] = i
            if !currencies.contains(inst.baseCurrency) { currencies.append(inst.baseCurrency) }
            markets.append(MarketState(instrument: inst, depth: config.bookDepth,
                                       firstChangeID: Int64(1_000 + i) * 1_000_000, rng: &rng))
        }
        for key in config.keys { secrets[key.id] = key.secret }
    }

    // MARK: - Events

    public func connectionOpened(_ id: SimConnectionID, nowMicros: UInt64) {
        connections[id] = Conn(id: id, openedAt: nowMicros, credits: Credits(config: config, now: nowMicros))
        connectionsOpened += 1
    }

    public func received(text: [UInt8], from id: SimConnectionID, nowMicros: UInt64) -> [SimEffect] {
        guard let conn = connections[id] else { return [] }
        // Deribit refuses frames over 32 kB with -32600 and no id: it does not parse them.
        guard text.count <= config.maxFrameBytes else {
            return [.send(id, envelope(id: .absent, error: .requestTooLarge, usIn: nowMicros, usOut: nowMicros))]
        }
        let parsed = parse(text)
        switch parsed {
        case .failure(let error, let rawID):
            return [.send(id, envelope(id: rawID, error: error, usIn: nowMicros, usOut: nowMicros))]
        case .success(let request):
            methodCalls[request.method, default: 0] += 1
            // Deribit: running out of credits ends the session (10028, then the connection closes).
            if !charge(conn, method: request.method, now: nowMicros) {
                var effects: [SimEffect] = [.send(id, envelope(id: request.id, error: .tooManyRequests, usIn: nowMicros, usOut: nowMicros))]
                effects.append(.close(id, code: 1008, reason: "too_many_requests"))
                effects += teardown(conn, cancelOnDisconnect: true, now: nowMicros)
                return effects
            }
            var ctx = Ctx(conn: conn, params: request.params, now: nowMicros, overWebSocket: true)
            let outcome = dispatch(request.method, &ctx)
            var effects: [SimEffect] = []
            switch outcome {
            case .result(let result):
                effects.append(.send(id, envelope(id: request.id, result: result, usIn: nowMicros, usOut: nowMicros)))
            case .error(let error):
                effects.append(.send(id, envelope(id: request.id, error: error, usIn: nowMicros, usOut: nowMicros)))
            case .logout:
                // Deribit: private/logout closes the connection without a response and without
                // cancel-on-disconnect.
                effects.append(.close(id, code: 1000, reason: "logout"))
                effects += teardown(conn, cancelOnDisconnect: false, now: nowMicros)
            }
            effects += ctx.after
            return effects
        }
    }

    public func connectionClosed(_ id: SimConnectionID, nowMicros: UInt64) -> [SimEffect] {
        guard let conn = connections[id] else { return [] }
        return teardown(conn, cancelOnDisconnect: true, now: nowMicros)
    }

    /// Pauses or resumes heartbeats. On resume every heartbeat connection starts a fresh interval.
    public func setHeartbeatsPaused(_ paused: Bool, nowMicros: UInt64) {
        guard paused != heartbeatsPaused else { return }
        heartbeatsPaused = paused
        guard !paused else { return }
        for conn in connections.values {
            guard let interval = conn.heartbeatMicros else { continue }
            conn.testRequestSentAt = nil
            conn.nextTestRequestAt = nowMicros + interval
        }
    }

    /// Sends a `test_request` now to every heartbeat connection not already awaiting an answer,
    /// as if its interval had just passed: the same answer rule follows (interval + grace).
    public func testRequestNow(nowMicros: UInt64) -> [SimEffect] {
        var effects: [SimEffect] = []
        for conn in connections.values.sorted(by: { $0.id < $1.id }) where conn.heartbeatMicros != nil && conn.testRequestSentAt == nil {
            conn.testRequestSentAt = nowMicros
            conn.nextTestRequestAt = nowMicros + conn.heartbeatMicros!
            effects.append(.send(conn.id, Self.testRequestFrame))
        }
        return effects
    }

    public func tick(nowMicros: UInt64) -> [SimEffect] {
        var effects: [SimEffect] = []
        // Heartbeats (public/set_heartbeat): a test_request every interval; an unanswered one
        // closes the connection "immediately" once interval + grace have passed.
        for conn in connections.values.sorted(by: { $0.id < $1.id }) where !heartbeatsPaused {
            guard let interval = conn.heartbeatMicros else { continue }
            if let sent = conn.testRequestSentAt {
                if nowMicros >= sent + interval + UInt64(config.heartbeatGraceSeconds * 1_000_000) {
                    effects.append(.drop(conn.id))
                    effects += teardown(conn, cancelOnDisconnect: true, now: nowMicros)
                }
            } else if nowMicros >= conn.nextTestRequestAt {
                conn.testRequestSentAt = nowMicros
                conn.nextTestRequestAt = nowMicros + interval
                effects.append(.send(conn.id, Self.testRequestFrame))
            }
        }
        for i in markets.indices {
            guard var due = markets[i].nextStepMicros else { continue }
            var steps = 0
            while due <= nowMicros, steps < Self.maxStepsPerTick {
                effects += step(instrument: i, now: due)
                due += stepMicros
                steps += 1
            }
            if due <= nowMicros { due = nowMicros + stepMicros }   // fell behind: skip, do not burst
            markets[i].nextStepMicros = due
        }
        return effects
    }

    public func publish(channel: String, dataJSON: [UInt8], nowMicros: UInt64) -> [SimEffect] {
        guard let subs = subscribers[channel], !subs.isEmpty else { return [] }
        notificationsSent += UInt64(subs.count)
        return [.broadcast(subs, Self.notification(channel: channel, data: .raw(dataJSON)))]
    }

    /// Deribit's HTTP GET API (`/api/v2/public/METHOD?params`): the same JSON-RPC envelope without
    /// an id. `authorization` is the `Authorization` header (`Bearer TOKEN`) for private methods.
    public func httpAPI(path: String, query: [(name: String, value: String)], nowMicros: UInt64,
                        authorization: String? = nil) -> (status: Int, body: [UInt8]) {
        var method = path
        for prefix in ["/api/v2/", "api/v2/", "/"] where method.hasPrefix(prefix) { method.removeFirst(prefix.count) }
        methodCalls[method, default: 0] += 1
        var params: [String: Any] = [:]
        for (k, v) in query { params[k] = v }
        if let auth = authorization, auth.lowercased().hasPrefix("bearer "), params["access_token"] == nil {
            params["access_token"] = String(auth.dropFirst(7)).trimmingCharacters(in: .whitespaces)
        }
        var ctx = Ctx(conn: nil, params: Params(params), now: nowMicros, overWebSocket: false)
        switch dispatch(method, &ctx) {
        case .result(let r): return (200, envelope(id: .absent, result: r, usIn: nowMicros, usOut: nowMicros))
        case .error(let e): return (400, envelope(id: .absent, error: e, usIn: nowMicros, usOut: nowMicros))
        case .logout: return (200, envelope(id: .absent, result: .string("ok"), usIn: nowMicros, usOut: nowMicros))
        }
    }

    // MARK: - Parsing

    struct Request {
        var id: RawID
        var method: String
        var params: Params
    }

    enum ParseOutcome {
        case success(Request)
        case failure(RPCError, RawID)
    }

    func parse(_ text: [UInt8]) -> ParseOutcome {
        guard let object = try? JSONSerialization.jsonObject(with: Data(text), options: [.fragmentsAllowed]) else {
            return .failure(.parseError, .absent)
        }
        guard let dict = object as? [String: Any] else { return .failure(.invalidRequest, .absent) }
        let rawID = RequestScanner.id(in: text)
        if rawID == .invalid { return .failure(.invalidRequest, .absent) }
        guard let method = dict["method"] as? String, !method.isEmpty else { return .failure(.invalidRequest, rawID) }
        let params: [String: Any]
        switch dict["params"] {
        case nil, is NSNull: params = [:]
        case let p as [String: Any]: params = p
        default: return .failure(.invalidParamsObject, rawID)
        }
        return .success(Request(id: rawID, method: method, params: Params(params)))
    }

    // MARK: - Envelope

    static let testRequestFrame: [UInt8] = Array(#"{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}"#.utf8)

    /// `{"jsonrpc":"2.0","id":…,"result":…,"usIn":…,"usOut":…,"usDiff":…,"testnet":true}`
    func envelope(id: RawID, result: J? = nil, error: RPCError? = nil, usIn: UInt64, usOut eventTime: UInt64) -> [UInt8] {
        // The result is built by now: with a clock, usOut is the real time it leaves the core.
        let usOut = clock.map { max($0(), usIn) } ?? eventTime
        var o = JSONOut(capacity: 256)
        o.ascii(#"{"jsonrpc":"2.0","#)
        if case .value(let raw) = id {
            o.ascii(#""id":"#)
            o.bytes.append(contentsOf: raw)
            o.ascii(",")
        }
        if let error {
            o.ascii(#""error":{"message":"#)
            o.string(error.message)
            o.ascii(#","code":"#)
            o.int(Int64(error.code))
            if let data = error.data { o.ascii(#","data":"#); o.write(data) }
            o.ascii("}")
        } else {
            o.ascii(#""result":"#)
            o.write(result ?? .null)
        }
        o.ascii(#","usIn":"#); o.int(Int64(usIn))
        o.ascii(#","usOut":"#); o.int(Int64(usOut))
        o.ascii(#","usDiff":"#); o.int(Int64(usOut &- usIn))
        o.ascii(#","testnet":true}"#)
        return o.bytes
    }

    /// `{"jsonrpc":"2.0","method":"subscription","params":{"channel":…,"data":…}}`
    static func notification(channel: String, data: J) -> [UInt8] {
        var o = JSONOut(capacity: 512)
        o.ascii(#"{"jsonrpc":"2.0","method":"subscription","params":{"channel":"#)
        o.string(channel)
        o.ascii(#","data":"#)
        o.write(data)
        o.ascii("}}")
        return o.bytes
    }

    // MARK: - Connection teardown and credits

    /// Forgets a connection; with `cancelOnDisconnect` and the connection's flag on, cancels the
    /// open orders it created (Deribit: cancel-on-disconnect does not touch other connections' orders).
    func teardown(_ conn: Conn, cancelOnDisconnect: Bool, now: UInt64) -> [SimEffect] {
        connections[conn.id] = nil
        for channel in conn.channels { removeSubscriber(conn.id, from: channel) }
        conn.channels = []
        guard cancelOnDisconnect, conn.cancelOnDisconnect else { return [] }
        let mine = openOrders.values.filter { $0.connection == conn.id }.sorted { $0.seq < $1.seq }
        var effects: [SimEffect] = []
        for order in mine {
            effects += cancel(orderID: order.id, reason: "cancel_on_disconnect", now: now).effects
        }
        return effects
    }

    enum CreditClass { case standard, subscribe, matchingEngine }

    static let matchingEngineMethods: Set<String> = [
        "private/buy", "private/sell", "private/edit", "private/edit_by_label", "private/cancel", "private/cancel_all",
        "private/cancel_all_by_instrument", "private/cancel_all_by_currency", "private/cancel_all_by_kind_or_type",
        "private/cancel_by_label",
    ]

    /// Buckets belong to the account once the connection is authenticated (Deribit limits are per
    /// sub-account) and to the connection before.
    func charge(_ conn: Conn, method: String, now: UInt64) -> Bool {
        let cls: CreditClass = method.hasSuffix("/subscribe") ? .subscribe
            : Self.matchingEngineMethods.contains(method) ? .matchingEngine : .standard
        if let account = conn.account(now: now) {
            var credits = accountCredits[account] ?? Credits(config: config, now: now)
            let ok = credits.take(cls, now: now)
            accountCredits[account] = credits
            return ok
        }
        return conn.credits.take(cls, now: now)
    }
}

/// A WebSocket connection's session state.
final class Conn {
    let id: SimConnectionID
    let openedAt: UInt64
    var clientID: String?
    var accessToken: String?
    var authExpiresAt: UInt64 = 0
    var channels: [String] = []
    var cancelOnDisconnect = false
    var cancelOnDisconnectSetExplicitly = false
    var heartbeatMicros: UInt64?
    var nextTestRequestAt: UInt64 = 0
    var testRequestSentAt: UInt64?
    var credits: Credits

    init(id: SimConnectionID, openedAt: UInt64, credits: Credits) {
        self.id = id; self.openedAt = openedAt; self.credits = credits
    }

    func account(now: UInt64) -> String? {
        guard let c = clientID, now < authExpiresAt else { return nil }
        return c
    }
}

struct Token {
    var clientID: String
    var scope: String
    var expiresAt: UInt64
}

struct Bucket {
    var level: Double
    var last: UInt64
    let cfg: SimBucketConfig

    init(_ cfg: SimBucketConfig, now: UInt64) { self.cfg = cfg; level = cfg.max; last = now }

    mutating func refill(now: UInt64) {
        if now > last { level = min(cfg.max, level + Double(now - last) / 1_000_000 * cfg.refillPerSecond) }
        last = max(last, now)
    }

    mutating func take(now: UInt64) -> Bool {
        refill(now: now)
        guard level >= cfg.cost else { return false }
        level -= cfg.cost
        return true
    }
}

struct Credits {
    var standard: Bucket
    var subscribe: Bucket
    var matchingEngine: Bucket

    init(config: SimConfig, now: UInt64) {
        standard = Bucket(config.defaultCredits, now: now)
        subscribe = Bucket(config.subscribeCredits, now: now)
        matchingEngine = Bucket(SimBucketConfig(cost: 1, max: config.matchingEngineBurst,
                                                refillPerSecond: config.matchingEngineRate), now: now)
    }

    mutating func take(_ cls: SimExchange.CreditClass, now: UInt64) -> Bool {
        switch cls {
        case .standard: return standard.take(now: now)
        case .subscribe: return subscribe.take(now: now)
        case .matchingEngine: return matchingEngine.take(now: now)
        }
    }

    mutating func json(now: UInt64) -> J {
        standard.refill(now: now); subscribe.refill(now: now); matchingEngine.refill(now: now)
        return .object([("default", .double((standard.level * 1000).rounded() / 1000)),
                        ("subscribe", .double((subscribe.level * 1000).rounded() / 1000)),
                        ("matching_engine", .double((matchingEngine.level * 1000).rounded() / 1000))])
    }
}
