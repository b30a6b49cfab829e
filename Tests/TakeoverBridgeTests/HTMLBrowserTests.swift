// `plan --format html` rendered by a real browser: Debian's chromium, headless. The page
// must show the summary, run its own script (the filter) without a console message, and
// show hostile names as text. scripts/install-deps.sh installs chromium, so under
// scripts/test.sh this never skips.

import Foundation
import LDAPTestSupport
import Testing
@testable import TakeoverBridge

enum Chromium {
    static let path: String? = {
        for candidate in ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
        where FileManager.default.isExecutableFile(atPath: candidate) {
            return candidate
        }
        return nil
    }()

    struct Rendering {
        var dom: String
        /// Console messages (chromium logs them as `...:CONSOLE:<line>] "message", source: ...`).
        var console: [String]
        var screenshot: Data
        var status: Int32
        var log: String
    }

    /// Renders `page` headless: the DOM after scripts ran, the console, a screenshot.
    /// `timeout` bounds the browser (no test may hang).
    static func render(_ page: String, width: Int = 1280, height: Int = 1600) throws -> Rendering {
        let folder = NSTemporaryDirectory() + "tb-chromium-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let shot = folder + "/shot.png"
        let result = try Processes.run("/usr/bin/timeout", [
            "-k", "5", "90", path ?? "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-dev-shm-usage", "--user-data-dir=\(folder)/profile", "--enable-logging=stderr", "--v=0",
            "--window-size=\(width),\(height)", "--screenshot=\(shot)", "--dump-dom", URL(fileURLWithPath: page).absoluteString,
        ])
        let console = result.stderr.split(separator: "\n").filter { $0.contains(":CONSOLE") }.map(String.init)
        let screenshot = FileManager.default.contents(atPath: shot) ?? Data()
        return Rendering(dom: result.stdout, console: console, screenshot: screenshot, status: result.status,
                         log: String(result.stderr.suffix(4000)))
    }

    /// Width and height from a PNG's IHDR, nil when it is not a PNG.
    static func pngSize(_ data: Data) -> (Int, Int)? {
        let bytes = [UInt8](data.prefix(24))
        guard bytes.count == 24, bytes.prefix(8) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A],
              bytes[12...15] == [0x49, 0x48, 0x44, 0x52] else { return nil }
        let w = bytes[16...19].reduce(0) { $0 << 8 | Int($1) }
        let h = bytes[20...23].reduce(0) { $0 << 8 | Int($1) }
        return (w, h)
    }
}

@Suite("the HTML report in headless Chromium",
       .enabled(if: bridgeTestsEnabled, "needs TB_TEST_ENV (run scripts/test.sh)"),
       .enabled(if: Chromium.path != nil, "chromium is not installed: `apt-get install chromium` (scripts/install-deps.sh does)"))
struct HTMLBrowserTests {
    @Test func pageRendersWithItsSummaryAndNoScriptError() throws {
        let s = try Scenario()
        let hostileDevice = "<img src=x onerror=\"document.title='pwned'\">"
        let hostileLocal = "</script><script>document.documentElement.setAttribute('data-pwned','1')</script>"
        try s.addUsers([("alice", nil), ("bob", hostileLocal), ("carol", "john"), ("dave", "John")])
        try s.addDevice(hostileDevice, ["alice", "bob", "carol"])
        try s.addDevice("lab-1", ["alice", "dave"])
        try s.writeReport(hostileDevice, [("alice", 2001), ("'\"><svg onload=alert(1)>", 2002)], fileName: "evil.csv")
        try s.writeReport("lab-1", [("Alice", 2001), ("root", 0)], fileName: "lab.csv")
        let page = s.folder + "/plan.html"
        let result = try s.bridge(["plan", "--format", "html", "--all", "--output", page])
        #expect(result.status == 3, "\(result.all)")

        let rendering = try Chromium.render(page)
        #expect(rendering.status == 0, "chromium: \(rendering.log)")
        // The script ran (the filter is ready and counted the rows) and logged nothing.
        #expect(rendering.console.isEmpty, "console: \(rendering.console)")
        #expect(rendering.dom.contains("data-filter=\"ready\""), "\(rendering.dom.prefix(2000))")
        #expect(rendering.dom.contains(">5 of 5 shown<"), "\(rendering.dom)")
        // The summary as rendered.
        #expect(rendering.dom.contains("<title>takeover-bridge plan at "))
        #expect(rendering.dom.contains("id=\"summary-line\">summary: 4 users, 2 devices: 2 takeover, 0 provision, 0 bound, 0 unbind, 0 deferred, 3 conflict;"),
                "\(rendering.dom)")
        #expect(rendering.dom.contains("<h2>What to do</h2>"))
        #expect(rendering.dom.contains("duplicate-local-account (1)"))
        // Hostile names are text: escaped in the DOM, no element, no script of theirs ran.
        #expect(rendering.dom.contains("<html lang=\"en\" data-filter=\"ready\"><head>"))  // no data-pwned set on it
        #expect(!rendering.dom.contains("pwned</title>"))
        // (The serialised DOM keeps `<` raw inside attribute values: the device's data-device.)
        #expect(rendering.dom.components(separatedBy: "<img").count == rendering.dom.components(separatedBy: "data-device=\"<img").count,
                "an img element: \(rendering.dom)")
        #expect(!rendering.dom.contains("<svg"))
        #expect(rendering.dom.contains("&lt;img src=x onerror=\"document.title='pwned'\"&gt;"), "\(rendering.dom)")
        #expect(rendering.dom.components(separatedBy: "<script").count == 2)
        // A screenshot of the page, with more on it than a near-empty page has.
        let size = try #require(Chromium.pngSize(rendering.screenshot), "no PNG screenshot: \(rendering.log)")
        #expect(size == (1280, 1600))
        let blank = s.folder + "/blank.html"
        try "<!DOCTYPE html><title>x</title><p>x</p>".write(toFile: blank, atomically: true, encoding: .utf8)
        let control = try Chromium.render(blank)
        #expect(rendering.screenshot.count > 2 * control.screenshot.count,
                "\(rendering.screenshot.count) bytes against \(control.screenshot.count) for a near-empty page")
    }

    /// The console check sees what it must: a script error and a script the policy blocks.
    @Test func consoleCheckSeesScriptErrors() throws {
        let folder = NSTemporaryDirectory() + "tb-html-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let page = folder + "/broken.html"
        try """
            <!DOCTYPE html><html><head><meta charset="utf-8">
            <meta http-equiv="Content-Security-Policy" content="script-src 'sha256-AAAA'"><title>t</title></head>
            <body><p>x</p><script>document.title = 'ran';</script></body></html>
            """.write(toFile: page, atomically: true, encoding: .utf8)
        let blocked = try Chromium.render(page)
        #expect(blocked.console.contains { $0.contains("Content Security Policy") }, "\(blocked.console) \(blocked.log)")
        try "<!DOCTYPE html><title>t</title><script>undefinedFunction();</script>".write(toFile: page, atomically: true, encoding: .utf8)
        let thrown = try Chromium.render(page)
        #expect(thrown.console.contains { $0.contains("Uncaught ReferenceError") }, "\(thrown.console) \(thrown.log)")
    }
}
