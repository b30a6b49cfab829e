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
        let result = try runCommand(["/bin/bash", scriptPath, command, directory])
        guard result.status == 0 else {
            throw ConfigurationError(description: "test-slapd.sh \(command) \(directory) failed (\(result.status)): \(result.standardError)")
        }
    }

    public struct CommandResult: Sendable {
        /// The exit status, or 128 + signal number when killed by a signal.
        public var status: Int32
        public var standardOutput: String
        public var standardError: String
    }

    /// Runs a program (`arguments[0]`, looked up in PATH) to completion with `input` on
    /// its standard input, and returns its status and output.
    ///
    /// Uses posix_spawn and waitpid directly: Foundation's `Process` on Linux can miss a
    /// child's exit when several are started concurrently (parallel tests), hanging
    /// `waitUntilExit` forever. Output goes through temporary files, so a chatty child
    /// or a daemon it leaves behind cannot block the caller.
    public static func runCommand(_ arguments: [String], input: String? = nil) throws -> CommandResult {
        guard let program = arguments.first else { throw ConfigurationError(description: "runCommand: no program") }
        let scratch = FileManager.default.temporaryDirectory
            .appendingPathComponent("tb-cmd-\(getpid())-\(UInt64.random(in: 0...UInt64.max))")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let inPath = scratch.appendingPathComponent("in").path
        let outPath = scratch.appendingPathComponent("out").path
        let errPath = scratch.appendingPathComponent("err").path
        try Data((input ?? "").utf8).write(to: URL(fileURLWithPath: inPath))

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, inPath, O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)

        // A clean signal state for the child: Swift's worker threads block most signals,
        // and a blocked mask is inherited across exec (a slapd started from a test would
        // then ignore SIGTERM); SIGPIPE is ignored in this process and would be too.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        var cArguments: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) }
        cArguments.append(nil)
        defer { for argument in cArguments { free(argument) } }
        var pid: pid_t = 0
        let spawned = posix_spawnp(&pid, program, &actions, &attributes, cArguments, environ)
        guard spawned == 0 else {
            throw ConfigurationError(description: "cannot run \(program): \(String(cString: strerror(spawned)))")
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 {
            guard errno == EINTR else { throw ConfigurationError(description: "waitpid failed for \(program)") }
        }
        // WIFEXITED / WEXITSTATUS / WTERMSIG are macros: decode by hand.
        let exitCode: Int32 = (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
        func read(_ path: String) -> String {
            String(decoding: FileManager.default.contents(atPath: path) ?? Data(), as: UTF8.self)
        }
        return CommandResult(status: exitCode, standardOutput: read(outPath), standardError: read(errPath))
    }
}
