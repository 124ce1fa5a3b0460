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
struct PendingRequests {
    /// `slots[(head + k) % capacity]` holds id `firstID + k`; nil once answered.
    private var slots = [PendingRequest?](repeating: nil, count: 64)
    private var head = 0
    /// The oldest id in the window: its request is still pending unless the window is empty.
    private(set) var firstID: UInt64 = 1
    /// The id the next request gets.
    private(set) var nextID: UInt64 = 1
    private(set) var count = 0
    /// The newest deadline, to check that they rise.
    private var lastDeadline: UInt64 = 0

    var isEmpty: Bool { count == 0 }

    /// Tracks `request` under `nextID`, which it returns.
    @discardableResult
    mutating func add(_ request: PendingRequest) -> UInt64 {
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
    mutating func skipID() -> UInt64 {
        let id = nextID
        if count == 0 {
            firstID += 1
        } else if Int(nextID - firstID) == slots.count {
            grow()
        }
        nextID += 1
        return id
    }

    func contains(_ id: UInt64) -> Bool {
        inWindow(id) && slots[index(of: id)] != nil
    }

    /// Records that the request went out on the upstream socket.
    mutating func markSent(_ id: UInt64, at time: UInt64) {
        guard inWindow(id) else { return }
        let i = index(of: id)
        slots[i]?.sentAt = time
        slots[i]?.sent = true
    }

    /// Stops tracking `id` and returns its request, if it was pending.
    mutating func remove(_ id: UInt64) -> PendingRequest? {
        guard inWindow(id) else { return nil }
        guard let request = slots[index(of: id)].take() else { return nil }
        count -= 1
        if id == firstID { dropAnsweredFront() }
        return request
    }

    /// Removes and returns the oldest request if its deadline has passed.
    mutating func removeFirstExpired(now: UInt64) -> (id: UInt64, request: PendingRequest)? {
        guard count > 0, let deadline = slots[head]?.deadline, deadline <= now,
              let first = slots[head].take() else { return nil }
        let id = firstID
        count -= 1
        dropAnsweredFront()
        return (id, first)
    }

    /// Removes every request and returns them, oldest first. Ids keep rising.
    mutating func removeAll() -> [PendingRequest] {
        let all = values
        for k in 0..<Int(nextID - firstID) { slots[(head + k) & (slots.count - 1)] = nil }
        head = 0
        firstID = nextID
        count = 0
        return all
    }

    /// The pending requests, oldest first.
    var values: [PendingRequest] {
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
