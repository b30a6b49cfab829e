// Typed reads of JSON members, tolerant where the real tools differ (osqueryi prints every
// value as a string, `--logger_numerics` and Fleet print numbers, NULL becomes "") and
// strict where a value cannot be right (a username that is a number, a uid "abc").

import TakeoverCore

struct FieldError: Error {
    var message: String
}

/// One JSON object of a report with typed reads of its members.
struct Row {
    let doc: JSONDocument
    let object: JSONObject

    var offset: Int { object.offset }

    subscript(key: StaticString) -> JSONValue? { doc.member(object, key) }

    func has(_ key: StaticString) -> Bool { doc.has(object, key) }

    func text(_ t: JSONText) -> String { doc.string(t) }

    /// A string member; missing, null or "" -> nil. Numbers and booleans are wrong types.
    func string(_ key: StaticString) throws(FieldError) -> String? { try doc.stringField(self[key], key) }

    /// A non-empty string member, or nil when it is missing, null, "" or not a string.
    func optionalString(_ key: StaticString) -> String? {
        if case .string(let t)? = self[key], !doc.isEmpty(t) { return doc.string(t) }
        return nil
    }

    /// An integer given as a JSON number or as a string of digits; missing, null or "" -> nil.
    func integer(_ key: StaticString) throws(FieldError) -> Int64? { try doc.integerField(self[key], key) }

    /// A boolean given as true/false, 1/0, or the strings "true"/"false"/"1"/"0"/"yes"/"no".
    func bool(_ key: StaticString) throws(FieldError) -> Bool? { try doc.boolField(self[key], key) }
}

/// Typed reads of one member's value (`key` names it in messages); `Row` and
/// `OsqueryColumns` both read through these.
extension JSONDocument {
    func stringField(_ v: JSONValue?, _ key: StaticString) throws(FieldError) -> String? {
        guard let v else { return nil }
        switch v {
        case .string(let t): return isEmpty(t) ? nil : string(t)
        case .null: return nil
        default: throw FieldError(message: "field '\(key)' must be a string, found \(v.kindName)")
        }
    }

    func integerField(_ v: JSONValue?, _ key: StaticString) throws(FieldError) -> Int64? {
        guard let v else { return nil }
        switch v {
        case .null: return nil
        case .string(let t), .number(let t):
            if isEmpty(t) { return nil }
            if let n = withBytes(t, { Timestamps.parseInteger($0) }) { return n }
            let shown = { () -> String in if case .string = v { return Fields.quoted(string(t)) } else { return string(t) } }()
            throw FieldError(message: "field '\(key)' must be an integer, found \(shown)")
        default:
            throw FieldError(message: "field '\(key)' must be an integer, found \(v.kindName)")
        }
    }

    func boolField(_ v: JSONValue?, _ key: StaticString) throws(FieldError) -> Bool? {
        guard let v else { return nil }
        switch v {
        case .null: return nil
        case .bool(let b): return b
        case .number(let t):
            let raw = string(t)
            if raw == "1" { return true }
            if raw == "0" { return false }
            throw FieldError(message: "field '\(key)' must be a boolean (0 or 1), found \(raw)")
        case .string(let t):
            if isEmpty(t) { return nil }
            // osqueryi prints is_hidden as "0"/"1": answer those without making a String.
            if t.end - t.start == 1, !t.hasEscapes {
                if buf[t.start] == UInt8(ascii: "0") { return false }
                if buf[t.start] == UInt8(ascii: "1") { return true }
            }
            let s = string(t)
            if let b = Fields.parseBool(s) { return b }
            throw FieldError(message: "field '\(key)' must be a boolean, found \(Fields.quoted(s))")
        default:
            throw FieldError(message: "field '\(key)' must be a boolean, found \(v.kindName)")
        }
    }
}

/// The members of an osquery `users` row that `OsqueryRows.account` reads, found in one
/// pass over the row instead of one search per member. Each is the row's first member of
/// that name, as `Row[key]` answers (escaped member names decoded).
struct OsqueryColumns {
    var username, uid, uidSigned, uuid, directory, shell, description, isHidden, type, realUser: JSONValue?
    /// JumpCloud System Insights adds these.
    var systemID, collectionTime: JSONValue?

    /// No column yet (`take` fills them).
    init() {}

    init(_ row: Row) {
        let doc = row.doc
        for m in doc.members(row.object) {
            if m.key.hasEscapes {
                var name = doc.string(m.key)
                name.withUTF8 { take($0, m.value) }
            } else {
                take(UnsafeBufferPointer(rebasing: doc.buf[m.key.start..<max(m.key.start, m.key.end)]), m.value)
            }
        }
    }

    mutating func take(_ k: UnsafeBufferPointer<UInt8>, _ v: JSONValue) {
        @inline(__always) func first(_ slot: inout JSONValue?) { if slot == nil { slot = v } }
        switch k.count {
        case 3: if Self.equal(k, "uid") { first(&uid) }
        case 4: if Self.equal(k, "uuid") { first(&uuid) } else if Self.equal(k, "type") { first(&type) }
        case 5: if Self.equal(k, "shell") { first(&shell) }
        case 8: if Self.equal(k, "username") { first(&username) }
        case 9:
            if Self.equal(k, "directory") { first(&directory) }
            else if Self.equal(k, "is_hidden") { first(&isHidden) }
            else if Self.equal(k, "real_user") { first(&realUser) }
            else if Self.equal(k, "system_id") { first(&systemID) }
        case 10: if Self.equal(k, "uid_signed") { first(&uidSigned) }
        case 11: if Self.equal(k, "description") { first(&description) }
        case 15: if Self.equal(k, "collection_time") { first(&collectionTime) }
        default: break
        }
    }

    /// The username when it is a non-empty string, as `Row.optionalString("username")`.
    func username(in doc: JSONDocument) -> String? {
        if case .string(let t)? = username, !doc.isEmpty(t) { return doc.string(t) }
        return nil
    }

    static func equal(_ k: UnsafeBufferPointer<UInt8>, _ name: StaticString) -> Bool {
        let n = name.utf8CodeUnitCount
        guard k.count == n else { return false }
        let p = name.utf8Start
        for i in 0..<n where k[i] != p[i] { return false }
        return true
    }
}

enum Fields {
    static func parseBool(_ s: String) -> Bool? {
        switch s.lowercased() {
        case "1", "true", "yes", "y", "t": return true
        case "0", "false", "no", "n", "f": return false
        default: return nil
        }
    }

    /// A value quoted for a message: escaped (`TerminalText.quoted`), and cut to 40 characters.
    static func quoted(_ s: String) -> String {
        TerminalText.quoted(s, limit: 40)
    }
}

/// The osquery `users` columns (also JumpCloud System Insights rows) -> LocalAccount.
enum OsqueryRows {
    /// Returns nil for a row with an empty username (Windows profiles whose SID did not
    /// resolve): nothing can match it by name.
    /// `c`: the row's columns (`doc` holds the text they point into).
    static func account(_ c: OsqueryColumns, doc: JSONDocument) throws(FieldError) -> LocalAccount? {
        guard let nameValue = c.username else {
            throw FieldError(message: "row has no 'username' field")
        }
        guard case .string(let nameText) = nameValue else {
            throw FieldError(message: "field 'username' must be a string, found \(nameValue.kindName)")
        }
        if doc.isEmpty(nameText) { return nil }
        let name = doc.string(nameText)
        var uid = try doc.integerField(c.uid, "uid")
        let uidSigned = try doc.integerField(c.uidSigned, "uid_signed")
        // uuid is the SID on Windows, a GeneratedUID on macOS (not kept), "" on Linux.
        var sid: String?
        switch c.uuid {
        case .string(let t)?:
            if t.end - t.start > 4, doc.withBytes(t, { SIDs.looksLikeSID($0) }) { sid = SIDs.normalized(doc.string(t)) }
        case nil, .null?: break
        case let other?: throw FieldError(message: "field 'uuid' must be a string, found \(other.kindName)")
        }
        if uid == nil, let sid { uid = UIDs.rid(ofSID: sid) }
        let ids = UIDs.normalized(uid: uid, uidSigned: uidSigned)
        return LocalAccount(
            name: name,
            uid: ids.uid,
            uidSigned: ids.uidSigned,
            sid: sid,
            home: try doc.stringField(c.directory, "directory"),
            shell: try doc.stringField(c.shell, "shell"),
            fullName: try doc.stringField(c.description, "description"),
            hidden: try doc.boolField(c.isHidden, "is_hidden") ?? false,
            accountType: try doc.stringField(c.type, "type").map(SIDs.lowercasedIfNeeded),
            realUser: try doc.boolField(c.realUser, "real_user"),
            enabled: nil)
    }
}

enum SIDs {
    /// Starts with "S-1-" (any case).
    static func looksLikeSID<C: Collection>(_ b: C) -> Bool where C.Element == UInt8 {
        var it = b.makeIterator()
        guard let s = it.next(), s == UInt8(ascii: "S") || s == UInt8(ascii: "s") else { return false }
        return it.next() == UInt8(ascii: "-") && it.next() == UInt8(ascii: "1") && it.next() == UInt8(ascii: "-")
    }

    /// SIDs are written with a capital S; a lowercase one is normalised.
    static func normalized(_ sid: String) -> String {
        sid.utf8.first == UInt8(ascii: "s") ? sid.uppercased() : sid
    }

    static func lowercasedIfNeeded(_ s: String) -> String {
        s.utf8.contains(where: { $0 >= 0x41 && $0 <= 0x5A || $0 >= 0x80 }) ? s.lowercased() : s
    }
}
