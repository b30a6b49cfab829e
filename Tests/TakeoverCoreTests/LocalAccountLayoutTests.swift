import Testing
import TestSupport
@testable import TakeoverCore

/// `LocalAccount` packs its numbers and flags and keeps Windows facts out of line: every
/// field must read back as written, and equality must be the fields' equality.
@Suite struct LocalAccountLayoutTests {
    @Test func compactLayout() {
        #expect(MemoryLayout<LocalAccount>.stride == 96)
    }

    @Test func everyFieldReadsBackAsWritten() {
        var rng = SplitMix64(seed: 0x10CA1)
        func maybe<T>(_ value: T) -> T? { rng.chance(50) ? value : nil }
        for _ in 0..<5_000 {
            let uid: Int64? = maybe(Int64(bitPattern: rng.next()))
            let uidSigned: Int64? = maybe(rng.chance(50) ? 0 : -2)
            let sid: String? = maybe("S-1-5-21-\(rng.below(1000))")
            let type: String? = maybe(rng.pick(["local", "roaming", "special", ""]))
            let hidden = rng.chance(50)
            let realUser: Bool? = maybe(rng.chance(50))
            let enabled: Bool? = maybe(rng.chance(50))
            var a = LocalAccount(name: "n\(rng.below(5))", uid: uid, uidSigned: uidSigned, sid: sid, home: maybe("/Users/x"),
                                 shell: maybe("/bin/zsh"), fullName: maybe("X Y"), hidden: hidden, accountType: type,
                                 realUser: realUser, enabled: enabled)
            #expect(a.uid == uid && a.uidSigned == uidSigned && a.sid == sid && a.accountType == type)
            #expect(a.hidden == hidden && a.realUser == realUser && a.enabled == enabled)
            #expect(a.effectiveUID == (uidSigned ?? uid))
            // Setting and clearing each field leaves the others alone and compares equal again.
            let before = a
            a.uid = 7; a.uid = uid
            a.uidSigned = 7; a.uidSigned = uidSigned
            a.sid = "S-1"; a.sid = sid
            a.accountType = "x"; a.accountType = type
            a.realUser = !(realUser ?? false); a.realUser = realUser
            a.enabled = nil; a.enabled = enabled
            a.hidden.toggle(); a.hidden.toggle()
            #expect(a == before && a.hashValue == before.hashValue)
            var b = a
            b.uid = (uid ?? 0) &+ 1
            #expect(b != a)
            b = a
            b.enabled = enabled == nil ? false : nil
            #expect(b != a)
            b = a
            b.sid = (sid ?? "") + "1"
            #expect(b != a)
        }
    }
}
