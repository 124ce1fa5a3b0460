import Dispatch
import Foundation
import Synchronization
import Transport
import XCTest
// Waits with deadlines, child processes and the Python peer: shared with the other test targets.
@_exported import TestSupport
#if canImport(Glibc)
import Glibc
#endif

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
        try pollUntil("gateway /health \(status)", timeout: timeout) { (try? health())?.status == status }
    }

    func stop() {
        child.terminate()
        try? FileManager.default.removeItem(at: configFile)
    }
}

extension XCTestCase {
    /// Starts `deribit-sim` and a gateway in front of it, both stopped by pid when the test
    /// ends, and waits until the gateway's /health answers 200.
    func startGateway(
        simArguments: [String] = [], clients: [[String: Any]] = [], upstream: [String: Any] = [:], extra: [String: Any] = [:]
    ) throws -> (SimProcess, GatewayProcess) {
        let sim = try SimProcess(simArguments)
        addTeardownBlock { sim.stop() }
        let gw = try GatewayProcess(config: GatewayProcess.config(sim: sim, clients: clients, upstream: upstream, extra: extra))
        addTeardownBlock { gw.stop() }
        try gw.waitForHealth(200)
        return (sim, gw)
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
