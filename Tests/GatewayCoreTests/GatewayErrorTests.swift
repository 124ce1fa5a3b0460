import Foundation
@testable import GatewayCore
import JSONRPC
import XCTest

/// STYLE habit 5: one error type, one mapping to the wire (SPEC §6.1–6.3, Deribit's own codes).
final class GatewayErrorTests: XCTestCase {
    func testCodeMessageAndDataOfEveryCase() {
        let cases: [(GatewayError, Int, String, String?)] = [
            (.malformed(.notJSON), -32700, "Parse error", nil),
            (.malformed(.nestingTooDeep), -32700, "Parse error", nil),
            (.malformed(.notAnObject), -32600, "Invalid Request", nil),
            (.invalidRequest, -32600, "Invalid Request", nil),
            (.requestTooLarge, -32600, "request entity too large", nil),
            (.methodNotFound, -32601, "Method not found", nil),
            (.invalidParams(param: "interval", reason: "must be >= 10"), -32602, "Invalid params",
             #"{"param":"interval","reason":"must be >= 10"}"#),
            (.forbidden(reason: "would change the identity of the shared upstream session"), -32002, "forbidden",
             #"{"reason":"would change the identity of the shared upstream session"}"#),
            (.unauthorized, 13009, "unauthorized", nil),
            (.invalidCredentials, 13004, "invalid_credentials", nil),
            (.tooManyRequests(reason: nil), 10028, "too_many_requests", nil),
            (.tooManyRequests(reason: "client rate limit"), 10028, "too_many_requests", #"{"reason":"client rate limit"}"#),
            (.tooManyPendingRequests, -32003, "too_many_pending_requests", nil),
            (.upstreamUnavailable, -32000, "upstream_unavailable", nil),
            (.upstreamTimeout, -32001, "upstream_timeout", nil),
            (.rawSubscriptionsNotAvailable, 13778, "raw_subscriptions_not_available_for_unauthorized", nil),
            (.webSocketOnly, 11050, "bad_request", #"{"reason":"only available over WebSocket"}"#),
        ]
        for (error, code, message, data) in cases {
            XCTAssertEqual(error.code, code, "\(error)")
            XCTAssertEqual(error.message, message, "\(error)")
            XCTAssertEqual(error.data?.text, data, "\(error)")
            XCTAssertEqual(error.logDescription, "\(code) \(message)")
        }
    }

    func testResponseBytesExactly() {
        XCTAssertEqual(text(GatewayError.upstreamUnavailable.response(id: Array("42".utf8))),
                       #"{"jsonrpc":"2.0","id":42,"error":{"code":-32000,"message":"upstream_unavailable"}}"#)
        XCTAssertEqual(text(GatewayError.invalidParams(param: "interval", reason: "must be >= 10").response(id: Array(#""hb-1""#.utf8))),
                       #"{"jsonrpc":"2.0","id":"hb-1","error":{"code":-32602,"message":"Invalid params","data":{"param":"interval","reason":"must be >= 10"}}}"#)
        XCTAssertEqual(text(GatewayError.malformed(.notJSON).response(id: JSONRPCWire.nullID)),
                       #"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}"#)
        XCTAssertEqual(text(GatewayError.unauthorized.response(id: Array("7".utf8))),
                       #"{"jsonrpc":"2.0","id":7,"error":{"code":13009,"message":"unauthorized"}}"#)
    }

    /// A reason may carry a client's text: it can never break the document or add members.
    func testDataIsValidJSONWhateverTheReasonHolds() throws {
        let nasty = "a \"quoted\" \\ back\\slash\nnew line\r\t tab \u{0} nul \u{1}\u{1F}\u{7F} end €, \"},\"injected\":true,{\""
        for error in [GatewayError.invalidParams(param: "p\"aram\n", reason: nasty), .forbidden(reason: nasty),
                      .tooManyRequests(reason: nasty)] {
            let data = try XCTUnwrap(error.data?.bytes)
            let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(data)) as? [String: Any], "\(text(data))")
            XCTAssertEqual(object["reason"] as? String, nasty)
            XCTAssertFalse(object.keys.contains("injected"))

            let response = error.response(id: Array("1".utf8))
            let parsed = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(response)) as? [String: Any])
            XCTAssertEqual(Set(parsed.keys), ["jsonrpc", "id", "error"])
            let err = try XCTUnwrap(parsed["error"] as? [String: Any])
            XCTAssertEqual(err["code"] as? Int, error.code)
            XCTAssertEqual((err["data"] as? [String: Any])?["reason"] as? String, nasty)
            XCTAssertNoThrow(try JSONRPCScanner.scan(response), "the gateway's own scanner agrees")
        }
        let params = try XCTUnwrap(GatewayError.invalidParams(param: "p\"aram\n", reason: "r").data?.bytes)
        XCTAssertEqual((try JSONSerialization.jsonObject(with: Data(params)) as? [String: Any])?["param"] as? String, "p\"aram\n")
    }
}
