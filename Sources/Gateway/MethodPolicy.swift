/// Which local scope a Deribit method needs (SPEC §6.3), from the method's Deribit scope:
/// `*:read` → read; `trade:read_write`, `block_trade:read_write` → trade; `account:read_write`,
/// `wallet:read_write` and every private method not classified here → full.
enum MethodPolicy {
    static func requiredScope(for method: String) -> Scope {
        if method.hasPrefix("public/") { return .public }
        if tradeMethods.contains(method) { return .trade }
        if readMethods.contains(method) { return .read }
        if method.hasPrefix("private/get_"), !fullGetMethods.contains(method) { return .read }
        return .full
    }

    /// Requests Deribit counts against the matching-engine bucket (SPEC §6.6).
    static func isMatchingEngine(_ method: String) -> Bool {
        matchingEngineMethods.contains(method)
    }

    /// Methods that create orders (SPEC §7): their results carry the new order.
    static func createsOrders(_ method: String) -> Bool {
        orderCreatingMethods.contains(method)
    }

    static let orderCreatingMethods: Set<String> = [
        "private/buy", "private/sell", "private/edit", "private/edit_by_label", "private/mass_quote",
        "private/close_position",
    ]

    static let matchingEngineMethods: Set<String> = [
        "private/buy", "private/sell", "private/edit", "private/edit_by_label", "private/cancel",
        "private/cancel_all", "private/cancel_all_by_currency", "private/cancel_all_by_currency_pair",
        "private/cancel_all_by_instrument", "private/cancel_all_by_kind_or_type", "private/cancel_by_label",
        "private/cancel_quotes", "private/close_position", "private/mass_quote", "private/verify_block_trade",
        "private/execute_block_trade", "private/move_positions",
    ]

    /// `trade:read_write` and `block_trade:read_write` methods.
    static let tradeMethods: Set<String> = matchingEngineMethods.union([
        "private/reset_mmp", "private/set_mmp_config", "private/approve_block_trade",
        "private/reject_block_trade", "private/invalidate_block_trade_signature",
        "private/simulate_block_trade", "private/enable_cancel_on_disconnect",
        "private/disable_cancel_on_disconnect", "private/create_combo",
        "private/set_self_trading_config",
    ])

    /// `*:read` methods whose names do not start with `private/get_`.
    static let readMethods: Set<String> = [
        "private/subscribe", "private/unsubscribe", "private/unsubscribe_all",
        "private/simulate_portfolio", "private/pme/simulate", "private/list_api_keys",
        "private/get_cancel_on_disconnect",
    ]

    /// `private/get_…` methods that reveal or change secrets: full only.
    static let fullGetMethods: Set<String> = [
        "private/get_api_key", "private/get_access_log",
    ]

    /// Channel needs: `.raw` channels need read (Deribit: 13778 when unauthorized);
    /// `user.…` channels are account data and need read on a private subscription.
    static func requiredScope(forChannel channel: String) -> Scope {
        if channel.hasPrefix("user.") { return .read }
        if channel.hasSuffix(".raw") { return .read }
        return .public
    }
}
