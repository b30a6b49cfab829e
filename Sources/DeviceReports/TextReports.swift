// Text report formats: getent passwd / /etc/passwd, and CSV with a header (RFC 4180).

import LDAPSyntax
import TakeoverCore

/// Lines of UTF-8 text: each without its line ending ("\n" or "\r\n"), with its number.
struct LineCursor {
    let buf: UnsafeBufferPointer<UInt8>
    var position = 0
    var lineNumber = 0

    init(_ buf: UnsafeBufferPointer<UInt8>) { self.buf = buf }

    mutating func next() -> (range: Range<Int>, line: Int)? {
        guard position < buf.count else { return nil }
        let start = position
        var end = start
        while end < buf.count, buf[end] != 0x0A { end += 1 }
        position = end < buf.count ? end + 1 : end
        lineNumber += 1
        var stop = end
        if stop > start, buf[stop - 1] == 0x0D { stop -= 1 }
        return (start..<stop, lineNumber)
    }
}

enum TextReports {
    enum Kind { case passwd, csv }

    /// Decides from the first line that is neither blank nor a '#' comment.
    static func detect(_ text: [UInt8]) -> Kind? {
        text.withUnsafeBufferPointer { buf -> Kind? in
            var lines = LineCursor(buf)
            while let (range, _) = lines.next() {
                let line = buf[range]
                guard let first = line.first(where: { $0 != 0x20 && $0 != 0x09 }) else { continue }
                if first == UInt8(ascii: "#") { continue }
                if Passwd.looksLikeEntry(line) { return .passwd }
                if line.contains(UInt8(ascii: ",")) { return .csv }
                return nil
            }
            return nil
        }
    }

    /// ";" or tab when the first line is a `device;username` style header (European Excel).
    static func csvHeaderWithOtherSeparator(_ text: [UInt8]) -> String? {
        let firstLine = text.prefix { $0 != 0x0A }
        let header = String(decoding: firstLine, as: UTF8.self).lowercased()
        guard header.contains("device"), header.contains("username") else { return nil }
        if header.contains(";") { return ";" }
        if header.contains("\t") { return "tab" }
        return nil
    }

    static func string(_ slice: Slice<UnsafeBufferPointer<UInt8>>) -> String {
        String(decoding: UnsafeBufferPointer(rebasing: slice), as: UTF8.self)
    }
}

// MARK: - passwd

enum Passwd {
    /// `name:password:uid:gid:gecos:home:shell`, or a NIS compat line (`+name::::::`).
    static func looksLikeEntry(_ line: Slice<UnsafeBufferPointer<UInt8>>) -> Bool {
        var colons = 0
        for b in line where b == UInt8(ascii: ":") { colons += 1 }
        guard colons == 6 else { return false }
        if line.first == UInt8(ascii: "+") || line.first == UInt8(ascii: "-") { return true }
        let fields = line.split(separator: UInt8(ascii: ":"), omittingEmptySubsequences: false)
        return fields.count == 7 && Timestamps.parseInteger(fields[2]) != nil
    }

    static func read(_ text: [UInt8], into b: inout ReportBuilder) {
        let device = b.fallbackDevice
        // One account per line at most: room for all of them at once.
        var newlines = 0
        for c in text where c == 0x0A { newlines += 1 }
        b.reserve(newlines + (text.last == 0x0A ? 0 : 1), device: device)
        b.hint(.linux, weight: 1, device: device)
        text.withUnsafeBufferPointer { buf in
            var lines = LineCursor(buf)
            while let (range, number) = lines.next() {
                let line = buf[range]
                guard let first = line.first(where: { $0 != 0x20 && $0 != 0x09 }) else { continue }
                if first == UInt8(ascii: "#") { continue }
                if line.first == UInt8(ascii: "+") || line.first == UInt8(ascii: "-") {
                    b.warn(device: device, at: .line(number), "NIS compat entry skipped")
                    continue
                }
                // Never quote the line itself: the second field may hold a password hash.
                // The seven fields' bounds, without an array per line: fields[k] runs from
                // bounds[k] to bounds[k + 1] - 1 (the colon after it).
                var bounds = (line.startIndex, 0, 0, 0, 0, 0, 0, line.endIndex + 1)
                var colons = 0
                var i = line.startIndex
                while i < line.endIndex {
                    if buf[i] == UInt8(ascii: ":") {
                        colons += 1
                        switch colons {
                        case 1: bounds.1 = i + 1
                        case 2: bounds.2 = i + 1
                        case 3: bounds.3 = i + 1
                        case 4: bounds.4 = i + 1
                        case 5: bounds.5 = i + 1
                        case 6: bounds.6 = i + 1
                        default: break
                        }
                    }
                    i += 1
                }
                guard colons == 6 else {
                    b.error(device: device, at: .line(number),
                            "expected 7 colon-separated fields (name:password:uid:gid:gecos:home:shell), found \(colons + 1)")
                    continue
                }
                let nameField = buf[bounds.0..<bounds.1 - 1], uidField = buf[bounds.2..<bounds.3 - 1]
                let gecos = buf[bounds.4..<bounds.5 - 1], homeField = buf[bounds.5..<bounds.6 - 1]
                let shellField = buf[bounds.6..<bounds.7 - 1]
                let name = TextReports.string(nameField)
                guard !name.isEmpty else {
                    b.error(device: device, at: .line(number), "empty account name")
                    continue
                }
                guard let uid = Timestamps.parseInteger(uidField) else {
                    b.error(device: device, at: .line(number),
                            "account \(Fields.quoted(name)): uid must be an integer, found \(Fields.quoted(TextReports.string(uidField)))")
                    continue
                }
                // GECOS: "Full Name,Room,Work phone,Home phone,Other"; the full name is the first part.
                let nameEnd = gecos.firstIndex(of: UInt8(ascii: ",")) ?? gecos.endIndex
                let fullName = TextReports.string(buf[gecos.startIndex..<nameEnd])
                let home = TextReports.string(homeField)
                let shell = TextReports.string(shellField)
                let ids = UIDs.normalized(uid: uid, uidSigned: nil)
                b.add(LocalAccount(name: name, uid: ids.uid, uidSigned: ids.uidSigned,
                                   home: home.isEmpty ? nil : home, shell: shell.isEmpty ? nil : shell,
                                   fullName: fullName.isEmpty ? nil : fullName),
                      device: device, at: .line(number))
            }
        }
    }
}

// MARK: - CSV

struct CSVError: Error {
    var line: Int
    var message: String
    /// Nothing after this point can be read (an unterminated quote swallows the rest).
    var fatal: Bool
}

/// RFC 4180 records: comma-separated, fields optionally in double quotes ("" is a quote;
/// commas and line breaks allowed inside quotes), CRLF or LF line endings. Unquoted fields
/// lose their surrounding spaces and tabs; quoted fields are kept exactly as written (a
/// device named " kiosk " must be quoted).
struct CSVReader {
    private let buf: UnsafeBufferPointer<UInt8>
    private var position = 0
    private var line = 1
    /// Fields in the last record: room for as many is made at once for the next (records of
    /// one file have the same width; growing an array field by field reallocates it). At
    /// most 64: one very wide record does not make every later one reserve as much.
    private var width = 0

    init(_ buf: UnsafeBufferPointer<UInt8>) { self.buf = buf }

    /// The next record and the line it starts on; nil at the end.
    mutating func next() throws(CSVError) -> (fields: [String], line: Int)? {
        guard position < buf.count else { return nil }
        let startLine = line
        var fields: [String] = []
        fields.reserveCapacity(min(width, 64))
        defer { width = fields.count }
        while true {
            if position < buf.count, buf[position] == UInt8(ascii: "\"") {
                let open = line
                position += 1
                var bytes: [UInt8] = []
                var closed = false
                while position < buf.count {
                    let c = buf[position]
                    position += 1
                    if c == UInt8(ascii: "\"") {
                        if position < buf.count, buf[position] == UInt8(ascii: "\"") {
                            bytes.append(c)
                            position += 1
                            continue
                        }
                        closed = true
                        break
                    }
                    if c == 0x0A { line += 1 }
                    bytes.append(c)
                }
                guard closed else {
                    throw CSVError(line: open, message: "quoted field is never closed (missing '\"')", fatal: true)
                }
                fields.append(String(decoding: bytes, as: UTF8.self))
                if position < buf.count {
                    let c = buf[position]
                    if c != UInt8(ascii: ","), c != 0x0A, c != 0x0D {
                        let badLine = line
                        skipRestOfRecord()
                        throw CSVError(line: badLine, message: "unexpected character after a closing quote (quotes inside a field must be doubled)", fatal: false)
                    }
                }
            } else {
                let start = position
                while position < buf.count {
                    let c = buf[position]
                    if c == UInt8(ascii: ",") || c == 0x0A || c == 0x0D { break }
                    position += 1
                }
                // Spaces around an unquoted field are not part of it; a quoted field is verbatim.
                var from = start
                var to = position
                while from < to, buf[from] == 0x20 || buf[from] == 0x09 { from += 1 }
                while to > from, buf[to - 1] == 0x20 || buf[to - 1] == 0x09 { to -= 1 }
                fields.append(String(decoding: UnsafeBufferPointer(rebasing: buf[from..<to]), as: UTF8.self))
            }
            // After a field: a comma (another field), a line ending or the end (record done).
            guard position < buf.count else { return (fields, startLine) }
            let c = buf[position]
            position += 1
            if c == UInt8(ascii: ",") { continue }
            if c == 0x0D, position < buf.count, buf[position] == 0x0A { position += 1 }
            line += 1
            return (fields, startLine)
        }
    }

    private mutating func skipRestOfRecord() {
        while position < buf.count {
            let c = buf[position]
            position += 1
            if c == 0x0A { line += 1; return }
        }
    }
}

enum CSVReports {
    private enum Column: String, CaseIterable {
        case device, username, uid, uidSigned = "uid_signed", sid, home, fullName = "full_name", shell, hidden
        case reportedAt = "reported_at", platform

        var ordinal: Int {
            switch self {
            case .device: return 0
            case .username: return 1
            case .uid: return 2
            case .uidSigned: return 3
            case .sid: return 4
            case .home: return 5
            case .fullName: return 6
            case .shell: return 7
            case .hidden: return 8
            case .reportedAt: return 9
            case .platform: return 10
            }
        }
    }

    /// Column -> field index, looked up by the column's ordinal (a dictionary keyed by a
    /// String-backed enum hashes the column's name on every row's every read).
    private struct Columns {
        private var index = [Int?](repeating: nil, count: Column.allCases.count)

        subscript(c: Column) -> Int? {
            get { index[c.ordinal] }
            set { index[c.ordinal] = newValue }
        }
    }

    static func read(_ text: [UInt8], into b: inout ReportBuilder) {
        text.withUnsafeBufferPointer { buf in
            var reader = CSVReader(buf)
            var columns = Columns()
            var width = 0
            var haveHeader = false
            // The rows of one device usually carry one reported_at: parsed once.
            var lastTime: (text: String, time: UnixTime)?
            while true {
                let record: (fields: [String], line: Int)
                do throws(CSVError) {
                    guard let r = try reader.next() else { break }
                    record = r
                } catch {
                    b.fileError(at: .line(error.line), error.message)
                    if error.fatal || !haveHeader { return }
                    continue
                }
                let fields = record.fields
                let at = Position.line(record.line)
                if fields.allSatisfy({ $0.allSatisfy { $0 == " " || $0 == "\t" } }) { continue }
                if !haveHeader {
                    if fields[0].hasPrefix("#") { continue }
                    var unknown: [String] = []
                    for (i, raw) in fields.enumerated() {
                        let name = raw.trimmingSpaces.lowercased()
                        guard let column = Column(rawValue: name) else {
                            unknown.append(raw)
                            continue
                        }
                        if columns[column] != nil {
                            b.fileError(at: at, "CSV header names column '\(name)' twice")
                            return
                        }
                        columns[column] = i
                    }
                    guard columns[.device] != nil, columns[.username] != nil else {
                        let found = fields.prefix(8).map { Fields.quoted($0) }.joined(separator: ", ")
                        b.fileError(at: at, "CSV header must name the columns 'device' and 'username' (found \(found)); "
                            + "optional: uid, sid, home, full_name, shell, hidden, reported_at")
                        return
                    }
                    if !unknown.isEmpty {
                        b.warn(at: at, "CSV columns ignored: " + unknown.prefix(8).map { Fields.quoted($0) }.joined(separator: ", "))
                    }
                    width = fields.count
                    haveHeader = true
                    continue
                }
                readRow(fields, width: width, columns: columns, at: at, lastTime: &lastTime, into: &b)
            }
            if !haveHeader { b.fileError(at: nil, "CSV file has no header line") }
        }
    }

    /// `lastTime`: the last reported_at text parsed and its time.
    private static func readRow(_ fields: [String], width: Int, columns: Columns, at: Position,
                                lastTime: inout (text: String, time: UnixTime)?, into b: inout ReportBuilder) {
        /// Names and paths as written (the reader trimmed unquoted fields; quoted ones keep
        /// their spaces); numbers, dates and flags without surrounding spaces. A field of
        /// spaces only is empty.
        func field(_ c: Column) -> String? {
            guard let i = columns[c], i < fields.count else { return nil }
            let v = fields[i]
            let trimmed = v.trimmingSpaces
            if trimmed.isEmpty { return nil }
            switch c {
            case .device, .username, .home, .fullName, .shell: return v
            case .uid, .uidSigned, .sid, .hidden, .reportedAt, .platform: return trimmed
            }
        }
        guard let device = field(.device) else {
            b.fileError(at: at, "row has an empty 'device': cannot tell which device it belongs to")
            return
        }
        guard fields.count == width else {
            b.error(device: device, at: at, "row has \(fields.count) fields, the header has \(width)")
            return
        }
        do throws(FieldError) {
            guard let name = field(.username) else { throw FieldError(message: "row has an empty 'username'") }
            func integer(_ c: Column) throws(FieldError) -> Int64? {
                guard let v = field(c) else { return nil }
                guard let n = Timestamps.parseInteger(ArraySlice(v.utf8)) else {
                    throw FieldError(message: "account \(Fields.quoted(name)): column '\(c.rawValue)' must be an integer, found \(Fields.quoted(v))")
                }
                return n
            }
            var uid = try integer(.uid)
            let uidSigned = try integer(.uidSigned)
            var sid = field(.sid)
            if let s = sid {
                guard s.utf8.starts(with: "S-1-".utf8) || s.utf8.starts(with: "s-1-".utf8) else {
                    throw FieldError(message: "account \(Fields.quoted(name)): column 'sid' is not a SID, found \(Fields.quoted(s))")
                }
                sid = s.uppercased()
                if uid == nil { uid = UIDs.rid(ofSID: s) }
            }
            var hidden = false
            if let h = field(.hidden) {
                guard let v = Fields.parseBool(h) else {
                    throw FieldError(message: "account \(Fields.quoted(name)): column 'hidden' must be 0/1 or true/false, found \(Fields.quoted(h))")
                }
                hidden = v
            }
            if let t = field(.reportedAt) {
                if let last = lastTime, last.text.utf8.elementsEqual(t.utf8) {
                    b.noteTime(last.time, device: device)
                } else {
                    guard let time = Timestamps.parse(t) else {
                        throw FieldError(message: "column 'reported_at' is not a date (ISO 8601 or Unix seconds), found \(Fields.quoted(t))")
                    }
                    lastTime = (t, time)
                    b.noteTime(time, device: device)
                }
            }
            if let p = field(.platform) {
                guard let platform = platformNamed(p) else {
                    throw FieldError(message: "column 'platform' must be linux, macos or windows, found \(Fields.quoted(p))")
                }
                b.force(platform, device: device)
            }
            let ids = UIDs.normalized(uid: uid, uidSigned: uidSigned)
            b.add(LocalAccount(name: name, uid: ids.uid, uidSigned: ids.uidSigned, sid: sid, home: field(.home),
                               shell: field(.shell), fullName: field(.fullName), hidden: hidden),
                  device: device, at: at)
        } catch {
            b.error(device: device, at: at, error.message)
        }
    }

    private static func platformNamed(_ s: String) -> Platform? {
        switch s.lowercased() {
        case "linux": return .linux
        case "macos", "mac", "darwin", "osx": return .macos
        case "windows", "win": return .windows
        default: return nil
        }
    }
}
