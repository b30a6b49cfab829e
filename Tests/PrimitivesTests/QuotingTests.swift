// Property tests for the one quoting of values in messages and log lines
// (TerminalText.quoted, used by Logfmt.value and the report parsers' Fields.quoted).

import TakeoverCore
import Testing
import TestSupport
@testable import DeviceReports
@testable import TakeoverBridge

@Suite struct QuotingTests {
    /// Reads back what `TerminalText.quoted` wrote (without a limit).
    static func unquote(_ q: String) -> String? {
        var scalars = Array(q.unicodeScalars)[...]
        guard scalars.first == "\"", scalars.last == "\"", scalars.count >= 2 else { return nil }
        scalars = scalars.dropFirst().dropLast()
        var out = String.UnicodeScalarView()
        while let c = scalars.popFirst() {
            guard c == "\\" else { out.append(c); continue }
            switch scalars.popFirst() {
            case "\"": out.append("\"")
            case "\\": out.append("\\")
            case "n": out.append("\n")
            case "r": out.append("\r")
            case "t": out.append("\t")
            case "u":
                let hex = String(String.UnicodeScalarView(scalars.prefix(4)))
                scalars = scalars.dropFirst(4)
                guard hex.count == 4, let v = UInt32(hex, radix: 16), let s = Unicode.Scalar(v) else { return nil }
                out.append(s)
            default: return nil
            }
        }
        return String(out)
    }

    @Test func quotedRoundTripsAndShowsNothingATerminalActsOn() {
        var rng = SplitMix64(seed: 0x9007)
        let bidi = ["\u{202E}", "\u{2066}", "\u{2028}", "\u{9B}", "\u{1B}[2J"]
        for _ in 0..<10_000 {
            let s = Hostile.string(&rng) + (rng.chance(30) ? rng.pick(bidi) : "")
            let q = TerminalText.quoted(s)
            #expect(!q.unicodeScalars.contains(where: TerminalText.isUnsafe), "\(q.debugDescription)")
            #expect(Self.unquote(q)?.unicodeScalars.elementsEqual(s.unicodeScalars) == true, "\(s.debugDescription)")
            // logfmt: bare only when nothing needs quoting, else the same quoting.
            let v = Logfmt.value(s)
            #expect(v == s || v == q)
            #expect(!v.unicodeScalars.contains(where: TerminalText.isUnsafe))
            if v == s { #expect(!s.isEmpty && !s.contains(" ") && !s.contains("=") && !s.contains("\"")) }
        }
    }

    @Test func knownQuotes() {
        #expect(TerminalText.quoted("a\"b\\c\n\u{1B}") == #""a\"b\\c\n\u001b""#)
        // Bidirectional overrides reorder a log line shown on a terminal: quoted and escaped.
        #expect(Logfmt.value("a\u{202E}b") == #""a\u202eb""#)
        #expect(Logfmt.value("plain") == "plain" && Logfmt.value("") == "\"\"")
        // Report messages: cut to 40 characters, escaped like the rest.
        #expect(Fields.quoted(String(repeating: "x", count: 41)) == "\"" + String(repeating: "x", count: 40) + "…\"")
        #expect(Fields.quoted(String(repeating: "x", count: 40)) == "\"" + String(repeating: "x", count: 40) + "\"")
        #expect(Fields.quoted("bob\u{1B}]52;c;\u{7}") == #""bob\u001b]52;c;\u0007""#)
    }
}
