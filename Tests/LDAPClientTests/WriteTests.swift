import Foundation
import LDAPClient
import LDAPSyntax
import Testing

@Suite("add, delete, modify, pipelined modify", .enabled(if: serverConfigured, "needs TB_TEST_ENV (run scripts/test.sh)"))
struct WriteTests {
    @Test func addAndDeleteEntriesReportAlreadyDone() async throws {
        try await withBindingsSubtree("ad") { server, ou, bridge in
            let dn = "cn=mbp-alice,\(ou)"
            let attributes: [(String, [String])] = [("objectClass", ["groupOfNames"]), ("cn", ["mbp-alice"]), ("member", [server.bindDN])]
            try await bridge.add(dn: dn, attributes: attributes)
            #expect(try await bridge.read(dn: dn)?.strings("member") == [server.bindDN])

            let again = await expectLDAPError { try await bridge.add(dn: dn, attributes: attributes) }
            #expect(again?.code == .entryAlreadyExists)
            #expect(again?.isAlreadyDone == true)
            #expect(again?.operation == .add)
            #expect(again?.dn == dn)

            try await bridge.delete(dn: dn)
            #expect(try await bridge.read(dn: dn) == nil)
            let gone = await expectLDAPError { try await bridge.delete(dn: dn) }
            #expect(gone?.code == .noSuchObject)
            #expect(gone?.isAlreadyDone == true)
            #expect(gone?.matchedDN == ou)

            // A schema violation is an error, not "done".
            let invalid = await expectLDAPError {
                try await bridge.add(dn: "cn=no-member,\(ou)", attributes: [("objectClass", ["groupOfNames"]), ("cn", ["no-member"])])
            }
            #expect(invalid?.code == .objectClassViolation) // objectClassViolation: groupOfNames MUST member
            #expect(invalid?.isAlreadyDone == false)
            #expect(invalid?.diagnostic?.contains("member") == true)
        }
    }

    @Test func theServiceAccountWritesOnlyUnderBindings() async throws {
        let server = try sharedServer()
        let bridge = try await server.connect(as: .bind)
        let dn = "cn=\(uniqueName("nope")),\(server.peopleBase)"
        let error = await expectLDAPError {
            try await bridge.add(dn: dn, attributes: [("objectClass", ["groupOfNames"]), ("cn", ["x"]), ("member", [server.bindDN])])
        }
        #expect(error?.code == .insufficientAccessRights) // insufficientAccess
        #expect(error?.isAlreadyDone == false)
        let modify = await expectLDAPError {
            try await bridge.modify(dn: server.peopleBase, [Modification(.add, "description", ["x"])])
        }
        #expect(modify?.code == .insufficientAccessRights)
        await bridge.close()
    }

    @Test func valueAddAndDeleteReportExistsAndMissing() async throws {
        try await withBindingsSubtree("mod") { server, ou, bridge in
            let group = "cn=dev1,\(ou)"
            let alice = "uid=alice,\(server.peopleBase)"
            let bob = "uid=bob,\(server.peopleBase)"
            try await bridge.add(dn: group, attributes: [("objectClass", ["groupOfNames"]), ("cn", ["dev1"]), ("member", [alice])])

            try await bridge.modify(dn: group, [Modification(.add, "member", [bob])])
            let exists = await expectLDAPError { try await bridge.modify(dn: group, [Modification(.add, "member", [bob])]) }
            #expect(exists?.code == .attributeOrValueExists)
            #expect(exists?.isAlreadyDone == true)
            #expect(exists?.operation == .modify)
            #expect(exists?.dn == group)

            try await bridge.modify(dn: group, [Modification(.delete, "member", [bob])])
            let missing = await expectLDAPError { try await bridge.modify(dn: group, [Modification(.delete, "member", [bob])]) }
            #expect(missing?.code == .noSuchAttribute)
            #expect(missing?.isAlreadyDone == true)

            // A value that exists in another spelling (DN matching) is the same value.
            let spelled = await expectLDAPError {
                try await bridge.modify(dn: group, [Modification(.add, "member", ["UID=Alice, OU=People, DC=Example, DC=Org"])])
            }
            #expect(spelled?.code == .attributeOrValueExists)

            // Several values in one modification: atomic, so not classified as done.
            let mixed = await expectLDAPError { try await bridge.modify(dn: group, [Modification(.add, "member", [alice, bob])]) }
            #expect(mixed?.code == .attributeOrValueExists)
            #expect(mixed?.isAlreadyDone == false)
            #expect(try await bridge.read(dn: group)?.strings("member") == [alice]) // bob was not added

            // The last member cannot be deleted from a groupOfNames: a real error.
            let last = await expectLDAPError { try await bridge.modify(dn: group, [Modification(.delete, "member", [alice])]) }
            #expect(last?.code == .objectClassViolation)
            #expect(last?.isAlreadyDone == false)

            // Modify of a missing entry.
            let noEntry = await expectLDAPError { try await bridge.modify(dn: "cn=ghost,\(ou)", [Modification(.add, "member", [bob])]) }
            #expect(noEntry?.code == .noSuchObject)
            #expect(noEntry?.isAlreadyDone == false)
        }
    }

    @Test func pipelinedModifiesReturnOneResultPerRequestInOrder() async throws {
        try await withBindingsSubtree("pipe") { server, ou, bridge in
            let groups = (0..<10).map { "cn=g\($0),\(ou)" }
            for group in groups {
                try await bridge.add(dn: group, attributes: [("objectClass", ["groupOfNames"]), ("cn", [String(group.dropFirst(3).prefix { $0 != "," })]), ("member", [server.bindDN])])
            }
            // 2,000 member adds spread over the groups, every 100th a duplicate of an earlier one,
            // plus one to a missing entry.
            var requests: [ModifyRequest] = []
            for index in 0..<2_000 {
                let user = index % 100 == 99 ? index - 1 : index
                requests.append(ModifyRequest(dn: groups[user % groups.count],
                                              modifications: [Modification(.add, "member", ["uid=u\(user),\(server.peopleBase)"])]))
            }
            requests.append(ModifyRequest(dn: "cn=missing,\(ou)", modifications: [Modification(.add, "member", ["uid=x,\(server.peopleBase)"])]))
            for window in [1, 64] {
                let results = try await bridge.modifyPipelined(window == 1 ? Array(requests.prefix(50)) : requests, window: window)
                #expect(results.count == (window == 1 ? 50 : requests.count))
                if window == 1 {
                    #expect(results.filter { (try? $0.get()) != nil }.count == 50)
                    continue
                }
                // The first 50 were applied by the window-1 run: all "already done" now. Of
                // each duplicate pair (98, 99), (198, 199)... both are in flight at once and the
                // server applies them in either order: exactly one succeeds, the other is done.
                for (index, result) in results.enumerated() {
                    let request = requests[index]
                    switch result {
                    case .success:
                        #expect(index >= 50 && index < 2_000, "request \(index) succeeded")
                    case .failure(let error):
                        #expect(error.dn == request.dn)
                        if index == 2_000 {
                            #expect(error.code == .noSuchObject)
                            #expect(!error.isAlreadyDone)
                        } else {
                            #expect(index < 50 || index % 100 == 99 || index % 100 == 98, "request \(index): \(error)")
                            #expect(error.isAlreadyDone)
                            #expect(error.code == .attributeOrValueExists)
                        }
                    }
                }
                for pair in stride(from: 98, to: 2_000, by: 100) {
                    let outcomes = [results[pair], results[pair + 1]].map { (try? $0.get()) != nil }
                    #expect(outcomes.filter { $0 }.count == 1, "pair \(pair): \(outcomes)")
                }
            }
            var members = 0
            _ = try await bridge.search(base: ou, scope: .one, filter: "(objectClass=groupOfNames)", attributes: ["member"]) {
                members += $0.values("member").count
            }
            #expect(members == 10 + 2_000 - 20) // the bridge DN in each group, minus 20 duplicates
        }
    }

    @Test func pipelinedAddsAndModifiesMixReturnOneResultPerRequestInOrder() async throws {
        try await withBindingsSubtree("pipeadd") { server, ou, bridge in
            func group(_ name: String, members: [String]) -> (String, [(String, [String])]) {
                ("cn=\(name),\(ou)", [("objectClass", ["groupOfNames"]), ("cn", [name]), ("member", members)])
            }
            let (existing, existingAttributes) = group("existing", members: [server.bindDN])
            try await bridge.add(dn: existing, attributes: existingAttributes)
            // 1,500 new groups, interleaved with member adds to the existing group, one add of
            // the existing group (68, done), one schema violation (65) and one value already there (20).
            var requests: [WriteRequest] = []
            var newGroups: [String] = []
            for index in 0..<1_500 {
                let (dn, attributes) = group("n\(index)", members: ["uid=u\(index),\(server.peopleBase)"])
                newGroups.append(dn)
                requests.append(.add(dn: dn, attributes: attributes))
                if index % 3 == 0 {
                    requests.append(.modify(ModifyRequest(dn: existing, modifications: [Modification(.add, "member", ["uid=m\(index),\(server.peopleBase)"])])))
                }
            }
            let duplicateAdd = requests.count
            requests.append(.add(dn: existing, attributes: existingAttributes))
            let invalidAdd = requests.count
            requests.append(.add(dn: "cn=no-member,\(ou)", attributes: [("objectClass", ["groupOfNames"]), ("cn", ["no-member"])]))
            let presentValue = requests.count
            requests.append(.modify(ModifyRequest(dn: existing, modifications: [Modification(.add, "member", [server.bindDN])])))

            let results = try await bridge.writePipelined(requests, window: 64)
            #expect(results.count == requests.count)
            for (index, result) in results.enumerated() {
                switch (index, result) {
                case (duplicateAdd, .failure(let error)):
                    #expect(error.code == .entryAlreadyExists)
                    #expect(error.isAlreadyDone)
                    #expect(error.operation == .add)
                    #expect(error.dn == existing)
                case (invalidAdd, .failure(let error)):
                    #expect(error.code == .objectClassViolation)
                    #expect(!error.isAlreadyDone)
                    #expect(error.operation == .add)
                case (presentValue, .failure(let error)):
                    #expect(error.code == .attributeOrValueExists)
                    #expect(error.isAlreadyDone)
                    #expect(error.operation == .modify)
                case (_, .success):
                    #expect(index < duplicateAdd, "request \(index) succeeded")
                case (_, .failure(let error)):
                    Issue.record("request \(index) (\(requests[index].dn)) failed: \(error)")
                }
            }
            var found = 0
            _ = try await bridge.search(base: ou, scope: .one, filter: "(objectClass=groupOfNames)", attributes: ["member"]) { entry in
                if entry.dn.lowercased() == existing.lowercased() {
                    #expect(entry.values("member").count == 1 + 500)
                } else {
                    found += 1
                    #expect(entry.values("member").count == 1)
                }
            }
            #expect(found == newGroups.count)

            // Again, window 1: every add is now "already done", every modify too.
            let again = try await bridge.writePipelined(Array(requests.prefix(40)), window: 1)
            #expect(again.count == 40)
            #expect(again.allSatisfy { result in
                if case .failure(let error) = result { return error.isAlreadyDone }
                return false
            })
        }
    }
}
