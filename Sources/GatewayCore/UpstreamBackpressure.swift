/// SPEC §8 backpressure on the shared upstream: when the upstream socket stops draining, client
/// reads pause instead of queueing without bound, and resume once it has drained.
package struct UpstreamBackpressure: Sendable {
    package enum Action: Sendable, Equatable {
        case none
        /// Stop reading every client.
        case pauseClients
        /// Read every client again.
        case resumeClients
    }

    /// Unsent bytes to the upstream above which client reads pause.
    package static let highWatermark = 4 << 20

    package private(set) var clientsPaused = false

    package init() {}

    /// A request was queued to the upstream, which now holds `buffered` unsent bytes.
    package mutating func wrote(buffered: Int) -> Action {
        guard buffered > Self.highWatermark, !clientsPaused else { return .none }
        clientsPaused = true
        return .pauseClients
    }

    /// The upstream's backlog drained (or the connection went away).
    package mutating func drained() -> Action {
        guard clientsPaused else { return .none }
        clientsPaused = false
        return .resumeClients
    }
}
