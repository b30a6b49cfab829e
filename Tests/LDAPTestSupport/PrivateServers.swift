// Test support: private servers. A suite that disturbs its server (kills, pauses or
// restarts it, compares whole subtrees, fills it with thousands of entries) starts one
// of its own with the kind's script in a fresh folder under /tmp, so it never meets
// another suite's tests. Every private server is stopped when the test process exits,
// and by a watchdog when the process dies without exiting.

import Foundation
import LDAPClient
#if canImport(Glibc)
import Glibc
#endif

extension TestDirectory {
    /// Starts a private server of `kind` in a new folder under /tmp; stopped at exit (or
    /// earlier with `stop()`). Samba's ports are fixed: a private one needs its own
    /// loopback `address` (TB_SAMBA_ADDR), different from the shared one's.
    public static func startPrivate(_ kind: Kind = .openLDAP, address: String? = nil) throws -> TestDirectory {
        let folder = "/tmp/tb-\(kind.rawValue)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let environment = address.map { ["TB_SAMBA_ADDR": $0] } ?? [:]
        PrivateServers.shared.add(folder, kind: kind)
        let result = try Processes.run("/bin/bash", [packageRoot + "/" + kind.script, "start", folder],
                                       environment: environment, timeout: 600)
        guard result.status == 0 else {
            _ = try? Processes.run("/bin/bash", [packageRoot + "/" + kind.script, "stop", folder], timeout: 120)
            throw Failure("\(kind.script) start \(folder) failed: \(result)")
        }
        let server = try TestDirectory(envFile: folder + "/env")
        PrivateServers.shared.watch(server)
        return server
    }

    /// A private server for a suite's `static let`: started on first use, stopped at exit.
    public static func privateServer(_ kind: Kind = .openLDAP) -> Result<TestDirectory, Failure> {
        do {
            return .success(try startPrivate(kind))
        } catch {
            return .failure(Failure("cannot start a private \(kind) server: \(error)"))
        }
    }

    /// Stops the server with its script's `stop`; with `removeFiles` also deletes its folder.
    public func stop(removeFiles: Bool = true) throws {
        let result = try Processes.run("/bin/bash", [Self.packageRoot + "/" + kind.script, "stop", directory],
                                       timeout: 120)
        guard result.status == 0 else { throw Failure("\(kind.script) stop \(directory) failed: \(result)") }
        if removeFiles, directory.hasPrefix("/tmp/tb-") {
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    /// Stops and starts the same server: same ports, same data (OpenLDAP).
    @discardableResult
    public func restart() throws -> TestDirectory {
        let result = try Processes.run("/bin/bash", [Self.packageRoot + "/" + kind.script, "restart", directory],
                                       timeout: 120)
        guard result.status == 0 else { throw Failure("\(kind.script) restart \(directory) failed: \(result)") }
        return try TestDirectory(envFile: envFile)
    }

    /// The server's current process id (from its pid file; changes on restart). OpenLDAP.
    public var pid: Int32? {
        guard let data = FileManager.default.contents(atPath: values["TB_SLAPD_PIDFILE"] ?? "") else { return nil }
        return Int32(String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// Sends `signal` (default SIGKILL) to the server process.
    public func kill(signal: Int32 = SIGKILL) {
        if let pid { _ = Glibc.kill(pid, signal) }
    }

    /// SIGSTOP: the server holds its connections and answers nothing until `resume`.
    public func pause() { kill(signal: SIGSTOP) }
    public func resume() { kill(signal: SIGCONT) }

    /// SIGKILL, and wait (at most 10 s) until the process is gone.
    public func killHard() {
        guard let pid else { return }
        _ = Glibc.kill(pid, SIGKILL)
        _ = waitUntil(seconds: 10) {
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return true }
            let fields = stat.split(separator: ")").last?.split(separator: " ") ?? []
            return fields.first == "Z" || fields.first == "X"
        }
    }
}

/// The private servers and scratch folders to clean up when the test process exits.
public final class PrivateServers: @unchecked Sendable {
    // @unchecked: `servers` and `folders` are only touched while holding `lock`.
    public static let shared = PrivateServers()
    private let lock = NSLock()
    private var servers: [(folder: String, kind: TestDirectory.Kind)] = []
    private var folders: [String] = []
    private var installed = false

    private func installOnce() {
        if !installed {
            installed = true
            atexit { PrivateServers.shared.stopAll() }
        }
    }

    func add(_ folder: String, kind: TestDirectory.Kind) {
        lock.lock()
        defer { lock.unlock() }
        servers.append((folder, kind))
        installOnce()
    }

    /// A folder to remove at exit (a scenario held in a static property is never deinitialised).
    public func removeAtExit(_ folder: String) {
        lock.lock()
        defer { lock.unlock() }
        folders.append(folder)
        installOnce()
    }

    /// A watchdog stops the server when this process is gone even if it never ran atexit.
    func watch(_ server: TestDirectory) {
        let script = TestDirectory.packageRoot + "/" + server.kind.script
        let watch = "while kill -0 \(getpid()) 2>/dev/null; do sleep 1; done; "
            + "bash '\(script)' stop '\(server.directory)'; rm -rf '\(server.directory)'"
        _ = try? Processes.spawn("/bin/sh", ["-c", watch], captureOutput: false)
    }

    func stopAll() {
        lock.lock()
        let all = servers
        let scratch = folders
        servers = []
        folders = []
        lock.unlock()
        for folder in scratch where folder.hasPrefix(NSTemporaryDirectory()) {
            try? FileManager.default.removeItem(atPath: folder)
        }
        for (folder, kind) in all where FileManager.default.fileExists(atPath: folder) {
            // A paused slapd (SIGSTOP) gets SIGCONT first, or SIGTERM would wait.
            if kind == .openLDAP, let text = try? String(contentsOfFile: folder + "/slapd.pid", encoding: .utf8),
               let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
                _ = kill(pid, SIGCONT)
            }
            _ = try? Processes.run("/bin/bash", [TestDirectory.packageRoot + "/" + kind.script, "stop", folder],
                                   timeout: 60)
            if folder.hasPrefix("/tmp/tb-") { try? FileManager.default.removeItem(atPath: folder) }
        }
    }
}

/// Polls `condition` every 10 ms until it holds or `seconds` pass; the last answer.
public func waitUntil(seconds: Double, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        usleep(10_000)
    }
    return condition()
}

/// A TCP port on loopback that nobody listens on (bound and closed at once).
public func closedPort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return 1 }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Bool in
            bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
        }
    }
    return bound ? Int(UInt16(bigEndian: address.sin_port)) : 1
}
