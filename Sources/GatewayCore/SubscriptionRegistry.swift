import JSONRPC

/// One channel held upstream on behalf of one or more clients (SPEC §6.4).
package final class ChannelEntry {
    package enum State: Sendable { case pending, active }

    package let name: String
    package internal(set) var state: State = .pending
    /// Clients that receive its notifications, in subscription order.
    package private(set) var holders: [ClientID] = []
    /// Subscribe requests waiting for the upstream's answer for this channel.
    fileprivate var waiters: [SubscribeContext] = []
    /// Present for incremental order-book channels (`book.{instrument}.{interval}`).
    package let book: OrderBook?
    /// The gateway holds it for itself (order tracking, SPEC §7): kept without client holders.
    package internal(set) var heldByGateway = false
    package var isHeld: Bool { heldByGateway || !holders.isEmpty }

    /// The name's UTF-8 bytes and their hash: notifications are matched on bytes.
    let nameBytes: [UInt8]
    let nameHash: UInt64

    init(name: String) {
        self.name = name
        nameBytes = Array(name.utf8)
        nameHash = FNV1a.hash(nameBytes)
        book = OrderBook.isIncrementalBookChannel(name) ? OrderBook() : nil
    }

    fileprivate func addHolder(_ c: ClientID) {
        if !holders.contains(c) { holders.append(c) }
    }

    fileprivate func removeHolder(_ c: ClientID) {
        holders.removeAll { $0 == c }
    }
}

/// A client's subscribe request while some of its channels wait for the upstream.
private final class SubscribeContext {
    let request: SubscribeRequest
    let channels: [String]
    var outstanding = 0
    var upstreamError: UpstreamOutcome?
    /// Book channels joined while already held: a snapshot follows the response.
    var snapshotChannels: [String] = []
    /// Channels (lowercased) the client unsubscribed before the upstream answered: Deribit handles
    /// a connection's requests in order, so they end up not held.
    var withdrawn: Set<String> = []
    /// Those of `withdrawn` the upstream granted: still listed in this request's result.
    var withdrawnGranted: Set<String> = []

    init(request: SubscribeRequest, channels: [String]) {
        self.request = request
        self.channels = channels
    }
}

/// Who asked, for the answer.
package struct SubscribeRequest: Sendable {
    package let client: ClientID
    /// The client's id bytes.
    package let id: [UInt8]
    /// Wall-clock microseconds when it arrived (Deribit's `usIn`).
    package let receivedAt: UInt64

    package init(client: ClientID, id: [UInt8], receivedAt: UInt64) {
        self.client = client
        self.id = id
        self.receivedAt = receivedAt
    }
}

/// What the runtime must do after a subscription event.
package enum SubscriptionEffect: Sendable {
    /// Answer a subscribe request with these channels, then send these snapshot notifications.
    case answer(SubscribeRequest, channels: [String], snapshots: [[UInt8]])
    /// Answer a subscribe request with the upstream's refusal (spliced to the client's id).
    case answerFailure(SubscribeRequest, UpstreamOutcome)
    /// Subscribe these channels upstream (one request: ≤ 500 channels, < 32 kB).
    case subscribeUpstream([String])
    /// Release these channels upstream (one request).
    case unsubscribeUpstream([String])
    /// Something an operator should know.
    case warning(String)
}

/// The channels held upstream, who holds them, and the subscribe requests waiting for the
/// upstream (SPEC §6.4): reference counts over clients, concurrent first subscriptions sharing
/// one upstream request, splitting, and the case-insensitive fallback.
package struct SubscriptionRegistry {
    /// SPEC §6.4: upstream subscribe/unsubscribe requests carry at most 500 channels…
    package static let maxChannelsPerUpstreamRequest = 500
    /// …and stay under 32,000 bytes: the channels' share is kept to 30,000, which leaves 2,000
    /// bytes for the envelope (`jsonrpc`, `id`, `method`, `params`, `channels`).
    package static let maxChannelBytesPerUpstreamRequest = 30_000

    package private(set) var channels: [String: ChannelEntry] = [:]
    private var lowercased: [String: String] = [:]
    /// `channels` indexed by the hash of the name's bytes, for the notification hot path.
    private var byHash: [UInt64: [ChannelEntry]] = [:]
    /// The channels each client holds.
    package private(set) var held: [ClientID: Set<String>] = [:]

    package init() {}

    // MARK: the hot path

    /// The entry whose name is exactly these bytes, found without building a String; else a
    /// case-insensitive match (Deribit may change the case of a currency).
    package func entry(named bytes: [UInt8], _ range: Range<Int>) -> ChannelEntry? {
        if let bucket = byHash[FNV1a.hash(bytes[range])],
           let e = bucket.first(where: { $0.nameBytes.elementsEqual(bytes[range]) }) {
            return e
        }
        let name = String(decoding: bytes[range], as: UTF8.self)
        return lowercased[name.lowercased()].flatMap { channels[$0] }
    }

    package func channels(of client: ClientID) -> Set<String> { held[client] ?? [] }

    // MARK: client events

    /// `public/subscribe` or `private/subscribe`: channels the scope allows are held, the
    /// others left out of the result as Deribit does; `.raw` without the scope is 13778.
    package mutating func subscribe(
        _ request: SubscribeRequest, channels requested: [String], scope: Scope, isPrivate: Bool
    ) -> Result<[SubscriptionEffect], GatewayError> {
        var seen = Set<String>()
        var accepted: [String] = []
        for ch in requested where seen.insert(ch).inserted {
            if ch.hasPrefix("user.") && !isPrivate { continue }  // Deribit: private channels need private/subscribe
            // No upstream request could carry it (SPEC §6.1): refused, as Deribit refuses a
            // channel it does not know.
            if Self.jsonSize(ch) > Self.maxChannelBytesPerUpstreamRequest { continue }
            if !scope.covers(MethodPolicy.requiredScope(forChannel: ch)) {
                if ch.hasSuffix(".raw") && !ch.hasPrefix("user.") { return .failure(.rawSubscriptionsNotAvailable) }
                continue
            }
            accepted.append(ch)
        }
        let client = request.client
        let ctx = SubscribeContext(request: request, channels: accepted)
        var newChannels: [String] = []
        for ch in accepted {
            if let entry = channels[canonical(ch)] {
                switch entry.state {
                case .active:
                    if !entry.holders.contains(client) {
                        entry.addHolder(client)
                        held[client, default: []].insert(entry.name)
                        if entry.book?.isValid == true { ctx.snapshotChannels.append(entry.name) }
                    }
                case .pending:
                    entry.waiters.append(ctx)
                    ctx.outstanding += 1
                }
            } else {
                let entry = ChannelEntry(name: ch)
                add(entry)
                entry.waiters.append(ctx)
                ctx.outstanding += 1
                newChannels.append(ch)
            }
        }
        var effects = Self.chunks(newChannels).map { SubscriptionEffect.subscribeUpstream($0) }
        if ctx.outstanding == 0 { effects.append(finish(ctx)) }
        return .success(effects)
    }

    /// `public/unsubscribe`: returns the channels removed (the result) and what to release upstream.
    package mutating func unsubscribe(_ client: ClientID, channels requested: [String]) -> (removed: [String], effects: [SubscriptionEffect]) {
        var removed: [String] = []
        var release: [String] = []
        for ch in requested {
            let key = canonical(ch)
            guard held[client]?.contains(key) == true, let entry = channels[key] else {
                if withdrawPendingSubscribe(of: client, key) { removed.append(ch) }
                continue
            }
            held[client]?.remove(key)
            entry.removeHolder(client)
            removed.append(ch)
            if releasable(entry) {
                drop(key)
                release.append(key)
            }
        }
        return (removed, Self.chunks(release).map { .unsubscribeUpstream($0) })
    }

    /// `public/unsubscribe_all`, and a client's disconnect: everything it holds is released.
    package mutating func releaseAll(of client: ClientID, gone: Bool) -> [SubscriptionEffect] {
        var release: [String] = []
        for key in held.removeValue(forKey: client) ?? [] {
            guard let entry = channels[key] else { continue }
            entry.removeHolder(client)
            if releasable(entry) {
                drop(key)
                release.append(key)
            }
        }
        for entry in channels.values where entry.state == .pending {
            if gone {
                // Nobody is left to answer: its waiting requests are forgotten.
                entry.waiters.removeAll { $0.request.client == client }
            } else {
                _ = withdrawPendingSubscribe(of: client, entry.name)
            }
        }
        return Self.chunks(release).map { .unsubscribeUpstream($0) }
    }

    // MARK: upstream events

    /// The upstream answered a subscribe request for `chunk`.
    package mutating func upstreamAnswered(_ chunk: [String], _ outcome: UpstreamOutcome) -> [SubscriptionEffect] {
        let granted = Set(outcome.stringArrayResult ?? [])
        let grantedLower = Set(granted.map { $0.lowercased() })
        var effects: [SubscriptionEffect] = []
        var release: [String] = []
        for ch in chunk {
            guard let entry = channels[ch] else { continue }
            let ok = granted.contains(ch) || grantedLower.contains(ch.lowercased())
            let waiters = entry.waiters
            entry.waiters = []
            if ok {
                entry.state = .active
                for ctx in waiters {
                    let client = ctx.request.client
                    if ctx.withdrawn.contains(entry.name.lowercased()) {
                        ctx.withdrawnGranted.insert(entry.name.lowercased())
                        continue
                    }
                    entry.addHolder(client)
                    held[client, default: []].insert(entry.name)
                }
                if !entry.isHeld {
                    // Every asker left meanwhile.
                    drop(ch)
                    release.append(ch)
                }
            } else if case .failed(.upstreamUnavailable) = outcome, entry.isHeld {
                // The session was lost before it answered a re-subscription: the holders keep the
                // channel, and the next session subscribes it again (`upstreamReady`).
                entry.state = .active
            } else {
                // Refused by Deribit (or failed): not held. Holders of a re-subscription lose it.
                for h in entry.holders { held[h]?.remove(ch) }
                if case .response = outcome, !entry.holders.isEmpty {
                    effects.append(.warning("upstream refused channel \(ch) on re-subscribe"))
                }
                drop(ch)
            }
            for ctx in waiters {
                if !ok, outcome.resultRange == nil { ctx.upstreamError = outcome }
                ctx.outstanding -= 1
                if ctx.outstanding == 0 { effects.append(finish(ctx)) }
            }
        }
        effects += Self.chunks(release).map { .unsubscribeUpstream($0) }
        return effects
    }

    /// The gateway holds `name` for itself whoever else does (order tracking, SPEC §7).
    /// Call when the upstream becomes ready, before `upstreamReady`.
    package mutating func pin(_ name: String) {
        if let entry = channels[name] {
            entry.heldByGateway = true
        } else {
            // Active so that `upstreamReady` subscribes it like any held channel.
            let entry = ChannelEntry(name: name)
            entry.state = .active
            entry.heldByGateway = true
            add(entry)
        }
    }

    /// SPEC §6.4: after a reconnect every held channel is subscribed again; books restart from
    /// a snapshot.
    package mutating func upstreamReady() -> [SubscriptionEffect] {
        let again = channels.values.filter { $0.state == .active && $0.isHeld }.map(\.name).sorted()
        for entry in channels.values { entry.book?.invalidate() }
        for ch in again { channels[ch]?.state = .pending }
        return Self.chunks(again).map { .subscribeUpstream($0) }
    }

    package func upstreamLost() {
        for entry in channels.values { entry.book?.invalidate() }
    }

    /// Whether a book's re-subscription after a gap still matters.
    package func isActive(_ name: String) -> Bool { channels[name]?.state == .active }

    // MARK: splitting

    /// SPEC §6.4: upstream requests of ≤ 500 channels and < 32 kB.
    package static func chunks(_ list: [String]) -> [[String]] {
        var out: [[String]] = []
        var cur: [String] = []
        var size = 0
        for ch in list {
            let add = jsonSize(ch)
            if !cur.isEmpty && (cur.count >= maxChannelsPerUpstreamRequest || size + add > maxChannelBytesPerUpstreamRequest) {
                out.append(cur)
                cur = []
                size = 0
            }
            cur.append(ch)
            size += add
        }
        if !cur.isEmpty { out.append(cur) }
        return out
    }

    /// A channel's bytes in the request as written: quoted, escapes included, and a comma.
    static func jsonSize(_ channel: String) -> Int {
        JSONRPCWire.quoted(channel).count + 1
    }

    // MARK: inside

    /// The channel key a client's name maps to: exact, else a case-insensitive match.
    private func canonical(_ ch: String) -> String {
        if channels[ch] != nil { return ch }
        return lowercased[ch.lowercased()] ?? ch
    }

    private func releasable(_ entry: ChannelEntry) -> Bool {
        !entry.isHeld && entry.state == .active && entry.waiters.isEmpty
    }

    /// Answers a subscribe request with what Deribit would have answered this client.
    private func finish(_ ctx: SubscribeContext) -> SubscriptionEffect {
        let mine = held[ctx.request.client] ?? []
        let granted = ctx.channels.filter { mine.contains(canonical($0)) || ctx.withdrawnGranted.contains($0.lowercased()) }
        if granted.isEmpty, let err = ctx.upstreamError, !ctx.channels.isEmpty {
            return .answerFailure(ctx.request, err)
        }
        // A late joiner first gets a snapshot consistent with the next change.
        let snapshots = ctx.snapshotChannels.compactMap { ch -> [UInt8]? in
            guard let entry = channels[ch], let book = entry.book, book.isValid else { return nil }
            return book.snapshotNotification(channel: entry.name)
        }
        return .answer(ctx.request, channels: granted, snapshots: snapshots)
    }

    /// An unsubscribe that overtakes the client's own subscribe still waiting for the upstream.
    private func withdrawPendingSubscribe(of client: ClientID, _ key: String) -> Bool {
        guard let entry = channels[key], entry.state == .pending else { return false }
        var found = false
        for ctx in entry.waiters where ctx.request.client == client {
            found = ctx.withdrawn.insert(entry.name.lowercased()).inserted || found
        }
        return found
    }

    private mutating func add(_ entry: ChannelEntry) {
        channels[entry.name] = entry
        lowercased[entry.name.lowercased()] = entry.name
        byHash[entry.nameHash, default: []].append(entry)
    }

    private mutating func drop(_ key: String) {
        if let entry = channels.removeValue(forKey: key) {
            byHash[entry.nameHash]?.removeAll { $0 === entry }
            if byHash[entry.nameHash]?.isEmpty == true { byHash[entry.nameHash] = nil }
        }
        if lowercased[key.lowercased()] == key { lowercased[key.lowercased()] = nil }
    }
}
