// One fixture per format and platform, built from docs/device-formats.md's real
// samples and field lists. Every test asserts the exact facts the planner will use.

import Testing
@testable import DeviceReports
import TakeoverCore

@Suite struct OsqueryiTests {
    @Test func linuxArrayFromOsqueryi() throws {
        let r = try parseFixture("linux-osqueryi.json")
        #expect(r.problems.isEmpty)
        #expect(r.warnings.isEmpty)
        #expect(r.reports.count == 1)
        let report = try #require(r.report("linux-osqueryi"))
        #expect(report.platform == .linux)
        #expect(report.reportedAt == fixtureMTime)
        #expect(report.source == "linux-osqueryi.json")
        #expect(report.names == ["root", "daemon", "_apt", "nobody", "paul", "HMurphy"])
        let paul = try #require(report.account("paul"))
        #expect(paul == LocalAccount(name: "paul", uid: 1000, uidSigned: 1000, home: "/home/paul", shell: "/bin/bash",
                                     fullName: "Paul,,,"))
        #expect(report.account("nobody")?.effectiveUID == 65534)
        #expect(report.account("nobody")?.shell == "/usr/sbin/nologin")
        #expect(report.account("root")?.sid == nil)
    }

    @Test func verbatimPrettyPrintedSample() throws {
        let r = try parseFixture("linux-osqueryi-pretty.json")
        #expect(r.problems.isEmpty)
        let report = try #require(r.report("linux-osqueryi-pretty"))
        #expect(report.accounts == [LocalAccount(name: "paul", uid: 1000, uidSigned: 1000, home: "/home/paul",
                                                 shell: "/bin/bash", fullName: "Paul")])
        #expect(report.platform == .linux)
    }

    @Test func macOSUnderscoreAccountsHiddenAndNobodyAtMinusTwo() throws {
        let r = try parseFixture("macos-osqueryi.json")
        #expect(r.problems.isEmpty)
        let report = try #require(r.report("macos-osqueryi"))
        #expect(report.platform == .macos)
        #expect(report.accounts.count == 8)
        let nobody = try #require(report.account("nobody"))
        #expect(nobody.uid == 4_294_967_294)
        #expect(nobody.uidSigned == -2)
        #expect(nobody.effectiveUID == -2)
        #expect(report.account("_mbsetupuser")?.hidden == true)
        #expect(report.account("_jumpcloudserviceaccount")?.hidden == true)
        #expect(report.account("_appleevents")?.hidden == false)
        #expect(report.account("_appleevents")?.uidSigned == 55)
        let alice = try #require(report.account("alice"))
        #expect(alice.uidSigned == 501)
        #expect(alice.home == "/Users/alice")
        #expect(alice.sid == nil, "a GeneratedUID is not a SID")
        // getpwnam failed for this record: only username and is_hidden; the rest are "".
        let ghost = try #require(report.account("ghost"))
        #expect(ghost.uid == nil && ghost.uidSigned == nil && ghost.home == nil && ghost.shell == nil)
    }

    @Test func windowsBuiltInRIDsAndSIDKeyedUID() throws {
        let r = try parseFixture("windows-osqueryi.json")
        #expect(r.problems.isEmpty)
        let report = try #require(r.report("windows-osqueryi"))
        #expect(report.platform == .windows)
        #expect(report.names == ["Administrator", "Guest", "DefaultAccount", "WDAGUtilityAccount", "59898", "jsmith", "SYSTEM"])
        let dom = "S-1-5-21-11711324-753106884-3940322080"
        for (name, rid) in [("Administrator", 500), ("Guest", 501), ("DefaultAccount", 503), ("WDAGUtilityAccount", 504), ("59898", 1001)] {
            let a = try #require(report.account(name))
            #expect(a.uid == Int64(rid))
            #expect(a.sid == "\(dom)-\(rid)")
            #expect(a.accountType == "local")
        }
        // The same RID 1001 on another domain: only the SID tells them apart.
        #expect(report.account("jsmith")?.uid == 1001)
        #expect(report.account("jsmith")?.sid == "S-1-5-21-3623811015-3361044348-30300820-1001")
        #expect(report.account("jsmith")?.accountType == "roaming")
        #expect(report.account("SYSTEM")?.sid == "S-1-5-18")
        #expect(report.account("SYSTEM")?.accountType == "special")
        #expect(report.account("Administrator")?.fullName == "Built-in account for administering the computer/domain")
        #expect(report.account("59898")?.home == "C:\\Users\\59898")
        // A roaming profile whose SID did not resolve has an empty username: skipped, said.
        #expect(r.warnings.count == 1)
        #expect(r.warnings.first?.message.contains("empty username") == true)
        #expect(r.warnings.first?.line == 9)
    }
}

@Suite struct JumpCloudTests {
    @Test func systemInsightsExportWithSeveralSystems() throws {
        let r = try parseFixture("jumpcloud-users.json")
        #expect(r.problems.isEmpty)
        #expect(r.devices == ["5c9e51a13c5146f89bae12d9", "625ee96f52e144993e000015"])
        let mac = try #require(r.report("5c9e51a13c5146f89bae12d9"))
        #expect(mac.platform == .macos)
        #expect(mac.reportedAt == 1_559_590_889, "newest collection_time of the system, 2019-06-03T19:41:29.71Z")
        #expect(mac.names == ["_appleevents", "alice", "root"])
        #expect(mac.account("_appleevents")?.realUser == false)
        #expect(mac.account("alice")?.realUser == true)
        #expect(mac.account("root")?.realUser == false)
        let linux = try #require(r.report("625ee96f52e144993e000015"))
        #expect(linux.platform == .linux)
        #expect(linux.reportedAt == 1_708_528_960)
        #expect(linux.account("hmurphy") == LocalAccount(name: "hmurphy", uid: 1000, uidSigned: 1000, home: "/home/hmurphy",
                                                         shell: "/bin/bash", fullName: "Henry Murphy,,,", realUser: true))
        #expect(linux.account("nobody")?.realUser == false)
    }
}

@Suite struct OsquerydLogTests {
    @Test func snapshotsNewestWinsPerHostAndOtherQueriesSkipped() throws {
        let r = try parseFixture("osqueryd-snapshots.log")
        #expect(r.problems.isEmpty)
        #expect(r.devices == ["mbp-alice.local", "web01"])
        let web = try #require(r.report("web01"))
        #expect(web.names == ["root", "paul", "nobody"])
        #expect(web.reportedAt == 1_708_606_400)
        #expect(web.platform == .linux)
        #expect(web.source == "osqueryd-snapshots.log")
        let mbp = try #require(r.report("mbp-alice.local"))
        #expect(mbp.names == ["root", "alice"])
        #expect(mbp.platform == .macos)
        #expect(mbp.reportedAt == 1_708_528_960)
        #expect(r.warnings.count == 1)
        #expect(r.warnings.first?.message.contains("pack_sample_processes") == true)
        #expect(r.warnings.first?.line == 2)
    }

    @Test func batchDiffResultsFoldedInOrder() throws {
        let r = try parseFixture("osqueryd-batch.log")
        #expect(r.problems.isEmpty)
        let db = try #require(r.report("db01"))
        // bob renamed to robert (removed + added), carol's shell changed (removed + added).
        #expect(db.names == ["root", "robert", "carol"])
        #expect(db.account("carol")?.shell == "/usr/sbin/nologin")
        #expect(db.account("robert")?.uid == 1001)
        #expect(db.reportedAt == 1_589_607_216)
        #expect(db.platform == .linux)
    }

    @Test func eventFormFoldedInOrderWithNumericsAndSnapshotEvents() throws {
        let r = try parseFixture("osqueryd-events.log")
        #expect(r.problems.isEmpty)
        let lab1 = try #require(r.report("lab-01"))
        // jdoe renamed to john: "added" logged before "removed"; temp removed later.
        #expect(lab1.names == ["root", "john"])
        #expect(lab1.reportedAt == 1_700_007_200)
        let lab2 = try #require(r.report("lab-02"))
        // Each snapshot-event run replaces the previous one; numbers with numerics:true.
        #expect(lab2.names == ["root", "new"])
        #expect(lab2.account("new")?.uid == 1000)
        #expect(lab2.reportedAt == 1_700_086_500)
    }

    @Test func differentialLogWithoutBaselineIsAnErrorForThatHostOnly() {
        let text = """
        {"name":"users","hostIdentifier":"h1","unixTime":100,"epoch":0,"counter":7,"diffResults":{"added":[{"username":"eve","uid":"1005"}],"removed":[]}}
        {"name":"users","hostIdentifier":"h2","unixTime":100,"epoch":0,"counter":0,"diffResults":{"added":[{"username":"root","uid":"0","directory":"/root"}],"removed":[]}}
        """
        let r = parseText(text, fileName: "results.log")
        #expect(r.devices == ["h2"])
        #expect(r.problems.count == 1)
        #expect(r.problems.first?.device == "h1")
        #expect(r.problems.first?.message.contains("baseline") == true)
    }

    @Test func epochChangeNeedsANewBaseline() {
        let text = """
        {"name":"users","hostIdentifier":"h1","unixTime":100,"epoch":1,"counter":0,"diffResults":{"added":[{"username":"root","uid":"0"},{"username":"old","uid":"1000"}]}}
        {"name":"users","hostIdentifier":"h1","unixTime":200,"epoch":2,"counter":0,"diffResults":{"added":[{"username":"root","uid":"0"},{"username":"new","uid":"1000"}]}}
        """
        let r = parseText(text, fileName: "results.log")
        #expect(r.problems.isEmpty)
        #expect(r.report("h1")?.names == ["root", "new"])
        #expect(r.report("h1")?.reportedAt == 200)
    }

    @Test func truncatedLastLineDefersEveryHostOfTheFile() {
        let text = """
        {"name":"users","hostIdentifier":"h1","unixTime":100,"counter":0,"snapshot":[{"username":"root","uid":"0"}]}
        {"name":"users","hostIdentifier":"h2","unixTime":100,"counter":0,"snapshot":[{"username":"root","uid":"0"}]}
        {"name":"users","hostIdentifier":"h2","unixTime":160,"counter":1,"snapshot":[{"username":"ro
        """
        let r = parseText(text, fileName: "results.log")
        #expect(r.reports.isEmpty)
        let located = r.problems.filter { $0.line == 3 && $0.device == nil }
        #expect(located.count == 1)
        #expect(located.first?.message.contains("truncated") == true)
        #expect(Set(r.problems.compactMap(\.device)) == ["h1", "h2"])
    }
}

@Suite struct PowerShellTests {
    @Test func windowsPowerShell51ArrayVerbatim() throws {
        let r = try parseFixture("ps51-array.json")
        #expect(r.problems.isEmpty)
        let report = try #require(r.report("ps51-array"))
        #expect(report.platform == .windows)
        #expect(report.reportedAt == fixtureMTime)
        #expect(report.names == ["Administrator", "Guest", "HMurphy"])
        let admin = try #require(report.account("Administrator"))
        #expect(admin.sid == "S-1-5-21-153895498-367353507-3704405138-500")
        #expect(admin.uid == 500)
        #expect(admin.enabled == true)
        #expect(admin.accountType == "local")
        #expect(admin.fullName == "Built-in account for administering the computer/domain")
        #expect(report.account("Guest")?.enabled == false)
        #expect(report.account("Guest")?.uid == 501)
        // AccountDomainSid nested as an object at this depth: SID.Value still read.
        #expect(report.account("HMurphy")?.sid == "S-1-5-21-153895498-367353507-3704405138-1001")
        #expect(report.account("HMurphy")?.fullName == "Henry Murphy")
    }

    @Test func powerShell7IsoDatesAndEnumsAsStrings() throws {
        let r = try parseFixture("ps7-array.json")
        #expect(r.problems.isEmpty)
        let report = try #require(r.report("ps7-array"))
        #expect(report.platform == .windows)
        #expect(report.account("zoe")?.fullName == "Zoë Ünal")
        #expect(report.account("zoe")?.uid == 1002)
        #expect(report.account("zoe")?.accountType == "local")
        #expect(report.account("DefaultAccount")?.uid == 503)
        #expect(report.account("DefaultAccount")?.fullName == "A user account managed by the system.")
    }

    @Test func singleObjectUTF16LEWithBOMAndUTF8WithBOMReadTheSame() throws {
        let utf16 = try parseFixture("ps51-single-utf16le.json")
        let utf8 = try parseFixture("ps-single-utf8bom.json")
        #expect(utf16.problems.isEmpty)
        #expect(utf8.problems.isEmpty)
        let a = try #require(utf16.report("ps51-single-utf16le"))
        let b = try #require(utf8.report("ps-single-utf8bom"))
        #expect(a.accounts == b.accounts)
        #expect(a.platform == .windows)
        #expect(a.accounts == [LocalAccount(name: "jdoe", uid: 1003, uidSigned: 1003,
                                            sid: "S-1-5-21-153895498-367353507-3704405138-1003", fullName: "Jane Doe",
                                            accountType: "local", enabled: true)])
    }

    @Test func computerNameFromInvokeCommandNamesTheDevice() {
        let text = """
        [{"Name":"Administrator","Enabled":true,"SID":{"Value":"S-1-5-21-1-2-3-500"},"PrincipalSource":1,"PSComputerName":"WS-01"},
         {"Name":"Administrator","Enabled":true,"SID":{"Value":"S-1-5-21-4-5-6-500"},"PrincipalSource":1,"PSComputerName":"WS-02"}]
        """
        let r = parseText(text, fileName: "fleet.json")
        #expect(r.problems.isEmpty)
        #expect(r.devices == ["WS-01", "WS-02"])
    }

    @Test func bothDateFormsAreUnderstood() {
        #expect(Timestamps.parse("/Date(1701379505092)/") == 1_701_379_505)
        #expect(Timestamps.parse("\\/Date(1701379505092)\\/") == 1_701_379_505)
        #expect(Timestamps.parse("/Date(1701379505092+0100)/") == 1_701_379_505)
        #expect(Timestamps.parse("2024-02-20T10:11:12.1234567+01:00") == 1_708_420_272)
        #expect(Timestamps.parse("2019-06-03T19:41:29.71Z") == 1_559_590_889)
        #expect(Timestamps.parse("2024-02-21 15:22:40") == 1_708_528_960)
        #expect(Timestamps.parse("2024-02-21") == 1_708_473_600)
        #expect(Timestamps.parse("1708528960") == 1_708_528_960)
        #expect(Timestamps.parse("2024-02-30T00:00:00Z") == nil)
        #expect(Timestamps.parse("yesterday") == nil)
        #expect(Timestamps.parse("/Date(abc)/") == nil)
        // A PowerShell date that is neither form is an error naming the field.
        let r = parseText(#"{"Name":"x","SID":{"Value":"S-1-5-21-1-2-3-1001"},"LastLogon":"last Tuesday"}"#)
        #expect(r.reports.isEmpty)
        #expect(r.problems.first?.message.contains("LastLogon") == true)
    }
}

@Suite struct PasswdTests {
    @Test func getentPasswd() throws {
        let r = try parseFixture("getent-passwd.txt")
        #expect(r.problems.isEmpty)
        let report = try #require(r.report("getent-passwd"))
        #expect(report.platform == .linux)
        #expect(report.reportedAt == fixtureMTime)
        #expect(report.names == ["root", "daemon", "_apt", "nobody", "paul", "hmurphy", "jsmith"])
        #expect(report.account("paul") == LocalAccount(name: "paul", uid: 1000, uidSigned: 1000, home: "/home/paul",
                                                       shell: "/bin/bash", fullName: "Paul"))
        #expect(report.account("hmurphy")?.fullName == "Henry Murphy")
        #expect(report.account("hmurphy")?.shell == nil)
        #expect(report.account("nobody")?.uid == 65534)
    }

    @Test func macOSEtcPasswdWithSignedNobody() throws {
        let r = try parseFixture("macos-passwd")
        #expect(r.problems.isEmpty)
        let report = try #require(r.report("macos-passwd"))
        #expect(report.platform == .macos)
        let nobody = try #require(report.account("nobody"))
        #expect(nobody.uidSigned == -2)
        #expect(nobody.uid == 4_294_967_294)
    }

    @Test func badLineNeverEchoesThePasswordField() {
        let r = parseText("root:x:0:0:root:/root:/bin/bash\nbob:$6$secrethash:1000:1000\n", fileName: "srv.passwd")
        #expect(r.reports.isEmpty)
        #expect(r.problems.count == 1)
        guard let p = r.problems.first else { Issue.record("no problem"); return }
        #expect(p.line == 2)
        #expect(p.device == "srv")
        #expect(p.message.contains("7 colon-separated fields"))
        #expect(!p.reportLine.contains("secrethash"))
    }
}

@Suite struct CSVTests {
    @Test func severalDevicesQuotingAndTimes() throws {
        let r = try parseFixture("inventory.csv")
        #expect(r.problems.isEmpty)
        #expect(r.warnings.isEmpty)
        #expect(r.devices == ["Bob's PC", "kiosk-07", "mbp-alice"])
        let mbp = try #require(r.report("mbp-alice"))
        #expect(mbp.platform == .macos)
        #expect(mbp.reportedAt == 1_708_528_960)
        #expect(mbp.account("alice")?.fullName == "Example, Alice")
        #expect(mbp.account("_mbsetupuser")?.hidden == true)
        #expect(mbp.account("nobody")?.uidSigned == -2)
        let bob = try #require(r.report("Bob's PC"))
        #expect(bob.platform == .windows)
        #expect(bob.reportedAt == 1_708_528_000)
        #expect(bob.account("Administrator")?.fullName == "Built-in \"admin\" account")
        #expect(bob.account("Administrator")?.uid == 500)
        #expect(bob.account("bob")?.fullName == "Bob\r\nSecond line")
        let kiosk = try #require(r.report("kiosk-07"))
        #expect(kiosk.platform == .linux)
        #expect(kiosk.reportedAt == fixtureMTime, "no reported_at: the file's modification time")
    }

    @Test func badRowDefersOnlyItsDevice() {
        let text = "device,username,uid\nd1,root,0\nd2,root,zero\nd3,root,0\n"
        let r = parseText(text, fileName: "inv.csv")
        #expect(r.devices == ["d1", "d3"])
        #expect(r.problems.count == 1)
        #expect(r.problems.first?.device == "d2")
        #expect(r.problems.first?.line == 3)
        #expect(r.problems.first?.reportLine == "inv.csv:3: account \"root\": column 'uid' must be an integer, found \"zero\"")
    }

    @Test func quotedFieldsAreVerbatimUnquotedOnesTrimmed() {
        let text = "device , username,uid\n\"trail \",root,0\n  plain  , root , 0 \n\" lead\",\" x \",\" 7 \"\n"
        let r = parseText(text, fileName: "inv.csv")
        #expect(r.devices == [" lead", "plain", "trail "], "\(r.devices)")
        #expect(r.report("trail ")?.account("root")?.uid == 0)
        #expect(r.report("plain")?.account("root")?.uid == 0)
        #expect(r.report(" lead")?.account(" x ")?.uid == 7, "a quoted name keeps its spaces; a number does not need them")
        #expect(r.problems.isEmpty, "\(r.problems.map(\.reportLine))")
        let blank = parseText("device,username\n\"   \",root\n", fileName: "inv.csv")
        #expect(blank.problems.first?.reportLine == "inv.csv:2: row has an empty 'device': cannot tell which device it belongs to",
                "a quoted device of spaces only is empty")
    }

    @Test func headerMustNameDeviceAndUsername() {
        let r = parseText("host,user\nd1,root\n", fileName: "inv.csv")
        #expect(r.reports.isEmpty)
        #expect(r.problems.first?.line == 1)
        #expect(r.problems.first?.message.contains("'device' and 'username'") == true)
        #expect(r.problems.first?.device == "inv")
    }

    @Test func unterminatedQuoteFailsTheWholeFile() {
        let r = parseText("device,username\nd1,root\nd2,\"root\nd3,root\n", fileName: "inv.csv")
        #expect(r.reports.isEmpty)
        #expect(r.problems.contains { $0.line == 3 && $0.message.contains("never closed") })
        // d2's row is inside the unterminated quote: only d1 is known, and deferred.
        #expect(Set(r.problems.compactMap(\.device)) == ["d1"])
    }
}

@Suite struct CommonRulesTests {
    @Test func nameReportedTwiceIsAWarningAndTheFirstIsKept() {
        let text = """
        [
          {"username":"alice","uid":"1000","directory":"/home/alice"},
          {"username":"Alice","uid":"1001","directory":"/home/Alice"}
        ]
        """
        let r = parseText(text, fileName: "dup.json")
        #expect(r.problems.isEmpty)
        #expect(r.report("dup")?.names == ["alice"])
        #expect(r.report("dup")?.account("alice")?.uid == 1000)
        #expect(r.warnings.count == 1)
        #expect(r.warnings.first?.line == 3)
        #expect(r.warnings.first?.message.contains("first at line 2") == true)
    }

    @Test func nonASCIINamesFoldForDuplicates() {
        let r = parseText(#"[{"username":"ÉLODIE","uid":"1000"},{"username":"élodie","uid":"1001"}]"#)
        #expect(r.report("host")?.names == ["ÉLODIE"])
        #expect(r.warnings.count == 1)
    }

    @Test func hostileFileNamesAreOnlyDeviceNames() {
        let rows = #"[{"username":"root","uid":"0","directory":"/root"}]"#
        for (file, device) in [("kiosk,ou=Users.json", "kiosk,ou=Users"), ("Bob's MacBook Pro.json", "Bob's MacBook Pro"),
                               ("cn=admin\\,dc=x.log", "cn=admin\\,dc=x"), ("*)(uid=*.json", "*)(uid=*"),
                               ("web01.example.com", "web01.example.com"), ("  spaced  .csv", "  spaced  ")] {
            let r = parseText(rows, fileName: file)
            #expect(r.devices == [device], "\(file)")
            #expect(r.reports.first?.source == file)
        }
    }

    @Test func platformInferenceDoesNotTurnDebianIntoAMac() {
        // Debian's _apt account alone must not outweigh /home and nologin.
        let r = parseText("root:x:0:0:root:/root:/bin/bash\n_apt:x:42:65534::/nonexistent:/usr/sbin/nologin\n", fileName: "deb")
        #expect(r.report("deb")?.platform == .linux)
        let u = parseText("device,username\nbox,someone\n", fileName: "x.csv")
        #expect(u.report("box")?.platform == .unknown)
        let forced = parseText("device,username,platform\nbox,someone,macOS\n", fileName: "x.csv")
        #expect(forced.report("box")?.platform == .macos)
    }
}
