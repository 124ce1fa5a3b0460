import Foundation

/// Throwaway PKI for tests, made with the `openssl` CLI, with the leaf's
/// names as a parameter.
public enum TestCertificates {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// A CA (`ca.pem`) and a leaf with subjectAltName `names` (by default DNS:localhost and
    /// IP:127.0.0.1) signed by it (`server.pem`, key `server.key`), all PEM, in `directory`.
    public static func make(in directory: URL, names: String = "DNS:localhost, IP:127.0.0.1") throws -> (caFile: String, certFile: String, keyFile: String) {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let config = try writeConfig(in: directory, names: names)
        let ca = directory.appendingPathComponent("ca.pem").path
        let caKey = directory.appendingPathComponent("ca.key").path
        let csr = directory.appendingPathComponent("server.csr").path
        let cert = directory.appendingPathComponent("server.pem").path
        let key = directory.appendingPathComponent("server.key").path
        try openssl(["req", "-x509", "-config", config, "-extensions", "ca", "-newkey", "ec",
                     "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                     "-subj", "/CN=deribit-gateway test CA", "-keyout", caKey, "-out", ca])
        try openssl(["req", "-new", "-config", config, "-newkey", "ec",
                     "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                     "-subj", "/CN=localhost", "-keyout", key, "-out", csr])
        try openssl(["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", caKey, "-set_serial", "2",
                     "-days", "2", "-extfile", config, "-extensions", "leaf", "-out", cert])
        return (ca, cert, key)
    }

    /// A self-signed certificate for `localhost` / 127.0.0.1 that no CA vouches for.
    public static func makeSelfSigned(in directory: URL) throws -> (certFile: String, keyFile: String) {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let config = try writeConfig(in: directory, names: "DNS:localhost, IP:127.0.0.1")
        let cert = directory.appendingPathComponent("self-signed.pem").path
        let key = directory.appendingPathComponent("self-signed.key").path
        try openssl(["req", "-x509", "-config", config, "-extensions", "selfsigned", "-newkey", "ec",
                     "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                     "-subj", "/CN=localhost", "-keyout", key, "-out", cert])
        return (cert, key)
    }

    private static func writeConfig(in directory: URL, names: String) throws -> String {
        let path = directory.appendingPathComponent("openssl.cnf").path
        let text = """
            [req]
            distinguished_name = dn
            prompt = no
            [dn]
            CN = unused
            [ca]
            basicConstraints = critical, CA:TRUE
            keyUsage = critical, keyCertSign, cRLSign
            subjectKeyIdentifier = hash
            [leaf]
            basicConstraints = critical, CA:FALSE
            keyUsage = critical, digitalSignature
            extendedKeyUsage = serverAuth
            subjectAltName = \(names)
            subjectKeyIdentifier = hash
            authorityKeyIdentifier = keyid
            [selfsigned]
            basicConstraints = critical, CA:FALSE
            keyUsage = critical, digitalSignature
            extendedKeyUsage = serverAuth
            subjectAltName = DNS:localhost, IP:127.0.0.1

            """
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    private static func openssl(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        let stderr = Pipe()
        process.standardError = stderr
        try process.run()
        let errorOutput = stderr.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw Failure(description: "openssl \(arguments.joined(separator: " ")) failed: "
                + String(decoding: errorOutput, as: UTF8.self))
        }
    }
}
