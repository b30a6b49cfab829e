// Bytes of a report file -> validated UTF-8 bytes.
//
// Accepted: UTF-8 with or without a BOM, UTF-16LE/BE with a BOM (Windows PowerShell 5.1
// writes UTF-16LE with a BOM). Everything else is an error naming the line: UTF-16
// without a BOM, binary data (NUL bytes), invalid UTF-8 (e.g. Latin-1 text).
// Nothing is ever silently repaired: a mangled account name would be a wrong name.

struct DecodingFailure: Error {
    var line: Int?
    var message: String
}

enum TextDecoding {
    /// Returns the file's text as UTF-8 bytes without a BOM, or a failure.
    static func utf8Bytes(_ bytes: [UInt8]) -> Result<[UInt8], DecodingFailure> {
        if bytes.count >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF {
            let rest = Array(bytes[3...])
            return validateUTF8(rest).map { rest }
        }
        if bytes.count >= 2, bytes[0] == 0xFF, bytes[1] == 0xFE {
            return transcodeUTF16(bytes, from: 2, littleEndian: true)
        }
        if bytes.count >= 2, bytes[0] == 0xFE, bytes[1] == 0xFF {
            return transcodeUTF16(bytes, from: 2, littleEndian: false)
        }
        // validateUTF8 also stops at a NUL byte (then nulFailure explains what the file is).
        return validateUTF8(bytes).map { bytes }
    }

    /// NUL bytes without a BOM: UTF-16 without a byte-order mark when the zeros fall
    /// regularly on one side of ASCII text, else binary data.
    private static func nulFailure(_ bytes: [UInt8], firstNUL: Int) -> DecodingFailure {
        let sample = min(bytes.count, 512) & ~1
        var zeroEven = 0, zeroOdd = 0
        var i = 0
        while i < sample {
            if bytes[i] == 0 { zeroEven += 1 }
            if bytes[i + 1] == 0 { zeroOdd += 1 }
            i += 2
        }
        let pairs = max(sample / 2, 1)
        if zeroOdd * 10 >= pairs * 7 && zeroEven * 10 <= pairs {
            return DecodingFailure(line: 1, message: "text looks like UTF-16LE without a byte-order mark; "
                + "save it as UTF-8, or as UTF-16 with a BOM (PowerShell: Out-File -Encoding utf8)")
        }
        if zeroEven * 10 >= pairs * 7 && zeroOdd * 10 <= pairs {
            return DecodingFailure(line: 1, message: "text looks like UTF-16BE without a byte-order mark; "
                + "save it as UTF-8, or as UTF-16 with a BOM")
        }
        return DecodingFailure(line: LineIndex(bytes).line(at: firstNUL),
                               message: "binary data (NUL byte at offset \(firstNUL)), not a text report")
    }

    /// Validates UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF).
    static func validateUTF8(_ bytes: [UInt8]) -> Result<Void, DecodingFailure> {
        let bad: Int? = bytes.withUnsafeBufferPointer { buf -> Int? in
            guard let base = buf.baseAddress else { return nil }
            let n = buf.count
            var i = 0
            while i < n {
                // ASCII fast path, eight bytes at a time.
                while i + 8 <= n {
                    let word = UnsafeRawPointer(base + i).loadUnaligned(as: UInt64.self)
                    let hasZero = (word &- 0x0101_0101_0101_0101) & ~word
                    if (word | hasZero) & 0x8080_8080_8080_8080 != 0 { break }
                    i += 8
                }
                if i >= n { break }
                let b0 = buf[i]
                if b0 == 0 { return i }
                if b0 < 0x80 { i += 1; continue }
                if b0 < 0xC2 { return i }
                if b0 < 0xE0 {
                    if i + 1 >= n || buf[i + 1] & 0xC0 != 0x80 { return i }
                    i += 2
                    continue
                }
                if b0 < 0xF0 {
                    if i + 2 >= n { return i }
                    let b1 = buf[i + 1], b2 = buf[i + 2]
                    if b1 & 0xC0 != 0x80 || b2 & 0xC0 != 0x80 { return i }
                    if b0 == 0xE0 && b1 < 0xA0 { return i }        // overlong
                    if b0 == 0xED && b1 >= 0xA0 { return i }       // surrogate
                    i += 3
                    continue
                }
                if b0 < 0xF5 {
                    if i + 3 >= n { return i }
                    let b1 = buf[i + 1], b2 = buf[i + 2], b3 = buf[i + 3]
                    if b1 & 0xC0 != 0x80 || b2 & 0xC0 != 0x80 || b3 & 0xC0 != 0x80 { return i }
                    if b0 == 0xF0 && b1 < 0x90 { return i }        // overlong
                    if b0 == 0xF4 && b1 >= 0x90 { return i }       // above U+10FFFF
                    i += 4
                    continue
                }
                return i
            }
            return nil
        }
        guard let offset = bad else { return .success(()) }
        if bytes[offset] == 0 { return .failure(nulFailure(bytes, firstNUL: offset)) }
        let byte = String(bytes[offset], radix: 16, uppercase: true)
        let hex = byte.count == 1 ? "0" + byte : byte
        return .failure(DecodingFailure(
            line: LineIndex(bytes).line(at: offset),
            message: "not valid UTF-8 (byte 0x\(hex) at offset \(offset)); the file may be Latin-1 or "
                + "Windows-1252: save it as UTF-8 (or UTF-16 with a BOM)"))
    }

    /// UTF-16 (after its BOM) -> UTF-8 bytes. Unpaired surrogates are an error.
    private static func transcodeUTF16(_ bytes: [UInt8], from start: Int, littleEndian: Bool) -> Result<[UInt8], DecodingFailure> {
        if (bytes.count - start) % 2 != 0 {
            // Report the line of the dangling byte after transcoding what precedes it.
            let line = countLinesUTF16(bytes, from: start, to: bytes.count - 1, littleEndian: littleEndian)
            return .failure(DecodingFailure(line: line, message: "UTF-16 text has an odd number of bytes (truncated file?)"))
        }
        var failure: DecodingFailure?
        let units = (bytes.count - start) / 2
        // One UTF-16 unit is at most 3 UTF-8 bytes (a surrogate pair, 2 units, is 4).
        let out = bytes.withUnsafeBufferPointer { src in
            [UInt8](unsafeUninitializedCapacity: units * 3 + 4) { dst, initialized in
                var o = 0
                var line = 1
                var i = start
                let n = src.count
                @inline(__always) func unit(_ at: Int) -> UInt32 {
                    littleEndian ? UInt32(src[at]) | UInt32(src[at + 1]) << 8 : UInt32(src[at]) << 8 | UInt32(src[at + 1])
                }
                while i + 1 < n {
                    // UTF-16LE (what PowerShell writes) four ASCII units at a time, while none
                    // of them is NUL (the unit-by-unit path below reports that).
                    if littleEndian, let base = src.baseAddress {
                        let ones: UInt64 = 0x0001_0001_0001_0001, highs: UInt64 = 0x8000_8000_8000_8000
                        while i + 8 <= n {
                            let w = UInt64(littleEndian: UnsafeRawPointer(base + i).loadUnaligned(as: UInt64.self))
                            // Every unit below 0x80, then none zero (exact per lane: no borrow crosses one).
                            guard w & 0xFF80_FF80_FF80_FF80 == 0, ~((w | highs) &- ones) & highs == 0 else { break }
                            let newlines = w ^ (ones &* 0x0A)
                            line += (~((newlines | highs) &- ones) & highs).nonzeroBitCount
                            dst[o] = UInt8(truncatingIfNeeded: w)
                            dst[o + 1] = UInt8(truncatingIfNeeded: w >> 16)
                            dst[o + 2] = UInt8(truncatingIfNeeded: w >> 32)
                            dst[o + 3] = UInt8(truncatingIfNeeded: w >> 48)
                            o += 4
                            i += 8
                        }
                        guard i + 1 < n else { break }
                    }
                    var scalar = unit(i)
                    i += 2
                    if scalar < 0x80 {
                        if scalar == 0 {
                            failure = DecodingFailure(line: line, message: "binary data (NUL character), not a text report")
                            break
                        }
                        if scalar == 0x0A { line += 1 }
                        dst[o] = UInt8(scalar)
                        o += 1
                        continue
                    }
                    if scalar >= 0xD800 && scalar <= 0xDBFF {
                        guard i + 1 < n else {
                            failure = DecodingFailure(line: line, message: "UTF-16 text ends inside a surrogate pair (truncated file?)")
                            break
                        }
                        let low = unit(i)
                        guard low >= 0xDC00 && low <= 0xDFFF else {
                            failure = DecodingFailure(line: line, message: "invalid UTF-16: unpaired high surrogate")
                            break
                        }
                        i += 2
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if scalar >= 0xDC00 && scalar <= 0xDFFF {
                        failure = DecodingFailure(line: line, message: "invalid UTF-16: unpaired low surrogate")
                        break
                    }
                    if scalar < 0x800 {
                        dst[o] = UInt8(0xC0 | (scalar >> 6))
                        dst[o + 1] = UInt8(0x80 | (scalar & 0x3F))
                        o += 2
                    } else if scalar < 0x10000 {
                        dst[o] = UInt8(0xE0 | (scalar >> 12))
                        dst[o + 1] = UInt8(0x80 | ((scalar >> 6) & 0x3F))
                        dst[o + 2] = UInt8(0x80 | (scalar & 0x3F))
                        o += 3
                    } else {
                        dst[o] = UInt8(0xF0 | (scalar >> 18))
                        dst[o + 1] = UInt8(0x80 | ((scalar >> 12) & 0x3F))
                        dst[o + 2] = UInt8(0x80 | ((scalar >> 6) & 0x3F))
                        dst[o + 3] = UInt8(0x80 | (scalar & 0x3F))
                        o += 4
                    }
                }
                initialized = o
            }
        }
        if let failure { return .failure(failure) }
        return .success(out)
    }

    private static func countLinesUTF16(_ bytes: [UInt8], from start: Int, to end: Int, littleEndian: Bool) -> Int {
        var line = 1
        var i = start
        while i + 1 < end {
            let isNewline = littleEndian ? (bytes[i] == 0x0A && bytes[i + 1] == 0) : (bytes[i] == 0 && bytes[i + 1] == 0x0A)
            if isNewline { line += 1 }
            i += 2
        }
        return line
    }

    static func appendUTF8(_ scalar: UInt32, to out: inout [UInt8]) {
        switch scalar {
        case 0..<0x80:
            out.append(UInt8(scalar))
        case 0x80..<0x800:
            out.append(UInt8(0xC0 | (scalar >> 6)))
            out.append(UInt8(0x80 | (scalar & 0x3F)))
        case 0x800..<0x10000:
            out.append(UInt8(0xE0 | (scalar >> 12)))
            out.append(UInt8(0x80 | ((scalar >> 6) & 0x3F)))
            out.append(UInt8(0x80 | (scalar & 0x3F)))
        default:
            out.append(UInt8(0xF0 | (scalar >> 18)))
            out.append(UInt8(0x80 | ((scalar >> 12) & 0x3F)))
            out.append(UInt8(0x80 | ((scalar >> 6) & 0x3F)))
            out.append(UInt8(0x80 | (scalar & 0x3F)))
        }
    }
}

/// Byte offset -> 1-based line number, built once on first use (errors are rare).
struct LineIndex {
    private var newlines: [Int] = []

    init(_ bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { buf in
            for i in 0..<buf.count where buf[i] == 0x0A { newlines.append(i) }
        }
    }

    /// The line holding the byte at `offset` (a newline belongs to the line it ends).
    func line(at offset: Int) -> Int {
        var lo = 0, hi = newlines.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if newlines[mid] < offset { lo = mid + 1 } else { hi = mid }
        }
        return lo + 1
    }
}
