/// A log-linear latency histogram in the manner of HdrHistogram: values below 2,048 ns are
/// counted exactly; above, each power-of-two range is split into 1,024 equal buckets, so any
/// recorded value is known to within 0.1 %. Fixed size (about 250 KB), no allocation when
/// recording, mergeable. Values are nanoseconds.
struct Histogram {
    private static let subBits = 10  // 1,024 buckets per power of two
    private static let linear = 2 << subBits  // 2,048 exact values
    private static let maxExponent = 40  // values up to 2^51 ns: days

    private var counts: [UInt64]
    private(set) var total: UInt64 = 0
    private(set) var max: UInt64 = 0
    private(set) var min: UInt64 = .max
    private var sum: Double = 0

    init() {
        counts = [UInt64](repeating: 0, count: Self.linear + Self.maxExponent << Self.subBits)
    }

    @inline(__always)
    private static func index(_ v: UInt64) -> Int {
        if v < UInt64(linear) { return Int(v) }
        let exponent = (63 - v.leadingZeroBitCount) - subBits  // v >> exponent in [1024, 2047]
        let sub = Int(v >> UInt64(exponent)) - (1 << subBits)
        return Swift.min(linear + (exponent - 1) << subBits + sub, linear + maxExponent << subBits - 1)
    }

    /// The middle of the value range counted at `index`.
    private static func value(at index: Int) -> UInt64 {
        if index < linear { return UInt64(index) }
        let exponent = (index - linear) >> subBits + 1
        let sub = UInt64((index - linear) & ((1 << subBits) - 1) + (1 << subBits))
        return sub << UInt64(exponent) + (UInt64(1) << UInt64(exponent)) / 2
    }

    @inline(__always)
    mutating func record(_ v: UInt64) {
        counts[Self.index(v)] &+= 1
        total &+= 1
        sum += Double(v)
        if v > max { max = v }
        if v < min { min = v }
    }

    mutating func merge(_ other: Histogram) {
        for i in counts.indices where other.counts[i] != 0 { counts[i] &+= other.counts[i] }
        total &+= other.total
        sum += other.sum
        max = Swift.max(max, other.max)
        min = Swift.min(min, other.min)
    }

    /// The value at quantile `q` (0...1): the smallest recorded value with at least q of the
    /// population at or below it. The maximum is exact.
    func value(atQuantile q: Double) -> UInt64 {
        guard total > 0 else { return 0 }
        if q >= 1 { return max }
        let rank = Swift.max(1, UInt64((q * Double(total)).rounded(.up)))
        var seen: UInt64 = 0
        for i in counts.indices where counts[i] != 0 {
            seen += counts[i]
            if seen >= rank { return Swift.min(Self.value(at: i), max) }
        }
        return max
    }

    var mean: Double { total == 0 ? 0 : sum / Double(total) }
}
