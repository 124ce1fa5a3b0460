import XCTest
final class TransportTestsPlaceholder: XCTestCase { func testNothing() {} }
