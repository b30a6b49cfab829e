// The verification side: what cron relies on (docs/product.md section 6), shown with
// the built `takeover-bridge` binary against real slapd servers.
//
// - Safety limits: max_unbinds, max_unbind_percent, min_users and an empty user search
//   stop the run before the first write (exit 4), say which limit and by how much, and
//   leave the whole tree byte-identical (operational attributes included);
//   `--allow-unbinds N` lifts the unbind limits for one run only.
// - One run at a time: a held lock makes a second apply exit 75 at once; a lock whose
//   holder was killed blocks nobody.
// - Run records: the undo LDIF of an apply, applied with ldapmodify, restores the tree.
// - Faults: unreachable server, refused bind, size limit, timeout, server killed in the
//   middle of an apply (exit 5 listing what was written; the next run converges), an
//   apply killed in the middle of its writes (nothing left in runs/), and a short run of
//   scripts/fault-test.sh.
// - Concurrent edits by a person during a big apply survive.
//
// Every suite here starts a private slapd of its own (`TestDirectory.privateServer()`,
// stopped when the test process exits) and runs its tests one at a time, so killing,
// pausing and whole-tree comparisons never meet another test. The tests run under
// scripts/test.sh (TB_TEST_ENV set), like every other server test.
//
// `Scenario.world(on:)`, `expectStatus` and `uids` are shared by
// SecurityIntegrationTests.swift and BadInputTests.swift.

import Foundation
import LDAPClient
import LDAPSyntax
import LDAPTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

// MARK: - Support

let safetyServerTestsEnabled = TestDirectory.isConfigured

/// Lines of `text` that contain `needle`.
func lines(_ text: String, containing needle: String) -> [String] {
    text.split(separator: "\n").map(String.init).filter { $0.contains(needle) }
}

// MARK: - Support: one test's world

extension Scenario {
    /// One test's world on a suite's private server, over plain ldap://.
    static func world(on server: TestDirectory, layout: Layout = .project) throws -> Scenario {
        let world = try Scenario("w", on: server, layout: layout, overTLS: false)
        world.configDefaults = ["ldap.timeout": "20", "safety.max_unbinds": "1000", "users.local_account_attribute": ""]
        return world
    }

    /// A world with `users`, each device connecting its users and reporting every user (or,
    /// without `reportEveryUser`, its own); with `apply`, applied once (every pair taken over).
    static func world(on server: TestDirectory, users: [String], devices: [(String, [String])],
                      reportEveryUser: Bool = true, apply: Bool = true,
                      sourceLocation: SourceLocation = #_sourceLocation) throws -> Scenario {
        let world = try Scenario.world(on: server)
        try world.addUsers(users)
        for (device, connected) in devices {
            try world.addDevice(device, connected)
            try world.writeReport(device, accounts: reportEveryUser ? users : connected)
        }
        if apply { expectStatus(try world.bridge(["apply"]), 0, "first apply", sourceLocation: sourceLocation) }
        return world
    }

    /// The same with users u01...u`users` and devices connecting ranges of them.
    static func world(on server: TestDirectory, users: Int, devices: [(String, ClosedRange<Int>)],
                      apply: Bool = true, sourceLocation: SourceLocation = #_sourceLocation) throws -> Scenario {
        try world(on: server, users: uids(1...users), devices: devices.map { ($0.0, uids($0.1)) }, apply: apply,
                  sourceLocation: sourceLocation)
    }
}

/// `#expect` on a bridge run's exit status, printing its output when it differs.
func expectStatus(_ outcome: ProcessOutcome, _ expected: Int32, _ what: String,
                  sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(outcome.status == expected && !outcome.signalled, "\(what): \(outcome)", sourceLocation: sourceLocation)
}

/// Users u01...uNN.
func uids(_ range: ClosedRange<Int>, prefix: String = "u") -> [String] {
    range.map { String(format: "\(prefix)%02d", $0) }
}

// MARK: - The parent suite

/// The suites below run one test at a time: each starts private servers and loads thousands
/// of entries, and several measure time (a lock refused "at once", a timeout "within
/// bounds"); run serially they neither crowd the other targets' timing-sensitive tests
/// nor get crowded by them. Its traits (serialized, the TB_TEST_ENV condition) hold for
/// every suite nested in it.
@Suite("safety, security, bad input: the binary against private servers, one test at a time", .serialized,
       .enabled(if: safetyServerTestsEnabled, "needs TB_TEST_ENV (run scripts/test.sh)"))
struct SerializedServerTests {}

// MARK: - Safety limits

extension SerializedServerTests {
    @Suite("safety limits trip before the first write")
    struct SafetyLimitTests {
        static let server = TestDirectory.privateServer()

        /// 12 users on lab-01 and 3 on lab-02, all taken over: 15 bindings.
        func boundWorld() throws -> Scenario {
            let world = try Scenario.world(on: try Self.server.get(), users: 14, devices: [("lab-01", 1...12), ("lab-02", 1...3)])
            #expect(try world.members()["lab-01"]?.count == 12)
            return world
        }

        /// `apply` and `apply --allow-unbinds 1000` both exit 4 saying each of `fragments`
        /// and write nothing; returns the unchanged dump.
        @discardableResult
        func expectRefusedEvenWithAllowUnbinds(_ world: Scenario, saying fragments: [String]) throws -> String {
            let server = try Self.server.get()
            let before = try server.dump(operational: true)
            for arguments in [["apply"], ["apply", "--allow-unbinds", "1000"]] {
                let refused = try world.bridge(arguments)
                expectStatus(refused, 4, arguments.joined(separator: " "))
                for fragment in fragments { #expect(refused.stderr.contains(fragment), "\(refused)") }
                #expect(try server.dump(operational: true) == before, "\(arguments) wrote something")
            }
            return before
        }

        @Test func maxUnbindsStopsTheRunAndAllowUnbindsLiftsItForOneRun() throws {
            let world = try boundWorld()
            let server = try Self.server.get()
            world.configOverrides["safety.max_unbinds"] = "3"
            try world.disconnect(uids(1...4), from: "lab-01")
            try world.connect(["u13"], to: "lab-01")  // a pending add: not written either
            let before = try server.dump(operational: true)

            let refused = try world.bridge(["apply"])
            expectStatus(refused, 4, "apply past max_unbinds")
            #expect(refused.stderr.contains("limit=max_unbinds"), "\(refused)")
            #expect(refused.stderr.contains("would unbind 4 of 15 bindings"), "\(refused)")
            #expect(refused.stderr.contains("1 above max_unbinds = 3"), "\(refused)")
            #expect(refused.stderr.contains("--allow-unbinds 4"), "\(refused)")
            #expect(refused.stderr.contains("written=0"), "\(refused)")
            #expect(try server.dump(operational: true) == before, "a refused apply wrote something")
            #expect(world.journalLines().last?.contains("refused") == true, "the refusal leaves a run record")

            // Too small an allowance is refused the same way, naming the allowance.
            let tooFew = try world.bridge(["apply", "--allow-unbinds", "3"])
            expectStatus(tooFew, 4, "apply --allow-unbinds 3")
            #expect(tooFew.stderr.contains("1 more than --allow-unbinds 3"), "\(tooFew)")
            #expect(try server.dump(operational: true) == before)

            let allowed = try world.bridge(["apply", "--allow-unbinds", "4"])
            expectStatus(allowed, 0, "apply --allow-unbinds 4")
            let members = try world.members()
            #expect(members["lab-01"] == Set(uids(5...13).map(world.userDN)))
            #expect(members["lab-02"] == Set(uids(1...3).map(world.userDN)))

            // For one run only: the next run without it trips again.
            try world.disconnect(uids(5...8), from: "lab-01")
            let after = try server.dump(operational: true)
            let again = try world.bridge(["apply"])
            expectStatus(again, 4, "the next apply without --allow-unbinds")
            #expect(again.stderr.contains("would unbind 4 of 12 bindings"), "\(again)")
            #expect(try server.dump(operational: true) == after)
        }

        @Test func maxUnbindPercentStopsTheRun() throws {
            let world = try boundWorld()
            let server = try Self.server.get()
            world.configOverrides["safety.max_unbind_percent"] = "10"
            world.configOverrides["safety.max_unbinds"] = "100"
            try world.disconnect(["u01", "u02"], from: "lab-01")
            try world.disconnect(["u01"], from: "lab-02")
            let before = try server.dump(operational: true)

            let refused = try world.bridge(["apply"])
            expectStatus(refused, 4, "apply past max_unbind_percent")
            #expect(refused.stderr.contains("limit=max_unbind_percent"), "\(refused)")
            #expect(refused.stderr.contains("would unbind 3 of 15 bindings (20%), above max_unbind_percent = 10"), "\(refused)")
            #expect(!refused.stderr.split(separator: "\n").contains { $0.hasSuffix("limit=max_unbinds") || $0.contains("limit=max_unbinds ") },
                    "only the percentage tripped: \(refused)")
            #expect(try server.dump(operational: true) == before)

            // One unbind of 15 (6.7%) is within the limit.
            try world.connect(["u01", "u02"], to: "lab-01")
            let within = try world.bridge(["apply"])
            expectStatus(within, 0, "apply with 1 of 15 unbinds")
            #expect(try world.members()["lab-02"] == Set(["u02", "u03"].map(world.userDN)))
        }

        @Test func tooFewUsersStopsTheRunEvenWithAllowUnbinds() throws {
            let world = try boundWorld()
            // A filter edited by mistake: 9 of 14 users match.
            world.configOverrides["users.filter"] = world.q("(&(objectClass=posixAccount)(uid=u0*))")
            world.configOverrides["safety.min_users"] = "10"
            try expectRefusedEvenWithAllowUnbinds(world, saying: ["limit=min_users",
                "read 9 users, 1 fewer than min_users = 10, while 15 bindings exist"])
        }

        @Test func anEmptyUserSearchWhileBindingsExistIsRefused() throws {
            let world = try boundWorld()
            let server = try Self.server.get()
            // An empty OU (a wrong search_base), with min_users = 0 so only this rule can refuse.
            let empty = "ou=empty-\(world.name),ou=people,\(server.base)"
            try server.add("dn: \(empty)\nobjectClass: organizationalUnit\nou: empty-\(world.name)\n\n")
            world.configOverrides["users.search_base"] = world.q(empty)
            world.configOverrides["safety.min_users"] = "0"
            let before = try expectRefusedEvenWithAllowUnbinds(world, saying: ["limit=empty-user-search",
                "the user search returned no users while 15 bindings exist"])

            // A search base that does not exist is an LDAP error: a failure (5), never "no users".
            world.configOverrides["users.search_base"] = world.q("ou=nowhere,\(server.base)")
            let missing = try world.bridge(["apply"])
            expectStatus(missing, 5, "apply with a missing search base")
            #expect(missing.stderr.contains("No such object"), "\(missing)")
            #expect(try server.dump(operational: true) == before)
        }
    }
}

// MARK: - Lock and run records

extension SerializedServerTests {
    @Suite("one run at a time; run records undo exactly")
    struct LockAndRunRecordTests {
        static let server = TestDirectory.privateServer()

        func smallWorld() throws -> Scenario {
            try Scenario.world(on: try Self.server.get(), users: 6, devices: [("desk-1", 1...3)], apply: false)
        }

        /// Holds an exclusive flock on `path` from a child process (one process: a SIGKILL
        /// releases it).
        func holdLock(_ path: String) throws -> ChildProcess {
            let holder = try Processes.spawn("/bin/bash", ["-c", "exec 9>>\"$1\" && flock -x 9 && exec sleep 120", "holder", path])
            let held = waitUntil(seconds: 20) {
                (try? Processes.run("flock", ["-n", "-x", path, "true"]).status) == 1
            }
            #expect(held, "the child did not take the lock")
            return holder
        }

        @Test func aHeldLockMakesTheSecondApplyExit75AtOnce() throws {
            let world = try smallWorld()
            let server = try Self.server.get()
            expectStatus(try world.bridge(["apply"]), 0, "first apply")  // creates the state folder
            try world.connect(["u04"], to: "desk-1")

            let holder = try holdLock(world.state + "/lock")
            let before = try server.dump(operational: true)
            let second = try world.bridge(["apply"])
            expectStatus(second, 75, "apply while another holds the lock")
            #expect(second.seconds < 5, "it must not wait for the lock: \(second.seconds) s")
            #expect(second.stderr.contains("another takeover-bridge run holds the lock"), "\(second)")
            #expect(try server.dump(operational: true) == before, "a locked-out apply wrote something")

            // The holder dies without releasing anything: the lock does not outlive it.
            kill(holder.pid, SIGKILL)
            _ = holder.finish(timeout: 10)
            let next = try world.bridge(["apply"])
            expectStatus(next, 0, "apply after the holder was killed")
            #expect(try world.members()["desk-1"]?.contains(world.userDN("u04")) == true)
        }

        @Test func aRunningApplyHoldsTheLockAndAKilledOneDoesNotBlock() throws {
            let world = try smallWorld()
            let server = try Self.server.get()
            world.configOverrides["ldap.timeout"] = "120"
            try world.writeConfig()

            // The first apply hangs on a paused server while holding the lock.
            server.pause()
            defer { server.resume() }
            let first = try world.startBridge(["apply"])
            let lock = world.state + "/lock"
            let holding = waitUntil(seconds: 20) {
                FileManager.default.fileExists(atPath: lock)
                    && (try? Processes.run("flock", ["-n", "-x", lock, "true"]).status) == 1
            }
            #expect(holding, "the first apply did not take the lock")

            let second = try world.bridge(["apply"])
            expectStatus(second, 75, "apply while a running apply holds the lock")
            #expect(second.seconds < 5, "it must not wait: \(second.seconds) s")
            #expect(second.stderr.contains("pid \(first.pid)") || second.stderr.contains("pid=\(first.pid)"),
                    "the message names the holder: \(second)")

            // The holder is killed (a cron job killed by a reboot or the OOM killer).
            kill(first.pid, SIGKILL)
            let killed = first.finish(timeout: 10)
            #expect(killed.signalled)
            server.resume()
            let third = try world.bridge(["apply"])
            expectStatus(third, 0, "apply after the lock holder was killed")
            #expect(try world.members()["desk-1"] == Set(uids(1...3).map(world.userDN)))
        }

        @Test func theUndoFileRestoresTheDirectoryExactly() throws {
            let world = try smallWorld()
            let server = try Self.server.get()
            try world.addUsers(uids(7...9))
            try world.addDevice("desk-2", ["u04", "u05"])
            try world.writeReport("desk-2", accounts: uids(1...9))
            expectStatus(try world.bridge(["apply"]), 0, "first apply")

            // A run with every kind of change: a new group (add-entry), members and records
            // added to and removed from existing groups, a user who left the directory.
            try world.disconnect(["u02"], from: "desk-1")
            try world.connect(["u06", "u07"], to: "desk-1")
            try world.addDevice("desk-3", ["u08", "u09"])
            try world.writeReport("desk-3", accounts: ["u08"])
            try server.root("ldapdelete", [world.userDN("u05")])
            let before = try server.dump()

            let applied = try world.bridge(["apply"])
            expectStatus(applied, 0, "the apply")
            let after = try server.dump()
            #expect(after != before)
            let record = try world.lastRunRecord()
            #expect(record.line.contains("\"outcome\":\"ok\""), "\(record.line)")
            let recordText = try String(contentsOfFile: record.record, encoding: .utf8)
            for dn in [world.groupDN("desk-1"), world.groupDN("desk-2"), world.groupDN("desk-3")] {
                #expect(recordText.contains("dn: \(dn)"), "the record lists \(dn)")
            }

            // The undo, applied as the service account (it writes under ou=bindings only).
            let auth = ["-x", "-H", server.ldapURI, "-D", server.bindDN, "-y", server.bindPasswordFile]
            let undo = try Processes.run("ldapmodify", auth + ["-f", record.undo])
            #expect(undo.status == 0, "ldapmodify -f undo: \(undo)")
            // The run lease stays (given back, free): bookkeeping, not part of the run's writes.
            #expect(withoutRunLease(try server.dump()) == withoutRunLease(before),
                    "the undo did not restore the directory")

            // And the record itself redoes the run.
            let redo = try Processes.run("ldapmodify", auth + ["-f", record.record])
            #expect(redo.status == 0, "ldapmodify -f record: \(redo)")
            #expect(try server.dump() == after)
        }
    }
}

// MARK: - Faults

extension SerializedServerTests {
    @Suite("faults: failures are exit 5, never 'no entries'; the next run converges")
    struct FaultExitTests {
        static let server = TestDirectory.privateServer()

        func boundWorld(users: Int = 8) throws -> Scenario {
            try Scenario.world(on: try Self.server.get(), users: users, devices: [("lab-9", 1...4)])
        }

        @Test func anUnreachableServerIsExit5WithAClearMessage() throws {
            let world = try boundWorld()
            let port = closedPort()
            world.configOverrides["ldap.uri"] = world.q("ldap://127.0.0.1:\(port)")
            for command in [["apply"], ["plan"], ["explain", "u01"]] {
                let outcome = try world.bridge(command, timeout: 60)
                expectStatus(outcome, 5, "\(command) against a closed port")
                #expect(outcome.seconds < 30)
                #expect(outcome.stderr.contains("cannot connect to ldap://127.0.0.1:\(port)"), "\(outcome)")
                #expect(outcome.stderr.contains("Can't contact LDAP server"), "\(outcome)")
            }
            #expect(world.journalLines().last?.contains("failed") == true, "a failed apply leaves a run record")
        }

        @Test func aRefusedBindIsExit5WithoutThePassword() throws {
            let world = try boundWorld()
            let wrong = "Wr0ng-\(UUID().uuidString)"
            try world.writeFile(world.passwordFile, wrong + "\n", mode: 0o600)
            for command in [["apply"], ["plan"], ["doctor"]] {
                let outcome = try world.bridge(command)
                #expect(outcome.status == 5 && !outcome.signalled, "\(command) with a wrong password: \(outcome)")
                #expect(outcome.all.contains("Invalid credentials"), "\(outcome)")
                #expect(!outcome.all.contains(wrong), "the password was printed by \(command)")
            }
        }

        /// The read-only account has the default size limit (500): a search past it must be
        /// a failure, never a short list of users that would unbind the rest.
        @Test(arguments: ["1000", "100"]) func aSizeLimitIsAFailureNeverNoEntries(pageSize: String) throws {
            let server = try Self.server.get()
            // The bound users are the last ones created: a truncated read would miss them
            // (the first apply is the service account's, unlimited).
            let world = try Scenario.world(on: server, users: uids(1...620, prefix: "m"),
                                           devices: [("big-1", uids(601...620, prefix: "m"))], reportEveryUser: false)
            #expect(try world.members()["big-1"]?.count == 20)

            let reader = server
            try world.writeFile(world.passwordFile, try String(contentsOfFile: reader.values["TB_READER_PW_FILE"] ?? "",
                                                               encoding: .utf8), mode: 0o600)
            world.configOverrides["ldap.bind_dn"] = world.q(reader.readerDN)
            world.configOverrides["ldap.page_size"] = pageSize
            world.configOverrides["safety.min_users"] = "0"
            let before = try server.dump(operational: true)
            for command in [["apply"], ["plan", "--format", "json"]] {
                let outcome = try world.bridge(command)
                expectStatus(outcome, 5, "\(command) past the size limit (page_size \(pageSize))")
                // apply takes its lease only to write, after reading: the read
                // fails first, for apply as for plan.
                #expect(outcome.stderr.contains("Size limit exceeded"), "\(outcome)")
                #expect(!outcome.stdout.contains("\"decisions\""), "a plan was printed from a truncated read: \(outcome)")
            }
            #expect(try server.dump(operational: true) == before)
        }

        @Test func aTimeoutIsExit5WithinBounds() throws {
            let world = try boundWorld()
            let server = try Self.server.get()
            world.configOverrides["ldap.timeout"] = "2"
            try world.connect(["u05"], to: "lab-9")
            server.pause()
            var outcomes: [ProcessOutcome] = []
            for command in [["apply"], ["plan"]] {
                outcomes.append(try world.bridge(command, timeout: 90))
            }
            server.resume()
            for outcome in outcomes {
                expectStatus(outcome, 5, "a run against a paused server")
                #expect(outcome.seconds < 30, "timeout = 2 s, but the run took \(outcome.seconds) s")
                #expect(outcome.stderr.lowercased().contains("timed out") || outcome.stderr.lowercased().contains("timeout"),
                        "\(outcome)")
            }
            // The server is back: the next run does the pending work.
            let next = try world.bridge(["apply"])
            expectStatus(next, 0, "apply after the server came back")
            #expect(try world.members()["lab-9"]?.contains(world.userDN("u05")) == true)
        }

        /// A server that stops answering in the middle of the paged user search: a failure
        /// (exit 5) naming the read, never a short list of users.
        @Test func aTimeoutInTheMiddleOfTheReadIsAFailure() throws {
            let server = try Self.server.get()
            let world = try Scenario.world(on: server, users: uids(1...9000, prefix: "r"),
                                           devices: [("read-1", uids(2991...3000, prefix: "r"))], reportEveryUser: false)
            try world.disconnect(["r2991"], from: "read-1")
            // One entry per page: the user search alone takes thousands of round trips (9,000
            // users: the client reads 3,000 of them in about 0.3 s, before the pause).
            world.configOverrides["ldap.page_size"] = "1"
            world.configOverrides["ldap.timeout"] = "2"
            let before = try server.dump(operational: true)
            let apply = try world.startBridge(["apply"])
            usleep(400_000)
            server.pause()
            let outcome = apply.finish(timeout: 120)
            server.resume()
            expectStatus(outcome, 5, "apply with the server stopped during the read")
            #expect(outcome.seconds < 30, "timeout = 2 s, but the run took \(outcome.seconds) s")
            #expect(outcome.stderr.contains("reading users under"), "the failure names the read: \(outcome)")
            #expect(try server.dump(operational: true) == before)

            world.configOverrides["ldap.page_size"] = "500"
            expectStatus(try world.bridge(["apply"]), 0, "apply after the server came back")
            #expect(try world.members()["read-1"] == Set(uids(2992...3000, prefix: "r").map(world.userDN)))
        }

        /// 900 devices with 1-2 users each and a report for each: a first apply adds 900
        /// entries, one after another. The bindings the tree must end with.
        func manyDevicesWorld(_ world: Scenario, on server: TestDirectory) throws -> [String: Set<String>] {
            let users = uids(1...300, prefix: "k")
            try world.addUsers(users)
            var expected: [String: Set<String>] = [:]
            var ldif = ""
            for i in 0..<900 {
                let device = String(format: "pc-%04d", i)
                let connected = i % 3 == 0 ? [users[i % 300], users[(i * 7 + 1) % 300]] : [users[i % 300]]
                expected[device] = Set(connected.map(world.userDN))
                ldif += "dn: \(world.deviceDN(device))\nobjectClass: groupOfNames\ncn: \(device)\n"
                    + connected.map { "member: \(world.userDN($0))\n" }.joined() + "\n"
            }
            try server.add(ldif)
            var csv = "device,username,uid,home,full_name,shell,reported_at\n"
            let time = ISO8601DateFormatter().string(from: Date().addingTimeInterval(-600))
            for device in expected.keys.sorted() {
                csv += "\(device),root,0,/root,,/bin/bash,\(time)\n"
            }
            try world.writeFile(world.reports + "/all.csv", csv, mode: 0o644)
            return expected
        }

        /// Waits (up to a minute) until the apply has written its first binding groups.
        func waitForWrites(_ world: Scenario, on server: TestDirectory) -> Bool {
            waitUntil(seconds: 60) {
                let out = try? server.root("ldapsearch", ["-LLL", "-b", world.bindings, "-s", "one", "(cn=*)", "1.1"])
                return (out?.components(separatedBy: "dn:").count ?? 0) > 20
            }
        }

        @Test func aServerKilledMidApplyIsExit5ListingWhatWasWritten() throws {
            let world = try Scenario.world(on: try Self.server.get())
            let server = try Self.server.get()
            let expected = try manyDevicesWorld(world, on: server)

            let apply = try world.startBridge(["apply"])
            // Kill the server once the first groups are there.
            let started = waitForWrites(world, on: server)
            server.killHard()
            let outcome = apply.finish(timeout: 120)
            try server.restart()
            #expect(started, "the apply never started writing")
            expectStatus(outcome, 5, "apply with the server killed")
            #expect(outcome.seconds < 60, "bounded retries, then give up: it took \(outcome.seconds) s")
            let summary = lines(outcome.stderr, containing: "changes (")
            #expect(summary.contains { $0.contains("wrote ") && $0.contains(" of ") }, "no 'wrote N of M' line: \(outcome)")
            let written = lines(outcome.stderr, containing: "msg=written")
            #expect(!written.isEmpty, "what was written is listed: \(outcome)")
            #expect(outcome.stderr.contains("the next run converges"), "\(outcome)")

            // What it says it wrote is there after the restart.
            let groups = try world.members()
            for line in written.prefix(50) {
                if let range = line.range(of: "add-entry cn=") {
                    let device = line[range.upperBound...].prefix { $0 != "," }
                    #expect(groups[String(device)] != nil, "listed as written but missing: \(line)")
                }
            }
            let record = try world.lastRunRecord()
            #expect(record.line.contains("\"outcome\":\"failed"), "\(record.line)")

            // The next run converges to exactly the right bindings.
            let next = try world.bridge(["apply"])
            expectStatus(next, 0, "apply after the restart")
            expectStatus(try world.bridge(["plan", "--check"]), 0, "plan --check after convergence")
            #expect(try world.members() == expected)
        }

        /// An apply killed in the middle of its writes (a reboot, the OOM killer) leaves no
        /// file in runs/: its record was being drafted in a file without a name, which the
        /// kernel drops with the process. The next run converges and records as usual.
        @Test func anApplyKilledMidWritesLeavesNothingInRuns() throws {
            let server = try Self.server.get()
            let world = try Scenario.world(on: server)
            let expected = try manyDevicesWorld(world, on: server)
            let runs = world.state + "/runs"
            let before = (try? FileManager.default.contentsOfDirectory(atPath: runs)) ?? []
            let journalBefore = world.journalLines()

            let apply = try world.startBridge(["apply"])
            let started = waitForWrites(world, on: server)
            // Frozen first, so what it holds open can be looked at before it dies.
            kill(apply.pid, SIGSTOP)
            var draft: [String] = []
            if getuid() == 0 {  // the bridge makes itself non-dumpable: only root reads its fds
                let fds = "/proc/\(apply.pid)/fd"
                let runsPath = URL(fileURLWithPath: runs).resolvingSymlinksInPath().path
                for fd in (try? FileManager.default.contentsOfDirectory(atPath: fds)) ?? [] {
                    if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: fds + "/" + fd),
                       target.hasPrefix(runsPath + "/"), target.hasSuffix(" (deleted)") {
                        draft.append(target)
                    }
                }
            }
            kill(apply.pid, SIGKILL)
            let outcome = apply.finish(timeout: 30)
            #expect(started, "the apply never started writing")
            #expect(outcome.signalled, "the apply was not killed: \(outcome)")
            if getuid() == 0 {
                #expect(draft.count == 1, "one unnamed draft in runs/ while writing: \(draft)")
            }
            let after = (try? FileManager.default.contentsOfDirectory(atPath: runs)) ?? []
            #expect(after.sorted() == before.sorted(), "the killed apply left files in runs/: \(Set(after).subtracting(before))")
            #expect(world.journalLines() == journalBefore, "the killed apply wrote a journal line")

            // The next run converges, with its record named as usual.
            expectStatus(try world.bridge(["apply"]), 0, "apply after the killed one")
            #expect(try world.members() == expected)
            let record = try world.lastRunRecord()
            #expect(record.line.contains("\"outcome\":\"ok\""), "\(record.line)")
            #expect(FileManager.default.fileExists(atPath: record.record) && FileManager.default.fileExists(atPath: record.undo))
            let named = try FileManager.default.contentsOfDirectory(atPath: runs).filter { !before.contains($0) }
            #expect(Set(named) == [URL(fileURLWithPath: record.record).lastPathComponent,
                                   URL(fileURLWithPath: record.undo).lastPathComponent], "\(named)")
        }

        @Test func theFaultScriptPassesAShortRun() throws {
            let outcome = try Processes.run("/bin/bash", [(TestDirectory.packageRoot + "/scripts") + "/fault-test.sh", "--runs", "6",
                                                          "--users", "80", "--devices", "40", "--seed", "4242",
                                                          "--bin", BridgeExecutable.path], timeout: 400)
            expectStatus(outcome, 0, "scripts/fault-test.sh --runs 6")
            let last = outcome.stdout.split(separator: "\n").last.map(String.init) ?? ""
            #expect(last.hasSuffix("passed, 0 failed"), "\(outcome)")
            #expect(outcome.stdout.contains("runs: 6;"), "\(outcome)")
        }
    }
}

// MARK: - Concurrent edits

extension SerializedServerTests {
    @Suite("a person's edits during an apply survive")
    struct ConcurrentEditTests {
        static let server = TestDirectory.privateServer()

        @Test(arguments: Scenario.Layout.allCases) func editsDuringABigApplySurvive(layout: Scenario.Layout) throws {
            let server = try Self.server.get()
            let world = try Scenario.world(on: server, layout: layout)
            let users = uids(1...900, prefix: "c")
            try world.addUsers(users)
            // 300 devices with 2 users each, then a reorganisation: 3 more users each, 1 less.
            var ldif = ""
            var expected: [String: Set<String>] = [:]
            for i in 0..<300 {
                let device = String(format: "host-%03d", i)
                let connected = [users[i], users[i + 300]]
                expected[device] = Set(connected.map(world.userDN))
                ldif += "dn: \(world.deviceDN(device))\nobjectClass: groupOfNames\ncn: \(device)\n"
                    + connected.map { "member: \(world.userDN($0))\n" }.joined() + "\n"
            }
            try server.add(ldif)
            let time = ISO8601DateFormatter().string(from: Date().addingTimeInterval(-600))
            var csv = "device,username,uid,home,full_name,shell,reported_at\n"
            for device in expected.keys.sorted() { csv += "\(device),root,0,/root,,/bin/bash,\(time)\n" }
            try world.writeFile(world.reports + "/all.csv", csv, mode: 0o644)
            expectStatus(try world.bridge(["apply"]), 0, "first apply")

            var change = ""
            for i in 0..<300 {
                let device = String(format: "host-%03d", i)
                let added = [users[(i + 1) % 300 + 600], users[(i + 2) % 300 + 600], users[(i + 3) % 300 + 600]]
                change += "dn: \(world.deviceDN(device))\nchangetype: modify\nadd: member\n"
                    + added.map { "member: \(world.userDN($0))\n" }.joined()
                    + "-\ndelete: member\nmember: \(world.userDN(users[i]))\n-\n\n"
                expected[device] = expected[device, default: []].subtracting([world.userDN(users[i])])
                    .union(added.map(world.userDN))
            }
            try server.modify(change)

            // The person: as the rootdn, one ldapmodify per edit, round-robin over the groups:
            // adds an unrelated member and a description; every third edit removes the member
            // added two edits before. Each line of the log is written after its edit succeeded.
            let log = world.folder + "/person.log"
            let stop = world.folder + "/stop"
            let script = """
                set -u
                i=0
                while [ ! -e "$STOP" ]; do
                  i=$((i + 1))
                  g=$(printf 'host-%03d' $(( (i * 37) % 300 )))
                  v="cn=person-$i,ou=services,$BASE"
                  if ldapmodify -x -H "$URI" -D "$ROOTDN" -y "$ROOTPW" >/dev/null 2>>"$LOG.err" <<EOF
                dn: cn=$g,$BINDINGS
                changetype: modify
                add: member
                member: $v
                -
                add: description
                description: Pat's note $i
                -

                EOF
                  then echo "$EPOCHREALTIME add $g $v" >> "$LOG"; fi
                  if [ $((i % 3)) -eq 0 ] && [ $i -gt 2 ]; then
                    j=$((i - 2)); h=$(printf 'host-%03d' $(( (j * 37) % 300 )))
                    if ldapmodify -x -H "$URI" -D "$ROOTDN" -y "$ROOTPW" >/dev/null 2>>"$LOG.err" <<EOF
                dn: cn=$h,$BINDINGS
                changetype: modify
                delete: member
                member: cn=person-$j,ou=services,$BASE
                -

                EOF
                    then echo "$EPOCHREALTIME del $h cn=person-$j,ou=services,$BASE" >> "$LOG"; fi
                  fi
                done
                """
            let person = try Processes.spawn("/bin/bash", ["-c", script], environment: [
                "STOP": stop, "LOG": log, "BASE": server.base, "URI": server.ldapURI, "ROOTDN": server.rootDN,
                "ROOTPW": server.rootPasswordFile, "BINDINGS": world.bindings,
            ])
            // Let the person start, then run the big apply.
            _ = waitUntil(seconds: 20) { FileManager.default.fileExists(atPath: log) }
            let applyStart = Date().timeIntervalSince1970
            let applied = try world.bridge(["apply"])
            let applyEnd = Date().timeIntervalSince1970
            _ = FileManager.default.createFile(atPath: stop, contents: nil)
            let personOutcome = person.finish(timeout: 60)
            expectStatus(applied, 0, "the big apply")
            #expect(!personOutcome.signalled)

            // Replay the person's log: what must be there, what must not.
            let lines = ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n")
            var present: [String: Set<String>] = [:]
            var removed: [String: Set<String>] = [:]
            var during = 0
            for line in lines {
                let parts = line.split(separator: " ", maxSplits: 3).map(String.init)
                guard parts.count == 4, let at = Double(parts[0]) else { continue }
                if at > applyStart && at < applyEnd { during += 1 }
                if parts[1] == "add" {
                    present[parts[2], default: []].insert(parts[3])
                    removed[parts[2]]?.remove(parts[3])
                } else {
                    present[parts[2]]?.remove(parts[3])
                    removed[parts[2], default: []].insert(parts[3])
                }
            }
            #expect(during >= 5, "only \(during) of the person's edits happened during the apply (\(applyEnd - applyStart) s)")
            let entries = try world.groupAttributes()
            let members = try world.members()
            var lost = 0
            for (group, values) in present {
                for value in values where !(members[group]?.contains(value) ?? false) { lost += 1 }
            }
            var resurrected = 0
            for (group, values) in removed {
                for value in values where members[group]?.contains(value) ?? false { resurrected += 1 }
            }
            #expect(lost == 0, "\(lost) member values added by the person are gone")
            #expect(resurrected == 0, "\(resurrected) member values removed by the person came back")
            let notes = entries.values.flatMap { $0 }.filter { $0.0.lowercased() == "description" && $0.1.hasPrefix("Pat's note") }
            let adds = lines.filter { $0.contains(" add ") }.count
            #expect(notes.count == adds, "the person's descriptions: \(notes.count) of \(adds)")

            // The bridge's own part is exactly right.
            expectStatus(try world.bridge(["plan", "--check"]), 0, "plan --check after the apply")
            var bridgeMembers = members
            for (group, values) in bridgeMembers {
                bridgeMembers[group] = values.filter { !$0.hasPrefix("cn=person-") }
            }
            #expect(bridgeMembers == expected)
        }
    }
}
