import Testing
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import LDAPSyntax
@testable import TakeoverCore
import TestSupport

/// The planner against the plain reference planner (ReferencePlanner.swift), world by
/// seeded world: decisions in report order, findings, errors, changes, the summary and the
/// count of current bindings must be equal field by field. A failure prints the seed and
/// every differing line; `RichWorld.make(seed:)` rebuilds that world.
@Suite struct ReferencePlanTests {
    /// 300 worlds keep the target at a few seconds; `TB_REFERENCE_SEEDS=N` runs seeds 0..<N
    /// here and in RichWorldPropertyTests (a deeper search, e.g. after a change to the planner).
    static let seeds: Range<UInt64> = 0..<(deepSeeds ?? 300)
    static let deepSeeds = environment("TB_REFERENCE_SEEDS").flatMap { UInt64($0) }

    static func environment(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }

    /// Compares one world's plan with the reference's; a readable report of the differences, or nil.
    static func disagreement(_ input: PlanInput, _ plan: Plan, label: String) -> String? {
        let diff = ReferencePlan(plan).differences(from: ReferencePlanner.plan(input))
        guard !diff.isEmpty else { return nil }
        return "\(label): the planner and the reference disagree (\(diff.count) lines):\n" + diff.prefix(40).joined(separator: "\n")
    }

    /// What the worlds reached: they must reach every rule, or equality would prove little.
    struct Coverage {
        var actions = Set<String>(), conflicts = Set<String>(), warnings = Set<String>(), reasons = Set<String>()
        var notices = Set<String>(), ops = Set<String>()
        var futureErrors = 0, ambiguousErrors = 0, twins = 0

        mutating func add(_ plan: Plan) {
            for d in plan.decisions {
                actions.insert(d.action.rawValue)
                reasons.insert(String(d.reason.prefix(while: { $0 != ":" })))
                notices.formUnion(d.notices)
            }
            conflicts.formUnion(plan.conflicts.map(\.kind))
            warnings.formUnion(plan.warnings.map(\.kind))
            ops.formUnion(plan.changes.map(\.op.rawValue))
            futureErrors += plan.errors.filter { $0.message.contains("in the future") }.count
            ambiguousErrors += plan.errors.filter { $0.message.contains("R15") }.count
            twins += plan.decisions.filter { $0.reason.hasPrefix("ambiguous device") }.count
        }

        func check() {
            #expect(actions == Set(Action.allCases.map(\.rawValue)))
            #expect(conflicts == ["duplicate-local-account", "duplicate-username", "username-matches-local-account",
                                  "protected-account", "account-already-bound", "ambiguous-local-account", "likely-mismatch",
                                  "changed-after-binding", "invalid-local-name"])
            #expect(warnings == ["multi-valued-username", "duplicate-uid-number", "sole-local-account", "unknown-member",
                                 "unmanaged-member", "stale-record", "duplicate-binding-group", "duplicate-user-entry",
                                 "likely-mismatch"])
            #expect(ops == ["add-entry", "add-member", "delete-member", "add-record", "delete-record"])
            for reason in ["no report", "no valid report", "inactive", "member of the binding group without a record",
                           Reason.takeover, Reason.provision, Reason.notConnected, Reason.goneFromDirectory, Reason.bound] {
                #expect(reasons.contains(reason), "no decision with the reason \(reason)")
            }
            for notice in [Notice.heldByConflict, Notice.macOSLogout, Notice.adopted, "moved from ",
                           "the device's newest report does not list", "local account '", "likely mismatch: "] {
                #expect(notices.contains { $0.hasPrefix(notice) }, "no decision with the notice \(notice)")
            }
            #expect(futureErrors > 0 && ambiguousErrors > 0 && twins > 0)
        }
    }

    @Test func plannerEqualsTheReferenceOverSeededRichWorlds() {
        var failures = 0
        var coverage = Coverage()
        for seed in Self.seeds {
            let input = RichWorld.make(seed: seed)
            let plan = Planner.plan(input)
            coverage.add(plan)
            if let report = Self.disagreement(input, plan, label: "RichWorld.make(seed: \(seed))") {
                Issue.record(Comment(rawValue: report))
                failures += 1
                if failures == 3 { break }
            }
        }
        coverage.check()
    }

    /// `plan` and `apply` plan with `Planner.plan(releasingConnections:)`: the same plan,
    /// and the input handed back without its connections.
    @Test func releasingTheConnectionsPlansTheSame() {
        for seed in Self.seeds.prefix(20) {
            let input = RichWorld.make(seed: seed)
            var given = input
            let plan = Planner.plan(releasingConnections: &given)
            #expect(plan == Planner.plan(input), "RichWorld.make(seed: \(seed))")
            #expect(given.connections.isEmpty)
            #expect(given.users == input.users && given.reports == input.reports
                    && given.bindingGroups == input.bindingGroups)
        }
    }

    /// `plan` and `apply` begin planning from the directory alone while the reports are read
    /// (`Planner.begin`), then finish with the whole input: the same plan as planning it at
    /// once, whatever reports, problems and clock the directory part was (not) given.
    @Test func planningBegunFromTheDirectoryPlansTheSame() {
        var worlds = Self.seeds.prefix(20).map { RichWorld.make(seed: $0) }
        worlds += RandomWorld.worlds(seed: 0x5EED_00AB, count: 40)
        for (i, input) in worlds.enumerated() {
            var directory = input
            directory.reports = []
            directory.problems = [InputProblem(source: "not looked at", device: "x", message: "m")]
            directory.now = 0
            for releasing in [false, true] {
                let underway = Planner.begin(directory, releasingConnections: releasing)
                var full = input
                if releasing { full.connections = [] }
                #expect(underway.finish(full) == Planner.plan(input), "world \(i), releasing \(releasing)")
            }
        }
    }

    @Test func plannerEqualsTheReferenceOverTheWorldsOfThePropertyTests() {
        for (i, input) in RandomWorld.worlds(seed: 0x5EED_00AA, count: 100).enumerated() {
            if let report = Self.disagreement(input, Planner.plan(input), label: "RandomWorld \(i) from seed 0x5EED_00AA") {
                Issue.record(Comment(rawValue: report))
                break
            }
        }
    }
}

/// The properties of PropertyTests, on the richer worlds too.
@Suite struct RichWorldPropertyTests {
    @Test func shuffledInputGivesByteIdenticalReports() {
        var rng = SplitMix64(seed: 0x5EED_0011)
        for seed in UInt64(0)..<(ReferencePlanTests.deepSeeds ?? 100) {
            let input = RichWorld.make(seed: seed)
            let json = ReportRenderer.json(Planner.plan(input))
            let again = ReportRenderer.json(Planner.plan(RandomWorld.shuffled(input, &rng)))
            // Compared outside #expect, which would print both whole reports.
            let same = again == json
            #expect(same, "RichWorld.make(seed: \(seed)) shuffled: \(firstDifference(json, again))")
            if !same { break }
        }
    }

    /// `Plan.applied(to:)` finds a group by its DN after `DNNormalizer`, which folds case fully:
    /// `cn=straße` and `cn=STRASSE`, two entries to slapd and to the planner, are one group to
    /// it (as are two spellings of `cafe\u{301}`). Worlds with such a pair are left out here;
    /// they are still compared with the reference.
    @Test func applyingThePlanThenPlanningAgainGivesNoChanges() {
        var skipped = 0
        let seeds = UInt64(0)..<(ReferencePlanTests.deepSeeds ?? 150)
        defer { #expect(skipped * 20 < seeds.count, "\(skipped) worlds left out") }
        for seed in seeds {
            var input = RichWorld.make(seed: seed)
            if Set(input.bindingGroups.map { DNNormalizer.normalize($0.dn) }).count < Set(input.bindingGroups.map { Array($0.dn.utf8) }).count {
                skipped += 1
                continue
            }
            input.bindingGroups = Planner.plan(input).applied(to: input.bindingGroups)
            let second = Planner.plan(input)
            #expect(second.changes.isEmpty, "RichWorld.make(seed: \(seed)) applied, then planned again: \(second.changes)")
            if !second.changes.isEmpty { break }
        }
    }
}
