import JSONRPC

/// Which client created which open order (SPEC §7). Pure bookkeeping, keyed by connection id;
/// owned by the gateway and confined to its loop.
///
/// It learns of orders from the responses of order-creating methods and forgets them when a
/// response or a `user.orders` notification shows them closed, so it holds only open orders.
package struct OrderLedger: Sendable {
    package init() {}

    /// Open order id → the connection that created it.
    package private(set) var owners: [String: UInt64] = [:]
    /// Connection id → the open orders it created.
    package private(set) var byConnection: [UInt64: Set<String>] = [:]
    /// Ids seen closed lately: a creation response that arrives after the order's closing
    /// notification must not bring it back. A ring, so memory stays bounded.
    private var recentlyClosed: Set<String> = []
    private var closedRing: [String] = []
    private var ringNext = 0
    package static let recentlyClosedCapacity = 4096

    /// Deribit's order states in which an order can still trade.
    package static func isLive(_ state: String) -> Bool {
        state == "open" || state == "untriggered" || state == "triggered"
    }

    package func owner(of orderID: String) -> UInt64? { owners[orderID] }

    package func orders(of connection: UInt64) -> Set<String> { byConnection[connection] ?? [] }

    package var allOrders: Set<String> { Set(owners.keys) }

    /// Records an open order. Returns false when it is already known closed.
    @discardableResult
    package mutating func opened(_ orderID: String, by connection: UInt64) -> Bool {
        guard !recentlyClosed.contains(orderID) else { return false }
        if let previous = owners[orderID], previous != connection {
            byConnection[previous]?.remove(orderID)
        }
        owners[orderID] = connection
        byConnection[connection, default: []].insert(orderID)
        return true
    }

    /// The order is filled, cancelled or rejected: forget it. Returns its owner, if known.
    @discardableResult
    package mutating func closed(_ orderID: String) -> UInt64? {
        if recentlyClosed.insert(orderID).inserted {
            if closedRing.count < Self.recentlyClosedCapacity {
                closedRing.append(orderID)
            } else {
                recentlyClosed.remove(closedRing[ringNext])
                closedRing[ringNext] = orderID
                ringNext = (ringNext + 1) % Self.recentlyClosedCapacity
            }
        }
        guard let owner = owners.removeValue(forKey: orderID) else { return nil }
        byConnection[owner]?.remove(orderID)
        if byConnection[owner]?.isEmpty == true { byConnection[owner] = nil }
        return owner
    }

    /// Stops following a connection's orders (its orders stay open at the exchange).
    package mutating func release(_ connection: UInt64) {
        for id in byConnection.removeValue(forKey: connection) ?? [] { owners[id] = nil }
    }
}

/// Per-client cancel-on-disconnect's bookkeeping (SPEC §7): which client created which open
/// order, what a disconnect must cancel, and which answers may still name orders of clients
/// that are gone. Orders and their states are read with the JSON reader, in place.
package struct OrderTracker: Sendable {
    /// A cancel the runtime must send for a disconnected client's order.
    package struct Cancel: Sendable, Equatable {
        package let orderID: String
        package let client: ClientID
        package let label: String
    }

    /// An order-creating request that timed out: its late response still tells which order it made.
    package struct LateRequest: Sendable {
        package let client: ClientID
        package let method: MethodTraits
        package let intent: OrderIntent?
        package let deadline: Nanos
    }

    /// An order-creating request whose answer the upstream's loss swallowed: the order may
    /// exist (SPEC §7). Matched against the exchange's open orders after the reconnect.
    package struct LostCreation: Sendable, Equatable {
        package let client: ClientID
        package let label: String
        package let intent: OrderIntent
    }

    /// What a reconciliation after a reconnect found (SPEC §7).
    package struct Reconciliation: Sendable, Equatable {
        /// Orders the ledger held that closed while the upstream was away: they have left the ledger.
        package var closed: [String] = []
        /// Open orders the gateway did not know, attributed to the one client whose lost
        /// creation request matches them.
        package var attributed: [(orderID: String, client: ClientID, label: String)] = []
        /// Open orders that match a lost creation request, but not exactly one either way.
        package var unattributed: [String] = []
        /// Attributed orders of clients that have gone with their flag on.
        package var cancels: [Cancel] = []

        package static func == (a: Reconciliation, b: Reconciliation) -> Bool {
            a.closed == b.closed && a.unattributed == b.unattributed && a.cancels == b.cancels
                && a.attributed.map { "\($0.orderID) \($0.client) \($0.label)" } == b.attributed.map { "\($0.orderID) \($0.client) \($0.label)" }
        }
    }

    /// A client that has gone; answers for it may still arrive (late creation responses).
    private struct Departed {
        let label: String
        let cancels: Bool
        let until: Nanos
    }

    /// The gateway's own subscription that shows every order of the account closing.
    package static let trackingChannel = "user.orders.any.any.raw"
    /// How long a timed-out order request's late response is still awaited.
    package static let lateResponseWindow: Nanos = 60_000_000_000
    package static let maxLateRequests = 4096
    /// Lost creation requests kept for the next reconciliation, at most.
    package static let maxLostCreations = 4096

    package private(set) var ledger = OrderLedger()
    private var late: [UInt64: LateRequest] = [:]
    private var departed: [ClientID: Departed] = [:]
    package private(set) var lostCreations: [LostCreation] = []
    /// The last reconciliation's unattributed orders (logged, and shown in /health).
    package private(set) var unattributed: [String] = []

    package init() {}

    // MARK: reading orders

    /// The orders a result shows: `order` (buy, sell, edit), `orders` (mass_quote), the
    /// result itself (cancel), or an array of orders (get_open_orders).
    package static func orders(inResult range: Range<Int>, of bytes: [UInt8]) -> [(id: String, live: Bool)] {
        orderObjects(inResult: range, of: bytes).compactMap { order(at: $0, of: bytes) }
    }

    /// The spans of the order objects in a result (see `orders(inResult:of:)`).
    package static func orderObjects(inResult range: Range<Int>, of bytes: [UInt8]) -> [Range<Int>] {
        var objects: [Range<Int>] = []
        if JSONScalar.kind(bytes, range.trimmingWhitespace(bytes)) == .array {
            objects = JSONArrayReader.elements(inArray: range, of: bytes) ?? []
        } else {
            if let o = JSONObjectReader.member("order", inObject: range, of: bytes) { objects.append(o) }
            if let list = JSONObjectReader.member("orders", inObject: range, of: bytes) {
                objects += JSONArrayReader.elements(inArray: list, of: bytes) ?? []
            }
            if JSONObjectReader.member("order_id", inObject: range, of: bytes) != nil { objects.append(range) }
        }
        return objects
    }

    /// A `user.orders` notification's orders: `params.data`, one order or an array of them.
    package static func orders(inNotification bytes: [UInt8], scan: JSONRPCScan) -> [(id: String, live: Bool)] {
        guard let params = scan.params, let data = JSONObjectReader.member("data", inObject: params, of: bytes) else { return [] }
        return orders(inResult: data, of: bytes)
    }

    static func order(at range: Range<Int>, of bytes: [UInt8]) -> (id: String, live: Bool)? {
        guard let idRange = JSONObjectReader.member("order_id", inObject: range, of: bytes),
              let id = JSONScalar.string(bytes, idRange) else { return nil }
        let state = JSONObjectReader.member("order_state", inObject: range, of: bytes).flatMap { JSONScalar.string(bytes, $0) }
        return (id, OrderLedger.isLive(state ?? ""))
    }

    // MARK: events

    /// The upstream answered `client`'s request to `method`: follow the orders it shows.
    /// Returns the cancels due when the client has already gone with its flag on.
    package mutating func responded(
        client: ClientID, label: String, method: MethodTraits, bytes: [UInt8], result: Range<Int>
    ) -> [Cancel] {
        let creates = method.createsOrders
        guard creates || method.isCancel else { return [] }
        var cancels: [Cancel] = []
        for o in Self.orders(inResult: result, of: bytes) {
            if o.live {
                // SPEC §7: ownership is creation. An edit never moves an order to its editor,
                // not even an order nobody claimed.
                guard creates, !method.isEdit else { continue }
                guard ledger.opened(o.id, by: client.raw) else { continue }
                if let gone = departed[client] {
                    if gone.cancels {
                        // The creation response arrived after the disconnect: cancel it now.
                        cancels.append(Cancel(orderID: o.id, client: client, label: gone.label))
                    } else {
                        ledger.release(client.raw)
                    }
                }
            } else {
                ledger.closed(o.id)
            }
        }
        return cancels
    }

    /// A notification of the gateway's own `user.orders` channel.
    package mutating func notification(_ bytes: [UInt8], scan: JSONRPCScan) {
        for o in Self.orders(inNotification: bytes, scan: scan) where !o.live {
            ledger.closed(o.id)
        }
    }

    /// A client's connection ended. With its flag on (and not by `private/logout`), every
    /// open order it created is to be cancelled; otherwise they are no longer followed.
    package mutating func clientDisconnected(_ client: ClientID, label: String, cancels: Bool, now: Nanos) -> [Cancel] {
        departed[client] = Departed(label: label, cancels: cancels, until: now + Self.lateResponseWindow)
        guard cancels else {
            ledger.release(client.raw)
            return []
        }
        return ledger.orders(of: client.raw).sorted().map { Cancel(orderID: $0, client: client, label: label) }
    }

    /// Whether `client` has gone with its flag on (its order creations still in flight count).
    package func isDepartedCancelling(_ client: ClientID) -> Bool {
        departed[client]?.cancels ?? false
    }

    /// The label of a client that has gone, for logs.
    package func departedLabel(_ client: ClientID) -> String? { departed[client]?.label }

    /// The exchange confirmed a cancel-on-disconnect cancel (the order closed, or is unknown).
    package mutating func cancelSettled(_ orderID: String) {
        ledger.closed(orderID)
    }

    /// An order request timed out (-32001) after it was sent: the order may exist all the same.
    package mutating func requestTimedOut(upstreamID: UInt64, client: ClientID, method: MethodTraits, intent: OrderIntent?, now: Nanos) {
        guard method.createsOrders else { return }
        late = late.filter { $0.value.deadline > now }
        guard late.count < Self.maxLateRequests else { return }
        late[upstreamID] = LateRequest(client: client, method: method, intent: intent, deadline: now + Self.lateResponseWindow)
    }

    /// The upstream was lost with this creation request sent and unanswered.
    package mutating func creationLost(client: ClientID, label: String, intent: OrderIntent) {
        guard lostCreations.count < Self.maxLostCreations else { return }
        lostCreations.append(LostCreation(client: client, label: label, intent: intent))
    }

    /// The upstream was lost: timed-out creations whose late answers can no longer come are lost too.
    package mutating func upstreamLost(label: (ClientID) -> String) {
        for (_, r) in late.sorted(by: { $0.key < $1.key }) {
            guard let intent = r.intent else { continue }
            creationLost(client: r.client, label: label(r.client), intent: intent)
        }
        late.removeAll()
    }

    /// Whether a reconciliation has anything to judge.
    package var needsReconciliation: Bool { !ledger.owners.isEmpty || !lostCreations.isEmpty }

    /// A response to a request that had timed out: only its order matters now.
    package mutating func lateResponse(upstreamID: UInt64) -> LateRequest? {
        late.removeValue(forKey: upstreamID)
    }

    /// The exchange's open orders after a reconnect (`private/get_open_orders`), against what
    /// the ledger held when the query was sent (`known`) and the creation requests the loss
    /// swallowed. Orders known and not open closed meanwhile. An open order the gateway did not
    /// know is attributed to a client when exactly one lost creation request matches it and it
    /// is the only open order that request matches (instrument, direction, amount, price, label).
    package mutating func reconcile(known: Set<String>, result: Range<Int>, of bytes: [UInt8]) -> Reconciliation {
        var r = Reconciliation()
        let objects = Self.orderObjects(inResult: result, of: bytes)
        var open = Set<String>()
        var unknown: [(id: String, range: Range<Int>)] = []
        for o in objects {
            guard let order = Self.order(at: o, of: bytes), order.live else { continue }
            open.insert(order.id)
            if ledger.owner(of: order.id) == nil { unknown.append((order.id, o)) }
        }
        r.closed = known.subtracting(open).sorted()
        for id in r.closed { ledger.closed(id) }

        let lost = lostCreations
        lostCreations = []
        let matchesOf = unknown.map { u in lost.indices.filter { lost[$0].intent.matches(bytes, u.range) } }
        for (k, u) in unknown.enumerated() where !matchesOf[k].isEmpty {
            let creation = matchesOf[k].count == 1 ? lost[matchesOf[k][0]] : nil
            let sameRequestOrders = creation == nil ? 0 : matchesOf.filter { $0.contains(matchesOf[k][0]) }.count
            guard let creation, sameRequestOrders == 1, ledger.opened(u.id, by: creation.client.raw) else {
                r.unattributed.append(u.id)
                continue
            }
            r.attributed.append((u.id, creation.client, creation.label))
            if let gone = departed[creation.client] {
                if gone.cancels {
                    r.cancels.append(Cancel(orderID: u.id, client: creation.client, label: gone.label))
                } else {
                    ledger.release(creation.client.raw)
                }
            }
        }
        unattributed = r.unattributed
        return r
    }

    /// Forgets departed clients whose answers can no longer arrive. A client whose lost creation
    /// still waits for a reconciliation is kept, however long the upstream stays away: the
    /// order found then must still be cancelled.
    package mutating func expire(now: Nanos) {
        guard departed.contains(where: { $0.value.until <= now }) else { return }
        let waiting = Set(lostCreations.map(\.client))
        departed = departed.filter { $0.value.until > now || waiting.contains($0.key) }
    }
}

extension Range<Int> {
    /// The span without the JSON whitespace around it.
    func trimmingWhitespace(_ bytes: [UInt8]) -> Range<Int> {
        var lo = lowerBound
        var hi = upperBound
        func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 }
        while lo < hi, isSpace(bytes[lo]) { lo += 1 }
        while hi > lo, isSpace(bytes[hi - 1]) { hi -= 1 }
        return lo..<hi
    }
}

/// What an order-creating request asked for (`private/buy`, `private/sell`), read from its
/// params: enough to recognise the order among the exchange's open orders when the request's
/// answer was lost (SPEC §7).
package struct OrderIntent: Sendable, Equatable {
    package let direction: String
    package let instrument: String
    package let amount: Double?
    package let price: Double?
    package let label: String?

    package init(direction: String, instrument: String, amount: Double?, price: Double?, label: String?) {
        self.direction = direction
        self.instrument = instrument
        self.amount = amount
        self.price = price
        self.label = label
    }

    /// The intent of a `private/buy` or `private/sell` request; nil for any other method.
    package static func parse(method: MethodTraits, bytes: [UInt8], params: Range<Int>?) -> OrderIntent? {
        guard let name = method.name, let params else { return nil }
        let direction: String
        switch "\(name)" {
        case "private/buy": direction = "buy"
        case "private/sell": direction = "sell"
        default: return nil
        }
        func member(_ key: String) -> Range<Int>? { JSONObjectReader.member(key, inObject: params, of: bytes) }
        guard let instrument = member("instrument_name").flatMap({ JSONScalar.string(bytes, $0) }) else { return nil }
        return OrderIntent(
            direction: direction, instrument: instrument,
            amount: member("amount").flatMap { JSONScalar.double(bytes, $0) },
            price: member("price").flatMap { JSONScalar.double(bytes, $0) },
            label: member("label").flatMap { JSONScalar.string(bytes, $0) })
    }

    /// Whether the order object at `range` is what this request asked for. Only what the
    /// request named is compared; an order's `amount` is its original amount.
    package func matches(_ bytes: [UInt8], _ range: Range<Int>) -> Bool {
        func member(_ key: String) -> Range<Int>? { JSONObjectReader.member(key, inObject: range, of: bytes) }
        guard member("instrument_name").flatMap({ JSONScalar.string(bytes, $0) }) == instrument,
              member("direction").flatMap({ JSONScalar.string(bytes, $0) }) == direction else { return false }
        if let amount, member("amount").flatMap({ JSONScalar.double(bytes, $0) }) != amount { return false }
        if let price, member("price").flatMap({ JSONScalar.double(bytes, $0) }) != price { return false }
        let orderLabel = member("label").flatMap { JSONScalar.string(bytes, $0) } ?? ""
        return orderLabel == (label ?? "")
    }
}
