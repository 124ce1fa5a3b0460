/// The spans of one JSON-RPC message, as byte offsets into the scanned buffer.
///
/// Only top-level members and three members of a `params` object are recorded:
/// `params.channel` (notifications, SPEC §6.4), `params.type` (heartbeats, SPEC §6.2) and
/// `params.access_token` (stripped before forwarding, SPEC §6.3). A `"channel"` nested
/// deeper, e.g. inside `params.data`, is never picked up.
///
/// Duplicate keys: the first occurrence wins and `hasDuplicateKeys` is set. Other parsers
/// (Deribit's among them, perhaps) let the last one win, so a request carrying a second
/// `id`, `method`, `params` or `access_token` must not be forwarded: the upstream could
/// answer under an id that belongs to another client.
public struct JSONRPCScan: Sendable, Equatable {
    /// Offset of the top-level `{`.
    public var objectStart: Int = 0
    /// Raw value span of `jsonrpc` (e.g. `"2.0"` with its quotes).
    public var jsonrpc: Range<Int>?
    /// Raw value span of `id`: the exact bytes to give back to the client.
    public var id: Range<Int>?
    public var idKind: JSONValueKind?
    /// Content span of `method`, without quotes; nil when absent or not a string.
    public var method: Range<Int>?
    /// The kind of the `method` value when the member is present (`.string` or an error).
    public var methodKind: JSONValueKind?
    public var methodHasEscapes: Bool = false
    /// Raw value span of `params`.
    public var params: Range<Int>?
    public var paramsKind: JSONValueKind?
    /// Raw value spans of `result` and `error`.
    public var result: Range<Int>?
    public var error: Range<Int>?
    /// Content span of `params.channel` when it is a string.
    public var channel: Range<Int>?
    public var channelHasEscapes: Bool = false
    /// Content span of `params.type` when `method` is `heartbeat` (Deribit sends
    /// `heartbeat` and `test_request`).
    public var heartbeatType: Range<Int>?
    /// The whole `"access_token":…` member inside a `params` object.
    public var accessToken: Range<Int>?
    /// What to delete to remove `accessToken` and keep valid JSON: the member and the
    /// comma before it, or the comma after it when it is the first member.
    public var accessTokenRemoval: Range<Int>?
    /// A recorded key (`jsonrpc`, `id`, `method`, `params`, `result`, `error`,
    /// `params.channel`, `params.type`, `params.access_token`) appeared more than once.
    public var hasDuplicateKeys: Bool = false

    public init() {}

    /// JSON-RPC 2.0 §4: a request has a method and an id.
    public var isRequest: Bool { methodKind != nil && id != nil }
    /// JSON-RPC 2.0 §4.1: a notification has a method and no id.
    public var isNotification: Bool { methodKind != nil && id == nil }
    /// JSON-RPC 2.0 §5: a response has an id and a result or an error, and no method.
    public var isResponse: Bool { methodKind == nil && id != nil && (result != nil || error != nil) }
}

/// One-pass, non-allocating scanner and validator of JSON-RPC messages (RFC 8259,
/// JSON-RPC 2.0). Strings are never created on this path; compare spans with
/// `methodEquals` and friends.
public enum JSONRPCScanner {
    /// Containers (objects and arrays) that may be nested, the top-level object included.
    /// Deribit's deepest messages nest about six; deeper input is refused as
    /// `nestingTooDeep` without recursion.
    public static let maxDepth = 128

    public static func scan(_ bytes: [UInt8]) throws(JSONRPCScanError) -> JSONRPCScan {
        let outcome = bytes.withUnsafeBytes { buffer in
            Result { () throws(JSONRPCScanError) in try scan(buffer) }
        }
        return try outcome.get()
    }

    public static func scan(_ bytes: UnsafeRawBufferPointer) throws(JSONRPCScanError) -> JSONRPCScan {
        var c = JSONCursor(bytes)
        c.skipWhitespace()
        guard !c.atEnd else { throw .notJSON }
        guard try c.peek() == ASCII.openBrace else {
            // Tell a well-formed array or scalar (-32600) from garbage (-32700).
            _ = try c.skipValue(depth: 0)
            c.skipWhitespace()
            guard c.atEnd else { throw .notJSON }
            throw .notAnObject
        }

        var s = JSONRPCScan()
        s.objectStart = c.i
        var heartbeatType: Range<Int>?
        c.i += 1
        c.skipWhitespace()
        if try c.peek() == ASCII.closeBrace {
            c.i += 1
        } else {
            while true {
                let (key, keyEscaped) = try c.scanKey()
                let valueStart = c.i
                if c.content(key, hasEscapes: keyEscaped, equals: "id") {
                    let kind = try c.skipValue(depth: 1)
                    if s.idKind == nil {
                        s.id = valueStart..<c.i
                        s.idKind = kind
                    } else {
                        s.hasDuplicateKeys = true
                    }
                } else if c.content(key, hasEscapes: keyEscaped, equals: "method") {
                    if s.methodKind == nil {
                        if try c.peek() == ASCII.quote {
                            s.methodHasEscapes = try c.scanString()
                            s.method = (valueStart + 1)..<(c.i - 1)
                            s.methodKind = .string
                        } else {
                            s.methodKind = try c.skipValue(depth: 1)
                        }
                    } else {
                        s.hasDuplicateKeys = true
                        _ = try c.skipValue(depth: 1)
                    }
                } else if c.content(key, hasEscapes: keyEscaped, equals: "params") {
                    if s.paramsKind == nil {
                        if try c.peek() == ASCII.openBrace {
                            try scanParams(&c, into: &s, heartbeatType: &heartbeatType)
                            s.paramsKind = .object
                        } else {
                            s.paramsKind = try c.skipValue(depth: 1)
                        }
                        s.params = valueStart..<c.i
                    } else {
                        s.hasDuplicateKeys = true
                        _ = try c.skipValue(depth: 1)
                    }
                } else if c.content(key, hasEscapes: keyEscaped, equals: "result") {
                    _ = try c.skipValue(depth: 1)
                    if s.result == nil { s.result = valueStart..<c.i } else { s.hasDuplicateKeys = true }
                } else if c.content(key, hasEscapes: keyEscaped, equals: "error") {
                    _ = try c.skipValue(depth: 1)
                    if s.error == nil { s.error = valueStart..<c.i } else { s.hasDuplicateKeys = true }
                } else if c.content(key, hasEscapes: keyEscaped, equals: "jsonrpc") {
                    _ = try c.skipValue(depth: 1)
                    if s.jsonrpc == nil { s.jsonrpc = valueStart..<c.i } else { s.hasDuplicateKeys = true }
                } else {
                    _ = try c.skipValue(depth: 1)
                }
                c.skipWhitespace()
                let b = try c.peek()
                c.i += 1
                if b == ASCII.comma {
                    c.skipWhitespace()
                } else if b == ASCII.closeBrace {
                    break
                } else {
                    throw .notJSON
                }
            }
        }
        c.skipWhitespace()
        guard c.atEnd else { throw .notJSON }

        // params may come before method: decide on the heartbeat type only now.
        if let type = heartbeatType, let method = s.method,
           c.content(method, hasEscapes: s.methodHasEscapes, equals: "heartbeat") {
            s.heartbeatType = type
        }
        return s
    }

    /// At the `{` of a top-level `params` object; leaves the cursor after its `}`.
    private static func scanParams(
        _ c: inout JSONCursor, into s: inout JSONRPCScan, heartbeatType: inout Range<Int>?
    ) throws(JSONRPCScanError) {
        c.i += 1
        c.skipWhitespace()
        if try c.peek() == ASCII.closeBrace {
            c.i += 1
            return
        }
        var seenChannel = false
        var seenType = false
        var previousValueEnd: Int?
        while true {
            let memberStart = c.i
            let (key, keyEscaped) = try c.scanKey()
            let valueStart = c.i
            var isAccessToken = false
            if c.content(key, hasEscapes: keyEscaped, equals: "channel") {
                if !seenChannel, try c.peek() == ASCII.quote {
                    s.channelHasEscapes = try c.scanString()
                    s.channel = (valueStart + 1)..<(c.i - 1)
                } else {
                    _ = try c.skipValue(depth: 2)
                }
                if seenChannel { s.hasDuplicateKeys = true }
                seenChannel = true
            } else if c.content(key, hasEscapes: keyEscaped, equals: "type") {
                if !seenType, try c.peek() == ASCII.quote {
                    _ = try c.scanString()
                    heartbeatType = (valueStart + 1)..<(c.i - 1)
                } else {
                    _ = try c.skipValue(depth: 2)
                }
                if seenType { s.hasDuplicateKeys = true }
                seenType = true
            } else if c.content(key, hasEscapes: keyEscaped, equals: "access_token") {
                _ = try c.skipValue(depth: 2)
                if s.accessToken == nil {
                    s.accessToken = memberStart..<c.i
                    isAccessToken = true
                } else {
                    s.hasDuplicateKeys = true
                }
            } else {
                _ = try c.skipValue(depth: 2)
            }
            let valueEnd = c.i
            c.skipWhitespace()
            let b = try c.peek()
            c.i += 1
            if b == ASCII.comma {
                c.skipWhitespace()
                if isAccessToken {
                    // {"access_token":"t", "x":1} → {"x":1}; {"a":1, "access_token":"t", "x":1} → {"a":1, "x":1}
                    s.accessTokenRemoval = previousValueEnd.map { $0..<valueEnd } ?? memberStart..<c.i
                }
                previousValueEnd = valueEnd
            } else if b == ASCII.closeBrace {
                if isAccessToken {
                    s.accessTokenRemoval = previousValueEnd.map { $0..<valueEnd } ?? memberStart..<valueEnd
                }
                return
            } else {
                throw .notJSON
            }
        }
    }
}

// MARK: - Comparing spans without creating strings

extension JSONRPCScanner {
    /// Whether `method` is exactly `literal` (ASCII), escapes decoded.
    public static func methodEquals(
        _ bytes: UnsafeRawBufferPointer, _ scan: JSONRPCScan, _ literal: StaticString
    ) -> Bool {
        guard let method = scan.method, method.upperBound <= bytes.count else { return false }
        return JSONCursor(bytes).content(method, hasEscapes: scan.methodHasEscapes, equals: literal)
    }

    public static func methodEquals(_ bytes: [UInt8], _ scan: JSONRPCScan, _ literal: StaticString) -> Bool {
        bytes.withUnsafeBytes { methodEquals($0, scan, literal) }
    }

    /// Whether `method` starts with `prefix` (ASCII), e.g. `"public/"` (SPEC §6.1).
    public static func methodHasPrefix(
        _ bytes: UnsafeRawBufferPointer, _ scan: JSONRPCScan, _ prefix: StaticString
    ) -> Bool {
        guard let method = scan.method, method.upperBound <= bytes.count else { return false }
        let n = prefix.utf8CodeUnitCount
        let p = prefix.utf8Start
        var j = method.lowerBound
        for k in 0..<n {
            guard j < method.upperBound,
                  let (unit, next) = JSONCursor.unit(bytes, at: j, end: method.upperBound),
                  unit == UInt32(p[k]) else { return false }
            j = next
        }
        return true
    }

    public static func methodHasPrefix(_ bytes: [UInt8], _ scan: JSONRPCScan, _ prefix: StaticString) -> Bool {
        bytes.withUnsafeBytes { methodHasPrefix($0, scan, prefix) }
    }

    /// Whether `params.type` of a heartbeat is `literal`, e.g. `"test_request"`.
    public static func heartbeatTypeEquals(_ bytes: [UInt8], _ scan: JSONRPCScan, _ literal: StaticString) -> Bool {
        guard let type = scan.heartbeatType, type.upperBound <= bytes.count else { return false }
        return bytes.withUnsafeBytes { buffer in
            let c = JSONCursor(buffer)
            // params.type content may hold escapes; decoding-compare handles both forms.
            return c.content(type, hasEscapes: true, equals: literal)
        }
    }

    /// Slow path: the decoded method name.
    public static func method(in bytes: [UInt8], scan: JSONRPCScan) -> String? {
        guard let method = scan.method, method.upperBound <= bytes.count else { return nil }
        return JSONStringDecoder.decode(bytes[method])
    }

    /// Slow path: the decoded `params.channel`.
    public static func channel(in bytes: [UInt8], scan: JSONRPCScan) -> String? {
        guard let channel = scan.channel, channel.upperBound <= bytes.count else { return nil }
        return JSONStringDecoder.decode(bytes[channel])
    }
}
