// LDAPServerAddress: the strict reading of referral URLs. Server-free.

import LDAPClient
import Testing

@Suite("referral URLs, parsed strictly")
struct ServerAddressTests {
    func address(_ url: String) throws -> LDAPServerAddress { try LDAPServerAddress(url: url) }

    @Test func spellingsOfOneServerCompareEqual() throws {
        #expect(try address("ldap://Provider.Example.org") == address("LDAP://provider.example.org:389/"))
        #expect(try address("ldap://127.0.0.1:3890/cn=x,dc=y??base?(objectClass=*)") == address("ldap://127.0.0.1:3890"))
        #expect(try address("ldaps://h") == address("ldaps://h:636"))
        #expect(try address("ldap://[::1]:1389") == address("ldap://[0:0:0:0:0:0:0:1]:1389"))
        #expect(try address("ldapi://%2Fvar%2Frun%2Fslapd%2Fldapi").host == "/var/run/slapd/ldapi")
        #expect(try address("ldap://h:389") != address("ldaps://h:389"), "the scheme counts")
        #expect(try address("ldap://h:389") != address("ldap://h:3389"), "the port counts")
    }

    /// Everything a server could send to make libldap go somewhere the bridge did not
    /// mean: each is refused, with a reason.
    @Test(arguments: [
        "ldap://2130706433:3899,",            // the issue: a trailing comma starts a list in libldap
        "ldap://127.0.0.1:3899,ldap://x",    // a list in one URL
        "ldap://127.0.0.1:3899 ldap://x",    // a space-separated list
        "ldap://127.0.0.1:3899\tx",
        " ldap://127.0.0.1:3899",
        "ldap://127.0.0.1:3899\n",
        "ldap://127.0.0.1:3899\u{1B}[2J",
        "ldap://2130706433:3899",            // decimal IPv4
        "ldap://0177.0.0.1:3899",            // octal
        "ldap://0x7f.0.0.1:3899",            // hex
        "ldap://0x7f000001:3899",
        "ldap://127.1:3899",                 // short form
        "ldap://127.000.000.001:3899",
        "ldap://999.0.0.1:3899",
        "ldap://user@127.0.0.1:3899",        // userinfo
        "ldap://user:pw@127.0.0.1:3899",
        "ldap://%31%32%37.0.0.1:3899",       // percent-encoded host
        "ldap://127.0.0.1%3a3899",
        "ldap://ex%61mple.org",
        "ldap://[::1%lo]:3899",              // IPv6 zone
        "ldap://[::1:3899",
        "ldap://::1:3899",
        "ldap://[::1]x:3899",
        "ldap://[127.0.0.1]:3899",
        "ldap://127.0.0.1:",                 // ports
        "ldap://127.0.0.1:0",
        "ldap://127.0.0.1:65536",
        "ldap://127.0.0.1:+3899",
        "ldap://127.0.0.1:3899:1",
        "ldap://127.0.0.1?base",
        "ldap://127.0.0.1#x",
        "ldap://exa_mple.org",
        "ldap://example..org",
        "ldap://.example.org",
        "ldap://ex\u{E4}mple.org",           // non-ASCII
        "ldap://xn--exmple-cua.org\u{200B}",
        "ldap:///dc=example,dc=org",         // no host: "the client's default"
        "ldap://",
        "http://127.0.0.1:3899/",            // schemes
        "cldap://127.0.0.1:3899",
        "ldap:/127.0.0.1:3899",
        "127.0.0.1:3899",
        "",
        "ldapi://%2Fx%zz",
        "ldapi://%2Ftmp%2Fa%0Ab",
    ])
    func hostileURLsAreRefused(_ url: String) {
        #expect(throws: LDAPURLError.self, "\(url.debugDescription)") { try LDAPServerAddress(url: url) }
    }

    @Test func refusalsNameTheURLVisibly() {
        do {
            _ = try LDAPServerAddress(url: "ldap://127.0.0.1:3899\n\u{1B}]52;c;AAAA\u{07}")
            Issue.record("accepted")
        } catch {
            #expect(!error.description.contains("\n"))
            #expect(!error.description.contains("\u{1B}"))
            #expect(error.description.contains("ldap://127.0.0.1:3899\\u{a}"))
        }
        let long = LDAPURLError(url: String(repeating: "a", count: 100_000), reason: "x")
        #expect(long.description.count < 300)
    }

    @Test func matchReturnsTheConfiguredURI() throws {
        let configured = ["ldap://replica.example.org", "ldaps://Provider.example.org:636/"]
        #expect(LDAPServerAddress.match(try address("ldaps://provider.example.org"), in: configured)
            == "ldaps://Provider.example.org:636/")
        #expect(LDAPServerAddress.match(try address("ldap://provider.example.org"), in: configured) == nil)
        #expect(LDAPServerAddress.match(try address("ldap://evil.example.org"), in: configured) == nil)
        #expect(LDAPServerAddress.match(try address("ldap://127.0.0.1:3899"), in: ["ldap://2130706433:3899"]) == nil,
                "a configured URI that does not parse strictly never matches")
    }
}
