// One run of the program (docs/product.md sections 4 and 6): configuration, connection,
// directory, reports, plan, and then the command's own part (render, apply, explain).
// Results go to the output sink (stdout or a file), diagnostics to the logger (stderr),
// and every run ends with exactly one summary line.

internal import CHardening
import DeviceReports
import Foundation
import LDAPClient
import LDAPSyntax
import Logging
import TakeoverCore

/// A run that stopped: the exit status it maps to and what to tell the admin.
package struct RunFailure: Error, Sendable, CustomStringConvertible {
    package var status: ExitStatus
    package var message: String
    /// Further lines (every configuration problem, say), each logged on its own.
    package var details: [String]

    package init(_ status: ExitStatus, _ message: String, details: [String] = []) {
        self.status = status
        self.message = message
        self.details = details
    }

    package var description: String { message }
}

/// Where results go.
package protocol OutputSink: Sendable {
    func write(_ text: String)
    /// A rendered report, its parts in order (by default as one String); returns the
    /// nanoseconds spent in the writes themselves (by default the whole call).
    @discardableResult
    func write(_ report: RenderedReport) -> UInt64
}

extension OutputSink {
    @discardableResult
    package func write(_ report: RenderedReport) -> UInt64 {
        let started = DispatchTime.now().uptimeNanoseconds
        write(report.text)
        return DispatchTime.now().uptimeNanoseconds - started
    }
}

/// Standard output, written in full with write(2).
package struct StandardOutput: OutputSink {
    package init() {}
    package func write(_ text: String) {
        _ = writeFully(1, text)
    }
    @discardableResult
    package func write(_ report: RenderedReport) -> UInt64 {
        var writing: UInt64 = 0
        _ = writeFully(1, report, writing: &writing)
        return writing
    }
}

/// Writes all of `text` to `fd` from the string's own UTF-8 storage (no copy: a plan's
/// report can be hundreds of megabytes); false on an error other than EINTR (`errno` set).
func writeFully(_ fd: Int32, _ text: String) -> Bool {
    var text = text
    return text.withUTF8 { writeFully(fd, UnsafeRawBufferPointer($0)) }
}

/// Writes every part of `report` to `fd`, in order, from the parts' own storage, each
/// list part as soon as it is rendered (`RenderedReport.forEachPart`). `writing` adds up
/// the nanoseconds spent in the writes themselves (the rest was rendering).
func writeFully(_ fd: Int32, _ report: RenderedReport, writing: inout UInt64) -> Bool {
    report.forEachPart { part in
        let started = DispatchTime.now().uptimeNanoseconds
        defer { writing += DispatchTime.now().uptimeNanoseconds - started }
        return part.withUnsafeBytes { writeFully(fd, $0) }
    }
}

/// `writeFully(_:_:writing:)` without the count.
func writeFully(_ fd: Int32, _ report: RenderedReport) -> Bool {
    var writing: UInt64 = 0
    return writeFully(fd, report, writing: &writing)
}

/// Writes all of `bytes` to `fd`; false on an error other than EINTR (`errno` set).
func writeFully(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
    var offset = 0
    while offset < bytes.count {
        let n = Foundation.write(fd, bytes.baseAddress.map { $0 + offset }, bytes.count - offset)
        if n < 0 {
            if errno == EINTR { continue }
            return false
        }
        offset += n
    }
    return true
}

package enum PlanFormat: String, Sendable, CaseIterable {
    case text, json, csv, ldif, html
}

/// Everything read before deciding.
package struct PreparedRun: Sendable {
    package var config: BridgeConfig
    package var connector: Connector
    package var snapshot: DirectorySnapshot
    package var reports: ReportsReadResult
    package var input: PlanInput
    package var plan: Plan
    /// The planner's own state (its indexes of the users and devices), let go with the inputs.
    var planning: PlanUnderway?

    /// Lets go of what only planning needed (users, connections, reports, binding groups,
    /// the planner's indexes) while the caller goes on (`apply`, whose writes wait on the
    /// directory), and gives the freed memory back to the system once they are gone: what
    /// follows needs the plan, the configuration and the layout only. The counts the safety
    /// limits use must be taken before. They are freed on two threads (`Disposal`): half of
    /// the reports (the bulk) on one, the other half and the directory's part on the other.
    package mutating func dropInputs() {
        let half = input.reports.count / 2
        let firstHalf = Array(input.reports[..<half])
        let secondHalf = Array(input.reports[half...])
        // The whole lists go here (their elements live on in the halves).
        input.reports = []
        reports.reports = []
        let fromReports = (reports, secondHalf, input.problems, planning)
        planning = nil
        let fromDirectory = (firstHalf, snapshot, input.users, input.connections, input.knownDevices, input.bindingGroups)
        snapshot = DirectorySnapshot()
        reports = ReportsReadResult()
        input.users = []
        input.connections = []
        input.knownDevices = []
        input.reports = []
        input.problems = []
        input.bindingGroups = []
        Disposal.releaseInBackground(fromReports, fromDirectory)
    }
}

/// Not Sendable: a runner belongs to the one task that runs the command (the CLI's main
/// task, or a test); its mutable state (`started`, the summary fields) is never shared.
package final class BridgeRunner {

    package let configPath: String
    package let environment: [String: String]
    package let output: OutputSink
    package let logger: Logger
    package var applyOptions = ApplyOptions()
    /// The current time (seconds); tests may pin it.
    package var clock: @Sendable () -> UnixTime = { UnixTime(Date().timeIntervalSince1970) }

    private var startedNanos: UInt64 = DispatchTime.now().uptimeNanoseconds
    private var summary: Logger.Metadata = [:]
    /// `[state] metrics_file` of the configuration this run loaded, and what goes into it.
    private var metricsFile: String?
    private var metrics = RunMetrics(command: "", exitCode: 0, finishedAt: 0, durationSeconds: 0)

    package init(configPath: String?, environment: [String: String] = ProcessInfo.processInfo.environment,
                output: OutputSink = StandardOutput(), logger: Logger = Logger(label: "takeover-bridge")) {
        self.configPath = BridgeRunner.resolveConfigPath(option: configPath, environment: environment)
        self.environment = environment
        self.output = output
        self.logger = logger
    }

    /// `--config`, else `$TAKEOVER_BRIDGE_CONFIG`, else /etc/takeover-bridge/config.toml.
    package static func resolveConfigPath(option: String?, environment: [String: String]) -> String {
        if let option, !option.isEmpty { return option }
        if let fromEnvironment = environment["TAKEOVER_BRIDGE_CONFIG"], !fromEnvironment.isEmpty { return fromEnvironment }
        return BridgeConfig.defaultPath
    }

    // MARK: - Commands

    /// `plan [--format] [--all] [--output] [--check]`: read-only. Exit 2 with `check` and
    /// changes pending, 3 with conflicts, 4 when `apply` would trip a safety limit. `all`
    /// lists every decision in the text and HTML reports (the others always do).
    package func plan(format: PlanFormat, outputFile: String?, check: Bool, all: Bool = false) async -> ExitStatus {
        start(command: "plan")
        var status = ExitStatus.ok
        do {
            let config = try loadConfig()
            let prepared = try await prepare(config, keepConnection: false, releasingConnections: true).prepared
            let plan = prepared.plan
            let refusals = refusalsFor(prepared, allowUnbinds: nil)
            // The inputs are not freed first: the report's long lists are rendered a few
            // parts at a time as they are written, so it adds little to the peak, and the
            // process gives everything back at once when it exits.
            let rendering = DispatchTime.now().uptimeNanoseconds
            var report: RenderedReport
            switch format {
            case .text: report = ReportRenderer.textReport(plan, all: all)
            case .json:
                report = ReportRenderer.jsonReport(plan)
                report.append([UInt8(ascii: "\n")])  // a text file ends in a newline
            case .csv: report = ReportRenderer.csvReport(plan)
            case .ldif: report = ChangeLDIF.report(plan.changes)
            case .html: report = ReportRenderer.htmlReport(plan, all: all)
            }
            // The lists are rendered while they are written: render_ms is the whole minus
            // the time spent in the writes.
            let writing = try emit(report, to: outputFile)
            let whole = DispatchTime.now().uptimeNanoseconds - rendering
            summary["render_ms"] = "\((whole - min(whole, writing)) / 1_000_000)"
            summary["write_ms"] = "\(writing / 1_000_000)"
            logger.debug("rendered and written", metadata: ["ms": "\(whole / 1_000_000)",
                                                            "rss_mb": "\(Self.residentMegabytes() ?? -1)"])
            note(plan: plan, written: 0)
            if check && plan.hasChanges { status = status.combined(with: .changesPending) }
            if !plan.conflicts.isEmpty { status = status.combined(with: .conflicts) }
            for refusal in refusals {
                logger.warning("apply would refuse this plan: \(refusal.message)", metadata: ["limit": "\(refusal.limit)"])
            }
            if !refusals.isEmpty { status = status.combined(with: .safetyLimit) }
            // The plan and the report are freed on a thread of their own: the process is
            // about to exit, and a run in a test goes on without waiting for it.
            Disposal.release((consume prepared, consume plan, consume report))
        } catch {
            status = report(error)
        }
        finish(status)
        return status
    }

    /// `apply [--allow-unbinds N]`.
    package func apply(allowUnbinds: Int?) async -> ExitStatus {
        start(command: "apply")
        var status = ExitStatus.ok
        let config: BridgeConfig
        do {
            config = try loadConfig()
        } catch {
            status = report(error)
            finish(status)
            return status
        }

        // One run at a time: the lock comes before anything touches the network.
        let state: StateDirectory
        let lock: RunLock
        do {
            state = try StateDirectory(path: config.state.dir)
        } catch {
            status = report(RunFailure(error.isInsecure ? .configuration : .failure, "state directory: \(error)"))
            finish(status)
            return status
        }
        do {
            lock = try state.acquireLock(now: clock())
        } catch {
            switch error {
            case .held: status = report(RunFailure(.lockHeld, error.description))
            case .failed: status = report(RunFailure(.failure, error.description))
            case .insecure: status = report(RunFailure(.configuration, error.description))
            }
            finish(status)
            return status
        }
        defer { lock.release() }

        let startedAt = clock()
        var record = RunRecord(startedAt: startedAt, finishedAt: startedAt, host: BridgeRunner.hostName(),
                               configPath: config.sourcePath, applied: [], outcome: "failed")
        var prepared = false
        // The run record, written while the directory answers the writes (RunRecordDraft).
        var draft: RunRecordDraft?
        // The plan and what is left of its inputs, held until the run record is written
        // (freeing them would take processor time from writing it), then let go on a
        // thread of their own as the process exits.
        var keptUntilRecorded: (PreparedRun, Plan)?
        // The lease across hosts (docs/product.md section 6): seen just before the directory
        // is read, taken only when there is something to write (Lease.swift).
        var lease: Lease?
        var leaseHeldElsewhere = false
        // Tokens of leases earlier runs here left stay noted until this run knows better.
        if !lock.leftoverLeaseRuns.isEmpty { lock.noteLease(runs: lock.leftoverLeaseRuns) }
        do {
            let connector = Connector(config: config, password: try password(config))
            var (preparedRun, readConnection, leaseSeen) = try await prepare(
                config, keepConnection: true, releasingConnections: true, connector: connector,
                leftoverLeaseRuns: lock.leftoverLeaseRuns)
            prepared = true
            let plan = preparedRun.plan
            let refusals = refusalsFor(preparedRun, allowUnbinds: allowUnbinds)
            // Writing needs the plan's changes and the layout only: the inputs are freed
            // while the directory answers the writes.
            preparedRun.dropInputs()
            if !refusals.isEmpty {
                await readConnection.close()
                for refusal in refusals {
                    logger.error("safety limit: \(refusal.message)", metadata: ["limit": "\(refusal.limit)"])
                }
                record.outcome = "refused: " + refusals.map(\.limit).joined(separator: ", ")
                note(plan: plan, written: 0)
                throw RunFailure(.safetyLimit, "nothing written: \(refusals.count) safety limit\(refusals.count == 1 ? "" : "s") tripped")
            }
            if plan.hasChanges, let seen = leaseSeen {
                // The token is noted in the lock file before the lease is taken: if this run
                // dies or loses the server holding it, the next run here takes it over at
                // once. Earlier tokens stay noted until this run holds the lease (or finds
                // another's).
                let leaseRun = Lease.newRunToken()
                lock.noteLease(runs: Array((lock.leftoverLeaseRuns + [leaseRun]).suffix(16)))
                do {
                    lease = try await Lease.acquire(connector: connector, clock: clock, logger: logger, seen: seen,
                                                    leftover: lock.leftoverLeaseRuns, run: leaseRun)
                    lock.noteLease(runs: [leaseRun])
                } catch {
                    await readConnection.close()
                    switch error {
                    case .held, .stale:
                        lock.noteLease(runs: [])  // another run's value is there, none of ours
                        leaseHeldElsewhere = true
                        note(plan: plan, written: 0)
                        throw RunFailure(.lockHeld, error.description)
                    default:
                        throw RunFailure(.failure, error.description)
                    }
                }
                await lease?.startRenewing()
            }
            if let allowUnbinds, plan.summary.unbind > 0 {
                logger.notice("unbinds allowed for this run", metadata: ["allow_unbinds": "\(allowUnbinds)",
                                                                          "unbind": "\(plan.summary.unbind)"])
            }
            if plan.hasChanges {
                var expected = record
                expected.applied = plan.changes
                expected.outcome = plan.conflicts.isEmpty ? "ok" : "conflicts"
                draft = state.draftRunRecord(expected)
            }
            let writing = DispatchTime.now().uptimeNanoseconds
            let result = await write(plan, prepared: preparedRun, readConnection: readConnection, lease: lease, draft: draft)
            summary["write_ms"] = Self.millis(since: writing)
            record.applied = result.applied
            record.alreadyDone = result.alreadyDone
            record.failed = result.failures
            note(plan: plan, written: result.applied.count)
            summary["already_done"] = "\(result.alreadyDone.count)"
            summary["failed"] = "\(result.failed.count + result.notWritten.count)"
            if !result.isComplete {
                logWriteFailures(result, total: plan.changes.count, layout: preparedRun.input.layout)
                record.outcome = result.gaveUp != nil ? "failed: gave up" : "failed: \(result.failed.count) refused"
                status = .failure
            } else {
                record.outcome = plan.conflicts.isEmpty ? "ok" : "conflicts"
            }
            if !plan.conflicts.isEmpty { status = status.combined(with: .conflicts) }
            keptUntilRecorded = (consume preparedRun, consume plan)
        } catch {
            status = status.combined(with: report(error))
            if let failure = error as? RunFailure, record.outcome == "failed" {
                record.outcome = "failed: " + failure.message
            }
            if let failure = error as? RunFailure, failure.status == .lockHeld { leaseHeldElsewhere = true }
            if !prepared, summary["takeover"] == nil { note(plan: nil, written: 0) }
        }
        if let lease, await lease.release() { lock.noteLease(runs: []) }
        if leaseHeldElsewhere {
            // Like the local lock: the other run is the one that records.
            finish(status)
            return status
        }
        record.finishedAt = clock()
        let recording = DispatchTime.now().uptimeNanoseconds
        do {
            let paths = try state.writeRunRecordFiles(record, draft: draft)
            summary["record"] = "\(paths.record)"
            logger.info("run record written", metadata: ["record": "\(paths.record)", "undo": "\(paths.undo)"])
        } catch {
            logger.error("cannot write the run record: \(error)")
            status = status.combined(with: error.isInsecure ? .configuration : .failure)
        }
        summary["render_ms"] = Self.millis(since: recording)
        Disposal.release(consume keptUntilRecorded)
        finish(status)
        return status
    }

    /// `explain USER [--device NAME]`: exit 67 when USER is not in the directory (what
    /// is still bound of such a user is shown all the same).
    package func explain(user: String, device: String?) async -> ExitStatus {
        start(command: "explain")
        var status = ExitStatus.ok
        do {
            let config = try loadConfig()
            let prepared = try await prepare(config)
            let rendering = DispatchTime.now().uptimeNanoseconds
            let explanation = Explainer.explanation(user: user, device: device, input: prepared.input, plan: prepared.plan)
            let text = explanation.lines.map { $0 + "\n" }.joined()
            summary["render_ms"] = Self.millis(since: rendering)
            let writing = DispatchTime.now().uptimeNanoseconds
            try emit(text, to: nil)
            summary["write_ms"] = Self.millis(since: writing)
            note(plan: prepared.plan, written: 0)
            if !explanation.userFound {
                logger.error("no such user in the directory", metadata: ["user": "\(user)"])
                status = .noSuchUser
            }
        } catch {
            status = report(error)
        }
        finish(status)
        return status
    }

    // MARK: - Steps

    /// Loads and checks the configuration: every problem is a configuration error (78).
    package func loadConfig() throws(RunFailure) -> BridgeConfig {
        let config: BridgeConfig
        do {
            config = try BridgeConfig.load(path: configPath, environment: environment)
        } catch {
            throw RunFailure(.configuration, "configuration error in \(configPath)",
                             details: error.problems.map(\.description))
        }
        metricsFile = config.state.metricsFile  // written by `finish`, whatever happens next
        if let refusal = config.cleartextProblem() {
            throw RunFailure(.configuration, "configuration error in \(configPath)",
                             details: [config.problem("ldap.allow_cleartext", refusal).description])
        }
        return config
    }

    func password(_ config: BridgeConfig) throws(RunFailure) -> String? {
        do {
            return try config.readBindPassword(environment: environment)
        } catch {
            throw RunFailure(.configuration, "configuration error in \(configPath)",
                             details: error.problems.map(\.description))
        }
    }

    package func prepare(_ config: BridgeConfig) async throws(RunFailure) -> PreparedRun {
        let run = try await prepare(config, keepConnection: false)
        return run.prepared
    }

    /// Connects, reads the directory and the reports, and plans.
    /// `leftoverLeaseRuns` (apply only): the lease is seen just before the directory is
    /// read (`Lease.observe`); another run holding it is exit 75 at once.
    /// `releasingConnections`: the caller needs the device entries' connections no more
    /// once planned (`plan`, `apply`); the planner lets them go before its device stage,
    /// and the prepared run has none.
    func prepare(_ config: BridgeConfig, keepConnection: Bool, releasingConnections: Bool = false,
                 connector given: Connector? = nil,
                 leftoverLeaseRuns: [String]? = nil) async throws(RunFailure)
        -> (prepared: PreparedRun, connection: LDAPConnection, lease: LeaseSeen?) {
        let connector: Connector
        if let given {
            connector = given
        } else {
            connector = Connector(config: config, password: try password(config))
        }
        var phase = DispatchTime.now().uptimeNanoseconds
        func lap(_ name: String, _ metadata: Logger.Metadata = [:]) {
            let now = DispatchTime.now().uptimeNanoseconds
            var all = metadata
            all["ms"] = "\((now - phase) / 1_000_000)"
            // /proc is read only when the line is written.
            if logger.logLevel <= .debug, let resident = Self.residentMegabytes() { all["rss_mb"] = "\(resident)" }
            logger.debug("\(name)", metadata: all)
            phase = now
        }
        // The reports folder is read while the directory answers: the directory read
        // mostly waits on the server, parsing reports is CPU work on every core. Its
        // outcome is looked at only where the sequential run looked at it (after the
        // directory), so a failed directory read still ends the run the same way.
        let folder = config.devices.reports
        var isDirectory: ObjCBool = false
        let folderReadable = FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory)
            && isDirectory.boolValue && access(folder, R_OK | X_OK) == 0
        let reportsRead = folderReadable ? BackgroundReportsRead(path: folder, limits: config.reportLimits()) : nil
        let connection: LDAPConnection
        do {
            connection = try await connector.openRead()
        } catch {
            throw RunFailure(.failure, "cannot connect to \(config.ldap.uri): \(error)")
        }
        var leaseSeen: LeaseSeen?
        if let leftoverLeaseRuns {
            do {
                leaseSeen = try await Lease.observe(connection, bindingsBase: config.bindings.searchBase, now: clock(),
                                                    leftover: leftoverLeaseRuns)
            } catch {
                await connection.close()
                if case .held = error { throw RunFailure(.lockHeld, error.description) }
                throw RunFailure(.failure, error.description)
            }
        }
        summary["connect_ms"] = Self.millis(since: phase)
        lap("connected", ["uri": "\(config.ldap.uri)"])
        var snapshot: DirectorySnapshot
        do {
            defer { reportsRead?.directoryReadDone() }
            snapshot = try await DirectoryReader(config: config).read(connection)
        } catch {
            await connection.close()
            throw RunFailure(.failure, error.description)
        }
        for (key, nanos) in snapshot.phaseNanos { summary[key] = "\(nanos / 1_000_000)" }
        if !keepConnection { await connection.close() }
        logDirectoryWarnings(snapshot.warnings + snapshot.problems)
        for reference in snapshot.skippedReferences {
            logger.debug("search reference to another naming context of the same server skipped",
                         metadata: ["reference": "\(reference)"])
        }
        lap("directory read", [
            "users": "\(snapshot.users.count)", "device_entries": "\(snapshot.deviceEntries)",
            "connections": "\(snapshot.connections.count)", "binding_groups": "\(snapshot.bindingGroups.count)",
        ])

        // A missing or unreadable folder would defer every device silently: a failure.
        guard let reportsRead else {
            if keepConnection { await connection.close() }
            throw RunFailure(.failure, "[devices] reports: \(config.devices.reports) is not a readable folder; "
                + "check the path, its permissions and that it is mounted")
        }
        // Planning starts on the directory's part (users, device entries, connections) while
        // the reports are still parsed; the reports are added when they are in.
        let layout = config.layout(), policy = config.corePolicy()
        let directoryPart = PlanInput(
            users: snapshot.users, connections: snapshot.connections, knownDevices: snapshot.knownDevices,
            reports: [], problems: [], bindingGroups: snapshot.bindingGroups, layout: layout, policy: policy,
            now: 0)
        let underway = Task.detached {
            Planner.begin(directoryPart, releasingConnections: releasingConnections)
        }
        if releasingConnections { snapshot.connections = [] }  // the planner's copy is then the only one
        let (reports, reportsNanos) = await reportsRead.value
        summary["reports_ms"] = "\(reportsNanos / 1_000_000)"
        if let fatal = reports.fatal {
            // Over [devices] max_reports_size: stop before the memory is spent (exit 5).
            if keepConnection { await connection.close() }
            throw RunFailure(.failure, fatal)
        }
        lap("reports read", ["reports": "\(reports.reports.count)", "problems": "\(reports.problems.count)"])
        for warning in reports.warnings.prefix(200) {
            logger.warning("\(BridgeRunner.where(warning)): \(warning.message)")
        }
        for problem in reports.problems.prefix(200) {
            logger.warning("\(BridgeRunner.where(problem)): \(problem.message)",
                           metadata: problem.device.map { ["device": "\($0)"] } ?? [:])
        }
        let hidden = max(0, reports.warnings.count - 200) + max(0, reports.problems.count - 200)
        if hidden > 0 { logger.warning("\(hidden) more report problems and warnings not shown (see the plan's errors)") }

        // Screened (R8 max_clock_skew), so explain shows the reports the plan used.
        let input = Planner.screened(PlanInput(
            users: snapshot.users, connections: snapshot.connections, knownDevices: snapshot.knownDevices,
            reports: reports.reports, problems: reports.problems + snapshot.problems, bindingGroups: snapshot.bindingGroups,
            layout: layout, policy: policy, now: clock()))
        let begun = await underway.value
        // The free memory the planner's directory part left (its sorting and resolving) goes
        // back to the system before the device stage adds the decisions: the peak is then.
        _ = CHardening_release_free_memory()
        let plan = begun.finish(input)
        summary["plan_ms"] = Self.millis(since: phase)
        lap("planned", ["changes": "\(plan.changes.count)", "decisions": "\(plan.decisions.count)"])
        // The planner's state is let go with the inputs (`dropInputs`), not here on this thread.
        let prepared = PreparedRun(config: config, connector: connector, snapshot: snapshot, reports: reports,
                                   input: input, plan: plan, planning: begun)
        return (prepared, connection, leaseSeen)
    }

    func refusalsFor(_ prepared: PreparedRun, allowUnbinds: Int?) -> [SafetyRefusal] {
        SafetyCheck.refusals(plan: prepared.plan, users: prepared.snapshot.users.count,
                             bindingGroups: prepared.snapshot.bindingGroups, layout: prepared.input.layout,
                             unreadableEntries: prepared.snapshot.unreadableEntries,
                             limits: prepared.config.safety, allowUnbinds: allowUnbinds)
    }

    /// Writes the plan's changes: to `write_uri` on a connection of its own when set,
    /// else on the read connection.
    func write(_ plan: Plan, prepared: PreparedRun, readConnection: LDAPConnection, lease: Lease? = nil,
               draft: RunRecordDraft? = nil) async -> ApplyResult {
        let connector = prepared.connector
        guard plan.hasChanges else {
            await readConnection.close()
            return ApplyResult()
        }
        var first: LDAPConnection? = readConnection
        if connector.hasSeparateWriteURI {
            await readConnection.close()
            first = nil
        }
        let applier = Applier(connector: connector, layout: prepared.input.layout, uri: connector.writeURI,
                              connection: first, options: applyOptions, logger: logger)
        if let lease { applier.leaseCheck = { await lease.problem() } }
        if let draft { applier.appliedSink = { draft.append($0) } }
        let result = await applier.apply(plan.changes)
        await applier.close()
        for change in result.applied {
            logger.debug("change", metadata: ["op": "\(change.op.rawValue)", "dn": "\(change.dn)",
                                              "values": .array(change.values.map { .string($0) })])
        }
        return result
    }

    // MARK: - Output and diagnostics

    /// Writes results to stdout, or atomically to `file` (a temporary file renamed over it).
    func emit(_ text: String, to file: String?) throws(RunFailure) {
        guard let file else {
            output.write(text)
            return
        }
        try emit(to: file) { writeFully($0, text) }
    }

    /// `emit` of a rendered report, its parts written in order; returns the nanoseconds
    /// spent in the writes (`OutputSink.write`).
    @discardableResult
    func emit(_ report: RenderedReport, to file: String?) throws(RunFailure) -> UInt64 {
        guard let file else { return output.write(report) }
        var writing: UInt64 = 0
        try emit(to: file) { writeFully($0, report, writing: &writing) }
        return writing
    }

    /// Writes `file`: a regular file (or a new one) atomically, `write` filling a temporary
    /// file renamed over it; anything else that is there (`/dev/null`, a FIFO, a terminal,
    /// `/dev/stdout`, or a symbolic link to one) is written in place, as the shell's `>`
    /// would: renaming over it would replace a device node with a file (as root,
    /// `--output /dev/null` did). The temporary file is created new (`O_EXCL`, never
    /// through a symbolic link) next to `file`.
    private func emit(to file: String, _ write: (Int32) -> Bool) throws(RunFailure) {
        func failure(_ message: String) -> RunFailure { RunFailure(.failure, "cannot write \(file): \(message)") }
        var target = stat()
        if stat(file, &target) == 0 {
            switch target.st_mode & S_IFMT {
            case S_IFREG: break
            case S_IFDIR: throw failure("it is a folder")
            default:
                let fd = open(file, O_WRONLY | O_CLOEXEC | O_NOCTTY)
                guard fd >= 0 else { throw failure(String(cString: strerror(errno))) }
                let written = write(fd)
                let message = String(cString: strerror(errno))
                if close(fd) != 0 || !written { throw failure(written ? String(cString: strerror(errno)) : message) }
                return
            }
        }
        let temporary = file + ".tmp-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw failure(String(cString: strerror(errno))) }
        if fchmod(fd, 0o640) != 0 || !write(fd) {
            let message = String(cString: strerror(errno))
            close(fd)
            unlink(temporary)
            throw failure(message)
        }
        if close(fd) != 0 {
            let message = String(cString: strerror(errno))
            unlink(temporary)
            throw failure(message)
        }
        if rename(temporary, file) != 0 {
            let message = String(cString: strerror(errno))
            unlink(temporary)
            throw failure(message)
        }
    }

    /// Logs a failure and returns its exit status.
    func report(_ error: Error) -> ExitStatus {
        if let failure = error as? RunFailure {
            logger.error("\(failure.message)")
            for detail in failure.details { logger.error("\(detail)") }
            return failure.status
        }
        logger.error("\(error)")
        return .failure
    }

    func logDirectoryWarnings(_ warnings: [InputProblem]) {
        for warning in warnings.prefix(200) {
            logger.warning("\(warning.message)", metadata: ["dn": "\(warning.source)"])
        }
        if warnings.count > 200 { logger.warning("\(warnings.count - 200) more directory warnings not shown") }
    }

    func logWriteFailures(_ result: ApplyResult, total: Int, layout: BindingLayout) {
        let counts = "wrote \(result.applied.count) of \(total) changes (\(result.alreadyDone.count) already in place); "
            + "\(result.failed.count) refused, \(result.notWritten.count) not written"
            + (result.nextRunConverges ? "; the next run converges" : "; the next run fails the same way until the cause is fixed")
        logger.error("\(counts)")
        var fixes: [String] = []
        for code in result.failedCodes where !WriteRefusal.isTransient(code) {
            if let fix = WriteRefusal.fix(code: code, layout: layout), !fixes.contains(fix) { fixes.append(fix) }
        }
        for fix in fixes { logger.error("fix: \(fix)") }
        if let gaveUp = result.gaveUp { logger.error("gave up: \(gaveUp)") }
        let limit = 200
        for change in result.applied.prefix(limit) {
            logger.error("written", metadata: ["change": "\(Applier.describe(change))"])
        }
        for (change, error) in result.failed.prefix(limit) {
            logger.error("refused", metadata: ["change": "\(Applier.describe(change))", "error": "\(error)"])
        }
        for change in result.notWritten.prefix(limit) {
            logger.error("not written", metadata: ["change": "\(Applier.describe(change))"])
        }
        let hidden = max(0, result.applied.count - limit) + max(0, result.failed.count - limit)
            + max(0, result.notWritten.count - limit)
        if hidden > 0 { logger.error("\(hidden) more not listed here; the run record lists them all") }
    }

    static func `where`(_ problem: InputProblem) -> String {
        problem.source + (problem.line.map { ":\($0)" } ?? "")
    }

    static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "unknown" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    // MARK: - The summary line

    /// The process's resident set now, in MiB (Linux `/proc/self/statm`), for the debug
    /// line after each phase; nil where it cannot be read.
    static func residentMegabytes() -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return nil }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return nil }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE))) / 1_048_576
    }

    /// Milliseconds since `start` (an uptime in nanoseconds), as the summary line gives them.
    static func millis(since start: UInt64) -> Logger.MetadataValue {
        "\((DispatchTime.now().uptimeNanoseconds - start) / 1_000_000)"
    }

    func start(command: String) {
        startedNanos = DispatchTime.now().uptimeNanoseconds
        summary = ["command": "\(command)"]
        metricsFile = nil
        metrics = RunMetrics(command: command, exitCode: 0, finishedAt: 0, durationSeconds: 0)
    }

    func note(plan: Plan?, written: Int) {
        if let plan { metrics.record(plan, written: written) } else { metrics.changesWritten = written }
        let s = plan?.summary ?? Summary()
        summary["takeover"] = "\(s.takeover)"
        summary["provision"] = "\(s.provision)"
        summary["bound"] = "\(s.bound)"
        summary["unbind"] = "\(s.unbind)"
        summary["deferred"] = "\(s.deferred)"
        summary["conflicts"] = "\(plan?.conflicts.count ?? 0)"
        summary["changes"] = "\(s.changes)"
        summary["written"] = "\(written)"
    }

    /// The metrics file (when configured) and the one summary line of the run.
    func finish(_ status: ExitStatus) {
        if summary["takeover"] == nil { note(plan: nil, written: 0) }
        let nanos = DispatchTime.now().uptimeNanoseconds - startedNanos
        let elapsed = nanos / 1_000_000
        if let metricsFile {
            metrics.exitCode = status.rawValue
            metrics.finishedAt = clock()
            metrics.durationSeconds = Double(nanos) / 1e9
            do {
                try MetricsFile.write(metrics, to: metricsFile)
            } catch {
                logger.error("cannot write the metrics file: \(error.message)", metadata: ["metrics_file": "\(metricsFile)"])
            }
        }
        summary["duration_ms"] = "\(elapsed)"
        summary["exit"] = "\(status.rawValue)"
        let level: Logger.Level = status.severity >= ExitStatus.safetyLimit.severity ? .error : .info
        logger.log(level: level, "run finished", metadata: summary)
    }
}

/// The reports folder read on a thread of its own (it blocks on every core while it
/// parses), started before the directory is read; `value` waits for it.
final class BackgroundReportsRead: Sendable {
    private let task: Task<(ReportsReadResult, UInt64), Never>
    /// One parser runs while the directory answers (slapd and the reader of its answers
    /// need the other processor); the rest join once `directoryReadDone()` is called.
    private let gate = WorkerGate()

    init(path: String, limits: ReportLimits) {
        let gate = self.gate
        task = Task {
            await withCheckedContinuation { continuation in
                DispatchQueue.global(qos: .userInitiated).async {
                    let started = DispatchTime.now().uptimeNanoseconds
                    let result = ReportsFolder.read(path: path, limits: limits, gate: gate)
                    // The parsers' scratch memory (file bytes, parse trees), spread over
                    // every thread's heap, is free now: given back before planning adds its own.
                    _ = CHardening_release_free_memory()
                    continuation.resume(returning: (result, DispatchTime.now().uptimeNanoseconds - started))
                }
            }
        }
    }

    /// The directory read is over (or failed): every parser may run.
    func directoryReadDone() { gate.open() }

    /// The result and how long the read took, in nanoseconds.
    var value: (ReportsReadResult, UInt64) {
        get async { await task.value }
    }
}
