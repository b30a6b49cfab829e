#!/usr/bin/env bash
# The README's first command: installs what is missing, builds takeover-bridge, starts a
# private throwaway slapd on loopback loaded with examples/tree.ldif, and runs
# `plan`, `apply` and `plan` again against it with the reports in examples/reports/.
#
#   bash scripts/demo.sh          run the demo, then stop the server
#   bash scripts/demo.sh --keep   leave the server running to explore (prints how to stop it)
#
# Everything happens in a fresh folder under /tmp (printed at the end); nothing on the
# machine is changed apart from installing missing Debian packages.
#
# Report freshness: the osquery, getent and PowerShell reports carry no time of their
# own, so the bridge uses their file modification time. The demo copies them into its
# folder and touches them, so they are always fresh; lnx-lab-old.csv carries an explicit
# reported_at date long past, so that device is always stale, whatever today is.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$(pwd)

keep=false
case ${1:-} in
    "") ;;
    --keep) keep=true ;;
    *) echo "usage: $0 [--keep]" >&2; exit 64 ;;
esac

say() { printf '\n==> %s\n' "$*"; }
log() { echo "demo: $*" >&2; }

# --- install what is missing (Debian packages) ---------------------------------------
bash scripts/install-deps.sh

command -v swift >/dev/null 2>&1 || { log "swift is not installed (see README, \"Requirements\")"; exit 1; }

# --- build -----------------------------------------------------------------------------
say "Building takeover-bridge (swift build)"
swift build --product takeover-bridge
bin="$(swift build --show-bin-path)/takeover-bridge"
[ -x "$bin" ] || { log "no binary at $bin"; exit 1; }

# --- a private directory server -------------------------------------------------------
demo=$(mktemp -d /tmp/tb-demo.XXXXXX)
server="$demo/slapd"
stop_server() {
    bash "$repo/scripts/test-slapd.sh" stop "$server" >/dev/null 2>&1 || true
}
if ! $keep; then
    trap stop_server EXIT
fi
trap 'exit 130' INT
trap 'exit 143' TERM

say "Starting a throwaway slapd in $server"
bash "$repo/scripts/test-slapd.sh" start "$server"
# shellcheck disable=SC1091
. "$server/env"
echo "listening on $TB_LDAP_URI and $TB_LDAPS_URI (loopback only)"

say "Loading examples/tree.ldif (13 users, 6 devices)"
# -c: the server already holds the base entries and the bridge's service account.
set +e
ldapadd -c -x -H "$TB_LDAP_URI" -D "$TB_ROOT_DN" -y "$TB_ROOT_PW_FILE" -f "$repo/examples/tree.ldif" \
    >"$demo/ldapadd.out" 2>"$demo/ldapadd.err"
status=$?
set -e
if [ $status -ne 0 ] && [ $status -ne 68 ] || grep -v 'Already exists (68)' "$demo/ldapadd.err" | grep -q .; then
    cat "$demo/ldapadd.err" >&2
    log "loading the example tree failed"
    exit 1
fi
users=$(ldapsearch -LLL -x -H "$TB_LDAP_URI" -D "$TB_ROOT_DN" -y "$TB_ROOT_PW_FILE" -b "$TB_PEOPLE_BASE" \
    '(objectClass=posixAccount)' dn | grep -c '^dn:')
echo "$users users under $TB_PEOPLE_BASE"

# --- the bridge's configuration -------------------------------------------------------
# examples/config.toml with the server's address; the CA, the service account's
# password (mode 0600) and the reports next to it (relative paths resolve there).
cp "$TB_CA_CERT" "$demo/ca.crt"
install -m 600 "$TB_BIND_PW_FILE" "$demo/bridge.pw"
mkdir -p "$demo/reports"
cp "$repo"/examples/reports/* "$demo/reports/"
touch "$demo"/reports/*
sed "s|^uri = .*|uri = \"$TB_LDAPS_URI\"|" "$repo/examples/config.toml" > "$demo/config.toml"
chmod 644 "$demo/config.toml"

# Runs the bridge; exit 0 (ok), 2 (changes pending) and 3 (conflicts present, the rest
# done) are normal outcomes here; anything else stops the demo.
bridge() {
    local status=0
    "$bin" -c "$demo/config.toml" "$@" || status=$?
    case $status in
        0|2|3) return 0 ;;
        *) log "takeover-bridge $* exited $status"; exit "$status" ;;
    esac
}

say "takeover-bridge plan   (what it would do; changes nothing)"
bridge plan

say "takeover-bridge apply  (writes the bindings under $TB_BINDINGS_BASE)"
bridge apply

say "takeover-bridge plan   (again: nothing left to do)"
bridge plan
pending=$("$bin" -c "$demo/config.toml" plan --format ldif 2>/dev/null || true)
if [ -n "$pending" ]; then
    log "the second plan still has changes:"
    echo "$pending" >&2
    exit 1
fi
echo "(plan --format ldif is empty: zero changes pending)"

say "The binding groups in the directory now"
LDAPTLS_CACERT="$TB_CA_CERT" ldapsearch -LLL -o ldif-wrap=no -x -H "$TB_LDAPS_URI" -D "$TB_BIND_DN" \
    -y "$TB_BIND_PW_FILE" -b "$TB_BINDINGS_BASE" '(objectClass=takeoverBindingGroup)' member takeoverBoundAccount

say "Where things are"
echo "config:       $demo/config.toml"
echo "reports:      $demo/reports/"
echo "run records:  $demo/state/runs/   (each apply: what it wrote, and an -undo.ldif to reverse it)"
echo "run log:      $demo/state/runs.jsonl"
if $keep; then
    echo "server:       $TB_LDAPS_URI (CA $demo/ca.crt), still running"
    echo "              try: $bin -c $demo/config.toml explain alice"
    echo "              stop it with: bash scripts/test-slapd.sh stop $server"
else
    echo "server:       stopped (run with --keep to explore it)"
fi
