import Dispatch
import Foundation
import HTTP1
import Synchronization
import TLS
import Transport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Every wait in these tests is bounded by this.
let testDeadline: Double = 20

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A value set once from any thread, waited for with a deadline.
final class Waiter<T: Sendable>: Sendable {
    private let value = Mutex<T?>(nil)
    private let semaphore = DispatchSemaphore(value: 0)

    func fulfil(_ v: T) {
        let first = value.withLock { slot -> Bool in
            guard slot == nil else { return false }
            slot = v
            return true
        }
        if first { semaphore.signal() }
    }

    func wait(_ what: String, timeout: Double = testDeadline) throws -> T {
        guard semaphore.wait(timeout: .now() + timeout) == .success else {
            throw TestFailure("timed out after \(timeout) s waiting for \(what)")
        }
        semaphore.signal()  // later waits return at once
        return value.withLock { $0! }
    }
}

/// A thread-safe FIFO of events, popped with a deadline.
final class Channel<T: Sendable>: Sendable {
    private let items = Mutex<[T]>([])
    private let semaphore = DispatchSemaphore(value: 0)

    func push(_ v: T) {
        items.withLock { $0.append(v) }
        semaphore.signal()
    }

    func next(_ what: String, timeout: Double = testDeadline) throws -> T {
        guard semaphore.wait(timeout: .now() + timeout) == .success else {
            throw TestFailure("timed out after \(timeout) s waiting for \(what)")
        }
        return items.withLock { $0.removeFirst() }
    }

    var count: Int { items.withLock { $0.count } }
}

/// A counter / flag shared with loop callbacks.
final class Locked<T: Sendable>: Sendable {
    private let m: Mutex<T>
    init(_ v: T) { m = Mutex(v) }
    var value: T { m.withLock { $0 } }
    func update<R: Sendable>(_ body: (inout T) -> R) -> R { m.withLock { body(&$0) } }
}

/// Runs `body` on `loop` and returns its result to the calling thread.
@discardableResult
func onLoop<T: Sendable>(_ loop: EventLoop, _ body: @escaping @Sendable () throws -> T) throws -> T {
    let w = Waiter<Result<T, any Error>>()
    loop.execute { w.fulfil(Result { try body() }) }
    return try w.wait("work on the event loop").get()
}

/// Deterministic printable ASCII: byte count equals character count.
func asciiPayload(_ count: Int, seed: Int = 0) -> [UInt8] {
    (0..<count).map { UInt8(0x21 + ($0 &* 31 &+ seed) % 94) }
}

/// An `EventLoop` of the given kind, shut down when the test ends.
extension XCTestCase {
    func makeLoop(_ kind: EventLoopKind) -> EventLoop {
        let loop = EventLoop(kind: kind, label: "test.\(kind)")
        addTeardownBlock { loop.shutdown() }
        return loop
    }
}

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

// MARK: - the independent peer (Python `websockets`)

enum Interop {
    /// The repository root, through the symlinks of a private mini-package if any.
    static var repoRoot: URL {
        URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    static var script: String { repoRoot.appendingPathComponent("Tests/Interop/ws_peer.py").path }

    /// `INTEROP_PYTHON`, else `<repo>/.venv/bin/python`; missing is a failure, never a skip.
    static func python() throws -> String {
        if let p = ProcessInfo.processInfo.environment["INTEROP_PYTHON"], !p.isEmpty {
            guard FileManager.default.isExecutableFile(atPath: p) else {
                throw TestFailure("INTEROP_PYTHON=\(p) is not executable; run scripts/test.sh to create the interop virtualenv")
            }
            return p
        }
        let venv = repoRoot.appendingPathComponent(".venv/bin/python").path
        guard FileManager.default.isExecutableFile(atPath: venv) else {
            throw TestFailure("no Python for the interop tests (INTEROP_PYTHON unset, \(venv) missing): run scripts/test.sh, which creates the virtualenv with the `websockets` package")
        }
        return venv
    }
}

/// A child process that is always terminated (by pid) when the test ends.
final class ChildProcess: @unchecked Sendable {
    let process = Process()
    let stdinPipe = Pipe()
    let stdoutPipe = Pipe()
    let stderrFile: URL
    private let exited = Waiter<Int32>()

    init(_ executable: String, _ arguments: [String]) throws {
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardInput = stdinPipe
        process.standardOutput = stdoutPipe
        stderrFile = FileManager.default.temporaryDirectory.appendingPathComponent("ws_peer-\(UUID().uuidString).stderr")
        FileManager.default.createFile(atPath: stderrFile.path, contents: nil)
        process.standardError = try FileHandle(forWritingTo: stderrFile)
        let exited = self.exited
        process.terminationHandler = { p in exited.fulfil(p.terminationStatus) }
        try process.run()
    }

    var stderrText: String { (try? String(contentsOf: stderrFile, encoding: .utf8)) ?? "" }

    /// Reads stdout until a line starting with `prefix`; returns that line.
    func readLine(startingWith prefix: String, timeout: Double = testDeadline) throws -> String {
        let found = Waiter<String?>()
        let handle = stdoutPipe.fileHandleForReading
        DispatchQueue.global().async {
            var text = ""
            while true {
                let data = handle.availableData
                if data.isEmpty { found.fulfil(nil); return }
                text += String(decoding: data, as: UTF8.self)
                if let line = text.split(separator: "\n").first(where: { $0.hasPrefix(prefix) }) {
                    found.fulfil(String(line))
                    return
                }
            }
        }
        guard let line = try found.wait("'\(prefix)' from the peer process", timeout: timeout) else {
            throw TestFailure("the peer process ended before printing '\(prefix)': \(stderrText)")
        }
        return line
    }

    /// All of stdout until EOF, read in the background.
    func collectOutput() -> Waiter<String> {
        let out = Waiter<String>()
        let handle = stdoutPipe.fileHandleForReading
        DispatchQueue.global().async {
            out.fulfil(String(decoding: handle.readDataToEndOfFile(), as: UTF8.self))
        }
        return out
    }

    func waitForExit(timeout: Double = testDeadline) throws -> Int32 {
        try exited.wait("the peer process to exit", timeout: timeout)
    }

    /// SIGTERM, then SIGKILL if it is still there after a grace period.
    func terminate() {
        try? stdinPipe.fileHandleForWriting.close()
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
        if (try? exited.wait("SIGTERM", timeout: 5)) == nil {
            kill(process.processIdentifier, SIGKILL)
            _ = try? exited.wait("SIGKILL", timeout: 5)
        }
    }

    deinit { try? FileManager.default.removeItem(at: stderrFile) }
}
