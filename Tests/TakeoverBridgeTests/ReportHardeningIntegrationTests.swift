// Report hardening end to end: the built binary against a real slapd and a real
// reports folder. Device entries whose names fold equal (R15), a report dated in the future
// (R8), files still being written, the total report volume, R7 evidence from an account
// named like a user who is not connected.

import Foundation
import LDAPTestSupport
import TakeoverCore
import Testing
@testable import TakeoverBridge

@Suite("reports hardening: the binary against slapd", .enabled(if: bridgeTestsEnabled, "needs TB_TEST_ENV (run scripts/test.sh)"))
struct ReportHardeningIntegrationTests {
    @Test func deviceEntriesWhoseNamesFoldEqualAreNeverMerged() throws {
        let s = try Scenario()
        try s.addUsers([("ann", nil), ("bob", nil)])
        // slapd keeps both: its caseIgnoreMatch does not fold ß to ss.
        try s.addDevice("straße", ["ann"])
        try s.addDevice("STRASSE", ["bob"])
        try s.writeReport("strasse", [("ann", 1001), ("bob", 1002)], fileName: "strasse.csv")
        let before = try s.dumpBindings()

        let plan = try s.bridge(["plan", "--format", "json"])
        #expect(plan.status == 0, "\(plan.all)")
        let json = plan.stdout
        #expect(json.contains("\"devices\": 2"), "\(json)")
        #expect(json.contains("\"deferred\": 2"), "\(json)")
        #expect(json.contains("\"takeover\": 0"), "\(json)")
        #expect(json.contains("ambiguous device"), "\(json)")
        #expect(json.contains("reports/strasse.csv") && json.contains("could be any of"), "\(json)")

        let apply = try s.bridge(["apply"])
        #expect(apply.status == 0, "\(apply.all)")
        #expect(apply.stderr.contains("written=0"), "\(apply.stderr)")
        #expect(try s.dumpBindings() == before)
    }

    @Test func twoDeviceEntriesWithTheSameNameAreTwoDevicesAndNothingIsWritten() throws {
        let s = try Scenario()
        try s.addUsers([("ann", nil), ("bob", nil), ("carol", nil)])
        // One entry cn=lab1 (in ou=a under the devices base) connects ann and carol; apply
        // takes both over, so the binding group cn=lab1 holds them.
        let a = "cn=lab1,ou=a," + s.devices, b = "cn=lab1,ou=b," + s.devices
        var ldif = ""
        for ou in ["a", "b"] { ldif += "dn: ou=\(ou),\(s.devices)\nobjectClass: organizationalUnit\nou: \(ou)\n\n" }
        ldif += "dn: \(a)\nobjectClass: groupOfNames\ncn: lab1\nmember: \(s.userDN("ann"))\nmember: \(s.userDN("carol"))\n\n"
        try s.add(ldif)
        try s.writeReport("lab1", [("ann", 20000), ("bob", 20001), ("carol", 20002)], fileName: "lab1.csv")
        let first = try s.bridge(["apply"])
        #expect(first.status == 0, "\(first.all)")
        let bound = try s.dumpBindings()
        #expect(bound.contains(s.userDN("ann")) && bound.contains(s.userDN("carol")), "\(bound)")

        // Then carol is disconnected from it, and a second entry, also cn=lab1 (in ou=b),
        // connects bob. Merged into one device this would take over bob's account and unbind
        // carol; as two devices neither is decided and the group keeps its members.
        try s.modify("dn: \(a)\nchangetype: modify\ndelete: member\nmember: \(s.userDN("carol"))\n-\n\n")
        try s.add("dn: \(b)\nobjectClass: groupOfNames\ncn: lab1\nmember: \(s.userDN("bob"))\n\n")

        let ldifPlan = try s.bridge(["plan", "--format", "ldif"])
        #expect(ldifPlan.status == 0, "\(ldifPlan.all)")
        #expect(!ldifPlan.stdout.contains("dn:") && !ldifPlan.stdout.contains("changetype"), "\(ldifPlan.stdout)")

        let json = try s.bridge(["plan", "--format", "json"])
        #expect(json.status == 0, "\(json.all)")
        for fragment in ["\"devices\": 2", "\"deferred\": 3", "\"takeover\": 0", "\"unbind\": 0", "\"changes\": 0",
                         "ambiguous device (the entry \(b))", "could be any of the 2 device entries \(a) and \(b) (both named 'lab1')",
                         "rename one of the two device entries"] {
            #expect(json.stdout.contains(fragment), "\(fragment): \(json.stdout)")
        }
        #expect(!json.stdout.contains("\"action\": \"unbind\"") && !json.stdout.contains("\"action\": \"takeover\""), "\(json.stdout)")
        let text = try s.bridge(["plan"])
        #expect(text.stdout.contains(a) && text.stdout.contains(b), "\(text.stdout)")

        let apply = try s.bridge(["apply"])
        #expect(apply.status == 0, "\(apply.all)")
        #expect(apply.stderr.contains("written=0"), "\(apply.stderr)")
        #expect(try s.dumpBindings() == bound)

        // Renaming one entry (the fix) makes them two devices with two names again: bob's
        // lab2 is decided on its own, lab1 is decided again (carol unbound).
        try s.server.root("ldapmodrdn", ["-r", b, "cn=lab2"])
        try s.writeReport("lab2", [("bob", 20001)], fileName: "lab2.csv")
        let renamed = try s.bridge(["plan", "--format", "json"])
        #expect(renamed.stdout.contains("\"takeover\": 1") && renamed.stdout.contains("\"unbind\": 1"), "\(renamed.stdout)")
        #expect(!renamed.stdout.contains("ambiguous device"), "\(renamed.stdout)")
    }

    @Test func reportDatedInTheFutureIsNeverUsed() throws {
        let s = try Scenario()
        try s.addUsers([("ann", nil)])
        try s.addDevice("mbp-ann", ["ann"])
        // The real report lists ann (a takeover); a forged one dated 2099 lists only root.
        try s.writeReport("mbp-ann", [("ann", 1001)], fileName: "mbp-ann.csv")
        try s.writeReport("mbp-ann", [("root", 0)], fileName: "forged.csv",
                          reportedAt: 4_070_908_800)   // 2099-01-01T00:00:00Z
        let before = try s.dumpBindings()

        let plan = try s.bridge(["plan", "--format", "json"])
        #expect(plan.status == 0, "\(plan.all)")
        #expect(plan.stdout.contains("\"provision\": 0"), "\(plan.stdout)")
        #expect(plan.stdout.contains("\"deferred\": 1"), "\(plan.stdout)")
        #expect(plan.stdout.contains("reports/forged.csv"), "\(plan.stdout)")
        #expect(plan.stdout.contains("max_clock_skew"), "\(plan.stdout)")
        let apply = try s.bridge(["apply"])
        #expect(apply.stderr.contains("written=0"), "\(apply.all)")
        #expect(try s.dumpBindings() == before)

        // explain shows the plan's view: the forged file is a bad report, not the newest one.
        let explain = try s.bridge(["explain", "ann"])
        #expect(explain.stdout.contains("bad report reports/forged.csv") && explain.stdout.contains("in the future"), "\(explain.all)")
        #expect(!explain.stdout.contains("report: reports/forged.csv"), "\(explain.stdout)")

        // A looser configured skew accepts it; then it is the newest report (a provision).
        s.configOverrides["devices.max_clock_skew"] = "\"4000w\""
        let loose = try s.bridge(["plan", "--format", "json"])
        #expect(loose.stdout.contains("\"deferred\": 0") && loose.stdout.contains("\"provision\": 1"), "\(loose.all)")
    }

    @Test func filesStillBeingWrittenAreNeverRead() throws {
        let s = try Scenario()
        try s.addUsers([("ann", nil)])
        try s.addDevice("srv", ["ann"])
        // A half-written passwd (ann's line not there yet), under the names agents and rsync use.
        let partial = "root:x:0:0:root:/root:/bin/bash\n"
        for name in ["srv.passwd.tmp", "srv.passwd.part", ".srv.passwd.a1B2c3", "srv.passwd~"] {
            try partial.write(toFile: s.reports + "/" + name, atomically: false, encoding: .utf8)
        }
        let waiting = try s.bridge(["plan", "--format", "json"])
        #expect(waiting.stdout.contains("\"reason\": \"no report\""), "\(waiting.all)")
        #expect(waiting.stdout.contains("\"provision\": 0"), "\(waiting.all)")

        // The agent finishes: the whole file is renamed into place.
        let whole = partial + "ann:x:1001:1001:Ann:/home/ann:/bin/bash\n"
        try whole.write(toFile: s.reports + "/srv.passwd.tmp", atomically: false, encoding: .utf8)
        #expect(rename(s.reports + "/srv.passwd.tmp", s.reports + "/srv.passwd") == 0)
        let done = try s.bridge(["plan", "--format", "json"])
        #expect(done.stdout.contains("\"takeover\": 1"), "\(done.all)")
    }

    @Test func reportVolumeOverTheLimitStopsWithExit5() throws {
        let s = try Scenario()
        try s.addUsers([("ann", nil)])
        try s.addDevice("pc", ["ann"])
        for i in 0..<6 { try s.writeReport("pc-\(i)", (0..<4).map { ("user\($0)", 1000 + $0) }, fileName: "pc-\(i).csv") }
        try s.writeReport("pc", [("ann", 1001)], fileName: "pc.csv")
        let before = try s.dumpBindings()
        s.configOverrides["devices.max_reports_size"] = "\"1KiB\""
        for command in [["plan"], ["apply"]] {
            let run = try s.bridge(command)
            #expect(run.status == 5, "\(command): \(run.all)")
            #expect(run.stderr.contains("max_reports_size") && run.stderr.contains("1 KiB (1024 bytes)"), "\(run.stderr)")
            #expect(run.stdout.isEmpty, "\(run.stdout)")
        }
        let doctor = try s.bridge(["doctor"])
        #expect(doctor.status != 0 && doctor.all.contains("max_reports_size"), "\(doctor.all)")
        #expect(try s.dumpBindings() == before)

        s.configOverrides["devices.max_reports_size"] = "\"1MiB\""
        let fits = try s.bridge(["apply"])
        #expect(fits.status == 0, "\(fits.all)")
    }

    @Test func accountNamedLikeAnUnconnectedUserHoldsThePair() throws {
        let s = try Scenario()
        // hmurphy (uidNumber 20000) reported under the name jsmith, a directory user not connected there.
        try s.addUsers([("hmurphy", nil), ("jsmith", nil)])
        try s.addDevice("box", ["hmurphy"])
        try s.writeReport("box", [("jsmith", 20000)], fileName: "box.csv")
        let before = try s.dumpBindings()
        let apply = try s.bridge(["apply"])
        #expect(apply.status == 3, "\(apply.all)")
        #expect(try s.dumpBindings() == before)
        let plan = try s.bridge(["plan"])
        #expect(plan.stdout.contains("likely-mismatch"), "\(plan.stdout)")
        #expect(plan.stdout.contains("not connected to 'box'"), "\(plan.stdout)")
        #expect(plan.stdout.contains("rename it on the device to 'hmurphy'"), "\(plan.stdout)")
    }
}
