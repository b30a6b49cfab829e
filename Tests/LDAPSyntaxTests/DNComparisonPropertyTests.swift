// Property tests for the one DN comparison (DNNormalizer.normalize, DN.comparisonKey), the
// one first-RDN value and the ASCII case comparison, over seeded hostile DNs.

import LDAPSyntax
import Testing
import TestSupport

@Suite("DN comparison")
struct DNComparisonPropertyTests {
    static func randomDN(_ rng: inout SplitMix64) -> DN {
        var rdns: [[DN.AVA]] = []
        for _ in 0..<Int.random(in: 1...4, using: &rng) {
            var rdn: [DN.AVA] = []
            for _ in 0..<(rng.chance(80) ? 1 : 2) {
                rdn.append(DN.AVA(type: rng.pick(Hostile.types), value: Hostile.string(&rng, maxPieces: 5)))
            }
            rdns.append(rdn)
        }
        return DN(rdns: rdns)
    }

    /// What a directory compares: per RDN the set of (type without case, folded value).
    static func reference(_ dn: DN) -> [[String]] {
        dn.rdns.map { rdn in rdn.map { $0.type.lowercased() + "\u{0}" + Folding.fold($0.value) }.sorted() }
    }

    /// Another spelling of the same DN: types and ASCII letters of values in random case,
    /// spaces around separators, `;` for `,`, characters written as `\XX`, AVAs reordered.
    static func respell(_ dn: DN, _ rng: inout SplitMix64) -> String {
        func flipCase(_ s: String) -> String {
            String(decoding: s.utf8.map { b in
                let letter = (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
                return letter && rng.chance(50) ? b ^ 0x20 : b
            }, as: UTF8.self)
        }
        func hexed(_ escaped: String) -> String {
            // Write some plain characters of an escaped value as \XX (every UTF-8 byte);
            // escapes (`\,`, `\0a`) stay as they are.
            var out = ""
            var rest = Substring(escaped).unicodeScalars[...]
            while let scalar = rest.popFirst() {
                if scalar == "\\" {
                    out.unicodeScalars.append(scalar)
                    guard let next = rest.popFirst() else { break }
                    out.unicodeScalars.append(next)
                    if next.properties.isASCIIHexDigit, let second = rest.first, second.properties.isASCIIHexDigit {
                        out.unicodeScalars.append(rest.removeFirst())
                    }
                } else if rng.chance(20) {
                    for b in String(scalar).utf8 { out += "\\" + String(b, radix: 16, uppercase: rng.chance(50)).leftPad(2) }
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
            return out
        }
        func space() -> String { rng.chance(30) ? String(repeating: " ", count: 1 + rng.below(2)) : "" }
        var rdnTexts: [String] = []
        for rdn in dn.rdns {
            var avas = rdn.map { ava in
                space() + flipCase(ava.type) + space() + "=" + space() + hexed(DNEscaping.escapeValue(flipCase(ava.value))) + space()
            }
            if avas.count > 1, rng.chance(50) { avas.reverse() }
            rdnTexts.append(avas.joined(separator: "+"))
        }
        var text = ""
        for (i, r) in rdnTexts.enumerated() {
            if i > 0 { text += rng.chance(20) ? ";" : "," }
            text += r
        }
        return text
    }

    @Test func respellingsCompareEqual() throws {
        var rng = SplitMix64(seed: 0xD0_0001)
        for _ in 0..<10_000 {
            let dn = Self.randomDN(&rng)
            let key = DNNormalizer.normalize(dn.string)
            #expect(dn.comparisonKey == key)
            let other = Self.respell(dn, &rng)
            #expect(DNNormalizer.normalize(other) == key, "\(dn.string.debugDescription) vs \(other.debugDescription)")
            // The strict parser reads the respelling as the same DN.
            #expect(try DN(parsing: other).comparisonKey == key, "\(other.debugDescription)")
        }
    }

    @Test func equalKeysExactlyWhenTheDirectoryWouldMatch() {
        var rng = SplitMix64(seed: 0xD0_0002)
        var equal = 0, different = 0
        for _ in 0..<10_000 {
            let a = Self.randomDN(&rng)
            // b: a with one value changed a little (often only in case), or a fresh DN.
            var b = a
            if rng.chance(90) {
                let r = rng.below(b.rdns.count), v = rng.below(b.rdns[r].count)
                let value = b.rdns[r][v].value
                switch rng.below(4) {
                case 0: b.rdns[r][v].value = value.uppercased()
                case 1: b.rdns[r][v].value = value + rng.pick(Hostile.pieces)
                case 2: b.rdns[r][v].value = String(value.dropLast())
                default: b.rdns[r][v].type = rng.pick(Hostile.types)
                }
            } else {
                b = Self.randomDN(&rng)
            }
            let same = Self.reference(a) == Self.reference(b)
            #expect((DNNormalizer.normalize(a.string) == DNNormalizer.normalize(b.string)) == same,
                    "\(a.string.debugDescription) vs \(b.string.debugDescription)")
            if same { equal += 1 } else { different += 1 }
        }
        #expect(equal > 1_000 && different > 1_000)
    }

    @Test func theKeyOfAKeyIsItself() {
        var rng = SplitMix64(seed: 0xD0_0003)
        for _ in 0..<20_000 {
            // Not only DNs: whatever a member attribute may hold.
            let text = rng.chance(50) ? Self.randomDN(&rng).string : Hostile.string(&rng, maxPieces: 12)
            let key = DNNormalizer.normalize(text)
            #expect(DNNormalizer.normalize(key).utf8.elementsEqual(key.utf8), "\(text.debugDescription) -> \(key.debugDescription)")
        }
    }

    /// `DN.firstRDNValue(of:type:)` cuts plain DNs without the parser: it must answer
    /// exactly as parsing does, for plain texts, near-plain ones and broken ones.
    @Test func firstRDNValueOfText() {
        var rng = SplitMix64(seed: 0xD0_0005)
        let pieces = ["uid", "UID", "cn", "1.2.3", "1.", "9", "x-y", "-x", "=", "=", ",", ",", ",", "a", "bob",
                      "b=c", ";", "+", "\\", "\\2C", "#", "#04", "\"", " ", "é", "ou=people", "dc=x", ""]
        for _ in 0..<50_000 {
            var text = ""
            for _ in 0..<(1 + rng.below(8)) { text += rng.pick(pieces) }
            if rng.chance(60) { text = rng.pick(["uid=", "cn=", "UID=", "1.2="]) + text }
            for type in ["uid", "cn", "1.2"] {
                let parsed = (try? DN(parsing: text))?.firstRDNValue(type: type)
                let fast = DN.firstRDNValue(of: text, type: type)
                let same = switch (fast, parsed) {
                case (nil, nil): true
                case let (f?, p?): f.utf8.elementsEqual(p.utf8)
                default: false
                }
                #expect(same, "\(text.debugDescription) type \(type): \(String(describing: fast)) \(String(describing: parsed))")
            }
        }
        // Every byte (and every character of up to two bytes) in the first value and in a
        // later RDN: the plain-byte check agrees with the parser on each.
        for scalar in (0x00...0x7FF).compactMap(Unicode.Scalar.init) {
            for text in ["uid=a\(scalar)b,dc=x", "uid=ab,dc=x\(scalar)y", "uid=\(scalar),dc=x"] {
                let parsed = (try? DN(parsing: text))?.firstRDNValue(type: "uid")
                let fast = DN.firstRDNValue(of: text, type: "uid")
                #expect(fast?.utf8.elementsEqual(parsed?.utf8 ?? "".utf8) ?? (parsed == nil), "\(text.debugDescription)")
                #expect((fast == nil) == (parsed == nil), "\(text.debugDescription)")
            }
        }
        #expect(DN.firstRDNValue(of: "uid=bob,ou=people,dc=x", type: "UID") == "bob")
        #expect(DN.firstRDNValue(of: "uid=bob,ou=people,dc=x", type: "cn") == nil)
        #expect(DN.firstRDNValue(of: "uid=bob,ou=people,", type: "uid") == nil)
        #expect(DN.firstRDNValue(of: "uid=bob,,dc=x", type: "uid") == nil)
        #expect(DN.firstRDNValue(of: "uid=a=b,dc=x", type: "uid") == "a=b")
        #expect(DN.firstRDNValue(of: "uid=,dc=x", type: "uid") == "")
        #expect(DN.firstRDNValue(of: "uid=b\\2Cc,dc=x", type: "uid") == "b,c")
    }

    @Test func firstRDNValue() {
        var rng = SplitMix64(seed: 0xD0_0004)
        for _ in 0..<20_000 {
            let value = Hostile.string(&rng)
            let type = rng.pick(Hostile.types)
            let text = DNEscaping.rdn(type, value) + (rng.chance(50) ? ",ou=people,dc=example" : "")
            #expect(DNNormalizer.firstRDNValue(text).utf8.elementsEqual(value.utf8), "\(text.debugDescription)")
            #expect(DNNormalizer.firstRDNValue(DNNormalizer.normalize(text)) == Folding.fold(value))
            let dn = try? DN(parsing: text)
            #expect(dn?.firstRDNValue(type: type.uppercased())?.utf8.elementsEqual(value.utf8) == true)
            #expect(dn?.firstRDNValue(type: "x-" + type) == nil)
        }
        #expect(DNNormalizer.firstRDNValue("uid=bob,ou=people,dc=x") == "bob")
        #expect(DNNormalizer.firstRDNValue("cn=lab\\,dc\\3Devil,ou=b") == "lab,dc=evil")
        #expect(DNNormalizer.firstRDNValue("cn= spaced ,ou=b") == "spaced")
        #expect(DNNormalizer.firstRDNValue("cn=\\ kept\\ ,ou=b") == " kept ")
        #expect(DNNormalizer.firstRDNValue("no equals sign") == "")
    }

    @Test func knownKeys() {
        #expect(DNNormalizer.normalize("CN=Alice Smith , OU=People;DC=Example") == "cn=alice smith,ou=people,dc=example")
        #expect(DNNormalizer.normalize("cn=a\\2Cb,dc=x") == DNNormalizer.normalize("cn=A\\,B,dc=x"))
        #expect(DNNormalizer.normalize("sn=b+cn=a,dc=x") == DNNormalizer.normalize("cn=a+sn=b,dc=x"))
        #expect(DNNormalizer.normalize("cn=Straße,dc=x") == DNNormalizer.normalize("cn=STRASSE,dc=x"))
        #expect(DNNormalizer.normalize("cn=a=b;dc=x") == DNNormalizer.normalize("cn=a=b, dc=x"))
        #expect(DNNormalizer.normalize("cn=a\\,b,ou=x") != DNNormalizer.normalize("cn=a,b=,ou=x"))
        #expect(DNNormalizer.normalize("cn=a b,ou=x") != DNNormalizer.normalize("cn=ab,ou=x"))
        #expect(DNNormalizer.normalize("cn=a\\ ,ou=x") != DNNormalizer.normalize("cn=a,ou=x"))
        #expect(DNNormalizer.normalize("cn=a\\+b,dc=x") != DNNormalizer.normalize("cn=a+b=,dc=x"))
    }

    @Test func asciiCaseComparison() {
        var rng = SplitMix64(seed: 0xD0_0005)
        for _ in 0..<20_000 {
            let a = Hostile.string(&rng, maxPieces: 4)
            let flipped = String(decoding: a.utf8.map { b in
                ((b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)) && rng.chance(50) ? b ^ 0x20 : b
            }, as: UTF8.self)
            #expect(a.caseInsensitiveEquals(flipped) && flipped.caseInsensitiveEquals(a))
            #expect(a.asciiLowercased == flipped.asciiLowercased)
            let b = Hostile.string(&rng, maxPieces: 4)
            #expect(a.caseInsensitiveEquals(b) == a.asciiLowercased.utf8.elementsEqual(b.asciiLowercased.utf8))
            #expect(!a.asciiLowercased.utf8.contains { $0 >= 0x41 && $0 <= 0x5A })
        }
        #expect("objectGUID".caseInsensitiveEquals("OBJECTguid"))
        #expect(!"É".caseInsensitiveEquals("é") && "É".asciiLowercased == "É")
        #expect(!"member".caseInsensitiveEquals("members"))
    }
}

extension String {
    fileprivate func leftPad(_ width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
