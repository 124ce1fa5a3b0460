import JSONRPC

/// Every request on its way to the upstream (SPEC §6.3, §6.5, §6.6): it issues the upstream
/// ids, keeps the pending table, asks the credit model, holds requests while the upstream is
/// not ready or while their credits refill, and expires them. Pure: time is passed in, and
/// what must be written comes back as bytes for the runtime to write.
///
///     client request ─▶ forward ─┬─ .send(bytes)            written now
///                                ├─ .queued                  waits for `ready` or for credits (`due`)
///                                └─ .refused(error)          answered to the client alone
package struct RequestRouter {
    package struct Settings: Sendable {
        /// SPEC §6.5 `request_timeout_ms`: how long a request waits for the upstream and its answer.
        package var requestTimeout: Nanos = .milliseconds(15_000)
        /// -32003 beyond this many forwarded requests of one client waiting for the upstream.
        package var maxPendingPerClient = 1024
        package var credits = CreditModel.Settings()

        /// SPEC §6.1: Deribit answers a request over 32 kB with an error that has no id, which a
        /// multiplexer could not route: nothing larger is ever sent.
        package static let maxUpstreamRequestBytes = 32_000

        package init() {}
    }

    /// Where the upstream connection is, as far as sending goes.
    package enum Link: Sendable, Equatable {
        /// No connection: everything waits (up to `requestTimeout`).
        case down
        /// Connected, session not ready: only the gateway's own handshake traffic goes.
        case handshaking
        /// Ready: everything goes, paced by the credits.
        case ready
    }

    /// What the runtime must do after an event.
    package enum Output: Sendable {
        /// Write these bytes upstream (the request is marked sent).
        case write([UInt8])
        /// Nobody will send this request: deliver the failure to its owner.
        case fail(PendingRequest, GatewayError)
    }

    package enum Forwarded: Sendable {
        case send([UInt8])
        case queued
        case refused(GatewayError)
    }

    private struct Queued {
        let id: UInt64
        let bytes: [UInt8]
        let bucket: CreditBucket
        /// Clients' requests leave a reserve in the credit model for the gateway's own.
        let keepsReserve: Bool
        /// Waits for `ready`, not just for a connection.
        let needsReady: Bool
        var sendAt: Nanos = 0
    }

    package let settings: Settings
    package private(set) var link = Link.down
    package private(set) var pending = PendingRequests()
    package private(set) var credits: CreditModel
    /// Requests waiting for the link (a connection, or `ready`).
    private var waitingForLink: [Queued] = []
    /// Requests whose credits are booked for a later time.
    private var waitingForCredits: [Queued] = []
    /// Where a forwarded request gets its upstream id: it is handed on (and written) before the
    /// next request is spliced, so the capacity is reused instead of allocated.
    private var spliceBuffer: [UInt8] = []

    package init(_ settings: Settings, now: Nanos) {
        self.settings = settings
        credits = CreditModel(settings.credits, now: now)
    }

    // MARK: events

    /// A client's request: a fresh upstream id spliced in and the client's `access_token`
    /// removed in one pass (SPEC §6.3), then sent, queued or refused.
    package mutating func forward(
        client: ClientID, originalID: [UInt8], bytes: [UInt8], scan: JSONRPCScan, method: MethodTraits,
        clientPending: Int, intent: OrderIntent? = nil, now: Nanos
    ) -> Forwarded {
        // SPEC §6.1: counted as the client sent it, as Deribit would count it.
        guard bytes.count <= Settings.maxUpstreamRequestBytes else { return .refused(.requestTooLarge) }
        guard clientPending < settings.maxPendingPerClient else { return .refused(.tooManyPendingRequests) }
        let id = pending.nextID
        JSONRPCSplice.replacingID(in: bytes, scan: scan, with: id, removingAccessToken: true, into: &spliceBuffer)
        // A short client id replaced by a long upstream one can still push it over.
        guard spliceBuffer.count <= Settings.maxUpstreamRequestBytes else { return .refused(.requestTooLarge) }
        let bucket: CreditBucket = method.isMatchingEngine ? .matchingEngine : .standard
        if link == .ready {
            switch credits.take(bucket, keepsReserve: true, now: now) {
            case .refuse:
                return .refused(.tooManyRequests(reason: nil))
            case .sendNow:
                add(.client(client, originalID: originalID), method, now, sent: true, intent: intent)
                return .send(spliceBuffer)
            case .sendAt(let t):
                add(.client(client, originalID: originalID), method, now, sent: false, intent: intent)
                waitingForCredits.append(Queued(id: id, bytes: spliceBuffer, bucket: bucket, keepsReserve: true, needsReady: true, sendAt: t))
                return .queued
            }
        }
        // SPEC §6.5: wait up to request_timeout_ms for the upstream.
        add(.client(client, originalID: originalID), method, now, sent: false, intent: intent)
        waitingForLink.append(Queued(id: id, bytes: spliceBuffer, bucket: bucket, keepsReserve: true, needsReady: true))
        return .queued
    }

    /// The gateway's own request. It keeps no reserve (SPEC §6.6: it comes first) and is never
    /// refused for credits; `whenReady` holds it until the session is ready, otherwise a
    /// connection is enough (the handshake).
    package mutating func submit(
        _ task: GatewayTask, method: String, params: [UInt8]?, bucket: CreditBucket = .standard,
        whenReady: Bool = false, now: Nanos
    ) -> [UInt8]? {
        let traits = MethodPolicy.traits(of: method)
        let id = add(.gateway(task), traits, now, sent: false)
        let q = Queued(id: id, bytes: JSONRPCWire.request(id: id, method: method, paramsJSON: params),
                       bucket: bucket, keepsReserve: false, needsReady: whenReady)
        guard canSend(q) else {
            waitingForLink.append(q)
            return nil
        }
        if case .write(let bytes)? = dispatch(q, now: now) { return bytes }
        return nil
    }

    /// A request nobody waits for, with an id of its own (the shutdown's `private/logout`).
    package mutating func oneWay(method: String) -> [UInt8] {
        JSONRPCWire.request(id: pending.skipID(), method: method, paramsJSON: nil)
    }

    /// The upstream connection is open; the session's handshake starts.
    package mutating func connected() {
        link = .handshaking
    }

    /// The session is ready: what waited for it goes, paced by the credits.
    package mutating func ready(now: Nanos) -> [Output] {
        link = .ready
        return releaseWaiting(now: now)
    }

    /// The connection is gone: SPEC §6.5, every pending request fails with -32000.
    package mutating func lost() -> [PendingRequest] {
        link = .down
        waitingForLink.removeAll()
        dropWaitingForCredits { _ in true }
        return pending.removeAll()
    }

    /// The upstream answered `id`. Nil when it is not pending (answered late, or not ours).
    package mutating func answered(_ id: UInt64) -> PendingRequest? {
        pending.remove(id)
    }

    /// Requests whose credits have refilled by `now`.
    package mutating func due(now: Nanos) -> [Output] {
        guard waitingForCredits.contains(where: { $0.sendAt <= now }) else { return [] }
        var out: [Output] = []
        var later: [Queued] = []
        for q in waitingForCredits {
            guard pending.contains(q.id) else {
                credits.refund(q.bucket, now: now)
                continue
            }
            if q.sendAt > now {
                later.append(q)
            } else if canSend(q) {
                pending.markSent(q.id, at: now)
                out.append(.write(q.bytes))
            } else {
                waitingForLink.append(q)
            }
        }
        waitingForCredits = later
        return out
    }

    /// Requests past `request_timeout_ms`: never sent, the upstream was unavailable (-32000);
    /// sent and unanswered, -32001.
    package mutating func expire(now: Nanos) -> [(id: UInt64, request: PendingRequest, error: GatewayError)] {
        var out: [(id: UInt64, request: PendingRequest, error: GatewayError)] = []
        while let (id, p) = pending.removeFirstExpired(now: now) {
            out.append((id, p, p.sent ? .upstreamTimeout : .upstreamUnavailable))
        }
        if !out.isEmpty {
            waitingForLink.removeAll { !pending.contains($0.id) }
            let stillPending = pending
            dropWaitingForCredits { !stillPending.contains($0.id) }
        }
        return out
    }

    /// Requests booked for later that will not be sent give their credits back: the model
    /// must not count what never reached the exchange.
    private mutating func dropWaitingForCredits(where gone: (Queued) -> Bool) {
        for q in waitingForCredits where gone(q) { credits.refund(q.bucket, now: 0) }
        waitingForCredits.removeAll(where: gone)
    }

    /// When `due` has work next.
    package var nextCreditTime: Nanos? { waitingForCredits.lazy.map(\.sendAt).min() }

    /// Requests of one owner kind still waiting or unanswered (shutdown, tests).
    package func pendingRequests(where include: (PendingRequest) -> Bool) -> Int {
        pending.values.reduce(0) { $0 + (include($1) ? 1 : 0) }
    }

    /// How long the gateway's own next request in `bucket` would wait for credits (0: none).
    /// The cancel queue hands out work only as far ahead as the credits allow.
    package mutating func creditDelay(_ bucket: CreditBucket, now: Nanos) -> Nanos {
        credits.delay(bucket, now: now)
    }

    /// Whole credits left in a bucket (for /metrics).
    package mutating func creditsAvailable(_ bucket: CreditBucket, now: Nanos) -> Double {
        credits.available(bucket, now: now)
    }

    // MARK: inside

    @discardableResult
    private mutating func add(_ owner: PendingOwner, _ method: MethodTraits, _ now: Nanos, sent: Bool, intent: OrderIntent? = nil) -> UInt64 {
        var request = PendingRequest(owner: owner, method: method, sentAt: now, deadline: now + settings.requestTimeout)
        request.sent = sent
        request.intent = intent
        return pending.add(request)
    }

    private func canSend(_ q: Queued) -> Bool {
        switch link {
        case .down: return false
        case .handshaking: return !q.needsReady
        case .ready: return true
        }
    }

    private mutating func releaseWaiting(now: Nanos) -> [Output] {
        let waiting = waitingForLink
        waitingForLink = []
        var out: [Output] = []
        for q in waiting where pending.contains(q.id) {
            guard canSend(q) else {
                waitingForLink.append(q)
                continue
            }
            if let o = dispatch(q, now: now) { out.append(o) }
        }
        return out
    }

    /// Sends now if the credit model allows, later if it soon will, else fails with 10028.
    private mutating func dispatch(_ q: Queued, now: Nanos) -> Output? {
        switch credits.take(q.bucket, keepsReserve: q.keepsReserve, now: now) {
        case .sendNow:
            pending.markSent(q.id, at: now)
            return .write(q.bytes)
        case .sendAt(let t):
            var later = q
            later.sendAt = t
            waitingForCredits.append(later)
            return nil
        case .refuse:
            guard let p = pending.remove(q.id) else { return nil }
            return .fail(p, .tooManyRequests(reason: nil))
        }
    }
}
