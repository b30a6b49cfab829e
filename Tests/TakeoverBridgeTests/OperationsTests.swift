// Operating it and output that reaches a terminal, through the built binary against
// slapd: explain's exit 67, hostile names in plan/explain/doctor, CSV and LDIF, the
// metrics file after every run (without a server: TakeoverBridgeUnitTests/CommandLineTests).

import Foundation
import LDAPTestSupport
import LDAPSyntax
import Testing
import TestSupport
@testable import TakeoverBridge
@testable import TakeoverCore

#if canImport(Glibc)
import Glibc
#endif

@Suite("operations: the binary against slapd", .enabled(if: bridgeTestsEnabled, "needs TB_TEST_ENV (run scripts/test.sh)"))
struct OperationsTests {
    // MARK: explain

    @Test func explainOfAnUnknownUserExits67() throws {
        let s = try Scenario()
        try s.addUsers([("alice", nil)])
        try s.addDevice("pc-1", ["alice"])
        try writeCSV(s, "pc-1.csv", device: "pc-1", accounts: ["alice"])
        let known = try s.bridge(["explain", "alice"])
        #expect(known.status == 0, "\(known.all)")
        let unknown = try s.bridge(["explain", "nobody"])
        #expect(unknown.status == 67, "\(unknown.all)")
        #expect(unknown.stdout.hasPrefix("no user 'nobody' among the 1 users"))
        #expect(unknown.stderr.contains("exit=67"))
        // A failure before the user is looked up still wins (5 > 67).
        s.configOverrides["ldap.uri"] = "\"ldap://127.0.0.1:1\""
        #expect(try s.bridge(["explain", "nobody"]).status == 5)
    }

    // MARK: hostile names

    static let sequences: [(String, String)] = [
        ("ESC clear screen", "\u{1B}[2J\u{1B}[H"),
        ("OSC 52 clipboard", "\u{1B}]52;c;cm0gLXJmIH4K\u{07}"),
        ("LF", "\n"),
        ("CR", "\r"),
        ("C1 CSI", "\u{9B}31m"),
        ("LINE SEPARATOR", "\u{2028}"),
        ("BEL and BS", "\u{07}\u{08}"),
    ]

    /// Device names, local names and account names from slapd and from a report, and a
    /// broken report whose file name carries the sequence: plan (both forms), explain and
    /// doctor show them escaped, on stdout and stderr.
    @Test(arguments: sequences)
    func hostileNamesNeverReachTheTerminalRaw(_ name: String, _ sequence: String) throws {
        let evil = "x" + sequence + "FORGED"
        let s = try Scenario()
        try s.addUsers([("alice", "acct" + evil), ("bob", "new" + evil)])
        let device = "dev" + evil
        try s.addDevice(device, ["alice", "bob"])
        try writeCSV(s, "dev.csv", device: device, accounts: ["acct" + evil, "other" + evil])
        try "not a report\n".write(toFile: s.reports + "/bad" + evil + ".json", atomically: true, encoding: .utf8)
        var runs: [(String, ProcessOutcome)] = []
        for arguments in [["plan"], ["plan", "--all"], ["explain", "alice"], ["explain", "bob", "--device", device],
                          ["explain", "ghost" + evil], ["doctor"]] {
            runs.append((arguments.joined(separator: " "), try s.bridge(arguments)))
        }
        let plan = try #require(runs.first?.1)
        #expect(plan.status == 0 || plan.status == 3, "\(plan.all)")
        #expect(plan.stdout.contains(TerminalText.escape("acct" + evil)), "\(plan.stdout)")
        #expect(runs[1].1.stdout.contains(TerminalText.escape("dev" + evil)))
        for (what, result) in runs {
            for (stream, text) in [("stdout", result.stdout), ("stderr", result.stderr)] {
                let raw = text.unicodeScalars.filter { $0 != "\n" && TerminalText.isUnsafe($0) }
                #expect(raw.isEmpty, "\(name): \(what) \(stream) has raw \(raw.map { String($0.value, radix: 16) })")
                let forged = text.split(separator: "\n").filter { $0.hasPrefix("FORGED") }
                #expect(forged.isEmpty, "\(name): \(what) \(stream): a name started a line")
            }
        }
    }

    /// Names that spreadsheets would run as formulas: every such cell gets a `'`.
    @Test func csvCellsNeverStartAFormulaThroughTheBinary() throws {
        let s = try Scenario()
        let locals = ["=HYPERLINK(\"http://evil\",\"x\")", "+cmd", "-2+3", "@SUM(1)", "\tx", "\r=1"]
        try s.addUsers(locals.enumerated().map { ("f\($0.offset)", $0.element) })
        try s.addDevice("@device", locals.indices.map { "f\($0)" })
        try writeCSV(s, "d.csv", device: "@device", accounts: ["root"])
        let result = try s.bridge(["plan", "--format", "csv"])
        #expect(result.status == 0 || result.status == 3, "\(result.all)")
        let rows = CSVReader.rows(result.stdout).dropFirst()
        #expect(rows.count == locals.count, "\(result.stdout)")
        for row in rows {
            #expect(row[0] == "'@device")
            let account = row[4]
            if !account.isEmpty { #expect(account.hasPrefix("'") && locals.contains(String(account.dropFirst())), "\(account.debugDescription)") }
            for cell in row {
                if let first = cell.unicodeScalars.first {
                    #expect(!["=", "+", "-", "@", "\t", "\r"].contains(first), "\(cell.debugDescription)")
                }
            }
        }
    }

    /// A device whose name holds TAB and ESC: its group's DN and member values are base64
    /// in the LDIF, and ldapmodify applies that LDIF as it is.
    @Test func ldifBase64sControlCharactersThroughTheBinary() throws {
        let s = try Scenario()
        try s.addUsers([("alice", nil)])
        let device = "lab\t1\u{1B}[0m"
        try s.addDevice(device, ["alice"])
        try writeCSV(s, "lab.csv", device: device, accounts: ["alice"])
        let result = try s.bridge(["plan", "--format", "ldif"])
        #expect(result.status == 0, "\(result.all)")
        #expect(!result.stdout.unicodeScalars.contains { $0 != "\n" && $0.value < 0x20 }, "\(result.stdout.debugDescription)")
        // The DN carries them hex-escaped (RFC 4514); the cn value is base64.
        #expect(result.stdout.hasPrefix("dn: cn=lab\\091\\1b[0m,"), "\(result.stdout)")
        let cnLine = try #require(result.stdout.split(separator: "\n").first { $0.hasPrefix("cn:") })
        #expect(cnLine.hasPrefix("cn:: "))
        let decoded = try #require(Data(base64Encoded: String(cnLine.dropFirst(5))))
        #expect(String(decoding: decoded, as: UTF8.self) == device)
        try s.modify(result.stdout)
        #expect(try s.bridge(["plan", "--check"]).status == 0)
    }

    // MARK: metrics

    @Test func metricsFileAfterEveryRun() throws {
        let s = try Scenario()
        try s.addUsers([("alice", nil), ("bob", "robert"), ("jdoe", "john"), ("jsmith", "john")])
        try s.addDevice("pc-1", ["alice", "bob", "jdoe"])
        try writeCSV(s, "pc-1.csv", device: "pc-1", accounts: ["alice", "robert", "john"])
        let folder = s.folder + "/textfile"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let path = folder + "/takeover_bridge.prom"
        s.configOverrides["state.metrics_file"] = s.q(path)

        // A file from an earlier run: an old success of apply, and a doctor series.
        try """
            takeover_bridge_last_success_timestamp_seconds{command="apply"} 1000
            takeover_bridge_exit_code{command="doctor"} 0

            """.write(toFile: path, atomically: true, encoding: .utf8)

        // apply with a conflict held: exit 3 counts as success.
        let apply = try s.bridge(["apply"])
        #expect(apply.status == 3, "\(apply.all)")
        var metrics = try readMetrics(path)
        #expect(metrics["takeover_bridge_exit_code{command=\"apply\"}"] == 3)
        let finished = try #require(metrics["takeover_bridge_last_run_timestamp_seconds{command=\"apply\"}"])
        #expect(abs(finished - Date().timeIntervalSince1970) < 120)
        #expect(metrics["takeover_bridge_last_success_timestamp_seconds{command=\"apply\"}"] == finished)
        #expect(metrics["takeover_bridge_decisions{command=\"apply\",action=\"takeover\"}"] == 2)
        #expect(metrics["takeover_bridge_decisions{command=\"apply\",action=\"conflict\"}"] == 1)
        #expect(metrics["takeover_bridge_decisions{command=\"apply\",action=\"unbind\"}"] == 0)
        for kind in ReportVocabulary.conflictKinds {
            #expect(metrics["takeover_bridge_conflicts{command=\"apply\",kind=\"\(kind)\"}"] == (kind == "duplicate-local-account" ? 1 : 0))
        }
        #expect(metrics["takeover_bridge_changes_written{command=\"apply\"}"] == 1)  // one add-entry
        #expect((metrics["takeover_bridge_run_duration_seconds{command=\"apply\"}"] ?? -1) >= 0)
        #expect(metrics["takeover_bridge_exit_code{command=\"doctor\"}"] == 0)  // other commands kept
        #expect(metrics["takeover_bridge_build_info{version=\"\(BridgeVersion.string)\"}"] == 1)
        try expectWellFormed(path)

        // A plan by hand keeps apply's series.
        #expect(try s.bridge(["plan", "--check"]).status == 3)
        metrics = try readMetrics(path)
        #expect(metrics["takeover_bridge_exit_code{command=\"plan\"}"] == 3)
        #expect(metrics["takeover_bridge_exit_code{command=\"apply\"}"] == 3)
        #expect(metrics["takeover_bridge_changes_written{command=\"plan\"}"] == 0)

        // A failed apply: exit code 5, last run moves, last success stays.
        try """
            takeover_bridge_last_success_timestamp_seconds{command="apply"} 2000

            """.write(toFile: path, atomically: true, encoding: .utf8)
        s.configOverrides["ldap.uri"] = "\"ldap://127.0.0.1:1\""
        let failed = try s.bridge(["apply"])
        #expect(failed.status == 5, "\(failed.all)")
        metrics = try readMetrics(path)
        #expect(metrics["takeover_bridge_exit_code{command=\"apply\"}"] == 5)
        #expect(metrics["takeover_bridge_last_success_timestamp_seconds{command=\"apply\"}"] == 2000)
        #expect((metrics["takeover_bridge_last_run_timestamp_seconds{command=\"apply\"}"] ?? 0) > 2000)
        #expect(metrics["takeover_bridge_decisions{command=\"apply\",action=\"takeover\"}"] == nil)  // no plan, no counts
        #expect(metrics["takeover_bridge_changes_written{command=\"apply\"}"] == 0)
        try expectWellFormed(path)

        // Replaced, never written through: a symlink at the path is replaced by the file.
        let victim = s.folder + "/victim.txt"
        try "keep\n".write(toFile: victim, atomically: true, encoding: .utf8)
        try FileManager.default.removeItem(atPath: path)
        try FileManager.default.createSymbolicLink(atPath: path, withDestinationPath: victim)
        #expect(try s.bridge(["apply"]).status == 5)
        #expect(try String(contentsOfFile: victim, encoding: .utf8) == "keep\n")
        var st = stat()
        #expect(lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG)
        #expect(st.st_mode & 0o777 == 0o644, "mode \(String(st.st_mode & 0o777, radix: 8))")
        // Nothing left beside it.
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder) == ["takeover_bridge.prom"])
    }

    @Test func noMetricsFileWhenUnset() throws {
        let s = try Scenario()
        try s.addUsers([("alice", nil)])
        try s.addDevice("pc-1", ["alice"])
        try writeCSV(s, "pc-1.csv", device: "pc-1", accounts: ["alice"])
        #expect(try s.bridge(["plan"]).status == 0)
        let proms = allFileContents(s.folder).filter { $0.path.hasSuffix(".prom") }
        #expect(proms.isEmpty)
    }

    /// Sample lines keyed by name and labels; checks each family has HELP and TYPE first.
    func readMetrics(_ path: String) throws -> [String: Double] {
        var out: [String: Double] = [:]
        for line in try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " ") else { continue }
            out[String(line[..<space])] = Double(line[line.index(after: space)...])
        }
        return out
    }

    func expectWellFormed(_ path: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        var typed = Set<String>(), helped = Set<String>()
        let sample = try Regex(#"^([a-z_]+)(\{[a-z_]+="[^"\\\n]*"(,[a-z_]+="[^"\\\n]*")*\})? -?[0-9]+(\.[0-9]+)?$"#)
        for line in text.split(separator: "\n") {
            if line.hasPrefix("# HELP ") { helped.insert(String(line.split(separator: " ")[2])); continue }
            if line.hasPrefix("# TYPE ") {
                let parts = line.split(separator: " ")
                typed.insert(String(parts[2]))
                #expect(parts.last == "gauge", sourceLocation: sourceLocation)
                continue
            }
            let match = try #require(try sample.wholeMatch(in: String(line)), "not a sample: \(line)", sourceLocation: sourceLocation)
            let name = String(match.output[1].substring ?? "")
            #expect(typed.contains(name) && helped.contains(name), "\(name) without HELP/TYPE before it", sourceLocation: sourceLocation)
        }
        #expect(text.hasSuffix("\n"), sourceLocation: sourceLocation)
    }

    // MARK: helpers

    /// A CSV report (RFC 4180 quoting, so names with newlines survive).
    func writeCSV(_ s: Scenario, _ file: String, device: String, accounts: [String]) throws {
        func field(_ v: String) -> String {
            v.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" || $0 == "\r\n" })
                ? "\"" + v.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : v
        }
        let time = UTCTime.iso8601(UnixTime(Date().timeIntervalSince1970) - 3600)
        var csv = "device,username,uid,home,shell,reported_at\n"
        for (i, account) in accounts.enumerated() {
            csv += "\(field(device)),\(field(account)),\(account == "root" ? 0 : 2000 + i),\(field("/home/" + account)),/bin/bash,\(time)\n"
        }
        try csv.write(toFile: s.reports + "/" + file, atomically: true, encoding: .utf8)
    }
}
