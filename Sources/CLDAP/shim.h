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

#endif
