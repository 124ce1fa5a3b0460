import Foundation
import XCTest

@testable import Gateway

final class ConfigTests: XCTestCase {
    /// The repository's `config.example.json`, found from this file's location.
    static var examplePath: String {
        URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("config.example.json").path
    }

    private func problems(
        _ json: String, environment: [String: String] = [:], overrides: GatewayConfigOverrides = .init()
    ) -> [String] {
        do {
            let config = try GatewayConfig.parse(
                json: Array(json.utf8), source: "test.json", environment: environment, overrides: overrides)
            return ["<no error; loaded \(config)>"]
        } catch {
            return error.problems
        }
    }

    private func load(_ json: String, environment: [String: String] = [:], file: StaticString = #filePath, line: UInt = #line) -> GatewayConfig? {
        do {
            return try GatewayConfig.parse(json: Array(json.utf8), source: "test.json", environment: environment)
        } catch {
            XCTFail("unexpected problems: \(error.problems)", file: file, line: line)
            return nil
        }
    }

    // MARK: - Broken configurations

    /// (what, document, environment, a problem that must appear verbatim at the start of a reported line)
    static let brokenConfigs: [(String, String, [String: String], String)] = [
        ("unknown top-level key", #"{"bogus": 1}"#, [:], "bogus: unknown key"),
        ("unknown nested key", #"{"upstream": {"bogus": true}}"#, [:], "upstream.bogus: unknown key"),
        ("unknown key with suggestion", #"{"upstream": {"credits": {"maxx": 1}}}"#, [:],
         "upstream.credits.maxx: unknown key; did you mean max?"),
        ("unknown key in a client", #"{"clients": [{"name": "a", "secret": "s", "scope": "read", "colour": 1}]}"#, [:],
         "clients[0].colour: unknown key"),
        ("string for integer, depth 3", #"{"upstream": {"credits": {"max": "50000"}}}"#, [:],
         "upstream.credits.max: expected an integer, got string"),
        ("fraction for integer", #"{"limits": {"max_clients": 1.5}}"#, [:],
         "limits.max_clients: expected an integer, got non-integer number 1.5"),
        ("exponent for integer", #"{"upstream": {"request_timeout_ms": 1e4}}"#, [:],
         "upstream.request_timeout_ms: expected an integer, got non-integer number 1e4"),
        ("string for boolean", #"{"upstream": {"cancel_on_disconnect": "yes"}}"#, [:],
         "upstream.cancel_on_disconnect: expected a boolean, got string"),
        ("integer for boolean in a client",
         #"{"clients": [{"name": "a", "secret": "s", "scope": "read", "cancel_on_disconnect": 1}]}"#, [:],
         "clients[0].cancel_on_disconnect: expected a boolean, got integer"),
        ("wrong type at depth 4",
         #"{"clients": [{"name": "a", "secret": "s", "scope": "read", "rate_limit": {"per_s": "10", "burst": 1}}]}"#, [:],
         "clients[0].rate_limit.per_s: expected a number, got string"),
        ("null for string", #"{"upstream": {"url": null}}"#, [:], "upstream.url: expected a string, got null"),
        ("listen not a string", #"{"listen": 8777}"#, [:], "listen: expected a string, got integer"),
        ("port out of range", #"{"listen": "127.0.0.1:70000"}"#, [:], "listen: port 70000 out of range 0-65535"),
        ("listen without port", #"{"listen": "127.0.0.1"}"#, [:], #"listen: expected HOST:PORT, got "127.0.0.1""#),
        ("listen with a non-numeric port", #"{"listen": "127.0.0.1:http"}"#, [:], #"listen: port "http" is not a number"#),
        ("listen on a host name", #"{"listen": "example.com:8777"}"#, [:],
         #"listen: host "example.com" must be an IPv4 address, localhost or a bracketed IPv6 address"#),
        ("listen on an unbracketed IPv6", #"{"listen": "::1:8777"}"#, [:],
         "listen: an IPv6 host must be in brackets, as in [::1]:8777"),
        ("listen on a bad IPv4", #"{"listen": "127.0.0.256:8777"}"#, [:], #"listen: host "127.0.0.256" must be"#),
        ("url scheme https", #"{"upstream": {"url": "https://www.deribit.com/ws/api/v2"}}"#, [:],
         #"upstream.url: scheme must be ws or wss, got "https""#),
        ("url without host", #"{"upstream": {"url": "wss:///ws/api/v2"}}"#, [:], "upstream.url: URL has no host"),
        ("url not a URL", #"{"upstream": {"url": "test.deribit.com"}}"#, [:], "upstream.url: \"test.deribit.com\" is not a URL"),
        ("url port out of range", #"{"upstream": {"url": "ws://127.0.0.1:65536/ws"}}"#, [:],
         "upstream.url: port 65536 out of range 1-65535"),
        ("heartbeat 5", #"{"upstream": {"heartbeat_interval_s": 5}}"#, [:],
         "upstream.heartbeat_interval_s: must be at least 10 (Deribit's minimum heartbeat interval), got 5"),
        ("reconnect min > max", #"{"upstream": {"reconnect_min_ms": 500, "reconnect_max_ms": 100}}"#, [:],
         "upstream.reconnect_min_ms: must not exceed reconnect_max_ms (500 > 100)"),
        ("negative timeout", #"{"upstream": {"request_timeout_ms": -1}}"#, [:],
         "upstream.request_timeout_ms: must be greater than 0, got -1"),
        ("credits zero", #"{"upstream": {"credits": {"refill_per_s": 0}}}"#, [:],
         "upstream.credits.refill_per_s: must be greater than 0, got 0"),
        ("cost above bucket", #"{"upstream": {"credits": {"default_cost": 600, "max": 500}}}"#, [:],
         "upstream.credits.default_cost: must not exceed max (600 > 500)"),
        ("secret and secret_env", #"{"clients": [{"name": "a", "secret": "s", "secret_env": "A_SECRET", "scope": "read"}]}"#,
         ["A_SECRET": "x"], "clients[0]: set exactly one of secret and secret_env, not both"),
        ("neither secret nor secret_env", #"{"clients": [{"name": "a", "scope": "read"}]}"#, [:],
         "clients[0]: set exactly one of secret and secret_env (neither is set)"),
        ("secret_env unset",
         #"{"clients": [{"name": "a", "secret": "s", "scope": "read"}, {"name": "mm", "secret_env": "MM_SECRET", "scope": "trade"}]}"#,
         [:], "clients[1].secret_env: environment variable MM_SECRET is not set"),
        ("secret_env empty", #"{"clients": [{"name": "mm", "secret_env": "MM_SECRET", "scope": "trade"}]}"#,
         ["MM_SECRET": ""], "clients[0].secret_env: environment variable MM_SECRET is empty"),
        ("secret_env not a variable name", #"{"clients": [{"name": "mm", "secret_env": "MM-SECRET", "scope": "trade"}]}"#,
         [:], #"clients[0].secret_env: "MM-SECRET" is not a valid environment variable name"#),
        ("empty secret", #"{"clients": [{"name": "mm", "secret": "", "scope": "trade"}]}"#, [:],
         "clients[0].secret: must not be empty"),
        ("duplicate client name",
         #"{"clients": [{"name": "a", "secret": "s", "scope": "read"}, {"name": "a", "secret": "t", "scope": "read"}]}"#,
         [:], #"clients[1].name: duplicate client name "a" (also clients[0])"#),
        ("client without a name", #"{"clients": [{"secret": "s", "scope": "read"}]}"#, [:],
         "clients[0].name: missing; a string is required"),
        ("client named anonymous", #"{"clients": [{"name": "anonymous", "secret": "s", "scope": "read"}]}"#, [:],
         #"clients[0].name: "anonymous" is reserved for unauthenticated clients"#),
        ("client name with spaces", #"{"clients": [{"name": "mm btc", "secret": "s", "scope": "read"}]}"#, [:],
         #"clients[0].name: "mm btc" may contain only letters, digits, '.', '_' and '-'"#),
        ("bad scope", #"{"clients": [{"name": "a", "secret": "s", "scope": "admin"}]}"#, [:],
         "clients[0].scope: must be one of public, read, trade, full"),
        ("scope none for a client", #"{"clients": [{"name": "a", "secret": "s", "scope": "none"}]}"#, [:],
         #"clients[0].scope: must be one of public, read, trade, full, got "none""#),
        ("missing scope", #"{"clients": [{"name": "a", "secret": "s"}]}"#, [:],
         "clients[0].scope: missing; must be one of public, read, trade, full"),
        ("rate_limit burst zero",
         #"{"clients": [{"name": "a", "secret": "s", "scope": "read", "rate_limit": {"per_s": 1, "burst": 0}}]}"#, [:],
         "clients[0].rate_limit.burst: must be greater than 0, got 0"),
        ("rate_limit without burst",
         #"{"clients": [{"name": "a", "secret": "s", "scope": "read", "rate_limit": {"per_s": 1}}]}"#, [:],
         "clients[0].rate_limit.burst: missing"),
        ("clients not an array", #"{"clients": {"name": "a"}}"#, [:], "clients: expected an array, got object"),
        ("client not an object", #"{"clients": ["a"]}"#, [:], "clients[0]: expected an object, got string"),
        ("upstream not an object", #"{"upstream": "wss://test.deribit.com/ws/api/v2"}"#, [:],
         "upstream: expected an object, got string"),
        ("bad anonymous_scope", #"{"anonymous_scope": "admin"}"#, [:],
         #"anonymous_scope: must be one of none, public, read, trade, full, got "admin""#),
        ("anonymous_scope full on a non-loopback address",
         #"{"listen": "0.0.0.0:8777", "anonymous_scope": "full", "clients": [{"name": "a", "secret": "s", "scope": "read"}]}"#,
         [:], "listen: non-loopback address 0.0.0.0:8777 requires configured clients and anonymous_scope none or public (anonymous_scope is full)"),
        ("non-loopback address without clients", #"{"listen": "[::]:8777"}"#, [:],
         "listen: non-loopback address [::]:8777 requires configured clients and anonymous_scope none or public (clients is empty)"),
        ("only client_id_env resolves", #"{"upstream": {"client_id_env": "DERIBIT_CLIENT_ID", "client_secret_env": "DERIBIT_CLIENT_SECRET"}}"#,
         ["DERIBIT_CLIENT_ID": "abc"],
         "upstream.client_secret_env: environment variable DERIBIT_CLIENT_SECRET is not set, but the client ID is set: give both credentials or neither"),
        ("only client_secret_env resolves", #"{"upstream": {"client_id_env": "DERIBIT_CLIENT_ID", "client_secret_env": "DERIBIT_CLIENT_SECRET"}}"#,
         ["DERIBIT_CLIENT_SECRET": "xyz"],
         "upstream.client_id_env: environment variable DERIBIT_CLIENT_ID is not set, but the client secret is set"),
        ("client_id literal without secret", #"{"upstream": {"client_id": "abc"}}"#, [:],
         "upstream.client_secret: missing (set client_secret or client_secret_env), but the client ID is set"),
        ("client_id and client_id_env", #"{"upstream": {"client_id": "abc", "client_id_env": "ID", "client_secret": "x"}}"#,
         ["ID": "abc"], "upstream.client_id: set either client_id or client_id_env, not both"),
        ("event_loop bogus", #"{"transport": {"event_loop": "kqueue"}}"#, [:],
         #"transport.event_loop: must be one of dispatch, epoll, got "kqueue""#),
        ("limits zero", #"{"limits": {"max_clients": 0}}"#, [:], "limits.max_clients: must be greater than 0, got 0"),
        ("limits negative", #"{"limits": {"client_buffer_bytes": -5}}"#, [:],
         "limits.client_buffer_bytes: must be greater than 0, got -5"),
        ("huge integer", #"{"limits": {"max_message_bytes": 99999999999999999999}}"#, [:],
         "limits.max_message_bytes: 99999999999999999999 is too large"),
        ("origin with a path", #"{"allowed_origins": ["https://example.com/"]}"#, [:],
         #"allowed_origins[0]: an origin is scheme://host[:port] with no path, got "https://example.com/""#),
        ("origins not an array", #"{"allowed_origins": "https://example.com"}"#, [:],
         "allowed_origins: expected an array of strings, got string"),
        ("duplicate key", #"{"upstream": {"url": "ws://a/", "url": "ws://b/"}}"#, [:], "upstream.url: duplicate key"),
        ("malformed JSON", #"{"listen": }"#, [:], "test.json: invalid JSON at line 1, column 12: unexpected '}', expected a value"),
        ("trailing comma", "{\n  \"listen\": \"127.0.0.1:1\",\n}", [:], "test.json: invalid JSON at line 3, column 1: unexpected '}', expected a string key"),
        ("truncated JSON", #"{"upstream": {"url": "ws://a/"#, [:], "test.json: invalid JSON at line 1, column 30: unterminated string"),
        ("empty document", "", [:], "test.json: invalid JSON at line 1, column 1: unexpected end of input, expected a value"),
        ("top-level array", "[]", [:], "test.json: expected a JSON object at the top level, got array"),
    ]

    func testBrokenConfigsReportTheirKeyPath() {
        XCTAssertGreaterThanOrEqual(Self.brokenConfigs.count, 20)
        for (what, json, environment, expected) in Self.brokenConfigs {
            let reported = problems(json, environment: environment)
            XCTAssertTrue(reported.contains { $0.hasPrefix(expected) },
                          "\(what): expected a problem starting \"\(expected)\", got \(reported)")
        }
    }

    func testEveryProblemIsReportedAtOnce() {
        let json = #"""
            {
              "listen": "127.0.0.1:70000",
              "upstream": { "heartbeat_interval_s": 5, "credits": { "max": "x" }, "nope": 1 },
              "clients": [ { "name": "a", "secret_env": "UNSET_SECRET", "scope": "god" } ],
              "transport": { "event_loop": "kqueue" }
            }
            """#
        let reported = problems(json)
        let expected = [
            "listen: port 70000 out of range 0-65535",
            "upstream.nope: unknown key",
            "upstream.heartbeat_interval_s: must be at least 10",
            "upstream.credits.max: expected an integer, got string",
            "clients[0].secret_env: environment variable UNSET_SECRET is not set",
            "clients[0].scope: must be one of public, read, trade, full",
            "transport.event_loop: must be one of dispatch, epoll",
        ]
        for line in expected {
            XCTAssertTrue(reported.contains { $0.hasPrefix(line) }, "missing \"\(line)\" in \(reported)")
        }
        XCTAssertEqual(reported.count, expected.count, "\(reported)")
    }

    func testListenRuleDoesNotCallABrokenClientListEmpty() {
        let reported = problems(#"{"listen": "0.0.0.0:8777", "clients": [{"name": "a", "scope": "read"}]}"#)
        XCTAssertEqual(reported, ["clients[0]: set exactly one of secret and secret_env (neither is set)"])
    }

    func testMissingFileIsNamed() {
        XCTAssertThrowsError(try GatewayConfig.load(path: "/nonexistent/gateway.json", environment: [:])) { error in
            XCTAssertEqual((error as? ConfigError)?.problems, ["/nonexistent/gateway.json: cannot open: No such file or directory"])
        }
    }

    // MARK: - Valid configurations

    func testExampleLoadsWithoutEnvironment() throws {
        let config = try GatewayConfig.load(path: Self.examplePath, environment: [:])
        XCTAssertEqual(config.listen, ListenAddress(host: "127.0.0.1", port: 8777, family: .ipv4))
        XCTAssertTrue(config.isPublicOnly)
        XCTAssertEqual(config.notices, ["no upstream credentials: public-only mode"])
        XCTAssertEqual(config.upstream.clientIDEnv, "DERIBIT_CLIENT_ID")
        XCTAssertEqual(config.upstream.clientSecretEnv, "DERIBIT_CLIENT_SECRET")
        XCTAssertEqual(config.upstream.url, UpstreamURL.defaultURL)
        XCTAssertEqual(config.upstream.credits, GatewayConfig.Credits())
        XCTAssertEqual(config.clients, [
            GatewayConfig.Client(name: "mm-btc", secret: Secret("change-me-too"), scope: .trade,
                                 cancelOnDisconnect: true, rateLimit: .init(perSecond: 10, burst: 20)),
            GatewayConfig.Client(name: "risk-view", secret: Secret("change-me"), scope: .read),
        ])
        // The example spells out every default, credentials and clients aside.
        var expected = GatewayConfig()
        expected.clients = config.clients
        expected.upstream.clientIDEnv = "DERIBIT_CLIENT_ID"
        expected.upstream.clientSecretEnv = "DERIBIT_CLIENT_SECRET"
        XCTAssertEqual(config, expected)
    }

    func testDefaultsWithoutFile() throws {
        let config = try GatewayConfig.load(path: nil, environment: ["DERIBIT_CLIENT_ID": "ignored"])
        XCTAssertEqual(config, GatewayConfig())
        XCTAssertEqual(config.listen.description, "127.0.0.1:8777")
        XCTAssertEqual(config.upstream.url.text, "wss://test.deribit.com/ws/api/v2")
        XCTAssertNil(config.upstream.credentials)
        XCTAssertEqual(config.upstream.heartbeatIntervalSeconds, 10)
        XCTAssertTrue(config.upstream.cancelOnDisconnect)
        XCTAssertEqual(config.upstream.requestTimeoutMilliseconds, 15_000)
        XCTAssertEqual(config.upstream.reconnectMinMilliseconds, 200)
        XCTAssertEqual(config.upstream.reconnectMaxMilliseconds, 10_000)
        XCTAssertEqual(config.anonymousScope, .public)
        XCTAssertEqual(config.allowedOrigins, [])
        XCTAssertEqual(config.limits, GatewayConfig.Limits(maxClients: 512, maxMessageBytes: 1_048_576, clientBufferBytes: 16_777_216))
        XCTAssertEqual(config.transport.eventLoop, .dispatch)
        XCTAssertEqual(try GatewayConfig.parse(json: Array("{}".utf8), environment: [:]), GatewayConfig())
    }

    func testEnvironmentResolution() throws {
        let json = #"""
            {
              "upstream": { "client_id_env": "DERIBIT_CLIENT_ID", "client_secret_env": "DERIBIT_CLIENT_SECRET" },
              "clients": [ { "name": "mm", "secret_env": "MM_SECRET", "scope": "full", "cancel_on_disconnect": true } ]
            }
            """#
        let config = try XCTUnwrap(load(json, environment: [
            "DERIBIT_CLIENT_ID": "id-123", "DERIBIT_CLIENT_SECRET": "sec-456", "MM_SECRET": "mm-789",
        ]))
        XCTAssertEqual(config.upstream.credentials?.clientID, "id-123")
        XCTAssertEqual(config.upstream.credentials?.clientSecret.revealed, "sec-456")
        XCTAssertFalse(config.isPublicOnly)
        XCTAssertEqual(config.notices, [])
        XCTAssertEqual(config.client(named: "mm")?.secret.revealed, "mm-789")
        XCTAssertEqual(config.client(named: "mm")?.secretEnv, "MM_SECRET")
        XCTAssertEqual(config.client(named: "mm")?.scope, .full)
        XCTAssertEqual(config.client(named: "mm")?.cancelOnDisconnect, true)
    }

    func testLiteralUpstreamCredentials() throws {
        let config = try XCTUnwrap(load(#"{"upstream": {"client_id": "lit-id", "client_secret": "lit-secret"}}"#))
        XCTAssertEqual(config.upstream.credentials, .init(clientID: "lit-id", clientSecret: Secret("lit-secret")))
    }

    func testEmptyEnvironmentCredentialsMeanPublicOnly() throws {
        let config = try XCTUnwrap(load(
            #"{"upstream": {"client_id_env": "ID", "client_secret_env": "SECRET"}}"#,
            environment: ["ID": "", "SECRET": ""]))
        XCTAssertTrue(config.isPublicOnly)
    }

    func testClientDefaults() throws {
        let config = try XCTUnwrap(load(#"{"clients": [{"name": "a.b_c-1", "secret": "s", "scope": "public"}]}"#))
        XCTAssertEqual(config.clients, [GatewayConfig.Client(name: "a.b_c-1", secret: Secret("s"), scope: .public)])
        XCTAssertFalse(config.clients[0].cancelOnDisconnect)
        XCTAssertNil(config.clients[0].rateLimit)
    }

    func testFractionalRateLimit() throws {
        let config = try XCTUnwrap(load(
            #"{"clients": [{"name": "slow", "secret": "s", "scope": "read", "rate_limit": {"per_s": 0.5, "burst": 1}}]}"#))
        XCTAssertEqual(config.clients.first?.rateLimit, .init(perSecond: 0.5, burst: 1))
    }

    func testNonLoopbackAllowedWithClientsAndRestrictedAnonymousScope() throws {
        let json = #"{"listen": "0.0.0.0:9000", "anonymous_scope": "none", "clients": [{"name": "a", "secret": "s", "scope": "read"}]}"#
        let config = try XCTUnwrap(load(json))
        XCTAssertFalse(config.listen.isLoopback)
        XCTAssertEqual(config.anonymousScope, .none)
        XCTAssertEqual(config.notices.last, "listening on non-loopback address 0.0.0.0:9000")
    }

    func testAllowedOrigins() throws {
        let config = try XCTUnwrap(load(#"{"allowed_origins": ["https://ops.example.com", "http://localhost:3000"]}"#))
        XCTAssertEqual(config.allowedOrigins, ["https://ops.example.com", "http://localhost:3000"])
    }

    // MARK: - Overrides

    func testOverridesWinOverTheFile() throws {
        let config = try GatewayConfig.load(
            path: Self.examplePath, environment: [:],
            overrides: GatewayConfigOverrides(listen: "[::1]:9001", upstreamURL: "ws://127.0.0.1:8800/ws/api/v2"))
        XCTAssertEqual(config.listen, ListenAddress(host: "::1", port: 9001, family: .ipv6))
        XCTAssertEqual(config.upstream.url.text, "ws://127.0.0.1:8800/ws/api/v2")
        XCTAssertFalse(config.upstream.url.isTLS)
        XCTAssertEqual(config.upstream.url.port, 8800)
    }

    func testOverrideProblemsNameTheFlag() {
        let reported = problems("{}", overrides: GatewayConfigOverrides(listen: "127.0.0.1:99999", upstreamURL: "http://x/"))
        XCTAssertEqual(reported, [
            "--listen: port 99999 out of range 0-65535",
            #"--upstream-url: scheme must be ws or wss, got "http""#,
        ])
        let exposed = problems("{}", overrides: GatewayConfigOverrides(listen: "0.0.0.0:8777"))
        XCTAssertEqual(exposed, [
            "--listen: non-loopback address 0.0.0.0:8777 requires configured clients and anonymous_scope none or public (clients is empty)",
        ])
    }

    func testApplyOverrides() throws {
        var config = GatewayConfig()
        try config.apply(overrides: GatewayConfigOverrides(listen: "localhost:8000"))
        XCTAssertEqual(config.listen, ListenAddress(host: "localhost", port: 8000, family: .localhost))
        XCTAssertThrowsError(try config.apply(overrides: GatewayConfigOverrides(listen: "10.0.0.1:8000"))) { error in
            XCTAssertEqual((error as? ConfigError)?.problems.first?.hasPrefix("--listen: non-loopback address 10.0.0.1:8000"), true)
        }
        XCTAssertEqual(config.listen.port, 8000, "a refused override leaves the configuration unchanged")
    }

    // MARK: - Secrets never print

    func testDescriptionsRedactSecrets() throws {
        let json = #"""
            {
              "upstream": { "client_id": "the-id", "client_secret": "UPSTREAM-SECRET" },
              "clients": [ { "name": "mm", "secret": "CLIENT-SECRET", "scope": "trade" } ]
            }
            """#
        let config = try XCTUnwrap(load(json))
        var dumped = ""
        dump(config, to: &dumped)
        let renderings = [
            String(describing: config), String(reflecting: config), "\(config)", dumped,
            String(describing: config.clients), String(reflecting: config.clients[0]),
            String(describing: config.upstream), String(reflecting: config.upstream.credentials as Any),
        ]
        for text in renderings {
            XCTAssertFalse(text.contains("UPSTREAM-SECRET"), text)
            XCTAssertFalse(text.contains("CLIENT-SECRET"), text)
        }
        XCTAssertTrue(String(describing: config).contains("<redacted>"))
    }

    func testSecretComparison() {
        let secret = Secret("change-me")
        XCTAssertTrue(secret.matches("change-me"))
        XCTAssertFalse(secret.matches("change-mE"))
        XCTAssertFalse(secret.matches("change-me-too"))
        XCTAssertFalse(secret.matches("change-m"))
        XCTAssertFalse(secret.matches(""))
        XCTAssertFalse(Secret("").matches("x"))
    }

    // MARK: - Parsers

    func testScopeOrderAndNames() {
        XCTAssertTrue(Scope.none < .public && Scope.public < .read && Scope.read < .trade && Scope.trade < .full)
        XCTAssertTrue(Scope.trade.covers(.read))
        XCTAssertFalse(Scope.read.covers(.trade))
        XCTAssertEqual(Scope.allCases.map(\.name), ["none", "public", "read", "trade", "full"])
        XCTAssertEqual(Scope(name: "trade"), .trade)
        XCTAssertNil(Scope(name: "Trade"))
    }

    func testListenAddresses() throws {
        XCTAssertEqual(try ListenAddress.parse("[::1]:8777").get(), ListenAddress(host: "::1", port: 8777, family: .ipv6))
        XCTAssertTrue(try ListenAddress.parse("[::1]:8777").get().isLoopback)
        XCTAssertTrue(try ListenAddress.parse("127.1.2.3:1").get().isLoopback)
        XCTAssertTrue(try ListenAddress.parse("localhost:65535").get().isLoopback)
        XCTAssertTrue(try ListenAddress.parse("[::ffff:127.0.0.1]:80").get().isLoopback)
        XCTAssertFalse(try ListenAddress.parse("[::]:80").get().isLoopback)
        XCTAssertFalse(try ListenAddress.parse("192.168.1.5:80").get().isLoopback)
        XCTAssertEqual(try ListenAddress.parse("[::1]:8777").get().description, "[::1]:8777")
        XCTAssertThrowsError(try ListenAddress.parse("[::1]8777").get())
        XCTAssertThrowsError(try ListenAddress.parse("[zz]:1").get())
        XCTAssertThrowsError(try ListenAddress.parse(":8777").get())
    }

    func testUpstreamURLs() throws {
        let deribit = try UpstreamURL.parse("wss://www.deribit.com/ws/api/v2").get()
        XCTAssertEqual(deribit, UpstreamURL(text: "wss://www.deribit.com/ws/api/v2", isTLS: true,
                                            host: "www.deribit.com", port: 443, requestTarget: "/ws/api/v2"))
        XCTAssertEqual(deribit.hostHeader, "www.deribit.com")
        let local = try UpstreamURL.parse("ws://[::1]:9000").get()
        XCTAssertEqual(local.host, "::1")
        XCTAssertEqual(local.port, 9000)
        XCTAssertEqual(local.requestTarget, "/")
        XCTAssertEqual(local.hostHeader, "[::1]:9000")
        XCTAssertEqual(try UpstreamURL.parse("WS://Sim.Local?x=1").get().requestTarget, "/?x=1")
        XCTAssertEqual(try UpstreamURL.parse("WS://Sim.Local?x=1").get().host, "sim.local")
        XCTAssertThrowsError(try UpstreamURL.parse("wss://user:pw@host/").get())
        XCTAssertThrowsError(try UpstreamURL.parse("wss://host/#frag").get())
    }

    func testJSONParser() throws {
        let value = try ConfigJSONParser.parse(Array(#"\#u{FEFF}{"a": [1, -2, 0.5, true, false, null, "\u00e9\ud83d\ude00\n"]}"#.utf8))
        XCTAssertEqual(value, .object([("a", .array([
            .integer(1), .integer(-2), .number(0.5, text: "0.5"), .bool(true), .bool(false), .null, .string("é😀\n"),
        ]))]))
        for bad in ["01", "[1,]", "{\"a\" 1}", "\"\\x\"", "\"\u{01}\"", "[1] 2", "\"\\ud83d\"", "-", "1.", "tru",
                    String(repeating: "[", count: 100) + String(repeating: "]", count: 100)] {
            XCTAssertThrowsError(try ConfigJSONParser.parse(Array(bad.utf8)), bad)
        }
    }
}
