import Foundation
import JSONRPC
import Transport

/// One channel held upstream on behalf of one or more clients (SPEC §6.4).
final class ChannelEntry {
    let name: String
    enum State { case pending, active }
    var state: State = .pending
    /// Clients that receive its notifications, in subscription order.
    var holders: [ClientSession] = []
    /// Subscribe requests waiting for the upstream's answer for this channel.
    var waiters: [SubscribeContext] = []
    /// Present for incremental order-book channels (`book.{instrument}.{interval}`).
    var book: OrderBook?
    /// The gateway holds it for itself (order tracking, SPEC §7): kept without client holders.
    var heldByGateway = false
    var isHeld: Bool { heldByGateway || !holders.isEmpty }

    /// The name's UTF-8 bytes and their hash: notifications are matched on bytes.
    let nameBytes: [UInt8]
    let nameHash: UInt64

    /// FNV-1a over the bytes.
    static func hash(_ bytes: some Collection<UInt8>) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes {
            h ^= UInt64(b)
            h = h &* 0x100_0000_01b3
        }
        return h
    }

    init(name: String) {
        self.name = name
        self.nameBytes = Array(name.utf8)
        self.nameHash = Self.hash(nameBytes)
        if OrderBook.isIncrementalBookChannel(name) { book = OrderBook() }
    }

    func addHolder(_ s: ClientSession) {
        if !holders.contains(where: { $0 === s }) { holders.append(s) }
    }

    func removeHolder(_ s: ClientSession) {
        holders.removeAll { $0 === s }
    }
}

/// A client's subscribe request while some of its channels wait for the upstream.
final class SubscribeContext {
    let request: ClientRequest
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

    init(request: ClientRequest, channels: [String]) {
        self.request = request
        self.channels = channels
    }
}

extension Gateway {
    static let maxChannelsPerUpstreamRequest = 500
    static let maxUpstreamRequestBytes = 30_000

    // MARK: client requests

    func clientSubscribe(_ request: ClientRequest, isPrivate: Bool) {
        let session = request.session
        guard let requested = request.params()["channels"] as? [Any] else {
            refuse(request, code: JSONRPCErrorCode.invalidParams, message: "Invalid params", data: #"{"param":"channels","reason":"must be an array of strings"}"#)
            return
        }
        var seen = Set<String>()
        var wanted: [String] = []
        for c in requested {
            guard let ch = c as? String else {
                refuse(request, code: JSONRPCErrorCode.invalidParams, message: "Invalid params", data: #"{"param":"channels","reason":"must be an array of strings"}"#)
                return
            }
            if seen.insert(ch).inserted { wanted.append(ch) }
        }
        var accepted: [String] = []
        for ch in wanted {
            let need = MethodPolicy.requiredScope(forChannel: ch)
            if ch.hasPrefix("user.") && !isPrivate { continue }  // Deribit: private channels need private/subscribe
            if !session.scope.covers(need) {
                if ch.hasSuffix(".raw") && !ch.hasPrefix("user.") {
                    // Deribit's answer to raw channels without authorization.
                    refuse(request, code: 13778, message: "raw_subscriptions_not_available_for_unauthorized")
                    return
                }
                continue
            }
            accepted.append(ch)
        }
        let ctx = SubscribeContext(request: request, channels: accepted)
        var newChannels: [String] = []
        for ch in accepted {
            let key = canonicalChannel(ch)
            if let entry = channels[key] {
                switch entry.state {
                case .active:
                    if !entry.holders.contains(where: { $0 === session }) {
                        entry.addHolder(session)
                        session.channels.insert(entry.name)
                        if entry.book?.isValid == true { ctx.snapshotChannels.append(entry.name) }
                    }
                case .pending:
                    entry.waiters.append(ctx)
                    ctx.outstanding += 1
                }
            } else {
                let entry = ChannelEntry(name: ch)
                addEntry(entry)
                entry.waiters.append(ctx)
                ctx.outstanding += 1
                newChannels.append(ch)
            }
        }
        if !newChannels.isEmpty {
            subscribeUpstream(newChannels)
        }
        if ctx.outstanding == 0 { finish(ctx) }
    }

    /// The channel key a client's name maps to: exact, else a case-insensitive match.
    func canonicalChannel(_ ch: String) -> String {
        if channels[ch] != nil { return ch }
        return channelsLowercased[ch.lowercased()] ?? ch
    }

    /// Answers a subscribe request with what Deribit would have answered this client.
    func finish(_ ctx: SubscribeContext) {
        let session = ctx.request.session
        guard !session.closed else { return }
        let held = ctx.channels.filter {
            session.channels.contains(canonicalChannel($0)) || ctx.withdrawnGranted.contains($0.lowercased())
        }
        if held.isEmpty, let err = ctx.upstreamError, !ctx.channels.isEmpty {
            switch err {
            case .response(let bytes, let scan):
                session.send(JSONRPCSplice.replacing(scan.id!, in: bytes, with: ctx.request.id))
            case .failed(let code, let message):
                session.send(JSONRPCWire.error(id: ctx.request.id, code: code, message: message))
            }
            return
        }
        session.send(resultBytes(ctx.request, stringArray(held)))
        for ch in ctx.snapshotChannels {
            if let entry = channels[ch], let book = entry.book, book.isValid {
                // A late joiner first gets a snapshot consistent with the next change.
                session.send(book.snapshotNotification(channel: entry.name))
            }
        }
    }

    func stringArray(_ items: [String]) -> String {
        "[" + items.map { quoted($0) }.joined(separator: ",") + "]"
    }

    func clientUnsubscribe(_ request: ClientRequest) {
        let session = request.session
        guard let requested = request.params()["channels"] as? [Any] else {
            refuse(request, code: JSONRPCErrorCode.invalidParams, message: "Invalid params", data: #"{"param":"channels","reason":"must be an array of strings"}"#)
            return
        }
        var removed: [String] = []
        var release: [String] = []
        for case let ch as String in requested {
            let key = canonicalChannel(ch)
            guard session.channels.contains(key), let entry = channels[key] else {
                if withdrawPendingSubscribe(of: session, key) { removed.append(ch) }
                continue
            }
            session.channels.remove(key)
            entry.removeHolder(session)
            removed.append(ch)
            if !entry.isHeld && entry.state == .active && entry.waiters.isEmpty {
                dropEntry(key)
                release.append(key)
            }
        }
        if !release.isEmpty { unsubscribeUpstream(release) }
        session.send(resultBytes(request, stringArray(removed)))
    }

    func clientUnsubscribeAll(_ request: ClientRequest) {
        releaseAllChannels(of: request.session)
        request.session.send(resultBytes(request, "\"ok\""))
    }

    func releaseAllChannels(of session: ClientSession) {
        var release: [String] = []
        for key in session.channels {
            guard let entry = channels[key] else { continue }
            entry.removeHolder(session)
            if !entry.isHeld && entry.state == .active && entry.waiters.isEmpty {
                dropEntry(key)
                release.append(key)
            }
        }
        session.channels.removeAll()
        for entry in channels.values where entry.state == .pending {
            _ = withdrawPendingSubscribe(of: session, entry.name)
        }
        if !release.isEmpty { unsubscribeUpstream(release) }
    }

    /// An unsubscribe that overtakes the client's own subscribe still waiting for the upstream.
    func withdrawPendingSubscribe(of session: ClientSession, _ key: String) -> Bool {
        guard let entry = channels[key], entry.state == .pending else { return false }
        var found = false
        for ctx in entry.waiters where ctx.request.session === session {
            found = ctx.withdrawn.insert(entry.name.lowercased()).inserted || found
        }
        return found
    }

    func addEntry(_ entry: ChannelEntry) {
        channels[entry.name] = entry
        channelsLowercased[entry.name.lowercased()] = entry.name
        channelsByHash[entry.nameHash, default: []].append(entry)
    }

    func dropEntry(_ key: String) {
        if let entry = channels.removeValue(forKey: key) {
            channelsByHash[entry.nameHash]?.removeAll { $0 === entry }
            if channelsByHash[entry.nameHash]?.isEmpty == true { channelsByHash[entry.nameHash] = nil }
        }
        if channelsLowercased[key.lowercased()] == key { channelsLowercased[key.lowercased()] = nil }
    }

    /// The entry whose name is exactly these bytes, found without building a String.
    func entry(named bytes: [UInt8], _ range: Range<Int>) -> ChannelEntry? {
        guard let bucket = channelsByHash[ChannelEntry.hash(bytes[range])] else { return nil }
        return bucket.first { $0.nameBytes.elementsEqual(bytes[range]) }
    }

    // MARK: upstream requests

    /// Splits channels into upstream requests of ≤ 500 channels and < 32 kB (SPEC §6.4).
    func chunks(_ list: [String]) -> [[String]] {
        var out: [[String]] = []
        var cur: [String] = []
        var size = 0
        for ch in list {
            let add = ch.utf8.count + 3
            if !cur.isEmpty && (cur.count >= Self.maxChannelsPerUpstreamRequest || size + add > Self.maxUpstreamRequestBytes) {
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

    var upstreamSubscribeMethod: String { upstreamAuthenticated ? "private/subscribe" : "public/subscribe" }

    func subscribeUpstream(_ list: [String]) {
        for chunk in chunks(list) {
            let generation = upstreamGeneration
            sendLocal(upstreamSubscribeMethod, params: "{\"channels\":\(stringArray(chunk))}", bucket: .subscribe, whenReady: true) { [unowned self] outcome in
                self.subscribeAnswered(chunk, outcome, generation: generation)
            }
        }
    }

    private func subscribeAnswered(_ chunk: [String], _ outcome: UpstreamOutcome, generation: Int) {
        let granted = Set((outcome.decodedResult() as? [String]) ?? [])
        let grantedLower = Set(granted.map { $0.lowercased() })
        var release: [String] = []
        for ch in chunk {
            guard let entry = channels[ch] else { continue }
            let ok = granted.contains(ch) || grantedLower.contains(ch.lowercased())
            let waiters = entry.waiters
            entry.waiters = []
            if ok {
                entry.state = .active
                for ctx in waiters where !ctx.request.session.closed {
                    if ctx.withdrawn.contains(entry.name.lowercased()) {
                        ctx.withdrawnGranted.insert(entry.name.lowercased())
                        continue
                    }
                    entry.addHolder(ctx.request.session)
                    ctx.request.session.channels.insert(entry.name)
                }
                if !entry.isHeld {
                    // Every asker left meanwhile.
                    dropEntry(ch)
                    release.append(ch)
                }
            } else if case .failed(let code, _) = outcome, code == JSONRPCErrorCode.upstreamUnavailable, entry.isHeld {
                // The session was lost before it answered a re-subscription: the holders keep the
                // channel, and the next session subscribes it again (resubscribeAll).
                entry.state = .active
            } else {
                // Refused by Deribit (or failed): not held. Holders of a re-subscription lose it.
                for h in entry.holders { h.channels.remove(ch) }
                if case .failed = outcome {} else if !entry.holders.isEmpty {
                    logger.warning("upstream refused channel \(ch) on re-subscribe")
                }
                dropEntry(ch)
            }
            for ctx in waiters {
                if !ok, outcome.result == nil { ctx.upstreamError = outcome }
                ctx.outstanding -= 1
                if ctx.outstanding == 0 { finish(ctx) }
            }
        }
        if !release.isEmpty { unsubscribeUpstream(release) }
    }

    func unsubscribeUpstream(_ list: [String]) {
        let method = upstreamAuthenticated ? "private/unsubscribe" : "public/unsubscribe"
        for chunk in chunks(list) {
            sendLocal(method, params: "{\"channels\":\(stringArray(chunk))}", bucket: .subscribe, whenReady: true) { _ in }
        }
    }

    /// After a reconnect every held channel is subscribed again; books restart from a snapshot.
    func resubscribeAll() {
        let held = channels.values.filter { $0.state == .active && $0.isHeld }.map(\.name)
        for entry in channels.values { entry.book?.invalidate() }
        for ch in held {
            channels[ch]?.state = .pending
        }
        if !held.isEmpty {
            logger.info("re-subscribing \(held.count) channels")
            subscribeUpstream(held.sorted())
        }
    }

    func upstreamLostForSubscriptions() {
        for entry in channels.values {
            entry.book?.invalidate()
        }
    }

    // MARK: notifications (the hot path)

    func notification(_ bytes: [UInt8], _ scan: JSONRPCScan) {
        guard let chRange = scan.channel else { return }
        // Exact bytes first (no allocation); Deribit may change a currency's case, so fall back
        // to a case-insensitive match.
        guard let entry = entry(named: bytes, chRange) ?? {
            let name = String(decoding: bytes[chRange], as: UTF8.self)
            return channelsLowercased[name.lowercased()].flatMap { channels[$0] }
        }() else { return }
        metrics.notifications += 1
        if let book = entry.book {
            switch book.apply(notification: bytes, scan: scan) {
            case .forward:
                break
            case .drop:
                return
            case .gap:
                // The chain broke: every holder gets a fresh snapshot after a re-subscribe.
                logger.warning("book \(entry.name): change_id gap; re-subscribing")
                resyncBook(entry)
                return
            }
        }
        if entry.heldByGateway { orderNotification(bytes) }
        guard !entry.holders.isEmpty else { return }
        if bytes.count <= Self.copiedNotificationBytes {
            // Copied with its header into each holder's own reusable buffer: no allocation.
            bytes.withUnsafeBytes { payload in
                for h in entry.holders { h.ws.enqueueText(payload) }
            }
        } else {
            // A large notification (a book snapshot) is framed once and shared by every holder.
            let frame = WebSocketConnection.encodeTextFrame(bytes)
            for h in entry.holders { h.ws.enqueueEncodedFrame(frame) }
        }
        for h in entry.holders where !h.needsFlush {
            // Written once per client at the end of the upstream read (one write carries
            // every frame of the batch).
            h.needsFlush = true
            clientsToFlush.append(h)
        }
        metrics.framesSent += entry.holders.count
    }

    /// Larger notifications are framed once and shared rather than copied per holder.
    static let copiedNotificationBytes = 8 << 10

    /// Writes what notifications queued for each client during one upstream read.
    func flushClients() {
        guard !clientsToFlush.isEmpty else { return }
        for c in clientsToFlush {
            c.needsFlush = false
            if !c.closed { c.ws.flush() }
        }
        clientsToFlush.removeAll(keepingCapacity: true)
    }

    func resyncBook(_ entry: ChannelEntry) {
        let ch = entry.name
        let generation = upstreamGeneration
        let method = upstreamAuthenticated ? "private/unsubscribe" : "public/unsubscribe"
        sendLocal(method, params: "{\"channels\":\(stringArray([ch]))}", bucket: .subscribe) { [unowned self] _ in
            guard generation == self.upstreamGeneration, let e = self.channels[ch], e.state == .active else { return }
            self.sendLocal(self.upstreamSubscribeMethod, params: "{\"channels\":\(self.stringArray([ch]))}", bucket: .subscribe) { outcome in
                if ((outcome.decodedResult() as? [String]) ?? []).isEmpty {
                    self.logger.error("book \(ch): re-subscribe refused")
                }
            }
        }
    }
}
