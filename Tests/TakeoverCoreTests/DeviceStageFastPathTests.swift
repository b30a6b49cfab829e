import LDAPSyntax
import Testing
import TestSupport
@testable import TakeoverCore

/// The device stage's fast paths give the answer of the general path they stand in front of.
@Suite struct DeviceStageFastPathTests {
    static func sample(_ rng: inout SplitMix64, _ alphabet: [String], upTo count: Int) -> String {
        (0..<rng.below(count + 1)).map { _ in alphabet[rng.below(alphabet.count)] }.joined()
    }

    /// The record escaping written out scalar by scalar, as the format describes it.
    static func referenceEscape(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            let v = scalar.value
            if v < 0x20 || (0x7F...0x9F).contains(v) || [0x25, 0x3A, 0x3B, 0x3C, 0x3E].contains(v) {
                for byte in String(scalar).utf8 { out += "%" + (byte < 16 ? "0" : "") + String(byte, radix: 16, uppercase: true) }
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// A record of a binding without former DNs, written in one allocation when nothing needs
    /// escaping, is the value the format describes; anything else takes the general path.
    @Test func recordValueMatchesTheFormat() {
        var rng = SplitMix64(seed: 0x5265_636F)
        let plain = ["a", "Z", "0", "-", ".", "_", " ", ",", "=", "\\", "uid=user1,ou=people,dc=x", "5e0e3d3a-1c2b"]
        let other = ["%", ":", ";", "<", ">", "\n", "\u{7F}", "\u{85}", "é", "日本", "e\u{301}", "<DN>;"]
        for layout in [BindingLayout.standardSchema(base: "ou=b,dc=x"), BindingLayout.projectSchema(base: "ou=b,dc=x")] {
            for round in 0..<6000 {
                let alphabet = round % 3 == 0 ? plain + other : plain
                let name = Self.sample(&rng, alphabet, upTo: 6)
                let dn = (rng.below(5) == 0 ? "<" : "") + Self.sample(&rng, alphabet, upTo: 6)
                let id: String? = rng.below(3) == 0 ? nil : Self.sample(&rng, alphabet, upTo: 6)
                var expected = layout.recordPrefix + Self.referenceEscape(name) + ":"
                if let id, !id.isEmpty { expected += "<ID=" + Self.referenceEscape(id) + ">;" }
                if dn.hasPrefix("<") { expected += "<DN>;" }
                expected += dn
                let value = layout.recordValue(localName: name, userDN: dn, stableID: id)
                #expect(value == expected, "\(name.debugDescription) \(dn.debugDescription) \(String(describing: id))")
                #expect(Array(value.utf8) == Array(expected.utf8))
                let needsEscape = Self.referenceEscape(name) != name || Self.referenceEscape(id ?? "") != (id ?? "")
                let fast = layout.plainRecordValue(localName: name, userDN: dn, stableID: id ?? "")
                #expect((fast == nil) == (needsEscape || !(name + (id ?? "")).utf8.allSatisfy { $0 < 0x80 }))
                if let fast { #expect(fast == expected) }
                #expect(RecordEscaping.isPlain(name) == (name.utf8.allSatisfy { $0 < 0x80 } && Self.referenceEscape(name) == name))
            }
        }
    }
}
