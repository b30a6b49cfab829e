// osqueryi --json (and JumpCloud) users arrays read straight from the bytes, without
// building the JSON tree.
//
// Most report files are `osqueryi --json "select * from users"`: an array of flat objects
// whose values are strings. For exactly that shape the columns of each row are picked up as
// the text is scanned (`OsqueryColumns.take`, the table the tree path fills from a row), and
// the rows go to the same `JSONReports.readOsqueryRows` (or `readJumpCloud`). Anything else
// -- an empty array, an element that is not an object, a member name with an escape, a
// nested value, a first row that another format would claim, any syntax error, text after
// the array -- gives up, and the caller parses the document as a tree, which writes every
// message as it always has.

/// One osquery users row: the columns `OsqueryRows.account` reads, and where its object starts.
struct OsqueryRow {
    var columns: OsqueryColumns
    var offset: Int
}

/// The two formats whose arrays `JSONParser.osqueryRows` reads.
enum OsqueryArrayKind {
    case osqueryRows, jumpCloud
}

extension JSONParser {
    /// Most members one array may hold here: past it the tree path decides (its stores are
    /// indexed by Int32 and report a file with too many values).
    static let fastPathMaxMembers = 1 << 28

    /// At the '[' of a document: fills `rows` (emptied first) with the rows of an osqueryi
    /// or JumpCloud users array when the text is exactly an array of one or more objects,
    /// each with members named without escapes whose values are strings, numbers, booleans
    /// or null, the first object having `username` and none of `snapshot`, `diffResults`,
    /// `columns`, and nothing but whitespace after the array. The answer is the format
    /// `JSONReports.classify` gives the first row (JumpCloud when it has `system_id`): the
    /// tree path would read these very rows in that format. nil otherwise, with the
    /// position anywhere: the caller seeks back.
    mutating func osqueryRows(into rows: inout [OsqueryRow]) -> OsqueryArrayKind? {
        rows.removeAll(keepingCapacity: true)
        // The array is level 1 and its objects level 2 (deeper input is the tree's error).
        guard maxDepth >= 2, current == UInt8(ascii: "[") else { return nil }
        do throws(JSONParseError) {
            guard try scanOsqueryRows(into: &rows), let first = rows.first?.columns else { return nil }
            return first.systemID != nil ? .jumpCloud : .osqueryRows
        } catch {
            return nil
        }
    }

    private mutating func scanOsqueryRows(into rows: inout [OsqueryRow]) throws(JSONParseError) -> Bool {
        position += 1
        var members = 0
        while true {
            skipWhitespace()
            guard current == UInt8(ascii: "{") else { return false }
            let offset = position
            position += 1
            var columns = OsqueryColumns()
            let first = rows.isEmpty
            var otherFormat = false
            skipWhitespace()
            if current == UInt8(ascii: "}") {
                position += 1
            } else {
                while true {
                    skipWhitespace()
                    guard current == UInt8(ascii: "\"") else { return false }
                    let key = try parseString()
                    guard !key.hasEscapes else { return false }
                    skipWhitespace()
                    guard current == UInt8(ascii: ":") else { return false }
                    position += 1
                    skipWhitespace()
                    guard let c = current else { return false }
                    let value: JSONValue
                    switch c {
                    case UInt8(ascii: "\""): value = .string(try parseString())
                    case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): value = .number(try parseNumber())
                    case UInt8(ascii: "t"): try literal("true"); value = .bool(true)
                    case UInt8(ascii: "f"): try literal("false"); value = .bool(false)
                    case UInt8(ascii: "n"): try literal("null"); value = .null
                    default: return false
                    }
                    let name = UnsafeBufferPointer(rebasing: buf[key.start..<key.end])
                    columns.take(name, value)
                    if first && Self.claimedByAnotherFormat(name) { otherFormat = true }
                    members += 1
                    skipWhitespace()
                    guard let b = current else { return false }
                    position += 1
                    if b == UInt8(ascii: ",") { continue }
                    if b == UInt8(ascii: "}") { break }
                    return false
                }
            }
            if first && (otherFormat || columns.username == nil) { return false }
            rows.append(OsqueryRow(columns: columns, offset: offset))
            guard members + rows.count < Self.fastPathMaxMembers else { return false }
            skipWhitespace()
            guard let b = current else { return false }
            position += 1
            if b == UInt8(ascii: ",") { continue }
            if b == UInt8(ascii: "]") { break }
            return false
        }
        skipWhitespace()
        return atEnd
    }

    /// A member whose presence in the first row can make `JSONReports.classify` answer an
    /// osqueryd log (with `system_id` and `username` it answers JumpCloud: `columns.systemID`).
    private static func claimedByAnotherFormat(_ k: UnsafeBufferPointer<UInt8>) -> Bool {
        switch k.count {
        case 7: return OsqueryColumns.equal(k, "columns")
        case 8: return OsqueryColumns.equal(k, "snapshot")
        case 11: return OsqueryColumns.equal(k, "diffResults")
        default: return false
        }
    }
}
