import Foundation
import Transport

/// Every problem found in a configuration, each naming its key path
/// (`upstream.credits.max: expected an integer, got string`). The loader reports
/// all problems at once so an operator fixes a file in one pass.
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    public var problems: [String]

    public init(problems: [String]) {
        self.problems = problems
    }

    public var description: String { problems.joined(separator: "\n") }
}

/// One problem without its key path, as returned by the small parsers
/// (``ListenAddress/parse(_:)``, ``UpstreamURL/parse(_:)``).
public struct ConfigProblem: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}

/// Command-line values that take precedence over the file (SPEC §3). They are
/// validated like the file; their problems are named after the flag.
public struct GatewayConfigOverrides: Sendable, Equatable {
    /// `--listen HOST:PORT`
    public var listen: String?
    /// `--upstream-url URL`
    public var upstreamURL: String?

    public init(listen: String? = nil, upstreamURL: String? = nil) {
        self.listen = listen
        self.upstreamURL = upstreamURL
    }
}

extension GatewayConfig {
    /// Reads, validates and resolves a configuration.
    ///
    /// - Parameters:
    ///   - path: the JSON file; nil means the built-in defaults.
    ///   - environment: where `*_env` keys are looked up (`ProcessInfo.processInfo.environment`).
    ///   - overrides: command-line values, applied over the file before the cross-key checks.
    /// - Throws: every problem found, each naming its key path.
    public static func load(
        path: String?,
        environment: [String: String],
        overrides: GatewayConfigOverrides = GatewayConfigOverrides()
    ) throws(ConfigError) -> GatewayConfig {
        var decoder = ConfigDecoder(environment: environment)
        var config = GatewayConfig()
        if let path {
            switch readFile(path) {
            case .success(let bytes):
                decoder.decodeDocument(bytes, source: path, into: &config)
            case .failure(let problem):
                decoder.problems.append("\(path): \(problem.message)")
            }
        }
        let listenKey = decoder.apply(overrides, to: &config)
        decoder.checkListenPolicy(config, listenKey: listenKey)
        guard decoder.problems.isEmpty else { throw ConfigError(problems: decoder.problems) }
        return config
    }

    /// Validates and resolves a configuration held in memory; `source` names it in
    /// syntax-error messages.
    public static func parse(
        json: some Collection<UInt8>,
        source: String = "config",
        environment: [String: String],
        overrides: GatewayConfigOverrides = GatewayConfigOverrides()
    ) throws(ConfigError) -> GatewayConfig {
        var decoder = ConfigDecoder(environment: environment)
        var config = GatewayConfig()
        decoder.decodeDocument(Array(json), source: source, into: &config)
        let listenKey = decoder.apply(overrides, to: &config)
        decoder.checkListenPolicy(config, listenKey: listenKey)
        guard decoder.problems.isEmpty else { throw ConfigError(problems: decoder.problems) }
        return config
    }

    /// Applies command-line values over this configuration and re-checks the rules
    /// they take part in. On error the configuration is unchanged.
    public mutating func apply(overrides: GatewayConfigOverrides) throws(ConfigError) {
        var decoder = ConfigDecoder(environment: [:])
        var updated = self
        let listenKey = decoder.apply(overrides, to: &updated)
        decoder.checkListenPolicy(updated, listenKey: listenKey)
        guard decoder.problems.isEmpty else { throw ConfigError(problems: decoder.problems) }
        self = updated
    }

    private static func readFile(_ path: String) -> Result<[UInt8], ConfigProblem> {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            return .failure(ConfigProblem("cannot open: \(String(cString: strerror(errno)))"))
        }
        defer { close(descriptor) }
        // A configuration is small; refuse anything absurd rather than read it all.
        let maximumSize = 16 << 20
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count == 0 { return .success(bytes) }
            if count < 0 {
                if errno == EINTR { continue }
                return .failure(ConfigProblem("cannot read: \(String(cString: strerror(errno)))"))
            }
            bytes.append(contentsOf: chunk[0..<count])
            if bytes.count > maximumSize {
                return .failure(ConfigProblem("larger than \(maximumSize) bytes; not a configuration file"))
            }
        }
    }
}

// MARK: - Decoding

/// A dotted key path with array indices: `clients[1].rate_limit.burst`.
struct ConfigKeyPath: CustomStringConvertible {
    var description: String

    static let root = ConfigKeyPath(description: "")

    func key(_ name: String) -> ConfigKeyPath {
        ConfigKeyPath(description: description.isEmpty ? name : "\(description).\(name)")
    }

    func index(_ position: Int) -> ConfigKeyPath {
        ConfigKeyPath(description: "\(description)[\(position)]")
    }
}

/// An object's members after the unknown-key and duplicate-key checks.
struct ConfigObject {
    var path: ConfigKeyPath
    var members: [String: ConfigJSON]

    subscript(key: String) -> ConfigJSON? { members[key] }
    func contains(_ key: String) -> Bool { members[key] != nil }
}

/// Walks the JSON tree, fills a ``GatewayConfig`` and collects every problem.
/// When a value is wrong the default stays in place and decoding goes on, so that
/// later problems are found too; any problem makes the load fail.
struct ConfigDecoder {
    var problems: [String] = []
    let environment: [String: String]
    /// Entries of `clients` in the file, valid or not, so that the listen rule does
    /// not call a list with a broken entry empty.
    var declaredClients = 0

    init(environment: [String: String]) {
        self.environment = environment
    }

    mutating func report(_ path: ConfigKeyPath, _ message: String) {
        problems.append("\(path): \(message)")
    }

    mutating func decodeDocument(_ bytes: [UInt8], source: String, into config: inout GatewayConfig) {
        let document: ConfigJSON
        do {
            document = try ConfigJSONParser.parse(bytes)
        } catch {
            problems.append("\(source): \(error.description)")
            return
        }
        guard case .object = document else {
            problems.append("\(source): expected a JSON object at the top level, got \(document.typeName)")
            return
        }
        decodeRoot(document, into: &config)
    }

    // MARK: Objects

    mutating func decodeRoot(_ value: ConfigJSON, into config: inout GatewayConfig) {
        guard let root = object(value, at: .root, keys: [
            "listen", "upstream", "clients", "anonymous_scope", "anonymous_limits", "allowed_origins", "limits", "transport", "shutdown",
        ]) else { return }

        if let text = string(root, "listen") {
            switch ListenAddress.parse(text) {
            case .success(let address): config.listen = address
            case .failure(let problem): report(root.path.key("listen"), problem.message)
            }
        }
        if let upstream = root["upstream"] {
            decodeUpstream(upstream, at: root.path.key("upstream"), into: &config.upstream)
        }
        if let clients = root["clients"] {
            config.clients = decodeClients(clients, at: root.path.key("clients"))
        }
        if let name = string(root, "anonymous_scope") {
            if let scope = Scope(name: name) {
                config.anonymousScope = scope
            } else {
                report(root.path.key("anonymous_scope"),
                       "must be one of \(Scope.allCases.map(\.name).joined(separator: ", ")), got \"\(name)\"")
            }
        }
        if let origins = root["allowed_origins"] {
            config.allowedOrigins = decodeOrigins(origins, at: root.path.key("allowed_origins"))
        }
        if let limitsValue = root["limits"],
           let limits = object(limitsValue, at: root.path.key("limits"),
                               keys: ["max_clients", "max_message_bytes", "client_buffer_bytes"]) {
            config.limits.maxClients = integer(limits, "max_clients", default: config.limits.maxClients, minimum: 1)
            config.limits.maxMessageBytes = integer(
                limits, "max_message_bytes", default: config.limits.maxMessageBytes, minimum: 1)
            config.limits.clientBufferBytes = integer(
                limits, "client_buffer_bytes", default: config.limits.clientBufferBytes, minimum: 1)
        }
        if let anonymousValue = root["anonymous_limits"],
           let anonymous = object(anonymousValue, at: root.path.key("anonymous_limits"), keys: ["rate_limit", "total_rate_limit"]) {
            if let v = anonymous["rate_limit"], let limit = decodeRateLimit(v, at: anonymous.path.key("rate_limit")) {
                config.anonymousLimits.rateLimit = limit
            }
            if let v = anonymous["total_rate_limit"], let limit = decodeRateLimit(v, at: anonymous.path.key("total_rate_limit")) {
                config.anonymousLimits.totalRateLimit = limit
            }
        }
        if let shutdownValue = root["shutdown"],
           let shutdown = object(shutdownValue, at: root.path.key("shutdown"), keys: ["cancel_wait_ms"]) {
            config.shutdown.cancelWaitMilliseconds = integer(
                shutdown, "cancel_wait_ms", default: config.shutdown.cancelWaitMilliseconds, minimum: 0)
        }
        if let transportValue = root["transport"],
           let transport = object(transportValue, at: root.path.key("transport"), keys: ["event_loop"]),
           let name = string(transport, "event_loop") {
            if let kind = EventLoopKind(rawValue: name) {
                config.transport.eventLoop = kind
            } else {
                report(transport.path.key("event_loop"),
                       "must be one of \(EventLoopKind.allCases.map(\.rawValue).joined(separator: ", ")), got \"\(name)\"")
            }
        }
    }

    /// `{ "per_s": NUMBER, "burst": INTEGER }`, both required.
    mutating func decodeRateLimit(_ value: ConfigJSON, at path: ConfigKeyPath) -> GatewayConfig.RateLimit? {
        guard let limit = object(value, at: path, keys: ["per_s", "burst"]) else { return nil }
        let perSecond = positiveNumber(limit, "per_s")
        let burst = limit.contains("burst") ? integer(limit, "burst", default: 1, minimum: 1) : nil
        if !limit.contains("burst") {
            report(limit.path.key("burst"), "missing; an integer of at least 1")
        }
        guard let perSecond, let burst else { return nil }
        return GatewayConfig.RateLimit(perSecond: perSecond, burst: burst)
    }

    mutating func decodeUpstream(_ value: ConfigJSON, at path: ConfigKeyPath, into upstream: inout GatewayConfig.Upstream) {
        guard let object = object(value, at: path, keys: [
            "url", "client_id", "client_secret", "client_id_env", "client_secret_env", "heartbeat_interval_s",
            "cancel_on_disconnect", "request_timeout_ms", "reconnect_min_ms", "reconnect_max_ms", "credits",
        ]) else { return }

        if let text = string(object, "url") {
            switch UpstreamURL.parse(text) {
            case .success(let url): upstream.url = url
            case .failure(let problem): report(path.key("url"), problem.message)
            }
        }
        // Deribit: public/set_heartbeat refuses intervals below 10 seconds.
        upstream.heartbeatIntervalSeconds = integer(
            object, "heartbeat_interval_s", default: upstream.heartbeatIntervalSeconds, minimum: 10,
            reason: " (Deribit's minimum heartbeat interval)")
        upstream.cancelOnDisconnect = boolean(object, "cancel_on_disconnect", default: upstream.cancelOnDisconnect)
        upstream.requestTimeoutMilliseconds = integer(
            object, "request_timeout_ms", default: upstream.requestTimeoutMilliseconds, minimum: 1)
        let minimumDelay = integer(object, "reconnect_min_ms", default: upstream.reconnectMinMilliseconds, minimum: 1)
        let maximumDelay = integer(object, "reconnect_max_ms", default: upstream.reconnectMaxMilliseconds, minimum: 1)
        if minimumDelay > maximumDelay {
            report(path.key("reconnect_min_ms"),
                   "must not exceed reconnect_max_ms (\(minimumDelay) > \(maximumDelay))")
        }
        upstream.reconnectMinMilliseconds = minimumDelay
        upstream.reconnectMaxMilliseconds = maximumDelay

        if let creditsValue = object["credits"] {
            decodeCredits(creditsValue, at: path.key("credits"), into: &upstream.credits)
        }

        // SPEC §4: each credential is a literal or an environment variable; neither
        // credential means public-only mode, only one of the two is an error.
        upstream.clientIDEnv = environmentName(object, "client_id_env")
        upstream.clientSecretEnv = environmentName(object, "client_secret_env")
        let clientID = credential(object, literal: "client_id", variable: "client_id_env", name: upstream.clientIDEnv)
        let clientSecret = credential(
            object, literal: "client_secret", variable: "client_secret_env", name: upstream.clientSecretEnv)
        switch (clientID, clientSecret) {
        case (.value(let id), .value(let secret)):
            upstream.credentials = GatewayConfig.UpstreamCredentials(clientID: id, clientSecret: Secret(secret))
        case (.value, .absent(let key, let reason)):
            report(path.key(key), "\(reason), but the client ID is set: give both credentials or neither")
        case (.absent(let key, let reason), .value):
            report(path.key(key), "\(reason), but the client secret is set: give both credentials or neither")
        default:
            upstream.credentials = nil
        }
    }

    mutating func decodeCredits(_ value: ConfigJSON, at path: ConfigKeyPath, into credits: inout GatewayConfig.Credits) {
        guard let object = object(value, at: path, keys: [
            "default_cost", "max", "refill_per_s", "subscribe_cost", "subscribe_max",
            "matching_engine_rate", "matching_engine_burst",
        ]) else { return }
        credits.defaultCost = integer(object, "default_cost", default: credits.defaultCost, minimum: 1)
        credits.max = integer(object, "max", default: credits.max, minimum: 1)
        credits.refillPerSecond = integer(object, "refill_per_s", default: credits.refillPerSecond, minimum: 1)
        credits.subscribeCost = integer(object, "subscribe_cost", default: credits.subscribeCost, minimum: 1)
        credits.subscribeMax = integer(object, "subscribe_max", default: credits.subscribeMax, minimum: 1)
        credits.matchingEngineRate = integer(
            object, "matching_engine_rate", default: credits.matchingEngineRate, minimum: 1)
        credits.matchingEngineBurst = integer(
            object, "matching_engine_burst", default: credits.matchingEngineBurst, minimum: 1)
        // A request costing more than the bucket holds could never be sent.
        if credits.defaultCost > credits.max {
            report(path.key("default_cost"), "must not exceed max (\(credits.defaultCost) > \(credits.max))")
        }
        if credits.subscribeCost > credits.subscribeMax {
            report(path.key("subscribe_cost"),
                   "must not exceed subscribe_max (\(credits.subscribeCost) > \(credits.subscribeMax))")
        }
    }

    mutating func decodeClients(_ value: ConfigJSON, at path: ConfigKeyPath) -> [GatewayConfig.Client] {
        guard case .array(let elements) = value else {
            report(path, "expected an array, got \(value.typeName)")
            return []
        }
        declaredClients = elements.count
        var clients: [GatewayConfig.Client] = []
        var firstIndexByName: [String: Int] = [:]
        for (position, element) in elements.enumerated() {
            let elementPath = path.index(position)
            guard let object = object(element, at: elementPath, keys: [
                "name", "secret", "secret_env", "scope", "cancel_on_disconnect", "rate_limit",
            ]) else { continue }

            var name: String?
            if let text = requiredString(object, "name") {
                if let problem = Self.clientNameProblem(text) {
                    report(elementPath.key("name"), problem)
                } else if let first = firstIndexByName[text] {
                    report(elementPath.key("name"), "duplicate client name \"\(text)\" (also \(path.index(first)))")
                } else {
                    firstIndexByName[text] = position
                    name = text
                }
            }

            let secret = clientSecret(object)

            var scope: Scope?
            let scopeChoices = Scope.clientScopes.map(\.name).joined(separator: ", ")
            if !object.contains("scope") {
                report(elementPath.key("scope"), "missing; must be one of \(scopeChoices)")
            } else if let text = string(object, "scope") {
                if let parsed = Scope(name: text), parsed != .none {
                    scope = parsed
                } else {
                    report(elementPath.key("scope"), "must be one of \(scopeChoices), got \"\(text)\"")
                }
            }

            let cancelOnDisconnect = boolean(object, "cancel_on_disconnect", default: false)

            let rateLimit = object["rate_limit"].flatMap { decodeRateLimit($0, at: elementPath.key("rate_limit")) }

            if let name, let secret, let scope {
                clients.append(GatewayConfig.Client(
                    name: name, secret: Secret(secret.value), secretEnv: secret.variable, scope: scope,
                    cancelOnDisconnect: cancelOnDisconnect, rateLimit: rateLimit))
            }
        }
        return clients
    }

    mutating func decodeOrigins(_ value: ConfigJSON, at path: ConfigKeyPath) -> [String] {
        guard case .array(let elements) = value else {
            report(path, "expected an array of strings, got \(value.typeName)")
            return []
        }
        var origins: [String] = []
        for (position, element) in elements.enumerated() {
            guard case .string(let origin) = element else {
                report(path.index(position), "expected a string, got \(element.typeName)")
                continue
            }
            // RFC 6454 §6.2: a serialized origin is scheme "://" host [ ":" port ], nothing more.
            guard let separator = origin.range(of: "://"),
                  !origin[..<separator.lowerBound].isEmpty,
                  origin[..<separator.lowerBound].allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "+-.".contains($0)) }),
                  !origin[separator.upperBound...].isEmpty,
                  !origin[separator.upperBound...].contains(where: { "/?#@".contains($0) || $0.isWhitespace })
            else {
                report(path.index(position), "an origin is scheme://host[:port] with no path, got \"\(origin)\"")
                continue
            }
            origins.append(origin)
        }
        return origins
    }

    // MARK: Overrides and cross-key rules

    /// Applies the command-line values; returns the key that names the listen address
    /// in later problems.
    mutating func apply(_ overrides: GatewayConfigOverrides, to config: inout GatewayConfig) -> ConfigKeyPath {
        var listenKey = ConfigKeyPath.root.key("listen")
        if let text = overrides.listen {
            listenKey = ConfigKeyPath.root.key("--listen")
            switch ListenAddress.parse(text) {
            case .success(let address): config.listen = address
            case .failure(let problem): report(listenKey, problem.message)
            }
        }
        if let text = overrides.upstreamURL {
            switch UpstreamURL.parse(text) {
            case .success(let url): config.upstream.url = url
            case .failure(let problem): report(.root.key("--upstream-url"), problem.message)
            }
        }
        return listenKey
    }

    /// SPEC §4: a non-loopback listener needs configured clients and an anonymous
    /// scope of none or public, so that nothing private is open to the network.
    mutating func checkListenPolicy(_ config: GatewayConfig, listenKey: ConfigKeyPath) {
        guard !config.listen.isLoopback else { return }
        var reasons: [String] = []
        if config.clients.isEmpty && declaredClients == 0 { reasons.append("clients is empty") }
        if config.anonymousScope > .public { reasons.append("anonymous_scope is \(config.anonymousScope)") }
        guard !reasons.isEmpty else { return }
        report(listenKey,
               "non-loopback address \(config.listen) requires configured clients and anonymous_scope none or public "
                   + "(\(reasons.joined(separator: ", ")))")
    }

    // MARK: Secrets

    enum Credential {
        case value(String)
        /// No value; `key` and `reason` say which key would have given it.
        case absent(key: String, reason: String)
        /// Misconfigured; already reported.
        case invalid
    }

    mutating func credential(_ object: ConfigObject, literal: String, variable: String, name: String?) -> Credential {
        if object.contains(literal) && object.contains(variable) {
            report(object.path.key(literal), "set either \(literal) or \(variable), not both")
            return .invalid
        }
        if object.contains(literal) {
            guard let value = string(object, literal) else { return .invalid }
            if value.isEmpty {
                report(object.path.key(literal), "must not be empty")
            }
            return .value(value)
        }
        if object.contains(variable) && name == nil {
            return .invalid
        }
        if let name {
            // An empty variable counts as unset: a blank credential is never meant.
            guard let value = environment[name], !value.isEmpty else {
                return .absent(key: variable, reason: "environment variable \(name) is not set")
            }
            return .value(value)
        }
        return .absent(key: literal, reason: "missing (set \(literal) or \(variable))")
    }

    mutating func clientSecret(_ object: ConfigObject) -> (value: String, variable: String?)? {
        switch (object.contains("secret"), object.contains("secret_env")) {
        case (true, true):
            report(object.path, "set exactly one of secret and secret_env, not both")
            return nil
        case (false, false):
            report(object.path, "set exactly one of secret and secret_env (neither is set)")
            return nil
        case (true, false):
            guard let value = string(object, "secret") else { return nil }
            guard !value.isEmpty else {
                report(object.path.key("secret"), "must not be empty")
                return nil
            }
            return (value, nil)
        case (false, true):
            guard let name = environmentName(object, "secret_env") else { return nil }
            guard let value = environment[name] else {
                report(object.path.key("secret_env"), "environment variable \(name) is not set")
                return nil
            }
            guard !value.isEmpty else {
                report(object.path.key("secret_env"), "environment variable \(name) is empty")
                return nil
            }
            return (value, name)
        }
    }

    /// A key naming an environment variable: a POSIX name (letters, digits, `_`, not starting with a digit).
    mutating func environmentName(_ object: ConfigObject, _ key: String) -> String? {
        guard let name = string(object, key) else { return nil }
        let valid = !name.isEmpty && name.unicodeScalars.allSatisfy {
            ($0.isASCII && ($0.properties.isAlphabetic || $0 == "_")) || ("0"..."9").contains($0)
        } && !("0"..."9").contains(name.unicodeScalars.first!)
        guard valid else {
            report(object.path.key(key), "\"\(name)\" is not a valid environment variable name")
            return nil
        }
        return name
    }

    static func clientNameProblem(_ name: String) -> String? {
        // The name is a metrics label value and a log field: keep it short and plain.
        if name.isEmpty { return "must not be empty" }
        if name.count > 64 { return "must be at most 64 characters" }
        if !name.unicodeScalars.allSatisfy({ $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "._-".unicodeScalars.contains($0)) }) {
            return "\"\(name)\" may contain only letters, digits, '.', '_' and '-'"
        }
        // Unauthenticated clients are labelled `anonymous` in /metrics.
        if name == "anonymous" { return "\"anonymous\" is reserved for unauthenticated clients" }
        return nil
    }

    // MARK: Typed fields

    /// Checks that `value` is an object whose keys are all in `keys` and appear once.
    mutating func object(_ value: ConfigJSON, at path: ConfigKeyPath, keys: [String]) -> ConfigObject? {
        guard case .object(let members) = value else {
            report(path, "expected an object, got \(value.typeName)")
            return nil
        }
        var result: [String: ConfigJSON] = [:]
        for (key, member) in members {
            if !keys.contains(key) {
                report(path.key(key), "unknown key" + Self.suggestion(for: key, among: keys))
            } else if result[key] != nil {
                report(path.key(key), "duplicate key")
            } else {
                result[key] = member
            }
        }
        return ConfigObject(path: path, members: result)
    }

    mutating func integer(_ object: ConfigObject, _ key: String, default defaultValue: Int, minimum: Int, reason: String = "") -> Int {
        guard let value = object[key] else { return defaultValue }
        guard case .integer(let number) = value else {
            if case .number(let double, _) = value, double == double.rounded(.towardZero), abs(double) >= 0x1p63 {
                report(object.path.key(key), "\(Self.describe(value)) is too large")
            } else {
                report(object.path.key(key), "expected an integer, got \(value.typeName)")
            }
            return defaultValue
        }
        guard number >= minimum else {
            let bound = minimum == 1 ? "must be greater than 0" : "must be at least \(minimum)"
            report(object.path.key(key), "\(bound)\(reason), got \(number)")
            return defaultValue
        }
        return number
    }

    mutating func positiveNumber(_ object: ConfigObject, _ key: String) -> Double? {
        guard let value = object[key] else {
            report(object.path.key(key), "missing; a number greater than 0")
            return nil
        }
        let number: Double
        switch value {
        case .integer(let integer): number = Double(integer)
        case .number(let double, _): number = double
        default:
            report(object.path.key(key), "expected a number, got \(value.typeName)")
            return nil
        }
        guard number > 0, number.isFinite else {
            report(object.path.key(key), "must be greater than 0, got \(Self.describe(value))")
            return nil
        }
        return number
    }

    mutating func boolean(_ object: ConfigObject, _ key: String, default defaultValue: Bool) -> Bool {
        guard let value = object[key] else { return defaultValue }
        guard case .bool(let flag) = value else {
            report(object.path.key(key), "expected a boolean, got \(value.typeName)")
            return defaultValue
        }
        return flag
    }

    /// The string at `key`; nil when absent or not a string (the latter reported).
    mutating func string(_ object: ConfigObject, _ key: String) -> String? {
        guard let value = object[key] else { return nil }
        guard case .string(let text) = value else {
            report(object.path.key(key), "expected a string, got \(value.typeName)")
            return nil
        }
        return text
    }

    mutating func requiredString(_ object: ConfigObject, _ key: String) -> String? {
        guard object.contains(key) else {
            report(object.path.key(key), "missing; a string is required")
            return nil
        }
        return string(object, key)
    }

    static func describe(_ value: ConfigJSON) -> String {
        switch value {
        case .integer(let number): return String(number)
        case .number(_, let text): return text
        default: return value.typeName
        }
    }

    /// "; did you mean heartbeat_interval_s?" for a key within two edits of a known one.
    static func suggestion(for key: String, among keys: [String]) -> String {
        let scored = keys.map { ($0, editDistance(key, $0)) }.min { $0.1 < $1.1 }
        guard let (best, distance) = scored, distance <= 2 else { return "" }
        return "; did you mean \(best)?"
    }

    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a.utf8), b = Array(b.utf8)
        guard !a.isEmpty else { return b.count }
        guard !b.isEmpty else { return a.count }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...b.count {
                current[j] = Swift.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}
