// Shared by every fuzz target: compiled into each target's single module (scripts/fuzz.sh).

#if canImport(Glibc)
import Glibc
#endif

/// A failed property: print what broke, then abort so libFuzzer saves the input as a crash.
/// `precondition` would do too, but its message is lost when Swift's backtracer is off.
func check(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
           file: StaticString = #fileID, line: UInt = #line) {
    if !condition() {
        let text = "fuzz property violated at \(file):\(line): \(message())\n"
        text.utf8CString.withUnsafeBufferPointer { _ = write(2, $0.baseAddress, $0.count - 1) }
        abort()
    }
}

/// SplitMix64: a deterministic generator, seeded from the input, for the chunk sizes.
struct SplitMix64 {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func next(below bound: Int) -> Int { Int(next() % UInt64(max(bound, 1))) }
}

/// FNV-1a: derives the chunking seed from the input, so that a saved crash replays exactly.
func fnv1a(_ bytes: [UInt8]) -> UInt64 {
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
    return hash
}

/// Ways of cutting a byte stream into the reads a socket could deliver.
enum Chunking: CaseIterable {
    /// Everything in one read.
    case whole
    /// One byte per read: every truncation point.
    case bytewise
    /// Reads of 1 to 64 bytes, sizes drawn from the input's hash.
    case random

    /// The stream cut into reads. `bytewise` only for inputs up to `bytewiseLimit` bytes:
    /// some parsers rescan a partial line on every read, which is quadratic.
    func chunks(of bytes: [UInt8], bytewiseLimit: Int = 2048) -> [ArraySlice<UInt8>]? {
        switch self {
        case .whole:
            return [bytes[...]]
        case .bytewise:
            guard bytes.count <= bytewiseLimit else { return nil }
            return bytes.indices.map { bytes[$0..<($0 + 1)] }
        case .random:
            var rng = SplitMix64(seed: fnv1a(bytes))
            var result: [ArraySlice<UInt8>] = []
            var start = 0
            while start < bytes.count {
                let end = min(bytes.count, start + 1 + rng.next(below: 64))
                result.append(bytes[start..<end])
                start = end
            }
            return result
        }
    }
}
