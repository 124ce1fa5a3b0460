import Foundation

/// Where the gateway listens: `HOST:PORT` with HOST an IPv4 address, `localhost`,
/// or a bracketed IPv6 address (`[::1]:8777`).
public struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
    public enum Family: Sendable, Equatable {
        case ipv4
        case ipv6
        /// `localhost`: the transport binds the IPv4 loopback.
        case localhost
    }

    /// The host without brackets (`127.0.0.1`, `::1`, `localhost`).
    public var host: String
    /// 0 asks the kernel for a free port (tests); the bound port is printed at start.
    public var port: UInt16
    public var family: Family

    public init(host: String, port: UInt16, family: Family) {
        self.host = host
        self.port = port
        self.family = family
    }

    public static let defaultAddress = ListenAddress(host: "127.0.0.1", port: 8777, family: .ipv4)

    /// True for 127.0.0.0/8, `::1`, IPv4-mapped 127.0.0.0/8 and `localhost` (SPEC §4: any other
    /// address needs configured clients and `anonymous_scope` none or public).
    public var isLoopback: Bool {
        switch family {
        case .localhost:
            return true
        case .ipv4:
            return Self.ipv4Bytes(host)?.first == 127
        case .ipv6:
            guard let bytes = Self.ipv6Bytes(host) else { return false }
            if bytes == [UInt8](repeating: 0, count: 15) + [1] { return true }
            // ::ffff:127.x.y.z
            return bytes[0..<10].allSatisfy { $0 == 0 } && bytes[10] == 0xFF && bytes[11] == 0xFF && bytes[12] == 127
        }
    }

    /// `HOST:PORT`, with brackets around an IPv6 host.
    public var description: String {
        family == .ipv6 ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// Parses `HOST:PORT`; the error is the problem text without a key path.
    public static func parse(_ text: String) -> Result<ListenAddress, ConfigProblem> {
        let host: String
        let portText: Substring
        let family: Family
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else {
                return .failure(ConfigProblem("expected HOST:PORT, got \"\(text)\" (unterminated '[')"))
            }
            host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            guard rest.first == ":" else {
                return .failure(ConfigProblem("expected HOST:PORT, got \"\(text)\" (missing ':PORT')"))
            }
            portText = rest.dropFirst()
            guard ipv6Bytes(host) != nil else {
                return .failure(ConfigProblem("\"\(host)\" is not an IPv6 address"))
            }
            family = .ipv6
        } else {
            guard let colon = text.lastIndex(of: ":") else {
                return .failure(ConfigProblem("expected HOST:PORT, got \"\(text)\""))
            }
            host = String(text[..<colon])
            portText = text[text.index(after: colon)...]
            if host.contains(":") {
                return .failure(ConfigProblem("an IPv6 host must be in brackets, as in [::1]:8777"))
            } else if host == "localhost" {
                family = .localhost
            } else if ipv4Bytes(host) != nil {
                family = .ipv4
            } else {
                return .failure(ConfigProblem(
                    "host \"\(host)\" must be an IPv4 address, localhost or a bracketed IPv6 address"))
            }
        }
        guard !portText.isEmpty, portText.allSatisfy(\.isASCII), portText.allSatisfy(\.isNumber),
              let port = Int(portText)
        else {
            return .failure(ConfigProblem("port \"\(portText)\" is not a number"))
        }
        // Port 0 asks the kernel for a free port; the bound port is logged and printed.
        guard (0...65_535).contains(port) else {
            return .failure(ConfigProblem("port \(port) out of range 0-65535"))
        }
        return .success(ListenAddress(host: host, port: UInt16(port), family: family))
    }

    static func ipv4Bytes(_ text: String) -> [UInt8]? {
        var address = in_addr()
        guard inet_pton(AF_INET, text, &address) == 1 else { return nil }
        return withUnsafeBytes(of: &address) { Array($0) }
    }

    static func ipv6Bytes(_ text: String) -> [UInt8]? {
        var address = in6_addr()
        guard inet_pton(AF_INET6, text, &address) == 1 else { return nil }
        return withUnsafeBytes(of: &address) { Array($0) }
    }
}

/// The upstream WebSocket URL: `ws://` or `wss://` (TLS), a host, an optional port
/// and a path (`/ws/api/v2` on Deribit).
public struct UpstreamURL: Sendable, Equatable, CustomStringConvertible {
    /// The URL as configured.
    public var text: String
    /// `wss`: connect with TLS, verifying the certificate for `host`.
    public var isTLS: Bool
    /// The host without brackets, as used for DNS, SNI and certificate verification.
    public var host: String
    public var port: UInt16
    /// Path and query sent in the HTTP upgrade request, `/` when the URL has none.
    public var requestTarget: String

    public init(text: String, isTLS: Bool, host: String, port: UInt16, requestTarget: String) {
        self.text = text
        self.isTLS = isTLS
        self.host = host
        self.port = port
        self.requestTarget = requestTarget
    }

    public static let defaultURL = UpstreamURL(
        text: "wss://test.deribit.com/ws/api/v2", isTLS: true, host: "test.deribit.com", port: 443,
        requestTarget: "/ws/api/v2")

    /// The `Host` header value: the host, bracketed if IPv6, with the port unless it is the default.
    public var hostHeader: String {
        let bracketed = host.contains(":") ? "[\(host)]" : host
        return port == (isTLS ? 443 : 80) ? bracketed : "\(bracketed):\(port)"
    }

    public var description: String { text }

    /// Parses `ws[s]://HOST[:PORT][/PATH][?QUERY]` (RFC 6455 §3); the error is the
    /// problem text without a key path.
    public static func parse(_ text: String) -> Result<UpstreamURL, ConfigProblem> {
        guard let schemeEnd = text.range(of: "://") else {
            return .failure(ConfigProblem("\"\(text)\" is not a URL (expected ws://HOST/PATH or wss://HOST/PATH)"))
        }
        let scheme = text[..<schemeEnd.lowerBound].lowercased()
        let isTLS: Bool
        switch scheme {
        case "wss": isTLS = true
        case "ws": isTLS = false
        default: return .failure(ConfigProblem("scheme must be ws or wss, got \"\(scheme)\""))
        }
        // RFC 6455 §3: fragment identifiers are meaningless for WebSocket URIs.
        if text.contains("#") {
            return .failure(ConfigProblem("a WebSocket URL must not have a fragment"))
        }
        if text.contains(where: { $0.isWhitespace }) {
            return .failure(ConfigProblem("a URL must not contain whitespace"))
        }
        let afterScheme = text[schemeEnd.upperBound...]
        let authorityEnd = afterScheme.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? afterScheme.endIndex
        let authority = afterScheme[..<authorityEnd]
        var requestTarget = String(afterScheme[authorityEnd...])
        if requestTarget.isEmpty {
            requestTarget = "/"
        } else if requestTarget.hasPrefix("?") {
            requestTarget = "/" + requestTarget
        }
        if authority.contains("@") {
            return .failure(ConfigProblem("credentials in the URL are not supported; use client_id and client_secret"))
        }
        var host: Substring
        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else {
                return .failure(ConfigProblem("unterminated '[' in the host"))
            }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let rest = authority[authority.index(after: close)...]
            if rest.first == ":" {
                portText = rest.dropFirst()
            } else if !rest.isEmpty {
                return .failure(ConfigProblem("unexpected \"\(rest)\" after the host"))
            }
            guard ListenAddress.ipv6Bytes(String(host)) != nil else {
                return .failure(ConfigProblem("\"\(host)\" is not an IPv6 address"))
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            portText = authority[authority.index(after: colon)...]
        } else {
            host = authority
        }
        guard !host.isEmpty else {
            return .failure(ConfigProblem("URL has no host"))
        }
        var port: UInt16 = isTLS ? 443 : 80
        if let portText {
            guard !portText.isEmpty, portText.allSatisfy(\.isASCII), portText.allSatisfy(\.isNumber),
                  let value = Int(portText)
            else {
                return .failure(ConfigProblem("port \"\(portText)\" is not a number"))
            }
            guard (1...65_535).contains(value) else {
                return .failure(ConfigProblem("port \(value) out of range 1-65535"))
            }
            port = UInt16(value)
        }
        return .success(UpstreamURL(
            text: text, isTLS: isTLS, host: String(host).lowercased(), port: port, requestTarget: requestTarget))
    }
}
