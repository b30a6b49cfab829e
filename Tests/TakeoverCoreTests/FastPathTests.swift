import LDAPSyntax
import Testing
import TestSupport
@testable import TakeoverCore

/// The byte-by-byte fast paths of R5, R13 and the record escaping give the answer of the
/// general (scalar, upper-/lower-casing) path they stand in front of.
@Suite struct FastPathTests {
    /// Strings built from the characters the fast paths care about, ASCII and not.
    static func samples(_ alphabet: [String], count: Int, seed: UInt64) -> [String] {
        var rng = SplitMix64(seed: seed)
        return (0..<count).map { _ in
            (0..<rng.below(14)).map { _ in alphabet[rng.below(alphabet.count)] }.joined()
        }
    }

    static let sidPieces = ["S", "s", "-", "1", "5", "21", "12", "50", "0", "4", "+", "a", "\r\n", "ſ", "\u{301}", "\u{660}"]

    @Test(arguments: [
        "S-1-5-21-1-2-3-500", "s-1-5-21-1-2-3-1001", "S-1-5-18", "S-1-12-1-1-2-3-4", "s-1-12-1-x", "S-1-5-21-",
        "S-1-5-21-1-2-3-", "S-1-5-21-1-2-3-+501", "S-1-5-21-1-2-3-abc", "S-1-5-21-99999999999999999999", "", "S",
        "S-1-5-21-1--500--", "\u{405}-1-5-21-1-500", "\u{17F}-1-5-21-1-2-500", "S-1-5-21-\u{301}1-500",
        "S-1-5-21-1-2-3-50\u{660}", "S-1-5-21-1-2-3-500\r\n", "S-1-5-21-1-2-3-\u{FF15}00",
    ])
    func sidKindMatchesGeneral(sid: String) {
        #expect(ProtectedAccounts.sidKind(sid) == ProtectedAccounts.sidKindGeneral(sid), "\(sid.debugDescription)")
    }

    @Test func sidKindMatchesGeneralOnGeneratedSIDs() {
        for prefix in ["S-1-5-21-", "s-1-12-1-", ""] {
            for sid in Self.samples(Self.sidPieces, count: 3000, seed: 13) {
                let s = prefix + sid
                #expect(ProtectedAccounts.sidKind(s) == ProtectedAccounts.sidKindGeneral(s), "\(s.debugDescription)")
            }
        }
    }

    @Test func accountTypeMatchesGeneral() {
        let fixed = ["special", "SPECIAL", "Roaming", "roaming ", "local", "", "speciaL", "spec\u{130}al", "\u{212A}", "ro\u{FF41}ming"]
        let generated = Self.samples(["s", "P", "e", "c", "I", "a", "l", "r", "O", "m", "n", "g", "\u{130}", "\u{212A}"], count: 3000, seed: 5)
        for type in fixed + generated {
            #expect(ProtectedAccounts.isSpecialOrRoaming(type) == ProtectedAccounts.isSpecialOrRoamingGeneral(type),
                    "\(type.debugDescription)")
        }
    }

    @Test func accountNameChecksMatchTheScalarLoops() {
        let pieces = ["a", "Z", "0", ".", "_", "-", "$", " ", "/", "\\", ":", "*", ",", "\t", "\u{7F}", "é", "\u{301}", "\r\n", "\u{85}"]
        for name in Self.samples(pieces, count: 5000, seed: 7) {
            for dollar in [false, true] where AccountNames.allPortable(name, allowDollarAtEnd: dollar) {
                #expect(AccountNames.firstBadScalar(name, allowDollarAtEnd: dollar) == nil, "\(name.debugDescription)")
            }
            if AccountNames.windowsPlain(name) {
                #expect(AccountNames.windowsBadScalar(name) == nil, "\(name.debugDescription)")
            }
        }
        // The fast paths say yes to the usual names, and leave the rest to the loops.
        #expect(AccountNames.allPortable("alice.smith_2-x", allowDollarAtEnd: false))
        #expect(AccountNames.allPortable("build$", allowDollarAtEnd: true))
        #expect(!AccountNames.allPortable("build$", allowDollarAtEnd: false))
        #expect(!AccountNames.allPortable("zoë", allowDollarAtEnd: true))
        #expect(AccountNames.windowsPlain("Jane Doe"))
        #expect(!AccountNames.windowsPlain("a/b"))
        #expect(!AccountNames.windowsPlain("zoë"))
    }

    @Test func recordEscapingOfPrintableASCII() {
        for byte in UInt8(0x20)..<0x7F {
            let text = "a" + String(UnicodeScalar(byte)) + "b"
            let escaped = RecordEscaping.escape(text)
            if [UInt8(ascii: "%"), UInt8(ascii: ":"), UInt8(ascii: ";"), UInt8(ascii: "<"), UInt8(ascii: ">")].contains(byte) {
                #expect(escaped == "a%" + String(byte, radix: 16, uppercase: true) + "b")
            } else {
                #expect(escaped == text)
            }
            #expect(RecordEscaping.unescape(escaped) == text)
        }
        #expect(RecordEscaping.escape("a\u{85}b") == "a%C2%85b")
        #expect(RecordEscaping.escape("zoë") == "zoë")
    }

    /// Scanned while small, hashed past `linearLimit`: a key's values in insertion order either way.
    @Test func multiIndexSmallAndHashed() {
        var rng = SplitMix64(seed: 3)
        for size in [0, 1, 2, MultiIndex<String>.linearLimit, MultiIndex<String>.linearLimit + 1, 40] {
            var index = MultiIndex<String>()
            var expected: [String: [Int]] = [:]
            for value in 0..<size {
                let key = ["a", "b", "c", "d", "\u{E9}", "e\u{301}"][rng.below(6)]
                index.insert(key, value)
                expected[key, default: []].append(value)
            }
            #expect(index.isEmpty == (size == 0))
            for key in ["a", "b", "c", "d", "\u{E9}", "x"] {
                var found: [Int] = []
                index.forEach(key) { found.append($0) }
                // Keys compare as Strings do (canonical equivalence), small or hashed.
                let same = expected.filter { $0.key == key }.values.flatMap { $0 }.sorted()
                #expect(found == same, "\(key) at size \(size)")
            }
        }
    }

    /// R5 reads an account in place and folds its name only when a rule compares it: the
    /// answer is the reference planner's, on every platform, for accounts made of the
    /// facts the rules look at.
    @Test func protectionMatchesTheReferenceRules() {
        var rng = SplitMix64(seed: 21)
        let names = ["root", "ROOT", "nobody", "NoBody", "daemon", "Guest", "administrator", "krbtgt", "\u{17F}ystem",
                     "_spotlight", "alice", "Alice", "kr\u{212A}btgt", "defaultaccount", "WDAGUtilityAccount", "x"]
        let sids: [String?] = [nil, "", "S-1-5-18", "S-1-5-21-1-2-3-500", "s-1-5-21-1-2-3-1001", "S-1-12-1-4-5",
                               "S-1-5-21-1-2-3-502", "\u{17F}-1-5-21-1-2-3-1005"]
        let uids: [Int64?] = [nil, 0, 1, 499, 500, 501, 504, 999, 1000, 1500, 65534, 4_294_967_294, -2]
        let shells: [String?] = [nil, "/bin/bash", "/usr/sbin/nologin", "/bin/false", "C:\\Windows\\system32\\cmd.exe"]
        let types: [String?] = [nil, "local", "Special", "ROAMING", "roaming\u{301}"]
        let policies = [Policy(), Policy(protectedAccounts: ["Alice", "SVC"], minUIDLinux: 500, minUIDMacOS: 400)]
        for _ in 0..<4000 {
            var account = LocalAccount(
                name: names[rng.below(names.count)], uid: uids[rng.below(uids.count)], sid: sids[rng.below(sids.count)],
                shell: shells[rng.below(shells.count)], hidden: rng.below(4) == 0, accountType: types[rng.below(types.count)])
            if rng.below(3) == 0 { account.uidSigned = uids[rng.below(uids.count)] }
            if rng.below(8) == 0 { account.realUser = rng.below(2) == 0 }
            for platform in [Platform.linux, .macos, .windows, .unknown] {
                for policy in policies {
                    let reason = ProtectedAccounts.reason(for: account, platform: platform, policy: policy)
                    #expect((reason != nil) == RefRules.isProtected(account, on: platform, policy: policy),
                            "\(account) on \(platform)")
                }
            }
        }
    }

    /// `permute` puts every element where the order says, whatever the permutation's
    /// cycles (fixed points, one long cycle, random ones), and leaves every string intact.
    @Test func permuteMovesEveryElementWhereTheOrderSays() {
        var rng = SplitMix64(seed: 41)
        for count in [0, 1, 2, 3, 17, 1000] {
            var orders: [[Int32]] = [Array(0..<Int32(count)), Array((0..<Int32(count)).reversed())]
            orders.append(count > 0 ? (0..<Int32(count)).map { ($0 + 1) % Int32(count) } : [])
            for _ in 0..<5 { orders.append(Array(0..<Int32(count)).shuffled(using: &rng)) }
            for order in orders {
                // Long strings: heap storage, so a double free or a lost element would show.
                let original = ContiguousArray((0..<count).map { "element \($0) " + String(repeating: "x", count: 40) })
                var array = original
                permute(&array, by: order)
                #expect(Array(array) == order.map { original[Int($0)] }, "count \(count), order \(order.prefix(8))")
            }
        }
    }
}
