import Foundation
import XCTest
@testable import DeribitSim
import TLS

final class EnvelopeTests: XCTestCase {
    func testHelloEnvelopeHasDeribitFields() {
        let h = Harness()
        let c = h.open()
        let r = h.call(c, "public/hello", ["client_name": "t", "client_version": "1"], id: 42)
        XCTAssertEqual(r["jsonrpc"] as? String, "2.0")
        XCTAssertEqual(r["id"] as? Int, 42)
        XCTAssertEqual(r.result?["version"] as? String, "1.2.26")
        XCTAssertEqual(r["usIn"] as? UInt64, h.now)
        XCTAssertEqual(r["usOut"] as? UInt64, h.now)
        XCTAssertEqual(r["usDiff"] as? Int, 0)
        XCTAssertEqual(r["testnet"] as? Bool, true)
        XCTAssertNil(r["error"])
    }

    func testTestAndGetTimeAndStatus() {
        let h = Harness()
        let c = h.open()
        XCTAssertEqual(h.call(c, "public/test").result?["version"] as? String, "1.2.26")
        XCTAssertEqual(h.call(c, "public/get_time")["result"] as? Int64, Int64(h.now / 1000))
        XCTAssertEqual(h.call(c, "public/status").result?["locked"] as? String, "false")
    }

    func testIDsAreEchoedByteForByte() {
        let h = Harness()
        let c = h.open()
        for (raw, expected) in [(#""abc-1""#, #""id":"abc-1""#), ("1.50", #""id":1.50"#),
                                ("18446744073709551615", #""id":18446744073709551615"#), (#""7""#, #""id":"7""#)] {
            let effects = h.send(c, #"{"jsonrpc":"2.0","method":"public/test","id":"# + raw + "}")
            guard case .send(_, let bytes) = effects.first else { return XCTFail() }
            let text = String(decoding: bytes, as: UTF8.self)
            XCTAssertTrue(text.contains(expected), text)
        }
        let r = Harness.decode({ if case .send(_, let b) = h.send(c, #"{"id":"x","method":"public/test"}"#)[0] { return b }; return [] }())
        XCTAssertEqual(r["id"] as? String, "x")
    }

    func testParseErrorInvalidRequestMethodNotFound() {
        let h = Harness()
        let c = h.open()
        func first(_ s: String) -> [String: Any] {
            guard case .send(_, let b) = h.send(c, s).first else { return [:] }
            return Harness.decode(b)
        }
        let parse = first("{not json")
        XCTAssertEqual(parse.errorCode, -32700)
        XCTAssertEqual(parse.error?["message"] as? String, "Parse error")
        XCTAssertEqual(first(#"[1,2]"#).errorCode, -32600)
        let noMethod = first(#"{"jsonrpc":"2.0","id":3}"#)
        XCTAssertEqual(noMethod.errorCode, -32600)
        XCTAssertEqual(noMethod["id"] as? Int, 3)
        let unknown = first(#"{"jsonrpc":"2.0","id":4,"method":"public/nope"}"#)
        XCTAssertEqual(unknown.errorCode, -32601)
        XCTAssertEqual(unknown.error?["message"] as? String, "Method not found")
        XCTAssertEqual(unknown["id"] as? Int, 4)
        XCTAssertEqual(first(#"{"id":5,"method":"private/nope"}"#).errorCode, -32601)
    }

    func testFrameOver32kBGetsInvalidRequestWithoutID() {
        let h = Harness()
        let c = h.open()
        let pad = String(repeating: "x", count: 33_000)
        let effects = h.send(c, #"{"jsonrpc":"2.0","id":9,"method":"public/test","params":{"pad":""# + pad + #""}}"#)
        XCTAssertEqual(effects.count, 1)
        guard case .send(let to, let bytes) = effects[0] else { return XCTFail() }
        XCTAssertEqual(to, c)
        let r = Harness.decode(bytes)
        XCTAssertNil(r["id"])
        XCTAssertEqual(r.errorCode, -32600)
        XCTAssertEqual(r.error?["message"] as? String, "request entity too large")
        // The connection stays usable.
        XCTAssertNotNil(h.call(c, "public/test").result)
    }

    /// The primitives the client_signature grant checks with (TLS's `Crypto`): FIPS 180-2
    /// appendix B.1 and RFC 4231 test case 2.
    func testSHA256AndHMACVectors() {
        XCTAssertEqual(Crypto.hex(Crypto.sha256(Array("abc".utf8))),
                       "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        // RFC 4231 test case 2.
        XCTAssertEqual(Crypto.hex(Crypto.hmacSHA256(key: Array("Jefe".utf8), message: Array("what do ya want for nothing?".utf8))),
                       "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }

    func testHTTPAPIGetInstruments() {
        let h = Harness()
        let (status, body) = h.sim.httpAPI(path: "public/get_instruments", query: [("currency", "BTC"), ("kind", "future")], nowMicros: h.now)
        XCTAssertEqual(status, 200)
        let r = Harness.decode(body)
        let list = r["result"] as? [[String: Any]] ?? []
        XCTAssertEqual(list.map { $0["instrument_name"] as? String }, ["BTC-PERPETUAL", "BTC-25DEC26", "BTC-26MAR27"])
        XCTAssertEqual(list.first?["kind"] as? String, "future")
        XCTAssertEqual(list.first?["settlement_period"] as? String, "perpetual")
        XCTAssertEqual(list.first?["tick_size"] as? Double, 0.5)
        XCTAssertNil(r["id"])
        let bad = h.sim.httpAPI(path: "public/subscribe", query: [], nowMicros: h.now)
        XCTAssertEqual(bad.status, 400)
        let priv = h.sim.httpAPI(path: "private/get_open_orders_by_currency", query: [("currency", "BTC")], nowMicros: h.now)
        XCTAssertEqual(Harness.decode(priv.body).errorCode, 13009)
    }

    func testTickerAndOrderBookShapes() {
        let h = Harness()
        let c = h.open()
        let t = h.call(c, "public/ticker", ["instrument_name": "BTC-PERPETUAL"]).result ?? [:]
        for key in ["timestamp", "stats", "state", "mark_price", "last_price", "index_price", "best_bid_price",
                    "best_bid_amount", "best_ask_price", "best_ask_amount", "instrument_name", "funding_8h"] {
            XCTAssertNotNil(t[key], key)
        }
        XCTAssertLessThan(t["best_bid_price"] as! Double, t["best_ask_price"] as! Double)
        let book = h.call(c, "public/get_order_book", ["instrument_name": "BTC-PERPETUAL", "depth": 5]).result ?? [:]
        XCTAssertEqual((book["bids"] as? [[Double]])?.count, 5)
        XCTAssertNotNil(book["change_id"] as? Int64)
        let bad = h.call(c, "public/ticker", ["instrument_name": "NOPE"])
        XCTAssertEqual(bad.errorCode, -32602)
        XCTAssertEqual((bad.error?["data"] as? [String: Any])?["param"] as? String, "instrument_name")
        XCTAssertEqual(h.call(c, "public/get_currencies")["result"].map { ($0 as! [[String: Any]]).count }, 2)
    }
}
