// Case-insensitive comparison of names (docs/product.md section 3: "Local user accounts aren't
// case sensitive").

/// Unicode default full case folding (the C + F mappings of CaseFolding.txt, no Turkic
/// T mappings), the folding `str.casefold()` in Python and `fold_case` in ICU perform.
///
/// It is computed from the standard library's full case mappings as
/// `lowercase(uppercase(lowercase(c)))` per scalar, U+0131 (dotless i) excepted. Checked
/// against Python 3.11's `str.casefold()` for all 1,112,064 scalars: the two partition them
/// into exactly the same equivalence classes wherever both know the scalar (Python has
/// Unicode 14; the standard library is newer). The representative can differ from
/// CaseFolding.txt's (Cherokee folds to its small letters here), never the classes:
/// "ß", "ẞ" and "SS" all fold to "ss", "ς" and "Σ" to "σ", "K" (Kelvin) to "k", "ﬁ" to "fi",
/// "İ" to "i\u{307}". `FoldingTests` checks a table of such cases. Canonical equivalence (precomposed versus
/// decomposed accents) is handled by Swift's `String` equality and hashing, so folded
/// strings can be compared with `==` and used as dictionary keys.
///
/// ASCII strings (nearly every account name) take a fast path that maps `A-Z` only and
/// returns the original string unchanged, without allocating, when it has no capitals.
///
/// It lives beside the DN syntax because `DNNormalizer` folds attribute values with it (LDAP's
/// caseIgnoreMatch); the planner folds account and device names with the same function.
/// `@inlinable` keeps the ASCII fast path inlined in the planner's loops in other modules.
public enum Folding {
    @inlinable
    public static func fold(_ s: String) -> String {
        var s = s
        // Native strings have contiguous UTF-8; the closure decides everything for ASCII.
        let fast: String?? = s.utf8.withContiguousStorageIfAvailable { bytes -> String? in
            var hasUpper = false
            for b in bytes {
                if b >= 0x80 { return nil }
                if b &- 0x41 < 26 { hasUpper = true }
            }
            if !hasUpper { return s }
            return String(unsafeUninitializedCapacity: bytes.count) { out in
                for i in 0..<bytes.count {
                    let b = bytes[i]
                    out[i] = (b &- 0x41 < 26) ? b | 0x20 : b
                }
                return bytes.count
            }
        }
        if let fast, let folded = fast { return folded }
        if fast == nil { s.makeContiguousUTF8(); return fold(s) }
        return foldUnicode(s)
    }

    /// Folded equality without allocating for ASCII.
    @inlinable
    public static func equal(_ a: String, _ b: String) -> Bool {
        if a == b { return true }
        return fold(a) == fold(b)
    }

    @usableFromInline
    static func foldUnicode(_ s: String) -> String {
        var out = String.UnicodeScalarView()
        for scalar in s.unicodeScalars {
            if scalar.isASCII {
                let v = scalar.value
                out.append((v &- 0x41 < 26) ? Unicode.Scalar(UInt8(v | 0x20)) : scalar)
                continue
            }
            // U+0131 dotless i folds only under the Turkic (T) mappings, which are not used.
            if scalar.value == 0x131 { out.append(scalar); continue }
            for lower in scalar.properties.lowercaseMapping.unicodeScalars {
                for upper in lower.properties.uppercaseMapping.unicodeScalars {
                    out.append(contentsOf: upper.properties.lowercaseMapping.unicodeScalars)
                }
            }
        }
        return String(out)
    }

    /// A device's identity, as the directory sees it: `fold`, then LDAP's insignificant
    /// space handling for caseIgnoreMatch (RFC 4518 section 2.6.1): leading and trailing
    /// spaces dropped, each inner run of spaces one space. The space-like characters whose
    /// compatibility decomposition is a space (U+00A0, U+2000-U+200A, U+202F, U+205F,
    /// U+3000) count as spaces, as in OpenLDAP; a tab does not. So "trail", "trail " and
    /// " Trail" are one device, like `cn=trail` and `cn=trail\20` are one entry.
    public static func deviceKey(_ s: String) -> String {
        let f = fold(s)
        // Fast path: ASCII, no space at either end, no two spaces in a row.
        var previousSpace = true
        var plain = true
        for b in f.utf8 {
            if b >= 0x80 { plain = false; break }
            if b == 0x20 {
                if previousSpace { plain = false; break }
                previousSpace = true
            } else {
                previousSpace = false
            }
        }
        if plain && (!previousSpace || f.isEmpty) { return f }
        var out = String.UnicodeScalarView()
        var pendingSpace = false
        for scalar in f.unicodeScalars {
            if isSpace(scalar) {
                pendingSpace = !out.isEmpty
                continue
            }
            if pendingSpace { out.append(" "); pendingSpace = false }
            out.append(scalar)
        }
        return String(out)
    }

    /// U+0020 and the characters whose NFKD is U+0020.
    static func isSpace(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x20, 0xA0, 0x2000...0x200A, 0x202F, 0x205F, 0x3000: return true
        default: return false
        }
    }

    /// `fold(String(raw)) == folded` without allocating when both are ASCII.
    @inlinable
    public static func equals(_ raw: Substring, folded: String) -> Bool {
        for f in folded.utf8 where f >= 0x80 { return fold(String(raw)) == folded }
        var it = folded.utf8.makeIterator()
        var same = true
        for b in raw.utf8 {
            if b >= 0x80 { return fold(String(raw)) == folded }
            if same {
                if let f = it.next(), ((b &- 0x41 < 26) ? b | 0x20 : b) == f { continue }
                same = false
            }
        }
        return same && it.next() == nil
    }
}
