// The summary line's per-phase timings (issue 13), and the reports folder read while the
// directory answers without changing how a failed read ends the run.

import Foundation
import LDAPTestSupport
import Testing
@testable import TakeoverBridge

@Suite("phase timings in the summary line", .enabled(if: bridgeTestsEnabled, "needs TB_TEST_ENV (run scripts/test.sh)"))
struct PhaseTimingTests {
    func world() throws -> Scenario {
        let s = try Scenario()
        try s.addUsers([("alice", nil), ("bob", "robert")])
        try s.addDevice("mbp-alice", ["alice"])
        try s.addDevice("lab-1", ["bob"])
        try s.writeReport("mbp-alice", [("alice", 1001)], fileName: "mbp-alice.csv")
        try s.writeReport("lab-1", [("robert", 1001)], fileName: "lab-1.csv")
        return s
    }

    /// The `key=value` pairs of the one summary line.
    func summary(_ stderr: String) -> [String: String] {
        guard let line = stderr.split(separator: "\n").first(where: { $0.contains("msg=\"run finished\"") }) else { return [:] }
        var out: [String: String] = [:]
        for pair in line.split(separator: " ") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            if parts.count == 2 { out[String(parts[0])] = String(parts[1]) }
        }
        return out
    }

    @Test func everyPhaseIsTimed() throws {
        let s = try world()
        let phases = ["connect_ms", "users_ms", "devices_ms", "bindings_ms", "reports_ms", "plan_ms", "render_ms",
                      "write_ms", "duration_ms"]
        for arguments in [["plan"], ["apply"], ["explain", "alice"]] {
            let run = try s.bridge(arguments)
            #expect(run.status == 0, "\(arguments): \(run.all)")
            let pairs = summary(run.stderr)
            for key in phases {
                #expect(pairs[key].flatMap { UInt64($0) } != nil, "\(arguments): \(key) missing in \(run.stderr)")
            }
        }
        // A run that stops before planning has only the phases it reached.
        s.configOverrides["users.search_base"] = s.q("ou=nowhere," + s.people)
        let failed = try s.bridge(["plan"])
        #expect(failed.status == 5, "\(failed.all)")
        let pairs = summary(failed.stderr)
        #expect(pairs["connect_ms"] != nil && pairs["duration_ms"] != nil, "\(failed.stderr)")
        #expect(pairs["users_ms"] == nil && pairs["reports_ms"] == nil && pairs["plan_ms"] == nil, "\(failed.stderr)")
    }

    /// The reports are read while the directory answers, but a failed directory read is
    /// still what ends the run (its message, exit 5), even when the folder is missing too.
    @Test func aFailedDirectoryReadWinsOverTheReports() throws {
        let s = try world()
        s.configOverrides["users.search_base"] = s.q("ou=nowhere," + s.people)
        s.configOverrides["devices.reports"] = s.q(s.folder + "/no-such-folder")
        let run = try s.bridge(["plan"])
        #expect(run.status == 5, "\(run.all)")
        #expect(run.stderr.contains("reading users under"), "\(run.stderr)")
        #expect(!run.stderr.contains("is not a readable folder"), "\(run.stderr)")

        // With the directory read fine, the missing folder is the failure, as before.
        s.configOverrides["users.search_base"] = nil
        let missing = try s.bridge(["apply"])
        #expect(missing.status == 5, "\(missing.all)")
        #expect(missing.stderr.contains("no-such-folder is not a readable folder"), "\(missing.stderr)")
        #expect(try s.dumpBindings().components(separatedBy: "\ndn:").count <= 1, "nothing written")

        // Over max_reports_size: the same refusal, after the directory was read.
        s.configOverrides["devices.reports"] = nil
        s.configOverrides["devices.max_reports_size"] = "\"16B\""
        let over = try s.bridge(["plan"])
        #expect(over.status == 5, "\(over.all)")
        #expect(over.stderr.contains("max_reports_size"), "\(over.stderr)")
        #expect(summary(over.stderr)["users_ms"] != nil, "\(over.stderr)")
    }
}
