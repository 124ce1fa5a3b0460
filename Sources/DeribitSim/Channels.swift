// Subscriptions and synthetic notifications. A notification is encoded once per channel and sent
// to every subscriber as one `.broadcast`.

enum Channel {
    case ticker(Int)
    case trades(Int)
    /// Incremental book: snapshot first, then changes linked by change_id / prev_change_id.
    case book(Int)
    /// Grouped book: full top-`depth` snapshot every time; `group` nil for "none".
    case grouped(Int, group: Fixed?, depth: Int)
    case userOrders(UserFilter, raw: Bool)
    case userTrades(UserFilter, raw: Bool)

    var instrument: Int? {
        switch self {
        case .ticker(let i), .trades(let i), .book(let i), .grouped(let i, _, _): return i
        case .userOrders, .userTrades: return nil
        }
    }
    var isUser: Bool { instrument == nil }
}

/// `user.orders.{instrument}` or `user.orders.{kind}.{currency}` (either may be `any`).
struct UserFilter {
    var instrument: Int?
    var kind: String?
    var currency: String?
}

extension SimExchange {
    static let intervals: Set<String> = ["raw", "100ms", "agg2"]

    /// Parses a channel name; nil for anything the simulator does not serve (silently left out of
    /// the subscribe result, as Deribit does).
    func parseChannel(_ name: String) -> Channel? {
        if let known = channelInfo[name] { return known }
        let parts = name.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 3, let interval = parts.last, Self.intervals.contains(interval) else { return nil }
        switch parts[0] {
        case "ticker", "trades", "book":
            guard let i = instrumentIndex[parts[1]] else { return nil }
            if parts.count == 3 {
                return parts[0] == "ticker" ? .ticker(i) : parts[0] == "trades" ? .trades(i) : .book(i)
            }
            guard parts[0] == "book", parts.count == 5, interval != "raw",
                  let depth = Int(parts[3]), [1, 10, 20].contains(depth) else { return nil }
            if parts[2] == "none" { return .grouped(i, group: nil, depth: depth) }
            guard let g = Double(parts[2]), g > 0 else { return nil }
            return .grouped(i, group: Fixed(g), depth: depth)
        case "user":
            guard parts.count == 4 || parts.count == 5, parts[1] == "orders" || parts[1] == "trades" else { return nil }
            var filter = UserFilter()
            if parts.count == 4 {
                guard let i = instrumentIndex[parts[2]] else { return nil }
                filter.instrument = i
            } else {
                let kinds = ["any", "future", "option", "spot", "future_combo", "option_combo", "combo"]
                guard kinds.contains(parts[2]), parts[3] == "any" || currencies.contains(parts[3]) else { return nil }
                filter.kind = parts[2] == "any" ? nil : parts[2]
                filter.currency = parts[3] == "any" ? nil : parts[3]
            }
            let raw = interval == "raw"
            return parts[1] == "orders" ? .userOrders(filter, raw: raw) : .userTrades(filter, raw: raw)
        default:
            return nil
        }
    }

    func subscribe(_ ctx: inout Ctx, isPrivate: Bool) throws(RPCError) -> J {
        guard let conn = ctx.conn else { throw .websocketOnly }
        guard let requested = try ctx.params.strings("channels") else { throw .missing("channels") }
        for c in requested { subscribeRequests[c, default: 0] += 1 }
        let authenticated = conn.account(now: ctx.now) != nil
        // Deribit: raw feeds need an authenticated connection (13778), the whole request fails.
        if !authenticated, requested.contains(where: { $0.hasSuffix(".raw") && parseChannel($0) != nil }) {
            throw .rawNeedsAuth
        }
        var accepted: [String] = []
        for name in requested where !accepted.contains(name) {
            guard let channel = parseChannel(name) else { continue }
            // user.* channels: private/subscribe on an authenticated connection only.
            if channel.isUser, !(isPrivate && authenticated) { continue }
            accepted.append(name)
            guard !conn.channels.contains(name) else { continue }
            conn.channels.append(name)
            addSubscriber(conn.id, to: name, channel: channel, now: ctx.now)
            if case .book(let i) = channel {
                // First notification of an incremental book: a snapshot at the current change_id.
                ctx.after.append(.send(conn.id, Self.notification(channel: name, data: snapshotJSON(i, now: ctx.nowMillis))))
                notificationsSent += 1
            }
        }
        return .array(accepted.map(J.string))
    }

    func unsubscribe(_ ctx: inout Ctx) throws(RPCError) -> J {
        guard let conn = ctx.conn else { throw .websocketOnly }
        guard let requested = try ctx.params.strings("channels") else { throw .missing("channels") }
        var removed: [String] = []
        for name in requested {
            unsubscribeRequests[name, default: 0] += 1
            guard let k = conn.channels.firstIndex(of: name) else { continue }
            conn.channels.remove(at: k)
            removeSubscriber(conn.id, from: name)
            removed.append(name)
        }
        return .array(removed.map(J.string))
    }

    func unsubscribeAll(_ ctx: inout Ctx) throws(RPCError) -> J {
        guard let conn = ctx.conn else { throw .websocketOnly }
        for name in conn.channels {
            unsubscribeRequests[name, default: 0] += 1
            removeSubscriber(conn.id, from: name)
        }
        conn.channels = []
        return .string("ok")
    }

    func addSubscriber(_ id: SimConnectionID, to name: String, channel: Channel, now: UInt64) {
        var list = subscribers[name] ?? []
        let k = list.firstIndex(where: { $0 > id }) ?? list.endIndex
        list.insert(id, at: k)
        subscribers[name] = list
        channelInfo[name] = channel
        if list.count == 1, let i = channel.instrument {
            instrumentChannels[i].append(name)
            instrumentChannels[i].sort()
            if markets[i].nextStepMicros == nil { markets[i].nextStepMicros = now + stepMicros }
        }
    }

    func removeSubscriber(_ id: SimConnectionID, from name: String) {
        guard var list = subscribers[name] else { return }
        list.removeAll { $0 == id }
        if !list.isEmpty { subscribers[name] = list; return }
        subscribers[name] = nil
        if let i = channelInfo[name]?.instrument {
            instrumentChannels[i].removeAll { $0 == name }
            if instrumentChannels[i].isEmpty { markets[i].nextStepMicros = nil }
        }
        channelInfo[name] = nil
    }

    // MARK: - Synthetic market steps

    /// One market step of instrument `i`: the book changes, a trade prints, and every subscribed
    /// channel of the instrument gets one notification.
    func step(instrument i: Int, now: UInt64) -> [SimEffect] {
        let change = markets[i].book.step(rng: &rng)
        let trade = syntheticTrade(i, now: now)
        let ms = Int64(now / 1_000)
        var effects: [SimEffect] = []
        effects.reserveCapacity(instrumentChannels[i].count)
        for name in instrumentChannels[i] {
            guard let subs = subscribers[name], let channel = channelInfo[name] else { continue }
            let data: J
            switch channel {
            case .book: data = changeJSON(i, change, now: ms)
            case .grouped(_, let group, let depth): data = groupedJSON(i, group: group, depth: depth, now: ms)
            case .ticker: data = tickerJSON(i, now: ms)
            case .trades: data = .array([trade])
            case .userOrders, .userTrades: continue
            }
            notificationsSent += UInt64(subs.count)
            effects.append(.broadcast(subs, Self.notification(channel: name, data: data)))
        }
        return effects
    }

    func syntheticTrade(_ i: Int, now: UInt64) -> J {
        let buy = rng.next() & 1 == 0
        let book = markets[i].book
        let lot = book.lot
        let price = (buy ? book.bestAsk?.0 : book.bestBid?.0) ?? markets[i].lastPrice
        let amount = lot * Int64(1 + rng.next() % 20)
        let tickDirection = price > markets[i].lastPrice ? 0 : price < markets[i].lastPrice ? 2 : (buy ? 1 : 3)
        markets[i].lastPrice = price
        markets[i].volume = markets[i].volume + amount
        markets[i].high = max(markets[i].high, price)
        markets[i].low = min(markets[i].low, price)
        markets[i].tradeSeq += 1
        tradeSeq += 1
        return .object([
            ("trade_seq", .int(markets[i].tradeSeq)),
            ("trade_id", .string(tradeID(instruments[i]))),
            ("timestamp", .int(Int64(now / 1_000))),
            ("tick_direction", .num(tickDirection)),
            ("price", .fixed(price)),
            ("mark_price", .fixed(markets[i].mark)),
            ("instrument_name", .string(instruments[i].name)),
            ("index_price", .fixed(markets[i].mark)),
            ("direction", .string(buy ? "buy" : "sell")),
            ("amount", .fixed(amount)),
        ])
    }

    // MARK: - Payloads

    static func levels(_ entries: [(BookAction, Fixed, Fixed)]) -> J {
        .array(entries.map { .array([.string($0.0.rawValue), .fixed($0.1), .fixed($0.2)]) })
    }

    func snapshotJSON(_ i: Int, now: Int64) -> J {
        let book = markets[i].book
        return .object([
            ("type", .string("snapshot")),
            ("timestamp", .int(now)),
            ("instrument_name", .string(instruments[i].name)),
            ("change_id", .int(book.changeID)),
            ("bids", Self.levels(book.levels(bids: true).map { (.new, $0.0, $0.1) })),
            ("asks", Self.levels(book.levels(bids: false).map { (.new, $0.0, $0.1) })),
        ])
    }

    func changeJSON(_ i: Int, _ change: BookChange, now: Int64) -> J {
        .object([
            ("type", .string("change")),
            ("timestamp", .int(now)),
            ("prev_change_id", .int(change.prevChangeID)),
            ("instrument_name", .string(instruments[i].name)),
            ("change_id", .int(change.changeID)),
            ("bids", Self.levels(change.bids)),
            ("asks", Self.levels(change.asks)),
        ])
    }

    func groupedJSON(_ i: Int, group: Fixed?, depth: Int, now: Int64) -> J {
        let book = markets[i].book
        func grouped(_ bids: Bool) -> J {
            var out: [(Fixed, Fixed)] = []
            for (price, amount) in book.levels(bids: bids) {
                var p = price
                if let g = group, g.raw > 0 {
                    let q = price.raw / g.raw
                    p = Fixed(raw: (bids || price.raw % g.raw == 0 ? q : q + 1) * g.raw)
                }
                if let last = out.last, last.0 == p { out[out.count - 1].1 = last.1 + amount; continue }
                if out.count == depth { break }
                out.append((p, amount))
            }
            return .array(out.map { .array([.fixed($0.0), .fixed($0.1)]) })
        }
        return .object([
            ("timestamp", .int(now)),
            ("instrument_name", .string(instruments[i].name)),
            ("change_id", .int(book.changeID)),
            ("bids", grouped(true)),
            ("asks", grouped(false)),
        ])
    }

    func tickerFields(_ i: Int, now: Int64) -> [(String, J)] {
        let m = markets[i]
        let inst = instruments[i]
        let mark = m.mark
        let band = Fixed(raw: mark.raw / 100 * 3)
        var fields: [(String, J)] = [
            ("timestamp", .int(now)),
            ("stats", .object([("volume", .fixed(m.volume)), ("volume_usd", .fixed(m.volume)), ("price_change", .double(0)),
                               ("low", .fixed(m.low)), ("high", .fixed(m.high))])),
            ("state", .string("open")),
            ("settlement_price", .fixed(Fixed(inst.referencePrice))),
            ("open_interest", .double(0)),
            ("min_price", .fixed(mark - band)),
            ("max_price", .fixed(mark + band)),
            ("mark_price", .fixed(mark)),
            ("last_price", .fixed(m.lastPrice)),
            ("instrument_name", .string(inst.name)),
            ("index_price", .fixed(mark)),
        ]
        if inst.kind == .future {
            if inst.isPerpetual {
                fields += [("funding_8h", .double(0)), ("current_funding", .double(0)), ("interest_value", .double(0))]
            }
            fields.append(("estimated_delivery_price", .fixed(mark)))
        } else if inst.kind == .option {
            fields += [("underlying_price", .fixed(mark)), ("underlying_index", .string("index_price")),
                       ("mark_iv", .double(50)), ("bid_iv", .double(49)), ("ask_iv", .double(51)),
                       ("interest_rate", .double(0)),
                       ("greeks", .object([("delta", .double(0.5)), ("gamma", .double(0)), ("vega", .double(0)),
                                           ("theta", .double(0)), ("rho", .double(0))]))]
        }
        let bid = m.book.bestBid
        let ask = m.book.bestAsk
        fields += [
            ("best_bid_price", bid.map { .fixed($0.0) } ?? .null), ("best_bid_amount", .fixed(bid?.1 ?? .zero)),
            ("best_ask_price", ask.map { .fixed($0.0) } ?? .null), ("best_ask_amount", .fixed(ask?.1 ?? .zero)),
        ]
        return fields
    }

    func tickerJSON(_ i: Int, now: Int64) -> J { .object(tickerFields(i, now: now)) }

    func instrumentJSON(_ i: Int) -> J {
        let inst = instruments[i]
        var fields: [(String, J)] = [
            ("tick_size", .double(inst.tickSize)),
            ("taker_commission", .double(inst.kind == .option ? 0.0003 : 0.0005)),
            ("settlement_period", .string(inst.isPerpetual ? "perpetual" : "month")),
            ("settlement_currency", .string(inst.baseCurrency)),
            ("rfq", .bool(false)),
            ("quote_currency", .string("USD")),
            ("price_index", .string("\(inst.baseCurrency.lowercased())_usd")),
            ("min_trade_amount", .double(inst.minTradeAmount)),
            ("maker_commission", .double(inst.kind == .option ? 0.0003 : 0)),
            ("kind", .string(inst.kind.rawValue)),
            ("is_active", .bool(true)),
            ("state", .string("open")),
            ("instrument_name", .string(inst.name)),
            ("instrument_id", .num(i + 1)),
            ("expiration_timestamp", .int(inst.expirationTimestamp)),
            ("creation_timestamp", .int(1_534_167_754_000)),
            ("counter_currency", .string("USD")),
            ("contract_size", .double(inst.contractSize)),
            ("block_trade_commission", .double(0.00025)),
            ("block_trade_min_trade_amount", .double(inst.kind == .option ? 25 : 200_000)),
            ("block_trade_tick_size", .double(inst.tickSize)),
            ("base_currency", .string(inst.baseCurrency)),
            ("instrument_type", .string("reversed")),
            ("tick_size_steps", .array([])),
        ]
        if inst.kind == .future {
            fields += [("future_type", .string("reversed")), ("max_leverage", .num(50)),
                       ("max_liquidation_commission", .double(0.0075))]
        }
        if inst.kind == .option {
            fields += [("strike", .double(inst.strike ?? 0)), ("option_type", .string(inst.optionType ?? "call"))]
        }
        return .object(fields)
    }

    func currencyJSON(_ c: String) -> J {
        let long: [String: String] = ["BTC": "Bitcoin", "ETH": "Ethereum", "USDC": "USD Coin", "SOL": "Solana"]
        return .object([
            ("withdrawal_priorities", .array([])),
            ("withdrawal_fee", .double(0.0001)),
            ("min_withdrawal_fee", .double(0.0001)),
            ("min_confirmations", .num(1)),
            ("fee_precision", .num(4)),
            ("currency_long", .string(long[c] ?? c)),
            ("currency", .string(c)),
            ("coin_type", .string(c == "BTC" ? "BITCOIN" : c == "ETH" ? "ETHER" : c)),
        ])
    }
}
