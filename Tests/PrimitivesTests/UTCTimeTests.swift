// Property tests for the one civil-time implementation (UTCTime): format and parse agree
// with each other, with Foundation's ISO8601DateFormatter, and with the calendar's rules
// at the edges (leap years, 1970, 2100).

import Foundation
import TakeoverCore
import Testing
import TestSupport

@Suite struct UTCTimeTests {
    /// Years 1 to 9999, the range report times may have.
    static let plausible: ClosedRange<UnixTime> = -62_135_596_800 ... 253_402_300_799

    @Test func formatThenParseIsTheIdentity() {
        var rng = SplitMix64(seed: 0x7157)
        for _ in 0..<20_000 {
            let t = UnixTime.random(in: Self.plausible, using: &rng)
            let text = UTCTime.iso8601(t)
            #expect(UTCTime.parse(text) == t, "\(t) -> \(text)")
            let compact = UTCTime.compact(t)
            #expect(compact == text.filter { $0 != "-" && $0 != ":" }, "\(t)")
        }
    }

    @Test func agreesWithFoundation() {
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = TimeZone(identifier: "UTC")
        var rng = SplitMix64(seed: 0xF0D)
        // 1900-01-01 to 2200-01-01, and a band around the boundaries that matter most.
        let ranges: [ClosedRange<UnixTime>] = [-2_208_988_800 ... 7_258_118_400, -86_400 * 3 ... 86_400 * 3,
                                               4_102_358_400 ... 4_107_542_400]
        for _ in 0..<20_000 {
            let t = UnixTime.random(in: rng.pick(ranges), using: &rng)
            let reference = formatter.string(from: Date(timeIntervalSince1970: TimeInterval(t)))
            #expect(UTCTime.iso8601(t) == reference, "\(t)")
            #expect(formatter.date(from: UTCTime.iso8601(t)).map { UnixTime($0.timeIntervalSince1970) } == t)
        }
    }

    @Test func daysAndDatesAreInverse() {
        var rng = SplitMix64(seed: 0xDA75)
        for _ in 0..<20_000 {
            let days = Int64.random(in: -719_162 ... 2_932_896, using: &rng) // 0001-01-01 ... 9999-12-31
            let d = UTCTime.date(days: days)
            #expect(UTCTime.days(year: d.year, month: d.month, day: d.day) == days)
            #expect((1...12).contains(d.month) && d.day >= 1 && d.day <= UTCTime.daysInMonth(year: d.year, month: d.month))
        }
        // Every date of a few 400-year cycles, in order: each day is the previous one plus one.
        var previous = UTCTime.days(year: 1599, month: 12, day: 31)
        var gaps: [String] = []
        for year: Int64 in 1600...2400 {
            for month: Int64 in 1...12 {
                for day in 1...UTCTime.daysInMonth(year: year, month: month) {
                    let n = UTCTime.days(year: year, month: month, day: day)
                    if n != previous + 1 { gaps.append("\(year)-\(month)-\(day)") }
                    previous = n
                }
            }
        }
        #expect(gaps.isEmpty, "\(gaps.prefix(10))")
        #expect(previous - UTCTime.days(year: 1600, month: 1, day: 1) + 1 == 2 * 146_097 + 366) // two 400-year cycles + 2400
    }

    @Test func leapYears() {
        var wrong: [Int64] = []
        for year: Int64 in 1...9999 {
            let reference = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
            let feb29 = String(format: "%04lld-02-29", year)
            if UTCTime.isLeap(year) != reference || (UTCTime.parse(feb29) != nil) != reference { wrong.append(year) }
        }
        #expect(wrong.isEmpty, "\(wrong.prefix(10))")
        #expect(UTCTime.isLeap(2000) && !UTCTime.isLeap(1900) && !UTCTime.isLeap(2100) && UTCTime.isLeap(2400))
        #expect(UTCTime.parse("2100-02-29") == nil)
        #expect(UTCTime.parse("2100-03-01")! - UTCTime.parse("2100-02-28")! == 86_400)
        #expect(UTCTime.parse("2000-03-01")! - UTCTime.parse("2000-02-28")! == 2 * 86_400)
    }

    @Test func boundaries() {
        #expect(UTCTime.iso8601(0) == "1970-01-01T00:00:00Z")
        #expect(UTCTime.iso8601(-1) == "1969-12-31T23:59:59Z")
        #expect(UTCTime.iso8601(86_399) == "1970-01-01T23:59:59Z")
        #expect(UTCTime.iso8601(4_102_444_799) == "2099-12-31T23:59:59Z")
        #expect(UTCTime.iso8601(4_102_444_800) == "2100-01-01T00:00:00Z")
        #expect(UTCTime.compact(4_102_444_800) == "21000101T000000Z")
        #expect(UTCTime.iso8601(Self.plausible.lowerBound) == "0001-01-01T00:00:00Z")
        #expect(UTCTime.iso8601(Self.plausible.upperBound) == "9999-12-31T23:59:59Z")
        #expect(UTCTime.parse("1970-01-01") == 0)
        #expect(UTCTime.parse("1969-12-31T23:59:59Z") == -1)
        #expect(UTCTime.parse("2100-01-01T00:00:00Z") == 4_102_444_800)
    }

    @Test func spellingsOfOneInstantParseAlike() {
        var rng = SplitMix64(seed: 0x5BE1)
        for _ in 0..<5_000 {
            let t = UnixTime.random(in: 0 ... 4_102_444_800, using: &rng)
            let z = UTCTime.iso8601(t)
            let date = z.prefix(10), time = z.dropFirst(11).dropLast()
            #expect(UTCTime.parse("\(date) \(time)") == t)
            #expect(UTCTime.parse("\(date)t\(time)z") == t)
            #expect(UTCTime.parse("\(date)T\(time).\(rng.below(1_000_000))Z") == t)
            // The same instant written in another zone.
            let offset = Int64(rng.below(14 * 60 + 1)) * 60 * (rng.chance(50) ? 1 : -1)
            let local = UTCTime.iso8601(t + offset)
            let sign = offset < 0 ? "-" : "+", hh = abs(offset) / 3600, mm = abs(offset) % 3600 / 60
            let zone = sign + String(format: "%02lld:%02lld", hh, mm)
            #expect(UTCTime.parse(local.dropLast() + zone) == t, "\(local) \(zone)")
            #expect(UTCTime.parse(local.dropLast() + zone.replacingOccurrences(of: ":", with: "")) == t)
        }
    }

    @Test func rejectsWhatIsNotADate() {
        for text in ["2024-13-01", "2024-00-10", "2024-04-31", "2023-02-29", "2024-02-21T24:00:00Z", "2024-02-21T10:60Z",
                     "2024-02-21T10:00:00+24:00", "2024-02-21T10", "2024-02-21T10:00:00Zjunk", "24-02-21", "2024/02/21",
                     "2024-02-21T10:00:00.Z", "", "T10:00:00Z"] {
            #expect(UTCTime.parse(text) == nil, "\(text)")
        }
    }
}
