// docs/product.md sections 4, 6 and 7 through the binary: every safety limit exits 4 and
// writes nothing, --allow-unbinds lifts the unbind limits for one run, a held lock exits
// 75 at once, the exit codes of usage and configuration errors and of directory
// failures, and the bind password in no output, log, report or run record.

import Foundation
import LDAPTestSupport
import LDAPClient
import LDAPSyntax
import TakeoverCore
import Testing
@testable import TakeoverBridge

#if canImport(Glibc)
import Glibc
#endif

@Suite("safety limits, lock, exit codes, secrets", .enabled(if: bridgeTestsEnabled, "needs TB_TEST_ENV (run scripts/test.sh)"))
struct SafetyAndExitTests {
    /// Four users bound on two devices; then everyone is disconnected (4 unbinds of 4).
    func boundWorld() throws -> Scenario {
        let s = try Scenario()
        try s.addUsers([("u1", nil), ("u2", nil), ("u3", nil), ("u4", nil)])
        try s.addDevice("d1", ["u1", "u2"])
        try s.addDevice("d2", ["u3", "u4"])
        try s.writeReport("d1", [("u1", 1001), ("u2", 1002)])
        try s.writeReport("d2", [("u3", 1003), ("u4", 1004)])
        let apply = try s.bridge(["apply"])
        #expect(apply.status == 0, "\(apply.all)")
        return s
    }

    func disconnectEveryone(_ s: Scenario) throws {
        try s.disconnect("u1", from: "d1")
        try s.disconnect("u2", from: "d1")
        try s.disconnect("u3", from: "d2")
    }

    /// Runs apply, expects exit 4, an unchanged directory, the message and the summary.
    func expectRefused(_ s: Scenario, _ arguments: [String] = ["apply"], mentioning: [String]) throws {
        let before = try s.dumpBindings()
        let result = try s.bridge(arguments)
        #expect(result.status == 4, "\(result.all)")
        #expect(try s.dumpBindings() == before, "nothing written")
        for text in mentioning {
            #expect(result.stderr.contains(text), "\(text) not in: \(result.stderr)")
        }
        #expect(result.stderr.contains("written=0"))
    }

    @Test func maxUnbindsTrips() throws {
        let s = try boundWorld()
        try disconnectEveryone(s)
        s.configOverrides["safety.max_unbinds"] = "2"
        try expectRefused(s, mentioning: ["max_unbinds = 2", "would unbind 3 of 4 bindings (75%)", "1 above",
                                          "--allow-unbinds 3"])
        // The dry run says so too.
        let plan = try s.bridge(["plan"])
        #expect(plan.status == 4, "\(plan.all)")
        #expect(plan.stderr.contains("apply would refuse"))
    }

    @Test func maxUnbindPercentTrips() throws {
        let s = try boundWorld()
        try s.disconnect("u1", from: "d1")
        s.configOverrides["safety.max_unbind_percent"] = "10"
        try expectRefused(s, mentioning: ["would unbind 1 of 4 bindings (25%), above max_unbind_percent = 10",
                                          "rerun with --allow-unbinds 1 after review"])
    }

    @Test func allowUnbindsLiftsTheLimitsForOneRun() async throws {
        let s = try boundWorld()
        try disconnectEveryone(s)
        s.configOverrides["safety.max_unbinds"] = "1"
        s.configOverrides["safety.max_unbind_percent"] = "10"
        try expectRefused(s, ["apply", "--allow-unbinds", "2"], mentioning: ["1 more than --allow-unbinds 2"])
        let allowed = try s.bridge(["apply", "--allow-unbinds", "3"])
        #expect(allowed.status == 0, "\(allowed.all)")
        let groups = try await s.groups()
        #expect(groups.flatMap(\.members) == [s.userDN("u4")])
        // Only for that run: the next unbind is limited again.
        try s.disconnect("u4", from: "d2")
        try expectRefused(s, mentioning: ["max_unbind_percent = 10"])
    }

    @Test func minUsersTrips() throws {
        let s = try boundWorld()
        s.configOverrides["safety.min_users"] = "10"
        try expectRefused(s, mentioning: ["read 4 users, 6 fewer than min_users = 10"])
    }

    @Test func emptyUserSearchTrips() throws {
        let s = try boundWorld()
        s.configOverrides["users.filter"] = s.q("(uid=nobody-by-this-name)")
        try expectRefused(s, mentioning: ["the user search returned no users while 4 bindings exist"])
    }

    /// The refused run leaves a run record too.
    @Test func refusedRunIsRecorded() throws {
        let s = try boundWorld()
        try disconnectEveryone(s)
        s.configOverrides["safety.max_unbinds"] = "0"
        try expectRefused(s, mentioning: ["max_unbinds = 0"])
        let journal = try String(contentsOfFile: s.state + "/runs.jsonl", encoding: .utf8)
        #expect(journal.split(separator: "\n").count == 2)
        #expect(journal.contains("refused: max_unbinds"))
    }

    // MARK: Lock

    @Test func secondRunExits75AtOnce() throws {
        let s = try boundWorld()
        try disconnectEveryone(s)
        let state = try StateDirectory(path: s.state)
        let lock = try state.acquireLock()
        let before = try s.dumpBindings()
        let started = Date()
        let result = try s.bridge(["apply"])
        #expect(result.status == 75, "\(result.all)")
        #expect(Date().timeIntervalSince(started) < 5)
        #expect(result.stderr.contains("holds the lock"))
        #expect(try s.dumpBindings() == before)
        lock.release()
        let after = try s.bridge(["apply"])
        #expect(after.status == 0, "\(after.all)")
    }

    /// A run killed while holding the lock does not block the next one: the lock is an
    /// flock, dropped by the kernel with its holder. (Another process holds it here, as
    /// a killed apply would have.)
    @Test func aLockLeftByAKilledRunDoesNotBlock() throws {
        let s = try boundWorld()
        _ = try StateDirectory(path: s.state)
        let holder = try Processes.spawn("/usr/bin/flock", ["--exclusive", "--close", s.state + "/lock", "/bin/sleep", "10"],
                                         captureOutput: false)
        #expect(waitUntil(seconds: 5) { (try? s.bridge(["apply"]))?.status == 75 })
        holder.kill()
        let after = try s.bridge(["apply"])
        #expect(after.status == 0, "\(after.all)")
    }

    // MARK: Exit codes

    @Test func usageErrorsExit64() throws {
        let s = try Scenario()
        try s.writeConfig()
        for arguments in [["plan", "--format", "xml"], ["apply", "--allow-unbinds", "-1"], ["apply", "--allow-unbinds", "x"],
                          ["explain"], ["frobnicate"], [], ["plan", "--nope"]] {
            let result = try Processes.run(BridgeExecutable.path, ["-c", s.configPath] + arguments)
            #expect(result.status == 64, "\(arguments): \(result.all)")
            #expect(result.stdout.isEmpty)
        }
        let help = try Processes.run(BridgeExecutable.path, ["--help"])
        #expect(help.status == 0)
        #expect(help.stdout.contains("75  another run holds the lock or the lease"))
    }

    /// Runs `arguments` with only `overrides` over the scenario's configuration and
    /// expects `status`; returns the run.
    func run(_ s: Scenario, _ arguments: [String], with overrides: [String: String], expecting status: Int32,
             sourceLocation: SourceLocation = #_sourceLocation) throws -> ProcessOutcome {
        s.configOverrides = overrides
        let result = try s.bridge(arguments)
        #expect(result.status == status, "\(result.all)", sourceLocation: sourceLocation)
        return result
    }

    @Test func configurationErrorsExit78() throws {
        let s = try Scenario()
        // Missing file.
        var result = try Processes.run(BridgeExecutable.path, ["-c", s.folder + "/absent.toml", "plan"])
        #expect(result.status == 78, "\(result.all)")
        #expect(result.stderr.contains("absent.toml"))
        // $TAKEOVER_BRIDGE_CONFIG is used without --config.
        result = try Processes.run(BridgeExecutable.path, ["plan"], environment: ["TAKEOVER_BRIDGE_CONFIG": s.folder + "/env.toml"])
        #expect(result.status == 78)
        #expect(result.stderr.contains("env.toml"))
        // An unknown key, with its line.
        result = try run(s, ["plan"], with: ["ldap.bogus_key": "1"], expecting: 78)
        #expect(result.stderr.contains("config.toml:"), "\(result.stderr)")
        // Cleartext simple bind to a host that is not loopback.
        result = try run(s, ["apply"], with: ["ldap.uri": s.q("ldap://192.0.2.1")], expecting: 78)
        #expect(result.stderr.contains("cleartext"))
        // A password file others can read.
        try s.writeFile(s.folder + "/loose.pw", "secret-loose\n", mode: 0o644)
        result = try run(s, ["plan"], with: ["ldap.bind_password_file": s.q(s.folder + "/loose.pw")], expecting: 78)
        #expect(!result.all.contains("secret-loose"))
        // A config others can write.
        s.configOverrides = [:]
        try s.writeConfig()
        chmod(s.configPath, 0o666)
        result = try Processes.run(BridgeExecutable.path, ["-c", s.configPath, "plan"])
        #expect(result.status == 78, "\(result.all)")
    }

    @Test func directoryFailuresExit5() throws {
        let s = try Scenario()
        try s.addUsers([("x1", nil)])
        // Nobody listens there.
        var result = try run(s, ["plan"], with: ["ldap.uri": s.q("ldap://127.0.0.1:9")], expecting: 5)
        #expect(result.stderr.contains("cannot connect"))
        // A refused bind.
        try s.writeFile(s.folder + "/wrong.pw", "not-the-password", mode: 0o600)
        result = try run(s, ["apply"], with: ["ldap.bind_password_file": s.q(s.folder + "/wrong.pw")], expecting: 5)
        #expect(result.stderr.contains("Invalid credentials"), "\(result.stderr)")
        #expect(!result.all.contains("not-the-password"))
        // A base that does not exist is a failure, never "no users".
        result = try run(s, ["plan"], with: ["users.search_base": s.q("ou=missing," + s.server.peopleBase)], expecting: 5)
        #expect(result.stderr.contains("No such object"), "\(result.stderr)")
        // A reports folder that is not there: a failure, not every device deferred.
        result = try run(s, ["apply"], with: ["devices.reports": s.q(s.folder + "/no-such-folder")], expecting: 5)
        #expect(result.stderr.contains("not a readable folder"))
    }

    /// The default size limit (500) stops a non-root reader's search: a failure (5),
    /// never a short list of users that would unbind the rest.
    @Test func sizeLimitIsAFailure() throws {
        let s = try Scenario()
        var ldif = ""
        for i in 0..<520 { ldif += s.userLDIF("p\(i)", uidNumber: 40_000 + i) }
        try s.add(ldif)
        s.configOverrides["ldap.bind_dn"] = s.q(s.server.readerDN)
        s.configOverrides["ldap.bind_password_file"] = s.q(try s.server.value("TB_READER_PW_FILE"))
        let result = try s.bridge(["plan"])
        #expect(result.status == 5, "\(result.all)")
        #expect(result.stderr.contains("Size limit exceeded"), "\(result.stderr)")
        #expect(result.stdout.isEmpty, "no report from partial data")
    }

    /// Conflicts alone: 3, everything else done.
    @Test func conflictsExit3AfterDoingTheRest() async throws {
        let s = try Scenario()
        try s.addUsers([("ok", nil), ("j1", "john"), ("j2", "john")])
        try s.addDevice("pc", ["ok", "j1", "j2"])
        try s.writeReport("pc", [("ok", 1001), ("john", 1002)])
        let result = try s.bridge(["apply"])
        #expect(result.status == 3, "\(result.all)")
        #expect(try await s.groups().first?.members == [s.userDN("ok")])
    }

    // MARK: The password

    /// The bind password (and a wrong one) appear in no stdout, stderr, report file,
    /// run record or undo file, whatever the command and outcome.
    @Test func passwordAppearsNowhere() throws {
        let s = try Scenario()
        try s.addUsers([("pw1", nil), ("pw2", nil)])
        try s.addDevice("pc", ["pw1", "pw2"])
        try s.writeReport("pc", [("pw1", 1001)])
        let password = try String(contentsOfFile: s.server.bindPasswordFile, encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(password.count >= 8)
        var outputs: [String] = []
        let trace = ["TAKEOVER_BRIDGE_LOG_LEVEL": "trace"]
        for arguments in [["plan"], ["plan", "--format", "json"], ["plan", "--format", "csv"], ["plan", "--format", "ldif"],
                          ["plan", "--output", s.folder + "/out.txt"], ["apply"], ["explain", "pw1"], ["doctor"]] {
            outputs.append(try s.bridge(arguments, environment: trace).all)
        }
        // Through the environment variable, and a wrong password through it.
        s.configOverrides["ldap.bind_password_file"] = ""
        s.configOverrides["ldap.bind_password_env"] = s.q("TB_GLUE_PW")
        outputs.append(try s.bridge(["apply"], environment: trace.merging(["TB_GLUE_PW": password]) { $1 }).all)
        let wrong = "Wr0ng-\(UInt32.random(in: 0...UInt32.max))"
        let refused = try s.bridge(["apply"], environment: trace.merging(["TB_GLUE_PW": wrong]) { $1 })
        #expect(refused.status == 5)
        outputs.append(refused.all)
        outputs.append(try s.bridge(["doctor"], environment: trace.merging(["TB_GLUE_PW": wrong]) { $1 }).all)

        for (index, text) in outputs.enumerated() {
            #expect(!text.contains(password), "output \(index) holds the password")
            #expect(!text.contains(wrong), "output \(index) holds the wrong password")
        }
        let files = allFileContents(s.folder).filter { !$0.path.hasSuffix("config.toml") }
        #expect(files.contains { $0.path.hasSuffix("-undo.ldif") })
        for file in files {
            #expect(!file.text.contains(password), "\(file.path) holds the password")
            #expect(!file.text.contains(wrong), "\(file.path) holds the wrong password")
        }
    }
}
