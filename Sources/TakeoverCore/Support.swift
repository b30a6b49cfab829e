// Small pure helpers shared by the planner, the explainer and the renderers.

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

/// A sort key that decides most `stringCompare` calls without touching the strings: the
/// first eight UTF-8 bytes, big-endian and zero-padded, of an ASCII string; `UInt64.max`
/// (no ASCII string has it) for any other. When two keys differ and neither is `.max`,
/// they order the strings exactly as `stringCompare` does (ASCII order is byte order);
/// otherwise the strings must be compared.
@inline(__always)
func orderPrefix(_ s: String) -> UInt64 {
    s.utf8.withContiguousStorageIfAvailable { bytes -> UInt64 in
        var key: UInt64 = 0
        var bits: UInt8 = 0
        for b in bytes { bits |= b }
        if bits >= 0x80 { return .max }
        for k in 0..<8 { key = key << 8 | UInt64(k < bytes.count ? bytes[k] : 0) }
        return key
    } ?? .max
}

/// The answer `orderPrefix` keys give for `a < b`, nil when the strings must be compared.
@inline(__always)
func prefixLess(_ a: UInt64, _ b: UInt64) -> Bool? {
    a != b && a != .max && b != .max ? a < b : nil
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

/// Quotes a name for messages: 'alice'.
@inline(__always)
func q(_ s: String) -> String { "'" + s + "'" }
