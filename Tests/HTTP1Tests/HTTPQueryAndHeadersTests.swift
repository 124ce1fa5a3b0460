import XCTest

@testable import HTTP1

final class HTTPQueryTests: XCTestCase {
    private func pairs(_ query: String) -> [String] {
        HTTPQuery.parse(query).map { "\($0.name)=\($0.value)" }
    }

    /// The gateway's upstream frames must be valid UTF-8: a query that decodes to anything else
    /// is refused whole, never passed on with replacement characters.
    func testParseValidUTF8RefusesInvalidBytesAndAgreesWithParseOtherwise() {
        for q in ["a=1&b=x%20y&c&d=", "label=%E2%82%AC+1", "", "x=%zz", "x=%"] {
            let strict = HTTPQuery.parseValidUTF8(q)
            XCTAssertNotNil(strict, q)
            XCTAssertEqual(strict?.map(\.name), HTTPQuery.parse(q).map(\.name), q)
            XCTAssertEqual(strict?.map(\.value), HTTPQuery.parse(q).map(\.value), q)
        }
        XCTAssertEqual(HTTPQuery.parseValidUTF8("label=%E2%82%AC")?.first?.value, "€")
        for q in ["label=%FF", "a=1&b=%C3", "%80=x", "x=%ED%A0%80", "x=%C0%AF"] {
            XCTAssertNil(HTTPQuery.parseValidUTF8(q), "\(q): invalid UTF-8 (stray, truncated, surrogate, overlong)")
        }
    }

    func testPlainPairsInOrder() {
        XCTAssertEqual(
            pairs("instrument_name=BTC-PERPETUAL&depth=5&depth=10"),
            ["instrument_name=BTC-PERPETUAL", "depth=5", "depth=10"])
    }

    func testPercentAndPlus() {
        XCTAssertEqual(pairs("q=a%20b+c&sum=1%2B1&%C3%A9=%E2%82%AC"), ["q=a b c", "sum=1+1", "é=€"])
        XCTAssertEqual(pairs("a%3Db=c%26d"), ["a=b=c&d"])
    }

    func testInvalidEscapesAreKeptLiterally() {
        XCTAssertEqual(pairs("a=%zz&b=%4&c=%&d=100%"), ["a=%zz", "b=%4", "c=%", "d=100%"])
        XCTAssertEqual(pairs("e=%%41"), ["e=%A"])
    }

    func testMissingValuesAndEmptyPieces() {
        XCTAssertEqual(HTTPQuery.parse("").count, 0)
        XCTAssertEqual(HTTPQuery.parse("&&").count, 0)
        XCTAssertEqual(pairs("flag&x=&=v&&y=1=2"), ["flag=", "x=", "=v", "y=1=2"])
    }

    func testInvalidUTF8BecomesReplacementCharacter() {
        XCTAssertEqual(pairs("a=%FF"), ["a=\u{FFFD}"])
    }

    func testPercentDecodeKeepsPlusInPaths() {
        XCTAssertEqual(HTTPQuery.percentDecode("/a+b%2Fc"), "/a+b/c")
        XCTAssertEqual(HTTPQuery.percentDecode("a+b", plusAsSpace: true), "a b")
    }
}

final class HTTPHeadersTests: XCTestCase {
    func testLookupIsCaseInsensitiveAndOrdered() {
        var headers: HTTPHeaders = ["Host": "a", "Set-Cookie": "1"]
        headers.add(name: "set-cookie", value: "2")
        XCTAssertEqual(headers["HOST"], "a")
        XCTAssertEqual(headers["set-COOKIE"], "1")
        XCTAssertEqual(headers.values("Set-Cookie"), ["1", "2"])
        XCTAssertNil(headers["Missing"])
        XCTAssertTrue(headers.contains("host"))
        XCTAssertFalse(headers.contains("hos"))
        XCTAssertEqual(headers.map(\.name), ["Host", "Set-Cookie", "set-cookie"])
        XCTAssertEqual(headers.count, 3)
    }

    func testContainsToken() {
        let headers: HTTPHeaders = ["Connection": "keep-alive, Upgrade", "Connection": " ,close ,", "Upgrade": "websocket"]
        XCTAssertTrue(headers.containsToken("upgrade", in: "connection"))
        XCTAssertTrue(headers.containsToken("Keep-Alive", in: "Connection"))
        XCTAssertTrue(headers.containsToken("close", in: "Connection"))
        XCTAssertFalse(headers.containsToken("keep", in: "Connection"))
        XCTAssertFalse(headers.containsToken("websocket", in: "Connection"))
        XCTAssertFalse(headers.containsToken("upgrade", in: "Missing"))
    }

    func testReplaceAndRemove() {
        var headers: HTTPHeaders = ["A": "1", "B": "2", "a": "3"]
        headers.replaceOrAdd(name: "A", value: "9")
        XCTAssertEqual(headers, ["A": "9", "B": "2"])
        headers.replaceOrAdd(name: "C", value: "4")
        headers.remove(name: "b")
        XCTAssertEqual(headers, ["A": "9", "C": "4"])
    }
}
