@testable import GatewayCore
import JSONRPC
import XCTest

/// The core's clock is a parameter: these make a deadline one line of test code.
let second: Nanos = 1_000_000_000
let millisecond: Nanos = 1_000_000

/// An upstream answer as the runtime hands it to the core: the bytes and their scan.
func upstreamResponse(_ json: String) throws -> UpstreamOutcome {
    let bytes = Array(json.utf8)
    return .response(bytes: bytes, scan: try JSONRPCScanner.scan(bytes))
}

/// Bytes as text, for assertions that read like the wire.
func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

/// A client of the slot table.
func client(_ slot: Int, generation: UInt32 = 1) -> ClientID { ClientID(slot: slot, generation: generation) }
