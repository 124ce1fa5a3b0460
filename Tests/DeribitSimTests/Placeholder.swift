import XCTest
final class DeribitSimTestsPlaceholder: XCTestCase { func testNothing() {} }
