// JSON report formats: osqueryi --json arrays, JumpCloud System Insights users,
// PowerShell Get-LocalUser | ConvertTo-Json, and (dispatched to OsquerydLog) osqueryd
// result logs. The format is decided by the members of the objects, never by file name.

import TakeoverCore

enum JSONReports {
    /// `text` starts (after whitespace) with '[' or '{'. `fastPath`: false reads an osqueryi
    /// array as a tree too (tests compare the two).
    static func read(_ text: [UInt8], into b: inout ReportBuilder, limits: ReportLimits, scratch: ParseScratch? = nil,
                     fastPath: Bool = true) {
        text.withUnsafeBufferPointer { buf in
            var p = JSONParser(buf, maxDepth: limits.maxJSONDepth, reusing: scratch?.takeJSON() ?? JSONStorage())
            defer { if let scratch { scratch.giveBack(p.takeStorage()) } }
            p.skipWhitespace()
            var values: [JSONValue] = []
            var isArray = false
            if p.current == UInt8(ascii: "[") {
                // The common osqueryi array straight from the bytes; anything else as a tree.
                let start = p.position
                var rows = scratch?.takeRows() ?? []
                defer { scratch?.giveBack(rows: rows) }
                if fastPath, let kind = p.osqueryRows(into: &rows) {
                    p.storage.withDocument(buf) { doc in
                        switch kind {
                        case .osqueryRows: readOsqueryRows(rows, doc: doc, into: &b)
                        case .jumpCloud: readJumpCloud(rows, doc: doc, into: &b)
                        }
                    }
                    return
                }
                p.seek(to: start)
                do throws(JSONParseError) {
                    let value = try p.parseDocument()
                    guard case .array = value else { return }
                    isArray = true
                    values = [value]
                } catch {
                    b.fileError(at: .offset(error.offset), error.message)
                    return
                }
            } else {
                // One object, or a sequence of objects (osqueryd logs: one per line).
                while true {
                    p.skipWhitespace()
                    if p.atEnd { break }
                    let start = p.position
                    do throws(JSONParseError) {
                        let v = try p.parseValue(depth: 0)
                        if case .object = v {
                            values.append(v)
                        } else {
                            b.fileError(at: .offset(start), "expected a JSON object, found \(v.kindName)")
                        }
                    } catch {
                        b.fileError(at: .offset(error.offset), error.message)
                        // Resynchronise at the next line that starts an object.
                        p.seek(to: max(error.offset, start))
                        repeat { p.skipPastNewline() } while !p.atEnd && !p.lineStartsObject()
                    }
                }
            }
            // Nothing parsed: the errors already say why.
            if values.isEmpty && b.hasErrors { return }
            p.storage.withDocument(buf) { doc in
                if isArray, case .array(let a)? = values.first {
                    readElements(Array(doc.elements(a)), doc: doc, into: &b)
                } else {
                    readElements(values, doc: doc, into: &b)
                }
            }
        }
    }

    private enum Kind {
        case osquerydLog, jumpCloud, powerShell, osqueryRows
    }

    private static func classify(_ o: Row) -> Kind? {
        if o.has("snapshot") || o.has("diffResults") || (o.has("columns") && o.has("action")) {
            if o.has("hostIdentifier") || o.has("hostname") || o.has("name") { return .osquerydLog }
        }
        if o.has("system_id") && o.has("username") { return .jumpCloud }
        if o.has("username") { return .osqueryRows }
        if o.has("Name") && (o.has("SID") || o.has("PrincipalSource") || o.has("Enabled") || o.has("ObjectClass")) {
            return .powerShell
        }
        return nil
    }

    static let acceptedFormats = "accepted formats: osqueryi --json array of users rows; osqueryd result log "
        + "(one JSON object per line); JumpCloud System Insights users (JSON array with system_id); "
        + "PowerShell Get-LocalUser | ConvertTo-Json; getent passwd / /etc/passwd text; CSV with a "
        + "'device,username' header"

    private static func readElements(_ elements: [JSONValue], doc: JSONDocument, into b: inout ReportBuilder) {
        guard let firstObject = elements.lazy.compactMap({ $0.object }).first else {
            if elements.isEmpty {
                b.fileError(at: nil, "empty JSON array: the report lists no accounts")
            } else {
                b.fileError(at: nil, "JSON array holds no objects; unrecognised report format (\(acceptedFormats))")
            }
            return
        }
        guard let kind = classify(Row(doc: doc, object: firstObject)) else {
            let keys = doc.members(firstObject).prefix(6).map { doc.string($0.key) }.joined(separator: ", ")
            b.fileError(at: .offset(firstObject.offset),
                        "unrecognised report format: JSON objects with members \(keys) (\(acceptedFormats))")
            return
        }
        var rows: [Row] = []
        rows.reserveCapacity(elements.count)
        for (i, element) in elements.enumerated() {
            if let o = element.object {
                rows.append(Row(doc: doc, object: o))
            } else {
                b.fileError(at: rows.last.map { .offset($0.offset) },
                            "array element \(i + 1) is \(element.kindName), expected an object")
            }
        }
        switch kind {
        case .osquerydLog: OsquerydLog.read(rows, into: &b)
        case .jumpCloud:
            readJumpCloud(rows.map { OsqueryRow(columns: OsqueryColumns($0), offset: $0.offset) }, doc: doc, into: &b)
        case .powerShell: readPowerShell(rows, into: &b)
        case .osqueryRows:
            readOsqueryRows(rows.map { OsqueryRow(columns: OsqueryColumns($0), offset: $0.offset) }, doc: doc, into: &b)
        }
    }

    // MARK: osqueryi --json

    /// The rows of an osqueryi users array (from the tree, or `JSONParser.osqueryRows`).
    static func readOsqueryRows(_ rows: [OsqueryRow], doc: JSONDocument, into b: inout ReportBuilder) {
        let device = b.fallbackDevice
        b.reserve(rows.count, device: device)
        // The extended columns tell the platform: macOS adds is_hidden, Windows adds type.
        if let first = rows.first {
            if first.columns.isHidden != nil { b.hint(.macos, weight: 20, device: device) }
            if first.columns.type != nil { b.hint(.windows, weight: 5, device: device) }
        }
        for row in rows {
            do throws(FieldError) {
                try addAccount(row.columns, doc: doc, offset: row.offset, device: device, into: &b)
            } catch {
                b.error(device: device, at: .offset(row.offset), rowMessage(row.columns.username(in: doc), error))
            }
        }
    }

    /// The account of an osquery `users` row (osquery and JumpCloud), or a warning for a row
    /// without a username.
    static func addAccount(_ columns: OsqueryColumns, doc: JSONDocument, offset: Int, device: String,
                           into b: inout ReportBuilder) throws(FieldError) {
        if let account = try OsqueryRows.account(columns, doc: doc) {
            b.add(account, device: device, at: .offset(offset))
        } else {
            b.warn(device: device, at: .offset(offset), "row with an empty username skipped")
        }
    }

    /// `error` about the row of `username` (`Row.optionalString("username")`).
    static func rowMessage(_ username: String?, _ error: FieldError) -> String {
        if let name = username {
            return "account \(Fields.quoted(name)): \(error.message)"
        }
        return error.message
    }

    // MARK: JumpCloud System Insights users

    /// The rows of a JumpCloud users array (from the tree, or `JSONParser.osqueryRows`).
    static func readJumpCloud(_ rows: [OsqueryRow], doc: JSONDocument, into b: inout ReportBuilder) {
        for row in rows {
            let c = row.columns
            let systemID: String
            do throws(FieldError) {
                guard let id = try doc.stringField(c.systemID, "system_id") else {
                    b.fileError(at: .offset(row.offset), "row has no 'system_id': cannot tell which device it belongs to")
                    continue
                }
                systemID = id
            } catch {
                b.fileError(at: .offset(row.offset), error.message)
                continue
            }
            // Usually one system per file: room for every row on the first one.
            if row.offset == rows.first?.offset { b.reserve(rows.count, device: systemID) }
            do throws(FieldError) {
                guard case .string(let t)? = c.collectionTime, !doc.isEmpty(t) else {
                    throw FieldError(message: "row has no 'collection_time' string")
                }
                guard let time = doc.withBytes(t, { Timestamps.parse(bytes: $0) }) else {
                    throw FieldError(message: "field 'collection_time' is not a date, found \(Fields.quoted(doc.string(t)))")
                }
                b.noteTime(time, device: systemID)
                try addAccount(c, doc: doc, offset: row.offset, device: systemID, into: &b)
            } catch {
                b.error(device: systemID, at: .offset(row.offset), rowMessage(c.username(in: doc), error))
            }
        }
    }

    // MARK: PowerShell Get-LocalUser | ConvertTo-Json

    private static func readPowerShell(_ rows: [Row], into b: inout ReportBuilder) {
        for row in rows {
            var device = b.fallbackDevice
            // Invoke-Command adds PSComputerName: then the file carries its hosts.
            if let host = row.optionalString("PSComputerName") { device = host }
            if row.offset == rows.first?.offset { b.reserve(rows.count, device: device) }
            b.force(.windows, device: device)
            do throws(FieldError) {
                b.add(try powerShellAccount(row), device: device, at: .offset(row.offset))
            } catch {
                var message = error.message
                if let name = row.optionalString("Name") {
                    message = "account \(Fields.quoted(name)): " + message
                }
                b.error(device: device, at: .offset(row.offset), message)
            }
        }
    }

    static func powerShellAccount(_ o: Row) throws(FieldError) -> LocalAccount {
        guard let nameValue = o["Name"] else { throw FieldError(message: "object has no 'Name'") }
        guard case .string(let nameText) = nameValue else {
            throw FieldError(message: "field 'Name' must be a string, found \(nameValue.kindName)")
        }
        guard !o.doc.isEmpty(nameText) else { throw FieldError(message: "field 'Name' is empty") }
        var sid: String?
        switch o["SID"] {
        case .object(let s)?: sid = try Row(doc: o.doc, object: s).string("Value")
        case .string(let t)?: sid = o.doc.isEmpty(t) ? nil : o.text(t)
        case nil, .null?: sid = nil
        case let other?: throw FieldError(message: "field 'SID' must be an object with 'Value' or a string, found \(other.kindName)")
        }
        if let s = sid {
            guard SIDs.looksLikeSID(s.utf8) else {
                throw FieldError(message: "field 'SID' is not a SID, found \(Fields.quoted(s))")
            }
            sid = SIDs.normalized(s)
        }
        let rid = sid.flatMap { UIDs.rid(ofSID: $0) }
        var fullName = try o.string("FullName")
        if fullName == nil { fullName = try o.string("Description") }
        // Date members are "\/Date(ms)\/" in Windows PowerShell 5.1 and ISO 8601 in
        // PowerShell 7; both are understood (Timestamps.parse), but no date is needed for a
        // takeover decision, so they are only checked.
        try checkDate(o, "LastLogon")
        try checkDate(o, "PasswordLastSet")
        try checkDate(o, "AccountExpires")
        return LocalAccount(name: o.text(nameText), uid: rid, uidSigned: rid, sid: sid, fullName: fullName,
                            accountType: try principalSource(o, o["PrincipalSource"]),
                            enabled: try o.bool("Enabled"))
    }

    private static func checkDate(_ o: Row, _ key: StaticString) throws(FieldError) {
        guard let v = o[key] else { return }
        switch v {
        case .string(let t):
            if o.doc.isEmpty(t) || o.doc.withBytes(t, { Timestamps.parse(bytes: $0) }) != nil { return }
            throw FieldError(message: "field '\(key)' is not a date, found \(Fields.quoted(o.text(t)))")
        case .null: return
        default: throw FieldError(message: "field '\(key)' must be a date string, found \(v.kindName)")
        }
    }

    /// PrincipalSource (1 = Local) -> the osquery `type` vocabulary: local accounts are
    /// `local` (a Microsoft-account-linked one too: it is still a SAM account); domain and
    /// Entra principals are not local accounts, like osquery's `roaming`.
    private static func principalSource(_ o: Row, _ v: JSONValue?) throws(FieldError) -> String? {
        guard let v else { return nil }
        let code: String
        switch v {
        case .null: return nil
        case .number(let t): code = o.text(t)
        case .string(let t): code = o.text(t).lowercased()
        default: throw FieldError(message: "field 'PrincipalSource' must be a number or a string, found \(v.kindName)")
        }
        switch code {
        case "1", "local", "4", "microsoftaccount": return "local"
        case "2", "activedirectory", "3", "azuread": return "roaming"
        case "0", "unknown", "": return nil
        default: throw FieldError(message: "field 'PrincipalSource' has an unknown value \(Fields.quoted(code))")
        }
    }
}
