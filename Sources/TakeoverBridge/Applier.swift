// Writing a plan's changes (docs/product.md sections 6 and 8a).
//
// - The LDAP operations are exactly `ChangeLDIF.operations(plan.changes)`, the grouping
//   `plan --format ldif` prints: an add-entry alone, or consecutive changes with the same
//   dn and subject as one atomic modify of single values.
// - Add-entries and modifies are pipelined together (window 64). Operations on the same
//   entry are only in flight together when they commute (different, non-nil subjects, no
//   add-entry); anything else waits for the next wave, so per-entry order is kept while
//   slapd runs requests in parallel. After a lost connection the answers received stand
//   and only the operations whose outcome is unknown are redone.
// - "value exists" / "no such value" on a single value counts as done; a combined modify
//   failing that way is retried split, each value judged alone; an add-entry that finds
//   the entry present becomes value adds on it.
// - A referral (a read-only replica) is followed only to a server named in `[ldap] uri`
//   or `write_uri` (compared parsed): connect to that configured URI with the same
//   options and credentials, redo the write, and keep writing there. Never success.
//   Any other target, or a URL that does not parse, is refused and never contacted:
//   the run stops, and the writes it answered count as not written.
// - Before every wave and chunk the run's lease (Lease.swift) is asked: once it is lost
//   or cannot be renewed, nothing more is written.
// - A lost connection: bounded reconnects with backoff, then only what is not known done
//   is redone. Past the bound: stop, and report what was written and what was not.

import Logging
import LDAPClient
import TakeoverCore

/// What an apply did, change by change (each `Change` as planned, or one value of it
/// when a combined operation had to be split).
package struct ApplyResult: Sendable {
    /// Changes the server performed for this run (inverted in the undo file).
    package var applied: [Change] = []
    /// Changes that were already in place.
    package var alreadyDone: [Change] = []
    /// Changes the server refused, with its error.
    package var failed: [(change: Change, error: String)] = []
    /// Changes never attempted or whose outcome stayed unknown because the run gave up.
    package var notWritten: [Change] = []
    /// Why the run gave up (the connection could not be re-established), if it did.
    package var gaveUp: String?
    /// Referrals followed ("from -> to").
    package var referralsFollowed: [String] = []
    /// Connections re-established after a loss.
    package var reconnects = 0

    package init() {}

    package var isComplete: Bool { failed.isEmpty && notWritten.isEmpty && gaveUp == nil }

    /// The LDAP result code of each refusal, in the order of `failed`.
    package var failedCodes: [LDAPResultCode] = []

    mutating func refuse(_ changes: [Change], _ error: LDAPError) {
        failed += changes.map { ($0, error.description) }
        failedCodes += Array(repeating: error.code, count: changes.count)
    }

    /// Whether another run, unchanged, can be expected to finish the job: nothing was
    /// refused for a reason that stays (schema, access rights, the server's own checks).
    package var nextRunConverges: Bool {
        failedCodes.allSatisfy { WriteRefusal.isTransient($0) }
    }

    package var failures: [RunRecord.Failure] {
        failed.map { RunRecord.Failure(change: Applier.describe($0.change), error: $0.error) }
            + notWritten.map { RunRecord.Failure(change: Applier.describe($0), error: "not written: " + (gaveUp ?? "stopped")) }
    }
}

/// Tunables of the write path (tests shorten the backoff).
package struct ApplyOptions: Sendable {
    /// Requests in flight on one connection (slapd drops a client near 1000).
    package var window: Int = 64
    /// Requests handed to one `writePipelined` call; bounds how much is redone after a loss.
    package var chunk: Int = 1024
    /// Sleeps before each reconnect attempt after a loss, in seconds.
    package var backoff: [Double] = [0.5, 1, 2]
    /// Most connection losses survived in one run.
    package var maxLosses: Int = 5
    /// Most referral hops followed for one write.
    package var maxReferralHops: Int = 3

    package init() {}
}

/// One LDAP operation of the plan.
struct WriteOperation: Sendable {
    var dn: String
    var subject: String?
    var changes: [Change]
    var isAdd: Bool { changes.first?.op == .addEntry }

    var modifications: [Modification] {
        changes.map { Modification(Applier.modOp($0.op), $0.attribute, $0.values) }
    }
}

/// The run gave up: the connection could not be re-established.
struct GiveUp: Error {
    var message: String
}

package final class Applier {
    let connector: Connector
    let layout: BindingLayout
    let options: ApplyOptions
    let logger: Logger
    /// Where writes go now (changes when a referral is followed).
    private(set) var uri: String
    private var connection: LDAPConnection?
    private var losses = 0
    var result = ApplyResult()
    /// Asked before every wave and chunk: a reason to stop writing (the run's lease in
    /// the directory was lost or could not be renewed), or nil.
    package var leaseCheck: (@Sendable () async -> String?)?
    /// Handed the changes the server performed as they become known, in the order of
    /// `result.applied` (the run record drafted while the writes go on: RunRecordDraft).
    package var appliedSink: (@Sendable ([Change]) -> Void)?
    /// How much of `result.applied` the sink has been handed.
    private var handedToSink = 0

    /// `connection`: an open, bound connection to `uri` to start with (nil: opened on first use).
    package init(connector: Connector, layout: BindingLayout, uri: String, connection: LDAPConnection?,
                options: ApplyOptions = ApplyOptions(), logger: Logger) {
        self.connector = connector
        self.layout = layout
        self.uri = uri
        self.connection = connection
        self.options = options
        self.logger = logger
    }

    /// Applies `changes` in order; never throws: everything is in the result.
    package func apply(_ changes: [Change]) async -> ApplyResult {
        var remaining = ChangeLDIF.operations(changes).map { slice in
            WriteOperation(dn: slice.first?.dn ?? "", subject: slice.first?.subject, changes: Array(slice))
        }
        while !remaining.isEmpty {
            let (wave, rest) = Applier.nextWave(remaining)
            do {
                try await run(wave)
            } catch {
                result.gaveUp = error.message
                for operation in rest { result.notWritten += operation.changes }
                break
            }
            remaining = rest
        }
        handAppliedToSink()
        return result
    }

    /// Hands the sink what `result.applied` gained since the last call (it only grows).
    private func handAppliedToSink() {
        guard let appliedSink, handedToSink < result.applied.count else { return }
        appliedSink(Array(result.applied[handedToSink...]))
        handedToSink = result.applied.count
    }

    /// Closes the write connection (when this applier opened or took it over).
    package func close() async {
        if let connection { await connection.close() }
        connection = nil
    }

    // MARK: Waves

    /// The longest prefix-respecting set of operations that may be in flight together:
    /// per entry, in plan order, stopping at the first one that does not commute with
    /// those already taken. Operations on other entries are independent.
    static func nextWave(_ operations: [WriteOperation]) -> (wave: [WriteOperation], rest: [WriteOperation]) {
        struct Taken {
            var hasAdd = false
            var hasNilSubject = false
            var subjects: Set<String> = []
        }
        var taken: [String: Taken] = [:]
        var blocked: Set<String> = []
        var wave: [WriteOperation] = []
        var rest: [WriteOperation] = []
        for operation in operations {
            let key = operation.dn.lowercased()
            if blocked.contains(key) {
                rest.append(operation)
                continue
            }
            if let t = taken[key] {
                let subject = operation.subject?.lowercased()
                let conflicts = operation.isAdd || t.hasAdd || t.hasNilSubject || subject == nil
                    || t.subjects.contains(subject ?? "")
                if conflicts {
                    blocked.insert(key)
                    rest.append(operation)
                    continue
                }
            }
            var t = taken[key] ?? Taken()
            if operation.isAdd { t.hasAdd = true }
            if let subject = operation.subject { t.subjects.insert(subject.lowercased()) } else { t.hasNilSubject = true }
            taken[key] = t
            wave.append(operation)
        }
        return (wave, rest)
    }

    // MARK: Running a wave

    private func run(_ wave: [WriteOperation]) async throws(GiveUp) {
        var start = 0
        while start < wave.count {
            if let check = leaseCheck, let problem = await check() {
                for operation in wave[start...] { result.notWritten += operation.changes }
                throw GiveUp(message: problem)
            }
            let end = min(start + max(options.chunk, 1), wave.count)
            do {
                try await writePipelined(Array(wave[start..<end]))
                handAppliedToSink()
            } catch {
                for operation in wave[end...] { result.notWritten += operation.changes }
                throw error
            }
            start = end
        }
    }

    /// Pipelined add-entries and modifies (one wave: no two touch the same entry in a way
    /// that could interfere) with reconnects and referral following. After a lost
    /// connection the outcomes received are kept and only the unknown ones are redone. On
    /// giving up, the operations whose outcome is not known are added to `notWritten`
    /// before throwing.
    private func writePipelined(_ operations: [WriteOperation]) async throws(GiveUp) {
        var pending = Array(operations.indices)
        var uncertain = Set<Int>()
        var hops = 0
        while !pending.isEmpty {
            let connection: LDAPConnection
            do {
                connection = try await liveConnection()
            } catch {
                for i in pending { result.notWritten += operations[i].changes }
                throw error
            }
            let requests = pending.map { Applier.request(operations[$0]) }
            var outcomes: [Result<Void, LDAPError>?]
            var loss: LDAPError?
            do {
                outcomes = try await connection.writePipelined(requests, window: options.window)
            } catch {
                guard error.isConnectionLost else {
                    // Not a loss (a local failure building requests): each fails alone.
                    for i in pending {
                        result.refuse(operations[i].changes, error)
                    }
                    return
                }
                // What the server answered stands; every other request sent may or may
                // not have been applied.
                outcomes = error.partialResults ?? []
                if outcomes.count != requests.count { outcomes = Array(repeating: nil, count: requests.count) }
                loss = error
            }
            var unknown: [Int] = []
            var referred: [Int] = []
            var referralURIs: [String] = []
            // Operations retried one by one: split into single values, or with the
            // placeholder member added so a MUST-member group does not become empty.
            var retries: [(index: Int, kind: Retry)] = []
            for (position, outcome) in outcomes.enumerated() {
                let i = pending[position]
                let operation = operations[i]
                guard let outcome else {
                    uncertain.insert(i)
                    unknown.append(i)
                    continue
                }
                switch outcome {
                case .success:
                    result.applied += operation.changes
                case .failure(let error):
                    if error.code == .referral {
                        referred.append(i)
                        if referralURIs.isEmpty { referralURIs = error.referrals }
                    } else if operation.isAdd {
                        if error.isAlreadyDone || error.code == .entryAlreadyExists {
                            if uncertain.contains(i) {
                                // Created by this run just before the connection dropped.
                                result.applied += operation.changes
                                logger.warning("entry created before the connection was lost", metadata: ["dn": "\(operation.dn)"])
                            } else {
                                retries.append((i, .addValues))
                            }
                        } else {
                            result.refuse(operation.changes, error)
                        }
                    } else if error.isAlreadyDone {
                        record(alreadyDone: operation.changes, uncertain: uncertain.contains(i))
                    } else if Applier.isValueConflict(error) && Applier.singleValues(operation.changes).count > 1 {
                        retries.append((i, .split))
                    } else if error.code == .objectClassViolation, layout.placeholderMember != nil,
                              operation.changes.contains(where: { $0.op == .deleteMember }) {
                        retries.append((i, .placeholder))
                    } else {
                        result.refuse(operation.changes, error)
                    }
                }
            }
            if let loss {
                do {
                    try await connectionLost(loss)
                } catch {
                    for i in unknown + referred { result.notWritten += operations[i].changes }
                    for retry in retries { result.notWritten += operations[retry.index].changes }
                    throw error
                }
            }
            for (position, retry) in retries.enumerated() {
                do {
                    switch retry.kind {
                    case .addValues:
                        logger.notice("binding group exists already; adding its values instead",
                                      metadata: ["dn": "\(operations[retry.index].dn)"])
                        if let change = operations[retry.index].changes.first { try await addValues(of: change) }
                    case .split:
                        try await split(operations[retry.index], uncertain: uncertain.contains(retry.index))
                    case .placeholder:
                        try await withPlaceholder(operations[retry.index])
                    }
                } catch {
                    for later in retries[(position + 1)...] { result.notWritten += operations[later.index].changes }
                    for j in unknown + referred { result.notWritten += operations[j].changes }
                    throw error
                }
            }
            pending = (unknown + referred).sorted()
            if !referred.isEmpty {
                hops += 1
                do {
                    try await follow(referralURIs, hops: hops, dn: operations[referred[0]].dn)
                } catch {
                    for i in pending { result.notWritten += operations[i].changes }
                    throw error
                }
            }
        }
    }

    /// How an operation whose pipelined attempt failed is retried alone.
    private enum Retry {
        /// An add-entry that found the entry: its values added one by one.
        case addValues
        /// A combined modify that met "value exists" / "no such value": each value alone.
        case split
        /// A member delete refused (65): with the placeholder member added first.
        case placeholder
    }

    /// The LDAP request of one operation.
    static func request(_ operation: WriteOperation) -> WriteRequest {
        if operation.isAdd, let change = operation.changes.first {
            return .add(dn: change.dn, attributes: change.attributes.map { ($0.name, $0.values) })
        }
        return .modify(ModifyRequest(dn: operation.dn, modifications: operation.modifications))
    }

    /// The values of an add-entry that exists: members and records added one at a time.
    private func addValues(of change: Change) async throws(GiveUp) {
        var singles: [Change] = []
        for attribute in change.attributes {
            let op: ChangeOp
            if attribute.name.caseInsensitiveEquals(layout.memberAttribute) {
                op = .addMember
            } else if attribute.name.caseInsensitiveEquals(layout.recordAttribute) {
                op = .addRecord
            } else {
                continue  // objectClass, cn: the entry has them
            }
            for value in attribute.values {
                singles.append(Change(dn: change.dn, op: op, attribute: attribute.name, values: [value], subject: change.subject))
            }
        }
        try await writeSingles(singles, uncertain: false)
    }

    /// A combined modify that failed with "value exists" / "no such value": every value alone.
    private func split(_ operation: WriteOperation, uncertain: Bool) async throws(GiveUp) {
        try await writeSingles(Applier.singleValues(operation.changes), uncertain: uncertain)
    }

    /// Single-value changes one at a time; on giving up, the one in hand and those after
    /// it are recorded as not written.
    private func writeSingles(_ singles: [Change], uncertain: Bool) async throws(GiveUp) {
        for (index, change) in singles.enumerated() {
            do {
                try await writeSingle(change, uncertain: uncertain)
            } catch {
                result.notWritten += singles[index...]
                throw error
            }
        }
    }

    /// Deleting the last member of a group whose class requires one (groupOfNames made
    /// without the placeholder, by a person or an old version): the same modify with the
    /// placeholder member added first, atomically, so the group stays valid.
    private func withPlaceholder(_ operation: WriteOperation) async throws(GiveUp) {
        guard let placeholder = layout.placeholderMember else { return }
        let add = Change(dn: operation.dn, op: .addMember, attribute: layout.memberAttribute, values: [placeholder])
        do {
            try await writeWithPlaceholder(operation, add: add, placeholder: placeholder)
        } catch {
            result.notWritten += operation.changes
            throw error
        }
    }

    private func writeWithPlaceholder(_ operation: WriteOperation, add: Change, placeholder: String) async throws(GiveUp) {
        var uncertain = false
        let modifications = [Modification(.add, add.attribute, add.values)] + operation.modifications
        if let error = try await modify(dn: operation.dn, modifications, uncertain: &uncertain) {
            if uncertain && Applier.isValueConflict(error) {
                // Done by the attempt whose answer was lost.
                result.applied += [add] + operation.changes
            } else {
                result.refuse(operation.changes, error)
            }
            return
        }
        logger.notice("the binding group's last member is gone; the placeholder member keeps it valid",
                      metadata: ["dn": "\(operation.dn)", "placeholder": "\(placeholder)"])
        result.applied += [add] + operation.changes
    }

    /// One single-value modification, judged alone.
    private func writeSingle(_ change: Change, uncertain initiallyUncertain: Bool) async throws(GiveUp) {
        var uncertain = initiallyUncertain
        let modification = Modification(Applier.modOp(change.op), change.attribute, change.values)
        if let error = try await modify(dn: change.dn, [modification], uncertain: &uncertain) {
            if error.isAlreadyDone || Applier.isValueConflict(error) {
                record(alreadyDone: [change], uncertain: uncertain)
            } else {
                result.refuse([change], error)
            }
            return
        }
        result.applied.append(change)
    }

    /// One modify, sent until the server answers it: a lost connection is reopened (the
    /// attempt in flight may have been applied, so `uncertain` becomes true) and a referral
    /// is followed. Returns nil when the modify succeeded, else the server's error.
    private func modify(dn: String, _ modifications: [Modification], uncertain: inout Bool)
        async throws(GiveUp) -> LDAPError? {
        var hops = 0
        while true {
            let connection = try await liveConnection()
            do {
                try await connection.modify(dn: dn, modifications)
                return nil
            } catch {
                if error.isConnectionLost {
                    uncertain = true
                    try await connectionLost(error)
                    continue
                }
                if error.code == .referral {
                    hops += 1
                    try await follow(error.referrals, hops: hops, dn: dn)
                    continue
                }
                return error
            }
        }
    }

    /// Already in place. When the first attempt's outcome was unknown (the connection
    /// dropped with it in flight), the plan — read before any write — says it was not in
    /// place, so this run made it: it counts as applied (and is undone by the undo file).
    private func record(alreadyDone changes: [Change], uncertain: Bool) {
        if uncertain {
            result.applied += changes
        } else {
            result.alreadyDone += changes
        }
    }

    // MARK: Connections

    private func liveConnection() async throws(GiveUp) -> LDAPConnection {
        if let connection { return connection }
        do {
            let opened = try await connector.open(uri: uri)
            connection = opened
            return opened
        } catch {
            // The first connection to the write server: treat like a loss (retries).
            try await connectionLost(error)
            if let connection { return connection }
            throw GiveUp(message: "no connection to \(uri)")
        }
    }

    /// Bounded reconnects with backoff; throws `GiveUp` past the bounds.
    private func connectionLost(_ error: LDAPError) async throws(GiveUp) {
        if let old = connection { await old.close() }
        connection = nil
        losses += 1
        if losses > options.maxLosses {
            throw GiveUp(message: "the connection to \(uri) was lost \(losses) times; last: \(error)")
        }
        logger.warning("connection lost; reconnecting", metadata: ["uri": "\(uri)", "error": "\(error)"])
        var last = error
        for delay in options.backoff {
            if delay > 0 { try? await Task.sleep(nanoseconds: UInt64(delay * 1_000_000_000)) }
            do {
                connection = try await connector.open(uri: uri)
                result.reconnects += 1
                logger.notice("reconnected", metadata: ["uri": "\(uri)"])
                return
            } catch {
                last = error
            }
        }
        throw GiveUp(message: "cannot reconnect to \(uri) after \(options.backoff.count) attempts: \(last)")
    }

    /// Switches writes to the server a referral names (the provider behind a read-only
    /// replica), when that server is one of `[ldap] uri` or `write_uri`: the connection
    /// goes to the configured URI, never to the referral's text. Every other URL, and
    /// any that does not parse strictly, is refused and never contacted; when no URL of
    /// the referral may be followed the run stops (exit 5) naming them. The referral is
    /// never taken as success: the caller redoes the write on the followed server.
    private func follow(_ referrals: [String], hops: Int, dn: String) async throws(GiveUp) {
        guard hops <= options.maxReferralHops else {
            throw GiveUp(message: "more than \(options.maxReferralHops) referrals for '\(dn)'; last: "
                + referrals.map { LDAPURLError.visible($0) }.joined(separator: " "))
        }
        let target: String
        switch connector.followableTarget(of: referrals, for: dn, logger: logger) {
        case .success(let uri): target = uri
        case .failure(let refusal): throw GiveUp(message: refusal.message)
        }
        do {
            let opened = try await connector.open(uri: target)
            if let old = connection { await old.close() }
            logger.notice("following a referral; writes go to the referred server",
                          metadata: ["from": "\(uri)", "to": "\(target)", "dn": "\(dn)"])
            result.referralsFollowed.append("\(uri) -> \(target)")
            connection = opened
            uri = target
        } catch {
            throw GiveUp(message: "cannot follow the referral for '\(dn)' to \(target): \(error)")
        }
    }

    // MARK: Helpers

    static func modOp(_ op: ChangeOp) -> ModOp {
        switch op {
        case .addEntry, .addMember, .addRecord: .add
        case .deleteMember, .deleteRecord: .delete
        }
    }

    /// 20 attributeOrValueExists, 16 noSuchAttribute (the value to delete is absent).
    static func isValueConflict(_ error: LDAPError) -> Bool { error.code == .attributeOrValueExists || error.code == .noSuchAttribute }

    /// Every change cut to one value per change.
    static func singleValues(_ changes: [Change]) -> [Change] {
        var out: [Change] = []
        for change in changes {
            if change.values.count <= 1 {
                out.append(change)
            } else {
                for value in change.values {
                    var one = change
                    one.values = [value]
                    out.append(one)
                }
            }
        }
        return out
    }

    /// `add-member cn=lab,ou=bindings,dc=example,dc=org uid=alice,ou=people,...`
    package static func describe(_ change: Change) -> String {
        if change.op == .addEntry { return "add-entry \(change.dn)" }
        return "\(change.op.rawValue) \(change.dn) \(change.attribute): \(change.values.joined(separator: ", "))"
    }
}

// MARK: - Refused writes (issue 10 item 9)

/// What a refused write means and what to fix, by LDAP result code.
package enum WriteRefusal {
    /// busy (51), unavailable (52), timeLimitExceeded (3), adminLimitExceeded (11), and
    /// the client-side losses (-1 server down, -5 timeout, -11 connect error).
    package static func isTransient(_ code: LDAPResultCode) -> Bool {
        switch code {
        case .busy, .unavailable, .timeLimitExceeded, .adminLimitExceeded, .serverDown, .timeout, .connectError: true
        default: false
        }
    }

    /// The fix for a permanent refusal, naming the layout and the bindings base; nil for
    /// transient ones and codes without specific advice.
    package static func fix(code: LDAPResultCode, layout: BindingLayout) -> String? {
        let classes = layout.objectClasses.filter { $0.lowercased() != "top" }.joined(separator: ", ")
        switch code {
        case .insufficientAccessRights:
            return "grant the service account add, delete and write rights on \(layout.base) and its children "
                + "(slapd: an access rule; 389 DS: an ACI; AD: samba-tool dsacl set / delegation on that OU)"
        case .objectClassViolation:
            return "the entry does not fit its object class (\(classes)): check [bindings] object_class; with "
                + "takeoverBindingGroup load schema/takeover-bridge.schema, on Active Directory use \"group\""
        case .operationsError:
            return "the server refused the change (operations error); on Active Directory a groupOfNames or "
                + "takeoverBindingGroup binding group cannot change its members: set [bindings] object_class = "
                + "\"group\", move the old groups aside and run apply again"
        case .undefinedAttributeType, .invalidAttributeSyntax:
            return "the server does not know or accept the attribute \(layout.recordAttribute) or \(layout.memberAttribute): "
                + "check [bindings] object_class and the schema (doctor checks it)"
        case .constraintViolation:
            return "a constraint of the server refused the value (size, uniqueness or a plugin): read the diagnostic above"
        case .unwillingToPerform:
            return "the server is unwilling to perform the change: read the diagnostic above (AD: a protected or "
                + "system object, or a write that needs TLS)"
        case .strongerAuthRequired, .confidentialityRequired:
            return "the server requires a stronger or encrypted connection for writes: use ldaps:// or starttls = true"
        default:
            return nil
        }
    }
}
