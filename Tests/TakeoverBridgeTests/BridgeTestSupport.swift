// Support for the end-to-end tests: a private slapd for this test target, scenarios with
// their own subtrees, the built binary run as a process, canonical directory dumps.
//
// The tests run only under scripts/test.sh (TB_TEST_ENV set). They do not write to the
// shared server: this target starts one private server of its own (scripts/test-slapd.sh
// in a temporary folder, stopped when the test process exits), so the destructive tests
// here (killing the server, safety limits that compare whole subtrees) never disturb
// other targets' tests, and theirs never disturb these.

import Foundation
import LDAPClient
import LDAPSyntax
import LDAPTestSupport
import Logging
import TakeoverCore
import Testing
@testable import TakeoverBridge

#if canImport(Glibc)
import Glibc
#endif

let bridgeTestsEnabled = LDAPTestServer.isConfigured

// MARK: - The private server

enum GlueServer {
    /// Started on first use; stopped (SIGTERM) and removed when the process exits.
    static let shared: Result<LDAPTestServer, GlueTestError> = {
        do {
            return .success(try startAnother())
        } catch {
            return .failure(GlueTestError("cannot start a private slapd: \(error)"))
        }
    }()

    static func get() throws -> LDAPTestServer {
        try shared.get()
    }

    /// A new private server (scripts/test-slapd.sh start in a fresh folder), stopped
    /// when the process exits (or earlier with `stop`).
    ///
    /// Through `runProgram` (posix_spawn, output through files, so the slapd left running
    /// holds no pipe of ours); `LDAPTestServer.startPrivate()` now starts the same way, and
    /// issue 12 step 1 replaces both with one server type.
    static func startAnother() throws -> LDAPTestServer {
        let directory = "/tmp/tb-glue-slapd-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let result = try runProgram("/bin/bash", [script, "start", directory])
        guard result.status == 0 else {
            throw GlueTestError("test-slapd.sh start \(directory) failed: \(result.stderr)")
        }
        let server = try LDAPTestServer(envFile: directory + "/env")
        register(server)
        // A watchdog stops it even when this process dies without running atexit.
        let watch = "while kill -0 \(getpid()) 2>/dev/null; do sleep 1; done; "
            + "bash '\(script)' stop '\(directory)'; rm -rf '\(directory)'"
        _ = try? spawnBackground("/bin/sh", ["-c", watch])
        return server
    }

    static func stop(_ server: LDAPTestServer) {
        _ = try? runProgram("/bin/bash", [script, "stop", server.directory])
        if server.directory.hasPrefix("/tmp/tb-glue-slapd-") {
            try? FileManager.default.removeItem(atPath: server.directory)
        }
    }

    /// Stops and starts the same server (same ports and data).
    static func restart(_ server: LDAPTestServer) throws -> LDAPTestServer {
        let result = try runProgram("/bin/bash", [script, "restart", server.directory])
        guard result.status == 0 else { throw GlueTestError("restart failed: \(result.stderr)") }
        return try LDAPTestServer(envFile: server.envFile)
    }

    static var script: String { BridgeBinary.packageRoot + "/scripts/test-slapd.sh" }

    private static let registry = Registry()

    final class Registry: @unchecked Sendable {
        // @unchecked: `servers` is only touched while holding `lock`.
        let lock = NSLock()
        var servers: [(pid: Int32, directory: String)] = []
        var installed = false
    }

    static func register(_ server: LDAPTestServer) {
        registry.lock.lock()
        defer { registry.lock.unlock() }
        registry.servers.append((server.pid ?? 0, server.directory))
        if !registry.installed {
            registry.installed = true
            atexit {
                GlueServer.stopAll()
            }
        }
    }

    static func stopAll() {
        registry.lock.lock()
        let servers = registry.servers
        registry.servers = []
        registry.lock.unlock()
        for server in servers {
            _ = try? runProgram("/bin/bash", [script, "stop", server.directory])
            if server.directory.hasPrefix("/tmp/tb-glue-slapd-") {
                try? FileManager.default.removeItem(atPath: server.directory)
            }
        }
    }
}

struct GlueTestError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

// MARK: - Processes

struct ProcessResult: Sendable {
    var status: Int32
    var stdout: String
    var stderr: String
    var all: String { stdout + "\n" + stderr }
}

/// Spawn attributes for children: an empty signal mask and default dispositions.
/// posix_spawn copies the calling thread's mask, and the threads Swift runs tests on
/// block most signals: a slapd started with them blocked ignores SIGTERM.
func withCleanSpawnAttributes<T>(_ body: (inout posix_spawnattr_t) throws -> T) rethrows -> T {
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var empty = sigset_t()
    sigemptyset(&empty)
    posix_spawnattr_setsigmask(&attributes, &empty)
    var defaults = sigset_t()
    sigemptyset(&defaults)
    for signal in [SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGUSR1, SIGUSR2] { sigaddset(&defaults, signal) }
    posix_spawnattr_setsigdefault(&attributes, &defaults)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
    return try body(&attributes)
}

/// A canonical dump (entries separated by blank lines, each starting with its `dn:` line)
/// without the run lease entry, which stays between runs under the bindings base
/// (Lease.swift): for comparing binding groups only.
func withoutRunLease(_ canonicalDump: String) -> String {
    canonicalDump.components(separatedBy: "\n\n").filter { !$0.lowercased().hasPrefix("dn: cn=takeover-bridge-lease,") }
        .joined(separator: "\n\n")
}

/// Runs a program with stdout and stderr captured through files, by posix_spawn and
/// waitpid. (Not Foundation's Process: its child watching misses the exit of a script
/// that leaves a daemon behind, as scripts/test-slapd.sh start does, and hangs.)
/// With `timeout` (seconds) the program is killed (SIGKILL) when it runs longer, and the
/// result has status 124 and "timed out" at the start of stderr.
func runProgram(_ executable: String, _ arguments: [String], environment: [String: String] = [:],
                input: String? = nil, directory: String? = nil, timeout: Double? = nil) throws -> ProcessResult {
    let folder = NSTemporaryDirectory() + "tb-proc-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let outPath = folder + "/out", errPath = folder + "/err", inPath = folder + "/in"
    _ = FileManager.default.createFile(atPath: inPath, contents: Data((input ?? "").utf8))

    var env = ProcessInfo.processInfo.environment
    env["TAKEOVER_BRIDGE_CONFIG"] = nil
    env.merge(environment) { _, new in new }

    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, inPath, O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)

    var program = executable
    var allArguments = [executable] + arguments
    if let directory {
        // posix_spawn_file_actions_addchdir_np is not imported: let sh change folder.
        program = "/bin/sh"
        allArguments = ["/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", directory, executable] + arguments
    }
    let argv = allArguments.map { strdup($0) } + [nil]
    let envp = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer {
        for p in argv { free(p) }
        for p in envp { free(p) }
    }
    var pid: pid_t = 0
    let rc = withCleanSpawnAttributes { posix_spawn(&pid, program, &actions, &$0, argv, envp) }
    guard rc == 0 else { throw GlueTestError("cannot run \(executable): \(String(cString: strerror(rc)))") }
    var status: Int32 = 0
    var timedOut = false
    let deadline = timeout.map { Date().addingTimeInterval($0) }
    while true {
        let waited = waitpid(pid, &status, deadline == nil ? 0 : WNOHANG)
        if waited == pid { break }
        if waited < 0 {
            if errno == EINTR { continue }
            throw GlueTestError("waitpid failed: \(String(cString: strerror(errno)))")
        }
        if let deadline, Date() > deadline, !timedOut {
            timedOut = true
            kill(pid, SIGKILL)
        }
        usleep(10_000)
    }
    let exitStatus: Int32 = timedOut ? 124 : (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    let stdout = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
    let stderr = (timedOut ? "timed out\n" : "") + ((try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")
    return ProcessResult(status: exitStatus, stdout: stdout, stderr: stderr)
}

/// Starts a program in the background (output discarded); returns its pid. Reap it
/// with `waitpid` after killing it.
func spawnBackground(_ executable: String, _ arguments: [String]) throws -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    let argv = ([executable] + arguments).map { strdup($0) } + [nil]
    defer { for p in argv { free(p) } }
    var pid: pid_t = 0
    let rc = withCleanSpawnAttributes { posix_spawn(&pid, executable, &actions, &$0, argv, environ) }
    guard rc == 0 else { throw GlueTestError("cannot run \(executable): \(String(cString: strerror(rc)))") }
    return pid
}

/// The `takeover-bridge` executable `swift build` / `swift test` built: next to the test
/// bundle, else `$TB_BRIDGE_BINARY`, else `.build/debug/takeover-bridge`.
enum BridgeBinary {
    static let path: String = {
        let fm = FileManager.default
        if let explicit = ProcessInfo.processInfo.environment["TB_BRIDGE_BINARY"], fm.isExecutableFile(atPath: explicit) {
            return explicit
        }
        var candidates: [String] = []
        if let first = CommandLine.arguments.first {
            let url = URL(fileURLWithPath: first).resolvingSymlinksInPath()
            var folder = url.deletingLastPathComponent()
            // An .xctest bundle is a folder on some platforms: look beside it too.
            for _ in 0..<4 {
                candidates.append(folder.appendingPathComponent("takeover-bridge").path)
                folder = folder.deletingLastPathComponent()
            }
        }
        candidates.append(Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("takeover-bridge").path)
        candidates.append(packageRoot + "/.build/debug/takeover-bridge")
        return candidates.first { fm.isExecutableFile(atPath: $0) && !$0.hasSuffix(".swift") } ?? candidates.last ?? ""
    }()

    static var packageRoot: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    }
}

// MARK: - Scenarios

/// One test's world: its own subtrees under ou=people, ou=devices and ou=bindings of the
/// private server, and a folder with config.toml, reports/ and state/.
final class Scenario: @unchecked Sendable {
    // @unchecked: used by one test at a time; `configOverrides` changes between runs only.

    let server: LDAPTestServer
    let name: String
    let people: String
    let devices: String
    let bindings: String
    let folder: String
    var reports: String { folder + "/reports" }
    var state: String { folder + "/state" }
    var configPath: String { folder + "/config.toml" }
    /// `section.key` -> TOML value (raw), merged over the defaults below.
    var configOverrides: [String: String] = [:]

    enum Layout {
        case project, groupOfNames
    }

    let layout: Layout

    init(_ name: String? = nil, layout: Layout = .project, server: LDAPTestServer? = nil) throws {
        self.server = try server ?? GlueServer.get()
        let name = name ?? "s\(UInt32.random(in: 0...UInt32.max))"
        self.name = name
        self.layout = layout
        people = "ou=\(name),\(self.server.peopleBase)"
        devices = "ou=\(name),\(self.server.devicesBase)"
        bindings = "ou=\(name),\(self.server.bindingsBase)"
        folder = NSTemporaryDirectory() + "tb-glue-\(name)-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: folder + "/reports", withIntermediateDirectories: true)
        try reset()
    }

    deinit {
        try? FileManager.default.removeItem(atPath: folder)
    }

    /// Removes this scenario's subtrees (left by an earlier run) and creates them empty.
    func reset() throws {
        for base in [bindings, devices, people] {
            _ = try? runLDAP("ldapdelete", ["-r", base])
        }
        var ldif = ""
        for base in [people, devices, bindings] {
            ldif += "dn: \(base)\nobjectClass: organizationalUnit\nou: \(name)\n\n"
        }
        try add(ldif)
    }

    // MARK: Directory content (as the rootdn)

    /// ldap-utils as the rootdn; throws on a non-zero exit.
    @discardableResult
    func runLDAP(_ tool: String, _ arguments: [String], input: String? = nil) throws -> String {
        let result = try runProgram("/usr/bin/\(tool)", [ "-x", "-H", server.ldapURI, "-D", server.rootDN,
                                                       "-y", server.rootPasswordFile] + arguments, input: input)
        guard result.status == 0 else {
            throw GlueTestError("\(tool) \(arguments.joined(separator: " ")) failed (\(result.status)): \(result.stderr)")
        }
        return result.stdout
    }

    func add(_ ldif: String) throws { try runLDAP("ldapadd", [], input: ldif) }
    func modify(_ ldif: String) throws { try runLDAP("ldapmodify", [], input: ldif) }

    func userDN(_ uid: String) -> String { DNEscaping.rdn("uid", uid) + "," + people }
    func deviceDN(_ device: String) -> String { DNEscaping.rdn("cn", device) + "," + devices }
    func groupDN(_ device: String) -> String { DNEscaping.rdn("cn", device) + "," + bindings }

    /// A posixAccount (+ takeoverUser when `local` is set).
    func userLDIF(_ uid: String, local: String? = nil, uidNumber: Int = 10_000, displayName: String? = nil) -> String {
        var out = LDIF.line("dn", userDN(uid))
        out += "objectClass: inetOrgPerson\nobjectClass: posixAccount\n"
        if local != nil { out += "objectClass: takeoverUser\n" }
        out += LDIF.line("uid", uid) + LDIF.line("cn", displayName ?? uid) + LDIF.line("sn", uid)
        out += "uidNumber: \(uidNumber)\ngidNumber: 100\n" + LDIF.line("homeDirectory", "/home/\(uid)")
        if let displayName { out += LDIF.line("displayName", displayName) }
        if let local { out += LDIF.line("localUserAccount", local) }
        return out + "\n"
    }

    /// A device entry (groupOfNames) connecting `uids`; groupOfNames needs a member, so a
    /// device with none lists the devices base itself.
    func deviceLDIF(_ device: String, _ uids: [String]) -> String {
        var out = LDIF.line("dn", deviceDN(device)) + "objectClass: groupOfNames\n" + LDIF.line("cn", device)
        if uids.isEmpty { out += LDIF.line("member", devices) }
        for uid in uids { out += LDIF.line("member", userDN(uid)) }
        return out + "\n"
    }

    func addUsers(_ users: [(uid: String, local: String?)], firstUIDNumber: Int = 20_000) throws {
        var ldif = ""
        for (index, user) in users.enumerated() {
            ldif += userLDIF(user.uid, local: user.local, uidNumber: firstUIDNumber + index)
        }
        try add(ldif)
    }

    func addDevice(_ device: String, _ uids: [String]) throws { try add(deviceLDIF(device, uids)) }

    func connect(_ uid: String, to device: String) throws {
        try modify(LDIF.line("dn", deviceDN(device)) + "changetype: modify\nadd: member\n" + LDIF.line("member", userDN(uid)) + "-\n\n")
    }

    /// Removes the connection; a device entry losing its last member gets the devices
    /// base as member (groupOfNames must have one).
    func disconnect(_ uid: String, from device: String) throws {
        do {
            try modify(LDIF.line("dn", deviceDN(device)) + "changetype: modify\ndelete: member\n" + LDIF.line("member", userDN(uid)) + "-\n\n")
        } catch let error as GlueTestError where error.description.contains("(65)") {
            try modify(LDIF.line("dn", deviceDN(device)) + "changetype: modify\nreplace: member\n" + LDIF.line("member", devices) + "-\n\n")
        }
    }

    // MARK: Reports

    /// A CSV report for `device` listing `accounts` (name, uid), reported an hour ago.
    func writeReport(_ device: String, _ accounts: [(name: String, uid: Int)], fileName: String? = nil,
                     reportedAt: UnixTime? = nil) throws {
        let time = UTCTime.iso8601(reportedAt ?? UnixTime(Date().timeIntervalSince1970) - 3600)
        var csv = "device,username,uid,home,full_name,shell,reported_at\n"
        for account in accounts {
            csv += "\(csvField(device)),\(csvField(account.name)),\(account.uid),/home/\(account.name),,/bin/bash,\(time)\n"
        }
        let file = reports + "/" + (fileName ?? "r-\(UInt32.random(in: 0...UInt32.max)).csv")
        try csv.write(toFile: file, atomically: true, encoding: .utf8)
    }

    private func csvField(_ s: String) -> String {
        guard s.contains(",") || s.contains("\"") else { return s }
        return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    // MARK: Configuration and runs

    func writeConfig() throws {
        let sections: [(String, [(String, String)])] = [
            ("ldap", [("uri", q(server.ldapURI)), ("bind_dn", q(server.bindDN)),
                      ("bind_password_file", q(server.bindPasswordFile)), ("timeout", "10")]),
            ("users", [("search_base", q(people)), ("local_account_attribute", q("localUserAccount"))]),
            ("devices", [("search_base", q(devices)), ("reports", q(reports))]),
            ("bindings", [("search_base", q(bindings)),
                          ("object_class", q(layout == .project ? "takeoverBindingGroup" : "groupOfNames"))]),
            ("safety", [("max_unbinds", "100"), ("max_unbind_percent", "100"), ("min_users", "1")]),
            ("state", [("dir", q(state))]),
        ]
        let text = configTOML(sections, overrides: configOverrides)
        _ = FileManager.default.createFile(atPath: configPath, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600])
    }

    func q(_ s: String) -> String {
        "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    /// Runs the built binary with `-c config.toml` (written fresh) and `arguments`.
    @discardableResult
    func bridge(_ arguments: [String], environment: [String: String] = [:]) throws -> ProcessResult {
        try writeConfig()
        return try runProgram(BridgeBinary.path, ["-c", configPath] + arguments, environment: environment, directory: folder)
    }

    // MARK: Dumps

    /// The bindings subtree, canonical: entries sorted by DN, lines within an entry sorted.
    func dumpBindings() throws -> String { try dump(bindings) }

    func dump(_ base: String, server other: LDAPTestServer? = nil) throws -> String {
        let s = other ?? server
        let result = try runProgram("/usr/bin/ldapsearch", [ "-LLL", "-o", "ldif-wrap=no", "-x", "-H", s.ldapURI,
                                                     "-D", s.rootDN, "-y", s.rootPasswordFile, "-b", base,
                                                     "(objectClass=*)", "*"])
        guard result.status == 0 else { throw GlueTestError("ldapsearch \(base) failed: \(result.stderr)") }
        return Scenario.canonical(result.stdout)
    }

    static func canonical(_ ldif: String) -> String {
        ldif.components(separatedBy: "\n\n")
            .map { $0.split(separator: "\n").map(String.init) }
            .filter { !$0.isEmpty }
            .map { lines -> String in
                let dn = lines.first.map { $0.lowercased() } ?? ""
                return ([dn] + lines.dropFirst().sorted()).joined(separator: "\n")
            }
            .sorted()
            .joined(separator: "\n\n")
    }

    /// The binding groups as (cn, members, records), read as the rootdn.
    func groups() async throws -> [BindingGroup] {
        let connection = try await server.connect(as: .root)
        var out: [BindingGroup] = []
        let record = layout == .project ? "takeoverBoundAccount" : "description"
        // Not the run lease (Lease.swift), which stays between runs under the same base.
        _ = try await connection.search(base: bindings, scope: .one, filter: "(!(cn=takeover-bridge-lease))",
                                        attributes: ["cn", "member", record]) { entry in
            out.append(BindingGroup(device: entry.first("cn") ?? "", dn: entry.dn, members: entry.strings("member"),
                                    records: entry.strings(record)))
        }
        await connection.close()
        return out.sorted { $0.device < $1.device }
    }
}

// MARK: - Captured logs (in-process runs)

final class CapturedLog: @unchecked Sendable {
    // @unchecked: `lines` is only touched while holding `lock`.
    private let lock = NSLock()
    private var stored: [String] = []

    var lines: [String] {
        lock.lock()
        defer { lock.unlock() }
        return stored
    }

    var text: String { lines.joined() }

    func append(_ line: String) {
        lock.lock()
        stored.append(line)
        lock.unlock()
    }

    var logger: Logger {
        let sink: @Sendable (String) -> Void = { [self] line in self.append(line) }
        return Logger(label: "test") { _ in
            BridgeLogHandler(style: .logfmt, level: .debug, sink: sink)
        }
    }
}

/// Collects what a runner writes as results.
final class CapturedOutput: OutputSink, @unchecked Sendable {
    // @unchecked: `stored` is only touched while holding `lock`.
    private let lock = NSLock()
    private var stored = ""

    func write(_ text: String) {
        lock.lock()
        stored += text
        lock.unlock()
    }

    var text: String {
        lock.lock()
        defer { lock.unlock() }
        return stored
    }
}

/// Every file below `folder`, read as text (lossy).
func allFileContents(_ folder: String) -> [(path: String, text: String)] {
    var out: [(String, String)] = []
    guard let enumerator = FileManager.default.enumerator(atPath: folder) else { return out }
    while let relative = enumerator.nextObject() as? String {
        let path = folder + "/" + relative
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue,
           let data = FileManager.default.contents(atPath: path) {
            out.append((path, String(decoding: data, as: UTF8.self)))
        }
    }
    return out
}

// MARK: - Replication

extension GlueServer {
    /// A provider and a read-only consumer: syncrepl (refreshAndPersist) from the
    /// provider, `updateref` pointing writes back to it, so the consumer answers every
    /// write with a referral (10), like a replica in production. The consumer starts
    /// empty and copies everything, the service account's password included.
    /// `updateRefs` replaces the consumer's `updateref` (the provider) with these URLs.
    static func startReplicaPair(updateRefs: [String]? = nil) throws -> (provider: LDAPTestServer, consumer: LDAPTestServer) {
        var provider = try startAnother()
        var consumer = try startAnother()
        let providerConf = provider.directory + "/slapd.conf"
        var text = try String(contentsOfFile: providerConf, encoding: .utf8)
        text = text.replacingOccurrences(of: "moduleload back_mdb\n", with: "moduleload back_mdb\nmoduleload syncprov\n")
        text += "overlay syncprov\n"
        try text.write(toFile: providerConf, atomically: true, encoding: .utf8)
        provider = try restart(provider)

        let rootPassword = try String(contentsOfFile: provider.rootPasswordFile, encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let consumerConf = consumer.directory + "/slapd.conf"
        var ctext = try String(contentsOfFile: consumerConf, encoding: .utf8)
        ctext += "syncrepl rid=001 provider=\(provider.ldapURI) bindmethod=simple binddn=\"\(provider.rootDN)\" "
            + "credentials=\(rootPassword) searchbase=\"\(provider.base)\" type=refreshAndPersist retry=\"1 +\"\n"
        for url in updateRefs ?? [provider.ldapURI] { ctext += "updateref \"\(url)\"\n" }
        try ctext.write(toFile: consumerConf, atomically: true, encoding: .utf8)
        _ = try runProgram("/bin/bash", [script, "stop", consumer.directory])
        // Entries seeded separately have other entryUUIDs: start empty, copy everything.
        for file in (try? FileManager.default.contentsOfDirectory(atPath: consumer.directory + "/db")) ?? [] {
            try? FileManager.default.removeItem(atPath: consumer.directory + "/db/" + file)
        }
        consumer = try restart(consumer)
        let ready = waitUntil(seconds: 15) {
            let probe = try? runProgram("/usr/bin/ldapwhoami", ["-x", "-H", consumer.ldapURI, "-D", provider.bindDN,
                                                                "-y", provider.bindPasswordFile])
            return probe?.status == 0
        }
        guard ready else { throw GlueTestError("the consumer did not replicate the provider within 15 s") }
        return (provider, consumer)
    }
}

/// Polls `condition` every 50 ms until it holds or `seconds` pass.
func waitUntil(seconds: Double, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        usleep(50_000)
    }
    return condition()
}
