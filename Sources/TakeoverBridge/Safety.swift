// The safety limits of docs/product.md section 6, checked on the whole plan before the first
// write: too few users while bindings exist, too many unbinds (count or share of the
// current bindings), unbinds while part of the directory could not be read.

import LDAPSyntax
import TakeoverCore

/// One tripped limit: which one, and by how much, in words.
package struct SafetyRefusal: Sendable, Hashable, CustomStringConvertible {
    /// `min_users`, `empty-user-search`, `max_unbinds`, `max_unbind_percent`,
    /// `allow-unbinds`, `unreadable-entries`.
    package var limit: String
    package var message: String

    package init(limit: String, message: String) {
        self.limit = limit
        self.message = message
    }

    package var description: String { message }
}

package enum SafetyCheck {
    /// Every limit `plan` trips (empty: safe to write). `allowUnbinds` (from
    /// `--allow-unbinds N`) replaces `max_unbinds` and `max_unbind_percent` for this run.
    package static func refusals(plan: Plan, users: Int, bindingGroups: [BindingGroup], layout: BindingLayout,
                                unreadableEntries: [String] = [], limits: BridgeConfig.Safety,
                                allowUnbinds: Int?) -> [SafetyRefusal] {
        var out: [SafetyRefusal] = []
        let existing = existingBindings(plan: plan, groups: bindingGroups, layout: layout)
        if existing > 0 {
            if users == 0 {
                out.append(SafetyRefusal(
                    limit: "empty-user-search",
                    message: "the user search returned no users while \(existing) binding\(existing == 1 ? "" : "s") "
                        + "exist; refusing to unbind everyone (check [users] search_base and filter, and that the "
                        + "service account may read the users)"))
            } else if users < limits.minUsers {
                out.append(SafetyRefusal(
                    limit: "min_users",
                    message: "read \(users) user\(users == 1 ? "" : "s"), \(limits.minUsers - users) fewer than "
                        + "min_users = \(limits.minUsers), while \(existing) binding\(existing == 1 ? "" : "s") exist; "
                        + "check [users] search_base and filter, or lower [safety] min_users"))
            }
        }

        let unbinds = plan.decisions.reduce(0) { $0 + ($1.action == .unbind ? 1 : 0) }
        guard unbinds > 0 else { return out }
        if !unreadableEntries.isEmpty {
            let shown = unreadableEntries.prefix(5).map { "'\($0)'" }.joined(separator: ", ")
            out.append(SafetyRefusal(
                limit: "unreadable-entries",
                message: "\(unreadableEntries.count) user or device entr\(unreadableEntries.count == 1 ? "y" : "ies") "
                    + "could not be read (\(shown)\(unreadableEntries.count > 5 ? ", ..." : "")); the plan would "
                    + "unbind \(unbinds), and a binding is never removed on incomplete evidence; fix the entries"))
        }
        let base = max(plan.currentBindings, existing)
        let percent = base > 0 ? Double(unbinds) * 100 / Double(base) : 100
        let scope = "would unbind \(unbinds) of \(base) binding\(base == 1 ? "" : "s") (\(formatPercent(percent))%)"
        if let allowed = allowUnbinds {
            if unbinds > allowed {
                out.append(SafetyRefusal(
                    limit: "allow-unbinds",
                    message: "\(scope), \(unbinds - allowed) more than --allow-unbinds \(allowed); rerun with "
                        + "--allow-unbinds \(unbinds) after review"))
            }
            return out
        }
        if unbinds > limits.maxUnbinds {
            out.append(SafetyRefusal(
                limit: "max_unbinds",
                message: "\(scope), \(unbinds - limits.maxUnbinds) above max_unbinds = \(limits.maxUnbinds); "
                    + "rerun with --allow-unbinds \(unbinds) after review"))
        }
        if percent > limits.maxUnbindPercent {
            out.append(SafetyRefusal(
                limit: "max_unbind_percent",
                message: "\(scope), above max_unbind_percent = \(formatPercent(limits.maxUnbindPercent)); "
                    + "rerun with --allow-unbinds \(unbinds) after review"))
        }
        return out
    }

    /// Bindings present now: the planner's count, or the managed members of the groups
    /// read (every member but the placeholder) when that is larger.
    static func existingBindings(plan: Plan, groups: [BindingGroup], layout: BindingLayout) -> Int {
        var members = 0
        let placeholder = layout.placeholderMember.map(DNNormalizer.normalize)
        for group in groups {
            for member in group.members where DNNormalizer.normalize(member) != placeholder {
                members += 1
            }
        }
        return max(plan.currentBindings, members)
    }

    /// 30.8, 10, 12.5: one decimal, none when whole.
    package static func formatPercent(_ value: Double) -> String {
        let tenths = (value * 10).rounded()
        if tenths.truncatingRemainder(dividingBy: 10) == 0 { return String(Int64(tenths / 10)) }
        let whole = Int64(tenths) / 10
        let fraction = abs(Int64(tenths) % 10)
        return "\(whole).\(fraction)"
    }
}
