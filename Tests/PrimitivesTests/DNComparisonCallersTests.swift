// The places outside the planner that compare DNs use the one comparison
// (DNNormalizer): the configuration's search bases and the safety limits' placeholder.

import LDAPSyntax
import TakeoverCore
import Testing
@testable import TakeoverBridge

@Suite struct DNComparisonCallersTests {
    static func problems(bindings: String, devices: String) -> [String] {
        let toml = """
            [ldap]
            uri = "ldaps://ldap.example.org"
            [users]
            search_base = "ou=people,dc=example,dc=org"
            [devices]
            search_base = "\(devices)"
            reports = "reports"
            [bindings]
            search_base = "\(bindings)"
            """
        do {
            _ = try BridgeConfig.parse(toml: toml, source: "config.toml", baseDirectory: "/etc/tb")
            return []
        } catch {
            return error.problems.filter { $0.key == "bindings.search_base" }.map(\.message)
        }
    }

    @Test func bindingsInsideDevicesIsFoundWhateverTheSpelling() {
        #expect(!Self.problems(bindings: "ou=b,OU=Devices; DC=Example,dc=org", devices: "ou=devices,dc=example,dc=org").isEmpty)
        #expect(!Self.problems(bindings: "ou=devices , dc=example,dc=org", devices: "OU=Devices,DC=example,DC=org").isEmpty)
        // A space inside a value is part of it: "My Devices" is not "MyDevices".
        #expect(Self.problems(bindings: "ou=b,ou=My Devices,dc=org", devices: "ou=MyDevices,dc=org").isEmpty)
        #expect(Self.problems(bindings: "ou=bindings,dc=example,dc=org", devices: "ou=devices,dc=example,dc=org").isEmpty)
    }

    @Test func thePlaceholderIsNotABindingHoweverTheServerSpellsIt() {
        let layout = BindingLayout(base: "ou=bindings,dc=x", objectClasses: ["groupOfNames"], memberAttribute: "member",
                                   recordAttribute: "description", recordPrefix: "tb:",
                                   placeholderMember: "cn=placeholder,dc=x")
        let plan = Plan(generatedAt: 0, summary: Summary(), decisions: [], conflicts: [], warnings: [], errors: [],
                        changes: [])
        let group = BindingGroup(device: "d", dn: "cn=d,ou=bindings,dc=x",
                                 members: ["CN=Placeholder, DC=x", "uid=alice,dc=x"], records: [])
        #expect(SafetyCheck.existingBindings(plan: plan, groups: [group], layout: layout) == 1)
    }
}
