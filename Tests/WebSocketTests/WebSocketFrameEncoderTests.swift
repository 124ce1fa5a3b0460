import XCTest
@testable import WebSocket

final class WebSocketFrameEncoderTests: XCTestCase {
    typealias Vectors = WebSocketFrameParserTests
    let hello = Array("Hello".utf8)
    let rfcKey: WebSocketMaskingKey = (0x37, 0xfa, 0x21, 0x3d)

    func testRFCExamplesEncodeExactly() {
        XCTAssertEqual(WebSocketFrameEncoder.encode(opcode: .text, payload: hello), Vectors.unmaskedHello)
        XCTAssertEqual(WebSocketFrameEncoder.encode(opcode: .text, payload: hello, maskingKey: rfcKey), Vectors.maskedHello)
        XCTAssertEqual(WebSocketFrameEncoder.encode(opcode: .text, payload: Array("Hel".utf8), fin: false), Vectors.fragmentHel)
        XCTAssertEqual(WebSocketFrameEncoder.encode(opcode: .continuation, payload: Array("lo".utf8)), Vectors.fragmentLo)
        XCTAssertEqual(WebSocketFrameEncoder.encode(opcode: .ping, payload: hello), Vectors.unmaskedPing)
        XCTAssertEqual(WebSocketFrameEncoder.encode(opcode: .pong, payload: hello, maskingKey: rfcKey), Vectors.maskedPong)
        XCTAssertEqual(WebSocketFrameEncoder.encode(opcode: .binary, payload: Vectors.binary256Payload), Vectors.binary256)
        XCTAssertEqual(WebSocketFrameEncoder.encode(opcode: .binary, payload: Vectors.binary64KPayload), Vectors.binary64K)
    }

    /// Encoding into a reused buffer gives the same bytes as a fresh encode, whatever the
    /// buffer held before, masked or not.
    func testEncodeIntoReusedBufferMatchesEncode() {
        var buffer = Array(repeating: UInt8(0xAB), count: 300)
        for length in [0, 5, 125, 126, 200, 70_000, 3] {
            let payload = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 13) }
            for key in [nil, (UInt8(1), UInt8(2), UInt8(3), UInt8(4))] as [WebSocketMaskingKey?] {
                WebSocketFrameEncoder.encode(opcode: .text, payload: payload, maskingKey: key, into: &buffer)
                XCTAssertEqual(buffer, WebSocketFrameEncoder.encode(opcode: .text, payload: payload, maskingKey: key),
                               "length \(length), masked \(key != nil)")
            }
        }
    }

    func testWriteHeaderMatchesAppendHeader() {
        for length in [0, 1, 125, 126, 127, 0xFFFF, 0x10000, 1 << 40] {
            for opcode in [WebSocketOpcode.text, .binary, .continuation] {
                for fin in [true, false] {
                    var expected: [UInt8] = []
                    WebSocketFrameEncoder.appendHeader(to: &expected, opcode: opcode, payloadLength: length, fin: fin)
                    var buffer = [UInt8](repeating: 0xEE, count: 12)
                    let n = buffer.withUnsafeMutableBytes {
                        WebSocketFrameEncoder.writeHeader(into: $0, opcode: opcode, payloadLength: length, fin: fin)
                    }
                    XCTAssertEqual(Array(buffer[..<n]), expected, "length \(length) \(opcode) fin \(fin)")
                    XCTAssertEqual(buffer[n...].allSatisfy { $0 == 0xEE }, true, "wrote past its header")
                }
            }
        }
    }

    func testHeaderAloneMatchesEncodedPrefix() {
        for length in [0, 125, 126, 65535, 65536] {
            let payload = [UInt8](repeating: 0x5a, count: length)
            for key in [nil, rfcKey] as [WebSocketMaskingKey?] {
                let header = WebSocketFrameEncoder.header(opcode: .text, payloadLength: length, maskingKey: key)
                let frame = WebSocketFrameEncoder.encode(opcode: .text, payload: payload, maskingKey: key)
                XCTAssertEqual(Array(frame.prefix(header.count)), header)
                XCTAssertEqual(frame.count, header.count + length)
            }
        }
        XCTAssertEqual(WebSocketFrameEncoder.header(opcode: .text, payloadLength: 0), [0x81, 0x00])
        XCTAssertEqual(WebSocketFrameEncoder.header(opcode: .text, payloadLength: 125), [0x81, 0x7D])
        XCTAssertEqual(WebSocketFrameEncoder.header(opcode: .text, payloadLength: 126), [0x81, 0x7E, 0x00, 0x7E])
        XCTAssertEqual(WebSocketFrameEncoder.header(opcode: .text, payloadLength: 65535), [0x81, 0x7E, 0xFF, 0xFF])
        XCTAssertEqual(WebSocketFrameEncoder.header(opcode: .text, payloadLength: 65536),
                       [0x81, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0])
        XCTAssertEqual(WebSocketFrameEncoder.header(opcode: .binary, payloadLength: 1, fin: false, maskingKey: (1, 2, 3, 4)),
                       [0x02, 0x81, 1, 2, 3, 4])
    }

    func testMaskingEveryLengthAndPhase() throws {
        // Lengths around the 8-byte fast path, checked against the byte-by-byte definition.
        let key: WebSocketMaskingKey = (0x01, 0x80, 0xfe, 0x7f)
        let keyBytes: [UInt8] = [0x01, 0x80, 0xfe, 0x7f]
        for length in 0..<40 {
            let payload = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 17) }
            let frame = WebSocketFrameEncoder.encode(opcode: .binary, payload: payload, maskingKey: key)
            let masked = Array(frame.suffix(length))
            XCTAssertEqual(masked, payload.enumerated().map { $0.element ^ keyBytes[$0.offset % 4] })
            XCTAssertEqual(try parseAll(frame, role: .server).first?.payload, payload)
        }
    }

    func testClosePayload() {
        XCTAssertEqual(WebSocketFrameEncoder.closePayload(code: 1000, reason: ""), [0x03, 0xE8])
        XCTAssertEqual(WebSocketFrameEncoder.closePayload(code: 1008, reason: "slow consumer"),
                       [0x03, 0xF0] + Array("slow consumer".utf8))
        // Cut to fit a 125-byte control frame, at a character boundary.
        let long = WebSocketFrameEncoder.closePayload(code: 1001, reason: String(repeating: "é", count: 100))
        XCTAssertEqual(long.count, 124)
        XCTAssertTrue(UTF8Validator.isValid(long.dropFirst(2)))
        let ascii = WebSocketFrameEncoder.closePayload(code: 1001, reason: String(repeating: "x", count: 200))
        XCTAssertEqual(ascii.count, 125)
    }
}
