// Large values let go on a thread of their own (issue 13). Freeing what a plan of 100,000
// users was made from takes about 0.15 s, one object at a time, on one processor; the run
// need not wait for it, and at the end of a command the process exits without waiting at
// all (the system takes the memory back whole).

import Dispatch
import Synchronization
internal import CHardening

enum Disposal {
    /// Drops `value` on a background thread; with `thenTrim`, gives the freed memory back
    /// to the system after it (`malloc_trim`). The caller must hold no other copy of the
    /// storage for the work to leave its own thread.
    static func release<T: Sendable>(_ value: consuming T, thenTrim: Bool = false) {
        let held = Held(value)
        DispatchQueue.global(qos: .utility).async {
            held.drop()
            if thenTrim { _ = CHardening_release_free_memory() }
        }
    }
}

/// The one reference to a value being let go.
private final class Held<T: Sendable>: Sendable {
    private let value: Mutex<T?>

    init(_ value: consuming T) { self.value = Mutex(value) }

    func drop() { value.withLock { $0 = nil } }
}
