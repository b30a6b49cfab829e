import LDAPSyntax
import TakeoverCore
import TestSupport

/// Seeded worlds that exercise every rule of docs/product.md section 3, for comparing the
/// planner with `ReferencePlanner`: names equal but for case, Unicode folding collisions
/// (ß/SS, the Kelvin sign, the fi ligature, final sigma, precomposed and decomposed
/// accents), duplicate uidNumbers and entries, protected and system accounts of every
/// platform, likely mismatches, stale, future and missing reports, device entries with
/// identical or fold-equal names told apart by DN (R15), bindings that stay, go, are held,
/// adopted or half-written, users renamed or moved with a stable id, and the limits of
/// `active_within` and `max_clock_skew` to the second.
enum RichWorld {
    static let people = "ou=people,dc=example,dc=com"
    static let bindingsBase = "ou=bindings,dc=example,dc=com"

    static let names = [
        "alice", "Alice", "ALICE", "bob", "carol", "dave", "john", "John", "jdoe", "hmurphy",
        "straße", "STRASSE", "Strasse", "\u{212A}im", "kim", "\u{FB01}ona", "fiona", "caf\u{E9}", "cafe\u{301}",
        "οδυσσευς", "ΟΔΥΣΣΕΥΣ", "\u{AC00}", "\u{1100}\u{1161}", "root", "_svc", "nobody", "Administrator", "Guest", "daemon", "ops",
        "x y", "averyveryverylongname1", "a:b", "-dash", "1234", "ok.name", "trail.",
    ]
    static let displays = ["Ann", "Bob B", "Carol C", "", "jane q. doe", "STRASSE"]
    static let deviceNames = [
        "pc-1", "PC-1", "mbp", "srv", "win-7", "lab,dc=evil", "Bob's MacBook Pro", "kiosk", "straße", "STRASSE",
        "lab1", "lab1", "trail", "trail ", "caf\u{E9}", "cafe\u{301}",
    ]

    struct Entry { var name: String; var dn: String? }

    static func make(seed: UInt64) -> PlanInput {
        var rng = SplitMix64(seed: seed)
        let now = W.now
        let layout: BindingLayout
        switch rng.int(3) {
        case 0: layout = .standardSchema(base: bindingsBase)
        case 1: layout = .projectSchema(base: bindingsBase)
        default: layout = .activeDirectoryGroup(base: bindingsBase)
        }

        // Users.
        var users: [DirectoryUser] = []
        var oldDNs: [Int: String] = [:]   // moved users: index -> the DN they had before
        for i in 0..<(2 + rng.int(13)) {
            let base = rng.pick(names)
            let name = rng.chance(55) ? base + String(i) : base
            var dn = "uid=\(name),ou=\(rng.chance(80) ? "people" : "staff"),dc=example,dc=com"
            if rng.chance(4), let other = users.last { dn = other.dn.uppercased() }   // the same entry read twice
            let field: String? = rng.chance(35) ? (rng.chance(10) ? "" : rng.pick(names)) : nil
            var id: String? = rng.chance(60) ? (rng.chance(20) ? "ID-\(i)" : "id-\(i)") : nil
            if rng.chance(3) { id = "id-shared" }
            let all: [String]? = rng.chance(6) ? [name, "alias\(i)"] : (rng.chance(3) ? [name, name.uppercased()] : nil)
            users.append(DirectoryUser(dn: dn, username: name, allUsernames: all, localAccountField: field,
                                       uidNumber: rng.chance(75) ? Int64(1000 + rng.int(10)) : nil,
                                       displayName: rng.chance(40) ? rng.pick(displays) : nil, stableID: id))
            if id != nil && rng.chance(30) { oldDNs[i] = "uid=old\(i)-\(name),ou=\(rng.chance(50) ? "old" : "people"),dc=example,dc=com" }
        }

        // Device entries (R15): a spelling is either always read with a DN or never; with
        // DNs, the same name may be several entries in different OUs.
        var withDN: [String: Bool] = [:]
        var entries: [Entry] = []
        for _ in 0..<(1 + rng.int(6)) {
            let name = rng.pick(deviceNames)
            let usesDN = withDN[name] ?? rng.chance(80)
            withDN[name] = usesDN
            let dn = usesDN ? "cn=\(name.replacingOccurrences(",", with: "\\,")),ou=\(rng.pick(["devices", "lab", "branch"])),dc=example,dc=com" : nil
            entries.append(Entry(name: name, dn: dn))
        }
        var connections: [Connection] = []
        var connectedTo: [String: [Int]] = [:]   // device spelling -> users connected by DN or name
        for e in entries {
            for _ in 0..<rng.int(7) {
                let k = rng.int(users.count)
                let u = users[k]
                connectedTo[e.name, default: []].append(k)
                let member: MemberReference
                switch rng.int(12) {
                case 0: member = .name(rng.chance(50) ? u.username.uppercased() : "ghost")
                case 1: member = .dn(u.dn.uppercased().replacingOccurrences(",", with: ", "))
                case 2: member = .dn("uid=ghost\(rng.int(3)),ou=people,dc=example,dc=com")
                case 3: member = oldDNs[k].map { .dn($0) } ?? .dn(u.dn)
                default: member = rng.chance(30) ? .name(u.username) : .dn(u.dn)
                }
                connections.append(Connection(device: e.name, member: member, sourceDN: e.dn))
            }
        }
        var known = entries.filter { _ in rng.chance(50) }.map { DeviceEntry(name: $0.name, dn: $0.dn) }
        if rng.chance(30) { known.append(DeviceEntry(name: "idle-box", dn: "cn=idle-box,ou=devices,dc=example,dc=com")) }

        // Policy, with the limits reports are judged by.
        let activeWithin = rng.pick([7 * W.day, 2 * W.day])
        let skew = rng.pick([Policy.defaultMaxClockSkew, 0, W.hour])
        let policy = Policy(protectedAccounts: rng.chance(30) ? ["ops", "Kiosk"] : [], minUIDLinux: rng.pick([1000, 500]),
                            onLikelyMismatch: rng.chance(30) ? .provision : .hold, activeWithin: activeWithin, maxClockSkew: skew)

        // Reports: active, stale, at the limits, from the future; every platform's accounts.
        var spellings = entries.map(\.name)
        if rng.chance(25) { spellings.append("orphan-\(rng.int(2))") }
        var reports: [DeviceReport] = []
        var problems: [InputProblem] = []
        for d in Set(spellings).sorted() where rng.chance(85) {
            for _ in 0..<(1 + (rng.chance(25) ? 1 : 0)) {
                let platform = rng.pick(Platform.allCases)
                var accounts: [LocalAccount] = []
                for k in 0..<rng.int(8) {
                    // Mostly the local names of the users connected there, so rules about a pair apply.
                    let here = connectedTo[d] ?? []
                    var name = !here.isEmpty && rng.chance(50) ? users[rng.pick(here)].localName
                        : (rng.chance(40) ? rng.pick(users).localName : rng.pick(names))
                    if rng.chance(15) { name = name.uppercased() }
                    let uid = Int64(rng.pick([0, 1, 201, 248, 499, 500, 501, 999, 1000, 1001, 1002, 1003, 1005, 1009, 65534, -2]))
                    var sid: String?
                    if platform == .windows || (platform == .unknown && rng.chance(30)) {
                        sid = rng.chance(10) ? rng.pick(["S-1-5-18", "S-1-12-1-5-6", ""])
                            : "S-1-5-21-1-2-3-\(rng.pick([500, 501, 503, 504, 1001, 1002 + k]))"
                    }
                    let homeName = rng.chance(50) ? rng.pick(users).username : rng.pick(names)
                    accounts.append(LocalAccount(
                        name: name, uid: rng.chance(90) ? uid : nil, uidSigned: rng.chance(70) ? uid : nil, sid: sid,
                        home: rng.chance(70) ? (platform == .windows ? "C:\\Users\\\(homeName)" : "/home/\(homeName)/") : nil,
                        shell: rng.chance(20) ? rng.pick(["/usr/sbin/nologin", "/bin/false", "nologin"]) : "/bin/bash",
                        fullName: rng.chance(30) ? rng.pick(displays) : nil, hidden: rng.chance(5),
                        accountType: platform == .windows && rng.chance(15) ? rng.pick(["special", "roaming", "local"]) : nil,
                        realUser: rng.chance(5) ? false : nil))
                    if rng.chance(8) { accounts.append(LocalAccount(name: name.lowercased() == name ? name.uppercased() : name.lowercased(),
                                                                    uid: 1000 + Int64(k), uidSigned: nil)) }
                }
                let age = rng.pick([W.hour, 3 * W.day, 8 * W.day, activeWithin, activeWithin + 1, -skew, -skew - 1, -2 * W.hour])
                    + (rng.chance(50) ? Int64(rng.int(600)) : 0)
                reports.append(DeviceReport(device: rng.chance(20) ? d.uppercased() : d, platform: platform, reportedAt: now - age,
                                            accounts: accounts, source: "reports/\(d)-\(reports.count).json"))
            }
        }
        for d in Set(spellings).sorted() where rng.chance(8) {
            problems.append(InputProblem(source: "reports/\(d).bad", line: rng.int(9), device: d, message: "bad JSON"))
        }
        if rng.chance(20) { problems.append(InputProblem(source: "reports/README", message: "not a report")) }

        // Binding groups: managed bindings, hand-made members, half-written records, users
        // gone from the directory or moved (records with a stable id), duplicate groups.
        var groups: [BindingGroup] = []
        var groupDNs = Set<String>()
        var groupSpellings = Set(entries.map(\.name)).sorted()
        if rng.chance(20) { groupSpellings.append("old-pc") }
        for d in groupSpellings where rng.chance(70) {
            let spelling = rng.chance(15) ? d.uppercased() : d
            var members = layout.placeholderMember.map { [$0] } ?? []
            var records: [String] = []
            for b in 0..<rng.int(6) {
                let k = rng.int(users.count)
                let u = users[k]
                // Mostly the user's own local name; else another user's (R10, account-already-bound) or any.
                let local = rng.chance(70) ? u.localName : (rng.chance(50) ? rng.pick(users).localName : rng.pick(names))
                let id = rng.chance(50) ? u.stableID : nil
                switch rng.int(10) {
                case 0...5:
                    members.append(rng.chance(15) ? u.dn.uppercased() : u.dn)
                    records.append(layout.recordValue(localName: local, userDN: u.dn, stableID: id))
                case 6:
                    members.append(u.dn)
                case 7:
                    records.append(layout.recordValue(localName: local, userDN: u.dn, stableID: id))
                case 8:
                    let gone = "uid=gone\(b),ou=people,dc=example,dc=com"
                    if rng.chance(80) { members.append(gone) }
                    if rng.chance(80) { records.append(layout.recordValue(localName: "gone\(b)", userDN: gone)) }
                default:
                    guard let old = oldDNs[k] else { continue }
                    members.append(old)
                    records.append(layout.recordValue(localName: local, userDN: old, stableID: u.stableID,
                                                      formerDNs: rng.chance(30) ? ["uid=older\(k),ou=old,dc=example,dc=com"] : []))
                }
            }
            if rng.chance(10) { records.append("Laptop of the design team") }
            // A server returns an entry once: no two groups with canonically equal DNs.
            guard groupDNs.insert(layout.groupDN(device: spelling)).inserted else { continue }
            groups.append(BindingGroup(device: spelling, dn: layout.groupDN(device: spelling), members: members, records: records))
            let oldDN = "cn=\(d.replacingOccurrences(",", with: "\\,")),ou=old,\(bindingsBase)"
            if rng.chance(8) && groupDNs.insert(oldDN).inserted {
                groups.append(BindingGroup(device: d, dn: oldDN, members: members, records: records))
            }
        }
        return PlanInput(users: users, connections: connections, knownDevices: known, reports: reports, problems: problems,
                         bindingGroups: groups, layout: layout, policy: policy, now: now)
    }
}
