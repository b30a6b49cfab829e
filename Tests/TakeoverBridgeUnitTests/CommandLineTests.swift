// The built binary without a server: --version from the source, the script hash, hostile
// text in messages, the metrics file key and rendering, the README's exit codes.

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

@Suite("command line without a server")
struct CommandLineTests {
    @Test func versionComesFromTheSource() throws {
        let result = try Processes.run(BridgeExecutable.path, ["--version"])
        #expect(result.status == 0, "\(result.all)")
        #expect(result.stdout == BridgeVersion.string + "\n")
        let help = try Processes.run(BridgeExecutable.path, ["--help"])
        #expect(help.stdout.contains(" 67  no such user (explain)"), "\(help.stdout)")
        #expect(help.stdout.contains("--version"))
    }

    /// The page's Content-Security-Policy names the SHA-256 of its script: if they
    /// drifted apart, the browser would refuse the filter.
    @Test func scriptHashMatchesTheScript() throws {
        let folder = NSTemporaryDirectory() + "tb-csp-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try HTMLPage.script.write(toFile: folder + "/script.js", atomically: true, encoding: .utf8)
        let digest = try Processes.run("/bin/sh", ["-c", "openssl dgst -sha256 -binary \"$0\" | base64", folder + "/script.js"])
        #expect(digest.status == 0, "\(digest.all)")
        #expect(digest.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == HTMLPage.scriptSHA256)
    }

    /// Doctor's lines and the readable stderr form escape what a name may carry.
    @Test(arguments: ["\u{1B}[2J\nFORGED", "\rFORGED", "\u{9B}2J\u{2028}FORGED", "\u{1B}]52;c;eA==\u{07}FORGED"])
    func doctorAndHumanStderrEscape(_ evil: String) {
        let check = DoctorCheck("reports", ok: false, "cannot read dev" + evil, fix: "rename" + evil)
        let human = Logfmt.humanLine(program: "takeover-bridge", level: .warning, message: "report dev" + evil, metadata: [:])
        for text in [check.text, human] {
            #expect(!text.unicodeScalars.contains { $0 != "\n" && TerminalText.isUnsafe($0) }, "\(text.debugDescription)")
            #expect(!text.split(separator: "\n").contains { $0.hasPrefix("FORGED") })
        }
    }

    /// `[state] metrics_file`: off when unset, relative to the config's folder, never empty.
    @Test func metricsFileKey() throws {
        #expect(try BridgeConfig.parse(toml: minimalTOML, source: "c.toml", baseDirectory: "/etc/tb").state.metricsFile == nil)
        let relative = try BridgeConfig.parse(toml: minimalTOML + "\n[state]\nmetrics_file = \"textfile/tb.prom\"\n",
                                              source: "c.toml", baseDirectory: "/etc/tb")
        #expect(relative.state.metricsFile == "/etc/tb/textfile/tb.prom")
        for bad in ["\"\"", "\"  \"", "\"/var/lib/prom/\""] {
            let problems = parseProblems(minimalTOML + "\n[state]\nmetrics_file = \(bad)\n")
            #expect(problems.contains { $0.description.contains("metrics_file") && $0.description.contains("must name a file") },
                    "\(bad): \(problems)")
        }
    }

    /// The file's own lines are carried over for the other commands; anything else in it
    /// (other metrics, garbage) is dropped; a command that never succeeded shows 0.
    @Test func metricsRenderCarriesOnlyItsOwnSeries() {
        let previous = """
            # HELP something_else foreign
            something_else{command="plan"} 7
            takeover_bridge_exit_code{command="plan"} 2
            takeover_bridge_exit_code{command="apply"} 0
            takeover_bridge_last_success_timestamp_seconds{command="apply"} not-a-number
            garbage line without a value
            takeover_bridge_build_info{version="0.0.1"} 1
            """
        let run = RunMetrics(command: "apply", exitCode: 5, finishedAt: 1_800_000_000, durationSeconds: 1.5)
        let text = MetricsFile.render(run, previous: previous)
        #expect(text.contains("takeover_bridge_exit_code{command=\"plan\"} 2\n"))
        #expect(text.contains("takeover_bridge_exit_code{command=\"apply\"} 5\n"))
        #expect(text.contains("takeover_bridge_last_success_timestamp_seconds{command=\"apply\"} 0\n"))
        #expect(text.contains("takeover_bridge_run_duration_seconds{command=\"apply\"} 1.500\n"))
        #expect(text.contains("takeover_bridge_build_info{version=\"\(BridgeVersion.string)\"} 1\n"))
        #expect(!text.contains("something_else") && !text.contains("garbage") && !text.contains("0.0.1"))
        #expect(!text.contains("takeover_bridge_decisions"))  // no plan in this run
    }

    @Test func readmeExitCodeTableHas67() throws {
        let readme = try String(contentsOfFile: TestDirectory.packageRoot + "/README.md", encoding: .utf8)
        #expect(readme.contains("| 67 | no such user"))
    }
}
