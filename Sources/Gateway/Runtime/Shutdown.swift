import GatewayCore
import Transport

extension Gateway {
    /// SPEC §8: stop accepting; close clients with 1001 (so no new order arrives) and cancel the
    /// orders of those whose flag is on, waiting (bounded) for the confirmations — including
    /// orders whose creation response is still on its way; `private/logout` upstream so that
    /// Deribit's own cancel-on-disconnect spares the orders of clients without the flag; wait
    /// until the close frames to clients are flushed; then `done` (which exits). The phases are
    /// `ShutdownPlan`'s; this carries out its actions.
    public func shutdown(done: @escaping @Sendable (_ exitStatus: Int32) -> Void) {
        loop.assertInEventLoop()
        guard !stopping else { return }
        let t = now
        logger.notice("shutting down", metadata: ["clients": "\(sessions.webSocketCount)"])
        stopping = true
        shutdownDone = done
        server?.stopAccepting()
        server?.closeHTTPConnections()
        // The upstream session goes on until the logout: if it is lost while cancels are
        // outstanding, the gateway reconnects and finishes them.
        for s in sessions.webSockets {
            // Runs the session's end at once: channels released, cancel-on-disconnect sent.
            disconnect(s, code: 1001, reason: "gateway shutdown", metricReason: "shutdown")
        }
        // Made once every client is closed: the cancels are sent and counted, and the closes of
        // transports still flushing arrive as events.
        var bounds = ShutdownPlan.Bounds()
        bounds.cancelWait = .milliseconds(config.shutdown.cancelWaitMilliseconds)
        bounds.total = bounds.cancelWait + bounds.logoutWait + Self.shutdownFlushWait
        shutdownPlan = ShutdownPlan(bounds: bounds, now: t, cancelsOutstanding: cancelsOutstanding, clientsOpen: openTransports,
                                    upstreamOpen: upstream != nil)
        shutdownEvent { plan, t in plan.begin(now: t) }
    }

    /// Feeds one event to the shutdown plan (if shutting down), carries out its actions and
    /// re-arms its one timer.
    func shutdownEvent(_ event: (inout ShutdownPlan, Nanos) -> [ShutdownPlan.Action]) {
        guard var plan = shutdownPlan else { return }
        let actions = event(&plan, now)
        shutdownPlan = plan
        for action in actions {
            switch action {
            case .none:
                break
            case .logoutUpstream:
                reportOrdersLeftOpen()
                session.stop()
                reconnectTimer?.cancel()
                if upstream == nil || router.link != .ready {
                    // Nothing (ready) to log out of: a connection still handshaking is dropped.
                    upstream?.abort(reason: "gateway shutdown")
                    loop.execute { [weak self] in self?.shutdownEvent { plan, t in plan.upstreamClosed(now: t) } }
                } else {
                    logoutUpstream()
                }
            case .abortUpstream:
                upstream?.abort(reason: "gateway shutdown")
            case .finish(let unflushed, let unconfirmed):
                shutdownTimer?.cancel()
                sweepTimer?.cancel()
                sweepStopped = true
                creditTimer?.cancel()
                let status = unconfirmed > 0 ? GatewayMain.exitOrdersLeftOpen : 0
                logger.notice("shutdown complete", metadata: ["clients_unflushed": "\(unflushed)", "exit_status": "\(status)"])
                shutdownDone?(status)
                return
            }
        }
        shutdownTimer?.cancel()
        if let at = shutdownPlan?.deadline {
            shutdownTimer = schedule(at: at) { [weak self] in
                self?.shutdownEvent { plan, t in plan.timerFired(now: t) }
            }
        }
    }

    /// The flush of close frames after the logout: the part of the total bound left to it.
    static let shutdownFlushWait: Nanos = .milliseconds(500)

    /// SPEC §8: flagged orders still open when the cancel wait ends are logged one by one.
    private func reportOrdersLeftOpen() {
        guard cancelsOutstanding > 0 else { return }
        for job in cancels.pending {
            logger.error("shutdown: order left open", metadata: ["client": "\(job.cancel.label)", "order_id": "\(job.cancel.orderID)", "conn.id": "\(job.cancel.client)"])
        }
        let creations = cancelsOutstanding - cancels.count
        if creations > 0 {
            logger.error("shutdown: \(creations) order creations of flagged clients unanswered; their orders may be open")
        }
    }

    /// Deribit: `private/logout` closes the session without a response and does not apply its
    /// cancel-on-disconnect, so the orders of clients without the flag survive the gateway.
    private func logoutUpstream() {
        guard let up = upstream else { return }
        if session.authenticated {
            up.sendText(router.oneWay(method: "private/logout"))
            // The exchange closes the connection itself.
        } else {
            up.close(code: 1000, reason: "gateway shutdown")
        }
    }
}
