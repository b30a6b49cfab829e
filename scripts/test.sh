#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, starts a throwaway
# slapd (scripts/test-slapd.sh), runs the whole test suite against it with
# TB_TEST_ENV pointing at the server's env file, and always stops the server.
# Exit status: swift test's.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { echo "test.sh: $*" >&2; }

# --- install what is missing ------------------------------------------------------
missing=()
have_cmd() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
have_cmd slapd || missing+=(slapd)
have_cmd slapadd || missing+=(slapd)
have_cmd ldapsearch || missing+=(ldap-utils)
[ -f /usr/include/ldap.h ] || missing+=(libldap-dev)
[ -f /usr/include/sasl/sasl.h ] || missing+=(libsasl2-dev)
have_cmd pkg-config || missing+=(pkg-config)
have_cmd openssl || have_cmd certtool || missing+=(openssl)
# SCRAM/DIGEST SASL mechanisms (the SASL interactive-bind tests); only "Recommended".
compgen -G "/usr/lib/*/sasl2/libscram.so*" >/dev/null || missing+=(libsasl2-modules)
[ -f /etc/ldap/schema/inetorgperson.schema ] || missing+=(slapd)

if [ ${#missing[@]} -gt 0 ]; then
    # shellcheck disable=SC2207
    missing=($(printf '%s\n' "${missing[@]}" | sort -u))
    log "installing: ${missing[*]}"
    sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || { log "need root (or sudo) to install ${missing[*]}"; exit 1; }
        sudo=(sudo)
    fi
    # Without the preseed the slapd package builds a useless dc=nodomain database.
    echo "slapd slapd/no_configuration boolean true" | "${sudo[@]}" debconf-set-selections
    "${sudo[@]}" apt-get update -q
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# --- build, start the server, test --------------------------------------------------
swift build --build-tests

server_dir=$(mktemp -d /tmp/tb-slapd.XXXXXX)
cleanup() {
    bash scripts/test-slapd.sh stop "$server_dir" || true
    rm -rf "$server_dir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

bash scripts/test-slapd.sh start "$server_dir"
export TB_TEST_ENV="$server_dir/env"
log "test server: $(grep '^TB_LDAP_URI=' "$TB_TEST_ENV" | cut -d= -f2-) (env $TB_TEST_ENV)"

status=0
swift test "$@" || status=$?
exit "$status"
