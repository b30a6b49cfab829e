import Foundation
import Testing
@testable import DeviceReports
import TakeoverCore

/// A fresh directory under the system temp dir, removed by `cleanup()`.
struct TempFolder {
    let path: String

    init(_ label: String) throws {
        path = NSTemporaryDirectory() + "tb-reports-\(label)-\(UUID().uuidString)/reports"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func write(_ name: String, _ bytes: [UInt8], mtime: UnixTime? = nil) throws {
        let file = path + "/" + name
        try Data(bytes).write(to: URL(fileURLWithPath: file))
        if let mtime {
            try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSince1970: TimeInterval(mtime))], ofItemAtPath: file)
        }
    }

    func write(_ name: String, _ text: String, mtime: UnixTime? = nil) throws { try write(name, Array(text.utf8), mtime: mtime) }

    func cleanup() { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
}

@Suite struct ReportsFolderTests {
    @Test func badFileDefersOnlyItsOwnDevice() throws {
        let dir = try TempFolder("mix")
        defer { dir.cleanup() }
        try dir.write("web01.passwd", try fixtureBytes("getent-passwd.txt"), mtime: 1_700_000_123)
        try dir.write("mbp.json", try fixtureBytes("macos-osqueryi.json"))
        try dir.write("ps.json", try fixtureBytes("ps51-single-utf16le.json"))
        try dir.write("inventory.csv", try fixtureBytes("inventory.csv"))
        try dir.write("osqueryd.results.log", try fixtureBytes("osqueryd-events.log"))
        try dir.write("kiosk,ou=Users.json", "[{\"username\":\"root\",\"uid\":\"0\"},{\"username\":")
        try dir.write("Bob's MacBook Pro.json", [0xFF, 0x00, 0x13])
        try dir.write(".hidden.json", "garbage")
        try dir.write("README.md", "# what these files are")
        try dir.write("readme.txt", "notes")
        #expect(mkfifo(dir.path + "/agent.pipe", 0o600) == 0)
        // A name that is not UTF-8 cannot name a device: said, not guessed.
        let rawName = Array((dir.path + "/bad-").utf8) + [0xFF] + Array(".json".utf8) + [0]
        let fd = open(rawName.map { CChar(bitPattern: $0) }, O_CREAT | O_WRONLY, 0o644)
        #expect(fd >= 0)
        close(fd)
        try FileManager.default.createDirectory(atPath: dir.path + "/archive", withIntermediateDirectories: false)
        try dir.write("archive/old.json", "garbage")
        // A symbolic link to a regular file is read; one to a device is not opened.
        #expect(symlink(dir.path + "/web01.passwd", dir.path + "/web02.passwd") == 0)
        #expect(symlink("/dev/zero", dir.path + "/zero.json") == 0)

        let r = ReportsFolder.read(path: dir.path)
        #expect(r.devices == ["Bob's PC", "kiosk-07", "lab-01", "lab-02", "mbp", "mbp-alice", "ps", "web01", "web02"])
        #expect(r.warnings.contains { $0.source == "reports/agent.pipe" && $0.message == "not a regular file (a FIFO): skipped" },
                "\(r.warnings.map(\.reportLine))")
        #expect(r.warnings.contains {
            $0.source == "reports/zero.json" && $0.message == "not a regular file (a symbolic link to a character device): skipped"
        }, "\(r.warnings.map(\.reportLine))")
        #expect(r.warnings.contains {
            $0.source == "reports/archive" && $0.message == "a folder: skipped (the reports folder is not read recursively)"
        }, "\(r.warnings.map(\.reportLine))")
        #expect(r.report("web01")?.reportedAt == 1_700_000_123, "mtime is the fallback report time")
        #expect(r.report("web01")?.source == "reports/web01.passwd")
        #expect(r.report("lab-01")?.source == "reports/osqueryd.results.log")
        #expect(r.problems.count == 3, "\(r.problems.map(\.reportLine))")
        let badUTF8 = try #require(r.problems.first { $0.message.contains("not valid UTF-8: not read") })
        #expect(badUTF8.device == nil)
        #expect(badUTF8.source == "reports/bad-\u{FFFD}.json")
        let bob = try #require(r.problems.first { $0.source == "reports/Bob's MacBook Pro.json" })
        #expect(bob.device == "Bob's MacBook Pro")
        let kiosk = try #require(r.problems.first { $0.source == "reports/kiosk,ou=Users.json" })
        #expect(kiosk.device == "kiosk,ou=Users")
        #expect(kiosk.line == 1)
        #expect(kiosk.reportLine.hasPrefix("reports/kiosk,ou=Users.json:1: "))
        // Sorted and deterministic whatever the thread timing.
        let again = ReportsFolder.read(path: dir.path)
        #expect(again == r)
        #expect(r.reports.map(\.device) == r.reports.map(\.device).sorted())
        // Held back behind a gate nobody opens, the first worker reads every file and lets
        // the others go: the read ends, with the same result; opened early, the same too.
        #expect(ReportsFolder.read(path: dir.path, gate: WorkerGate()) == r)
        let opened = WorkerGate()
        opened.open()
        opened.open()
        #expect(ReportsFolder.read(path: dir.path, gate: opened) == r)
    }

    @Test func capsOnFileCountAndSize() throws {
        let dir = try TempFolder("caps")
        defer { dir.cleanup() }
        for i in 0..<5 { try dir.write("h\(i).passwd", "root:x:0:0:root:/root:/bin/bash\n") }
        try dir.write("h9.passwd", String(repeating: "root:x:0:0:root:/root:/bin/bash\n", count: 100))
        let r = ReportsFolder.read(path: dir.path, limits: ReportLimits(maxFileBytes: 1000, maxFiles: 4))
        #expect(r.devices == ["h0", "h1", "h2", "h3"])
        #expect(r.problems.count == 2)
        #expect(r.problems.allSatisfy { $0.message.contains("more than 4 files") })
        #expect(Set(r.problems.compactMap(\.device)) == ["h4", "h9"])
        let sized = ReportsFolder.read(path: dir.path, limits: ReportLimits(maxFileBytes: 1000))
        #expect(sized.problems.count == 1)
        #expect(sized.problems.first?.device == "h9")
        #expect(sized.problems.first?.message.contains("1000-byte cap") == true)
    }

    @Test func deepestAllowedNestingOnWorkerThreads() throws {
        // The depth ceiling must hold on Dispatch worker threads, whose stacks are smaller.
        let dir = try TempFolder("deep")
        defer { dir.cleanup() }
        let depth = JSONParser.depthCeiling
        for i in 0..<4 {
            try dir.write("deep\(i).json", String(repeating: "[", count: depth) + String(repeating: "]", count: depth))
            try dir.write("deeper\(i).json", String(repeating: "{\"a\":", count: 100_000))
        }
        let r = ReportsFolder.read(path: dir.path, limits: ReportLimits(maxJSONDepth: .max))
        #expect(r.reports.isEmpty)
        #expect(r.problems.count == 8, "\(r.problems.map(\.reportLine))")
        #expect(r.problems.filter { $0.message.contains("deeper than \(depth)") }.count == 4)
        #expect(r.problems.filter { $0.message.contains("holds no objects") }.count == 4)
    }

    @Test func missingFolderIsOneProblem() {
        let r = ReportsFolder.read(path: "/nonexistent/tb-reports-\(UUID().uuidString)")
        #expect(r.reports.isEmpty)
        #expect(r.problems.count == 1)
        #expect(r.problems.first?.message.contains("cannot list the reports folder") == true)
    }

    @Test func emptyFolderIsEmpty() throws {
        let dir = try TempFolder("empty")
        defer { dir.cleanup() }
        #expect(ReportsFolder.read(path: dir.path) == ReportsReadResult())
    }
}

/// A parsed value with its strings decoded, for comparisons in tests.
indirect enum Plain: Equatable {
    case object([PlainMember], offset: Int)
    case array([Plain])
    case string(String)
    case number(String)
    case bool(Bool)
    case null

    init(_ v: JSONValue, _ doc: JSONDocument) {
        switch v {
        case .object(let o): self = .object(doc.members(o).map { PlainMember(key: doc.string($0.key), value: Plain($0.value, doc)) }, offset: o.offset)
        case .array(let a): self = .array(doc.elements(a).map { Plain($0, doc) })
        case .string(let t): self = .string(doc.string(t))
        case .number(let t): self = .number(doc.string(t))
        case .bool(let b): self = .bool(b)
        case .null: self = .null
        }
    }
}

struct PlainMember: Equatable {
    var key: String
    var value: Plain
}

@Suite struct JSONParserTests {
    func parse(_ text: String, depth: Int = 64) -> Result<Plain, JSONParseError> {
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBufferPointer { buf in
            var p = JSONParser(buf, maxDepth: depth)
            do throws(JSONParseError) {
                let v = try p.parseDocument()
                return .success(p.storage.withDocument(buf) { Plain(v, $0) })
            } catch {
                return .failure(error)
            }
        }
    }

    @Test func valuesAndOrder() throws {
        let v = try parse(#" {"b":[1,-2.5e3,true,false,null],"a":"x","b":"dup"} "#).get()
        #expect(v == .object([
            PlainMember(key: "b", value: .array([.number("1"), .number("-2.5e3"), .bool(true), .bool(false), .null])),
            PlainMember(key: "a", value: .string("x")),
            PlainMember(key: "b", value: .string("dup")),
        ], offset: 1))
    }

    @Test func escapesAndSurrogatePairs() throws {
        let v = try parse(#"["a\"b\\c\/d\b\f\n\r\t", "\u00e9\u20AC", "\ud83d\ude00", "\u0000", "x\u0041y"]"#).get()
        #expect(v == .array([.string("a\"b\\c/d\u{8}\u{C}\n\r\t"), .string("é€"), .string("😀"), .string("\u{0}"), .string("xAy")]))
    }

    @Test func escapedMemberNamesAreFound() {
        let bytes = Array(#"{"user\u006eame":"root","uid":"0"}"#.utf8)
        bytes.withUnsafeBufferPointer { buf in
            var p = JSONParser(buf, maxDepth: 8)
            guard let v = try? p.parseDocument(), let o = v.object else { Issue.record("no object"); return }
            p.storage.withDocument(buf) { doc in
                let row = Row(doc: doc, object: o)
                #expect(row.optionalString("username") == "root")
                #expect((try? row.integer("uid")) == 0)
            }
        }
    }

    @Test func bigNumbersStayExact() throws {
        #expect(try parse("18446744073709551615").get() == .number("18446744073709551615"))
        #expect(try parse("4294967294").get() == .number("4294967294"))
    }

    @Test func errorsCarryOffsets() {
        for (text, offset, fragment) in [
            ("[1,2", 4, "truncated"), ("[1 2]", 3, "expected ',' or ']'"), ("{\"a\" 1}", 5, "expected ':'"),
            ("{1:2}", 1, "quoted member name"), ("[01]", 1, "leading zero"), ("[1.]", 3, "after '.'"),
            ("\"\\u12zz\"", 1, "four hex digits"), ("\"\\udc00\"", 1, "unpaired low surrogate"), ("nul", 3, "truncated"),
            ("[\"a\u{1}\"]", 3, "control character"), ("", 0, "expected a value"), ("[]]", 2, "after the end"),
        ] {
            switch parse(text) {
            case .success(let v): Issue.record("\(text) parsed as \(v)")
            case .failure(let e):
                #expect(e.offset == offset, "\(text): \(e)")
                #expect(e.message.contains(fragment), "\(text): \(e.message)")
            }
        }
    }

    @Test func depthIsCapped() {
        let ok = String(repeating: "[", count: 64) + String(repeating: "]", count: 64)
        #expect((try? parse(ok).get()) != nil)
        let deep = String(repeating: "[", count: 65) + String(repeating: "]", count: 65)
        guard case .failure(let e) = parse(deep) else { Issue.record("65 levels accepted"); return }
        #expect(e.message.contains("deeper than 64"))
        // A huge depth request is still bounded by the ceiling.
        let huge = String(repeating: "[", count: 100_000)
        guard case .failure(let e2) = parse(huge, depth: Int.max) else { Issue.record("accepted"); return }
        #expect(e2.message.contains("deeper than \(JSONParser.depthCeiling)"))
    }

    @Test func lineIndex() {
        let idx = LineIndex(Array("ab\ncd\n\nef".utf8))
        #expect(idx.line(at: 0) == 1)
        #expect(idx.line(at: 2) == 1)
        #expect(idx.line(at: 3) == 2)
        #expect(idx.line(at: 6) == 3)
        #expect(idx.line(at: 7) == 4)
    }
}
