import Dispatch
import Foundation
import Synchronization
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

// MARK: - the products under test

/// Where `swift build` put the executables (next to the test bundle on Linux).
enum Products {
    static var directory: URL {
        let bundle = Bundle.main.bundleURL
        return bundle.pathExtension == "xctest" ? bundle.deletingLastPathComponent() : bundle
    }

    static func path(_ name: String) throws -> String {
        let p = directory.appendingPathComponent(name).path
        guard FileManager.default.isExecutableFile(atPath: p) else {
            throw TestFailure("\(p) not found: build the package first (swift build)")
        }
        return p
    }
}

/// A running `deribit-sim` on an ephemeral loopback port; stopped by pid when the test ends.
final class SimProcess: @unchecked Sendable {
    let child: ChildProcess
    let port: Int

    /// `extraArguments` as in `deribit-sim --help` (e.g. `["--rate", "50"]`).
    init(_ extraArguments: [String] = [], keys: String = "gw:gw-secret") throws {
        child = try ChildProcess(try Products.path("deribit-sim"), ["--listen", "127.0.0.1:0", "--keys", keys] + extraArguments)
        let line = try child.readLine(startingWith: "deribit-sim listening on")
        guard let p = Int(line.split(separator: ":").last ?? "") else { throw TestFailure("bad line from deribit-sim: \(line)") }
        port = p
    }

    var wsURL: String { "ws://127.0.0.1:\(port)/ws/api/v2" }

    /// `GET /sim/state` decoded.
    func state() throws -> [String: Any] {
        let r = try HTTPClient.request("GET", port: port, path: "/sim/state")
        guard r.status == 200, let obj = try JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any] else {
            throw TestFailure("GET /sim/state: \(r.status) \(String(decoding: r.body, as: UTF8.self))")
        }
        return obj
    }

    /// `POST /sim/fault/...` or `/sim/publish`.
    @discardableResult
    func post(_ pathAndQuery: String, body: String = "") throws -> Int {
        try HTTPClient.request("POST", port: port, path: pathAndQuery, body: Array(body.utf8)).status
    }

    func stop() { child.terminate() }
}

/// A running `deribit-gateway` with a config written to a temp file; stopped by pid.
final class GatewayProcess: @unchecked Sendable {
    let child: ChildProcess
    let port: Int
    let configFile: URL

    /// `config` is the JSON text of the config file; `listen` is forced to 127.0.0.1:0.
    init(config: [String: Any], arguments: [String] = []) throws {
        var c = config
        c["listen"] = "127.0.0.1:0"
        // scripts/test.sh runs this suite once per event loop (SPEC §10: both pass the same tests).
        if c["transport"] == nil, let kind = ProcessInfo.processInfo.environment["E2E_EVENT_LOOP"], !kind.isEmpty {
            c["transport"] = ["event_loop": kind]
        }
        configFile = FileManager.default.temporaryDirectory.appendingPathComponent("gw-\(UUID().uuidString).json")
        try JSONSerialization.data(withJSONObject: c).write(to: configFile)
        child = try ChildProcess(try Products.path("deribit-gateway"), ["--config", configFile.path, "--log-level", "debug"] + arguments)
        let line = try child.readLine(startingWith: "deribit-gateway listening on")
        guard let p = Int(line.split(separator: ":").last ?? "") else { throw TestFailure("bad line from deribit-gateway: \(line)") }
        port = p
    }

    /// The usual test config: upstream = the simulator with its key, plus `clients`.
    static func config(sim: SimProcess, clients: [[String: Any]] = [], upstream: [String: Any] = [:], extra: [String: Any] = [:]) -> [String: Any] {
        var up: [String: Any] = ["url": sim.wsURL, "client_id": "gw", "client_secret": "gw-secret",
                                 "reconnect_min_ms": 50, "reconnect_max_ms": 500]
        for (k, v) in upstream { up[k] = v }
        var c: [String: Any] = ["upstream": up, "clients": clients]
        for (k, v) in extra { c[k] = v }
        return c
    }

    var wsURL: String { "ws://127.0.0.1:\(port)/ws/api/v2" }

    func health() throws -> (status: Int, body: [String: Any]) {
        let r = try HTTPClient.request("GET", port: port, path: "/health")
        return (r.status, (try? JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any]) ?? [:])
    }

    /// Polls /health until it answers `status` (an event we cannot subscribe to), with a deadline.
    func waitForHealth(_ status: Int, timeout: Double = testDeadline) throws {
        let end = Date().addingTimeInterval(timeout)
        while Date() < end {
            if let h = try? health(), h.status == status { return }
            usleep(20_000)
        }
        throw TestFailure("gateway /health did not become \(status) within \(timeout) s")
    }

    func stop() {
        child.terminate()
        try? FileManager.default.removeItem(at: configFile)
    }
}

/// A blocking TCP connection to 127.0.0.1:`port` whose reads time out at the test deadline.
func connectBlocking(port: Int) throws -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestFailure("socket: \(errno)") }
    var tv = timeval(tv_sec: Int(testDeadline), tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = in_port_t(UInt16(port).bigEndian)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    guard rc == 0 else {
        close(fd)
        throw TestFailure("connect 127.0.0.1:\(port): errno \(errno)")
    }
    return fd
}

/// A blocking HTTP/1.1 request over a plain socket (Connection: close).
enum HTTPClient {
    static func request(_ method: String, port: Int, path: String, headers: [String: String] = [:], body: [UInt8] = []) throws -> (status: Int, body: [UInt8], headers: [String: String]) {
        let fd = try connectBlocking(port: port)
        defer { close(fd) }
        var text = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\nContent-Length: \(body.count)\r\n"
        for (k, v) in headers { text += "\(k): \(v)\r\n" }
        text += "\r\n"
        let out = Array(text.utf8) + body
        var sent = 0
        while sent < out.count {
            let n = out[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw TestFailure("send: errno \(errno)") }
            sent += n
        }
        var response: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n == 0 { break }
            guard n > 0 else { throw TestFailure("recv: errno \(errno) after \(response.count) bytes") }
            response += buf[0..<n]
        }
        guard let sep = response.firstRange(of: Array("\r\n\r\n".utf8)) else { throw TestFailure("no HTTP head in \(response.count) bytes") }
        let head = String(decoding: response[..<sep.lowerBound], as: UTF8.self).split(separator: "\r\n")
        guard let statusLine = head.first, let status = Int(statusLine.split(separator: " ")[1]) else { throw TestFailure("bad status line") }
        var hs: [String: String] = [:]
        for line in head.dropFirst() {
            if let c = line.firstIndex(of: ":") {
                hs[line[..<c].lowercased()] = line[line.index(after: c)...].trimmingCharacters(in: .whitespaces)
            }
        }
        return (status, Array(response[sep.upperBound...]), hs)
    }
}

/// A JSON-RPC client over our own WebSocket client, driven synchronously from the test thread.
/// Every received message is kept in order; `call` waits for the response with its id.
final class RPCClient: @unchecked Sendable {
    let loop: EventLoop
    let ws: WebSocketConnection
    let messages = Channel<[UInt8]>()
    let closed = Waiter<WebSocketCloseEvent>()
    private var backlog: [[UInt8]] = []
    private var nextID = 1

    init(url: String, loop: EventLoop) throws {
        self.loop = loop
        guard let u = WebSocketURL(url) else { throw TestFailure("bad url \(url)") }
        let w = Waiter<Result<WebSocketConnection, TransportError>>()
        let messages = self.messages
        let closed = self.closed
        WebSocketClient.connect(url: u, loop: loop, limits: WebSocketLimits(maxFrameBytes: 64 << 20, maxMessageBytes: 64 << 20, maxBufferedBytes: 256 << 20)) { result in
            if case .success(let ws) = result {
                ws.onText = { _, bytes in messages.push(bytes) }
                ws.onClose = { _, e in closed.fulfil(e) }
            }
            w.fulfil(result)
        }
        ws = try w.wait("WebSocket connect to \(url)").get()
    }

    func sendRaw(_ text: String) {
        let bytes = Array(text.utf8)
        let ws = self.ws
        loop.execute { ws.sendText(bytes) }
    }

    /// Sends a request and returns its id.
    @discardableResult
    func send(_ method: String, _ params: [String: Any] = [:], id: Any? = nil) throws -> Any {
        let rid: Any = id ?? { nextID += 1; return nextID }()
        let obj: [String: Any] = ["jsonrpc": "2.0", "id": rid, "method": method, "params": params]
        sendRaw(String(decoding: try JSONSerialization.data(withJSONObject: obj), as: UTF8.self))
        return rid
    }

    /// The next message, from the backlog first.
    func next(_ what: String = "a message", timeout: Double = testDeadline) throws -> [UInt8] {
        if !backlog.isEmpty { return backlog.removeFirst() }
        return try messages.next(what, timeout: timeout)
    }

    static func decode(_ bytes: [UInt8]) throws -> [String: Any] {
        guard let obj = try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else {
            throw TestFailure("not a JSON object: \(String(decoding: bytes, as: UTF8.self))")
        }
        return obj
    }

    /// Waits for the response whose raw id bytes are `idJSON` (e.g. `7` or `"abc"`); other
    /// messages stay in the backlog in order. Returns the raw bytes.
    func response(idJSON: String, timeout: Double = testDeadline) throws -> [UInt8] {
        var skipped: [[UInt8]] = []
        defer { backlog.insert(contentsOf: skipped, at: 0) }
        let end = Date().addingTimeInterval(timeout)
        while true {
            let m: [UInt8]
            if let i = backlog.firstIndex(where: { Self.hasID($0, idJSON) }) {
                return backlog.remove(at: i)
            }
            m = try messages.next("response id \(idJSON)", timeout: max(0.01, end.timeIntervalSinceNow))
            if Self.hasID(m, idJSON) { return m }
            skipped.append(m)
        }
    }

    static func hasID(_ m: [UInt8], _ idJSON: String) -> Bool {
        let s = String(decoding: m, as: UTF8.self)
        return s.contains("\"id\":\(idJSON),") || s.contains("\"id\":\(idJSON)}")
    }

    /// Calls a method and returns the decoded response object.
    func call(_ method: String, _ params: [String: Any] = [:], timeout: Double = testDeadline) throws -> [String: Any] {
        let id = try send(method, params)
        return try Self.decode(try response(idJSON: "\(id)", timeout: timeout))
    }

    /// The next `subscription` notification for `channel` (others are kept in order).
    func notification(channel: String, timeout: Double = testDeadline) throws -> [String: Any] {
        var skipped: [[UInt8]] = []
        defer { backlog.insert(contentsOf: skipped, at: 0) }
        let end = Date().addingTimeInterval(timeout)
        while true {
            let m = try messages.next("notification on \(channel)", timeout: max(0.01, end.timeIntervalSinceNow))
            let obj = try Self.decode(m)
            if (obj["params"] as? [String: Any])?["channel"] as? String == channel { return obj }
            skipped.append(m)
        }
    }

    func close(code: UInt16 = 1000) {
        let ws = self.ws
        loop.execute { ws.close(code: code) }
    }

    /// Closes the TCP connection without a close frame (a strategy that crashed).
    func kill() {
        let ws = self.ws
        loop.execute { ws.abort() }
    }
}
