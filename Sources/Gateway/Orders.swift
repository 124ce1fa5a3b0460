import Foundation
import JSONRPC
import Transport

/// Which client created which open order (SPEC §7). Pure bookkeeping, keyed by connection id;
/// owned by the gateway and confined to its loop.
///
/// It learns of orders from the responses of order-creating methods and forgets them when a
/// response or a `user.orders` notification shows them closed, so it holds only open orders.
struct OrderLedger {
    /// Open order id → the connection that created it.
    private(set) var owners: [String: UInt64] = [:]
    /// Connection id → the open orders it created.
    private(set) var byConnection: [UInt64: Set<String>] = [:]
    /// Ids seen closed lately: a creation response that arrives after the order's closing
    /// notification must not bring it back. A ring, so memory stays bounded.
    private var recentlyClosed: Set<String> = []
    private var closedRing: [String] = []
    private var ringNext = 0
    static let recentlyClosedCapacity = 4096

    /// Cancels sent on a client's disconnect and not yet answered.
    var cancelsInFlight = 0

    /// Deribit's order states in which an order can still trade.
    static func isLive(_ state: String) -> Bool {
        state == "open" || state == "untriggered" || state == "triggered"
    }

    func owner(of orderID: String) -> UInt64? { owners[orderID] }

    func orders(of connection: UInt64) -> Set<String> { byConnection[connection] ?? [] }

    var allOrders: Set<String> { Set(owners.keys) }

    /// Records an open order. Returns false when it is already known closed.
    @discardableResult
    mutating func opened(_ orderID: String, by connection: UInt64) -> Bool {
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
    mutating func closed(_ orderID: String) -> UInt64? {
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
    mutating func release(_ connection: UInt64) {
        for id in byConnection.removeValue(forKey: connection) ?? [] { owners[id] = nil }
    }
}

/// An order-creating request that timed out: its late response still tells which order it made.
struct LateOrderRequest {
    let session: ClientSession
    let method: MethodTraits
    let deadline: UInt64
}

/// Per-client cancel-on-disconnect (SPEC §7).
extension Gateway {
    /// The gateway's own subscription that shows every order of the account closing.
    static let orderTrackingChannel = "user.orders.any.any.raw"
    /// How long a timed-out order request's late response is still awaited.
    static let lateOrderResponseWindowNanos: UInt64 = 60_000_000_000
    static let maxLateOrderRequests = 4096

    /// Whether this session's disconnect cancels its orders.
    func cancelsOnDisconnect(_ session: ClientSession) -> Bool {
        session.cancelOnDisconnect && !session.loggedOut
    }

    // MARK: learning about orders

    /// Follows an order's life through the responses of order methods.
    func orderResponse(_ session: ClientSession, method: MethodTraits, outcome: UpstreamOutcome) {
        let creates = method.createsOrders
        guard creates || method.isCancel else { return }
        guard let result = outcome.decodedResult() as? [String: Any] else { return }
        var orders: [[String: Any]] = []
        if let o = result["order"] as? [String: Any] { orders.append(o) }
        if let list = result["orders"] as? [[String: Any]] { orders += list }  // mass_quote
        if result["order_id"] is String { orders.append(result) }  // private/cancel returns the order
        for o in orders {
            guard let id = o["order_id"] as? String else { continue }
            if Self.isLiveOrder(o) {
                guard creates else { continue }
                // An edit keeps the order's creator; an order nobody claimed goes to its editor.
                if method.isEdit, orderLedger.owner(of: id) != nil { continue }
                recordOrder(id, for: session)
            } else {
                orderLedger.closed(id)
            }
        }
    }

    static func isLiveOrder(_ o: [String: Any]) -> Bool {
        OrderLedger.isLive(o["order_state"] as? String ?? "")
    }

    func recordOrder(_ orderID: String, for session: ClientSession) {
        guard orderLedger.opened(orderID, by: session.id) else { return }
        if session.closed {
            if cancelsOnDisconnect(session) {
                // The creation response arrived after the disconnect: cancel it now.
                cancelForDisconnect(orderID, of: session)
            } else {
                orderLedger.release(session.id)
            }
        }
    }

    /// `user.orders.any.any.raw` (one order) or an aggregated interval (an array of orders).
    func orderNotification(_ bytes: [UInt8]) {
        guard let obj = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any],
              let data = (obj["params"] as? [String: Any])?["data"] else { return }
        let orders = (data as? [[String: Any]]) ?? ((data as? [String: Any]).map { [$0] } ?? [])
        for o in orders {
            guard let id = o["order_id"] as? String, !Self.isLiveOrder(o) else { continue }
            orderLedger.closed(id)
        }
    }

    /// Subscribes the gateway's own order channel, held for as long as the upstream is
    /// authenticated whoever else holds it, and forgets the orders that closed while the
    /// upstream was away. Call when the upstream becomes ready, before `resubscribeAll`.
    func pinOrderTrackingChannel() {
        guard upstreamAuthenticated else { return }
        reconcileOrders()
        let ch = Self.orderTrackingChannel
        if let entry = channels[ch] {
            entry.heldByGateway = true
        } else {
            // Active so that `resubscribeAll` subscribes it like any held channel.
            let entry = ChannelEntry(name: ch)
            entry.state = .active
            entry.heldByGateway = true
            addEntry(entry)
        }
    }

    /// Orders may have closed while no `user.orders` notification could reach the gateway (on a
    /// lost upstream, Deribit's cancel-on-disconnect cancels them): keep only those still open.
    /// Only orders known before the query are judged; later ones may postdate its answer.
    private func reconcileOrders() {
        let known = orderLedger.allOrders
        guard !known.isEmpty else { return }
        sendLocal("private/get_open_orders", params: nil) { [weak self] outcome in
            guard let self, let list = outcome.decodedResult() as? [[String: Any]] else { return }
            let open = Set(list.compactMap { $0["order_id"] as? String })
            let gone = known.subtracting(open)
            for id in gone { self.orderLedger.closed(id) }
            if !gone.isEmpty { self.logger.info("forgot \(gone.count) orders closed while the upstream was away") }
        }
    }

    // MARK: late responses

    /// An order request timed out (-32001) after it was sent: the order may exist all the same,
    /// so its response is still awaited for a while.
    func keepLateOrderRequest(_ upstreamID: UInt64, _ p: PendingRequest) {
        guard case .client(let session, _) = p.owner, p.method.createsOrders else { return }
        let t = now
        lateOrderRequests = lateOrderRequests.filter { $0.value.deadline > t }
        guard lateOrderRequests.count < Self.maxLateOrderRequests else { return }
        lateOrderRequests[upstreamID] = LateOrderRequest(session: session, method: p.method, deadline: t + Self.lateOrderResponseWindowNanos)
    }

    /// A response to a request that had timed out: only its order matters now.
    func lateResponse(_ upstreamID: UInt64, _ bytes: [UInt8], _ scan: JSONRPCScan) {
        guard let late = lateOrderRequests.removeValue(forKey: upstreamID) else { return }
        logger.notice("late order response", metadata: ["client": "\(late.session.label)", "conn.id": "\(late.session.id)", "method": "\(late.method.name.map { "\($0)" } ?? "?")"])
        orderResponse(late.session, method: late.method, outcome: .response(bytes: bytes, scan: scan))
    }

    // MARK: disconnects

    func clientDisconnectedForOrders(_ session: ClientSession, reason: String) {
        guard cancelsOnDisconnect(session) else {
            orderLedger.release(session.id)
            return
        }
        for id in orderLedger.orders(of: session.id).sorted() {
            cancelForDisconnect(id, of: session)
        }
    }

    /// Paced by the matching-engine credits like every cancel; sent ahead of clients' requests.
    func cancelForDisconnect(_ orderID: String, of session: ClientSession) {
        logger.notice("cancel-on-disconnect", metadata: ["client": "\(session.label)", "order_id": "\(orderID)", "conn.id": "\(session.id)"])
        metrics.codCancels[session.label, default: 0] += 1
        orderLedger.cancelsInFlight += 1
        sendLocal("private/cancel", params: "{\"order_id\":\(quoted(orderID))}", bucket: .matchingEngine, whenReady: true) { [weak self] outcome in
            guard let self else { return }
            self.orderLedger.cancelsInFlight -= 1
            if let error = self.cancelError(outcome) {
                // 11044 / 10004: it closed meanwhile. Otherwise Deribit's own cancel-on-disconnect
                // covers a lost upstream.
                self.logger.error("cancel-on-disconnect failed", metadata: ["client": "\(session.label)", "order_id": "\(orderID)", "error": "\(error)"])
            }
            self.orderLedger.closed(orderID)
        }
    }

    private func cancelError(_ outcome: UpstreamOutcome) -> String? {
        switch outcome {
        case .failed(let code, let message): return "\(code) \(message)"
        case .response(let bytes, let scan):
            guard let e = scan.error else { return nil }
            return String(decoding: bytes[e], as: UTF8.self)
        }
    }

    /// Order-creating requests of flagged, departed clients still waiting for the upstream.
    var pendingOrderCreationsToCancel: Int {
        pending.values.reduce(0) { n, p in
            guard case .client(let s, _) = p.owner, s.closed, cancelsOnDisconnect(s), p.method.createsOrders else { return n }
            return n + 1
        }
    }
}
