import Foundation
import Logging
import Transport

/// Runs the gateway until SIGINT/SIGTERM.
public enum GatewayMain {
    /// SPEC §8: the exit status of a graceful shutdown that ended with orders of flagged
    /// clients still open (their cancels unconfirmed within `shutdown.cancel_wait_ms`).
    public static let exitOrdersLeftOpen: Int32 = 3

    public static func run(config: GatewayConfig, logger: Logger) throws -> Never {
        let loop = EventLoop(kind: config.transport.eventLoop, label: "deribit-gateway")
        let gateway = Gateway(config: config, loop: loop, logger: logger)
        for notice in config.notices { logger.notice("\(notice)") }
        let started = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var failure: Error?
        loop.execute {
            do {
                let bound = try gateway.start()
                logger.notice("listening on \(bound)", metadata: ["port": "\(bound.port)"])
                // One machine-readable line for tools and tests (the port may have been 0).
                FileHandle.standardOutput.write(Data("deribit-gateway listening on \(bound)\n".utf8))
            } catch {
                failure = error
            }
            started.signal()
        }
        started.wait()
        if let failure {
            logger.critical("cannot start: \(failure)")
            exit(1)
        }
        let signals = [SIGINT, SIGTERM].map { sig -> DispatchSourceSignal in
            let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            s.setEventHandler {
                logger.notice("signal \(sig): shutting down")
                loop.execute {
                    gateway.shutdown { status in exit(status) }
                }
            }
            s.resume()
            return s
        }
        withExtendedLifetime(signals) {
            dispatchMain()
        }
    }
}
