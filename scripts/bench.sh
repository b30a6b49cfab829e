#!/usr/bin/env bash
# The benchmark: takeover-bridge against ldapsearch and ldapmodify on the same private
# slapd, at 100,000 users and at 10,000, medians of several runs.
#
#   scripts/bench.sh [--users 100000] [--runs 5] [--no-small] [--sync] [--root /tmp]
#
# Installs what is missing (python3, GNU time, slapd, ldap-utils), builds the release
# binaries, generates the case (cached in /tmp/tb-bench-N), loads it with slapadd -q
# into a slapd on 127.0.0.1 only, and prints the table. The slapd is stopped on every
# exit path. Details: Benchmarks/large/README.md and docs/performance.md.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

case " $* " in
    *" -h "*|*" --help "*) exec python3 Benchmarks/large/bench.py --help ;;
esac

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi

missing=()
command -v python3 >/dev/null 2>&1 || missing+=(python3)
[ -x /usr/bin/time ] || missing+=(time)
{ command -v slapd >/dev/null 2>&1 || [ -x /usr/sbin/slapd ]; } || missing+=(slapd)
command -v ldapsearch >/dev/null 2>&1 || missing+=(ldap-utils)
{ [ -f /usr/include/ldap.h ] && [ -f /usr/include/sasl/sasl.h ]; } || missing+=(libldap-dev libsasl2-dev)
command -v cp >/dev/null 2>&1 || missing+=(coreutils)
if [ ${#missing[@]} -gt 0 ]; then
    echo "bench: installing ${missing[*]}" >&2
    # No system directory: the package would otherwise create a dc=nodomain database.
    echo "slapd slapd/no_configuration boolean true" | "${sudo_cmd[@]}" debconf-set-selections
    if ! "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
        "${sudo_cmd[@]}" apt-get update >/dev/null
        "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null
    fi
fi

echo "bench: swift build -c release" >&2
swift build -c release --product takeover-bridge >&2

exec python3 Benchmarks/large/bench.py --binary "$repo/.build/release/takeover-bridge" "$@"
