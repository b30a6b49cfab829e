import Foundation
import Testing
@testable import DeviceReports
import TakeoverCore

/// A fixed mtime for fixtures, so the fallback report time is checkable.
let fixtureMTime: UnixTime = 1_700_000_000

enum FixtureError: Error { case missing(String) }

func fixtureBytes(_ name: String) throws -> [UInt8] {
    guard let url = Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Fixtures") else {
        throw FixtureError.missing(name)
    }
    return [UInt8](try Data(contentsOf: url))
}

func parseFixture(_ name: String) throws -> ReportsReadResult {
    ReportParser.parse(bytes: try fixtureBytes(name), fileName: name, modificationTime: fixtureMTime)
}

func parseText(_ text: String, fileName: String = "host.json", limits: ReportLimits = ReportLimits()) -> ReportsReadResult {
    ReportParser.parse(bytes: Array(text.utf8), fileName: fileName, source: fileName, modificationTime: fixtureMTime, limits: limits)
}

extension ReportsReadResult {
    func report(_ device: String) -> DeviceReport? { reports.first { $0.device == device } }
    var devices: [String] { reports.map(\.device).sorted() }
}

extension DeviceReport {
    func account(_ name: String) -> LocalAccount? { accounts.first { $0.name == name } }
    var names: [String] { accounts.map(\.name) }
}

/// SplitMix64: small, seeded, deterministic.
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func below(_ n: Int) -> Int { n <= 0 ? 0 : Int(next() % UInt64(n)) }
}
