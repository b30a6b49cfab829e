import Testing
@testable import TakeoverCore
import TestSupport

/// Issue 11, items 5, 6 and 12: R8's clock skew, R15's distinct device entries, R7's
/// evidence from an account named like a user who is not connected.
@Suite struct HardeningRulesTests {
    // MARK: R8: max_clock_skew

    @Test func reportBeyondTheSkewIsAnErrorAndNeverUsed() throws {
        let plan = W.plan(
            users: [W.user("alice")],
            connections: W.connect("mbp", "alice"),
            reports: [W.report("mbp", age: -(W.day * 365 * 73), [W.person("root", uid: 0)]),
                      W.report("mbp", age: W.hour, [W.person("alice")])])
        let d = try #require(plan.decision("alice", "mbp"))
        #expect(d.action == .deferred)
        #expect(d.reason.contains("in the future"))
        let error = try #require(plan.errors.first { $0.message.contains("max_clock_skew") })
        #expect(error.source == "reports/mbp.json")
        #expect(error.device == "mbp")
        #expect(error.message.contains("2099-"))
        #expect(plan.changes.isEmpty)
    }

    @Test func randomOffsetsAroundTheSkew() {
        var rng = SplitMix64(seed: 0xC10C)
        for _ in 0..<300 {
            let skew = Int64(1 + rng.int(3 * 3600))
            let offset = skew + Int64(rng.int(21)) - 10          // around the limit
                * (rng.chance(20) ? Int64(1 + rng.int(1000)) : 1)  // sometimes far from it
            let plan = W.plan(
                users: [W.user("alice")], connections: W.connect("pc", "alice"),
                reports: [W.report("pc", age: -offset, [W.person("alice")])],
                policy: Policy(maxClockSkew: skew))
            let action = plan.decision("alice", "pc")?.action
            if offset > skew {
                #expect(action == .deferred, "offset \(offset) skew \(skew)")
                #expect(plan.errors.count == 1)
            } else {
                #expect(action == .takeover, "offset \(offset) skew \(skew)")
                #expect(plan.errors.isEmpty)
            }
        }
    }

    @Test func defaultSkewIsFiveMinutes() {
        #expect(Policy().maxClockSkew == 300)
        let at = W.plan(users: [W.user("a")], connections: W.connect("pc", "a"), reports: [W.report("pc", age: -300, [W.person("a")])])
        #expect(at.decision("a", "pc")?.action == .takeover)
        let past = W.plan(users: [W.user("a")], connections: W.connect("pc", "a"), reports: [W.report("pc", age: -301, [W.person("a")])])
        #expect(past.decision("a", "pc")?.action == .deferred)
    }

    // MARK: R15: entries whose names fold equal

    static let foldEqualPairs: [(String, String)] = [
        ("straße", "STRASSE"), ("ﬁnance", "FINANCE"), ("ΣΟΦΟΣ", "σοφος"), ("ǰ-pc", "J\u{30C}-PC"), ("Lab1", "lab1"),
    ]

    @Test(arguments: foldEqualPairs) func twoEntriesWhoseNamesFoldEqualAreNeverMerged(_ pair: (String, String)) throws {
        let (a, b) = pair
        let plan = W.plan(
            users: [W.user("ann"), W.user("bob")],
            connections: W.connect(a, "ann") + W.connect(b, "bob"),
            reports: [W.report(b, [W.person("ann"), W.person("bob")])],
            groups: [W.group(a, bound: [("ann", "ann")])])
        // Two devices, each with its own decision; neither decided (the report could be either's).
        #expect(plan.summary.devices == 2)
        let da = try #require(plan.decision("ann", a))
        let db = try #require(plan.decision("bob", b))
        #expect(da.action == .deferred && db.action == .deferred)
        #expect(da.reason.contains("ambiguous device") && da.reason.contains(q(a)) && da.reason.contains(q(b)))
        #expect(plan.decision("bob", a) == nil && plan.decision("ann", b) == nil)
        let error = try #require(plan.errors.first { $0.message.contains("could be any of") })
        #expect(error.source == "reports/\(b).json")
        #expect(plan.changes.isEmpty)
    }

    @Test func randomSpellingsThatFoldEqual() {
        var rng = SplitMix64(seed: 0x15A7)
        let pieces: [[String]] = [["ß", "SS", "ss", "ẞ"], ["ﬁ", "FI", "fi"], ["σ", "Σ", "ς"], ["k", "K", "\u{212A}"], ["-"], ["7"]]
        var tried = 0
        while tried < 150 {
            var a = "", b = "", c = ""
            for _ in 0..<(1 + rng.int(4)) {
                let p = rng.pick(pieces)
                a += rng.pick(p); b += rng.pick(p); c += rng.pick(p)
            }
            guard a != b else { continue }
            tried += 1
            let plan = W.plan(
                users: [W.user("ann"), W.user("bob")],
                connections: W.connect(a, "ann") + W.connect(b, "bob"),
                reports: [W.report(c, [W.person("ann"), W.person("bob")])])
            #expect(plan.summary.devices == 2, "\(a) / \(b)")
            #expect(plan.decisions.count == 2 && plan.decisions.allSatisfy { $0.action == .deferred }, "\(a) / \(b) / \(c)")
            #expect(plan.errors.count == 1)
            #expect(plan.changes.isEmpty)
        }
    }

    @Test func dotlessIDoesNotFoldToI() {
        // U+0131 folds only under Turkic rules: "ıt-pc" and "IT-PC" are unrelated names.
        let plan = W.plan(
            users: [W.user("ann"), W.user("bob")],
            connections: W.connect("\u{131}t-pc", "ann") + W.connect("IT-PC", "bob"),
            reports: [W.report("it-pc", [W.person("bob")])])
        #expect(plan.decision("bob", "IT-PC")?.action == .takeover)
        #expect(plan.decision("ann", "\u{131}t-pc")?.reason == "no report")
        #expect(plan.errors.isEmpty)
    }

    @Test func canonicallyEquivalentSpellingsAreOneEntryName() {
        // K (U+212A KELVIN SIGN) is canonically equivalent to K: one name, one device.
        let plan = Planner.plan(W.input(
            users: [W.user("ann"), W.user("bob")], connections: W.connect("Kiosk", "ann") + W.connect("\u{212A}iosk", "bob"),
            reports: [W.report("kiosk", [W.person("ann"), W.person("bob")])]))
        #expect(plan.summary.devices == 1)
        #expect(plan.decisions.map(\.action) == [.takeover, .takeover])
    }

    @Test func oneEntrySpelledAlikeEverywhereIsOneDevice() {
        // Connections and the entry list of one entry, and a report in another case: one device.
        let plan = Planner.plan(W.input(
            users: [W.user("ann")], connections: W.connect("Kiosk-1", "ann"),
            reports: [W.report("KIOSK-1", [W.person("ann")])],
            knownDevices: [DeviceEntry(name: "Kiosk-1", dn: W.deviceDN("Kiosk-1")), DeviceEntry(name: "Kiosk-1", dn: W.deviceDN("Kiosk-1"))]))
        #expect(plan.summary.devices == 1)
        #expect(plan.decision("ann", "Kiosk-1")?.action == .takeover)
        #expect(plan.errors.isEmpty)
    }

    @Test func twinsKeepTheirOwnBindingGroupsAndNeverUnbind() {
        // Two entries (bob's connection removed from STRASSE); both bound earlier; a report
        // now. Each group stays with its own entry, and nothing is unbound or rebound.
        let plan = Planner.plan(W.input(
            users: [W.user("ann"), W.user("bob")],
            connections: W.connect("straße", "ann"),
            reports: [W.report("STRASSE", [W.person("bob"), W.person("ann")])],
            groups: [W.group("straße", bound: [("ann", "ann")]), W.group("STRASSE", bound: [("bob", "bob")])],
            knownDevices: [DeviceEntry(name: "straße", dn: W.deviceDN("straße")),
                           DeviceEntry(name: "STRASSE", dn: W.deviceDN("STRASSE"))]))
        #expect(plan.decision("ann", "straße")?.action == .deferred)
        #expect(plan.decision("ann", "straße")?.localAccount == "ann")
        #expect(plan.decision("bob", "STRASSE")?.action == .deferred)
        #expect(plan.decision("bob", "straße") == nil)
        #expect(plan.changes.isEmpty)
    }

    // MARK: R15: entries spelled exactly alike (the same name in two OUs)

    static let ouA = "cn=lab1,ou=a,ou=devices,dc=example,dc=com"
    static let ouB = "cn=lab1,ou=b,ou=devices,dc=example,dc=com"

    @Test func twoEntriesWithTheSameNameAreTwoDevicesAndNeverDecided() throws {
        // ann connected by one entry, bob by the other, carol bound earlier and connected by
        // neither; the report lists all three. Merged, this would take over bob's account and
        // unbind carol; as two devices nothing is decided and the shared group is untouched.
        let plan = Planner.plan(W.input(
            users: [W.user("ann"), W.user("bob"), W.user("carol")],
            connections: W.connect("lab1", entry: Self.ouA, "ann") + W.connect("lab1", entry: Self.ouB, "bob"),
            reports: [W.report("lab1", [W.person("ann"), W.person("bob"), W.person("carol")])],
            groups: [W.group("lab1", bound: [("ann", "ann"), ("carol", "carol")])],
            knownDevices: [DeviceEntry(name: "lab1", dn: Self.ouA), DeviceEntry(name: "lab1", dn: Self.ouB)]))
        #expect(plan.summary.devices == 2)
        #expect(plan.decisions.count == 3)
        #expect(plan.decisions.allSatisfy { $0.action == .deferred }, "\(plan.decisions)")
        for user in ["ann", "bob", "carol"] {
            let d = try #require(plan.decision(user, "lab1"))
            #expect(d.reason.contains("ambiguous device") && d.reason.contains(Self.ouA) && d.reason.contains(Self.ouB), "\(d.reason)")
            #expect(d.reason.contains("rename one of the two device entries"), "\(d.reason)")
        }
        // Each decision names the entry it belongs to.
        #expect(plan.decision("bob", "lab1")?.reason.hasPrefix("ambiguous device (the entry \(Self.ouB))") == true)
        #expect(plan.decision("ann", "lab1")?.localAccount == "ann")
        #expect(plan.decision("carol", "lab1")?.localAccount == "carol")
        #expect(plan.errors.count == 1)
        let error = try #require(plan.errors.first)
        #expect(error.source == "reports/lab1.json")
        #expect(error.message.contains("could be any of the 2 device entries \(Self.ouA) and \(Self.ouB) (both named 'lab1')"), "\(error.message)")
        #expect(error.message.contains("rename one of the two device entries"))
        #expect(plan.changes.isEmpty)
        #expect(plan.summary.unbind == 0 && plan.summary.takeover == 0)
    }

    @Test func sameNameWithoutAReportIsAnErrorNamingBothEntries() throws {
        // No report, no binding: still two devices, deferred, and one error naming both DNs
        // (escaped as the server returns them: a comma in the name is `\,`).
        let a = #"cn=lab\,1,ou=a,ou=devices,dc=example,dc=com"#
        let b = #"cn=lab\,1,ou=b,ou=devices,dc=example,dc=com"#
        let plan = Planner.plan(W.input(
            users: [W.user("ann")],
            connections: W.connect("lab,1", entry: b, "ann"),
            knownDevices: [DeviceEntry(name: "lab,1", dn: b), DeviceEntry(name: "lab,1", dn: a)]))
        #expect(plan.summary.devices == 2)
        let d = try #require(plan.decision("ann", "lab,1"))
        #expect(d.action == .deferred)
        #expect(d.reason.hasPrefix("ambiguous device (the entry \(b)): the device entries \(a) and \(b) are both named 'lab,1'"), "\(d.reason)")
        #expect(plan.errors.count == 1)
        let error = try #require(plan.errors.first)
        #expect(error.source == a)
        #expect(error.device == nil)
        #expect(error.message.hasPrefix("the device entries \(a) and \(b) are both named 'lab,1': they are 2 devices"), "\(error.message)")
        #expect(error.message.contains("rename one of the two device entries"))
        #expect(plan.changes.isEmpty)
    }

    @Test func sameNameTwiceAndAFoldEqualThirdAreThreeDevices() throws {
        let c = "cn=LAB1,ou=c,ou=devices,dc=example,dc=com"
        let plan = Planner.plan(W.input(
            users: [W.user("ann"), W.user("bob"), W.user("cat")],
            connections: W.connect("lab1", entry: Self.ouA, "ann") + W.connect("lab1", entry: Self.ouB, "bob")
                + W.connect("LAB1", entry: c, "cat"),
            reports: [W.report("Lab1", [W.person("ann"), W.person("bob"), W.person("cat")])]))
        #expect(plan.summary.devices == 3)
        #expect(plan.decisions.count == 3 && plan.decisions.allSatisfy { $0.action == .deferred })
        let reason = try #require(plan.decision("cat", "LAB1")?.reason)
        #expect(reason.contains("'LAB1' (\(c)), 'lab1' (\(Self.ouA)) and 'lab1' (\(Self.ouB)) have names that are equal compared case-insensitively"), "\(reason)")
        #expect(reason.contains("rename all but one of the 3 device entries"))
        #expect(plan.errors.count == 1 && plan.errors[0].message.contains("could be any of the 3 device entries"))
        #expect(plan.changes.isEmpty)
    }

    @Test func theSameEntryReadTwiceIsOneDevice() {
        // One DN in the connections and twice in the entry list (a server that returned it
        // twice): one entry, one device, decided as usual.
        let plan = Planner.plan(W.input(
            users: [W.user("ann")], connections: W.connect("lab1", entry: Self.ouA, "ann"),
            reports: [W.report("lab1", [W.person("ann")])],
            knownDevices: [DeviceEntry(name: "lab1", dn: Self.ouA), DeviceEntry(name: "lab1", dn: Self.ouA)]))
        #expect(plan.summary.devices == 1)
        #expect(plan.decision("ann", "lab1")?.action == .takeover)
        #expect(plan.errors.isEmpty)
    }

    @Test func sameNameEntriesInAnyOrderGiveTheSamePlan() {
        // R14: which entry is read first never shows.
        var rng = SplitMix64(seed: 0x1AB1)
        let input = W.input(
            users: [W.user("ann"), W.user("bob"), W.user("carol")],
            connections: W.connect("lab1", entry: Self.ouA, "ann", "carol") + W.connect("lab1", entry: Self.ouB, "bob", "carol"),
            reports: [W.report("lab1", [W.person("ann")])],
            groups: [W.group("lab1", bound: [("carol", "carol")])],
            knownDevices: [DeviceEntry(name: "lab1", dn: Self.ouA), DeviceEntry(name: "lab1", dn: Self.ouB)])
        let first = Planner.plan(input)
        #expect(first.summary.devices == 2 && first.changes.isEmpty)
        for _ in 0..<20 {
            var s = input
            s.connections.shuffle(using: &rng)
            s.knownDevices.shuffle(using: &rng)
            #expect(Planner.plan(s) == first)
        }
    }

    // MARK: R7: an account named like a user who is not connected

    @Test func accountNamedLikeAnUnconnectedUserStillCountsAsEvidence() throws {
        // hmurphy's account on the box is called "jsmith" (same uid, home /home/hmurphy);
        // jsmith is a directory user, but not connected to the box.
        let plan = W.plan(
            users: [W.user("hmurphy", uid: 1005), W.user("jsmith", uid: 1099)],
            connections: W.connect("box", "hmurphy") + W.connect("other", "jsmith"),
            reports: [W.report("box", [W.account("jsmith", uid: 1005, home: "/home/hmurphy", shell: "/bin/bash")])])
        let d = try #require(plan.decision("hmurphy", "box"))
        #expect(d.action == .conflict)
        #expect(d.reason == "likely-mismatch")
        let c = try #require(plan.conflict("likely-mismatch"))
        #expect(c.value == "jsmith")
        #expect(c.message.contains("also the local name of jsmith, who is not connected to 'box'"))
        #expect(c.fix.contains("rename it on the device to 'hmurphy'"))
        #expect(c.fix.contains("change the Local User Account field of jsmith"))
        #expect(plan.changes.isEmpty)
    }

    @Test func accountNamedLikeAnotherUsersFieldHeldToo() throws {
        let plan = W.plan(
            users: [W.user("hmurphy", uid: 1005), W.user("john", field: "jdoe")],
            connections: W.connect("box", "hmurphy"),
            reports: [W.report("box", [W.account("JDoe", uid: 1005, home: "/home/JDoe", shell: "/bin/bash")])])
        #expect(plan.decision("hmurphy", "box")?.action == .conflict)
        #expect(plan.conflict("likely-mismatch")?.message.contains("also the local name of john") == true)
    }

    @Test func accountOfAConnectedUserIsTheirsNotEvidence() {
        let plan = W.plan(
            users: [W.user("hmurphy", uid: 1005), W.user("jsmith", uid: 1099)],
            connections: W.connect("box", "hmurphy", "jsmith"),
            reports: [W.report("box", [W.account("jsmith", uid: 1005, home: "/home/hmurphy", shell: "/bin/bash")])])
        #expect(plan.decision("hmurphy", "box")?.action == .provision)
        #expect(plan.decision("jsmith", "box")?.action == .takeover)
    }

    @Test func claimedAccountWithProvisionPolicyProvisionsWithAWarning() throws {
        let plan = W.plan(
            users: [W.user("hmurphy", uid: 1005), W.user("jsmith", uid: 1099)],
            connections: W.connect("box", "hmurphy"),
            reports: [W.report("box", [W.account("jsmith", uid: 1005, home: "/home/x", shell: "/bin/bash")])],
            policy: Policy(onLikelyMismatch: .provision))
        #expect(plan.decision("hmurphy", "box")?.action == .provision)
        let w = try #require(plan.warning("likely-mismatch"))
        #expect(w.message.contains("not connected"))
    }
}
