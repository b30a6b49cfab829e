// The reports folder: list, read and parse every report file, in parallel.

import Dispatch
import Synchronization
import TakeoverCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

extension ReportsFolder {
    /// Reads every regular file in `path` (and every symbolic link to one), in parallel; not
    /// recursive; skips README* and, silently, the names of files still being written
    /// (`isInProgress`). Folders, FIFOs, sockets and devices are skipped with a warning naming
    /// them. The result is sorted and deterministic.
    ///
    /// Volume: the sizes of the files to read are added up before any is read; more than
    /// `limits.maxTotalBytes` (or a file growing past it while read) sets `fatal` and returns
    /// nothing else.
    ///
    /// With a `gate`, one worker starts at once and the others when the gate opens (or when
    /// the first has taken every file): the caller holds them back while something else
    /// needs the processors more.
    public static func read(path: String, limits: ReportLimits = ReportLimits(), gate: WorkerGate? = nil)
        -> ReportsReadResult {
        let folderLabel = label(ofFolder: path)
        var result = ReportsReadResult()
        let listing = list(path)
        guard case .success(let entries) = listing else {
            if case .failure(let message) = listing {
                result.problems.append(InputProblem(source: path, message: "cannot list the reports folder: \(message)"))
            }
            return result
        }
        for bad in entries.badNames {
            result.problems.append(InputProblem(source: folderLabel + "/" + bad, message:
                "file name is not valid UTF-8: not read (rename the file; its device cannot be named)"))
        }
        let candidates = entries.names.filter { name in
            !name.lowercased().hasPrefix("readme")
        }.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }

        let files = Array(candidates.prefix(max(0, limits.maxFiles)))
        for name in candidates.dropFirst(files.count) {
            result.problems.append(InputProblem(source: folderLabel + "/" + name, device: ReportParser.deviceName(fromFileName: name),
                message: "not read: the reports folder holds more than \(limits.maxFiles) files (ReportLimits.maxFiles)"))
        }

        let base = path.hasSuffix("/") ? path : path + "/"
        // Files are looked up relative to the folder, opened once (each lookup then walks
        // one path component, not the whole path); by full path should that open fail.
        let folder = FolderHandle(base: base)
        defer { folder.close() }
        if let over = volumeCheck(base: base, folderLabel: folderLabel, files: files, limits: limits, folder: folder) {
            return ReportsReadResult(fatal: over)
        }
        let budget = ReadBudget(limit: limits.maxTotalBytes)
        let slots = Slots(count: files.count)
        // One worker per processor; each takes the next unread file until none is left,
        // reads and parses it with its own scratch memory, and writes only that file's slot.
        let next = FileCounter()
        // The files are asked of the disk ahead of the parsers (a folder read once an hour is
        // not in the page cache, or has been paged out since): it reads while they parse.
        let ahead = ReadAhead(folder: folder, files: files, taken: next)
        defer { ahead.stop() }  // before the folder is closed: it opens files inside it
        let workers = max(1, min(files.count, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))))
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            if worker > 0 { gate?.wait() }
            let scratch = ParseScratch()
            while true {
                let i = next.take()
                guard i < files.count else { break }
                let name = files[i]
                slots.set(i, readOne(fullPath: base + name, name: name, source: folderLabel + "/" + name, limits: limits,
                                     budget: budget, scratch: scratch, folder: folder))
            }
            // Nothing is left to take: whoever still waits may go (and find nothing).
            gate?.open()
        }
        if budget.exceeded {
            return ReportsReadResult(fatal: "[devices] reports: the files in \(path) grew past [devices] max_reports_size "
                + "(\(byteCount(limits.maxTotalBytes))) while they were read: nothing used; run again once the agents "
                + "have finished writing, or raise max_reports_size")
        }
        for i in 0..<files.count {
            guard let r = slots.get(i) else { continue }
            result.reports.append(contentsOf: r.reports)
            result.problems.append(contentsOf: r.problems)
            result.warnings.append(contentsOf: r.warnings)
        }
        result.reports.sort { a, b in
            a.device != b.device ? a.device.utf8.lexicographicallyPrecedes(b.device.utf8)
                : a.source.utf8.lexicographicallyPrecedes(b.source.utf8)
        }
        return result
    }

    private struct Listing {
        var names: [String] = []
        /// Names that are not UTF-8, shown with replacement characters.
        var badNames: [String] = []
    }

    private enum ListingResult {
        case success(Listing)
        case failure(String)
    }

    /// A file an agent or rsync is still writing, or a backup: a name beginning with `.`
    /// (rsync's `.name.XXXXXX`, hidden files) or ending with `.tmp`, `.part` (any case) or `~`.
    /// Such files are never read, so a report is only ever seen once it has been renamed into
    /// place whole (docs/product.md section 9).
    public static func isInProgress<C: Collection>(_ name: C) -> Bool where C.Element == UInt8 {
        guard let first = name.first else { return false }
        if first == UInt8(ascii: ".") { return true }
        let bytes = Array(name.suffix(5))
        if bytes.last == UInt8(ascii: "~") { return true }
        func endsWith(_ suffix: String) -> Bool {
            let s = Array(suffix.utf8)
            guard bytes.count >= s.count else { return false }
            return zip(bytes.suffix(s.count), s).allSatisfy { (($0 &- 0x41 < 26) ? $0 | 0x20 : $0) == $1 }
        }
        return endsWith(".tmp") || endsWith(".part")
    }

    /// The names in a directory (opendir/readdir: raw bytes, so non-UTF-8 names are seen),
    /// without `.`, `..` and the names of files still being written (`isInProgress`).
    private static func list(_ path: String) -> ListingResult {
        guard let dir = opendir(path) else {
            return .failure(describe(errno: errno) ?? "not a readable directory")
        }
        defer { closedir(dir) }
        var listing = Listing()
        while let entry = readdir(dir) {
            let bytes: [UInt8] = withUnsafeBytes(of: &entry.pointee.d_name) { raw in
                Array(raw.prefix { $0 != 0 })
            }
            if isInProgress(bytes) { continue }   // also `.` and `..`
            if let name = String(validating: bytes, as: UTF8.self) {
                listing.names.append(name)
            } else {
                listing.badNames.append(String(decoding: bytes, as: UTF8.self))
            }
        }
        listing.badNames.sort()
        return .success(listing)
    }

    /// "reports" for "/var/lib/takeover-bridge/reports/": messages name files as "reports/mbp.json".
    static func label(ofFolder path: String) -> String {
        let parts = path.split(separator: "/", omittingEmptySubsequences: true)
        return parts.last.map(String.init) ?? path
    }

    /// What kind of file a mode is, for messages about files that are not read.
    static func kindName(_ mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFDIR: return "a folder"
        case S_IFIFO: return "a FIFO"
        case S_IFSOCK: return "a socket"
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        case S_IFLNK: return "a symbolic link"
        default: return "not a regular file"
        }
    }

    /// The message when the files to read add up to more than `limits.maxTotalBytes`, from
    /// their sizes (stat, following symbolic links; only regular files count), before any
    /// byte is read; nil when they fit.
    static func volumeCheck(base: String, folderLabel: String, files: [String], limits: ReportLimits,
                            folder: FolderHandle? = nil) -> String? {
        let folder = folder ?? FolderHandle(fullPathsUnder: base)
        var total = 0
        var largest: (name: String, size: Int)?
        for name in files {
            var st = stat()
            guard fstatat(folder.fd, folder.path(name), &st, 0) == 0, (st.st_mode & S_IFMT) == S_IFREG else { continue }
            let size = Int(st.st_size)
            total = total > Int.max - size ? Int.max : total + size
            if largest == nil || size > largest!.size { largest = (name, size) }
        }
        guard total > limits.maxTotalBytes, let largest else { return nil }
        return "[devices] reports: the \(files.count) report files in \(base.dropLast()) hold \(byteCount(total)), more than "
            + "[devices] max_reports_size (\(byteCount(limits.maxTotalBytes))); nothing was read (the largest file is "
            + "\(folderLabel)/\(largest.name), \(byteCount(largest.size))). Remove old or unexpected reports, "
            + "or raise max_reports_size if this volume is expected"
    }

    /// "512 MiB (536870912 bytes)".
    static func byteCount(_ n: Int) -> String {
        let units: [(Int, String)] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")]
        for (size, unit) in units where n >= size {
            let tenths = (n * 10 + size / 2) / size
            let whole = tenths % 10 == 0 ? "\(tenths / 10)" : "\(tenths / 10).\(tenths % 10)"
            return "\(whole) \(unit) (\(n) bytes)"
        }
        return n == 1 ? "1 byte" : "\(n) bytes"
    }

    /// Reads one file and parses it. Anything but a regular file (or a symbolic link to one)
    /// is skipped with a warning naming it; a FIFO or device is never opened. Every byte
    /// buffer is taken from `budget` before it is allocated; when the budget is spent the
    /// file is not read (the caller then stops the whole read).
    static func readOne(fullPath: String, name: String, source: String, limits: ReportLimits,
                        budget: ReadBudget = ReadBudget(limit: Int.max), scratch: ParseScratch? = nil,
                        folder: FolderHandle? = nil) -> ReportsReadResult? {
        // `relative`: the name inside `folder` when the folder is open, else the full path.
        let at = folder?.fd ?? AT_FDCWD
        let relative = folder.map { $0.path(name) } ?? fullPath
        let device = ReportParser.deviceName(fromFileName: name)
        func failure(_ message: String) -> ReportsReadResult {
            ReportsReadResult(problems: [InputProblem(source: source, device: device, message: message)])
        }
        func skipped(_ mode: mode_t, link: Bool) -> ReportsReadResult {
            let kind = kindName(mode)
            let message: String
            if (mode & S_IFMT) == S_IFDIR {
                message = (link ? "a symbolic link to a folder" : "a folder")
                    + ": skipped (the reports folder is not read recursively)"
            } else {
                message = "not a regular file (" + (link ? "a symbolic link to " : "")
                    + (kind == "not a regular file" ? "something else" : kind) + "): skipped"
            }
            return ReportsReadResult(warnings: [InputProblem(source: source, device: device, message: message)])
        }
        func disappeared() -> ReportsReadResult {
            ReportsReadResult(warnings: [InputProblem(source: source, device: device,
                message: "file disappeared before it could be read")])
        }
        // Look before opening: opening a FIFO or a device could block or have effects.
        var linkStat = stat()
        guard fstatat(at, relative, &linkStat, AT_SYMLINK_NOFOLLOW) == 0 else {
            let e = errno
            return e == ENOENT ? disappeared() : failure("cannot stat: \(describe(errno: e) ?? "error \(e)")")
        }
        let isLink = (linkStat.st_mode & S_IFMT) == S_IFLNK
        if isLink {
            var target = stat()
            guard fstatat(at, relative, &target, 0) == 0 else {
                let e = errno
                if e == ENOENT || e == ELOOP {
                    return ReportsReadResult(warnings: [InputProblem(source: source, device: device,
                        message: "a symbolic link to nothing (\(describe(errno: e) ?? "error \(e)")): skipped")])
                }
                return failure("cannot stat: \(describe(errno: e) ?? "error \(e)")")
            }
            guard (target.st_mode & S_IFMT) == S_IFREG else { return skipped(target.st_mode, link: true) }
        } else if (linkStat.st_mode & S_IFMT) != S_IFREG {
            return skipped(linkStat.st_mode, link: false)
        }
        // O_NONBLOCK: should the file be swapped for a FIFO after the check, opening it must not
        // hang the run (regular files ignore the flag); fstat below catches the swap.
        let fd = openat(at, relative, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        if fd < 0 {
            let e = errno
            if e == ENOENT { return disappeared() }
            return failure("cannot open: \(describe(errno: e) ?? "error \(e)")")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return failure("cannot stat: \(describe(errno: errno) ?? "unknown error")") }
        guard (st.st_mode & S_IFMT) == S_IFREG else { return skipped(st.st_mode, link: isLink) }
        #if canImport(Darwin)
        let mtime = UnixTime(st.st_mtimespec.tv_sec)
        #else
        let mtime = UnixTime(st.st_mtim.tv_sec)
        #endif
        let size = Int(st.st_size)
        if size > limits.maxFileBytes {
            return failure(ReportParser.tooLarge(size, limits: limits))
        }
        // Read to the end (the file may have grown since fstat), never past the cap.
        guard budget.take(size) else { return nil }
        var readError: Int32 = 0
        var bytes = [UInt8](unsafeUninitializedCapacity: size + 1) { buf, initialized in
            initialized = readFully(fd, buf, error: &readError)
        }
        while readError == 0, bytes.count > size, bytes.count <= limits.maxFileBytes {
            // It grew: read on in chunks.
            guard budget.take(1 << 16) else { return nil }
            let chunk = [UInt8](unsafeUninitializedCapacity: 1 << 16) { buf, initialized in
                initialized = readFully(fd, buf, error: &readError)
            }
            if chunk.isEmpty { break }
            bytes += chunk
        }
        if readError != 0 {
            return failure("cannot read: \(describe(errno: readError) ?? "unknown error")")
        }
        if bytes.count > limits.maxFileBytes {
            return failure(ReportParser.tooLarge(bytes.count, limits: limits))
        }
        return ReportParser.parse(bytes: bytes, fileName: name, source: source, modificationTime: mtime, limits: limits,
                                  scratch: scratch)
    }

    private static func describe(errno e: Int32?) -> String? {
        guard let e, let c = strerror(e) else { return nil }
        return String(cString: c)
    }

}

/// The reports folder opened once, so each file is looked up by its name inside it; when
/// the folder cannot be opened, files are looked up by full path (`fd` is AT_FDCWD).
struct FolderHandle: Sendable {
    let fd: Int32
    private let base: String
    private let owned: Bool

    /// Opens `base` (a folder path ending with "/").
    init(base: String) {
        let opened = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        fd = opened >= 0 ? opened : AT_FDCWD
        owned = opened >= 0
        self.base = base
    }

    /// Looks files up by full path, opening nothing.
    init(fullPathsUnder base: String) {
        fd = AT_FDCWD
        owned = false
        self.base = base
    }

    /// What to pass with `fd` for the file `name` of the folder.
    func path(_ name: String) -> String { owned ? name : base + name }

    func close() {
        if owned { _ = closeFile(fd) }
    }
}

/// close(2). (A free function: inside FolderHandle, `close` names `FolderHandle.close`.)
private func closeFile(_ fd: Int32) -> Int32 { close(fd) }

/// Fills `buf` with read(2) until it is full or the file ends; returns the bytes read.
/// (A free function: inside ReportsFolder, `read` names `ReportsFolder.read`.)
private func readFully(_ fd: Int32, _ buf: UnsafeMutableBufferPointer<UInt8>, error: inout Int32) -> Int {
    guard let base = buf.baseAddress else { return 0 }
    var filled = 0
    while filled < buf.count {
        let n = read(fd, base + filled, buf.count - filled)
        if n < 0 {
            if errno == EINTR { continue }
            error = errno
            break
        }
        if n == 0 { break }
        filled += n
    }
    return filled
}

/// The bytes the whole folder may still allocate for file contents, shared by the parallel
/// reads. Once a take fails, `exceeded` stays true and every later take fails.
final class ReadBudget: Sendable {
    private let used = Atomic<Int>(0)
    private let overflowed = Atomic<Bool>(false)
    let limit: Int

    init(limit: Int) { self.limit = limit }

    /// Takes `n` bytes; false (and nothing taken) when that would pass the limit.
    func take(_ n: Int) -> Bool {
        if overflowed.load(ordering: .relaxed) { return false }
        var current = used.load(ordering: .relaxed)
        while true {
            guard n <= limit, current <= limit - n else {
                overflowed.store(true, ordering: .relaxed)
                return false
            }
            let (exchanged, original) = used.compareExchange(expected: current, desired: current + n, ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
    }

    var exceeded: Bool { overflowed.load(ordering: .relaxed) }
}

/// Hands out file indices 0, 1, 2, ... to the parallel workers, each once.
/// Holds back all but the first of `ReportsFolder.read`'s workers until `open()`. Opening
/// is once and for all; a gate is for one read.
public final class WorkerGate: Sendable {
    private let opened = Atomic<Bool>(false)
    private let released = DispatchSemaphore(value: 0)
    /// More than any number of workers (one per processor) waits at once.
    private static let waiters = 4096

    public init() {}

    public func open() {
        guard !opened.exchange(true, ordering: .acquiringAndReleasing) else { return }
        for _ in 0..<Self.waiters { released.signal() }
    }

    func wait() {
        guard !opened.load(ordering: .acquiring) else { return }
        released.wait()
    }
}

final class FileCounter: Sendable {
    private let value = Atomic<Int>(0)

    func take() -> Int { value.add(1, ordering: .relaxed).oldValue }

    /// How many have been taken.
    var taken: Int { value.load(ordering: .relaxed) }
}

/// Tells the kernel the folder's files will be read (`posix_fadvise` WILLNEED), in order, on
/// a thread of its own, skipping those a parser has already taken: files that are not in
/// the page cache are then read from disk while the parsers work, instead of one at a time
/// as each parser reaches one (measured on this project's machines: 0.3 to 0.5 s of waiting
/// per 100,000-user run once the folder had not been read for a minute). Only regular files
/// are opened, looked at first as `readOne` does (opening a FIFO or a device could block or
/// have effects) and never through a symbolic link; nothing is read, and any failure just
/// leaves that file to its parser. A thread of its own, not a dispatch queue's: `stop` waits
/// for it, and a queue whose threads are all busy (the parsers) might never start it.
final class ReadAhead: Sendable {
    private final class Job: Sendable {
        let folder: FolderHandle
        let files: [String]
        let taken: FileCounter
        let stopped = Atomic<Bool>(false)

        init(folder: FolderHandle, files: [String], taken: FileCounter) {
            self.folder = folder
            self.files = files
            self.taken = taken
        }

        func run() {
            for i in files.indices {
                if stopped.load(ordering: .relaxed) { return }
                if taken.taken > i { continue }
                ReadAhead.advise(folder, files[i])
            }
        }
    }

    private let job: Job
    #if canImport(Glibc) || canImport(Musl)
    private let thread: pthread_t?
    #endif

    init(folder: FolderHandle, files: [String], taken: FileCounter) {
        let job = Job(folder: folder, files: files, taken: taken)
        self.job = job
        #if canImport(Glibc) || canImport(Musl)
        var started = pthread_t()
        let context = Unmanaged.passRetained(job).toOpaque()
        if pthread_create(&started, nil, { raw in
            guard let raw else { return nil }
            Unmanaged<Job>.fromOpaque(raw).takeRetainedValue().run()
            return nil
        }, context) == 0 {
            thread = started
        } else {
            Unmanaged<Job>.fromOpaque(context).release()  // no read-ahead; the parsers read as before
            thread = nil
        }
        #endif
    }

    /// Stops and waits for the thread (the folder's descriptor must outlive it). Once only.
    func stop() {
        job.stopped.store(true, ordering: .relaxed)
        #if canImport(Glibc) || canImport(Musl)
        if let thread { pthread_join(thread, nil) }
        #endif
    }

    static func advise(_ folder: FolderHandle, _ name: String) {
        let path = folder.path(name)
        var st = stat()
        guard fstatat(folder.fd, path, &st, AT_SYMLINK_NOFOLLOW) == 0, (st.st_mode & S_IFMT) == S_IFREG,
              st.st_size > 0 else { return }
        let fd = openat(folder.fd, path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY | O_NOFOLLOW)
        guard fd >= 0 else { return }
        #if canImport(Glibc) || canImport(Musl)
        _ = posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED)
        #endif
        _ = closeFile(fd)
    }
}

/// Per-file results written from `concurrentPerform`.
///
/// Safety of `@unchecked Sendable`: every index is written by exactly one iteration, no
/// index is read before `concurrentPerform` returns (which happens-after every iteration),
/// and the storage is allocated before and freed after the parallel section.
private final class Slots: @unchecked Sendable {
    private let storage: UnsafeMutablePointer<ReportsReadResult?>
    private let count: Int

    init(count: Int) {
        self.count = count
        storage = .allocate(capacity: max(count, 1))
        storage.initialize(repeating: nil, count: max(count, 1))
    }

    deinit {
        storage.deinitialize(count: max(count, 1))
        storage.deallocate()
    }

    func set(_ i: Int, _ value: ReportsReadResult?) { storage[i] = value }
    func get(_ i: Int) -> ReportsReadResult? { storage[i] }
}
