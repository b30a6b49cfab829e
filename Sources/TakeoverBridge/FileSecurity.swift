// Permission checks on the files the bridge trusts (docs/product.md section 7): a password
// file readable by group or others, or a config writable by group or others (judged on
// the file a symlink resolves to and every folder above it), is refused.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

package enum FileSecurity {
    /// A problem with a file holding a secret (bind password, TLS key), or nil when it is
    /// a regular file that neither group nor others can access.
    package static func checkSecretFile(_ path: String) -> String? {
        var problem: String?
        guard let st = regularFile(path, shown: path, verb: "use", problem: &problem) else { return problem }
        let mode = st.st_mode & 0o7777
        if mode & 0o077 != 0 {
            return "\(path) can be accessed by group or others (mode \(octal(mode))); it holds a secret: "
                + "run chmod 600 \(shellQuoted(path))"
        }
        return nil
    }

    /// A problem with the configuration file, or nil. Judged on the file a symlink
    /// resolves to (docs/product.md section 7): refused when it is not a regular file, when its
    /// group or others can write it, or when it is owned by a user other than root or the
    /// one running the bridge; and when any folder above it (above the resolved file, and
    /// above the link itself) lets someone else replace it: owned by another user, or
    /// writable by its group or others without the sticky bit.
    package static func checkConfigFile(_ path: String) -> String? {
        guard let resolved = resolvedPath(path) else {
            return "cannot read \(path): \(String(cString: strerror(errno)))"
        }
        var link = stat()
        let isLink = lstat(path, &link) == 0 && (link.st_mode & S_IFMT) == S_IFLNK
        let shown = isLink ? "\(path) (a link to \(resolved))" : path
        var problem: String?
        guard let st = regularFile(resolved, shown: shown, verb: "read", problem: &problem) else { return problem }
        let mode = st.st_mode & 0o7777
        if mode & 0o002 != 0 {
            return "\(shown) is writable by others (mode \(octal(mode))); anyone could redirect the bridge: "
                + "run chmod go-w \(shellQuoted(resolved))"
        }
        if mode & 0o020 != 0 {
            return "\(shown) is writable by its group (mode \(octal(mode))); any member could redirect the bridge: "
                + "run chmod go-w \(shellQuoted(resolved))"
        }
        let me = geteuid()
        if st.st_uid != 0 && st.st_uid != me {
            return "\(shown) is owned by uid \(st.st_uid), neither root nor the user running the bridge (uid \(me)); "
                + "that user could redirect the bridge"
        }
        var folders = ancestors(of: resolved)
        if let linkFolder = resolvedPath(parentFolder(absolutePath(path))) {
            folders += [linkFolder] + ancestors(of: linkFolder)
        }
        var seen = Set<String>()
        for folder in folders where seen.insert(folder).inserted {
            if let problem = folderProblem(folder) { return "\(shown) is in \(problem), so it could be replaced" }
        }
        return nil
    }

    /// `stat(2)` of `path` when it is a regular file; else nil, and `problem` says
    /// "cannot VERB SHOWN: reason" or "SHOWN is not a regular file".
    private static func regularFile(_ path: String, shown: String, verb: String, problem: inout String?) -> stat? {
        var st = stat()
        if stat(path, &st) != 0 {
            problem = "cannot \(verb) \(shown): \(String(cString: strerror(errno)))"
            return nil
        }
        if (st.st_mode & S_IFMT) != S_IFREG {
            problem = "\(shown) is not a regular file"
            return nil
        }
        return st
    }

    /// Why `folder` lets someone other than root or this user replace what is in it, or nil.
    static func folderProblem(_ folder: String) -> String? {
        var st = stat()
        guard stat(folder, &st) == 0 else { return nil }
        let mode = st.st_mode & 0o7777
        let me = geteuid()
        if st.st_uid != 0 && st.st_uid != me {
            return "\(folder), owned by uid \(st.st_uid) (neither root nor uid \(me))"
        }
        if mode & 0o1000 == 0 {
            if mode & 0o002 != 0 { return "\(folder), which anyone can write to (mode \(octal(mode))) without the sticky bit" }
            if mode & 0o020 != 0 { return "\(folder), which its group can write to (mode \(octal(mode))) without the sticky bit" }
        }
        return nil
    }

    /// `realpath(3)`: every symlink and `..` resolved; nil with errno set when it fails.
    static func resolvedPath(_ path: String) -> String? {
        guard let pointer = realpath(path, nil) else { return nil }
        defer { free(pointer) }
        return String(cString: pointer)
    }

    static func absolutePath(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard getcwd(&buffer, buffer.count) != nil else { return path }
        let cwd = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return cwd == "/" ? "/" + path : cwd + "/" + path
    }

    /// "/a/b/c" -> ["/a/b", "/a", "/"].
    static func ancestors(of path: String) -> [String] {
        var out: [String] = []
        var current = path
        while current != "/" && current != "." && !current.isEmpty {
            current = parentFolder(current)
            out.append(current)
        }
        return out
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
