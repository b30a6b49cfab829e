// SASL interactive bind support: the answers to Cyrus SASL's prompts.

internal import CLDAP
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The answers for one `ldap_sasl_interactive_bind_s` call, as C strings owned by this
/// object. The bind passes an unretained pointer to it as the callback's `defaults`;
/// the caller keeps it alive (`withExtendedLifetime`) for the whole call, so the
/// callback never sees a dangling pointer. The password copy is zeroed on release.
final class SASLContext {
    let authcID: UnsafeMutablePointer<CChar>?
    let password: UnsafeMutablePointer<CChar>?
    let realm: UnsafeMutablePointer<CChar>?
    let authzID: UnsafeMutablePointer<CChar>?

    init(authcID: String?, password: String?, realm: String?, authzID: String?) {
        self.authcID = authcID.flatMap { strdup($0) }
        self.password = password.flatMap { strdup($0) }
        self.realm = realm.flatMap { strdup($0) }
        self.authzID = authzID.flatMap { strdup($0) }
    }

    deinit {
        if let password {
            memset(password, 0, strlen(password))
            free(password)
        }
        free(authcID)
        free(realm)
        free(authzID)
    }
}

/// The empty answer for prompts we have nothing for (static storage, never freed).
private let emptyAnswer: StaticString = ""

/// `LDAP_SASL_INTERACT_PROC`: walks the `sasl_interact_t` array (terminated by
/// SASL_CB_LIST_END) and points each result at the matching answer. The strings belong
/// to the SASLContext, which outlives the bind call.
let saslInteract: @convention(c) (OpaquePointer?, UInt32, UnsafeMutableRawPointer?, UnsafeMutableRawPointer?) -> Int32 = {
    _, _, defaults, interact in
    guard let defaults, let interact else { return LDAP_PARAM_ERROR }
    let context = Unmanaged<SASLContext>.fromOpaque(defaults).takeUnretainedValue()
    var prompt = interact.assumingMemoryBound(to: sasl_interact_t.self)
    while prompt.pointee.id != UInt(SASL_CB_LIST_END) {
        let answer: UnsafeMutablePointer<CChar>?
        switch Int32(truncatingIfNeeded: prompt.pointee.id) {
        case SASL_CB_AUTHNAME: answer = context.authcID
        case SASL_CB_PASS: answer = context.password
        case SASL_CB_GETREALM: answer = context.realm
        case SASL_CB_USER: answer = context.authzID
        default: answer = nil
        }
        if let answer {
            prompt.pointee.result = UnsafeRawPointer(answer)
            prompt.pointee.len = UInt32(strlen(answer))
        } else if let suggested = prompt.pointee.defresult {
            prompt.pointee.result = UnsafeRawPointer(suggested)
            prompt.pointee.len = UInt32(strlen(suggested))
        } else {
            prompt.pointee.result = UnsafeRawPointer(emptyAnswer.utf8Start)
            prompt.pointee.len = 0
        }
        prompt += 1
    }
    return LDAP_SUCCESS
}
