import TakeoverCore

/// Small builders for planner inputs, so each test states only what matters to it.
enum W {
    static let now: UnixTime = 1_795_939_200 // 2026-11-29T08:00:00Z
    static let people = "ou=people,dc=example,dc=com"
    static let bindingsBase = "ou=bindings,dc=example,dc=com"
    static let layout = BindingLayout.standardSchema(base: bindingsBase)
    static let hour: Int64 = 3600
    static let day: Int64 = 86_400

    static func dn(_ name: String) -> String { "uid=\(name),\(people)" }

    static func user(_ name: String, field: String? = nil, uid: Int64? = nil, display: String? = nil,
                     all: [String]? = nil) -> DirectoryUser {
        DirectoryUser(dn: dn(name), username: name, allUsernames: all, localAccountField: field, uidNumber: uid,
                      displayName: display)
    }

    static func connect(_ device: String, _ names: String...) -> [Connection] {
        names.map { Connection(device: device, member: .dn(dn($0)), sourceDN: deviceDN(device)) }
    }

    /// The DN `connect` gives the entry of `device` (not escaped: test names need none).
    static func deviceDN(_ device: String) -> String { "cn=\(device),ou=devices,dc=example,dc=com" }

    /// Connections from the device entry `entry` (a DN of the caller's choice) named `device`.
    static func connect(_ device: String, entry: String, _ names: String...) -> [Connection] {
        names.map { Connection(device: device, member: .dn(dn($0)), sourceDN: entry) }
    }

    static func account(_ name: String, uid: Int64? = nil, home: String? = nil, shell: String? = nil,
                        fullName: String? = nil, sid: String? = nil, hidden: Bool = false, type: String? = nil) -> LocalAccount {
        LocalAccount(name: name, uid: uid, uidSigned: uid, sid: sid, home: home, shell: shell, fullName: fullName,
                     hidden: hidden, accountType: type)
    }

    /// A Linux account with a normal uid and shell.
    static func person(_ name: String, uid: Int64 = 1001) -> LocalAccount {
        account(name, uid: uid, home: "/home/\(name)", shell: "/bin/bash")
    }

    static func report(_ device: String, _ platform: Platform, age: Int64 = hour,
                       _ accounts: [LocalAccount]) -> DeviceReport {
        DeviceReport(device: device, platform: platform, reportedAt: now - age, accounts: accounts,
                     source: "reports/\(device).json")
    }

    static func report(_ device: String, age: Int64 = hour, _ accounts: [LocalAccount]) -> DeviceReport {
        report(device, .linux, age: age, accounts)
    }

    /// A binding group holding managed bindings (member + record) for `bound` (name, local name).
    static func group(_ device: String, bound: [(String, String)] = [], members: [String] = [],
                      records: [String] = []) -> BindingGroup {
        var m = [bindingsBase]
        var r: [String] = []
        for (name, local) in bound {
            m.append(dn(name))
            r.append(layout.recordValue(localName: local, userDN: dn(name)))
        }
        return BindingGroup(device: device, dn: layout.groupDN(device: device), members: m + members, records: r + records)
    }

    static func input(users: [DirectoryUser], connections: [Connection] = [], reports: [DeviceReport] = [],
                      problems: [InputProblem] = [], groups: [BindingGroup] = [], policy: Policy = Policy(),
                      knownDevices: [DeviceEntry] = []) -> PlanInput {
        PlanInput(users: users, connections: connections, knownDevices: knownDevices, reports: reports,
                  problems: problems, bindingGroups: groups, layout: layout, policy: policy, now: now)
    }

    static func plan(users: [DirectoryUser], connections: [Connection] = [], reports: [DeviceReport] = [],
                     problems: [InputProblem] = [], groups: [BindingGroup] = [], policy: Policy = Policy()) -> Plan {
        Planner.plan(input(users: users, connections: connections, reports: reports, problems: problems,
                           groups: groups, policy: policy))
    }
}

extension Plan {
    func decision(_ user: String, _ device: String) -> Decision? {
        decisions.first { $0.user == user && $0.device == device }
    }

    /// The action of each (user, device) pair, nil where there is no decision.
    func actions(_ pairs: [(user: String, device: String)]) -> [Action?] {
        pairs.map { decision($0.user, $0.device)?.action }
    }

    func conflict(_ kind: String) -> Finding? { conflicts.first { $0.kind == kind } }
    func warning(_ kind: String) -> Finding? { warnings.first { $0.kind == kind } }
}
