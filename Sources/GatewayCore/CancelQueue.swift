import JSONRPC

/// Cancel-on-disconnect cancels that are never given up (SPEC §7): each order stays here until
/// the exchange confirms it closed, or says it does not know it.
///
///     enqueue ─▶ due(cancel) ─send─▶ in flight ─┬─ closed / 11044 / 10004 ────────────▶ done
///                   ▲     ▲                     ├─ -32001 (sent, no answer: ambiguous) ─▶ due(check)
///                   │     └───── retry later ───┼─ lost with the upstream ─────────────▶ due(cancel)
///                   │                           └─ any other error ─▶ after a backoff
///                   └── still open ◀── due(check) ─send─▶ private/get_order_state
///
/// The runtime takes due work with `next(now:)` as fast as the matching-engine credits allow,
/// ahead of clients' requests, and reports each answer. Pure: time is passed in.
package struct CancelQueue: Sendable {
    /// What to send for an order.
    package enum Work: Sendable, Equatable {
        case cancel
        /// `private/get_order_state`: after an ambiguous answer, what happened?
        case checkState
    }

    package struct Job: Sendable, Equatable {
        package let cancel: OrderTracker.Cancel
        package fileprivate(set) var work: Work
        /// Nil while in flight.
        package fileprivate(set) var dueAt: Nanos?
        package fileprivate(set) var failures = 0
        package let queuedAt: Nanos
    }

    /// How an answer ended a job, for logs.
    package enum Settled: Sendable, Equatable {
        /// The order closed: its state as the exchange reported it.
        case closed(state: String)
        /// The exchange does not know it, or says it is not open (10004, 11044).
        case notOpen(code: Int)
    }

    /// First retry after a failure; doubled per consecutive failure, up to `maxRetryDelay`.
    package static let retryDelay: Nanos = .milliseconds(500)
    package static let maxRetryDelay: Nanos = .milliseconds(10_000)
    /// Deribit's answers for an order that is not open: `order_not_found`, `not_open_order`.
    package static let notOpenCodes: Set<Int> = [10004, 11044]

    /// Jobs by order id, and their order of arrival.
    private var jobs: [String: Job] = [:]
    private var arrival: [String] = []
    /// Failed attempts (errors, timeouts, losses), for /metrics.
    package private(set) var failures = 0

    package init() {}

    package var count: Int { jobs.count }
    package var isEmpty: Bool { jobs.isEmpty }

    /// The jobs still open, in order of arrival.
    package var pending: [Job] { arrival.compactMap { jobs[$0] } }

    package func contains(_ orderID: String) -> Bool { jobs[orderID] != nil }

    /// The job of one order, while it goes on.
    package func job(_ orderID: String) -> Job? { jobs[orderID] }

    // MARK: events

    /// A disconnected client's order is to be cancelled. False when it already is queued.
    @discardableResult
    package mutating func enqueue(_ cancel: OrderTracker.Cancel, now: Nanos) -> Bool {
        guard jobs[cancel.orderID] == nil else { return false }
        jobs[cancel.orderID] = Job(cancel: cancel, work: .cancel, dueAt: now, queuedAt: now)
        arrival.append(cancel.orderID)
        return true
    }

    /// The oldest job due by `now`, marked in flight; the caller sends its work.
    package mutating func next(now: Nanos) -> Job? {
        for id in arrival {
            guard var job = jobs[id], let due = job.dueAt, due <= now else { continue }
            job.dueAt = nil
            jobs[id] = job
            return job
        }
        return nil
    }

    /// When the next job comes due (nil: none waits, or all are in flight).
    package var nextDueAt: Nanos? { jobs.values.compactMap(\.dueAt).min() }

    /// The answer to `private/cancel`. Returns how the job settled, or nil while it goes on.
    package mutating func cancelAnswered(_ orderID: String, _ outcome: UpstreamOutcome, now: Nanos) -> Settled? {
        guard jobs[orderID] != nil else { return nil }
        switch outcome {
        case .response(let bytes, let scan):
            if let r = scan.result {
                let state = Self.orderState(bytes, r)
                if let state, !OrderLedger.isLive(state) { return settle(orderID, .closed(state: state)) }
                // Answered but not closed (or no state): ask what it is now.
                return again(orderID, .checkState, at: now)
            }
            if let code = outcome.errorCode, Self.notOpenCodes.contains(code) { return settle(orderID, .notOpen(code: code)) }
            return failed(orderID, .cancel, now: now)
        case .failed(.upstreamTimeout):
            // Sent, unanswered: it may have been cancelled. Ask before sending it again.
            failures += 1
            return again(orderID, .checkState, at: now)
        case .failed(.upstreamUnavailable):
            // Lost with the connection: sent again once the upstream is back (a cancel is idempotent).
            failures += 1
            return again(orderID, .cancel, at: now)
        case .failed:
            return failed(orderID, .cancel, now: now)
        }
    }

    /// The answer to `private/get_order_state`.
    package mutating func stateAnswered(_ orderID: String, _ outcome: UpstreamOutcome, now: Nanos) -> Settled? {
        guard jobs[orderID] != nil else { return nil }
        switch outcome {
        case .response(let bytes, let scan):
            if let r = scan.result, let state = Self.orderState(bytes, r) {
                if !OrderLedger.isLive(state) { return settle(orderID, .closed(state: state)) }
                return again(orderID, .cancel, at: now)
            }
            if let code = outcome.errorCode, Self.notOpenCodes.contains(code) { return settle(orderID, .notOpen(code: code)) }
            return failed(orderID, .checkState, now: now)
        case .failed(.upstreamUnavailable):
            failures += 1
            return again(orderID, .checkState, at: now)
        case .failed:
            return failed(orderID, .checkState, now: now)
        }
    }

    // MARK: inside

    private mutating func settle(_ orderID: String, _ how: Settled) -> Settled {
        jobs[orderID] = nil
        arrival.removeAll { $0 == orderID }
        return how
    }

    /// The exchange answered (not a failure): the backoff starts over.
    private mutating func again(_ orderID: String, _ work: Work, at time: Nanos) -> Settled? {
        jobs[orderID]?.work = work
        jobs[orderID]?.dueAt = time
        jobs[orderID]?.failures = 0
        return nil
    }

    private mutating func failed(_ orderID: String, _ work: Work, now: Nanos) -> Settled? {
        failures += 1
        guard var job = jobs[orderID] else { return nil }
        job.failures += 1
        let delay = min(Self.maxRetryDelay, Self.retryDelay << UInt64(min(job.failures - 1, 20)))
        job.work = work
        job.dueAt = now + delay
        jobs[orderID] = job
        return nil
    }

    static func orderState(_ bytes: [UInt8], _ result: Range<Int>) -> String? {
        JSONObjectReader.member("order_state", inObject: result, of: bytes).flatMap { JSONScalar.string(bytes, $0) }
    }
}
