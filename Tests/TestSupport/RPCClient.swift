// The JSON-RPC client of the socket tests (the simulator's and the end-to-end ones): the
// project's own WebSocket client, driven synchronously from the test thread.
import Foundation
import Transport

/// A JSON object decoded from `bytes` (a WebSocket message or an HTTP body).
public func decodeObject(_ bytes: [UInt8]) throws -> [String: Any] {
    guard let obj = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else {
        throw TestFailure("not a JSON object: \(String(decoding: bytes.prefix(500), as: UTF8.self))")
    }
    return obj
}

/// Every received text message is kept in arrival order. `response(idJSON:)` and
/// `notification(channel:)` take the first match and leave the others, still in order, for
/// `next`. Used from one test thread; the connection itself is only touched on `loop`.
public final class RPCClient: @unchecked Sendable {
    public let loop: EventLoop
    public let ws: WebSocketConnection
    /// Text messages as they arrive (those not yet taken into the backlog).
    public let messages = Channel<[UInt8]>()
    public let closed = Waiter<WebSocketCloseEvent>()
    /// Messages read while looking for another one, oldest first.
    private var backlog: [[UInt8]] = []
    /// Ids of `send` start above the small ids tests write by hand in raw requests.
    private var nextID = 100

    /// Large enough for any book snapshot or fan-out burst a test provokes.
    public static let defaultLimits = WebSocketLimits(maxFrameBytes: 64 << 20, maxMessageBytes: 64 << 20, maxBufferedBytes: 256 << 20)

    public init(url: String, loop: EventLoop, limits: WebSocketLimits = RPCClient.defaultLimits) throws {
        self.loop = loop
        guard let u = WebSocketURL(url) else { throw TestFailure("bad url \(url)") }
        let w = Waiter<Result<WebSocketConnection, TransportError>>()
        let messages = self.messages
        let closed = self.closed
        WebSocketClient.connect(url: u, loop: loop, limits: limits) { result in
            if case .success(let ws) = result {
                ws.onText = { _, bytes in messages.push(bytes) }
                ws.onClose = { _, e in closed.fulfil(e) }
            }
            w.fulfil(result)
        }
        ws = try w.wait("WebSocket connect to \(url)").get()
    }

    // MARK: sending

    public func sendRaw(_ bytes: [UInt8]) {
        let ws = self.ws
        loop.execute { ws.sendText(bytes) }
    }

    public func sendRaw(_ text: String) { sendRaw(Array(text.utf8)) }

    /// Sends a request (with the next id unless `id` is given); returns its id as JSON text,
    /// the form `response(idJSON:)` takes.
    @discardableResult
    public func send(_ method: String, _ params: [String: Any] = [:], id: Any? = nil) throws -> String {
        let rid: Any = id ?? { nextID += 1; return nextID }()
        let obj: [String: Any] = ["jsonrpc": "2.0", "id": rid, "method": method, "params": params]
        sendRaw(Array(try JSONSerialization.data(withJSONObject: obj)))
        let idJSON = try JSONSerialization.data(withJSONObject: rid, options: [.fragmentsAllowed])
        return String(decoding: idJSON, as: UTF8.self)
    }

    // MARK: receiving

    /// The next message, from the backlog first.
    public func next(_ what: String = "a message", timeout: Double = testDeadline) throws -> [UInt8] {
        if !backlog.isEmpty { return backlog.removeFirst() }
        return try messages.next(what, timeout: timeout)
    }

    /// The first message (backlog first) that `matches`; the others stay, in order.
    private func take(_ what: String, timeout: Double, _ matches: ([UInt8]) -> Bool) throws -> [UInt8] {
        if let i = backlog.firstIndex(where: matches) { return backlog.remove(at: i) }
        let end = Date().addingTimeInterval(timeout)
        while true {
            let m = try messages.next(what, timeout: max(0, end.timeIntervalSinceNow))
            if matches(m) { return m }
            backlog.append(m)
        }
    }

    public static func decode(_ bytes: [UInt8]) throws -> [String: Any] { try decodeObject(bytes) }

    /// Whether `m` carries the id whose JSON text is `idJSON` (e.g. `7` or `"abc"`).
    public static func hasID(_ m: [UInt8], _ idJSON: String) -> Bool {
        let s = String(decoding: m, as: UTF8.self)
        return s.contains("\"id\":\(idJSON),") || s.contains("\"id\":\(idJSON)}")
    }

    /// The raw bytes of the response whose id is `idJSON` (e.g. `7` or `"abc"`).
    public func response(idJSON: String, timeout: Double = testDeadline) throws -> [UInt8] {
        try take("response id \(idJSON)", timeout: timeout) { Self.hasID($0, idJSON) }
    }

    /// The response whose id is `idJSON`, decoded.
    public func responseObject(idJSON: String, timeout: Double = testDeadline) throws -> [String: Any] {
        try decodeObject(try response(idJSON: idJSON, timeout: timeout))
    }

    /// Calls a method and returns the decoded response.
    public func call(_ method: String, _ params: [String: Any] = [:], timeout: Double = testDeadline) throws -> [String: Any] {
        try responseObject(idJSON: try send(method, params), timeout: timeout)
    }

    /// A call that must succeed; returns its `result`.
    public func result(_ method: String, _ params: [String: Any] = [:]) throws -> Any {
        let r = try call(method, params)
        guard let result = r["result"] else { throw TestFailure("\(method) failed: \(r)") }
        return result
    }

    /// The next `subscription` notification on `channel`, decoded.
    public func notification(channel: String, timeout: Double = testDeadline) throws -> [String: Any] {
        let m = try take("a notification on \(channel)", timeout: timeout) { m in
            guard let o = try? decodeObject(m), o["method"] as? String == "subscription" else { return false }
            return (o["params"] as? [String: Any])?["channel"] as? String == channel
        }
        return try decodeObject(m)
    }

    /// The `params.data` of the next `subscription` notification on `channel`.
    public func notificationData(channel: String, timeout: Double = testDeadline) throws -> Any {
        let n = try notification(channel: channel, timeout: timeout)
        guard let data = (n["params"] as? [String: Any])?["data"] else { throw TestFailure("a notification without data: \(n)") }
        return data
    }

    // MARK: closing

    public func close(code: UInt16 = 1000) {
        let ws = self.ws
        loop.execute { ws.close(code: code) }
    }

    /// Closes TCP without a close frame (a client that crashed).
    public func kill() {
        let ws = self.ws
        loop.execute { ws.abort() }
    }

    /// Waits for this connection to end; returns the close event.
    public func waitClosed(_ what: String = "the connection to close", timeout: Double = testDeadline) throws -> WebSocketCloseEvent {
        try closed.wait(what, timeout: timeout)
    }

    /// True when the connection has ended (does not wait).
    public var isClosed: Bool { closed.isSet }
}
