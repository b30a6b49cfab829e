// The reports folder: list, read and parse every report file, in parallel.

import Dispatch
import Foundation
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
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: path)
        } catch {
            return ReportsReadResult(problems: [InputProblem(source: path, message:
                "cannot list the reports folder: \(describe(errno: errnoOf(error)) ?? "not a readable directory")")])
        }
        let candidates = names.filter { name in
            !name.hasPrefix(".") && !name.lowercased().hasPrefix("readme")
        }.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }

        var result = ReportsReadResult()
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
        let fd = open(fullPath, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            let e = errno
            // A file removed between listing and reading is simply gone.
            if e == ENOENT { return nil }
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
        var bytes = [UInt8](repeating: 0, count: size + 1)
        var filled = 0
        while true {
            if filled == bytes.count {
                if bytes.count > limits.maxFileBytes { break }
                bytes.append(contentsOf: repeatElement(0, count: min(max(bytes.count, 4096), limits.maxFileBytes + 1 - bytes.count)))
            }
            let n = bytes.withUnsafeMutableBytes { raw -> Int in
                guard let p = raw.baseAddress else { return 0 }
                return posixRead(fd, p + filled, raw.count - filled)
            }
            if n < 0 {
                if errno == EINTR { continue }
                return failure("cannot read: \(describe(errno: errno) ?? "unknown error")")
            }
            if n == 0 { break }
            filled += n
        }
        if filled > limits.maxFileBytes {
            return failure(ReportParser.tooLarge(filled, limits: limits))
        }
        bytes.removeSubrange(filled...)
        return ReportParser.parse(bytes: bytes, fileName: name, source: source, modificationTime: mtime, limits: limits)
    }

    private static func describe(errno e: Int32?) -> String? {
        guard let e, let c = strerror(e) else { return nil }
        return String(cString: c)
    }

    private static func errnoOf(_ error: Error) -> Int32? {
        let ns = error as NSError
        if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            return Int32(underlying.code)
        }
        return nil
    }
}

/// read(2), named apart from `ReportsFolder.read`.
private func posixRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
    read(fd, buffer, count)
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
