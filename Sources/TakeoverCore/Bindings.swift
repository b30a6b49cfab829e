import LDAPSyntax

/// One binding record, parsed: the local account the binding was made with, the user's
/// DN then, and the user's stable id (entryUUID, objectGUID, nsUniqueId) when it was known.
public struct BindingRecord: Sendable, Hashable {
    public var localName: String
    public var userDN: String
    public var stableID: String?
    public init(localName: String, userDN: String, stableID: String? = nil) {
        self.localName = localName
        self.userDN = userDN
        self.stableID = stableID
    }
}

/// The percent-escaping of record fields: `%`, `:`, `<`, `>`, `;` and every control
/// character (C0, DEL, C1) become `%XX` per UTF-8 byte; everything else stays as is.
public enum RecordEscaping {
    public static func escape(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: needsEscape) else { return text }
        var out = ""
        out.reserveCapacity(text.utf8.count + 8)
        for scalar in text.unicodeScalars {
            if needsEscape(scalar) {
                for byte in String(scalar).utf8 {
                    out += "%"
                    out.append(hex[Int(byte >> 4)])
                    out.append(hex[Int(byte & 0x0F)])
                }
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// Decodes `%XX` sequences (hex, either case); a `%` not followed by two hex digits
    /// stays literal. Decoded bytes that are not UTF-8 become U+FFFD.
    public static func unescape(_ text: String) -> String {
        guard text.utf8.contains(UInt8(ascii: "%")) else { return text }
        let bytes = Array(text.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "%"), i + 2 < bytes.count,
               let high = hexValue(bytes[i + 1]), let low = hexValue(bytes[i + 2]) {
                out.append(high << 4 | low)
                i += 3
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static let hex: [Character] = Array("0123456789ABCDEF")

    private static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F: return true
        case 0x25, 0x3A, 0x3B, 0x3C, 0x3E: return true // % : ; < >
        default: return false
        }
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

// How bindings are stored (see `BindingLayout` in Model.swift) and a pure applier of a
// plan's changes, used by the tests (idempotence) and by the glue for dry runs.

extension BindingLayout {
    /// The record value for one binding:
    /// `recordPrefix + escaped(localName) + ":" [+ "<ID=" + escaped(stableID) + ">;"] + userDN`.
    ///
    /// The local name is percent-escaped (`%`, `:`, `<`, `>`, `;` and control characters
    /// become `%XX`), so the first `:` always ends it and any name round-trips, a `:`
    /// or a newline included. Records written before the escaping had names without
    /// `:` and read back unchanged (a `%XX` in such an old name would be decoded). The
    /// stable id, when known, is written in the form of AD's extended DNs
    /// (`<GUID=...>;dn`): a DN never begins with `<`, so the two forms cannot be confused;
    /// a DN that does begin with `<` is written after an empty `<ID=>;`.
    public func recordValue(localName: String, userDN: String, stableID: String? = nil) -> String {
        let name = RecordEscaping.escape(localName)
        let id = stableID.map(RecordEscaping.escape)
        // Sized once: a plan holds one of these per new binding.
        var value = ""
        value.reserveCapacity(recordPrefix.utf8.count + name.utf8.count + 1 + (id?.utf8.count ?? 0) + 6 + userDN.utf8.count)
        value += recordPrefix
        value += name
        value += ":"
        if let id, !id.isEmpty {
            value += "<ID=" + id + ">;"
        } else if userDN.utf8.first == UInt8(ascii: "<") {
            value += "<ID=>;"
        }
        value += userDN
        return value
    }

    /// Splits a record value; nil for values without the prefix (a person's `description`)
    /// or without a local name or a DN.
    public func parseRecord(_ value: String) -> BindingRecord? {
        guard value.utf8.starts(with: recordPrefix.utf8) else { return nil }
        let rest = value.utf8.dropFirst(recordPrefix.utf8.count)
        guard let colon = rest.firstIndex(of: UInt8(ascii: ":")) else { return nil }
        let name = RecordEscaping.unescape(String(decoding: rest[rest.startIndex..<colon], as: UTF8.self))
        var tail = rest[rest.index(after: colon)...]
        var stableID: String?
        if tail.starts(with: "<ID=".utf8) {
            let afterMarker = tail.dropFirst(4)
            guard let close = afterMarker.firstIndex(of: UInt8(ascii: ">")),
                  afterMarker.index(after: close) < afterMarker.endIndex,
                  afterMarker[afterMarker.index(after: close)] == UInt8(ascii: ";") else { return nil }
            let id = RecordEscaping.unescape(String(decoding: afterMarker[afterMarker.startIndex..<close], as: UTF8.self))
            stableID = id.isEmpty ? nil : id
            tail = afterMarker[afterMarker.index(close, offsetBy: 2)...]
        }
        let dn = String(decoding: tail, as: UTF8.self)
        if name.isEmpty || dn.isEmpty { return nil }
        return BindingRecord(localName: name, userDN: dn, stableID: stableID)
    }

    /// `cn=<escaped device>,<base>`.
    public func groupDN(device: String) -> String {
        "cn=" + DNEscaping.escapeValue(device) + "," + base
    }
}

extension Plan {
    /// `groups` as they are after `changes` are written, with LDAP's semantics for single
    /// values ("value exists" and "no such value" count as done; DN values compare after
    /// `DNNormalizer`). Groups keep their order; new groups follow in change order.
    public func applied(to groups: [BindingGroup]) -> [BindingGroup] {
        var result = groups
        var index: [String: Int] = [:]
        for (i, g) in result.enumerated() where index[DNNormalizer.normalize(g.dn)] == nil {
            index[DNNormalizer.normalize(g.dn)] = i
        }
        let memberAttribute = layout?.memberAttribute ?? "member"
        let recordAttribute = layout?.recordAttribute
        for change in changes {
            let key = DNNormalizer.normalize(change.dn)
            switch change.op {
            case .addEntry:
                if index[key] != nil { continue }
                var device = DNNormalizer.firstRDNValue(change.dn)
                var members: [String] = []
                var records: [String] = []
                for attribute in change.attributes {
                    let name = Folding.fold(attribute.name)
                    if name == "cn", let first = attribute.values.first { device = first }
                    else if name == Folding.fold(memberAttribute) { members += attribute.values }
                    else if let recordAttribute, name == Folding.fold(recordAttribute) { records += attribute.values }
                    else if recordAttribute == nil && name != "objectclass" { records += attribute.values }
                }
                index[key] = result.count
                result.append(BindingGroup(device: device, dn: change.dn, members: members, records: records))
            case .addMember:
                guard let i = index[key] else { continue }
                for v in change.values {
                    let n = DNNormalizer.normalize(v)
                    if !result[i].members.contains(where: { DNNormalizer.normalize($0) == n }) { result[i].members.append(v) }
                }
            case .deleteMember:
                guard let i = index[key] else { continue }
                let gone = Set(change.values.map(DNNormalizer.normalize))
                result[i].members.removeAll { gone.contains(DNNormalizer.normalize($0)) }
            case .addRecord:
                guard let i = index[key] else { continue }
                for v in change.values where !result[i].records.contains(v) { result[i].records.append(v) }
            case .deleteRecord:
                guard let i = index[key] else { continue }
                let gone = Set(change.values)
                result[i].records.removeAll { gone.contains($0) }
            }
        }
        return result
    }
}
