#ifndef CLDAP_SHIM_H
#define CLDAP_SHIM_H
// The C boundary of LDAPClient: OpenLDAP's libldap/liblber and the Cyrus SASL
// interaction struct. Found through pkg-config "ldap" (no absolute include paths).
// Helpers here exist only where Swift cannot import a macro; each is prefixed
// CLDAP_ and says why it exists.
#include <ldap.h>
#include <lber.h>
#include <sasl/sasl.h>

// LDAP_OPT_ON is `((void *) &ber_pvt_opt_on)`: a cast of a global's address, which
// Swift's macro importer rejects. Used for LDAP_OPT_RESTART.
static inline void *CLDAP_opt_on(void) { return LDAP_OPT_ON; }

// LDAP_OPT_OFF is `((void *) 0)`, also a cast macro. Used for LDAP_OPT_REFERRALS.
static inline void *CLDAP_opt_off(void) { return LDAP_OPT_OFF; }

// LDAP_MOD_BVALUES and LDAP_MOD_ADD/DELETE are plain ints, but mod_bvalues is a macro
// naming a union member; this sets it without relying on how the union imports.
static inline void CLDAP_mod_set_bvalues(LDAPMod *mod, struct berval **values) {
    mod->mod_bvalues = values;
}

// Puts liblber's read-ahead layer over the connection's TCP layer, as libldap itself does
// only for UDP: ber_get_next then takes each message out of one buffer of `size` bytes
// instead of two read(2) calls (tag and length, then the rest) with a poll(2) before each.
// A TLS layer above reads through it. The layer belongs to the handle's Sockbuf and is
// freed with it (ldap_unbind_ext). A helper because Swift 6 cannot take the address of
// the mutable C global ber_sockbuf_io_readahead. Returns 0 when added, 1 when the handle
// has no Sockbuf (nothing added), -1 when the layer's buffer could not be allocated
// (it is then linked without one: the caller must not go on).
static inline int CLDAP_add_readahead(LDAP *ld, int size) {
    Sockbuf *sb = NULL;
    if (ldap_get_option(ld, LDAP_OPT_SOCKBUF, &sb) != LDAP_OPT_SUCCESS || sb == NULL) return 1;
    return ber_sockbuf_add_io(sb, &ber_sockbuf_io_readahead, LBER_SBIOD_LEVEL_PROVIDER, &size) == 0 ? 0 : -1;
}

#endif
