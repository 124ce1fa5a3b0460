import Foundation
import TestSupport
import Transport
import XCTest

/// What a client chooses to send never breaks the gateway's own output: error `data`, log lines.
final class HardeningTests: XCTestCase {
    /// The -32002 `data` names the method: written by the JSON writer, a quote or a newline in
    /// the name neither breaks the JSON nor adds members to it.
    func testAMethodNameInAnErrorsDataCannotBreakOrExtendIt() throws {
        let f = try SessionFixture(self)
        defer { f.stop() }
        let b = try f.client("B")
        let method = "private/withdraw\",\"injected\":\"yes\n"
        let raw = try b.response(idJSON: "\(try b.send(method))")
        let obj = try RPCClient.decode(raw)  // valid JSON, or this throws
        let error = try XCTUnwrap(obj["error"] as? [String: Any], "\(obj)")
        XCTAssertEqual(error["code"] as? Int, -32002)
        let data = try XCTUnwrap(error["data"] as? [String: Any])
        XCTAssertEqual(Set(data.keys), ["reason"], "no member injected")
        XCTAssertEqual(data["reason"] as? String, "scope trade does not allow \(method)")
    }

    /// A newline in `public/hello`'s client_name cannot forge a log line.
    func testClientTextInALogLineIsEscaped() throws {
        let f = try SessionFixture(self)
        defer { f.stop() }
        let c = try f.client("B")
        let forged = "evil\n2026-12-02T00:00:00+0000 critical deribit-gateway: FORGED"
        XCTAssertNotNil(try c.call("public/hello", ["client_name": forged, "client_version": "1\r\n2"])["result"])
        try pollUntil("the hello in the log") { f.gatewayLog.contains("client hello") }
        let lines = f.gatewayLog.split(separator: "\n")
        XCTAssertFalse(lines.contains { $0.hasPrefix("2026-12-02T00:00:00") }, "a forged line")
        XCTAssertTrue(lines.contains { $0.contains("client hello") && $0.contains(#"client_name="evil\u000a2026"#) }, f.gatewayLog)
    }
}
