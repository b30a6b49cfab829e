// A small, fast JSON reader (RFC 8259) over UTF-8 bytes that were validated already.
//
// Why not JSONSerialization: it is several times slower on a million rows, turns numbers
// into doubles (a uid must stay exact), and reports no usable error position. This reader
// keeps number text as written, keeps object members in order, reports errors by byte
// offset (turned into a line by the caller), caps nesting depth instead of overflowing
// the stack, and never traps on any input.

/// A string or number as it appears in the text: a byte range, decoded only on demand.
/// Most members of a report row are never read (PowerShell prints ~15 per account), so
/// not making a String of each one is most of this reader's speed.
struct JSONText: Sendable, Equatable {
    /// Byte range of the content (inside the quotes for strings).
    var start: Int
    var end: Int
    /// The string holds backslash escapes: decode before use.
    var hasEscapes: Bool
}

enum JSONValue: Sendable, Equatable {
    case object(JSONObject)
    case array(JSONArray)
    case string(JSONText)
    /// The number exactly as written (grammar-checked).
    case number(JSONText)
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
    var key: JSONText
    var value: JSONValue
}

/// An object: its members are `count` consecutive entries of the document's member store.
/// Values hold no references, so passing them around costs no reference counting.
struct JSONObject: Sendable, Equatable {
    var start: Int32
    var count: Int32
    /// Byte offset of the opening brace in the parsed text (for line numbers).
    var offset: Int
}

/// An array: `count` consecutive entries of the document's element store.
struct JSONArray: Sendable, Equatable {
    var start: Int32
    var count: Int32
}

/// Where the members and elements of every object and array of one parse are kept.
struct JSONStorage {
    var members: [JSONMember] = []
    var elements: [JSONValue] = []
}

/// Memory one thread reuses from file to file while it reads the reports folder.
/// Not shared between threads: each worker of `ReportsFolder.read` makes its own.
final class ParseScratch {
    /// The JSON stores of the last parse, kept for the next one unless they grew past
    /// `keptBytes` (one huge file must not pin its memory for the rest of the read).
    private var json = JSONStorage()
    static let keptBytes = 8 << 20

    init() {}

    /// The kept stores (the scratch holds none until they are given back).
    func takeJSON() -> JSONStorage {
        var taken = JSONStorage()
        swap(&taken, &json)
        return taken
    }

    /// Long values already shared by earlier files (`ReportBuilder.shared`).
    private var shared = SharedValues()

    func takeShared() -> SharedValues {
        var taken = SharedValues()
        swap(&taken, &shared)
        return taken
    }

    func giveBack(shared values: SharedValues) { shared = values }

    /// The rows of the last osqueryi array read from the bytes (`JSONParser.osqueryRows`),
    /// kept for the next one under the same cap as the JSON stores.
    private var rows: [OsqueryRow] = []

    func takeRows() -> [OsqueryRow] {
        var taken: [OsqueryRow] = []
        swap(&taken, &rows)
        return taken
    }

    func giveBack(rows given: [OsqueryRow]) {
        if given.capacity * MemoryLayout<OsqueryRow>.stride <= ParseScratch.keptBytes { rows = given }
    }

    func giveBack(_ storage: JSONStorage) {
        let bytes = storage.members.capacity * MemoryLayout<JSONMember>.stride
            + storage.elements.capacity * MemoryLayout<JSONValue>.stride
        if bytes <= ParseScratch.keptBytes { json = storage }
    }
}

/// The parsed text and its value stores, needed to read what values refer to.
/// Only valid inside `JSONStorage.withDocument` (it holds unsafe views).
struct JSONDocument {
    let buf: UnsafeBufferPointer<UInt8>
    let memberStore: UnsafeBufferPointer<JSONMember>
    let elementStore: UnsafeBufferPointer<JSONValue>

    func members(_ o: JSONObject) -> UnsafeBufferPointer<JSONMember> {
        UnsafeBufferPointer(rebasing: memberStore[Int(o.start)..<Int(o.start) + Int(o.count)])
    }

    func elements(_ a: JSONArray) -> UnsafeBufferPointer<JSONValue> {
        UnsafeBufferPointer(rebasing: elementStore[Int(a.start)..<Int(a.start) + Int(a.count)])
    }

    /// The first member named `key` (compared byte for byte; escaped names decoded).
    func member(_ o: JSONObject, _ key: StaticString) -> JSONValue? {
        let count = key.utf8CodeUnitCount
        let k = key.utf8Start
        for m in members(o) {
            if m.key.hasEscapes {
                if string(m.key).utf8.elementsEqual(UnsafeBufferPointer(start: k, count: count)) { return m.value }
                continue
            }
            guard m.key.end - m.key.start == count else { continue }
            var i = 0
            while i < count, buf[m.key.start + i] == k[i] { i += 1 }
            if i == count { return m.value }
        }
        return nil
    }

    func has(_ o: JSONObject, _ key: StaticString) -> Bool { member(o, key) != nil }

    /// The decoded string (or the number's text).
    func string(_ t: JSONText) -> String {
        guard t.start < t.end else { return "" }
        let raw = UnsafeBufferPointer(rebasing: buf[t.start..<t.end])
        guard t.hasEscapes else { return String(decoding: raw, as: UTF8.self) }
        return String(decoding: JSONParser.unescape(raw), as: UTF8.self)
    }

    /// The raw bytes of a string without escapes, or its decoded bytes.
    func withBytes<R>(_ t: JSONText, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        let raw = UnsafeBufferPointer(rebasing: buf[t.start..<max(t.start, t.end)])
        guard t.hasEscapes else { return body(raw) }
        return JSONParser.unescape(raw).withUnsafeBufferPointer(body)
    }

    func isEmpty(_ t: JSONText) -> Bool { t.end <= t.start }
}

extension JSONStorage {
    /// Runs `body` with a document over `buf` and these stores.
    func withDocument<R>(_ buf: UnsafeBufferPointer<UInt8>, _ body: (JSONDocument) -> R) -> R {
        members.withUnsafeBufferPointer { m in
            elements.withUnsafeBufferPointer { e in
                body(JSONDocument(buf: buf, memberStore: m, elementStore: e))
            }
        }
    }
}

struct JSONParseError: Error, Equatable {
    /// Byte offset where the problem was found.
    var offset: Int
    var message: String
}

struct JSONParser {
    let buf: UnsafeBufferPointer<UInt8>
    var position: Int
    let maxDepth: Int
    /// Members and elements of every finished object and array, in one place each.
    private(set) var storage = JSONStorage()
    /// Members and elements of objects and arrays still open (a stack; nested ones on top).
    private var openMembers: [JSONMember] = []
    private var openElements: [JSONValue] = []

    /// Hard ceiling on nesting whatever the caller asks: recursion stays far from any stack limit.
    static let depthCeiling = 256

    /// `reusing`: the stores of an earlier parse, emptied and filled again (their memory is
    /// reused: a fresh store for every file costs a page fault per 4 KiB written).
    init(_ buffer: UnsafeBufferPointer<UInt8>, position: Int = 0, maxDepth: Int, reusing: JSONStorage = JSONStorage()) {
        self.buf = buffer
        self.position = position
        self.maxDepth = max(1, min(maxDepth, JSONParser.depthCeiling))
        storage = reusing
        storage.members.removeAll(keepingCapacity: true)
        storage.elements.removeAll(keepingCapacity: true)
        storage.members.reserveCapacity(buffer.count / 24)
        storage.elements.reserveCapacity(64)
    }

    /// Hands the stores over (for `reusing` in the next parse); the parser is left empty.
    mutating func takeStorage() -> JSONStorage {
        var taken = JSONStorage()
        swap(&taken, &storage)
        return taken
    }

    var atEnd: Bool { position >= buf.count }

    /// Moves to `offset` (clamped to the text), e.g. to resynchronise after an error.
    mutating func seek(to offset: Int) { position = max(0, min(offset, buf.count)) }

    /// The byte at the current position, or nil at the end.
    var current: UInt8? {
        @inline(__always) get { position < buf.count ? buf[position] : nil }
    }

    @inline(__always)
    mutating func skipWhitespace() {
        while position < buf.count {
            switch buf[position] {
            case 0x20, 0x09, 0x0A, 0x0D: position += 1
            default: return
            }
        }
    }

    /// True when the current line's first non-blank character opens an object.
    func lineStartsObject() -> Bool {
        var i = position
        while i < buf.count, buf[i] == 0x20 || buf[i] == 0x09 { i += 1 }
        return i < buf.count && buf[i] == UInt8(ascii: "{")
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
        let base = openMembers.count
        // An error unwinds every open level: the caller stops using this parse, but the
        // parser resynchronises on the next value, so leave the stack as it was.
        defer { openMembers.removeSubrange(base...) }
        skipWhitespace()
        if position < buf.count, buf[position] == UInt8(ascii: "}") {
            position += 1
            return try closeObject(base: base, offset: start)
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
            openMembers.append(JSONMember(key: key, value: value))
            skipWhitespace()
            guard position < buf.count else {
                throw JSONParseError(offset: position, message: "unexpected end of input inside an object (truncated JSON?)")
            }
            let b = buf[position]
            position += 1
            if b == UInt8(ascii: ",") { continue }
            if b == UInt8(ascii: "}") { return try closeObject(base: base, offset: start) }
            throw JSONParseError(offset: position - 1, message: "unexpected \(describe(position - 1)), expected ',' or '}' in an object")
        }
    }

    /// Moves an object's members from the open stack to the store.
    private mutating func closeObject(base: Int, offset: Int) throws(JSONParseError) -> JSONObject {
        let (start, count) = try Self.move(openMembers[base...], to: &storage.members, offset: offset)
        return JSONObject(start: start, count: count, offset: offset)
    }

    /// Appends a closed container's values to the store; where they start and how many.
    private static func move<T>(_ values: ArraySlice<T>, to store: inout [T], offset: Int)
        throws(JSONParseError) -> (start: Int32, count: Int32) {
        let start = store.count
        guard start + values.count < Int(Int32.max) else {
            throw JSONParseError(offset: offset, message: "too many JSON values in one file")
        }
        store.append(contentsOf: values)
        return (Int32(start), Int32(values.count))
    }

    private mutating func parseArray(depth: Int) throws(JSONParseError) -> JSONValue {
        if depth > maxDepth {
            throw JSONParseError(offset: position, message: "JSON nested deeper than \(maxDepth) levels")
        }
        let open = position
        position += 1
        let base = openElements.count
        defer { openElements.removeSubrange(base...) }
        skipWhitespace()
        if position < buf.count, buf[position] == UInt8(ascii: "]") {
            position += 1
            return .array(try closeArray(base: base, offset: open))
        }
        while true {
            let element = try parseValue(depth: depth)
            openElements.append(element)
            skipWhitespace()
            guard position < buf.count else {
                throw JSONParseError(offset: position, message: "unexpected end of input inside an array (truncated JSON?)")
            }
            let b = buf[position]
            position += 1
            if b == UInt8(ascii: ",") { continue }
            if b == UInt8(ascii: "]") { return .array(try closeArray(base: base, offset: open)) }
            throw JSONParseError(offset: position - 1, message: "unexpected \(describe(position - 1)), expected ',' or ']' in an array")
        }
    }

    private mutating func closeArray(base: Int, offset: Int) throws(JSONParseError) -> JSONArray {
        let (start, count) = try Self.move(openElements[base...], to: &storage.elements, offset: offset)
        return JSONArray(start: start, count: count)
    }

    mutating func literal(_ word: StaticString) throws(JSONParseError) {
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

    mutating func parseNumber() throws(JSONParseError) -> JSONText {
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
        return JSONText(start: start, end: position, hasEscapes: false)
    }

    private func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }

    /// Checks a string at the opening quote and returns its content range; escapes are
    /// validated here and decoded by `unescape` when the value is read.
    mutating func parseString() throws(JSONParseError) -> JSONText {
        let open = position
        position += 1
        let start = position
        var escapes = false
        while position < buf.count {
            // Eight bytes at a time while none is '"', '\\' or a control character; then
            // straight to the first one that is (the lowest flagged byte is exact: a borrow
            // can only flag bytes after a true hit).
            if let base = buf.baseAddress {
                while position + 8 <= buf.count {
                    let w = UInt64(littleEndian: UnsafeRawPointer(base + position).loadUnaligned(as: UInt64.self))
                    let ones: UInt64 = 0x0101_0101_0101_0101, highs: UInt64 = 0x8080_8080_8080_8080
                    let q = w ^ (ones &* 0x22), bs = w ^ (ones &* 0x5C)
                    let special = (((q &- ones) & ~q) | ((bs &- ones) & ~bs) | ((w &- ones &* 0x20) & ~w)) & highs
                    if special != 0 {
                        position += special.trailingZeroBitCount >> 3
                        break
                    }
                    position += 8
                }
            }
            guard position < buf.count else { break }
            let b = buf[position]
            if b == UInt8(ascii: "\"") {
                position += 1
                return JSONText(start: start, end: position - 1, hasEscapes: escapes)
            }
            if b == UInt8(ascii: "\\") {
                escapes = true
                try checkEscape()
                continue
            }
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

    /// Validates one escape at the backslash and moves past it.
    private mutating func checkEscape() throws(JSONParseError) {
        let escapeAt = position
        position += 1
        guard position < buf.count else {
            throw JSONParseError(offset: escapeAt, message: "unterminated string (truncated JSON?)")
        }
        let e = buf[position]
        position += 1
        switch e {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
             UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
            return
        case UInt8(ascii: "u"):
            let scalar = try hex4(escapeAt: escapeAt)
            if scalar >= 0xD800 && scalar <= 0xDBFF {
                guard position + 1 < buf.count, buf[position] == UInt8(ascii: "\\"), buf[position + 1] == UInt8(ascii: "u") else {
                    throw JSONParseError(offset: escapeAt, message: "invalid \\u escape: high surrogate without a following low surrogate")
                }
                position += 2
                let low = try hex4(escapeAt: position - 2)
                guard low >= 0xDC00 && low <= 0xDFFF else {
                    throw JSONParseError(offset: escapeAt, message: "invalid \\u escape: high surrogate followed by a non-low-surrogate")
                }
            } else if scalar >= 0xDC00 && scalar <= 0xDFFF {
                throw JSONParseError(offset: escapeAt, message: "invalid \\u escape: unpaired low surrogate")
            }
        default:
            throw JSONParseError(offset: escapeAt, message: "invalid escape sequence '\\\(printable(e))' in a string")
        }
    }

    /// Decodes the content of a string that `parseString` validated.
    static func unescape(_ raw: UnsafeBufferPointer<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(raw.count)
        var i = 0
        func hex(_ at: Int) -> UInt32 {
            var v: UInt32 = 0
            for k in at..<min(at + 4, raw.count) {
                let c = raw[k]
                let d: UInt32 = c >= 0x61 ? UInt32(c) - 0x61 + 10 : c >= 0x41 ? UInt32(c) - 0x41 + 10 : UInt32(c) &- 0x30
                v = v << 4 | (d & 0xF)
            }
            return v
        }
        while i < raw.count {
            let b = raw[i]
            guard b == UInt8(ascii: "\\"), i + 1 < raw.count else {
                out.append(b)
                i += 1
                continue
            }
            let e = raw[i + 1]
            i += 2
            switch e {
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = hex(i)
                i += 4
                if scalar >= 0xD800 && scalar <= 0xDBFF, i + 6 <= raw.count, raw[i] == UInt8(ascii: "\\") {
                    let low = hex(i + 2)
                    i += 6
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low &- 0xDC00)
                }
                TextDecoding.appendUTF8(scalar, to: &out)
            default: out.append(e)   // \" \\ \/
            }
        }
        return out
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
