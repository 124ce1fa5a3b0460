#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Transport

/// Workload 5: from just before the process is spawned to the first `GET /health` answered 200
/// (upstream connected, hello'd, authenticated, heartbeat set). The config must listen on port 0:
/// the port is read from the `deribit-gateway listening on HOST:PORT` line on stdout, then
/// /health is polled every 0.5 ms on fresh connections.
struct StartupRun {
    var listening: UInt64
    var healthy: UInt64
}

func runStartup(executable: String, config: String, pollMicros: UInt32) throws -> StartupRun {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = ["--config", config, "--log-level", "warning"]
    let out = Pipe()
    process.standardOutput = out
    process.standardError = FileHandle.nullDevice
    let t0 = monotonicNanos()
    try process.run()
    defer {
        kill(process.processIdentifier, SIGTERM)
        let waitDeadline = monotonicNanos() + 5_000_000_000
        while process.isRunning, monotonicNanos() < waitDeadline { usleep(1000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }
    let fd = out.fileHandleForReading.fileDescriptor
    var text = ""
    var port: UInt16?
    let deadline = t0 + 10_000_000_000
    var buf = [UInt8](repeating: 0, count: 4096)
    while port == nil {
        guard monotonicNanos() < deadline else { throw BenchError("no 'listening on' line within 10 s") }
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&p, 1, 100) > 0 else { continue }
        let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard n > 0 else { throw BenchError("the gateway exited before listening") }
        text += String(decoding: buf[0..<n], as: UTF8.self)
        for line in text.split(separator: "\n") where line.hasPrefix("deribit-gateway listening on") {
            port = line.split(separator: ":").last.flatMap { UInt16($0) }
        }
    }
    let listening = monotonicNanos() - t0
    while true {
        guard monotonicNanos() < deadline else { throw BenchError("/health not 200 within 10 s") }
        if let r = try? httpRequest("GET", port: port!, path: "/health", timeoutMs: 1000), r.status == 200 {
            return StartupRun(listening: listening, healthy: monotonicNanos() - t0)
        }
        usleep(pollMicros)
    }
}
