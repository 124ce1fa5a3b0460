// Configuration of the simulator. Every default is Deribit's where Deribit publishes one.

public struct SimConnectionID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let raw: UInt64
    public init(_ raw: UInt64) { self.raw = raw }
    public static func < (a: SimConnectionID, b: SimConnectionID) -> Bool { a.raw < b.raw }
    public var description: String { String(raw) }
}

/// What the glue must do. The core has already forgotten a connection it closes or drops
/// (and applied its cancel-on-disconnect); a later `connectionClosed` for it is a no-op.
public enum SimEffect: Sendable, Equatable {
    /// One text frame.
    case send(SimConnectionID, [UInt8])
    /// The same text frame to many connections; encoded once.
    case broadcast([SimConnectionID], [UInt8])
    /// WebSocket close handshake (RFC 6455 §5.5.1).
    case close(SimConnectionID, code: UInt16, reason: String)
    /// Abrupt TCP close, no close frame.
    case drop(SimConnectionID)
}

/// A token bucket as Deribit describes its credit system: `cost` per request, `max` credits,
/// continuous refill of `refillPerSecond`.
public struct SimBucketConfig: Sendable, Equatable {
    public var cost: Double
    public var max: Double
    public var refillPerSecond: Double
    public init(cost: Double, max: Double, refillPerSecond: Double) {
        self.cost = cost; self.max = max; self.refillPerSecond = refillPerSecond
    }
}

public struct SimInstrument: Sendable, Equatable {
    public enum Kind: String, Sendable { case future, option, spot }
    public var name: String
    public var kind: Kind
    public var baseCurrency: String
    public var isPerpetual: Bool
    /// Milliseconds since the epoch; 32503708800000 (3000-01-01 08:00 UTC) for perpetuals, as Deribit.
    public var expirationTimestamp: Int64
    public var strike: Double?
    /// "call" or "put".
    public var optionType: String?
    public var tickSize: Double
    public var contractSize: Double
    public var minTradeAmount: Double
    /// Mid price the synthetic book is built around.
    public var referencePrice: Double

    public init(name: String, kind: Kind, baseCurrency: String, isPerpetual: Bool, expirationTimestamp: Int64,
                strike: Double? = nil, optionType: String? = nil, tickSize: Double, contractSize: Double,
                minTradeAmount: Double, referencePrice: Double) {
        self.name = name; self.kind = kind; self.baseCurrency = baseCurrency; self.isPerpetual = isPerpetual
        self.expirationTimestamp = expirationTimestamp; self.strike = strike; self.optionType = optionType
        self.tickSize = tickSize; self.contractSize = contractSize; self.minTradeAmount = minTradeAmount
        self.referencePrice = referencePrice
    }

    /// Builds an instrument from a Deribit name: `BTC-PERPETUAL`, `ETH-27MAR26` (future),
    /// `BTC-27MAR26-100000-C` (option). Nil when the name is not in one of these forms.
    public static func parse(_ name: String) -> SimInstrument? {
        let parts = name.split(separator: "-").map(String.init)
        guard parts.count >= 2, !parts[0].isEmpty, parts[0].allSatisfy({ $0.isLetter && $0.isUppercase }) else { return nil }
        let cur = parts[0]
        let spot: Double = cur == "BTC" ? 65000 : cur == "ETH" ? 3500 : 100
        let futureTick = cur == "BTC" ? 0.5 : 0.05
        let futureContract = cur == "BTC" ? 10.0 : 1.0
        if parts.count == 2, parts[1] == "PERPETUAL" {
            return SimInstrument(name: name, kind: .future, baseCurrency: cur, isPerpetual: true,
                                 expirationTimestamp: 32_503_708_800_000, tickSize: futureTick,
                                 contractSize: futureContract, minTradeAmount: futureContract, referencePrice: spot)
        }
        guard let expiry = expiryMillis(parts[1]) else { return nil }
        if parts.count == 2 {
            return SimInstrument(name: name, kind: .future, baseCurrency: cur, isPerpetual: false,
                                 expirationTimestamp: expiry, tickSize: futureTick, contractSize: futureContract,
                                 minTradeAmount: futureContract, referencePrice: spot + spot * 0.01)
        }
        guard parts.count == 4, let strike = Double(parts[2]), parts[3] == "C" || parts[3] == "P" else { return nil }
        let intrinsic = parts[3] == "C" ? max(0, spot - strike) : max(0, strike - spot)
        let premium = ((intrinsic / spot) + 0.02) * 10_000
        return SimInstrument(name: name, kind: .option, baseCurrency: cur, isPerpetual: false,
                             expirationTimestamp: expiry, strike: strike, optionType: parts[3] == "C" ? "call" : "put",
                             tickSize: 0.0005, contractSize: 1, minTradeAmount: 0.1,
                             referencePrice: (premium.rounded() / 10_000))
    }

    /// `27MAR26` → 08:00 UTC of that day in milliseconds (Deribit expiries are at 08:00 UTC).
    static func expiryMillis(_ s: String) -> Int64? {
        let months = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
        let chars = Array(s)
        guard chars.count == 6 || chars.count == 7 else { return nil }
        let dayLen = chars.count - 5
        guard let day = Int(String(chars[0..<dayLen])),
              let month = months.firstIndex(of: String(chars[dayLen..<dayLen + 3])),
              let yy = Int(String(chars[(dayLen + 3)...])), (1...31).contains(day) else { return nil }
        // Days from civil (H. Hinnant's algorithm).
        let y = 2000 + yy - (month < 2 ? 1 : 0)
        let era = y / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = Int64(era * 146_097 + doe - 719_468)
        return (days * 86_400 + 8 * 3_600) * 1_000
    }

    public static let defaults: [SimInstrument] = [
        "BTC-PERPETUAL", "ETH-PERPETUAL", "BTC-25DEC26", "BTC-26MAR27", "ETH-25DEC26",
        "BTC-25DEC26-70000-C", "BTC-25DEC26-60000-P",
    ].compactMap(SimInstrument.parse)
}

public struct SimConfig: Sendable {
    /// API keys (client_id, client_secret). Empty means the single key `sim-client` / `sim-secret`.
    public var keys: [(id: String, secret: String)]
    /// Notifications per second on each market-data channel (ticker, trades, book).
    public var notificationRatePerSecond: Double
    /// `expires_in` of issued access tokens. Deribit: 31536000 (docs example of public/auth).
    public var tokenLifetimeSeconds: UInt64
    /// Extra time after `interval` that a connection has to answer a `test_request` with
    /// `public/test` before it is dropped.
    public var heartbeatGraceSeconds: Double
    /// Non-matching-engine requests (Deribit: 500 a request, 50,000 max, 10,000/s).
    public var defaultCredits: SimBucketConfig
    /// public/private subscribe (Deribit: 3,000 a request, 30,000 max, 10,000/s).
    public var subscribeCredits: SimBucketConfig
    /// Matching-engine requests (buy, sell, edit, cancel*): `matchingEngineRate` a second with a
    /// burst of `matchingEngineBurst` (Deribit's lowest tier: 5/s, burst 20).
    public var matchingEngineRate: Double
    public var matchingEngineBurst: Double
    public var instruments: [SimInstrument]
    /// A frame above this size is answered with -32600 and no id (Deribit: 32 kB).
    public var maxFrameBytes: Int
    /// Seed of the synthetic market data; the same seed gives the same books and trades.
    public var seed: UInt64
    /// Price levels per side of each synthetic book. ~20 bytes a level: 400 gives ~16 KB snapshots.
    public var bookDepth: Int
    /// `public/hello` and `public/test` report this version.
    public var version: String

    public init(keys: [(id: String, secret: String)] = [],
                notificationRatePerSecond: Double = 10,
                tokenLifetimeSeconds: UInt64 = 31_536_000,
                heartbeatGraceSeconds: Double = 1,
                defaultCredits: SimBucketConfig = .init(cost: 500, max: 50_000, refillPerSecond: 10_000),
                subscribeCredits: SimBucketConfig = .init(cost: 3_000, max: 30_000, refillPerSecond: 10_000),
                matchingEngineRate: Double = 5,
                matchingEngineBurst: Double = 20,
                instruments: [SimInstrument] = SimInstrument.defaults,
                maxFrameBytes: Int = 32_768,
                seed: UInt64 = 42,
                bookDepth: Int = 20,
                version: String = "1.2.26") {
        self.keys = keys.isEmpty ? [("sim-client", "sim-secret")] : keys
        self.notificationRatePerSecond = notificationRatePerSecond
        self.tokenLifetimeSeconds = tokenLifetimeSeconds
        self.heartbeatGraceSeconds = heartbeatGraceSeconds
        self.defaultCredits = defaultCredits
        self.subscribeCredits = subscribeCredits
        self.matchingEngineRate = matchingEngineRate
        self.matchingEngineBurst = matchingEngineBurst
        self.instruments = instruments
        self.maxFrameBytes = maxFrameBytes
        self.seed = seed
        self.bookDepth = max(1, bookDepth)
        self.version = version
    }
}
