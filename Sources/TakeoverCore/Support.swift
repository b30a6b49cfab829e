// Small pure helpers shared by the planner, the explainer and the renderers.

/// DN comparison: the planner compares member DNs with user DNs after this normalisation.
/// It parses RFC 4514 just enough: attribute types and values are trimmed of unescaped
/// spaces, values are unescaped (`\,` and `\2C` are the same), both are case-folded, and
/// the result is re-escaped canonically. Multi-valued RDNs keep their order.
public enum DNNormalizer {
    public static func normalize(_ dn: String) -> String {
        // Fast path: plain ASCII with no escapes, quotes, spaces or '+': only fold.
        var plain = true
        for b in dn.utf8 where b >= 0x80 || b == 0x5C || b == 0x20 || b == 0x22 || b == 0x2B || b == 0x23 {
            plain = false
            break
        }
        if plain { return Folding.fold(dn) }
        return slowNormalize(dn)
    }

    private static func slowNormalize(_ dn: String) -> String {
        let bytes = Array(dn.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        var expectType = true
        var current: [UInt8] = []
        func flushType() {
            out.append(contentsOf: trimSpaces(current).map(asciiLower))
            current.removeAll(keepingCapacity: true)
        }
        func flushValue() {
            // `current` holds the unescaped value; unescaped trailing spaces were never added.
            let value = String(decoding: current, as: UTF8.self)
            out.append(contentsOf: escapeCanonical(Folding.fold(value)).utf8)
            current.removeAll(keepingCapacity: true)
        }
        var valueStarted = false
        var pendingSpaces = 0 // unescaped spaces seen in a value, kept only if more value follows
        while i < bytes.count {
            let b = bytes[i]
            if expectType {
                if b == UInt8(ascii: "=") {
                    flushType()
                    out.append(b)
                    expectType = false
                    valueStarted = false
                    pendingSpaces = 0
                } else {
                    current.append(b)
                }
                i += 1
                continue
            }
            switch b {
            case UInt8(ascii: "\\"):
                if pendingSpaces > 0 { current.append(contentsOf: repeatElement(UInt8(ascii: " "), count: pendingSpaces)); pendingSpaces = 0 }
                valueStarted = true
                if let h = hexValue(bytes, i + 1) {
                    current.append(h)
                    i += 3
                } else if i + 1 < bytes.count {
                    current.append(bytes[i + 1])
                    i += 2
                } else {
                    i += 1
                }
            case UInt8(ascii: ","), UInt8(ascii: ";"), UInt8(ascii: "+"):
                flushValue()
                out.append(b == UInt8(ascii: "+") ? b : UInt8(ascii: ","))
                expectType = true
                pendingSpaces = 0
                i += 1
            case UInt8(ascii: " "):
                if valueStarted { pendingSpaces += 1 }
                i += 1
            default:
                if pendingSpaces > 0 { current.append(contentsOf: repeatElement(UInt8(ascii: " "), count: pendingSpaces)); pendingSpaces = 0 }
                valueStarted = true
                current.append(b)
                i += 1
            }
        }
        if expectType { flushType() } else { flushValue() }
        return String(decoding: out, as: UTF8.self)
    }

    private static func hexValue(_ bytes: [UInt8], _ at: Int) -> UInt8? {
        guard at + 1 < bytes.count, let hi = hexDigit(bytes[at]), let lo = hexDigit(bytes[at + 1]) else { return nil }
        return hi << 4 | lo
    }

    private static func hexDigit(_ b: UInt8) -> UInt8? {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return b - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return b - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return b - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    private static func asciiLower(_ b: UInt8) -> UInt8 { (b &- 0x41 < 26) ? b | 0x20 : b }

    private static func trimSpaces(_ bytes: [UInt8]) -> ArraySlice<UInt8> {
        var lo = 0, hi = bytes.count
        while lo < hi && bytes[lo] == UInt8(ascii: " ") { lo += 1 }
        while hi > lo && bytes[hi - 1] == UInt8(ascii: " ") { hi -= 1 }
        return bytes[lo..<hi]
    }

    private static func escapeCanonical(_ value: String) -> String {
        var out = ""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\\", ",", "+", "\"", "<", ">", ";", "=", " ", "#":
                out.append("\\")
                out.unicodeScalars.append(scalar)
            default:
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// The value of the first RDN, unescaped (`uid=bob,ou=people` gives `bob`): a name for
    /// a member whose entry is gone from the directory.
    public static func firstRDNValue(_ dn: String) -> String {
        var value: [UInt8] = []
        var inValue = false
        let bytes = Array(dn.utf8)
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            if !inValue {
                if b == UInt8(ascii: "=") { inValue = true }
                i += 1
                continue
            }
            if b == UInt8(ascii: "\\") {
                if let h = hexValue(bytes, i + 1) { value.append(h); i += 3; continue }
                if i + 1 < bytes.count { value.append(bytes[i + 1]) }
                i += 2
                continue
            }
            if b == UInt8(ascii: ",") || b == UInt8(ascii: "+") || b == UInt8(ascii: ";") { break }
            value.append(b)
            i += 1
        }
        let s = String(decoding: value, as: UTF8.self)
        let trimmed = s.drop(while: { $0 == " " })
        return String(trimmed.reversed().drop(while: { $0 == " " }).reversed())
    }
}

/// A total, deterministic order on strings: Swift's `<` (Unicode canonical order), then the
/// UTF-8 bytes for canonically equal strings spelled differently.
@inline(__always)
func stringLess(_ a: String, _ b: String) -> Bool {
    if a == b {
        return a.utf8.lexicographicallyPrecedes(b.utf8)
    }
    return canonicalLess(a, b)
}

/// Three-way variant of `stringLess`: -1, 0 (byte-identical), 1.
@inline(__always)
func stringCompare(_ a: String, _ b: String) -> Int {
    if a == b {
        if a.utf8.elementsEqual(b.utf8) { return 0 }
        return a.utf8.lexicographicallyPrecedes(b.utf8) ? -1 : 1
    }
    return canonicalLess(a, b) ? -1 : 1
}

/// `a < b` for strings that are not canonically equal, in Unicode canonical order: the NFC
/// code units, the order Swift's `<` documents. Swift 6.3's `<` breaks it where a later mark
/// or jamo composes with an earlier character: "cafe\u{301}" and "caf\u{E9}0" compare
/// neither way, Hangul jamo against a precomposed syllable the wrong way; sorts were then
/// inconsistent and a lookup by name missed users. ASCII strings (nearly every name) keep
/// the standard library's `<`, which is right for them.
@inline(__always)
func canonicalLess(_ a: String, _ b: String) -> Bool {
    if isASCII(a) && isASCII(b) { return a < b }
    return a._nfcCodeUnits.lexicographicallyPrecedes(b._nfcCodeUnits)
}

@inline(__always)
private func isASCII(_ s: String) -> Bool {
    s.utf8.withContiguousStorageIfAvailable { bytes in
        var bits: UInt8 = 0
        for b in bytes { bits |= b }
        return bits < 0x80
    } ?? false
}

/// ISO 8601 UTC time, "2026-11-29T08:00:00Z". Proleptic Gregorian calendar, no Foundation.
public enum ISOTime {
    public static func format(_ t: UnixTime) -> String {
        let days = floorDiv(t, 86_400)
        let secs = t - days * 86_400
        let (y, m, d) = civil(fromDays: days)
        let hh = secs / 3600, mm = secs % 3600 / 60, ss = secs % 60
        return "\(pad(y, 4))-\(pad(m, 2))-\(pad(d, 2))T\(pad(hh, 2)):\(pad(mm, 2)):\(pad(ss, 2))Z"
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

    private static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
        let q = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
    }

    // Howard Hinnant's days_from_civil inverse.
    private static func civil(fromDays z0: Int64) -> (Int64, Int64, Int64) {
        let z = z0 + 719_468
        let era = floorDiv(z, 146_097)
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (m <= 2 ? y + 1 : y, m, d)
    }

    private static func pad(_ v: Int64, _ width: Int) -> String {
        let s = String(v)
        return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
    }
}

/// Quotes a name for messages: 'alice'.
@inline(__always)
func q(_ s: String) -> String { "'" + s + "'" }
