import COpenSSL

/// An `SSL_CTX`: trust store, certificates and protocol limits shared by many sessions.
///
/// Immutable after `init`; OpenSSL documents creating sessions from one `SSL_CTX` on
/// several threads as safe, hence `@unchecked Sendable`.
public final class TLSContext: @unchecked Sendable {
    let ctx: OpaquePointer
    /// Whether sessions from this context verify their peer (client contexts only).
    let verifiesPeer: Bool

    private init(ctx: OpaquePointer, verifiesPeer: Bool) {
        self.ctx = ctx
        self.verifiesPeer = verifiesPeer
    }

    deinit { SSL_CTX_free(ctx) }

    /// A client context: TLS 1.2 or later, peer verification against the system CA store
    /// (`SSL_CTX_set_default_verify_paths`), or against `caFile` alone when given.
    ///
    /// `verifyPeer: false` disables certificate and host-name verification; it exists for
    /// local tests against a simulator and must never be used towards the exchange.
    public static func client(caFile: String? = nil, verifyPeer: Bool = true) throws(TLSError) -> TLSContext {
        ERR_clear_error()
        guard let ctx = SSL_CTX_new(TLS_client_method()) else {
            throw TLSError.fromQueue(.configuration, fallback: "SSL_CTX_new failed")
        }
        let context = TLSContext(ctx: ctx, verifiesPeer: verifyPeer)
        try context.applyCommonSettings()
        SSL_CTX_set_verify(ctx, verifyPeer ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nil)
        if let caFile {
            guard SSL_CTX_load_verify_locations(ctx, caFile, nil) == 1 else {
                throw TLSError.fromQueue(.configuration, fallback: "cannot load CA file \(caFile)")
            }
        } else if verifyPeer {
            guard SSL_CTX_set_default_verify_paths(ctx) == 1 else {
                throw TLSError.fromQueue(.configuration, fallback: "cannot load the system CA store")
            }
        }
        return context
    }

    /// A server context presenting the PEM chain in `certificateChainFile` (leaf first)
    /// with the PEM private key in `privateKeyFile`. Client certificates are not requested.
    public static func server(certificateChainFile: String, privateKeyFile: String) throws(TLSError) -> TLSContext {
        ERR_clear_error()
        guard let ctx = SSL_CTX_new(TLS_server_method()) else {
            throw TLSError.fromQueue(.configuration, fallback: "SSL_CTX_new failed")
        }
        let context = TLSContext(ctx: ctx, verifiesPeer: false)
        try context.applyCommonSettings()
        guard SSL_CTX_use_certificate_chain_file(ctx, certificateChainFile) == 1 else {
            throw TLSError.fromQueue(.configuration, fallback: "cannot load certificate chain \(certificateChainFile)")
        }
        guard SSL_CTX_use_PrivateKey_file(ctx, privateKeyFile, SSL_FILETYPE_PEM) == 1 else {
            throw TLSError.fromQueue(.configuration, fallback: "cannot load private key \(privateKeyFile)")
        }
        guard SSL_CTX_check_private_key(ctx) == 1 else {
            throw TLSError.fromQueue(.configuration, fallback: "private key does not match the certificate")
        }
        return context
    }

    private func applyCommonSettings() throws(TLSError) {
        guard cossl_ctx_set_min_proto_version(ctx, cossl_tls1_2_version()) == 1 else {
            throw TLSError.fromQueue(.configuration, fallback: "cannot set TLS 1.2 as minimum version")
        }
        // A memory BIO never blocks, so SSL_write may take a caller's buffer in several
        // records; partial writes let `TLSSession.write` loop over its own slices.
        _ = cossl_ctx_set_mode(ctx, cossl_mode_enable_partial_write() | cossl_mode_accept_moving_write_buffer())
        // RFC 5746 renegotiation is the one way TLS 1.2 could make SSL_write wait for input.
        _ = SSL_CTX_set_options(ctx, cossl_op_no_renegotiation())
    }
}
