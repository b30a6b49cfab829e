import LDAPSyntax

// Deciding every pair of each device (R4-R13) once users, devices and connections are
// indexed. Devices are independent, so they are processed in parallel chunks of the
// sorted device order; concatenating the chunks' output in order keeps it deterministic.

/// The read-only indexes the device stage works from. Everything is a `let` of value types:
/// safe to share between threads, no dynamic exclusivity checks on the hot path. A class,
/// so closures capture one reference instead of copying every index.
final class DeviceStage: Sendable {
    let input: PlanInput
    let layout: BindingLayout
    let policy: Policy
    let policyNames: Set<String>
    let placeholderNorm: String?
    let users: ContiguousArray<UserInfo>
    let byDN: [String: Int]
    let fieldHead: [String: Int]
    let fieldNext: [Int]
    let devices: ContiguousArray<DeviceInfo>
    /// Lower-cased stable id (entryUUID, objectGUID, nsUniqueId) -> rank, for ids that
    /// exactly one user has: a binding record carrying one follows its user to a new DN.
    let byStableID: [String: Int]
    /// Rank -> the user's earlier DNs known from records (see `Planning.formerDNsByRank`).
    let formerDNs: [Int: [String]]

    init(input: PlanInput, layout: BindingLayout, policy: Policy, policyNames: Set<String>, placeholderNorm: String?,
         users: ContiguousArray<UserInfo>, byDN: [String: Int], fieldHead: [String: Int],
         fieldNext: [Int], devices: ContiguousArray<DeviceInfo>, byStableID: [String: Int] = [:],
         formerDNs: [Int: [String]] = [:]) {
        self.byStableID = byStableID
        self.formerDNs = formerDNs
        self.input = input
        self.layout = layout
        self.policy = policy
        self.policyNames = policyNames
        self.placeholderNorm = placeholderNorm
        self.users = users
        self.byDN = byDN
        self.fieldHead = fieldHead
        self.fieldNext = fieldNext
        self.devices = devices
    }

    func user(_ rank: Int) -> DirectoryUser { input.users[Int(users[rank].source)] }

    /// The user's stable id, read in place (not a copy of the whole entry).
    func stableID(_ rank: Int) -> String? { input.users[Int(users[rank].source)].stableID }

    /// The user's earlier DNs known from records (usually none).
    func formerDNs(_ rank: Int) -> [String] { formerDNs.isEmpty ? [] : formerDNs[rank] ?? [] }

    /// The ranks of the users whose local name folds to `f` (a username without a field, or
    /// a field), in rank order.
    func localOwners(_ f: String) -> [Int] {
        var found: [Int] = []
        if var r = firstRank(named: f, in: users) {
            while r < users.count && users[r].foldedName == f {
                if !users[r].hasField { found.append(r) }
                r += 1
            }
        }
        var r = fieldHead[f] ?? -1
        while r >= 0 {
            found.append(r)
            r = fieldNext[r]
        }
        return found.sorted()
    }

    func name(_ d: Int) -> String {
        let dev = devices[d]
        if let s = dev.entrySpelling { return s }
        if dev.report >= 0 { return input.reports[dev.report].device }
        return dev.groupSpelling ?? dev.problemSpelling ?? dev.folded
    }

    struct Result {
        var decisions: [Decision] = []
        var changes: [Change] = []
        var conflicts: [Finding] = []
        var warnings: [Finding] = []
        var currentBindings = 0
    }

    /// Processes `order` (device indices, sorted) in parallel chunks and returns the output
    /// in that order. Each chunk writes its decisions and changes straight into the final
    /// arrays (`ChunkedOutput`), within an upper bound of what its devices can produce.
    func run(order: [Int], tuning: Planner.Tuning) -> Result {
        let chunks = order.count < tuning.parallelFrom ? 1 : max(1, tuning.chunks)
        let boundScale = max(1, tuning.boundScale)
        @Sendable func range(_ c: Int) -> Range<Int> { (order.count * c / chunks)..<(order.count * (c + 1) / chunks) }
        // Upper bounds. A decision is about a connected user or a user named by at least one
        // binding value. A connected pair makes at most two changes (member and record); any
        // other change removes or records at least one existing binding value; plus the
        // group entry.
        var bounds: [(first: Int, second: Int)] = []
        for c in 0..<chunks {
            var d = 0, ch = 0
            for k in range(c) {
                let dev = devices[order[k]]
                var values = 0
                for g in dev.groups { values += input.bindingGroups[g].members.count + input.bindingGroups[g].records.count }
                d += dev.connected.count + values
                ch += 1 + 2 * dev.connected.count + values
            }
            bounds.append((d / boundScale, ch / boundScale))
        }
        let out = ChunkedOutput.run(bounds: bounds) {
            (c: Int, decisions: inout Sink<Decision>, changes: inout Sink<Change>) -> ([Finding], [Finding], Int) in
            var out = DeviceOutput(decisions: decisions, changes: changes)
            for k in range(c) { self.processDevice(order[k], into: &out) }
            decisions = out.decisions
            changes = out.changes
            return (out.conflicts, out.warnings, out.currentBindings)
        }
        var result = Result(decisions: out.first, changes: out.second)
        for extra in out.extras {
            result.conflicts += extra.0
            result.warnings += extra.1
            result.currentBindings += extra.2
        }
        return result
    }

    // MARK: - One device

    func deferredReason(_ d: Int) -> String? {
        let dev = devices[d]
        if let twins = dev.twins { return Self.twinReason(twins, dn: dev.entryDN) }
        if dev.problem >= 0 { return "no valid report: " + input.problems[dev.problem].message }
        guard dev.report >= 0 else { return Reason.noReport }
        let r = input.reports[dev.report]
        let age = input.now - r.reportedAt
        if age > policy.activeWithin {
            return "inactive: newest report \(UTCTime.iso8601(r.reportedAt)) is \(UTCTime.age(age)) old (active_within \(UTCTime.duration(policy.activeWithin)))"
        }
        return nil
    }

    /// A decision waiting for the device's sort, with the range of its changes.
    private struct Pending {
        var decision: Decision
        var foldedUser: String
        var normDN: String
        var changes: Range<Int>

        /// The output order: by folded username, username, normalised DN, DN.
        @inline(__always)
        static func less(_ a: Pending, _ b: Pending) -> Bool {
            var c = stringCompare(a.foldedUser, b.foldedUser); if c != 0 { return c < 0 }
            c = stringCompare(a.decision.user, b.decision.user); if c != 0 { return c < 0 }
            c = stringCompare(a.normDN, b.normDN); if c != 0 { return c < 0 }
            return stringLess(a.decision.userDN, b.decision.userDN)
        }
    }

    func processDevice(_ d: Int, into out: inout DeviceOutput) {
        let deviceName = name(d)
        let deferred = deferredReason(d)
        let report: DeviceReport? = deferred == nil ? input.reports[devices[d].report] : nil

        // Binding groups of this device, primary first.
        let wantedDN = layout.groupDN(device: deviceName)
        var groups = devices[d].groups.map { (index: $0, norm: DNNormalizer.normalize(input.bindingGroups[$0].dn)) }
        // Only a sort of two or more compares (most devices have one group or none).
        let wantedNorm = groups.count > 1 ? DNNormalizer.normalize(wantedDN) : ""
        groups.sort { a, b in
            if (a.norm == wantedNorm) != (b.norm == wantedNorm) { return a.norm == wantedNorm }
            let c = stringCompare(a.norm, b.norm)
            return c != 0 ? c < 0 : stringLess(input.bindingGroups[a.index].dn, input.bindingGroups[b.index].dn)
        }
        if groups.count > 1 {
            let dns = groups.map { input.bindingGroups[$0.index].dn }
            out.warnings.append(Finding(
                kind: Kind.duplicateBindingGroup, value: deviceName, devices: [deviceName],
                message: "\(groups.count) binding groups name the device \(q(deviceName)): \(dns.joined(separator: "; ")); new bindings go to \(dns[0])",
                fix: "merge the members and records of the others into \(dns[0]) and delete them"))
        }
        let targetDN = groups.first.map { input.bindingGroups[$0.index].dn } ?? wantedDN
        let groupExists = !groups.isEmpty

        // Binding entries: one slot per user DN found in the groups (members and records).
        var slots: [BindingEntry] = []
        var slotOfRank: [Int: Int] = [:]
        var slotOfGone: [String: Int] = [:]
        // Most binding values name a connected user: match those before the global index.
        let connectedRanks = devices[d].connected
        var connectedByDN: [String: Int]?
        func rank(of norm: String) -> Int? {
            if connectedRanks.count <= 24 {
                for r in connectedRanks where users[r].normDN == norm { return r }
            } else {
                if connectedByDN == nil {
                    var m: [String: Int] = [:]
                    m.reserveCapacity(connectedRanks.count)
                    for r in connectedRanks { m[users[r].normDN] = r }
                    connectedByDN = m
                }
                if let r = connectedByDN?[norm] { return r }
            }
            return byDN[norm]
        }
        /// DNs a record with a stable id showed to be an earlier DN of a user (a rename or
        /// a move the server did not rewrite in member values): old DN -> rank.
        var movedFrom: [String: Int] = [:]
        func slot(_ norm: String, rank known: Int? = nil) -> Int {
            if let r = known ?? rank(of: norm) ?? movedFrom[norm] {
                if let k = slotOfRank[r] { return k }
                slotOfRank[r] = slots.count
                var e = BindingEntry(normDN: norm)
                e.user = r
                slots.append(e)
            } else {
                if let k = slotOfGone[norm] { return k }
                slotOfGone[norm] = slots.count
                slots.append(BindingEntry(normDN: norm))
            }
            return slots.count - 1
        }
        // Records first: one carrying a stable id names its user even after a DN change.
        var parsedRecords: [(group: Int, raw: String, record: BindingRecord, norm: String, rank: Int?)] = []
        for g in groups {
            for raw in input.bindingGroups[g.index].records {
                guard let rec = layout.parseRecord(raw) else { continue }
                let norm = DNNormalizer.normalize(rec.userDN)
                var owner: Int?
                if let id = rec.stableID, !byStableID.isEmpty, let r = byStableID[StableID.key(id)] {
                    owner = r
                    if users[r].normDN != norm && rank(of: norm) == nil { movedFrom[norm] = r }
                }
                parsedRecords.append((g.index, raw, rec, norm, owner))
            }
        }
        for g in groups {
            let group = input.bindingGroups[g.index]
            for raw in group.members {
                let n = DNNormalizer.normalize(raw)
                if n == placeholderNorm { continue }
                slots[slot(n)].members.append((g.index, raw))
            }
        }
        for p in parsedRecords {
            slots[slot(p.norm, rank: p.rank)].records.append((p.group, p.raw, p.record.localName))
        }
        // The input's order of values never shows (R14): sort by group, then value.
        if groups.count > 1 || slots.contains(where: { $0.members.count > 1 || $0.records.count > 1 }) {
            var position: [Int: Int] = [:]
            for (p, g) in groups.enumerated() { position[g.index] = p }
            for k in slots.indices where slots[k].members.count > 1 || slots[k].records.count > 1 {
                slots[k].members.sort { a, b in
                    a.group != b.group ? (position[a.group] ?? 0) < (position[b.group] ?? 0) : stringLess(a.raw, b.raw)
                }
                slots[k].records.sort { a, b in
                    a.group != b.group ? (position[a.group] ?? 0) < (position[b.group] ?? 0) : stringLess(a.raw, b.raw)
                }
            }
        }
        var boundRanks: [Int] = []
        boundRanks.reserveCapacity(slotOfRank.count)
        for (r, _) in slotOfRank { boundRanks.append(r) }
        boundRanks.sort()
        let gone = slotOfGone.keys.sorted(by: stringLess).compactMap { slotOfGone[$0] }
        /// Folded local name -> the slot of the managed binding that holds it and stays
        /// bound after this run (its user is connected, or held by a conflict).
        var heldNames: [String: Int] = [:]
        for (k, e) in slots.enumerated() where e.managed {
            out.currentBindings += 1
            if e.user >= 0 && (users[e.user].conflict != nil || sortedContains(connectedRanks, e.user)) {
                // Several holders of one name: the first in rank order, whatever the input order (R14).
                for rec in e.records {
                    let f = Folding.fold(rec.local)
                    if let other = heldNames[f], slots[other].user < e.user { continue }
                    heldNames[f] = k
                }
            }
        }
        func entry(_ r: Int) -> BindingEntry? { slotOfRank.isEmpty ? nil : slotOfRank[r].map { slots[$0] } }

        // Subjects: connected users and users with something in the groups, in rank order.
        let connected = connectedRanks
        var subjects: [(rank: Int, connected: Bool)] = []
        subjects.reserveCapacity(connected.count + boundRanks.count)
        var i = 0, j = 0
        while i < connected.count || j < boundRanks.count {
            if j == boundRanks.count || (i < connected.count && connected[i] < boundRanks[j]) {
                subjects.append((connected[i], true)); i += 1
            } else if i == connected.count || boundRanks[j] < connected[i] {
                subjects.append((boundRanks[j], false)); j += 1
            } else {
                subjects.append((connected[i], true)); i += 1; j += 1
            }
        }

        var pending: [Pending] = []
        pending.reserveCapacity(subjects.count + gone.count)
        var local: [Change] = []
        var newMembers: [String] = []
        var newRecords: [String] = []

        func emit(_ decision: consuming Decision, folded: String, norm: String, from start: Int) {
            pending.append(Pending(decision: decision, foldedUser: folded, normDN: norm, changes: start..<local.count))
        }
        func groupDN(_ g: Int) -> String { input.bindingGroups[g].dn }
        func unbindChanges(_ e: BindingEntry, subject: String) {
            // Per group: the member, then its records, so they apply as one modify.
            var byGroup: [Int] = []
            for m in e.members where !byGroup.contains(m.group) { byGroup.append(m.group) }
            for r in e.records where !byGroup.contains(r.group) { byGroup.append(r.group) }
            for g in byGroup {
                let members = e.members.filter { $0.group == g }.map(\.raw)
                let records = e.records.filter { $0.group == g }.map(\.raw)
                if !members.isEmpty {
                    local.append(Change(dn: groupDN(g), op: .deleteMember, attribute: layout.memberAttribute, values: members, subject: subject))
                }
                if !records.isEmpty {
                    local.append(Change(dn: groupDN(g), op: .deleteRecord, attribute: layout.recordAttribute, values: records, subject: subject))
                }
            }
        }
        /// Deletes record values, one change per group that holds some (same subject: one modify each).
        func deleteRecords(_ records: [(group: Int, raw: String, local: String)], subject: String) {
            var byGroup: [Int] = []
            for r in records where !byGroup.contains(r.group) { byGroup.append(r.group) }
            for g in byGroup {
                local.append(Change(dn: groupDN(g), op: .deleteRecord, attribute: layout.recordAttribute,
                                    values: records.filter { $0.group == g }.map(\.raw), subject: subject))
            }
        }
        func staleRecordWarning(_ e: BindingEntry, username: String?) {
            out.warnings.append(Finding(
                kind: Kind.staleRecord, value: e.records.map(\.raw).sorted(by: stringLess).joined(separator: "; "),
                users: username.map { [$0] } ?? [], devices: [deviceName],
                message: "the binding group of \(q(deviceName)) records a binding for \(layout.parseRecord(e.records[0].raw)?.userDN ?? e.normDN) without the membership (an interrupted earlier run?); the record is removed",
                fix: "nothing to do: the next apply cleans it up"))
        }
        func unmanagedWarning(_ e: BindingEntry, username: String?) {
            out.warnings.append(Finding(
                kind: Kind.unmanagedMember, value: e.members[0].raw, users: username.map { [$0] } ?? [], devices: [deviceName],
                message: "\(q(e.members[0].raw)) is a member of the binding group \(groupDN(e.members[0].group)) without a record (added outside takeover-bridge) and is not connected to \(q(deviceName)); it is left alone",
                fix: username == nil
                    ? "remove the member from \(groupDN(e.members[0].group)) by hand if it does not belong there"
                    : "connect \(username ?? "") to \(q(deviceName)) to adopt the binding, or remove the member from \(groupDN(e.members[0].group)) by hand"))
        }

        // One scan of the device's accounts, for the local names wanted here: the pairs to
        // decide (R5-R7, R13) and the bound pairs (is the bound account still reported?).
        var wanted: [Int] = []
        /// The outcome of each of `wanted`, in its order.
        var fresh: [FreshOutcome?] = []
        var scan = AccountScan()
        var unprotected: Int?
        if let report {
            var names: [String] = []
            names.reserveCapacity(connectedRanks.count)
            for s in subjects where s.connected && users[s.rank].conflictCode == 0 {
                names.append(users[s.rank].foldedLocal)
                if !slotOfRank.isEmpty, let k = slotOfRank[s.rank], slots[k].managed { continue }
                wanted.append(s.rank)
            }
            if !names.isEmpty {
                scan = AccountScan(report.accounts, wanted: names)
                if !wanted.isEmpty {
                    fresh = evaluate(wanted, report: report, scan: scan, deviceName: deviceName, heldNames: heldNames, slots: slots,
                                     connected: connectedRanks)
                }
            }
        }
        var nextWanted = 0

        for s in subjects {
            let r = s.rank
            var outcome: FreshOutcome?
            if nextWanted < fresh.count && wanted[nextWanted] == r {
                outcome = fresh[nextWanted]
                nextWanted += 1
            }
            let username = users[r].username
            let dn = users[r].dn
            let localName = users[r].localName
            let entry = entry(r)
            let managed = entry?.managed ?? false
            let memberOnly = entry.map { !$0.members.isEmpty && $0.records.isEmpty } ?? false
            let recordOnly = entry.map { $0.members.isEmpty && !$0.records.isEmpty } ?? false
            let start = local.count
            let boundName: String? = managed ? chooseRecord(entry, users[r].foldedLocal)?.local : nil

            if let kind = users[r].conflict {
                // R4: held, not undone; gains nothing.
                if s.connected || managed {
                    emit(Decision(user: username, userDN: dn, device: deviceName, action: .conflict,
                                  localAccount: boundName, reason: kind, notices: managed ? Notice.heldNotices : []),
                         folded: users[r].foldedName, norm: users[r].normDN, from: start)
                } else if memberOnly, let entry {
                    unmanagedWarning(entry, username: username)
                }
                continue
            }
            if let deferred {
                if s.connected || managed {
                    emit(Decision(user: username, userDN: dn, device: deviceName, action: .deferred,
                                  localAccount: boundName, reason: deferred),
                         folded: users[r].foldedName, norm: users[r].normDN, from: start)
                } else if memberOnly, let entry {
                    unmanagedWarning(entry, username: username)
                }
                continue
            }
            guard s.connected else {
                if managed, let entry {
                    unbindChanges(entry, subject: dn)
                    emit(Decision(user: username, userDN: dn, device: deviceName, action: .unbind,
                                  localAccount: boundName, reason: Reason.notConnected),
                         folded: users[r].foldedName, norm: users[r].normDN, from: start)
                } else if memberOnly, let entry {
                    unmanagedWarning(entry, username: username)
                } else if recordOnly, let entry {
                    deleteRecords(entry.records, subject: dn)
                    staleRecordWarning(entry, username: username)
                }
                continue
            }
            if managed, let entry, let rec = chooseRecord(entry, users[r].foldedLocal) {
                if Folding.fold(rec.local) == users[r].foldedLocal {
                    // R9.
                    var notices: [String] = []
                    if report != nil, !scan.has(users[r].foldedLocal) {
                        notices.append(Notice.boundAccountMissing(rec.local))
                    }
                    if let old = followMove(entry, rank: r, subject: dn, into: &local) {
                        notices.append(Notice.moved(from: old))
                    }
                    emit(Decision(user: username, userDN: dn, device: deviceName, action: .bound,
                                  localAccount: rec.local, reason: Reason.bound, notices: notices),
                         folded: users[r].foldedName, norm: users[r].normDN, from: start)
                } else {
                    // R10.
                    out.conflicts.append(Finding(
                        kind: Kind.changedAfterBinding, value: localName, users: [username], devices: [deviceName],
                        message: "\(username) is bound to \(q(deviceName)) with the local account \(q(rec.local)), but the user's local name is now \(q(localName)); the fields can only be edited before binding, so the binding stays as it is",
                        fix: "restore the Local User Account field of \(username) to \(q(rec.local)), or unbind \(username) from \(q(deviceName)) first (remove the connection and run apply), then change the field and connect again"))
                    emit(Decision(user: username, userDN: dn, device: deviceName, action: .conflict,
                                  localAccount: rec.local, reason: Kind.changedAfterBinding),
                         folded: users[r].foldedName, norm: users[r].normDN, from: start)
                }
                continue
            }
            guard let outcome, let report else { continue }
            switch outcome {
            case .conflict(let kind, let finding, let account):
                out.conflicts.append(finding)
                if recordOnly, let entry {
                    deleteRecords(entry.records, subject: dn)
                    staleRecordWarning(entry, username: username)
                }
                emit(Decision(user: username, userDN: dn, device: deviceName, action: .conflict,
                              localAccount: account, reason: kind),
                     folded: users[r].foldedName, norm: users[r].normDN, from: start)
            case .takeover, .provision:
                var action = Action.provision
                var accountName = localName
                var notices: [String] = []
                var reason = Reason.provision
                if case .takeover(let a) = outcome {
                    action = .takeover
                    reason = Reason.takeover
                    accountName = report.accounts[a].name
                    notices = report.platform == .macos ? Notice.takeoverNoticesMacOS : Notice.takeoverNotices
                    if accountName != localName {
                        notices.append(Notice.caseOnly(device: accountName, local: localName))
                    }
                    if unprotected == nil { unprotected = countUnprotected(report, upTo: 2) }
                    if unprotected == 1 { out.warnings.append(soleAccountWarning(report: report, account: a, user: user(r), deviceName: deviceName)) }
                } else if case .provision(let likely) = outcome, !likely.isEmpty {
                    let names = likely.map { q(report.accounts[$0.account].name) }.joined(separator: ", ")
                    notices.append("likely mismatch: \(names) may be this user's account; provisioned anyway (on_likely_mismatch = \"provision\")")
                    out.warnings.append(likelyFinding(user(r), deviceName: deviceName, report: report, likely: likely, hold: false))
                }
                if memberOnly {
                    // Adopt a membership a person added: record it, change nothing else.
                    if let entry {
                        local.append(Change(dn: groupDN(entry.members[0].group), op: .addRecord, attribute: layout.recordAttribute,
                                            values: [layout.recordValue(localName: accountName, userDN: dn, stableID: stableID(r),
                                                                      formerDNs: formerDNs(r))], subject: dn))
                    }
                    emit(Decision(user: username, userDN: dn, device: deviceName, action: .bound,
                                  localAccount: accountName, reason: Reason.adopted, notices: Notice.adoptedNotices),
                         folded: users[r].foldedName, norm: users[r].normDN, from: start)
                    continue
                }
                let record = layout.recordValue(localName: accountName, userDN: dn, stableID: stableID(r),
                                                formerDNs: formerDNs(r))
                var keepRecord = false
                if recordOnly, let entry {
                    let foldedAccount = Folding.fold(accountName)
                    let stale = entry.records.filter { Folding.fold($0.local) != foldedAccount }
                    keepRecord = stale.count < entry.records.count
                    deleteRecords(stale, subject: dn)
                }
                if groupExists {
                    local.append(Change(dn: targetDN, op: .addMember, attribute: layout.memberAttribute, values: [dn], subject: dn))
                    if !keepRecord {
                        local.append(Change(dn: targetDN, op: .addRecord, attribute: layout.recordAttribute, values: [record], subject: dn))
                    }
                } else {
                    newMembers.append(dn)
                    newRecords.append(record)
                }
                emit(Decision(user: username, userDN: dn, device: deviceName, action: action,
                              localAccount: accountName, reason: reason, notices: notices),
                     folded: users[r].foldedName, norm: users[r].normDN, from: start)
            }
        }

        // Entries whose user is gone from the directory.
        for k in gone {
            let e = slots[k]
            let key = e.normDN
            let dn = e.members.first?.raw ?? layout.parseRecord(e.records.first?.raw ?? "")?.userDN ?? key
            let display = DNNormalizer.firstRDNValue(dn)
            let start = local.count
            if e.managed {
                let rec = chooseRecord(e, "")
                if let deferred {
                    emit(Decision(user: display, userDN: dn, device: deviceName, action: .deferred, localAccount: rec?.local,
                                  reason: deferred + "; the user is no longer in the directory"),
                         folded: Folding.fold(display), norm: key, from: start)
                } else {
                    unbindChanges(e, subject: dn)
                    emit(Decision(user: display, userDN: dn, device: deviceName, action: .unbind, localAccount: rec?.local,
                                  reason: Reason.goneFromDirectory),
                         folded: Folding.fold(display), norm: key, from: start)
                }
            } else if !e.members.isEmpty {
                unmanagedWarning(e, username: nil)
            } else if deferred == nil {
                deleteRecords(e.records, subject: dn)
                staleRecordWarning(e, username: nil)
            }
        }

        // Output in a fixed order: the group entry first, then by user.
        if !newMembers.isEmpty {
            var attributes = [
                EntryAttribute(name: "objectClass", values: layout.objectClasses),
                EntryAttribute(name: "cn", values: [deviceName]),
            ]
            attributes.append(EntryAttribute(name: layout.memberAttribute, values: (layout.placeholderMember.map { [$0] } ?? []) + newMembers))
            attributes.append(EntryAttribute(name: layout.recordAttribute, values: newRecords))
            out.changes.append(Change(dn: targetDN, op: .addEntry, attributes: attributes))
        }
        // Usually made in this order already (users in rank order): checked first, since a
        // sort copies its elements even when they are in order.
        if pending.count > 1 && pending.indices.dropFirst().contains(where: { Pending.less(pending[$0], pending[$0 - 1]) }) {
            pending.sort(by: Pending.less)
        }
        var emitted = 0
        for k in pending.indices { emitted += pending[k].changes.count }
        // Changes not tied to a decision (stale records) go last, in the order made, which is sorted.
        var untied: [Int] = []
        if emitted < local.count {
            var covered = [Bool](repeating: false, count: local.count)
            for p in pending { for k in p.changes { covered[k] = true } }
            untied = local.indices.filter { !covered[$0] }
        }
        // Each decision moves to the output: swapped out for an empty one, not copied.
        for k in pending.indices {
            out.changes.append(contentsOf: local[pending[k].changes])
            var decision = Decision(user: "", userDN: "", device: "", action: .conflict, localAccount: nil, reason: "")
            swap(&decision, &pending[k].decision)
            out.decisions.append(decision)
        }
        for k in untied { out.changes.append(local[k]) }
    }

    /// A bound user whose DN changed (R9 with a move): member values and records naming an
    /// earlier DN are replaced by ones naming the current DN (the record keeps its local
    /// name and gains the stable id), per group in one modify. Returns the earlier DN, or
    /// nil when nothing names one.
    func followMove(_ e: BindingEntry, rank r: Int, subject dn: String, into local: inout [Change]) -> String? {
        let norm = users[r].normDN, own = users[r].dn
        // The user's DN as the directory returned it needs no normalising to be the user's
        // (what the bindings hold once written); any other spelling is compared normalised.
        func isUsers(_ dn: String) -> Bool { dn.utf8.elementsEqual(own.utf8) || DNNormalizer.normalize(dn) == norm }
        let oldMembers = e.members.filter { !isUsers($0.raw) }
        var oldRecords: [(group: Int, raw: String, record: BindingRecord)] = []
        for rec in e.records {
            if let parsed = layout.parseRecord(rec.raw), !isUsers(parsed.userDN) {
                oldRecords.append((rec.group, rec.raw, parsed))
            }
        }
        guard !oldMembers.isEmpty || !oldRecords.isEmpty else { return nil }
        var byGroup: [Int] = []
        for m in oldMembers where !byGroup.contains(m.group) { byGroup.append(m.group) }
        for o in oldRecords where !byGroup.contains(o.group) { byGroup.append(o.group) }
        let hasCurrentMember = Set(e.members.filter { isUsers($0.raw) }.map(\.group))
        for g in byGroup {
            let groupDN = input.bindingGroups[g].dn
            let members = oldMembers.filter { $0.group == g }.map(\.raw)
            if !members.isEmpty {
                local.append(Change(dn: groupDN, op: .deleteMember, attribute: layout.memberAttribute, values: members, subject: dn))
                if !hasCurrentMember.contains(g) {
                    local.append(Change(dn: groupDN, op: .addMember, attribute: layout.memberAttribute, values: [dn], subject: dn))
                }
            }
            let records = oldRecords.filter { $0.group == g }
            if !records.isEmpty {
                local.append(Change(dn: groupDN, op: .deleteRecord, attribute: layout.recordAttribute,
                                    values: records.map(\.raw), subject: dn))
                var added: [String] = []
                for o in records {
                    // The earlier DNs stay known, for device entries that still name one.
                    var former: [String] = []
                    var seen: Set<String> = [norm]
                    for old in o.record.formerDNs + [o.record.userDN] where seen.insert(DNNormalizer.normalize(old)).inserted {
                        former.append(old)
                    }
                    let value = layout.recordValue(localName: o.record.localName, userDN: dn, stableID: stableID(r),
                                                   formerDNs: former)
                    if !added.contains(value) && !e.records.contains(where: { $0.raw == value }) { added.append(value) }
                }
                if !added.isEmpty {
                    local.append(Change(dn: groupDN, op: .addRecord, attribute: layout.recordAttribute, values: added, subject: dn))
                }
            }
        }
        return oldRecords.first?.record.userDN ?? oldMembers.first?.raw
    }

    /// The record a managed binding is judged by: one naming the current local name, else the smallest.
    func chooseRecord(_ e: BindingEntry?, _ foldedLocal: String) -> (group: Int, raw: String, local: String)? {
        guard let e, !e.records.isEmpty else { return nil }
        if let match = e.records.first(where: { Folding.fold($0.local) == foldedLocal }) { return match }
        return e.records.min { stringLess($0.raw, $1.raw) }
    }

    // MARK: - R12

    /// Unprotected accounts on the device, counted up to `limit`. From the end: reports
    /// list people's accounts after the system's, so the limit is usually reached sooner.
    func countUnprotected(_ report: DeviceReport, upTo limit: Int) -> Int {
        var count = 0
        for a in report.accounts.indices.reversed() where protection(report, a) == nil {
            count += 1
            if count >= limit { break }
        }
        return count
    }

    func soleAccountWarning(report: DeviceReport, account a: Int, user u: DirectoryUser, deviceName: String) -> Finding {
        let name = report.accounts[a].name
        return Finding(
            kind: Kind.soleLocalAccount, value: name, users: [u.username], devices: [deviceName],
            message: "\(q(name)) is the only unprotected local account on \(q(deviceName)); once \(u.username) takes it over, removing \(u.username) from the device would leave nobody able to sign in (lock-out risk)",
            fix: "keep a second local administrator on \(q(deviceName)) before applying, and to take access away later lock the device (MDM lock command, record the PIN) rather than deleting or suspending the account")
    }

}

