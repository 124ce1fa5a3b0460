import HTTP1
import WebSocket

/// What the application answers to one HTTP request.
public enum HTTPServerAction {
    /// Send this response (keep-alive honoured).
    case respond(HTTPResponse)
    /// Answer later: call the responder exactly once, on the loop.
    case deferred((@escaping (HTTPResponse) -> Void) -> Void)
    /// Upgrade to a WebSocket (the handshake is validated here; a bad one gets 400/426).
    case upgradeToWebSocket(WebSocketLimits, (WebSocketConnection) -> Void)
}

/// Facts about the connection a request came on.
public struct HTTPRequestContext: Sendable {
    public let peer: SocketAddress?
    public let connectionID: UInt64
}

/// Named limits of the HTTP side of the listener.
public struct HTTPServerLimits: Sendable {
    public var parser: HTTPParserLimits
    /// Time a connection may take to deliver a complete request head (slowloris guard).
    public var requestTimeout: Duration
    /// Time an HTTP keep-alive connection may stay idle between requests.
    public var idleTimeout: Duration
    /// Connections speaking HTTP at once (upgraded ones leave the count); past it a new
    /// connection gets 503 and is closed at once.
    public var maxConnections: Int

    public init(parser: HTTPParserLimits = .init(), requestTimeout: Duration = .seconds(10), idleTimeout: Duration = .seconds(60),
                maxConnections: Int = 1024) {
        self.parser = parser
        self.requestTimeout = requestTimeout
        self.idleTimeout = idleTimeout
        self.maxConnections = maxConnections
    }
}

/// An HTTP/1.1 server on one port that hands WebSocket upgrades to the application.
///
/// Everything runs on `loop`; the handler is called there.
public final class HTTPServer: @unchecked Sendable {
    public let loop: EventLoop
    private let requested: SocketAddress
    private let limits: HTTPServerLimits
    private let handler: (HTTPRequest, HTTPRequestContext) -> HTTPServerAction
    private var listener: TCPListener?
    private var connections: [ObjectIdentifier: HTTPServerConnection] = [:]
    private var nextID: UInt64 = 0

    public init(
        address: SocketAddress, loop: EventLoop, limits: HTTPServerLimits = .init(),
        handler: @escaping (HTTPRequest, HTTPRequestContext) -> HTTPServerAction
    ) {
        self.requested = address
        self.loop = loop
        self.limits = limits
        self.handler = handler
    }

    /// Binds, listens and starts accepting. Call on the loop. Returns the bound address
    /// (port 0 resolves to the ephemeral port).
    @discardableResult
    public func start() throws(SystemError) -> SocketAddress {
        loop.assertInEventLoop()
        let l = try TCPListener(address: requested, loop: loop) { [unowned self] tcp in
            self.accepted(tcp)
        }
        l.start()
        listener = l
        return l.address
    }

    public var boundAddress: SocketAddress? { listener?.address }

    /// Stops accepting new connections; existing ones continue.
    public func stopAccepting() {
        listener?.stop()
        listener = nil
    }

    private func accepted(_ tcp: TCPConnection) {
        if connections.count >= limits.maxConnections {
            // SPEC §5: too many clients, 503, and the descriptor is released at once.
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: "application/json")
            headers.add(name: "Connection", value: "close")
            tcp.start()
            tcp.write(HTTPResponse(status: 503, headers: headers, body: Array(#"{"error":"too many connections"}"#.utf8)).serialize())
            tcp.close()
            return
        }
        nextID += 1
        let conn = HTTPServerConnection(tcp: tcp, id: nextID, server: self, limits: limits)
        connections[ObjectIdentifier(conn)] = conn
        conn.start()
    }

    fileprivate func finished(_ conn: HTTPServerConnection) {
        connections[ObjectIdentifier(conn)] = nil
    }

    fileprivate func handle(_ request: HTTPRequest, _ context: HTTPRequestContext) -> HTTPServerAction {
        handler(request, context)
    }

    /// Connections still speaking HTTP (not upgraded).
    public var httpConnectionCount: Int { connections.count }

    /// Closes every HTTP connection that has not been upgraded.
    public func closeHTTPConnections() {
        for c in connections.values { c.tcp.close() }
    }
}

/// One accepted connection while it speaks HTTP/1.1. Confined to the server's loop.
private final class HTTPServerConnection: @unchecked Sendable {
    let tcp: TCPConnection
    let id: UInt64
    unowned let server: HTTPServer
    let limits: HTTPServerLimits
    var parser: HTTPRequestParser
    var timer: ScheduledTask?
    var busy = false  // a deferred response is outstanding; later pipelined requests wait
    var done = false

    init(tcp: TCPConnection, id: UInt64, server: HTTPServer, limits: HTTPServerLimits) {
        self.tcp = tcp
        self.id = id
        self.server = server
        self.limits = limits
        self.parser = HTTPRequestParser(limits: limits.parser)
    }

    func start() {
        // Weak: a connection the server closes itself outlives this object while it flushes and
        // drains (TCPConnection keeps itself alive until its fd is closed).
        tcp.onBytes = { [weak self] bytes in
            guard let self else { return }
            self.parser.feed(bytes)
            self.process()
        }
        tcp.onClose = { [weak self] _ in self?.finish() }
        tcp.start()
        armTimer(limits.requestTimeout)
    }

    func armTimer(_ d: Duration) {
        timer?.cancel()
        timer = tcp.loop.schedule(after: d) { [weak self] in
            guard let self, !self.done else { return }
            // A request that never completes is dropped without a response.
            self.tcp.close()
        }
    }

    func finish() {
        guard !done else { return }
        done = true
        timer?.cancel()
        server.finished(self)
    }

    func process() {
        while !done, !busy, tcp.isOpen {
            let request: HTTPRequest
            do throws(HTTPParseError) {
                guard let r = try parser.next() else { return }
                request = r
            } catch {
                var headers = HTTPHeaders()
                headers.add(name: "Content-Type", value: "application/json")
                headers.add(name: "Connection", value: "close")
                let body = Array("{\"error\":\"\(HTTPResponse.reasonPhrase(error.status).lowercased())\"}".utf8)
                tcp.write(HTTPResponse(status: error.status, headers: headers, body: body).serialize())
                tcp.close()
                finish()
                return
            }
            let context = HTTPRequestContext(peer: tcp.peer, connectionID: id)
            switch server.handle(request, context) {
            case .respond(let response):
                send(response, keepAlive: request.keepAlive, head: request.method == "HEAD")
            case .deferred(let body):
                busy = true
                // The request is complete: its answer may take as long as the handler needs (the
                // gateway's answers are bounded by request_timeout_ms). The idle timer starts
                // again with the answer.
                timer?.cancel()
                timer = nil
                var answered = false
                body { [weak self] response in
                    guard let self, !answered else { return }
                    answered = true
                    self.busy = false
                    self.send(response, keepAlive: request.keepAlive, head: request.method == "HEAD")
                    self.process()
                }
            case .upgradeToWebSocket(let wsLimits, let onUpgrade):
                upgrade(request, wsLimits, onUpgrade)
                return
            }
        }
    }

    func send(_ response: HTTPResponse, keepAlive: Bool, head: Bool = false) {
        guard tcp.isOpen else { return }
        var r = response
        if !keepAlive { r.headers.replaceOrAdd(name: "Connection", value: "close") }
        tcp.write(r.serialize(omittingBody: head))
        if !keepAlive {
            tcp.close()
            finish()
        } else {
            armTimer(limits.idleTimeout)
        }
    }

    func upgrade(_ request: HTTPRequest, _ wsLimits: WebSocketLimits, _ onUpgrade: (WebSocketConnection) -> Void) {
        let fields = request.headers.map { (name: $0.name, value: $0.value) }
        switch WebSocketHandshake.validateUpgradeRequest(method: request.method, versionMinor: request.versionMinor, headers: fields) {
        case .failure(let error):
            var headers = HTTPHeaders()
            if error.status == 426 { headers.add(name: "Sec-WebSocket-Version", value: "13") }
            headers.add(name: "Content-Type", value: "application/json")
            let body = Array("{\"error\":\"\(error)\"}".utf8)
            send(HTTPResponse(status: error.status, headers: headers, body: body), keepAlive: false)
        case .success(let accept):
            var headers = HTTPHeaders()
            for h in WebSocketHandshake.serverResponseHeaders(accept: accept) { headers.add(name: h.name, value: h.value) }
            tcp.write(HTTPResponse(status: 101, headers: headers).serialize())
            // The connection leaves HTTP: the WebSocket owns the TCP callbacks from here.
            finish()
            let ws = WebSocketConnection(tcp: tcp, role: .server, limits: wsLimits, initialBytes: parser.takeBufferedBytes())
            onUpgrade(ws)
            ws.start()
        }
    }
}
