// Public entry points of DeviceReports: report files in, DeviceReport values out.
// docs/product.md section 9; docs/reference.md "Device reports"; docs/device-formats.md.
//
// Formats, detected by content (never by file name):
// - `osqueryi --json "select * from users"`: a JSON array of users rows (values are strings).
// - osqueryd result logs: one JSON object per line, snapshot / batch (`diffResults`) /
//   event (`columns` + `action`) forms, folded in order per `hostIdentifier`; time from
//   `unixTime` (number or string). Other scheduled queries in the same log are skipped.
// - JumpCloud System Insights users: a JSON array with `system_id` and `collection_time`;
//   one report per system.
// - PowerShell `Get-LocalUser | ConvertTo-Json`: an object or an array, UTF-8 (BOM or not)
//   or UTF-16 with a BOM; `SID.Value`; `PSComputerName` (Invoke-Command) names the device.
// - `getent passwd` / `/etc/passwd` text.
// - CSV with a header: `device,username` required; `uid, sid, home, full_name, shell,
//   hidden, reported_at` optional; also accepted: `uid_signed`, `platform`
//   (linux/macos/windows). RFC 4180 quoting; several devices per file.
//
// Device and time: from the content where it names them (hostIdentifier + unixTime,
// system_id + collection_time, CSV device + reported_at, PSComputerName), else the file
// name without its report extension and the file's modification time.
//
// Platform: inferred per device from the content (SIDs, `type`, `C:\` homes and cmd.exe
// -> windows; `is_hidden`, `/Users/`, `/var/root`, `_` names, uid_signed -2 -> macos;
// `/home/`, `/root`, nologin, passwd text -> linux), weighed; a tie is `unknown`.
//
// Errors: every problem names the file (`source`) and the line where one exists, and the
// device when it is known, so the planner defers exactly that device (R8). A device with
// an error in a file gets no report from that file. Warnings: a name reported twice on one
// device (the first is kept), skipped rows, ignored CSV columns.
//
// Protection (R5) is not decided here: accounts carry the raw facts (uid, uid_signed,
// SID, shell, hidden, type, real_user, enabled) for `ProtectedAccounts` in TakeoverCore.

import TakeoverCore

/// Limits applied while reading the reports folder.
public struct ReportLimits: Sendable, Hashable {
    /// Largest report file read, in bytes. Bigger files are an error naming this cap.
    /// Default 64 MiB: a `getent passwd` of 100,000 accounts is about 8 MiB.
    public var maxFileBytes: Int
    /// Most files read from the folder; files past it (in name order) are an error each.
    public var maxFiles: Int
    /// Deepest JSON nesting accepted (arrays/objects); deeper input is an error, never a crash.
    public var maxJSONDepth: Int
    /// Most bytes read from the whole folder (`[devices] max_reports_size`). Checked on the
    /// files' sizes before any is read, and again while reading (a file that grows after the
    /// check); beyond it the read stops with `ReportsReadResult.fatal` set, never with an
    /// allocation failure.
    public var maxTotalBytes: Int

    public static let defaultMaxFileBytes = 64 * 1024 * 1024
    public static let defaultMaxFiles = 200_000
    /// 512 MiB: about 5 million reported accounts in the usual formats (100 bytes each).
    public static let defaultMaxTotalBytes = 512 * 1024 * 1024

    public init(maxFileBytes: Int = ReportLimits.defaultMaxFileBytes, maxFiles: Int = ReportLimits.defaultMaxFiles,
                maxJSONDepth: Int = 64, maxTotalBytes: Int = ReportLimits.defaultMaxTotalBytes) {
        self.maxFileBytes = maxFileBytes
        self.maxFiles = maxFiles
        self.maxJSONDepth = maxJSONDepth
        self.maxTotalBytes = maxTotalBytes
    }
}

/// What reading one file or a whole folder produced.
public struct ReportsReadResult: Sendable, Hashable {
    /// One per (device, file); several devices per file where the format carries host ids.
    public var reports: [DeviceReport]
    /// Errors: a file unusable or partly unusable. `device` is set when the device is known
    /// (at least the file-name fallback), so the planner defers it.
    public var problems: [InputProblem]
    /// Non-fatal: a name reported twice on one device, skipped unrecognised rows.
    public var warnings: [InputProblem]
    /// Set when the folder could not be read within `ReportLimits.maxTotalBytes`: the run must
    /// stop (exit 5) with this message; `reports`, `problems` and `warnings` are then empty.
    public var fatal: String?

    public init(reports: [DeviceReport] = [], problems: [InputProblem] = [], warnings: [InputProblem] = [],
                fatal: String? = nil) {
        self.reports = reports
        self.problems = problems
        self.warnings = warnings
        self.fatal = fatal
    }
}

/// The `[devices] reports` folder. `read(path:limits:)` is in ReportsFolder.swift.
public enum ReportsFolder {}

public enum ReportParser {
    /// Parses one file's bytes. `fileName` is the base name (device fallback = name without
    /// extension), `modificationTime` the file's mtime (time fallback).
    public static func parse(bytes: [UInt8], fileName: String, modificationTime: UnixTime) -> ReportsReadResult {
        parse(bytes: bytes, fileName: fileName, source: fileName, modificationTime: modificationTime, limits: ReportLimits())
    }

    /// As `parse(bytes:fileName:modificationTime:)`, with the `source` used in messages
    /// (e.g. "reports/mbp.json") and explicit limits.
    public static func parse(bytes: [UInt8], fileName: String, source: String, modificationTime: UnixTime,
                             limits: ReportLimits) -> ReportsReadResult {
        parse(bytes: bytes, fileName: fileName, source: source, modificationTime: modificationTime, limits: limits,
              scratch: nil)
    }

    /// As above, reusing `scratch`'s memory (one per thread) when given.
    static func parse(bytes: [UInt8], fileName: String, source: String, modificationTime: UnixTime,
                      limits: ReportLimits, scratch: ParseScratch?) -> ReportsReadResult {
        let device = deviceName(fromFileName: fileName)
        func failure(_ line: Int?, _ message: String) -> ReportsReadResult {
            ReportsReadResult(problems: [InputProblem(source: source, line: line, device: device, message: message)])
        }
        if bytes.count > limits.maxFileBytes {
            return failure(nil, tooLarge(bytes.count, limits: limits))
        }
        if bytes.isEmpty { return failure(nil, "empty file: no report") }
        let text: [UInt8]
        switch TextDecoding.utf8Bytes(bytes) {
        case .success(let t): text = t
        case .failure(let f): return failure(f.line, f.message)
        }
        guard let first = text.first(where: { $0 != 0x20 && $0 != 0x09 && $0 != 0x0A && $0 != 0x0D }) else {
            return failure(nil, "empty file (only whitespace): no report")
        }
        var builder = ReportBuilder(source: source, fallbackDevice: device, modificationTime: modificationTime, text: text,
                                    shared: scratch?.takeShared() ?? SharedValues())
        defer { scratch?.giveBack(shared: builder.takeShared()) }
        if first == UInt8(ascii: "[") || first == UInt8(ascii: "{") {
            JSONReports.read(text, into: &builder, limits: limits, scratch: scratch)
        } else {
            switch TextReports.detect(text) {
            case .passwd?: Passwd.read(text, into: &builder)
            case .csv?: CSVReports.read(text, into: &builder)
            case nil:
                if let separator = TextReports.csvHeaderWithOtherSeparator(text) {
                    builder.fileError(at: .line(1), "looks like a CSV header separated by '\(separator)': "
                        + "CSV reports must be comma-separated (\(JSONReports.acceptedFormats))")
                } else {
                    builder.fileError(at: nil, "unrecognised report format (\(JSONReports.acceptedFormats))")
                }
            }
        }
        return builder.finish()
    }

    static func tooLarge(_ size: Int, limits: ReportLimits) -> String {
        "file is \(size) bytes, larger than the \(limits.maxFileBytes)-byte cap for one report "
            + "(ReportLimits.maxFileBytes, \(limits.maxFileBytes / (1024 * 1024)) MiB); not read"
    }

    /// File extensions stripped to name the device: `Bob's MacBook Pro.json` is device
    /// `Bob's MacBook Pro`. Other extensions are kept (`web01.example.com` stays whole).
    static let reportExtensions: Set<String> = ["json", "jsonl", "ndjson", "log", "txt", "csv", "passwd", "getent", "out"]

    /// The device a file names when its content names none: the file name without a
    /// report extension. Never interpreted further (`kiosk,ou=Users.json` is device `kiosk,ou=Users`).
    public static func deviceName(fromFileName fileName: String) -> String {
        guard let dot = fileName.lastIndex(of: "."), dot != fileName.startIndex else { return fileName }
        let ext = fileName[fileName.index(after: dot)...].lowercased()
        return reportExtensions.contains(ext) ? String(fileName[..<dot]) : fileName
    }
}
