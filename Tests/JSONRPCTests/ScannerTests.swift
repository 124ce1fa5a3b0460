import XCTest
@testable import JSONRPC

final class ScannerTests: XCTestCase {
    func testRequest() {
        let (b, s) = scanOrFail(#"{"jsonrpc":"2.0","id":42,"method":"public/get_time","params":{}}"#)
        XCTAssertEqual(text(b, s.jsonrpc), #""2.0""#)
        XCTAssertEqual(text(b, s.id), "42")
        XCTAssertEqual(s.idKind, .number)
        XCTAssertEqual(text(b, s.method), "public/get_time")
        XCTAssertEqual(s.methodKind, .string)
        XCTAssertFalse(s.methodHasEscapes)
        XCTAssertEqual(text(b, s.params), "{}")
        XCTAssertEqual(s.paramsKind, .object)
        XCTAssertNil(s.result)
        XCTAssertNil(s.error)
        XCTAssertNil(s.channel)
        XCTAssertNil(s.accessToken)
        XCTAssertNil(s.heartbeatType)
        XCTAssertFalse(s.hasDuplicateKeys)
        XCTAssertEqual(s.objectStart, 0)
        XCTAssertTrue(s.isRequest)
        XCTAssertFalse(s.isNotification)
        XCTAssertFalse(s.isResponse)
        XCTAssertTrue(JSONRPCScanner.methodEquals(b, s, "public/get_time"))
        XCTAssertFalse(JSONRPCScanner.methodEquals(b, s, "public/get_tim"))
        XCTAssertFalse(JSONRPCScanner.methodEquals(b, s, "public/get_timeX"))
        XCTAssertTrue(JSONRPCScanner.methodHasPrefix(b, s, "public/"))
        XCTAssertFalse(JSONRPCScanner.methodHasPrefix(b, s, "private/"))
        XCTAssertEqual(JSONRPCScanner.method(in: b, scan: s), "public/get_time")
    }

    func testIDsAreRecordedByteForByte() {
        let ids: [(String, JSONValueKind)] = [
            ("0", .number), ("-1", .number), ("18446744073709551615", .number),
            ("123456789012345678901234567890", .number), ("1e3", .number), ("-0.5E+10", .number),
            ("1.25e-7", .number), (#""abc""#, .string), (#""""#, .string),
            (#""a\"b\\c\/d\n""#, .string), (#""\u00e9\ud83d\ude00""#, .string),
            (#""é😀 中文""#, .string), ("null", .null), ("true", .trueLiteral),
            ("false", .falseLiteral), (#"{"x":[1]}"#, .object), ("[1,2]", .array),
        ]
        for (id, kind) in ids {
            let (b, s) = scanOrFail(#"{"jsonrpc":"2.0","id":"# + id + #","method":"public/test"}"#)
            XCTAssertEqual(text(b, s.id), id)
            XCTAssertEqual(s.idKind, kind, id)
        }
    }

    func testKeyOrderAndWhitespace() {
        let messages = [
            #"{"method":"private/buy","params":{"amount":10},"id":7,"jsonrpc":"2.0"}"#,
            #"{"params":{"amount":10},"jsonrpc":"2.0","method":"private/buy","id":7}"#,
            " \r\n\t{ \"id\" : 7 ,\n\t\"params\"\r: {\"amount\" :\t10 } , \"method\"  :  \"private/buy\" , \"jsonrpc\":\"2.0\" } \n",
        ]
        for m in messages {
            let (b, s) = scanOrFail(m)
            XCTAssertEqual(text(b, s.id), "7", m)
            XCTAssertEqual(text(b, s.method), "private/buy", m)
            XCTAssertEqual(text(b, s.params).map { $0.filter { !$0.isWhitespace } }, #"{"amount":10}"#, m)
            XCTAssertEqual(text(b, s.jsonrpc), #""2.0""#, m)
            XCTAssertTrue(s.isRequest)
        }
        let (b, s) = scanOrFail(messages[2])
        XCTAssertEqual(b[s.objectStart], UInt8(ascii: "{"))
        XCTAssertEqual(s.objectStart, 4)
    }

    func testSubscriptionNotificationChannelBeforeAndAfterData() {
        let channel = "ticker.BTC-PERPETUAL.100ms"
        let data = #"{"channel":"decoy","type":"decoy","params":{"channel":"deep"},"access_token":"x","best_bid_price":1.5}"#
        let messages = [
            #"{"jsonrpc":"2.0","method":"subscription","params":{"channel":"ticker.BTC-PERPETUAL.100ms","data":"# + data + "}}",
            #"{"jsonrpc":"2.0","method":"subscription","params":{"data":"# + data + #","channel":"ticker.BTC-PERPETUAL.100ms"}}"#,
            #"{"params":{"data":"# + data + #","channel":"ticker.BTC-PERPETUAL.100ms"},"method":"subscription","jsonrpc":"2.0"}"#,
        ]
        for m in messages {
            let (b, s) = scanOrFail(m)
            XCTAssertEqual(text(b, s.channel), channel, m)
            XCTAssertEqual(JSONRPCScanner.channel(in: b, scan: s), channel)
            XCTAssertFalse(s.channelHasEscapes)
            XCTAssertTrue(JSONRPCScanner.methodEquals(b, s, "subscription"))
            XCTAssertTrue(s.isNotification)
            XCTAssertNil(s.id)
            XCTAssertNil(s.heartbeatType)
            XCTAssertNil(s.accessToken, "a nested access_token is not params.access_token")
        }
    }

    func testChannelOnlyWhenString() {
        let (_, s) = scanOrFail(#"{"method":"subscription","params":{"channel":5,"data":{}}}"#)
        XCTAssertNil(s.channel)
        let (b, e) = scanOrFail(#"{"method":"subscription","params":{"channel":"a\/b\u0041","data":{}}}"#)
        XCTAssertTrue(e.channelHasEscapes)
        XCTAssertEqual(JSONRPCScanner.channel(in: b, scan: e), "a/bA")
    }

    func testNoChannelOutsideParamsObject() {
        let (_, s) = scanOrFail(#"{"method":"x","channel":"top","params":["channel","y"]}"#)
        XCTAssertNil(s.channel)
        XCTAssertEqual(s.paramsKind, .array)
    }

    func testHeartbeat() {
        let (b, s) = scanOrFail(#"{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}"#)
        XCTAssertEqual(text(b, s.heartbeatType), "test_request")
        XCTAssertTrue(JSONRPCScanner.heartbeatTypeEquals(b, s, "test_request"))
        XCTAssertFalse(JSONRPCScanner.heartbeatTypeEquals(b, s, "heartbeat"))

        let (b2, s2) = scanOrFail(#"{"params":{"type":"heartbeat"},"method":"heartbeat","jsonrpc":"2.0"}"#)
        XCTAssertEqual(text(b2, s2.heartbeatType), "heartbeat", "params before method")

        let (b3, s3) = scanOrFail(#"{"params":{"type":"test_r\u0065quest"},"method":"heart\u0062eat"}"#)
        XCTAssertTrue(s3.methodHasEscapes)
        XCTAssertTrue(JSONRPCScanner.heartbeatTypeEquals(b3, s3, "test_request"))
        XCTAssertTrue(JSONRPCScanner.methodEquals(b3, s3, "heartbeat"))

        let (_, s4) = scanOrFail(#"{"method":"private/buy","params":{"type":"limit"},"id":1}"#)
        XCTAssertNil(s4.heartbeatType, "params.type of other methods is not a heartbeat type")

        XCTAssertEqual(try JSONRPCScanner.scan(JSONRPCWire.heartbeatTestRequest).heartbeatType.map {
            String(decoding: JSONRPCWire.heartbeatTestRequest[$0], as: UTF8.self)
        }, "test_request")
    }

    func testResponses() {
        let (b, s) = scanOrFail(#"{"jsonrpc":"2.0","id":7,"result":{"a":[1,2,{"b":null}]},"usIn":1,"usOut":2,"usDiff":1,"testnet":false}"#)
        XCTAssertEqual(text(b, s.id), "7")
        XCTAssertEqual(text(b, s.result), #"{"a":[1,2,{"b":null}]}"#)
        XCTAssertTrue(s.isResponse)
        XCTAssertNil(s.methodKind)
        XCTAssertEqual(JSONScalar.uint64(b, s.id!), 7)

        let (b2, s2) = scanOrFail(#"{"jsonrpc":"2.0","id":8,"error":{"code":10028,"message":"too_many_requests"},"testnet":true}"#)
        XCTAssertEqual(text(b2, s2.error), #"{"code":10028,"message":"too_many_requests"}"#)
        XCTAssertNil(s2.result)
        XCTAssertTrue(s2.isResponse)

        let (b3, s3) = scanOrFail(#"{"jsonrpc":"2.0","id":9,"result":null}"#)
        XCTAssertEqual(text(b3, s3.result), "null")
        XCTAssertTrue(s3.isResponse)
    }

    func testMethodNotAString() {
        let (_, s) = scanOrFail(#"{"id":1,"method":12}"#)
        XCTAssertNil(s.method)
        XCTAssertEqual(s.methodKind, .number)
    }

    func testEscapedKeysAreRecognised() {
        let (b, s) = scanOrFail(#"{"i\u0064":5,"m\u0065thod":"public\/test","\u0070arams":{"access\u005ftoken":"t"}}"#)
        XCTAssertEqual(text(b, s.id), "5")
        XCTAssertTrue(s.methodHasEscapes)
        XCTAssertTrue(JSONRPCScanner.methodEquals(b, s, "public/test"))
        XCTAssertTrue(JSONRPCScanner.methodHasPrefix(b, s, "public/"))
        XCTAssertEqual(JSONRPCScanner.method(in: b, scan: s), "public/test")
        XCTAssertEqual(text(b, s.accessToken), #""access\u005ftoken":"t""#)
        // A key that only resembles one is not one.
        let (_, t) = scanOrFail(#"{"i\u0064x":5,"\u00e9":1,"ID":2}"#)
        XCTAssertNil(t.id)
    }

    func testDuplicateKeysFirstWins() {
        let (b, s) = scanOrFail(#"{"id":1,"method":"a","params":{"channel":"c1","access_token":"t1","channel":"c2","access_token":"t2"},"id":2,"method":"b","params":{}}"#)
        XCTAssertEqual(text(b, s.id), "1")
        XCTAssertEqual(text(b, s.method), "a")
        XCTAssertEqual(text(b, s.channel), "c1")
        XCTAssertEqual(text(b, s.accessToken), #""access_token":"t1""#)
        XCTAssertTrue(s.params.map { b[$0].count > 2 } ?? false)
        XCTAssertTrue(s.hasDuplicateKeys)

        let (_, ok) = scanOrFail(#"{"id":1,"method":"a","params":{"x":1},"data":{"id":2,"method":"b"}}"#)
        XCTAssertFalse(ok.hasDuplicateKeys, "nested keys are not duplicates")
    }

    func testEmptyObjectAndMinimal() {
        let (_, s) = scanOrFail("{}")
        XCTAssertNil(s.id)
        XCTAssertNil(s.methodKind)
        XCTAssertFalse(s.isRequest || s.isNotification || s.isResponse)
        let (_, p) = scanOrFail(#"{"params":{}}"#)
        XCTAssertEqual(p.paramsKind, .object)
        let (_, q) = scanOrFail(#"{"params":{ }}"#)
        XCTAssertEqual(q.paramsKind, .object)
    }

    func testMaxDepthIsAccepted() {
        // The top-level object and params count: maxDepth containers in all.
        let inner = JSONRPCScanner.maxDepth - 2
        let m = #"{"params":{"x":"# + String(repeating: "[", count: inner) + String(repeating: "]", count: inner) + "}}"
        XCTAssertNil(scanError(m))
        let deeper = #"{"params":{"x":"# + String(repeating: "[", count: inner + 1) + String(repeating: "]", count: inner + 1) + "}}"
        XCTAssertEqual(scanError(deeper), .nestingTooDeep)
        // Mixed objects and arrays, closing in the right order.
        let mixed = #"{"a":"# + String(repeating: #"{"k":["#, count: 40) + "1" + String(repeating: "]}", count: 40) + "}"
        XCTAssertNil(scanError(mixed))
    }

    func testScanFromUnsafeBufferAgreesWithArray() throws {
        let b = bytes(#"{"jsonrpc":"2.0","id":"x","method":"public/test","params":{"access_token":"t"}}"#)
        let viaArray = try JSONRPCScanner.scan(b)
        let viaBuffer = try b.withUnsafeBytes { buffer throws(JSONRPCScanError) in try JSONRPCScanner.scan(buffer) }
        XCTAssertEqual(viaArray, viaBuffer)
    }
}
