/// A continuously refilled credit bucket: Deribit's rate-limit model (SPEC §6.6).
/// Time is passed in (nanoseconds, monotonic) so tests can drive it.
package struct TokenBucket: Sendable {
    package let capacity: Double
    package let refillPerSecond: Double
    package private(set) var tokens: Double
    private var last: UInt64

    package init(capacity: Double, refillPerSecond: Double, now: UInt64) {
        self.capacity = capacity
        self.refillPerSecond = refillPerSecond
        self.tokens = capacity
        self.last = now
    }

    package mutating func refill(now: UInt64) {
        guard now > last else { return }
        tokens = min(capacity, tokens + Double(now - last) / 1e9 * refillPerSecond)
        last = now
    }

    /// Takes `cost` if at least `reserve` stays in the bucket.
    package mutating func tryTake(_ cost: Double, keeping reserve: Double = 0, now: UInt64) -> Bool {
        refill(now: now)
        guard tokens - cost >= reserve else { return false }
        tokens -= cost
        return true
    }

    /// Seconds until `cost` could be taken keeping `reserve`.
    package mutating func secondsUntilAvailable(_ cost: Double, keeping reserve: Double = 0, now: UInt64) -> Double {
        refill(now: now)
        let deficit = cost + reserve - tokens
        return deficit <= 0 ? 0 : deficit / refillPerSecond
    }

    /// Gives back credits booked for a request that will not be sent (capped at the capacity).
    package mutating func refund(_ cost: Double) {
        tokens = min(capacity, tokens + cost)
    }

    /// Books `cost` now for a request that will be sent after the refill caught up: the
    /// bucket may go below the reserve (even negative) meanwhile, so later requests wait longer.
    package mutating func borrow(_ cost: Double, now: UInt64) {
        refill(now: now)
        tokens -= cost
    }
}

/// Deribit's three credit buckets (SPEC §6.6).
package enum CreditBucket: Sendable, CaseIterable {
    case standard, subscribe, matchingEngine

    /// The `bucket` label of `deribit_gateway_credits_available`.
    package var label: String {
        switch self {
        case .standard: return "default"
        case .subscribe: return "subscribe"
        case .matchingEngine: return "matching_engine"
        }
    }
}

/// The gateway's model of Deribit's credit buckets (SPEC §6.6): a request is sent only when
/// the model says it will not overdraw. Clients' requests leave a reserve for the gateway's
/// own (heartbeat answers, cancel-on-disconnect cancels, re-subscriptions), which come first.
package struct CreditModel: Sendable {
    package struct Settings: Sendable, Equatable {
        package var defaultCost = 500
        package var max = 50_000
        package var refillPerSecond = 10_000
        package var subscribeCost = 3_000
        package var subscribeMax = 30_000
        package var matchingEngineRate = 5
        package var matchingEngineBurst = 20
        /// Longest a client's request may wait for credits before the gateway answers 10028 itself.
        package var maxWait: Nanos = .milliseconds(250)
        /// The share of the default bucket that clients' requests leave to the gateway's own.
        package static let defaultReserveShare = 0.1
        /// Matching-engine credits clients leave to the gateway's own cancels (at most 10% of the burst).
        package static let matchingEngineReserve = 2.0
        /// The model runs on the gateway's clock, the exchange's bucket on arrival times: a request
        /// delayed on the way and the next one not can reach the exchange closer together than
        /// they were sent. Every request, the gateway's own included, leaves this much refill
        /// time in the bucket, so that such jitter never overdraws it (Deribit would answer 10028
        /// and close the session).
        package var jitterMargin: Nanos = .milliseconds(100)

        package init() {}
    }

    /// What to do with a request.
    package enum Decision: Equatable, Sendable {
        /// The credits are taken: send it now.
        case sendNow
        /// The credits are booked: send it at this time, not before.
        case sendAt(Nanos)
        /// It would have to wait longer than `maxWait`: answer 10028.
        case refuse
    }

    package let settings: Settings
    private var standard: TokenBucket
    private var subscribe: TokenBucket
    private var matchingEngine: TokenBucket

    package init(_ settings: Settings, now: Nanos) {
        self.settings = settings
        standard = TokenBucket(capacity: Double(settings.max), refillPerSecond: Double(settings.refillPerSecond), now: now)
        subscribe = TokenBucket(capacity: Double(settings.subscribeMax), refillPerSecond: Double(settings.refillPerSecond), now: now)
        matchingEngine = TokenBucket(
            capacity: Double(settings.matchingEngineBurst), refillPerSecond: Double(settings.matchingEngineRate), now: now)
    }

    /// Takes one request's credits from `bucket`. A client's request (`keepsReserve`) leaves
    /// the reserve and may wait at most `maxWait`; the gateway's own always get a time.
    package mutating func take(_ bucket: CreditBucket, keepsReserve: Bool, now: Nanos) -> Decision {
        let cost: Double
        let keep: Double
        switch bucket {
        case .standard:
            cost = Double(settings.defaultCost)
            keep = keepsReserve ? Double(settings.max) * Settings.defaultReserveShare : 0
        case .subscribe:
            cost = Double(settings.subscribeCost)
            keep = 0
        case .matchingEngine:
            cost = 1
            keep = keepsReserve ? min(Settings.matchingEngineReserve, Double(settings.matchingEngineBurst) * 0.1) : 0
        }
        let maxWaitSeconds = Double(settings.maxWait) / 1e9
        let keepAlso = keep + margin(bucket)
        return withBucket(bucket) { b in
            let keep = keepAlso
            if b.tryTake(cost, keeping: keep, now: now) { return .sendNow }
            let wait = b.secondsUntilAvailable(cost, keeping: keep, now: now)
            guard wait <= maxWaitSeconds || !keepsReserve else { return .refuse }
            b.borrow(cost, now: now)
            // One millisecond late rather than early: the exchange's bucket must have refilled.
            return .sendAt(now + UInt64(wait * 1e9) + 1_000_000)
        }
    }

    /// Gives back one request's credits booked with `.sendAt` that will not be sent after all.
    package mutating func refund(_ bucket: CreditBucket, now: Nanos) {
        let cost = self.cost(bucket)
        withBucket(bucket) { b in b.refund(cost) }
    }

    /// `jitterMargin` of this bucket's refill, in credits.
    private func margin(_ bucket: CreditBucket) -> Double {
        let perSecond: Double
        switch bucket {
        case .standard, .subscribe: perSecond = Double(settings.refillPerSecond)
        case .matchingEngine: perSecond = Double(settings.matchingEngineRate)
        }
        return perSecond * Double(settings.jitterMargin) / 1e9
    }

    private func cost(_ bucket: CreditBucket) -> Double {
        switch bucket {
        case .standard: return Double(settings.defaultCost)
        case .subscribe: return Double(settings.subscribeCost)
        case .matchingEngine: return 1
        }
    }

    /// How long a request of the gateway's own (no reserve) would wait in `bucket` now.
    package mutating func delay(_ bucket: CreditBucket, now: Nanos) -> Nanos {
        let cost = self.cost(bucket)
        let keep = margin(bucket)
        return withBucket(bucket) { b in UInt64(b.secondsUntilAvailable(cost, keeping: keep, now: now) * 1e9) }
    }

    /// Whole credits left in `bucket` now (for /metrics).
    package mutating func available(_ bucket: CreditBucket, now: Nanos) -> Double {
        withBucket(bucket) { b in
            b.refill(now: now)
            return b.tokens.rounded(.down)
        }
    }

    private mutating func withBucket<R>(_ bucket: CreditBucket, _ body: (inout TokenBucket) -> R) -> R {
        switch bucket {
        case .standard: return body(&standard)
        case .subscribe: return body(&subscribe)
        case .matchingEngine: return body(&matchingEngine)
        }
    }
}
