// The process holding the bind password cannot dump core and cannot
// be read by other users; the password file's buffer is wiped once read.

import Foundation
import LDAPTestSupport
import Testing
@testable import TakeoverBridge

#if canImport(Glibc)
import Glibc
#endif

@Suite("the password does not outlive its use in a core file or a buffer")
struct ProcessHardeningTests {
    @Test func passwordFileBufferIsWipedOnceRead() throws {
        let dir = try makeTemporaryFolder("tb-secret")
        defer { cleanup(dir) }
        for (content, expected) in [("s3cr3t-\u{E9}t\u{E9}\n", "s3cr3t-\u{E9}t\u{E9}"), ("pw\r\n", "pw"), ("pw", "pw"), ("a\nb\n", "a\nb")] {
            try writeFile(dir + "/pw", content)
            let fd = open(dir + "/pw", O_RDONLY)
            defer { close(fd) }
            let bytes = try SecretBytes(reading: fd, limit: 1024)
            #expect(bytes.count == content.utf8.count)
            #expect(!bytes.isWiped, "holds the bytes until taken")
            #expect(bytes.takeText() == expected)
            #expect(bytes.isWiped, "wiped once the text is taken")
        }
        try writeFile(dir + "/pw", "x\n")
        #expect(try FileSecurity.readSecretFile(dir + "/pw").get() == "x")
        try writeFile(dir + "/big", String(repeating: "x", count: FileSecurity.maximumSecretSize + 1))
        #expect(throws: SecretReadError.self) { try FileSecurity.readSecretFile(dir + "/big").get() }
        chmod(dir + "/pw", 0o640)
        #expect(throws: SecretReadError.self) { try FileSecurity.readSecretFile(dir + "/pw").get() }
        // A FIFO is refused without blocking (opened O_NONBLOCK, judged on the open file).
        #expect(mkfifo(dir + "/fifo", 0o600) == 0)
        let started = Date()
        #expect(throws: SecretReadError.self) { try FileSecurity.readSecretFile(dir + "/fifo").get() }
        #expect(Date().timeIntervalSince(started) < 5)
    }

    /// The built binary, run as `nobody` and waiting for a server that never answers
    /// (after it read the password, as `plan` does): /proc shows it non-dumpable (its
    /// files owned by root, not by its user) and its core size limit 0.
    @Test func theRunningBinaryIsNotDumpable() throws {
        guard geteuid() == 0 else { return }  // needs to start a process as another user
        let silent = try FakeLDAPServer(answering: false)
        defer { silent.stop() }
        let dir = try makeTemporaryFolder("tb-dump")
        defer { cleanup(dir) }
        chmod(dir, 0o755)
        let config = """
        [ldap]
        uri = "\(silent.uri)"
        bind_dn = "cn=bridge,dc=example,dc=org"
        bind_password_file = "\(dir)/pw"
        timeout = 20
        [users]
        search_base = "ou=people,dc=example,dc=org"
        [devices]
        search_base = "ou=devices,dc=example,dc=org"
        reports = "\(dir)"
        [bindings]
        search_base = "ou=bindings,dc=example,dc=org"
        """
        try writeFile(dir + "/config.toml", config, mode: 0o644)
        try writeFile(dir + "/pw", "not-a-real-password\n", mode: 0o600)
        chown(dir + "/pw", nobodyID, nobodyID)
        let child = try Processes.spawn("/usr/bin/setpriv", ["--reuid=\(nobodyID)", "--regid=\(nobodyID)", "--clear-groups",
                                                             BridgeExecutable.path, "-c", dir + "/config.toml", "plan"],
                                        captureOutput: false)
        defer { child.kill() }
        let pid = child.pid
        // Waiting for the bind's answer: it has read the password.
        #expect(waitUntil(seconds: 15) { silent.binds.count == 1 }, "the binary reached the bind")
        var st = stat()
        #expect(stat("/proc/\(pid)/status", &st) == 0)
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        #expect(status.contains("Uid:\t\(nobodyID)"), "runs as nobody: \(status.prefix(400))")
        #expect(st.st_uid == 0, "non-dumpable: /proc/PID is owned by root, not by uid \(st.st_uid)")
        let limits = (try? String(contentsOfFile: "/proc/\(pid)/limits", encoding: .utf8)) ?? ""
        let core = limits.split(separator: "\n").first { $0.hasPrefix("Max core file size") } ?? ""
        #expect(core.split(separator: " ", omittingEmptySubsequences: true).dropFirst(4).prefix(2) == ["0", "0"], "\(core)")
    }
}
