// Collects what one file says, device by device, then turns it into reports, errors and
// warnings. Every format parser feeds one of these; the rules that are the same for all
// formats live here: duplicate names, empty reports, platform inference, which devices a
// file's errors make "no valid report", and how many messages one file may produce.

import LDAPSyntax
import TakeoverCore

/// Where something is in the file: a line number (text formats) or a byte offset into the
/// UTF-8 text (JSON), turned into a line only when a message needs it. One word (an offset
/// is stored as its bitwise complement), since the builder keeps one per reported account.
struct Position: Sendable {
    private let raw: Int

    var value: Int { raw < 0 ? ~raw : raw }
    var isOffset: Bool { raw < 0 }

    static func line(_ n: Int) -> Position { Position(raw: max(0, n)) }
    static func offset(_ n: Int) -> Position { Position(raw: ~max(0, n)) }
}

struct ReportBuilder {
    let source: String
    let fallbackDevice: String
    let modificationTime: UnixTime
    /// The decoded UTF-8 text, for offset -> line.
    private let text: [UInt8]
    private var lineIndex: LineIndex?

    private struct DeviceState {
        var name: String
        var accounts: [LocalAccount] = []
        /// Where each account was reported, parallel to `accounts`.
        var positions: [Position] = []
        /// Folded names already reported, once the device has `ReportBuilder.setFrom` accounts;
        /// below that, duplicates are found by scanning `accounts` (most devices list a few
        /// accounts, and a set per device cost more than the accounts themselves).
        var seen: Set<String>?
        /// The folded names of `accounts`, parallel to it, until `seen` is made (a name that
        /// folds to itself shares its storage): duplicates are looked up without folding again.
        var keys: [String] = []
        /// Accounts announced by `reserve`: `seen` is made that big at once.
        var expected = 0
        var evidence = PlatformEvidence()
        var reportedAt: UnixTime?
        /// This device has an error in this file: no report from this file.
        var failed = false
        /// The device already has an error naming it (no extra "see above" problem needed).
        var named = false

        init(name: String) {
            self.name = name
        }

        /// Records the folded name of a new account; false when an account already folds to it.
        mutating func insertFolded(_ key: String) -> Bool {
            if seen != nil { return seen!.insert(key).inserted }
            for k in keys where k == key { return false }
            if keys.count + 1 >= ReportBuilder.setFrom {
                var set = Set<String>(minimumCapacity: max(2 * ReportBuilder.setFrom, expected))
                for k in keys { set.insert(k) }
                set.insert(key)
                seen = set
                keys = []
            } else {
                keys.append(key)
            }
            return true
        }
    }

    /// Devices in order of first appearance, and where each one is.
    private var states: [DeviceState] = []
    private var slots: [String: Int] = [:]
    /// Rows of one device come together: remember the last one looked up.
    private var lastDevice = ""
    private var lastSlot = -1

    private var problems: [InputProblem] = []
    private var warnings: [InputProblem] = []
    private var errorCount = 0
    private var warningCount = 0
    /// Long values that repeat across accounts (shells, system accounts' descriptions), so
    /// every account shares one copy instead of holding its own (values of up to 15 UTF-8
    /// bytes are stored inside the String and need no sharing). Handed from file to file
    /// by `ParseScratch`, so it is made once per thread, not once per file.
    private var shared: SharedValues
    /// Errors that cannot be pinned on one device: every device of the file fails.
    private var fileFailed = false
    private var fileErrorLines: [Int?] = []
    /// Indices in `problems` of file-wide errors (device still nil).
    private var fileErrorIndices: [Int] = []

    /// Accounts of one device from which duplicates are looked up in a set, not by a scan.
    static let setFrom = 16

    /// Most accounts `reserve` makes room for in one call.
    static let maxReserved = 1 << 14

    /// Messages listed per file; further ones are counted in one summary line.
    static let maxListedErrors = 20
    static let maxListedWarnings = 20

    /// `shared`: long values already held (e.g. by earlier files of the same thread).
    init(source: String, fallbackDevice: String, modificationTime: UnixTime, text: [UInt8],
         shared: SharedValues = SharedValues()) {
        self.shared = shared
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

    /// The index of `device` in `states`, adding it on first use.
    private mutating func slot(_ device: String) -> Int {
        if lastSlot >= 0 && device == lastDevice { return lastSlot }
        let i: Int
        if let known = slots[device] {
            i = known
        } else {
            i = states.count
            states.append(DeviceState(name: device))
            slots[device] = i
        }
        lastDevice = device
        lastSlot = i
        return i
    }

    /// Makes sure `device` exists (a report may list no accounts yet).
    mutating func touch(_ device: String) { _ = slot(device) }

    /// Room for `count` more accounts of `device` (a format that knows its row count), so
    /// `finish` need not copy the accounts into an array of the right size.
    /// At most `maxReserved` at once: a file of empty lines must not reserve room it never uses.
    mutating func reserve(_ count: Int, device: String) {
        let count = min(max(0, count), ReportBuilder.maxReserved)
        let i = slot(device)
        states[i].accounts.reserveCapacity(states[i].accounts.count + count)
        states[i].positions.reserveCapacity(states[i].positions.count + count)
        states[i].expected = states[i].accounts.count + count
    }

    /// Adds one account; a second account whose name folds equal is a warning and is skipped.
    /// "Folds equal" is the planner's rule (`Folding.fold`, full Unicode case folding), so a
    /// report never holds two accounts the planner could not tell apart (`straße`/`STRASSE`).
    mutating func add(_ account: consuming LocalAccount, device: String, at position: Position) {
        let i = slot(device)
        let key = Folding.fold(account.name)
        guard states[i].insertFolded(key) else {
            let firstIndex = states[i].accounts.firstIndex { Folding.fold($0.name) == key }
            let firstLine = firstIndex.flatMap { line(states[i].positions[$0]) }
            let where_ = firstLine.map { " (first at line \($0))" } ?? ""
            warn(device: device, at: position,
                 "account '\(account.name)' is reported twice for device '\(device)'\(where_); the first is used")
            return
        }
        states[i].evidence.observe(account)
        if let held = shared.held(account.shell) { account.shell = held }
        if let held = shared.held(account.fullName) { account.fullName = held }
        // Set only when shared: setting the type makes a new Windows box.
        if let held = shared.held(account.accountType) { account.accountType = held }
        states[i].accounts.append(consume account)
        states[i].positions.append(position)
    }

    /// Hands the shared values over (for the next file); the builder keeps none.
    mutating func takeShared() -> SharedValues {
        var taken = SharedValues()
        swap(&taken, &shared)
        return taken
    }

    /// The report time of `device` is the newest time any of its rows carries.
    mutating func noteTime(_ time: UnixTime, device: String) {
        guard Timestamps.plausible.contains(time) else {
            error(device: device, at: nil, "report time \(time) is not a plausible date (outside the years 1 to 9999): no report from this file")
            return
        }
        let i = slot(device)
        if let current = states[i].reportedAt, current >= time { return }
        states[i].reportedAt = time
    }

    mutating func hint(_ platform: Platform, weight: Int, device: String) {
        let i = slot(device)
        states[i].evidence.add(platform, weight)
    }

    mutating func force(_ platform: Platform, device: String) {
        let i = slot(device)
        if states[i].evidence.forced == nil { states[i].evidence.forced = platform }
    }

    // MARK: Messages

    /// An error about one device: that device gets no report from this file.
    mutating func error(device: String, at position: Position?, _ message: String) {
        let i = slot(device)
        states[i].failed = true
        if record(InputProblem(source: source, line: line(position), device: device, message: message)) {
            states[i].named = true
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
        if states.isEmpty && errorCount == 0 {
            // E.g. a CSV with only its header, a log with no users query: no evidence at all.
            fileError(at: nil, "no accounts found in this file")
        }
        if states.isEmpty && (fileFailed || errorCount > 0) {
            // Nothing could be attributed: the device named by the file fails.
            touch(fallbackDevice)
        }
        let fileLine = fileErrorLines.compactMap { $0 }.first
        let fileWhere = fileLine.map { " (line \($0))" } ?? ""
        // With a single device, file-wide errors are that device's own errors.
        if fileFailed, states.count == 1 {
            for i in fileErrorIndices { problems[i].device = states[0].name }
            if !fileErrorIndices.isEmpty { states[0].named = true }
        }
        reports.reserveCapacity(states.count)
        for k in states.indices {
            // Each device's state is taken out and dropped as its report is made, so the
            // builder's bookkeeping and the reports never all exist at once.
            let state = states[k]
            states[k] = DeviceState(name: "")
            let name = state.name
            if fileFailed || state.failed {
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
            // Appending leaves up to half the array unused: keep only what the accounts need.
            var accounts = state.accounts
            if accounts.capacity - accounts.count > max(1, accounts.count / 8) {
                var exact: [LocalAccount] = []
                exact.reserveCapacity(accounts.count)
                exact.append(contentsOf: accounts)
                accounts = exact
            }
            if state.reportedAt == nil, !Timestamps.plausible.contains(modificationTime) {
                deviceProblems.append(InputProblem(source: source, device: name, message:
                    "the file's modification time (\(modificationTime)) is not a plausible date (outside the years 1 to 9999) "
                    + "and its content names no time: no report for device '\(name)'; touch the file or fix its time"))
                continue
            }
            reports.append(DeviceReport(device: name, platform: state.evidence.decide(),
                                        reportedAt: state.reportedAt ?? modificationTime,
                                        accounts: accounts, source: source))
        }
        return ReportsReadResult(reports: reports, problems: problems + deviceProblems, warnings: warnings)
    }
}

/// Long values seen lately, so equal values share one copy: a table indexed by a hash of
/// the value's bytes. A value with the bytes of the one in its slot is answered with that
/// one (the caller keeps it instead of its own copy); any other long value takes the slot.
/// Two values that land on one slot only share less, never wrongly: the bytes decide, so
/// sharing never changes a value (not even to a canonically equivalent one).
struct SharedValues {
    private var slots: [String] = []
    /// Slots (a power of two).
    static let size = 1024

    init() {}

    /// The held value with the bytes of `value` (nil when none is, or when `value` is nil or
    /// short enough to live inside its String); otherwise `value` is held from now on.
    mutating func held(_ value: String?) -> String? {
        guard let value, value.utf8.count > 15 else { return nil }
        let answer = value.utf8.withContiguousStorageIfAvailable { bytes -> String? in
            let i = slot(bytes)
            if SharedValues.same(slots[i], bytes) { return slots[i] }
            slots[i] = value
            return nil
        }
        return answer ?? nil
    }

    private mutating func slot(_ bytes: UnsafeBufferPointer<UInt8>) -> Int {
        if slots.isEmpty { slots = Array(repeating: "", count: SharedValues.size) }
        return Int(truncatingIfNeeded: SharedValues.hash(bytes) >> 32) & (SharedValues.size - 1)
    }

    /// `s` has these bytes (the same storage, mostly: then nothing is compared).
    private static func same(_ s: String, _ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard s.utf8.count == bytes.count else { return false }
        let equal = s.utf8.withContiguousStorageIfAvailable { held -> Bool in
            guard let a = held.baseAddress, let b = bytes.baseAddress else { return true }
            if a == b { return true }
            let n = bytes.count
            var i = 0
            while i + 8 <= n {
                if UnsafeRawPointer(a).loadUnaligned(fromByteOffset: i, as: UInt64.self)
                    != UnsafeRawPointer(b).loadUnaligned(fromByteOffset: i, as: UInt64.self) { return false }
                i += 8
            }
            while i < n {
                if a[i] != b[i] { return false }
                i += 1
            }
            return true
        }
        return equal ?? s.utf8.elementsEqual(bytes)
    }

    /// A quick hash of UTF-8 bytes (not for hostile keys: a collision only costs sharing).
    static func hash(_ b: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var h = UInt64(b.count) &* 0x9E37_79B9_7F4A_7C15
        guard let base = b.baseAddress else { return h }
        let raw = UnsafeRawPointer(base)
        var i = 0
        while i + 8 <= b.count {
            h = (h ^ raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)) &* 0xFF51_AFD7_ED55_8CCD
            h ^= h >> 29
            i += 8
        }
        while i < b.count {
            h = (h ^ UInt64(b[i])) &* 0x100_0000_01B3
            i += 1
        }
        return h ^ (h >> 31)
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

    mutating func observe(_ a: borrowing LocalAccount) {
        if let sid = a.sid, PlatformEvidence.bytes(of: sid, { PlatformEvidence.starts($0, "S-1-") }) { windows += 10 }
        if let type = a.accountType, type == "local" || type == "roaming" || type == "special" { windows += 10 }
        // Byte comparisons: the same answer as `==` and `hasPrefix` for these ASCII literals
        // (no string that is not these bytes is canonically equivalent to them).
        if let home = a.home {
            PlatformEvidence.bytes(of: home) { h in
                if PlatformEvidence.starts(h, "/Users/") || PlatformEvidence.equals(h, "/var/root") { macos += 10 }
                else if PlatformEvidence.starts(h, "/home/") { linux += 10 }
                else if PlatformEvidence.equals(h, "/root") { linux += 5 }
                else if PlatformEvidence.equals(h, "/nonexistent") { linux += 3 }
                else if PlatformEvidence.equals(h, "/var/empty") { macos += 2 }
                else if isWindowsPath(h) { windows += 10 }
            }
        }
        if let shell = a.shell {
            PlatformEvidence.bytes(of: shell) { s in
                if s.count >= 7, s[s.count - 1] | 0x20 == UInt8(ascii: "e"), PlatformEvidence.endsWithCmdExe(shell) { windows += 10 }
                else if PlatformEvidence.equals(s, "/usr/sbin/nologin") || PlatformEvidence.equals(s, "/sbin/nologin") { linux += 3 }
                else if PlatformEvidence.equals(s, "/bin/zsh") { macos += 1 }
            }
        }
        if a.name.utf8.first == UInt8(ascii: "_") { macos += 1 }
        if a.uidSigned == -2 { macos += 3 }
    }

    /// Runs `body` with the UTF-8 bytes of `s` (native strings lend their storage).
    private static func bytes<R>(of s: String, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        if let r = s.utf8.withContiguousStorageIfAvailable(body) { return r }
        return Array(s.utf8).withUnsafeBufferPointer(body)
    }

    private static func starts(_ b: UnsafeBufferPointer<UInt8>, _ prefix: StaticString) -> Bool {
        let n = prefix.utf8CodeUnitCount
        guard b.count >= n else { return false }
        let p = prefix.utf8Start
        for i in 0..<n where b[i] != p[i] { return false }
        return true
    }

    private static func equals(_ b: UnsafeBufferPointer<UInt8>, _ literal: StaticString) -> Bool {
        b.count == literal.utf8CodeUnitCount && starts(b, literal)
    }

    /// `s.lowercased().hasSuffix("cmd.exe")`, without making a lowercased copy when `s` is ASCII.
    static func endsWithCmdExe(_ s: String) -> Bool {
        let suffix: StaticString = "cmd.exe"
        let n = suffix.utf8CodeUnitCount
        let p = suffix.utf8Start
        let ascii = s.utf8.withContiguousStorageIfAvailable { b -> Bool? in
            guard b.allSatisfy({ $0 < 0x80 }) else { return nil }
            guard b.count >= n else { return false }
            let from = b.count - n
            for i in 0..<n where ((b[from + i] &- 0x41 < 26) ? b[from + i] | 0x20 : b[from + i]) != p[i] { return false }
            return true
        }
        if let answer = ascii ?? nil { return answer }
        return s.lowercased().hasSuffix("cmd.exe")
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
