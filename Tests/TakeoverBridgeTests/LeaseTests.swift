// Issue 11, item 13: one run at a time across hosts. Two applies with different state
// folders (two hosts) against the same slapd: the second exits 75 at once; a lease left
// by a killed run expires and is taken over; of several hosts that see the same expired
// lease exactly one wins; a lost lease stops the writes; doctor shows a held lease.

import Foundation
import LDAPClient
import LDAPSyntax
import Logging
import TakeoverCore
import Testing
@testable import TakeoverBridge

#if canImport(Glibc)
import Glibc
#endif

@Suite("the lease across hosts", .enabled(if: bridgeTestsEnabled, "needs TB_TEST_ENV (run scripts/test.sh)"))
struct LeaseTests {
    func world(_ s: Scenario) throws {
        try s.addUsers([("ls1", nil), ("ls2", nil)])
        try s.addDevice("ls-dev", ["ls1", "ls2"])
        try s.writeReport("ls-dev", [("ls1", 1001), ("ls2", 1002)], fileName: "ls-dev.csv")
    }

    func leaseValue(_ s: Scenario) throws -> LeaseValue? {
        let result = try runProgram("/usr/bin/ldapsearch", ["-LLL", "-o", "ldif-wrap=no", "-x", "-H", s.server.ldapURI,
                                                            "-D", s.server.rootDN, "-y", s.server.rootPasswordFile,
                                                            "-b", Lease.dn(bindingsBase: s.bindings), "-s", "base", "description"])
        guard result.status == 0 else { return nil }
        let line = result.stdout.split(separator: "\n").first { $0.hasPrefix("description: ") }
        return line.flatMap { LeaseValue.parse(String($0.dropFirst("description: ".count))) }
    }

    /// The scenario's binding groups, not counting the lease entry (Scenario.groups reads
    /// every entry under the bindings base).
    func bindingGroups(_ s: Scenario) async throws -> [BindingGroup] {
        try await s.groups().filter { $0.device != Lease.entryName }
    }

    func connector(_ s: Scenario) throws -> Connector {
        try s.writeConfig()
        let config = try BridgeConfig.load(path: s.configPath, environment: [:])
        return Connector(config: config, password: try config.readBindPassword(environment: [:]))
    }

    /// Host A holds the lease (its reads hang on a server that never answers); host B,
    /// with its own state folder, exits 75 at once naming A. doctor shows the lease. A is
    /// killed: B still gets 75 until A's lease expires, then takes it over and writes.
    @Test func secondHostExits75AtOnceAndAKilledRunsLeaseExpires() async throws {
        let s = try Scenario()
        try world(s)
        let silent = try FakeLDAPServer(answering: false)
        defer { silent.stop() }
        // Host A: reads from the silent server, writes (and leases) on slapd.
        s.configOverrides = ["ldap.uri": s.q(silent.uri), "ldap.write_uri": s.q(s.server.ldapURI), "ldap.timeout": "300",
                             "state.dir": s.q(s.folder + "/state-a"), "state.lease": "\"3s\""]
        try s.writeConfig()
        let configA = s.folder + "/host-a.toml"
        #expect(rename(s.configPath, configA) == 0)
        let hostA = try spawnBackground(BridgeBinary.path, ["-c", configA, "apply"])
        var reaped = false
        defer {
            if !reaped {
                kill(hostA, SIGKILL)
                var status: Int32 = 0
                waitpid(hostA, &status, 0)
            }
        }
        #expect(waitUntil(seconds: 60) { (try? leaseValue(s)) != nil }, "host A took the lease")
        let held = try #require(try leaseValue(s))
        #expect(held.pid == hostA)

        // Host B: its own state folder, the same directory.
        s.configOverrides = ["state.dir": s.q(s.folder + "/state-b"), "state.lease": "\"3s\""]
        let started = Date()
        let second = try s.bridge(["apply"])
        let waited = Date().timeIntervalSince(started)
        #expect(second.status == 75, "\(second.all)")
        #expect(second.stderr.contains("holds the lease"), "\(second.stderr)")
        #expect(second.stderr.contains("pid \(hostA)"))
        #expect(waited < 5, "exits at once (waited \(waited) s)")
        print("lease: a second host exited 75 after \(Int(waited * 1000)) ms (the whole process, start to exit)")
        #expect(try await bindingGroups(s).isEmpty, "host B wrote nothing")
        #expect(!FileManager.default.fileExists(atPath: s.folder + "/state-b/runs.jsonl"), "and recorded no run")

        let doctor = try s.bridge(["doctor"])
        #expect(doctor.stdout.contains("OK   lease: held by host "), "\(doctor.stdout)")
        #expect(doctor.stdout.contains("(pid \(hostA))"))

        // Renewed while A lives: still held after more than one lease time.
        try await Task.sleep(nanoseconds: 4_000_000_000)
        let renewed = try #require(try leaseValue(s))
        #expect(renewed.run == held.run && renewed.expires > held.expires, "renewed: \(renewed) after \(held)")
        #expect(try s.bridge(["apply"]).status == 75)

        // A is killed: its lease stays until it expires, then B takes it over.
        kill(hostA, SIGKILL)
        var status: Int32 = 0
        waitpid(hostA, &status, 0)
        reaped = true
        let stale = try #require(try leaseValue(s))
        #expect(stale.run == held.run)
        var last = ProcessResult(status: -1, stdout: "", stderr: "")
        var refusedWhileValid = 0
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline {
            last = try s.bridge(["apply"])
            if last.status != 75 { break }
            refusedWhileValid += 1
            #expect(UnixTime(Date().timeIntervalSince1970) <= stale.expires + 1, "refused only while the lease was valid")
            usleep(300_000)
        }
        #expect(last.status == 0, "\(last.all)")
        #expect(last.stderr.contains("took over an expired lease"), "\(last.stderr)")
        #expect(Set(try await bindingGroups(s).first?.members ?? []) == Set([s.userDN("ls1"), s.userDN("ls2")]))
        #expect(try leaseValue(s) == nil, "released at the end of the run")
        print("lease: after the kill, \(refusedWhileValid) applies exited 75 before the lease expired")
    }

    /// A run here that could not give the lease back (killed, or the server gone at its
    /// end) noted its token in the lock file: the next run of this state folder takes the
    /// lease over at once, even after a run that failed before reaching the directory;
    /// another host still waits for it to expire.
    @Test func aLeaseThisStateFolderLeftIsTakenOverAtOnce() async throws {
        let s = try Scenario()
        try world(s)
        let lock = try StateDirectory(path: s.state).acquireLock()
        lock.noteLease(runs: ["0123abcd"])
        lock.release()
        let left = LeaseValue(holder: "this-host", pid: 99999, run: "0123abcd",
                              expires: UnixTime(Date().timeIntervalSince1970) + 600)
        try s.add(LDIF.line("dn", Lease.dn(bindingsBase: s.bindings)) + "objectClass: organizationalRole\n"
                  + "cn: \(Lease.entryName)\n" + LDIF.line("description", left.text) + "\n")
        s.configOverrides["state.dir"] = s.q(s.folder + "/other-host")
        #expect(try s.bridge(["apply"]).status == 75, "another host waits")
        s.configOverrides = ["ldap.uri": s.q("ldap://127.0.0.1:1")]
        #expect(try s.bridge(["apply"]).status == 5, "a run here that never reached the directory")
        s.configOverrides = [:]
        let apply = try s.bridge(["apply"])
        #expect(apply.status == 0, "\(apply.all)")
        #expect(apply.stderr.contains("took over the lease an earlier run of this state folder left"), "\(apply.stderr)")
        #expect(try leaseValue(s) == nil)
        #expect(try await bindingGroups(s).count == 1)
    }

    /// Several hosts see the same expired lease at once: exactly one takes it over. And
    /// with no entry at all, exactly one add wins.
    @Test func ofHostsSeeingTheSameExpiredLeaseExactlyOneWins() async throws {
        let s = try Scenario()
        let connector = try connector(s)
        let dn = Lease.dn(bindingsBase: s.bindings)
        let logger = Logger(label: "test")
        let contenders = 8
        var connections: [LDAPConnection] = []
        for _ in 0..<contenders { connections.append(try await connector.open(uri: s.server.ldapURI)) }
        let now = UnixTime(Date().timeIntervalSince1970)
        for pass in 0..<6 {
            _ = try? s.runLDAP("ldapdelete", [dn])
            if pass > 0 {
                let old = LeaseValue(holder: "dead-host", pid: 1, run: "old\(pass)", expires: now - 60)
                try s.add(LDIF.line("dn", dn) + "objectClass: organizationalRole\ncn: \(Lease.entryName)\n"
                          + LDIF.line("description", old.text) + "\n")
            }
            let outcomes = await withTaskGroup(of: Result<LeaseValue, LeaseError>.self) { group in
                for i in 0..<contenders {
                    let connection = connections[i]
                    let mine = LeaseValue(holder: "host\(i)", pid: Int32(i), run: "r\(pass)-\(i)", expires: now + 600)
                    group.addTask {
                        do {
                            return .success(try await Lease.take(connection, dn: dn, mine: mine, now: { now }, logger: logger))
                        } catch let error as LeaseError {
                            return .failure(error)
                        } catch {
                            return .failure(.failed("\(error)"))
                        }
                    }
                }
                var all: [Result<LeaseValue, LeaseError>] = []
                for await outcome in group { all.append(outcome) }
                return all
            }
            let winners = outcomes.compactMap { try? $0.get() }
            #expect(winners.count == 1, "pass \(pass): \(winners.count) winners")
            let held = outcomes.filter { if case .failure(.held) = $0 { true } else { false } }
            #expect(held.count == contenders - 1, "pass \(pass): the others are told it is held: \(outcomes)")
            #expect(try leaseValue(s) == winners.first, "pass \(pass): the entry holds the winner's value")
        }
        for connection in connections { await connection.close() }
    }

    /// A renewal that finds another host's value: the lease is lost and the applier
    /// writes nothing more.
    @Test func aLostLeaseStopsTheWrites() async throws {
        let s = try Scenario()
        try world(s)
        s.configOverrides["state.lease"] = "\"10m\""
        let connector = try connector(s)
        let lease = try await Lease.acquire(connector: connector, clock: { UnixTime(Date().timeIntervalSince1970) },
                                            logger: Logger(label: "test"))
        let before = await lease.problem()
        #expect(before == nil, "\(before ?? "")")
        let ours = try #require(try leaseValue(s))
        let thief = LeaseValue(holder: "other-host", pid: 7, run: "stolen", expires: ours.expires + 600)
        try s.modify(LDIF.line("dn", lease.dn) + "changetype: modify\ndelete: description\n" + LDIF.line("description", ours.text)
                     + "-\nadd: description\n" + LDIF.line("description", thief.text) + "-\n\n")
        await lease.renew()
        let problem = try #require(await lease.problem())
        #expect(problem.contains("taken over by host other-host (pid 7)"), "\(problem)")
        #expect(try leaseValue(s) == thief, "the renewal did not overwrite the new holder")

        let change = Change(dn: s.groupDN("ls-dev"), op: .addEntry, attribute: "", values: [],
                            attributes: [EntryAttribute(name: "objectClass", values: ["takeoverBindingGroup"]),
                                         EntryAttribute(name: "cn", values: ["ls-dev"])])
        let applier = Applier(connector: connector, layout: connector.config.layout(), uri: s.server.ldapURI, connection: nil,
                              logger: Logger(label: "test"))
        applier.leaseCheck = { await lease.problem() }
        let result = await applier.apply([change])
        #expect(result.applied.isEmpty && result.notWritten.count == 1)
        #expect(result.gaveUp?.contains("taken over") == true)
        await applier.close()
        await lease.release()
        #expect(try leaseValue(s) == thief, "release leaves another run's lease alone (assertion control)")
        #expect(try await bindingGroups(s).isEmpty)
    }
}
