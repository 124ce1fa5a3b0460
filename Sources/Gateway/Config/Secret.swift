/// A secret from the configuration (a client's gateway secret, the upstream API
/// client secret). Its `description`, `debugDescription` and mirror are redacted,
/// so printing, interpolating or `dump`ing a configuration never shows it
/// (SPEC §3: logs never contain a secret).
public struct Secret: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The secret itself. Read it only to send it upstream or to compare it.
    public let revealed: String

    public init(_ value: String) {
        self.revealed = value
    }

    /// Compares with a candidate in time independent of where the first difference
    /// lies, so a client cannot guess a secret byte by byte from response times.
    public func matches<S: StringProtocol>(_ candidate: S) -> Bool {
        let expected = Array(revealed.utf8)
        let given = Array(candidate.utf8)
        var difference = UInt8(truncatingIfNeeded: expected.count ^ given.count)
        difference |= UInt8(truncatingIfNeeded: (expected.count ^ given.count) >> 8)
        for position in 0..<given.count {
            let reference = expected.isEmpty ? 0 : expected[position % expected.count]
            difference |= reference ^ given[position]
        }
        return difference == 0 && expected.count == given.count
    }

    public var description: String { "<redacted>" }
    public var debugDescription: String { "<redacted>" }
    public var customMirror: Mirror { Mirror(self, children: [], displayStyle: .struct) }
}
