// Just enough of an LDAP URI to check a configured URI's scheme and host, and the one rule
// for where a bind password would travel in cleartext (docs/product.md section 7). The
// configuration refuses such a setup when it is read (`BridgeConfig.cleartextProblem`) and the
// connection reports it (`LDAPConnectionOptions.sendsPasswordsInCleartext`); both ask here.
// Referrals are judged by the stricter `LDAPServerAddress`.

/// The scheme and host of an LDAP URI (RFC 4516), read leniently: it checks configured URIs,
/// which libldap then parses itself.
package struct LDAPURI: Sendable, Hashable {
    /// "ldap", "ldaps" or "ldapi".
    package var scheme: String
    /// As written (percent-decoded), without brackets or port; "" when the URI names none.
    package var host: String

    package init?(_ text: String) {
        guard let sep = text.firstRange(of: "://") else { return nil }
        scheme = text[..<sep.lowerBound].lowercased()
        guard ["ldap", "ldaps", "ldapi"].contains(scheme) else { return nil }
        var rest = text[sep.upperBound...]
        if let slash = rest.firstIndex(of: "/") { rest = rest[..<slash] }
        if scheme == "ldapi" {
            host = String(rest)
            return
        }
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { return nil }
            host = String(rest[rest.index(after: rest.startIndex)..<close])
            let after = rest[rest.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":"), after.dropFirst().allSatisfy(LDAPURI.isDigit), after.count > 1 else {
                    return nil
                }
            }
        } else if let colon = rest.lastIndex(of: ":") {
            host = String(rest[..<colon])
            let port = rest[rest.index(after: colon)...]
            guard !port.isEmpty, port.allSatisfy(LDAPURI.isDigit) else { return nil }
        } else {
            host = String(rest)
        }
        host = LDAPServerAddress.percentDecoded(Substring(host)) ?? host
    }

    private static func isDigit(_ c: Character) -> Bool { c.isASCII && c.isNumber }

    /// This machine: `localhost` (and names under it), 127.0.0.0/8 in dotted-quad form (also
    /// IPv4-mapped), `::1`. Nothing else, not even a name that resolves there.
    package static func isLoopback(_ host: String) -> Bool {
        let h = host.lowercased()
        if h == "localhost" || h.hasSuffix(".localhost") || h == "localhost.localdomain" || h == "ip6-localhost" {
            return true
        }
        if h == "::1" || h == "0:0:0:0:0:0:0:1" { return true }
        var v4 = Substring(h)
        if v4.hasPrefix("::ffff:") { v4 = v4.dropFirst(7) }
        let parts = v4.split(separator: ".", omittingEmptySubsequences: false)
        if parts.count == 4, parts.allSatisfy({ !$0.isEmpty && $0.count <= 3 && $0.allSatisfy(isDigit) }),
           parts[0] == "127", parts.allSatisfy({ (Int($0) ?? 999) <= 255 }) {
            return true
        }
        return false
    }

    /// Why a password sent over `uri` without StartTLS could be read on the way.
    package enum Exposure: Sendable, Hashable {
        /// `ldap:///`: libldap connects to its default host (ldap.conf), which may be anywhere.
        case noHost
        /// An `ldap://` host that is not loopback.
        case host(String)
        /// An `ldap://` URI this parser cannot read, so it cannot tell where it goes.
        case unreadable
    }

    /// The exposure of a password sent over `uri` (one URI) without StartTLS; nil for
    /// `ldaps://`, `ldapi://` and a loopback `ldap://` host.
    package static func cleartextExposure(_ uri: String) -> Exposure? {
        guard let parsed = LDAPURI(uri) else {
            return uri.lowercased().hasPrefix("ldap://") ? .unreadable : nil
        }
        guard parsed.scheme == "ldap" else { return nil }
        if parsed.host.isEmpty { return .noHost }
        return isLoopback(parsed.host) ? nil : .host(parsed.host)
    }

    /// The URIs of a list: separated by spaces, tabs or commas (libldap reads both).
    package static func split(_ list: String) -> [String] {
        list.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "," }).map(String.init)
    }
}
