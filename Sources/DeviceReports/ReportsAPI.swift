// Public entry points of DeviceReports: report files in, DeviceReport values out.
// PRODUCT.md section 9; REFERENCE.md "Device reports".

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

    public static let defaultMaxFileBytes = 64 * 1024 * 1024
    public static let defaultMaxFiles = 200_000

    public init(maxFileBytes: Int = ReportLimits.defaultMaxFileBytes, maxFiles: Int = ReportLimits.defaultMaxFiles,
                maxJSONDepth: Int = 64) {
        self.maxFileBytes = maxFileBytes
        self.maxFiles = maxFiles
        self.maxJSONDepth = maxJSONDepth
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

    public init(reports: [DeviceReport] = [], problems: [InputProblem] = [], warnings: [InputProblem] = []) {
        self.reports = reports
        self.problems = problems
        self.warnings = warnings
    }
}

public enum ReportsFolder {
    /// Reads every regular file in `path` (not recursive; skips hidden files and README*),
    /// in parallel; the result is sorted and deterministic.
    public static func read(path: String, limits: ReportLimits = ReportLimits()) -> ReportsReadResult {
        ReportsReadResult()
    }
}

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
        ReportsReadResult()
    }
}
