#!/usr/bin/env bash
# A throwaway 389 Directory Server for tests: scripts/test-389.sh start|stop|status DIR
#
# start DIR   creates DIR (must be empty or absent) and an instance in it with
#             `dscreate from-file`: a private defaults.inf (PREFIX=DIR, with_systemd = 0,
#             every path under DIR), no TCP listener during the install (ldapi only).
#             Then, with the server stopped: a CA and a server certificate naming
#             localhost and 127.0.0.1 (subjectAltName) imported into the instance's NSS
#             database, LDAP and LDAPS on two free ports of 127.0.0.1 only
#             (nsslapd-listenhost), the project's schema (schema/takeover-bridge.schema
#             converted to 389's format). Started, it gets the test tree: ou=people,
#             ou=devices, ou=bindings, ou=services, the service account and a reader.
#             Writes DIR/env.
# stop DIR    stops the server (SIGTERM, SIGKILL after 20 s); also after a start that
#             failed half-way. Keeps DIR.
# status DIR  exit 0 when the server answers.
#
# DIR/env has the variable names of scripts/test-slapd.sh (KEY=value lines, unquoted;
# TB_ROOT_DN holds a space, so read it by line, not with `source`):
#   TB_SERVER_KIND=389
#   TB_LDAP_URI TB_LDAPS_URI TB_LDAPI_URI   ldap:// and ldaps:// on 127.0.0.1; ldapi
#                                           autobinds the local root user as the rootdn
#   TB_BASE TB_PEOPLE_BASE TB_DEVICES_BASE TB_BINDINGS_BASE TB_SERVICES_BASE
#   TB_ROOT_DN TB_ROOT_PW_FILE              cn=Directory Manager and its password file
#   TB_BIND_DN TB_BIND_PW_FILE              the service account: reads the tree (the
#                                           default anonymous/users read ACI), writes only
#                                           under ou=bindings (an ACI there), and its own
#                                           entry lifts nsLookThroughLimit/nsSizeLimit
#                                           (the server's defaults stay: lookthrough 5000,
#                                           sizelimit 2000), as an admin would do it
#   TB_READER_DN TB_READER_PW_FILE          a read-only account with the default limits
#   TB_CA_CERT TB_WRONG_CA_CERT             the CA of the server certificate; an unrelated one
#   TB_SERVER_DIR TB_SERVER_PID TB_SERVER_PIDFILE TB_SERVER_LOG
#   TB_SLAPD_DIR TB_SLAPD_PID TB_SLAPD_PIDFILE   the same, under test-slapd.sh's names
# Password files are mode 0600. No password is ever printed.
set -euo pipefail

usage() { echo "usage: $0 start|stop|status DIR" >&2; exit 64; }
[ $# -eq 2 ] || usage
cmd=$1
dir=$2
name=test-389
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/test-server-lib.sh
. "$repo/scripts/test-server-lib.sh"

instance=tb
base="dc=example,dc=org"
root_dn="cn=Directory Manager"
service_dns cn ou

inst_etc() { echo "$dir/etc/dirsrv/slapd-$instance"; }
pidfile() { echo "$dir/run/dirsrv/slapd-$instance.pid"; }

# --- the private defaults.inf ---------------------------------------------------------

write_defaults() {
    local system=/usr/share/dirsrv/inf/defaults.inf
    [ -f "$system" ] || die "$system not found (install 389-ds-base; scripts/install-deps.sh does)"
    mkdir -p "$dir/share/dirsrv/inf"
    # Every path that is the instance's own goes under DIR; the program's own files
    # (binaries, plugins, system schema, templates) stay where the package put them.
    awk -v d="$dir" '
        BEGIN {
            v["with_systemd"] = 0
            v["sysconf_dir"] = d "/etc"
            v["initconfig_dir"] = d "/etc/default"
            v["config_dir"] = d "/etc/dirsrv/slapd-{instance_name}"
            v["local_state_dir"] = d "/var"
            v["run_dir"] = d "/run/dirsrv"
            v["ldapi"] = d "/run/slapd-{instance_name}.socket"
            v["pid_file"] = d "/run/dirsrv/slapd-{instance_name}.pid"
            v["inst_dir"] = d "/lib/dirsrv/slapd-{instance_name}"
            v["tmpfiles_d"] = d "/etc/tmpfiles.d"
            v["schema_dir"] = d "/etc/dirsrv/slapd-{instance_name}/schema"
            v["cert_dir"] = d "/etc/dirsrv/slapd-{instance_name}"
            v["lock_dir"] = d "/run/lock/dirsrv/slapd-{instance_name}"
            v["log_dir"] = d "/log"
            v["access_log"] = d "/log/access"
            v["audit_log"] = d "/log/audit"
            v["error_log"] = d "/log/errors"
            v["security_log"] = d "/log/security"
            v["db_dir"] = d "/db"
            v["db_home_dir"] = d "/dbhome"
            v["backup_dir"] = d "/bak"
            v["ldif_dir"] = d "/ldif"
        }
        {
            key = $1
            if ($2 == "=" && (key in v)) { print key " = " v[key]; seen[key] = 1 } else print
        }
        END { for (k in v) if (!(k in seen)) { print "missing key " k > "/dev/stderr"; exit 1 } }
    ' "$system" > "$dir/share/dirsrv/inf/defaults.inf"
    # dscreate copies the package's instance templates from sysconf_dir/dirsrv.
    [ -d /etc/dirsrv/schema ] && [ -d /etc/dirsrv/config ] || die "/etc/dirsrv/{schema,config} missing (reinstall 389-ds-base)"
    mkdir -p "$dir/etc/dirsrv"
    cp -r /etc/dirsrv/schema /etc/dirsrv/config "$dir/etc/dirsrv/"
    # ns-slapd runs as dirsrv: it must reach DIR and write below it.
    mkdir -p "$dir/etc/dirsrv" "$dir/run/dirsrv" "$dir/run/lock/dirsrv" "$dir/var" "$dir/lib/dirsrv" \
        "$dir/log" "$dir/db" "$dir/dbhome" "$dir/bak" "$dir/ldif"
    chmod 755 "$dir" "$dir/etc" "$dir/etc/dirsrv" "$dir/run" "$dir/run/lock" "$dir/lib" "$dir/share"
    chown dirsrv:dirsrv "$dir/run/dirsrv" "$dir/run/lock/dirsrv" "$dir/log" "$dir/db" "$dir/dbhome" \
        "$dir/bak" "$dir/ldif" "$dir/lib/dirsrv" "$dir/var"
}

write_inf() { # root password
    cat > "$dir/instance.inf" <<EOF
[general]
full_machine_name = localhost
strict_host_checking = False
start = False

[slapd]
instance_name = $instance
root_password = $1
port = 0
self_sign_cert = False

[backend-userroot]
suffix = $base
create_suffix_entry = True
sample_entries = no
EOF
    chmod 600 "$dir/instance.inf"
}

# schema/takeover-bridge.schema (slapd.conf syntax) -> 389's LDIF schema file.
schema_389() {
    echo "dn: cn=schema"
    awk '
        /^[ \t]*#/ || /^[ \t]*$/ { next }
        /^attributetype/ { flush(); kind = "attributeTypes"; sub(/^attributetype[ \t]*/, ""); cur = $0; next }
        /^objectclass/   { flush(); kind = "objectClasses";  sub(/^objectclass[ \t]*/, "");   cur = $0; next }
        { gsub(/^[ \t]+/, ""); cur = cur " " $0 }
        function flush() { if (kind != "") { gsub(/[ \t]+/, " ", cur); print kind ": " cur } kind = "" }
        END { flush() }
    ' "$repo/schema/takeover-bridge.schema"
}

# --- certificates into the NSS database -----------------------------------------------

install_certs() {
    local certdir pw
    certdir=$(inst_etc)
    pw=$certdir/pwdfile.txt
    [ -f "$pw" ] || die "dscreate made no NSS database password file ($pw)"
    certutil -A -d "sql:$certdir" -f "$pw" -n "takeover-bridge test CA" -t "CT,," -a -i "$dir/tls/ca.crt" \
        || die "certutil could not import the CA"
    local p12pw
    p12pw=$(random_password)
    openssl pkcs12 -export -in "$dir/tls/server.crt" -inkey "$dir/tls/server.key" -name Server-Cert \
        -out "$dir/tls/server.p12" -passout "pass:$p12pw" 2>/dev/null || die "openssl could not make server.p12"
    pk12util -i "$dir/tls/server.p12" -d "sql:$certdir" -k "$pw" -W "$p12pw" >/dev/null \
        || die "pk12util could not import the server certificate"
    rm -f "$dir/tls/server.p12"
}

# Loopback only, the two ports, TLS on: edits cn=config in dse.ldif while stopped.
configure_dse() { # port secure_port
    local dse
    dse=$(inst_etc)/dse.ldif
    awk -v p="$1" -v sp="$2" '
        BEGIN { inconfig = 0 }
        /^dn: cn=config$/ { inconfig = 1; print; next }
        /^$/ { if (inconfig) { print "nsslapd-listenhost: 127.0.0.1"; print "nsslapd-securelistenhost: 127.0.0.1"
                               print "nsslapd-security: on"; print "nsslapd-secureport: " sp }
               inconfig = 0; print; next }
        inconfig && tolower($1) ~ /^nsslapd-(port|listenhost|securelistenhost|security|secureport):$/ {
            if (tolower($1) == "nsslapd-port:") print "nsslapd-port: " p
            next }
        { print }
    ' "$dse" > "$dse.new"
    grep -q "^nsslapd-port: $1\$" "$dse.new" || die "could not set the port in $dse"
    chown dirsrv:dirsrv "$dse.new"
    chmod 600 "$dse.new"
    mv "$dse.new" "$dse"
}

# --- the tree ---------------------------------------------------------------------------

seed_ldif() {
    cat <<EOF
dn: $base
changetype: modify
add: aci
aci: (targetattr != "userPassword || aci")(version 3.0; acl "authenticated users read"; allow (read, search, compare) userdn = "ldap:///all";)
-

$(ou_entries ou "changetype: add")

dn: ou=bindings,$base
changetype: modify
add: aci
aci: (target = "ldap:///cn=*,ou=bindings,$base")(targetattr != "aci")(version 3.0; acl "takeover-bridge writes below ou=bindings"; allow (add, delete, write) userdn = "ldap:///$bind_dn";)
-

dn: $bind_dn
changetype: add
objectClass: top
objectClass: applicationProcess
objectClass: simpleSecurityObject
cn: bridge
description: takeover-bridge service account (test)
userPassword: $(cat "$dir/bind.pw")
nsLookThroughLimit: -1
nsSizeLimit: -1

dn: $reader_dn
changetype: add
objectClass: top
objectClass: applicationProcess
objectClass: simpleSecurityObject
cn: reader
description: read-only account with default limits (test)
userPassword: $(cat "$dir/reader.pw")
EOF
}

# --- process control ------------------------------------------------------------------

running_pid() { pid_in_file "$(pidfile)"; }

launch() {
    rm -f "$(pidfile)"
    # ns-slapd daemonizes itself (detached from our stdio) and writes its pid file.
    /usr/sbin/ns-slapd -D "$(inst_etc)" -i "$(pidfile)" </dev/null >>"$dir/start.log" 2>&1 \
        || return 1
    local i pid=""
    for i in $(seq 1 300); do
        pid=$(running_pid) && break
        sleep 0.1
    done
    [ -n "$pid" ] || return 1
    wait_tcp 127.0.0.1 "$(cat "$dir/port-ldap")" 60 "$pid" && wait_tcp 127.0.0.1 "$(cat "$dir/port-ldaps")" 30 "$pid"
}

write_env() {
    local pid p1 p2
    pid=$(running_pid)
    p1=$(cat "$dir/port-ldap") p2=$(cat "$dir/port-ldaps")
    cat > "$dir/env.tmp" <<EOF
TB_SERVER_KIND=389
TB_LDAP_URI=ldap://127.0.0.1:$p1
TB_LDAPS_URI=ldaps://127.0.0.1:$p2
TB_LDAPI_URI=ldapi://$(printf '%s' "$dir/run/slapd-$instance.socket" | sed 's|/|%2F|g')
$(common_env ou)
$(server_env "$pid" "$dir/log/errors")
EOF
    mv "$dir/env.tmp" "$dir/env"
}

do_start() {
    [ "$(id -u)" -eq 0 ] || die "needs root: dscreate gives the instance to the dirsrv user, which ns-slapd runs as"
    prepare_dir
    [ ! -e "$dir/instance.inf" ] || die "$dir already holds a server (stop and remove it first)"
    command -v dscreate >/dev/null 2>&1 || [ -x /usr/sbin/dscreate ] || die "dscreate not found (install 389-ds-base)"
    command -v certutil >/dev/null 2>&1 || die "certutil not found (install libnss3-tools)"
    [ ${#dir} -lt 80 ] || die "DIR path too long for the ldapi socket: $dir"
    umask 077
    make_secrets localhost "DNS:localhost,IP:127.0.0.1"
    write_defaults
    write_inf "$(cat "$dir/root.pw")"
    umask 022
    # PREFIX makes lib389 read DIR/share/dirsrv/inf/defaults.inf and find the instance
    # under DIR/etc/dirsrv. Port 0: during the install the server listens on ldapi only.
    PREFIX=$dir /usr/sbin/dscreate from-file "$dir/instance.inf" >"$dir/dscreate.log" 2>&1 \
        || { tail -n 20 "$dir/dscreate.log" >&2; die "dscreate failed (see $dir/dscreate.log)"; }
    rm -f "$dir/instance.inf.done"
    running_pid >/dev/null && die "dscreate left the server running"
    install_certs
    schema_389 > "$(inst_etc)/schema/98takeover-bridge.ldif"
    chown dirsrv:dirsrv "$(inst_etc)/schema/98takeover-bridge.ldif"

    local attempt p1 p2
    for attempt in 1 2 3 4 5; do
        pick_ports || continue
        configure_dse "$p1" "$p2"
        if launch; then
            seed_ldif | ldapmodify -x -H "ldap://127.0.0.1:$p1" -D "$root_dn" -y "$dir/root.pw" >"$dir/seed.log" 2>&1 \
                || { cat "$dir/seed.log" >&2; die "loading the test tree failed"; }
            write_env
            return 0
        fi
        local pid
        if pid=$(running_pid); then stop_pid "$pid"; fi
    done
    tail -n 20 "$dir/log/errors" >&2 2>/dev/null || true
    die "ns-slapd did not start (see $dir/log/errors)"
}

do_stop() {
    [ -d "$dir" ] || return 0
    dir=$(cd "$dir" && pwd)
    local pid
    if pid=$(running_pid); then stop_pid "$pid" 20; fi
    # A start that failed inside dscreate may leave a server whose pid file is elsewhere
    # in DIR: stop any ns-slapd whose config folder is under DIR.
    local p
    for p in $(pgrep -x ns-slapd 2>/dev/null || true); do
        if tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null | grep -q -- "-D $dir/"; then stop_pid "$p" 20; fi
    done
    rm -f "$(pidfile)"
}

case $cmd in
    start) do_start ;;
    stop) do_stop ;;
    status) running_pid >/dev/null ;;
    *) usage ;;
esac
