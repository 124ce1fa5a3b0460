// libFuzzer target: JSONRPCScanner.scan and JSONRPCSplice.replacingID (Sources/JSONRPC).
//
// Input: a message as a client (or Deribit) sends it. When the scan succeeds, the id is
// replaced by a gateway id, with and without removing params.access_token (SPEC §6.3).
// Properties:
// - a message the scanner accepts is JSON for Foundation's JSONSerialization too
//   (RFC 8259), unless it is one Foundation cannot represent (see `foundationLimit`);
// - the splice is the input with exactly the id span replaced by the new id (or
//   `"id":N,` inserted first when there was none) and exactly the access_token removal
//   span deleted: every other byte is kept, in order;
// - the removal span is the access_token member plus whitespace and at most one comma;
// - the output scans again (our scanner) with the new id and no access_token, the same
//   method, and parses with JSONSerialization to the same object but for id and token.

import Foundation

func decimal(_ value: UInt64) -> [UInt8] { Array(String(value).utf8) }

func isWhitespace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 }

/// The splice, written independently: the edits the contract allows, applied in order.
func expectedSplice(_ bytes: [UInt8], _ scan: JSONRPCScan, newID: UInt64, removingAccessToken: Bool) -> [UInt8] {
    var edits: [(range: Range<Int>, with: [UInt8])] = []
    if let id = scan.id {
        edits.append((id, decimal(newID)))
    } else {
        var j = scan.objectStart + 1
        while j < bytes.count, isWhitespace(bytes[j]) { j += 1 }
        let isEmpty = j < bytes.count && bytes[j] == UInt8(ascii: "}")
        let at = scan.objectStart + 1
        edits.append((at..<at, Array(#""id":"#.utf8) + decimal(newID) + (isEmpty ? [] : [UInt8(ascii: ",")])))
    }
    if removingAccessToken, let removal = scan.accessTokenRemoval { edits.append((removal, [])) }
    edits.sort { $0.range.lowerBound < $1.range.lowerBound }
    var out: [UInt8] = []
    var copied = 0
    for edit in edits {
        check(edit.range.lowerBound >= copied, "overlapping spans \(edits.map(\.range))")
        out += bytes[copied..<edit.range.lowerBound]
        out += edit.with
        copied = edit.range.upperBound
    }
    out += bytes[copied...]
    return out
}

func foundationObject(_ bytes: [UInt8]) -> [String: Any]? {
    (try? JSONSerialization.jsonObject(with: Data(bytes), options: [])) as? [String: Any]
}

/// Whether Foundation may refuse valid JSON for its own reasons: it refuses numbers a
/// Double cannot hold (RFC 8259 §6 lets an implementation set such limits) and strings
/// with unpaired surrogate escapes (§8.2: "the behavior ... is unpredictable").
func foundationLimit(_ bytes: [UInt8]) -> Bool {
    var i = 0
    var inString = false
    while i < bytes.count {
        let b = bytes[i]
        if inString {
            if b == UInt8(ascii: "\\") {
                if i + 5 < bytes.count, bytes[i + 1] == UInt8(ascii: "u"),
                   let unit = UInt16(String(decoding: bytes[(i + 2)..<(i + 6)], as: UTF8.self), radix: 16),
                   (0xD800...0xDFFF).contains(unit) {
                    return true
                }
                i += 2
                continue
            }
            if b == UInt8(ascii: "\"") { inString = false }
            i += 1
        } else if b == UInt8(ascii: "\"") {
            inString = true
            i += 1
        } else if b == UInt8(ascii: "-") || (0x30...0x39).contains(b) {
            var j = i
            while j < bytes.count, Array("0123456789+-.eE".utf8).contains(bytes[j]) { j += 1 }
            if Double(String(decoding: bytes[i..<j], as: UTF8.self))?.isFinite != true { return true }
            i = j
        } else {
            i += 1
        }
    }
    return false
}

func checkSplice(_ bytes: [UInt8], _ scan: JSONRPCScan, newID: UInt64, removingAccessToken: Bool) {
    var out: [UInt8] = [0xFF, 0xFE]  // junk the splice must clear first
    JSONRPCSplice.replacingID(in: bytes, scan: scan, with: newID, removingAccessToken: removingAccessToken, into: &out)
    let expected = expectedSplice(bytes, scan, newID: newID, removingAccessToken: removingAccessToken)
    check(out == expected, "splice \(String(decoding: out, as: UTF8.self)) expected \(String(decoding: expected, as: UTF8.self))")

    let again: JSONRPCScan
    do {
        again = try JSONRPCScanner.scan(out)
    } catch {
        check(false, "splice output refused by the scanner (\(error)): \(String(decoding: out, as: UTF8.self))")
        return
    }
    check(again.id.flatMap { JSONScalar.uint64(out, $0) } == newID, "spliced id is not \(newID)")
    if !scan.hasDuplicateKeys {
        check(!again.hasDuplicateKeys, "splice made a duplicate key")
        if removingAccessToken {
            check(again.accessToken == nil, "access_token kept: \(String(decoding: out, as: UTF8.self))")
        } else {
            check(again.accessToken.map { Array(out[$0]) } == scan.accessToken.map { Array(bytes[$0]) }, "access_token changed")
        }
    }
    check(again.method.map { Array(out[$0]) } == scan.method.map { Array(bytes[$0]) }, "method changed")
    check(again.channel.map { Array(out[$0]) } == scan.channel.map { Array(bytes[$0]) }, "channel changed")

    guard let original = foundationObject(bytes) else { return }  // not UTF-8, or beyond its limits
    guard var spliced = foundationObject(out) else {
        check(false, "splice output refused by JSONSerialization: \(String(decoding: out, as: UTF8.self))")
        return
    }
    guard !scan.hasDuplicateKeys else { return }  // Foundation lets the last duplicate win
    var expectedObject = original
    expectedObject["id"] = nil
    spliced["id"] = nil
    if removingAccessToken, scan.accessToken != nil, var params = expectedObject["params"] as? [String: Any] {
        params["access_token"] = nil
        expectedObject["params"] = params
    }
    // Compared as canonical JSON: NSDictionary equality of nested `Any` is unreliable on Linux.
    let canonical = { (object: [String: Any]) in try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) }
    let (got, want) = (canonical(spliced), canonical(expectedObject))
    check(got != nil && got == want, "splice changed the message: \(spliced) vs \(expectedObject)")
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let scan: JSONRPCScan
    do {
        scan = try JSONRPCScanner.scan(bytes)
    } catch {
        // The raw-buffer entry point must agree.
        let raw = bytes.withUnsafeBytes { buffer in Result { () throws(JSONRPCScanError) in try JSONRPCScanner.scan(buffer) } }
        if case .success = raw { check(false, "raw-buffer scan accepted what the array scan refused (\(error))") }
        return 0
    }
    // The gateway scans only text the WebSocket layer has validated as UTF-8 (RFC 6455
    // §8.1); the scanner does not validate it again, so other input is not compared.
    let isUTF8 = String(validating: bytes, as: UTF8.self) != nil
    check(!isUTF8 || foundationObject(bytes) != nil || foundationLimit(bytes),
          "scanner accepted what JSONSerialization refuses: \(String(decoding: bytes, as: UTF8.self))")

    // The spans lie inside the input and start where their values do.
    for span in [scan.id, scan.params, scan.result, scan.error, scan.jsonrpc, scan.accessToken, scan.accessTokenRemoval] {
        if let span { check(span.lowerBound > scan.objectStart && span.upperBound <= bytes.count, "span \(span)") }
    }
    if let removal = scan.accessTokenRemoval {
        guard let token = scan.accessToken, removal.lowerBound <= token.lowerBound, token.upperBound <= removal.upperBound else {
            check(false, "removal \(removal) does not cover access_token \(String(describing: scan.accessToken))")
            return 0
        }
        let rest = bytes[removal.lowerBound..<token.lowerBound] + bytes[token.upperBound..<removal.upperBound]
        check(rest.allSatisfy { isWhitespace($0) || $0 == UInt8(ascii: ",") } && rest.filter { $0 == UInt8(ascii: ",") }.count <= 1,
              "removal takes more than the member and a comma: \(String(decoding: rest, as: UTF8.self))")
        check(bytes[token.lowerBound] == UInt8(ascii: "\""), "access_token span does not start at its key")
    }

    var rng = SplitMix64(seed: fnv1a(bytes))
    let ids: [UInt64] = [0, 7, UInt64.max, rng.next()]
    for removing in [false, true] {
        checkSplice(bytes, scan, newID: ids[rng.next(below: ids.count)], removingAccessToken: removing)
    }
    return 0
}
