// The one LDIF writer for changes. `plan --format ldif`, `apply` (which groups its LDAP
// operations with `operations`), run records and their undo files all use it, so what
// `plan` shows is exactly what `apply` writes.

import LDAPSyntax

/// The one LDIF writer for changes: plans (`plan --format ldif`), run records and their
/// undo files all use it, so what `plan` shows is exactly what `apply` writes.
public enum ChangeLDIF {
    /// One step of an undo: a modification, or deleting an entry the run created.
    public enum UndoStep: Sendable, Hashable {
        case modify(Change)
        case deleteEntry(dn: String)
    }

    /// The LDAP operations: an add-entry alone, or consecutive modifications with the
    /// same `dn` and `subject` (one atomic modify). Order is preserved.
    public static func operations(_ changes: [Change]) -> [ArraySlice<Change>] {
        var out: [ArraySlice<Change>] = []
        var start = changes.startIndex
        while start < changes.endIndex {
            var end = start + 1
            while end < changes.endIndex, joins(changes[end], operationOf: changes[start]) { end += 1 }
            out.append(changes[start..<end])
            start = end
        }
        return out
    }

    /// Whether `change` belongs to the same LDAP operation as `first` (the operation's first
    /// change, directly before it): both modifications of one entry for one subject.
    @inline(__always)
    static func joins(_ change: Change, operationOf first: Change) -> Bool {
        first.op != .addEntry && change.op != .addEntry && change.dn == first.dn && change.subject == first.subject
    }

    /// LDIF for `ldapmodify`: `changetype: add` blocks for new entries and one
    /// `changetype: modify` block per operation, each block ending in a blank line.
    public static func render(_ changes: [Change]) -> String {
        report(changes).text
    }

    /// `render` as parts to write in order: the operations rendered in parallel parts.
    public static func report(_ changes: [Change], partSize: Int = RenderedReport.partSize) -> RenderedReport {
        let blocks = operations(changes)
        return RenderedReport(pieces: [renderParts(blocks.count, minimumPerPart: partSize) { range in
            var out: [UInt8] = []
            out.reserveCapacity(Change.estimatedBytes(blocks[range].joined()))
            for i in range { append(blocks[i], to: &out) }
            return out
        }])
    }

    /// `render` fed a few changes at a time, as they become known (a run record written
    /// while the directory answers the writes): the same bytes, each operation's block
    /// appended once a later change (or `finish`) shows it complete.
    public struct Stream: Sendable {
        /// The changes of the operation not yet complete (grouped as `operations` does).
        private var open: [Change] = []
        /// Operations rendered so far: `operations(changes).count` once finished.
        public private(set) var operationCount = 0
        /// Changes added so far.
        public private(set) var changeCount = 0

        public init() {}

        public mutating func add(_ changes: some Sequence<Change>, to out: inout [UInt8]) {
            for change in changes {
                changeCount += 1
                if let first = open.first, ChangeLDIF.joins(change, operationOf: first) {
                    open.append(change)
                } else {
                    finish(to: &out)
                    open.append(change)
                }
            }
        }

        /// Appends the operation still open, if any.
        public mutating func finish(to out: inout [UInt8]) {
            guard !open.isEmpty else { return }
            ChangeLDIF.append(open[...], to: &out)
            operationCount += 1
            open.removeAll(keepingCapacity: true)
        }
    }

    /// One operation's block (the changes' fields read in place, not copied).
    private static func append(_ operation: ArraySlice<Change>, to out: inout [UInt8]) {
        guard let first = operation.indices.first else { return }
        LDIF.appendLine("dn", operation[first].dn, to: &out)
        if operation[first].op == .addEntry {
            out.appendUTF8("changetype: add\n")
            for attribute in operation[first].attributes {
                for value in attribute.values { LDIF.appendLine(attribute.name, value, to: &out) }
            }
        } else {
            out.appendUTF8("changetype: modify\n")
            for i in operation.indices {
                let op = operation[i].op
                out.appendUTF8((op == .addMember || op == .addRecord) ? "add: " : "delete: ")
                out.appendUTF8(operation[i].attribute)
                out.append(UInt8(ascii: "\n"))
                for j in operation[i].values.indices { LDIF.appendLine(operation[i].attribute, operation[i].values[j], to: &out) }
                out.appendUTF8("-\n")
            }
        }
        out.append(UInt8(ascii: "\n"))
    }

    /// The changes that undo `changes`, in reverse order: add <-> delete of the same
    /// values, and a created entry deleted.
    public static func inverse(_ changes: [Change]) -> [UndoStep] {
        var out: [UndoStep] = []
        out.reserveCapacity(changes.count)
        for change in changes.reversed() {
            var flipped = change
            switch change.op {
            case .addEntry:
                out.append(.deleteEntry(dn: change.dn))
                continue
            case .addMember: flipped.op = .deleteMember
            case .deleteMember: flipped.op = .addMember
            case .addRecord: flipped.op = .deleteRecord
            case .deleteRecord: flipped.op = .addRecord
            }
            out.append(.modify(flipped))
        }
        return out
    }

    /// LDIF of `inverse(changes)`: `ldapmodify -f` with it restores the directory.
    public static func renderInverse(_ changes: [Change]) -> String {
        renderUndo(inverse(changes))
    }

    /// LDIF of undo steps (modifications grouped as in `render`, deletions as
    /// `changetype: delete`).
    public static func renderUndo(_ steps: [UndoStep]) -> String {
        var out = ""
        var pending: [Change] = []
        for step in steps {
            switch step {
            case .modify(let change):
                pending.append(change)
            case .deleteEntry(let dn):
                out += render(pending)
                pending.removeAll()
                out += LDIF.line("dn", dn) + "changetype: delete\n\n"
            }
        }
        return out + render(pending)
    }
}

