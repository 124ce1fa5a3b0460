/// Graceful shutdown's phases (SPEC §8), advanced by events instead of polling:
///
///     cancelling ──cancels settled, or bound──▶ loggingOut ──upstream closed, or bound──▶
///     flushing ──clients closed, or the total bound──▶ finished
///
/// The runtime stops accepting and closes every client before it creates the plan; it then
/// reports what happens (`cancelsChanged`, `upstreamClosed`, `clientsChanged`) and arms one
/// timer at `deadline`.
package struct ShutdownPlan: Sendable {
    package enum Phase: Sendable, Equatable {
        /// Cancels of flagged clients' orders are awaited.
        case cancelling
        /// `private/logout` is sent; the upstream's close is awaited.
        case loggingOut
        /// The close frames to clients are being flushed.
        case flushing
        case finished
    }

    package enum Action: Sendable, Equatable {
        case none
        /// Send `private/logout` upstream (or close it if not authenticated).
        case logoutUpstream
        /// The upstream did not close in time: drop it.
        case abortUpstream
        /// Done: exit. `unconfirmedCancels` were still outstanding when the cancel phase ended.
        case finish(unflushedClients: Int, unconfirmedCancels: Int)
    }

    package struct Bounds: Sendable {
        /// How long the cancels of flagged clients' orders are awaited.
        package var cancelWait: Nanos = .milliseconds(2_500)
        /// How long the upstream's close after `private/logout` is awaited.
        package var logoutWait: Nanos = .milliseconds(1_000)
        /// When the flush of the clients' close frames gives up, counted from the start, so that
        /// a supervisor's SIGKILL (often 5 s after SIGTERM) never comes first. The logout always
        /// gets its own wait (an aborted upstream would let Deribit cancel every order), so keep
        /// `cancelWait + logoutWait` within it.
        package var total: Nanos = .milliseconds(4_000)

        package init() {}
    }

    package let bounds: Bounds
    package let startedAt: Nanos
    package private(set) var phase = Phase.cancelling
    private var phaseStartedAt: Nanos
    private var cancelsOutstanding: Int
    private var clientsOpen: Int
    private var upstreamOpen: Bool
    package private(set) var unconfirmedCancels = 0

    package init(bounds: Bounds = Bounds(), now: Nanos, cancelsOutstanding: Int, clientsOpen: Int, upstreamOpen: Bool) {
        self.bounds = bounds
        startedAt = now
        phaseStartedAt = now
        self.cancelsOutstanding = cancelsOutstanding
        self.clientsOpen = clientsOpen
        self.upstreamOpen = upstreamOpen
    }

    /// The first decision, right after the plan is made.
    package mutating func begin(now: Nanos) -> [Action] { advance(now: now) }

    package mutating func cancelsChanged(outstanding: Int, now: Nanos) -> [Action] {
        cancelsOutstanding = outstanding
        return advance(now: now)
    }

    package mutating func clientsChanged(open: Int, now: Nanos) -> [Action] {
        clientsOpen = open
        return advance(now: now)
    }

    package mutating func upstreamClosed(now: Nanos) -> [Action] {
        upstreamOpen = false
        return advance(now: now)
    }

    package mutating func timerFired(now: Nanos) -> [Action] { advance(now: now) }

    /// When the current phase gives up waiting.
    package var deadline: Nanos? {
        switch phase {
        case .cancelling: return phaseStartedAt + bounds.cancelWait
        case .loggingOut: return phaseStartedAt + bounds.logoutWait
        case .flushing: return startedAt + bounds.total
        case .finished: return nil
        }
    }

    private mutating func advance(now: Nanos) -> [Action] {
        var actions: [Action] = []
        while true {
            switch phase {
            case .cancelling:
                if cancelsOutstanding > 0 && now < phaseStartedAt + bounds.cancelWait { return actions }
                unconfirmedCancels = cancelsOutstanding
                enter(.loggingOut, now)
                if upstreamOpen { actions.append(.logoutUpstream) }
            case .loggingOut:
                if upstreamOpen && now < phaseStartedAt + bounds.logoutWait { return actions }
                if upstreamOpen {
                    upstreamOpen = false
                    actions.append(.abortUpstream)
                }
                enter(.flushing, now)
            case .flushing:
                if clientsOpen > 0 && now < startedAt + bounds.total { return actions }
                enter(.finished, now)
                actions.append(.finish(unflushedClients: clientsOpen, unconfirmedCancels: unconfirmedCancels))
                return actions
            case .finished:
                return actions
            }
        }
    }

    private mutating func enter(_ p: Phase, _ now: Nanos) {
        phase = p
        phaseStartedAt = now
    }
}
