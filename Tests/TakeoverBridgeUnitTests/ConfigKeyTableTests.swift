// The key table (Sources/TakeoverBridge/Config/ConfigKeys.swift) is the one statement of the
// configuration's keys: each row's type is the one the reader enforces, and the unknown-key
// check suggests each row's name.

import TakeoverCore
import Testing
@testable import TakeoverBridge

@Suite struct ConfigKeyTableTests {
    static let required: [String: [String]] = [
        "ldap": ["uri = \"ldaps://ldap.example.org\""],
        "users": ["search_base = \"ou=people,dc=example,dc=org\""],
        "devices": ["search_base = \"ou=devices,dc=example,dc=org\"", "reports = \"reports\""],
        "bindings": ["search_base = \"ou=bindings,dc=example,dc=org\""],
    ]

    /// A valid minimal config with `line` added to `section` (replacing the key of the same name).
    static func config(with line: String, in section: String, replacing name: String) -> String {
        var sections = required
        sections[section, default: []].removeAll { $0.hasPrefix(name + " = ") }
        sections[section, default: []].append(line)
        return sections.keys.sorted()
            .map { "[\($0)]\n" + sections[$0]!.joined(separator: "\n") }
            .joined(separator: "\n\n")
    }

    static func wrongValue(for kind: ConfigKeyKind) -> String {
        switch kind {
        case .string: return "1"
        case .bool: return "\"yes\""
        case .int, .number, .stringList: return "\"x\""
        case .duration, .size: return "true"
        }
    }

    @Test func everyKeyRefusesAValueOfTheWrongTypeAtItsLine() {
        let keys = ConfigSchema.keys
        #expect(keys.count == Set(keys.map(\.dotted)).count, "a key is in the table twice")
        for key in keys {
            let line = "\(key.name) = \(Self.wrongValue(for: key.kind))"
            let toml = Self.config(with: line, in: key.section, replacing: key.name)
            let problems = parseProblems(toml)
            let lines = toml.split(separator: "\n", omittingEmptySubsequences: false)
            let header = lines.firstIndex(of: "[\(key.section)]") ?? 0
            let expectedLine = lines[header...].firstIndex { $0.hasPrefix("\(key.name) = ") }.map { $0 + 1 }
            let found = problems.first { $0.key == key.dotted }
            #expect(found != nil, "\(key.dotted): no problem for a wrong type in \(problems)")
            #expect(found?.line == expectedLine, "\(key.dotted)")
            #expect(found?.message.hasPrefix("must be ") == true, "\(key.dotted): \(found?.message ?? "")")
        }
    }

    @Test func everyKeyIsSuggestedWhenMisspelled() {
        // A misspelled password key is refused as a secret instead (ConfigTests cover that).
        for key in ConfigSchema.keys where !ConfigSchema.looksLikeSecret(key.name + "x") {
            let toml = Self.config(with: "\(key.name)x = 1", in: key.section, replacing: "\(key.name)x")
            let problem = parseProblems(toml).first { $0.key == key.dotted + "x" }
            #expect(problem?.message == "unknown key; did you mean \(key.name)?", "\(key.dotted)")
        }
    }

    @Test func theModelsDefaultsAreTheReadersDefaults() throws {
        let toml = Self.config(with: "", in: "ldap", replacing: "-")
        let c = try BridgeConfig.parse(toml: toml, source: "c", baseDirectory: "/")
        #expect(c.ldap.pageSize == BridgeConfig.LDAP.defaultPageSize)
        #expect(c.ldap.tlsReqcert == .demand)
        #expect(c.corePolicy() == Policy())
        #expect(c.bindings.objectClass == .takeoverBindingGroup && c.bindings.memberAttribute == "member")
    }
}
