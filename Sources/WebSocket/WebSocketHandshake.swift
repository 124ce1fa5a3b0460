/// Why an opening handshake (RFC 6455 §4) was refused.
///
/// Server side, `status` and `responseHeaders` are the only mapping to the wire: the
/// HTTP response to send instead of 101. Client side, the cases explain why the server's
/// response was refused; the connection is then dropped (`status` is 502 for a gateway
/// reporting it).
public enum WebSocketHandshakeError: Error, Equatable, Sendable {
    // Validating a client's upgrade request (RFC 6455 §4.2.1).
    case methodNotGET
    case httpVersionBelow1_1
    case missingUpgradeWebSocket
    case missingConnectionUpgrade
    /// Sec-WebSocket-Version missing or not 13: 426 with `Sec-WebSocket-Version: 13` (§4.4).
    case unsupportedVersion
    /// Sec-WebSocket-Key missing, repeated, or not the base64 of 16 bytes.
    case invalidKey

    // Validating a server's response (RFC 6455 §4.1, client requirements 1–6).
    case unexpectedStatus(Int)
    case invalidAccept
    /// We offer no extensions or subprotocols, so the server must select none.
    case unexpectedExtension
    case unexpectedSubprotocol

    public var status: Int {
        switch self {
        case .unsupportedVersion: return 426
        case .methodNotGET, .httpVersionBelow1_1, .missingUpgradeWebSocket,
             .missingConnectionUpgrade, .invalidKey:
            return 400
        case .unexpectedStatus, .invalidAccept, .unexpectedExtension, .unexpectedSubprotocol:
            return 502
        }
    }

    /// Headers the refusal must carry (RFC 6455 §4.2.2 step 4: the versions we speak).
    public var responseHeaders: [(name: String, value: String)] {
        self == .unsupportedVersion ? [(name: "Sec-WebSocket-Version", value: "13")] : []
    }
}

/// The opening handshake of RFC 6455 §4, both roles, over header lists so that it does not
/// depend on any HTTP parser. Header names match case-insensitively; values of repeated
/// list headers (Connection, Upgrade) are combined as RFC 9110 §5.3 allows.
public enum WebSocketHandshake {
    /// RFC 6455 §1.3.
    public static let guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    /// RFC 6455 §4.2.2 step 5.4: base64(SHA-1(key + GUID)).
    public static func acceptValue(forKey key: String) -> String {
        Base64.encode(SHA1.hash((key + guid).utf8))
    }

    // MARK: Server

    /// Checks a client's upgrade request (RFC 6455 §4.2.1) and returns the
    /// Sec-WebSocket-Accept value for the 101 response.
    public static func validateUpgradeRequest(
        method: String,
        versionMinor: Int,
        headers: [(name: String, value: String)]
    ) -> Result<String, WebSocketHandshakeError> {
        guard method == "GET" else { return .failure(.methodNotGET) }
        // The caller parsed HTTP/1.x; the request must be at least HTTP/1.1.
        guard versionMinor >= 1 else { return .failure(.httpVersionBelow1_1) }
        guard tokens(of: "Upgrade", in: headers).contains("websocket") else {
            return .failure(.missingUpgradeWebSocket)
        }
        guard tokens(of: "Connection", in: headers).contains("upgrade") else {
            return .failure(.missingConnectionUpgrade)
        }
        let versions = values(of: "Sec-WebSocket-Version", in: headers)
        guard versions.count == 1, trimmed(versions[0]) == "13" else {
            return .failure(.unsupportedVersion)
        }
        let keys = values(of: "Sec-WebSocket-Key", in: headers)
        guard keys.count == 1 else { return .failure(.invalidKey) }
        let key = trimmed(keys[0])
        guard let nonce = Base64.decode(key), nonce.count == 16 else { return .failure(.invalidKey) }
        return .success(acceptValue(forKey: key))
    }

    /// The headers of the `101 Switching Protocols` response (RFC 6455 §4.2.2 step 5).
    public static func serverResponseHeaders(accept: String) -> [(name: String, value: String)] {
        [
            (name: "Upgrade", value: "websocket"),
            (name: "Connection", value: "Upgrade"),
            (name: "Sec-WebSocket-Accept", value: accept),
        ]
    }

    // MARK: Client

    /// RFC 6455 §4.1: the key is 16 random bytes, base64-encoded, fresh for each connection.
    public static func makeClientKey(randomBytes: [UInt8]) -> String {
        precondition(randomBytes.count == 16, "Sec-WebSocket-Key needs exactly 16 random bytes")
        return Base64.encode(randomBytes)
    }

    /// Headers for `GET <path> HTTP/1.1` (RFC 6455 §4.1). `host` includes the port when it
    /// is not the scheme's default.
    public static func clientRequestHeaders(host: String, key: String, origin: String?) -> [(name: String, value: String)] {
        var headers: [(name: String, value: String)] = [
            (name: "Host", value: host),
            (name: "Upgrade", value: "websocket"),
            (name: "Connection", value: "Upgrade"),
            (name: "Sec-WebSocket-Key", value: key),
            (name: "Sec-WebSocket-Version", value: "13"),
        ]
        if let origin { headers.append((name: "Origin", value: origin)) }
        return headers
    }

    /// Checks the server's response to our upgrade request (RFC 6455 §4.1).
    public static func validateServerResponse(
        status: Int,
        headers: [(name: String, value: String)],
        key: String
    ) -> Result<Void, WebSocketHandshakeError> {
        guard status == 101 else { return .failure(.unexpectedStatus(status)) }
        guard tokens(of: "Upgrade", in: headers).contains("websocket") else {
            return .failure(.missingUpgradeWebSocket)
        }
        guard tokens(of: "Connection", in: headers).contains("upgrade") else {
            return .failure(.missingConnectionUpgrade)
        }
        let accepts = values(of: "Sec-WebSocket-Accept", in: headers)
        guard accepts.count == 1, trimmed(accepts[0]) == acceptValue(forKey: key) else {
            return .failure(.invalidAccept)
        }
        guard tokens(of: "Sec-WebSocket-Extensions", in: headers).isEmpty else {
            return .failure(.unexpectedExtension)
        }
        guard tokens(of: "Sec-WebSocket-Protocol", in: headers).isEmpty else {
            return .failure(.unexpectedSubprotocol)
        }
        return .success(())
    }

    // MARK: Header helpers

    private static func values(of name: String, in headers: [(name: String, value: String)]) -> [String] {
        headers.compactMap { equalsIgnoringASCIICase($0.name, name) ? $0.value : nil }
    }

    /// Comma-separated tokens of every `name` header, trimmed and lowercased.
    private static func tokens(of name: String, in headers: [(name: String, value: String)]) -> [String] {
        values(of: name, in: headers).flatMap { value in
            value.split(separator: ",").map { trimmed(String($0)).lowercased() }.filter { !$0.isEmpty }
        }
    }

    /// RFC 9110 §5.6.3: optional whitespace is spaces and horizontal tabs.
    private static func trimmed(_ s: String) -> String {
        var utf8 = Substring(s).utf8
        while let first = utf8.first, first == 0x20 || first == 0x09 { utf8.removeFirst() }
        while let last = utf8.last, last == 0x20 || last == 0x09 { utf8.removeLast() }
        return String(Substring(utf8))
    }

    private static func equalsIgnoringASCIICase(_ a: String, _ b: String) -> Bool {
        a.utf8.count == b.utf8.count
            && zip(a.utf8, b.utf8).allSatisfy { x, y in
                x == y || (x | 0x20 == y | 0x20 && (x | 0x20) >= 0x61 && (x | 0x20) <= 0x7A)
            }
    }
}
