// The run record of an apply, written while the directory answers the writes (issue 13:
// rendering and copying a large first run's record after the last write took a quarter
// of a second at 100,000 users, and three at a million).

import Foundation
import TakeoverCore
internal import CHardening

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A run record drafted during the writes: an unnamed file (`O_TMPFILE`) in `runs/`
/// holding the header the record would have if every planned change were applied, then
/// each applied change as the applier reports it, rendered as `ChangeLDIF.render` would.
///
/// When the run ends, `complete` writes the true header over the assumed one if it has
/// the same length (the usual ending: everything applied, nothing already in place or
/// refused; only the finish time differs), syncs the file and gives it the record's name
/// (`linkat`, which never replaces a file or follows a link planted there). Any other
/// ending, and any error on the way, leaves the record to `writeRunRecordFiles` to write
/// the ordinary way. A run that dies leaves nothing behind: the file has no name.
package final class RunRecordDraft: @unchecked Sendable {
    // `stream`, `failed` and `finished` are touched only on `queue`; `fd` is given away
    // (or closed) once, by `complete` or deinit, after the queue is done with it.
    package let recordName: String
    private let recordPath: String
    private let undoPath: String
    private var fd: Int32
    private let headerLength: Int
    private let queue = DispatchQueue(label: "takeover-bridge.run-record")
    private var stream = ChangeLDIF.Stream()
    private var failed = false
    private var finished = false
    /// Whether `complete` made this draft the record (tests).
    package private(set) var becameRecord = false

    /// Starts the draft of `expected` (the record as it reads when every planned change is
    /// applied) in `runsFolder`; nil where it cannot be (no `O_TMPFILE`, a full disk, no
    /// free name): the record is then written at the end as before.
    init?(expected: RunRecord, runsFolder: Int32, runsPath: String) {
        var attempt = 0
        var name = ""
        while true {
            name = RunRecordText.recordName(startedAt: expected.startedAt, attempt: attempt)
            var existing = stat()
            if fstatat(runsFolder, name, &existing, AT_SYMLINK_NOFOLLOW) != 0 && errno == ENOENT,
               fstatat(runsFolder, RunRecordText.undoName(name), &existing, AT_SYMLINK_NOFOLLOW) != 0 && errno == ENOENT {
                break
            }
            attempt += 1
            if attempt > 1000 { return nil }
        }
        let fd = CHardening_open_unnamed_file(runsFolder)
        guard fd >= 0 else { return nil }
        recordName = name
        recordPath = "\(runsPath)/\(name)"
        undoPath = "\(runsPath)/\(RunRecordText.undoName(name))"
        let header = RunRecordText.header(expected, recordPath: recordPath, undoPath: undoPath)
        headerLength = header.utf8.count
        self.fd = fd
        if !writeFully(fd, RunRecordText.recordStart + header + "\n") {
            close(fd)
            return nil
        }
    }

    deinit {
        if fd >= 0 { close(fd) }
    }

    /// Renders `changes` (the next ones the server performed, in order) and appends them,
    /// on the draft's own queue: the caller goes on writing.
    func append(_ changes: [Change]) {
        queue.async { [self] in
            guard !failed, !finished else { return }
            var out: [UInt8] = []
            out.reserveCapacity(Change.estimatedBytes(changes))
            stream.add(changes, to: &out)
            if !out.isEmpty && !out.withUnsafeBytes({ writeFully(fd, $0) }) { failed = true }
        }
    }

    /// The record's descriptor, complete, synced and named `recordName` in `runsFolder`
    /// (the caller closes it), and the header written into it (the undo file repeats it);
    /// nil when this draft cannot be the record of `record`: the caller writes it the
    /// ordinary way (and this draft's file, unnamed, is gone).
    func complete(_ record: RunRecord, in runsFolder: Int32) -> (fd: Int32, header: String)? {
        let drafted: Bool = queue.sync {
            guard !failed, !finished else { return false }
            finished = true
            var out: [UInt8] = []
            stream.finish(to: &out)
            if !out.isEmpty && !out.withUnsafeBytes({ writeFully(fd, $0) }) { return false }
            return stream.changeCount == record.applied.count
        }
        let header = RunRecordText.header(record, recordPath: recordPath, undoPath: undoPath)
        guard drafted, fd >= 0, header.utf8.count == headerLength else { return discard() }
        let offset = RunRecordText.recordStart.utf8.count
        var text = header
        let wrote = text.withUTF8 { bytes in
            pwrite(fd, bytes.baseAddress, bytes.count, off_t(offset)) == bytes.count
        }
        guard wrote, fsync(fd) == 0 || errno == EINVAL,
              linkat(AT_FDCWD, "/proc/self/fd/\(fd)", runsFolder, recordName, AT_SYMLINK_FOLLOW) == 0 else {
            return discard()
        }
        let named = fd
        fd = -1
        becameRecord = true
        return (named, header)
    }

    private func discard() -> (fd: Int32, header: String)? {
        if fd >= 0 { close(fd) }
        fd = -1
        return nil
    }
}

extension StateDirectory {
    /// Starts the draft of a run record (`RunRecordDraft`) for a run expected to end as
    /// `expected`; nil when it cannot be started (the record is then written at the end).
    package func draftRunRecord(_ expected: RunRecord) -> RunRecordDraft? {
        guard let runs = try? openRunsFolder() else { return nil }
        defer { close(runs) }
        return RunRecordDraft(expected: expected, runsFolder: runs, runsPath: runsPath)
    }
}
