import Foundation
import Logging
import Testing
@testable import TakeoverBridge

/// Collects what a handler writes.
final class LineSink: @unchecked Sendable {
    // @unchecked: `lines` is only touched while holding `lock`.
    private let lock = NSLock()
    private var lines: [String] = []

    func append(_ s: String) {
        lock.lock()
        lines.append(s)
        lock.unlock()
    }

    var all: [String] {
        lock.lock()
        defer { lock.unlock() }
        return lines
    }
}

@Suite struct LogfmtTests {
    @Test func valuesAreQuotedOnlyWhenNeeded() {
        #expect(Logfmt.value("plain") == "plain")
        #expect(Logfmt.value("cn=x,dc=y") == "\"cn=x,dc=y\"")
        #expect(Logfmt.value("") == "\"\"")
        #expect(Logfmt.value("two words") == "\"two words\"")
        #expect(Logfmt.value("say \"hi\"") == "\"say \\\"hi\\\"\"")
        #expect(Logfmt.value("back\\slash") == "\"back\\\\slash\"")
        #expect(Logfmt.value("line1\nline2\r\tx") == "\"line1\\nline2\\r\\tx\"")
        #expect(Logfmt.value("bell\u{07}") == "\"bell\\u0007\"")
        #expect(Logfmt.value("Ünïcode") == "Ünïcode")
        #expect(Logfmt.value("sep\u{2028}") == "\"sep\\u2028\"")
        #expect(Logfmt.key("user name=x") == "user_name_x")
        #expect(Logfmt.key("") == "_")
    }

    @Test func lineFormat() {
        let line = Logfmt.line(time: 1_795_939_200, level: .info, message: "run finished",
                               metadata: ["changes": "3", "device": "Bob's MacBook Pro", "dn": "cn=a\\,b,dc=x"])
        #expect(line == "ts=2026-11-29T08:00:00Z level=info msg=\"run finished\" changes=3 device=\"Bob's MacBook Pro\" dn=\"cn=a\\\\,b,dc=x\"\n")
        // A hostile value cannot start a second line or forge a key.
        let forged = Logfmt.line(time: 0, level: .warning, message: "x", metadata: ["device": "a\nts=0 level=error msg=pwned"])
        #expect(forged.split(separator: "\n").count == 1)
        #expect(forged == "ts=1970-01-01T00:00:00Z level=warning msg=x device=\"a\\nts=0 level=error msg=pwned\"\n")
    }

    @Test func secretsAreRedacted() {
        let secret = "hunter2-S3cret"
        let metadata: Logger.Metadata = [
            "bind_password": .string(secret),
            "Password": .string(secret),
            "ldap": .dictionary(["secret": .string(secret), "uri": "ldaps://x"]),
            "apiToken": .string(secret),
            "user": "alice",
        ]
        let line = Logfmt.line(time: 0, level: .error, message: "bind failed", metadata: metadata)
        #expect(!line.contains(secret))
        #expect(line == "ts=1970-01-01T00:00:00Z level=error msg=\"bind failed\" Password=[redacted] apiToken=[redacted] "
            + "bind_password=[redacted] ldap.secret=[redacted] ldap.uri=ldaps://x user=alice\n")
        let human = Logfmt.humanLine(program: "takeover-bridge", level: .error, message: "bind failed", metadata: metadata)
        #expect(!human.contains(secret))
    }

    @Test func humanForm() {
        #expect(Logfmt.humanLine(program: "takeover-bridge", level: .warning, message: "report is stale", metadata: ["device": "lnx-lab-old"])
            == "takeover-bridge: warning: report is stale device=lnx-lab-old\n")
        #expect(Logfmt.humanLine(program: "takeover-bridge", level: .info, message: "done", metadata: [:])
            == "takeover-bridge: done\n")
        #expect(Logfmt.humanLine(program: "tb", level: .error, message: "a\nb", metadata: [:]) == "tb: error: a\\nb\n")
    }

    @Test func handlerMergesMetadataAndErrors() {
        let sink = LineSink()
        var handler = BridgeLogHandler(style: .logfmt, level: .debug, sink: { sink.append($0) }, clock: { 60 })
        handler[metadataKey: "run"] = "r1"
        handler[metadataKey: "password"] = "nope"
        var logger = Logger(label: "test", factory: { _ in handler })
        logger[metadataKey: "config"] = "/etc/tb.toml"
        logger.info("apply started", metadata: ["run": "r2"])
        logger.trace("not shown")
        struct Failure: Error, CustomStringConvertible { var description: String { "server down" } }
        logger.error("apply failed", error: Failure())
        #expect(sink.all == [
            "ts=1970-01-01T00:01:00Z level=info msg=\"apply started\" config=/etc/tb.toml password=[redacted] run=r2\n",
            "ts=1970-01-01T00:01:00Z level=error msg=\"apply failed\" config=/etc/tb.toml error=\"server down\" password=[redacted] run=r1\n",
        ])
        let human = LineSink()
        let humanLogger = Logger(label: "t") { _ in
            BridgeLogHandler(style: .human, level: .info, sink: { human.append($0) })
        }
        humanLogger.warning("lock held", metadata: ["pid": "42"])
        #expect(human.all == ["takeover-bridge: warning: lock held pid=42\n"])
    }
}
