import Foundation
import JSONRPC

/// The gateway's copy of one incremental order book channel (SPEC §6.4), so that a client
/// joining a channel others already hold gets a snapshot consistent with the next change.
///
///     snapshot(change_id: 10) ─▶ change(prev 10, id 11) ─▶ change(prev 11, id 12) ─▶ …
///
/// A change whose `prev_change_id` is not the last `change_id` is a gap: the book is
/// invalid until the upstream sends a fresh snapshot.
final class OrderBook {
    enum Verdict { case forward, drop, gap }

    private(set) var isValid = false
    private var bids: [Double: Double] = [:]
    private var asks: [Double: Double] = [:]
    private(set) var changeID: Int64 = 0
    private var timestamp: Int64 = 0
    private var instrument = ""

    /// `book.{instrument}.{interval}`; grouped books (`book.{i}.{group}.{depth}.{interval}`) are
    /// full snapshots every time and need no copy.
    static func isIncrementalBookChannel(_ name: String) -> Bool {
        name.hasPrefix("book.") && name.split(separator: ".", omittingEmptySubsequences: false).count == 3
    }

    func invalidate() {
        isValid = false
        bids = [:]
        asks = [:]
    }

    func apply(notification bytes: [UInt8], scan: JSONRPCScan) -> Verdict {
        guard let params = scan.params,
              let obj = try? JSONSerialization.jsonObject(with: Data(bytes[params])) as? [String: Any],
              let data = obj["data"] as? [String: Any],
              let change = (data["change_id"] as? NSNumber)?.int64Value
        else { return isValid ? .forward : .drop }
        let type = data["type"] as? String ?? "change"
        if type == "snapshot" {
            bids = [:]
            asks = [:]
            apply(levels: data["bids"], to: &bids)
            apply(levels: data["asks"], to: &asks)
            changeID = change
            timestamp = (data["timestamp"] as? NSNumber)?.int64Value ?? 0
            instrument = data["instrument_name"] as? String ?? instrument
            isValid = true
            return .forward
        }
        guard isValid else { return .drop }
        let prev = (data["prev_change_id"] as? NSNumber)?.int64Value
        guard prev == changeID else {
            invalidate()
            return .gap
        }
        apply(levels: data["bids"], to: &bids)
        apply(levels: data["asks"], to: &asks)
        changeID = change
        timestamp = (data["timestamp"] as? NSNumber)?.int64Value ?? timestamp
        return .forward
    }

    private func apply(levels: Any?, to side: inout [Double: Double]) {
        guard let levels = levels as? [[Any]] else { return }
        for level in levels {
            // Deribit: ["new" | "change" | "delete", price, amount]
            guard level.count >= 3, let action = level[0] as? String,
                  let price = (level[1] as? NSNumber)?.doubleValue,
                  let amount = (level[2] as? NSNumber)?.doubleValue
            else { continue }
            if action == "delete" || amount == 0 {
                side[price] = nil
            } else {
                side[price] = amount
            }
        }
    }

    /// A Deribit-shaped snapshot notification of the current state.
    func snapshotNotification(channel: String) -> [UInt8] {
        func levels(_ side: [Double: Double], descending: Bool) -> String {
            let keys = side.keys.sorted(by: descending ? (>) : (<))
            return "[" + keys.map { "[\"new\",\(Self.number($0)),\(Self.number(side[$0]!))]" }.joined(separator: ",") + "]"
        }
        let data = "{\"type\":\"snapshot\",\"timestamp\":\(timestamp),\"instrument_name\":\(String(decoding: JSONRPCWire.quoted(instrument), as: UTF8.self)),\"change_id\":\(changeID),\"bids\":\(levels(bids, descending: true)),\"asks\":\(levels(asks, descending: false))}"
        let params = "{\"channel\":\(String(decoding: JSONRPCWire.quoted(channel), as: UTF8.self)),\"data\":\(data)}"
        return JSONRPCWire.notification(method: "subscription", paramsJSON: Array(params.utf8))
    }

    static func number(_ d: Double) -> String {
        if d == d.rounded(), abs(d) < 1e15 { return String(format: "%.1f", d) }
        return String(d)
    }
}
