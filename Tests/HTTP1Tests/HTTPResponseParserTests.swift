import XCTest

@testable import HTTP1

/// A server text frame "hi" (RFC 6455 §5.7, unmasked).
private let serverFrame: [UInt8] = [0x81, 0x02, 0x68, 0x69]

private let switchingProtocols = bytes(
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        + "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")

private struct Vector {
    var name: String
    var wire: [UInt8]
    var responses: [HTTPResponseMessage]
    var leftover: [UInt8] = []
}

private let vectors: [Vector] = [
    Vector(
        name: "101 with a frame behind it",
        wire: switchingProtocols + serverFrame,
        responses: [
            HTTPResponseMessage(
                head: HTTPResponseHead(
                    status: 101, reason: "Switching Protocols",
                    headers: [
                        "Upgrade": "websocket", "Connection": "Upgrade",
                        "Sec-WebSocket-Accept": "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
                    ]))
        ],
        leftover: serverFrame),
    Vector(
        name: "200 with Content-Length",
        wire: bytes("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"ok\":true}"),
        responses: [
            HTTPResponseMessage(
                head: HTTPResponseHead(
                    status: 200, reason: "OK", headers: ["Content-Type": "application/json", "Content-Length": "11"]),
                body: bytes("{\"ok\":true}"))
        ]),
    Vector(
        name: "chunked",
        wire: bytes("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\n"),
        responses: [
            HTTPResponseMessage(
                head: HTTPResponseHead(status: 200, reason: "OK", headers: ["Transfer-Encoding": "chunked"]),
                body: bytes("Wikipedia"))
        ]),
    Vector(
        name: "204 and 304 have no body, then a 404",
        wire: bytes(
            "HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n"
                + "HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n"),
        responses: [
            HTTPResponseMessage(head: HTTPResponseHead(status: 204, reason: "No Content")),
            HTTPResponseMessage(head: HTTPResponseHead(status: 304, reason: "Not Modified", headers: ["Content-Length": "10"])),
            HTTPResponseMessage(
                head: HTTPResponseHead(status: 404, reason: "Not Found", versionMinor: 0, headers: ["Content-Length": "0"])),
        ]),
]

final class HTTPResponseParserTests: XCTestCase {
    func testVectorsAtEveryTruncationPoint() throws {
        for vector in vectors {
            let end = vector.wire.count - vector.leftover.count
            for cut in 0...vector.wire.count {
                var parser = HTTPResponseParser()
                parser.feed(vector.wire[..<cut])
                let early = try drain(&parser)
                if vector.responses.count == 1 {
                    XCTAssertEqual(early.isEmpty, cut < end, "\(vector.name) cut \(cut)")
                }
                parser.feed(vector.wire[cut...])
                let late = try drain(&parser)
                XCTAssertEqual(early + late, vector.responses, "\(vector.name) cut \(cut)")
                XCTAssertEqual(parser.takeBufferedBytes(), vector.leftover, "\(vector.name) cut \(cut)")
            }
        }
    }

    func testVectorsOneByteAtATime() throws {
        for vector in vectors {
            var parser = HTTPResponseParser()
            var responses: [HTTPResponseMessage] = []
            for byte in vector.wire {
                parser.feed(CollectionOfOne(byte))
                responses += try drain(&parser)
            }
            XCTAssertEqual(responses, vector.responses, vector.name)
            XCTAssertEqual(parser.bufferedByteCount, vector.leftover.count, vector.name)
            XCTAssertEqual(parser.takeBufferedBytes(), vector.leftover, vector.name)
        }
    }

    func testSwitchingProtocolsLeavesFrameForWebSocket() throws {
        var parser = HTTPResponseParser()
        parser.feed(switchingProtocols + serverFrame)
        let response = try XCTUnwrap(try parser.next())
        XCTAssertEqual(response.status, 101)
        XCTAssertTrue(response.headers.containsToken("Upgrade", in: "connection"))
        XCTAssertEqual(response.headers["sec-websocket-accept"], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        XCTAssertEqual(parser.takeBufferedBytes(), serverFrame)
    }

    func testBodyUntilEndOfStream() throws {
        var parser = HTTPResponseParser()
        parser.feed(bytes("HTTP/1.0 200 OK\r\nServer: old\r\n\r\nabc"))
        XCTAssertNil(try parser.next())
        parser.feed(bytes("def"))
        XCTAssertNil(try parser.next())
        let response = try XCTUnwrap(try parser.endOfStream())
        XCTAssertEqual(response.body, bytes("abcdef"))
        XCTAssertEqual(response.head.versionMinor, 0)
        XCTAssertNil(try parser.endOfStream())
    }

    func testEndOfStreamMidMessageIsAnError() {
        var parser = HTTPResponseParser()
        parser.feed(bytes("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab"))
        XCTAssertNoThrow(XCTAssertNil(try parser.next()))
        XCTAssertThrowsError(try parser.endOfStream()) {
            XCTAssertEqual($0 as? HTTPParseError, .unexpectedEndOfStream)
        }

        var inHead = HTTPResponseParser()
        inHead.feed(bytes("HTTP/1.1 200 O"))
        XCTAssertThrowsError(try inHead.endOfStream())
    }

    func testStatusLineVariants() throws {
        var parser = HTTPResponseParser()
        parser.feed(bytes("HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\nHTTP/1.1 503\r\nContent-Length: 0\r\n\r\n"))
        parser.feed(bytes("HTTP/1.1 418 I'm a teapot\tok\r\nContent-Length: 0\r\n\r\n"))
        let responses = try drain(&parser)
        XCTAssertEqual(responses.map(\.status), [200, 503, 418])
        XCTAssertEqual(responses.map(\.head.reason), ["", "", "I'm a teapot\tok"])
    }

    func testBadStatusLines() {
        for line in [
            "HTTP/1.1 20 OK", "HTTP/1.1 2000 OK", "HTTP/1.1 abc OK", "HTTP/1.1 099 Low", "HTTP/1.1", "HTTP/1.1 200 O\u{0}K",
        ] {
            var parser = HTTPResponseParser()
            parser.feed(bytes(line + "\r\n\r\n"))
            XCTAssertThrowsError(try parser.next(), line) { XCTAssertEqual($0 as? HTTPParseError, .invalidStatusLine, line) }
        }
        var version = HTTPResponseParser()
        version.feed(bytes("HTTP/2.0 200 OK\r\n\r\n"))
        XCTAssertThrowsError(try version.next()) { XCTAssertEqual($0 as? HTTPParseError, .unsupportedVersion) }
    }

    func testResponseFramingErrors() {
        let cases: [(String, HTTPParseError)] = [
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", .unsupportedTransferEncoding),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", .contentLengthWithTransferEncoding),
            ("HTTP/1.1 200 OK\r\nContent-Length: 2000000\r\n\r\n", .bodyTooLarge),
            ("HTTP/1.1 200 OK\r\nBad : x\r\n\r\n", .whitespaceBeforeColon),
        ]
        for (wire, expected) in cases {
            var parser = HTTPResponseParser()
            parser.feed(bytes(wire))
            XCTAssertThrowsError(try parser.next(), wire) { XCTAssertEqual($0 as? HTTPParseError, expected, wire) }
        }
    }

    func testStatusLineOverLimit() {
        var parser = HTTPResponseParser(limits: HTTPParserLimits(maxRequestLineBytes: 20))
        parser.feed(bytes("HTTP/1.1 200 " + String(repeating: "x", count: 30)))
        XCTAssertThrowsError(try parser.next()) { XCTAssertEqual($0 as? HTTPParseError, .invalidStatusLine) }
    }
}
