import XCTest
@testable import JSONRPC

final class SpliceTests: XCTestCase {
    func testReplacing() {
        let b = bytes("abcdef")
        XCTAssertEqual(JSONRPCSplice.replacing(2..<4, in: b, with: bytes("XYZ")), bytes("abXYZef"))
        XCTAssertEqual(JSONRPCSplice.replacing(0..<0, in: b, with: bytes("<")), bytes("<abcdef"))
        XCTAssertEqual(JSONRPCSplice.replacing(6..<6, in: b, with: bytes(">")), bytes("abcdef>"))
        XCTAssertEqual(JSONRPCSplice.replacing(0..<6, in: b, with: [UInt8]()), [])
    }

    func testDecimalBytes() {
        XCTAssertEqual(JSONRPCSplice.decimalBytes(0), bytes("0"))
        XCTAssertEqual(JSONRPCSplice.decimalBytes(UInt64.max), bytes("18446744073709551615"))
        var p: UInt64 = 1
        for _ in 0..<19 {
            for v in [p - 1, p, p + 1, p * 9] {
                XCTAssertEqual(JSONRPCSplice.decimalBytes(v), bytes(String(v)), "\(v)")
            }
            p *= 10
        }
        var out = bytes("x")
        JSONRPCSplice.appendDecimal(907, to: &out)
        XCTAssertEqual(out, bytes("x907"))
    }

    /// The whole routing round trip (SPEC §1): client id → upstream id → response with the
    /// client's original id bytes restored exactly.
    func testRoundTripRestoresOriginalIDBytes() throws {
        let ids = ["42", "0", "-7", "18446744073709551615", "1e3", "1.50", #""abc""#, #""a\"b\\c""#,
                   #""\u00e9\ud83d\ude00""#, #""é😀""#, "null", #""""#]
        for (n, id) in ids.enumerated() {
            let request = bytes(#"{"jsonrpc":"2.0","id":"# + id + #","method":"public/get_time","params":{}}"#)
            let scan = try JSONRPCScanner.scan(request)
            let originalID = Array(request[scan.id!])
            let upstreamID = UInt64(1000 + n)

            let forwarded = forwarded(request, scan, id: upstreamID)
            let f = try JSONRPCScanner.scan(forwarded)
            XCTAssertEqual(JSONScalar.uint64(forwarded, f.id!), upstreamID)
            XCTAssertTrue(JSONRPCScanner.methodEquals(forwarded, f, "public/get_time"))

            let response = bytes(#"{"jsonrpc":"2.0","id":"# + String(upstreamID) + #","result":1700000000000,"usIn":1,"usOut":2,"usDiff":1,"testnet":false}"#)
            let r = try JSONRPCScanner.scan(response)
            let toClient = JSONRPCSplice.replacing(r.id!, in: response, with: originalID)
            XCTAssertEqual(toClient, bytes(#"{"jsonrpc":"2.0","id":"# + id + #","result":1700000000000,"usIn":1,"usOut":2,"usDiff":1,"testnet":false}"#))
            XCTAssertEqual(text(toClient, try JSONRPCScanner.scan(toClient).id), id)
        }
    }

    func testReplacingIDWithoutIDInsertsOne() throws {
        let cases = [
            (#"{"method":"public/test"}"#, #"{"id":5,"method":"public/test"}"#),
            (" { \"method\":\"public/test\" }", " {\"id\":5, \"method\":\"public/test\" }"),
            ("{}", #"{"id":5}"#),
            ("{ }", #"{"id":5 }"#),
        ]
        for (input, expected) in cases {
            let b = bytes(input)
            let out = forwarded(b, try JSONRPCScanner.scan(b), id: 5)
            XCTAssertEqual(String(decoding: out, as: UTF8.self), expected)
            XCTAssertEqual(text(out, try JSONRPCScanner.scan(out).id), "5")
        }
    }

    /// `access_token` at every member position, with and without whitespace around it.
    func testRemovingAccessTokenAtEveryPosition() throws {
        let cases: [(String, String)] = [
            (#"{"access_token":"t"}"#, "{}"),
            (#"{ "access_token" : "t" }"#, "{  }"),
            (#"{"access_token":"t","a":1}"#, #"{"a":1}"#),
            (#"{ "access_token":"t" , "a":1 }"#, #"{ "a":1 }"#),
            (#"{"a":1,"access_token":"t"}"#, #"{"a":1}"#),
            (#"{"a":1 , "access_token":"t" }"#, #"{"a":1 }"#),
            (#"{"a":1,"access_token":"t","b":[2]}"#, #"{"a":1,"b":[2]}"#),
            (#"{"a":1, "access_token":{"nested":["x"]}, "b":2}"#, #"{"a":1, "b":2}"#),
            (#"{"a":1,"b":2,"access_token":null,"c":3,"d":4}"#, #"{"a":1,"b":2,"c":3,"d":4}"#),
        ]
        for (params, expectedParams) in cases {
            let message = bytes(#"{"jsonrpc":"2.0","id":3,"method":"private/get_positions","params":"# + params + "}")
            let scan = try JSONRPCScanner.scan(message)
            XCTAssertNotNil(scan.accessToken, params)
            XCTAssertTrue(text(message, scan.accessToken)!.hasPrefix(#""access_token""#))
            let out = JSONRPCSplice.replacing(try XCTUnwrap(scan.accessTokenRemoval, params), in: message, with: [])
            let rescanned = try JSONRPCScanner.scan(out)
            XCTAssertNil(rescanned.accessToken)
            XCTAssertEqual(text(out, rescanned.params), expectedParams, params)
            XCTAssertEqual(text(out, rescanned.id), "3")

            // One pass for both edits gives the same bytes as two.
            let both = forwarded(message, scan, id: 99, removingAccessToken: true)
            let twoSteps = try { () throws -> [UInt8] in
                let once = JSONRPCSplice.replacing(scan.accessTokenRemoval!, in: message, with: [])
                return forwarded(once, try JSONRPCScanner.scan(once), id: 99)
            }()
            XCTAssertEqual(both, twoSteps, params)
        }
    }

    func testCombinedEditWhenIDFollowsParamsOrIsMissing() throws {
        let cases = [
            (#"{"params":{"access_token":"t","x":1},"method":"private/buy","id":"abc"}"#,
             #"{"params":{"x":1},"method":"private/buy","id":12}"#),
            (#"{"method":"private/buy","params":{"x":1,"access_token":"t"}}"#,
             #"{"id":12,"method":"private/buy","params":{"x":1}}"#),
            (#"{"id":1,"method":"private/buy","params":{"x":1}}"#,
             #"{"id":12,"method":"private/buy","params":{"x":1}}"#),
        ]
        for (input, expected) in cases {
            let b = bytes(input)
            let out = forwarded(b, try JSONRPCScanner.scan(b), id: 12, removingAccessToken: true)
            XCTAssertEqual(String(decoding: out, as: UTF8.self), expected)
            XCTAssertNoThrow(try JSONRPCScanner.scan(out))
        }
    }

    /// The relay's reused buffer: old contents never leak into the next splice, and bytes
    /// handed on from it keep their value.
    func testSplicingIntoAReusedBuffer() throws {
        var buffer = bytes(String(repeating: "x", count: 200))
        let request = bytes(#"{"id":"a","method":"private/buy","params":{"access_token":"t","x":1}}"#)
        let scan = try JSONRPCScanner.scan(request)
        JSONRPCSplice.replacingID(in: request, scan: scan, with: 7, into: &buffer)
        XCTAssertEqual(String(decoding: buffer, as: UTF8.self), #"{"id":7,"method":"private/buy","params":{"access_token":"t","x":1}}"#)
        let handedOn = buffer
        JSONRPCSplice.replacingID(in: request, scan: scan, with: 123, removingAccessToken: true, into: &buffer)
        XCTAssertEqual(String(decoding: buffer, as: UTF8.self), #"{"id":123,"method":"private/buy","params":{"x":1}}"#)
        XCTAssertEqual(String(decoding: handedOn, as: UTF8.self), #"{"id":7,"method":"private/buy","params":{"access_token":"t","x":1}}"#)
        let response = bytes(#"{"id":123,"result":1}"#)
        JSONRPCSplice.replacing(try JSONRPCScanner.scan(response).id!, in: response, with: bytes(#""a""#), into: &buffer)
        XCTAssertEqual(String(decoding: buffer, as: UTF8.self), #"{"id":"a","result":1}"#)
    }

    func testRemovingWithoutTokenIsIdentity() throws {
        let b = bytes(#"{"id":1,"method":"public/test","params":{"x":{"access_token":"nested"}}}"#)
        // Only a top-level member of params is the client's token: nothing to remove here.
        XCTAssertNil(try JSONRPCScanner.scan(b).accessTokenRemoval)
    }

    /// What the relay forwards: `bytes` with the upstream id (and without the token when asked).
    private func forwarded(_ bytes: [UInt8], _ scan: JSONRPCScan, id: UInt64, removingAccessToken: Bool = false) -> [UInt8] {
        var out: [UInt8] = []
        JSONRPCSplice.replacingID(in: bytes, scan: scan, with: id, removingAccessToken: removingAccessToken, into: &out)
        return out
    }
}
