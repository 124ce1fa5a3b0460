import Foundation
import TLS
import Transport
import XCTest

/// Interop with an independent RFC 6455 implementation: Python's `websockets`, driven by
/// Tests/Interop/ws_peer.py (scripts/test.sh installs it into .venv).
final class InteropTests: XCTestCase {
    /// The message sizes around the length encodings of RFC 6455 §5.2 (7-bit, 16-bit, 64-bit).
    static let sizes = [0, 125, 126, 64 * 1024, 1024 * 1024]

    // MARK: our server ← Python client

    func testPythonClientAgainstOurServer_dispatch() throws { try pythonClientAgainstOurServer(.dispatch) }
    func testPythonClientAgainstOurServer_epoll() throws { try pythonClientAgainstOurServer(.epoll) }

    private func pythonClientAgainstOurServer(_ kind: EventLoopKind) throws {
        let loop = makeLoop(kind)
        let events = ServerEvents()
        let port = try startEchoServer(on: loop, events: events, testCase: self)
        let child = try ChildProcess(try Interop.python(), [Interop.script, "client", "ws://127.0.0.1:\(port)/ws"])
        defer { child.terminate() }
        let output = child.collectOutput()
        let status = try child.waitForExit(timeout: 3 * testDeadline)
        let text = try output.wait("the peer's output")
        XCTAssertEqual(status, 0, "ws_peer.py client failed: \(text) \(child.stderrText)")
        XCTAssertTrue(text.contains("\"ok\": true"), text)
        // The Python client started the close handshake with 1000.
        let close = try events.closes.next("the server-side close event")
        XCTAssertEqual(close.code, 1000)
        XCTAssertFalse(close.initiatedLocally)
    }

    // MARK: our client → Python server

    func testOurClientAgainstPythonServer_dispatch() throws { try ourClientAgainstPythonServer(.dispatch) }
    func testOurClientAgainstPythonServer_epoll() throws { try ourClientAgainstPythonServer(.epoll) }

    private func ourClientAgainstPythonServer(_ kind: EventLoopKind) throws {
        let loop = makeLoop(kind)
        let (child, port) = try startPythonServer()
        defer { child.terminate() }
        let peer = try ClientPeer.connect("ws://127.0.0.1:\(port)/ws", loop: loop).get()
        for (seed, size) in Self.sizes.enumerated() {
            let payload = asciiPayload(size, seed: seed)
            let echoed = try peer.roundTrip(payload)
            XCTAssertEqual(echoed.count, size)
            XCTAssertTrue(echoed == payload, "echo of \(size) bytes differs")
        }
        let utf8 = Array("multi-byte: é ✓ 𝄞".utf8)
        XCTAssertEqual(try peer.roundTrip(utf8), utf8)
        let close = try peer.close()
        XCTAssertEqual(close.code, 1000)
        XCTAssertTrue(close.initiatedLocally)
    }

    // MARK: our client → Python server over TLS

    func testOurClientAgainstPythonTLSServer_dispatch() throws { try ourClientAgainstPythonTLSServer(.dispatch) }
    func testOurClientAgainstPythonTLSServer_epoll() throws { try ourClientAgainstPythonTLSServer(.epoll) }

    private func ourClientAgainstPythonTLSServer(_ kind: EventLoopKind) throws {
        let loop = makeLoop(kind)
        let dir = try temporaryDirectory()
        let certs = try TestCertificates.make(in: dir.appendingPathComponent("good"))
        let (child, port) = try startPythonServer(tls: (certs.certFile, certs.keyFile))
        defer { child.terminate() }

        // Trusted through our CA file: works, byte-exact both ways.
        let trusted = TLSContextBox(context: try TLSContext.client(caFile: certs.caFile))
        let peer = try ClientPeer.connect("wss://localhost:\(port)/ws", loop: loop, tls: trusted).get()
        for (seed, size) in Self.sizes.enumerated() {
            let payload = asciiPayload(size, seed: seed)
            XCTAssertTrue(try peer.roundTrip(payload) == payload, "TLS echo of \(size) bytes differs")
        }
        XCTAssertEqual(try peer.close().code, 1000)

        // The system store does not know our throwaway CA.
        switch try ClientPeer.connect("wss://localhost:\(port)/ws", loop: loop, tls: nil) {
        case .success: XCTFail("an untrusted certificate was accepted")
        case .failure(.tls(let e)): XCTAssertEqual(e.kind, .certificateVerifyFailed, "\(e)")
        case .failure(let other): XCTFail("expected a TLS error, got \(other)")
        }
    }

    func testTLSNameMismatchFails_dispatch() throws { try tlsNameMismatchFails(.dispatch) }
    func testTLSNameMismatchFails_epoll() throws { try tlsNameMismatchFails(.epoll) }

    private func tlsNameMismatchFails(_ kind: EventLoopKind) throws {
        let loop = makeLoop(kind)
        let dir = try temporaryDirectory()
        // A chain we trust, but for another name.
        let certs = try TestCertificates.make(in: dir.appendingPathComponent("other"), names: "DNS:other.example")
        let (child, port) = try startPythonServer(tls: (certs.certFile, certs.keyFile))
        defer { child.terminate() }
        let trusted = TLSContextBox(context: try TLSContext.client(caFile: certs.caFile))
        switch try ClientPeer.connect("wss://localhost:\(port)/ws", loop: loop, tls: trusted) {
        case .success: XCTFail("a certificate for other.example was accepted for localhost")
        case .failure(.tls(let e)):
            XCTAssertEqual(e.kind, .hostnameMismatch, "\(e)")
        case .failure(let other): XCTFail("expected a TLS error, got \(other)")
        }
    }

    // MARK: helpers

    private func startPythonServer(tls: (cert: String, key: String)? = nil) throws -> (ChildProcess, Int) {
        var args = [Interop.script, "server"]
        if let tls { args += ["--tls", tls.cert, tls.key] }
        let child = try ChildProcess(try Interop.python(), args)
        do {
            let line = try child.readLine(startingWith: "PORT ")
            guard let port = Int(line.dropFirst("PORT ".count).trimmingCharacters(in: .whitespaces)) else {
                throw TestFailure("bad port line '\(line)'")
            }
            return (child, port)
        } catch {
            child.terminate()
            throw error
        }
    }

    private func temporaryDirectory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("transport-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        return dir
    }
}
