import LDAPSyntax
import Testing
@testable import TakeoverCore
import TestSupport


/// Random worlds full of the collisions the rules are about: case variants, shared fields,
/// protected names, stale devices, hand-made members, interrupted runs.
enum RandomWorld {
    static let names = ["alice", "Alice", "bob", "carol", "dave", "eve", "john", "John", "jsmith", "jdoe", "hmurphy",
                        "root", "_svc", "x y", "straße", "STRASSE", "averyveryverylongname1", "admin", "Guest", "ops"]
    static let devices = ["pc-1", "PC-1", "mbp", "srv", "win-7", "lab,dc=evil", "Bob's MacBook Pro", "kiosk"]

    static func make(_ rng: inout SplitMix64) -> PlanInput {
        let layout = rng.chance(50) ? W.layout : BindingLayout.projectSchema(base: W.bindingsBase)
        var users: [DirectoryUser] = []
        var dns: [String] = []
        for i in 0..<(3 + rng.int(12)) {
            let name = rng.pick(names) + (rng.chance(60) ? String(i) : "")
            let dn = "uid=\(name),ou=\(rng.chance(80) ? "people" : "staff"),dc=example,dc=com"
            let field: String? = rng.chance(35) ? rng.pick(names) : nil
            users.append(DirectoryUser(dn: dn, username: name, allUsernames: rng.chance(5) ? [name, "alias\(i)"] : nil,
                                       localAccountField: field, uidNumber: rng.chance(70) ? Int64(1000 + rng.int(8)) : nil,
                                       displayName: rng.chance(40) ? rng.pick(["Ann", "Bob B", "Carol C"]) : nil))
            dns.append(dn)
        }
        let formerDNs = (0..<3).map { "uid=former\($0),ou=people,dc=example,dc=com" }
        let deviceNames = (0..<(1 + rng.int(6))).map { _ in rng.pick(devices) }
        var connections: [Connection] = []
        for d in deviceNames {
            for _ in 0..<rng.int(6) {
                let u = rng.pick(users)
                let member: MemberReference
                switch rng.int(10) {
                case 0: member = .name(rng.chance(50) ? u.username.uppercased() : "ghost")
                case 1: member = .dn(u.dn.uppercased().replacingOccurrences(",", with: ", "))
                case 2: member = .dn("uid=ghost,ou=people,dc=example,dc=com")
                default: member = rng.chance(30) ? .name(u.username) : .dn(u.dn)
                }
                connections.append(Connection(device: d, member: member))
            }
        }
        var reports: [DeviceReport] = []
        var problems: [InputProblem] = []
        for d in deviceNames where rng.chance(85) {
            let platform = rng.pick(Platform.allCases)
            var accounts: [LocalAccount] = []
            for k in 0..<rng.int(7) {
                let name = rng.pick(names)
                let uid = Int64(rng.pick([0, 1, 201, 248, 500, 501, 999, 1000, 1001, 1002, 1003, 1005, 65534]))
                accounts.append(LocalAccount(
                    name: rng.chance(20) ? name.uppercased() : name, uid: uid, uidSigned: uid,
                    sid: platform == .windows ? "S-1-5-21-1-2-3-\(rng.pick([500, 501, 503, 1001, 1002 + k]))" : nil,
                    home: rng.chance(70) ? "/home/\(rng.pick(names))" : nil,
                    shell: rng.chance(20) ? "/usr/sbin/nologin" : "/bin/bash",
                    fullName: rng.chance(30) ? rng.pick(["Ann", "bob b", "Dora"]) : nil,
                    hidden: rng.chance(5)))
            }
            reports.append(DeviceReport(device: rng.chance(20) ? d.uppercased() : d, platform: platform,
                                        reportedAt: W.now - Int64(rng.int(12)) * W.day - Int64(rng.int(3600)),
                                        accounts: accounts, source: "reports/\(d)-\(reports.count).json"))
        }
        for d in deviceNames where rng.chance(8) {
            problems.append(InputProblem(source: "reports/\(d).bad", line: rng.int(9), device: d, message: "bad JSON"))
        }
        if rng.chance(20) { problems.append(InputProblem(source: "reports/README", message: "not a report")) }
        var groups: [BindingGroup] = []
        var seenGroups = Set<String>()
        for d in deviceNames where rng.chance(60) && !seenGroups.contains(Folding.fold(d)) {
            seenGroups.insert(Folding.fold(d))
            var members: [String] = layout.placeholderMember.map { [$0] } ?? []
            var records: [String] = []
            for _ in 0..<rng.int(5) {
                let dn = rng.chance(80) ? rng.pick(dns) : rng.pick(formerDNs)
                let local = rng.chance(70) ? (users.first { $0.dn == dn }?.localName ?? rng.pick(names)) : rng.pick(names)
                switch rng.int(10) {
                case 0: members.append(dn) // a person's member
                case 1: records.append(layout.recordValue(localName: local, userDN: dn)) // interrupted run
                default:
                    if !members.contains(dn) { members.append(dn) }
                    records.append(layout.recordValue(localName: local, userDN: dn))
                }
            }
            if rng.chance(20) { records.append("a note by a person") }
            groups.append(BindingGroup(device: d, dn: layout.groupDN(device: d), members: members, records: records))
            if rng.chance(15) {
                // A second group for the same device (made by hand): values split between them.
                var otherMembers: [String] = layout.placeholderMember.map { [$0] } ?? []
                var otherRecords: [String] = []
                for _ in 0..<rng.int(3) {
                    let dn = rng.pick(dns)
                    let local = users.first { $0.dn == dn }?.localName ?? "x"
                    if rng.chance(60) { otherMembers.append(dn) }
                    if rng.chance(60) { otherRecords.append(layout.recordValue(localName: local, userDN: dn)) }
                }
                groups.append(BindingGroup(device: rng.chance(50) ? d : d.uppercased(), dn: layout.groupDN(device: d + " (old)"),
                                           members: otherMembers, records: otherRecords))
            }
        }
        let policy = Policy(protectedAccounts: rng.chance(30) ? ["ops"] : [],
                            onLikelyMismatch: rng.chance(30) ? .provision : .hold)
        return PlanInput(users: users, connections: connections, knownDevices: rng.chance(30) ? [DeviceEntry(name: "idle-box")] : [],
                         reports: reports, problems: problems, bindingGroups: groups, layout: layout, policy: policy, now: W.now)
    }

    /// `count` worlds from one seed, in order (the stream `make` gives from that seed).
    static func worlds(seed: UInt64, count: Int) -> [PlanInput] {
        var rng = SplitMix64(seed: seed)
        return (0..<count).map { _ in make(&rng) }
    }

    static func shuffled(_ input: PlanInput, _ rng: inout SplitMix64) -> PlanInput {
        var s = input
        s.users.shuffle(using: &rng)
        s.connections.shuffle(using: &rng)
        s.reports.shuffle(using: &rng)
        for i in s.reports.indices { s.reports[i].accounts.shuffle(using: &rng) }
        s.problems.shuffle(using: &rng)
        s.bindingGroups.shuffle(using: &rng)
        for i in s.bindingGroups.indices {
            s.bindingGroups[i].members.shuffle(using: &rng)
            s.bindingGroups[i].records.shuffle(using: &rng)
        }
        s.knownDevices.shuffle(using: &rng)
        return s
    }

    /// Managed bindings (member + record) as "folded device|normalised user DN".
    static func managed(_ groups: [BindingGroup], _ layout: BindingLayout) -> Set<String> {
        var out = Set<String>()
        for g in groups {
            let members = Set(g.members.map(DNNormalizer.normalize))
            for r in g.records {
                guard let rec = layout.parseRecord(r) else { continue }
                let n = DNNormalizer.normalize(rec.userDN)
                if members.contains(n) { out.insert(Folding.fold(g.device) + "|" + n) }
            }
        }
        return out
    }
}

extension String {
    func replacingOccurrences(_ a: String, with b: String) -> String {
        split(separator: Substring(a), omittingEmptySubsequences: false).joined(separator: b)
    }
}

@Suite struct PropertyTests {
    static let iterations = 600

    @Test func shuffledInputGivesByteIdenticalReports() {
        var rng = SplitMix64(seed: 0x5EED_0001)
        for i in 0..<Self.iterations {
            let input = RandomWorld.make(&rng)
            let plan = Planner.plan(input)
            let again = Planner.plan(RandomWorld.shuffled(input, &rng))
            #expect(ReportRenderer.json(again) == ReportRenderer.json(plan),
                    "world \(i): \(firstDifference(ReportRenderer.json(plan), ReportRenderer.json(again)))")
            #expect(ReportRenderer.text(again) == ReportRenderer.text(plan), "world \(i)")
            #expect(ReportRenderer.ldif(again) == ReportRenderer.ldif(plan), "world \(i)")
            #expect(ReportRenderer.csv(again) == ReportRenderer.csv(plan), "world \(i)")
            if ReportRenderer.json(again) != ReportRenderer.json(plan) { break }
        }
    }

    @Test func applyingThePlanThenPlanningAgainGivesNoChanges() {
        var changed = 0
        for (i, input) in RandomWorld.worlds(seed: 0x5EED_0002, count: Self.iterations).enumerated() {
            var input = input
            let plan = Planner.plan(input)
            if plan.hasChanges { changed += 1 }
            input.bindingGroups = plan.applied(to: input.bindingGroups)
            let second = Planner.plan(input)
            #expect(second.changes.isEmpty, "world \(i): \(second.changes)")
            if !second.changes.isEmpty { break }
        }
        // The worlds must actually exercise changes.
        #expect(changed > Self.iterations / 2)
    }

    @Test func conflictedUsersNeverGainABinding() {
        var held = 0
        for (i, input) in RandomWorld.worlds(seed: 0x5EED_0003, count: Self.iterations).enumerated() {
            let plan = Planner.plan(input)
            let userLevel: Set<String> = ["duplicate-local-account", "duplicate-username", "username-matches-local-account"]
            let conflicted = Set(plan.decisions.filter { $0.action == .conflict && userLevel.contains($0.reason) }
                .map { DNNormalizer.normalize($0.userDN) })
            held += conflicted.count
            let before = RandomWorld.managed(input.bindingGroups, input.layout)
            let after = RandomWorld.managed(plan.applied(to: input.bindingGroups), input.layout)
            let gained = after.subtracting(before).filter { conflicted.contains(String($0.split(separator: "|", maxSplits: 1)[1])) }
            #expect(gained.isEmpty, "world \(i)")
            let lost = before.subtracting(after).filter { conflicted.contains(String($0.split(separator: "|", maxSplits: 1)[1])) }
            #expect(lost.isEmpty, "world \(i): R4 keeps existing bindings")
            // Nothing is written about them at all.
            for c in plan.changes {
                if let s = c.subject { #expect(!conflicted.contains(DNNormalizer.normalize(s)), "world \(i)") }
            }
        }
        #expect(held > 0)
    }

    @Test func deferredDevicesNeverLoseOrGainABinding() {
        var deferredSeen = 0
        for (i, input) in RandomWorld.worlds(seed: 0x5EED_0004, count: Self.iterations).enumerated() {
            let plan = Planner.plan(input)
            // Deferred by R8's own definition, computed here from the input.
            var newest: [String: UnixTime] = [:]
            for r in input.reports { newest[Folding.fold(r.device)] = max(newest[Folding.fold(r.device)] ?? .min, r.reportedAt) }
            let bad = Set(input.problems.compactMap { $0.device.map(Folding.fold) })
            var all = Set(input.connections.map { Folding.fold($0.device) })
            all.formUnion(input.bindingGroups.map { Folding.fold($0.device) })
            let deferred = all.filter { d in
                bad.contains(d) || (newest[d].map { input.now - $0 > input.policy.activeWithin } ?? true)
            }
            deferredSeen += deferred.count
            let before = RandomWorld.managed(input.bindingGroups, input.layout).filter { deferred.contains(String($0.split(separator: "|")[0])) }
            let afterGroups = plan.applied(to: input.bindingGroups)
            let after = RandomWorld.managed(afterGroups, input.layout).filter { deferred.contains(String($0.split(separator: "|")[0])) }
            #expect(before == after, "world \(i)")
            // Not even a stale record is touched there.
            let touched = plan.changes.filter { c in
                deferred.contains { DNNormalizer.normalize(c.dn) == DNNormalizer.normalize(input.layout.groupDN(device: $0)) }
                    || input.bindingGroups.contains { deferred.contains(Folding.fold($0.device)) && DNNormalizer.normalize($0.dn) == DNNormalizer.normalize(c.dn) }
            }
            #expect(touched.isEmpty, "world \(i)")
            for d in plan.decisions where deferred.contains(Folding.fold(d.device)) {
                #expect(d.action == .deferred || d.action == .conflict, "world \(i)")
            }
        }
        #expect(deferredSeen > 0)
    }

    @Test func parallelChunksAndOutputBoundsNeverChangeThePlan() {
        for (i, input) in RandomWorld.worlds(seed: 0x5EED_0006, count: 200).enumerated() {
            let expected = ReportRenderer.json(Planner.plan(input, tuning: .init(chunks: 1, parallelFrom: Int.max, indexChunkMinimum: Int.max)))
            for tuning in [Planner.Tuning(chunks: 3, parallelFrom: 0, indexChunkMinimum: 1),
                           Planner.Tuning(chunks: 7, parallelFrom: 0, boundScale: 1000, indexChunkMinimum: 2),
                           Planner.Tuning(chunks: 1, parallelFrom: 0, boundScale: 2)] {
                let json = ReportRenderer.json(Planner.plan(input, tuning: tuning))
                #expect(json == expected, "world \(i), \(tuning): \(firstDifference(expected, json))")
            }
        }
    }

    @Test func summaryMatchesTheLists() {
        for input in RandomWorld.worlds(seed: 0x5EED_0005, count: 200) {
            let plan = Planner.plan(input)
            #expect(plan.summary.changes == plan.changes.count)
            #expect(plan.summary.takeover + plan.summary.provision + plan.summary.bound + plan.summary.unbind
                + plan.summary.deferred + plan.summary.conflict == plan.decisions.count)
            #expect(plan.summary.users == input.users.count)
            // One decision per (user DN, device) at most. Devices are told apart by their
            // spelling: entries whose names fold equal are distinct devices (R15).
            let pairs = plan.decisions.map { DNNormalizer.normalize($0.userDN) + "|" + $0.device }
            #expect(Set(pairs).count == pairs.count)
            // Every change stays under the bindings base, never deletes the placeholder.
            for c in plan.changes {
                #expect(DNNormalizer.normalize(c.dn).hasSuffix("," + DNNormalizer.normalize(input.layout.base)))
                if c.op == .deleteMember, let p = input.layout.placeholderMember { #expect(!c.values.contains(p)) }
            }
        }
    }
}

/// The first differing line of two texts, for failure messages.
func firstDifference(_ a: String, _ b: String) -> String {
    let la = a.split(separator: "\n", omittingEmptySubsequences: false)
    let lb = b.split(separator: "\n", omittingEmptySubsequences: false)
    for i in 0..<max(la.count, lb.count) {
        let x = i < la.count ? String(la[i]) : "<end>"
        let y = i < lb.count ? String(lb[i]) : "<end>"
        if x != y { return "line \(i + 1):\n- \(x)\n+ \(y)" }
    }
    return "no difference"
}
