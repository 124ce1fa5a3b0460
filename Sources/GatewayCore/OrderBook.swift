import JSONRPC

/// The gateway's copy of one incremental order book channel (SPEC §6.4), so that a client
/// joining a channel others already hold gets a snapshot consistent with the next change.
///
///     snapshot(change_id: 10) ─▶ change(prev 10, id 11) ─▶ change(prev 11, id 12) ─▶ …
///
/// A change whose `prev_change_id` is not the last `change_id` is a gap: the book is
/// invalid until the upstream sends a fresh snapshot.
package final class OrderBook {
    package enum Verdict { case forward, drop, gap }

    package private(set) var isValid = false
    private var bids: [Double: Double] = [:]
    private var asks: [Double: Double] = [:]
    package private(set) var changeID: Int64 = 0
    private var timestamp: Int64 = 0
    private var instrument = ""
    private var renderedSnapshot: (changeID: Int64, channel: String, bytes: [UInt8])?

    package init() {}

    /// `book.{instrument}.{interval}`; grouped books (`book.{i}.{group}.{depth}.{interval}`) are
    /// full snapshots every time and need no copy.
    package static func isIncrementalBookChannel(_ name: String) -> Bool {
        name.hasPrefix("book.") && name.split(separator: ".", omittingEmptySubsequences: false).count == 3
    }

    package func invalidate() {
        isValid = false
        renderedSnapshot = nil
        bids = [:]
        asks = [:]
    }

    package func apply(notification bytes: [UInt8], scan: JSONRPCScan) -> Verdict {
        // Read in place: the scanner validated the message; only `data`'s own members are read.
        guard let params = scan.params,
              let data = JSONObjectReader.member("data", inObject: params, of: bytes),
              let changeRange = JSONObjectReader.member("change_id", inObject: data, of: bytes),
              let change = Self.int64(bytes, changeRange)
        else { return isValid ? .forward : .drop }
        let typeRange = JSONObjectReader.member("type", inObject: data, of: bytes)
        let isSnapshot = typeRange.map { bytes[$0].elementsEqual("\"snapshot\"".utf8) } ?? false
        if isSnapshot {
            bids = [:]
            asks = [:]
            applyLevels(bytes, JSONObjectReader.member("bids", inObject: data, of: bytes), to: &bids)
            applyLevels(bytes, JSONObjectReader.member("asks", inObject: data, of: bytes), to: &asks)
            changeID = change
            timestamp = JSONObjectReader.member("timestamp", inObject: data, of: bytes).flatMap { Self.int64(bytes, $0) } ?? 0
            if let r = JSONObjectReader.member("instrument_name", inObject: data, of: bytes), let name = JSONScalar.string(bytes, r) {
                instrument = name
            }
            isValid = true
            renderedSnapshot = nil
            return .forward
        }
        guard isValid else { return .drop }
        let prev = JSONObjectReader.member("prev_change_id", inObject: data, of: bytes).flatMap { Self.int64(bytes, $0) }
        guard prev == changeID else {
            invalidate()
            return .gap
        }
        applyLevels(bytes, JSONObjectReader.member("bids", inObject: data, of: bytes), to: &bids)
        applyLevels(bytes, JSONObjectReader.member("asks", inObject: data, of: bytes), to: &asks)
        changeID = change
        timestamp = JSONObjectReader.member("timestamp", inObject: data, of: bytes).flatMap { Self.int64(bytes, $0) } ?? timestamp
        renderedSnapshot = nil
        return .forward
    }

    static func int64(_ bytes: [UInt8], _ range: Range<Int>) -> Int64? {
        JSONScalar.uint64(bytes, range).flatMap { Int64(exactly: $0) }
    }

    /// Applies `[["new"|"change"|"delete", price, amount], …]` read in place from a valid array.
    private func applyLevels(_ bytes: [UInt8], _ range: Range<Int>?, to side: inout [Double: Double]) {
        guard let range else { return }
        bytes.withUnsafeBufferPointer { buf in
            var i = range.lowerBound + 1  // past the outer '['
            let end = range.upperBound - 1
            // Moves `i` to the next `c` inside the array; false when the array ends first.
            func seek(_ c: Character) -> Bool {
                let b = c.asciiValue!
                while i < end && buf[i] != b { i += 1 }
                return i < end
            }
            while i < end {
                // A level: '[' "action" ',' price ',' amount ']'
                guard seek("["), seek("\"") else { return }
                let action = buf[i + 1]  // n(ew), c(hange), d(elete)
                i += 1
                guard seek("\"") else { return }
                i += 1
                guard seek(",") else { return }
                let (price, afterPrice) = Self.number(buf, from: i + 1, end: end)
                i = afterPrice
                guard seek(",") else { return }
                let (amount, afterAmount) = Self.number(buf, from: i + 1, end: end)
                i = afterAmount
                guard seek("]") else { return }
                i += 1
                if action == UInt8(ascii: "d") || amount == 0 {
                    side[price] = nil
                } else {
                    side[price] = amount
                }
            }
        }
    }

    /// Parses a JSON number at `from` (after optional whitespace); the scanner validated the
    /// message, so the number ends at the first byte that cannot be part of one. Prices and
    /// amounts are short: the String is a small (inline) one and costs no allocation.
    private static func number(_ buf: UnsafeBufferPointer<UInt8>, from: Int, end: Int) -> (Double, Int) {
        var i = from
        while i < end && buf[i] == UInt8(ascii: " ") { i += 1 }
        let start = i
        while i < end {
            switch buf[i] {
            case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "+"), UInt8(ascii: "."),
                 UInt8(ascii: "e"), UInt8(ascii: "E"):
                i += 1
            default:
                return (Double(String(decoding: UnsafeBufferPointer(rebasing: buf[start..<i]), as: UTF8.self)) ?? 0, max(i, start + 1))
            }
        }
        return (Double(String(decoding: UnsafeBufferPointer(rebasing: buf[start..<i]), as: UTF8.self)) ?? 0, max(i, start + 1))
    }

    /// A Deribit-shaped snapshot notification of the current state.
    package func snapshotNotification(channel: String) -> [UInt8] {
        // Rendered once per change: several clients joining between two changes share it.
        if let cached = renderedSnapshot, cached.changeID == changeID, cached.channel == channel { return cached.bytes }
        let bytes = renderSnapshot(channel: channel)
        renderedSnapshot = (changeID, channel, bytes)
        return bytes
    }

    private func renderSnapshot(channel: String) -> [UInt8] {
        func levels(_ side: [Double: Double], descending: Bool) -> String {
            let keys = side.keys.sorted(by: descending ? (>) : (<))
            return "[" + keys.map { "[\"new\",\(Self.number($0)),\(Self.number(side[$0]!))]" }.joined(separator: ",") + "]"
        }
        let data = "{\"type\":\"snapshot\",\"timestamp\":\(timestamp),\"instrument_name\":\(String(decoding: JSONRPCWire.quoted(instrument), as: UTF8.self)),\"change_id\":\(changeID),\"bids\":\(levels(bids, descending: true)),\"asks\":\(levels(asks, descending: false))}"
        let params = "{\"channel\":\(String(decoding: JSONRPCWire.quoted(channel), as: UTF8.self)),\"data\":\(data)}"
        return JSONRPCWire.notification(method: "subscription", paramsJSON: Array(params.utf8))
    }

    static func number(_ d: Double) -> String {
        if d == d.rounded(), abs(d) < 1e15 { return JSONValue.fixed(d, decimals: 1) }
        return String(d)
    }
}
