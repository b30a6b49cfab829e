// Issue 10 item 9: a write the server refuses for a reason that stays (access rights,
// object class, operations error) says what to fix, and never that the next run converges.

import Foundation
import LDAPClient
import TakeoverCore
import Testing
@testable import TakeoverBridge

@Suite("refused writes say what to fix", .enabled(if: bridgeTestsEnabled, "needs TB_TEST_ENV (run scripts/test.sh)"))
struct WriteRefusalTests {
    @Test func insufficientAccessNamesTheRightsToGrant() throws {
        let s = try Scenario()
        try s.addUsers([("alice", nil)])
        try s.addDevice("pc", ["alice"])
        try s.writeReport("pc", [("alice", 1500)], fileName: "pc.csv")
        // A bindings base the service account may read but not write (slapd's ACL).
        let readOnly = "ou=readonly-bindings,\(s.people)"
        try s.add("dn: \(readOnly)\nobjectClass: organizationalUnit\nou: readonly-bindings\n\n")
        s.configOverrides["bindings.search_base"] = s.q(readOnly)
        let apply = try s.bridge(["apply"])
        #expect(apply.status == 5, "\(apply.all)")
        #expect(apply.stderr.contains("Insufficient access (50)"), "\(apply.stderr)")
        #expect(!apply.stderr.contains("the next run converges"), "\(apply.stderr)")
        #expect(apply.stderr.contains("the next run fails the same way"), "\(apply.stderr)")
        #expect(apply.stderr.contains("grant the service account add, delete and write rights on \(readOnly)"), "\(apply.stderr)")
    }

    @Test func fixesByResultCode() {
        let ad = BindingLayout.activeDirectoryGroup(base: "OU=bindings,DC=example,DC=org")
        #expect(WriteRefusal.fix(code: 1, layout: ad)?.contains("object_class = \"group\"") == true)
        #expect(WriteRefusal.fix(code: 65, layout: ad)?.contains("object class (group)") == true)
        #expect(WriteRefusal.fix(code: 50, layout: ad)?.contains("OU=bindings,DC=example,DC=org") == true)
        #expect(WriteRefusal.fix(code: 51, layout: ad) == nil)
        var result = ApplyResult()
        result.failedCodes = [51, -1]
        #expect(result.nextRunConverges)
        result.failedCodes.append(65)
        #expect(!result.nextRunConverges)
    }
}
