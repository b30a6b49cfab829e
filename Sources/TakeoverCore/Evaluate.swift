// R5, R6, R7 and R13 for the pairs of one active device that have no binding yet.

import LDAPSyntax

extension DeviceStage {
    /// A total order on a report's accounts, so the report's own order never matters (R14).
    func accountLess(_ a: LocalAccount, _ b: LocalAccount) -> Bool {
        var c = stringCompare(a.name, b.name); if c != 0 { return c < 0 }
        if a.effectiveUID != b.effectiveUID { return (a.effectiveUID ?? Int64.min) < (b.effectiveUID ?? Int64.min) }
        c = stringCompare(a.sid ?? "", b.sid ?? ""); if c != 0 { return c < 0 }
        c = stringCompare(a.home ?? "", b.home ?? ""); if c != 0 { return c < 0 }
        c = stringCompare(a.fullName ?? "", b.fullName ?? ""); if c != 0 { return c < 0 }
        // Every other fact too: accounts listed twice with different facts (shell, hidden,
        // real_user...) must not be chosen by their place in the report (R14); a listing
        // that marks it a system account first (a wrong "protected" only holds a takeover back).
        c = stringCompare(a.shell ?? "", b.shell ?? ""); if c != 0 { return c < 0 }
        c = stringCompare(a.accountType ?? "", b.accountType ?? ""); if c != 0 { return c < 0 }
        func rank(_ x: Bool?) -> Int { x.map { $0 ? 2 : 0 } ?? 1 }
        if a.hidden != b.hidden { return a.hidden }
        if a.realUser != b.realUser { return rank(a.realUser) < rank(b.realUser) }
        if a.enabled != b.enabled { return rank(a.enabled) < rank(b.enabled) }
        if a.uid != b.uid { return (a.uid ?? Int64.min) < (b.uid ?? Int64.min) }
        return (a.uidSigned ?? Int64.min) < (b.uidSigned ?? Int64.min)
    }

    /// Why the report's account `a` is protected (R5), nil when it is not. The account is
    /// read in place; its name is folded only when a rule compares it (`folded`, when the
    /// caller knows it).
    func protection(_ report: DeviceReport, _ a: Int, folded: String? = nil) -> ProtectedAccounts.Protection? {
        report.accounts.withUnsafeBufferPointer { accounts in
            precondition(accounts.indices.contains(a), "account index out of range")
            var name = folded.map { ProtectedAccounts.LazyFold(folded: $0) } ?? ProtectedAccounts.LazyFold(name: accounts[a].name)
            return ProtectedAccounts.protection(for: accounts.baseAddress! + a, folded: &name, platform: report.platform,
                                                policy: policy, policyNames: policyNames)
        }
    }

    /// `protection` of a new account `name` (folded: `folded`) on `platform`.
    func protection(newAccount name: String, folded: String, _ platform: Platform) -> ProtectedAccounts.Protection? {
        var f = ProtectedAccounts.LazyFold(folded: folded)
        return withUnsafePointer(to: LocalAccount(name: name)) {
            ProtectedAccounts.protection(for: $0, folded: &f, platform: platform, policy: policy, policyNames: policyNames)
        }
    }

    /// - Parameters:
    ///   - wanted: user ranks (connected, free of conflicts, not bound here).
    ///   - heldNames: folded local names held by bindings on this device that stay, with their entry key.
    ///   - connected: the ranks connected to this device, sorted.
    /// - Returns: the outcome of each of `wanted`, in its order.
    func evaluate(_ wanted: [Int], report: DeviceReport, scan: AccountScan, deviceName: String, heldNames: [String: Int],
                  slots: [BindingEntry], connected: [Int]) -> [FreshOutcome?] {
        var result = [FreshOutcome?](repeating: nil, count: wanted.count)
        let accounts = report.accounts
        /// Places in `wanted` of the pairs R7 decides.
        var r7: [Int] = []
        for (w, r) in wanted.enumerated() {
            let foldedLocal = users[r].foldedLocal
            if !heldNames.isEmpty, let holderSlot = heldNames[foldedLocal], slots[holderSlot].user != r {
                let u = users[r]
                let holder = slots[holderSlot]
                let holderName = holder.user >= 0 ? user(holder.user).username : DNNormalizer.firstRDNValue(holder.normDN)
                let holderDN = holder.user >= 0 ? user(holder.user).dn : (holder.members.first?.raw ?? holder.normDN)
                result[w] = .conflict(kind: Kind.accountAlreadyBound, finding: Finding(
                    kind: Kind.accountAlreadyBound, value: u.localName, users: [u.username], devices: [deviceName],
                    message: "the local account \(q(u.localName)) on \(q(deviceName)) is already bound to \(holderName) (\(holderDN)); \(u.username) can't take it over",
                    fix: "give \(u.username) a different Local User Account field, or unbind \(holderName) from \(q(deviceName)) first (remove the connection and run apply)"),
                    localAccount: nil)
                continue
            }
            if let match = scan.first(foldedLocal) {
                var a = match.account
                if match.several {
                    let localName = users[r].localName
                    let m = scan.matches(foldedLocal)
                    let exact = m.filter { accounts[$0].name == localName }.min { accountLess(accounts[$0], accounts[$1]) }
                    if exact == nil {
                        let u = users[r]
                        let names = m.map { accounts[$0].name }.sorted(by: stringLess)
                        result[w] = .conflict(kind: Kind.ambiguousLocalAccount, finding: Finding(
                            kind: Kind.ambiguousLocalAccount, value: u.localName, users: [u.username], devices: [deviceName],
                            message: "\(q(deviceName)) has \(names.count) accounts whose names differ from \(q(u.localName)) only in case (\(names.map(q).joined(separator: ", "))) and none is spelled exactly \(q(u.localName)); which one to take over is ambiguous",
                            fix: "set the Local User Account field of \(u.username) to the exact spelling of that user's account on \(q(deviceName)), e.g. \(q(names[0]))"),
                            localAccount: nil)
                        continue
                    }
                    a = exact ?? a
                }
                // The account's name folds to `foldedLocal` (that is how it matched).
                if let why = protection(report, a, folded: foldedLocal) {
                    let name = accounts[a].name
                    result[w] = .conflict(kind: Kind.protectedAccount, finding: protectedFinding(user(r), deviceName: deviceName, account: name, why: why.text, reported: true), localAccount: name)
                } else if let why = AccountNames.validateExisting(accounts[a].name, platform: report.platform) {
                    // R13 applies to the names taken over too (a record must never hold a
                    // name the platform could not have).
                    let name = accounts[a].name
                    result[w] = .conflict(kind: Kind.invalidLocalName, finding: invalidNameFinding(
                        users[r], name: name, deviceName: deviceName, platform: report.platform, why: why, reported: true),
                        localAccount: name)
                } else {
                    result[w] = .takeover(account: a)
                }
                continue
            }
            // Not reported: a protected name is still never provisioned (root, `_x`, policy names).
            if let why = protection(newAccount: users[r].localName, folded: foldedLocal, report.platform) {
                result[w] = .conflict(kind: Kind.protectedAccount, finding: protectedFinding(user(r), deviceName: deviceName, account: users[r].localName, why: why.text, reported: false), localAccount: nil)
                continue
            }
            r7.append(w)
        }
        guard !r7.isEmpty else { return result }
        let likely = findLikely(r7.map { wanted[$0] }, report: report, scan: scan, heldNames: heldNames, connected: connected)
        for (c, w) in r7.enumerated() {
            let r = wanted[w]
            let l = likely[c]
            if !l.isEmpty && policy.onLikelyMismatch == .hold {
                let finding = likelyFinding(user(r), deviceName: deviceName, report: report, likely: l, hold: true)
                result[w] = .conflict(kind: Kind.likelyMismatch, finding: finding, localAccount: nil)
                continue
            }
            if let why = AccountNames.validate(users[r].localName, platform: report.platform) {
                result[w] = .conflict(kind: Kind.invalidLocalName, finding: invalidNameFinding(
                    users[r], name: users[r].localName, deviceName: deviceName, platform: report.platform, why: why, reported: false),
                    localAccount: nil)
                continue
            }
            result[w] = .provision(likely: l)
        }
        return result
    }

    /// The invalid-local-name finding (R13): `name` is the reported account `u` would take
    /// over (`reported`), or the new account it would get, and is not valid on `platform`.
    private func invalidNameFinding(_ u: UserInfo, name: String, deviceName: String, platform: Platform, why: String,
                                    reported: Bool) -> Finding {
        let message: String
        let fix: String
        if reported {
            let valid = platform == .unknown ? "Linux, macOS or Windows" : platformName(platform)
            message = "\(u.username) would take over the account \(q(name)) reported by \(q(deviceName)), but that is not a valid \(valid) account name: \(why)"
            fix = "check the report of \(q(deviceName)): rename the account on the device to a valid name and set the Local User Account field of \(u.username) to it"
        } else {
            let suggestion = AccountNames.suggestion(for: name, platform: platform).map { ", e.g. \(q($0))" } ?? ""
            let valid = platform == .unknown ? "Linux, macOS and Windows" : platformName(platform)
            message = "\(u.username) would get a new account \(q(name)) on \(q(deviceName)), but that is not a valid \(valid) account name: \(why)"
            fix = "set the Local User Account field of \(u.username) to a name valid on \(valid)\(suggestion)"
        }
        return Finding(kind: Kind.invalidLocalName, value: name, users: [u.username], devices: [deviceName],
                       message: message, fix: fix)
    }

    private func protectedFinding(_ u: DirectoryUser, deviceName: String, account: String, why: String, reported: Bool) -> Finding {
        let what = reported
            ? "the local name \(q(u.localName)) of \(u.username) is the protected account \(q(account)) on \(q(deviceName)) (\(why))"
            : "the local name \(q(u.localName)) of \(u.username) is a protected account name on \(q(deviceName)) (\(why))"
        return Finding(
            kind: Kind.protectedAccount, value: account, users: [u.username], devices: [deviceName],
            message: what + "; protected accounts are never taken over or provisioned",
            fix: "set the Local User Account field of \(u.username) to the name of that user's own account on \(q(deviceName)), or remove the connection of \(u.username) to \(q(deviceName))")
    }

    func likelyFinding(_ u: DirectoryUser, deviceName: String, report: DeviceReport, likely: [LikelyMatch], hold: Bool) -> Finding {
        let parts = likely.map { "\(q(report.accounts[$0.account].name)) (\($0.why.joined(separator: "; ")))" }
        let first = report.accounts[likely[0].account].name
        var head = "no local account on \(q(deviceName)) is named \(q(u.localName)) (the local name of \(u.username)), but \(parts.joined(separator: " and ")) very likely \(likely.count == 1 ? "is" : "are") that user's"
        let suffix = hold ? " or set [policy] on_likely_mismatch = \"provision\"" : ""
        var fix = "set the Local User Account field of \(u.username) to \(q(first)) so the next run takes that account over; if it is not \(u.username)'s, list it in [policy] protected_accounts" + suffix
        // R7: an account named like another user's local name, that user not connected here.
        let claimed = likely.filter { !$0.otherOwners.isEmpty }
        if !claimed.isEmpty {
            for m in claimed {
                let owners = m.otherOwners.map { user($0).username }
                head += "; \(q(report.accounts[m.account].name)) is also the local name of \(owners.joined(separator: ", ")), "
                    + "who \(owners.count == 1 ? "is" : "are") not connected to \(q(deviceName))"
            }
            let m = claimed[0]
            let account = report.accounts[m.account].name
            let owners = m.otherOwners.map { user($0).username }.joined(separator: ", ")
            fix = "if \(q(account)) on \(q(deviceName)) is \(u.username)'s, rename it on the device to \(q(u.localName)) so the next run takes it over, "
                + "or change the Local User Account field of \(owners) so that \(q(account)) can become \(u.username)'s field; "
                + "if it is \(owners)'s, connect \(owners) to \(q(deviceName)) instead, or list it in [policy] protected_accounts" + suffix
        }
        return Finding(
            kind: Kind.likelyMismatch, value: first, users: [u.username], devices: [deviceName],
            message: head + (hold
                ? "; binding now would create the additional profile beside it, so the pair is held"
                : "; provisioned a new account anyway because [policy] on_likely_mismatch = \"provision\""),
            fix: fix)
    }

    /// R7 for `ranks`: unbound, unprotected accounts that share the uid number (Linux,
    /// macOS), the home folder name or the full name with a user. An account whose name is
    /// another user's local name is that user's when that user is connected to the device,
    /// and no candidate then; when no such user is connected it still counts as evidence,
    /// and the match names those users (the fix is a rename on one side). One list per rank.
    private func findLikely(_ ranks: [Int], report: DeviceReport, scan: AccountScan,
                            heldNames: [String: Int], connected: [Int]) -> [[LikelyMatch]] {
        var out = [[LikelyMatch]](repeating: [], count: ranks.count)
        for hit in likelyHits(ranks, report: report) {
            let r = ranks[hit.candidate]
            let a = hit.account
            let f = scan.folded(a)
            if !heldNames.isEmpty && heldNames[f] != nil { continue }
            if protection(report, a, folded: f) != nil { continue }
            let owners = localOwners(f).filter { $0 != r }
            if owners.contains(where: { sortedContains(connected, $0) }) { continue }
            let why: String
            switch hit.reason {
            case .uid: why = "same uid number \(report.accounts[a].effectiveUID ?? 0)"
            case .home: why = "home directory \(report.accounts[a].home ?? "")"
            case .fullName: why = "full name \(q(report.accounts[a].fullName ?? ""))"
            }
            if let i = out[hit.candidate].firstIndex(where: { $0.account == a }) { out[hit.candidate][i].why.append(why) }
            else { out[hit.candidate].append(LikelyMatch(account: a, why: [why], otherOwners: owners)) }
        }
        for c in out.indices where out[c].count > 1 {
            out[c].sort { accountLess(report.accounts[$0.account], report.accounts[$1.account]) }
        }
        return out
    }

    enum LikelyReason { case uid, home, fullName }

    /// One pass over the report's accounts for R7's evidence about `ranks`: per account in
    /// report order, the ranks (as indices in `ranks`) that share its uid number (not on
    /// Windows), then its home folder name (a username or local name), then its full name.
    private func likelyHits(_ ranks: [Int], report: DeviceReport) -> [(account: Int, candidate: Int, reason: LikelyReason)] {
        var uids = MultiIndex<Int64>(), homes = MultiIndex<String>(), fullNames = MultiIndex<String>()
        var uidFilter = IntFilter(), homeFilter = QuickFilter(), fullFilter = QuickFilter()
        for (c, r) in ranks.enumerated() {
            if report.platform != .windows, let n = users[r].uidNumber {
                uids.insert(n, c)
                uidFilter.insert(n)
            }
            homes.insert(users[r].foldedName, c)
            homeFilter.insert(folded: users[r].foldedName)
            if users[r].foldedLocal != users[r].foldedName {
                homes.insert(users[r].foldedLocal, c)
                homeFilter.insert(folded: users[r].foldedLocal)
            }
            if let display = users[r].foldedDisplay {
                fullNames.insert(display, c)
                fullFilter.insert(folded: display)
            }
        }
        var hits: [(account: Int, candidate: Int, reason: LikelyReason)] = []
        report.accounts.withUnsafeBufferPointer { accounts in
            for a in accounts.indices {
                if !uidFilter.isEmpty, let uid = accounts[a].effectiveUID, uidFilter.mayContain(uid) {
                    uids.forEach(uid) { hits.append((a, $0, .uid)) }
                }
                if !homeFilter.isEmpty, let home = accounts[a].home, homeFilter.mayContainLastComponent(of: home),
                   let base = homeBase(home) {
                    homes.forEach(Folding.fold(String(base))) { hits.append((a, $0, .home)) }
                }
                if !fullFilter.isEmpty, let full = accounts[a].fullName, !full.isEmpty, fullFilter.mayContain(full) {
                    fullNames.forEach(Folding.fold(full)) { hits.append((a, $0, .fullName)) }
                }
            }
        }
        return hits
    }
}

/// The last path component of a home directory ('/' or '\\' separated), without allocating.
func homeBase(_ home: String) -> Substring? {
    let bytes = home.utf8
    var end = bytes.endIndex
    func isSeparator(_ b: UInt8) -> Bool { b == UInt8(ascii: "/") || b == UInt8(ascii: "\\") }
    while end > bytes.startIndex, isSeparator(bytes[bytes.index(before: end)]) { end = bytes.index(before: end) }
    guard end > bytes.startIndex else { return nil }
    var start = end
    while start > bytes.startIndex, !isSeparator(bytes[bytes.index(before: start)]) { start = bytes.index(before: start) }
    return home[start..<end]
}

/// One pass over a device's accounts for the local names wanted there: which accounts
/// each folds equal to.
struct AccountScan {
    private var accounts: [LocalAccount] = []
    /// Wanted folded name -> first matching account, or -1.
    private var first: [String: Int] = [:]
    private var multiple: Set<String> = []

    init() {}

    /// - Parameter names: the folded local names to find (repeats allowed).
    init(_ accounts: [LocalAccount], wanted names: [String]) {
        var first: [String: Int] = [:]
        first.reserveCapacity(names.count)
        var multiple: Set<String> = []
        var nameFilter = QuickFilter()
        for f in names {
            first[f] = -1
            nameFilter.insert(folded: f)
        }
        accounts.withUnsafeBufferPointer { buffer in
            for a in buffer.indices where nameFilter.mayContain(buffer[a].name) {
                let f = Folding.fold(buffer[a].name)
                if let v = first[f] {
                    if v < 0 { first[f] = a } else { multiple.insert(f) }
                }
            }
        }
        self.accounts = accounts
        self.first = first
        self.multiple = multiple
    }

    func folded(_ a: Int) -> String { Folding.fold(accounts[a].name) }

    func has(_ f: String) -> Bool { (first[f] ?? -1) >= 0 }

    /// The first account whose name folds to `f`, and whether others do too; nil when none does.
    func first(_ f: String) -> (account: Int, several: Bool)? {
        guard let v = first[f], v >= 0 else { return nil }
        return (v, !multiple.isEmpty && multiple.contains(f))
    }

    func matches(_ f: String) -> [Int] {
        guard let v = first[f], v >= 0 else { return [] }
        if !multiple.contains(f) { return [v] }
        return accounts.indices.filter { folded($0) == f }
    }
}

func platformName(_ p: Platform) -> String {
    switch p {
    case .linux: return "Linux"
    case .macos: return "macOS"
    case .windows: return "Windows"
    case .unknown: return "unknown-platform"
    }
}
