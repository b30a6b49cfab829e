import Testing
@testable import TakeoverCore
import TestSupport

/// The binding record format (PRODUCT.md R10, issue 11 item 9): every local name, DN and
/// stable id round-trips, `:` and newlines included.
@Suite struct RecordFormatTests {
    static let alphabet: [String] = ["a", "Z", "0", ":", "::", "%", "%3A", "%zz", "<", ">", ";", "<ID=", ">;", "<DN>;", "<WAS=", "\n",
                                     "\r\n", "\t", "\u{0}", "\u{7F}", "\u{85}", "\u{1B}[31m", " ", ",", "=", "\\",
                                     "ß", "é", "日本", "🙂", "\u{301}", "takeover-bridge:", "uid=x,dc=y"]

    static func randomString(_ rng: inout SplitMix64, minimum: Int = 1) -> String {
        var s = ""
        for _ in 0..<(minimum + rng.int(8)) { s += rng.pick(alphabet) }
        return s
    }

    @Test func everyValueRoundTrips() throws {
        var rng = SplitMix64(seed: 0x7265_636F_7264)
        for layout in [BindingLayout.standardSchema(base: "ou=b,dc=x"), BindingLayout.projectSchema(base: "ou=b,dc=x")] {
            for _ in 0..<5000 {
                let name = Self.randomString(&rng)
                let dn = Self.randomString(&rng)
                let id: String? = rng.chance(50) ? Self.randomString(&rng) : nil
                let former = (0..<rng.int(3)).map { _ in Self.randomString(&rng) }
                let value = layout.recordValue(localName: name, userDN: dn, stableID: id, formerDNs: former)
                let parsed = try #require(layout.parseRecord(value), "record \(value.debugDescription)")
                #expect(parsed.localName == name, "record \(value.debugDescription)")
                #expect(parsed.userDN == dn, "record \(value.debugDescription)")
                #expect(parsed.stableID == id, "record \(value.debugDescription)")
                #expect(parsed.formerDNs == former, "record \(value.debugDescription)")
                // A record is one line of printable text: no control character survives.
                #expect(!value.unicodeScalars.contains { $0.value < 0x20 && !dn.unicodeScalars.contains($0) })
            }
        }
    }

    @Test func colonInALocalNameNoLongerSplitsTheRecord() throws {
        let layout = BindingLayout.standardSchema(base: "ou=b,dc=x")
        let value = layout.recordValue(localName: "ad:min", userDN: "uid=a,ou=p,dc=x")
        #expect(value == "takeover-bridge:ad%3Amin:uid=a,ou=p,dc=x")
        let parsed = try #require(layout.parseRecord(value))
        #expect(parsed.localName == "ad:min")
        #expect(parsed.userDN == "uid=a,ou=p,dc=x")
    }

    @Test func stableIDIsWrittenLikeAnExtendedDN() throws {
        let layout = BindingLayout.projectSchema(base: "ou=b,dc=x")
        let value = layout.recordValue(localName: "bob", userDN: "uid=bob,ou=p,dc=x",
                                       stableID: "5e0e3d3a-1c2b-4f63-9a7c-0d2f1e3b4a5c")
        #expect(value == "bob:<ID=5e0e3d3a-1c2b-4f63-9a7c-0d2f1e3b4a5c>;uid=bob,ou=p,dc=x")
        #expect(layout.parseRecord(value)?.stableID == "5e0e3d3a-1c2b-4f63-9a7c-0d2f1e3b4a5c")
        #expect(layout.parseRecord(value)?.userDN == "uid=bob,ou=p,dc=x")
    }

    @Test func recordsOfEarlierVersionsReadUnchanged() throws {
        let layout = BindingLayout.standardSchema(base: "ou=b,dc=x")
        let parsed = try #require(layout.parseRecord("takeover-bridge:Alice:uid=alice,ou=p,dc=x"))
        #expect(parsed.localName == "Alice")
        #expect(parsed.userDN == "uid=alice,ou=p,dc=x")
        #expect(parsed.stableID == nil)
        #expect(layout.parseRecord("takeover-bridge:bob:<ID=x") == nil)
        #expect(layout.parseRecord("takeover-bridge:bob:<ID=x>;") == nil)
    }
}
