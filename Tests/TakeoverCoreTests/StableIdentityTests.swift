import LDAPSyntax
import Testing
@testable import TakeoverCore

/// Issue 10 item 7 (docs/product.md section 8b): a user whose DN changes keeps every binding; the
/// member value and the record follow the new DN; no unbind, no new takeover.
@Suite struct StableIdentityTests {
    static let id = "0f8fad5b-d9cb-469f-a165-70867728950e"
    static let oldDN = "uid=alice,ou=people,dc=example,dc=com"
    static let newDN = "uid=alice,ou=staff,dc=example,dc=com"

    func alice(dn: String = newDN, id: String? = StableIdentityTests.id) -> DirectoryUser {
        DirectoryUser(dn: dn, username: "alice", uidNumber: 1500, stableID: id)
    }

    func group(members: [String], recordDN: String = oldDN, id: String? = StableIdentityTests.id) -> BindingGroup {
        BindingGroup(device: "pc", dn: W.layout.groupDN(device: "pc"), members: [W.bindingsBase] + members,
                     records: [W.layout.recordValue(localName: "alice", userDN: recordDN, stableID: id)])
    }

    func plan(user: DirectoryUser, connectedAs member: String, group: BindingGroup) -> (Plan, PlanInput) {
        let input = PlanInput(users: [user], connections: [Connection(device: "pc", member: .dn(member))],
                              reports: [W.report("pc", [W.person("alice", uid: 1500)])], bindingGroups: [group],
                              layout: W.layout, policy: Policy(), now: W.now)
        return (Planner.plan(input), input)
    }

    /// 389 DS, or OpenLDAP without refint: every value still names the old DN.
    @Test func nothingRewrittenByTheServer() {
        let (p, input) = plan(user: alice(), connectedAs: Self.oldDN, group: group(members: [Self.oldDN]))
        let d = p.decision("alice", "pc")
        #expect(d?.action == .bound)
        #expect(d?.notices.contains { $0.hasPrefix("moved from \(Self.oldDN)") } == true)
        #expect(p.summary.unbind == 0 && p.summary.takeover == 0)
        #expect(p.changes.map(\.op) == [.deleteMember, .addMember, .deleteRecord, .addRecord])
        #expect(p.changes[1].values == [Self.newDN])
        #expect(W.layout.parseRecord(p.changes[3].values[0])
                == BindingRecord(localName: "alice", userDN: Self.newDN, stableID: Self.id, formerDNs: [Self.oldDN]))
        #expect(Set(p.changes.map(\.subject)) == [Self.newDN], "one modify: member and record together")
        // Converges: after the changes, nothing is left to do, whether the device entry
        // still names the old DN (nothing rewrites it on 389 DS) or the new one.
        for member in [Self.oldDN, Self.newDN] {
            var next = input
            next.bindingGroups = p.applied(to: input.bindingGroups)
            next.connections = [Connection(device: "pc", member: .dn(member))]
            let again = Planner.plan(next)
            #expect(again.changes.isEmpty, "\(member)")
            #expect(again.decision("alice", "pc")?.action == .bound)
            #expect(again.decision("alice", "pc")?.notices.isEmpty == true)
            #expect(again.warnings.isEmpty, "\(again.warnings)")
        }
        // Explain says so.
        let text = Explainer.explain(user: "alice", device: nil, input: input, plan: p).joined(separator: "\n")
        #expect(text.contains("moved from \(Self.oldDN)"), "\(text)")
    }

    /// AD (linked attributes) and OpenLDAP with refint: member values already follow.
    @Test func memberValuesRewrittenByTheServer() {
        let (p, _) = plan(user: alice(), connectedAs: Self.newDN, group: group(members: [Self.newDN]))
        #expect(p.decision("alice", "pc")?.action == .bound)
        #expect(p.changes.map(\.op) == [.deleteRecord, .addRecord])
    }

    /// Without a stable id (old records, or no id attribute), a moved user is a different
    /// user, as before: the old binding is unbound, a new one made.
    @Test func withoutAStableIDTheOldRulesStand() {
        let (p, _) = plan(user: alice(id: nil), connectedAs: Self.newDN, group: group(members: [Self.oldDN], id: nil))
        #expect(p.summary.unbind == 1)
        #expect(p.decisions.contains { $0.userDN == Self.newDN && $0.action == .takeover })
        // A different id is a different user too.
        let (q, _) = plan(user: alice(id: "another"), connectedAs: Self.newDN, group: group(members: [Self.oldDN]))
        #expect(q.summary.unbind == 1)
    }

    /// A device entry names a moved user's old DN, known only from a record on another device
    /// that this run unbinds: the new binding's record keeps the old DN, so the next run still
    /// finds the user there (R14: after apply, a new plan has zero changes). Found by
    /// RichWorldPropertyTests (RichWorld.make(seed: 1815)).
    @Test func anOldDNLearnedFromABindingThatGoesStaysKnown() throws {
        let old = BindingGroup(device: "old-pc", dn: W.layout.groupDN(device: "old-pc"), members: [W.bindingsBase, Self.oldDN],
                               records: [W.layout.recordValue(localName: "alice", userDN: Self.oldDN, stableID: Self.id)])
        let input = PlanInput(users: [alice()], connections: [Connection(device: "pc", member: .dn(Self.oldDN))],
                              reports: [W.report("pc", [W.person("alice", uid: 1500)]), W.report("old-pc", [])],
                              bindingGroups: [old], layout: W.layout, policy: Policy(), now: W.now)
        let p = Planner.plan(input)
        #expect(p.decision("alice", "pc")?.action == .takeover)
        #expect(p.decision("alice", "old-pc")?.action == .unbind)
        let records = p.changes.flatMap(\.attributes).filter { $0.name == W.layout.recordAttribute }.flatMap(\.values)
        #expect(records.compactMap { W.layout.parseRecord($0) }
                == [BindingRecord(localName: "alice", userDN: Self.newDN, stableID: Self.id, formerDNs: [Self.oldDN])])
        var next = input
        next.bindingGroups = p.applied(to: input.bindingGroups)
        let again = Planner.plan(next)
        #expect(again.changes.isEmpty, "\(again.changes)")
        #expect(again.decision("alice", "pc")?.action == .bound)
    }

    /// New records carry the user's stable id.
    @Test func newRecordsCarryTheStableID() {
        let input = PlanInput(users: [alice()], connections: [Connection(device: "pc", member: .dn(Self.newDN))],
                              reports: [W.report("pc", [W.person("alice", uid: 1500)])], bindingGroups: [],
                              layout: W.layout, policy: Policy(), now: W.now)
        let p = Planner.plan(input)
        let records = p.changes.flatMap(\.attributes).filter { $0.name == W.layout.recordAttribute }.flatMap(\.values)
        #expect(records.compactMap { W.layout.parseRecord($0)?.stableID } == [Self.id])
    }
}
