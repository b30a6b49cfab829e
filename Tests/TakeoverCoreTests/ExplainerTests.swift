import Testing
@testable import TakeoverCore

@Suite struct ExplainerTests {
    let input = GoldenTests.showcase()

    func explain(_ user: String, _ device: String? = nil) -> [String] {
        Explainer.explain(user: user, device: device, input: input, plan: Planner.plan(input))
    }

    @Test func takeoverFactsAndRules() {
        let lines = explain("ALICE")
        #expect(lines.first == "user alice: uid=alice,ou=people,dc=example,dc=com")
        #expect(lines.contains("    account 'Alice' (uid 501, home /Users/Alice): differs from 'alice' only in case; not protected"))
        #expect(lines.contains { $0.hasPrefix("    decision: takeover 'Alice'") && $0.hasSuffix("(R6: an unprotected account has the local name)") })
        #expect(lines.contains { $0.hasPrefix("    warning sole-local-account") })
        #expect(lines.contains("    change: add-entry cn=MBP-Alice,ou=bindings,dc=example,dc=com (the binding group, with this user as a member)"))
    }

    @Test func byDNAndDeviceFilter() {
        let lines = explain("uid=bob,ou=people,dc=example,dc=com", "srv-1")
        #expect(lines.contains("  device srv-1"))
        #expect(!lines.contains("  device Bob's MacBook Pro"))
        #expect(lines.contains { $0.hasPrefix("    decision: bound 'bob'") })
        let elsewhere = explain("bob", "nowhere")
        #expect(elsewhere.contains("  not connected to or bound on nowhere: nothing to decide there"))
    }

    @Test func conflictsAndDeferredDevices() {
        let jdoe = explain("jdoe")
        #expect(jdoe.contains("  held by a conflict (R4: no new binding anywhere, existing bindings stay):"))
        #expect(jdoe.contains { $0.contains("fix: rename all but one of them") })
        let kim = explain("kim")
        #expect(kim.contains { $0.contains("30 days old: inactive (R8: active_within 7 days)") })
        #expect(kim.contains { $0.hasPrefix("    decision: deferred 'kim.l'") })
    }

    @Test func usersGoneFromTheDirectory() {
        let carol = explain("carol")
        #expect(carol.first?.hasPrefix("no user 'carol' among the 11 users") == true)
        #expect(carol.contains { $0.hasPrefix("device srv-1: unbind 'carol'") })
        #expect(carol.contains("  change: delete-member cn=srv-1,ou=bindings,dc=example,dc=com: uid=carol,ou=people,dc=example,dc=com"))
    }
}
