// `explain USER [--device NAME]`: every fact and rule behind one user's decisions, as lines
// for a person. Reads the same input the planner read and the plan it produced; it never
// decides anything itself, it shows why the plan did.

import LDAPSyntax

public enum Explainer {
    /// What `explain` shows, and whether the user is in the directory at all (`explain`
    /// exits 67, "no such user", when not).
    public struct Explanation: Sendable, Hashable {
        /// Lines for a terminal, already escaped (`TerminalText`): a name with a newline or
        /// an escape sequence shows as `\n` or `\u001b`, it never starts a line.
        public var lines: [String]
        public var userFound: Bool
    }

    /// The lines of `explanation`.
    public static func explain(user: String, device: String?, input: PlanInput, plan: Plan) -> [String] {
        explanation(user: user, device: device, input: input, plan: plan).lines
    }

    /// `user` is a username (compared folded, any value of the name attribute) or a DN.
    /// `device`, when given, limits the per-device part to that device (compared folded).
    public static func explanation(user: String, device: String?, input: PlanInput, plan: Plan) -> Explanation {
        let (lines, found) = rawLines(user: user, device: device, input: input, plan: plan)
        return Explanation(lines: lines.map(TerminalText.escape), userFound: found)
    }

    private static func rawLines(user: String, device: String?, input: PlanInput, plan: Plan) -> ([String], Bool) {
        var lines: [String] = []
        let wanted = Folding.fold(user)
        let wantedDN = DNNormalizer.normalize(user)
        let matches = input.users.enumerated().filter { _, u in
            u.allUsernames.contains { Folding.fold($0) == wanted } || Folding.fold(u.username) == wanted
                || (user.contains("=") && DNNormalizer.normalize(u.dn) == wantedDN)
        }
        .map(\.element)
        .sorted { a, b in
            let c = stringCompare(Folding.fold(a.username), Folding.fold(b.username))
            return c != 0 ? c < 0 : stringLess(a.dn, b.dn)
        }
        let deviceFilter = device.map(Folding.deviceKey)
        if matches.isEmpty {
            lines.append("no user \(q(user)) among the \(input.users.count) users read from the directory (check [users] search_base, filter and name_attribute)")
            // A user gone from the directory can still be bound somewhere (R11).
            for d in plan.decisions where Folding.fold(d.user) == wanted || DNNormalizer.normalize(d.userDN) == wantedDN {
                if let deviceFilter, Folding.deviceKey(d.device) != deviceFilter { continue }
                lines.append("device \(d.device): \(d.action.rawValue)\(d.localAccount.map { " " + q($0) } ?? ""): \(d.reason) (R11: bindings of users no longer in the directory are removed)")
                lines += changeLines(plan, subject: d.userDN, device: d.device, indent: "  ")
            }
            return (lines, false)
        }
        for (n, u) in matches.enumerated() {
            if n > 0 { lines.append("") }
            lines += explainUser(u, deviceFilter: deviceFilter, input: input, plan: plan)
        }
        return (lines, true)
    }

    private static func explainUser(_ u: DirectoryUser, deviceFilter: String?, input: PlanInput, plan: Plan) -> [String] {
        var lines: [String] = []
        let normDN = DNNormalizer.normalize(u.dn)
        lines.append("user \(u.username): \(u.dn)")
        if u.allUsernames.count > 1 {
            lines.append("  username \(q(u.username)) of \(u.allUsernames.count) values (\(u.allUsernames.map(q).joined(separator: ", "))); the RDN value, else the first, is used (R2)")
        } else {
            lines.append("  username \(q(u.username))")
        }
        if let field = u.localAccountField {
            lines.append("  Local User Account field \(q(field)): the local name is \(q(field))")
        } else {
            lines.append("  Local User Account field unset: the local name is the username \(q(u.username))")
        }
        var facts: [String] = []
        if let n = u.uidNumber { facts.append("uidNumber \(n)") }
        if let d = u.displayName { facts.append("display name \(q(d))") }
        if let s = u.stableID { facts.append("stable id \(s)") }
        if !facts.isEmpty { lines.append("  " + facts.joined(separator: "; ")) }

        // R1-R3 and the per-pair conflicts that name this user.
        let mine = plan.conflicts.filter { $0.users.contains(u.username) }
        let userLevel = mine.filter { [Kind.duplicateLocalAccount, Kind.duplicateUsername, Kind.usernameMatchesLocalAccount].contains($0.kind) }
        if userLevel.isEmpty {
            lines.append("  R1-R3: no other user shares this local name or username; nothing holds this user (R4)")
        } else {
            lines.append("  held by \(userLevel.count == 1 ? "a conflict" : "conflicts") (R4: no new binding anywhere, existing bindings stay):")
            for f in userLevel {
                lines.append("    \(f.kind): \(f.message)")
                lines.append("    fix: \(f.fix)")
            }
        }
        for w in plan.warnings where w.users.contains(u.username) && w.devices.isEmpty {
            lines.append("  warning \(w.kind): \(w.message)")
        }

        // Devices: connected ones and those with a decision for this user.
        var devices: [String: String] = [:] // folded -> spelling
        var connections: [String: [String]] = [:]
        for c in input.connections {
            let hit: Bool
            switch c.member {
            case .dn(let dn): hit = DNNormalizer.normalize(dn) == normDN
            case .name(let name): hit = Folding.fold(name) == Folding.fold(u.username)
            }
            guard hit else { continue }
            let f = Folding.deviceKey(c.device)
            devices[f] = devices[f] ?? c.device
            connections[f, default: []].append(c.sourceDN ?? "device entry \(c.device)")
        }
        let decisions = plan.decisions.filter { DNNormalizer.normalize($0.userDN) == normDN }
        for d in decisions { devices[Folding.deviceKey(d.device)] = d.device }
        if devices.isEmpty {
            lines.append("  connected to no device and bound to none: nothing to decide")
            return lines
        }
        if let deviceFilter, devices[deviceFilter] == nil {
            lines.append("  not connected to or bound on \(deviceFilter): nothing to decide there")
        }
        let order = devices.keys.sorted(by: stringLess)
        lines.append("  connected to: " + (connections.isEmpty ? "no device" : order.filter { connections[$0] != nil }.compactMap { devices[$0] }.joined(separator: ", ")))
        for f in order {
            if let deviceFilter, f != deviceFilter { continue }
            let name = devices[f] ?? f
            lines.append("")
            lines.append("  device \(name)")
            if let sources = connections[f] {
                lines.append("    connected: yes (\(sources.sorted(by: stringLess).joined(separator: "; ")))")
            } else {
                lines.append("    connected: no (R11: a binding without a connection is removed)")
            }
            lines += reportLines(u, deviceFolded: f, input: input)
            lines += bindingLines(u, normDN: normDN, device: name, input: input)
            for d in decisions where Folding.deviceKey(d.device) == f {
                lines.append("    decision: \(d.action.rawValue)\(d.localAccount.map { " " + q($0) } ?? ""): \(d.reason) (\(rule(for: d)))")
                for n in d.notices { lines.append("    notice: \(n)") }
            }
            for c in mine where c.devices.contains(where: { Folding.deviceKey($0) == f }) {
                lines.append("    conflict \(c.kind): \(c.message)")
                lines.append("    fix: \(c.fix)")
            }
            for w in plan.warnings where w.users.contains(u.username) && w.devices.contains(where: { Folding.deviceKey($0) == f }) {
                lines.append("    warning \(w.kind): \(w.message)")
                if !w.fix.isEmpty { lines.append("    fix: \(w.fix)") }
            }
            lines += changeLines(plan, subject: u.dn, device: name, indent: "    ")
        }
        return lines
    }

    private static func rule(for d: Decision) -> String {
        switch d.action {
        case .takeover: return "R6: an unprotected account has the local name"
        case .provision: return "R6/R7/R13: no account has the local name, none very likely is the user's, the name is valid"
        case .bound: return "R9: bound with the same local name"
        case .unbind: return "R11"
        case .deferred: return "R8: nothing is bound or unbound on missing, old or bad evidence"
        case .conflict:
            switch d.reason {
            case Kind.duplicateLocalAccount: return "R1"
            case Kind.duplicateUsername: return "R2"
            case Kind.usernameMatchesLocalAccount: return "R3"
            case Kind.protectedAccount: return "R5"
            case Kind.likelyMismatch: return "R7"
            case Kind.changedAfterBinding: return "R10"
            case Kind.invalidLocalName: return "R13"
            default: return "R6"
            }
        }
    }

    private static func reportLines(_ u: DirectoryUser, deviceFolded f: String, input: PlanInput) -> [String] {
        var lines: [String] = []
        for p in input.problems where p.device.map(Folding.deviceKey) == f {
            lines.append("    bad report \(p.source)\(p.line.map { ":\($0)" } ?? ""): \(p.message) (R8: deferred)")
        }
        let reports = input.reports.filter { Folding.deviceKey($0.device) == f }
            .sorted { $0.reportedAt != $1.reportedAt ? $0.reportedAt > $1.reportedAt : stringLess($0.source, $1.source) }
        guard let r = reports.first else {
            lines.append("    report: none (R8: deferred)")
            return lines
        }
        let age = input.now - r.reportedAt
        let active = age <= input.policy.activeWithin
        lines.append("    report: \(r.source), \(platformName(r.platform)), \(UTCTime.iso8601(r.reportedAt)), \(UTCTime.age(age)) old: \(active ? "active" : "inactive") (R8: active_within \(UTCTime.duration(input.policy.activeWithin))), \(r.accounts.count) \(r.accounts.count == 1 ? "account" : "accounts")")
        if reports.count > 1 {
            lines.append("    older reports ignored: " + reports.dropFirst().map { "\($0.source) (\(UTCTime.iso8601($0.reportedAt)))" }.joined(separator: ", "))
        }
        let local = Folding.fold(u.localName)
        let named = r.accounts.filter { Folding.fold($0.name) == local }
        let policyNames = ProtectedAccounts.policyNames(input.policy)
        if named.isEmpty {
            lines.append("    no account is named \(q(u.localName)) (compared case-insensitively)")
            if let why = ProtectedAccounts.reason(for: LocalAccount(name: u.localName), folded: local, platform: r.platform,
                                                  policy: input.policy, policyNames: policyNames) {
                lines.append("    \(q(u.localName)) is a protected name (\(why)): never provisioned (R5)")
            } else if let why = AccountNames.validate(u.localName, platform: r.platform) {
                lines.append("    \(q(u.localName)) is not a valid \(platformName(r.platform)) account name: \(why) (R13)")
            } else {
                lines.append("    \(q(u.localName)) is a valid \(platformName(r.platform)) account name (R13)")
            }
        }
        for a in named {
            let why = ProtectedAccounts.reason(for: a, folded: Folding.fold(a.name), platform: r.platform, policy: input.policy, policyNames: policyNames)
            let spelled = a.name == u.localName ? "spelled exactly like the local name" : "differs from \(q(u.localName)) only in case"
            lines.append("    account \(q(a.name))\(accountFacts(a)): \(spelled); \(why.map { "protected: \($0) (R5)" } ?? "not protected")")
        }
        // R7 evidence.
        if named.isEmpty {
            let base = { (home: String) in home.split(whereSeparator: { $0 == "/" || $0 == "\\" }).last.map { Folding.fold(String($0)) } }
            for a in r.accounts {
                var why: [String] = []
                if r.platform != .windows, let n = u.uidNumber, a.effectiveUID == n { why.append("same uid number \(n)") }
                if let home = a.home, let b = base(home), b == Folding.fold(u.username) || b == local { why.append("home directory \(home)") }
                if let full = a.fullName, let display = u.displayName, !full.isEmpty, Folding.fold(full) == Folding.fold(display) { why.append("full name \(q(full))") }
                guard !why.isEmpty else { continue }
                let protected = ProtectedAccounts.reason(for: a, folded: Folding.fold(a.name), platform: r.platform, policy: input.policy, policyNames: policyNames)
                lines.append("    account \(q(a.name)) looks like this user's: \(why.joined(separator: "; "))\(protected.map { " (but protected: \($0))" } ?? "") (R7)")
            }
        }
        return lines
    }

    private static func accountFacts(_ a: LocalAccount) -> String {
        var facts: [String] = []
        if let uid = a.effectiveUID { facts.append("uid \(uid)") }
        if let sid = a.sid { facts.append("SID \(sid)") }
        if let home = a.home { facts.append("home \(home)") }
        if let full = a.fullName, !full.isEmpty { facts.append("full name \(q(full))") }
        return facts.isEmpty ? "" : " (" + facts.joined(separator: ", ") + ")"
    }

    private static func bindingLines(_ u: DirectoryUser, normDN: String, device: String, input: PlanInput) -> [String] {
        var lines: [String] = []
        let f = Folding.deviceKey(device)
        let groups = input.bindingGroups.filter { Folding.deviceKey($0.device) == f }
        if groups.isEmpty {
            lines.append("    binding group: none yet (\(input.layout.groupDN(device: device)) is created by the first binding)")
            return lines
        }
        for g in groups {
            let member = g.members.first { DNNormalizer.normalize($0) == normDN }
            let records = g.records.compactMap { input.layout.parseRecord($0) }.filter { DNNormalizer.normalize($0.userDN) == normDN }
            switch (member != nil, !records.isEmpty) {
            case (true, true):
                lines.append("    bound in \(g.dn) with local account \(records.map { q($0.localName) }.joined(separator: ", ")) (member and record)")
            case (true, false):
                lines.append("    member of \(g.dn) without a record (added outside takeover-bridge)")
            case (false, true):
                lines.append("    \(g.dn) records \(records.map { q($0.localName) }.joined(separator: ", ")) without the membership (an interrupted run)")
            case (false, false):
                lines.append("    not bound in \(g.dn)")
            }
        }
        return lines
    }

    private static func changeLines(_ plan: Plan, subject: String, device: String, indent: String) -> [String] {
        let norm = DNNormalizer.normalize(subject)
        var lines: [String] = []
        for c in plan.changes {
            if c.op == .addEntry {
                let cn = c.attributes.first { Folding.fold($0.name) == "cn" }?.values.first ?? DNNormalizer.firstRDNValue(c.dn)
                guard Folding.deviceKey(cn) == Folding.deviceKey(device) else { continue }
                let members = c.attributes.filter { Folding.fold($0.name) == Folding.fold(plan.layout?.memberAttribute ?? "member") }
                    .flatMap(\.values)
                guard members.contains(where: { DNNormalizer.normalize($0) == norm }) else { continue }
                lines.append("\(indent)change: add-entry \(c.dn) (the binding group, with this user as a member)")
            } else if let s = c.subject, DNNormalizer.normalize(s) == norm,
                      Folding.deviceKey(DNNormalizer.firstRDNValue(c.dn)) == Folding.deviceKey(device) {
                lines.append("\(indent)change: \(c.op.rawValue) \(c.dn): \(c.values.joined(separator: ", "))")
            }
        }
        return lines
    }
}
