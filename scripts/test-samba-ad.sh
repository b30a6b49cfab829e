#!/usr/bin/env bash
# A throwaway Samba AD domain controller for tests: scripts/test-samba-ad.sh start|stop|status DIR
#
# start DIR   creates DIR (must be empty or absent) and provisions a domain in it
#             (`samba-tool domain provision --use-rfc2307 --dns-backend=NONE`, realm
#             EXAMPLE.ORG, so the base is DC=example,DC=org as on the other test servers)
#             with `server services = ldap`, listening only on $TB_SAMBA_ADDR (default
#             127.0.0.2; `bind interfaces only`). Samba's LDAP ports are fixed (389, 636,
#             global catalog 3268 and 3269): one Samba per loopback address.
#             TLS: a CA made here signs a server certificate naming the DC
#             (<host>.<realm>), localhost and the loopback address in subjectAltName;
#             smb.conf's `tls certfile/keyfile/cafile` point at it, so clients verify
#             with `tls_reqcert = demand` and the address itself (Samba's own generated
#             certificate names only <HOST>.<realm>, which does not resolve here).
#             Before the server starts, the tree is added offline (ldbadd on sam.ldb):
#             OU=people, OU=devices, OU=bindings, OU=services; then a service account
#             (CN=bridge, not an administrator) is delegated create/delete of children
#             and write of properties under OU=bindings only (`samba-tool dsacl set`);
#             it reads the rest as every authenticated user does. A second account
#             (reader) has no delegation. Then `samba --foreground` runs in the background
#             in a session of its own. Writes DIR/env.
# stop DIR    stops Samba (SIGTERM to every process started on DIR's smb.conf, SIGKILL
#             after 20 s); also after a start that failed half-way. Keeps DIR.
# status DIR  exit 0 when the server answers over ldaps.
#
# DIR/env has the variable names of scripts/test-slapd.sh (KEY=value lines, unquoted;
# TB_BIND_DOWNLEVEL holds a backslash, so read it by line, not with `source`):
#   TB_SERVER_KIND=samba-ad
#   TB_LDAP_URI TB_LDAPS_URI               ldap://ADDR (simple binds need StartTLS there:
#                                          Samba refuses them in cleartext) and ldaps://ADDR
#   TB_GC_URI TB_GCS_URI                   the global catalog, ldap://ADDR:3268, ldaps://ADDR:3269
#   TB_BASE TB_PEOPLE_BASE TB_DEVICES_BASE TB_BINDINGS_BASE TB_SERVICES_BASE
#   TB_ROOT_DN TB_ROOT_PW_FILE             the domain's Administrator
#   TB_BIND_DN TB_BIND_PW_FILE             the service account (delegated under OU=bindings)
#   TB_BIND_UPN TB_BIND_DOWNLEVEL          the same account as bridge@example.org, EXAMPLE\bridge
#   TB_READER_DN TB_READER_PW_FILE         an account without delegation
#   TB_CA_CERT TB_WRONG_CA_CERT            the CA of the server certificate; an unrelated one
#   TB_REALM TB_DOMAIN TB_SAMBA_ADDR TB_SAMBA_HOST   EXAMPLE.ORG, EXAMPLE, the address, <host>.<realm>
#   TB_SERVER_DIR TB_SERVER_PID TB_SERVER_PIDFILE TB_SERVER_LOG
#   TB_SLAPD_DIR TB_SLAPD_PID TB_SLAPD_PIDFILE   the same, under test-slapd.sh's names
# Password files are mode 0600 (no newline). No password is ever printed.
#
# Environment: TB_SAMBA_ADDR (default 127.0.0.2).
set -euo pipefail

usage() { echo "usage: $0 start|stop|status DIR" >&2; exit 64; }
[ $# -eq 2 ] || usage
cmd=$1
dir=$2
name=test-samba-ad
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/test-server-lib.sh
. "$repo/scripts/test-server-lib.sh"

addr=${TB_SAMBA_ADDR:-127.0.0.2}
case $addr in
    127.*.*.*) ;;
    *) die "TB_SAMBA_ADDR must be a 127.x.y.z loopback address (got '$addr')" ;;
esac
realm=EXAMPLE.ORG
domain=EXAMPLE
host=tbdc
fqdn="$host.${realm,,}"
base="DC=example,DC=org"
root_dn="CN=Administrator,CN=Users,$base"
service_dns CN OU

conf() { echo "$dir/etc/smb.conf"; }
pidfile() { echo "$dir/run/samba.pid"; }

# Processes of the session samba was started in (setsid makes it the session leader;
# its workers rename themselves, so their command lines do not name DIR).
our_pids() {
    local sid p s
    sid=$(cat "$(pidfile).start" 2>/dev/null) || return 0
    [ -n "$sid" ] || return 0
    for p in /proc/[0-9]*; do
        s=$(awk '{ print $6 }' "$p/stat" 2>/dev/null) || continue
        [ "$s" = "$sid" ] && echo "${p#/proc/}"
    done
    return 0
}

running_pid() { pid_in_file "$(pidfile)"; }

# Another server already on ADDR's LDAP ports (this or another helper's Samba)?
addr_busy() { (exec 3<>"/dev/tcp/$addr/389") 2>/dev/null || (exec 3<>"/dev/tcp/$addr/636") 2>/dev/null; }

provision() {
    mkdir -p "$dir/run" "$dir/log"
    samba-tool domain provision --use-rfc2307 --realm="$realm" --domain="$domain" --server-role=dc \
        --dns-backend=NONE --host-name="$host" --host-ip="$addr" --targetdir="$dir" \
        --option="interfaces = $addr/8" --option="bind interfaces only = yes" \
        --option="server services = ldap" --option="dcerpc endpoint servers = " \
        --option="pid directory = $dir/run" --option="log file = $dir/log/samba.log" \
        --option="tls enabled = yes" --option="tls keyfile = $dir/tls/server.key" \
        --option="tls certfile = $dir/tls/server.crt" --option="tls cafile = $dir/tls/ca.crt" \
        >"$dir/provision.log" 2>&1 \
        || { tail -n 20 "$dir/provision.log" >&2; die "samba-tool domain provision failed (see $dir/provision.log)"; }
    [ -f "$(conf)" ] || die "provision wrote no $(conf)"
}

# The tree, added offline to sam.ldb (as the system, before the server runs).
seed_tree() {
    ou_entries OU > "$dir/seed.ldif"
    ldbadd -H "$dir/private/sam.ldb" "$dir/seed.ldif" >"$dir/seed.log" 2>&1 \
        || { cat "$dir/seed.log" >&2; die "ldbadd of the test tree failed"; }
    local n
    for n in bridge reader; do
        samba-tool user create "$n" --random-password -H "$dir/private/sam.ldb" \
            --userou=OU=services --description="takeover-bridge test account ($n)" >>"$dir/seed.log" 2>&1 \
            || { tail -n 5 "$dir/seed.log" >&2; die "samba-tool user create $n failed"; }
    done
    # The passwords go in on stdin, never on a command line: unicodePwd is the password
    # in double quotes, UTF-16LE, base64 in LDIF. (Provision set a random one for the
    # Administrator.)
    local dn pw
    for n in root bind reader; do
        case $n in root) dn=$root_dn ;; bind) dn=$bind_dn ;; reader) dn=$reader_dn ;; esac
        pw=$(printf '"%s"' "$(cat "$dir/$n.pw")" | iconv -f UTF-8 -t UTF-16LE | base64 -w0)
        printf 'dn: %s\nchangetype: modify\nreplace: unicodePwd\nunicodePwd:: %s\n-\n\n' "$dn" "$pw"
    done | ldbmodify -H "$dir/private/sam.ldb" >>"$dir/seed.log" 2>&1 \
        || { tail -n 5 "$dir/seed.log" >&2; die "setting the passwords failed"; }
    local sid
    sid=$(ldbsearch -H "$dir/private/sam.ldb" -b "$bind_dn" -s base objectSid | awk '/^objectSid: / { print $2 }')
    [ -n "$sid" ] || die "no objectSid for $bind_dn"
    # On OU=bindings itself: CC/DC create and delete children, LC/LO/RP list and read.
    # On everything below it (CIIO: inherited, not on the OU): also WP write properties,
    # SW validated writes, SD/DT delete (subtree), RC read the security descriptor.
    # Nothing on other OUs, nor on the OU's own attributes.
    samba-tool dsacl set -H "$dir/private/sam.ldb" --objectdn="OU=bindings,$base" \
        --sddl="(A;;CCDCLCLORP;;;$sid)(A;CIIO;CCDCLCSWRPWPLOSDDTRC;;;$sid)" >>"$dir/seed.log" 2>&1 \
        || { tail -n 5 "$dir/seed.log" >&2; die "samba-tool dsacl set failed"; }
}

launch() {
    rm -f "$(pidfile)"
    setsid samba --foreground --no-process-group -s "$(conf)" </dev/null >>"$dir/log/samba.out" 2>&1 &
    local child=$!
    echo "$child" > "$(pidfile).start"
    wait_tcp "$addr" 636 60 "$child" || return 1
    local i
    for (( i = 0; i < 300; i++ )); do
        if LDAPTLS_CACERT=$dir/tls/ca.crt LDAPTLS_REQCERT=demand ldapsearch -x -H "ldaps://$addr" \
            -D "$bind_dn" -y "$dir/bind.pw" -b "$base" -s base dn >/dev/null 2>&1; then
            echo "$child" > "$(pidfile)"
            return 0
        fi
        alive "$child" || return 1
        sleep 0.1
    done
    return 1
}

write_env() {
    local pid
    pid=$(running_pid)
    cat > "$dir/env.tmp" <<EOF
TB_SERVER_KIND=samba-ad
TB_LDAP_URI=ldap://$addr
TB_LDAPS_URI=ldaps://$addr
TB_GC_URI=ldap://$addr:3268
TB_GCS_URI=ldaps://$addr:3269
$(common_env OU)
TB_BIND_UPN=bridge@${realm,,}
TB_BIND_DOWNLEVEL=$domain\\bridge
TB_REALM=$realm
TB_DOMAIN=$domain
TB_SAMBA_ADDR=$addr
TB_SAMBA_HOST=$fqdn
$(server_env "$pid" "$dir/log/samba.log")
EOF
    mv "$dir/env.tmp" "$dir/env"
}

do_start() {
    [ "$(id -u)" -eq 0 ] || die "needs root: a Samba domain controller runs as root"
    prepare_dir
    [ ! -e "$dir/etc/smb.conf" ] || die "$dir already holds a server (stop and remove it first)"
    command -v samba-tool >/dev/null 2>&1 || die "samba-tool not found (install samba; scripts/install-deps.sh does)"
    command -v samba >/dev/null 2>&1 || [ -x /usr/sbin/samba ] || die "samba not found (install samba-ad-dc)"
    command -v ldbadd >/dev/null 2>&1 || die "ldbadd not found (install ldb-tools)"
    ! addr_busy || die "something already listens on $addr:389/636 (another Samba? set TB_SAMBA_ADDR)"
    umask 077
    make_secrets "$fqdn" "DNS:$fqdn,DNS:localhost,IP:$addr"
    umask 022
    provision
    seed_tree
    if launch; then
        write_env
        return 0
    fi
    tail -n 20 "$dir/log/samba.log" >&2 2>/dev/null || true
    do_stop
    die "samba did not start (see $dir/log/samba.log)"
}

do_stop() {
    [ -d "$dir" ] || return 0
    dir=$(cd "$dir" && pwd)
    local pid pids
    pids=$(our_pids)
    for pid in $pids; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in $pids; do stop_pid "$pid" 20; done
    rm -f "$(pidfile)" "$(pidfile).start"
}

case $cmd in
    start) do_start ;;
    stop) do_stop ;;
    status) [ -f "$dir/env" ] && running_pid >/dev/null && LDAPTLS_CACERT=$dir/tls/ca.crt ldapsearch -x -H "ldaps://$addr" \
        -D "$bind_dn" -y "$dir/bind.pw" -b "$base" -s base dn >/dev/null 2>&1 ;;
    *) usage ;;
esac
