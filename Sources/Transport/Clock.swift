// The clocks of the whole package: timers and latencies on the monotonic clock, Deribit's
// wall-clock fields (`usIn`, `usOut`, timestamps) on the real-time one. `@inlinable` because
// the event loop and the load generator read the clock on every event.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Monotonic time in nanoseconds (CLOCK_MONOTONIC): for deadlines and durations.
@inlinable
public func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// Wall-clock microseconds since the Unix epoch (Deribit's `usIn`/`usOut`).
@inlinable
public func wallMicros() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return UInt64(ts.tv_sec) * 1_000_000 + UInt64(ts.tv_nsec) / 1000
}

/// Wall-clock milliseconds since the Unix epoch (Deribit's timestamps).
@inlinable
public func wallMillis() -> UInt64 { wallMicros() / 1000 }
