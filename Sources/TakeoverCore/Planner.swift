import Dispatch
import LDAPSyntax

// The reconciliation: every rule of docs/product.md section 3 as one pure function.
//
// 1. Users are folded, sorted (their rank is their output order) and indexed by normalised
//    DN; R1-R3 and the user warnings come from runs of equal folded names and fields.
// 2. Devices are gathered from every source by folded name; connections resolve to ranks.
// 3. Each device is decided on its own (Devices.swift): its binding groups, one pass over
//    its reported accounts, then every connected or bound user. Devices are independent,
//    so they run in parallel chunks of the sorted order.
//
// Work is linear in the input: hash maps keyed by folded names or normalised DNs, one
// scan per device, no pairwise loops over users or accounts. Output order comes from the
// sorts, never from input order (R14): shuffled input gives byte-identical reports.

public enum Planner {
    public static func plan(_ input: PlanInput) -> Plan {
        Planning(input, tuning: Tuning()).run()
    }

    /// `plan(_:)` for a caller that needs the connections no more (`plan`, `apply`; not
    /// `explain`): `input` comes back without them, and the planner lets them go once it
    /// has resolved them, before the device stage. They are the largest input after the
    /// reports (2,000,000 member DNs at a million users); the caller must hold no other
    /// copy of them for the memory to go.
    public static func plan(releasingConnections input: inout PlanInput) -> Plan {
        let taken = input
        input.connections = []
        let planning = Planning(consume taken, tuning: Tuning())
        planning.releaseConnections = true
        return planning.run()
    }

    /// How devices are split for parallel processing; tests vary it to show the result
    /// never depends on it.
    struct Tuning {
        /// Devices are processed in this many chunks (many more than processors: the
        /// processors run out of work together, not one idling while another ends a big chunk)...
        var chunks = 64
        /// ...when there are at least this many devices.
        var parallelFrom = 256
        /// Divides the output bounds (tests force the overflow path with a large value).
        var boundScale = 1
        /// Indexing users and connections splits into parts of at least this many items.
        var indexChunkMinimum = 8192
    }

    static func plan(_ input: PlanInput, tuning: Tuning) -> Plan {
        Planning(input, tuning: tuning).run()
    }

    /// Starts planning from the directory alone, while the reports folder is still read:
    /// the users are folded, sorted and indexed (R1-R3), the device entries gathered and the
    /// connections resolved. `directory`'s reports and problems are not looked at. `finish`
    /// completes the plan once the reports are in; the plan is the one `plan(_:)` makes of
    /// the whole input. With `releasingConnections` the connections are let go once resolved
    /// (see `plan(releasingConnections:)`; the caller must drop its own copies).
    public static func begin(_ directory: consuming PlanInput, releasingConnections: Bool = false) -> PlanUnderway {
        let planning = Planning(directory, tuning: Tuning())
        planning.releaseConnections = releasingConnections
        planning.runDirectoryPart()
        return PlanUnderway(planning)
    }
}

/// A plan whose directory part is done (`Planner.begin`): `finish` adds the reports.
///
/// Safety of `@unchecked Sendable`: the planning state is only ever used by one thread at a
/// time. `Planner.begin` makes it and hands it over whole when it returns (e.g. as the value
/// of the task that ran it); `finish` may be called once, after that.
public final class PlanUnderway: @unchecked Sendable {
    private let planning: Planning
    private var finished = false

    fileprivate init(_ planning: Planning) { self.planning = planning }

    /// The plan of `input`, which must hold the users, connections, device entries, binding
    /// groups, layout and policy that `Planner.begin` was given, now with the reports, the
    /// problems and the run's clock (its connections are not looked at again).
    public func finish(_ input: PlanInput) -> Plan {
        precondition(!finished, "PlanUnderway.finish called twice")
        finished = true
        let plan = planning.runReportsPart(input)
        // The caller owns the input; what stays here is the planner's own indexes, let go
        // with this object (by the caller, on a thread of its choosing).
        planning.releaseInput()
        return plan
    }
}

/// A directory user with everything the planner compares, in rank (output) order.
struct UserInfo {
    /// Copies of the entry's username, DN and local name (shared storage, no bytes copied),
    /// so deciding a pair reads one array element instead of two.
    var username: String
    var dn: String
    var localName: String
    var foldedName: String
    /// The folded Local User Account field when set, else the folded username.
    var foldedLocal: String
    var normDN: String
    /// The folded display name (R7), nil when absent or empty.
    var foldedDisplay: String?
    var uidNumber: Int64?
    /// Index in `PlanInput.users`.
    var source: Int32
    var hasField: Bool
    /// The entry has more than one username value (warning `multi-valued-username`).
    var severalUsernames = false
    /// 1 + the index in `Kind.userConflicts` of the first R1-R3 conflict (R4 holds them); 0 = none.
    var conflictCode: UInt8 = 0

    var foldedField: String? { hasField ? foldedLocal : nil }
    var conflict: String? { conflictCode == 0 ? nil : Kind.userConflicts[Int(conflictCode) - 1] }
}

struct DeviceInfo {
    var folded: String
    var entrySpelling: String?
    /// The DN of the device entry, as the server returned it (nil when not known).
    var entryDN: String?
    var groupSpelling: String?
    var problemSpelling: String?
    var report = -1
    var problem = -1
    var groups: [Int] = []
    var connected: [Int] = []
    /// R15: every device entry whose name folds equal to this one's (this one's included),
    /// when there are several, spelled alike or not; such devices are never decided.
    var twins: [EntryName]?
}

/// What processing a chunk of devices adds to the plan. Decisions and changes go straight
/// into the plan's final arrays (see `DeviceStage.run`).
struct DeviceOutput {
    var decisions = Sink<Decision>(base: nil, capacity: 0)
    var changes = Sink<Change>(base: nil, capacity: 0)
    var conflicts: [Finding] = []
    var warnings: [Finding] = []
    var currentBindings = 0
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
    /// Ranks of other users whose local name is this account's name, none of them connected
    /// to the device (R7: still evidence; the fix is a rename on one side).
    var otherOwners: [Int] = []
}

final class Planning {
    private(set) var input: PlanInput
    /// Let the input's connections go once resolved (`Planner.plan(releasingConnections:)`).
    var releaseConnections = false
    let layout: BindingLayout
    let policy: Policy
    let policyNames: Set<String>
    let placeholderNorm: String?

    var users = ContiguousArray<UserInfo>()
    var byDN: [String: Int] = [:]
    var fieldHead: [String: Int] = [:]
    var fieldNext: [Int] = []

    var devices = ContiguousArray<DeviceInfo>()
    /// The device index of each input connection.
    var connectionDevice: [Int] = []
    var deviceIndex: [String: Int] = [:]
    /// R15: folded name -> the devices of the several entries whose names fold to it.
    var twinDevices: [String: [Int]] = [:]
    /// Errors found while planning (reports that could belong to several device entries).
    var planErrors: [InputProblem] = []
    /// Connections naming no user read, by "dn:"/"name:" and the folded value: warned about
    /// once the reports have named every device (`warnUnknownMembers`).
    var unknown: [String: (spelling: String, devices: Set<Int>, byDN: Bool)] = [:]

    var decisions: [Decision] = []
    var conflicts: [Finding] = []
    var warnings: [Finding] = []
    var changes: [Change] = []
    var currentBindings = 0
    /// See `DeviceStage.byStableID`.
    var stableIDs: [String: Int] = [:]
    /// Earlier DNs of users, from binding records carrying their stable id: a device entry
    /// still naming the old DN (389 DS and OpenLDAP without referential integrity leave it)
    /// connects the user under the new one.
    var formerDNs: [String: Int] = [:]
    /// The same DNs by user: a new binding's record keeps them, so a device entry naming one
    /// still finds the user when the record it was learned from goes (R14).
    var formerDNsByRank: [Int: [String]] = [:]

    let tuning: Planner.Tuning

    init(_ input: PlanInput, tuning: Planner.Tuning) {
        self.tuning = tuning
        self.input = input
        self.layout = input.layout
        self.policy = input.policy
        self.policyNames = ProtectedAccounts.policyNames(input.policy)
        self.placeholderNorm = input.layout.placeholderMember.map(DNNormalizer.normalize)
    }

    func run() -> Plan {
        runDirectoryPart()
        return runReportsPart(input)
    }

    /// Everything that needs only the directory (`Planner.begin`): users, their conflicts,
    /// the device entries and the connections.
    func runDirectoryPart() {
        indexUsers()
        findUserConflicts()
        indexDeviceEntries()
        stableIDs = stableIDIndex()
        formerDNs = formerDNIndex()
        resolveConnections()
        if releaseConnections { input.connections = [] }
    }

    /// Lets go of the input (the caller's copy is the one kept), once the plan is made.
    func releaseInput() {
        input = PlanInput(users: [], connections: [], knownDevices: [], reports: [], problems: [], bindingGroups: [],
                          layout: input.layout, policy: input.policy, now: input.now)
    }

    /// The rest, once the reports are in: `full` is the whole input (see `PlanUnderway.finish`).
    func runReportsPart(_ full: PlanInput) -> Plan {
        var screened = Planning.withoutFutureReports(full)
        if releaseConnections { screened.connections = [] }
        input = screened
        indexReportedDevices()
        warnUnknownMembers()
        var order = Array(devices.indices)
        // Most comparisons are decided by the first bytes of the folded names, read from one
        // small array instead of the devices' records.
        let prefixes = { (all: ContiguousArray<DeviceInfo>) in
            parallelArray(count: all.count, minimumPerChunk: tuning.indexChunkMinimum) { orderPrefix(all[$0].folded) }
        }(devices)
        order.sort { a, b in
            if let less = prefixLess(prefixes[a], prefixes[b]) { return less }
            let c = stringCompare(devices[a].folded, devices[b].folded)
            if c != 0 { return c < 0 }
            let s = stringCompare(devices[a].entrySpelling ?? "", devices[b].entrySpelling ?? "")
            return s != 0 ? s < 0 : stringLess(devices[a].entryDN ?? "", devices[b].entryDN ?? "")
        }
        let stage = DeviceStage(input: input, layout: layout, policy: policy, policyNames: policyNames,
                                placeholderNorm: placeholderNorm, users: users, byDN: byDN, fieldHead: fieldHead,
                                fieldNext: fieldNext, devices: devices, byStableID: stableIDs,
                                formerDNs: formerDNsByRank)
        let out = stage.run(order: order, tuning: tuning)
        decisions = out.decisions
        changes = out.changes
        conflicts += out.conflicts
        warnings += out.warnings
        currentBindings = out.currentBindings
        return finish()
    }

    // MARK: - Users, R1-R3

    /// Order of users with equal folded names: every field, so the input order never shows.
    private func userTieLess(_ a: DirectoryUser, _ na: String, _ b: DirectoryUser, _ nb: String) -> Bool {
        var c = stringCompare(a.username, b.username); if c != 0 { return c < 0 }
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
        // Folding and normalising every entry is independent work: done in parallel chunks,
        // each writing its own range of the array.
        var unsorted = parallelArray(count: source.count, minimumPerChunk: tuning.indexChunkMinimum) { i in
            let u = source[i]
            let name = Folding.fold(u.username)
            let field = u.localAccountField.map(Folding.fold)
            let display = u.displayName.flatMap { $0.isEmpty ? nil : Folding.fold($0) }
            return UserInfo(
                username: u.username, dn: u.dn, localName: u.localName, foldedName: name,
                foldedLocal: field ?? name, normDN: sharing(DNNormalizer.normalize(u.dn), u.dn), foldedDisplay: display,
                uidNumber: u.uidNumber, source: Int32(i), hasField: field != nil,
                severalUsernames: u.usernameValueCount > 1)
        }
        // Sorted as indices (the structs hold seven strings: moving them costs reference
        // counting), most comparisons decided by the folded names' prefix keys.
        let keys = unsorted.map { orderPrefix($0.foldedName) }
        var order = [Int32](unsafeUninitializedCapacity: unsorted.count) { buffer, initialized in
            for i in 0..<unsorted.count { buffer[i] = Int32(i) }
            initialized = unsorted.count
        }
        order.sort { i, j in
            let a = Int(i), b = Int(j)
            if let less = prefixLess(keys[a], keys[b]) { return less }
            let c = stringCompare(unsorted[a].foldedName, unsorted[b].foldedName)
            return c != 0 ? c < 0 : userTieLess(source[a], unsorted[a].normDN, source[b], unsorted[b].normDN)
        }
        permute(&unsorted, by: order)
        users = consume unsorted
        // One entry per DN (the first in rank order), compacted in place.
        byDN.reserveCapacity(users.count)
        var duplicates: [String: [Int]] = [:]
        var kept = 0
        for k in users.indices {
            let norm = users[k].normDN
            if let first = byDN[norm] {
                duplicates[norm, default: [Int(users[first].source)]].append(Int(users[k].source))
                continue
            }
            byDN[norm] = kept
            if kept != k { users.swapAt(kept, k) }
            kept += 1
        }
        users.removeLast(users.count - kept)
        for (_, sources) in duplicates {
            let u = source[sources[0]]
            warnings.append(Finding(
                kind: Kind.duplicateUserEntry, value: u.dn, users: [u.username],
                message: "the directory returned the entry \(u.dn) \(sources.count) times; only the first is used",
                fix: "check [users] search_base and filter: one entry must be read once"))
        }
        fieldNext = [Int](repeating: -1, count: users.count)
        for r in users.indices.reversed() where users[r].hasField {
            let folded = users[r].foldedLocal
            if let next = fieldHead[folded] { fieldNext[r] = next }
            fieldHead[folded] = r
        }
    }

    func user(_ rank: Int) -> DirectoryUser { input.users[Int(users[rank].source)] }

    private func formerDNIndex() -> [String: Int] {
        guard !stableIDs.isEmpty else { return [:] }
        var out: [String: Int] = [:]
        var spellings: [Int: [String: String]] = [:]
        // Reading the records is independent work, in parallel by group; a record naming its
        // user by the very DN the directory returned, with no former DNs, adds nothing (the
        // usual case once bindings are written) and is passed over without normalising.
        let groups = input.bindingGroups, layout = layout, ids = stableIDs, sorted = users
        let minimum = max(1, tuning.indexChunkMinimum / 8)
        let found = parallelArray(count: groups.count, minimumPerChunk: minimum) { g -> [(rank: Int, dns: [String])] in
            var hits: [(rank: Int, dns: [String])] = []
            for raw in groups[g].records {
                guard let rec = layout.parseRecord(raw), let id = rec.stableID, let r = ids[StableID.key(id)] else { continue }
                if rec.formerDNs.isEmpty && rec.userDN.utf8.elementsEqual(sorted[r].dn.utf8) { continue }
                hits.append((r, [rec.userDN] + rec.formerDNs))
            }
            return hits
        }
        for hits in found {
            for (r, dns) in hits {
                for dn in dns {
                    let norm = DNNormalizer.normalize(dn)
                    if norm != users[r].normDN && byDN[norm] == nil {
                        out[norm] = r
                        spellings[r, default: [:]][norm] = Self.minSpelling(spellings[r]?[norm], dn)
                    }
                }
            }
        }
        for (r, dns) in spellings { formerDNsByRank[r] = dns.values.sorted(by: stringLess) }
        return out
    }

    /// Stable id -> rank, for ids exactly one user has (a duplicated id identifies nobody).
    /// Only ids binding records carry are ever looked up: when no record carries one (a
    /// first run, a tree without bindings), there is no index to build (a million users:
    /// 0.78 s on one processor). Records with ids are the usual case once bindings are
    /// written, so then every user is indexed (indexing only the ids the records carry
    /// cost more: a set of them, and a key made for every user anyway).
    private func stableIDIndex() -> [String: Int] {
        let layout = layout
        let carried = input.bindingGroups.contains { group in
            group.records.contains { raw in !(layout.parseRecord(raw)?.stableID ?? "").isEmpty }
        }
        guard carried else { return [:] }
        var index: [String: Int] = [:]
        index.reserveCapacity(users.count)
        var shared = Set<String>()
        let source = input.users
        for r in users.indices {
            guard let id = source[Int(users[r].source)].stableID, !id.isEmpty else { continue }
            let key = StableID.key(id)
            if index.updateValue(r, forKey: key) != nil { shared.insert(key) }
        }
        for key in shared { index[key] = nil }
        return index
    }

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
        guard let i = Kind.userConflicts.firstIndex(of: kind) else { return }
        let code = UInt8(i + 1)
        if users[rank].conflictCode == 0 || code < users[rank].conflictCode { users[rank].conflictCode = code }
    }

    private func describe(_ ranks: [Int]) -> String {
        ranks.map { "\(user($0).username) (\(user($0).dn))" }.joined(separator: ", ")
    }

    private func findUserConflicts() {
        // R1: Local User Account fields that fold equal.
        for (_, head) in fieldHead where fieldNext[head] >= 0 {
            let chain = fieldChain(head)
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
        var uids: [(uid: Int64, rank: Int)] = []
        uids.reserveCapacity(users.count)
        for r in users.indices {
            if let n = users[r].uidNumber { uids.append((n, r)) }
            guard users[r].severalUsernames else { continue }
            let u = user(r)
            var seen = Set<String>()
            for name in u.allUsernames { seen.insert(Folding.fold(name)) }
            if seen.count > 1 {
                warnings.append(Finding(
                    kind: Kind.multiValuedUsername, value: u.username, users: [u.username],
                    message: "the entry \(u.dn) has \(u.allUsernames.count) username values (\(u.allUsernames.map(q).joined(separator: ", "))); \(q(u.username)) is used",
                    fix: "remove the extra username values from \(u.dn), keeping \(q(u.username))"))
            }
        }
        uids.sort { $0.uid != $1.uid ? $0.uid < $1.uid : $0.rank < $1.rank }
        var k = 0
        while k < uids.count {
            var end = k + 1
            while end < uids.count && uids[end].uid == uids[k].uid { end += 1 }
            if end - k > 1 {
                let ranks = uids[k..<end].map(\.rank)
                let n = uids[k].uid
                warnings.append(Finding(
                    kind: Kind.duplicateUIDNumber, value: String(n), users: ranks.map { user($0).username },
                    message: "\(ranks.count) users share uidNumber \(n): \(describe(ranks)); files owned by one are owned by all of them on Linux and macOS",
                    fix: "give each of them a unique uidNumber"))
            }
            k = end
        }
    }

    // MARK: - Devices and connections

    func device(_ name: String) -> Int {
        let f = Folding.deviceKey(name)
        if let d = deviceIndex[f] { return d }
        deviceIndex[f] = devices.count
        devices.append(DeviceInfo(folded: f))
        return devices.count - 1
    }

    /// The devices of the directory's entries (their connections and the entries read).
    private func indexDeviceEntries() {
        // Reports are counted when they are in (`indexReportedDevices`).
        let expected = input.knownDevices.count + input.bindingGroups.count / 2
        deviceIndex.reserveCapacity(expected)
        devices.reserveCapacity(expected)
        connectionDevice.reserveCapacity(input.connections.count)
        // A device entry's connections come together: skip the lookup for a repeated entry.
        // (Only the device name and entry DN are read: copying a whole connection would touch
        // its member's string, a cache miss per connection on large directories.)
        var last: (name: String, dn: String?, device: Int)?
        let connections = input.connections
        for i in connections.indices {
            let name = connections[i].device
            let dn = connections[i].sourceDN
            if let last, sameBytes(last.name, name), sameBytes(last.dn, dn) {
                connectionDevice.append(last.device)
                continue
            }
            let d = entryDevice(name, dn: dn)
            connectionDevice.append(d)
            last = (name, dn, d)
        }
        for entry in input.knownDevices { _ = entryDevice(entry.name, dn: entry.dn) }
        markTwins()
    }

    /// The devices the reports, the problems and the binding groups name, after the entries'.
    private func indexReportedDevices() {
        deviceIndex.reserveCapacity(devices.count + input.reports.count)
        devices.reserveCapacity(devices.count + input.reports.count)
        var reported = Set<String>()
        let reports = input.reports
        for i in reports.indices {
            let d = device(reports[i].device)
            if let twins = devices[d].twins {
                planErrors.append(ambiguousReport(reports[i], twins: twins))
                reported.insert(devices[d].folded)
                continue
            }
            let old = devices[d].report
            if old < 0 || reportNewer(reports[i], than: reports[old]) { devices[d].report = i }
        }
        for (i, p) in input.problems.enumerated() {
            guard let name = p.device else { continue }
            let d = device(name)
            if devices[d].twins != nil { continue }   // listed in the errors; the devices are deferred anyway
            devices[d].problemSpelling = Self.minSpelling(devices[d].problemSpelling, name)
            let old = devices[d].problem
            if old < 0 || problemLess(p, input.problems[old]) { devices[d].problem = i }
        }
        for (i, g) in input.bindingGroups.enumerated() {
            var d = device(g.device)
            if let twins = twinDevices[devices[d].folded] { d = twinForGroup(g, among: twins) }
            devices[d].groupSpelling = Self.minSpelling(devices[d].groupSpelling, g.device)
            devices[d].groups.append(i)
        }
        for (key, list) in twinDevices where !reported.contains(key) {
            if let twins = devices[list[0]].twins { planErrors.append(ambiguousEntries(twins)) }
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
        defer { connectionDevice = [] }
        // Resolve into flat pairs first, then give each device one exactly sized array.
        var pairDevice: [Int32] = [], pairUser: [Int32] = []
        pairDevice.reserveCapacity(input.connections.count)
        pairUser.reserveCapacity(input.connections.count)
        // Looking members up is independent work: in parallel, one rank (or -1) per connection.
        let connections = input.connections, index = byDN, sorted = users
        let minimum = tuning.indexChunkMinimum > Int.max / 2 ? Int.max : 2 * tuning.indexChunkMinimum
        let found = parallelArray(count: connections.count, minimumPerChunk: minimum) { i -> Int32 in
            let r: Int?
            switch connections[i].member {
            case .dn(let dn): r = index[DNNormalizer.normalize(dn)]
            case .name(let name): r = firstRank(named: Folding.fold(name), in: sorted)
            }
            return Int32(r ?? -1)
        }
        for i in connections.indices {
            let d = connectionDevice[i]
            if found[i] >= 0, case .dn = connections[i].member {
                pairDevice.append(Int32(d))
                pairUser.append(found[i])
                continue
            }
            switch connections[i].member {
            case .dn(let dn):
                let n = DNNormalizer.normalize(dn)
                if let r = formerDNs[n] {
                    pairDevice.append(Int32(d))
                    pairUser.append(Int32(r))
                    continue
                }
                let key = "dn:" + n
                if unknown[key] == nil { unknown[key] = (dn, [], true) }
                else if let old = unknown[key], stringLess(dn, old.spelling) { unknown[key]?.spelling = dn }
                unknown[key]?.devices.insert(d)
            case .name(let name):
                if found[i] >= 0 {
                    for r in nameRun(Int(found[i])) {
                        pairDevice.append(Int32(d))
                        pairUser.append(Int32(r))
                    }
                    continue
                }
                let f = Folding.fold(name)
                let key = "name:" + f
                if unknown[key] == nil { unknown[key] = (name, [], false) }
                else if let old = unknown[key], stringLess(name, old.spelling) { unknown[key]?.spelling = name }
                unknown[key]?.devices.insert(d)
            }
        }
        var counts = [Int](repeating: 0, count: devices.count)
        for d in pairDevice { counts[Int(d)] += 1 }
        for d in devices.indices where counts[d] > 0 { devices[d].connected.reserveCapacity(counts[d]) }
        for k in pairDevice.indices { devices[Int(pairDevice[k])].connected.append(Int(pairUser[k])) }
        for d in devices.indices where devices[d].connected.count > 1 {
            var list = devices[d].connected
            devices[d].connected = []
            list.sort()
            var w = 1
            for k in 1..<list.count where list[k] != list[w - 1] {
                list[w] = list[k]
                w += 1
            }
            list.removeLast(list.count - w)
            devices[d].connected = list
        }
    }

    /// A warning for each member no user answers to, once every device is named
    /// (`name(_:)` may spell a device as its report does).
    private func warnUnknownMembers() {
        defer { unknown = [:] }
        for (_, u) in unknown {
            let names = u.devices.sorted { a, b in
                let c = stringCompare(devices[a].folded, devices[b].folded)
                return c != 0 ? c < 0 : stringLess(name(a), name(b))
            }.map { name($0) }
            warnings.append(Finding(
                kind: Kind.unknownMember, value: u.spelling, devices: names,
                message: "the device \(names.count == 1 ? "entry" : "entries") of \(names.joined(separator: ", ")) \(names.count == 1 ? "names" : "name") \(u.byDN ? "the member" : "the user") \(q(u.spelling)), which is not a user read from the directory",
                fix: u.byDN
                    ? "remove the stale member value \(q(u.spelling)) from the device entry, or check that [users] search_base and filter include that entry"
                    : "remove the stale memberUid \(q(u.spelling)) from the device entry, or check [users] name_attribute, search_base and filter"))
        }
    }

    // MARK: - Finish

    /// `fa`, `fb`: the folded values of `a` and `b` (folded once per finding, not per comparison).
    private static func findingLess(_ a: Finding, _ fa: String, _ b: Finding, _ fb: String, order: [String: Int]?) -> Bool {
        if a.kind != b.kind {
            if let order { return (order[a.kind] ?? 99, a.kind) < (order[b.kind] ?? 99, b.kind) }
            return a.kind < b.kind
        }
        var c = stringCompare(fa, fb); if c != 0 { return c < 0 }
        c = stringCompare(a.value, b.value); if c != 0 { return c < 0 }
        c = stringCompare(a.devices.joined(separator: "\u{0}"), b.devices.joined(separator: "\u{0}")); if c != 0 { return c < 0 }
        c = stringCompare(a.users.joined(separator: "\u{0}"), b.users.joined(separator: "\u{0}")); if c != 0 { return c < 0 }
        c = stringCompare(a.message, b.message); if c != 0 { return c < 0 }
        return stringLess(a.fix, b.fix)
    }

    /// `findings` in the report's order (by kind, folded value, value, devices, users, message,
    /// fix). Positions are sorted, not the findings themselves, with every value folded once.
    static func sortedFindings(_ findings: [Finding], order: [String: Int]?) -> [Finding] {
        guard findings.count > 1 else { return findings }
        let folded = parallelArray(count: findings.count, minimumPerChunk: 4096) { Folding.fold(findings[$0].value) }
        var positions = Array(findings.indices)
        positions.sort { i, j in findingLess(findings[i], folded[i], findings[j], folded[j], order: order) }
        return positions.map { findings[$0] }
    }

    private func finish() -> Plan {
        conflicts = Self.sortedFindings(conflicts, order: Kind.conflictOrder)
        warnings = Self.sortedFindings(warnings, order: nil)
        let errors = (input.problems + planErrors).sorted(by: problemLess)
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


/// The first rank whose folded username is `f`: users are sorted by folded name, so a
/// binary search finds the (contiguous) run without a dictionary of every name.
func firstRank(named f: String, in users: ContiguousArray<UserInfo>) -> Int? {
    var lo = 0, hi = users.count
    while lo < hi {
        let mid = (lo + hi) >> 1
        if canonicalLess(users[mid].foldedName, f) { lo = mid + 1 } else { hi = mid }
    }
    return lo < users.count && users[lo].foldedName == f ? lo : nil
}
