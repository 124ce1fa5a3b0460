import JSONRPC
import Transport

extension Gateway {
    /// SPEC §8: stop accepting; cancel the orders of flagged clients and wait (bounded) for the
    /// confirmations; close clients with 1001; `private/logout` upstream so the orders of
    /// clients without the flag survive; then `done`.
    public func shutdown(done: @escaping @Sendable () -> Void) {
        loop.assertInEventLoop()
        guard !stopping else { return }
        server?.stopAccepting()
        server?.closeHTTPConnections()
        let sessions = Array(clients.values)
        var outstanding = 0
        var finished = false
        let finish: () -> Void = { [unowned self] in
            guard !finished else { return }
            finished = true
            self.stopping = true
            self.sweepTimer?.cancel()
            self.reconnectTimer?.cancel()
            self.refreshTimer?.cancel()
            guard let up = self.upstream, self.upstreamState == .ready || self.upstreamState == .authenticating else {
                self.upstreamState = .stopped
                done()
                return
            }
            // Logout: Deribit closes without a response and does not apply cancel-on-disconnect.
            up.onClose = { _, _ in done() }
            if self.upstreamAuthenticated {
                up.sendText(JSONRPCWire.request(id: self.nextUpstreamID, method: "private/logout", paramsJSON: nil))
                self.nextUpstreamID += 1
            }
            up.close(code: 1000, reason: "gateway shutdown")
            self.loop.schedule(after: .seconds(3)) { done() }
        }
        for s in sessions {
            s.closeReason = "shutdown"
            if s.cancelOnDisconnect && !s.loggedOut {
                for id in s.openOrders.sorted() {
                    outstanding += 1
                    logger.notice("cancel-on-disconnect", metadata: ["client": "\(s.label)", "order_id": "\(id)", "conn.id": "\(s.id)"])
                    metrics.codCancels[s.label, default: 0] += 1
                    sendLocal("private/cancel", params: "{\"order_id\":\(quoted(id))}", bucket: .matchingEngine) { [unowned self] _ in
                        self.forgetOrder(id)
                        outstanding -= 1
                        if outstanding == 0 { finish() }
                    }
                }
                s.openOrders.removeAll()
            }
            s.ws.close(code: 1001, reason: "gateway shutdown")
        }
        if outstanding == 0 {
            finish()
        } else {
            nonisolated(unsafe) let bounded = finish
            loop.schedule(after: .seconds(5)) { bounded() }
        }
    }
}
