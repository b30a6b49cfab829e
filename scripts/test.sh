#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, starts three throwaway
# directories (slapd by scripts/test-slapd.sh, 389 DS by scripts/test-389.sh, Samba AD
# by scripts/test-samba-ad.sh on $TB_SAMBA_ADDR, by default the first free one of
# 127.0.0.2 and 127.0.0.4-40; all three start in the background while the build runs),
# runs the whole test suite with their env files in TB_TEST_ENV (slapd),
# TB_TEST_ENV_389 and TB_TEST_ENV_AD, and always stops them.
# Exit status: swift test's (1 when a server failed to start).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { echo "test.sh: $*" >&2; }

# --- install what is missing (Debian packages) ---------------------------------------
bash scripts/install-deps.sh --servers

# --- start the servers (in the background), build, test -------------------------------

server_dir=$(mktemp -d /tmp/tb-slapd.XXXXXX)
dir_389=$(mktemp -d /tmp/tb-389.XXXXXX)
dir_ad=$(mktemp -d /tmp/tb-ad.XXXXXX)
chmod 755 "$dir_389" # ns-slapd runs as the dirsrv user
starts=()
cleanup() {
    local p d
    # A start still running (interrupted build): end its process group first, then stop.
    for d in "$server_dir" "$dir_389" "$dir_ad"; do
        if [ -s "$d/start.pid" ]; then kill -TERM -- "-$(cat "$d/start.pid")" 2>/dev/null || true; fi
    done
    for p in "${starts[@]}"; do wait "$p" 2>/dev/null || true; done
    bash scripts/test-slapd.sh stop "$server_dir/srv" || true
    bash scripts/test-389.sh stop "$dir_389/srv" || true
    bash scripts/test-samba-ad.sh stop "$dir_ad/srv" || true
    rm -rf "$server_dir" "$dir_389" "$dir_ad"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Each server lives in DIR/srv; its start logs to DIR/start.log and records its seconds in DIR/seconds.
start_server() { # script dir label
    local t0=$SECONDS child
    setsid bash "scripts/$1" start "$2/srv" >"$2/start.log" 2>&1 </dev/null &
    child=$!
    echo "$child" > "$2/start.pid"
    if wait "$child"; then
        rm -f "$2/start.pid"
        echo "$(( SECONDS - t0 ))" > "$2/seconds"
    else
        return 1
    fi
}
# Samba's ports are fixed: without TB_SAMBA_ADDR, take the first loopback address from
# 127.0.0.2 up on which nothing answers on 389 or 636 (another run's Samba may hold one).
if [ -z "${TB_SAMBA_ADDR:-}" ]; then
    for n in 2 $(seq 4 40); do
        if ! (exec 3<>"/dev/tcp/127.0.0.$n/389") 2>/dev/null && ! (exec 3<>"/dev/tcp/127.0.0.$n/636") 2>/dev/null; then
            export TB_SAMBA_ADDR=127.0.0.$n
            break
        fi
    done
fi
start_server test-slapd.sh "$server_dir" slapd & starts+=($!)
start_server test-389.sh "$dir_389" 389 & starts+=($!)
start_server test-samba-ad.sh "$dir_ad" samba-ad & starts+=($!)

swift build --build-tests

failed=0
labels=(slapd 389 samba-ad)
dirs=("$server_dir" "$dir_389" "$dir_ad")
for i in 0 1 2; do
    if wait "${starts[$i]}"; then
        log "${labels[$i]} started in $(cat "${dirs[$i]}/seconds") s"
    else
        log "${labels[$i]} did not start:"; cat "${dirs[$i]}/start.log" >&2 || true; failed=1
    fi
done
starts=()
[ "$failed" -eq 0 ] || exit 1
export TB_TEST_ENV="$server_dir/srv/env"
export TB_TEST_ENV_389="$dir_389/srv/env"
export TB_TEST_ENV_AD="$dir_ad/srv/env"
for e in "$TB_TEST_ENV" "$TB_TEST_ENV_389" "$TB_TEST_ENV_AD"; do
    log "test server: $(grep '^TB_LDAP_URI=' "$e" | cut -d= -f2-) (env $e)"
done

# The suite runs in a session of its own, so every slapd a test starts for itself (its
# private servers for kill and restart tests) can be found and stopped afterwards, even
# when a test crashed before stopping it: nothing outlives this script.
sid_file="$server_dir/srv/test-session"
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
