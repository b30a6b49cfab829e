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
    func string(_ key: StaticString) throws(FieldError) -> String? {
        guard let v = self[key] else { return nil }
        switch v {
        case .string(let t): return doc.isEmpty(t) ? nil : doc.string(t)
        case .null: return nil
        default: throw FieldError(message: "field '\(key)' must be a string, found \(v.kindName)")
        }
    }

    /// A non-empty string member, or nil when it is missing, null, "" or not a string.
    func optionalString(_ key: StaticString) -> String? {
        if case .string(let t)? = self[key], !doc.isEmpty(t) { return doc.string(t) }
        return nil
    }

    /// An integer given as a JSON number or as a string of digits; missing, null or "" -> nil.
    func integer(_ key: StaticString) throws(FieldError) -> Int64? {
        guard let v = self[key] else { return nil }
        switch v {
        case .null: return nil
        case .string(let t), .number(let t):
            if doc.isEmpty(t) { return nil }
            if let n = doc.withBytes(t, { Timestamps.parseInteger($0) }) { return n }
            let shown = { () -> String in if case .string = v { return Fields.quoted(doc.string(t)) } else { return doc.string(t) } }()
            throw FieldError(message: "field '\(key)' must be an integer, found \(shown)")
        default:
            throw FieldError(message: "field '\(key)' must be an integer, found \(v.kindName)")
        }
    }

    /// A boolean given as true/false, 1/0, or the strings "true"/"false"/"1"/"0"/"yes"/"no".
    func bool(_ key: StaticString) throws(FieldError) -> Bool? {
        guard let v = self[key] else { return nil }
        switch v {
        case .null: return nil
        case .bool(let b): return b
        case .number(let t):
            let raw = doc.string(t)
            if raw == "1" { return true }
            if raw == "0" { return false }
            throw FieldError(message: "field '\(key)' must be a boolean (0 or 1), found \(raw)")
        case .string(let t):
            if doc.isEmpty(t) { return nil }
            // osqueryi prints is_hidden as "0"/"1": answer those without making a String.
            if t.end - t.start == 1, !t.hasEscapes {
                if doc.buf[t.start] == UInt8(ascii: "0") { return false }
                if doc.buf[t.start] == UInt8(ascii: "1") { return true }
            }
            let s = doc.string(t)
            if let b = Fields.parseBool(s) { return b }
            throw FieldError(message: "field '\(key)' must be a boolean, found \(Fields.quoted(s))")
        default:
            throw FieldError(message: "field '\(key)' must be a boolean, found \(v.kindName)")
        }
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
    static func account(_ row: Row) throws(FieldError) -> LocalAccount? {
        guard let nameValue = row["username"] else {
            throw FieldError(message: "row has no 'username' field")
        }
        guard case .string(let nameText) = nameValue else {
            throw FieldError(message: "field 'username' must be a string, found \(nameValue.kindName)")
        }
        if row.doc.isEmpty(nameText) { return nil }
        let name = row.text(nameText)
        var uid = try row.integer("uid")
        let uidSigned = try row.integer("uid_signed")
        // uuid is the SID on Windows, a GeneratedUID on macOS (not kept), "" on Linux.
        var sid: String?
        switch row["uuid"] {
        case .string(let t)?:
            if t.end - t.start > 4, row.doc.withBytes(t, { SIDs.looksLikeSID($0) }) { sid = SIDs.normalized(row.text(t)) }
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
            home: try row.string("directory"),
            shell: try row.string("shell"),
            fullName: try row.string("description"),
            hidden: try row.bool("is_hidden") ?? false,
            accountType: try row.string("type").map(SIDs.lowercasedIfNeeded),
            realUser: try row.bool("real_user"),
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
