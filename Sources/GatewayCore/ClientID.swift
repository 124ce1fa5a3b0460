/// A client connection (or one HTTP call) as the core knows it.
///
/// The runtime keeps its sessions in a slot table; an id is the slot plus the generation of
/// its occupant, so an answer for a connection that has gone never reaches the connection
/// that took its slot next:
///
///     63            32 31             0
///     +---------------+---------------+
///     |  generation   |     slot      |
///     +---------------+---------------+
package struct ClientID: Hashable, Comparable, Sendable, CustomStringConvertible {
    package let raw: UInt64

    package init(slot: Int, generation: UInt32) {
        raw = UInt64(generation) << 32 | UInt64(UInt32(truncatingIfNeeded: slot))
    }

    package init(raw: UInt64) { self.raw = raw }

    package var slot: Int { Int(truncatingIfNeeded: raw & 0xffff_ffff) }

    package var description: String { String(raw) }

    package static func < (a: ClientID, b: ClientID) -> Bool { a.raw < b.raw }
}

/// Nanoseconds on the monotonic clock. The core never reads a clock: every event carries `now`.
package typealias Nanos = UInt64

extension UInt64 {
    package static func milliseconds(_ ms: Int) -> UInt64 { UInt64(Swift.max(ms, 0)) * 1_000_000 }
    package static func seconds(_ s: Double) -> UInt64 { UInt64(Swift.max(s, 0) * 1e9) }
}

/// FNV-1a over bytes: the method table and the channel index both hash names with it.
package enum FNV1a {
    @inline(__always)
    package static func hash(_ bytes: some Sequence<UInt8>) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return h
    }

    @inline(__always)
    package static func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return h
    }
}

/// A small deterministic generator (SplitMix64) for backoff jitter: seeded by the runtime,
/// fixed by tests.
package struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    package init(seed: UInt64) { state = seed }

    package mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}
