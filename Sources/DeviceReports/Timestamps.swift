// Time values found in reports -> UnixTime (seconds, UTC). No Foundation formatters:
// JumpCloud's collection_time alone appears once per account row.

import TakeoverCore

enum Timestamps {
    /// Accepts, after trimming spaces:
    /// - Unix seconds: `1708528960` (optionally negative);
    /// - ISO 8601 / RFC 3339 (`UTCTime.parse`): `2019-06-03T19:41:29.71Z`, `2024-02-21 15:22:40+01:00`,
    ///   `2024-02-21T15:22:40.1234567-0500`, `2024-02-21` (midnight); no zone means UTC;
    /// - .NET JSON dates (Windows PowerShell 5.1): `/Date(1701379505092)/`, `\/Date(ms)\/`,
    ///   `/Date(1701379505092+0100)/` (milliseconds since the epoch, UTC).
    /// Fractions of a second are dropped.
    static func parse(_ text: String) -> UnixTime? {
        var copy = text
        return copy.withUTF8 { parse(bytes: $0) }
    }

    static func parse(bytes all: UnsafeBufferPointer<UInt8>) -> UnixTime? {
        var lo = 0, hi = all.count
        while lo < hi, all[lo] == 0x20 || all[lo] == 0x09 { lo += 1 }
        while hi > lo, all[hi - 1] == 0x20 || all[hi - 1] == 0x09 { hi -= 1 }
        guard lo < hi else { return nil }
        let b = UnsafeBufferPointer(rebasing: all[lo..<hi])
        guard let t = parseDotNetDate(b) ?? UTCTime.parse(b) ?? parseInteger(b), plausible.contains(t) else { return nil }
        return t
    }

    /// Report times outside the years 1 to 9999 are not dates but hostile or broken input
    /// (and would overflow "now - reportedAt" in the planner).
    static let plausible: ClosedRange<UnixTime> = -62_135_596_800 ... 253_402_300_799

    /// A decimal integer with an optional sign; nil on anything else or on overflow.
    static func parseInteger<C: Collection>(_ b: C) -> Int64? where C.Element == UInt8 {
        var i = b.startIndex
        var negative = false
        if i < b.endIndex, b[i] == UInt8(ascii: "-") || b[i] == UInt8(ascii: "+") {
            negative = b[i] == UInt8(ascii: "-")
            i = b.index(after: i)
        }
        guard i < b.endIndex else { return nil }
        var value: Int64 = 0
        while i < b.endIndex {
            let c = b[i]
            guard c >= 0x30 && c <= 0x39 else { return nil }
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(Int64(c - 0x30))
            if o1 || o2 { return nil }
            value = a
            i = b.index(after: i)
        }
        return negative ? -value : value
    }

    private static func hasPrefix(_ b: UnsafeBufferPointer<UInt8>, at: Int, _ p: StaticString) -> Bool {
        let n = p.utf8CodeUnitCount
        guard at + n <= b.count else { return false }
        for k in 0..<n where b[at + k] != p.utf8Start[k] { return false }
        return true
    }

    /// `/Date(ms)/`, `\/Date(ms)\/` (the JSON escape kept literally), with an optional +hhmm.
    private static func parseDotNetDate(_ b: UnsafeBufferPointer<UInt8>) -> UnixTime? {
        var lo = 0, hi = b.count
        if hasPrefix(b, at: 0, "\\/Date(") { lo = 7 } else if hasPrefix(b, at: 0, "/Date(") { lo = 6 } else { return nil }
        if hi >= 3, hasPrefix(b, at: hi - 3, ")\\/") { hi -= 3 } else if hi >= 2, hasPrefix(b, at: hi - 2, ")/") { hi -= 2 } else { return nil }
        guard lo < hi else { return nil }
        // An offset suffix (+hhmm / -hhmm) after the milliseconds is informational only.
        if hi - lo > 5, b[hi - 5] == UInt8(ascii: "+") || b[hi - 5] == UInt8(ascii: "-") { hi -= 5 }
        guard let ms = parseInteger(b[lo..<hi]) else { return nil }
        // Floor division, so pre-1970 dates round down like the rest.
        // (Without negating: -ms overflows for the most negative values a hostile file can hold.)
        return ms / 1000 - (ms < 0 && ms % 1000 != 0 ? 1 : 0)
    }
}
