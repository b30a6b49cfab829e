// The reports folder's fast paths give the answers of the plain ones: the JSON string
// scan that jumps to the first special byte of a word, the one-pass osquery column table
// against Row's member search, and the ASCII "cmd.exe" check against lowercased().hasSuffix.

import Testing
@testable import DeviceReports
import TakeoverCore
import TestSupport

@Suite struct FastPathTests {
    /// Strings whose quotes, backslashes and control characters fall at every position of
    /// an 8-byte word decode to what was encoded; a raw control byte is reported where it is.
    @Test func stringScanFindsEverySpecialByte() {
        var rng = SplitMix64(seed: 0x57_2199)
        let pieces: [(json: String, text: String)] = [
            ("a", "a"), ("b", "b"), ("é", "é"), ("😀", "😀"), ("\\\"", "\""), ("\\\\", "\\"), ("\\n", "\n"),
            ("\\u0001", "\u{1}"), ("\\u00e9", "é"), ("\\ud83d\\ude00", "😀"), ("/", "/"), (" ", " "),
        ]
        for _ in 0..<400 {
            var json = "["
            var expected: [String] = []
            for k in 0..<(1 + rng.below(6)) {
                var j = "", t = ""
                for _ in 0..<rng.below(20) {
                    // Mostly plain bytes, so the special ones land at varied offsets.
                    let piece = rng.chance(70) ? pieces[rng.below(2)] : rng.pick(pieces)
                    j += piece.json
                    t += piece.text
                }
                json += (k == 0 ? "" : ",") + "\"" + j + "\""
                expected.append(t)
            }
            json += "]"
            let bytes = Array(json.utf8)
            let decoded: [String]? = bytes.withUnsafeBufferPointer { buf in
                var p = JSONParser(buf, maxDepth: 8)
                guard case .array(let a)? = try? p.parseDocument() else { return nil }
                return p.storage.withDocument(buf) { doc in
                    doc.elements(a).map { v -> String in
                        if case .string(let t) = v { return doc.string(t) }
                        return "<not a string>"
                    }
                }
            }
            #expect(decoded == expected, "\(json)")

            // The same text with one raw control byte inside a string: the error names it.
            guard let firstQuote = bytes.firstIndex(of: UInt8(ascii: "\"")) else { continue }
            var broken = bytes
            let at = firstQuote + 1 + rng.below(3)
            guard at < broken.count - 2 else { continue }
            broken.insert(0x01, at: at)
            let error: JSONParseError? = broken.withUnsafeBufferPointer { buf in
                var p = JSONParser(buf, maxDepth: 8)
                do throws(JSONParseError) { _ = try p.parseDocument(); return nil } catch { return error }
            }
            // Unless the insertion split an escape (then the escape is what is wrong).
            if let error, error.message.hasPrefix("unescaped control character") {
                #expect(error.offset == at, "\(json)")
            }
        }
    }

    /// OsqueryColumns picks, for every column, the member `Row[key]` finds: the first of
    /// that name, escaped names decoded, near misses ignored.
    @Test func columnTableMatchesMemberSearch() {
        var rng = SplitMix64(seed: 0xC0_1A)
        let keys = ["username", "uid", "uid_signed", "uuid", "directory", "shell", "description", "is_hidden",
                    "type", "real_user", "gid", "UID", "uid ", "user", "usernames", "user\\u006eame", "\\u0075id",
                    "typ\\u0065", "shel", "descriptio"]
        let values = ["\"root\"", "\"\"", "0", "-2", "null", "true", "\"S-1-5-18\"", "{\"a\":1}", "[1]", "\"x\\ny\""]
        for _ in 0..<500 {
            var members: [String] = []
            for _ in 0..<rng.below(14) { members.append("\"\(rng.pick(keys))\":\(rng.pick(values))") }
            let bytes = Array(("{" + members.joined(separator: ",") + "}").utf8)
            bytes.withUnsafeBufferPointer { buf in
                var p = JSONParser(buf, maxDepth: 8)
                guard let v = try? p.parseDocument(), let o = v.object else { Issue.record("no object"); return }
                p.storage.withDocument(buf) { doc in
                    let row = Row(doc: doc, object: o)
                    let c = OsqueryColumns(row)
                    #expect(c.username == row["username"])
                    #expect(c.uid == row["uid"])
                    #expect(c.uidSigned == row["uid_signed"])
                    #expect(c.uuid == row["uuid"])
                    #expect(c.directory == row["directory"])
                    #expect(c.shell == row["shell"])
                    #expect(c.description == row["description"])
                    #expect(c.isHidden == row["is_hidden"])
                    #expect(c.type == row["type"])
                    #expect(c.realUser == row["real_user"])
                }
            }
        }
    }

    /// UTF-16LE is transcoded four ASCII units at a time, UTF-16BE unit by unit: the same
    /// text in both gives the same bytes, or the same error on the same line, wherever the
    /// non-ASCII units, NULs, newlines and broken surrogates fall in a word.
    @Test func utf16WordPathMatchesUnitPath() {
        var rng = SplitMix64(seed: 0x16_1E)
        let pieces: [[UInt16]] = [[0x61], [0x41], [0x20], [0x0A], [0x0D, 0x0A], [0x7F], [0x80], [0xE9], [0x7FF], [0x800],
                                  [0xFFFD], [0xD83D, 0xDE00], [0x00], [0xD800], [0xDC00], [0xD800, 0x41]]
        for _ in 0..<3000 {
            var units: [UInt16] = []
            for _ in 0..<rng.below(40) {
                units += rng.chance(80) ? rng.pick(Array(pieces.prefix(5))) : rng.pick(pieces)
            }
            let le: [UInt8] = [0xFF, 0xFE] + units.flatMap { u -> [UInt8] in [UInt8(u & 0xFF), UInt8(u >> 8)] }
            let be: [UInt8] = [0xFE, 0xFF] + units.flatMap { u -> [UInt8] in [UInt8(u >> 8), UInt8(u & 0xFF)] }
            switch (TextDecoding.utf8Bytes(le), TextDecoding.utf8Bytes(be)) {
            case (.success(let a), .success(let b)):
                #expect(a == b, "\(units)")
                #expect(a == Array(String(decoding: units, as: UTF16.self).utf8), "\(units)")
            case (.failure(let a), .failure(let b)):
                #expect(a.line == b.line && a.message == b.message, "\(units)")
            default:
                Issue.record("LE and BE disagree on \(units)")
            }
        }
    }

    /// Sharing answers only a value with the same bytes: never a canonically equivalent one.
    @Test func sharingKeepsTheBytes() {
        var shared = SharedValues()
        let composed = "Administrateur du système", decomposed = "Administrateur du syste\u{300}me"
        #expect(composed == decomposed)
        #expect(shared.held(composed) == nil)
        #expect(shared.held(decomposed) == nil)
        let copy = String(decoding: Array(decomposed.utf8), as: UTF8.self)
        #expect(shared.held(copy).map { Array($0.utf8) } == Array(decomposed.utf8))
    }

    /// A CSV reported_at equal to the row before is not parsed again: each device still gets
    /// the newest of its times, and every bad time is still an error on its own line.
    @Test func csvTimesRepeatedOrNot() {
        let csv = "device,username,reported_at\n"
            + "a,root,2026-11-30T10:00:00Z\na,bin,2026-11-30T10:00:00Z\na,adm, 2026-11-30T12:00:00Z\n"
            + "b,root,soon\nb,bin,soon\nc,root,2026-11-30T10:00:00Z\nc,bin,1796036400\nc,adm,1796036400\n"
        let r = parseText(csv, fileName: "f.csv")
        #expect(r.report("a")?.reportedAt == 1_796_040_000)
        #expect(r.report("a")?.names == ["root", "bin", "adm"])
        #expect(r.report("b") == nil)
        #expect(r.problems.filter { $0.device == "b" && $0.message.contains("not a date") }.compactMap(\.line) == [5, 6])
        #expect(r.report("c")?.reportedAt == 1_796_036_400)
    }

    @Test func cmdExeCheckMatchesLowercasedSuffix() {
        let shells = ["C:\\Windows\\system32\\cmd.exe", "C:\\WINDOWS\\SYSTEM32\\CMD.EXE", "cmd.exe", "CmD.ExE", "md.exe",
                      "xcmd.exe", "cmd.exe ", "cmd.ex", "", "/bin/bash", "ÇMD.EXE", "é\\cmd.exe", "cmd.exé",
                      "\u{600}cmd.exe", "İcmd.exe", "C:\\Programme\\Ünicode\\CMD.EXE", "cmd\u{301}.exe", "cmd.e\u{301}xe"]
        for s in shells {
            #expect(PlatformEvidence.endsWithCmdExe(s) == s.lowercased().hasSuffix("cmd.exe"), "\(s)")
        }
    }
}
