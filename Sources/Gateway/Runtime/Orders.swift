import GatewayCore
import JSONRPC
import Logging
import Transport

/// Cancel-on-disconnect (SPEC §7), the runtime side: cancels that are never given up, paced
/// ahead of clients' requests, and the reconciliation of the ledger after every reconnect.
extension Gateway {
    /// How far ahead the cancel queue books matching-engine credits: enough to keep the
    /// bucket busy, little enough that a booked cancel is sent long before it could time out.
    static let cancelCreditHorizon: Nanos = .milliseconds(1_000)

    /// The label of a client, connected or gone.
    func clientLabel(_ id: ClientID) -> String {
        sessions[id]?.label ?? orders.departedLabel(id) ?? "anonymous"
    }

    /// Orders of a disconnected flagged client: logged, counted, queued until confirmed.
    func enqueueCancels(_ list: [OrderTracker.Cancel]) {
        guard !list.isEmpty else { return }
        let t = now
        for c in list where cancels.enqueue(c, now: t) {
            logger.notice("cancel-on-disconnect", metadata: ["client": "\(c.label)", "order_id": "\(c.orderID)", "conn.id": "\(c.client)"])
            metrics.codCancels[c.label, default: 0] += 1
        }
        pumpCancels()
    }

    /// Sends the cancel queue's due work while the upstream is ready, as fast as the
    /// matching-engine credits allow: cancels keep no reserve, so they go ahead of clients'
    /// requests, which leave one.
    func pumpCancels() {
        // The router's link, not the session's state: a shutdown stops the session but still
        // sends its cancels before the logout.
        guard router.link == .ready else { return }
        let t = now
        // Booked no further ahead than half the request timeout: a cancel must be sent long
        // before it could expire unsent.
        let horizon = min(Self.cancelCreditHorizon, router.settings.requestTimeout / 2)
        while router.creditDelay(.matchingEngine, now: t) <= horizon, let job = cancels.next(now: t) {
            let id = job.cancel.orderID
            switch job.work {
            case .cancel:
                submit(.cancelOnDisconnect(orderID: id), "private/cancel", .object([("order_id", .string(id))]),
                       bucket: .matchingEngine, whenReady: true)
            case .checkState:
                submit(.cancelCheck(orderID: id), "private/get_order_state", .object([("order_id", .string(id))]), whenReady: true)
            }
        }
    }

    /// The answer to a cancel, or to the check of its order's state.
    func cancelAnswered(_ orderID: String, _ outcome: UpstreamOutcome, check: Bool) {
        guard let job = cancels.job(orderID) else { return }
        let t = now
        let settled = check ? cancels.stateAnswered(orderID, outcome, now: t) : cancels.cancelAnswered(orderID, outcome, now: t)
        let metadata: Logger.Metadata = ["client": "\(job.cancel.label)", "order_id": "\(orderID)", "conn.id": "\(job.cancel.client)"]
        switch settled {
        case .closed(let state)?:
            orders.cancelSettled(orderID)
            logger.info("cancel-on-disconnect confirmed", metadata: metadata.merging(["order_state": "\(state)"]) { $1 })
        case .notOpen(let code)?:
            orders.cancelSettled(orderID)
            logger.info("cancel-on-disconnect confirmed: not open at the exchange", metadata: metadata.merging(["code": "\(code)"]) { $1 })
        case nil:
            if let e = outcome.errorDescription {
                logger.warning("cancel-on-disconnect not confirmed; retrying", metadata: metadata.merging([
                    "error": "\(e)", "next": "\(cancels.job(orderID)?.work == .checkState ? "get_order_state" : "cancel")",
                ]) { $1 })
            }
        }
        pumpCancels()
    }

    /// Cancels not confirmed yet, plus order creations of flagged departed clients still
    /// waiting for the upstream (their orders will need cancelling too).
    var cancelsOutstanding: Int {
        cancels.count + router.pendingRequests { p in
            guard case .client(let id, _) = p.owner, p.method.createsOrders else { return false }
            return orders.isDepartedCancelling(id)
        }
    }

    // MARK: reconciliation after a reconnect (SPEC §7)

    func reconciled(known: Set<String>, _ outcome: UpstreamOutcome) {
        guard case .response(let bytes, let scan) = outcome, let r = scan.result else {
            logger.warning("reconciliation failed: \(outcome.errorDescription ?? "no result")")
            return
        }
        let found = orders.reconcile(known: known, result: r, of: bytes)
        if !found.closed.isEmpty {
            logger.info("\(found.closed.count) orders closed while the upstream was away")
            // Their holders of `user.orders` learn it as Deribit would have told them.
            for id in found.closed {
                submit(.reconcileOrderState(orderID: id), "private/get_order_state", .object([("order_id", .string(id))]), whenReady: true)
            }
        }
        for a in found.attributed {
            logger.notice("order found after the upstream's loss, attributed", metadata: ["client": "\(a.label)", "order_id": "\(a.orderID)", "conn.id": "\(a.client)"])
        }
        for id in found.unattributed {
            logger.warning("order found after the upstream's loss, not attributed", metadata: ["order_id": "\(id)"])
        }
        enqueueCancels(found.cancels)
    }

    /// An order that closed while the upstream was away: delivered to every client holding a
    /// `user.orders` channel that shows it, as a notification carrying the exchange's order.
    func closedWhileAway(_ orderID: String, _ outcome: UpstreamOutcome) {
        guard case .response(let bytes, let scan) = outcome, let r = scan.result,
              let instrumentRange = JSONObjectReader.member("instrument_name", inObject: r, of: bytes),
              let instrument = JSONScalar.string(bytes, instrumentRange) else {
            logger.warning("state of order \(orderID) closed while away: \(outcome.errorDescription ?? "no result")")
            return
        }
        let order = Array(bytes[r])
        for entry in subscriptions.channels.values where UserOrdersChannel.covers(entry.name, instrument: instrument) {
            guard !entry.holders.isEmpty else { continue }
            let data: JSONValue = UserOrdersChannel.isRaw(entry.name) ? .raw(order) : .array([.raw(order)])
            let params: JSONValue = .object([("channel", .string(entry.name)), ("data", data)])
            let notification = JSONRPCWire.notification(method: "subscription", paramsJSON: params.bytes)
            for h in entry.holders { sessions[h]?.send(notification) }
            metrics.framesSent += entry.holders.count
        }
    }
}
