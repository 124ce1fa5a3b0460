// Support for the simulator's socket tests: the simulator in process on an ephemeral loopback
// port, the `deribit-sim` binary as a child process and a JSON shape comparison. (Waits,
// failures, child processes, the HTTP client and the JSON-RPC client come from the shared
// TestSupport target.)
import DeribitSim
import Foundation
import Logging
import Transport
@_exported import TestSupport
import XCTest

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
        port = try onLoop(loop) { try instance.start(host: "127.0.0.1", port: 0).port }
    }

    var wsURL: String { "ws://127.0.0.1:\(port)/ws/api/v2" }

    func stop() {
        let instance = self.instance
        try? onLoop(loop) { instance.stop() }
        loop.shutdown()
    }

    /// `GET /sim/state` decoded.
    func state() throws -> [String: Any] {
        let r = try HTTPClient.request("GET", port: port, path: "/sim/state")
        guard r.status == 200 else { throw TestFailure("GET /sim/state: \(r.status)") }
        return try decodeObject(r.body)
    }

    /// `POST /sim/...`; returns the status and the decoded body.
    @discardableResult
    func post(_ pathAndQuery: String, body: String = "") throws -> (status: Int, body: [String: Any]) {
        let r = try HTTPClient.request("POST", port: port, path: pathAndQuery, body: Array(body.utf8))
        return (r.status, (try? decodeObject(r.body)) ?? [:])
    }

    /// Polls /sim/state until `condition` holds (no event exists for exchange-side state).
    func waitForState(_ what: String, timeout: Double = testDeadline, _ condition: ([String: Any]) -> Bool) throws -> [String: Any] {
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

// MARK: - JSON-RPC clients (TestSupport's RPCClient)

extension XCTestCase {
    /// A client of `sim`, dropped when the test ends.
    func connect(_ sim: LiveSim, _ loop: EventLoop) throws -> RPCClient {
        let c = try RPCClient(url: sim.wsURL, loop: loop)
        addTeardownBlock { c.kill() }
        return c
    }
}

extension RPCClient {
    /// `public/auth` with the simulator's default test key.
    func authenticate(_ id: String = "sim-client", _ secret: String = "sim-secret") throws {
        _ = try result("public/auth", ["grant_type": "client_credentials", "client_id": id, "client_secret": secret])
    }
}

extension XCTestCase {
    /// The `deribit-sim` binary on 127.0.0.1:0 with `arguments`; stopped when the test ends.
    func startSimBinary(_ arguments: [String]) throws -> (child: ChildProcess, port: Int) {
        let child = try ChildProcess(try Products.path("deribit-sim"), ["--listen", "127.0.0.1:0", "--log-level", "warning"] + arguments)
        addTeardownBlock { child.terminate() }
        let line = try child.readLine(startingWith: "deribit-sim listening on")
        guard let port = Int(line.split(separator: ":").last ?? "") else { throw TestFailure("bad line: \(line)") }
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
