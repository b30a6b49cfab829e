// Doctor's server-specific advice, the pure parts and against slapd.

import Foundation
import LDAPTestSupport
import LDAPClient
import Testing
@testable import TakeoverBridge

@Suite struct DoctorServerAdviceTests {
    @Test func serverKindFromTheRootDSE() {
        func root(_ attributes: [(String, [String])]) -> LDAPEntry {
            LDAPEntry(dn: "", attributes: attributes.map { ($0.0, $0.1.map { LDAPValue($0) }) })
        }
        #expect(DirectoryServerKind.kind(of: root([("objectClass", ["top", "OpenLDAProotDSE"])])) == .openLDAP)
        #expect(DirectoryServerKind.kind(of: root([("vendorName", ["389 Project"]), ("vendorVersion", ["389-Directory/2.3.1"])])) == .dirsrv389)
        #expect(DirectoryServerKind.kind(of: root([("supportedCapabilities", ["1.2.840.113556.1.4.800"])])) == .activeDirectory)
        #expect(DirectoryServerKind.kind(of: root([("forestFunctionality", ["4"])])) == .activeDirectory)
        #expect(DirectoryServerKind.kind(of: root([])) == .other)
    }

    @Test func limitsNameTheServersOwnSetting() {
        #expect(DirectoryServerKind.openLDAP.limitFix(code: .sizeLimitExceeded, account: "cn=b,dc=x", pageSize: 1000).contains("limits dn.exact=\"cn=b,dc=x\""))
        #expect(DirectoryServerKind.dirsrv389.limitFix(code: .adminLimitExceeded, account: "cn=b,dc=x", pageSize: 1000).contains("nsLookThroughLimit: -1"))
        #expect(DirectoryServerKind.dirsrv389.limitFix(code: .sizeLimitExceeded, account: "cn=b,dc=x", pageSize: 1000).contains("nsSizeLimit"))
        #expect(DirectoryServerKind.activeDirectory.limitFix(code: .sizeLimitExceeded, account: "x", pageSize: 5000).contains("MaxPageSize"))
        let error = DirectoryReadError(what: "users", base: "ou=p,dc=x",
                                       error: LDAPError(code: .adminLimitExceeded, operation: .search, message: "Administrative limit exceeded"),
                                       message: "")
        #expect(Doctor.readFix(error, server: .dirsrv389).contains("nsLookThroughLimit"))
        #expect(!Doctor.readFix(error, server: .dirsrv389).contains("check search_base and filter"))
    }

    @Test func certificateNamesOfTheTestServersCertificate() throws {
        guard bridgeTestsEnabled else { return }
        let server = try TestDirectory.shared()
        let pem = try String(contentsOfFile: server.directory + "/tls/server.crt", encoding: .utf8)
        let body = pem.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined()
        let der = try #require(Data(base64Encoded: body))
        let names = try #require(CertificateNames(der: Array(der)))
        #expect(names.commonNames == ["localhost"])
        #expect(names.dnsNames == ["localhost"])
        #expect(names.ipAddresses == ["127.0.0.1", "0:0:0:0:0:0:0:1"])
        #expect(names.matches(host: "LOCALHOST") && names.matches(host: "127.0.0.1"))
        #expect(!names.matches(host: "ldap.example.org"))
        #expect(CertificateNames(der: [0x30, 0x03, 0x02, 0x01]) == nil)
        #expect(CertificateNames(der: []) == nil)
    }

    @Test func aWarningIsNotAFailure() {
        let check = DoctorCheck("bind identity", ok: true, "bound as bridge@example.org", fix: "nothing to do", warning: true)
        #expect(check.text == "WARN bind identity: bound as bridge@example.org\n     fix: nothing to do\n")
        #expect(DoctorCheck("x", ok: false, "y", warning: true).text.hasPrefix("FAIL "))
    }
}

@Suite("doctor against slapd: TLS names", .enabled(if: bridgeTestsEnabled, "needs TB_TEST_ENV (run scripts/test.sh)"))
struct DoctorTLSNameTests {
    /// ldaps:// by this machine's host name, which reaches the slapd on 127.0.0.1 but is
    /// not in its certificate: doctor says which names the certificate has.
    @Test func aNameMismatchNamesTheCertificatesHosts() throws {
        let host = ProcessInfo.processInfo.hostName
        let lookup = try Processes.run("/usr/bin/getent", ["ahostsv4", host])
        guard lookup.status == 0, lookup.stdout.split(separator: "\n").allSatisfy({ $0.hasPrefix("127.0.0.1 ") }) else {
            return // the host name does not reach the loopback slapd here
        }
        let s = try Scenario()
        let port = try #require(s.server.ldapsURI.split(separator: ":").last.map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "/")) })
        s.configOverrides["ldap.uri"] = s.q("ldaps://\(host):\(port)")
        s.configOverrides["ldap.tls_cacert"] = s.q(s.server.caCert)
        let doctor = try s.bridge(["doctor"])
        #expect(doctor.status == 5, "\(doctor.all)")
        #expect(doctor.stdout.contains("the server certificate names another host: it is for localhost, 127.0.0.1"), "\(doctor.stdout)")
        #expect(doctor.stdout.contains("not '\(host)'"), "\(doctor.stdout)")
        // The right name passes; a wrong CA is a trust problem, not a name problem.
        s.configOverrides["ldap.uri"] = s.q("ldaps://127.0.0.1:\(port)")
        #expect(try s.bridge(["doctor"]).stdout.contains("OK   connection"))
        s.configOverrides["ldap.tls_cacert"] = s.q(s.server.wrongCACert)
        let untrusted = try s.bridge(["doctor"])
        #expect(untrusted.status == 5)
        #expect(!untrusted.stdout.contains("names another host"), "\(untrusted.stdout)")
    }
}
