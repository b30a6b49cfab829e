// Protections of the running process (docs/product.md section 7, issue 11): the bind password
// lives in this process's memory for the whole run, so no core file may hold it and no
// other user may read it through ptrace or /proc/PID/mem.

internal import CHardening

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

package enum ProcessHardening {
    /// Makes the process non-dumpable (`prctl(PR_SET_DUMPABLE, 0)` on Linux) and sets
    /// `RLIMIT_CORE` to 0, soft and hard. Called first thing in `main`, before any secret
    /// is read. Returns what could not be done (empty when all went well).
    @discardableResult
    package static func apply() -> [String] {
        var problems: [String] = []
        if CHardening_set_not_dumpable() != 0 {
            problems.append("cannot make the process non-dumpable: \(String(cString: strerror(errno)))")
        }
        var none = rlimit(rlim_cur: 0, rlim_max: 0)
        #if canImport(Glibc)
        let resource = __rlimit_resource_t(RLIMIT_CORE.rawValue)
        #else
        let resource = RLIMIT_CORE
        #endif
        if setrlimit(resource, &none) != 0 {
            problems.append("cannot set RLIMIT_CORE to 0: \(String(cString: strerror(errno)))")
        }
        return problems
    }

    /// Whether the kernel would write a core file of this process (PR_GET_DUMPABLE).
    package static var isDumpable: Bool { CHardening_is_dumpable() != 0 }
}

/// A secret read from a file, in a buffer that is zeroed (`explicit_bzero`, which the
/// compiler may not remove) as soon as the text has been taken from it, and again before
/// it is freed.
package final class SecretBytes {
    private let buffer: UnsafeMutableRawBufferPointer
    /// Bytes read.
    package private(set) var count: Int

    /// Reads at most `limit` bytes from `fd` (to its end).
    init(reading fd: Int32, limit: Int) throws(SecretReadError) {
        buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: limit + 1, alignment: 1)
        count = 0
        while count <= limit {
            let n = read(fd, buffer.baseAddress! + count, limit + 1 - count)
            if n < 0 {
                if errno == EINTR { continue }
                // Fully initialised: deinit wipes and frees the buffer.
                throw SecretReadError(String(cString: strerror(errno)))
            }
            if n == 0 { break }
            count += n
        }
        if count > limit {
            throw SecretReadError("is larger than \(limit) bytes; is it the right file?")
        }
    }

    deinit {
        wipe()
        buffer.deallocate()
    }

    /// Zeroes the whole buffer.
    package func wipe() {
        if let base = buffer.baseAddress { explicit_bzero(base, buffer.count) }
    }

    /// True when every byte is zero (after `wipe`).
    package var isWiped: Bool { buffer.allSatisfy { $0 == 0 } }

    /// The text without one trailing "\n" or "\r\n", then wipes the buffer. Nil when the
    /// bytes are not UTF-8 (the buffer is wiped all the same).
    package func takeText() -> String? {
        defer { wipe() }
        var end = count
        if end > 0 && buffer[end - 1] == UInt8(ascii: "\n") {
            end -= 1
            if end > 0 && buffer[end - 1] == UInt8(ascii: "\r") { end -= 1 }
        }
        return String(validating: UnsafeRawBufferPointer(rebasing: buffer[0..<end]), as: UTF8.self)
    }
}

package struct SecretReadError: Error, Sendable, CustomStringConvertible {
    package var description: String
    init(_ description: String) { self.description = description }
}

extension FileSecurity {
    /// The largest secret file read (a password is a few dozen bytes).
    package static let maximumSecretSize = 64 * 1024

    /// Reads a password file: opened once (following a symlink, never blocking on a FIFO),
    /// judged on that open file (a regular file that neither group nor others can access),
    /// read into a `SecretBytes` that is wiped as soon as the text is taken. One trailing
    /// newline is removed. The message of a failure names the file, never its content.
    package static func readSecretFile(_ path: String) -> Result<String, SecretReadError> {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        guard fd >= 0 else { return .failure(SecretReadError("cannot read \(path): \(String(cString: strerror(errno)))")) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return .failure(SecretReadError("cannot read \(path): \(String(cString: strerror(errno)))")) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { return .failure(SecretReadError("\(path) is not a regular file")) }
        let mode = st.st_mode & 0o7777
        if mode & 0o077 != 0 {
            return .failure(SecretReadError("\(path) can be accessed by group or others (mode \(octal(mode))); it holds a secret: "
                + "run chmod 600 \(shellQuoted(path))"))
        }
        let bytes: SecretBytes
        do {
            bytes = try SecretBytes(reading: fd, limit: maximumSecretSize)
        } catch {
            return .failure(SecretReadError("cannot read \(path): \(error)"))
        }
        guard let text = bytes.takeText() else { return .failure(SecretReadError("\(path) is not valid UTF-8")) }
        return .success(text)
    }
}
