import Dispatch
import HTTP1
import TLS
import WebSocket

/// A parsed `ws://` or `wss://` URL.
public struct WebSocketURL: Sendable, Equatable, CustomStringConvertible {
    public let secure: Bool
    public let host: String
    public let port: Int
    /// Path and query, e.g. `/ws/api/v2`.
    public let target: String

    public init?(_ string: String) {
        let lower = string.lowercased()
        let rest: Substring
        if lower.hasPrefix("wss://") {
            secure = true
            rest = string.dropFirst(6)
        } else if lower.hasPrefix("ws://") {
            secure = false
            rest = string.dropFirst(5)
        } else {
            return nil
        }
        let slash = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        let authority = rest[..<slash]
        var path = String(rest[slash...])
        if path.isEmpty { path = "/" } else if path.first == "?" { path = "/" + path }
        target = path
        guard !authority.isEmpty, !authority.contains("@") else { return nil }
        if authority.first == "[" {
            // [IPv6]:port
            guard let close = authority.firstIndex(of: "]") else { return nil }
            host = String(authority[authority.index(after: authority.startIndex)..<close])
            let after = authority[authority.index(after: close)...]
            if after.isEmpty {
                port = secure ? 443 : 80
            } else {
                guard after.first == ":", let p = Int(after.dropFirst()), (1...65535).contains(p) else { return nil }
                port = p
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = String(authority[..<colon])
            guard let p = Int(authority[authority.index(after: colon)...]), (1...65535).contains(p) else { return nil }
            port = p
        } else {
            host = String(authority)
            port = secure ? 443 : 80
        }
        guard !host.isEmpty else { return nil }
    }

    /// The Host header value.
    public var hostHeader: String {
        let h = host.contains(":") ? "[\(host)]" : host
        return port == (secure ? 443 : 80) ? h : "\(h):\(port)"
    }

    public var description: String { "\(secure ? "wss" : "ws")://\(hostHeader)\(target)" }
}

/// Opens client WebSocket connections (the gateway's upstream; test peers).
public enum WebSocketClient {
    /// Connects to `url` and completes on `loop` with an open connection.
    ///
    /// - `tls`: the context for `wss://` (nil: the system CA store).
    /// - `timeout`: bound on DNS, TCP, TLS and the HTTP upgrade together.
    public static func connect(
        url: WebSocketURL,
        loop: EventLoop,
        tls: TLSContext? = nil,
        limits: WebSocketLimits = .init(),
        extraHeaders: [(name: String, value: String)] = [],
        timeout: Duration = .seconds(10),
        completion: @escaping @Sendable (Result<WebSocketConnection, TransportError>) -> Void
    ) {
        let tlsContext: TLSContext?
        if url.secure {
            do throws(TLSError) {
                if let tls { tlsContext = tls } else { tlsContext = try TLSContext.client() }
            } catch {
                loop.execute { completion(.failure(.tls(error))) }
                return
            }
        } else {
            tlsContext = nil
        }
        if let numeric = SocketAddress(host: url.host, port: url.port) {
            loop.execute {
                connect(address: numeric, url: url, loop: loop, tls: tlsContext, limits: limits, extraHeaders: extraHeaders, timeout: timeout, completion: completion)
            }
            return
        }
        // getaddrinfo blocks: never on the loop.
        DispatchQueue.global().async {
            let result: Result<[SocketAddress], SystemError>
            do throws(SystemError) {
                result = .success(try SocketAddress.resolve(host: url.host, port: url.port))
            } catch {
                result = .failure(error)
            }
            loop.execute {
                switch result {
                case .failure(let e):
                    completion(.failure(.system(e)))
                case .success(let addresses):
                    guard let first = addresses.first else {
                        completion(.failure(.handshake("no address for \(url.host)")))
                        return
                    }
                    connect(address: first, url: url, loop: loop, tls: tlsContext, limits: limits, extraHeaders: extraHeaders, timeout: timeout, completion: completion)
                }
            }
        }
    }

    private static func connect(
        address: SocketAddress, url: WebSocketURL, loop: EventLoop, tls: TLSContext?, limits: WebSocketLimits,
        extraHeaders: [(name: String, value: String)], timeout: Duration,
        completion: @escaping @Sendable (Result<WebSocketConnection, TransportError>) -> Void
    ) {
        let tlsArg = tls.map { (context: $0, serverName: Optional(url.host)) }
        TCPConnection.connect(to: address, loop: loop, tls: tlsArg, timeout: timeout) { result in
            switch result {
            case .failure(let e):
                completion(.failure(e))
            case .success(let tcp):
                ClientHandshake(tcp: tcp, url: url, limits: limits, extraHeaders: extraHeaders, timeout: timeout, completion: completion).start()
            }
        }
    }
}

/// Sends the upgrade request and waits for `101 Switching Protocols`. Confined to the loop.
private final class ClientHandshake: @unchecked Sendable {
    let tcp: TCPConnection
    let url: WebSocketURL
    let limits: WebSocketLimits
    let key: String
    let extraHeaders: [(name: String, value: String)]
    let timeout: Duration
    var parser = HTTPResponseParser()
    var completion: (@Sendable (Result<WebSocketConnection, TransportError>) -> Void)?
    var timer: ScheduledTask?

    init(tcp: TCPConnection, url: WebSocketURL, limits: WebSocketLimits, extraHeaders: [(name: String, value: String)], timeout: Duration,
         completion: @escaping @Sendable (Result<WebSocketConnection, TransportError>) -> Void) {
        self.tcp = tcp
        self.url = url
        self.limits = limits
        self.extraHeaders = extraHeaders
        self.timeout = timeout
        self.completion = completion
        self.key = WebSocketHandshake.makeClientKey(randomBytes: (0..<16).map { _ in UInt8.random(in: 0...255) })
    }

    func start() {
        var headers = HTTPHeaders()
        for h in WebSocketHandshake.clientRequestHeaders(host: url.hostHeader, key: key, origin: nil) {
            headers.add(name: h.name, value: h.value)
        }
        for h in extraHeaders { headers.add(name: h.name, value: h.value) }
        tcp.onBytes = { [self] bytes in
            parser.feed(bytes)
            let message: HTTPResponseMessage?
            do throws(HTTPParseError) {
                message = try parser.next()
            } catch {
                fail(.handshake("bad HTTP response: \(error)"))
                return
            }
            guard let message else { return }
            let fields = message.headers.map { (name: $0.name, value: $0.value) }
            switch WebSocketHandshake.validateServerResponse(status: message.status, headers: fields, key: key) {
            case .failure(let e):
                fail(.handshake("\(e) (HTTP \(message.status))"))
            case .success:
                timer?.cancel()
                tcp.onClose = nil
                let ws = WebSocketConnection(tcp: tcp, role: .client, limits: limits, initialBytes: parser.takeBufferedBytes())
                let cb = completion
                completion = nil
                cb?(.success(ws))
                ws.start()
            }
        }
        tcp.onClose = { [self] reason in
            fail(.handshake("connection closed during upgrade: \(reason)"))
        }
        let url = self.url
        timer = tcp.loop.schedule(after: timeout) { [weak self] in
            self?.fail(.timeout("WebSocket upgrade to \(url)"))
        }
        tcp.write(serializeRequest(method: "GET", target: url.target, headers: headers, body: []))
    }

    func fail(_ e: TransportError) {
        timer?.cancel()
        guard let cb = completion else { return }
        completion = nil
        tcp.abort()
        cb(.failure(e))
    }
}
