// Comparing DNs as a directory does, without parsing them strictly: DNs come from the
// directory, the configuration and the planner's own layout, and a member value that does
// not parse must still compare (and never crash). The one implementation of DN comparison
// (`normalize`, also behind `DN.comparisonKey`) and of a DN's first RDN value.

/// DN comparison: the planner compares member DNs with user DNs after this normalisation,
/// the configuration compares search bases with it. RFC 4514 is parsed just enough:
/// attribute types and values are trimmed of unescaped spaces, values are unescaped (`\,`
/// and `\2C` are the same), types are ASCII-lowercased, values case-folded (`Folding.fold`,
/// LDAP's caseIgnoreMatch), `;` between RDNs is read as `,`, and the AVAs of a multi-valued
/// RDN are sorted (`cn=a+sn=b` and `sn=b+cn=a` are one RDN). The result re-escapes what would
/// make it ambiguous (`\` `,` `+` `;` anywhere, a space at either end of a value), so the
/// key of a key is itself.
public enum DNNormalizer {
    public static func normalize(_ dn: String) -> String {
        // Fast path: plain ASCII with no escapes, quotes, spaces, '+', '#' or ';': only fold.
        for b in dn.utf8 where b >= 0x80 || b == 0x5C || b == 0x20 || b == 0x22 || b == 0x2B || b == 0x23 || b == 0x3B {
            return slowNormalize(dn)
        }
        return Folding.fold(dn)
    }

    private static func slowNormalize(_ dn: String) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(dn.utf8.count)
        var scanner = RDNScanner(dn)
        var rdn: [[UInt8]] = [] // the AVAs of a multi-valued RDN, sorted when it ends
        while let ava = scanner.next() {
            var piece: [UInt8] = ava.type.map(asciiLowercase)
            if let value = ava.value {
                piece.append(UInt8(ascii: "="))
                appendEscaped(Folding.fold(String(decoding: value, as: UTF8.self)), to: &piece)
            }
            if ava.separator == UInt8(ascii: "+") {
                rdn.append(piece)
                continue
            }
            if rdn.isEmpty {
                out.append(contentsOf: piece)
            } else {
                rdn.append(piece)
                rdn.sort { $0.lexicographicallyPrecedes($1) }
                for (i, p) in rdn.enumerated() {
                    if i > 0 { out.append(UInt8(ascii: "+")) }
                    out.append(contentsOf: p)
                }
                rdn.removeAll(keepingCapacity: true)
            }
            if ava.separator != nil { out.append(UInt8(ascii: ",")) }
        }
        if !rdn.isEmpty { // the text ended right after a '+'
            rdn.sort { $0.lexicographicallyPrecedes($1) }
            out.append(contentsOf: rdn.joined(separator: [UInt8(ascii: "+")]))
            out.append(UInt8(ascii: "+"))
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func appendEscaped(_ value: String, to out: inout [UInt8]) {
        let bytes = Array(value.utf8)
        for (i, b) in bytes.enumerated() {
            switch b {
            case UInt8(ascii: "\\"), UInt8(ascii: ","), UInt8(ascii: "+"), UInt8(ascii: ";"):
                out.append(UInt8(ascii: "\\"))
            case UInt8(ascii: " ") where i == 0 || i == bytes.count - 1:
                out.append(UInt8(ascii: "\\"))
            default:
                break
            }
            out.append(b)
        }
    }

    /// The value of the first RDN, unescaped, unescaped spaces at its ends dropped
    /// (`uid=bob,ou=people` gives `bob`): a name for a member whose entry is gone.
    public static func firstRDNValue(_ dn: String) -> String {
        var scanner = RDNScanner(dn)
        guard let first = scanner.next(), let value = first.value else { return "" }
        return String(decoding: value, as: UTF8.self)
    }
}

/// Reads a DN one attribute value assertion at a time, leniently: never fails, whatever the
/// text. A type is the bytes before `=` without spaces at its ends; a value is unescaped
/// (`\XX` hex or `\` and any byte), with its unescaped leading and trailing spaces dropped.
private struct RDNScanner {
    struct AVA {
        var type: ArraySlice<UInt8>
        /// Nil when the text ended before a `=`.
        var value: [UInt8]?
        /// The `,` `;` or `+` after the value; nil at the end.
        var separator: UInt8?
    }

    private let bytes: [UInt8]
    private var i = 0

    init(_ dn: String) { bytes = Array(dn.utf8) }

    mutating func next() -> AVA? {
        guard i < bytes.count else { return nil }
        let typeStart = i
        while i < bytes.count, bytes[i] != UInt8(ascii: "=") { i += 1 }
        var lo = typeStart, hi = i
        while lo < hi && bytes[lo] == UInt8(ascii: " ") { lo += 1 }
        while hi > lo && bytes[hi - 1] == UInt8(ascii: " ") { hi -= 1 }
        let type = bytes[lo..<hi]
        guard i < bytes.count else { return AVA(type: type, value: nil, separator: nil) }
        i += 1 // '='
        var value: [UInt8] = []
        var started = false
        var pendingSpaces = 0 // unescaped spaces, kept only if more value follows
        func flushSpaces() {
            value.append(contentsOf: repeatElement(UInt8(ascii: " "), count: pendingSpaces))
            pendingSpaces = 0
        }
        while i < bytes.count {
            let b = bytes[i]
            switch b {
            case UInt8(ascii: "\\"):
                flushSpaces()
                started = true
                if let h = hexPair(at: i + 1) {
                    value.append(h)
                    i += 3
                } else if i + 1 < bytes.count {
                    value.append(bytes[i + 1])
                    i += 2
                } else {
                    i += 1
                }
            case UInt8(ascii: ","), UInt8(ascii: ";"), UInt8(ascii: "+"):
                i += 1
                return AVA(type: type, value: value, separator: b)
            case UInt8(ascii: " "):
                if started { pendingSpaces += 1 }
                i += 1
            default:
                flushSpaces()
                started = true
                value.append(b)
                i += 1
            }
        }
        return AVA(type: type, value: value, separator: nil)
    }

    private func hexPair(at: Int) -> UInt8? {
        guard at + 1 < bytes.count, let hi = bytes[at].hexDigitValue, let lo = bytes[at + 1].hexDigitValue else {
            return nil
        }
        return hi << 4 | lo
    }
}
