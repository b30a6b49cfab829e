// Opening and binding LDAP connections the way the configuration says (docs/product.md
// sections 7 and 8a): the read URIs, the write URI, and referrals to one of them all get
// the same TLS options and the same credentials. No other server ever sees a bind.

import LDAPClient
import Logging

/// Everything needed to open one more connection like the first: options and credentials.
/// The password lives only inside `credentials` (a `Secret`, printed as `<redacted>`).
package struct Connector: Sendable {
    package var config: BridgeConfig
    package var credentials: LDAPCredentials

    package init(config: BridgeConfig, password: String?) {
        self.config = config
        let ldap = config.ldap
        if let mech = ldap.saslMech {
            credentials = .sasl(mechanism: mech, authcID: ldap.saslAuthcID ?? ldap.bindDN,
                                password: password.map(Secret.init), realm: ldap.saslRealm, authzID: nil)
        } else if let dn = ldap.bindDN, let password {
            credentials = .simple(dn: dn, password: Secret(password))
        } else {
            credentials = .anonymous
        }
    }

    /// The connection options for `uri` (one URI or several separated by spaces).
    package func options(uri: String) -> LDAPConnectionOptions {
        let ldap = config.ldap
        return LDAPConnectionOptions(uri: uri, startTLS: ldap.startTLS,
                                     tlsRequireCert: ldap.tlsReqcert,
                                     tlsCACertFile: ldap.tlsCACert, tlsCertFile: ldap.tlsCert, tlsKeyFile: ldap.tlsKey,
                                     timeout: ldap.timeout)
    }

    /// Connects to `uri` and binds. The half-open connection is closed when the bind fails.
    package func open(uri: String) async throws(LDAPError) -> LDAPConnection {
        let connection: LDAPConnection
        do {
            connection = try await LDAPConnection.connect(options(uri: uri))
        } catch let error as LDAPError {
            throw error
        } catch {
            throw LDAPError(code: .serverDown, operation: .connect, message: "Can't contact LDAP server",
                            diagnostic: String(describing: error), dn: nil)
        }
        do {
            try await connection.bind(credentials)
        } catch {
            await connection.close()
            throw error
        }
        return connection
    }

    /// The read connection: `[ldap] uri` (libldap tries several in order).
    package func openRead() async throws(LDAPError) -> LDAPConnection {
        try await open(uri: config.ldap.uri)
    }

    /// The URI writes go to: `write_uri` when set, else `uri`.
    package var writeURI: String { config.ldap.writeURI ?? config.ldap.uri }

    /// Whether writes need a connection of their own.
    package var hasSeparateWriteURI: Bool {
        guard let write = config.ldap.writeURI else { return false }
        return write != config.ldap.uri
    }

    /// The configured URIs a referral may lead to: every one of `uri` and `write_uri`.
    package var referralCandidates: [String] {
        config.ldap.uris + (config.ldap.writeURI.map { $0.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init) } ?? [])
    }

    /// Where a referral may be followed (docs/product.md section 7): the configured URI that
    /// names the same server (scheme, host and port, compared parsed), never the
    /// referral's own text. A URL that does not parse strictly, or names any other
    /// server, is refused: the bridge never connects there, so no bind reaches it.
    package func referralTarget(_ referral: String) -> Result<String, LDAPURLError> {
        let address: LDAPServerAddress
        do {
            address = try LDAPServerAddress(url: referral)
        } catch {
            return .failure(error)
        }
        guard let configured = LDAPServerAddress.match(address, in: referralCandidates) else {
            return .failure(LDAPURLError(url: referral, reason: "names \(address), a server that is not in [ldap] uri or write_uri"))
        }
        return .success(configured)
    }

    /// Of a referral's URLs, the configured URI to follow (the first that may be), or
    /// why none may: the message names every URL (escaped). Each refused URL is logged
    /// as a warning. Used for the writes (Applier) and for the lease (Lease).
    package func followableTarget(of referrals: [String], for dn: String, logger: Logger) -> Result<String, ReferralRefused> {
        var target: String?
        var refused: [LDAPURLError] = []
        for referral in referrals {
            switch referralTarget(referral) {
            case .success(let uri): if target == nil { target = uri }
            case .failure(let refusal): refused.append(refusal)
            }
        }
        for refusal in refused {
            logger.warning("referral refused: the bridge follows referrals only to servers named in [ldap] uri or write_uri",
                           metadata: ["dn": "\(dn)", "referral": "\(refusal)"])
        }
        if let target { return .success(target) }
        let named = refused.isEmpty ? "a referral naming no server" : "the referral " + refused.map(\.description).joined(separator: "; ")
        return .failure(ReferralRefused(message: "the server answered the write of '\(dn)' with \(named); nothing was sent there. "
            + "If that server is your provider, name it in [ldap] write_uri"))
    }
}

/// No URL of a referral may be followed (docs/product.md section 7).
package struct ReferralRefused: Error, Sendable, CustomStringConvertible {
    package var message: String
    package var description: String { message }
}
