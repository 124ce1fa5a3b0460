import XCTest
@testable import JSONRPC

func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

/// The text of `range` in `b`, for readable assertions.
func text(_ b: [UInt8], _ range: Range<Int>?) -> String? {
    range.map { String(decoding: b[$0], as: UTF8.self) }
}

func scanOrFail(_ s: String, file: StaticString = #filePath, line: UInt = #line) -> ([UInt8], JSONRPCScan) {
    let b = bytes(s)
    do {
        return (b, try JSONRPCScanner.scan(b))
    } catch {
        XCTFail("scan failed with \(error): \(s)", file: file, line: line)
        return (b, JSONRPCScan())
    }
}

func scanError(_ b: [UInt8]) -> JSONRPCScanError? {
    do {
        _ = try JSONRPCScanner.scan(b)
        return nil
    } catch {
        return error
    }
}

func scanError(_ s: String) -> JSONRPCScanError? { scanError(bytes(s)) }

/// Deterministic PRNG for mutation tests (SplitMix64).
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
