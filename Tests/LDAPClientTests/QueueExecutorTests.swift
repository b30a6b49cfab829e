import Dispatch
@testable import LDAPClient
import Testing

/// An actor on a `QueueExecutor`, as `LDAPConnection` is.
private actor OnQueue {
    nonisolated let executor = QueueExecutor(label: "QueueExecutorTests")
    nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    func checkFromInside() -> Bool {
        executor.checkIsolated()  // the stdlib's default implementation traps here
        preconditionIsolated()
        return true
    }
}

@Suite("the connection's executor")
struct QueueExecutorTests {
    @Test func checkIsolatedHoldsOnItsOwnQueue() async {
        let probe = OnQueue()
        #expect(await probe.checkFromInside())
    }

    @Test func checkIsolatedTrapsOffItsQueue() async {
        await #expect(processExitsWith: .failure) {
            QueueExecutor(label: "elsewhere").checkIsolated()
        }
    }
}
