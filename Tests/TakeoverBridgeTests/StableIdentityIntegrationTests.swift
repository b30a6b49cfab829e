// Stable identities against slapd (no refint overlay, so nothing rewrites member values, as
// on 389 DS): a renamed user and a user moved to another OU keep their bindings; the
// binding group's member value and record follow the new DN, no unbind, no new takeover,
// explain says "moved from", and a fresh state dir sees the same (the record carries the
// entryUUID).

import Foundation
import LDAPTestSupport
import LDAPClient
import LDAPSyntax
import TakeoverCore
import Testing
@testable import TakeoverBridge

/// Records as `local:userDN`, whatever else they carry (stable id, former DNs), sorted.
func plainRecords(_ records: [String]) -> [String] {
    let layouts = [BindingLayout.standardSchema(base: "x"), .projectSchema(base: "x")]
    return records.map { raw in
        for layout in layouts {
            if let r = layout.parseRecord(raw) { return r.localName + ":" + r.userDN }
        }
        return raw
    }.sorted()
}

@Suite("stable identity against slapd", .enabled(if: bridgeTestsEnabled, "needs TB_TEST_ENV (run scripts/test.sh)"))
struct StableIdentityIntegrationTests {
    @Test(arguments: [Scenario.Layout.project, .groupOfNames])
    func aRenamedAndAMovedUserKeepTheirBindings(layout: Scenario.Layout) async throws {
        let s = try Scenario(layout: layout)
        try s.addUsers([("alice", nil), ("bob", "robert"), ("carol", nil)])
        try s.addDevice("pc", ["alice", "bob", "carol"])
        try s.writeReport("pc", [("alice", 1500), ("robert", 1501), ("carol", 1502)], fileName: "pc.csv")
        let first = try s.bridge(["apply"])
        #expect(first.status == 0, "\(first.all)")
        let uuid = try s.server.root("ldapsearch", ["-LLL", "-b", s.userDN("alice"), "-s", "base", "(objectClass=*)", "entryUUID"])
        #expect(try await s.groups().first.map { $0.records.contains { $0.contains("<ID=") } } == true)
        #expect(uuid.contains("entryUUID: "))

        // alice renamed (new RDN, same uid); bob moved to another OU.
        try s.server.root("ldapmodrdn", [s.userDN("alice"), "cn=Alice Liddell"], input: nil)
        try s.add("dn: ou=moved,\(s.people)\nobjectClass: organizationalUnit\nou: moved\n\n")
        try s.server.root("ldapmodrdn", ["-s", "ou=moved,\(s.people)", s.userDN("bob"), "uid=bob"], input: nil)
        let aliceDN = "cn=Alice Liddell,\(s.people)", bobDN = "uid=bob,ou=moved,\(s.people)"

        let plan = try s.bridge(["plan", "--format", "json"])
        #expect(plan.stdout.contains("\"bound\": 3"), "\(plan.stdout)")
        #expect(plan.stdout.contains("\"unbind\": 0") && plan.stdout.contains("\"takeover\": 0"), "\(plan.stdout)")
        let explain = try s.bridge(["explain", "alice"])
        #expect(explain.stdout.contains("moved from \(s.userDN("alice"))"), "\(explain.all)")

        let apply = try s.bridge(["apply"])
        #expect(apply.status == 0, "\(apply.all)")
        let group = try #require(try await s.groups().first)
        #expect(Set(group.members.map(DNNormalizer.normalize))
                .isSuperset(of: [aliceDN, bobDN, s.userDN("carol")].map(DNNormalizer.normalize)), "\(group.members)")
        #expect(!group.members.contains(s.userDN("alice")) && !group.members.contains(s.userDN("bob")))
        #expect(plainRecords(group.records) == ["alice:" + aliceDN, "carol:" + s.userDN("carol"), "robert:" + bobDN].sorted())

        // Converged, though the device entry still names the old DNs (no refint here);
        // also from a fresh state dir: the records carry what is needed.
        let check = try s.bridge(["plan", "--check"])
        #expect(check.status == 0, "\(check.all)")
        s.configOverrides["state.dir"] = s.q(s.folder + "/fresh-state")
        let fresh = try s.bridge(["plan", "--check", "--format", "json"])
        #expect(fresh.status == 0, "\(fresh.all)")
        #expect(fresh.stdout.contains("\"bound\": 3"), "\(fresh.stdout)")
    }
}
