// The lease, taken only to write: two applies with different state
// folders (two hosts) against the same slapd. A run with nothing to write leaves the
// directory byte-identical; a run with changes takes the lease and gives it back (the
// entry stays, free); a second host exits 75 at once while the lease is held; a host that
// read while another wrote exits 75 and writes nothing; a lease left by a killed run
// expires; of several hosts that see the same value exactly one wins; a lost lease stops
// the writes; doctor shows the lease.

import Foundation
import LDAPTestSupport
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
        let result = try s.server.admin("ldapsearch", ["-LLL", "-o", "ldif-wrap=no", "-b", Lease.dn(bindingsBase: s.bindings),
                                                       "-s", "base", "description"], allowFailure: true)
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

    /// The bindings subtree with operational attributes (entryCSN, modifyTimestamp,
    /// modifiersName...), canonical: any write under it changes this text.
    func dumpWithOperational(_ s: Scenario) throws -> String {
        try s.server.dump(s.bindings, operational: true)
    }

    func seedLease(_ s: Scenario, _ value: LeaseValue) throws {
        try s.add(LDIF.line("dn", Lease.dn(bindingsBase: s.bindings)) + "objectClass: organizationalRole\n"
                  + "cn: \(Lease.entryName)\n" + LDIF.line("description", value.text) + "\n")
    }

    /// A config file of its own for a host (Scenario.bridge rewrites config.toml).
    func hostConfig(_ s: Scenario, _ name: String) throws -> String {
        try s.writeConfig()
        let path = s.folder + "/\(name).toml"
        #expect(rename(s.configPath, path) == 0)
        return path
    }

    final class Counter: @unchecked Sendable {
        // @unchecked: `count` is only touched while holding `lock`.
        private let lock = NSLock()
        private var count = 0
        func add() { lock.lock(); count += 1; lock.unlock() }
        var value: Int { lock.lock(); defer { lock.unlock() }; return count }
    }

    static func now() -> UnixTime { UnixTime(Date().timeIntervalSince1970) }

    /// A plan with no changes takes no lease and writes nothing: the bindings subtree with
    /// its operational attributes (entryCSN, modifyTimestamp) stays byte-identical, the
    /// lease entry included, and no entry is added. An apply with changes takes the lease
    /// and gives it back: the entry stays, free, naming the run; doctor shows it.
    @Test func aSteadyStateApplyWritesNothingAndTheLeaseIsTakenOnlyToWrite() async throws {
        let s = try Scenario()
        try world(s)
        #expect(try leaseValue(s) == nil)
        let first = try s.bridge(["apply"])
        #expect(first.status == 0, "\(first.all)")
        let given = try #require(try leaseValue(s), "the lease entry stays after the run")
        #expect(given.free, "given back: \(given)")
        #expect(given.holder == LeaseValue.safeHost(BridgeRunner.hostName()) && !given.run.isEmpty)
        #expect(given.expires <= Self.now() && given.expires >= Self.now() - 120, "its finish time: \(given)")
        #expect(try await bindingGroups(s).count == 1)
        let doctor = try s.bridge(["doctor"])
        #expect(doctor.stdout.contains("OK   lease: free since host \(given.holder) (pid \(given.pid)) finished writing at"),
                "\(doctor.stdout)")

        // Every request the runs send goes through a proxy that counts the writes (add,
        // modify, delete, rename) at the protocol level.
        let writes = Counter()
        let upstream = try LDAPServerAddress(url: s.server.ldapURI).port
        let proxy = try HoldingProxy(upstreamPort: upstream) { message in
            if let operation = LDAPWire.idAndOperation(message)?.operation, LDAPWire.writeRequests.contains(operation) {
                writes.add()
            }
            return false
        }
        defer { proxy.stop() }
        s.configOverrides = ["ldap.uri": s.q(proxy.uri)]
        let before = try dumpWithOperational(s)
        #expect(before.contains("entryCSN: "), "the dump shows the operational attributes: \(before)")
        usleep(1_100_000)  // a write now would carry a later modifyTimestamp (1 s resolution)
        for round in 0..<2 {
            let again = try s.bridge(["apply"])
            #expect(again.status == 0, "\(again.all)")
            #expect(again.stderr.contains("written=0"), "\(again.stderr)")
            #expect(try dumpWithOperational(s) == before, "round \(round): the bindings subtree, lease included, is unchanged")
            #expect(writes.value == 0, "round \(round): \(writes.value) write requests")
            #expect(!again.stderr.contains("lease"), "round \(round): \(again.stderr)")
        }

        // A change again: the lease is taken (a new run token) and given back.
        try s.addUsers([("ls3", nil)], firstUIDNumber: 20_010)
        try s.connect("ls3", to: "ls-dev")
        try s.writeReport("ls-dev", [("ls1", 1001), ("ls2", 1002), ("ls3", 1003)], fileName: "ls-dev.csv")
        let third = try s.bridge(["apply"])
        #expect(third.status == 0, "\(third.all)")
        let after = try #require(try leaseValue(s))
        #expect(after.free && after.run != given.run, "taken and given back by the third run: \(after)")
        #expect(writes.value == 3, "the lease taken, one member added, the lease given back: \(writes.value)")
        #expect(Set(try await bindingGroups(s).first?.members ?? []) == Set(["ls1", "ls2", "ls3"].map { s.userDN($0) }))
    }

    /// Host A holds the lease: it writes through a proxy that holds its first binding-group
    /// add (the lease itself passes), so it stays in its writes, renewing. Host B, with its
    /// own state folder, exits 75 at once naming A. doctor shows the lease. A is killed: B
    /// still gets 75 until A's lease has expired for `Lease.skewAllowance` seconds, then
    /// takes it over and writes.
    @Test func secondHostExits75AtOnceAndAKilledRunsLeaseExpires() async throws {
        let s = try Scenario()
        try world(s)
        let upstream = try LDAPServerAddress(url: s.server.ldapURI).port
        let leaseName = Array(Lease.entryName.utf8)
        let proxy = try HoldingProxy(upstreamPort: upstream) { message in
            LDAPWire.idAndOperation(message)?.operation == 0x68
                && !message.indices.contains { message[$0...].starts(with: leaseName) }
        }
        defer { proxy.stop() }
        // Host A: reads from slapd, writes (and leases) through the proxy.
        s.configOverrides = ["ldap.write_uri": s.q(proxy.uri), "ldap.timeout": "300",
                             "state.dir": s.q(s.folder + "/state-a"), "state.lease": "\"3s\""]
        let configA = try hostConfig(s, "host-a")
        let hostA = try Processes.spawn(BridgeExecutable.path, ["-c", configA, "apply"], captureOutput: false)
        var reaped = false
        defer { if !reaped { hostA.kill() } }
        #expect(waitUntil(seconds: 60) { proxy.held > 0 }, "host A took the lease and began writing")
        let held = try #require(try leaseValue(s))
        #expect(held.pid == hostA.pid && !held.free)

        // Host B: its own state folder, the same directory.
        s.configOverrides = ["state.dir": s.q(s.folder + "/state-b"), "state.lease": "\"3s\""]
        let started = Date()
        let second = try s.bridge(["apply"])
        let waited = Date().timeIntervalSince(started)
        #expect(second.status == 75, "\(second.all)")
        #expect(second.stderr.contains("holds the lease"), "\(second.stderr)")
        #expect(second.stderr.contains("pid \(hostA.pid)"))
        #expect(waited < 5, "exits at once (waited \(waited) s)")
        print("lease: a second host exited 75 after \(Int(waited * 1000)) ms (the whole process, start to exit)")
        #expect(try await bindingGroups(s).isEmpty, "host B wrote nothing")
        #expect(!FileManager.default.fileExists(atPath: s.folder + "/state-b/runs.jsonl"), "and recorded no run")

        let doctor = try s.bridge(["doctor"])
        #expect(doctor.stdout.contains("OK   lease: held by host "), "\(doctor.stdout)")
        #expect(doctor.stdout.contains("(pid \(hostA.pid))"))

        // Renewed while A lives: still held after more than one lease time.
        try await Task.sleep(nanoseconds: 4_000_000_000)
        let renewed = try #require(try leaseValue(s))
        #expect(renewed.run == held.run && renewed.expires > held.expires, "renewed: \(renewed) after \(held)")
        #expect(try s.bridge(["apply"]).status == 75)

        // A is killed (its held add is dropped, never written): its lease stays until it
        // has expired, then B takes it over.
        hostA.kill()
        reaped = true
        proxy.stop()
        let stale = try #require(try leaseValue(s))
        #expect(stale.run == held.run)
        var last: ProcessOutcome?
        var refusedWhileValid = 0
        var refusedAsStale = 0
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            let began = Self.now()
            let run = try s.bridge(["apply"])
            last = run
            if run.status != 75 { break }
            if run.stderr.contains("holds the lease") { refusedWhileValid += 1 } else { refusedAsStale += 1 }
            #expect(run.stderr.contains("holds the lease") || run.stderr.contains("another host wrote to the directory"),
                    "\(run.stderr)")
            #expect(began <= stale.expires + Lease.skewAllowance + 1,
                    "refused only while the lease was valid or had only just expired")
            usleep(300_000)
        }
        #expect(last?.status == 0, "\(last?.all ?? "no run")")
        #expect(last?.stderr.contains("took over an expired lease") == true, "\(last?.stderr ?? "")")
        #expect(Set(try await bindingGroups(s).first?.members ?? []) == Set([s.userDN("ls1"), s.userDN("ls2")]))
        let after = try #require(try leaseValue(s))
        #expect(after.free && after.run != held.run, "given back at the end of the run: \(after)")
        print("lease: after the kill, \(refusedWhileValid) applies exited 75 while the lease was valid, "
              + "\(refusedAsStale) in the \(Lease.skewAllowance) s after it expired")
    }

    /// Host B's directory read is held in a proxy (after B has seen the lease) while host
    /// A runs a whole apply: A takes the lease, writes and gives it back. B's plan (it has
    /// changes A did not make) is then refused: exit 75, nothing written. B's next run reads
    /// A's result and writes.
    @Test func aHostThatReadWhileAnotherWroteWritesNothing() async throws {
        let s = try Scenario()
        try world(s)
        // The directory has been written before, long ago: a free lease.
        try seedLease(s, LeaseValue(holder: "old-host", pid: 5, run: "0ld", expires: Self.now() - 3600, free: true))
        // A's reports: ls-dev only (ls-dev2 deferred); B's (the scenario's): both.
        try s.addDevice("ls-dev2", ["ls2"])
        let reportsA = s.folder + "/reports-a"
        try FileManager.default.createDirectory(atPath: reportsA, withIntermediateDirectories: true)
        #expect(link(s.reports + "/ls-dev.csv", reportsA + "/ls-dev.csv") == 0)
        try s.writeReport("ls-dev2", [("ls2", 1002)], fileName: "ls-dev2.csv")

        let upstream = try LDAPServerAddress(url: s.server.ldapURI).port
        let people = Array(s.people.utf8)
        let proxy = try HoldingProxy(upstreamPort: upstream) { message in
            LDAPWire.idAndOperation(message)?.operation == 0x63
                && message.indices.contains { message[$0...].starts(with: people) }
        }
        defer { proxy.stop() }
        s.configOverrides = ["ldap.uri": s.q(proxy.uri), "ldap.write_uri": s.q(s.server.ldapURI), "ldap.timeout": "120",
                             "state.dir": s.q(s.folder + "/state-b")]
        let configB = try hostConfig(s, "host-b")
        let hostB = try Processes.spawn(BridgeExecutable.path, ["-c", configB, "apply"])
        #expect(waitUntil(seconds: 60) { proxy.held > 0 }, "host B saw the lease and began reading the directory")

        s.configOverrides = ["devices.reports": s.q(reportsA), "state.dir": s.q(s.folder + "/state-a")]
        let hostA = try s.bridge(["apply"])
        #expect(hostA.status == 0, "\(hostA.all)")
        let written = try #require(try leaseValue(s))
        #expect(written.free && written.run != "0ld", "A took the lease and gave it back: \(written)")
        #expect(try await bindingGroups(s).map(\.device) == ["ls-dev"])
        let afterA = try dumpWithOperational(s)

        proxy.release()
        let b = hostB.finish(timeout: 120)
        #expect(!b.timedOut, "host B ended")
        #expect(b.status == 75, "\(b.all)")
        #expect(b.stderr.contains("another host wrote to the directory while this run read it"), "\(b.stderr)")
        #expect(b.stderr.contains("the next run reads its result"))
        #expect(try dumpWithOperational(s) == afterA, "host B wrote nothing, not even the lease")
        #expect(!FileManager.default.fileExists(atPath: s.folder + "/state-b/runs.jsonl"), "and recorded no run")

        // B's next run reads A's result and converges.
        s.configOverrides = ["state.dir": s.q(s.folder + "/state-b")]
        let next = try s.bridge(["apply"])
        #expect(next.status == 0, "\(next.all)")
        #expect(Set(try await bindingGroups(s).map(\.device)) == ["ls-dev", "ls-dev2"])
    }

    /// The value found when taking the lease must be the one seen before the read; an
    /// expired lease must have expired `skewAllowance` seconds before the read began.
    @Test func theLeaseIsTakenOnlyOverTheValueSeenBeforeTheRead() async throws {
        let s = try Scenario()
        let connector = try connector(s)
        let dn = Lease.dn(bindingsBase: s.bindings)
        let logger = Logger(label: "test")
        let connection = try await connector.open(uri: s.server.ldapURI)
        let now = Self.now()
        func take(_ seen: LeaseSeen, _ run: String) async -> Result<LeaseValue, LeaseError> {
            let mine = LeaseValue(holder: "me", pid: 1, run: run, expires: now + 600)
            do {
                return .success(try await Lease.take(connection, dn: dn, mine: mine, seen: seen, now: { now }, logger: logger))
            } catch {
                return .failure(error)
            }
        }
        func isStale(_ outcome: Result<LeaseValue, LeaseError>) -> Bool {
            if case .failure(.stale) = outcome { true } else { false }
        }
        // No entry seen, one there now (another host created it while this run read).
        let other = LeaseValue(holder: "other", pid: 2, run: "other1", expires: now - 1, free: true)
        try seedLease(s, other)
        let seen = try await Lease.observe(connection, bindingsBase: s.bindings, now: now)
        #expect(seen.value == other)
        let a = await take(LeaseSeen(value: nil, at: now), "a")
        #expect(isStale(a), "\(a)")
        // A free value seen, another free value now.
        let older = LeaseValue(holder: "other", pid: 2, run: "other0", expires: now - 100, free: true)
        let b = await take(LeaseSeen(value: older, at: now), "b")
        #expect(isStale(b), "\(b)")
        #expect(try leaseValue(s) == other, "nothing written")
        // The value seen: taken.
        let taken = await take(seen, "c")
        #expect((try? taken.get())?.run == "c")
        #expect(try leaseValue(s)?.run == "c")
        // An expired lease (a killed run) that expired 2 s before the read began: its
        // holder may have written while this run read.
        let killed = LeaseValue(holder: "dead", pid: 3, run: "dead1", expires: now - 2)
        try s.modify(LDIF.line("dn", dn) + "changetype: modify\nreplace: description\n" + LDIF.line("description", killed.text) + "-\n\n")
        let d = await take(LeaseSeen(value: killed, at: now), "d")
        #expect(isStale(d), "\(d)")
        #expect(try leaseValue(s) == killed, "nothing written")
        // Expired long enough before the read: taken over.
        let long = LeaseSeen(value: killed, at: killed.expires + Lease.skewAllowance)
        let e = await take(long, "e")
        #expect((try? e.get())?.run == "e", "\(e)")
        // Held and valid: held, at the observation already.
        let holder = try #require(try leaseValue(s))
        do {
            _ = try await Lease.observe(connection, bindingsBase: s.bindings, now: now)
            Issue.record("observe did not refuse a held lease")
        } catch {
            guard case .held(_, let by) = error else { Issue.record("\(error)"); return }
            #expect(by == holder)
        }
        await connection.close()
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
        #expect(try leaseValue(s)?.free == true, "given back")
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
            _ = try? s.server.root("ldapdelete", [dn])
            if pass > 0 {
                let old = LeaseValue(holder: "dead-host", pid: 1, run: "old\(pass)", expires: now - 60)
                try s.add(LDIF.line("dn", dn) + "objectClass: organizationalRole\ncn: \(Lease.entryName)\n"
                          + LDIF.line("description", old.text) + "\n")
            }
            let seen = LeaseSeen(value: try leaseValue(s), at: now)
            let outcomes = await withTaskGroup(of: Result<LeaseValue, LeaseError>.self) { group in
                for i in 0..<contenders {
                    let connection = connections[i]
                    let mine = LeaseValue(holder: "host\(i)", pid: Int32(i), run: "r\(pass)-\(i)", expires: now + 600)
                    group.addTask {
                        do {
                            return .success(try await Lease.take(connection, dn: dn, mine: mine, seen: seen, now: { now },
                                                                 logger: logger))
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
                                            logger: Logger(label: "test"), seen: LeaseSeen(value: nil, at: Self.now()))
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
