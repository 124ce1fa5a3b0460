import Foundation
@testable import GatewayCore
import JSONRPC
import XCTest

/// SPEC §6.4: the gateway's copy of an incremental book, read in place from the wire bytes.
final class OrderBookTests: XCTestCase {
    func message(_ data: String, channel: String = "book.BTC-PERPETUAL.100ms") -> ([UInt8], JSONRPCScan) {
        let bytes = Array(#"{"jsonrpc":"2.0","method":"subscription","params":{"channel":"\#(channel)","data":\#(data)}}"#.utf8)
        return (bytes, try! JSONRPCScanner.scan(bytes))
    }

    func levels(_ snapshot: [UInt8], _ side: String) throws -> [[Double]] {
        let obj = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(snapshot)) as? [String: Any])
        let data = try XCTUnwrap((obj["params"] as? [String: Any])?["data"] as? [String: Any])
        return try XCTUnwrap(data[side] as? [[Any]]).map { [($0[1] as! NSNumber).doubleValue, ($0[2] as! NSNumber).doubleValue] }
    }

    func testSnapshotThenChangesThenGap() throws {
        let book = OrderBook()
        var (b, s) = message(#"{"type":"change","timestamp":1,"instrument_name":"BTC-PERPETUAL","prev_change_id":1,"change_id":2,"bids":[],"asks":[]}"#)
        XCTAssertEqual(book.apply(notification: b, scan: s), .drop, "a change before any snapshot is not forwarded")

        (b, s) = message(#"{"type":"snapshot","timestamp":10,"instrument_name":"BTC-PERPETUAL","change_id":100,"bids":[["new",65000.5,10.0],["new",64999,5]],"asks":[["new",65001,7.5], ["new", 65002.5 , 1e1]]}"#)
        XCTAssertEqual(book.apply(notification: b, scan: s), .forward)
        XCTAssertTrue(book.isValid)

        (b, s) = message(#"{"type":"change","timestamp":11,"instrument_name":"BTC-PERPETUAL","prev_change_id":100,"change_id":101,"bids":[["delete",64999,0],["change",65000.5,3]],"asks":[["new",65000.75,2]]}"#)
        XCTAssertEqual(book.apply(notification: b, scan: s), .forward)
        let snap = book.snapshotNotification(channel: "book.BTC-PERPETUAL.100ms")
        XCTAssertEqual(try levels(snap, "bids"), [[65000.5, 3]])
        XCTAssertEqual(try levels(snap, "asks"), [[65000.75, 2], [65001, 7.5], [65002.5, 10]])
        let data = try XCTUnwrap(((try JSONSerialization.jsonObject(with: Data(snap)) as? [String: Any])?["params"] as? [String: Any])?["data"] as? [String: Any])
        XCTAssertEqual(data["change_id"] as? Int, 101)
        XCTAssertEqual(data["type"] as? String, "snapshot")
        XCTAssertEqual(data["instrument_name"] as? String, "BTC-PERPETUAL")
        XCTAssertEqual(book.snapshotNotification(channel: "book.BTC-PERPETUAL.100ms"), snap, "rendered once per change")

        (b, s) = message(#"{"type":"change","timestamp":12,"instrument_name":"BTC-PERPETUAL","prev_change_id":105,"change_id":106,"bids":[],"asks":[]}"#)
        XCTAssertEqual(book.apply(notification: b, scan: s), .gap)
        XCTAssertFalse(book.isValid)
    }

    func testMalformedLevelsDoNotCrash() {
        let book = OrderBook()
        let (b, s) = message(#"{"type":"snapshot","change_id":1,"bids":[["new"],[],["new",1],"x",{"a":1}],"asks":[["new",2,3]]}"#)
        XCTAssertEqual(book.apply(notification: b, scan: s), .forward)
        XCTAssertTrue(book.isValid)
    }

    func testOnlyIncrementalBookChannelsAreKept() {
        XCTAssertTrue(OrderBook.isIncrementalBookChannel("book.BTC-PERPETUAL.100ms"))
        XCTAssertTrue(OrderBook.isIncrementalBookChannel("book.BTC-PERPETUAL.raw"))
        XCTAssertFalse(OrderBook.isIncrementalBookChannel("book.BTC-PERPETUAL.none.10.100ms"))
        XCTAssertFalse(OrderBook.isIncrementalBookChannel("ticker.BTC-PERPETUAL.100ms"))
    }
}
