/// The status line and fields of a parsed response.
public struct HTTPResponseHead: Sendable, Equatable {
    public var status: Int
    public var reason: String
    public var versionMinor: Int
    public var headers: HTTPHeaders

    public init(status: Int, reason: String, versionMinor: Int = 1, headers: HTTPHeaders = HTTPHeaders()) {
        self.status = status
        self.reason = reason
        self.versionMinor = versionMinor
        self.headers = headers
    }
}

/// A parsed response: its head and its body after transfer decoding.
public struct HTTPResponseMessage: Sendable, Equatable {
    public var head: HTTPResponseHead
    public var body: [UInt8]

    public init(head: HTTPResponseHead, body: [UInt8] = []) {
        self.head = head
        self.body = body
    }

    public var status: Int { head.status }
    public var headers: HTTPHeaders { head.headers }
}

/// An incremental HTTP/1.x response parser, in the style of `HTTPRequestParser`.
///
/// The body is delimited by RFC 9112 §6.3: none for 1xx, 204 and 304; chunked;
/// Content-Length; otherwise it runs to the end of the connection, and the caller
/// reports that end with `endOfStream()`. Responses to HEAD are not supported.
///
/// After `101 Switching Protocols` the bytes that follow are not HTTP: call
/// `takeBufferedBytes()` and hand them to the new protocol (RFC 6455 §4.1).
/// The status line is limited by `maxRequestLineBytes`.
public struct HTTPResponseParser: Sendable {
    private var reader: MessageReader
    private var phase = Phase.statusLine
    private var head = HTTPResponseHead(status: 0, reason: "")
    private var failure: HTTPParseError?

    private enum Phase: Sendable {
        case statusLine
        case headers
        case body
    }

    public init(limits: HTTPParserLimits = .init()) {
        reader = MessageReader(limits: limits)
    }

    public var bufferedByteCount: Int { reader.bufferedByteCount }

    public mutating func feed<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        reader.append(bytes)
    }

    /// The next complete response, or nil when more bytes are needed.
    public mutating func next() throws(HTTPParseError) -> HTTPResponseMessage? {
        if let failure { throw failure }
        do {
            return try step()
        } catch {
            failure = error
            throw error
        }
    }

    /// The connection ended: returns a response whose body runs to the end of the
    /// connection, nil if no response was in progress, and throws if one was cut short.
    public mutating func endOfStream() throws(HTTPParseError) -> HTTPResponseMessage? {
        if let failure { throw failure }
        do {
            if let message = try step() { return message }
        } catch {
            failure = error
            throw error
        }
        if phase == .body && reader.bodyState == .untilClose {
            let message = HTTPResponseMessage(head: head, body: reader.body)
            reader.finishMessage()
            phase = .statusLine
            return message
        }
        guard phase == .statusLine && reader.bufferedByteCount == 0 else {
            failure = .unexpectedEndOfStream
            throw .unexpectedEndOfStream
        }
        return nil
    }

    /// The bytes after the last response returned, and a fresh parser state.
    public mutating func takeBufferedBytes() -> [UInt8] {
        phase = .statusLine
        failure = nil
        return reader.takeBufferedBytes()
    }

    private mutating func step() throws(HTTPParseError) -> HTTPResponseMessage? {
        while true {
            switch phase {
            case .statusLine:
                switch reader.readLine(budget: reader.limits.maxRequestLineBytes + 2) {
                case .needMoreData:
                    return nil
                case .overBudget:
                    throw .invalidStatusLine
                case .line(let range):
                    head = try parseStatusLine(reader.buffer[range])
                    phase = .headers
                }
            case .headers:
                guard try reader.readFieldSection(into: &head.headers, keep: true) else { return nil }
                // RFC 9112 §6.3 rule 1: these responses end with their field section.
                if (100..<200).contains(head.status) || head.status == 204 || head.status == 304 {
                    reader.bodyState = .none
                } else {
                    reader.bodyState = try reader.framing(headers: head.headers, versionMinor: head.versionMinor) ?? .untilClose
                }
                phase = .body
            case .body:
                guard try reader.readBody() else { return nil }
                let message = HTTPResponseMessage(head: head, body: reader.body)
                reader.finishMessage()
                phase = .statusLine
                return message
            }
        }
    }

    /// RFC 9112 §4: status-line = HTTP-version SP status-code SP [ reason-phrase ].
    /// A missing SP after the code is tolerated, as most clients do.
    private func parseStatusLine(_ bytes: ArraySlice<UInt8>) throws(HTTPParseError) -> HTTPResponseHead {
        guard let space = bytes.firstIndex(of: sp) else { throw .invalidStatusLine }
        let versionMinor = try parseVersion(bytes[..<space])
        let afterVersion = bytes[(space + 1)...]
        let code = afterVersion.prefix(3)
        guard code.count == 3, code.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
            throw .invalidStatusLine
        }
        let status = code.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
        guard status >= 100 else { throw .invalidStatusLine }
        var reason = afterVersion[code.endIndex...]
        if let first = reason.first {
            guard first == sp else { throw .invalidStatusLine }
            reason = reason.dropFirst()
        }
        guard !reason.contains(where: isForbiddenControl) else { throw .invalidStatusLine }
        return HTTPResponseHead(
            status: status, reason: String(decoding: reason, as: UTF8.self), versionMinor: versionMinor)
    }
}
