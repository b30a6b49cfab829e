// Ranged attribute retrieval (Active Directory's MaxValRange, MS-ADTS 3.1.1.3.1.3.3): a
// server may answer a large value list as `member;range=0-1499` and hand out the rest
// only when asked for `member;range=1500-*`. Every search follows such lists to the end
// (`LDAPConnection.search(followRanges:)`); a list that cannot be read whole is left out
// of the entry and named in `LDAPEntry.incompleteAttributes`, never shortened.

import LDAPSyntax

/// An attribute description carrying a `range=low-high` option.
public struct RangeOption: Sendable, Hashable {
    /// The attribute description without the range option (type and other options).
    public var type: String
    public var low: Int
    /// nil for `*`: the last slice.
    public var high: Int?

    public init(type: String, low: Int, high: Int?) {
        self.type = type
        self.low = low
        self.high = high
    }

    /// How an attribute description reads.
    public enum Parsed: Sendable, Hashable {
        /// No range option.
        case plain
        case ranged(RangeOption)
        /// A range option that is not `range=N-M` or `range=N-*` (the text says why).
        case malformed(type: String, reason: String)
    }

    /// Parses `type[;option...]`; the `range=` option is matched case-insensitively.
    public static func parse(_ description: String) -> Parsed {
        guard description.utf8.contains(UInt8(ascii: ";")) else { return .plain }
        let parts = description.split(separator: ";", omittingEmptySubsequences: false)
        var kept: [Substring] = []
        var range: Substring?
        for (index, part) in parts.enumerated() {
            if index > 0, part.count >= 6, String(part.prefix(6)).caseInsensitiveEquals("range=") {
                if range != nil { return .malformed(type: description, reason: "two range options") }
                range = part.dropFirst(6)
            } else {
                kept.append(part)
            }
        }
        guard let range else { return .plain }
        let type = kept.joined(separator: ";")
        guard let dash = range.firstIndex(of: "-") else {
            return .malformed(type: type, reason: "range '\(range)' has no '-'")
        }
        let lowText = range[..<dash], highText = range[range.index(after: dash)...]
        guard let low = decimal(lowText) else { return .malformed(type: type, reason: "range '\(range)' has no start") }
        if highText == "*" { return .ranged(RangeOption(type: type, low: low, high: nil)) }
        guard let high = decimal(highText) else { return .malformed(type: type, reason: "range '\(range)' has no end") }
        return .ranged(RangeOption(type: type, low: low, high: high))
    }

    /// A non-negative decimal of at most 9 digits (AD's ranges are int32).
    private static func decimal(_ text: Substring) -> Int? {
        guard !text.isEmpty, text.count <= 9, text.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
        return Int(text)
    }

    /// The description that asks for the values from `low` on: `type;range=low-*`.
    public static func request(type: String, from low: Int) -> String {
        "\(type);range=\(low)-*"
    }
}

/// A multi-valued attribute that could not be read whole: left out of the entry.
public struct IncompleteAttribute: Sendable, Hashable, CustomStringConvertible {
    /// The attribute type (without the range option).
    public var attribute: String
    /// What went wrong, e.g. "the server answered member;range=1400-2899 when asked for values from 1500 on".
    public var reason: String
    /// Values read before it went wrong (none of them are in the entry).
    public var valuesRead: Int

    public init(attribute: String, reason: String, valuesRead: Int) {
        self.attribute = attribute
        self.reason = reason
        self.valuesRead = valuesRead
    }

    public var description: String {
        "\(attribute) could not be read whole (\(valuesRead) values read): \(reason)"
    }
}

extension LDAPEntry {
    /// Whether any attribute description has a `range=` option.
    var hasRangedAttribute: Bool {
        attributes.contains { attribute in
            if case .plain = RangeOption.parse(attribute.name) { return false }
            return true
        }
    }

    /// The problem with `name` when its value list could not be read whole, else nil.
    public func incomplete(_ name: String) -> IncompleteAttribute? {
        incompleteAttributes.first { $0.attribute.caseInsensitiveEquals(name) }
    }
}

/// The most values one ranged list may have; a server that keeps answering beyond this
/// never ends its list.
let maximumRangedValues = 10_000_000

extension LDAPConnection {
    /// Replaces every ranged attribute of `entry` by its whole value list, fetched with
    /// base searches for `type;range=N-*` until a slice ends in `*`. Each slice must start
    /// where the previous one ended, hold exactly `high - low + 1` values unless it is the
    /// last, add no value twice, and come back under the type asked for (matched
    /// case-insensitively; other attributes in the reply are ignored). Otherwise the
    /// attribute is left out and named in `incompleteAttributes`. Throws only when the
    /// connection is lost.
    func completingRanges(_ entry: LDAPEntry) throws(LDAPError) -> LDAPEntry {
        var plain: [(name: String, values: [LDAPValue])] = []
        var ranged: [(option: RangeOption, values: [LDAPValue])] = []
        var incomplete = entry.incompleteAttributes
        for attribute in entry.attributes {
            switch RangeOption.parse(attribute.name) {
            case .plain: plain.append(attribute)
            case .ranged(let option): ranged.append((option, attribute.values))
            case .malformed(let type, let reason):
                incomplete.append(IncompleteAttribute(attribute: type, reason: "the server sent '\(attribute.name)': \(reason)",
                                                      valuesRead: attribute.values.count))
            }
        }
        var complete: [(name: String, values: [LDAPValue])] = []
        var done: [String] = []
        for (option, values) in ranged {
            if done.contains(where: { $0.caseInsensitiveEquals(option.type) }) { continue }
            done.append(option.type)
            let sameType = ranged.filter { $0.option.type.caseInsensitiveEquals(option.type) }
            if sameType.count > 1 {
                incomplete.append(IncompleteAttribute(
                    attribute: option.type, reason: "the server sent \(sameType.count) ranged lists of it in one entry",
                    valuesRead: 0))
                continue
            }
            switch readWhole(dn: entry.dn, first: option, values: values) {
            case .success(let all): complete.append((option.type, all))
            case .failure(let problem):
                if let lost = problem.lost { throw lost }
                incomplete.append(problem.attribute)
            }
        }
        // A ranged list replaces a plain attribute of the same type; an incomplete one removes it.
        let replaced = done + incomplete.map(\.attribute)
        plain.removeAll { attribute in replaced.contains { $0.caseInsensitiveEquals(attribute.name) } }
        var out = LDAPEntry(dn: entry.dn, attributes: plain + complete)
        out.incompleteAttributes = incomplete
        return out
    }

    private struct RangeProblem: Error {
        var attribute: IncompleteAttribute
        var lost: LDAPError?
    }

    private func readWhole(dn: String, first: RangeOption, values firstValues: [LDAPValue]) -> Result<[LDAPValue], RangeProblem> {
        let type = first.type
        func fail(_ reason: String, _ count: Int) -> Result<[LDAPValue], RangeProblem> {
            .failure(RangeProblem(attribute: IncompleteAttribute(attribute: type, reason: reason, valuesRead: count)))
        }
        var all: [LDAPValue] = []
        var seen = Set<LDAPValue>()
        var slice = first
        var sliceValues = firstValues
        var expectedLow = 0
        while true {
            let name = slice.high.map { "\(type);range=\(slice.low)-\($0)" } ?? "\(type);range=\(slice.low)-*"
            if slice.low != expectedLow {
                return fail(expectedLow == 0
                    ? "the first slice, \(name), does not start at 0"
                    : "the server answered \(name) when asked for the values from \(expectedLow) on (a gap or an overlap)",
                    all.count)
            }
            if let high = slice.high {
                if high < slice.low {
                    return fail("the range \(name) does not advance", all.count)
                }
                if sliceValues.count != high - slice.low + 1 {
                    return fail("\(name) holds \(sliceValues.count) values instead of \(high - slice.low + 1)", all.count)
                }
            }
            for value in sliceValues {
                if !seen.insert(value).inserted {
                    return fail("\(name) repeats a value already read (overlapping slices)", all.count)
                }
                all.append(value)
            }
            if all.count > maximumRangedValues {
                return fail("more than \(maximumRangedValues) values: the list never ends", all.count)
            }
            guard let high = slice.high else { return .success(all) }
            expectedLow = high + 1
            let asked = RangeOption.request(type: type, from: expectedLow)
            var reply: LDAPEntry?
            do {
                _ = try search(base: dn, scope: .base, filter: "(objectClass=*)", attributes: [asked], pageSize: 0,
                               followRanges: false) { reply = $0 }
            } catch let error as LDAPError {
                if error.isConnectionLost {
                    return .failure(RangeProblem(attribute: IncompleteAttribute(attribute: type, reason: error.description,
                                                                                valuesRead: all.count), lost: error))
                }
                return fail("asking for \(asked) failed: \(error)", all.count)
            } catch {
                return fail("asking for \(asked) failed: \(error)", all.count)
            }
            guard let reply else { return fail("asking for \(asked) returned no entry", all.count) }
            // The slice of the type asked for; when several come back, the one that starts
            // where asked (the others are judged as a gap or overlap).
            var candidates: [(RangeOption, [LDAPValue])] = []
            for attribute in reply.attributes {
                if case .ranged(let option) = RangeOption.parse(attribute.name), option.type.caseInsensitiveEquals(type) {
                    candidates.append((option, attribute.values))
                }
            }
            guard let next = candidates.first(where: { $0.0.low == expectedLow }) ?? candidates.first else {
                let names = reply.attributes.map(\.name)
                return fail("asking for \(asked) returned \(names.isEmpty ? "no attribute" : names.joined(separator: ", ")) "
                            + "instead of a slice of \(type)", all.count)
            }
            slice = next.0
            sliceValues = next.1
        }
    }
}
