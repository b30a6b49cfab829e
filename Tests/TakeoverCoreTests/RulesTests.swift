import Testing
@testable import TakeoverCore

/// One test (or more) per rule of docs/product.md section 3, and the seed's own examples.
@Suite struct RulesTests {
    // MARK: R1

    @Test func r1TwoJohnUsersOnTwoDevices() {
        // The seed: "if there are two 'John' users on two separate devices, one of those users must be renamed."
        let plan = W.plan(
            users: [W.user("jdoe", field: "john"), W.user("jsmith", field: "John")],
            connections: W.connect("pc-1", "jdoe") + W.connect("pc-2", "jsmith"),
            reports: [W.report("pc-1", [W.person("john")]), W.report("pc-2", [W.person("John")])])
        let c = plan.conflict("duplicate-local-account")
        #expect(c?.users == ["jdoe", "jsmith"])
        #expect(c?.value == "john")
        #expect(c?.fix.contains("jsmith") == true)
        #expect(plan.decision("jdoe", "pc-1")?.action == .conflict)
        #expect(plan.decision("jdoe", "pc-1")?.reason == "duplicate-local-account")
        #expect(plan.decision("jsmith", "pc-2")?.action == .conflict)
        #expect(plan.changes.isEmpty)
        #expect(plan.summary.conflict == 2)
    }

    @Test func r1UnsetFieldsAreNotDuplicates() {
        let plan = W.plan(users: [W.user("a"), W.user("b")])
        #expect(plan.conflicts.isEmpty)
    }

    // MARK: R2

    @Test func r2DuplicateUsernamesFoldEqual() {
        let a = DirectoryUser(dn: "uid=alice,ou=people,dc=example,dc=com", username: "alice")
        let b = DirectoryUser(dn: "uid=Alice,ou=staff,dc=example,dc=com", username: "Alice")
        let plan = W.plan(users: [b, a], connections: [Connection(device: "pc", member: .name("alice"))],
                          reports: [W.report("pc", [W.person("alice")])])
        let c = plan.conflict("duplicate-username")
        #expect(c?.users == ["Alice", "alice"])
        #expect(c?.message.contains("uid=Alice,ou=staff,dc=example,dc=com") == true)
        // memberUid "alice" names both entries: both are held.
        #expect(plan.decisions.map(\.action) == [.conflict, .conflict])
        #expect(plan.changes.isEmpty)
    }

    @Test func r2MultiValuedUsernameAndSharedUIDNumberAreWarnings() {
        let plan = W.plan(users: [W.user("bob", uid: 1500, all: ["bob", "robert"]), W.user("carol", uid: 1500)])
        #expect(plan.warning("multi-valued-username")?.users == ["bob"])
        #expect(plan.warning("multi-valued-username")?.message.contains("'bob' is used") == true)
        #expect(plan.warning("duplicate-uid-number")?.value == "1500")
        #expect(plan.warning("duplicate-uid-number")?.users == ["bob", "carol"])
        #expect(plan.conflicts.isEmpty)
    }

    // MARK: R3

    @Test func r3UsernameEqualToAnotherUsersLocalAccount() {
        // The seed: usernames "can't match existing Local User Accounts".
        let plan = W.plan(
            users: [W.user("john"), W.user("jsmith", field: "JOHN")],
            connections: W.connect("pc", "john", "jsmith"),
            reports: [W.report("pc", [W.person("john")])])
        let c = plan.conflict("username-matches-local-account")
        #expect(c?.users == ["john", "jsmith"])
        #expect(c?.message.contains("Local User Account field of jsmith") == true)
        #expect(plan.decision("john", "pc")?.reason == "username-matches-local-account")
        #expect(plan.decision("jsmith", "pc")?.reason == "username-matches-local-account")
        #expect(plan.changes.isEmpty)
    }

    @Test func r3OwnFieldEqualToOwnUsernameIsFine() {
        let plan = W.plan(users: [W.user("john", field: "John")])
        #expect(plan.conflicts.isEmpty)
    }

    // MARK: R4

    @Test func r4ConflictedUserKeepsBindingsAndGainsNone() {
        let plan = W.plan(
            users: [W.user("jdoe", field: "john"), W.user("jsmith", field: "john")],
            connections: W.connect("pc-2", "jdoe"),
            reports: [W.report("pc-1", [W.person("john")]), W.report("pc-2", [W.person("john")])],
            groups: [W.group("pc-1", bound: [("jdoe", "john")])])
        // Not connected to pc-1 any more, but held: no unbind.
        let held = plan.decision("jdoe", "pc-1")
        #expect(held?.action == .conflict)
        #expect(held?.localAccount == "john")
        #expect(held?.notices == ["the existing binding is kept while the conflict lasts (R4)"])
        #expect(plan.decision("jdoe", "pc-2")?.action == .conflict)
        #expect(plan.changes.isEmpty)
        #expect(plan.currentBindings == 1)
    }

    // MARK: R5

    @Test func r5ProtectedLocalNameOnLinux() {
        let plan = W.plan(
            users: [W.user("admin", field: "root")],
            connections: W.connect("srv", "admin"),
            reports: [W.report("srv", [W.account("root", uid: 0, home: "/root", shell: "/bin/bash"), W.person("bob")])])
        let d = plan.decision("admin", "srv")
        #expect(d?.action == .conflict)
        #expect(d?.reason == "protected-account")
        #expect(plan.conflict("protected-account")?.message.contains("uid 0 below 1000") == true)
        #expect(plan.changes.isEmpty)
    }

    @Test func r5MacOSDeviceFullOfUnderscoreAccounts() {
        let mac: [LocalAccount] = [
            W.account("_mbsetupuser", uid: 248, home: "/var/setup"),
            W.account("_jumpcloudserviceaccount", uid: 600, home: "/var/jc", hidden: true),
            W.account("_www", uid: 70), W.account("_spotlight", uid: 89),
            W.account("root", uid: 0), W.account("daemon", uid: 1), W.account("nobody", uid: -2),
            W.account("Guest", uid: 201),
            W.account("alice", uid: 501, home: "/Users/alice", shell: "/bin/zsh"),
        ]
        let plan = W.plan(
            users: [W.user("alice"), W.user("svc", field: "_jumpcloudserviceaccount"), W.user("www", field: "_www")],
            connections: W.connect("mbp", "alice", "svc", "www"),
            reports: [W.report("mbp", .macos, mac)])
        #expect(plan.decision("alice", "mbp")?.action == .takeover)
        #expect(plan.decision("svc", "mbp")?.reason == "protected-account")
        #expect(plan.decision("www", "mbp")?.reason == "protected-account")
        // Every `_` account, root, daemon, nobody, Guest is protected: alice is the only one left.
        #expect(plan.warning("sole-local-account")?.value == "alice")
        let policy = Policy()
        for a in mac.dropLast() {
            #expect(ProtectedAccounts.reason(for: a, platform: .macos, policy: policy) != nil, "\(a.name)")
        }
        #expect(ProtectedAccounts.reason(for: mac[1], platform: .macos, policy: policy) == "macOS service account (name starts with '_')")
    }

    @Test func r5WindowsBuiltInAccounts() {
        let sid = "S-1-5-21-1004336348-1177238915-682003330-"
        let win: [LocalAccount] = [
            W.account("Administrator", uid: 500, sid: sid + "500"),
            W.account("Guest", uid: 501, sid: sid + "501"),
            W.account("DefaultAccount", uid: 503, sid: sid + "503"),
            W.account("WDAGUtilityAccount", uid: 504, sid: sid + "504"),
            W.account("SYSTEM", uid: 18, sid: "S-1-5-18", type: "special"),
            W.account("bob", uid: 1001, sid: sid + "1001"),
        ]
        let policy = Policy()
        #expect(ProtectedAccounts.reason(for: win[0], platform: .windows, policy: policy) == "Windows built-in RID 500 (Administrator)")
        #expect(ProtectedAccounts.reason(for: win[1], platform: .windows, policy: policy) == "Windows built-in RID 501 (Guest)")
        #expect(ProtectedAccounts.reason(for: win[2], platform: .windows, policy: policy) == "Windows built-in RID 503 (DefaultAccount)")
        #expect(ProtectedAccounts.reason(for: win[3], platform: .windows, policy: policy) == "Windows built-in RID 504 (WDAGUtilityAccount)")
        #expect(ProtectedAccounts.reason(for: win[4], platform: .windows, policy: policy) == "Windows well-known SID S-1-5-18")
        #expect(ProtectedAccounts.reason(for: win[5], platform: .windows, policy: policy) == nil)
        // A renamed Administrator is still RID 500; a user named "Administrator" with RID 1002 is not.
        #expect(ProtectedAccounts.reason(for: W.account("itadmin", sid: sid + "500"), platform: .windows, policy: policy) != nil)
        #expect(ProtectedAccounts.reason(for: W.account("Administrator", sid: sid + "1002"), platform: .windows, policy: policy) == nil)
        let plan = W.plan(
            users: [W.user("admin", field: "Administrator"), W.user("bob")],
            connections: W.connect("win-1", "admin", "bob"),
            reports: [W.report("win-1", .windows, win)])
        #expect(plan.decision("admin", "win-1")?.reason == "protected-account")
        #expect(plan.decision("bob", "win-1")?.action == .takeover)
        #expect(plan.warning("sole-local-account")?.value == "bob")
    }

    @Test func r5PolicyListAndUnreportedProtectedNames() {
        let plan = W.plan(
            users: [W.user("kiosk"), W.user("root2", field: "root")],
            connections: W.connect("srv", "kiosk", "root2"),
            reports: [W.report("srv", [W.person("kiosk"), W.person("other", uid: 1002)])],
            policy: Policy(protectedAccounts: ["KIOSK"]))
        #expect(plan.decision("kiosk", "srv")?.reason == "protected-account")
        #expect(plan.conflicts.contains { $0.message.contains("listed in [policy] protected_accounts") })
        // root is not in the report, yet is never provisioned either.
        #expect(plan.decision("root2", "srv")?.reason == "protected-account")
        #expect(plan.changes.isEmpty)
    }

    // MARK: R6

    @Test func r6TakeoverAndProvision() throws {
        let plan = W.plan(
            users: [W.user("alice"), W.user("bob")],
            connections: W.connect("pc", "alice", "bob"),
            reports: [W.report("pc", [W.person("alice"), W.person("admin", uid: 1000)])])
        let t = try #require(plan.decision("alice", "pc"))
        #expect(t.action == .takeover)
        #expect(t.localAccount == "alice")
        let p = try #require(plan.decision("bob", "pc"))
        #expect(p.action == .provision)
        #expect(p.localAccount == "bob")
        #expect(p.notices.isEmpty)
        // The group does not exist yet: one add-entry with the placeholder and both bindings.
        #expect(plan.changes.count == 1)
        let add = plan.changes[0]
        #expect(add.op == .addEntry)
        #expect(add.dn == "cn=pc,ou=bindings,dc=example,dc=com")
        #expect(add.attributes.map(\.name) == ["objectClass", "cn", "member", "description"])
        #expect(add.attributes[2].values == [W.bindingsBase, W.dn("alice"), W.dn("bob")])
        #expect(add.attributes[3].values == ["takeover-bridge:alice:" + W.dn("alice"), "takeover-bridge:bob:" + W.dn("bob")])
    }

    @Test func r6LocalAccountFieldIsUsed() {
        let plan = W.plan(
            users: [W.user("harry.murphy", field: "hmurphy")],
            connections: W.connect("pc", "harry.murphy"),
            reports: [W.report("pc", [W.person("hmurphy")])],
            groups: [W.group("pc")])
        #expect(plan.decision("harry.murphy", "pc")?.action == .takeover)
        #expect(plan.decision("harry.murphy", "pc")?.localAccount == "hmurphy")
        #expect(plan.changes.map(\.op) == [.addMember, .addRecord])
        #expect(plan.changes.allSatisfy { $0.subject == W.dn("harry.murphy") })
        #expect(plan.changes[1].values == ["takeover-bridge:hmurphy:" + W.dn("harry.murphy")])
    }

    @Test func r6TakeoverWhoseOnlyDifferenceIsCase() throws {
        // The seed: "Local user accounts aren't case sensitive."
        let plan = W.plan(
            users: [W.user("alice")],
            connections: W.connect("mbp", "alice"),
            reports: [W.report("mbp", .macos, [W.account("Alice", uid: 501, home: "/Users/Alice"), W.person("bob", uid: 502)])])
        let d = try #require(plan.decision("alice", "mbp"))
        #expect(d.action == .takeover && d.localAccount == "Alice")
        #expect(d.notices.contains("local account 'Alice' differs from 'alice' only in case; the device's spelling is kept"))
        #expect(plan.conflicts.isEmpty)
    }

    @Test func r6UnicodeCaseFolding() {
        let plan = W.plan(
            users: [W.user("strasse", field: "STRASSE"), W.user("anna", field: "ÅNGSTRÖM")],
            connections: W.connect("pc", "strasse", "anna"),
            reports: [W.report("pc", .windows, [W.account("straße", sid: "S-1-5-21-1-2-3-1001"), W.account("ångström", sid: "S-1-5-21-1-2-3-1002")])])
        #expect(plan.decision("strasse", "pc")?.action == .takeover)
        #expect(plan.decision("strasse", "pc")?.localAccount == "straße")
        #expect(plan.decision("anna", "pc")?.localAccount == "ångström")
    }

    @Test func r6AmbiguousCaseVariantsAreHeld() {
        let plan = W.plan(
            users: [W.user("alice")],
            connections: W.connect("srv", "alice"),
            reports: [W.report("srv", [W.person("Alice", uid: 1001), W.person("ALICE", uid: 1002)])])
        #expect(plan.decision("alice", "srv")?.reason == "ambiguous-local-account")
        #expect(plan.changes.isEmpty)
        // An exact spelling settles it.
        let exact = W.plan(
            users: [W.user("alice")],
            connections: W.connect("srv", "alice"),
            reports: [W.report("srv", [W.person("Alice", uid: 1001), W.person("alice", uid: 1002)])])
        #expect(exact.decision("alice", "srv")?.localAccount == "alice")
    }

    @Test func r6AccountBoundToSomeoneElse() {
        // jdoe was bound with "john", then jdoe's field changed (R10) and jsmith took "john".
        let plan = W.plan(
            users: [W.user("jdoe", field: "jd"), W.user("jsmith", field: "john")],
            connections: W.connect("pc", "jdoe", "jsmith"),
            reports: [W.report("pc", [W.person("john")])],
            groups: [W.group("pc", bound: [("jdoe", "john")])])
        #expect(plan.decision("jdoe", "pc")?.reason == "changed-after-binding")
        #expect(plan.decision("jsmith", "pc")?.reason == "account-already-bound")
        #expect(plan.changes.isEmpty)
    }

    /// Two bindings that stay hold the same local account: the conflict names the same holder
    /// whatever the order of the group's values (R14). Found by RichWorldPropertyTests
    /// (RichWorld.make(seed: 4435), shuffled).
    @Test func accountAlreadyBoundNamesOneHolderWhateverTheOrder() throws {
        let users = [W.user("ann"), W.user("bob"), W.user("shared")]
        var group = W.group("pc", bound: [("ann", "shared"), ("bob", "shared")])
        let first = W.plan(users: users, connections: W.connect("pc", "ann", "bob", "shared"),
                           reports: [W.report("pc", [W.person("shared")])], groups: [group])
        group.members.reverse()
        group.records.reverse()
        let second = W.plan(users: users, connections: W.connect("pc", "ann", "bob", "shared"),
                            reports: [W.report("pc", [W.person("shared")])], groups: [group])
        let conflict = try #require(first.conflict("account-already-bound"))
        #expect(conflict.message.contains("already bound to ann ("))
        #expect(second.conflict("account-already-bound") == conflict)
    }

    /// An account listed twice under one name with other facts (one a system account): the
    /// same one is judged whatever the report's order (R14). Found by RichWorldPropertyTests
    /// (RichWorld.make(seed: 9128), shuffled).
    @Test func anAccountListedTwiceIsJudgedTheSameWhateverTheOrder() {
        var system = W.person("ann")
        system.realUser = false
        let accounts = [W.person("ann"), system]
        let plans = [accounts, accounts.reversed()].map { list in
            W.plan(users: [W.user("ann")], connections: W.connect("pc", "ann"), reports: [W.report("pc", list)])
        }
        #expect(plans[0].decision("ann", "pc")?.action == .conflict)
        #expect(plans[0].conflicts == plans[1].conflicts && plans[0].decisions == plans[1].decisions)
    }

    @Test func r6AccountFreedByAnUnbindInTheSameRun() {
        // The laptop passes from a leaver to a newcomer with the same local name.
        let plan = W.plan(
            users: [W.user("newcomer", field: "staff")],
            connections: W.connect("pc", "newcomer"),
            reports: [W.report("pc", [W.person("staff")])],
            groups: [W.group("pc", bound: [("leaver", "staff")])])
        #expect(plan.actions([("leaver", "pc"), ("newcomer", "pc")]) == [.unbind, .takeover])
    }

    // MARK: R7

    @Test func r7LikelyMismatchBySameUIDNumber() throws {
        let plan = W.plan(
            users: [W.user("harry", uid: 1234)],
            connections: W.connect("srv", "harry"),
            reports: [W.report("srv", [W.person("hmurphy", uid: 1234), W.person("other", uid: 1235)])])
        #expect(plan.decision("harry", "srv")?.reason == "likely-mismatch")
        let c = try #require(plan.conflict("likely-mismatch"))
        #expect(c.value == "hmurphy")
        #expect(c.message.contains("same uid number 1234"))
        #expect(c.fix.hasPrefix("set the Local User Account field of harry to 'hmurphy'"))
        #expect(plan.changes.isEmpty)
    }

    @Test func r7ByHomeFolderAndFullName() {
        let plan = W.plan(
            users: [W.user("hmurphy2", field: "harry"), W.user("jane", display: "Jane Q. Doe")],
            connections: W.connect("mbp", "hmurphy2", "jane"),
            reports: [W.report("mbp", .macos, [
                W.account("hm", uid: 501, home: "/Users/HMurphy2"),
                W.account("jqd", uid: 502, home: "/Users/jqd", fullName: "jane q. doe"),
            ])])
        #expect(plan.decision("hmurphy2", "mbp")?.reason == "likely-mismatch")
        #expect(plan.conflicts.contains { $0.value == "hm" && $0.message.contains("home directory /Users/HMurphy2") })
        #expect(plan.decision("jane", "mbp")?.reason == "likely-mismatch")
        #expect(plan.conflicts.contains { $0.value == "jqd" && $0.message.contains("full name 'jane q. doe'") })
    }

    @Test func r7IgnoresProtectedBoundAndClaimedAccountsAndWindowsUIDs() {
        let plan = W.plan(
            users: [W.user("harry", uid: 0), W.user("ann", uid: 1001), W.user("bob", uid: 1002), W.user("win", uid: 1003)],
            connections: W.connect("srv", "harry", "ann", "bob") + W.connect("win-pc", "win"),
            reports: [
                W.report("srv", [W.account("root", uid: 0), W.person("bob", uid: 1001)]),
                W.report("win-pc", .windows, [W.account("w", uid: 1003, sid: "S-1-5-21-1-2-3-1003")]),
            ])
        // uid 0 is root (protected); uid 1001 is "bob", the local name of directory user bob,
        // who is connected to srv: the account is bob's, no evidence for ann (R7).
        // On Windows the uid is only a RID: win provisions.
        #expect(plan.actions([("harry", "srv"), ("ann", "srv"), ("bob", "srv"), ("win", "win-pc")])
                == [.provision, .provision, .takeover, .provision])
    }

    @Test func r7PolicyProvision() throws {
        let plan = W.plan(
            users: [W.user("harry", uid: 1234)],
            connections: W.connect("srv", "harry"),
            reports: [W.report("srv", [W.person("hmurphy", uid: 1234)])],
            policy: Policy(onLikelyMismatch: .provision))
        let d = try #require(plan.decision("harry", "srv"))
        #expect(d.action == .provision)
        #expect(d.notices.first?.hasPrefix("likely mismatch: 'hmurphy'") == true)
        #expect(plan.warning("likely-mismatch") != nil)
        #expect(plan.conflicts.isEmpty)
    }

    // MARK: R8

    @Test func r8DeviceSilentForThirtyDays() {
        let plan = W.plan(
            users: [W.user("alice"), W.user("bob")],
            connections: W.connect("old-pc", "bob"),
            reports: [W.report("old-pc", age: 30 * W.day, [W.person("alice"), W.person("bob")])],
            groups: [W.group("old-pc", bound: [("alice", "alice"), ("gone", "gone")])])
        // alice is bound but no longer connected, gone left the directory, bob is new: all deferred.
        #expect(plan.decisions.map(\.action) == [.deferred, .deferred, .deferred])
        #expect(plan.decision("bob", "old-pc")?.reason == "inactive: newest report 2026-10-30T08:00:00Z is 30 days old (active_within 7 days)")
        #expect(plan.decision("alice", "old-pc")?.localAccount == "alice")
        #expect(plan.changes.isEmpty)
    }

    @Test func r8NoReportAndBadReport() {
        let plan = W.plan(
            users: [W.user("alice"), W.user("bob")],
            connections: W.connect("new-pc", "alice") + W.connect("bad-pc", "bob"),
            reports: [W.report("bad-pc", [W.person("bob")])],
            problems: [InputProblem(source: "reports/bad-pc.log", line: 3, device: "bad-pc", message: "unexpected end of JSON")],
            groups: [W.group("bad-pc", bound: [("carol", "carol")])])
        #expect(plan.decision("alice", "new-pc")?.action == .deferred)
        #expect(plan.decision("alice", "new-pc")?.reason == "no report")
        #expect(plan.decision("bob", "bad-pc")?.reason == "no valid report: unexpected end of JSON")
        #expect(plan.decision("carol", "bad-pc")?.action == .deferred)
        #expect(plan.changes.isEmpty)
        #expect(plan.errors.count == 1)
    }

    @Test func r8NewestReportWins() {
        let plan = W.plan(
            users: [W.user("alice")],
            connections: W.connect("pc", "alice"),
            reports: [W.report("pc", age: 20 * W.day, [W.person("alice")]), W.report("PC", age: W.hour, [W.person("other")])])
        #expect(plan.decision("alice", "pc")?.action == .provision)
        #expect(plan.summary.devices == 1)
    }

    // MARK: R9

    @Test func r9AlreadyBound() {
        let plan = W.plan(
            users: [W.user("alice")],
            connections: W.connect("pc", "alice"),
            reports: [W.report("pc", [W.person("Alice")])],
            groups: [W.group("pc", bound: [("alice", "Alice")])])
        #expect(plan.decision("alice", "pc")?.action == .bound)
        #expect(plan.decision("alice", "pc")?.localAccount == "Alice")
        #expect(plan.changes.isEmpty)
        #expect(plan.currentBindings == 1)
    }

    // MARK: R10

    @Test func r10FieldChangedAfterBinding() throws {
        // The seed: the fields "can only be edited before you bind".
        let plan = W.plan(
            users: [W.user("harry", field: "harry.m")],
            connections: W.connect("pc", "harry"),
            reports: [W.report("pc", [W.person("hmurphy"), W.person("harry.m", uid: 1002)])],
            groups: [W.group("pc", bound: [("harry", "hmurphy")])])
        let d = try #require(plan.decision("harry", "pc"))
        #expect(d.action == .conflict)
        #expect(d.reason == "changed-after-binding")
        #expect(d.localAccount == "hmurphy")
        let c = try #require(plan.conflict("changed-after-binding"))
        #expect(c.fix.hasPrefix("restore the Local User Account field of harry to 'hmurphy', or unbind harry"))
        #expect(plan.changes.isEmpty)
    }

    // MARK: R11

    @Test func r11UnbindWhenDisconnectedOrGone() throws {
        let plan = W.plan(
            users: [W.user("alice"), W.user("bob")],
            connections: W.connect("pc", "bob"),
            reports: [W.report("pc", [W.person("alice"), W.person("bob")])],
            groups: [W.group("pc", bound: [("alice", "alice"), ("bob", "bob"), ("carol", "carol")])])
        #expect(plan.decision("alice", "pc")?.action == .unbind)
        #expect(plan.decision("alice", "pc")?.reason == "no longer connected to the device")
        #expect(plan.decision("bob", "pc")?.action == .bound)
        let gone = try #require(plan.decision("carol", "pc"))
        #expect(gone.action == .unbind)
        #expect(gone.reason == "no longer in the directory")
        #expect(gone.userDN == W.dn("carol"))
        #expect(plan.changes.map(\.op) == [.deleteMember, .deleteRecord, .deleteMember, .deleteRecord])
        #expect(plan.changes[0].values == [W.dn("alice")])
        #expect(plan.changes[1].values == ["takeover-bridge:alice:" + W.dn("alice")])
        #expect(plan.changes[2].subject == W.dn("carol"))
        #expect(plan.summary.unbind == 2)
        // The placeholder member is never removed.
        #expect(!plan.changes.contains { $0.values.contains(W.bindingsBase) })
    }

    @Test func r11MembersAddedByPeopleAreAdoptedOrLeftAlone() {
        let plan = W.plan(
            users: [W.user("alice"), W.user("bob")],
            connections: W.connect("pc", "alice"),
            reports: [W.report("pc", [W.person("alice"), W.person("bob")])],
            groups: [W.group("pc", members: [W.dn("alice"), W.dn("bob"), "cn=printer,ou=things,dc=example,dc=com"])])
        #expect(plan.decision("alice", "pc")?.action == .bound)
        #expect(plan.decision("alice", "pc")?.reason == "member of the binding group without a record: adopted")
        #expect(plan.changes.map(\.op) == [.addRecord])
        #expect(plan.changes[0].values == ["takeover-bridge:alice:" + W.dn("alice")])
        #expect(plan.decision("bob", "pc") == nil)
        #expect(plan.warnings.filter { $0.kind == "unmanaged-member" }.map(\.value).sorted()
            == ["cn=printer,ou=things,dc=example,dc=com", W.dn("bob")])
    }

    @Test func r11RecordsWithoutMembership() {
        // An interrupted run left records: alice's is reused, bob's is cleaned up.
        let l = W.layout
        let plan = W.plan(
            users: [W.user("alice"), W.user("bob")],
            connections: W.connect("pc", "alice"),
            reports: [W.report("pc", [W.person("alice")])],
            groups: [W.group("pc", records: [l.recordValue(localName: "alice", userDN: W.dn("alice")),
                                             l.recordValue(localName: "bob", userDN: W.dn("bob")),
                                             "a description written by a person"])])
        #expect(plan.decision("alice", "pc")?.action == .takeover)
        #expect(plan.changes.map(\.op) == [.addMember, .deleteRecord])
        #expect(plan.changes[1].values == ["takeover-bridge:bob:" + W.dn("bob")])
        #expect(plan.warning("stale-record") != nil)
        #expect(plan.currentBindings == 0)
    }

    @Test func r11MemberDNsCompareNormalised() {
        let group = BindingGroup(device: "pc", dn: "cn=pc,ou=bindings,dc=example,dc=com",
                                 members: [W.bindingsBase, "UID=Alice, OU=People,DC=example,DC=com"],
                                 records: ["takeover-bridge:alice:uid=alice,ou=people,dc=example,dc=com"])
        let plan = W.plan(users: [W.user("alice")], connections: W.connect("PC", "alice"),
                          reports: [W.report("pc", [W.person("alice")])], groups: [group])
        #expect(plan.decision("alice", "PC")?.action == .bound)
        #expect(plan.changes.isEmpty)
    }

    // MARK: R12

    @Test func r12NoticesOnEveryTakeover() {
        let plan = W.plan(
            users: [W.user("alice"), W.user("bob")],
            connections: W.connect("mbp", "alice") + W.connect("srv", "bob"),
            reports: [W.report("mbp", .macos, [W.account("alice", uid: 501), W.account("admin", uid: 502)]),
                      W.report("srv", [W.person("bob"), W.person("ops", uid: 1002)])])
        #expect(plan.decision("alice", "mbp")?.notices == [
            "the user will be signed out of apps (1Password, Slack, browsers...) after takeover",
            "must log out and back in so Keychain and FileVault take the new password",
        ])
        #expect(plan.decision("bob", "srv")?.notices == ["the user will be signed out of apps (1Password, Slack, browsers...) after takeover"])
        #expect(plan.warning("sole-local-account") == nil)
    }

    @Test func r12OnlyLocalAccountOnADevice() throws {
        let plan = W.plan(
            users: [W.user("alice")],
            connections: W.connect("pc", "alice"),
            reports: [W.report("pc", [W.account("root", uid: 0), W.account("daemon", uid: 1, shell: "/usr/sbin/nologin"), W.person("alice")])])
        #expect(plan.decision("alice", "pc")?.action == .takeover)
        let w = try #require(plan.warning("sole-local-account"))
        #expect(w.users == ["alice"])
        #expect(w.devices == ["pc"])
        #expect(w.fix.contains("lock the device"))
    }

    // MARK: R13

    @Test func r13InvalidNamesAreConflicts() {
        let plan = W.plan(
            users: [W.user("longname", field: "averyveryverylongname1"), W.user("spacey", field: "Jane Doe")],
            connections: W.connect("win", "longname") + W.connect("lnx", "spacey"),
            reports: [W.report("win", .windows, [W.account("x", sid: "S-1-5-21-1-2-3-1001")]),
                      W.report("lnx", [W.person("x")])])
        #expect(plan.decision("longname", "win")?.reason == "invalid-local-name")
        #expect(plan.conflicts.contains { $0.message.contains("longer than 20 characters") && $0.fix.contains("e.g. 'averyveryverylongnam'") })
        #expect(plan.decision("spacey", "lnx")?.reason == "invalid-local-name")
        #expect(plan.conflicts.contains { $0.message.contains("U+0020 (space)") })
        #expect(plan.changes.isEmpty)
        // A takeover of an existing account valid on its platform (a space on Windows) goes ahead.
        let takeover = W.plan(users: [W.user("spacey", field: "Jane Doe")], connections: W.connect("win", "spacey"),
                              reports: [W.report("win", .windows, [W.account("Jane Doe", sid: "S-1-5-21-1-2-3-1001")])])
        #expect(takeover.decision("spacey", "win")?.action == .takeover)
    }

    /// Issue 11 item 9: R13 applies to taken-over names too; a reported name no platform
    /// allows (`:`, a newline) is a conflict, never a binding record.
    @Test func r13AppliesToTakenOverNames() {
        for (platform, name) in [(Platform.linux, "ad:min"), (.windows, "ad:min"), (.macos, "a\nb"), (.unknown, "x:y"),
                                 (.linux, "straße")] {
            let plan = W.plan(users: [W.user("u1", field: name)], connections: W.connect("pc", "u1"),
                              reports: [W.report("pc", platform, [W.account(name, uid: 1500, home: "/home/u1", shell: "/bin/bash",
                                                                            sid: "S-1-5-21-1-2-3-1001")])])
            #expect(plan.decision("u1", "pc")?.action == .conflict, "\(platform) \(name.debugDescription)")
            #expect(plan.decision("u1", "pc")?.reason == "invalid-local-name")
            #expect(plan.conflict("invalid-local-name")?.message.contains("would take over") == true)
            #expect(plan.changes.isEmpty)
        }
        // Unknown platform: valid on one of them is enough for an account that exists.
        let plan = W.plan(users: [W.user("u1", field: "Jane Doe")], connections: W.connect("pc", "u1"),
                          reports: [W.report("pc", .unknown, [W.account("Jane Doe", uid: 1500)])])
        #expect(plan.decision("u1", "pc")?.action == .takeover)
    }

    @Test func r13AccountNameRules() {
        #expect(AccountNames.validate("alice", platform: .linux) == nil)
        #expect(AccountNames.validate("build$", platform: .linux) == nil)
        #expect(AccountNames.validate("12345", platform: .linux) == "all digits")
        #expect(AccountNames.validate("-x", platform: .linux) == "starts with '-'")
        #expect(AccountNames.validate("ali@ce", platform: .macos) == "contains '@', not a portable character (A-Z a-z 0-9 . _ -)")
        #expect(AccountNames.validate("Jane Doe", platform: .windows) == nil)
        #expect(AccountNames.validate("a/b", platform: .windows) == "contains '/', not allowed in Windows account names")
        #expect(AccountNames.validate("dot.", platform: .windows) == "ends with a period")
        #expect(AccountNames.validate("", platform: .windows) == "the name is empty")
        #expect(AccountNames.validate("ok_name", platform: .unknown) == nil)
        #expect(AccountNames.validate("averyveryverylongname1", platform: .unknown) == "longer than 20 characters (Windows SAM limit) (Windows)")
    }

    // MARK: R14

    @Test func r14SameInputSameBytes() {
        let input = W.input(
            users: [W.user("alice"), W.user("bob"), W.user("jdoe", field: "john"), W.user("jsmith", field: "john")],
            connections: W.connect("pc", "bob", "alice", "jdoe"),
            reports: [W.report("pc", [W.person("alice")])])
        let a = ReportRenderer.json(Planner.plan(input))
        var shuffled = input
        shuffled.users.reverse()
        shuffled.connections.reverse()
        #expect(ReportRenderer.json(Planner.plan(shuffled)) == a)
    }

    @Test func r14ApplyThenPlanHasNoChanges() {
        let input = W.input(
            users: [W.user("alice"), W.user("bob")],
            connections: W.connect("pc", "alice", "bob"),
            reports: [W.report("pc", [W.person("alice")])])
        let first = Planner.plan(input)
        #expect(first.changes.count == 1)
        var after = input
        after.bindingGroups = first.applied(to: input.bindingGroups)
        let second = Planner.plan(after)
        #expect(second.changes.isEmpty)
        #expect(second.decisions.map(\.action) == [.bound, .bound])
    }

    // MARK: Devices, connections, names

    @Test func hostileDeviceNamesGetOneEscapedGroup() {
        let plan = W.plan(
            users: [W.user("alice"), W.user("bob")],
            connections: W.connect("lab,dc=evil", "alice") + W.connect("Bob's MacBook Pro", "bob"),
            reports: [W.report("lab,dc=evil", [W.person("alice")]), W.report("Bob's MacBook Pro", .macos, [W.account("bob", uid: 501)])])
        #expect(plan.changes.map(\.dn) == ["cn=Bob's MacBook Pro,ou=bindings,dc=example,dc=com",
                                           "cn=lab\\,dc\\=evil,ou=bindings,dc=example,dc=com"])
        #expect(plan.changes.allSatisfy { $0.op == .addEntry })
    }

    @Test func deviceSpellingComesFromTheDeviceEntry() {
        let plan = W.plan(users: [W.user("alice")], connections: W.connect("MBP-Alice", "alice"),
                          reports: [W.report("mbp-alice", .macos, [W.account("alice", uid: 501)])])
        #expect(plan.decisions.first?.device == "MBP-Alice")
        #expect(plan.changes.first?.dn == "cn=MBP-Alice,ou=bindings,dc=example,dc=com")
    }

    @Test func memberUidConnectionsAndUnknownMembers() {
        let plan = W.plan(
            users: [W.user("alice")],
            connections: [Connection(device: "pc", member: .name("ALICE")), Connection(device: "pc", member: .name("ghost")),
                          Connection(device: "pc2", member: .dn("uid=ghost,ou=people,dc=example,dc=com"))],
            reports: [W.report("pc", [W.person("alice")])])
        #expect(plan.decision("alice", "pc")?.action == .takeover)
        #expect(plan.warnings.filter { $0.kind == "unknown-member" }.map(\.value).sorted() == ["ghost", "uid=ghost,ou=people,dc=example,dc=com"])
    }

    @Test func duplicateBindingGroupsAreMergedForDecisions() {
        let a = BindingGroup(device: "pc", dn: "cn=pc,ou=bindings,dc=example,dc=com", members: [W.bindingsBase], records: [])
        var b = W.group("PC", bound: [("alice", "alice")])
        b.dn = "cn=PC,ou=old,dc=example,dc=com"
        let plan = W.plan(users: [W.user("alice"), W.user("bob")], connections: W.connect("pc", "alice", "bob"),
                          reports: [W.report("pc", [W.person("alice"), W.person("bob")])], groups: [b, a])
        #expect(plan.decision("alice", "pc")?.action == .bound)
        #expect(plan.decision("bob", "pc")?.action == .takeover)
        #expect(plan.changes.allSatisfy { $0.dn == "cn=pc,ou=bindings,dc=example,dc=com" })
        #expect(plan.warning("duplicate-binding-group") != nil)
    }

    @Test func summaryCounts() {
        let plan = W.plan(
            users: [W.user("a"), W.user("b"), W.user("c")],
            connections: W.connect("pc", "a", "b") + W.connect("old", "c"),
            reports: [W.report("pc", [W.person("a")]), W.report("old", age: 9 * W.day, []), W.report("idle", [])])
        #expect(plan.summary.users == 3)
        #expect(plan.summary.devices == 3)
        #expect(plan.summary.takeover == 1)
        #expect(plan.summary.provision == 1)
        #expect(plan.summary.deferred == 1)
        #expect(plan.summary.changes == plan.changes.count)
    }
}
