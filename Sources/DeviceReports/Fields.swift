// Typed reads of JSON members, tolerant where the real tools differ (osqueryi prints every
// value as a string, `--logger_numerics` and Fleet print numbers, NULL becomes "") and
// strict where a value cannot be right (a username that is a number, a uid "abc").

import TakeoverCore

struct FieldError: Error {
    var message: String
}

enum Fields {
    /// A string member; missing, null or "" -> nil. Numbers and booleans are wrong types.
    static func string(_ o: JSONObject, _ key: String) throws(FieldError) -> String? {
        guard let v = o[key] else { return nil }
        switch v {
        case .string(let s): return s.isEmpty ? nil : s
        case .null: return nil
        default: throw FieldError(message: "field '\(key)' must be a string, found \(v.kindName)")
        }
    }

    /// An integer given as a JSON number or as a string of digits; missing, null or "" -> nil.
    static func integer(_ o: JSONObject, _ key: String) throws(FieldError) -> Int64? {
        guard let v = o[key] else { return nil }
        switch v {
        case .null: return nil
        case .string(let s):
            if s.isEmpty { return nil }
            if let n = Timestamps.parseInteger(ArraySlice(s.utf8)) { return n }
            throw FieldError(message: "field '\(key)' must be an integer, found \(quoted(s))")
        case .number(let raw):
            if let n = Timestamps.parseInteger(ArraySlice(raw.utf8)) { return n }
            throw FieldError(message: "field '\(key)' must be an integer, found \(raw)")
        default:
            throw FieldError(message: "field '\(key)' must be an integer, found \(v.kindName)")
        }
    }

    /// A boolean given as true/false, 1/0, or the strings "true"/"false"/"1"/"0"/"yes"/"no".
    static func bool(_ o: JSONObject, _ key: String) throws(FieldError) -> Bool? {
        guard let v = o[key] else { return nil }
        switch v {
        case .null: return nil
        case .bool(let b): return b
        case .number(let raw):
            if raw == "1" { return true }
            if raw == "0" { return false }
            throw FieldError(message: "field '\(key)' must be a boolean (0 or 1), found \(raw)")
        case .string(let s):
            if s.isEmpty { return nil }
            if let b = parseBool(s) { return b }
            throw FieldError(message: "field '\(key)' must be a boolean, found \(quoted(s))")
        default:
            throw FieldError(message: "field '\(key)' must be a boolean, found \(v.kindName)")
        }
    }

    static func parseBool(_ s: String) -> Bool? {
        switch s.lowercased() {
        case "1", "true", "yes", "y", "t": return true
        case "0", "false", "no", "n", "f": return false
        default: return nil
        }
    }

    /// A value quoted for a message: escaped, and cut to 40 characters.
    static func quoted(_ s: String) -> String {
        var out = "\""
        var count = 0
        for scalar in s.unicodeScalars {
            if count == 40 { out += "…"; break }
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    out += "\\u{\(String(scalar.value, radix: 16))}"
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
            count += 1
        }
        return out + "\""
    }
}

/// The osquery `users` columns (also JumpCloud System Insights rows) -> LocalAccount.
enum OsqueryRows {
    /// Returns nil for a row with an empty username (Windows profiles whose SID did not
    /// resolve): nothing can match it by name.
    static func account(_ row: JSONObject) throws(FieldError) -> LocalAccount? {
        guard let nameValue = row["username"] else {
            throw FieldError(message: "row has no 'username' field")
        }
        guard case .string(let name) = nameValue else {
            throw FieldError(message: "field 'username' must be a string, found \(nameValue.kindName)")
        }
        if name.isEmpty { return nil }
        var uid = try Fields.integer(row, "uid")
        let uidSigned = try Fields.integer(row, "uid_signed")
        var sid: String?
        if let uuid = try Fields.string(row, "uuid"), uuid.utf8.starts(with: "S-1-".utf8) || uuid.utf8.starts(with: "s-1-".utf8) {
            sid = uuid.uppercased()
        }
        if uid == nil, let sid { uid = UIDs.rid(ofSID: sid) }
        let ids = UIDs.normalized(uid: uid, uidSigned: uidSigned)
        return LocalAccount(
            name: name,
            uid: ids.uid,
            uidSigned: ids.uidSigned,
            sid: sid,
            home: try Fields.string(row, "directory"),
            shell: try Fields.string(row, "shell"),
            fullName: try Fields.string(row, "description"),
            hidden: try Fields.bool(row, "is_hidden") ?? false,
            accountType: try Fields.string(row, "type")?.lowercased(),
            realUser: try Fields.bool(row, "real_user"),
            enabled: nil)
    }
}
