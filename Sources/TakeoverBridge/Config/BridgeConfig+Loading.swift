// Loading a configuration file, and the values derived from the model: the binding layout,
// the planner's policy, the bind password and the cleartext rule.

import Foundation
import LDAPClient
import TakeoverCore
import DeviceReports

extension BridgeConfig {
    // MARK: Loading

    /// Reads `path`, refuses it when others can write it, parses and validates it, resolves
    /// relative paths against its folder, and checks the bind password source and TLS key
    /// file (existence and permissions). Every problem found is in the thrown error.
    package static func load(path: String,
                            environment: [String: String] = ProcessInfo.processInfo.environment) throws(ConfigError)
        -> BridgeConfig {
        if let problem = FileSecurity.checkConfigFile(path) {
            throw ConfigError(ConfigProblem(source: path, message: problem))
        }
        let text: String
        switch readText(path) {
        case .success(let t): text = t
        case .failure(let message): throw ConfigError(ConfigProblem(source: path, message: message))
        }
        let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        let base = (absolute as NSString).deletingLastPathComponent
        var config = try parse(toml: text, source: path, baseDirectory: base)

        var problems: [ConfigProblem] = []
        if let file = config.ldap.bindPasswordFile, let problem = FileSecurity.checkSecretFile(file) {
            problems.append(config.problem("ldap.bind_password_file", problem))
        }
        if let file = config.ldap.tlsKey, let problem = FileSecurity.checkSecretFile(file) {
            problems.append(config.problem("ldap.tls_key", problem))
        }
        if let name = config.ldap.bindPasswordEnv, environment[name] == nil {
            problems.append(config.problem("ldap.bind_password_env", "the environment variable \(name) is not set"))
        }
        if !problems.isEmpty { throw ConfigError(problems: problems) }
        config.sourcePath = path
        return config
    }

    /// Parses and validates TOML text. `source` names it in messages; relative paths are
    /// resolved against `baseDirectory`.
    package static func parse(toml: String, source: String, baseDirectory: String) throws(ConfigError) -> BridgeConfig {
        var reader = ConfigReader(text: toml, source: source, baseDirectory: baseDirectory)
        return try reader.read()
    }

    // MARK: Derived values

    /// How bindings are stored (TakeoverCore).
    package func layout() -> BindingLayout {
        switch bindings.objectClass {
        case .takeoverBindingGroup:
            return .projectSchema(base: bindings.searchBase, memberAttribute: bindings.memberAttribute)
        case .group:
            return .activeDirectoryGroup(base: bindings.searchBase)
        case .groupOfNames, .groupOfUniqueNames:
            return .standardSchema(base: bindings.searchBase, objectClass: bindings.objectClass.rawValue,
                                   memberAttribute: bindings.memberAttribute)
        }
    }

    /// The planner's policy, including `[devices] active_within`.
    package func corePolicy() -> Policy {
        Policy(protectedAccounts: policy.protectedAccounts, minUIDLinux: policy.minUIDLinux,
               minUIDMacOS: policy.minUIDMacOS,
               onLikelyMismatch: policy.onLikelyMismatch,
               activeWithin: devices.activeWithin, maxClockSkew: devices.maxClockSkew)
    }

    /// The limits for reading `[devices] reports` (`max_reports_size`).
    package func reportLimits() -> ReportLimits {
        ReportLimits(maxTotalBytes: devices.maxReportsSize)
    }

    /// The bind password from `bind_password_file` (refused when group or others can access
    /// it; one trailing newline stripped) or `bind_password_env`; nil when neither is set.
    /// An empty password is refused: libldap would turn it into an anonymous bind.
    package func readBindPassword(environment: [String: String] = ProcessInfo.processInfo.environment)
        throws(ConfigError) -> String? {
        if let file = ldap.bindPasswordFile {
            // Checked on the open file and read into a buffer wiped once read (issue 11).
            let text: String
            switch FileSecurity.readSecretFile(file) {
            case .success(let t): text = t
            case .failure(let error): throw ConfigError(problem("ldap.bind_password_file", error.description))
            }
            if text.isEmpty {
                throw ConfigError(problem("ldap.bind_password_file", "\(file) is empty"))
            }
            return text
        }
        if let name = ldap.bindPasswordEnv {
            guard let value = environment[name] else {
                throw ConfigError(problem("ldap.bind_password_env", "the environment variable \(name) is not set"))
            }
            if value.isEmpty {
                throw ConfigError(problem("ldap.bind_password_env", "the environment variable \(name) is empty"))
            }
            return value
        }
        return nil
    }

    /// docs/product.md section 7: a password sent in cleartext to a host that is not loopback is
    /// refused unless `allow_cleartext = true`. Returns the message when refused.
    /// `ldaps://` and `ldapi://` are fine, so is `ldap://` with StartTLS, an anonymous
    /// connection, or a SASL mechanism that does not send the password itself
    /// (PLAIN and LOGIN do, so they count as cleartext).
    package func cleartextProblem() -> String? {
        if ldap.allowCleartext || ldap.startTLS { return nil }
        let sendsPassword: Bool
        if let mech = ldap.saslMech {
            let upper = mech.uppercased()
            sendsPassword = upper == "PLAIN" || upper == "LOGIN"
        } else {
            sendsPassword = ldap.bindDN != nil
        }
        guard sendsPassword else { return nil }
        var all = LDAPURI.split(ldap.uri)
        if let write = ldap.writeURI { all += LDAPURI.split(write) }
        for uri in all {
            switch LDAPURI.cleartextExposure(uri) {
            case nil:
                continue
            case .noHost:
                return "\(ConfigSchema.excerpt(uri)) names no host, so the password could go in cleartext to a host that is not "
                    + "loopback; name the host, use ldaps:// or starttls = true, or set allow_cleartext = true"
            case .host(let host):
                return "refusing to send the bind password in cleartext to \(ConfigSchema.excerpt(host)) (\(ConfigSchema.excerpt(uri))); "
                    + "use ldaps://, set starttls = true, or set allow_cleartext = true to accept the risk"
            case .unreadable:
                return "\(ConfigSchema.excerpt(uri)) cannot be checked, so the password could go in cleartext; "
                    + "use ldaps://, set starttls = true, or set allow_cleartext = true to accept the risk"
            }
        }
        return nil
    }

    /// A problem about `key`, located at its line when known.
    package func problem(_ key: String, _ message: String) -> ConfigProblem {
        let section = key.split(separator: ".").first.map(String.init) ?? key
        let line = keyLines[key] ?? keyLines[section]
            ?? keyLines.filter { $0.key.hasPrefix(section + ".") }.map(\.value).min()
        return ConfigProblem(source: sourcePath, line: line, key: key, message: message)
    }

    // MARK: File reading

    enum ReadResult {
        case success(String)
        case failure(String)
    }

    static func readText(_ path: String) -> ReadResult {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            let message = String(cString: strerror(errno))
            return .failure("cannot read \(path): \(message)")
        }
        defer { try? handle.close() }
        let data: Data
        do {
            data = try handle.read(upToCount: maximumFileSize + 1) ?? Data()
        } catch {
            return .failure("cannot read \(path): \(error.localizedDescription)")
        }
        if data.count > maximumFileSize {
            return .failure("\(path) is larger than \(maximumFileSize) bytes; is it the right file?")
        }
        var bytes = [UInt8](data)
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes.removeFirst(3) }
        if bytes.starts(with: [0xFF, 0xFE]) || bytes.starts(with: [0xFE, 0xFF]) {
            return .failure("\(path) is UTF-16; save it as UTF-8")
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            return .failure("\(path) is not valid UTF-8")
        }
        return .success(text)
    }
}
