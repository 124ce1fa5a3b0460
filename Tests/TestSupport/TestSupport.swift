// Shared by the test targets (test targets cannot import each other).
import Dispatch
import Foundation
import Synchronization
import Transport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Every wait in these tests is bounded by this.
public let testDeadline: Double = 20

public struct TestFailure: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// A value set once from any thread, waited for with a deadline.
public final class Waiter<T: Sendable>: Sendable {
    public init() {}
    private let value = Mutex<T?>(nil)
    private let semaphore = DispatchSemaphore(value: 0)

    public func fulfil(_ v: T) {
        let first = value.withLock { slot -> Bool in
            guard slot == nil else { return false }
            slot = v
            return true
        }
        if first { semaphore.signal() }
    }

    public func wait(_ what: String, timeout: Double = testDeadline) throws -> T {
        guard semaphore.wait(timeout: .now() + timeout) == .success else {
            throw TestFailure("timed out after \(timeout) s waiting for \(what)")
        }
        semaphore.signal()  // later waits return at once
        return value.withLock { $0! }
    }

    public var isSet: Bool { value.withLock { $0 != nil } }
}

/// A thread-safe FIFO of events, popped with a deadline.
public final class Channel<T: Sendable>: Sendable {
    public init() {}
    private let items = Mutex<[T]>([])
    private let semaphore = DispatchSemaphore(value: 0)

    public func push(_ v: T) {
        items.withLock { $0.append(v) }
        semaphore.signal()
    }

    public func next(_ what: String, timeout: Double = testDeadline) throws -> T {
        guard semaphore.wait(timeout: .now() + timeout) == .success else {
            throw TestFailure("timed out after \(timeout) s waiting for \(what)")
        }
        return items.withLock { $0.removeFirst() }
    }

    public var count: Int { items.withLock { $0.count } }
}

/// A counter / flag shared with loop callbacks.
public final class Locked<T: Sendable>: Sendable {
    private let m: Mutex<T>
    public init(_ v: T) { m = Mutex(v) }
    public var value: T { m.withLock { $0 } }
    public func update<R: Sendable>(_ body: (inout T) -> R) -> R { m.withLock { body(&$0) } }
}

/// Runs `body` on `loop` and returns its result to the calling thread.
@discardableResult
public func onLoop<T: Sendable>(_ loop: EventLoop, _ body: @escaping @Sendable () throws -> T) throws -> T {
    let w = Waiter<Result<T, any Error>>()
    loop.execute { w.fulfil(Result { try body() }) }
    return try w.wait("work on the event loop").get()
}

/// Polls `condition` — for state no event announces (/sim/state, /health, /metrics) — until it
/// holds, with a deadline. `detail` is added to the failure message (e.g. the last value seen).
public func pollUntil(
    _ what: String, timeout: Double = testDeadline, every: useconds_t = 20_000,
    detail: () -> String = { "" }, _ condition: () throws -> Bool
) throws {
    let end = Date().addingTimeInterval(timeout)
    while true {
        if try condition() { return }
        guard Date() < end else {
            let d = detail()
            throw TestFailure("timed out after \(timeout) s waiting for \(what)\(d.isEmpty ? "" : "; \(d)")")
        }
        usleep(every)
    }
}

/// `pollUntil` for a value: calls `body` until it returns one, with the same deadline.
public func pollValue<T>(_ what: String, timeout: Double = testDeadline, _ body: () throws -> T?) throws -> T {
    var value: T?
    try pollUntil(what, timeout: timeout) {
        value = try body()
        return value != nil
    }
    return value!
}

/// Deterministic printable ASCII: byte count equals character count.
public func asciiPayload(_ count: Int, seed: Int = 0) -> [UInt8] {
    (0..<count).map { UInt8(0x21 + ($0 &* 31 &+ seed) % 94) }
}

/// An `EventLoop` of the given kind, shut down when the test ends.
extension XCTestCase {
    public func makeLoop(_ kind: EventLoopKind) -> EventLoop {
        let loop = EventLoop(kind: kind, label: "test.\(kind)")
        addTeardownBlock { loop.shutdown() }
        return loop
    }
}

// MARK: - the independent peer (Python `websockets`)

public enum Interop {
    /// The repository root, through the symlinks of a private mini-package if any.
    public static var repoRoot: URL {
        URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    public static var script: String { repoRoot.appendingPathComponent("Tests/Interop/ws_peer.py").path }

    /// `INTEROP_PYTHON`, else `<repo>/.venv/bin/python`; missing is a failure, never a skip.
    public static func python() throws -> String {
        if let p = ProcessInfo.processInfo.environment["INTEROP_PYTHON"], !p.isEmpty {
            guard FileManager.default.isExecutableFile(atPath: p) else {
                throw TestFailure("INTEROP_PYTHON=\(p) is not executable; run scripts/test.sh to create the interop virtualenv")
            }
            return p
        }
        let venv = repoRoot.appendingPathComponent(".venv/bin/python").path
        guard FileManager.default.isExecutableFile(atPath: venv) else {
            throw TestFailure("no Python for the interop tests (INTEROP_PYTHON unset, \(venv) missing): run scripts/test.sh, which creates the virtualenv with the `websockets` package")
        }
        return venv
    }
}

/// The executables of this package, where `swift build` put them (next to the test bundle on Linux).
public enum Products {
    public static var directory: URL {
        let bundle = Bundle.main.bundleURL
        return bundle.pathExtension == "xctest" ? bundle.deletingLastPathComponent() : bundle
    }

    public static func path(_ name: String) throws -> String {
        let p = directory.appendingPathComponent(name).path
        guard FileManager.default.isExecutableFile(atPath: p) else {
            throw TestFailure("\(p) not found: build the package first (swift build --build-tests)")
        }
        return p
    }
}

/// A child process that is always terminated (by pid) when the test ends.
public final class ChildProcess: @unchecked Sendable {
    public let process = Process()
    public let stdinPipe = Pipe()
    public let stdoutPipe = Pipe()
    public let stderrFile: URL
    private let exited = Waiter<Int32>()

    public init(_ executable: String, _ arguments: [String]) throws {
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardInput = stdinPipe
        process.standardOutput = stdoutPipe
        stderrFile = FileManager.default.temporaryDirectory.appendingPathComponent("ws_peer-\(UUID().uuidString).stderr")
        _ = FileManager.default.createFile(atPath: stderrFile.path, contents: nil)
        process.standardError = try FileHandle(forWritingTo: stderrFile)
        let exited = self.exited
        process.terminationHandler = { p in exited.fulfil(p.terminationStatus) }
        try process.run()
    }

    public var stderrText: String { (try? String(contentsOf: stderrFile, encoding: .utf8)) ?? "" }

    /// Reads stdout until a line starting with `prefix`; returns that line.
    public func readLine(startingWith prefix: String, timeout: Double = testDeadline) throws -> String {
        let found = Waiter<String?>()
        let handle = stdoutPipe.fileHandleForReading
        DispatchQueue.global().async {
            var text = ""
            while true {
                let data = handle.availableData
                if data.isEmpty { found.fulfil(nil); return }
                text += String(decoding: data, as: UTF8.self)
                if let line = text.split(separator: "\n").first(where: { $0.hasPrefix(prefix) }) {
                    found.fulfil(String(line))
                    return
                }
            }
        }
        guard let line = try found.wait("'\(prefix)' from the peer process", timeout: timeout) else {
            throw TestFailure("the peer process ended before printing '\(prefix)': \(stderrText)")
        }
        return line
    }

    /// All of stdout until EOF, read in the background.
    public func collectOutput() -> Waiter<String> {
        let out = Waiter<String>()
        let handle = stdoutPipe.fileHandleForReading
        DispatchQueue.global().async {
            out.fulfil(String(decoding: handle.readDataToEndOfFile(), as: UTF8.self))
        }
        return out
    }

    public func waitForExit(timeout: Double = testDeadline) throws -> Int32 {
        try exited.wait("the peer process to exit", timeout: timeout)
    }

    /// SIGTERM, then SIGKILL if it is still there after a grace period.
    public func terminate() {
        try? stdinPipe.fileHandleForWriting.close()
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
        if (try? exited.wait("SIGTERM", timeout: 5)) == nil {
            kill(process.processIdentifier, SIGKILL)
            _ = try? exited.wait("SIGKILL", timeout: 5)
        }
    }

    deinit { try? FileManager.default.removeItem(at: stderrFile) }
}

// MARK: - blocking sockets

/// A blocking TCP connection to 127.0.0.1:`port` whose reads time out at the test deadline.
public func connectBlocking(port: Int, receiveBuffer: Int32? = nil) throws -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestFailure("socket: \(errno)") }
    if var size = receiveBuffer {
        // Before connect, so that the advertised window stays small.
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
    }
    var tv = timeval(tv_sec: Int(testDeadline), tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = in_port_t(UInt16(port).bigEndian)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    guard rc == 0 else {
        close(fd)
        throw TestFailure("connect 127.0.0.1:\(port): errno \(errno)")
    }
    return fd
}

/// A blocking HTTP/1.1 request over a plain socket (Connection: close).
public enum HTTPClient {
    public static func request(_ method: String, port: Int, path: String, headers: [String: String] = [:], body: [UInt8] = []) throws -> (status: Int, body: [UInt8], headers: [String: String]) {
        let fd = try connectBlocking(port: port)
        defer { close(fd) }
        var text = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\nContent-Length: \(body.count)\r\n"
        for (k, v) in headers { text += "\(k): \(v)\r\n" }
        text += "\r\n"
        let out = Array(text.utf8) + body
        var sent = 0
        while sent < out.count {
            let n = out[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw TestFailure("send: errno \(errno)") }
            sent += n
        }
        var response: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n == 0 { break }
            guard n > 0 else { throw TestFailure("recv: errno \(errno) after \(response.count) bytes") }
            response += buf[0..<n]
        }
        guard let sep = response.firstRange(of: Array("\r\n\r\n".utf8)) else { throw TestFailure("no HTTP head in \(response.count) bytes") }
        let head = String(decoding: response[..<sep.lowerBound], as: UTF8.self).split(separator: "\r\n")
        guard let statusLine = head.first, let status = Int(statusLine.split(separator: " ")[1]) else { throw TestFailure("bad status line") }
        var hs: [String: String] = [:]
        for line in head.dropFirst() {
            if let c = line.firstIndex(of: ":") {
                hs[line[..<c].lowercased()] = line[line.index(after: c)...].trimmingCharacters(in: .whitespaces)
            }
        }
        return (status, Array(response[sep.upperBound...]), hs)
    }
}
