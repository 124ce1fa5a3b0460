@testable import GatewayCore
import XCTest

/// SPEC §4 `allowed_origins`, compared per RFC 6454, for the upgrade and the HTTP API alike.
final class OriginPolicyTests: XCTestCase {
    func testOriginsCompareWithSchemeAndHostCaseInsensitiveAndDefaultPortsDropped() {
        XCTAssertEqual(OriginPolicy.normalize("HTTPS://Ops.Example:443"), "https://ops.example")
        XCTAssertEqual(OriginPolicy.normalize("http://ops.example:80"), "http://ops.example")
        XCTAssertEqual(OriginPolicy.normalize("http://ops.example:8080"), "http://ops.example:8080")
        XCTAssertEqual(OriginPolicy.normalize("http://[::1]:8777"), "http://[::1]:8777")
        XCTAssertEqual(OriginPolicy.normalize("http://[::1]"), "http://[::1]")
        for bad in ["null", "", "ops.example", "https://", "https://a/b", "https://u@a", "https://a:99999", "https://a:x"] {
            XCTAssertNil(OriginPolicy.normalize(bad), bad)
        }
    }

    func testOnlyListedOriginsAndRequestsFromNoPageGoThrough() {
        let p = OriginPolicy(allowed: ["https://ops.example"])
        XCTAssertTrue(p.admits(origin: nil, fetchSite: nil), "a strategy, curl")
        XCTAssertTrue(p.admits(origin: "https://OPS.example:443", fetchSite: "cross-site"))
        XCTAssertFalse(p.admits(origin: "https://ops.example.evil", fetchSite: nil))
        XCTAssertFalse(p.admits(origin: "null", fetchSite: nil), "a sandboxed page or a file")
        XCTAssertFalse(p.admits(origin: nil, fetchSite: "cross-site"), "an <img src> GET from another site")
        XCTAssertFalse(p.admits(origin: nil, fetchSite: "same-site"))
        XCTAssertTrue(p.admits(origin: nil, fetchSite: "same-origin"))
        XCTAssertTrue(p.admits(origin: nil, fetchSite: "none"), "typed in the address bar")
        XCTAssertFalse(OriginPolicy(allowed: []).admits(origin: "http://localhost:3000", fetchSite: nil))
    }
}
