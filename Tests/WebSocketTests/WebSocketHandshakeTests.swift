import XCTest
@testable import WebSocket

final class SHA1Tests: XCTestCase {
    func testFIPSVectors() {
        XCTAssertEqual(hex(SHA1.hash(Array("abc".utf8))), "a9993e364706816aba3e25717850c26c9cd0d89d")
        XCTAssertEqual(hex(SHA1.hash([UInt8]())), "da39a3ee5e6b4b0d3255bfef95601890afd80709")
        XCTAssertEqual(hex(SHA1.hash(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))),
                       "84983e441c3bd26ebaae4aa1f95129e5e54670f1")
    }

    func testPaddingBoundaries() {
        let expected: [Int: String] = [
            55: "c1c8bbdc22796e28c0e15163d20899b65621d65a", 56: "c2db330f6083854c99d4b5bfb6e8f29f201be699",
            63: "03f09f5b158a7a8cdad920bddc29b81c18a551f5", 64: "0098ba824b5c16427bd7a1122a5a442a25ec644d",
            65: "11655326c708d70319be2610e8a57d9a5b959d3b", 119: "ee971065aaa017e0632a8ca6c77bb3bf8b1dfc56",
            120: "f34c1488385346a55709ba056ddd08280dd4c6d6",
        ]
        for (length, digest) in expected {
            XCTAssertEqual(hex(SHA1.hash([UInt8](repeating: 0x61, count: length))), digest, "length \(length)")
        }
    }

    func testMillionAsInPieces() {
        var sha = SHA1()
        for _ in 0..<1000 { sha.update([UInt8](repeating: 0x61, count: 1000)) }
        XCTAssertEqual(hex(sha.finalize()), "34aa973cd4c4daa4f61eeb2bdbad27316534016f")
    }
}

final class Base64Tests: XCTestCase {
    // RFC 4648 §10.
    let vectors = [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="),
                   ("fooba", "Zm9vYmE="), ("foobar", "Zm9vYmFy")]

    func testRFC4648Vectors() {
        for (plain, encoded) in vectors {
            XCTAssertEqual(Base64.encode(Array(plain.utf8)), encoded)
            XCTAssertEqual(Base64.decode(encoded), Array(plain.utf8))
        }
        XCTAssertEqual(Base64.encode([0xfb, 0xff, 0xbf]), "+/+/")
    }

    func testStrictDecoding() {
        for bad in ["Zg=", "Zg", "Zh==", "Zm9=", "Z===", "====", "Zm=v", "Zg==Zg==", "Zm9v\n", " Zm9v", "Zm9*"] {
            XCTAssertNil(Base64.decode(bad), bad)
        }
    }
}

final class WebSocketHandshakeTests: XCTestCase {
    typealias Handshake = WebSocketHandshake

    // RFC 6455 §1.3 / §4.2.2.
    let rfcKey = "dGhlIHNhbXBsZSBub25jZQ=="
    let rfcAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

    var rfcRequestHeaders: [(name: String, value: String)] {
        [("Host", "server.example.com"), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
         ("Sec-WebSocket-Key", rfcKey), ("Origin", "http://example.com"),
         ("Sec-WebSocket-Protocol", "chat, superchat"), ("Sec-WebSocket-Version", "13")]
    }

    private func replacing(_ name: String, with value: String?) -> [(name: String, value: String)] {
        var headers = rfcRequestHeaders.filter { $0.name != name }
        if let value { headers.append((name: name, value: value)) }
        return headers
    }

    private func validate(method: String = "GET", minor: Int = 1,
                          _ headers: [(name: String, value: String)]) -> Result<String, WebSocketHandshakeError> {
        Handshake.validateUpgradeRequest(method: method, versionMinor: minor, headers: headers)
    }

    func testAcceptValueFromTheRFC() {
        XCTAssertEqual(Handshake.guid, "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")
        XCTAssertEqual(Handshake.acceptValue(forKey: rfcKey), rfcAccept)
    }

    func testValidRequests() {
        XCTAssertEqual(validate(rfcRequestHeaders), .success(rfcAccept))
        // Case-insensitive names and tokens, token lists (Firefox sends "keep-alive, Upgrade"),
        // optional whitespace.
        let variant: [(name: String, value: String)] = [
            ("host", "x"), ("UPGRADE", "WebSocket"), ("connection", "keep-alive, Upgrade"),
            ("sec-websocket-key", " \(rfcKey)\t"), ("SEC-WEBSOCKET-VERSION", " 13 "),
        ]
        XCTAssertEqual(validate(variant), .success(rfcAccept))
        // Connection split over two header lines.
        let split = replacing("Connection", with: "keep-alive") + [("Connection", "upgrade")]
        XCTAssertEqual(validate(split), .success(rfcAccept))
    }

    func testRefusals() {
        let cases: [(Result<String, WebSocketHandshakeError>, WebSocketHandshakeError, Int)] = [
            (validate(method: "POST", rfcRequestHeaders), .methodNotGET, 400),
            (validate(minor: 0, rfcRequestHeaders), .httpVersionBelow1_1, 400),
            (validate(replacing("Upgrade", with: nil)), .missingUpgradeWebSocket, 400),
            (validate(replacing("Upgrade", with: "h2c")), .missingUpgradeWebSocket, 400),
            (validate(replacing("Connection", with: nil)), .missingConnectionUpgrade, 400),
            (validate(replacing("Connection", with: "keep-alive")), .missingConnectionUpgrade, 400),
            (validate(replacing("Connection", with: "upgraded")), .missingConnectionUpgrade, 400),
            (validate(replacing("Sec-WebSocket-Version", with: "8")), .unsupportedVersion, 426),
            (validate(replacing("Sec-WebSocket-Version", with: nil)), .unsupportedVersion, 426),
            (validate(replacing("Sec-WebSocket-Version", with: "13, 8")), .unsupportedVersion, 426),
            (validate(replacing("Sec-WebSocket-Key", with: nil)), .invalidKey, 400),
            (validate(replacing("Sec-WebSocket-Key", with: "")), .invalidKey, 400),
            (validate(replacing("Sec-WebSocket-Key", with: "not base64!")), .invalidKey, 400),
            (validate(replacing("Sec-WebSocket-Key", with: "AAAAAAAAAAAAAAAAAAAA")), .invalidKey, 400),  // 15 bytes
            (validate(replacing("Sec-WebSocket-Key", with: "AAAAAAAAAAAAAAAAAAAAAAAAAA==")), .invalidKey, 400),  // 19 bytes
            (validate(rfcRequestHeaders + [("Sec-WebSocket-Key", rfcKey)]), .invalidKey, 400),
        ]
        for (index, (result, error, status)) in cases.enumerated() {
            XCTAssertEqual(result, .failure(error), "case \(index)")
            XCTAssertEqual(error.status, status)
        }
        let versionHeaders = WebSocketHandshakeError.unsupportedVersion.responseHeaders
        XCTAssertEqual(versionHeaders.map(\.name), ["Sec-WebSocket-Version"])
        XCTAssertEqual(versionHeaders.map(\.value), ["13"])
        XCTAssertTrue(WebSocketHandshakeError.invalidKey.responseHeaders.isEmpty)
    }

    func testServerResponseHeaders() {
        let headers = Handshake.serverResponseHeaders(accept: rfcAccept)
        XCTAssertEqual(headers.map(\.name), ["Upgrade", "Connection", "Sec-WebSocket-Accept"])
        XCTAssertEqual(headers.map(\.value), ["websocket", "Upgrade", rfcAccept])
    }

    func testClientKeyAndRequestHeaders() {
        let key = Handshake.makeClientKey(randomBytes: Array("the sample nonce".utf8))
        XCTAssertEqual(key, rfcKey)
        let headers = Handshake.clientRequestHeaders(host: "www.deribit.com", key: key, origin: nil)
        XCTAssertEqual(headers.map(\.name), ["Host", "Upgrade", "Connection", "Sec-WebSocket-Key", "Sec-WebSocket-Version"])
        XCTAssertEqual(headers.map(\.value), ["www.deribit.com", "websocket", "Upgrade", rfcKey, "13"])
        let withOrigin = Handshake.clientRequestHeaders(host: "h:8080", key: key, origin: "http://o")
        XCTAssertEqual(withOrigin.last?.name, "Origin")
        XCTAssertEqual(withOrigin.last?.value, "http://o")
    }

    func testClientAndServerAgree() {
        let key = Handshake.makeClientKey(randomBytes: (0..<16).map { _ in UInt8.random(in: 0...255) })
        let request = Handshake.clientRequestHeaders(host: "127.0.0.1:8777", key: key, origin: nil)
        guard case .success(let accept) = validate(request) else { return XCTFail("request refused") }
        let response = Handshake.serverResponseHeaders(accept: accept)
        XCTAssertNoThrow(try Handshake.validateServerResponse(status: 101, headers: response, key: key).get())
    }

    func testServerResponseValidation() {
        func check(_ status: Int, _ headers: [(name: String, value: String)]) -> WebSocketHandshakeError? {
            if case .failure(let error) = Handshake.validateServerResponse(status: status, headers: headers, key: rfcKey) {
                return error
            }
            return nil
        }
        let good: [(name: String, value: String)] = [("Upgrade", "websocket"), ("Connection", "Upgrade"),
                                                     ("Sec-WebSocket-Accept", rfcAccept)]
        XCTAssertNil(check(101, good))
        XCTAssertNil(check(101, [("upgrade", "WEBSOCKET"), ("connection", "upgrade"), ("sec-websocket-accept", rfcAccept)]))
        XCTAssertEqual(check(200, good), .unexpectedStatus(200))
        XCTAssertEqual(check(101, Array(good.dropFirst())), .missingUpgradeWebSocket)
        XCTAssertEqual(check(101, [good[0], good[2]]), .missingConnectionUpgrade)
        XCTAssertEqual(check(101, Array(good.prefix(2))), .invalidAccept)
        XCTAssertEqual(check(101, Array(good.prefix(2)) + [("Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOO=")]), .invalidAccept)
        XCTAssertEqual(check(101, good + [("Sec-WebSocket-Extensions", "permessage-deflate")]), .unexpectedExtension)
        XCTAssertEqual(check(101, good + [("Sec-WebSocket-Protocol", "chat")]), .unexpectedSubprotocol)
    }
}
