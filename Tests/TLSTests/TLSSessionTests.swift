import Foundation
import TestSupport
import XCTest
import TLS

final class TLSSessionTests: XCTestCase {
    private var directory: URL!
    private var caFile = ""
    private var certFile = ""
    private var keyFile = ""

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("tls-tests-\(UUID().uuidString)")
        (caFile, certFile, keyFile) = try TestCertificates.make(in: directory)
    }

    override func tearDownWithError() throws {
        if let directory { try? FileManager.default.removeItem(at: directory) }
    }

    // MARK: Helpers

    private struct Outcome {
        var clientError: TLSError?
        var serverError: TLSError?
        var clientComplete = false
        var serverComplete = false
    }

    /// Moves ciphertext between the two sessions until both handshakes finished or failed,
    /// nothing is left in flight, or the iteration cap is reached. `chunk` limits how many
    /// bytes are fed per handshake call, to exercise every truncation point.
    private func pump(_ client: TLSSession, _ server: TLSSession, chunk: Int = .max,
                      cap: Int = 100_000) -> Outcome {
        var outcome = Outcome()
        var toServer: [UInt8] = []
        var toClient: [UInt8] = []
        for _ in 0..<cap {
            if !outcome.clientComplete, outcome.clientError == nil {
                let n = min(chunk, toClient.count)
                client.feedCiphertext(Array(toClient.prefix(n)))
                toClient.removeFirst(n)
                do { outcome.clientComplete = try client.handshake() == .complete } catch { outcome.clientError = error }
            }
            client.takeCiphertext(appendingTo: &toServer)
            if !outcome.serverComplete, outcome.serverError == nil {
                let n = min(chunk, toServer.count)
                server.feedCiphertext(Array(toServer.prefix(n)))
                toServer.removeFirst(n)
                do { outcome.serverComplete = try server.handshake() == .complete } catch { outcome.serverError = error }
            }
            server.takeCiphertext(appendingTo: &toClient)
            let clientSettled = outcome.clientComplete || outcome.clientError != nil
            let serverSettled = outcome.serverComplete || outcome.serverError != nil
            if clientSettled && serverSettled { break }
            // One side failed and the other waits for bytes that will never come.
            if (outcome.clientError != nil || outcome.serverError != nil), toServer.isEmpty, toClient.isEmpty { break }
        }
        // Post-handshake messages (TLS 1.3 tickets) still in flight go to the other side.
        if !toServer.isEmpty { server.feedCiphertext(toServer) }
        if !toClient.isEmpty { client.feedCiphertext(toClient) }
        return outcome
    }

    private func makeClient(serverName: String? = "localhost", caFile: String? = nil,
                            verifyPeer: Bool = true) throws -> TLSSession {
        let context = try TLSContext.client(caFile: caFile ?? self.caFile, verifyPeer: verifyPeer)
        return try TLSSession(context: context, serverName: serverName)
    }

    private func makeServer(certFile: String? = nil, keyFile: String? = nil) throws -> TLSSession {
        let context = try TLSContext.server(certificateChainFile: certFile ?? self.certFile,
                                            privateKeyFile: keyFile ?? self.keyFile)
        return try TLSSession(serverContext: context)
    }

    private func connectedPair(serverName: String = "localhost") throws -> (TLSSession, TLSSession) {
        let client = try makeClient(serverName: serverName)
        let server = try makeServer()
        let outcome = pump(client, server)
        XCTAssertNil(outcome.clientError)
        XCTAssertNil(outcome.serverError)
        XCTAssertTrue(outcome.clientComplete && outcome.serverComplete)
        return (client, server)
    }

    /// Writes `bytes` on `sender`, feeds the ciphertext to `receiver` in `slice`-sized
    /// pieces, and returns what `receiver` decrypted.
    private func transfer(_ bytes: [UInt8], from sender: TLSSession, to receiver: TLSSession,
                          slice: Int = .max) throws -> [UInt8] {
        XCTAssertEqual(try sender.write(bytes), bytes.count)
        let ciphertext = sender.takeCiphertext()
        var plaintext: [UInt8] = []
        var offset = 0
        repeat {
            let end = min(ciphertext.count, offset &+ slice)
            receiver.feedCiphertext(Array(ciphertext[offset..<end]))
            offset = end
            let result = try receiver.read(into: &plaintext)
            XCTAssertNotEqual(result, .closed)
            sender.feedCiphertext(receiver.takeCiphertext())
        } while offset < ciphertext.count
        return plaintext
    }

    // MARK: Handshake and data

    func testHandshakeCompletesAndPlaintextRoundTripsBothWays() throws {
        let (client, server) = try connectedPair()
        XCTAssertTrue(client.isHandshakeComplete)
        XCTAssertNotNil(client.negotiatedProtocol)
        for size in [0, 1, 16 * 1024 + 1, 1 << 20] {
            let payload = Crypto.randomBytes(size)
            XCTAssertEqual(try transfer(payload, from: client, to: server), payload, "client→server \(size) B")
            XCTAssertEqual(try transfer(payload, from: server, to: client), payload, "server→client \(size) B")
        }
    }

    func testReadReassemblesRecordsFedInSmallPieces() throws {
        let (client, server) = try connectedPair()
        let payload = Crypto.randomBytes(40_000)
        XCTAssertEqual(try transfer(payload, from: client, to: server, slice: 997), payload)
        XCTAssertEqual(try transfer(payload, from: server, to: client, slice: 1), payload)
    }

    func testHandshakeSurvivesOneByteAtATime() throws {
        let client = try makeClient()
        let server = try makeServer()
        let outcome = pump(client, server, chunk: 1)
        XCTAssertNil(outcome.clientError)
        XCTAssertNil(outcome.serverError)
        XCTAssertTrue(outcome.clientComplete && outcome.serverComplete)
        XCTAssertEqual(try transfer(Array("ping".utf8), from: client, to: server), Array("ping".utf8))
    }

    func testHandshakeNeedsMoreDataUntilThePeerAnswers() throws {
        let client = try makeClient()
        XCTAssertFalse(client.hasPendingCiphertext)
        XCTAssertEqual(try client.handshake(), .needsMoreData)
        XCTAssertTrue(client.hasPendingCiphertext)
        XCTAssertFalse(client.takeCiphertext().isEmpty, "ClientHello")
        XCTAssertEqual(client.takeCiphertext(), [])
        XCTAssertEqual(try client.handshake(), .needsMoreData)
        var nothing: [UInt8] = []
        XCTAssertEqual(try client.read(into: &nothing), .needsMoreData)
    }

    func testServerSeesSNIForHostNames() throws {
        let (_, server) = try connectedPair(serverName: "localhost")
        XCTAssertEqual(server.requestedServerName, "localhost")
    }

    // MARK: Verification

    func testSelfSignedServerFailsVerification() throws {
        let selfSigned = try TestCertificates.makeSelfSigned(in: directory.appendingPathComponent("self"))
        let client = try makeClient()
        let server = try makeServer(certFile: selfSigned.certFile, keyFile: selfSigned.keyFile)
        let outcome = pump(client, server)
        let error = try XCTUnwrap(outcome.clientError)
        XCTAssertEqual(error.kind, .certificateVerifyFailed, "\(error)")
        XCTAssertTrue(error.reason.contains("certificate verify failed"), error.reason)
        let verify = try XCTUnwrap(error.verifyResult)
        XCTAssertTrue(verify.contains("self-signed") || verify.contains("self signed"), verify)
        XCTAssertTrue(error.description.contains(verify))
        XCTAssertFalse(outcome.serverComplete)
    }

    func testServerSignedByAnotherCAFailsVerification() throws {
        let other = try TestCertificates.make(in: directory.appendingPathComponent("other-ca"))
        let client = try makeClient()
        let server = try makeServer(certFile: other.certFile, keyFile: other.keyFile)
        let error = try XCTUnwrap(pump(client, server).clientError)
        XCTAssertEqual(error.kind, .certificateVerifyFailed, "\(error)")
        XCTAssertEqual(error.verifyResult, "unable to get local issuer certificate")
    }

    func testNameMismatchFails() throws {
        let client = try makeClient(serverName: "example.com")
        let server = try makeServer()
        let error = try XCTUnwrap(pump(client, server).clientError)
        XCTAssertEqual(error.kind, .hostnameMismatch, "\(error)")
        XCTAssertEqual(error.verifyResult, "hostname mismatch")
    }

    func testIPv4LiteralMatchesIPSubjectAltNameAndSendsNoSNI() throws {
        let (client, server) = try connectedPair(serverName: "127.0.0.1")
        XCTAssertTrue(client.isHandshakeComplete)
        XCTAssertNil(server.requestedServerName, "RFC 6066 §3: no IP literals in SNI")
    }

    func testOtherIPLiteralFails() throws {
        let client = try makeClient(serverName: "127.0.0.2")
        let server = try makeServer()
        let error = try XCTUnwrap(pump(client, server).clientError)
        XCTAssertEqual(error.kind, .hostnameMismatch, "\(error)")
    }

    func testBracketedIPv6LiteralIsCheckedAsAnAddress() throws {
        // The certificate has no IPv6 SAN, so this must fail as an address mismatch.
        let client = try makeClient(serverName: "[::1]")
        let server = try makeServer()
        let error = try XCTUnwrap(pump(client, server).clientError)
        XCTAssertEqual(error.kind, .hostnameMismatch, "\(error)")
        XCTAssertEqual(error.verifyResult, "IP address mismatch")
    }

    func testVerifyPeerFalseAcceptsAnyCertificate() throws {
        let selfSigned = try TestCertificates.makeSelfSigned(in: directory.appendingPathComponent("self"))
        let client = try TLSSession(context: try TLSContext.client(verifyPeer: false), serverName: "example.com")
        let server = try makeServer(certFile: selfSigned.certFile, keyFile: selfSigned.keyFile)
        let outcome = pump(client, server)
        XCTAssertNil(outcome.clientError)
        XCTAssertTrue(outcome.clientComplete && outcome.serverComplete)
    }

    func testSystemStoreDoesNotTrustTestCA() throws {
        let client = try TLSSession(context: try TLSContext.client(), serverName: "localhost")
        let server = try makeServer()
        let error = try XCTUnwrap(pump(client, server).clientError)
        XCTAssertEqual(error.kind, .certificateVerifyFailed, "\(error)")
    }

    func testPlaintextInsteadOfTLSFailsTheServerHandshake() throws {
        let server = try makeServer()
        server.feedCiphertext(Array("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n".utf8))
        XCTAssertThrowsError(try server.handshake()) { error in
            let error = error as! TLSError
            XCTAssertEqual(error.kind, .handshakeFailed)
            XCTAssertFalse(error.reason.isEmpty)
        }
    }

    // MARK: Close

    func testCloseNotifyIsReadAsClosedAfterPrecedingData() throws {
        let (client, server) = try connectedPair()
        XCTAssertEqual(try client.write(Array("bye".utf8)), 3)
        client.shutdown()
        server.feedCiphertext(client.takeCiphertext())
        var plaintext: [UInt8] = []
        XCTAssertEqual(try server.read(into: &plaintext), .closed)
        XCTAssertEqual(plaintext, Array("bye".utf8))
        XCTAssertEqual(try server.read(into: &plaintext), .closed, "close_notify is sticky")

        server.shutdown()
        client.feedCiphertext(server.takeCiphertext())
        var nothing: [UInt8] = []
        XCTAssertEqual(try client.read(into: &nothing), .closed)
        XCTAssertEqual(nothing, [])
    }

    func testWriteAfterShutdownThrows() throws {
        let (client, _) = try connectedPair()
        client.shutdown()
        XCTAssertThrowsError(try client.write(Array("late".utf8))) { error in
            XCTAssertEqual((error as! TLSError).kind, .protocolError)
        }
    }

    func testShutdownBeforeHandshakeQueuesNothing() throws {
        let client = try makeClient()
        client.shutdown()
        XCTAssertFalse(client.hasPendingCiphertext)
    }

    // MARK: Configuration

    func testMissingFilesAreConfigurationErrors() {
        let missing = directory.appendingPathComponent("missing.pem").path
        XCTAssertThrowsError(try TLSContext.client(caFile: missing)) { error in
            XCTAssertEqual((error as! TLSError).kind, .configuration)
        }
        XCTAssertThrowsError(try TLSContext.server(certificateChainFile: missing, privateKeyFile: keyFile)) { error in
            XCTAssertEqual((error as! TLSError).kind, .configuration)
        }
        XCTAssertThrowsError(try TLSContext.server(certificateChainFile: certFile, privateKeyFile: missing)) { error in
            XCTAssertEqual((error as! TLSError).kind, .configuration)
        }
    }

    func testMismatchedKeyIsAConfigurationError() throws {
        let caKey = directory.appendingPathComponent("ca.key").path
        XCTAssertThrowsError(try TLSContext.server(certificateChainFile: certFile, privateKeyFile: caKey)) { error in
            let error = error as! TLSError
            XCTAssertEqual(error.kind, .configuration)
            XCTAssertFalse(error.reason.isEmpty)
        }
    }
}
