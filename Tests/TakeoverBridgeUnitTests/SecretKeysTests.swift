// One secret-key list (SecretKeys): the log redaction and the config's refusal agree.

import Testing
@testable import TakeoverBridge

@Suite struct SecretKeysTests {
    static let names = ["password", "Password", "bind_password", "passwd", "client_secret", "apiToken", "token",
                        "credentials", "sasl_credential", "authtok", "pw", "bindpw", "bind_pw", "PW",
                        "uri", "bind_dn", "page_size", "timeout", "pwd_policy", "powder", "dn"]

    @Test func logsAndTheConfigUseOneList() {
        for name in Self.names {
            #expect(Logfmt.isSecretKey(name) == ConfigSchema.looksLikeSecret(name), "\(name)")
        }
        #expect(Self.names.filter(Logfmt.isSecretKey).count == 14)
    }

    @Test func theKeysThatSayWhereThePasswordIsAreNotSecrets() {
        for key in SecretKeys.passwordSources {
            #expect(Logfmt.isSecretKey(key))  // a log field named so is still redacted
            #expect(!ConfigSchema.looksLikeSecret(key))
            #expect(ConfigSchema.keys.contains { $0.name == key })
        }
        // No key of the table looks like a secret, or it could never be set.
        #expect(ConfigSchema.keys.filter { ConfigSchema.looksLikeSecret($0.name) }.isEmpty)
    }

    @Test func aTokenInTheConfigIsRefusedWithoutItsValue() {
        let toml = minimalTOML.replacingOccurrences(of: "[users]", with: "api_token = \"s3cr3t-value\"\n\n[users]")
        let problems = parseProblems(toml)
        #expect(problems.map(\.message) == [ConfigSchema.secretMessage])
        #expect(!problems.description.contains("s3cr3t-value"))
    }
}
