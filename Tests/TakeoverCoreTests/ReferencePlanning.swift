import LDAPSyntax
@testable import TakeoverCore

// The reference planner itself (see ReferencePlanner.swift for what it is and is not).
// Read top to bottom: users (R1-R3), devices and connections (R8, R15), then each device
// (R4-R13, R11), then the report.

final class ReferencePlanner {
    struct User {
        var entry: DirectoryUser
        /// fold(username) and fold(local name): names compare folded (section 3).
        var folded: String
        var foldedLocal: String
        var normDN: String
        /// The first R1-R3 conflict the user is in (R4 holds such users).
        var conflict: String?
        var username: String { entry.username }
        var localName: String { entry.localName }
        var hasField: Bool { entry.localAccountField != nil }
    }

    struct Device {
        var key: String
        /// The device entry (R15: one entry, one device), when the device has one.
        var entryName: String?
        var entryDN: String?
        var isTwin = false
        var reports: [DeviceReport] = []
        var problems: [InputProblem] = []
        var groups: [BindingGroup] = []
        var connected: Set<Int> = []
    }

    /// Binding values found in a device's groups for one user (or one DN no user has).
    struct Slot {
        var user: Int?
        var normDN: String
        var members: [(group: Int, raw: String)] = []
        var records: [(group: Int, raw: String, local: String)] = []
        var managed: Bool { !members.isEmpty && !records.isEmpty }
        var memberOnly: Bool { !members.isEmpty && records.isEmpty }
        var recordOnly: Bool { members.isEmpty && !records.isEmpty }
    }

    let input: PlanInput
    var layout: BindingLayout { input.layout }
    var policy: Policy { input.policy }
    var users: [User] = []
    var devices: [Device] = []
    var conflicts: [Finding] = []
    var warnings: [Finding] = []
    var errors: [InputProblem] = []
    var changes: [(device: Int, change: Change)] = []
    var decisions: [(device: Int, sortKey: [RefOrder.Key], decision: Decision)] = []
    var currentBindings = 0
    /// Old DNs of users, learned from binding records carrying their stable id (section 8b).
    var formerDNs: [String: Int] = [:]

    static func plan(_ input: PlanInput) -> ReferencePlan {
        let p = ReferencePlanner(input)
        p.run()
        return p.result()
    }

    init(_ original: PlanInput) {
        // R8: a report dated more than max_clock_skew after `now` is an error for its file
        // and never used.
        var input = original
        let (latest, overflow) = input.now.addingReportingOverflow(max(0, input.policy.maxClockSkew))
        if !overflow {
            input.reports = original.reports.filter { $0.reportedAt <= latest }
            for r in original.reports where r.reportedAt > latest {
                let ahead = r.reportedAt - input.now
                let message = "the report for device '\(r.device)' is dated \(UTCTime.iso8601(r.reportedAt)), \(UTCTime.age(ahead)) "
                    + "after this run's clock (more than [devices] max_clock_skew, \(UTCTime.duration(max(0, input.policy.maxClockSkew)))"
                    + ", in the future): not used, so it cannot outrank the device's real reports; correct the clock of the device "
                    + "(or of the agent that wrote the file), or remove the file"
                input.problems.append(InputProblem(source: r.source, device: r.device, message: message))
            }
        }
        self.input = input
        errors = input.problems
    }

    func run() {
        readUsers()
        findUserConflicts()
        readDevices()
        for d in devices.indices { decide(d) }
    }

    // MARK: - Users

    static func key(_ u: DirectoryUser, _ normDN: String) -> [RefOrder.Key] {
        // Users are ordered by folded username; ties by every field (spec silent, R14).
        [.s(Folding.fold(u.username)), .s(u.username), .s(normDN), .s(u.dn), .s(u.localAccountField ?? ""),
         .i(u.uidNumber ?? Int64.min), .s(u.displayName ?? ""), .s(u.stableID ?? ""),
         .s(u.allUsernames.joined(separator: "\u{0}"))]
    }

    func readUsers() {
        let sorted = input.users.map { ($0, DNNormalizer.normalize($0.dn)) }
            .sorted { RefOrder.less(Self.key($0.0, $0.1), Self.key($1.0, $1.1)) }
        var seen: [String: Int] = [:]
        for (u, norm) in sorted {
            if let first = seen[norm] {
                // spec silent: one entry read twice is used once (warning duplicate-user-entry).
                if !warnings.contains(where: { $0.kind == "duplicate-user-entry" && $0.value == users[first].entry.dn }) {
                    warnings.append(Finding(kind: "duplicate-user-entry", value: users[first].entry.dn,
                                            users: [users[first].username], message: ""))
                }
                continue
            }
            seen[norm] = users.count
            users.append(User(entry: u, folded: Folding.fold(u.username), foldedLocal: Folding.fold(u.localName),
                              normDN: norm))
        }
    }

    func rank(ofDN norm: String) -> Int? { users.firstIndex { $0.normDN == norm } }

    func mark(_ r: Int, _ kind: String) {
        if users[r].conflict == nil { users[r].conflict = kind }   // called in rule order: the first wins
    }

    func findUserConflicts() {
        let all = Array(users.indices)
        // R1 unique local names: Local User Account fields that fold equal.
        var doneFields: Set<String> = []
        for r in all where users[r].hasField && !doneFields.contains(users[r].foldedLocal) {
            doneFields.insert(users[r].foldedLocal)
            let same = all.filter { users[$0].hasField && users[$0].foldedLocal == users[r].foldedLocal }
            guard same.count > 1 else { continue }
            for x in same { mark(x, "duplicate-local-account") }
            conflicts.append(Finding(kind: "duplicate-local-account", value: users[same[0]].entry.localAccountField ?? "",
                                     users: same.map { users[$0].username }, message: ""))
        }
        // R2 unique usernames.
        var doneNames: Set<String> = []
        for r in all where !doneNames.contains(users[r].folded) {
            doneNames.insert(users[r].folded)
            let same = all.filter { users[$0].folded == users[r].folded }
            guard same.count > 1 else { continue }
            for x in same { mark(x, "duplicate-username") }
            conflicts.append(Finding(kind: "duplicate-username", value: users[same[0]].username,
                                     users: same.map { users[$0].username }, message: ""))
        }
        // R3 a username can't match another user's Local User Account field: both sides.
        doneNames = []
        for r in all where !doneNames.contains(users[r].folded) {
            doneNames.insert(users[r].folded)
            let namers = all.filter { users[$0].folded == users[r].folded }
            let fielders = all.filter { users[$0].hasField && users[$0].foldedLocal == users[r].folded }
            let involved = all.filter { x in
                (namers.contains(x) && fielders.contains { $0 != x }) || (fielders.contains(x) && namers.contains { $0 != x })
            }
            guard !involved.isEmpty else { continue }
            for x in involved { mark(x, "username-matches-local-account") }
            conflicts.append(Finding(kind: "username-matches-local-account", value: users[namers[0]].username,
                                     users: involved.map { users[$0].username }, message: ""))
        }
        // R2 warnings: several username values (that do not fold equal); shared uidNumber.
        for u in users where Set(u.entry.allUsernames.map(Folding.fold)).count > 1 {
            warnings.append(Finding(kind: "multi-valued-username", value: u.username, users: [u.username], message: ""))
        }
        var doneUIDs: Set<Int64> = []
        for r in all {
            guard let n = users[r].entry.uidNumber, !doneUIDs.contains(n) else { continue }
            doneUIDs.insert(n)
            let same = all.filter { users[$0].entry.uidNumber == n }
            if same.count > 1 {
                warnings.append(Finding(kind: "duplicate-uid-number", value: String(n),
                                        users: same.map { users[$0].username }, message: ""))
            }
        }
    }

    // MARK: - Devices (R15) and connections

    /// The device of the device entry `name` / `dn`: the same entry when spelled alike and
    /// the DNs are equal or one is unknown; any other entry is another device (R15).
    func entryDevice(_ name: String, _ dn: String?) -> Int {
        let key = Folding.deviceKey(name)
        if let d = devices.firstIndex(where: { $0.key == key && $0.entryName == name && (dn == nil || $0.entryDN == nil || $0.entryDN == dn) }) {
            // The smallest of canonically equal spellings, so the input order never shows.
            if let old = devices[d].entryName, RefOrder.less(name, old) { devices[d].entryName = name }
            if let dn {
                if let old = devices[d].entryDN { if RefOrder.less(dn, old) { devices[d].entryDN = dn } }
                else { devices[d].entryDN = dn }
            }
            return d
        }
        devices.append(Device(key: key, entryName: name, entryDN: dn))
        return devices.count - 1
    }

    /// The device a report, a report error or a binding group names (by name only).
    func namedDevice(_ name: String) -> Int {
        let key = Folding.deviceKey(name)
        if let d = devices.firstIndex(where: { $0.key == key }) { return d }
        devices.append(Device(key: key))
        return devices.count - 1
    }

    func twins(_ key: String) -> [Int] {
        devices.indices.filter { devices[$0].key == key && devices[$0].isTwin }
            .sorted { RefOrder.less([.s(devices[$0].entryName ?? ""), .s(devices[$0].entryDN ?? "")],
                                    [.s(devices[$1].entryName ?? ""), .s(devices[$1].entryDN ?? "")]) }
    }

    func readDevices() {
        let connectionDevice = input.connections.map { entryDevice($0.device, $0.sourceDN) }
        for e in input.knownDevices { _ = entryDevice(e.name, e.dn) }
        // R15: entries whose names fold equal are several devices; none is ever decided.
        for d in devices.indices where devices.filter({ $0.key == devices[d].key }).count > 1 { devices[d].isTwin = true }
        var reportedTwinKeys: Set<String> = []
        for r in input.reports {
            let d = namedDevice(r.device)
            if devices[d].isTwin {
                // A report that could belong to several entries is not used (an error, no device).
                errors.append(InputProblem(source: r.source, message: "ambiguous"))
                reportedTwinKeys.insert(devices[d].key)
            } else {
                devices[d].reports.append(r)
            }
        }
        for p in input.problems where p.device != nil {
            let d = namedDevice(p.device ?? "")
            if !devices[d].isTwin { devices[d].problems.append(p) }
        }
        for g in input.bindingGroups {
            var d = namedDevice(g.device)
            if devices[d].isTwin {
                // spec silent: the entry whose group DN it is, else the one spelled like its cn,
                // else the one whose group DN it is once normalised, else the first.
                let list = twins(devices[d].key)
                let dnOf = { (t: Int) in self.layout.groupDN(device: self.devices[t].entryName ?? "") }
                d = list.first { dnOf($0) == g.dn } ?? list.first { devices[$0].entryName == g.device }
                    ?? list.first { DNNormalizer.normalize(dnOf($0)) == DNNormalizer.normalize(g.dn) } ?? list[0]
            }
            devices[d].groups.append(g)
        }
        var twinKeys: [String] = []
        for dev in devices where dev.isTwin && !twinKeys.contains(dev.key) { twinKeys.append(dev.key) }
        for key in twinKeys where !reportedTwinKeys.contains(key) {
            let source = twins(key).compactMap { devices[$0].entryDN }.first ?? "device entries"
            errors.append(InputProblem(source: source, message: "ambiguous"))
        }

        // Stable ids (section 8b) that exactly one user has.
        var byID: [String: [Int]] = [:]
        for r in users.indices {
            if let id = users[r].entry.stableID, !id.isEmpty { byID[id.lowercased(), default: []].append(r) }
        }
        stableIDs = byID.compactMapValues { $0.count == 1 ? $0[0] : nil }
        // A device entry may still name a moved user's old DN: the records with the user's
        // stable id name it (the DN recorded, and the DNs before it).
        for g in input.bindingGroups {
            for raw in g.records {
                guard let rec = layout.parseRecord(raw), let id = rec.stableID, let r = stableIDs[id.lowercased()] else { continue }
                for dn in [rec.userDN] + rec.formerDNs {
                    let norm = DNNormalizer.normalize(dn)
                    if norm != users[r].normDN && rank(ofDN: norm) == nil {
                        formerDNs[norm] = r
                        // R14: new records of the user keep these DNs, so a device entry naming
                        // one finds the user after the record it was learned from is gone.
                        if let same = formerDNsOfUser[r, default: []].firstIndex(where: { DNNormalizer.normalize($0) == norm }) {
                            if RefOrder.less(dn, formerDNsOfUser[r]![same]) { formerDNsOfUser[r]![same] = dn }
                        } else {
                            formerDNsOfUser[r, default: []].append(dn)
                        }
                    }
                }
            }
        }

        // Connections: by DN (or a moved user's old DN), or by name (every user of that name).
        var unknown: [String: (spelling: String, devices: Set<Int>)] = [:]
        for (i, c) in input.connections.enumerated() {
            let d = connectionDevice[i]
            let unknownKey: String
            let spelling: String
            switch c.member {
            case .dn(let dn):
                let norm = DNNormalizer.normalize(dn)
                if let r = rank(ofDN: norm) ?? formerDNs[norm] {
                    devices[d].connected.insert(r)
                    continue
                }
                unknownKey = "dn:" + norm
                spelling = dn
            case .name(let name):
                let named = users.indices.filter { users[$0].folded == Folding.fold(name) }
                if !named.isEmpty {
                    devices[d].connected.formUnion(named)
                    continue
                }
                unknownKey = "name:" + Folding.fold(name)
                spelling = name
            }
            var u = unknown[unknownKey] ?? (spelling, [])
            if RefOrder.less(spelling, u.spelling) { u.spelling = spelling }
            u.devices.insert(d)
            unknown[unknownKey] = u
        }
        for (_, u) in unknown {
            let names = u.devices.sorted { RefOrder.less([.s(devices[$0].key), .s(name($0))], [.s(devices[$1].key), .s(name($1))]) }
                .map(name)
            warnings.append(Finding(kind: "unknown-member", value: u.spelling, devices: names, message: ""))
        }
    }

    var stableIDs: [String: Int] = [:]
    var formerDNsOfUser: [Int: [String]] = [:]

    /// R8: the newest report; ties by source, device, platform, more accounts (spec silent).
    func newestReport(_ d: Int) -> DeviceReport? {
        devices[d].reports.min { a, b in
            if a.reportedAt != b.reportedAt { return a.reportedAt > b.reportedAt }
            if !RefOrder.same(a.source, b.source) { return RefOrder.less(a.source, b.source) }
            if !RefOrder.same(a.device, b.device) { return RefOrder.less(a.device, b.device) }
            if a.platform != b.platform { return a.platform.rawValue < b.platform.rawValue }
            return a.accounts.count > b.accounts.count
        }
    }

    /// How the device is named: its entry, else its newest report, else its binding group,
    /// else its report error.
    func name(_ d: Int) -> String {
        let dev = devices[d]
        if let n = dev.entryName { return n }
        if let r = newestReport(d) { return r.device }
        if let g = dev.groups.map(\.device).min(by: RefOrder.less) { return g }
        return dev.problems.compactMap(\.device).min(by: RefOrder.less) ?? dev.key
    }

    /// R8 (and R15): why nothing is decided on the device, or nil when it is active.
    func deferredReason(_ d: Int) -> String? {
        if devices[d].isTwin { return "ambiguous device (R15)" }
        let firstProblem = devices[d].problems.min { a, b in
            RefOrder.less([.s(a.source), .i(Int64(a.line ?? -1)), .s(a.message), .s(a.device ?? "")],
                          [.s(b.source), .i(Int64(b.line ?? -1)), .s(b.message), .s(b.device ?? "")])
        }
        if let p = firstProblem { return "no valid report: " + p.message }
        guard let r = newestReport(d) else { return Reason.noReport }
        let age = input.now - r.reportedAt
        if age > policy.activeWithin {
            return "inactive: newest report \(UTCTime.iso8601(r.reportedAt)) is \(UTCTime.age(age)) old (active_within \(UTCTime.duration(policy.activeWithin)))"
        }
        return nil
    }
}

// MARK: - One device: R4-R13, R11

extension ReferencePlanner {
    func user(_ r: Int) -> DirectoryUser { users[r].entry }

    /// Users whose local name folds to `f`: a username without a field, or a field.
    func localOwners(_ f: String) -> [Int] {
        users.indices.filter { users[$0].foldedLocal == f }
    }

    /// Order of a report's accounts where one must be picked (spec silent, R14).
    static func accountLess(_ a: LocalAccount, _ b: LocalAccount) -> Bool {
        // spec silent: a listing that marks the account a system one first (false, unknown, true).
        func flag(_ x: Bool?) -> Int64 { x.map { $0 ? 2 : 0 } ?? 1 }
        func key(_ x: LocalAccount) -> [RefOrder.Key] {
            [.s(x.name), .i(x.effectiveUID ?? Int64.min), .s(x.sid ?? ""), .s(x.home ?? ""), .s(x.fullName ?? ""),
             .s(x.shell ?? ""), .s(x.accountType ?? ""), .i(x.hidden ? 0 : 1), .i(flag(x.realUser)), .i(flag(x.enabled)),
             .i(x.uid ?? Int64.min), .i(x.uidSigned ?? Int64.min)]
        }
        return RefOrder.less(key(a), key(b))
    }

    func emit(_ d: Int, _ decision: Decision, folded: String, normDN: String) {
        // Report order: by device, then by user (folded, as spelled), then by DN.
        let dev = devices[d]
        // The device key compares canonically only (two entries whose names are canonically
        // equal but spelled with other bytes are ordered by their spelling).
        let key: [RefOrder.Key] = [.s(String(decoding: dev.key._nfcCodeUnits, as: UTF8.self)), .s(dev.entryName ?? ""), .s(dev.entryDN ?? ""), .s(folded),
                                   .s(decision.user), .s(normDN), .s(decision.userDN)]
        decisions.append((d, key, decision))
    }

    func change(_ d: Int, _ dn: String, _ op: ChangeOp, _ attribute: String, _ values: [String], subject: String) {
        changes.append((d, Change(dn: dn, op: op, attribute: attribute, values: values, subject: subject)))
    }

    func decide(_ d: Int) {
        let deviceName = name(d)
        let deferred = deferredReason(d)
        let report: DeviceReport? = deferred == nil ? newestReport(d) : nil
        let connected = devices[d].connected

        // The device's binding groups: the one named like the device first (spec silent).
        let wantedNorm = DNNormalizer.normalize(layout.groupDN(device: deviceName))
        let groups = devices[d].groups.sorted { a, b in
            let na = DNNormalizer.normalize(a.dn), nb = DNNormalizer.normalize(b.dn)
            if (na == wantedNorm) != (nb == wantedNorm) { return na == wantedNorm }
            return RefOrder.less([.s(na), .s(a.dn)], [.s(nb), .s(b.dn)])
        }
        if groups.count > 1 {
            warnings.append(Finding(kind: "duplicate-binding-group", value: deviceName, devices: [deviceName], message: ""))
        }
        let targetDN = groups.first?.dn ?? layout.groupDN(device: deviceName)

        // Slots: the binding values of each user (a record with the user's stable id names
        // the user even under an old DN, section 8b), or of a DN no user has.
        var movedFrom: [String: Int] = [:]
        var parsed: [(group: Int, raw: String, record: BindingRecord, owner: Int?)] = []
        for (g, group) in groups.enumerated() {
            for raw in group.records {
                guard let rec = layout.parseRecord(raw) else { continue }
                let norm = DNNormalizer.normalize(rec.userDN)
                var owner: Int?
                if let id = rec.stableID, let r = stableIDs[id.lowercased()] {
                    owner = r
                    if users[r].normDN != norm && rank(ofDN: norm) == nil { movedFrom[norm] = r }
                }
                parsed.append((g, raw, rec, owner))
            }
        }
        var slots: [Slot] = []
        func slotIndex(_ norm: String, owner: Int? = nil) -> Int {
            let r = owner ?? rank(ofDN: norm) ?? movedFrom[norm]
            if let k = slots.firstIndex(where: { r != nil ? $0.user == r : ($0.user == nil && $0.normDN == norm) }) { return k }
            slots.append(Slot(user: r, normDN: norm))
            return slots.count - 1
        }
        let placeholder = layout.placeholderMember.map(DNNormalizer.normalize)
        for (g, group) in groups.enumerated() {
            for raw in group.members where DNNormalizer.normalize(raw) != placeholder {
                slots[slotIndex(DNNormalizer.normalize(raw))].members.append((g, raw))
            }
        }
        for p in parsed {
            slots[slotIndex(DNNormalizer.normalize(p.record.userDN), owner: p.owner)].records.append((p.group, p.raw, p.record.localName))
        }
        for k in slots.indices {
            slots[k].members.sort { RefOrder.less([.i(Int64($0.group)), .s($0.raw)], [.i(Int64($1.group)), .s($1.raw)]) }
            slots[k].records.sort { RefOrder.less([.i(Int64($0.group)), .s($0.raw)], [.i(Int64($1.group)), .s($1.raw)]) }
        }
        currentBindings += slots.filter(\.managed).count
        func slot(of r: Int) -> Slot? { slots.first { $0.user == r } }

        // Local names held by bindings that stay after this run: their user is connected, or
        // held by a conflict (R4).
        func heldBy(_ folded: String) -> [Int] {
            slots.filter { s in
                guard let u = s.user, s.managed, users[u].conflict != nil || connected.contains(u) else { return false }
                return s.records.contains { Folding.fold($0.local) == folded }
            }.compactMap(\.user)
        }

        /// The record a binding is judged by: one naming the user's local name, else the smallest.
        func chosenRecord(_ s: Slot, _ foldedLocal: String) -> String? {
            (s.records.first { Folding.fold($0.local) == foldedLocal } ?? s.records.min { RefOrder.less($0.raw, $1.raw) })?.local
        }
        func groupsInOrder(_ s: Slot) -> [Int] {
            var out: [Int] = []
            for g in s.members.map(\.group) + s.records.map(\.group) where !out.contains(g) { out.append(g) }
            return out
        }
        func removeBinding(_ s: Slot, subject: String) {
            for g in groupsInOrder(s) {
                let members = s.members.filter { $0.group == g }.map(\.raw)
                let records = s.records.filter { $0.group == g }.map(\.raw)
                if !members.isEmpty { change(d, groups[g].dn, .deleteMember, layout.memberAttribute, members, subject: subject) }
                if !records.isEmpty { change(d, groups[g].dn, .deleteRecord, layout.recordAttribute, records, subject: subject) }
            }
        }
        func removeRecords(_ records: [(group: Int, raw: String, local: String)], subject: String) {
            var gs: [Int] = []
            for r in records where !gs.contains(r.group) { gs.append(r.group) }
            for g in gs {
                change(d, groups[g].dn, .deleteRecord, layout.recordAttribute, records.filter { $0.group == g }.map(\.raw), subject: subject)
            }
        }
        func staleRecord(_ s: Slot, username: String?) {
            // spec silent: a record without its membership (an interrupted run) is removed.
            warnings.append(Finding(kind: "stale-record", value: s.records.map(\.raw).sorted(by: RefOrder.less).joined(separator: "; "),
                                    users: username.map { [$0] } ?? [], devices: [deviceName], message: ""))
        }
        func unmanaged(_ s: Slot, username: String?) {
            // spec silent: a member added by hand and not connected is left alone, with a warning.
            warnings.append(Finding(kind: "unmanaged-member", value: s.members[0].raw, users: username.map { [$0] } ?? [],
                                    devices: [deviceName], message: ""))
        }

        // Every connected user and every user with binding values here, in rank order.
        let subjects = Set(connected).union(slots.compactMap(\.user)).sorted()
        var newMembers: [String] = []
        var newRecords: [String] = []

        for r in subjects {
            let u = users[r]
            let s = slot(of: r)
            let isConnected = connected.contains(r)
            let managed = s?.managed ?? false
            let boundName = managed ? s.flatMap { chosenRecord($0, u.foldedLocal) } : nil
            let dn = u.entry.dn
            func decision(_ action: Action, _ account: String?, _ reason: String, _ notices: [String] = []) {
                emit(d, Decision(user: u.username, userDN: dn, device: deviceName, action: action, localAccount: account,
                                 reason: reason, notices: notices), folded: u.folded, normDN: u.normDN)
            }

            // R4: a user in a R1-R3 conflict gains no binding; an existing one stays.
            if let kind = u.conflict {
                if isConnected || managed {
                    decision(.conflict, boundName, kind, managed ? [Notice.heldByConflict] : [])
                } else if let s, s.memberOnly {
                    unmanaged(s, username: u.username)
                }
                continue
            }
            // R8: nothing is bound or unbound on missing or bad evidence.
            if let deferred {
                if isConnected || managed {
                    decision(.deferred, boundName, deferred)
                } else if let s, s.memberOnly {
                    unmanaged(s, username: u.username)
                }
                continue
            }
            guard let report else { continue }
            // R11: bound but no longer connected.
            guard isConnected else {
                if let s, s.managed {
                    removeBinding(s, subject: dn)
                    decision(.unbind, boundName, Reason.notConnected)
                } else if let s, s.memberOnly {
                    unmanaged(s, username: u.username)
                } else if let s, s.recordOnly {
                    removeRecords(s.records, subject: dn)
                    staleRecord(s, username: u.username)
                }
                continue
            }
            if let s, s.managed, let bound = boundName {
                if Folding.fold(bound) == u.foldedLocal {
                    // R9 already bound.
                    var notices: [String] = []
                    if !report.accounts.contains(where: { Folding.fold($0.name) == u.foldedLocal }) {
                        notices.append(Notice.boundAccountMissing(bound))
                    }
                    if let old = followMove(s, r, groups: groups, device: d) { notices.append(Notice.moved(from: old)) }
                    decision(.bound, bound, Reason.bound, notices)
                } else {
                    // R10 fields are frozen once bound.
                    conflicts.append(Finding(kind: "changed-after-binding", value: u.localName, users: [u.username],
                                             devices: [deviceName], message: ""))
                    decision(.conflict, bound, "changed-after-binding")
                }
                continue
            }

            // A pair with no binding yet: R5, R6, R7, R13.
            let outcome = fresh(r, report: report, deviceName: deviceName, heldBy: heldBy, connected: connected)
            switch outcome {
            case .conflict(let finding, let account):
                conflicts.append(finding)
                if let s, s.recordOnly {
                    removeRecords(s.records, subject: dn)
                    staleRecord(s, username: u.username)
                }
                decision(.conflict, account, finding.kind)
            case .takeover(let account), .provision(let account, _):
                var notices: [String] = []
                var action = Action.provision
                var reason = Reason.provision
                if case .takeover = outcome {
                    // R6 takeover, with R12's notices.
                    action = .takeover
                    reason = Reason.takeover
                    notices = report.platform == .macos ? [Notice.signOut, Notice.macOSLogout] : [Notice.signOut]
                    if account != u.localName { notices.append(Notice.caseOnly(device: account, local: u.localName)) }
                    let unprotected = report.accounts.filter { !RefRules.isProtected($0, on: report.platform, policy: policy) }
                    if unprotected.count == 1 {
                        warnings.append(Finding(kind: "sole-local-account", value: account, users: [u.username],
                                                devices: [deviceName], message: ""))
                    }
                } else if case .provision(_, let likely) = outcome, !likely.isEmpty {
                    // R7 with on_likely_mismatch = "provision": a warning instead of a hold.
                    let names = likely.map { "'\($0.name)'" }.joined(separator: ", ")
                    notices.append("likely mismatch: \(names) may be this user's account; provisioned anyway (on_likely_mismatch = \"provision\")")
                    warnings.append(Finding(kind: "likely-mismatch", value: likely[0].name, users: [u.username],
                                            devices: [deviceName], message: ""))
                }
                let record = layout.recordValue(localName: account, userDN: dn, stableID: u.entry.stableID,
                                                formerDNs: (formerDNsOfUser[r] ?? []).sorted(by: RefOrder.less))
                if let s, s.memberOnly {
                    // spec silent: a membership added by hand for a connected user is adopted:
                    // its record is added, nothing else.
                    change(d, groups[s.members[0].group].dn, .addRecord, layout.recordAttribute, [record], subject: dn)
                    decision(.bound, account, Reason.adopted, [Notice.adopted])
                    continue
                }
                var keepRecord = false
                if let s, s.recordOnly {
                    let stale = s.records.filter { Folding.fold($0.local) != Folding.fold(account) }
                    keepRecord = stale.count < s.records.count
                    removeRecords(stale, subject: dn)
                }
                if groups.isEmpty {
                    newMembers.append(dn)
                    newRecords.append(record)
                } else {
                    change(d, targetDN, .addMember, layout.memberAttribute, [dn], subject: dn)
                    if !keepRecord { change(d, targetDN, .addRecord, layout.recordAttribute, [record], subject: dn) }
                }
                decision(action, account, reason, notices)
            }
        }

        // R11: bindings of users no longer in the directory.
        for s in slots where s.user == nil {
            let dn = s.members.first?.raw ?? s.records.first.flatMap { layout.parseRecord($0.raw)?.userDN } ?? s.normDN
            let name = DNNormalizer.firstRDNValue(dn)
            var gone = Decision(user: name, userDN: dn, device: deviceName, action: .unbind,
                                localAccount: s.managed ? chosenRecord(s, "") : nil, reason: Reason.goneFromDirectory)
            switch (s.managed, s.memberOnly, deferred) {
            case (true, _, let why?):
                gone.action = .deferred   // R8 first: not even a gone user's binding goes on bad evidence
                gone.reason = why + "; the user is no longer in the directory"
                emit(d, gone, folded: Folding.fold(name), normDN: s.normDN)
            case (true, _, nil):
                removeBinding(s, subject: dn)
                emit(d, gone, folded: Folding.fold(name), normDN: s.normDN)
            case (false, true, _):
                unmanaged(s, username: nil)
            case (false, false, nil):
                removeRecords(s.records, subject: dn)
                staleRecord(s, username: nil)
            case (false, false, _?):
                break
            }
        }

        // A device without a binding group gets one, with its first bindings.
        guard !newMembers.isEmpty else { return }
        var entry = Change(dn: targetDN, op: .addEntry)
        entry.attributes.append(EntryAttribute(name: "objectClass", values: layout.objectClasses))
        entry.attributes.append(EntryAttribute(name: "cn", values: [deviceName]))
        let first = (layout.placeholderMember.map { [$0] } ?? []) + newMembers
        entry.attributes.append(EntryAttribute(name: layout.memberAttribute, values: first))
        entry.attributes.append(EntryAttribute(name: layout.recordAttribute, values: newRecords))
        changes.append((d, entry))
    }

    /// Section 8b: a bound user whose DN changed keeps the binding; member values and
    /// records naming an old DN are replaced by ones naming the current DN (the record keeps
    /// its local name, gains the stable id and remembers the old DNs). Returns the old DN.
    func followMove(_ s: Slot, _ r: Int, groups: [BindingGroup], device d: Int) -> String? {
        let current = users[r].normDN
        let dn = users[r].entry.dn
        func isOld(_ value: String) -> Bool { DNNormalizer.normalize(value) != current }
        for g in groups.indices {
            let members = s.members.filter { $0.group == g }.map(\.raw)
            let oldMembers = members.filter(isOld)
            let oldRecords = s.records.filter { $0.group == g }.compactMap { rec in
                layout.parseRecord(rec.raw).flatMap { isOld($0.userDN) ? (raw: rec.raw, record: $0) : nil }
            }
            if !oldMembers.isEmpty {
                change(d, groups[g].dn, .deleteMember, layout.memberAttribute, oldMembers, subject: dn)
                if members.allSatisfy(isOld) { change(d, groups[g].dn, .addMember, layout.memberAttribute, [dn], subject: dn) }
            }
            guard !oldRecords.isEmpty else { continue }
            change(d, groups[g].dn, .deleteRecord, layout.recordAttribute, oldRecords.map(\.raw), subject: dn)
            // The rewritten record keeps the local name and every earlier DN (for device
            // entries that still name one), and gains the stable id.
            var rewritten: [String] = []
            for old in oldRecords {
                var former: [String] = []
                for x in old.record.formerDNs + [old.record.userDN] where isOld(x) {
                    if !former.contains(where: { DNNormalizer.normalize($0) == DNNormalizer.normalize(x) }) { former.append(x) }
                }
                let value = layout.recordValue(localName: old.record.localName, userDN: dn, stableID: users[r].entry.stableID,
                                               formerDNs: former)
                let exists = rewritten.contains(value) || s.records.contains { $0.raw == value }
                if !exists { rewritten.append(value) }
            }
            if !rewritten.isEmpty { change(d, groups[g].dn, .addRecord, layout.recordAttribute, rewritten, subject: dn) }
        }
        // The DN it had: the first old record's, else the first old member value.
        let oldRecord = s.records.lazy.compactMap { self.layout.parseRecord($0.raw) }.first { isOld($0.userDN) }
        return oldRecord?.userDN ?? s.members.first { isOld($0.raw) }?.raw
    }

    enum Fresh {
        case takeover(String)
        case provision(String, likely: [LocalAccount])
        case conflict(Finding, account: String?)
    }

    func fresh(_ r: Int, report: DeviceReport, deviceName: String, heldBy: (String) -> [Int], connected: Set<Int>) -> Fresh {
        let u = users[r]
        func conflict(_ kind: String, _ value: String, _ account: String?) -> Fresh {
            .conflict(Finding(kind: kind, value: value, users: [u.username], devices: [deviceName], message: ""), account: account)
        }
        let platform = report.platform
        // spec silent: an account whose binding stays (another user's) can't be taken over.
        if heldBy(u.foldedLocal).contains(where: { $0 != r }) {
            return conflict("account-already-bound", u.localName, nil)
        }
        // R6: an account whose name folds equal to the local name.
        let matches = report.accounts.filter { Folding.fold($0.name) == u.foldedLocal }
        if !matches.isEmpty {
            let exact = matches.filter { $0.name == u.localName }.min(by: Self.accountLess)
            if exact == nil && matches.count > 1 {
                // spec silent: several case variants and none spelled exactly: which one is ambiguous.
                return conflict("ambiguous-local-account", u.localName, nil)
            }
            let account = exact ?? matches[0]
            // R5 protected accounts are never taken over.
            if RefRules.isProtected(account, on: platform, policy: policy) {
                return conflict("protected-account", account.name, account.name)
            }
            // R13 (as R15's paragraph says) for the names taken over too.
            if !RefRules.isValidExistingName(account.name, on: platform) {
                return conflict("invalid-local-name", account.name, account.name)
            }
            return .takeover(account.name)
        }
        // R5 again: a protected name is never provisioned either (root, `_x`, policy names).
        if RefRules.isProtected(LocalAccount(name: u.localName), on: platform, policy: policy) {
            return conflict("protected-account", u.localName, nil)
        }
        // R7 likely mismatch: an unbound, unprotected account that very likely is the user's.
        var found: [Int] = []
        for (i, a) in report.accounts.enumerated() {
            let f = Folding.fold(a.name)
            var evidence = false
            if platform != .windows, let n = u.entry.uidNumber, a.effectiveUID == n { evidence = true }
            if let home = a.home, let base = Self.homeBase(home), [u.folded, u.foldedLocal].contains(Folding.fold(base)) {
                evidence = true
            }
            if let full = a.fullName, !full.isEmpty, let display = u.entry.displayName, !display.isEmpty,
               Folding.fold(full) == Folding.fold(display) {
                evidence = true
            }
            guard evidence, heldBy(f).isEmpty, !RefRules.isProtected(a, on: platform, policy: policy) else { continue }
            // An account that is the local name of another user connected here is that user's.
            if localOwners(f).contains(where: { $0 != r && connected.contains($0) }) { continue }
            found.append(i)
        }
        let likely = found.map { report.accounts[$0] }.sorted(by: Self.accountLess)
        if !likely.isEmpty && policy.onLikelyMismatch == .hold {
            return conflict("likely-mismatch", likely[0].name, nil)
        }
        // R13 valid names for a provision.
        if !RefRules.isValidNewName(u.localName, on: platform) {
            return conflict("invalid-local-name", u.localName, nil)
        }
        return .provision(u.localName, likely: likely)
    }

    /// The last component of a home directory, '/' or '\' separated.
    static func homeBase(_ home: String) -> String? {
        let parts = home.split(whereSeparator: { $0 == "/" || $0 == "\\" })
        return parts.last.map(String.init)
    }

    // MARK: - The report

    func result() -> ReferencePlan {
        var out = ReferencePlan()
        // R14: decisions sorted by device, then user.
        out.decisions = decisions.sorted { RefOrder.less($0.sortKey, $1.sortKey) }.map { ReferencePlan.line($0.decision) }
        out.conflicts = conflicts.map(ReferencePlan.line).sorted(by: RefOrder.less)
        out.warnings = warnings.map(ReferencePlan.line).sorted(by: RefOrder.less)
        out.errors = errors.map(ReferencePlan.line).sorted(by: RefOrder.less)
        out.changes = changes.map { ReferencePlan.line($0.change) }.sorted(by: RefOrder.less)
        let actions = decisions.map(\.decision.action)
        func count(_ a: Action) -> Int { actions.filter { $0 == a }.count }
        out.summary = ReferencePlan.summaryLines(
            users: input.users.count, devices: devices.count, takeover: count(.takeover), provision: count(.provision),
            bound: count(.bound), unbind: count(.unbind), deferred: count(.deferred), conflict: count(.conflict),
            changes: changes.count)
        out.currentBindings = currentBindings
        return out
    }
}
