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
        if !policyNames.isEmpty && policyNames.contains(folded) {
            return "listed in [policy] protected_accounts"
        }
        if account.realUser == false {
            return "not a real user (JumpCloud System Insights real_user = false)"
        }
        switch platform {
        case .linux:
            return linux(account, folded, policy.minUIDLinux)
        case .macos:
            return macos(account, folded, policy.minUIDMacOS)
        case .windows:
            return windows(account, folded)
        case .unknown:
            let minUID = min(policy.minUIDLinux, policy.minUIDMacOS)
            return windows(account, folded, nameRuleOnlyWithoutFacts: true)
                ?? macos(account, folded, minUID)
                ?? linux(account, folded, minUID)
        }
    }

    private static func linux(_ a: LocalAccount, _ folded: String, _ minUID: Int64) -> String? {
        if let uid = a.effectiveUID {
            if uid == 65534 || uid == 4_294_967_294 || uid == -2 { return "nobody (uid \(uid))" }
            if uid < minUID { return "uid \(uid) below \(minUID)" }
        }
        if folded == "nobody" { return "the nobody account" }
        if let shell = a.shell, let why = noLoginShell(shell) { return why }
        if a.effectiveUID == nil && folded == "root" { return "the root account" }
        return nil
    }

    private static func macos(_ a: LocalAccount, _ folded: String, _ minUID: Int64) -> String? {
        if let uid = a.effectiveUID, uid < minUID { return "uid \(uid) below \(minUID)" }
        if a.name.utf8.first == UInt8(ascii: "_") { return "macOS service account (name starts with '_')" }
        if a.hidden { return "macOS hidden account" }
        if let shell = a.shell, let why = noLoginShell(shell) { return why }
        if folded == "nobody" { return "the nobody account" }
        if a.effectiveUID == nil, ["root", "daemon", "guest"].contains(folded) {
            return "macOS system account '\(a.name)'"
        }
        return nil
    }

    private static let builtinRIDs: [Int64: String] = [
        500: "Administrator", 501: "Guest", 502: "krbtgt", 503: "DefaultAccount", 504: "WDAGUtilityAccount",
    ]
    private static let builtinNames: Set<String> = [
        "administrator", "guest", "krbtgt", "defaultaccount", "wdagutilityaccount", "system",
    ]

    private static func windows(_ a: LocalAccount, _ folded: String, nameRuleOnlyWithoutFacts: Bool = false) -> String? {
        var rid: Int64?
        if let sid = a.sid, !sid.isEmpty {
            let upper = sid.uppercased()
            if upper.hasPrefix("S-1-12-1-") { return "Entra ID account (SID \(sid))" }
            if !upper.hasPrefix("S-1-5-21-") { return "Windows well-known SID \(sid)" }
            if let last = upper.split(separator: "-").last { rid = Int64(last) }
        } else if !nameRuleOnlyWithoutFacts {
            rid = a.uid
        }
        if let rid, let name = builtinRIDs[rid] { return "Windows built-in RID \(rid) (\(name))" }
        if let type = a.accountType?.lowercased(), type == "special" || type == "roaming" {
            return "Windows account type '\(type)'"
        }
        if (a.sid ?? "").isEmpty && (nameRuleOnlyWithoutFacts || a.uid == nil) && builtinNames.contains(folded) {
            return "Windows built-in account '\(a.name)'"
        }
        return nil
    }

    private static func noLoginShell(_ shell: String) -> String? {
        let bytes = shell.utf8
        var start = bytes.endIndex
        while start > bytes.startIndex, bytes[bytes.index(before: start)] != UInt8(ascii: "/") {
            start = bytes.index(before: start)
        }
        let last = bytes[start...]
        if last.elementsEqual("nologin".utf8) || last.elementsEqual("false".utf8) { return "login shell \(shell)" }
        return nil
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

    private static func windows(_ name: String) -> String? {
        if name.utf16.count > 20 { return "longer than 20 characters (Windows SAM limit)" }
        for s in name.unicodeScalars {
            if windowsForbidden.contains(s) { return "contains '\(s)', not allowed in Windows account names" }
            if s.value < 0x20 || s.value == 0x7F { return "contains the control character \(describe(s))" }
        }
        if name.hasSuffix(".") { return "ends with a period" }
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
