// Metrics for the Prometheus node_exporter textfile collector (docs/product.md section 9a):
// `[state] metrics_file`, replaced after every run whatever its exit code, in the text
// exposition format (version 0.0.4).
//
// Every series carries a `command` label (plan, apply, explain, doctor). The file keeps
// the series of the other commands from its previous content, so a `plan` run by hand
// does not wipe what the `apply` from cron reported, and the last success of a command
// survives its failed runs (only exits 0, 2 and 3 move it).
//
// Replaced atomically: a temporary file in the same folder (a name node_exporter ignores,
// it reads only *.prom), written, synced and renamed over the file; removed on failure.
// Mode 0644: the collector (another user) reads it, nobody else writes it.

import Foundation
import TakeoverCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// What one run reports.
package struct RunMetrics: Sendable, Hashable {
    package var command: String
    package var exitCode: Int32
    /// When the run finished (Unix time, seconds).
    package var finishedAt: UnixTime
    package var durationSeconds: Double
    /// Decisions per action and conflicts per kind; nil when the run computed no plan
    /// (a configuration or connection failure): those series are then left out, never
    /// reported as zero.
    package var decisions: [Action: Int]? = nil
    package var conflicts: [String: Int]? = nil
    package var changesPlanned: Int? = nil
    package var changesWritten = 0

    /// The counts of a plan.
    package mutating func record(_ plan: Plan, written: Int) {
        let s = plan.summary
        decisions = [.takeover: s.takeover, .provision: s.provision, .bound: s.bound, .unbind: s.unbind,
                     .deferred: s.deferred, .conflict: s.conflict]
        var kinds: [String: Int] = [:]
        for kind in ReportVocabulary.conflictKinds { kinds[kind] = 0 }
        for f in plan.conflicts { kinds[f.kind, default: 0] += 1 }
        conflicts = kinds
        changesPlanned = s.changes
        changesWritten = written
    }

    /// Exit codes that count as a successful run: done (0), changes pending (2), done
    /// with conflicts held (3).
    package var isSuccess: Bool { exitCode == 0 || exitCode == 2 || exitCode == 3 }
}

package enum MetricsFile {
    /// The metric families, in the order written: name, help text.
    static let families: [(String, String)] = [
        ("takeover_bridge_build_info", "The version of takeover-bridge that wrote this file (always 1)."),
        ("takeover_bridge_last_run_timestamp_seconds", "When the last run of the command finished, Unix time."),
        ("takeover_bridge_last_success_timestamp_seconds",
         "When the last run of the command that exited 0, 2 or 3 finished, Unix time (0: never)."),
        ("takeover_bridge_exit_code", "Exit code of the last run of the command (see the README's exit code table)."),
        ("takeover_bridge_run_duration_seconds", "How long the last run of the command took."),
        ("takeover_bridge_decisions", "Decisions of the last run's plan, by action."),
        ("takeover_bridge_conflicts", "Conflicts of the last run's plan, by kind."),
        ("takeover_bridge_changes_planned", "Directory changes in the last run's plan."),
        ("takeover_bridge_changes_written", "Directory changes the last run wrote (apply; 0 for the other commands)."),
    ]

    /// The largest previous file read back (ours are a few kilobytes).
    static let maximumPreviousSize = 1 << 20

    /// The file's new content: this run's series, and the other commands' series and
    /// this command's last success carried over from `previous`.
    package static func render(_ run: RunMetrics, previous: String?) -> String {
        var samples: [String: [String]] = [:]  // family -> sample lines
        var lastSuccess: String?
        for line in (previous ?? "").split(separator: "\n", omittingEmptySubsequences: true) {
            guard !line.hasPrefix("#"), let (name, command) = parseSample(line) else { continue }
            guard families.contains(where: { $0.0 == name }), name != "takeover_bridge_build_info" else { continue }
            if command == run.command {
                if name == "takeover_bridge_last_success_timestamp_seconds" {
                    lastSuccess = line.split(separator: " ").last.map(String.init)
                }
                continue
            }
            if command != nil { samples[name, default: []].append(String(line)) }
        }

        let command = "command=\"\(labelValue(run.command))\""
        func add(_ name: String, _ labels: String, _ value: String) {
            samples[name, default: []].append("\(name){\(labels)} \(value)")
        }
        add("takeover_bridge_last_run_timestamp_seconds", command, String(run.finishedAt))
        let success = run.isSuccess ? String(run.finishedAt) : (lastSuccess.flatMap { Double($0) != nil ? $0 : nil } ?? "0")
        add("takeover_bridge_last_success_timestamp_seconds", command, success)
        add("takeover_bridge_exit_code", command, String(run.exitCode))
        add("takeover_bridge_run_duration_seconds", command, format(run.durationSeconds))
        if let decisions = run.decisions {
            for action in Action.allCases {
                add("takeover_bridge_decisions", command + ",action=\"\(action.rawValue)\"", String(decisions[action] ?? 0))
            }
        }
        if let conflicts = run.conflicts {
            for kind in conflicts.keys.sorted() {
                add("takeover_bridge_conflicts", command + ",kind=\"\(labelValue(kind))\"", String(conflicts[kind] ?? 0))
            }
        }
        if let planned = run.changesPlanned { add("takeover_bridge_changes_planned", command, String(planned)) }
        add("takeover_bridge_changes_written", command, String(run.changesWritten))

        var out = ""
        for (name, help) in families {
            let lines: [String]
            if name == "takeover_bridge_build_info" {
                lines = ["\(name){version=\"\(labelValue(BridgeVersion.string))\"} 1"]
            } else {
                lines = (samples[name] ?? []).sorted()
            }
            guard !lines.isEmpty else { continue }
            out += "# HELP \(name) \(help)\n# TYPE \(name) gauge\n"
            for line in lines { out += line + "\n" }
        }
        return out
    }

    /// Replaces `path` with `render(run, previous: <its current content>)`.
    package static func write(_ run: RunMetrics, to path: String) throws(MetricsError) {
        let text = render(run, previous: readPrevious(path))
        let folder = FileSecurity.parentFolder(path)
        let base = path.split(separator: "/").last.map(String.init) ?? path
        let temporary = (folder.hasSuffix("/") ? folder : folder + "/") + ".\(base).\(getpid()).tmp"
        let flags = O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW
        var fd = open(temporary, flags, 0o644)
        if fd < 0 && errno == EEXIST {
            // Left by a killed run with the same pid: ours by its name; the link or file itself goes.
            unlink(temporary)
            fd = open(temporary, flags, 0o644)
        }
        guard fd >= 0 else {
            throw MetricsError(path: path, message: "cannot create \(temporary): \(StateDirectory.errnoText())")
        }
        do {
            _ = fchmod(fd, 0o644)  // whatever the umask: readable by the collector, writable by us only
            try StateDirectory.writeAll(fd, text, path: temporary)
        } catch {
            close(fd)
            unlink(temporary)
            throw MetricsError(path: path, message: error.message)
        }
        close(fd)
        if rename(temporary, path) != 0 {
            let message = StateDirectory.errnoText()
            unlink(temporary)
            throw MetricsError(path: path, message: "cannot rename \(temporary) over it: \(message)")
        }
    }

    /// The current file when it is a regular file of sensible size (never through a
    /// symlink, never blocking on a FIFO); nil otherwise.
    static func readPrevious(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, Int(st.st_size) <= maximumPreviousSize else { return nil }
        var bytes = [UInt8](repeating: 0, count: Int(st.st_size))
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            offset += n
        }
        return String(decoding: bytes[..<offset], as: UTF8.self)
    }

    /// `name{command="x",...} value` -> (name, "x"); (name, nil) without a command label.
    static func parseSample(_ line: Substring) -> (String, String?)? {
        guard let end = line.firstIndex(where: { $0 == "{" || $0 == " " }) else { return nil }
        let name = String(line[..<end])
        guard let start = line.range(of: "command=\"") else { return (name, nil) }
        let rest = line[start.upperBound...]
        guard let close = rest.firstIndex(of: "\"") else { return (name, nil) }
        return (name, String(rest[..<close]))
    }

    /// A label value: `\`, `"` and newlines escaped as the exposition format says.
    static func labelValue(_ s: String) -> String {
        var out = ""
        for c in s.unicodeScalars {
            switch c {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    static func format(_ seconds: Double) -> String {
        let millis = (max(0, seconds) * 1000).rounded()
        let whole = Int64(millis) / 1000, fraction = Int64(millis) % 1000
        let digits = String(fraction)
        return "\(whole)." + String(repeating: "0", count: 3 - digits.count) + digits
    }
}

package struct MetricsError: Error, Sendable, Hashable, CustomStringConvertible {
    package var path: String
    package var message: String
    package var description: String { "metrics file \(path): \(message)" }
}
