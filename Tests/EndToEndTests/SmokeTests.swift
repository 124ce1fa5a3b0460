import Foundation
import Transport
import XCTest

/// The gateway between the simulator and a client, end to end, as a user first tries it.
final class SmokeTests: XCTestCase {
    func testGatewayForwardsAndAnswersLocally() throws {
        let (_, gw) = try startGateway()
        let loop = makeLoop(.dispatch)
        let client = try RPCClient(url: gw.wsURL, loop: loop)
        let id = try client.send("public/get_time", id: "t-1")
        XCTAssertEqual(id, #""t-1""#)
        let raw = try client.response(idJSON: id)
        let obj = try RPCClient.decode(raw)
        XCTAssertEqual(obj["id"] as? String, "t-1")
        XCTAssertNotNil(obj["result"] as? Int)
        let test = try client.call("public/test")
        XCTAssertNotNil((test["result"] as? [String: Any])?["version"])
    }
}
