#!/usr/bin/env bash
# Installs, from Debian's packages, what building and running takeover-bridge against a
# throwaway slapd needs, and only what is missing: slapd (preseeded so the package does
# not create a dc=nodomain database), ldap-utils, libldap-dev, libsasl2-dev, pkg-config,
# openssl (test certificates) and libsasl2-modules (SCRAM for the SASL tests); chromium
# (the HTML report test) and what scripts/package.sh needs (dpkg-dev, binutils, groff-base,
# systemd).
# Used by scripts/test.sh and scripts/demo.sh.
set -euo pipefail

log() { echo "install-deps: $*" >&2; }

missing=()
have_cmd() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
have_cmd slapd || missing+=(slapd)
have_cmd slapadd || missing+=(slapd)
have_cmd ldapsearch || missing+=(ldap-utils)
have_cmd ldapadd || missing+=(ldap-utils)
[ -f /usr/include/ldap.h ] || missing+=(libldap-dev)
[ -f /usr/include/sasl/sasl.h ] || missing+=(libsasl2-dev)
have_cmd pkg-config || missing+=(pkg-config)
have_cmd openssl || have_cmd certtool || missing+=(openssl)
compgen -G "/usr/lib/*/sasl2/libscram.so*" >/dev/null || missing+=(libsasl2-modules)
[ -f /etc/ldap/schema/inetorgperson.schema ] || missing+=(slapd)
# The HTML report is rendered by headless Chromium in the test suite.
have_cmd chromium || missing+=(chromium)
# scripts/package.sh and package-check.sh: dpkg-shlibdeps, strip/readelf, the man page
# check, systemd-analyze verify of the units.
have_cmd dpkg-shlibdeps || missing+=(dpkg-dev)
have_cmd strip || missing+=(binutils)
have_cmd readelf || missing+=(binutils)
have_cmd groff || missing+=(groff-base)
have_cmd systemd-analyze || missing+=(systemd)

[ ${#missing[@]} -gt 0 ] || exit 0
# shellcheck disable=SC2207
missing=($(printf '%s\n' "${missing[@]}" | sort -u))
log "installing: ${missing[*]}"
sudo=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { log "need root (or sudo) to install ${missing[*]}"; exit 1; }
    sudo=(sudo)
fi
echo "slapd slapd/no_configuration boolean true" | "${sudo[@]}" debconf-set-selections
"${sudo[@]}" apt-get update -q
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
