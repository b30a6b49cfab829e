#!/usr/bin/env bash
# Fault test: many `takeover-bridge apply` runs against a private slapd that is killed
# (SIGKILL) at random moments, with the directory changing between runs and a "person"
# editing binding groups by hand. At the end a clean apply must leave exactly the right
# bindings, and every manual edit must have survived.
#
#   bash scripts/fault-test.sh [--runs N] [--users N] [--devices N] [--seed S]
#                              [--kill-percent P] [--bin PATH] [--keep]
#
#   --runs N          applies with faults (default 50)
#   --users N         users in the generated directory (default 400)
#   --devices N       devices (default 200)
#   --seed S          seed of every random choice but timing (default: from the clock)
#   --kill-percent P  share of runs whose server is killed (default 80)
#   --bin PATH        the takeover-bridge binary (default $TB_BRIDGE_BINARY, else
#                     .build/debug/takeover-bridge, built with `swift build` if missing)
#   --keep            keep the work folder (printed) and leave nothing running
#
# Each run:
#   1. changes the directory as an admin would: connects and disconnects users (tens to
#      hundreds of changes), sometimes deletes a user (leaving its DN dangling in device
#      entries, like a directory without refint) or adds one;
#   2. starts `apply` and, in most runs, SIGKILLs slapd after a random delay (uniform
#      over 0.2 to 1.0 x the last measured apply time), then restarts it with
#      scripts/test-slapd.sh restart, either at once (the bridge may reconnect and
#      finish) or after the bridge gave up;
#   3. checks the run: exit 0 or 5 (never a crash, never another code), ou=people and
#      ou=devices untouched by the bridge, a run record appended, every manual edit so
#      far still present;
#   4. lets a person edit binding groups as the rootdn: adds an unrelated member value
#      (cn=...,ou=services) and a human `description` to a few groups.
# At the end: a clean apply (exit 0), `plan --check` (exit 0), the binding memberships
# and records equal both the set this script computes from its own record of the input
# and what a from-scratch apply on a fresh server loaded with the same people and
# devices gives; every manual edit survived.
#
# Loopback only (the servers listen on 127.0.0.1 and a unix socket). Bounded in time:
# the loop stops after 480 s (counted as a failure) so the whole script ends in < 10 min.
# The last line is `N passed, M failed`; exit 0 when M is 0, else 1 (64: usage).
set -uo pipefail
{ # The whole script is read before it runs: editing it during a run is harmless.

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
runs=50 users=400 devices=200 seed=$(( $(date +%s) % 32768 )) kill_percent=80 bin=${TB_BRIDGE_BINARY:-} keep=false

usage() { sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 64; }
while [ $# -gt 0 ]; do
    case $1 in
        --runs) runs=${2:-}; shift 2 ;;
        --users) users=${2:-}; shift 2 ;;
        --devices) devices=${2:-}; shift 2 ;;
        --seed) seed=${2:-}; shift 2 ;;
        --kill-percent) kill_percent=${2:-}; shift 2 ;;
        --bin) bin=${2:-}; shift 2 ;;
        --keep) keep=true; shift ;;
        -h|--help) usage ;;
        *) echo "fault-test: unknown argument '$1'" >&2; usage ;;
    esac
done
for n in "$runs" "$users" "$devices" "$seed" "$kill_percent"; do
    case $n in ''|*[!0-9]*) echo "fault-test: numbers expected" >&2; usage ;; esac
done
[ "$users" -ge 20 ] && [ "$devices" -ge 10 ] || { echo "fault-test: at least 20 users and 10 devices" >&2; exit 64; }

say() { echo "fault-test: $*" >&2; }
started=$SECONDS
time_bound=480

# --- the binary -----------------------------------------------------------------------
if [ -z "$bin" ]; then
    bin=$repo/.build/debug/takeover-bridge
    if [ ! -x "$bin" ]; then
        say "building takeover-bridge"
        (cd "$repo" && swift build --product takeover-bridge >&2) || { say "build failed"; exit 1; }
    fi
fi
[ -x "$bin" ] || { say "no takeover-bridge binary at $bin"; exit 1; }

# --- the work folder and the server -----------------------------------------------------
work=$(mktemp -d /tmp/tb-fault.XXXXXX)
srv=$work/srv
fresh=$work/fresh
cleanup() {
    bash "$repo/scripts/test-slapd.sh" stop "$srv" >/dev/null 2>&1 || true
    bash "$repo/scripts/test-slapd.sh" stop "$fresh" >/dev/null 2>&1 || true
    if $keep; then say "work folder kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

bash "$repo/scripts/test-slapd.sh" start "$srv" >&2 || { say "cannot start slapd"; exit 1; }
# shellcheck disable=SC1091
. "$srv/env"
people=$TB_PEOPLE_BASE
devbase=$TB_DEVICES_BASE
bindbase=$TB_BINDINGS_BASE
root=(-x -H "$TB_LDAP_URI" -D "$TB_ROOT_DN" -y "$TB_ROOT_PW_FILE")

# A 64-bit LCG (bash's $RANDOM is reseeded in every subshell): `rnd N` sets R to 0..N-1.
_s=$(( seed * 2654435761 + 1 ))
rnd() { _s=$(( _s * 6364136223846793005 + 1442695040888963407 )); R=$(( ((_s >> 33) & 0x7fffffff) % $1 )); }

ldif_modify() { # stdin: LDIF; as the rootdn; fails loudly
    local out
    if ! out=$(ldapmodify "${root[@]}" 2>&1 >/dev/null); then
        say "ldapmodify failed: $out"
        return 1
    fi
}

# --- the generated directory -------------------------------------------------------------
# $work/users.tsv   uid <TAB> uidNumber <TAB> display name <TAB> alive (1|0)
# $work/devices.tsv device <TAB> has report (1|0)
# $work/conn.tsv    device <TAB> uid: the connections the device entries hold now
first_names=(alice bob carol dave erin frank grace heidi ivan judy mallory niaj olivia peggy rupert sybil trent victor walter yolanda zoe)
last_names=(smith jones brown taylor wilson davies evans thomas johnson roberts walker wright robinson thompson white hughes edwards green hall wood)
device_kinds=("lt" "ws" "MBP of" "srv")

: > "$work/users.tsv"
for (( i = 1; i <= users; i++ )); do
    rnd ${#first_names[@]}; f=${first_names[$R]}
    rnd ${#last_names[@]}; l=${last_names[$R]}
    printf '%s.%s%d\t%d\t%s %s %d\n' "$f" "$l" "$i" $((20000 + i)) "${f^}" "${l^}" "$i" >> "$work/users.tsv"
done
sed -i 's/$/\t1/' "$work/users.tsv"
next_user=$((users + 1))

: > "$work/devices.tsv"
for (( i = 1; i <= devices; i++ )); do
    rnd ${#device_kinds[@]}; k=${device_kinds[$R]}
    case $k in
        "MBP of") rnd "$users"; name="$k $(cut -f1 "$work/users.tsv" | sed -n "$((1 + R))p" | cut -d. -f1)'s team $i" ;;
        *) name=$(printf '%s-%04d' "$k" "$i") ;;
    esac
    has_report=1
    rnd 100; [ "$R" -lt 15 ] && has_report=0
    printf '%s\t%d\n' "$name" "$has_report" >> "$work/devices.tsv"
done

mapfile -t user_ids < <(cut -f1 "$work/users.tsv")
mapfile -t device_names < <(cut -f1 "$work/devices.tsv")

: > "$work/conn.tsv"
for d in "${device_names[@]}"; do
    rnd 4; n=$(( 1 + R ))
    for (( j = 0; j < n; j++ )); do
        rnd ${#user_ids[@]}
        printf '%s\t%s\n' "$d" "${user_ids[$R]}" >> "$work/conn.tsv"
    done
done
sort -u -o "$work/conn.tsv" "$work/conn.tsv"

user_ldif() { # uid uidNumber display
    printf 'dn: uid=%s,%s\nobjectClass: inetOrgPerson\nobjectClass: posixAccount\nuid: %s\ncn: %s\nsn: %s\ndisplayName: %s\nuidNumber: %s\ngidNumber: 100\nhomeDirectory: /home/%s\nloginShell: /bin/bash\n\n' \
        "$1" "$people" "$1" "$3" "${3##* }" "$3" "$2" "$1"
}
{
    while IFS=$'\t' read -r uid num display _; do user_ldif "$uid" "$num" "$display"; done < "$work/users.tsv"
    for d in "${device_names[@]}"; do
        printf 'dn: cn=%s,%s\nobjectClass: groupOfNames\ncn: %s\n' "$d" "$devbase" "$d"
        awk -F'\t' -v d="$d" -v p="$people" '$1 == d { printf "member: uid=%s,%s\n", $2, p }' "$work/conn.tsv"
        echo
    done
} > "$work/initial.ldif"
if ! out=$(ldapadd "${root[@]}" -f "$work/initial.ldif" 2>&1 >/dev/null); then say "loading the directory failed: $out"; exit 1; fi

# Reports: one CSV per device with a report (fresh: an hour ago): root, a local admin,
# accounts of most initially connected users (takeover) and of a few others (former
# users); connected users without an account are provisioned. No account looks like
# another user's (distinct uids, homes and full names), so the expected bindings are
# exactly the connected pairs on reported devices.
mkdir -p "$work/reports" "$work/state"
reported_at=$(date -u -d '1 hour ago' +%Y-%m-%dT%H:%M:%SZ)
declare -A number_of display_of
while IFS=$'\t' read -r uid num display _; do number_of[$uid]=$num; display_of[$uid]=$display; done < "$work/users.tsv"
i=0
while IFS=$'\t' read -r d has_report; do
    i=$((i + 1))
    [ "$has_report" = 1 ] || continue
    file="$work/reports/device-$i.csv"
    {
        echo "device,username,uid,home,full_name,shell,reported_at"
        echo "$d,root,0,/root,root,/bin/bash,$reported_at"
        echo "$d,localadmin,1000,/home/localadmin,Local Admin,/bin/bash,$reported_at"
        awk -F'\t' -v d="$d" '$1 == d { print $2 }' "$work/conn.tsv" | while read -r uid; do
            rnd 100; [ "$R" -lt 70 ] && echo "$d,$uid,${number_of[$uid]},/home/$uid,${display_of[$uid]},/bin/bash,$reported_at"
        done
        rnd 3
        for (( j = R; j > 0; j-- )); do
            rnd ${#user_ids[@]}; uid=${user_ids[$R]}
            grep -qx -F "$(printf '%s\t%s' "$d" "$uid")" "$work/conn.tsv" && continue
            echo "$d,$uid,${number_of[$uid]},/home/$uid,${display_of[$uid]},/bin/bash,$reported_at"
        done
    } | awk '!seen[$0]++' > "$file"
done < "$work/devices.tsv"

install -m 600 "$TB_BIND_PW_FILE" "$work/bind.pw"
write_config() { # folder uri state
    cat > "$1/config.toml" <<EOF
[ldap]
uri = "$2"
bind_dn = "$TB_BIND_DN"
bind_password_file = "$work/bind.pw"
timeout = 10

[users]
search_base = "$people"

[devices]
search_base = "$devbase"
reports = "$work/reports"

[bindings]
search_base = "$bindbase"

[safety]
max_unbinds = 1000000
max_unbind_percent = 100

[state]
dir = "$3"
EOF
    chmod 600 "$1/config.toml"
}
write_config "$work" "$TB_LDAP_URI" "$work/state"

# --- helpers -----------------------------------------------------------------------------
# Sorted `cn<TAB>attr<TAB>value` lines of every binding group (member, takeoverBoundAccount,
# description), from server URI $1 (root credentials of env file $2); not the run lease,
# which stays between runs under the same base.
binding_lines() {
    local uri=$1 envfile=$2 rootdn pwfile
    rootdn=$(grep '^TB_ROOT_DN=' "$envfile" | cut -d= -f2-)
    pwfile=$(grep '^TB_ROOT_PW_FILE=' "$envfile" | cut -d= -f2-)
    ldapsearch -LLL -o ldif-wrap=no -x -H "$uri" -D "$rootdn" -y "$pwfile" -b "$bindbase" -s one \
        '(!(cn=takeover-bridge-lease))' cn member takeoverBoundAccount description 2>/dev/null |
    awk '
        function flush() { for (i = 1; i <= n; i++) print cn "\t" lines[i]; n = 0; cn = "" }
        /^dn:/ { flush(); next }
        /^$/ { flush(); next }
        /^cn: / { cn = substr($0, 5); next }
        /^(member|takeoverBoundAccount|description): / {
            p = index($0, ": "); a = substr($0, 1, p - 1); v = substr($0, p + 2)
            # A record carries the stable id of its user (entryUUID, different on every server) and
            # former DNs: compared without them.
            if (a == "takeoverBoundAccount") gsub(/<(ID|WAS)=[^>]*>;/, "", v)
            lines[++n] = a "\t" v; next }
        /^[a-zA-Z]+:: / { lines[++n] = "BASE64\t" $0; next }
        END { flush() }' | sort
}

# ou=people and ou=devices (everything the bridge must never write), canonical.
outside_dump() {
    { ldapsearch -LLL -o ldif-wrap=no "${root[@]}" -b "$people" '(objectClass=*)' '*' '+' 2>/dev/null
      ldapsearch -LLL -o ldif-wrap=no "${root[@]}" -b "$devbase" '(objectClass=*)' '*' '+' 2>/dev/null
    } | awk 'BEGIN { RS = ""; FS = "\n" } { print }' | sort
}

slapd_pid() { cat "$srv/slapd.pid" 2>/dev/null; }
# Running and not a zombie.
alive() {
    local state
    state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}
restart_server() {
    bash "$repo/scripts/test-slapd.sh" restart "$srv" >/dev/null 2>&1 || { sleep 1; bash "$repo/scripts/test-slapd.sh" restart "$srv" >&2; }
}

# The script's own expectation: connected pairs on reported devices whose user exists,
# as `cn<TAB>member<TAB>DN` and `cn<TAB>takeoverBoundAccount<TAB>uid:DN` lines.
expected_lines() {
    awk -F'\t' -v p="$people" '
        FILENAME == ARGV[1] { if ($4 == 1) alive[$1] = 1; next }
        FILENAME == ARGV[2] { if ($2 == 1) reported[$1] = 1; next }
        ($1 in reported) && ($2 in alive) {
            dn = "uid=" $2 "," p
            print $1 "\tmember\t" dn
            print $1 "\ttakeoverBoundAccount\t" $2 ":" dn
        }' "$work/users.tsv" "$work/devices.tsv" "$work/conn.tsv" | sort
}

# --- the admin's changes between runs -------------------------------------------------------
# Adds to the caller's $ldif a change of device D's member list: add|delete uid=UID.
member_change() { # add|delete device uid
    local change
    printf -v change 'dn: cn=%s,%s\nchangetype: modify\n%s: member\nmember: uid=%s,%s\n-\n\n' "$2" "$devbase" "$1" "$3" "$people"
    ldif+=$change
}

# Connects device D and user UID (conn.tsv and the caller's $ldif); false when they are already.
connect_user() { # device uid
    local line
    line=$(printf '%s\t%s' "$1" "$2")
    grep -qx -F "$line" "$work/conn.tsv" && return 1
    echo "$line" >> "$work/conn.tsv"
    member_change add "$1" "$2"
}

change_directory() {
    local count=$1 ldif="" k d uid line
    for (( k = 0; k < count; k++ )); do
        rnd ${#device_names[@]}; d=${device_names[$R]}
        rnd 100
        if [ "$R" -lt 55 ]; then
            rnd ${#user_ids[@]}; uid=${user_ids[$R]}
            connect_user "$d" "$uid" || continue
        else
            # Disconnect one of d's users, keeping at least one member (groupOfNames).
            mapfile -t members < <(awk -F'\t' -v d="$d" '$1 == d { print $2 }' "$work/conn.tsv")
            [ ${#members[@]} -ge 2 ] || continue
            rnd ${#members[@]}; uid=${members[$R]}
            line=$(printf '%s\t%s' "$d" "$uid")
            grep -vx -F "$line" "$work/conn.tsv" > "$work/conn.tmp"; mv "$work/conn.tmp" "$work/conn.tsv"
            member_change delete "$d" "$uid"
        fi
    done
    # Now and then a person leaves (entry deleted; device entries keep the dangling DN)
    # or joins (a new user, connected to one or two devices).
    rnd 100
    if [ "$R" -lt 30 ]; then
        rnd ${#user_ids[@]}; uid=${user_ids[$R]}
        if awk -F'\t' -v u="$uid" '$1 == u && $4 == 1 { found = 1 } END { exit !found }' "$work/users.tsv"; then
            ldif+="dn: uid=$uid,$people"$'\n'"changetype: delete"$'\n\n'
            awk -F'\t' -v OFS='\t' -v u="$uid" '$1 == u { $4 = 0 } { print }' "$work/users.tsv" > "$work/users.tmp"
            mv "$work/users.tmp" "$work/users.tsv"
        fi
    fi
    rnd 100
    if [ "$R" -lt 30 ]; then
        uid="new.joiner$next_user"
        local num=$((20000 + next_user)) display="New Joiner $next_user"
        next_user=$((next_user + 1))
        ldif+=$(user_ldif "$uid" "$num" "$display" | sed '1a changetype: add')$'\n\n'
        printf '%s\t%d\t%s\t1\n' "$uid" "$num" "$display" >> "$work/users.tsv"
        user_ids+=("$uid")
        rnd 2
        for (( k = 1 + R; k > 0; k-- )); do
            rnd ${#device_names[@]}; d=${device_names[$R]}
            connect_user "$d" "$uid" || continue
        done
    fi
    sort -u -o "$work/conn.tsv" "$work/conn.tsv"
    [ -z "$ldif" ] || printf '%s' "$ldif" | ldif_modify
}

# --- a person's edits ------------------------------------------------------------------------
edit_number=0
person_edits() {
    local count=$1 k cn value
    mapfile -t groups < <(binding_lines "$TB_LDAP_URI" "$srv/env" | cut -f1 | sort -u)
    [ ${#groups[@]} -gt 0 ] || return 0
    local ldif=""
    for (( k = 0; k < count; k++ )); do
        rnd ${#groups[@]}; cn=${groups[$R]}
        edit_number=$((edit_number + 1))
        value="cn=helpdesk-$edit_number,$TB_SERVICES_BASE"
        ldif+="dn: cn=$cn,$bindbase"$'\n'"changetype: modify"$'\n'"add: member"$'\n'"member: $value"$'\n'"-"$'\n'
        ldif+="add: description"$'\n'"description: checked by Pat on round $round (ticket $edit_number)"$'\n'"-"$'\n\n'
        printf '%s\tmember\t%s\n' "$cn" "$value" >> "$work/edits.tsv"
        printf '%s\tdescription\tchecked by Pat on round %s (ticket %s)\n' "$cn" "$round" "$edit_number" >> "$work/edits.tsv"
    done
    printf '%s' "$ldif" | ldif_modify
}

edits_missing() { # how many recorded manual edits are not in the directory now
    [ -s "$work/edits.tsv" ] || { echo 0; return; }
    binding_lines "$TB_LDAP_URI" "$srv/env" > "$work/now.tsv"
    sort "$work/edits.tsv" | comm -23 - "$work/now.tsv" | wc -l
}

# --- the runs ----------------------------------------------------------------------------------
: > "$work/edits.tsv"
declare -A exits
passed=0 failed=0 kills=0 kills_in_writes=0 reconnected=0 quick_restarts=0 records_expected=0
fail() { failed=$((failed + 1)); say "FAIL: $*"; }
pass() { passed=$((passed + 1)); }
last_duration_ms=800

say "seed $seed: $users users, $devices devices, $(wc -l < "$work/conn.tsv") connections; $runs runs; work $work"
for (( round = 1; round <= runs; round++ )); do
    if [ $((SECONDS - started)) -gt $time_bound ]; then
        fail "time bound of ${time_bound}s reached after $((round - 1)) runs"
        break
    fi
    if [ "$round" -gt 1 ]; then
        # Mostly tens to a couple of hundred changes, now and then a reorganisation of hundreds.
        rnd 100
        if [ "$R" -lt 20 ]; then rnd 400; n=$((300 + R)); else rnd 160; n=$((40 + R)); fi
        change_directory "$n" || { fail "round $round: could not change the directory"; continue; }
    fi
    before_outside=$(outside_dump)

    kill_it=false
    rnd 100; [ "$R" -lt "$kill_percent" ] && kill_it=true
    rnd $(( last_duration_ms * 8 / 10 + 1 )); delay_ms=$(( last_duration_ms / 5 + R ))
    quick=false
    rnd 2; [ "$R" -eq 0 ] && quick=true

    t0=$(date +%s%N)
    "$bin" -c "$work/config.toml" apply >"$work/out.$round" 2>"$work/err.$round" &
    bridge=$!
    records_expected=$((records_expected + 1))
    killed_while_running=false
    if $kill_it; then
        sleep "$(awk -v ms="$delay_ms" 'BEGIN { printf "%.3f", ms / 1000 }')"
        if alive "$bridge"; then killed_while_running=true; fi
        pid=$(slapd_pid)
        [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
        kills=$((kills + 1))
        # The pid file stays behind a SIGKILL; wait until the process is gone.
        for _ in $(seq 1 200); do [ -n "$pid" ] && alive "$pid" || break; sleep 0.01; done
        if $quick; then
            quick_restarts=$((quick_restarts + 1))
            restart_server
        fi
    fi
    timeout_guard=0
    while kill -0 "$bridge" 2>/dev/null; do
        sleep 0.05
        timeout_guard=$((timeout_guard + 1))
        if [ $timeout_guard -gt 2400 ]; then kill -KILL "$bridge" 2>/dev/null; fail "round $round: apply still running after 120 s"; fi
    done
    wait "$bridge"; status=$?
    t1=$(date +%s%N)
    if $kill_it && ! $quick; then restart_server; fi
    exits[$status]=$(( ${exits[$status]:-0} + 1 ))
    # The next delay window: this run's own duration (its summary line), when it ran to the end.
    if [ "$status" -eq 0 ] && ! $killed_while_running; then
        d=$(grep -o 'duration_ms=[0-9]*' "$work/err.$round" | tail -n 1 | cut -d= -f2)
        [ -n "$d" ] && last_duration_ms=$((d + 30))
    fi
    if grep -q 'connection lost\|wrote [0-9]* of' "$work/err.$round"; then kills_in_writes=$((kills_in_writes + 1)); fi
    grep -q 'msg=reconnected\|msg="reconnected"' "$work/err.$round" && reconnected=$((reconnected + 1))

    ok=true
    case $status in
        0) ;;
        5) if ! $kill_it; then ok=false; fail "round $round: exit 5 without a fault: $(tail -n 3 "$work/err.$round")"; fi
           # A failure during the writes lists what was written.
           if grep -q 'connection lost' "$work/err.$round" && ! grep -q 'wrote [0-9]* of [0-9]* changes' "$work/err.$round" \
               && ! grep -q 'msg=reconnected\|msg="reconnected"' "$work/err.$round"; then
               ok=false; fail "round $round: exit 5 after a lost connection without listing what was written"
           fi ;;
        *) ok=false; fail "round $round: exit $status: $(tail -n 3 "$work/err.$round")" ;;
    esac
    if [ "$status" -ge 128 ]; then ok=false; fail "round $round: the bridge died of a signal ($status)"; fi
    if [ "$(outside_dump)" != "$before_outside" ]; then ok=false; fail "round $round: ou=people or ou=devices changed during apply"; fi
    journal_lines=$(wc -l < "$work/state/runs.jsonl" 2>/dev/null || echo 0)
    if [ "$journal_lines" -ne "$records_expected" ]; then ok=false; fail "round $round: $journal_lines run records, expected $records_expected"; fi
    missing=$(edits_missing)
    if [ "$missing" -ne 0 ]; then ok=false; fail "round $round: $missing manual edits lost"; fi
    $ok && pass
    rnd 4
    person_edits $((1 + R)) || fail "round $round: the person's edits failed"
    if $kill_it; then
        say "run $round: killed after ${delay_ms} ms$($killed_while_running || echo ' (apply already done)'), restart $($quick && echo 'at once' || echo 'after the bridge exited'): exit $status"
    else
        say "run $round: no fault: exit $status ($(( (t1 - t0) / 1000000 )) ms)"
    fi
done

# --- the final check ---------------------------------------------------------------------------
say "final clean apply"
"$bin" -c "$work/config.toml" apply >"$work/out.final" 2>"$work/err.final"; status=$?
records_expected=$((records_expected + 1))
if [ "$status" -eq 0 ]; then pass; else fail "final apply exited $status: $(tail -n 5 "$work/err.final")"; fi
"$bin" -c "$work/config.toml" plan --check >"$work/out.check" 2>"$work/err.check"; check_status=$?
if [ "$check_status" -eq 0 ]; then pass; else fail "plan --check after the final apply exited $check_status: $(grep -c . "$work/out.check") lines of plan"; fi

binding_lines "$TB_LDAP_URI" "$srv/env" > "$work/final.tsv"
sort "$work/edits.tsv" > "$work/edits.sorted"
# The bridge's part: every line that is not a manual edit, without descriptions.
comm -23 "$work/final.tsv" "$work/edits.sorted" | awk -F'\t' '$2 != "description"' > "$work/final.bridge.tsv"
expected_lines > "$work/expected.tsv"
if cmp -s "$work/final.bridge.tsv" "$work/expected.tsv"; then
    pass
else
    fail "bindings differ from the expected set ($(comm -13 "$work/final.bridge.tsv" "$work/expected.tsv" | wc -l) missing, $(comm -23 "$work/final.bridge.tsv" "$work/expected.tsv" | wc -l) extra)"
    comm -3 "$work/final.bridge.tsv" "$work/expected.tsv" | head -n 10 >&2
fi
lost=$(comm -23 "$work/edits.sorted" "$work/final.tsv" | wc -l)
if [ "$lost" -eq 0 ]; then pass; else fail "$lost of $(wc -l < "$work/edits.sorted") manual edits lost"; fi
journal_lines=$(wc -l < "$work/state/runs.jsonl" 2>/dev/null || echo 0)
if [ "$journal_lines" -eq "$records_expected" ]; then pass; else fail "$journal_lines run records, expected $records_expected"; fi

# A from-scratch apply on a fresh server with the same people, devices and reports.
say "from-scratch apply on a fresh server"
if bash "$repo/scripts/test-slapd.sh" start "$fresh" >&2; then
    {
        ldapsearch -LLL -o ldif-wrap=no "${root[@]}" -b "$people" -s one '(objectClass=*)' '*'
        ldapsearch -LLL -o ldif-wrap=no "${root[@]}" -b "$devbase" -s one '(objectClass=*)' '*'
    } > "$work/copy.ldif" 2>/dev/null
    fresh_uri=$(grep '^TB_LDAP_URI=' "$fresh/env" | cut -d= -f2-)
    fresh_root=(-x -H "$fresh_uri" -D "$(grep '^TB_ROOT_DN=' "$fresh/env" | cut -d= -f2-)" -y "$(grep '^TB_ROOT_PW_FILE=' "$fresh/env" | cut -d= -f2-)")
    mkdir -p "$work/freshcfg"
    install -m 600 "$(grep '^TB_BIND_PW_FILE=' "$fresh/env" | cut -d= -f2-)" "$work/freshcfg/bind.pw"
    if ldapadd "${fresh_root[@]}" -f "$work/copy.ldif" >/dev/null 2>"$work/copy.err"; then
        write_config "$work/freshcfg" "$fresh_uri" "$work/freshcfg/state"
        sed -i "s|^bind_password_file = .*|bind_password_file = \"$work/freshcfg/bind.pw\"|" "$work/freshcfg/config.toml"
        "$bin" -c "$work/freshcfg/config.toml" apply >/dev/null 2>"$work/err.fresh"; fresh_status=$?
        binding_lines "$fresh_uri" "$fresh/env" > "$work/fresh.tsv"
        if [ "$fresh_status" -eq 0 ] && cmp -s "$work/fresh.tsv" "$work/final.bridge.tsv"; then
            pass
        else
            fail "from-scratch apply (exit $fresh_status) differs from the final directory ($(comm -3 "$work/fresh.tsv" "$work/final.bridge.tsv" | wc -l) lines)"
        fi
    else
        fail "loading the fresh server failed: $(head -n 3 "$work/copy.err")"
    fi
else
    fail "cannot start the fresh server"
fi

# --- figures -------------------------------------------------------------------------------------
exit_figures=""
for code in $(printf '%s\n' "${!exits[@]}" | sort -n); do exit_figures+=" exit $code: ${exits[$code]};"; done
echo "seed: $seed"
echo "runs: $runs; kills: $kills ($kills_in_writes during the writes, $quick_restarts restarted at once); runs that reconnected and went on: $reconnected"
echo "exits:${exit_figures%;}"
echo "bindings at the end: $(grep -c $'\tmember\t' "$work/expected.tsv") expected, $(grep -c $'\tmember\t' "$work/final.bridge.tsv") found; manual edits: $(wc -l < "$work/edits.sorted") made, $lost lost"
echo "final check: apply exit $status, plan --check exit $check_status"
echo "time: $((SECONDS - started)) s"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
exit
}
