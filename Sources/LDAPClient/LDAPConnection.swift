// One LDAP connection: an actor that owns one libldap handle (`LDAP *`).

internal import CLDAP
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// libldap writes to sockets the server may have closed; without this the process dies
/// of SIGPIPE. Set once, process-wide, before the first connection (a lazy global is
/// initialised exactly once, thread-safely).
private let ignoreSIGPIPE: Void = {
    _ = signal(SIGPIPE, SIG_IGN)
}()

/// A connection to one LDAP server (or the first reachable of several URIs).
///
/// Concurrency: the actor runs on its own serial `DispatchQueue` (see `QueueExecutor`):
/// every libldap call on the handle happens on that queue, one at a time, and blocking
/// network waits never occupy the cooperative thread pool. No method suspends while it
/// uses the handle, so operations never interleave.
///
/// Lifetime: call `close()` when done; `deinit` unbinds a handle that was not closed.
public actor LDAPConnection {
    private let executor: QueueExecutor
    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    /// The handle's owner; its pointer is nil before open and once closed.
    private let owner = HandleOwner()
    private var ld: OpaquePointer? {
        get { owner.pointer }
        set { owner.pointer = newValue }
    }
    public nonisolated let options: LDAPConnectionOptions

    private init(options: LDAPConnectionOptions) {
        self.options = options
        self.executor = QueueExecutor(label: "LDAPConnection")
    }

    // MARK: - Connect

    /// `ldap_initialize`, protocol version 3, referrals off, restart on EINTR, network and
    /// operation timeouts, TLS options on this handle only (`LDAP_OPT_X_TLS_NEWCTX`), then
    /// StartTLS when asked, else `ldap_connect` so an unreachable server or a failed
    /// `ldaps://` handshake is reported here, as operation "connect".
    public static func connect(_ options: LDAPConnectionOptions) async throws -> LDAPConnection {
        _ = ignoreSIGPIPE
        let connection = LDAPConnection(options: options)
        try await connection.open()
        return connection
    }

    private func open() throws(LDAPError) {
        var handle: OpaquePointer?
        let rc = ldap_initialize(&handle, options.uri)
        guard rc == LDAP_SUCCESS, let handle else {
            if let handle { ldap_unbind_ext(handle, nil, nil) }
            throw LDAPError(code: .paramError, operation: .connect, message: "Bad LDAP URI",
                            diagnostic: "cannot parse '\(options.uri)' (\(rc))")
        }
        ld = handle
        do throws(LDAPError) {
            try configure(handle)
            if options.startTLS {
                let rc = ldap_start_tls_s(handle, nil, nil)
                if rc != LDAP_SUCCESS { throw explainTLS(handleError(rc, .starttls)) }
            } else {
                let rc = ldap_connect(handle)
                if rc != LDAP_SUCCESS { throw explainTLS(handleError(rc, .connect)) }
            }
            // Messages read out of a 64 KB buffer: one read(2) per buffer, not two per message.
            if CLDAP_add_readahead(handle, 64 * 1024) < 0 { fatalError("out of memory") }
        } catch {
            ldap_unbind_ext(handle, nil, nil)
            ld = nil
            throw error
        }
    }

    private var usesTLS: Bool {
        options.startTLS || options.uri.lowercased().contains("ldaps://")
    }

    /// libldap reports a failed TLS handshake (untrusted or mismatched certificate) with
    /// the diagnostic "(unknown error code)"; say what that means.
    private func explainTLS(_ error: LDAPError) -> LDAPError {
        guard usesTLS, error.diagnostic == nil || error.diagnostic == "(unknown error code)" else { return error }
        guard error.diagnostic != nil || error.code == .connectError else { return error }
        var error = error
        let ca = options.tlsCACertFile.map { "tls_cacert '\($0)'" } ?? "the system CA certificates"
        error.diagnostic = "TLS handshake failed: the server certificate is not trusted by \(ca) "
            + "(tls_reqcert \(options.tlsRequireCert.rawValue)), does not name the host in the URI, "
            + "or the server refused the client certificate"
        return error
    }

    private func configure(_ handle: OpaquePointer) throws(LDAPError) {
        func check(_ rc: Int32, _ what: String) throws(LDAPError) {
            if rc != LDAP_OPT_SUCCESS {
                throw LDAPError(code: rc == LDAP_OPT_ERROR ? .paramError : LDAPResultCode(rawValue: rc), operation: .connect,
                                message: "Cannot set option", diagnostic: what)
            }
        }
        var version: Int32 = LDAP_VERSION3
        try check(ldap_set_option(handle, LDAP_OPT_PROTOCOL_VERSION, &version), "protocol version 3")
        try check(ldap_set_option(handle, LDAP_OPT_REFERRALS, CLDAP_opt_off()), "referrals off")
        try check(ldap_set_option(handle, LDAP_OPT_RESTART, CLDAP_opt_on()), "restart on")
        if var timeout = timeval(seconds: options.timeout) {
            try check(ldap_set_option(handle, LDAP_OPT_NETWORK_TIMEOUT, &timeout), "network timeout")
            try check(ldap_set_option(handle, LDAP_OPT_TIMEOUT, &timeout), "timeout")
        }
        var requireCert: Int32
        switch options.tlsRequireCert {
        case .never: requireCert = LDAP_OPT_X_TLS_NEVER
        case .allow: requireCert = LDAP_OPT_X_TLS_ALLOW
        case .try: requireCert = LDAP_OPT_X_TLS_TRY
        case .demand: requireCert = LDAP_OPT_X_TLS_DEMAND
        case .hard: requireCert = LDAP_OPT_X_TLS_HARD
        }
        try check(ldap_set_option(handle, LDAP_OPT_X_TLS_REQUIRE_CERT, &requireCert), "tls_reqcert")
        for (key, file) in [("tls_cacert", options.tlsCACertFile), ("tls_cert", options.tlsCertFile), ("tls_key", options.tlsKeyFile)] {
            if let file, access(file, R_OK) != 0 {
                throw LDAPError(code: .localError, operation: .connect, message: errorText(LDAP_LOCAL_ERROR),
                                diagnostic: "cannot read \(key) '\(file)': \(String(cString: strerror(errno)))")
            }
        }
        if let file = options.tlsCACertFile {
            try check(ldap_set_option(handle, LDAP_OPT_X_TLS_CACERTFILE, file), "tls_cacert '\(file)'")
        }
        if let file = options.tlsCertFile {
            try check(ldap_set_option(handle, LDAP_OPT_X_TLS_CERTFILE, file), "tls_cert '\(file)'")
        }
        if let file = options.tlsKeyFile {
            try check(ldap_set_option(handle, LDAP_OPT_X_TLS_KEYFILE, file), "tls_key '\(file)'")
        }
        if usesTLS {
            // Build this handle's own TLS context from the options above (0 = client).
            var isServer: Int32 = 0
            let rc = ldap_set_option(handle, LDAP_OPT_X_TLS_NEWCTX, &isServer)
            if rc != LDAP_OPT_SUCCESS {
                throw LDAPError(code: .localError, operation: .connect, message: errorText(LDAP_LOCAL_ERROR),
                                diagnostic: "cannot create the TLS context: check that tls_cacert, tls_cert and tls_key are PEM files and that the key matches the certificate")
            }
        }
    }

    // MARK: - Bind

    /// Simple bind (`ldap_sasl_bind` with `LDAP_SASL_SIMPLE`), anonymous bind (a simple
    /// bind with empty name and password), or SASL (`ldap_sasl_interactive_bind_s`; the
    /// interaction callback answers from the credentials, never from a terminal).
    public func bind(_ credentials: LDAPCredentials) throws(LDAPError) {
        let handle = try live(.bind)
        switch credentials {
        case .anonymous:
            try simpleBind(handle, dn: "", password: Secret(""))
        case .simple(let dn, let password):
            try simpleBind(handle, dn: dn, password: password)
        case .sasl(let mechanism, let authcID, let password, let realm, let authzID):
            try saslBind(handle, mechanism: mechanism, authcID: authcID, password: password, realm: realm, authzID: authzID)
        }
    }

    private func simpleBind(_ handle: OpaquePointer, dn: String, password: Secret) throws(LDAPError) {
        let arena = CArena()
        guard let name = arena.cString(dn) else { throw nulError(.bind, dn: dn) }
        let credential = arena.berval(password.value.utf8, secret: true)
        var msgid: Int32 = 0
        let rc = ldap_sasl_bind(handle, name, nil, credential, nil, nil, &msgid)
        if rc != LDAP_SUCCESS { throw handleError(rc, .bind, dn: dn) }
        let result = try waitForResult(handle, msgid: msgid, operation: .bind, dn: dn)
        if let error = parseResult(handle, result, operation: .bind, dn: dn, free: true) { throw error }
    }

    private func saslBind(_ handle: OpaquePointer, mechanism: String, authcID: String?, password: Secret?,
                          realm: String?, authzID: String?) throws(LDAPError) {
        let context = SASLContext(authcID: authcID, password: password?.value, realm: realm, authzID: authzID)
        let arena = CArena()
        guard let mech = arena.cString(mechanism) else { throw nulError(.bind, dn: nil) }
        // The context outlives the call: the callback only runs inside it.
        let rc = withExtendedLifetime(context) {
            ldap_sasl_interactive_bind_s(handle, nil, mech, nil, nil, UInt32(LDAP_SASL_QUIET),
                                         saslInteract, Unmanaged.passUnretained(context).toOpaque())
        }
        if rc != LDAP_SUCCESS {
            var error = handleError(rc, .bind)
            error.dn = authcID.map { "SASL \(mechanism) as \($0)" } ?? "SASL \(mechanism)"
            throw error
        }
    }

    // MARK: - Who am I, root DSE, schema

    /// RFC 4532 Who am I: `dn:...` for a DN identity, `u:...` for others, "" for anonymous.
    public func whoAmI() throws(LDAPError) -> String {
        let handle = try live(.whoami)
        var msgid: Int32 = 0
        let rc = ldap_whoami(handle, nil, nil, &msgid)
        if rc != LDAP_SUCCESS { throw handleError(rc, .whoami) }
        let result = try waitForResult(handle, msgid: msgid, operation: .whoami, dn: nil)
        defer { ldap_msgfree(result) }
        if let error = parseResult(handle, result, operation: .whoami, dn: nil, free: false) { throw error }
        var authzid: UnsafeMutablePointer<CLDAP.berval>?
        let parsed = ldap_parse_whoami(handle, result, &authzid)
        defer { if let authzid { ber_bvfree(authzid) } }
        if parsed != LDAP_SUCCESS { throw handleError(parsed, .whoami) }
        return authzid.map { string(of: $0.pointee) } ?? ""
    }

    /// The server's TLS certificate (DER) on a TLS connection
    /// (`LDAP_OPT_X_TLS_PEERCERT`), nil without TLS. Doctor opens a connection with
    /// `tls_reqcert = never` and no bind to read it, to say which names it has.
    public func peerCertificate() -> [UInt8]? {
        guard let ld else { return nil }
        var der = CLDAP.berval()
        guard ldap_get_option(ld, LDAP_OPT_X_TLS_PEERCERT, &der) == LDAP_OPT_SUCCESS, der.bv_val != nil else { return nil }
        defer { ber_memfree(der.bv_val) }
        return bytes(of: der)
    }

    /// The root DSE (base search of "" with `(objectClass=*)`).
    public func rootDSE(attributes: [String] = ["*", "+"]) throws(LDAPError) -> LDAPEntry {
        guard let entry = try read(dn: "", attributes: attributes) else {
            throw LDAPError(code: .noSuchObject, operation: .search, message: "No such object",
                            diagnostic: "the server returned no root DSE", dn: "")
        }
        return entry
    }

    /// The subschema entry named by the root DSE's `subschemaSubentry` (RFC 4512 4.4):
    /// attributeTypes, objectClasses, ldapSyntaxes, matchingRules.
    public func subschema() throws(LDAPError) -> LDAPEntry {
        let root = try rootDSE(attributes: ["subschemaSubentry"])
        let dn = root.first("subschemaSubentry") ?? "cn=Subschema"
        var found: LDAPEntry?
        try collectingSearch(base: dn, scope: .base, filter: "(objectClass=subschema)",
                             attributes: ["attributeTypes", "objectClasses", "ldapSyntaxes", "matchingRules"]) { found = $0 }
        guard let found else {
            throw LDAPError(code: .noSuchObject, operation: .search, message: "No such object",
                            diagnostic: "no subschema entry", dn: dn)
        }
        return found
    }

    /// One entry by DN, or nil when it does not exist (noSuchObject). Any other failure throws.
    public func read(dn: String, attributes: [String] = []) throws(LDAPError) -> LDAPEntry? {
        var found: LDAPEntry?
        do throws(LDAPError) {
            try collectingSearch(base: dn, scope: .base, filter: "(objectClass=*)", attributes: attributes) { found = $0 }
        } catch LDAPResultCode.noSuchObject {
            return nil
        }
        return found
    }

    /// An unpaged search whose handler cannot fail, with a typed error.
    private func collectingSearch(base: String, scope: SearchScope, filter: String, attributes: [String],
                                  handler: (LDAPEntry) -> Void) throws(LDAPError) {
        do {
            _ = try search(base: base, scope: scope, filter: filter, attributes: attributes, pageSize: 0, handler: handler)
        } catch let error as LDAPError {
            throw error
        } catch {
            throw LDAPError(code: .other, operation: .search, message: errorText(LDAP_OTHER),
                            diagnostic: "unexpected error \(error)", dn: base)
        }
    }

    // MARK: - Writes

    /// Adds an entry (`ldap_add_ext`). An existing entry: error 68 with `isAlreadyDone`.
    public func add(dn: String, attributes: [(String, [String])]) throws(LDAPError) {
        let handle = try live(.add, dn: dn)
        let msgid = try sendAdd(handle, dn: dn, attributes: attributes)
        try finishAdd(handle, msgid: msgid, dn: dn)
    }

    /// Adds an entry whose values are bytes (binary attributes such as `jpegPhoto`).
    public func add(dn: String, values attributes: [(String, [LDAPValue])]) throws(LDAPError) {
        let arena = CArena()
        var mods: [UnsafeMutablePointer<LDAPMod>?] = []
        for (name, values) in attributes {
            guard let mod = arena.mod(op: LDAP_MOD_ADD, type: name, byteValues: values.map(\.bytes)) else {
                throw nulError(.add, dn: dn)
            }
            mods.append(mod)
        }
        try add(dn: dn, mods: mods, arena: arena)
    }

    private func add(dn: String, mods: [UnsafeMutablePointer<LDAPMod>?], arena: CArena) throws(LDAPError) {
        let handle = try live(.add, dn: dn)
        let msgid = try sendAdd(handle, dn: dn, mods: mods, arena: arena)
        try finishAdd(handle, msgid: msgid, dn: dn)
    }

    private func finishAdd(_ handle: OpaquePointer, msgid: Int32, dn: String) throws(LDAPError) {
        let message = try waitForResult(handle, msgid: msgid, operation: .add, dn: dn)
        if var error = parseResult(handle, message, operation: .add, dn: dn, free: true) {
            error.isAlreadyDone = error.code == .entryAlreadyExists
            throw error
        }
    }

    /// `ldap_add_ext` of text values; the message id. The arena is freed on return (the
    /// request is already encoded).
    private func sendAdd(_ handle: OpaquePointer, dn: String, attributes: [(String, [String])]) throws(LDAPError) -> Int32 {
        let arena = CArena()
        var mods: [UnsafeMutablePointer<LDAPMod>?] = []
        mods.reserveCapacity(attributes.count)
        for (name, values) in attributes {
            guard let mod = arena.mod(op: LDAP_MOD_ADD, type: name, values: values) else { throw nulError(.add, dn: dn) }
            mods.append(mod)
        }
        return try sendAdd(handle, dn: dn, mods: mods, arena: arena)
    }

    private func sendAdd(_ handle: OpaquePointer, dn: String, mods: [UnsafeMutablePointer<LDAPMod>?], arena: CArena) throws(LDAPError) -> Int32 {
        guard let cDN = arena.cString(dn) else { throw nulError(.add, dn: dn) }
        var msgid: Int32 = 0
        let rc = ldap_add_ext(handle, cDN, arena.nullTerminated(mods), nil, nil, &msgid)
        if rc != LDAP_SUCCESS { throw handleError(rc, .add, dn: dn) }
        return msgid
    }

    /// Deletes an entry (`ldap_delete_ext`). A missing entry: error 32 with `isAlreadyDone`.
    ///
    /// `assertion`: an RFC 4515 filter sent as a critical assertion control (RFC 4528,
    /// `ldap_create_assertion_control`): the server deletes the entry only if it matches,
    /// atomically, else fails with 122 (assertionFailed); a server without the control
    /// answers 12 (unavailableCriticalExtension) and deletes nothing.
    public func delete(dn: String, assertion: String? = nil) throws(LDAPError) {
        let handle = try live(.delete, dn: dn)
        let arena = CArena()
        guard let cDN = arena.cString(dn) else { throw nulError(.delete, dn: dn) }
        var control: UnsafeMutablePointer<LDAPControl>?
        if let assertion {
            guard let cFilter = arena.cString(assertion) else { throw nulError(.delete, dn: dn) }
            let rc = ldap_create_assertion_control(handle, cFilter, 1, &control)
            if rc != LDAP_SUCCESS { throw handleError(rc, .delete, dn: dn) }
        }
        defer { if let control { ldap_control_free(control) } }
        var msgid: Int32 = 0
        var controls: [UnsafeMutablePointer<LDAPControl>?] = [control, nil]
        let rc = controls.withUnsafeMutableBufferPointer { buffer in
            ldap_delete_ext(handle, cDN, control == nil ? nil : buffer.baseAddress, nil, &msgid)
        }
        if rc != LDAP_SUCCESS { throw handleError(rc, .delete, dn: dn) }
        let message = try waitForResult(handle, msgid: msgid, operation: .delete, dn: dn)
        if var error = parseResult(handle, message, operation: .delete, dn: dn, free: true) {
            error.isAlreadyDone = error.code == .noSuchObject
            throw error
        }
    }

    /// Value-level modify (`ldap_modify_ext`; never replaces a whole attribute). A value
    /// add that finds the value present (20) or a value delete that finds it absent (16)
    /// throws with `isAlreadyDone` set, when the request is exactly one modification of
    /// at most one value (modify is atomic: with more, the others were not applied).
    public func modify(dn: String, _ modifications: [Modification]) throws(LDAPError) {
        let handle = try live(.modify, dn: dn)
        let msgid = try sendModify(handle, dn: dn, modifications)
        let message = try waitForResult(handle, msgid: msgid, operation: .modify, dn: dn)
        if var error = parseResult(handle, message, operation: .modify, dn: dn, free: true) {
            error.isAlreadyDone = Self.isAlreadyDone(error.code, modifications)
            throw error
        }
    }

    /// Asynchronous pipelined modifies: `writePipelined` with modify requests only.
    public func modifyPipelined(_ requests: [ModifyRequest], window: Int = 64) throws(LDAPError) -> [Result<Void, LDAPError>] {
        try writePipelined(requests.map(WriteRequest.modify), window: window)
    }

    /// Asynchronous pipelined adds and modifies with at most `window` requests outstanding
    /// (clamped to 1...256: slapd drops clients with about 1000 outstanding). Requests in
    /// flight together may be applied in any order: the caller keeps dependent requests
    /// (an add and a modify of the same entry) in separate calls. Returns one result per
    /// request, in request order; per-request failures are values, with `isAlreadyDone`
    /// as for `add` and `modify`. Throws only when the connection is lost or times out:
    /// the error's `firstUnknownIndex` is the first request whose outcome is unknown
    /// (requests after it may or may not have been applied; all before it are known to
    /// have completed), and `partialResults` holds every result received (nil: unknown).
    public func writePipelined(_ requests: [WriteRequest], window: Int = 64) throws(LDAPError) -> [Result<Void, LDAPError>] {
        let adds = requests.reduce(0) { count, request in
            if case .add = request { count + 1 } else { count }
        }
        let operation: LDAPOperation = adds == 0 ? .modify : adds == requests.count ? .add : .write
        let handle = try live(operation)
        let window = min(max(window, 1), 256)
        var results = [Result<Void, LDAPError>?](repeating: nil, count: requests.count)
        var pending: [Int32: Int] = [:]
        pending.reserveCapacity(window)
        var next = 0
        var firstUnknown = 0

        func lost(_ error: LDAPError) -> LDAPError {
            for msgid in pending.keys { ldap_abandon_ext(handle, msgid, nil, nil) }
            while firstUnknown < results.count, results[firstUnknown] != nil { firstUnknown += 1 }
            var error = error
            error.firstUnknownIndex = firstUnknown
            error.partialResults = results
            return error
        }

        while next < requests.count || !pending.isEmpty {
            while pending.count < window && next < requests.count {
                do {
                    let msgid: Int32
                    switch requests[next] {
                    case .modify(let request):
                        msgid = try sendModify(handle, dn: request.dn, request.modifications)
                    case .add(let dn, let attributes):
                        msgid = try sendAdd(handle, dn: dn, attributes: attributes)
                    }
                    pending[msgid] = next
                } catch {
                    if error.isConnectionLost { throw lost(error) }
                    results[next] = .failure(error) // a local problem with this request only
                }
                next += 1
            }
            if pending.isEmpty { continue }
            let message: OpaquePointer
            do {
                message = try nextMessage(handle, msgid: LDAP_RES_ANY, all: LDAP_MSG_ALL, operation: operation, dn: nil)
            } catch {
                throw lost(error)
            }
            guard let index = pending.removeValue(forKey: ldap_msgid(message)) else {
                ldap_msgfree(message) // a stale reply to an abandoned request
                continue
            }
            let request = requests[index]
            if var error = parseResult(handle, message, operation: Self.operation(request), dn: request.dn, free: true) {
                switch request {
                case .modify(let modify): error.isAlreadyDone = Self.isAlreadyDone(error.code, modify.modifications)
                case .add: error.isAlreadyDone = error.code == .entryAlreadyExists
                }
                results[index] = .failure(error)
            } else {
                results[index] = .success(())
            }
        }
        return results.map { $0 ?? .success(()) }
    }

    private static func operation(_ request: WriteRequest) -> LDAPOperation {
        switch request {
        case .modify: .modify
        case .add: .add
        }
    }

    private static func isAlreadyDone(_ code: LDAPResultCode, _ modifications: [Modification]) -> Bool {
        guard modifications.count == 1, let only = modifications.first, only.values.count <= 1 else { return false }
        switch only.op {
        case .add: return code == .attributeOrValueExists
        case .delete: return code == .noSuchAttribute
        }
    }

    private func sendModify(_ handle: OpaquePointer, dn: String, _ modifications: [Modification]) throws(LDAPError) -> Int32 {
        let arena = CArena()
        var mods: [UnsafeMutablePointer<LDAPMod>?] = []
        mods.reserveCapacity(modifications.count)
        for modification in modifications {
            let op = modification.op == .add ? LDAP_MOD_ADD : LDAP_MOD_DELETE
            guard let mod = arena.mod(op: op, type: modification.attribute, values: modification.values) else {
                throw nulError(.modify, dn: dn)
            }
            mods.append(mod)
        }
        guard let cDN = arena.cString(dn) else { throw nulError(.modify, dn: dn) }
        var msgid: Int32 = 0
        let rc = ldap_modify_ext(handle, cDN, arena.nullTerminated(mods), nil, nil, &msgid)
        if rc != LDAP_SUCCESS { throw handleError(rc, .modify, dn: dn) }
        return msgid
    }

    // MARK: - Close

    /// Unbinds and frees the handle (`ldap_unbind_ext`). Later calls throw (-1).
    public func close() {
        if let ld { ldap_unbind_ext(ld, nil, nil) }
        ld = nil
    }

    // MARK: - Helpers

    func live(_ operation: LDAPOperation, dn: String? = nil) throws(LDAPError) -> OpaquePointer {
        guard let ld else {
            throw LDAPError(code: .serverDown, operation: operation, message: "Connection closed", dn: dn)
        }
        return ld
    }

    private var operationTimeout: timeval? { timeval(seconds: options.timeout) }

    /// `ldap_result` for one message of `msgid`, bounded by the operation timeout.
    func nextMessage(_ handle: OpaquePointer, msgid: Int32, all: Int32, operation: LDAPOperation, dn: String?) throws(LDAPError) -> OpaquePointer {
        var message: OpaquePointer?
        var rc: Int32
        if var timeout = operationTimeout {
            rc = ldap_result(handle, msgid, all, &timeout, &message)
        } else {
            rc = ldap_result(handle, msgid, all, nil, &message)
        }
        if rc == 0 {
            if let message { ldap_msgfree(message) }
            if msgid != LDAP_RES_ANY { ldap_abandon_ext(handle, msgid, nil, nil) }
            throw LDAPError(code: .timeout, operation: operation, message: errorText(LDAP_TIMEOUT),
                            diagnostic: "no answer within \(options.timeout) s", dn: dn)
        }
        guard rc > 0, let message else {
            if let message { ldap_msgfree(message) }
            throw handleError(resultCode(handle), operation, dn: dn)
        }
        return message
    }

    private func waitForResult(_ handle: OpaquePointer, msgid: Int32, operation: LDAPOperation, dn: String?) throws(LDAPError) -> OpaquePointer {
        try nextMessage(handle, msgid: msgid, all: LDAP_MSG_ALL, operation: operation, dn: dn)
    }

    /// `ldap_parse_result`: nil on success, else the error. Frees the message when `free`.
    func parseResult(_ handle: OpaquePointer, _ message: OpaquePointer, operation: LDAPOperation, dn: String?, free: Bool,
                             controls: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<LDAPControl>?>?>? = nil) -> LDAPError? {
        var code: Int32 = 0
        var matched: UnsafeMutablePointer<CChar>?
        var diagnostic: UnsafeMutablePointer<CChar>?
        var referrals: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
        let rc = ldap_parse_result(handle, message, &code, &matched, &diagnostic, &referrals, controls, free ? 1 : 0)
        defer {
            if let matched { ldap_memfree(matched) }
            if let diagnostic { ldap_memfree(diagnostic) }
            if let referrals {
                ldap_memvfree(UnsafeMutableRawPointer(referrals).assumingMemoryBound(to: UnsafeMutableRawPointer?.self))
            }
        }
        if rc != LDAP_SUCCESS { return handleError(rc, operation, dn: dn) }
        if code == LDAP_SUCCESS { return nil }
        var uris: [String] = []
        if let referrals {
            var index = 0
            while let uri = referrals[index] {
                uris.append(String(cString: uri))
                index += 1
            }
        }
        return LDAPError(code: LDAPResultCode(rawValue: code), operation: operation, message: errorText(code),
                         diagnostic: nonEmpty(string(ofC: diagnostic)), matchedDN: nonEmpty(string(ofC: matched)),
                         referrals: uris, dn: dn)
    }

    /// An error from a libldap call's return code plus the handle's diagnostic text.
    func handleError(_ rc: Int32, _ operation: LDAPOperation, dn: String? = nil) -> LDAPError {
        var diagnostic: UnsafeMutablePointer<CChar>?
        var text: String?
        if let ld, ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &diagnostic) == LDAP_OPT_SUCCESS, let diagnostic {
            text = nonEmpty(String(cString: diagnostic))
            ldap_memfree(diagnostic)
        }
        var matched: UnsafeMutablePointer<CChar>?
        var matchedText: String?
        if let ld, ldap_get_option(ld, LDAP_OPT_MATCHED_DN, &matched) == LDAP_OPT_SUCCESS, let matched {
            matchedText = nonEmpty(String(cString: matched))
            ldap_memfree(matched)
        }
        let code = rc == LDAP_SUCCESS ? LDAP_OTHER : rc
        return LDAPError(code: LDAPResultCode(rawValue: code), operation: operation, message: errorText(code),
                         diagnostic: text, matchedDN: matchedText, dn: dn)
    }

    private func resultCode(_ handle: OpaquePointer) -> Int32 {
        var code: Int32 = LDAP_SERVER_DOWN
        if ldap_get_option(handle, LDAP_OPT_RESULT_CODE, &code) != LDAP_OPT_SUCCESS { return LDAP_SERVER_DOWN }
        return code == LDAP_SUCCESS ? LDAP_SERVER_DOWN : code
    }

    func nulError(_ operation: LDAPOperation, dn: String?) -> LDAPError {
        LDAPError(code: .paramError, operation: operation, message: errorText(LDAP_PARAM_ERROR),
                  diagnostic: "a DN, filter, attribute name or value contains a NUL character (escape it)", dn: dn)
    }
}

/// Owns one `LDAP *`: `deinit` unbinds a handle that was not closed (a safety net; it
/// never prints).
///
/// Safety of `@unchecked Sendable`: `pointer` is only read or written by the one
/// LDAPConnection actor that owns this object (on its serial queue), and `deinit` runs
/// only after that actor, the sole reference holder, is gone.
final class HandleOwner: @unchecked Sendable {
    var pointer: OpaquePointer?
    deinit {
        if let pointer { ldap_unbind_ext(pointer, nil, nil) }
    }
}

/// `ldap_err2string` (static text; never freed).
func errorText(_ code: Int32) -> String {
    String(cString: ldap_err2string(code))
}

private func nonEmpty(_ text: String?) -> String? {
    guard let text, !text.isEmpty else { return nil }
    return text.replacingNewlines()
}

extension timeval {
    /// nil for "no timeout" (zero or negative seconds).
    init?(seconds: Double) {
        guard seconds > 0, seconds.isFinite else { return nil }
        let whole = seconds.rounded(.down)
        self.init(tv_sec: Int(min(whole, Double(Int32.max))), tv_usec: Int((seconds - whole) * 1_000_000))
    }
}
