public enum Explainer {
    public static func explain(user: String, device: String?, input: PlanInput, plan: Plan) -> [String] { [] }
}

public enum ReportRenderer {
    public static func text(_ plan: Plan) -> String { "" }
    public static func json(_ plan: Plan) -> String { "{}" }
    public static func csv(_ plan: Plan) -> String { "" }
    public static func ldif(_ plan: Plan) -> String { "" }
}
