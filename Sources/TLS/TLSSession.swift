import COpenSSL
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What `TLSSession.handshake()` needs next.
public enum TLSHandshakeState: Sendable, Hashable {
    /// Both Finished messages are exchanged; application data may flow.
    case complete
    /// OpenSSL wants more ciphertext: send `takeCiphertext()` to the peer, then feed its reply.
    case needsMoreData
}

/// What `TLSSession.read(into:)` found.
public enum TLSReadResult: Sendable, Hashable {
    /// Plaintext was appended to the buffer.
    case data
    /// No complete record is buffered; feed more ciphertext.
    case needsMoreData
    /// The peer sent close_notify (RFC 8446 §6.1). Plaintext that preceded it has been appended.
    case closed
}

/// One TLS connection over two memory BIOs: ciphertext in, ciphertext out, no sockets.
///
///     socket ──feedCiphertext──▶ [rbio] ──▶ SSL ──read(into:)──▶ plaintext
///     socket ◀──takeCiphertext── [wbio] ◀── SSL ◀──write(_:)──── plaintext
///
/// Not thread-safe: a session is confined to its owner's event loop, and every call
/// (including `deinit`) must happen there. OpenSSL's error queue is per thread, and each
/// call clears it, calls SSL, then reads `SSL_get_error` with nothing in between.
///
/// Any call may queue ciphertext (handshake messages, alerts, TLS 1.3 key updates in
/// answer to a read), so check `hasPendingCiphertext` after each one.
public final class TLSSession {
    private let context: TLSContext
    private let ssl: OpaquePointer
    /// Ciphertext from the peer. Owned by `ssl`.
    private let rbio: OpaquePointer
    /// Ciphertext for the peer. Owned by `ssl`.
    private let wbio: OpaquePointer
    private let isClient: Bool

    /// Plaintext is read through a scratch buffer of one maximum-size record (RFC 8446 §5.1).
    private static let readChunk = 16 * 1024

    private init(context: TLSContext, isClient: Bool) throws(TLSError) {
        ERR_clear_error()
        guard let ssl = SSL_new(context.ctx) else {
            throw TLSError.fromQueue(.configuration, fallback: "SSL_new failed")
        }
        guard let rbio = BIO_new(BIO_s_mem()), let wbio = BIO_new(BIO_s_mem()) else {
            SSL_free(ssl)
            throw TLSError.fromQueue(.configuration, fallback: "BIO_new failed")
        }
        // Fresh memory BIOs report "retry" when empty, which SSL turns into WANT_READ.
        SSL_set_bio(ssl, rbio, wbio)
        if isClient { SSL_set_connect_state(ssl) } else { SSL_set_accept_state(ssl) }
        self.context = context
        self.ssl = ssl
        self.rbio = rbio
        self.wbio = wbio
        self.isClient = isClient
    }

    /// A client session. `serverName` is sent as SNI and checked against the peer
    /// certificate's subjectAltName; an IPv4 or IPv6 literal (optionally in brackets) is
    /// checked against IP SANs and not sent as SNI (RFC 6066 §3 forbids literals there).
    /// With `serverName == nil` only the chain is verified.
    public convenience init(context: TLSContext, serverName: String?) throws(TLSError) {
        try self.init(context: context, isClient: true)
        guard let serverName else { return }
        var host = Substring(serverName)
        if host.hasPrefix("["), host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        let name = String(host)
        ERR_clear_error()
        if Self.isIPLiteral(name) {
            guard X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) == 1 else {
                throw TLSError.fromQueue(.configuration, fallback: "invalid IP address \(name)")
            }
        } else {
            guard cossl_set_tlsext_host_name(ssl, name) == 1 else {
                throw TLSError.fromQueue(.configuration, fallback: "invalid server name \(name)")
            }
            // RFC 6125 §6.4.3: a wildcard must be the whole left-most label.
            SSL_set_hostflags(ssl, UInt32(X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS))
            guard SSL_set1_host(ssl, name) == 1 else {
                throw TLSError.fromQueue(.configuration, fallback: "invalid server name \(name)")
            }
        }
    }

    /// A server session presenting the certificate of `serverContext`.
    public convenience init(serverContext: TLSContext) throws(TLSError) {
        try self.init(context: serverContext, isClient: false)
    }

    deinit { SSL_free(ssl) }

    // MARK: Ciphertext

    /// Queues ciphertext received from the peer. Nothing is decrypted until the next
    /// `handshake()`, `read(into:)` or `write(_:)`.
    public func feedCiphertext(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return }
        var written = 0
        // A memory BIO grows until malloc fails; there is no partial write to handle.
        let rc = BIO_write_ex(rbio, base, bytes.count, &written)
        precondition(rc == 1 && written == bytes.count, "BIO_write to a memory BIO failed")
    }

    public func feedCiphertext(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { feedCiphertext($0) }
    }

    /// True when ciphertext is waiting to be sent to the peer.
    public var hasPendingCiphertext: Bool { cossl_bio_pending(wbio) > 0 }

    /// All ciphertext waiting to be sent to the peer; empty if none.
    public func takeCiphertext() -> [UInt8] {
        var out: [UInt8] = []
        takeCiphertext(appendingTo: &out)
        return out
    }

    /// Appends all ciphertext waiting to be sent to the peer to `out`.
    public func takeCiphertext(appendingTo out: inout [UInt8]) {
        while true {
            let pending = Int(cossl_bio_pending(wbio))
            if pending <= 0 { return }
            let start = out.count
            out.append(contentsOf: repeatElement(0, count: pending))
            var taken = 0
            out.withUnsafeMutableBytes { raw in
                _ = BIO_read_ex(wbio, raw.baseAddress! + start, pending, &taken)
            }
            out.removeLast(pending - taken)
            if taken == 0 { return }
        }
    }

    // MARK: Handshake

    /// Advances the handshake with whatever ciphertext has been fed. After either result,
    /// send `takeCiphertext()` to the peer. Calling it again once complete is harmless.
    public func handshake() throws(TLSError) -> TLSHandshakeState {
        ERR_clear_error()
        let rc = SSL_do_handshake(ssl)
        let code = SSL_get_error(ssl, rc)
        if rc == 1 { return .complete }
        if code == SSL_ERROR_WANT_READ { return .needsMoreData }
        throw failure(code)
    }

    public var isHandshakeComplete: Bool { SSL_is_init_finished(ssl) == 1 }

    /// The negotiated protocol, e.g. "TLSv1.3", once the handshake is complete.
    public var negotiatedProtocol: String? {
        guard isHandshakeComplete, let version = SSL_get_version(ssl) else { return nil }
        return String(cString: version)
    }

    /// Server role: the SNI host name the client asked for, if any.
    public var requestedServerName: String? {
        guard let name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) else { return nil }
        return String(cString: name)
    }

    // MARK: Application data

    /// Encrypts `plaintext` into records queued for `takeCiphertext()`.
    ///
    /// Returns the number of bytes consumed: all of them once the handshake is complete
    /// (the memory BIO never pushes back). Before that, OpenSSL may still be waiting for
    /// the peer and fewer bytes (possibly 0) are taken; finish `handshake()` first.
    @discardableResult
    public func write(_ plaintext: UnsafeRawBufferPointer) throws(TLSError) -> Int {
        guard let base = plaintext.baseAddress, !plaintext.isEmpty else { return 0 }
        var offset = 0
        while offset < plaintext.count {
            var written = 0
            ERR_clear_error()
            let rc = SSL_write_ex(ssl, base + offset, plaintext.count - offset, &written)
            let code = SSL_get_error(ssl, rc)
            if rc == 1 {
                offset += written
                continue
            }
            if code == SSL_ERROR_WANT_READ { return offset }
            throw failure(code)
        }
        return offset
    }

    @discardableResult
    public func write(_ plaintext: [UInt8]) throws(TLSError) -> Int {
        let result: Result<Int, TLSError> = plaintext.withUnsafeBytes { raw in
            do throws(TLSError) { return .success(try write(raw)) } catch { return .failure(error) }
        }
        return try result.get()
    }

    /// Decrypts every complete record fed so far and appends the plaintext to `buffer`.
    /// Consume `buffer` whatever the result: `.closed` may follow plaintext in the same call.
    public func read(into buffer: inout [UInt8]) throws(TLSError) -> TLSReadResult {
        let ssl = self.ssl
        let outcome: (result: TLSReadResult?, code: Int32) =
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: Self.readChunk) { scratch in
                var appended = false
                while true {
                    var count = 0
                    ERR_clear_error()
                    let rc = SSL_read_ex(ssl, scratch.baseAddress, scratch.count, &count)
                    let code = SSL_get_error(ssl, rc)
                    if rc == 1 {
                        buffer.append(contentsOf: UnsafeBufferPointer(rebasing: scratch[..<count]))
                        appended = true
                        continue
                    }
                    switch code {
                    case SSL_ERROR_WANT_READ: return (appended ? .data : .needsMoreData, code)
                    case SSL_ERROR_ZERO_RETURN: return (.closed, code)
                    default: return (nil, code)
                    }
                }
            }
        if let result = outcome.result { return result }
        throw failure(outcome.code)
    }

    /// Queues close_notify (RFC 8446 §6.1) for `takeCiphertext()`. Does nothing before the
    /// handshake has completed: there is no session to close yet, just drop the connection.
    public func shutdown() {
        guard isHandshakeComplete else { return }
        ERR_clear_error()
        let rc = SSL_shutdown(ssl)
        // 0 means "sent, peer's not yet received" — all a memory-BIO caller wants.
        _ = SSL_get_error(ssl, rc)
        ERR_clear_error()
    }

    // MARK: Errors

    /// Maps an `SSL_get_error` code (not WANT_READ) to our error, draining the queue.
    private func failure(_ code: Int32) -> TLSError {
        let inHandshake = !isHandshakeComplete
        switch code {
        case SSL_ERROR_ZERO_RETURN:
            return TLSError.fromQueue(.protocolError, fallback: "peer sent close_notify during the handshake")
        case SSL_ERROR_SYSCALL:
            return TLSError.fromQueue(.protocolError, fallback: "unexpected end of the TLS stream")
        case SSL_ERROR_SSL where inHandshake:
            if isClient, context.verifiesPeer {
                let verify = SSL_get_verify_result(ssl)
                if verify != Int(X509_V_OK) {
                    let text = String(cString: X509_verify_cert_error_string(verify))
                    let mismatch = verify == Int(X509_V_ERR_HOSTNAME_MISMATCH)
                        || verify == Int(X509_V_ERR_IP_ADDRESS_MISMATCH)
                    return TLSError.fromQueue(
                        mismatch ? .hostnameMismatch : .certificateVerifyFailed,
                        fallback: "certificate verify failed", verifyResult: text)
                }
            }
            return TLSError.fromQueue(.handshakeFailed, fallback: "handshake failed")
        case SSL_ERROR_SSL:
            return TLSError.fromQueue(.protocolError, fallback: "TLS protocol error")
        default:
            return TLSError.fromQueue(inHandshake ? .handshakeFailed : .protocolError,
                                      fallback: "unexpected SSL_get_error \(code)")
        }
    }

    private static func isIPLiteral(_ host: String) -> Bool {
        var address = in6_addr()
        return inet_pton(AF_INET, host, &address) == 1 || inet_pton(AF_INET6, host, &address) == 1
    }
}
