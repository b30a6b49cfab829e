// ASCII helpers shared by the LDAP text syntaxes.
//
// ASCII case: attribute type names (descriptors), LDAP keywords and option names compare
// without regard to the case of `A`-`Z` only (RFC 4512 section 2.5). Values are another
// matter: they fold with `Folding` (caseIgnoreMatch).

extension String {
    /// Without leading and trailing spaces and tabs (the bytes 0x20 and 0x09; the rest of
    /// the text is kept as it is, so the result is valid UTF-8 as the input was).
    package var trimmingSpaces: String {
        let u = utf8
        // Nothing to trim (nearly every value): answered from the two ends.
        guard let head = u.first, let tail = u.last else { return self }
        if head != 0x20 && head != 0x09 && tail != 0x20 && tail != 0x09 { return self }
        guard let first = u.firstIndex(where: { $0 != 0x20 && $0 != 0x09 }),
              let last = u.lastIndex(where: { $0 != 0x20 && $0 != 0x09 }) else { return "" }
        return String(self[first...last])
    }

    /// True when the two differ at most in the case of ASCII letters (`objectGUID`,
    /// `objectguid`); any other byte must be the same.
    public func caseInsensitiveEquals(_ other: String) -> Bool {
        let a = utf8, b = other.utf8
        guard a.count == b.count else { return false }
        // Over the two strings' bytes in place (attribute names are compared for every
        // value of every entry read); the view walk only for strings without contiguous bytes.
        let inPlace = a.withContiguousStorageIfAvailable { x in
            b.withContiguousStorageIfAvailable { y in
                for k in 0..<x.count where x[k] != y[k] && asciiLowercase(x[k]) != asciiLowercase(y[k]) { return false }
                return true
            }
        }
        if let inPlace, let equal = inPlace { return equal }
        for (x, y) in zip(a, b) where x != y {
            if asciiLowercase(x) != asciiLowercase(y) { return false }
        }
        return true
    }

    /// `A`-`Z` made `a`-`z`, every other byte kept.
    public var asciiLowercased: String {
        guard utf8.contains(where: { $0 &- 0x41 < 26 }) else { return self }
        return String(decoding: utf8.map(asciiLowercase), as: UTF8.self)
    }
}

@inline(__always)
func asciiLowercase(_ b: UInt8) -> UInt8 { (b &- 0x41 < 26) ? b | 0x20 : b }

extension UInt8 {
    /// The value of an ASCII hex digit (`0`-`9`, `a`-`f`, `A`-`F`), else nil: for `\XX` in
    /// DNs and `%XX` in URLs and record values.
    @inlinable
    public var hexDigitValue: UInt8? {
        switch self {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): self - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): self - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): self - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
