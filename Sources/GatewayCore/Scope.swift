/// What a client may do through the gateway (SPEC §6.3), ordered so that a
/// scope covers every scope below it: `public < read < trade < full`.
///
/// A method needs a scope: `public/…` needs `public`; a Deribit `*:read` scope needs
/// `read`; `trade:read_write` and `block_trade:read_write` need `trade`;
/// `account:read_write`, `wallet:read_write` and anything unclassified need `full`.
/// `none` is only valid for `anonymous_scope`: unauthenticated clients may then do
/// nothing but authenticate.
public enum Scope: Int, Comparable, CaseIterable, Sendable, CustomStringConvertible {
    case none = 0
    case `public` = 1
    case read = 2
    case trade = 3
    case full = 4

    /// The scopes a configured client may have (`none` is for `anonymous_scope` only).
    public static let clientScopes: [Scope] = [.public, .read, .trade, .full]

    /// Parses the configuration name (`"none"`, `"public"`, `"read"`, `"trade"`, `"full"`).
    public init?(name: String) {
        guard let scope = Scope.allCases.first(where: { $0.name == name }) else { return nil }
        self = scope
    }

    /// The name used in the configuration file and in logs.
    public var name: String {
        switch self {
        case .none: return "none"
        case .public: return "public"
        case .read: return "read"
        case .trade: return "trade"
        case .full: return "full"
        }
    }

    public var description: String { name }

    /// True when this scope allows what `required` allows.
    public func covers(_ required: Scope) -> Bool { self >= required }

    public static func < (lhs: Scope, rhs: Scope) -> Bool { lhs.rawValue < rhs.rawValue }
}
