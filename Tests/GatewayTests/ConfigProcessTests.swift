import Foundation
import XCTest

/// Runs the built `deribit-gateway` with `--check-config` and checks exit status and output (SPEC §3).
final class ConfigProcessTests: XCTestCase {
    struct Outcome {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// The executable sits beside the test bundle in the products directory (`.build/debug/`).
    static func gatewayExecutable() throws -> URL {
        let candidates = [
            Bundle.main.bundleURL,
            Bundle(for: ConfigProcessTests.self).bundleURL.deletingLastPathComponent(),
        ].map { $0.appendingPathComponent("deribit-gateway") }
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) else {
            // `swift test` builds every product; a missing binary is a failure, not a skip.
            throw MissingExecutable(looked: candidates.map(\.path))
        }
        return found
    }

    struct MissingExecutable: Error, CustomStringConvertible {
        var looked: [String]
        var description: String { "deribit-gateway is not built next to the tests (looked at \(looked))" }
    }

    private var temporaryDirectory: URL!

    override func setUpWithError() throws {
        temporaryDirectory = FileManager.default.temporaryDirectory
            .appendingPathComponent("config-process-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: temporaryDirectory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: temporaryDirectory)
    }

    private func writeConfig(_ json: String) throws -> String {
        let url = temporaryDirectory.appendingPathComponent("\(UUID().uuidString).json")
        try Data(json.utf8).write(to: url)
        return url.path
    }

    /// Runs the gateway with a clean environment; terminates it if it runs past `deadline`.
    private func runGateway(_ arguments: [String], environment: [String: String] = [:], deadline: TimeInterval = 20) throws -> Outcome {
        let process = Process()
        process.executableURL = try Self.gatewayExecutable()
        process.arguments = arguments
        process.environment = environment.merging(["PATH": "/usr/bin:/bin"]) { mine, _ in mine }
        let stdoutURL = temporaryDirectory.appendingPathComponent("\(UUID().uuidString).out")
        let stderrURL = temporaryDirectory.appendingPathComponent("\(UUID().uuidString).err")
        _ = FileManager.default.createFile(atPath: stdoutURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: stderrURL.path, contents: nil)
        let stdoutHandle = try FileHandle(forWritingTo: stdoutURL)
        let stderrHandle = try FileHandle(forWritingTo: stderrURL)
        defer {
            try? stdoutHandle.close()
            try? stderrHandle.close()
        }
        process.standardOutput = stdoutHandle
        process.standardError = stderrHandle
        process.standardInput = FileHandle.nullDevice

        let exited = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in exited.signal() }
        try process.run()
        if exited.wait(timeout: .now() + deadline) == .timedOut {
            process.terminate()
            _ = exited.wait(timeout: .now() + 5)
            XCTFail("deribit-gateway \(arguments) ran longer than \(deadline) s")
        }
        return Outcome(
            status: process.terminationStatus,
            stdout: String(decoding: try Data(contentsOf: stdoutURL), as: UTF8.self),
            stderr: String(decoding: try Data(contentsOf: stderrURL), as: UTF8.self))
    }

    func testExampleChecksOK() throws {
        let outcome = try runGateway(["--check-config", "--config", ConfigTests.examplePath])
        XCTAssertEqual(outcome.status, 0, outcome.stderr)
        XCTAssertEqual(outcome.stdout, "config OK\n")
        XCTAssertTrue(outcome.stderr.contains("no upstream credentials: public-only mode"), outcome.stderr)
    }

    func testDefaultsCheckOK() throws {
        let outcome = try runGateway(["--check-config"])
        XCTAssertEqual(outcome.status, 0, outcome.stderr)
        XCTAssertEqual(outcome.stdout, "config OK\n")
    }

    func testBrokenFilesExit78WithKeyPaths() throws {
        let cases: [(String, [String: String], [String])] = [
            (#"{"upstream": {"credits": {"max": "many"}}, "bogus": 1}"#, [:], [
                "config error: bogus: unknown key",
                "config error: upstream.credits.max: expected an integer, got string",
            ]),
            (#"{"listen": "127.0.0.1:70000"}"#, [:], ["config error: listen: port 70000 out of range 0-65535"]),
            (#"{"clients": [{"name": "mm", "secret_env": "MM_SECRET", "scope": "trade"}]}"#, [:],
             ["config error: clients[0].secret_env: environment variable MM_SECRET is not set"]),
            (#"{"listen": "#, [:], ["invalid JSON at line 1"]),
        ]
        for (json, environment, expected) in cases {
            let path = try writeConfig(json)
            let outcome = try runGateway(["--check-config", "--config", path], environment: environment)
            XCTAssertEqual(outcome.status, 78, "\(json): \(outcome.stderr)")
            XCTAssertEqual(outcome.stdout, "", json)
            for line in expected {
                XCTAssertTrue(outcome.stderr.contains(line), "\(json): expected \"\(line)\" in \(outcome.stderr)")
            }
        }
    }

    func testEnvironmentResolvesSecretsWhichNeverPrint() throws {
        let path = try writeConfig(#"""
            {
              "upstream": { "client_id_env": "DERIBIT_CLIENT_ID", "client_secret_env": "DERIBIT_CLIENT_SECRET" },
              "clients": [ { "name": "mm", "secret_env": "MM_SECRET", "scope": "trade" } ]
            }
            """#)
        let outcome = try runGateway(
            ["--check-config", "--config", path, "--log-level", "trace"],
            environment: ["DERIBIT_CLIENT_ID": "id-1", "DERIBIT_CLIENT_SECRET": "TOPSECRET-UP", "MM_SECRET": "TOPSECRET-MM"])
        XCTAssertEqual(outcome.status, 0, outcome.stderr)
        XCTAssertEqual(outcome.stdout, "config OK\n")
        XCTAssertFalse(outcome.stderr.contains("public-only"), outcome.stderr)
        XCTAssertFalse(outcome.stderr.contains("TOPSECRET"), outcome.stderr)
    }

    func testFlagsOverrideTheFile() throws {
        let refused = try runGateway(["--check-config", "--config", ConfigTests.examplePath, "--listen", "127.0.0.1:70000"])
        XCTAssertEqual(refused.status, 78)
        XCTAssertTrue(refused.stderr.contains("config error: --listen: port 70000 out of range 0-65535"), refused.stderr)

        let exposed = try runGateway(["--check-config", "--listen", "0.0.0.0:8777"])
        XCTAssertEqual(exposed.status, 78)
        XCTAssertTrue(exposed.stderr.contains("config error: --listen: non-loopback address 0.0.0.0:8777"), exposed.stderr)

        let url = try runGateway(["--check-config", "--upstream-url", "https://www.deribit.com"])
        XCTAssertEqual(url.status, 78)
        XCTAssertTrue(url.stderr.contains(#"config error: --upstream-url: scheme must be ws or wss, got "https""#), url.stderr)

        let accepted = try runGateway(["--check-config", "--config", ConfigTests.examplePath,
                                       "--listen", "[::1]:9100", "--upstream-url", "ws://127.0.0.1:9200/ws/api/v2"])
        XCTAssertEqual(accepted.status, 0, accepted.stderr)
    }

    func testBadLogLevelIsAUsageError() throws {
        let outcome = try runGateway(["--check-config", "--log-level", "loud"])
        XCTAssertEqual(outcome.status, 64, "EX_USAGE from ArgumentParser")
        XCTAssertTrue(outcome.stderr.contains("log-level"), outcome.stderr)
    }
}
