// Test support: the throwaway directories the scripts start (OpenLDAP by
// scripts/test-slapd.sh, 389 DS by scripts/test-389.sh, Samba AD by
// scripts/test-samba-ad.sh), as one type. Test-only: nothing in Sources/ uses it.
//
// Each script writes an `env` file of `KEY=value` lines with the same names
// (TB_LDAP_URI, TB_BASE, TB_BIND_DN, ...); this type reads it (through
// LDAPTestServer's parser) and adds the kind, the tools run as the directory's
// administrator, and starting and stopping a private server.

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
        let parsed = try LDAPTestServer(envFile: envFile)
        values = parsed.values
        self.envFile = envFile
        // test-slapd.sh writes no kind: an env file without one is OpenLDAP's.
        let marker = parsed.values["TB_SERVER_KIND"] ?? Kind.openLDAP.rawValue
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

    // MARK: - Finding servers

    /// The shared server of `kind` when scripts/test.sh (or the caller) named one.
    public static func configured(_ kind: Kind) -> TestDirectory? {
        guard let path = ProcessInfo.processInfo.environment[kind.environmentVariable], !path.isEmpty,
              FileManager.default.isReadableFile(atPath: path),
              let server = try? TestDirectory(envFile: path), server.kind == kind else { return nil }
        return server
    }

    /// The kinds with a configured shared server, in a fixed order.
    public static var configuredKinds: [Kind] { Kind.allCases.filter { configured($0) != nil } }

    /// The package root (this file is Tests/LDAPTestSupport/TestDirectory.swift).
    public static var packageRoot: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
    }

    // MARK: - Private servers

    /// Starts a private server of `kind` in a new folder under /tmp. `stop()` it when
    /// done. Samba's ports are fixed: a private one needs its own loopback `address`
    /// (TB_SAMBA_ADDR), different from the shared one's.
    public static func startPrivate(_ kind: Kind, address: String? = nil) throws -> TestDirectory {
        let folder = "/tmp/tb-\(kind.rawValue)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        var command = ["/bin/bash", packageRoot + "/" + kind.script, "start", folder]
        if let address { command = ["/usr/bin/env", "TB_SAMBA_ADDR=\(address)"] + command }
        let result = try LDAPTestServer.runCommand(command)
        guard result.status == 0 else {
            _ = try? LDAPTestServer.runCommand(["/bin/bash", packageRoot + "/" + kind.script, "stop", folder])
            throw Failure("\(kind.script) start \(folder) failed (\(result.status)): \(result.standardError)")
        }
        return try TestDirectory(envFile: folder + "/env")
    }

    /// Stops the server with its script's `stop`; with `removeFiles` also deletes its folder.
    public func stop(removeFiles: Bool = true) throws {
        let result = try LDAPTestServer.runCommand(["/bin/bash", Self.packageRoot + "/" + kind.script, "stop", directory])
        guard result.status == 0 else {
            throw Failure("\(kind.script) stop \(directory) failed (\(result.status)): \(result.standardError)")
        }
        if removeFiles, directory.hasPrefix("/tmp/tb-") {
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    // MARK: - ldap-utils as the administrator

    /// Runs an ldap-utils tool (`ldapsearch`, `ldapmodify`, `ldapdelete`, ...) as the
    /// administrator over ldaps://, verifying the server with the test CA. Throws on a
    /// non-zero exit unless `allowFailure`.
    @discardableResult
    public func admin(_ tool: String, _ arguments: [String], input: String? = nil,
                      allowFailure: Bool = false) throws -> LDAPTestServer.CommandResult {
        try run(tool, arguments, as: rootDN, passwordFile: rootPasswordFile, input: input, allowFailure: allowFailure)
    }

    /// The same as the service account (for checking what it may and may not do).
    @discardableResult
    public func asServiceAccount(_ tool: String, _ arguments: [String], input: String? = nil,
                                 allowFailure: Bool = false) throws -> LDAPTestServer.CommandResult {
        try run(tool, arguments, as: bindDN, passwordFile: bindPasswordFile, input: input, allowFailure: allowFailure)
    }

    private func run(_ tool: String, _ arguments: [String], as dn: String, passwordFile: String, input: String?,
                     allowFailure: Bool) throws -> LDAPTestServer.CommandResult {
        let command = ["/usr/bin/env", "LDAPTLS_CACERT=\(caCert)", "LDAPTLS_REQCERT=demand",
                       "/usr/bin/\(tool)", "-x", "-H", ldapsURI, "-D", dn, "-y", passwordFile] + arguments
        let result = try LDAPTestServer.runCommand(command, input: input)
        if result.status != 0 && !allowFailure {
            throw Failure("\(tool) \(arguments.joined(separator: " ")) on \(kind) failed (\(result.status)): "
                + result.standardError)
        }
        return result
    }

    /// Applies LDIF change records (`changetype: add|modify|delete|modrdn`) as the administrator.
    public func change(_ ldif: String) throws {
        try admin("ldapmodify", [], input: ldif)
    }

    /// Entries under `base` (scope `scope`) matching `filter`, as the administrator.
    public func search(_ base: String, scope: String = "sub", filter: String = "(objectClass=*)",
                       attributes: [String] = ["*"]) throws -> [LDIFEntry] {
        let result = try admin("ldapsearch", ["-LLL", "-o", "ldif-wrap=no", "-b", base, "-s", scope, filter] + attributes)
        return LDIFEntry.parse(result.standardOutput)
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
