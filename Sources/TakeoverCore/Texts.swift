// Every sentence the planner puts into a report, in one place.

enum Kind {
    static let duplicateLocalAccount = "duplicate-local-account"
    static let duplicateUsername = "duplicate-username"
    static let usernameMatchesLocalAccount = "username-matches-local-account"
    static let protectedAccount = "protected-account"
    static let likelyMismatch = "likely-mismatch"
    static let changedAfterBinding = "changed-after-binding"
    static let invalidLocalName = "invalid-local-name"
    static let accountAlreadyBound = "account-already-bound"
    static let ambiguousLocalAccount = "ambiguous-local-account"

    static let multiValuedUsername = "multi-valued-username"
    static let duplicateUIDNumber = "duplicate-uid-number"
    static let soleLocalAccount = "sole-local-account"
    static let unknownMember = "unknown-member"
    static let unmanagedMember = "unmanaged-member"
    static let staleRecord = "stale-record"
    static let duplicateBindingGroup = "duplicate-binding-group"
    static let duplicateUserEntry = "duplicate-user-entry"

    /// The user-level conflicts (R1-R3), in rule order.
    static let userConflicts = [duplicateLocalAccount, duplicateUsername, usernameMatchesLocalAccount]

    /// Report order of conflict kinds: the rule order of PRODUCT.md section 3.
    static let conflictOrder: [String: Int] = [
        duplicateLocalAccount: 0, duplicateUsername: 1, usernameMatchesLocalAccount: 2, protectedAccount: 3,
        accountAlreadyBound: 4, ambiguousLocalAccount: 5, likelyMismatch: 6, changedAfterBinding: 7,
        invalidLocalName: 8,
    ]
}

enum Reason {
    static let takeover = "a local account has the user's local name"
    static let provision = "no local account has the user's local name"
    static let bound = "already bound with this local account"
    static let adopted = "member of the binding group without a record: adopted"
    static let notConnected = "no longer connected to the device"
    static let goneFromDirectory = "no longer in the directory"
    static let noReport = "no report"
}

enum Notice {
    static let signOut = "the user will be signed out of apps (1Password, Slack, browsers...) after takeover"
    static let macOSLogout = "must log out and back in so Keychain and FileVault take the new password"
    static let heldByConflict = "the existing binding is kept while the conflict lasts (R4)"
    static let adopted = "added to the binding group outside takeover-bridge; its local account is now recorded"
    static let takeoverNotices = [signOut]
    static let takeoverNoticesMacOS = [signOut, macOSLogout]
    static let heldNotices = [heldByConflict]
    static let adoptedNotices = [adopted]

    static func caseOnly(device: String, local: String) -> String {
        "local account \(q(device)) differs from \(q(local)) only in case; the device's spelling is kept"
    }

    /// A bound user whose DN changed (PRODUCT.md 8b): the binding follows the stable id.
    static func moved(from old: String) -> String {
        "moved from \(old): the user's stable id is unchanged, so the binding stays and its member value and record follow the new DN"
    }

    static func boundAccountMissing(_ name: String) -> String {
        "the device's newest report does not list the bound account \(q(name))"
    }
}
