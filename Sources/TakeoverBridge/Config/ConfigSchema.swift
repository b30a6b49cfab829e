// The configuration's key table and the parsers and suggestions shared by the reader.

import Foundation
import LDAPClient
import TakeoverCore

/// The TOML type of a key, as a message names it.
enum ConfigKeyKind {
    case string, bool, int, number, stringList, duration, size

    var expectation: String {
        switch self {
        case .string: return "a string"
        case .bool: return "true or false"
        case .int: return "an integer"
        case .number: return "a number"
        case .stringList: return "a list of strings"
        case .duration: return "a duration (seconds, or a string like \"7d\", \"12h\", \"30m\", \"3600s\")"
        case .size: return "a size (bytes, or a string like \"512MiB\", \"2GiB\", \"64M\")"
        }
    }
}

enum ConfigSchema {
    /// The values `tls_reqcert` and `on_likely_mismatch` accept, in the order messages list them.
    static let tlsReqcertChoices: [TLSRequireCert] = [.never, .allow, .try, .demand, .hard]
    static let likelyMismatchChoices: [LikelyMismatchPolicy] = [.hold, .provision]

    /// A value or name as shown in a message: at most `limit` characters, then how long it
    /// was, so a huge value (a 1 MB URI) cannot flood the log.
    static func excerpt(_ s: String, limit: Int = 80) -> String {
        let count = s.utf8.count
        guard count > limit else { return s }
        var prefix = Substring(s.unicodeScalars.prefix(limit))
        if prefix.utf8.count > limit { prefix = prefix.prefix(limit) }
        return prefix + "\u{2026} (\(count) bytes)"
    }

    /// Keys that would hold a secret in the file itself: refused, value never echoed.
    static func looksLikeSecret(_ key: String) -> Bool {
        SecretKeys.isSecretConfigKey(key)
    }

    static let secretMessage = "a password does not belong in the config file (its value is not shown); "
        + "put it in a file readable only by the bridge and name it with [ldap] bind_password_file, "
        + "or name an environment variable with [ldap] bind_password_env"

    /// Parses "512MiB", "2 GiB", "64M", "100k", "1048576" into bytes (units are 1024-based
    /// whether written K, KB or KiB; case does not matter).
    static func parseSize(_ text: String) -> Int64? {
        let s = text.trimmingCharacters(in: .whitespaces).lowercased()
        let digits = s.prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty, let n = Int64(digits) else { return nil }
        var unit = s.dropFirst(digits.count).trimmingCharacters(in: .whitespaces)
        if unit.hasSuffix("ib") { unit.removeLast(2) } else if unit.hasSuffix("b") { unit.removeLast() }
        let shifts: [String: Int64] = ["": 0, "k": 10, "m": 20, "g": 30, "t": 40]
        guard let shift = shifts[unit] else { return nil }
        let (bytes, overflow) = n.multipliedReportingOverflow(by: Int64(1) << shift)
        return overflow || bytes > Int64(Int.max) ? nil : bytes
    }

    /// Parses "7d", "12h", "30m", "3600s", "1d12h", "3600" into seconds.
    static func parseDuration(_ text: String) -> Int64? {
        let s = text.trimmingCharacters(in: .whitespaces).lowercased()
        if s.isEmpty { return nil }
        var total: Int64 = 0
        var number: Int64? = nil
        var sawUnit = false
        for ch in s {
            if let digit = ch.wholeNumberValue, ch.isASCII {
                let (m, o1) = (number ?? 0).multipliedReportingOverflow(by: 10)
                let (a, o2) = m.addingReportingOverflow(Int64(digit))
                if o1 || o2 { return nil }
                number = a
                continue
            }
            if ch == " " { continue }
            let factor: Int64
            switch ch {
            case "s": factor = 1
            case "m": factor = 60
            case "h": factor = 3600
            case "d": factor = 86_400
            case "w": factor = 604_800
            default: return nil
            }
            guard let n = number else { return nil }
            let (p, o1) = n.multipliedReportingOverflow(by: factor)
            let (t, o2) = total.addingReportingOverflow(p)
            if o1 || o2 { return nil }
            total = t
            number = nil
            sawUnit = true
        }
        if let n = number {
            if sawUnit { return nil }  // "1d5" is ambiguous
            total = n
        }
        return total
    }

    /// Edit distance, for "did you mean".
    static func distance(_ a: String, _ b: String) -> Int {
        let x = Array(a.lowercased().utf8), y = Array(b.lowercased().utf8)
        if x.isEmpty { return y.count }
        if y.isEmpty { return x.count }
        var previous = Array(0...y.count)
        var current = [Int](repeating: 0, count: y.count + 1)
        for i in 1...x.count {
            current[0] = i
            for j in 1...y.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x[i - 1] == y[j - 1] ? 0 : 1))
            }
            swap(&previous, &current)
        }
        return previous[y.count]
    }

    static func closest(_ word: String, among candidates: [String]) -> String? {
        var best: (String, Int)? = nil
        for c in candidates {
            let d = distance(word, c)
            if d <= max(1, c.count / 3), d < (best?.1 ?? Int.max) { best = (c, d) }
        }
        return best?.0
    }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}
