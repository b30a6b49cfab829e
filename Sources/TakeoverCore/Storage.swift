import Dispatch
#if canImport(Glibc)
import Glibc
#endif

// The planner's fast storage, in one place, so Planner.swift, Devices.swift and
// Evaluate.swift read rule by rule. What the rules use:
//
// - `parallelChunks` / `parallelArray`: independent per-item work (folding names,
//   normalising DNs, looking members up) split over the cores, each part writing only its
//   own range of the result.
// - `ChunkedOutput.run` with `Sink`: devices decided in parallel chunks, each chunk
//   appending its decisions and changes straight into its region of the final arrays (an
//   upper bound per chunk), the regions then moved together in order, the pages they
//   vacated given back: the output costs what it holds, never a second copy.
// - `MultiIndex`, `QuickFilter`, `IntFilter`: one scan of a device's accounts rules out
//   most of them with a few bit tests before any folding or hashing.
// - `sameBytes`: byte equality of two strings read in place.
// - `permute`: an array put in a computed order by moving its elements, not copying them.
//
// Nothing here knows a rule; every function is exercised by the property tests through
// `Planner.Tuning` (chunk counts, bounds too small, parallel or not: the same plan).

// MARK: - Parallel parts

/// Runs `body` on contiguous parts of `0..<count`, in parallel when there is enough work
/// (at least `minimumPerChunk` items per part), and returns when all are done.
func parallelChunks(_ count: Int, minimumPerChunk: Int, _ body: @Sendable (Range<Int>) -> Void) {
    let chunks = max(1, min(8, count / max(1, minimumPerChunk)))
    if chunks == 1 {
        body(0..<count)
        return
    }
    DispatchQueue.concurrentPerform(iterations: chunks) { c in
        body((count * c / chunks)..<(count * (c + 1) / chunks))
    }
}

/// `[make(0), make(1), ..., make(count - 1)]`, made in parallel parts (`parallelChunks`)
/// straight into the array's storage.
func parallelArray<T>(count: Int, minimumPerChunk: Int, _ make: @Sendable (Int) -> T) -> ContiguousArray<T> {
    ContiguousArray(unsafeUninitializedCapacity: count) { buffer, initialized in
        let base = SharedPointer(buffer.baseAddress)
        parallelChunks(count, minimumPerChunk: minimumPerChunk) { range in
            guard let base = base.pointer else { return }
            for i in range { (base + i).initialize(to: make(i)) }
        }
        initialized = count
    }
}

/// Rearranges `array` so that element `k` is the one that was at `order[k]`, following the
/// permutation's cycles: every element is moved once, none is copied (a struct of strings
/// copied costs a reference count per string, and the original's release later).
/// `order` must hold each index of `array` exactly once.
func permute<T>(_ array: inout ContiguousArray<T>, by order: [Int32]) {
    precondition(order.count == array.count, "permute: the order must have one index per element")
    var placed = [Bool](repeating: false, count: order.count)
    array.withUnsafeMutableBufferPointer { buffer in
        guard let base = buffer.baseAddress else { return }
        for start in 0..<order.count where !placed[start] {
            let first = (base + start).move()
            var j = start
            while true {
                placed[j] = true
                let k = Int(order[j])
                precondition(k >= 0 && k < order.count && (k == start || !placed[k]), "permute: the order is not a permutation")
                if k == start {
                    (base + j).initialize(to: first)
                    break
                }
                (base + j).moveInitialize(from: base + k, count: 1)
                j = k
            }
        }
    }
}

/// A pointer handed to parallel parts; each writes only its own region of it.
private struct SharedPointer<Element>: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Element>?
    init(_ pointer: UnsafeMutablePointer<Element>?) { self.pointer = pointer }
}

// MARK: - Output of parallel chunks, in order

/// Appends into a preallocated, uninitialised region; past its capacity into `overflow`.
struct Sink<Element> {
    let base: UnsafeMutablePointer<Element>?
    let capacity: Int
    private(set) var count = 0
    private(set) var overflow: [Element] = []

    init(base: UnsafeMutablePointer<Element>?, capacity: Int) {
        self.base = base
        self.capacity = base == nil ? 0 : capacity
    }

    mutating func append(_ element: consuming Element) {
        if count < capacity, let base {
            (base + count).initialize(to: element)
            count += 1
        } else {
            overflow.append(element)
        }
    }

    mutating func append<S: Sequence>(contentsOf elements: S) where S.Element == Element {
        for e in elements { append(e) }
    }
}

enum ChunkedOutput {
    /// Runs `work(c, &first, &second)` for every chunk `c` of `bounds` (in parallel when
    /// there are several) and returns what the chunks appended, in chunk order, with what
    /// each returned. `bounds[c]` bounds what chunk `c` appends to each sink: its sinks
    /// are that much of the final arrays, uninitialised, so pages never written are never
    /// touched. A chunk that appends more than its bound (never expected) is still
    /// correct: everything is then gathered again into plain arrays.
    static func run<A, B, Extra>(bounds: [(first: Int, second: Int)],
                                 _ work: @escaping @Sendable (Int, inout Sink<A>, inout Sink<B>) -> Extra)
        -> (first: [A], second: [B], extras: [Extra]) {
        let chunks = bounds.count
        var offsetA = [0], offsetB = [0]
        for bound in bounds {
            offsetA.append(offsetA[offsetA.count - 1] + bound.first)
            offsetB.append(offsetB[offsetB.count - 1] + bound.second)
        }
        let startA = offsetA, startB = offsetB
        let slots = ChunkSlots<(Sink<A>, Sink<B>, Extra)>(count: chunks)
        var extras: [Extra] = []
        extras.reserveCapacity(chunks)
        var spilled: (first: [A], second: [B])?
        var second: [B] = []
        let first = [A](unsafeUninitializedCapacity: startA[chunks]) { bufferA, countA in
            second = [B](unsafeUninitializedCapacity: startB[chunks]) { bufferB, countB in
                let baseA = SharedPointer(bufferA.baseAddress), baseB = SharedPointer(bufferB.baseAddress)
                let one: @Sendable (Int) -> Void = { c in
                    var a = Sink<A>(base: baseA.pointer.map { $0 + startA[c] }, capacity: startA[c + 1] - startA[c])
                    var b = Sink<B>(base: baseB.pointer.map { $0 + startB[c] }, capacity: startB[c + 1] - startB[c])
                    let extra = work(c, &a, &b)
                    slots.store((a, b, extra), at: c)
                }
                if chunks == 1 { one(0) } else { DispatchQueue.concurrentPerform(iterations: chunks, execute: one) }
                let overflowed = (0..<chunks).contains { c in
                    slots.peek(c) { !$0.0.overflow.isEmpty || !$0.1.overflow.isEmpty }
                }
                var a = 0, b = 0
                var gathered: (first: [A], second: [B]) = ([], [])
                for c in 0..<chunks {
                    let (sinkA, sinkB, extra) = slots.take(c)
                    extras.append(extra)
                    if overflowed {
                        // Gathered again in order with plain arrays; the regions are emptied.
                        if let base = baseA.pointer {
                            let region = UnsafeMutableBufferPointer(start: base + startA[c], count: sinkA.count)
                            gathered.first += region
                            _ = region.deinitialize()
                        }
                        gathered.first += sinkA.overflow
                        if let base = baseB.pointer {
                            let region = UnsafeMutableBufferPointer(start: base + startB[c], count: sinkB.count)
                            gathered.second += region
                            _ = region.deinitialize()
                        }
                        gathered.second += sinkB.overflow
                    } else {
                        if let base = baseA.pointer, sinkA.count > 0 { moveDown(base, from: startA[c], to: a, count: sinkA.count) }
                        if let base = baseB.pointer, sinkB.count > 0 { moveDown(base, from: startB[c], to: b, count: sinkB.count) }
                        a += sinkA.count
                        b += sinkB.count
                    }
                }
                if overflowed { spilled = gathered }
                countA = overflowed ? 0 : a
                countB = overflowed ? 0 : b
            }
        }
        if let spilled { return (spilled.first, spilled.second, extras) }
        return (first, second, extras)
    }
}

/// One result slot per chunk. Safe to share: chunk `c` writes slot `c` only, and the slots
/// are read after `concurrentPerform` has returned (which happens-after every iteration).
private final class ChunkSlots<Value>: @unchecked Sendable {
    private let buffer: UnsafeMutableBufferPointer<Value?>

    init(count: Int) {
        buffer = .allocate(capacity: count)
        buffer.initialize(repeating: nil)
    }

    deinit {
        _ = buffer.deinitialize()
        buffer.deallocate()
    }

    func store(_ value: Value, at index: Int) { buffer[index] = value }

    func peek<R>(_ index: Int, _ body: (Value) -> R) -> R {
        guard let value = buffer[index] else { preconditionFailure("chunk \(index) stored no output") }
        return body(value)
    }

    /// The slot's value, emptied (its memory goes as soon as the caller is done with it).
    func take(_ index: Int) -> Value {
        guard let value = buffer[index] else { preconditionFailure("chunk \(index) stored no output") }
        buffer[index] = nil
        return value
    }
}

/// Moves `count` elements from `base[from...]` down to `base[to...]`, then gives the pages
/// the move vacated back to the system, so compacting the chunks never holds two copies.
private func moveDown<T>(_ base: UnsafeMutablePointer<T>, from: Int, to: Int, count: Int) {
    guard from != to else { return }
    (base + to).moveInitialize(from: base + from, count: count)
    let vacatedStart = max(from, to + count)
    if vacatedStart < from + count {
        releasePages(UnsafeMutableRawPointer(base + vacatedStart), UnsafeMutableRawPointer(base + from + count))
    }
}

/// Returns the whole pages inside `[start, end)` to the system (Linux `madvise(MADV_DONTNEED)`);
/// their content must not be needed. Elsewhere a no-op.
private func releasePages(_ start: UnsafeMutableRawPointer, _ end: UnsafeMutableRawPointer) {
    #if canImport(Glibc)
    let page = pageSize
    let lo = (Int(bitPattern: start) + page - 1) / page * page
    let hi = Int(bitPattern: end) / page * page
    if hi > lo, let p = UnsafeMutableRawPointer(bitPattern: lo) {
        _ = madvise(p, hi - lo, MADV_DONTNEED)
    }
    #endif
}

#if canImport(Glibc)
private let pageSize = max(4096, sysconf(Int32(_SC_PAGESIZE)))
#endif

// MARK: - Looking up without hashing

/// Byte equality of two strings (not canonical equivalence), reading them in place.
func sameBytes(_ a: String, _ b: String) -> Bool {
    let count = a.utf8.count
    guard count == b.utf8.count else { return false }
    // One storage shared by both (a connection's device name and its entry's) is equal
    // without reading it; otherwise memcmp, not a generic walk byte by byte.
    let fast = a.utf8.withContiguousStorageIfAvailable { x in
        b.utf8.withContiguousStorageIfAvailable { y -> Bool in
            guard let p = x.baseAddress, let q = y.baseAddress, p != q else { return true }
            return memcmp(p, q, count) == 0
        }
    }
    return (fast ?? nil) ?? a.utf8.elementsEqual(b.utf8)
}

/// Byte equality of two optional strings (both nil counts as equal).
func sameBytes(_ a: String?, _ b: String?) -> Bool {
    guard let a, let b else { return a == nil && b == nil }
    return sameBytes(a, b)
}

/// `derived` when it differs from `original` byte for byte, else `original` itself: a
/// normalised or folded copy that changed nothing shares the original's storage instead
/// of holding its own (a million DNs that are already normal are a million copies less).
func sharing(_ derived: String, _ original: String) -> String {
    sameBytes(derived, original) ? original : derived
}

/// A dictionary from a key to one or more small integers. Up to `linearLimit` entries
/// are kept in one array and found by a scan (no hashing); past that, hashed, allocating
/// only for repeats. Either way `forEach` gives a key's values in insertion order.
struct MultiIndex<Key: Hashable> {
    static var linearLimit: Int { 8 }
    private var small: [(key: Key, value: Int)] = []
    private var first: [Key: Int] = [:]
    private var more: [[Int]] = []

    var isEmpty: Bool { small.isEmpty && first.isEmpty }

    mutating func insert(_ key: Key, _ value: Int) {
        if first.isEmpty {
            if small.count < Self.linearLimit {
                small.append((key, value))
                return
            }
            for e in small { insertHashed(e.key, e.value) }
            small = []
        }
        insertHashed(key, value)
    }

    private mutating func insertHashed(_ key: Key, _ value: Int) {
        guard let v = first[key] else { first[key] = value; return }
        if v >= 0 {
            more.append([v, value])
            first[key] = -more.count
        } else {
            more[-v - 1].append(value)
        }
    }

    func forEach(_ key: Key, _ body: (Int) -> Void) {
        if first.isEmpty {
            for e in small where e.key == key { body(e.value) }
            return
        }
        guard let v = first[key] else { return }
        if v >= 0 { body(v) } else { for x in more[-v - 1] { body(x) } }
    }
}

/// 256 bits: the set of a filter's 8-bit signatures.
struct Bits256 {
    private var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)

    mutating func insert(_ s: Int) {
        let bit = UInt64(1) << UInt64(s & 63)
        switch (s & 255) >> 6 {
        case 0: words.0 |= bit
        case 1: words.1 |= bit
        case 2: words.2 |= bit
        default: words.3 |= bit
        }
    }

    func contains(_ s: Int) -> Bool {
        let bit = UInt64(1) << UInt64(s & 63)
        switch (s & 255) >> 6 {
        case 0: return words.0 & bit != 0
        case 1: return words.1 & bit != 0
        case 2: return words.2 & bit != 0
        default: return words.3 & bit != 0
        }
    }
}

/// A 256-bit filter on (length, first byte, last byte) of folded ASCII keys: most names a
/// device reports are ruled out without folding or hashing them. Never a false negative:
/// raw names that are not ASCII, or any key that is not, always pass.
struct QuickFilter {
    private var bits = Bits256()
    private var all = false
    private(set) var isEmpty = true

    private static func signature<C: Collection>(_ bytes: C) -> Int? where C.Element == UInt8 {
        var count = 0
        var first: UInt8 = 0, last: UInt8 = 0
        for b in bytes {
            if b >= 0x80 { return nil }
            let l = (b &- 0x41 < 26) ? b | 0x20 : b
            if count == 0 { first = l }
            last = l
            count += 1
        }
        return (count &* 131 &+ Int(first) &* 31 &+ Int(last)) & 255
    }

    mutating func insert(folded key: String) {
        isEmpty = false
        guard let s = Self.signature(key.utf8) else { all = true; return }
        bits.insert(s)
    }

    func mayContain<C: Collection>(raw bytes: C) -> Bool where C.Element == UInt8 {
        if isEmpty { return false }
        if all { return true }
        guard let s = Self.signature(bytes) else { return true }
        return bits.contains(s)
    }

    /// `mayContain` for a whole string, reading its UTF-8 in place.
    func mayContain(_ raw: String) -> Bool {
        if isEmpty { return false }
        if all { return true }
        let fast = raw.utf8.withContiguousStorageIfAvailable { buffer -> Bool in
            guard let s = Self.signature(buffer) else { return true }
            return bits.contains(s)
        }
        return fast ?? mayContain(raw: raw.utf8)
    }

    /// `mayContain` for the last path component of `path` ('/' or '\\' separated).
    func mayContainLastComponent(of path: String) -> Bool {
        if isEmpty { return false }
        if all { return true }
        let fast = path.utf8.withContiguousStorageIfAvailable { buffer -> Bool in
            var end = buffer.count
            while end > 0 && (buffer[end - 1] == 0x2F || buffer[end - 1] == 0x5C) { end -= 1 }
            var start = end
            while start > 0 && buffer[start - 1] != 0x2F && buffer[start - 1] != 0x5C { start -= 1 }
            if start == end { return false }
            guard let s = Self.signature(UnsafeBufferPointer(rebasing: buffer[start..<end])) else { return true }
            return bits.contains(s)
        }
        return fast ?? true
    }
}

/// A 256-bit filter on the low byte of integer keys.
struct IntFilter {
    private var bits = Bits256()
    private(set) var isEmpty = true

    mutating func insert(_ key: Int64) {
        isEmpty = false
        bits.insert(Int(truncatingIfNeeded: key) & 255)
    }

    func mayContain(_ key: Int64) -> Bool { bits.contains(Int(truncatingIfNeeded: key) & 255) }
}
