import Dispatch

/// A serial executor backed by one private `DispatchQueue`.
///
/// Why: libldap calls block (network I/O, `ldap_result` waits) and keep per-handle state
/// (`ld_errno`, the message queue), so each `LDAP*` must have exactly one user at a
/// time and must not block Swift's small cooperative thread pool (two threads on the
/// target machines). An actor whose `unownedExecutor` is this queue gets both: the
/// actor's isolation serialises every use of the handle, and the blocking happens on
/// the queue's own thread, never on the pool.
///
/// Safety of `@unchecked Sendable`: the only stored property is a `DispatchQueue`,
/// which is thread-safe; jobs are only ever run on that serial queue.
final class QueueExecutor: SerialExecutor, @unchecked Sendable {
    private let queue: DispatchQueue

    init(label: String) {
        queue = DispatchQueue(label: label, qos: .userInitiated)
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let unownedJob = UnownedJob(job)
        let executor = asUnownedSerialExecutor()
        queue.async {
            unownedJob.runSynchronously(on: executor)
        }
    }

    func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    /// Traps unless the caller runs on this executor's queue. The runtime asks this when
    /// `assumeIsolated` / `preconditionIsolated` run on a thread that is not running one
    /// of this executor's jobs as far as Swift knows (a block the queue runs directly);
    /// the queue is then the ground truth, as for a main-queue executor.
    func checkIsolated() {
        dispatchPrecondition(condition: .onQueue(queue))
    }
}
