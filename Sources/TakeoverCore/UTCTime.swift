// Civil time in UTC, written and read in one place: the planner's messages, the renderers,
// the run records, the lease, the log lines and the report parsers all use these functions.
// Proleptic Gregorian calendar, no Foundation, no libc, no locale.

/// UTC times as text: `2026-11-29T08:00:00Z` (`iso8601`), `20261129T080000Z` (`compact`, for
/// file names), and back (`parse`); coarse and exact durations for messages.
public enum UTCTime {
    /// "2026-11-29T08:00:00Z"
    public static func iso8601(_ t: UnixTime) -> String {
        let c = civil(t)
        return "\(pad(c.year, 4))-\(pad(c.month, 2))-\(pad(c.day, 2))"
            + "T\(pad(c.hour, 2)):\(pad(c.minute, 2)):\(pad(c.second, 2))Z"
    }

    /// "20261129T080000Z" (for file names).
    public static func compact(_ t: UnixTime) -> String {
        let c = civil(t)
        return "\(pad(c.year, 4))\(pad(c.month, 2))\(pad(c.day, 2))"
            + "T\(pad(c.hour, 2))\(pad(c.minute, 2))\(pad(c.second, 2))Z"
    }

    /// The calendar date and the time of day of `t` (seconds since 1970-01-01T00:00:00Z).
    public static func civil(_ t: UnixTime)
        -> (year: Int64, month: Int64, day: Int64, hour: Int64, minute: Int64, second: Int64) {
        let days = floorDiv(t, 86_400)
        let secs = t - days * 86_400
        let (y, m, d) = date(days: days)
        return (y, m, d, secs / 3600, secs % 3600 / 60, secs % 60)
    }

    /// Parses an ISO 8601 / RFC 3339 date or date-time, as report files write them:
    /// `2019-06-03T19:41:29.71Z`, `2024-02-21 15:22:40+01:00`, `2024-02-21T15:22:40.1234567-0500`,
    /// `2024-02-21t15:22z`, `2024-02-21` (midnight). No zone means UTC; fractions of a second
    /// are dropped; a leap second (`:60`) counts as the next second. Nil for anything else,
    /// including dates that do not exist (`2023-02-29`).
    public static func parse(_ b: UnsafeBufferPointer<UInt8>) -> UnixTime? {
        var i = 0
        func digits(_ n: Int) -> Int64? {
            guard i + n <= b.count else { return nil }
            var v: Int64 = 0
            for k in 0..<n {
                let c = b[i + k]
                guard c >= 0x30 && c <= 0x39 else { return nil }
                v = v * 10 + Int64(c - 0x30)
            }
            i += n
            return v
        }
        func expect(_ c: UInt8) -> Bool {
            guard i < b.count, b[i] == c else { return false }
            i += 1
            return true
        }
        let dash = UInt8(ascii: "-"), colon = UInt8(ascii: ":")
        guard let year = digits(4), expect(dash), let month = digits(2), expect(dash), let day = digits(2) else {
            return nil
        }
        guard (1...12).contains(month), day >= 1, day <= daysInMonth(year: year, month: month) else { return nil }
        var seconds = days(year: year, month: month, day: day) * 86_400
        if i == b.count { return seconds }
        guard b[i] == UInt8(ascii: "T") || b[i] == UInt8(ascii: "t") || b[i] == UInt8(ascii: " ") else { return nil }
        i += 1
        guard let hour = digits(2), expect(colon), let minute = digits(2) else { return nil }
        var second: Int64 = 0
        if expect(colon) {
            guard let s = digits(2) else { return nil }
            second = s
        }
        guard hour <= 23, minute <= 59, second <= 60 else { return nil }
        seconds += hour * 3600 + minute * 60 + second
        if expect(UInt8(ascii: ".")) || expect(UInt8(ascii: ",")) {
            let fractionStart = i
            while i < b.count, b[i] >= 0x30 && b[i] <= 0x39 { i += 1 }
            guard i > fractionStart else { return nil }
        }
        if i == b.count { return seconds }
        if expect(UInt8(ascii: "Z")) || expect(UInt8(ascii: "z")) { return i == b.count ? seconds : nil }
        guard i < b.count, b[i] == UInt8(ascii: "+") || b[i] == dash else { return nil }
        let sign: Int64 = b[i] == dash ? -1 : 1
        i += 1
        guard let offsetHours = digits(2) else { return nil }
        _ = expect(colon)
        let offsetMinutes = digits(2) ?? 0
        guard i == b.count, offsetHours <= 23, offsetMinutes <= 59 else { return nil }
        return seconds - sign * (offsetHours * 3600 + offsetMinutes * 60)
    }

    /// `parse` of a string.
    public static func parse(_ text: String) -> UnixTime? {
        var copy = text
        return copy.withUTF8 { parse($0) }
    }

    /// A coarse age for people: "30 days", "5 hours", "12 minutes", "40 seconds".
    public static func age(_ seconds: Int64) -> String {
        let s = max(0, seconds)
        if s >= 2 * 86_400 { return "\(s / 86_400) days" }
        if s >= 2 * 3600 { return "\(s / 3600) hours" }
        if s >= 2 * 60 { return "\(s / 60) minutes" }
        return s == 1 ? "1 second" : "\(s) seconds"
    }

    /// A duration from configuration, exact: "7 days", "36 hours", "90 minutes", "45 seconds".
    public static func duration(_ seconds: Int64) -> String {
        if seconds % 86_400 == 0 { return seconds == 86_400 ? "1 day" : "\(seconds / 86_400) days" }
        if seconds % 3600 == 0 { return seconds == 3600 ? "1 hour" : "\(seconds / 3600) hours" }
        if seconds % 60 == 0 { return seconds == 60 ? "1 minute" : "\(seconds / 60) minutes" }
        return seconds == 1 ? "1 second" : "\(seconds) seconds"
    }

    // MARK: - The calendar (Howard Hinnant's days_from_civil and its inverse)

    public static func isLeap(_ y: Int64) -> Bool { (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 }

    public static func daysInMonth(year: Int64, month: Int64) -> Int64 {
        switch month {
        case 2: return isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date.
    public static func days(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = floorDiv(y, 400)
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// The proleptic Gregorian date `days` after 1970-01-01.
    public static func date(days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = days + 719_468
        let era = floorDiv(z, 146_097)
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }

    private static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
        let q = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
    }

    private static func pad(_ v: Int64, _ width: Int) -> String {
        let s = String(v)
        return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
    }
}
