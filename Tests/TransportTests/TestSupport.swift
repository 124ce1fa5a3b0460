import Dispatch
import Foundation
import HTTP1
import Synchronization
import TLS
import Transport
import XCTest
@_exported import TestSupport
#if canImport(Glibc)
import Glibc
#endif

// MARK: - servers under test

/// What the test echo server saw.
final class ServerEvents: Sendable {
    let closes = Channel<WebSocketCloseEvent>()
    let upgraded = Channel<WebSocketConnection>()
}

/// An `HTTPServer` on 127.0.0.1:0 that answers `GET /hello` with 200 "hello" and upgrades
/// `/ws` to a WebSocket that echoes every text message. `onUpgrade` runs on the loop after
/// the echo is installed.
func startEchoServer(
    on loop: EventLoop, limits: WebSocketLimits = .init(maxFrameBytes: 4 << 20, maxMessageBytes: 4 << 20),
    events: ServerEvents = ServerEvents(), testCase: XCTestCase,
    onUpgrade: (@Sendable (WebSocketConnection) -> Void)? = nil
) throws -> Int {
    let server = HTTPServer(address: SocketAddress(host: "127.0.0.1", port: 0)!, loop: loop) { request, _ in
        if request.path == "/ws" {
            return .upgradeToWebSocket(limits) { ws in
                ws.onText = { conn, bytes in conn.sendText(bytes) }
                ws.onClose = { _, event in events.closes.push(event) }
                events.upgraded.push(ws)
                onUpgrade?(ws)
            }
        }
        return .respond(HTTPResponse(status: 200, headers: ["Content-Type": "text/plain"], body: Array("hello".utf8)))
    }
    let address = try onLoop(loop) { try server.start() }
    testCase.addTeardownBlock {
        _ = try? onLoop(loop) {
            server.stopAccepting()
            server.closeHTTPConnections()
        }
    }
    return address.port
}

/// Opens a client WebSocket whose text messages and close event land in channels.
final class ClientPeer: Sendable {
    let ws: WebSocketConnection
    let messages = Channel<[UInt8]>()
    let closed = Waiter<WebSocketCloseEvent>()

    private init(ws: WebSocketConnection) { self.ws = ws }

    static func connect(_ url: String, loop: EventLoop, tls: TLSContextBox? = nil,
                        limits: WebSocketLimits = .init(maxFrameBytes: 4 << 20, maxMessageBytes: 4 << 20)) throws -> Result<ClientPeer, TransportError> {
        guard let parsed = WebSocketURL(url) else { throw TestFailure("bad URL \(url)") }
        let done = Waiter<Result<ClientPeer, TransportError>>()
        WebSocketClient.connect(url: parsed, loop: loop, tls: tls?.context, limits: limits, timeout: .seconds(10)) { result in
            switch result {
            case .failure(let e):
                done.fulfil(.failure(e))
            case .success(let ws):
                // On the loop, before any frame is processed.
                let peer = ClientPeer(ws: ws)
                ws.onText = { _, bytes in peer.messages.push(bytes) }
                ws.onClose = { _, event in peer.closed.fulfil(event) }
                done.fulfil(.success(peer))
            }
        }
        return try done.wait("WebSocket connect to \(url)")
    }

    /// Sends `payload` and returns the next message received.
    func roundTrip(_ payload: [UInt8]) throws -> [UInt8] {
        let ws = self.ws
        ws.loop.execute { ws.sendText(payload) }
        return try messages.next("echo of \(payload.count) bytes")
    }

    func close(code: UInt16 = 1000) throws -> WebSocketCloseEvent {
        let ws = self.ws
        ws.loop.execute { ws.close(code: code) }
        return try closed.wait("close of the client connection")
    }
}

/// `TLSContext` is a class; this keeps call sites explicit about which store is used.
struct TLSContextBox: Sendable {
    let context: TLSContext
}

// MARK: - raw sockets

/// A blocking POSIX TCP client with a receive deadline, for writing exact bytes at the server.
final class RawSocket {
    let fd: Int32
    private var buffered: [UInt8] = []

    init(port: Int, receiveBuffer: Int32? = nil) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket: errno \(errno)") }
        if var size = receiveBuffer {
            // Before connect, so that the advertised window stays small.
            _ = setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var tv = timeval(tv_sec: Int(testDeadline), tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else {
            let e = errno
            Glibc.close(fd)
            throw TestFailure("connect 127.0.0.1:\(port): errno \(e)")
        }
    }

    private var isClosed = false

    /// Closes the socket now (a test that waits for the server's view of the close must not
    /// keep it open until deinit).
    func close() {
        guard !isClosed else { return }
        isClosed = true
        Glibc.close(fd)
    }

    deinit { close() }

    func send(_ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw TestFailure("send: errno \(errno)")
            }
            sent += n
        }
    }

    func send(_ text: String) throws { try send(Array(text.utf8)) }

    /// One read(2); nil at EOF (or a reset, which ends the stream all the same).
    private func fill() throws -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n > 0 {
                buffered.append(contentsOf: chunk[0..<n])
                return true
            }
            if n == 0 { return false }
            let e = errno
            if e == EINTR { continue }
            if e == ECONNRESET { return false }
            if e == EAGAIN || e == EWOULDBLOCK { throw TestFailure("read timed out after \(testDeadline) s") }
            throw TestFailure("read: errno \(e)")
        }
    }

    func read(exactly count: Int) throws -> [UInt8] {
        while buffered.count < count {
            guard try fill() else { throw TestFailure("EOF after \(buffered.count) of \(count) bytes") }
        }
        let out = Array(buffered.prefix(count))
        buffered.removeFirst(count)
        return out
    }

    /// Everything until the peer closes its side.
    func readToEOF() throws -> [UInt8] {
        while try fill() {}
        defer { buffered = [] }
        return buffered
    }

    /// An HTTP/1.1 response: status line, headers (lower-cased names) and a Content-Length body.
    func readResponse() throws -> (status: Int, headers: [String: String], body: [UInt8]) {
        let end: [UInt8] = [13, 10, 13, 10]
        var headEnd: Int?
        while headEnd == nil {
            if buffered.count >= 4 {
                headEnd = (0...(buffered.count - 4)).first { Array(buffered[$0..<$0 + 4]) == end }
            }
            if headEnd == nil {
                guard try fill() else { throw TestFailure("EOF inside a response head: \(String(decoding: buffered, as: UTF8.self))") }
            }
        }
        let head = String(decoding: buffered[0..<headEnd!], as: UTF8.self)
        buffered.removeFirst(headEnd! + 4)
        var lines = head.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ")
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else { throw TestFailure("bad status line in \(head)") }
        var headers: [String: String] = [:]
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let length = Int(headers["content-length"] ?? "0") ?? 0
        let body = try read(exactly: length)
        return (status, headers, body)
    }

    /// Sends a valid upgrade request for `path` and checks the 101.
    func upgrade(path: String = "/ws") throws {
        try send("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        let response = try readResponse()
        guard response.status == 101,
              response.headers["sec-websocket-accept"] == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" else {
            throw TestFailure("upgrade refused: \(response.status) \(response.headers)")
        }
    }

    /// One server frame (unmasked): FIN bit, opcode, payload.
    func readFrame() throws -> (fin: Bool, opcode: UInt8, payload: [UInt8]) {
        let h = try read(exactly: 2)
        var length = Int(h[1] & 0x7F)
        if h[1] & 0x80 != 0 { throw TestFailure("the server masked a frame") }
        if length == 126 {
            let b = try read(exactly: 2)
            length = Int(b[0]) << 8 | Int(b[1])
        } else if length == 127 {
            let b = try read(exactly: 8)
            length = b.reduce(0) { $0 << 8 | Int($1) }
        }
        return (h[0] & 0x80 != 0, h[0] & 0x0F, try read(exactly: length))
    }
}

/// A client frame (RFC 6455 §5.2), masked unless told otherwise.
func clientFrame(opcode: UInt8, payload: [UInt8], fin: Bool = true, masked: Bool = true) -> [UInt8] {
    var out: [UInt8] = [(fin ? 0x80 : 0) | opcode]
    let maskBit: UInt8 = masked ? 0x80 : 0
    if payload.count < 126 {
        out.append(maskBit | UInt8(payload.count))
    } else if payload.count <= 0xFFFF {
        out.append(maskBit | 126)
        out.append(UInt8(payload.count >> 8))
        out.append(UInt8(payload.count & 0xFF))
    } else {
        out.append(maskBit | 127)
        for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8((payload.count >> shift) & 0xFF)) }
    }
    if masked {
        let key: [UInt8] = [0x37, 0xFA, 0x21, 0x3D]
        out.append(contentsOf: key)
        out.append(contentsOf: payload.enumerated().map { $0.element ^ key[$0.offset % 4] })
    } else {
        out.append(contentsOf: payload)
    }
    return out
}

