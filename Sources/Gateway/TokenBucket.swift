/// A continuously refilled credit bucket: Deribit's rate-limit model (SPEC §6.6).
/// Time is passed in (nanoseconds, monotonic) so tests can drive it.
struct TokenBucket {
    let capacity: Double
    let refillPerSecond: Double
    private(set) var tokens: Double
    private var last: UInt64

    init(capacity: Double, refillPerSecond: Double, now: UInt64) {
        self.capacity = capacity
        self.refillPerSecond = refillPerSecond
        self.tokens = capacity
        self.last = now
    }

    mutating func refill(now: UInt64) {
        guard now > last else { return }
        tokens = min(capacity, tokens + Double(now - last) / 1e9 * refillPerSecond)
        last = now
    }

    /// Takes `cost` if at least `reserve` stays in the bucket.
    mutating func tryTake(_ cost: Double, keeping reserve: Double = 0, now: UInt64) -> Bool {
        refill(now: now)
        guard tokens - cost >= reserve else { return false }
        tokens -= cost
        return true
    }

    /// Seconds until `cost` could be taken keeping `reserve`.
    mutating func secondsUntilAvailable(_ cost: Double, keeping reserve: Double = 0, now: UInt64) -> Double {
        refill(now: now)
        let deficit = cost + reserve - tokens
        return deficit <= 0 ? 0 : deficit / refillPerSecond
    }

    /// Books `cost` now for a request that will be sent after the refill caught up: the
    /// bucket may go below the reserve (even negative) meanwhile, so later requests wait longer.
    mutating func borrow(_ cost: Double, now: UInt64) {
        refill(now: now)
        tokens -= cost
    }
}
