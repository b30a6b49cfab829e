import LDAPSyntax

// The reconciliation: every rule of PRODUCT.md section 3 as one pure function.
//
// Work is linear in the input: users, devices and binding entries are indexed once in
// dictionaries keyed by folded names or normalised DNs; each device's accounts are
// scanned once (twice when R7 has candidates there). Output order is fixed by sorting
// users and devices once (R14), never by input order.

public enum Planner {
    public static func plan(_ input: PlanInput) -> Plan {
        Planning(input).run()
    }
}

/// A directory user with everything the planner compares, in rank (output) order.
struct UserInfo {
    var source: Int
    var foldedName: String
    var foldedField: String?
    var foldedLocal: String
    var normDN: String
    /// The first R1-R3 conflict kind this user is in (R4 holds them).
    var conflict: String?
}

struct DeviceInfo {
    var folded: String
    var entrySpelling: String?
    var groupSpelling: String?
    var problemSpelling: String?
    var report = -1
    var problem = -1
    var groups: [Int] = []
    var connected: [Int] = []
}

/// One (user DN) slot of a device's binding groups.
struct BindingEntry {
    var normDN: String
    var user = -1
    var members: [(group: Int, raw: String)] = []
    var records: [(group: Int, raw: String, local: String)] = []
    var managed: Bool { !members.isEmpty && !records.isEmpty }
}

/// The outcome of deciding a pair that has no binding yet (R5, R6, R7, R13).
enum FreshOutcome {
    case takeover(account: Int)
    case provision(likely: [LikelyMatch])
    case conflict(kind: String, finding: Finding, localAccount: String?)
}

struct LikelyMatch {
    var account: Int
    var why: [String]
}

final class Planning {
    let input: PlanInput
    let layout: BindingLayout
    let policy: Policy
    let policyNames: Set<String>
    let placeholderNorm: String?

    var users = ContiguousArray<UserInfo>()
    var byDN: [String: Int] = [:]
    /// Folded username -> first rank of its (contiguous) run.
    var byName: [String: Int] = [:]
    var fieldHead: [String: Int] = [:]
    var fieldNext: [Int] = []
    /// Folded local name -> rank, or -2 when several users share it.
    var byLocal: [String: Int] = [:]

    var devices = ContiguousArray<DeviceInfo>()
    var deviceIndex: [String: Int] = [:]

    var decisions: [Decision] = []
    var conflicts: [Finding] = []
    var warnings: [Finding] = []
    var changes: [Change] = []
    var currentBindings = 0

    init(_ input: PlanInput) {
        self.input = input
        self.layout = input.layout
        self.policy = input.policy
        self.policyNames = ProtectedAccounts.policyNames(input.policy)
        self.placeholderNorm = input.layout.placeholderMember.map(DNNormalizer.normalize)
    }

    func run() -> Plan {
        indexUsers()
        findUserConflicts()
        indexDevices()
        resolveConnections()
        var order = Array(devices.indices)
        order.sort { stringLess(devices[$0].folded, devices[$1].folded) }
        for d in order { processDevice(d) }
        return finish()
    }

    // MARK: - Users, R1-R3

    private func userLess(_ a: DirectoryUser, _ fa: String, _ na: String, _ b: DirectoryUser, _ fb: String, _ nb: String) -> Bool {
        var c = stringCompare(fa, fb); if c != 0 { return c < 0 }
        c = stringCompare(a.username, b.username); if c != 0 { return c < 0 }
        c = stringCompare(na, nb); if c != 0 { return c < 0 }
        c = stringCompare(a.dn, b.dn); if c != 0 { return c < 0 }
        c = stringCompare(a.localAccountField ?? "", b.localAccountField ?? ""); if c != 0 { return c < 0 }
        if a.uidNumber != b.uidNumber { return (a.uidNumber ?? Int64.min) < (b.uidNumber ?? Int64.min) }
        c = stringCompare(a.displayName ?? "", b.displayName ?? ""); if c != 0 { return c < 0 }
        c = stringCompare(a.stableID ?? "", b.stableID ?? ""); if c != 0 { return c < 0 }
        return stringCompare(a.allUsernames.joined(separator: "\u{0}"), b.allUsernames.joined(separator: "\u{0}")) < 0
    }

    private func indexUsers() {
        let source = input.users
        var folded = [String](); folded.reserveCapacity(source.count)
        var norms = [String](); norms.reserveCapacity(source.count)
        for u in source {
            folded.append(Folding.fold(u.username))
            norms.append(DNNormalizer.normalize(u.dn))
        }
        var order = Array(source.indices)
        order.sort { userLess(source[$0], folded[$0], norms[$0], source[$1], folded[$1], norms[$1]) }
        users.reserveCapacity(source.count)
        byDN.reserveCapacity(source.count)
        var duplicates: [String: [Int]] = [:]
        for i in order {
            if let first = byDN[norms[i]] {
                duplicates[norms[i], default: [users[first].source]].append(i)
                continue
            }
            let field = source[i].localAccountField.map(Folding.fold)
            let info = UserInfo(source: i, foldedName: folded[i], foldedField: field, foldedLocal: field ?? folded[i],
                                normDN: norms[i], conflict: nil)
            byDN[norms[i]] = users.count
            users.append(info)
        }
        for (_, sources) in duplicates {
            let u = source[sources[0]]
            warnings.append(Finding(
                kind: Kind.duplicateUserEntry, value: u.dn, users: [u.username],
                message: "the directory returned the entry \(u.dn) \(sources.count) times; only the first is used",
                fix: "check [users] search_base and filter: one entry must be read once"))
        }
        fieldNext = [Int](repeating: -1, count: users.count)
        byName.reserveCapacity(users.count)
        byLocal.reserveCapacity(users.count)
        for r in users.indices.reversed() {
            let u = users[r]
            byName[u.foldedName] = r // reversed: the first rank wins
            if let f = u.foldedField {
                if let next = fieldHead[f] { fieldNext[r] = next }
                fieldHead[f] = r
            }
            if let other = byLocal[u.foldedLocal], other != r { byLocal[u.foldedLocal] = -2 } else { byLocal[u.foldedLocal] = r }
        }
    }

    func user(_ rank: Int) -> DirectoryUser { input.users[users[rank].source] }

    private func nameRun(_ first: Int) -> Range<Int> {
        var end = first + 1
        while end < users.count && users[end].foldedName == users[first].foldedName { end += 1 }
        return first..<end
    }

    private func fieldChain(_ head: Int) -> [Int] {
        var out: [Int] = []
        var r = head
        while r >= 0 { out.append(r); r = fieldNext[r] }
        return out
    }

    private func mark(_ rank: Int, _ kind: String) {
        if users[rank].conflict == nil { users[rank].conflict = kind }
        else if let old = users[rank].conflict, (Kind.conflictOrder[kind] ?? 99) < (Kind.conflictOrder[old] ?? 99) {
            users[rank].conflict = kind
        }
    }

    private func describe(_ ranks: [Int]) -> String {
        ranks.map { "\(user($0).username) (\(user($0).dn))" }.joined(separator: ", ")
    }

    private func findUserConflicts() {
        // R1: Local User Account fields that fold equal.
        for (_, head) in fieldHead {
            let chain = fieldChain(head)
            guard chain.count > 1 else { continue }
            for r in chain { mark(r, Kind.duplicateLocalAccount) }
            let names = chain.map { user($0).username }
            let value = user(chain[0]).localAccountField ?? users[chain[0]].foldedLocal
            conflicts.append(Finding(
                kind: Kind.duplicateLocalAccount, value: value, users: names,
                message: "\(chain.count) users have the Local User Account field \(q(value)) (compared case-insensitively): \(describe(chain)); a takeover needs it unique in the directory",
                fix: "rename all but one of them: set the Local User Account field of \(names.dropFirst().joined(separator: ", ")) to the name of that user's own account on their device (or clear it)"))
        }
        // R2: usernames that fold equal (runs are contiguous in rank order).
        var r = 0
        while r < users.count {
            let run = nameRun(r)
            if run.count > 1 {
                let ranks = Array(run)
                for x in ranks { mark(x, Kind.duplicateUsername) }
                let value = user(run.lowerBound).username
                conflicts.append(Finding(
                    kind: Kind.duplicateUsername, value: value, users: ranks.map { user($0).username },
                    message: "\(run.count) directory entries have the username \(q(value)) (compared case-insensitively): \(describe(ranks))",
                    fix: "give each entry a unique \(q("uid")) (username), or narrow [users] filter so that only one of them is a user"))
            }
            r = run.upperBound
        }
        // R3: a username equal to another user's Local User Account field.
        r = 0
        while r < users.count {
            let run = nameRun(r)
            r = run.upperBound
            guard let head = fieldHead[users[run.lowerBound].foldedName] else { continue }
            let fielders = fieldChain(head)
            let namers = Array(run)
            var involved: [Int] = []
            for a in namers where fielders.contains(where: { $0 != a }) { involved.append(a) }
            for b in fielders where namers.contains(where: { $0 != b }) && !involved.contains(b) { involved.append(b) }
            guard !involved.isEmpty else { continue }
            involved.sort()
            for x in involved { mark(x, Kind.usernameMatchesLocalAccount) }
            let value = user(namers[0]).username
            let owners = fielders.filter { f in namers.contains { $0 != f } }.map { user($0).username }
            let holders = namers.filter { n in fielders.contains { $0 != n } }.map { user($0).username }
            conflicts.append(Finding(
                kind: Kind.usernameMatchesLocalAccount, value: value, users: involved.map { user($0).username },
                message: "the username \(q(value)) of \(holders.joined(separator: ", ")) is the Local User Account field of \(owners.joined(separator: ", ")); usernames can't match another user's local account",
                fix: "change the username of \(holders.joined(separator: ", ")) or the Local User Account field of \(owners.joined(separator: ", ")), so that no username equals another user's local account"))
        }
        // Warnings: several uid values; shared uidNumber.
        var byUID: [Int64: [Int]] = [:]
        for r in users.indices {
            let u = user(r)
            if let n = u.uidNumber { byUID[n, default: []].append(r) }
            var seen = Set<String>()
            for name in u.allUsernames { seen.insert(Folding.fold(name)) }
            if seen.count > 1 {
                warnings.append(Finding(
                    kind: Kind.multiValuedUsername, value: u.username, users: [u.username],
                    message: "the entry \(u.dn) has \(u.allUsernames.count) username values (\(u.allUsernames.map(q).joined(separator: ", "))); \(q(u.username)) is used",
                    fix: "remove the extra username values from \(u.dn), keeping \(q(u.username))"))
            }
        }
        for (n, ranks) in byUID where ranks.count > 1 {
            warnings.append(Finding(
                kind: Kind.duplicateUIDNumber, value: String(n), users: ranks.map { user($0).username },
                message: "\(ranks.count) users share uidNumber \(n): \(describe(ranks)); files owned by one are owned by all of them on Linux and macOS",
                fix: "give each of them a unique uidNumber"))
        }
    }

    // MARK: - Devices and connections

    private func device(_ name: String) -> Int {
        let f = Folding.fold(name)
        if let d = deviceIndex[f] { return d }
        deviceIndex[f] = devices.count
        devices.append(DeviceInfo(folded: f))
        return devices.count - 1
    }

    private static func minSpelling(_ old: String?, _ new: String) -> String {
        guard let old else { return new }
        return stringLess(new, old) ? new : old
    }

    private func indexDevices() {
        for c in input.connections {
            let d = device(c.device)
            devices[d].entrySpelling = Self.minSpelling(devices[d].entrySpelling, c.device)
        }
        for name in input.knownDevices {
            let d = device(name)
            devices[d].entrySpelling = Self.minSpelling(devices[d].entrySpelling, name)
        }
        for (i, r) in input.reports.enumerated() {
            let d = device(r.device)
            let old = devices[d].report
            if old < 0 || reportNewer(r, than: input.reports[old]) { devices[d].report = i }
        }
        for (i, p) in input.problems.enumerated() {
            guard let name = p.device else { continue }
            let d = device(name)
            devices[d].problemSpelling = Self.minSpelling(devices[d].problemSpelling, name)
            let old = devices[d].problem
            if old < 0 || problemLess(p, input.problems[old]) { devices[d].problem = i }
        }
        for (i, g) in input.bindingGroups.enumerated() {
            let d = device(g.device)
            devices[d].groupSpelling = Self.minSpelling(devices[d].groupSpelling, g.device)
            devices[d].groups.append(i)
        }
    }

    private func reportNewer(_ a: DeviceReport, than b: DeviceReport) -> Bool {
        if a.reportedAt != b.reportedAt { return a.reportedAt > b.reportedAt }
        var c = stringCompare(a.source, b.source); if c != 0 { return c < 0 }
        c = stringCompare(a.device, b.device); if c != 0 { return c < 0 }
        if a.platform != b.platform { return a.platform.rawValue < b.platform.rawValue }
        return a.accounts.count > b.accounts.count
    }

    func problemLess(_ a: InputProblem, _ b: InputProblem) -> Bool {
        var c = stringCompare(a.source, b.source); if c != 0 { return c < 0 }
        if a.line != b.line { return (a.line ?? -1) < (b.line ?? -1) }
        c = stringCompare(a.message, b.message); if c != 0 { return c < 0 }
        return stringCompare(a.device ?? "", b.device ?? "") < 0
    }

    func name(_ d: Int) -> String {
        let dev = devices[d]
        if let s = dev.entrySpelling { return s }
        if dev.report >= 0 { return input.reports[dev.report].device }
        return dev.groupSpelling ?? dev.problemSpelling ?? dev.folded
    }

    private func resolveConnections() {
        var unknown: [String: (spelling: String, devices: Set<Int>, byDN: Bool)] = [:]
        for c in input.connections {
            guard let d = deviceIndex[Folding.fold(c.device)] else { continue }
            switch c.member {
            case .dn(let dn):
                let n = DNNormalizer.normalize(dn)
                if let r = byDN[n] { devices[d].connected.append(r); continue }
                let key = "dn:" + n
                if unknown[key] == nil { unknown[key] = (dn, [], true) }
                else if let old = unknown[key], stringLess(dn, old.spelling) { unknown[key]?.spelling = dn }
                unknown[key]?.devices.insert(d)
            case .name(let name):
                let f = Folding.fold(name)
                if let first = byName[f] {
                    for r in nameRun(first) { devices[d].connected.append(r) }
                    continue
                }
                let key = "name:" + f
                if unknown[key] == nil { unknown[key] = (name, [], false) }
                else if let old = unknown[key], stringLess(name, old.spelling) { unknown[key]?.spelling = name }
                unknown[key]?.devices.insert(d)
            }
        }
        for d in devices.indices where devices[d].connected.count > 1 {
            devices[d].connected.sort()
            var out: [Int] = []
            out.reserveCapacity(devices[d].connected.count)
            for r in devices[d].connected where out.last != r { out.append(r) }
            devices[d].connected = out
        }
        for (_, u) in unknown {
            let names = u.devices.sorted { stringLess(devices[$0].folded, devices[$1].folded) }.map { name($0) }
            warnings.append(Finding(
                kind: Kind.unknownMember, value: u.spelling, devices: names,
                message: "the device \(names.count == 1 ? "entry" : "entries") of \(names.joined(separator: ", ")) \(names.count == 1 ? "names" : "name") \(u.byDN ? "the member" : "the user") \(q(u.spelling)), which is not a user read from the directory",
                fix: u.byDN
                    ? "remove the stale member value \(q(u.spelling)) from the device entry, or check that [users] search_base and filter include that entry"
                    : "remove the stale memberUid \(q(u.spelling)) from the device entry, or check [users] name_attribute, search_base and filter"))
        }
    }

    // MARK: - One device

    private func deferredReason(_ d: Int) -> String? {
        let dev = devices[d]
        if dev.problem >= 0 { return "no valid report: " + input.problems[dev.problem].message }
        guard dev.report >= 0 else { return Reason.noReport }
        let r = input.reports[dev.report]
        let age = input.now - r.reportedAt
        if age > policy.activeWithin {
            return "inactive: newest report \(ISOTime.format(r.reportedAt)) is \(ISOTime.age(age)) old (active_within \(ISOTime.duration(policy.activeWithin)))"
        }
        return nil
    }

    /// A decision waiting for the device's sort, with the range of its changes.
    private struct Pending {
        var decision: Decision
        var foldedUser: String
        var normDN: String
        var changes: Range<Int>
    }

    private func processDevice(_ d: Int) {
        let deviceName = name(d)
        let deferred = deferredReason(d)
        let report: DeviceReport? = deferred == nil ? input.reports[devices[d].report] : nil

        // Binding groups of this device, primary first.
        let wantedDN = layout.groupDN(device: deviceName)
        let wantedNorm = DNNormalizer.normalize(wantedDN)
        var groups = devices[d].groups.map { (index: $0, norm: DNNormalizer.normalize(input.bindingGroups[$0].dn)) }
        groups.sort { a, b in
            if (a.norm == wantedNorm) != (b.norm == wantedNorm) { return a.norm == wantedNorm }
            let c = stringCompare(a.norm, b.norm)
            return c != 0 ? c < 0 : stringLess(input.bindingGroups[a.index].dn, input.bindingGroups[b.index].dn)
        }
        if groups.count > 1 {
            let dns = groups.map { input.bindingGroups[$0.index].dn }
            warnings.append(Finding(
                kind: Kind.duplicateBindingGroup, value: deviceName, devices: [deviceName],
                message: "\(groups.count) binding groups name the device \(q(deviceName)): \(dns.joined(separator: "; ")); new bindings go to \(dns[0])",
                fix: "merge the members and records of the others into \(dns[0]) and delete them"))
        }
        let targetDN = groups.first.map { input.bindingGroups[$0.index].dn } ?? wantedDN
        let groupExists = !groups.isEmpty

        // Binding entries by normalised user DN.
        var entries: [String: BindingEntry] = [:]
        for g in groups {
            let group = input.bindingGroups[g.index]
            for raw in group.members {
                let n = DNNormalizer.normalize(raw)
                if n == placeholderNorm { continue }
                entries[n, default: BindingEntry(normDN: n)].members.append((g.index, raw))
            }
            for raw in group.records {
                guard let rec = layout.parseRecord(raw) else { continue }
                let n = DNNormalizer.normalize(rec.userDN)
                entries[n, default: BindingEntry(normDN: n)].records.append((g.index, raw, rec.localName))
            }
        }
        // The input's order of values never shows (R14): sort by group, then value.
        if groups.count > 1 || entries.values.contains(where: { $0.members.count > 1 || $0.records.count > 1 }) {
            var position: [Int: Int] = [:]
            for (p, g) in groups.enumerated() { position[g.index] = p }
            for (key, e) in entries where e.members.count > 1 || e.records.count > 1 {
                var e = e
                e.members.sort { a, b in
                    a.group != b.group ? (position[a.group] ?? 0) < (position[b.group] ?? 0) : stringLess(a.raw, b.raw)
                }
                e.records.sort { a, b in
                    a.group != b.group ? (position[a.group] ?? 0) < (position[b.group] ?? 0) : stringLess(a.raw, b.raw)
                }
                entries[key] = e
            }
        }
        var boundRanks: [Int] = []
        var gone: [String] = []
        /// Folded local name -> the managed entry (its key) that holds it and stays bound
        /// after this run (its user is connected, or held by a conflict).
        var heldNames: [String: String] = [:]
        let connectedRanks = devices[d].connected
        for (key, var e) in entries {
            if let r = byDN[key] { e.user = r; entries[key] = e; boundRanks.append(r) } else { gone.append(key) }
            if e.managed {
                currentBindings += 1
                if e.user >= 0 && (users[e.user].conflict != nil || sortedContains(connectedRanks, e.user)) {
                    for rec in e.records { heldNames[Folding.fold(rec.local)] = key }
                }
            }
        }
        boundRanks.sort()
        gone.sort(by: stringLess)

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

        func emit(_ decision: Decision, folded: String, norm: String, from start: Int) {
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
        func staleRecordWarning(_ e: BindingEntry, username: String?) {
            warnings.append(Finding(
                kind: Kind.staleRecord, value: e.records.map(\.raw).sorted(by: stringLess).joined(separator: "; "),
                users: username.map { [$0] } ?? [], devices: [deviceName],
                message: "the binding group of \(q(deviceName)) records a binding for \(e.records[0].raw.isEmpty ? e.normDN : (layout.parseRecord(e.records[0].raw)?.userDN ?? e.normDN)) without the membership (an interrupted earlier run?)" + (deferred == nil ? "; the record is removed" : "; left alone while the device is deferred"),
                fix: "nothing to do: the next apply cleans it up"))
        }
        func unmanagedWarning(_ e: BindingEntry, username: String?) {
            warnings.append(Finding(
                kind: Kind.unmanagedMember, value: e.members[0].raw, users: username.map { [$0] } ?? [], devices: [deviceName],
                message: "\(q(e.members[0].raw)) is a member of the binding group \(groupDN(e.members[0].group)) without a record (added outside takeover-bridge) and is not connected to \(q(deviceName)); it is left alone",
                fix: username == nil
                    ? "remove the member from \(groupDN(e.members[0].group)) by hand if it does not belong there"
                    : "connect \(username ?? "") to \(q(deviceName)) to adopt the binding, or remove the member from \(groupDN(e.members[0].group)) by hand"))
        }

        // Fresh evaluations need the device's accounts, indexed for the names wanted here.
        var fresh: [Int: FreshOutcome] = [:]
        if let report {
            var wanted: [Int] = []
            for s in subjects where s.connected && users[s.rank].conflict == nil {
                if let e = entries[users[s.rank].normDN], e.managed { continue }
                wanted.append(s.rank)
            }
            if !wanted.isEmpty {
                fresh = evaluate(wanted, report: report, deviceName: deviceName, heldNames: heldNames, entries: entries)
            }
        }

        for s in subjects {
            let r = s.rank
            let u = user(r)
            let info = users[r]
            let entry = entries[info.normDN]
            let managed = entry?.managed ?? false
            let memberOnly = entry.map { !$0.members.isEmpty && $0.records.isEmpty } ?? false
            let recordOnly = entry.map { $0.members.isEmpty && !$0.records.isEmpty } ?? false
            let start = local.count
            let boundName: String? = managed ? chooseRecord(entry, info.foldedLocal)?.local : nil

            if let kind = info.conflict {
                // R4: held, not undone; gains nothing.
                if s.connected || managed {
                    emit(Decision(user: u.username, userDN: u.dn, device: deviceName, action: .conflict,
                                  localAccount: boundName, reason: kind, notices: managed ? Notice.heldNotices : []),
                         folded: info.foldedName, norm: info.normDN, from: start)
                } else if memberOnly, let entry {
                    unmanagedWarning(entry, username: u.username)
                }
                continue
            }
            if let deferred {
                if s.connected || managed {
                    emit(Decision(user: u.username, userDN: u.dn, device: deviceName, action: .deferred,
                                  localAccount: boundName, reason: deferred),
                         folded: info.foldedName, norm: info.normDN, from: start)
                } else if memberOnly, let entry {
                    unmanagedWarning(entry, username: u.username)
                }
                continue
            }
            guard s.connected else {
                if managed, let entry {
                    unbindChanges(entry, subject: u.dn)
                    emit(Decision(user: u.username, userDN: u.dn, device: deviceName, action: .unbind,
                                  localAccount: boundName, reason: Reason.notConnected),
                         folded: info.foldedName, norm: info.normDN, from: start)
                } else if memberOnly, let entry {
                    unmanagedWarning(entry, username: u.username)
                } else if recordOnly, let entry {
                    local.append(Change(dn: groupDN(entry.records[0].group), op: .deleteRecord, attribute: layout.recordAttribute,
                                        values: entry.records.map(\.raw), subject: u.dn))
                    staleRecordWarning(entry, username: u.username)
                }
                continue
            }
            if managed, let entry, let rec = chooseRecord(entry, info.foldedLocal) {
                if Folding.fold(rec.local) == info.foldedLocal {
                    // R9.
                    var notices: [String] = []
                    if let report, !report.accounts.contains(where: { Folding.fold($0.name) == info.foldedLocal }) {
                        notices.append(Notice.boundAccountMissing(rec.local))
                    }
                    emit(Decision(user: u.username, userDN: u.dn, device: deviceName, action: .bound,
                                  localAccount: rec.local, reason: Reason.bound, notices: notices),
                         folded: info.foldedName, norm: info.normDN, from: start)
                } else {
                    // R10.
                    conflicts.append(Finding(
                        kind: Kind.changedAfterBinding, value: u.localName, users: [u.username], devices: [deviceName],
                        message: "\(u.username) is bound to \(q(deviceName)) with the local account \(q(rec.local)), but the user's local name is now \(q(u.localName)); the fields can only be edited before binding, so the binding stays as it is",
                        fix: "restore the Local User Account field of \(u.username) to \(q(rec.local)), or unbind \(u.username) from \(q(deviceName)) first (remove the connection and run apply), then change the field and connect again"))
                    emit(Decision(user: u.username, userDN: u.dn, device: deviceName, action: .conflict,
                                  localAccount: rec.local, reason: Kind.changedAfterBinding),
                         folded: info.foldedName, norm: info.normDN, from: start)
                }
                continue
            }
            guard let outcome = fresh[r], let report else { continue }
            switch outcome {
            case .conflict(let kind, let finding, let account):
                conflicts.append(finding)
                if recordOnly, let entry {
                    local.append(Change(dn: groupDN(entry.records[0].group), op: .deleteRecord, attribute: layout.recordAttribute,
                                        values: entry.records.map(\.raw), subject: u.dn))
                    staleRecordWarning(entry, username: u.username)
                }
                emit(Decision(user: u.username, userDN: u.dn, device: deviceName, action: .conflict,
                              localAccount: account, reason: kind),
                     folded: info.foldedName, norm: info.normDN, from: start)
            case .takeover, .provision:
                var action = Action.provision
                var accountName = u.localName
                var notices: [String] = []
                var reason = Reason.provision
                if case .takeover(let a) = outcome {
                    action = .takeover
                    reason = Reason.takeover
                    let account = report.accounts[a]
                    accountName = account.name
                    notices = report.platform == .macos ? Notice.takeoverNoticesMacOS : Notice.takeoverNotices
                    if account.name != u.localName {
                        notices.append(Notice.caseOnly(device: account.name, local: u.localName))
                    }
                    soleAccountCheck(report: report, account: a, user: u, deviceName: deviceName)
                } else if case .provision(let likely) = outcome, !likely.isEmpty {
                    let names = likely.map { q(report.accounts[$0.account].name) }.joined(separator: ", ")
                    notices.append("likely mismatch: \(names) may be this user's account; provisioned anyway (on_likely_mismatch = \"provision\")")
                    warnings.append(likelyFinding(u, deviceName: deviceName, report: report, likely: likely, hold: false))
                }
                if memberOnly {
                    // Adopt a membership a person added: record it, change nothing else.
                    if let entry {
                        local.append(Change(dn: groupDN(entry.members[0].group), op: .addRecord, attribute: layout.recordAttribute,
                                            values: [layout.recordValue(localName: accountName, userDN: u.dn)], subject: u.dn))
                    }
                    emit(Decision(user: u.username, userDN: u.dn, device: deviceName, action: .bound,
                                  localAccount: accountName, reason: Reason.adopted, notices: Notice.adoptedNotices),
                         folded: info.foldedName, norm: info.normDN, from: start)
                    continue
                }
                let record = layout.recordValue(localName: accountName, userDN: u.dn)
                var keepRecord = false
                if recordOnly, let entry {
                    let foldedAccount = Folding.fold(accountName)
                    let stale = entry.records.filter { Folding.fold($0.local) != foldedAccount }
                    keepRecord = stale.count < entry.records.count
                    if !stale.isEmpty {
                        local.append(Change(dn: groupDN(stale[0].group), op: .deleteRecord, attribute: layout.recordAttribute,
                                            values: stale.map(\.raw), subject: u.dn))
                    }
                }
                if groupExists {
                    local.append(Change(dn: targetDN, op: .addMember, attribute: layout.memberAttribute, values: [u.dn], subject: u.dn))
                    if !keepRecord {
                        local.append(Change(dn: targetDN, op: .addRecord, attribute: layout.recordAttribute, values: [record], subject: u.dn))
                    }
                } else {
                    newMembers.append(u.dn)
                    newRecords.append(record)
                }
                emit(Decision(user: u.username, userDN: u.dn, device: deviceName, action: action,
                              localAccount: accountName, reason: reason, notices: notices),
                     folded: info.foldedName, norm: info.normDN, from: start)
            }
        }

        // Entries whose user is gone from the directory.
        for key in gone {
            guard let e = entries[key] else { continue }
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
                local.append(Change(dn: groupDN(e.records[0].group), op: .deleteRecord, attribute: layout.recordAttribute,
                                    values: e.records.map(\.raw), subject: dn))
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
            changes.append(Change(dn: targetDN, op: .addEntry, attributes: attributes))
        }
        if pending.count > 1 {
            pending.sort { a, b in
                var c = stringCompare(a.foldedUser, b.foldedUser); if c != 0 { return c < 0 }
                c = stringCompare(a.decision.user, b.decision.user); if c != 0 { return c < 0 }
                c = stringCompare(a.normDN, b.normDN); if c != 0 { return c < 0 }
                return stringLess(a.decision.userDN, b.decision.userDN)
            }
        }
        var emitted = 0
        for p in pending {
            decisions.append(p.decision)
            changes.append(contentsOf: local[p.changes])
            emitted += p.changes.count
        }
        if emitted < local.count {
            // Changes not tied to a decision (stale records): in the order made, which is sorted.
            var covered = [Bool](repeating: false, count: local.count)
            for p in pending { for k in p.changes { covered[k] = true } }
            for k in local.indices where !covered[k] { changes.append(local[k]) }
        }
    }

    /// The record a managed binding is judged by: one naming the current local name, else the smallest.
    private func chooseRecord(_ e: BindingEntry?, _ foldedLocal: String) -> (group: Int, raw: String, local: String)? {
        guard let e, !e.records.isEmpty else { return nil }
        if let match = e.records.first(where: { Folding.fold($0.local) == foldedLocal }) { return match }
        return e.records.min { stringLess($0.raw, $1.raw) }
    }

    // MARK: - R12

    private func soleAccountCheck(report: DeviceReport, account a: Int, user u: DirectoryUser, deviceName: String) {
        var unprotected = 0
        for (k, acc) in report.accounts.enumerated() {
            if k == a { unprotected += 1; continue }
            if ProtectedAccounts.reason(for: acc, folded: Folding.fold(acc.name), platform: report.platform, policy: policy,
                                        policyNames: policyNames) == nil {
                unprotected += 1
                if unprotected > 1 { return }
            }
        }
        guard unprotected == 1 else { return }
        let name = report.accounts[a].name
        warnings.append(Finding(
            kind: Kind.soleLocalAccount, value: name, users: [u.username], devices: [deviceName],
            message: "\(q(name)) is the only unprotected local account on \(q(deviceName)); once \(u.username) takes it over, removing \(u.username) from the device would leave nobody able to sign in (lock-out risk)",
            fix: "keep a second local administrator on \(q(deviceName)) before applying, and to take access away later lock the device (MDM lock command, record the PIN) rather than deleting or suspending the account"))
    }

    // MARK: - Finish

    private func findingLess(_ a: Finding, _ b: Finding, order: [String: Int]?) -> Bool {
        if a.kind != b.kind {
            if let order { return (order[a.kind] ?? 99, a.kind) < (order[b.kind] ?? 99, b.kind) }
            return a.kind < b.kind
        }
        var c = stringCompare(Folding.fold(a.value), Folding.fold(b.value)); if c != 0 { return c < 0 }
        c = stringCompare(a.value, b.value); if c != 0 { return c < 0 }
        c = stringCompare(a.devices.joined(separator: "\u{0}"), b.devices.joined(separator: "\u{0}")); if c != 0 { return c < 0 }
        c = stringCompare(a.users.joined(separator: "\u{0}"), b.users.joined(separator: "\u{0}")); if c != 0 { return c < 0 }
        c = stringCompare(a.message, b.message); if c != 0 { return c < 0 }
        return stringLess(a.fix, b.fix)
    }

    private func finish() -> Plan {
        conflicts.sort { findingLess($0, $1, order: Kind.conflictOrder) }
        warnings.sort { findingLess($0, $1, order: nil) }
        let errors = input.problems.sorted(by: problemLess)
        var summary = Summary()
        summary.users = input.users.count
        summary.devices = devices.count
        for d in decisions {
            switch d.action {
            case .takeover: summary.takeover += 1
            case .provision: summary.provision += 1
            case .bound: summary.bound += 1
            case .unbind: summary.unbind += 1
            case .deferred: summary.deferred += 1
            case .conflict: summary.conflict += 1
            }
        }
        summary.changes = changes.count
        var plan = Plan(generatedAt: input.now, summary: summary, decisions: decisions, conflicts: conflicts,
                        warnings: warnings, errors: errors, changes: changes)
        plan.currentBindings = currentBindings
        plan.layout = layout
        return plan
    }
}

@inline(__always)
func sortedContains(_ array: [Int], _ value: Int) -> Bool {
    var lo = 0, hi = array.count
    while lo < hi {
        let mid = (lo + hi) >> 1
        if array[mid] < value { lo = mid + 1 } else { hi = mid }
    }
    return lo < array.count && array[lo] == value
}
