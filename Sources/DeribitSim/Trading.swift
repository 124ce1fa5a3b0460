// Orders. Limit orders rest unless they cross the synthetic book's best price, in which case they
// fill at once in full at that price (taker). Resting orders never match each other and do not
// appear in the synthetic book.

enum Direction: String { case buy, sell }

struct Order {
    var id: String
    var seq: Int64
    var instrument: Int
    var account: String
    var connection: SimConnectionID?
    var direction: Direction
    var price: Fixed
    var amount: Fixed
    var filled: Fixed = .zero
    var averagePrice: Fixed = .zero
    var label: String
    var type: String
    var timeInForce: String
    var postOnly: Bool
    var reduceOnly: Bool
    var state: String = "open"
    var created: Int64
    var updated: Int64
    var replaced = false
    var cancelReason: String?
}

extension SimExchange {
    func placeOrder(_ ctx: inout Ctx, _ account: String, direction: Direction) throws(RPCError) -> J {
        let p = ctx.params
        let i = try instrumentParam(p)
        let inst = instruments[i]
        var amount: Fixed
        if let a = try p.number("amount") { amount = Fixed(a) }
        else if let c = try p.number("contracts") { amount = Fixed(c * inst.contractSize) }
        else { throw .missing("amount") }
        guard amount.raw > 0 else { throw .invalidParams("amount", "must be greater than 0") }
        let type = try p.string("type") ?? "limit"
        guard type == "limit" || type == "market" else { throw .invalidParams("type", "must be one of limit, market") }
        let tif = try p.string("time_in_force") ?? "good_til_cancelled"
        guard ["good_til_cancelled", "good_til_day", "fill_or_kill", "immediate_or_cancel"].contains(tif) else {
            throw .invalidParams("time_in_force", "must be one of good_til_cancelled, good_til_day, fill_or_kill, immediate_or_cancel")
        }
        let label = try p.string("label") ?? ""
        guard label.utf8.count <= 64 else { throw .invalidParams("label", "must be at most 64 characters") }
        let postOnly = try p.bool("post_only") ?? false
        let reduceOnly = try p.bool("reduce_only") ?? false
        var price: Fixed
        if type == "limit" {
            guard let pr = try p.number("price") else { throw .missing("price") }
            price = Fixed(pr)
            guard price.raw > 0 || inst.kind == .future else { throw .invalidParams("price", "must be greater than 0") }
        } else {
            price = .zero
        }
        let book = markets[i].book
        let opposite = direction == .buy ? book.bestAsk?.0 : book.bestBid?.0
        let crosses = opposite.map { type == "market" || (direction == .buy ? price >= $0 : price <= $0) } ?? false
        if crosses, postOnly, let opp = opposite {
            // Deribit: a crossing post-only order is rejected or moved just outside the spread.
            if try p.bool("reject_post_only") == true { throw .postOnlyReject }
            let tick = Fixed(inst.tickSize)
            price = direction == .buy ? opp - tick : opp + tick
        }
        orderSeq += 1
        let id = inst.baseCurrency == "BTC" ? String(orderSeq) : "\(inst.baseCurrency)-\(orderSeq)"
        var order = Order(id: id, seq: orderSeq, instrument: i, account: account, connection: ctx.conn?.id,
                          direction: direction, price: price, amount: amount, label: label, type: type,
                          timeInForce: tif, postOnly: postOnly, reduceOnly: reduceOnly,
                          created: ctx.nowMillis, updated: ctx.nowMillis)
        var trades: [J] = []
        if crosses && !postOnly, let opp = opposite {
            trades.append(fill(&order, at: opp, now: ctx.nowMillis))
            if type == "market" { order.price = opp }
        } else if type == "market" || tif == "fill_or_kill" || tif == "immediate_or_cancel" {
            order.state = "cancelled"
            order.cancelReason = "user_request"
        }
        if order.state == "open" { openOrders[id] = order } else { remember(order) }
        ctx.after += userNotifications(order, trades: trades)
        return .object([("trades", .array(trades)), ("order", orderJSON(order))])
    }

    func fill(_ order: inout Order, at price: Fixed, now: Int64) -> J {
        let amount = order.amount - order.filled
        order.filled = order.amount
        order.averagePrice = price
        order.state = "filled"
        order.updated = now
        tradeSeq += 1
        markets[order.instrument].tradeSeq += 1
        let inst = instruments[order.instrument]
        var fields: [(String, J)] = [
            ("trade_seq", .int(markets[order.instrument].tradeSeq)),
            ("trade_id", .string(tradeID(inst))),
            ("timestamp", .int(now)),
            ("tick_direction", .num(order.direction == .buy ? 0 : 2)),
            ("state", .string("filled")),
            ("reduce_only", .bool(order.reduceOnly)),
            ("price", .fixed(price)),
            ("post_only", .bool(order.postOnly)),
            ("order_type", .string(order.type)),
            ("order_id", .string(order.id)),
            ("matching_id", .null),
            ("mark_price", .fixed(markets[order.instrument].mark)),
            ("liquidity", .string("T")),
            ("instrument_name", .string(inst.name)),
            ("index_price", .fixed(markets[order.instrument].mark)),
            ("fee_currency", .string(inst.baseCurrency)),
            ("fee", .double(0)),
            ("direction", .string(order.direction.rawValue)),
            ("amount", .fixed(amount)),
            ("api", .bool(true)),
        ]
        if !order.label.isEmpty { fields.append(("label", .string(order.label))) }
        return .object(fields)
    }

    /// Deribit: trade ids are numbers for BTC and `ETH-NNN` for other currencies, like order ids.
    func tradeID(_ inst: SimInstrument) -> String {
        inst.baseCurrency == "BTC" ? String(tradeSeq) : "\(inst.baseCurrency)-\(tradeSeq)"
    }

    func edit(_ ctx: inout Ctx, _ account: String) throws(RPCError) -> J {
        let p = ctx.params
        let id = try p.requiredString("order_id")
        guard var order = openOrders[id], order.account == account else {
            if let closed = closedOrders[id], closed.account == account { throw .notOpenOrder }
            throw .orderNotFound
        }
        var a = try p.number("amount")
        if a == nil, let c = try p.number("contracts") { a = c * instruments[order.instrument].contractSize }
        guard let a else { throw .missing("amount") }
        let amount = Fixed(a)
        guard amount.raw > 0 else { throw .invalidParams("amount", "must be greater than 0") }
        if let pr = try p.number("price") { order.price = Fixed(pr) }
        if let po = try p.bool("post_only") { order.postOnly = po }
        if let ro = try p.bool("reduce_only") { order.reduceOnly = ro }
        order.amount = amount
        order.replaced = true
        order.updated = ctx.nowMillis
        var trades: [J] = []
        let book = markets[order.instrument].book
        let opposite = order.direction == .buy ? book.bestAsk?.0 : book.bestBid?.0
        if let opp = opposite, order.direction == .buy ? order.price >= opp : order.price <= opp {
            if order.postOnly {
                if try p.bool("reject_post_only") == true { throw .postOnlyReject }
                let tick = Fixed(instruments[order.instrument].tickSize)
                order.price = order.direction == .buy ? opp - tick : opp + tick
            } else {
                trades.append(fill(&order, at: opp, now: ctx.nowMillis))
            }
        }
        if order.state == "open" { openOrders[id] = order } else { openOrders[id] = nil; remember(order) }
        ctx.after += userNotifications(order, trades: trades)
        return .object([("trades", .array(trades)), ("order", orderJSON(order))])
    }

    func cancelOne(_ ctx: inout Ctx, _ account: String) throws(RPCError) -> J {
        let id = try ctx.params.requiredString("order_id")
        guard let order = openOrders[id], order.account == account else {
            if let closed = closedOrders[id], closed.account == account { throw .notOpenOrder }
            throw .orderNotFound
        }
        let (cancelled, effects) = cancel(orderID: order.id, reason: "user_request", now: ctx.now)
        ctx.after += effects
        return orderJSON(cancelled!)
    }

    /// Cancels an open order and notifies the account's user.orders subscribers.
    func cancel(orderID: String, reason: String, now: UInt64) -> (order: Order?, effects: [SimEffect]) {
        guard var order = openOrders.removeValue(forKey: orderID) else { return (nil, []) }
        order.state = "cancelled"
        order.cancelReason = reason
        order.updated = Int64(now / 1_000)
        remember(order)
        return (order, userNotifications(order, trades: []))
    }

    func cancelMatching(_ ctx: inout Ctx, _ account: String, _ match: (Order) -> Bool) -> J {
        let victims = openOrders.values.filter { $0.account == account && match($0) }.sorted { $0.seq < $1.seq }
        for o in victims { ctx.after += cancel(orderID: o.id, reason: "user_request", now: ctx.now).effects }
        return .num(victims.count)
    }

    func currencyFilter(_ p: Params) throws(RPCError) -> (Order) -> Bool {
        let currency = try p.requiredString("currency")
        guard currency == "any" || currencies.contains(currency) else {
            throw .invalidParams("currency", "must be one of \(currencies.joined(separator: ", ")), any")
        }
        let kind = try p.string("kind")
        let type = try p.string("type")
        let instruments = self.instruments
        return { o in
            (currency == "any" || instruments[o.instrument].baseCurrency == currency)
                && (kind == nil || kind == "any" || instruments[o.instrument].kind.rawValue == kind)
                && (type == nil || type == "all" || type == o.type)
        }
    }

    func openOrdersJSON(_ account: String, _ match: (Order) -> Bool) -> J {
        .array(openOrders.values.filter { $0.account == account && match($0) }.sorted { $0.seq < $1.seq }.map(orderJSON))
    }

    func remember(_ order: Order) {
        closedOrders[order.id] = order
        closedOrderIDs.append(order.id)
        if closedOrderIDs.count > Self.maxClosedOrders {
            closedOrders[closedOrderIDs.removeFirst()] = nil
        }
    }

    /// Deribit's order object.
    func orderJSON(_ o: Order) -> J {
        var fields: [(String, J)] = [
            ("web", .bool(false)),
            ("time_in_force", .string(o.timeInForce)),
            ("replaced", .bool(o.replaced)),
            ("reduce_only", .bool(o.reduceOnly)),
            ("risk_reducing", .bool(false)),
            ("price", .fixed(o.price)),
            ("post_only", .bool(o.postOnly)),
            ("order_type", .string(o.type)),
            ("order_state", .string(o.state)),
            ("order_id", .string(o.id)),
            ("max_show", .fixed(o.amount)),
            ("last_update_timestamp", .int(o.updated)),
            ("label", .string(o.label)),
            ("is_rebalance", .bool(false)),
            ("is_liquidation", .bool(false)),
            ("instrument_name", .string(instruments[o.instrument].name)),
            ("filled_amount", .fixed(o.filled)),
            ("direction", .string(o.direction.rawValue)),
            ("creation_timestamp", .int(o.created)),
            ("average_price", .fixed(o.averagePrice)),
            ("api", .bool(true)),
            ("amount", .fixed(o.amount)),
        ]
        if let reason = o.cancelReason { fields.append(("cancel_reason", .string(reason))) }
        return .object(fields)
    }

    /// user.orders (raw: the order object; 100ms/agg2: an array of them) and user.trades (an array)
    /// to the subscribed connections of the order's account. Each channel is encoded once.
    func userNotifications(_ order: Order, trades: [J]) -> [SimEffect] {
        var effects: [SimEffect] = []
        var orderJSONCache: J?
        for (name, subs) in subscribers.sorted(by: { $0.key < $1.key }) where name.hasPrefix("user.") {
            guard let channel = channelInfo[name] else { continue }
            let targets = subs.filter { connections[$0]?.clientID == order.account }
            guard !targets.isEmpty else { continue }
            let data: J
            switch channel {
            case .userOrders(let f, let raw):
                guard matches(f, inst: order.instrument) else { continue }
                if orderJSONCache == nil { orderJSONCache = orderJSON(order) }
                data = raw ? orderJSONCache! : .array([orderJSONCache!])
            case .userTrades(let f, _):
                guard !trades.isEmpty, matches(f, inst: order.instrument) else { continue }
                data = .array(trades)
            default: continue
            }
            notificationsSent += UInt64(targets.count)
            effects.append(.broadcast(targets, Self.notification(channel: name, data: data)))
        }
        return effects
    }

    func matches(_ f: UserFilter, inst i: Int) -> Bool {
        if let fi = f.instrument { return fi == i }
        return (f.kind == nil || f.kind == instruments[i].kind.rawValue)
            && (f.currency == nil || f.currency == instruments[i].baseCurrency)
    }
}
