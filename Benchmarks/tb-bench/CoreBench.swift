import Foundation
import TakeoverCore

// tb-bench core: plans a generated directory of the size docs/product.md targets and prints
// generation time, planning time (median of --runs), peak RSS while planning, and the same
// at a tenth of the size with the time ratio (linear growth: 10x input, at most 11x time).
//
//   swift build -c release --product tb-bench
//   .build/release/tb-bench core --users 100000 --devices 20000 --accounts 1000000 --connections 200000

func coreBenchmark(_ arguments: [String]) {
    var options: [String: Int] = ["users": 100_000, "devices": 20_000, "accounts": 1_000_000, "connections": 200_000,
                                  "runs": 7, "seed": 42, "single": 0]
    var i = 0
    while i < arguments.count {
        let key = arguments[i].hasPrefix("--") ? String(arguments[i].dropFirst(2)) : ""
        guard options[key] != nil, i + 1 < arguments.count, let value = Int(arguments[i + 1]), value >= 0 else {
            print("usage: tb-bench core [--users N] [--devices N] [--accounts N] [--connections N] [--runs N] [--seed N] [--single 1]")
            return
        }
        options[key] = value
        i += 2
    }
    let size = CoreBenchSize(users: options["users"] ?? 0, devices: max(1, options["devices"] ?? 1),
                             accounts: options["accounts"] ?? 0, connections: options["connections"] ?? 0)
    let runs = max(1, options["runs"] ?? 5)
    let seed = UInt64(options["seed"] ?? 42)

    if options["single"] == 1 {
        _ = coreBenchRun(size, runs: runs, seed: seed)
        return
    }
    let small = coreBenchRun(size.scaled(by: 10), runs: runs, seed: seed)
    let full = coreBenchRun(size, runs: runs, seed: seed)
    let ratio = full.median / max(small.median, 1e-9)
    print(String(format: "growth: 10x input took %.2fx the planning time (limit 11x), %.2fx the CPU time", ratio,
                 full.cpuMedian / max(small.cpuMedian, 1e-9)))
    print(full.median <= 1.0 && full.peakMiB <= 300 && ratio <= 11
        ? "within budget: <= 1 s, <= 300 MiB, linear"
        : "OVER BUDGET: planning must take <= 1 s and <= 300 MiB, and grow linearly")
}

private struct CoreBenchSize {
    var users, devices, accounts, connections: Int
    func scaled(by f: Int) -> CoreBenchSize {
        CoreBenchSize(users: max(1, users / f), devices: max(1, devices / f), accounts: accounts / f, connections: connections / f)
    }
}

private struct CoreBenchResult {
    var median: Double
    var cpuMedian: Double
    var peakMiB: Double
}

private func coreBenchRun(_ size: CoreBenchSize, runs: Int, seed: UInt64) -> CoreBenchResult {
    let clock = ContinuousClock()
    var input: PlanInput?
    let generation = clock.measure { input = coreBenchWorld(size, seed: seed) }
    guard let input else { return CoreBenchResult(median: 0, cpuMedian: 0, peakMiB: 0) }
    let inputRSS = coreBenchStatus("VmRSS")
    coreBenchResetPeak()
    var times: [Double] = []
    var cpu: [Double] = []
    var faults: [Int] = []
    var summary = Summary()
    var lastPlan: Plan?
    for run in 0..<runs {
        var plan: Plan?
        // Each run starts like a fresh process: memory freed by the previous run goes back to
        // the system, so small worlds do not run on recycled, already-mapped pages.
        _ = coreBenchMallocTrim(0)
        let before = coreBenchCPU()
        let faultsBefore = coreBenchFaults()
        let t = clock.measure { plan = Planner.plan(input) }
        cpu.append(coreBenchCPU() - before)
        faults.append(coreBenchFaults() - faultsBefore)
        times.append(coreBenchSeconds(t))
        summary = plan?.summary ?? summary
        // Only the last plan is kept (for rendering), so no run overlaps another's plan.
        if run == runs - 1 { lastPlan = plan }
    }
    cpu.sort()
    let peak = coreBenchStatus("VmHWM")
    times.sort()
    let median = times[times.count / 2]
    print("core: \(size.users) users, \(size.devices) devices, \(size.accounts) local accounts, \(size.connections) connections")
    print(String(format: "  generation %.3f s; planning median %.3f s of %d runs (min %.3f, max %.3f); CPU time median %.3f s",
                 coreBenchSeconds(generation), median, runs, times.first ?? 0, times.last ?? 0, cpu[cpu.count / 2]))
    print("  page faults per run: \(faults.map(String.init).joined(separator: ", "))")
    print(String(format: "  RSS with the input %.1f MiB; peak RSS while planning %.1f MiB (+%.1f MiB over the input)",
                 inputRSS, peak, peak - inputRSS))
    if let plan = lastPlan {
        var sizes: [String] = []
        for (name, render) in [("json", ReportRenderer.json), ("text", { ReportRenderer.text($0) }), ("csv", ReportRenderer.csv),
                               ("ldif", ReportRenderer.ldif)] as [(String, (Plan) -> String)] {
            var bytes = 0
            let t = clock.measure { bytes = render(plan).utf8.count }
            sizes.append(String(format: "%@ %.3f s (%.1f MiB)", name, coreBenchSeconds(t), Double(bytes) / 1_048_576))
        }
        print("  rendering: " + sizes.joined(separator: ", "))
    }
    lastPlan = nil
    print("  plan: \(summary.takeover) takeover, \(summary.provision) provision, \(summary.bound) bound, \(summary.unbind) unbind, "
        + "\(summary.deferred) deferred, \(summary.conflict) conflict; \(summary.changes) changes")
    return CoreBenchResult(median: median, cpuMedian: cpu[cpu.count / 2], peakMiB: peak)
}

/// User + system CPU time of the process so far, in seconds (getrusage).
private func coreBenchCPU() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
        + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
}

/// glibc `malloc_trim` (not in the Glibc module map).
@_silgen_name("malloc_trim")
private func coreBenchMallocTrim(_ pad: Int) -> Int32

/// Minor page faults of the process so far (getrusage).
private func coreBenchFaults() -> Int {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return usage.ru_minflt
}

private func coreBenchSeconds(_ d: Duration) -> Double {
    Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
}

/// A field of /proc/self/status, in MiB (0 where there is no procfs).
private func coreBenchStatus(_ field: String) -> Double {
    guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in text.split(separator: "\n") where line.hasPrefix(field + ":") {
        let kb = line.split(separator: " ").compactMap { Double($0) }.first ?? 0
        return kb / 1024
    }
    return 0
}

/// Resets VmHWM to the current RSS (Linux: "5" to /proc/self/clear_refs), so the peak
/// measured afterwards belongs to planning.
private func coreBenchResetPeak() {
    if let h = FileHandle(forWritingAtPath: "/proc/self/clear_refs") {
        h.write(Data("5".utf8))
        try? h.close()
    }
}


/// A directory shaped like a real one: most connected users have their account on their
/// device (takeover), some are new (provision), half the pairs are bound already, a few
/// devices are stale, a few fields collide, every device has its system accounts.
private func coreBenchWorld(_ size: CoreBenchSize, seed: UInt64) -> PlanInput {
    var rng = BenchRNG(state: seed)
    let now: UnixTime = 1_795_939_200
    let layout = BindingLayout.standardSchema(base: "ou=bindings,dc=example,dc=com")
    var users: [DirectoryUser] = []
    users.reserveCapacity(size.users)
    for i in 0..<size.users {
        let name = "u\(i)"
        // 1 in 1000 shares a Local User Account field with its neighbour (R1), 1 in 10 has its own.
        let field: String? = i % 1000 == 1 ? "l\(i - 1)" : (i % 10 == 0 || i % 1000 == 0 ? "l\(i)" : nil)
        users.append(DirectoryUser(dn: "uid=\(name),ou=people,dc=example,dc=com", username: name, localAccountField: field,
                                   uidNumber: Int64(10_000 + i), displayName: i % 2 == 0 ? "User \(i)" : nil))
    }
    let system: [LocalAccount] = [
        LocalAccount(name: "root", uid: 0, uidSigned: 0, home: "/root", shell: "/bin/bash"),
        LocalAccount(name: "daemon", uid: 1, uidSigned: 1, home: "/usr/sbin", shell: "/usr/sbin/nologin"),
        LocalAccount(name: "bin", uid: 2, uidSigned: 2, home: "/bin", shell: "/usr/sbin/nologin"),
        LocalAccount(name: "sys", uid: 3, uidSigned: 3, home: "/dev", shell: "/usr/sbin/nologin"),
        LocalAccount(name: "sync", uid: 4, uidSigned: 4, home: "/bin", shell: "/bin/sync"),
        LocalAccount(name: "man", uid: 6, uidSigned: 6, home: "/var/cache/man", shell: "/usr/sbin/nologin"),
        LocalAccount(name: "www-data", uid: 33, uidSigned: 33, home: "/var/www", shell: "/usr/sbin/nologin"),
        LocalAccount(name: "nobody", uid: 65534, uidSigned: 65534, home: "/nonexistent", shell: "/usr/sbin/nologin"),
    ]
    let perDevice = size.connections / size.devices
    let extraConnections = size.connections % size.devices
    let accountsPerDevice = size.accounts / size.devices
    var connections: [Connection] = []
    connections.reserveCapacity(size.connections)
    var reports: [DeviceReport] = []
    reports.reserveCapacity(size.devices)
    var groups: [BindingGroup] = []
    var knownDevices: [DeviceEntry] = []
    for d in 0..<size.devices {
        let device = "host-\(d)"
        let platform: Platform = d % 10 < 6 ? .linux : (d % 10 < 9 ? .macos : .windows)
        let count = perDevice + (d < extraConnections ? 1 : 0)
        var accounts: [LocalAccount] = []
        accounts.reserveCapacity(accountsPerDevice)
        accounts.append(contentsOf: system.prefix(max(0, min(system.count, accountsPerDevice - count))))
        var members: [String] = [layout.base]
        var records: [String] = []
        for k in 0..<count {
            guard size.users > 0 else { break }
            let u = users[(d &* 7919 &+ k &* 104_729) % size.users]
            connections.append(Connection(device: device, member: rng.chance(90) ? .dn(u.dn) : .name(u.username)))
            if rng.chance(75) && accounts.count < accountsPerDevice {
                // The user's own account; 1 in 20 spelled with a capital.
                let name = rng.chance(5) ? u.localName.capitalized : u.localName
                accounts.append(LocalAccount(name: name, uid: u.uidNumber, uidSigned: u.uidNumber, home: "/home/\(u.localName)",
                                             shell: "/bin/bash", fullName: u.displayName))
            }
            if rng.chance(50) {
                members.append(u.dn)
                records.append(layout.recordValue(localName: u.localName, userDN: u.dn))
            }
        }
        if rng.chance(10) {
            // A binding of someone who left the directory.
            let dn = "uid=left\(d),ou=people,dc=example,dc=com"
            members.append(dn)
            records.append(layout.recordValue(localName: "left\(d)", userDN: dn))
        }
        var filler = 0
        while accounts.count < accountsPerDevice {
            let uid = Int64(2000 + filler)
            accounts.append(LocalAccount(name: "local\(filler)", uid: uid, uidSigned: uid, home: "/home/local\(filler)",
                                         shell: "/bin/bash", fullName: "Local \(filler)"))
            filler += 1
        }
        let age = rng.chance(5) ? Int64(30 * 86_400) : Int64(rng.below(86_400))
        reports.append(DeviceReport(device: device, platform: platform, reportedAt: now - age, accounts: accounts,
                                    source: "reports/\(device).json"))
        if members.count > 1 {
            groups.append(BindingGroup(device: device, dn: layout.groupDN(device: device), members: members, records: records))
        }
        if count == 0 { knownDevices.append(DeviceEntry(name: device)) }
    }
    return PlanInput(users: users, connections: connections, knownDevices: knownDevices, reports: reports,
                     bindingGroups: groups, layout: layout, policy: Policy(), now: now)
}
