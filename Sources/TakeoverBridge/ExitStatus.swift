// The process exit codes of docs/product.md section 4, and how several outcomes of one run
// combine: the most severe wins.
//
// | code | meaning                                                        |
// | ---- | -------------------------------------------------------------- |
// |  0   | ok                                                             |
// |  2   | changes pending (`plan --check` only)                          |
// |  3   | conflicts present (everything else was done)                   |
// |  4   | a safety limit tripped, nothing written                        |
// |  5   | directory or I/O failure                                       |
// | 64   | usage error (command line)                                     |
// | 67   | no such user (`explain` of a user not in the directory)        |
// | 75   | another run holds the lock or the lease                        |
// | 78   | configuration error                                            |
//
// Severity, most severe first: 78 = 64 > 75 > 5 > 67 > 4 > 3 > 2 > 0 (67 comes from
// `explain` alone, after everything was read, so any failure before it wins). 78 and 64 never meet in
// one run (a usage error stops before the configuration is read); if they did, 78 wins.

/// One exit code of the program, ordered by severity (`<` means "less severe").
package enum ExitStatus: Int32, Sendable, CaseIterable, Comparable, CustomStringConvertible {
    case ok = 0
    case changesPending = 2
    case conflicts = 3
    case safetyLimit = 4
    case failure = 5
    case usage = 64
    case noSuchUser = 67
    case lockHeld = 75
    case configuration = 78

    /// Position in the severity order; higher wins.
    package var severity: Int {
        switch self {
        case .ok: 0
        case .changesPending: 1
        case .conflicts: 2
        case .safetyLimit: 3
        case .noSuchUser: 4
        case .failure: 5
        case .lockHeld: 6
        case .usage: 7
        case .configuration: 8
        }
    }

    package static func < (lhs: ExitStatus, rhs: ExitStatus) -> Bool { lhs.severity < rhs.severity }

    /// The most severe of two outcomes.
    package func combined(with other: ExitStatus) -> ExitStatus { max(self, other) }

    package var description: String {
        switch self {
        case .ok: "ok"
        case .changesPending: "changes-pending"
        case .conflicts: "conflicts"
        case .safetyLimit: "safety-limit"
        case .failure: "failure"
        case .usage: "usage"
        case .noSuchUser: "no-such-user"
        case .lockHeld: "lock-held"
        case .configuration: "configuration"
        }
    }
}
