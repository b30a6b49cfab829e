// Public value types of the LDAP client. Everything here is plain data; only
// LDAPConnection touches libldap.

import LDAPSyntax

/// A failed LDAP operation, as a value. Never holds a password.
public struct LDAPError: Error, Sendable, CustomStringConvertible {
    /// LDAP result code (RFC 4511) or libldap's negative API code (-1 server down, -5 timeout ...).
    public var code: LDAPResultCode
    /// What failed: connect, bind, starttls, whoami, search, add, delete, modify, write.
    public var operation: LDAPOperation
    /// libldap's text for `code` (`ldap_err2string`).
    public var message: String
    /// The server's diagnostic text, when it sent one, or libldap's detail for local
    /// failures (TLS, SASL, options).
    public var diagnostic: String?
    public var matchedDN: String?
    /// Referral URIs when `code == .referral`.
    public var referrals: [String]
    /// The DN the operation was about.
    public var dn: String?
    /// For `writePipelined`/`modifyPipelined`: the index of the first request whose outcome is unknown.
    public var firstUnknownIndex: Int?
    /// For `writePipelined`/`modifyPipelined` when the connection is lost: one element per
    /// request, the result the server sent, or nil where the outcome is unknown (never
    /// sent, or sent and not answered). Lets the caller redo only the unknown requests.
    public var partialResults: [Result<Void, LDAPError>?]?
    /// The change was already in place: 20 attributeOrValueExists on a value add,
    /// 16 noSuchAttribute on a value delete, 68 entryAlreadyExists on an entry add,
    /// 32 noSuchObject on an entry delete.
    public var isAlreadyDone: Bool

    public init(code: LDAPResultCode, operation: LDAPOperation, message: String, diagnostic: String? = nil,
                matchedDN: String? = nil, referrals: [String] = [], dn: String? = nil,
                firstUnknownIndex: Int? = nil, isAlreadyDone: Bool = false) {
        self.code = code
        self.operation = operation
        self.message = message
        self.diagnostic = diagnostic
        self.matchedDN = matchedDN
        self.referrals = referrals
        self.dn = dn
        self.firstUnknownIndex = firstUnknownIndex
        self.isAlreadyDone = isAlreadyDone
    }

    /// Server down (-1), connect error (-11), timeout (-5): the connection cannot be
    /// trusted any more and the outcome of the operation is unknown.
    public var isConnectionLost: Bool {
        code == .serverDown || code == .connectError || code == .timeout
    }

    /// One line: `search of 'ou=people,dc=example,dc=org' failed: Size limit exceeded (4);
    /// diagnostic: ...; matched: ...; referrals: ...`. Holds no password (none is ever stored).
    public var description: String {
        var text = operation.rawValue
        if let dn, !dn.isEmpty { text += " of '\(dn)'" }
        text += " failed: \(message) (\(code.rawValue))"
        if let diagnostic, !diagnostic.isEmpty { text += "; diagnostic: \(diagnostic)" }
        if let matchedDN, !matchedDN.isEmpty { text += "; matched: '\(matchedDN)'" }
        if !referrals.isEmpty { text += "; referrals: \(referrals.joined(separator: " "))" }
        if let firstUnknownIndex { text += "; outcome unknown from request #\(firstUnknownIndex)" }
        return text.replacingNewlines()
    }
}

/// `LDAP_OPT_X_TLS_REQUIRE_CERT` values (ldap.conf `TLS_REQCERT`).
public enum TLSRequireCert: String, Sendable {
    case never, allow, `try`, demand, hard
}

/// A password. Prints as `<redacted>` everywhere.
public struct Secret: Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    public let value: String
    public init(_ value: String) { self.value = value }
    public var description: String { "<redacted>" }
    public var debugDescription: String { "<redacted>" }
}

public struct LDAPConnectionOptions: Sendable {
    /// One URI, or several separated by spaces (libldap tries them in order).
    public var uri: String
    public var startTLS: Bool
    public var tlsRequireCert: TLSRequireCert
    public var tlsCACertFile: String?
    public var tlsCertFile: String?
    public var tlsKeyFile: String?
    /// Seconds, for the network connect and for each operation.
    public var timeout: Double

    public init(uri: String, startTLS: Bool = false, tlsRequireCert: TLSRequireCert = .demand,
                tlsCACertFile: String? = nil, tlsCertFile: String? = nil, tlsKeyFile: String? = nil,
                timeout: Double = 30) {
        self.uri = uri
        self.startTLS = startTLS
        self.tlsRequireCert = tlsRequireCert
        self.tlsCACertFile = tlsCACertFile
        self.tlsCertFile = tlsCertFile
        self.tlsKeyFile = tlsKeyFile
        self.timeout = timeout
    }
}

extension LDAPConnectionOptions {
    /// True when a simple bind over these options would send the password unencrypted
    /// to a machine that may not be this one: no StartTLS and at least one `ldap://` URI
    /// whose host is not loopback, or names no host (`LDAPURI.cleartextExposure`, the rule
    /// the configuration uses too). `ldaps://` and `ldapi://` are safe.
    public var sendsPasswordsInCleartext: Bool {
        if startTLS { return false }
        return LDAPURI.split(uri).contains { LDAPURI.cleartextExposure($0) != nil }
    }
}

public enum LDAPCredentials: Sendable {
    case anonymous
    case simple(dn: String, password: Secret)
    case sasl(mechanism: String, authcID: String? = nil, password: Secret? = nil, realm: String? = nil, authzID: String? = nil)
}

public enum SearchScope: Sendable {
    case base, one, sub
}

/// One attribute value: the exact bytes, with a checked UTF-8 view. Valid UTF-8 (nearly
/// every value) is kept as its `String`, which holds exactly those bytes: a short value then
/// needs no allocation at all, and reading it as text copies nothing.
public struct LDAPValue: Sendable, Hashable {
    private enum Storage: Sendable, Hashable {
        case text(String)
        case binary([UInt8])
    }
    private let storage: Storage

    public init(bytes: [UInt8]) {
        storage = bytes.withUnsafeBytes(LDAPValue.text).map(Storage.text) ?? .binary(bytes)
    }
    public init(_ string: String) { storage = .text(string) }
    /// The bytes of a libldap value (copied).
    init(_ bytes: UnsafeRawBufferPointer) {
        storage = LDAPValue.text(bytes).map(Storage.text) ?? .binary(Array(bytes))
    }

    /// `bytes` as a `String` when they are valid UTF-8, else nil: the answer of
    /// `String(validating:as:)`. ASCII (nearly every directory value) is recognised eight
    /// bytes at a time and copied straight into the string; any other value goes through
    /// `String(validating:as:)` itself (whose generic validation costs a metadata lookup
    /// per call, measurable at a value per attribute per entry).
    static func text(_ bytes: UnsafeRawBufferPointer) -> String? {
        if isASCII(bytes) { return String(decoding: bytes, as: UTF8.self) }
        return String(validating: bytes, as: UTF8.self)
    }

    /// Whether every byte is below 0x80 (empty: true).
    static func isASCII(_ bytes: UnsafeRawBufferPointer) -> Bool {
        let count = bytes.count
        var index = 0
        var high: UInt64 = 0
        while index + 8 <= count {
            high |= bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            index += 8
        }
        while index < count {
            high |= UInt64(bytes[index])
            index += 1
        }
        return high & 0x8080_8080_8080_8080 == 0
    }

    public var bytes: [UInt8] {
        switch storage {
        case .text(let text): Array(text.utf8)
        case .binary(let bytes): bytes
        }
    }
    /// How many bytes the value has.
    public var count: Int {
        switch storage {
        case .text(let text): text.utf8.count
        case .binary(let bytes): bytes.count
        }
    }
    /// The value as text; nil when the bytes are not valid UTF-8.
    public var string: String? {
        if case .text(let text) = storage { return text }
        return nil
    }
}

public struct LDAPEntry: Sendable {
    public var dn: String
    /// Attributes in the order the server sent them.
    public var attributes: [(name: String, values: [LDAPValue])]
    /// Ranged value lists (`member;range=0-1499`) that could not be read whole: left out
    /// of `attributes` (see RangedValues.swift). A reader must treat them as unknown.
    public var incompleteAttributes: [IncompleteAttribute] = []
    public init(dn: String, attributes: [(name: String, values: [LDAPValue])]) {
        self.dn = dn
        self.attributes = attributes
    }
    /// Values of the attribute whose name equals `name` ignoring ASCII case (options included literally).
    public func values(_ name: String) -> [LDAPValue] {
        var found: [LDAPValue] = []
        forEachValue(name) { found.append($0) }
        return found
    }
    /// `values(name)` one by one, without gathering them into an array (the read path).
    /// By index: the attributes are looked at in place, not copied out (and retained) one by one.
    public func forEachValue(_ name: String, _ body: (LDAPValue) throws -> Void) rethrows {
        for index in attributes.indices where attributes[index].name.caseInsensitiveEquals(name) {
            for value in attributes[index].values { try body(value) }
        }
    }
    /// The first value of `name` (UTF-8 or not): `values(name).first`, without the array.
    public func firstValue(_ name: String) -> LDAPValue? {
        for index in attributes.indices where attributes[index].name.caseInsensitiveEquals(name) {
            if let value = attributes[index].values.first { return value }
        }
        return nil
    }
    /// The UTF-8 values of `name`; non-UTF-8 values are left out.
    public func strings(_ name: String) -> [String] {
        values(name).compactMap(\.string)
    }
    /// The first UTF-8 value of `name`.
    public func first(_ name: String) -> String? {
        for index in attributes.indices where attributes[index].name.caseInsensitiveEquals(name) {
            for value in attributes[index].values {
                if let string = value.string { return string }
            }
        }
        return nil
    }
    /// Whether the entry has the attribute (any values).
    public func has(_ name: String) -> Bool {
        attributes.contains { $0.name.caseInsensitiveEquals(name) }
    }
}

public struct SearchResult: Sendable {
    /// Entries handed to the handler.
    public var entries: Int
    /// Search requests sent (1 for an unpaged search).
    public var pages: Int
    /// Search continuation references (RFC 4511 4.5.3) the server returned instead of
    /// entries: parts of the tree held elsewhere. Referral chasing is off, so a caller
    /// that needs every entry must treat a non-empty list as incomplete results.
    public var references: [String]
    public init(entries: Int, pages: Int, references: [String] = []) {
        self.entries = entries
        self.pages = pages
        self.references = references
    }
}

public enum ModOp: Sendable {
    case add, delete
}

/// One value-level change. `.delete` with no values deletes the whole attribute.
public struct Modification: Sendable {
    public var op: ModOp
    public var attribute: String
    public var values: [String]
    public init(_ op: ModOp, _ attribute: String, _ values: [String]) {
        self.op = op
        self.attribute = attribute
        self.values = values
    }
}

public struct ModifyRequest: Sendable {
    public var dn: String
    public var modifications: [Modification]
    public init(dn: String, modifications: [Modification]) {
        self.dn = dn
        self.modifications = modifications
    }
}

/// One request of `LDAPConnection.writePipelined`.
public enum WriteRequest: Sendable {
    /// A value-level modify, judged as `LDAPConnection.modify` judges it.
    case modify(ModifyRequest)
    /// An entry add; an existing entry fails with 68 and `isAlreadyDone`, as `LDAPConnection.add`.
    case add(dn: String, attributes: [(String, [String])])

    public var dn: String {
        switch self {
        case .modify(let request): request.dn
        case .add(let dn, _): dn
        }
    }
}

extension String {
    /// Keeps error text on one line.
    func replacingNewlines() -> String {
        guard contains(where: \.isNewline) else { return self }
        return String(map { $0.isNewline ? " " : $0 })
    }
}
