// deribit-sim: a Deribit-compatible exchange simulator on loopback (SPEC §9).
import ArgumentParser
import DeribitSim
import Logging

struct DeribitSimCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deribit-sim",
        abstract: "A Deribit-compatible exchange simulator for tests, benchmarks and offline development.",
        discussion: """
        Serves the Deribit JSON-RPC API on ws://HOST:PORT/ws/api/v2, Deribit's HTTP GET API on \
        /api/v2/{public,private}/*, its state on GET /sim/state, fault injection on POST /sim/fault/* \
        and POST /sim/publish. Prints "deribit-sim listening on HOST:PORT" once bound. Defaults are \
        Deribit's published ones. See docs/SIM.md.
        """
    )

    @Option(help: "Address to listen on, HOST:PORT (port 0: any free port, printed once bound).")
    var listen: String = "127.0.0.1:8778"

    @Option(help: "API keys as ID:SECRET[,ID:SECRET...]. Default: sim-client:sim-secret.")
    var keys: String?

    @Option(help: "Notifications per second on each market-data channel (Deribit's 100ms channels: 10).")
    var rate: Double = 10

    @Option(help: "Instruments, comma-separated Deribit names (BTC-PERPETUAL, BTC-25DEC26, BTC-25DEC26-70000-C). Default: BTC-PERPETUAL, ETH-PERPETUAL, two BTC futures, one ETH future, two BTC options.")
    var instruments: String?

    @Option(name: .customLong("token-lifetime"), help: "expires_in of access tokens, seconds (Deribit: 31536000).")
    var tokenLifetime: UInt64 = 31_536_000

    @Option(name: .customLong("heartbeat-grace"), help: "After a test_request, a connection that has not called public/test within the heartbeat interval plus this many seconds is dropped.")
    var heartbeatGrace: Double = 1

    @Option(name: .customLong("credit-max"), help: "Default credit bucket size (Deribit: 50000).")
    var creditMax: Double = 50_000
    @Option(name: .customLong("credit-refill"), help: "Default bucket refill per second (Deribit: 10000).")
    var creditRefill: Double = 10_000
    @Option(name: .customLong("credit-cost"), help: "Credits per non-matching-engine request (Deribit: 500).")
    var creditCost: Double = 500
    @Option(name: .customLong("subscribe-max"), help: "Subscribe bucket size (Deribit: 30000).")
    var subscribeMax: Double = 30_000
    @Option(name: .customLong("subscribe-cost"), help: "Credits per subscribe request (Deribit: 3000).")
    var subscribeCost: Double = 3_000
    @Option(name: .customLong("subscribe-refill"), help: "Subscribe bucket refill per second (Deribit: 10000).")
    var subscribeRefill: Double = 10_000
    @Option(name: .customLong("me-rate"), help: "Matching-engine requests per second (Deribit's lowest tier: 5).")
    var meRate: Double = 5
    @Option(name: .customLong("me-burst"), help: "Matching-engine burst (Deribit's lowest tier: 20).")
    var meBurst: Double = 20

    @Option(name: .customLong("book-depth"), help: "Price levels per side of each synthetic book (400 gives ~16 KB book snapshots, 800 ~31 KB).")
    var bookDepth: Int = 20
    @Option(help: "Seed of the synthetic market data.")
    var seed: UInt64 = 42
    @Option(name: .customLong("max-frame-bytes"), help: "Requests above this size get -32600 without an id (Deribit: 32768).")
    var maxFrameBytes: Int = 32_768

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    func run() throws {
        guard let colon = listen.lastIndex(of: ":"), let port = UInt16(listen[listen.index(after: colon)...]) else {
            throw ValidationError("--listen must be HOST:PORT")
        }
        let host = String(listen[..<colon])
        var parsedKeys: [(id: String, secret: String)] = []
        for pair in (keys ?? "").split(separator: ",") {
            guard let c = pair.firstIndex(of: ":"), c != pair.startIndex, pair.index(after: c) != pair.endIndex else {
                throw ValidationError("--keys expects ID:SECRET pairs")
            }
            parsedKeys.append((String(pair[..<c]), String(pair[pair.index(after: c)...])))
        }
        var list = SimInstrument.defaults
        if let instruments {
            list = []
            for name in instruments.split(separator: ",") {
                guard let inst = SimInstrument.parse(String(name)) else {
                    throw ValidationError("unknown instrument form: \(name)")
                }
                list.append(inst)
            }
        }
        guard let level = Logger.Level(rawValue: logLevel) else { throw ValidationError("unknown --log-level \(logLevel)") }
        var logger = Logger(label: "deribit-sim")
        logger.logLevel = level
        let config = SimConfig(
            keys: parsedKeys, notificationRatePerSecond: rate, tokenLifetimeSeconds: tokenLifetime,
            heartbeatGraceSeconds: heartbeatGrace,
            defaultCredits: .init(cost: creditCost, max: creditMax, refillPerSecond: creditRefill),
            subscribeCredits: .init(cost: subscribeCost, max: subscribeMax, refillPerSecond: subscribeRefill),
            matchingEngineRate: meRate, matchingEngineBurst: meBurst, instruments: list,
            maxFrameBytes: maxFrameBytes, seed: seed, bookDepth: bookDepth)
        try SimServer.run(listenHost: host, port: port, config: config, logger: logger)
    }
}

DeribitSimCommand.main()
