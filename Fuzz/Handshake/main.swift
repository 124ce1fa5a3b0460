// libFuzzer target: WebSocketHandshake.validateUpgradeRequest (Sources/WebSocket).
//
// Input: text lines (LF, an optional CR before it is dropped). The first line is the
// request line, `METHOD TARGET HTTP/1.x`: its first word is the method, and its last
// byte the minor version digit. Every other line is a header `name:value`, split at the
// first colon, names and values taken as they are (no HTTP parser in between, so
// anything may reach the validator). Properties:
// - a request it accepts is a GET, at least HTTP/1.1, with one Sec-WebSocket-Key that
//   is canonical base64 of 16 bytes, and the answer is base64(SHA-1(key + GUID))
//   (RFC 6455 §4.2.2), which the client side accepts in turn (§4.1);
// - the verdict does not depend on the order of the fields nor on the ASCII case of
//   their names (RFC 9110 §5.1).

typealias Header = (name: String, value: String)

func decode(_ bytes: [UInt8]) -> (method: String, versionMinor: Int, headers: [Header]) {
    var lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map { line in
        line.last == UInt8(ascii: "\r") ? line.dropLast() : line
    }
    let requestLine = lines.isEmpty ? [] : lines.removeFirst()
    let method = String(decoding: requestLine.prefix { $0 != UInt8(ascii: " ") }, as: UTF8.self)
    let versionMinor = requestLine.last.map { Int($0) - Int(UInt8(ascii: "0")) } ?? 1
    let headers: [Header] = lines.filter { !$0.isEmpty }.map { line in
        let colon = line.firstIndex(of: UInt8(ascii: ":")) ?? line.endIndex
        let value = colon < line.endIndex ? line[(colon + 1)...] : []
        return (String(decoding: line[..<colon], as: UTF8.self), String(decoding: value, as: UTF8.self))
    }
    return (method, versionMinor, headers)
}

/// Flips the case of ASCII letters only: Unicode case mapping could turn a non-ASCII name
/// into an ASCII one ("ſ" uppercases to "S"), which no HTTP peer would do.
func flipASCIICase(_ name: String) -> String {
    String(decoding: name.utf8.map { b in
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"): return b ^ 0x20
        default: return b
        }
    }, as: UTF8.self)
}

func asciiLowercased(_ name: String) -> String {
    String(decoding: name.utf8.map { (0x41...0x5A).contains($0) ? $0 | 0x20 : $0 }, as: UTF8.self)
}

func trimmed(_ s: String) -> Substring {
    var s = s[...]
    while let c = s.first, c == " " || c == "\t" { s = s.dropFirst() }
    while let c = s.last, c == " " || c == "\t" { s = s.dropLast() }
    return s
}

func describe(_ result: Result<String, WebSocketHandshakeError>) -> String {
    switch result {
    case .success(let accept): return "accept \(accept)"
    case .failure(let error): return "\(error)"
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let (method, versionMinor, headers) = decode(Array(UnsafeBufferPointer(start: data, count: size)))
    let result = WebSocketHandshake.validateUpgradeRequest(method: method, versionMinor: versionMinor, headers: headers)

    let reversed = WebSocketHandshake.validateUpgradeRequest(
        method: method, versionMinor: versionMinor, headers: headers.reversed())
    check(describe(reversed) == describe(result), "fields reversed: \(describe(reversed)), in order: \(describe(result))")
    let recased = WebSocketHandshake.validateUpgradeRequest(
        method: method, versionMinor: versionMinor, headers: headers.map { (flipASCIICase($0.name), $0.value) })
    check(describe(recased) == describe(result), "names recased: \(describe(recased)), as sent: \(describe(result))")

    if case .success(let accept) = result {
        check(method == "GET" && versionMinor >= 1, "accepted \(method) HTTP/1.\(versionMinor)")
        let keys = headers.filter { asciiLowercased($0.name) == "sec-websocket-key" }
        check(keys.count == 1, "accepted with \(keys.count) keys")
        let key = String(trimmed(keys[0].value))
        guard let nonce = Base64.decode(key) else {
            check(false, "accepted key \(key) is not base64")
            return 0
        }
        check(nonce.count == 16, "accepted a \(nonce.count)-byte nonce")
        check(Base64.encode(nonce) == key, "accepted non-canonical base64 \(key)")
        check(accept == Base64.encode(SHA1.hash((key + WebSocketHandshake.guid).utf8)), "accept \(accept) for \(key)")
        let answer = WebSocketHandshake.validateServerResponse(
            status: 101, headers: WebSocketHandshake.serverResponseHeaders(accept: accept), key: key)
        if case .failure(let error) = answer { check(false, "our own 101 refused by our client: \(error)") }
    }
    return 0
}
