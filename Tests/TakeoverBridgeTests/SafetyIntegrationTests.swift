// Issue 6, the verification side: what cron relies on (docs/product.md section 6), shown with
// the built `takeover-bridge` binary against real slapd servers.
//
// - Safety limits: max_unbinds, max_unbind_percent, min_users and an empty user search
//   stop the run before the first write (exit 4), say which limit and by how much, and
//   leave the whole tree byte-identical (operational attributes included);
//   `--allow-unbinds N` lifts the unbind limits for one run only.
// - One run at a time: a held lock makes a second apply exit 75 at once; a lock whose
//   holder was killed blocks nobody.
// - Run records: the undo LDIF of an apply, applied with ldapmodify, restores the tree.
// - Faults: unreachable server, refused bind, size limit, timeout, server killed in the
//   middle of an apply (exit 5 listing what was written; the next run converges), and a
//   short run of scripts/fault-test.sh.
// - Concurrent edits by a person during a big apply survive.
//
// Every suite here starts a private slapd of its own (scripts/test-slapd.sh in a
// temporary folder, stopped when the test process exits) and runs its tests one at a
// time, so killing, pausing and whole-tree comparisons never meet another test. The tests
// run under scripts/test.sh (TB_TEST_ENV set), like every other server test.
//
// The support code (`SafetyKit`, `SafetyServer`, `SafetyWorld`) is shared by
// SecurityIntegrationTests.swift and BadInputTests.swift.

import Foundation
import LDAPClient
import LDAPTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

// MARK: - Support: processes, the binary, LDIF

let safetyServerTestsEnabled = LDAPTestServer.isConfigured

struct SafetyFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A finished process.
struct Outcome: Sendable, CustomStringConvertible {
    var status: Int32
    /// True when the process died of a signal (a crash, or killed).
    var signalled: Bool
    var stdout: String
    var stderr: String
    var seconds: Double

    var all: String { stdout + "\n" + stderr }
    var description: String {
        "exit \(status)\(signalled ? " (signal)" : "") after \(String(format: "%.2f", seconds)) s\n--- stdout\n"
            + stdout.suffix(3000) + "\n--- stderr\n" + stderr.suffix(3000)
    }
}

/// A process started in the background (posix_spawn); `finish` waits for it.
///
/// Not Foundation's `Process`: on Linux it learns that a child exited when a socket the
/// child inherits closes, so a child that leaves a daemon behind (test-slapd.sh starting
/// slapd) is only seen to exit when the daemon does. Here the child gets stdin, stdout
/// and stderr and no other descriptor, and its exit is read with waitpid.
final class Background: @unchecked Sendable {
    // @unchecked: `reaped` is only touched while holding `lock`.
    let pid: pid_t
    let folder: String
    let started: Date
    private let lock = NSLock()
    private var reaped: Int32?

    init(pid: pid_t, folder: String, started: Date) {
        self.pid = pid
        self.folder = folder
        self.started = started
    }

    /// The raw wait status once the process has exited (reaps it).
    private func poll(block: Bool) -> Int32? {
        lock.lock()
        defer { lock.unlock() }
        if let reaped { return reaped }
        var status: Int32 = 0
        while true {
            let result = waitpid(pid, &status, block ? 0 : WNOHANG)
            if result == pid {
                reaped = status
                return status
            }
            if result == -1 && errno == EINTR { continue }
            if result == -1 {
                reaped = 0x7f00  // not our child any more: report a plain failure (127)
                return reaped
            }
            return nil
        }
    }

    var isRunning: Bool { poll(block: false) == nil }

    /// Waits at most `timeout` seconds (then SIGKILLs it) and collects its output.
    func finish(timeout: Double = 300) -> Outcome {
        let deadline = Date().addingTimeInterval(timeout)
        while poll(block: false) == nil && Date() < deadline { usleep(5_000) }
        if poll(block: false) == nil { kill(pid, SIGKILL) }
        let status = poll(block: true) ?? 0
        let out = (try? String(contentsOfFile: folder + "/out", encoding: .utf8)) ?? ""
        let err = (try? String(contentsOfFile: folder + "/err", encoding: .utf8)) ?? ""
        try? FileManager.default.removeItem(atPath: folder)
        let signal = status & 0x7f
        let signalled = signal != 0 && signal != 0x7f
        return Outcome(status: signalled ? 128 + signal : (status >> 8) & 0xff, signalled: signalled,
                       stdout: out, stderr: err, seconds: Date().timeIntervalSince(started))
    }
}

/// glibc's posix_spawn extensions that Swift's Glibc module does not import.
enum SpawnExtensions {
    typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, Int32) -> Int32
    typealias ChangeDirectory = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?,
                                                UnsafePointer<CChar>?) -> Int32
    static let closeFrom: CloseFrom? = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np")
        .map { unsafeBitCast($0, to: CloseFrom.self) }
    static let changeDirectory: ChangeDirectory? = dlsym(nil, "posix_spawn_file_actions_addchdir_np")
        .map { unsafeBitCast($0, to: ChangeDirectory.self) }
}

enum SafetyKit {
    /// The package root, from this file's path (Tests/TakeoverBridgeTests/<file>).
    static let packageRoot: String = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().path

    static var scriptsFolder: String { packageRoot + "/scripts" }

    /// The built `takeover-bridge`: `$TB_BRIDGE_BINARY`, else beside the test bundle (the
    /// same build), else .build/debug/takeover-bridge.
    static let binary: String = {
        let fm = FileManager.default
        if let explicit = ProcessInfo.processInfo.environment["TB_BRIDGE_BINARY"], fm.isExecutableFile(atPath: explicit) {
            return explicit
        }
        var candidates: [String] = []
        if let first = CommandLine.arguments.first {
            var folder = URL(fileURLWithPath: first).resolvingSymlinksInPath().deletingLastPathComponent()
            for _ in 0..<4 {
                candidates.append(folder.appendingPathComponent("takeover-bridge").path)
                folder = folder.deletingLastPathComponent()
            }
        }
        candidates.append(packageRoot + "/.build/debug/takeover-bridge")
        return candidates.first { fm.isExecutableFile(atPath: $0) } ?? (packageRoot + "/.build/debug/takeover-bridge")
    }()

    static func temporaryFolder(_ prefix: String) -> String {
        let path = NSTemporaryDirectory() + "\(prefix)-\(UUID().uuidString.prefix(12))"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Environment for every child: no libldap settings from the caller's environment
    /// (a LDAPTLS_CACERT there would hide a missing `tls_cacert`), no config from it.
    static func childEnvironment(_ extra: [String: String]) -> [String: String] {
        var env = ProcessInfo.processInfo.environment
        for key in env.keys where key.hasPrefix("LDAP") || key == "TAKEOVER_BRIDGE_CONFIG"
            || key == "TAKEOVER_BRIDGE_LOG_LEVEL" {
            env[key] = nil
        }
        env["LDAPNOINIT"] = nil
        env.merge(extra) { _, new in new }
        return env
    }

    /// Starts a process with stdin, stdout and stderr on files in a private folder and
    /// no other descriptor, default signal handling and an empty signal mask.
    static func spawn(_ executable: String, _ arguments: [String], environment: [String: String] = [:],
                      input: String? = nil, directory: String? = nil) throws -> Background {
        let folder = temporaryFolder("tb-safety-proc")
        let outPath = folder + "/out", errPath = folder + "/err", inPath = folder + "/in"
        guard FileManager.default.createFile(atPath: inPath, contents: Data((input ?? "").utf8)) else {
            throw SafetyFailure("cannot write \(inPath)")
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, inPath, O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        var program = executable
        var argumentList = arguments
        if let closeFrom = SpawnExtensions.closeFrom {
            _ = closeFrom(&actions, 3)
        }
        if let directory {
            if let changeDirectory = SpawnExtensions.changeDirectory {
                _ = changeDirectory(&actions, directory)
            } else {
                program = "/bin/sh"
                argumentList = ["-c", "cd \"$0\" && exec \"$@\"", directory, executable] + arguments
            }
        }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv = ([program] + argumentList).map { strdup($0) } + [nil]
        let envp = childEnvironment(environment).map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for p in argv { free(p) }
            for p in envp { free(p) }
        }
        var pid: pid_t = 0
        let started = Date()
        let result = posix_spawn(&pid, program, &actions, &attributes, argv, envp)
        guard result == 0 else {
            try? FileManager.default.removeItem(atPath: folder)
            throw SafetyFailure("cannot start \(program): \(String(cString: strerror(result)))")
        }
        return Background(pid: pid, folder: folder, started: started)
    }

    /// Runs a process to the end (killed after `timeout` seconds).
    static func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:],
                    input: String? = nil, directory: String? = nil, timeout: Double = 300) throws -> Outcome {
        try spawn(executable, arguments, environment: environment, input: input, directory: directory)
            .finish(timeout: timeout)
    }

    static func which(_ tool: String) -> String {
        for folder in ["/usr/bin", "/usr/sbin", "/bin", "/sbin", "/usr/local/bin"] {
            let path = folder + "/" + tool
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return "/usr/bin/" + tool
    }

    /// One LDIF line, base64 when the value is not safe as it is (RFC 2849).
    static func ldif(_ attribute: String, _ value: String) -> String {
        let bytes = Array(value.utf8)
        var safe = !bytes.isEmpty
        if let first = bytes.first, first == UInt8(ascii: " ") || first == UInt8(ascii: ":") || first == UInt8(ascii: "<") {
            safe = false
        }
        if bytes.last == UInt8(ascii: " ") { safe = false }
        if bytes.contains(where: { $0 >= 0x80 || $0 < 0x20 }) { safe = false }
        if safe { return "\(attribute): \(value)\n" }
        if bytes.isEmpty { return "\(attribute):\n" }
        return "\(attribute):: \(Data(bytes).base64EncodedString())\n"
    }

    /// Entries of `ldapsearch -LLL -o ldif-wrap=no` output: dn and (attribute, value)
    /// pairs, base64 values decoded.
    static func parseLDIF(_ text: String) -> [(dn: String, attributes: [(String, String)])] {
        var out: [(String, [(String, String)])] = []
        var dn: String?
        var attributes: [(String, String)] = []
        func flush() {
            if let dn { out.append((dn, attributes)) }
            dn = nil
            attributes = []
        }
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.isEmpty {
                flush()
                continue
            }
            if line.hasPrefix("#") { continue }
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = String(line[..<colon])
            var rest = line[line.index(after: colon)...]
            var value: String
            if rest.hasPrefix(":") {
                rest = rest.dropFirst()
                let encoded = rest.trimmingCharacters(in: .whitespaces)
                value = Data(base64Encoded: encoded).map { String(decoding: $0, as: UTF8.self) } ?? encoded
            } else {
                if rest.hasPrefix(" ") { rest = rest.dropFirst() }
                value = String(rest)
            }
            if name.lowercased() == "dn" {
                flush()
                dn = value
            } else {
                attributes.append((name, value))
            }
        }
        flush()
        return out
    }

    /// A canonical form of LDIF for comparisons: entries sorted, lines sorted in each.
    static func canonical(_ ldif: String) -> String {
        ldif.components(separatedBy: "\n\n")
            .map { $0.split(separator: "\n").map(String.init) }
            .filter { !$0.isEmpty }
            .map { lines in ([lines[0].lowercased()] + lines.dropFirst().sorted()).joined(separator: "\n") }
            .sorted()
            .joined(separator: "\n\n")
    }

    /// A TCP port on loopback that nobody listens on (bound and closed at once).
    static func closedPort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return 1 }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Bool in
                bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
            }
        }
        return bound ? Int(UInt16(bigEndian: address.sin_port)) : 1
    }

    /// Lines of `text` that contain `needle`.
    static func lines(_ text: String, containing needle: String) -> [String] {
        text.split(separator: "\n").map(String.init).filter { $0.contains(needle) }
    }

    /// Polls `condition` every 10 ms for at most `timeout` seconds.
    static func waitUntil(timeout: Double, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if condition() { return true }
            usleep(10_000)
        }
        return condition()
    }
}

// MARK: - Support: a private server per suite

/// A private slapd (scripts/test-slapd.sh start in /tmp), stopped when the process exits.
struct SafetyServer: Sendable {
    let server: LDAPTestServer

    /// scripts/test-slapd.sh start in a fresh /tmp folder (run with `SafetyKit.run`, not
    /// `LDAPTestServer.startPrivate`: two runners for one job until issue 12 step 1 merges them).
    static func start() -> Result<SafetyServer, SafetyFailure> {
        let directory = "/tmp/tb-safety-slapd-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        do {
            let started = try SafetyKit.run("/bin/bash", [SafetyKit.scriptsFolder + "/test-slapd.sh", "start", directory],
                                            timeout: 120)
            SafetyServerRegistry.shared.add(directory)
            guard started.status == 0 else {
                return .failure(SafetyFailure("cannot start a private slapd: \(started)"))
            }
            return .success(SafetyServer(server: try LDAPTestServer(envFile: directory + "/env")))
        } catch {
            return .failure(SafetyFailure("cannot start a private slapd: \(error)"))
        }
    }

    var directory: String { server.directory }
    var ldapURI: String { server.ldapURI }
    var ldapsURI: String { server.ldapsURI }
    var base: String { server.base }
    var pid: Int32? { server.pid }

    /// ldap-utils as the rootdn; throws on a non-zero exit.
    @discardableResult
    func root(_ tool: String, _ arguments: [String], input: String? = nil) throws -> String {
        let result = try SafetyKit.run(SafetyKit.which(tool), ["-x", "-H", ldapURI, "-D", server.rootDN,
                                                             "-y", server.rootPasswordFile] + arguments, input: input)
        guard result.status == 0 else {
            throw SafetyFailure("\(tool) \(arguments.joined(separator: " ")) failed: \(result)")
        }
        return result.stdout
    }

    func add(_ ldif: String) throws { try root("ldapadd", [], input: ldif) }
    func modify(_ ldif: String) throws { try root("ldapmodify", [], input: ldif) }

    /// Everything under `base` (default: the whole tree), canonical. With `operational`,
    /// also modifyTimestamp, entryCSN and the like, so any write at all shows.
    func dump(_ base: String? = nil, operational: Bool = false) throws -> String {
        let attributes = operational ? ["*", "+"] : ["*"]
        let out = try root("ldapsearch", ["-LLL", "-o", "ldif-wrap=no", "-b", base ?? self.base, "(objectClass=*)"] + attributes)
        return SafetyKit.canonical(out)
    }

    func pause() { if let pid { kill(pid, SIGSTOP) } }
    func resume() { if let pid { kill(pid, SIGCONT) } }

    /// SIGKILL, and wait until the process is gone.
    func killHard() {
        guard let pid else { return }
        kill(pid, SIGKILL)
        _ = SafetyKit.waitUntil(timeout: 10) {
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return true }
            let fields = stat.split(separator: ")").last?.split(separator: " ") ?? []
            return fields.first == "Z" || fields.first == "X"
        }
    }

    func restart() throws {
        let result = try SafetyKit.run("/bin/bash", [SafetyKit.scriptsFolder + "/test-slapd.sh", "restart", directory])
        guard result.status == 0 else { throw SafetyFailure("restart failed: \(result)") }
    }
}

/// Servers to stop at exit (a SIGSTOPped one gets SIGCONT first), and test folders to
/// remove (a world held in a static property is never deinitialised).
final class SafetyServerRegistry: @unchecked Sendable {
    // @unchecked: `directories` and `folders` are only touched while holding `lock`.
    static let shared = SafetyServerRegistry()
    private let lock = NSLock()
    private var directories: [String] = []
    private var folders: [String] = []
    private var installed = false

    private func installOnce() {
        if !installed {
            installed = true
            atexit { SafetyServerRegistry.shared.stopAll() }
        }
    }

    func add(_ directory: String) {
        lock.lock()
        defer { lock.unlock() }
        directories.append(directory)
        installOnce()
    }

    func addFolder(_ folder: String) {
        lock.lock()
        defer { lock.unlock() }
        folders.append(folder)
        installOnce()
    }

    func stopAll() {
        lock.lock()
        let all = directories
        let scratch = folders
        directories = []
        folders = []
        lock.unlock()
        for folder in scratch where folder.hasPrefix(NSTemporaryDirectory()) {
            try? FileManager.default.removeItem(atPath: folder)
        }
        for directory in all {
            if let text = try? String(contentsOfFile: directory + "/slapd.pid", encoding: .utf8),
               let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
                kill(pid, SIGCONT)
                kill(pid, SIGTERM)
            }
            if directory.hasPrefix("/tmp/") {
                usleep(100_000)
                try? FileManager.default.removeItem(atPath: directory)
            }
        }
    }
}

// MARK: - Support: one test's world

/// One test's subtrees (ou=<name> under people, devices and bindings), and a folder with
/// config.toml, a copy of the bind password (0600), reports/ and state/.
final class SafetyWorld: @unchecked Sendable {
    // @unchecked: used by one test at a time.
    let server: SafetyServer
    let name: String
    let people: String
    let devices: String
    let bindings: String
    let folder: String
    var reports: String { folder + "/reports" }
    var state: String { folder + "/state" }
    var configPath: String { folder + "/config.toml" }
    var passwordFile: String { folder + "/bind.pw" }
    /// "section.key" -> raw TOML value; an empty value removes the key.
    var settings: [String: String] = [:]
    var configMode: mode_t = 0o600
    /// Extra raw TOML appended to the file (after the sections).
    var extraTOML = ""
    /// uid -> uidNumber, for reports.
    private var uidNumbers: [String: Int] = [:]
    private var nextUIDNumber = 20_000

    enum Layout: String, Sendable, CaseIterable {
        case project = "takeoverBindingGroup"
        case groupOfNames
    }

    let layout: Layout

    init(_ server: SafetyServer, layout: Layout = .project) throws {
        self.server = server
        self.layout = layout
        name = "w" + UUID().uuidString.prefix(8).lowercased()
        people = "ou=\(name),ou=people,\(server.base)"
        devices = "ou=\(name),ou=devices,\(server.base)"
        bindings = "ou=\(name),ou=bindings,\(server.base)"
        folder = SafetyKit.temporaryFolder("tb-safety-\(name)")
        SafetyServerRegistry.shared.addFolder(folder)
        try FileManager.default.createDirectory(atPath: reports, withIntermediateDirectories: true)
        let password = try String(contentsOfFile: server.server.bindPasswordFile, encoding: .utf8)
        try writeFile(passwordFile, password, mode: 0o600)
        var ldif = ""
        for base in [people, devices, bindings] {
            ldif += "dn: \(base)\nobjectClass: organizationalUnit\nou: \(name)\n\n"
        }
        try server.add(ldif)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: folder)
    }

    func writeFile(_ path: String, _ text: String, mode: mode_t) throws {
        guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8)) else {
            throw SafetyFailure("cannot write \(path)")
        }
        chmod(path, mode)
    }

    var bindPassword: String {
        (try? String(contentsOfFile: passwordFile, encoding: .utf8))?.trimmingCharacters(in: .newlines) ?? ""
    }

    // MARK: Directory content

    func userDN(_ uid: String) -> String { "uid=\(uid),\(people)" }
    func deviceDN(_ device: String) -> String { "cn=\(device),\(devices)" }
    func groupDN(_ device: String) -> String { "cn=\(device),\(bindings)" }

    func userLDIF(_ uid: String, dn: String? = nil) -> String {
        let number = nextUIDNumber
        nextUIDNumber += 1
        uidNumbers[uid] = number
        return SafetyKit.ldif("dn", dn ?? userDN(uid)) + "objectClass: inetOrgPerson\nobjectClass: posixAccount\n"
            + SafetyKit.ldif("uid", uid) + SafetyKit.ldif("cn", "Person \(uid)") + SafetyKit.ldif("sn", uid)
            + "uidNumber: \(number)\ngidNumber: 100\nhomeDirectory: /home/user\(number)\n\n"
    }

    func addUsers(_ uids: [String]) throws {
        var ldif = ""
        for uid in uids { ldif += userLDIF(uid) }
        // ldapadd reads big inputs fine; one process for all.
        try server.add(ldif)
    }

    /// A device entry (groupOfNames) connecting `uids` (`dn` given when the name needs
    /// escaping: the test writes it by hand, independently of the code under test).
    func addDevice(_ device: String, _ uids: [String], dn: String? = nil, memberDNs: [String]? = nil) throws {
        var ldif = SafetyKit.ldif("dn", dn ?? deviceDN(device)) + "objectClass: groupOfNames\n" + SafetyKit.ldif("cn", device)
        let members = memberDNs ?? uids.map(userDN)
        if members.isEmpty { ldif += SafetyKit.ldif("member", devices) }
        for member in members { ldif += SafetyKit.ldif("member", member) }
        try server.add(ldif + "\n")
    }

    func connect(_ uids: [String], to device: String) throws {
        guard !uids.isEmpty else { return }
        var ldif = SafetyKit.ldif("dn", deviceDN(device)) + "changetype: modify\nadd: member\n"
        for uid in uids { ldif += SafetyKit.ldif("member", userDN(uid)) }
        try server.modify(ldif + "-\n\n")
    }

    func disconnect(_ uids: [String], from device: String) throws {
        guard !uids.isEmpty else { return }
        var ldif = SafetyKit.ldif("dn", deviceDN(device)) + "changetype: modify\ndelete: member\n"
        for uid in uids { ldif += SafetyKit.ldif("member", userDN(uid)) }
        try server.modify(ldif + "-\n\n")
    }

    // MARK: Reports

    static func csvField(_ s: String) -> String {
        guard s.contains(",") || s.contains("\"") || s.contains("\n") || s.hasPrefix(" ") || s.hasSuffix(" ") else { return s }
        return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// A fresh CSV report (an hour old) for `device` with root, a local admin and an
    /// account named like each of `accounts` (their uids as in the directory).
    func writeReport(_ device: String, accounts: [String], fileName: String? = nil) throws {
        let time = ISO8601DateFormatter().string(from: Date().addingTimeInterval(-3600))
        var csv = "device,username,uid,home,full_name,shell,reported_at\n"
        let d = SafetyWorld.csvField(device)
        csv += "\(d),root,0,/root,,/bin/bash,\(time)\n"
        csv += "\(d),localadmin,1000,/home/localadmin,,/bin/bash,\(time)\n"
        for account in accounts {
            let number = uidNumbers[account] ?? 5000
            csv += "\(d),\(SafetyWorld.csvField(account)),\(number),\(SafetyWorld.csvField("/home/" + account)),,/bin/bash,\(time)\n"
        }
        let file = reports + "/" + (fileName ?? "report-\(UUID().uuidString.prefix(8)).csv")
        try writeFile(file, csv, mode: 0o644)
    }

    // MARK: Configuration and runs

    func configText() -> String {
        let sections: [(String, [(String, String)])] = [
            ("ldap", [("uri", q(server.ldapURI)), ("bind_dn", q(server.server.bindDN)),
                      ("bind_password_file", q(passwordFile)), ("timeout", "20")]),
            ("users", [("search_base", q(people))]),
            ("devices", [("search_base", q(devices)), ("reports", q(reports))]),
            ("bindings", [("search_base", q(bindings)), ("object_class", q(layout.rawValue))]),
            ("safety", [("max_unbinds", "1000"), ("max_unbind_percent", "100"), ("min_users", "1")]),
            ("state", [("dir", q(state))]),
        ]
        return configTOML(sections, overrides: settings) + extraTOML
    }

    func writeConfig() throws {
        try writeFile(configPath, configText(), mode: configMode)
    }

    /// A TOML string.
    func q(_ s: String) -> String {
        "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    /// Runs the built binary with `-c config.toml` (written fresh first) and `arguments`.
    @discardableResult
    func bridge(_ arguments: [String], environment: [String: String] = [:], timeout: Double = 300) throws -> Outcome {
        try writeConfig()
        return try SafetyKit.run(SafetyKit.binary, ["-c", configPath] + arguments, environment: environment,
                                 directory: folder, timeout: timeout)
    }

    func startBridge(_ arguments: [String], environment: [String: String] = [:]) throws -> Background {
        try writeConfig()
        return try SafetyKit.spawn(SafetyKit.binary, ["-c", configPath] + arguments, environment: environment,
                                   directory: folder)
    }

    // MARK: Reading back

    /// Binding groups: cn -> member values (the bindings base placeholder of the
    /// groupOfNames layout left out).
    func members() throws -> [String: Set<String>] {
        var out: [String: Set<String>] = [:]
        for (group, attributes) in try groupEntries() {
            out[group, default: []].formUnion(attributes.filter { $0.0.lowercased() == "member" }.map(\.1)
                .filter { $0.lowercased() != bindings.lowercased() })
        }
        return out
    }

    /// cn -> every (attribute, value) of the group (not the run lease, which stays between
    /// runs under the same base).
    func groupEntries() throws -> [String: [(String, String)]] {
        let text = try server.root("ldapsearch", ["-LLL", "-o", "ldif-wrap=no", "-b", bindings, "-s", "one",
                                                  "(!(cn=takeover-bridge-lease))", "cn", "member", "description", "takeoverBoundAccount"])
        var out: [String: [(String, String)]] = [:]
        for entry in SafetyKit.parseLDIF(text) {
            let cn = entry.attributes.first { $0.0.lowercased() == "cn" }?.1 ?? entry.dn
            out[cn, default: []] += entry.attributes
        }
        return out
    }

    /// The newest run record's files (from runs.jsonl), absolute paths.
    func lastRunRecord() throws -> (record: String, undo: String, line: String) {
        let journal = try String(contentsOfFile: state + "/runs.jsonl", encoding: .utf8)
        guard let line = journal.split(separator: "\n").last.map(String.init),
              let data = line.data(using: .utf8),
              let object = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              let record = object["record"] as? String, let undo = object["undo"] as? String else {
            throw SafetyFailure("no run record in \(state)/runs.jsonl")
        }
        func absolute(_ p: String) -> String { p.hasPrefix("/") ? p : state + "/" + p }
        return (absolute(record), absolute(undo), line)
    }

    func journalLines() -> [String] {
        ((try? String(contentsOfFile: state + "/runs.jsonl", encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }
}

/// `#expect` on a bridge run's exit status, printing its output when it differs.
func expectStatus(_ outcome: Outcome, _ expected: Int32, _ what: String,
                  sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(outcome.status == expected && !outcome.signalled, "\(what): \(outcome)", sourceLocation: sourceLocation)
}

/// Users u01...uNN.
func uids(_ range: ClosedRange<Int>, prefix: String = "u") -> [String] {
    range.map { String(format: "\(prefix)%02d", $0) }
}

// MARK: - The parent suite

/// Issue 6's suites, one test at a time: each starts private servers and loads thousands
/// of entries, and several measure time (a lock refused "at once", a timeout "within
/// bounds"); run serially they neither crowd the other targets' timing-sensitive tests
/// nor get crowded by them.
@Suite("issue 6: safety, security, bad input", .serialized,
       .enabled(if: safetyServerTestsEnabled, "needs TB_TEST_ENV (run scripts/test.sh)"))
struct Issue6Tests {}

// MARK: - Safety limits

extension Issue6Tests {
    @Suite("safety limits trip before the first write", .serialized,
           .enabled(if: safetyServerTestsEnabled, "needs TB_TEST_ENV (run scripts/test.sh)"))
    struct SafetyLimitTests {
        static let server = SafetyServer.start()

        /// 12 users on lab-01 and 3 on lab-02, all taken over: 15 bindings.
        func boundWorld() throws -> SafetyWorld {
            let world = try SafetyWorld(try Self.server.get())
            try world.addUsers(uids(1...14))
            try world.addDevice("lab-01", uids(1...12))
            try world.addDevice("lab-02", uids(1...3))
            try world.writeReport("lab-01", accounts: uids(1...14))
            try world.writeReport("lab-02", accounts: uids(1...14))
            expectStatus(try world.bridge(["apply"]), 0, "first apply")
            #expect(try world.members()["lab-01"]?.count == 12)
            return world
        }

        @Test func maxUnbindsStopsTheRunAndAllowUnbindsLiftsItForOneRun() throws {
            let world = try boundWorld()
            let server = try Self.server.get()
            world.settings["safety.max_unbinds"] = "3"
            try world.disconnect(uids(1...4), from: "lab-01")
            try world.connect(["u13"], to: "lab-01")  // a pending add: not written either
            let before = try server.dump(operational: true)

            let refused = try world.bridge(["apply"])
            expectStatus(refused, 4, "apply past max_unbinds")
            #expect(refused.stderr.contains("limit=max_unbinds"), "\(refused)")
            #expect(refused.stderr.contains("would unbind 4 of 15 bindings"), "\(refused)")
            #expect(refused.stderr.contains("1 above max_unbinds = 3"), "\(refused)")
            #expect(refused.stderr.contains("--allow-unbinds 4"), "\(refused)")
            #expect(refused.stderr.contains("written=0"), "\(refused)")
            #expect(try server.dump(operational: true) == before, "a refused apply wrote something")
            #expect(world.journalLines().last?.contains("refused") == true, "the refusal leaves a run record")

            // Too small an allowance is refused the same way, naming the allowance.
            let tooFew = try world.bridge(["apply", "--allow-unbinds", "3"])
            expectStatus(tooFew, 4, "apply --allow-unbinds 3")
            #expect(tooFew.stderr.contains("1 more than --allow-unbinds 3"), "\(tooFew)")
            #expect(try server.dump(operational: true) == before)

            let allowed = try world.bridge(["apply", "--allow-unbinds", "4"])
            expectStatus(allowed, 0, "apply --allow-unbinds 4")
            let members = try world.members()
            #expect(members["lab-01"] == Set(uids(5...13).map(world.userDN)))
            #expect(members["lab-02"] == Set(uids(1...3).map(world.userDN)))

            // For one run only: the next run without it trips again.
            try world.disconnect(uids(5...8), from: "lab-01")
            let after = try server.dump(operational: true)
            let again = try world.bridge(["apply"])
            expectStatus(again, 4, "the next apply without --allow-unbinds")
            #expect(again.stderr.contains("would unbind 4 of 12 bindings"), "\(again)")
            #expect(try server.dump(operational: true) == after)
        }

        @Test func maxUnbindPercentStopsTheRun() throws {
            let world = try boundWorld()
            let server = try Self.server.get()
            world.settings["safety.max_unbind_percent"] = "10"
            world.settings["safety.max_unbinds"] = "100"
            try world.disconnect(["u01", "u02"], from: "lab-01")
            try world.disconnect(["u01"], from: "lab-02")
            let before = try server.dump(operational: true)

            let refused = try world.bridge(["apply"])
            expectStatus(refused, 4, "apply past max_unbind_percent")
            #expect(refused.stderr.contains("limit=max_unbind_percent"), "\(refused)")
            #expect(refused.stderr.contains("would unbind 3 of 15 bindings (20%), above max_unbind_percent = 10"), "\(refused)")
            #expect(!refused.stderr.split(separator: "\n").contains { $0.hasSuffix("limit=max_unbinds") || $0.contains("limit=max_unbinds ") },
                    "only the percentage tripped: \(refused)")
            #expect(try server.dump(operational: true) == before)

            // One unbind of 15 (6.7%) is within the limit.
            try world.connect(["u01", "u02"], to: "lab-01")
            let within = try world.bridge(["apply"])
            expectStatus(within, 0, "apply with 1 of 15 unbinds")
            #expect(try world.members()["lab-02"] == Set(["u02", "u03"].map(world.userDN)))
        }

        @Test func tooFewUsersStopsTheRunEvenWithAllowUnbinds() throws {
            let world = try boundWorld()
            let server = try Self.server.get()
            // A filter edited by mistake: 9 of 14 users match.
            world.settings["users.filter"] = world.q("(&(objectClass=posixAccount)(uid=u0*))")
            world.settings["safety.min_users"] = "10"
            let before = try server.dump(operational: true)

            for arguments in [["apply"], ["apply", "--allow-unbinds", "1000"]] {
                let refused = try world.bridge(arguments)
                expectStatus(refused, 4, arguments.joined(separator: " "))
                #expect(refused.stderr.contains("limit=min_users"), "\(refused)")
                #expect(refused.stderr.contains("read 9 users, 1 fewer than min_users = 10, while 15 bindings exist"),
                        "\(refused)")
                #expect(try server.dump(operational: true) == before, "\(arguments) wrote something")
            }
        }

        @Test func anEmptyUserSearchWhileBindingsExistIsRefused() throws {
            let world = try boundWorld()
            let server = try Self.server.get()
            // An empty OU (a wrong search_base), with min_users = 0 so only this rule can refuse.
            let empty = "ou=empty-\(world.name),ou=people,\(server.base)"
            try server.add("dn: \(empty)\nobjectClass: organizationalUnit\nou: empty-\(world.name)\n\n")
            world.settings["users.search_base"] = world.q(empty)
            world.settings["safety.min_users"] = "0"
            let before = try server.dump(operational: true)

            for arguments in [["apply"], ["apply", "--allow-unbinds", "1000"]] {
                let refused = try world.bridge(arguments)
                expectStatus(refused, 4, arguments.joined(separator: " "))
                #expect(refused.stderr.contains("limit=empty-user-search"), "\(refused)")
                #expect(refused.stderr.contains("the user search returned no users while 15 bindings exist"), "\(refused)")
                #expect(try server.dump(operational: true) == before)
            }

            // A search base that does not exist is an LDAP error: a failure (5), never "no users".
            world.settings["users.search_base"] = world.q("ou=nowhere,\(server.base)")
            let missing = try world.bridge(["apply"])
            expectStatus(missing, 5, "apply with a missing search base")
            #expect(missing.stderr.contains("No such object"), "\(missing)")
            #expect(try server.dump(operational: true) == before)
        }
    }
}

// MARK: - Lock and run records

extension Issue6Tests {
    @Suite("one run at a time; run records undo exactly", .serialized,
           .enabled(if: safetyServerTestsEnabled, "needs TB_TEST_ENV (run scripts/test.sh)"))
    struct LockAndRunRecordTests {
        static let server = SafetyServer.start()

        func smallWorld() throws -> SafetyWorld {
            let world = try SafetyWorld(try Self.server.get())
            try world.addUsers(uids(1...6))
            try world.addDevice("desk-1", uids(1...3))
            try world.writeReport("desk-1", accounts: uids(1...6))
            return world
        }

        /// Holds an exclusive flock on `path` from a child process (one process: a SIGKILL
        /// releases it).
        func holdLock(_ path: String) throws -> Background {
            let holder = try SafetyKit.spawn("/bin/bash", ["-c", "exec 9>>\"$1\" && flock -x 9 && exec sleep 120", "holder", path])
            let held = SafetyKit.waitUntil(timeout: 20) {
                (try? SafetyKit.run(SafetyKit.which("flock"), ["-n", "-x", path, "true"]).status) == 1
            }
            #expect(held, "the child did not take the lock")
            return holder
        }

        @Test func aHeldLockMakesTheSecondApplyExit75AtOnce() throws {
            let world = try smallWorld()
            let server = try Self.server.get()
            expectStatus(try world.bridge(["apply"]), 0, "first apply")  // creates the state folder
            try world.connect(["u04"], to: "desk-1")

            let holder = try holdLock(world.state + "/lock")
            let before = try server.dump(operational: true)
            let second = try world.bridge(["apply"])
            expectStatus(second, 75, "apply while another holds the lock")
            #expect(second.seconds < 5, "it must not wait for the lock: \(second.seconds) s")
            #expect(second.stderr.contains("another takeover-bridge run holds the lock"), "\(second)")
            #expect(try server.dump(operational: true) == before, "a locked-out apply wrote something")

            // The holder dies without releasing anything: the lock does not outlive it.
            kill(holder.pid, SIGKILL)
            _ = holder.finish(timeout: 10)
            let next = try world.bridge(["apply"])
            expectStatus(next, 0, "apply after the holder was killed")
            #expect(try world.members()["desk-1"]?.contains(world.userDN("u04")) == true)
        }

        @Test func aRunningApplyHoldsTheLockAndAKilledOneDoesNotBlock() throws {
            let world = try smallWorld()
            let server = try Self.server.get()
            world.settings["ldap.timeout"] = "120"
            try world.writeConfig()

            // The first apply hangs on a paused server while holding the lock.
            server.pause()
            defer { server.resume() }
            let first = try world.startBridge(["apply"])
            let lock = world.state + "/lock"
            let holding = SafetyKit.waitUntil(timeout: 20) {
                FileManager.default.fileExists(atPath: lock)
                    && (try? SafetyKit.run(SafetyKit.which("flock"), ["-n", "-x", lock, "true"]).status) == 1
            }
            #expect(holding, "the first apply did not take the lock")

            let second = try world.bridge(["apply"])
            expectStatus(second, 75, "apply while a running apply holds the lock")
            #expect(second.seconds < 5, "it must not wait: \(second.seconds) s")
            #expect(second.stderr.contains("pid \(first.pid)") || second.stderr.contains("pid=\(first.pid)"),
                    "the message names the holder: \(second)")

            // The holder is killed (a cron job killed by a reboot or the OOM killer).
            kill(first.pid, SIGKILL)
            let killed = first.finish(timeout: 10)
            #expect(killed.signalled)
            server.resume()
            let third = try world.bridge(["apply"])
            expectStatus(third, 0, "apply after the lock holder was killed")
            #expect(try world.members()["desk-1"] == Set(uids(1...3).map(world.userDN)))
        }

        @Test func theUndoFileRestoresTheDirectoryExactly() throws {
            let world = try smallWorld()
            let server = try Self.server.get()
            try world.addUsers(uids(7...9))
            try world.addDevice("desk-2", ["u04", "u05"])
            try world.writeReport("desk-2", accounts: uids(1...9))
            expectStatus(try world.bridge(["apply"]), 0, "first apply")

            // A run with every kind of change: a new group (add-entry), members and records
            // added to and removed from existing groups, a user who left the directory.
            try world.disconnect(["u02"], from: "desk-1")
            try world.connect(["u06", "u07"], to: "desk-1")
            try world.addDevice("desk-3", ["u08", "u09"])
            try world.writeReport("desk-3", accounts: ["u08"])
            try server.root("ldapdelete", [world.userDN("u05")])
            let before = try server.dump()

            let applied = try world.bridge(["apply"])
            expectStatus(applied, 0, "the apply")
            let after = try server.dump()
            #expect(after != before)
            let record = try world.lastRunRecord()
            #expect(record.line.contains("\"outcome\":\"ok\""), "\(record.line)")
            let recordText = try String(contentsOfFile: record.record, encoding: .utf8)
            for dn in [world.groupDN("desk-1"), world.groupDN("desk-2"), world.groupDN("desk-3")] {
                #expect(recordText.contains("dn: \(dn)"), "the record lists \(dn)")
            }

            // The undo, applied as the service account (it writes under ou=bindings only).
            let auth = ["-x", "-H", server.ldapURI, "-D", server.server.bindDN, "-y", server.server.bindPasswordFile]
            let undo = try SafetyKit.run(SafetyKit.which("ldapmodify"), auth + ["-f", record.undo])
            #expect(undo.status == 0, "ldapmodify -f undo: \(undo)")
            // The run lease stays (given back, free): bookkeeping, not part of the run's writes.
            #expect(withoutRunLease(try server.dump()) == withoutRunLease(before),
                    "the undo did not restore the directory")

            // And the record itself redoes the run.
            let redo = try SafetyKit.run(SafetyKit.which("ldapmodify"), auth + ["-f", record.record])
            #expect(redo.status == 0, "ldapmodify -f record: \(redo)")
            #expect(try server.dump() == after)
        }
    }
}

// MARK: - Faults

extension Issue6Tests {
    @Suite("faults: failures are exit 5, never 'no entries'; the next run converges", .serialized,
           .enabled(if: safetyServerTestsEnabled, "needs TB_TEST_ENV (run scripts/test.sh)"))
    struct FaultTests {
        static let server = SafetyServer.start()

        func boundWorld(users: Int = 8) throws -> SafetyWorld {
            let world = try SafetyWorld(try Self.server.get())
            try world.addUsers(uids(1...users))
            try world.addDevice("lab-9", uids(1...4))
            try world.writeReport("lab-9", accounts: uids(1...users))
            expectStatus(try world.bridge(["apply"]), 0, "first apply")
            return world
        }

        @Test func anUnreachableServerIsExit5WithAClearMessage() throws {
            let world = try boundWorld()
            let port = SafetyKit.closedPort()
            world.settings["ldap.uri"] = world.q("ldap://127.0.0.1:\(port)")
            for command in [["apply"], ["plan"], ["explain", "u01"]] {
                let outcome = try world.bridge(command, timeout: 60)
                expectStatus(outcome, 5, "\(command) against a closed port")
                #expect(outcome.seconds < 30)
                #expect(outcome.stderr.contains("cannot connect to ldap://127.0.0.1:\(port)"), "\(outcome)")
                #expect(outcome.stderr.contains("Can't contact LDAP server"), "\(outcome)")
            }
            #expect(world.journalLines().last?.contains("failed") == true, "a failed apply leaves a run record")
        }

        @Test func aRefusedBindIsExit5WithoutThePassword() throws {
            let world = try boundWorld()
            let wrong = "Wr0ng-\(UUID().uuidString)"
            try world.writeFile(world.passwordFile, wrong + "\n", mode: 0o600)
            for command in [["apply"], ["plan"], ["doctor"]] {
                let outcome = try world.bridge(command)
                #expect(outcome.status == 5 && !outcome.signalled, "\(command) with a wrong password: \(outcome)")
                #expect(outcome.all.contains("Invalid credentials"), "\(outcome)")
                #expect(!outcome.all.contains(wrong), "the password was printed by \(command)")
            }
        }

        /// The read-only account has the default size limit (500): a search past it must be
        /// a failure, never a short list of users that would unbind the rest.
        @Test(arguments: ["1000", "100"]) func aSizeLimitIsAFailureNeverNoEntries(pageSize: String) throws {
            let world = try SafetyWorld(try Self.server.get())
            let server = try Self.server.get()
            try world.addUsers(uids(1...620, prefix: "m"))
            // The bound users are the last ones created: a truncated read would miss them.
            try world.addDevice("big-1", uids(601...620, prefix: "m"))
            try world.writeReport("big-1", accounts: uids(601...620, prefix: "m"))
            expectStatus(try world.bridge(["apply"]), 0, "first apply (service account, unlimited)")
            #expect(try world.members()["big-1"]?.count == 20)

            let reader = server.server
            try world.writeFile(world.passwordFile, try String(contentsOfFile: reader.values["TB_READER_PW_FILE"] ?? "",
                                                               encoding: .utf8), mode: 0o600)
            world.settings["ldap.bind_dn"] = world.q(reader.readerDN)
            world.settings["ldap.page_size"] = pageSize
            world.settings["safety.min_users"] = "0"
            let before = try server.dump(operational: true)
            for command in [["apply"], ["plan", "--format", "json"]] {
                let outcome = try world.bridge(command)
                expectStatus(outcome, 5, "\(command) past the size limit (page_size \(pageSize))")
                // apply takes its lease only to write, after reading (issue 11): the read
                // fails first, for apply as for plan.
                #expect(outcome.stderr.contains("Size limit exceeded"), "\(outcome)")
                #expect(!outcome.stdout.contains("\"decisions\""), "a plan was printed from a truncated read: \(outcome)")
            }
            #expect(try server.dump(operational: true) == before)
        }

        @Test func aTimeoutIsExit5WithinBounds() throws {
            let world = try boundWorld()
            let server = try Self.server.get()
            world.settings["ldap.timeout"] = "2"
            try world.connect(["u05"], to: "lab-9")
            server.pause()
            var outcomes: [Outcome] = []
            for command in [["apply"], ["plan"]] {
                outcomes.append(try world.bridge(command, timeout: 90))
            }
            server.resume()
            for outcome in outcomes {
                expectStatus(outcome, 5, "a run against a paused server")
                #expect(outcome.seconds < 30, "timeout = 2 s, but the run took \(outcome.seconds) s")
                #expect(outcome.stderr.lowercased().contains("timed out") || outcome.stderr.lowercased().contains("timeout"),
                        "\(outcome)")
            }
            // The server is back: the next run does the pending work.
            let next = try world.bridge(["apply"])
            expectStatus(next, 0, "apply after the server came back")
            #expect(try world.members()["lab-9"]?.contains(world.userDN("u05")) == true)
        }

        /// A server that stops answering in the middle of the paged user search: a failure
        /// (exit 5) naming the read, never a short list of users.
        @Test func aTimeoutInTheMiddleOfTheReadIsAFailure() throws {
            let world = try SafetyWorld(try Self.server.get())
            let server = try Self.server.get()
            try world.addUsers(uids(1...3000, prefix: "r"))
            try world.addDevice("read-1", uids(2991...3000, prefix: "r"))
            try world.writeReport("read-1", accounts: uids(2991...3000, prefix: "r"))
            expectStatus(try world.bridge(["apply"]), 0, "first apply")
            try world.disconnect(["r2991"], from: "read-1")
            // One entry per page: the user search alone takes thousands of round trips.
            world.settings["ldap.page_size"] = "1"
            world.settings["ldap.timeout"] = "2"
            let before = try server.dump(operational: true)
            let apply = try world.startBridge(["apply"])
            usleep(400_000)
            server.pause()
            let outcome = apply.finish(timeout: 120)
            server.resume()
            expectStatus(outcome, 5, "apply with the server stopped during the read")
            #expect(outcome.seconds < 30, "timeout = 2 s, but the run took \(outcome.seconds) s")
            #expect(outcome.stderr.contains("reading users under"), "the failure names the read: \(outcome)")
            #expect(try server.dump(operational: true) == before)

            world.settings["ldap.page_size"] = "500"
            expectStatus(try world.bridge(["apply"]), 0, "apply after the server came back")
            #expect(try world.members()["read-1"] == Set(uids(2992...3000, prefix: "r").map(world.userDN)))
        }

        @Test func aServerKilledMidApplyIsExit5ListingWhatWasWritten() throws {
            let world = try SafetyWorld(try Self.server.get())
            let server = try Self.server.get()
            // 900 devices with 1-2 users each: 900 entries to add, one after another.
            let users = uids(1...300, prefix: "k")
            try world.addUsers(users)
            var expected: [String: Set<String>] = [:]
            var ldif = ""
            for i in 0..<900 {
                let device = String(format: "pc-%04d", i)
                let connected = i % 3 == 0 ? [users[i % 300], users[(i * 7 + 1) % 300]] : [users[i % 300]]
                expected[device] = Set(connected.map(world.userDN))
                ldif += "dn: \(world.deviceDN(device))\nobjectClass: groupOfNames\ncn: \(device)\n"
                    + connected.map { "member: \(world.userDN($0))\n" }.joined() + "\n"
            }
            try server.add(ldif)
            var csv = "device,username,uid,home,full_name,shell,reported_at\n"
            let time = ISO8601DateFormatter().string(from: Date().addingTimeInterval(-600))
            for device in expected.keys.sorted() {
                csv += "\(device),root,0,/root,,/bin/bash,\(time)\n"
            }
            try world.writeFile(world.reports + "/all.csv", csv, mode: 0o644)

            let apply = try world.startBridge(["apply"])
            // Kill the server once the first groups are there.
            let started = SafetyKit.waitUntil(timeout: 60) {
                let out = try? server.root("ldapsearch", ["-LLL", "-b", world.bindings, "-s", "one", "(cn=*)", "1.1"])
                return (out?.components(separatedBy: "dn:").count ?? 0) > 20
            }
            server.killHard()
            let outcome = apply.finish(timeout: 120)
            try server.restart()
            #expect(started, "the apply never started writing")
            expectStatus(outcome, 5, "apply with the server killed")
            #expect(outcome.seconds < 60, "bounded retries, then give up: it took \(outcome.seconds) s")
            let summary = SafetyKit.lines(outcome.stderr, containing: "changes (")
            #expect(summary.contains { $0.contains("wrote ") && $0.contains(" of ") }, "no 'wrote N of M' line: \(outcome)")
            let written = SafetyKit.lines(outcome.stderr, containing: "msg=written")
            #expect(!written.isEmpty, "what was written is listed: \(outcome)")
            #expect(outcome.stderr.contains("the next run converges"), "\(outcome)")

            // What it says it wrote is there after the restart.
            let groups = try world.members()
            for line in written.prefix(50) {
                if let range = line.range(of: "add-entry cn=") {
                    let device = line[range.upperBound...].prefix { $0 != "," }
                    #expect(groups[String(device)] != nil, "listed as written but missing: \(line)")
                }
            }
            let record = try world.lastRunRecord()
            #expect(record.line.contains("\"outcome\":\"failed"), "\(record.line)")

            // The next run converges to exactly the right bindings.
            let next = try world.bridge(["apply"])
            expectStatus(next, 0, "apply after the restart")
            expectStatus(try world.bridge(["plan", "--check"]), 0, "plan --check after convergence")
            #expect(try world.members() == expected)
        }

        @Test func theFaultScriptPassesAShortRun() throws {
            let outcome = try SafetyKit.run("/bin/bash", [SafetyKit.scriptsFolder + "/fault-test.sh", "--runs", "6",
                                                          "--users", "80", "--devices", "40", "--seed", "4242",
                                                          "--bin", SafetyKit.binary], timeout: 400)
            expectStatus(outcome, 0, "scripts/fault-test.sh --runs 6")
            let last = outcome.stdout.split(separator: "\n").last.map(String.init) ?? ""
            #expect(last.hasSuffix("passed, 0 failed"), "\(outcome)")
            #expect(outcome.stdout.contains("runs: 6;"), "\(outcome)")
        }
    }
}

// MARK: - Concurrent edits

extension Issue6Tests {
    @Suite("a person's edits during an apply survive", .serialized,
           .enabled(if: safetyServerTestsEnabled, "needs TB_TEST_ENV (run scripts/test.sh)"))
    struct ConcurrentEditTests {
        static let server = SafetyServer.start()

        @Test(arguments: SafetyWorld.Layout.allCases) func editsDuringABigApplySurvive(layout: SafetyWorld.Layout) throws {
            let server = try Self.server.get()
            let world = try SafetyWorld(server, layout: layout)
            let users = uids(1...900, prefix: "c")
            try world.addUsers(users)
            // 300 devices with 2 users each, then a reorganisation: 3 more users each, 1 less.
            var ldif = ""
            var expected: [String: Set<String>] = [:]
            for i in 0..<300 {
                let device = String(format: "host-%03d", i)
                let connected = [users[i], users[i + 300]]
                expected[device] = Set(connected.map(world.userDN))
                ldif += "dn: \(world.deviceDN(device))\nobjectClass: groupOfNames\ncn: \(device)\n"
                    + connected.map { "member: \(world.userDN($0))\n" }.joined() + "\n"
            }
            try server.add(ldif)
            let time = ISO8601DateFormatter().string(from: Date().addingTimeInterval(-600))
            var csv = "device,username,uid,home,full_name,shell,reported_at\n"
            for device in expected.keys.sorted() { csv += "\(device),root,0,/root,,/bin/bash,\(time)\n" }
            try world.writeFile(world.reports + "/all.csv", csv, mode: 0o644)
            expectStatus(try world.bridge(["apply"]), 0, "first apply")

            var change = ""
            for i in 0..<300 {
                let device = String(format: "host-%03d", i)
                let added = [users[(i + 1) % 300 + 600], users[(i + 2) % 300 + 600], users[(i + 3) % 300 + 600]]
                change += "dn: \(world.deviceDN(device))\nchangetype: modify\nadd: member\n"
                    + added.map { "member: \(world.userDN($0))\n" }.joined()
                    + "-\ndelete: member\nmember: \(world.userDN(users[i]))\n-\n\n"
                expected[device] = expected[device, default: []].subtracting([world.userDN(users[i])])
                    .union(added.map(world.userDN))
            }
            try server.modify(change)

            // The person: as the rootdn, one ldapmodify per edit, round-robin over the groups:
            // adds an unrelated member and a description; every third edit removes the member
            // added two edits before. Each line of the log is written after its edit succeeded.
            let log = world.folder + "/person.log"
            let stop = world.folder + "/stop"
            let script = """
                set -u
                i=0
                while [ ! -e "$STOP" ]; do
                  i=$((i + 1))
                  g=$(printf 'host-%03d' $(( (i * 37) % 300 )))
                  v="cn=person-$i,ou=services,$BASE"
                  if ldapmodify -x -H "$URI" -D "$ROOTDN" -y "$ROOTPW" >/dev/null 2>>"$LOG.err" <<EOF
                dn: cn=$g,$BINDINGS
                changetype: modify
                add: member
                member: $v
                -
                add: description
                description: Pat's note $i
                -

                EOF
                  then echo "$EPOCHREALTIME add $g $v" >> "$LOG"; fi
                  if [ $((i % 3)) -eq 0 ] && [ $i -gt 2 ]; then
                    j=$((i - 2)); h=$(printf 'host-%03d' $(( (j * 37) % 300 )))
                    if ldapmodify -x -H "$URI" -D "$ROOTDN" -y "$ROOTPW" >/dev/null 2>>"$LOG.err" <<EOF
                dn: cn=$h,$BINDINGS
                changetype: modify
                delete: member
                member: cn=person-$j,ou=services,$BASE
                -

                EOF
                    then echo "$EPOCHREALTIME del $h cn=person-$j,ou=services,$BASE" >> "$LOG"; fi
                  fi
                done
                """
            let person = try SafetyKit.spawn("/bin/bash", ["-c", script], environment: [
                "STOP": stop, "LOG": log, "BASE": server.base, "URI": server.ldapURI, "ROOTDN": server.server.rootDN,
                "ROOTPW": server.server.rootPasswordFile, "BINDINGS": world.bindings,
            ])
            // Let the person start, then run the big apply.
            _ = SafetyKit.waitUntil(timeout: 20) { FileManager.default.fileExists(atPath: log) }
            let applyStart = Date().timeIntervalSince1970
            let applied = try world.bridge(["apply"])
            let applyEnd = Date().timeIntervalSince1970
            _ = FileManager.default.createFile(atPath: stop, contents: nil)
            let personOutcome = person.finish(timeout: 60)
            expectStatus(applied, 0, "the big apply")
            #expect(!personOutcome.signalled)

            // Replay the person's log: what must be there, what must not.
            let lines = ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n")
            var present: [String: Set<String>] = [:]
            var removed: [String: Set<String>] = [:]
            var during = 0
            for line in lines {
                let parts = line.split(separator: " ", maxSplits: 3).map(String.init)
                guard parts.count == 4, let at = Double(parts[0]) else { continue }
                if at > applyStart && at < applyEnd { during += 1 }
                if parts[1] == "add" {
                    present[parts[2], default: []].insert(parts[3])
                    removed[parts[2]]?.remove(parts[3])
                } else {
                    present[parts[2]]?.remove(parts[3])
                    removed[parts[2], default: []].insert(parts[3])
                }
            }
            #expect(during >= 5, "only \(during) of the person's edits happened during the apply (\(applyEnd - applyStart) s)")
            let entries = try world.groupEntries()
            let members = try world.members()
            var lost = 0
            for (group, values) in present {
                for value in values where !(members[group]?.contains(value) ?? false) { lost += 1 }
            }
            var resurrected = 0
            for (group, values) in removed {
                for value in values where members[group]?.contains(value) ?? false { resurrected += 1 }
            }
            #expect(lost == 0, "\(lost) member values added by the person are gone")
            #expect(resurrected == 0, "\(resurrected) member values removed by the person came back")
            let notes = entries.values.flatMap { $0 }.filter { $0.0.lowercased() == "description" && $0.1.hasPrefix("Pat's note") }
            let adds = lines.filter { $0.contains(" add ") }.count
            #expect(notes.count == adds, "the person's descriptions: \(notes.count) of \(adds)")

            // The bridge's own part is exactly right.
            expectStatus(try world.bridge(["plan", "--check"]), 0, "plan --check after the apply")
            var bridgeMembers = members
            for (group, values) in bridgeMembers {
                bridgeMembers[group] = values.filter { !$0.hasPrefix("cn=person-") }
            }
            #expect(bridgeMembers == expected)
        }
    }
}
