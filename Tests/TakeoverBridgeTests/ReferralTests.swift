// A referral must never take the bind password anywhere. Referrals are
// followed only to servers named in [ldap] uri or write_uri; any other target, and any
// URL that does not parse, is refused with exit 5 naming it, and never sees a connection.
// The writes it answered are not counted as done.
//
// Two ways to be referred: a real slapd read-only replica whose `updateref` names a fake
// server (every spelling slapd accepts), and a proxy in front of slapd that answers
// writes with any referral text (the ones slapd will not configure). The replica refers
// the run's lease too (so the lease follows the same rule); the proxy lets the lease
// through so that the binding writes meet the referral.

import Foundation
import LDAPTestSupport
import LDAPClient
import LDAPSyntax
import Testing
@testable import TakeoverBridge

@Suite("referrals never leak the bind password", .enabled(if: bridgeTestsEnabled, "needs TB_TEST_ENV (run scripts/test.sh)"))
struct ReferralTests {
    /// One device, one user to bind: a plan of exactly one add-entry.
    func world(_ s: Scenario) throws {
        try s.addUsers([("ref1", nil)])
        try s.addDevice("ref-dev", ["ref1"])
        try s.writeReport("ref-dev", [("ref1", 1001)], fileName: "ref-dev.csv")
    }

    func journal(_ s: Scenario) throws -> String {
        try String(contentsOfFile: s.state + "/runs.jsonl", encoding: .utf8)
    }

    /// A real read-only replica refers writes to a fake server, spelled every way slapd
    /// accepts in `updateref`: the bridge contacts none of them.
    @Test func aReplicaReferringElsewhereIsRefused() async throws {
        let fake = try FakeLDAPServer()
        let fake6 = try FakeLDAPServer(address: "::1")
        defer {
            fake.stop()
            fake6.stop()
        }
        let p = fake.port
        let hostile = [
            "ldap://127.0.0.1:\(p)", "ldap://localhost:\(p)/", "LDAP://127.0.0.1:\(p)/",
            "ldap://[::1]:\(fake6.port)", "ldap://user@127.0.0.1:\(p)", "ldap://%31%32%37.0.0.1:\(p)",
            "ldap://0177.0.0.1:\(p)", "ldap://2130706433:\(p)", "ldap://127.1:\(p)",
        ]
        let (provider, consumer) = try TestDirectory.startReplicaPair(updateRefs: hostile)
        defer {
            try? consumer.stop()
            try? provider.stop()
        }
        let s = try Scenario(server: provider)
        try world(s)
        s.configOverrides["ldap.uri"] = s.q(consumer.ldapURI)
        #expect(waitUntil(seconds: 10) { (try? s.dump(s.devices, server: consumer))?.contains("ref-dev") == true })

        let apply = try s.bridge(["apply"])
        #expect(apply.status == 5, "\(apply.all)")
        #expect(fake.connections == 0 && fake6.connections == 0, "a referred server was contacted")
        #expect(fake.binds.isEmpty && fake6.binds.isEmpty)
        #expect(apply.stderr.contains("referral refused"), "\(apply.stderr)")
        #expect(apply.stderr.contains("127.0.0.1:\(p)"), "names the URL: \(apply.stderr)")
        #expect(apply.stderr.contains("not in [ldap] uri or write_uri"))
        #expect(!apply.stderr.contains("following a referral"))
        #expect(try await s.groups().isEmpty, "nothing written on the provider")
        let record = try journal(s)
        #expect(record.contains("\"applied\":0"), "\(record)")
        #expect(!record.contains("\"outcome\":\"ok\""))
    }

    /// The proxy answers every write with these referrals (from the issue and variations):
    /// every one is refused and the fake server behind them sees nothing.
    @Test func hostileReferralTextIsRefused() async throws {
        let fake = try FakeLDAPServer()
        let fake6 = try FakeLDAPServer(address: "::1")
        let s = try Scenario()
        let upstream = try LDAPServerAddress(url: s.server.ldapURI).port
        let proxy = try ReferringProxy(upstreamPort: upstream, referrals: [], passThrough: Lease.entryName)
        defer {
            proxy.stop()
            fake.stop()
            fake6.stop()
        }
        try world(s)
        s.configOverrides["ldap.uri"] = s.q(proxy.uri)
        let password = try s.server.bindPassword().value
        let p = fake.port
        let cases: [[String]] = [
            ["ldap://2130706433:\(p),"],
            ["ldap://127.0.0.1:\(p),"],
            ["ldap://127.0.0.1:\(p) ldap://127.0.0.1:\(p)"],
            ["ldap://127.0.0.1:\(p),ldap://127.0.0.1:\(p)"],
            ["ldap://127.0.0.1:\(p)\n"],
            ["\tldap://127.0.0.1:\(p)"],
            ["ldap://[::1]:\(fake6.port)"],
            ["ldap://[0:0:0:0:0:0:0:1]:\(fake6.port)/"],
            ["ldap://0x7f000001:\(p)"],
            ["ldap://127.0.0.1%3A\(p)"],
            ["ldap://user:secret@127.0.0.1:\(p)"],
            ["ldaps://127.0.0.1:\(p)"],
            ["cldap://127.0.0.1:\(p)"],
            ["http://127.0.0.1:\(p)/"],
            ["ldap:///dc=example,dc=org"],
            ["ldap://127.0.0.1:\(p)/\u{1B}]52;c;QUFBQQ==\u{07}"],
            [],
        ]
        for referrals in cases {
            proxy.referrals = referrals
            let apply = try s.bridge(["apply"])
            #expect(apply.status == 5, "\(referrals.debugDescription): \(apply.all)")
            #expect(apply.stderr.contains(referrals.isEmpty ? "a referral naming no server" : "referral refused"),
                    "\(referrals.debugDescription): \(apply.stderr)")
            #expect(!apply.stderr.contains("\u{1B}") && !apply.stderr.contains("\u{07}"), "escaped in the message")
            #expect(!apply.all.contains(password), "the bind password is never printed")
        }
        #expect(fake.connections == 0 && fake6.connections == 0, "a referred server was contacted")
        #expect(proxy.writes >= cases.count)
        #expect(try await s.groups().isEmpty)
        let lines = try journal(s).split(separator: "\n")
        #expect(lines.count == cases.count)
        #expect(lines.allSatisfy { $0.contains("\"applied\":0") && !$0.contains("\"outcome\":\"ok\"") })
    }

    /// The run's lease meets the referral first (no pass-through): refused the same way,
    /// the fake server never contacted; and followed when it names a configured server.
    @Test func theLeaseFollowsTheSameRule() async throws {
        let fake = try FakeLDAPServer()
        let s = try Scenario()
        let slapd = s.server.ldapURI
        let upstream = try LDAPServerAddress(url: slapd).port
        let proxy = try ReferringProxy(upstreamPort: upstream, referrals: [])
        defer {
            proxy.stop()
            fake.stop()
        }
        try world(s)
        s.configOverrides["ldap.uri"] = s.q(proxy.uri)
        for referrals in [["ldap://2130706433:\(fake.port),"], [fake.uri], ["ldap://[::1]:\(fake.port)"]] {
            proxy.referrals = referrals
            let apply = try s.bridge(["apply"])
            #expect(apply.status == 5, "\(apply.all)")
            #expect(apply.stderr.contains("cannot take the lease"), "\(apply.stderr)")
            #expect(apply.stderr.contains("referral refused"))
        }
        #expect(fake.connections == 0)
        s.configOverrides["ldap.uri"] = s.q("\(proxy.uri) \(slapd)")
        proxy.referrals = [slapd]
        let apply = try s.bridge(["apply"])
        #expect(apply.status == 0, "\(apply.all)")
        #expect(apply.stderr.contains("following a referral for the lease"), "\(apply.stderr)")
        #expect(try await s.groups().first?.members == [s.userDN("ref1")])
    }

    /// A referral to a server the configuration names is followed, to the configured URI;
    /// in a list with refused URLs only the configured one is used.
    @Test func referralToAConfiguredServerIsFollowed() async throws {
        let fake = try FakeLDAPServer()
        let s = try Scenario()
        let slapd = s.server.ldapURI
        let upstream = try LDAPServerAddress(url: slapd).port
        let proxy = try ReferringProxy(upstreamPort: upstream, referrals: [], passThrough: Lease.entryName)
        defer {
            proxy.stop()
            fake.stop()
        }
        try world(s)
        s.configOverrides["ldap.uri"] = s.q("\(proxy.uri) \(slapd)")  // libldap takes the proxy first
        proxy.referrals = [fake.uri, "ldap://2130706433:\(fake.port),", "LDAP://127.0.0.1:\(upstream)/" + s.groupDN("ref-dev")]
        let apply = try s.bridge(["apply"])
        #expect(apply.status == 0, "\(apply.all)")
        #expect(apply.stderr.contains("following a referral"))
        #expect(apply.stderr.contains("referral refused"), "the others are named")
        #expect(fake.connections == 0)
        #expect(try await s.groups().first?.members == [s.userDN("ref1")], "written on the configured server")
        #expect(try journal(s).contains("\"applied\":1"))
    }
}
