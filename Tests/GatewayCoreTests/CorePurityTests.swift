import XCTest

/// The core's rule, checked on its sources: no Transport, no Dispatch, no Glibc, no Foundation,
/// and no clock read anywhere: time is a parameter (`now`).
final class CorePurityTests: XCTestCase {
    func testTheCoreImportsNoIOAndReadsNoClock() throws {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../Sources/GatewayCore").standardizedFileURL
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".swift") }
        XCTAssertGreaterThan(files.count, 10, dir.path)
        let forbidden = ["import Transport", "import Dispatch", "import Glibc", "import Foundation", "clock_gettime",
                         "Date()", "DispatchTime", "ContinuousClock", "SuspendingClock", "gettimeofday"]
        for file in files {
            let text = try String(contentsOf: dir.appendingPathComponent(file), encoding: .utf8)
            for word in forbidden {
                XCTAssertFalse(text.contains(word), "\(file) uses \(word)")
            }
        }
    }
}
