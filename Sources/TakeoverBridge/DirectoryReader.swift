// Reading the directory into the planner's model (docs/product.md sections 2 and 6): users by
// paged search, connections from device entries, and the binding groups with their
// records. Every LDAP error, timeout, size limit or search reference is a failure, never
// "no entries".

import Foundation
import LDAPClient
import LDAPSyntax
import TakeoverCore

/// What one read of the directory produced.
package struct DirectorySnapshot: Sendable {
    package var users: [DirectoryUser] = []
    package var connections: [Connection] = []
    /// Every device entry read (its name and DN), connected users or not.
    package var knownDevices: [DeviceEntry] = []
    package var bindingGroups: [BindingGroup] = []
    /// Values or entries skipped (not UTF-8, no name): each names the DN.
    package var warnings: [InputProblem] = []
    /// User and device entries that could not be used at all. While any exist, unbinding
    /// is refused (a user missing because it could not be read is not a user who left).
    package var unreadableEntries: [String] = []
    /// Device entries read (with or without members).
    package var deviceEntries = 0
    /// Devices that cannot be judged from the directory (a value list that could not be
    /// read whole): each names its device, which the planner defers (R8).
    package var problems: [InputProblem] = []
    /// Search continuation references skipped because they name another naming context
    /// of the same server (AD's DomainDnsZones, ForestDnsZones, Configuration): for a
    /// debug line each.
    package var skippedReferences: [String] = []
    /// How long each part of the read took, in nanoseconds, under the summary line's keys
    /// (`users_ms`, `devices_ms`, `bindings_ms`), in reading order.
    package var phaseNanos: [(key: String, nanos: UInt64)] = []
}

/// A directory read that failed: which part, and the LDAP error.
package struct DirectoryReadError: Error, Sendable, CustomStringConvertible {
    package var what: String
    package var base: String
    package var error: LDAPError?
    package var message: String

    package var description: String {
        if let error { return "reading \(what) under '\(base)' failed: \(error)" }
        return "reading \(what) under '\(base)' failed: \(message)"
    }
}

package struct DirectoryReader: Sendable {
    package var config: BridgeConfig
    package var layout: BindingLayout

    package init(config: BridgeConfig) {
        self.config = config
        self.layout = config.layout()
    }

    /// Users, devices and binding groups, in that order.
    package func read(_ connection: LDAPConnection) async throws(DirectoryReadError) -> DirectorySnapshot {
        var snapshot = DirectorySnapshot()
        var started = DispatchTime.now().uptimeNanoseconds
        func lap(_ key: String) {
            let now = DispatchTime.now().uptimeNanoseconds
            snapshot.phaseNanos.append((key, now - started))
            started = now
        }
        try await readUsers(connection, into: &snapshot)
        lap("users_ms")
        try await readDevices(connection, into: &snapshot)
        lap("devices_ms")
        try await readBindingGroups(connection, into: &snapshot)
        lap("bindings_ms")
        return snapshot
    }

    // MARK: Users

    package var userAttributes: [String] {
        let u = config.users
        var names = [u.nameAttribute]
        if !u.localAccountAttribute.isEmpty { names.append(u.localAccountAttribute) }
        names += [u.uidNumberAttribute, u.displayNameAttribute]
        names += u.idAttribute.isEmpty ? StableIdentity.automatic : [u.idAttribute]
        return names
    }

    package func readUsers(_ connection: LDAPConnection, into snapshot: inout DirectorySnapshot)
        async throws(DirectoryReadError) {
        let u = config.users
        let collector = try await search(connection, what: "users", base: u.searchBase, scope: .sub, filter: u.filter,
                                         attributes: userAttributes, into: Collector<DirectoryUser>()) { entry, collector in
            if let user = self.user(from: entry, collector: &collector) {
                collector.items.append(user)
            }
        }
        snapshot.users = collector.items
        snapshot.skippedReferences += collector.skippedReferences
        snapshot.warnings += collector.warnings
        snapshot.unreadableEntries += collector.unreadable
    }

    /// One user entry, or nil (with a warning) when it has no usable username.
    func user(from entry: LDAPEntry, collector: inout Collector<DirectoryUser>) -> DirectoryUser? {
        let u = config.users
        if let incomplete = entry.incompleteAttributes.first {
            collector.warnings.append(InputProblem(
                source: entry.dn, message: "user entry skipped: \(incomplete); no binding of it is removed while it "
                    + "cannot be read"))
            collector.unreadable.append(entry.dn)
            return nil
        }
        let names = strings(entry, u.nameAttribute, &collector)
        guard let username = entryName(entry, .user, attribute: u.nameAttribute, values: names, &collector) else {
            return nil
        }
        var all = names
        if !all.contains(username) { all.insert(username, at: 0) }
        var local: String?
        if !u.localAccountAttribute.isEmpty {
            var count = 0
            forEachString(entry, u.localAccountAttribute, &collector) { value in
                count += 1
                if local == nil && !value.isEmpty { local = value }
            }
            if count > 1 {
                collector.warnings.append(InputProblem(
                    source: entry.dn, message: "\(u.localAccountAttribute) has \(count) values; the first, "
                        + "'\(local ?? "")', is used"))
            }
        }
        var uidNumber: Int64?
        forEachString(entry, u.uidNumberAttribute, &collector) { value in
            if uidNumber == nil, let n = Int64(value.trimmingSpaces) { uidNumber = n }
        }
        var display: String?
        forEachString(entry, u.displayNameAttribute, &collector) { value in
            if display == nil { display = value }
        }
        let stableID = StableIdentity.read(entry, attribute: u.idAttribute)
        return DirectoryUser(dn: entry.dn, username: username, allUsernames: all, localAccountField: local,
                             uidNumber: uidNumber, displayName: display, stableID: stableID)
    }

    // MARK: Devices

    package func readDevices(_ connection: LDAPConnection, into snapshot: inout DirectorySnapshot)
        async throws(DirectoryReadError) {
        let d = config.devices
        let memberAttribute = d.memberAttribute
        let byName = memberAttribute.caseInsensitiveEquals("memberUid")
        let isUnique = memberAttribute.caseInsensitiveEquals("uniqueMember")
        let collector = try await search(connection, what: "devices", base: d.searchBase, scope: .sub, filter: d.filter,
                                         attributes: [d.nameAttribute, memberAttribute],
                                         into: Collector<Connection>()) { entry, collector in
            collector.entries += 1
            let names = strings(entry, d.nameAttribute, &collector)
            guard let device = entryName(entry, .device, attribute: d.nameAttribute, values: names, &collector) else {
                return
            }
            collector.deviceEntries.append(DeviceEntry(name: device, dn: entry.dn))
            if let incomplete = entry.incomplete(memberAttribute) ?? entry.incompleteAttributes.first {
                collector.problems.append(InputProblem(
                    source: entry.dn, device: device,
                    message: "the device entry's \(incomplete); its connections are unknown, so the device is "
                        + "deferred (nothing bound or unbound there)"))
                return
            }
            for value in strings(entry, memberAttribute, &collector) {
                if byName {
                    let name = value.trimmingSpaces
                    if !name.isEmpty {
                        collector.items.append(Connection(device: device, member: .name(name), sourceDN: entry.dn))
                    }
                } else {
                    let dn = isUnique ? DirectoryReader.strippingUID(value) : value
                    if !dn.isEmpty {
                        collector.items.append(Connection(device: device, member: .dn(dn), sourceDN: entry.dn))
                    }
                }
            }
        }
        snapshot.connections = collector.items
        snapshot.knownDevices = collector.deviceEntries
        snapshot.deviceEntries = collector.entries
        snapshot.skippedReferences += collector.skippedReferences
        snapshot.warnings += collector.warnings
        snapshot.problems += collector.problems
        snapshot.unreadableEntries += collector.unreadable
    }

    // MARK: Binding groups

    package func readBindingGroups(_ connection: LDAPConnection, into snapshot: inout DirectorySnapshot)
        async throws(DirectoryReadError) {
        let b = config.bindings
        let layout = self.layout
        let filter = FilterEscaping.equality("objectClass", b.objectClass.rawValue)
        let collector = try await search(connection, what: "binding groups", base: b.searchBase, scope: .one, filter: filter,
                                         attributes: ["cn", layout.memberAttribute, layout.recordAttribute],
                                         into: Collector<BindingGroup>()) { entry, collector in
            let device: String
            if let rdn = DirectoryReader.rdnValue(entry.dn, attribute: "cn") {
                device = rdn
            } else if let cn = strings(entry, "cn", &collector).first {
                device = cn
            } else {
                collector.warnings.append(InputProblem(
                    source: entry.dn, message: "binding group has no usable cn; it is left alone"))
                return
            }
            if let incomplete = entry.incompleteAttributes.first {
                // Never a shorter list: the group is left out and its device deferred.
                collector.problems.append(InputProblem(
                    source: entry.dn, device: device,
                    message: "the binding group's \(incomplete); its bindings are unknown, so the device is deferred "
                        + "(nothing bound or unbound there)"))
                return
            }
            let members = strings(entry, layout.memberAttribute, &collector)
            let records = layout.recordAttribute.caseInsensitiveEquals(layout.memberAttribute)
                ? [] : strings(entry, layout.recordAttribute, &collector)
            collector.items.append(BindingGroup(device: device, dn: entry.dn, members: members, records: records))
        }
        snapshot.bindingGroups = collector.items
        snapshot.skippedReferences += collector.skippedReferences
        snapshot.warnings += collector.warnings
        snapshot.problems += collector.problems
    }

    // MARK: Helpers

    /// Entries and warnings gathered by a search handler: a value, filled on the
    /// connection's executor by `collect(on:)` and handed back whole when the search ends.
    struct Collector<Item: Sendable>: Sendable {
        var items: [Item] = []
        var warnings: [InputProblem] = []
        var unreadable: [String] = []
        var problems: [InputProblem] = []
        var skippedReferences: [String] = []
        var deviceEntries: [DeviceEntry] = []
        var entries = 0
    }

    /// Searches and hands every entry to `handler` with the collector, then resolves the
    /// search references; returns the filled collector.
    private func search<Item>(_ connection: LDAPConnection, what: String, base: String, scope: SearchScope, filter: String,
                              attributes: [String], into initial: Collector<Item>,
                              handler: @Sendable (LDAPEntry, inout Collector<Item>) -> Void)
        async throws(DirectoryReadError) -> Collector<Item> {
        let result: SearchResult
        var collector: Collector<Item>
        do {
            (result, collector) = try await Self.collect(on: connection, into: initial, base: base, scope: scope,
                                                         filter: filter, attributes: attributes,
                                                         pageSize: config.ldap.pageSize, handler: handler)
        } catch let error as LDAPError {
            throw DirectoryReadError(what: what, base: base, error: error, message: error.description)
        } catch {
            throw DirectoryReadError(what: what, base: base, error: nil, message: String(describing: error))
        }
        if !result.references.isEmpty {
            // References to other naming contexts of this same server (the root DSE's
            // namingContexts) hold no part of this tree: skipped. Any other is a hole.
            var contexts: Set<String> = []
            do {
                let root = try await connection.rootDSE(attributes: ["namingContexts"])
                contexts = Set(root.strings("namingContexts").map(DNNormalizer.normalize))
            } catch {
                // Without the root DSE no reference can be shown to be harmless.
            }
            var unknown: [String] = []
            for reference in result.references {
                if let dn = DirectoryReader.referenceDN(reference), contexts.contains(DNNormalizer.normalize(dn)) {
                    collector.skippedReferences.append(reference)
                } else {
                    unknown.append(reference)
                }
            }
            if !unknown.isEmpty {
                throw DirectoryReadError(
                    what: what, base: base, error: nil,
                    message: "the server returned \(unknown.count) search reference(s) "
                        + "(\(unknown.prefix(3).joined(separator: " "))): part of the tree is held elsewhere, "
                        + "so the result is incomplete; point [ldap] uri at a server that holds all of it")
            }
        }
        return collector
    }

    /// Runs the search on the connection's executor (`isolated`), so the handler fills a
    /// local value in place, with no lock and no shared reference, and the value comes
    /// back whole when the search ends.
    private static func collect<Item>(on connection: isolated LDAPConnection, into initial: Collector<Item>,
                                      base: String, scope: SearchScope, filter: String, attributes: [String],
                                      pageSize: Int, handler: (LDAPEntry, inout Collector<Item>) -> Void)
        throws -> (SearchResult, Collector<Item>) {
        var collector = initial
        let result = try connection.search(base: base, scope: scope, filter: filter, attributes: attributes,
                                           pageSize: pageSize) { entry in handler(entry, &collector) }
        return (result, collector)
    }

    /// The DN of an LDAP URL (RFC 4516: `ldap://host/dn?attrs?scope?filter`),
    /// percent-decoded; nil when there is none or it does not decode.
    package static func referenceDN(_ url: String) -> String? {
        guard let schemeEnd = url.range(of: "://") else { return nil }
        let rest = url[schemeEnd.upperBound...]
        guard let slash = rest.firstIndex(of: "/") else { return nil }
        let encoded = rest[rest.index(after: slash)...].prefix { $0 != "?" }
        guard !encoded.isEmpty, let dn = String(encoded).removingPercentEncoding, !dn.isEmpty else { return nil }
        return dn
    }

    /// The kinds of entry `entryName` names.
    enum NamedEntry {
        case user, device
    }

    /// The name of a user or device entry: the stored value of `attribute` spelled as the
    /// first RDN's value (the DN may be normalised), for a user else one equal to it
    /// case-folded, else the RDN value itself; when the RDN is another attribute, the first
    /// value. nil, with a warning and the entry counted unreadable, when there is none.
    private func entryName<Item>(_ entry: LDAPEntry, _ kind: NamedEntry, attribute: String, values: [String],
                                 _ collector: inout Collector<Item>) -> String? {
        if let rdn = DirectoryReader.rdnValue(entry.dn, attribute: attribute) {
            if let exact = values.first(where: { $0 == rdn }) { return exact }
            if kind == .user, let folded = values.first(where: { Folding.fold($0) == Folding.fold(rdn) }) {
                return folded
            }
            return rdn
        }
        if let first = values.first { return first }
        let what = kind == .user ? "user entry" : "device entry"
        let kept = kind == .user ? "no binding of it" : "no binding"
        collector.warnings.append(InputProblem(
            source: entry.dn, message: "\(what) has no usable \(attribute) value; it is skipped and \(kept) is removed "
                + "while it cannot be read"))
        collector.unreadable.append(entry.dn)
        return nil
    }

    /// The UTF-8 values of `attribute`; every other value is skipped with a warning naming the DN.
    private func strings<Item>(_ entry: LDAPEntry, _ attribute: String, _ collector: inout Collector<Item>) -> [String] {
        var out: [String] = []
        forEachString(entry, attribute, &collector) { out.append($0) }
        return out
    }

    /// `strings(entry, attribute, &collector)` one by one, without the array (the same
    /// warnings, in the same order).
    private func forEachString<Item>(_ entry: LDAPEntry, _ attribute: String, _ collector: inout Collector<Item>,
                                     _ body: (String) -> Void) {
        entry.forEachValue(attribute) { value in
            if let s = value.string {
                body(s)
            } else {
                collector.warnings.append(InputProblem(
                    source: entry.dn, message: "a value of \(attribute) is not valid UTF-8 "
                        + "(\(value.count) bytes); it is skipped"))
            }
        }
    }

    /// The value of the first RDN's `attribute` AVA, or nil when the RDN is another attribute.
    package static func rdnValue(_ dn: String, attribute: String) -> String? {
        DN.firstRDNValue(of: dn, type: attribute)
    }

    /// `uniqueMember` values may carry an optional UID: `dn#'0101'B` (RFC 4517
    /// NameAndOptionalUID). Returns the DN part.
    package static func strippingUID(_ value: String) -> String {
        let bytes = Array(value.utf8)
        guard bytes.count >= 4, bytes[bytes.count - 1] == UInt8(ascii: "B"), bytes[bytes.count - 2] == UInt8(ascii: "'")
        else { return value }
        var i = bytes.count - 3
        while i >= 0, bytes[i] == UInt8(ascii: "0") || bytes[i] == UInt8(ascii: "1") { i -= 1 }
        guard i >= 1, bytes[i] == UInt8(ascii: "'"), bytes[i - 1] == UInt8(ascii: "#") else { return value }
        // A '#' escaped with a backslash belongs to the DN.
        if i >= 2, bytes[i - 2] == UInt8(ascii: "\\") { return value }
        return String(decoding: bytes[0..<(i - 1)], as: UTF8.self)
    }
}


// MARK: - Stable identity (issue 10 item 7)

/// A user's stable id: the value that survives renames and moves.
package enum StableIdentity {
    /// Asked for when `[users] id_attribute` is not set, in order of preference.
    package static let automatic = ["objectGUID", "entryUUID", "nsUniqueId"]

    /// The entry's stable id as text: `attribute` when set, else the first of `automatic`
    /// it has. objectGUID (16 bytes) is given in its usual text form, any other attribute
    /// as its UTF-8 text; nil when there is none.
    package static func read(_ entry: LDAPEntry, attribute: String) -> String? {
        for name in attribute.isEmpty ? automatic : [attribute] {
            guard let value = entry.firstValue(name) else { continue }
            if name.caseInsensitiveEquals("objectGUID") {
                if let text = guidText(value.bytes) { return text }
                continue
            }
            if let text = value.string?.trimmingSpaces, !text.isEmpty { return text }
        }
        return nil
    }

    /// The registry form of a GUID from its 16 bytes (MS-DTYP 2.3.4): the first three
    /// fields little-endian, the last eight bytes in order, lower-case hex:
    /// `bytes 00112233 4455 6677 8899 aabbccddeeff` -> `33221100-5544-7766-8899-aabbccddeeff`.
    package static func guidText(_ bytes: [UInt8]) -> String? {
        guard bytes.count == 16 else { return nil }
        let order = [3, 2, 1, 0, -1, 5, 4, -1, 7, 6, -1, 8, 9, -1, 10, 11, 12, 13, 14, 15]
        let digits = Array("0123456789abcdef")
        var out = ""
        out.reserveCapacity(36)
        for index in order {
            if index < 0 {
                out.append("-")
            } else {
                out.append(digits[Int(bytes[index] >> 4)])
                out.append(digits[Int(bytes[index] & 0x0F)])
            }
        }
        return out
    }
}
