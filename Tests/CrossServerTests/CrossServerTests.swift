// The same end-to-end cases on OpenLDAP, 389 Directory Server and Samba AD (docs/product.md
// 8b): the built binary against the servers scripts/test.sh starts (TB_TEST_ENV,
// TB_TEST_ENV_389, TB_TEST_ENV_AD), each case parametrized over the servers so each
// server's result shows by name. Every case works in OUs of its own.
//
// Each case prints one line `cross-server <server> <case>: <command>=<exit> ...` with
// the binary's exit codes, so a run's log shows the same cases side by side.

import Foundation
import LDAPClient
import LDAPTestSupport
import Testing

/// The servers configured for this run (scripts/test.sh configures all three).
let crossServers = TestDirectory.configuredKinds

private func directory(_ kind: TestDirectory.Kind) throws -> TestDirectory {
    try #require(TestDirectory.configured(kind), "\(kind.environmentVariable) names no \(kind) env file")
}

/// Exit codes (docs/product.md section 4).
enum Exit {
    static let ok: Int32 = 0
    static let changesPending: Int32 = 2
    static let conflicts: Int32 = 3
    static let directoryFailure: Int32 = 5
}

/// Collects the exit codes of one case for its summary line.
final class ExitLog: @unchecked Sendable {
    // @unchecked: used by one test at a time.
    private var entries: [String] = []
    let label: String
    init(_ kind: TestDirectory.Kind, _ name: String) { label = "cross-server \(kind.rawValue) \(name)" }

    /// Runs the bridge, records "<name>=<exit>", returns the result.
    @discardableResult
    func run(_ tree: Scenario, _ name: String, _ arguments: [String]) throws -> ProcessOutcome {
        let result = try tree.bridge(arguments)
        entries.append("\(name)=\(result.status)")
        return result
    }

    func note(_ name: String, _ status: Int32) { entries.append("\(name)=\(status)") }

    deinit { print("\(label): " + entries.joined(separator: " ")) }
}

extension Scenario {
    /// Adds `users`, a device `device` connecting all of them, and its report listing them
    /// (uids 1001, 1002, ...).
    func addConnected(_ users: [TestUser], to device: String) throws {
        try addUsers(users)
        try addDevice(device, members: users.map { userDN($0) })
        try writeReport(device, users.enumerated().map { ($1.name, 1001 + $0) })
    }
}

private func output(_ result: ProcessOutcome) -> String {
    "stdout:\n\(result.stdout)\nstderr:\n\(result.stderr)"
}

/// One case on a server of `kind`: the server, a tree on it (`scenario`) in which `users`
/// (username, uidNumber) are connected to `device` and reported, and the case's exit log
/// (`log`).
private struct ConnectedCase {
    let server: TestDirectory
    let tree: Scenario
    let log: ExitLog
    let users: [TestUser]

    init(_ kind: TestDirectory.Kind, _ scenario: String, log name: String, users: [(name: String, uidNumber: Int)],
         device: String) throws {
        let server = try directory(kind)
        let tree = try Scenario(scenario, on: server)
        self.server = server
        self.tree = tree
        log = ExitLog(kind, name)
        self.users = users.map { TestUser(tree.user($0.name), uidNumber: $0.uidNumber) }
        try tree.addConnected(self.users, to: device)
    }
}

/// A server named in the environment but unusable would silently drop out of the
/// parametrized cases: that is a failure, not a skip.
@Test("every server named in the environment is usable", arguments: TestDirectory.Kind.allCases)
func namedServersAreUsable(_ kind: TestDirectory.Kind) throws {
    guard let path = ProcessInfo.processInfo.environment[kind.environmentVariable], !path.isEmpty else { return }
    let server = try TestDirectory(envFile: path)
    #expect(server.kind == kind, "\(kind.environmentVariable) names a \(server.kind) server")
    #expect(TestDirectory.configured(kind) != nil)
}

@Suite("Cross-server end to end (OpenLDAP, 389 DS, Samba AD)",
       .enabled(if: !crossServers.isEmpty, "run by scripts/test.sh, which starts the three servers"))
struct CrossServerTests {

    @Test("doctor, plan, apply, plan --check converge", arguments: crossServers)
    func converge(_ kind: TestDirectory.Kind) throws {
        let tree = try Scenario("converge", on: directory(kind))
        let log = ExitLog(kind, "converge")
        let alice = TestUser(tree.user("alice"), commonName: "Alice Example", localAccount: "ally", uidNumber: 20_001)
        let bob = TestUser(tree.user("bob"), uidNumber: 20_002)
        try tree.addUsers([alice, bob])
        try tree.addDevice("ws1", members: [tree.userDN(alice), tree.userDN(bob)])
        try tree.writeReport("ws1", [("ally", 1001), ("root", 0)])

        let doctor = try log.run(tree, "doctor", ["doctor"])
        #expect(doctor.status == Exit.ok, "doctor on \(kind):\n\(output(doctor))")
        // AD has no Who am I? operation: a warning there, nowhere else.
        let whoAmIWarning = doctor.stdout.split(separator: "\n")
            .contains { $0.hasPrefix("WARN") && $0.contains("Who am I") }
        #expect(whoAmIWarning == kind.isActiveDirectory, "doctor on \(kind):\n\(output(doctor))")

        let plan = try log.run(tree, "plan", ["plan"])
        #expect(plan.status == Exit.ok, "plan on \(kind):\n\(output(plan))")
        let (_, report) = try tree.planJSON()
        #expect(report.action(tree.user("alice"), "ws1") == "takeover")
        #expect(report.action(tree.user("bob"), "ws1") == "provision")
        #expect(report.changes > 0)

        let pending = try log.run(tree, "check-before", ["plan", "--check"])
        #expect(pending.status == Exit.changesPending, "plan --check before apply on \(kind):\n\(output(pending))")

        let apply = try log.run(tree, "apply", ["apply"])
        #expect(apply.status == Exit.ok, "apply on \(kind):\n\(output(apply))")
        let members = try tree.boundMembers("ws1")?.map { $0.lowercased() }
        #expect(members == [tree.userDN(alice), tree.userDN(bob)].map { $0.lowercased() }.sorted())

        let check = try log.run(tree, "check", ["plan", "--check"])
        #expect(check.status == Exit.ok, "plan --check after apply on \(kind):\n\(output(check))")
        let (_, after) = try tree.planJSON()
        #expect(after.changes == 0)
        #expect(after.action(tree.user("alice"), "ws1") == "bound")
    }

    @Test("an unbind that empties a binding group", arguments: crossServers)
    func unbindEmptiesGroup(_ kind: TestDirectory.Kind) throws {
        let tree = try Scenario("empty", on: directory(kind))
        let log = ExitLog(kind, "unbind-empties-group")
        let users = [TestUser(tree.user("carl"), uidNumber: 20_011), TestUser(tree.user("cora"), uidNumber: 20_012)]
        try tree.addUsers(users)
        let dns = users.map { tree.userDN($0) }
        try tree.addDevice("ws2", members: dns)
        try tree.writeReport("ws2", [(tree.user("carl"), 1001), (tree.user("cora"), 1002)])
        let apply = try log.run(tree, "apply", ["apply"])
        #expect(apply.status == Exit.ok, "first apply on \(kind):\n\(output(apply))")
        #expect(try tree.boundMembers("ws2")?.count == 2)

        try tree.disconnectAll("ws2", members: dns)
        let (status, report) = try tree.planJSON()
        log.note("plan", status)
        #expect(report.count("unbind") == 2)
        let unbind = try log.run(tree, "apply", ["apply"])
        #expect(unbind.status == Exit.ok, "apply of the unbinds on \(kind):\n\(output(unbind))")
        let left = try tree.boundMembers("ws2")
        #expect(left == nil || left == [], "members left in the binding group on \(kind): \(left ?? [])")
        let check = try log.run(tree, "check", ["plan", "--check"])
        #expect(check.status == Exit.ok, "plan --check after the unbinds on \(kind):\n\(output(check))")
    }

    @Test("R10 from a fresh [state] dir: the record in the directory holds the field", arguments: crossServers)
    func frozenFieldFromFreshState(_ kind: TestDirectory.Kind) throws {
        let tree = try Scenario("r10", on: directory(kind))
        let log = ExitLog(kind, "r10-fresh-state")
        let dora = TestUser(tree.user("dora"), localAccount: "dora.local", uidNumber: 20_021)
        try tree.addUsers([dora])
        try tree.addDevice("ws3", members: [tree.userDN(dora)])
        try tree.writeReport("ws3", [("dora.local", 1001)])
        let apply = try log.run(tree, "apply", ["apply"])
        #expect(apply.status == Exit.ok, "apply on \(kind):\n\(output(apply))")

        try tree.setLocalAccount(tree.userDN(dora), "dora.new")
        // A new cron host: no local state at all.
        tree.configOverrides["state.dir"] = tree.q(tree.folder + "/state-fresh")
        let (status, report) = try tree.planJSON()
        log.note("plan", status)
        #expect(status == Exit.conflicts)
        #expect(report.action(tree.user("dora"), "ws3") == "conflict")
        #expect(report.conflictKinds.contains("changed-after-binding"), "conflicts on \(kind): \(report.conflictKinds)")
        #expect(report.count("unbind") == 0)
        let again = try log.run(tree, "apply", ["apply"])
        #expect(again.status == Exit.conflicts, "apply with the conflict on \(kind):\n\(output(again))")
        #expect(try tree.boundMembers("ws3")?.map { $0.lowercased() } == [tree.userDN(dora).lowercased()])
    }

    @Test("a renamed user and a user moved to another OU keep their bindings", arguments: crossServers)
    func renamedAndMovedUsersKeepBindings(_ kind: TestDirectory.Kind) throws {
        let tree = try Scenario("moved", on: directory(kind))
        let log = ExitLog(kind, "rename-and-move")
        let staff = tree.ou("staff", under: tree.people)
        let contractors = tree.ou("contractors", under: tree.people)
        try tree.addOU(staff)
        try tree.addOU(contractors)
        let dan = TestUser(tree.user("dan"), commonName: "Dan Brown", uidNumber: 20_031)
        let erin = TestUser(tree.user("erin"), commonName: "Erin Stone", uidNumber: 20_032)
        try tree.addUsers([dan, erin], in: staff)
        let danDN = tree.userDN(dan, in: staff), erinDN = tree.userDN(erin, in: staff)
        try tree.addDevice("ws4", members: [danDN, erinDN])
        try tree.writeReport("ws4", [(tree.user("dan"), 1001), (tree.user("erin"), 1002)])
        let apply = try log.run(tree, "apply", ["apply"])
        #expect(apply.status == Exit.ok, "apply on \(kind):\n\(output(apply))")

        let danNew = try tree.moveEntry(danDN, newCommonName: "Dan Green", to: staff)
        let erinNew = try tree.moveEntry(erinDN, newCommonName: "Erin Stone", to: contractors)
        if !kind.isActiveDirectory {
            // AD rewrites member values pointing at a moved entry (linked attributes);
            // OpenLDAP and 389 do that only with refint, which these servers run
            // without: the admin points the device at the new DNs, the binding group
            // still names the old ones (the bridge's part).
            try tree.server.change("dn: \(tree.deviceDN("ws4"))\nchangetype: modify\nreplace: member\n"
                + "member: \(danNew)\nmember: \(erinNew)\n-\n\n")
        }
        let (status, report) = try tree.planJSON()
        log.note("plan", status)
        #expect(status == Exit.ok)
        #expect(report.count("unbind") == 0, "unbinds after a rename on \(kind): \(report.decisions)")
        #expect(report.count("takeover") == 0 && report.count("provision") == 0,
                "new bindings after a rename on \(kind): \(report.decisions)")
        #expect(report.action(tree.user("dan"), "ws4") == "bound")
        #expect(report.action(tree.user("erin"), "ws4") == "bound")

        let explain = try log.run(tree, "explain", ["explain", tree.user("erin"), "--device", "ws4"])
        #expect(explain.status == Exit.ok)
        #expect(explain.stdout.contains("moved from"), "explain after a move on \(kind):\n\(output(explain))")

        let second = try log.run(tree, "apply", ["apply"])
        #expect(second.status == Exit.ok, "apply after the rename on \(kind):\n\(output(second))")
        #expect(try tree.boundMembers("ws4")?.map { $0.lowercased() } == [danNew, erinNew].map { $0.lowercased() }.sorted())
        let check = try log.run(tree, "check", ["plan", "--check"])
        #expect(check.status == Exit.ok, "plan --check after the rename on \(kind):\n\(output(check))")
    }

    /// AD answers a subtree search at the domain root with continuation references to
    /// its other naming contexts (DomainDnsZones, ForestDnsZones, Configuration): they
    /// are skipped, not a failure. The same configuration works on the other servers.
    @Test("a users search base at the domain root", arguments: crossServers)
    func usersAtTheDomainRoot(_ kind: TestDirectory.Kind) throws {
        let c = try ConnectedCase(kind, "root", log: "users-at-domain-root", users: [("hal", 20_061)], device: "ws8")
        let (server, tree, log, hal) = (c.server, c.tree, c.log, c.users[0])
        tree.configOverrides["users.search_base"] = tree.q(server.base)
        let doctor = try log.run(tree, "doctor", ["doctor"])
        #expect(doctor.status == Exit.ok, "doctor with the users base at the root on \(kind):\n\(output(doctor))")
        // Other tests' users are under the same root: conflicts among them may exist (3),
        // a failed read (5) may not.
        let (status, report) = try tree.planJSON()
        log.note("plan", status)
        #expect(status == Exit.ok || status == Exit.conflicts)
        #expect(report.action(hal.name, "ws8") == "provision" || report.action(hal.name, "ws8") == "takeover")
    }

    @Test("a device group of 1,600 members", arguments: crossServers)
    func largeDeviceGroup(_ kind: TestDirectory.Kind) throws {
        let tree = try Scenario("large", on: directory(kind))
        let log = ExitLog(kind, "1600-members")
        let users = (1...1_600).map { TestUser(tree.user(String(format: "m%04d", $0)), uidNumber: 30_000 + $0) }
        try tree.addUsers(users)
        try tree.addDevice("lab", members: users.map { tree.userDN($0) })
        try tree.writeReport("lab", users.map { ($0.name, $0.uidNumber) })

        let (status, report) = try tree.planJSON()
        log.note("plan", status)
        #expect(status == Exit.ok)
        #expect(report.count("takeover") == 1_600, "decisions on \(kind): \(report.summary)")
        let apply = try log.run(tree, "apply", ["apply"])
        #expect(apply.status == Exit.ok, "apply on \(kind):\n\(output(apply))")
        #expect(try tree.boundMembers("lab")?.count == 1_600)
        let check = try log.run(tree, "check", ["plan", "--check"])
        #expect(check.status == Exit.ok, "plan --check on \(kind):\n\(output(check))")
    }

    @Test("least privilege: the server refuses the service account's writes outside the bindings base",
          arguments: crossServers)
    func leastPrivilege(_ kind: TestDirectory.Kind) throws {
        let c = try ConnectedCase(kind, "priv", log: "least-privilege", users: [("fay", 20_041)], device: "ws5")
        let (server, tree, log, fay) = (c.server, c.tree, c.log, c.users[0])

        // The account itself, directly: an entry under people, a change to a user, a
        // change to the bindings OU's own attributes: each refused (50).
        let probe = TestUser(tree.user("intruder"), uidNumber: 20_049)
        let add = try server.asServiceAccount("ldapadd", [], input: tree.userLDIF(probe), allowFailure: true)
        #expect(add.status == 50, "adding under people as the service account on \(kind): \(add.stderr)")
        let modify = try server.asServiceAccount("ldapmodify", [], input: "dn: \(tree.userDN(fay))\nchangetype: modify\n"
            + "replace: \(tree.localAccountAttribute)\n\(tree.localAccountAttribute): x\n-\n\n", allowFailure: true)
        #expect(modify.status == 50, "changing a user as the service account on \(kind): \(modify.stderr)")
        let ou = try server.asServiceAccount("ldapmodify", [], input: "dn: \(server.bindingsBase)\nchangetype: modify\n"
            + "replace: description\ndescription: x\n-\n\n", allowFailure: true)
        #expect(ou.status == 50, "changing the bindings OU itself on \(kind): \(ou.stderr)")

        // The bridge pointed at a bindings base the account may not write: doctor says
        // so, apply fails (exit 5) and nothing is written there.
        let elsewhere = tree.ou(tree.name, under: server.servicesBase)
        try tree.addOU(elsewhere)
        tree.configOverrides["bindings.search_base"] = tree.q(elsewhere)
        let doctor = try log.run(tree, "doctor", ["doctor"])
        #expect(doctor.status != Exit.ok, "doctor with a read-only bindings base on \(kind):\n\(output(doctor))")
        #expect(doctor.stdout.contains("write access") || doctor.stderr.contains("write access"),
                "doctor names the missing write access on \(kind):\n\(output(doctor))")
        let apply = try log.run(tree, "apply", ["apply"])
        #expect(apply.status == Exit.directoryFailure, "apply with a read-only bindings base on \(kind):\n\(output(apply))")
        let written = try server.search(elsewhere, scope: "one", attributes: ["dn"])
        #expect(written.isEmpty, "entries written outside the bindings base on \(kind): \(written.map(\.dn))")
    }
}

@Suite("Active Directory: bind names, StartTLS, the global catalog, disabled accounts",
       .enabled(if: crossServers.contains(.sambaAD), "run by scripts/test.sh, which starts Samba AD"))
struct ActiveDirectoryTests {
    static let forms = ["userPrincipalName", "DOMAIN\\user"]

    @Test("doctor and plan bind as the service account by another name", arguments: forms)
    func bindByName(_ form: String) throws {
        let c = try ConnectedCase(.sambaAD, "bindname",
                                  log: "bind-as-\(form == "userPrincipalName" ? "upn" : "downlevel")",
                                  users: [("gus", 20_051)], device: "ws6")
        let (server, tree, log) = (c.server, c.tree, c.log)
        let name = try #require(form == "userPrincipalName" ? server.bindUserPrincipalName : server.bindDownLevelName)
        tree.configOverrides["ldap.bind_dn"] = tree.q(name)
        let doctor = try log.run(tree, "doctor", ["doctor"])
        #expect(doctor.status == Exit.ok, "doctor binding as \(form):\n\(output(doctor))")
        let plan = try log.run(tree, "plan", ["plan"])
        #expect(plan.status == Exit.ok, "plan binding as \(form):\n\(output(plan))")
    }
}

@Suite("doctor names the server's own settings",
       .enabled(if: !crossServers.isEmpty, "run by scripts/test.sh, which starts the three servers"))
struct DoctorServerSpecificTests {

    /// 389: an account whose own entry keeps a low nsLookThroughLimit hits
    /// "Administrative limit exceeded (11)"; doctor names the 389 setting to raise.
    @Test("389: an administrative limit names nsLookThroughLimit",
          .enabled(if: crossServers.contains(.dirsrv389), "needs the 389 DS test server"))
    func lookThroughLimit() throws {
        let server = try directory(.dirsrv389)
        let tree = try Scenario("limit", on: server)
        let users = (1...40).map { TestUser(tree.user(String(format: "l%02d", $0)), uidNumber: 21_000 + $0) }
        try tree.addUsers(users)
        try tree.addDevice("ws7", members: [tree.userDN(users[0])])
        try tree.writeReport("ws7", [(users[0].name, 1001)])
        // An account as an admin would make it, with the limit on its own entry.
        let account = "cn=\(tree.name),\(server.servicesBase)"
        let password = UUID().uuidString
        let passwordFile = tree.folder + "/limited.pw"
        _ = FileManager.default.createFile(atPath: passwordFile, contents: Data(password.utf8),
                                           attributes: [.posixPermissions: 0o600])
        try server.change("dn: \(account)\nchangetype: add\nobjectClass: applicationProcess\n"
            + "objectClass: simpleSecurityObject\ncn: \(tree.name)\nuserPassword: \(password)\nnsLookThroughLimit: 10\n\n")
        tree.configOverrides["ldap.bind_dn"] = tree.q(account)
        tree.configOverrides["ldap.bind_password_file"] = tree.q(passwordFile)
        let doctor = try tree.bridge(["doctor"])
        print("cross-server 389 doctor-lookthrough-limit: doctor=\(doctor.status)")
        #expect(doctor.status != Exit.ok)
        #expect((doctor.stdout + doctor.stderr).contains("nsLookThroughLimit"),
                "doctor's advice for 389's limit:\n\(output(doctor))")
        #expect(!(doctor.stdout + doctor.stderr).contains(password))
    }

    /// The servers' certificates name localhost and 127.0.0.1; this machine's host name
    /// also reaches 127.0.0.1 but is not in them: doctor says which names the
    /// certificate has. (Samba listens on an address no other name reaches.)
    @Test("a TLS name mismatch names the certificate's hosts",
          arguments: crossServers.filter { !$0.isActiveDirectory })
    func tlsNameMismatch(_ kind: TestDirectory.Kind) throws {
        let host = ProcessInfo.processInfo.hostName
        try #require(resolvesToLoopback(host), "\(host) does not resolve to 127.0.0.1 here")
        let server = try directory(kind)
        let tree = try Scenario("tlsname", on: server)
        let port = try #require(server.ldapsURI.split(separator: ":").last)
        tree.configOverrides["ldap.uri"] = tree.q("ldaps://\(host):\(port)")
        let doctor = try tree.bridge(["doctor"])
        print("cross-server \(kind.rawValue) doctor-tls-name-mismatch: doctor=\(doctor.status)")
        #expect(doctor.status != Exit.ok)
        let text = doctor.stdout + doctor.stderr
        #expect(text.contains("localhost") && text.contains(host), "doctor on a name mismatch:\n\(output(doctor))")
    }

    private func resolvesToLoopback(_ host: String) -> Bool {
        guard let result = try? Processes.run("/usr/bin/getent", ["ahostsv4", host], timeout: 30) else { return false }
        return result.status == 0 && result.stdout.split(separator: "\n").allSatisfy { $0.hasPrefix("127.0.0.1 ") }
    }
}

extension ActiveDirectoryTests {
    /// Reads through the global catalog (ldaps, 3269), writes to the domain controller
    /// (`write_uri`): the catalog takes no writes. (Samba's catalog returns whole entries
    /// of its own domain, so every attribute configured here is there.)
    @Test("reads from the global catalog, writes to the domain controller")
    func globalCatalogReads() throws {
        let c = try ConnectedCase(.sambaAD, "gc", log: "global-catalog", users: [("ida", 20_071)], device: "ws9")
        let (server, tree, log, ida) = (c.server, c.tree, c.log, c.users[0])
        let catalog = try #require(server.globalCatalogURI)
        tree.configOverrides["ldap.uri"] = tree.q(catalog)
        tree.configOverrides["ldap.write_uri"] = tree.q(server.ldapsURI)
        let doctor = try log.run(tree, "doctor", ["doctor"])
        #expect(doctor.status == Exit.ok, "doctor through the global catalog:\n\(output(doctor))")
        let apply = try log.run(tree, "apply", ["apply"])
        #expect(apply.status == Exit.ok, "apply through the global catalog:\n\(output(apply))")
        #expect(try tree.boundMembers("ws9")?.map { $0.lowercased() } == [tree.userDN(ida).lowercased()])
        let check = try log.run(tree, "check", ["plan", "--check"])
        #expect(check.status == Exit.ok, "plan --check through the global catalog:\n\(output(check))")
    }
}

extension ActiveDirectoryTests {
    /// The README's AD filter: people only, disabled accounts (bit 2 of
    /// userAccountControl) left out, so a disabled account is never bound.
    @Test("disabled accounts are not users")
    func disabledAccountsAreLeftOut() throws {
        let c = try ConnectedCase(.sambaAD, "disabled", log: "disabled-account",
                                  users: [("jo", 20_081), ("kim", 20_082)], device: "ws10")
        let (server, tree, log, jo, kim) = (c.server, c.tree, c.log, c.users[0], c.users[1])
        try server.change("dn: \(tree.userDN(kim))\nchangetype: modify\nreplace: userAccountControl\n"
            + "userAccountControl: 546\n-\n\n") // 512 + 32 + 2: disabled
        let (status, report) = try tree.planJSON()
        log.note("plan", status)
        #expect(status == Exit.ok)
        #expect(report.summary["users"] == 1, "users read: \(report.summary)")
        #expect(report.action(jo.name, "ws10") == "takeover")
        #expect(report.action(kim.name, "ws10") == nil, "a disabled account got a decision: \(report.decisions)")
        let apply = try log.run(tree, "apply", ["apply"])
        #expect(apply.status == Exit.ok, "apply:\n\(output(apply))")
        #expect(try tree.boundMembers("ws10")?.map { $0.lowercased() } == [tree.userDN(jo).lowercased()])
    }
}

extension ActiveDirectoryTests {
    /// AD refuses simple binds in cleartext (even on loopback, where the bridge itself
    /// would allow them): ldap:// works with StartTLS only, as the README says.
    @Test("ldap:// needs StartTLS on AD")
    func startTLS() throws {
        let c = try ConnectedCase(.sambaAD, "starttls", log: "starttls", users: [("lou", 20_091)], device: "ws11")
        let (server, tree, log) = (c.server, c.tree, c.log)
        tree.configOverrides["ldap.uri"] = tree.q(server.ldapURI)
        tree.configOverrides["ldap.starttls"] = "true"
        let upgraded = try log.run(tree, "doctor-starttls", ["doctor"])
        #expect(upgraded.status == Exit.ok, "doctor over ldap:// with StartTLS:\n\(output(upgraded))")
        tree.configOverrides["ldap.starttls"] = "false"
        let cleartext = try log.run(tree, "doctor-cleartext", ["doctor"])
        #expect(cleartext.status == Exit.directoryFailure, "doctor over ldap:// in cleartext:\n\(output(cleartext))")
        #expect(cleartext.stdout.contains("Strong"), "the refusal is named:\n\(output(cleartext))")
    }
}

/// The scripts' contract as the suites rely on it: a private server starts from scratch,
/// answers over ldaps:// verified against its own CA as the service account, and `stop`
/// leaves no process behind. (Samba is left out: its ports are fixed, so a private one
/// would need a loopback address of its own.)
@Suite("Private test servers",
       .enabled(if: !crossServers.isEmpty, "run by scripts/test.sh, which starts the three servers"))
struct PrivateTestServerTests {
    @Test("start, answer over TLS, stop", arguments: [TestDirectory.Kind.openLDAP, .dirsrv389])
    func startAnswerStop(_ kind: TestDirectory.Kind) throws {
        let started = Date()
        let server = try TestDirectory.startPrivate(kind)
        print("cross-server \(kind.rawValue) private-start: \(String(format: "%.1f", Date().timeIntervalSince(started))) s")
        var stopped = false
        defer { if !stopped { try? server.stop() } }
        #expect(server.kind == kind)
        let pidText = server.values["TB_SERVER_PID"] ?? server.values["TB_SLAPD_PID"] ?? ""
        let pid = try #require(Int32(pidText), "no server pid in \(server.envFile)")
        let search = try server.asServiceAccount("ldapsearch", ["-LLL", "-b", server.bindingsBase, "-s", "base", "dn"])
        #expect(search.stdout.lowercased().contains(server.bindingsBase.lowercased()))
        try server.stop()
        stopped = true
        let gone = kill(pid, 0) != 0 || isZombie(pid)
        #expect(gone, "\(kind) still runs after stop")
    }

    /// A start that died after the server came up but before it wrote its pid file
    /// and env (as when dscreate or the script is killed): `stop` still finds the
    /// server by its folder and stops it.
    @Test("389: stop after a start that died half-way")
    func stopAfterHalfStart() throws {
        let server = try TestDirectory.startPrivate(.dirsrv389)
        var stopped = false
        defer { if !stopped { try? server.stop() } }
        let pid = try #require(server.values["TB_SERVER_PID"].flatMap { Int32($0) })
        try FileManager.default.removeItem(atPath: try #require(server.values["TB_SERVER_PIDFILE"]))
        try FileManager.default.removeItem(atPath: server.envFile)
        try server.stop()
        stopped = true
        let gone = kill(pid, 0) != 0 || isZombie(pid)
        #expect(gone, "ns-slapd \(pid) still runs after stop")
    }

    private func isZombie(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return true }
        return stat.split(separator: ")").last?.split(separator: " ").first == "Z"
    }
}
