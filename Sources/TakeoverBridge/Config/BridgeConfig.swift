// The TOML configuration (docs/product.md section 8): the typed model and its defaults.
// Reading is in ConfigReader.swift, the key table in ConfigSchema.swift, loading and the
// policies derived from the model in BridgeConfig+Loading.swift.

import DeviceReports
import Foundation
import LDAPClient
import TakeoverCore

// MARK: - The configuration

package struct BridgeConfig: Sendable {
    package struct LDAP: Sendable, Hashable {
        /// One or more URIs separated by spaces (libldap tries them in order).
        package var uri: String
        /// The provider that takes writes, when reads go to a replica.
        package var writeURI: String?
        package var bindDN: String?
        package var bindPasswordFile: String?
        package var bindPasswordEnv: String?
        package var saslMech: String?
        package var saslAuthcID: String?
        package var saslRealm: String?
        package var startTLS: Bool = false
        /// `tls_reqcert`: how the server's certificate is checked (libldap's TLS_REQCERT).
        package var tlsReqcert: TLSRequireCert = .demand
        package var tlsCACert: String?
        package var tlsCert: String?
        package var tlsKey: String?
        package var allowCleartext: Bool = false
        package var pageSize: Int = LDAP.defaultPageSize
        /// Seconds, for every network operation; by default the connection's (LDAPConnectionOptions).
        package var timeout: Double = LDAPConnectionOptions(uri: "").timeout

        /// Entries per page of a paged search (`page_size`): the connection's default, stated there.
        package static let defaultPageSize = LDAPConnection.defaultPageSize

        /// The read URIs, split on whitespace.
        package var uris: [String] { uri.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init) }
    }

    package struct Users: Sendable, Hashable {
        package var searchBase: String
        package var filter: String = "(objectClass=posixAccount)"
        package var nameAttribute: String = "uid"
        /// Empty means unset: every user's local name is the username.
        package var localAccountAttribute: String = ""
        package var uidNumberAttribute: String = "uidNumber"
        package var displayNameAttribute: String = "displayName"
        /// `[users] id_attribute`: the stable id (issue 10). Empty: the first of objectGUID
        /// (AD), entryUUID (OpenLDAP, 389 DS with its plugin), nsUniqueId (389 DS) the
        /// entry has.
        package var idAttribute: String = ""
    }

    package struct Devices: Sendable, Hashable {
        package var searchBase: String
        package var filter: String = "(objectClass=groupOfNames)"
        package var nameAttribute: String = "cn"
        /// member | uniqueMember | memberUid (canonical spelling).
        package var memberAttribute: String = "member"
        /// The reports folder (absolute after `load`).
        package var reports: String
        /// Seconds.
        package var activeWithin: Int64 = Policy().activeWithin

        // Report evidence limits (issue 11: R8 clock skew, bounded report volume).
        /// `max_clock_skew`, seconds: a report dated further in the future is an error, never used.
        package var maxClockSkew: Int64 = Policy.defaultMaxClockSkew
        /// `max_reports_size`, bytes: the most the reports folder may hold; beyond it the run stops (exit 5).
        package var maxReportsSize: Int = ReportLimits.defaultMaxTotalBytes
    }

    package struct Bindings: Sendable, Hashable {
        package var searchBase: String
        package var objectClass: BindingObjectClass = .takeoverBindingGroup
        /// member | uniqueMember.
        package var memberAttribute: String = "member"
    }

    package struct PolicySection: Sendable, Hashable {
        // The defaults are the planner's (TakeoverCore `Policy`), stated there once.
        package var protectedAccounts: [String] = []
        package var minUIDLinux: Int64 = Policy().minUIDLinux
        package var minUIDMacOS: Int64 = Policy().minUIDMacOS
        package var onLikelyMismatch: LikelyMismatchPolicy = Policy().onLikelyMismatch
    }

    package struct Safety: Sendable, Hashable {
        package var maxUnbinds: Int = 100
        package var maxUnbindPercent: Double = 10
        package var minUsers: Int = 1
    }

    package struct State: Sendable, Hashable {
        package var dir: String = "/var/lib/takeover-bridge"

        /// `[state] metrics_file`: the Prometheus textfile written after every run; nil: none.
        package var metricsFile: String? = nil
        // [state] lease (issue 11): seconds a run's lease entry under [bindings]
        // search_base stays valid without renewal (docs/product.md section 6). 1 s ... 1 day.
        package var lease: Int64 = 600
    }

    package var ldap: LDAP
    package var users: Users
    package var devices: Devices
    package var bindings: Bindings
    package var policy = PolicySection()
    package var safety = Safety()
    package var state = State()
    /// The file it came from (as given), or the source name passed to `parse`.
    package var sourcePath = "config.toml"
    /// Line of each key ("ldap.uri") and section ("ldap") in the source, for later messages.
    package var keyLines: [String: Int] = [:]

    /// The default path when neither `--config` nor `$TAKEOVER_BRIDGE_CONFIG` is given.
    package static let defaultPath = "/etc/takeover-bridge/config.toml"

    /// The largest config file read (a config is a few kilobytes).
    package static let maximumFileSize = 1 << 20
}

/// `[bindings] object_class`: how binding groups are stored.
package enum BindingObjectClass: String, Sendable, Hashable, CaseIterable {
    /// The project schema (schema/takeover-bridge.schema).
    case takeoverBindingGroup
    case groupOfNames
    case groupOfUniqueNames
    /// Active Directory's group.
    case group

    /// The class as named in messages.
    var spokenName: String { self == .group ? "Active Directory's group" : rawValue }

    /// The member attributes this class allows, the default first.
    var memberAttributes: [String] {
        switch self {
        case .takeoverBindingGroup: return ["member", "uniqueMember"]
        case .groupOfNames, .group: return ["member"]
        case .groupOfUniqueNames: return ["uniqueMember"]
        }
    }
}
