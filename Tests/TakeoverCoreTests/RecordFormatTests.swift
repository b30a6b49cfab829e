import Testing
@testable import TakeoverCore
import TestSupport

/// The binding record format (docs/product.md R10, issue 11 item 9): every local name, DN and
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

    /// Values as written, and read back: the standard schema's prefix, a `:` in a local name
    /// escaped so it no longer splits the record, a stable id written like an extended DN.
    @Test(arguments: [
        (true, "Alice", "uid=alice,ou=p,dc=x", nil, "takeover-bridge:Alice:uid=alice,ou=p,dc=x"),
        (true, "ad:min", "uid=a,ou=p,dc=x", nil, "takeover-bridge:ad%3Amin:uid=a,ou=p,dc=x"),
        (false, "bob", "uid=bob,ou=p,dc=x", "5e0e3d3a-1c2b-4f63-9a7c-0d2f1e3b4a5c",
         "bob:<ID=5e0e3d3a-1c2b-4f63-9a7c-0d2f1e3b4a5c>;uid=bob,ou=p,dc=x"),
    ] as [(Bool, String, String, String?, String)])
    func writtenAndReadBack(standard: Bool, name: String, dn: String, id: String?, expected: String) throws {
        let layout = standard ? BindingLayout.standardSchema(base: "ou=b,dc=x") : .projectSchema(base: "ou=b,dc=x")
        let value = layout.recordValue(localName: name, userDN: dn, stableID: id)
        #expect(value == expected)
        let parsed = try #require(layout.parseRecord(value))
        #expect(parsed.localName == name)
        #expect(parsed.userDN == dn)
        #expect(parsed.stableID == id)
    }

    @Test func otherValuesAreNotRecordsAndGroupsAreEscaped() {
        let std = BindingLayout.standardSchema(base: "ou=b,dc=x")
        #expect(std.parseRecord("Laptop of the design team") == nil)
        #expect(std.parseRecord("takeover-bridge::uid=x") == nil)
        let project = BindingLayout.projectSchema(base: "ou=b,dc=x")
        #expect(project.parseRecord("bob:uid=bob,ou=p,dc=x")?.localName == "bob")
        #expect(project.groupDN(device: "lab,dc=evil") == "cn=lab\\,dc\\=evil,ou=b,dc=x")
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
