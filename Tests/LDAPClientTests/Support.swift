import Foundation
import LDAPClient
import LDAPSyntax
import LDAPTestSupport
import Testing

/// Integration tests need the test server (scripts/test.sh sets TB_TEST_ENV).
let serverConfigured = TestDirectory.isConfigured

func sharedServer() throws -> TestDirectory { try TestDirectory.shared() }

/// A name no other test (or test run) uses.
func uniqueName(_ prefix: String) -> String {
    "\(prefix)-\(UInt32.random(in: 0...UInt32.max))"
}

/// A fresh subtree `ou=NAME,PARENT` created by the rootdn; removed with `removeSubtree`.
func makeSubtree(_ server: TestDirectory, under parent: String? = nil, prefix: String = "t") async throws -> String {
    let dn = "ou=\(uniqueName(prefix)),\(parent ?? server.base)"
    let root = try await server.connect(as: .root)
    try await root.add(dn: dn, attributes: [("objectClass", ["organizationalUnit"]), ("ou", [String(dn.dropFirst(3).prefix { $0 != "," })])])
    await root.close()
    return dn
}

/// Deletes `dn` and everything below it, deepest first, as the rootdn.
func removeSubtree(_ server: TestDirectory, _ dn: String) async throws {
    let root = try await server.connect(as: .root)
    var dns: [String] = []
    do {
        _ = try await root.search(base: dn, scope: .sub, filter: "(objectClass=*)", attributes: ["1.1"]) { dns.append($0.dn) }
    } catch let error as LDAPError where error.code == .noSuchObject {
        await root.close()
        return
    }
    // Deepest first: more RDNs first.
    let ordered = dns.sorted { ((try? DN(parsing: $0).rdns.count) ?? 0) > ((try? DN(parsing: $1).rdns.count) ?? 0) }
    for entry in ordered { try await root.delete(dn: entry) }
    await root.close()
}

/// Adds `count` inetOrgPerson entries `uid=PREFIXn,BASE` as the rootdn, pipelined in
/// batches through ldapadd (fast), numbered 0..<count.
func seedPeople(_ server: TestDirectory, base: String, count: Int, prefix: String = "u") throws {
    var ldif = ""
    ldif.reserveCapacity(count * 160)
    for index in 0..<count {
        ldif += "dn: uid=\(prefix)\(index),\(base)\nobjectClass: inetOrgPerson\nobjectClass: posixAccount\nuid: \(prefix)\(index)\ncn: Person \(index)\nsn: P\(index)\nuidNumber: \(10000 + index)\ngidNumber: 100\nhomeDirectory: /home/\(prefix)\(index)\n\n"
    }
    try runTool("ldapadd", ["-x", "-H", server.ldapURI, "-D", server.rootDN, "-y", server.rootPasswordFile], input: ldif)
}

/// Runs an ldap-utils tool; throws with its stderr on failure.
@discardableResult
func runTool(_ tool: String, _ arguments: [String], input: String? = nil) throws -> String {
    let result = try Processes.run(tool, arguments, input: input)
    guard result.status == 0 else {
        throw ToolError(description: "\(tool) exited \(result.status): \(result.stderr)")
    }
    return result.stdout
}

struct ToolError: Error, CustomStringConvertible { var description: String }

/// Runs `body` with a private server of its own; always stops it.
func withPrivateServer<T>(_ body: (TestDirectory) async throws -> T) async throws -> T {
    let server = try TestDirectory.startPrivate()
    do {
        let value = try await body(server)
        try server.stop()
        return value
    } catch {
        try? server.stop()
        throw error
    }
}

/// Runs `body` expecting an LDAPError, returning it (records an issue if none or another error).
func expectLDAPError(_ body: () async throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) async -> LDAPError? {
    do {
        try await body()
        Issue.record("expected an LDAPError, got success", sourceLocation: sourceLocation)
        return nil
    } catch let error as LDAPError {
        return error
    } catch {
        Issue.record("expected an LDAPError, got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

/// Runs `body` with the shared server, a fresh subtree `ou=PREFIX-n` under its bindings
/// base and a connection bound as the service account; then closes the connection and
/// removes the subtree.
func withBindingsSubtree(_ prefix: String, _ body: (TestDirectory, String, LDAPConnection) async throws -> Void)
    async throws {
    let server = try sharedServer()
    let ou = try await makeSubtree(server, under: server.bindingsBase, prefix: prefix)
    let bridge = try await server.connect(as: .bind)
    try await body(server, ou, bridge)
    await bridge.close()
    try await removeSubtree(server, ou)
}

/// Connects with `options`, binds with `credentials`, expects the server to name
/// `identity` (`whoAmI`, e.g. `dn:uid=...`), and closes the connection.
func expectIdentity(_ identity: String, _ options: LDAPConnectionOptions, _ credentials: LDAPCredentials,
                    sourceLocation: SourceLocation = #_sourceLocation) async throws {
    let connection = try await LDAPConnection.connect(options)
    try await connection.bind(credentials)
    #expect(try await connection.whoAmI() == identity, sourceLocation: sourceLocation)
    await connection.close()
}
