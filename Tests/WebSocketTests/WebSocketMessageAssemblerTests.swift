import XCTest
@testable import WebSocket

final class WebSocketMessageAssemblerTests: XCTestCase {
    private func frame(_ opcode: WebSocketOpcode, _ payload: [UInt8], fin: Bool = true) -> WebSocketFrame {
        WebSocketFrame(fin: fin, opcode: opcode, payload: payload)
    }

    private func receiveAll(_ frames: [WebSocketFrame], maxMessageSize: Int = 1 << 20,
                            acceptBinary: Bool = true) throws(WebSocketProtocolError) -> [WebSocketMessage] {
        var assembler = WebSocketMessageAssembler(maxMessageSize: maxMessageSize, acceptBinary: acceptBinary)
        var messages: [WebSocketMessage] = []
        for frame in frames {
            if let message = try assembler.receive(frame) { messages.append(message) }
        }
        return messages
    }

    private func failure(_ frames: [WebSocketFrame], maxMessageSize: Int = 1 << 20,
                         acceptBinary: Bool = true) -> WebSocketProtocolError? {
        protocolError { _ = try self.receiveAll(frames, maxMessageSize: maxMessageSize, acceptBinary: acceptBinary) }
    }

    func testSingleFrameMessages() throws {
        XCTAssertEqual(try receiveAll([frame(.text, Array("Hello".utf8)), frame(.binary, [0, 1, 2]),
                                       frame(.text, []), frame(.binary, [])]),
                       [.text(Array("Hello".utf8)), .binary([0, 1, 2]), .text([]), .binary([])])
    }

    func testRFCFragmentedHello() throws {
        // RFC 6455 §5.7, parsed then assembled.
        let frames = try parseAll(WebSocketFrameParserTests.fragmentHel + WebSocketFrameParserTests.fragmentLo, role: .client)
        XCTAssertEqual(try receiveAll(frames), [.text(Array("Hello".utf8))])
    }

    func testManyFragmentsIncludingEmptyOnes() throws {
        let frames = [frame(.binary, [1], fin: false), frame(.continuation, [], fin: false),
                      frame(.continuation, [2, 3], fin: false), frame(.continuation, [])]
        XCTAssertEqual(try receiveAll(frames), [.binary([1, 2, 3])])
    }

    func testControlFramesInterleavedInAFragmentedMessage() throws {
        // RFC 6455 §5.4: control frames may be injected between fragments.
        let frames = [frame(.text, Array("Hel".utf8), fin: false), frame(.ping, [7]),
                      frame(.continuation, Array("l".utf8), fin: false), frame(.pong, []),
                      frame(.continuation, Array("o".utf8)), frame(.text, Array("next".utf8))]
        XCTAssertEqual(try receiveAll(frames),
                       [.ping([7]), .pong([]), .text(Array("Hello".utf8)), .text(Array("next".utf8))])
    }

    func testCloseInsideAFragmentedMessageIsDelivered() throws {
        let frames = [frame(.text, Array("Hel".utf8), fin: false), frame(.close, [0x03, 0xE8])]
        XCTAssertEqual(try receiveAll(frames), [.close(code: 1000, reason: "")])
    }

    func testFragmentationErrors() {
        var error = failure([frame(.continuation, [1])])
        XCTAssertEqual(error, .continuationWithoutStart)
        XCTAssertEqual(error?.closeCode, 1002)
        XCTAssertEqual(failure([frame(.text, Array("a".utf8)), frame(.continuation, [])]), .continuationWithoutStart)
        error = failure([frame(.text, Array("a".utf8), fin: false), frame(.text, Array("b".utf8))])
        XCTAssertEqual(error, .dataFrameDuringFragmentedMessage)
        XCTAssertEqual(error?.closeCode, 1002)
        XCTAssertEqual(failure([frame(.binary, [1], fin: false), frame(.text, [])]), .dataFrameDuringFragmentedMessage)
        XCTAssertEqual(failure([frame(.ping, [], fin: false)]), .fragmentedControlFrame)
        XCTAssertEqual(failure([frame(.ping, [UInt8](repeating: 0, count: 126))]), .controlFrameTooLarge)
        XCTAssertEqual(failure([WebSocketFrame(fin: true, rsv: 4, opcode: .text, payload: [])]), .reservedBitsSet)
    }

    func testMessageSizeLimitCheckedAsFragmentsArrive() throws {
        XCTAssertEqual(try receiveAll([frame(.text, Array(repeating: 0x61, count: 10))], maxMessageSize: 10).count, 1)
        XCTAssertEqual(try receiveAll([frame(.text, Array(repeating: 0x61, count: 6), fin: false),
                                       frame(.continuation, Array(repeating: 0x61, count: 4))], maxMessageSize: 10).count, 1)

        var error = failure([frame(.binary, Array(repeating: 0, count: 11))], maxMessageSize: 10)
        XCTAssertEqual(error, .messageTooLarge)
        XCTAssertEqual(error?.closeCode, 1009)

        // The fragment that crosses the limit fails before the final fragment is seen.
        var assembler = WebSocketMessageAssembler(maxMessageSize: 10)
        XCTAssertNil(try assembler.receive(frame(.text, Array(repeating: 0x61, count: 6), fin: false)))
        error = protocolError { _ = try assembler.receive(frame(.continuation, Array(repeating: 0x61, count: 5), fin: false)) }
        XCTAssertEqual(error, .messageTooLarge)
        XCTAssertEqual(error?.closeCode, 1009)
    }

    func testBinaryNotAccepted() throws {
        var error = failure([frame(.binary, [1])], acceptBinary: false)
        XCTAssertEqual(error, .binaryNotAccepted)
        XCTAssertEqual(error?.closeCode, 1003)
        // Refused at the first fragment.
        var assembler = WebSocketMessageAssembler(maxMessageSize: 100, acceptBinary: false)
        error = protocolError { _ = try assembler.receive(frame(.binary, [1], fin: false)) }
        XCTAssertEqual(error, .binaryNotAccepted)
        XCTAssertEqual(try receiveAll([frame(.text, Array("ok".utf8))], acceptBinary: false), [.text(Array("ok".utf8))])
    }

    // MARK: UTF-8

    func testUTF8SplitAcrossFragments() throws {
        let text = Array("κόσμε € 😀 𝄞".utf8)
        // Every split into two fragments, and one byte per fragment.
        for cut in 0...text.count {
            let frames = [frame(.text, Array(text[..<cut]), fin: false), frame(.continuation, Array(text[cut...]))]
            XCTAssertEqual(try receiveAll(frames), [.text(text)], "cut at \(cut)")
        }
        var frames = text.map { frame(.continuation, [$0], fin: false) }
        frames[0].opcode = .text
        frames.append(frame(.continuation, []))
        XCTAssertEqual(try receiveAll(frames), [.text(text)])
    }

    func testInvalidUTF8Is1007() {
        let invalid: [[UInt8]] = [[0xC0, 0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xFF], [0x80], [0xE2, 0x82]]
        for bytes in invalid {
            let error = failure([frame(.text, Array("ok ".utf8) + bytes)])
            XCTAssertEqual(error, .invalidUTF8, hex(bytes))
            XCTAssertEqual(error?.closeCode, 1007)
        }
        // A message ending in the middle of a code point.
        XCTAssertEqual(failure([frame(.text, [0x61, 0xF0, 0x9F], fin: false), frame(.continuation, [0x98])]), .invalidUTF8)
        // Binary messages are not validated.
        XCTAssertEqual(try receiveAll([frame(.binary, [0xFF])]), [.binary([0xFF])])
    }

    func testInvalidUTF8FailsFastBeforeTheMessageEnds() throws {
        var assembler = WebSocketMessageAssembler()
        XCTAssertNil(try assembler.receive(frame(.text, Array("fine".utf8), fin: false)))
        let error = protocolError { _ = try assembler.receive(frame(.continuation, [0xC1, 0x81], fin: false)) }
        XCTAssertEqual(error, .invalidUTF8)
    }

    // MARK: Close frames (RFC 6455 §5.5.1, §7.4)

    func testClosePayloads() throws {
        XCTAssertEqual(try receiveAll([frame(.close, [])]), [.close(code: nil, reason: "")])
        XCTAssertEqual(try receiveAll([frame(.close, [0x03, 0xE8])]), [.close(code: 1000, reason: "")])
        XCTAssertEqual(try receiveAll([frame(.close, [0x03, 0xE9] + Array("going away ✓".utf8))]),
                       [.close(code: 1001, reason: "going away ✓")])

        var error = failure([frame(.close, [0x03])])
        XCTAssertEqual(error, .invalidClosePayload)
        XCTAssertEqual(error?.closeCode, 1002)

        error = failure([frame(.close, [0x03, 0xE8, 0xC3, 0x28])])
        XCTAssertEqual(error, .invalidUTF8)
        XCTAssertEqual(error?.closeCode, 1007)
    }

    func testCloseCodes() throws {
        for code: UInt16 in [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999] {
            XCTAssertEqual(try receiveAll([frame(.close, [UInt8(code >> 8), UInt8(code & 0xFF)])]),
                           [.close(code: code, reason: "")], "code \(code)")
        }
        for code: UInt16 in [0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535] {
            let error = failure([frame(.close, [UInt8(code >> 8), UInt8(code & 0xFF)])])
            XCTAssertEqual(error, .invalidCloseCode(code))
            XCTAssertEqual(error?.closeCode, 1002)
        }
    }
}
