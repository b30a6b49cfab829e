// Test support: temporary folders and files with the permissions a test asks for.

import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// uid and gid of `nobody` (65534 on Debian).
public let nobodyID: uid_t = 65534

/// A fresh temporary folder (0700), removed by the caller with `cleanup`.
public func makeTemporaryFolder(_ name: String = "tb-test") throws -> String {
    let path = (NSTemporaryDirectory() as NSString).standardizingPath + "/\(name)-\(UUID().uuidString)"
    guard mkdir(path, 0o700) == 0 else {
        throw TestDirectory.Failure("cannot make the folder \(path): \(String(cString: strerror(errno)))")
    }
    return path
}

/// Writes `text` to `path` and sets its mode.
public func writeFile(_ path: String, _ text: String, mode: mode_t = 0o600) throws {
    guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8)) else {
        throw TestDirectory.Failure("cannot write \(path)")
    }
    chmod(path, mode)
}

public func cleanup(_ path: String) {
    try? FileManager.default.removeItem(atPath: path)
}

/// Runs `body` with two new temporary folders (named after `first` and `second`);
/// removes both afterwards.
public func withTemporaryFolders(_ first: String, _ second: String, _ body: (String, String) throws -> Void) throws {
    let one = try makeTemporaryFolder(first)
    let two = try makeTemporaryFolder(second)
    defer {
        cleanup(one)
        cleanup(two)
    }
    try body(one, two)
}
