// Bad input (docs/product.md section 7): a corpus of broken configurations and broken
// device reports, each run through the built binary against a private slapd that holds
// real bindings. Every one gives a clear message naming the file (and the line, where
// the input has one), none crashes, and none unbinds anyone.
//
// The corpus is generated here (text, bytes, FIFOs, symlinks, sparse files) rather than
// kept as resource files, so no special file has to live in the repository.
//
// Support code (`Scenario.world(on:)`, `expectStatus`, `uids`) is in SafetyIntegrationTests.swift.

import Foundation
import LDAPTestSupport
import LDAPClient
import Testing

#if canImport(Glibc)
import Glibc
import TestSupport
#endif

// MARK: - The configuration corpus

/// One broken configuration: the good template (below) changed, or raw bytes.
struct BadConfig: Sendable, CustomStringConvertible {
    enum Body: Sendable {
        /// The template's lines, changed.
        case lines(@Sendable ([String]) -> [String])
        /// Bytes made from the good text.
        case bytes(@Sendable (String) -> [UInt8])
        /// The config path is a folder.
        case folder
        /// The config path does not exist.
        case missing
    }

    var name: String
    var body: Body
    /// The line the message must name (`config.toml:LINE:`), when the problem has one.
    var line: Int?
    /// Fragments the messages must contain.
    var fragments: [String]
    /// Strings that must appear nowhere in the output.
    var secrets: [String] = []

    var description: String { name }

    /// The good configuration; line numbers in the cases refer to it.
    ///  1 [ldap]            8 search_base     15 search_base
    ///  2 uri               9                 16
    ///  3 bind_dn          10 [devices]       17 [safety]
    ///  4 bind_password_f  11 search_base     18 max_unbinds
    ///  5 timeout          12 reports         19 max_unbind_percent
    ///  6                  13                 20
    ///  7 [users]          14 [bindings]      21 [state] / 22 dir
    static func template(_ world: Scenario) -> [String] {
        let q = world.q
        return [
            "[ldap]",
            "uri = \(q(world.server.ldapURI))",
            "bind_dn = \(q(world.server.bindDN))",
            "bind_password_file = \(q(world.passwordFile))",
            "timeout = 10",
            "",
            "[users]",
            "search_base = \(q(world.people))",
            "",
            "[devices]",
            "search_base = \(q(world.devices))",
            "reports = \(q(world.reports))",
            "",
            "[bindings]",
            "search_base = \(q(world.bindings))",
            "",
            "[safety]",
            "max_unbinds = 1000",
            "max_unbind_percent = 100",
            "",
            "[state]",
            "dir = \(q(world.state))",
        ]
    }

    static func replace(_ line: Int, with text: String) -> Body {
        .lines { lines in
            var out = lines
            out[line - 1] = text
            return out
        }
    }

    static func insert(after line: Int, _ texts: String...) -> Body {
        .lines { lines in
            var out = lines
            out.insert(contentsOf: texts, at: line)
            return out
        }
    }

    static func append(_ texts: String...) -> Body {
        .lines { $0 + texts }
    }

    static let secret = "S3cr3t-in-the-config-7f3a9"

    static let all: [BadConfig] = [
        BadConfig(name: "unterminated string", body: .lines { lines in
            var out = lines
            out[1] = String(out[1].dropLast())
            return out
        }, line: 2, fragments: ["not valid TOML"]),
        BadConfig(name: "unknown key (a typo)", body: replace(8, with: "serach_base = \"ou=x,dc=example,dc=org\""),
                  line: 8, fragments: ["serach_base", "did you mean search_base"]),
        BadConfig(name: "missing required key", body: .lines { lines in lines.enumerated().filter { $0.offset != 7 }.map(\.element) },
                  line: 7, fragments: ["search_base: missing"]),
        BadConfig(name: "missing section", body: .lines { lines in Array(lines[0..<13] + lines[16...]) },
                  line: nil, fragments: ["missing section [bindings]"]),
        BadConfig(name: "key in the wrong section", body: insert(after: 8, "page_size = 100"),
                  line: 9, fragments: ["page_size", "[ldap]"]),
        BadConfig(name: "string for a number", body: replace(5, with: "timeout = \"ten\""), line: 5, fragments: ["timeout"]),
        BadConfig(name: "bool for an integer", body: replace(18, with: "max_unbinds = true"), line: 18, fragments: ["max_unbinds"]),
        BadConfig(name: "float for an integer", body: replace(18, with: "max_unbinds = 1.5"), line: 18, fragments: ["max_unbinds"]),
        BadConfig(name: "negative count", body: replace(18, with: "max_unbinds = -5"), line: 18, fragments: ["max_unbinds"]),
        BadConfig(name: "percent out of range", body: replace(19, with: "max_unbind_percent = 150"), line: 19,
                  fragments: ["max_unbind_percent"]),
        BadConfig(name: "string for a list", body: append("", "[policy]", "protected_accounts = \"root\""), line: 25,
                  fragments: ["protected_accounts"]),
        BadConfig(name: "string for a bool", body: insert(after: 5, "allow_cleartext = \"yes\""), line: 6,
                  fragments: ["allow_cleartext"]),
        BadConfig(name: "password in the config", body: insert(after: 4, "bind_password = \"\(secret)\""), line: 5,
                  fragments: ["bind_password"], secrets: [secret]),
        BadConfig(name: "duplicate key", body: insert(after: 2, "uri = \"ldap://127.0.0.1:1\""), line: 3, fragments: []),
        BadConfig(name: "duplicate table", body: append("", "[ldap]", "timeout = 3"), line: 24, fragments: []),
        BadConfig(name: "bad duration", body: insert(after: 12, "active_within = \"7 fortnights\""), line: 13,
                  fragments: ["active_within"]),
        BadConfig(name: "bad URI scheme", body: replace(2, with: "uri = \"http://127.0.0.1\""), line: 2, fragments: ["uri"]),
        BadConfig(name: "unbalanced filter", body: insert(after: 8, "filter = \"(objectClass=posixAccount\""), line: 9,
                  fragments: ["filter"]),
        BadConfig(name: "not a DN", body: replace(15, with: "search_base = \"bindings\""), line: 15, fragments: ["search_base"]),
        BadConfig(name: "unknown tls_reqcert", body: insert(after: 5, "tls_reqcert = \"sometimes\""), line: 6,
                  fragments: ["tls_reqcert"]),
        BadConfig(name: "unknown policy value", body: append("", "[policy]", "on_likely_mismatch = \"guess\""), line: 25,
                  fragments: ["on_likely_mismatch"]),
        BadConfig(name: "hostile TOML key", body: .bytes { _ in Array("[{x]\n".utf8) }, line: 1, fragments: []),
        BadConfig(name: "deep nesting", body: .bytes { _ in Array(("a = " + String(repeating: "[", count: 100_000) + "\n").utf8) },
                  line: nil, fragments: []),
        BadConfig(name: "deep inline tables", body: .bytes { _ in Array(("a = " + String(repeating: "{b = ", count: 20_000) + "\n").utf8) },
                  line: nil, fragments: []),
        BadConfig(name: "NUL in a value", body: .bytes { text in
            Array(text.replacingOccurrences(of: "timeout = 10", with: "timeout = 1\u{0}0").utf8)
        }, line: nil, fragments: []),
        BadConfig(name: "empty file", body: .bytes { _ in [] }, line: nil, fragments: ["missing section [ldap]"]),
        BadConfig(name: "binary", body: .bytes { _ in
            var rng = SplitMix64(seed: 6)
            return (0..<4096).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        }, line: nil, fragments: []),
        BadConfig(name: "UTF-16 with BOM", body: .bytes { text in
            [0xFF, 0xFE] + text.utf16.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }
        }, line: nil, fragments: ["UTF-16"]),
        BadConfig(name: "UTF-16 without BOM", body: .bytes { text in text.utf16.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] } },
                  line: nil, fragments: []),
        BadConfig(name: "a 1 MB value", body: replace(2, with: "uri = \"ldap://" + String(repeating: "a", count: 1_000_000) + "\""),
                  line: nil, fragments: []),
        BadConfig(name: "a folder", body: .folder, line: nil, fragments: []),
        BadConfig(name: "no such file", body: .missing, line: nil, fragments: []),
    ]
}


// MARK: - The report corpus

/// One broken report for the device `victim` (or a hostile one beside it).
struct BadReport: Sendable, CustomStringConvertible {
    var name: String
    /// File name in the reports folder.
    var file: String
    var make: @Sendable (_ path: String) throws -> Void
    /// The line the message must name (`<file>:LINE`), when the input has one.
    var line: Int?
    var fragments: [String] = []
    /// Whether a message must name the file (a subfolder may be passed over in silence).
    var named = true
    var description: String { name }

    static func bytes(_ b: [UInt8]) -> @Sendable (String) throws -> Void {
        { path in
            guard FileManager.default.createFile(atPath: path, contents: Data(b)) else {
                throw TestDirectory.Failure("cannot write \(path)")
            }
        }
    }

    static func text(_ s: String) -> @Sendable (String) throws -> Void { bytes(Array(s.utf8)) }

    /// `osqueryi --json "select * from users"` for victim: one object per line (lines 2-6).
    static let osquery: String = {
        var rows: [String] = []
        for (name, uid) in [("root", 0), ("u01", 20000), ("u02", 20001), ("u03", 20002), ("localadmin", 1000)] {
            rows.append("  {\"uid\":\"\(uid)\",\"gid\":\"100\",\"username\":\"\(name)\",\"description\":\"\",\"directory\":\"/home/\(name)\",\"shell\":\"/bin/bash\",\"uuid\":\"\"}")
        }
        return "[\n" + rows.joined(separator: ",\n") + "\n]\n"
    }()

    static let timeNow = ISO8601DateFormatter().string(from: Date().addingTimeInterval(-600))

    static let all: [BadReport] = [
        // Cut inside a string on line 3.
        BadReport(name: "truncated JSON", file: "victim.json", make: text({
            let lines = osquery.split(separator: "\n")
            return lines[0] + "\n" + lines[1] + "\n" + lines[2].prefix(20)
        }()), line: 3, fragments: ["truncated"]),
        BadReport(name: "binary", file: "victim.json", make: { path in
            var rng = SplitMix64(seed: 42)
            try bytes((0..<8192).map { _ in UInt8(truncatingIfNeeded: rng.next()) })(path)
        }, line: nil, fragments: []),
        BadReport(name: "empty", file: "victim.json", make: text(""), line: nil, fragments: ["empty"]),
        BadReport(name: "UTF-16 without BOM", file: "victim.json",
                  make: bytes(osquery.utf16.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }), line: nil, fragments: ["UTF-16"]),
        BadReport(name: "UTF-16 with BOM, truncated", file: "victim.json",
                  make: bytes([0xFF, 0xFE] + osquery.utf16.prefix(200).flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }),
                  line: nil, fragments: []),
        BadReport(name: "deep nesting", file: "victim.json", make: text(String(repeating: "[", count: 200_000)),
                  line: 1, fragments: ["deeper"]),
        BadReport(name: "invalid UTF-8 in a string", file: "victim.json", make: { path in
            var b = Array(osquery.utf8)
            if let at = b.firstIndex(of: UInt8(ascii: "u")) { b.insert(contentsOf: [0xC3, 0x28], at: at) }
            try bytes(b)(path)
        }, line: nil, fragments: []),
        BadReport(name: "trailing garbage", file: "victim.json", make: text(osquery + "}{\n"), line: nil, fragments: []),
        BadReport(name: "CSV without a username column", file: "victim.csv",
                  make: text("device,user\nvictim,u01\n"), line: 1, fragments: ["username"]),
        BadReport(name: "CSV with an unclosed quote", file: "victim.csv",
                  make: text("device,username,reported_at\nvictim,u01,\(timeNow)\nvictim,\"u02,\(timeNow)\nvictim,u03,\(timeNow)\n"),
                  line: 3, fragments: ["quote"]),
        BadReport(name: "CSV with a bad date", file: "victim.csv",
                  make: text("device,username,reported_at\nvictim,u01,\(timeNow)\nvictim,u02,yesterday-ish\n"),
                  line: 3, fragments: ["reported_at"]),
        BadReport(name: "osqueryd log with a broken line", file: "victim.log", make: text(
            "{\"name\":\"users\",\"hostIdentifier\":\"victim\",\"unixTime\":\(Int(Date().timeIntervalSince1970) - 600),\"action\":\"snapshot\",\"snapshot\":[{\"username\":\"u01\",\"uid\":\"20000\",\"directory\":\"/home/u01\",\"shell\":\"/bin/bash\"}]}\n"
                + "{\"name\":\"users\",\"hostIdentifier\":\"vic\n"), line: 2, fragments: []),
        BadReport(name: "passwd with a short line", file: "victim.passwd",
                  make: text("root:x:0:0:root:/root:/bin/bash\nu01:x:20000\nu02:x:20001:100::/home/u02:/bin/bash\n"),
                  line: 2, fragments: []),
        BadReport(name: "larger than the size cap", file: "victim.json", make: { path in
            guard FileManager.default.createFile(atPath: path, contents: nil) else { throw TestDirectory.Failure("create \(path)") }
            guard truncate(path, 70 * 1024 * 1024) == 0 else { throw TestDirectory.Failure("truncate \(path)") }
        }, line: nil, fragments: []),
        BadReport(name: "a FIFO", file: "victim.json", make: { path in
            guard mkfifo(path, 0o644) == 0 else { throw TestDirectory.Failure("mkfifo \(path)") }
        }, line: nil, fragments: []),
        BadReport(name: "a symlink to /dev/zero", file: "victim.json", make: { path in
            guard symlink("/dev/zero", path) == 0 else { throw TestDirectory.Failure("symlink \(path)") }
        }, line: nil, fragments: []),
        BadReport(name: "a folder", file: "victim.json", make: { path in
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        }, line: nil, fragments: [], named: false),
    ]
}

// MARK: - The tests

extension SerializedServerTests {
    @Suite("bad input: clear messages, no crash, nobody unbound")
    struct BadInputTests {
        static let server = TestDirectory.privateServer()

        /// A world where `victim` has three bindings (u01-u03) and u01 has since been
        /// disconnected: any run that took bad evidence for good would unbind u01.
        static let victimWorld: Result<Scenario, TestDirectory.Failure> = {
            do {
                let world = try Scenario.world(on: try server.get())
                try world.addUsers(uids(1...5))
                try world.addDevice("victim", uids(1...3))
                try world.addDevice("bystander", ["u04"])
                try world.writeReport("victim", accounts: uids(1...5), fileName: "victim.csv")
                try world.writeReport("bystander", accounts: uids(1...5), fileName: "bystander.csv")
                let first = try world.bridge(["apply"])
                guard first.status == 0 else { return .failure(TestDirectory.Failure("first apply: \(first)")) }
                try world.disconnect(["u01"], from: "victim")
                return .success(world)
            } catch {
                return .failure(TestDirectory.Failure("\(error)"))
            }
        }()

        @Test(arguments: BadConfig.all) func aBrokenConfigIsRefusedWithFileAndLine(_ bad: BadConfig) throws {
            let world = try Self.victimWorld.get()
            let server = try Self.server.get()
            let path = world.folder + "/bad-\(UUID().uuidString.prefix(6)).toml"
            let good = BadConfig.template(world).joined(separator: "\n") + "\n"
            switch bad.body {
            case .lines(let change):
                try world.writeFile(path, change(BadConfig.template(world)).joined(separator: "\n") + "\n", mode: 0o600)
            case .bytes(let make):
                guard FileManager.default.createFile(atPath: path, contents: Data(make(good))) else { throw TestDirectory.Failure("write") }
                chmod(path, 0o600)
            case .folder:
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
            case .missing:
                break
            }
            defer { try? FileManager.default.removeItem(atPath: path) }
            let before = try server.dump(operational: true)
            for command in [["apply"], ["plan"], ["doctor"]] {
                let outcome = try Processes.run(BridgeExecutable.path, ["-c", path] + command, directory: world.folder, timeout: 60)
                #expect(!outcome.signalled, "\(bad.name): \(command) crashed: \(outcome)")
                #expect(outcome.status == 78, "\(bad.name): \(command): \(outcome)")
                // doctor reports on stdout, the other commands on stderr.
                #expect(outcome.all.contains(path), "\(bad.name): the message names the file: \(outcome)")
                if let line = bad.line {
                    #expect(outcome.all.contains("\(path):\(line):"), "\(bad.name): the message names line \(line): \(outcome)")
                }
                for fragment in bad.fragments {
                    #expect(outcome.all.contains(fragment), "\(bad.name): expected '\(fragment)': \(outcome)")
                }
                for secret in bad.secrets {
                    #expect(!outcome.all.contains(secret), "\(bad.name): the secret was printed")
                }
                #expect(outcome.stderr.count < 100_000, "\(bad.name): \(outcome.stderr.count) bytes of messages")
            }
            #expect(try server.dump(operational: true) == before, "\(bad.name): the directory changed")
            #expect(try world.members()["victim"] == Set(uids(1...3).map(world.userDN)))
        }

        @Test(arguments: BadReport.all) func aBrokenReportIsNamedAndUnbindsNobody(_ bad: BadReport) throws {
            let world = try Self.victimWorld.get()
            let server = try Self.server.get()
            // Only the bystander's good report and the broken one.
            for file in (try? FileManager.default.contentsOfDirectory(atPath: world.reports)) ?? [] where file != "bystander.csv" {
                try FileManager.default.removeItem(atPath: world.reports + "/" + file)
            }
            let path = world.reports + "/" + bad.file
            try bad.make(path)
            defer { try? FileManager.default.removeItem(atPath: path) }
            let victimBefore = try server.dump(world.groupDN("victim"), operational: true)
            let outsideBefore = try server.dump("ou=people,\(server.base)", operational: true)
                + server.dump("ou=devices,\(server.base)", operational: true)

            for command in [["plan", "--format", "json"], ["apply"]] {
                let outcome = try world.bridge(command, timeout: 60)
                #expect(!outcome.signalled, "\(bad.name): \(command) crashed: \(outcome)")
                #expect(outcome.seconds < 50, "\(bad.name): \(command) took \(outcome.seconds) s")
                #expect([0, 2, 3].contains(outcome.status), "\(bad.name): \(command): \(outcome)")
                if bad.named {
                    #expect(outcome.stderr.contains(bad.file), "\(bad.name): the message names the file: \(outcome)")
                }
                if let line = bad.line {
                    #expect(outcome.stderr.contains("\(bad.file):\(line)"), "\(bad.name): the message names line \(line): \(outcome)")
                }
                for fragment in bad.fragments {
                    #expect(outcome.stderr.contains(fragment), "\(bad.name): expected '\(fragment)': \(outcome)")
                }
                #expect(!outcome.stdout.replacingOccurrences(of: " ", with: "").contains("\"action\":\"unbind\""),
                        "\(bad.name): the plan unbinds someone: \(outcome)")
            }
            #expect(try server.dump(world.groupDN("victim"), operational: true) == victimBefore,
                    "\(bad.name): the victim's binding group changed")
            #expect(try world.members()["victim"] == Set(uids(1...3).map(world.userDN)))
            #expect(try server.dump("ou=people,\(server.base)", operational: true)
                + server.dump("ou=devices,\(server.base)", operational: true) == outsideBefore)
            // The rest of the run went on: the bystander is bound.
            #expect(try world.members()["bystander"] == [world.userDN("u04")])
        }

        /// Hostile names inside otherwise valid reports: log injection, control characters,
        /// a non-UTF-8 file name, a huge name. No crash, no forged log line, nobody unbound.
        @Test func hostileNamesInReportsForgeNothing() throws {
            let world = try Self.victimWorld.get()
            let server = try Self.server.get()
            for file in (try? FileManager.default.contentsOfDirectory(atPath: world.reports)) ?? [] where file != "bystander.csv" {
                try FileManager.default.removeItem(atPath: world.reports + "/" + file)
            }
            let forged = "ts=2000-01-01T00:00:00Z level=error msg=FORGED"
            let t = BadReport.timeNow
            var csv = "device,username,uid,home,reported_at\n"
            csv += "\"dev\n\(forged)\",u01,20000,/home/u01,\(t)\n"
            csv += "victim-x,\"name\n\(forged)\",20001,/home/x,\(t)\n"
            csv += "\"\u{1B}[31mred\u{1B}[0m\",u02,20002,/home/u02,\(t)\n"
            csv += "\"rtl\u{202E}txt.exe\",u03,20003,/home/u03,\(t)\n"
            csv += "\"\(String(repeating: "L", count: 100_000))\",u04,20004,/home/u04,not-a-date\n"
            csv += "\"bad-date\n\(forged)\",u05,20005,/home/u05,not-a-date\n"
            try world.writeFile(world.reports + "/hostile.csv", csv, mode: 0o644)
            // A file name that is not UTF-8, and one with a newline and a forged line in it.
            let made = try Processes.run("/bin/bash", ["-c", "printf '[]' > \"$1\"$'\\xff\\xfe.json'", "x", world.reports + "/bad"])
            #expect(made.status == 0, "\(made)")
            try world.writeFile(world.reports + "/x\n\(forged).json", "[{\"username\":\"u01\"", mode: 0o644)
            let victimBefore = try server.dump(world.groupDN("victim"), operational: true)

            for command in [["plan"], ["apply"], ["explain", "u01"]] {
                let outcome = try world.bridge(command, timeout: 60)
                #expect(!outcome.signalled, "\(command) crashed: \(outcome)")
                #expect([0, 2, 3].contains(outcome.status), "\(command): \(outcome)")
                let forgedLines = outcome.stderr.split(separator: "\n").filter { $0.hasPrefix("ts=2000-01-01") }
                #expect(forgedLines.isEmpty, "a name forged a log line: \(forgedLines)")
                #expect(!outcome.stderr.contains("\u{1B}["), "a terminal escape went to the log unescaped")
                #expect(outcome.stderr.count < 2_000_000)
            }
            #expect(try server.dump(world.groupDN("victim"), operational: true) == victimBefore)
            // Clean up the odd files for the other tests.
            for file in (try? FileManager.default.contentsOfDirectory(atPath: world.reports)) ?? [] where file != "bystander.csv" {
                try? FileManager.default.removeItem(atPath: world.reports + "/" + file)
            }
            _ = try? Processes.run("/bin/bash", ["-c", "rm -f \"$1\"$'\\xff\\xfe.json'", "x", world.reports + "/bad"])
        }
    }
}
