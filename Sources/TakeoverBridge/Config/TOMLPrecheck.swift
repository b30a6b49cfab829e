// A structural lexer run before the TOML parser, so a malformed file is reported, never aborts.

// MARK: - TOML pre-check

/// A structural check run before the TOML parser. toml++ 3.4 (inside TOMLKit) asserts
/// instead of reporting an error on some malformed keys (for example a table header
/// `[{x]`), which would abort the process on a broken config. This lexer walks the
/// statements, keys, strings, arrays and inline tables of TOML 1.0 and reports the
/// first malformed one with its line; what it accepts, the real parser then checks fully.
struct TOMLPrecheck {
    let bytes: [UInt8]
    var i = 0
    var line = 1
    /// Where each table header ("ldap") and key ("ldap.uri") first appears.
    var lines: [String: Int] = [:]
    var section: [String] = []
    /// How many arrays and inline tables enclose the current value.
    var depth = 0
    /// Deeper nesting is refused: the lexer (and the parser after it) recurse once per level,
    /// and a config has no use for more than a few.
    static let maxDepth = 64

    struct Failure: Error {
        var line: Int
        var message: String
    }

    init(_ text: String) {
        bytes = Array(text.utf8)
    }

    var atEnd: Bool { i >= bytes.count }
    var current: UInt8 { i < bytes.count ? bytes[i] : 0 }

    func peek(_ offset: Int) -> UInt8 { i + offset < bytes.count ? bytes[i + offset] : 0 }

    func fail(_ message: String) -> Failure { Failure(line: line, message: message) }

    static func isBareKey(_ b: UInt8) -> Bool {
        (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39) || b == 0x5F || b == 0x2D
    }

    mutating func skipSpaces() {
        while !atEnd, current == 0x20 || current == 0x09 { i += 1 }
    }

    mutating func skipComment() {
        if current == UInt8(ascii: "#") {
            while !atEnd, current != 0x0A { i += 1 }
        }
    }

    /// Spaces, comments and newlines (between statements and inside arrays).
    mutating func skipBlank() {
        while !atEnd {
            switch current {
            case 0x20, 0x09, 0x0D: i += 1
            case 0x0A: i += 1; line += 1
            case UInt8(ascii: "#"): skipComment()
            default: return
            }
        }
    }

    mutating func endOfLine(after what: String) throws(Failure) {
        skipSpaces()
        skipComment()
        if atEnd { return }
        if current == 0x0D && peek(1) == 0x0A { i += 1 }
        guard current == 0x0A else { throw fail("unexpected text after \(what)") }
        i += 1
        line += 1
    }

    mutating func document() throws(Failure) {
        while true {
            skipBlank()
            if atEnd { return }
            if current == UInt8(ascii: "[") {
                i += 1
                let array = current == UInt8(ascii: "[")
                if array { i += 1 }
                let headerLine = line
                section = try key(in: "table header")
                record(section, headerLine)
                guard current == UInt8(ascii: "]") else { throw fail("a table header must end with ']'") }
                i += 1
                if array {
                    guard current == UInt8(ascii: "]") else { throw fail("an array-of-tables header must end with ']]'") }
                    i += 1
                }
                try endOfLine(after: "the table header")
            } else {
                try keyValue(prefix: section)
                try endOfLine(after: "the value")
            }
        }
    }

    mutating func record(_ path: [String], _ at: Int) {
        let name = path.joined(separator: ".")
        if lines[name] == nil { lines[name] = at }
    }

    /// A dotted key's parts (quoted parts without their quotes; escapes kept as written).
    mutating func key(in context: String) throws(Failure) -> [String] {
        var parts: [String] = []
        while true {
            skipSpaces()
            let start = i
            if Self.isBareKey(current) {
                while Self.isBareKey(current) { i += 1 }
                parts.append(String(decoding: bytes[start..<i], as: UTF8.self))
            } else if current == UInt8(ascii: "\"") {
                try basicString()
                parts.append(String(decoding: bytes[(start + 1)..<(i - 1)], as: UTF8.self))
            } else if current == UInt8(ascii: "'") {
                try literalString()
                parts.append(String(decoding: bytes[(start + 1)..<(i - 1)], as: UTF8.self))
            } else {
                throw fail("invalid key in \(context): use letters, digits, '_' and '-', or quote it")
            }
            skipSpaces()
            guard current == UInt8(ascii: ".") else { return parts }
            guard parts.count < Self.maxDepth else { throw fail("a dotted key has more than \(Self.maxDepth) parts") }
            i += 1
        }
    }

    mutating func keyValue(prefix: [String]) throws(Failure) {
        let keyLine = line
        let path = prefix + (try key(in: "key = value"))
        record(path, keyLine)
        guard current == UInt8(ascii: "=") else { throw fail("expected '=' after the key") }
        i += 1
        skipSpaces()
        try value(path: path)
    }

    mutating func basicString() throws(Failure) {
        i += 1
        while true {
            guard !atEnd, current != 0x0A else { throw fail("unterminated string") }
            if current == UInt8(ascii: "\\") { i += 2; continue }
            if current == UInt8(ascii: "\"") { i += 1; return }
            i += 1
        }
    }

    mutating func literalString() throws(Failure) {
        i += 1
        while true {
            guard !atEnd, current != 0x0A else { throw fail("unterminated string") }
            if current == UInt8(ascii: "'") { i += 1; return }
            i += 1
        }
    }

    mutating func multilineString(quote: UInt8) throws(Failure) {
        let start = line
        i += 3
        while true {
            guard !atEnd else { throw Failure(line: start, message: "unterminated multi-line string") }
            if current == 0x0A { line += 1 }
            if quote == UInt8(ascii: "\"") && current == UInt8(ascii: "\\") {
                i += 1
                if current == 0x0A { line += 1 }
                i += 1
                continue
            }
            if current == quote && peek(1) == quote && peek(2) == quote {
                i += 3
                var extra = 0
                while current == quote && extra < 2 { i += 1; extra += 1 }
                return
            }
            i += 1
        }
    }

    mutating func value(path: [String]) throws(Failure) {
        let nests = current == UInt8(ascii: "[") || current == UInt8(ascii: "{")
        if nests {
            guard depth < Self.maxDepth else {
                throw fail("arrays and inline tables are nested more than \(Self.maxDepth) deep")
            }
            depth += 1
        }
        defer { if nests { depth -= 1 } }
        switch current {
        case UInt8(ascii: "\""):
            if peek(1) == current && peek(2) == current { try multilineString(quote: current) } else { try basicString() }
        case UInt8(ascii: "'"):
            if peek(1) == current && peek(2) == current { try multilineString(quote: current) } else { try literalString() }
        case UInt8(ascii: "["):
            i += 1
            while true {
                skipBlank()
                if current == UInt8(ascii: "]") { i += 1; return }
                guard !atEnd else { throw fail("unterminated array") }
                try value(path: path)
                skipBlank()
                if current == UInt8(ascii: ",") { i += 1; continue }
                if current == UInt8(ascii: "]") { i += 1; return }
                throw fail("expected ',' or ']' in the array")
            }
        case UInt8(ascii: "{"):
            i += 1
            skipSpaces()
            if current == UInt8(ascii: "}") { i += 1; return }
            while true {
                try keyValue(prefix: path)
                skipSpaces()
                if current == UInt8(ascii: ",") { i += 1; continue }
                if current == UInt8(ascii: "}") { i += 1; return }
                throw fail("expected ',' or '}' in the inline table")
            }
        default:
            // Numbers, booleans, dates: the parser checks their form.
            let start = i
            while !atEnd {
                let b = current
                if b == 0x20 || b == 0x09 {
                    // "1979-05-27 07:32:00": a date and a time separated by one space.
                    if i - start == 10, bytes[start + 4] == UInt8(ascii: "-"), (0x30...0x39).contains(peek(1)) {
                        i += 1
                        continue
                    }
                    break
                }
                if b == 0x0A || b == 0x0D || b == UInt8(ascii: ",") || b == UInt8(ascii: "]") || b == UInt8(ascii: "}")
                    || b == UInt8(ascii: "#") {
                    break
                }
                i += 1
            }
            if i == start { throw fail("missing value") }
        }
    }
}
