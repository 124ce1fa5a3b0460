import COpenSSL

/// The one error type of the TLS layer.
///
/// `reason` is OpenSSL's own text (the thread's error queue, oldest first);
/// `verifyResult` is set when the peer certificate failed verification. Neither is
/// meant for a remote client: log it, and map `kind` to whatever the wire needs.
public struct TLSError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Hashable {
        /// The handshake failed for a reason other than certificate verification.
        case handshakeFailed
        /// The peer's certificate chain did not verify against the trusted CAs.
        case certificateVerifyFailed
        /// The chain verified but does not name the host (DNS name or IP) we asked for.
        case hostnameMismatch
        /// A record-layer failure after the handshake, or the peer went away mid-handshake.
        case protocolError
        /// A context or session could not be set up (files, keys, allocation).
        case configuration
    }

    public var kind: Kind
    /// OpenSSL's error queue as text, or a description of our own when the queue was empty.
    public var reason: String
    /// `X509_verify_cert_error_string(SSL_get_verify_result(ssl))` when verification failed.
    public var verifyResult: String?

    public init(kind: Kind, reason: String, verifyResult: String? = nil) {
        self.kind = kind
        self.reason = reason
        self.verifyResult = verifyResult
    }

    public var description: String {
        var text = "TLS \(kind): \(reason)"
        if let verifyResult { text += " (verify: \(verifyResult))" }
        return text
    }

    /// Builds an error from the current thread's OpenSSL error queue and empties it.
    static func fromQueue(_ kind: Kind, fallback: String, verifyResult: String? = nil) -> TLSError {
        let queued = drainErrorQueue()
        return TLSError(kind: kind, reason: queued.isEmpty ? fallback : queued, verifyResult: verifyResult)
    }
}

/// Every entry of the thread's error queue, oldest first, joined with "; ".
func drainErrorQueue() -> String {
    var entries: [String] = []
    while true {
        let code = ERR_get_error()
        if code == 0 { break }
        // ERR_error_string_n needs at least 120 bytes to never truncate the common format.
        var buffer = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &buffer, buffer.count)
        entries.append(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
    }
    return entries.joined(separator: "; ")
}
