// Test support: the throwaway slapd started by scripts/test-slapd.sh, as seen from Swift.
// Used by the test targets of every module; nothing in the product calls it.

import Foundation

/// A test server described by the `env` file that `scripts/test-slapd.sh start DIR`
/// writes (`KEY=value` lines). The shared server of a test run is named by the
/// environment variable `TB_TEST_ENV` (scripts/test.sh sets it); integration tests
/// gate on `LDAPTestServer.isConfigured` so they skip cleanly without it.
///
/// Tests that must disturb a server (kill it mid-operation, restart it) start their
/// own with `LDAPTestServer.startPrivate()` and `stop()` it at the end.
public struct LDAPTestServer: Sendable {
    /// Every `KEY=value` of the env file.
    public let values: [String: String]
    public let envFile: String

    public static let environmentVariable = "TB_TEST_ENV"

    public struct ConfigurationError: Error, CustomStringConvertible {
        public var description: String
    }

    /// True when `TB_TEST_ENV` names a readable env file.
    public static var isConfigured: Bool {
        guard let path = ProcessInfo.processInfo.environment[environmentVariable], !path.isEmpty else { return false }
        return FileManager.default.isReadableFile(atPath: path)
    }

    /// The shared test server (from `TB_TEST_ENV`).
    public static func shared() throws -> LDAPTestServer {
        guard let path = ProcessInfo.processInfo.environment[environmentVariable], !path.isEmpty else {
            throw ConfigurationError(description: "\(environmentVariable) is not set (run scripts/test.sh)")
        }
        return try LDAPTestServer(envFile: path)
    }

    public init(envFile: String) throws {
        guard let data = FileManager.default.contents(atPath: envFile),
              let text = String(data: data, encoding: .utf8) else {
            throw ConfigurationError(description: "cannot read \(envFile)")
        }
        var values: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let equals = line.firstIndex(of: "="), !line.hasPrefix("#") else { continue }
            values[String(line[..<equals])] = String(line[line.index(after: equals)...])
        }
        self.values = values
        self.envFile = envFile
    }

    public func value(_ key: String) throws -> String {
        guard let value = values[key] else {
            throw ConfigurationError(description: "\(key) missing from \(envFile)")
        }
        return value
    }

    private func field(_ key: String) -> String { values[key] ?? "" }

    public var ldapURI: String { field("TB_LDAP_URI") }
    public var ldapsURI: String { field("TB_LDAPS_URI") }
    public var ldapiURI: String { field("TB_LDAPI_URI") }
    public var base: String { field("TB_BASE") }
    public var peopleBase: String { field("TB_PEOPLE_BASE") }
    public var devicesBase: String { field("TB_DEVICES_BASE") }
    public var bindingsBase: String { field("TB_BINDINGS_BASE") }
    public var rootDN: String { field("TB_ROOT_DN") }
    public var bindDN: String { field("TB_BIND_DN") }
    public var readerDN: String { field("TB_READER_DN") }
    public var caCert: String { field("TB_CA_CERT") }
    public var wrongCACert: String { field("TB_WRONG_CA_CERT") }
    public var clientCert: String { field("TB_CLIENT_CERT") }
    public var clientKey: String { field("TB_CLIENT_KEY") }
    public var ldapiExternalDN: String { field("TB_LDAPI_EXTERNAL_DN") }
    public var directory: String { field("TB_SLAPD_DIR") }
    public var bindPasswordFile: String { field("TB_BIND_PW_FILE") }
    public var rootPasswordFile: String { field("TB_ROOT_PW_FILE") }

    /// The server's current process id (from its pid file; changes on restart).
    public var pid: Int32? {
        guard let data = FileManager.default.contents(atPath: field("TB_SLAPD_PIDFILE")),
              let text = String(data: data, encoding: .utf8) else { return nil }
        return Int32(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    public func rootPassword() throws -> Secret { try readSecret("TB_ROOT_PW_FILE") }
    public func bindPassword() throws -> Secret { try readSecret("TB_BIND_PW_FILE") }
    public func readerPassword() throws -> Secret { try readSecret("TB_READER_PW_FILE") }

    private func readSecret(_ key: String) throws -> Secret {
        let path = try value(key)
        guard let data = FileManager.default.contents(atPath: path),
              let text = String(data: data, encoding: .utf8) else {
            throw ConfigurationError(description: "cannot read \(key) (\(path))")
        }
        return Secret(text.trimmingCharacters(in: .newlines))
    }

    public enum Identity: Sendable {
        /// The rootdn (no ACLs, no limits).
        case root
        /// The non-root service account: reads everything, writes under ou=bindings, no size limit.
        case bind
        /// A non-root read-only account with the default size limit (500).
        case reader
        case anonymous
    }

    /// Connects over plain `ldap://` (or `uri`) and binds as `identity`.
    public func connect(as identity: Identity = .bind, uri: String? = nil, timeout: Double = 30) async throws -> LDAPConnection {
        let connection = try await LDAPConnection.connect(LDAPConnectionOptions(uri: uri ?? ldapURI, timeout: timeout))
        switch identity {
        case .root: try await connection.bind(.simple(dn: rootDN, password: rootPassword()))
        case .bind: try await connection.bind(.simple(dn: bindDN, password: bindPassword()))
        case .reader: try await connection.bind(.simple(dn: readerDN, password: readerPassword()))
        case .anonymous: try await connection.bind(.anonymous)
        }
        return connection
    }

    // MARK: - Private servers

    /// The script that manages test servers. Found next to this source file's package
    /// (Sources/LDAPClient/../../scripts), or at `$TB_SLAPD_SCRIPT`.
    public static var scriptPath: String {
        if let path = ProcessInfo.processInfo.environment["TB_SLAPD_SCRIPT"], !path.isEmpty { return path }
        let here = URL(fileURLWithPath: #filePath)
        return here.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("scripts/test-slapd.sh").path
    }

    /// Starts a new server of its own in a fresh temporary directory. `stop()` it when done.
    public static func startPrivate() throws -> LDAPTestServer {
        let directory = "/tmp/tb-slapd-\(ProcessInfo.processInfo.processIdentifier)-\(UInt32.random(in: 0...UInt32.max))"
        try runScript("start", directory)
        return try LDAPTestServer(envFile: directory + "/env")
    }

    /// Stops the server (SIGTERM). With `removeFiles` also deletes its directory.
    public func stop(removeFiles: Bool = true) throws {
        try Self.runScript("stop", directory)
        if removeFiles, !directory.isEmpty, directory.hasPrefix("/tmp/") {
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    /// Restarts the server (same ports and data); returns the refreshed description.
    public func restart() throws -> LDAPTestServer {
        try Self.runScript("restart", directory)
        return try LDAPTestServer(envFile: envFile)
    }

    /// Sends `signal` (default SIGKILL) to the server process.
    public func kill(signal: Int32 = SIGKILL) {
        if let pid { _ = Foundation.kill(pid, signal) }
    }

    static func runScript(_ command: String, _ directory: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [scriptPath, command, directory]
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let output = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let text = String(decoding: output, as: UTF8.self)
            throw ConfigurationError(description: "test-slapd.sh \(command) \(directory) failed: \(text)")
        }
    }
}
