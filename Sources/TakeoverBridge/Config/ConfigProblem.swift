// The problems a configuration can have: each located by file, line and key, all reported at once.

// MARK: - Problems

/// One thing wrong with the configuration, located as precisely as possible.
package struct ConfigProblem: Sendable, Hashable, CustomStringConvertible {
    /// The file (as given to `load`) or the name passed to `parse`.
    package var source: String
    package var line: Int?
    /// Dotted key, e.g. "ldap.timeout"; a section alone is "ldap"; nil for file-wide problems.
    package var key: String?
    package var message: String

    /// `config.toml:12: [ldap] timeout: must be a positive number of seconds`
    package var description: String {
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
package struct ConfigError: Error, Sendable, CustomStringConvertible {
    package var problems: [ConfigProblem]

    package init(problems: [ConfigProblem]) {
        self.problems = problems
    }

    package init(_ problem: ConfigProblem) {
        self.problems = [problem]
    }

    /// One problem per line.
    package var description: String {
        problems.map(\.description).joined(separator: "\n")
    }
}
