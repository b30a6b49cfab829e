import Testing
@testable import LDAPClient

/// Parsing `type;range=low-high` attribute descriptions (AD's ranged retrieval).
@Suite struct RangeOptionTests {
    @Test func parsesRanges() {
        #expect(RangeOption.parse("member") == .plain)
        #expect(RangeOption.parse("userCertificate;binary") == .plain)
        #expect(RangeOption.parse("member;range=0-1499") == .ranged(RangeOption(type: "member", low: 0, high: 1499)))
        #expect(RangeOption.parse("member;range=1500-*") == .ranged(RangeOption(type: "member", low: 1500, high: nil)))
        #expect(RangeOption.parse("Member;RANGE=3000-4499") == .ranged(RangeOption(type: "Member", low: 3000, high: 4499)))
        #expect(RangeOption.parse("description;lang-en;range=0-9")
                == .ranged(RangeOption(type: "description;lang-en", low: 0, high: 9)))
        #expect(RangeOption.request(type: "member", from: 1500) == "member;range=1500-*")
    }

    @Test(arguments: ["member;range=", "member;range=5", "member;range=-5", "member;range=a-b", "member;range=0-x",
                      "member;range=0-1;range=2-3", "member;range=0-9999999999", "member;range=0--1"])
    func refusesMalformedRanges(description: String) {
        guard case .malformed = RangeOption.parse(description) else {
            Issue.record("\(description) parsed as \(RangeOption.parse(description))")
            return
        }
    }
}
