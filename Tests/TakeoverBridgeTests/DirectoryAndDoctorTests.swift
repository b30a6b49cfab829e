// Reading the directory into the model (usernames, non-UTF-8 values, uniqueMember UIDs,
// memberUid devices), TLS and SASL through the binary, a server that stops answering,
// and doctor's checks.

import Foundation
import LDAPTestSupport
import LDAPClient
import LDAPSyntax
import TakeoverCore
import Testing
@testable import TakeoverBridge

#if canImport(Glibc)
import Glibc
#endif

@Suite("directory reader: entries to the model")
struct DirectoryMappingTests {
    func reader(local: String = "localUserAccount") -> DirectoryReader {
        let config = BridgeConfig(
            ldap: .init(uri: "ldap://127.0.0.1"),
            users: .init(searchBase: "ou=people,dc=x", localAccountAttribute: local),
            devices: .init(searchBase: "ou=devices,dc=x", reports: "/tmp"),
            bindings: .init(searchBase: "ou=bindings,dc=x"))
        return DirectoryReader(config: config)
    }

    func entry(_ dn: String, _ attributes: [(String, [[UInt8]])]) -> LDAPEntry {
        LDAPEntry(dn: dn, attributes: attributes.map { ($0.0, $0.1.map { LDAPValue(bytes: $0) }) })
    }

    func text(_ s: String) -> [UInt8] { Array(s.utf8) }

    @Test func usernameIsTheRDNValueThenTheFirstValue() {
        let r = reader()
        var collector = DirectoryReader.Collector<DirectoryUser>()
        let byRDN = r.user(from: entry("uid=jdoe,ou=people,dc=x", [("uid", [text("john"), text("jdoe")]),
                                                                    ("uidNumber", [text("x"), text(" 42 ")])]),
                           collector: &collector)
        #expect(byRDN?.username == "jdoe")
        #expect(byRDN?.allUsernames == ["john", "jdoe"])
        #expect(byRDN?.uidNumber == 42)
        let byFirst = r.user(from: entry("cn=John Doe,ou=people,dc=x", [("uid", [text("jd1"), text("jd2")]),
                                                                         ("displayName", [text("John Doe")]),
                                                                         ("entryUUID", [text("1234")])]),
                             collector: &collector)
        #expect(byFirst?.username == "jd1")
        #expect(byFirst?.displayName == "John Doe")
        #expect(byFirst?.stableID == "1234")
        // The RDN spelled differently from the stored value: the stored spelling wins.
        let cased = r.user(from: entry("UID=JDoe,ou=people,dc=x", [("uid", [text("jdoe")])]), collector: &collector)
        #expect(cased?.username == "jdoe")
        #expect(collector.warnings.isEmpty)
    }

    @Test func nonUTF8ValuesAreSkippedWithAWarningNamingTheDN() {
        let r = reader()
        var collector = DirectoryReader.Collector<DirectoryUser>()
        let user = r.user(from: entry("uid=ann,ou=people,dc=x", [("uid", [text("ann"), [0xFF, 0xFE, 0x41]]),
                                                                  ("localUserAccount", [[0xC3, 0x28]]),
                                                                  ("displayName", [[0x80]])]),
                          collector: &collector)
        #expect(user?.username == "ann")
        #expect(user?.allUsernames == ["ann"])
        #expect(user?.localAccountField == nil)
        #expect(user?.displayName == nil)
        #expect(collector.warnings.count == 3)
        #expect(collector.warnings.allSatisfy { $0.source == "uid=ann,ou=people,dc=x" && $0.message.contains("not valid UTF-8") })
        // No usable name at all: skipped, and recorded as unreadable (unbinding is refused).
        let nameless = r.user(from: entry("cn=Bin,ou=people,dc=x", [("uid", [[0xFF]])]), collector: &collector)
        #expect(nameless == nil)
        #expect(collector.unreadable == ["cn=Bin,ou=people,dc=x"])
    }

    @Test func uniqueMemberUIDSuffixIsStripped() {
        #expect(DirectoryReader.strippingUID("uid=a,dc=x#'0101'B") == "uid=a,dc=x")
        #expect(DirectoryReader.strippingUID("uid=a,dc=x#''B") == "uid=a,dc=x")
        #expect(DirectoryReader.strippingUID("uid=a,dc=x") == "uid=a,dc=x")
        #expect(DirectoryReader.strippingUID("uid=a\\#'01'B,dc=x") == "uid=a\\#'01'B,dc=x")
        #expect(DirectoryReader.strippingUID("cn=x\\#'01'B") == "cn=x\\#'01'B")
        #expect(DirectoryReader.strippingUID("uid=a,dc=x#'012'B") == "uid=a,dc=x#'012'B")
        #expect(DirectoryReader.strippingUID("'B") == "'B")
    }

    @Test func referralServerPart() throws {
        #expect(try LDAPServerAddress(url: "ldap://h:389/cn=x,dc=y??base") == LDAPServerAddress(url: "ldap://h:389"))
        #expect(try LDAPServerAddress(url: "LDAPS://h") == LDAPServerAddress(url: "ldaps://h:636"))
        #expect(throws: LDAPURLError.self) { try LDAPServerAddress(url: "http://h/") }
        #expect(throws: LDAPURLError.self) { try LDAPServerAddress(url: "ldap:///cn=x") }
    }

    @Test func safetyPercentFormatting() {
        #expect(SafetyCheck.formatPercent(30.833) == "30.8")
        #expect(SafetyCheck.formatPercent(10) == "10")
        #expect(SafetyCheck.formatPercent(12.5) == "12.5")
        #expect(SafetyCheck.formatPercent(99.96) == "100")
    }

    @Test func exitStatusSeverity() {
        let order: [TakeoverBridge.ExitStatus] = [.ok, .changesPending, .conflicts, .safetyLimit, .noSuchUser, .failure, .lockHeld, .usage, .configuration]
        for (i, a) in order.enumerated() {
            for (j, b) in order.enumerated() {
                #expect(a.combined(with: b) == order[max(i, j)])
            }
        }
        #expect(TakeoverBridge.ExitStatus.allCases.map(\.rawValue).sorted() == [0, 2, 3, 4, 5, 64, 67, 75, 78])
    }
}

@Suite("directory, TLS, doctor against slapd", .enabled(if: bridgeTestsEnabled, "needs TB_TEST_ENV (run scripts/test.sh)"))
struct DirectoryServerTests {
    /// Devices as groupOfUniqueNames (with optional UIDs) and as posixGroup memberUid.
    @Test func uniqueMemberAndMemberUidDevices() async throws {
        try await expectBothBound(["um1", "um2"], device: "uniq", objectClass: "groupOfUniqueNames",
                                  memberAttribute: "uniqueMember") { s in
            "cn: uniq\n" + LDIF.line("uniqueMember", s.userDN("um1") + "#'0101'B") + LDIF.line("uniqueMember", s.userDN("um2"))
        }
        try await expectBothBound(["mu1", "mu2"], device: "posix-pc", objectClass: "posixGroup",
                                  memberAttribute: "memberUid") { _ in
            "cn: posix-pc\ngidNumber: 5000\nmemberUid: mu1\nmemberUid: MU2\n"
        }
    }

    /// Two users, reported on `device`, connected by a device entry of `objectClass` whose
    /// other lines are `body` (their names in `memberAttribute`): apply binds both.
    private func expectBothBound(_ users: [String], device: String, objectClass: String, memberAttribute: String,
                                 body: (Scenario) -> String) async throws {
        let s = try Scenario()
        try s.addUsers(users.map { (uid: $0, local: String?.none) })
        try s.add(LDIF.line("dn", s.deviceDN(device)) + "objectClass: \(objectClass)\n" + body(s) + "\n")
        try s.writeReport(device, [(users[0], 1001), (users[1], 1002)])
        s.configOverrides["devices.filter"] = s.q("(objectClass=\(objectClass))")
        s.configOverrides["devices.member_attribute"] = s.q(memberAttribute)
        let apply = try s.bridge(["apply"])
        #expect(apply.status == 0, "\(apply.all)")
        #expect(Set(try await s.groups().first?.members ?? []) == Set(users.map { s.userDN($0) }))
    }

    /// Users whose RDN is not the name attribute, with several uid values.
    @Test func cnNamedUsersAndMultiValuedUid() async throws {
        let s = try Scenario()
        try s.add("dn: cn=Mary Major,\(s.people)\nobjectClass: inetOrgPerson\nobjectClass: posixAccount\ncn: Mary Major\n"
            + "sn: Major\nuid: mmajor\nuid: mary\nuidNumber: 7001\ngidNumber: 100\nhomeDirectory: /home/mmajor\n\n")
        try s.add(s.deviceLDIF("pc-m", []).replacingOccurrences(of: "member: \(s.devices)", with: "member: cn=Mary Major,\(s.people)"))
        try s.writeReport("pc-m", [("mmajor", 1001)])
        let plan = try s.bridge(["plan", "--format", "json"])
        #expect(plan.stdout.contains("\"action\": \"takeover\""), "\(plan.all)")
        #expect(plan.stdout.contains("multi-valued-username"), "\(plan.stdout)")
    }

    /// ldaps:// and StartTLS verify the certificate: the right CA works, no CA or the
    /// wrong CA is refused (exit 5) unless tls_reqcert says otherwise.
    @Test func tlsIsVerified() throws {
        let s = try Scenario()
        try s.addUsers([("t1", nil)])
        s.configOverrides["ldap.uri"] = s.q(s.server.ldapsURI)
        s.configOverrides["ldap.tls_cacert"] = s.q(s.server.caCert)
        var result = try s.bridge(["plan"])
        #expect(result.status == 0, "\(result.all)")
        s.configOverrides["ldap.tls_cacert"] = s.q(s.server.wrongCACert)
        result = try s.bridge(["plan"])
        #expect(result.status == 5, "\(result.all)")
        s.configOverrides["ldap.tls_cacert"] = ""
        result = try s.bridge(["plan"], environment: ["LDAPTLS_CACERT": "", "LDAPTLS_REQCERT": "never"])
        #expect(result.status == 5, "a self-signed CA nobody configured is refused: \(result.all)")
        s.configOverrides["ldap.tls_reqcert"] = s.q("never")
        result = try s.bridge(["plan"])
        #expect(result.status == 0, "\(result.all)")
        // StartTLS on the plain port.
        s.configOverrides = ["ldap.starttls": "true", "ldap.tls_cacert": s.q(s.server.caCert)]
        result = try s.bridge(["plan"])
        #expect(result.status == 0, "\(result.all)")
        let doctor = try s.bridge(["doctor"])
        #expect(doctor.stdout.contains("OK   tls: StartTLS"), "\(doctor.stdout)")
    }

    /// Several servers in `uri`: libldap tries them in order.
    @Test func severalURIsAreTriedInOrder() throws {
        let s = try Scenario()
        try s.addUsers([("m1", nil)])
        try s.addDevice("pc", ["m1"])
        try s.writeReport("pc", [("m1", 1001)])
        s.configOverrides["ldap.uri"] = s.q("ldap://127.0.0.1:9 \(s.server.ldapURI)")
        let result = try s.bridge(["apply"])
        #expect(result.status == 0, "\(result.all)")
        #expect(try s.bridge(["plan", "--check"]).status == 0)
    }

    /// SASL EXTERNAL over ldapi:// (the test server maps this user to the rootdn).
    @Test func saslExternalOverLdapi() throws {
        let s = try Scenario()
        try s.addUsers([("x1", nil)])
        s.configOverrides = ["ldap.uri": s.q(s.server.ldapiURI), "ldap.bind_dn": "", "ldap.bind_password_file": "",
                             "ldap.sasl_mech": s.q("EXTERNAL")]
        let doctor = try s.bridge(["doctor"])
        #expect(doctor.stdout.contains("OK   bind identity: dn:\(s.server.ldapiExternalDN)"), "\(doctor.all)")
        #expect(doctor.status == 0, "\(doctor.all)")
    }

    /// A server that stops answering: the timeout is a failure (5), never "no users".
    @Test func aServerThatHangsIsAFailure() throws {
        let server = try TestDirectory.startPrivate()
        defer { try? server.stop() }
        let s = try Scenario(server: server)
        try s.addUsers([("h1", nil)])
        try s.addDevice("pc", ["h1"])
        try s.writeReport("pc", [("h1", 1001)])
        #expect(try s.bridge(["apply"]).status == 0)
        s.configOverrides["ldap.timeout"] = "1"
        server.kill(signal: SIGSTOP)
        defer { server.kill(signal: SIGCONT) }
        let started = Date()
        let result = try s.bridge(["apply"])
        server.kill(signal: SIGCONT)
        #expect(result.status == 5, "\(result.all)")
        #expect(Date().timeIntervalSince(started) < 20)
        #expect(try s.bridge(["plan", "--check"]).status == 0, "nothing was unbound")
    }

    @Test func doctorPassesOnAGoodSetup() throws {
        let s = try Scenario()
        try s.addUsers([("d1", nil)])
        try s.addDevice("pc", ["d1"])
        try s.writeReport("pc", [("d1", 1001)])
        let result = try s.bridge(["doctor"])
        #expect(result.status == 0, "\(result.all)")
        let lines = result.stdout.split(separator: "\n")
        #expect(lines.allSatisfy { $0.hasPrefix("OK   ") }, "\(result.stdout)")
        for name in ["config", "bind password", "connection", "tls", "bind identity", "schema", "users", "devices",
                     "binding groups", "reports", "write access"] {
            #expect(lines.contains { $0.hasPrefix("OK   \(name):") }, "\(name) missing: \(result.stdout)")
        }
        #expect(result.stdout.contains("dn:" + s.server.bindDN))
        // The probe entry is gone again.
        #expect(try s.dumpBindings().split(separator: "\n").filter { $0.hasPrefix("dn:") }.count == 1)
    }

    @Test func doctorFailsWithAFix() throws {
        let s = try Scenario()
        try s.addUsers([("d1", nil)])
        try s.writeReport("pc", [("d1", 1001)])
        try "not a report".write(toFile: s.reports + "/broken.json", atomically: true, encoding: .utf8)
        // The read-only account cannot write the bindings base.
        s.configOverrides["ldap.bind_dn"] = s.q(s.server.readerDN)
        s.configOverrides["ldap.bind_password_file"] = s.q(try s.server.value("TB_READER_PW_FILE"))
        s.configOverrides["users.local_account_attribute"] = s.q("carLicense")
        s.configOverrides["bindings.object_class"] = s.q("groupOfNames")
        var result = try s.bridge(["doctor"])
        #expect(result.status == 5, "\(result.all)")
        #expect(result.stdout.contains("FAIL write access"), "\(result.stdout)")
        #expect(result.stdout.contains("FAIL reports"), "\(result.stdout)")
        #expect(result.stdout.contains("     fix: "))
        // A schema without the configured attribute.
        s.configOverrides["users.local_account_attribute"] = s.q("noSuchAttributeHere")
        result = try s.bridge(["doctor"])
        #expect(result.stdout.contains("FAIL schema: local account attribute noSuchAttributeHere"), "\(result.stdout)")
        // A broken configuration: 78.
        s.configOverrides["ldap.page_size"] = "0"
        result = try s.bridge(["doctor"])
        #expect(result.status == 78)
        #expect(result.stdout.hasPrefix("FAIL config"))
    }
}
