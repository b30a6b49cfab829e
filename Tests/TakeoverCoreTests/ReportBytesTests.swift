import Foundation
import LDAPSyntax
import Testing
import TestSupport
@testable import TakeoverCore

/// The byte renderers' fast paths (a value copied as it is when no byte needs escaping)
/// give what the escaping functions give, and a report rendered in many parallel parts is
/// byte for byte the report rendered in one.
@Suite struct ReportBytesTests {
    /// Plain ASCII, every hostile sequence, non-ASCII that needs no escape, and the
    /// characters each format escapes.
    static let values: [String] = ["", "jdoe", "Bob's MacBook", "a \"quoted\" \\ value", "<b>&amp;</b>", "=1+2",
                                   "ünïcödé", "名前", "emoji 🙂", " leading", "trailing ", ":colon", "<angle",
                                   String(repeating: "long-value-", count: 20), String(repeating: "é", count: 60)]
        + HostileOutputTests.sequences.map(\.1)

    @Test func terminalBytesAreEscape() {
        for value in Self.values {
            var out = TextLines(capacity: 0)
            out.terminal(value)
            #expect(String(decoding: out.bytes, as: UTF8.self) == TerminalText.escape(value), "\(value.debugDescription)")
            #expect(TerminalText.isPrintableASCII(value) == !value.utf8.contains { $0 < 0x20 || $0 >= 0x7F })
        }
    }

    @Test func htmlBytesAreH() {
        for value in Self.values {
            var out = TextLines(capacity: 0)
            out.html(value)
            #expect(String(decoding: out.bytes, as: UTF8.self) == HTMLPage.h(value), "\(value.debugDescription)")
            if HTMLPage.isPlain(value) { #expect(HTMLPage.h(value) == value) }
        }
    }

    /// JSON strings read back as the value; a value without `"` `\` or a control
    /// character is written as it is.
    @Test func jsonStringsRoundTrip() throws {
        for value in Self.values {
            var w = JSONWriter()
            w.strings([value, value])
            let text = w.result()
            let back = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String]
            #expect(back == [value, value], "\(value.debugDescription)")
            if !value.utf8.contains(where: { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C }) {
                #expect(text == "[\"\(value)\", \"\(value)\"]")
            }
        }
    }

    /// `appendLine` after other bytes writes what `line` writes: `fold` of `name: value`
    /// or `name:: base64`.
    @Test func ldifLinesAppend() {
        for value in Self.values {
            var out = Array("x\n".utf8)
            LDIF.appendLine("member", value, to: &out)
            let raw = LDIF.isSafe(value) ? "member: " + value : "member:: " + LDIF.base64(Array(value.utf8))
            #expect(String(decoding: out, as: UTF8.self) == "x\n" + LDIF.fold(raw), "\(value.debugDescription)")
            #expect(LDIF.line("member", value) == LDIF.fold(raw))
        }
        #expect(LDIF.fold(String(repeating: "a", count: 80)) == String(repeating: "a", count: 76) + "\n aaaa\n")
    }

    /// Every report of random worlds, split into parts of one to three items, is the
    /// report in one part; and the split really happened.
    @Test func partsJoinToTheWhole() {
        var split = 0
        for input in RandomWorld.worlds(seed: 0x5EED_0107, count: 150) {
            let plan = Planner.plan(input)
            for size in [1, 2, 3] {
                for all in [false, true] {
                    let text = ReportRenderer.textReport(plan, all: all, partSize: size)
                    #expect(text.text == ReportRenderer.textReport(plan, all: all, partSize: .max).text)
                    #expect(text.byteCount == text.text.utf8.count)
                    let html = ReportRenderer.htmlReport(plan, all: all, partSize: size)
                    #expect(html.text == ReportRenderer.htmlReport(plan, all: all, partSize: .max).text)
                }
                let json = ReportRenderer.jsonReport(plan, partSize: size)
                #expect(json.text == ReportRenderer.jsonReport(plan, partSize: .max).text)
                let ldif = ChangeLDIF.report(plan.changes, partSize: size)
                #expect(ldif.text == ChangeLDIF.report(plan.changes, partSize: .max).text)
                if json.parts.count > 4 { split += 1 }
            }
        }
        #expect(split > 100)
    }

    /// The LDIF of changes fed a few at a time (`ChangeLDIF.Stream`, how a run record is
    /// written while the directory answers the writes) is `render` of them all: the plans'
    /// changes, the same reordered (the applier's waves can bring two changes of one entry
    /// and subject together) and cut into single values, fed in random runs.
    @Test func streamedLDIFIsTheRenderedLDIF() {
        var rng = SplitMix64(seed: 0x5EED_0113)
        var merged = 0
        for input in RandomWorld.worlds(seed: 0x5EED_0113, count: 120) {
            let changes = Planner.plan(input).changes
            var reordered = changes
            reordered.shuffle(using: &rng)
            let singles = changes.flatMap { change in
                change.op == .addEntry ? [change] : change.values.map {
                    var single = change
                    single.values = [$0]
                    return single
                }
            }
            for list in [changes, reordered, singles] {
                var stream = ChangeLDIF.Stream()
                var out: [UInt8] = []
                var next = 0
                while next < list.count {
                    let end = min(list.count, next + 1 + rng.below(7))
                    stream.add(list[next..<end], to: &out)
                    next = end
                }
                stream.finish(to: &out)
                #expect(String(decoding: out, as: UTF8.self) == ChangeLDIF.render(list))
                #expect(stream.operationCount == ChangeLDIF.operations(list).count)
                #expect(stream.changeCount == list.count)
                if ChangeLDIF.operations(list).count < list.count { merged += 1 }
            }
        }
        #expect(merged > 50)
    }

    /// A long list is rendered as it is written: no more than `partsInFlight` parts are made
    /// ahead of the one handed over, the parts come in order, and writing stops at the
    /// first part the writer refuses. A list of a million items is cut into parts of at
    /// most about four times the minimum (a few megabytes each), more than 16 of them.
    @Test func listsAreRenderedAsTheyAreWritten() {
        final class Made: @unchecked Sendable {
            let lock = NSLock()
            var count = 0
            func add() { lock.lock(); count += 1; lock.unlock() }
            var value: Int { lock.lock(); defer { lock.unlock() }; return count }
        }
        let made = Made()
        let items = 1_000_000
        let piece = renderParts(items, minimumPerPart: 1000) { range in
            made.add()
            return Array("\(range.lowerBound)-\(range.upperBound);".utf8)
        }
        guard case .list(let list) = piece else {
            Issue.record("a long list is not rendered lazily")
            return
        }
        #expect(list.count == 250)
        let report = RenderedReport(pieces: [.bytes(Array("head;".utf8)), piece, .bytes(Array("tail".utf8))])
        #expect(made.value == 0)
        var handed = 0, end = 0, ahead = 0
        let complete = report.forEachPart { part in
            let text = String(decoding: part, as: UTF8.self)
            if handed > 0 && text != "tail" {
                let bounds = text.dropLast().split(separator: "-").compactMap { Int($0) }
                #expect(bounds.count == 2 && bounds[0] == end)
                end = bounds.last ?? end
                ahead = max(ahead, made.value - handed)
            }
            handed += 1
            return true
        }
        #expect(complete && end == items && handed == 252)
        #expect(ahead <= RenderedReport.partsInFlight)
        let before = made.value
        var taken = 0
        #expect(!report.forEachPart { _ in taken += 1; return taken < 3 })
        #expect(taken == 3 && made.value - before <= 2 * RenderedReport.partsInFlight)
    }
}
