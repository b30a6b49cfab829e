import LDAPSyntax

// Pure renderers of a Plan. Identical plans give byte-identical output (R14): every list
// is already sorted by the planner and keys come in a fixed order.

public enum ReportRenderer {
    // MARK: JSON (PRODUCT.md section 5, schema/report.schema.json)

    /// The report object: keys in the order of PRODUCT.md section 5, one array element per
    /// line, UTF-8, ending in a newline.
    public static func json(_ plan: Plan) -> String {
        var w = JSONWriter(capacity: 4096 + plan.decisions.count * 420 + plan.changes.count * 200)
        let s = plan.summary
        w.raw("{\n  \"version\": 1,\n  \"generatedAt\": ")
        w.string(ISOTime.format(plan.generatedAt))
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
        w.array(plan.decisions) { w, d in
            w.raw("{\"user\": "); w.string(d.user)
            w.raw(", \"userDN\": "); w.string(d.userDN)
            w.raw(", \"device\": "); w.string(d.device)
            w.raw(", \"action\": "); w.string(d.action.rawValue)
            w.raw(", \"localAccount\": "); w.optional(d.localAccount)
            w.raw(", \"reason\": "); w.string(d.reason)
            w.raw(", \"notices\": "); w.strings(d.notices)
            w.raw("}")
        }
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
        w.array(plan.changes) { w, c in
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
        w.raw("\n}\n")
        return w.result()
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
    /// quoted, quotes doubled). Notices are joined with " | ".
    public static func csv(_ plan: Plan) -> String {
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
        return String(decoding: out, as: UTF8.self)
    }

    private static func field(_ out: inout [UInt8], _ value: String) {
        let needs = value.utf8.contains { $0 == UInt8(ascii: ",") || $0 == UInt8(ascii: "\"") || $0 == 13 || $0 == 10 }
        if !needs { out.append(contentsOf: value.utf8); return }
        out.append(UInt8(ascii: "\""))
        for b in value.utf8 {
            if b == UInt8(ascii: "\"") { out.append(b) }
            out.append(b)
        }
        out.append(UInt8(ascii: "\""))
    }

    // MARK: LDIF

    /// Exactly the changes `apply` makes, as an LDIF change file for `ldapmodify`:
    /// `add-entry` becomes `changetype: add`; consecutive changes with the same DN and
    /// subject become one `changetype: modify` record (member and record together).
    public static func ldif(_ plan: Plan) -> String {
        var out = "version: 1\n"
        var i = 0
        let changes = plan.changes
        while i < changes.count {
            let c = changes[i]
            out += "\n"
            out += LDIF.line("dn", c.dn)
            if c.op == .addEntry {
                out += "changetype: add\n"
                for a in c.attributes {
                    for v in a.values { out += LDIF.line(a.name, v) }
                }
                i += 1
                continue
            }
            out += "changetype: modify\n"
            var j = i
            while j < changes.count, changes[j].op != .addEntry, changes[j].dn == c.dn, changes[j].subject == c.subject,
                  j == i || c.subject != nil {
                let m = changes[j]
                let verb = (m.op == .addMember || m.op == .addRecord) ? "add" : "delete"
                out += LDIF.line(verb, m.attribute)
                for v in m.values { out += LDIF.line(m.attribute, v) }
                out += "-\n"
                j += 1
            }
            i = j
        }
        return out
    }

    // MARK: Text

    /// For a person: decisions per device, then conflicts with their fix, warnings, input
    /// errors, and a summary.
    public static func text(_ plan: Plan) -> String {
        var out = "takeover-bridge plan at \(ISOTime.format(plan.generatedAt))\n"
        var current: String?
        let width = 9
        for d in plan.decisions {
            if current != d.device {
                out += "\n\(d.device)\n"
                current = d.device
            }
            let action = d.action.rawValue + String(repeating: " ", count: max(1, width + 1 - d.action.rawValue.count))
            var line = "  " + action + d.user
            if let account = d.localAccount { line += " -> " + q(account) }
            line += ": " + d.reason
            out += line + "\n"
            for n in d.notices { out += "  " + String(repeating: " ", count: width + 1) + "note: " + n + "\n" }
        }
        if plan.decisions.isEmpty { out += "\nno decisions: nobody is connected or bound to a device\n" }
        section(&out, "conflicts", plan.conflicts)
        section(&out, "warnings", plan.warnings)
        if !plan.errors.isEmpty {
            out += "\nerrors (\(plan.errors.count))\n"
            for e in plan.errors {
                out += "  \(e.source)\(e.line.map { ":\($0)" } ?? ""): \(e.message)\n"
            }
        }
        let s = plan.summary
        out += "\nsummary: \(s.users) users, \(s.devices) devices: \(s.takeover) takeover, \(s.provision) provision, "
        out += "\(s.bound) bound, \(s.unbind) unbind, \(s.deferred) deferred, \(s.conflict) conflict; "
        out += "\(s.changes) \(s.changes == 1 ? "change" : "changes"), \(plan.conflicts.count) \(plan.conflicts.count == 1 ? "conflict" : "conflicts") to fix, \(plan.warnings.count) \(plan.warnings.count == 1 ? "warning" : "warnings")\n"
        return out
    }

    private static func section(_ out: inout String, _ title: String, _ findings: [Finding]) {
        guard !findings.isEmpty else { return }
        out += "\n\(title) (\(findings.count))\n"
        for f in findings {
            var head = "  \(f.kind) \(q(f.value))"
            var about: [String] = []
            if !f.users.isEmpty { about.append((f.users.count == 1 ? "user " : "users ") + f.users.joined(separator: ", ")) }
            if !f.devices.isEmpty { about.append((f.devices.count == 1 ? "device " : "devices ") + f.devices.joined(separator: ", ")) }
            if !about.isEmpty { head += " (" + about.joined(separator: "; ") + ")" }
            out += head + "\n    " + f.message + "\n"
            if !f.fix.isEmpty { out += "    fix: " + f.fix + "\n" }
        }
    }
}

/// A byte buffer with JSON string escaping (RFC 8259): `"` `\` and control characters
/// escaped, everything else kept as UTF-8.
struct JSONWriter {
    private var bytes: [UInt8] = []

    init(capacity: Int = 1 << 16) { bytes.reserveCapacity(capacity) }

    mutating func raw(_ s: String) { bytes.append(contentsOf: s.utf8) }

    mutating func string(_ s: String) {
        bytes.append(UInt8(ascii: "\""))
        if !s.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            bytes.append(contentsOf: s.utf8)
            bytes.append(UInt8(ascii: "\""))
            return
        }
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "\""): bytes.append(contentsOf: [92, 34])
            case UInt8(ascii: "\\"): bytes.append(contentsOf: [92, 92])
            case 10: bytes.append(contentsOf: [92, UInt8(ascii: "n")])
            case 13: bytes.append(contentsOf: [92, UInt8(ascii: "r")])
            case 9: bytes.append(contentsOf: [92, UInt8(ascii: "t")])
            case 8: bytes.append(contentsOf: [92, UInt8(ascii: "b")])
            case 12: bytes.append(contentsOf: [92, UInt8(ascii: "f")])
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                bytes.append(contentsOf: [92, UInt8(ascii: "u"), 48, 48, hex[Int(b >> 4)], hex[Int(b & 15)]])
            default: bytes.append(b)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    mutating func optional(_ s: String?) {
        if let s { string(s) } else { raw("null") }
    }

    mutating func strings(_ values: [String]) {
        bytes.append(UInt8(ascii: "["))
        for (i, v) in values.enumerated() {
            if i > 0 { bytes.append(contentsOf: [44, 32]) }
            string(v)
        }
        bytes.append(UInt8(ascii: "]"))
    }

    mutating func array<T>(_ items: [T], _ body: (inout JSONWriter, T) -> Void) {
        if items.isEmpty { raw("[]"); return }
        raw("[\n")
        for (i, item) in items.enumerated() {
            raw("    ")
            body(&self, item)
            raw(i == items.count - 1 ? "\n  ]" : ",\n")
        }
    }

    func result() -> String { String(decoding: bytes, as: UTF8.self) }
}
