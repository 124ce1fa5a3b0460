/// Which `user.orders` channels show an order (SPEC §7: orders that closed while the upstream
/// was away are delivered to the holders of matching channels):
///
///     user.orders.{instrument_name}.{interval}          user.orders.BTC-PERPETUAL.raw
///     user.orders.{kind}.{currency}.{interval}          user.orders.future.BTC.100ms, user.orders.any.any.raw
///
/// Kinds: `future`, `option`, `spot`, `future_combo`, `option_combo`, `combo` (either combo), `any`.
///
/// A `raw` channel's `data` is the order object; an aggregated interval's is an array of them.
package enum UserOrdersChannel {
    package static let prefix = "user.orders."

    /// Whether `channel` shows an order on `instrument`.
    package static func covers(_ channel: String, instrument: String) -> Bool {
        guard channel.hasPrefix(prefix) else { return false }
        let parts = channel.dropFirst(prefix.count).split(separator: ".", omittingEmptySubsequences: false)
        switch parts.count {
        case 2:
            return parts[0] == instrument
        case 3:
            let kind = parts[0]
            let currency = parts[1]
            let actual = self.kind(of: instrument)
            // Deribit's `combo` is any combo, future or option.
            let kindMatches = kind == "any" || kind == actual || (kind == "combo" && actual.hasSuffix("_combo"))
            return kindMatches && (currency == "any" || currencies(of: instrument).contains(String(currency)))
        default:
            return false
        }
    }

    /// Whether notifications on `channel` carry one order (`raw`) rather than an array.
    package static func isRaw(_ channel: String) -> Bool { channel.hasSuffix(".raw") }

    /// Deribit's instrument kinds, from the name: `BTC-PERPETUAL`, `BTC-27DEC24` (future),
    /// `BTC-27DEC24-100000-C` (option), `BTC_USDC` (spot), `BTC-FS-27DEC24_PERP` (future_combo),
    /// `BTC-CS-27DEC24-100000_110000` (option_combo).
    package static func kind(of instrument: String) -> String {
        let parts = instrument.split(separator: "-")
        if parts.count == 1 && instrument.contains("_") { return "spot" }
        if parts.count >= 2, parts[1].allSatisfy(\.isLetter), parts[1] != "PERPETUAL" {
            return parts[1] == "FS" ? "future_combo" : "option_combo"
        }
        if parts.count == 4, parts[3] == "C" || parts[3] == "P" { return "option" }
        return "future"
    }

    /// The currencies a channel's `{currency}` may name for this instrument: the base, and for
    /// a pair (`BTC_USDC`, `BTC_USDC-PERPETUAL`) the quote currency too.
    package static func currencies(of instrument: String) -> [String] {
        let first = instrument.split(separator: "-").first.map(String.init) ?? instrument
        return first.split(separator: "_").map(String.init)
    }
}
