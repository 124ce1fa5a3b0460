/// A response to serialize as HTTP/1.1.
public struct HTTPResponse: Sendable, Equatable {
    public var status: Int
    public var headers: HTTPHeaders
    public var body: [UInt8]

    public init(status: Int, headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// `HTTP/1.1 <status> <reason>`, the fields in order, and the body.
    ///
    /// Adds `Content-Length` unless it is already there, Transfer-Encoding is set,
    /// or the status never has a body (1xx, 204, 304: RFC 9110 §8.6, RFC 9112 §6.3);
    /// for those statuses the body is not written.
    public func serialize() -> [UInt8] { serialize(omittingBody: false) }

    /// The response to a HEAD request (RFC 9110 §9.3.2): the same head, `Content-Length`
    /// included, and no content.
    public func serialize(omittingBody: Bool) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(64 + headers.count * 32 + body.count)
        out.append(contentsOf: "HTTP/1.1 \(status) \(Self.reasonPhrase(status))\r\n".utf8)
        appendFields(headers, to: &out)
        let bodyless = (100..<200).contains(status) || status == 204 || status == 304
        if !bodyless && !headers.contains("Content-Length") && !headers.contains("Transfer-Encoding") {
            out.append(contentsOf: "Content-Length: \(body.count)\r\n".utf8)
        }
        out.append(contentsOf: [cr, lf])
        if !bodyless && !omittingBody { out.append(contentsOf: body) }
        return out
    }

    /// The standard reason phrase (RFC 9110 §15, RFC 6585), or "" for codes it does
    /// not define (the status line then ends in `<status> `, RFC 9112 §4).
    public static func reasonPhrase(_ status: Int) -> String {
        switch status {
        case 100: return "Continue"
        case 101: return "Switching Protocols"
        case 200: return "OK"
        case 201: return "Created"
        case 202: return "Accepted"
        case 203: return "Non-Authoritative Information"
        case 204: return "No Content"
        case 205: return "Reset Content"
        case 206: return "Partial Content"
        case 300: return "Multiple Choices"
        case 301: return "Moved Permanently"
        case 302: return "Found"
        case 303: return "See Other"
        case 304: return "Not Modified"
        case 307: return "Temporary Redirect"
        case 308: return "Permanent Redirect"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 402: return "Payment Required"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 406: return "Not Acceptable"
        case 407: return "Proxy Authentication Required"
        case 408: return "Request Timeout"
        case 409: return "Conflict"
        case 410: return "Gone"
        case 411: return "Length Required"
        case 412: return "Precondition Failed"
        case 413: return "Content Too Large"
        case 414: return "URI Too Long"
        case 415: return "Unsupported Media Type"
        case 416: return "Range Not Satisfiable"
        case 417: return "Expectation Failed"
        case 421: return "Misdirected Request"
        case 422: return "Unprocessable Content"
        case 426: return "Upgrade Required"
        case 428: return "Precondition Required"
        case 429: return "Too Many Requests"
        case 431: return "Request Header Fields Too Large"
        case 500: return "Internal Server Error"
        case 501: return "Not Implemented"
        case 502: return "Bad Gateway"
        case 503: return "Service Unavailable"
        case 504: return "Gateway Timeout"
        case 505: return "HTTP Version Not Supported"
        default: return ""
        }
    }
}

/// `<method> <target> HTTP/1.1`, the fields in order, and the body. Adds
/// `Content-Length` when there is a body, or for POST/PUT/PATCH (RFC 9110 §8.6: a
/// user agent should send it when the method gives a body meaning), unless
/// Content-Length or Transfer-Encoding is already there. The caller supplies Host.
public func serializeRequest(method: String, target: String, headers: HTTPHeaders, body: [UInt8] = []) -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(64 + target.utf8.count + headers.count * 32 + body.count)
    out.append(contentsOf: "\(method) \(target) HTTP/1.1\r\n".utf8)
    appendFields(headers, to: &out)
    let wantsLength = !body.isEmpty || ["POST", "PUT", "PATCH"].contains(method)
    if wantsLength && !headers.contains("Content-Length") && !headers.contains("Transfer-Encoding") {
        out.append(contentsOf: "Content-Length: \(body.count)\r\n".utf8)
    }
    out.append(contentsOf: [cr, lf])
    out.append(contentsOf: body)
    return out
}

/// Writes `name: value\r\n` per field. A CR, LF or other control byte in a value
/// (RFC 9110 §5.5 forbids them) becomes a space, so a value that came from a peer
/// can never split the message.
private func appendFields(_ headers: HTTPHeaders, to out: inout [UInt8]) {
    for (name, value) in headers {
        out.append(contentsOf: name.utf8)
        out.append(UInt8(ascii: ":"))
        out.append(sp)
        for byte in value.utf8 {
            out.append(isForbiddenControl(byte) ? sp : byte)
        }
        out.append(cr)
        out.append(lf)
    }
}
