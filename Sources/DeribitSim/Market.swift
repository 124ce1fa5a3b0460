// Synthetic market data: one book per instrument, mutated one step at a time. Every book channel
// of an instrument carries the same changes, so each channel's change_id chain is unbroken and
// public/get_order_book reports the change_id the next change will name as prev_change_id.

struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

enum BookAction: String { case new, change, delete }

struct BookChange {
    var changeID: Int64
    var prevChangeID: Int64
    var bids: [(BookAction, Fixed, Fixed)]
    var asks: [(BookAction, Fixed, Fixed)]
}

struct Book {
    /// Slot k of `bids` is mid - (k+1) ticks; of `asks`, mid + (k+1) ticks. Amount 0 = no level.
    /// `depth` slots are present at any time; a few spare slots let levels appear and vanish.
    var bidPrices: [Fixed]
    var askPrices: [Fixed]
    var bidAmounts: [Fixed]
    var askAmounts: [Fixed]
    var changeID: Int64
    let lot: Fixed

    init(instrument: SimInstrument, depth: Int, firstChangeID: Int64, rng: inout SplitMix64) {
        let tick = Fixed(instrument.tickSize)
        let mid = Fixed(raw: (Fixed(instrument.referencePrice).raw / tick.raw) * tick.raw)
        let slots = depth + max(2, depth / 4)
        lot = Fixed(instrument.minTradeAmount)
        bidPrices = (0..<slots).map { mid - tick * Int64($0 + 1) }
        askPrices = (0..<slots).map { mid + tick * Int64($0 + 1) }
        bidAmounts = Array(repeating: .zero, count: slots)
        askAmounts = Array(repeating: .zero, count: slots)
        changeID = firstChangeID
        for k in 0..<depth {
            bidAmounts[k] = Book.randomAmount(lot: lot, rng: &rng)
            askAmounts[k] = Book.randomAmount(lot: lot, rng: &rng)
        }
    }

    static func randomAmount(lot: Fixed, rng: inout SplitMix64) -> Fixed {
        lot * Int64(1 + rng.next() % 200)
    }

    var bestBid: (Fixed, Fixed)? {
        for k in bidAmounts.indices where bidAmounts[k] != .zero { return (bidPrices[k], bidAmounts[k]) }
        return nil
    }
    var bestAsk: (Fixed, Fixed)? {
        for k in askAmounts.indices where askAmounts[k] != .zero { return (askPrices[k], askAmounts[k]) }
        return nil
    }

    /// Levels best first.
    func levels(bids: Bool, limit: Int = .max) -> [(Fixed, Fixed)] {
        let prices = bids ? bidPrices : askPrices
        let amounts = bids ? bidAmounts : askAmounts
        var out: [(Fixed, Fixed)] = []
        for k in amounts.indices where amounts[k] != .zero {
            out.append((prices[k], amounts[k]))
            if out.count >= limit { break }
        }
        return out
    }

    /// One step: an amount changes, and now and then a level disappears and another appears.
    mutating func step(rng: inout SplitMix64) -> BookChange {
        var change = BookChange(changeID: changeID + 1, prevChangeID: changeID, bids: [], asks: [])
        let bidSide = rng.next() & 1 == 0
        var amounts = bidSide ? bidAmounts : askAmounts
        let prices = bidSide ? bidPrices : askPrices
        var entries: [(BookAction, Fixed, Fixed)] = []
        let present = amounts.indices.filter { amounts[$0] != .zero }
        let absent = amounts.indices.filter { amounts[$0] == .zero }
        if rng.next() % 10 < 3, let gone = present.randomElement(using: &rng), let born = absent.randomElement(using: &rng) {
            amounts[gone] = .zero
            amounts[born] = Book.randomAmount(lot: lot, rng: &rng)
            entries.append((.delete, prices[gone], .zero))
            entries.append((.new, prices[born], amounts[born]))
        } else if let k = present.randomElement(using: &rng) {
            var a = Book.randomAmount(lot: lot, rng: &rng)
            if a == amounts[k] { a = a + lot }
            amounts[k] = a
            entries.append((.change, prices[k], a))
        }
        if bidSide { bidAmounts = amounts; change.bids = entries } else { askAmounts = amounts; change.asks = entries }
        changeID += 1
        return change
    }
}

/// Per-instrument market state: the book, last trade, statistics.
struct MarketState {
    let instrument: SimInstrument
    var book: Book
    var lastPrice: Fixed
    var tradeSeq: Int64 = 0
    var volume: Fixed = .zero
    var high: Fixed
    var low: Fixed
    /// When the next step is due (µs); nil while no market-data channel of it is subscribed.
    var nextStepMicros: UInt64?

    init(instrument: SimInstrument, depth: Int, firstChangeID: Int64, rng: inout SplitMix64) {
        self.instrument = instrument
        book = Book(instrument: instrument, depth: depth, firstChangeID: firstChangeID, rng: &rng)
        lastPrice = Fixed(instrument.referencePrice)
        high = lastPrice
        low = lastPrice
    }

    var mark: Fixed {
        guard let b = book.bestBid?.0, let a = book.bestAsk?.0 else { return lastPrice }
        return Fixed(raw: (b.raw + a.raw) / 2)
    }
}
