// Support for the end-to-end tests: scenarios with their own subtrees on this target's
// private server (`bridgeServer`), captured logs, a replica pair.
//
// The tests run only under scripts/test.sh (TB_TEST_ENV set). They do not write to the
// shared server: this target starts private servers of its own (LDAPTestSupport's
// `TestDirectory.startPrivate`), so the destructive tests here (killing the server, safety
// limits that compare whole subtrees) never disturb other targets' tests, and theirs never
// disturb these.

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

let bridgeTestsEnabled = TestDirectory.isConfigured

/// This target's private server for the suites that share one (started on first use,
/// stopped when the test process exits); the destructive suites start their own.
let bridgeServer = TestDirectory.privateServer()

// MARK: - Scenarios

/// One test's world: its own subtrees under ou=people, ou=devices and ou=bindings of the
/// private server, and a folder with config.toml, reports/ and state/.
final class Scenario: @unchecked Sendable {
    // @unchecked: used by one test at a time; `configOverrides` changes between runs only.

    let server: TestDirectory
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

    init(_ name: String? = nil, layout: Layout = .project, server: TestDirectory? = nil) throws {
        self.server = try server ?? bridgeServer.get()
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
            _ = try? server.admin("ldapdelete", ["-r", base])
        }
        var ldif = ""
        for base in [people, devices, bindings] {
            ldif += "dn: \(base)\nobjectClass: organizationalUnit\nou: \(name)\n\n"
        }
        try add(ldif)
    }

    // MARK: Directory content (as the rootdn)

    func add(_ ldif: String) throws { try server.add(ldif) }
    func modify(_ ldif: String) throws { try server.modify(ldif) }

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
        } catch let error as TestDirectory.Failure where error.description.contains("(65)") {
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
    func bridge(_ arguments: [String], environment: [String: String] = [:]) throws -> ProcessOutcome {
        try writeConfig()
        return try Processes.run(BridgeExecutable.path, ["-c", configPath] + arguments, environment: environment,
                                 directory: folder)
    }

    // MARK: Dumps

    /// The bindings subtree, canonical: entries sorted by DN, lines within an entry sorted.
    func dumpBindings() throws -> String { try dump(bindings) }

    func dump(_ base: String, server other: TestDirectory? = nil) throws -> String {
        try (other ?? server).dump(base)
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

extension TestDirectory {
    /// A provider and a read-only consumer: syncrepl (refreshAndPersist) from the
    /// provider, `updateref` pointing writes back to it, so the consumer answers every
    /// write with a referral (10), like a replica in production. The consumer starts
    /// empty and copies everything, the service account's password included.
    /// `updateRefs` replaces the consumer's `updateref` (the provider) with these URLs.
    static func startReplicaPair(updateRefs: [String]? = nil) throws -> (provider: TestDirectory, consumer: TestDirectory) {
        var provider = try startPrivate()
        var consumer = try startPrivate()
        let providerConf = provider.directory + "/slapd.conf"
        var text = try String(contentsOfFile: providerConf, encoding: .utf8)
        text = text.replacingOccurrences(of: "moduleload back_mdb\n", with: "moduleload back_mdb\nmoduleload syncprov\n")
        text += "overlay syncprov\n"
        try text.write(toFile: providerConf, atomically: true, encoding: .utf8)
        provider = try provider.restart()

        let rootPassword = try String(contentsOfFile: provider.rootPasswordFile, encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let consumerConf = consumer.directory + "/slapd.conf"
        var ctext = try String(contentsOfFile: consumerConf, encoding: .utf8)
        ctext += "syncrepl rid=001 provider=\(provider.ldapURI) bindmethod=simple binddn=\"\(provider.rootDN)\" "
            + "credentials=\(rootPassword) searchbase=\"\(provider.base)\" type=refreshAndPersist retry=\"1 +\"\n"
        for url in updateRefs ?? [provider.ldapURI] { ctext += "updateref \"\(url)\"\n" }
        try ctext.write(toFile: consumerConf, atomically: true, encoding: .utf8)
        try consumer.stop(removeFiles: false)
        // Entries seeded separately have other entryUUIDs: start empty, copy everything.
        for file in (try? FileManager.default.contentsOfDirectory(atPath: consumer.directory + "/db")) ?? [] {
            try? FileManager.default.removeItem(atPath: consumer.directory + "/db/" + file)
        }
        consumer = try consumer.restart()
        let ready = waitUntil(seconds: 15) {
            let probe = try? Processes.run("/usr/bin/ldapwhoami", ["-x", "-H", consumer.ldapURI, "-D", provider.bindDN,
                                                                   "-y", provider.bindPasswordFile], timeout: 10)
            return probe?.status == 0
        }
        guard ready else { throw TestDirectory.Failure("the consumer did not replicate the provider within 15 s") }
        return (provider, consumer)
    }
}
