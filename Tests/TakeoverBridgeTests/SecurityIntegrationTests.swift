// Security (docs/product.md section 7), shown with the built binary against a private
// slapd: certificate verification on by default, no cleartext password to a host that is
// not loopback, the bind password in no output of any command, insecure files refused,
// and hostile device and user names landing exactly in their own escaped binding group.
//
// Support code (`Scenario.world(on:)`, `expectStatus`, `uids`) is in SafetyIntegrationTests.swift.

import Foundation
import LDAPTestSupport
import LDAPClient
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension SerializedServerTests {
    @Suite("security: TLS, cleartext, secrets, file modes, hostile names")
    struct SecurityIntegrationTests {
        static let server = TestDirectory.privateServer()

        func boundWorld() throws -> Scenario {
            try Scenario.world(on: try Self.server.get(), users: 6, devices: [("sec-1", 1...3)])
        }

        // MARK: TLS

        @Test func certificatesAreVerifiedByDefault() throws {
            let world = try boundWorld()
            let server = try Self.server.get()
            try world.connect(["u04"], to: "sec-1")
            let before = try server.dump(operational: true)
            let ldapsURI = world.q(server.ldapsURI)
            let startTLSURI = world.q(server.ldapURI)

            // ldaps:// and StartTLS without the CA configured: refused (exit 5), even when the
            // environment asks libldap not to check.
            let refusals: [(String, [String: String], [String: String])] = [
                ("ldaps, no tls_cacert", ["ldap.uri": ldapsURI], [:]),
                ("ldaps, no tls_cacert, LDAPTLS_REQCERT=never in the environment", ["ldap.uri": ldapsURI],
                 ["LDAPTLS_REQCERT": "never"]),
                ("ldaps, the wrong CA", ["ldap.uri": ldapsURI, "ldap.tls_cacert": world.q(server.wrongCACert)], [:]),
                ("StartTLS, no tls_cacert", ["ldap.uri": startTLSURI, "ldap.starttls": "true"], [:]),
                ("StartTLS, the wrong CA", ["ldap.uri": startTLSURI, "ldap.starttls": "true",
                                            "ldap.tls_cacert": world.q(server.wrongCACert)], [:]),
            ]
            for (what, settings, environment) in refusals {
                world.configOverrides = settings
                for command in [["apply"], ["plan"]] {
                    let outcome = try world.bridge(command, environment: environment, timeout: 60)
                    expectStatus(outcome, 5, "\(command) with \(what)")
                    #expect(outcome.stderr.lowercased().contains("certificate"),
                            "the message should say the certificate failed (\(what)): \(outcome)")
                }
            }
            #expect(try server.dump(operational: true) == before, "a refused TLS connection wrote something")

            // With the CA configured: both work.
            world.configOverrides = ["ldap.uri": startTLSURI, "ldap.starttls": "true", "ldap.tls_cacert": world.q(server.caCert)]
            expectStatus(try world.bridge(["plan", "--check"]), 2, "plan --check over StartTLS with the CA")
            world.configOverrides = ["ldap.uri": ldapsURI, "ldap.tls_cacert": world.q(server.caCert)]
            expectStatus(try world.bridge(["apply"]), 0, "apply over ldaps with the CA")
            #expect(try world.members()["sec-1"]?.contains(world.userDN("u04")) == true)
        }

        // MARK: Cleartext

        @Test func aCleartextBindToAHostThatIsNotLoopbackIsRefusedBeforeConnecting() throws {
            let world = try boundWorld()
            let server = try Self.server.get()
            let before = try server.dump(operational: true)
            // Neither name needs a network: .invalid never resolves, and 10.255.255.1 would hang
            // on connect. Refused at once means checked before connecting.
            let cases: [(String, [String: String])] = [
                ("a name", ["ldap.uri": world.q("ldap://ldap.example.invalid")]),
                ("an address with a port", ["ldap.uri": world.q("ldap://10.255.255.1:389")]),
                ("the second of two URIs", ["ldap.uri": world.q("\(server.ldapURI) ldap://ldap2.example.invalid")]),
                ("write_uri", ["ldap.write_uri": world.q("ldap://provider.example.invalid:389")]),
                ("allow_cleartext = false said out loud", ["ldap.uri": world.q("ldap://10.255.255.1"),
                                                           "ldap.allow_cleartext": "false"]),
            ]
            for (what, settings) in cases {
                world.configOverrides = settings
                for command in [["apply"], ["plan"], ["doctor"], ["explain", "u01"]] {
                    let outcome = try world.bridge(command, timeout: 60)
                    expectStatus(outcome, 78, "\(command) with cleartext to \(what)")
                    #expect(outcome.seconds < 5, "\(what): \(outcome.seconds) s: did it try to connect?")
                    // doctor reports on stdout, the other commands on stderr.
                    #expect(outcome.all.contains("allow_cleartext"), "\(what): \(outcome)")
                    #expect(outcome.all.contains("config.toml:"), "the message names the file and line: \(outcome)")
                }
            }
            #expect(try server.dump(operational: true) == before)

            // allow_cleartext = true accepts the risk: then it tries (and fails to reach it: 5).
            world.configOverrides = ["ldap.uri": world.q("ldap://10.255.255.1:389"), "ldap.allow_cleartext": "true",
                              "ldap.timeout": "2"]
            let allowed = try world.bridge(["plan"], timeout: 90)
            expectStatus(allowed, 5, "plan with allow_cleartext = true")
            #expect(!allowed.stderr.contains("allow_cleartext"), "\(allowed)")

            // Loopback in cleartext is fine (every other test relies on it); so is an anonymous bind.
            world.configOverrides = ["ldap.uri": world.q("ldap://ldap.example.invalid"), "ldap.bind_dn": "",
                              "ldap.bind_password_file": "", "ldap.timeout": "2"]
            let anonymous = try world.bridge(["plan"], timeout: 90)
            #expect(anonymous.status != 78, "an anonymous bind sends no password: \(anonymous)")
        }

        // MARK: The password

        @Test func theBindPasswordAppearsInNoOutputOfAnyCommand() throws {
            let world = try boundWorld()
            let server = try Self.server.get()
            let password = world.bindPassword
            #expect(password.count >= 16)
            var collected: [(String, String)] = []
            func collect(_ what: String, _ outcome: ProcessOutcome) {
                collected.append(("\(what) stdout", outcome.stdout))
                collected.append(("\(what) stderr", outcome.stderr))
                #expect(!outcome.signalled, "\(what) crashed: \(outcome)")
            }
            func runAll(_ label: String, environment: [String: String] = [:]) throws {
                let output = world.folder + "/plan-output-\(collected.count).txt"
                let commands: [[String]] = [
                    ["plan"], ["plan", "--format", "json"], ["plan", "--format", "csv"], ["plan", "--format", "ldif"],
                    ["plan", "--check"], ["plan", "--output", output], ["explain", "u01"], ["explain", "u02", "--device", "sec-1"],
                    ["explain", "nobody-here"], ["doctor"], ["apply"], ["apply", "--allow-unbinds", "5"],
                    ["--log-level", "trace", "plan"], ["--log-level", "trace", "apply"], ["--log-level", "trace", "doctor"],
                ]
                for command in commands {
                    collect("\(label): \(command.joined(separator: " "))",
                            try world.bridge(command, environment: environment, timeout: 90))
                }
                collected.append(("\(label): --output file", (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""))
            }

            // Success paths (with changes to write), trace logging included.
            try world.connect(["u04"], to: "sec-1")
            try runAll("ok", environment: ["TAKEOVER_BRIDGE_LOG_LEVEL": "trace"])
            // The same password from the environment.
            try world.connect(["u05"], to: "sec-1")
            world.configOverrides = ["ldap.bind_password_file": "", "ldap.bind_password_env": world.q("TB_TEST_SECRET")]
            try runAll("env", environment: ["TB_TEST_SECRET": password])
            world.configOverrides = [:]

            // Failure paths.
            let failures: [(String, [String: String], [String])] = [
                ("wrong bind DN", ["ldap.bind_dn": world.q("cn=nobody,\(server.base)")], ["apply"]),
                ("unreachable", ["ldap.uri": world.q("ldap://127.0.0.1:\(closedPort())")], ["apply"]),
                ("limit", ["safety.max_unbinds": "0"], ["apply"]),
                ("cleartext refused", ["ldap.uri": world.q("ldap://ldap.example.invalid")], ["apply"]),
                ("TLS refused", ["ldap.uri": world.q(server.ldapsURI)], ["apply"]),
                ("bad key", ["ldap.bind_pasword_file": world.q(world.passwordFile)], ["plan"]),
            ]
            try world.disconnect(["u01"], from: "sec-1")
            for (what, settings, command) in failures {
                world.configOverrides = settings
                for arguments in [command, ["--log-level", "trace"] + command, ["doctor"]] {
                    collect("\(what): \(arguments.joined(separator: " "))", try world.bridge(arguments, timeout: 90))
                }
            }
            world.configOverrides = [:]
            // A timeout (paused server) and a held lock.
            world.configOverrides = ["ldap.timeout": "2"]
            server.pause()
            collect("timeout: apply", try world.bridge(["--log-level", "trace", "apply"], timeout: 90))
            collect("timeout: doctor", try world.bridge(["doctor"], timeout: 90))
            server.resume()
            world.configOverrides = [:]
            let holder = try Processes.spawn("/bin/bash", ["-c", "exec 9>>\"$1\" && flock -x 9 && exec sleep 60", "h",
                                                           world.state + "/lock"])
            _ = waitUntil(seconds: 20) {
                (try? Processes.run("flock", ["-n", "-x", world.state + "/lock", "true"]).status) == 1
            }
            collect("lock held: apply", try world.bridge(["--log-level", "trace", "apply"]))
            kill(holder.pid, SIGKILL)
            _ = holder.finish(timeout: 10)
            // A password file others can read: refused, content not shown.
            chmod(world.passwordFile, 0o644)
            collect("world-readable password file", try world.bridge(["apply"]))
            chmod(world.passwordFile, 0o600)
            // A password written into the config itself: refused without echoing it.
            world.configOverrides = ["ldap.bind_password": world.q(password)]
            collect("password in the config", try world.bridge(["plan"]))
            world.configOverrides = [:]
            // A usage error.
            collect("usage", try world.bridge(["apply", "--allow-unbinds", "-1"]))

            // Everything the runs left: state folder (run records, journal) and the directory.
            for file in Self.files(under: world.state) {
                collected.append((file, (try? String(contentsOfFile: file, encoding: .isoLatin1)) ?? ""))
            }
            collected.append(("the directory", try server.dump(operational: true)))

            let encoded = Data(password.utf8).base64EncodedString()
            let leaks = collected.filter { $0.1.contains(password) || $0.1.contains(encoded) }.map(\.0)
            #expect(leaks.isEmpty, "the bind password appears in: \(leaks)")
            #expect(collected.count > 80, "\(collected.count) outputs searched")
            // The runs did run: the statuses were not all configuration errors.
            #expect(collected.contains { $0.0.hasPrefix("ok: apply stderr") && $0.1.contains("exit=0") })
        }

        static func files(under folder: String) -> [String] {
            var out: [String] = []
            guard let enumerator = FileManager.default.enumerator(atPath: folder) else { return out }
            while let relative = enumerator.nextObject() as? String {
                var isDirectory: ObjCBool = false
                let path = folder + "/" + relative
                if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue {
                    out.append(path)
                }
            }
            return out
        }

        // MARK: File modes

        @Test func aPasswordFileOthersCanReadOrAConfigOthersCanWriteIsRefused() throws {
            let world = try boundWorld()
            let server = try Self.server.get()
            try world.disconnect(["u01"], from: "sec-1")
            let before = try server.dump(operational: true)
            for mode: mode_t in [0o644, 0o640, 0o604, 0o660] {
                chmod(world.passwordFile, mode)
                for command in [["apply"], ["plan"], ["doctor"]] {
                    let outcome = try world.bridge(command)
                    expectStatus(outcome, 78, "\(command) with the password file mode \(String(mode, radix: 8))")
                    #expect(outcome.all.contains("bind_password_file"), "\(outcome)")
                    #expect(outcome.all.contains(world.passwordFile), "the message names the file: \(outcome)")
                }
            }
            chmod(world.passwordFile, 0o600)
            for mode: mode_t in [0o666, 0o602, 0o646] {
                world.configMode = mode
                for command in [["apply"], ["plan"]] {
                    let outcome = try world.bridge(command)
                    expectStatus(outcome, 78, "\(command) with the config mode \(String(mode, radix: 8))")
                    #expect(outcome.stderr.contains(world.configPath), "the message names the config: \(outcome)")
                    #expect(outcome.stderr.lowercased().contains("writ"), "the message says why: \(outcome)")
                }
            }
            // A client key others can read is refused too.
            world.configMode = 0o600
            let key = world.folder + "/client.key"
            try world.writeFile(key, try String(contentsOfFile: server.clientKey, encoding: .utf8), mode: 0o644)
            world.configOverrides = ["ldap.tls_cert": world.q(server.clientCert), "ldap.tls_key": world.q(key),
                              "ldap.tls_cacert": world.q(server.caCert), "ldap.uri": world.q(server.ldapsURI)]
            let keyOutcome = try world.bridge(["apply"])
            expectStatus(keyOutcome, 78, "apply with a client key others can read")
            #expect(keyOutcome.stderr.contains("tls_key"), "\(keyOutcome)")
            #expect(try server.dump(operational: true) == before, "a refused run wrote something")

            // The same files with safe modes work.
            chmod(key, 0o600)
            world.configMode = 0o644
            expectStatus(try world.bridge(["apply"]), 0, "apply with safe modes")
            #expect(try world.members()["sec-1"] == Set(["u02", "u03"].map(world.userDN)))
        }

        // MARK: Hostile names

        /// Device names and usernames that try DN or filter injection, with their RDNs
        /// escaped by hand (RFC 4514), independently of the code under test.
        static let hostileDevices: [(name: String, rdn: String)] = [
            ("lab,dc=evil", "cn=lab\\,dc=evil"),
            ("*)(uid=*", "cn=*)(uid=*"),
            ("Bob's MacBook Pro", "cn=Bob's MacBook Pro"),
            ("a+b=c", "cn=a\\+b=c"),
            ("#lead", "cn=\\#lead"),
            ("trail ", "cn=trail\\ "),
            (" lead", "cn=\\ lead"),
            ("Zürich Ωmega 東京", "cn=Zürich Ωmega 東京"),
            ("back\\slash", "cn=back\\\\slash"),
            ("quote\"d", "cn=quote\\\"d"),
            ("semi;colon<x>", "cn=semi\\;colon\\<x\\>"),
            ("x,ou=people,dc=example,dc=org", "cn=x\\,ou=people\\,dc=example\\,dc=org"),
            ("cn=nested", "cn=cn=nested"),
        ]

        static let hostileUsers: [(uid: String, rdn: String)] = [
            ("o'brien", "uid=o'brien"),
            ("jürgen", "uid=jürgen"),
            ("x,dc=evil", "uid=x\\,dc=evil"),
            ("*", "uid=*"),
            ("a+b", "uid=a\\+b"),
            ("#hash", "uid=\\#hash"),
            ("(admin)", "uid=(admin)"),
            ("semi;colon", "uid=semi\\;colon"),
        ]

        @Test func hostileNamesLandExactlyWhereTheyBelong() throws {
            let server = try Self.server.get()
            let world = try Scenario.world(on: server)
            let users = Self.hostileUsers
            var ldif = ""
            // R13 applies to taken-over names too: the local names are
            // valid account names; the usernames and DNs stay hostile.
            world.configOverrides["users.local_account_attribute"] = world.q("localUserAccount")
            func local(_ index: Int) -> String { "hostile\(index)" }
            for (index, user) in users.enumerated() {
                ldif += String(world.userLDIF(user.uid, dn: "\(user.rdn),\(world.people)").dropLast())
                    + "objectClass: takeoverUser\nlocalUserAccount: \(local(index))\n\n"
            }
            ldif += world.userLDIF("plain")
            try server.add(ldif)
            func dn(ofUser index: Int) -> String { "\(users[index].rdn),\(world.people)" }

            // Each device gets two hostile users (round robin) and `plain`; every account is
            // reported, so every pair is a takeover.
            var expected: [String: Set<String>] = [:]  // device -> uids
            for (index, device) in Self.hostileDevices.enumerated() {
                let first = index % users.count, second = (index + 3) % users.count
                let memberDNs = [dn(ofUser: first), dn(ofUser: second), world.userDN("plain")]
                try world.addDevice(device.name, [], dn: "\(device.rdn),\(world.devices)", memberDNs: memberDNs)
                try world.writeReport(device.name, accounts: [local(first), local(second), "plain"],
                                      fileName: "device-\(index).csv")
                expected[device.name] = [users[first].uid, users[second].uid, "plain"]
            }
            let outside = { try server.dump("ou=people,\(server.base)", operational: true)
                + server.dump("ou=devices,\(server.base)", operational: true)
                + server.dump("ou=services,\(server.base)", operational: true) }
            let outsideBefore = try outside()
            let topBefore = try server.root("ldapsearch", ["-LLL", "-b", server.base, "-s", "one", "(objectClass=*)", "1.1"])

            let applied = try world.bridge(["apply"])
            expectStatus(applied, 0, "apply with hostile names")
            #expect(try outside() == outsideBefore, "something outside ou=bindings changed")
            #expect(try server.root("ldapsearch", ["-LLL", "-b", server.base, "-s", "one", "(objectClass=*)", "1.1"]) == topBefore,
                    "an entry appeared at the top of the tree")

            // Exactly one group per device, at the hand-escaped DN, with the device's name as cn.
            let all = LDIFEntry.parse(try server.root("ldapsearch", ["-LLL", "-o", "ldif-wrap=no", "-b", world.bindings,
                                                                          "-s", "sub", "(objectClass=*)", "cn", "member"]))
            let groups = all.filter {  // not the base, nor the run lease that stays between runs
                $0.dn.lowercased() != world.bindings.lowercased() && !$0.dn.lowercased().hasPrefix("cn=takeover-bridge-lease,")
            }
            #expect(groups.count == Self.hostileDevices.count, "\(groups.map(\.dn))")
            for device in Self.hostileDevices {
                let exact = try Processes.run("ldapsearch", [
                    "-x", "-H", server.ldapURI, "-D", server.rootDN, "-y", server.rootPasswordFile,
                    "-LLL", "-o", "ldif-wrap=no", "-s", "base", "-b", "\(device.rdn),\(world.bindings)", "(objectClass=*)", "cn", "member",
                ])
                #expect(exact.status == 0, "no group at \(device.rdn): \(exact)")
                let entries = LDIFEntry.parse(exact.stdout)
                #expect(entries.count == 1)
                guard let entry = entries.first else { continue }
                let cns = entry.values("cn")
                #expect(cns == [device.name], "group for \(device.name) has cn \(cns)")
                // Every member resolves (base search) to exactly the expected users.
                var found: Set<String> = []
                for member in entry.values("member") {
                    let user = try Processes.run("ldapsearch", [
                        "-x", "-H", server.ldapURI, "-D", server.rootDN, "-y", server.rootPasswordFile,
                        "-LLL", "-o", "ldif-wrap=no", "-s", "base", "-b", member, "(objectClass=posixAccount)", "uid",
                    ])
                    #expect(user.status == 0, "member \(member) of \(device.name) is not a user: \(user)")
                    found.formUnion(LDIFEntry.parse(user.stdout).flatMap { $0.attributes.values.flatMap { $0 } })
                }
                #expect(found == expected[device.name], "members of \(device.name): \(found)")
            }
            // And the run converged: nothing left to do.
            expectStatus(try world.bridge(["plan", "--check"]), 0, "plan --check after the apply")
            // Explaining a user named like a filter explains that user only.
            let star = try world.bridge(["explain", "*"])
            #expect(!star.signalled && star.status == 0, "\(star)")
            #expect(!star.stdout.contains("o'brien"), "explain '*' talked about another user: \(star)")
        }
    }
}
