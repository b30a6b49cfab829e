// A search-and-modify loop over every LDAPClient path that allocates in C (binds of each
// kind, TLS, paged search, entries with binary values, references, every error path,
// pipelined modifies), run under valgrind by scripts/leak-check.sh.
//
// usage: ldap-leak-loop ENV_FILE [ITERATIONS]

import Foundation
import LDAPClient
import LDAPTestSupport

struct Stop: Error {}

// Synchronous entry point: valgrind 3.19 crashes on Swift's async `main` (the main thread
// parks in libdispatch's `dispatch_main`), so the work runs in a detached task while the
// main thread waits on a semaphore.
let arguments = CommandLine.arguments
guard arguments.count >= 2 else {
    FileHandle.standardError.write(Data("usage: ldap-leak-loop ENV_FILE [ITERATIONS]\n".utf8))
    exit(64)
}
let iterations = arguments.count >= 3 ? Int(arguments[2]) ?? 10 : 10
let envFile = arguments[1]
let finished = DispatchSemaphore(value: 0)
let outcome = Outcome()
Task.detached {
    do {
        let server = try TestDirectory(envFile: envFile)
        try await LeakLoop.seed(server)
        for _ in 0..<iterations { try await LeakLoop.once(server) }
        outcome.set("leak loop: \(iterations) iterations done")
    } catch {
        outcome.set("leak loop failed: \(error)", failed: true)
    }
    finished.signal()
}
finished.wait()
let (message, failed) = outcome.get()
FileHandle.standardError.write(Data((message + "\n").utf8))
exit(failed ? 1 : 0)

/// The loop's result, handed from the task to the main thread.
final class Outcome: @unchecked Sendable { // guarded by `lock`
    private let lock = NSLock()
    private var message = ""
    private var failed = false
    func set(_ message: String, failed: Bool = false) { lock.withLock { self.message = message; self.failed = failed } }
    func get() -> (String, Bool) { lock.withLock { (message, failed) } }
}

enum LeakLoop {
    static func seed(_ server: TestDirectory) async throws {
        let root = try await server.connect(as: .root)
        let ou = "ou=leak,\(server.base)"
        try await addUnlessPresent(root, ou, [("objectClass", [LDAPValue("organizationalUnit")]), ("ou", [LDAPValue("leak")])])
        for index in 0..<600 {
            try await addUnlessPresent(root, "uid=l\(index),\(ou)", [
                ("objectClass", [LDAPValue("inetOrgPerson")]), ("uid", [LDAPValue("l\(index)")]), ("cn", [LDAPValue("Leak \(index)")]),
                ("sn", [LDAPValue("L")]), ("jpegPhoto", [LDAPValue(bytes: [0, 1, 2, 0xFF, 0xFE, UInt8(index % 256)])]),
            ])
        }
        await root.close()
    }

    static func addUnlessPresent(_ connection: LDAPConnection, _ dn: String, _ values: [(String, [LDAPValue])]) async throws {
        do {
            try await connection.add(dn: dn, values: values)
        } catch {
            if !error.isAlreadyDone { throw error }
        }
    }

    static func once(_ server: TestDirectory) async throws {
        try await reads(server)
        try await writes(server)
        try await transports(server)
    }

    static func reads(_ server: TestDirectory) async throws {
        let ou = "ou=leak,\(server.base)"
        // Plain bind as the service account; paged search over 600 entries with binary values.
        let bridge = try await server.connect(as: .bind)
        var count = 0
        _ = try await bridge.search(base: ou, scope: .one, filter: "(uid=*)", attributes: ["uid", "cn", "jpegPhoto"], pageSize: 100) { entry in
            count += entry.values("jpegPhoto").count
        }
        precondition(count == 600)
        _ = try await bridge.whoAmI()
        _ = try await bridge.rootDSE()
        _ = try await bridge.subschema()
        _ = try await bridge.read(dn: "uid=l1,\(ou)")
        _ = try await bridge.read(dn: "uid=missing,\(ou)")
        // Handler stops early (abandon).
        do {
            _ = try await bridge.search(base: ou, scope: .one, filter: "(uid=*)", attributes: [], pageSize: 50) { _ in throw Stop() }
        } catch is Stop {}
        // Error results with matched DN and diagnostics.
        _ = try? await bridge.search(base: "ou=x,ou=y,\(ou)", scope: .sub, filter: "(uid=*)", attributes: []) { _ in }
        _ = try? await bridge.search(base: ou, scope: .sub, filter: "(uid=*", attributes: []) { _ in }
        _ = try? await bridge.search(base: ou, scope: .sub, filter: "(uid=*)", attributes: [], pageSize: 0, sizeLimit: 5) { _ in }
        await bridge.close()

        // Size limit as the reader (default limits).
        let reader = try await server.connect(as: .reader)
        _ = try? await reader.search(base: ou, scope: .one, filter: "(uid=*)", attributes: ["uid"], pageSize: 100) { _ in }
        await reader.close()
    }

    static func writes(_ server: TestDirectory) async throws {
        let ou = "ou=leak,\(server.base)"
        let bridge = try await server.connect(as: .bind)
        // Writes under ou=bindings: entry add/delete, value add/delete, already-done paths.
        let group = "cn=leak-\(UInt32.random(in: 0...UInt32.max)),\(server.bindingsBase)"
        try await bridge.add(dn: group, attributes: [("objectClass", ["groupOfNames"]), ("cn", [String(group.dropFirst(3).prefix { $0 != "," })]), ("member", [server.bindDN])])
        _ = try? await bridge.add(dn: group, attributes: [("objectClass", ["groupOfNames"]), ("cn", ["x"]), ("member", [server.bindDN])])
        try await bridge.modify(dn: group, [Modification(.add, "member", ["uid=l1,\(ou)"])])
        _ = try? await bridge.modify(dn: group, [Modification(.add, "member", ["uid=l1,\(ou)"])])
        try await bridge.modify(dn: group, [Modification(.delete, "member", ["uid=l1,\(ou)"])])
        _ = try? await bridge.modify(dn: group, [Modification(.delete, "member", ["uid=l1,\(ou)"])])
        _ = try? await bridge.modify(dn: ou, [Modification(.add, "description", ["denied"])])
        let requests = (0..<200).map { ModifyRequest(dn: group, modifications: [Modification(.add, "member", ["uid=l\($0 % 150),\(ou)"])]) }
        _ = try await bridge.modifyPipelined(requests, window: 32)
        try await bridge.delete(dn: group)
        _ = try? await bridge.delete(dn: group)
        // Wrong password on a live connection.
        _ = try? await bridge.bind(.simple(dn: server.bindDN, password: Secret("wrong")))
        await bridge.close()
    }

    static func transports(_ server: TestDirectory) async throws {
        // TLS: StartTLS, ldaps, wrong CA, EXTERNAL over ldapi and TLS, SCRAM.
        let tls = try await LDAPConnection.connect(LDAPConnectionOptions(uri: server.ldapURI, startTLS: true, tlsCACertFile: server.caCert))
        try await tls.bind(.simple(dn: server.bindDN, password: server.bindPassword()))
        await tls.close()
        let ldaps = try await LDAPConnection.connect(LDAPConnectionOptions(
            uri: server.ldapsURI, tlsCACertFile: server.caCert, tlsCertFile: server.clientCert, tlsKeyFile: server.clientKey))
        try await ldaps.bind(.sasl(mechanism: "EXTERNAL"))
        await ldaps.close()
        _ = try? await LDAPConnection.connect(LDAPConnectionOptions(uri: server.ldapsURI, tlsCACertFile: server.wrongCACert))
        _ = try? await LDAPConnection.connect(LDAPConnectionOptions(uri: server.ldapURI, startTLS: true, tlsCACertFile: server.wrongCACert))
        let ldapi = try await LDAPConnection.connect(LDAPConnectionOptions(uri: server.ldapiURI))
        try await ldapi.bind(.sasl(mechanism: "EXTERNAL"))
        _ = try? await ldapi.bind(.sasl(mechanism: "SCRAM-SHA-256", authcID: "nobody-here", password: Secret("x")))
        await ldapi.close()
        // Unreachable server; a connection dropped without close() (deinit unbinds).
        _ = try? await LDAPConnection.connect(LDAPConnectionOptions(uri: "ldap://127.0.0.1:1", timeout: 2))
        _ = try await server.connect(as: .anonymous)
    }
}
