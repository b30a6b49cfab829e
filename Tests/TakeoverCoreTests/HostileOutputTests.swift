import Foundation
import LDAPSyntax
import Testing
import TestSupport
@testable import TakeoverCore

/// Values from the directory and from reports are data in every output (PRODUCT.md 7):
/// text and explain escape control characters, CSV cells never start a formula, LDIF
/// base64-encodes any value with a control character, HTML shows markup as text.
@Suite struct HostileOutputTests {
    /// Things a terminal acts on instead of showing, each ending in "FORGED" so a line that
    /// starts with it shows the sequence broke the line.
    static let sequences: [(String, String)] = [
        ("LF", "x\nFORGED"),
        ("CR", "x\rFORGED"),
        ("CRLF", "x\r\nFORGED"),
        ("ESC colour", "x\u{1B}[31mFORGED"),
        ("ESC clear screen", "x\u{1B}[2J\u{1B}[HFORGED"),
        ("OSC 52 clipboard", "x\u{1B}]52;c;cm0gLXJmIH4K\u{07}FORGED"),
        ("BEL", "x\u{07}FORGED"),
        ("BS", "x\u{08}\u{08}FORGED"),
        ("DEL", "x\u{7F}FORGED"),
        ("C1 CSI", "x\u{9B}2JFORGED"),
        ("C1 NEL", "x\u{85}FORGED"),
        ("LINE SEPARATOR", "x\u{2028}FORGED"),
        ("PARAGRAPH SEPARATOR", "x\u{2029}FORGED"),
        ("RLO override", "x\u{202E}FORGED"),
        ("isolate", "x\u{2066}FORGED"),
        ("VT and FF", "x\u{0B}\u{0C}FORGED"),
    ]

    /// Only the renderer's own newlines; nothing else a terminal would act on.
    static func expectSafe(_ text: String, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let bad = text.unicodeScalars.filter { $0 != "\n" && TerminalText.isUnsafe($0) }
        #expect(bad.isEmpty, "\(what): raw \(bad.map { String($0.value, radix: 16) })", sourceLocation: sourceLocation)
        let forged = text.split(separator: "\n").filter { $0.hasPrefix("FORGED") }
        #expect(forged.isEmpty, "\(what): a name started a line", sourceLocation: sourceLocation)
    }

    /// A world where every name from outside carries `evil`: usernames, local names,
    /// device names, account names, full names, a report file name and an error message.
    static func world(_ evil: String) -> PlanInput {
        let users = [
            W.user("u" + evil, uid: 1001),
            W.user("taker", field: "acct" + evil),
            W.user("dup1", field: "same" + evil), W.user("dup2", field: "same" + evil),
            W.user("harry", uid: 1234, display: "Harry" + evil),
        ]
        let device = "dev" + evil
        let connections = W.connect(device, "u" + evil, "taker", "dup1", "harry") + W.connect("other", "taker")
        let reports = [
            W.report(device, [W.person("acct" + evil), W.person("hmurphy" + evil, uid: 1234), W.person("root", uid: 0)]),
        ]
        let problems = [InputProblem(source: "reports/bad" + evil + ".json", line: 3, device: "gone" + evil,
                                     message: "unexpected '" + evil + "'")]
        let groups = [W.group(device, bound: [("left" + evil, "left" + evil)])]
        return W.input(users: users, connections: connections, reports: reports, problems: problems, groups: groups)
    }

    @Test(arguments: sequences)
    func textReportEscapesEverything(_ name: String, _ evil: String) {
        let plan = Planner.plan(Self.world(evil))
        for all in [false, true] {
            let text = ReportRenderer.text(plan, all: all)
            Self.expectSafe(text, "\(name) text all=\(all)")
        }
        // The values are still there, escaped.
        #expect(ReportRenderer.text(plan, all: true).contains(TerminalText.escape("acct" + evil)))
    }

    @Test(arguments: sequences)
    func explainEscapesEverything(_ name: String, _ evil: String) {
        let input = Self.world(evil)
        let plan = Planner.plan(input)
        for user in ["u" + evil, "taker", "dup1", "harry", "left" + evil, "nobody" + evil] {
            let explanation = Explainer.explanation(user: user, device: nil, input: input, plan: plan)
            Self.expectSafe(explanation.lines.joined(separator: "\n"), "\(name) explain \(user)")
            // One entry is one line: none holds a newline of its own.
            #expect(explanation.lines.allSatisfy { !$0.contains("\n") })
        }
        #expect(Explainer.explanation(user: "taker", device: nil, input: input, plan: plan).userFound)
        #expect(!Explainer.explanation(user: "nobody" + evil, device: nil, input: input, plan: plan).userFound)
    }

    @Test func terminalEscapeForms() {
        #expect(TerminalText.escape("a\nb\rc\td") == "a\\nb\\rc\\td")
        #expect(TerminalText.escape("\u{1B}[31m") == "\\u001b[31m")
        #expect(TerminalText.escape("\u{9B}\u{2028}\u{202E}") == "\\u009b\\u2028\\u202e")
        // Printable text, accents, CJK and emoji are kept as they are.
        for plain in ["alice", "Zoë Ångström", "山田", "Bob's MacBook Pro", "a\\nb", "🙂"] {
            #expect(TerminalText.escape(plain) == plain)
        }
    }

    // MARK: CSV

    static let formulas = ["=HYPERLINK(\"http://x\",\"y\")", "+1+1", "-2+3", "@SUM(A1)", "\tcmd", "\r=1", "=cmd|' /C calc'!A0"]

    @Test(arguments: formulas)
    func csvCellsNeverStartAFormula(_ value: String) throws {
        var plan = Planner.plan(W.input(users: []))
        plan.decisions = [Decision(user: value, userDN: "uid=x,dc=example", device: value, action: .provision,
                                   localAccount: value, reason: value, notices: [value])]
        let csv = ReportRenderer.csv(plan)
        let row = try #require(CSVReader.rows(csv).dropFirst().first)
        #expect(row.count == 7)
        for index in [0, 1, 4, 5, 6] {
            #expect(row[index] == "'" + value, "cell \(index): \(row[index].debugDescription)")
        }
        #expect(row[2] == "uid=x,dc=example")
    }

    @Test func csvLeavesOtherCellsAlone() throws {
        var plan = Planner.plan(W.input(users: []))
        for value in ["a-b", "x=y", "mail@example.org", " =padded", "'quoted", "ａ＝"] {
            plan.decisions = [Decision(user: value, userDN: "", device: "d", action: .bound, localAccount: nil, reason: "r")]
            let row = try #require(CSVReader.rows(ReportRenderer.csv(plan)).dropFirst().first)
            #expect(row[1] == value)
        }
    }

    // MARK: LDIF

    @Test(arguments: ["tab\there", "esc\u{1B}[2J", "bel\u{07}", "del\u{7F}", "vt\u{0B}", "us\u{1F}", "nul\u{0}", "lf\nx"])
    func ldifBase64sControlCharacters(_ value: String) throws {
        let line = LDIF.line("cn", value)
        #expect(line.hasPrefix("cn:: "), "\(line.debugDescription)")
        let encoded = String(line.dropFirst(5).dropLast())
        let decoded = try #require(Data(base64Encoded: encoded))
        #expect(String(decoding: decoded, as: UTF8.self) == value)
        // Through the change file as well: the DN and the values.
        let change = Change(dn: "cn=" + value + ",ou=b", op: .addMember, attribute: "member", values: ["uid=" + value])
        let ldif = ChangeLDIF.render([change])
        #expect(!ldif.unicodeScalars.contains { $0 != "\n" && $0.value < 0x20 || $0.value == 0x7F })
        #expect(ldif.hasPrefix("dn:: "))
    }

    @Test func ldifKeepsPlainValuesReadable() {
        #expect(LDIF.line("cn", "lab-1 (room 2)") == "cn: lab-1 (room 2)\n")
    }

    // MARK: HTML

    static let markup = [
        "<script>document.title='pwned'</script>",
        "\"><img src=x onerror=alert(1)>",
        "' onmouseover='alert(1)",
        "</td></tr></table><h1>fake</h1>",
        "&lt;already&gt; &amp;",
        "<!--", "]]><svg/onload=alert(1)>",
    ]

    @Test(arguments: markup)
    func htmlShowsMarkupAsText(_ evil: String) {
        let plan = Planner.plan(Self.world(evil))
        for all in [false, true] {
            let html = ReportRenderer.html(plan, all: all)
            let body = html[html.range(of: "<body>")!.upperBound...]
            let script = body.range(of: "<script>")!.lowerBound
            let content = body[..<script]
            #expect(!content.contains(evil), "raw \(evil)")
            for dangerous in ["<script", "<img", "<svg", "<h1>fake", "<!--"] {
                #expect(!content.lowercased().contains(dangerous), "\(dangerous) in the page for \(evil)")
            }
            #expect(content.contains(HTMLPage.h(evil)))
            // One script, the page's own, at the end.
            #expect(html.components(separatedBy: "<script").count == 2)
        }
    }

    @Test(arguments: sequences)
    func htmlMakesControlCharactersVisible(_ name: String, _ evil: String) {
        let html = ReportRenderer.html(Planner.plan(Self.world(evil)), all: true)
        let bad = html.unicodeScalars.filter { $0 != "\n" && TerminalText.isUnsafe($0) }
        #expect(bad.isEmpty, "\(name)")
    }

    @Test func htmlIsSelfContained() {
        let html = ReportRenderer.html(Planner.plan(GoldenTests.showcase()))
        for external in ["src=", "href=", "@import", "url(", "http://", "https://"] {
            #expect(!html.contains(external), "\(external)")
        }
        #expect(html.contains("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none';"))
        #expect(html.contains("id=\"summary-line\">summary: 11 users, 5 devices: 3 takeover, 1 provision, 2 bound, 1 unbind, 1 deferred, 4 conflict; 8 changes</p>"))
    }

    // MARK: The text report's order

    @Test func textLeadsWithWhatToDoAndListsOnlyChanges() throws {
        let text = ReportRenderer.text(Planner.plan(GoldenTests.showcase()))
        let order = ["what to do:", "\nconflicts (4)", "\nwarnings (3)", "\nerrors (1)", "\nchanges by device", "\nsummary: "]
        let positions = try order.map { try #require(text.range(of: $0)?.lowerBound, "\($0)") }
        #expect(positions == positions.sorted())
        #expect(!text.contains("  bound     "))
        #expect(!text.contains("  deferred  "))
        #expect(text.contains("unchanged: 2 bound, 1 deferred, 4 held (plan --all lists them)"))
        #expect(text.contains("      holds: jdoe on srv-1"))
        let all = ReportRenderer.text(Planner.plan(GoldenTests.showcase()), all: true)
        #expect(all.contains("  bound     bob -> 'bob': already bound with this local account"))
        #expect(all.contains("  deferred  kim -> 'kim.l'"))
        #expect(all.contains("  conflict  jdoe: duplicate-local-account"))
    }

    /// A steady state of many bound pairs: the default report stays short.
    @Test func steadyStateIsShort() {
        var users: [DirectoryUser] = []
        var connections: [Connection] = []
        var reports: [DeviceReport] = []
        var groups: [BindingGroup] = []
        for i in 0..<2000 {
            let name = "user\(i)", device = "pc\(i)"
            users.append(W.user(name))
            connections += W.connect(device, name)
            reports.append(W.report(device, [W.person(name), W.person("admin")]))
            groups.append(W.group(device, bound: [(name, name)]))
        }
        let plan = Planner.plan(W.input(users: users, connections: connections, reports: reports, groups: groups))
        #expect(plan.summary.bound == 2000)
        let text = ReportRenderer.text(plan)
        #expect(text.split(separator: "\n").count < 12, "\(text)")
        #expect(text.contains("nothing to do: no conflicts, no errors, no changes"))
        #expect(ReportRenderer.text(plan, all: true).split(separator: "\n").count > 4000)
    }
}
