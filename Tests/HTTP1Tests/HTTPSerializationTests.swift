import XCTest

@testable import HTTP1

final class HTTPSerializationTests: XCTestCase {
    /// RFC 9110 §9.3.2: a HEAD response has GET's head, Content-Length included, and no content.
    func testAHEADResponseKeepsTheHeadAndOmitsTheContent() {
        let r = HTTPResponse(status: 200, headers: ["Content-Type": "text/plain"], body: Array("hello".utf8))
        let get = String(decoding: r.serialize(), as: UTF8.self)
        let head = String(decoding: r.serialize(omittingBody: true), as: UTF8.self)
        XCTAssertEqual(get, head + "hello")
        XCTAssertTrue(head.hasSuffix("Content-Length: 5\r\n\r\n"), head)
    }

    func testResponseWithBodyGetsContentLength() {
        let response = HTTPResponse(status: 200, headers: ["Content-Type": "application/json"], body: bytes("{}"))
        XCTAssertEqual(
            String(decoding: response.serialize(), as: UTF8.self),
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
    }

    func testEmptyBodyGetsZeroContentLength() {
        XCTAssertEqual(
            HTTPResponse(status: 404).serialize(), bytes("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"))
    }

    func testSwitchingProtocolsHasNoContentLength() {
        // RFC 6455 §1.3's answer.
        let response = HTTPResponse(
            status: 101,
            headers: [
                "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Accept": "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
            ])
        XCTAssertEqual(
            response.serialize(),
            bytes(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    + "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"))
    }

    func testNoContentAndNotModifiedHaveNoLengthNorBody() {
        XCTAssertEqual(HTTPResponse(status: 204, body: bytes("x")).serialize(), bytes("HTTP/1.1 204 No Content\r\n\r\n"))
        XCTAssertEqual(HTTPResponse(status: 304).serialize(), bytes("HTTP/1.1 304 Not Modified\r\n\r\n"))
    }

    func testExistingContentLengthOrTransferEncodingIsKept() {
        XCTAssertEqual(
            HTTPResponse(status: 200, headers: ["content-length": "3"], body: bytes("abc")).serialize(),
            bytes("HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nabc"))
        XCTAssertEqual(
            HTTPResponse(status: 200, headers: ["Transfer-Encoding": "chunked"], body: bytes("0\r\n\r\n")).serialize(),
            bytes("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"))
    }

    func testStatusesWithoutStandardPhrase() {
        XCTAssertEqual(HTTPResponse.reasonPhrase(599), "")
        XCTAssertEqual(HTTPResponse(status: 599).serialize(), bytes("HTTP/1.1 599 \r\nContent-Length: 0\r\n\r\n"))
        for (status, phrase) in [
            (400, "Bad Request"), (413, "Content Too Large"), (414, "URI Too Long"),
            (431, "Request Header Fields Too Large"), (501, "Not Implemented"), (505, "HTTP Version Not Supported"),
            (429, "Too Many Requests"), (503, "Service Unavailable"), (403, "Forbidden"),
        ] {
            XCTAssertEqual(HTTPResponse.reasonPhrase(status), phrase)
        }
    }

    func testControlCharactersInValuesCannotSplitTheMessage() {
        let response = HTTPResponse(status: 200, headers: ["X-Echo": "a\r\nSet-Cookie: evil"])
        XCTAssertEqual(
            response.serialize(), bytes("HTTP/1.1 200 OK\r\nX-Echo: a  Set-Cookie: evil\r\nContent-Length: 0\r\n\r\n"))
    }

    func testRequestSerialization() {
        XCTAssertEqual(
            serializeRequest(method: "GET", target: "/ws/api/v2", headers: ["Host": "test.deribit.com"], body: []),
            bytes("GET /ws/api/v2 HTTP/1.1\r\nHost: test.deribit.com\r\n\r\n"))
        XCTAssertEqual(
            serializeRequest(method: "POST", target: "/api/v2", headers: ["Host": "h"], body: bytes("{}")),
            bytes("POST /api/v2 HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n{}"))
        XCTAssertEqual(
            serializeRequest(method: "POST", target: "/", headers: ["Host": "h"], body: []),
            bytes("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"))
    }

    func testRoundTrips() throws {
        var requestParser = HTTPRequestParser()
        requestParser.feed(
            serializeRequest(method: "PUT", target: "/a?b=c", headers: ["Host": "h", "X-A": "1"], body: bytes("body")))
        let request = try XCTUnwrap(try requestParser.next())
        XCTAssertEqual(request.method, "PUT")
        XCTAssertEqual(request.query, "b=c")
        XCTAssertEqual(request.headers, ["Host": "h", "X-A": "1", "Content-Length": "4"])
        XCTAssertEqual(request.body, bytes("body"))

        var responseParser = HTTPResponseParser()
        responseParser.feed(HTTPResponse(status: 429, headers: ["Retry-After": "1"], body: bytes("slow")).serialize())
        let response = try XCTUnwrap(try responseParser.next())
        XCTAssertEqual(response.head, HTTPResponseHead(status: 429, reason: "Too Many Requests", headers: ["Retry-After": "1", "Content-Length": "4"]))
        XCTAssertEqual(response.body, bytes("slow"))
    }
}
