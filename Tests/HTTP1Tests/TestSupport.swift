import XCTest

@testable import HTTP1

func bytes(_ string: String) -> [UInt8] { Array(string.utf8) }

/// Every request the parser yields, stopping at the first nil.
func drain(_ parser: inout HTTPRequestParser) throws(HTTPParseError) -> [HTTPRequest] {
    var requests: [HTTPRequest] = []
    while let request = try parser.next() { requests.append(request) }
    return requests
}

func drain(_ parser: inout HTTPResponseParser) throws(HTTPParseError) -> [HTTPResponseMessage] {
    var responses: [HTTPResponseMessage] = []
    while let response = try parser.next() { responses.append(response) }
    return responses
}

/// Feeds `input` to a fresh parser in one piece and expects `error`.
func assertRequestRejected(
    _ input: [UInt8], _ expected: HTTPParseError, status: Int, limits: HTTPParserLimits = .init(),
    file: StaticString = #filePath, line: UInt = #line
) {
    XCTAssertEqual(expected.status, status, "status mapping", file: file, line: line)
    var parser = HTTPRequestParser(limits: limits)
    parser.feed(input)
    do {
        let requests = try drain(&parser)
        XCTFail("accepted \(requests), expected \(expected)", file: file, line: line)
    } catch {
        XCTAssertEqual(error, expected, file: file, line: line)
        // The error is sticky: the stream's framing is lost.
        XCTAssertThrowsError(try parser.next(), file: file, line: line)
    }

    // One byte at a time, the same error and never a request before it.
    var byByte = HTTPRequestParser(limits: limits)
    for byte in input {
        byByte.feed(CollectionOfOne(byte))
        do {
            if let request = try byByte.next() {
                XCTFail("byte-wise: accepted \(request)", file: file, line: line)
                return
            }
        } catch {
            XCTAssertEqual(error, expected, "byte-wise", file: file, line: line)
            return
        }
    }
    XCTFail("byte-wise: no error after all bytes", file: file, line: line)
}

func assertRequestRejected(
    _ input: String, _ expected: HTTPParseError, status: Int, limits: HTTPParserLimits = .init(),
    file: StaticString = #filePath, line: UInt = #line
) {
    assertRequestRejected(bytes(input), expected, status: status, limits: limits, file: file, line: line)
}
