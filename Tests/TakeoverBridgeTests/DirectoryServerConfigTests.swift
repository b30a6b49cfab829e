import Testing
@testable import TakeoverBridge

/// Issue 10: the configuration forms of AD, 389 DS and OpenLDAP (PRODUCT.md 8b).
@Suite struct DirectoryServerConfigTests {
    func withBindName(_ name: String) -> String {
        let escaped = name.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
        return minimalTOML.replacingOccurrences(
            of: "[ldap]\n", with: "[ldap]\nbind_dn = \"\(escaped)\"\nbind_password_env = \"PW\"\n")
    }

    @Test(arguments: [
        ("cn=bridge,ou=services,dc=example,dc=org", BindNameForm.dn),
        ("CN=Bridge Service,OU=Service Accounts,DC=example,DC=org", .dn),
        ("cn=a@b,dc=x", .dn),
        ("bridge@example.org", .userPrincipalName),
        ("svc.bridge@corp", .userPrincipalName),
        ("EXAMPLE\\bridge", .downLevelLogon),
        ("EX-AMPLE\\svc bridge", .downLevelLogon),
    ])
    func acceptedBindNames(name: String, form: BindNameForm) {
        #expect(ConfigReader.bindNameForm(name) == form)
        #expect(parseProblems(withBindName(name)).isEmpty, "\(name)")
    }

    @Test(arguments: ["bridge", "@example.org", "bridge@", "a@b@c", "bridge@.org", "\\bridge", "EXAMPLE\\",
                      "AVERYLONGDOMAINNAME\\bridge", "EX/AMPLE\\bridge", "EXAMPLE\\a\\b", "bri dge@example.org",
                      "bridge@example.org\nuri", "=x", "cn=x,"])
    func refusedBindNames(name: String) {
        #expect(ConfigReader.bindNameForm(name) == nil)
        let problems = parseProblems(withBindName(name))
        #expect(problems.map(\.key) == ["ldap.bind_dn"], "\(name.debugDescription)")
        #expect(problems.first?.message.contains("user principal name") == true)
    }
}
