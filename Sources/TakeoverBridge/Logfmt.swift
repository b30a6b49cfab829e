// Diagnostics on stderr (docs/product.md section 4): logfmt lines when stderr is not a
// terminal (cron, systemd, log shippers), a readable form on a terminal. Values under a
// key that names a secret are never written.

import Foundation
import Logging
import TakeoverCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// logfmt text: `key=value` pairs, values quoted when needed.
package enum Logfmt {
    /// A value as logfmt writes it: bare when it is plain, else in double quotes with
    /// `"` `\` and the characters a terminal acts on escaped (`TerminalText.quoted`).
    package static func value(_ s: String) -> String {
        let plain = !s.isEmpty && !s.unicodeScalars.contains { scalar in
            scalar == " " || scalar == "\"" || scalar == "=" || scalar == "\\" || TerminalText.isUnsafe(scalar)
        }
        return plain ? s : TerminalText.quoted(s)
    }

    /// A key with anything that would break the line (space, `=`, `"`, controls) made `_`.
    package static func key(_ s: String) -> String {
        if s.isEmpty { return "_" }
        var out = ""
        for scalar in s.unicodeScalars {
            if scalar.value <= 0x20 || scalar == "=" || scalar == "\"" || scalar == "\\" || scalar.value == 0x7F {
                out += "_"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// True when a key names a secret (`SecretKeys`): its value is replaced by `[redacted]`.
    package static func isSecretKey(_ key: String) -> Bool {
        SecretKeys.isSecret(key)
    }

    package static let redacted = "[redacted]"

    /// Flattens metadata to sorted `(key, text)` pairs; nested dictionaries become
    /// `outer.inner`, lists are joined with commas. Secret keys are redacted, nested too.
    package static func flatten(_ metadata: Logger.Metadata) -> [(String, String)] {
        var out: [(String, String)] = []
        func walk(_ prefix: String, _ value: Logger.Metadata.Value, secret: Bool) {
            if secret {
                out.append((prefix, redacted))
                return
            }
            switch value {
            case .string(let s): out.append((prefix, s))
            case .stringConvertible(let c): out.append((prefix, c.description))
            case .array(let items):
                out.append((prefix, items.map { item -> String in
                    switch item {
                    case .string(let s): return s
                    case .stringConvertible(let c): return c.description
                    default: return item.description
                    }
                }.joined(separator: ",")))
            case .dictionary(let dict):
                for k in dict.keys.sorted() {
                    if let v = dict[k] { walk(prefix + "." + k, v, secret: isSecretKey(k)) }
                }
            }
        }
        for k in metadata.keys.sorted() {
            if let v = metadata[k] { walk(k, v, secret: isSecretKey(k)) }
        }
        return out
    }

    /// `ts=... level=... msg=... key=value ...`
    package static func line(time: UnixTime, level: Logger.Level, message: String, metadata: Logger.Metadata) -> String {
        var out = "ts=\(UTCTime.iso8601(time)) level=\(level.rawValue) msg=\(value(message))"
        for (k, v) in flatten(metadata) where !["ts", "level", "msg"].contains(k) {
            out += " \(key(k))=\(value(v))"
        }
        return out + "\n"
    }

    /// `takeover-bridge: warning: message key=value` (no level word for info and notice).
    package static func humanLine(program: String, level: Logger.Level, message: String,
                                 metadata: Logger.Metadata) -> String {
        var out = program + ": "
        switch level {
        case .info, .notice: break
        default: out += level.rawValue + ": "
        }
        out += visible(message)
        for (k, v) in flatten(metadata) {
            out += " \(key(k))=\(value(v))"
        }
        return out + "\n"
    }

    /// The message with control characters shown escaped, so a hostile name cannot
    /// forge a second line or send a terminal sequence (the one rule: `TerminalText`).
    static func visible(_ s: String) -> String {
        TerminalText.escape(s)
    }
}

/// A swift-log handler writing one line per event to a sink (stderr by default).
package struct BridgeLogHandler: LogHandler {
    package enum Style: Sendable, Hashable {
        case logfmt
        case human
    }

    package var logLevel: Logger.Level
    package var metadata: Logger.Metadata = [:]
    package var metadataProvider: Logger.MetadataProvider?
    package let style: Style
    package let program: String
    let sink: @Sendable (String) -> Void
    let clock: @Sendable () -> UnixTime

    package init(style: Style, level: Logger.Level, program: String = "takeover-bridge",
                metadataProvider: Logger.MetadataProvider? = nil,
                sink: @escaping @Sendable (String) -> Void = BridgeLogHandler.writeToStandardError,
                clock: @escaping @Sendable () -> UnixTime = { UnixTime(time(nil)) }) {
        self.style = style
        self.logLevel = level
        self.program = program
        self.metadataProvider = metadataProvider
        self.sink = sink
        self.clock = clock
    }

    package subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    package func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() {
            merged.merge(provided) { _, new in new }
        }
        if let own = event.metadata {
            merged.merge(own) { _, new in new }
        }
        if let error = event.error, merged["error"] == nil {
            merged["error"] = .string(String(describing: error))
        }
        let text: String
        switch style {
        case .logfmt:
            text = Logfmt.line(time: clock(), level: event.level, message: event.message.description, metadata: merged)
        case .human:
            text = Logfmt.humanLine(program: program, level: event.level, message: event.message.description,
                                    metadata: merged)
        }
        sink(text)
    }

    /// One write(2) per line, so lines from several threads never interleave.
    package static let writeToStandardError: @Sendable (String) -> Void = { text in
        var bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeMutableBytes { buffer in
                write(2, buffer.baseAddress.map { $0 + offset }, buffer.count - offset)
            }
            if n < 0 {
                if errno == EINTR { continue }
                return
            }
            offset += n
        }
    }
}

package enum BridgeLogging {
    private final class Once: @unchecked Sendable {
        // @unchecked: `done` is only read or written while holding `lock`.
        let lock = NSLock()
        var done = false
    }

    private static let once = Once()

    /// Installs the handler for every Logger, once per process (later calls do nothing).
    /// `forceLogfmt`: true or false to choose; nil picks logfmt unless stderr is a terminal.
    package static func bootstrap(level: Logger.Level, forceLogfmt: Bool?) {
        once.lock.lock()
        defer { once.lock.unlock() }
        if once.done { return }
        once.done = true
        let style: BridgeLogHandler.Style = (forceLogfmt ?? (isatty(2) == 0)) ? .logfmt : .human
        LoggingSystem.bootstrap { _ in BridgeLogHandler(style: style, level: level) }
    }

    /// The style `bootstrap(level:forceLogfmt: nil)` picks.
    package static var standardErrorIsTerminal: Bool { isatty(2) != 0 }
}
