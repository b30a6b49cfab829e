import LDAPClient
import Testing
@testable import TakeoverBridge

/// The configuration forms of AD, 389 DS and OpenLDAP (docs/product.md section 8b).
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

@Suite struct StableIdentityReadingTests {
    @Test func objectGUIDInItsUsualTextForm() {
        #expect(StableIdentity.guidText(Array(0...15)) == "03020100-0504-0706-0809-0a0b0c0d0e0f")
        // The GUID AD shows as 2f0c3f15-3b8c-4a7e-a2b9-6d1c5e8a7f10, as it travels on the wire.
        let wire: [UInt8] = [0x15, 0x3f, 0x0c, 0x2f, 0x8c, 0x3b, 0x7e, 0x4a, 0xa2, 0xb9, 0x6d, 0x1c, 0x5e, 0x8a, 0x7f, 0x10]
        #expect(StableIdentity.guidText(wire) == "2f0c3f15-3b8c-4a7e-a2b9-6d1c5e8a7f10")
        #expect(StableIdentity.guidText([1, 2, 3]) == nil)
    }

    @Test func theFirstIdTheEntryHasOrTheConfiguredOne() {
        let guid: [UInt8] = Array(0...15)
        let entry = LDAPEntry(dn: "cn=a,dc=x", attributes: [
            ("nsUniqueId", [LDAPValue("a1b2c3d4-11111111-22222222-33333333")]),
            ("entryUUID", [LDAPValue("5e0e3d3a-1c2b-4f63-9a7c-0d2f1e3b4a5c")]),
            ("objectGUID", [LDAPValue(bytes: guid)]),
        ])
        #expect(StableIdentity.read(entry, attribute: "") == "03020100-0504-0706-0809-0a0b0c0d0e0f")
        #expect(StableIdentity.read(entry, attribute: "nsUniqueId") == "a1b2c3d4-11111111-22222222-33333333")
        #expect(StableIdentity.read(entry, attribute: "employeeNumber") == nil)
        let openLDAP = LDAPEntry(dn: "uid=a,dc=x", attributes: [("entryUUID", [LDAPValue("5e0e3d3a-1c2b-4f63-9a7c-0d2f1e3b4a5c")])])
        #expect(StableIdentity.read(openLDAP, attribute: "") == "5e0e3d3a-1c2b-4f63-9a7c-0d2f1e3b4a5c")
        let ds389 = LDAPEntry(dn: "uid=a,dc=x", attributes: [("nsuniqueid", [LDAPValue("a1b2c3d4-11111111-22222222-33333333")])])
        #expect(StableIdentity.read(ds389, attribute: "") == "a1b2c3d4-11111111-22222222-33333333")
    }
}
