import XCTest
@testable import JSONRPC

final class WireTests: XCTestCase {
    func testResult() {
        XCTAssertEqual(JSONRPCWire.result(id: bytes("42"), resultJSON: bytes(#"{"a":1}"#)),
                       bytes(#"{"jsonrpc":"2.0","id":42,"result":{"a":1}}"#))
        XCTAssertEqual(JSONRPCWire.result(id: JSONRPCWire.nullID, resultJSON: bytes("true"),
                                          extra: [("usIn", bytes("1")), ("testnet", bytes("false"))]),
                       bytes(#"{"jsonrpc":"2.0","id":null,"result":true,"usIn":1,"testnet":false}"#))
        let id = bytes(#""\u00e9x""#)
        XCTAssertEqual(JSONRPCWire.result(id: id[...], resultJSON: bytes("[]")),
                       bytes(#"{"jsonrpc":"2.0","id":"\u00e9x","result":[]}"#))
    }

    func testError() {
        XCTAssertEqual(JSONRPCWire.error(id: JSONRPCWire.nullID, code: -32700, message: "Parse error"),
                       bytes(#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}"#))
        XCTAssertEqual(JSONRPCWire.error(id: bytes(#""x""#), code: -32602, message: "Invalid params",
                                         data: bytes(#"{"param":"interval","reason":"must be at least 10"}"#)),
                       bytes(#"{"jsonrpc":"2.0","id":"x","error":{"code":-32602,"message":"Invalid params","data":{"param":"interval","reason":"must be at least 10"}}}"#))
        XCTAssertEqual(JSONRPCWire.error(id: bytes("7"), code: 10028, message: "too_many_requests"),
                       bytes(#"{"jsonrpc":"2.0","id":7,"error":{"code":10028,"message":"too_many_requests"}}"#))
        XCTAssertEqual(JSONRPCWire.error(id: bytes("7"), code: 0, message: ""),
                       bytes(#"{"jsonrpc":"2.0","id":7,"error":{"code":0,"message":""}}"#))
        XCTAssertEqual(JSONRPCWire.error(id: bytes("7"), code: Int.min, message: "m"),
                       bytes(#"{"jsonrpc":"2.0","id":7,"error":{"code":-9223372036854775808,"message":"m"}}"#))
    }

    func testNotificationAndRequest() {
        XCTAssertEqual(JSONRPCWire.notification(method: "heartbeat", paramsJSON: bytes(#"{"type":"test_request"}"#)),
                       JSONRPCWire.heartbeatTestRequest)
        XCTAssertEqual(JSONRPCWire.request(id: 18446744073709551615, method: "public/test", paramsJSON: nil),
                       bytes(#"{"jsonrpc":"2.0","id":18446744073709551615,"method":"public/test"}"#))
        XCTAssertEqual(JSONRPCWire.request(id: 3, method: "public/set_heartbeat", paramsJSON: bytes(#"{"interval":30}"#)),
                       bytes(#"{"jsonrpc":"2.0","id":3,"method":"public/set_heartbeat","params":{"interval":30}}"#))
    }

    func testQuoted() {
        XCTAssertEqual(JSONRPCWire.quoted(""), bytes(#""""#))
        XCTAssertEqual(JSONRPCWire.quoted(#"a"b\c/d"#), bytes(#""a\"b\\c/d""#))
        XCTAssertEqual(JSONRPCWire.quoted("\n\t\r\u{0}\u{1F}\u{7F}"), bytes(#""\u000a\u0009\u000d\u0000\u001f"#) + [0x7F, 0x22])
        XCTAssertEqual(JSONRPCWire.quoted("é😀"), bytes("\"é😀\""))
        // Whatever it quotes decodes back to itself.
        var all = ""
        for v in 0..<0x100 { all.unicodeScalars.append(Unicode.Scalar(UInt8(v))) }
        let q = JSONRPCWire.quoted(all + "😀")
        XCTAssertEqual(JSONStringDecoder.decode(q.dropFirst().dropLast()), all + "😀")
    }

    func testBuiltMessagesScan() throws {
        let messages = [
            JSONRPCWire.result(id: bytes(#""id""#), resultJSON: bytes("{}"), extra: [("us\"In", bytes("1"))]),
            JSONRPCWire.error(id: JSONRPCWire.nullID, code: -32000, message: "upstream_unavailable\n"),
            JSONRPCWire.request(id: 1, method: "a\"b", paramsJSON: bytes("[]")),
            JSONRPCWire.heartbeatTestRequest,
        ]
        for m in messages { XCTAssertNoThrow(try JSONRPCScanner.scan(m), String(decoding: m, as: UTF8.self)) }
        let r = JSONRPCWire.request(id: 1, method: "a\"b", paramsJSON: nil)
        XCTAssertEqual(JSONRPCScanner.method(in: r, scan: try JSONRPCScanner.scan(r)), "a\"b")
    }
}

final class ValuesTests: XCTestCase {
    func testStringDecoder() {
        XCTAssertEqual(JSONStringDecoder.decode(bytes("plain é")), "plain é")
        XCTAssertEqual(JSONStringDecoder.decode(bytes(#"\"\\\/\b\f\n\r\t"#)), "\"\\/\u{8}\u{C}\n\r\t")
        XCTAssertEqual(JSONStringDecoder.decode(bytes(#"\u0041\u00e9\u4e2d\ud83d\ude00!"#)), "Aé中😀!")
        XCTAssertEqual(JSONStringDecoder.decode(bytes(#"\uD83D\uDE00"#)), "😀")
        XCTAssertEqual(JSONStringDecoder.decode([UInt8]()), "")
        for bad in [#"\ud83d"#, #"\ude00"#, #"\ud83dx"#, #"\ud83d\u0041"#, #"\x"#, #"\"#, #"\u12"#, #"\u12g4"#] {
            XCTAssertNil(JSONStringDecoder.decode(bytes(bad)), bad)
        }
        XCTAssertNil(JSONStringDecoder.decode(bytes("a\nb")), "raw control character")
    }

    func testArrayOfStrings() throws {
        let b = bytes(#"{"method":"public/subscribe","params":{"channels":[ "ticker.BTC-PERPETUAL.raw" , "book.ETH\u002dPERPETUAL.100ms" ]}}"#)
        let scan = try JSONRPCScanner.scan(b)
        let channels = JSONObjectReader.member("channels", inObject: scan.params!, of: b)
        XCTAssertEqual(channels.flatMap { JSONArrayOfStrings.parse(b, range: $0) },
                       ["ticker.BTC-PERPETUAL.raw", "book.ETH-PERPETUAL.100ms"])
        XCTAssertEqual(JSONArrayOfStrings.parse(bytes("[]"), range: 0..<2), [])
        XCTAssertEqual(JSONArrayOfStrings.parse(bytes(#" [ "a" ] "#), range: 0..<9), ["a"])
        for bad in [#"["a",1]"#, #"["a",["b"]]"#, #"["a",]"#, #"["a""#, #"{"a":1}"#, #""a""#, #"["a"] x"#, #"["\ud800"]"#, "["] {
            let x = bytes(bad)
            XCTAssertNil(JSONArrayOfStrings.parse(x, range: 0..<x.count), bad)
        }
        XCTAssertNil(JSONArrayOfStrings.parse(bytes("[]"), range: 0..<3), "range outside the buffer")
    }

    func testMember() {
        let b = bytes(#"{"a":{"channels":["nested"]}, "channels" : ["x"], "\u0069nterval":30,"channels":["second"],"e":{}}"#)
        let all = 0..<b.count
        XCTAssertEqual(text(b, JSONObjectReader.member("channels", inObject: all, of: b)), #"["x"]"#)
        XCTAssertEqual(text(b, JSONObjectReader.member("interval", inObject: all, of: b)), "30")
        XCTAssertEqual(text(b, JSONObjectReader.member("e", inObject: all, of: b)), "{}")
        XCTAssertNil(JSONObjectReader.member("missing", inObject: all, of: b))
        XCTAssertNil(JSONObjectReader.member("a", inObject: 0..<5, of: b), "truncated object")
        XCTAssertNil(JSONObjectReader.member("a", inObject: bytes("[1]").indices, of: bytes("[1]")))
        XCTAssertNil(JSONObjectReader.member("a", inObject: bytes("{}").indices, of: bytes("{}")))
        XCTAssertNil(JSONObjectReader.member("a", inObject: 0..<100, of: bytes("{}")))
    }

    func testScalars() {
        let b = bytes(#"[18446744073709551615,18446744073709551616,007,0,-1,1.5,1e3,"s\u0041",true,false,null]"#)
        func r(_ s: String) -> Range<Int> {
            let needle = bytes(s)
            let start = (0...(b.count - needle.count)).first { Array(b[$0..<($0 + needle.count)]) == needle }!
            return start..<(start + needle.count)
        }
        XCTAssertEqual(JSONScalar.uint64(b, r("18446744073709551615")), UInt64.max)
        XCTAssertNil(JSONScalar.uint64(b, r("18446744073709551616")))
        XCTAssertNil(JSONScalar.uint64(b, r("007")))
        XCTAssertEqual(JSONScalar.uint64(b, r(",0,").dropFirst().dropLast()), 0)
        XCTAssertNil(JSONScalar.uint64(b, r("-1")))
        XCTAssertNil(JSONScalar.uint64(b, r("1.5")))
        XCTAssertEqual(JSONScalar.double(b, r("1.5")), 1.5)
        XCTAssertEqual(JSONScalar.double(b, r("1e3")), 1000)
        XCTAssertEqual(JSONScalar.double(b, r("-1")), -1)
        XCTAssertNil(JSONScalar.double(b, r("007")))
        XCTAssertNil(JSONScalar.double(b, r("true")))
        XCTAssertNil(JSONScalar.double(bytes("inf"), 0..<3))
        XCTAssertEqual(JSONScalar.bool(b, r("true")), true)
        XCTAssertEqual(JSONScalar.bool(b, r("false")), false)
        XCTAssertNil(JSONScalar.bool(b, r("null")))
        XCTAssertEqual(JSONScalar.string(b, r(#""s\u0041""#)), "sA")
        XCTAssertNil(JSONScalar.string(b, r("null")))
        XCTAssertEqual(JSONScalar.kind(b, r("null")), .null)
        XCTAssertEqual(JSONScalar.kind(b, 0..<b.count), .array)
        XCTAssertNil(JSONScalar.kind(b, 0..<0))
    }

    func testErrorMapping() {
        XCTAssertEqual(JSONRPCScanError.notJSON.jsonRPCCode, JSONRPCErrorCode.parseError)
        XCTAssertEqual(JSONRPCScanError.nestingTooDeep.jsonRPCCode, -32700)
        XCTAssertEqual(JSONRPCScanError.notAnObject.jsonRPCCode, JSONRPCErrorCode.invalidRequest)
        XCTAssertEqual(JSONRPCScanError.notAnObject.jsonRPCMessage, "Invalid Request")
    }
}
