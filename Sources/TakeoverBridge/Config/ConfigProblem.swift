// The problems a configuration can have: each located by file, line and key, all reported at once.

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
