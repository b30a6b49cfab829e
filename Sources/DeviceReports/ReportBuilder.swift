// Collects what one file says, device by device, then turns it into reports, errors and
// warnings. Every format parser feeds one of these; the rules that are the same for all
// formats live here: duplicate names, empty reports, platform inference, which devices a
// file's errors make "no valid report", and how many messages one file may produce.

import TakeoverCore

/// Where something is in the file: a line number (text formats) or a byte offset into the
/// UTF-8 text (JSON), turned into a line only when a message needs it.
struct Position: Sendable {
    var value: Int
    var isOffset: Bool

    static func line(_ n: Int) -> Position { Position(value: n, isOffset: false) }
    static func offset(_ n: Int) -> Position { Position(value: n, isOffset: true) }
}

struct ReportBuilder {
    let source: String
    let fallbackDevice: String
    let modificationTime: UnixTime
    /// The decoded UTF-8 text, for offset -> line.
    private let text: [UInt8]
    private var lineIndex: LineIndex?

    private struct DeviceState {
        var accounts: [LocalAccount] = []
        /// Folded name -> where it was first reported.
        var seen: [String: Position] = [:]
        var evidence = PlatformEvidence()
        var reportedAt: UnixTime?
        /// This device has an error in this file: no report from this file.
        var failed = false
        /// The device already has an error naming it (no extra "see above" problem needed).
        var named = false
    }

    private var order: [String] = []
    private var devices: [String: DeviceState] = [:]
    private var problems: [InputProblem] = []
    private var warnings: [InputProblem] = []
    private var errorCount = 0
    private var warningCount = 0
    /// Errors that cannot be pinned on one device: every device of the file fails.
    private var fileFailed = false
    private var fileErrorLines: [Int?] = []
    /// Indices in `problems` of file-wide errors (device still nil).
    private var fileErrorIndices: [Int] = []

    /// Messages listed per file; further ones are counted in one summary line.
    static let maxListedErrors = 20
    static let maxListedWarnings = 20

    init(source: String, fallbackDevice: String, modificationTime: UnixTime, text: [UInt8]) {
        self.source = source
        self.fallbackDevice = fallbackDevice
        self.modificationTime = modificationTime
        self.text = text
    }

    mutating func line(_ position: Position?) -> Int? {
        guard let position else { return nil }
        if !position.isOffset { return position.value }
        if lineIndex == nil { lineIndex = LineIndex(text) }
        return lineIndex?.line(at: position.value)
    }

    // MARK: Devices and accounts

    /// Makes sure `device` exists (a report may list no accounts yet).
    mutating func touch(_ device: String) {
        if devices[device] == nil {
            devices[device] = DeviceState()
            order.append(device)
        }
    }

    /// Adds one account; a second account whose name folds equal is a warning and is skipped.
    mutating func add(_ account: LocalAccount, device: String, at position: Position) {
        touch(device)
        let key = NameFolding.fold(account.name)
        if let first = devices[device]?.seen[key] {
            let firstLine = line(first)
            let where_ = firstLine.map { " (first at line \($0))" } ?? ""
            warn(device: device, at: position,
                 "account '\(account.name)' is reported twice for device '\(device)'\(where_); the first is used")
            return
        }
        devices[device]?.seen[key] = position
        devices[device]?.evidence.observe(account)
        devices[device]?.accounts.append(account)
    }

    /// Replaces a device's accounts wholesale (osqueryd folding), checking duplicates.
    mutating func addAll(_ rows: [(account: LocalAccount, position: Position)], device: String) {
        touch(device)
        for row in rows { add(row.account, device: device, at: row.position) }
    }

    /// The report time of `device` is the newest time any of its rows carries.
    mutating func noteTime(_ time: UnixTime, device: String) {
        touch(device)
        if let current = devices[device]?.reportedAt, current >= time { return }
        devices[device]?.reportedAt = time
    }

    mutating func hint(_ platform: Platform, weight: Int, device: String) {
        touch(device)
        devices[device]?.evidence.add(platform, weight)
    }

    mutating func force(_ platform: Platform, device: String) {
        touch(device)
        if devices[device]?.evidence.forced == nil { devices[device]?.evidence.forced = platform }
    }

    // MARK: Messages

    /// An error about one device: that device gets no report from this file.
    mutating func error(device: String, at position: Position?, _ message: String) {
        touch(device)
        devices[device]?.failed = true
        if record(InputProblem(source: source, line: line(position), device: device, message: message)) {
            devices[device]?.named = true
        }
    }

    /// An error that cannot be pinned on one device: no device of this file gets a report.
    mutating func fileError(at position: Position?, _ message: String) {
        fileFailed = true
        let l = line(position)
        fileErrorLines.append(l)
        if record(InputProblem(source: source, line: l, device: nil, message: message)) {
            fileErrorIndices.append(problems.count - 1)
        }
    }

    mutating func warn(device: String? = nil, at position: Position?, _ message: String) {
        warningCount += 1
        if warningCount <= ReportBuilder.maxListedWarnings {
            warnings.append(InputProblem(source: source, line: line(position), device: device, message: message))
        }
    }

    /// Returns true when the problem was listed (not only counted).
    @discardableResult
    private mutating func record(_ problem: InputProblem) -> Bool {
        errorCount += 1
        guard errorCount <= ReportBuilder.maxListedErrors else { return false }
        problems.append(problem)
        return true
    }

    var hasErrors: Bool { errorCount > 0 }

    // MARK: Result

    mutating func finish() -> ReportsReadResult {
        var reports: [DeviceReport] = []
        var deviceProblems: [InputProblem] = []
        if errorCount > ReportBuilder.maxListedErrors {
            problems.append(InputProblem(source: source, message:
                "\(errorCount - ReportBuilder.maxListedErrors) more errors in this file not listed"))
        }
        if warningCount > ReportBuilder.maxListedWarnings {
            warnings.append(InputProblem(source: source, message:
                "\(warningCount - ReportBuilder.maxListedWarnings) more warnings in this file not listed"))
        }
        if order.isEmpty && errorCount == 0 {
            // E.g. a CSV with only its header, a log with no users query: no evidence at all.
            fileError(at: nil, "no accounts found in this file")
        }
        if order.isEmpty && (fileFailed || errorCount > 0) {
            // Nothing could be attributed: the device named by the file fails.
            touch(fallbackDevice)
        }
        let fileLine = fileErrorLines.compactMap { $0 }.first
        let fileWhere = fileLine.map { " (line \($0))" } ?? ""
        // With a single device, file-wide errors are that device's own errors.
        if fileFailed, order.count == 1, let only = order.first {
            for i in fileErrorIndices { problems[i].device = only }
            if !fileErrorIndices.isEmpty { devices[only]?.named = true }
        }
        for name in order {
            guard var state = devices[name] else { continue }
            if fileFailed { state.failed = true }
            if state.failed {
                if !state.named {
                    deviceProblems.append(InputProblem(source: source, line: fileLine, device: name, message:
                        "no valid report for device '\(name)' from this file: the file has errors\(fileWhere)"))
                }
                continue
            }
            if state.accounts.isEmpty {
                deviceProblems.append(InputProblem(source: source, device: name, message:
                    "the report for device '\(name)' lists no accounts; every real system has at least one "
                    + "(root, Administrator), so the report is treated as incomplete"))
                continue
            }
            reports.append(DeviceReport(device: name, platform: state.evidence.decide(),
                                        reportedAt: state.reportedAt ?? modificationTime,
                                        accounts: state.accounts, source: source))
        }
        return ReportsReadResult(reports: reports, problems: problems + deviceProblems, warnings: warnings)
    }
}

/// Case folding used for duplicate detection inside one report. ASCII names (nearly all of
/// them) take a fast path; others use Swift's full Unicode lowercasing.
enum NameFolding {
    static func fold(_ name: String) -> String {
        var needsWork = false
        for b in name.utf8 where b >= 0x80 || (b >= 0x41 && b <= 0x5A) {
            needsWork = true
            break
        }
        return needsWork ? name.lowercased() : name
    }
}

/// Weighted clues about the platform of one device. Strong clues (a SID, `/Users/` or
/// `/home/` homes, `cmd.exe`, the `is_hidden` column) outweigh weak ones (`_` names,
/// `/var/empty`), so a Debian `_apt` account does not make a Linux box a Mac.
struct PlatformEvidence: Sendable {
    var linux = 0
    var macos = 0
    var windows = 0
    var forced: Platform?

    mutating func add(_ platform: Platform, _ weight: Int) {
        switch platform {
        case .linux: linux += weight
        case .macos: macos += weight
        case .windows: windows += weight
        case .unknown: break
        }
    }

    mutating func observe(_ a: LocalAccount) {
        if let sid = a.sid, sid.utf8.count > 4, sid.utf8.starts(with: "S-1-".utf8) { windows += 10 }
        if let type = a.accountType, type == "local" || type == "roaming" || type == "special" { windows += 10 }
        if let home = a.home {
            let h = home.utf8
            if h.starts(with: "/Users/".utf8) || home == "/var/root" { macos += 10 }
            else if h.starts(with: "/home/".utf8) { linux += 10 }
            else if home == "/root" { linux += 5 }
            else if home == "/nonexistent" { linux += 3 }
            else if home == "/var/empty" { macos += 2 }
            else if isWindowsPath(h) { windows += 10 }
        }
        if let shell = a.shell {
            if shell.utf8.count >= 7, shell.lowercased().hasSuffix("cmd.exe") { windows += 10 }
            else if shell == "/usr/sbin/nologin" || shell == "/sbin/nologin" { linux += 3 }
            else if shell == "/bin/zsh" { macos += 1 }
        }
        if a.name.utf8.first == UInt8(ascii: "_") { macos += 1 }
        if a.uidSigned == -2 { macos += 3 }
    }

    private func isWindowsPath<S: Collection>(_ h: S) -> Bool where S.Element == UInt8 {
        var it = h.makeIterator()
        guard let d = it.next(), let c = it.next(), let s = it.next() else { return false }
        let letter = (d >= 0x41 && d <= 0x5A) || (d >= 0x61 && d <= 0x7A)
        return letter && c == UInt8(ascii: ":") && (s == UInt8(ascii: "\\") || s == UInt8(ascii: "/"))
    }

    func decide() -> Platform {
        if let forced { return forced }
        let best = max(linux, macos, windows)
        guard best > 0 else { return .unknown }
        let winners = (linux == best ? 1 : 0) + (macos == best ? 1 : 0) + (windows == best ? 1 : 0)
        guard winners == 1 else { return .unknown }
        if windows == best { return .windows }
        if macos == best { return .macos }
        return .linux
    }
}

/// uid / uid_signed as osquery means them: uid unsigned, uid_signed the 32-bit signed view.
enum UIDs {
    static func normalized(uid: Int64?, uidSigned: Int64?) -> (uid: Int64?, uidSigned: Int64?) {
        let twoTo32: Int64 = 1 << 32
        var u = uid, s = uidSigned
        if let v = u, v < 0, v >= Int64(Int32.min) {
            // A signed uid where an unsigned one belongs (macOS /etc/passwd: nobody is -2).
            if s == nil { s = v }
            u = v + twoTo32
        }
        if s == nil, let v = u {
            s = (v >= Int64(Int32.max) + 1 && v < twoTo32) ? v - twoTo32 : v
        }
        if u == nil, let v = s {
            u = (v < 0 && v >= Int64(Int32.min)) ? v + twoTo32 : v
        }
        return (u, s)
    }

    /// The RID of a Windows SID (its last sub-authority), e.g. 500 for Administrator.
    static func rid(ofSID sid: String) -> Int64? {
        guard sid.utf8.starts(with: "S-1-".utf8), let dash = sid.utf8.lastIndex(of: UInt8(ascii: "-")) else { return nil }
        let tail = sid.utf8[sid.utf8.index(after: dash)...]
        guard !tail.isEmpty, tail.count <= 10 else { return nil }
        return Timestamps.parseInteger(ArraySlice(tail))
    }
}

extension InputProblem {
    /// `"<source>:<line>: <message>"`, or `"<source>: <message>"` without a line.
    public var reportLine: String {
        if let line { return "\(source):\(line): \(message)" }
        return "\(source): \(message)"
    }
}
