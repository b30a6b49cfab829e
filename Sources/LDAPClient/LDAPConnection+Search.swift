// Searching: LDAPConnection.search, the paged (RFC 2696) search every read goes through.

internal import CLDAP
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension LDAPConnection {
    /// Paged (RFC 2696) search. `handler` runs synchronously on the connection's queue for
    /// each entry, in the order the server sent them, once the entry's page has arrived
    /// (never after collecting the whole result): the next page is requested before a
    /// page's entries are converted and handed over, so the server prepares it meanwhile.
    /// At most one page of entries is held; an unpaged search (or a server that sends
    /// more than a page) hands entries over as they arrive. Throwing from the handler
    /// abandons the search and rethrows that error.
    ///
    /// `attributes` empty means all user attributes. `pageSize` 0 sends no paging control.
    /// `sizeLimit`/`timeLimit` (0 = none) are sent to the server; hitting either, or any
    /// other non-success result, THROWS (after the entries already handed over): an error
    /// never looks like "no more entries". The connection's timeout bounds each wait for
    /// the next message (`ldap_result`); on expiry the search is abandoned and a timeout
    /// (-5) is thrown.
    ///
    /// The handler is non-escaping and need not be `@Sendable`: it runs before `search`
    /// returns, on the actor, so it may capture and mutate the caller's local state.
    ///
    /// With `followRanges` (the default), an entry whose value list came back ranged
    /// (`member;range=0-1499`, Active Directory) is completed with base searches before it
    /// is handed over; a list that cannot be read whole is in `incompleteAttributes`.
    /// Entries per page of a paged search when none is given (also `[ldap] page_size`'s default):
    /// Active Directory's default MaxPageSize.
    public static let defaultPageSize = 1000

    public func search(base: String, scope: SearchScope, filter: String, attributes: [String],
                       pageSize: Int = LDAPConnection.defaultPageSize, sizeLimit: Int = 0, timeLimit: Int = 0, followRanges: Bool = true,
                       handler: (LDAPEntry) throws -> Void) throws -> SearchResult {
        let handle = try live(.search, dn: base)
        let arena = CArena()
        guard let cBase = arena.cString(base), let cFilter = arena.cString(filter),
              let cAttributes = arena.attributeList(attributes) else {
            throw nulError(.search, dn: base)
        }
        let cScope: Int32
        switch scope {
        case .base: cScope = LDAP_SCOPE_BASE
        case .one: cScope = LDAP_SCOPE_ONELEVEL
        case .sub: cScope = LDAP_SCOPE_SUBTREE
        }
        // The server-side time limit travels in ldap_search_ext's timeout argument.
        let serverTimeLimit = UnsafeMutablePointer<timeval>.allocate(capacity: 1)
        serverTimeLimit.initialize(to: timeval(tv_sec: timeLimit, tv_usec: 0))
        defer { serverTimeLimit.deallocate() }
        let timeLimitArgument = timeLimit > 0 ? serverTimeLimit : nil
        var cookie = CLDAP.berval()
        defer { if cookie.bv_val != nil { ber_memfree(cookie.bv_val) } }
        var result = SearchResult(entries: 0, pages: 0)

        /// Sends one page request (the cookie of the page before, if any); its message id.
        func sendPage() throws(LDAPError) -> Int32 {
            var control: UnsafeMutablePointer<LDAPControl>?
            if pageSize > 0 {
                let rc = ldap_create_page_control(handle, ber_int_t(clamping: pageSize), &cookie, 0, &control)
                if rc != LDAP_SUCCESS { throw handleError(rc, .search, dn: base) }
            }
            var msgid: Int32 = 0
            let sent: Int32
            if let control {
                var controls: [UnsafeMutablePointer<LDAPControl>?] = [control, nil]
                sent = controls.withUnsafeMutableBufferPointer { buffer in
                    ldap_search_ext(handle, cBase, cScope, cFilter, cAttributes, 0, buffer.baseAddress, nil,
                                    timeLimitArgument, Int32(clamping: sizeLimit), &msgid)
                }
                ldap_control_free(control)
            } else {
                sent = ldap_search_ext(handle, cBase, cScope, cFilter, cAttributes, 0, nil, nil,
                                       timeLimitArgument, Int32(clamping: sizeLimit), &msgid)
            }
            if sent != LDAP_SUCCESS { throw handleError(sent, .search, dn: base) }
            result.pages += 1
            return msgid
        }

        /// Converts one entry message (and frees it) and hands the entry over; on any
        /// failure the request `outstanding` (one still being answered, if any) is abandoned.
        func handOver(_ message: OpaquePointer, outstanding: Int32?) throws {
            guard let parsed = parseEntry(handle, message) else {
                ldap_msgfree(message)
                if let outstanding { ldap_abandon_ext(handle, outstanding, nil, nil) }
                throw LDAPError(code: .decodingError, operation: .search, message: "Decoding error",
                                diagnostic: "cannot decode a search entry", dn: base)
            }
            ldap_msgfree(message)
            var entry = parsed.entry
            do {
                if followRanges && parsed.hasOptions && entry.hasRangedAttribute { entry = try completingRanges(entry) }
                try handler(entry)
            } catch {
                if let outstanding { ldap_abandon_ext(handle, outstanding, nil, nil) }
                throw error
            }
        }

        // A page's entry messages are held (unconverted, at most a page of them) until its
        // result arrives; the next page is asked for before they are handed over, so the
        // server works on it meanwhile instead of waiting for this client between pages.
        var held: [OpaquePointer] = []
        var handed = 0 // held[..<handed] are freed
        defer { for message in held[handed...] { ldap_msgfree(message) } }
        func handOverHeld(outstanding: Int32?) throws {
            while handed < held.count {
                let message = held[handed]
                handed += 1
                try handOver(message, outstanding: outstanding)
            }
            held.removeAll(keepingCapacity: true)
            handed = 0
        }
        if pageSize > 0 { held.reserveCapacity(min(pageSize, 1000)) }

        var msgid = try sendPage()
        while true {
            // Read one page's messages.
            var pageError: LDAPError?
            var more = false
            reading: while true {
                let message = try nextMessage(handle, msgid: msgid, all: LDAP_MSG_ONE, operation: .search, dn: base)
                let type = ldap_msgtype(message)
                switch UInt(bitPattern: Int(type)) {
                case LDAP_RES_SEARCH_ENTRY:
                    result.entries += 1
                    // Held first, so that it is freed (by the defer) however this ends.
                    held.append(message)
                    if pageSize <= 0 || held.count > pageSize {
                        // Unpaged, or a server sending more than a page: there is no next
                        // request to send early, so entries are handed over as they arrive.
                        try handOverHeld(outstanding: msgid)
                    }
                case LDAP_RES_SEARCH_REFERENCE:
                    var referrals: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
                    if ldap_parse_reference(handle, message, &referrals, nil, 0) == LDAP_SUCCESS, let referrals {
                        var index = 0
                        while let uri = referrals[index] {
                            result.references.append(String(cString: uri))
                            index += 1
                        }
                        ldap_memvfree(UnsafeMutableRawPointer(referrals).assumingMemoryBound(to: UnsafeMutableRawPointer?.self))
                    }
                    ldap_msgfree(message)
                case LDAP_RES_SEARCH_RESULT:
                    var controls: UnsafeMutablePointer<UnsafeMutablePointer<LDAPControl>?>?
                    defer { if let controls { ldap_controls_free(controls) } }
                    if let error = parseResult(handle, message, operation: .search, dn: base, free: true, controls: &controls) {
                        pageError = error
                        break reading
                    }
                    if cookie.bv_val != nil { ber_memfree(cookie.bv_val) }
                    cookie = CLDAP.berval()
                    if pageSize > 0, let controls,
                       let response = ldap_control_find(LDAP_CONTROL_PAGEDRESULTS, controls, nil) {
                        var estimate: ber_int_t = 0
                        let rc = ldap_parse_pageresponse_control(handle, response, &estimate, &cookie)
                        if rc != LDAP_SUCCESS { pageError = handleError(rc, .search, dn: base) }
                    }
                    more = pageError == nil && pageSize > 0 && cookie.bv_len > 0
                    break reading
                default:
                    // Intermediate responses or unsolicited notifications: not ours.
                    ldap_msgfree(message)
                }
            }
            // The next page is asked for first; then this page's entries are handed over,
            // and only then does a failure of this page (or of that request) count.
            var following: Int32?
            if more {
                do throws(LDAPError) {
                    following = try sendPage()
                } catch {
                    pageError = error
                }
            }
            try handOverHeld(outstanding: following)
            if let pageError { throw pageError }
            guard let following else { return result }
            msgid = following
        }
    }
}
