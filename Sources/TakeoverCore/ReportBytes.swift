import LDAPSyntax
#if canImport(Glibc)
import Glibc
#endif

// Reports built as bytes. A report of a large plan is tens of megabytes: its lines go
// straight into byte buffers (no String per line), the long lists are rendered in
// parallel parts, and the parts are written in order as they are (never joined into one
// copy). `RenderedReport.text` joins them for callers that want one String.

/// A rendered report: its bytes, in pieces to write one after another. The long lists
/// (decisions, changes) are pieces rendered only as they are written, a few parts at a
/// time in parallel (`forEachPart`): a report of a million users' plan is never whole in
/// memory, and `plan` needs no memory freed before it renders.
public struct RenderedReport: Sendable {
    /// Bytes already made, or a list rendered part by part when written.
    public enum Piece: Sendable {
        case bytes([UInt8])
        case list(ListParts)
    }

    /// `items` rendered in `count` contiguous parts by `render`.
    public struct ListParts: Sendable {
        let items: Int
        let count: Int
        let render: @Sendable (Range<Int>) -> [UInt8]

        func range(_ p: Int) -> Range<Int> { (items * p / count)..<(items * (p + 1) / count) }
    }

    public var pieces: [Piece]

    public init(parts: [[UInt8]]) { pieces = parts.map { .bytes($0) } }
    public init(pieces: [Piece]) { self.pieces = pieces }

    /// Items (decisions, changes, operations) a part holds at least before a list is split
    /// into parts rendered in parallel; the renderers take another (`partSize`) for tests.
    public static let partSize = 8192

    /// Parts of a list rendered at once (one per processor): what is in memory of a list.
    static let partsInFlight = max(1, min(8, sysconf(Int32(_SC_NPROCESSORS_ONLN))))

    public mutating func append(_ bytes: [UInt8]) { pieces.append(.bytes(bytes)) }

    /// Hands every part to `body` in order, rendering the lists' parts `partsInFlight` at a
    /// time; stops (false) as soon as `body` returns false.
    public func forEachPart(_ body: ([UInt8]) -> Bool) -> Bool {
        for piece in pieces {
            switch piece {
            case .bytes(let bytes):
                if !body(bytes) { return false }
            case .list(let list):
                var next = 0
                while next < list.count {
                    let wave = next..<min(list.count, next + Self.partsInFlight)
                    let made = parallelArray(count: wave.count, minimumPerChunk: 1) { k in
                        list.render(list.range(wave.lowerBound + k))
                    }
                    for part in made where !body(part) { return false }
                    next = wave.upperBound
                }
            }
        }
        return true
    }

    /// Every part, rendered (tests, and callers that want them all at once).
    public var parts: [[UInt8]] {
        var all: [[UInt8]] = []
        _ = forEachPart { all.append($0); return true }
        return all
    }

    /// Renders the whole report to count it.
    public var byteCount: Int {
        var n = 0
        _ = forEachPart { n += $0.count; return true }
        return n
    }

    /// The whole report as one String (UTF-8).
    public var text: String {
        var all: [UInt8] = []
        _ = forEachPart { all.append(contentsOf: $0); return true }
        return String(decoding: all, as: UTF8.self)
    }
}

/// Renders `0..<count` in contiguous parts, each into its own byte buffer, in parallel
/// when there is enough work (at least `minimumPerPart` items a part), when the report is
/// written (`RenderedReport.forEachPart`). Up to 16 parts, more for a long list (at most
/// about four times `minimumPerPart` items a part): a part of a million users' plan is a
/// few megabytes, not tens.
func renderParts(_ count: Int, minimumPerPart: Int, _ render: @escaping @Sendable (Range<Int>) -> [UInt8]) -> RenderedReport.Piece {
    let minimum = max(1, minimumPerPart)
    let parts = max(1, min(count / minimum, max(16, count / minimum / 4)))
    return .list(RenderedReport.ListParts(items: count, count: parts, render: render))
}

/// A piece rendered only when it is written (`RenderedReport.forEachPart`), in one part.
func renderLater(_ render: @escaping @Sendable () -> [UInt8]) -> RenderedReport.Piece {
    .list(RenderedReport.ListParts(items: 1, count: 1, render: { _ in render() }))
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
    package static func estimatedBytes(_ changes: some Sequence<Change>) -> Int {
        changes.reduce(0) { $0 + 96 + ($1.values.count + $1.attributes.count) * 64 }
    }
}
