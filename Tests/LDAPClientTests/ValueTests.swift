import LDAPClient
import Testing

/// Server-free tests of the value types.
@Suite("values without a server")
struct ValueTests {
    @Test func valuesKeepBytesAndCheckUTF8() {
        #expect(LDAPValue("Zoë").bytes == [0x5A, 0x6F, 0xC3, 0xAB])
        #expect(LDAPValue("Zoë").string == "Zoë")
        #expect(LDAPValue(bytes: [0xC3]).string == nil)
        #expect(LDAPValue(bytes: [0x61, 0x00, 0x62]).string == "a\u{0}b")
        #expect(LDAPValue(bytes: []).string == "")
    }

    @Test func entryLookupsIgnoreASCIICaseOnly() {
        let entry = LDAPEntry(dn: "uid=a,dc=x", attributes: [
            (name: "objectClass", values: [LDAPValue("top"), LDAPValue("person")]),
            (name: "jpegPhoto", values: [LDAPValue(bytes: [0xFF, 0x00])]),
            (name: "cn", values: [LDAPValue(bytes: [0xFF]), LDAPValue("Alice")]),
            (name: "cn;lang-en", values: [LDAPValue("Alice EN")]),
        ])
        #expect(entry.strings("OBJECTCLASS") == ["top", "person"])
        #expect(entry.values("jpegphoto") == [LDAPValue(bytes: [0xFF, 0x00])])
        #expect(entry.strings("jpegPhoto").isEmpty)
        #expect(entry.first("CN") == "Alice") // first UTF-8 value
        #expect(entry.strings("cn") == ["Alice"]) // options are part of the name
        #expect(entry.first("cn;LANG-EN") == "Alice EN")
        #expect(entry.values("sn").isEmpty)
        #expect(entry.first("sn") == nil)
        #expect(entry.has("Cn") && !entry.has("sn"))
    }

    @Test func errorsDescribeThemselvesOnOneLineWithoutSecrets() {
        let error = LDAPError(code: 49, operation: "bind", message: "Invalid credentials",
                              diagnostic: "line one\nline two", matchedDN: nil, dn: "cn=bridge,dc=x")
        #expect(error.description == "bind of 'cn=bridge,dc=x' failed: Invalid credentials (49); diagnostic: line one line two")
        #expect(!error.isConnectionLost)
        #expect(!error.isAlreadyDone)
        for code: Int32 in [-1, -5, -11] {
            #expect(LDAPError(code: code, operation: "search", message: "x").isConnectionLost)
        }
        let referral = LDAPError(code: 10, operation: "modify", message: "Referral", matchedDN: "dc=x",
                                 referrals: ["ldap://a/", "ldap://b/"], dn: "cn=g,dc=x", firstUnknownIndex: 3)
        #expect(referral.description == "modify of 'cn=g,dc=x' failed: Referral (10); matched: 'dc=x'; referrals: ldap://a/ ldap://b/; outcome unknown from request #3")
        let secret = Secret("hunter2")
        #expect("\(secret)" == "<redacted>" && String(reflecting: secret) == "<redacted>")
        #expect(!"\(LDAPCredentials.simple(dn: "cn=a", password: secret))".contains("hunter2"))
    }

    @Test func cleartextDetection() {
        func cleartext(_ uri: String, startTLS: Bool = false) -> Bool {
            LDAPConnectionOptions(uri: uri, startTLS: startTLS).sendsPasswordsInCleartext
        }
        #expect(cleartext("ldap://ldap.example.org"))
        #expect(cleartext("ldap://10.0.0.5:389/"))
        #expect(cleartext("ldaps://a.example.org ldap://b.example.org"))
        #expect(!cleartext("ldap://ldap.example.org", startTLS: true))
        #expect(!cleartext("ldaps://ldap.example.org"))
        #expect(!cleartext("ldapi://%2Frun%2Fslapd%2Fldapi"))
        #expect(!cleartext("ldap://127.0.0.1:3890"))
        #expect(!cleartext("LDAP://localhost"))
        #expect(!cleartext("ldap://[::1]:389"))
        // No host: libldap goes to its default host (ldap.conf), which may be anywhere: the
        // configuration refuses it too (ConfigTests.cleartextRule; one rule, LDAPURI).
        #expect(cleartext("ldap:///"))
        #expect(cleartext("ldap://127.0.0.1.nip.io"))
    }
}
