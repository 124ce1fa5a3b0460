import Dispatch
import Foundation
import HTTP1
import JSONRPC
import Logging
import Transport

/// The simulator's I/O glue: serves `SimExchange` over the project's own transport.
///
/// Confined to one event loop: the exchange, every connection and the fault switches.
public final class SimServerInstance: @unchecked Sendable {
    public let loop: EventLoop
    let exchange: SimExchange
    let logger: Logger
    var server: HTTPServer?
    var connections: [UInt64: WebSocketConnection] = [:]
    var tickTimer: ScheduledTask?
    // Fault injection (docs/SIM.md).
    var stopAnswering = false
    var delayMillis = 0
    /// Faults on the next requests of one method (`/sim/fault/lose_answer`, `/sim/fault/drop_on`).
    var methodFaults: [String: MethodFault] = [:]

    struct MethodFault {
        enum Kind { case loseAnswer(execute: Bool), dropConnection }
        var remaining: Int
        let kind: Kind
    }

    public init(config: SimConfig, loop: EventLoop, logger: Logger) {
        self.loop = loop
        self.exchange = SimExchange(config: config)
        self.logger = logger
        exchange.clock = wallMicros
    }

    /// Binds and starts serving. Call on the loop.
    @discardableResult
    public func start(host: String, port: Int) throws -> SocketAddress {
        guard let address = SocketAddress(host: host, port: port) else { throw TransportError.invalidURL("\(host):\(port)") }
        let server = HTTPServer(address: address, loop: loop) { [unowned self] request, _ in self.route(request) }
        let bound = try server.start()
        self.server = server
        tickTimer = loop.scheduleRepeating(every: .milliseconds(2)) { [weak self] in
            guard let self else { return }
            self.perform(self.exchange.tick(nowMicros: wallMicros()), delayed: false)
        }
        return bound
    }

    /// Stops listening, stops the market and drops every connection (tests). Call on the loop.
    public func stop() {
        tickTimer?.cancel()
        tickTimer = nil
        server?.stopAccepting()
        server?.closeHTTPConnections()
        server = nil
        for ws in Array(connections.values) { ws.abort(reason: "simulator stopped") }
    }

    func route(_ request: HTTPRequest) -> HTTPServerAction {
        let now = wallMicros()
        switch (request.method, request.path) {
        case ("GET", "/ws/api/v2"), ("GET", "/ws/api/v2/"):
            // Deribit's own frame limit is 32 kB; accept more so the exchange can answer -32600.
            let limits = WebSocketLimits(maxFrameBytes: 4 << 20, maxMessageBytes: 4 << 20, maxBufferedBytes: 64 << 20)
            return .upgradeToWebSocket(limits) { [unowned self] ws in self.opened(ws) }
        case ("GET", "/sim/state"):
            return .respond(json(200, exchange.stateJSON(nowMicros: now)))
        case ("POST", "/sim/fault/drop_all"):
            let all = Array(connections.values)
            for ws in all { ws.abort(reason: "fault: drop_all") }
            return .respond(json(200, Array("{\"dropped\":\(all.count)}".utf8)))
        case ("POST", "/sim/fault/stop_answering"):
            stopAnswering = queryValue(request, "on").map { $0 == "true" || $0 == "1" } ?? true
            // A stalled exchange neither sends test_requests nor hangs up on clients that stop answering.
            exchange.setHeartbeatsPaused(stopAnswering, nowMicros: now)
            return .respond(json(200, Array("{\"stop_answering\":\(stopAnswering)}".utf8)))
        case ("POST", "/sim/fault/test_request"):
            let effects = exchange.testRequestNow(nowMicros: now)
            perform(effects, delayed: false)
            return .respond(json(200, Array("{\"sent\":\(effects.count)}".utf8)))
        case ("POST", "/sim/fault/lose_answer"):
            guard let method = queryValue(request, "method") else {
                return .respond(json(400, Array(#"{"error":"method query parameter required"}"#.utf8)))
            }
            let count = max(0, Int(queryValue(request, "count") ?? "1") ?? 1)
            let execute = queryValue(request, "execute").map { $0 == "true" || $0 == "1" } ?? true
            methodFaults[method] = count > 0 ? MethodFault(remaining: count, kind: .loseAnswer(execute: execute)) : nil
            return .respond(json(200, Array("{\"method\":\(String(decoding: JSONRPCWire.quoted(method), as: UTF8.self)),\"count\":\(count),\"execute\":\(execute)}".utf8)))
        case ("POST", "/sim/fault/drop_on"):
            guard let method = queryValue(request, "method") else {
                return .respond(json(400, Array(#"{"error":"method query parameter required"}"#.utf8)))
            }
            methodFaults[method] = MethodFault(remaining: 1, kind: .dropConnection)
            return .respond(json(200, Array("{\"method\":\(String(decoding: JSONRPCWire.quoted(method), as: UTF8.self))}".utf8)))
        case ("POST", "/sim/fault/delay"):
            delayMillis = max(0, Int(queryValue(request, "ms") ?? "0") ?? 0)
            return .respond(json(200, Array("{\"delay_ms\":\(delayMillis)}".utf8)))
        case ("POST", "/sim/publish"):
            guard let channel = queryValue(request, "channel") else {
                return .respond(json(400, Array(#"{"error":"channel query parameter required"}"#.utf8)))
            }
            perform(exchange.publish(channel: channel, dataJSON: request.body, nowMicros: now), delayed: false)
            return .respond(json(200, Array(#"{"published":true}"#.utf8)))
        case ("GET", let path) where path.hasPrefix("/api/v2/"):
            let method = String(path.dropFirst("/api/v2/".count))
            let query = HTTPQuery.parse(request.query ?? "")
            let r = exchange.httpAPI(path: method, query: query, nowMicros: now, authorization: request.headers["Authorization"])
            return .respond(json(r.status, r.body))
        default:
            return .respond(json(404, Array(#"{"error":"not found"}"#.utf8)))
        }
    }

    func queryValue(_ request: HTTPRequest, _ name: String) -> String? {
        HTTPQuery.parse(request.query ?? "").first { $0.name == name }?.value
    }

    func json(_ status: Int, _ body: [UInt8]) -> HTTPResponse {
        var h = HTTPHeaders()
        h.add(name: "Content-Type", value: "application/json")
        return HTTPResponse(status: status, headers: h, body: body)
    }

    func opened(_ ws: WebSocketConnection) {
        connections[ws.id] = ws
        let id = SimConnectionID(ws.id)
        exchange.connectionOpened(id, nowMicros: wallMicros())
        ws.onText = { [unowned self] ws, bytes in
            guard !self.stopAnswering else { return }
            if let fault = self.takeMethodFault(bytes) {
                switch fault {
                case .loseAnswer(execute: false):
                    return  // read and dropped: it never happened
                case .loseAnswer(execute: true):
                    // It takes effect; its answer is lost (notifications still go out).
                    let effects = self.exchange.received(text: bytes, from: id, nowMicros: wallMicros())
                    self.perform(effects.filter { !Self.isAnswer($0, to: id) }, delayed: true)
                case .dropConnection:
                    // It takes effect, then the connection drops before anything is sent on it.
                    let effects = self.exchange.received(text: bytes, from: id, nowMicros: wallMicros())
                    ws.abort(reason: "fault: drop_on")
                    self.perform(effects.filter { !Self.isFor($0, id) }, delayed: false)
                }
                return
            }
            self.perform(self.exchange.received(text: bytes, from: id, nowMicros: wallMicros()), delayed: true)
        }
        ws.onClose = { [unowned self] ws, _ in
            self.connections[ws.id] = nil
            self.perform(self.exchange.connectionClosed(id, nowMicros: wallMicros()), delayed: false)
        }
    }

    /// The fault armed for this request's method, if any (counted down).
    func takeMethodFault(_ bytes: [UInt8]) -> MethodFault.Kind? {
        guard !methodFaults.isEmpty, let scan = try? JSONRPCScanner.scan(bytes),
              let method = JSONRPCScanner.method(in: bytes, scan: scan), var fault = methodFaults[method] else { return nil }
        fault.remaining -= 1
        methodFaults[method] = fault.remaining > 0 ? fault : nil
        return fault.kind
    }

    static func isFor(_ effect: SimEffect, _ id: SimConnectionID) -> Bool {
        switch effect {
        case .send(let to, _), .close(let to, _, _), .drop(let to): return to == id
        case .broadcast: return false
        }
    }

    /// A response (it has an id) sent to `id`.
    static func isAnswer(_ effect: SimEffect, to id: SimConnectionID) -> Bool {
        guard case .send(let to, let bytes) = effect, to == id, let scan = try? JSONRPCScanner.scan(bytes) else { return false }
        return scan.isResponse
    }

    func perform(_ effects: [SimEffect], delayed: Bool) {
        if delayed && delayMillis > 0 {
            loop.schedule(after: .milliseconds(delayMillis)) { [weak self] in self?.perform(effects, delayed: false) }
            return
        }
        for effect in effects {
            switch effect {
            case .send(let id, let bytes):
                connections[id.raw]?.sendText(bytes)
            case .broadcast(let ids, let bytes):
                // Framed once, queued to every subscriber.
                let frame = WebSocketConnection.encodeTextFrame(bytes)
                for id in ids { connections[id.raw]?.sendEncodedFrame(frame) }
            case .close(let id, let code, let reason):
                connections[id.raw]?.close(code: code, reason: reason)
            case .drop(let id):
                connections[id.raw]?.abort(reason: "dropped by exchange")
            }
        }
    }
}

public enum SimServer {
    /// Serves until killed. Prints `deribit-sim listening on HOST:PORT` on stdout once bound.
    public static func run(listenHost: String, port: UInt16, config: SimConfig, logger: Logger) throws {
        let loop = EventLoop(kind: .dispatch, label: "deribit-sim")
        let instance = SimServerInstance(config: config, loop: loop, logger: logger)
        let ready = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var result: Result<SocketAddress, Error> = .failure(TransportError.timeout("start"))
        loop.execute {
            do { result = .success(try instance.start(host: listenHost, port: Int(port))) } catch { result = .failure(error) }
            ready.signal()
        }
        ready.wait()
        let bound = try result.get()
        FileHandle.standardOutput.write(Data("deribit-sim listening on \(bound)\n".utf8))
        logger.notice("deribit-sim listening on \(bound)")
        withExtendedLifetime(instance) { dispatchMain() }
    }
}
