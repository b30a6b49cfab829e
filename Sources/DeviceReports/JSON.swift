// A small, fast JSON reader (RFC 8259) over UTF-8 bytes that were validated already.
//
// Why not JSONSerialization: it is several times slower on a million rows, turns numbers
// into doubles (a uid must stay exact), and reports no usable error position. This reader
// keeps number text as written, keeps object members in order, reports errors by byte
// offset (turned into a line by the caller), caps nesting depth instead of overflowing
// the stack, and never traps on any input.

enum JSONValue: Sendable, Equatable {
    case object(JSONObject)
    case array([JSONValue])
    case string(String)
    /// The number exactly as written (grammar-checked).
    case number(String)
    case bool(Bool)
    case null

    var object: JSONObject? {
        if case .object(let o) = self { return o }
        return nil
    }

    /// A short description of the kind, for "must be a string, found an array" messages.
    var kindName: String {
        switch self {
        case .object: return "an object"
        case .array: return "an array"
        case .string: return "a string"
        case .number: return "a number"
        case .bool: return "a boolean"
        case .null: return "null"
        }
    }
}

struct JSONMember: Sendable, Equatable {
    var key: String
    var value: JSONValue
}

struct JSONObject: Sendable, Equatable {
    var members: [JSONMember]
    /// Byte offset of the opening brace in the parsed text (for line numbers).
    var offset: Int

    /// The first member named `key` (exact match; objects here have few keys).
    subscript(key: String) -> JSONValue? {
        for member in members where member.key == key { return member.value }
        return nil
    }

    func has(_ key: String) -> Bool { self[key] != nil }
}

struct JSONParseError: Error, Equatable {
    /// Byte offset where the problem was found.
    var offset: Int
    var message: String
}

struct JSONParser {
    private let buf: UnsafeBufferPointer<UInt8>
    private(set) var position: Int
    private let maxDepth: Int

    /// Hard ceiling on nesting whatever the caller asks: recursion stays far from any stack limit.
    static let depthCeiling = 256

    init(_ buffer: UnsafeBufferPointer<UInt8>, position: Int = 0, maxDepth: Int) {
        self.buf = buffer
        self.position = position
        self.maxDepth = max(1, min(maxDepth, JSONParser.depthCeiling))
    }

    var atEnd: Bool { position >= buf.count }

    /// Moves to `offset` (clamped to the text), e.g. to resynchronise after an error.
    mutating func seek(to offset: Int) { position = max(0, min(offset, buf.count)) }

    /// The byte at the current position, or nil at the end.
    var current: UInt8? { position < buf.count ? buf[position] : nil }

    mutating func skipWhitespace() {
        while position < buf.count {
            switch buf[position] {
            case 0x20, 0x09, 0x0A, 0x0D: position += 1
            default: return
            }
        }
    }

    /// Skips spaces and tabs only; returns true when the rest of the line is blank.
    mutating func restOfLineIsBlank() -> Bool {
        while position < buf.count {
            switch buf[position] {
            case 0x20, 0x09, 0x0D: position += 1
            case 0x0A: return true
            default: return false
            }
        }
        return true
    }

    /// Moves past the next newline (or to the end): resynchronises line-oriented input after an error.
    mutating func skipPastNewline() {
        while position < buf.count {
            let b = buf[position]
            position += 1
            if b == 0x0A { return }
        }
    }

    /// Parses one whole document: a value with nothing but whitespace after it.
    mutating func parseDocument() throws(JSONParseError) -> JSONValue {
        skipWhitespace()
        let value = try parseValue(depth: 0)
        skipWhitespace()
        if position < buf.count {
            throw JSONParseError(offset: position, message: "unexpected \(describe(position)) after the end of the JSON value")
        }
        return value
    }

    /// Parses one value at the current position (after optional whitespace).
    mutating func parseValue(depth: Int) throws(JSONParseError) -> JSONValue {
        skipWhitespace()
        guard position < buf.count else {
            throw JSONParseError(offset: position, message: "unexpected end of input, expected a value (truncated JSON?)")
        }
        switch buf[position] {
        case UInt8(ascii: "{"): return .object(try parseObject(depth: depth + 1))
        case UInt8(ascii: "["): return try parseArray(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try parseNumber())
        default:
            throw JSONParseError(offset: position, message: "unexpected \(describe(position)), expected a JSON value")
        }
    }

    private mutating func parseObject(depth: Int) throws(JSONParseError) -> JSONObject {
        let start = position
        if depth > maxDepth {
            throw JSONParseError(offset: position, message: "JSON nested deeper than \(maxDepth) levels")
        }
        position += 1
        var members: [JSONMember] = []
        skipWhitespace()
        if position < buf.count, buf[position] == UInt8(ascii: "}") {
            position += 1
            return JSONObject(members: members, offset: start)
        }
        while true {
            skipWhitespace()
            guard position < buf.count else {
                throw JSONParseError(offset: position, message: "unexpected end of input inside an object (truncated JSON?)")
            }
            guard buf[position] == UInt8(ascii: "\"") else {
                throw JSONParseError(offset: position, message: "unexpected \(describe(position)), expected a quoted member name")
            }
            let key = try parseString()
            skipWhitespace()
            guard position < buf.count, buf[position] == UInt8(ascii: ":") else {
                throw JSONParseError(offset: position, message: "unexpected \(describe(position)), expected ':' after member name")
            }
            position += 1
            let value = try parseValue(depth: depth)
            members.append(JSONMember(key: key, value: value))
            skipWhitespace()
            guard position < buf.count else {
                throw JSONParseError(offset: position, message: "unexpected end of input inside an object (truncated JSON?)")
            }
            let b = buf[position]
            position += 1
            if b == UInt8(ascii: ",") { continue }
            if b == UInt8(ascii: "}") { return JSONObject(members: members, offset: start) }
            throw JSONParseError(offset: position - 1, message: "unexpected \(describe(position - 1)), expected ',' or '}' in an object")
        }
    }

    private mutating func parseArray(depth: Int) throws(JSONParseError) -> JSONValue {
        if depth > maxDepth {
            throw JSONParseError(offset: position, message: "JSON nested deeper than \(maxDepth) levels")
        }
        position += 1
        var elements: [JSONValue] = []
        skipWhitespace()
        if position < buf.count, buf[position] == UInt8(ascii: "]") {
            position += 1
            return .array(elements)
        }
        while true {
            elements.append(try parseValue(depth: depth))
            skipWhitespace()
            guard position < buf.count else {
                throw JSONParseError(offset: position, message: "unexpected end of input inside an array (truncated JSON?)")
            }
            let b = buf[position]
            position += 1
            if b == UInt8(ascii: ",") { continue }
            if b == UInt8(ascii: "]") { return .array(elements) }
            throw JSONParseError(offset: position - 1, message: "unexpected \(describe(position - 1)), expected ',' or ']' in an array")
        }
    }

    private mutating func literal(_ word: StaticString) throws(JSONParseError) {
        let count = word.utf8CodeUnitCount
        let start = word.utf8Start
        for i in 0..<count {
            guard position + i < buf.count, buf[position + i] == start[i] else {
                if position + i >= buf.count {
                    throw JSONParseError(offset: position + i, message: "unexpected end of input (truncated JSON?)")
                }
                throw JSONParseError(offset: position, message: "invalid literal, expected '\(word)'")
            }
        }
        position += count
    }

    private mutating func parseNumber() throws(JSONParseError) -> String {
        let start = position
        if buf[position] == UInt8(ascii: "-") { position += 1 }
        guard position < buf.count, isDigit(buf[position]) else {
            throw JSONParseError(offset: position, message: "invalid number: expected a digit")
        }
        if buf[position] == UInt8(ascii: "0") {
            position += 1
            if position < buf.count, isDigit(buf[position]) {
                throw JSONParseError(offset: start, message: "invalid number: leading zero")
            }
        } else {
            while position < buf.count, isDigit(buf[position]) { position += 1 }
        }
        if position < buf.count, buf[position] == UInt8(ascii: ".") {
            position += 1
            guard position < buf.count, isDigit(buf[position]) else {
                throw JSONParseError(offset: position, message: "invalid number: expected a digit after '.'")
            }
            while position < buf.count, isDigit(buf[position]) { position += 1 }
        }
        if position < buf.count, buf[position] == UInt8(ascii: "e") || buf[position] == UInt8(ascii: "E") {
            position += 1
            if position < buf.count, buf[position] == UInt8(ascii: "+") || buf[position] == UInt8(ascii: "-") { position += 1 }
            guard position < buf.count, isDigit(buf[position]) else {
                throw JSONParseError(offset: position, message: "invalid number: expected a digit in the exponent")
            }
            while position < buf.count, isDigit(buf[position]) { position += 1 }
        }
        return String(decoding: UnsafeBufferPointer(rebasing: buf[start..<position]), as: UTF8.self)
    }

    private func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }

    /// Parses a string at the opening quote. Fast path: no escapes, one copy.
    private mutating func parseString() throws(JSONParseError) -> String {
        let open = position
        position += 1
        let start = position
        while position < buf.count {
            let b = buf[position]
            if b == UInt8(ascii: "\"") {
                let s = String(decoding: UnsafeBufferPointer(rebasing: buf[start..<position]), as: UTF8.self)
                position += 1
                return s
            }
            if b == UInt8(ascii: "\\") { return try parseEscapedString(open: open, start: start) }
            if b < 0x20 { throw controlCharacter(b, open: open) }
            position += 1
        }
        throw JSONParseError(offset: open, message: "unterminated string (truncated JSON?)")
    }

    private func controlCharacter(_ b: UInt8, open: Int) -> JSONParseError {
        if b == 0x0A || b == 0x0D {
            return JSONParseError(offset: open, message: "string not closed before the end of the line")
        }
        return JSONParseError(offset: position, message: "unescaped control character 0x\(hex2(b)) in a string")
    }

    private mutating func parseEscapedString(open: Int, start: Int) throws(JSONParseError) -> String {
        var out: [UInt8] = Array(UnsafeBufferPointer(rebasing: buf[start..<position]))
        while position < buf.count {
            let b = buf[position]
            if b == UInt8(ascii: "\"") {
                position += 1
                return String(decoding: out, as: UTF8.self)
            }
            if b < 0x20 { throw controlCharacter(b, open: open) }
            if b != UInt8(ascii: "\\") {
                out.append(b)
                position += 1
                continue
            }
            let escapeAt = position
            position += 1
            guard position < buf.count else { break }
            let e = buf[position]
            position += 1
            switch e {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5C)
            case UInt8(ascii: "/"): out.append(0x2F)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4(escapeAt: escapeAt)
                if scalar >= 0xD800 && scalar <= 0xDBFF {
                    guard position + 1 < buf.count, buf[position] == UInt8(ascii: "\\"), buf[position + 1] == UInt8(ascii: "u") else {
                        throw JSONParseError(offset: escapeAt, message: "invalid \\u escape: high surrogate without a following low surrogate")
                    }
                    position += 2
                    let low = try hex4(escapeAt: position - 2)
                    guard low >= 0xDC00 && low <= 0xDFFF else {
                        throw JSONParseError(offset: escapeAt, message: "invalid \\u escape: high surrogate followed by a non-low-surrogate")
                    }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if scalar >= 0xDC00 && scalar <= 0xDFFF {
                    throw JSONParseError(offset: escapeAt, message: "invalid \\u escape: unpaired low surrogate")
                }
                TextDecoding.appendUTF8(scalar, to: &out)
            default:
                throw JSONParseError(offset: escapeAt, message: "invalid escape sequence '\\\(printable(e))' in a string")
            }
        }
        throw JSONParseError(offset: open, message: "unterminated string (truncated JSON?)")
    }

    private mutating func hex4(escapeAt: Int) throws(JSONParseError) -> UInt32 {
        guard position + 4 <= buf.count else {
            throw JSONParseError(offset: escapeAt, message: "truncated \\u escape (truncated JSON?)")
        }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let c = buf[position]
            let digit: UInt32
            switch c {
            case 0x30...0x39: digit = UInt32(c - 0x30)
            case 0x41...0x46: digit = UInt32(c - 0x41 + 10)
            case 0x61...0x66: digit = UInt32(c - 0x61 + 10)
            default:
                throw JSONParseError(offset: escapeAt, message: "invalid \\u escape: expected four hex digits")
            }
            value = value << 4 | digit
            position += 1
        }
        return value
    }

    /// "'x'" for printable ASCII, "byte 0xNN" otherwise, "end of input" past the end.
    func describe(_ at: Int) -> String {
        guard at < buf.count else { return "end of input" }
        let b = buf[at]
        if b >= 0x20 && b < 0x7F { return "'\(printable(b))'" }
        return "byte 0x\(hex2(b))"
    }

    private func printable(_ b: UInt8) -> String {
        b >= 0x20 && b < 0x7F ? String(UnicodeScalar(b)) : "0x" + hex2(b)
    }
}

func hex2(_ b: UInt8) -> String {
    let digits = Array("0123456789ABCDEF")
    return String(digits[Int(b >> 4)]) + String(digits[Int(b & 0xF)])
}
