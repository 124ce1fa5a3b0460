// Support for the simulator's socket tests: the simulator in process on an ephemeral loopback
// port, a JSON-RPC client over the project's WebSocket client, a blocking HTTP client, the
// `deribit-sim` binary as a child process and a JSON shape comparison. (Waits and
// failures come from the shared TestSupport target.)
import DeribitSim
import Dispatch
import Foundation
import Logging
import Synchronization
import Transport
@_exported import TestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Every wait in the socket tests is bounded by this.
let socketDeadline: Double = testDeadline

typealias SocketTestFailure = TestFailure

/// A value set once from any thread, waited for with a deadline.
typealias Once = Waiter

/// A thread-safe FIFO, popped with a deadline.
final class Inbox<T: Sendable>: Sendable {
    private let items = Mutex<[T]>([])
    private let semaphore = DispatchSemaphore(value: 0)

    func push(_ v: T) {
        items.withLock { $0.append(v) }
        semaphore.signal()
    }

    /// Nil when nothing arrived within `timeout`.
    func pop(timeout: Double) -> T? {
        guard semaphore.wait(timeout: .now() + max(0, timeout)) == .success else { return nil }
        return items.withLock { $0.removeFirst() }
    }
}

/// Runs `body` on `loop` and returns its result to the calling thread.
@discardableResult
func runOnLoop<T: Sendable>(_ loop: EventLoop, _ body: @escaping @Sendable () throws -> T) throws -> T {
    try onLoop(loop, body)
}

func decodeObject(_ bytes: [UInt8]) throws -> [String: Any] {
    guard let obj = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else {
        throw SocketTestFailure("not a JSON object: \(String(decoding: bytes.prefix(500), as: UTF8.self))")
    }
    return obj
}

// MARK: - the simulator in process

/// `SimServerInstance` on its own event loop, listening on 127.0.0.1:0.
final class LiveSim: @unchecked Sendable {
    let loop: EventLoop
    let instance: SimServerInstance
    let port: Int

    init(_ config: SimConfig) throws {
        loop = EventLoop(kind: .dispatch, label: "test.deribit-sim")
        var logger = Logger(label: "deribit-sim.test")
        logger.logLevel = .warning
        let instance = SimServerInstance(config: config, loop: loop, logger: logger)
        self.instance = instance
        port = try runOnLoop(loop) { try instance.start(host: "127.0.0.1", port: 0).port }
    }

    var wsURL: String { "ws://127.0.0.1:\(port)/ws/api/v2" }

    func stop() {
        let instance = self.instance
        try? runOnLoop(loop) { instance.stop() }
        loop.shutdown()
    }

    /// `GET /sim/state` decoded.
    func state() throws -> [String: Any] {
        let r = try httpRequest("GET", port: port, path: "/sim/state")
        guard r.status == 200 else { throw SocketTestFailure("GET /sim/state: \(r.status)") }
        return try decodeObject(r.body)
    }

    /// `POST /sim/...`; returns the status and the decoded body.
    @discardableResult
    func post(_ pathAndQuery: String, body: String = "") throws -> (status: Int, body: [String: Any]) {
        let r = try httpRequest("POST", port: port, path: pathAndQuery, body: Array(body.utf8))
        return (r.status, (try? decodeObject(r.body)) ?? [:])
    }

    /// Polls /sim/state until `condition` holds (no event exists for exchange-side state).
    func waitForState(_ what: String, timeout: Double = socketDeadline, _ condition: ([String: Any]) -> Bool) throws -> [String: Any] {
        var last: [String: Any] = [:]
        try pollUntil("/sim/state to show \(what)", timeout: timeout, detail: { "last: \(last)" }) {
            last = try state()
            return condition(last)
        }
        return last
    }
}

extension XCTestCase {
    /// A simulator stopped when the test ends.
    func startSim(_ config: SimConfig = SimConfig()) throws -> LiveSim {
        let sim = try LiveSim(config)
        addTeardownBlock { sim.stop() }
        return sim
    }

    /// The clients' event loop, shut down when the test ends (after the clients' teardown).
    func clientLoop() -> EventLoop {
        let loop = EventLoop(kind: .dispatch, label: "test.sim-clients")
        addTeardownBlock { loop.shutdown() }
        return loop
    }
}

// MARK: - JSON-RPC client over our WebSocket client

/// Every received text message is kept in order; `response(id:)` and `notification(channel:)`
/// take the first match and leave the others for later.
final class SimClient: @unchecked Sendable {
    let loop: EventLoop
    let ws: WebSocketConnection
    let inbox = Inbox<[UInt8]>()
    let closed = Once<WebSocketCloseEvent>()
    private var backlog: [[UInt8]] = []
    private var nextID = 100

    init(url: String, loop: EventLoop) throws {
        self.loop = loop
        guard let u = WebSocketURL(url) else { throw SocketTestFailure("bad url \(url)") }
        let w = Once<Result<WebSocketConnection, TransportError>>()
        let inbox = self.inbox
        let closed = self.closed
        let limits = WebSocketLimits(maxFrameBytes: 16 << 20, maxMessageBytes: 16 << 20, maxBufferedBytes: 64 << 20)
        WebSocketClient.connect(url: u, loop: loop, limits: limits) { result in
            if case .success(let ws) = result {
                ws.onText = { _, bytes in inbox.push(bytes) }
                ws.onClose = { _, e in closed.fulfil(e) }
            }
            w.fulfil(result)
        }
        ws = try w.wait("WebSocket connect to \(url)").get()
    }

    func sendRaw(_ bytes: [UInt8]) {
        let ws = self.ws
        loop.execute { ws.sendText(bytes) }
    }

    /// Sends a request; returns its id as JSON text.
    @discardableResult
    func send(_ method: String, _ params: [String: Any] = [:]) throws -> String {
        nextID += 1
        let obj: [String: Any] = ["jsonrpc": "2.0", "id": nextID, "method": method, "params": params]
        sendRaw(Array(try JSONSerialization.data(withJSONObject: obj)))
        return String(nextID)
    }

    /// The next message (backlog first); nil when none arrives within `timeout`.
    func next(timeout: Double = socketDeadline) -> [UInt8]? {
        if !backlog.isEmpty { return backlog.removeFirst() }
        return inbox.pop(timeout: timeout)
    }

    private func take(_ what: String, timeout: Double, _ matches: ([UInt8]) -> Bool) throws -> [UInt8] {
        if let i = backlog.firstIndex(where: matches) { return backlog.remove(at: i) }
        let end = Date().addingTimeInterval(timeout)
        while true {
            guard let m = inbox.pop(timeout: end.timeIntervalSinceNow) else {
                throw SocketTestFailure("timed out after \(timeout) s waiting for \(what)")
            }
            if matches(m) { return m }
            backlog.append(m)
        }
    }

    /// The raw bytes of the response whose id is `idJSON` (e.g. `7` or `"abc"`).
    func responseBytes(_ idJSON: String, timeout: Double = socketDeadline) throws -> [UInt8] {
        try take("response id \(idJSON)", timeout: timeout) { m in
            let s = String(decoding: m, as: UTF8.self)
            return s.contains("\"id\":\(idJSON),") || s.contains("\"id\":\(idJSON)}")
        }
    }

    func response(_ idJSON: String, timeout: Double = socketDeadline) throws -> [String: Any] {
        try decodeObject(try responseBytes(idJSON, timeout: timeout))
    }

    func call(_ method: String, _ params: [String: Any] = [:], timeout: Double = socketDeadline) throws -> [String: Any] {
        try response(try send(method, params), timeout: timeout)
    }

    /// A call that must succeed; returns its `result`.
    func result(_ method: String, _ params: [String: Any] = [:], file: StaticString = #filePath, line: UInt = #line) throws -> Any {
        let r = try call(method, params)
        guard let result = r["result"] else { throw SocketTestFailure("\(method) failed: \(r)") }
        return result
    }

    /// The next `subscription` notification on `channel`; its `params.data`.
    func notification(_ channel: String, timeout: Double = socketDeadline) throws -> Any {
        let m = try take("a notification on \(channel)", timeout: timeout) { m in
            guard let o = try? decodeObject(m), o["method"] as? String == "subscription" else { return false }
            return (o["params"] as? [String: Any])?["channel"] as? String == channel
        }
        return ((try decodeObject(m))["params"] as! [String: Any])["data"]!
    }

    func authenticate(_ id: String = "sim-client", _ secret: String = "sim-secret") throws {
        _ = try result("public/auth", ["grant_type": "client_credentials", "client_id": id, "client_secret": secret])
    }

    func close(code: UInt16 = 1000) {
        let ws = self.ws
        loop.execute { ws.close(code: code) }
    }

    /// Closes TCP without a close frame (a client that crashed).
    func kill() {
        let ws = self.ws
        loop.execute { ws.abort() }
    }

    func waitClosed(_ what: String = "the connection to close", timeout: Double = socketDeadline) throws -> WebSocketCloseEvent {
        try closed.wait(what, timeout: timeout)
    }
}

extension XCTestCase {
    func connect(_ sim: LiveSim, _ loop: EventLoop) throws -> SimClient {
        let c = try SimClient(url: sim.wsURL, loop: loop)
        addTeardownBlock { c.kill() }
        return c
    }
}

// MARK: - HTTP

/// A blocking HTTP/1.1 request over a plain socket (Connection: close).
func httpRequest(_ method: String, port: Int, path: String, headers: [String: String] = [:], body: [UInt8] = []) throws -> (status: Int, body: [UInt8]) {
    let r = try HTTPClient.request(method, port: port, path: path, headers: headers, body: body)
    return (r.status, r.body)
}

// MARK: - child processes (the deribit-sim binary, the Python peer)

/// A child process terminated by pid when the test ends.
final class Child: @unchecked Sendable {
    let process = Process()
    private let stdinPipe = Pipe()
    private let stdoutPipe = Pipe()
    private let stderrPipe = Pipe()
    private let exited = Once<Int32>()
    private let stdoutText = Mutex<String>("")
    private let stdoutEOF = Once<Bool>()
    private let stderrText = Mutex<String>("")

    init(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) throws {
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        process.standardInput = stdinPipe
        process.standardOutput = stdoutPipe
        process.standardError = stderrPipe
        let exited = self.exited
        process.terminationHandler = { p in exited.fulfil(p.terminationStatus) }
        try process.run()
        let out = stdoutPipe.fileHandleForReading
        let err = stderrPipe.fileHandleForReading
        DispatchQueue.global().async { [self] in
            while true {
                let d = out.availableData
                if d.isEmpty { stdoutEOF.fulfil(true); return }
                stdoutText.withLock { $0 += String(decoding: d, as: UTF8.self) }
            }
        }
        DispatchQueue.global().async { [self] in
            while true {
                let d = err.availableData
                if d.isEmpty { return }
                stderrText.withLock { $0 += String(decoding: d, as: UTF8.self) }
            }
        }
    }

    var stdout: String { stdoutText.withLock { $0 } }
    var stderr: String { stderrText.withLock { $0 } }

    /// Polls stdout (read in the background) for a line starting with `prefix`.
    func line(startingWith prefix: String, timeout: Double = socketDeadline) throws -> String {
        let end = Date().addingTimeInterval(timeout)
        while Date() < end {
            if let l = stdout.split(separator: "\n").first(where: { $0.hasPrefix(prefix) }) { return String(l) }
            if exited.isSet, stdoutEOF.isSet { break }
            usleep(10_000)
        }
        throw SocketTestFailure("no line '\(prefix)' from \(process.executableURL?.lastPathComponent ?? "child"); stdout: \(stdout) stderr: \(stderr)")
    }

    func waitForExit(timeout: Double = socketDeadline) throws -> Int32 {
        let status = try exited.wait("\(process.executableURL?.lastPathComponent ?? "child") to exit", timeout: timeout)
        _ = try? stdoutEOF.wait("stdout EOF", timeout: 5)
        return status
    }

    /// SIGTERM, then SIGKILL after a grace period.
    func terminate() {
        try? stdinPipe.fileHandleForWriting.close()
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
        if (try? exited.wait("SIGTERM", timeout: 5)) == nil {
            kill(process.processIdentifier, SIGKILL)
            _ = try? exited.wait("SIGKILL", timeout: 5)
        }
    }
}

enum TestPaths {
    /// The repository root.
    static var repoRoot: URL {
        URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// A product of this package, next to the test bundle.
    static func product(_ name: String) throws -> String {
        let bundle = Bundle.main.bundleURL
        let dir = bundle.pathExtension == "xctest" ? bundle.deletingLastPathComponent() : bundle
        let p = dir.appendingPathComponent(name).path
        guard FileManager.default.isExecutableFile(atPath: p) else {
            throw SocketTestFailure("\(p) not found: build the package first (swift build --build-tests)")
        }
        return p
    }

    /// `INTEROP_PYTHON`, else `<repo>/.venv/bin/python`; missing is a failure, never a skip.
    static func python() throws -> String {
        if let p = ProcessInfo.processInfo.environment["INTEROP_PYTHON"], !p.isEmpty {
            guard FileManager.default.isExecutableFile(atPath: p) else {
                throw SocketTestFailure("INTEROP_PYTHON=\(p) is not executable; run scripts/test.sh to create the interop virtualenv")
            }
            return p
        }
        let venv = repoRoot.appendingPathComponent(".venv/bin/python").path
        guard FileManager.default.isExecutableFile(atPath: venv) else {
            throw SocketTestFailure("no Python for the interop tests (INTEROP_PYTHON unset, \(venv) missing): run scripts/test.sh, which creates the virtualenv with the `websockets` package")
        }
        return venv
    }
}

extension XCTestCase {
    /// The `deribit-sim` binary on 127.0.0.1:0 with `arguments`; stopped when the test ends.
    func startSimBinary(_ arguments: [String]) throws -> (child: Child, port: Int) {
        let child = try Child(try TestPaths.product("deribit-sim"), ["--listen", "127.0.0.1:0", "--log-level", "warning"] + arguments)
        addTeardownBlock { child.terminate() }
        let line = try child.line(startingWith: "deribit-sim listening on")
        guard let port = Int(line.split(separator: ":").last ?? "") else { throw SocketTestFailure("bad line: \(line)") }
        return (child, port)
    }
}

// MARK: - JSON shapes

enum JSONKind: String { case null, bool, number, string, array, object }

func jsonKind(_ v: Any) -> JSONKind {
    switch v {
    case is NSNull: return .null
    case let n as NSNumber: return String(cString: n.objCType) == "c" ? .bool : .number
    case is String: return .string
    case is [Any]: return .array
    case is [String: Any]: return .object
    default: return .null
    }
}

/// Every field of Deribit's documented example must be present in `actual` with the same JSON
/// type, recursively (array elements against the example's first element; a mixed-type array is a
/// tuple, compared position by position). A `null` in the
/// example accepts any type. Extra fields in `actual` are allowed. Returns the differences.
func shapeDifferences(_ actual: Any, _ documented: Any, _ path: String = "$") -> [String] {
    let want = jsonKind(documented)
    if want == .null { return [] }
    let got = jsonKind(actual)
    guard got == want else { return ["\(path): documented \(want.rawValue), got \(got.rawValue) (\(actual))"] }
    switch want {
    case .object:
        let a = actual as! [String: Any]
        var out: [String] = []
        for (k, v) in documented as! [String: Any] {
            guard let av = a[k] else { out.append("\(path).\(k): missing"); continue }
            out += shapeDifferences(av, v, "\(path).\(k)")
        }
        return out
    case .array:
        let doc = documented as! [Any]
        let items = actual as! [Any]
        guard let model = doc.first else { return [] }
        if Set(doc.map { jsonKind($0) }).count > 1 {
            // A tuple such as ["new", price, amount]: position by position.
            guard items.count == doc.count else { return ["\(path): documented \(doc.count) items, got \(items.count)"] }
            return zip(items, doc).enumerated().flatMap { shapeDifferences($0.element.0, $0.element.1, "\(path)[\($0.offset)]") }
        }
        return items.enumerated().flatMap { shapeDifferences($0.element, model, "\(path)[\($0.offset)]") }
    default:
        return []
    }
}

func parseJSON(_ text: String) -> Any {
    try! JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
}

func assertShape(_ actual: Any?, documented: String, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
    guard let actual else { return XCTFail("\(what): no value", file: file, line: line) }
    let diffs = shapeDifferences(actual, parseJSON(documented))
    XCTAssert(diffs.isEmpty, "\(what) differs from Deribit's documented example:\n" + diffs.joined(separator: "\n"), file: file, line: line)
}
