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
            if changes[start].op != .addEntry {
                while end < changes.endIndex, changes[end].op != .addEntry, changes[end].dn == changes[start].dn,
                      changes[end].subject == changes[start].subject {
                    end += 1
                }
            }
            out.append(changes[start..<end])
            start = end
        }
        return out
    }

    /// LDIF for `ldapmodify`: `changetype: add` blocks for new entries and one
    /// `changetype: modify` block per operation, each block ending in a blank line.
    public static func render(_ changes: [Change]) -> String {
        var out = ""
        for operation in operations(changes) {
            guard let first = operation.first else { continue }
            out += LDIF.line("dn", first.dn)
            if first.op == .addEntry {
                out += "changetype: add\n"
                for attribute in first.attributes {
                    for value in attribute.values { out += LDIF.line(attribute.name, value) }
                }
            } else {
                out += "changetype: modify\n"
                for change in operation {
                    let verb = (change.op == .addMember || change.op == .addRecord) ? "add" : "delete"
                    out += "\(verb): \(change.attribute)\n"
                    for value in change.values { out += LDIF.line(change.attribute, value) }
                    out += "-\n"
                }
            }
            out += "\n"
        }
        return out
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

