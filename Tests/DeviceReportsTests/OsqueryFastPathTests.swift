// The osqueryi array read straight from the bytes (JSONParser.osqueryRows) gives what the
// JSON tree gives: the same reports, errors and warnings, on plain, varied, hostile, broken
// and random input; and it is really taken for the plain shape, and given up otherwise.

import Testing
@testable import DeviceReports
import TakeoverCore
import TestSupport

@Suite struct OsqueryFastPathTests {
    /// The file read with and without the fast path.
    static func both(_ text: [UInt8], limits: ReportLimits = ReportLimits(), scratch: ParseScratch? = nil)
        -> (fast: ReportsReadResult, tree: ReportsReadResult) {
        func run(_ fast: Bool) -> ReportsReadResult {
            var b = ReportBuilder(source: "reports/host.json", fallbackDevice: "host", modificationTime: fixtureMTime, text: text)
            JSONReports.read(text, into: &b, limits: limits, scratch: scratch, fastPath: fast)
            return b.finish()
        }
        return (run(true), run(false))
    }

    /// True when the fast path reads `text` (rather than giving up).
    static func taken(_ text: [UInt8], maxDepth: Int = 64) -> Bool { kind(text, maxDepth: maxDepth) != nil }

    static func kind(_ text: [UInt8], maxDepth: Int = 64) -> OsqueryArrayKind? {
        text.withUnsafeBufferPointer { buf in
            var p = JSONParser(buf, maxDepth: maxDepth)
            p.skipWhitespace()
            var rows: [OsqueryRow] = []
            return p.osqueryRows(into: &rows)
        }
    }

    /// The first byte after whitespace opens an array or an object (what JSONReports.read expects).
    static func startsLikeJSON(_ text: [UInt8]) -> Bool {
        let blank: Set<UInt8> = [0x20, 0x0A, 0x0D, 0x09]
        guard let first = text.first(where: { !blank.contains($0) }) else { return false }
        return first == UInt8(ascii: "[") || first == UInt8(ascii: "{")
    }

    static let keys = ["username", "uid", "uid_signed", "uuid", "directory", "shell", "description", "is_hidden",
                       "type", "real_user", "gid", "gid_signed", "Username", "user", "system_id", "collection_time"]
    /// Member names that make the first row something else, or that the fast path leaves to the tree.
    static let rareKeys = ["snapshot", "diffResults", "columns", "action", "hostIdentifier",
                           "Name", "SID", "user\\u006eame", "\\u0075id"]

    /// `s` as a JSON string literal (the project's writer; control characters as \u00XX).
    static func jsonString(_ s: String) -> String {
        var w = JSONWriter(capacity: 64)
        w.string(s)
        return w.result()
    }

    static func value(_ key: String, _ rng: inout SplitMix64, names: [String]) -> String {
        if rng.chance(4) { return rng.pick(["null", "true", "false", "0", "1", "-2", "4294967294", "1.5", "1e3", "01", "-",
                                            "{}", "[]", "{\"a\":1}", "[\"x\"]", "\"\\ud83d\\ude00\"", "\"\\/\"", "\"\\u00e9\""]) }
        switch key {
        case "username", "Username", "user":
            if rng.chance(10) { return "\"\"" }
            return jsonString(rng.chance(20) ? Hostile.string(&rng, maxPieces: 4) : rng.pick(names))
        case "uid", "uid_signed", "gid", "gid_signed":
            return rng.chance(10) ? "\"abc\"" : rng.chance(50) ? "\"\(rng.below(70_000) - 2)\"" : "\(rng.below(70_000))"
        case "uuid": return jsonString(rng.pick(["", "S-1-5-21-1-2-3-\(rng.below(2000))", "s-1-5-18", "FFFF-EEEE", "S-1-"]))
        case "directory": return jsonString(rng.pick(["", "/home/a", "/Users/b", "/var/root", "/root", "C:\\Users\\c", "/var/empty"]))
        case "shell": return jsonString(rng.pick(["", "/bin/bash", "/usr/sbin/nologin", "/bin/zsh", "C:\\Windows\\system32\\cmd.exe",
                                                  "C:\\WINDOWS\\SYSTEM32\\CMD.EXE", "/usr/bin/false"]))
        case "description": return jsonString(rng.chance(30) ? Hostile.string(&rng) : rng.pick(["", "System Administrator",
            "Built-in account for administering the computer/domain", "Ordinary User With A Long Description"]))
        case "is_hidden", "real_user": return rng.pick(["\"0\"", "\"1\"", "0", "1", "true", "\"yes\"", "\"maybe\"", "2"])
        case "type": return jsonString(rng.pick(["local", "roaming", "special", "Local", "", "ROAMING"]))
        case "system_id": return jsonString(rng.pick(["", "000de44efaf7eb94f171a269", "sys-2", "sys-2", "Sys-2"]))
        case "collection_time": return jsonString(rng.pick(["", "2026-11-29T12:40:39.67Z", "2026-11-29T12:40:39Z", "yesterday",
                                                            "1700000000", "0001-01-01T00:00:00Z"]))
        default: return jsonString(Hostile.string(&rng, maxPieces: 3))
        }
    }

    static func document(_ rng: inout SplitMix64) -> String {
        let names = ["root", "Root", "ROOT", "admin", "Administrator", "_www", "straße", "STRASSE", "bob", "alice", "ǅ", "ǆ"]
        var rows: [String] = []
        for _ in 0..<(rng.chance(5) ? 0 : 1 + rng.below(24)) {
            var members: [String] = []
            var keys = Array(OsqueryFastPathTests.keys.shuffled(using: &rng).prefix(rng.below(OsqueryFastPathTests.keys.count + 1)))
            if rng.chance(85) && !keys.contains("username") { keys.append("username") }
            if rng.chance(6) { keys.append(rng.pick(rareKeys)) }
            if rng.chance(10), let k = keys.first { keys.append(k) }   // a duplicated member
            for k in keys.shuffled(using: &rng) {
                let sp = rng.chance(20) ? rng.pick([" ", "\n  ", "\t", "\r\n"]) : ""
                // The rare names are written as they are (some are escaped spellings of column names).
                let name = rareKeys.contains(k) ? "\"" + k + "\"" : jsonString(k)
                members.append(sp + name + sp + ":" + sp + value(k, &rng, names: names) + sp)
            }
            rows.append("{" + members.joined(separator: ",") + "}")
        }
        if rng.chance(4) { rows.insert(rng.pick(["1", "\"x\"", "null", "[]", "[{}]"]), at: rng.below(rows.count + 1)) }
        let sep = rng.chance(50) ? ",\n  " : ","
        return (rng.chance(20) ? "\n " : "") + "[" + rows.joined(separator: sep) + "]" + (rng.chance(20) ? "\n" : "")
    }

    /// Random documents, then broken ones (cut, a byte changed or added, text after the
    /// array): the same result with and without the fast path, including every message.
    @Test func fastPathAndTreeAgreeOnRandomInput() {
        var rng = SplitMix64(seed: 0x05_0E_21)
        let scratch = ParseScratch()
        var fast: [OsqueryArrayKind: Int] = [:]
        for i in 0..<3000 {
            var text = Array(Self.document(&rng).utf8)
            switch i % 6 {
            case 1 where !text.isEmpty: text = Array(text.prefix(rng.below(text.count)))
            case 2 where !text.isEmpty: text[rng.below(text.count)] = rng.pick(Array("{}[]\":,\\ 0a-\n".utf8))
            case 3: text.insert(rng.pick(Array("{}[]\":,\\ 0\u{1}".utf8)), at: rng.below(text.count + 1))
            case 4: text += Array(rng.pick([" x", "[]", ",", "{}", "\n\n", " \t"]).utf8)
            default: break
            }
            guard Self.startsLikeJSON(text) else { continue }
            let limits = ReportLimits(maxJSONDepth: rng.chance(5) ? 1 + rng.below(2) : 64)
            if let kind = Self.kind(text, maxDepth: limits.maxJSONDepth) { fast[kind, default: 0] += 1 }
            let r = Self.both(text, limits: limits, scratch: rng.chance(50) ? scratch : nil)
            #expect(r.fast == r.tree, "\(String(decoding: text, as: UTF8.self))")
        }
        // The fast path is exercised, not only given up.
        #expect(fast[.osqueryRows, default: 0] > 150 && fast[.jumpCloud, default: 0] > 150, "\(fast)")
    }

    /// The plain shapes are read by the fast path; the unusual ones are given up.
    @Test func takenOnlyForThePlainShape() {
        let plain = [
            #"[{"username":"root","uid":"0"}]"#,
            "[\n  {\"username\":\"a\",\"shell\":\"C:\\\\Windows\\\\system32\\\\cmd.exe\",\"uid\":5,\"x\":null,\"y\":true}\n]\n",
            #"[{"username":"a"},{}]"#,
            #"[{"username":"a","username":"b"}]"#,
            #"[{"username":"a"},{"system_id":"x","username":"b"}]"#,
            #"[{"username":"a","system_id":"x"}]"#,
            #"[{"system_id":"x","collection_time":"2026-11-29T12:40:39.67Z","username":"a"},{"username":"b"}]"#,
        ]
        for t in plain { #expect(Self.taken(Array(t.utf8)), "\(t)") }
        let unusual = [
            "[]", "[1]", #"[{"uid":"0"}]"#, #"[{"user\u006eame":"a"}]"#, #"[{"username":"a","g":{}}]"#,
            #"[{"username":"a","g":[1]}]"#, #"[{"snapshot":1,"username":"a"}]"#, #"[{"columns":"","username":"a"}]"#,
            #"[{"username":"a"}] x"#, #"[{"username":"a"}"#, #"[{"username":"a"},]"#, #"[{"username":"a",}]"#,
            #"[{"username":"a"} {"username":"b"}]"#, #"[{"username":01}]"#, #"[{"username":nul}]"#, #"[{"username":"a"},1]"#,
            "[{\"username\":\"a\u{1}\"}]",
        ]
        for t in unusual { #expect(!Self.taken(Array(t.utf8)), "\(t)") }
        #expect(!Self.taken(Array(#"[{"username":"root"}]"#.utf8), maxDepth: 1))
        for t in plain + unusual {
            let r = Self.both(Array(t.utf8))
            #expect(r.fast == r.tree, "\(t)")
        }
    }

    /// Every fixture that is a JSON array reads the same either way.
    @Test func fixturesAgree() throws {
        for name in fixtureNames {
            let bytes = try fixtureBytes(name)
            guard case .success(let text) = TextDecoding.utf8Bytes(bytes), Self.startsLikeJSON(text) else { continue }
            let r = Self.both(text)
            #expect(r.fast == r.tree, "\(name)")
        }
    }

    /// Shared long values are equal to the values they replace; values that collide in the
    /// table only share less.
    @Test func sharedValuesAnswerOnlyEqualValues() {
        var shared = SharedValues()
        var rng = SplitMix64(seed: 0x5A_4E)
        var pool: [String] = []
        for i in 0..<3000 { pool.append("a long value number \(i) " + Hostile.string(&rng, maxPieces: 3)) }
        for _ in 0..<20_000 {
            let v = rng.pick(pool) + ""
            if let held = shared.held(v) { #expect(held == v) }
        }
        #expect(shared.held("short") == nil)
        #expect(shared.held(nil) == nil)
        let long = "C:\\Windows\\system32\\cmd.exe"
        _ = shared.held(long)
        #expect(shared.held(String(long.utf8.map { Character(UnicodeScalar($0)) })) == long)
    }
}
