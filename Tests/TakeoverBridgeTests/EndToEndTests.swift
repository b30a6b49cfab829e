// The built binary against a real slapd: apply converges, plan --format ldif is what
// apply writes, R10 after binding, unbinding a group's last member in both layouts, a
// hostile device name, golden reports.

import Foundation
import LDAPTestSupport
import LDAPClient
import LDAPSyntax
import TakeoverCore
import Testing
@testable import TakeoverBridge

@Suite("end to end: the binary against slapd", .enabled(if: bridgeTestsEnabled, "needs TB_TEST_ENV (run scripts/test.sh)"))
struct EndToEndTests {
    /// A small world with no conflicts: three users, two devices, reports for both.
    func cleanWorld(_ layout: Scenario.Layout = .project, name: String? = nil, server: TestDirectory? = nil) throws -> Scenario {
        let s = try Scenario(name, layout: layout, server: server)
        try s.addUsers([("alice", nil), ("bob", "robert"), ("carol", nil)])
        try s.addDevice("mbp-alice", ["alice"])
        try s.addDevice("lab-1", ["bob", "carol"])
        try s.writeReport("mbp-alice", [("Alice", 1001)], fileName: "mbp-alice.csv")
        try s.writeReport("lab-1", [("robert", 1001), ("root", 0)], fileName: "lab-1.csv")
        return s
    }

    @Test func applyThenPlanCheckHasNothingLeft() async throws {
        let s = try cleanWorld()
        let first = try s.bridge(["plan", "--check"])
        #expect(first.status == 2, "\(first.all)")
        let apply = try s.bridge(["apply"])
        #expect(apply.status == 0, "\(apply.all)")
        #expect(apply.stderr.contains("written=2"), "\(apply.stderr)")  // two add-entry changes

        let check = try s.bridge(["plan", "--check", "--format", "json"])
        #expect(check.status == 0, "\(check.all)")
        #expect(check.stdout.contains("\"changes\": 0"), "\(check.stdout)")
        #expect(check.stdout.contains("\"bound\": 3"), "\(check.stdout)")
        let again = try s.bridge(["apply"])
        #expect(again.status == 0)
        #expect(again.stderr.contains("written=0"))

        let groups = try await s.groups()
        #expect(groups.map(\.device) == ["lab-1", "mbp-alice"])
        #expect(groups.first?.members.sorted() == [s.userDN("bob"), s.userDN("carol")])
        #expect(plainRecords(groups.first?.records ?? []) == ["carol:" + s.userDN("carol"), "robert:" + s.userDN("bob")])
        #expect(plainRecords(groups.last?.records ?? []) == ["Alice:" + s.userDN("alice")])
    }

    /// One summary line per run, in logfmt when stderr is not a terminal.
    @Test func exactlyOneSummaryLine() throws {
        let s = try cleanWorld()
        for arguments in [["plan"], ["apply"], ["explain", "alice"], ["doctor"], ["plan", "--format", "nope"]] {
            let result = try s.bridge(arguments)
            let summaries = result.stderr.split(separator: "\n").filter { $0.contains("msg=\"run finished\"") }
            if arguments.last == "nope" {
                #expect(result.status == 64)
                #expect(summaries.isEmpty)
            } else {
                #expect(summaries.count == 1, "\(arguments): \(result.stderr)")
                #expect(summaries.first?.hasPrefix("ts=") == true)
                #expect(summaries.first?.contains("command=\(arguments[0])") == true)
                #expect(summaries.first?.contains("duration_ms=") == true)
            }
        }
    }

    // MARK: Golden reports

    /// Every format against Tests/TakeoverBridgeTests/Golden (times normalised).
    /// TB_RECORD_GOLDEN=1 rewrites the files.
    @Test func planOutputMatchesGoldenFiles() async throws {
        let s = try Scenario("golden")
        try s.addUsers([("alice", nil), ("bob", "robert"), ("carol", nil), ("dave", nil),
                        ("jdoe", "john"), ("jsmith", "john"), ("hannah", nil), ("erin", nil)])
        try s.addDevice("mbp-alice", ["alice"])
        try s.addDevice("lab-1", ["bob", "carol", "dave", "jdoe"])
        try s.addDevice("lnx-dev01", ["hannah"])
        try s.addDevice("mbp-design-02", ["erin"])
        try s.writeReport("mbp-alice", [("Alice", 1001), ("root", 0)], fileName: "mbp-alice.csv")
        try s.writeReport("lab-1", [("robert", 1001), ("root", 0), ("john", 1002)], fileName: "lab-1.csv")
        // hannah's uidNumber is 20006: 'hmurphy' with the same uid is a likely mismatch.
        try s.writeReport("lnx-dev01", [("hmurphy", 20006), ("root", 0)], fileName: "lnx-dev01.csv")
        // First apply: alice and bob bound; then carol leaves lab-1 (unbind) and dave is new.
        let first = try s.bridge(["apply"])
        #expect(first.status == 3, "\(first.all)")
        try s.disconnect("carol", from: "lab-1")
        try s.addDevice("new-pc", ["alice"])
        try s.writeReport("new-pc", [("alice", 1001)], fileName: "new-pc.csv")

        let folder = TestDirectory.packageRoot + "/Tests/TakeoverBridgeTests/Golden"
        let record = ProcessInfo.processInfo.environment["TB_RECORD_GOLDEN"] == "1"
        for (format, file) in [("text", "plan.txt"), ("json", "plan.json"), ("csv", "plan.csv"), ("ldif", "plan.ldif")] {
            let result = try s.bridge(["plan", "--format", format])
            #expect(result.status == 3, "\(format): \(result.all)")
            let actual = EndToEndTests.normalised(result.stdout)
            let path = folder + "/" + file
            if record {
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
                try actual.write(toFile: path, atomically: true, encoding: .utf8)
                continue
            }
            let expected = try String(contentsOfFile: path, encoding: .utf8)
            #expect(actual == expected, "\(format) differs from \(file); rerun with TB_RECORD_GOLDEN=1 after review:\n\(actual)")
        }
        // --output writes the same bytes to a file.
        let out = s.folder + "/report.json"
        let toFile = try s.bridge(["plan", "--format", "json", "--output", out])
        #expect(toFile.status == 3)
        #expect(toFile.stdout.isEmpty)
        let written = try String(contentsOfFile: out, encoding: .utf8)
        #expect(written.contains("\"version\": 1"))
        // Something that is not a regular file is written in place, never replaced: the
        // link still leads to /dev/null, which is still the device (a rename over the
        // path had once made /dev/null a regular file).
        let link = s.folder + "/discard"
        #expect(symlink("/dev/null", link) == 0)
        let discarded = try s.bridge(["plan", "--output", link])
        #expect(discarded.status == 3, "\(discarded.all)")
        var info = stat()
        #expect(lstat(link, &info) == 0 && (info.st_mode & S_IFMT) == S_IFLNK, "the link was replaced")
        #expect(stat("/dev/null", &info) == 0 && (info.st_mode & S_IFMT) == S_IFCHR)
        #expect(try FileManager.default.contentsOfDirectory(atPath: s.folder).allSatisfy { !$0.hasPrefix("discard.tmp-") })
        // A folder is refused by name.
        let folderOut = try s.bridge(["plan", "--output", s.folder])
        #expect(folderOut.status != 0 && folderOut.stderr.contains("it is a folder"), "\(folderOut.all)")
    }

    /// Times (generatedAt, report times) become `<time>`; the users' stable ids in binding
    /// records (entryUUIDs, different on every server) become `<ID=<id>>`.
    static func normalised(_ text: String) -> String {
        var text = text
        var searchFrom = text.startIndex
        while let marker = text.range(of: "<ID=", range: searchFrom..<text.endIndex),
              let close = text[marker.upperBound...].firstIndex(of: ">") {
            text.replaceSubrange(marker.upperBound..<close, with: "<id>")
            searchFrom = text.index(marker.upperBound, offsetBy: 5)
        }
        var out = ""
        var scalars = Array(text.unicodeScalars)[...]
        func isDigit(_ s: Unicode.Scalar?) -> Bool { s.map { $0.value >= 48 && $0.value <= 57 } ?? false }
        while let first = scalars.first {
            // YYYY-MM-DDTHH:MM:SSZ
            if scalars.count >= 20 {
                let c = Array(scalars.prefix(20))
                let digits = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]
                if digits.allSatisfy({ isDigit(c[$0]) }) && c[4] == "-" && c[7] == "-" && c[10] == "T" && c[13] == ":"
                    && c[16] == ":" && c[19] == "Z" {
                    out += "<time>"
                    scalars = scalars.dropFirst(20)
                    continue
                }
            }
            out.unicodeScalars.append(first)
            scalars = scalars.dropFirst()
        }
        return out
    }

    // MARK: plan --format ldif is what apply writes

    /// Two servers loaded alike: apply on one, `plan --format ldif | ldapmodify` (as the
    /// service account) on the other; the bindings subtrees must be equal, round after round.
    @Test func planLDIFAppliedWithLdapmodifyEqualsApply() async throws {
        let other = try TestDirectory.startPrivate()
        defer { try? other.stop() }
        let name = "ldif\(UInt32.random(in: 0...UInt32.max))"
        let a = try cleanWorld(name: name)
        let b = try cleanWorld(name: name, server: other)
        for s in [a, b] {
            try s.addUsers([("dave", nil), ("erin", "Erin")], firstUIDNumber: 30_000)
            try s.addDevice("lab,dc=evil + 'x' = y", ["dave", "erin"])
            try s.writeReport("lab,dc=evil + 'x' = y", [("erin", 1005)], fileName: "evil.csv")
        }

        func round(_ label: String) throws {
            let applied = try a.bridge(["apply"])
            #expect(applied.status == 0, "\(label): \(applied.all)")
            let plan = try b.bridge(["plan", "--format", "ldif"])
            #expect(plan.status == 0 || plan.status == 3, "\(label): \(plan.all)")
            if !plan.stdout.isEmpty {
                let result = try Processes.run("/usr/bin/ldapmodify", ["-x", "-H", other.ldapURI, "-D", other.bindDN,
                                                                     "-y", other.bindPasswordFile], input: plan.stdout)
                #expect(result.status == 0, "\(label): ldapmodify: \(result.stderr)\n\(plan.stdout)")
            }
            // apply's lease entry stays between runs (free); plan's LDIF has none.
            #expect(try EndToEndTests.normalised(withoutRunLease(a.dumpBindings()))
                    == EndToEndTests.normalised(b.dump(b.bindings, server: other)), "\(label)")
            for s in [a, b] {
                let check = try s.bridge(["plan", "--check"])
                #expect(check.status == 0, "\(label): \(check.all)")
            }
        }
        try round("first bindings")
        let evilGroups = try await a.groups().filter { $0.device == "lab,dc=evil + 'x' = y" }
        #expect(evilGroups.count == 1)

        // Changes in every shape: an unbind, a new member of an existing group, a new group.
        for s in [a, b] {
            try s.disconnect("carol", from: "lab-1")
            try s.connect("alice", to: "lab-1")
            try s.writeReport("lab-1", [("robert", 1001), ("root", 0), ("alice", 1003)], fileName: "lab-1.csv")
            try s.addDevice("new-pc", ["bob"])
            try s.writeReport("new-pc", [("robert", 1001)], fileName: "new-pc.csv")
        }
        try round("second round")

        // Everyone leaves a group: it is emptied, not deleted.
        for s in [a, b] {
            try s.disconnect("dave", from: "lab,dc=evil + 'x' = y")
            try s.disconnect("erin", from: "lab,dc=evil + 'x' = y")
        }
        try round("group emptied")
    }

    // MARK: R10

    @Test func fieldsAreFrozenOnceBound() async throws {
        let s = try Scenario()
        try s.addUsers([("frank", "frank")])
        try s.addDevice("ws-1", ["frank"])
        try s.writeReport("ws-1", [("frank", 1001)])
        #expect(try s.bridge(["apply"]).status == 0)
        let bound = try s.dumpBindings()

        // The admin edits the Local User Account field after binding.
        try s.modify(LDIF.line("dn", s.userDN("frank")) + "changetype: modify\nreplace: localUserAccount\nlocalUserAccount: frank2\n-\n\n")
        let plan = try s.bridge(["plan", "--format", "json"])
        #expect(plan.status == 3, "\(plan.all)")
        #expect(plan.stdout.contains("\"kind\": \"changed-after-binding\""), "\(plan.stdout)")
        #expect(plan.stdout.contains("\"changes\": []"), "\(plan.stdout)")
        let apply = try s.bridge(["apply"])
        #expect(apply.status == 3, "\(apply.all)")
        #expect(try s.dumpBindings() == bound, "the binding stays exactly as it was")

        // Restoring the field resolves it.
        try s.modify(LDIF.line("dn", s.userDN("frank")) + "changetype: modify\nreplace: localUserAccount\nlocalUserAccount: FRANK\n-\n\n")
        #expect(try s.bridge(["plan", "--check"]).status == 0)
    }

    // MARK: Emptying a group

    @Test(arguments: [Scenario.Layout.project, .groupOfNames])
    func unbindingTheLastMemberEmptiesTheGroup(layout: Scenario.Layout) async throws {
        let s = try Scenario(layout: layout)
        try s.addUsers([("gina", nil), ("hugo", nil)])
        try s.addDevice("kiosk", ["gina", "hugo"])
        try s.writeReport("kiosk", [("gina", 1001), ("hugo", 1002)])
        #expect(try s.bridge(["apply"]).status == 0)
        try s.modify(LDIF.line("dn", s.deviceDN("kiosk")) + "changetype: modify\nreplace: member\nmember: \(s.devices)\n-\n\n")

        let refused = try s.bridge(["apply"])
        #expect(refused.status == 0, "limits are 100 here: \(refused.all)")
        let groups = try await s.groups()
        #expect(groups.count == 1, "the group stays")
        if layout == .project {
            #expect(groups.first?.members == [])
            #expect(groups.first?.records == [])
        } else {
            #expect(groups.first?.members == [s.bindings], "only the placeholder member is left")
            #expect(groups.first?.records == [])
        }
        #expect(try s.bridge(["plan", "--check"]).status == 0)

        // And it fills again.
        try s.connect("hugo", to: "kiosk")
        #expect(try s.bridge(["apply"]).status == 0)
        let again = try await s.groups()
        #expect(again.first?.members.contains(s.userDN("hugo")) == true)
    }

    /// A groupOfNames binding group made without the placeholder (by a person, say):
    /// removing its last member adds the placeholder in the same modify.
    @Test func lastMemberOfAGroupWithoutPlaceholder() async throws {
        let s = try Scenario(layout: .groupOfNames)
        try s.addUsers([("ivan", nil)])
        try s.addDevice("pc-9", ["ivan"])
        try s.writeReport("pc-9", [("ivan", 1001)])
        let group = s.groupDN("pc-9")
        try s.add(LDIF.line("dn", group) + "objectClass: groupOfNames\ncn: pc-9\n" + LDIF.line("member", s.userDN("ivan"))
            + LDIF.line("description", "takeover-bridge:ivan:" + s.userDN("ivan")) + "\n")
        #expect(try s.bridge(["plan", "--check"]).status == 0, "adopted as bound")
        try s.disconnect("ivan", from: "pc-9")
        let apply = try s.bridge(["apply"])
        #expect(apply.status == 0, "\(apply.all)")
        let groups = try await s.groups()
        #expect(groups.first?.members == [s.bindings])
        #expect(try s.bridge(["plan", "--check"]).status == 0)
    }

    // MARK: Hostile names

    @Test func hostileDeviceNameGetsExactlyOneEscapedGroup() async throws {
        let s = try Scenario()
        let device = "lab,dc=evil + 'x' = y"
        let spaced = "Bob's MacBook Pro"
        try s.addUsers([("kim", nil), ("lee", nil)])
        try s.addDevice(device, ["kim"])
        try s.addDevice(spaced, ["lee"])
        try s.writeReport(device, [("kim", 1001)], fileName: "evil.csv")
        try s.writeReport(spaced, [("lee", 1001)], fileName: "bob.csv")
        for _ in 0..<2 {
            let apply = try s.bridge(["apply"])
            #expect(apply.status == 0, "\(apply.all)")
        }
        let groups = try await s.groups()
        #expect(groups.map(\.device).sorted() == [spaced, device].sorted(), "\(groups)")
        let evil = try #require(groups.first { $0.device == device })
        // The server may spell the escapes its own way (\2C for \,): compare parsed.
        let parsed = try DN(parsing: evil.dn)
        #expect(parsed.rdns.count == 5)
        #expect(parsed.parent.map(\.normalized) == (try DN(parsing: s.bindings)).normalized)
        #expect(parsed.rdns.first?.first?.value == device)
        #expect(evil.members == [s.userDN("kim")])
        let bob = try #require(groups.first { $0.device == spaced })
        #expect(try DN(parsing: bob.dn).rdns.first?.first?.value == spaced)
        // Nothing anywhere else: no entry under a "dc=evil".
        let everything = try s.dump(s.server.base)
        #expect(!everything.lowercased().contains("\ndn: dc=evil"))
        #expect(try s.bridge(["plan", "--check"]).status == 0)
    }

    // MARK: explain

    @Test func explainNamesFactsAndRules() throws {
        let s = try cleanWorld()
        let result = try s.bridge(["explain", "bob", "--device", "lab-1"])
        #expect(result.status == 0, "\(result.all)")
        #expect(result.stdout.contains("bob"))
        #expect(result.stdout.contains("robert"))
        #expect(result.stdout.contains("lab-1"))
        let missing = try s.bridge(["explain"])
        #expect(missing.status == 64)
    }
}
