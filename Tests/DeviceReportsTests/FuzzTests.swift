// Property tests: arbitrary bytes and random mutations of every valid fixture never crash
// the reader, and what comes back always keeps the contract.

import Testing
@testable import DeviceReports
import TakeoverCore

let fixtureNames = [
    "linux-osqueryi.json", "linux-osqueryi-pretty.json", "macos-osqueryi.json", "windows-osqueryi.json",
    "jumpcloud-users.json", "osqueryd-snapshots.log", "osqueryd-batch.log", "osqueryd-events.log",
    "ps51-array.json", "ps7-array.json", "ps51-single-utf16le.json", "ps-single-utf8bom.json",
    "getent-passwd.txt", "macos-passwd", "inventory.csv",
]

/// The contract every result keeps, whatever the input.
func checkInvariants(_ r: ReportsReadResult, source: String, fileName: String) {
    for p in r.problems { #expect(p.source == source) }
    for w in r.warnings { #expect(w.source == source) }
    for report in r.reports {
        #expect(!report.accounts.isEmpty)
        #expect(report.source == source)
        #expect(!report.device.isEmpty)
        var seen = Set<String>()
        for a in report.accounts {
            #expect(!a.name.isEmpty)
            #expect(seen.insert(a.name.lowercased()).inserted, "duplicate \(a.name) in \(report.device)")
        }
    }
    // A device with an error from this file has no report from it.
    let failed = Set(r.problems.compactMap(\.device))
    for report in r.reports { #expect(!failed.contains(report.device), "\(report.device) has a report and an error") }
    // Nothing unusable passes silently: no report means an error.
    if r.reports.isEmpty { #expect(!r.problems.isEmpty, "\(fileName): no report and no error") }
}

@Suite struct FuzzTests {
    /// Bytes biased towards the characters the formats care about.
    static let alphabet: [UInt8] = Array("{}[]\":,\\/ \n\r\tuT0123456789-+.eEnulltruefalse".utf8) + [0x00, 0xC3, 0xA9, 0xFF, 0xFE, 0xEF, 0xBB, 0xBF, 0xD8, 0xDC]

    @Test func randomBytesNeverCrash() {
        var rng = SplitMix64(seed: 0x5EED_0001)
        for i in 0..<10_000 {
            let count = rng.below(400)
            var bytes: [UInt8] = []
            bytes.reserveCapacity(count)
            let biased = i % 2 == 0
            for _ in 0..<count {
                bytes.append(biased ? FuzzTests.alphabet[rng.below(FuzzTests.alphabet.count)] : UInt8(truncatingIfNeeded: rng.next()))
            }
            // Start some with a JSON or text shape so the deeper readers are reached.
            switch i % 5 {
            case 0: bytes.insert(UInt8(ascii: "["), at: 0)
            case 1: bytes.insert(UInt8(ascii: "{"), at: 0)
            case 2: bytes = Array("device,username\n".utf8) + bytes
            default: break
            }
            let r = ReportParser.parse(bytes: bytes, fileName: "fuzz-\(i).json", modificationTime: 0)
            checkInvariants(r, source: "fuzz-\(i).json", fileName: "fuzz-\(i).json")
        }
    }

    @Test func mutationsOfValidFixturesNeverCrash() throws {
        var rng = SplitMix64(seed: 0xF1_7E5)
        for name in fixtureNames {
            let original = try fixtureBytes(name)
            for _ in 0..<1000 {
                var bytes = original
                for _ in 0..<(1 + rng.below(4)) {
                    guard !bytes.isEmpty else { break }
                    let at = rng.below(bytes.count)
                    switch rng.below(7) {
                    case 0: bytes[at] = UInt8(truncatingIfNeeded: rng.next())                       // overwrite
                    case 1: bytes[at] ^= UInt8(1 << rng.below(8))                                   // bit flip
                    case 2: bytes.remove(at: at)                                                    // delete
                    case 3: bytes.insert(FuzzTests.alphabet[rng.below(FuzzTests.alphabet.count)], at: at)  // insert
                    case 4: bytes.removeSubrange(at...)                                             // truncate
                    case 5:                                                                         // duplicate a span
                        let end = min(bytes.count, at + rng.below(64))
                        bytes.insert(contentsOf: bytes[at..<end], at: rng.below(bytes.count))
                    default:                                                                        // swap two bytes
                        bytes.swapAt(at, rng.below(bytes.count))
                    }
                }
                let r = ReportParser.parse(bytes: bytes, fileName: name, modificationTime: 0)
                checkInvariants(r, source: name, fileName: name + " " + String(decoding: bytes.prefix(300), as: UTF8.self))
            }
        }
    }

    @Test func parsingIsDeterministic() throws {
        for name in fixtureNames {
            let bytes = try fixtureBytes(name)
            let a = ReportParser.parse(bytes: bytes, fileName: name, modificationTime: 5)
            let b = ReportParser.parse(bytes: bytes, fileName: name, modificationTime: 5)
            #expect(a == b)
            checkInvariants(a, source: name, fileName: name)
            #expect(!a.reports.isEmpty, "\(name)")
        }
    }
}
