// `plan --format html` (docs/product.md section 4): one self-contained page for reviewers, to
// attach to a mail or a change ticket. No external scripts, styles, fonts or images. It
// shows the summary as figures, the steps to take, conflicts and warnings as tables with
// their fixes, input errors, and the decisions per device with a filter.
//
// Every value is escaped for HTML (and its control characters made visible first), so a
// hostile name is text, never markup; the Content-Security-Policy allows only the page's
// own script (by its hash) as a second line of defence.

import LDAPSyntax

extension ReportRenderer {
    /// The page. Without `all`, the decisions listed are those that change something and
    /// the pairs held in conflicts; with `all`, every decision.
    public static func html(_ plan: Plan, all: Bool = false) -> String {
        htmlReport(plan, all: all).text
    }

    /// `html` as parts to write in order: the decision rows rendered in parallel parts.
    public static func htmlReport(_ plan: Plan, all: Bool = false, partSize: Int = RenderedReport.partSize) -> RenderedReport {
        let s = plan.summary
        let time = UTCTime.iso8601(plan.generatedAt)
        var out = ""
        out.reserveCapacity(65_536)
        out += """
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta http-equiv="Content-Security-Policy" content="\(HTMLPage.contentSecurityPolicy)">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>takeover-bridge plan at \(time)</title>
            <style>\(HTMLPage.style)</style>
            </head>
            <body>
            <header><h1>takeover-bridge plan</h1>
            <p class="meta">generated \(time) &middot; \(s.users) \(plural(s.users, "user")) &middot; \(s.devices) \(plural(s.devices, "device"))</p></header>

            """

        // Summary as figures.
        out += "<section id=\"summary\" aria-label=\"summary\">\n<div class=\"figures\">\n"
        let figures: [(Int, String, String)] = [
            (plan.conflicts.count, plural(plan.conflicts.count, "conflict") + " to fix", plan.conflicts.isEmpty ? "" : "bad"),
            (plan.errors.count, "input " + plural(plan.errors.count, "error"), plan.errors.isEmpty ? "" : "bad"),
            (plan.warnings.count, plural(plan.warnings.count, "warning"), plan.warnings.isEmpty ? "" : "warn"),
            (s.changes, "directory " + plural(s.changes, "change"), ""),
            (s.takeover, "takeover", "takeover"), (s.provision, "provision", "provision"), (s.unbind, "unbind", "unbind"),
            (s.bound, "bound", "bound"), (s.deferred, "deferred", "deferred"), (s.conflict, "held", "conflict"),
        ]
        for (n, label, style) in figures {
            out += "<div class=\"fig \(style)\"><b>\(n)</b><span>\(HTMLPage.h(label))</span></div>\n"
        }
        out += "</div>\n"
        let steps = ReportOutline.steps(plan)
        if steps.isEmpty {
            out += "<p class=\"todo\">Nothing to do: no conflicts, no errors, no changes.</p>\n"
        } else {
            out += "<h2>What to do</h2>\n<ol class=\"todo\">\n"
            for step in steps { out += "<li>\(HTMLPage.h(step))</li>\n" }
            out += "</ol>\n"
        }
        out += "<p class=\"line\" id=\"summary-line\">summary: \(s.users) users, \(s.devices) devices: \(s.takeover) takeover, "
            + "\(s.provision) provision, \(s.bound) bound, \(s.unbind) unbind, \(s.deferred) deferred, \(s.conflict) conflict; "
            + "\(s.changes) \(plural(s.changes, "change"))</p>\n</section>\n"

        findingTable(&out, id: "conflicts", title: "Conflicts", plan.conflicts, held: ReportOutline.heldPairs(plan))
        findingTable(&out, id: "warnings", title: "Warnings", plan.warnings, held: [:])
        if !plan.errors.isEmpty {
            out += "<section id=\"errors\"><h2>Input errors (\(plan.errors.count))</h2>\n"
            out += "<p>Devices without a valid report are deferred: nothing is bound or unbound there.</p>\n"
            out += "<table><thead><tr><th>file</th><th>line</th><th>problem</th></tr></thead><tbody>\n"
            for e in plan.errors {
                out += "<tr><td>\(HTMLPage.h(e.source))</td><td>\(e.line.map(String.init) ?? "")</td><td>\(HTMLPage.h(e.message))</td></tr>\n"
            }
            out += "</tbody></table></section>\n"
        }

        var parts: [RenderedReport.Piece] = []
        decisionTable(&out, &parts, plan, all: all, partSize: partSize)
        out += "<script>\(HTMLPage.script)</script>\n</body>\n</html>\n"
        parts.append(.bytes(Array(out.utf8)))
        return RenderedReport(pieces: parts)
    }

    private static func findingTable(_ out: inout String, id: String, title: String, _ findings: [Finding],
                                     held: [String: [String]]) {
        guard !findings.isEmpty else { return }
        out += "<section id=\"\(id)\"><h2>\(title) (\(findings.count))</h2>\n"
        out += "<table><thead><tr><th>value</th><th>users</th><th>devices</th><th>what is wrong</th><th>fix</th></tr></thead>\n"
        for (kind, items) in ReportOutline.byKind(findings) {
            out += "<tbody><tr class=\"group\"><th colspan=\"5\">\(HTMLPage.h(kind)) (\(items.count))</th></tr>\n"
            for f in items {
                var devices = f.devices.map(HTMLPage.h).joined(separator: "<br>")
                if f.devices.isEmpty {
                    let pairs = ReportOutline.heldPairs(of: f, in: held)
                    if !pairs.isEmpty { devices = "<span class=\"held\">holds " + HTMLPage.h(ReportOutline.capped(pairs, 20)) + "</span>" }
                }
                out += "<tr><td class=\"v\">\(HTMLPage.h(f.value))</td><td>\(f.users.map(HTMLPage.h).joined(separator: "<br>"))</td>"
                out += "<td>\(devices)</td><td>\(HTMLPage.h(f.message))</td><td class=\"fix\">\(HTMLPage.h(f.fix))</td></tr>\n"
            }
            out += "</tbody>\n"
        }
        out += "</table></section>\n"
    }

    /// The decisions section; the rows go to `parts` (after what `out` held), `out` goes on
    /// after them.
    private static func decisionTable(_ out: inout String, _ parts: inout [RenderedReport.Piece], _ plan: Plan, all: Bool, partSize: Int) {
        let decisions = plan.decisions
        let shown = decisions.indices.filter {
            all || ReportOutline.changesSomething(decisions[$0].action) || decisions[$0].action == .conflict
        }
        let title = all ? "Decisions by device" : "Changes and held pairs by device"
        out += "<section id=\"decisions\"><h2>\(title) (\(shown.count))</h2>\n"
        if shown.isEmpty {
            out += "<p>None.</p>\n"
        } else {
            var present = Set<Action>()
            for i in shown { present.insert(decisions[i].action) }
            out += "<div class=\"filter\"><label>Filter <input id=\"filter\" type=\"search\" placeholder=\"device, user or account\"></label>\n"
            for action in Action.allCases where present.contains(action) {
                out += "<label><input type=\"checkbox\" data-action=\"\(action.rawValue)\" checked> \(action.rawValue)</label>\n"
            }
            out += "<span id=\"shown\" aria-live=\"polite\">\(shown.count) \(plural(shown.count, "decision"))</span></div>\n"
            out += "<table id=\"decision-table\"><thead><tr><th>user</th><th>action</th><th>local account</th><th>reason</th></tr></thead>\n"
            parts.append(.bytes(Array(out.utf8)))
            out = ""
            parts.append(renderParts(shown.count, minimumPerPart: partSize) { range in
                var part = TextLines(capacity: range.count * 320)
                for i in range {
                    let j = shown[i]
                    if i == 0 || decisions[shown[i - 1]].device != decisions[j].device {
                        if i > 0 { part.raw("</tbody>\n") }
                        part.raw("<tbody data-device=\"")
                        part.html(decisions[j].device)
                        part.raw("\"><tr class=\"device\"><th colspan=\"4\">")
                        part.html(decisions[j].device)
                        part.raw("</th></tr>\n")
                    }
                    decisionRow(&part, decisions[j])
                    if i == shown.count - 1 { part.raw("</tbody>\n") }
                }
                return part.bytes
            })
            out += "</table>\n"
        }
        if !all {
            let unchanged = [(plan.summary.bound, "bound"), (plan.summary.deferred, "deferred")].filter { $0.0 > 0 }
            if !unchanged.isEmpty {
                out += "<p class=\"more\">Not listed: " + unchanged.map { "\($0.0) \($0.1)" }.joined(separator: ", ")
                    + " (<code>plan --format html --all</code> lists every decision).</p>\n"
            }
        }
        out += "</section>\n"
    }
}

extension ReportRenderer {
    /// One decision's row.
    private static func decisionRow(_ out: inout TextLines, _ d: Decision) {
        out.raw("<tr class=\"d\" data-action=\"")
        out.raw(d.action.rawValue)
        out.raw("\"><td>")
        out.html(d.user)
        out.raw("</td><td><span class=\"a ")
        out.raw(d.action.rawValue)
        out.raw("\">")
        out.raw(d.action.rawValue)
        out.raw("</span></td><td>")
        if let account = d.localAccount { out.html(account) }
        out.raw("</td><td>")
        out.html(d.reason)
        if !d.notices.isEmpty {
            out.raw("<ul class=\"notes\">")
            for n in d.notices {
                out.raw("<li>")
                out.html(n)
                out.raw("</li>")
            }
            out.raw("</ul>")
        }
        out.raw("</td></tr>\n")
    }
}

extension TextLines {
    /// `HTMLPage.h(s)`: copied as it is when there is nothing to escape (one scan).
    mutating func html(_ s: String) {
        if !bytes.appendUTF8(s, unless: HTMLPage.special) { bytes.appendUTF8(HTMLPage.h(s)) }
    }
}

/// The fixed parts of the page and its escaping.
enum HTMLPage {
    /// Text for HTML content and double-quoted attributes: control characters made
    /// visible (`TerminalText`), then `& < > " '` as character references.
    static func h(_ s: String) -> String {
        if isPlain(s) { return s }
        let visible = TerminalText.escape(s)
        guard visible.utf8.contains(where: { $0 == 0x26 || $0 == 0x3C || $0 == 0x3E || $0 == 0x22 || $0 == 0x27 }) else {
            return visible
        }
        var out = ""
        out.reserveCapacity(visible.utf8.count + 16)
        for c in visible.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    /// True when `h(s) == s`: printable ASCII without `& < > " '` (one scan).
    @inline(__always)
    static func isPlain(_ s: String) -> Bool {
        if let plain = s.utf8.withContiguousStorageIfAvailable({ !$0.contains(where: special) }) { return plain }
        return !s.utf8.contains(where: special)
    }

    /// A byte `h` changes: a control character or non-ASCII (checked by `TerminalText`), `& < > " '`.
    @inline(__always)
    static func special(_ b: UInt8) -> Bool {
        b < 0x20 || b >= 0x7F || b == 0x26 || b == 0x3C || b == 0x3E || b == 0x22 || b == 0x27
    }

    /// Nothing may load from anywhere; only inline styles and this page's own script run.
    /// The hash is SHA-256 of `script` (a test checks it against `openssl dgst`).
    static let contentSecurityPolicy = "default-src 'none'; style-src 'unsafe-inline'; "
        + "script-src 'sha256-\(scriptSHA256)'; base-uri 'none'; form-action 'none'"

    static let scriptSHA256 = "t8sHipmoLv3Ki197PuyNCFNhNDAugaQoWQa3iJ1wqVY="

    static let style = """
        body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:78rem;padding:1rem 1.5rem;color:#1d2329;background:#fff}
        h1{font-size:1.5rem;margin:.2rem 0}h2{font-size:1.15rem;margin:1.6rem 0 .5rem}
        .meta{color:#5a6570;margin:0 0 1rem}
        .figures{display:flex;flex-wrap:wrap;gap:.6rem}
        .fig{border:1px solid #d5dbe1;border-radius:8px;padding:.5rem .9rem;min-width:6.5rem;background:#f7f9fa}
        .fig b{display:block;font-size:1.7rem;line-height:1.2}.fig span{color:#4a5560;font-size:.85rem}
        .fig.bad{border-color:#c62828;background:#fdecea}.fig.warn{border-color:#e0a100;background:#fff6de}
        .todo li{margin:.15rem 0}.line{color:#5a6570;font-size:.85rem}
        table{border-collapse:collapse;width:100%;margin:.3rem 0 1rem}
        th,td{text-align:left;vertical-align:top;padding:.3rem .5rem;border-bottom:1px solid #e3e7eb;overflow-wrap:break-word}
        thead th{background:#eef1f4;font-size:.85rem}
        tr.group th,tr.device th{background:#f7f9fa;font-weight:600;border-top:2px solid #cfd6dd}
        td.fix{color:#1b5e20}.held{color:#8a1c1c}.v{font-family:ui-monospace,monospace}
        .a{display:inline-block;border-radius:4px;padding:0 .35rem;font-size:.85rem;background:#eceff1}
        .a.takeover{background:#e3f2fd}.a.provision{background:#e8f5e9}.a.unbind{background:#fff3e0}
        .a.conflict{background:#fdecea}.a.deferred{background:#f3e5f5}
        .notes{margin:.2rem 0 0;padding-left:1.1rem;color:#5a6570;font-size:.85rem}
        .filter{display:flex;flex-wrap:wrap;gap:.8rem;align-items:center;margin:.4rem 0}
        .filter input[type=search]{font:inherit;padding:.2rem .4rem;min-width:16rem}
        #shown{color:#5a6570;font-size:.85rem}.more{color:#5a6570}
        @media print{.filter{display:none}}
        """

    /// The filter: rows whose device, user, account or reason contain the typed text and
    /// whose action is ticked. Works without it too (every row shows).
    static let script = """
        (function () {
          "use strict";
          var input = document.getElementById("filter");
          var shown = document.getElementById("shown");
          var groups = document.querySelectorAll("#decision-table tbody");
          var boxes = document.querySelectorAll("#decisions input[data-action]");
          var total = document.querySelectorAll("#decision-table tr.d").length;
          function update() {
            var text = input ? input.value.trim().toLowerCase() : "";
            var wanted = {};
            for (var b = 0; b < boxes.length; b++) {
              wanted[boxes[b].getAttribute("data-action")] = boxes[b].checked;
            }
            var count = 0;
            for (var g = 0; g < groups.length; g++) {
              var device = (groups[g].getAttribute("data-device") || "").toLowerCase();
              var rows = groups[g].querySelectorAll("tr.d");
              var any = false;
              for (var r = 0; r < rows.length; r++) {
                var row = rows[r];
                var ok = wanted[row.getAttribute("data-action")] !== false &&
                  (text === "" || device.indexOf(text) !== -1 || row.textContent.toLowerCase().indexOf(text) !== -1);
                row.hidden = !ok;
                if (ok) { any = true; count++; }
              }
              groups[g].hidden = !any;
            }
            if (shown) { shown.textContent = count + " of " + total + " shown"; }
          }
          if (input) { input.addEventListener("input", update); }
          for (var c = 0; c < boxes.length; c++) { boxes[c].addEventListener("change", update); }
          update();
          document.documentElement.setAttribute("data-filter", "ready");
        })();
        """
}
