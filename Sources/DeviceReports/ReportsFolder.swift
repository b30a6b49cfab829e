// The reports folder: list, read and parse every report file, in parallel.

import Dispatch
import TakeoverCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

extension ReportsFolder {
    /// Reads every regular file in `path` (not recursive; skips hidden files and README*),
    /// in parallel; the result is sorted and deterministic.
    public static func read(path: String, limits: ReportLimits = ReportLimits()) -> ReportsReadResult {
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
            !name.hasPrefix(".") && !name.lowercased().hasPrefix("readme")
        }.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }

        let files = Array(candidates.prefix(max(0, limits.maxFiles)))
        for name in candidates.dropFirst(files.count) {
            result.problems.append(InputProblem(source: folderLabel + "/" + name, device: ReportParser.deviceName(fromFileName: name),
                message: "not read: the reports folder holds more than \(limits.maxFiles) files (ReportLimits.maxFiles)"))
        }

        let base = path.hasSuffix("/") ? path : path + "/"
        let slots = Slots(count: files.count)
        // Each iteration reads and parses one file and writes only its own slot.
        DispatchQueue.concurrentPerform(iterations: files.count) { i in
            let name = files[i]
            slots.set(i, readOne(fullPath: base + name, name: name, source: folderLabel + "/" + name, limits: limits))
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

    /// The names in a directory (opendir/readdir: raw bytes, so non-UTF-8 names are seen).
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
            if bytes == [UInt8(ascii: ".")] || bytes == [UInt8(ascii: "."), UInt8(ascii: ".")] { continue }
            if let name = String(validating: bytes, as: UTF8.self) {
                listing.names.append(name)
            } else if bytes.first != UInt8(ascii: ".") {
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

    /// Reads one file (nil when it is not a regular file) and parses it.
    static func readOne(fullPath: String, name: String, source: String, limits: ReportLimits) -> ReportsReadResult? {
        let device = ReportParser.deviceName(fromFileName: name)
        func failure(_ message: String) -> ReportsReadResult {
            ReportsReadResult(problems: [InputProblem(source: source, device: device, message: message)])
        }
        // O_NONBLOCK: a FIFO dropped in the folder must not hang the run (regular files ignore it).
        let fd = open(fullPath, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        if fd < 0 {
            let e = errno
            if e == ENOENT {
                return ReportsReadResult(warnings: [InputProblem(source: source, device: device,
                    message: "file disappeared before it could be read")])
            }
            return failure("cannot open: \(describe(errno: e) ?? "error \(e)")")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return failure("cannot stat: \(describe(errno: errno) ?? "unknown error")") }
        guard (st.st_mode & S_IFMT) == S_IFREG else { return nil }
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
        var readError: Int32 = 0
        var bytes = [UInt8](unsafeUninitializedCapacity: size + 1) { buf, initialized in
            initialized = readFully(fd, buf, error: &readError)
        }
        while readError == 0, bytes.count > size, bytes.count <= limits.maxFileBytes {
            // It grew: read on in chunks.
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
        return ReportParser.parse(bytes: bytes, fileName: name, source: source, modificationTime: mtime, limits: limits)
    }

    private static func describe(errno e: Int32?) -> String? {
        guard let e, let c = strerror(e) else { return nil }
        return String(cString: c)
    }

}

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
