// The state directory (docs/product.md section 6): one run at a time through a lock file, and
// an append-only trail of run records with the inverse of every write.
//
// Layout of `[state] dir` (created 0700; must belong to the running user or root and not
// be writable by group or others; `runs`, `lock` and the journal are reached relative to
// the folder's descriptor, never through a symlink, and only when a folder / regular file):
//   lock                                  flock()ed by the running apply; holds "pid=... since=..."
//   runs/<UTC time>-<pid>.ldif            what the run wrote, as LDIF, with a comment header
//   runs/<UTC time>-<pid>-undo.ldif       its inverse: `ldapmodify -f` restores the directory
//   runs.jsonl                            one JSON summary line per run, appended

import Foundation
import LDAPSyntax
import Synchronization
import TakeoverCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - Errors

package enum LockError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Another process holds the lock (its pid and start time when it wrote them).
    case held(pid: Int32?, since: String?)
    /// The lock file could not be opened or locked.
    case failed(path: String, message: String)
    /// The lock file is not safe to use (a symlink, a FIFO, another owner): exit 78.
    case insecure(path: String, message: String)

    package var description: String {
        switch self {
        case .held(let pid, let since):
            var out = "another takeover-bridge run holds the lock"
            if let pid { out += " (pid \(pid)" + (since.map { ", since \($0)" } ?? "") + ")" }
            return out + "; try again when it has finished"
        case .failed(let path, let message), .insecure(let path, let message):
            return "cannot lock \(path): \(message)"
        }
    }
}

/// A failure creating or writing the state directory.
package struct StateError: Error, Sendable, Hashable, CustomStringConvertible {
    package var path: String
    package var message: String
    /// The folder or a file in it is not safe to use (owner, mode, a symlink, not a
    /// regular file): a configuration error (78), not an I/O failure.
    package var isInsecure: Bool

    package init(path: String, message: String, isInsecure: Bool = false) {
        self.path = path
        self.message = message
        self.isInsecure = isInsecure
    }

    package var description: String { "\(path): \(message)" }
}

// MARK: - Run records

package struct RunRecord: Sendable, Hashable {
    /// A change that failed, described for people, with the server's error text.
    package struct Failure: Sendable, Hashable {
        package var change: String
        package var error: String
    }

    package var startedAt: UnixTime
    package var finishedAt: UnixTime
    package var host: String
    package var configPath: String
    /// Changes the server performed, in order. Only these are inverted in the undo file:
    /// pass a change here only when this run made it.
    package var applied: [Change]
    /// Changes that were already in place ("value exists" / "no such value"): listed as
    /// comments, never inverted (undoing them would remove what this run did not add).
    package var alreadyDone: [Change] = []
    package var failed: [Failure] = []
    /// "ok", "conflicts", "failed", ... (free text, one word preferred).
    package var outcome: String
}

/// Where `writeRunRecord` put a record.
package struct RunRecordPaths: Sendable, Hashable {
    package var record: String
    package var undo: String
}

// MARK: - The directory

package final class StateDirectory: Sendable {
    package let path: String
    /// The folder, opened once: every file in it is reached relative to this descriptor,
    /// so the folder checked is the folder written, even if its path is swapped later.
    private let fd: Int32

    /// Opens `path`, creating it (mode 0700, parents 0755) when missing. Refuses (with
    /// `isInsecure`) a folder not owned by the running user or root, or writable by group
    /// or others; a `runs` that is a symlink or not such a folder; a `lock` or
    /// `runs.jsonl` that is a symlink or not a regular file (docs/product.md section 7).
    package init(path: String) throws(StateError) {
        self.path = path
        try StateDirectory.makeDirectory(path, mode: 0o700)
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else {
            let text = errno == ENOTDIR ? "not a directory" : StateDirectory.errnoText()
            throw StateError(path: path, message: text, isInsecure: errno == ENOTDIR)
        }
        // Checked before `self.fd` is set: a refused folder is closed here, and deinit
        // (which runs only for a fully initialised object) never closes it again.
        try StateDirectory.checkOpened(fd, path: path, folder: true)
        do {
            try StateDirectory.checkEntry("runs", in: fd, path: path, folder: true)
            try StateDirectory.checkEntry("runs.jsonl", in: fd, path: path, folder: false)
            try StateDirectory.checkEntry("lock", in: fd, path: path, folder: false)
        } catch {
            close(fd)
            throw error
        }
        self.fd = fd
    }

    deinit {
        close(fd)
    }

    /// Why a file or folder of the state directory (stat'ed without following a symlink)
    /// is not safe, or nil.
    static func ownershipProblem(_ st: stat, folder: Bool) -> String? {
        let type = st.st_mode & S_IFMT
        if type == S_IFLNK { return "is a symbolic link; the state directory's files are never reached through one: remove it" }
        if folder && type != S_IFDIR { return "not a directory" }
        if !folder && type != S_IFREG { return "is not a regular file (a FIFO, device or folder would block or mislead the run): remove it" }
        let me = geteuid()
        if st.st_uid != 0 && st.st_uid != me {
            return "is owned by uid \(st.st_uid), neither root nor the user running the bridge (uid \(me)); "
                + "that user could change the run records or block every run: chown it to uid \(me)"
        }
        let mode = st.st_mode & 0o7777
        if mode & 0o022 != 0 {
            return "can be written by its group or others (mode \(FileSecurity.octal(mode))); "
                + "run chmod go-w on it (700 for a folder, 600 for a file)"
        }
        return nil
    }

    /// Checks `name` inside the folder `fd` (at `path`) when it exists.
    private static func checkEntry(_ name: String, in fd: Int32, path: String, folder: Bool) throws(StateError) {
        var st = stat()
        if fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 {
            if errno == ENOENT { return }
            throw StateError(path: path + "/" + name, message: StateDirectory.errnoText())
        }
        if let problem = StateDirectory.ownershipProblem(st, folder: folder) {
            throw StateError(path: path + "/" + name, message: problem, isInsecure: true)
        }
    }

    /// `openat` in the folder, never through a symlink, never blocking (a FIFO opened for
    /// writing without a reader fails at once; with one, it is refused as not regular);
    /// then checked like `checkEntry`. The caller closes the descriptor.
    private func openFile(_ name: String, in folder: Int32, folderPath: String, flags: Int32) throws(StateError) -> Int32 {
        let file = folderPath + "/" + name
        let fd = openat(folder, name, flags | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0o600)
        if fd < 0 {
            let code = errno
            let insecure = code == ELOOP || code == ENXIO
            let text = code == ELOOP ? "is a symbolic link; the state directory's files are never reached through one: remove it"
                : code == ENXIO ? "is a FIFO or socket, not a regular file: remove it" : String(cString: strerror(code))
            throw StateError(path: file, message: text, isInsecure: insecure)
        }
        try StateDirectory.checkOpened(fd, path: file, folder: false)
        return fd
    }

    /// `fstat` of what was just opened, judged by `ownershipProblem`; closes it when refused.
    static func checkOpened(_ fd: Int32, path: String, folder: Bool) throws(StateError) {
        var st = stat()
        if fstat(fd, &st) != 0 {
            let text = errnoText()
            close(fd)
            throw StateError(path: path, message: text)
        }
        if let problem = ownershipProblem(st, folder: folder) {
            close(fd)
            throw StateError(path: path, message: problem, isInsecure: true)
        }
    }

    /// `runs`, created 0700 when missing, opened as a folder without following a symlink.
    func openRunsFolder() throws(StateError) -> Int32 {
        if mkdirat(fd, "runs", 0o700) != 0 && errno != EEXIST {
            throw StateError(path: runsPath, message: "cannot create: " + StateDirectory.errnoText())
        }
        let runs = openat(fd, "runs", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        if runs < 0 {
            let code = errno
            if code == ELOOP || code == ENOTDIR {
                throw StateError(path: runsPath, message: code == ELOOP
                    ? "is a symbolic link; run records are never written through one: remove it" : "not a directory",
                                 isInsecure: true)
            }
            throw StateError(path: runsPath, message: String(cString: strerror(code)))
        }
        try StateDirectory.checkOpened(runs, path: runsPath, folder: true)
        return runs
    }

    package var lockPath: String { path + "/lock" }
    package var runsPath: String { path + "/runs" }
    package var journalPath: String { path + "/runs.jsonl" }

    /// Takes the run lock at once or fails with `.held`: `flock(LOCK_EX | LOCK_NB)` on
    /// `lock`. The kernel drops an flock when its holder dies, so a killed run never
    /// blocks the next one; the pid and time written into the file only feed the message.
    package func acquireLock(now: UnixTime = UnixTime(time(nil))) throws(LockError) -> RunLock {
        let fd: Int32
        do {
            fd = try openFile("lock", in: self.fd, folderPath: path, flags: O_RDWR | O_CREAT)
        } catch {
            throw error.isInsecure ? LockError.insecure(path: lockPath, message: error.message)
                : LockError.failed(path: lockPath, message: error.message)
        }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let code = errno
            if code == EWOULDBLOCK || code == EAGAIN {
                let (pid, since) = StateDirectory.readLockInfo(fd)
                close(fd)
                throw LockError.held(pid: pid, since: since)
            }
            close(fd)
            throw LockError.failed(path: lockPath, message: String(cString: strerror(code)))
        }
        // What a run that ended without releasing left: its lease token (issue 11).
        let leftover = StateDirectory.readLeaseRuns(fd)
        let info = "pid=\(getpid()) since=\(UTCTime.iso8601(now))"
        _ = ftruncate(fd, 0)
        _ = (info + "\n").withCString { pwrite(fd, $0, strlen($0), 0) }
        return RunLock(fd: fd, info: info, leftoverLeaseRuns: leftover)
    }

    /// Writes `runs/<time>-<pid>.ldif` (what was applied) and `...-undo.ldif` (its
    /// inverse), both 0600 and never overwriting, then appends a summary line to
    /// `runs.jsonl`. Returns the record's path.
    @discardableResult
    package func writeRunRecord(_ record: RunRecord) throws(StateError) -> String {
        try writeRunRecordFiles(record).record
    }

    /// Like `writeRunRecord`, returning both paths. With a `draft` that holds this run's
    /// applied changes already (`RunRecordDraft`), the record is that file, its header
    /// made true and the file named; otherwise (or when the draft cannot be used) it is
    /// written here.
    package func writeRunRecordFiles(_ record: RunRecord, draft: RunRecordDraft? = nil) throws(StateError) -> RunRecordPaths {
        // The journal first: a FIFO or symlink there is refused before anything is written.
        let journalFD = try openFile("runs.jsonl", in: fd, folderPath: path, flags: O_WRONLY | O_CREAT | O_APPEND)
        defer { close(journalFD) }
        let runs = try openRunsFolder()
        defer { close(runs) }
        var recordName = ""
        var recordFD: Int32 = -1
        var drafted: (fd: Int32, header: String)?
        var undoBody: String?
        if let draft {
            // The undo is rendered while the draft is finished and synced.
            let done = Mutex<(record: (fd: Int32, header: String)?, undo: String?)>((nil, nil))
            DispatchQueue.concurrentPerform(iterations: 2) { job in
                if job == 0 {
                    let completed = draft.complete(record, in: runs)
                    done.withLock { $0.record = completed }
                } else {
                    let undo = ChangeLDIF.renderInverse(record.applied)
                    done.withLock { $0.undo = undo }
                }
            }
            (drafted, undoBody) = done.withLock { $0 }
        }
        if let drafted, let draft {
            recordName = draft.recordName
            recordFD = drafted.fd
        }
        var attempt = 0
        while recordFD < 0 {
            recordName = RunRecordText.recordName(startedAt: record.startedAt, attempt: attempt)
            var existing = stat()
            if fstatat(runs, RunRecordText.undoName(recordName), &existing, AT_SYMLINK_NOFOLLOW) == 0 { attempt += 1; continue }
            // O_EXCL with O_CREAT never follows a symlink: a planted link is EEXIST.
            recordFD = openat(runs, recordName, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
            if recordFD < 0 {
                if errno == EEXIST && attempt < 1000 { attempt += 1; continue }
                throw StateError(path: "\(runsPath)/\(recordName)", message: StateDirectory.errnoText())
            }
        }
        let recordPath = "\(runsPath)/\(recordName)"
        let undoName = RunRecordText.undoName(recordName)
        let undoPath = "\(runsPath)/\(undoName)"
        let undoFD = openat(runs, undoName, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        if undoFD < 0 {
            let text = StateDirectory.errnoText()
            close(recordFD)
            throw StateError(path: undoPath, message: text)
        }

        // A drafted record's header is the one it was completed with (the same paths).
        let header = drafted?.header ?? RunRecordText.header(record, recordPath: recordPath, undoPath: undoPath)
        // Written piece by piece: the changes of a large first run are hundreds of megabytes,
        // never copied into one more string.
        let undoHeader = "# takeover-bridge undo for the run record \(RunRecordText.commentSafe(recordPath))\n"
            + header
            + "# Apply with: ldapmodify -f \(RunRecordText.commentSafe(undoPath)) (plus your bind options)\n\n"
        do {
            if drafted == nil {
                try StateDirectory.writeAll(recordFD, RunRecordText.recordStart + header + "\n", path: recordPath, sync: false)
                try StateDirectory.writeAll(recordFD, ChangeLDIF.report(record.applied), path: recordPath)
            }
            try StateDirectory.writeAll(undoFD, undoHeader, path: undoPath, sync: false)
            try StateDirectory.writeAll(undoFD, undoBody ?? ChangeLDIF.renderInverse(record.applied), path: undoPath)
        } catch {
            close(recordFD)
            close(undoFD)
            throw error
        }
        close(recordFD)
        close(undoFD)

        let line = RunRecordText.journalLine(record, recordPath: recordPath, undoPath: undoPath, runsFolder: runsPath)
        try StateDirectory.writeAll(journalFD, line, path: journalPath)
        return RunRecordPaths(record: recordPath, undo: undoPath)
    }

    // MARK: Helpers

    static func errnoText() -> String { String(cString: strerror(errno)) }

    /// Writes all of `text` (from the string's own storage) and, with `sync`, waits until it is on disk.
    static func writeAll(_ fd: Int32, _ text: String, path: String, sync: Bool = true) throws(StateError) {
        if !writeFully(fd, text) { throw StateError(path: path, message: errnoText()) }
        try syncIf(sync, fd, path: path)
    }

    /// A rendered report's parts, from their own storage (never joined into one String).
    static func writeAll(_ fd: Int32, _ report: RenderedReport, path: String, sync: Bool = true) throws(StateError) {
        if !writeFully(fd, report) { throw StateError(path: path, message: errnoText()) }
        try syncIf(sync, fd, path: path)
    }

    private static func syncIf(_ sync: Bool, _ fd: Int32, path: String) throws(StateError) {
        if sync, fsync(fd) != 0 && errno != EINVAL {
            throw StateError(path: path, message: errnoText())
        }
    }

    /// mkdir -p; the last component gets `mode`, created parents 0755.
    static func makeDirectory(_ path: String, mode: mode_t) throws(StateError) {
        var st = stat()
        if stat(path, &st) == 0 {
            if (st.st_mode & S_IFMT) != S_IFDIR { throw StateError(path: path, message: "exists and is not a directory") }
            return
        }
        let parent = FileSecurity.parentFolder(path)
        if parent != path && parent != "." && parent != "/" {
            try makeDirectory(parent, mode: 0o755)
        }
        if mkdir(path, mode) != 0 && errno != EEXIST {
            throw StateError(path: path, message: "cannot create: " + errnoText())
        }
        _ = chmod(path, mode)
    }

    /// The `lease=` tokens in the lock file (comma-separated): noted while a run may have
    /// its value in the directory lease, cleared once it is known gone. Found by the next
    /// run only when earlier ones died (or lost the server) before giving the lease back.
    static func readLeaseRuns(_ fd: Int32) -> [String] {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { return [] }
        for field in String(decoding: buffer[0..<n], as: UTF8.self).split(whereSeparator: { $0 == " " || $0 == "\n" })
        where field.hasPrefix("lease=") {
            return field.dropFirst(6).split(separator: ",").map(String.init)
                .filter { !$0.isEmpty && $0.count <= 64 && $0.allSatisfy(\.isHexDigit) }
        }
        return []
    }

    static func readLockInfo(_ fd: Int32) -> (Int32?, String?) {
        var buffer = [UInt8](repeating: 0, count: 256)
        let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { return (nil, nil) }
        let text = String(decoding: buffer[0..<n], as: UTF8.self)
        var pid: Int32? = nil
        var since: String? = nil
        for field in text.split(whereSeparator: { $0 == " " || $0 == "\n" }) {
            if field.hasPrefix("pid=") { pid = Int32(field.dropFirst(4)) }
            if field.hasPrefix("since=") { since = String(field.dropFirst(6)) }
        }
        return (pid, since)
    }
}

/// The held run lock. `release()` (or deinit) clears the pid note and closes the file,
/// which drops the flock.
package final class RunLock: @unchecked Sendable {
    // @unchecked: `fd` is only read or changed while holding `mutex`.
    private let mutex = NSLock()
    private var fd: Int32
    private let info: String
    /// The lease tokens earlier runs of this state folder left behind (they ended without
    /// knowing their value gone from the directory lease): this run may take such a lease
    /// over at once, as holding the lock proves those runs are over. Empty when none.
    package let leftoverLeaseRuns: [String]

    init(fd: Int32, info: String = "", leftoverLeaseRuns: [String] = []) {
        self.fd = fd
        self.info = info
        self.leftoverLeaseRuns = leftoverLeaseRuns
    }

    /// Notes (empty: clears) the tokens whose lease value may be in the directory, in the
    /// lock file, before the directory is asked and until they are known gone.
    package func noteLease(runs: [String]) {
        mutex.lock()
        defer { mutex.unlock() }
        guard fd >= 0 else { return }
        leaseRuns = runs
        let text = info + (runs.isEmpty ? "" : " lease=" + runs.joined(separator: ",")) + "\n"
        _ = ftruncate(fd, 0)
        _ = text.withCString { pwrite(fd, $0, strlen($0), 0) }
        _ = fsync(fd)
    }

    private var leaseRuns: [String] = []

    /// Empties the lock file, keeping only lease tokens not known given back.
    private func clearInfo() {
        _ = ftruncate(fd, 0)
        if !leaseRuns.isEmpty {
            _ = "lease=\(leaseRuns.joined(separator: ","))\n".withCString { pwrite(fd, $0, strlen($0), 0) }
        }
    }

    package var isHeld: Bool {
        mutex.lock()
        defer { mutex.unlock() }
        return fd >= 0
    }

    package func release() {
        mutex.lock()
        defer { mutex.unlock() }
        guard fd >= 0 else { return }
        clearInfo()
        Self.unlockAndClose(fd)
        fd = -1
    }

    deinit {
        if fd >= 0 {
            clearInfo()
            Self.unlockAndClose(fd)
        }
    }

    /// Unlocks before closing: `close` drops an flock only when no other descriptor refers
    /// to the same open file, and a process being spawned holds a copy of every descriptor
    /// until its exec closes the O_CLOEXEC ones (a test suite spawning the binary while a
    /// lock was given back saw it still held).
    private static func unlockAndClose(_ fd: Int32) {
        _ = flock(fd, LOCK_UN)
        close(fd)
    }
}

// MARK: - Text of run records

enum RunRecordText {
    static func commentSafe(_ s: String) -> String {
        var out = ""
        for scalar in s.unicodeScalars {
            if scalar.value < 0x20 || scalar.value == 0x7F {
                out += "\\x" + String(scalar.value, radix: 16, uppercase: true)
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// The first line of every run record.
    static let recordStart = "# takeover-bridge run record\n"

    /// `<time>-<pid>.ldif`, then `<time>-<pid>-1.ldif` and on while a name is taken.
    static func recordName(startedAt: UnixTime, attempt: Int) -> String {
        "\(UTCTime.compact(startedAt))-\(getpid())\(attempt == 0 ? "" : "-\(attempt)").ldif"
    }

    /// The undo file that goes with the record `recordName`.
    static func undoName(_ recordName: String) -> String {
        String(recordName.dropLast(".ldif".count)) + "-undo.ldif"
    }

    static func header(_ r: RunRecord, recordPath: String, undoPath: String) -> String {
        var out = ""
        out += "# started:  \(UTCTime.iso8601(r.startedAt))\n"
        out += "# finished: \(UTCTime.iso8601(r.finishedAt))\n"
        out += "# host:     \(commentSafe(r.host))\n"
        out += "# config:   \(commentSafe(r.configPath))\n"
        out += "# pid:      \(getpid())\n"
        out += "# outcome:  \(commentSafe(r.outcome))\n"
        out += "# applied:  \(r.applied.count) changes in \(ChangeLDIF.operations(r.applied).count) operations\n"
        out += "# already in place: \(r.alreadyDone.count)\n"
        out += "# failed:   \(r.failed.count)\n"
        out += "# record:   \(commentSafe(recordPath))\n"
        out += "# undo:     \(commentSafe(undoPath))\n"
        for change in r.alreadyDone {
            out += "# already in place: \(change.op.rawValue) \(commentSafe(change.dn)) \(commentSafe(change.values.joined(separator: ", ")))\n"
        }
        for failure in r.failed {
            out += "# failed: \(commentSafe(failure.change)): \(commentSafe(failure.error))\n"
        }
        return out
    }

    static func journalLine(_ r: RunRecord, recordPath: String, undoPath: String, runsFolder: String) -> String {
        func rel(_ p: String) -> String {
            p.hasPrefix(runsFolder + "/") ? "runs/" + p.dropFirst(runsFolder.count + 1) : p
        }
        var w = JSONWriter(capacity: 512)
        w.raw("{\"startedAt\":")
        w.string(UTCTime.iso8601(r.startedAt))
        w.raw(",\"finishedAt\":")
        w.string(UTCTime.iso8601(r.finishedAt))
        w.raw(",\"host\":")
        w.string(r.host)
        w.raw(",\"config\":")
        w.string(r.configPath)
        w.raw(",\"pid\":\(getpid()),\"outcome\":")
        w.string(r.outcome)
        w.raw(",\"applied\":\(r.applied.count),\"alreadyDone\":\(r.alreadyDone.count),\"failed\":\(r.failed.count)")
        w.raw(",\"record\":")
        w.string(rel(recordPath))
        w.raw(",\"undo\":")
        w.string(rel(undoPath))
        w.raw("}\n")
        return w.result()
    }
}
