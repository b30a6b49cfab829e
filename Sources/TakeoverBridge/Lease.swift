// One run at a time across hosts (docs/product.md section 6, issue 11): the lock in
// `[state] dir` is local to one machine, so a run that writes also holds a lease in the
// directory.
//
// The entry (standard schema only: RFC 4519 organizationalRole, in the core schema of
// OpenLDAP, 389 DS and Active Directory; its RDN is cn, like a binding group's, so an ACL
// that lets the service account write `cn=*` under the bindings base covers it):
//
//   dn: cn=takeover-bridge-lease,<[bindings] search_base>
//   objectClass: organizationalRole
//   cn: takeover-bridge-lease
//   description: takeover-bridge lease v1; holder=<host>; pid=<pid>; run=<random>;
//                expires=<UTC time>; unix=<seconds>                       (held)
//   description: takeover-bridge lease v1; state=free; holder=<host>; pid=<pid>;
//                run=<random>; finished=<UTC time>; unix=<seconds>        (free: the last
//                writer, and when it finished)
//
// It is not of the binding object class, so it is never read as a binding group. The entry
// stays between runs; a run with nothing to write never touches it (a steady-state apply
// writes nothing at all).
//
// - Seen before the directory is read (`observe`, a read on the read connection, just
//   before the directory read): held by another host and not expired means that host is
//   writing while this run would read: exit 75 at once.
// - Taken only when the plan has changes and passed the safety limits, before the first
//   write, on the write server. The value found then must be exactly the value seen
//   before the read (every writer changes it: taking puts a new run token in, giving back
//   puts a free value with that token in, and tokens are random): any other value means
//   another host took the lease, and so may have written, while this run read, so this
//   plan may be stale: nothing is written, exit 75, the next run reads the result. This
//   comparison needs no clock.
// - Taking replaces the value with ONE modify that deletes the exact value checked and
//   adds the new one (an add when there is no entry yet). Modify is atomic and the delete
//   fails (16, no such value) once anyone else has replaced the value, so of two hosts
//   that saw the same value exactly one wins; the other exits 75.
// - A held value that has expired (a run killed while holding it) is taken over the same
//   way, but only when it had expired, by this host's clock, at least `skewAllowance`
//   seconds before this run began reading: until then the holder may still have been
//   writing (from a clock a little ahead or behind), and this run's plan may be stale.
//   A lease an earlier run of this same state folder left (its token is noted in the lock
//   file, and holding the lock proves that run over before this one began) is taken over
//   at once.
// - Renewed (exact old value out, new value in) every third of `[state] lease` while the
//   run lasts. A renewal that finds another value means the lease was lost: the run stops
//   writing; it also stops when the lease is within a sixth of its time of expiring.
// - Given back with ONE modify: this run's exact value out, a free value in (this run's
//   token, the time it finished). A run whose value is no longer there leaves it alone.
//
// Clocks: only the expiry of a held lease compares clocks (the holder's, written into the
// value, with the taker's). Hosts' clocks must agree (NTP) to well within the lease time
// and within `skewAllowance`; an error beyond that only matters for a run killed while
// holding the lease.

import Foundation
import LDAPClient
import LDAPSyntax
import Logging
import TakeoverCore

/// The lease value in the entry's `description`: held by a run until `expires`, or free
/// (`free`), given back by the last run that held it at `expires` (its finish time).
package struct LeaseValue: Sendable, Hashable {
    package var holder: String
    package var pid: Int32
    package var run: String
    /// Held: when the lease expires. Free: when the last holder gave it back.
    package var expires: UnixTime
    package var free: Bool

    static let prefix = "takeover-bridge lease v1; "

    package init(holder: String, pid: Int32, run: String, expires: UnixTime, free: Bool = false) {
        self.holder = LeaseValue.safeHost(holder)
        self.pid = pid
        self.run = run
        self.expires = expires
        self.free = free
    }

    /// The free value a holder leaves when it gives the lease back at `finished`.
    package func given(back finished: UnixTime) -> LeaseValue {
        LeaseValue(holder: holder, pid: pid, run: run, expires: finished, free: true)
    }

    package var text: String {
        free
            ? LeaseValue.prefix + "state=free; holder=\(holder); pid=\(pid); run=\(run); finished=\(UTCTime.iso8601(expires)); unix=\(expires)"
            : LeaseValue.prefix + "holder=\(holder); pid=\(pid); run=\(run); expires=\(UTCTime.iso8601(expires)); unix=\(expires)"
    }

    /// The value, or nil when `text` is not one (other descriptions are ignored).
    package static func parse(_ text: String) -> LeaseValue? {
        guard text.hasPrefix(prefix) else { return nil }
        var fields: [String: String] = [:]
        for part in text.dropFirst(prefix.count).components(separatedBy: "; ") {
            guard let equals = part.firstIndex(of: "=") else { return nil }
            fields[String(part[..<equals])] = String(part[part.index(after: equals)...])
        }
        let free: Bool
        switch fields["state"] {
        case nil: free = false
        case "free": free = true
        default: return nil
        }
        guard let holder = fields["holder"], let pid = fields["pid"].flatMap({ Int32($0) }), let run = fields["run"],
              !run.isEmpty, let time = fields["unix"].flatMap({ UnixTime($0) }) else { return nil }
        return LeaseValue(holder: holder, pid: pid, run: run, expires: time, free: free)
    }

    /// Host names go into the value as letters, digits, ".", "-" and "_" only.
    static func safeHost(_ host: String) -> String {
        let cleaned = String(host.unicodeScalars.prefix(64).map { scalar -> Character in
            scalar.isASCII && (CharacterSet.alphanumerics.contains(scalar) || ".-_".unicodeScalars.contains(scalar))
                ? Character(scalar) : "_"
        })
        return cleaned.isEmpty ? "unknown" : cleaned
    }

    /// "host mbp (pid 42) until 2026-11-30T14:26:00Z", or for a free value
    /// "free since host mbp (pid 42) finished at 2026-11-30T14:26:00Z".
    package var summary: String {
        free ? "free since host \(holder) (pid \(pid)) finished writing at \(UTCTime.iso8601(expires))"
            : "host \(holder) (pid \(pid)) until \(UTCTime.iso8601(expires))"
    }
}

/// The lease as a run saw it just before it read the directory.
package struct LeaseSeen: Sendable, Hashable {
    /// The value then; nil when there was no lease entry.
    package var value: LeaseValue?
    /// This host's clock when the directory read began.
    package var at: UnixTime

    package init(value: LeaseValue?, at: UnixTime) {
        self.value = value
        self.at = at
    }
}

/// Why the lease could not be taken or kept.
package enum LeaseError: Error, Sendable, CustomStringConvertible {
    /// Another run holds it (exit 75).
    case held(dn: String, by: LeaseValue)
    /// Another run took the lease (and so may have written) while this run read the
    /// directory: this run's plan may be stale (exit 75, nothing written). `now` is the
    /// value found, nil when the entry was removed.
    case stale(dn: String, now: LeaseValue?)
    /// The directory refused or failed (exit 5).
    case failed(String)
    /// The server answered with a referral (a read-only replica): `acquire` follows it to
    /// a configured server, as writes do.
    case referral([String])

    package var description: String {
        switch self {
        case .held(let dn, let value):
            return "another takeover-bridge run holds the lease \(dn): \(value.summary); try again when it has finished"
        case .stale(let dn, let value):
            return "another host wrote to the directory while this run read it (the lease \(dn) is now "
                + (value.map { $0.summary } ?? "removed") + "); nothing written; the next run reads its result"
        case .failed(let message):
            return message
        case .referral(let urls):
            return "the server answered the lease with a referral to " + urls.map { LDAPURLError.visible($0) }.joined(separator: " ")
        }
    }
}

/// A held lease: renewed by `startRenewing()`, checked by `problem(now:)` before writes,
/// removed by `release()`.
package actor Lease {
    package nonisolated let dn: String
    package nonisolated let duration: Int64
    private let connector: Connector
    private var uri: String
    private let clock: @Sendable () -> UnixTime
    private let logger: Logger
    private var connection: LDAPConnection?
    private(set) var value: LeaseValue
    /// This run's token in the lease value (noted in the local lock file while held).
    package nonisolated let run: String
    private var lost: String?
    private var renewer: Task<Void, Never>?

    /// The lease entry's DN under `[bindings] search_base`.
    package static func dn(bindingsBase: String) -> String {
        DNEscaping.rdn("cn", entryName) + "," + bindingsBase
    }

    package static let entryName = "takeover-bridge-lease"

    private init(dn: String, duration: Int64, connector: Connector, uri: String, clock: @escaping @Sendable () -> UnixTime,
                 logger: Logger, connection: LDAPConnection, value: LeaseValue) {
        self.dn = dn
        self.duration = duration
        self.connector = connector
        self.uri = uri
        self.clock = clock
        self.logger = logger
        self.connection = connection
        self.value = value
        self.run = value.run
    }

    // MARK: Seeing it, taking it

    /// Seconds a held lease counts as possibly still written under after it expired, for
    /// clocks that differ between hosts (NTP keeps them far closer) and a holder's last
    /// write still on the way.
    package static let skewAllowance: UnixTime = 5

    /// The lease just before the directory is read, on the read connection. Throws
    /// `.held` at once when another run holds it (it is writing while this run would
    /// read), unless `leftover` names it (an earlier run of this state folder, over).
    package static func observe(_ connection: LDAPConnection, bindingsBase: String, now: UnixTime,
                               leftover: [String] = []) async throws(LeaseError) -> LeaseSeen {
        let dn = Lease.dn(bindingsBase: bindingsBase)
        let value = try await read(connection, dn: dn)
        if let value, !value.free, value.expires > now, !leftover.contains(value.run) {
            throw .held(dn: dn, by: value)
        }
        return LeaseSeen(value: value, at: now)
    }

    /// Takes the lease on the write server (`write_uri`, else `uri`), on a connection of
    /// its own, replacing exactly the value `seen` before the directory was read. Throws
    /// `.held` when another run holds it, `.stale` when another run took it since `seen`.
    ///
    /// `leftover`: tokens of leases earlier runs of this state folder did not give back
    /// (`RunLock.leftoverLeaseRuns`); holding the local lock proves those runs are over,
    /// so such a lease is taken over at once instead of after it expires.
    package static func acquire(connector: Connector, clock: @escaping @Sendable () -> UnixTime,
                               logger: Logger, seen: LeaseSeen, leftover: [String] = [],
                               run: String = Lease.newRunToken()) async throws(LeaseError) -> Lease {
        let config = connector.config
        let dn = Lease.dn(bindingsBase: config.bindings.searchBase)
        var uri = connector.writeURI
        let mine = LeaseValue(holder: BridgeRunner.hostName(), pid: getpid(), run: run,
                              expires: clock() + config.state.lease)
        for _ in 0...3 {  // at most 3 referral hops, like writes
            let connection: LDAPConnection
            do {
                connection = try await connector.open(uri: uri)
            } catch {
                throw .failed("cannot connect to \(uri) to take the lease \(dn): \(error)")
            }
            do {
                let value = try await take(connection, dn: dn, mine: mine, seen: seen, now: clock, logger: logger,
                                           leftover: leftover)
                return Lease(dn: dn, duration: config.state.lease, connector: connector, uri: uri, clock: clock,
                             logger: logger, connection: connection, value: value)
            } catch {
                await connection.close()
                guard case .referral(let urls) = error else { throw error }
                // Only to a server named in uri or write_uri; never a bind anywhere else.
                switch connector.followableTarget(of: urls, for: dn, logger: logger) {
                case .success(let target):
                    logger.notice("following a referral for the lease", metadata: ["from": "\(uri)", "to": "\(target)"])
                    uri = target
                case .failure(let refusal):
                    throw .failed("cannot take the lease: \(refusal.message)")
                }
            }
        }
        throw .failed("cannot take the lease \(dn): more than 3 referrals")
    }

    /// The add (no entry seen), or the one modify replacing the value seen; the value now
    /// held.
    static func take(_ connection: LDAPConnection, dn: String, mine: LeaseValue, seen: LeaseSeen, now: () -> UnixTime,
                     logger: Logger, leftover: [String] = []) async throws(LeaseError) -> LeaseValue {
        var current: LeaseValue?
        if seen.value == nil {
            do {
                try await connection.add(dn: dn, attributes: [("objectClass", ["organizationalRole"]), ("cn", [entryName]),
                                                              ("description", [mine.text])])
                return mine
            } catch where error.code == .entryAlreadyExists {
                // Created since: read below.
            } catch where error.code == .referral {
                throw .referral(error.referrals)
            } catch {
                throw .failed("cannot take the lease: \(error)")
            }
        }
        current = try await read(connection, dn: dn)
        if let current, current.run == mine.run { return current }  // our own add, answered late
        if let current, !current.free, current.expires > now(), !leftover.contains(current.run) {
            throw .held(dn: dn, by: current)
        }
        guard let current, current == seen.value else { throw .stale(dn: dn, now: current) }
        let ours = leftover.contains(current.run)
        if !current.free, !ours, current.expires + skewAllowance > seen.at {
            // Expired, but not long enough before this run began reading: its holder may
            // have written while this run read.
            throw .stale(dn: dn, now: current)
        }
        do {
            try await connection.modify(dn: dn, [Modification(.delete, "description", [current.text]),
                                                 Modification(.add, "description", [mine.text])])
        } catch where isReplacedValue(error.code) {
            // Another run replaced the value first: it won.
            let winner = try await read(connection, dn: dn)
            if let winner, !winner.free, winner.run != mine.run { throw .held(dn: dn, by: winner) }
            throw .stale(dn: dn, now: winner)
        } catch where error.code == .referral {
            throw .referral(error.referrals)
        } catch {
            throw .failed("cannot take the lease \(dn): \(error)")
        }
        if ours {
            logger.notice("took over the lease an earlier run of this state folder left",
                          metadata: ["dn": "\(dn)", "previous": "\(current.summary)"])
        } else if !current.free {
            logger.notice("took over an expired lease", metadata: ["dn": "\(dn)", "previous": "\(current.summary)"])
        }
        return mine
    }

    /// The lease value in the entry; nil when the entry does not exist. An entry without
    /// exactly one lease value cannot be taken safely: a failure naming the fix.
    static func read(_ connection: LDAPConnection, dn: String) async throws(LeaseError) -> LeaseValue? {
        let entry: LDAPEntry?
        do {
            entry = try await connection.read(dn: dn, attributes: ["description"])
        } catch {
            throw .failed("cannot read the lease \(dn): \(error)")
        }
        guard let entry else { return nil }
        let values = entry.strings("description").compactMap(LeaseValue.parse)
        guard values.count == 1, let value = values.first else {
            throw .failed("the lease entry \(dn) holds \(values.count) lease values instead of one; "
                + "if no takeover-bridge run is active, delete the entry")
        }
        return value
    }

    /// What `doctor` shows: the lease value when the entry exists (nil when free).
    package static func inspect(_ connection: LDAPConnection, bindingsBase: String) async throws(LeaseError) -> LeaseValue? {
        try await read(connection, dn: dn(bindingsBase: bindingsBase))
    }

    /// 128 random bits in hex: names one run's lease value.
    package static func newRunToken() -> String {
        (0..<2).map { _ in String(UInt64.random(in: 0...UInt64.max), radix: 16) }.joined()
    }

    // MARK: Keeping it

    /// Renews every third of the lease time until `release()`.
    package func startRenewing() {
        guard renewer == nil else { return }
        let interval = max(Double(duration) / 3, 0.2)
        renewer = Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(nanoseconds: UInt64(interval * 1_000_000_000))
                guard !Task.isCancelled, let self else { return }
                await self.renew()
            }
        }
    }

    /// One renewal: the exact current value out, the new one in, atomically. After a lost
    /// connection the earlier attempt may have gone through: a value with this run's
    /// token is adopted and renewed again. Any other value means the lease was taken over.
    func renew() async {
        guard lost == nil else { return }
        for _ in 0..<3 {
            let next = LeaseValue(holder: value.holder, pid: value.pid, run: value.run, expires: clock() + duration)
            do {
                let connection = try await liveConnection()
                try await connection.modify(dn: dn, [Modification(.delete, "description", [value.text]),
                                                     Modification(.add, "description", [next.text])])
                value = next
                return
            } catch {
                if error.isConnectionLost {
                    await dropConnection()
                    continue
                }
                guard isReplacedValue(error.code) else {
                    logger.warning("cannot renew the lease; trying again", metadata: ["dn": "\(dn)", "error": "\(error)"])
                    return
                }
                var current: LeaseValue?
                if let connection { current = (try? await Lease.read(connection, dn: dn)) ?? nil }
                if let current, current.run == value.run {
                    value = current
                    continue
                }
                lost = "the lease \(dn) was taken over" + (current.map { " by \($0.summary)" } ?? "")
                    + "; this run stops writing"
                logger.error("\(lost ?? "")")
                return
            }
        }
    }

    /// Why writing must stop now (the lease was lost, or it expires within a sixth of
    /// its time without a renewal), or nil while it is safely held.
    package func problem() -> String? {
        if let lost { return lost }
        let margin = max(duration / 6, 1)
        if value.expires - clock() < margin {
            return "the lease \(dn) could not be renewed and expires at \(UTCTime.iso8601(value.expires)); this run stops writing"
        }
        return nil
    }

    // MARK: Giving it back

    /// Stops renewing and gives the lease back if the entry still holds this run's value:
    /// one modify, this run's value out and a free value (its token, the time it finished)
    /// in; the entry stays. Retries a lost connection (0.5, 1, 2 s); never throws. True
    /// when this run's value is no longer in the directory (given back, gone, or another
    /// run's now); false when it may still be there (the server could not be reached).
    @discardableResult
    package func release() async -> Bool {
        renewer?.cancel()
        renewer = nil
        guard lost == nil else {
            await dropConnection()
            return true
        }
        var released = false
        for delay in [0.0, 0.5, 1, 2] {
            if delay > 0 { try? await Task.sleep(nanoseconds: UInt64(delay * 1_000_000_000)) }
            do {
                let connection = try await liveConnection()
                try await connection.modify(dn: dn, [Modification(.delete, "description", [value.text]),
                                                     Modification(.add, "description", [value.given(back: clock()).text])])
                released = true
                break
            } catch where isReplacedValue(error.code) {
                // A retry after a lost answer finds the value already given back; any other
                // value is another run's now: left in place.
                var current: LeaseValue?
                if let connection { current = (try? await Lease.read(connection, dn: dn)) ?? nil }
                if current?.run != value.run {
                    logger.warning("the lease holds another run's value now; left in place", metadata: ["dn": "\(dn)"])
                }
                released = true
                break
            } catch where error.isConnectionLost {
                await dropConnection()
                continue
            } catch {
                logger.warning("cannot give the lease back; it expires by itself",
                               metadata: ["dn": "\(dn)", "expires": "\(UTCTime.iso8601(value.expires))", "error": "\(error)"])
                break
            }
        }
        await dropConnection()
        return released
    }

    // MARK: Connection

    private func liveConnection() async throws(LDAPError) -> LDAPConnection {
        if let connection { return connection }
        let opened = try await connector.open(uri: uri)
        connection = opened
        return opened
    }

    private func dropConnection() async {
        if let connection { await connection.close() }
        connection = nil
    }
}

/// The lease's value was no longer the one a value-level modify deleted or added:
/// noSuchAttribute (the old value is gone), attributeOrValueExists (the new one is
/// there already) or noSuchObject (the entry is gone). Another run changed it first.
private func isReplacedValue(_ code: LDAPResultCode) -> Bool {
    switch code {
    case .noSuchAttribute, .attributeOrValueExists, .noSuchObject: true
    default: false
    }
}
