// gateway-bench: the load generator of scripts/bench.sh (SPEC §10). Not a test: it measures.
//
// Each subcommand runs one workload against one path (a ws:// URL: the simulator directly,
// nginx, or the gateway) and prints Markdown table rows; scripts/bench.sh starts the processes
// and assembles BENCHMARKS-style tables.
#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Foundation

func ints(_ s: String) throws -> [Int] {
    try s.split(separator: ",").map {
        guard let v = Int($0.trimmingCharacters(in: .whitespaces)) else { throw ValidationError("not an integer list: \(s)") }
        return v
    }
}

func emit(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

struct GatewayBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gateway-bench",
        abstract: "Load generator for scripts/bench.sh: request path, fan-out, mix, connections, start-up, allocations.",
        subcommands: [RPC.self, FanOut.self, Mix.self, Conns.self, Startup.self, Allocations.self, FreePort.self]
    )
}

struct RPC: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "public/get_time on a fixed schedule; latency from the scheduled send time.")
    @Option(help: "ws://HOST:PORT/PATH") var url: String
    @Option(help: "Row label.") var label: String = "?"
    @Option(help: "Total request rates per second, comma-separated.") var rates: String = "100,1000,10000"
    @Option(help: "Client counts, comma-separated.") var clients: String = "1,10"
    @Option(help: "Measured seconds per run.") var duration: Double = 3
    @Option(help: "Unmeasured seconds before each run.") var warmup: Double = 0.5
    @Option(name: .customLong("spin-us"), help: "Spin (instead of sleeping) this long before each send, for punctual sends.") var spinMicros: UInt64 = 0
    @Flag(help: "Print the table header first.") var header = false

    func run() throws {
        tightenTimerSlack()
        if header { emit(requestPathHeader()) }
        let ep = try Endpoint(url)
        for c in try ints(clients) {
            for r in try ints(rates) {
                let run = RequestPathRun(endpoint: ep, rate: r, clients: c, warmup: warmup, duration: duration)
                run.spinNanos = spinMicros * 1000
                let result = try run.run(label: label)
                emit(requestPathRow(result))
                if !result.firstError.isEmpty {
                    FileHandle.standardError.write(Data("\(label): first error: \(result.firstError.prefix(300))\n".utf8))
                }
                if result.lateSends > 0 {
                    FileHandle.standardError.write(Data("\(label) \(c)x\(r)/s: \(result.lateSends) sends more than 1 ms behind schedule (charged to latency)\n".utf8))
                }
                usleep(200_000)
            }
        }
    }
}

struct FanOut: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fanout",
        abstract: "One hot channel published through /sim/publish to N subscribers; loss, order, one-way latency.")
    @Option(help: "ws://HOST:PORT/PATH the subscribers connect to.") var url: String
    @Option(name: .customLong("sim-port"), help: "The simulator's port (publisher).") var simPort: UInt16
    @Option(help: "The hot channel.") var channel: String = "ticker.BTC-PERPETUAL.100ms"
    @Option(help: "Subscriber counts, comma-separated.") var subscribers: String = "100"
    @Option(help: "Publish rates per second, comma-separated, swept upward.") var rates: String = "500,1000,2500,5000"
    @Option(help: "Seconds per run.") var duration: Double = 3
    @Option(name: .customLong("reader-threads")) var readerThreads: Int = 1
    @Option(name: .customLong("batch-us"), help: "Sleep between epoll rounds so each recv takes several messages (cheaper; adds up to this much to latency).") var batchMicros: UInt32 = 0
    @Option(name: .customLong("server-pid"), help: "The relaying process whose CPU is reported.") var serverPID: Int32?
    @Option(name: .customLong("sim-pid")) var simPID: Int32?
    @Option var label: String = "?"
    @Flag(help: "Print the table header first.") var header = false

    func run() throws {
        tightenTimerSlack()
        _ = raiseFileLimit()
        if header { emit(fanOutHeader()) }
        let ep = try Endpoint(url)
        for n in try ints(subscribers) {
            for r in try ints(rates) {
                let run = FanOutRun(endpoint: ep, simPort: simPort, channel: channel, subscribers: n, rate: r,
                                    duration: duration, readerThreads: readerThreads, batchMicros: batchMicros)
                run.serverPID = serverPID
                run.simPID = simPID
                let result = try run.run(label: label)
                emit(fanOutRow(result))
                if result.lateSends > 0 {
                    FileHandle.standardError.write(Data("\(label) \(n)x\(r)/s: \(result.lateSends) publishes more than 1 ms behind schedule\n".utf8))
                }
                usleep(300_000)
                if !result.sustained { break }  // the sweep stops at the first run that did not keep up
            }
        }
    }
}

struct Mix: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A Deribit-like mix over many channels; the server's CPU and RSS.")
    @Option(help: "ws://HOST:PORT/PATH") var url: String
    @Option(name: .customLong("sim-port")) var simPort: UInt16
    @Option(help: "The simulator's instruments, comma-separated (channels: 4 per instrument).") var instruments: String
    @Option var clients: Int = 20
    @Option(help: "Measured seconds.") var duration: Double = 10
    @Option(name: .customLong("server-pid"), help: "The process whose CPU/RSS is reported.") var serverPID: Int32?
    @Option(name: .customLong("sim-pid")) var simPID: Int32?
    @Option(help: "Seconds between book (un)subscriptions of the churn connection.") var churn: Double = 0.5
    @Option var label: String = "?"
    @Flag var header = false

    func run() throws {
        tightenTimerSlack()
        if header { emit(mixHeader()) }
        let list = instruments.split(separator: ",").map(String.init)
        let result = try MixRun(endpoint: try Endpoint(url), simPort: simPort, instruments: list, clients: clients,
                                duration: duration, serverPID: serverPID, simPID: simPID, churnEvery: churn).run(label: label)
        emit(mixRow(result))
    }
}

struct Conns: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "N idle WebSocket clients: handshakes/s and the server's RSS per client.")
    @Option(help: "ws://HOST:PORT/PATH") var url: String
    @Option var count: Int = 10_000
    @Option(help: "Handshakes in flight at once.") var concurrency: Int = 128
    @Option(help: "Seconds to hold the idle clients before measuring RSS.") var hold: Double = 2
    @Option(name: .customLong("server-pid")) var serverPID: Int32?
    @Option var label: String = "?"
    @Flag var header = false

    func run() throws {
        let limit = raiseFileLimit()
        guard limit > count + 64 else { throw ValidationError("RLIMIT_NOFILE is \(limit): raise ulimit -n above \(count + 64)") }
        if header { emit(connectionsHeader()) }
        let r = runConnections(label: label, endpoint: try Endpoint(url), count: count, concurrency: concurrency, hold: hold, serverPID: serverPID)
        emit(connectionsRow(r))
        if !r.firstFailure.isEmpty { FileHandle.standardError.write(Data("\(label): first failure: \(r.firstFailure)\n".utf8)) }
    }
}

struct Startup: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Process start to GET /health 200, several times.")
    @Option(help: "The deribit-gateway executable.") var gateway: String
    @Option(help: "Its config (listen must be 127.0.0.1:0; upstream the simulator).") var config: String
    @Option var runs: Int = 5
    @Option var label: String = "deribit-gateway"
    @Flag var header = false

    func run() throws {
        if header {
            emit("| process | runs | listening p50 ms | /health 200 min ms | p50 ms | max ms |")
            emit("|---|---|---|---|---|---|")
        }
        var listening: [UInt64] = []
        var healthy: [UInt64] = []
        for _ in 0..<runs {
            let r = try runStartup(executable: gateway, config: config, pollMicros: 500)
            listening.append(r.listening)
            healthy.append(r.healthy)
            usleep(200_000)
        }
        listening.sort()
        healthy.sort()
        let ms: (UInt64) -> String = { String(format: "%.1f", Double($0) / 1e6) }
        emit("| \(label) | \(runs) | \(ms(listening[listening.count / 2])) | \(ms(healthy.first!)) | \(ms(healthy[healthy.count / 2])) | \(ms(healthy.last!)) |")
    }
}

struct Allocations: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "allocs",
        abstract: "Heap allocations per forwarded notification, read from gateways running under scripts/malloc-count.c.")
    @Option(help: "ws://HOST:PORT/PATH of the gateway for the idle and hot windows.") var url: String
    @Option(name: .customLong("sim-port"), help: "Its simulator's port (publisher).") var simPort: UInt16
    @Option(name: .customLong("server-pid"), help: "That gateway's pid (it gets SIGUSR2).") var serverPID: Int32
    @Option(name: .customLong("count-file"), help: "That gateway's MALLOC_COUNT_FILE.") var countFile: String
    @Option(help: "The hot channel.") var channel: String = "ticker.BTC-PERPETUAL.100ms"
    @Option var subscribers: Int = 10
    @Option(help: "Notifications published (and all received) before the windows.") var warmup: Int = 2_000
    @Option(help: "Notifications in the hot window.") var count: Int = 20_000
    @Option(help: "Publish rate per second.") var rate: Int = 2_000
    @Option(name: .customLong("mix-url"), help: "ws://HOST:PORT/PATH of a second gateway, on the mix simulator (optional).") var mixURL: String?
    @Option(name: .customLong("mix-sim-port")) var mixSimPort: UInt16?
    @Option(name: .customLong("mix-server-pid")) var mixServerPID: Int32?
    @Option(name: .customLong("mix-count-file")) var mixCountFile: String?
    @Option(help: "The mix simulator's instruments, comma-separated.") var instruments: String = ""
    @Option(name: .customLong("mix-clients")) var mixClients: Int = 20
    @Option(name: .customLong("mix-seconds"), help: "Measured seconds of the mix window.") var mixSeconds: Double = 10
    @Option(name: .customLong("mix-settle"), help: "Seconds between the last subscription and the mix window.") var mixSettle: Double = 2
    @Option var label: String = "?"
    @Flag(help: "Print the table header first.") var header = false

    func validate() throws {
        if mixURL != nil && (mixSimPort == nil || mixServerPID == nil || mixCountFile == nil || instruments.isEmpty) {
            throw ValidationError("--mix-url needs --mix-sim-port, --mix-server-pid, --mix-count-file and --instruments")
        }
    }

    func run() throws {
        tightenTimerSlack()
        _ = raiseFileLimit()
        if header { emit(allocationsHeader()) }
        let (idle, hot) = try runHotAllocations(
            endpoint: try Endpoint(url), simPort: simPort, channel: channel, subscribers: subscribers, warmup: warmup,
            count: count, rate: rate, counter: try AllocationCounter(pid: serverPID, path: countFile))
        emit(allocationsRow(label, idle, idlePerSecond: nil))
        emit(allocationsRow(label, hot, idlePerSecond: idle.perSecond))
        if let mixURL, let mixSimPort, let mixServerPID, let mixCountFile {
            let mix = try runMixAllocations(
                endpoint: try Endpoint(mixURL), simPort: mixSimPort, instruments: instruments.split(separator: ",").map(String.init),
                clients: mixClients, settle: mixSettle, duration: mixSeconds,
                counter: try AllocationCounter(pid: mixServerPID, path: mixCountFile))
            emit(allocationsRow(label, mix, idlePerSecond: idle.perSecond))
        }
    }
}

struct FreePort: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "free-port", abstract: "Prints a port the kernel says is free (bind 0).")

    func run() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var a = makeAddress("127.0.0.1", 0)
        _ = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        close(fd)
        print(UInt16(bigEndian: a.sin_port))
    }
}

signal(SIGPIPE, SIG_IGN)
// A benchmark must never hang a script: whatever happens, the process ends within 15 minutes.
alarm(900)
GatewayBench.main()
