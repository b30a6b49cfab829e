// tb-bench reports [--files N] [--accounts N] [--dir PATH] [--runs N] [--regenerate]
//
// Generates (once; reused when the folder holds the same parameters) N report files
// holding the given number of accounts in a realistic mix of formats, then times
// ReportsFolder.read over the folder and prints the median.

import DeviceReports
import Foundation
import TakeoverCore

func reportsBenchmark(_ arguments: [String]) {
    var files = 20_000
    var accounts = 1_000_000
    var dir = "/tmp/tb-reports"
    var runs = 3
    var regenerate = false
    var i = 0
    while i < arguments.count {
        let a = arguments[i]
        let value = i + 1 < arguments.count ? arguments[i + 1] : ""
        switch a {
        case "--files": files = Int(value) ?? files; i += 1
        case "--accounts": accounts = Int(value) ?? accounts; i += 1
        case "--dir": dir = value; i += 1
        case "--runs": runs = max(1, Int(value) ?? runs); i += 1
        case "--regenerate": regenerate = true
        default:
            print("usage: tb-bench reports [--files N] [--accounts N] [--dir PATH] [--runs N] [--regenerate]")
            return
        }
        i += 1
    }
    files = max(1, files)

    let marker = dir + "/.tb-bench-complete"
    let signature = "files=\(files) accounts=\(accounts) v1"
    let existing = try? String(contentsOfFile: marker, encoding: .utf8)
    if regenerate || existing != signature {
        print("generating \(files) files with \(accounts) accounts in \(dir) ...")
        let started = ContinuousClock.now
        do {
            try generateReports(files: files, accounts: accounts, dir: dir)
            try signature.write(toFile: marker, atomically: true, encoding: .utf8)
        } catch {
            print("generation failed: \(error)")
            return
        }
        print("generated in \(format(ContinuousClock.now - started))")
    } else {
        print("reusing \(dir) (\(signature))")
    }

    var times: [Duration] = []
    var last = ReportsReadResult()
    var rssBefore = 0, rssAfter = 0
    for run in 1...runs {
        last = ReportsReadResult()   // free the previous result outside the timed part
        rssBefore = memoryStatus("VmRSS")
        let cpuStart = processCPUSeconds()
        let started = ContinuousClock.now
        last = ReportsFolder.read(path: dir)
        let elapsed = ContinuousClock.now - started
        let cpu = processCPUSeconds() - cpuStart
        rssAfter = memoryStatus("VmRSS")
        times.append(elapsed)
        // CPU time shows the cost when other processes share the two cores.
        print("run \(run): \(format(elapsed)) wall, \(String(format: "%.2f", cpu)) s CPU")
    }
    let total = last.reports.reduce(0) { $0 + $1.accounts.count }
    var byPlatform: [Platform: Int] = [:]
    for r in last.reports { byPlatform[r.platform, default: 0] += 1 }
    let platforms = Platform.allCases.map { "\($0.rawValue)=\(byPlatform[$0] ?? 0)" }.joined(separator: " ")
    print("reports=\(last.reports.count) accounts=\(total) problems=\(last.problems.count) warnings=\(last.warnings.count) \(platforms)")
    for p in last.problems.prefix(5) { print("  problem: \(p.reportLine)") }
    if let fatal = last.fatal { print("  fatal: \(fatal)") }
    // Memory: resident set before the last read and after it (the result, plus what malloc
    // keeps of the parsing buffers), and the process's peak, which also held the files being
    // parsed. Per reported account: the growth over the read.
    let peak = memoryStatus("VmHWM")
    let perAccount = total > 0 ? (max(rssAfter, peak) - rssBefore) * 1024 / total : 0
    print("memory: RSS \(rssBefore / 1024) MiB before the read, \(rssAfter / 1024) MiB after, peak \(peak / 1024) MiB; "
        + "\(perAccount) bytes per reported account (peak - before)")
    let median = times.sorted()[times.count / 2]
    print("ReportsFolder.read median of \(runs): \(format(median)) (target <= 2 s)")
}

/// A `kB` line of /proc/self/status (VmRSS, VmHWM), 0 where there is none.
private func memoryStatus(_ key: String) -> Int {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in status.split(separator: "\n") where line.hasPrefix(key + ":") {
        return Int(line.dropFirst(key.count + 1).split(whereSeparator: { $0 == " " || $0 == "\t" }).first ?? "") ?? 0
    }
    return 0
}

/// CPU time used by this process so far (all threads), in seconds.
private func processCPUSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
}

private func format(_ d: Duration) -> String {
    let (s, atto) = d.components
    let ms = Double(s) * 1000 + Double(atto) / 1e15
    return String(format: "%.0f ms", ms)
}

// MARK: - Generation

private enum BenchError: Error, CustomStringConvertible {
    case notOurs(String)
    var description: String {
        switch self {
        case .notOurs(let dir): return "\(dir) exists and was not made by tb-bench (no .tb-bench-complete): not touching it"
        }
    }
}

private struct GenAccount {
    var name: String
    var uid: Int64
    var home: String
    var shell: String
    var gecos: String
    var hidden = false
    var sid: String = ""
}

private let givenNames = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory",
                          "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter", "zoe"]

private enum GenPlatform { case linux, macos, windows }

/// `count` accounts of one device: system accounts first, then people.
private func makeAccounts(_ count: Int, platform: GenPlatform, device: Int, rng: inout BenchRNG) -> [GenAccount] {
    var out: [GenAccount] = []
    let domain = "S-1-5-21-\(1_000_000 + device)-\(2_000_000 + device * 7)-\(3_000_000 + device * 13)"
    switch platform {
    case .linux:
        out = [GenAccount(name: "root", uid: 0, home: "/root", shell: "/bin/bash", gecos: "root"),
               GenAccount(name: "daemon", uid: 1, home: "/usr/sbin", shell: "/usr/sbin/nologin", gecos: "daemon"),
               GenAccount(name: "_apt", uid: 42, home: "/nonexistent", shell: "/usr/sbin/nologin", gecos: ""),
               GenAccount(name: "nobody", uid: 65534, home: "/nonexistent", shell: "/usr/sbin/nologin", gecos: "nobody")]
    case .macos:
        out = [GenAccount(name: "root", uid: 0, home: "/var/root", shell: "/bin/sh", gecos: "System Administrator"),
               GenAccount(name: "_appleevents", uid: 55, home: "/var/empty", shell: "/usr/bin/false", gecos: "AppleEvents Daemon"),
               GenAccount(name: "_mbsetupuser", uid: 248, home: "/var/setup", shell: "/bin/bash", gecos: "Setup User", hidden: true),
               GenAccount(name: "nobody", uid: -2, home: "/var/empty", shell: "/usr/bin/false", gecos: "Unprivileged User")]
    case .windows:
        out = [GenAccount(name: "Administrator", uid: 500, home: "", shell: "C:\\Windows\\system32\\cmd.exe",
                          gecos: "Built-in account for administering the computer/domain", sid: domain + "-500"),
               GenAccount(name: "Guest", uid: 501, home: "", shell: "C:\\Windows\\system32\\cmd.exe",
                          gecos: "Built-in account for guest access to the computer/domain", sid: domain + "-501"),
               GenAccount(name: "DefaultAccount", uid: 503, home: "", shell: "C:\\Windows\\system32\\cmd.exe",
                          gecos: "A user account managed by the system.", sid: domain + "-503"),
               GenAccount(name: "WDAGUtilityAccount", uid: 504, home: "", shell: "C:\\Windows\\system32\\cmd.exe",
                          gecos: "A user account managed and used by the system.", sid: domain + "-504")]
    }
    out = Array(out.prefix(count))
    var k = 0
    while out.count < count {
        let given = givenNames[rng.below(givenNames.count)]
        let name = "\(given)\(device % 1000)x\(k)"
        let uid: Int64 = (platform == .macos ? 501 : 1000) + Int64(k)
        switch platform {
        case .linux:
            out.append(GenAccount(name: name, uid: uid, home: "/home/" + name, shell: "/bin/bash", gecos: given.capitalized + " Example,,,"))
        case .macos:
            out.append(GenAccount(name: name, uid: uid, home: "/Users/" + name, shell: "/bin/zsh", gecos: given.capitalized + " Example"))
        case .windows:
            out.append(GenAccount(name: name, uid: 1001 + Int64(k), home: "C:\\Users\\" + name, shell: "C:\\Windows\\system32\\cmd.exe",
                                  gecos: "", sid: domain + "-\(1001 + k)"))
        }
        k += 1
    }
    return out
}

/// `s` as a JSON string literal (Foundation's encoder; the reports only need to be valid JSON).
private func jsonString(_ s: String) -> String {
    (try? JSONEncoder().encode(s)).map { String(decoding: $0, as: UTF8.self) } ?? "\"\""
}

private func osqueryRow(_ a: GenAccount, platform: GenPlatform) -> String {
    let unsigned = a.uid < 0 ? a.uid + (1 << 32) : a.uid
    var fields: [(String, String)] = [
        ("description", a.gecos), ("directory", a.home), ("gid", "\(unsigned)"), ("gid_signed", "\(a.uid)"),
        ("shell", a.shell), ("uid", "\(unsigned)"), ("uid_signed", "\(a.uid)"), ("username", a.name), ("uuid", a.sid),
    ]
    if platform == .macos { fields.append(("is_hidden", a.hidden ? "1" : "0")) }
    if platform == .windows { fields.append(("type", "local")) }
    fields.sort { $0.0 < $1.0 }
    return "{" + fields.map { jsonString($0.0) + ":" + jsonString($0.1) }.joined(separator: ",") + "}"
}

private func generateReports(files: Int, accounts: Int, dir: String) throws {
    let fm = FileManager.default
    if fm.fileExists(atPath: dir) {
        // Only ever delete a folder this benchmark made (it holds the marker file).
        let contents = try fm.contentsOfDirectory(atPath: dir)
        guard contents.isEmpty || fm.fileExists(atPath: dir + "/.tb-bench-complete") else {
            throw BenchError.notOurs(dir)
        }
        try fm.removeItem(atPath: dir)
    }
    try fm.createDirectory(atPath: dir, withIntermediateDirectories: true)
    var rng = BenchRNG(state: 0x7B_BE4C)
    // Accounts per file: around the average, in +/- pairs so the total is exact.
    let base = accounts / files
    var counts = [Int](repeating: base, count: files)
    for i in 0..<(accounts - base * files) { counts[i] += 1 }
    var f = 0
    while f + 1 < files {
        let d = rng.below(max(1, base * 3 / 5))
        if counts[f + 1] - d >= 1 { counts[f] += d; counts[f + 1] -= d }
        f += 2
    }
    let platforms: [GenPlatform] = [.linux, .macos, .windows]
    for file in 0..<files {
        let n = counts[file]
        let kind = file % 20
        let bytes: [UInt8]
        let name: String
        switch kind {
        case 0..<6:   // osqueryi --json, each platform
            let p = platforms[file % 3]
            let rows = makeAccounts(n, platform: p, device: file, rng: &rng).map { "  " + osqueryRow($0, platform: p) }
            bytes = Array(("[\n" + rows.joined(separator: ",\n") + "\n]\n").utf8)
            name = "host-\(file).json"
        case 6..<10:  // getent passwd
            let rows = makeAccounts(n, platform: file % 2 == 0 ? .linux : .macos, device: file, rng: &rng).map {
                "\($0.name):x:\($0.uid):\($0.uid):\($0.gecos):\($0.home):\($0.shell)\n"
            }
            bytes = Array(rows.joined().utf8)
            name = "srv-\(file).passwd"
        case 10..<12: // osqueryd snapshots: an older snapshot, then the current one
            let p: GenPlatform = file % 2 == 0 ? .linux : .macos
            let current = makeAccounts(n, platform: p, device: file, rng: &rng)
            var lines: [String] = []
            let old = current.prefix(max(1, n - 2)).map { osqueryRow($0, platform: p) }
            lines.append("{\"name\":\"pack_inventory_users\",\"hostIdentifier\":\"osq-\(file)\",\"calendarTime\":\"Wed Feb 21 15:22:40 2024 UTC\",\"unixTime\":1708528960,\"epoch\":0,\"counter\":0,\"numerics\":false,\"snapshot\":[" + old.joined(separator: ",") + "],\"action\":\"snapshot\"}")
            lines.append("{\"name\":\"pack_inventory_users\",\"hostIdentifier\":\"osq-\(file)\",\"calendarTime\":\"Thu Feb 22 15:22:40 2024 UTC\",\"unixTime\":1708615360,\"epoch\":0,\"counter\":1,\"numerics\":false,\"snapshot\":[" + current.map { osqueryRow($0, platform: p) }.joined(separator: ",") + "],\"action\":\"snapshot\"}")
            bytes = Array((lines.joined(separator: "\n") + "\n").utf8)
            name = "osq-\(file).log"
        case 12..<14: // osqueryd events: counter-0 run, then a rename
            let current = makeAccounts(n, platform: .linux, device: file, rng: &rng)
            var lines: [String] = []
            let head = "{\"name\":\"pack_inventory_users\",\"hostIdentifier\":\"evt-\(file)\",\"calendarTime\":\"x\",\"epoch\":0,\"numerics\":false,"
            var initial = current
            initial[initial.count - 1].name += "old"
            for a in initial {
                lines.append(head + "\"unixTime\":1708528960,\"counter\":0,\"columns\":" + osqueryRow(a, platform: .linux) + ",\"action\":\"added\"}")
            }
            lines.append(head + "\"unixTime\":1708532560,\"counter\":1,\"columns\":" + osqueryRow(current[current.count - 1], platform: .linux) + ",\"action\":\"added\"}")
            lines.append(head + "\"unixTime\":1708532560,\"counter\":1,\"columns\":" + osqueryRow(initial[initial.count - 1], platform: .linux) + ",\"action\":\"removed\"}")
            bytes = Array((lines.joined(separator: "\n") + "\n").utf8)
            name = "evt-\(file).log"
        case 14..<16: // JumpCloud System Insights export, five systems per file
            var rows: [String] = []
            for (system, p, accounts) in devicesOfFile(n, parts: 5, file: file, platforms: platforms, rng: &rng) {
                for a in accounts {
                    var row = osqueryRow(a, platform: p)
                    row.removeLast()
                    row += ",\"system_id\":\"5c9e51a13c5146f8\(String(format: "%08x", file * 5 + system))\",\"collection_time\":\"2024-02-21T15:22:40.71Z\",\"admin\":false,\"managed\":false,\"real_user\":\(a.uid >= 500 ? "true" : "false"),\"suspended\":false}"
                    rows.append(row)
                }
            }
            bytes = Array(("[" + rows.joined(separator: ",\n") + "]").utf8)
            name = "jumpcloud-\(file).json"
        case 16..<18: // PowerShell Get-LocalUser | ConvertTo-Json: 5.1 (UTF-16LE BOM) or 7 (UTF-8)
            let objects = makeAccounts(n, platform: .windows, device: file, rng: &rng).map { a -> String in
                let sidDomain = String(a.sid[..<(a.sid.lastIndex(of: "-") ?? a.sid.endIndex)])
                return "{\"AccountExpires\":null,\"Description\":\(jsonString(a.gecos)),\"Enabled\":true,\"FullName\":\"\",\"PasswordChangeableDate\":\"\\/Date(1701379505092)\\/\",\"PasswordExpires\":null,\"UserMayChangePassword\":true,\"PasswordRequired\":true,\"PasswordLastSet\":\"\\/Date(1701379505092)\\/\",\"LastLogon\":null,\"Name\":\(jsonString(a.name)),\"SID\":{\"BinaryLength\":28,\"AccountDomainSid\":\"\(sidDomain)\",\"Value\":\"\(a.sid)\"},\"PrincipalSource\":1,\"ObjectClass\":\"User\"}"
            }
            let text = "[" + objects.joined(separator: ",\r\n") + "]\r\n"
            if file % 2 == 0 {
                bytes = [0xFF, 0xFE] + text.utf16.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }
            } else {
                bytes = Array(text.utf8)
            }
            name = "WS-\(file).json"
        default:      // CSV, four devices per file
            var lines = ["device,username,uid,sid,home,full_name,shell,hidden,reported_at"]
            for (d, p, accounts) in devicesOfFile(n, parts: 4, file: file, platforms: platforms, rng: &rng) {
                for a in accounts {
                    lines.append("\"csv-\(file)-\(d)\",\(a.name),\(p == .windows ? "" : "\(a.uid)"),\(a.sid),\(a.home),\"\(a.gecos)\",\(a.shell),\(a.hidden ? 1 : 0),2024-02-21T15:22:40Z")
                }
            }
            bytes = Array((lines.joined(separator: "\r\n") + "\r\n").utf8)
            name = "inventory-\(file).csv"
        }
        guard fm.createFile(atPath: dir + "/" + name, contents: Data(bytes)) else {
            throw CocoaError(.fileWriteUnknown)
        }
    }
}

/// `n` accounts of one file spread over `parts` devices (the last takes the rest), each
/// device with its part number, its platform and its accounts.
private func devicesOfFile(_ n: Int, parts: Int, file: Int, platforms: [GenPlatform], rng: inout BenchRNG)
    -> [(part: Int, platform: GenPlatform, accounts: [GenAccount])] {
    var out: [(part: Int, platform: GenPlatform, accounts: [GenAccount])] = []
    var remaining = n
    var part = 0
    while remaining > 0 {
        let take = part == parts - 1 ? remaining : min(remaining, max(1, n / parts))
        let p = platforms[(file + part) % 3]
        out.append((part, p, makeAccounts(take, platform: p, device: file * parts + part, rng: &rng)))
        remaining -= take
        part += 1
    }
    return out
}
