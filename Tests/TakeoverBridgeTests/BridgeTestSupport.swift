// Support for the end-to-end tests: scenarios with their own subtrees on this target's
// private server (`bridgeServer`), captured logs, a replica pair.
//
// The tests run only under scripts/test.sh (TB_TEST_ENV set). They do not write to the
// shared server: this target starts private servers of its own (LDAPTestSupport's
// `TestDirectory.startPrivate`), so the destructive tests here (killing the server, safety
// limits that compare whole subtrees) never disturb other targets' tests, and theirs never
// disturb these.

import Foundation
import LDAPClient
import LDAPSyntax
import LDAPTestSupport
import Logging
import TakeoverCore
import Testing
@testable import TakeoverBridge

#if canImport(Glibc)
import Glibc
#endif

let bridgeTestsEnabled = TestDirectory.isConfigured

/// This target's private server for the suites that share one (started on first use,
/// stopped when the test process exits); the destructive suites start their own.
let bridgeServer = TestDirectory.privateServer()

// MARK: - Scenarios

extension Scenario {
    /// A scenario on this target's private server (or `server`) over plain ldap://, its
    /// OUs named `name` (default a random one; an earlier run's are removed first).
    convenience init(_ name: String? = nil, layout: Layout = .project, server: TestDirectory? = nil) throws {
        try self.init(name ?? "s\(UInt32.random(in: 0...UInt32.max))", on: server ?? bridgeServer.get(), layout: layout,
                      unique: false, overTLS: false)
        configDefaults = ["ldap.timeout": "10", "safety.max_unbinds": "100"]
    }

    /// The binding groups as (cn, members, records), read as the rootdn through LDAPClient.
    func groups() async throws -> [BindingGroup] {
        let connection = try await server.connect(as: .root)
        var out: [BindingGroup] = []
        let record = layout.recordAttribute
        // Not the run lease (Lease.swift), which stays between runs under the same base.
        _ = try await connection.search(base: bindings, scope: .one, filter: "(!(cn=takeover-bridge-lease))",
                                        attributes: ["cn", "member", record]) { entry in
            out.append(BindingGroup(device: entry.first("cn") ?? "", dn: entry.dn, members: entry.strings("member"),
                                    records: entry.strings(record)))
        }
        await connection.close()
        return out.sorted { $0.device < $1.device }
    }
}

// MARK: - Captured logs (in-process runs)

final class CapturedLog: @unchecked Sendable {
    // @unchecked: `lines` is only touched while holding `lock`.
    private let lock = NSLock()
    private var stored: [String] = []

    var lines: [String] {
        lock.lock()
        defer { lock.unlock() }
        return stored
    }

    var text: String { lines.joined() }

    func append(_ line: String) {
        lock.lock()
        stored.append(line)
        lock.unlock()
    }

    var logger: Logger {
        let sink: @Sendable (String) -> Void = { [self] line in self.append(line) }
        return Logger(label: "test") { _ in
            BridgeLogHandler(style: .logfmt, level: .debug, sink: sink)
        }
    }
}

/// Collects what a runner writes as results.
final class CapturedOutput: OutputSink, @unchecked Sendable {
    // @unchecked: `stored` is only touched while holding `lock`.
    private let lock = NSLock()
    private var stored = ""

    func write(_ text: String) {
        lock.lock()
        stored += text
        lock.unlock()
    }

    var text: String {
        lock.lock()
        defer { lock.unlock() }
        return stored
    }
}

/// Every file below `folder`, read as text (lossy).
func allFileContents(_ folder: String) -> [(path: String, text: String)] {
    var out: [(String, String)] = []
    guard let enumerator = FileManager.default.enumerator(atPath: folder) else { return out }
    while let relative = enumerator.nextObject() as? String {
        let path = folder + "/" + relative
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue,
           let data = FileManager.default.contents(atPath: path) {
            out.append((path, String(decoding: data, as: UTF8.self)))
        }
    }
    return out
}

// MARK: - Replication

extension TestDirectory {
    /// A provider and a read-only consumer: syncrepl (refreshAndPersist) from the
    /// provider, `updateref` pointing writes back to it, so the consumer answers every
    /// write with a referral (10), like a replica in production. The consumer starts
    /// empty and copies everything, the service account's password included.
    /// `updateRefs` replaces the consumer's `updateref` (the provider) with these URLs.
    static func startReplicaPair(updateRefs: [String]? = nil) throws -> (provider: TestDirectory, consumer: TestDirectory) {
        var provider = try startPrivate()
        var consumer = try startPrivate()
        let providerConf = provider.directory + "/slapd.conf"
        var text = try String(contentsOfFile: providerConf, encoding: .utf8)
        text = text.replacingOccurrences(of: "moduleload back_mdb\n", with: "moduleload back_mdb\nmoduleload syncprov\n")
        text += "overlay syncprov\n"
        try text.write(toFile: providerConf, atomically: true, encoding: .utf8)
        provider = try provider.restart()

        let rootPassword = try String(contentsOfFile: provider.rootPasswordFile, encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let consumerConf = consumer.directory + "/slapd.conf"
        var ctext = try String(contentsOfFile: consumerConf, encoding: .utf8)
        ctext += "syncrepl rid=001 provider=\(provider.ldapURI) bindmethod=simple binddn=\"\(provider.rootDN)\" "
            + "credentials=\(rootPassword) searchbase=\"\(provider.base)\" type=refreshAndPersist retry=\"1 +\"\n"
        for url in updateRefs ?? [provider.ldapURI] { ctext += "updateref \"\(url)\"\n" }
        try ctext.write(toFile: consumerConf, atomically: true, encoding: .utf8)
        try consumer.stop(removeFiles: false)
        // Entries seeded separately have other entryUUIDs: start empty, copy everything.
        for file in (try? FileManager.default.contentsOfDirectory(atPath: consumer.directory + "/db")) ?? [] {
            try? FileManager.default.removeItem(atPath: consumer.directory + "/db/" + file)
        }
        consumer = try consumer.restart()
        let ready = waitUntil(seconds: 15) {
            let probe = try? Processes.run("/usr/bin/ldapwhoami", ["-x", "-H", consumer.ldapURI, "-D", provider.bindDN,
                                                                   "-y", provider.bindPasswordFile], timeout: 10)
            return probe?.status == 0
        }
        guard ready else { throw TestDirectory.Failure("the consumer did not replicate the provider within 15 s") }
        return (provider, consumer)
    }
}
