// The command line (docs/product.md section 4): argument parsing only. Everything else is in
// TakeoverBridge.BridgeRunner; this file maps commands to it and results to exit codes.

import ArgumentParser
import Foundation
import Logging
import TakeoverBridge

struct GlobalOptions: ParsableArguments {
    @Option(name: [.short, .long], help: ArgumentHelp(
        "The configuration file.",
        discussion: "Default: $TAKEOVER_BRIDGE_CONFIG, else \(BridgeConfig.defaultPath).",
        valueName: "path"))
    var config: String?

    @Option(name: .customLong("log-level"), help: ArgumentHelp(
        "Diagnostics on stderr from this level up: trace, debug, info, notice, warning, error, critical.",
        valueName: "level"))
    var logLevel: String?

    func validate() throws {
        if let logLevel, Logger.Level(rawValue: logLevel) == nil {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical")
        }
    }

    /// Installs the stderr handler (logfmt unless stderr is a terminal) and makes the runner.
    func runner() -> BridgeRunner {
        let environment = ProcessInfo.processInfo.environment
        let level = logLevel.flatMap(Logger.Level.init(rawValue:))
            ?? environment["TAKEOVER_BRIDGE_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
        BridgeLogging.bootstrap(level: level, forceLogfmt: nil)
        return BridgeRunner(configPath: config, environment: environment)
    }
}

struct TakeoverBridgeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "takeover-bridge",
        abstract: "Bind directory users to the local accounts on their devices, and record the bindings in LDAP.",
        discussion: """
            Exit codes (the most severe wins: 78, 64 > 75 > 5 > 67 > 4 > 3 > 2 > 0):
              0  ok
              2  changes pending (plan --check only)
              3  conflicts present (everything else was done)
              4  a safety limit tripped, nothing written
              5  directory or I/O failure
             64  usage error
             67  no such user (explain)
             75  another run holds the lock or the lease
             78  configuration error
            """,
        version: BridgeVersion.string,
        subcommands: [PlanCommand.self, ApplyCommand.self, ExplainCommand.self, DoctorCommand.self])

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        throw ValidationError("a command is required: plan, apply, explain or doctor")
    }
}

extension PlanFormat: ExpressibleByArgument {}

struct PlanCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Read the directory and the reports and show what apply would do. Writes nothing.",
        discussion: """
            Exit 0, or 3 with conflicts; with --check, 2 when changes are pending; 4 when \
            apply would refuse this plan (a safety limit; the reason is on stderr).
            """)

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp(
        "text, json, csv, ldif or html.",
        discussion: """
            text leads with what to do (conflicts with their fixes, warnings, errors), then the \
            decisions that change something; json, csv and ldif hold every decision (ldif: exactly \
            the changes apply writes, for ldapmodify); html is one self-contained page for reviewers.
            """))
    var format: PlanFormat = .text

    @Flag(help: "List every decision in the text and html reports, bound and deferred pairs too.")
    var all = false

    @Option(help: ArgumentHelp("Write the report to this file instead of stdout.", valueName: "file"))
    var output: String?

    @Flag(help: "Exit 2 when changes are pending.")
    var check = false

    func run() async throws {
        let status = await global.runner().plan(format: format, outputFile: output, check: check, all: all)
        throw ExitCode(status.rawValue)
    }
}

struct ApplyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply",
        abstract: "Compute the plan and write it to the directory, within the safety limits.",
        discussion: """
            Takes the lock in [state] dir first (75 when another run holds it), checks every \
            safety limit before the first write (4: nothing written), and appends a run \
            record with its undo LDIF to [state] dir whatever happens.
            """)

    @OptionGroup var global: GlobalOptions

    @Option(name: .customLong("allow-unbinds"), help: ArgumentHelp(
        "Allow up to this many unbinds in this run, instead of max_unbinds and max_unbind_percent.", valueName: "n"))
    var allowUnbinds: Int?

    func validate() throws {
        if let allowUnbinds, allowUnbinds < 0 { throw ValidationError("--allow-unbinds must be 0 or more") }
    }

    func run() async throws {
        let status = await global.runner().apply(allowUnbinds: allowUnbinds)
        throw ExitCode(status.rawValue)
    }
}

struct ExplainCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explain",
        abstract: "Show every fact and rule behind one user's decisions.",
        discussion: "Exit 67 when the user is not in the directory.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The username (or DN).")
    var user: String

    @Option(help: ArgumentHelp("Only this device.", valueName: "name"))
    var device: String?

    func run() async throws {
        let status = await global.runner().explain(user: user, device: device)
        throw ExitCode(status.rawValue)
    }
}

struct DoctorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Check the configuration, connection, TLS, identity, schema, bases, reports and write access.")

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let status = await global.runner().doctor()
        throw ExitCode(status.rawValue)
    }
}

/// ArgumentParser's own errors: help and version exit 0, every other parse or validation
/// error is a usage error (64), never ArgumentParser's default code.
@main
enum Main {
    static func main() async {
        // Before anything reads a secret: no core file, no ptrace by others (docs/product.md section 7).
        for problem in ProcessHardening.apply() {
            FileHandle.standardError.write(Data("takeover-bridge: warning: \(problem)\n".utf8))
        }
        do {
            var command = try TakeoverBridgeCommand.parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let code as ExitCode {
            exit(code.rawValue)
        } catch {
            let code = TakeoverBridgeCommand.exitCode(for: error)
            if code == .success {
                TakeoverBridgeCommand.exit(withError: error)
            }
            let message = TakeoverBridgeCommand.fullMessage(for: error)
            FileHandle.standardError.write(Data((message + "\n").utf8))
            exit(ExitStatus.usage.rawValue)
        }
    }
}
