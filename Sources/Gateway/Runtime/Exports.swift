@_exported import GatewayCore
