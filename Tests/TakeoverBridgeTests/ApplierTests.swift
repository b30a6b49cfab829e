// The write path against a real slapd: combined modifies retried split, an add-entry that
// finds the entry, concurrent edits by people, referrals from a read-only replica, a
// server killed in the middle of an apply. Plus the pure wave scheduling.

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
import TestSupport
#endif

@Suite("applier: waves")
struct ApplierWaveTests {
    func op(_ dn: String, _ subject: String?, _ op: ChangeOp = .addMember) -> WriteOperation {
        WriteOperation(dn: dn, subject: subject, changes: [Change(dn: dn, op: op, attribute: "member", values: [subject ?? "x"], subject: subject)])
    }

    @Test func commutingOperationsShareAWave() {
        let ops = [op("cn=a", "u1"), op("cn=a", "u2"), op("cn=b", "u1"), op("CN=A", "u3")]
        let (wave, rest) = Applier.nextWave(ops)
        #expect(wave.count == 4)
        #expect(rest.isEmpty)
    }

    @Test func anAddEntryGoesAloneAndFirst() {
        let add = WriteOperation(dn: "cn=a", subject: nil, changes: [Change(dn: "cn=a", op: .addEntry)])
        let ops = [add, op("cn=a", "u1"), op("cn=b", "u2"), op("cn=a", "u3")]
        let (wave, rest) = Applier.nextWave(ops)
        #expect(wave.map(\.dn) == ["cn=a", "cn=b"])
        #expect(wave.first?.isAdd == true)
        #expect(rest.map { $0.subject } == ["u1", "u3"])
        let (second, none) = Applier.nextWave(rest)
        #expect(second.count == 2)
        #expect(none.isEmpty)
    }

    @Test func sameSubjectOrNoSubjectKeepsOrder() {
        let ops = [op("cn=a", "u1"), op("cn=a", "u1", .deleteMember), op("cn=a", "u2"), op("cn=b", nil), op("cn=b", "u9")]
        let (wave, rest) = Applier.nextWave(ops)
        // u1's second operation waits, and so does everything after it on cn=a.
        #expect(wave.map { "\($0.dn)/\($0.subject ?? "-")" } == ["cn=a/u1", "cn=b/-"])
        #expect(rest.count == 3)
    }

    /// Property: over random operation lists, waves keep every entry's operations in
    /// plan order and never put two non-commuting operations in flight together.
    @Test func wavesPreservePerEntryOrder() {
        var rng = SplitMix64(seed: 0x5EED)
        for _ in 0..<500 {
            var ops: [WriteOperation] = []
            for index in 0..<Int(rng.next() % 30) {
                let dn = "cn=g\(rng.next() % 4)"
                let subject: String? = rng.next() % 5 == 0 ? nil : "u\(rng.next() % 6)"
                var o = op(dn, subject)
                o.changes[0].values = ["\(index)"]
                if rng.next() % 10 == 0 { o = WriteOperation(dn: dn, subject: nil, changes: [Change(dn: dn, op: .addEntry, values: ["\(index)"])]) }
                ops.append(o)
            }
            var sent: [String: [String]] = [:]
            var remaining = ops
            var guardCount = 0
            while !remaining.isEmpty && guardCount < 100 {
                guardCount += 1
                let (wave, rest) = Applier.nextWave(remaining)
                #expect(!wave.isEmpty)
                var perDN: [String: [WriteOperation]] = [:]
                for o in wave { perDN[o.dn, default: []].append(o) }
                for (_, group) in perDN where group.count > 1 {
                    #expect(!group.contains { $0.isAdd || $0.subject == nil })
                    #expect(Set(group.compactMap(\.subject)).count == group.count)
                }
                for o in wave { sent[o.dn, default: []].append(o.changes[0].values[0]) }
                remaining = rest
            }
            #expect(remaining.isEmpty)
            var expected: [String: [String]] = [:]
            for o in ops { expected[o.dn, default: []].append(o.changes[0].values[0]) }
            #expect(sent == expected)
        }
    }
}


@Suite("applier against slapd", .enabled(if: bridgeTestsEnabled, "needs TB_TEST_ENV (run scripts/test.sh)"))
struct ApplierServerTests {
    /// Plans in-process for `s`.
    func prepare(_ s: Scenario, log: CapturedLog) async throws -> PreparedRun {
        try s.writeConfig()
        let runner = BridgeRunner(configPath: s.configPath, output: CapturedOutput(), logger: log.logger)
        let config = try runner.loadConfig()
        return try await runner.prepare(config)
    }

    func applier(_ prepared: PreparedRun, log: CapturedLog, options: ApplyOptions = ApplyOptions()) -> Applier {
        Applier(connector: prepared.connector, layout: prepared.input.layout, uri: prepared.connector.writeURI,
                connection: nil, options: options, logger: log.logger)
    }

    /// A person adds the member between the plan and the write: the combined modify
    /// (member + record) fails with "value exists" and is retried value by value. An
    /// unrelated member the person added survives.
    @Test func combinedModifyIsSplitAndConcurrentEditsSurvive() async throws {
        let s = try Scenario()
        try s.addUsers([("a", nil), ("b", nil), ("z", nil)])
        try s.addDevice("d", ["a"])
        try s.writeReport("d", [("a", 1001), ("b", 1002)], fileName: "d.csv")
        #expect(try s.bridge(["apply"]).status == 0)
        try s.connect("b", to: "d")
        let log = CapturedLog()
        let prepared = try await prepare(s, log: log)
        #expect(prepared.plan.changes.map(\.op) == [.addMember, .addRecord])

        try s.modify(LDIF.line("dn", s.groupDN("d")) + "changetype: modify\nadd: member\n" + LDIF.line("member", s.userDN("b"))
            + LDIF.line("member", s.userDN("z")) + "-\n\n")
        let applier = applier(prepared, log: log)
        let result = await applier.apply(prepared.plan.changes)
        await applier.close()
        #expect(result.isComplete, "\(result.failures)")
        #expect(result.applied.map(\.op) == [.addRecord])
        #expect(result.alreadyDone.map(\.op) == [.addMember])
        let group = try #require(try await s.groups().first)
        #expect(Set(group.members) == Set([s.userDN("a"), s.userDN("b"), s.userDN("z")]))
        #expect(plainRecords(group.records) == ["a:" + s.userDN("a"), "b:" + s.userDN("b")])
        // The person's member is theirs: not adopted, not removed.
        let check = try s.bridge(["plan", "--check"])
        #expect(check.status == 0, "\(check.all)")
    }

    /// The group appears between the plan and the write: its values are added instead.
    @Test func addEntryThatExistsBecomesValueAdds() async throws {
        let s = try Scenario()
        try s.addUsers([("c", nil)])
        try s.addDevice("new", ["c"])
        try s.writeReport("new", [("c", 1001)], fileName: "new.csv")
        let log = CapturedLog()
        let prepared = try await prepare(s, log: log)
        #expect(prepared.plan.changes.map(\.op) == [.addEntry])
        try s.add(LDIF.line("dn", s.groupDN("new")) + "objectClass: takeoverBindingGroup\ncn: new\n\n")
        let applier = applier(prepared, log: log)
        let result = await applier.apply(prepared.plan.changes)
        await applier.close()
        #expect(result.isComplete, "\(result.failures)")
        #expect(result.applied.map(\.op) == [.addMember, .addRecord])
        #expect(log.text.contains("exists already"))
        #expect(try await s.groups().first?.members == [s.userDN("c")])
        #expect(try s.bridge(["plan", "--check"]).status == 0)
    }

    /// A write the server refuses (the service account may not write outside the
    /// bindings base) fails alone: the rest is written, the run exits 5 and lists it.
    @Test func oneRefusedWriteDoesNotStopTheOthers() async throws {
        let s = try Scenario()
        try s.addUsers([("e", nil), ("f", nil)])
        try s.addDevice("ok", ["e"])
        try s.addDevice("blocked", ["f"])
        try s.writeReport("ok", [("e", 1001)], fileName: "ok.csv")
        try s.writeReport("blocked", [("f", 1001)], fileName: "blocked.csv")
        // A group of the wrong class under the base: the bridge cannot add its values.
        try s.add(LDIF.line("dn", s.groupDN("blocked")) + "objectClass: organizationalRole\ncn: blocked\n\n")
        let result = try s.bridge(["apply"])
        #expect(result.status == 5, "\(result.all)")
        #expect(result.stderr.contains("refused"))
        #expect(try await s.groups().first { $0.device == "ok" }?.members == [s.userDN("e")])
        let journal = try String(contentsOfFile: s.state + "/runs.jsonl", encoding: .utf8)
        #expect(journal.contains("\"failed\":"))
    }

    // MARK: Referrals

    /// Reads from a read-only consumer: its referral is followed to the provider, the
    /// write lands there and replicates back; with write_uri set, no referral at all.
    @Test func referralFromAReplicaIsFollowed() async throws {
        let (provider, consumer) = try TestDirectory.startReplicaPair()
        defer {
            try? consumer.stop()
            try? provider.stop()
        }
        let s = try Scenario(server: provider)
        try s.addUsers([("r1", nil), ("r2", nil)])
        try s.addDevice("rep-1", ["r1"])
        try s.writeReport("rep-1", [("r1", 1001), ("r2", 1002)], fileName: "rep-1.csv")
        // Reads from the consumer (libldap takes the first that answers); the provider is
        // named too, as referrals are followed only to configured servers (docs/product.md section 7).
        s.configOverrides["ldap.uri"] = s.q("\(consumer.ldapURI) \(provider.ldapURI)")
        #expect(waitUntil(seconds: 10) { (try? s.dump(s.devices, server: consumer))?.contains("rep-1") == true })

        let apply = try s.bridge(["apply"], environment: ["TAKEOVER_BRIDGE_LOG_LEVEL": "debug"])
        #expect(apply.status == 0, "\(apply.all)")
        #expect(apply.stderr.contains("following a referral"), "\(apply.stderr)")
        #expect(try await s.groups().first?.members == [s.userDN("r1")], "written on the provider")
        #expect(waitUntil(seconds: 10) { (try? s.bridge(["plan", "--check"]))?.status == 0 }, "and replicated")

        // write_uri names the provider: writes go there directly.
        try s.connect("r2", to: "rep-1")
        #expect(waitUntil(seconds: 10) { (try? s.dump(s.devices, server: consumer))?.contains("uid=r2") == true })
        s.configOverrides["ldap.write_uri"] = s.q(provider.ldapURI)
        let direct = try s.bridge(["apply"])
        #expect(direct.status == 0, "\(direct.all)")
        #expect(!direct.stderr.contains("following a referral"))
        #expect(Set(try await s.groups().first?.members ?? []) == Set([s.userDN("r1"), s.userDN("r2")]))
    }

    // MARK: The server killed mid-apply

    /// Many changes on a private server; it is killed while they are written and comes
    /// back: the applier reconnects, redoes only what is not known done, and the result
    /// is exactly the planned directory.
    @Test func serverKilledAndRestartedMidApplyConverges() async throws {
        try await withSeededPrivateServer(count: manyUsers) { server, s in
            let log = CapturedLog()
            let prepared = try await prepare(s, log: log)
            #expect(prepared.plan.changes.count == manyUsers * 2)

            var options = ApplyOptions()
            options.chunk = 256
            options.backoff = [0.3, 0.6, 1.2, 2.4]
            let applier = applier(prepared, log: log, options: options)
            let changes = prepared.plan.changes
            let victim = server
            let restarted = Thread {
                usleep(150_000)
                victim.kill(signal: SIGKILL)
                usleep(200_000)
                _ = try? victim.restart()
            }
            restarted.start()
            let result = await applier.apply(changes)
            await applier.close()
            #expect(result.reconnects >= 1, "the apply finished before the kill; make it longer")
            #expect(result.isComplete, "\(result.failures.prefix(5))")
            #expect(result.applied.count + result.alreadyDone.count == changes.count)
            let check = try s.bridge(["plan", "--check"])
            #expect(check.status == 0, "\(check.all)")
            let group = try #require(try await s.groups().first)
            #expect(group.members.count == manyUsers + 1)
            #expect(group.records.count == manyUsers + 1)
        }
    }

    /// Killed and not back: the binary exits 5 listing what it wrote and what not, the
    /// run record holds what was written, and the next run converges.
    @Test func serverKilledForGoodExits5AndTheNextRunConverges() async throws {
        try await withSeededPrivateServer(count: manyUsers) { server, s in
            s.configOverrides["ldap.timeout"] = "3"
            let victim = server
            let scenario = s
            // Kill once this run's writes have begun (the group holds more than the seeded
            // member), not after a fixed delay that a loaded machine may spend still reading.
            let killer = Thread {
                let deadline = Date().addingTimeInterval(30)
                while Date() < deadline {
                    let members = (try? scenario.dump(scenario.bindings))?
                        .split(separator: "\n").filter { $0.hasPrefix("member:") }.count ?? 0
                    if members > 2 { break }
                    usleep(5_000)
                }
                victim.kill(signal: SIGKILL)
            }
            killer.start()
            let result = try s.bridge(["apply"])
            #expect(result.status == 5, "\(result.stderr.suffix(2000))")
            #expect(result.stderr.contains("not written"), "\(result.stderr.suffix(2000))")
            #expect(result.stderr.contains("msg=\"run finished\""))
            let journal = try String(contentsOfFile: s.state + "/runs.jsonl", encoding: .utf8)
            #expect(journal.split(separator: "\n").count == 2)
            #expect(journal.contains("failed: gave up"))

            server = try server.restart()
            let again = try s.bridge(["apply"])
            #expect(again.status == 0, "\(again.stderr.suffix(2000))")
            let check = try s.bridge(["plan", "--check"])
            #expect(check.status == 0, "\(check.all)")
            #expect(try await s.groups().first?.members.count == manyUsers + 1)
        }
    }

    /// A person adds and removes members of the same group while a big apply writes to
    /// it: value-level writes leave the person's edits exactly as the person left them.
    @Test func concurrentEditsByAPersonSurviveABigApply() async throws {
        let s = try Scenario()
        try await seedMany(s, count: 1500)
        let group = s.groupDN("big")
        let people = s.people
        let root = s
        let editor = Thread {
            for i in 0..<40 {
                let add = LDIF.line("dn", group) + "changetype: modify\nadd: member\n"
                    + LDIF.line("member", "cn=person-\(i),\(people)") + "-\n\n"
                try? root.modify(add)
                if i % 2 == 1 {
                    let remove = LDIF.line("dn", group) + "changetype: modify\ndelete: member\n"
                        + LDIF.line("member", "cn=person-\(i - 1),\(people)") + "-\n\n"
                    try? root.modify(remove)
                }
            }
        }
        editor.start()
        let result = try s.bridge(["apply"])
        while !editor.isFinished { usleep(10_000) }
        #expect(result.status == 0, "\(result.stderr.suffix(1500))")
        let members = Set(try await s.groups().first?.members ?? [])
        for i in 0..<40 {
            let dn = "cn=person-\(i),\(people)"
            #expect(members.contains(dn) == (i % 2 == 1), "\(dn)")
        }
        #expect(members.count == 1501 + 20)
        #expect(try s.bridge(["plan", "--check"]).status == 0)
    }

    /// How many users the kill tests add: enough that the kill lands while they are written.
    let manyUsers = 3000

    /// `body` with a private server (stopped after it, also when `body` restarts it) and a
    /// scenario on it seeded by `seedMany` with `count` users.
    func withSeededPrivateServer(count: Int, _ body: (inout TestDirectory, Scenario) async throws -> Void)
        async throws {
        var server = try TestDirectory.startPrivate()
        defer { try? server.stop() }
        let s = try Scenario(server: server)
        try await seedMany(s, count: count)
        try await body(&server, s)
    }

    /// One group with one bound user, then `count` more users connected to it.
    func seedMany(_ s: Scenario, count: Int) async throws {
        try s.addUsers([("m0", nil)])
        try s.addDevice("big", ["m0"])
        var accounts: [(name: String, uid: Int)] = [("m0", 1000)]
        for i in 1...count { accounts.append(("m\(i)", 1000 + i)) }
        try s.writeReport("big", accounts, fileName: "big.csv")
        #expect(try s.bridge(["apply"]).status == 0)
        var ldif = ""
        for i in 1...count { ldif += s.userLDIF("m\(i)", uidNumber: 50_000 + i) }
        try s.add(ldif)
        var device = LDIF.line("dn", s.deviceDN("big")) + "changetype: modify\nadd: member\n"
        for i in 1...count { device += LDIF.line("member", s.userDN("m\(i)")) }
        try s.modify(device + "-\n\n")
    }
}
