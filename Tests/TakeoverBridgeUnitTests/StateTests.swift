import Foundation
import LDAPTestSupport
import Testing
import LDAPSyntax
import TakeoverCore
@testable import TakeoverBridge

#if canImport(Glibc)
import Glibc
import TestSupport
#endif

// MARK: - A tiny LDIF change applier (test oracle)

/// Directory content: dn (lowercased) -> attribute (lowercased) -> values (in order added).
typealias FakeDirectory = [String: [String: [String]]]

enum LDIFApplyError: Error, CustomStringConvertible {
    case bad(String)
    var description: String {
        switch self { case .bad(let s): return s }
    }
}

/// Applies `ldapmodify`-style LDIF strictly: adding a present value, deleting an absent
/// one, adding an existing entry or deleting a missing one are errors, as on a server.
func applyLDIF(_ text: String, to directory: inout FakeDirectory) throws {
    // Unfold continuation lines.
    var lines: [String] = []
    for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
        if raw.hasPrefix(" "), !lines.isEmpty, !lines[lines.count - 1].isEmpty {
            lines[lines.count - 1] += raw.dropFirst()
        } else {
            lines.append(String(raw))
        }
    }
    func split(_ line: String) throws -> (String, String) {
        guard let colon = line.firstIndex(of: ":") else { throw LDIFApplyError.bad("no colon: \(line)") }
        if line[colon...].hasPrefix(":: ") {
            let name = String(line[..<colon])
            guard let data = Data(base64Encoded: String(line[line.index(colon, offsetBy: 3)...])),
                  let value = String(data: data, encoding: .utf8) else { throw LDIFApplyError.bad("base64: \(line)") }
            return (name, value)
        }
        guard line[colon...].hasPrefix(": ") else { throw LDIFApplyError.bad("bad line: \(line)") }
        return (String(line[..<colon]), String(line[line.index(colon, offsetBy: 2)...]))
    }
    var blocks: [[String]] = [[]]
    for line in lines where !line.hasPrefix("#") {
        if line.isEmpty {
            if !(blocks.last?.isEmpty ?? true) { blocks.append([]) }
        } else {
            blocks[blocks.count - 1].append(line)
        }
    }
    for block in blocks where !block.isEmpty {
        let (dnName, dnValue) = try split(block[0])
        guard dnName == "dn" else { throw LDIFApplyError.bad("block without dn: \(block[0])") }
        let dn = dnValue.lowercased()
        guard block.count > 1 else { throw LDIFApplyError.bad("no changetype") }
        let (ct, changetype) = try split(block[1])
        guard ct == "changetype" else { throw LDIFApplyError.bad("no changetype") }
        switch changetype {
        case "add":
            guard directory[dn] == nil else { throw LDIFApplyError.bad("entry exists: \(dn)") }
            var entry: [String: [String]] = [:]
            for line in block.dropFirst(2) {
                let (name, value) = try split(line)
                entry[name.lowercased(), default: []].append(value)
            }
            directory[dn] = entry
        case "delete":
            guard directory.removeValue(forKey: dn) != nil else { throw LDIFApplyError.bad("no entry: \(dn)") }
        case "modify":
            guard var entry = directory[dn] else { throw LDIFApplyError.bad("no entry: \(dn)") }
            var index = 2
            while index < block.count {
                let (verb, attribute) = try split(block[index])
                let attr = attribute.lowercased()
                index += 1
                var values: [String] = []
                while index < block.count, block[index] != "-" {
                    let (name, value) = try split(block[index])
                    guard name.lowercased() == attr else { throw LDIFApplyError.bad("attribute mismatch \(name)") }
                    values.append(value)
                    index += 1
                }
                guard index < block.count else { throw LDIFApplyError.bad("part not closed with -") }
                index += 1
                for value in values {
                    var current = entry[attr] ?? []
                    switch verb {
                    case "add":
                        guard !current.contains(value) else { throw LDIFApplyError.bad("value exists: \(attr)=\(value)") }
                        current.append(value)
                    case "delete":
                        guard let at = current.firstIndex(of: value) else { throw LDIFApplyError.bad("no such value: \(attr)=\(value)") }
                        current.remove(at: at)
                    default:
                        throw LDIFApplyError.bad("verb \(verb)")
                    }
                    entry[attr] = current.isEmpty ? nil : current
                }
            }
            directory[dn] = entry
        default:
            throw LDIFApplyError.bad("changetype \(changetype)")
        }
    }
}

/// Order-insensitive comparison form.
func canonical(_ d: FakeDirectory) -> [String: [String: [String]]] {
    d.mapValues { $0.mapValues { $0.sorted() } }
}

@Suite(.serialized) struct StateTests {
    // MARK: LDIF rendering

    @Test func rendersGroupedModifyAndAddEntryExactly() {
        let group = "cn=mbp-alice,ou=bindings,dc=example,dc=org"
        let alice = "uid=alice,ou=people,dc=example,dc=org"
        let bob = "uid=bob,ou=people,dc=example,dc=org"
        let changes = [
            Change(dn: group, op: .addEntry, attributes: [
                EntryAttribute(name: "objectClass", values: ["top", "takeoverBindingGroup"]),
                EntryAttribute(name: "cn", values: ["mbp-alice"]),
            ]),
            Change(dn: group, op: .addMember, attribute: "member", values: [alice], subject: alice),
            Change(dn: group, op: .addRecord, attribute: "takeoverBoundAccount", values: ["Alice:" + alice], subject: alice),
            Change(dn: group, op: .deleteMember, attribute: "member", values: [bob], subject: bob),
            Change(dn: group, op: .deleteRecord, attribute: "takeoverBoundAccount", values: ["bob:" + bob], subject: bob),
        ]
        let expected = """
        dn: cn=mbp-alice,ou=bindings,dc=example,dc=org
        changetype: add
        objectClass: top
        objectClass: takeoverBindingGroup
        cn: mbp-alice

        dn: cn=mbp-alice,ou=bindings,dc=example,dc=org
        changetype: modify
        add: member
        member: uid=alice,ou=people,dc=example,dc=org
        -
        add: takeoverBoundAccount
        takeoverBoundAccount: Alice:uid=alice,ou=people,dc=example,dc=org
        -

        dn: cn=mbp-alice,ou=bindings,dc=example,dc=org
        changetype: modify
        delete: member
        member: uid=bob,ou=people,dc=example,dc=org
        -
        delete: takeoverBoundAccount
        takeoverBoundAccount: bob:uid=bob,ou=people,dc=example,dc=org
        -


        """
        #expect(ChangeLDIF.render(changes) == expected)
        #expect(ChangeLDIF.operations(changes).map(\.count) == [1, 2, 2])

        let undo = """
        dn: cn=mbp-alice,ou=bindings,dc=example,dc=org
        changetype: modify
        add: takeoverBoundAccount
        takeoverBoundAccount: bob:uid=bob,ou=people,dc=example,dc=org
        -
        add: member
        member: uid=bob,ou=people,dc=example,dc=org
        -

        dn: cn=mbp-alice,ou=bindings,dc=example,dc=org
        changetype: modify
        delete: takeoverBoundAccount
        takeoverBoundAccount: Alice:uid=alice,ou=people,dc=example,dc=org
        -
        delete: member
        member: uid=alice,ou=people,dc=example,dc=org
        -

        dn: cn=mbp-alice,ou=bindings,dc=example,dc=org
        changetype: delete


        """
        #expect(ChangeLDIF.renderInverse(changes) == undo)
        #expect(ChangeLDIF.inverse(changes).last == .deleteEntry(dn: group))
        #expect(ChangeLDIF.render([]) == "")
    }

    @Test func unsafeValuesAreBase64() {
        let dn = "cn=Bob's MacBook Pro\\, Ünïcode,ou=bindings,dc=example,dc=org"
        let text = ChangeLDIF.render([Change(dn: dn, op: .addMember, attribute: "member", values: [" leading"])])
        #expect(text == LDIF.line("dn", dn) + "changetype: modify\nadd: member\nmember:: IGxlYWRpbmc=\n-\n\n")
        #expect(text.hasPrefix("dn:: "))
    }

    /// Property: for random directories and random valid change lists, the rendered LDIF
    /// applies cleanly, matches applying the changes directly, and the inverse restores
    /// the starting directory exactly.
    @Test func inverseRestoresTheDirectory() throws {
        var rng = SplitMix64(seed: 0x7A6B_0000_0000_0001)
        let alphabet: [String] = ["a", "b", "Z", " ", ":", "<", "é", "=", ",", "+", "\\", "'", "漢", "x"]
        func randomValue() -> String {
            let length = Int.random(in: 1...(Int.random(in: 0...9, using: &rng) == 0 ? 120 : 10), using: &rng)
            return (0..<length).map { _ in alphabet.randomElement(using: &rng)! }.joined()
        }
        for iteration in 0..<400 {
            var directory: FakeDirectory = [:]
            var groups: [String] = []
            for g in 0..<Int.random(in: 0...3, using: &rng) {
                let dn = "cn=g\(g)-\(randomValue()),ou=bindings,dc=example,dc=org"
                var entry: [String: [String]] = ["objectclass": ["top", "takeoverBindingGroup"], "cn": ["g\(g)"]]
                for _ in 0..<Int.random(in: 0...4, using: &rng) {
                    let v = "uid=\(randomValue()),ou=people"
                    if !(entry["member"] ?? []).contains(v) { entry["member", default: []].append(v) }
                }
                directory[dn.lowercased()] = entry
                groups.append(dn)
            }
            let start = directory
            // Random valid changes, tracked on a working copy.
            var work = directory
            var changes: [Change] = []
            for _ in 0..<Int.random(in: 0...12, using: &rng) {
                let roll = Int.random(in: 0..<10, using: &rng)
                if roll == 0 || groups.isEmpty {
                    let dn = "cn=new\(changes.count)-\(randomValue()),ou=bindings,dc=example,dc=org"
                    guard work[dn.lowercased()] == nil else { continue }
                    let user = "uid=\(randomValue()),ou=people"
                    changes.append(Change(dn: dn, op: .addEntry, attributes: [
                        EntryAttribute(name: "objectClass", values: ["top", "takeoverBindingGroup"]),
                        EntryAttribute(name: "cn", values: ["new"]),
                        EntryAttribute(name: "member", values: [user]),
                    ]))
                    work[dn.lowercased()] = ["objectclass": ["top", "takeoverBindingGroup"], "cn": ["new"], "member": [user]]
                    groups.append(dn)
                    continue
                }
                let dn = groups.randomElement(using: &rng)!
                let members = work[dn.lowercased()]?["member"] ?? []
                if roll < 6 || members.isEmpty {
                    let user = "uid=\(randomValue()),ou=people"
                    guard !members.contains(user) else { continue }
                    let record = "\(randomValue()):\(user)"
                    guard !(work[dn.lowercased()]?["takeoverboundaccount"] ?? []).contains(record) else { continue }
                    changes.append(Change(dn: dn, op: .addMember, attribute: "member", values: [user], subject: user))
                    changes.append(Change(dn: dn, op: .addRecord, attribute: "takeoverBoundAccount", values: [record], subject: user))
                    work[dn.lowercased()]?["member", default: []].append(user)
                    work[dn.lowercased()]?["takeoverboundaccount", default: []].append(record)
                } else {
                    let user = members.randomElement(using: &rng)!
                    changes.append(Change(dn: dn, op: .deleteMember, attribute: "member", values: [user], subject: user))
                    var left = members
                    left.removeAll { $0 == user }
                    work[dn.lowercased()]?["member"] = left.isEmpty ? nil : left
                }
            }
            var applied = start
            try applyLDIF(ChangeLDIF.render(changes), to: &applied)
            #expect(canonical(applied) == canonical(work), "iteration \(iteration): LDIF differs from the changes")
            try applyLDIF(ChangeLDIF.renderInverse(changes), to: &applied)
            #expect(canonical(applied) == canonical(start), "iteration \(iteration): undo did not restore")
        }
    }

    // MARK: Lock

    @Test func secondLockIsRefusedAtOnceAndReleasedByReleaseOrDeinit() throws {
        let dir = try makeTemporaryFolder()
        defer { cleanup(dir) }
        let state = try StateDirectory(path: dir + "/state/nested")
        var st = stat()
        #expect(stat(dir + "/state/nested", &st) == 0)
        #expect(st.st_mode & 0o777 == 0o700)
        let lock = try state.acquireLock(now: 1_795_939_200)
        #expect(lock.isHeld)
        // A second open file description of the same file conflicts, even in-process.
        let other = try StateDirectory(path: dir + "/state/nested")
        #expect(throws: LockError.held(pid: getpid(), since: "2026-11-29T08:00:00Z")) { try other.acquireLock() }
        lock.release()
        #expect(!lock.isHeld)
        lock.release()  // idempotent
        do {
            let again = try other.acquireLock()
            #expect(throws: LockError.self) { try state.acquireLock() }
            _ = again
        }
        // `again` went out of scope: deinit released it.
        let third = try state.acquireLock()
        third.release()
        let message = LockError.held(pid: 42, since: "2026-11-29T08:00:00Z").description
        #expect(message == "another takeover-bridge run holds the lock (pid 42, since 2026-11-29T08:00:00Z); try again when it has finished")
    }

    @Test func aLockHeldByAKilledProcessDoesNotBlock() throws {
        let dir = try makeTemporaryFolder()
        defer { cleanup(dir) }
        let state = try StateDirectory(path: dir)
        let holder = try Processes.spawn("/usr/bin/flock", ["--no-fork", state.lockPath, "/bin/sleep", "60"],
                                         captureOutput: false)
        var reaped = false
        defer { if !reaped { holder.kill() } }
        // Wait (with a deadline) until the holder has the lock: our own attempt is refused.
        let deadline = Date().addingTimeInterval(20)
        var refused = false
        while !refused && Date() < deadline {
            do {
                let early = try state.acquireLock()
                early.release()
                usleep(20_000)
            } catch {
                guard case .held = error else {
                    Issue.record("unexpected \(error)")
                    return
                }
                refused = true
            }
        }
        #expect(refused, "flock never took the lock within 20 s")
        holder.kill()
        reaped = true
        let lock = try state.acquireLock()
        #expect(lock.isHeld)
    }

    @Test func refusesAWorldWritableStateDirectory() throws {
        let dir = try makeTemporaryFolder()
        defer { cleanup(dir) }
        chmod(dir, 0o777)
        #expect(throws: StateError.self) { try StateDirectory(path: dir) }
        try writeFile(dir + "/file", "x")
        chmod(dir, 0o700)
        #expect(throws: StateError.self) { try StateDirectory(path: dir + "/file") }
    }

    // MARK: Run records

    @Test func runRecordsAreAppendOnlyWithTheirUndo() throws {
        let dir = try makeTemporaryFolder()
        defer { cleanup(dir) }
        let state = try StateDirectory(path: dir)
        let group = "cn=lnx-dev01,ou=bindings,dc=example,dc=org"
        let sara = "uid=sara,ou=people,dc=example,dc=org"
        let applied = [
            Change(dn: group, op: .addMember, attribute: "member", values: [sara], subject: sara),
            Change(dn: group, op: .addRecord, attribute: "takeoverBoundAccount", values: ["sara:" + sara], subject: sara),
        ]
        let record = RunRecord(startedAt: 1_795_939_200, finishedAt: 1_795_939_203, host: "cron1\nforged: line",
                               configPath: "/etc/takeover-bridge/config.toml", applied: applied,
                               alreadyDone: [Change(dn: group, op: .addMember, attribute: "member", values: ["uid=x"])],
                               failed: [RunRecord.Failure(change: "add uid=y to cn=z", error: "Insufficient access (50)")],
                               outcome: "failed")
        let first = try state.writeRunRecordFiles(record)
        let second = try state.writeRunRecordFiles(record)
        let pid = getpid()
        #expect(first.record == "\(dir)/runs/20261129T080000Z-\(pid).ldif")
        #expect(first.undo == "\(dir)/runs/20261129T080000Z-\(pid)-undo.ldif")
        #expect(second.record == "\(dir)/runs/20261129T080000Z-\(pid)-1.ldif")
        #expect(second.undo == "\(dir)/runs/20261129T080000Z-\(pid)-1-undo.ldif")
        let path = try state.writeRunRecord(record)
        #expect(path == "\(dir)/runs/20261129T080000Z-\(pid)-2.ldif")

        let header = """
        # started:  2026-11-29T08:00:00Z
        # finished: 2026-11-29T08:00:03Z
        # host:     cron1\\xAforged: line
        # config:   /etc/takeover-bridge/config.toml
        # pid:      \(pid)
        # outcome:  failed
        # applied:  2 changes in 1 operations
        # already in place: 1
        # failed:   1
        # record:   \(first.record)
        # undo:     \(first.undo)
        # already in place: add-member cn=lnx-dev01,ou=bindings,dc=example,dc=org uid=x
        # failed: add uid=y to cn=z: Insufficient access (50)

        """
        let recordText = try String(contentsOfFile: first.record, encoding: .utf8)
        #expect(recordText == "# takeover-bridge run record\n" + header + "\n" + ChangeLDIF.render(applied))
        let undoText = try String(contentsOfFile: first.undo, encoding: .utf8)
        #expect(undoText == "# takeover-bridge undo for the run record \(first.record)\n" + header
            + "# Apply with: ldapmodify -f \(first.undo) (plus your bind options)\n\n"
            + "dn: cn=lnx-dev01,ou=bindings,dc=example,dc=org\nchangetype: modify\n"
            + "delete: takeoverBoundAccount\ntakeoverBoundAccount: sara:uid=sara,ou=people,dc=example,dc=org\n-\n"
            + "delete: member\nmember: uid=sara,ou=people,dc=example,dc=org\n-\n\n")
        for file in [first.record, first.undo, state.journalPath] {
            var st = stat()
            #expect(stat(file, &st) == 0)
            #expect(st.st_mode & 0o777 == 0o600, "\(file)")
        }
        // The record applies and the undo restores (oracle directory).
        var directory: FakeDirectory = [group.lowercased(): ["objectclass": ["top", "takeoverBindingGroup"], "cn": ["lnx-dev01"]]]
        let before = directory
        try applyLDIF(recordText, to: &directory)
        #expect(directory[group.lowercased()]?["member"] == [sara])
        try applyLDIF(undoText, to: &directory)
        #expect(canonical(directory) == canonical(before))

        let journal = try String(contentsOfFile: state.journalPath, encoding: .utf8)
        let lines = journal.split(separator: "\n")
        #expect(lines.count == 3)
        #expect(String(lines[0]) == "{\"startedAt\":\"2026-11-29T08:00:00Z\",\"finishedAt\":\"2026-11-29T08:00:03Z\","
            + "\"host\":\"cron1\\nforged: line\",\"config\":\"/etc/takeover-bridge/config.toml\",\"pid\":\(pid),"
            + "\"outcome\":\"failed\",\"applied\":2,\"alreadyDone\":1,\"failed\":1,"
            + "\"record\":\"runs/20261129T080000Z-\(pid).ldif\",\"undo\":\"runs/20261129T080000Z-\(pid)-undo.ldif\"}")
        for line in lines {
            #expect(try JSONSerialization.jsonObject(with: Data(line.utf8)) is [String: Any])
        }
    }

    /// A record drafted while the writes go on (RunRecordDraft) is byte for byte the
    /// record written at the end. It gives way to that record when its header cannot stand
    /// (changes already in place), when it was not handed every applied change, and when
    /// its name was taken meanwhile (what is there is left alone); a draft never completed
    /// leaves nothing in runs/.
    @Test func draftedRunRecordsAreTheOrdinaryOnes() throws {
        let group = "cn=lnx-dev01,ou=bindings,dc=example,dc=org"
        let sara = "uid=sara,ou=people,dc=example,dc=org"
        let bob = "uid=bob,ou=people,dc=example,dc=org"
        let applied = [
            Change(dn: group, op: .addEntry, attributes: [EntryAttribute(name: "objectClass", values: ["top", "takeoverBindingGroup"]),
                                                         EntryAttribute(name: "member", values: [sara])], subject: sara),
            Change(dn: group, op: .addMember, attribute: "member", values: [bob], subject: bob),
            Change(dn: group, op: .addRecord, attribute: "takeoverBoundAccount", values: ["bob:" + bob], subject: bob),
            Change(dn: group, op: .deleteMember, attribute: "member", values: ["uid=gone"], subject: "uid=gone"),
        ]
        func record(finished: UnixTime, alreadyDone: [Change] = []) -> RunRecord {
            RunRecord(startedAt: 1_795_939_200, finishedAt: finished, host: "cron1", configPath: "/etc/takeover-bridge/config.toml",
                      applied: applied, alreadyDone: alreadyDone, outcome: "ok")
        }
        func files(_ dir: String) throws -> [String: String] {
            var out: [String: String] = [:]
            for name in try FileManager.default.contentsOfDirectory(atPath: dir + "/runs") {
                out[name] = try String(contentsOfFile: dir + "/runs/" + name, encoding: .utf8).replacingOccurrences(of: dir, with: "DIR")
            }
            out["runs.jsonl"] = try String(contentsOfFile: dir + "/runs.jsonl", encoding: .utf8).replacingOccurrences(of: dir, with: "DIR")
            return out
        }
        for ending in ["complete", "already in place", "short", "name taken"] {
            let drafted = try makeTemporaryFolder()
            let ordinary = try makeTemporaryFolder()
            defer { cleanup(drafted); cleanup(ordinary) }
            let state = try StateDirectory(path: drafted)
            let draft = try #require(state.draftRunRecord(record(finished: 1_795_939_200)))
            draft.append(Array(applied[0..<2]))
            draft.append(Array(applied[2...].prefix(ending == "short" ? 1 : 2)))
            #expect(try FileManager.default.contentsOfDirectory(atPath: drafted + "/runs").isEmpty)
            if ending == "name taken" { try writeFile(drafted + "/runs/" + draft.recordName, "planted") }
            let final = record(finished: 1_795_939_263, alreadyDone: ending == "already in place" ? [applied[1]] : [])
            let paths = try state.writeRunRecordFiles(final, draft: draft)
            #expect(draft.becameRecord == (ending == "complete"), "\(ending)")
            let expected = try StateDirectory(path: ordinary)
            if ending == "name taken" {
                mkdir(ordinary + "/runs", 0o700)
                try writeFile(ordinary + "/runs/" + draft.recordName, "planted")
            }
            let expectedPaths = try expected.writeRunRecordFiles(final)
            #expect(paths.record.replacingOccurrences(of: drafted, with: "DIR") == expectedPaths.record.replacingOccurrences(of: ordinary, with: "DIR"))
            #expect(try files(drafted) == files(ordinary), "\(ending)")
            var st = stat()
            #expect(stat(paths.record, &st) == 0 && st.st_mode & 0o777 == 0o600)
        }
        // Dropped without completing: nothing named.
        let dir = try makeTemporaryFolder()
        defer { cleanup(dir) }
        let state = try StateDirectory(path: dir)
        var draft = state.draftRunRecord(record(finished: 1_795_939_200))
        #expect(draft != nil)
        draft?.append(applied)
        draft = nil
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir + "/runs").isEmpty)
    }

    @Test func utcTimes() {
        #expect(UTCTime.iso8601(0) == "1970-01-01T00:00:00Z")
        #expect(UTCTime.iso8601(1_795_939_200) == "2026-11-29T08:00:00Z")
        #expect(UTCTime.iso8601(951_782_400) == "2000-02-29T00:00:00Z")
        #expect(UTCTime.iso8601(-1) == "1969-12-31T23:59:59Z")
        #expect(UTCTime.compact(4_102_444_799) == "20991231T235959Z")
        // Against the C library for many instants.
        var rng = SplitMix64(seed: 99)
        for _ in 0..<2000 {
            let t = Int64.random(in: -2_000_000_000...8_000_000_000, using: &rng)
            var tt = time_t(t)
            var tmv = tm()
            gmtime_r(&tt, &tmv)
            let expected = String(format: "%04d-%02d-%02dT%02d:%02d:%02dZ", Int(tmv.tm_year) + 1900, Int(tmv.tm_mon) + 1,
                                  Int(tmv.tm_mday), Int(tmv.tm_hour), Int(tmv.tm_min), Int(tmv.tm_sec))
            #expect(UTCTime.iso8601(t) == expected)
        }
    }
}
