// JSON text (RFC 8259), written in one place: the plan (`ReportRenderer.json`) and the run
// journal (`runs.jsonl`) both go through `JSONWriter`.

import LDAPSyntax

/// A byte buffer with JSON string escaping (RFC 8259): `"` `\` and control characters
/// escaped (`\n` `\r` `\t` `\b` `\f`, else `\u00XX`), everything else kept as UTF-8.
package struct JSONWriter {
    private var bytes: [UInt8] = []

    package init(capacity: Int = 1 << 16) { bytes.reserveCapacity(capacity) }

    package mutating func raw(_ s: String) { bytes.appendUTF8(s) }

    package mutating func string(_ s: String) {
        bytes.append(UInt8(ascii: "\""))
        if bytes.appendUTF8(s, unless: Self.special) {
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

    /// A byte `string` escapes: `"`, `\\` or a control character.
    @inline(__always)
    static func special(_ b: UInt8) -> Bool { b < 0x20 || b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") }

    package mutating func optional(_ s: String?) {
        if let s { string(s) } else { raw("null") }
    }

    package mutating func strings(_ values: [String]) {
        bytes.append(UInt8(ascii: "["))
        for i in values.indices {
            if i > 0 {
                bytes.append(44)
                bytes.append(32)
            }
            string(values[i])
        }
        bytes.append(UInt8(ascii: "]"))
    }

    package mutating func array<T>(_ items: [T], _ body: (inout JSONWriter, T) -> Void) {
        if items.isEmpty { raw("[]"); return }
        raw("[\n")
        elements(items.indices, of: items.count) { w, i in body(&w, items[i]) }
    }

    /// The elements `range` of an array of `count` as `array` writes them (each indented,
    /// then `,` or the closing `]`), `body` writing element `i`: one array rendered in parts.
    package mutating func elements(_ range: Range<Int>, of count: Int, _ body: (inout JSONWriter, Int) -> Void) {
        for i in range {
            raw("    ")
            body(&self, i)
            raw(i == count - 1 ? "\n  ]" : ",\n")
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
