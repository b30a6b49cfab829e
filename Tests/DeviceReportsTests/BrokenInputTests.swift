// A corpus of broken files: each gives one clear error naming the file (and the line
// where one exists), defers the device the file names, and never crashes.

import Testing
@testable import DeviceReports
import TakeoverCore

struct BrokenCase: CustomStringConvertible, Sendable {
    var name: String
    var bytes: [UInt8]
    var line: Int?
    var fragment: String
    /// The device deferred; nil: the one the file name gives.
    var device: String? = nil
    var description: String { name }
}

private func utf8(_ s: String) -> [UInt8] { Array(s.utf8) }

let brokenCorpus: [BrokenCase] = [
    BrokenCase(name: "truncated-array.json", bytes: utf8("[\n  {\"username\":\"root\",\"uid\":\"0\"},\n  {\"username\":\"al"),
               line: 3, fragment: "truncated"),
    BrokenCase(name: "truncated-object.json", bytes: utf8("{\n  \"Name\": \"jdoe\",\n  \"SID\": {\"Value\": \"S-1-5-21-1-2-3-1001\""),
               line: 3, fragment: "truncated"),
    BrokenCase(name: "truncated-literal.json", bytes: utf8("[{\"username\":\"a\",\"is_hidden\":tr"), line: 1, fragment: "truncated"),
    BrokenCase(name: "binary.bin.json", bytes: [0x7F, 0x45, 0x4C, 0x46, 0x02, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x00, 0x3E, 0x00],
               line: 1, fragment: "binary data"),
    BrokenCase(name: "garbage.json", bytes: [0x5B, 0xC3, 0x28, 0xFF, 0xFE, 0x80], line: 1, fragment: "not valid UTF-8"),
    BrokenCase(name: "empty.json", bytes: [], line: nil, fragment: "empty file"),
    BrokenCase(name: "blank.txt", bytes: utf8("\n \r\n\t\n"), line: nil, fragment: "empty file"),
    BrokenCase(name: "utf16-nobom.json", bytes: Array("[{\"Name\":\"jdoe\"}]".utf16.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }),
               line: 1, fragment: "UTF-16LE without a byte-order mark"),
    BrokenCase(name: "latin1.passwd", bytes: utf8("root:x:0:0:root:/root:/bin/bash\njose:x:1000:1000:Jos") + [0xE9]
               + utf8(":/home/jose:/bin/bash\n"), line: 2, fragment: "Latin-1"),
    BrokenCase(name: "utf16-lone-surrogate.json", bytes: [0xFF, 0xFE, 0x5B, 0x00, 0x00, 0xDC, 0x5D, 0x00], line: 1,
               fragment: "unpaired low surrogate"),
    BrokenCase(name: "utf16-odd.json", bytes: [0xFF, 0xFE, 0x5B, 0x00, 0x5D], line: 1, fragment: "odd number of bytes"),
    BrokenCase(name: "wrong-type-username.json", bytes: utf8("[{\"username\":42,\"uid\":\"0\"}]"), line: 1,
               fragment: "field 'username' must be a string, found a number"),
    BrokenCase(name: "wrong-type-uid.json", bytes: utf8("[\n{\"username\":\"root\",\"uid\":\"0\"},\n{\"username\":\"bob\",\"uid\":\"abc\"}]"),
               line: 3, fragment: "account \"bob\": field 'uid' must be an integer, found \"abc\""),
    BrokenCase(name: "wrong-type-uid-object.json", bytes: utf8("[{\"username\":\"bob\",\"uid\":{}}]"), line: 1,
               fragment: "field 'uid' must be an integer, found an object"),
    BrokenCase(name: "wrong-type-sid.json", bytes: utf8("{\"Name\":\"x\",\"SID\":[1],\"Enabled\":true}"), line: 1,
               fragment: "field 'SID' must be an object"),
    BrokenCase(name: "wrong-type-array-of-strings.json", bytes: utf8("[\"root\",\"bob\"]"), line: nil, fragment: "holds no objects"),
    BrokenCase(name: "deep.json", bytes: utf8(String(repeating: "[", count: 200) + String(repeating: "]", count: 200)), line: 1,
               fragment: "nested deeper than 64 levels"),
    BrokenCase(name: "very-deep.json", bytes: utf8(String(repeating: "{\"a\":", count: 100_000)), line: 1,
               fragment: "nested deeper than"),
    BrokenCase(name: "empty-array.json", bytes: utf8("[]\n"), line: nil, fragment: "no accounts"),
    BrokenCase(name: "trailing.json", bytes: utf8("[{\"username\":\"root\"}]\n]"), line: 2, fragment: "after the end of the JSON value"),
    BrokenCase(name: "bad-escape.json", bytes: utf8("[{\"username\":\"a\\qb\"}]"), line: 1, fragment: "invalid escape sequence"),
    BrokenCase(name: "lone-surrogate-escape.json", bytes: utf8("[{\"username\":\"\\ud800x\"}]"), line: 1, fragment: "high surrogate"),
    BrokenCase(name: "newline-in-string.json", bytes: utf8("[{\"username\":\"ab\ncd\"}]"), line: 1, fragment: "string not closed"),
    BrokenCase(name: "leading-zero.json", bytes: utf8("[{\"username\":\"a\",\"uid\":007}]"), line: 1, fragment: "leading zero"),
    BrokenCase(name: "unknown.txt", bytes: utf8("hello world\nthis is not a report\n"), line: nil, fragment: "unrecognised report format"),
    BrokenCase(name: "unknown-json.json", bytes: utf8("[{\"hostname\":\"x\",\"os\":\"linux\"}]"), line: 1, fragment: "unrecognised report format"),
    BrokenCase(name: "dscl.txt", bytes: utf8("_amavisd                 83\ndaemon                   1\n"), line: nil,
               fragment: "unrecognised report format"),
    BrokenCase(name: "semicolons.csv", bytes: utf8("device;username;uid\r\nhost;root;0\r\n"), line: 1,
               fragment: "CSV reports must be comma-separated"),
    BrokenCase(name: "passwd-bad-uid.passwd", bytes: utf8("root:x:0:0:root:/root:/bin/bash\nbob:x:12a:100::/home/bob:/bin/sh\n"),
               line: 2, fragment: "uid must be an integer"),
    BrokenCase(name: "csv-short-row.csv", bytes: utf8("device,username,uid\nhost,root\n"), line: 2, fragment: "2 fields, the header has 3", device: "host"),
    BrokenCase(name: "csv-bad-time.csv", bytes: utf8("device,username,reported_at\nhost,root,soon\n"), line: 2, fragment: "not a date", device: "host"),
    BrokenCase(name: "jc-bad-time.json", bytes: utf8("[{\"system_id\":\"abc\",\"collection_time\":\"x\",\"username\":\"root\"}]"), line: 1,
               fragment: "'collection_time' is not a date", device: "abc"),
    BrokenCase(name: "osqueryd-bad-action.log", bytes: utf8("{\"name\":\"u\",\"hostIdentifier\":\"h\",\"unixTime\":1,\"counter\":0,\"columns\":{\"username\":\"root\"},\"action\":\"moved\"}\n"),
               line: 1, fragment: "unknown action", device: "h"),
    BrokenCase(name: "osqueryd-no-time.log", bytes: utf8("{\"name\":\"u\",\"hostIdentifier\":\"h\",\"counter\":0,\"snapshot\":[{\"username\":\"root\"}]}\n"),
               line: 1, fragment: "no 'unixTime'", device: "h"),
]

@Suite struct BrokenInputTests {
    @Test(arguments: brokenCorpus)
    func brokenFileGivesAClearErrorNamingTheFile(_ c: BrokenCase) {
        let source = "reports/" + c.name
        let r = ReportParser.parse(bytes: c.bytes, fileName: c.name, source: source, modificationTime: fixtureMTime,
                                   limits: ReportLimits())
        #expect(r.reports.isEmpty, "\(c.name) must not yield a report")
        let first = r.problems.first
        #expect(first != nil, "\(c.name) must yield an error")
        #expect(first?.source == source)
        #expect(first?.line == c.line, "\(c.name): \(first?.reportLine ?? "-")")
        #expect(first?.message.contains(c.fragment) == true, "\(c.name): \(first?.reportLine ?? "-")")
        #expect(first?.reportLine.hasPrefix(source + (c.line.map { ":\($0)" } ?? "") + ": ") == true)
        // The device the file names is deferred.
        let device = c.device ?? ReportParser.deviceName(fromFileName: c.name)
        #expect(r.problems.contains { $0.device == device },
                "\(c.name): \(r.problems.map(\.reportLine))")
    }

    @Test func oversizedFileNamesTheCap() {
        let text = "root:x:0:0:root:/root:/bin/bash\n"
        let r = parseText(String(repeating: text, count: 10), fileName: "big.passwd", limits: ReportLimits(maxFileBytes: 100))
        #expect(r.reports.isEmpty)
        #expect(r.problems.count == 1)
        #expect(r.problems.first?.device == "big")
        #expect(r.problems.first?.message.contains("100-byte cap") == true)
        #expect(r.problems.first?.message.contains("maxFileBytes") == true)
        #expect(ReportLimits().maxFileBytes == 64 * 1024 * 1024)
    }

    @Test func hostileFileNameWithBadContent() {
        let r = ReportParser.parse(bytes: [0, 1, 2, 3, 0xFF], fileName: "kiosk,ou=Users.json", modificationTime: 0)
        #expect(r.problems.count == 1)
        #expect(r.problems.first?.device == "kiosk,ou=Users")
        #expect(r.problems.first?.reportLine.hasPrefix("kiosk,ou=Users.json:1: ") == true)
    }

    @Test func manyBadRowsAreCappedInOneFile() {
        var text = "root:x:0:0:root:/root:/bin/bash\n"
        for i in 0..<100 { text += "u\(i):x:bad:0::/home/u:/bin/sh\n" }
        let r = parseText(text, fileName: "many.passwd")
        #expect(r.reports.isEmpty)
        #expect(r.problems.count == ReportBuilder.maxListedErrors + 1)
        #expect(r.problems.last?.message == "80 more errors in this file not listed")
    }
}
