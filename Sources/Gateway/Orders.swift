import Foundation
import JSONRPC
import Transport

/// Per-client cancel-on-disconnect (SPEC §7): which client created which open order.
extension Gateway {
    func noteOrderRequest(_ request: ClientRequest, upstreamID: UInt64) {}

    /// Follows an order's life through the responses of order methods.
    func orderResponse(_ session: ClientSession, method: String, outcome: UpstreamOutcome) {
        guard MethodPolicy.createsOrders(method) || method.hasPrefix("private/cancel") else { return }
        guard let result = outcome.decodedResult() as? [String: Any] else { return }
        var orders: [[String: Any]] = []
        if let o = result["order"] as? [String: Any] { orders.append(o) }
        if let list = result["orders"] as? [[String: Any]] { orders += list }
        if result["order_id"] is String { orders.append(result) }  // private/cancel returns the order
        for o in orders {
            guard let id = o["order_id"] as? String else { continue }
            let state = o["order_state"] as? String ?? ""
            if state == "open" || state == "untriggered" {
                if MethodPolicy.createsOrders(method) { recordOrder(id, for: session) }
            } else {
                forgetOrder(id)
            }
        }
    }

    func recordOrder(_ orderID: String, for session: ClientSession) {
        session.openOrders.insert(orderID)
        orderOwners[orderID] = session.id
        if session.closed && session.cancelOnDisconnect && !session.loggedOut {
            // The creation response arrived after the disconnect: cancel it now.
            cancelForDisconnect(orderID, of: session)
        }
    }

    func forgetOrder(_ orderID: String) {
        if let owner = orderOwners.removeValue(forKey: orderID) {
            clients[owner]?.openOrders.remove(orderID)
            departedOwners[owner]?.openOrders.remove(orderID)
        }
    }

    func clientDisconnectedForOrders(_ session: ClientSession, reason: String) {
        // On shutdown the cancels were sent (and awaited) by `shutdown`.
        guard session.cancelOnDisconnect, !session.loggedOut, session.closeReason != "shutdown" else {
            for id in session.openOrders { orderOwners[id] = nil }
            return
        }
        if session.pendingCount > 0 { departedOwners[session.id] = session }
        for id in session.openOrders.sorted() {
            cancelForDisconnect(id, of: session)
        }
    }

    func cancelForDisconnect(_ orderID: String, of session: ClientSession) {
        logger.notice("cancel-on-disconnect", metadata: ["client": "\(session.label)", "order_id": "\(orderID)", "conn.id": "\(session.id)"])
        metrics.codCancels[session.label, default: 0] += 1
        sendLocal("private/cancel", params: "{\"order_id\":\(quoted(orderID))}", bucket: .matchingEngine, whenReady: true) { [weak self] outcome in
            guard let self else { return }
            if case .failed(let code, let message) = outcome {
                self.logger.error("cancel-on-disconnect failed", metadata: ["client": "\(session.label)", "order_id": "\(orderID)", "error": "\(code) \(message)"])
            }
            self.forgetOrder(orderID)
            session.openOrders.remove(orderID)
            if session.openOrders.isEmpty && session.pendingCount <= 0 { self.departedOwners[session.id] = nil }
        }
    }
}
