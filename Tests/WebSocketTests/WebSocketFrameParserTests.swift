import XCTest
@testable import WebSocket

final class WebSocketFrameParserTests: XCTestCase {
    // RFC 6455 §5.7 examples.
    static let unmaskedHello: [UInt8] = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]
    static let maskedHello: [UInt8] = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]
    static let fragmentHel: [UInt8] = [0x01, 0x03, 0x48, 0x65, 0x6c]
    static let fragmentLo: [UInt8] = [0x80, 0x02, 0x6c, 0x6f]
    static let unmaskedPing: [UInt8] = [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]
    static let maskedPong: [UInt8] = [0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]
    static let binary256Payload: [UInt8] = (0..<256).map { UInt8(truncatingIfNeeded: $0 &* 7) }
    static let binary256: [UInt8] = [0x82, 0x7E, 0x01, 0x00] + binary256Payload
    static let binary64KPayload: [UInt8] = (0..<65536).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 5) }
    static let binary64K: [UInt8] = [0x82, 0x7F, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00] + binary64KPayload

    let hello = Array("Hello".utf8)

    func testRFCUnmaskedTextFrame() throws {
        XCTAssertEqual(try parseAll(Self.unmaskedHello, role: .client),
                       [WebSocketFrame(fin: true, opcode: .text, payload: hello)])
    }

    func testRFCMaskedTextFrame() throws {
        XCTAssertEqual(try parseAll(Self.maskedHello, role: .server),
                       [WebSocketFrame(fin: true, opcode: .text, payload: hello)])
    }

    func testRFCFragmentedTextMessage() throws {
        XCTAssertEqual(try parseAll(Self.fragmentHel + Self.fragmentLo, role: .client), [
            WebSocketFrame(fin: false, opcode: .text, payload: Array("Hel".utf8)),
            WebSocketFrame(fin: true, opcode: .continuation, payload: Array("lo".utf8)),
        ])
    }

    /// `next(reusing:)` writes each payload into the caller's storage: frames come out equal to
    /// `next()`'s, the storage is reused when the previous frame was let go, and a frame that was
    /// kept is never overwritten by the next one.
    func testReusingStorageKeepsKeptFramesIntact() throws {
        var parser = WebSocketFrameParser(role: .server)
        parser.feed(Self.maskedHello + clientTextFrame("second frame") + clientTextFrame("third"))
        var storage: [UInt8] = []
        storage.reserveCapacity(64)
        let kept = try XCTUnwrap(parser.next(reusing: &storage))
        XCTAssertEqual(kept, WebSocketFrame(opcode: .text, payload: hello))
        let second = try XCTUnwrap(parser.next(reusing: &storage))
        XCTAssertEqual(second.payload, Array("second frame".utf8))
        XCTAssertEqual(kept.payload, hello, "a kept frame must not change")
        let address = storage.withUnsafeBufferPointer { $0.baseAddress }
        _ = consume second
        let third = try XCTUnwrap(parser.next(reusing: &storage))
        XCTAssertEqual(third.payload, Array("third".utf8))
        XCTAssertEqual(storage.withUnsafeBufferPointer { $0.baseAddress }, address, "storage reused")
        XCTAssertNil(try parser.next(reusing: &storage))
        XCTAssertEqual(storage, Array("third".utf8), "an incomplete read leaves the storage alone")
    }

    private func clientTextFrame(_ text: String) -> [UInt8] {
        let payload = Array(text.utf8)
        let key: [UInt8] = [1, 2, 3, 4]
        return [0x81, 0x80 | UInt8(payload.count)] + key + payload.enumerated().map { $1 ^ key[$0 & 3] }
    }

    func testRFCPingAndPong() throws {
        XCTAssertEqual(try parseAll(Self.unmaskedPing, role: .client), [WebSocketFrame(opcode: .ping, payload: hello)])
        XCTAssertEqual(try parseAll(Self.maskedPong, role: .server), [WebSocketFrame(opcode: .pong, payload: hello)])
    }

    func testRFC256ByteBinaryWith16BitLength() throws {
        XCTAssertEqual(try parseAll(Self.binary256, role: .client),
                       [WebSocketFrame(opcode: .binary, payload: Self.binary256Payload)])
    }

    func testRFC64KiBBinaryWith64BitLength() throws {
        XCTAssertEqual(try parseAll(Self.binary64K, role: .client),
                       [WebSocketFrame(opcode: .binary, payload: Self.binary64KPayload)])
    }

    func testEveryTruncationPoint() throws {
        let cases: [([UInt8], WebSocketRole)] = [
            (Self.unmaskedHello, .client), (Self.maskedHello, .server), (Self.fragmentHel, .client),
            (Self.fragmentLo, .client), (Self.unmaskedPing, .client), (Self.maskedPong, .server),
            (Self.binary256, .client), (Self.binary64K, .client),
            (WebSocketFrameEncoder.encode(opcode: .binary, payload: Self.binary256Payload,
                                          maskingKey: (1, 2, 3, 4)), .server),
            (WebSocketFrameEncoder.encode(opcode: .text, payload: [UInt8](), maskingKey: (9, 8, 7, 6)), .server),
        ]
        for (bytes, role) in cases {
            let whole = try parseAll(bytes, role: role)
            XCTAssertEqual(whole.count, 1)
            let cuts = bytes.count <= 300 ? Array(0..<bytes.count) : Array(0..<20) + [bytes.count / 2, bytes.count - 1]
            for cut in cuts {
                var parser = WebSocketFrameParser(role: role)
                parser.feed(bytes[..<cut])
                XCTAssertNil(try parser.next(), "cut at \(cut) of \(hex(bytes))")
                XCTAssertNil(try parser.next(), "asking twice changes nothing")
                parser.feed(bytes[cut...])
                XCTAssertEqual(try parser.next().map { [$0] }, whole, "cut at \(cut) of \(hex(bytes))")
                XCTAssertNil(try parser.next())
                XCTAssertEqual(parser.bufferedByteCount, 0)
            }
        }
    }

    func testOneByteAtATimeAcrossSeveralFrames() throws {
        let clientStream = Self.unmaskedHello + Self.fragmentHel + Self.unmaskedPing + Self.fragmentLo
            + Self.binary256 + Self.binary64K
        let serverStream = Self.maskedHello + Self.maskedPong
            + WebSocketFrameEncoder.encode(opcode: .binary, payload: Self.binary64KPayload, maskingKey: (0xde, 0xad, 0xbe, 0xef))
            + WebSocketFrameEncoder.encode(opcode: .close, payload: [0x03, 0xe8], maskingKey: (1, 1, 1, 1))
        for (stream, role) in [(clientStream, WebSocketRole.client), (serverStream, .server)] {
            let expected = try parseAll(stream, role: role)
            XCTAssertEqual(expected.count, role == .client ? 6 : 4)
            var parser = WebSocketFrameParser(role: role)
            var frames: [WebSocketFrame] = []
            for byte in stream {
                parser.feed(CollectionOfOne(byte))
                while let frame = try parser.next() { frames.append(frame) }
            }
            XCTAssertEqual(frames, expected)
        }
    }

    func testOddSizedChunksOverManyFrames() throws {
        var stream: [UInt8] = []
        var payloads: [[UInt8]] = []
        for i in 0..<500 {
            let payload = (0..<(i * 37 % 300)).map { UInt8(truncatingIfNeeded: $0 ^ i) }
            payloads.append(payload)
            stream += WebSocketFrameEncoder.encode(opcode: .binary, payload: payload,
                                                   maskingKey: (UInt8(i & 0xff), 0x11, 0x22, 0x33))
        }
        for chunkSize in [1, 7, 1000, 4096] {
            var parser = WebSocketFrameParser(role: .server)
            var received: [[UInt8]] = []
            var index = 0
            while index < stream.count {
                parser.feed(stream[index..<min(index + chunkSize, stream.count)])
                index += chunkSize
                while let frame = try parser.next() { received.append(frame.payload) }
            }
            XCTAssertEqual(received, payloads, "chunk size \(chunkSize)")
            XCTAssertEqual(parser.bufferedByteCount, 0)
        }
    }

    // MARK: Lengths at the encoding boundaries, both roles

    func testLengthBoundariesRoundTripInBothRoles() throws {
        for length in [0, 1, 125, 126, 127, 65535, 65536, 70000] {
            let payload = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 13) }
            let expectedHeader = length < 126 ? 2 : length <= 0xFFFF ? 4 : 10

            // Server sends unmasked; a client parses it.
            let fromServer = WebSocketFrameEncoder.encode(opcode: .binary, payload: payload)
            XCTAssertEqual(fromServer.count, expectedHeader + length)
            XCTAssertEqual(try parseAll(fromServer, role: .client), [WebSocketFrame(opcode: .binary, payload: payload)])

            // Client sends masked; a server parses it.
            let fromClient = WebSocketFrameEncoder.encode(opcode: .binary, payload: payload, maskingKey: (0xa1, 0xb2, 0xc3, 0xd4))
            XCTAssertEqual(fromClient.count, expectedHeader + 4 + length)
            XCTAssertEqual(try parseAll(fromClient, role: .server), [WebSocketFrame(opcode: .binary, payload: payload)])
        }
    }

    // MARK: Rejections, each with its close code

    private func rejection(_ bytes: [UInt8], role: WebSocketRole, maxFrameSize: Int = 1 << 20,
                           maxMessageSize: Int = .max) -> WebSocketProtocolError? {
        var parser = WebSocketFrameParser(role: role, maxFrameSize: maxFrameSize, maxMessageSize: maxMessageSize)
        parser.feed(bytes)
        let first = protocolError { while try parser.next() != nil {} }
        // Errors are terminal.
        let again = protocolError { _ = try parser.next() }
        XCTAssertEqual(first, again)
        return first
    }

    func testReservedBitsRejected() {
        for rsvBits: UInt8 in [0x40, 0x20, 0x10, 0x70] {
            let error = rejection([0x81 | rsvBits, 0x80], role: .server)
            XCTAssertEqual(error, .reservedBitsSet)
            XCTAssertEqual(error?.closeCode, 1002)
        }
    }

    func testReservedOpcodesRejected() {
        for opcode: UInt8 in [0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF] {
            let error = rejection([0x80 | opcode, 0x00], role: .client)
            XCTAssertEqual(error, .unknownOpcode(opcode))
            XCTAssertEqual(error?.closeCode, 1002)
        }
    }

    func testControlFrameOver125BytesRejectedFromItsFirstTwoBytes() {
        for opcode: UInt8 in [0x8, 0x9, 0xA] {
            for length7: UInt8 in [126, 127] {
                let error = rejection([0x80 | opcode, 0x80 | length7], role: .server)
                XCTAssertEqual(error, .controlFrameTooLarge)
                XCTAssertEqual(error?.closeCode, 1002)
            }
        }
        // 125 is the largest allowed.
        let ping125 = WebSocketFrameEncoder.encode(opcode: .ping, payload: [UInt8](repeating: 1, count: 125))
        XCTAssertEqual(try parseAll(ping125, role: .client).first?.payload.count, 125)
    }

    func testFragmentedControlFrameRejected() {
        for opcode: UInt8 in [0x8, 0x9, 0xA] {
            let error = rejection([opcode, 0x00], role: .client)
            XCTAssertEqual(error, .fragmentedControlFrame)
            XCTAssertEqual(error?.closeCode, 1002)
        }
    }

    func testServerRejectsUnmaskedFrame() {
        let error = rejection(Self.unmaskedHello, role: .server)
        XCTAssertEqual(error, .unmaskedClientFrame)
        XCTAssertEqual(error?.closeCode, 1002)
        XCTAssertEqual(rejection([0x81, 0x05], role: .server), .unmaskedClientFrame, "before the payload")
    }

    func testClientRejectsMaskedFrame() {
        let error = rejection(Self.maskedHello, role: .client)
        XCTAssertEqual(error, .maskedServerFrame)
        XCTAssertEqual(error?.closeCode, 1002)
        XCTAssertEqual(rejection([0x81, 0x85], role: .client), .maskedServerFrame, "before the key")
    }

    func testLengthWithMostSignificantBitRejected() {
        let error = rejection([0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0], role: .client)
        XCTAssertEqual(error, .lengthHighBitSet)
        XCTAssertEqual(error?.closeCode, 1002)
    }

    func testNonMinimalLengthsRejected() {
        let cases: [[UInt8]] = [
            [0x82, 0x7E, 0x00, 0x00],
            [0x82, 0x7E, 0x00, 0x7D],
            [0x82, 0x7F, 0, 0, 0, 0, 0, 0, 0x00, 0x05],
            [0x82, 0x7F, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF],
        ]
        for bytes in cases {
            let error = rejection(bytes, role: .client)
            XCTAssertEqual(error, .nonMinimalLength, hex(bytes))
            XCTAssertEqual(error?.closeCode, 1002)
        }
    }

    func testFrameSizeLimitEnforcedFromTheHeaderAlone() throws {
        // 16-bit length 1001 > 1000: only the 4 header bytes were fed.
        var error = rejection([0x82, 0x7E, 0x03, 0xE9], role: .client, maxFrameSize: 1000)
        XCTAssertEqual(error, .frameTooLarge)
        XCTAssertEqual(error?.closeCode, 1009)
        // Masked, 64-bit length of 4 GiB, before the masking key.
        error = rejection([0x82, 0xFF, 0, 0, 0, 1, 0, 0, 0, 0], role: .server, maxFrameSize: 1000)
        XCTAssertEqual(error, .frameTooLarge)
        // 7-bit length over a tiny limit.
        XCTAssertEqual(rejection([0x81, 0x05], role: .client, maxFrameSize: 4), .frameTooLarge)
        // Exactly at the limit is fine.
        let atLimit = WebSocketFrameEncoder.encode(opcode: .binary, payload: [UInt8](repeating: 0, count: 1000))
        XCTAssertEqual(try parseAll(atLimit, role: .client, maxFrameSize: 1000).first?.payload.count, 1000)
    }

    func testMessageSizeLimitEnforcedFromTheHeaderOfTheCrossingFragment() throws {
        var parser = WebSocketFrameParser(role: .client, maxFrameSize: 1000, maxMessageSize: 1000)
        parser.feed(WebSocketFrameEncoder.encode(opcode: .text, payload: [UInt8](repeating: 0x61, count: 600), fin: false))
        XCTAssertEqual(try parser.next()?.payload.count, 600)
        // A ping in between does not count.
        parser.feed(WebSocketFrameEncoder.encode(opcode: .ping, payload: [UInt8](repeating: 1, count: 100)))
        XCTAssertEqual(try parser.next()?.opcode, .ping)
        parser.feed(WebSocketFrameEncoder.encode(opcode: .continuation, payload: [UInt8](repeating: 0x61, count: 400), fin: false))
        XCTAssertEqual(try parser.next()?.payload.count, 400)
        // The message is now at the limit: the header of one more byte is refused.
        parser.feed([0x80, 0x01])
        let error = protocolError { _ = try parser.next() }
        XCTAssertEqual(error, .messageTooLarge)
        XCTAssertEqual(error?.closeCode, 1009)

        // A new message starts a new count.
        var fresh = WebSocketFrameParser(role: .client, maxFrameSize: 1000, maxMessageSize: 1000)
        fresh.feed(WebSocketFrameEncoder.encode(opcode: .text, payload: [UInt8](repeating: 0x61, count: 1000)))
        fresh.feed(WebSocketFrameEncoder.encode(opcode: .text, payload: [UInt8](repeating: 0x61, count: 1000)))
        XCTAssertEqual(try fresh.next()?.payload.count, 1000)
        XCTAssertEqual(try fresh.next()?.payload.count, 1000)
    }

    func testFramesBeforeAnErrorAreStillReturned() throws {
        var parser = WebSocketFrameParser(role: .client)
        parser.feed(Self.unmaskedHello + [0x83, 0x00])
        XCTAssertEqual(try parser.next()?.payload, hello)
        XCTAssertEqual(protocolError { _ = try parser.next() }, .unknownOpcode(3))
    }
}
