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
        package var startTLS: Bool
        /// `tls_reqcert`: how the server's certificate is checked (libldap's TLS_REQCERT).
        package var tlsReqcert: TLSRequireCert
        package var tlsCACert: String?
        package var tlsCert: String?
        package var tlsKey: String?
        package var allowCleartext: Bool
        package var pageSize: Int
        /// Seconds, for every network operation; by default the connection's (LDAPConnectionOptions).
        package var timeout: Double

        package init(uri: String, writeURI: String? = nil, bindDN: String? = nil, bindPasswordFile: String? = nil,
                    bindPasswordEnv: String? = nil, saslMech: String? = nil, saslAuthcID: String? = nil,
                    saslRealm: String? = nil, startTLS: Bool = false, tlsReqcert: TLSRequireCert = .demand,
                    tlsCACert: String? = nil, tlsCert: String? = nil, tlsKey: String? = nil,
                    allowCleartext: Bool = false, pageSize: Int = LDAP.defaultPageSize,
                    timeout: Double = LDAPConnectionOptions(uri: "").timeout) {
            self.uri = uri
            self.writeURI = writeURI
            self.bindDN = bindDN
            self.bindPasswordFile = bindPasswordFile
            self.bindPasswordEnv = bindPasswordEnv
            self.saslMech = saslMech
            self.saslAuthcID = saslAuthcID
            self.saslRealm = saslRealm
            self.startTLS = startTLS
            self.tlsReqcert = tlsReqcert
            self.tlsCACert = tlsCACert
            self.tlsCert = tlsCert
            self.tlsKey = tlsKey
            self.allowCleartext = allowCleartext
            self.pageSize = pageSize
            self.timeout = timeout
        }

        /// Entries per page of a paged search (`page_size`): the connection's default, stated there.
        package static let defaultPageSize = LDAPConnection.defaultPageSize

        /// The read URIs, split on whitespace.
        package var uris: [String] { uri.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init) }
    }

    package struct Users: Sendable, Hashable {
        package var searchBase: String
        package var filter: String
        package var nameAttribute: String
        /// Empty means unset: every user's local name is the username.
        package var localAccountAttribute: String
        package var uidNumberAttribute: String
        package var displayNameAttribute: String
        /// `[users] id_attribute`: the stable id (issue 10). Empty: the first of objectGUID
        /// (AD), entryUUID (OpenLDAP, 389 DS with its plugin), nsUniqueId (389 DS) the
        /// entry has.
        package var idAttribute: String = ""

        package init(searchBase: String, filter: String = "(objectClass=posixAccount)", nameAttribute: String = "uid",
                    localAccountAttribute: String = "", uidNumberAttribute: String = "uidNumber",
                    displayNameAttribute: String = "displayName") {
            self.searchBase = searchBase
            self.filter = filter
            self.nameAttribute = nameAttribute
            self.localAccountAttribute = localAccountAttribute
            self.uidNumberAttribute = uidNumberAttribute
            self.displayNameAttribute = displayNameAttribute
        }
    }

    package struct Devices: Sendable, Hashable {
        package var searchBase: String
        package var filter: String
        package var nameAttribute: String
        /// member | uniqueMember | memberUid (canonical spelling).
        package var memberAttribute: String
        /// The reports folder (absolute after `load`).
        package var reports: String
        /// Seconds.
        package var activeWithin: Int64

        // Report evidence limits (issue 11: R8 clock skew, bounded report volume).
        /// `max_clock_skew`, seconds: a report dated further in the future is an error, never used.
        package var maxClockSkew: Int64 = Policy.defaultMaxClockSkew
        /// `max_reports_size`, bytes: the most the reports folder may hold; beyond it the run stops (exit 5).
        package var maxReportsSize: Int = ReportLimits.defaultMaxTotalBytes

        package init(searchBase: String, filter: String = "(objectClass=groupOfNames)", nameAttribute: String = "cn",
                    memberAttribute: String = "member", reports: String, activeWithin: Int64 = Policy().activeWithin) {
            self.searchBase = searchBase
            self.filter = filter
            self.nameAttribute = nameAttribute
            self.memberAttribute = memberAttribute
            self.reports = reports
            self.activeWithin = activeWithin
        }
    }

    package struct Bindings: Sendable, Hashable {
        package var searchBase: String
        package var objectClass: BindingObjectClass
        /// member | uniqueMember.
        package var memberAttribute: String

        package init(searchBase: String, objectClass: BindingObjectClass = .takeoverBindingGroup, memberAttribute: String = "member") {
            self.searchBase = searchBase
            self.objectClass = objectClass
            self.memberAttribute = memberAttribute
        }
    }

    package struct PolicySection: Sendable, Hashable {
        package var protectedAccounts: [String]
        package var minUIDLinux: Int64
        package var minUIDMacOS: Int64
        package var onLikelyMismatch: LikelyMismatchPolicy

        // The defaults are the planner's (TakeoverCore `Policy`), stated there once.
        package init(protectedAccounts: [String] = [], minUIDLinux: Int64 = Policy().minUIDLinux,
                    minUIDMacOS: Int64 = Policy().minUIDMacOS,
                    onLikelyMismatch: LikelyMismatchPolicy = Policy().onLikelyMismatch) {
            self.protectedAccounts = protectedAccounts
            self.minUIDLinux = minUIDLinux
            self.minUIDMacOS = minUIDMacOS
            self.onLikelyMismatch = onLikelyMismatch
        }
    }

    package struct Safety: Sendable, Hashable {
        package var maxUnbinds: Int
        package var maxUnbindPercent: Double
        package var minUsers: Int

        package init(maxUnbinds: Int = 100, maxUnbindPercent: Double = 10, minUsers: Int = 1) {
            self.maxUnbinds = maxUnbinds
            self.maxUnbindPercent = maxUnbindPercent
            self.minUsers = minUsers
        }
    }

    package struct State: Sendable, Hashable {
        package var dir: String

        /// `[state] metrics_file`: the Prometheus textfile written after every run; nil: none.
        package var metricsFile: String? = nil
        // [state] lease (issue 11): seconds a run's lease entry under [bindings]
        // search_base stays valid without renewal (docs/product.md section 6). 1 s ... 1 day.
        package var lease: Int64 = 600

        package init(dir: String = "/var/lib/takeover-bridge") {
            self.dir = dir
        }
    }

    package var ldap: LDAP
    package var users: Users
    package var devices: Devices
    package var bindings: Bindings
    package var policy: PolicySection
    package var safety: Safety
    package var state: State
    /// The file it came from (as given), or the source name passed to `parse`.
    package var sourcePath: String
    /// Line of each key ("ldap.uri") and section ("ldap") in the source, for later messages.
    package var keyLines: [String: Int]

    package init(ldap: LDAP, users: Users, devices: Devices, bindings: Bindings, policy: PolicySection = PolicySection(),
                safety: Safety = Safety(), state: State = State(), sourcePath: String = "config.toml",
                keyLines: [String: Int] = [:]) {
        self.ldap = ldap
        self.users = users
        self.devices = devices
        self.bindings = bindings
        self.policy = policy
        self.safety = safety
        self.state = state
        self.sourcePath = sourcePath
        self.keyLines = keyLines
    }

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
