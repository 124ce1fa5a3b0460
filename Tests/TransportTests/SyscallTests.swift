@testable import Transport
import Glibc
import XCTest

/// The syscall layer reports what would otherwise hide a descriptor bug.
final class SyscallTests: XCTestCase {
    /// A descriptor at a number the kernel would hand out last: it allocates the lowest free
    /// number, so no other thread of the test process gets this one between our two closes
    /// (a double close of a low number could close a descriptor libdispatch just opened).
    private func descriptorNobodyElseGets() throws -> Int32 {
        var limit = rlimit()
        XCTAssertEqual(getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit), 0)
        let high = Int32(clamping: min(limit.rlim_cur, 4096)) - 1
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&fds), 0)
        defer { for fd in fds { _ = Glibc.close(fd) } }
        guard dup2(fds[0], high) == high else { throw TestFailure("dup2 to \(high): errno \(errno)") }
        return high
    }

    func testClosingAnOpenDescriptorReportsNothing() throws {
        let fd = try descriptorNobodyElseGets()
        XCTAssertNil(Syscall.closeReportingError(fd))
    }

    func testClosingAnAlreadyClosedDescriptorReportsEBADF() throws {
        let fd = try descriptorNobodyElseGets()
        XCTAssertNil(Syscall.closeReportingError(fd))
        XCTAssertEqual(Syscall.closeReportingError(fd), EBADF, "a double close must not pass silently")
    }
}
