import LDAPSyntax

// Pure renderers of a Plan. Identical plans give byte-identical output (R14): every list
// is already sorted by the planner and keys come in a fixed order.

public enum ReportRenderer {
    // MARK: JSON (docs/product.md section 5, schema/report.schema.json)

    /// The report object: keys in the order of docs/product.md section 5, one array element per
    /// line, UTF-8, ending in a newline.
    public static func json(_ plan: Plan) -> String {
        jsonReport(plan).text
    }

    /// `json` as parts to write in order: decisions and changes rendered in parallel parts.
    public static func jsonReport(_ plan: Plan, partSize: Int = RenderedReport.partSize) -> RenderedReport {
        var w = JSONWriter(capacity: 4096)
        var parts: [RenderedReport.Piece] = []
        let s = plan.summary
        w.raw("{\n  \"version\": 1,\n  \"generatedAt\": ")
        w.string(UTCTime.iso8601(plan.generatedAt))
        w.raw(",\n  \"summary\": {")
        let counts: [(String, Int)] = [
            ("users", s.users), ("devices", s.devices), ("takeover", s.takeover), ("provision", s.provision),
            ("bound", s.bound), ("unbind", s.unbind), ("deferred", s.deferred), ("conflict", s.conflict),
            ("changes", s.changes),
        ]
        for (i, (k, v)) in counts.enumerated() {
            w.raw(i == 0 ? "\"" : ", \"")
            w.raw(k)
            w.raw("\": ")
            w.raw(String(v))
        }
        w.raw("},\n  \"decisions\": ")
        let decisions = plan.decisions
        arrayParts(decisions.count, partSize, capacity: { $0.count * 420 }, &w, &parts) { w, i in decision(&w, decisions[i]) }
        w.raw(",\n  \"conflicts\": ")
        w.array(plan.conflicts, finding)
        w.raw(",\n  \"warnings\": ")
        w.array(plan.warnings, finding)
        w.raw(",\n  \"errors\": ")
        w.array(plan.errors) { w, e in
            w.raw("{\"source\": "); w.string(e.source)
            if let line = e.line { w.raw(", \"line\": "); w.raw(String(line)) }
            w.raw(", \"message\": "); w.string(e.message)
            w.raw("}")
        }
        w.raw(",\n  \"changes\": ")
        let changes = plan.changes
        arrayParts(changes.count, partSize, capacity: { Change.estimatedBytes(changes[$0]) }, &w, &parts) { w, i in change(&w, changes[i]) }
        w.raw("\n}\n")
        parts.append(.bytes(w.takeBytes()))
        return RenderedReport(pieces: parts)
    }

    /// `w.array(items, body)`, with the elements rendered in parallel parts appended to
    /// `parts` after what `w` holds (`w` then goes on after them).
    private static func arrayParts(_ count: Int, _ partSize: Int, capacity: @escaping @Sendable (Range<Int>) -> Int, _ w: inout JSONWriter, _ parts: inout [RenderedReport.Piece],
                                   _ body: @escaping @Sendable (inout JSONWriter, Int) -> Void) {
        if count == 0 {
            w.raw("[]")
            return
        }
        w.raw("[\n")
        parts.append(.bytes(w.takeBytes()))
        parts.append(renderParts(count, minimumPerPart: partSize) { range in
            var part = JSONWriter(capacity: capacity(range))
            part.elements(range, of: count, body)
            return part.takeBytes()
        })
    }

    private static func decision(_ w: inout JSONWriter, _ d: Decision) {
        w.raw("{\"user\": "); w.string(d.user)
        w.raw(", \"userDN\": "); w.string(d.userDN)
        w.raw(", \"device\": "); w.string(d.device)
        w.raw(", \"action\": "); w.string(d.action.rawValue)
        w.raw(", \"localAccount\": "); w.optional(d.localAccount)
        w.raw(", \"reason\": "); w.string(d.reason)
        w.raw(", \"notices\": "); w.strings(d.notices)
        w.raw("}")
    }

    private static func change(_ w: inout JSONWriter, _ c: Change) {
        w.raw("{\"dn\": "); w.string(c.dn)
        w.raw(", \"op\": "); w.string(c.op.rawValue)
        if c.op == .addEntry {
            w.raw(", \"attributes\": [")
            for (i, a) in c.attributes.enumerated() {
                w.raw(i == 0 ? "{\"name\": " : ", {\"name\": ")
                w.string(a.name)
                w.raw(", \"values\": ")
                w.strings(a.values)
                w.raw("}")
            }
            w.raw("]")
        } else {
            w.raw(", \"attribute\": "); w.string(c.attribute)
            w.raw(", \"values\": "); w.strings(c.values)
        }
        w.raw("}")
    }

    private static func finding(_ w: inout JSONWriter, _ f: Finding) {
        w.raw("{\"kind\": "); w.string(f.kind)
        w.raw(", \"value\": "); w.string(f.value)
        w.raw(", \"users\": "); w.strings(f.users)
        w.raw(", \"devices\": "); w.strings(f.devices)
        w.raw(", \"message\": "); w.string(f.message)
        w.raw(", \"fix\": "); w.string(f.fix)
        w.raw("}")
    }

    // MARK: CSV

    /// One row per decision after a header line; RFC 4180 (CRLF, fields with `,` `"` CR LF
    /// quoted, quotes doubled). Notices are joined with " | ". A cell that begins with `=`,
    /// `+`, `-`, `@`, tab or CR gets a `'` in front, so a spreadsheet shows it as text and
    /// never runs it as a formula (a user named `=HYPERLINK(...)`).
    public static func csv(_ plan: Plan) -> String {
        csvReport(plan).text
    }

    /// `csv` as one part to write.
    public static func csvReport(_ plan: Plan) -> RenderedReport {
        var out = [UInt8]()
        out.reserveCapacity(plan.decisions.count * 160 + 64)
        out.append(contentsOf: "device,user,userDN,action,localAccount,reason,notices\r\n".utf8)
        for d in plan.decisions {
            field(&out, d.device); out.append(UInt8(ascii: ","))
            field(&out, d.user); out.append(UInt8(ascii: ","))
            field(&out, d.userDN); out.append(UInt8(ascii: ","))
            field(&out, d.action.rawValue); out.append(UInt8(ascii: ","))
            field(&out, d.localAccount ?? ""); out.append(UInt8(ascii: ","))
            field(&out, d.reason); out.append(UInt8(ascii: ","))
            field(&out, d.notices.joined(separator: " | "))
            out.append(contentsOf: [13, 10])
        }
        return RenderedReport(parts: [out])
    }

    private static func field(_ out: inout [UInt8], _ value: String) {
        let formula = value.utf8.first.map(startsFormula) ?? false
        let needs = value.utf8.contains { $0 == UInt8(ascii: ",") || $0 == UInt8(ascii: "\"") || $0 == 13 || $0 == 10 }
        if !needs {
            if formula { out.append(UInt8(ascii: "'")) }
            out.append(contentsOf: value.utf8)
            return
        }
        out.append(UInt8(ascii: "\""))
        if formula { out.append(UInt8(ascii: "'")) }
        for b in value.utf8 {
            if b == UInt8(ascii: "\"") { out.append(b) }
            out.append(b)
        }
        out.append(UInt8(ascii: "\""))
    }

    /// The first characters spreadsheets read as the start of a formula (OWASP's list).
    static func startsFormula(_ first: UInt8) -> Bool {
        first == UInt8(ascii: "=") || first == UInt8(ascii: "+") || first == UInt8(ascii: "-") || first == UInt8(ascii: "@")
            || first == 9 || first == 13
    }

    // MARK: LDIF

    /// Exactly the changes `apply` makes, as an LDIF change file for `ldapmodify`:
    /// `add-entry` becomes `changetype: add`; consecutive changes with the same DN and
    /// subject become one `changetype: modify` record (member and record together).
    public static func ldif(_ plan: Plan) -> String {
        ChangeLDIF.render(plan.changes)
    }

    // MARK: Text

    /// For a person, leading with what to do: the figures and the steps, then every
    /// conflict grouped by kind with its fix, warnings, input errors, and only the
    /// decisions that change something (takeover, provision, unbind) per device. `all`
    /// lists every decision instead (bound, deferred and held pairs too). The last line is
    /// the one-line summary. Every line is passed through `TerminalText.escape`: a name
    /// from the directory or a report never starts a line or reaches the terminal raw.
    public static func text(_ plan: Plan, all: Bool = false) -> String {
        textReport(plan, all: all).text
    }

    /// `text` as parts to write in order: the decisions rendered in parallel parts.
    public static func textReport(_ plan: Plan, all: Bool = false, partSize: Int = RenderedReport.partSize) -> RenderedReport {
        var out = TextLines(capacity: 4096)
        let s = plan.summary
        out.line("takeover-bridge plan at \(UTCTime.iso8601(plan.generatedAt))")
        out.line("\(s.users) \(plural(s.users, "user")), \(s.devices) \(plural(s.devices, "device"))")
        out.blank()
        let steps = ReportOutline.steps(plan)
        if steps.isEmpty {
            out.line("nothing to do: no conflicts, no errors, no changes")
        } else {
            out.line("what to do:")
            for (i, step) in steps.enumerated() { out.line("  \(i + 1). \(step)") }
        }
        let unchanged = ReportOutline.unchanged(plan)
        if !unchanged.isEmpty { out.line("unchanged: " + unchanged + (all ? "" : " (plan --all lists them)")) }

        // The findings sections (tens of megabytes at a million users) are rendered when
        // written, as the decisions are: never all of the report in memory at once.
        var parts: [RenderedReport.Piece] = [.bytes(out.bytes)]
        out = TextLines(capacity: 4096)
        if !plan.conflicts.isEmpty {
            parts.append(renderLater {
                var section = TextLines(capacity: 4096)
                findingSection(&section, "conflicts", plan.conflicts, held: ReportOutline.heldPairs(plan))
                return section.bytes
            })
        }
        if !plan.warnings.isEmpty {
            parts.append(renderLater {
                var section = TextLines(capacity: 4096)
                findingSection(&section, "warnings", plan.warnings, held: [:])
                return section.bytes
            })
        }
        if !plan.errors.isEmpty {
            out.blank()
            out.line("errors (\(plan.errors.count)): input that could not be used; a device without a valid report is deferred")
            for e in plan.errors {
                out.line("  \(e.source)\(e.line.map { ":\($0)" } ?? ""): \(e.message)")
            }
        }

        let decisions = plan.decisions
        // Positions as Int32 (a decision list is far shorter than 2^31): 8 MB less at a million users.
        let shown: [Int32] = all ? decisions.indices.map { Int32($0) }
            : decisions.indices.compactMap { ReportOutline.changesSomething(decisions[$0].action) ? Int32($0) : nil }
        out.blank()
        let deviceCount = ReportOutline.deviceCount(decisions, shown)
        if all {
            out.line("decisions by device (all \(shown.count) on \(deviceCount) \(plural(deviceCount, "device")))")
        } else {
            out.line("changes by device (\(shown.count) \(plural(shown.count, "decision")) on \(deviceCount) \(plural(deviceCount, "device")))")
        }
        if decisions.isEmpty {
            out.line("  none: nobody is connected or bound to a device")
        } else if shown.isEmpty {
            out.line("  none")
        }
        parts.append(.bytes(out.bytes))
        parts.append(renderParts(shown.count, minimumPerPart: partSize) { range in
            var part = TextLines(capacity: range.count * 192)
            // Each decision read in place (a copy of each would retain its every string).
            decisions.withUnsafeBufferPointer { buffer in
                func decision(_ i: Int) -> UnsafePointer<Decision> {
                    precondition(buffer.indices.contains(Int(shown[i])), "decision index out of range")
                    return buffer.baseAddress! + Int(shown[i])
                }
                var current: String? = range.lowerBound > 0 ? decision(range.lowerBound - 1).pointee.device : nil
                for i in range {
                    let d = decision(i)
                    if current != d.pointee.device {
                        part.blank()
                        part.line(d.pointee.device)
                        current = d.pointee.device
                    }
                    decisionLine(&part, d)
                }
            }
            return part.bytes
        })
        var tail = TextLines(capacity: 512)
        tail.blank()
        tail.line("summary: \(s.users) users, \(s.devices) devices: \(s.takeover) takeover, \(s.provision) provision, "
            + "\(s.bound) bound, \(s.unbind) unbind, \(s.deferred) deferred, \(s.conflict) conflict; "
            + "\(s.changes) \(plural(s.changes, "change")), \(plan.conflicts.count) \(plural(plan.conflicts.count, "conflict")) to fix, "
            + "\(plan.warnings.count) \(plural(plan.warnings.count, "warning"))")
        parts.append(.bytes(tail.bytes))
        return RenderedReport(pieces: parts)
    }

    /// `  takeover  jdoe -> 'jd': reason` and its notes, each value escaped
    /// (`TerminalText.escape` of the whole line, piece by piece: it maps each character).
    private static func decisionLine(_ out: inout TextLines, _ d: UnsafePointer<Decision>) {
        let width = 9
        let action = d.pointee.action.rawValue
        out.raw("  ")
        out.raw(action)
        out.spaces(max(1, width + 1 - action.utf8.count))
        out.terminal(d.pointee.user)
        if let account = d.pointee.localAccount {
            out.raw(" -> '")
            out.terminal(account)
            out.byte(UInt8(ascii: "'"))
        }
        out.raw(": ")
        out.line(d.pointee.reason)
        for n in d.pointee.notices {
            out.spaces(2 + width + 1)
            out.raw("note: ")
            out.line(n)
        }
    }

    /// Findings grouped by kind (in the planner's order), a count per kind, each with its
    /// message, fix and, for user-level conflicts, the pairs it holds.
    private static func findingSection(_ out: inout TextLines, _ title: String, _ findings: [Finding],
                                       held: [String: [String]]) {
        guard !findings.isEmpty else { return }
        let groups = ReportOutline.byKind(findings)
        out.blank()
        out.line("\(title) (\(findings.count))")
        for (kind, items) in groups {
            out.line("  \(kind) (\(items.count))")
            for f in items {
                var head = "    \(q(f.value))"
                var about: [String] = []
                if !f.users.isEmpty { about.append((f.users.count == 1 ? "user " : "users ") + f.users.joined(separator: ", ")) }
                if !f.devices.isEmpty { about.append((f.devices.count == 1 ? "device " : "devices ") + f.devices.joined(separator: ", ")) }
                if !about.isEmpty { head += " (" + about.joined(separator: "; ") + ")" }
                out.line(head)
                out.line("      " + f.message)
                if !f.fix.isEmpty { out.line("      fix: " + f.fix) }
                if f.devices.isEmpty {
                    let pairs = ReportOutline.heldPairs(of: f, in: held)
                    if !pairs.isEmpty { out.line("      holds: " + ReportOutline.capped(pairs, 10)) }
                }
            }
        }
    }

    static func plural(_ n: Int, _ word: String) -> String { n == 1 ? word : word + "s" }
}

/// What the text and HTML reports share: the steps an admin takes, the counts, the pairs
/// each conflict holds.
enum ReportOutline {
    static func changesSomething(_ action: Action) -> Bool {
        action == .takeover || action == .provision || action == .unbind
    }

    /// The steps, most urgent first; empty when there is nothing to do.
    static func steps(_ plan: Plan) -> [String] {
        let s = plan.summary
        var steps: [String] = []
        if !plan.conflicts.isEmpty {
            let n = plan.conflicts.count
            steps.append("fix \(n) \(ReportRenderer.plural(n, "conflict")) (\(s.conflict) \(ReportRenderer.plural(s.conflict, "pair")) held until then; each has its fix below)")
        }
        if !plan.errors.isEmpty {
            let n = plan.errors.count
            steps.append("repair \(n) input \(ReportRenderer.plural(n, "error")) (devices without a valid report are deferred)")
        }
        if !plan.warnings.isEmpty {
            let n = plan.warnings.count
            steps.append("read \(n) \(ReportRenderer.plural(n, "warning"))")
        }
        if s.changes > 0 {
            var parts: [String] = []
            if s.takeover > 0 { parts.append("\(s.takeover) takeover") }
            if s.provision > 0 { parts.append("\(s.provision) provision") }
            if s.unbind > 0 { parts.append("\(s.unbind) unbind") }
            let changes = "\(s.changes) directory \(ReportRenderer.plural(s.changes, "change"))"
            steps.append(parts.isEmpty ? "review and apply \(changes)"
                : "review and apply " + parts.joined(separator: ", ") + " (\(changes))")
        }
        return steps
    }

    /// "2 bound, 1 deferred" (pairs the default report counts but does not list), or "".
    static func unchanged(_ plan: Plan) -> String {
        let s = plan.summary
        var parts: [String] = []
        if s.bound > 0 { parts.append("\(s.bound) bound") }
        if s.deferred > 0 { parts.append("\(s.deferred) deferred") }
        if s.conflict > 0 { parts.append("\(s.conflict) held") }
        return parts.joined(separator: ", ")
    }

    /// Devices among `decisions[shown]` (sorted by device).
    static func deviceCount<Position: BinaryInteger>(_ decisions: [Decision], _ shown: [Position]) -> Int {
        var count = 0
        var last: String?
        for i in shown where decisions[Int(i)].device != last {
            count += 1
            last = decisions[Int(i)].device
        }
        return count
    }

    /// Findings grouped by kind, kinds in order of first appearance (the planner sorts
    /// conflicts in rule order).
    static func byKind(_ findings: [Finding]) -> [(String, [Finding])] {
        var order: [String] = []
        var groups: [String: [Finding]] = [:]
        for f in findings {
            if groups[f.kind] == nil { order.append(f.kind) }
            groups[f.kind, default: []].append(f)
        }
        return order.map { ($0, groups[$0] ?? []) }
    }

    /// "kind\u{0}user" -> devices of the pairs held in that conflict.
    static func heldPairs(_ plan: Plan) -> [String: [String]] {
        var out: [String: [String]] = [:]
        let decisions = plan.decisions
        for i in decisions.indices where decisions[i].action == .conflict {  // no copy of the others
            out[decisions[i].reason + "\u{0}" + decisions[i].user, default: []].append(decisions[i].device)
        }
        return out
    }

    /// "jdoe on srv-1" for each pair the finding holds.
    static func heldPairs(of f: Finding, in held: [String: [String]]) -> [String] {
        f.users.flatMap { user in (held[f.kind + "\u{0}" + user] ?? []).map { user + " on " + $0 } }
    }

    static func capped(_ items: [String], _ limit: Int) -> String {
        if items.count <= limit { return items.joined(separator: ", ") }
        return items.prefix(limit).joined(separator: ", ") + " and \(items.count - limit) more (plan --all lists them)"
    }
}

/// The names the reports use, for consumers that must list every one (metrics).
public enum ReportVocabulary {
    /// Every conflict kind, in rule order (docs/product.md section 3).
    public static var conflictKinds: [String] {
        Kind.conflictOrder.sorted { $0.value < $1.value }.map(\.key)
    }
}
