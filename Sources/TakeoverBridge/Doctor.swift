// `doctor` (docs/product.md sections 4 and 7): checks an admin runs when pointing the bridge
// at a tree for the first time. One line per check, OK or FAIL, and a fix for each FAIL.

import DeviceReports
import Foundation
import LDAPClient
import LDAPSyntax
import Logging
import TakeoverCore

/// One doctor check.
package struct DoctorCheck: Sendable, Hashable {
    package var name: String
    package var ok: Bool
    package var detail: String
    package var fix: String
    /// Passed, but with something the admin should know (`WARN`): not a failure.
    package var warning: Bool

    package init(_ name: String, ok: Bool, _ detail: String, fix: String = "", warning: Bool = false) {
        self.name = name
        self.ok = ok
        self.detail = detail
        self.fix = fix
        self.warning = warning && ok
    }

    /// `OK   connection: ...`, `WARN bind identity: ...` or `FAIL connection: ...` plus
    /// `     fix: ...`; control characters in names from the directory or the reports
    /// shown escaped (`TerminalText`).
    package var text: String {
        var out = TerminalText.escape((warning ? "WARN " : ok ? "OK   " : "FAIL ") + name + ": " + detail) + "\n"
        if (!ok || warning) && !fix.isEmpty { out += TerminalText.escape("     fix: " + fix) + "\n" }
        return out
    }
}

extension BridgeRunner {
    /// Runs every check, printing each line as it is known. Exit 0 only when all pass:
    /// 78 when the configuration fails, else 5 when any check fails.
    package func doctor() async -> ExitStatus {
        start(command: "doctor")
        var checks: [DoctorCheck] = []
        func add(_ check: DoctorCheck) {
            checks.append(check)
            output.write(check.text)
        }
        let status = await runDoctor(add)
        finish(status)
        return status
    }

    private func runDoctor(_ add: (DoctorCheck) -> Void) async -> ExitStatus {
        // Configuration.
        let config: BridgeConfig
        do {
            config = try loadConfig()
        } catch {
            add(DoctorCheck("config", ok: false, "\(configPath): " + ([error.message] + error.details).joined(separator: "; "),
                            fix: "correct the lines named above (config.example.toml documents every key)"))
            return .configuration
        }
        add(DoctorCheck("config", ok: true, "\(configPath) is valid"))
        let password: String?
        do {
            password = try self.password(config)
        } catch {
            add(DoctorCheck("bind password", ok: false, error.details.joined(separator: "; "),
                            fix: "make bind_password_file readable by this user only (chmod 600) or set the environment variable"))
            return .configuration
        }
        if config.ldap.bindDN != nil || config.ldap.saslMech != nil {
            add(DoctorCheck("bind password", ok: true, password == nil ? "none needed" :
                (config.ldap.bindPasswordFile.map { "read from \($0)" } ?? "read from $\(config.ldap.bindPasswordEnv ?? "")")))
        }

        var failed = false
        let connector = Connector(config: config, password: password)

        // Connection and bind.
        let connection: LDAPConnection
        do {
            connection = try await connector.openRead()
        } catch {
            var fix = Doctor.connectionFix(error, config)
            if let names = await Doctor.certificateNameMismatch(error, connector: connector, uri: config.ldap.uri) {
                fix = names
            }
            add(DoctorCheck("connection", ok: false, "\(config.ldap.uri): \(error)", fix: fix))
            return .failure
        }
        add(DoctorCheck("connection", ok: true, "connected and bound to \(config.ldap.uri)"))
        add(Doctor.tlsCheck(config))
        let server = await DirectoryServerKind.detect(connection)
        add(DoctorCheck("server", ok: true, server.description))

        do {
            let identity = try await connection.whoAmI()
            add(DoctorCheck("bind identity", ok: true, identity.isEmpty ? "anonymous" : identity))
        } catch {
            // Active Directory (and Samba) have no Who am I? (RFC 4532): the bind itself
            // succeeded, so this is worth knowing, not a failure.
            let name = config.ldap.bindDN ?? config.ldap.saslAuthcID ?? "anonymous"
            add(DoctorCheck("bind identity", ok: true, "bound as \(name); the server has no Who am I? operation (\(error))",
                            fix: server == .activeDirectory
                                ? "nothing to do: Active Directory does not implement RFC 4532; the bind succeeded"
                                : "nothing to do if the bind name is right: the server does not implement RFC 4532",
                            warning: true))
        }

        // Schema.
        do {
            let schema = try await connection.subschema()
            for check in Doctor.schemaChecks(schema, config: config) {
                add(check)
                if !check.ok { failed = true }
            }
        } catch {
            add(DoctorCheck("schema", ok: false, "cannot read the subschema entry: \(error)",
                            fix: "allow the service account to read cn=Subschema"))
            failed = true
        }

        // Counts under each base.
        var snapshot = DirectorySnapshot()
        let reader = DirectoryReader(config: config)
        do {
            try await reader.readUsers(connection, into: &snapshot)
            let ok = snapshot.users.count > 0
            add(DoctorCheck("users", ok: ok, "\(snapshot.users.count) under \(config.users.searchBase) matching \(config.users.filter)",
                            fix: "check [users] search_base and filter, and that the service account may read the users"))
            if !ok { failed = true }
        } catch {
            add(DoctorCheck("users", ok: false, error.description, fix: Doctor.readFix(error, server: server, config: config)))
            failed = true
        }
        do {
            try await reader.readDevices(connection, into: &snapshot)
            add(DoctorCheck("devices", ok: true, "\(snapshot.deviceEntries) device entries under \(config.devices.searchBase) "
                + "with \(snapshot.connections.count) connections (\(config.devices.memberAttribute))"))
        } catch {
            add(DoctorCheck("devices", ok: false, error.description, fix: Doctor.readFix(error, server: server, config: config)))
            failed = true
        }
        do {
            try await reader.readBindingGroups(connection, into: &snapshot)
            let members = snapshot.bindingGroups.reduce(0) { $0 + $1.members.count }
            add(DoctorCheck("binding groups", ok: true, "\(snapshot.bindingGroups.count) under \(config.bindings.searchBase) "
                + "(objectClass \(config.bindings.objectClass), \(members) members)"))
        } catch {
            add(DoctorCheck("binding groups", ok: false, error.description, fix: Doctor.readFix(error, server: server, config: config)))
            failed = true
        }
        if !snapshot.problems.isEmpty {
            let first = snapshot.problems[0]
            add(DoctorCheck("value lists", ok: false, "\(snapshot.problems.count) device\(snapshot.problems.count == 1 ? "" : "s") "
                + "cannot be judged; first: \(first.source): \(first.message)",
                fix: "the server handed out a ranged value list (member;range=...) that does not add up; check the "
                    + "server (or a proxy in front of it), and its MaxValRange; those devices are deferred meanwhile"))
            failed = true
        }
        // The lease across hosts (issue 11): who holds it, or who wrote last.
        do {
            let leaseDN = Lease.dn(bindingsBase: config.bindings.searchBase)
            let lease = try await Lease.inspect(connection, bindingsBase: config.bindings.searchBase)
            if let lease, lease.free {
                add(DoctorCheck("lease", ok: true, "\(lease.summary) (\(leaseDN))"))
            } else if let lease {
                let held = lease.expires > clock()
                add(DoctorCheck("lease", ok: true, held
                    ? "held by \(lease.summary) (\(leaseDN)): an apply is running there, or was killed and its lease expires then"
                    : "expired: \(lease.summary) (\(leaseDN)); the next apply takes it over"))
            } else {
                add(DoctorCheck("lease", ok: true, "free: no apply has written yet (\(leaseDN) not there)"))
            }
        } catch {
            add(DoctorCheck("lease", ok: false, error.description,
                            fix: "let the service account read \(config.bindings.searchBase); delete a damaged lease entry when no apply runs"))
            failed = true
        }
        if !snapshot.warnings.isEmpty {
            add(DoctorCheck("entries", ok: false, "\(snapshot.warnings.count) values or entries skipped; first: "
                + "\(snapshot.warnings[0].source): \(snapshot.warnings[0].message)",
                fix: "correct the entries named (values must be UTF-8 text)"))
            failed = true
        }

        // Reports.
        let reports = ReportsFolder.read(path: config.devices.reports, limits: config.reportLimits())
        let devices = Set(reports.reports.map(\.device)).count
        if let fatal = reports.fatal {
            add(DoctorCheck("reports", ok: false, fatal, fix: "remove old or unexpected reports, or raise [devices] max_reports_size"))
            failed = true
        } else if reports.problems.isEmpty {
            add(DoctorCheck("reports", ok: true, "\(reports.reports.count) reports for \(devices) devices in \(config.devices.reports)"
                + (reports.warnings.isEmpty ? "" : ", \(reports.warnings.count) warnings")))
        } else {
            let first = reports.problems[0]
            add(DoctorCheck("reports", ok: false, "\(reports.reports.count) reports for \(devices) devices in \(config.devices.reports); "
                + "\(reports.problems.count) problem\(reports.problems.count == 1 ? "" : "s"), first: "
                + "\(BridgeRunner.where(first)): \(first.message)",
                fix: "fix or remove the files named (run plan to see every problem); their devices are deferred meanwhile"))
            failed = true
        }

        // Write access to the bindings base, on the write connection.
        var writeConnection: LDAPConnection? = connection
        if connector.hasSeparateWriteURI {
            await connection.close()
            writeConnection = nil
            do {
                writeConnection = try await connector.open(uri: connector.writeURI)
            } catch {
                add(DoctorCheck("write access", ok: false, "cannot connect to write_uri \(connector.writeURI): \(error)",
                                fix: Doctor.connectionFix(error, config)))
                return .failure
            }
        }
        if let writeConnection {
            let check = await Doctor.writeProbe(writeConnection, config: config)
            add(check)
            if !check.ok { failed = true }
            await writeConnection.close()
        }
        return failed ? .failure : .ok
    }
}

enum Doctor {
    static func tlsCheck(_ config: BridgeConfig) -> DoctorCheck {
        let uris = config.ldap.uris + (config.ldap.writeURI.map { [$0] } ?? [])
        let plain = uris.filter { $0.lowercased().hasPrefix("ldap://") }
        if config.ldap.startTLS {
            return DoctorCheck("tls", ok: true, "StartTLS, certificates checked: tls_reqcert = \(config.ldap.tlsReqcert.rawValue)"
                + (config.ldap.tlsCACert.map { ", CA \($0)" } ?? ""))
        }
        if plain.isEmpty {
            let kinds = Set(uris.map { $0.lowercased().hasPrefix("ldapi://") ? "ldapi:// (local socket, no TLS needed)" : "ldaps://" })
            return DoctorCheck("tls", ok: true, kinds.sorted().joined(separator: ", ")
                + (uris.contains { $0.lowercased().hasPrefix("ldaps://") } ? ", tls_reqcert = \(config.ldap.tlsReqcert.rawValue)" : ""))
        }
        if config.ldap.bindDN == nil && config.ldap.saslMech == nil {
            return DoctorCheck("tls", ok: true, "not in use (anonymous bind, no password sent) on \(plain.joined(separator: " "))")
        }
        if config.ldap.allowCleartext {
            return DoctorCheck("tls", ok: false, "not in use: the password goes in cleartext to \(plain.joined(separator: " ")) "
                + "(allow_cleartext = true)", fix: "use ldaps:// or set starttls = true, then remove allow_cleartext")
        }
        return DoctorCheck("tls", ok: true, "not in use on loopback \(plain.joined(separator: " ")) (the password never leaves this host)")
    }

    /// The binding object class, the record attribute of the project schema, and the
    /// local account attribute when configured.
    static func schemaChecks(_ schema: LDAPEntry, config: BridgeConfig) -> [DoctorCheck] {
        let classes = names(in: schema.strings("objectClasses"))
        let attributes = names(in: schema.strings("attributeTypes"))
        var out: [DoctorCheck] = []
        let layout = config.layout()
        let objectClass = config.bindings.objectClass.rawValue
        let schemaHint = "load schema/takeover-bridge.schema (slapd.conf) or schema/takeover-bridge.ldif (cn=config), "
            + "or use object_class = \"groupOfNames\" with the standard schemas"
        if classes.contains(objectClass.asciiLowercased) {
            out.append(DoctorCheck("schema", ok: true, "object class \(objectClass) is defined"))
        } else {
            out.append(DoctorCheck("schema", ok: false, "object class \(objectClass) is not in the server's schema", fix: schemaHint))
        }
        for attribute in [layout.memberAttribute, layout.recordAttribute] {
            if attributes.contains(attribute.asciiLowercased) {
                out.append(DoctorCheck("schema", ok: true, "attribute \(attribute) is defined"))
            } else {
                out.append(DoctorCheck("schema", ok: false, "attribute \(attribute) is not in the server's schema", fix: schemaHint))
            }
        }
        let local = config.users.localAccountAttribute
        if !local.isEmpty {
            if attributes.contains(local.asciiLowercased) {
                out.append(DoctorCheck("schema", ok: true, "local account attribute \(local) is defined"))
            } else {
                out.append(DoctorCheck("schema", ok: false, "local account attribute \(local) is not in the server's schema",
                                       fix: "load schema/takeover-bridge.schema (it defines localUserAccount), or set "
                                           + "[users] local_account_attribute to an attribute the server has"))
            }
        }
        return out
    }

    /// NAMEs from schema descriptions, ASCII-lowercased (descriptors compare without ASCII case): `( 1.2.3 NAME 'cn' ...` or `NAME ( 'cn' 'commonName' )`.
    static func names(in descriptions: [String]) -> Set<String> {
        var out = Set<String>()
        for description in descriptions {
            guard let range = description.range(of: " NAME ") else { continue }
            var rest = description[range.upperBound...].drop { $0 == " " }
            let list: Substring
            if rest.first == "(" {
                rest = rest.dropFirst()
                list = rest.prefix { $0 != ")" }
            } else {
                list = rest.prefix { $0 != " " }
            }
            for name in list.split(separator: " ") {
                let trimmed = name.trimmingCharacters(in: CharacterSet(charactersIn: "'"))
                if !trimmed.isEmpty { out.insert(trimmed.asciiLowercased) }
            }
        }
        return out
    }

    /// Adds and deletes `cn=takeover-bridge-doctor-<pid>` under the bindings base.
    static func writeProbe(_ connection: LDAPConnection, config: BridgeConfig) async -> DoctorCheck {
        let layout = config.layout()
        let name = "takeover-bridge-doctor-\(getpid())"
        let dn = DNEscaping.rdn("cn", name) + "," + config.bindings.searchBase
        var attributes: [(String, [String])] = [("objectClass", layout.objectClasses), ("cn", [name])]
        if let placeholder = layout.placeholderMember {
            attributes.append((layout.memberAttribute, [placeholder]))
        }
        do {
            try await connection.add(dn: dn, attributes: attributes)
        } catch {
            return DoctorCheck("write access", ok: false, "cannot add a probe entry \(dn): \(error)",
                               fix: "grant the service account write access to \(config.bindings.searchBase) and its "
                                   + "children (and nothing else), and check the binding object class")
        }
        do {
            try await connection.delete(dn: dn)
        } catch {
            return DoctorCheck("write access", ok: false, "added \(dn) but cannot delete it: \(error)",
                               fix: "grant the service account delete rights under \(config.bindings.searchBase), and "
                                   + "remove \(dn) by hand")
        }
        return DoctorCheck("write access", ok: true, "added and deleted a probe entry under \(config.bindings.searchBase)")
    }

    static func connectionFix(_ error: Error, _ config: BridgeConfig) -> String {
        guard let error = error as? LDAPError else { return "check [ldap] uri" }
        switch error.code {
        case .invalidCredentials: return "check bind_dn and the password (file or environment variable)"
        case .serverDown, .connectError: return "check that the server runs and that [ldap] uri names the right host and port"
        case .timeout: return "the server did not answer within [ldap] timeout = \(Int(config.ldap.timeout)) s"
        case .inappropriateAuthentication: return "the server refuses this authentication method; check sasl_mech and bind_dn"
        case .confidentialityRequired: return "the server requires TLS: use ldaps:// or set starttls = true"
        default:
            if error.operation == .starttls || error.message.lowercased().contains("tls")
                || (error.diagnostic ?? "").lowercased().contains("certificate") {
                return "check tls_cacert (the CA that signed the server's certificate) and that the URI's host "
                    + "matches the certificate"
            }
            return "check [ldap] uri, bind_dn and the TLS settings"
        }
    }

    static func readFix(_ error: DirectoryReadError, server: DirectoryServerKind = .other, config: BridgeConfig? = nil) -> String {
        guard let code = error.error?.code else { return "check the base and the server" }
        let account = config?.ldap.bindDN ?? "<bind_dn>"
        switch code {
        case .noSuchObject: return "the base '\(error.base)' does not exist: check search_base"
        case .sizeLimitExceeded, .adminLimitExceeded:
            return server.limitFix(code: code, account: account, pageSize: config?.ldap.pageSize ?? BridgeConfig.LDAP.defaultPageSize)
        case .timeLimitExceeded, .timeout: return "the search timed out: raise [ldap] timeout or the server's time limit for the service account"
        case .insufficientAccessRights: return "the service account may not read '\(error.base)': grant it read access"
        default: return "check search_base and filter"
        }
    }
}

// MARK: - Server-specific advice (issue 10 item 8)

/// Which directory server this is, from its root DSE, for advice in its own terms.
package enum DirectoryServerKind: Sendable, Hashable, CustomStringConvertible {
    case openLDAP, dirsrv389, activeDirectory, other

    /// Reads `vendorName`, `vendorVersion`, `objectClass`, `supportedCapabilities` and
    /// `forestFunctionality` from the root DSE; `.other` when it cannot be read.
    package static func detect(_ connection: LDAPConnection) async -> DirectoryServerKind {
        guard let root = try? await connection.rootDSE(attributes: ["vendorName", "vendorVersion", "objectClass",
                                                                    "supportedCapabilities", "forestFunctionality"])
        else { return .other }
        return kind(of: root)
    }

    static func kind(of root: LDAPEntry) -> DirectoryServerKind {
        // LDAP_CAP_ACTIVE_DIRECTORY_OID (MS-ADTS 3.1.1.3.4.3).
        if root.strings("supportedCapabilities").contains("1.2.840.113556.1.4.800") || root.has("forestFunctionality") {
            return .activeDirectory
        }
        let vendor = (root.strings("vendorName") + root.strings("vendorVersion")).joined(separator: " ").lowercased()
        if vendor.contains("389") || vendor.contains("fedora project") || vendor.contains("red hat") { return .dirsrv389 }
        if root.strings("objectClass").contains(where: { $0.caseInsensitiveEquals("OpenLDAProotDSE") }) || vendor.contains("openldap") {
            return .openLDAP
        }
        return .other
    }

    package var description: String {
        switch self {
        case .openLDAP: "OpenLDAP"
        case .dirsrv389: "389 Directory Server"
        case .activeDirectory: "Active Directory"
        case .other: "not recognised (advice is generic)"
        }
    }

    /// What to raise when a search stops at the size limit (4) or an administrative
    /// limit (11), in the server's own terms.
    func limitFix(code: LDAPResultCode, account: String, pageSize: Int) -> String {
        let what = code == .sizeLimitExceeded ? "size limit" : "administrative limit"
        switch self {
        case .openLDAP:
            return "the server's \(what) stopped the search: give the service account its own limits in slapd "
                + "(limits dn.exact=\"\(account)\" size=unlimited size.pr=unlimited size.prtotal=unlimited, in "
                + "slapd.conf or olcLimits)"
        case .dirsrv389:
            return "389 DS stopped the search at its \(what): set nsLookThroughLimit: -1 and nsSizeLimit: -1 (and "
                + "nsPagedLookThroughLimit / nsPagedSizeLimit) on the service account's own entry \(account), or raise "
                + "nsslapd-lookthroughlimit / nsslapd-sizelimit in cn=config (which affects every client)"
        case .activeDirectory:
            return "Active Directory stopped the search at its \(what): keep [ldap] page_size (now \(pageSize)) at "
                + "or below the domain's MaxPageSize (default 1000), or raise MaxPageSize / MaxResultSetSize in the "
                + "LDAP query policy (ntdsutil \"ldap policies\"; Samba: lDAPAdminLimits)"
        case .other:
            return "the server's \(what) stopped the search: give the service account unlimited size and "
                + "look-through limits, or lower [ldap] page_size"
        }
    }
}

extension Doctor {
    /// When a TLS connection failed because the certificate names another host: the
    /// names it has. Reads the certificate over a connection of its own with
    /// `tls_reqcert = never` and no bind (nothing is sent but the handshake).
    static func certificateNameMismatch(_ error: Error, connector: Connector, uri: String) async -> String? {
        guard let error = error as? LDAPError, error.operation == .connect || error.operation == .starttls,
              (error.diagnostic ?? "").contains("TLS") || error.code == .connectError else { return nil }
        for one in connector.config.ldap.uris {
            guard let host = Doctor.host(of: one) else { continue }
            var options = connector.options(uri: one)
            guard options.startTLS || one.lowercased().hasPrefix("ldaps://") else { continue }
            options.tlsRequireCert = .never
            guard let probe = try? await LDAPConnection.connect(options) else { continue }
            let der = await probe.peerCertificate()
            await probe.close()
            guard let der, let names = CertificateNames(der: der) else { continue }
            if names.matches(host: host) { return nil } // a trust problem, not the name
            let list = names.all.isEmpty ? "no host name at all" : names.all.joined(separator: ", ")
            return "the server certificate names another host: it is for \(list), not '\(host)'; put one of those "
                + "names in [ldap] uri (it must resolve to the server), or give the server a certificate that names '\(host)'"
        }
        return nil
    }

    /// The host of an `ldap://` or `ldaps://` URI, without port or brackets.
    static func host(of uri: String) -> String? {
        guard let schemeEnd = uri.range(of: "://") else { return nil }
        var rest = uri[schemeEnd.upperBound...].prefix { $0 != "/" }
        if rest.hasPrefix("[") {
            rest = rest.dropFirst().prefix { $0 != "]" }
        } else if let colon = rest.lastIndex(of: ":") {
            rest = rest[..<colon]
        }
        return rest.isEmpty ? nil : String(rest)
    }
}
