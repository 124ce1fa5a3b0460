@testable import GatewayCore
import JSONRPC
import XCTest

/// SPEC §6.3, §6.5, §6.6: upstream ids, the pending table, the credit model and the waiting queues.
final class RequestRouterTests: XCTestCase {
    // MARK: helpers

    /// A client's request as it sent it.
    private func request(_ id: String, _ method: String = "public/get_time", params: String = "{}") -> String {
        #"{"jsonrpc":"2.0","id":\#(id),"method":"\#(method)","params":\#(params)}"#
    }

    /// The same request as the upstream must see it.
    private func upstream(_ id: UInt64, _ method: String = "public/get_time", params: String = "{}") -> String {
        #"{"jsonrpc":"2.0","id":\#(id),"method":"\#(method)","params":\#(params)}"#
    }

    @discardableResult
    private func forward(
        _ r: inout RequestRouter, _ json: String, from c: ClientID = client(1), pending: Int = 0, now: Nanos,
        file: StaticString = #filePath, line: UInt = #line
    ) throws -> String {
        let bytes = Array(json.utf8)
        let scan = try JSONRPCScanner.scan(bytes)
        let id = Array(bytes[try XCTUnwrap(scan.id, file: file, line: line)])
        let name = try XCTUnwrap(JSONRPCScanner.method(in: bytes, scan: scan), file: file, line: line)
        return describe(r.forward(client: c, originalID: id, bytes: bytes, scan: scan, method: MethodPolicy.traits(of: name),
                                  clientPending: pending, now: now))
    }

    private func describe(_ f: RequestRouter.Forwarded) -> String {
        switch f {
        case .send(let b): return b.count > 1_000 ? "send \(b.count) bytes" : "send " + text(b)
        case .queued: return "queued"
        case .refused(let e): return "refused \(e.code) \(e.message)"
        }
    }

    private func describe(_ outputs: [RequestRouter.Output]) -> [String] {
        outputs.map {
            switch $0 {
            case .write(let b): return "write " + text(b)
            case .fail(let p, let e): return "fail \(owner(p.owner) ?? "") \(e.code) \(e.message)"
            }
        }
    }

    private func owner(_ o: PendingOwner?) -> String? {
        switch o {
        case .client(let c, let id)?: return "client \(c.slot) id \(text(id))"
        case .gateway(let t)?: return "gateway \(t)"
        case nil: return nil
        }
    }

    /// Every request leaves the jitter margin's worth of refill in the bucket (100 ms by
    /// default): at a tier of 10/s, one request's worth.
    func testRequestsLeaveTheJitterMarginInTheBucket() throws {
        var settings = RequestRouter.Settings()
        settings.credits.matchingEngineRate = 10
        settings.credits.matchingEngineBurst = 3
        var r = readyRouter(settings)
        XCTAssertEqual(settings.credits.jitterMargin, 100 * millisecond)
        // The gateway's own: 3 credits, 1 kept: two go at once, the third waits for the refill.
        let cancel = { (k: Int) in GatewayTask.cancelOnDisconnect(orderID: "O\(k)") }
        XCTAssertNotNil(r.submit(cancel(1), method: "private/cancel", params: nil, bucket: .matchingEngine, now: 0))
        XCTAssertNotNil(r.submit(cancel(2), method: "private/cancel", params: nil, bucket: .matchingEngine, now: 0))
        XCTAssertNil(r.submit(cancel(3), method: "private/cancel", params: nil, bucket: .matchingEngine, now: 0))
        XCTAssertEqual(r.nextCreditTime, 101 * millisecond, "one request's refill (100 ms), 1 ms late")
        XCTAssertEqual(r.creditDelay(.matchingEngine, now: 0), 200 * millisecond)
    }

    private func readyRouter(_ settings: RequestRouter.Settings = exactSettings(), now: Nanos = 0) -> RequestRouter {
        var r = RequestRouter(settings, now: now)
        r.connected()
        XCTAssertTrue(r.ready(now: now).isEmpty)
        XCTAssertEqual(r.link, .ready)
        return r
    }

    /// Credits small enough to run out in a few requests: 2,000 max, 500 a request, 10,000/s.
    private func tightCredits() -> RequestRouter.Settings {
        var s = exactSettings()
        s.credits.max = 2_000
        s.credits.defaultCost = 500
        s.credits.refillPerSecond = 10_000
        return s
    }

    // MARK: forwarding

    func testARequestWaitsForTheUpstreamAndGoesWithAFreshIDAndWithoutTheAccessToken() throws {
        var r = RequestRouter(exactSettings(), now: 0)
        XCTAssertEqual(r.link, .down)
        let sent = request(#""abc""#, "private/get_positions", params: #"{"access_token":"secret","currency":"BTC"}"#)
        XCTAssertEqual(try forward(&r, sent, now: 0), "queued")
        r.connected()
        XCTAssertEqual(try forward(&r, request("2"), now: 0), "queued", "the handshake goes first")
        XCTAssertEqual(describe(r.ready(now: 1 * second)), [
            "write " + upstream(1, "private/get_positions", params: #"{"currency":"BTC"}"#),
            "write " + upstream(2),
        ])
        let answered = try XCTUnwrap(r.answered(1))
        XCTAssertEqual(owner(answered.owner), #"client 1 id "abc""#)
        XCTAssertTrue(answered.sent)
        XCTAssertEqual(answered.sentAt, 1 * second)
    }

    func testIDsAreConsecutiveAndEachAnswerFindsItsClientAndOriginalID() throws {
        var r = readyRouter()
        XCTAssertEqual(try forward(&r, request("7"), from: client(1), now: 0), "send " + upstream(1))
        XCTAssertEqual(try forward(&r, request(#""x""#), from: client(2), now: 0), "send " + upstream(2))
        XCTAssertEqual(try forward(&r, request("7", "public/get_index_price", params: #"{"index_name":"btc_usd"}"#), from: client(2), now: 0),
                       "send " + upstream(3, "public/get_index_price", params: #"{"index_name":"btc_usd"}"#))

        XCTAssertEqual(owner(r.answered(2)?.owner), #"client 2 id "x""#)
        XCTAssertNil(r.answered(2), "answered once")
        XCTAssertEqual(owner(r.answered(3)?.owner), "client 2 id 7")
        XCTAssertEqual(owner(r.answered(1)?.owner), "client 1 id 7", "the same client id from two clients never mixes")
        XCTAssertNil(r.answered(99), "never issued")
        XCTAssertEqual(try forward(&r, request("8"), now: 0), "send " + upstream(4))
    }

    func testAccessTokenIsRemovedWhereverItSits() throws {
        var r = readyRouter()
        XCTAssertEqual(try forward(&r, request("1", params: #"{"access_token":"t"}"#), now: 0), "send " + upstream(1))
        XCTAssertEqual(try forward(&r, request("1", params: #"{"a":1,"access_token":"t","b":2}"#), now: 0),
                       "send " + upstream(2, params: #"{"a":1,"b":2}"#))
        XCTAssertEqual(try forward(&r, request("1", params: #"{"a":1, "access_token":"t"}"#), now: 0),
                       "send " + upstream(3, params: #"{"a":1}"#))
    }

    func testTooManyPendingRequestsOfOneClient() throws {
        var settings = exactSettings()
        settings.maxPendingPerClient = 2
        var r = readyRouter(settings)
        XCTAssertEqual(try forward(&r, request("5"), pending: 1, now: 0), "send " + upstream(1))
        XCTAssertEqual(try forward(&r, request("5"), pending: 2, now: 0), "refused -32003 too_many_pending_requests")
        XCTAssertEqual(GatewayError.tooManyPendingRequests.response(id: Array("5".utf8)),
                       Array(#"{"jsonrpc":"2.0","id":5,"error":{"code":-32003,"message":"too_many_pending_requests"}}"#.utf8))
        XCTAssertEqual(try forward(&r, request("6"), from: client(2), pending: 0, now: 0), "send " + upstream(2),
                       "other clients are not limited, and a refusal uses no id")
    }

    func testNothingOver32000BytesGoesUpstream() throws {
        var r = readyRouter()
        // Ten requests answered: the next upstream id is 11, so the client's `1` grows by a byte.
        for k in 1...10 {
            XCTAssertEqual(try forward(&r, request("1"), now: 0), "send " + upstream(UInt64(k)))
            XCTAssertNotNil(r.answered(UInt64(k)))
        }
        func sized(_ clientBytes: Int) -> String {
            let empty = request("1", params: #"{"pad":""}"#)
            return request("1", params: #"{"pad":"\#(String(repeating: "p", count: clientBytes - empty.utf8.count))"}"#)
        }
        XCTAssertEqual(sized(31_999).utf8.count, 31_999)
        XCTAssertEqual(try forward(&r, sized(31_999), now: 0), "send 32000 bytes")
        // Within the limit as sent, over it once spliced: still never sent.
        XCTAssertEqual(try forward(&r, sized(32_000), now: 0), "refused -32600 request entity too large")
        XCTAssertEqual(r.pendingRequests { _ in true }, 1)
    }

    /// SPEC §6.1: "it answers a client request over 32,000 bytes **as the client sent it** itself
    /// with -32600". Splicing may shrink a request (a long client id, an `access_token`) under
    /// the limit; the size that counts is the client's.
    func testARequestOver32000BytesAsTheClientSentItIsRefusedEvenIfSplicingShrinksIt() throws {
        var r = readyRouter()
        let token = String(repeating: "t", count: 100)
        let empty = request("1", params: #"{"access_token":"\#(token)","pad":""}"#)
        let sent = request("1", params: #"{"access_token":"\#(token)","pad":"\#(String(repeating: "p", count: 32_001 - empty.utf8.count))"}"#)
        XCTAssertEqual(sent.utf8.count, 32_001)
        XCTAssertEqual(try forward(&r, sent, now: 0), "refused -32600 request entity too large")
    }

    // MARK: credits (SPEC §6.6)

    func testCreditsRunningLowMakeRequestsWaitThenRefuse() throws {
        var r = readyRouter(tightCredits())
        // 2,000 credits, a 200-credit reserve for the gateway's own: three requests go at once.
        for k in 1...3 { XCTAssertEqual(try forward(&r, request("\(k)"), now: 0), "send " + upstream(UInt64(k))) }
        XCTAssertNil(r.nextCreditTime)
        // The fourth needs 200 more credits (20 ms of refill), sent 1 ms late rather than early.
        XCTAssertEqual(try forward(&r, request("4"), now: 0), "queued")
        XCTAssertEqual(r.nextCreditTime, 21 * millisecond)
        // Each next one books 500 more credits: 50 ms later.
        for k in 5...8 { XCTAssertEqual(try forward(&r, request("\(k)"), now: 0), "queued") }
        XCTAssertEqual(r.nextCreditTime, 21 * millisecond)
        // The ninth would wait 270 ms, more than the 250 ms bound.
        XCTAssertEqual(try forward(&r, request("9"), now: 0), "refused 10028 too_many_requests")
        XCTAssertNil(GatewayError.tooManyRequests(reason: nil).data)

        XCTAssertEqual(describe(r.due(now: 21 * millisecond - 1)), [], "never early")
        XCTAssertEqual(describe(r.due(now: 21 * millisecond)), ["write " + upstream(4)])
        XCTAssertEqual(r.nextCreditTime, 71 * millisecond)
        XCTAssertEqual(describe(r.due(now: 150 * millisecond)), ["write " + upstream(5), "write " + upstream(6)])
        XCTAssertEqual(r.nextCreditTime, 171 * millisecond)
        XCTAssertEqual(describe(r.due(now: 1 * second)), ["write " + upstream(7), "write " + upstream(8)])
        XCTAssertNil(r.nextCreditTime)
        XCTAssertTrue(r.answered(8)?.sent == true)
    }

    func testCreditsRefillWithTime() throws {
        var r = readyRouter(tightCredits())
        for k in 1...3 { XCTAssertEqual(try forward(&r, request("\(k)"), now: 0), "send " + upstream(UInt64(k))) }
        // 50 ms refill 500 credits: one more goes at once.
        XCTAssertEqual(try forward(&r, request("4"), now: 50 * millisecond), "send " + upstream(4))
        XCTAssertEqual(try forward(&r, request("5"), now: 50 * millisecond), "queued")
        // A second later the bucket is full again (never above its max).
        XCTAssertEqual(describe(r.due(now: 2 * second)), ["write " + upstream(5)])
        XCTAssertEqual(r.creditsAvailable(.standard, now: 2 * second), 2_000)
    }

    func testMatchingEngineRequestsUseTheirOwnBucket() throws {
        // Defaults: 5 a second, a burst of 20; clients leave 2 to the gateway's cancels.
        var r = readyRouter()
        let buy = #"{"instrument_name":"BTC-PERPETUAL","amount":10,"type":"limit","price":50000}"#
        for k in 1...18 {
            XCTAssertEqual(try forward(&r, request("\(k)", "private/buy", params: buy), now: 0),
                           "send " + upstream(UInt64(k), "private/buy", params: buy))
        }
        XCTAssertEqual(try forward(&r, request("19", "private/buy", params: buy), now: 0), "queued")
        XCTAssertEqual(r.nextCreditTime, 201 * millisecond, "one credit at 5/s")
        XCTAssertEqual(try forward(&r, request("20", "private/buy", params: buy), now: 0), "refused 10028 too_many_requests")
        XCTAssertEqual(try forward(&r, request("21"), now: 0), "send " + upstream(20), "the default bucket is untouched")
        XCTAssertEqual(r.creditsAvailable(.standard, now: 0), 49_500)
        XCTAssertEqual(describe(r.due(now: 201 * millisecond)), ["write " + upstream(19, "private/buy", params: buy)])
    }

    func testTheGatewaysOwnRequestsKeepNoReserveAndAreNeverRefused() throws {
        var r = readyRouter(tightCredits())
        for k in 1...3 { XCTAssertEqual(try forward(&r, request("\(k)"), now: 0), "send " + upstream(UInt64(k))) }
        // 500 credits left: a client's request would eat into the reserve, the gateway's does not wait.
        XCTAssertEqual(r.submit(.heartbeatAnswer, method: "public/test", params: nil, now: 0).map(text),
                       #"{"jsonrpc":"2.0","id":4,"method":"public/test"}"#)
        XCTAssertEqual(try forward(&r, request("5"), now: 0), "queued")
        // Ten cancels: far beyond the clients' 250 ms bound, each is booked a later time.
        for k in 0..<10 {
            let task = GatewayTask.cancelCheck(orderID: "O\(k)")
            XCTAssertNil(r.submit(task, method: "private/get_order_state", params: Array(#"{"order_id":"O\#(k)"}"#.utf8), now: 0))
        }
        XCTAssertEqual(r.nextCreditTime, 71 * millisecond)
        XCTAssertEqual(try forward(&r, request("6"), now: 0), "refused 10028 too_many_requests",
                       "clients wait behind the gateway's own")
        XCTAssertEqual(describe(r.due(now: 71 * millisecond)), ["write " + upstream(5)])
        let rest = describe(r.due(now: 10 * second))
        XCTAssertEqual(rest, (0..<10).map { "write " + upstream(UInt64(6 + $0), "private/get_order_state", params: #"{"order_id":"O\#($0)"}"#) })
        XCTAssertEqual(r.pendingRequests { if case .gateway = $0.owner { return $0.sent } else { return false } }, 11)
    }

    // MARK: the link

    func testWhenReadySubmitsWaitDuringTheHandshakeWhileHandshakeStepsGo() throws {
        var r = RequestRouter(exactSettings(), now: 0)
        r.connected()
        XCTAssertEqual(r.link, .handshaking)
        let hello = r.submit(.session(.hello, generation: 1), method: "public/hello",
                             params: Array(#"{"client_name":"gw","client_version":"1"}"#.utf8), now: 0)
        XCTAssertEqual(hello.map(text), #"{"jsonrpc":"2.0","id":1,"method":"public/hello","params":{"client_name":"gw","client_version":"1"}}"#)
        XCTAssertNil(r.submit(.subscribe(["ticker.BTC-PERPETUAL.100ms"], generation: 1), method: "public/subscribe",
                              params: Array(#"{"channels":["ticker.BTC-PERPETUAL.100ms"]}"#.utf8), bucket: .subscribe,
                              whenReady: true, now: 0))
        XCTAssertEqual(try forward(&r, request("77"), now: 0), "queued")
        XCTAssertEqual(r.submit(.session(.setHeartbeat, generation: 1), method: "public/set_heartbeat",
                                params: Array(#"{"interval":10}"#.utf8), now: 0).map(text),
                       #"{"jsonrpc":"2.0","id":4,"method":"public/set_heartbeat","params":{"interval":10}}"#)
        XCTAssertEqual(describe(r.ready(now: 0)), [
            #"write {"jsonrpc":"2.0","id":2,"method":"public/subscribe","params":{"channels":["ticker.BTC-PERPETUAL.100ms"]}}"#,
            "write " + upstream(3),
        ], "in the order they were made")
    }

    func testRequestsWaitingForTheUpstreamAreReleasedWithinTheCredits() throws {
        var r = RequestRouter(tightCredits(), now: 0)
        for k in 1...10 { XCTAssertEqual(try forward(&r, request("\(k)"), from: client(k), now: 0), "queued") }
        r.connected()
        // Three go, five are booked for later, and the last two get 10028 rather than silence.
        XCTAssertEqual(describe(r.ready(now: 0)), [
            "write " + upstream(1), "write " + upstream(2), "write " + upstream(3),
            "fail client 9 id 9 10028 too_many_requests", "fail client 10 id 10 10028 too_many_requests",
        ])
        XCTAssertEqual(r.nextCreditTime, 21 * millisecond)
        XCTAssertEqual(describe(r.due(now: 1 * second)), (4...8).map { "write " + upstream(UInt64($0)) })
    }

    // MARK: expiry and loss

    func testANeverSentRequestExpiresAsUpstreamUnavailable() throws {
        var r = RequestRouter(exactSettings(), now: 0)
        XCTAssertEqual(try forward(&r, request("1"), now: 0), "queued")
        r.connected()
        XCTAssertTrue(r.expire(now: 15 * second - 1).isEmpty)
        let expired = r.expire(now: 15 * second)
        XCTAssertEqual(expired.map(\.id), [1])
        XCTAssertEqual(expired.map { owner($0.request.owner) }, ["client 1 id 1"])
        XCTAssertEqual(expired.map(\.error), [.upstreamUnavailable])
        XCTAssertEqual(describe(r.ready(now: 15 * second)), [], "an expired request is never sent")
    }

    func testASentRequestExpiresAsUpstreamTimeout() throws {
        var r = readyRouter()
        XCTAssertEqual(try forward(&r, request("1"), now: 1 * second), "send " + upstream(1))
        XCTAssertEqual(try forward(&r, request("2"), now: 2 * second), "send " + upstream(2))
        XCTAssertTrue(r.expire(now: 16 * second - 1).isEmpty)
        XCTAssertEqual(r.expire(now: 16 * second).map(\.id), [1])
        XCTAssertEqual(r.expire(now: 100 * second).map(\.error), [.upstreamTimeout])
        XCTAssertNil(r.answered(1), "a late answer finds nobody")
    }

    func testARequestWaitingForCreditsExpiresUnsent() throws {
        var settings = tightCredits()
        settings.requestTimeout = 10 * millisecond
        var r = readyRouter(settings)
        for k in 1...3 { _ = try forward(&r, request("\(k)"), now: 0) }
        XCTAssertEqual(try forward(&r, request("4"), now: 0), "queued")
        XCTAssertEqual(r.expire(now: 10 * millisecond).map(\.error), [.upstreamTimeout, .upstreamTimeout, .upstreamTimeout, .upstreamUnavailable])
        XCTAssertNil(r.nextCreditTime)
        XCTAssertEqual(describe(r.due(now: 1 * second)), [])
    }

    func testLosingTheUpstreamFailsEveryPendingRequestAndReplaysNothing() throws {
        var r = readyRouter(tightCredits())
        for k in 1...4 { _ = try forward(&r, request("\(k)"), from: client(k), now: 0) }
        XCTAssertNotNil(r.nextCreditTime)
        let lost = r.lost()
        XCTAssertEqual(lost.map { owner($0.owner) }, (1...4).map { "client \($0) id \($0)" }, "oldest first")
        XCTAssertEqual(lost.map(\.sent), [true, true, true, false])
        XCTAssertEqual(r.link, .down)
        XCTAssertNil(r.nextCreditTime)
        XCTAssertEqual(r.pendingRequests { _ in true }, 0)
        XCTAssertEqual(describe(r.due(now: 10 * second)), [])
        r.connected()
        XCTAssertEqual(describe(r.ready(now: 10 * second)), [], "SPEC §6.5: nothing is re-sent")
        XCTAssertEqual(try forward(&r, request("5"), now: 10 * second), "send " + upstream(5), "ids keep rising")
    }

    func testOneWayRequestsTakeAnIDNobodyWaitsFor() throws {
        var r = readyRouter()
        XCTAssertEqual(text(r.oneWay(method: "private/logout")), #"{"jsonrpc":"2.0","id":1,"method":"private/logout"}"#)
        XCTAssertNil(r.answered(1))
        XCTAssertEqual(try forward(&r, request("1"), now: 0), "send " + upstream(2))
    }


    // MARK: the gateway's view of its credits (SPEC §6.6, §7)

    /// `count` of the gateway's own requests in `bucket` (cancels in the matching-engine bucket,
    /// state checks in the default one); returns how many went at once.
    @discardableResult
    private func ownRequests(_ r: inout RequestRouter, _ count: Int, _ bucket: CreditBucket = .standard, now: Nanos) -> Int {
        var sent = 0
        for k in 0..<count {
            let params = Array(#"{"order_id":"O\#(k)"}"#.utf8)
            let bytes = bucket == .matchingEngine
                ? r.submit(.cancelOnDisconnect(orderID: "O\(k)"), method: "private/cancel", params: params, bucket: .matchingEngine, now: now)
                : r.submit(.cancelCheck(orderID: "O\(k)"), method: "private/get_order_state", params: params, now: now)
            if bytes != nil { sent += 1 }
        }
        return sent
    }

    private func delayMillis(_ r: inout RequestRouter, _ bucket: CreditBucket, now: Nanos) -> Double {
        Double(r.creditDelay(bucket, now: now)) / Double(millisecond)
    }

    func testCreditDelayIsHowLongTheGatewaysNextRequestWouldWait() {
        var r = readyRouter(tightCredits())
        for bucket in CreditBucket.allCases { XCTAssertEqual(r.creditDelay(bucket, now: 0), 0, "\(bucket) full") }
        XCTAssertEqual(ownRequests(&r, 4, now: 0), 4, "2,000 credits: four requests, no reserve kept")
        XCTAssertEqual(delayMillis(&r, .standard, now: 0), 50, accuracy: 0.001, "500 credits at 10,000/s")
        XCTAssertEqual(delayMillis(&r, .standard, now: 20 * millisecond), 30, accuracy: 0.001, "refilling")
        XCTAssertEqual(r.creditDelay(.standard, now: 50 * millisecond), 0)
        XCTAssertEqual(r.creditDelay(.matchingEngine, now: 0), 0, "the buckets are apart")

        // Matching engine: a burst of 20 at 5 a second.
        XCTAssertEqual(ownRequests(&r, 20, .matchingEngine, now: 0), 20)
        XCTAssertEqual(delayMillis(&r, .matchingEngine, now: 0), 200, accuracy: 0.001)
        XCTAssertEqual(ownRequests(&r, 1, .matchingEngine, now: 0), 0, "booked for later, never refused")
        XCTAssertEqual(delayMillis(&r, .matchingEngine, now: 0), 400, accuracy: 0.001, "behind the booked one")
    }

    func testCreditsBookedForAClientRequestThatExpiresUnsentAreRefunded() throws {
        var settings = tightCredits()
        settings.requestTimeout = 10 * millisecond
        var control = readyRouter(settings)
        var r = readyRouter(settings)
        ownRequests(&control, 4, now: 0)
        ownRequests(&r, 4, now: 0)
        XCTAssertEqual(delayMillis(&r, .standard, now: 0), 50, accuracy: 0.001)
        XCTAssertEqual(try forward(&r, request("1"), now: 0), "queued", "credits booked 70 ms ahead")
        XCTAssertEqual(delayMillis(&r, .standard, now: 0), 100, accuracy: 0.001)

        XCTAssertEqual(r.expire(now: 10 * millisecond).map(\.error).last, .upstreamUnavailable, "never sent")
        XCTAssertNil(r.nextCreditTime)
        XCTAssertEqual(r.creditDelay(.standard, now: 10 * millisecond), control.creditDelay(.standard, now: 10 * millisecond),
                       "as if it had never been booked")
        XCTAssertEqual(delayMillis(&r, .standard, now: 10 * millisecond), 40, accuracy: 0.001)
        XCTAssertEqual(describe(r.due(now: 1 * second)), [])
        XCTAssertEqual(r.creditsAvailable(.standard, now: 1 * second), 2_000, "full again, not short by a request")
    }

    func testCreditsBookedForTheGatewaysOwnCancelThatExpiresUnsentAreRefunded() {
        var settings = exactSettings()
        settings.requestTimeout = 100 * millisecond
        var control = readyRouter(settings)
        var r = readyRouter(settings)
        ownRequests(&control, 20, .matchingEngine, now: 0)
        XCTAssertEqual(ownRequests(&r, 21, .matchingEngine, now: 0), 20)
        XCTAssertEqual(r.nextCreditTime, 201 * millisecond)
        XCTAssertEqual(r.expire(now: 100 * millisecond).map(\.error).last, .upstreamUnavailable)
        XCTAssertEqual(r.creditDelay(.matchingEngine, now: 100 * millisecond), control.creditDelay(.matchingEngine, now: 100 * millisecond))
        XCTAssertEqual(delayMillis(&r, .matchingEngine, now: 100 * millisecond), 100, accuracy: 0.001)
    }

    func testCreditsBookedForRequestsDroppedWithTheUpstreamAreRefunded() throws {
        var control = readyRouter(tightCredits())
        var r = readyRouter(tightCredits())
        ownRequests(&control, 4, now: 0)
        ownRequests(&r, 4, now: 0)
        XCTAssertEqual(try forward(&r, request("1"), now: 0), "queued")
        XCTAssertEqual(try forward(&r, request("2"), now: 1 * millisecond), "queued")
        XCTAssertEqual(delayMillis(&r, .standard, now: 1 * millisecond), 149, accuracy: 0.001, "two booked")

        XCTAssertEqual(r.lost().count, 6)
        XCTAssertEqual(r.creditDelay(.standard, now: 5 * millisecond), control.creditDelay(.standard, now: 5 * millisecond))
        XCTAssertEqual(delayMillis(&r, .standard, now: 5 * millisecond), 45, accuracy: 0.001)
    }
}

/// Default settings without the jitter margin: the credit arithmetic of these tests is exact.
private func exactSettings() -> RequestRouter.Settings {
    var s = RequestRouter.Settings()
    s.credits.jitterMargin = 0
    return s
}
