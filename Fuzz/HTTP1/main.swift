// libFuzzer target: HTTPRequestParser (Sources/HTTP1).
//
// The input is the byte stream a client sends. It is parsed in one read, one byte per
// read and in random reads, with the default limits and with tiny ones. Properties:
// - the requests and the error are the same whatever the reads (RFC 9112 has no notion
//   of read boundaries; picohttpparser is tested the same way at every truncation point);
// - every request respects the limits and the grammar the parser promises: a tchar
//   method, a VCHAR target, one Host in HTTP/1.1, a body within maxBodyBytes;
// - after an error the parser keeps throwing the same error.

/// What a parser made of a stream: the requests, then the error or the bytes left over.
struct Outcome: Equatable {
    var requests: [HTTPRequest] = []
    var error: HTTPParseError?
    var leftover = 0
}

func parse(_ chunks: [ArraySlice<UInt8>], limits: HTTPParserLimits) -> Outcome {
    var parser = HTTPRequestParser(limits: limits)
    var outcome = Outcome()
    reads: for chunk in chunks {
        parser.feed(chunk)
        while true {
            do {
                guard let request = try parser.next() else { break }
                outcome.requests.append(request)
            } catch {
                outcome.error = error
                // Errors are terminal: the same error again, whatever comes next.
                parser.feed([UInt8]("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
                do {
                    _ = try parser.next()
                    check(false, "no error after \(error)")
                } catch let again {
                    check(again == error, "error \(error) became \(again)")
                }
                break reads
            }
        }
    }
    if outcome.error == nil { outcome.leftover = parser.bufferedByteCount }
    return outcome
}

func isTokenByte(_ b: UInt8) -> Bool {
    // RFC 9110 §5.6.2: tchar
    switch b {
    case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"):
        return true
    default:
        return Array("!#$%&'*+-.^_`|~".utf8).contains(b)
    }
}

func checkRequest(_ request: HTTPRequest, limits: HTTPParserLimits) {
    let method = Array(request.method.utf8)
    check(!method.isEmpty && method.allSatisfy(isTokenByte), "method \(method)")
    let target = Array(request.target.utf8)
    check(!target.isEmpty && target.count <= limits.maxRequestLineBytes, "target length \(target.count)")
    check(target.allSatisfy { $0 > 0x20 && $0 < 0x7F }, "target bytes \(target)")
    check(request.versionMajor == 1 && (0...1).contains(request.versionMinor), "version \(request.versionMinor)")
    check(request.headers.count <= limits.maxHeaderCount, "\(request.headers.count) headers")
    check(request.body.count <= limits.maxBodyBytes, "body of \(request.body.count) bytes")
    let hosts = request.headers.values("Host").count
    check(hosts <= 1 && (hosts == 1 || request.versionMinor == 0), "\(hosts) Host fields")
    check(request.path.isEmpty == false, "empty path")
    if let query = request.query {
        check(request.target.contains("?" + query) || request.target.hasSuffix("?"), "query \(query) not in target")
    }
    for (name, value) in request.headers {
        check(!name.isEmpty && name.utf8.allSatisfy(isTokenByte), "header name \(Array(name.utf8))")
        check(!value.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A || $0 == 0 }), "header value \(Array(value.utf8))")
    }
    _ = request.keepAlive
}

let tinyLimits = HTTPParserLimits(
    maxRequestLineBytes: 48, maxHeaderBytes: 160, maxHeaderCount: 4, maxBodyBytes: 40, maxChunkLineBytes: 12)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    for limits in [HTTPParserLimits(), tinyLimits] {
        let reference = parse([bytes[...]], limits: limits)
        for request in reference.requests { checkRequest(request, limits: limits) }
        for chunking in Chunking.allCases where chunking != .whole {
            guard let chunks = chunking.chunks(of: bytes) else { continue }
            let outcome = parse(chunks, limits: limits)
            check(outcome == reference, "\(chunking) reads: \(outcome) differs from one read: \(reference)")
        }
    }
    return 0
}
