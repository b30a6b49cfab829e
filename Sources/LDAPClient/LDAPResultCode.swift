/// An LDAP result code (RFC 4511 section 4.1.9) or one of libldap's negative client
/// codes (-1 server down, -5 timeout, ...), by name.
///
/// An open set, not an enum: a server may send any code (extensions define more, and
/// Active Directory sends its own), and each must survive as a value. Compare with the
/// names, in `==`, in a `switch` (`case .noSuchObject:`), or in a `catch` pattern
/// (`catch LDAPResultCode.entryAlreadyExists`), which matches an `LDAPError` with that code.
public struct LDAPResultCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int32

    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// The number, as libldap and the servers print it (`Size limit exceeded (4)`).
    public var description: String { String(rawValue) }

    /// Matches an error that is an `LDAPError` with this code.
    public static func ~= (pattern: LDAPResultCode, error: any Error) -> Bool {
        (error as? LDAPError)?.code == pattern
    }

    /// Matches an `LDAPError` with this code (for functions that throw `LDAPError` only).
    public static func ~= (pattern: LDAPResultCode, error: LDAPError) -> Bool {
        error.code == pattern
    }
}

// RFC 4511 section 4.1.9 and appendix A, plus the extensions the project meets.
extension LDAPResultCode {
    public static let success = LDAPResultCode(rawValue: 0)
    public static let operationsError = LDAPResultCode(rawValue: 1)
    public static let protocolError = LDAPResultCode(rawValue: 2)
    public static let timeLimitExceeded = LDAPResultCode(rawValue: 3)
    public static let sizeLimitExceeded = LDAPResultCode(rawValue: 4)
    public static let compareFalse = LDAPResultCode(rawValue: 5)
    public static let compareTrue = LDAPResultCode(rawValue: 6)
    public static let authMethodNotSupported = LDAPResultCode(rawValue: 7)
    public static let strongerAuthRequired = LDAPResultCode(rawValue: 8)
    public static let referral = LDAPResultCode(rawValue: 10)
    public static let adminLimitExceeded = LDAPResultCode(rawValue: 11)
    public static let unavailableCriticalExtension = LDAPResultCode(rawValue: 12)
    public static let confidentialityRequired = LDAPResultCode(rawValue: 13)
    public static let saslBindInProgress = LDAPResultCode(rawValue: 14)
    public static let noSuchAttribute = LDAPResultCode(rawValue: 16)
    public static let undefinedAttributeType = LDAPResultCode(rawValue: 17)
    public static let inappropriateMatching = LDAPResultCode(rawValue: 18)
    public static let constraintViolation = LDAPResultCode(rawValue: 19)
    /// RFC 4511's `attributeOrValueExists`; libldap's `LDAP_TYPE_OR_VALUE_EXISTS`.
    public static let attributeOrValueExists = LDAPResultCode(rawValue: 20)
    public static let invalidAttributeSyntax = LDAPResultCode(rawValue: 21)
    public static let noSuchObject = LDAPResultCode(rawValue: 32)
    public static let aliasProblem = LDAPResultCode(rawValue: 33)
    public static let invalidDNSyntax = LDAPResultCode(rawValue: 34)
    public static let aliasDereferencingProblem = LDAPResultCode(rawValue: 36)
    public static let inappropriateAuthentication = LDAPResultCode(rawValue: 48)
    public static let invalidCredentials = LDAPResultCode(rawValue: 49)
    public static let insufficientAccessRights = LDAPResultCode(rawValue: 50)
    public static let busy = LDAPResultCode(rawValue: 51)
    public static let unavailable = LDAPResultCode(rawValue: 52)
    public static let unwillingToPerform = LDAPResultCode(rawValue: 53)
    public static let loopDetect = LDAPResultCode(rawValue: 54)
    public static let namingViolation = LDAPResultCode(rawValue: 64)
    public static let objectClassViolation = LDAPResultCode(rawValue: 65)
    public static let notAllowedOnNonLeaf = LDAPResultCode(rawValue: 66)
    public static let notAllowedOnRDN = LDAPResultCode(rawValue: 67)
    public static let entryAlreadyExists = LDAPResultCode(rawValue: 68)
    public static let objectClassModsProhibited = LDAPResultCode(rawValue: 69)
    public static let affectsMultipleDSAs = LDAPResultCode(rawValue: 71)
    public static let other = LDAPResultCode(rawValue: 80)
    /// RFC 4528 (assertion control): the assertion did not hold.
    public static let assertionFailed = LDAPResultCode(rawValue: 122)
}

// libldap's client-side codes (ldap.h, "API Error Codes"): never sent by a server.
extension LDAPResultCode {
    public static let serverDown = LDAPResultCode(rawValue: -1)
    public static let localError = LDAPResultCode(rawValue: -2)
    public static let encodingError = LDAPResultCode(rawValue: -3)
    public static let decodingError = LDAPResultCode(rawValue: -4)
    public static let timeout = LDAPResultCode(rawValue: -5)
    public static let authUnknown = LDAPResultCode(rawValue: -6)
    public static let filterError = LDAPResultCode(rawValue: -7)
    public static let userCancelled = LDAPResultCode(rawValue: -8)
    public static let paramError = LDAPResultCode(rawValue: -9)
    public static let noMemory = LDAPResultCode(rawValue: -10)
    public static let connectError = LDAPResultCode(rawValue: -11)
    public static let notSupported = LDAPResultCode(rawValue: -12)
    public static let controlNotFound = LDAPResultCode(rawValue: -13)
    public static let noResultsReturned = LDAPResultCode(rawValue: -14)
    public static let moreResultsToReturn = LDAPResultCode(rawValue: -15)
    public static let clientLoop = LDAPResultCode(rawValue: -16)
    public static let referralLimitExceeded = LDAPResultCode(rawValue: -17)
}

/// What an `LDAPError` was doing when it failed; the raw value is the word the error's
/// text starts with (`search of '...' failed: ...`).
public enum LDAPOperation: String, Sendable, Hashable, CustomStringConvertible {
    case connect, starttls, bind, whoami, search, add, delete, modify
    /// A pipelined batch that mixes adds and modifies (`LDAPConnection.writePipelined`).
    case write

    public var description: String { rawValue }
}
