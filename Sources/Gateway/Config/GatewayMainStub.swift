// STUB — the lead deletes this file when adding the real `GatewayMain`.
// It exists only so that the `deribit-gateway` executable compiles meanwhile.
import Foundation
import Logging

public enum GatewayMain {
    public static func run(config: GatewayConfig, logger: Logger) throws -> Never {
        logger.info("gateway not implemented yet")
        exit(0)
    }
}
