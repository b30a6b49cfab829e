// Small pure helpers shared by the planner, the explainer and the renderers.

/// A total, deterministic order on strings: Swift's `<` (Unicode canonical order), then the
/// UTF-8 bytes for canonically equal strings spelled differently.
@inline(__always)
func stringLess(_ a: String, _ b: String) -> Bool {
    if a == b {
        return a.utf8.lexicographicallyPrecedes(b.utf8)
    }
    return a < b
}

/// Three-way variant of `stringLess`: -1, 0 (byte-identical), 1.
@inline(__always)
func stringCompare(_ a: String, _ b: String) -> Int {
    if a == b {
        if a.utf8.elementsEqual(b.utf8) { return 0 }
        return a.utf8.lexicographicallyPrecedes(b.utf8) ? -1 : 1
    }
    return a < b ? -1 : 1
}

/// Quotes a name for messages: 'alice'.
@inline(__always)
func q(_ s: String) -> String { "'" + s + "'" }
