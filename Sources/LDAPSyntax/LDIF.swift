// RFC 2849 LDIF output: attribute lines with base64 for unsafe values, folded at 76 columns.

public enum LDIF {
    /// One `name: value` (or `name:: base64`) line, folded, ending in "\n".
    public static func line(_ name: String, _ value: String) -> String {
        var out: [UInt8] = []
        appendLine(name, value, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// `line(name, value)` appended to `out` as bytes.
    public static func appendLine(_ name: String, _ value: String, to out: inout [UInt8]) {
        let start = out.count
        out.appendUTF8(name)
        if isSafe(value) {
            out.append(UInt8(ascii: ":"))
            out.append(UInt8(ascii: " "))
            out.appendUTF8(value)
        } else {
            out.append(UInt8(ascii: ":"))
            out.append(UInt8(ascii: ":"))
            out.append(UInt8(ascii: " "))
            appendBase64(Array(value.utf8), to: &out)
        }
        foldTail(&out, from: start, width: 76)
    }

    /// RFC 2849 SAFE-STRING: no NUL, LF, CR; non-ASCII needs base64; must not start with
    /// space, ':' or '<'; we also base64 a trailing space so it survives editors, and any
    /// other control character (ESC, BEL, TAB, DEL...), so a value read from the directory
    /// or a report never reaches a terminal raw when the file is shown (docs/product.md section 7).
    public static func isSafe(_ value: String) -> Bool {
        let bytes = value.utf8
        guard let first = bytes.first else { return true }
        if first == UInt8(ascii: " ") || first == UInt8(ascii: ":") || first == UInt8(ascii: "<") { return false }
        if bytes.last == UInt8(ascii: " ") { return false }
        @inline(__always) func unsafe(_ b: UInt8) -> Bool { b < 0x20 || b >= 0x7F }
        if let safe = bytes.withContiguousStorageIfAvailable({ !$0.contains(where: unsafe) }) { return safe }
        return !bytes.contains(where: unsafe)
    }

    /// Folds a line longer than 76 bytes: continuation lines start with one space.
    /// Folding never splits a UTF-8 sequence (values with non-ASCII are base64 anyway).
    public static func fold(_ line: String, width: Int = 76) -> String {
        var out = Array(line.utf8)
        foldTail(&out, from: 0, width: width)
        return String(decoding: out, as: UTF8.self)
    }

    /// `fold` of the line `out[start...]`, in place: the line folded, then "\n".
    static func foldTail(_ out: inout [UInt8], from start: Int, width: Int) {
        if out.count - start <= width {
            out.append(UInt8(ascii: "\n"))
            return
        }
        let bytes = Array(out[start...])
        out.removeSubrange(start...)
        out.reserveCapacity(start + bytes.count + bytes.count / width * 2 + 2)
        var index = 0
        var first = true
        while index < bytes.count {
            let room = first ? width : width - 1
            var end = min(index + room, bytes.count)
            while end < bytes.count && end > index + 1 && (bytes[end] & 0xC0) == 0x80 { end -= 1 }
            if !first { out.append(UInt8(ascii: " ")) }
            out.append(contentsOf: bytes[index..<end])
            out.append(UInt8(ascii: "\n"))
            index = end
            first = false
        }
    }

    public static func base64(_ bytes: [UInt8]) -> String {
        var out = [UInt8]()
        appendBase64(bytes, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// `base64(bytes)` appended to `out`.
    static func appendBase64(_ bytes: [UInt8], to out: inout [UInt8]) {
        let table = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        out.reserveCapacity(out.count + (bytes.count + 2) / 3 * 4)
        var i = 0
        while i + 2 < bytes.count {
            let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
            out.append(table[Int(n >> 18 & 63)]); out.append(table[Int(n >> 12 & 63)])
            out.append(table[Int(n >> 6 & 63)]); out.append(table[Int(n & 63)])
            i += 3
        }
        let rest = bytes.count - i
        if rest == 1 {
            let n = UInt32(bytes[i]) << 16
            out.append(table[Int(n >> 18 & 63)]); out.append(table[Int(n >> 12 & 63)])
            out.append(UInt8(ascii: "=")); out.append(UInt8(ascii: "="))
        } else if rest == 2 {
            let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8
            out.append(table[Int(n >> 18 & 63)]); out.append(table[Int(n >> 12 & 63)])
            out.append(table[Int(n >> 6 & 63)]); out.append(UInt8(ascii: "="))
        }
    }
}

extension Array where Element == UInt8 {
    /// The UTF-8 of `s` appended, copied straight from the string's storage when it has one.
    @inlinable @inline(__always)
    package mutating func appendUTF8(_ s: String) {
        if s.utf8.withContiguousStorageIfAvailable({ append(contentsOf: $0) }) == nil { append(contentsOf: s.utf8) }
    }

    /// `s` appended when none of its bytes is `special` (one scan), and true; else false,
    /// nothing appended.
    /// Inlinable, so `special` is inlined into the scan in the renderers' module.
    @inlinable @inline(__always)
    package mutating func appendUTF8(_ s: String, unless special: (UInt8) -> Bool) -> Bool {
        if let plain = s.utf8.withContiguousStorageIfAvailable({ buffer -> Bool in
            if buffer.contains(where: special) { return false }
            append(contentsOf: buffer)
            return true
        }) {
            return plain
        }
        if s.utf8.contains(where: special) { return false }
        append(contentsOf: s.utf8)
        return true
    }
}

