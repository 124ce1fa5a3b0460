/// `public/set_heartbeat` emulated for one client (SPEC §6.2), with Deribit's semantics:
/// every `interval` seconds the client gets a `test_request`; a client that has not sent
/// `public/test` within `interval` seconds of one is disconnected.
///
///     set(10 s) ──10 s──▶ test_request ──10 s──▶ no public/test since? ─▶ disconnect
///                              │
///                         public/test ─▶ the deadline is off; the next test_request comes on time
package struct ClientHeartbeat: Sendable {
    package enum Action: Sendable, Equatable {
        case none
        /// Send `{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}`.
        case sendTestRequest
        /// The client did not answer in time: disconnect it (its cancel-on-disconnect applies).
        case disconnect
    }

    /// Deribit's minimum interval, in seconds.
    package static let minimumIntervalSeconds = 10.0
    /// Deribit sets no maximum; a day bounds the timer arithmetic.
    package static let maximumIntervalSeconds = 86_400.0

    package private(set) var interval: Nanos?
    package private(set) var nextTestRequestAt: Nanos?
    package private(set) var answerDeadline: Nanos?

    package init() {}

    /// The interval as the client asked for it: Deribit's -32602 when it is not a number or
    /// below the minimum.
    package static func validate(interval: Double?) -> Result<Double, GatewayError> {
        guard let interval, interval.isFinite else {
            return .failure(.invalidParams(param: "interval", reason: "must be a number"))
        }
        guard interval >= minimumIntervalSeconds else {
            return .failure(.invalidParams(param: "interval", reason: "must be >= 10"))
        }
        return .success(min(interval, maximumIntervalSeconds))
    }

    /// `public/set_heartbeat` with a validated interval: the first `test_request` is one interval away.
    package mutating func set(intervalSeconds: Double, now: Nanos) {
        let nanos = Nanos.seconds(intervalSeconds)
        interval = nanos
        nextTestRequestAt = now + nanos
        answerDeadline = nil
    }

    /// `public/disable_heartbeat`.
    package mutating func disable() {
        interval = nil
        nextTestRequestAt = nil
        answerDeadline = nil
    }

    /// `public/test` from the client.
    package mutating func receivedTest() {
        answerDeadline = nil
    }

    /// When `timerFired` has something to do.
    package var nextWakeup: Nanos? {
        switch (nextTestRequestAt, answerDeadline) {
        case let (a?, b?): return min(a, b)
        case let (a, b): return a ?? b
        }
    }

    package mutating func timerFired(now: Nanos) -> Action {
        if let deadline = answerDeadline, now >= deadline {
            disable()
            return .disconnect
        }
        guard let interval, let due = nextTestRequestAt, now >= due else { return .none }
        // On schedule from the previous one, not from a late timer.
        var next = due + interval
        if next <= now { next = now + interval }
        nextTestRequestAt = next
        if answerDeadline == nil { answerDeadline = now + interval }
        return .sendTestRequest
    }
}
