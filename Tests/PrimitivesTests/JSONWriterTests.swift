// Property tests for the one JSON writer: every string, however hostile, comes back from a
// JSON parser byte for byte, and the run journal's lines (written with it) are JSON objects.

import Foundation
import TakeoverCore
import Testing
import TestSupport
@testable import TakeoverBridge

@Suite struct JSONWriterTests {
    struct JournalLine: Decodable {
        var startedAt, finishedAt, host, config, outcome, record, undo: String
        var pid, applied, alreadyDone, failed: Int
    }

    @Test func stringsRoundTripThroughAJSONParser() throws {
        var rng = SplitMix64(seed: 0x150)
        for _ in 0..<5_000 {
            let s = Hostile.string(&rng)
            var w = JSONWriter(capacity: 64)
            w.raw("[")
            w.string(s)
            w.raw("]")
            let text = w.result()
            let decoded = try JSONDecoder().decode([String].self, from: Data(text.utf8))
            #expect(decoded.count == 1 && decoded[0].utf8.elementsEqual(s.utf8), "\(text)")
            // One line whatever the string holds (runs.jsonl is one object per line).
            #expect(!text.utf8.contains(where: { $0 < 0x20 }), "\(text)")
        }
    }

    @Test func escapes() {
        var w = JSONWriter(capacity: 64)
        w.strings(["a\"b\\c", "\n\r\t\u{8}\u{C}", "\u{0}\u{1F}\u{7F}é"])
        #expect(w.result() == #"["a\"b\\c", "\n\r\t\b\f", "\u0000\u001f"# + "\u{7F}é\"]")
    }

    @Test func runJournalLinesAreJSONObjects() throws {
        var rng = SplitMix64(seed: 0x10B)
        for _ in 0..<1_000 {
            let record = RunRecord(startedAt: UnixTime(rng.below(4_000_000_000)), finishedAt: 4_000_000_000,
                                   host: Hostile.string(&rng), configPath: "/etc/" + Hostile.string(&rng),
                                   applied: [], outcome: Hostile.string(&rng))
            let line = RunRecordText.journalLine(record, recordPath: "/s/runs/a.ldif", undoPath: "/s/runs/a.undo.ldif",
                                                 runsFolder: "/s/runs")
            #expect(line.hasSuffix("}\n") && line.filter { $0 == "\n" }.count == 1)
            let object = try JSONDecoder().decode(JournalLine.self, from: Data(line.utf8))
            #expect(object.host.utf8.elementsEqual(record.host.utf8))
            #expect(object.config.utf8.elementsEqual(record.configPath.utf8))
            #expect(object.outcome.utf8.elementsEqual(record.outcome.utf8))
            #expect(object.startedAt == UTCTime.iso8601(record.startedAt) && object.finishedAt == "2096-10-02T07:06:40Z")
            #expect(object.record == "runs/a.ldif" && object.undo == "runs/a.undo.ldif")
            #expect(object.applied == 0 && object.alreadyDone == 0 && object.failed == 0 && object.pid == Int(getpid()))
        }
    }

    @Test func journalLineBytes() {
        let record = RunRecord(startedAt: 1_795_939_200, finishedAt: 1_795_939_201, host: "h\"1", configPath: "/c",
                               applied: [], outcome: "ok")
        let line = RunRecordText.journalLine(record, recordPath: "/s/runs/r", undoPath: "/elsewhere/u", runsFolder: "/s/runs")
        #expect(line == #"{"startedAt":"2026-11-29T08:00:00Z","finishedAt":"2026-11-29T08:00:01Z","host":"h\"1","#
            + #""config":"/c","pid":\#(getpid()),"outcome":"ok","applied":0,"alreadyDone":0,"failed":0,"#
            + #""record":"runs/r","undo":"/elsewhere/u"}"# + "\n")
    }
}
