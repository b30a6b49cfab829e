// `doctor` (PRODUCT.md sections 4 and 7): checks an admin runs when pointing the bridge
// at a tree for the first time. One line per check, OK or FAIL, and a fix for each FAIL.

import DeviceReports
import Foundation
import LDAPClient
import LDAPSyntax
import Logging
import TakeoverCore

/// One doctor check.
public struct DoctorCheck: Sendable, Hashable {
    public var name: String
    public var ok: Bool
    public var detail: String
    public var fix: String

    public init(_ name: String, ok: Bool, _ detail: String, fix: String = "") {
        self.name = name
        self.ok = ok
        self.detail = detail
        self.fix = fix
    }

    /// `OK   connection: ...` or `FAIL connection: ...` plus `     fix: ...`; control
    /// characters in names from the directory or the reports shown escaped (`TerminalText`).
    public var text: String {
        var out = TerminalText.escape((ok ? "OK   " : "FAIL ") + name + ": " + detail) + "\n"
        if !ok && !fix.isEmpty { out += TerminalText.escape("     fix: " + fix) + "\n" }
        return out
    }
}

extension BridgeRunner {
    /// Runs every check, printing each line as it is known. Exit 0 only when all pass:
    /// 78 when the configuration fails, else 5 when any check fails.
    public func doctor() async -> ExitStatus {
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
            add(DoctorCheck("connection", ok: false, "\(config.ldap.uri): \(error)", fix: Doctor.connectionFix(error, config)))
            return .failure
        }
        add(DoctorCheck("connection", ok: true, "connected and bound to \(config.ldap.uri)"))
        add(Doctor.tlsCheck(config))

        do {
            let identity = try await connection.whoAmI()
            add(DoctorCheck("bind identity", ok: true, identity.isEmpty ? "anonymous" : identity))
        } catch {
            add(DoctorCheck("bind identity", ok: false, "whoami failed: \(error)",
                            fix: "the server must support the Who am I? extended operation (RFC 4532)"))
            failed = true
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
            add(DoctorCheck("users", ok: false, error.description, fix: Doctor.readFix(error)))
            failed = true
        }
        do {
            try await reader.readDevices(connection, into: &snapshot)
            add(DoctorCheck("devices", ok: true, "\(snapshot.deviceEntries) device entries under \(config.devices.searchBase) "
                + "with \(snapshot.connections.count) connections (\(config.devices.memberAttribute))"))
        } catch {
            add(DoctorCheck("devices", ok: false, error.description, fix: Doctor.readFix(error)))
            failed = true
        }
        do {
            try await reader.readBindingGroups(connection, into: &snapshot)
            let members = snapshot.bindingGroups.reduce(0) { $0 + $1.members.count }
            add(DoctorCheck("binding groups", ok: true, "\(snapshot.bindingGroups.count) under \(config.bindings.searchBase) "
                + "(objectClass \(config.bindings.objectClass), \(members) members)"))
        } catch {
            add(DoctorCheck("binding groups", ok: false, error.description, fix: Doctor.readFix(error)))
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
            return DoctorCheck("tls", ok: true, "StartTLS, certificates checked: tls_reqcert = \(config.ldap.tlsReqcert)"
                + (config.ldap.tlsCACert.map { ", CA \($0)" } ?? ""))
        }
        if plain.isEmpty {
            let kinds = Set(uris.map { $0.lowercased().hasPrefix("ldapi://") ? "ldapi:// (local socket, no TLS needed)" : "ldaps://" })
            return DoctorCheck("tls", ok: true, kinds.sorted().joined(separator: ", ")
                + (uris.contains { $0.lowercased().hasPrefix("ldaps://") } ? ", tls_reqcert = \(config.ldap.tlsReqcert)" : ""))
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
        let objectClass = config.bindings.objectClass
        let schemaHint = "load schema/takeover-bridge.schema (slapd.conf) or schema/takeover-bridge.ldif (cn=config), "
            + "or use object_class = \"groupOfNames\" with the standard schemas"
        if classes.contains(objectClass.lowercased()) {
            out.append(DoctorCheck("schema", ok: true, "object class \(objectClass) is defined"))
        } else {
            out.append(DoctorCheck("schema", ok: false, "object class \(objectClass) is not in the server's schema", fix: schemaHint))
        }
        for attribute in [layout.memberAttribute, layout.recordAttribute] {
            if attributes.contains(attribute.lowercased()) {
                out.append(DoctorCheck("schema", ok: true, "attribute \(attribute) is defined"))
            } else {
                out.append(DoctorCheck("schema", ok: false, "attribute \(attribute) is not in the server's schema", fix: schemaHint))
            }
        }
        let local = config.users.localAccountAttribute
        if !local.isEmpty {
            if attributes.contains(local.lowercased()) {
                out.append(DoctorCheck("schema", ok: true, "local account attribute \(local) is defined"))
            } else {
                out.append(DoctorCheck("schema", ok: false, "local account attribute \(local) is not in the server's schema",
                                       fix: "load schema/takeover-bridge.schema (it defines localUserAccount), or set "
                                           + "[users] local_account_attribute to an attribute the server has"))
            }
        }
        return out
    }

    /// Lower-cased NAMEs from schema descriptions: `( 1.2.3 NAME 'cn' ...` or `NAME ( 'cn' 'commonName' )`.
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
                if !trimmed.isEmpty { out.insert(trimmed.lowercased()) }
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
        case 49: return "check bind_dn and the password (file or environment variable)"
        case -1, -11: return "check that the server runs and that [ldap] uri names the right host and port"
        case -5: return "the server did not answer within [ldap] timeout = \(Int(config.ldap.timeout)) s"
        case 48: return "the server refuses this authentication method; check sasl_mech and bind_dn"
        case 13: return "the server requires TLS: use ldaps:// or set starttls = true"
        default:
            if error.operation == "starttls" || error.message.lowercased().contains("tls")
                || (error.diagnostic ?? "").lowercased().contains("certificate") {
                return "check tls_cacert (the CA that signed the server's certificate) and that the URI's host "
                    + "matches the certificate"
            }
            return "check [ldap] uri, bind_dn and the TLS settings"
        }
    }

    static func readFix(_ error: DirectoryReadError) -> String {
        guard let code = error.error?.code else { return "check the base and the server" }
        switch code {
        case 32: return "the base '\(error.base)' does not exist: check search_base"
        case 4: return "the server's size limit stopped the search: give the service account an unlimited size "
            + "limit (slapd: limits dn.exact=\"<bind_dn>\" size=unlimited) or lower [ldap] page_size"
        case 3, -5: return "the search timed out: raise [ldap] timeout or the server's time limit for the service account"
        case 50: return "the service account may not read '\(error.base)': grant it read access"
        default: return "check search_base and filter"
        }
    }
}
