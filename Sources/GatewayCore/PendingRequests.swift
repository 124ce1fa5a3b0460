import JSONRPC

/// The requests sent (or waiting to be sent) upstream and not answered yet, by upstream id.
///
/// Upstream ids are issued here, consecutively, so the table is a window over the ids from the
/// oldest unanswered one to the newest: finding a request is an index into a ring buffer, not
/// a hash lookup, and updating one in place costs no copy. Every request gets the same timeout
/// (`request_timeout_ms`) from a monotonic clock, so deadlines rise with ids and the window is
/// also the timeout queue: the oldest entry is the first to expire.
///
/// An unanswered request holds the window open until it expires, so the buffer may grow to the
/// number of requests issued during one timeout; it keeps that capacity.
/// Confined to the gateway's loop.
package struct PendingRequests {
    package init() {}

    /// `slots[(head + k) % capacity]` holds id `firstID + k`; nil once answered.
    private var slots = [PendingRequest?](repeating: nil, count: 64)
    private var head = 0
    /// The oldest id in the window: its request is still pending unless the window is empty.
    package private(set) var firstID: UInt64 = 1
    /// The id the next request gets.
    package private(set) var nextID: UInt64 = 1
    package private(set) var count = 0
    /// The newest deadline, to check that they rise.
    private var lastDeadline: UInt64 = 0

    package var isEmpty: Bool { count == 0 }

    /// Tracks `request` under `nextID`, which it returns.
    @discardableResult
    package mutating func add(_ request: PendingRequest) -> UInt64 {
        assert(request.deadline >= lastDeadline, "deadlines must rise with ids")
        lastDeadline = request.deadline
        if Int(nextID - firstID) == slots.count { grow() }
        let id = nextID
        slots[index(of: id)] = request
        nextID += 1
        count += 1
        return id
    }

    /// An id for a request nobody waits for (the shutdown's `private/logout`).
    package mutating func skipID() -> UInt64 {
        let id = nextID
        if count == 0 {
            firstID += 1
        } else if Int(nextID - firstID) == slots.count {
            grow()
        }
        nextID += 1
        return id
    }

    package func contains(_ id: UInt64) -> Bool {
        inWindow(id) && slots[index(of: id)] != nil
    }

    /// Records that the request went out on the upstream socket.
    package mutating func markSent(_ id: UInt64, at time: UInt64) {
        guard inWindow(id) else { return }
        let i = index(of: id)
        slots[i]?.sentAt = time
        slots[i]?.sent = true
    }

    /// Stops tracking `id` and returns its request, if it was pending.
    package mutating func remove(_ id: UInt64) -> PendingRequest? {
        guard inWindow(id) else { return nil }
        guard let request = slots[index(of: id)].take() else { return nil }
        count -= 1
        if id == firstID { dropAnsweredFront() }
        return request
    }

    /// Removes and returns the oldest request if its deadline has passed.
    package mutating func removeFirstExpired(now: UInt64) -> (id: UInt64, request: PendingRequest)? {
        guard count > 0, let deadline = slots[head]?.deadline, deadline <= now,
              let first = slots[head].take() else { return nil }
        let id = firstID
        count -= 1
        dropAnsweredFront()
        return (id, first)
    }

    /// Removes every request and returns them, oldest first. Ids keep rising.
    package mutating func removeAll() -> [PendingRequest] {
        let all = values
        for k in 0..<Int(nextID - firstID) { slots[(head + k) & (slots.count - 1)] = nil }
        head = 0
        firstID = nextID
        count = 0
        return all
    }

    /// The pending requests, oldest first.
    package var values: [PendingRequest] {
        (0..<Int(nextID - firstID)).compactMap { slots[(head + $0) & (slots.count - 1)] }
    }

    // MARK: the ring

    private func inWindow(_ id: UInt64) -> Bool { id >= firstID && id < nextID }

    private func index(of id: UInt64) -> Int { (head + Int(id - firstID)) & (slots.count - 1) }

    /// Moves the window's start past answered ids, up to the oldest pending one.
    private mutating func dropAnsweredFront() {
        while firstID < nextID, slots[head] == nil {
            firstID += 1
            head = (head + 1) & (slots.count - 1)
        }
    }

    /// Doubles the capacity (a power of two), keeping the window in order from slot 0.
    private mutating func grow() {
        let length = Int(nextID - firstID)
        var bigger = [PendingRequest?](repeating: nil, count: slots.count * 2)
        for k in 0..<length { bigger[k] = slots[(head + k) & (slots.count - 1)] }
        slots = bigger
        head = 0
    }
}

/// Who waits for an upstream response.
package enum PendingOwner: Sendable {
    /// A client's forwarded request; its original id goes back byte-for-byte.
    case client(ClientID, originalID: [UInt8])
    /// The gateway's own request, and what its answer is for.
    case gateway(GatewayTask)
}

/// The gateway's own upstream requests, named by what their answer is for.
package enum GatewayTask: Sendable, Equatable {
    /// A step of the upstream session (SPEC §6.5) of one connection generation.
    case session(UpstreamSession.Step, generation: Int)
    /// The answer to an upstream `test_request`: nobody waits for it.
    case heartbeatAnswer
    /// Channels subscribed upstream on behalf of clients (SPEC §6.4).
    case subscribe([String], generation: Int)
    /// Channels released upstream; sent again if the answer is lost while the connection stays.
    case unsubscribe([String], generation: Int)
    /// A book whose `change_id` chain broke: unsubscribed, then subscribed again for a fresh
    /// snapshot (SPEC §6.4).
    case bookResyncUnsubscribed(channel: String, generation: Int)
    case bookResyncSubscribed(channel: String)
    /// SPEC §7: a disconnected client's order: its cancel, or the check of its state after an
    /// ambiguous answer (`CancelQueue`).
    case cancelOnDisconnect(orderID: String)
    case cancelCheck(orderID: String)
    /// A probe of the upstream's liveness: any answer will do (SPEC §8).
    case probe
    /// SPEC §7: the state of an order the ledger held that closed while the upstream was away.
    case reconcileOrderState(orderID: String)
    /// SPEC §7: orders the ledger held when the upstream became ready.
    case reconcileOrders(known: Set<String>)
}

/// One request sent (or waiting to be sent) upstream.
package struct PendingRequest: Sendable {
    package let owner: PendingOwner
    package let method: MethodTraits
    package var sentAt: Nanos
    /// Written to the upstream socket (not just queued for readiness or credits).
    package var sent = false
    package let deadline: Nanos
    /// What an order-creating client request asked for (SPEC §7: found again if its answer is lost).
    package var intent: OrderIntent?

    package init(owner: PendingOwner, method: MethodTraits, sentAt: Nanos, deadline: Nanos) {
        self.owner = owner
        self.method = method
        self.sentAt = sentAt
        self.deadline = deadline
    }
}

/// What came back for an upstream request.
package enum UpstreamOutcome: Sendable {
    case response(bytes: [UInt8], scan: JSONRPCScan)
    case failed(GatewayError)

    /// The `result` value's span, when the response has one.
    package var resultRange: Range<Int>? {
        if case .response(_, let scan) = self { return scan.result }
        return nil
    }

    /// Deribit's error member, or the gateway's failure, for logs.
    package var errorDescription: String? {
        switch self {
        case .failed(let e): return e.logDescription
        case .response(let bytes, let scan):
            return scan.error.map { String(decoding: bytes[$0], as: UTF8.self) }
        }
    }

    /// Deribit's error code, when the response is an error.
    package var errorCode: Int? {
        guard case .response(let bytes, let scan) = self, let e = scan.error,
              let c = JSONObjectReader.member("code", inObject: e, of: bytes), let code = JSONScalar.double(bytes, c) else { return nil }
        return Int(exactly: code)
    }

    /// The result as an array of strings (a subscribe answer), if it is one.
    package var stringArrayResult: [String]? {
        guard case .response(let bytes, let scan) = self, let r = scan.result else { return nil }
        return JSONArrayOfStrings.parse(bytes, range: r)
    }

    /// The string member `key` of an object result.
    package func resultString(_ key: String) -> String? {
        guard case .response(let bytes, let scan) = self, let r = scan.result,
              let m = JSONObjectReader.member(key, inObject: r, of: bytes) else { return nil }
        return JSONScalar.string(bytes, m)
    }

    /// The number member `key` of an object result.
    package func resultNumber(_ key: String) -> Double? {
        guard case .response(let bytes, let scan) = self, let r = scan.result,
              let m = JSONObjectReader.member(key, inObject: r, of: bytes) else { return nil }
        return JSONScalar.double(bytes, m)
    }
}
