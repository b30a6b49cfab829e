// A write the server refuses for a reason that stays (access rights,
// object class, operations error) says what to fix, and never that the next run converges.
// (Operations error on Samba AD: Tests/CrossServerTests/ActiveDirectoryLayoutTests.swift.)

import Foundation
import LDAPTestSupport
import LDAPClient
import TakeoverCore
import Testing
@testable import TakeoverBridge

@Suite("refused writes say what to fix", .enabled(if: bridgeTestsEnabled, "needs TB_TEST_ENV (run scripts/test.sh)"))
struct WriteRefusalTests {
    /// A group someone created by hand with another object class at the binding group's
    /// DN: the bridge's add finds it there and its modify is refused (65). The lease
    /// is taken first, so the service account may write the bindings base.
    @Test func anObjectClassViolationNamesTheObjectClass() throws {
        let s = try Scenario()
        try s.addUsers([("alice", nil)])
        try s.addDevice("pc", ["alice"])
        try s.writeReport("pc", [("alice", 1500)], fileName: "pc.csv")
        try s.add("dn: \(s.groupDN("pc"))\nobjectClass: groupOfNames\ncn: pc\nmember: \(s.bindings)\n\n")
        let apply = try s.bridge(["apply"])
        #expect(apply.status == 5, "\(apply.all)")
        #expect(apply.stderr.contains("Object class violation (65)"), "\(apply.stderr)")
        #expect(!apply.stderr.contains("the next run converges"), "\(apply.stderr)")
        #expect(apply.stderr.contains("the next run fails the same way"), "\(apply.stderr)")
        #expect(apply.stderr.contains("fix: the entry does not fit its object class (takeoverBindingGroup)"), "\(apply.stderr)")
    }

    @Test func fixesByResultCode() {
        let ad = BindingLayout.activeDirectoryGroup(base: "OU=bindings,DC=example,DC=org")
        #expect(WriteRefusal.fix(code: .operationsError, layout: ad)?.contains("object_class = \"group\"") == true)
        #expect(WriteRefusal.fix(code: .objectClassViolation, layout: ad)?.contains("object class (group)") == true)
        #expect(WriteRefusal.fix(code: .insufficientAccessRights, layout: ad)?.contains("OU=bindings,DC=example,DC=org") == true)
        #expect(WriteRefusal.fix(code: .busy, layout: ad) == nil)
        var result = ApplyResult()
        result.failedCodes = [.busy, .serverDown]
        #expect(result.nextRunConverges)
        result.failedCodes.append(.objectClassViolation)
        #expect(!result.nextRunConverges)
    }
}
