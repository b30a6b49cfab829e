// Faults: applies with the server killed at random moments. After each, the
// next apply converges to exactly the planned directory, and the members people added
// by hand are all still there.
//
// TB_FAULT_RUNS sets the number of killed applies (default 8; the figures in the
// project's notes come from TB_FAULT_RUNS=50). Seeded: TB_FAULT_SEED (default 42).

import Foundation
import LDAPTestSupport
import LDAPClient
import LDAPSyntax
import TakeoverCore
import Testing
import TestSupport
@testable import TakeoverBridge

#if canImport(Glibc)
import Glibc
#endif

@Suite("faults: the server killed during applies", .enabled(if: bridgeTestsEnabled, "needs TB_TEST_ENV (run scripts/test.sh)"))
struct FaultTests {
    @Test func applyWithTheServerKilledAtRandomMomentsConverges() async throws {
        let environment = ProcessInfo.processInfo.environment
        let runs = Int(environment["TB_FAULT_RUNS"] ?? "") ?? 8
        var rng = SplitMix64(seed: UInt64(environment["TB_FAULT_SEED"] ?? "") ?? 42)
        let server = try TestDirectory.startPrivate()
        defer { try? server.stop() }
        let s = try Scenario(server: server)
        s.configOverrides["safety.max_unbinds"] = "1000000"
        s.configOverrides["ldap.timeout"] = "3"

        let devices = 20, pool = 120, users = 1200
        try s.addUsers((0..<users).map { ("f\($0)", nil) })
        var candidates: [[Int]] = []
        for d in 0..<devices {
            let first = (d * 60) % users
            candidates.append((0..<pool).map { (first + $0) % users })
            try s.addDevice("fd\(d)", [])
            try s.writeReport("fd\(d)", candidates[d].map { ("f\($0)", 2000 + $0) }, fileName: "fd\(d).csv")
        }

        // Members people added by hand to the binding groups: never to be lost.
        var personMade: [String: [String]] = [:]
        func connectRandomly() throws -> [Set<String>] {
            var wanted: [Set<String>] = []
            var ldif = ""
            for d in 0..<devices {
                var set = Set<String>()
                for u in candidates[d] where rng.next() % 2 == 0 { set.insert(s.userDN("f\(u)")) }
                if set.isEmpty { set.insert(s.userDN("f\(candidates[d][0])")) }
                wanted.append(set)
                ldif += LDIF.line("dn", s.deviceDN("fd\(d)")) + "changetype: modify\nreplace: member\n"
                for dn in set.sorted() { ldif += LDIF.line("member", dn) }
                ldif += "-\n\n"
            }
            try s.modify(ldif)
            return wanted
        }

        func verify(_ wanted: [Set<String>], _ label: String) async throws {
            let groups = try await s.groups()
            #expect(groups.count == devices, "\(label)")
            for d in 0..<devices {
                guard let group = groups.first(where: { $0.device == "fd\(d)" }) else {
                    Issue.record("\(label): no group fd\(d)")
                    continue
                }
                let members = Set(group.members)
                let people = Set(personMade["fd\(d)"] ?? [])
                #expect(people.isSubset(of: members), "\(label): a member added by a person was lost on fd\(d)")
                #expect(members.subtracting(people) == wanted[d], "\(label): fd\(d) has the wrong members")
                #expect(group.records.count == wanted[d].count, "\(label): fd\(d) has the wrong records")
            }
        }

        var wanted = try connectRandomly()
        #expect(try s.bridge(["apply"]).status == 0)
        for d in 0..<devices {
            let dns = ["cn=by-hand-\(d),\(s.people)", s.userDN("f\((candidates[d][0] + users / 2) % users)")]
            personMade["fd\(d)"] = dns
            var ldif = LDIF.line("dn", s.groupDN("fd\(d)")) + "changetype: modify\nadd: member\n"
            for dn in dns { ldif += LDIF.line("member", dn) }
            try s.modify(ldif + "-\n\n")
        }
        try await verify(wanted, "before the faults")

        var outcomes: [Int32: Int] = [:]
        var reconnected = 0
        var killedDuring = 0
        var durations: [Int] = []
        let started = Date()
        for run in 0..<runs {
            wanted = try connectRandomly()
            let delay = UInt32(rng.next() % 350_000)
            let downFor = UInt32(50_000 + rng.next() % 400_000)
            let victim = server
            let killer = Thread {
                usleep(delay)
                victim.kill(signal: SIGKILL)
                usleep(downFor)
                _ = try? victim.restart()
            }
            killer.start()
            let result = try s.bridge(["apply"])
            while !killer.isFinished { usleep(10_000) }
            outcomes[result.status, default: 0] += 1
            if let range = result.stderr.range(of: "duration_ms=") {
                durations.append(Int(result.stderr[range.upperBound...].prefix { $0.isNumber }) ?? 0)
            }
            #expect([0, 5].contains(result.status), "run \(run): \(result.stderr.suffix(1500))")
            if result.stderr.contains("msg=reconnected") { reconnected += 1 }
            if result.status == 5 || result.stderr.contains("connection lost") { killedDuring += 1 }

            // The next run converges, whatever happened.
            let again = try s.bridge(["apply"])
            #expect(again.status == 0, "run \(run), the apply after: \(again.stderr.suffix(1500))")
            let check = try s.bridge(["plan", "--check"])
            #expect(check.status == 0, "run \(run): \(check.stderr.suffix(800))")
            try await verify(wanted, "after run \(run)")
        }
        let seconds = Date().timeIntervalSince(started)
        print("fault runs: \(runs) in \(Int(seconds)) s; exit codes \(outcomes.sorted { $0.key < $1.key }); "
            + "interrupted by the kill \(killedDuring), reconnected and finished \(reconnected); "
            + "apply durations ms \(durations.sorted())")
    }
}
