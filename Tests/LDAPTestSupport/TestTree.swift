// Test support: one test's own part of a test directory (its OUs under the people,
// devices and bindings bases), its entries in the shape each kind of server expects,
// a folder with the bridge's config, reports and state, and the built binary run on it.

import Foundation
import LDAPClient
import LDAPSyntax

/// A user as a test describes it; `TestTree` writes it the way the server's kind stores
/// people (inetOrgPerson + posixAccount on OpenLDAP and 389, `user` with the RFC 2307
/// attributes on AD).
public struct TestUser: Sendable {
    public var name: String
    /// The RDN value (a display name, so a rename can keep the username).
    public var commonName: String
    /// The "Local User Account" field; nil leaves it unset.
    public var localAccount: String?
    public var uidNumber: Int

    public init(_ name: String, commonName: String? = nil, localAccount: String? = nil, uidNumber: Int = 20_000) {
        self.name = name
        self.commonName = commonName ?? name
        self.localAccount = localAccount
        self.uidNumber = uidNumber
    }
}

/// One test's subtrees on one server, and a folder for the bridge (config.toml,
/// reports/, state/). Names are unique per instance, so tests run side by side on the
/// shared servers.
public final class TestTree: @unchecked Sendable {
    // @unchecked: used by one test at a time; `configOverrides` changes between runs only.

    public let server: TestDirectory
    public let name: String
    /// A short random token, unique per tree: AD wants sAMAccountName unique in the whole
    /// domain, so usernames carry it (`user("alice")` is `alice-x7k2q`).
    public let token: String
    public let people: String
    public let devices: String
    public let bindings: String
    public let folder: String
    public var reports: String { folder + "/reports" }
    public var state: String { folder + "/state" }
    public var configPath: String { folder + "/config.toml" }
    /// `section.key` -> raw TOML value, over the defaults of `configSections()`.
    public var configOverrides: [String: String] = [:]

    private var kind: TestDirectory.Kind { server.kind }

    /// Creates `name`-<random> OUs under the server's people, devices and bindings bases.
    public init(_ name: String, on server: TestDirectory) throws {
        self.server = server
        token = String(String(UInt32.random(in: 0...UInt32.max), radix: 36).prefix(5))
        self.name = "\(name)-\(token)"
        people = Self.ou(self.name, under: server.peopleBase, kind: server.kind)
        devices = Self.ou(self.name, under: server.devicesBase, kind: server.kind)
        bindings = Self.ou(self.name, under: server.bindingsBase, kind: server.kind)
        folder = NSTemporaryDirectory() + "tb-x-\(self.name)"
        try FileManager.default.createDirectory(atPath: folder + "/reports", withIntermediateDirectories: true)
        try addOU(people)
        try addOU(devices)
        try addOU(bindings)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: folder)
    }

    // MARK: Names

    /// A username unique to this tree (see `token`); at most 20 characters for AD.
    public func user(_ name: String) -> String { "\(name)-\(token)" }

    /// `ou=NAME,base` (`OU=` on AD, as AD spells its DNs).
    public static func ou(_ name: String, under base: String, kind: TestDirectory.Kind) -> String {
        DNEscaping.rdn(kind.isActiveDirectory ? "OU" : "ou", name) + "," + base
    }

    public func ou(_ name: String, under base: String) -> String { Self.ou(name, under: base, kind: kind) }

    private var cn: String { kind.isActiveDirectory ? "CN" : "cn" }

    public func userDN(_ user: TestUser, in container: String? = nil) -> String {
        DNEscaping.rdn(cn, user.commonName) + "," + (container ?? people)
    }

    public func deviceDN(_ device: String) -> String { DNEscaping.rdn(cn, device) + "," + devices }
    public func bindingGroupDN(_ device: String) -> String { DNEscaping.rdn(cn, device) + "," + bindings }

    /// The attribute the bridge reads as the username on this kind.
    public var nameAttribute: String { kind.isActiveDirectory ? "sAMAccountName" : "uid" }
    /// The attribute used as the "Local User Account" field on this kind: the project's
    /// schema on OpenLDAP; on 389 and AD, without schema changes, a stock string
    /// attribute people entries already allow (inetOrgPerson's and AD's `employeeType`).
    public var localAccountAttribute: String { kind == .openLDAP ? "localUserAccount" : "employeeType" }

    /// The binding groups' object class on this kind: the project's schema on OpenLDAP,
    /// the layout without schema changes on 389 (`groupOfNames`) and AD (`group`).
    public var bindingObjectClass: String {
        switch kind {
        case .openLDAP: "takeoverBindingGroup"
        case .dirsrv389: "groupOfNames"
        case .sambaAD: "group"
        }
    }

    // MARK: Entries

    public func addOU(_ dn: String) throws {
        let value = try DN(parsing: dn).rdns.first?.first?.value ?? ""
        try server.change(LDIF.line("dn", dn) + "changetype: add\nobjectClass: top\nobjectClass: organizationalUnit\n"
            + LDIF.line("ou", value) + "\n")
    }

    public func userLDIF(_ user: TestUser, in container: String? = nil) -> String {
        var out = LDIF.line("dn", userDN(user, in: container)) + "changetype: add\n"
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
            out += LDIF.line("homeDirectory", "/home/\(user.name)")
        }
        out += "uidNumber: \(user.uidNumber)\ngidNumber: 100\n"
        if let local = user.localAccount { out += LDIF.line(localAccountAttribute, local) }
        return out + "\n"
    }

    public func addUsers(_ users: [TestUser], in container: String? = nil) throws {
        // One ldapmodify per 400 entries keeps each call's input small.
        var start = 0
        while start < users.count {
            let slice = users[start..<min(start + 400, users.count)]
            try server.change(slice.map { userLDIF($0, in: container) }.joined())
            start += 400
        }
    }

    /// A device entry connecting `members` (user DNs): a groupOfNames (which needs a
    /// member: an empty one lists the devices base itself) or, on AD, a group.
    public func addDevice(_ device: String, members: [String]) throws {
        var out = LDIF.line("dn", deviceDN(device)) + "changetype: add\n"
        if kind.isActiveDirectory {
            out += "objectClass: group\n" + LDIF.line("cn", device)
        } else {
            out += "objectClass: groupOfNames\n" + LDIF.line("cn", device)
            if members.isEmpty { out += LDIF.line("member", devices) }
        }
        for member in members { out += LDIF.line("member", member) }
        try server.change(out + "\n")
    }

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

    /// A CSV report for `device` listing `accounts` (name, uid), reported an hour ago.
    public func writeReport(_ device: String, _ accounts: [(name: String, uid: Int)]) throws {
        let formatter = ISO8601DateFormatter()
        let time = formatter.string(from: Date().addingTimeInterval(-3600))
        var csv = "device,username,uid,home,full_name,shell,reported_at\n"
        for account in accounts {
            csv += "\(device),\(account.name),\(account.uid),/home/\(account.name),,/bin/bash,\(time)\n"
        }
        try csv.write(toFile: reports + "/\(device).csv", atomically: true, encoding: .utf8)
    }

    // MARK: The bridge

    /// The configuration an admin of this kind of server would write (README, "Directory
    /// servers"), over ldaps:// with the test CA, as the non-root service account.
    public func configSections() -> [(String, [(String, String)])] {
        let ad = kind.isActiveDirectory
        return [
            ("ldap", [("uri", q(server.ldapsURI)), ("bind_dn", q(server.bindDN)),
                      ("bind_password_file", q(server.bindPasswordFile)), ("tls_reqcert", q("demand")),
                      ("tls_cacert", q(server.caCert)), ("timeout", "30")]),
            ("users", [("search_base", q(people)),
                       ("filter", q(ad ? "(&(objectCategory=person)(objectClass=user)"
                                         + "(!(userAccountControl:1.2.840.113556.1.4.803:=2)))"
                                       : "(objectClass=posixAccount)")),
                       ("name_attribute", q(nameAttribute)), ("local_account_attribute", q(localAccountAttribute))]),
            ("devices", [("search_base", q(devices)),
                         ("filter", q(ad ? "(objectClass=group)" : "(objectClass=groupOfNames)")),
                         ("reports", q(reports))]),
            ("bindings", [("search_base", q(bindings)), ("object_class", q(bindingObjectClass))]),
            ("safety", [("max_unbinds", "5000"), ("max_unbind_percent", "100"), ("min_users", "1")]),
            ("state", [("dir", q(state))]),
        ]
    }

    public func writeConfig() throws {
        let text = configTOML(configSections(), overrides: configOverrides)
        _ = FileManager.default.createFile(atPath: configPath, contents: Data(text.utf8),
                                           attributes: [.posixPermissions: 0o600])
    }

    /// A TOML basic string.
    public func q(_ s: String) -> String {
        "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    /// Runs the built binary with `-c config.toml` (written fresh) and `arguments`.
    @discardableResult
    public func bridge(_ arguments: [String]) throws -> ProcessOutcome {
        try writeConfig()
        return try Processes.run(BridgeExecutable.path, ["-c", configPath] + arguments)
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

    /// The user members of `device`'s binding group (nil when there is no group), as
    /// the administrator reads them; the placeholder value of groupOfNames is left out.
    public func boundMembers(_ device: String) throws -> [String]? {
        let result = try server.admin("ldapsearch", ["-LLL", "-o", "ldif-wrap=no", "-b", bindingGroupDN(device),
                                                     "-s", "base", "(objectClass=*)", "member"], allowFailure: true)
        if result.status == 32 { return nil } // no such object
        guard result.status == 0 else {
            throw TestDirectory.Failure("reading \(bindingGroupDN(device)) failed (\(result.status)): \(result.stderr)")
        }
        guard let entry = LDIFEntry.parse(result.stdout).first else { return nil }
        let placeholder = bindings.lowercased()
        return entry.valuesWithOptions("member").filter { $0.lowercased() != placeholder }
            .sorted { $0.lowercased() < $1.lowercased() }
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
