// The one list of names that mark a secret: a log field with such a key is redacted
// (Logfmt), and a config key with such a name is refused without echoing its value
// (ConfigReader), except the two keys that say where the password is.

enum SecretKeys {
    /// Parts of a name that mark a secret, compared lower-cased.
    static let fragments = ["password", "passwd", "secret", "token", "credential", "authtok"]

    /// True when `key` names a secret: it contains a fragment, or is `pw`, `bindpw` or ends in `_pw`.
    static func isSecret(_ key: String) -> Bool {
        let k = key.lowercased()
        return fragments.contains { k.contains($0) } || k == "pw" || k == "bindpw" || k.hasSuffix("_pw")
    }

    /// Config keys that name where the bind password is, never the password itself.
    static let passwordSources: Set<String> = ["bind_password_file", "bind_password_env"]

    /// True when a config key would hold a secret in the file itself.
    static func isSecretConfigKey(_ key: String) -> Bool {
        !passwordSources.contains(key.lowercased()) && isSecret(key)
    }
}
