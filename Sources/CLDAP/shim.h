#ifndef CLDAP_SHIM_H
#define CLDAP_SHIM_H
#include <ldap.h>
#include <lber.h>
#include <sasl/sasl.h>
#endif
