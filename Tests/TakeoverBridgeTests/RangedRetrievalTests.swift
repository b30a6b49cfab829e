// Ranged attribute retrieval, against slapd behind a loopback proxy
// (Tests/tools/range-proxy.py) that answers like Windows AD with a small MaxValRange,
// including hostile servers: a list is read whole or its device is an error, never a
// shorter list.

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

/// The proxy process: started in front of a test server, stopped by `stop()` (and on its
/// own when the test process is gone).
final class RangeProxy: @unchecked Sendable {
    // @unchecked: `proxy` is written once in init and read by `stop`, by one test.
    let uri: String
    private let proxy: ChildProcess
    private let folder: String

    init(upstream server: TestDirectory, maxValRange: Int, mode: String = "windows") throws {
        let hostPort = server.ldapURI.dropFirst("ldap://".count).prefix { $0 != "/" }
        folder = NSTemporaryDirectory() + "tb-range-proxy-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let portFile = folder + "/port"
        let script = TestDirectory.packageRoot + "/Tests/tools/range-proxy.py"
        proxy = try Processes.spawn("/usr/bin/python3", [script, "--upstream", String(hostPort), "--max",
                                                         String(maxValRange), "--mode", mode, "--port-file", portFile],
                                    captureOutput: false)
        var port: String?
        _ = waitUntil(seconds: 10) {
            port = try? String(contentsOfFile: portFile, encoding: .utf8)
            return port != nil
        }
        guard let port else {
            proxy.kill()
            throw TestDirectory.Failure("the range proxy did not start within 10 s")
        }
        uri = "ldap://127.0.0.1:\(port)"
    }

    func stop() {
        proxy.signal(SIGTERM)
        _ = proxy.finish(timeout: 10)
        try? FileManager.default.removeItem(atPath: folder)
    }
}

@Suite("ranged attribute retrieval (AD's MaxValRange) against slapd behind a proxy",
       .enabled(if: bridgeTestsEnabled, "needs TB_TEST_ENV (run scripts/test.sh)"))
struct RangedRetrievalTests {
    /// A device entry with `count` members (users need not exist for a raw read).
    func bigDevice(_ s: Scenario, _ name: String, count: Int) throws {
        try s.addDevice(name, (1...count).map { "u\($0)" })
    }

    func readMembers(_ s: Scenario, through proxy: RangeProxy, device: String) async throws -> LDAPEntry? {
        let connection = try await s.server.connect(as: .bind, uri: proxy.uri)
        var found: LDAPEntry?
        _ = try await connection.search(base: s.deviceDN(device), scope: .base, filter: "(objectClass=*)",
                                        attributes: ["cn", "member"], pageSize: 0) { found = $0 }
        await connection.close()
        return found
    }

    @Test func aRangedListIsReadToTheEnd() async throws {
        let s = try Scenario()
        try bigDevice(s, "big", count: 25)
        for mode in ["windows", "decoy"] {
            let proxy = try RangeProxy(upstream: s.server, maxValRange: 10, mode: mode)
            defer { proxy.stop() }
            let entry = try #require(try await readMembers(s, through: proxy, device: "big"))
            #expect(entry.incompleteAttributes.isEmpty, "\(mode): \(entry.incompleteAttributes)")
            #expect(entry.strings("member") == (1...25).map { s.userDN("u\($0)") }, "\(mode)")
            #expect(entry.attributes.map(\.name).sorted() == ["cn", "member"], "\(mode)")
        }
        // Exactly at the limit: no range at all; one over: two slices.
        for (count, name) in [(10, "ten"), (11, "eleven")] {
            try bigDevice(s, name, count: count)
            let proxy = try RangeProxy(upstream: s.server, maxValRange: 10)
            defer { proxy.stop() }
            let entry = try #require(try await readMembers(s, through: proxy, device: name))
            #expect(entry.strings("member").count == count)
        }
    }

    /// AD's own numbers: MaxValRange 1,500 and a device group of 1,600.
    @Test func aDeviceOf1600MembersAtWindowsMaxValRange() async throws {
        let s = try Scenario()
        try bigDevice(s, "big", count: 1600)
        let proxy = try RangeProxy(upstream: s.server, maxValRange: 1500)
        defer { proxy.stop() }
        let entry = try #require(try await readMembers(s, through: proxy, device: "big"))
        #expect(entry.incompleteAttributes.isEmpty)
        #expect(entry.strings("member").count == 1600)
        #expect(Set(entry.strings("member")).count == 1600)
    }

    @Test(arguments: ["never-ends", "overlap", "gap", "wrong-name"])
    func aListThatCannotBeReadWholeIsLeftOutAndNamed(mode: String) async throws {
        let s = try Scenario()
        try bigDevice(s, "big", count: 25)
        let proxy = try RangeProxy(upstream: s.server, maxValRange: 10, mode: mode)
        defer { proxy.stop() }
        let entry = try #require(try await readMembers(s, through: proxy, device: "big"))
        #expect(entry.strings("member").isEmpty, "\(mode): never a shorter list")
        let incomplete = try #require(entry.incomplete("member"), "\(mode)")
        #expect(incomplete.valuesRead >= 10)
        #expect(entry.first("cn") == "big")
    }

    /// The whole bridge through a Windows-like server: every connection of a device with
    /// more members than MaxValRange is seen, the binding group (members and records,
    /// both ranged) reads back whole, so plan --check is clean after apply.
    @Test func theBridgeReadsRangedDevicesAndBindingGroups() async throws {
        let s = try Scenario(layout: .groupOfNames)
        let users = (1...25).map { ("u\($0)", String?.none) }
        try s.addUsers(users)
        try bigDevice(s, "big", count: 25)
        try s.writeReport("big", (1...25).map { ("u\($0)", 1000 + $0) }, fileName: "big.csv")
        let proxy = try RangeProxy(upstream: s.server, maxValRange: 10)
        defer { proxy.stop() }
        s.configOverrides["ldap.uri"] = s.q(proxy.uri)
        let plan = try s.bridge(["plan", "--format", "json"])
        #expect(plan.stdout.contains("\"takeover\": 25"), "\(plan.all)")
        let apply = try s.bridge(["apply"])
        #expect(apply.status == 0, "\(apply.all)")
        let groups = try await s.groups()
        #expect(groups.first?.members.count == 26) // the placeholder and 25 users
        let check = try s.bridge(["plan", "--check", "--format", "json"])
        #expect(check.status == 0, "\(check.all)")
        #expect(check.stdout.contains("\"bound\": 25"), "\(check.stdout)")
    }

    /// A hostile server: the device's connections and its binding group cannot be read
    /// whole, so the device is deferred with an error naming the entry; nothing is
    /// unbound (the group would otherwise look like it lost 15 members).
    @Test(arguments: ["overlap", "never-ends"])
    func aDeviceWhoseListsCannotBeReadWholeIsDeferred(mode: String) async throws {
        let s = try Scenario(layout: .groupOfNames)
        try s.addUsers((1...25).map { ("u\($0)", String?.none) })
        try bigDevice(s, "big", count: 25)
        try s.writeReport("big", (1...25).map { ("u\($0)", 1000 + $0) }, fileName: "big.csv")
        #expect(try s.bridge(["apply"]).status == 0)
        let before = try s.dumpBindings()
        let proxy = try RangeProxy(upstream: s.server, maxValRange: 10, mode: mode)
        defer { proxy.stop() }
        s.configOverrides["ldap.uri"] = s.q(proxy.uri)
        let plan = try s.bridge(["plan", "--format", "json"])
        #expect(plan.stdout.contains("\"changes\": 0"), "\(plan.all)")
        #expect(plan.stdout.contains("\"unbind\": 0"))
        #expect(!plan.stdout.contains("\"action\": \"unbind\""))
        #expect(plan.stdout.contains("could not be read whole"), "\(plan.stdout)")
        #expect(plan.stdout.contains(s.deviceDN("big")) || plan.stdout.contains(s.groupDN("big")))
        let doctor = try s.bridge(["doctor"])
        #expect(doctor.status == 5, "\(doctor.all)")
        #expect(doctor.stdout.contains("FAIL value lists"), "\(doctor.stdout)")
        let apply = try s.bridge(["apply"])
        #expect(apply.stderr.contains("written=0"), "\(apply.all)")
        #expect(try s.dumpBindings() == before)
    }
}
