@testable import GatewayCore
import JSONRPC
import XCTest

/// SPEC §7: which client created which open order, and what its disconnect must cancel.
final class OrderTrackerTests: XCTestCase {
    private let alice = client(1)
    private let bob = client(2)

    // MARK: helpers

    private func order(_ id: String, _ state: String = "open") -> String {
        #"{"order_id":"\#(id)","order_state":"\#(state)","instrument_name":"BTC-PERPETUAL","amount":10,"label":"x"}"#
    }

    /// `private/buy`'s result: the order and its trades.
    private func placed(_ id: String, _ state: String = "open") -> String { #"{"order":\#(order(id, state)),"trades":[]}"# }

    private func response(_ resultJSON: String) throws -> ([UInt8], Range<Int>) {
        let bytes = Array(#"{"jsonrpc":"2.0","id":1,"result":\#(resultJSON),"usIn":1,"usOut":2,"usDiff":1,"testnet":true}"#.utf8)
        return (bytes, try XCTUnwrap(try JSONRPCScanner.scan(bytes).result))
    }

    private func orders(_ resultJSON: String) throws -> [String] {
        let (bytes, range) = try response(resultJSON)
        return OrderTracker.orders(inResult: range, of: bytes).map { "\($0.id) \($0.live ? "live" : "closed")" }
    }

    @discardableResult
    private func respond(
        _ t: inout OrderTracker, _ c: ClientID, _ method: String, _ resultJSON: String, label: String = "alpha"
    ) throws -> [OrderTracker.Cancel] {
        let (bytes, range) = try response(resultJSON)
        return t.responded(client: c, label: label, method: MethodPolicy.traits(of: method), bytes: bytes, result: range)
    }

    private func notify(_ t: inout OrderTracker, data: String) throws {
        let bytes = Array(#"{"jsonrpc":"2.0","method":"subscription","params":{"channel":"user.orders.any.any.raw","data":\#(data)}}"#.utf8)
        t.notification(bytes, scan: try JSONRPCScanner.scan(bytes))
    }

    private func cancel(_ id: String, _ c: ClientID, _ label: String = "alpha") -> OrderTracker.Cancel {
        OrderTracker.Cancel(orderID: id, client: c, label: label)
    }

    // MARK: reading orders

    func testOrdersInEveryShapeOfResult() throws {
        XCTAssertEqual(try orders(placed("A")), ["A live"], "buy, sell, edit")
        XCTAssertEqual(try orders(placed("A", "filled")), ["A closed"])
        XCTAssertEqual(try orders(#"{"orders":[\#(order("Q1")),\#(order("Q2", "filled"))],"errors":[]}"#), ["Q1 live", "Q2 closed"], "mass_quote")
        XCTAssertEqual(try orders(order("A", "cancelled")), ["A closed"], "cancel: the order itself")
        XCTAssertEqual(try orders("[\(order("A")),\(order("B", "untriggered")),\(order("C", "triggered")),\(order("D", "rejected"))]"),
                       ["A live", "B live", "C live", "D closed"], "get_open_orders: an array")
        XCTAssertEqual(try orders("[]"), [])
        XCTAssertEqual(try orders("3"), [], "cancel_all: a count")
        XCTAssertEqual(try orders(#"{"order":{"order_state":"open"}}"#), [], "no order_id, nothing to follow")
        XCTAssertEqual(try orders(#"{"order":{"order_id":"A\u0042","order_state":"open"}}"#), ["AB live"], "escapes decoded")
    }

    func testOrdersWithWhitespaceAroundEverything() throws {
        XCTAssertEqual(try orders(" {\n \"order\" : { \"order_id\" : \"A\" ,\t\"order_state\" : \"open\" } , \"trades\" : [ ] } "), ["A live"])
        let array = Array("  [ {\"order_id\":\"A\",\"order_state\":\"open\"} ,\n {\"order_id\":\"B\",\"order_state\":\"filled\"} ]  ".utf8)
        XCTAssertEqual(OrderTracker.orders(inResult: 0..<array.count, of: array).map(\.id), ["A", "B"])
        XCTAssertEqual(OrderTracker.orders(inResult: 0..<array.count, of: array).map(\.live), [true, false])
    }

    // MARK: following orders

    func testResponsesRecordOpenOrdersAndClosedStatesForgetThem() throws {
        var t = OrderTracker()
        XCTAssertEqual(try respond(&t, alice, "private/buy", placed("A")), [])
        try respond(&t, alice, "private/sell", placed("B"))
        try respond(&t, alice, "private/buy", placed("C", "filled"))
        try respond(&t, alice, "private/mass_quote", #"{"orders":[\#(order("Q"))]}"#)
        XCTAssertEqual(t.ledger.owner(of: "A"), alice.raw)
        XCTAssertEqual(t.ledger.orders(of: alice.raw), ["A", "B", "Q"], "a filled order is never followed")

        try respond(&t, bob, "private/cancel", order("A", "cancelled"))
        XCTAssertEqual(t.ledger.orders(of: alice.raw), ["B", "Q"], "whoever cancelled it, it is closed")
        try respond(&t, alice, "private/get_open_orders", "[\(order("Z"))]")
        XCTAssertNil(t.ledger.owner(of: "Z"), "reading orders creates none")
        try respond(&t, alice, "private/cancel", order("B"))
        XCTAssertEqual(t.ledger.owner(of: "B"), alice.raw, "a cancel that shows the order still open changes nothing")
    }

    func testAnEditNeverMovesAnOrderToTheEditor() throws {
        var t = OrderTracker()
        try respond(&t, alice, "private/buy", placed("A"))
        try respond(&t, bob, "private/edit", placed("A"))
        try respond(&t, bob, "private/edit_by_label", placed("A"))
        XCTAssertEqual(t.ledger.owner(of: "A"), alice.raw)
        try respond(&t, bob, "private/edit", placed("U"))
        XCTAssertNil(t.ledger.owner(of: "U"), "SPEC §7: not even an order nobody holds (its creator logged out) goes to its editor")
        XCTAssertEqual(t.clientDisconnected(bob, label: "bravo", cancels: true, now: 0), [], "so the editor's disconnect cancels nothing")
        try respond(&t, bob, "private/edit", placed("A", "filled"))
        XCTAssertNil(t.ledger.owner(of: "A"))
    }

    func testUserOrdersNotificationsCloseOrders() throws {
        var t = OrderTracker()
        for id in ["A", "B", "C"] { try respond(&t, alice, "private/buy", placed(id)) }
        try notify(&t, data: order("A", "filled"))
        XCTAssertEqual(t.ledger.allOrders, ["B", "C"])
        try notify(&t, data: "[\(order("B", "cancelled")),\(order("C")),\(order("N"))]")
        XCTAssertEqual(t.ledger.allOrders, ["C"], "an open order in a notification is neither closed nor adopted")
        try respond(&t, alice, "private/buy", placed("A"))
        XCTAssertNil(t.ledger.owner(of: "A"), "a creation response after the closing notification does not revive it")
    }

    // MARK: disconnects

    func testADisconnectWithTheFlagCancelsOnlyItsOwnOpenOrders() throws {
        var t = OrderTracker()
        for id in ["B", "A", "C"] { try respond(&t, alice, "private/buy", placed(id)) }
        try respond(&t, bob, "private/buy", placed("D"))
        try notify(&t, data: order("C", "filled"))
        XCTAssertEqual(t.clientDisconnected(alice, label: "alpha", cancels: true, now: 0), [cancel("A", alice), cancel("B", alice)])
        XCTAssertEqual(t.ledger.owner(of: "D"), bob.raw, "other clients' orders are untouched")
        XCTAssertTrue(t.isDepartedCancelling(alice))
        XCTAssertFalse(t.isDepartedCancelling(bob))

        t.cancelSettled("A")
        XCTAssertEqual(t.ledger.orders(of: alice.raw), ["B"], "a confirmed cancel leaves the ledger")
    }

    func testADisconnectWithoutTheFlagLeavesTheOrdersOpenAndStopsFollowingThem() throws {
        var t = OrderTracker()
        try respond(&t, alice, "private/buy", placed("A"))
        XCTAssertEqual(t.clientDisconnected(alice, label: "alpha", cancels: false, now: 0), [])
        XCTAssertNil(t.ledger.owner(of: "A"))
        XCTAssertEqual(t.departedLabel(alice), "alpha")
    }

    func testACreationResponseAfterTheDisconnectOfAFlaggedClientIsCancelled() throws {
        var t = OrderTracker()
        XCTAssertEqual(t.clientDisconnected(alice, label: "alpha", cancels: true, now: 0), [])
        XCTAssertEqual(try respond(&t, alice, "private/buy", placed("A"), label: "ignored"), [cancel("A", alice)],
                       "cancelled under the label it left with")
        XCTAssertEqual(try respond(&t, alice, "private/mass_quote", #"{"orders":[\#(order("Q1")),\#(order("Q2", "filled"))]}"#),
                       [cancel("Q1", alice)])
        XCTAssertEqual(try respond(&t, alice, "private/buy", placed("F", "filled")), [], "nothing open, nothing to cancel")
    }

    func testACreationResponseAfterTheDisconnectOfAnUnflaggedClientIsReleased() throws {
        var t = OrderTracker()
        XCTAssertEqual(t.clientDisconnected(alice, label: "alpha", cancels: false, now: 0), [])
        XCTAssertEqual(try respond(&t, alice, "private/buy", placed("A")), [])
        XCTAssertNil(t.ledger.owner(of: "A"))
        XCTAssertTrue(t.ledger.allOrders.isEmpty)
    }

    func testADepartedClientIsForgottenAfterTheLateResponseWindow() throws {
        var t = OrderTracker()
        _ = t.clientDisconnected(alice, label: "alpha", cancels: true, now: 0)
        t.expire(now: OrderTracker.lateResponseWindow - 1)
        XCTAssertTrue(t.isDepartedCancelling(alice))
        t.expire(now: OrderTracker.lateResponseWindow)
        XCTAssertFalse(t.isDepartedCancelling(alice))
        XCTAssertNil(t.departedLabel(alice))
    }

    // MARK: timeouts and reconnects

    func testATimedOutOrderRequestsLateResponseStillCancelsForADepartedClient() throws {
        var t = OrderTracker()
        t.requestTimedOut(upstreamID: 7, client: alice, method: MethodPolicy.traits(of: "private/buy"), intent: nil, now: 0)
        t.requestTimedOut(upstreamID: 8, client: alice, method: MethodPolicy.traits(of: "public/get_time"), intent: nil, now: 0)
        XCTAssertNil(t.lateResponse(upstreamID: 8), "only order-creating requests matter late")
        _ = t.clientDisconnected(alice, label: "alpha", cancels: true, now: 1 * second)

        let late = try XCTUnwrap(t.lateResponse(upstreamID: 7))
        XCTAssertEqual(late.client, alice)
        XCTAssertEqual(late.deadline, OrderTracker.lateResponseWindow)
        XCTAssertNil(t.lateResponse(upstreamID: 7), "taken once")
        let (bytes, range) = try response(placed("L"))
        XCTAssertEqual(t.responded(client: late.client, label: "alpha", method: late.method, bytes: bytes, result: range), [cancel("L", alice)])
    }

    func testLateRequestsAreForgottenAfterTheirWindow() {
        var t = OrderTracker()
        let buy = MethodPolicy.traits(of: "private/buy")
        t.requestTimedOut(upstreamID: 7, client: alice, method: buy, intent: nil, now: 0)
        t.requestTimedOut(upstreamID: 9, client: bob, method: buy, intent: nil, now: OrderTracker.lateResponseWindow)
        XCTAssertNil(t.lateResponse(upstreamID: 7))
        XCTAssertEqual(t.lateResponse(upstreamID: 9)?.client, bob)
    }

    func testReconciliationForgetsOrdersThatClosedWhileTheUpstreamWasAway() throws {
        var t = OrderTracker()
        for id in ["A", "B", "C"] { try respond(&t, alice, "private/buy", placed(id)) }
        let known = t.ledger.allOrders
        try respond(&t, bob, "private/buy", placed("D"))  // placed after the query was sent
        let (bytes, range) = try response("[\(order("A")),\(order("D"))]")
        XCTAssertEqual(t.reconcile(known: known, result: range, of: bytes).closed, ["B", "C"])
        XCTAssertEqual(t.ledger.allOrders, ["A", "D"])
    }


    // MARK: what a lost creation asked for (SPEC §7)

    private func intent(
        _ direction: String = "buy", _ instrument: String = "BTC-PERPETUAL", amount: Double? = 10, price: Double? = 50_000,
        label: String? = nil
    ) -> OrderIntent {
        OrderIntent(direction: direction, instrument: instrument, amount: amount, price: price, label: label)
    }

    private func parse(_ method: String, params: String?) throws -> OrderIntent? {
        let p = params.map { #","params":\#($0)"# } ?? ""
        let bytes = Array(#"{"jsonrpc":"2.0","id":1,"method":"\#(method)"\#(p)}"#.utf8)
        return OrderIntent.parse(method: MethodPolicy.traits(of: method), bytes: bytes, params: try JSONRPCScanner.scan(bytes).params)
    }

    /// An order as `private/get_open_orders` lists it; `label: nil` leaves the member out.
    private func exchangeOrder(
        _ id: String, _ direction: String = "buy", _ instrument: String = "BTC-PERPETUAL", amount: String = "10",
        price: String = "50000", label: String? = "", state: String = "open"
    ) -> String {
        let l = label.map { #","label":"\#($0)""# } ?? ""
        return #"{"order_id":"\#(id)","order_state":"\#(state)","instrument_name":"\#(instrument)","direction":"\#(direction)","amount":\#(amount),"price":\#(price),"order_type":"limit"\#(l)}"#
    }

    private func matches(_ i: OrderIntent, _ orderJSON: String) -> Bool {
        let bytes = Array(orderJSON.utf8)
        return i.matches(bytes, 0..<bytes.count)
    }

    private func reconcile(_ t: inout OrderTracker, known: Set<String> = [], open: [String]) throws -> OrderTracker.Reconciliation {
        let (bytes, range) = try response("[" + open.joined(separator: ",") + "]")
        return t.reconcile(known: known, result: range, of: bytes)
    }

    func testTheIntentOfABuyOrASell() throws {
        XCTAssertEqual(try parse("private/buy", params: #"{"instrument_name":"BTC-PERPETUAL","amount":10,"type":"limit","price":50000.5,"label":"grid-1"}"#),
                       intent(price: 50_000.5, label: "grid-1"))
        XCTAssertEqual(try parse("private/sell", params: #"{"amount":0.1,"instrument_name":"ETH-27DEC24","type":"market"}"#),
                       intent("sell", "ETH-27DEC24", amount: 0.1, price: nil, label: nil), "what the request does not name stays nil")
        XCTAssertEqual(try parse("private/buy", params: #"{"instrument_name":"BTC-PERPETUAL","label":"a\u0062"}"#),
                       intent(amount: nil, price: nil, label: "ab"), "escapes decoded")
    }

    func testNoIntentForOtherMethodsOrWithoutAnInstrument() throws {
        let params = #"{"instrument_name":"BTC-PERPETUAL","amount":10,"price":50000}"#
        for method in ["private/edit", "private/edit_by_label", "private/mass_quote", "private/close_position",
                       "private/cancel", "public/get_time", "private/buy_something"] {
            XCTAssertNil(try parse(method, params: params), method)
        }
        XCTAssertNil(try parse("private/buy", params: nil), "no params")
        XCTAssertNil(try parse("private/buy", params: #"{"amount":10,"price":50000}"#), "no instrument")
        XCTAssertNil(try parse("private/buy", params: #"{"instrument_name":7}"#), "not a string")
    }

    func testAnIntentMatchesWhatItNamed() {
        let order = exchangeOrder("X", amount: "10.0", price: "50000", label: "grid-1")
        XCTAssertTrue(matches(intent(label: "grid-1"), order), "10 and 10.0 are the same amount")
        XCTAssertFalse(matches(intent(label: "grid-1"), exchangeOrder("X", "sell", label: "grid-1")), "direction")
        XCTAssertFalse(matches(intent("buy", "ETH-PERPETUAL", label: "grid-1"), order), "instrument")
        XCTAssertFalse(matches(intent(amount: 20, label: "grid-1"), order), "amount")
        XCTAssertFalse(matches(intent(price: 50_001, label: "grid-1"), order), "price")
        XCTAssertFalse(matches(intent(label: "grid-2"), order), "label")
        XCTAssertFalse(matches(intent(label: nil), order), "a request without a label made an order without one")
        XCTAssertTrue(matches(intent(amount: nil, price: nil, label: "grid-1"), order), "only what the request named is compared")

        XCTAssertTrue(matches(intent(label: nil), exchangeOrder("X", label: "")), "Deribit's empty label")
        XCTAssertTrue(matches(intent(label: nil), exchangeOrder("X", label: nil)), "no label member at all")
        XCTAssertFalse(matches(intent(label: "grid-1"), exchangeOrder("X", label: nil)))
        XCTAssertFalse(matches(intent(), #"{"order_id":"X","order_state":"open","amount":10,"price":50000}"#), "no instrument, no direction")
    }

    // MARK: lost creations

    func testTimedOutCreationsBecomeLostCreationsWhenTheUpstreamIsLost() throws {
        var t = OrderTracker()
        let buy = MethodPolicy.traits(of: "private/buy")
        t.requestTimedOut(upstreamID: 7, client: alice, method: buy, intent: intent(label: "a"), now: 0)
        t.requestTimedOut(upstreamID: 8, client: bob, method: MethodPolicy.traits(of: "private/edit"), intent: nil, now: 0)
        t.requestTimedOut(upstreamID: 9, client: bob, method: MethodPolicy.traits(of: "private/sell"), intent: intent("sell"), now: 0)
        t.creationLost(client: alice, label: "alpha", intent: intent(amount: 30))
        XCTAssertEqual(t.lostCreations.count, 1)

        t.upstreamLost { $0 == self.alice ? "alpha" : "bravo" }
        XCTAssertEqual(t.lostCreations, [
            OrderTracker.LostCreation(client: alice, label: "alpha", intent: intent(amount: 30)),
            OrderTracker.LostCreation(client: alice, label: "alpha", intent: intent(label: "a")),
            OrderTracker.LostCreation(client: bob, label: "bravo", intent: intent("sell")),
        ], "an edit has no intent: it creates no order to find")
        XCTAssertNil(t.lateResponse(upstreamID: 7), "its late answer can no longer come")
        XCTAssertNil(t.lateResponse(upstreamID: 9))
        XCTAssertTrue(t.needsReconciliation)
    }

    func testLostCreationsAreBounded() {
        var t = OrderTracker()
        for _ in 0..<(OrderTracker.maxLostCreations + 1) { t.creationLost(client: alice, label: "alpha", intent: intent()) }
        XCTAssertEqual(t.lostCreations.count, OrderTracker.maxLostCreations)
        XCTAssertEqual(OrderTracker.maxLostCreations, 4096)
    }

    func testAReconciliationIsNeededWhileOrdersAreFollowedOrCreationsWereLost() throws {
        var t = OrderTracker()
        XCTAssertFalse(t.needsReconciliation)
        try respond(&t, alice, "private/buy", placed("A"))
        XCTAssertTrue(t.needsReconciliation)
        try notify(&t, data: order("A", "filled"))
        XCTAssertFalse(t.needsReconciliation)
        t.creationLost(client: alice, label: "alpha", intent: intent())
        XCTAssertTrue(t.needsReconciliation)
        XCTAssertEqual(try reconcile(&t, open: []), OrderTracker.Reconciliation())
        XCTAssertTrue(t.lostCreations.isEmpty, "judged once")
        XCTAssertFalse(t.needsReconciliation)
    }

    // MARK: reconciliation

    func testClosedIsWhatWasKnownAndIsNotOpen() throws {
        var t = OrderTracker()
        for id in ["A", "B", "C"] { try respond(&t, alice, "private/buy", placed(id)) }
        let r = try reconcile(&t, known: ["A", "B", "C"], open: [exchangeOrder("A"), exchangeOrder("B", state: "filled"), exchangeOrder("N")])
        XCTAssertEqual(r.closed, ["B", "C"], "a closed order in the answer is not open")
        XCTAssertEqual(r.attributed.count, 0)
        XCTAssertEqual(r.unattributed, [], "N matches no lost creation: nobody's")
        XCTAssertEqual(t.ledger.allOrders, ["A"])
    }

    func testAnOrderMatchingExactlyOneLostCreationIsAttributed() throws {
        var t = OrderTracker()
        t.creationLost(client: alice, label: "alpha", intent: intent(label: "a1"))
        t.creationLost(client: bob, label: "bravo", intent: intent("sell", amount: 20, price: 51_000))
        let r = try reconcile(&t, open: [
            exchangeOrder("X", label: "a1"),
            exchangeOrder("Y", "sell", amount: "20", price: "51000"),
            exchangeOrder("Z", amount: "99"),
        ])
        XCTAssertEqual(r.attributed.map { "\($0.orderID) \($0.client.slot) \($0.label)" }, ["X 1 alpha", "Y 2 bravo"])
        XCTAssertEqual(r.unattributed, [])
        XCTAssertEqual(r.cancels, [])
        XCTAssertEqual(t.ledger.owner(of: "X"), alice.raw)
        XCTAssertEqual(t.ledger.owner(of: "Y"), bob.raw)
        XCTAssertNil(t.ledger.owner(of: "Z"))
        XCTAssertEqual(t.clientDisconnected(alice, label: "alpha", cancels: true, now: 0), [cancel("X", alice)],
                       "an attributed order is cancelled with its creator's disconnect")
    }

    func testAnOrderTwoLostCreationsMatchIsNotAttributed() throws {
        var t = OrderTracker()
        t.creationLost(client: alice, label: "alpha", intent: intent())
        t.creationLost(client: bob, label: "bravo", intent: intent())
        let r = try reconcile(&t, open: [exchangeOrder("X")])
        XCTAssertEqual(r.attributed.count, 0)
        XCTAssertEqual(r.unattributed, ["X"])
        XCTAssertEqual(t.unattributed, ["X"], "kept for /health")
        XCTAssertNil(t.ledger.owner(of: "X"))
        XCTAssertEqual(t.clientDisconnected(alice, label: "alpha", cancels: true, now: 0), [])
    }

    func testALostCreationMatchingTwoOrdersAttributesNeither() throws {
        var t = OrderTracker()
        t.creationLost(client: alice, label: "alpha", intent: intent(price: nil))
        t.creationLost(client: bob, label: "bravo", intent: intent(price: 52_000))
        // Alice's matches X and Y; Bob's matches Y only, which Alice's matches too.
        let r = try reconcile(&t, open: [exchangeOrder("X"), exchangeOrder("Y", price: "52000")])
        XCTAssertEqual(r.attributed.count, 0)
        XCTAssertEqual(r.unattributed, ["X", "Y"])
        XCTAssertTrue(t.ledger.allOrders.isEmpty)
    }

    func testAnOrderAlreadyFollowedIsNotAttributedAgain() throws {
        var t = OrderTracker()
        try respond(&t, bob, "private/buy", #"{"order":\#(exchangeOrder("X")),"trades":[]}"#)
        t.creationLost(client: alice, label: "alpha", intent: intent())
        let r = try reconcile(&t, known: ["X"], open: [exchangeOrder("X")])
        XCTAssertEqual(r, OrderTracker.Reconciliation())
        XCTAssertEqual(t.ledger.owner(of: "X"), bob.raw, "its owner stays")
    }

    func testAnOrderOfAFlaggedClientThatHasGoneIsAttributedAndCancelled() throws {
        var t = OrderTracker()
        t.creationLost(client: alice, label: "alpha", intent: intent())
        XCTAssertEqual(t.clientDisconnected(alice, label: "alpha", cancels: true, now: 0), [])
        let r = try reconcile(&t, open: [exchangeOrder("X")])
        XCTAssertEqual(r.attributed.map(\.orderID), ["X"])
        XCTAssertEqual(r.cancels, [cancel("X", alice)])
        XCTAssertEqual(t.ledger.owner(of: "X"), alice.raw, "followed until the cancel is confirmed")
        t.cancelSettled("X")
        XCTAssertTrue(t.ledger.allOrders.isEmpty)
    }

    func testAnOrderOfAnUnflaggedClientThatHasGoneIsReleased() throws {
        var t = OrderTracker()
        t.creationLost(client: alice, label: "alpha", intent: intent())
        XCTAssertEqual(t.clientDisconnected(alice, label: "alpha", cancels: false, now: 0), [])
        let r = try reconcile(&t, open: [exchangeOrder("X")])
        XCTAssertEqual(r.attributed.map(\.orderID), ["X"])
        XCTAssertEqual(r.cancels, [], "its orders outlive it")
        XCTAssertNil(t.ledger.owner(of: "X"), "and are no longer followed")
    }

    /// SPEC §7: a flagged client's orders are cancelled, "including orders whose creation response
    /// arrives after the disconnect". The runtime forgets departed clients after the late-response
    /// window (`expire` runs on every sweep, also while the upstream is away); an outage longer than
    /// that window must not turn a lost creation of a flagged client into an order nobody cancels.
    func testALostCreationOfAFlaggedClientGoneLongerThanTheLateWindowIsStillCancelled() throws {
        var t = OrderTracker()
        t.creationLost(client: alice, label: "alpha", intent: intent())
        XCTAssertEqual(t.clientDisconnected(alice, label: "alpha", cancels: true, now: 0), [])
        t.expire(now: OrderTracker.lateResponseWindow + 1 * second)  // the upstream is back after 61 s
        let r = try reconcile(&t, open: [exchangeOrder("X")])
        XCTAssertEqual(r.attributed.map(\.orderID), ["X"])
        XCTAssertEqual(r.cancels, [cancel("X", alice)], "left open, held in the ledger for a client that will never come back")
    }

    func testAnEditAnsweredAfterTheEditorLeftClaimsNothing() throws {
        var t = OrderTracker()
        XCTAssertEqual(t.clientDisconnected(bob, label: "bravo", cancels: true, now: 0), [])
        XCTAssertEqual(try respond(&t, bob, "private/edit", placed("U")), [], "not the editor's to cancel")
        XCTAssertEqual(try respond(&t, bob, "private/edit_by_label", placed("V")), [])
        XCTAssertTrue(t.ledger.allOrders.isEmpty, "nothing recorded")
    }
}
