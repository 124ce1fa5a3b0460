// libFuzzer target: WebSocketFrameParser and WebSocketMessageAssembler (Sources/WebSocket).
//
// Input: one configuration byte, then the byte stream a peer sends.
//   bit 0: role (0 server: frames must be masked; 1 client: frames must not be)
//   bit 1: tiny limits (frames ≤ 32 bytes, messages ≤ 48) instead of the defaults
//   bit 2: binary messages refused (close 1003)
// Properties:
// - frames and the error are the same whatever the reads (one, bytewise, random);
// - every frame respects RFC 6455 §5.2/§5.5 and the limits, and the encoder's bytes for
//   it parse back to the same frame (masked for a server, unmasked for a client);
// - the assembler's messages are the concatenation of their fragments, within the
//   message limit, text is valid UTF-8, close codes are valid (§7.4);
// - errors are terminal in the parser.

struct Outcome: Equatable {
    var frames: [WebSocketFrame] = []
    var error: WebSocketProtocolError?
    var leftover = 0
}

struct Setup {
    var role: WebSocketRole
    var maxFrameSize: Int
    var maxMessageSize: Int
    var acceptBinary: Bool

    func parser() -> WebSocketFrameParser {
        WebSocketFrameParser(role: role, maxFrameSize: maxFrameSize, maxMessageSize: maxMessageSize)
    }
}

func parse(_ chunks: [ArraySlice<UInt8>], _ setup: Setup) -> Outcome {
    var parser = setup.parser()
    var outcome = Outcome()
    var storage: [UInt8] = []
    reads: for (n, chunk) in chunks.enumerated() {
        // Both feeds: the generic one and the socket buffer's.
        if n % 2 == 0 {
            parser.feed(chunk)
        } else {
            chunk.withUnsafeBytes { parser.feed($0) }
        }
        while true {
            do {
                // Alternate the two entry points; they must agree.
                let frame = outcome.frames.count % 2 == 0 ? try parser.next() : try parser.next(reusing: &storage)
                guard let frame else { break }
                outcome.frames.append(frame)
            } catch {
                outcome.error = error
                parser.feed([0x81, 0x80, 0, 0, 0, 0, 0x81, 0x00])
                do {
                    _ = try parser.next()
                    check(false, "no error after \(error)")
                } catch let again {
                    check(again == error, "error \(error) became \(again)")
                }
                break reads
            }
        }
    }
    if outcome.error == nil { outcome.leftover = parser.bufferedByteCount }
    return outcome
}

func checkFrame(_ frame: WebSocketFrame, _ setup: Setup, rng: inout SplitMix64) {
    check(frame.rsv == 0, "rsv \(frame.rsv)")
    check(frame.payload.count <= setup.maxFrameSize, "frame of \(frame.payload.count) bytes")
    if frame.opcode.isControl {
        // RFC 6455 §5.5
        check(frame.fin && frame.payload.count <= 125, "control frame fin \(frame.fin), \(frame.payload.count) bytes")
    }
    // The peer's encoder: a client masks (we are the server), a server does not.
    let key: WebSocketMaskingKey? = setup.role == .server
        ? (UInt8(truncatingIfNeeded: rng.next()), UInt8(truncatingIfNeeded: rng.next()),
           UInt8(truncatingIfNeeded: rng.next()), UInt8(truncatingIfNeeded: rng.next()))
        : nil
    let wire = WebSocketFrameEncoder.encode(opcode: frame.opcode, payload: frame.payload, fin: frame.fin, maskingKey: key)
    var parser = WebSocketFrameParser(role: setup.role, maxFrameSize: setup.maxFrameSize)
    parser.feed(wire)
    do {
        let again = try parser.next()
        check(again == frame, "re-encoded frame parsed as \(String(describing: again)), was \(frame)")
        check(parser.bufferedByteCount == 0, "\(parser.bufferedByteCount) bytes left after a re-encoded frame")
    } catch {
        check(false, "re-encoded frame \(frame) refused: \(error)")
    }
}

func assemble(_ frames: [WebSocketFrame], _ setup: Setup) {
    var assembler = WebSocketMessageAssembler(maxMessageSize: setup.maxMessageSize, acceptBinary: setup.acceptBinary)
    var pending: [UInt8] = []
    var pendingOpcode: WebSocketOpcode?
    for frame in frames {
        let message: WebSocketMessage?
        do {
            message = try assembler.receive(frame)
        } catch {
            return  // Errors are terminal: the connection fails with error.closeCode.
        }
        if !frame.opcode.isControl {
            if frame.opcode != .continuation { pendingOpcode = frame.opcode; pending = [] }
            pending += frame.payload
        }
        switch message {
        case nil:
            check(!frame.fin && !frame.opcode.isControl, "no message for final frame \(frame)")
        case .text(let bytes):
            check(frame.fin && pendingOpcode == .text && bytes == pending, "text \(bytes) is not its fragments \(pending)")
            check(bytes.count <= setup.maxMessageSize, "text of \(bytes.count) bytes")
            check(String(validating: bytes, as: UTF8.self) != nil, "invalid UTF-8 text \(bytes)")
            pendingOpcode = nil
        case .binary(let bytes):
            check(setup.acceptBinary, "binary message though refused")
            check(frame.fin && pendingOpcode == .binary && bytes == pending, "binary \(bytes) is not its fragments")
            check(bytes.count <= setup.maxMessageSize, "binary of \(bytes.count) bytes")
            pendingOpcode = nil
        case .ping(let bytes):
            check(frame.opcode == .ping && bytes == frame.payload, "ping \(bytes) from \(frame)")
        case .pong(let bytes):
            check(frame.opcode == .pong && bytes == frame.payload, "pong \(bytes) from \(frame)")
        case .close(let code, let reason):
            check(frame.opcode == .close, "close from \(frame)")
            if let code {
                // RFC 6455 §5.5.1: code then UTF-8 reason; §7.4: only sendable codes.
                check(frame.payload.count >= 2, "close code from \(frame.payload.count) bytes")
                check(UInt16(frame.payload[0]) << 8 | UInt16(frame.payload[1]) == code, "close code \(code)")
                check(WebSocketMessageAssembler.isValidReceivedCloseCode(code), "close code \(code) accepted")
                check(Array(reason.utf8) == Array(frame.payload.dropFirst(2)), "close reason \(reason)")
            } else {
                check(frame.payload.isEmpty && reason.isEmpty, "close without code from \(frame.payload)")
            }
        }
        check(assembler.isAssemblingMessage == (pendingOpcode != nil),
              "isAssemblingMessage \(assembler.isAssemblingMessage) after \(frame)")
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 1 else { return 0 }
    let config = data[0]
    let stream = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    let tiny = config & 2 != 0
    let setup = Setup(
        role: config & 1 == 0 ? .server : .client,
        maxFrameSize: tiny ? 32 : WebSocketFrameParser.defaultMaxFrameSize,
        maxMessageSize: tiny ? 48 : WebSocketMessageAssembler.defaultMaxMessageSize,
        acceptBinary: config & 4 == 0)

    let reference = parse([stream[...]], setup)
    var rng = SplitMix64(seed: fnv1a(stream))
    var messageBytes = 0
    for frame in reference.frames {
        checkFrame(frame, setup, rng: &rng)
        if !frame.opcode.isControl {
            messageBytes = (frame.opcode == .continuation ? messageBytes : 0) + frame.payload.count
            check(messageBytes <= setup.maxMessageSize, "\(messageBytes) message bytes passed the parser")
        }
    }
    for chunking in Chunking.allCases where chunking != .whole {
        guard let chunks = chunking.chunks(of: stream) else { continue }
        let outcome = parse(chunks, setup)
        check(outcome == reference, "\(chunking) reads: \(outcome) differs from one read: \(reference)")
    }
    assemble(reference.frames, setup)
    return 0
}
