// Test support: the one process runner of the test suites (the only file in Tests/ that
// starts processes). posix_spawn and waitpid, with a deadline on every wait.
//
// Not Foundation's `Process`: on Linux it learns that a child exited when a descriptor the
// child inherited closes, so a child that leaves a daemon behind (test-slapd.sh starting
// slapd) is seen to exit only when the daemon does. Here the child gets stdin, stdout and
// stderr on files of its own and no other descriptor, and its exit is read with waitpid.

import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A finished process.
public struct ProcessOutcome: Sendable, CustomStringConvertible {
    /// The exit status; 128 + the signal's number when a signal ended it.
    public var status: Int32
    /// True when a signal ended the process (a crash, a kill, or the deadline).
    public var signalled: Bool
    /// True when it ran past its deadline and was killed.
    public var timedOut: Bool
    public var stdout: String
    public var stderr: String
    public var seconds: Double

    public var all: String { stdout + "\n" + stderr }

    public var description: String {
        "exit \(status)\(signalled ? " (signal)" : "")\(timedOut ? " (killed at its deadline)" : "") after "
            + String(format: "%.2f", seconds) + " s\n--- stdout\n" + stdout.suffix(3000) + "\n--- stderr\n"
            + stderr.suffix(3000)
    }
}

public struct ProcessFailure: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// A process started by `Processes.spawn`; `finish` waits for it (with a deadline).
public final class ChildProcess: @unchecked Sendable {
    // @unchecked: `reaped` is only touched while holding `lock`.
    public let pid: pid_t
    /// The folder holding in/out/err; nil when the output is discarded.
    private let folder: String?
    private let started: Date
    private let lock = NSLock()
    private var reaped: Int32?
    private var killedAtDeadline = false

    init(pid: pid_t, folder: String?, started: Date) {
        self.pid = pid
        self.folder = folder
        self.started = started
    }

    /// The raw wait status once the process has exited (reaps it); nil while it runs.
    private func poll() -> Int32? {
        lock.lock()
        defer { lock.unlock() }
        if let reaped { return reaped }
        var status: Int32 = 0
        while true {
            let result = waitpid(pid, &status, WNOHANG)
            if result == pid {
                reaped = status
                return status
            }
            if result == -1 && errno == EINTR { continue }
            if result == -1 {
                reaped = 0x7f00  // not our child any more: report a plain failure (127)
                return reaped
            }
            return nil
        }
    }

    public var isRunning: Bool { poll() == nil }

    /// Sends `signal` to the process (not to what it started).
    public func signal(_ signal: Int32) { _ = Glibc.kill(pid, signal) }

    /// Waits at most `timeout` seconds; past it, kills the process and everything it
    /// started (its process group), and reports `timedOut`. Collects its output.
    public func finish(timeout: Double = 300) -> ProcessOutcome {
        let deadline = Date().addingTimeInterval(timeout)
        var status = poll()
        while status == nil && Date() < deadline {
            usleep(5_000)
            status = poll()
        }
        if status == nil {
            killedAtDeadline = true
            _ = Glibc.kill(-pid, SIGKILL)
            _ = Glibc.kill(pid, SIGKILL)
            // SIGKILL cannot be caught: the process is gone within moments.
            let reapBy = Date().addingTimeInterval(10)
            while status == nil && Date() < reapBy {
                usleep(5_000)
                status = poll()
            }
        }
        let raw = status ?? (0x7f00)
        var out = "", err = ""
        if let folder {
            out = (try? String(contentsOfFile: folder + "/out", encoding: .utf8)) ?? ""
            err = (try? String(contentsOfFile: folder + "/err", encoding: .utf8)) ?? ""
            try? FileManager.default.removeItem(atPath: folder)
        }
        // WIFEXITED / WEXITSTATUS / WTERMSIG are macros: decode by hand.
        let signal = raw & 0x7f
        let signalled = signal != 0 && signal != 0x7f
        return ProcessOutcome(status: killedAtDeadline ? 124 : signalled ? 128 + signal : (raw >> 8) & 0xff,
                              signalled: signalled || killedAtDeadline, timedOut: killedAtDeadline,
                              stdout: out, stderr: err, seconds: Date().timeIntervalSince(started))
    }

    /// SIGKILL, then reap it (bounded).
    @discardableResult
    public func kill() -> ProcessOutcome {
        signal(SIGKILL)
        return finish(timeout: 10)
    }
}

public enum Processes {
    /// glibc's posix_spawn extensions that Swift's Glibc module does not import.
    private typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, Int32) -> Int32
    private typealias ChangeDirectory = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?,
                                                        UnsafePointer<CChar>?) -> Int32
    private static let closeFrom: CloseFrom? = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np")
        .map { unsafeBitCast($0, to: CloseFrom.self) }
    private static let changeDirectory: ChangeDirectory? =
        dlsym(nil, "posix_spawn_file_actions_addchdir_np").map { unsafeBitCast($0, to: ChangeDirectory.self) }

    /// The environment of every child: this process's, without libldap settings (a
    /// LDAPTLS_CACERT there would hide a missing `tls_cacert`) and without the bridge's
    /// config and log level, then `extra`.
    public static func childEnvironment(_ extra: [String: String]) -> [String: String] {
        var environment = ProcessInfo.processInfo.environment
        for key in environment.keys where key.hasPrefix("LDAP") || key == "TAKEOVER_BRIDGE_CONFIG"
            || key == "TAKEOVER_BRIDGE_LOG_LEVEL" {
            environment[key] = nil
        }
        environment.merge(extra) { _, new in new }
        return environment
    }

    /// Starts `executable` (a path, or a name looked up in PATH) with stdin from `input`,
    /// stdout and stderr captured in files (or discarded), no other descriptor, an empty
    /// signal mask and default signal handling (the threads Swift runs tests on block most
    /// signals, and a mask is inherited across exec: a slapd started with them blocked
    /// would ignore SIGTERM), in a process group of its own.
    public static func spawn(_ executable: String, _ arguments: [String], environment: [String: String] = [:],
                             input: String? = nil, directory: String? = nil,
                             captureOutput: Bool = true) throws -> ChildProcess {
        var folder: String?
        var inPath = "/dev/null", outPath = "/dev/null", errPath = "/dev/null"
        if captureOutput || input != nil {
            let scratch = NSTemporaryDirectory() + "tb-proc-\(UUID().uuidString.prefix(13))"
            try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
            folder = scratch
            inPath = scratch + "/in"
            guard FileManager.default.createFile(atPath: inPath, contents: Data((input ?? "").utf8)) else {
                throw ProcessFailure("cannot write \(inPath)")
            }
            if captureOutput {
                outPath = scratch + "/out"
                errPath = scratch + "/err"
            }
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, inPath, O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        if let closeFrom { _ = closeFrom(&actions, 3) }
        var program = executable
        var argumentList = arguments
        if let directory {
            if let changeDirectory {
                _ = changeDirectory(&actions, directory)
            } else {
                program = "/bin/sh"
                argumentList = ["-c", "cd \"$0\" && exec \"$@\"", directory, executable] + arguments
            }
        }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))

        let argv = ([program] + argumentList).map { strdup($0) } + [nil]
        let envp = childEnvironment(environment).map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid: pid_t = 0
        let started = Date()
        let result = posix_spawnp(&pid, program, &actions, &attributes, argv, envp)
        guard result == 0 else {
            if let folder { try? FileManager.default.removeItem(atPath: folder) }
            throw ProcessFailure("cannot start \(program): \(String(cString: strerror(result)))")
        }
        return ChildProcess(pid: pid, folder: folder, started: started)
    }

    /// Runs a process to its end; killed (with what it started) after `timeout` seconds.
    public static func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:],
                           input: String? = nil, directory: String? = nil, timeout: Double = 300) throws -> ProcessOutcome {
        try spawn(executable, arguments, environment: environment, input: input, directory: directory)
            .finish(timeout: timeout)
    }
}
