// Reading and validating the TOML configuration: every problem at once, each with its line.

import Foundation
import LDAPClient
import LDAPSyntax
import TakeoverCore
import TOMLKit

struct ConfigReader {
    let text: String
    let source: String
    let baseDirectory: String
    /// Line of each section ("ldap") and key ("ldap.uri"), from the pre-check lexer.
    var lines: [String: Int] = [:]
    var problems: [ConfigProblem] = []
    var table: TOMLTable? = nil

    init(text: String, source: String, baseDirectory: String) {
        self.text = text
        self.source = source
        self.baseDirectory = baseDirectory
    }

    mutating func add(_ key: String?, _ message: String) {
        problems.append(ConfigProblem(source: source, line: key.flatMap(line(for:)), key: key, message: message))
    }

    /// The key's line, else its section's header, else the first line that defines
    /// something inside the section (a `[ldap.x]` header or a dotted `ldap.x = ...` key).
    func line(for key: String) -> Int? {
        if let exact = lines[key] { return exact }
        let section = key.split(separator: ".").first.map(String.init) ?? key
        if let header = lines[section] { return header }
        return lines.filter { $0.key.hasPrefix(section + ".") }.map(\.value).min()
    }

    func value(_ section: String, _ key: String) -> TOMLValueConvertible? {
        table?[section]?.table?[key]
    }

    func present(_ section: String, _ key: String) -> Bool { value(section, key) != nil }

    static func typeName(_ v: TOMLValueConvertible) -> String {
        switch v.type {
        case .int: return "an integer"
        case .double: return "a number with a fraction"
        case .string: return "a string"
        case .bool: return "a boolean"
        case .array: return "a list"
        case .table: return "a table"
        default: return "a \(v.type)"
        }
    }

    mutating func wrongType(_ section: String, _ key: String, _ kind: ConfigKeyKind, _ v: TOMLValueConvertible) {
        add("\(section).\(key)", "must be \(kind.expectation), not \(ConfigReader.typeName(v))")
    }

    mutating func string(_ section: String, _ key: String) -> String? {
        guard let v = value(section, key) else { return nil }
        guard let s = v.string else { wrongType(section, key, .string, v); return nil }
        return s
    }

    /// Optional string: empty counts as unset.
    mutating func optionalString(_ section: String, _ key: String) -> String? {
        guard let s = string(section, key), !s.trimmingCharacters(in: .whitespaces).isEmpty else { return nil }
        return s
    }

    mutating func required(_ section: String, _ key: String, hint: String) -> String {
        if !present(section, key) {
            if table?[section] == nil {
                add(section, "missing section [\(section)] with \(key) (\(hint))")
            } else {
                add("\(section).\(key)", "missing (\(hint))")
            }
            return ""
        }
        let s = string(section, key) ?? ""
        if present(section, key), value(section, key)?.string != nil, s.trimmingCharacters(in: .whitespaces).isEmpty {
            add("\(section).\(key)", "must not be empty (\(hint))")
        }
        return s
    }

    mutating func bool(_ section: String, _ key: String, _ fallback: Bool) -> Bool {
        guard let v = value(section, key) else { return fallback }
        guard let b = v.bool else { wrongType(section, key, .bool, v); return fallback }
        return b
    }

    mutating func int(_ section: String, _ key: String, _ fallback: Int64) -> Int64 {
        guard let v = value(section, key) else { return fallback }
        guard v.type == .int, let i = v.int else { wrongType(section, key, .int, v); return fallback }
        return Int64(i)
    }

    mutating func number(_ section: String, _ key: String, _ fallback: Double) -> Double {
        guard let v = value(section, key) else { return fallback }
        if v.type == .int, let i = v.int { return Double(i) }
        guard v.type == .double, let d = v.double else { wrongType(section, key, .number, v); return fallback }
        return d
    }

    mutating func stringList(_ section: String, _ key: String) -> [String] {
        guard let v = value(section, key) else { return [] }
        guard let array = v.array else { wrongType(section, key, .stringList, v); return [] }
        var out: [String] = []
        for element in array {
            guard let s = element.string else {
                add("\(section).\(key)", "must be a list of strings; found \(ConfigReader.typeName(element)) in it")
                return out
            }
            out.append(s)
        }
        return out
    }

    mutating func duration(_ section: String, _ key: String, _ fallback: Int64) -> Int64 {
        quantity(section, key, .duration, noun: "duration", parse: ConfigSchema.parseDuration,
                 example: "seconds (604800) or a string like \"7d\", \"12h\", \"30m\", \"3600s\"") ?? fallback
    }

    /// A size in bytes: an integer, or a string with a unit (K, M, G, T; "KiB"/"KB"/"K" all
    /// 1024-based). Nil when absent or wrong (the problem is recorded).
    mutating func size(_ section: String, _ key: String) -> Int? {
        quantity(section, key, .size, noun: "size", parse: ConfigSchema.parseSize,
                 example: "bytes (536870912) or a string like \"512MiB\", \"2GiB\"").map { Int($0) }
    }

    /// A positive quantity written as an integer or as a string with units (durations,
    /// sizes); nil when absent, or when wrong (the problem is recorded).
    private mutating func quantity(_ section: String, _ key: String, _ kind: ConfigKeyKind, noun: String,
                                   parse: (String) -> Int64?, example: String) -> Int64? {
        guard let v = value(section, key) else { return nil }
        let amount: Int64
        if v.type == .int, let i = v.int {
            amount = Int64(i)
        } else if let s = v.string {
            guard let parsed = parse(s) else {
                add("\(section).\(key)", "\"\(ConfigSchema.excerpt(s))\" is not a \(noun); write \(example)")
                return nil
            }
            amount = parsed
        } else {
            wrongType(section, key, kind, v)
            return nil
        }
        if amount <= 0 {
            add("\(section).\(key)", "must be a positive \(noun)")
            return nil
        }
        return amount
    }

    func resolve(_ path: String) -> String {
        var p = path
        if p.hasPrefix("~") { p = (p as NSString).expandingTildeInPath }
        if !p.hasPrefix("/") { p = baseDirectory + "/" + p }
        return (p as NSString).standardizingPath
    }

    // MARK: Structure

    mutating func checkStructure(_ root: TOMLTable) {
        let known = ConfigSchema.sections.map(\.name)
        for top in root.keys.sorted() {
            guard let v = root[top] else { continue }
            if ConfigSchema.looksLikeSecret(top) {
                problems.append(ConfigProblem(source: source, line: line(for: top), key: nil, message: ConfigSchema.secretMessage))
                continue
            }
            guard known.contains(top) else {
                if v.type == .table {
                    var message = "unknown section [\(ConfigSchema.excerpt(top))]"
                    if let near = ConfigSchema.closest(top, among: known) { message += "; did you mean [\(near)]?" }
                    problems.append(ConfigProblem(source: source, line: line(for: top), key: nil, message: message))
                } else {
                    var message = "\(ConfigSchema.excerpt(top)): keys must be inside a section"
                    if let owner = ConfigSchema.sections.first(where: { s in s.keys.contains(where: { $0.0 == top }) }) {
                        message += "; did you mean to put it under [\(owner.name)]?"
                    }
                    problems.append(ConfigProblem(source: source, line: line(for: top), key: nil, message: message))
                }
                continue
            }
            guard let section = v.table else {
                add(top, "[\(top)] must be a table (a [\(top)] header followed by keys), not \(ConfigReader.typeName(v))")
                continue
            }
            let keys = ConfigSchema.sections.first(where: { $0.name == top })?.keys.map(\.0) ?? []
            for key in section.keys.sorted() where !keys.contains(key) {
                let dotted = "\(top).\(key)"
                if ConfigSchema.looksLikeSecret(key) {
                    add(dotted, ConfigSchema.secretMessage)
                    continue
                }
                var message = "unknown key"
                if let near = ConfigSchema.closest(key, among: keys) {
                    message += "; did you mean \(near)?"
                } else if let owner = ConfigSchema.sections.first(where: { s in s.keys.contains(where: { $0.0 == key.lowercased() }) }) {
                    message += "; it belongs in [\(owner.name)]"
                }
                add(dotted, message)
            }
        }
    }

    // MARK: Values

    static func looksLikeDN(_ s: String) -> Bool {
        let t = s.trimmingCharacters(in: .whitespaces)
        guard let eq = t.firstIndex(of: "="), eq != t.startIndex else { return false }
        return !t.hasSuffix(",") && !t.hasPrefix(",")
    }

    static func filterProblem(_ s: String) -> String? {
        let t = s.trimmingCharacters(in: .whitespaces)
        guard t.hasPrefix("(") else { return "must be an LDAP filter in parentheses, like (objectClass=posixAccount)" }
        var depth = 0
        var escaped = false
        for ch in t {
            if escaped { escaped = false; continue }
            switch ch {
            case "\\": escaped = true
            case "(": depth += 1
            case ")":
                depth -= 1
                if depth < 0 { return "has an unmatched ')'" }
            default: break
            }
        }
        if depth != 0 { return "has an unmatched '('" }
        if !t.hasSuffix(")") { return "has text after its closing ')'" }
        if !t.contains("=") { return "has no comparison (attribute=value)" }
        return nil
    }

    /// RFC 4512 attribute description: a keystring (letters, digits, '-') or a numeric OID.
    static func isAttributeName(_ s: String) -> Bool {
        guard let first = s.unicodeScalars.first, first.isASCII else { return false }
        if CharacterSet.letters.contains(first) {
            return s.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || $0 == "-") }
        }
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        return parts.allSatisfy { !$0.isEmpty && $0.allSatisfy(\.isASCIIDigit) }
    }

    mutating func checkURIs(_ key: String, _ text: String) {
        let uris = text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "," }).map(String.init)
        if uris.isEmpty {
            add(key, "must name at least one server, like ldaps://ldap.example.org")
        }
        for uri in uris where LDAPURI(uri) == nil {
            add(key, "\"\(ConfigSchema.excerpt(uri))\" is not an LDAP URI; it must start with ldap://, ldaps:// or ldapi://")
        }
        if text.contains(",") {
            add(key, "separate several URIs with spaces, not commas")
        }
    }

    mutating func oneOf(_ key: String, _ value: String, _ allowed: [String]) -> String? {
        if let match = allowed.first(where: { $0.caseInsensitiveCompare(value) == .orderedSame }) { return match }
        add(key, "must be one of \(allowed.joined(separator: ", ")) (found \"\(ConfigSchema.excerpt(value))\")")
        return nil
    }

    /// One of an enumeration's raw values (compared without case), as the enumeration.
    mutating func oneOf<Choice: RawRepresentable<String>>(_ key: String, _ value: String, _ allowed: [Choice]) -> Choice? {
        oneOf(key, value, allowed.map(\.rawValue)).flatMap(Choice.init(rawValue:))
    }

    mutating func attribute(_ section: String, _ key: String, _ fallback: String) -> String {
        guard let s = string(section, key) else { return fallback }
        if !ConfigReader.isAttributeName(s) {
            add("\(section).\(key)", "\"\(ConfigSchema.excerpt(s))\" is not an attribute name")
            return fallback
        }
        return s
    }

    mutating func read() throws(ConfigError) -> BridgeConfig {
        // The TOML parser takes a C string: a NUL would silently end the file early.
        if let nul = text.utf8.firstIndex(of: 0) {
            let line = text.utf8[..<nul].reduce(1) { $1 == UInt8(ascii: "\n") ? $0 + 1 : $0 }
            throw ConfigError(ConfigProblem(source: source, line: line, message: "contains a NUL byte; is it a text file?"))
        }
        let body = text.hasPrefix("\u{FEFF}") ? String(text.dropFirst()) : text
        var lexer = TOMLPrecheck(body)
        do {
            try lexer.document()
        } catch {
            throw ConfigError(ConfigProblem(source: source, line: error.line, message: "not valid TOML: \(error.message)"))
        }
        lines = lexer.lines
        let root: TOMLTable
        do {
            root = try TOMLTable(string: body)
        } catch let error as TOMLParseError {
            let line = error.source.begin.line
            let column = error.source.begin.column
            throw ConfigError(ConfigProblem(source: source, line: line > 0 ? line : nil,
                                            message: "not valid TOML: \(ConfigSchema.excerpt(error.description, limit: 300))"
                                                + (column > 0 ? " (column \(column))" : "")))
        } catch {
            throw ConfigError(ConfigProblem(source: source, message: "not valid TOML"))
        }
        table = root
        checkStructure(root)

        // Required strings start empty (a missing one is a problem); everything else starts
        // at the model's default, which a key absent from the file leaves in place.
        var config = BridgeConfig(ldap: .init(uri: ""), users: .init(searchBase: ""),
                                  devices: .init(searchBase: "", reports: ""), bindings: .init(searchBase: ""),
                                  sourcePath: source)
        for key in ConfigSchema.keys {
            key.read(&self, &config)
        }
        checkTogether(config)

        if !problems.isEmpty {
            throw ConfigError(problems: ConfigReader.sorted(problems))
        }
        config.keyLines = lines
        return config
    }

    /// The rules that join several keys.
    mutating func checkTogether(_ c: BridgeConfig) {
        let ldap = c.ldap
        if ldap.bindPasswordFile != nil && ldap.bindPasswordEnv != nil {
            add("ldap.bind_password_env", "set only one of bind_password_file and bind_password_env")
        }
        let hasPassword = ldap.bindPasswordFile != nil || ldap.bindPasswordEnv != nil
        if ldap.bindDN != nil && !hasPassword && ldap.saslMech == nil {
            add("ldap.bind_dn", "bind_dn is set but there is no password: set bind_password_file or bind_password_env "
                + "(or sasl_mech for a SASL bind; remove bind_dn for an anonymous bind)")
        }
        if hasPassword && ldap.bindDN == nil && ldap.saslMech == nil {
            add(ldap.bindPasswordFile != nil ? "ldap.bind_password_file" : "ldap.bind_password_env",
                "a password is configured but bind_dn is not: set bind_dn (the DN to bind as)")
        }
        if (ldap.tlsCert == nil) != (ldap.tlsKey == nil) {
            add(ldap.tlsCert == nil ? "ldap.tls_key" : "ldap.tls_cert", "tls_cert and tls_key must be set together")
        }
        if !c.bindings.searchBase.isEmpty && !c.devices.searchBase.isEmpty {
            let b = DNNormalizer.normalize(c.bindings.searchBase), d = DNNormalizer.normalize(c.devices.searchBase)
            if b == d || b.hasSuffix("," + d) {
                add("bindings.search_base", "must not be inside [devices] search_base: binding groups would be read as devices")
            }
        }
    }

    /// By line (problems without a line last), keeping the order found otherwise.
    static func sorted(_ problems: [ConfigProblem]) -> [ConfigProblem] {
        var seen = Set<ConfigProblem>()
        let unique = problems.filter { seen.insert($0).inserted }
        return unique.enumerated().sorted { a, b in
            let la = a.element.line ?? Int.max, lb = b.element.line ?? Int.max
            return la != lb ? la < lb : a.offset < b.offset
        }.map(\.element)
    }
}

// MARK: - Bind names (issue 10, docs/product.md section 8b)

/// The forms `[ldap] bind_dn` may take for a simple bind. Active Directory accepts all
/// three as the bind name; OpenLDAP and 389 DS accept only a DN.
enum BindNameForm: Equatable {
    /// `cn=bridge,ou=services,dc=example,dc=org`
    case dn
    /// `bridge@example.org` (userPrincipalName)
    case userPrincipalName
    /// `EXAMPLE\bridge` (NetBIOS domain, backslash, sAMAccountName)
    case downLevelLogon
}

extension ConfigReader {
    /// The form of a bind name, or nil when it is none of them. A name with `=` before any
    /// `@` or `\` is judged as a DN (`cn=a@b,dc=x` is a DN).
    static func bindNameForm(_ name: String) -> BindNameForm? {
        let t = name.trimmingCharacters(in: .whitespaces)
        if t.isEmpty || t.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) { return nil }
        let firstSpecial = t.firstIndex { $0 == "=" || $0 == "@" || $0 == "\\" }
        if let special = firstSpecial, t[special] == "=" {
            return looksLikeDN(t) ? .dn : nil
        }
        if let backslash = t.firstIndex(of: "\\") {
            // NetBIOS domain names: 1-15 characters, none of \ / : * ? " < > | and no spaces.
            let domain = t[..<backslash], user = t[t.index(after: backslash)...]
            let forbidden = Set<Character>(["\\", "/", ":", "*", "?", "\"", "<", ">", "|", " ", "@"])
            guard (1...15).contains(domain.count), !domain.contains(where: forbidden.contains),
                  !user.isEmpty, !user.contains("\\"), !user.contains("@") else { return nil }
            return .downLevelLogon
        }
        if let at = t.firstIndex(of: "@") {
            let user = t[..<at], domain = t[t.index(after: at)...]
            guard !user.isEmpty, !domain.isEmpty, !domain.contains("@"), !t.contains(" "),
                  domain.first != ".", domain.last != "." else { return nil }
            return .userPrincipalName
        }
        return nil
    }
}
