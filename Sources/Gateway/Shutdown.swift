import JSONRPC
import Transport

/// Where a graceful shutdown is (SPEC §8). Confined to the gateway's loop.
final class ShutdownProgress: @unchecked Sendable {
    enum Phase {
        /// Clients are closed; the cancels of flagged clients' orders are awaited.
        case cancelling
        /// `private/logout` is sent; the upstream's close is awaited.
        case loggingOut
        /// The close frames to clients are being flushed.
        case flushing
        case finished
    }

    var phase = Phase.cancelling
    /// False while the clients are being closed: no phase ends before they all are.
    var armed = false
    let startedAt: UInt64
    var phaseStartedAt: UInt64
    /// Client connections whose transport has not closed yet.
    var clientsOpen = 0
    var upstreamOpen = false
    var timer: ScheduledTask?
    let done: @Sendable () -> Void

    /// Bounds, so that a supervisor's SIGKILL (often 5 s after SIGTERM) never comes first.
    static let cancelWaitNanos: UInt64 = 2_500_000_000
    static let logoutWaitNanos: UInt64 = 1_000_000_000
    static let totalNanos: UInt64 = 4_000_000_000

    init(now: UInt64, done: @escaping @Sendable () -> Void) {
        startedAt = now
        phaseStartedAt = now
        self.done = done
    }
}

extension Gateway {
    /// SPEC §8: stop accepting; close clients with 1001 (so no new order arrives) and cancel the
    /// orders of those whose flag is on, waiting (bounded) for the confirmations — including
    /// orders whose creation response is still on its way; `private/logout` upstream so that
    /// Deribit's own cancel-on-disconnect spares the orders of clients without the flag; wait
    /// until the close frames to clients are flushed; then `done` (which exits).
    public func shutdown(done: @escaping @Sendable () -> Void) {
        loop.assertInEventLoop()
        guard !stopping else { return }
        stopping = true
        let progress = ShutdownProgress(now: now, done: done)
        logger.notice("shutting down", metadata: ["clients": "\(clients.count)"])
        server?.stopAccepting()
        server?.closeHTTPConnections()
        reconnectTimer?.cancel()
        refreshTimer?.cancel()
        for s in Array(clients.values) {
            progress.clientsOpen += 1
            s.ws.onClose = { [unowned self] _, event in
                self.clientClosed(s, event)
                progress.clientsOpen -= 1
                self.shutdownStep(progress)
            }
            // Runs the session's end at once: channels released, cancel-on-disconnect sent.
            disconnect(s, code: 1001, reason: "gateway shutdown", metricReason: "shutdown")
        }
        progress.armed = true
        progress.timer = loop.scheduleRepeating(every: .milliseconds(10)) { [weak self] in
            self?.shutdownStep(progress)
        }
        shutdownStep(progress)
    }

    private func shutdownStep(_ progress: ShutdownProgress) {
        guard progress.armed else { return }
        let t = now
        switch progress.phase {
        case .cancelling:
            let waiting = orderLedger.cancelsInFlight + pendingOrderCreationsToCancel
            if waiting > 0 && t - progress.phaseStartedAt < ShutdownProgress.cancelWaitNanos { return }
            if waiting > 0 {
                logger.error("shutdown: \(waiting) cancel-on-disconnect requests unconfirmed; going on")
            }
            progress.phase = .loggingOut
            progress.phaseStartedAt = t
            logoutUpstream(progress)
            shutdownStep(progress)
        case .loggingOut:
            if progress.upstreamOpen && t - progress.phaseStartedAt < ShutdownProgress.logoutWaitNanos { return }
            if progress.upstreamOpen { upstream?.abort(reason: "gateway shutdown") }
            progress.phase = .flushing
            progress.phaseStartedAt = t
            shutdownStep(progress)
        case .flushing:
            if progress.clientsOpen > 0 && t - progress.startedAt < ShutdownProgress.totalNanos { return }
            progress.phase = .finished
            progress.timer?.cancel()
            sweepTimer?.cancel()
            upstreamState = .stopped
            logger.notice("shutdown complete", metadata: ["clients_unflushed": "\(progress.clientsOpen)"])
            progress.done()
        case .finished:
            return
        }
    }

    /// Deribit: `private/logout` closes the session without a response and does not apply its
    /// cancel-on-disconnect, so the orders of clients without the flag survive the gateway.
    private func logoutUpstream(_ progress: ShutdownProgress) {
        guard let up = upstream else { return }
        progress.upstreamOpen = true
        up.onClose = { [unowned self] _, _ in
            progress.upstreamOpen = false
            self.upstream = nil
            self.shutdownStep(progress)
        }
        if upstreamAuthenticated {
            up.sendText(JSONRPCWire.request(id: pending.skipID(), method: "private/logout", paramsJSON: nil))
            // The exchange closes the connection itself.
        } else {
            up.close(code: 1000, reason: "gateway shutdown")
        }
    }
}
