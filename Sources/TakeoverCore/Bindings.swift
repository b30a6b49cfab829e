import LDAPSyntax

/// One binding record, parsed: the local account the binding was made with, the user's
/// DN, the user's stable id (entryUUID, objectGUID, nsUniqueId) when it was known, and
/// the DNs the user had before (a device entry may still name one where the server does
/// not rewrite member values: 389 DS, OpenLDAP without refint).
public struct BindingRecord: Sendable, Hashable {
    public var localName: String
    public var userDN: String
    public var stableID: String?
    public var formerDNs: [String]
    public init(localName: String, userDN: String, stableID: String? = nil, formerDNs: [String] = []) {
        self.localName = localName
        self.userDN = userDN
        self.stableID = stableID
        self.formerDNs = formerDNs
    }
}

/// Stable ids (entryUUID, objectGUID text, nsUniqueId) compare ignoring ASCII case.
public enum StableID {
    public static func key(_ id: String) -> String {
        // The ids the servers give are ASCII: judged byte by byte (for ASCII, "uppercase"
        // and lower-casing concern A-Z only), without Unicode tables or grapheme breaking.
        var upper = false
        for byte in id.utf8 {
            if byte >= 0x80 { return id.allSatisfy({ !$0.isUppercase }) ? id : id.lowercased() }
            if byte &- 0x41 < 26 { upper = true }
        }
        guard upper else { return id }
        return String(decoding: id.utf8.map { $0 &- 0x41 < 26 ? $0 | 0x20 : $0 }, as: UTF8.self)
    }
}

/// The percent-escaping of record fields: `%`, `:`, `<`, `>`, `;` and every control
/// character (C0, DEL, C1) become `%XX` per UTF-8 byte; everything else stays as is.
public enum RecordEscaping {
    public static func escape(_ text: String) -> String {
        // Usually nothing to escape: printable ASCII is judged byte by byte.
        guard !isPlain(text), text.unicodeScalars.contains(where: needsEscape) else { return text }
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
               let high = bytes[i + 1].hexDigitValue, let low = bytes[i + 2].hexDigitValue {
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

    /// Whether `text` is printable ASCII with nothing to escape (its bytes read in place).
    static func isPlain(_ text: String) -> Bool {
        if let plain = text.utf8.withContiguousStorageIfAvailable({ $0.allSatisfy(isPlainByte) }) { return plain }
        return text.utf8.allSatisfy(isPlainByte)
    }

    /// Printable ASCII other than `%`, `:`, `;`, `<` and `>`.
    @inline(__always)
    static func isPlainByte(_ b: UInt8) -> Bool {
        b >= 0x20 && b < 0x7F && b != 0x25 && b != 0x3A && b != 0x3B && b != 0x3C && b != 0x3E
    }

    private static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F: return true
        case 0x25, 0x3A, 0x3B, 0x3C, 0x3E: return true // % : ; < >
        default: return false
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
    /// (`<GUID=...>;dn`), as are the user's former DNs (`<WAS=...>;`): a DN never begins
    /// with `<`, so the forms cannot be confused; a string that does is written after `<DN>;`.
    public func recordValue(localName: String, userDN: String, stableID: String? = nil, formerDNs: [String] = []) -> String {
        if formerDNs.isEmpty, let value = plainRecordValue(localName: localName, userDN: userDN, stableID: stableID ?? "") {
            return value
        }
        let name = RecordEscaping.escape(localName)
        let id = stableID.map(RecordEscaping.escape)
        // Sized once: a plan holds one of these per new binding.
        var value = ""
        value.reserveCapacity(recordPrefix.utf8.count + name.utf8.count + 1 + (id?.utf8.count ?? 0) + 6 + userDN.utf8.count)
        value += recordPrefix
        value += name
        value += ":"
        if let id, !id.isEmpty {
            value += "<ID="
            value += id
            value += ">;"
        }
        for former in formerDNs {
            value += "<WAS="
            value += RecordEscaping.escape(former)
            value += ">;"
        }
        if userDN.utf8.first == UInt8(ascii: "<") {
            value += "<DN>;"
        }
        value += userDN
        return value
    }

    /// `recordValue` of a binding with no former DNs whose local name and stable id (empty:
    /// none) need no escaping, the usual new binding: its bytes written in one allocation.
    /// Nil when something needs escaping or a string has no contiguous UTF-8.
    func plainRecordValue(localName: String, userDN: String, stableID id: String) -> String? {
        guard RecordEscaping.isPlain(localName), RecordEscaping.isPlain(id) else { return nil }
        let dnNeedsMark = userDN.utf8.first == UInt8(ascii: "<")
        let capacity = recordPrefix.utf8.count + localName.utf8.count + 1 + (id.isEmpty ? 0 : 6 + id.utf8.count)
            + (dnNeedsMark ? 5 : 0) + userDN.utf8.count
        // Every piece copied, else nothing (an empty string: a record is never empty).
        let value = String(unsafeUninitializedCapacity: capacity) { out -> Int in
            var n = 0
            guard Self.copy(recordPrefix, to: out, at: &n), Self.copy(localName, to: out, at: &n),
                  Self.copy(":", to: out, at: &n) else { return 0 }
            if !id.isEmpty {
                guard Self.copy("<ID=", to: out, at: &n), Self.copy(id, to: out, at: &n),
                      Self.copy(">;", to: out, at: &n) else { return 0 }
            }
            if dnNeedsMark { guard Self.copy("<DN>;", to: out, at: &n) else { return 0 } }
            guard Self.copy(userDN, to: out, at: &n) else { return 0 }
            return n
        }
        return value.isEmpty ? nil : value
    }

    /// Copies the UTF-8 of `s` to `out` at `n` and moves `n` past it; false when it does not
    /// fit or `s` has no contiguous UTF-8.
    private static func copy(_ s: String, to out: UnsafeMutableBufferPointer<UInt8>, at n: inout Int) -> Bool {
        let end = s.utf8.withContiguousStorageIfAvailable { bytes -> Int? in
            guard bytes.count <= out.count - n else { return nil }
            _ = UnsafeMutableBufferPointer(rebasing: out[n..<(n + bytes.count)]).initialize(from: bytes)
            return n + bytes.count
        }
        guard let end = end ?? nil else { return false }
        n = end
        return true
    }

    /// Splits a record value; nil for values without the prefix (a person's `description`)
    /// or without a local name or a DN.
    public func parseRecord(_ value: String) -> BindingRecord? {
        // Over the value's bytes in place (every record of every binding group is read on
        // each run); the generic walk only for a string without contiguous bytes.
        if let parsed = value.utf8.withContiguousStorageIfAvailable({ parseRecord(bytes: $0) }) { return parsed }
        return Array(value.utf8).withUnsafeBufferPointer { parseRecord(bytes: $0) }
    }

    private func parseRecord(bytes: UnsafeBufferPointer<UInt8>) -> BindingRecord? {
        func text(_ range: Range<Int>) -> String { String(decoding: UnsafeBufferPointer(rebasing: bytes[range]), as: UTF8.self) }
        func find(_ byte: UInt8, from: Int) -> Int? {
            var k = from
            while k < bytes.count { if bytes[k] == byte { return k }; k += 1 }
            return nil
        }
        let prefix = recordPrefix.utf8
        guard bytes.count >= prefix.count, bytes[0..<prefix.count].elementsEqual(prefix) else { return nil }
        let start = prefix.count
        guard let colon = find(UInt8(ascii: ":"), from: start) else { return nil }
        let name = RecordEscaping.unescape(text(start..<colon))
        var tail = colon + 1
        var stableID: String?
        var formerDNs: [String] = []
        // `<TAG=value>;` fields (values escaped, so no '>' inside), then the DN.
        let dnMarker = "<DN>;".utf8
        while tail < bytes.count, bytes[tail] == UInt8(ascii: "<") {
            if bytes.count - tail >= dnMarker.count, bytes[tail..<(tail + dnMarker.count)].elementsEqual(dnMarker) {
                tail += dnMarker.count
                break
            }
            guard let equals = find(UInt8(ascii: "="), from: tail), let close = find(UInt8(ascii: ">"), from: tail),
                  equals < close, close + 1 < bytes.count, bytes[close + 1] == UInt8(ascii: ";") else { return nil }
            let tag = bytes[(tail + 1)..<equals]
            let field = RecordEscaping.unescape(text((equals + 1)..<close))
            if tag.elementsEqual("ID".utf8) {
                stableID = field.isEmpty ? nil : field
            } else if tag.elementsEqual("WAS".utf8) {
                if !field.isEmpty { formerDNs.append(field) }
            }  // else a field of a later version
            tail = close + 2
        }
        let dn = text(tail..<bytes.count)
        if name.isEmpty || dn.isEmpty { return nil }
        return BindingRecord(localName: name, userDN: dn, stableID: stableID, formerDNs: formerDNs)
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
