// One cleartext rule (docs/product.md section 7): the configuration's refusal
// (`BridgeConfig.cleartextProblem`) and the connection's report
// (`LDAPConnectionOptions.sendsPasswordsInCleartext`) agree on every URI. They once
// disagreed on `ldap:///` (no host) and on names like 127.0.0.1.nip.io.

import LDAPClient
import Testing
@testable import TakeoverBridge

@Suite struct CleartextRuleTests {
    static let schemes = ["ldap", "LDAP", "ldaps", "ldapi", "http"]
    static let hosts = ["", "localhost", "LOCALHOST", "db.localhost", "127.0.0.1", "127.8.9.10", "128.0.0.1",
                        "127.0.0.1.nip.io", "localhost.example.org", "[::1]", "[::2]", "[::ffff:127.0.0.1]",
                        "[::ffff:10.0.0.1]", "10.0.0.5", "ldap.example.org", "%2Frun%2Fslapd%2Fldapi", "[::1",
                        "127.0.0.256", "0177.0.0.1"]
    static let tails = ["", ":389", ":3890/", "/dc=example,dc=org", ":x"]

    /// Every scheme, host and tail, alone and as the second URI after a safe one.
    static var uris: [String] {
        var out: [String] = []
        for scheme in schemes {
            for host in hosts {
                for tail in tails {
                    let uri = "\(scheme)://\(host)\(tail)"
                    out.append(uri)
                    out.append("ldaps://safe.example.org " + uri)
                }
            }
        }
        return out
    }

    static func config(uri: String, startTLS: Bool = false) -> BridgeConfig {
        var ldap = BridgeConfig.LDAP(uri: uri, bindDN: "cn=bridge,dc=example,dc=org", bindPasswordEnv: "PW")
        ldap.startTLS = startTLS
        return BridgeConfig(ldap: ldap, users: .init(searchBase: "dc=x"),
                            devices: .init(searchBase: "dc=y", reports: "/r"),
                            bindings: .init(searchBase: "dc=z"))
    }

    @Test func theConfigurationAndTheConnectionAgreeOnEveryURI() {
        var refused = 0
        for uri in Self.uris {
            let configRefuses = Self.config(uri: uri).cleartextProblem() != nil
            let connectionWarns = LDAPConnectionOptions(uri: uri).sendsPasswordsInCleartext
            #expect(configRefuses == connectionWarns, "\(uri): config \(configRefuses), connection \(connectionWarns)")
            if configRefuses { refused += 1 }
            #expect(Self.config(uri: uri, startTLS: true).cleartextProblem() == nil)
            #expect(!LDAPConnectionOptions(uri: uri, startTLS: true).sendsPasswordsInCleartext)
        }
        // Both answers occur (the generator is not one-sided).
        #expect(refused > 0 && refused < Self.uris.count)
    }

    @Test func theRuleItself() {
        #expect(LDAPURI.cleartextExposure("ldap:///") == .noHost)
        #expect(LDAPURI.cleartextExposure("ldap://127.0.0.1.nip.io") == .host("127.0.0.1.nip.io"))
        #expect(LDAPURI.cleartextExposure("ldap://[::1]:389") == nil)
        #expect(LDAPURI.cleartextExposure("ldaps://anywhere.example.org") == nil)
        #expect(LDAPURI.cleartextExposure("ldap://[::1") == .unreadable)
    }
}
