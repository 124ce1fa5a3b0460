// libFuzzer target: the configuration loader's JSON path, GatewayConfig.parse(json:
// environment:) (Sources/Gateway/Config; `load(path:)` reads the file and does the same).
//
// Input: a configuration file. The environment holds the variables config.example.json
// names plus a few more, with distinctive secret values. Properties:
// - parsing never crashes and is deterministic (the same config or the same problems);
// - a refused configuration names at least one problem;
// - no secret from the environment appears in a problem, in the configuration's
//   description, debugDescription or dump (SPEC §3: logs never contain a secret),
//   unless the input itself spells it out;
// - an accepted configuration stays accepted when the same overrides are re-applied.

import Foundation

let secrets = [
    "DERIBIT_CLIENT_SECRET": "upstream-secret-Zq8vT3",
    "GATEWAY_SECRET": "client-secret-Wm4kP9",
    "SECRET_2": "client-secret-Hy7rN2",
]
let environment: [String: String] = secrets.merging([
    "DERIBIT_CLIENT_ID": "fuzz-client-id",
    "EMPTY": "",
]) { a, _ in a }

func outcome(_ bytes: [UInt8]) -> Result<GatewayConfig, ConfigError> {
    Result { () throws(ConfigError) in try GatewayConfig.parse(json: bytes, environment: environment) }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let input = String(decoding: bytes, as: UTF8.self)
    let first = outcome(bytes)
    let second = outcome(bytes)
    check(first == second, "two parses differ: \(first) vs \(second)")

    var texts: [String] = []
    switch first {
    case .success(var config):
        texts.append(config.description)
        texts.append(config.debugDescription)
        texts.append(String(describing: config))
        texts.append(String(reflecting: config))
        var dumped = ""
        dump(config, to: &dumped)
        texts.append(dumped)
        texts += config.notices
        do {
            try config.apply(overrides: GatewayConfigOverrides())
        } catch {
            check(false, "an accepted configuration refused with no overrides: \(error)")
        }
    case .failure(let error):
        check(!error.problems.isEmpty, "refused without a problem")
        texts += error.problems
        texts.append(error.description)
    }
    for (name, secret) in secrets where !input.contains(secret) {
        for text in texts {
            check(!text.contains(secret), "the secret of \(name) shows in: \(text)")
        }
    }
    return 0
}
