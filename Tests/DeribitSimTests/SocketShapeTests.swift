// Each method's result and error shapes over a real socket, compared field by field with the
// examples of Deribit's documentation (docs.deribit.com, API reference pages named below; the
// examples are trimmed to the fields they document, values kept where the type matters).
import DeribitSim
import Foundation
import Transport
import XCTest

enum DocExamples {
    /// docs.deribit.com/api-reference/authentication/public-auth
    static let auth = #"""
    {"access_token":"1582628593469.1MbQ-J_4.CBP-OqOwm","expires_in":31536000,
     "refresh_token":"1582628593469.1GP4rQd0.A9Wa78o5kFRIUP4","scope":"connection mainaccount",
     "enabled_features":[],"token_type":"bearer"}
    """#
    /// docs.deribit.com/api-reference/supporting/public-test (and public-hello: the same result).
    static let test = #"{"version":"1.2.26"}"#
    /// docs.deribit.com/api-reference/market-data/public-get_instruments (currency BTC, kind future)
    static let instrumentFuture = #"""
    {"tick_size":2.5,"tick_size_steps":[],"taker_commission":0.0005,"settlement_period":"month",
     "settlement_currency":"BTC","quote_currency":"USD","price_index":"btc_usd","min_trade_amount":10,
     "max_liquidation_commission":0.0075,"max_leverage":50,"maker_commission":0,"kind":"future",
     "is_active":true,"instrument_name":"BTC-29SEP23","instrument_id":138583,"instrument_type":"reversed",
     "expiration_timestamp":1695974400000,"creation_timestamp":1664524802000,"counter_currency":"USD",
     "contract_size":10,"block_trade_tick_size":0.01,"block_trade_min_trade_amount":200000,
     "block_trade_commission":0.00025,"base_currency":"BTC","state":"open"}
    """#
    /// docs.deribit.com/api-reference/market-data/public-ticker (BTC-PERPETUAL)
    static let tickerPerpetual = #"""
    {"best_ask_amount":53040,"best_ask_price":36290,"best_bid_amount":4600,"best_bid_price":36289.5,
     "current_funding":0,"estimated_delivery_price":36297.02,"funding_8h":0.00002203,"index_price":36297.02,
     "instrument_name":"BTC-PERPETUAL","interest_value":1.7362511643080387,"last_price":36289.5,
     "mark_price":36288.31,"max_price":36833.4,"min_price":35744.73,"open_interest":502231260,
     "settlement_price":36169.49,"state":"open",
     "stats":{"high":36824.5,"low":35213.5,"price_change":0.2362,"volume":7831.26548117,"volume_usd":282615600},
     "timestamp":1623059681955}
    """#
    /// docs.deribit.com/api-reference/market-data/public-get_order_book (BTC-PERPETUAL, depth 5)
    static let orderBook = #"""
    {"timestamp":1550757626706,"stats":{"volume":93.35589552,"price_change":0.6913,"low":3940.75,"high":3976.25},
     "state":"open","settlement_price":3925.85,"open_interest":45.27600333464605,"min_price":3932.22,
     "max_price":3971.74,"mark_price":3931.97,"last_price":3955.75,"instrument_name":"BTC-PERPETUAL",
     "index_price":3910.46,"funding_8h":0.00455263,"current_funding":0.00500063,"change_id":474988,
     "bids":[[3955.75,30]],"best_bid_price":3955.75,"best_bid_amount":30,"best_ask_price":0,
     "best_ask_amount":0,"asks":[[3956,10]]}
    """#
    /// The order object: docs.deribit.com/api-reference/trading/private-get_open_orders (and the
    /// `order` of private-buy / private-sell).
    static let order = #"""
    {"time_in_force":"good_til_cancelled","reduce_only":false,"price":0.0028,"post_only":false,
     "order_type":"limit","order_state":"open","order_id":"146062","max_show":10,
     "last_update_timestamp":1550050597036,"label":"fooBar","is_rebalance":false,"is_liquidation":false,
     "instrument_name":"BTC-15FEB19-3250-P","filled_amount":0,"direction":"buy",
     "creation_timestamp":1550050597036,"average_price":0,"api":true,"amount":10}
    """#
    /// docs.deribit.com/api-reference/trading/private-sell: `{trades, order}` with a fill.
    static let buyWithFill = #"""
    {"trades":[{"trade_seq":1966068,"trade_id":"ETH-2696097","timestamp":1590486335742,"tick_direction":0,
      "state":"filled","reduce_only":true,"price":202.8,"post_only":false,"order_type":"limit",
      "order_id":"ETH-584864807","matching_id":null,"mark_price":202.79,"liquidity":"T",
      "instrument_name":"ETH-PERPETUAL","index_price":202.86,"fee_currency":"ETH","fee":0.00007766,
      "direction":"sell","amount":21}],
     "order":{"web":false,"time_in_force":"good_til_cancelled","replaced":false,"reduce_only":true,
      "price":198.75,"post_only":false,"order_type":"limit","order_state":"filled","order_id":"ETH-584864807",
      "max_show":21,"last_update_timestamp":1590486335742,"label":"","is_rebalance":false,"is_liquidation":false,
      "instrument_name":"ETH-PERPETUAL","filled_amount":21,"direction":"sell","creation_timestamp":1590486335742,
      "average_price":202.8,"api":true,"amount":21}}
    """#
    /// docs.deribit.com/subscriptions/orderbook/bookinstrument_nameinterval
    static let bookSnapshot = #"""
    {"type":"snapshot","timestamp":1554373962454,"instrument_name":"BTC-PERPETUAL","change_id":297217,
     "bids":[["new",5042.34,30]],"asks":[["new",5042.64,40]]}
    """#
    static let bookChange = #"""
    {"type":"change","timestamp":1554373911330,"prev_change_id":297217,"instrument_name":"BTC-PERPETUAL",
     "change_id":297218,"bids":[["delete",5041.94,0]],"asks":[["change",5042.64,10]]}
    """#
    /// The response envelope: docs.deribit.com/articles/json-rpc-overview (`testnet` on test.deribit.com).
    static let envelope = #"{"jsonrpc":"2.0","id":42,"result":null,"usIn":1535043730126248,"usOut":1535043730126250,"usDiff":2,"testnet":true}"#
    /// docs.deribit.com/articles/errors
    static let errorEnvelope = #"""
    {"jsonrpc":"2.0","error":{"code":13009,"message":"invalid_token"},"usIn":1704153600000000,
     "usOut":1704153600001234,"usDiff":1234,"id":42}
    """#
    static let invalidParamsData = #"{"param":"access_token","reason":"token has expired"}"#
}

final class SocketShapeTests: XCTestCase {
    func testPublicMethodsMatchDocumentedShapes() throws {
        let sim = try startSim()
        let c = try connect(sim, clientLoop())

        // The envelope, and the id echoed byte for byte (string and number ids).
        let idText = "\"hello-ä\""
        c.sendRaw(Array(#"{"jsonrpc":"2.0","id":"hello-ä","method":"public/hello","params":{"client_name":"t","client_version":"1"}}"#.utf8))
        let hello = try c.responseObject(idJSON: idText)
        XCTAssertEqual(hello["id"] as? String, "hello-ä")
        XCTAssertEqual(hello["jsonrpc"] as? String, "2.0")
        XCTAssertEqual(hello["testnet"] as? Bool, true)
        assertShape(hello["result"], documented: DocExamples.test, "public/hello")
        c.sendRaw(Array(#"{"jsonrpc":"2.0","id":1.50,"method":"public/test"}"#.utf8))
        let raw = String(decoding: try c.response(idJSON: "1.50"), as: UTF8.self)
        XCTAssert(raw.hasPrefix(#"{"jsonrpc":"2.0","id":1.50,"result":{"version":"#), raw)

        let test = try c.call("public/test")
        assertShape(test, documented: DocExamples.envelope, "the envelope")
        assertShape(test["result"], documented: DocExamples.test, "public/test")

        let before = Date().timeIntervalSince1970 * 1000
        let time = try c.call("public/get_time")
        let after = Date().timeIntervalSince1970 * 1000
        XCTAssertEqual(jsonKind(time["result"]!), .number)
        let t = (time["result"] as! NSNumber).doubleValue
        XCTAssert(t >= before.rounded(.down) - 1 && t <= after + 1, "get_time \(t) outside [\(before), \(after)]")

        let instruments = try c.result("public/get_instruments", ["currency": "BTC", "kind": "future"]) as! [[String: Any]]
        XCTAssertEqual(Set(instruments.map { $0["instrument_name"] as! String }), ["BTC-PERPETUAL", "BTC-25DEC26", "BTC-26MAR27"])
        for i in instruments { assertShape(i, documented: DocExamples.instrumentFuture, "public/get_instruments \(i["instrument_name"]!)") }
        let perpetual = instruments.first { $0["instrument_name"] as? String == "BTC-PERPETUAL" }!
        XCTAssertEqual(perpetual["settlement_period"] as? String, "perpetual")
        XCTAssertEqual((perpetual["expiration_timestamp"] as? NSNumber)?.int64Value, 32_503_708_800_000)
        let options = try c.result("public/get_instruments", ["currency": "BTC", "kind": "option"]) as! [[String: Any]]
        XCTAssertEqual(options.count, 2)
        for o in options {
            XCTAssertEqual(jsonKind(o["strike"]!), .number)
            XCTAssert(["call", "put"].contains(o["option_type"] as? String ?? ""), "\(o)")
        }

        let ticker = try c.result("public/ticker", ["instrument_name": "BTC-PERPETUAL"]) as! [String: Any]
        assertShape(ticker, documented: DocExamples.tickerPerpetual, "public/ticker")
        XCTAssertEqual(ticker["instrument_name"] as? String, "BTC-PERPETUAL")
        XCTAssertLessThan((ticker["best_bid_price"] as! NSNumber).doubleValue, (ticker["best_ask_price"] as! NSNumber).doubleValue)

        let book = try c.result("public/get_order_book", ["instrument_name": "BTC-PERPETUAL", "depth": 5]) as! [String: Any]
        assertShape(book, documented: DocExamples.orderBook, "public/get_order_book")
        let bids = (book["bids"] as! [[NSNumber]]).map { $0[0].doubleValue }
        let asks = (book["asks"] as! [[NSNumber]]).map { $0[0].doubleValue }
        XCTAssertEqual(bids.count, 5)
        XCTAssertEqual(asks.count, 5)
        XCTAssertEqual(bids, bids.sorted(by: >), "bids best first")
        XCTAssertEqual(asks, asks.sorted(), "asks best first")
        XCTAssertEqual(bids.first, (book["best_bid_price"] as! NSNumber).doubleValue)

        let sub = try c.call("public/subscribe", ["channels": ["ticker.BTC-PERPETUAL.100ms", "nonsense.channel", "book.NOPE.100ms"]])
        XCTAssertEqual(sub["result"] as? [String], ["ticker.BTC-PERPETUAL.100ms"], "unknown channels are left out")
        assertShape(try c.notificationData(channel: "ticker.BTC-PERPETUAL.100ms"), documented: DocExamples.tickerPerpetual, "ticker notification")
        XCTAssertEqual(try c.result("public/unsubscribe", ["channels": ["ticker.BTC-PERPETUAL.100ms"]]) as? [String], ["ticker.BTC-PERPETUAL.100ms"])
    }

    func testAuthAndTradingMatchDocumentedShapes() throws {
        let sim = try startSim()
        let c = try connect(sim, clientLoop())

        let auth = try c.result("public/auth", ["grant_type": "client_credentials", "client_id": "sim-client",
                                                "client_secret": "sim-secret", "state": "s1"]) as! [String: Any]
        assertShape(auth, documented: DocExamples.auth, "public/auth")
        XCTAssertEqual(auth["token_type"] as? String, "bearer")
        XCTAssertEqual(auth["expires_in"] as? Int, 31_536_000)
        XCTAssertEqual(auth["scope"] as? String, "connection mainaccount")
        XCTAssertEqual(auth["state"] as? String, "s1")
        XCTAssertEqual((auth["enabled_features"] as? [Any])?.count, 0)
        let refreshed = try c.result("public/auth", ["grant_type": "refresh_token", "refresh_token": auth["refresh_token"]!]) as! [String: Any]
        assertShape(refreshed, documented: DocExamples.auth, "public/auth refresh_token")
        XCTAssertNotEqual(refreshed["access_token"] as? String, auth["access_token"] as? String)
        let reused = try c.call("public/auth", ["grant_type": "refresh_token", "refresh_token": auth["refresh_token"]!])
        XCTAssertEqual((reused["error"] as? [String: Any])?["code"] as? Int, 13004, "a refresh token is single use")

        let resting = try c.result("private/buy", ["instrument_name": "BTC-PERPETUAL", "amount": 40, "price": 50000, "label": "mm"]) as! [String: Any]
        XCTAssertEqual((resting["trades"] as? [Any])?.count, 0)
        let order = resting["order"] as! [String: Any]
        assertShape(order, documented: DocExamples.order, "private/buy order")
        XCTAssertEqual(order["order_state"] as? String, "open")
        XCTAssertEqual(order["label"] as? String, "mm")
        XCTAssertEqual(order["direction"] as? String, "buy")

        let book = try c.result("public/ticker", ["instrument_name": "ETH-PERPETUAL"]) as! [String: Any]
        let bestBid = (book["best_bid_price"] as! NSNumber).doubleValue
        let filled = try c.result("private/sell", ["instrument_name": "ETH-PERPETUAL", "amount": 21, "price": bestBid - 100]) as! [String: Any]
        assertShape(filled, documented: DocExamples.buyWithFill, "private/sell with a fill")
        let fillOrder = filled["order"] as! [String: Any]
        XCTAssertEqual(fillOrder["order_state"] as? String, "filled")
        XCTAssert((fillOrder["order_id"] as? String ?? "").hasPrefix("ETH-"), "\(fillOrder)")
        let trade = (filled["trades"] as! [[String: Any]])[0]
        XCTAssertEqual(trade["order_id"] as? String, fillOrder["order_id"] as? String)
        XCTAssert((trade["trade_id"] as? String ?? "").hasPrefix("ETH-"), "\(trade)")

        let open = try c.result("private/get_open_orders_by_currency", ["currency": "BTC"]) as! [[String: Any]]
        XCTAssertEqual(open.map { $0["order_id"] as? String }, [order["order_id"] as? String])
        for o in open { assertShape(o, documented: DocExamples.order, "private/get_open_orders_by_currency") }
        XCTAssertEqual((try c.result("private/get_open_orders_by_currency", ["currency": "ETH"]) as? [Any])?.count, 0)

        let cancelled = try c.result("private/cancel", ["order_id": order["order_id"]!]) as! [String: Any]
        assertShape(cancelled, documented: DocExamples.order, "private/cancel")
        XCTAssertEqual(cancelled["order_state"] as? String, "cancelled")
        XCTAssertEqual(cancelled["order_id"] as? String, order["order_id"] as? String)
        XCTAssertEqual((try c.result("private/get_open_orders_by_currency", ["currency": "BTC"]) as? [Any])?.count, 0)
        let again = try c.call("private/cancel", ["order_id": order["order_id"]!])
        XCTAssertEqual((again["error"] as? [String: Any])?["code"] as? Int, 11044, "cancelling a cancelled order: not_open_order")
        let unknown = try c.call("private/cancel", ["order_id": "999"])
        assertShape(unknown, documented: DocExamples.errorEnvelope, "private/cancel of an unknown order")
        XCTAssertEqual((unknown["error"] as? [String: Any])?["code"] as? Int, 10004)
        XCTAssertEqual((unknown["error"] as? [String: Any])?["message"] as? String, "order_not_found")
    }

    func testErrorEnvelopes() throws {
        let sim = try startSim()
        let c = try connect(sim, clientLoop())

        func error(_ r: [String: Any]) -> [String: Any] { r["error"] as? [String: Any] ?? [:] }

        let unauthorized = try c.call("private/get_open_orders_by_currency", ["currency": "BTC"])
        assertShape(unauthorized, documented: DocExamples.errorEnvelope, "13009")
        XCTAssertNil(unauthorized["result"])
        XCTAssertEqual(error(unauthorized)["code"] as? Int, 13009)
        XCTAssertEqual(error(unauthorized)["message"] as? String, "unauthorized")

        let badToken = try c.call("private/get_open_orders_by_currency", ["currency": "BTC", "access_token": "nope"])
        XCTAssertEqual(error(badToken)["code"] as? Int, 13009)

        let creds = try c.call("public/auth", ["grant_type": "client_credentials", "client_id": "sim-client", "client_secret": "bad"])
        assertShape(creds, documented: DocExamples.errorEnvelope, "13004")
        XCTAssertEqual(error(creds)["code"] as? Int, 13004)
        XCTAssertEqual(error(creds)["message"] as? String, "invalid_credentials")

        let missing = try c.call("public/ticker")
        assertShape(missing, documented: DocExamples.errorEnvelope, "-32602")
        XCTAssertEqual(error(missing)["code"] as? Int, -32602)
        XCTAssertEqual(error(missing)["message"] as? String, "Invalid params")
        assertShape(error(missing)["data"], documented: DocExamples.invalidParamsData, "-32602 data")
        XCTAssertEqual((error(missing)["data"] as? [String: Any])?["param"] as? String, "instrument_name")

        let heartbeat = try c.call("public/set_heartbeat", ["interval": 5])
        XCTAssertEqual(error(heartbeat)["code"] as? Int, -32602)
        XCTAssertEqual((error(heartbeat)["data"] as? [String: Any])?["param"] as? String, "interval")

        let nomethod = try c.call("public/no_such_method")
        assertShape(nomethod, documented: DocExamples.errorEnvelope, "-32601")
        XCTAssertEqual(error(nomethod)["code"] as? Int, -32601)

        let raw = try c.call("public/subscribe", ["channels": ["book.BTC-PERPETUAL.raw"]])
        XCTAssertEqual(error(raw)["code"] as? Int, 13778)
        XCTAssertEqual(error(raw)["message"] as? String, "raw_subscriptions_not_available_for_unauthorized")

        // Not JSON: -32700 without an id; not a request object: -32600.
        c.sendRaw(Array("{not json".utf8))
        let parse = try decodeObject(try XCTUnwrap(try? c.next(), "no answer to a parse error"))
        XCTAssertNil(parse["id"])
        XCTAssertEqual(error(parse)["code"] as? Int, -32700)
        XCTAssertEqual(parse["testnet"] as? Bool, true)
        c.sendRaw(Array(#"{"jsonrpc":"2.0","id":9}"#.utf8))
        XCTAssertEqual(error(try c.responseObject(idJSON: "9"))["code"] as? Int, -32600)
        c.sendRaw(Array(#"{"jsonrpc":"2.0","id":{"a":1},"method":"public/test"}"#.utf8))
        let badID = try decodeObject(try XCTUnwrap(try? c.next(), "no answer to an object id"))
        XCTAssertNil(badID["id"])
        XCTAssertEqual(error(badID)["code"] as? Int, -32600)
    }

    /// usIn is when the frame arrived, usOut when the answer left the exchange: with the glue's clock
    /// the difference is the real handling time, not always 0.
    func testUsOutIsMeasured() throws {
        let sim = try startSim()
        let c = try connect(sim, clientLoop())
        var diffs: [Int64] = []
        for _ in 0..<20 {
            let before = UInt64(Date().timeIntervalSince1970 * 1_000_000)
            let r = try c.call("public/get_instruments", ["currency": "any"])
            let after = UInt64(Date().timeIntervalSince1970 * 1_000_000)
            let usIn = (r["usIn"] as! NSNumber).uint64Value
            let usOut = (r["usOut"] as! NSNumber).uint64Value
            let usDiff = (r["usDiff"] as! NSNumber).int64Value
            XCTAssertGreaterThanOrEqual(usOut, usIn)
            XCTAssertEqual(usDiff, Int64(usOut - usIn))
            XCTAssert(usIn + 1_000 >= before && usOut <= after + 1_000, "usIn \(usIn) / usOut \(usOut) outside [\(before), \(after)]")
            diffs.append(usDiff)
        }
        XCTAssertGreaterThan(diffs.max() ?? 0, 0, "usDiff is always 0: usOut is not measured")
    }

    func testHTTPAPI() throws {
        let sim = try startSim()
        let r = try HTTPClient.request("GET", port: sim.port, path: "/api/v2/public/get_instruments?currency=BTC")
        XCTAssertEqual(r.status, 200)
        let body = try decodeObject(r.body)
        XCTAssertNil(body["id"], "Deribit's HTTP GET API has no id")
        XCTAssertEqual(body["jsonrpc"] as? String, "2.0")
        assertShape(body, documented: DocExamples.envelope.replacingOccurrences(of: #""id":42,"#, with: ""), "HTTP envelope")
        let list = try XCTUnwrap(body["result"] as? [[String: Any]])
        XCTAssertEqual(list.count, 5, "BTC-PERPETUAL, two futures, two options")
        XCTAssert(list.allSatisfy { $0["base_currency"] as? String == "BTC" }, "\(list)")
        for i in list where i["kind"] as? String == "future" { assertShape(i, documented: DocExamples.instrumentFuture, "HTTP get_instruments") }

        let bad = try HTTPClient.request("GET", port: sim.port, path: "/api/v2/public/get_instruments?currency=XRP")
        XCTAssertEqual(bad.status, 400)
        XCTAssertEqual(((try decodeObject(bad.body))["error"] as? [String: Any])?["code"] as? Int, -32602)

        let ws = try HTTPClient.request("GET", port: sim.port, path: "/api/v2/public/subscribe?channels=ticker.BTC-PERPETUAL.100ms")
        XCTAssertEqual(ws.status, 400)
        XCTAssertEqual(((try decodeObject(ws.body))["error"] as? [String: Any])?["code"] as? Int, 11050)

        let auth = try HTTPClient.request("GET", port: sim.port, path: "/api/v2/public/auth?grant_type=client_credentials&client_id=sim-client&client_secret=sim-secret")
        XCTAssertEqual(auth.status, 200)
        let token = try XCTUnwrap(((try decodeObject(auth.body))["result"] as? [String: Any])?["access_token"] as? String)
        let privateNoToken = try HTTPClient.request("GET", port: sim.port, path: "/api/v2/private/get_open_orders_by_currency?currency=BTC")
        XCTAssertEqual(privateNoToken.status, 400)
        let privateOK = try HTTPClient.request("GET", port: sim.port, path: "/api/v2/private/get_open_orders_by_currency?currency=BTC",
                                        headers: ["Authorization": "Bearer \(token)"])
        XCTAssertEqual(privateOK.status, 200, String(decoding: privateOK.body, as: UTF8.self))
        XCTAssertEqual(((try decodeObject(privateOK.body))["result"] as? [Any])?.count, 0)
    }
}
