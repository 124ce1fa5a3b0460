import Foundation
import TLS
import Transport
import XCTest

/// Requests through the real gateway between `deribit-sim` and several clients: id routing,
/// scopes and credentials, malformed input (SPEC §6.1–6.3).
final class GatewayCoreRoutingTests: XCTestCase {
    /// Ids every client uses at the same time, as raw JSON: the same number, strings, a unicode
    /// string raw and escaped, an integer beyond Int64.
    static let collidingIDs = ["1", #""x""#, #""ïd-✓""#, #""\u00efd-\u2713""#, "18446744073709551615"]

    func testCollidingIDsFromFourClientsComeBackByteForByte() throws {
        let (sim, gw) = try startGateway()

        // Each client asks for another instrument, so a misrouted response shows.
        let instruments = ["BTC-PERPETUAL", "ETH-PERPETUAL", "BTC-25DEC26", "ETH-25DEC26"]
        func requests(_ instrument: String) -> [String] {
            Self.collidingIDs.map { rawRequestText(id: $0, "public/ticker", #"{"instrument_name":"\#(instrument)"}"#) }
        }
        let loop = makeLoop(.dispatch)
        let ours = try instruments[0..<2].map { _ in try RPCClient(url: gw.wsURL, loop: loop) }
        let peers = try instruments[2..<4].map { inst in
            try PythonRPCPeer(url: gw.wsURL, steps: [["print": "READY"], ["wait_stdin": true]]
                + requests(inst).map { ["send": $0] }
                + [["collect": Self.collidingIDs.count, "contains": #""id":"#]])
        }
        defer { peers.forEach { $0.stop() } }
        for p in peers { try p.waitFor("READY") }

        // Hold every answer a little so that all twenty requests are pending upstream together.
        XCTAssertEqual(try sim.post("/sim/fault/delay?ms=300"), 200)
        for p in peers { p.proceed() }
        for (i, c) in ours.enumerated() { requests(instruments[i]).forEach { c.sendRaw($0) } }

        var responses: [[[UInt8]]] = []
        for c in ours { responses.append(try c.nextMessages(Self.collidingIDs.count)) }
        for p in peers { responses.append(try p.finish()) }

        for (client, messages) in responses.enumerated() {
            XCTAssertEqual(messages.count, Self.collidingIDs.count, "client \(client)")
            let ids = messages.compactMap(responseIDBytes).map(utf8String)
            XCTAssertEqual(Set(ids), Set(Self.collidingIDs), "client \(client) got ids \(ids)")
            for m in messages {
                let obj = try RPCClient.decode(m)
                let result = obj["result"] as? [String: Any]
                XCTAssertEqual(result?["instrument_name"] as? String, instruments[client],
                               "client \(client) got someone else's answer: \(utf8String(m))")
            }
        }
        // Every request went upstream once (20 ticker calls), none was answered twice.
        XCTAssertEqual(try sim.methodCalls("public/ticker"), 4 * Self.collidingIDs.count)
        for c in ours { XCTAssertTrue(c.drainMessages(for: 0.2).isEmpty, "a client got an extra message") }
    }

    func testScopesAndCredentials() throws {
        let sim = try SimProcess()
        defer { sim.stop() }
        let clients: [[String: Any]] = [
            ["name": "viewer", "secret": "viewer-secret", "scope": "read"],
            ["name": "mm", "secret": "mm-secret", "scope": "trade"],
        ]
        let gw = try GatewayProcess(config: GatewayProcess.config(sim: sim, clients: clients))
        defer { gw.stop() }
        try gw.waitForHealth(200)
        let loop = makeLoop(.dispatch)

        // Anonymous (scope public): private methods are 13009, as Deribit answers unauthenticated ones.
        let anon = try RPCClient(url: gw.wsURL, loop: loop)
        let r1 = try anon.call("private/get_open_orders_by_currency", ["currency": "BTC"])
        XCTAssertEqual(rpcErrorCode(r1), 13009, "\(r1)")
        // `.raw` channels need read: Deribit's 13778.
        let r2 = try anon.call("public/subscribe", ["channels": ["ticker.BTC-PERPETUAL.raw"]])
        XCTAssertEqual(rpcErrorCode(r2), 13778, "\(r2)")
        // Identity-changing token methods are refused for everyone.
        let r3 = try anon.call("public/exchange_token", ["refresh_token": "x", "subject_id": 2])
        XCTAssertEqual(rpcErrorCode(r3), -32002, "\(r3)")

        // Wrong secret: 13004, and the client stays anonymous.
        let r4 = try anon.call("public/auth", ["grant_type": "client_credentials", "client_id": "viewer", "client_secret": "nope"])
        XCTAssertEqual(rpcErrorCode(r4), 13004, "\(r4)")
        XCTAssertEqual(rpcErrorCode(try anon.call("private/get_open_orders_by_currency", ["currency": "BTC"])), 13009)

        // client_signature with Deribit's formula over the local secret.
        let viewer = try RPCClient(url: gw.wsURL, loop: loop)
        let timestamp = Int64(Date().timeIntervalSince1970 * 1000)
        let nonce = "n0nce-\(timestamp % 1000)"
        let data = "some data"
        let signature = Crypto.hex(Crypto.hmacSHA256(key: Array("viewer-secret".utf8), message: Array("\(timestamp)\n\(nonce)\n\(data)".utf8)))
        let bad = try viewer.call("public/auth", ["grant_type": "client_signature", "client_id": "viewer", "timestamp": timestamp,
                                                  "nonce": nonce, "data": data, "signature": String(repeating: "0", count: 64)])
        XCTAssertEqual(rpcErrorCode(bad), 13004, "\(bad)")
        // SPEC §8: after a failure the next attempt waits out a short penalty (10028 meanwhile).
        let signed = try pollValue("the signed attempt after the penalty", timeout: 5) { () -> [String: Any]? in
            let r = try viewer.call("public/auth", ["grant_type": "client_signature", "client_id": "viewer", "timestamp": timestamp,
                                                    "nonce": nonce, "data": data, "signature": signature])
            return rpcErrorCode(r) == 10028 ? nil : r
        }
        let auth = try XCTUnwrap(signed["result"] as? [String: Any], "\(signed)")
        XCTAssertNotNil(auth["access_token"] as? String)
        let refresh = try XCTUnwrap(auth["refresh_token"] as? String)

        // A read client: read methods are forwarded, raw channels allowed, trading forbidden (-32002).
        let orders = try viewer.call("private/get_open_orders_by_currency", ["currency": "BTC"])
        XCTAssertNotNil(orders["result"] as? [Any], "\(orders)")
        let raw = try viewer.call("public/subscribe", ["channels": ["ticker.BTC-PERPETUAL.raw"]])
        XCTAssertEqual(raw["result"] as? [String], ["ticker.BTC-PERPETUAL.raw"], "\(raw)")
        let buy = try viewer.call("private/buy", ["instrument_name": "BTC-PERPETUAL", "amount": 10, "type": "limit", "price": 1000])
        XCTAssertEqual(rpcErrorCode(buy), -32002, "\(buy)")
        let fork = try viewer.call("public/fork_token", ["refresh_token": refresh, "session_name": "s"])
        XCTAssertEqual(rpcErrorCode(fork), -32002, "\(fork)")

        // refresh_token grant on another connection: works once (gateway-issued, single use).
        let again = try RPCClient(url: gw.wsURL, loop: loop)
        let refreshed = try again.call("public/auth", ["grant_type": "refresh_token", "refresh_token": refresh])
        XCTAssertNotNil((refreshed["result"] as? [String: Any])?["access_token"] as? String, "\(refreshed)")
        XCTAssertNotNil(try again.call("private/get_open_orders_by_currency", ["currency": "BTC"])["result"] as? [Any])
        let reused = try again.call("public/auth", ["grant_type": "refresh_token", "refresh_token": refresh])
        XCTAssertEqual(rpcErrorCode(reused), 13004, "\(reused)")

        // The trade client may place an order.
        let mm = try RPCClient(url: gw.wsURL, loop: loop)
        try mm.authenticate("mm", "mm-secret")
        let placed = try mm.call("private/buy", ["instrument_name": "BTC-PERPETUAL", "amount": 10, "type": "limit", "price": 1000, "label": "scope-test"])
        XCTAssertNotNil((placed["result"] as? [String: Any])?["order"], "\(placed)")

        // What was refused never reached the exchange.
        XCTAssertEqual(try sim.methodCalls("private/buy"), 1)
        XCTAssertEqual(try sim.methodCalls("public/exchange_token"), 0)
        XCTAssertEqual(try sim.methodCalls("public/fork_token"), 0)
        XCTAssertEqual(try sim.subscribeRequests("ticker.BTC-PERPETUAL.raw"), 1)
    }

    /// SPEC §6.3: a client's `access_token` is the gateway's, never Deribit's: it is stripped,
    /// and the request runs on the authenticated upstream session. (The simulator, like
    /// Deribit, answers 13009 to a token it did not issue.)
    func testClientAccessTokensAreStripped() throws {
        let (_, gw) = try startGateway(clients: [["name": "mm", "secret": "mm-secret", "scope": "trade"]])
        let client = try RPCClient(url: gw.wsURL, loop: makeLoop(.dispatch))
        let auth = try client.call("public/auth", ["grant_type": "client_credentials", "client_id": "mm", "client_secret": "mm-secret"])
        let token = try XCTUnwrap((auth["result"] as? [String: Any])?["access_token"] as? String, "\(auth)")
        for params: [String: Any] in [
            ["access_token": token, "currency": "BTC"],
            ["currency": "BTC", "access_token": token],
            ["access_token": token, "currency": "BTC", "kind": "future"],
        ] {
            let r = try client.call("private/get_open_orders_by_currency", params)
            XCTAssertNotNil(r["result"] as? [Any], "\(params): \(r)")
        }
    }

    func testMalformedClientInput() throws {
        let (sim, gw) = try startGateway()
        let loop = makeLoop(.dispatch)
        let c = try RPCClient(url: gw.wsURL, loop: loop)

        func reply(_ raw: String) throws -> (bytes: [UInt8], obj: [String: Any]) {
            c.sendRaw(raw)
            let m = try c.next("the answer to \(raw.prefix(60))")
            return (m, try RPCClient.decode(m))
        }

        let parse = try reply("this is not json")
        XCTAssertEqual(rpcErrorCode(parse.obj), -32700)
        XCTAssertEqual(responseIDBytes(parse.bytes).map(utf8String), "null", utf8String(parse.bytes))

        let array = try reply(#"[{"jsonrpc":"2.0","id":5,"method":"public/get_time"}]"#)
        XCTAssertEqual(rpcErrorCode(array.obj), -32600, utf8String(array.bytes))

        let noMethod = try reply(#"{"jsonrpc":"2.0","id":"no-method-7","params":{}}"#)
        XCTAssertEqual(rpcErrorCode(noMethod.obj), -32600)
        XCTAssertEqual(responseIDBytes(noMethod.bytes).map(utf8String), #""no-method-7""#)

        let noID = try reply(#"{"jsonrpc":"2.0","method":"public/get_time"}"#)
        XCTAssertEqual(rpcErrorCode(noID.obj), -32600)
        XCTAssertEqual(responseIDBytes(noID.bytes).map(utf8String), "null")

        let unknown = try reply(rawRequestText(id: "9", "foo/bar"))
        XCTAssertEqual(rpcErrorCode(unknown.obj), -32601)
        XCTAssertEqual(responseIDBytes(unknown.bytes).map(utf8String), "9")

        // Over 32,000 bytes: answered by the gateway with the client's id, never sent upstream.
        let pad = String(repeating: "p", count: 33_000)
        let big = try reply(rawRequestText(id: #""big-1""#, "public/get_time", #"{"pad":"\#(pad)"}"#))
        XCTAssertEqual(rpcErrorCode(big.obj), -32600)
        XCTAssertEqual((big.obj["error"] as? [String: Any])?["message"] as? String, "request entity too large")
        XCTAssertEqual(responseIDBytes(big.bytes).map(utf8String), #""big-1""#)

        // SPEC §6.1: whatever the method, local ones included, as the client sent it: a token
        // the gateway would strip does not make it fit.
        let local = try reply(rawRequestText(id: "77", "public/hello", #"{"client_name":"\#(pad)"}"#))
        XCTAssertEqual(rpcErrorCode(local.obj), -32600, utf8String(local.bytes))
        XCTAssertEqual(responseIDBytes(local.bytes).map(utf8String), "77")
        let token = String(repeating: "t", count: 200)
        let stripped = String(repeating: "s", count: 32_000 - rawRequestText(id: "78", "public/status", #"{"access_token":"\#(token)","pad":""}"#).utf8.count + 1)
        let shrinks = rawRequestText(id: "78", "public/status", #"{"access_token":"\#(token)","pad":"\#(stripped)"}"#)
        XCTAssertEqual(shrinks.utf8.count, 32_001)
        XCTAssertEqual(rpcErrorCode(try reply(shrinks).obj), -32600)

        // Just under the limit goes through.
        let under = String(repeating: "q", count: 31_800)
        let small = try reply(rawRequestText(id: #""under-1""#, "public/status", #"{"pad":"\#(under)"}"#))
        XCTAssertNotNil(small.obj["result"], utf8String(small.bytes))
        XCTAssertEqual(responseIDBytes(small.bytes).map(utf8String), #""under-1""#)

        // The connection is still there and the exchange never saw the oversized request
        // (public/status above answered, so everything sent before it was processed).
        XCTAssertNotNil(try c.call("public/test")["result"])
        XCTAssertEqual(try sim.methodCalls("public/get_time"), 0)
        XCTAssertEqual(try sim.methodCalls("public/status"), 1)
        XCTAssertNil(try? c.closed.wait("no close", timeout: 0.01))
    }
}
