import Dispatch
import Foundation
import Transport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

// Helpers of the gateway-core end-to-end tests (issue 6).

/// A Python `websockets` JSON-RPC client (Tests/Interop/rpc_peer.py) running a script of steps.
/// Its stdout is read line by line in the background; every received message keeps its bytes.
final class PythonRPCPeer: @unchecked Sendable {
    let child: ChildProcess
    private let lines = Channel<String>()
    private let received = Locked<[[UInt8]]>([])
    private let finished = Waiter<Bool>()

    static var script: String { Interop.repoRoot.appendingPathComponent("Tests/Interop/rpc_peer.py").path }

    /// `steps` as rpc_peer.py documents them.
    init(url: String, steps: [[String: Any]]) throws {
        let text = String(decoding: try JSONSerialization.data(withJSONObject: steps), as: UTF8.self)
        child = try ChildProcess(try Interop.python(), [Self.script, url, text])
        let handle = child.stdoutPipe.fileHandleForReading
        let lines = self.lines
        let received = self.received
        let finished = self.finished
        DispatchQueue.global().async {
            var pending: [UInt8] = []
            while true {
                let data = handle.availableData
                if data.isEmpty { break }
                pending += data
                while let nl = pending.firstIndex(of: 0x0A) {
                    let line = String(decoding: pending[..<nl], as: UTF8.self)
                    pending.removeSubrange(...nl)
                    if line.hasPrefix("MSG "),
                       let s = try? JSONSerialization.jsonObject(with: Data(line.dropFirst(4).utf8), options: [.fragmentsAllowed]) as? String {
                        received.update { $0.append(Array(s.utf8)) }
                    } else {
                        lines.push(line)
                    }
                }
            }
            finished.fulfil(true)
        }
    }

    /// Waits for a marker line printed by a `print` step (or DONE / ERROR).
    func waitFor(_ marker: String, timeout: Double = testDeadline) throws {
        let line = try lines.next("'\(marker)' from rpc_peer.py", timeout: timeout)
        guard line == marker else {
            throw TestFailure("rpc_peer.py printed '\(line)' while the test waited for '\(marker)'; stderr: \(child.stderrText)")
        }
    }

    /// Lets a `wait_stdin` step go on.
    func proceed() {
        child.stdinPipe.fileHandleForWriting.write(Data("go\n".utf8))
    }

    /// Waits for DONE and the end of its output; returns every message received, in order.
    func finish(timeout: Double = testDeadline) throws -> [[UInt8]] {
        try waitFor("DONE", timeout: timeout)
        _ = try finished.wait("rpc_peer.py output to end", timeout: timeout)
        return received.value
    }

    var messages: [[UInt8]] { received.value }

    func stop() { child.terminate() }
}

/// A request as raw text, so that the id bytes are exactly the test's.
func rawRequestText(id idJSON: String, _ method: String, _ paramsJSON: String = "{}") -> String {
    #"{"jsonrpc":"2.0","id":\#(idJSON),"method":"\#(method)","params":\#(paramsJSON)}"#
}

/// The bytes of the top-level `"id":` value of a response, exactly as sent.
func responseIDBytes(_ message: [UInt8]) -> [UInt8]? {
    // Responses are objects whose members are values the gateway or the simulator wrote; the
    // id is spliced in place, so look for the top-level member by walking the nesting depth.
    var depth = 0
    var i = 0
    var inString = false
    let key = Array(#""id":"#.utf8)
    while i < message.count {
        let b = message[i]
        if inString {
            if b == 0x5C { i += 2; continue }
            if b == 0x22 { inString = false }
            i += 1
            continue
        }
        if depth == 1, b == 0x22, message[i...].starts(with: key) {
            var j = i + key.count
            let start = j
            if message[j] == 0x22 {
                j += 1
                while message[j] != 0x22 { j += message[j] == 0x5C ? 2 : 1 }
                j += 1
            } else {
                while j < message.count, message[j] != 0x2C, message[j] != 0x7D { j += 1 }
            }
            return Array(message[start..<j])
        }
        switch b {
        case 0x22: inString = true
        case 0x7B, 0x5B: depth += 1
        case 0x7D, 0x5D: depth -= 1
        default: break
        }
        i += 1
    }
    return nil
}

func utf8String(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

/// `error.code` of a decoded response, if it is an error.
func rpcErrorCode(_ obj: [String: Any]) -> Int? { (obj["error"] as? [String: Any])?["code"] as? Int }

extension SimProcess {
    /// `/sim/state` `method_calls[method]` (0 when absent).
    func methodCalls(_ method: String) throws -> Int {
        ((try state()["method_calls"] as? [String: Any])?[method] as? Int) ?? 0
    }

    func subscribeRequests(_ channel: String) throws -> Int {
        ((try state()["subscribe_requests"] as? [String: Any])?[channel] as? Int) ?? 0
    }

    func unsubscribeRequests(_ channel: String) throws -> Int {
        ((try state()["unsubscribe_requests"] as? [String: Any])?[channel] as? Int) ?? 0
    }

    /// Connection ids holding `channel` upstream.
    func channelHolders(_ channel: String) throws -> [Int] {
        ((try state()["subscriptions"] as? [String: Any])?[channel] as? [Int]) ?? []
    }

    /// The open WebSocket connections (the gateway's upstream is the only one in these tests).
    func openConnections() throws -> [[String: Any]] {
        (try state()["connections"] as? [[String: Any]]) ?? []
    }

    func simTotals() throws -> [String: Int] {
        (try state()["totals"] as? [String: Int]) ?? [:]
    }
}

extension GatewayProcess {
    /// One sample of `/metrics`, e.g. `deribit_gateway_credits_available{bucket="default"}`.
    func metricValue(_ series: String) throws -> Double? {
        let r = try HTTPClient.request("GET", port: port, path: "/metrics")
        for line in utf8String(r.body).split(separator: "\n") where line.hasPrefix(series + " ") {
            return Double(line.dropFirst(series.count + 1))
        }
        return nil
    }
}

/// A loopback port nobody listens on right now (bound to 0, read back, closed).
func freeLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestFailure("socket: \(errno)") }
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = 0
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let rc = withUnsafeMutablePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { p -> Int32 in
            guard bind(fd, p, len) == 0 else { return -1 }
            return getsockname(fd, p, &len)
        }
    }
    guard rc == 0 else { throw TestFailure("bind/getsockname: errno \(errno)") }
    return Int(UInt16(bigEndian: addr.sin_port))
}

extension RPCClient {
    /// Every message that arrives within `seconds` (used to show that something does NOT arrive).
    func drainMessages(for seconds: Double) -> [[UInt8]] {
        var out: [[UInt8]] = []
        let end = Date().addingTimeInterval(seconds)
        while let m = try? next("drain", timeout: max(0.01, end.timeIntervalSinceNow)) {
            out.append(m)
            if Date() >= end { break }
        }
        return out
    }

    /// The next `n` messages (any kind), in order.
    func nextMessages(_ n: Int, timeout: Double = testDeadline) throws -> [[UInt8]] {
        try (0..<n).map { i in try next("message \(i + 1) of \(n)", timeout: timeout) }
    }

    /// Authenticates with `client_credentials` and returns the decoded result.
    @discardableResult
    func authenticate(_ name: String, _ secret: String) throws -> [String: Any] {
        let r = try call("public/auth", ["grant_type": "client_credentials", "client_id": name, "client_secret": secret])
        guard let result = r["result"] as? [String: Any] else { throw TestFailure("auth as \(name) failed: \(r)") }
        return result
    }
}
