// R5, R6, R7 and R13 for the pairs of one active device that have no binding yet.

extension Planning {
    /// A total order on a report's accounts, so the report's own order never matters (R14).
    func accountLess(_ a: LocalAccount, _ b: LocalAccount) -> Bool {
        var c = stringCompare(a.name, b.name); if c != 0 { return c < 0 }
        if a.effectiveUID != b.effectiveUID { return (a.effectiveUID ?? Int64.min) < (b.effectiveUID ?? Int64.min) }
        c = stringCompare(a.sid ?? "", b.sid ?? ""); if c != 0 { return c < 0 }
        c = stringCompare(a.home ?? "", b.home ?? ""); if c != 0 { return c < 0 }
        return stringCompare(a.fullName ?? "", b.fullName ?? "") < 0
    }

    func protection(_ account: LocalAccount, _ folded: String, _ platform: Platform) -> String? {
        ProtectedAccounts.reason(for: account, folded: folded, platform: platform, policy: policy, policyNames: policyNames)
    }

    /// - Parameters:
    ///   - wanted: user ranks (connected, free of conflicts, not bound here).
    ///   - heldNames: folded local names held by bindings on this device that stay, with their entry key.
    func evaluate(_ wanted: [Int], report: DeviceReport, deviceName: String, heldNames: [String: String],
                  entries: [String: BindingEntry]) -> [Int: FreshOutcome] {
        var result: [Int: FreshOutcome] = [:]
        result.reserveCapacity(wanted.count)
        var slot: [String: Int] = [:]
        slot.reserveCapacity(wanted.count)
        for (k, r) in wanted.enumerated() where slot[users[r].foldedLocal] == nil { slot[users[r].foldedLocal] = k }
        var matches = [[Int]](repeating: [], count: wanted.count)
        let accounts = report.accounts
        var foldedNames = [String]()
        foldedNames.reserveCapacity(accounts.count)
        for (a, account) in accounts.enumerated() {
            let f = Folding.fold(account.name)
            foldedNames.append(f)
            if let k = slot[f] { matches[k].append(a) }
        }
        var r7: [Int] = []
        for (k, r) in wanted.enumerated() {
            let info = users[r]
            let u = user(r)
            if let holderKey = heldNames[info.foldedLocal], holderKey != info.normDN {
                let holder = entries[holderKey]
                let holderName = holder.flatMap { $0.user >= 0 ? user($0.user).username : nil } ?? DNNormalizer.firstRDNValue(holderKey)
                let holderDN = holder.flatMap { $0.user >= 0 ? user($0.user).dn : $0.members.first?.raw } ?? holderKey
                result[r] = .conflict(kind: Kind.accountAlreadyBound, finding: Finding(
                    kind: Kind.accountAlreadyBound, value: u.localName, users: [u.username], devices: [deviceName],
                    message: "the local account \(q(u.localName)) on \(q(deviceName)) is already bound to \(holderName) (\(holderDN)); \(u.username) can't take it over",
                    fix: "give \(u.username) a different Local User Account field, or unbind \(holderName) from \(q(deviceName)) first (remove the connection and run apply)"),
                    localAccount: nil)
                continue
            }
            let m = matches[slot[info.foldedLocal] ?? k]
            if !m.isEmpty {
                let exact = m.filter { accounts[$0].name == u.localName }.min { accountLess(accounts[$0], accounts[$1]) }
                if exact == nil && m.count > 1 {
                    let names = m.map { accounts[$0].name }.sorted(by: stringLess)
                    result[r] = .conflict(kind: Kind.ambiguousLocalAccount, finding: Finding(
                        kind: Kind.ambiguousLocalAccount, value: u.localName, users: [u.username], devices: [deviceName],
                        message: "\(q(deviceName)) has \(names.count) accounts whose names differ from \(q(u.localName)) only in case (\(names.map(q).joined(separator: ", "))) and none is spelled exactly \(q(u.localName)); which one to take over is ambiguous",
                        fix: "set the Local User Account field of \(u.username) to the exact spelling of that user's account on \(q(deviceName)), e.g. \(q(names[0]))"),
                        localAccount: nil)
                    continue
                }
                let a = exact ?? m[0]
                let account = accounts[a]
                if let why = protection(account, foldedNames[a], report.platform) {
                    result[r] = .conflict(kind: Kind.protectedAccount, finding: protectedFinding(u, deviceName: deviceName, account: account.name, why: why, reported: true), localAccount: account.name)
                } else {
                    result[r] = .takeover(account: a)
                }
                continue
            }
            // Not reported: a protected name is still never provisioned (root, `_x`, policy names).
            if let why = protection(LocalAccount(name: u.localName), info.foldedLocal, report.platform) {
                result[r] = .conflict(kind: Kind.protectedAccount, finding: protectedFinding(u, deviceName: deviceName, account: u.localName, why: why, reported: false), localAccount: nil)
                continue
            }
            r7.append(r)
        }
        guard !r7.isEmpty else { return result }
        let likely = findLikely(r7, report: report, foldedNames: foldedNames, heldNames: heldNames)
        for r in r7 {
            let u = user(r)
            let l = likely[r] ?? []
            if !l.isEmpty && policy.onLikelyMismatch == .hold {
                let finding = likelyFinding(u, deviceName: deviceName, report: report, likely: l, hold: true)
                result[r] = .conflict(kind: Kind.likelyMismatch, finding: finding, localAccount: nil)
                continue
            }
            if let why = AccountNames.validate(u.localName, platform: report.platform) {
                let suggestion = AccountNames.suggestion(for: u.localName, platform: report.platform).map { ", e.g. \(q($0))" } ?? ""
                let platform = report.platform == .unknown ? "Linux, macOS and Windows" : platformName(report.platform)
                result[r] = .conflict(kind: Kind.invalidLocalName, finding: Finding(
                    kind: Kind.invalidLocalName, value: u.localName, users: [u.username], devices: [deviceName],
                    message: "\(u.username) would get a new account \(q(u.localName)) on \(q(deviceName)), but that is not a valid \(platform) account name: \(why)",
                    fix: "set the Local User Account field of \(u.username) to a name valid on \(platform)\(suggestion)"),
                    localAccount: nil)
                continue
            }
            result[r] = .provision(likely: l)
        }
        return result
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
        let head = "no local account on \(q(deviceName)) is named \(q(u.localName)) (the local name of \(u.username)), but \(parts.joined(separator: " and ")) very likely \(likely.count == 1 ? "is" : "are") that user's"
        return Finding(
            kind: Kind.likelyMismatch, value: first, users: [u.username], devices: [deviceName],
            message: head + (hold
                ? "; binding now would create the additional profile beside it, so the pair is held"
                : "; provisioned a new account anyway because [policy] on_likely_mismatch = \"provision\""),
            fix: "set the Local User Account field of \(u.username) to \(q(first)) so the next run takes that account over; if it is not \(u.username)'s, list it in [policy] protected_accounts"
                + (hold ? " or set [policy] on_likely_mismatch = \"provision\"" : ""))
    }

    /// R7: unbound, unprotected accounts that share the uid number (Linux, macOS), the home
    /// folder name or the full name with a user; accounts whose name is another user's
    /// local name are that user's, not candidates.
    private func findLikely(_ ranks: [Int], report: DeviceReport, foldedNames: [String],
                            heldNames: [String: String]) -> [Int: [LikelyMatch]] {
        var byUID: [Int64: [Int]] = [:]
        var byHome: [String: [Int]] = [:]
        var byFull: [String: [Int]] = [:]
        let useUID = report.platform != .windows
        for r in ranks {
            let u = user(r)
            if useUID, let n = u.uidNumber { byUID[n, default: []].append(r) }
            byHome[users[r].foldedName, default: []].append(r)
            if users[r].foldedLocal != users[r].foldedName { byHome[users[r].foldedLocal, default: []].append(r) }
            if let display = u.displayName, !display.isEmpty { byFull[Folding.fold(display), default: []].append(r) }
        }
        var out: [Int: [LikelyMatch]] = [:]
        for (a, account) in report.accounts.enumerated() {
            var hits: [(Int, String)] = []
            if !byUID.isEmpty, let uid = account.effectiveUID, let rs = byUID[uid] {
                for r in rs { hits.append((r, "same uid number \(uid)")) }
            }
            if let home = account.home, let base = homeBase(home), let rs = byHome[Folding.fold(String(base))] {
                for r in rs { hits.append((r, "home directory \(home)")) }
            }
            if !byFull.isEmpty, let full = account.fullName, !full.isEmpty, let rs = byFull[Folding.fold(full)] {
                for r in rs { hits.append((r, "full name \(q(full))")) }
            }
            if hits.isEmpty { continue }
            let f = foldedNames[a]
            if heldNames[f] != nil { continue }
            if protection(account, f, report.platform) != nil { continue }
            for (r, why) in hits {
                if let claim = byLocal[f], claim != r { continue }
                var list = out[r] ?? []
                if let i = list.firstIndex(where: { $0.account == a }) { list[i].why.append(why) }
                else { list.append(LikelyMatch(account: a, why: [why])) }
                out[r] = list
            }
        }
        for (r, list) in out where list.count > 1 {
            out[r] = list.sorted { accountLess(report.accounts[$0.account], report.accounts[$1.account]) }
        }
        return out
    }

    private func homeBase(_ home: String) -> Substring? {
        let parts = home.split(whereSeparator: { $0 == "/" || $0 == "\\" })
        return parts.last
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
