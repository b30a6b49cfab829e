import LDAPSyntax

// Reports built as bytes. A report of a large plan is tens of megabytes: its lines go
// straight into byte buffers (no String per line), the long lists are rendered in
// parallel parts, and the parts are written in order as they are (never joined into one
// copy). `RenderedReport.text` joins them for callers that want one String.

/// A rendered report: its bytes, in parts to write one after another.
public struct RenderedReport: Sendable {
    public var parts: [[UInt8]]

    public init(parts: [[UInt8]]) { self.parts = parts }

    /// Items (decisions, changes, operations) a part holds at least before a list is split
    /// into parts rendered in parallel; the renderers take another (`partSize`) for tests.
    public static let partSize = 8192

    public var byteCount: Int { parts.reduce(0) { $0 + $1.count } }

    /// The whole report as one String (UTF-8).
    public var text: String {
        if parts.count == 1 { return String(decoding: parts[0], as: UTF8.self) }
        var all: [UInt8] = []
        all.reserveCapacity(byteCount)
        for part in parts { all.append(contentsOf: part) }
        return String(decoding: all, as: UTF8.self)
    }
}

/// Renders `0..<count` in contiguous parts, each into its own byte buffer, in parallel
/// when there is enough work (at least `minimumPerPart` items a part); the parts in order.
func renderParts(_ count: Int, minimumPerPart: Int, _ render: @Sendable (Range<Int>) -> [UInt8]) -> [[UInt8]] {
    let parts = max(1, min(16, count / max(1, minimumPerPart)))
    return Array(parallelArray(count: parts, minimumPerChunk: 1) { p in
        render((count * p / parts)..<(count * (p + 1) / parts))
    })
}

/// A byte buffer for text a person reads: `terminal` appends a value as
/// `TerminalText.escape` writes it.
struct TextLines {
    var bytes: [UInt8] = []

    init(capacity: Int) { bytes.reserveCapacity(capacity) }

    /// Text of the renderer's own (no escaping).
    @inline(__always)
    mutating func raw(_ s: String) { bytes.appendUTF8(s) }

    @inline(__always)
    mutating func byte(_ b: UInt8) { bytes.append(b) }

    mutating func spaces(_ n: Int) {
        for _ in 0..<max(0, n) { bytes.append(UInt8(ascii: " ")) }
    }

    /// `TerminalText.escape(s)`: printable ASCII copied as it is (one scan), anything
    /// else through `escape` itself.
    mutating func terminal(_ s: String) {
        if !bytes.appendUTF8(s, unless: TerminalText.notPrintableASCII) { bytes.appendUTF8(TerminalText.escape(s)) }
    }

    /// One line: `s` escaped, then a newline.
    mutating func line(_ s: String) {
        terminal(s)
        bytes.append(10)
    }

    mutating func blank() { bytes.append(10) }
}

extension Change {
    /// About the bytes `changes` take in a report (a buffer's first capacity).
    static func estimatedBytes(_ changes: some Sequence<Change>) -> Int {
        changes.reduce(0) { $0 + 96 + ($1.values.count + $1.attributes.count) * 64 }
    }
}
