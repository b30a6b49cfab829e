// The values the planner consumes and produces. Everything here is plain data:
// no I/O, no clock, no LDAP. The glue (TakeoverBridge) fills the inputs from the
// directory and the reports folder; renderers turn the Plan into text, JSON, CSV, LDIF.

/// Seconds since 1970-01-01T00:00:00Z. "Now" is always an input, never read from a clock.
public typealias UnixTime = Int64

// MARK: - Inputs

/// One posixAccount entry as read from the directory.
public struct DirectoryUser: Sendable, Hashable {
    /// The entry's DN exactly as the server returned it.
    public var dn: String
    /// The username used for everything: the RDN value when the RDN is the name
    /// attribute, else the first value (R2).
    public var username: String
    /// Every value of the name attribute. More than one: warning `multi-valued-username`.
    /// Stored only when it is not just `[username]` (one array less per user).
    public var allUsernames: [String] {
        get { otherUsernames ?? [username] }
        set { otherUsernames = newValue.count == 1 && newValue[0] == username ? nil : newValue }
    }
    private var otherUsernames: [String]?

    /// How many values the name attribute has (no array is made for the usual one).
    var usernameValueCount: Int { otherUsernames?.count ?? 1 }
    /// The Local User Account field; nil when absent or empty.
    public var localAccountField: String?
    /// uidNumber (first numeric value); duplicates across users: warning `duplicate-uid-number`.
    public var uidNumber: Int64?
    public var displayName: String?
    /// entryUUID or similar, when the directory gives one.
    public var stableID: String?

    public init(dn: String, username: String, allUsernames: [String]? = nil, localAccountField: String? = nil,
                uidNumber: Int64? = nil, displayName: String? = nil, stableID: String? = nil) {
        self.dn = dn
        self.username = username
        if let all = allUsernames, !(all.count == 1 && all[0] == username) {
            self.otherUsernames = all
        } else {
            self.otherUsernames = nil
        }
        self.localAccountField = (localAccountField?.isEmpty ?? true) ? nil : localAccountField
        self.uidNumber = uidNumber
        self.displayName = displayName
        self.stableID = stableID
    }

    /// The local account field when set, else the username (docs/product.md section 2).
    public var localName: String { localAccountField ?? username }
}

/// How a device entry names a connected user: by DN (`member`, `uniqueMember`) or by name (`memberUid`).
public enum MemberReference: Sendable, Hashable {
    case dn(String)
    case name(String)
}

/// One device entry as read from the directory. Each entry is one device (R15): two
/// entries are two devices even when their names are equal compared case-insensitively.
public struct DeviceEntry: Sendable, Hashable {
    /// The device name as the entry spells it.
    public var name: String
    /// The entry's DN exactly as the server returned it; what tells entries named alike
    /// apart. nil when not known: then any entry spelled alike is taken to be this one.
    public var dn: String?

    public init(name: String, dn: String? = nil) {
        self.name = name
        self.dn = dn
    }
}

/// "User U is connected to device D": the admin's intent, read from a device entry.
public struct Connection: Sendable, Hashable {
    /// The device name as the device entry spells it.
    public var device: String
    public var member: MemberReference
    /// The DN of the device entry it came from: tells entries named alike apart (R15), and
    /// names the entry in messages.
    public var sourceDN: String?

    public init(device: String, member: MemberReference, sourceDN: String? = nil) {
        self.device = device
        self.member = member
        self.sourceDN = sourceDN
    }
}

public enum Platform: String, Sendable, Hashable, Codable, CaseIterable {
    case linux, macos, windows, unknown
}

/// One local account as a device reported it. Raw facts only; protection (R5) is decided
/// by `ProtectedAccounts` with the policy.
public struct LocalAccount: Sendable, Hashable {
    // Ten million of these are the largest input the planner holds (a million users): the
    // layout is 96 bytes instead of 128. The numbers and flags are packed; the two facts
    // only Windows reports carry live in one shared box, absent on every other account.
    /// The name as the device spells it.
    public var name: String
    public var home: String?
    public var shell: String?
    /// Full name / gecos / description.
    public var fullName: String?
    // Internal, not private, so the initialiser and the accessors can be inlined into the
    // report parsers (another module) that make ten million of these.
    @usableFromInline var uidBits: Int64 = 0
    @usableFromInline var uidSignedBits: Int64 = 0
    @usableFromInline var windows: WindowsFacts?
    @usableFromInline var flags: Flags = []

    @usableFromInline struct Flags: OptionSet, Hashable, Sendable {
        @usableFromInline let rawValue: UInt8
        @inlinable init(rawValue: UInt8) { self.rawValue = rawValue }
        @usableFromInline static let hidden = Flags(rawValue: 1)
        @usableFromInline static let hasUID = Flags(rawValue: 2)
        @usableFromInline static let hasUIDSigned = Flags(rawValue: 4)
        @usableFromInline static let hasRealUser = Flags(rawValue: 8)
        @usableFromInline static let realUser = Flags(rawValue: 16)
        @usableFromInline static let hasEnabled = Flags(rawValue: 32)
        @usableFromInline static let enabled = Flags(rawValue: 64)
    }

    /// Windows SID (osquery `uuid` on Windows, PowerShell `SID.Value`).
    public var sid: String? {
        @inlinable get { windows?.sid }
        @inlinable set { windows = WindowsFacts.make(sid: newValue, accountType: accountType) }
    }
    /// osquery Windows `type`: local, roaming, special.
    public var accountType: String? {
        @inlinable get { windows?.accountType }
        @inlinable set { windows = WindowsFacts.make(sid: sid, accountType: newValue) }
    }
    /// osquery `uid` (on Windows only the RID).
    public var uid: Int64? {
        @inlinable get { flags.contains(.hasUID) ? uidBits : nil }
        @inlinable set { (uidBits, flags) = Self.pack(newValue, uidBits, flags, .hasUID) }
    }
    /// osquery `uid_signed` (macOS nobody is -2). Prefer this for comparisons.
    public var uidSigned: Int64? {
        @inlinable get { flags.contains(.hasUIDSigned) ? uidSignedBits : nil }
        @inlinable set { (uidSignedBits, flags) = Self.pack(newValue, uidSignedBits, flags, .hasUIDSigned) }
    }
    /// macOS `is_hidden = 1`.
    public var hidden: Bool {
        @inlinable get { flags.contains(.hidden) }
        @inlinable set { if newValue { flags.insert(.hidden) } else { flags.remove(.hidden) } }
    }
    /// JumpCloud System Insights `real_user`; false means a system account.
    public var realUser: Bool? {
        @inlinable get { flags.contains(.hasRealUser) ? flags.contains(.realUser) : nil }
        @inlinable set { flags = Self.pack(newValue, flags, .hasRealUser, .realUser) }
    }
    /// PowerShell `Enabled`.
    public var enabled: Bool? {
        @inlinable get { flags.contains(.hasEnabled) ? flags.contains(.enabled) : nil }
        @inlinable set { flags = Self.pack(newValue, flags, .hasEnabled, .enabled) }
    }

    @inlinable
    public init(name: String, uid: Int64? = nil, uidSigned: Int64? = nil, sid: String? = nil, home: String? = nil,
                shell: String? = nil, fullName: String? = nil, hidden: Bool = false, accountType: String? = nil,
                realUser: Bool? = nil, enabled: Bool? = nil) {
        self.name = name
        self.home = home
        self.shell = shell
        self.fullName = fullName
        self.windows = WindowsFacts.make(sid: sid, accountType: accountType)
        self.uid = uid
        self.uidSigned = uidSigned
        self.hidden = hidden
        self.realUser = realUser
        self.enabled = enabled
    }

    /// uid_signed when known, else uid.
    @inlinable public var effectiveUID: Int64? { uidSigned ?? uid }

    /// An absent number is stored as 0 with its flag clear, so equal accounts compare equal.
    @inlinable static func pack(_ value: Int64?, _ bits: Int64, _ flags: Flags, _ has: Flags) -> (Int64, Flags) {
        var flags = flags
        guard let value else {
            flags.remove(has)
            return (0, flags)
        }
        flags.insert(has)
        return (value, flags)
    }

    @inlinable static func pack(_ value: Bool?, _ flags: Flags, _ has: Flags, _ set: Flags) -> Flags {
        var flags = flags
        flags.remove([has, set])
        if let value { flags.insert(value ? [has, set] : has) }
        return flags
    }
}

/// A Windows account's SID and type, kept out of line (other accounts have neither).
@usableFromInline final class WindowsFacts: Sendable, Hashable {
    @usableFromInline let sid: String?
    @usableFromInline let accountType: String?

    @usableFromInline init(sid: String?, accountType: String?) {
        self.sid = sid
        self.accountType = accountType
    }

    @inlinable static func make(sid: String?, accountType: String?) -> WindowsFacts? {
        sid == nil && accountType == nil ? nil : WindowsFacts(sid: sid, accountType: accountType)
    }

    @usableFromInline static func == (a: WindowsFacts, b: WindowsFacts) -> Bool { a.sid == b.sid && a.accountType == b.accountType }

    @usableFromInline func hash(into hasher: inout Hasher) {
        hasher.combine(sid)
        hasher.combine(accountType)
    }
}

/// The local accounts device D said it had at time T.
public struct DeviceReport: Sendable, Hashable {
    /// Hostname or identifier the report carries (or the file name without extension).
    public var device: String
    public var platform: Platform
    public var reportedAt: UnixTime
    public var accounts: [LocalAccount]
    /// Where it came from, relative to the reports folder (for messages), e.g. "reports/mbp.json".
    public var source: String

    public init(device: String, platform: Platform, reportedAt: UnixTime, accounts: [LocalAccount], source: String) {
        self.device = device
        self.platform = platform
        self.reportedAt = reportedAt
        self.accounts = accounts
        self.source = source
    }
}

/// A problem with one input file or entry. When `device` is set, that device has no
/// valid report (R8: deferred, nothing bound or unbound there).
public struct InputProblem: Sendable, Hashable {
    public var source: String
    public var line: Int?
    public var device: String?
    public var message: String

    public init(source: String, line: Int? = nil, device: String? = nil, message: String) {
        self.source = source
        self.line = line
        self.device = device
        self.message = message
    }
}

/// A binding group as it is now in the directory.
public struct BindingGroup: Sendable, Hashable {
    /// The device name (the group's `cn`).
    public var device: String
    /// The group's DN as read.
    public var dn: String
    /// Every value of the member attribute, as stored.
    public var members: [String]
    /// Every value of the record attribute, as stored (parsed with `BindingLayout.parseRecord`).
    public var records: [String]

    public init(device: String, dn: String, members: [String], records: [String]) {
        self.device = device
        self.dn = dn
        self.members = members
        self.records = records
    }
}

/// Where and how bindings live in the directory.
///
/// Group: `cn=<device>,<base>`, object classes `objectClasses`, members in
/// `memberAttribute` (user DNs). The local account each binding was made with is kept in
/// `recordAttribute` of the same group, one value per binding: `recordPrefix + localName + ":" + userDN`
/// (a local name never contains ':' on any platform). With the project's schema the
/// record attribute is `takeoverBoundAccount` and the group class allows an empty member
/// list; with only standard schemas the record attribute is `description` with a prefix
/// and a placeholder member keeps `groupOfNames` valid when the last binding goes.
public struct BindingLayout: Sendable, Hashable {
    public var base: String
    public var objectClasses: [String]
    public var memberAttribute: String
    public var recordAttribute: String
    public var recordPrefix: String
    /// A DN stored as a member from creation on, so a MUST member class never becomes empty.
    /// nil with the project's schema (member is MAY there).
    public var placeholderMember: String?

    public init(base: String, objectClasses: [String], memberAttribute: String, recordAttribute: String,
                recordPrefix: String, placeholderMember: String?) {
        self.base = base
        self.objectClasses = objectClasses
        self.memberAttribute = memberAttribute
        self.recordAttribute = recordAttribute
        self.recordPrefix = recordPrefix
        self.placeholderMember = placeholderMember
    }

    /// With the project's schema (`schema/takeover-bridge.schema`).
    public static func projectSchema(base: String, memberAttribute: String = "member") -> BindingLayout {
        BindingLayout(base: base, objectClasses: ["top", "takeoverBindingGroup"], memberAttribute: memberAttribute,
                      recordAttribute: "takeoverBoundAccount", recordPrefix: "", placeholderMember: nil)
    }

    /// With only the standard schemas: groupOfNames (or groupOfUniqueNames) + description records.
    /// The placeholder member is the bindings base itself, which is never a user.
    public static func standardSchema(base: String, objectClass: String = "groupOfNames",
                                      memberAttribute: String = "member") -> BindingLayout {
        BindingLayout(base: base, objectClasses: ["top", objectClass], memberAttribute: memberAttribute,
                      recordAttribute: "description", recordPrefix: "takeover-bridge:", placeholderMember: base)
    }
}

extension BindingLayout {
    /// Active Directory's own `group` class (no schema change): `member` may be empty, so
    /// no placeholder; the records go in `url`, because AD's `description` and `info` are
    /// single-valued, while `url` (from `top`, so allowed on every object) is a
    /// multi-valued Unicode string without AD's 255-character cap of `extensionName` and
    /// no meaning to AD itself. The group gets AD's defaults: a global security group with
    /// a generated sAMAccountName.
    public static func activeDirectoryGroup(base: String) -> BindingLayout {
        BindingLayout(base: base, objectClasses: ["top", "group"], memberAttribute: "member",
                      recordAttribute: "url", recordPrefix: "takeover-bridge:", placeholderMember: nil)
    }
}

public enum LikelyMismatchPolicy: String, Sendable, Hashable, Codable {
    case hold, provision
}

public struct Policy: Sendable, Hashable {
    /// `[policy] protected_accounts`: extra names never taken over (compared folded).
    public var protectedAccounts: [String]
    public var minUIDLinux: Int64
    public var minUIDMacOS: Int64
    public var onLikelyMismatch: LikelyMismatchPolicy
    /// `[devices] active_within`, in seconds.
    public var activeWithin: Int64
    /// `[devices] max_clock_skew`, in seconds: a report dated further than this after `now`
    /// is an error for its file and is never used (R8).
    public var maxClockSkew: Int64

    public static let defaultMaxClockSkew: Int64 = 300

    public init(protectedAccounts: [String] = [], minUIDLinux: Int64 = 1000, minUIDMacOS: Int64 = 500,
                onLikelyMismatch: LikelyMismatchPolicy = .hold, activeWithin: Int64 = 7 * 86_400,
                maxClockSkew: Int64 = Policy.defaultMaxClockSkew) {
        self.protectedAccounts = protectedAccounts
        self.minUIDLinux = minUIDLinux
        self.minUIDMacOS = minUIDMacOS
        self.onLikelyMismatch = onLikelyMismatch
        self.activeWithin = activeWithin
        self.maxClockSkew = maxClockSkew
    }
}

/// Everything the planner needs.
public struct PlanInput: Sendable {
    public var users: [DirectoryUser]
    public var connections: [Connection]
    /// Every device entry read, connected users or not (one per entry, R15).
    public var knownDevices: [DeviceEntry]
    public var reports: [DeviceReport]
    /// Problems found while reading; those with a device make it "no valid report".
    public var problems: [InputProblem]
    public var bindingGroups: [BindingGroup]
    public var layout: BindingLayout
    public var policy: Policy
    public var now: UnixTime

    public init(users: [DirectoryUser], connections: [Connection], knownDevices: [DeviceEntry] = [],
                reports: [DeviceReport], problems: [InputProblem] = [], bindingGroups: [BindingGroup],
                layout: BindingLayout, policy: Policy, now: UnixTime) {
        self.users = users
        self.connections = connections
        self.knownDevices = knownDevices
        self.reports = reports
        self.problems = problems
        self.bindingGroups = bindingGroups
        self.layout = layout
        self.policy = policy
        self.now = now
    }
}

// MARK: - Output

public enum Action: String, Sendable, Hashable, Codable, CaseIterable {
    case takeover, provision, bound, unbind, deferred, conflict
}

/// One decision per (user, device) pair.
public struct Decision: Sendable, Hashable {
    public var user: String
    public var userDN: String
    public var device: String
    public var action: Action
    /// The local account taken over / provisioned / bound (as the device spells it for takeover).
    public var localAccount: String?
    /// For conflicts, the conflict kind; otherwise a short human reason.
    public var reason: String
    public var notices: [String]

    public init(user: String, userDN: String, device: String, action: Action, localAccount: String?,
                reason: String, notices: [String] = []) {
        self.user = user
        self.userDN = userDN
        self.device = device
        self.action = action
        self.localAccount = localAccount
        self.reason = reason
        self.notices = notices
    }
}

/// A conflict or a warning. `kind` is the kebab-case name from docs/product.md section 3.
public struct Finding: Sendable, Hashable {
    public var kind: String
    public var value: String
    public var users: [String]
    public var devices: [String]
    public var message: String
    public var fix: String

    public init(kind: String, value: String, users: [String] = [], devices: [String] = [], message: String, fix: String = "") {
        self.kind = kind
        self.value = value
        self.users = users
        self.devices = devices
        self.message = message
        self.fix = fix
    }
}

public enum ChangeOp: String, Sendable, Hashable, Codable {
    /// Create the binding group entry; `attributes` holds its full content.
    case addEntry = "add-entry"
    case addMember = "add-member"
    case deleteMember = "delete-member"
    case addRecord = "add-record"
    case deleteRecord = "delete-record"
}

/// One change to the directory. Only single values are added or deleted, never replaced.
/// Consecutive changes with the same `dn` and `subject` form one LDAP modify operation
/// (member + record together, atomically).
public struct Change: Sendable, Hashable {
    public var dn: String
    public var op: ChangeOp
    /// The attribute the values belong to (empty for addEntry).
    public var attribute: String
    public var values: [String]
    /// For addEntry: the entry's attributes in order.
    public var attributes: [EntryAttribute]
    /// The user DN this change is about (groups member+record modifications), or nil.
    public var subject: String?

    public init(dn: String, op: ChangeOp, attribute: String = "", values: [String] = [],
                attributes: [EntryAttribute] = [], subject: String? = nil) {
        self.dn = dn
        self.op = op
        self.attribute = attribute
        self.values = values
        self.attributes = attributes
        self.subject = subject
    }
}

public struct EntryAttribute: Sendable, Hashable {
    public var name: String
    public var values: [String]
    public init(name: String, values: [String]) {
        self.name = name
        self.values = values
    }
}

public struct Summary: Sendable, Hashable {
    public var users = 0
    public var devices = 0
    public var takeover = 0
    public var provision = 0
    public var bound = 0
    public var unbind = 0
    public var deferred = 0
    public var conflict = 0
    public var changes = 0
    public init() {}
}

public struct Plan: Sendable, Hashable {
    public var generatedAt: UnixTime
    public var summary: Summary
    /// Sorted by device (folded), then user, then action.
    public var decisions: [Decision]
    public var conflicts: [Finding]
    public var warnings: [Finding]
    public var errors: [InputProblem]
    /// In the order they must be applied.
    public var changes: [Change]
    /// Bindings (managed members) that exist in the directory now: the base of `max_unbind_percent`.
    public var currentBindings: Int = 0
    /// The binding layout the changes were computed for (set by `Planner.plan`); lets
    /// `applied(to:)` tell member values from record values in an `add-entry`.
    public var layout: BindingLayout?

    public init(generatedAt: UnixTime, summary: Summary, decisions: [Decision], conflicts: [Finding],
                warnings: [Finding], errors: [InputProblem], changes: [Change]) {
        self.generatedAt = generatedAt
        self.summary = summary
        self.decisions = decisions
        self.conflicts = conflicts
        self.warnings = warnings
        self.errors = errors
        self.changes = changes
    }

    public var hasChanges: Bool { !changes.isEmpty }
}
