import Transport

/// The gateway's configuration (SPEC §4), validated and with every secret resolved
/// from the environment.
///
/// Obtain one with ``load(path:environment:overrides:)``; `GatewayConfig()` is the
/// built-in defaults (SPEC §3: listen `127.0.0.1:8777`, upstream
/// `wss://test.deribit.com/ws/api/v2`, no credentials, no clients). Tests may build
/// one field by field; such values are not re-validated.
///
/// Printing a configuration never shows a secret: secrets are ``Secret`` values.
public struct GatewayConfig: Sendable, Equatable {
    public var listen: ListenAddress
    public var upstream: Upstream
    public var clients: [Client]
    /// The scope of a client before it authenticates (`none` lets it only authenticate).
    public var anonymousScope: Scope
    /// Origins allowed to open a WebSocket; an upgrade carrying any other `Origin` gets 403.
    public var allowedOrigins: [String]
    public var limits: Limits
    public var transport: Transport
    public var shutdown: Shutdown
    public var anonymousLimits: AnonymousLimits

    public init(
        listen: ListenAddress = .defaultAddress,
        upstream: Upstream = Upstream(),
        clients: [Client] = [],
        anonymousScope: Scope = .public,
        allowedOrigins: [String] = [],
        limits: Limits = Limits(),
        transport: Transport = Transport(),
        shutdown: Shutdown = Shutdown(),
        anonymousLimits: AnonymousLimits = AnonymousLimits()
    ) {
        self.listen = listen
        self.upstream = upstream
        self.clients = clients
        self.anonymousScope = anonymousScope
        self.allowedOrigins = allowedOrigins
        self.limits = limits
        self.transport = transport
        self.shutdown = shutdown
        self.anonymousLimits = anonymousLimits
    }

    /// No upstream credentials: only public methods and channels work (SPEC §4).
    public var isPublicOnly: Bool { upstream.credentials == nil }

    /// Facts an operator should see in the log at start (none of them contains a secret).
    public var notices: [String] {
        var notices: [String] = []
        if isPublicOnly {
            notices.append("no upstream credentials: public-only mode")
        }
        if !listen.isLoopback {
            notices.append("listening on non-loopback address \(listen)")
        }
        return notices
    }

    /// The client configured under `name`, if any.
    public func client(named name: String) -> Client? {
        clients.first { $0.name == name }
    }

    // MARK: - Nested types

    /// The `upstream` object: the one WebSocket to Deribit.
    public struct Upstream: Sendable, Equatable {
        public var url: UpstreamURL
        /// Resolved API credentials; nil means public-only mode.
        public var credentials: UpstreamCredentials?
        /// The environment variable names the credentials were read from, if configured
        /// that way (kept to explain public-only mode in logs).
        public var clientIDEnv: String?
        public var clientSecretEnv: String?
        /// Sent as `public/set_heartbeat`; Deribit's minimum is 10 s.
        public var heartbeatIntervalSeconds: Int
        /// Enables Deribit's connection-scope cancel-on-disconnect on the upstream session.
        public var cancelOnDisconnect: Bool
        /// How long a request waits for the upstream to be `ready` and to answer.
        public var requestTimeoutMilliseconds: Int
        /// Exponential backoff with jitter between these bounds after losing the upstream.
        public var reconnectMinMilliseconds: Int
        public var reconnectMaxMilliseconds: Int
        public var credits: Credits

        public init(
            url: UpstreamURL = .defaultURL,
            credentials: UpstreamCredentials? = nil,
            clientIDEnv: String? = nil,
            clientSecretEnv: String? = nil,
            heartbeatIntervalSeconds: Int = 10,
            cancelOnDisconnect: Bool = true,
            requestTimeoutMilliseconds: Int = 15_000,
            reconnectMinMilliseconds: Int = 200,
            reconnectMaxMilliseconds: Int = 10_000,
            credits: Credits = Credits()
        ) {
            self.url = url
            self.credentials = credentials
            self.clientIDEnv = clientIDEnv
            self.clientSecretEnv = clientSecretEnv
            self.heartbeatIntervalSeconds = heartbeatIntervalSeconds
            self.cancelOnDisconnect = cancelOnDisconnect
            self.requestTimeoutMilliseconds = requestTimeoutMilliseconds
            self.reconnectMinMilliseconds = reconnectMinMilliseconds
            self.reconnectMaxMilliseconds = reconnectMaxMilliseconds
            self.credits = credits
        }
    }

    /// The account's API key, used for `public/auth` with `grant_type=client_credentials`.
    public struct UpstreamCredentials: Sendable, Equatable, CustomStringConvertible {
        public var clientID: String
        public var clientSecret: Secret

        public init(clientID: String, clientSecret: Secret) {
            self.clientID = clientID
            self.clientSecret = clientSecret
        }

        public var description: String { "UpstreamCredentials(clientID: \(clientID), clientSecret: <redacted>)" }
    }

    /// The model of Deribit's credit buckets (SPEC §6.6). Defaults are Deribit's
    /// documented values for the non-matching-engine and subscribe buckets.
    public struct Credits: Sendable, Equatable {
        /// Credits a non-matching-engine request costs.
        public var defaultCost: Int
        /// Capacity of the non-matching-engine bucket.
        public var max: Int
        /// Credits added per second to the non-matching-engine and subscribe buckets.
        public var refillPerSecond: Int
        /// Credits a subscribe request costs, from its own bucket.
        public var subscribeCost: Int
        public var subscribeMax: Int
        /// Matching-engine requests per second for the account's tier, and the burst.
        public var matchingEngineRate: Int
        public var matchingEngineBurst: Int

        public init(
            defaultCost: Int = 500,
            max: Int = 50_000,
            refillPerSecond: Int = 10_000,
            subscribeCost: Int = 3_000,
            subscribeMax: Int = 30_000,
            matchingEngineRate: Int = 5,
            matchingEngineBurst: Int = 20
        ) {
            self.defaultCost = defaultCost
            self.max = max
            self.refillPerSecond = refillPerSecond
            self.subscribeCost = subscribeCost
            self.subscribeMax = subscribeMax
            self.matchingEngineRate = matchingEngineRate
            self.matchingEngineBurst = matchingEngineBurst
        }
    }

    /// A strategy allowed to authenticate to the gateway with `public/auth`
    /// (`client_id` = `name`, `client_secret` = `secret`).
    public struct Client: Sendable, Equatable {
        /// Unique; also the `client` label in `/metrics`.
        public var name: String
        /// Resolved from `secret` or from the variable named by `secret_env`.
        public var secret: Secret
        /// The environment variable the secret came from, if any.
        public var secretEnv: String?
        public var scope: Scope
        /// This client's cancel-on-disconnect flag when it connects (SPEC §7).
        public var cancelOnDisconnect: Bool
        public var rateLimit: RateLimit?

        public init(
            name: String,
            secret: Secret,
            secretEnv: String? = nil,
            scope: Scope,
            cancelOnDisconnect: Bool = false,
            rateLimit: RateLimit? = nil
        ) {
            self.name = name
            self.secret = secret
            self.secretEnv = secretEnv
            self.scope = scope
            self.cancelOnDisconnect = cancelOnDisconnect
            self.rateLimit = rateLimit
        }
    }

    /// A token bucket: `perSecond` requests a second on average, `burst` at once.
    public struct RateLimit: Sendable, Equatable {
        public var perSecond: Double
        public var burst: Int

        public init(perSecond: Double, burst: Int) {
            self.perSecond = perSecond
            self.burst = burst
        }
    }

    /// Resource limits (SPEC §8).
    public struct Limits: Sendable, Equatable {
        /// WebSocket clients and HTTP JSON-RPC calls in flight, together; the next gets 503.
        public var maxClients: Int
        /// Largest WebSocket message or HTTP body a client may send.
        public var maxMessageBytes: Int
        /// Unsent bytes queued to one client before it is closed as a slow consumer (1008).
        public var clientBufferBytes: Int

        public init(maxClients: Int = 512, maxMessageBytes: Int = 1_048_576, clientBufferBytes: Int = 16_777_216) {
            self.maxClients = maxClients
            self.maxMessageBytes = maxMessageBytes
            self.clientBufferBytes = clientBufferBytes
        }
    }

    /// What clients that have not authenticated may send upstream (SPEC §8): each connection
    /// its own `rateLimit`, and all of them together `totalRateLimit`, so that the configured
    /// strategies keep the rest of the credits. Requests over either get 10028 at once.
    public struct AnonymousLimits: Sendable, Equatable {
        public var rateLimit: RateLimit
        public var totalRateLimit: RateLimit

        public init(rateLimit: RateLimit = RateLimit(perSecond: 5, burst: 10),
                    totalRateLimit: RateLimit = RateLimit(perSecond: 10, burst: 20)) {
            self.rateLimit = rateLimit
            self.totalRateLimit = totalRateLimit
        }
    }

    /// Graceful shutdown (SPEC §8).
    public struct Shutdown: Sendable, Equatable {
        /// How long SIGTERM waits for the exchange to confirm the cancels of flagged clients'
        /// orders before it logs out upstream; orders still open then are logged and the exit
        /// status is `GatewayMain.exitOrdersLeftOpen`.
        public var cancelWaitMilliseconds: Int

        public init(cancelWaitMilliseconds: Int = 10_000) {
            self.cancelWaitMilliseconds = cancelWaitMilliseconds
        }
    }

    public struct Transport: Sendable, Equatable {
        /// How sockets are driven: DispatchSources on a serial queue, or an epoll thread
        /// (Transport's own `EventLoopKind`).
        public var eventLoop: EventLoopKind

        public init(eventLoop: EventLoopKind = .dispatch) {
            self.eventLoop = eventLoop
        }
    }
}

extension GatewayConfig: CustomStringConvertible, CustomDebugStringConvertible {
    /// A summary for logs, without secrets.
    public var description: String {
        let clientList = clients.map { client in
            "\(client.name)(scope: \(client.scope), cancel_on_disconnect: \(client.cancelOnDisconnect))"
        }.joined(separator: ", ")
        let credentials = upstream.credentials.map { "client_id \($0.clientID), client_secret <redacted>" } ?? "none"
        return "GatewayConfig(listen: \(listen), upstream: \(upstream.url), credentials: \(credentials), "
            + "heartbeat_interval_s: \(upstream.heartbeatIntervalSeconds), clients: [\(clientList)], "
            + "anonymous_scope: \(anonymousScope), event_loop: \(transport.eventLoop.rawValue))"
    }

    public var debugDescription: String { description }
}
