// The simulator driven by an independent client (Python `websockets`), and the binary's --help
// checked against docs/SIM.md.
import DeribitSim
import Foundation
import XCTest

final class SocketInteropTests: XCTestCase {
    func testPythonWebsocketsClient() throws {
        let python = try Interop.python()
        let script = Interop.repoRoot.appendingPathComponent("Tests/Interop/sim_peer.py").path
        var config = SimConfig()
        config.notificationRatePerSecond = 200
        let sim = try startSim(config)
        let peer = try ChildProcess(python, [script, String(sim.port), "sim-client", "sim-secret"])
        addTeardownBlock { peer.terminate() }
        // Read while it runs: a full stdout pipe would stall the peer.
        let output = peer.collectOutput()
        let status = try peer.waitForExit(timeout: 120)
        let stdout = try output.wait("the output of sim_peer.py")
        guard let summary = stdout.split(separator: "\n").first(where: { $0.hasPrefix("{") }).map(String.init) else {
            throw TestFailure("no summary line from sim_peer.py; stdout: \(stdout) stderr: \(peer.stderrText)")
        }
        let obj = try decodeObject(Array(summary.utf8))
        XCTAssertEqual(status, 0, "sim_peer.py failed: \(summary)\n\(peer.stderrText)")
        XCTAssertEqual(obj["ok"] as? Bool, true, summary)
        XCTAssertGreaterThanOrEqual((obj["checks"] as? [String: Any])?.count ?? 0, 15, summary)
        // What the exchange saw: the Python client's calls, nothing left open.
        let state = try sim.waitForState("the peer gone") { ($0["connections"] as? [Any])?.isEmpty == true }
        let calls = state["method_calls"] as? [String: Int] ?? [:]
        XCTAssertEqual(calls["private/buy"], 1)
        XCTAssertEqual(calls["private/cancel"], 1)
        XCTAssertEqual((state["open_orders"] as? [Any])?.count, 0)
    }

    /// Every flag of the binary is documented in docs/SIM.md's table with the same default, and
    /// `--help` shows every default.
    func testHelpDocumentsEveryFlagWithItsDefault() throws {
        let child = try ChildProcess(try Products.path("deribit-sim"), ["--help"])
        addTeardownBlock { child.terminate() }
        let output = child.collectOutput()
        XCTAssertEqual(try child.waitForExit(), 0)
        let help = try output.wait("the output of deribit-sim --help")

        // --help: flag → its text (the lines until the next option).
        var blocks: [String: String] = [:]
        var current: String?
        for line in help.split(separator: "\n", omittingEmptySubsequences: false) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("--") || trimmed.hasPrefix("-h") {
                current = trimmed.split(separator: " ").first.map { String($0).trimmingCharacters(in: CharacterSet(charactersIn: ",")) }
                if trimmed.hasPrefix("-h") { current = "--help" }
            }
            if let c = current { blocks[c, default: ""] += " " + trimmed }
        }
        blocks["--help"] = nil
        XCTAssertGreaterThanOrEqual(blocks.count, 18, help)

        // docs/SIM.md: | `--a` / `--b` | `1` / `2` | meaning |
        let doc = try String(contentsOf: Interop.repoRoot.appendingPathComponent("docs/SIM.md"), encoding: .utf8)
        var documented: [String: String] = [:]
        for line in doc.split(separator: "\n") where line.hasPrefix("| `--") {
            let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            let flags = cells[0].split(separator: "/").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: " `")) }
            let defaults = cells[1].split(separator: "/").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: " `")) }
            for (i, f) in flags.enumerated() { documented[f] = defaults.count == flags.count ? defaults[i] : cells[1] }
        }
        XCTAssertEqual(Set(documented.keys), Set(blocks.keys), "flags in docs/SIM.md vs --help")

        func sameValue(_ a: String, _ b: String) -> Bool {
            if let x = Double(a), let y = Double(b) { return x == y }
            return a == b
        }
        for (flag, text) in blocks {
            // "(default: 10.0)" from ArgumentParser, or "Default: …" in the help text of optional flags.
            let shown = text.range(of: "(default: ").map { String(text[$0.upperBound...].prefix { $0 != ")" }) }
                ?? text.range(of: "Default: ").map { String(text[$0.upperBound...].prefix { $0 != "." && $0 != "," }) }
            guard let shown else { XCTFail("\(flag): --help shows no default: \(text)"); continue }
            guard let doc = documented[flag] else { continue }
            if doc.hasPrefix("see below") { continue }   // the instrument list, spelled out under the table
            XCTAssert(sameValue(shown.trimmingCharacters(in: .whitespaces), doc), "\(flag): --help default \(shown), docs/SIM.md \(doc)")
        }

        // The Deribit values the defaults stand for.
        let deribit: [String: Double] = [
            "--token-lifetime": 31_536_000, "--credit-cost": 500, "--credit-max": 50_000, "--credit-refill": 10_000,
            "--subscribe-cost": 3_000, "--subscribe-max": 30_000, "--subscribe-refill": 10_000,
            "--me-rate": 5, "--me-burst": 20, "--max-frame-bytes": 32_768,
        ]
        for (flag, value) in deribit {
            XCTAssertEqual(documented[flag].flatMap(Double.init), value, "\(flag) is not Deribit's \(value)")
        }
        let defaults = SimConfig()
        XCTAssertEqual(defaults.tokenLifetimeSeconds, 31_536_000)
        XCTAssertEqual(defaults.maxFrameBytes, 32_768)
    }
}
