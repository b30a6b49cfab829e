// On the real file system: the state folder (owner, mode, symlinked `runs`, a FIFO or
// symlink at the journal or the lock) and the configuration judged on the file a symlink
// resolves to and every folder above it.

import Foundation
import LDAPTestSupport
import Testing
@testable import TakeoverBridge

#if canImport(Glibc)
import Glibc
#endif

@Suite("the state folder is checked before it is trusted")
struct StateFolderTests {
    func insecure(_ path: String) -> StateError? {
        do {
            _ = try StateDirectory(path: path)
            return nil
        } catch {
            return error
        }
    }

    @Test func ownerAndModeOfTheFolder() throws {
        let dir = try makeTemporaryFolder("tb-state")
        defer { cleanup(dir) }
        #expect(insecure(dir) == nil)
        for mode: mode_t in [0o770, 0o720, 0o707, 0o702, 0o777, 0o1777, 0o1770] {
            chmod(dir, mode)
            let error = insecure(dir)
            #expect(error?.isInsecure == true, "mode \(String(mode, radix: 8))")
            #expect(error?.message.contains("written by its group or others") == true)
        }
        chmod(dir, 0o755)
        #expect(insecure(dir) == nil, "readable by others is fine")
        if geteuid() == 0 {
            chown(dir, nobodyID, nobodyID)
            chmod(dir, 0o700)
            let error = insecure(dir)
            #expect(error?.isInsecure == true)
            #expect(error?.message.contains("owned by uid \(nobodyID)") == true, "\(String(describing: error))")
        }
    }

    @Test func entriesThatAreNotWhatTheyShouldBe() throws {
        try withTemporaryFolders("tb-state", "tb-elsewhere") { (dir, elsewhere) throws in
            var cases: [(String, () throws -> Void)] = [
                ("runs", { _ = symlink(elsewhere, dir + "/runs") }),
                ("runs", { _ = mkdir(dir + "/runs", 0o777); chmod(dir + "/runs", 0o777) }),
                ("runs", { try writeFile(dir + "/runs", "x") }),
                ("runs.jsonl", { _ = mkfifo(dir + "/runs.jsonl", 0o600) }),
                ("runs.jsonl", { _ = symlink(elsewhere + "/journal", dir + "/runs.jsonl") }),
                ("runs.jsonl", { _ = symlink("/dev/null", dir + "/runs.jsonl") }),
                ("runs.jsonl", { try writeFile(dir + "/runs.jsonl", "", mode: 0o666) }),
                ("runs.jsonl", { _ = mkdir(dir + "/runs.jsonl", 0o700) }),
                ("lock", { _ = mkfifo(dir + "/lock", 0o600) }),
                ("lock", { _ = symlink(elsewhere + "/lock", dir + "/lock") }),
            ]
            if geteuid() == 0 {
                cases.append(("runs", { _ = mkdir(dir + "/runs", 0o700); chown(dir + "/runs", nobodyID, nobodyID) }))
                cases.append(("runs.jsonl", { try writeFile(dir + "/runs.jsonl", ""); chown(dir + "/runs.jsonl", nobodyID, nobodyID) }))
            }
            for (name, make) in cases {
                cleanup(dir)
                #expect(mkdir(dir, 0o700) == 0)
                try make()
                let error = insecure(dir)
                #expect(error?.isInsecure == true, "\(name)")
                #expect(error?.path == dir + "/" + name, "\(String(describing: error))")
            }
            #expect(try FileManager.default.contentsOfDirectory(atPath: elsewhere).isEmpty, "nothing written through a link")
        }
    }

    /// Made unsafe after the folder was opened (between the lock and the record): the
    /// record is refused without blocking and nothing goes through the link.
    @Test func recordRefusedWhenTheFolderChangesUnderneath() throws {
        try withTemporaryFolders("tb-state", "tb-elsewhere") { dir, elsewhere in
            let record = RunRecord(startedAt: 1_764_000_000, finishedAt: 1_764_000_001, host: "h", configPath: "c",
                                   applied: [], outcome: "ok")
            // A FIFO with a reader at the journal: opening it would succeed; it is not regular.
            var state = try StateDirectory(path: dir)
            #expect(mkfifo(dir + "/runs.jsonl", 0o600) == 0)
            let reader = open(dir + "/runs.jsonl", O_RDONLY | O_NONBLOCK)
            #expect(reader >= 0)
            #expect(throws: StateError.self) { try state.writeRunRecord(record) }
            var byte: UInt8 = 0
            #expect(read(reader, &byte, 1) <= 0, "nothing written into the FIFO")
            close(reader)
            // A FIFO without a reader: a blocking open would wait forever.
            unlink(dir + "/runs.jsonl")
            state = try StateDirectory(path: dir)
            #expect(mkfifo(dir + "/runs.jsonl", 0o600) == 0)
            let started = Date()
            #expect(throws: StateError.self) { try state.writeRunRecord(record) }
            #expect(Date().timeIntervalSince(started) < 5)
            unlink(dir + "/runs.jsonl")
            // `runs` replaced by a link to another folder.
            state = try StateDirectory(path: dir)
            try? FileManager.default.removeItem(atPath: dir + "/runs")
            #expect(symlink(elsewhere, dir + "/runs") == 0)
            do {
                try state.writeRunRecord(record)
                Issue.record("written through the link")
            } catch let error as StateError {
                #expect(error.isInsecure)
                #expect(error.path == dir + "/runs")
            }
            #expect(try FileManager.default.contentsOfDirectory(atPath: elsewhere).isEmpty)
        }
    }
}

@Suite("the configuration is judged on the file a symlink resolves to")
struct ConfigSymlinkTests {
    func check(_ path: String) -> String? { FileSecurity.checkConfigFile(path) }

    @Test func linkToAFileInAWorldWritableFolder() throws {
        try withTemporaryFolders("tb-safe", "tb-open") { safe, open in
            try writeFile(open + "/config.toml", minimalTOML, mode: 0o644)
            chmod(open, 0o777)
            #expect(symlink(open + "/config.toml", safe + "/config.toml") == 0)
            let problem = check(safe + "/config.toml")
            #expect(problem?.contains("a link to \(open)/config.toml") == true, "\(String(describing: problem))")
            #expect(problem?.contains("\(open), which anyone can write to") == true)
            #expect(throws: ConfigError.self) { try BridgeConfig.load(path: safe + "/config.toml", environment: [:]) }
            // A relative link, and a link to a link.
            #expect(symlink("../\((open as NSString).lastPathComponent)/config.toml", safe + "/relative.toml") == 0)
            #expect(check(safe + "/relative.toml") != nil)
            #expect(symlink(safe + "/config.toml", safe + "/chain.toml") == 0)
            #expect(check(safe + "/chain.toml") != nil)
            // A folder above the folder, not the folder itself.
            chmod(open, 0o755)
            #expect(mkdir(open + "/sub", 0o755) == 0)
            try writeFile(open + "/sub/config.toml", minimalTOML, mode: 0o644)
            #expect(check(open + "/sub/config.toml") == nil)
            chmod(open, 0o757)
            #expect(check(open + "/sub/config.toml")?.contains("\(open), which anyone can write to") == true)
            chmod(open, 0o775)
            #expect(check(open + "/sub/config.toml")?.contains("\(open), which its group can write to") == true)
            chmod(open, 0o1777)
            #expect(check(open + "/sub/config.toml") == nil, "a sticky folder keeps others from replacing it")
        }
    }

    /// The link itself in a folder others can write: they could swap the link.
    @Test func linkInAWorldWritableFolder() throws {
        try withTemporaryFolders("tb-safe", "tb-open") { safe, open in
            try writeFile(safe + "/config.toml", minimalTOML, mode: 0o600)
            #expect(symlink(safe + "/config.toml", open + "/config.toml") == 0)
            chmod(open, 0o777)
            #expect(check(open + "/config.toml")?.contains("\(open), which anyone can write to") == true)
            chmod(open, 0o700)
            #expect(check(open + "/config.toml") == nil)
        }
    }

    @Test func groupWritableConfigsAndForeignFolders() throws {
        let dir = try makeTemporaryFolder("tb-cfg")
        defer { cleanup(dir) }
        try writeFile(dir + "/config.toml", minimalTOML, mode: 0o644)
        #expect(check(dir + "/config.toml") == nil)
        for mode: mode_t in [0o664, 0o620, 0o660, 0o666, 0o646] {
            chmod(dir + "/config.toml", mode)
            #expect(check(dir + "/config.toml")?.contains("writable by") == true, "\(String(mode, radix: 8))")
        }
        chmod(dir + "/config.toml", 0o644)
        if geteuid() == 0 {
            chown(dir, nobodyID, nobodyID)
            #expect(check(dir + "/config.toml")?.contains("owned by uid \(nobodyID)") == true)
            chown(dir, 0, 0)
            // The link's target owned by another user.
            chown(dir + "/config.toml", nobodyID, nobodyID)
            #expect(symlink(dir + "/config.toml", dir + "/link.toml") == 0)
            #expect(check(dir + "/link.toml")?.contains("owned by uid \(nobodyID)") == true)
        }
    }
}
