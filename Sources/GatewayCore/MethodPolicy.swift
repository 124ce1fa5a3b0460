/// The methods the gateway answers itself (SPEC §6.2).
package enum LocalMethod: Sendable {
    case auth, test, hello, setHeartbeat, disableHeartbeat
    /// `public/exchange_token`, `public/fork_token`: refused.
    case identityChange
    case logout
    case enableCancelOnDisconnect, disableCancelOnDisconnect, getCancelOnDisconnect
    case publicSubscribe, privateSubscribe, unsubscribe, unsubscribeAll
}

/// What the router needs to know about a method, looked up once per request from the
/// method's bytes: no `String` is built and no set of strings is searched on the request path.
package struct MethodTraits: Sendable {
    package init() {}

    /// Answered by the gateway itself (SPEC §6.2).
    package var local: LocalMethod?
    /// `public/…` or `private/…`; anything else is -32601 (SPEC §6.1).
    package var isDeribitMethod = false
    /// The local scope the method needs (SPEC §6.3).
    package var requiredScope = Scope.full
    /// Counted against the matching-engine bucket (SPEC §6.6).
    package var isMatchingEngine = false
    /// Its result carries the orders it created (SPEC §7).
    package var createsOrders = false
    /// `private/cancel…`: its result shows orders closing (SPEC §7).
    package var isCancel = false
    /// `private/edit…`: an edited order keeps its creator (SPEC §7).
    package var isEdit = false
    /// Subscribe and unsubscribe requests: split into upstream requests (SPEC §6.4), so not
    /// bound by the 32,000-byte rule of SPEC §6.1.
    package var isSplit: Bool {
        switch local {
        case .publicSubscribe?, .privateSubscribe?, .unsubscribe?: return true
        default: return false
        }
    }
    /// The name, for the methods listed in `MethodPolicy` (every order-creating one): logs only.
    package var name: StaticString?
}

/// Which local scope a Deribit method needs (SPEC §6.3), from the method's Deribit scope:
/// `*:read` → read; `trade:read_write`, `block_trade:read_write` → trade; `account:read_write`,
/// `wallet:read_write` and every private method not classified here → full.
package enum MethodPolicy {
    /// The traits of the method named by `name` (its bytes, escapes already decoded).
    package static func traits(of name: UnsafeRawBufferPointer) -> MethodTraits {
        table.lookup(name) ?? traitsByPrefix(name)
    }

    package static func traits(of name: String) -> MethodTraits {
        var name = name
        return name.withUTF8 { traits(of: UnsafeRawBufferPointer($0)) }
    }

    /// A method none of the lists below names: only its prefix tells.
    private static func traitsByPrefix(_ name: UnsafeRawBufferPointer) -> MethodTraits {
        var t = MethodTraits()
        t.isDeribitMethod = hasPrefix(name, "public/") || hasPrefix(name, "private/")
        t.requiredScope = hasPrefix(name, "public/") ? .public : hasPrefix(name, "private/get_") ? .read : .full
        t.isCancel = hasPrefix(name, "private/cancel")
        t.isEdit = hasPrefix(name, "private/edit")
        return t
    }

    /// A listed method: the lists decide, then the prefix.
    private static func listedTraits(_ name: StaticString) -> MethodTraits {
        let bytes = UnsafeRawBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount)
        let key = "\(name)"
        var t = traitsByPrefix(bytes)
        t.name = name
        t.local = localMethods[key]
        t.isMatchingEngine = matchingEngineMethods.contains(key)
        t.createsOrders = orderCreatingMethods.contains(key)
        if tradeMethods.contains(key) {
            t.requiredScope = .trade
        } else if readMethods.contains(key) {
            t.requiredScope = .read
        } else if fullGetMethods.contains(key) {
            t.requiredScope = .full
        }
        return t
    }

    private static func hasPrefix(_ name: UnsafeRawBufferPointer, _ prefix: StaticString) -> Bool {
        let n = prefix.utf8CodeUnitCount
        guard name.count >= n else { return false }
        let p = prefix.utf8Start
        for k in 0..<n where name[k] != p[k] { return false }
        return true
    }

    /// Every listed name with its traits, built once.
    private static let table: MethodTable = {
        let lists: [[StaticString]] = [
            localMethodNames.map(\.0), orderCreatingNames, matchingEngineNames, tradeOnlyNames, readNames, fullGetNames,
        ]
        var table = MethodTable()
        for name in lists.joined() { table.insert(name, listedTraits(name)) }
        return table
    }()

    private static let localMethodNames: [(StaticString, LocalMethod)] = [
        ("public/auth", .auth), ("public/test", .test), ("public/hello", .hello),
        ("public/set_heartbeat", .setHeartbeat), ("public/disable_heartbeat", .disableHeartbeat),
        ("public/exchange_token", .identityChange), ("public/fork_token", .identityChange),
        ("private/logout", .logout),
        ("private/enable_cancel_on_disconnect", .enableCancelOnDisconnect),
        ("private/disable_cancel_on_disconnect", .disableCancelOnDisconnect),
        ("private/get_cancel_on_disconnect", .getCancelOnDisconnect),
        ("public/subscribe", .publicSubscribe), ("private/subscribe", .privateSubscribe),
        ("public/unsubscribe", .unsubscribe), ("private/unsubscribe", .unsubscribe),
        ("public/unsubscribe_all", .unsubscribeAll), ("private/unsubscribe_all", .unsubscribeAll),
    ]
    private static let localMethods = Dictionary(uniqueKeysWithValues: localMethodNames.map { ("\($0.0)", $0.1) })

    static let orderCreatingNames: [StaticString] = [
        "private/buy", "private/sell", "private/edit", "private/edit_by_label", "private/mass_quote",
        "private/close_position",
    ]

    static let matchingEngineNames: [StaticString] = [
        "private/buy", "private/sell", "private/edit", "private/edit_by_label", "private/cancel",
        "private/cancel_all", "private/cancel_all_by_currency", "private/cancel_all_by_currency_pair",
        "private/cancel_all_by_instrument", "private/cancel_all_by_kind_or_type", "private/cancel_by_label",
        "private/cancel_quotes", "private/close_position", "private/mass_quote", "private/verify_block_trade",
        "private/execute_block_trade", "private/move_positions",
    ]

    /// `trade:read_write` and `block_trade:read_write` methods besides the matching-engine ones.
    static let tradeOnlyNames: [StaticString] = [
        "private/reset_mmp", "private/set_mmp_config", "private/approve_block_trade",
        "private/reject_block_trade", "private/invalidate_block_trade_signature",
        "private/simulate_block_trade", "private/enable_cancel_on_disconnect",
        "private/disable_cancel_on_disconnect", "private/create_combo",
        "private/set_self_trading_config",
    ]

    /// `*:read` methods whose names do not start with `private/get_`.
    static let readNames: [StaticString] = [
        "private/subscribe", "private/unsubscribe", "private/unsubscribe_all",
        "private/simulate_portfolio", "private/pme/simulate", "private/list_api_keys",
        "private/get_cancel_on_disconnect",
    ]

    /// `private/get_…` methods that reveal or change secrets: full only.
    static let fullGetNames: [StaticString] = [
        "private/get_api_key", "private/get_access_log",
    ]

    private static let orderCreatingMethods = Set(orderCreatingNames.map { "\($0)" })
    private static let matchingEngineMethods = Set(matchingEngineNames.map { "\($0)" })
    /// `trade:read_write` and `block_trade:read_write` methods.
    private static let tradeMethods = matchingEngineMethods.union(tradeOnlyNames.map { "\($0)" })
    private static let readMethods = Set(readNames.map { "\($0)" })
    private static let fullGetMethods = Set(fullGetNames.map { "\($0)" })

    /// Channel needs: `.raw` channels need read (Deribit: 13778 when unauthorized);
    /// `user.…` channels are account data and need read on a private subscription.
    package static func requiredScope(forChannel channel: String) -> Scope {
        if channel.hasPrefix("user.") { return .read }
        if channel.hasSuffix(".raw") { return .read }
        return .public
    }
}

/// Method names to traits: open addressing over an FNV-1a hash (`FNV1a`) of the bytes, built once and
/// read-only after. A lookup hashes a short name (a few instructions a byte) and compares it
/// once; a `Dictionary<String, …>` would first need the `String`.
struct MethodTable {
    private var names: [[UInt8]] = []
    private var values: [MethodTraits] = []
    /// Index + 1 into `names`; 0 is an empty slot. A power of two, at most half full.
    private var slots = [Int32](repeating: 0, count: 16)

    mutating func insert(_ name: StaticString, _ traits: MethodTraits) {
        let bytes = UnsafeRawBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount)
        guard lookup(bytes) == nil else { return }  // listed twice: the traits are the same
        names.append(Array(bytes))
        values.append(traits)
        if names.count * 2 > slots.count {
            slots = [Int32](repeating: 0, count: slots.count * 2)
            for i in names.indices { place(i) }
        } else {
            place(names.count - 1)
        }
    }

    private mutating func place(_ index: Int) {
        var s = names[index].withUnsafeBytes { Self.hash($0) } & UInt64(slots.count - 1)
        while slots[Int(s)] != 0 { s = (s + 1) & UInt64(slots.count - 1) }
        slots[Int(s)] = Int32(index + 1)
    }

    func lookup(_ name: UnsafeRawBufferPointer) -> MethodTraits? {
        let mask = UInt64(slots.count - 1)
        var s = Self.hash(name) & mask
        while true {
            let entry = Int(slots[Int(s)])
            if entry == 0 { return nil }
            if Self.equal(names[entry - 1], name) { return values[entry - 1] }
            s = (s + 1) & mask
        }
    }

    private static func equal(_ a: [UInt8], _ b: UnsafeRawBufferPointer) -> Bool {
        guard a.count == b.count else { return false }
        for k in 0..<a.count where a[k] != b[k] { return false }
        return true
    }

    private static func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 { FNV1a.hash(bytes) }
}
