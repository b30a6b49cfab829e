// RFC 4514 distinguished names: parsing and re-serialisation. Pure Swift, no libldap.

/// A DN string that does not parse, with the byte offset where it went wrong.
public struct DNParseError: Error, Sendable, CustomStringConvertible, Equatable {
    public var input: String
    /// Byte offset into the UTF-8 of `input`.
    public var offset: Int
    public var reason: String
    public var description: String { "invalid DN '\(input)' at byte \(offset): \(reason)" }
}

/// A distinguished name: a list of RDNs, most specific first (`uid=a,ou=people,dc=x`
/// has rdns `[[uid=a], [ou=people], [dc=x]]`). An RDN is one or more attribute value
/// assertions joined by `+`. Values are held unescaped.
///
/// Equality (`==`, `Hashable`) is exact; use `comparisonKey` to compare DNs the way a
/// directory would.
public struct DN: Sendable, Hashable, CustomStringConvertible {
    /// One attribute value assertion, `type=value`, value unescaped.
    public struct AVA: Sendable, Hashable {
        public var type: String
        public var value: String
        public init(type: String, value: String) {
            self.type = type
            self.value = value
        }
    }

    public var rdns: [[AVA]]

    public init(rdns: [[AVA]]) {
        self.rdns = rdns
    }

    /// Parses an RFC 4514 string. Accepts (leniently, like OpenLDAP) spaces around `,`,
    /// `+` and `=`, unescaped `;`, `<`, `>`, `"`, `=` and `#` inside a value, and `\`
    /// followed by any character. `#`-hex values (BER) are decoded when they hold a
    /// string type (OCTET STRING, UTF8String, PrintableString, IA5String, T61String).
    /// The empty string is the root DN (no RDNs).
    public init(parsing text: String) throws(DNParseError) {
        var parser = DNParser(text)
        self.rdns = try parser.parse()
    }

    /// RFC 4514 string with every value escaped (`DNEscaping.escapeValue`), types as given.
    public var string: String {
        rdns.map { rdn in rdn.map { "\($0.type)=\(DNEscaping.escapeValue($0.value))" }.joined(separator: "+") }
            .joined(separator: ",")
    }

    public var description: String { string }

    /// Types lowercased (ASCII), the AVAs of a multi-valued RDN sorted by type, values
    /// re-escaped, no spaces. Two spellings of the same DN with the same value case give
    /// the same text.
    public var normalized: String {
        rdns.map { rdn in
            rdn.map { AVA(type: $0.type.asciiLowercased, value: $0.value) }
                .sorted { ($0.type, $0.value) < ($1.type, $1.value) }
                .map { "\($0.type)=\(DNEscaping.escapeValue($0.value))" }
                .joined(separator: "+")
        }.joined(separator: ",")
    }

    /// The key to compare DNs as a directory does: `DNNormalizer.normalize` of `string`
    /// (types ASCII-lowercased, values case-folded).
    public var comparisonKey: String { DNNormalizer.normalize(string) }

    /// The value of the first RDN's AVA of type `type` (ASCII case ignored), or nil when the
    /// first RDN has no such AVA (`uid` of `uid=alice,ou=people` is `alice`).
    public func firstRDNValue(type: String) -> String? {
        rdns.first?.first { $0.type.caseInsensitiveEquals(type) }?.value
    }

    /// `(try? DN(parsing: text))?.firstRDNValue(type: type)`, without building the DN when
    /// the text is plain (what servers return for nearly every entry): printable ASCII with
    /// no space, escape, quote, `#`, `+` or `;`, every RDN `type=value` with a valid type.
    /// Anything else goes through the parser, so both give the same answer.
    public static func firstRDNValue(of text: String, type: String) -> String? {
        let plain = text.utf8.withContiguousStorageIfAvailable { bytes -> PlainFirstRDN in
            plainFirstRDN(bytes, type: type)
        }
        if case .value(let value)? = plain { return value }
        return (try? DN(parsing: text))?.firstRDNValue(type: type)
    }

    /// The DN without its first RDN; nil for the root DN.
    public var parent: DN? {
        rdns.isEmpty ? nil : DN(rdns: Array(rdns.dropFirst()))
    }

    /// The first RDN's first AVA (`uid=alice` of `uid=alice,ou=people,...`).
    public var first: AVA? { rdns.first?.first }

    /// A DN one level below this one: `type=value,self`. `value` is escaped on output.
    public func child(_ type: String, _ value: String) -> DN {
        DN(rdns: [[AVA(type: type, value: value)]] + rdns)
    }

    /// Whether this DN equals `base` or lies below it (compared by `comparisonKey`).
    public func isWithin(_ base: DN) -> Bool {
        guard rdns.count >= base.rdns.count else { return false }
        if base.rdns.isEmpty { return true }
        let tail = DN(rdns: Array(rdns.suffix(base.rdns.count)))
        return tail.comparisonKey == base.comparisonKey
    }
}

private struct DNParser {
    let input: String
    let bytes: [UInt8]
    var index = 0

    init(_ input: String) {
        self.input = input
        self.bytes = Array(input.utf8)
    }

    func fail(_ reason: String, at offset: Int? = nil) -> DNParseError {
        DNParseError(input: input, offset: offset ?? index, reason: reason)
    }

    var atEnd: Bool { index >= bytes.count }
    var current: UInt8? { index < bytes.count ? bytes[index] : nil }

    mutating func skipSpaces() {
        while let byte = current, byte == 0x20 { index += 1 }
    }

    mutating func parse() throws(DNParseError) -> [[DN.AVA]] {
        skipSpaces()
        if atEnd { return [] }
        var rdns: [[DN.AVA]] = []
        while true {
            rdns.append(try parseRDN())
            skipSpaces()
            guard let byte = current else { return rdns }
            // `,` separates RDNs; RFC 2253 also allowed `;`.
            guard byte == UInt8(ascii: ",") || byte == UInt8(ascii: ";") else {
                throw fail("expected ',' between RDNs")
            }
            index += 1
            skipSpaces()
            if atEnd { throw fail("empty RDN after ','") }
        }
    }

    mutating func parseRDN() throws(DNParseError) -> [DN.AVA] {
        var avas: [DN.AVA] = []
        while true {
            avas.append(try parseAVA())
            skipSpaces()
            guard current == UInt8(ascii: "+") else { return avas }
            index += 1
            skipSpaces()
        }
    }

    mutating func parseAVA() throws(DNParseError) -> DN.AVA {
        skipSpaces()
        let type = try parseType()
        skipSpaces()
        guard current == UInt8(ascii: "=") else { throw fail("expected '=' after attribute type '\(type)'") }
        index += 1
        skipSpaces()
        let value = current == UInt8(ascii: "#") ? try parseHexValue() : try parseStringValue()
        return DN.AVA(type: type, value: value)
    }

    /// descr (`ALPHA *(ALPHA / DIGIT / "-")`) or numericoid (`1.2.3`).
    mutating func parseType() throws(DNParseError) -> String {
        let start = index
        guard let first = current else { throw fail("expected an attribute type") }
        if isAlpha(first) {
            while let byte = current, isAlpha(byte) || isDigit(byte) || byte == UInt8(ascii: "-") { index += 1 }
        } else if isDigit(first) {
            while let byte = current, isDigit(byte) || byte == UInt8(ascii: ".") { index += 1 }
            if bytes[index - 1] == UInt8(ascii: ".") { throw fail("numeric OID ends with '.'", at: index - 1) }
        } else {
            throw fail("expected an attribute type")
        }
        return String(decoding: bytes[start..<index], as: UTF8.self)
    }

    mutating func parseStringValue() throws(DNParseError) -> String {
        var value: [UInt8] = []
        // Length of `value` up to the last byte that must be kept (not an unescaped
        // trailing space).
        var keep = 0
        let start = index
        while let byte = current {
            if byte == UInt8(ascii: ",") || byte == UInt8(ascii: "+") || byte == UInt8(ascii: ";") { break }
            if byte == UInt8(ascii: "\\") {
                index += 1
                guard let next = current else { throw fail("'\\' at the end of the DN", at: index - 1) }
                if let high = next.hexDigitValue {
                    guard index + 1 < bytes.count, let low = bytes[index + 1].hexDigitValue else {
                        throw fail("'\\' must be followed by two hex digits or a special character", at: index - 1)
                    }
                    value.append(high << 4 | low)
                    index += 2
                } else {
                    value.append(next)
                    index += 1
                }
                keep = value.count
                continue
            }
            value.append(byte)
            index += 1
            if byte != 0x20 { keep = value.count }
        }
        value.removeLast(value.count - keep)
        guard let text = String(validating: value, as: UTF8.self) else {
            throw fail("value is not valid UTF-8", at: start)
        }
        return text
    }

    /// `#` followed by the hex of a BER encoding (RFC 4514 2.4).
    mutating func parseHexValue() throws(DNParseError) -> String {
        let start = index
        index += 1
        var encoded: [UInt8] = []
        while let high = current?.hexDigitValue {
            guard index + 1 < bytes.count, let low = bytes[index + 1].hexDigitValue else {
                throw fail("odd number of hex digits")
            }
            encoded.append(high << 4 | low)
            index += 2
        }
        skipSpaces()
        if let byte = current, byte != UInt8(ascii: ","), byte != UInt8(ascii: "+"), byte != UInt8(ascii: ";") {
            throw fail("unexpected character in a '#' hex value")
        }
        guard encoded.count >= 2 else { throw fail("empty '#' hex value", at: start) }
        // Tag: OCTET STRING, UTF8String, PrintableString, T61String, IA5String.
        let tag = encoded[0]
        guard [0x04, 0x0C, 0x13, 0x14, 0x16].contains(tag) else {
            throw fail("'#' hex value with BER tag \(tag) is not a string", at: start)
        }
        var position = 1
        var length = 0
        let lengthByte = encoded[position]
        position += 1
        if lengthByte < 0x80 {
            length = Int(lengthByte)
        } else {
            let count = Int(lengthByte & 0x7F)
            guard count >= 1, count <= 4, position + count <= encoded.count else { throw fail("bad BER length", at: start) }
            for _ in 0..<count {
                length = length << 8 | Int(encoded[position])
                position += 1
            }
        }
        guard position + length == encoded.count else { throw fail("BER length does not match the value", at: start) }
        guard let text = String(validating: encoded[position...], as: UTF8.self) else {
            throw fail("'#' hex value is not valid UTF-8", at: start)
        }
        return text
    }
}

private enum PlainFirstRDN {
    case value(String?)
    case notPlain
}

/// The fast path of `DN.firstRDNValue(of:type:)`: checks the whole DN (a DN that would not
/// parse must not yield a value) and cuts the first value out of it.
private func plainFirstRDN(_ bytes: UnsafeBufferPointer<UInt8>, type: String) -> PlainFirstRDN {
    guard !bytes.isEmpty else { return .notPlain }
    var first: Range<Int>?
    var firstType: Range<Int>?
    var start = 0
    while start <= bytes.count {
        var end = start
        var equals = -1
        while end < bytes.count, bytes[end] != UInt8(ascii: ",") {
            let b = bytes[end]
            guard b > 0x20, b < 0x7F, b != UInt8(ascii: "\\"), b != UInt8(ascii: "#"), b != UInt8(ascii: "+"),
                  b != UInt8(ascii: ";"), b != UInt8(ascii: "\"") else { return .notPlain }
            if equals < 0, b == UInt8(ascii: "=") { equals = end }
            end += 1
        }
        guard equals > start, plainType(bytes, start..<equals) else { return .notPlain }
        if first == nil {
            firstType = start..<equals
            first = (equals + 1)..<end
        }
        if end == bytes.count { break }
        start = end + 1
        guard start < bytes.count else { return .notPlain }  // a trailing ','
    }
    guard let first, let firstType else { return .notPlain }
    let typeBytes = UnsafeBufferPointer(rebasing: bytes[firstType])
    guard String(decoding: typeBytes, as: UTF8.self).caseInsensitiveEquals(type) else { return .value(nil) }
    return .value(String(decoding: UnsafeBufferPointer(rebasing: bytes[first]), as: UTF8.self))
}

/// descr (`ALPHA *(ALPHA / DIGIT / "-")`) or numericoid, as `DNParser.parseType` takes them.
private func plainType(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Bool {
    let first = bytes[range.lowerBound]
    if isAlpha(first) {
        return bytes[range].allSatisfy { isAlpha($0) || isDigit($0) || $0 == UInt8(ascii: "-") }
    }
    guard isDigit(first), bytes[range.upperBound - 1] != UInt8(ascii: ".") else { return false }
    return bytes[range].allSatisfy { isDigit($0) || $0 == UInt8(ascii: ".") }
}

@inline(__always) private func isAlpha(_ b: UInt8) -> Bool { (b >= 65 && b <= 90) || (b >= 97 && b <= 122) }
@inline(__always) private func isDigit(_ b: UInt8) -> Bool { b >= 48 && b <= 57 }
