import LDAPSyntax
@testable import TakeoverCore

// A deliberately plain second implementation of the planning rules (docs/product.md
// section 3, R1-R15; docs/reference.md "Protected accounts" and "Account names"), for the
// property tests to compare `Planner.plan` against over seeded worlds (ReferencePlanTests).
//
// It is written from the specification, rule by rule, with ordinary arrays and
// dictionaries and no attention to speed: users and accounts are found by scanning lists.
// It shares only the model types and the public primitives the specification names as
// such: `Folding.fold` / `Folding.deviceKey` (how names compare), `DNNormalizer` (how DNs
// compare), the binding record format of `BindingLayout` (how bindings are stored) and
// `UTCTime` (how times are written). R5 (protected accounts) and R13 (valid names) are
// written again here; nothing of the planner's own code (Planner, Devices, Evaluate,
// DeviceIdentity) is called.
//
// Where the specification is silent the reference follows the planner's documented
// behaviour (the comments say so with "spec silent"): the tie-breaking orders, the extra
// conflict kinds `account-already-bound` and `ambiguous-local-account`, the warnings about
// hand-made members, stale records, duplicate groups and entries, and how a report that
// is not used shows in the errors.
//
// What it produces is `ReferencePlan`: the plan's observable content as comparable lines
// (see `ReferencePlan.init(_ plan:)` for the same view of a real plan). Findings are
// compared by kind, value, users and devices; their sentences are the golden tests' job.

/// The comparable content of a plan.
struct ReferencePlan: Equatable {
    /// In report order: "device | user | userDN | action | localAccount | reason | notices".
    var decisions: [String] = []
    /// Sorted: conflicts and warnings "kind | value | users | devices", errors "source | line |
    /// device", changes "dn | op | attribute | values | entry attributes | subject" (the order
    /// of changes within a device follows from the subjects; the idempotence properties check it).
    var conflicts: [String] = [], warnings: [String] = [], errors: [String] = [], changes: [String] = []
    var summary: [String] = []
    var currentBindings = 0

    init() {}

    /// The same view of a real plan.
    init(_ plan: Plan) {
        decisions = plan.decisions.map(Self.line)
        conflicts = plan.conflicts.map(Self.line).sorted(by: RefOrder.less)
        warnings = plan.warnings.map(Self.line).sorted(by: RefOrder.less)
        errors = plan.errors.map(Self.line).sorted(by: RefOrder.less)
        changes = plan.changes.map(Self.line).sorted(by: RefOrder.less)
        let s = plan.summary
        summary = Self.summaryLines(users: s.users, devices: s.devices, takeover: s.takeover, provision: s.provision,
                                    bound: s.bound, unbind: s.unbind, deferred: s.deferred, conflict: s.conflict,
                                    changes: s.changes)
        currentBindings = plan.currentBindings
    }

    static func line(_ d: Decision) -> String {
        // The reason of a device deferred by R15 names every entry: its first words say which rule.
        let reason = d.reason.hasPrefix("ambiguous device") ? "ambiguous device (R15)" : d.reason
        return [d.device, d.user, d.userDN, d.action.rawValue, d.localAccount ?? "-", reason,
                d.notices.joined(separator: " / ")].joined(separator: " | ")
    }

    static func line(_ f: Finding) -> String {
        [f.kind, f.value, f.users.joined(separator: ","), f.devices.joined(separator: ",")].joined(separator: " | ")
    }

    static func line(_ p: InputProblem) -> String {
        [p.source, p.line.map(String.init) ?? "-", p.device ?? "-"].joined(separator: " | ")
    }

    static func line(_ c: Change) -> String {
        let attributes = c.attributes.map { "\($0.name)=\($0.values.sorted(by: RefOrder.less).joined(separator: ";"))" }
        return [c.dn, c.op.rawValue, c.attribute, c.values.sorted(by: RefOrder.less).joined(separator: ";"),
                attributes.joined(separator: " "), c.subject ?? "-"].joined(separator: " | ")
    }

    static func summaryLines(users: Int, devices: Int, takeover: Int, provision: Int, bound: Int, unbind: Int,
                             deferred: Int, conflict: Int, changes: Int) -> [String] {
        ["users \(users)", "devices \(devices)", "takeover \(takeover)", "provision \(provision)", "bound \(bound)",
         "unbind \(unbind)", "deferred \(deferred)", "conflict \(conflict)", "changes \(changes)"]
    }

    /// Every difference, field by field, one line each (empty when equal).
    func differences(from other: ReferencePlan) -> [String] {
        var out: [String] = []
        func compare(_ name: String, _ a: [String], _ b: [String]) {
            guard a != b else { return }
            let onlyA = RefOrder.minus(a, b), onlyB = RefOrder.minus(b, a)
            if onlyA.isEmpty && onlyB.isEmpty {
                out.append("\(name): same lines in another order")
                for (x, y) in zip(a, b) where x != y { out.append("  planner   \(x)\n  reference \(y)"); break }
                return
            }
            for x in onlyA { out.append("\(name) only in planner:   \(x)") }
            for y in onlyB { out.append("\(name) only in reference: \(y)") }
        }
        compare("decision", decisions, other.decisions)
        compare("conflict", conflicts, other.conflicts)
        compare("warning", warnings, other.warnings)
        compare("error", errors, other.errors)
        compare("change", changes, other.changes)
        compare("summary", summary, other.summary)
        if currentBindings != other.currentBindings {
            out.append("currentBindings: planner \(currentBindings), reference \(other.currentBindings)")
        }
        return out
    }
}

/// A total order on strings and on lists of keys, for every sort the reference makes.
enum RefOrder {
    enum Key { case s(String), i(Int64) }

    /// Unicode canonical order (the NFC code units, which is what Swift's `<` documents),
    /// then the bytes.
    static func less(_ a: String, _ b: String) -> Bool {
        if a.utf8.allSatisfy({ $0 < 0x80 }) && b.utf8.allSatisfy({ $0 < 0x80 }) {
            return a.utf8.lexicographicallyPrecedes(b.utf8)   // ASCII is its own NFC
        }
        let (x, y) = (a._nfcCodeUnits, b._nfcCodeUnits)
        return x != y ? x.lexicographicallyPrecedes(y) : Array(a.utf8).lexicographicallyPrecedes(Array(b.utf8))
    }

    static func same(_ a: String, _ b: String) -> Bool { Array(a.utf8) == Array(b.utf8) }

    static func less(_ a: [Key], _ b: [Key]) -> Bool {
        for (x, y) in zip(a, b) {
            switch (x, y) {
            case (.s(let p), .s(let q)): if !same(p, q) { return less(p, q) }
            case (.i(let p), .i(let q)): if p != q { return p < q }
            default: return false
            }
        }
        return a.count < b.count
    }

    /// Multiset difference.
    static func minus(_ a: [String], _ b: [String]) -> [String] {
        var left: [String: Int] = [:]
        for y in b { left[y, default: 0] += 1 }
        var out: [String] = []
        for x in a {
            if let n = left[x], n > 0 { left[x] = n - 1 } else { out.append(x) }
        }
        return out
    }
}

// MARK: - R5 and R13, written again from docs/reference.md

enum RefRules {
    /// R5: the account must never be taken over (docs/reference.md "Protected accounts").
    static func isProtected(_ a: LocalAccount, on platform: Platform, policy: Policy) -> Bool {
        let folded = Folding.fold(a.name)
        // `[policy] protected_accounts`, compared folded; JumpCloud SI `real_user = false`.
        if policy.protectedAccounts.contains(where: { Folding.fold($0) == folded }) { return true }
        if a.realUser == false { return true }
        switch platform {
        case .linux: return linux(a, folded, minUID: policy.minUIDLinux)
        case .macos: return macos(a, folded, minUID: policy.minUIDMacOS)
        case .windows: return windows(a, folded, unknownPlatform: false)
        case .unknown:
            // spec silent: every rule the facts allow, with the lower uid bound.
            let minUID = min(policy.minUIDLinux, policy.minUIDMacOS)
            return windows(a, folded, unknownPlatform: true) || macos(a, folded, minUID: minUID)
                || linux(a, folded, minUID: minUID)
        }
    }

    static func lastPathComponent(_ path: String) -> String {
        String(path.split(separator: "/", omittingEmptySubsequences: false).last ?? "")
    }

    static func noLoginShell(_ shell: String?) -> Bool {
        guard let shell else { return false }
        return ["nologin", "false"].contains(lastPathComponent(shell))
    }

    static func linux(_ a: LocalAccount, _ folded: String, minUID: Int64) -> Bool {
        if let uid = a.effectiveUID {
            if [65534, 4_294_967_294, -2].contains(uid) { return true }   // nobody
            if uid < minUID { return true }
        }
        if folded == "nobody" || noLoginShell(a.shell) { return true }
        return a.effectiveUID == nil && folded == "root"
    }

    static func macos(_ a: LocalAccount, _ folded: String, minUID: Int64) -> Bool {
        if let uid = a.effectiveUID, uid < minUID { return true }
        if a.name.unicodeScalars.first == "_" || a.hidden || noLoginShell(a.shell) || folded == "nobody" { return true }
        return a.effectiveUID == nil && ["root", "daemon", "guest"].contains(folded)
    }

    static func windows(_ a: LocalAccount, _ folded: String, unknownPlatform: Bool) -> Bool {
        var rid: Int64?
        if let sid = a.sid, !sid.isEmpty {
            let upper = sid.uppercased()
            if upper.hasPrefix("S-1-12-1-") || !upper.hasPrefix("S-1-5-21-") { return true }
            rid = upper.split(separator: "-").last.flatMap { Int64($0) }
        } else if !unknownPlatform {
            rid = a.uid   // osquery's uid on Windows is the RID
        }
        if let rid, (500...504).contains(rid) { return true }
        if let type = a.accountType?.lowercased(), type == "special" || type == "roaming" { return true }
        let builtins = ["administrator", "guest", "krbtgt", "defaultaccount", "wdagutilityaccount", "system"]
        return (a.sid ?? "").isEmpty && (unknownPlatform || a.uid == nil) && builtins.contains(folded)
    }

    /// R13 for a new account (a provision): valid on the platform, on all three when unknown.
    static func isValidNewName(_ name: String, on platform: Platform) -> Bool {
        if name.isEmpty { return false }
        switch platform {
        case .linux: return validLinux(name)
        case .macos: return validMacOS(name)
        case .windows: return validWindows(name)
        case .unknown: return validLinux(name) && validMacOS(name) && validWindows(name)
        }
    }

    /// R13 for an account a device reported (a takeover): on an unknown platform it only has
    /// to be valid on one of the three (spec silent; it exists on some device).
    static func isValidExistingName(_ name: String, on platform: Platform) -> Bool {
        guard platform == .unknown else { return isValidNewName(name, on: platform) }
        return !name.isEmpty && (validLinux(name) || validMacOS(name) || validWindows(name))
    }

    static func portable(_ c: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(c) || ("A"..."Z").contains(c) || ("0"..."9").contains(c) || c == "." || c == "_" || c == "-"
    }

    static func validLinux(_ name: String) -> Bool {
        let scalars = Array(name.unicodeScalars)
        if name.utf8.count > 255 || name == "." || name == ".." || name.unicodeScalars.first == "-" { return false }
        for (i, c) in scalars.enumerated() where !portable(c) && !(c == "$" && i == scalars.count - 1) { return false }
        return !scalars.allSatisfy { ("0"..."9").contains($0) }
    }

    static func validMacOS(_ name: String) -> Bool {
        name.unicodeScalars.count <= 255 && name.unicodeScalars.first != "-" && name.unicodeScalars.allSatisfy(portable)
    }

    static func validWindows(_ name: String) -> Bool {
        let forbidden: Set<Unicode.Scalar> = ["\"", "/", "\\", "[", "]", ":", "|", "<", ">", "+", "=", ";", "?", "*", ","]
        if name.utf16.count > 20 || name.hasSuffix(".") { return false }
        return !name.unicodeScalars.contains { forbidden.contains($0) || $0.value < 0x20 || $0.value == 0x7F }
    }
}
