import Foundation
import XCTest
@testable import JSONRPC

final class ScannerMalformedTests: XCTestCase {
    static let validMessages = [
        #"{"jsonrpc":"2.0","id":42,"method":"public/get_time","params":{}}"#,
        #"{"jsonrpc":"2.0","id":"a\"\\\u00e9\ud83d\ude00","method":"private/buy","params":{"access_token":"tok","instrument_name":"BTC-PERPETUAL","amount":-1.5e+2,"post_only":true,"label":null,"x":[false,{}]}}"#,
        #"{"jsonrpc":"2.0","method":"subscription","params":{"channel":"book.BTC-PERPETUAL.100ms","data":{"type":"change","bids":[["new",100.5,10]],"asks":[],"change_id":18446744073709551615}}}"#,
        #"{"jsonrpc":"2.0","id":7,"error":{"code":-32602,"message":"Invalid params","data":{"param":"interval"}},"usIn":1e3}"#,
        " { \"id\" : 0 , \"result\" : [ 1 , 2 ] } ",
    ]

    func testEmptyAndWhitespace() {
        XCTAssertEqual(scanError(""), .notJSON)
        XCTAssertEqual(scanError(" \r\n\t"), .notJSON)
        XCTAssertEqual(scanError([UInt8]()), .notJSON)
    }

    /// picohttpparser habit: every truncation point of a valid message is an error, never
    /// a crash or a read past the end (the slice is copied so that ASan-free runs still
    /// see a buffer ending exactly there).
    func testTruncatedAtEveryByte() {
        for message in Self.validMessages {
            let b = bytes(message)
            XCTAssertNoThrow(try JSONRPCScanner.scan(b), message)
            let trimmedEnd = b.lastIndex { $0 != 0x20 }! + 1
            for n in 0..<trimmedEnd {
                let prefix = Array(b[0..<n])
                XCTAssertEqual(scanError(prefix), .notJSON, "prefix \(n) of \(message)")
                // The same prefix inside a larger buffer must not be read past its end.
                let padded = prefix + bytes("}}}}\"]]")
                let inner: JSONRPCScanError? = padded.withUnsafeBytes { buffer -> JSONRPCScanError? in
                    do {
                        _ = try JSONRPCScanner.scan(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
                        return nil
                    } catch {
                        return error as? JSONRPCScanError
                    }
                }
                XCTAssertEqual(inner, .notJSON, "prefix \(n) inside a larger buffer")
            }
        }
    }

    func testTopLevelNotAnObject() {
        for s in ["[]", "[1,2]", #"[{"id":1,"method":"a"}]"#, "1", "-0.5", #""str""#, "true", "false", "null", " [ ] "] {
            XCTAssertEqual(scanError(s), .notAnObject, s)
            XCTAssertEqual(scanError(s)?.jsonRPCCode, -32600)
        }
        for s in ["[1,]", "[", "]", "tru", "nul", "01", "1 2", "[] []", #""abc"#, "+1", "x"] {
            XCTAssertEqual(scanError(s), .notJSON, s)
            XCTAssertEqual(scanError(s)?.jsonRPCCode, -32700)
        }
    }

    func testBadStrings() {
        let bad = [
            #"{"id":"\x"}"#, #"{"id":"\u12G4"}"#, #"{"id":"\u12"}"#, #"{"id":"\u"}"#, #"{"id":"\"}"#,
            #"{"id":"\'"}"#, #"{"id":"\U0041"}"#, "{\"id\":\"a\nb\"}", "{\"id\":\"a\u{0}b\"}",
            "{\"id\":\"a\u{1F}b\"}", "{\"id\":\"tab\there\"}", #"{'id':1}"#, #"{id:1}"#,
            "{\"k\u{0}\":1}", #"{"a":"unterminated}"#,
        ]
        for s in bad { XCTAssertEqual(scanError(s), .notJSON, s) }
        // DEL and non-ASCII need no escape.
        XCTAssertNil(scanError("{\"id\":\"a\u{7F}b\u{E9}\"}"))
    }

    /// Lone surrogate escapes pass the scanner, as the RFC 8259 grammar allows and as most
    /// parsers do; `JSONStringDecoder` refuses to decode them.
    func testLoneSurrogatesAreAccepted() {
        for s in [#"{"id":"\ud800"}"#, #"{"id":"\udc00x"}"#, #"{"id":"\ud83d\u0041"}"#] {
            let (b, scan) = scanOrFail(s)
            XCTAssertNotNil(scan.id)
            XCTAssertNil(JSONScalar.string(b, scan.id!), s)
        }
    }

    func testBadNumbers() {
        let bad = ["01", "-01", "00", "-", "1.", "1.e3", "1e", "1e+", "1E-", ".5", "+1", "-.5", "1.5.2",
                   "0x10", "NaN", "Infinity", "-Infinity", "1e1.5", "--1", "1-", "٣"]
        for n in bad {
            XCTAssertEqual(scanError(#"{"id":"# + n + "}"), .notJSON, n)
            XCTAssertEqual(scanError(#"{"params":{"x":["# + n + "]}}"), .notJSON, n)
        }
        for n in ["0", "-0", "0.0", "-0.0e-0", "1E+9", "10", "9007199254740993", "1e400"] {
            XCTAssertNil(scanError(#"{"id":"# + n + "}"), n)
        }
    }

    func testStructuralErrors() {
        let bad = [
            "{", "}", "{,}", #"{"id":1,}"#, #"{"params":{"a":1,}}"#, #"{"params":[1,]}"#, #"{"a":[1 2]}"#,
            #"{"a" 1}"#, #"{"a"::1}"#, #"{"a":}"#, #"{"a":1"b":2}"#, #"{"a":1,,"b":2}"#, #"{"a":[}"#,
            #"{"a":{]}"#, #"{"a":[1}"#, #"{"a":{"b":1]}"#, #"{1:2}"#, #"{"a":1}x"#, #"{"a":1}{}"#,
            #"{"a":1} 1"#, #"{"a":tru}"#, #"{"a":True}"#, #"{"a":nulll}"#, #"{"a":undefined}"#,
            "{\"a\":1}\u{0}", "\u{FEFF}{}", "{\"a\":1\u{0B}}", #"{"params":{"channel":}}"#,
            #"{"params":{"type"}}"#, #"{"method""#, #"{"method":"#,
        ]
        for s in bad { XCTAssertEqual(scanError(s), .notJSON, s) }
    }

    func testDepthBombIsRefusedWithoutRecursion() {
        let bomb = [UInt8](repeating: UInt8(ascii: "["), count: 100_000)
        XCTAssertEqual(scanError(bomb), .nestingTooDeep)
        XCTAssertEqual(scanError(bomb)?.jsonRPCCode, -32700)
        let objectBomb = bytes(String(repeating: #"{"a":"#, count: 100_000))
        XCTAssertEqual(scanError(objectBomb), .nestingTooDeep)
        let inParams = bytes(#"{"id":1,"params":"#) + bomb
        XCTAssertEqual(scanError(inParams), .nestingTooDeep)
        let inID = bytes(#"{"id":"#) + bomb
        XCTAssertEqual(scanError(inID), .nestingTooDeep)
        // Balanced but too deep is refused as well.
        let balanced = bytes(#"{"x":"#) + bomb + [UInt8](repeating: UInt8(ascii: "]"), count: 100_000) + bytes("}")
        XCTAssertEqual(scanError(balanced), .nestingTooDeep)
    }

    /// Single-byte mutations of valid messages: the scanner never crashes, and it agrees with
    /// Foundation's JSONSerialization except where that one departs from RFC 8259 or where
    /// this scanner chose to: JSONSerialization accepts trailing commas, refuses numbers
    /// that overflow a Double (`1e400`) and refuses lone surrogate escapes.
    func testMutationsAgreeWithJSONSerialization() {
        var rng = SplitMix64(state: 0x5EED)
        let alphabet = bytes(#"{}[]":,\ -+.eE0123456789tfnulrsa"#) + [0x09, 0x0A, 0x00, 0x1F]
        var accepted = 0
        var compared = 0
        for message in Self.validMessages {
            let original = bytes(message)
            for _ in 0..<2_000 {
                var m = original
                let position = Int.random(in: 0..<m.count, using: &rng)
                let mutation = alphabet.randomElement(using: &rng)!
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: m[position] = mutation
                case 1: m.remove(at: position)
                default: m.insert(mutation, at: position)
                }
                let ours = scanError(m)
                let theirs = (try? JSONSerialization.jsonObject(with: Data(m), options: [.fragmentsAllowed])) != nil
                let theirsIsObject = (try? JSONSerialization.jsonObject(with: Data(m), options: [])) is [String: Any]
                let s = String(decoding: m, as: UTF8.self)
                switch ours {
                case nil:
                    accepted += 1
                    let knownDeparture = s.range(of: #"\\u[dD][89a-fA-F]"#, options: .regularExpression) != nil
                        || mutation == UInt8(ascii: "e") || mutation == UInt8(ascii: "E")
                    if !knownDeparture {
                        compared += 1
                        XCTAssertTrue(theirsIsObject, "accepted by us only: \(s)")
                    }
                case .notAnObject:
                    XCTAssertTrue(theirs && !theirsIsObject, s)
                case .notJSON, .nestingTooDeep:
                    if s.range(of: #",[ \t\r\n]*[\]}]"#, options: .regularExpression) == nil {
                        compared += 1
                        XCTAssertFalse(theirs, "refused by us only: \(s)")
                    }
                }
            }
        }
        XCTAssertGreaterThan(accepted, 100, "the mutations should keep some messages valid")
        XCTAssertGreaterThan(compared, 5_000)
    }
}
