// Test support: the one scenario builder. One test's own part of a test directory (its
// OUs under the people, devices and bindings bases), its entries in the shape each kind of
// server expects (every DN built with DNEscaping, every value through LDIF.line), a folder
// with the bridge's config, password file, reports and state, the built binary run on it,
// and the binding groups read back.

import Foundation
import LDAPClient
import LDAPSyntax
#if canImport(Glibc)
import Glibc
#endif

/// A user as a test describes it; `Scenario` writes it the way the server's kind stores
/// people (inetOrgPerson + posixAccount on OpenLDAP and 389, `user` with the RFC 2307
/// attributes on AD).
public struct TestUser: Sendable {
    public var name: String
    /// The `cn` (the RDN value of `userDN(_: TestUser)`: a display name, so a rename can
    /// keep the username).
    public var commonName: String
    /// The "Local User Account" field; nil leaves it unset.
    public var localAccount: String?
    public var uidNumber: Int
    /// Written as `displayName` when set (not on AD).
    public var displayName: String?

    public init(_ name: String, commonName: String? = nil, localAccount: String? = nil, uidNumber: Int = 20_000,
                displayName: String? = nil) {
        self.name = name
        self.commonName = commonName ?? name
        self.localAccount = localAccount
        self.uidNumber = uidNumber
        self.displayName = displayName
    }
}

/// One test's subtrees on one server, and a folder for the bridge (config.toml, bind.pw,
/// reports/, state/).
public final class Scenario: @unchecked Sendable {
    // @unchecked: used by one test at a time; its settings change between runs only.

    /// The binding groups' object class.
    public enum Layout: String, Sendable, CaseIterable {
        /// The project's schema (OpenLDAP).
        case project = "takeoverBindingGroup"
        /// Without schema changes (389 DS; OpenLDAP too).
        case groupOfNames
        /// Active Directory's own.
        case group

        public static var allCases: [Layout] { [.project, .groupOfNames] }

        /// The attribute holding the bound-account records.
        public var recordAttribute: String { self == .project ? "takeoverBoundAccount" : "description" }
    }

    public let server: TestDirectory
    public let name: String
    /// A short random token: AD wants sAMAccountName unique in the whole domain, so
    /// `user("alice")` is `alice-x7k2q`.
    public let token: String
    public let people: String
    public let devices: String
    public let bindings: String
    public let layout: Layout
    public let folder: String
    public var reports: String { folder + "/reports" }
    public var state: String { folder + "/state" }
    public var configPath: String { folder + "/config.toml" }
    /// A copy (0600) of the service account's password, which the config names: beside
    /// `folder`, not in it (tests look for the password in everything the bridge wrote).
    public var passwordFile: String { folder + "-secret/bind.pw" }
    /// Over ldaps:// with the test CA (`true`, every kind), or plain ldap:// (OpenLDAP).
    public let overTLS: Bool
    /// `section.key` -> raw TOML value over `configSections()`: a suite's defaults...
    public var configDefaults: [String: String] = [:]
    /// ...and a test's own settings over them; an empty value leaves the key out.
    public var configOverrides: [String: String] = [:]
    public var configMode: mode_t = 0o600
    /// Raw TOML appended to the file, after the sections.
    public var extraTOML = ""
    /// username -> uidNumber of the users added without one, for reports.
    private var uidNumbers: [String: Int] = [:]
    private var nextUIDNumber = 20_000

    private var kind: TestDirectory.Kind { server.kind }

    /// OUs `name` under the server's people, devices and bindings bases: with `unique`,
    /// `name`-<token> (tests side by side on a shared server); without, `name` itself,
    /// removed first if an earlier run left it (golden files name it).
    public init(_ name: String, on server: TestDirectory, layout: Layout? = nil, unique: Bool = true,
                overTLS: Bool = true) throws {
        self.server = server
        token = String(String(UInt32.random(in: 0...UInt32.max), radix: 36).prefix(5))
        self.name = unique ? "\(name)-\(token)" : name
        self.layout = layout ?? (server.kind == .sambaAD ? .group : server.kind == .dirsrv389 ? .groupOfNames : .project)
        self.overTLS = overTLS
        people = Self.ou(self.name, under: server.peopleBase, kind: server.kind)
        devices = Self.ou(self.name, under: server.devicesBase, kind: server.kind)
        bindings = Self.ou(self.name, under: server.bindingsBase, kind: server.kind)
        folder = NSTemporaryDirectory() + "tb-scenario-\(self.name)-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: folder + "/reports", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: folder + "-secret", withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        PrivateServers.shared.removeAtExit(folder)
        PrivateServers.shared.removeAtExit(folder + "-secret")
        guard let password = FileManager.default.contents(atPath: server.bindPasswordFile) else {
            throw TestDirectory.Failure("cannot read \(server.bindPasswordFile)")
        }
        try writeFile(passwordFile, String(decoding: password, as: UTF8.self), mode: 0o600)
        if !unique {
            for base in [bindings, devices, people] { _ = try? server.admin("ldapdelete", ["-r", base]) }
        }
        for base in [people, devices, bindings] { try addOU(base) }
    }

    deinit {
        try? FileManager.default.removeItem(atPath: folder)
        try? FileManager.default.removeItem(atPath: folder + "-secret")
    }

    /// Writes `text` to `path` with `mode`.
    public func writeFile(_ path: String, _ text: String, mode: mode_t) throws {
        try LDAPTestSupport.writeFile(path, text, mode: mode)
    }

    /// The password in `passwordFile`.
    public var bindPassword: String {
        (try? String(contentsOfFile: passwordFile, encoding: .utf8))?.trimmingCharacters(in: .newlines) ?? ""
    }

    // MARK: Names

    /// A username unique to this scenario (see `token`); at most 20 characters for AD.
    public func user(_ name: String) -> String { "\(name)-\(token)" }

    /// `ou=NAME,base` (`OU=` on AD, as AD spells its DNs).
    public static func ou(_ name: String, under base: String, kind: TestDirectory.Kind) -> String {
        DNEscaping.rdn(kind.isActiveDirectory ? "OU" : "ou", name) + "," + base
    }

    public func ou(_ name: String, under base: String) -> String { Self.ou(name, under: base, kind: kind) }

    private var cn: String { kind.isActiveDirectory ? "CN" : "cn" }

    /// A user named by its `cn` (`TestUser.commonName`).
    public func userDN(_ user: TestUser, in container: String? = nil) -> String {
        DNEscaping.rdn(cn, user.commonName) + "," + (container ?? people)
    }

    /// A user named by its username: `uid=NAME` (`CN=NAME` on AD).
    public func userDN(_ name: String) -> String {
        DNEscaping.rdn(kind.isActiveDirectory ? "CN" : "uid", name) + "," + people
    }

    public func deviceDN(_ device: String) -> String { DNEscaping.rdn(cn, device) + "," + devices }
    public func groupDN(_ device: String) -> String { DNEscaping.rdn(cn, device) + "," + bindings }

    /// The attribute the bridge reads as the username on this kind.
    public var nameAttribute: String { kind.isActiveDirectory ? "sAMAccountName" : "uid" }
    /// The attribute used as the "Local User Account" field on this kind: the project's
    /// schema on OpenLDAP; on 389 and AD, without schema changes, a stock string
    /// attribute people entries already allow (inetOrgPerson's and AD's `employeeType`).
    public var localAccountAttribute: String { kind == .openLDAP ? "localUserAccount" : "employeeType" }

    // MARK: Entries

    public func add(_ ldif: String) throws { try server.add(ldif) }
    public func modify(_ ldif: String) throws { try server.modify(ldif) }

    public func addOU(_ dn: String) throws {
        let value = try DN(parsing: dn).rdns.first?.first?.value ?? ""
        try server.add(LDIF.line("dn", dn) + "objectClass: top\nobjectClass: organizationalUnit\n" + LDIF.line("ou", value) + "\n")
    }

    /// A user entry (content record) at `dn`, else at `userDN(user, in: container)`.
    public func userLDIF(_ user: TestUser, dn: String? = nil, in container: String? = nil) -> String {
        var out = LDIF.line("dn", dn ?? userDN(user, in: container))
        if kind.isActiveDirectory {
            // Enabled (512) without a password (+32, PASSWD_NOTREQD): a person the bridge
            // reads, not one who logs in here; setting 1,600 passwords would cost minutes.
            out += "objectClass: user\n" + LDIF.line("cn", user.commonName) + LDIF.line("sAMAccountName", user.name)
            out += "userAccountControl: 544\n" + LDIF.line("unixHomeDirectory", "/home/\(user.name)")
            out += "loginShell: /bin/bash\n"
        } else {
            out += "objectClass: inetOrgPerson\nobjectClass: posixAccount\n"
            if user.localAccount != nil && kind == .openLDAP { out += "objectClass: takeoverUser\n" }
            out += LDIF.line("cn", user.commonName) + LDIF.line("sn", user.name) + LDIF.line("uid", user.name)
            // homeDirectory is an IA5String: a username outside ASCII gets /home/user<uidNumber>.
            let home = user.name.utf8.allSatisfy { $0 < 0x80 } ? user.name : "user\(user.uidNumber)"
            out += LDIF.line("homeDirectory", "/home/\(home)")
            if let displayName = user.displayName { out += LDIF.line("displayName", displayName) }
        }
        out += "uidNumber: \(user.uidNumber)\ngidNumber: 100\n"
        if let local = user.localAccount { out += LDIF.line(localAccountAttribute, local) }
        return out + "\n"
    }

    /// A user named by its username (`userDN(uid)`, or `dn`), with `uidNumber` or the next
    /// free one (remembered for `writeReport(_:accounts:)`).
    public func userLDIF(_ uid: String, local: String? = nil, uidNumber: Int? = nil, displayName: String? = nil,
                         dn: String? = nil) -> String {
        let number = uidNumber ?? nextUIDNumber
        if uidNumber == nil { nextUIDNumber += 1 }
        uidNumbers[uid] = number
        return userLDIF(TestUser(uid, commonName: displayName, localAccount: local, uidNumber: number,
                                 displayName: displayName), dn: dn ?? userDN(uid))
    }

    public func addUsers(_ users: [TestUser], in container: String? = nil) throws {
        try addInBatches(users.map { userLDIF($0, in: container) })
    }

    /// Users by username, numbered from `firstUIDNumber`.
    public func addUsers(_ users: [(uid: String, local: String?)], firstUIDNumber: Int = 20_000) throws {
        try addInBatches(users.enumerated().map { userLDIF($1.uid, local: $1.local, uidNumber: firstUIDNumber + $0) })
    }

    /// Users by username, numbered on from 20000 (see `userLDIF(_:local:uidNumber:displayName:dn:)`).
    public func addUsers(_ uids: [String]) throws {
        try addInBatches(uids.map { userLDIF($0) })
    }

    /// One ldapadd per 400 entries keeps each call's input small.
    private func addInBatches(_ entries: [String]) throws {
        var start = 0
        while start < entries.count {
            try server.add(entries[start..<min(start + 400, entries.count)].joined())
            start += 400
        }
    }

    /// A device entry connecting `uids` (or the DNs `memberDNs`), at `dn` when the test
    /// writes it by hand: a groupOfNames (which needs a member: an empty one lists the
    /// devices base itself) or, on AD, a group.
    public func deviceLDIF(_ device: String, _ uids: [String] = [], dn: String? = nil,
                           memberDNs: [String]? = nil) -> String {
        var out = LDIF.line("dn", dn ?? deviceDN(device))
        let members = memberDNs ?? uids.map(userDN)
        if kind.isActiveDirectory {
            out += "objectClass: group\n" + LDIF.line("cn", device)
        } else {
            out += "objectClass: groupOfNames\n" + LDIF.line("cn", device)
            if members.isEmpty { out += LDIF.line("member", devices) }
        }
        for member in members { out += LDIF.line("member", member) }
        return out + "\n"
    }

    public func addDevice(_ device: String, _ uids: [String] = [], dn: String? = nil, memberDNs: [String]? = nil) throws {
        try server.add(deviceLDIF(device, uids, dn: dn, memberDNs: memberDNs))
    }

    /// A device connecting the user DNs `members`.
    public func addDevice(_ device: String, members: [String]) throws {
        try addDevice(device, memberDNs: members)
    }

    public func connect(_ uids: [String], to device: String) throws {
        guard !uids.isEmpty else { return }
        try server.modify(LDIF.line("dn", deviceDN(device)) + "changetype: modify\nadd: member\n"
            + uids.map { LDIF.line("member", userDN($0)) }.joined() + "-\n\n")
    }

    public func connect(_ uid: String, to device: String) throws { try connect([uid], to: device) }

    /// Removes the connections; a groupOfNames losing its last member gets the devices
    /// base as member (it must have one).
    public func disconnect(_ uids: [String], from device: String) throws {
        guard !uids.isEmpty else { return }
        do {
            try server.modify(LDIF.line("dn", deviceDN(device)) + "changetype: modify\ndelete: member\n"
                + uids.map { LDIF.line("member", userDN($0)) }.joined() + "-\n\n")
        } catch let error as TestDirectory.Failure where error.description.contains("(65)") && !kind.isActiveDirectory {
            try server.modify(LDIF.line("dn", deviceDN(device)) + "changetype: modify\nreplace: member\n"
                + LDIF.line("member", devices) + "-\n\n")
        }
    }

    public func disconnect(_ uid: String, from device: String) throws { try disconnect([uid], from: device) }

    /// Removes every connection of `device` (keeping the placeholder groupOfNames needs).
    public func disconnectAll(_ device: String, members: [String]) throws {
        var out = LDIF.line("dn", deviceDN(device)) + "changetype: modify\n"
        if !kind.isActiveDirectory { out += "add: member\n" + LDIF.line("member", devices) + "-\n" }
        out += "delete: member\n"
        for member in members { out += LDIF.line("member", member) }
        try server.change(out + "-\n\n")
    }

    public func setLocalAccount(_ userDN: String, _ value: String) throws {
        try server.change(LDIF.line("dn", userDN) + "changetype: modify\nreplace: \(localAccountAttribute)\n"
            + LDIF.line(localAccountAttribute, value) + "-\n\n")
    }

    /// Renames (new RDN value) and/or moves (new container) an entry; returns its new DN.
    @discardableResult
    public func moveEntry(_ dn: String, newCommonName: String, to container: String) throws -> String {
        let rdn = DNEscaping.rdn(cn, newCommonName)
        try server.change(LDIF.line("dn", dn) + "changetype: modrdn\n" + LDIF.line("newrdn", rdn)
            + "deleteoldrdn: 1\n" + LDIF.line("newsuperior", container) + "\n")
        return rdn + "," + container
    }

    // MARK: Reports

    /// A CSV field, quoted when it has to be.
    public static func csvField(_ s: String) -> String {
        guard s.contains(",") || s.contains("\"") || s.contains("\n") || s.hasPrefix(" ") || s.hasSuffix(" ") else { return s }
        return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// A CSV report for `device` listing `rows` (name, uid, home), reported at `reportedAt`
    /// (seconds since 1970; default an hour ago), in `fileName` (default a new name).
    private func writeReport(_ device: String, rows: [(name: String, uid: Int, home: String)], fileName: String?,
                             reportedAt: Double?) throws {
        let formatter = ISO8601DateFormatter()
        let time = formatter.string(from: Date(timeIntervalSince1970: reportedAt ?? Date().timeIntervalSince1970 - 3600))
        var csv = "device,username,uid,home,full_name,shell,reported_at\n"
        for row in rows {
            csv += [device, row.name, String(row.uid), row.home].map(Self.csvField).joined(separator: ",")
                + ",,/bin/bash,\(time)\n"
        }
        try writeFile(reports + "/" + (fileName ?? "report-\(UUID().uuidString.prefix(8)).csv"), csv, mode: 0o644)
    }

    /// A report for `device` listing `accounts` (name, uid), homes under /home.
    public func writeReport(_ device: String, _ accounts: [(name: String, uid: Int)], fileName: String? = nil,
                            reportedAt: Double? = nil) throws {
        try writeReport(device, rows: accounts.map { ($0.name, $0.uid, "/home/" + $0.name) }, fileName: fileName,
                        reportedAt: reportedAt)
    }

    /// A report for `device` with root, a local admin and an account named like each of
    /// `accounts` (their uids as in the directory).
    public func writeReport(_ device: String, accounts: [String], fileName: String? = nil) throws {
        let rows = [("root", 0, "/root"), ("localadmin", 1000, "/home/localadmin")]
            + accounts.map { ($0, uidNumbers[$0] ?? 5000, "/home/" + $0) }
        try writeReport(device, rows: rows, fileName: fileName, reportedAt: nil)
    }

    // MARK: The bridge

    /// The configuration an admin of this kind of server would write (README, "Directory
    /// servers"), as the non-root service account.
    public func configSections() -> [(String, [(String, String)])] {
        let ad = kind.isActiveDirectory
        let ldap = overTLS
            ? [("uri", q(server.ldapsURI)), ("bind_dn", q(server.bindDN)), ("bind_password_file", q(passwordFile)),
               ("tls_reqcert", q("demand")), ("tls_cacert", q(server.caCert)), ("timeout", "30")]
            : [("uri", q(server.ldapURI)), ("bind_dn", q(server.bindDN)), ("bind_password_file", q(passwordFile)),
               ("timeout", "30")]
        return [
            ("ldap", ldap),
            ("users", [("search_base", q(people)),
                       ("filter", q(ad ? "(&(objectCategory=person)(objectClass=user)"
                                         + "(!(userAccountControl:1.2.840.113556.1.4.803:=2)))"
                                       : "(objectClass=posixAccount)")),
                       ("name_attribute", q(nameAttribute)), ("local_account_attribute", q(localAccountAttribute))]),
            ("devices", [("search_base", q(devices)),
                         ("filter", q(ad ? "(objectClass=group)" : "(objectClass=groupOfNames)")),
                         ("reports", q(reports))]),
            ("bindings", [("search_base", q(bindings)), ("object_class", q(layout.rawValue))]),
            ("safety", [("max_unbinds", "5000"), ("max_unbind_percent", "100"), ("min_users", "1")]),
            ("state", [("dir", q(state))]),
        ]
    }

    public func configText() -> String {
        configTOML(configSections(), overrides: configDefaults.merging(configOverrides) { _, test in test }) + extraTOML
    }

    public func writeConfig() throws {
        try writeFile(configPath, configText(), mode: configMode)
    }

    /// A TOML basic string.
    public func q(_ s: String) -> String {
        "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    /// Runs the built binary in `folder` with `-c config.toml` (written fresh) and `arguments`.
    @discardableResult
    public func bridge(_ arguments: [String], environment: [String: String] = [:],
                       timeout: Double = 300) throws -> ProcessOutcome {
        try writeConfig()
        return try Processes.run(BridgeExecutable.path, ["-c", configPath] + arguments, environment: environment,
                                 directory: folder, timeout: timeout)
    }

    /// The same, started in the background.
    public func startBridge(_ arguments: [String], environment: [String: String] = [:]) throws -> ChildProcess {
        try writeConfig()
        return try Processes.spawn(BridgeExecutable.path, ["-c", configPath] + arguments, environment: environment,
                                   directory: folder)
    }

    /// `plan --format json`, parsed.
    public func planJSON() throws -> (status: Int32, report: PlanReport) {
        let result = try bridge(["plan", "--format", "json"])
        guard let report = PlanReport(json: result.stdout) else {
            throw TestDirectory.Failure("plan --format json on \(kind) (exit \(result.status)) printed no report: "
                + result.stderr)
        }
        return (result.status, report)
    }

    // MARK: Reading back (as the administrator)

    /// The bindings subtree, canonical (`TestDirectory.dump`).
    public func dumpBindings() throws -> String { try server.dump(bindings) }

    /// `base` on this scenario's server or on `other`, canonical.
    public func dump(_ base: String, server other: TestDirectory? = nil) throws -> String {
        try (other ?? server).dump(base)
    }

    /// The binding groups (not the run lease, which stays between runs under the same
    /// base) matching `filter`, one level below the bindings base.
    public func groupEntries(_ filter: String = "(objectClass=*)") throws -> [LDIFEntry] {
        let result = try server.admin("ldapsearch", ["-LLL", "-o", "ldif-wrap=no", "-b", bindings, "-s", "one",
                                                     "(&\(filter)(!(cn=takeover-bridge-lease)))", "cn", "member",
                                                     "description", "takeoverBoundAccount"])
        return LDIFEntry.parse(result.stdout)
    }

    /// cn -> every (attribute, value) of the group.
    public func groupAttributes() throws -> [String: [(String, String)]] {
        var out: [String: [(String, String)]] = [:]
        for entry in try groupEntries() {
            out[entry.values("cn").first ?? entry.dn, default: []]
                += entry.attributes.flatMap { name, values in values.map { (name, $0) } }
        }
        return out
    }

    /// Binding groups: cn -> member values (the placeholder of groupOfNames left out).
    public func members() throws -> [String: Set<String>] {
        var out: [String: Set<String>] = [:]
        for entry in try groupEntries() {
            out[entry.values("cn").first ?? entry.dn, default: []]
                .formUnion(entry.valuesWithOptions("member").filter { $0.lowercased() != bindings.lowercased() })
        }
        return out
    }

    /// The user members of `device`'s binding group (nil when there is no group), sorted;
    /// the placeholder value of groupOfNames is left out.
    public func boundMembers(_ device: String) throws -> [String]? {
        let result = try server.admin("ldapsearch", ["-LLL", "-o", "ldif-wrap=no", "-b", groupDN(device),
                                                     "-s", "base", "(objectClass=*)", "member"], allowFailure: true)
        if result.status == 32 { return nil } // no such object
        guard result.status == 0 else {
            throw TestDirectory.Failure("reading \(groupDN(device)) failed (\(result.status)): \(result.stderr)")
        }
        guard let entry = LDIFEntry.parse(result.stdout).first else { return nil }
        let placeholder = bindings.lowercased()
        return entry.valuesWithOptions("member").filter { $0.lowercased() != placeholder }
            .sorted { $0.lowercased() < $1.lowercased() }
    }

    /// The newest run record's files (from runs.jsonl), absolute paths, and its line.
    public func lastRunRecord() throws -> (record: String, undo: String, line: String) {
        let journal = try String(contentsOfFile: state + "/runs.jsonl", encoding: .utf8)
        guard let line = journal.split(separator: "\n").last.map(String.init),
              let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
              let record = object["record"] as? String, let undo = object["undo"] as? String else {
            throw TestDirectory.Failure("no run record in \(state)/runs.jsonl")
        }
        func absolute(_ p: String) -> String { p.hasPrefix("/") ? p : state + "/" + p }
        return (absolute(record), absolute(undo), line)
    }

    public func journalLines() -> [String] {
        ((try? String(contentsOfFile: state + "/runs.jsonl", encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }
}

/// The parts of `plan --format json` (docs/product.md section 5) the suites look at.
public struct PlanReport: Sendable {
    public struct Decision: Sendable {
        public var user: String
        public var device: String
        public var action: String
        public var reason: String
    }

    public var summary: [String: Int]
    public var decisions: [Decision]
    public var conflictKinds: [String]
    public var changes: Int { summary["changes"] ?? -1 }

    public init?(json: String) {
        guard let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any],
              let summary = object["summary"] as? [String: Any] else { return nil }
        self.summary = summary.compactMapValues { ($0 as? NSNumber)?.intValue }
        decisions = ((object["decisions"] as? [[String: Any]]) ?? []).map {
            Decision(user: $0["user"] as? String ?? "", device: $0["device"] as? String ?? "",
                     action: $0["action"] as? String ?? "", reason: $0["reason"] as? String ?? "")
        }
        conflictKinds = ((object["conflicts"] as? [[String: Any]]) ?? []).compactMap { $0["kind"] as? String }
    }

    /// The action decided for (user, device), nil when there is no such decision.
    public func action(_ user: String, _ device: String) -> String? {
        decisions.first { $0.user.lowercased() == user.lowercased() && $0.device == device }?.action
    }

    public func count(_ action: String) -> Int { decisions.filter { $0.action == action }.count }
}

/// The `takeover-bridge` executable `swift build` built: `$TB_BRIDGE_BINARY`, else next
/// to the test bundle, else `.build/debug/takeover-bridge` of this package.
public enum BridgeExecutable {
    public static let path: String = {
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
        candidates.append(TestDirectory.packageRoot + "/.build/debug/takeover-bridge")
        return candidates.first { fm.isExecutableFile(atPath: $0) } ?? candidates.last ?? ""
    }()
}

/// A config file's text: `sections` in order, each `(key, value)` with an already-quoted
/// TOML value (an empty value leaves the key out); `overrides` ("section.key" -> value)
/// replace or add keys, in sorted order. The one config writer of the test suites.
public func configTOML(_ sections: [(String, [(String, String)])], overrides: [String: String]) -> String {
    var sections = sections
    for (key, value) in overrides.sorted(by: { $0.key < $1.key }) {
        let parts = key.split(separator: ".", maxSplits: 1).map(String.init)
        guard parts.count == 2 else { continue }
        if let s = sections.firstIndex(where: { $0.0 == parts[0] }) {
            if let k = sections[s].1.firstIndex(where: { $0.0 == parts[1] }) {
                sections[s].1[k].1 = value
            } else {
                sections[s].1.append((parts[1], value))
            }
        } else {
            sections.append((parts[0], [(parts[1], value)]))
        }
    }
    var text = ""
    for (section, keys) in sections {
        text += "[\(section)]\n"
        for (key, value) in keys where !value.isEmpty { text += "\(key) = \(value)\n" }
        text += "\n"
    }
    return text
}
