import ArgumentParser
import Foundation
import Gateway
import Logging

/// `deribit-gateway [--config FILE] [--listen HOST:PORT] [--upstream-url URL]
/// [--log-level LEVEL] [--check-config]` (SPEC §3).
struct GatewayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deribit-gateway",
        abstract: "A local JSON-RPC gateway for the Deribit exchange.",
        discussion: """
            Strategies connect to ws://HOST:PORT/ws/api/v2 and speak the Deribit API v2; the gateway \
            keeps one authenticated upstream WebSocket for all of them. Without --config the built-in \
            defaults apply (listen 127.0.0.1:8777, upstream wss://test.deribit.com/ws/api/v2, no \
            credentials: public data only). A bad configuration exits with status 78.
            """
    )

    /// sysexits.h EX_CONFIG: the configuration is wrong, not the invocation.
    static let configErrorExitCode: Int32 = 78

    @Option(name: .long, help: ArgumentHelp("The JSON configuration file.", valueName: "file"))
    var config: String?

    @Option(name: .long, help: ArgumentHelp("Listen address, overriding the file.", valueName: "host:port"))
    var listen: String?

    @Option(name: .long, help: ArgumentHelp("Upstream WebSocket URL, overriding the file.", valueName: "url"))
    var upstreamURL: String?

    @Option(name: .long, help: "Lowest level logged to stderr.")
    var logLevel: LogLevel = .info

    @Flag(name: .long, help: "Validate the configuration, print 'config OK' or every problem, and exit.")
    var checkConfig = false

    func run() throws {
        // Peers that vanish must surface as EPIPE from send/write, not kill the process.
        signal(SIGPIPE, SIG_IGN)

        let level = logLevel.level
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "deribit-gateway")

        let gatewayConfig: GatewayConfig
        do {
            gatewayConfig = try GatewayConfig.load(
                path: config,
                environment: ProcessInfo.processInfo.environment,
                overrides: GatewayConfigOverrides(listen: listen, upstreamURL: upstreamURL))
        } catch {
            for problem in error.problems {
                FileHandle.standardError.write(Data("config error: \(problem)\n".utf8))
            }
            throw ExitCode(Self.configErrorExitCode)
        }

        for notice in gatewayConfig.notices {
            logger.notice("\(notice)")
        }
        if checkConfig {
            print("config OK")
            return
        }

        logger.info("starting", metadata: [
            "listen": "\(gatewayConfig.listen)",
            "upstream": "\(gatewayConfig.upstream.url)",
            "clients": "\(gatewayConfig.clients.count)",
            "event_loop": "\(gatewayConfig.transport.eventLoop.rawValue)",
        ])
        do {
            try GatewayMain.run(config: gatewayConfig, logger: logger)
        } catch {
            logger.critical("gateway stopped: \(error)")
            throw ExitCode.failure
        }
    }
}

/// The levels SPEC §3 offers on the command line.
enum LogLevel: String, CaseIterable, ExpressibleByArgument {
    case trace, debug, info, notice, warning, error

    var level: Logger.Level {
        switch self {
        case .trace: return .trace
        case .debug: return .debug
        case .info: return .info
        case .notice: return .notice
        case .warning: return .warning
        case .error: return .error
        }
    }
}
