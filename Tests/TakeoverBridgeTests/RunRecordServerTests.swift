// Run records against the real slapd: the record applied with ldapmodify writes what it
// says, and its undo restores the directory (the files themselves: TakeoverBridgeUnitTests'
// StateTests).

import Foundation
import LDAPSyntax
import LDAPTestSupport
import TakeoverCore
import Testing
@testable import TakeoverBridge

@Suite struct RunRecordServerTests {
    /// A run record applied with ldapmodify writes what it says, and its undo file
    /// restores the bindings subtree exactly (as the service account, which may write
    /// only there). Needs the project schema in the server.
    @Test(.enabled(if: TestDirectory.isConfigured)) func undoRestoresTheRealDirectory() throws {
        let server = try TestDirectory.shared()
        let base = server.bindingsBase
        let people = server.peopleBase
        /// An ldap-utils tool as the service account over ldaps://: (exit status, stdout, stderr).
        func run(_ tool: String, _ arguments: [String]) throws -> (Int32, String, String) {
            let result = try server.asServiceAccount(tool, arguments, allowFailure: true)
            return (result.status, result.stdout, result.stderr)
        }
        let suffix = UUID().uuidString.prefix(8)
        // Only this test's own entries: other tests write under the same shared base at
        // the same time, so a snapshot of the whole subtree would see their work too.
        let mine = "(|" + FilterEscaping.equality("cn", "tb-state-\(suffix)")
            + FilterEscaping.equality("cn", "Lab, \"state\" \(suffix)+x") + ")"
        func snapshot() throws -> String {
            let (status, out, err) = try run("ldapsearch", ["-LLL", "-o", "ldif-wrap=no", "-b", base, mine, "*"])
            #expect(status == 0, "\(err)")
            // Entries in server order; values in stored order: compare canonical dumps.
            return canonicalLDIF(out)
        }
        let before = try snapshot()
        let group = "cn=Lab\\, \\\"state\\\" \(suffix)\\+x,\(base)"  // an escaped, hostile RDN
        let other = "cn=tb-state-\(suffix),\(base)"
        let u1 = "uid=alice,\(people)", u2 = "uid=jürgen,\(people)"
        let applied = [
            Change(dn: other, op: .addEntry, attributes: [
                EntryAttribute(name: "objectClass", values: ["top", "takeoverBindingGroup"]),
                EntryAttribute(name: "cn", values: ["tb-state-\(suffix)"]),
                EntryAttribute(name: "member", values: [u1]),
                EntryAttribute(name: "takeoverBoundAccount", values: ["Alice:" + u1]),
            ]),
            Change(dn: group, op: .addEntry, attributes: [
                EntryAttribute(name: "objectClass", values: ["top", "takeoverBindingGroup"]),
                EntryAttribute(name: "cn", values: ["Lab, \"state\" \(suffix)+x"]),
                EntryAttribute(name: "description", values: [" leading space"]),
            ]),
            Change(dn: group, op: .addMember, attribute: "member", values: [u1], subject: u1),
            Change(dn: group, op: .addRecord, attribute: "takeoverBoundAccount", values: ["alice:" + u1], subject: u1),
            Change(dn: group, op: .addMember, attribute: "member", values: [u2], subject: u2),
            Change(dn: group, op: .addRecord, attribute: "takeoverBoundAccount", values: ["Jürgen:" + u2], subject: u2),
            Change(dn: group, op: .deleteMember, attribute: "member", values: [u1], subject: u1),
            Change(dn: group, op: .deleteRecord, attribute: "takeoverBoundAccount", values: ["alice:" + u1], subject: u1),
            Change(dn: other, op: .deleteMember, attribute: "member", values: [u1], subject: u1),
        ]
        let folder = try makeTemporaryFolder()
        defer { cleanup(folder) }
        let state = try StateDirectory(path: folder)
        let paths = try state.writeRunRecordFiles(RunRecord(startedAt: 1_795_939_200, finishedAt: 1_795_939_201,
                                                            host: "test", configPath: "c", applied: applied, outcome: "ok"))
        let (s1, _, e1) = try run("ldapmodify", ["-f", paths.record])
        #expect(s1 == 0, "\(e1)")
        let during = try snapshot()
        #expect(during.contains("member: \(u2)") || during.contains("member:: "))
        #expect(during != before)
        let (s2, _, e2) = try run("ldapmodify", ["-f", paths.undo])
        #expect(s2 == 0, "\(e2)")
        #expect(try snapshot() == before)
    }
}
