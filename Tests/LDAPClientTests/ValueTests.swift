import CLDAP
import LDAPClient
import Testing

/// Server-free tests of the value types.
@Suite("values without a server")
struct ValueTests {
    @Test func valuesKeepBytesAndCheckUTF8() {
        #expect(LDAPValue("Zoë").bytes == [0x5A, 0x6F, 0xC3, 0xAB])
        #expect(LDAPValue("Zoë").string == "Zoë")
        #expect(LDAPValue(bytes: [0xC3]).string == nil)
        #expect(LDAPValue(bytes: [0x61, 0x00, 0x62]).string == "a\u{0}b")
        #expect(LDAPValue(bytes: []).string == "")
    }

    /// `LDAPValue` takes ASCII by a fast path and everything else through
    /// `String(validating:as:)`: both must give the answer `String(validating:as:)` gives.
    @Test func theASCIIPathAndTheValidatingPathAgree() {
        func check(_ bytes: [UInt8]) {
            let expected = String(validating: bytes, as: UTF8.self)
            let value = LDAPValue(bytes: bytes)
            #expect(value.string == expected, "\(bytes)")
            #expect(value.bytes == bytes)
            #expect(value.count == bytes.count)
        }
        // Every value of one and two bytes (ASCII, stray continuation bytes, lead bytes
        // without their continuation, overlong forms, valid two-byte characters).
        for a in 0...255 {
            check([UInt8(a)])
            for b in 0...255 { check([UInt8(a), UInt8(b)]) }
        }
        // One non-ASCII byte or character at every position of ASCII values of 0 to 33
        // bytes (the eight-byte steps, the tail after them, both ends).
        let odd: [[UInt8]] = [[0x80], [0xFF], [0xC3], [0xC3, 0xA9], [0xE2, 0x82, 0xAC], [0xED, 0xA0, 0x80],
                              [0xF0, 0x9F, 0x98, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xC0, 0xAF], [0x00]]
        for length in 0...33 {
            let ascii = (0..<length).map { UInt8(0x20 + $0 % 0x5F) }
            check(ascii)
            for position in 0...length {
                for insert in odd { check(Array(ascii[..<position]) + insert + Array(ascii[position...])) }
            }
        }
        // Longer text in several scripts, and the empty value.
        for text in ["Zoë Ångström", "日本語のテキスト", "ascii only and long enough to take several steps", "", "\u{0}"] {
            check(Array(text.utf8))
        }
    }

    @Test func entryLookupsIgnoreASCIICaseOnly() {
        let entry = LDAPEntry(dn: "uid=a,dc=x", attributes: [
            (name: "objectClass", values: [LDAPValue("top"), LDAPValue("person")]),
            (name: "jpegPhoto", values: [LDAPValue(bytes: [0xFF, 0x00])]),
            (name: "cn", values: [LDAPValue(bytes: [0xFF]), LDAPValue("Alice")]),
            (name: "cn;lang-en", values: [LDAPValue("Alice EN")]),
        ])
        #expect(entry.strings("OBJECTCLASS") == ["top", "person"])
        #expect(entry.values("jpegphoto") == [LDAPValue(bytes: [0xFF, 0x00])])
        #expect(entry.strings("jpegPhoto").isEmpty)
        #expect(entry.first("CN") == "Alice") // first UTF-8 value
        #expect(entry.strings("cn") == ["Alice"]) // options are part of the name
        #expect(entry.first("cn;LANG-EN") == "Alice EN")
        #expect(entry.firstValue("JPEGPHOTO") == LDAPValue(bytes: [0xFF, 0x00]))
        #expect(entry.firstValue("cn") == LDAPValue(bytes: [0xFF])) // UTF-8 or not
        #expect(entry.firstValue("sn") == nil)
        #expect(entry.values("sn").isEmpty)
        #expect(entry.first("sn") == nil)
        #expect(entry.has("Cn") && !entry.has("sn"))
    }

    @Test func errorsDescribeThemselvesOnOneLineWithoutSecrets() {
        let error = LDAPError(code: .invalidCredentials, operation: .bind, message: "Invalid credentials",
                              diagnostic: "line one\nline two", matchedDN: nil, dn: "cn=bridge,dc=x")
        #expect(error.description == "bind of 'cn=bridge,dc=x' failed: Invalid credentials (49); diagnostic: line one line two")
        #expect(!error.isConnectionLost)
        #expect(!error.isAlreadyDone)
        for code: LDAPResultCode in [.serverDown, .timeout, .connectError] {
            #expect(LDAPError(code: code, operation: .search, message: "x").isConnectionLost)
        }
        let referral = LDAPError(code: .referral, operation: .modify, message: "Referral", matchedDN: "dc=x",
                                 referrals: ["ldap://a/", "ldap://b/"], dn: "cn=g,dc=x", firstUnknownIndex: 3)
        #expect(referral.description == "modify of 'cn=g,dc=x' failed: Referral (10); matched: 'dc=x'; referrals: ldap://a/ ldap://b/; outcome unknown from request #3")
        let secret = Secret("hunter2")
        #expect("\(secret)" == "<redacted>" && String(reflecting: secret) == "<redacted>")
        #expect(!"\(LDAPCredentials.simple(dn: "cn=a", password: secret))".contains("hunter2"))
    }

    @Test func resultCodeNamesAreLibldapsCodes() {
        let pairs: [(LDAPResultCode, Int32)] = [
            (.success, LDAP_SUCCESS), (.operationsError, LDAP_OPERATIONS_ERROR), (.protocolError, LDAP_PROTOCOL_ERROR),
            (.timeLimitExceeded, LDAP_TIMELIMIT_EXCEEDED), (.sizeLimitExceeded, LDAP_SIZELIMIT_EXCEEDED),
            (.authMethodNotSupported, LDAP_AUTH_METHOD_NOT_SUPPORTED), (.strongerAuthRequired, LDAP_STRONG_AUTH_REQUIRED),
            (.referral, LDAP_REFERRAL), (.adminLimitExceeded, LDAP_ADMINLIMIT_EXCEEDED),
            (.unavailableCriticalExtension, LDAP_UNAVAILABLE_CRITICAL_EXTENSION),
            (.confidentialityRequired, LDAP_CONFIDENTIALITY_REQUIRED), (.saslBindInProgress, LDAP_SASL_BIND_IN_PROGRESS),
            (.noSuchAttribute, LDAP_NO_SUCH_ATTRIBUTE), (.undefinedAttributeType, LDAP_UNDEFINED_TYPE),
            (.inappropriateMatching, LDAP_INAPPROPRIATE_MATCHING), (.constraintViolation, LDAP_CONSTRAINT_VIOLATION),
            (.attributeOrValueExists, LDAP_TYPE_OR_VALUE_EXISTS), (.invalidAttributeSyntax, LDAP_INVALID_SYNTAX),
            (.noSuchObject, LDAP_NO_SUCH_OBJECT), (.aliasProblem, LDAP_ALIAS_PROBLEM), (.invalidDNSyntax, LDAP_INVALID_DN_SYNTAX),
            (.aliasDereferencingProblem, LDAP_ALIAS_DEREF_PROBLEM), (.inappropriateAuthentication, LDAP_INAPPROPRIATE_AUTH),
            (.invalidCredentials, LDAP_INVALID_CREDENTIALS), (.insufficientAccessRights, LDAP_INSUFFICIENT_ACCESS),
            (.busy, LDAP_BUSY), (.unavailable, LDAP_UNAVAILABLE), (.unwillingToPerform, LDAP_UNWILLING_TO_PERFORM),
            (.loopDetect, LDAP_LOOP_DETECT), (.namingViolation, LDAP_NAMING_VIOLATION),
            (.objectClassViolation, LDAP_OBJECT_CLASS_VIOLATION), (.notAllowedOnNonLeaf, LDAP_NOT_ALLOWED_ON_NONLEAF),
            (.notAllowedOnRDN, LDAP_NOT_ALLOWED_ON_RDN), (.entryAlreadyExists, LDAP_ALREADY_EXISTS),
            (.objectClassModsProhibited, LDAP_NO_OBJECT_CLASS_MODS), (.affectsMultipleDSAs, LDAP_AFFECTS_MULTIPLE_DSAS),
            (.other, LDAP_OTHER), (.assertionFailed, LDAP_ASSERTION_FAILED),
            (.serverDown, LDAP_SERVER_DOWN), (.localError, LDAP_LOCAL_ERROR), (.encodingError, LDAP_ENCODING_ERROR),
            (.decodingError, LDAP_DECODING_ERROR), (.timeout, LDAP_TIMEOUT), (.authUnknown, LDAP_AUTH_UNKNOWN),
            (.filterError, LDAP_FILTER_ERROR), (.userCancelled, LDAP_USER_CANCELLED), (.paramError, LDAP_PARAM_ERROR),
            (.noMemory, LDAP_NO_MEMORY), (.connectError, LDAP_CONNECT_ERROR), (.notSupported, LDAP_NOT_SUPPORTED),
            (.controlNotFound, LDAP_CONTROL_NOT_FOUND), (.noResultsReturned, LDAP_NO_RESULTS_RETURNED),
            (.moreResultsToReturn, LDAP_MORE_RESULTS_TO_RETURN), (.clientLoop, LDAP_CLIENT_LOOP),
            (.referralLimitExceeded, LDAP_REFERRAL_LIMIT_EXCEEDED),
        ]
        for (name, code) in pairs {
            #expect(name.rawValue == code, "\(name) is libldap's \(code)")
        }
        #expect(Set(pairs.map(\.0)).count == pairs.count, "every name has its own code")
        // An open set: a code without a name survives as a value and prints as its number.
        #expect(LDAPResultCode(rawValue: 8_235).description == "8235")
    }

    @Test func resultCodesMatchInSwitchAndCatch() {
        func name(_ code: LDAPResultCode) -> String {
            switch code {
            case .noSuchObject: "noSuchObject"
            case .serverDown, .timeout: "lost"
            default: "other"
            }
        }
        #expect(name(LDAPResultCode(rawValue: 32)) == "noSuchObject")
        #expect(name(LDAPResultCode(rawValue: -5)) == "lost")
        #expect(name(.busy) == "other")
        func caught(_ error: any Error) -> String {
            do { throw error } catch LDAPResultCode.entryAlreadyExists { return "exists" } catch { return "else" }
        }
        #expect(caught(LDAPError(code: .entryAlreadyExists, operation: .add, message: "Already exists")) == "exists")
        #expect(caught(LDAPError(code: .noSuchObject, operation: .add, message: "No such object")) == "else")
        #expect(caught(CancellationError()) == "else")
        let typed: LDAPError = LDAPError(code: .referral, operation: .modify, message: "Referral")
        #expect(LDAPResultCode.referral ~= typed)
        #expect(!(LDAPResultCode.busy ~= typed))
        #expect(LDAPOperation.write.description == "write")
    }

    @Test func cleartextDetection() {
        func cleartext(_ uri: String, startTLS: Bool = false) -> Bool {
            LDAPConnectionOptions(uri: uri, startTLS: startTLS).sendsPasswordsInCleartext
        }
        #expect(cleartext("ldap://ldap.example.org"))
        #expect(cleartext("ldap://10.0.0.5:389/"))
        #expect(cleartext("ldaps://a.example.org ldap://b.example.org"))
        #expect(!cleartext("ldap://ldap.example.org", startTLS: true))
        #expect(!cleartext("ldaps://ldap.example.org"))
        #expect(!cleartext("ldapi://%2Frun%2Fslapd%2Fldapi"))
        #expect(!cleartext("ldap://127.0.0.1:3890"))
        #expect(!cleartext("LDAP://localhost"))
        #expect(!cleartext("ldap://[::1]:389"))
        // No host: libldap goes to its default host (ldap.conf), which may be anywhere: the
        // configuration refuses it too (ConfigTests.cleartextRule; one rule, LDAPURI).
        #expect(cleartext("ldap:///"))
        #expect(cleartext("ldap://127.0.0.1.nip.io"))
    }
}
