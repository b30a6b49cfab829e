import Foundation
import LDAPClient
import LDAPSyntax
import Testing

struct StopEarly: Error {}

@Suite("paged search, limits", .enabled(if: serverConfigured, "needs TB_TEST_ENV (run scripts/test.sh)"))
struct SearchTests {
    /// 5,200 people read page by page as the non-root service account (unlimited limits),
    /// and the same search as an account with the default limits failing loudly.
    @Test func pagingThousandsAsTheNonRootAccountAndSizeLimitsAsErrors() async throws {
        try await withPrivateServer { server in
            let count = 5_200
            try seedPeople(server, base: server.peopleBase, count: count)

            // Service account: paged, 1000 per page, every entry exactly once.
            let bridge = try await server.connect(as: .bind)
            var seen = Set<String>()
            var duplicates = 0
            var withoutUid = 0
            let result = try await bridge.search(base: server.peopleBase, scope: .one, filter: "(objectClass=posixAccount)",
                                                 attributes: ["uid", "uidNumber"], pageSize: 1000) { entry in
                guard let uid = entry.first("uid") else { withoutUid += 1; return }
                if !seen.insert(uid).inserted { duplicates += 1 }
            }
            #expect(result.entries == count)
            #expect(result.pages == 6) // 5 full pages and one of 200
            #expect(seen.count == count)
            #expect(duplicates == 0)
            #expect(withoutUid == 0)
            #expect(seen.contains("u0") && seen.contains("u5199"))

            // The same account without paging is not limited either (limits clause).
            let unpaged = try await bridge.search(base: server.peopleBase, scope: .one, filter: "(uid=*)", attributes: ["1.1"], pageSize: 0) { _ in }
            #expect(unpaged.entries == count)

            // A client-side size limit is an error after exactly that many entries.
            var handed = 0
            let limited = await expectLDAPError {
                _ = try await bridge.search(base: server.peopleBase, scope: .one, filter: "(uid=*)", attributes: ["uid"],
                                            pageSize: 0, sizeLimit: 10) { _ in handed += 1 }
            }
            #expect(limited?.code == .sizeLimitExceeded)
            #expect(limited?.message == "Size limit exceeded")
            #expect(limited?.operation == .search)
            #expect(handed == 10)
            await bridge.close()

            // An account with the server's default sizelimit (500): paged or not, an error,
            // never a short list that looks complete.
            let reader = try await server.connect(as: .reader)
            for pageSize in [0, 100, 1000] {
                var got = 0
                let error = await expectLDAPError {
                    _ = try await reader.search(base: server.peopleBase, scope: .one, filter: "(uid=*)", attributes: ["uid"],
                                                pageSize: pageSize) { _ in got += 1 }
                }
                #expect(error?.code == .sizeLimitExceeded || error?.code == .adminLimitExceeded, "pageSize \(pageSize): \(String(describing: error))")
                #expect(got <= 500)
            }
            await reader.close()
        }
    }

    @Test func entriesAreHandedOverAsTheyArriveAndTheHandlerCanStop() async throws {
        let server = try sharedServer()
        let ou = try await makeSubtree(server, prefix: "stop")
        try seedPeople(server, base: ou, count: 300)
        let connection = try await server.connect(as: .bind)
        var handled = 0
        do {
            _ = try await connection.search(base: ou, scope: .one, filter: "(uid=*)", attributes: ["uid"], pageSize: 100) { _ in
                handled += 1
                if handled == 7 { throw StopEarly() }
            }
            Issue.record("the handler's error was not rethrown")
        } catch is StopEarly {
            // expected
        }
        #expect(handled == 7)
        // The abandoned search leaves the connection usable.
        let again = try await connection.search(base: ou, scope: .one, filter: "(uid=*)", attributes: ["uid"], pageSize: 100) { _ in }
        #expect(again.entries == 300)
        #expect(again.pages == 3)
        #expect(try await connection.whoAmI() == "dn:\(server.bindDN)")
        await connection.close()
        try await removeSubtree(server, ou)
    }

    /// A page is read whole and the next one asked for before its entries are handed over:
    /// every entry still comes exactly once, in the server's order, and a handler that
    /// stops inside a held page (the next page's request outstanding) leaves the
    /// connection usable.
    @Test func pagesReadAheadKeepOrderAndTheHandlerCanStopInsideAHeldPage() async throws {
        let server = try sharedServer()
        let ou = try await makeSubtree(server, prefix: "ahead")
        try seedPeople(server, base: ou, count: 350)
        let connection = try await server.connect(as: .bind)
        var unpaged: [String] = []
        _ = try await connection.search(base: ou, scope: .one, filter: "(uid=*)", attributes: ["uid"], pageSize: 0) {
            unpaged.append($0.dn)
        }
        for pageSize in [1, 100, 349, 350, 351] {
            var paged: [String] = []
            let result = try await connection.search(base: ou, scope: .one, filter: "(uid=*)", attributes: ["uid"],
                                                     pageSize: pageSize) { paged.append($0.dn) }
            #expect(paged == unpaged, "page size \(pageSize)")
            #expect(result.entries == 350)
            // A last page that is exactly full may be followed by an empty one.
            #expect((350 + pageSize - 1) / pageSize...(350 / pageSize + 1) ~= result.pages, "page size \(pageSize)")
        }
        for stop in [1, 100, 150, 299, 350] {
            var handled = 0
            do {
                _ = try await connection.search(base: ou, scope: .one, filter: "(uid=*)", attributes: ["uid"], pageSize: 100) { _ in
                    handled += 1
                    if handled == stop { throw StopEarly() }
                }
                Issue.record("the handler's error was not rethrown")
            } catch is StopEarly {
                // expected
            }
            #expect(handled == stop)
            let again = try await connection.search(base: ou, scope: .one, filter: "(uid=*)", attributes: ["uid"], pageSize: 100) { _ in }
            #expect(again.entries == 350)
        }
        #expect(try await connection.whoAmI() == "dn:\(server.bindDN)")
        await connection.close()
        try await removeSubtree(server, ou)
    }

    /// Entries larger than the connection's read-ahead buffer, attributes with thousands of
    /// values, values that are not UTF-8, empty values, entries without attributes and many
    /// small entries read the same over plain LDAP, StartTLS and LDAPS (the TLS layer reads
    /// through the read-ahead layer; values are read in place from the message).
    @Test func largeManyValuedAndBinaryEntriesReadTheSameOverEveryTransport() async throws {
        let server = try sharedServer()
        let ou = try await makeSubtree(server, prefix: "big")
        try seedPeople(server, base: ou, count: 600)
        let root = try await server.connect(as: .root)
        let photo = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 0x80) } // far beyond 64 KB, not UTF-8
        try await root.add(dn: "uid=photo,\(ou)", values: [
            ("objectClass", [LDAPValue("inetOrgPerson")]), ("uid", [LDAPValue("photo")]), ("cn", [LDAPValue("Ünïcode Photo")]),
            ("sn", [LDAPValue("P")]), ("jpegPhoto", [LDAPValue(bytes: photo)]),
        ])
        try await root.add(dn: "uid=empty,\(ou)", values: [
            ("objectClass", [LDAPValue("inetOrgPerson")]), ("uid", [LDAPValue("empty")]),
            ("cn", [LDAPValue("E1"), LDAPValue("E2")]), ("sn", [LDAPValue("E")]),
            ("jpegPhoto", [LDAPValue(bytes: [])]),
        ])
        let members = (0..<5_000).map { "uid=m\($0),\(ou)" }
        try await root.add(dn: "cn=many,\(ou)", attributes: [("objectClass", ["groupOfNames"]), ("cn", ["many"]), ("member", members)])
        await root.close()

        func read(_ options: LDAPConnectionOptions) async throws -> [String: [LDAPValue]] {
            let connection = try await LDAPConnection.connect(options)
            try await connection.bind(.simple(dn: server.bindDN, password: server.bindPassword()))
            var entries: [String: [LDAPValue]] = [:]
            let result = try await connection.search(base: ou, scope: .one, filter: "(objectClass=*)",
                                                     attributes: ["uid", "cn", "jpegPhoto", "member"], pageSize: 250) { entry in
                entries[entry.dn] = entry.attributes.flatMap { attribute in [LDAPValue(attribute.name)] + attribute.values }
            }
            #expect(result.entries == 603)
            // No attributes at all ("1.1"): every entry, none with an attribute.
            var bare = 0
            _ = try await connection.search(base: ou, scope: .one, filter: "(objectClass=*)", attributes: ["1.1"], pageSize: 100) { entry in
                #expect(entry.attributes.isEmpty)
                bare += 1
            }
            #expect(bare == 603)
            await connection.close()
            return entries
        }
        let plain = try await read(LDAPConnectionOptions(uri: server.ldapURI))
        #expect(plain.count == 603)
        // An empty value is a value (of zero bytes, and empty text).
        #expect(plain["uid=empty,\(ou)"] == [LDAPValue("uid"), LDAPValue("empty"), LDAPValue("cn"), LDAPValue("E1"), LDAPValue("E2"),
                                             LDAPValue("jpegPhoto"), LDAPValue(bytes: [])])
        let photoEntry = try #require(plain["uid=photo,\(ou)"])
        #expect(photoEntry.contains(LDAPValue(bytes: photo)))
        #expect(photoEntry.contains(LDAPValue("Ünïcode Photo")))
        let group = try #require(plain["cn=many,\(ou)"])
        #expect(Set(group.compactMap(\.string).filter { $0.hasPrefix("uid=m") }) == Set(members))
        #expect(plain["uid=u599,\(ou)"]?.contains(LDAPValue("Person 599")) == true)
        let startTLS = try await read(LDAPConnectionOptions(uri: server.ldapURI, startTLS: true, tlsCACertFile: server.caCert))
        #expect(startTLS == plain)
        let ldaps = try await read(LDAPConnectionOptions(uri: server.ldapsURI, tlsCACertFile: server.caCert))
        #expect(ldaps == plain)
        try await removeSubtree(server, ou)
    }

    @Test func searchErrorsAreThrownNotEmpty() async throws {
        let server = try sharedServer()
        let connection = try await server.connect(as: .bind)
        let missing = "ou=does-not-exist,\(server.base)"
        let error = await expectLDAPError {
            _ = try await connection.search(base: missing, scope: .sub, filter: "(objectClass=*)", attributes: []) { _ in }
        }
        #expect(error?.code == .noSuchObject)
        #expect(error?.dn == missing)
        #expect(error?.matchedDN == server.base)
        let bad = await expectLDAPError {
            _ = try await connection.search(base: server.base, scope: .sub, filter: "(uid=alice", attributes: []) { _ in }
        }
        #expect(bad?.code == .filterError) // filter error
        #expect(bad?.operation == .search)
        #expect(try await connection.read(dn: missing) == nil)
        #expect(try await connection.read(dn: server.bindDN)?.first("cn") == "bridge")
        await connection.close()
    }

    @Test func binaryValuesKeepTheirBytes() async throws {
        let server = try sharedServer()
        let ou = try await makeSubtree(server, prefix: "bin")
        let root = try await server.connect(as: .root)
        let photo: [UInt8] = [0xFF, 0xD8, 0x00, 0x01, 0x00, 0xFE, 0x80, 0x0A, 0x0D, 0x00]
        let dn = "uid=binary,\(ou)"
        try await root.add(dn: dn, values: [
            ("objectClass", [LDAPValue("inetOrgPerson")]), ("uid", [LDAPValue("binary")]), ("cn", [LDAPValue("Bïnary Ünicode")]),
            ("sn", [LDAPValue("B")]), ("jpegPhoto", [LDAPValue(bytes: photo)]),
        ])
        let entry = try #require(try await root.read(dn: dn, attributes: ["jpegPhoto", "cn", "entryUUID"]))
        #expect(entry.values("jpegPhoto") == [LDAPValue(bytes: photo)])
        #expect(entry.values("jpegPhoto").first?.string == nil) // not UTF-8
        #expect(entry.strings("jpegPhoto").isEmpty)
        #expect(entry.first("cn") == "Bïnary Ünicode")
        #expect(entry.first("entryUUID")?.count == 36)
        await root.close()
        try await removeSubtree(server, ou)
    }

    @Test func hostileNamesAreEscapedIntoExactlyOneEntry() async throws {
        let server = try sharedServer()
        let ou = try await makeSubtree(server, under: server.bindingsBase, prefix: "esc")
        let names = ["lab,dc=evil", "Bob's MacBook Pro", "*)(uid=*", "a+b=c", " lead", "trail ", "#hash", "back\\slash",
                     "quote\"d", "semi;colon", "<angle>", "ünï ©ødé", "nul\u{1}ctl", "x)(|(cn=*"]
        let bridge = try await server.connect(as: .bind)
        for name in names {
            let dn = DN(rdns: []).child("cn", name).string + "," + ou
            try await bridge.add(dn: dn, attributes: [("objectClass", ["groupOfNames"]), ("cn", [name]), ("member", [server.bindDN])])
        }
        // Decoy that a broken filter would match too.
        try await bridge.add(dn: "cn=decoy,\(ou)", attributes: [("objectClass", ["groupOfNames"]), ("cn", ["decoy"]), ("member", [server.bindDN])])
        for name in names {
            var found: [LDAPEntry] = []
            _ = try await bridge.search(base: ou, scope: .one, filter: FilterEscaping.equality("cn", name), attributes: ["cn"]) { found.append($0) }
            #expect(found.count == 1, "\(name)")
            let parsed = try DN(parsing: try #require(found.first).dn)
            #expect(parsed.rdns.first?.first?.value == name)
            #expect(parsed.parent.map { try? DN(parsing: ou) == $0 } == true)
        }
        await bridge.close()
        try await removeSubtree(server, ou)
    }

    @Test func searchReferencesAreReportedNotSilentlyDropped() async throws {
        let server = try sharedServer()
        let ou = try await makeSubtree(server, prefix: "ref")
        // A referral object needs the ManageDsaIT control to be created: ldapadd -M.
        try runTool("ldapadd", ["-M", "-x", "-H", server.ldapURI, "-D", server.rootDN, "-y", server.rootPasswordFile],
                    input: "dn: ou=elsewhere,\(ou)\nobjectClass: referral\nobjectClass: extensibleObject\nou: elsewhere\nref: ldap://provider.example.org/ou=elsewhere,\(ou)\n")
        let bridge = try await server.connect(as: .bind)
        let result = try await bridge.search(base: ou, scope: .sub, filter: "(objectClass=*)", attributes: ["1.1"]) { _ in }
        #expect(result.entries == 1) // the ou itself
        #expect(result.references.count == 1)
        #expect(result.references.first?.hasPrefix("ldap://provider.example.org/") == true)
        // A write at or below the referral is answered with a referral (10), not success.
        let error = await expectLDAPError {
            try await bridge.modify(dn: "cn=x,ou=elsewhere,\(ou)", [Modification(.add, "description", ["x"])])
        }
        #expect(error?.code == .referral)
        #expect(error?.referrals.first?.hasPrefix("ldap://provider.example.org/") == true)
        await bridge.close()
        try runTool("ldapdelete", ["-M", "-x", "-H", server.ldapURI, "-D", server.rootDN, "-y", server.rootPasswordFile, "ou=elsewhere,\(ou)"])
        try await removeSubtree(server, ou)
    }
}
