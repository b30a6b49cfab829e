#!/usr/bin/env bash
# Leak check of LDAPClient: builds ldap-leak-loop (a search-and-modify loop over every
# path that allocates in C: binds of each kind, StartTLS/ldaps/ldapi, paged search,
# binary values, error results, abandoned searches, pipelined modifies) and runs it
# under valgrind against a private throwaway slapd. Fails unless valgrind reports
# "definitely lost: 0 bytes".
#
# usage: scripts/leak-check.sh [ITERATIONS]   (default 5)
# Needs a debug build's symbols; takes about a minute per iteration under valgrind.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
iterations=${1:-5}

command -v valgrind >/dev/null 2>&1 || { echo "leak-check: valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }

swift build --product ldap-leak-loop
binary="$(swift build --show-bin-path)/ldap-leak-loop"

server_dir=$(mktemp -d /tmp/tb-leak.XXXXXX)
trap 'bash scripts/test-slapd.sh stop "$server_dir" || true; rm -rf "$server_dir"' EXIT
bash scripts/test-slapd.sh start "$server_dir"

log="$server_dir/valgrind.log"
status=0
# scripts/valgrind.supp names the known leaks in libldap 2.5.13 (client certificate
# key/cert never freed by tls_g.c) and glibc's resolver; everything else counts.
valgrind --leak-check=full --num-callers=40 --errors-for-leak-kinds=definite --error-exitcode=99 \
    --suppressions=scripts/valgrind.supp --log-file="$log" "$binary" "$server_dir/env" "$iterations" || status=$?
grep -E "definitely lost:|indirectly lost:|possibly lost:|still reachable:|suppressed:|ERROR SUMMARY" "$log" | sed 's/^==[0-9]*== //' || true
if ! grep -q "definitely lost: 0 bytes" "$log" && grep -q "definitely lost:" "$log"; then
    echo "leak-check: FAILED, see the loss records:" >&2
    grep -B2 -A25 "definitely lost in loss record" "$log" | sed 's/^==[0-9]*== //' | head -200 >&2
    exit 1
fi
if [ "$status" -ne 0 ] && [ "$status" -ne 99 ]; then
    echo "leak-check: the loop failed (exit $status)" >&2
    tail -20 "$log" >&2
    exit "$status"
fi
echo "leak-check: OK ($iterations iterations, definitely lost: 0 bytes)"
