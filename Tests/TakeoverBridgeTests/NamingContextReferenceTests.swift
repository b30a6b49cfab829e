// Search continuation references to another naming context of the same
// server (AD's DomainDnsZones, ForestDnsZones, Configuration under a domain-root base)
// are skipped; any other reference still fails the read. Against a private slapd with a
// second database, so its root DSE lists two naming contexts, and real referral entries.

import Foundation
import LDAPTestSupport
import LDAPClient
import LDAPSyntax
import Testing
@testable import TakeoverBridge

@Suite("search references to other naming contexts", .enabled(if: bridgeTestsEnabled, "needs TB_TEST_ENV (run scripts/test.sh)"))
struct NamingContextReferenceTests {
    @Test func referencesToAnotherNamingContextOfTheSameServerAreSkipped() async throws {
        var server = try TestDirectory.startPrivate()
        defer { try? server.stop() }
        let conf = server.directory + "/slapd.conf"
        var text = try String(contentsOfFile: conf, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: server.directory + "/db2", withIntermediateDirectories: true)
        text += "\ndatabase mdb\nsuffix \"dc=zones,dc=test\"\ndirectory \(server.directory)/db2\nmaxsize 1048576\n"
        try text.write(toFile: conf, atomically: true, encoding: .utf8)
        server = try server.restart()

        let s = try Scenario(server: server)
        try s.addUsers([("alice", nil)])
        try s.addDevice("pc", ["alice"])
        try s.writeReport("pc", [("alice", 1500)], fileName: "pc.csv")
        // Like AD's references under a domain root: the other context is this server's.
        try addReference("zones", under: s.people, to: "ldap://zones.example.org/DC=zones,DC=test", on: s.server)
        let plan = try s.bridge(["plan", "--format", "json", "--log-level", "debug"])
        #expect(plan.status == 0, "\(plan.all)")
        #expect(plan.stdout.contains("\"takeover\": 1"), "\(plan.stdout)")
        #expect(plan.stderr.contains("another naming context of the same server skipped"), "\(plan.stderr)")
        #expect(plan.stderr.contains("zones.example.org"))

        // A reference anywhere else is a hole in the tree: the read fails, naming it.
        try addReference("elsewhere", under: s.people, to: "ldap://elsewhere.example.net/ou=people,dc=elsewhere",
                         on: s.server)
        let failed = try s.bridge(["plan"])
        #expect(failed.status == 5, "\(failed.all)")
        #expect(failed.stderr.contains("elsewhere.example.net"), "\(failed.stderr)")
        #expect(!failed.stderr.contains("zones.example.org"), "only the unknown reference is named")
    }

    /// A referral object `ou=NAME,base` (added with ManageDsaIT, -M) pointing at `url`.
    func addReference(_ name: String, under base: String, to url: String, on server: TestDirectory) throws {
        try server.root("ldapadd", ["-M"], input: LDIF.line("dn", "ou=\(name),\(base)")
            + "objectClass: referral\nobjectClass: extensibleObject\n" + LDIF.line("ou", name) + LDIF.line("ref", url) + "\n")
    }

    @Test func referenceURLsGiveTheirDN() {
        #expect(DirectoryReader.referenceDN("ldap://DomainDnsZones.example.org/DC=DomainDnsZones,DC=example,DC=org")
                == "DC=DomainDnsZones,DC=example,DC=org")
        #expect(DirectoryReader.referenceDN("ldap://h:389/ou=a%20b,dc=x??sub") == "ou=a b,dc=x")
        #expect(DirectoryReader.referenceDN("ldap://h/") == nil)
        #expect(DirectoryReader.referenceDN("ldap://h") == nil)
        #expect(DirectoryReader.referenceDN("not a url") == nil)
    }
}
