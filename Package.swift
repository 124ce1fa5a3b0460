// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "deribit-gateway",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "deribit-gateway", targets: ["deribit-gateway"]),
        .executable(name: "deribit-sim", targets: ["deribit-sim"]),
        .executable(name: "gateway-bench", targets: ["gateway-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
    ],
    targets: [
        // OpenSSL through pkg-config, with static inline wrappers for its macros.
        .systemLibrary(
            name: "COpenSSL",
            pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"])]
        ),
        // <sys/epoll.h> for the optional epoll event loop (SPEC §10).
        .target(name: "CEpoll"),
        // Pure protocol cores: no fds, no queues, no clocks.
        .target(name: "HTTP1"),
        .target(name: "WebSocket"),
        .target(name: "JSONRPC"),
        // TLS over memory BIOs: ciphertext in, ciphertext out.
        .target(name: "TLS", dependencies: ["COpenSSL"]),
        // The only module that touches file descriptors and DispatchSources.
        .target(
            name: "Transport",
            dependencies: ["HTTP1", "WebSocket", "TLS", "CEpoll", .product(name: "Logging", package: "swift-log")]
        ),
        // The gateway's logic as pure state machines: no Transport, no Dispatch, no clock.
        .target(name: "GatewayCore", dependencies: ["JSONRPC"]),
        // The runtime: owns the Transport objects and carries out the core's actions.
        .target(
            name: "Gateway",
            dependencies: ["GatewayCore", "HTTP1", "JSONRPC", "TLS", "Transport", .product(name: "Logging", package: "swift-log")]
        ),
        .target(
            name: "DeribitSim",
            dependencies: ["HTTP1", "JSONRPC", "TLS", "Transport", .product(name: "Logging", package: "swift-log")]
        ),
        .executableTarget(
            name: "deribit-gateway",
            dependencies: ["Gateway", .product(name: "ArgumentParser", package: "swift-argument-parser"), .product(name: "Logging", package: "swift-log")]
        ),
        .executableTarget(
            name: "deribit-sim",
            dependencies: ["DeribitSim", .product(name: "ArgumentParser", package: "swift-argument-parser"), .product(name: "Logging", package: "swift-log")]
        ),
        // The load generator of scripts/bench.sh (SPEC §10). Not a test.
        .executableTarget(
            name: "gateway-bench",
            dependencies: ["Transport", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        // Helpers shared by the test targets: waits with deadlines, child processes, certificates,
        // the HTTP and JSON-RPC clients of the socket tests.
        .target(name: "TestSupport", dependencies: ["Transport"], path: "Tests/TestSupport"),
        .testTarget(name: "HTTP1Tests", dependencies: ["HTTP1"]),
        .testTarget(name: "WebSocketTests", dependencies: ["WebSocket"]),
        .testTarget(name: "JSONRPCTests", dependencies: ["JSONRPC"]),
        .testTarget(name: "TLSTests", dependencies: ["TLS", "TestSupport"]),
        .testTarget(name: "TransportTests", dependencies: ["Transport", "HTTP1", "TLS", "TestSupport"]),
        .testTarget(name: "GatewayCoreTests", dependencies: ["GatewayCore", "JSONRPC"]),
        .testTarget(name: "GatewayTests", dependencies: ["Gateway", "GatewayCore", "JSONRPC"]),
        .testTarget(name: "DeribitSimTests", dependencies: ["DeribitSim", "Transport", "TLS", "TestSupport", .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "EndToEndTests", dependencies: ["Gateway", "Transport", "TLS", "TestSupport", .product(name: "Logging", package: "swift-log")]),
    ],
    swiftLanguageModes: [.v6]
)
