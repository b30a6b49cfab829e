// Just enough of an LDAP URL to check a configured URI's scheme and host.

// MARK: - LDAP URIs

/// Just enough of an LDAP URL (RFC 4516) to check its scheme and host.
struct LDAPURI {
    var scheme: String
    var host: String

    init?(_ text: String) {
        guard let sep = text.range(of: "://") else { return nil }
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
                guard after.hasPrefix(":"), after.dropFirst().allSatisfy(\.isASCIIDigit), after.count > 1 else {
                    return nil
                }
            }
        } else if let colon = rest.lastIndex(of: ":") {
            host = String(rest[..<colon])
            let port = rest[rest.index(after: colon)...]
            guard !port.isEmpty, port.allSatisfy(\.isASCIIDigit) else { return nil }
        } else {
            host = String(rest)
        }
        host = host.removingPercentEncoding ?? host
    }

    static func isLoopback(_ host: String) -> Bool {
        let h = host.lowercased()
        if h == "localhost" || h.hasSuffix(".localhost") || h == "localhost.localdomain" || h == "ip6-localhost" {
            return true
        }
        if h == "::1" || h == "0:0:0:0:0:0:0:1" { return true }
        var v4 = Substring(h)
        if v4.hasPrefix("::ffff:") { v4 = v4.dropFirst(7) }
        let parts = v4.split(separator: ".", omittingEmptySubsequences: false)
        if parts.count == 4, parts.allSatisfy({ !$0.isEmpty && $0.count <= 3 && $0.allSatisfy(\.isASCIIDigit) }),
           parts[0] == "127", parts.allSatisfy({ (Int($0) ?? 999) <= 255 }) {
            return true
        }
        return false
    }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}
