// Permission checks on the files the bridge trusts (PRODUCT.md section 7): a password
// file readable by group or others, or a config writable by others, is refused.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

public enum FileSecurity {
    /// A problem with a file holding a secret (bind password, TLS key), or nil when it is
    /// a regular file that neither group nor others can access.
    public static func checkSecretFile(_ path: String) -> String? {
        var st = stat()
        guard stat(path, &st) == 0 else {
            return "cannot use \(path): \(String(cString: strerror(errno)))"
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            return "\(path) is not a regular file"
        }
        let mode = st.st_mode & 0o7777
        if mode & 0o077 != 0 {
            return "\(path) can be accessed by group or others (mode \(octal(mode))); it holds a secret: "
                + "run chmod 600 \(shellQuoted(path))"
        }
        return nil
    }

    /// A problem with the configuration file, or nil: refused when others can write it,
    /// when it is owned by a user other than root or the one running the bridge, or when
    /// its folder lets others replace it.
    public static func checkConfigFile(_ path: String) -> String? {
        var st = stat()
        guard stat(path, &st) == 0 else {
            return "cannot read \(path): \(String(cString: strerror(errno)))"
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            return "\(path) is not a regular file"
        }
        let mode = st.st_mode & 0o7777
        if mode & 0o002 != 0 {
            return "\(path) is writable by others (mode \(octal(mode))); anyone could redirect the bridge: "
                + "run chmod o-w \(shellQuoted(path))"
        }
        let me = geteuid()
        if st.st_uid != 0 && st.st_uid != me {
            return "\(path) is owned by uid \(st.st_uid), neither root nor the user running the bridge (uid \(me)); "
                + "that user could redirect the bridge"
        }
        let folder = parentFolder(path)
        var dirStat = stat()
        if stat(folder, &dirStat) == 0 {
            let dirMode = dirStat.st_mode & 0o7777
            if dirMode & 0o002 != 0 && dirMode & 0o1000 == 0 {
                return "\(path) is in \(folder), which anyone can write to (mode \(octal(dirMode))) "
                    + "without the sticky bit, so anyone could replace it"
            }
        }
        return nil
    }

    /// Mode bits as "0640".
    static func octal(_ mode: mode_t) -> String {
        let digits = String(UInt32(mode), radix: 8)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }

    static func parentFolder(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        if slash == path.startIndex { return "/" }
        return String(path[..<slash])
    }

    static func shellQuoted(_ s: String) -> String {
        if s.allSatisfy({ $0.isLetter || $0.isNumber || "/._-+,:@".contains($0) }) { return s }
        return "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}
