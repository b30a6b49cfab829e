// osqueryd result logs of a scheduled query on the `users` table, folded in order per
// host: snapshot records replace the state, batch records (`diffResults`) remove then add,
// event records (`columns` + `action`) add or remove one row. A run with counter 0 (first
// run after start or an epoch change) carries every row and resets the state.
//
// A differential log that never shows a full baseline (a snapshot, or a counter-0 run)
// cannot list every account: that host gets an error, not a partial report (R8).

import LDAPSyntax
import TakeoverCore

enum OsquerydLog {
    private struct Run: Equatable {
        var unixTime: Int64
        var epoch: Int64?
        var counter: Int64?
    }

    /// The rows of one scheduled query on one host, in insertion order. Rows are keyed by
    /// their full content: a removal takes away the row that was added, whatever the order
    /// of `added`/`removed` events within a run.
    private struct QueryState {
        var rows: [Row?] = []
        /// Row content -> slots in `rows`; built on the first removal only (snapshots never need it).
        var index: [RowKey: [Int]]?
        var live = 0
        var hasBaseline = false
        var lastRun: Run?
        var lastAction: String?
        var lastTime: Int64 = .min
        var firstSeen: Int
        /// Some row of this query had a `username`: it is a users query (an empty snapshot alone cannot tell).
        var sawUsername = false

        init(firstSeen: Int) { self.firstSeen = firstSeen }

        mutating func reset() {
            rows.removeAll(keepingCapacity: true)
            index = nil
            live = 0
        }

        mutating func add(_ row: Row) {
            index?[RowKey(row), default: []].append(rows.count)
            rows.append(row)
            live += 1
        }

        mutating func remove(_ row: Row) {
            if index == nil {
                var built: [RowKey: [Int]] = [:]
                for (i, r) in rows.enumerated() { if let r { built[RowKey(r), default: []].append(i) } }
                index = built
            }
            let k = RowKey(row)
            // A removal of a row added before this log began is normal after rotation.
            guard var slots = index?[k], let slot = slots.popLast() else { return }
            index?[k] = slots.isEmpty ? nil : slots
            rows[slot] = nil
            live -= 1
        }
    }

    /// A row's canonical content, hashed as one block of bytes.
    private struct RowKey: Hashable {
        let bytes: [UInt8]
        init(_ row: Row) { bytes = OsquerydLog.key(row) }
        func hash(into hasher: inout Hasher) { bytes.withUnsafeBytes { hasher.combine(bytes: $0) } }
    }

    private struct HostState {
        var queries: [String: QueryState] = [:]
        var queryOrder: [String] = []
    }

    /// Canonical content of a row: members sorted by name, each name and value as written.
    static func key(_ row: Row) -> [UInt8] {
        let doc = row.doc
        func bytes(_ t: JSONText) -> UnsafeBufferPointer<UInt8> {
            UnsafeBufferPointer(rebasing: doc.buf[t.start..<max(t.start, t.end)])
        }
        let members = doc.members(row.object).sorted { bytes($0.key).lexicographicallyPrecedes(bytes($1.key)) }
        var out: [UInt8] = []
        out.reserveCapacity(256)
        for m in members {
            out.append(contentsOf: bytes(m.key))
            out.append(1)
            switch m.value {
            case .string(let t): out.append(UInt8(ascii: "s")); out.append(contentsOf: bytes(t))
            case .number(let t): out.append(UInt8(ascii: "n")); out.append(contentsOf: bytes(t))
            case .bool(let v): out.append(v ? UInt8(ascii: "T") : UInt8(ascii: "F"))
            case .null: out.append(UInt8(ascii: "z"))
            case .object, .array: out.append(UInt8(ascii: "o"))
            }
            out.append(2)
        }
        return out
    }

    static func read(_ records: [Row], into b: inout ReportBuilder) {
        var hosts: [String: HostState] = [:]
        var hostOrder: [String] = []
        var nonUserQueries: Set<String> = []
        var sequence = 0

        for record in records {
            let at = Position.offset(record.offset)
            // Which host. Old wiki examples say "hostname"; osquery itself writes hostIdentifier.
            let host: String
            switch record["hostIdentifier"] ?? record["hostname"] {
            case .string(let t)? where !record.doc.isEmpty(t): host = record.text(t)
            case nil, .string?, .null?:
                b.fileError(at: at, "result record has no 'hostIdentifier': cannot tell which device it belongs to")
                continue
            case let other?:
                b.fileError(at: at, "field 'hostIdentifier' must be a string, found \(other.kindName)")
                continue
            }
            let queryName: String
            switch record["name"] {
            case .string(let t)?: queryName = record.text(t)
            case nil, .null?: queryName = ""
            case let other?:
                b.error(device: host, at: at, "field 'name' must be a string, found \(other.kindName)")
                continue
            }
            if nonUserQueries.contains(queryName) { continue }

            // The rows this record carries, and what to do with them.
            enum Form { case snapshot, batch, event(String) }
            let form: Form
            var added: [Row] = []
            var removed: [Row] = []
            do throws(FieldError) {
                if let snapshot = record["snapshot"] {
                    form = .snapshot
                    added = try objects(record.doc, snapshot, "snapshot")
                } else if let diff = record["diffResults"] {
                    guard case .object(let d) = diff else {
                        throw FieldError(message: "field 'diffResults' must be an object, found \(diff.kindName)")
                    }
                    form = .batch
                    let diff = Row(doc: record.doc, object: d)
                    if let a = diff["added"] { added = try objects(record.doc, a, "diffResults.added") }
                    if let r = diff["removed"] { removed = try objects(record.doc, r, "diffResults.removed") }
                } else if let columns = record["columns"] {
                    guard case .object(let row) = columns else {
                        throw FieldError(message: "field 'columns' must be an object, found \(columns.kindName)")
                    }
                    guard case .string(let actionText)? = record["action"] else {
                        throw FieldError(message: "event record has no 'action' string")
                    }
                    let action = record.text(actionText)
                    switch action {
                    case "added", "snapshot": added = [Row(doc: record.doc, object: row)]
                    case "removed": removed = [Row(doc: record.doc, object: row)]
                    default: throw FieldError(message: "unknown action \(Fields.quoted(action)) (expected added, removed or snapshot)")
                    }
                    form = .event(action)
                } else {
                    b.warn(device: host, at: at, "record is not a query result (no snapshot, diffResults or columns); skipped")
                    continue
                }
            } catch {
                b.error(device: host, at: at, error.message)
                continue
            }

            // Rows of other scheduled queries (processes, ...) share the log: skip them.
            let rows = added + removed
            if !rows.isEmpty && !rows.contains(where: { $0.has("username") }) {
                nonUserQueries.insert(queryName)
                if let state = hosts[host]?.queries[queryName], state.live > 0 {
                    b.error(device: host, at: at, "query '\(queryName)' has rows without 'username' after users rows")
                    continue
                }
                hosts[host]?.queries[queryName] = nil
                b.warn(at: at, "query '\(queryName)' is not on the users table (its rows have no 'username'); its records are skipped")
                continue
            }
            if let bad = rows.first(where: { !$0.has("username") }) {
                b.error(device: host, at: .offset(bad.offset), "row has no 'username' field")
                continue
            }

            let run: Run
            do throws(FieldError) {
                guard let time = try record.integer("unixTime") else {
                    throw FieldError(message: "result record has no 'unixTime'")
                }
                run = Run(unixTime: time, epoch: try record.integer("epoch"), counter: try record.integer("counter"))
            } catch {
                b.error(device: host, at: at, error.message)
                continue
            }

            if hosts[host] == nil {
                hosts[host] = HostState()
                hostOrder.append(host)
                b.touch(host)
            }
            b.noteTime(run.unixTime, device: host)
            guard var host_ = hosts[host] else { continue }
            if host_.queries[queryName] == nil {
                host_.queries[queryName] = QueryState(firstSeen: sequence)
                host_.queryOrder.append(queryName)
                sequence += 1
            }
            guard var state = host_.queries[queryName] else { continue }
            let isFirst = state.lastRun == nil
            let newRun = state.lastRun != run
            if let last = state.lastRun, let e1 = last.epoch, let e2 = run.epoch, e1 != e2 {
                // A new epoch: the state before it no longer counts until a baseline comes.
                state.reset()
                state.hasBaseline = false
            }
            switch form {
            case .snapshot:
                state.reset()
                state.hasBaseline = true
            case .batch:
                if run.counter == 0 || (isFirst && run.counter == nil) {
                    state.reset()
                    state.hasBaseline = true
                }
            case .event(let action):
                if action == "snapshot" {
                    if newRun || state.lastAction != "snapshot" { state.reset() }
                    state.hasBaseline = true
                } else if (run.counter == 0 && newRun) || (isFirst && run.counter == nil) {
                    state.reset()
                    state.hasBaseline = true
                }
            }
            if !rows.isEmpty { state.sawUsername = true }
            for row in removed { state.remove(row) }
            for row in added { state.add(row) }
            state.lastRun = run
            if case .event(let action) = form { state.lastAction = action } else { state.lastAction = nil }
            state.lastTime = max(state.lastTime, run.unixTime)
            host_.queries[queryName] = state
            hosts[host] = host_
        }

        for host in hostOrder {
            guard let h = hosts[host] else { continue }
            // Several users queries on one host: the most recent one first; a name another
            // query already gave is not a duplicate on the device, only the same account twice.
            var states = h.queryOrder.compactMap { name in h.queries[name].map { (name, $0) } }
                .sorted { $0.1.lastTime != $1.1.lastTime ? $0.1.lastTime > $1.1.lastTime : $0.1.firstSeen < $1.1.firstSeen }
            // Queries that only ever logged empty results may be other tables: ignore them
            // when the host has a query that certainly is the users table.
            if states.contains(where: { $0.1.sawUsername }) { states.removeAll { !$0.1.sawUsername } }
            if states.isEmpty { continue }
            var taken: Set<String> = []
            var failed = false
            for (name, state) in states where !state.hasBaseline {
                let label = name.isEmpty ? "the users query" : "query '\(name)'"
                b.error(device: host, at: nil, "results of \(label) for host '\(host)' are differential and never show a "
                    + "full baseline (a snapshot, or a run with counter 0): the log cannot list every account "
                    + "(use a snapshot query, or keep the log since the agent started)")
                failed = true
            }
            if failed { continue }
            b.reserve(states.reduce(0) { $0 + $1.1.live }, device: host)
            // One query (the usual case): no name is taken by another.
            let several = states.count > 1
            for (_, state) in states {
                var mine: Set<String> = []
                for case let row? in state.rows {
                    do throws(FieldError) {
                        let columns = OsqueryColumns(row)
                        guard let account = try OsqueryRows.account(columns, doc: row.doc) else {
                            b.warn(device: host, at: .offset(row.offset), "row with an empty username skipped")
                            continue
                        }
                        if several {
                            let folded = Folding.fold(account.name)
                            if taken.contains(folded) { continue }
                            mine.insert(folded)
                        }
                        if columns.isHidden != nil { b.hint(.macos, weight: 20, device: host) }
                        b.add(account, device: host, at: .offset(row.offset))
                    } catch {
                        b.error(device: host, at: .offset(row.offset),
                                JSONReports.rowMessage(row.optionalString("username"), error))
                    }
                }
                taken.formUnion(mine)
            }
        }
    }

    private static func objects(_ doc: JSONDocument, _ v: JSONValue, _ field: String) throws(FieldError) -> [Row] {
        guard case .array(let a) = v else {
            throw FieldError(message: "field '\(field)' must be an array, found \(v.kindName)")
        }
        let elements = doc.elements(a)
        var out: [Row] = []
        out.reserveCapacity(elements.count)
        for e in elements {
            guard case .object(let o) = e else {
                throw FieldError(message: "field '\(field)' must hold objects, found \(e.kindName)")
            }
            out.append(Row(doc: doc, object: o))
        }
        return out
    }
}
