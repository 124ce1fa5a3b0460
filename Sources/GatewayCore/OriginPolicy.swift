/// Which browser-originated requests may reach the gateway (SPEC §4 `allowed_origins`): the
/// WebSocket upgrade and the HTTP API alike, so that no web page on the host reaches either.
///
/// Strategies and curl send neither `Origin` nor `Sec-Fetch-Site`. A browser sends `Origin` on
/// every cross-site POST (a `text/plain` one needs no CORS preflight) and on WebSocket upgrades,
/// and `Sec-Fetch-Site` on every request, `<img src>` GETs included.
package struct OriginPolicy: Sendable {
    private let allowed: Set<String>

    package init(allowed: [String]) {
        self.allowed = Set(allowed.compactMap(Self.normalize))
    }

    /// Whether a request with these headers may go on.
    package func admits(origin: String?, fetchSite: String?) -> Bool {
        if let origin {
            return Self.normalize(origin).map(allowed.contains) ?? false
        }
        // No Origin: only a request the browser says it made for the page itself, or for the
        // user (typed in the address bar), or one from outside any browser.
        guard let site = fetchSite?.lowercased() else { return true }
        return site == "same-origin" || site == "none"
    }

    /// An origin as RFC 6454 §4–5 compares it: scheme and host lowercased, the scheme's default
    /// port dropped. Nil for anything that is not `scheme://host[:port]` (`null` included).
    package static func normalize(_ origin: String) -> String? {
        let text = origin.trimmingSpaces
        guard let sep = text.firstRange(of: "://") else { return nil }
        let scheme = text[..<sep.lowerBound].lowercased()
        var rest = Substring(text[sep.upperBound...])
        guard !scheme.isEmpty, !rest.isEmpty, !rest.contains("/"), !rest.contains("@") else { return nil }
        var port: Int?
        if let colon = rest.lastIndex(of: ":"), !rest[colon...].contains("]") {
            guard let p = Int(rest[rest.index(after: colon)...]), (0...65535).contains(p) else { return nil }
            port = p
            rest = rest[..<colon]
        }
        guard !rest.isEmpty else { return nil }
        let defaultPort = ["http": 80, "https": 443, "ws": 80, "wss": 443][scheme]
        let host = rest.lowercased()
        if let port, port != defaultPort { return "\(scheme)://\(host):\(port)" }
        return "\(scheme)://\(host)"
    }
}

extension String {
    fileprivate var trimmingSpaces: String {
        var s = Substring(self)
        while s.first == " " || s.first == "\t" { s = s.dropFirst() }
        while s.last == " " || s.last == "\t" { s = s.dropLast() }
        return String(s)
    }
}
