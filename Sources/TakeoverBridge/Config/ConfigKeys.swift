// The one table of configuration keys. Each row says where a key lives, its TOML type, and
// how its value is checked and stored in the model. The table drives reading
// (`ConfigReader.read`), the unknown-key check with its suggestions
// (`ConfigReader.checkStructure`) and the test that config.example.toml documents every key.
// Defaults are not restated here: the model's initialisers (BridgeConfig.swift) hold them,
// the reader starts from that default model, and a key absent from the file leaves it.

import Foundation

/// One key of the configuration.
struct ConfigKey {
    let section: String
    let name: String
    let kind: ConfigKeyKind
    /// Reads the key (absent: the default stays), checks it, and stores it in the model;
    /// every problem goes to the reader, with the key's line.
    let read: (inout ConfigReader, inout BridgeConfig) -> Void

    init(_ section: String, _ name: String, _ kind: ConfigKeyKind,
         read: @escaping (inout ConfigReader, inout BridgeConfig) -> Void) {
        self.section = section
        self.name = name
        self.kind = kind
        self.read = read
    }

    var dotted: String { "\(section).\(name)" }

    // MARK: Rows of common shapes

    /// A string that must be present and not empty; `store` checks and keeps it.
    static func required(_ section: String, _ name: String, hint: String,
                         store: @escaping (inout ConfigReader, inout BridgeConfig, String) -> Void) -> ConfigKey {
        ConfigKey(section, name, .string) { r, c in
            store(&r, &c, r.required(section, name, hint: hint))
        }
    }

    /// A string that must be a DN, present and not empty.
    static func requiredDN(_ section: String, _ name: String, _ path: WritableKeyPath<BridgeConfig, String>,
                           hint: String) -> ConfigKey {
        required(section, name, hint: hint) { r, c, value in
            c[keyPath: path] = value
            if !value.isEmpty && !ConfigReader.looksLikeDN(value) {
                r.add("\(section).\(name)", "\"\(ConfigSchema.excerpt(value))\" does not look like a DN")
            }
        }
    }

    /// An optional string; empty counts as unset.
    static func optional(_ section: String, _ name: String,
                         _ path: WritableKeyPath<BridgeConfig, String?>) -> ConfigKey {
        ConfigKey(section, name, .string) { r, c in
            if let value = r.optionalString(section, name) { c[keyPath: path] = value }
        }
    }

    /// An optional file path, resolved against the config's folder.
    static func path(_ section: String, _ name: String, _ path: WritableKeyPath<BridgeConfig, String?>) -> ConfigKey {
        ConfigKey(section, name, .string) { r, c in
            if let value = r.optionalString(section, name) { c[keyPath: path] = r.resolve(value) }
        }
    }

    static func flag(_ section: String, _ name: String, _ path: WritableKeyPath<BridgeConfig, Bool>) -> ConfigKey {
        ConfigKey(section, name, .bool) { r, c in
            c[keyPath: path] = r.bool(section, name, c[keyPath: path])
        }
    }

    /// An attribute name (RFC 4512).
    static func attribute(_ section: String, _ name: String,
                          _ path: WritableKeyPath<BridgeConfig, String>) -> ConfigKey {
        ConfigKey(section, name, .string) { r, c in
            c[keyPath: path] = r.attribute(section, name, c[keyPath: path])
        }
    }

    /// An LDAP filter in parentheses.
    static func filter(_ section: String, _ name: String, _ path: WritableKeyPath<BridgeConfig, String>) -> ConfigKey {
        ConfigKey(section, name, .string) { r, c in
            guard let f = r.string(section, name) else { return }
            if let problem = ConfigReader.filterProblem(f) {
                r.add("\(section).\(name)", problem)
            } else {
                c[keyPath: path] = f
            }
        }
    }

    /// One of a list of words (compared without case, stored as spelled in the list).
    static func choice<Choice: RawRepresentable<String>>(_ section: String, _ name: String,
                                                         _ path: WritableKeyPath<BridgeConfig, Choice>,
                                                         _ allowed: [Choice]) -> ConfigKey {
        ConfigKey(section, name, .string) { r, c in
            if let s = r.string(section, name), let match = r.oneOf("\(section).\(name)", s, allowed) {
                c[keyPath: path] = match
            }
        }
    }

    /// An integer; `problem` says what is wrong with a value out of range (nil: fine).
    static func integer<Value: FixedWidthInteger>(_ section: String, _ name: String,
                                                  _ path: WritableKeyPath<BridgeConfig, Value>,
                                                  problem: @escaping (Int64) -> String?) -> ConfigKey {
        ConfigKey(section, name, .int) { r, c in
            let value = r.int(section, name, Int64(c[keyPath: path]))
            if let message = problem(value) {
                r.add("\(section).\(name)", message)
            } else if let stored = Value(exactly: value) {
                c[keyPath: path] = stored
            }
        }
    }

    /// A number (an integer or one with a fraction).
    static func number(_ section: String, _ name: String, _ path: WritableKeyPath<BridgeConfig, Double>,
                       problem: @escaping (Double) -> String?) -> ConfigKey {
        ConfigKey(section, name, .number) { r, c in
            let value = r.number(section, name, c[keyPath: path])
            if let message = problem(value) { r.add("\(section).\(name)", message) } else { c[keyPath: path] = value }
        }
    }

    /// A duration in seconds ("7d", "12h", 3600).
    static func duration(_ section: String, _ name: String, _ path: WritableKeyPath<BridgeConfig, Int64>,
                         problem: @escaping (Int64) -> String? = { _ in nil }) -> ConfigKey {
        ConfigKey(section, name, .duration) { r, c in
            let value = r.duration(section, name, c[keyPath: path])
            if let message = problem(value) { r.add("\(section).\(name)", message) } else { c[keyPath: path] = value }
        }
    }
}

extension ConfigSchema {
    /// Every key, section by section, in the order they are read.
    static var keys: [ConfigKey] {
        [
            // [ldap]
            .required("ldap", "uri", hint: "the directory's URI, like ldaps://ldap.example.org") { r, c, uri in
                if !uri.isEmpty { r.checkURIs("ldap.uri", uri) }
                c.ldap.uri = uri.trimmingCharacters(in: .whitespaces)
            },
            ConfigKey("ldap", "write_uri", .string) { r, c in
                guard let w = r.optionalString("ldap", "write_uri") else { return }
                r.checkURIs("ldap.write_uri", w)
                c.ldap.writeURI = w.trimmingCharacters(in: .whitespaces)
            },
            ConfigKey("ldap", "bind_dn", .string) { r, c in
                guard let dn = r.optionalString("ldap", "bind_dn") else { return }
                c.ldap.bindDN = dn
                if ConfigReader.bindNameForm(dn) == nil {
                    r.add("ldap.bind_dn", "\"\(ConfigSchema.excerpt(dn))\" is not a DN "
                        + "(like cn=bridge,ou=services,dc=example,dc=org), a user principal name "
                        + "(like bridge@example.org) or a down-level logon name (like EXAMPLE\\bridge)")
                }
            },
            .path("ldap", "bind_password_file", \.ldap.bindPasswordFile),
            ConfigKey("ldap", "bind_password_env", .string) { r, c in
                guard let name = r.optionalString("ldap", "bind_password_env") else { return }
                c.ldap.bindPasswordEnv = name
                let allowed = { (u: Unicode.Scalar) in
                    u.isASCII && (CharacterSet.alphanumerics.contains(u) || u == "_")
                }
                if !name.unicodeScalars.allSatisfy(allowed) {
                    r.add("ldap.bind_password_env", "must be the name of an environment variable (letters, digits, _)")
                }
            },
            ConfigKey("ldap", "sasl_mech", .string) { r, c in
                guard let mech = r.optionalString("ldap", "sasl_mech") else { return }
                let allowed = { (u: Unicode.Scalar) in
                    u.isASCII && (CharacterSet.alphanumerics.contains(u) || u == "-" || u == "_")
                }
                if mech.unicodeScalars.allSatisfy(allowed) {
                    c.ldap.saslMech = mech.uppercased()
                } else {
                    r.add("ldap.sasl_mech",
                          "\"\(ConfigSchema.excerpt(mech))\" is not a SASL mechanism name (like EXTERNAL or GSSAPI)")
                }
            },
            .optional("ldap", "sasl_authcid", \.ldap.saslAuthcID),
            .optional("ldap", "sasl_realm", \.ldap.saslRealm),
            .flag("ldap", "starttls", \.ldap.startTLS),
            .choice("ldap", "tls_reqcert", \.ldap.tlsReqcert, ConfigSchema.tlsReqcertChoices),
            .path("ldap", "tls_cacert", \.ldap.tlsCACert),
            .path("ldap", "tls_cert", \.ldap.tlsCert),
            .path("ldap", "tls_key", \.ldap.tlsKey),
            .flag("ldap", "allow_cleartext", \.ldap.allowCleartext),
            .integer("ldap", "page_size", \.ldap.pageSize) {
                (1...10_000).contains($0) ? nil : "must be between 1 and 10000 (found \($0))"
            },
            .number("ldap", "timeout", \.ldap.timeout) {
                $0 > 0 && $0 <= 86_400 ? nil : "must be a positive number of seconds, at most 86400"
            },

            // [users]
            .requiredDN("users", "search_base", \.users.searchBase,
                        hint: "where the user entries are, like ou=people,dc=example,dc=org"),
            .filter("users", "filter", \.users.filter),
            .attribute("users", "name_attribute", \.users.nameAttribute),
            ConfigKey("users", "local_account_attribute", .string) { r, c in
                // Empty is allowed: every user's local name is then the username.
                guard let local = r.string("users", "local_account_attribute") else { return }
                if local.isEmpty || ConfigReader.isAttributeName(local) {
                    c.users.localAccountAttribute = local
                } else {
                    r.add("users.local_account_attribute",
                          "\"\(ConfigSchema.excerpt(local))\" is not an attribute name")
                }
            },
            .attribute("users", "uid_number_attribute", \.users.uidNumberAttribute),
            .attribute("users", "display_name_attribute", \.users.displayNameAttribute),
            .attribute("users", "id_attribute", \.users.idAttribute),

            // [devices]
            .requiredDN("devices", "search_base", \.devices.searchBase,
                        hint: "where the device entries are, like ou=devices,dc=example,dc=org"),
            .filter("devices", "filter", \.devices.filter),
            .attribute("devices", "name_attribute", \.devices.nameAttribute),
            ConfigKey("devices", "member_attribute", .string) { r, c in
                if let m = r.string("devices", "member_attribute"),
                   let match = r.oneOf("devices.member_attribute", m, ["member", "uniqueMember", "memberUid"]) {
                    c.devices.memberAttribute = match
                }
            },
            .required("devices", "reports", hint: "the folder of device reports") { r, c, reports in
                c.devices.reports = reports.isEmpty ? "" : r.resolve(reports)
            },
            .duration("devices", "active_within", \.devices.activeWithin),
            .duration("devices", "max_clock_skew", \.devices.maxClockSkew),
            ConfigKey("devices", "max_reports_size", .size) { r, c in
                if let size = r.size("devices", "max_reports_size") { c.devices.maxReportsSize = size }
            },

            // [bindings]
            .requiredDN("bindings", "search_base", \.bindings.searchBase,
                        hint: "where the bridge keeps binding groups, like ou=bindings,dc=example,dc=org"),
            .choice("bindings", "object_class", \.bindings.objectClass, BindingObjectClass.allCases),
            ConfigKey("bindings", "member_attribute", .string) { r, c in
                // Read after object_class: the class decides the default and what is allowed.
                let allowed = c.bindings.objectClass.memberAttributes
                guard let m = r.string("bindings", "member_attribute") else {
                    c.bindings.memberAttribute = allowed[0]
                    return
                }
                guard let match = r.oneOf("bindings.member_attribute", m, ["member", "uniqueMember"]) else { return }
                c.bindings.memberAttribute = match
                if !allowed.contains(match) {
                    r.add("bindings.member_attribute",
                          "\(c.bindings.objectClass.spokenName) keeps its members in \(allowed[0])")
                }
            },

            // [policy]
            ConfigKey("policy", "protected_accounts", .stringList) { r, c in
                c.policy.protectedAccounts = r.stringList("policy", "protected_accounts")
                if c.policy.protectedAccounts.contains(where: { $0.trimmingCharacters(in: .whitespaces).isEmpty }) {
                    r.add("policy.protected_accounts", "contains an empty name")
                }
            },
            .integer("policy", "min_uid_linux", \.policy.minUIDLinux) { $0 < 0 ? "must not be negative" : nil },
            .integer("policy", "min_uid_macos", \.policy.minUIDMacOS) { $0 < 0 ? "must not be negative" : nil },
            .choice("policy", "on_likely_mismatch", \.policy.onLikelyMismatch, ConfigSchema.likelyMismatchChoices),

            // [safety]
            .integer("safety", "max_unbinds", \.safety.maxUnbinds) {
                $0 < 0 || $0 > Int64(Int32.max) ? "must be 0 or more" : nil
            },
            .number("safety", "max_unbind_percent", \.safety.maxUnbindPercent) {
                $0 >= 0 && $0 <= 100 ? nil : "must be between 0 and 100"
            },
            .integer("safety", "min_users", \.safety.minUsers) {
                $0 < 0 || $0 > Int64(Int32.max) ? "must be 0 or more" : nil
            },

            // [state]
            ConfigKey("state", "dir", .string) { r, c in
                guard let dir = r.string("state", "dir") else { return }
                if dir.trimmingCharacters(in: .whitespaces).isEmpty {
                    r.add("state.dir", "must not be empty")
                } else {
                    c.state.dir = r.resolve(dir)
                }
            },
            ConfigKey("state", "metrics_file", .string) { r, c in
                // Off when unset (issue 14).
                guard let metrics = r.string("state", "metrics_file") else { return }
                if metrics.trimmingCharacters(in: .whitespaces).isEmpty || metrics.hasSuffix("/") {
                    r.add("state.metrics_file",
                          "must name a file, for example \"/var/lib/prometheus/node-exporter/takeover_bridge.prom\"")
                } else {
                    // Relative to the config's folder, and never resolved through a symlink: the
                    // file at this path is replaced (rename), not written through a link.
                    c.state.metricsFile = metrics.hasPrefix("/") ? metrics : r.baseDirectory + "/" + metrics
                }
            },
            // Seconds a run's lease entry stays valid without renewal (issue 11, docs/product.md section 6).
            .duration("state", "lease", \.state.lease) {
                (1...86_400).contains($0) ? nil : "must be between 1 second and 1 day (found \($0) s)"
            },
        ]
    }

    /// The sections in order, each with its keys and their types.
    static var sections: [(name: String, keys: [(String, ConfigKeyKind)])] {
        var out: [(name: String, keys: [(String, ConfigKeyKind)])] = []
        for key in keys {
            if out.last?.name == key.section {
                out[out.count - 1].keys.append((key.name, key.kind))
            } else {
                out.append((key.section, [(key.name, key.kind)]))
            }
        }
        return out
    }
}
