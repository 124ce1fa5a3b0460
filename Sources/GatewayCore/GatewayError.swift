import JSONRPC

/// Every refusal the gateway answers itself, and the one place that writes it to the wire
/// (STYLE.md habit 5). Codes follow SPEC §6.1–6.3 and Deribit's own where Deribit has one.
package enum GatewayError: Error, Equatable, Sendable {
    /// Not JSON (-32700), or JSON that is not a request object (-32600): the scanner's verdict.
    case malformed(JSONRPCScanError)
    /// No `method`, no `id`, or duplicate keys (-32600).
    case invalidRequest
    /// SPEC §6.1: over 32,000 bytes as the client sent it (-32600).
    case requestTooLarge
    /// Not `public/…` or `private/…` (-32601).
    case methodNotFound
    /// Deribit's -32602 with `data: {"param", "reason"}`.
    case invalidParams(param: String, reason: String)
    /// SPEC §6.3: forbidden by the gateway's policy (-32002).
    case forbidden(reason: String)
    /// SPEC §6.3: a private method before authentication (13009).
    case unauthorized
    /// `public/auth` with wrong credentials (13004).
    case invalidCredentials
    /// SPEC §6.6: the client's own rate limit, or the credit model (10028).
    case tooManyRequests(reason: String?)
    /// -32003: `maxPendingPerClient` requests already wait for the upstream.
    case tooManyPendingRequests
    /// -32000: the upstream is not there (lost, or not ready within `request_timeout_ms`).
    case upstreamUnavailable
    /// -32001: sent, and not answered within `request_timeout_ms`.
    case upstreamTimeout
    /// Deribit's 13778 for `.raw` channels without authorization.
    case rawSubscriptionsNotAvailable
    /// Deribit's 11050 for a WebSocket-only method over HTTP.
    case webSocketOnly

    package var code: Int {
        switch self {
        case .malformed(let e): return e.jsonRPCCode
        case .invalidRequest, .requestTooLarge: return JSONRPCErrorCode.invalidRequest
        case .methodNotFound: return JSONRPCErrorCode.methodNotFound
        case .invalidParams: return JSONRPCErrorCode.invalidParams
        case .forbidden: return JSONRPCErrorCode.forbiddenByPolicy
        case .unauthorized: return 13009
        case .invalidCredentials: return 13004
        case .tooManyRequests: return 10028
        case .tooManyPendingRequests: return JSONRPCErrorCode.tooManyPendingRequests
        case .upstreamUnavailable: return JSONRPCErrorCode.upstreamUnavailable
        case .upstreamTimeout: return JSONRPCErrorCode.upstreamTimeout
        case .rawSubscriptionsNotAvailable: return 13778
        case .webSocketOnly: return 11050
        }
    }

    package var message: String {
        switch self {
        case .malformed(let e): return e.jsonRPCMessage
        case .invalidRequest: return "Invalid Request"
        case .requestTooLarge: return "request entity too large"
        case .methodNotFound: return "Method not found"
        case .invalidParams: return "Invalid params"
        case .forbidden: return "forbidden"
        case .unauthorized: return "unauthorized"
        case .invalidCredentials: return "invalid_credentials"
        case .tooManyRequests: return "too_many_requests"
        case .tooManyPendingRequests: return "too_many_pending_requests"
        case .upstreamUnavailable: return "upstream_unavailable"
        case .upstreamTimeout: return "upstream_timeout"
        case .rawSubscriptionsNotAvailable: return "raw_subscriptions_not_available_for_unauthorized"
        case .webSocketOnly: return "bad_request"
        }
    }

    /// The error's `data`, written by the JSON writer (never by interpolation).
    package var data: JSONValue? {
        switch self {
        case .invalidParams(let param, let reason): return .object([("param", .string(param)), ("reason", .string(reason))])
        case .forbidden(let reason): return .object([("reason", .string(reason))])
        case .tooManyRequests(let reason?): return .object([("reason", .string(reason))])
        case .webSocketOnly: return .object([("reason", "only available over WebSocket")])
        default: return nil
        }
    }

    /// The error response for a request whose id is `id` (its bytes as the client sent them).
    package func response(id: [UInt8]) -> [UInt8] {
        JSONRPCWire.error(id: id, code: code, message: message, data: data?.bytes)
    }

    /// Short text for logs.
    package var logDescription: String { "\(code) \(message)" }
}
