import Foundation
import LDAPTestSupport
import Testing
import TakeoverCore
@testable import TakeoverBridge

#if canImport(Glibc)
import Glibc
import TestSupport
#endif

let minimalTOML = """
[ldap]
uri = "ldaps://ldap.example.org"

[users]
search_base = "ou=people,dc=example,dc=org"

[devices]
search_base = "ou=devices,dc=example,dc=org"
reports = "reports"

[bindings]
search_base = "ou=bindings,dc=example,dc=org"
"""

func parseProblems(_ toml: String) -> [ConfigProblem] {
    do {
        _ = try BridgeConfig.parse(toml: toml, source: "config.toml", baseDirectory: "/etc/tb")
        return []
    } catch {
        return error.problems
    }
}

@Suite struct ConfigTests {
    @Test func everyKeyIsRead() throws {
        let toml = """
        [ldap]
        uri = "ldaps://ldap1.example.org ldaps://ldap2.example.org:1636"
        write_uri = "ldaps://provider.example.org"
        bind_dn = "cn=bridge,ou=services,dc=example,dc=org"
        bind_password_file = "secrets/bridge.pw"
        sasl_authcid = "bridge"
        sasl_realm = "EXAMPLE.ORG"
        starttls = false
        tls_reqcert = "hard"
        tls_cacert = "/etc/ssl/ca.pem"
        tls_cert = "tls/client.crt"
        tls_key = "tls/client.key"
        allow_cleartext = true
        page_size = 500
        timeout = 12.5

        [users]
        search_base = "ou=people,dc=example,dc=org"
        filter = "(&(objectClass=posixAccount)(!(loginShell=/bin/false)))"
        name_attribute = "cn"
        local_account_attribute = "localUserAccount"
        uid_number_attribute = "employeeNumber"
        display_name_attribute = "cn"

        [devices]
        search_base = "ou=devices,dc=example,dc=org"
        filter = "(objectClass=groupOfUniqueNames)"
        name_attribute = "ipHostNumber"
        member_attribute = "uniquemember"
        reports = "/var/spool/reports"
        active_within = "2d"

        [bindings]
        search_base = "ou=bindings,dc=example,dc=org"
        object_class = "groupOfUniqueNames"
        member_attribute = "uniqueMember"

        [policy]
        protected_accounts = ["breakglass", "Support"]
        min_uid_linux = 500
        min_uid_macos = 501
        on_likely_mismatch = "provision"

        [safety]
        max_unbinds = 7
        max_unbind_percent = 2.5
        min_users = 30

        [state]
        dir = "state"
        """
        let c = try BridgeConfig.parse(toml: toml, source: "config.toml", baseDirectory: "/etc/tb")
        #expect(c.ldap.uri == "ldaps://ldap1.example.org ldaps://ldap2.example.org:1636")
        #expect(c.ldap.uris == ["ldaps://ldap1.example.org", "ldaps://ldap2.example.org:1636"])
        #expect(c.ldap.writeURI == "ldaps://provider.example.org")
        #expect(c.ldap.bindDN == "cn=bridge,ou=services,dc=example,dc=org")
        #expect(c.ldap.bindPasswordFile == "/etc/tb/secrets/bridge.pw")
        #expect(c.ldap.bindPasswordEnv == nil)
        #expect(c.ldap.saslMech == nil)
        #expect(c.ldap.saslAuthcID == "bridge")
        #expect(c.ldap.saslRealm == "EXAMPLE.ORG")
        #expect(c.ldap.startTLS == false)
        #expect(c.ldap.tlsReqcert == .hard)
        #expect(c.ldap.tlsCACert == "/etc/ssl/ca.pem")
        #expect(c.ldap.tlsCert == "/etc/tb/tls/client.crt")
        #expect(c.ldap.tlsKey == "/etc/tb/tls/client.key")
        #expect(c.ldap.allowCleartext == true)
        #expect(c.ldap.pageSize == 500)
        #expect(c.ldap.timeout == 12.5)
        #expect(c.users.searchBase == "ou=people,dc=example,dc=org")
        #expect(c.users.filter == "(&(objectClass=posixAccount)(!(loginShell=/bin/false)))")
        #expect(c.users.nameAttribute == "cn")
        #expect(c.users.localAccountAttribute == "localUserAccount")
        #expect(c.users.uidNumberAttribute == "employeeNumber")
        #expect(c.users.displayNameAttribute == "cn")
        #expect(c.devices.searchBase == "ou=devices,dc=example,dc=org")
        #expect(c.devices.filter == "(objectClass=groupOfUniqueNames)")
        #expect(c.devices.nameAttribute == "ipHostNumber")
        #expect(c.devices.memberAttribute == "uniqueMember")  // canonical spelling
        #expect(c.devices.reports == "/var/spool/reports")
        #expect(c.devices.activeWithin == 2 * 86_400)
        #expect(c.bindings.searchBase == "ou=bindings,dc=example,dc=org")
        #expect(c.bindings.objectClass == .groupOfUniqueNames)
        #expect(c.bindings.memberAttribute == "uniqueMember")
        #expect(c.policy.protectedAccounts == ["breakglass", "Support"])
        #expect(c.policy.minUIDLinux == 500)
        #expect(c.policy.minUIDMacOS == 501)
        #expect(c.policy.onLikelyMismatch == .provision)
        #expect(c.safety.maxUnbinds == 7)
        #expect(c.safety.maxUnbindPercent == 2.5)
        #expect(c.safety.minUsers == 30)
        #expect(c.state.dir == "/etc/tb/state")
        #expect(c.sourcePath == "config.toml")
        #expect(c.keyLines["ldap.timeout"] == 15)
        #expect(c.keyLines["devices"] == 25)

        let policy = c.corePolicy()
        #expect(policy == Policy(protectedAccounts: ["breakglass", "Support"], minUIDLinux: 500, minUIDMacOS: 501,
                                 onLikelyMismatch: .provision, activeWithin: 172_800))
        #expect(c.layout() == BindingLayout.standardSchema(base: "ou=bindings,dc=example,dc=org",
                                                           objectClass: "groupOfUniqueNames",
                                                           memberAttribute: "uniqueMember"))
    }

    @Test func defaults() throws {
        let c = try BridgeConfig.parse(toml: minimalTOML, source: "config.toml", baseDirectory: "/etc/tb")
        #expect(c.ldap == BridgeConfig.LDAP(uri: "ldaps://ldap.example.org"))
        #expect(c.ldap.tlsReqcert == .demand)
        #expect(c.ldap.startTLS == false && c.ldap.allowCleartext == false)
        #expect(c.ldap.pageSize == 1000 && c.ldap.timeout == 30)
        #expect(c.users == BridgeConfig.Users(searchBase: "ou=people,dc=example,dc=org"))
        #expect(c.users.filter == "(objectClass=posixAccount)")
        #expect(c.users.localAccountAttribute == "")
        #expect(c.devices == BridgeConfig.Devices(searchBase: "ou=devices,dc=example,dc=org", reports: "/etc/tb/reports"))
        #expect(c.devices.filter == "(objectClass=groupOfNames)" && c.devices.nameAttribute == "cn")
        #expect(c.devices.memberAttribute == "member" && c.devices.activeWithin == 604_800)
        #expect(c.bindings.objectClass == .takeoverBindingGroup && c.bindings.memberAttribute == "member")
        #expect(c.policy == BridgeConfig.PolicySection())
        #expect(c.policy.minUIDLinux == 1000 && c.policy.minUIDMacOS == 500 && c.policy.onLikelyMismatch == .hold)
        #expect(c.safety == BridgeConfig.Safety(maxUnbinds: 100, maxUnbindPercent: 10, minUsers: 1))
        #expect(c.state.dir == "/var/lib/takeover-bridge")
        #expect(c.layout() == BindingLayout.projectSchema(base: "ou=bindings,dc=example,dc=org"))
        #expect(c.corePolicy() == Policy())
        #expect(c.cleartextProblem() == nil)
    }

    @Test func groupOfUniqueNamesDefaultsToUniqueMember() throws {
        let toml = minimalTOML + "\nobject_class = \"groupofuniquenames\"\n"
        let c = try BridgeConfig.parse(toml: toml, source: "c", baseDirectory: "/")
        #expect(c.bindings.objectClass == .groupOfUniqueNames)
        #expect(c.bindings.memberAttribute == "uniqueMember")
        #expect(c.layout().placeholderMember == "ou=bindings,dc=example,dc=org")
        #expect(c.layout().recordAttribute == "description")
    }

    @Test func everyProblemIsListedAtOnceWithItsLine() {
        let toml = """
        [ldap]
        uri = "http://ldap.example.org"
        tls_reqcert = "sometimes"
        page_size = 0
        timeout = -3
        starttls = "yes"

        [users]
        filter = "(objectClass=posixAccount"
        name_atribute = "uid"

        [devices]
        search_base = "ou=devices,dc=example,dc=org"
        reports = "reports"
        member_attribute = "members"
        active_within = "7 fortnights"

        [policy]
        on_likely_mismatch = "ask"
        protected_accounts = "root"
        min_uid_linux = 1000.5

        [safety]
        max_unbind_percent = 150

        [polcy]
        x = 1
        """
        let problems = parseProblems(toml)
        let text = problems.map(\.description)
        #expect(text == [
            "config.toml:2: [ldap] uri: \"http://ldap.example.org\" is not an LDAP URI; it must start with ldap://, ldaps:// or ldapi://",
            "config.toml:3: [ldap] tls_reqcert: must be one of never, allow, try, demand, hard (found \"sometimes\")",
            "config.toml:4: [ldap] page_size: must be between 1 and 10000 (found 0)",
            "config.toml:5: [ldap] timeout: must be a positive number of seconds, at most 86400",
            "config.toml:6: [ldap] starttls: must be true or false, not a string",
            "config.toml:8: [users] search_base: missing (where the user entries are, like ou=people,dc=example,dc=org)",
            "config.toml:9: [users] filter: has an unmatched '('",
            "config.toml:10: [users] name_atribute: unknown key; did you mean name_attribute?",
            "config.toml:15: [devices] member_attribute: must be one of member, uniqueMember, memberUid (found \"members\")",
            "config.toml:16: [devices] active_within: \"7 fortnights\" is not a duration; write seconds (604800) or a string like \"7d\", \"12h\", \"30m\", \"3600s\"",
            "config.toml:19: [policy] on_likely_mismatch: must be one of hold, provision (found \"ask\")",
            "config.toml:20: [policy] protected_accounts: must be a list of strings, not a string",
            "config.toml:21: [policy] min_uid_linux: must be an integer, not a number with a fraction",
            "config.toml:24: [safety] max_unbind_percent: must be between 0 and 100",
            "config.toml:26: unknown section [polcy]; did you mean [policy]?",
            "config.toml: [bindings]: missing section [bindings] with search_base (where the bridge keeps binding groups, like ou=bindings,dc=example,dc=org)",
        ])
        #expect(problems.allSatisfy { $0.source == "config.toml" })
        #expect(problems.first?.key == "ldap.uri")
        #expect(problems.first?.line == 2)
    }

    @Test func aPasswordInTheConfigIsRefusedWithoutEchoingIt() {
        let secret = "Tr0ub4dor&3-never-shown"
        for (key, section) in [("bind_password", "ldap"), ("password", "ldap"), ("bindpw", "ldap"),
                               ("ldap_default_authtok", "ldap"), ("password", "users")] {
            let toml = minimalTOML.replacingOccurrences(of: "[\(section)]\n", with: "[\(section)]\n\(key) = \"\(secret)\"\n")
            let problems = parseProblems(toml)
            #expect(problems.count == 1, "\(key)")
            let text = problems.map(\.description).joined(separator: "\n")
            #expect(!text.contains(secret))
            #expect(text.contains("bind_password_file"))
            #expect(text.contains("bind_password_env"))
            #expect(problems.first?.key == "\(section).\(key)")
            #expect(problems.first?.line != nil)
        }
        // At the top level too.
        let top = parseProblems("password = \"\(secret)\"\n" + minimalTOML)
        #expect(top.count == 1)
        #expect(top.first?.line == 1)
        #expect(!top.map(\.description).joined().contains(secret))
    }

    @Test func durations() throws {
        let cases: [(String, Int64)] = [("\"7d\"", 604_800), ("\"12h\"", 43_200), ("\"30m\"", 1_800),
                                        ("\"3600s\"", 3_600), ("86400", 86_400), ("\"1d12h\"", 129_600),
                                        ("\"2w\"", 1_209_600), ("\"90\"", 90), ("\"1D 6H\"", 108_000)]
        for (value, seconds) in cases {
            let toml = minimalTOML.replacingOccurrences(of: "reports = \"reports\"", with: "reports = \"reports\"\nactive_within = \(value)")
            let c = try BridgeConfig.parse(toml: toml, source: "c", baseDirectory: "/")
            #expect(c.devices.activeWithin == seconds, "\(value)")
            #expect(c.corePolicy().activeWithin == seconds)
        }
        for bad in ["\"7x\"", "\"d\"", "0", "-5", "\"\"", "\"1d5\"", "true", "\"99999999999999999999s\""] {
            expectOneDevicesProblem("active_within", bad)
        }
    }

    /// `[devices] KEY = VALUE` added to minimalTOML: exactly one problem, for that key, at its line (10).
    func expectOneDevicesProblem(_ key: String, _ value: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let toml = minimalTOML.replacingOccurrences(of: "reports = \"reports\"", with: "reports = \"reports\"\n\(key) = \(value)")
        let problems = parseProblems(toml)
        #expect(problems.count == 1, "\(value)", sourceLocation: sourceLocation)
        #expect(problems.first?.key == "devices.\(key)", sourceLocation: sourceLocation)
        #expect(problems.first?.line == 10, sourceLocation: sourceLocation)
    }

    /// `[devices] max_clock_skew` and `max_reports_size`: defaults, units, refusals.
    @Test func reportEvidenceLimits() throws {
        let c = try BridgeConfig.parse(toml: minimalTOML, source: "c", baseDirectory: "/")
        #expect(c.devices.maxClockSkew == 300 && c.corePolicy().maxClockSkew == 300)
        #expect(c.devices.maxReportsSize == 512 * 1024 * 1024 && c.reportLimits().maxTotalBytes == 512 * 1024 * 1024)
        let sizes: [(String, Int)] = [("1048576", 1_048_576), ("\"512MiB\"", 512 << 20), ("\"2 GiB\"", 2 << 30),
                                      ("\"64M\"", 64 << 20), ("\"100k\"", 102_400), ("\"1gb\"", 1 << 30), ("\"4096\"", 4096)]
        for (value, bytes) in sizes {
            let toml = minimalTOML.replacingOccurrences(of: "reports = \"reports\"",
                                                        with: "reports = \"reports\"\nmax_reports_size = \(value)\nmax_clock_skew = \"90s\"")
            let parsed = try BridgeConfig.parse(toml: toml, source: "c", baseDirectory: "/")
            #expect(parsed.reportLimits().maxTotalBytes == bytes, "\(value)")
            #expect(parsed.corePolicy().maxClockSkew == 90)
        }
        for bad in ["\"12 apples\"", "\"MiB\"", "0", "-1", "\"\"", "true", "\"99999999999T\"", "1.5"] {
            expectOneDevicesProblem("max_reports_size", bad)
        }
        for bad in ["\"5 fortnights\"", "0", "-300"] {
            let toml = minimalTOML.replacingOccurrences(of: "reports = \"reports\"", with: "reports = \"reports\"\nmax_clock_skew = \(bad)")
            #expect(parseProblems(toml).first?.key == "devices.max_clock_skew", "\(bad)")
        }
    }

    @Test func relativePathsResolveAgainstTheConfigFolder() throws {
        let toml = minimalTOML
            .replacingOccurrences(of: "uri = \"ldaps://ldap.example.org\"",
                                  with: "uri = \"ldaps://ldap.example.org\"\nbind_dn = \"cn=b,dc=x\"\nbind_password_file = \"../secret/pw\"\ntls_cacert = \"./ca.pem\"")
            .replacingOccurrences(of: "reports = \"reports\"", with: "reports = \"data/reports/\"")
            + "\n[state]\ndir = \"state\"\n"
        let c = try BridgeConfig.parse(toml: toml, source: "c", baseDirectory: "/srv/tb/conf")
        #expect(c.ldap.bindPasswordFile == "/srv/tb/secret/pw")
        #expect(c.ldap.tlsCACert == "/srv/tb/conf/ca.pem")
        #expect(c.devices.reports == "/srv/tb/conf/data/reports")
        #expect(c.state.dir == "/srv/tb/conf/state")
    }

    @Test func invalidTOMLNamesTheLine() {
        let problems = parseProblems("[ldap]\nuri = \"ldap://x\"\npage_size = = 3\n")
        #expect(problems.count == 1)
        #expect(problems.first?.line == 3)
        #expect(problems.first?.description.hasPrefix("config.toml:3: not valid TOML: ") == true)
    }

    @Test func misplacedAndUnknownKeys() {
        let toml = minimalTOML.replacingOccurrences(of: "[users]\n", with: "[users]\nbind_dn = \"cn=x,dc=y\"\nURI = \"x\"\n")
        let text = parseProblems("uri = \"ldap://x\"\n" + toml).map(\.description)
        #expect(text == [
            "config.toml:1: uri: keys must be inside a section; did you mean to put it under [ldap]?",
            "config.toml:6: [users] bind_dn: unknown key; it belongs in [ldap]",
            "config.toml:7: [users] URI: unknown key; it belongs in [ldap]",
        ])
    }

    @Test func bindSettingsMustBeConsistent() {
        #expect(parseProblems(minimalTOML.replacingOccurrences(of: "[ldap]\n", with: "[ldap]\nbind_dn = \"cn=b,dc=x\"\n"))
            .map(\.key) == ["ldap.bind_dn"])
        #expect(parseProblems(minimalTOML.replacingOccurrences(of: "[ldap]\n", with: "[ldap]\nbind_password_env = \"PW\"\n"))
            .map(\.key) == ["ldap.bind_password_env"])
        #expect(parseProblems(minimalTOML.replacingOccurrences(of: "[ldap]\n",
            with: "[ldap]\nbind_dn = \"cn=b,dc=x\"\nbind_password_env = \"PW\"\nbind_password_file = \"f\"\n"))
            .map(\.message) == ["set only one of bind_password_file and bind_password_env"])
        #expect(parseProblems(minimalTOML.replacingOccurrences(of: "[ldap]\n", with: "[ldap]\nbind_dn = \"cn=b,dc=x\"\nsasl_mech = \"external\"\n")).isEmpty)
        #expect(parseProblems(minimalTOML.replacingOccurrences(of: "[ldap]\n", with: "[ldap]\ntls_cert = \"c.pem\"\n"))
            .map(\.key) == ["ldap.tls_cert"])
        #expect(parseProblems(minimalTOML.replacingOccurrences(of: "[ldap]\n", with: "[ldap]\nbind_dn = \"bridge\"\nsasl_mech = \"GSSAPI\"\n"))
            .map(\.key) == ["ldap.bind_dn"])
        #expect(parseProblems(minimalTOML.replacingOccurrences(of: "[ldap]\n", with: "[ldap]\nwrite_uri = \"ldaps://a,ldaps://b\"\n"))
            .map(\.message) == ["separate several URIs with spaces, not commas"])
        let bases = minimalTOML.replacingOccurrences(of: "search_base = \"ou=bindings,dc=example,dc=org\"",
                                                     with: "search_base = \"ou=b, ou=devices,dc=example,dc=org\"")
        #expect(parseProblems(bases).map(\.key) == ["bindings.search_base"])
        #expect(parseProblems(minimalTOML + "\nobject_class = \"groupOfNames\"\nmember_attribute = \"uniqueMember\"\n")
            .map(\.key) == ["bindings.member_attribute"])
    }

    @Test func cleartextRule() throws {
        func config(_ lines: String) throws -> BridgeConfig {
            try BridgeConfig.parse(toml: minimalTOML.replacingOccurrences(
                of: "uri = \"ldaps://ldap.example.org\"\n", with: lines + "\n"), source: "c", baseDirectory: "/")
        }
        let bind = "bind_dn = \"cn=b,dc=x\"\nbind_password_env = \"PW\"\n"
        #expect(try config("uri = \"ldap://ldap.example.org\"\n" + bind).cleartextProblem()?
            .contains("refusing to send the bind password in cleartext to ldap.example.org") == true)
        #expect(try config("uri = \"ldap://127.0.0.1:3890 ldap://10.0.0.5\"\n" + bind).cleartextProblem()?
            .contains("10.0.0.5") == true)
        #expect(try config("uri = \"ldap://ldap.example.org\"\nwrite_uri = \"ldap://10.1.1.1\"\nallow_cleartext = true\n" + bind)
            .cleartextProblem() == nil)
        #expect(try config("uri = \"ldap://ldap.example.org\"\nstarttls = true\n" + bind).cleartextProblem() == nil)
        #expect(try config("uri = \"ldaps://ldap.example.org\"\n" + bind).cleartextProblem() == nil)
        #expect(try config("uri = \"ldapi://%2Frun%2Fslapd%2Fldapi\"\n" + bind).cleartextProblem() == nil)
        #expect(try config("uri = \"ldap://ldap.example.org\"\n").cleartextProblem() == nil)  // anonymous
        #expect(try config("uri = \"ldap://ldap.example.org\"\nsasl_mech = \"GSSAPI\"\n").cleartextProblem() == nil)
        #expect(try config("uri = \"ldap://ldap.example.org\"\nsasl_mech = \"PLAIN\"\nbind_password_env = \"PW\"\n")
            .cleartextProblem() != nil)
        for loopback in ["127.0.0.1", "127.8.9.10:389", "[::1]:389", "localhost", "LOCALHOST:1389"] {
            #expect(try config("uri = \"ldap://\(loopback)\"\n" + bind).cleartextProblem() == nil, "\(loopback)")
        }
        for remote in ["128.0.0.1", "[::2]", "localhost.example.org", "127.0.0.1.nip.io", "[::ffff:10.0.0.1]"] {
            #expect(try config("uri = \"ldap://\(remote)\"\n" + bind).cleartextProblem() != nil, "\(remote)")
        }
        #expect(try config("uri = \"ldap:///\"\n" + bind).cleartextProblem()?.contains("names no host") == true)
    }

    @Test func loadRefusesAConfigOthersCanWrite() throws {
        let dir = try makeTemporaryFolder()
        defer { cleanup(dir) }
        let path = dir + "/config.toml"
        try writeFile(path, minimalTOML, mode: 0o646)
        #expect(throws: ConfigError.self) { try BridgeConfig.load(path: path, environment: [:]) }
        do {
            _ = try BridgeConfig.load(path: path, environment: [:])
        } catch {
            #expect(error.description.contains("is writable by others (mode 0646)"))
            #expect(error.problems.first?.source == path)
        }
        chmod(path, 0o664)  // group-writable is refused too
        #expect(throws: ConfigError.self) { try BridgeConfig.load(path: path, environment: [:]) }
        chmod(path, 0o644)
        let c = try BridgeConfig.load(path: path, environment: [:])
        #expect(c.sourcePath == path)
        #expect(c.devices.reports == dir + "/reports")
        if geteuid() == 0 {
            chown(path, 4242, 4242)
            #expect(throws: ConfigError.self) { try BridgeConfig.load(path: path, environment: [:]) }
            chown(path, 0, 0)
        }
        #expect(throws: ConfigError.self) { try BridgeConfig.load(path: dir + "/missing.toml", environment: [:]) }
        try writeFile(dir + "/bad.toml", "", mode: 0o600)
        #expect(FileManager.default.createFile(atPath: dir + "/bad.toml", contents: Data([0x5B, 0xFF, 0xFE, 0x5D])))
        do {
            _ = try BridgeConfig.load(path: dir + "/bad.toml", environment: [:])
            Issue.record("non-UTF-8 accepted")
        } catch {
            #expect(error.description == "\(dir)/bad.toml: \(dir)/bad.toml is not valid UTF-8")
        }
    }

    @Test func passwordFileAndEnvironment() throws {
        let dir = try makeTemporaryFolder()
        defer { cleanup(dir) }
        let secret = "s3cr3t value with spaces"
        try writeFile(dir + "/bridge.pw", secret + "\n", mode: 0o640)
        let toml = minimalTOML.replacingOccurrences(of: "[ldap]\n",
            with: "[ldap]\nbind_dn = \"cn=bridge,dc=example,dc=org\"\nbind_password_file = \"bridge.pw\"\n")
        try writeFile(dir + "/config.toml", toml, mode: 0o644)
        do {
            _ = try BridgeConfig.load(path: dir + "/config.toml", environment: [:])
            Issue.record("a group-readable password file was accepted")
        } catch {
            #expect(error.problems.count == 1)
            #expect(error.problems.first?.line == 3)
            #expect(error.description.contains("\(dir)/bridge.pw can be accessed by group or others (mode 0640)"))
            #expect(!error.description.contains(secret))
        }
        chmod(dir + "/bridge.pw", 0o600)
        let c = try BridgeConfig.load(path: dir + "/config.toml", environment: [:])
        #expect(try c.readBindPassword(environment: [:]) == secret)
        // Loosened after loading: refused when read.
        chmod(dir + "/bridge.pw", 0o604)
        #expect(throws: ConfigError.self) { try c.readBindPassword(environment: [:]) }
        chmod(dir + "/bridge.pw", 0o600)
        // Only one trailing newline is stripped; CRLF counts as one.
        try writeFile(dir + "/bridge.pw", "pw\n\n", mode: 0o600)
        #expect(try c.readBindPassword(environment: [:]) == "pw\n")
        try writeFile(dir + "/bridge.pw", "pw\r\n", mode: 0o600)
        #expect(try c.readBindPassword(environment: [:]) == "pw")
        try writeFile(dir + "/bridge.pw", "\n", mode: 0o600)
        #expect(throws: ConfigError.self) { try c.readBindPassword(environment: [:]) }

        let envToml = minimalTOML.replacingOccurrences(of: "[ldap]\n",
            with: "[ldap]\nbind_dn = \"cn=bridge,dc=example,dc=org\"\nbind_password_env = \"TB_PW\"\n")
        try writeFile(dir + "/env.toml", envToml, mode: 0o600)
        #expect(throws: ConfigError.self) { try BridgeConfig.load(path: dir + "/env.toml", environment: [:]) }
        let e = try BridgeConfig.load(path: dir + "/env.toml", environment: ["TB_PW": secret])
        #expect(try e.readBindPassword(environment: ["TB_PW": secret]) == secret)
        #expect(throws: ConfigError.self) { try e.readBindPassword(environment: ["TB_PW": ""]) }
        let anonymous = try BridgeConfig.parse(toml: minimalTOML, source: "c", baseDirectory: dir)
        #expect(try anonymous.readBindPassword(environment: ["TB_PW": secret]) == nil)
    }

    @Test func tlsKeyMustBePrivate() throws {
        let dir = try makeTemporaryFolder()
        defer { cleanup(dir) }
        try writeFile(dir + "/client.key", "key", mode: 0o644)
        try writeFile(dir + "/client.crt", "crt", mode: 0o644)
        let toml = minimalTOML.replacingOccurrences(of: "[ldap]\n",
            with: "[ldap]\ntls_cert = \"client.crt\"\ntls_key = \"client.key\"\n")
        try writeFile(dir + "/config.toml", toml, mode: 0o644)
        #expect(throws: ConfigError.self) { try BridgeConfig.load(path: dir + "/config.toml", environment: [:]) }
        chmod(dir + "/client.key", 0o400)
        #expect(try BridgeConfig.load(path: dir + "/config.toml", environment: [:]).ldap.tlsKey == dir + "/client.key")
    }

    @Test func fileSecurityDirectly() throws {
        let dir = try makeTemporaryFolder()
        defer { cleanup(dir) }
        #expect(FileSecurity.checkSecretFile(dir)?.contains("is not a regular file") == true)
        #expect(FileSecurity.checkSecretFile(dir + "/nope")?.contains("No such file") == true)
        try writeFile(dir + "/s", "x", mode: 0o600)
        #expect(FileSecurity.checkSecretFile(dir + "/s") == nil)
        for mode: mode_t in [0o604, 0o620, 0o660, 0o644, 0o601] {
            chmod(dir + "/s", mode)
            #expect(FileSecurity.checkSecretFile(dir + "/s") != nil, "\(String(mode, radix: 8))")
        }
        try writeFile(dir + "/c", "x", mode: 0o644)
        #expect(FileSecurity.checkConfigFile(dir + "/c") == nil)
        chmod(dir + "/c", 0o602)
        #expect(FileSecurity.checkConfigFile(dir + "/c") != nil)
        chmod(dir + "/c", 0o644)
        chmod(dir, 0o777)
        #expect(FileSecurity.checkConfigFile(dir + "/c")?.contains("anyone can write to") == true)
        chmod(dir, 0o1777)
        #expect(FileSecurity.checkConfigFile(dir + "/c") == nil)
        chmod(dir, 0o700)
    }

    @Test func problemDescriptions() {
        #expect(ConfigProblem(source: "config.toml", line: 12, key: "ldap.timeout",
                              message: "must be a positive number of seconds").description
            == "config.toml:12: [ldap] timeout: must be a positive number of seconds")
        #expect(ConfigProblem(source: "c.toml", message: "not valid UTF-8").description == "c.toml: not valid UTF-8")
        let e = ConfigError(problems: [ConfigProblem(source: "a", line: 1, message: "x"), ConfigProblem(source: "a", key: "state", message: "y")])
        #expect(e.description == "a:1: x\na: [state]: y")
    }
}

@Suite struct ExampleConfigTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    /// config.example.toml parses, documents every key, and states the real defaults.
    @Test func exampleConfigDocumentsEveryKey() throws {
        let path = ExampleConfigTests.repository + "/config.example.toml"
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let c = try BridgeConfig.parse(toml: text, source: "config.example.toml", baseDirectory: "/etc/takeover-bridge")
        for section in ConfigSchema.sections {
            #expect(text.contains("[\(section.name)]\n"))
            for (key, _) in section.keys {
                let documented = text.contains("\n\(key) = ") || text.contains("\n# \(key) = ")
                #expect(documented, "\(section.name).\(key) is not in config.example.toml")
            }
        }
        #expect(c.ldap.tlsReqcert == BridgeConfig.LDAP(uri: "x").tlsReqcert)
        #expect(c.ldap.pageSize == BridgeConfig.LDAP(uri: "x").pageSize)
        #expect(c.ldap.timeout == BridgeConfig.LDAP(uri: "x").timeout)
        #expect(c.users == BridgeConfig.Users(searchBase: c.users.searchBase, localAccountAttribute: "localUserAccount"))
        #expect(c.devices == BridgeConfig.Devices(searchBase: c.devices.searchBase, reports: c.devices.reports))
        #expect(c.bindings == BridgeConfig.Bindings(searchBase: c.bindings.searchBase))
        #expect(c.policy == BridgeConfig.PolicySection())
        #expect(c.safety == BridgeConfig.Safety())
        #expect(c.state == BridgeConfig.State())
    }

    /// examples/config.toml (the demo's) is valid.
    @Test func demoConfigParses() throws {
        let path = ExampleConfigTests.repository + "/examples/config.toml"
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let c = try BridgeConfig.parse(toml: text, source: "examples/config.toml", baseDirectory: "/demo")
        #expect(c.devices.reports == "/demo/reports")
        #expect(c.ldap.bindPasswordFile == "/demo/bridge.pw")
        #expect(c.state.dir == "/demo/state")
        #expect(c.cleartextProblem() == nil)
    }
}

@Suite struct ConfigFuzzTests {
    /// Random damage to a valid config never crashes, and every refusal names the file
    /// and (for anything but a missing section) a line inside it.
    @Test func damagedConfigsGiveClearProblems() throws {
        let path = ExampleConfigTests.repository + "/config.example.toml"
        let original = Array(try String(contentsOfFile: path, encoding: .utf8).unicodeScalars)
        let pieces: [String] = ["\"", "[", "]", "=", "\n", "#", "'", "\\", "{", "}", ",", "x", "0", "é", "\u{0}", "[ldap]\n",
                                "bind_password = \"p\"\n", "uri = 1\n", "\"\"\"", "=\n", ".", "'''", "[[", "]]", " ", "\t",
                                "\r", "{a=1}", "[1,[2]]", "1979-05-27 07:32:00Z", "+inf", "0x1F", "1e5", "\\u00e9", "\u{FEFF}"]
        let environment = ProcessInfo.processInfo.environment
        var rng = SplitMix64(seed: environment["TB_FUZZ_SEED"].flatMap { UInt64($0) } ?? 0xC0FF_EE00)
        let iterations = environment["TB_FUZZ_ITERATIONS"].flatMap { Int($0) } ?? 600
        var refused = 0
        let lineCount = original.filter { $0 == "\n" }.count + 1
        for _ in 0..<iterations {
            var text = original
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                let at = Int.random(in: 0..<text.count, using: &rng)
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: text.remove(at: at)
                case 1: text.insert(contentsOf: pieces.randomElement(using: &rng)!.unicodeScalars, at: at)
                default: text[at] = pieces.randomElement(using: &rng)!.unicodeScalars.first!
                }
            }
            var string = ""
            string.unicodeScalars.append(contentsOf: text)
            do {
                if environment["TB_FUZZ_TRACE"] != nil {
                    try? string.write(toFile: "/tmp/tb-fuzz-current.toml", atomically: false, encoding: .utf8)
                }
                _ = try BridgeConfig.parse(toml: string, source: "fuzz.toml", baseDirectory: "/etc/tb")
            } catch {
                refused += 1
                #expect(!error.problems.isEmpty)
                for problem in error.problems {
                    #expect(problem.source == "fuzz.toml")
                    #expect(problem.description.hasPrefix("fuzz.toml"))
                    if let line = problem.line {
                        #expect(line >= 1 && line <= lineCount + 40, "\(problem)")
                    } else {
                        #expect(problem.key != nil && !problem.key!.contains("."), "\(problem)")
                    }
                    #expect(!problem.description.contains("bind_password = \"p\""))
                }
            }
        }
        #expect(refused > iterations / 6)
    }

    @Test func nulAndBOM() throws {
        let problems = parseProblems("[ldap]\nuri = \"ldap://x\"\u{0}\n[users]\n")
        #expect(problems.map(\.description) == ["config.toml:2: contains a NUL byte; is it a text file?"])
        let c = try BridgeConfig.parse(toml: "\u{FEFF}" + minimalTOML, source: "c", baseDirectory: "/")
        #expect(c.ldap.uri == "ldaps://ldap.example.org")
    }
}

@Suite struct TOMLPrecheckTests {
    /// Inputs on which toml++ 3.4 asserts (aborting the process) get a clear error.
    @Test func keysTheParserWouldAbortOn() {
        for (text, line) in [("[{tate]\n", 1), ("[ldap]\nuri = \"x\"\n[users.{a]\n", 3), ("a.{ = 1\n", 1),
                             ("x = { {a = 1} }\n", 1), ("[ldap]\n\n= 3\n", 3)] {
            let problems = parseProblems(text)
            #expect(problems.count == 1, "\(text)")
            #expect(problems.first?.line == line, "\(text)")
            #expect(problems.first?.description.contains("not valid TOML: ") == true)
        }
    }

    @Test func validTOMLPassesAndLinesAreExact() throws {
        let text = """
        # comment with \"\"\" and ''' in it
        [ldap]
        uri = "ldaps://a" # trailing ''' comment
        "bind_dn" = 'cn=x,dc=y'
        bind_password_env = \"\"\"
        PW\"\"\"

        [users]
        search_base = "ou=p,dc=y"
        filter = '''
        (objectClass=posixAccount)'''
        display_name_attribute = "cn"

        [devices]
        search_base = "ou=d,dc=y"
        reports = "r"
        active_within = 3600

        bindings = { search_base = "ou=b,dc=y", object_class = "groupOfNames" }

        [policy]
        protected_accounts = [
          "root",  # the usual
          "Support",
        ]
        """
        var lexer = TOMLPrecheck(text)
        try lexer.document()
        #expect(lexer.lines["ldap"] == 2)
        #expect(lexer.lines["ldap.uri"] == 3)
        #expect(lexer.lines["ldap.bind_dn"] == 4)
        #expect(lexer.lines["users.filter"] == 10)
        #expect(lexer.lines["users.display_name_attribute"] == 12)
        #expect(lexer.lines["devices.bindings"] == 19)
        #expect(lexer.lines["devices.bindings.object_class"] == 19)
        #expect(lexer.lines["policy.protected_accounts"] == 22)
        // The inline table sits in [devices] here, so it is an unknown key there.
        let problems = parseProblems(text)
        #expect(problems.map(\.description) == [
            "config.toml:19: [devices] bindings: unknown key",
            "config.toml: [bindings]: missing section [bindings] with search_base (where the bridge keeps binding groups, like ou=bindings,dc=example,dc=org)",
        ])
        var other = TOMLPrecheck("t = 1979-05-27 07:32:00Z\n[[a]]\nb = [1, [2, 3], {c = \"d\"}]\ne = -inf\n")
        try other.document()
        #expect(other.lines["a.b"] == 3)
    }
}
