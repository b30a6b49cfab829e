import Foundation
import Testing
@testable import TakeoverCore

/// Golden files of every renderer for one world that has a bit of everything.
/// Re-record with `TB_RECORD_GOLDEN=1 swift test --filter GoldenTests`, then review the diff.
@Suite struct GoldenTests {
    static func showcase() -> PlanInput {
        let sid = "S-1-5-21-1004336348-1177238915-682003330-"
        let users = [
            W.user("alice", uid: 1001, display: "Alice Liddell"),
            W.user("bob", uid: 1002),
            W.user("dana"),
            W.user("eve", field: "eve.w"),
            W.user("frank"),
            W.user("harry", uid: 1234, display: "Harry Murphy"),
            W.user("jdoe", field: "john"),
            W.user("jsmith", field: "John"),
            W.user("kim", field: "kim.l"),
            W.user("lee", field: "Administrator"),
            W.user("zoë"),
        ]
        let connections = W.connect("MBP-Alice", "alice") + W.connect("srv-1", "bob", "dana", "eve", "frank", "harry", "jdoe")
            + W.connect("win-7", "lee", "zoë") + W.connect("old-laptop", "kim") + W.connect("Bob's MacBook Pro", "bob")
        let reports = [
            W.report("mbp-alice", .macos, [
                W.account("_mbsetupuser", uid: 248), W.account("root", uid: 0), W.account("Alice", uid: 501, home: "/Users/Alice"),
            ]),
            W.report("srv-1", [
                W.account("root", uid: 0), W.person("bob", uid: 1002), W.person("hmurphy", uid: 1234), W.person("ops", uid: 1500),
                W.person("eve", uid: 1600), W.person("frank", uid: 1601),
            ]),
            W.report("win-7", .windows, [
                W.account("Administrator", uid: 500, sid: sid + "500"), W.account("Guest", uid: 501, sid: sid + "501"),
                W.account("DefaultAccount", uid: 503, sid: sid + "503"), W.account("WDAGUtilityAccount", uid: 504, sid: sid + "504"),
                W.account("ZOË", uid: 1001, sid: sid + "1001"),
            ]),
            W.report("old-laptop", age: 30 * W.day, [W.person("kim.l")]),
            W.report("Bob's MacBook Pro", .macos, [W.account("bob", uid: 501)]),
        ]
        let groups = [
            W.group("srv-1", bound: [("bob", "bob"), ("carol", "carol"), ("eve", "eve")], members: [W.dn("frank")]),
            W.group("old-laptop", bound: [("kim", "kim.l")]),
        ]
        let problems = [InputProblem(source: "reports/broken.json", line: 7, message: "expected ',' or ']' after an array element")]
        return W.input(users: users, connections: connections, reports: reports, problems: problems, groups: groups)
    }

    static var goldenDirectory: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden")
    }

    func check(_ name: String, _ actual: String) throws {
        if ProcessInfo.processInfo.environment["TB_RECORD_GOLDEN"] == "1" {
            let url = Self.goldenDirectory.appendingPathComponent(name)
            try actual.write(to: url, atomically: true, encoding: .utf8)
            return
        }
        let parts = name.split(separator: ".")
        let url = try #require(Bundle.module.url(forResource: String(parts[0]), withExtension: String(parts[1]), subdirectory: "Golden"),
                               "missing Golden/\(name); record it with TB_RECORD_GOLDEN=1")
        let expected = try String(contentsOf: url, encoding: .utf8)
        #expect(actual == expected, "Golden/\(name) differs: \(firstDifference(expected, actual))")
    }

    @Test func text() throws { try check("plan.txt", ReportRenderer.text(Planner.plan(Self.showcase()))) }
    @Test func json() throws { try check("plan.json", ReportRenderer.json(Planner.plan(Self.showcase()))) }
    @Test func csv() throws { try check("plan.csv", ReportRenderer.csv(Planner.plan(Self.showcase()))) }
    @Test func ldif() throws { try check("plan.ldif", ReportRenderer.ldif(Planner.plan(Self.showcase()))) }

    @Test func explain() throws {
        let input = Self.showcase()
        let plan = Planner.plan(input)
        var out = ""
        for user in ["alice", "harry", "jdoe", "kim", "carol", "nobody-here"] {
            out += "$ explain \(user)\n" + Explainer.explain(user: user, device: nil, input: input, plan: plan).joined(separator: "\n") + "\n\n"
        }
        out += "$ explain bob --device SRV-1\n" + Explainer.explain(user: "bob", device: "SRV-1", input: input, plan: plan).joined(separator: "\n") + "\n"
        try check("explain.txt", out)
    }

    @Test func jsonIsValidJSONWithTheContractKeys() throws {
        let text = ReportRenderer.json(Planner.plan(Self.showcase()))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect(Set(object.keys) == ["version", "generatedAt", "summary", "decisions", "conflicts", "warnings", "errors", "changes"])
        #expect(object["generatedAt"] as? String == "2026-11-29T08:00:00Z")
        let summary = try #require(object["summary"] as? [String: Int])
        #expect(Set(summary.keys) == ["users", "devices", "takeover", "provision", "bound", "unbind", "deferred", "conflict", "changes"])
        let decisions = try #require(object["decisions"] as? [[String: Any]])
        #expect(decisions.allSatisfy { Set($0.keys) == ["user", "userDN", "device", "action", "localAccount", "reason", "notices"] })
        // Keys in the contract's order.
        let order = ["version", "generatedAt", "summary", "decisions", "conflicts", "warnings", "errors", "changes"].map { "\n  \"\($0)\": " }
        let positions = order.compactMap { text.range(of: $0)?.lowerBound }
        #expect(positions.count == order.count && positions == positions.sorted())
    }

    @Test func emptyPlan() {
        let plan = Planner.plan(W.input(users: []))
        #expect(ReportRenderer.ldif(plan) == "version: 1\n")
        #expect(ReportRenderer.csv(plan) == "device,user,userDN,action,localAccount,reason,notices\r\n")
        #expect(ReportRenderer.text(plan).hasSuffix("summary: 0 users, 0 devices: 0 takeover, 0 provision, 0 bound, 0 unbind, 0 deferred, 0 conflict; 0 changes, 0 conflicts to fix, 0 warnings\n"))
    }

    @Test func csvQuoting() {
        var plan = Planner.plan(W.input(users: []))
        plan.decisions = [Decision(user: "a\"b", userDN: "uid=a\\,b,dc=x", device: "Bob's, MacBook", action: .provision,
                                   localAccount: nil, reason: "line1\nline2", notices: ["x", "y"])]
        #expect(ReportRenderer.csv(plan) == "device,user,userDN,action,localAccount,reason,notices\r\n\"Bob's, MacBook\",\"a\"\"b\",\"uid=a\\,b,dc=x\",provision,,\"line1\nline2\",x | y\r\n")
    }
}
