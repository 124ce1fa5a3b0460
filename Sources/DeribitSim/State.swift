// GET /sim/state: what tests inspect (see docs/SIM.md for the shape).

extension SimExchange {
    public func stateJSON(nowMicros: UInt64) -> [UInt8] {
        let conns = connections.values.sorted { $0.id < $1.id }
        let connectionsJSON: [J] = conns.map { c in
            .object([
                ("id", .num(c.id.raw)),
                ("authenticated", .bool(c.account(now: nowMicros) != nil)),
                ("client_id", c.clientID.map(J.string) ?? .null),
                ("heartbeat_interval", c.heartbeatMicros.map { .double(Double($0) / 1_000_000) } ?? .null),
                ("awaiting_test_response", .bool(c.testRequestSentAt != nil)),
                ("cancel_on_disconnect", .bool(c.cancelOnDisconnect)),
                ("subscriptions", .array(c.channels.map(J.string))),
                ("credits", c.credits.json(now: nowMicros)),
            ])
        }
        let subs: [(String, J)] = subscribers.keys.sorted().map { ($0, .array(subscribers[$0]!.map { .num($0.raw) })) }
        let orders: [J] = openOrders.values.sorted { $0.seq < $1.seq }.map { o in
            .object([
                ("order_id", .string(o.id)),
                ("instrument_name", .string(instruments[o.instrument].name)),
                ("direction", .string(o.direction.rawValue)),
                ("price", .fixed(o.price)),
                ("amount", .fixed(o.amount)),
                ("filled_amount", .fixed(o.filled)),
                ("label", .string(o.label)),
                ("client_id", .string(o.account)),
                ("connection", o.connection.map { .num($0.raw) } ?? .null),
            ])
        }
        func counts(_ d: [String: Int]) -> J { .object(d.keys.sorted().map { ($0, .num(d[$0]!)) }) }
        let accounts = accountCredits.keys.sorted().map { k -> (String, J) in
            var c = accountCredits[k]!
            return (k, c.json(now: nowMicros))
        }
        let books: [(String, J)] = markets.indices.map { i in
            (instruments[i].name, .object([("change_id", .int(markets[i].book.changeID)),
                                           ("active", .bool(markets[i].nextStepMicros != nil))]))
        }
        let state: J = .object([
            ("now_us", .num(nowMicros)),
            ("connections", .array(connectionsJSON)),
            ("subscriptions", .object(subs)),
            ("open_orders", .array(orders)),
            ("method_calls", counts(methodCalls)),
            ("subscribe_requests", counts(subscribeRequests)),
            ("unsubscribe_requests", counts(unsubscribeRequests)),
            ("credits", .object([("accounts", .object(accounts))])),
            ("account_cancel_on_disconnect", .object(accountCOD.keys.sorted().map { ($0, .bool(accountCOD[$0]!)) })),
            ("books", .object(books)),
            ("totals", .object([("connections_opened", .num(connectionsOpened)),
                                ("connections_open", .num(connections.count)),
                                ("notifications_sent", .num(notificationsSent))])),
        ])
        return state.encoded
    }
}
