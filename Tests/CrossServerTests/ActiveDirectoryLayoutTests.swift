// On Samba AD: groupOfNames binding groups are refused member
// changes by AD ("Operations error (1) ... samldb.c"); apply says to use AD's own
// `group` class, and not that the next run converges.

import Foundation
import LDAPClient
import LDAPTestSupport
import Testing

@Suite("Active Directory binding group layout",
       .enabled(if: crossServers.contains(.sambaAD), "run by scripts/test.sh, which starts Samba AD"))
struct ActiveDirectoryLayoutTests {
    @Test func groupOfNamesBindingGroupsOnADSayToUseGroup() throws {
        let server = try #require(TestDirectory.configured(.sambaAD))
        let tree = try Scenario("gon", on: server)
        let users = [TestUser(tree.user("hal"), uidNumber: 20_061), TestUser(tree.user("hope"), uidNumber: 20_062)]
        try tree.addUsers(users)
        try tree.addDevice("ws8", members: [tree.userDN(users[0])])
        try tree.writeReport("ws8", [(users[0].name, 1001), (users[1].name, 1002)])
        tree.configOverrides["bindings.object_class"] = tree.q("groupOfNames")
        let first = try tree.bridge(["apply"])
        print("cross-server samba-ad groupofnames: apply=\(first.status)")
        // AD takes the entry (placeholder member and all) but not a later member change.
        let connect = "dn: \(tree.deviceDN("ws8"))\nchangetype: modify\nadd: member\nmember: \(tree.userDN(users[1]))\n-\n\n"
        try server.change(connect)
        let second = try tree.bridge(["apply"])
        print("cross-server samba-ad groupofnames: apply=\(second.status)")
        let text = second.stderr
        for line in text.split(separator: "\n") where line.contains("fix:") || line.contains(" changes (") {
            print("cross-server samba-ad groupofnames: \(line)")
        }
        if first.status == 0 {
            #expect(second.status == 5, "\(text)")
            #expect(text.contains("Operations error (1)") || text.contains("Object class violation (65)"), "\(text)")
            #expect(text.contains("object_class = \\\"group\\\"") || text.contains("object_class = \"group\""), "\(text)")
            #expect(!text.contains("the next run converges"), "\(text)")
        } else {
            // A Samba that refuses the groupOfNames entry itself: the same advice.
            #expect(first.stderr.contains("group"), "\(first.stderr)")
            #expect(!first.stderr.contains("the next run converges"), "\(first.stderr)")
        }
    }
}
