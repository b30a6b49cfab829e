// R5: accounts that are never taken over (docs/reference.md "Protected accounts").

import LDAPSyntax

public enum ProtectedAccounts {
    /// Why `account` must never be taken over on `platform`, or nil when it may be.
    ///
    /// - Linux: uid (uid_signed when known) below `policy.minUIDLinux`; `nobody` or uid
    ///   65534; a login shell whose last component is `nologin` or `false`; `root` by name
    ///   when the report has no uid.
    /// - macOS: uid below `policy.minUIDMacOS` (root, daemon, nobody -2, Guest 201); names
    ///   starting with `_`; hidden accounts; nologin/false shells; root, daemon, nobody,
    ///   Guest by name when the report has no uid.
    /// - Windows: a SID not under `S-1-5-21-` (well-known SIDs such as S-1-5-18, Entra ID
    ///   `S-1-12-1-`); RIDs 500-504 (from the SID, else from the uid); osquery type
    ///   `special` or `roaming`; the built-in names when the report has neither SID nor uid.
    /// - Unknown platform: every rule above that the facts allow, with the lower (macOS)
    ///   uid bound, because a wrong "protected" only holds a takeover back.
    /// - Everywhere: `[policy] protected_accounts` (compared folded) and JumpCloud System
    ///   Insights `real_user = false`.
    public static func reason(for account: LocalAccount, platform: Platform, policy: Policy) -> String? {
        let folded = Folding.fold(account.name)
        return reason(for: account, folded: folded, platform: platform, policy: policy,
                      policyNames: policyNames(policy))
    }

    /// The policy list folded once, for callers that test many accounts.
    static func policyNames(_ policy: Policy) -> Set<String> {
        Set(policy.protectedAccounts.map(Folding.fold))
    }

    static func reason(for account: LocalAccount, folded: String, platform: Platform, policy: Policy,
                       policyNames: Set<String>) -> String? {
        var name = LazyFold(folded: folded)
        return withUnsafePointer(to: account) {
            protection(for: $0, folded: &name, platform: platform, policy: policy, policyNames: policyNames)?.text
        }
    }

    /// Why the account is protected, as data (`Protection.text` is the reason): no text is
    /// made, the name is folded only by a rule that compares it, and the account is read
    /// in place (only the fields a rule looks at), so testing every account of a device
    /// allocates and copies nothing.
    static func protection(for account: UnsafePointer<LocalAccount>, folded: inout LazyFold, platform: Platform,
                           policy: Policy, policyNames: Set<String>) -> Protection? {
        if !policyNames.isEmpty && policyNames.contains(folded.value) {
            return .listed
        }
        if account.pointee.realUser == false {
            return .notRealUser
        }
        switch platform {
        case .linux:
            return linux(account, &folded, policy.minUIDLinux)
        case .macos:
            return macos(account, &folded, policy.minUIDMacOS)
        case .windows:
            return windows(account, &folded)
        case .unknown:
            let minUID = min(policy.minUIDLinux, policy.minUIDMacOS)
            return windows(account, &folded, nameRuleOnlyWithoutFacts: true)
                ?? macos(account, &folded, minUID)
                ?? linux(account, &folded, minUID)
        }
    }

    /// What made an account protected; `text` says it.
    enum Protection: Equatable {
        case listed
        case notRealUser
        case nobodyUID(Int64)
        case uidBelow(Int64, minimum: Int64)
        case nobodyName
        case noLoginShell(String)
        case rootName
        case macOSService
        case macOSHidden
        case macOSSystem(name: String)
        case entraID(sid: String)
        case wellKnownSID(String)
        case builtinRID(Int64, name: String)
        /// The osquery type as reported (`text` shows it lower-cased).
        case accountType(String)
        case builtinName(String)

        var text: String {
            switch self {
            case .listed: return "listed in [policy] protected_accounts"
            case .notRealUser: return "not a real user (JumpCloud System Insights real_user = false)"
            case .nobodyUID(let uid): return "nobody (uid \(uid))"
            case .uidBelow(let uid, let minimum): return "uid \(uid) below \(minimum)"
            case .nobodyName: return "the nobody account"
            case .noLoginShell(let shell): return "login shell \(shell)"
            case .rootName: return "the root account"
            case .macOSService: return "macOS service account (name starts with '_')"
            case .macOSHidden: return "macOS hidden account"
            case .macOSSystem(let name): return "macOS system account '\(name)'"
            case .entraID(let sid): return "Entra ID account (SID \(sid))"
            case .wellKnownSID(let sid): return "Windows well-known SID \(sid)"
            case .builtinRID(let rid, let name): return "Windows built-in RID \(rid) (\(name))"
            case .accountType(let type): return "Windows account type '\(type.lowercased())'"
            case .builtinName(let name): return "Windows built-in account '\(name)'"
            }
        }
    }

    /// An account name's fold, made on first use.
    struct LazyFold {
        private let name: String
        private var folded: String?

        init(name: String) { self.name = name }
        init(folded: String) {
            self.name = folded
            self.folded = folded
        }

        var value: String {
            mutating get {
                if let folded { return folded }
                let f = Folding.fold(name)
                folded = f
                return f
            }
        }
    }

    private static func linux(_ a: UnsafePointer<LocalAccount>, _ folded: inout LazyFold, _ minUID: Int64) -> Protection? {
        if let uid = a.pointee.effectiveUID {
            if uid == 65534 || uid == 4_294_967_294 || uid == -2 { return .nobodyUID(uid) }
            if uid < minUID { return .uidBelow(uid, minimum: minUID) }
        }
        if folded.value == "nobody" { return .nobodyName }
        if let shell = a.pointee.shell, isNoLoginShell(shell) { return .noLoginShell(shell) }
        if a.pointee.effectiveUID == nil && folded.value == "root" { return .rootName }
        return nil
    }

    private static func macos(_ a: UnsafePointer<LocalAccount>, _ folded: inout LazyFold, _ minUID: Int64) -> Protection? {
        if let uid = a.pointee.effectiveUID, uid < minUID { return .uidBelow(uid, minimum: minUID) }
        if a.pointee.name.utf8.first == UInt8(ascii: "_") { return .macOSService }
        if a.pointee.hidden { return .macOSHidden }
        if let shell = a.pointee.shell, isNoLoginShell(shell) { return .noLoginShell(shell) }
        if folded.value == "nobody" { return .nobodyName }
        if a.pointee.effectiveUID == nil, ["root", "daemon", "guest"].contains(folded.value) {
            return .macOSSystem(name: a.pointee.name)
        }
        return nil
    }

    private static let builtinRIDs: [Int64: String] = [
        500: "Administrator", 501: "Guest", 502: "krbtgt", 503: "DefaultAccount", 504: "WDAGUtilityAccount",
    ]
    private static let builtinNames: Set<String> = [
        "administrator", "guest", "krbtgt", "defaultaccount", "wdagutilityaccount", "system",
    ]

    private static func windows(_ a: UnsafePointer<LocalAccount>, _ folded: inout LazyFold,
                                nameRuleOnlyWithoutFacts: Bool = false) -> Protection? {
        var rid: Int64?
        if let sid = a.pointee.sid, !sid.isEmpty {
            switch sidKind(sid) {
            case .entraID: return .entraID(sid: sid)
            case .wellKnown: return .wellKnownSID(sid)
            case .domainOrLocal(let last): rid = last
            }
        } else if !nameRuleOnlyWithoutFacts {
            rid = a.pointee.uid
        }
        if let rid, rid >= 500 && rid <= 504, let name = builtinRIDs[rid] { return .builtinRID(rid, name: name) }
        if let type = a.pointee.accountType, isSpecialOrRoaming(type) {
            return .accountType(type)
        }
        if (a.pointee.sid ?? "").isEmpty && (nameRuleOnlyWithoutFacts || a.pointee.uid == nil) && builtinNames.contains(folded.value) {
            return .builtinName(a.pointee.name)
        }
        return nil
    }

    enum SIDKind: Equatable {
        /// `S-1-12-1-` (Entra ID).
        case entraID
        /// Not under `S-1-5-21-`.
        case wellKnown
        /// Under `S-1-5-21-`, with the number after the last `-` (nil when it is not one).
        case domainOrLocal(rid: Int64?)
    }

    /// Which kind of SID `sid` is, compared upper-cased. An ASCII SID is read in place;
    /// any other takes `sidKindGeneral`, which gives every SID the same answer.
    static func sidKind(_ sid: String) -> SIDKind {
        let bytes = sid.utf8
        guard bytes.allSatisfy({ $0 < 0x80 }) else { return sidKindGeneral(sid) }
        func upperHasPrefix(_ prefix: String) -> Bool {
            var i = bytes.startIndex
            for p in prefix.utf8 {
                guard i != bytes.endIndex else { return false }
                let b = bytes[i]
                if ((b &- 0x61 < 26) ? b & 0xDF : b) != p { return false }
                i = bytes.index(after: i)
            }
            return true
        }
        if upperHasPrefix("S-1-12-1-") { return .entraID }
        if !upperHasPrefix("S-1-5-21-") { return .wellKnown }
        // The last run without '-' (the prefix guarantees there is one).
        let dash = UInt8(ascii: "-")
        var end = bytes.endIndex
        while end > bytes.startIndex, bytes[bytes.index(before: end)] == dash { end = bytes.index(before: end) }
        var start = end
        while start > bytes.startIndex, bytes[bytes.index(before: start)] != dash { start = bytes.index(before: start) }
        return .domainOrLocal(rid: Int64(Substring(bytes[start..<end])))
    }

    /// `sidKind` for any string: upper-cased, split at '-'.
    static func sidKindGeneral(_ sid: String) -> SIDKind {
        let upper = sid.uppercased()
        if upper.hasPrefix("S-1-12-1-") { return .entraID }
        if !upper.hasPrefix("S-1-5-21-") { return .wellKnown }
        return .domainOrLocal(rid: upper.split(separator: "-").last.flatMap { Int64($0) })
    }

    /// osquery type `special` or `roaming`, in any case. ASCII is compared in place; any
    /// other type is lower-cased first (`isSpecialOrRoamingGeneral`, the same answer).
    static func isSpecialOrRoaming(_ type: String) -> Bool {
        let bytes = type.utf8
        guard bytes.allSatisfy({ $0 < 0x80 }) else { return isSpecialOrRoamingGeneral(type) }
        let lower = bytes.lazy.map { $0 &- 0x41 < 26 ? $0 | 0x20 : $0 }
        return lower.elementsEqual("special".utf8) || lower.elementsEqual("roaming".utf8)
    }

    static func isSpecialOrRoamingGeneral(_ type: String) -> Bool {
        let lower = type.lowercased()
        return lower == "special" || lower == "roaming"
    }

    private static func isNoLoginShell(_ shell: String) -> Bool {
        let bytes = shell.utf8
        var start = bytes.endIndex
        while start > bytes.startIndex, bytes[bytes.index(before: start)] != UInt8(ascii: "/") {
            start = bytes.index(before: start)
        }
        let last = bytes[start...]
        return last.elementsEqual("nologin".utf8) || last.elementsEqual("false".utf8)
    }
}

// R13: valid account names (docs/reference.md "Account names").
public enum AccountNames {
    /// nil when `name` is a valid new account name on `platform`, else why not.
    ///
    /// - Linux: `[A-Za-z0-9_.][A-Za-z0-9_.-]*` with an optional trailing `$`, not all
    ///   digits, not `.` or `..`, at most 255 bytes (shadow's rule, POSIX portable characters).
    /// - macOS: `A-Z a-z 0-9 . _ -`, not starting with `-`, at most 255 characters.
    /// - Windows: at most 20 characters; none of `" / \ [ ] : | < > + = ; ? * ,`; no control
    ///   characters; no trailing period.
    /// - Unknown: valid on all three (the strictest), so a provision never fails later.
    public static func validate(_ name: String, platform: Platform) -> String? {
        if name.isEmpty { return "the name is empty" }
        switch platform {
        case .linux: return linux(name)
        case .macos: return macos(name)
        case .windows: return windows(name)
        case .unknown:
            if let why = linux(name) { return why + " (Linux)" }
            if let why = macos(name) { return why + " (macOS)" }
            if let why = windows(name) { return why + " (Windows)" }
            return nil
        }
    }

    /// R13 for an account a device reported (a takeover): as `validate`, except that on a
    /// report of unknown platform the name only has to be valid on one of the three (it
    /// exists on some device), not on all.
    public static func validateExisting(_ name: String, platform: Platform) -> String? {
        guard platform == .unknown else { return validate(name, platform: platform) }
        if name.isEmpty { return "the name is empty" }
        guard let l = linux(name), let m = macos(name), let w = windows(name) else { return nil }
        return "\(l) (Linux); \(m) (macOS); \(w) (Windows)"
    }

    private static func isPortable(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
            || b == UInt8(ascii: ".") || b == UInt8(ascii: "_") || b == UInt8(ascii: "-")
    }

    private static func firstBad(_ name: String, allowDollarAtEnd: Bool) -> String? {
        if allPortable(name, allowDollarAtEnd: allowDollarAtEnd) { return nil }
        return firstBadScalar(name, allowDollarAtEnd: allowDollarAtEnd)
    }

    /// `firstBad` scalar by scalar, for any name.
    static func firstBadScalar(_ name: String, allowDollarAtEnd: Bool) -> String? {
        let scalars = name.unicodeScalars
        var index = scalars.startIndex
        while index != scalars.endIndex {
            let s = scalars[index]
            let next = scalars.index(after: index)
            let ok = (s.isASCII && isPortable(UInt8(s.value))) || (allowDollarAtEnd && s == "$" && next == scalars.endIndex)
            if !ok { return "contains \(describe(s)), not a portable character (A-Z a-z 0-9 . _ -)" }
            index = next
        }
        return nil
    }

    /// The usual answer of `firstBad`, read as bytes: every byte portable (a '$' last when
    /// allowed). False when any is not, non-ASCII included; `firstBad` then says which.
    static func allPortable(_ name: String, allowDollarAtEnd: Bool) -> Bool {
        let last = name.utf8.count - 1
        for (i, b) in name.utf8.enumerated() where !isPortable(b) {
            if !(allowDollarAtEnd && b == UInt8(ascii: "$") && i == last) { return false }
        }
        return true
    }

    private static func describe(_ s: Unicode.Scalar) -> String {
        if s.value <= 0x20 || s.value == 0x7F {
            let hex = String(s.value, radix: 16, uppercase: true)
            return "U+" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex + (s == " " ? " (space)" : "")
        }
        return "'\(s)'"
    }

    private static func linux(_ name: String) -> String? {
        if name.utf8.count > 255 { return "longer than 255 bytes" }
        if name == "." || name == ".." { return "'\(name)' is not a name" }
        if name.utf8.first == UInt8(ascii: "-") { return "starts with '-'" }
        if let why = firstBad(name, allowDollarAtEnd: true) { return why }
        if name.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) { return "all digits" }
        return nil
    }

    private static func macos(_ name: String) -> String? {
        if name.unicodeScalars.count > 255 { return "longer than 255 characters" }
        if name.utf8.first == UInt8(ascii: "-") { return "starts with '-'" }
        return firstBad(name, allowDollarAtEnd: false)
    }

    private static let windowsForbidden: Set<Unicode.Scalar> = ["\"", "/", "\\", "[", "]", ":", "|", "<", ">", "+", "=", ";", "?", "*", ","]
    /// `windowsForbidden` (all ASCII) as a bit per byte value.
    private static let windowsForbiddenBits: (low: UInt64, high: UInt64) = windowsForbidden.reduce((0, 0)) { bits, s in
        s.value < 64 ? (bits.low | 1 << UInt64(s.value), bits.high) : (bits.low, bits.high | 1 << UInt64(s.value - 64))
    }

    /// Printable ASCII without a character of `windowsForbidden`: the usual name, read as
    /// bytes. False for anything else (non-ASCII too); the scalar loop then decides.
    static func windowsPlain(_ name: String) -> Bool {
        let bits = windowsForbiddenBits
        return name.utf8.allSatisfy { b in
            guard b >= 0x20 && b < 0x7F else { return false }
            return (b < 64 ? bits.low >> UInt64(b) : bits.high >> UInt64(b - 64)) & 1 == 0
        }
    }

    private static func windows(_ name: String) -> String? {
        if name.utf16.count > 20 { return "longer than 20 characters (Windows SAM limit)" }
        if !windowsPlain(name), let why = windowsBadScalar(name) { return why }
        if name.hasSuffix(".") { return "ends with a period" }
        return nil
    }

    /// The first character not allowed in a Windows account name, scalar by scalar.
    static func windowsBadScalar(_ name: String) -> String? {
        for s in name.unicodeScalars {
            if windowsForbidden.contains(s) { return "contains '\(s)', not allowed in Windows account names" }
            if s.value < 0x20 || s.value == 0x7F { return "contains the control character \(describe(s))" }
        }
        return nil
    }

    /// A suggestion for the admin: the name with invalid characters dropped, cut to the limit.
    static func suggestion(for name: String, platform: Platform) -> String? {
        var kept = String(String.UnicodeScalarView(name.unicodeScalars.filter { $0.isASCII && isPortable(UInt8($0.value)) }))
        while kept.hasPrefix("-") || kept.hasPrefix(".") { kept.removeFirst() }
        if platform == .windows || platform == .unknown, kept.count > 20 { kept = String(kept.prefix(20)) }
        while kept.hasSuffix(".") { kept.removeLast() }
        if kept.isEmpty || validate(kept, platform: platform) != nil { return nil }
        return Folding.fold(kept)
    }
}
