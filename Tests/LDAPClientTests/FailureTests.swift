import Foundation
import LDAPClient
import Testing

/// Servers that die, hang or restart. Each test runs its own private slapd, so the shared
/// one survives.
@Suite("lost servers", .enabled(if: serverConfigured, "needs TB_TEST_ENV (run scripts/test.sh)"))
struct FailureTests {
    @Test func serverKilledMidSearchIsAConnectionLostError() async throws {
        try await withPrivateServer { server in
            try seedPeople(server, base: server.peopleBase, count: 3_000)
            let connection = try await server.connect(as: .bind)
            var handled = 0
            let error = await expectLDAPError {
                _ = try await connection.search(base: server.peopleBase, scope: .one, filter: "(uid=*)", attributes: ["uid"], pageSize: 500) { _ in
                    handled += 1
                    if handled == 100 { server.kill() }
                }
            }
            #expect(error?.isConnectionLost == true)
            #expect(error?.code == .serverDown)
            #expect(error?.operation == .search)
            #expect(handled < 3_000)
            // The process is still here, and the dead connection keeps saying so.
            let next = await expectLDAPError { _ = try await connection.whoAmI() }
            #expect(next?.isConnectionLost == true)
            await connection.close()
        }
    }

    @Test func serverKilledMidPipelineNamesTheFirstUnknownRequest() async throws {
        try await withPrivateServer { server in
            let root = try await server.connect(as: .root)
            let groups = (0..<20).map { "cn=g\($0),\(server.bindingsBase)" }
            for (index, group) in groups.enumerated() {
                try await root.add(dn: group, attributes: [("objectClass", ["groupOfNames"]), ("cn", ["g\(index)"]), ("member", [server.bindDN])])
            }
            let requests = (0..<20_000).map {
                ModifyRequest(dn: groups[$0 % groups.count], modifications: [Modification(.add, "member", ["uid=u\($0),\(server.peopleBase)"])])
            }
            // Kill the server once the first group holds `threshold` new members:
            // mid-pipeline, whatever the machine's speed (low, so that a watcher starved
            // of CPU on a loaded machine still fires long before the pipeline ends).
            let threshold = 20
            let watcher = try await server.connect(as: .root)
            let killer = Task {
                while true {
                    let members = try await watcher.read(dn: groups[0], attributes: ["member"])?.values("member").count ?? 0
                    if members > threshold { server.kill(); return }
                    try await Task.sleep(for: .milliseconds(5))
                }
            }
            let error = await expectLDAPError { _ = try await root.modifyPipelined(requests, window: 64) }
            killer.cancel()
            _ = await killer.result
            await watcher.close()
            #expect(error?.isConnectionLost == true)
            let index = try #require(error?.firstUnknownIndex)
            // The server had applied ~threshold x 20 when the watcher saw it; replies for up to a
            // window's worth may not have reached the client.
            #expect(index >= threshold * groups.count - 64 - 20 && index < requests.count)
            #expect(error?.description.contains("outcome unknown from request #\(index)") == true)
            // Every answer received is handed back; the first unknown one is nil.
            let partial = try #require(error?.partialResults)
            #expect(partial.count == requests.count)
            #expect(partial[..<index].allSatisfy { $0 != nil })
            #expect(partial[index] == nil)
            await root.close()

            // After a restart, everything before the index is there; the rest can be
            // replayed and reports "already done" where it had been applied.
            let restarted = try server.restart()
            let again = try await restarted.connect(as: .root)
            func memberCount() async throws -> Int {
                var total = 0
                _ = try await again.search(base: server.bindingsBase, scope: .one, filter: "(objectClass=groupOfNames)", attributes: ["member"]) {
                    total += $0.values("member").count - 1 // not the bind DN
                }
                return total
            }
            #expect(try await memberCount() >= index)
            let replay = try await again.modifyPipelined(Array(requests[index...]), window: 64)
            #expect(replay.allSatisfy { result in
                if case .failure(let error) = result { return error.isAlreadyDone }
                return true
            })
            #expect(try await memberCount() == requests.count)
            await again.close()
        }
    }

    @Test func aHungServerTimesOut() async throws {
        try await withPrivateServer { server in
            let connection = try await server.connect(as: .bind, timeout: 1)
            let pid = try #require(server.pid)
            #expect(kill(pid, SIGSTOP) == 0)
            // SIGSTOP is delivered asynchronously: wait until every thread of slapd is
            // stopped, so that a loaded machine cannot answer the search in between.
            #expect(waitUntilStopped(pid), "slapd \(pid) did not stop")
            let started = ContinuousClock.now
            let error = await expectLDAPError {
                _ = try await connection.search(base: server.base, scope: .sub, filter: "(objectClass=*)", attributes: []) { _ in }
            }
            let elapsed = ContinuousClock.now - started
            kill(pid, SIGCONT)
            #expect(error?.code == .timeout)
            #expect(error?.isConnectionLost == true)
            #expect(error?.message == "Timed out")
            #expect(elapsed < .seconds(10))
            await connection.close()
        }
    }

    @Test func restartKeepsDataAndPorts() async throws {
        try await withPrivateServer { server in
            let root = try await server.connect(as: .root)
            try await root.add(dn: "cn=keep,\(server.bindingsBase)", attributes: [("objectClass", ["groupOfNames"]), ("cn", ["keep"]), ("member", [server.bindDN])])
            await root.close()
            let oldPid = server.pid
            let restarted = try server.restart()
            #expect(restarted.pid != oldPid)
            #expect(restarted.ldapURI == server.ldapURI)
            let again = try await restarted.connect(as: .bind)
            #expect(try await again.read(dn: "cn=keep,\(server.bindingsBase)") != nil)
            await again.close()
        }
    }
}

/// True once /proc says every thread of `pid` is stopped (state T), within 5 s.
private func waitUntilStopped(_ pid: Int32) -> Bool {
    for _ in 0..<500 {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        let states = tasks.compactMap { task -> Character? in
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return nil }
            return stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).first
        }
        if !states.isEmpty && states.allSatisfy({ $0 == "T" || $0 == "t" }) { return true }
        usleep(10_000)
    }
    return false
}
