import XCTest
@testable import JSONRPC

/// `JSONArrayReader.elements(inArray:of:)`: element spans of an array span, validated as read
/// (the order tracker reads `get_open_orders` and `mass_quote` results with it).
final class JSONArrayReaderTests: XCTestCase {
    private func elements(_ s: String) -> [String]? {
        let b = bytes(s)
        return JSONArrayReader.elements(inArray: 0..<b.count, of: b)?.map { String(decoding: b[$0], as: UTF8.self) }
    }

    func testEmptyArrays() {
        XCTAssertEqual(elements("[]"), [])
        XCTAssertEqual(elements(" [ \n\t\r ] "), [])
    }

    func testScalarsAndNestedValuesAreWholeElements() {
        XCTAssertEqual(elements(#"[1,"two",true,false,null,-1.5e3,"a,b]"]"#), ["1", #""two""#, "true", "false", "null", "-1.5e3", #""a,b]""#])
        XCTAssertEqual(elements(#"[{"a":[1,{"b":"]"}]},[[],[[]]],{}]"#), [#"{"a":[1,{"b":"]"}]}"#, "[[],[[]]]", "{}"])
        XCTAssertEqual(elements(#"["\"]\\",  "\u005d"]"#), [#""\"]\\""#, #""\u005d""#])
    }

    func testWhitespaceAroundElementsIsNotPartOfThem() {
        XCTAssertEqual(elements("  [ 1 ,\n\"a\" ,\t{ } , [ ]\r]  "), ["1", #""a""#, "{ }", "[ ]"])
    }

    func testAnArrayInsideALargerBuffer() throws {
        let b = bytes(#"{"jsonrpc":"2.0","id":1,"result":[{"order_id":"A"},{"order_id":"B"}],"usIn":1}"#)
        let result = try XCTUnwrap(try JSONRPCScanner.scan(b).result)
        let spans = try XCTUnwrap(JSONArrayReader.elements(inArray: result, of: b))
        XCTAssertEqual(spans.map { text(b, $0) }, [#"{"order_id":"A"}"#, #"{"order_id":"B"}"#])
    }

    func testEveryTruncationOfAValidArrayIsNil() {
        let full = bytes(#"[1, -2.5e+3, "s\"\u00e9", true, false, null, {"k": [1, {"x": "y"}]}, [], [[0]]]"#)
        XCTAssertNotNil(JSONArrayReader.elements(inArray: 0..<full.count, of: full))
        for k in 0..<full.count {
            XCTAssertNil(JSONArrayReader.elements(inArray: 0..<k, of: full), "range cut at \(k)")
            XCTAssertNil(JSONArrayReader.elements(inArray: 0..<k, of: Array(full[..<k])), "bytes cut at \(k)")
        }
    }

    func testTrailingGarbageAndMalformedArraysAreNil() {
        for s in ["[1,2]x", "[1,2],", "[1,2][]", "[1,2] 3", "[1,2,]", "[,1]", "[1 2]", "[1,,2]", "[", "]", "",
                  "{}", #""[]""#, "1", "[tru]", #"[{"a":}]"#, "[01]", "[1.]", #"["\x"]"#, "[\"a\nb\"]", "[1}", "[{]}"] {
            XCTAssertNil(elements(s), s)
        }
    }

    func testARangeOutsideTheBytesIsNil() {
        let b = bytes("[1]")
        XCTAssertNil(JSONArrayReader.elements(inArray: 0..<4, of: b))
        XCTAssertNil(JSONArrayReader.elements(inArray: 1..<3, of: b), "not starting at the bracket")
    }
}
