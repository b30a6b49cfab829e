#!/usr/bin/env bash
# Installs, from Debian's packages, what building and running takeover-bridge against a
# throwaway slapd needs, and only what is missing: slapd (preseeded so the package does
# not create a dc=nodomain database), ldap-utils, libldap-dev, libsasl2-dev, pkg-config,
# openssl (test certificates), libsasl2-modules (SCRAM for the SASL tests) and python3
# (the tests' ranged-retrieval proxy); chromium (the HTML report test) and what
# scripts/package.sh needs (dpkg-dev, binutils, groff-base, systemd).
# With --servers (scripts/test.sh) also the other test directories: 389 Directory Server
# (389-ds-base with its dscreate, python3-lib389, and libnss3-tools for certutil and
# pk12util) and Samba as an AD DC (samba, samba-ad-dc, samba-ad-provision with the AD
# schema files provision reads, ldb-tools for ldbadd/ldbmodify).
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
# python3 (standard library only) runs Tests/tools/range-proxy.py, the AD-like ranged-retrieval proxy.
python3 -c 'import argparse, socket, threading' 2>/dev/null || missing+=(python3)
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
if [ "${1:-}" = --servers ]; then
    have_cmd openssl || missing+=(openssl)
    have_cmd dscreate || missing+=(389-ds-base)
    have_cmd ns-slapd || missing+=(389-ds-base)
    python3 -c 'import lib389' 2>/dev/null || [ -d /usr/lib/python3/dist-packages/lib389 ] || missing+=(python3-lib389)
    have_cmd certutil || missing+=(libnss3-tools)
    have_cmd pk12util || missing+=(libnss3-tools)
    have_cmd samba || missing+=(samba-ad-dc)
    have_cmd samba-tool || missing+=(samba)
    [ -d /usr/share/samba/setup/ad-schema ] || missing+=(samba-ad-provision)
    have_cmd ldbadd || missing+=(ldb-tools)
    have_cmd ldbmodify || missing+=(ldb-tools)
    have_cmd iconv || missing+=(libc-bin)
fi

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
# The test servers run from their own folders on loopback; the packages' own services
# (smbd, nmbd, winbind, a system-wide samba-ad-dc or dirsrv) must not start listening on
# the machine's interfaces: while installing, a temporary policy-rc.d refuses every
# service start (unless the machine already has one), and services the packages enabled
# are disabled again.
policy=/usr/sbin/policy-rc.d
made_policy=0
if printf '%s\n' "${missing[@]}" | grep -qE '^(samba|samba-ad-dc|389-ds-base)$' && [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# takeover-bridge install-deps.sh: no service starts while installing\nexit 101\n' \
        | "${sudo[@]}" tee "$policy" >/dev/null
    made_policy=1
    trap '"${sudo[@]}" rm -f "$policy"' EXIT
    "${sudo[@]}" chmod 755 "$policy"
fi
status=0
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" || status=$?
if [ "$made_policy" -eq 1 ]; then "${sudo[@]}" rm -f "$policy"; trap - EXIT; fi
if [ "$status" -eq 0 ] && [ -d /run/systemd/system ] && printf '%s\n' "${missing[@]}" | grep -qE '^samba'; then
    "${sudo[@]}" systemctl disable --now smbd nmbd winbind samba-ad-dc >/dev/null 2>&1 || true
fi
exit "$status"
