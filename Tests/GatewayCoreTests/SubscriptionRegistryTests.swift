@testable import GatewayCore
import JSONRPC
import XCTest

/// SPEC §6.4: channels reference-counted over clients, shared first subscriptions, splitting,
/// scope, the case-insensitive fallback and re-subscription after a reconnect.
final class SubscriptionRegistryTests: XCTestCase {
    private let ticker = "ticker.BTC-PERPETUAL.100ms"
    private let index = "deribit_price_index.btc_usd"

    // MARK: helpers

    private func subscribe(
        _ reg: inout SubscriptionRegistry, _ c: ClientID, _ channels: [String], id: String = "1", scope: Scope = .full,
        isPrivate: Bool = false
    ) -> [String] {
        switch reg.subscribe(SubscribeRequest(client: c, id: Array(id.utf8), receivedAt: 0), channels: channels, scope: scope,
                             isPrivate: isPrivate) {
        case .success(let effects): return describe(effects)
        case .failure(let error): return ["refused \(error.code) \(error.message)"]
        }
    }

    private func describe(_ effects: [SubscriptionEffect]) -> [String] {
        effects.map {
            switch $0 {
            case .answer(let r, let channels, let snapshots):
                return "answer \(r.client.slot) id \(text(r.id)) \(channels)" + (snapshots.isEmpty ? "" : " +\(snapshots.count) snapshots")
            case .answerFailure(let r, let outcome): return "failure \(r.client.slot) id \(text(r.id)) \(outcome.errorDescription ?? "")"
            case .subscribeUpstream(let chunk): return "subscribe \(chunk)"
            case .unsubscribeUpstream(let chunk): return "unsubscribe \(chunk)"
            case .warning(let w): return "warning \(w)"
            }
        }
    }

    /// Deribit's answer to a subscribe request: the channels it granted.
    private func granted(_ channels: [String]) throws -> UpstreamOutcome {
        try upstreamResponse(#"{"jsonrpc":"2.0","id":9,"result":\#(JSONValue.strings(channels).text)}"#)
    }

    /// The upstream request the runtime writes for one chunk.
    private func upstreamRequest(_ chunk: [String]) -> [UInt8] {
        JSONRPCWire.request(id: UInt64.max, method: "private/unsubscribe", paramsJSON: JSONValue.object([("channels", .strings(chunk))]).bytes)
    }

    private func notification(channel: String) throws -> ([UInt8], Range<Int>) {
        let bytes = Array(#"{"jsonrpc":"2.0","method":"subscription","params":{"channel":"\#(channel)","data":{"price":65000.5}}}"#.utf8)
        return (bytes, try XCTUnwrap(try JSONRPCScanner.scan(bytes).channel))
    }

    // MARK: reference counting

    func testConcurrentFirstSubscriptionsShareOneUpstreamRequestAndAnswerEveryAsker() throws {
        var reg = SubscriptionRegistry()
        XCTAssertEqual(subscribe(&reg, client(1), [ticker]), [#"subscribe ["ticker.BTC-PERPETUAL.100ms"]"#])
        XCTAssertEqual(subscribe(&reg, client(2), [ticker], id: #""b""#), [], "waits for the same upstream answer")
        XCTAssertEqual(describe(reg.upstreamAnswered([ticker], try granted([ticker]))), [
            #"answer 1 id 1 ["ticker.BTC-PERPETUAL.100ms"]"#,
            #"answer 2 id "b" ["ticker.BTC-PERPETUAL.100ms"]"#,
        ])
        XCTAssertEqual(reg.channels[ticker]?.holders, [client(1), client(2)])

        XCTAssertEqual(subscribe(&reg, client(3), [ticker], id: "3"), [#"answer 3 id 3 ["ticker.BTC-PERPETUAL.100ms"]"#],
                       "an active channel is confirmed at once, without an upstream request")
        XCTAssertEqual(subscribe(&reg, client(3), [ticker], id: "4"), [#"answer 3 id 4 ["ticker.BTC-PERPETUAL.100ms"]"#],
                       "subscribing twice is harmless")
        XCTAssertEqual(reg.channels[ticker]?.holders, [client(1), client(2), client(3)])
    }

    func testTheLastHolderReleasesTheChannelUpstream() throws {
        var reg = SubscriptionRegistry()
        _ = subscribe(&reg, client(1), [ticker])
        _ = subscribe(&reg, client(2), [ticker])
        _ = reg.upstreamAnswered([ticker], try granted([ticker]))

        var (removed, effects) = reg.unsubscribe(client(1), channels: [ticker])
        XCTAssertEqual(removed, [ticker])
        XCTAssertEqual(describe(effects), [])
        (removed, effects) = reg.unsubscribe(client(1), channels: [ticker])
        XCTAssertEqual(removed, [], "not held any more")
        (removed, effects) = reg.unsubscribe(client(2), channels: [ticker, "ticker.ETH-PERPETUAL.100ms"])
        XCTAssertEqual(removed, [ticker])
        XCTAssertEqual(describe(effects), [#"unsubscribe ["ticker.BTC-PERPETUAL.100ms"]"#])
        XCTAssertTrue(reg.channels.isEmpty)
        XCTAssertEqual(subscribe(&reg, client(3), [ticker]), [#"subscribe ["ticker.BTC-PERPETUAL.100ms"]"#], "subscribed anew")
    }

    func testChannelsMissingFromTheUpstreamResultAreNotHeld() throws {
        var reg = SubscriptionRegistry()
        let bogus = "ticker.NO-SUCH-INSTRUMENT.100ms"
        XCTAssertEqual(subscribe(&reg, client(1), [ticker, bogus]), [#"subscribe ["ticker.BTC-PERPETUAL.100ms", "ticker.NO-SUCH-INSTRUMENT.100ms"]"#])
        XCTAssertEqual(describe(reg.upstreamAnswered([ticker, bogus], try granted([ticker]))), [#"answer 1 id 1 ["ticker.BTC-PERPETUAL.100ms"]"#])
        XCTAssertEqual(Set(reg.channels.keys), [ticker])
        XCTAssertEqual(reg.channels(of: client(1)), [ticker])
        XCTAssertEqual(subscribe(&reg, client(2), [bogus]), [#"subscribe ["ticker.NO-SUCH-INSTRUMENT.100ms"]"#], "asked again, not remembered")
    }

    func testAnUpstreamErrorIsTheAnswerUnlessSomethingWasGranted() throws {
        var reg = SubscriptionRegistry()
        let refusal = try upstreamResponse(#"{"jsonrpc":"2.0","id":9,"error":{"code":11050,"message":"bad_request"}}"#)
        _ = subscribe(&reg, client(1), [ticker])
        XCTAssertEqual(describe(reg.upstreamAnswered(["x.y"], refusal)), [], "not a chunk of ours")
        _ = reg.upstreamAnswered([ticker], try granted([ticker]))
        XCTAssertEqual(subscribe(&reg, client(2), ["x.y"], id: "7"), [#"subscribe ["x.y"]"#])
        XCTAssertEqual(subscribe(&reg, client(3), [ticker, "x.y"], id: "8"), [])
        XCTAssertEqual(describe(reg.upstreamAnswered(["x.y"], refusal)), [
            #"failure 2 id 7 {"code":11050,"message":"bad_request"}"#,
            #"answer 3 id 8 ["ticker.BTC-PERPETUAL.100ms"]"#,
        ])
        XCTAssertNil(reg.channels["x.y"])
    }

    func testASubscriptionLostWithTheUpstreamFailsWithUpstreamUnavailable() {
        var reg = SubscriptionRegistry()
        _ = subscribe(&reg, client(1), [ticker])
        XCTAssertEqual(describe(reg.upstreamAnswered([ticker], .failed(.upstreamUnavailable))), ["failure 1 id 1 -32000 upstream_unavailable"])
        XCTAssertTrue(reg.channels.isEmpty)
    }

    func testAnAskerWaitingOnTwoUpstreamRequestsIsAnsweredOnceWithBoth() throws {
        var reg = SubscriptionRegistry()
        _ = subscribe(&reg, client(1), [ticker])
        XCTAssertEqual(subscribe(&reg, client(2), [ticker, index]), [#"subscribe ["deribit_price_index.btc_usd"]"#])
        XCTAssertEqual(describe(reg.upstreamAnswered([ticker], try granted([ticker]))), [#"answer 1 id 1 ["ticker.BTC-PERPETUAL.100ms"]"#])
        XCTAssertEqual(describe(reg.upstreamAnswered([index], try granted([index]))),
                       [#"answer 2 id 1 ["ticker.BTC-PERPETUAL.100ms", "deribit_price_index.btc_usd"]"#])
    }

    // MARK: clients leaving

    func testReleaseAllOfAGoneClientReleasesOnlyWhatNobodyElseHolds() throws {
        var reg = SubscriptionRegistry()
        _ = subscribe(&reg, client(1), [ticker, index])
        _ = subscribe(&reg, client(2), [index])
        _ = reg.upstreamAnswered([ticker, index], try granted([ticker, index]))
        XCTAssertEqual(describe(reg.releaseAll(of: client(1), gone: true)), [#"unsubscribe ["ticker.BTC-PERPETUAL.100ms"]"#])
        XCTAssertEqual(reg.channels(of: client(1)), [])
        XCTAssertEqual(reg.channels[index]?.holders, [client(2)])
        XCTAssertEqual(describe(reg.releaseAll(of: client(1), gone: true)), [], "twice is harmless")
    }

    func testAGoneClientsSubscriptionInFlightIsReleasedWhenGrantedAndNotAnswered() throws {
        var reg = SubscriptionRegistry()
        _ = subscribe(&reg, client(1), [ticker])
        XCTAssertEqual(describe(reg.releaseAll(of: client(1), gone: true)), [])
        XCTAssertEqual(describe(reg.upstreamAnswered([ticker], try granted([ticker]))), [#"unsubscribe ["ticker.BTC-PERPETUAL.100ms"]"#])
        XCTAssertTrue(reg.channels.isEmpty)
    }

    func testUnsubscribeAllOvertakingItsOwnSubscribeIsAnsweredInDeribitsOrder() throws {
        // Deribit handles a connection's requests in order: the subscribe is granted, then undone.
        var reg = SubscriptionRegistry()
        _ = subscribe(&reg, client(1), [ticker])
        _ = subscribe(&reg, client(2), [ticker], id: "2")
        XCTAssertEqual(describe(reg.releaseAll(of: client(1), gone: false)), [])
        XCTAssertEqual(describe(reg.upstreamAnswered([ticker], try granted([ticker]))), [
            #"answer 1 id 1 ["ticker.BTC-PERPETUAL.100ms"]"#, #"answer 2 id 2 ["ticker.BTC-PERPETUAL.100ms"]"#,
        ])
        XCTAssertEqual(reg.channels[ticker]?.holders, [client(2)], "the client that unsubscribed does not hold it")
    }

    func testUnsubscribeOvertakingItsOwnSubscribe() throws {
        var reg = SubscriptionRegistry()
        _ = subscribe(&reg, client(1), [ticker])
        let (removed, effects) = reg.unsubscribe(client(1), channels: [ticker])
        XCTAssertEqual(removed, [ticker])
        XCTAssertEqual(describe(effects), [])
        XCTAssertEqual(describe(reg.upstreamAnswered([ticker], try granted([ticker]))), [
            #"answer 1 id 1 ["ticker.BTC-PERPETUAL.100ms"]"#, #"unsubscribe ["ticker.BTC-PERPETUAL.100ms"]"#,
        ])
        XCTAssertTrue(reg.channels.isEmpty)
    }

    // MARK: names

    func testNotificationsFindTheirChannelExactlyOrIgnoringCase() throws {
        var reg = SubscriptionRegistry()
        _ = subscribe(&reg, client(1), [index])
        _ = reg.upstreamAnswered([index], try granted([index]))
        var (bytes, range) = try notification(channel: index)
        XCTAssertEqual(reg.entry(named: bytes, range)?.name, index)
        (bytes, range) = try notification(channel: "deribit_price_index.BTC_USD")
        XCTAssertEqual(reg.entry(named: bytes, range)?.name, index, "Deribit may change the case of a currency")
        (bytes, range) = try notification(channel: "deribit_price_index.eth_usd")
        XCTAssertNil(reg.entry(named: bytes, range))
        _ = reg.unsubscribe(client(1), channels: [index])
        (bytes, range) = try notification(channel: "deribit_price_index.BTC_USD")
        XCTAssertNil(reg.entry(named: bytes, range), "released: neither match remains")
    }

    func testAChannelSpelledInAnotherCaseIsTheSameChannel() throws {
        var reg = SubscriptionRegistry()
        _ = subscribe(&reg, client(1), [index])
        _ = reg.upstreamAnswered([index], try granted(["deribit_price_index.BTC_USD"]))
        XCTAssertEqual(reg.channels(of: client(1)), [index], "granted in another case is granted")
        XCTAssertEqual(subscribe(&reg, client(2), ["deribit_price_index.BTC_USD"]), [#"answer 2 id 1 ["deribit_price_index.BTC_USD"]"#],
                       "joined at once, answered in its own spelling")
        XCTAssertEqual(reg.channels[index]?.holders, [client(1), client(2)])
    }

    // MARK: scope (SPEC §6.3)

    func testRawChannelsNeedReadScope() {
        var reg = SubscriptionRegistry()
        XCTAssertEqual(subscribe(&reg, client(1), [ticker, "trades.BTC-PERPETUAL.raw"], scope: .public),
                       ["refused 13778 raw_subscriptions_not_available_for_unauthorized"])
        XCTAssertTrue(reg.channels.isEmpty, "the whole request is refused")
        XCTAssertEqual(subscribe(&reg, client(2), ["trades.BTC-PERPETUAL.raw"], scope: .read), [#"subscribe ["trades.BTC-PERPETUAL.raw"]"#])
    }

    func testUserChannelsNeedPrivateSubscribeAndReadScope() {
        var reg = SubscriptionRegistry()
        let orders = "user.orders.BTC-PERPETUAL.raw"
        XCTAssertEqual(subscribe(&reg, client(1), [orders, ticker], isPrivate: false), [#"subscribe ["ticker.BTC-PERPETUAL.100ms"]"#],
                       "dropped from public/subscribe, as Deribit does")
        XCTAssertEqual(subscribe(&reg, client(2), [orders], isPrivate: false), [#"answer 2 id 1 []"#], "nothing left: answered at once")
        XCTAssertEqual(subscribe(&reg, client(3), [orders], scope: .public, isPrivate: true), [#"answer 3 id 1 []"#],
                       "account data needs read; not a 13778")
        XCTAssertEqual(subscribe(&reg, client(4), [orders], scope: .read, isPrivate: true), [#"subscribe ["user.orders.BTC-PERPETUAL.raw"]"#])
    }

    // MARK: reconnects

    func testAfterAReconnectEveryHeldChannelIsSubscribedAgain() throws {
        var reg = SubscriptionRegistry()
        _ = subscribe(&reg, client(1), [ticker, index])
        _ = reg.upstreamAnswered([ticker, index], try granted([ticker, index]))
        reg.upstreamLost()
        XCTAssertEqual(describe(reg.upstreamReady()), [#"subscribe ["deribit_price_index.btc_usd", "ticker.BTC-PERPETUAL.100ms"]"#])
        XCTAssertFalse(reg.isActive(ticker), "waiting for the upstream again")
        XCTAssertEqual(describe(reg.upstreamAnswered([index, ticker], try granted([index, ticker]))), [], "nobody asked: nobody is answered")
        XCTAssertTrue(reg.isActive(ticker))
        XCTAssertEqual(reg.channels(of: client(1)), [ticker, index])
    }

    func testUpstreamLossWhileResubscribingKeepsTheHolders() throws {
        var reg = SubscriptionRegistry()
        _ = subscribe(&reg, client(1), [ticker, index])
        _ = reg.upstreamAnswered([ticker, index], try granted([ticker, index]))
        let chunk = [index, ticker]
        XCTAssertEqual(describe(reg.upstreamReady()), ["subscribe \(chunk)"])
        XCTAssertEqual(describe(reg.upstreamAnswered(chunk, .failed(.upstreamUnavailable))), [])
        XCTAssertEqual(reg.channels(of: client(1)), [ticker, index])
        XCTAssertTrue(reg.isActive(ticker))
        XCTAssertEqual(describe(reg.upstreamReady()), ["subscribe \(chunk)"], "the next session subscribes them again")

        // Refused on re-subscription: the holders lose it, and an operator is told.
        XCTAssertEqual(describe(reg.upstreamAnswered(chunk, try granted([ticker]))),
                       ["warning upstream refused channel deribit_price_index.btc_usd on re-subscribe"])
        XCTAssertEqual(reg.channels(of: client(1)), [ticker])
        XCTAssertNil(reg.channels[index])
    }

    func testAClientJoiningDuringAResubscriptionWaitsForIt() throws {
        var reg = SubscriptionRegistry()
        _ = subscribe(&reg, client(1), [ticker])
        _ = reg.upstreamAnswered([ticker], try granted([ticker]))
        _ = reg.upstreamReady()
        XCTAssertEqual(subscribe(&reg, client(2), [ticker]), [])
        XCTAssertEqual(describe(reg.upstreamAnswered([ticker], try granted([ticker]))), [#"answer 2 id 1 ["ticker.BTC-PERPETUAL.100ms"]"#])
        XCTAssertEqual(reg.channels[ticker]?.holders, [client(1), client(2)])
    }

    func testTheGatewaysPinnedChannelOutlivesItsClientHolders() throws {
        var reg = SubscriptionRegistry()
        let tracking = OrderTracker.trackingChannel
        reg.pin(tracking)
        XCTAssertEqual(describe(reg.upstreamReady()), [#"subscribe ["user.orders.any.any.raw"]"#])
        _ = reg.upstreamAnswered([tracking], try granted([tracking]))
        XCTAssertEqual(subscribe(&reg, client(1), [tracking], scope: .read, isPrivate: true), [#"answer 1 id 1 ["user.orders.any.any.raw"]"#])
        XCTAssertEqual(describe(reg.unsubscribe(client(1), channels: [tracking]).effects), [], "the gateway still holds it")
        XCTAssertEqual(describe(reg.releaseAll(of: client(1), gone: true)), [])
        XCTAssertTrue(reg.isActive(tracking))
    }

    // MARK: splitting (SPEC §6.4: ≤ 500 channels and < 32 kB a request)

    func testShortChannelsAreSplitBy500() {
        let channels = (0..<1_200).map { "ticker.I-\($0).100ms" }
        let chunks = SubscriptionRegistry.chunks(channels)
        XCTAssertEqual(chunks.map(\.count), [500, 500, 200])
        XCTAssertEqual(Array(chunks.joined()), channels, "in order, none lost")
        XCTAssertTrue(chunks.allSatisfy { upstreamRequest($0).count <= 32_000 })
        XCTAssertEqual(SubscriptionRegistry.chunks([]).count, 0)
    }

    func testLongChannelsAreSplitByTheByteBudget() {
        let channels = (0..<100).map { k in "book." + String(repeating: "X", count: 990) + ".\(k / 10)\(k % 10)ms" }
        XCTAssertTrue(channels.allSatisfy { $0.utf8.count == 1_000 })
        let chunks = SubscriptionRegistry.chunks(channels)
        // 1,003 budget bytes each (quotes and a comma): 29 fit in 30,000.
        XCTAssertEqual(chunks.map(\.count), [29, 29, 29, 13])
        XCTAssertEqual(Array(chunks.joined()), channels)
        for chunk in chunks { XCTAssertLessThanOrEqual(upstreamRequest(chunk).count, 32_000) }
    }

    func testMixedLengthsNeverExceedEitherLimit() {
        var random = SplitMix64(seed: 5)
        let channels = (0..<1_000).map { k in "c\(k)." + String(repeating: "y", count: Int.random(in: 0..<200, using: &random)) }
        let chunks = SubscriptionRegistry.chunks(channels)
        XCTAssertEqual(Array(chunks.joined()), channels)
        for chunk in chunks {
            XCTAssertLessThanOrEqual(chunk.count, 500)
            XCTAssertLessThanOrEqual(chunk.reduce(0) { $0 + $1.utf8.count + 3 }, 30_000)
            XCTAssertLessThanOrEqual(upstreamRequest(chunk).count, 32_000)
        }
    }

    func testALargeSubscribeIsSplitAndTheResultsMerged() throws {
        var reg = SubscriptionRegistry()
        let channels = (0..<1_200).map { "ticker.I-\($0).100ms" }
        let effects = subscribe(&reg, client(1), channels)
        XCTAssertEqual(effects.count, 3)
        let chunks = SubscriptionRegistry.chunks(channels)
        XCTAssertEqual(effects, chunks.map { "subscribe \($0)" })
        XCTAssertEqual(describe(reg.upstreamAnswered(chunks[0], try granted(chunks[0]))), [])
        XCTAssertEqual(describe(reg.upstreamAnswered(chunks[2], try granted(chunks[2]))), [], "in any order")
        XCTAssertEqual(describe(reg.upstreamAnswered(chunks[1], try granted(Array(chunks[1].dropLast())))),
                       ["answer 1 id 1 \(channels.filter { $0 != chunks[1].last! })"], "one answer, every chunk's result")
    }

    /// SPEC §6.1: nothing over 32,000 bytes goes upstream. A channel name is written in JSON with
    /// its escapes (`"` → `\"`, a control character → `\u00XX`), which the budget must count.
    func testChunksCountChannelsAsWrittenInJSON() {
        let channels = (0..<400).map { k in "c\(k)." + String(repeating: "\"", count: 100) }
        for chunk in SubscriptionRegistry.chunks(channels) {
            XCTAssertLessThanOrEqual(upstreamRequest(chunk).count, 32_000, "a chunk of \(chunk.count)")
        }
        let controls = (0..<400).map { k in "c\(k)." + String(repeating: "\u{1}", count: 60) }
        for chunk in SubscriptionRegistry.chunks(controls) {
            XCTAssertLessThanOrEqual(upstreamRequest(chunk).count, 32_000, "a chunk of \(chunk.count)")
        }
    }

    /// SPEC §6.1: a channel too long for any upstream request under 32,000 bytes must not be
    /// sent upstream (Deribit's refusal would carry no id).
    func testAChannelTooLongForAnyUpstreamRequestIsNeverSent() {
        var reg = SubscriptionRegistry()
        let huge = "ticker." + String(repeating: "X", count: 31_990)
        guard case .success(let effects) = reg.subscribe(SubscribeRequest(client: client(1), id: Array("1".utf8), receivedAt: 0),
                                                          channels: [huge], scope: .full, isPrivate: false) else { return }
        for case .subscribeUpstream(let chunk) in effects {
            XCTAssertLessThanOrEqual(upstreamRequest(chunk).count, 32_000)
        }
    }
}
