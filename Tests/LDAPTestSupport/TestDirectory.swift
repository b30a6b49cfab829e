// Test support: the throwaway directories the scripts start (OpenLDAP by
// scripts/test-slapd.sh, 389 DS by scripts/test-389.sh, Samba AD by
// scripts/test-samba-ad.sh), as one type: the shared servers scripts/test.sh starts and
// the private ones a suite starts for itself (PrivateServers.swift). Test-only.
//
// Each script writes an `env` file of `KEY=value` lines with the same names
// (TB_LDAP_URI, TB_BASE, TB_BIND_DN, ...); this type reads it and adds the kind,
// connections through LDAPClient, and the ldap-utils tools run as the administrator.

import Foundation
import LDAPClient

/// One test directory server of any of the three kinds.
public struct TestDirectory: Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable, CaseIterable, CustomStringConvertible {
        case openLDAP = "openldap"
        case dirsrv389 = "389"
        case sambaAD = "samba-ad"

        /// The variable scripts/test.sh sets to the shared server's env file.
        public var environmentVariable: String {
            switch self {
            case .openLDAP: "TB_TEST_ENV"
            case .dirsrv389: "TB_TEST_ENV_389"
            case .sambaAD: "TB_TEST_ENV_AD"
            }
        }

        /// The script that starts and stops one (relative to the package root).
        public var script: String {
            switch self {
            case .openLDAP: "scripts/test-slapd.sh"
            case .dirsrv389: "scripts/test-389.sh"
            case .sambaAD: "scripts/test-samba-ad.sh"
            }
        }

        public var description: String {
            switch self {
            case .openLDAP: "OpenLDAP"
            case .dirsrv389: "389 DS"
            case .sambaAD: "Samba AD"
            }
        }

        /// True for Active Directory (and Samba as its stand-in).
        public var isActiveDirectory: Bool { self == .sambaAD }
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
        public init(_ description: String) { self.description = description }
    }

    public let kind: Kind
    /// Every `KEY=value` of the env file.
    public let values: [String: String]
    public let envFile: String

    public init(envFile: String) throws {
        guard let data = FileManager.default.contents(atPath: envFile) else { throw Failure("cannot read \(envFile)") }
        var values: [String: String] = [:]
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            guard let equals = line.firstIndex(of: "="), !line.hasPrefix("#") else { continue }
            values[String(line[..<equals])] = String(line[line.index(after: equals)...])
        }
        self.values = values
        self.envFile = envFile
        // test-slapd.sh writes no kind: an env file without one is OpenLDAP's.
        let marker = values["TB_SERVER_KIND"] ?? Kind.openLDAP.rawValue
        guard let kind = Kind(rawValue: marker) else {
            throw Failure("\(envFile): unknown TB_SERVER_KIND \(marker)")
        }
        self.kind = kind
    }

    public var description: String { kind.description }

    private func field(_ key: String) -> String { values[key] ?? "" }

    public var ldapURI: String { field("TB_LDAP_URI") }
    /// ldaps:// with a certificate naming the address in the URI (verifies with `demand`).
    public var ldapsURI: String { field("TB_LDAPS_URI") }
    /// The global catalog over TLS (Active Directory only; nil elsewhere).
    public var globalCatalogURI: String? { values["TB_GCS_URI"] }
    public var base: String { field("TB_BASE") }
    public var peopleBase: String { field("TB_PEOPLE_BASE") }
    public var devicesBase: String { field("TB_DEVICES_BASE") }
    public var bindingsBase: String { field("TB_BINDINGS_BASE") }
    public var servicesBase: String { field("TB_SERVICES_BASE") }
    /// The administrator (rootdn, cn=Directory Manager, the domain's Administrator).
    public var rootDN: String { field("TB_ROOT_DN") }
    public var rootPasswordFile: String { field("TB_ROOT_PW_FILE") }
    /// The non-root service account: reads everything, writes only under the bindings base.
    public var bindDN: String { field("TB_BIND_DN") }
    public var bindPasswordFile: String { field("TB_BIND_PW_FILE") }
    /// The service account as a user principal name and as DOMAIN\user (AD only).
    public var bindUserPrincipalName: String? { values["TB_BIND_UPN"] }
    public var bindDownLevelName: String? { values["TB_BIND_DOWNLEVEL"] }
    public var caCert: String { field("TB_CA_CERT") }
    public var wrongCACert: String { field("TB_WRONG_CA_CERT") }
    /// The server's folder (what the script's `stop` takes).
    public var directory: String { values["TB_SERVER_DIR"] ?? field("TB_SLAPD_DIR") }

    // OpenLDAP only (test-slapd.sh): ldapi://, client certificates, the read-only account.
    public var ldapiURI: String { field("TB_LDAPI_URI") }
    public var ldapiExternalDN: String { field("TB_LDAPI_EXTERNAL_DN") }
    public var clientCert: String { field("TB_CLIENT_CERT") }
    public var clientKey: String { field("TB_CLIENT_KEY") }
    /// A non-root read-only account with the default size limit (500).
    public var readerDN: String { field("TB_READER_DN") }
    public var readerPasswordFile: String { field("TB_READER_PW_FILE") }

    /// The value of `key`; throws when the env file has none.
    public func value(_ key: String) throws -> String {
        guard let value = values[key] else { throw Failure("\(key) missing from \(envFile)") }
        return value
    }

    public func rootPassword() throws -> Secret { try readSecret(rootPasswordFile, "TB_ROOT_PW_FILE") }
    public func bindPassword() throws -> Secret { try readSecret(bindPasswordFile, "TB_BIND_PW_FILE") }
    public func readerPassword() throws -> Secret { try readSecret(readerPasswordFile, "TB_READER_PW_FILE") }

    private func readSecret(_ path: String, _ key: String) throws -> Secret {
        guard let data = FileManager.default.contents(atPath: path) else { throw Failure("cannot read \(key) (\(path))") }
        return Secret(String(decoding: data, as: UTF8.self).trimmingCharacters(in: .newlines))
    }

    public enum Identity: Sendable {
        /// The administrator (no ACLs, no limits).
        case root
        /// The non-root service account: reads everything, writes under the bindings base.
        case bind
        /// The non-root read-only account with the default size limit (OpenLDAP only).
        case reader
        case anonymous
    }

    /// Connects over plain `ldap://` (or `uri`) and binds as `identity`.
    public func connect(as identity: Identity = .bind, uri: String? = nil,
                        timeout: Double = 30) async throws -> LDAPConnection {
        let connection = try await LDAPConnection.connect(LDAPConnectionOptions(uri: uri ?? ldapURI, timeout: timeout))
        switch identity {
        case .root: try await connection.bind(.simple(dn: rootDN, password: rootPassword()))
        case .bind: try await connection.bind(.simple(dn: bindDN, password: bindPassword()))
        case .reader: try await connection.bind(.simple(dn: readerDN, password: readerPassword()))
        case .anonymous: try await connection.bind(.anonymous)
        }
        return connection
    }

    // MARK: - Finding servers

    /// The shared server of `kind` when scripts/test.sh (or the caller) named one.
    public static func configured(_ kind: Kind) -> TestDirectory? {
        guard let path = ProcessInfo.processInfo.environment[kind.environmentVariable], !path.isEmpty,
              FileManager.default.isReadableFile(atPath: path),
              let server = try? TestDirectory(envFile: path), server.kind == kind else { return nil }
        return server
    }

    /// The shared OpenLDAP server (scripts/test.sh's TB_TEST_ENV).
    public static func shared() throws -> TestDirectory {
        guard let server = configured(.openLDAP) else {
            throw Failure("\(Kind.openLDAP.environmentVariable) names no readable env file (run scripts/test.sh)")
        }
        return server
    }

    /// True when scripts/test.sh (or the caller) named a shared OpenLDAP server: the gate
    /// of every suite that needs one (they skip cleanly without it).
    public static var isConfigured: Bool { configured(.openLDAP) != nil }

    /// The kinds with a configured shared server, in a fixed order.
    public static var configuredKinds: [Kind] { Kind.allCases.filter { configured($0) != nil } }

    /// The package root (this file is Tests/LDAPTestSupport/TestDirectory.swift).
    public static var packageRoot: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
    }

    // MARK: - ldap-utils as the administrator

    /// Runs an ldap-utils tool (`ldapsearch`, `ldapmodify`, `ldapdelete`, ...) as the
    /// administrator over ldaps://, verifying the server with the test CA. Throws on a
    /// non-zero exit unless `allowFailure`.
    @discardableResult
    public func admin(_ tool: String, _ arguments: [String], input: String? = nil,
                      allowFailure: Bool = false) throws -> ProcessOutcome {
        try run(tool, arguments, as: rootDN, passwordFile: rootPasswordFile, input: input, allowFailure: allowFailure)
    }

    /// The same as the service account (for checking what it may and may not do).
    @discardableResult
    public func asServiceAccount(_ tool: String, _ arguments: [String], input: String? = nil,
                                 allowFailure: Bool = false) throws -> ProcessOutcome {
        try run(tool, arguments, as: bindDN, passwordFile: bindPasswordFile, input: input, allowFailure: allowFailure)
    }

    private func run(_ tool: String, _ arguments: [String], as dn: String, passwordFile: String, input: String?,
                     allowFailure: Bool) throws -> ProcessOutcome {
        let result = try Processes.run("/usr/bin/\(tool)", ["-x", "-H", ldapsURI, "-D", dn, "-y", passwordFile] + arguments,
                                       environment: ["LDAPTLS_CACERT": caCert, "LDAPTLS_REQCERT": "demand"],
                                       input: input, timeout: 300)
        if result.status != 0 && !allowFailure {
            throw Failure("\(tool) \(arguments.joined(separator: " ")) on \(kind) failed (\(result.status)): "
                + result.stderr)
        }
        return result
    }

    /// Applies LDIF change records (`changetype: add|modify|delete|modrdn`) as the administrator.
    public func change(_ ldif: String) throws {
        try admin("ldapmodify", [], input: ldif)
    }

    /// An ldap-utils tool as the administrator; its standard output. Throws on failure.
    @discardableResult
    public func root(_ tool: String, _ arguments: [String], input: String? = nil) throws -> String {
        try admin(tool, arguments, input: input).stdout
    }

    /// Adds the entries of `ldif` (content records, no changetype) as the administrator.
    public func add(_ ldif: String) throws { try admin("ldapadd", [], input: ldif) }

    /// The same as `change`: LDIF change records applied by the administrator.
    public func modify(_ ldif: String) throws { try change(ldif) }

    /// Everything under `base` (default: the whole tree), canonical (`canonicalLDIF`). With
    /// `operational`, also modifyTimestamp, entryCSN and the like, so any write at all shows.
    public func dump(_ base: String? = nil, operational: Bool = false) throws -> String {
        let attributes = operational ? ["*", "+"] : ["*"]
        return canonicalLDIF(try root("ldapsearch", ["-LLL", "-o", "ldif-wrap=no", "-b", base ?? self.base,
                                                     "(objectClass=*)"] + attributes))
    }

    /// Entries under `base` (scope `scope`) matching `filter`, as the administrator.
    public func search(_ base: String, scope: String = "sub", filter: String = "(objectClass=*)",
                       attributes: [String] = ["*"]) throws -> [LDIFEntry] {
        let result = try admin("ldapsearch", ["-LLL", "-o", "ldif-wrap=no", "-b", base, "-s", scope, filter] + attributes)
        return LDIFEntry.parse(result.stdout)
    }
}

/// One entry of ldapsearch's LDIF output.
public struct LDIFEntry: Sendable {
    public var dn: String
    /// Attribute name (lowercased) -> values, base64 values decoded.
    public var attributes: [String: [String]]

    public func values(_ name: String) -> [String] { attributes[name.lowercased()] ?? [] }

    /// Values of `name` and of its ranged forms (`member;range=0-1499`), as returned.
    public func valuesWithOptions(_ name: String) -> [String] {
        attributes.filter { $0.key == name.lowercased() || $0.key.hasPrefix(name.lowercased() + ";") }
            .flatMap(\.value)
    }

    public static func parse(_ text: String) -> [LDIFEntry] {
        var entries: [LDIFEntry] = []
        var current: LDIFEntry?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.isEmpty {
                if let entry = current { entries.append(entry) }
                current = nil
                continue
            }
            guard !line.hasPrefix("#"), let colon = line.firstIndex(of: ":") else { continue }
            let name = String(line[..<colon])
            var rest = line[line.index(after: colon)...]
            var value: String
            if rest.hasPrefix(":") {
                rest = rest.dropFirst()
                let encoded = rest.trimmingCharacters(in: .whitespaces)
                value = Data(base64Encoded: encoded).map { String(decoding: $0, as: UTF8.self) } ?? encoded
            } else {
                value = String(rest.drop { $0 == " " })
            }
            if name.lowercased() == "dn" {
                if let entry = current { entries.append(entry) }
                current = LDIFEntry(dn: value, attributes: [:])
            } else {
                current?.attributes[name.lowercased(), default: []].append(value)
            }
        }
        if let entry = current { entries.append(entry) }
        return entries
    }
}

// MARK: - Dumps

/// LDIF in a canonical form for comparisons: entries sorted, each with its `dn:` line
/// (lowercased) first and its other lines sorted (servers return values in any order).
public func canonicalLDIF(_ ldif: String) -> String {
    ldif.components(separatedBy: "\n\n")
        .map { $0.split(separator: "\n").map(String.init) }
        .filter { !$0.isEmpty }
        .map { lines in ([lines[0].lowercased()] + lines.dropFirst().sorted()).joined(separator: "\n") }
        .sorted()
        .joined(separator: "\n\n")
}

/// A canonical dump without the run lease entry, which stays between runs under the
/// bindings base (Lease.swift): for comparing binding groups only.
public func withoutRunLease(_ canonicalDump: String) -> String {
    canonicalDump.components(separatedBy: "\n\n").filter { !$0.lowercased().hasPrefix("dn: cn=takeover-bridge-lease,") }
        .joined(separator: "\n\n")
}
