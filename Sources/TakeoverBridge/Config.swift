// The TOML configuration (PRODUCT.md section 8): parsing, validation that lists every
// problem at once with its line, path resolution and the bind password.

import DeviceReports
import Foundation
import TakeoverCore
import TOMLKit

// MARK: - Problems

/// One thing wrong with the configuration, located as precisely as possible.
public struct ConfigProblem: Sendable, Hashable, CustomStringConvertible {
    /// The file (as given to `load`) or the name passed to `parse`.
    public var source: String
    public var line: Int?
    /// Dotted key, e.g. "ldap.timeout"; a section alone is "ldap"; nil for file-wide problems.
    public var key: String?
    public var message: String

    public init(source: String, line: Int? = nil, key: String? = nil, message: String) {
        self.source = source
        self.line = line
        self.key = key
        self.message = message
    }

    /// `config.toml:12: [ldap] timeout: must be a positive number of seconds`
    public var description: String {
        var out = source
        if let line { out += ":\(line)" }
        out += ": "
        if let key {
            if let dot = key.firstIndex(of: ".") {
                out += "[\(key[..<dot])] \(ConfigSchema.excerpt(String(key[key.index(after: dot)...]))): "
            } else {
                out += "[\(ConfigSchema.excerpt(key))]: "
            }
        }
        return out + message
    }
}

/// Everything wrong with a configuration, all at once. Never holds a secret value.
public struct ConfigError: Error, Sendable, CustomStringConvertible {
    public var problems: [ConfigProblem]

    public init(problems: [ConfigProblem]) {
        self.problems = problems
    }

    public init(_ problem: ConfigProblem) {
        self.problems = [problem]
    }

    /// One problem per line.
    public var description: String {
        problems.map(\.description).joined(separator: "\n")
    }
}

// MARK: - The configuration

public struct BridgeConfig: Sendable {
    public struct LDAP: Sendable, Hashable {
        /// One or more URIs separated by spaces (libldap tries them in order).
        public var uri: String
        /// The provider that takes writes, when reads go to a replica.
        public var writeURI: String?
        public var bindDN: String?
        public var bindPasswordFile: String?
        public var bindPasswordEnv: String?
        public var saslMech: String?
        public var saslAuthcID: String?
        public var saslRealm: String?
        public var startTLS: Bool
        /// never | allow | try | demand | hard
        public var tlsReqcert: String
        public var tlsCACert: String?
        public var tlsCert: String?
        public var tlsKey: String?
        public var allowCleartext: Bool
        public var pageSize: Int
        /// Seconds, for every network operation.
        public var timeout: Double

        public init(uri: String, writeURI: String? = nil, bindDN: String? = nil, bindPasswordFile: String? = nil,
                    bindPasswordEnv: String? = nil, saslMech: String? = nil, saslAuthcID: String? = nil,
                    saslRealm: String? = nil, startTLS: Bool = false, tlsReqcert: String = "demand",
                    tlsCACert: String? = nil, tlsCert: String? = nil, tlsKey: String? = nil,
                    allowCleartext: Bool = false, pageSize: Int = 1000, timeout: Double = 30) {
            self.uri = uri
            self.writeURI = writeURI
            self.bindDN = bindDN
            self.bindPasswordFile = bindPasswordFile
            self.bindPasswordEnv = bindPasswordEnv
            self.saslMech = saslMech
            self.saslAuthcID = saslAuthcID
            self.saslRealm = saslRealm
            self.startTLS = startTLS
            self.tlsReqcert = tlsReqcert
            self.tlsCACert = tlsCACert
            self.tlsCert = tlsCert
            self.tlsKey = tlsKey
            self.allowCleartext = allowCleartext
            self.pageSize = pageSize
            self.timeout = timeout
        }

        /// The read URIs, split on whitespace.
        public var uris: [String] { uri.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init) }
    }

    public struct Users: Sendable, Hashable {
        public var searchBase: String
        public var filter: String
        public var nameAttribute: String
        /// Empty means unset: every user's local name is the username.
        public var localAccountAttribute: String
        public var uidNumberAttribute: String
        public var displayNameAttribute: String
        /// `[users] id_attribute`: the stable id (issue 10). Empty: the first of objectGUID
        /// (AD), entryUUID (OpenLDAP, 389 DS with its plugin), nsUniqueId (389 DS) the
        /// entry has.
        public var idAttribute: String = ""

        public init(searchBase: String, filter: String = "(objectClass=posixAccount)", nameAttribute: String = "uid",
                    localAccountAttribute: String = "", uidNumberAttribute: String = "uidNumber",
                    displayNameAttribute: String = "displayName") {
            self.searchBase = searchBase
            self.filter = filter
            self.nameAttribute = nameAttribute
            self.localAccountAttribute = localAccountAttribute
            self.uidNumberAttribute = uidNumberAttribute
            self.displayNameAttribute = displayNameAttribute
        }
    }

    public struct Devices: Sendable, Hashable {
        public var searchBase: String
        public var filter: String
        public var nameAttribute: String
        /// member | uniqueMember | memberUid (canonical spelling).
        public var memberAttribute: String
        /// The reports folder (absolute after `load`).
        public var reports: String
        /// Seconds.
        public var activeWithin: Int64

        // Report evidence limits (issue 11: R8 clock skew, bounded report volume).
        /// `max_clock_skew`, seconds: a report dated further in the future is an error, never used.
        public var maxClockSkew: Int64 = Policy.defaultMaxClockSkew
        /// `max_reports_size`, bytes: the most the reports folder may hold; beyond it the run stops (exit 5).
        public var maxReportsSize: Int = ReportLimits.defaultMaxTotalBytes

        public init(searchBase: String, filter: String = "(objectClass=groupOfNames)", nameAttribute: String = "cn",
                    memberAttribute: String = "member", reports: String, activeWithin: Int64 = 604_800) {
            self.searchBase = searchBase
            self.filter = filter
            self.nameAttribute = nameAttribute
            self.memberAttribute = memberAttribute
            self.reports = reports
            self.activeWithin = activeWithin
        }
    }

    public struct Bindings: Sendable, Hashable {
        public var searchBase: String
        /// takeoverBindingGroup (project schema) | groupOfNames | groupOfUniqueNames.
        public var objectClass: String
        /// member | uniqueMember.
        public var memberAttribute: String

        public init(searchBase: String, objectClass: String = "takeoverBindingGroup", memberAttribute: String = "member") {
            self.searchBase = searchBase
            self.objectClass = objectClass
            self.memberAttribute = memberAttribute
        }
    }

    public struct PolicySection: Sendable, Hashable {
        public var protectedAccounts: [String]
        public var minUIDLinux: Int64
        public var minUIDMacOS: Int64
        /// hold | provision
        public var onLikelyMismatch: String

        public init(protectedAccounts: [String] = [], minUIDLinux: Int64 = 1000, minUIDMacOS: Int64 = 500,
                    onLikelyMismatch: String = "hold") {
            self.protectedAccounts = protectedAccounts
            self.minUIDLinux = minUIDLinux
            self.minUIDMacOS = minUIDMacOS
            self.onLikelyMismatch = onLikelyMismatch
        }
    }

    public struct Safety: Sendable, Hashable {
        public var maxUnbinds: Int
        public var maxUnbindPercent: Double
        public var minUsers: Int

        public init(maxUnbinds: Int = 100, maxUnbindPercent: Double = 10, minUsers: Int = 1) {
            self.maxUnbinds = maxUnbinds
            self.maxUnbindPercent = maxUnbindPercent
            self.minUsers = minUsers
        }
    }

    public struct State: Sendable, Hashable {
        public var dir: String

        /// `[state] metrics_file`: the Prometheus textfile written after every run; nil: none.
        public var metricsFile: String? = nil
        // [state] lease (issue 11): seconds a run's lease entry under [bindings]
        // search_base stays valid without renewal (PRODUCT.md section 6). 1 s ... 1 day.
        public var lease: Int64 = 600

        public init(dir: String = "/var/lib/takeover-bridge") {
            self.dir = dir
        }
    }

    public var ldap: LDAP
    public var users: Users
    public var devices: Devices
    public var bindings: Bindings
    public var policy: PolicySection
    public var safety: Safety
    public var state: State
    /// The file it came from (as given), or the source name passed to `parse`.
    public var sourcePath: String
    /// Line of each key ("ldap.uri") and section ("ldap") in the source, for later messages.
    public var keyLines: [String: Int]

    public init(ldap: LDAP, users: Users, devices: Devices, bindings: Bindings, policy: PolicySection = PolicySection(),
                safety: Safety = Safety(), state: State = State(), sourcePath: String = "config.toml",
                keyLines: [String: Int] = [:]) {
        self.ldap = ldap
        self.users = users
        self.devices = devices
        self.bindings = bindings
        self.policy = policy
        self.safety = safety
        self.state = state
        self.sourcePath = sourcePath
        self.keyLines = keyLines
    }

    /// The default path when neither `--config` nor `$TAKEOVER_BRIDGE_CONFIG` is given.
    public static let defaultPath = "/etc/takeover-bridge/config.toml"

    /// The largest config file read (a config is a few kilobytes).
    public static let maximumFileSize = 1 << 20

    // MARK: Loading

    /// Reads `path`, refuses it when others can write it, parses and validates it, resolves
    /// relative paths against its folder, and checks the bind password source and TLS key
    /// file (existence and permissions). Every problem found is in the thrown error.
    public static func load(path: String,
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
    public static func parse(toml: String, source: String, baseDirectory: String) throws(ConfigError) -> BridgeConfig {
        var reader = ConfigReader(text: toml, source: source, baseDirectory: baseDirectory)
        return try reader.read()
    }

    // MARK: Derived values

    /// How bindings are stored (TakeoverCore).
    public func layout() -> BindingLayout {
        if bindings.objectClass.caseInsensitiveCompare("takeoverBindingGroup") == .orderedSame {
            return .projectSchema(base: bindings.searchBase, memberAttribute: bindings.memberAttribute)
        }
        if bindings.objectClass.caseInsensitiveCompare("group") == .orderedSame {
            return .activeDirectoryGroup(base: bindings.searchBase)
        }
        return .standardSchema(base: bindings.searchBase, objectClass: bindings.objectClass,
                               memberAttribute: bindings.memberAttribute)
    }

    /// The planner's policy, including `[devices] active_within`.
    public func corePolicy() -> Policy {
        Policy(protectedAccounts: policy.protectedAccounts, minUIDLinux: policy.minUIDLinux,
               minUIDMacOS: policy.minUIDMacOS,
               onLikelyMismatch: LikelyMismatchPolicy(rawValue: policy.onLikelyMismatch) ?? .hold,
               activeWithin: devices.activeWithin, maxClockSkew: devices.maxClockSkew)
    }

    /// The limits for reading `[devices] reports` (`max_reports_size`).
    public func reportLimits() -> ReportLimits {
        ReportLimits(maxTotalBytes: devices.maxReportsSize)
    }

    /// The bind password from `bind_password_file` (refused when group or others can access
    /// it; one trailing newline stripped) or `bind_password_env`; nil when neither is set.
    /// An empty password is refused: libldap would turn it into an anonymous bind.
    public func readBindPassword(environment: [String: String] = ProcessInfo.processInfo.environment)
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

    /// PRODUCT.md section 7: a password sent in cleartext to a host that is not loopback is
    /// refused unless `allow_cleartext = true`. Returns the message when refused.
    /// `ldaps://` and `ldapi://` are fine, so is `ldap://` with StartTLS, an anonymous
    /// connection, or a SASL mechanism that does not send the password itself
    /// (PLAIN and LOGIN do, so they count as cleartext).
    public func cleartextProblem() -> String? {
        if ldap.allowCleartext || ldap.startTLS { return nil }
        let sendsPassword: Bool
        if let mech = ldap.saslMech {
            let upper = mech.uppercased()
            sendsPassword = upper == "PLAIN" || upper == "LOGIN"
        } else {
            sendsPassword = ldap.bindDN != nil
        }
        guard sendsPassword else { return nil }
        var all = ldap.uris
        if let write = ldap.writeURI { all += write.split(separator: " ").map(String.init) }
        for uri in all {
            guard let parsed = LDAPURI(uri), parsed.scheme == "ldap" else { continue }
            if parsed.host.isEmpty {
                return "\(ConfigSchema.excerpt(uri)) names no host, so the password could go in cleartext to a host that is not "
                    + "loopback; name the host, use ldaps:// or starttls = true, or set allow_cleartext = true"
            }
            if !LDAPURI.isLoopback(parsed.host) {
                return "refusing to send the bind password in cleartext to \(ConfigSchema.excerpt(parsed.host)) (\(ConfigSchema.excerpt(uri))); "
                    + "use ldaps://, set starttls = true, or set allow_cleartext = true to accept the risk"
            }
        }
        return nil
    }

    /// A problem about `key`, located at its line when known.
    public func problem(_ key: String, _ message: String) -> ConfigProblem {
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

// MARK: - LDAP URIs

/// Just enough of an LDAP URL (RFC 4516) to check its scheme and host.
struct LDAPURI {
    var scheme: String
    var host: String

    init?(_ text: String) {
        guard let sep = text.range(of: "://") else { return nil }
        scheme = text[..<sep.lowerBound].lowercased()
        guard ["ldap", "ldaps", "ldapi"].contains(scheme) else { return nil }
        var rest = text[sep.upperBound...]
        if let slash = rest.firstIndex(of: "/") { rest = rest[..<slash] }
        if scheme == "ldapi" {
            host = String(rest)
            return
        }
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { return nil }
            host = String(rest[rest.index(after: rest.startIndex)..<close])
            let after = rest[rest.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":"), after.dropFirst().allSatisfy(\.isASCIIDigit), after.count > 1 else {
                    return nil
                }
            }
        } else if let colon = rest.lastIndex(of: ":") {
            host = String(rest[..<colon])
            let port = rest[rest.index(after: colon)...]
            guard !port.isEmpty, port.allSatisfy(\.isASCIIDigit) else { return nil }
        } else {
            host = String(rest)
        }
        host = host.removingPercentEncoding ?? host
    }

    static func isLoopback(_ host: String) -> Bool {
        let h = host.lowercased()
        if h == "localhost" || h.hasSuffix(".localhost") || h == "localhost.localdomain" || h == "ip6-localhost" {
            return true
        }
        if h == "::1" || h == "0:0:0:0:0:0:0:1" { return true }
        var v4 = Substring(h)
        if v4.hasPrefix("::ffff:") { v4 = v4.dropFirst(7) }
        let parts = v4.split(separator: ".", omittingEmptySubsequences: false)
        if parts.count == 4, parts.allSatisfy({ !$0.isEmpty && $0.count <= 3 && $0.allSatisfy(\.isASCIIDigit) }),
           parts[0] == "127", parts.allSatisfy({ (Int($0) ?? 999) <= 255 }) {
            return true
        }
        return false
    }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}

// MARK: - Reading and validation

/// The keys each section accepts and their types.
enum ConfigKeyKind {
    case string, bool, int, number, stringList, duration, size

    var expectation: String {
        switch self {
        case .string: return "a string"
        case .bool: return "true or false"
        case .int: return "an integer"
        case .number: return "a number"
        case .stringList: return "a list of strings"
        case .duration: return "a duration (seconds, or a string like \"7d\", \"12h\", \"30m\", \"3600s\")"
        case .size: return "a size (bytes, or a string like \"512MiB\", \"2GiB\", \"64M\")"
        }
    }
}

enum ConfigSchema {
    static let sections: [(name: String, keys: [(String, ConfigKeyKind)])] = [
        ("ldap", [("uri", .string), ("write_uri", .string), ("bind_dn", .string), ("bind_password_file", .string),
                  ("bind_password_env", .string), ("sasl_mech", .string), ("sasl_authcid", .string),
                  ("sasl_realm", .string), ("starttls", .bool), ("tls_reqcert", .string), ("tls_cacert", .string),
                  ("tls_cert", .string), ("tls_key", .string), ("allow_cleartext", .bool), ("page_size", .int),
                  ("timeout", .number)]),
        ("users", [("search_base", .string), ("filter", .string), ("name_attribute", .string),
                   ("local_account_attribute", .string), ("uid_number_attribute", .string),
                   ("display_name_attribute", .string), ("id_attribute", .string)]),
        ("devices", [("search_base", .string), ("filter", .string), ("name_attribute", .string),
                     ("member_attribute", .string), ("reports", .string), ("active_within", .duration),
                     ("max_clock_skew", .duration), ("max_reports_size", .size)]),
        ("bindings", [("search_base", .string), ("object_class", .string), ("member_attribute", .string)]),
        ("policy", [("protected_accounts", .stringList), ("min_uid_linux", .int), ("min_uid_macos", .int),
                    ("on_likely_mismatch", .string)]),
        ("safety", [("max_unbinds", .int), ("max_unbind_percent", .number), ("min_users", .int)]),
        ("state", [("dir", .string), ("metrics_file", .string), ("lease", .duration)]),
    ]

    static func kind(section: String, key: String) -> ConfigKeyKind? {
        sections.first(where: { $0.name == section })?.keys.first(where: { $0.0 == key })?.1
    }

    /// A value or name as shown in a message: at most `limit` characters, then how long it
    /// was, so a huge value (a 1 MB URI) cannot flood the log.
    static func excerpt(_ s: String, limit: Int = 80) -> String {
        let count = s.utf8.count
        guard count > limit else { return s }
        var prefix = Substring(s.unicodeScalars.prefix(limit))
        if prefix.utf8.count > limit { prefix = prefix.prefix(limit) }
        return prefix + "\u{2026} (\(count) bytes)"
    }

    /// Keys that would hold a secret in the file itself: refused, value never echoed.
    static func looksLikeSecret(_ key: String) -> Bool {
        let k = key.lowercased()
        if k == "bind_password_file" || k == "bind_password_env" { return false }
        return k.contains("password") || k.contains("passwd") || k.contains("secret") || k.contains("authtok")
            || k == "bindpw" || k == "bind_pw" || k == "pw" || k == "credentials"
    }

    static let secretMessage = "a password does not belong in the config file (its value is not shown); "
        + "put it in a file readable only by the bridge and name it with [ldap] bind_password_file, "
        + "or name an environment variable with [ldap] bind_password_env"

    /// Parses "512MiB", "2 GiB", "64M", "100k", "1048576" into bytes (units are 1024-based
    /// whether written K, KB or KiB; case does not matter).
    static func parseSize(_ text: String) -> Int64? {
        let s = text.trimmingCharacters(in: .whitespaces).lowercased()
        let digits = s.prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty, let n = Int64(digits) else { return nil }
        var unit = s.dropFirst(digits.count).trimmingCharacters(in: .whitespaces)
        if unit.hasSuffix("ib") { unit.removeLast(2) } else if unit.hasSuffix("b") { unit.removeLast() }
        let shifts: [String: Int64] = ["": 0, "k": 10, "m": 20, "g": 30, "t": 40]
        guard let shift = shifts[unit] else { return nil }
        let (bytes, overflow) = n.multipliedReportingOverflow(by: Int64(1) << shift)
        return overflow || bytes > Int64(Int.max) ? nil : bytes
    }

    /// Parses "7d", "12h", "30m", "3600s", "1d12h", "3600" into seconds.
    static func parseDuration(_ text: String) -> Int64? {
        let s = text.trimmingCharacters(in: .whitespaces).lowercased()
        if s.isEmpty { return nil }
        var total: Int64 = 0
        var number: Int64? = nil
        var sawUnit = false
        for ch in s {
            if let digit = ch.wholeNumberValue, ch.isASCII {
                let (m, o1) = (number ?? 0).multipliedReportingOverflow(by: 10)
                let (a, o2) = m.addingReportingOverflow(Int64(digit))
                if o1 || o2 { return nil }
                number = a
                continue
            }
            if ch == " " { continue }
            let factor: Int64
            switch ch {
            case "s": factor = 1
            case "m": factor = 60
            case "h": factor = 3600
            case "d": factor = 86_400
            case "w": factor = 604_800
            default: return nil
            }
            guard let n = number else { return nil }
            let (p, o1) = n.multipliedReportingOverflow(by: factor)
            let (t, o2) = total.addingReportingOverflow(p)
            if o1 || o2 { return nil }
            total = t
            number = nil
            sawUnit = true
        }
        if let n = number {
            if sawUnit { return nil }  // "1d5" is ambiguous
            total = n
        }
        return total
    }

    /// Edit distance, for "did you mean".
    static func distance(_ a: String, _ b: String) -> Int {
        let x = Array(a.lowercased().utf8), y = Array(b.lowercased().utf8)
        if x.isEmpty { return y.count }
        if y.isEmpty { return x.count }
        var previous = Array(0...y.count)
        var current = [Int](repeating: 0, count: y.count + 1)
        for i in 1...x.count {
            current[0] = i
            for j in 1...y.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x[i - 1] == y[j - 1] ? 0 : 1))
            }
            swap(&previous, &current)
        }
        return previous[y.count]
    }

    static func closest(_ word: String, among candidates: [String]) -> String? {
        var best: (String, Int)? = nil
        for c in candidates {
            let d = distance(word, c)
            if d <= max(1, c.count / 3), d < (best?.1 ?? Int.max) { best = (c, d) }
        }
        return best?.0
    }
}

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

    /// "cn=X, dc=Y" and "CN=x,dc=y" compare equal enough for containment checks.
    static func normalizedDN(_ s: String) -> String {
        s.lowercased().split(separator: ",").map { $0.replacingOccurrences(of: " ", with: "") }.joined(separator: ",")
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

        // [ldap]
        let uri = required("ldap", "uri", hint: "the directory's URI, like ldaps://ldap.example.org")
        if !uri.isEmpty { checkURIs("ldap.uri", uri) }
        var ldap = BridgeConfig.LDAP(uri: uri.trimmingCharacters(in: .whitespaces))
        if let w = optionalString("ldap", "write_uri") {
            checkURIs("ldap.write_uri", w)
            ldap.writeURI = w.trimmingCharacters(in: .whitespaces)
        }
        ldap.bindDN = optionalString("ldap", "bind_dn")
        if let dn = ldap.bindDN, ConfigReader.bindNameForm(dn) == nil {
            add("ldap.bind_dn", "\"\(ConfigSchema.excerpt(dn))\" is not a DN (like cn=bridge,ou=services,dc=example,dc=org), "
                + "a user principal name (like bridge@example.org) or a down-level logon name (like EXAMPLE\\bridge)")
        }
        ldap.bindPasswordFile = optionalString("ldap", "bind_password_file").map(resolve)
        ldap.bindPasswordEnv = optionalString("ldap", "bind_password_env")
        if let name = ldap.bindPasswordEnv,
           !name.unicodeScalars.allSatisfy({ $0.isASCII && (CharacterSet.alphanumerics.contains($0) || $0 == "_") }) {
            add("ldap.bind_password_env", "must be the name of an environment variable (letters, digits, _)")
        }
        if let mech = optionalString("ldap", "sasl_mech") {
            if mech.unicodeScalars.allSatisfy({ $0.isASCII && (CharacterSet.alphanumerics.contains($0) || $0 == "-" || $0 == "_") }) {
                ldap.saslMech = mech.uppercased()
            } else {
                add("ldap.sasl_mech", "\"\(ConfigSchema.excerpt(mech))\" is not a SASL mechanism name (like EXTERNAL or GSSAPI)")
            }
        }
        ldap.saslAuthcID = optionalString("ldap", "sasl_authcid")
        ldap.saslRealm = optionalString("ldap", "sasl_realm")
        ldap.startTLS = bool("ldap", "starttls", false)
        if let r = string("ldap", "tls_reqcert"),
           let match = oneOf("ldap.tls_reqcert", r, ["never", "allow", "try", "demand", "hard"]) {
            ldap.tlsReqcert = match
        }
        ldap.tlsCACert = optionalString("ldap", "tls_cacert").map(resolve)
        ldap.tlsCert = optionalString("ldap", "tls_cert").map(resolve)
        ldap.tlsKey = optionalString("ldap", "tls_key").map(resolve)
        ldap.allowCleartext = bool("ldap", "allow_cleartext", false)
        let pageSize = int("ldap", "page_size", 1000)
        if !(1...10_000).contains(pageSize) {
            add("ldap.page_size", "must be between 1 and 10000 (found \(pageSize))")
        } else {
            ldap.pageSize = Int(pageSize)
        }
        let timeout = number("ldap", "timeout", 30)
        if !(timeout > 0 && timeout <= 86_400) {
            add("ldap.timeout", "must be a positive number of seconds, at most 86400")
        } else {
            ldap.timeout = timeout
        }
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

        // [users]
        var users = BridgeConfig.Users(searchBase: required("users", "search_base", hint: "where the user entries are, like ou=people,dc=example,dc=org"))
        if !users.searchBase.isEmpty && !ConfigReader.looksLikeDN(users.searchBase) {
            add("users.search_base", "\"\(ConfigSchema.excerpt(users.searchBase))\" does not look like a DN")
        }
        if let f = string("users", "filter") {
            if let p = ConfigReader.filterProblem(f) { add("users.filter", p) } else { users.filter = f }
        }
        users.nameAttribute = attribute("users", "name_attribute", users.nameAttribute)
        if let local = string("users", "local_account_attribute") {
            if local.isEmpty || ConfigReader.isAttributeName(local) {
                users.localAccountAttribute = local
            } else {
                add("users.local_account_attribute", "\"\(ConfigSchema.excerpt(local))\" is not an attribute name")
            }
        }
        users.uidNumberAttribute = attribute("users", "uid_number_attribute", users.uidNumberAttribute)
        users.displayNameAttribute = attribute("users", "display_name_attribute", users.displayNameAttribute)
        users.idAttribute = attribute("users", "id_attribute", "")

        // [devices]
        let devicesBase = required("devices", "search_base", hint: "where the device entries are, like ou=devices,dc=example,dc=org")
        let reports = required("devices", "reports", hint: "the folder of device reports")
        var devices = BridgeConfig.Devices(searchBase: devicesBase, reports: reports.isEmpty ? "" : resolve(reports))
        if !devicesBase.isEmpty && !ConfigReader.looksLikeDN(devicesBase) {
            add("devices.search_base", "\"\(ConfigSchema.excerpt(devicesBase))\" does not look like a DN")
        }
        if let f = string("devices", "filter") {
            if let p = ConfigReader.filterProblem(f) { add("devices.filter", p) } else { devices.filter = f }
        }
        devices.nameAttribute = attribute("devices", "name_attribute", devices.nameAttribute)
        if let m = string("devices", "member_attribute"),
           let match = oneOf("devices.member_attribute", m, ["member", "uniqueMember", "memberUid"]) {
            devices.memberAttribute = match
        }
        devices.activeWithin = duration("devices", "active_within", devices.activeWithin)
        // Report evidence limits (issue 11).
        devices.maxClockSkew = duration("devices", "max_clock_skew", devices.maxClockSkew)
        if let size = size("devices", "max_reports_size") { devices.maxReportsSize = size }

        // [bindings]
        var bindings = BridgeConfig.Bindings(searchBase: required("bindings", "search_base", hint: "where the bridge keeps binding groups, like ou=bindings,dc=example,dc=org"))
        if !bindings.searchBase.isEmpty && !ConfigReader.looksLikeDN(bindings.searchBase) {
            add("bindings.search_base", "\"\(ConfigSchema.excerpt(bindings.searchBase))\" does not look like a DN")
        }
        if let c = string("bindings", "object_class"),
           let match = oneOf("bindings.object_class", c, ["takeoverBindingGroup", "groupOfNames", "groupOfUniqueNames", "group"]) {
            bindings.objectClass = match
        }
        if let m = string("bindings", "member_attribute") {
            if let match = oneOf("bindings.member_attribute", m, ["member", "uniqueMember"]) {
                bindings.memberAttribute = match
                if bindings.objectClass == "groupOfNames" && match != "member" {
                    add("bindings.member_attribute", "groupOfNames keeps its members in member")
                } else if bindings.objectClass == "group" && match != "member" {
                    add("bindings.member_attribute", "Active Directory's group keeps its members in member")
                } else if bindings.objectClass == "groupOfUniqueNames" && match != "uniqueMember" {
                    add("bindings.member_attribute", "groupOfUniqueNames keeps its members in uniqueMember")
                }
            }
        } else if bindings.objectClass == "groupOfUniqueNames" {
            bindings.memberAttribute = "uniqueMember"
        }
        if !bindings.searchBase.isEmpty && !devicesBase.isEmpty {
            let b = ConfigReader.normalizedDN(bindings.searchBase), d = ConfigReader.normalizedDN(devicesBase)
            if b == d || b.hasSuffix("," + d) {
                add("bindings.search_base", "must not be inside [devices] search_base: binding groups would be read as devices")
            }
        }

        // [policy]
        var policy = BridgeConfig.PolicySection()
        policy.protectedAccounts = stringList("policy", "protected_accounts")
        if policy.protectedAccounts.contains(where: { $0.trimmingCharacters(in: .whitespaces).isEmpty }) {
            add("policy.protected_accounts", "contains an empty name")
        }
        policy.minUIDLinux = int("policy", "min_uid_linux", policy.minUIDLinux)
        if policy.minUIDLinux < 0 { add("policy.min_uid_linux", "must not be negative") }
        policy.minUIDMacOS = int("policy", "min_uid_macos", policy.minUIDMacOS)
        if policy.minUIDMacOS < 0 { add("policy.min_uid_macos", "must not be negative") }
        if let m = string("policy", "on_likely_mismatch"),
           let match = oneOf("policy.on_likely_mismatch", m, ["hold", "provision"]) {
            policy.onLikelyMismatch = match
        }

        // [safety]
        var safety = BridgeConfig.Safety()
        let maxUnbinds = int("safety", "max_unbinds", Int64(safety.maxUnbinds))
        if maxUnbinds < 0 || maxUnbinds > Int64(Int32.max) {
            add("safety.max_unbinds", "must be 0 or more")
        } else {
            safety.maxUnbinds = Int(maxUnbinds)
        }
        let percent = number("safety", "max_unbind_percent", safety.maxUnbindPercent)
        if !(percent >= 0 && percent <= 100) {
            add("safety.max_unbind_percent", "must be between 0 and 100")
        } else {
            safety.maxUnbindPercent = percent
        }
        let minUsers = int("safety", "min_users", Int64(safety.minUsers))
        if minUsers < 0 || minUsers > Int64(Int32.max) {
            add("safety.min_users", "must be 0 or more")
        } else {
            safety.minUsers = Int(minUsers)
        }

        // [state]
        var state = BridgeConfig.State()
        if let dir = string("state", "dir") {
            if dir.trimmingCharacters(in: .whitespaces).isEmpty {
                add("state.dir", "must not be empty")
            } else {
                state.dir = resolve(dir)
            }
        }
        // [state] metrics_file (issue 14): off when unset.
        if let metrics = string("state", "metrics_file") {
            if metrics.trimmingCharacters(in: .whitespaces).isEmpty || metrics.hasSuffix("/") {
                add("state.metrics_file", "must name a file, for example \"/var/lib/prometheus/node-exporter/takeover_bridge.prom\"")
            } else {
                // Relative to the config's folder, and never resolved through a symlink: the
                // file at this path is replaced (rename), not written through a link.
                state.metricsFile = metrics.hasPrefix("/") ? metrics : baseDirectory + "/" + metrics
            }
        }

        // [state] lease (issue 11)
        let lease = duration("state", "lease", state.lease)
        if (1...86_400).contains(lease) {
            state.lease = lease
        } else {
            add("state.lease", "must be between 1 second and 1 day (found \(lease) s)")
        }

        if !problems.isEmpty {
            throw ConfigError(problems: ConfigReader.sorted(problems))
        }
        return BridgeConfig(ldap: ldap, users: users, devices: devices, bindings: bindings, policy: policy,
                            safety: safety, state: state, sourcePath: source, keyLines: lines)
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

// MARK: - TOML pre-check

/// A structural check run before the TOML parser. toml++ 3.4 (inside TOMLKit) asserts
/// instead of reporting an error on some malformed keys (for example a table header
/// `[{x]`), which would abort the process on a broken config. This lexer walks the
/// statements, keys, strings, arrays and inline tables of TOML 1.0 and reports the
/// first malformed one with its line; what it accepts, the real parser then checks fully.
struct TOMLPrecheck {
    let bytes: [UInt8]
    var i = 0
    var line = 1
    /// Where each table header ("ldap") and key ("ldap.uri") first appears.
    var lines: [String: Int] = [:]
    var section: [String] = []
    /// How many arrays and inline tables enclose the current value.
    var depth = 0
    /// Deeper nesting is refused: the lexer (and the parser after it) recurse once per level,
    /// and a config has no use for more than a few.
    static let maxDepth = 64

    struct Failure: Error {
        var line: Int
        var message: String
    }

    init(_ text: String) {
        bytes = Array(text.utf8)
    }

    var atEnd: Bool { i >= bytes.count }
    var current: UInt8 { i < bytes.count ? bytes[i] : 0 }

    func peek(_ offset: Int) -> UInt8 { i + offset < bytes.count ? bytes[i + offset] : 0 }

    func fail(_ message: String) -> Failure { Failure(line: line, message: message) }

    static func isBareKey(_ b: UInt8) -> Bool {
        (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39) || b == 0x5F || b == 0x2D
    }

    mutating func skipSpaces() {
        while !atEnd, current == 0x20 || current == 0x09 { i += 1 }
    }

    mutating func skipComment() {
        if current == UInt8(ascii: "#") {
            while !atEnd, current != 0x0A { i += 1 }
        }
    }

    /// Spaces, comments and newlines (between statements and inside arrays).
    mutating func skipBlank() {
        while !atEnd {
            switch current {
            case 0x20, 0x09, 0x0D: i += 1
            case 0x0A: i += 1; line += 1
            case UInt8(ascii: "#"): skipComment()
            default: return
            }
        }
    }

    mutating func endOfLine(after what: String) throws(Failure) {
        skipSpaces()
        skipComment()
        if atEnd { return }
        if current == 0x0D && peek(1) == 0x0A { i += 1 }
        guard current == 0x0A else { throw fail("unexpected text after \(what)") }
        i += 1
        line += 1
    }

    mutating func document() throws(Failure) {
        while true {
            skipBlank()
            if atEnd { return }
            if current == UInt8(ascii: "[") {
                i += 1
                let array = current == UInt8(ascii: "[")
                if array { i += 1 }
                let headerLine = line
                section = try key(in: "table header")
                record(section, headerLine)
                guard current == UInt8(ascii: "]") else { throw fail("a table header must end with ']'") }
                i += 1
                if array {
                    guard current == UInt8(ascii: "]") else { throw fail("an array-of-tables header must end with ']]'") }
                    i += 1
                }
                try endOfLine(after: "the table header")
            } else {
                try keyValue(prefix: section)
                try endOfLine(after: "the value")
            }
        }
    }

    mutating func record(_ path: [String], _ at: Int) {
        let name = path.joined(separator: ".")
        if lines[name] == nil { lines[name] = at }
    }

    /// A dotted key's parts (quoted parts without their quotes; escapes kept as written).
    mutating func key(in context: String) throws(Failure) -> [String] {
        var parts: [String] = []
        while true {
            skipSpaces()
            let start = i
            if Self.isBareKey(current) {
                while Self.isBareKey(current) { i += 1 }
                parts.append(String(decoding: bytes[start..<i], as: UTF8.self))
            } else if current == UInt8(ascii: "\"") {
                try basicString()
                parts.append(String(decoding: bytes[(start + 1)..<(i - 1)], as: UTF8.self))
            } else if current == UInt8(ascii: "'") {
                try literalString()
                parts.append(String(decoding: bytes[(start + 1)..<(i - 1)], as: UTF8.self))
            } else {
                throw fail("invalid key in \(context): use letters, digits, '_' and '-', or quote it")
            }
            skipSpaces()
            guard current == UInt8(ascii: ".") else { return parts }
            guard parts.count < Self.maxDepth else { throw fail("a dotted key has more than \(Self.maxDepth) parts") }
            i += 1
        }
    }

    mutating func keyValue(prefix: [String]) throws(Failure) {
        let keyLine = line
        let path = prefix + (try key(in: "key = value"))
        record(path, keyLine)
        guard current == UInt8(ascii: "=") else { throw fail("expected '=' after the key") }
        i += 1
        skipSpaces()
        try value(path: path)
    }

    mutating func basicString() throws(Failure) {
        i += 1
        while true {
            guard !atEnd, current != 0x0A else { throw fail("unterminated string") }
            if current == UInt8(ascii: "\\") { i += 2; continue }
            if current == UInt8(ascii: "\"") { i += 1; return }
            i += 1
        }
    }

    mutating func literalString() throws(Failure) {
        i += 1
        while true {
            guard !atEnd, current != 0x0A else { throw fail("unterminated string") }
            if current == UInt8(ascii: "'") { i += 1; return }
            i += 1
        }
    }

    mutating func multilineString(quote: UInt8) throws(Failure) {
        let start = line
        i += 3
        while true {
            guard !atEnd else { throw Failure(line: start, message: "unterminated multi-line string") }
            if current == 0x0A { line += 1 }
            if quote == UInt8(ascii: "\"") && current == UInt8(ascii: "\\") {
                i += 1
                if current == 0x0A { line += 1 }
                i += 1
                continue
            }
            if current == quote && peek(1) == quote && peek(2) == quote {
                i += 3
                var extra = 0
                while current == quote && extra < 2 { i += 1; extra += 1 }
                return
            }
            i += 1
        }
    }

    mutating func value(path: [String]) throws(Failure) {
        let nests = current == UInt8(ascii: "[") || current == UInt8(ascii: "{")
        if nests {
            guard depth < Self.maxDepth else {
                throw fail("arrays and inline tables are nested more than \(Self.maxDepth) deep")
            }
            depth += 1
        }
        defer { if nests { depth -= 1 } }
        switch current {
        case UInt8(ascii: "\""):
            if peek(1) == current && peek(2) == current { try multilineString(quote: current) } else { try basicString() }
        case UInt8(ascii: "'"):
            if peek(1) == current && peek(2) == current { try multilineString(quote: current) } else { try literalString() }
        case UInt8(ascii: "["):
            i += 1
            while true {
                skipBlank()
                if current == UInt8(ascii: "]") { i += 1; return }
                guard !atEnd else { throw fail("unterminated array") }
                try value(path: path)
                skipBlank()
                if current == UInt8(ascii: ",") { i += 1; continue }
                if current == UInt8(ascii: "]") { i += 1; return }
                throw fail("expected ',' or ']' in the array")
            }
        case UInt8(ascii: "{"):
            i += 1
            skipSpaces()
            if current == UInt8(ascii: "}") { i += 1; return }
            while true {
                try keyValue(prefix: path)
                skipSpaces()
                if current == UInt8(ascii: ",") { i += 1; continue }
                if current == UInt8(ascii: "}") { i += 1; return }
                throw fail("expected ',' or '}' in the inline table")
            }
        default:
            // Numbers, booleans, dates: the parser checks their form.
            let start = i
            while !atEnd {
                let b = current
                if b == 0x20 || b == 0x09 {
                    // "1979-05-27 07:32:00": a date and a time separated by one space.
                    if i - start == 10, bytes[start + 4] == UInt8(ascii: "-"), (0x30...0x39).contains(peek(1)) {
                        i += 1
                        continue
                    }
                    break
                }
                if b == 0x0A || b == 0x0D || b == UInt8(ascii: ",") || b == UInt8(ascii: "]") || b == UInt8(ascii: "}")
                    || b == UInt8(ascii: "#") {
                    break
                }
                i += 1
            }
            if i == start { throw fail("missing value") }
        }
    }
}

// MARK: - Bind names (issue 10, PRODUCT.md 8b)

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
