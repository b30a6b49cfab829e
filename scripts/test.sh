#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, starts a throwaway
# slapd (scripts/test-slapd.sh), runs the whole test suite against it with
# TB_TEST_ENV pointing at the server's env file, and always stops the server.
# Exit status: swift test's.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { echo "test.sh: $*" >&2; }

# --- install what is missing (Debian packages) ---------------------------------------
bash scripts/install-deps.sh

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

# The suite runs in a session of its own, so every slapd a test starts for itself (its
# private servers for kill and restart tests) can be found and stopped afterwards, even
# when a test crashed before stopping it: nothing outlives this script.
sid_file="$server_dir/test-session"
status=0
setsid --wait bash -c 'echo $$ > "$0"; exec swift test "$@"' "$sid_file" "$@" || status=$?
if [ -s "$sid_file" ]; then
    pkill -TERM -s "$(cat "$sid_file")" slapd 2>/dev/null || true
fi

# --- the Debian package (issue 14) ----------------------------------------------------
# Builds dist/*.deb from a release build (.build-release, incremental after the first
# time) and checks it: contents, ldd, --version, manual page, units. About 8 minutes on
# a cold 2-core machine, a minute when the release build is warm; TB_SKIP_PACKAGE_CHECK=1
# skips it (never in CI).
if [ "${TB_SKIP_PACKAGE_CHECK:-0}" != 1 ]; then
    package_status=0
    bash scripts/package-check.sh || package_status=$?
    [ "$status" -ne 0 ] || status=$package_status
fi
exit "$status"
