@testable import GatewayCore
import XCTest

/// SPEC §7: orders that closed while the upstream was away go to the holders of the
/// `user.orders` channels that show them.
final class UserOrdersChannelTests: XCTestCase {
    private let perpetual = "BTC-PERPETUAL"
    private let future = "BTC-27DEC24"
    private let option = "BTC-27DEC24-100000-C"
    private let spot = "BTC_USDC"

    /// The instruments among `perpetual, future, option, spot, ETH-PERPETUAL` that `channel` shows.
    private func shown(_ channel: String) -> [String] {
        [perpetual, future, option, spot, "ETH-PERPETUAL"].filter { UserOrdersChannel.covers(channel, instrument: $0) }
    }

    func testAnInstrumentChannelShowsThatInstrumentOnly() {
        XCTAssertEqual(shown("user.orders.BTC-PERPETUAL.raw"), [perpetual])
        XCTAssertEqual(shown("user.orders.BTC-PERPETUAL.100ms"), [perpetual])
        XCTAssertEqual(shown("user.orders.BTC-27DEC24-100000-C.raw"), [option])
        XCTAssertEqual(shown("user.orders.BTC_USDC.raw"), [spot])
        XCTAssertEqual(shown("user.orders.BTC-PERPET.raw"), [], "whole names only")
    }

    func testAKindAndCurrencyChannelShowsItsKindAndCurrency() {
        XCTAssertEqual(shown("user.orders.future.BTC.100ms"), [perpetual, future], "a perpetual is a future")
        XCTAssertEqual(shown("user.orders.future.BTC.raw"), [perpetual, future])
        XCTAssertEqual(shown("user.orders.future.ETH.raw"), ["ETH-PERPETUAL"])
        XCTAssertEqual(shown("user.orders.future.any.raw"), [perpetual, future, "ETH-PERPETUAL"])
        XCTAssertEqual(shown("user.orders.option.any.raw"), [option])
        XCTAssertEqual(shown("user.orders.option.ETH.raw"), [])
        XCTAssertEqual(shown("user.orders.spot.BTC.raw"), [spot])
        XCTAssertEqual(shown("user.orders.spot.USDC.raw"), [spot], "a pair shows under either currency")
        XCTAssertEqual(shown("user.orders.any.BTC.raw"), [perpetual, future, option, spot])
        XCTAssertEqual(shown("user.orders.any.any.raw"), [perpetual, future, option, spot, "ETH-PERPETUAL"])
        XCTAssertEqual(shown(OrderTracker.trackingChannel), shown("user.orders.any.any.raw"), "the gateway's own sees every order")
    }

    func testOtherChannelsShowNoOrders() {
        for channel in ["user.trades.BTC-PERPETUAL.raw", "user.trades.any.any.raw", "user.changes.any.any.raw",
                        "book.BTC-PERPETUAL.100ms", "user.orders", "user.orders.", "user.orders.BTC-PERPETUAL",
                        "user.orders.any.any.raw.extra", "user.ordersX.any.any.raw", "user.portfolio.btc"] {
            XCTAssertEqual(shown(channel), [], channel)
        }
    }

    func testKindsFromInstrumentNames() {
        XCTAssertEqual(UserOrdersChannel.kind(of: "BTC-PERPETUAL"), "future")
        XCTAssertEqual(UserOrdersChannel.kind(of: "BTC-27DEC24"), "future")
        XCTAssertEqual(UserOrdersChannel.kind(of: "BTC_USDC-PERPETUAL"), "future", "a linear perpetual")
        XCTAssertEqual(UserOrdersChannel.kind(of: "BTC-27DEC24-100000-C"), "option")
        XCTAssertEqual(UserOrdersChannel.kind(of: "ETH-27DEC24-3000-P"), "option")
        XCTAssertEqual(UserOrdersChannel.kind(of: "XRP_USDC-30AUG24-0d625-C"), "option", "a linear option")
        XCTAssertEqual(UserOrdersChannel.kind(of: "BTC_USDC"), "spot")
        XCTAssertEqual(UserOrdersChannel.kind(of: "BTC-FS-27DEC24_PERP"), "future_combo")
        XCTAssertEqual(UserOrdersChannel.kind(of: "BTC-CS-27DEC24-100000_110000"), "option_combo")
        XCTAssertEqual(UserOrdersChannel.kind(of: "ETH-STRD-27DEC24-3000"), "option_combo")
    }

    func testCurrenciesOfAnInstrument() {
        XCTAssertEqual(UserOrdersChannel.currencies(of: "BTC-PERPETUAL"), ["BTC"])
        XCTAssertEqual(UserOrdersChannel.currencies(of: "BTC_USDC"), ["BTC", "USDC"])
        XCTAssertEqual(UserOrdersChannel.currencies(of: "BTC_USDC-PERPETUAL"), ["BTC", "USDC"])
    }

    func testRawChannelsCarryOneOrder() {
        XCTAssertTrue(UserOrdersChannel.isRaw("user.orders.BTC-PERPETUAL.raw"))
        XCTAssertTrue(UserOrdersChannel.isRaw("user.orders.any.any.raw"))
        XCTAssertFalse(UserOrdersChannel.isRaw("user.orders.future.BTC.100ms"))
        XCTAssertFalse(UserOrdersChannel.isRaw("user.orders.BTC-PERPETUAL.agg2"))
    }

    /// Deribit's `user.orders.{kind}.{currency}` takes `combo` too: "Instrument kind, "combo"
    /// for any combo or "any" for all" (future, option, spot, future_combo, option_combo, combo, any).
    func testTheComboKindShowsEveryCombo() {
        XCTAssertTrue(UserOrdersChannel.covers("user.orders.combo.BTC.raw", instrument: "BTC-FS-27DEC24_PERP"))
        XCTAssertTrue(UserOrdersChannel.covers("user.orders.combo.any.100ms", instrument: "BTC-CS-27DEC24-100000_110000"))
        XCTAssertFalse(UserOrdersChannel.covers("user.orders.combo.any.raw", instrument: "BTC-PERPETUAL"))
    }
}
