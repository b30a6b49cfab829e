import LDAPSyntax

// How bindings are stored (see `BindingLayout` in Model.swift) and a pure applier of a
// plan's changes, used by the tests (idempotence) and by the glue for dry runs.

extension BindingLayout {
    /// The record value for one binding: `recordPrefix + localName + ":" + userDN`.
    public func recordValue(localName: String, userDN: String) -> String {
        // Sized once: a plan holds one of these per new binding.
        var value = ""
        value.reserveCapacity(recordPrefix.utf8.count + localName.utf8.count + 1 + userDN.utf8.count)
        value += recordPrefix
        value += localName
        value += ":"
        value += userDN
        return value
    }

    /// Splits a record value; nil for values without the prefix (a person's `description`)
    /// or without a local name or a DN.
    public func parseRecord(_ value: String) -> (localName: String, userDN: String)? {
        guard value.hasPrefix(recordPrefix) else { return nil }
        let rest = value.utf8.dropFirst(recordPrefix.utf8.count)
        guard let colon = rest.firstIndex(of: UInt8(ascii: ":")) else { return nil }
        let name = String(decoding: rest[rest.startIndex..<colon], as: UTF8.self)
        let dn = String(decoding: rest[rest.index(after: colon)...], as: UTF8.self)
        if name.isEmpty || dn.isEmpty { return nil }
        return (name, dn)
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
