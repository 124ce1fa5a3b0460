import Foundation
import XCTest
@testable import DeribitSim

/// Drives a SimExchange with a manual clock and decodes its effects.
final class Harness {
    let sim: SimExchange
    var now: UInt64 = 1_700_000_000_000_000
    private var nextID: UInt64 = 1

    init(_ config: SimConfig = SimConfig()) { sim = SimExchange(config: config) }

    func open() -> SimConnectionID {
        let id = SimConnectionID(nextID)
        nextID += 1
        sim.connectionOpened(id, nowMicros: now)
        return id
    }

    func send(_ c: SimConnectionID, _ json: String) -> [SimEffect] {
        sim.received(text: Array(json.utf8), from: c, nowMicros: now)
    }

    /// Sends a request and returns the decoded response frame addressed to `c`.
    func call(_ c: SimConnectionID, _ method: String, _ params: [String: Any] = [:], id: Int = 7,
              file: StaticString = #filePath, line: UInt = #line) -> [String: Any] {
        let body = try! JSONSerialization.data(withJSONObject: ["jsonrpc": "2.0", "id": id, "method": method, "params": params])
        let effects = sim.received(text: Array(body), from: c, nowMicros: now)
        guard let first = Harness.frames(effects, to: c).first else {
            XCTFail("no response to \(method): \(effects)", file: file, line: line)
            return [:]
        }
        return first
    }

    func authenticate(_ c: SimConnectionID, id: String = "sim-client", secret: String = "sim-secret") {
        let r = call(c, "public/auth", ["grant_type": "client_credentials", "client_id": id, "client_secret": secret])
        XCTAssertNotNil(r["result"], "\(r)")
    }

    func advance(seconds: Double) -> [SimEffect] {
        now += UInt64(seconds * 1_000_000)
        return sim.tick(nowMicros: now)
    }

    static func decode(_ bytes: [UInt8]) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any] ?? ["undecodable": String(decoding: bytes, as: UTF8.self)]
    }

    /// Every frame `c` receives from these effects, decoded, in order.
    static func frames(_ effects: [SimEffect], to c: SimConnectionID) -> [[String: Any]] {
        effects.compactMap { e -> [String: Any]? in
            switch e {
            case .send(let id, let b) where id == c: return decode(b)
            case .broadcast(let ids, let b) where ids.contains(c): return decode(b)
            default: return nil
            }
        }
    }

    static func notifications(_ effects: [SimEffect], to c: SimConnectionID, channel: String) -> [[String: Any]] {
        frames(effects, to: c).filter { ($0["params"] as? [String: Any])?["channel"] as? String == channel }
            .compactMap { ($0["params"] as? [String: Any])?["data"] as? [String: Any] ?? ["array": ($0["params"] as! [String: Any])["data"]!] }
    }
}

extension Dictionary where Key == String, Value == Any {
    var result: [String: Any]? { self["result"] as? [String: Any] }
    var error: [String: Any]? { self["error"] as? [String: Any] }
    var errorCode: Int? { error?["code"] as? Int }
}
