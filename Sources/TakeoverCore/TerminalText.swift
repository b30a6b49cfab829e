// Text that reaches a terminal (docs/product.md section 7): values from the directory and from
// device reports are data, never a line break, a colour, a screen clear or a clipboard
// write. Every renderer that writes for a person (plan text, explain, the HTML page, the
// doctor's lines, the readable stderr form) passes its lines through `escape`.

public enum TerminalText {
    /// True for a character a terminal, a pager or a text view acts on instead of showing:
    /// C0 controls (ESC starts CSI/OSC sequences, BEL, BS, CR, LF, TAB...), DEL, the C1
    /// controls (U+009B is CSI on its own, U+0085 is NEL), the Unicode line and paragraph
    /// separators, and the bidirectional embeddings, overrides and isolates, which reorder
    /// the text around them.
    @inline(__always)
    public static func isUnsafe(_ scalar: Unicode.Scalar) -> Bool {
        let v = scalar.value
        return v < 0x20 || (v >= 0x7F && v < 0xA0) || v == 0x2028 || v == 0x2029
            || (v >= 0x202A && v <= 0x202E) || (v >= 0x2066 && v <= 0x2069)
    }

    /// `s` with every unsafe character written as a visible escape: `\n`, `\r`, `\t`, else
    /// `\u` and four hex digits (`\u001b` for ESC, `\u009b` for CSI). Anything else is kept.
    public static func escape(_ s: String) -> String {
        // Fast path: printable ASCII only (the usual case, a few hundred thousand lines).
        if isPrintableASCII(s) { return s }
        guard s.unicodeScalars.contains(where: isUnsafe) else { return s }
        var out = ""
        out.reserveCapacity(s.utf8.count + 16)
        for scalar in s.unicodeScalars {
            if isUnsafe(scalar) { appendEscape(scalar, to: &out) } else { out.unicodeScalars.append(scalar) }
        }
        return out
    }

    /// True when `s` is printable ASCII only (nothing to escape): one scan of its bytes.
    @inline(__always)
    static func isPrintableASCII(_ s: String) -> Bool {
        if let plain = s.utf8.withContiguousStorageIfAvailable({ !$0.contains(where: notPrintableASCII) }) {
            return plain
        }
        return !s.utf8.contains(where: notPrintableASCII)
    }

    @inline(__always)
    static func notPrintableASCII(_ b: UInt8) -> Bool { b < 0x20 || b >= 0x7F }

    /// `s` in double quotes, `"` and `\` escaped with a backslash and unsafe characters as
    /// `escape` writes them: a value quoted inside a message or a logfmt line. With a
    /// `limit`, at most that many characters of `s`, then `…`.
    public static func quoted(_ s: String, limit: Int = .max) -> String {
        var out = "\""
        out.reserveCapacity(min(s.utf8.count, limit) + 8)
        var count = 0
        for scalar in s.unicodeScalars {
            if count == limit {
                out += "…"
                break
            }
            if scalar == "\"" || scalar == "\\" {
                out += "\\"
                out.unicodeScalars.append(scalar)
            } else if isUnsafe(scalar) {
                appendEscape(scalar, to: &out)
            } else {
                out.unicodeScalars.append(scalar)
            }
            count += 1
        }
        return out + "\""
    }

    /// `\n`, `\r`, `\t`, else `\u` and (at least) four lowercase hex digits.
    static func appendEscape(_ scalar: Unicode.Scalar, to out: inout String) {
        switch scalar {
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            let hex = String(scalar.value, radix: 16)
            out += "\\u" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
        }
    }
}
