// JSON text (RFC 8259), written in one place: the plan (`ReportRenderer.json`) and the run
// journal (`runs.jsonl`) both go through `JSONWriter`.

/// A byte buffer with JSON string escaping (RFC 8259): `"` `\` and control characters
/// escaped (`\n` `\r` `\t` `\b` `\f`, else `\u00XX`), everything else kept as UTF-8.
package struct JSONWriter {
    private var bytes: [UInt8] = []

    package init(capacity: Int = 1 << 16) { bytes.reserveCapacity(capacity) }

    package mutating func raw(_ s: String) { bytes.append(contentsOf: s.utf8) }

    package mutating func string(_ s: String) {
        bytes.append(UInt8(ascii: "\""))
        if Self.isPlain(s) {
            bytes.append(contentsOf: s.utf8)
            bytes.append(UInt8(ascii: "\""))
            return
        }
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "\""): bytes.append(contentsOf: [92, 34])
            case UInt8(ascii: "\\"): bytes.append(contentsOf: [92, 92])
            case 10: bytes.append(contentsOf: [92, UInt8(ascii: "n")])
            case 13: bytes.append(contentsOf: [92, UInt8(ascii: "r")])
            case 9: bytes.append(contentsOf: [92, UInt8(ascii: "t")])
            case 8: bytes.append(contentsOf: [92, UInt8(ascii: "b")])
            case 12: bytes.append(contentsOf: [92, UInt8(ascii: "f")])
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                bytes.append(contentsOf: [92, UInt8(ascii: "u"), 48, 48, hex[Int(b >> 4)], hex[Int(b & 15)]])
            default: bytes.append(b)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    /// True when `s` needs no escaping (no `"`, `\\` or control character): one scan.
    @inline(__always)
    static func isPlain(_ s: String) -> Bool {
        @inline(__always) func special(_ b: UInt8) -> Bool { b < 0x20 || b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") }
        if let plain = s.utf8.withContiguousStorageIfAvailable({ !$0.contains(where: special) }) { return plain }
        return !s.utf8.contains(where: special)
    }

    package mutating func optional(_ s: String?) {
        if let s { string(s) } else { raw("null") }
    }

    package mutating func strings(_ values: [String]) {
        bytes.append(UInt8(ascii: "["))
        for (i, v) in values.enumerated() {
            if i > 0 { bytes.append(contentsOf: [44, 32]) }
            string(v)
        }
        bytes.append(UInt8(ascii: "]"))
    }

    package mutating func array<T>(_ items: [T], _ body: (inout JSONWriter, T) -> Void) {
        if items.isEmpty { raw("[]"); return }
        raw("[\n")
        elements(items, items.indices, body)
    }

    /// The elements `range` of `items` as `array` writes them (each indented, then `,` or
    /// the closing `]`): one array rendered in parts.
    package mutating func elements<T>(_ items: [T], _ range: Range<Int>, _ body: (inout JSONWriter, T) -> Void) {
        for i in range {
            raw("    ")
            body(&self, items[i])
            raw(i == items.count - 1 ? "\n  ]" : ",\n")
        }
    }

    package func result() -> String { String(decoding: bytes, as: UTF8.self) }

    /// The bytes written so far; the writer is empty after.
    package mutating func takeBytes() -> [UInt8] {
        let out = bytes
        bytes = []
        return out
    }
}
