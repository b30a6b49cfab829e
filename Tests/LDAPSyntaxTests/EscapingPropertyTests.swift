import LDAPSyntax
import Testing
import TestSupport

/// Byte equality (String `==` is canonical equivalence, which would hide a changed byte).
func sameBytes(_ a: String, _ b: String) -> Bool { a.utf8.elementsEqual(b.utf8) }

func sameBytes(_ a: DN, _ b: DN) -> Bool {
    a.rdns.count == b.rdns.count && zip(a.rdns, b.rdns).allSatisfy { x, y in
        x.count == y.count && zip(x, y).allSatisfy { sameBytes($0.type, $1.type) && sameBytes($0.value, $1.value) }
    }
}

@Suite("DN escaping and parsing")
struct DNPropertyTests {
    @Test func escapedValuesParseBackToThemselves() throws {
        var rng = SplitMix64(seed: 0x5EED_0001)
        for _ in 0..<20_000 {
            let value = Hostile.string(&rng)
            let escaped = DNEscaping.escapeValue(value)
            let dn = try DN(parsing: "cn=\(escaped),ou=devices,dc=example,dc=org")
            #expect(dn.rdns.count == 4, "\(value.debugDescription) -> \(escaped.debugDescription)")
            #expect(dn.rdns[0].count == 1)
            #expect(dn.rdns[0].first?.type == "cn")
            #expect(sameBytes(dn.rdns[0].first?.value ?? "", value), "\(value.debugDescription) -> \(escaped.debugDescription)")
            #expect(dn.parent?.string == "ou=devices,dc=example,dc=org")
            // No raw separator survives escaping.
            #expect(!containsUnescapedSpecial(escaped), "\(escaped.debugDescription)")
        }
    }

    @Test func wholeDNsRoundTripThroughStringAndNormalized() throws {
        var rng = SplitMix64(seed: 0x5EED_0002)
        for _ in 0..<5_000 {
            var rdns: [[DN.AVA]] = []
            for _ in 0..<Int.random(in: 1...5, using: &rng) {
                var rdn: [DN.AVA] = []
                for _ in 0..<Int.random(in: 1...3, using: &rng) {
                    rdn.append(DN.AVA(type: Hostile.types[Int.random(in: 0..<Hostile.types.count, using: &rng)], value: Hostile.string(&rng)))
                }
                rdns.append(rdn)
            }
            let dn = DN(rdns: rdns)
            let parsed = try DN(parsing: dn.string)
            #expect(sameBytes(parsed, dn), "\(dn.string.debugDescription)")
            // normalized is stable, and equal for respellings of the types.
            let normal = try DN(parsing: dn.normalized)
            #expect(normal.normalized == dn.normalized)
            #expect(normal.comparisonKey == dn.comparisonKey)
            let shouted = DN(rdns: rdns.map { $0.map { DN.AVA(type: $0.type.uppercased(), value: $0.value) } })
            #expect(shouted.normalized == dn.normalized)
            #expect(dn.isWithin(dn.parent ?? dn))
        }
    }

    @Test func arbitraryInputNeverCrashesTheParser() {
        var rng = SplitMix64(seed: 0x5EED_0003)
        var parsedCount = 0
        for _ in 0..<50_000 {
            let text = Hostile.string(&rng, maxPieces: 12)
            if let dn = try? DN(parsing: text) {
                parsedCount += 1
                // Whatever parses re-serialises into something that parses to the same DN.
                let again = try? DN(parsing: dn.string)
                #expect(again.map { sameBytes($0, dn) } == true, "\(text.debugDescription)")
            }
        }
        #expect(parsedCount > 0)
    }

    @Test func knownSpellings() throws {
        let dn = try DN(parsing: "CN=Lab\\, West+SN=x , OU = Devices,dc=example,DC=org")
        #expect(dn.rdns.count == 4)
        #expect(dn.rdns[0] == [DN.AVA(type: "CN", value: "Lab, West"), DN.AVA(type: "SN", value: "x")])
        #expect(dn.normalized == "cn=Lab\\, West+sn=x,ou=Devices,dc=example,dc=org")
        #expect(dn.comparisonKey == "cn=lab\\, west+sn=x,ou=devices,dc=example,dc=org")
        #expect(try DN(parsing: "cn=\\4c\\c3\\a9a,dc=x").rdns[0][0].value == "Léa")
        #expect(try DN(parsing: "cn=\\20lead\\20\\20,dc=x").rdns[0][0].value == " lead  ")
        #expect(try DN(parsing: "cn=trail   ,dc=x").rdns[0][0].value == "trail")
        #expect(try DN(parsing: "cn=#04024869,dc=x").rdns[0][0].value == "Hi") // BER OCTET STRING
        #expect(try DN(parsing: "cn=\\#04024869,dc=x").rdns[0][0].value == "#04024869")
        #expect(try DN(parsing: "").rdns.isEmpty)
        #expect(try DN(parsing: "dc=org").parent == DN(rdns: []))
        #expect(DN(rdns: []).parent == nil)
        #expect(DN(rdns: []).child("cn", "lab,dc=evil").string == "cn=lab\\,dc\\=evil")
        #expect(try DN(parsing: "uid=a,ou=People,dc=Example,dc=org").isWithin(DN(parsing: "ou=people,dc=example,dc=org")))
        #expect(try !DN(parsing: "uid=a,ou=peoplex,dc=example,dc=org").isWithin(DN(parsing: "ou=people,dc=example,dc=org")))
    }

    @Test func malformedDNsAreErrorsWithAPosition() {
        let cases: [(String, Int)] = [
            ("cn", 2), ("=x", 0), ("cn=x,", 5), ("cn=x,,dc=y", 5), ("cn=x\\", 4), ("cn=x\\4", 4),
            ("cn=\\ff\\fe,dc=x", 3), ("cn=#0402", 3), ("cn=#zz", 4), ("1.2.=x", 3), ("c n=x", 2),
        ]
        for (text, offset) in cases {
            do {
                _ = try DN(parsing: text)
                Issue.record("\(text.debugDescription) parsed")
            } catch {
                #expect(error.offset == offset, "\(text.debugDescription): \(error)")
                #expect(error.description.contains("invalid DN"))
            }
        }
    }

    private func containsUnescapedSpecial(_ escaped: String) -> Bool {
        var previousBackslash = false
        for scalar in escaped.unicodeScalars {
            if previousBackslash {
                previousBackslash = false
                continue
            }
            if scalar == "\\" { previousBackslash = true; continue }
            if [",", "+", "\"", ";", "<", ">", "\u{0}"].contains(scalar) { return true }
        }
        return false
    }
}

@Suite("filter escaping")
struct FilterPropertyTests {
    /// Undoes RFC 4515 escaping: `\XX` hex pairs back to bytes.
    func unescape(_ text: String) -> String? {
        var bytes: [UInt8] = []
        let utf8 = Array(text.utf8)
        var index = 0
        while index < utf8.count {
            if utf8[index] == UInt8(ascii: "\\") {
                guard index + 2 < utf8.count, let byte = UInt8(String(decoding: utf8[(index + 1)...(index + 2)], as: UTF8.self), radix: 16) else {
                    return nil
                }
                bytes.append(byte)
                index += 3
            } else {
                bytes.append(utf8[index])
                index += 1
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    @Test func escapedAssertionValuesRoundTripAndHideEverySpecial() {
        var rng = SplitMix64(seed: 0x5EED_0004)
        for _ in 0..<20_000 {
            let value = Hostile.string(&rng)
            let escaped = FilterEscaping.escapeValue(value)
            #expect(unescape(escaped).map { sameBytes($0, value) } == true, "\(value.debugDescription)")
            // After escaping, `*`, `(`, `)` and NUL never appear, and every `\` starts a hex pair.
            #expect(!escaped.unicodeScalars.contains { $0 == "*" || $0 == "(" || $0 == ")" || $0 == "\u{0}" })
            let filter = FilterEscaping.equality("cn", value)
            #expect(filter.utf8.starts(with: "(cn=".utf8) && filter.utf8.last == UInt8(ascii: ")"))
            #expect(balancedParentheses(filter))
        }
    }

    @Test func knownEscapes() {
        #expect(FilterEscaping.escapeValue("*)(uid=*") == "\\2a\\29\\28uid=\\2a")
        #expect(FilterEscaping.escapeValue("back\\slash") == "back\\5cslash")
        #expect(FilterEscaping.escapeValue("nul\u{0}") == "nul\\00")
        #expect(FilterEscaping.equality("cn", "Bob's MacBook Pro") == "(cn=Bob's MacBook Pro)")
    }

    private func balancedParentheses(_ filter: String) -> Bool {
        var depth = 0
        for scalar in filter.unicodeScalars {
            if scalar == "(" { depth += 1 }
            if scalar == ")" { depth -= 1; if depth < 0 { return false } }
        }
        return depth == 0
    }
}
