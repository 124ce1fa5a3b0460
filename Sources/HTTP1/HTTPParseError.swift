/// Everything the HTTP/1.1 parsers reject. `status` is the only mapping to the
/// wire: a server answers with that status and closes the connection, since after
/// a framing error the position of the next message is unknown (RFC 9112 §9.6).
public enum HTTPParseError: Error, Equatable, Sendable {
    // Request line / status line (RFC 9112 §3, §4).
    /// The line is not `method SP request-target SP HTTP-version`.
    case invalidRequestLine
    /// The method is empty or has a byte that is not a `tchar`.
    case invalidMethod
    /// The target has a byte outside VCHAR, or is not origin-, absolute- or
    /// asterisk-form (`*` for OPTIONS only).
    case invalidRequestTarget
    /// Not `HTTP/DIGIT.DIGIT` (the name is case-sensitive, RFC 9112 §2.3).
    case invalidVersion
    /// Well-formed but neither HTTP/1.0 nor HTTP/1.1.
    case unsupportedVersion
    /// The request line is longer than `maxRequestLineBytes`.
    case requestLineTooLong
    /// A response's status line is malformed.
    case invalidStatusLine

    // Field section (RFC 9112 §5).
    /// A field line without a colon.
    case invalidHeaderLine
    /// A field name that is empty or has a byte that is not a `tchar`.
    case invalidHeaderName
    /// RFC 9112 §5.1: "No whitespace is allowed between the field name and colon".
    case whitespaceBeforeColon
    /// RFC 9112 §5.2: obs-fold (a line starting with SP or HTAB) is rejected.
    case obsoleteLineFolding
    /// A field value with a control character (NUL, CR, LF, DEL, …).
    case invalidHeaderValue
    /// The field section is larger than `maxHeaderBytes`.
    case headersTooLarge
    /// More fields than `maxHeaderCount`.
    case tooManyHeaders
    /// RFC 9112 §3.2: an HTTP/1.1 request must carry exactly one Host.
    case missingHost
    case duplicateHost

    // Body framing (RFC 9112 §6).
    /// Content-Length is not a list of digits.
    case invalidContentLength
    /// Several Content-Length values that differ.
    case conflictingContentLength
    /// RFC 9112 §6.1: a request with both is a smuggling attempt.
    case contentLengthWithTransferEncoding
    /// A transfer coding other than `chunked`.
    case unsupportedTransferEncoding
    /// `chunked` twice, or Transfer-Encoding in an HTTP/1.0 message (RFC 9112 §6.1).
    case invalidTransferEncoding
    /// A chunk-size line that is not hex digits with optional extensions.
    case invalidChunkSize
    /// A chunk-size line longer than `maxChunkLineBytes`.
    case chunkLineTooLong
    /// Chunk data not followed by CRLF.
    case invalidChunkTerminator
    /// The body (declared, or decoded from chunks) exceeds `maxBodyBytes`.
    case bodyTooLarge
    /// The stream ended in the middle of a message.
    case unexpectedEndOfStream

    /// The HTTP status a server answers this error with.
    public var status: Int {
        switch self {
        case .requestLineTooLong:
            return 414  // URI Too Long: nearly all of a long request line is its target
        case .headersTooLarge, .tooManyHeaders:
            return 431  // Request Header Fields Too Large (RFC 6585 §5)
        case .bodyTooLarge:
            return 413  // Content Too Large
        case .unsupportedTransferEncoding:
            return 501  // RFC 9112 §6.1: a transfer coding the server does not understand
        case .unsupportedVersion:
            return 505  // HTTP Version Not Supported
        case .invalidRequestLine, .invalidMethod, .invalidRequestTarget, .invalidVersion,
            .invalidStatusLine, .invalidHeaderLine, .invalidHeaderName, .whitespaceBeforeColon,
            .obsoleteLineFolding, .invalidHeaderValue, .missingHost, .duplicateHost,
            .invalidContentLength, .conflictingContentLength, .contentLengthWithTransferEncoding,
            .invalidTransferEncoding, .invalidChunkSize, .chunkLineTooLong, .invalidChunkTerminator,
            .unexpectedEndOfStream:
            return 400
        }
    }
}

/// The parsers' bounds. Each is checked while bytes arrive, so a peer can never
/// make a parser buffer more than the limit before it fails.
public struct HTTPParserLimits: Sendable, Equatable {
    /// The request line (or status line) without its CRLF.
    public var maxRequestLineBytes: Int
    /// The field section: every field line with its line ending, and the empty
    /// line that ends the section. Applies to trailers separately.
    public var maxHeaderBytes: Int
    /// Field lines in the header section (and, separately, in trailers).
    public var maxHeaderCount: Int
    /// The body after transfer decoding.
    public var maxBodyBytes: Int
    /// One chunk-size line, extensions included, without its CRLF.
    public var maxChunkLineBytes: Int

    public init(
        maxRequestLineBytes: Int = 8192,
        maxHeaderBytes: Int = 16384,
        maxHeaderCount: Int = 100,
        maxBodyBytes: Int = 1_048_576,
        maxChunkLineBytes: Int = 1024
    ) {
        self.maxRequestLineBytes = maxRequestLineBytes
        self.maxHeaderBytes = maxHeaderBytes
        self.maxHeaderCount = maxHeaderCount
        self.maxBodyBytes = maxBodyBytes
        self.maxChunkLineBytes = maxChunkLineBytes
    }
}
