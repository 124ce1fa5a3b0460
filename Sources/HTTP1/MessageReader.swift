// The part of HTTP/1.1 message parsing shared by requests and responses
// (RFC 9112 §2.1):
//
//   HTTP-message = start-line CRLF
//                  *( field-line CRLF )
//                  CRLF
//                  [ message-body ]
//
// Lines end in CRLF; like picohttpparser we also accept a bare LF, which
// RFC 9112 §2.2 allows a recipient to recognize as a line terminator. A CR
// anywhere else is a control character and is rejected where it appears.

let cr = UInt8(ascii: "\r")
let lf = UInt8(ascii: "\n")
let sp = UInt8(ascii: " ")
let htab = UInt8(ascii: "\t")

/// RFC 9110 §5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
/// "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
@inline(__always)
func isTokenChar(_ byte: UInt8) -> Bool {
    switch byte {
    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
        UInt8(ascii: "0")...UInt8(ascii: "9"):
        return true
    case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
        UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
        UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
        return true
    default:
        return false
    }
}

/// Controls other than HTAB, and DEL: never valid in a field value (RFC 9110 §5.5)
/// nor in a reason phrase (RFC 9112 §4).
@inline(__always)
func isForbiddenControl(_ byte: UInt8) -> Bool {
    (byte < 0x20 && byte != htab) || byte == 0x7F
}

/// How the body of a message is delimited (RFC 9112 §6.3), and how far reading it got.
enum BodyState: Sendable, Equatable {
    case none
    case fixed(Int)
    /// RFC 9112 §7.1: chunked-body = *chunk last-chunk trailer-section CRLF
    case chunkSize
    case chunkData(remaining: Int)
    case chunkDataEnd
    case trailers
    /// A response without Content-Length or Transfer-Encoding: the body ends when
    /// the connection does (RFC 9112 §6.3 rule 8).
    case untilClose
}

enum LineResult {
    /// The line's bytes in `buffer`, without its terminator.
    case line(Range<Int>)
    case needMoreData
    /// The line (terminator included) is, or will certainly be, longer than the budget.
    case overBudget
}

/// Buffer and cursor shared by `HTTPRequestParser` and `HTTPResponseParser`.
///
/// Bytes of the message in progress stay in `buffer` from `messageStart` until the
/// message is returned, so `takeBufferedBytes` can hand back exactly the bytes that
/// follow the last returned message.
struct MessageReader: Sendable {
    let limits: HTTPParserLimits
    var buffer: [UInt8] = []
    /// The first byte of the message in progress.
    var messageStart = 0
    /// The first byte the message in progress has not consumed.
    var readIndex = 0
    /// Where the search for the next LF resumes: `readIndex..<scanIndex` has none,
    /// so feeding one byte at a time stays linear.
    var scanIndex = 0

    var fieldBytes = 0
    var fieldCount = 0
    var bodyState: BodyState = .none
    var body: [UInt8] = []

    init(limits: HTTPParserLimits) {
        self.limits = limits
    }

    var bufferedByteCount: Int { buffer.count - messageStart }

    mutating func append<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        // Drop the bytes of returned messages once they are at least half the buffer,
        // so compaction costs O(1) amortized per byte.
        if messageStart > 0 && messageStart * 2 >= buffer.count {
            buffer.removeSubrange(0..<messageStart)
            readIndex -= messageStart
            scanIndex -= messageStart
            messageStart = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// Everything after the last returned message; the reader starts over empty.
    mutating func takeBufferedBytes() -> [UInt8] {
        let rest = Array(buffer[messageStart...])
        self = MessageReader(limits: limits)
        return rest
    }

    /// Forgets the consumed bytes of the message in progress, as if it had not begun
    /// (used to skip empty lines before a request line).
    mutating func discardConsumed() {
        messageStart = readIndex
    }

    /// The message in progress was returned: the next one starts at `readIndex`.
    mutating func finishMessage() {
        messageStart = readIndex
        fieldBytes = 0
        fieldCount = 0
        bodyState = .none
        body = []
    }

    mutating func readLine(budget: Int) -> LineResult {
        if let lfIndex = buffer[scanIndex...].firstIndex(of: lf) {
            guard lfIndex + 1 - readIndex <= budget else { return .overBudget }
            var end = lfIndex
            if end > readIndex && buffer[end - 1] == cr { end -= 1 }
            let line = readIndex..<end
            readIndex = lfIndex + 1
            scanIndex = readIndex
            return .line(line)
        }
        scanIndex = buffer.count
        // The LF still to come makes the line at least one byte longer than what is here.
        return buffer.count - readIndex >= budget ? .overBudget : .needMoreData
    }

    /// Reads field lines until the empty line ending the section (then returns true),
    /// appending them to `headers` when `keep` (trailers are skipped).
    mutating func readFieldSection(into headers: inout HTTPHeaders, keep: Bool) throws(HTTPParseError) -> Bool {
        while true {
            switch readLine(budget: limits.maxHeaderBytes - fieldBytes) {
            case .needMoreData:
                return false
            case .overBudget:
                throw .headersTooLarge
            case .line(let line):
                fieldBytes += readIndex - line.lowerBound
                if line.isEmpty { return true }
                guard fieldCount < limits.maxHeaderCount else { throw .tooManyHeaders }
                fieldCount += 1
                let (name, value) = try parseFieldLine(line)
                if keep {
                    headers.add(
                        name: String(decoding: buffer[name], as: UTF8.self),
                        value: String(decoding: buffer[value], as: UTF8.self))
                }
            }
        }
    }

    /// RFC 9112 §5: field-line = field-name ":" OWS field-value OWS
    private func parseFieldLine(_ line: Range<Int>) throws(HTTPParseError) -> (Range<Int>, Range<Int>) {
        // RFC 9112 §5.2: obs-fold is rejected with 400; §2.2: so is whitespace
        // between the start-line and the first field line.
        let first = buffer[line.lowerBound]
        if first == sp || first == htab { throw .obsoleteLineFolding }
        guard let colon = buffer[line].firstIndex(of: UInt8(ascii: ":")) else { throw .invalidHeaderLine }
        guard colon > line.lowerBound else { throw .invalidHeaderName }
        // RFC 9112 §5.1: a server MUST reject whitespace between field name and colon.
        let beforeColon = buffer[colon - 1]
        if beforeColon == sp || beforeColon == htab { throw .whitespaceBeforeColon }
        for i in line.lowerBound..<colon where !isTokenChar(buffer[i]) {
            throw .invalidHeaderName
        }
        var start = colon + 1
        var end = line.upperBound
        while start < end && (buffer[start] == sp || buffer[start] == htab) { start += 1 }
        while end > start && (buffer[end - 1] == sp || buffer[end - 1] == htab) { end -= 1 }
        for i in start..<end where isForbiddenControl(buffer[i]) {
            throw .invalidHeaderValue
        }
        return (line.lowerBound..<colon, start..<end)
    }

    /// Advances through the body; true once it is complete (`untilClose` never is).
    mutating func readBody() throws(HTTPParseError) -> Bool {
        while true {
            switch bodyState {
            case .none:
                return true
            case .fixed(let length):
                guard buffer.count - readIndex >= length else { return false }
                body = Array(buffer[readIndex..<readIndex + length])
                readIndex += length
                scanIndex = readIndex
                bodyState = .none
            case .untilClose:
                let available = buffer.count - readIndex
                guard body.count + available <= limits.maxBodyBytes else { throw .bodyTooLarge }
                body.append(contentsOf: buffer[readIndex...])
                readIndex = buffer.count
                scanIndex = readIndex
                return false
            case .chunkSize:
                switch readLine(budget: limits.maxChunkLineBytes + 2) {
                case .needMoreData: return false
                case .overBudget: throw .chunkLineTooLong
                case .line(let line):
                    guard line.count <= limits.maxChunkLineBytes else { throw .chunkLineTooLong }
                    let size = try parseChunkSize(line)
                    if size == 0 {
                        fieldBytes = 0
                        fieldCount = 0
                        bodyState = .trailers
                    } else {
                        bodyState = .chunkData(remaining: size)
                    }
                }
            case .chunkData(let remaining):
                let take = min(remaining, buffer.count - readIndex)
                guard take > 0 else { return false }
                body.append(contentsOf: buffer[readIndex..<readIndex + take])
                readIndex += take
                scanIndex = readIndex
                bodyState = take == remaining ? .chunkDataEnd : .chunkData(remaining: remaining - take)
            case .chunkDataEnd:
                switch readLine(budget: 2) {
                case .needMoreData: return false
                case .overBudget: throw .invalidChunkTerminator
                case .line(let line):
                    guard line.isEmpty else { throw .invalidChunkTerminator }
                    bodyState = .chunkSize
                }
            case .trailers:
                // RFC 9112 §7.1.2: trailer fields may be discarded.
                var ignored = HTTPHeaders()
                guard try readFieldSection(into: &ignored, keep: false) else { return false }
                bodyState = .none
            }
        }
    }

    /// RFC 9112 §7.1: chunk-size [ chunk-ext ], chunk-size = 1*HEXDIG,
    /// chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] ).
    /// Extensions are ignored. The size is checked against the body limit digit by
    /// digit, so neither overflow nor a huge declared chunk gets past this line.
    private func parseChunkSize(_ line: Range<Int>) throws(HTTPParseError) -> Int {
        var i = line.lowerBound
        var size = 0
        while i < line.upperBound, let digit = hexValue(buffer[i]) {
            size = size * 16 + Int(digit)
            if size > limits.maxBodyBytes - body.count { throw .bodyTooLarge }
            i += 1
        }
        guard i > line.lowerBound else { throw .invalidChunkSize }
        while i < line.upperBound && (buffer[i] == sp || buffer[i] == htab) { i += 1 }
        if i < line.upperBound {
            guard buffer[i] == UInt8(ascii: ";") else { throw .invalidChunkSize }
            for j in i..<line.upperBound where isForbiddenControl(buffer[j]) {
                throw .invalidChunkSize
            }
        }
        return size
    }

    /// Body framing from Content-Length / Transfer-Encoding (RFC 9112 §6.1–§6.3),
    /// the rules requests and responses share.
    func framing(headers: HTTPHeaders, versionMinor: Int) throws(HTTPParseError) -> BodyState? {
        let transferEncodings = headers.values("Transfer-Encoding")
        let hasContentLength = headers.contains("Content-Length")
        if !transferEncodings.isEmpty {
            // RFC 9112 §6.1: both together is a request smuggling attempt.
            if hasContentLength { throw .contentLengthWithTransferEncoding }
            // RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing.
            if versionMinor == 0 { throw .invalidTransferEncoding }
            let codings = transferEncodings.flatMap(listElements)
            guard !codings.isEmpty else { throw .invalidTransferEncoding }
            for coding in codings where !asciiCaseInsensitiveEquals(coding, "chunked") {
                throw .unsupportedTransferEncoding
            }
            // RFC 9112 §6.1: chunked must not be applied more than once.
            guard codings.count == 1 else { throw .invalidTransferEncoding }
            return .chunkSize
        }
        if hasContentLength {
            let length = try contentLength(headers.values("Content-Length"))
            guard length <= limits.maxBodyBytes else { throw .bodyTooLarge }
            return length == 0 ? BodyState.none : .fixed(length)
        }
        return nil
    }

    /// RFC 9110 §8.6: Content-Length = 1*DIGIT. RFC 9112 §6.3 rule 5: a list of
    /// identical values (`42, 42`, or repeated fields) may be accepted; differing
    /// ones are an error. A value too large for Int is certainly over the limit.
    private func contentLength(_ values: [String]) throws(HTTPParseError) -> Int {
        var result: Int?
        for value in values {
            let elements = value.split(separator: ",", omittingEmptySubsequences: false)
            for element in elements {
                let digits = element.utf8.drop { $0 == sp || $0 == htab }.reversed().drop { $0 == sp || $0 == htab }
                guard !digits.isEmpty else { throw .invalidContentLength }
                var length = 0
                var overflow = false
                for byte in digits.reversed() {
                    guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") else {
                        throw .invalidContentLength
                    }
                    if !overflow {
                        let (times10, o1) = length.multipliedReportingOverflow(by: 10)
                        let (sum, o2) = times10.addingReportingOverflow(Int(byte - UInt8(ascii: "0")))
                        overflow = o1 || o2
                        length = sum
                    }
                }
                if overflow { length = Int.max }
                if let previous = result, previous != length { throw .conflictingContentLength }
                result = length
            }
        }
        guard let result else { throw .invalidContentLength }
        return result
    }
}

@inline(__always)
func hexValue(_ byte: UInt8) -> UInt8? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
    default: return nil
    }
}
