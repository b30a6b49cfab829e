// Which device a report is about, and whether it may be used at all.
//
// R8: a report dated more than `[devices] max_clock_skew` after `now` is an error for its
// file and is never used, so a forged or mis-clocked file cannot outrank the device's real
// reports ("newest wins" would otherwise let a file dated 2099 win forever).
//
// R15: one directory entry, one device. Two device entries are two devices, even when their
// names fold equal (`straße` and `STRASSE`) and even when they are spelled exactly alike
// (`cn=lab1` in two OUs under the devices base). A report, a report error or a binding group
// names a device only by a name compared case-insensitively, so for such names it cannot be
// told which entry it belongs to: every one of those devices is deferred (nothing is bound
// or unbound there; their binding groups, one shared group for entries spelled alike, keep
// their members), the messages name every entry by its DN, and the fix is to rename all but
// one of them. Nothing is merged.
// An entry is told from another by its DN as the server returned it (a connection's
// `sourceDN`, a `DeviceEntry.dn`); where no DN is known, an entry spelled alike is the same.

import LDAPSyntax

extension Planner {
    /// The input as the planner uses it: reports dated more than `policy.maxClockSkew` after
    /// `now` moved to `problems` (R8). `plan` does this itself; callers that show the input
    /// too (`explain`) pass the screened input to both, so they agree. Idempotent.
    public static func screened(_ input: PlanInput) -> PlanInput { Planning.withoutFutureReports(input) }
}

extension Planning {
    /// The input without reports dated beyond the clock skew; each of them becomes an error
    /// for its file naming its device (so the device is deferred, R8). The input is returned
    /// as is (no copy) when no report is in the future.
    static func withoutFutureReports(_ input: PlanInput) -> PlanInput {
        let skew = max(0, input.policy.maxClockSkew)
        let (latest, overflow) = input.now.addingReportingOverflow(skew)
        if overflow { return input }
        guard input.reports.contains(where: { $0.reportedAt > latest }) else { return input }
        var screened = input
        screened.reports = []
        screened.reports.reserveCapacity(input.reports.count)
        for r in input.reports {
            guard r.reportedAt > latest else {
                screened.reports.append(r)
                continue
            }
            screened.problems.append(InputProblem(source: r.source, device: r.device, message: futureMessage(r, now: input.now, skew: skew)))
        }
        return screened
    }

    static func futureMessage(_ r: DeviceReport, now: UnixTime, skew: Int64) -> String {
        let ahead = r.reportedAt &- now
        return "the report for device \(q(r.device)) is dated \(UTCTime.iso8601(r.reportedAt)), \(UTCTime.age(ahead)) "
            + "after this run's clock (more than [devices] max_clock_skew, \(UTCTime.duration(skew)), in the future): "
            + "not used, so it cannot outrank the device's real reports; correct the clock of the device "
            + "(or of the agent that wrote the file), or remove the file"
    }

    /// The device of the device entry named `name` with the DN `dn` (R15): one device per
    /// entry. Mentions of one entry (its connections, its place in the entry list) share a
    /// device: same spelling and the same DN, or no DN known on one side. Any other entry
    /// whose name folds equal gets a device of its own, recorded in `twinDevices`.
    func entryDevice(_ name: String, dn: String?) -> Int {
        let d = device(name)
        guard let spelling = devices[d].entrySpelling else {
            devices[d].entrySpelling = name
            devices[d].entryDN = dn
            return d
        }
        let key = devices[d].folded
        guard let list = twinDevices[key] else {
            if spelling == name && Self.sameEntry(devices[d].entryDN, dn) {
                claim(d, name, dn)
                return d
            }
            return addTwin(of: [d], key, name, dn)
        }
        if let e = list.first(where: { devices[$0].entrySpelling == name && Self.sameEntry(devices[$0].entryDN, dn) }) {
            claim(e, name, dn)
            return e
        }
        return addTwin(of: list, key, name, dn)
    }

    /// A new device for another entry whose name folds to `key`, after those in `list`.
    private func addTwin(of list: [Int], _ key: String, _ name: String, _ dn: String?) -> Int {
        let e = devices.count
        var info = DeviceInfo(folded: key)
        info.entrySpelling = name
        info.entryDN = dn
        devices.append(info)
        twinDevices[key] = list + [e]
        return e
    }

    /// Records another mention of the entry of device `d` (the smallest spelling and DN of
    /// canonically equivalent ones, so the input order never shows).
    private func claim(_ d: Int, _ name: String, _ dn: String?) {
        devices[d].entrySpelling = Self.minSpelling(devices[d].entrySpelling, name)
        if let dn { devices[d].entryDN = Self.minSpelling(devices[d].entryDN, dn) }
    }

    /// Two mentions name the same entry unless both carry a DN and the DNs differ. A server
    /// returns each entry under one DN, so a different DN is a different entry (canonically
    /// equivalent spellings count as one: slapd would not hold both).
    static func sameEntry(_ a: String?, _ b: String?) -> Bool {
        guard let a, let b else { return true }
        return a == b
    }

    /// Marks every device of entries whose names fold equal with all of those entries, sorted.
    func markTwins() {
        for (key, list) in twinDevices {
            let sorted = list.sorted { a, b in
                let c = stringCompare(devices[a].entrySpelling ?? "", devices[b].entrySpelling ?? "")
                return c != 0 ? c < 0 : stringLess(devices[a].entryDN ?? "", devices[b].entryDN ?? "")
            }
            twinDevices[key] = sorted
            let entries = sorted.map { EntryName(name: devices[$0].entrySpelling ?? key, dn: devices[$0].entryDN) }
            for d in sorted { devices[d].twins = entries }
        }
    }

    /// The error for a report that could belong to several device entries (R15).
    func ambiguousReport(_ r: DeviceReport, twins: [EntryName]) -> InputProblem {
        InputProblem(source: r.source, message:
            "the report names the device \(q(r.device)), which could be any of the \(twins.count) device entries "
            + "\(EntryName.list(twins)) (\(EntryName.sameSpelling(twins).map { "\(twins.count == 2 ? "both" : "all") named \(q($0))" } ?? "their names are equal compared case-insensitively")): "
            + "not used, and all of them are deferred (R15: distinct entries are never merged); " + EntryName.fix(twins))
    }

    /// The error for device entries whose names fold equal when no report named them (a
    /// report that did gets `ambiguousReport`, which says the same).
    func ambiguousEntries(_ twins: [EntryName]) -> InputProblem {
        InputProblem(source: twins.compactMap(\.dn).first ?? "device entries", message:
            EntryName.describe(twins) + ": they are \(twins.count) devices (R15: distinct entries are never merged), and "
            + "no report or binding group can be told to be one's rather than another's, so every pair on them is "
            + "deferred and nothing is bound or unbound there; " + EntryName.fix(twins))
    }

    /// Of the devices of entries whose names fold equal, the one a binding group belongs to:
    /// the one whose group DN it is spelled as, else the one spelled exactly like its `cn`,
    /// else the one whose group DN it is once normalised, else the first. (The normalised DN
    /// folds case fully, which the server need not: `cn=straße` and `cn=STRASSE` are two
    /// entries to slapd.)
    func twinForGroup(_ g: BindingGroup, among twins: [Int]) -> Int {
        func groupDN(_ d: Int) -> String { layout.groupDN(device: devices[d].entrySpelling ?? "") }
        if let d = twins.first(where: { groupDN($0) == g.dn }) { return d }
        if let d = twins.first(where: { devices[$0].entrySpelling == g.device }) { return d }
        let norm = DNNormalizer.normalize(g.dn)
        if let d = twins.first(where: { DNNormalizer.normalize(groupDN($0)) == norm }) { return d }
        return twins[0]
    }

    static func minSpelling(_ old: String?, _ new: String) -> String {
        guard let old else { return new }
        return stringLess(new, old) ? new : old
    }
}

extension DeviceStage {
    /// Why the devices of entries whose names fold equal are never decided (R15); `dn` is
    /// the entry of this device, named because entries spelled alike are told apart by it.
    static func twinReason(_ twins: [EntryName], dn: String?) -> String {
        "ambiguous device" + (dn.map { " (the entry \($0))" } ?? "") + ": " + EntryName.describe(twins)
            + ", so no report can be told to be one's rather than another's and nothing is bound or unbound on "
            + "any of them (R15: distinct entries are never merged); " + EntryName.fix(twins)
    }
}

/// A device entry of a set whose names fold equal (R15), as the messages name it.
struct EntryName: Hashable {
    var name: String
    var dn: String?

    /// `'straße' (cn=straße,ou=devices,…)`, or the quoted name alone when the DN is unknown.
    var label: String { dn.map { "\(q(name)) (\($0))" } ?? q(name) }

    /// The one spelling of them all, when every entry is spelled alike and has a DN to tell it by.
    static func sameSpelling(_ twins: [EntryName]) -> String? {
        guard let first = twins.first, twins.allSatisfy({ $0.name == first.name && $0.dn != nil }) else { return nil }
        return first.name
    }

    static func list(_ twins: [EntryName]) -> String {
        let labels = sameSpelling(twins) == nil ? twins.map(\.label) : twins.map { $0.dn ?? q($0.name) }
        guard labels.count > 1 else { return labels.joined() }
        return labels.dropLast().joined(separator: ", ") + " and " + labels[labels.count - 1]
    }

    /// "the device entries A and B are both named 'lab1'", or "... have names that are equal
    /// compared case-insensitively".
    static func describe(_ twins: [EntryName]) -> String {
        if let name = sameSpelling(twins) {
            return "the device entries \(list(twins)) are \(twins.count == 2 ? "both" : "all") named \(q(name))"
        }
        return "the device entries \(list(twins)) have names that are equal compared case-insensitively"
    }

    static func fix(_ twins: [EntryName]) -> String {
        (twins.count == 2 ? "rename one of the two device entries" : "rename all but one of the \(twins.count) device entries")
            + " so that no two device names are equal compared case-insensitively (their binding group is named by the device name)"
    }
}
