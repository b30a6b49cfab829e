import Foundation
import LDAPTestSupport
import LDAPClient
import Testing

@Suite("connect, bind, TLS, SASL", .enabled(if: serverConfigured, "needs TB_TEST_ENV (run scripts/test.sh)"))
struct ConnectionTests {
    @Test func simpleBindAsServiceAccountAndWhoAmI() async throws {
        let server = try sharedServer()
        let connection = try await server.connect(as: .bind)
        #expect(try await connection.whoAmI() == "dn:\(server.bindDN)")
        await connection.close()
    }

    @Test func anonymousAndRootIdentities() async throws {
        let server = try sharedServer()
        let anonymous = try await server.connect(as: .anonymous)
        #expect(try await anonymous.whoAmI() == "")
        await anonymous.close()
        let root = try await server.connect(as: .root)
        #expect(try await root.whoAmI() == "dn:\(server.rootDN)")
        // Rebinding on the same connection changes the identity.
        try await root.bind(.simple(dn: server.bindDN, password: server.bindPassword()))
        #expect(try await root.whoAmI() == "dn:\(server.bindDN)")
        await root.close()
    }

    @Test func wrongPasswordIsInvalidCredentialsAndNeverPrintsThePassword() async throws {
        let server = try sharedServer()
        let connection = try await LDAPConnection.connect(LDAPConnectionOptions(uri: server.ldapURI))
        let password = "not-the-password-\(UInt32.random(in: 0...UInt32.max))"
        let error = await expectLDAPError {
            try await connection.bind(.simple(dn: server.bindDN, password: Secret(password)))
        }
        #expect(error?.code == .invalidCredentials)
        #expect(error?.operation == .bind)
        #expect(error?.dn == server.bindDN)
        #expect(error?.message == "Invalid credentials")
        #expect(error?.isConnectionLost == false)
        #expect(error.map { String(describing: $0) }?.contains(password) == false)
        #expect(error?.description.hasPrefix("bind of '\(server.bindDN)' failed: Invalid credentials (49)") == true)
        #expect("\(Secret(password))" == "<redacted>")
        #expect(String(reflecting: Secret(password)) == "<redacted>")
        // The connection survives a failed bind.
        try await connection.bind(.simple(dn: server.bindDN, password: server.bindPassword()))
        #expect(try await connection.whoAmI() == "dn:\(server.bindDN)")
        await connection.close()
    }

    @Test func unreachableServerIsAConnectError() async throws {
        let port = closedPort()
        let error = await expectLDAPError {
            _ = try await LDAPConnection.connect(LDAPConnectionOptions(uri: "ldap://127.0.0.1:\(port)", timeout: 2))
        }
        #expect(error?.code == .serverDown)
        #expect(error?.operation == .connect)
        #expect(error?.isConnectionLost == true)
        #expect(error?.description.contains("Can't contact LDAP server") == true)
    }

    @Test func badURIIsAParameterError() async throws {
        let error = await expectLDAPError {
            _ = try await LDAPConnection.connect(LDAPConnectionOptions(uri: "http://example.org"))
        }
        #expect(error?.code == .paramError)
        #expect(error?.operation == .connect)
    }

    @Test func severalURIsAreTriedInOrder() async throws {
        let server = try sharedServer()
        let uri = "ldap://127.0.0.1:\(closedPort()) \(server.ldapURI)"
        try await expectIdentity("dn:\(server.bindDN)", LDAPConnectionOptions(uri: uri, timeout: 5),
                                 .simple(dn: server.bindDN, password: server.bindPassword()))
    }

    @Test func startTLSWithTheRightCA() async throws {
        let server = try sharedServer()
        try await expectIdentity("dn:\(server.bindDN)",
                                 LDAPConnectionOptions(uri: server.ldapURI, startTLS: true, tlsCACertFile: server.caCert),
                                 .simple(dn: server.bindDN, password: server.bindPassword()))
    }

    @Test func startTLSWithAWrongCAFails() async throws {
        let server = try sharedServer()
        let error = await expectLDAPError {
            _ = try await LDAPConnection.connect(
                LDAPConnectionOptions(uri: server.ldapURI, startTLS: true, tlsCACertFile: server.wrongCACert))
        }
        #expect(error?.operation == .starttls)
        #expect(error?.code == .connectError)
        #expect(error?.diagnostic?.contains("TLS handshake failed") == true)
        #expect(error?.diagnostic?.contains(server.wrongCACert) == true)
    }

    @Test func ldapsWithTheRightCA() async throws {
        let server = try sharedServer()
        try await expectIdentity("dn:\(server.bindDN)", LDAPConnectionOptions(uri: server.ldapsURI, tlsCACertFile: server.caCert),
                                 .simple(dn: server.bindDN, password: server.bindPassword()))
    }

    @Test func ldapsWithAWrongCAFails() async throws {
        let server = try sharedServer()
        let error = await expectLDAPError {
            _ = try await LDAPConnection.connect(LDAPConnectionOptions(uri: server.ldapsURI, tlsCACertFile: server.wrongCACert))
        }
        #expect(error?.operation == .connect)
        #expect(error?.code == .serverDown)
        #expect(error?.diagnostic?.contains("TLS handshake failed") == true)
    }

    @Test func unreadableCAFileIsNamed() async throws {
        let server = try sharedServer()
        let error = await expectLDAPError {
            _ = try await LDAPConnection.connect(LDAPConnectionOptions(uri: server.ldapURI, startTLS: true, tlsCACertFile: "/nonexistent/ca.pem"))
        }
        #expect(error?.code == .localError)
        #expect(error?.isConnectionLost == false)
        #expect(error?.diagnostic?.contains("tls_cacert '/nonexistent/ca.pem'") == true)
    }

    @Test func verificationCanBeTurnedOffPerConnectionOnly() async throws {
        let server = try sharedServer()
        // reqcert never accepts the unknown CA on this handle...
        let lax = try await LDAPConnection.connect(
            LDAPConnectionOptions(uri: server.ldapsURI, tlsRequireCert: .never, tlsCACertFile: server.wrongCACert))
        try await lax.bind(.anonymous)
        await lax.close()
        // ...and does not leak into the next handle, which still verifies.
        let error = await expectLDAPError {
            _ = try await LDAPConnection.connect(LDAPConnectionOptions(uri: server.ldapsURI, tlsCACertFile: server.wrongCACert))
        }
        #expect(error?.code == .serverDown)
    }

    @Test func saslExternalOverLDAPI() async throws {
        let server = try sharedServer()
        try await expectIdentity("dn:\(server.ldapiExternalDN)", LDAPConnectionOptions(uri: server.ldapiURI),
                                 .sasl(mechanism: "EXTERNAL"))
    }

    @Test func saslExternalOverTLSWithAClientCertificate() async throws {
        let server = try sharedServer()
        try await expectIdentity("dn:\(server.bindDN)",
                                 LDAPConnectionOptions(uri: server.ldapsURI, tlsCACertFile: server.caCert,
                                                       tlsCertFile: server.clientCert, tlsKeyFile: server.clientKey),
                                 .sasl(mechanism: "EXTERNAL"))
    }

    @Test func saslInteractiveBindWithAPassword() async throws {
        let server = try sharedServer()
        // The test server maps SASL user NAME to uid=NAME,ou=people (flat), so the user
        // lives directly under ou=people.
        let name = uniqueName("sasl")
        let dn = "uid=\(name),\(server.peopleBase)"
        let password = "pw-\(UInt32.random(in: 0...UInt32.max))"
        let root = try await server.connect(as: .root)
        try await root.add(dn: dn, attributes: [
            ("objectClass", ["inetOrgPerson"]), ("uid", [name]), ("cn", [name]), ("sn", [name]),
            ("userPassword", [password]), // cleartext: SCRAM needs it on the server side
        ])

        let connection = try await LDAPConnection.connect(LDAPConnectionOptions(uri: server.ldapURI))
        try await connection.bind(.sasl(mechanism: "SCRAM-SHA-256", authcID: name, password: Secret(password)))
        #expect(try await connection.whoAmI() == "dn:\(dn)")

        let error = await expectLDAPError {
            try await connection.bind(.sasl(mechanism: "SCRAM-SHA-256", authcID: name, password: Secret("wrong")))
        }
        #expect(error?.code == .invalidCredentials)
        #expect(error?.operation == .bind)
        #expect(error?.description.contains("wrong") == false)
        await connection.close()
        try await root.delete(dn: dn)
        await root.close()
    }

    @Test func rootDSEAndSubschema() async throws {
        let server = try sharedServer()
        let connection = try await server.connect(as: .bind)
        let root = try await connection.rootDSE()
        #expect(root.dn == "")
        #expect(root.strings("namingContexts").contains(server.base))
        #expect(root.strings("supportedControl").contains("1.2.840.113556.1.4.319")) // paged results
        #expect(root.strings("supportedLDAPVersion") == ["3"])
        #expect(root.first("SUPPORTEDldapVERSION") == "3") // names match case-insensitively
        let schema = try await connection.subschema()
        #expect(schema.dn.lowercased() == "cn=subschema")
        #expect(schema.strings("objectClasses").contains { $0.contains("NAME 'inetOrgPerson'") })
        #expect(schema.strings("attributeTypes").contains { $0.contains("NAME 'uidNumber'") })
        await connection.close()
    }

    @Test func operationsAfterCloseFailCleanly() async throws {
        let server = try sharedServer()
        let connection = try await server.connect(as: .bind)
        await connection.close()
        await connection.close() // twice is fine
        let error = await expectLDAPError { _ = try await connection.whoAmI() }
        #expect(error?.isConnectionLost == true)
    }
}

@Suite("many connections", .enabled(if: serverConfigured, "needs TB_TEST_ENV (run scripts/test.sh)"))
struct ConcurrencyTests {
    /// Eight connections searching at once, each on its own serial queue: no interference,
    /// and the cooperative pool (two threads here) is never blocked by libldap.
    @Test func connectionsWorkConcurrently() async throws {
        let server = try sharedServer()
        let counts = try await withThrowingTaskGroup(of: Int.self) { group in
            for index in 0..<8 {
                group.addTask {
                    let connection = try await server.connect(as: index.isMultiple(of: 2) ? .bind : .root)
                    var total = 0
                    for _ in 0..<20 {
                        _ = try await connection.search(base: "ou=services,\(server.base)", scope: .one, filter: "(cn=*)",
                                                        attributes: ["cn"]) { _ in total += 1 }
                    }
                    await connection.close()
                    return total
                }
            }
            var all: [Int] = []
            for try await count in group { all.append(count) }
            return all
        }
        #expect(counts == Array(repeating: 20 * 2, count: 8)) // bridge and reader, 20 times each
    }
}
