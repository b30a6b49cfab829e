// Unsafe state folders through the built binary against slapd: exit 78 at once, the path
// named, nothing written (the checks themselves: TakeoverBridgeUnitTests/FileSecurityTests).

import Foundation
import LDAPTestSupport
import Testing
@testable import TakeoverBridge

#if canImport(Glibc)
import Glibc
#endif

@Suite("the state folder, end to end", .enabled(if: bridgeTestsEnabled, "needs TB_TEST_ENV (run scripts/test.sh)"))
struct StateFolderIntegrationTests {
    func world() throws -> Scenario {
        let s = try Scenario()
        try s.addUsers([("st1", nil)])
        try s.addDevice("st-dev", ["st1"])
        try s.writeReport("st-dev", [("st1", 1001)], fileName: "st-dev.csv")
        return s
    }

    /// Each unsafe state folder: exit 78 at once (a deadline: a FIFO must not hang the
    /// run), the path named, nothing written to the directory or through a link.
    @Test func unsafeStateFoldersExit78() async throws {
        let s = try world()
        let elsewhere = try makeTemporaryFolder("tb-elsewhere")
        defer { cleanup(elsewhere) }
        var cases: [(String, String, () -> Void)] = [
            ("a symlinked runs", "/runs", { _ = symlink(elsewhere, s.state + "/runs") }),
            ("a FIFO at the journal", "/runs.jsonl", { _ = mkfifo(s.state + "/runs.jsonl", 0o600) }),
            ("a symlinked journal", "/runs.jsonl", { _ = symlink(elsewhere + "/journal", s.state + "/runs.jsonl") }),
            ("a FIFO at the lock", "/lock", { _ = mkfifo(s.state + "/lock", 0o600) }),
            ("a group-writable folder", "", { chmod(s.state, 0o770) }),
            ("a world-writable sticky folder", "", { chmod(s.state, 0o1777) }),
        ]
        if geteuid() == 0 {
            cases.append(("a folder owned by nobody", "", { chown(s.state, nobodyID, nobodyID) }))
        }
        try s.writeConfig()
        for (label, suffix, make) in cases {
            cleanup(s.state)
            #expect(mkdir(s.state, 0o700) == 0)
            make()
            let result = try Processes.run(BridgeExecutable.path, ["-c", s.configPath, "apply"], timeout: 20)
            #expect(result.status == 78, "\(label): \(result.all)")
            #expect(result.stderr.contains(s.state + suffix), "\(label) names the path: \(result.stderr)")
            #expect(try await s.groups().isEmpty, "\(label): nothing written")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: elsewhere).isEmpty)
        // And a safe folder works.
        cleanup(s.state)
        let ok = try Processes.run(BridgeExecutable.path, ["-c", s.configPath, "apply"], timeout: 60)
        #expect(ok.status == 0, "\(ok.all)")
    }
}
