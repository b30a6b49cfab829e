// Which device a report is about, and whether it may be used at all.
//
// R8: a report dated more than `[devices] max_clock_skew` after `now` is an error for its
// file and is never used, so a forged or mis-clocked file cannot outrank the device's real
// reports ("newest wins" would otherwise let a file dated 2099 win forever).
//
// R15: two device entries are two devices, even when their names fold equal (`straße` and
// `STRASSE`; `Lab1` and `lab1` in two OUs). A report, a report error or a binding group
// names a device only by a name compared case-insensitively, so for such names it cannot be
// told which entry it belongs to: every one of those devices is deferred, and each report
// that could belong to either is an error naming the ambiguity. Nothing is merged.

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
        return "the report for device \(q(r.device)) is dated \(ISOTime.format(r.reportedAt)), \(ISOTime.age(ahead)) "
            + "after this run's clock (more than [devices] max_clock_skew, \(ISOTime.duration(skew)), in the future): "
            + "not used, so it cannot outrank the device's real reports; correct the clock of the device "
            + "(or of the agent that wrote the file), or remove the file"
    }

    /// The device of a device entry named `name` (R15): entries spelled alike share one device;
    /// an entry spelled differently from one whose name folds equal gets a device of its own.
    func entryDevice(_ name: String) -> Int {
        let d = device(name)
        guard let spelling = devices[d].entrySpelling else {
            devices[d].entrySpelling = name
            return d
        }
        if spelling == name {
            devices[d].entrySpelling = Self.minSpelling(spelling, name)
            return d
        }
        let key = devices[d].folded
        var list = twinDevices[key] ?? [d]
        if let e = list.first(where: { devices[$0].entrySpelling == name }) {
            devices[e].entrySpelling = Self.minSpelling(devices[e].entrySpelling, name)
            return e
        }
        let e = devices.count
        var info = DeviceInfo(folded: key)
        info.entrySpelling = name
        devices.append(info)
        list.append(e)
        twinDevices[key] = list
        return e
    }

    /// Marks every device of entries whose names fold equal with the spellings of all of them.
    func markTwins() {
        for (key, list) in twinDevices {
            let sorted = list.sorted { stringLess(devices[$0].entrySpelling ?? "", devices[$1].entrySpelling ?? "") }
            twinDevices[key] = sorted
            let spellings = sorted.map { devices[$0].entrySpelling ?? key }
            for d in sorted { devices[d].twins = spellings }
        }
    }

    /// The error for a report that could belong to several device entries (R15).
    func ambiguousReport(_ r: DeviceReport, twins: [String]) -> InputProblem {
        InputProblem(source: r.source, message:
            "the report names the device \(q(r.device)), which could be any of the \(twins.count) device entries "
            + "\(twins.map(q).joined(separator: ", ")) (their names are equal compared case-insensitively): not used, "
            + "and all of them are deferred (R15: distinct entries are never merged); rename the device entries "
            + "so that no two names fold equal")
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
    /// Why the devices of entries whose names fold equal are never decided (R15).
    static func twinReason(_ twins: [String]) -> String {
        "ambiguous device: the device entries \(twins.map(q).joined(separator: ", ")) have names that are equal "
            + "compared case-insensitively, so no report can be told to be one's rather than another's (R15); "
            + "rename them so that no two names fold equal"
    }
}
