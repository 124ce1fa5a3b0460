import XCTest
@testable import WebSocket

/// Feeds `bytes` in one go and returns every complete frame.
func parseAll(_ bytes: [UInt8], role: WebSocketRole, maxFrameSize: Int = 1 << 24) throws -> [WebSocketFrame] {
    var parser = WebSocketFrameParser(role: role, maxFrameSize: maxFrameSize)
    parser.feed(bytes)
    var frames: [WebSocketFrame] = []
    while let frame = try parser.next() { frames.append(frame) }
    return frames
}

/// The error `body` throws, failing the test when it throws none or another type.
func protocolError(
    file: StaticString = #filePath, line: UInt = #line,
    _ body: () throws -> Void
) -> WebSocketProtocolError? {
    do {
        try body()
        XCTFail("expected a WebSocketProtocolError", file: file, line: line)
    } catch let error as WebSocketProtocolError {
        return error
    } catch {
        XCTFail("unexpected \(error)", file: file, line: line)
    }
    return nil
}

func hex(_ bytes: [UInt8]) -> String {
    bytes.map { String(format: "%02x", $0) }.joined()
}

extension Array where Element == UInt8 {
    init(_ string: StaticString) {
        self = string.withUTF8Buffer { Array($0) }
    }
}
