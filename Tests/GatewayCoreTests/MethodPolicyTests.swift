@testable import GatewayCore
import XCTest

/// SPEC §6.2, §6.3, §6.6, §7: what the router learns from a method's name alone.
final class MethodPolicyTests: XCTestCase {
    func testScopes() {
        XCTAssertEqual(MethodPolicy.traits(of: "public/get_time").requiredScope, .public)
        XCTAssertEqual(MethodPolicy.traits(of: "public/something_new").requiredScope, .public)
        XCTAssertEqual(MethodPolicy.traits(of: "private/get_positions").requiredScope, .read)
        XCTAssertEqual(MethodPolicy.traits(of: "private/get_api_key").requiredScope, .full)
        XCTAssertEqual(MethodPolicy.traits(of: "private/get_access_log").requiredScope, .full)
        XCTAssertEqual(MethodPolicy.traits(of: "private/list_api_keys").requiredScope, .read)
        XCTAssertEqual(MethodPolicy.traits(of: "private/buy").requiredScope, .trade)
        XCTAssertEqual(MethodPolicy.traits(of: "private/set_mmp_config").requiredScope, .trade)
        XCTAssertEqual(MethodPolicy.traits(of: "private/withdraw").requiredScope, .full)
        XCTAssertEqual(MethodPolicy.traits(of: "private/unknown_method").requiredScope, .full)
    }

    func testNamespaces() {
        XCTAssertTrue(MethodPolicy.traits(of: "public/get_time").isDeribitMethod)
        XCTAssertTrue(MethodPolicy.traits(of: "private/buy").isDeribitMethod)
        XCTAssertFalse(MethodPolicy.traits(of: "publicget_time").isDeribitMethod)
        XCTAssertFalse(MethodPolicy.traits(of: "").isDeribitMethod)
        XCTAssertFalse(MethodPolicy.traits(of: "admin/shutdown").isDeribitMethod)
        // Prefixes and extensions of listed names are other methods.
        XCTAssertNil(MethodPolicy.traits(of: "public/aut").local)
        XCTAssertNil(MethodPolicy.traits(of: "public/auth2").local)
        XCTAssertFalse(MethodPolicy.traits(of: "private/buyx").createsOrders)
    }

    func testLocalMethods() {
        XCTAssertEqual(MethodPolicy.traits(of: "public/auth").local, .auth)
        XCTAssertEqual(MethodPolicy.traits(of: "public/test").local, .test)
        XCTAssertEqual(MethodPolicy.traits(of: "public/fork_token").local, .identityChange)
        XCTAssertEqual(MethodPolicy.traits(of: "private/unsubscribe_all").local, .unsubscribeAll)
        XCTAssertEqual(MethodPolicy.traits(of: "private/enable_cancel_on_disconnect").local, .enableCancelOnDisconnect)
        XCTAssertNil(MethodPolicy.traits(of: "public/get_time").local)
    }

    func testOrderAndCreditTraits() {
        let buy = MethodPolicy.traits(of: "private/buy")
        XCTAssertTrue(buy.createsOrders && buy.isMatchingEngine && !buy.isCancel && !buy.isEdit)
        XCTAssertEqual(buy.name.map { "\($0)" }, "private/buy")
        let edit = MethodPolicy.traits(of: "private/edit_by_label")
        XCTAssertTrue(edit.createsOrders && edit.isEdit)
        let cancel = MethodPolicy.traits(of: "private/cancel_all_by_currency")
        XCTAssertTrue(cancel.isCancel && cancel.isMatchingEngine && !cancel.createsOrders)
        // Unlisted cancels still show orders closing.
        XCTAssertTrue(MethodPolicy.traits(of: "private/cancel_something_new").isCancel)
        XCTAssertFalse(MethodPolicy.traits(of: "private/cancel_something_new").isMatchingEngine)
        XCTAssertFalse(MethodPolicy.traits(of: "public/get_time").isMatchingEngine)
    }

    func testEveryListedNameIsFound() {
        let lists = [MethodPolicy.orderCreatingNames, MethodPolicy.matchingEngineNames, MethodPolicy.tradeOnlyNames,
                     MethodPolicy.readNames, MethodPolicy.fullGetNames]
        for name in lists.joined() {
            XCTAssertEqual(MethodPolicy.traits(of: "\(name)").name.map { "\($0)" }, "\(name)")
        }
    }
}
