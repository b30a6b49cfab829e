// Temporary skeleton of the public API so other modules can build against it.
// Replaced file by file by the real implementation.

public enum Folding {
    public static func fold(_ s: String) -> String { s.lowercased() }
}

public enum ProtectedAccounts {
    public static func reason(for account: LocalAccount, platform: Platform, policy: Policy) -> String? { nil }
}

public enum AccountNames {
    public static func validate(_ name: String, platform: Platform) -> String? { nil }
}

public enum Planner {
    public static func plan(_ input: PlanInput) -> Plan {
        Plan(generatedAt: input.now, summary: Summary(), decisions: [], conflicts: [], warnings: [],
             errors: input.problems, changes: [])
    }
}

public enum Explainer {
    public static func explain(user: String, device: String?, input: PlanInput, plan: Plan) -> [String] { [] }
}

public enum ReportRenderer {
    public static func text(_ plan: Plan) -> String { "" }
    public static func json(_ plan: Plan) -> String { "{}" }
    public static func csv(_ plan: Plan) -> String { "" }
    public static func ldif(_ plan: Plan) -> String { "" }
}

extension BindingLayout {
    public func recordValue(localName: String, userDN: String) -> String { recordPrefix + localName + ":" + userDN }
    public func parseRecord(_ value: String) -> (localName: String, userDN: String)? { nil }
    public func groupDN(device: String) -> String { "cn=" + device + "," + base }
}

extension Plan {
    public func applied(to groups: [BindingGroup]) -> [BindingGroup] { groups }
}
