import Foundation
import LDAPSyntax
import Testing
@testable import DeviceReports
import TakeoverCore
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// On the real file system: future-dated reports (R8), duplicate
/// detection with the planner's case folding (R15), files still being written, the total
/// volume limit.
@Suite struct ReportHardeningTests {
    // MARK: Item 6: one folding rule

    /// Pairs that fold equal under full case folding but not under `lowercased()`, and
    /// pairs both agree on.
    static let foldEqual: [(String, String)] = [
        ("straße", "STRASSE"), ("Maẞ", "mass"), ("ﬁle", "FILE"), ("ﬁle", "file"),
        ("ΣΟΦΟΣ", "σοφος"), ("σοφος", "σοφοσ"), ("Kelvin", "\u{212A}elvin"), ("ǰane", "J\u{30C}ANE"),
    ]

    @Test(arguments: foldEqual) func duplicateInsideAReportUsesFullCaseFolding(_ pair: (String, String)) {
        let csv = "device,username,uid\nbox,\(pair.0),1001\nbox,\(pair.1),1002\n"
        let r = parseText(csv, fileName: "box.csv")
        #expect(r.problems.isEmpty)
        #expect(r.report("box")?.names == [pair.0])
        #expect(r.warnings.contains { $0.message.contains("reported twice") })
        // The planner's rule, the one the report used.
        #expect(Folding.fold(pair.0) == Folding.fold(pair.1))
    }

    @Test func dotlessIAndCapitalIStayTwoAccounts() {
        // U+0131 folds only under the Turkic mappings, which are not used: "ıan" and "IAN"
        // are two accounts, for the report as for the planner.
        let r = parseText("device,username\nbox,\u{131}an\nbox,IAN\n", fileName: "box.csv")
        #expect(r.report("box")?.names == ["\u{131}an", "IAN"])
        #expect(r.warnings.isEmpty)
    }

    @Test func duplicatesAreFoundBeforeAndAfterTheSetTakesOver() {
        // Below `ReportBuilder.setFrom` accounts duplicates are found by a scan, above it by a set.
        let n = ReportBuilder.setFrom + 24, late = ReportBuilder.setFrom + 19
        var csv = "device,username\n"
        for i in 0..<n { csv += "box,user\(i)\n" }
        csv += "box,USER3\nbox,User\(late)\nsmall,ann\nsmall,ANN\n"
        let r = parseText(csv, fileName: "f.csv")
        #expect(r.report("box")?.accounts.count == n)
        #expect(r.report("small")?.names == ["ann"])
        let messages = r.warnings.map(\.message)
        #expect(messages.contains { $0.contains("'USER3'") && $0.contains("first at line 5") })
        #expect(messages.contains { $0.contains("'User\(late)'") && $0.contains("first at line \(late + 2)") })
        #expect(messages.contains { $0.contains("'ANN'") && $0.contains("first at line \(n + 4)") })
    }

    @Test func reportsKeepNoSpareCapacity() {
        // Item 8: arrays grown by appending keep up to half their room unused; a report
        // holds only what its accounts need.
        var csv = "device,username,uid,shell\n"
        for i in 0..<33 { csv += "box,user\(i),\(1000 + i),/usr/sbin/nologin\n" }
        let r = parseText(csv, fileName: "f.csv")
        let accounts = r.report("box")?.accounts ?? []
        #expect(accounts.count == 33)
        #expect(accounts.capacity <= 33 + 33 / 8)
        #expect(accounts.allSatisfy { $0.shell == "/usr/sbin/nologin" })
    }

    @Test func osquerydLogUsesTheSameFolding() {
        let row = { (name: String) in
            "{\"username\":\"\(name)\",\"uid\":\"1001\",\"directory\":\"/home/x\",\"shell\":\"/bin/bash\"}"
        }
        let line = "{\"name\":\"users\",\"hostIdentifier\":\"h1\",\"unixTime\":1700000000,\"action\":\"snapshot\","
            + "\"snapshot\":[\(row("straße")),\(row("STRASSE"))]}\n"
        let r = parseText(line, fileName: "h1.log")
        #expect(r.report("h1")?.accounts.count == 1)
        #expect(r.warnings.contains { $0.message.contains("reported twice") })
    }

    @Test func randomCaseVariantsAreOneAccount() {
        var rng = SplitMix64(seed: 0xF01D)
        let pieces: [[String]] = [["ß", "SS", "ss", "ẞ"], ["ﬁ", "FI", "fi", "Fi"], ["σ", "Σ", "ς"], ["k", "K", "\u{212A}"], ["a", "A"]]
        for _ in 0..<200 {
            var a = "", b = ""
            for _ in 0..<(1 + rng.int(5)) {
                let p = rng.pick(pieces)
                a += rng.pick(p)
                b += rng.pick(p)
            }
            let r = parseText("device,username\nbox,\(a)\nbox,\(b)\n", fileName: "box.csv")
            #expect(r.report("box")?.accounts.count == 1, "\(a) / \(b)")
        }
    }

    // MARK: Item 5: reports dated in the future, per format

    static let now: UnixTime = 1_795_939_200
    static let skew: Int64 = 300

    /// Reads `dir`, plans one connected user against it, returns the plan.
    func plan(_ dir: TempFolder, device: String, skew: Int64 = ReportHardeningTests.skew) -> Plan {
        let read = ReportsFolder.read(path: dir.path)
        let user = DirectoryUser(dn: "uid=alice,ou=people,dc=example,dc=com", username: "alice")
        return Planner.plan(PlanInput(
            users: [user], connections: [Connection(device: device, member: .dn(user.dn))], reports: read.reports,
            problems: read.problems, bindingGroups: [], layout: .projectSchema(base: "ou=bindings,dc=example,dc=com"),
            policy: Policy(maxClockSkew: skew), now: Self.now))
    }

    func expectFutureRefused(_ plan: Plan, device: String, file: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let d = plan.decisions.first { $0.device == device }
        #expect(d?.action == .deferred, sourceLocation: sourceLocation)
        #expect(d?.reason.contains("in the future") == true, sourceLocation: sourceLocation)
        #expect(plan.errors.contains { $0.source == "reports/" + file && $0.message.contains("max_clock_skew") },
                sourceLocation: sourceLocation)
        #expect(plan.changes.isEmpty, sourceLocation: sourceLocation)
    }

    @Test func futureOsquerydUnixTime() throws {
        let dir = try TempFolder("future-osq")
        defer { dir.cleanup() }
        let line = "{\"name\":\"users\",\"hostIdentifier\":\"h1\",\"unixTime\":\(Self.now + Self.skew + 1),\"action\":\"snapshot\","
            + "\"snapshot\":[{\"username\":\"alice\",\"uid\":\"1001\",\"directory\":\"/home/alice\"}]}\n"
        try dir.write("h1.log", line)
        expectFutureRefused(plan(dir, device: "h1"), device: "h1", file: "h1.log")
    }

    @Test func futureJumpCloudCollectionTime() throws {
        let dir = try TempFolder("future-jc")
        defer { dir.cleanup() }
        try dir.write("export.json", "[{\"system_id\":\"jc1\",\"collection_time\":\"2099-01-01T00:00:00Z\",\"username\":\"alice\","
            + "\"uid\":\"1001\",\"directory\":\"/home/alice\",\"real_user\":true}]")
        expectFutureRefused(plan(dir, device: "jc1"), device: "jc1", file: "export.json")
    }

    @Test func futureCSVReportedAtOnlyRefusesItsDevice() throws {
        let dir = try TempFolder("future-csv")
        defer { dir.cleanup() }
        try dir.write("fleet.csv", "device,username,uid,reported_at\n"
            + "ahead,alice,1001,\(Self.now + 3600)\n"
            + "fine,alice,1001,\(Self.now + Self.skew)\n")
        let p = plan(dir, device: "ahead")
        expectFutureRefused(p, device: "ahead", file: "fleet.csv")
        // Exactly at the limit is accepted: the other device of the same file is used.
        let fine = plan(dir, device: "fine")
        #expect(fine.decisions.first?.action == .takeover)
    }

    @Test func futureFileModificationTime() throws {
        let dir = try TempFolder("future-mtime")
        defer { dir.cleanup() }
        try dir.write("srv.passwd", "alice:x:1001:1001::/home/alice:/bin/bash\n")
        // utimes(2) straight, as a clock-skewed NFS server would leave it.
        var times = [timeval(tv_sec: Int(Self.now + 86_400), tv_usec: 0), timeval(tv_sec: Int(Self.now + 86_400), tv_usec: 0)]
        #expect(utimes(dir.path + "/srv.passwd", &times) == 0)
        expectFutureRefused(plan(dir, device: "srv"), device: "srv", file: "srv.passwd")
        // A generous skew accepts it.
        #expect(plan(dir, device: "srv", skew: 2 * 86_400).decisions.first?.action == .takeover)
    }

    @Test func futureFileDoesNotOutrankTheRealReport() throws {
        // The 2099 report lists no alice (a provision); the real one lists her (a takeover).
        let dir = try TempFolder("future-outrank")
        defer { dir.cleanup() }
        try dir.write("mbp.csv", "device,username,uid,reported_at\nmbp,root,0,2099-01-01T00:00:00Z\n")
        try dir.write("mbp.passwd", "alice:x:1001:1001::/home/alice:/bin/bash\n", mtime: Self.now - 60)
        let p = plan(dir, device: "mbp")
        #expect(p.decisions.first?.action == .deferred)
        #expect(!p.decisions.contains { $0.action == .provision })
    }

    @Test func absurdTimesAreErrorsNotCrashes() throws {
        // "now - reportedAt" would overflow for these: each must be an error for its device.
        let dir = try TempFolder("absurd-times")
        defer { dir.cleanup() }
        try dir.write("fleet.csv", "device,username,uid,reported_at\n"
            + "low,alice,1001,-9223372036854775807\nhigh,alice,1001,9223372036854775807\nyear,alice,1001,10000-01-01\n")
        let osq = { (host: String, time: String) in
            "{\"name\":\"users\",\"hostIdentifier\":\"\(host)\",\"unixTime\":\(time),\"action\":\"snapshot\","
                + "\"snapshot\":[{\"username\":\"alice\",\"uid\":\"1001\"}]}\n"
        }
        try dir.write("o.log", osq("osq-low", "-9223372036854775807") + osq("osq-high", "9223372036854775807"))
        try dir.write("jc.json", "[{\"system_id\":\"jc\",\"collection_time\":\"/Date(-9223372036854775807)/\",\"username\":\"alice\"}]")
        try dir.write("old.passwd", "alice:x:1001:1001::/home/alice:/bin/bash\n")
        var times = [timeval(tv_sec: Int(Int64.min / 2), tv_usec: 0), timeval(tv_sec: Int(Int64.min / 2), tv_usec: 0)]
        _ = utimes(dir.path + "/old.passwd", &times)   // file systems clamp such times (ext4: to 1901)
        let read = ReportsFolder.read(path: dir.path)
        // The mtime as stored: an error when implausible, else an (inactive) report.
        #expect(read.reports.allSatisfy { $0.device == "old" && Timestamps.plausible.contains($0.reportedAt) },
                "\(read.reports.map(\.device))")
        let devices = Set(read.problems.compactMap(\.device))
        #expect(devices.isSuperset(of: ["low", "high", "year", "osq-low", "osq-high", "jc"]))
        for device in ["low", "high", "osq-low", "jc", "old"] {
            let plan = Planner.plan(PlanInput(
                users: [DirectoryUser(dn: "uid=alice,dc=x", username: "alice")],
                connections: [Connection(device: device, member: .name("alice"))], reports: read.reports,
                problems: read.problems, bindingGroups: [], layout: .projectSchema(base: "dc=b"), policy: Policy(), now: Self.now))
            #expect(plan.decisions.first?.action == .deferred)
        }
    }

    @Test func implausibleModificationTimeIsAnError() {
        for mtime in [Int64.min, Int64.max, Timestamps.plausible.upperBound + 1] {
            let r = ReportParser.parse(bytes: Array("alice:x:1001:1001::/home/alice:/bin/bash\n".utf8), fileName: "h.passwd",
                                       modificationTime: mtime)
            #expect(r.reports.isEmpty)
            #expect(r.problems.first?.device == "h" && r.problems.first?.message.contains("not a plausible date") == true)
        }
    }

    // MARK: Item 7: files still being written

    @Test func inProgressNamesAreNeverRead() throws {
        let dir = try TempFolder("partial")
        defer { dir.cleanup() }
        let passwd = "alice:x:1001:1001::/home/alice:/bin/bash\n"
        // Truncated content would be a wrong report: none of these may be read.
        for name in [".mbp.passwd", ".mbp.passwd.XyZ12a", "mbp.passwd.tmp", "mbp.passwd.TMP", "mbp.csv.part",
                     "mbp.json.Part", "mbp.passwd~", "srv~", ".hidden"] {
            try dir.write(name, "root:x:0:0")   // half a line: a parse error if it were read
        }
        try dir.write("srv.passwd", passwd)
        try dir.write("tmp.passwd", passwd)       // .tmp only as a suffix
        try dir.write("part", passwd)             // no dot: a device named "part"
        let r = ReportsFolder.read(path: dir.path)
        #expect(r.problems.isEmpty)
        #expect(r.warnings.isEmpty)
        #expect(r.devices == ["part", "srv", "tmp"])
    }

    @Test func inProgressNamesThatAreNotUTF8AreSkippedToo() throws {
        let dir = try TempFolder("partial-bytes")
        defer { dir.cleanup() }
        for raw: [UInt8] in [[0xFF, 0x61, 0x7E], [0xFF, 0x2E, 0x74, 0x6D, 0x70], [0x2E, 0xFF]] {
            let path = Array(dir.path.utf8) + [0x2F] + raw + [0]
            let fd = path.withUnsafeBufferPointer { p in
                p.baseAddress!.withMemoryRebound(to: CChar.self, capacity: p.count) { open($0, O_CREAT | O_WRONLY, 0o600) }
            }
            #expect(fd >= 0)
            close(fd)
        }
        let r = ReportsFolder.read(path: dir.path)
        #expect(r.problems.isEmpty)
    }

    @Test func inProgressRule() {
        for name in [".a", ".", "..", "a.tmp", "a.TMP", "a.part", "a.PART", "a~", "~"] {
            #expect(ReportsFolder.isInProgress(Array(name.utf8)), "\(name)")
        }
        for name in ["a", "tmp", "a.tmpx", "a.partial", "a~b", "part", "a.json", "a-tmp", "atmp"] {
            #expect(!ReportsFolder.isInProgress(Array(name.utf8)), "\(name)")
        }
    }

    // MARK: Item 8: total volume

    @Test func oneFileOverTheTotalLimitReadsNothing() throws {
        let dir = try TempFolder("volume-one")
        defer { dir.cleanup() }
        try dir.write("small.passwd", "root:x:0:0:root:/root:/bin/bash\n")
        try dir.write("big.csv", "device,username\n" + String(repeating: "big,someone\n", count: 200))
        let r = ReportsFolder.read(path: dir.path, limits: ReportLimits(maxTotalBytes: 1000))
        let fatal = try #require(r.fatal)
        #expect(fatal.contains("max_reports_size"))
        #expect(fatal.contains("1000 bytes"))
        #expect(fatal.contains("reports/big.csv"))
        #expect(r.reports.isEmpty && r.problems.isEmpty && r.warnings.isEmpty)
    }

    @Test func severalFilesTogetherOverTheLimit() throws {
        let dir = try TempFolder("volume-many")
        defer { dir.cleanup() }
        let line = "root:x:0:0:root:/root:/bin/bash\n"   // 32 bytes
        for i in 0..<10 { try dir.write("h\(i).passwd", line) }
        // Dot files and temporary files do not count: they are never read.
        try dir.write(".h.passwd.tmp", String(repeating: line, count: 100))
        #expect(ReportsFolder.read(path: dir.path, limits: ReportLimits(maxTotalBytes: 320)).fatal == nil)
        #expect(ReportsFolder.read(path: dir.path, limits: ReportLimits(maxTotalBytes: 320)).reports.count == 10)
        let over = ReportsFolder.read(path: dir.path, limits: ReportLimits(maxTotalBytes: 319))
        #expect(over.fatal?.contains("the 10 report files") == true)
        #expect(over.reports.isEmpty)
    }

    @Test func budgetIsSharedAndStaysSpent() {
        let budget = ReadBudget(limit: 100)
        #expect(budget.take(60))
        #expect(!budget.take(41))
        #expect(budget.exceeded)
        #expect(!budget.take(1))   // once over, every later read stops
        let parallel = ReadBudget(limit: 1000)
        DispatchQueue.concurrentPerform(iterations: 2000) { _ in _ = parallel.take(1) }
        #expect(parallel.exceeded)
        #expect(!ReadBudget(limit: 10).take(Int.max))
    }

    @Test func byteCounts() {
        #expect(ReportsFolder.byteCount(512 * 1024 * 1024) == "512 MiB (536870912 bytes)")
        #expect(ReportsFolder.byteCount(1536) == "1.5 KiB (1536 bytes)")
        #expect(ReportsFolder.byteCount(999) == "999 bytes")
    }
}
