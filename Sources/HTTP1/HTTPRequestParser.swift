/// A parsed HTTP/1.x request with its body decoded.
public struct HTTPRequest: Sendable, Equatable {
    public var method: String
    /// The request-target exactly as sent.
    public var target: String
    /// The target's path (still percent-encoded): for origin-form `/a/b?x=1` it is
    /// `/a/b`; for absolute-form `http://h/a?x` it is `/a`; for `*` it is `*`.
    public var path: String
    /// What follows the first `?`, without it; nil when there is no `?`.
    public var query: String?
    public var versionMajor: Int
    public var versionMinor: Int
    public var headers: HTTPHeaders
    public var body: [UInt8]

    public init(
        method: String, target: String, path: String, query: String? = nil,
        versionMajor: Int = 1, versionMinor: Int = 1, headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = []
    ) {
        self.method = method
        self.target = target
        self.path = path
        self.query = query
        self.versionMajor = versionMajor
        self.versionMinor = versionMinor
        self.headers = headers
        self.body = body
    }

    /// RFC 9112 §9.3: HTTP/1.1 is persistent unless `Connection: close`; HTTP/1.0
    /// only with `Connection: keep-alive`.
    public var keepAlive: Bool {
        if versionMinor >= 1 {
            return !headers.containsToken("close", in: "Connection")
        }
        return headers.containsToken("keep-alive", in: "Connection")
            && !headers.containsToken("close", in: "Connection")
    }
}

/// An incremental HTTP/1.0 and HTTP/1.1 request parser (RFC 9112).
///
/// Feed bytes as they arrive and call `next()` until it returns nil (need more
/// data). Pipelined requests come out one by one. Every limit is checked as bytes
/// arrive, so a bad peer fails as soon as it passes a limit. After an error the
/// parser keeps throwing it: the stream's framing is lost and the connection must
/// be closed after answering with `error.status`.
///
/// Line endings are CRLF; a bare LF is accepted too (RFC 9112 §2.2, as
/// picohttpparser does). Empty lines before a request line are skipped (RFC 9112 §2.2).
public struct HTTPRequestParser: Sendable {
    private var reader: MessageReader
    private var phase = Phase.requestLine
    private var line = RequestLine(method: "", target: "", path: "", query: nil, versionMinor: 1)
    private var headers = HTTPHeaders()
    private var failure: HTTPParseError?

    private enum Phase: Sendable {
        case requestLine
        case headers
        case body
    }

    private struct RequestLine: Sendable {
        var method: String
        var target: String
        var path: String
        var query: String?
        var versionMinor: Int
    }

    public init(limits: HTTPParserLimits = .init()) {
        reader = MessageReader(limits: limits)
    }

    public var limits: HTTPParserLimits { reader.limits }

    /// Bytes fed and not yet returned as part of a request.
    public var bufferedByteCount: Int { reader.bufferedByteCount }

    public mutating func feed<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        reader.append(bytes)
    }

    /// The next complete request, or nil when more bytes are needed.
    public mutating func next() throws(HTTPParseError) -> HTTPRequest? {
        if let failure { throw failure }
        do {
            return try step()
        } catch {
            failure = error
            throw error
        }
    }

    /// The bytes after the last request returned, and a fresh parser state. After a
    /// WebSocket upgrade (RFC 6455 §4.2.1) these bytes are the first frames.
    public mutating func takeBufferedBytes() -> [UInt8] {
        phase = .requestLine
        headers = HTTPHeaders()
        failure = nil
        return reader.takeBufferedBytes()
    }

    private mutating func step() throws(HTTPParseError) -> HTTPRequest? {
        while true {
            switch phase {
            case .requestLine:
                switch reader.readLine(budget: reader.limits.maxRequestLineBytes + 2) {
                case .needMoreData:
                    return nil
                case .overBudget:
                    throw .requestLineTooLong
                case .line(let range):
                    if range.isEmpty {
                        reader.discardConsumed()
                        continue
                    }
                    guard range.count <= reader.limits.maxRequestLineBytes else { throw .requestLineTooLong }
                    line = try parseRequestLine(reader.buffer[range])
                    phase = .headers
                }
            case .headers:
                guard try reader.readFieldSection(into: &headers, keep: true) else { return nil }
                try validateHost()
                // RFC 9112 §6.3 rule 7: a request without either field has no body.
                reader.bodyState = try reader.framing(headers: headers, versionMinor: line.versionMinor) ?? .none
                phase = .body
            case .body:
                guard try reader.readBody() else { return nil }
                let request = HTTPRequest(
                    method: line.method, target: line.target, path: line.path, query: line.query,
                    versionMajor: 1, versionMinor: line.versionMinor, headers: headers, body: reader.body)
                reader.finishMessage()
                headers = HTTPHeaders()
                phase = .requestLine
                return request
            }
        }
    }

    /// RFC 9112 §3.2: a server MUST respond 400 to an HTTP/1.1 request that lacks a
    /// Host field or has more than one.
    private func validateHost() throws(HTTPParseError) {
        let hosts = headers.values("Host").count
        if hosts > 1 { throw .duplicateHost }
        if hosts == 0 && line.versionMinor >= 1 { throw .missingHost }
    }

    /// RFC 9112 §3: request-line = method SP request-target SP HTTP-version
    private func parseRequestLine(_ bytes: ArraySlice<UInt8>) throws(HTTPParseError) -> RequestLine {
        guard let firstSpace = bytes.firstIndex(of: sp) else { throw .invalidRequestLine }
        let method = bytes[..<firstSpace]
        guard !method.isEmpty, method.allSatisfy(isTokenChar) else { throw .invalidMethod }
        let rest = bytes[(firstSpace + 1)...]
        guard let secondSpace = rest.firstIndex(of: sp) else { throw .invalidRequestLine }
        let target = rest[..<secondSpace]
        // RFC 9112 §3.2: request-target is VCHARs; RFC 3986 has no place for
        // controls, spaces, DEL or raw non-ASCII bytes.
        guard !target.isEmpty, target.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw .invalidRequestTarget
        }
        let versionMinor = try parseVersion(rest[(secondSpace + 1)...])
        let methodString = String(decoding: method, as: UTF8.self)
        let targetString = String(decoding: target, as: UTF8.self)

        let pathAndQuery: Substring
        if target.first == UInt8(ascii: "/") {
            pathAndQuery = targetString[...]  // origin-form, RFC 9112 §3.2.1
        } else if targetString == "*" {
            // RFC 9112 §3.2.4: asterisk-form is only used for a server-wide OPTIONS.
            guard methodString == "OPTIONS" else { throw .invalidRequestTarget }
            return RequestLine(method: methodString, target: targetString, path: "*", query: nil, versionMinor: versionMinor)
        } else if let afterScheme = Self.stripHTTPScheme(targetString) {
            // RFC 9112 §3.2.2: a server MUST accept absolute-form.
            guard let pathStart = afterScheme.firstIndex(where: { $0 == "/" || $0 == "?" }) else {
                return RequestLine(method: methodString, target: targetString, path: "/", query: nil, versionMinor: versionMinor)
            }
            pathAndQuery = afterScheme[pathStart...]
        } else {
            // authority-form (CONNECT) is for proxies, which this is not.
            throw .invalidRequestTarget
        }

        var path: Substring = pathAndQuery
        var query: String?
        if let mark = pathAndQuery.firstIndex(of: "?") {
            path = pathAndQuery[..<mark]
            query = String(pathAndQuery[pathAndQuery.index(after: mark)...])
        }
        return RequestLine(
            method: methodString, target: targetString, path: path.isEmpty ? "/" : String(path), query: query,
            versionMinor: versionMinor)
    }

    private static func stripHTTPScheme(_ target: String) -> Substring? {
        for scheme in ["http://", "https://"] where target.utf8.count > scheme.utf8.count {
            let prefix = target.prefix(scheme.count)
            if asciiCaseInsensitiveEquals(prefix, scheme) {
                let authorityAndPath = target.dropFirst(scheme.count)
                return authorityAndPath.first == "/" ? nil : authorityAndPath
            }
        }
        return nil
    }
}

/// RFC 9112 §2.3: HTTP-version = "HTTP" "/" DIGIT "." DIGIT, case-sensitive.
/// Returns the minor version of HTTP/1.0 or HTTP/1.1; other well-formed versions
/// are unsupported (505), anything else is malformed (400).
func parseVersion(_ bytes: ArraySlice<UInt8>) throws(HTTPParseError) -> Int {
    let prefix: [UInt8] = Array("HTTP/".utf8)
    guard bytes.count == 8, bytes.starts(with: prefix) else { throw .invalidVersion }
    let major = bytes[bytes.startIndex + 5]
    let dot = bytes[bytes.startIndex + 6]
    let minor = bytes[bytes.startIndex + 7]
    let digits = UInt8(ascii: "0")...UInt8(ascii: "9")
    guard digits.contains(major), dot == UInt8(ascii: "."), digits.contains(minor) else { throw .invalidVersion }
    guard major == UInt8(ascii: "1"), minor <= UInt8(ascii: "1") else { throw .unsupportedVersion }
    return Int(minor - UInt8(ascii: "0"))
}
