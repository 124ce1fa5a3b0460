import Foundation
import Transport
import XCTest
// Waits with deadlines, child processes, the Python peer and the JSON-RPC client: shared with
// the other test targets.
@_exported import TestSupport

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
