import XCTest

@testable import HTTP1

/// A request on the wire, what it parses to, and what must remain buffered after it.
private struct Vector {
    var name: String
    var wire: [UInt8]
    var requests: [HTTPRequest]
    var leftover: [UInt8] = []
}

private let jsonBody = bytes(#"{"jsonrpc":"2.0","id":7,"method":"public/get_time"}"#)
/// A masked client text frame "Hello" (RFC 6455 §5.7), sent right after the handshake.
private let helloFrame: [UInt8] = [0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58]

private let vectors: [Vector] = [
    Vector(
        name: "GET with query",
        wire: bytes(
            "GET /api/v2/public/get_order_book?instrument_name=BTC-PERPETUAL&depth=5 HTTP/1.1\r\n"
                + "Host: localhost:8080\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n"),
        requests: [
            HTTPRequest(
                method: "GET", target: "/api/v2/public/get_order_book?instrument_name=BTC-PERPETUAL&depth=5",
                path: "/api/v2/public/get_order_book", query: "instrument_name=BTC-PERPETUAL&depth=5",
                headers: ["Host": "localhost:8080", "User-Agent": "curl/8.5.0", "Accept": "*/*"])
        ]),
    Vector(
        name: "POST with Content-Length",
        wire: bytes(
            "POST /api/v2 HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: \(jsonBody.count)\r\n\r\n")
            + jsonBody,
        requests: [
            HTTPRequest(
                method: "POST", target: "/api/v2", path: "/api/v2",
                headers: ["Host": "gw", "Content-Type": "application/json", "Content-Length": "\(jsonBody.count)"],
                body: jsonBody)
        ]),
    Vector(
        name: "chunked with extension and trailer",
        wire: bytes(
            "POST /upload HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n"
                + "5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nX-Checksum: abc\r\n\r\n"),
        requests: [
            HTTPRequest(
                method: "POST", target: "/upload", path: "/upload",
                headers: ["Host": "gw", "Transfer-Encoding": "chunked"], body: bytes("hello world"))
        ]),
    Vector(
        name: "pipelined",
        wire: bytes(
            "GET /health HTTP/1.1\r\nHost: gw\r\n\r\n"
                + "POST /api/v2 HTTP/1.1\r\nHost: gw\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc"),
        requests: [
            HTTPRequest(method: "GET", target: "/health", path: "/health", headers: ["Host": "gw"]),
            HTTPRequest(
                method: "POST", target: "/api/v2", path: "/api/v2",
                headers: ["Host": "gw", "Content-Length": "3", "Connection": "close"], body: bytes("abc")),
        ]),
    Vector(
        name: "WebSocket upgrade with a frame behind it",
        // RFC 6455 §1.3's handshake.
        wire: bytes(
            "GET /ws/api/v2 HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n"
                + "Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                + "Origin: http://example.com\r\nSec-WebSocket-Version: 13\r\n\r\n") + helloFrame,
        requests: [
            HTTPRequest(
                method: "GET", target: "/ws/api/v2", path: "/ws/api/v2",
                headers: [
                    "Host": "server.example.com", "Upgrade": "websocket", "Connection": "keep-alive, Upgrade",
                    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Origin": "http://example.com",
                    "Sec-WebSocket-Version": "13",
                ])
        ],
        leftover: helloFrame),
]

final class HTTPRequestParserTests: XCTestCase {
    func testVectorsInOnePiece() throws {
        for vector in vectors {
            var parser = HTTPRequestParser()
            parser.feed(vector.wire)
            XCTAssertEqual(try drain(&parser), vector.requests, vector.name)
            XCTAssertEqual(parser.bufferedByteCount, vector.leftover.count, vector.name)
            XCTAssertEqual(parser.takeBufferedBytes(), vector.leftover, vector.name)
            XCTAssertEqual(parser.bufferedByteCount, 0, vector.name)
        }
    }

    func testVectorsAtEveryTruncationPoint() throws {
        for vector in vectors {
            let headEnd = vector.wire.count - vector.leftover.count
            for cut in 0...vector.wire.count {
                var parser = HTTPRequestParser()
                parser.feed(vector.wire[..<cut])
                let early = try drain(&parser)
                if vector.requests.count == 1 {
                    // A prefix of the only request never yields it.
                    XCTAssertEqual(early.isEmpty, cut < headEnd, "\(vector.name) cut \(cut)")
                }
                parser.feed(vector.wire[cut...])
                let late = try drain(&parser)
                XCTAssertEqual(early + late, vector.requests, "\(vector.name) cut \(cut)")
                XCTAssertEqual(parser.takeBufferedBytes(), vector.leftover, "\(vector.name) cut \(cut)")
            }
        }
    }

    func testVectorsOneByteAtATime() throws {
        for vector in vectors {
            var parser = HTTPRequestParser()
            var requests: [HTTPRequest] = []
            for byte in vector.wire {
                parser.feed(CollectionOfOne(byte))
                requests += try drain(&parser)
            }
            XCTAssertEqual(requests, vector.requests, vector.name)
            XCTAssertEqual(parser.takeBufferedBytes(), vector.leftover, vector.name)
        }
    }

    func testUpgradeRequestLeavesFrameBytesUntouched() throws {
        let vector = vectors.last!
        var parser = HTTPRequestParser()
        parser.feed(vector.wire)
        let request = try XCTUnwrap(try parser.next())
        XCTAssertTrue(request.headers.containsToken("upgrade", in: "connection"))
        XCTAssertEqual(request.headers["upgrade"], "websocket")
        XCTAssertEqual(parser.takeBufferedBytes(), helloFrame)
        // The parser starts over after the take.
        parser.feed(bytes("GET / HTTP/1.1\r\nHost: a\r\n\r\n"))
        XCTAssertEqual(try parser.next()?.path, "/")
    }

    // MARK: - Accepted variations

    func testBareLineFeedsAreAccepted() throws {
        var parser = HTTPRequestParser()
        parser.feed(bytes("GET /a HTTP/1.1\nHost: x\r\nAccept: */*\n\n"))
        let request = try XCTUnwrap(try parser.next())
        XCTAssertEqual(request.path, "/a")
        XCTAssertEqual(request.headers, ["Host": "x", "Accept": "*/*"])
    }

    func testEmptyLinesBeforeRequestLineAreSkipped() throws {
        var parser = HTTPRequestParser()
        parser.feed(bytes("\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"))
        XCTAssertEqual(try parser.next()?.method, "GET")
        XCTAssertEqual(parser.bufferedByteCount, 0)
    }

    func testHeaderValuesAreTrimmedAndKeepInnerSpaces() throws {
        var parser = HTTPRequestParser()
        parser.feed(bytes("GET / HTTP/1.1\r\nHost:x\r\nX-A: \t a  b \t\r\nX-Empty:\r\nX-Obs: caf\u{E9}\r\n\r\n"))
        let request = try XCTUnwrap(try parser.next())
        XCTAssertEqual(request.headers["host"], "x")
        XCTAssertEqual(request.headers["x-a"], "a  b")
        XCTAssertEqual(request.headers["X-EMPTY"], "")
        XCTAssertEqual(request.headers["x-obs"], "caf\u{E9}")
    }

    func testHTTP10AndKeepAlive() throws {
        var parser = HTTPRequestParser()
        parser.feed(bytes("GET / HTTP/1.0\r\n\r\n"))
        parser.feed(bytes("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"))
        parser.feed(bytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
        parser.feed(bytes("GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, Close\r\n\r\n"))
        let requests = try drain(&parser)
        XCTAssertEqual(requests.map(\.versionMinor), [0, 0, 1, 1])
        XCTAssertEqual(requests.map(\.keepAlive), [false, true, true, false])
    }

    func testRequestTargetForms() throws {
        var parser = HTTPRequestParser()
        parser.feed(bytes("GET http://example.com:80/a/b?x=1 HTTP/1.1\r\nHost: example.com\r\n\r\n"))
        parser.feed(bytes("GET HTTPS://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n"))
        parser.feed(bytes("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n"))
        parser.feed(bytes("GET /p? HTTP/1.1\r\nHost: x\r\n\r\n"))
        let requests = try drain(&parser)
        XCTAssertEqual(requests.map(\.path), ["/a/b", "/", "*", "/p"])
        XCTAssertEqual(requests.map(\.query), ["x=1", nil, nil, ""])
        XCTAssertEqual(requests[0].target, "http://example.com:80/a/b?x=1")
    }

    func testIdenticalContentLengthsAreAccepted() throws {
        var parser = HTTPRequestParser()
        parser.feed(bytes("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2, 2\r\nContent-Length: 2\r\n\r\nhi"))
        XCTAssertEqual(try parser.next()?.body, bytes("hi"))
    }

    func testZeroContentLengthAndUppercaseChunkSizes() throws {
        var parser = HTTPRequestParser()
        parser.feed(bytes("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"))
        parser.feed(bytes("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\nA \r\n0123456789\r\n0\r\n\r\n"))
        let requests = try drain(&parser)
        XCTAssertEqual(requests.map(\.body), [[], bytes("0123456789")])
    }

    func testLimitsAtTheirExactValueAreAccepted() throws {
        let limits = HTTPParserLimits(maxRequestLineBytes: 16, maxHeaderBytes: 22, maxHeaderCount: 2, maxBodyBytes: 4)
        // "GET /12 HTTP/1.1" is 16 bytes; the field section "Host: x\r\nA: 123456\r\n\r\n" is 22.
        var parser = HTTPRequestParser(limits: limits)
        parser.feed(bytes("GET /12 HTTP/1.1\r\nHost: x\r\nA: 123456\r\n\r"))
        XCTAssertNil(try parser.next())
        parser.feed(bytes("\n"))
        XCTAssertEqual(try parser.next()?.headers.count, 2)
        var parser4 = HTTPRequestParser(limits: HTTPParserLimits(maxBodyBytes: 4))
        parser4.feed(bytes("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n2\r\ncd\r\n0\r\n\r\n"))
        XCTAssertEqual(try parser4.next()?.body, bytes("abcd"))
    }

    func testBufferIsCompactedAcrossManyRequests() throws {
        var parser = HTTPRequestParser()
        let one = bytes("GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
        for _ in 0..<10_000 {
            parser.feed(one)
            XCTAssertNotNil(try parser.next())
        }
        XCTAssertEqual(parser.bufferedByteCount, 0)
    }

    // MARK: - Rejections

    func testBadMethod() {
        assertRequestRejected("GE@T / HTTP/1.1\r\nHost: x\r\n\r\n", .invalidMethod, status: 400)
        assertRequestRejected(" / HTTP/1.1\r\nHost: x\r\n\r\n", .invalidMethod, status: 400)
        assertRequestRejected("G\u{0}T / HTTP/1.1\r\nHost: x\r\n\r\n", .invalidMethod, status: 400)
    }

    func testMalformedRequestLine() {
        assertRequestRejected("GET\r\nHost: x\r\n\r\n", .invalidRequestLine, status: 400)
        assertRequestRejected("GET /\r\nHost: x\r\n\r\n", .invalidRequestLine, status: 400)
    }

    func testBadRequestTarget() {
        assertRequestRejected("GET index.html HTTP/1.1\r\nHost: x\r\n\r\n", .invalidRequestTarget, status: 400)
        assertRequestRejected("GET * HTTP/1.1\r\nHost: x\r\n\r\n", .invalidRequestTarget, status: 400)
        assertRequestRejected("CONNECT example.com:443 HTTP/1.1\r\nHost: x\r\n\r\n", .invalidRequestTarget, status: 400)
        assertRequestRejected("GET  / HTTP/1.1\r\nHost: x\r\n\r\n", .invalidRequestTarget, status: 400)
        assertRequestRejected("GET /a\u{7F} HTTP/1.1\r\nHost: x\r\n\r\n", .invalidRequestTarget, status: 400)
        assertRequestRejected("GET /caf\u{E9} HTTP/1.1\r\nHost: x\r\n\r\n", .invalidRequestTarget, status: 400)
        assertRequestRejected("GET /a\tb HTTP/1.1\r\nHost: x\r\n\r\n", .invalidRequestTarget, status: 400)
    }

    func testBadVersion() {
        assertRequestRejected("GET / HTTP/1.x\r\nHost: x\r\n\r\n", .invalidVersion, status: 400)
        assertRequestRejected("GET / http/1.1\r\nHost: x\r\n\r\n", .invalidVersion, status: 400)
        assertRequestRejected("GET / HTTP/11\r\nHost: x\r\n\r\n", .invalidVersion, status: 400)
        assertRequestRejected("GET / HTTP/1.1 \r\nHost: x\r\n\r\n", .invalidVersion, status: 400)
        assertRequestRejected("GET / HTTP/1.1\rHost: x\r\n\r\n", .invalidVersion, status: 400)
        assertRequestRejected("GET / HTTP/1.1 extra\r\nHost: x\r\n\r\n", .invalidVersion, status: 400)
    }

    func testUnsupportedVersion() {
        assertRequestRejected("GET / HTTP/2.0\r\nHost: x\r\n\r\n", .unsupportedVersion, status: 505)
        assertRequestRejected("GET / HTTP/1.2\r\nHost: x\r\n\r\n", .unsupportedVersion, status: 505)
        assertRequestRejected("GET / HTTP/0.9\r\n\r\n", .unsupportedVersion, status: 505)
    }

    func testHost() {
        assertRequestRejected("GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", .missingHost, status: 400)
        assertRequestRejected("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", .duplicateHost, status: 400)
    }

    func testHeaderLineSyntax() {
        assertRequestRejected("GET / HTTP/1.1\r\nHost : x\r\n\r\n", .whitespaceBeforeColon, status: 400)
        assertRequestRejected("GET / HTTP/1.1\r\nHost\t: x\r\n\r\n", .whitespaceBeforeColon, status: 400)
        assertRequestRejected("GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n  b\r\n\r\n", .obsoleteLineFolding, status: 400)
        assertRequestRejected("GET / HTTP/1.1\r\n\tHost: x\r\n\r\n", .obsoleteLineFolding, status: 400)
        assertRequestRejected("GET / HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n", .invalidHeaderLine, status: 400)
        assertRequestRejected("GET / HTTP/1.1\r\nHost: x\r\n: empty\r\n\r\n", .invalidHeaderName, status: 400)
        assertRequestRejected("GET / HTTP/1.1\r\nHost: x\r\nX(A): 1\r\n\r\n", .invalidHeaderName, status: 400)
        assertRequestRejected("GET / HTTP/1.1\r\nHost: x\r\nX A: 1\r\n\r\n", .invalidHeaderName, status: 400)
    }

    func testControlCharactersInHeaderValues() {
        assertRequestRejected("GET / HTTP/1.1\r\nHost: x\r\nX-A: a\u{0}b\r\n\r\n", .invalidHeaderValue, status: 400)
        assertRequestRejected("GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n", .invalidHeaderValue, status: 400)
        assertRequestRejected("GET / HTTP/1.1\r\nHost: x\r\nX-A: a\u{7F}\r\n\r\n", .invalidHeaderValue, status: 400)
        assertRequestRejected("GET / HTTP/1.1\r\nHost: x\r\nX-A: \u{1B}[31m\r\n\r\n", .invalidHeaderValue, status: 400)
    }

    func testContentLength() {
        let head = "POST / HTTP/1.1\r\nHost: x\r\n"
        for bad in ["abc", "-1", "+5", "", "1 2", "0x10", "5,", "1.0"] {
            assertRequestRejected(head + "Content-Length: \(bad)\r\n\r\n", .invalidContentLength, status: 400)
        }
        assertRequestRejected(head + "Content-Length: 5, 6\r\n\r\n", .conflictingContentLength, status: 400)
        assertRequestRejected(
            head + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", .conflictingContentLength, status: 400)
    }

    func testTransferEncoding() {
        let head = "POST / HTTP/1.1\r\nHost: x\r\n"
        assertRequestRejected(
            head + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            .contentLengthWithTransferEncoding, status: 400)
        assertRequestRejected(
            head + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
            .contentLengthWithTransferEncoding, status: 400)
        assertRequestRejected(head + "Transfer-Encoding: gzip\r\n\r\n", .unsupportedTransferEncoding, status: 501)
        assertRequestRejected(
            head + "Transfer-Encoding: gzip, chunked\r\n\r\n", .unsupportedTransferEncoding, status: 501)
        assertRequestRejected(
            head + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", .invalidTransferEncoding,
            status: 400)
        assertRequestRejected(head + "Transfer-Encoding: ,\r\n\r\n", .invalidTransferEncoding, status: 400)
        assertRequestRejected(
            "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", .invalidTransferEncoding, status: 400)
    }

    func testChunkedSyntax() {
        let head = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        assertRequestRejected(head + "zz\r\n", .invalidChunkSize, status: 400)
        assertRequestRejected(head + "\r\n", .invalidChunkSize, status: 400)
        assertRequestRejected(head + "5 x\r\nhello\r\n", .invalidChunkSize, status: 400)
        assertRequestRejected(head + "5;a=\u{0}\r\nhello\r\n", .invalidChunkSize, status: 400)
        assertRequestRejected(head + "5\r\nhelloXX\r\n", .invalidChunkTerminator, status: 400)
        assertRequestRejected(head + "0\r\nBad Trailer: x\r\n\r\n", .invalidHeaderName, status: 400)
        assertRequestRejected(
            head + "1;" + String(repeating: "e", count: 2000) + "\r\n", .chunkLineTooLong, status: 400)
    }

    func testRequestLineOverLimitFailsWithoutCRLF() throws {
        assertRequestRejected(
            "GET /" + String(repeating: "a", count: 9000), .requestLineTooLong, status: 414)

        // Exactly when the limit is passed: a pending CR is still allowed, one more byte is not.
        let limits = HTTPParserLimits(maxRequestLineBytes: 32)
        var parser = HTTPRequestParser(limits: limits)
        parser.feed(bytes("GET /" + String(repeating: "a", count: 27) + "\r"))  // 32 + CR
        XCTAssertNil(try parser.next())
        parser.feed(bytes("b"))
        XCTAssertThrowsError(try parser.next()) { XCTAssertEqual($0 as? HTTPParseError, .requestLineTooLong) }

        // A complete line one byte too long, ended by a bare LF.
        assertRequestRejected(
            "GET /" + String(repeating: "a", count: 28) + "\nHost: x\n\n", .requestLineTooLong, status: 414,
            limits: limits)
    }

    func testHeaderBytesOverLimit() {
        assertRequestRejected(
            "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + String(repeating: "v", count: 17_000),
            .headersTooLarge, status: 431)
        let limits = HTTPParserLimits(maxHeaderBytes: 64)
        var many = "GET / HTTP/1.1\r\nHost: x\r\n"
        for i in 0..<10 { many += "X-\(i): 1234\r\n" }
        assertRequestRejected(many + "\r\n", .headersTooLarge, status: 431, limits: limits)
        // 64 bytes of field lines: the empty line ending the section passes the limit.
        assertRequestRejected(
            "GET / HTTP/1.1\r\nHost: x\r\nA: " + String(repeating: "v", count: 50) + "\r\n\r\n", .headersTooLarge,
            status: 431, limits: limits)
    }

    func testTooManyHeaders() throws {
        var request = "GET / HTTP/1.1\r\nHost: x\r\n"
        for i in 0..<100 { request += "X-\(i): v\r\n" }
        assertRequestRejected(request + "\r\n", .tooManyHeaders, status: 431)

        let limits = HTTPParserLimits(maxHeaderCount: 3)
        var parser = HTTPRequestParser(limits: limits)
        parser.feed(bytes("GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\n\r\n"))
        XCTAssertEqual(try parser.next()?.headers.count, 3)
        assertRequestRejected(
            "GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", .tooManyHeaders, status: 431, limits: limits)
    }

    func testBodyOverLimit() throws {
        // Declared too large: rejected at the end of the head, before any body byte.
        assertRequestRejected(
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1048577\r\n\r\n", .bodyTooLarge, status: 413)
        assertRequestRejected(
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999999\r\n\r\n", .bodyTooLarge,
            status: 413)

        let limits = HTTPParserLimits(maxBodyBytes: 1000)
        let head = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        // Growing too large: the second chunk-size line already passes the limit.
        assertRequestRejected(
            head + "258\r\n" + String(repeating: "a", count: 600) + "\r\n258\r\n", .bodyTooLarge, status: 413,
            limits: limits)
        assertRequestRejected(head + "FFFFFFFFFFFFFFFFFFFFFFFFFFFF\r\n", .bodyTooLarge, status: 413)
        assertRequestRejected(head + "100001\r\n", .bodyTooLarge, status: 413)
    }

    func testErrorStatusMapping() {
        XCTAssertEqual(HTTPParseError.requestLineTooLong.status, 414)
        XCTAssertEqual(HTTPParseError.headersTooLarge.status, 431)
        XCTAssertEqual(HTTPParseError.tooManyHeaders.status, 431)
        XCTAssertEqual(HTTPParseError.bodyTooLarge.status, 413)
        XCTAssertEqual(HTTPParseError.unsupportedTransferEncoding.status, 501)
        XCTAssertEqual(HTTPParseError.unsupportedVersion.status, 505)
        XCTAssertEqual(HTTPParseError.missingHost.status, 400)
    }
}
