// JSON-RPC 2.0 over raw bytes, without decoding the messages the gateway only forwards.
//
// SPEC §1, §6 and STYLE habit 8: a message is scanned once, in one pass, validating it
// structurally (RFC 8259) while recording the byte spans the gateway routes on:
//
//   {"jsonrpc":"2.0","id":42,"method":"public/get_time","params":{"access_token":"…","x":1}}
//                         ^^  ^^^^^^^^^^^^^^^^^^^^^^^^^^          ^^^^^^^^^^^^^^^^^^^^^
//                         id  method (content, no quotes)         accessToken (member span)
//                                                       ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^ params
//
//   {"jsonrpc":"2.0","method":"subscription","params":{"channel":"ticker.BTC-PERPETUAL.100ms","data":{…}}}
//                                                                ^^^^^^^^^^^^^^^^^^^^^^^^^^ channel
//
// Requests are then forwarded with the id spliced (`JSONRPCSplice`), responses are routed
// back with the client's original id bytes spliced in, and notifications are fanned out
// unchanged. Everything here is pure: no I/O, no clocks, no Foundation.

/// The type of a JSON value, from its first byte.
public enum JSONValueKind: Sendable, Equatable {
    case object, array, string, number, trueLiteral, falseLiteral, null
}

/// Why a text frame is not a JSON-RPC message we can route. One mapping to the wire:
/// `jsonRPCCode` (STYLE habit 5).
public enum JSONRPCScanError: Error, Equatable, Sendable {
    /// Not JSON text per RFC 8259: empty, truncated, bad escape or number, control
    /// character in a string, trailing comma, trailing garbage.
    case notJSON
    /// Valid JSON, but an array or a scalar. Deribit has no batches (SPEC §6.1).
    case notAnObject
    /// Nested deeper than `JSONRPCScanner.maxDepth` containers; refused without recursion.
    case nestingTooDeep

    /// JSON-RPC 2.0 §5.1: -32700 parse error, -32600 invalid request (SPEC §6.1).
    public var jsonRPCCode: Int {
        switch self {
        case .notJSON, .nestingTooDeep: return JSONRPCErrorCode.parseError
        case .notAnObject: return JSONRPCErrorCode.invalidRequest
        }
    }

    /// The short message sent with `jsonRPCCode`; never internal detail (STYLE habit 5).
    public var jsonRPCMessage: String {
        switch self {
        case .notJSON, .nestingTooDeep: return "Parse error"
        case .notAnObject: return "Invalid Request"
        }
    }
}

/// Error codes the gateway answers with: JSON-RPC 2.0 §5.1 and the gateway's own
/// server-error range (SPEC §6.3).
public enum JSONRPCErrorCode {
    public static let parseError = -32700
    public static let invalidRequest = -32600
    public static let methodNotFound = -32601
    public static let invalidParams = -32602
    public static let internalError = -32603
    public static let upstreamUnavailable = -32000
    public static let upstreamTimeout = -32001
    public static let forbiddenByPolicy = -32002
    public static let tooManyPendingRequests = -32003
}
