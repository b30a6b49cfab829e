import LDAPSyntax
import Testing
@testable import TakeoverCore

@Suite struct FoldingTests {
    @Test(arguments: [
        ("alice", "alice"), ("ALICE", "alice"), ("Alice-1.x_Y", "alice-1.x_y"), ("", ""),
        ("straße", "strasse"), ("STRASSE", "strasse"), ("ẞ", "ss"), ("ς", "σ"), ("Σ", "σ"),
        ("\u{212A}", "k"), ("ﬁ", "fi"), ("İ", "i\u{307}"), ("ı", "ı"), ("ÅNGSTRÖM", "ångström"),
        ("ZOË", "zoë"), ("ſ", "s"), ("Ꭰ", "ꭰ"), ("ꭰ", "ꭰ"),
    ])
    func foldsLikeCaseFoldingTxt(input: String, expected: String) {
        #expect(Folding.fold(input) == expected)
    }

    @Test(arguments: [
        ("Alice", "alice", true), ("alice", "alice", true), ("alic", "alice", false), ("alicee", "alice", false),
        ("ALICF", "alice", false), ("STRASSE", "strasse", true), ("Straße", "strasse", true), ("ZOË", "zoë", true),
        ("zoe\u{308}", "zoë", true), ("", "", true), ("a", "", false),
    ])
    func equalsWithoutAllocating(raw: String, folded: String, expected: Bool) {
        #expect(Folding.equals(raw[...], folded: folded) == expected)
        #expect((Folding.fold(raw) == folded) == expected)
    }

    @Test func foldedEqualityIsCanonical() {
        // Precomposed and decomposed accents are the same name.
        #expect(Folding.fold("Zo\u{EB}") == Folding.fold("zo\u{65}\u{308}"))
        var keys = Set<String>()
        keys.insert(Folding.fold("JOSÉ"))
        #expect(keys.contains(Folding.fold("jose\u{301}")))
    }

    /// Swift 6.3's `<` answers false both ways for a decomposed name that is canonically a
    /// prefix of a precomposed one ("cafe\u{301}" and "caf\u{E9}0"), and wrongly for Hangul
    /// jamo against a precomposed syllable, so sorting by it alone
    /// lost users: the memberUid 'café' (decomposed, as macOS writes it) was not found, and
    /// two spellings of one name were not seen as duplicates (found by ReferencePlanTests).
    @Test func decomposedNamesSortBesidePrecomposedOnes() {
        #expect(stringLess("cafe\u{301}", "caf\u{E9}0"))
        #expect(!stringLess("caf\u{E9}0", "cafe\u{301}"))
        // The jamo \u{1100}\u{1161} are the syllable \u{AC00}: a prefix of \u{AC00}\u{EB}.
        #expect(stringLess("\u{1100}\u{1161}", "\u{AC00}\u{EB}"))
        #expect(!stringLess("\u{AC00}\u{EB}", "\u{1100}\u{1161}"))
        let connected = W.plan(
            users: [W.user("caf\u{E9}0"), W.user("cafe\u{301}")],
            connections: [Connection(device: "pc", member: .name("cafe\u{301}"), sourceDN: W.deviceDN("pc"))],
            reports: [W.report("pc", [])])
        #expect(connected.decision("cafe\u{301}", "pc")?.reason == "invalid-local-name")
        #expect(connected.warning("unknown-member") == nil)
        // Canonically equal spellings are one name: the precomposed memberUid finds the decomposed user.
        let other = W.plan(users: [W.user("caf\u{E9}0"), W.user("cafe\u{301}")],
                           connections: [Connection(device: "pc", member: .name("caf\u{E9}"), sourceDN: W.deviceDN("pc"))],
                           reports: [W.report("pc", [])])
        #expect(other.decision("cafe\u{301}", "pc")?.reason == "invalid-local-name")
        let duplicates = W.plan(users: ["caf\u{E9}", "caf\u{E9}0", "cafe\u{301}"].enumerated().map { i, name in
            DirectoryUser(dn: "uid=u\(i),\(W.people)", username: name)
        })
        #expect(duplicates.conflict("duplicate-username")?.users.count == 2)
    }

    /// Device identity follows LDAP caseIgnoreMatch (checked against OpenLDAP 2.5: `cn=tr\\20`
    /// matches (cn=tr); "a  b" matches (cn=a b); U+00A0 matches a space; a tab does not).
    @Test(arguments: [
        ("trail", "trail"), ("trail ", "trail"), ("  Trail", "trail"), (" a  B ", "a b"),
        ("a\u{A0}b", "a b"), ("x\u{3000}\u{2003}y", "x y"), ("   ", ""), ("", ""),
        ("Kiosk-07", "kiosk-07"), ("MÜNCHEN 1", "münchen 1"),
    ])
    func deviceKeyHandlesInsignificantSpaces(_ pair: (String, String)) {
        #expect(Folding.deviceKey(pair.0) == pair.1)
    }

    @Test func deviceKeyKeepsTabsAndPlainNames() {
        #expect(Folding.deviceKey("t\tab") == "t\tab")
        #expect(Folding.deviceKey("t\tab") != Folding.deviceKey("t ab"))
        #expect(Folding.deviceKey("a b") == "a b")
    }

    @Test func asciiFastPathKeepsLowercaseStringsAsIs() {
        let s = "a-long-lowercase-account-name-beyond-fifteen-bytes"
        #expect(Folding.fold(s) == s)
        #expect(Folding.fold("MiXeD-Case-Name-Longer-Than-Small") == "mixed-case-name-longer-than-small")
    }

    @Test(arguments: [
        ("uid=alice,ou=people,dc=example,dc=com", "UID=Alice, OU=People , DC=example,DC=COM"),
        ("cn=lab\\,dc\\=evil,ou=b", "CN=lab\\2Cdc\\3devil,ou=b"),
        ("cn=Bob's MacBook Pro,ou=b", "cn = bob's macbook pro ,ou=B"),
        ("cn=zoë,ou=b", "cn=zo\\C3\\AB,ou=b"),
        ("cn=trailing\\ ,ou=b", "cn=trailing\\20,ou=b"),
        // What slapd returns for the group of a hostile device name, against what the planner writes.
        ("cn=\\ #Bob's \\\"MacBook\\\"\\+Pro\\;\\ ,ou=b", "cn=\\20#Bob's \\22MacBook\\22\\2BPro\\3B\\20,ou=b"),
        ("cn=lab\\,dc\\=evil,ou=bindings,dc=example,dc=com", "cn=lab\\2Cdc\\3Devil,ou=bindings,dc=example,dc=com"),
    ])
    func dnNormalisationEquates(a: String, b: String) {
        #expect(DNNormalizer.normalize(a) == DNNormalizer.normalize(b))
    }

    @Test func dnNormalisationDistinguishes() {
        #expect(DNNormalizer.normalize("cn=a\\,b,ou=x") != DNNormalizer.normalize("cn=a,b=,ou=x"))
        #expect(DNNormalizer.normalize("cn=a b,ou=x") != DNNormalizer.normalize("cn=ab,ou=x"))
        #expect(DNNormalizer.normalize("cn=a\\ ,ou=x") != DNNormalizer.normalize("cn=a,ou=x"))
    }

    @Test func firstRDNValue() {
        #expect(DNNormalizer.firstRDNValue("uid=bob,ou=people,dc=x") == "bob")
        #expect(DNNormalizer.firstRDNValue("cn=lab\\,dc\\3Devil,ou=b") == "lab,dc=evil")
        #expect(DNNormalizer.firstRDNValue("cn= spaced ,ou=b") == "spaced")
    }

    @Test func isoTime() {
        #expect(UTCTime.iso8601(0) == "1970-01-01T00:00:00Z")
        #expect(UTCTime.iso8601(1_795_939_200) == "2026-11-29T08:00:00Z")
        #expect(UTCTime.iso8601(951_782_400) == "2000-02-29T00:00:00Z")
        #expect(UTCTime.iso8601(-1) == "1969-12-31T23:59:59Z")
        #expect(UTCTime.age(30 * 86_400 + 5) == "30 days")
        #expect(UTCTime.duration(7 * 86_400) == "7 days")
        #expect(UTCTime.duration(90 * 60) == "90 minutes")
    }

    @Test func protectedAccountsOnLinuxAndUnknown() {
        let p = Policy()
        #expect(ProtectedAccounts.reason(for: W.account("root", uid: 0), platform: .linux, policy: p) == "uid 0 below 1000")
        #expect(ProtectedAccounts.reason(for: W.account("nobody", uid: 65534), platform: .linux, policy: p) == "nobody (uid 65534)")
        #expect(ProtectedAccounts.reason(for: W.account("svc", uid: 1500, shell: "/usr/sbin/nologin"), platform: .linux, policy: p) == "login shell /usr/sbin/nologin")
        #expect(ProtectedAccounts.reason(for: W.account("root"), platform: .linux, policy: p) == "the root account")
        #expect(ProtectedAccounts.reason(for: W.person("alice"), platform: .linux, policy: p) == nil)
        #expect(ProtectedAccounts.reason(for: W.account("x", uid: 600), platform: .linux, policy: Policy(minUIDLinux: 500)) == nil)
        var jc = W.person("sys")
        jc.realUser = false
        #expect(ProtectedAccounts.reason(for: jc, platform: .linux, policy: p) == "not a real user (JumpCloud System Insights real_user = false)")
        #expect(ProtectedAccounts.reason(for: W.account("entra", sid: "S-1-12-1-1-2-3-4"), platform: .windows, policy: p) == "Entra ID account (SID S-1-12-1-1-2-3-4)")
        #expect(ProtectedAccounts.reason(for: W.account("x", type: "roaming"), platform: .windows, policy: p) == "Windows account type 'roaming'")
        #expect(ProtectedAccounts.reason(for: W.account("Guest"), platform: .windows, policy: p) == "Windows built-in account 'Guest'")
        // Unknown platform: the union of what the facts allow, with the macOS uid bound.
        #expect(ProtectedAccounts.reason(for: W.account("_x", uid: 700), platform: .unknown, policy: p) != nil)
        #expect(ProtectedAccounts.reason(for: W.account("u", uid: 600), platform: .unknown, policy: p) == nil)
        #expect(ProtectedAccounts.reason(for: W.account("u", uid: 499), platform: .unknown, policy: p) == "uid 499 below 500")
    }
}
