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

    @Test func cmdExeCheckMatchesLowercasedSuffix() {
        let shells = ["C:\\Windows\\system32\\cmd.exe", "C:\\WINDOWS\\SYSTEM32\\CMD.EXE", "cmd.exe", "CmD.ExE", "md.exe",
                      "xcmd.exe", "cmd.exe ", "cmd.ex", "", "/bin/bash", "ÇMD.EXE", "é\\cmd.exe", "cmd.exé",
                      "\u{600}cmd.exe", "İcmd.exe", "C:\\Programme\\Ünicode\\CMD.EXE", "cmd\u{301}.exe", "cmd.e\u{301}xe"]
        for s in shells {
            #expect(PlatformEvidence.endsWithCmdExe(s) == s.lowercased().hasSuffix("cmd.exe"), "\(s)")
        }
    }
}
