// Where an LDAP URL (RFC 4516) points, parsed strictly: the rule that decides whether a
// referral may be followed (docs/product.md section 7). Pure Swift; no libldap.
//
// A referral comes from the network, so it is data: it is never handed to libldap as a
// URI. The bridge compares the server it names with the servers of its own
// configuration and, when one matches, connects to the configured URI, never to the
// referral text. Anything this parser does not understand exactly is refused, because
// libldap reads URLs more loosely (a trailing comma starts a list, `2130706433` and
// `0177.0.0.1` are 127.0.0.1 to the resolver, a space separates URIs).

import LDAPSyntax

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The server an LDAP URL names: scheme, host and port, normalised so that two spellings
/// of the same address compare equal (`LDAP://Provider:389` and `ldap://provider`).
public struct LDAPServerAddress: Sendable, Hashable, CustomStringConvertible {
    /// "ldap", "ldaps" or "ldapi".
    public var scheme: String
    /// A lower-cased host name, a dotted-quad IPv4 address, an IPv6 address in its
    /// canonical text form (without brackets), or for `ldapi` the decoded socket path
    /// ("" for the default socket).
    public var host: String
    /// The explicit port, else the scheme's default (389 for ldap, 636 for ldaps); 0 for ldapi.
    public var port: Int

    /// Parses `url` strictly; the error says why it is refused.
    public init(url: String) throws(LDAPURLError) {
        if let bad = url.unicodeScalars.first(where: { $0.value <= 0x20 || $0.value == 0x7F || $0.value > 0x7E }) {
            let what = bad == " " ? "a space" : bad.value > 0x7E ? "a character outside printable ASCII" : "a control character"
            throw LDAPURLError(url: url, reason: "contains \(what) (several URLs, or a forged one?)")
        }
        guard let separator = url.firstRange(of: "://") else {
            throw LDAPURLError(url: url, reason: "is not an LDAP URL (no scheme://)")
        }
        let scheme = url[..<separator.lowerBound].lowercased()
        guard ["ldap", "ldaps", "ldapi"].contains(scheme) else {
            throw LDAPURLError(url: url, reason: "has the scheme '\(scheme)', not ldap, ldaps or ldapi")
        }
        let rest = url[separator.upperBound...]
        // RFC 4516: the host and port end at "/" or at the end; "?" or "#" there is malformed.
        let hostPort = rest.prefix { $0 != "/" }
        if let odd = hostPort.first(where: { $0 == "?" || $0 == "#" || $0 == "," || $0 == "@" || $0 == "\\" }) {
            let reason = odd == "@" ? "names a user (user@host is not an LDAP URL)"
                : odd == "," ? "has a comma after the host (a list of URLs, not one)"
                : "has '\(odd)' in its host part"
            throw LDAPURLError(url: url, reason: reason)
        }
        self.scheme = scheme
        if scheme == "ldapi" {
            guard let path = LDAPServerAddress.percentDecoded(hostPort) else {
                throw LDAPURLError(url: url, reason: "has a malformed socket path")
            }
            host = path
            port = 0
            return
        }
        if hostPort.contains("%") {
            throw LDAPURLError(url: url, reason: "has a percent-encoded host (a server names itself plainly)")
        }
        var hostText: Substring
        var portText: Substring?
        if hostPort.hasPrefix("[") {
            guard let close = hostPort.firstIndex(of: "]") else {
                throw LDAPURLError(url: url, reason: "has an unclosed IPv6 address")
            }
            hostText = hostPort[hostPort.index(after: hostPort.startIndex)..<close]
            let after = hostPort[hostPort.index(after: close)...]
            if !after.isEmpty {
                guard after.first == ":" else { throw LDAPURLError(url: url, reason: "has text after its IPv6 address") }
                portText = after.dropFirst()
            }
            guard let canonical = LDAPServerAddress.canonicalIPv6(String(hostText)) else {
                throw LDAPURLError(url: url, reason: "has an invalid IPv6 address")
            }
            host = canonical
        } else {
            let colons = hostPort.filter { $0 == ":" }.count
            if colons > 1 { throw LDAPURLError(url: url, reason: "has an IPv6 address without brackets or two ports") }
            if let colon = hostPort.firstIndex(of: ":") {
                hostText = hostPort[..<colon]
                portText = hostPort[hostPort.index(after: colon)...]
            } else {
                hostText = hostPort
            }
            host = try LDAPServerAddress.hostName(hostText, url: url)
        }
        if let portText {
            guard !portText.isEmpty, portText.count <= 5, portText.allSatisfy({ $0.isASCII && $0.isNumber }),
                  let number = Int(portText), (1...65535).contains(number) else {
                throw LDAPURLError(url: url, reason: "has an invalid port '\(portText)'")
            }
            port = number
        } else {
            port = scheme == "ldaps" ? 636 : 389
        }
    }

    /// `ldap://host:port`, `ldap://[::1]:port`, `ldapi://%2Fpath`.
    public var description: String {
        if scheme == "ldapi" { return "ldapi://" + host.replacingSlashes() }
        return "\(scheme)://" + (host.contains(":") ? "[\(host)]" : host) + ":\(port)"
    }

    /// The configured URI (of `candidates`, each one URI) naming the same server as
    /// `address`; candidates that do not parse never match.
    public static func match(_ address: LDAPServerAddress, in candidates: [String]) -> String? {
        candidates.first { (try? LDAPServerAddress(url: $0)) == address }
    }

    // MARK: Hosts

    /// A DNS name (letters, digits, hyphens, dots between non-empty labels) or a
    /// dotted-quad IPv4 address in its one canonical spelling. Numbers the resolver would
    /// read as an address in another spelling (2130706433, 0177.0.0.1, 0x7f.1, 127.1)
    /// are refused: they can only be meant to look like something else.
    static func hostName(_ text: Substring, url: String) throws(LDAPURLError) -> String {
        guard !text.isEmpty else {
            throw LDAPURLError(url: url, reason: "names no host (the client's default server is not a referral target)")
        }
        let lower = text.lowercased()
        let labels = lower.split(separator: ".", omittingEmptySubsequences: false)
        guard lower.count <= 253, labels.allSatisfy({ !$0.isEmpty && $0.count <= 63 }),
              lower.allSatisfy({ ($0.isASCII && ($0.isLetter || $0.isNumber)) || $0 == "-" || $0 == "." }) else {
            throw LDAPURLError(url: url, reason: "has an invalid host name '\(text)'")
        }
        var address = in_addr()
        if inet_aton(lower, &address) != 0 {
            // The resolver takes it as an IPv4 address: accept only the canonical spelling.
            let isCanonical = labels.count == 4 && labels.allSatisfy { label in
                label.allSatisfy(\.isNumber) && (label == "0" || !label.hasPrefix("0")) && (Int(label) ?? 256) <= 255
            }
            guard isCanonical else {
                throw LDAPURLError(url: url, reason: "spells an IPv4 address in a non-standard form ('\(text)')")
            }
        } else if labels.last?.allSatisfy(\.isNumber) == true {
            throw LDAPURLError(url: url, reason: "has a host '\(text)' that is neither a name nor an IPv4 address")
        }
        return lower
    }

    /// The canonical text of an IPv6 address (`inet_pton` then `inet_ntop`); nil when it
    /// is not one. Zone identifiers (`fe80::1%eth0`) are not accepted.
    static func canonicalIPv6(_ text: String) -> String? {
        var address = in6_addr()
        guard !text.contains("%"), inet_pton(AF_INET6, text, &address) == 1 else { return nil }
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        guard inet_ntop(AF_INET6, &address, &buffer, socklen_t(buffer.count)) != nil else { return nil }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Strict percent-decoding (every "%" followed by two hex digits; the result UTF-8
    /// without control characters); nil otherwise.
    static func percentDecoded(_ text: Substring) -> String? {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let high = iterator.next()?.hexDigitValue, let low = iterator.next()?.hexDigitValue else { return nil }
                bytes.append(high << 4 | low)
            } else {
                bytes.append(byte)
            }
        }
        guard let decoded = String(validating: bytes, as: UTF8.self),
              !decoded.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else { return nil }
        return decoded
    }
}

/// An LDAP URL refused by `LDAPServerAddress(url:)`.
public struct LDAPURLError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The URL as received (may hold anything; `description` shows it escaped).
    public var url: String
    public var reason: String

    public init(url: String, reason: String) {
        self.url = url
        self.reason = reason
    }

    /// `'ldap://2130706433:389,' has a comma after the host (...)`, the URL escaped and
    /// cut to 200 characters so that it cannot forge a line or flood a log.
    public var description: String {
        "'\(LDAPURLError.visible(url))' \(reason)"
    }

    /// Control characters, spaces other than " ", and non-ASCII shown as \u{..}.
    public static func visible(_ text: String, limit: Int = 200) -> String {
        var out = ""
        var count = 0
        for scalar in text.unicodeScalars {
            if count >= limit {
                out += "...(\(text.unicodeScalars.count) characters)"
                break
            }
            if scalar.value < 0x20 || scalar.value == 0x7F || scalar.value > 0x7E {
                out += "\\u{" + String(scalar.value, radix: 16) + "}"
            } else {
                out.unicodeScalars.append(scalar)
            }
            count += 1
        }
        return out
    }
}

private extension String {
    func replacingSlashes() -> String {
        var out = ""
        for scalar in unicodeScalars {
            if scalar == "/" { out += "%2F" } else if scalar == "%" { out += "%25" } else { out.unicodeScalars.append(scalar) }
        }
        return out
    }
}
