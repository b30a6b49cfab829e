#!/usr/bin/env bash
# A throwaway slapd for tests: scripts/test-slapd.sh start|stop|restart|status DIR
#
# start DIR   creates DIR (must be empty or absent), generates a CA, a server and a
#             client certificate, writes DIR/slapd.conf (mdb with dbnosync, the core,
#             cosine, nis and inetorgperson schemas plus every schema/*.schema of this
#             repository), seeds the base entries with slapadd, starts slapd on two free
#             loopback ports (ldap:// and ldaps://) and an ldapi socket in DIR, and
#             writes DIR/env.
# stop DIR    stops the server (SIGTERM, then SIGKILL after 2 s). Keeps DIR.
# restart DIR stops and starts the same server (same ports, same database).
# status DIR  exit 0 when the server answers.
#
# DIR/env holds shell `KEY=value` lines, never quoted (DIR may not contain spaces or
# shell-special characters), so both `source` and a line parser read it:
#   TB_SERVER_KIND                          openldap (test-389.sh and test-samba-ad.sh write
#                                           the same names, with their own kind)
#   TB_LDAP_URI TB_LDAPS_URI TB_LDAPI_URI  the three listeners
#   TB_BASE                                 dc=example,dc=org
#   TB_ROOT_DN TB_ROOT_PW_FILE              the rootdn and its password file
#   TB_BIND_DN TB_BIND_PW_FILE              the non-root service account: reads the whole
#                                           tree, writes only under ou=bindings, unlimited
#                                           size limits (like a production sync account)
#   TB_READER_DN TB_READER_PW_FILE          a second non-root account: read-only, default
#                                           limits (sizelimit 500)
#   TB_PEOPLE_BASE TB_DEVICES_BASE TB_BINDINGS_BASE TB_SERVICES_BASE
#   TB_CA_CERT                              the CA that signed the server certificate
#   TB_WRONG_CA_CERT                        an unrelated CA (verification must fail)
#   TB_CLIENT_CERT TB_CLIENT_KEY            a client certificate; SASL EXTERNAL over TLS
#                                           with it authenticates as TB_BIND_DN
#   TB_LDAPI_EXTERNAL_DN                    who SASL EXTERNAL over ldapi is (the rootdn)
#   TB_SLAPD_PID TB_SLAPD_PIDFILE TB_SLAPD_DIR TB_SLAPD_CONF TB_SLAPD_LOG
# Password files are mode 0600. No password is ever printed.
#
# Environment: TB_SLAPD_LOGLEVEL (default "none"; e.g. "stats" to log operations).
# slapd's messages go to DIR/slapd.log.
set -euo pipefail

usage() { echo "usage: $0 start|stop|restart|status DIR" >&2; exit 64; }
[ $# -eq 2 ] || usage
cmd=$1
dir=$2

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
name=test-slapd
# die, pick_ports, alive, service_dns, ou_entries: shared with the other test servers.
# shellcheck source=scripts/test-server-lib.sh
. "$repo/scripts/test-server-lib.sh"
schema_dir=/etc/ldap/schema
base="dc=example,dc=org"
root_dn="cn=admin,$base"
service_dns cn ou

find_slapd() {
    if command -v slapd >/dev/null 2>&1; then command -v slapd
    elif [ -x /usr/sbin/slapd ]; then echo /usr/sbin/slapd
    else die "slapd is not installed (scripts/test.sh installs it)"; fi
}
find_tool() { # name: slappasswd, slapadd live in /usr/sbin on Debian
    if command -v "$1" >/dev/null 2>&1; then command -v "$1"
    elif [ -x "/usr/sbin/$1" ]; then echo "/usr/sbin/$1"
    else die "$1 is not installed"; fi
}

urlencode_path() { # ldapi:// wants the socket path with "/" as %2F
    local s=$1 out="" c i
    for (( i = 0; i < ${#s}; i++ )); do
        c=${s:i:1}
        case $c in
            [a-zA-Z0-9._~-]) out+=$c ;;
            *) out+=$(printf '%%%02X' "'$c") ;;
        esac
    done
    printf '%s' "$out"
}

random_password() { head -c 18 /dev/urandom | base64 | tr '+/' '-_'; }

# --- certificates -------------------------------------------------------------------

make_certs() {
    local t=$dir/tls
    mkdir -p "$t"
    if command -v openssl >/dev/null 2>&1; then
        local ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
        openssl req -x509 "${ec[@]}" -keyout "$t/ca.key" -out "$t/ca.crt" -days 2 \
            -subj "/O=takeover-bridge test/CN=Test CA" \
            -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
        openssl req -x509 "${ec[@]}" -keyout "$t/wrong-ca.key" -out "$t/wrong-ca.crt" -days 2 \
            -subj "/O=takeover-bridge test/CN=Wrong CA" \
            -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
        openssl req "${ec[@]}" -keyout "$t/server.key" -out "$t/server.csr" \
            -subj "/O=takeover-bridge test/CN=localhost" 2>/dev/null
        printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
            "extendedKeyUsage=serverAuth" "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" > "$t/server.ext"
        openssl x509 -req -in "$t/server.csr" -CA "$t/ca.crt" -CAkey "$t/ca.key" -CAcreateserial \
            -out "$t/server.crt" -days 2 -extfile "$t/server.ext" 2>/dev/null
        openssl req "${ec[@]}" -keyout "$t/client.key" -out "$t/client.csr" \
            -subj "/O=takeover-bridge test/CN=bridge-client" 2>/dev/null
        printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature" \
            "extendedKeyUsage=clientAuth" > "$t/client.ext"
        openssl x509 -req -in "$t/client.csr" -CA "$t/ca.crt" -CAkey "$t/ca.key" -CAcreateserial \
            -out "$t/client.crt" -days 2 -extfile "$t/client.ext" 2>/dev/null
    elif command -v certtool >/dev/null 2>&1; then
        local ct=(certtool --ecc --sec-param=medium)
        printf '%s\n' 'organization = "takeover-bridge test"' 'cn = "Test CA"' ca cert_signing_key crl_signing_key 'expiration_days = 2' > "$t/ca.tmpl"
        printf '%s\n' 'organization = "takeover-bridge test"' 'cn = "Wrong CA"' ca cert_signing_key 'expiration_days = 2' > "$t/wrong-ca.tmpl"
        printf '%s\n' 'organization = "takeover-bridge test"' 'cn = "localhost"' 'dns_name = "localhost"' 'ip_address = "127.0.0.1"' \
            'ip_address = "::1"' tls_www_server signing_key encryption_key 'expiration_days = 2' > "$t/server.tmpl"
        printf '%s\n' 'organization = "takeover-bridge test"' 'cn = "bridge-client"' tls_www_client signing_key 'expiration_days = 2' > "$t/client.tmpl"
        for n in ca wrong-ca server client; do "${ct[@]}" --generate-privkey --outfile "$t/$n.key" 2>/dev/null; done
        certtool --generate-self-signed --load-privkey "$t/ca.key" --template "$t/ca.tmpl" --outfile "$t/ca.crt" 2>/dev/null
        certtool --generate-self-signed --load-privkey "$t/wrong-ca.key" --template "$t/wrong-ca.tmpl" --outfile "$t/wrong-ca.crt" 2>/dev/null
        for n in server client; do
            certtool --generate-certificate --load-privkey "$t/$n.key" --load-ca-certificate "$t/ca.crt" \
                --load-ca-privkey "$t/ca.key" --template "$t/$n.tmpl" --outfile "$t/$n.crt" 2>/dev/null
        done
    else
        die "neither openssl nor certtool is installed (scripts/test.sh installs openssl)"
    fi
    chmod 600 "$t"/*.key
}

# --- configuration ------------------------------------------------------------------

# The service account's limits and the access rules, shared with Benchmarks/large/bench.py:
# scripts/slapd-access.conf with @BASE@ and @BIND_DN@ filled in.
access_rules() {
    local text
    text=$(<"$repo/scripts/slapd-access.conf")
    text=${text//@BASE@/$base}
    printf '%s\n' "${text//@BIND_DN@/$bind_dn}"
}

write_conf() {
    local root_hash=$1 loglevel=${TB_SLAPD_LOGLEVEL:-none}
    {
        echo "# generated by scripts/test-slapd.sh"
        for s in core cosine nis inetorgperson; do
            [ -f "$schema_dir/$s.schema" ] || die "missing $schema_dir/$s.schema"
            echo "include $schema_dir/$s.schema"
        done
        if [ -d "$repo/schema" ]; then
            for s in "$repo"/schema/*.schema; do
                [ -f "$s" ] && echo "include $s"
            done
        fi
        cat <<EOF
pidfile $dir/slapd.pid
argsfile $dir/slapd.args
loglevel $loglevel
modulepath /usr/lib/ldap
moduleload back_mdb
sizelimit 500
TLSCACertificateFile $dir/tls/ca.crt
TLSCertificateFile $dir/tls/server.crt
TLSCertificateKeyFile $dir/tls/server.key
TLSVerifyClient allow

# SASL EXTERNAL identities: the user running the tests over ldapi is the rootdn; the
# test client certificate over TLS is the service account.
authz-regexp "^gidNumber=$(id -g)[+]uidNumber=$(id -u),cn=peercred,cn=external,cn=auth\$" "$root_dn"
authz-regexp "^cn=bridge-client,o=takeover-bridge test\$" "$bind_dn"
# Password SASL mechanisms (SCRAM-*, DIGEST-MD5, PLAIN): authcid NAME is
# uid=NAME,ou=people (such an entry needs a cleartext userPassword for SCRAM/DIGEST).
authz-regexp "^uid=([^,]+),(cn=[^,]+,)?cn=[^,]+,cn=auth\$" "uid=\$1,ou=people,$base"

database mdb
suffix "$base"
rootdn "$root_dn"
rootpw $root_hash
directory $dir/db
maxsize 4294967296
dbnosync
index objectClass eq
index uid,cn,member,memberUid,uniqueMember eq

$(access_rules)
EOF
        # The main database's cn=monitor-free config is enough; keep cn=config out.
    } > "$dir/slapd.conf"
    chmod 600 "$dir/slapd.conf"
}

seed_ldif() {
    local bind_hash=$1 reader_hash=$2
    cat <<EOF
dn: $base
objectClass: dcObject
objectClass: organization
dc: example
o: Example

$(ou_entries ou)

dn: $bind_dn
objectClass: applicationProcess
objectClass: simpleSecurityObject
cn: bridge
description: takeover-bridge service account (test)
userPassword: $bind_hash

dn: $reader_dn
objectClass: applicationProcess
objectClass: simpleSecurityObject
cn: reader
description: read-only account with default limits (test)
userPassword: $reader_hash
EOF
}

# --- process control ----------------------------------------------------------------

running_pid() { pid_in_file "$dir/slapd.pid"; }

launch() { # starts slapd with DIR/urls; waits until it answers
    local slapd urls
    slapd=$(find_slapd)
    urls=$(cat "$dir/urls")
    rm -f "$dir/slapd.pid" "$dir/ldapi"
    # Run in the foreground (-d 0) in a new session, detached from our stdio: a
    # daemonized slapd takes over a second to honour SIGTERM, a foreground one ~20 ms.
    # Its messages go to DIR/slapd.log.
    setsid "$slapd" -d 0 -h "$urls" -f "$dir/slapd.conf" </dev/null >>"$dir/slapd.log" 2>&1 &
    local child=$! i p1 p2
    p1=$(cat "$dir/port-ldap") p2=$(cat "$dir/port-ldaps")
    # Ready = both TCP ports accept connections (slapd binds its sockets, creating the
    # ldapi file, well before it calls listen()).
    for i in $(seq 1 500); do
        if [ -f "$dir/slapd.pid" ] && [ -S "$dir/ldapi" ] \
            && (exec 3<>"/dev/tcp/127.0.0.1/$p1") 2>/dev/null && (exec 3<>"/dev/tcp/127.0.0.1/$p2") 2>/dev/null; then
            return 0
        fi
        alive "$child" || return 1
        sleep 0.01
    done
    kill -KILL "$child" 2>/dev/null || true
    return 1
}

write_env() {
    local pid=$1
    local p1 p2
    p1=$(cat "$dir/port-ldap") p2=$(cat "$dir/port-ldaps")
    cat > "$dir/env.tmp" <<EOF
TB_SERVER_KIND=openldap
TB_LDAP_URI=ldap://127.0.0.1:$p1
TB_LDAPS_URI=ldaps://127.0.0.1:$p2
TB_LDAPI_URI=ldapi://$(urlencode_path "$dir/ldapi")
$(common_env ou)
TB_CLIENT_CERT=$dir/tls/client.crt
TB_CLIENT_KEY=$dir/tls/client.key
TB_LDAPI_EXTERNAL_DN=$root_dn
TB_SLAPD_PID=$pid
TB_SLAPD_PIDFILE=$dir/slapd.pid
TB_SLAPD_DIR=$dir
TB_SLAPD_CONF=$dir/slapd.conf
TB_SLAPD_LOG=$dir/slapd.log
EOF
    mv "$dir/env.tmp" "$dir/env"
}

do_start() {
    case $dir in
        *[!a-zA-Z0-9/._-]*) die "DIR must contain only letters, digits and / . _ - (got '$dir')" ;;
    esac
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if [ -e "$dir/slapd.conf" ]; then die "$dir already holds a server (use restart, or stop and remove it)"; fi
    [ ${#dir} -lt 90 ] || die "DIR path too long for a unix socket: $dir"
    [ -d "$schema_dir" ] || die "$schema_dir not found (install slapd)"
    local slappasswd slapadd
    slappasswd=$(find_tool slappasswd)
    slapadd=$(find_tool slapadd)

    umask 077
    make_certs
    # Password files hold the bare password, no newline (slappasswd -T hashes the
    # whole file).
    local n
    for n in root bind reader; do random_password | tr -d '\n' > "$dir/$n.pw"; done
    chmod 600 "$dir"/*.pw
    local root_hash bind_hash reader_hash
    root_hash=$("$slappasswd" -h '{SSHA}' -T "$dir/root.pw")
    bind_hash=$("$slappasswd" -h '{SSHA}' -T "$dir/bind.pw")
    reader_hash=$("$slappasswd" -h '{SSHA}' -T "$dir/reader.pw")

    write_conf "$root_hash"
    mkdir -p "$dir/db"
    seed_ldif "$bind_hash" "$reader_hash" > "$dir/seed.ldif"
    "$slapadd" -q -f "$dir/slapd.conf" -l "$dir/seed.ldif" >"$dir/slapadd.log" 2>&1 \
        || { cat "$dir/slapadd.log" >&2; die "slapadd failed"; }
    rm -f "$dir/seed.ldif"
    umask 022

    local attempt p1 p2
    for attempt in 1 2 3 4 5; do
        pick_ports || continue
        echo "ldap://127.0.0.1:$p1/ ldaps://127.0.0.1:$p2/ ldapi://$(urlencode_path "$dir/ldapi")/" > "$dir/urls"
        if launch; then
            write_env "$(cat "$dir/slapd.pid")"
            return 0
        fi
    done
    tail -n 20 "$dir/slapd.log" >&2 2>/dev/null || true
    die "slapd did not start (see $dir/slapd.log)"
}

do_stop() {
    [ -d "$dir" ] || return 0
    local pid i
    pid=$(running_pid) || { rm -f "$dir/slapd.pid"; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    # slapd honours SIGTERM in ~20 ms, unless it inherited a mask blocking it (a parent
    # that spawned us from a thread with signals blocked): then SIGKILL after 2 s.
    for i in $(seq 1 200); do
        alive "$pid" || { rm -f "$dir/slapd.pid"; return 0; }
        sleep 0.01
    done
    kill -KILL "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do
        alive "$pid" || break
        sleep 0.01
    done
    rm -f "$dir/slapd.pid"
}

do_restart() {
    [ -f "$dir/slapd.conf" ] || die "no server in $dir (use start)"
    dir=$(cd "$dir" && pwd)
    do_stop
    local i
    for i in $(seq 1 50); do
        if launch; then
            write_env "$(cat "$dir/slapd.pid")"
            return 0
        fi
        sleep 0.1 # the old listener's port may still be in TIME_WAIT
    done
    tail -n 20 "$dir/slapd.log" >&2 2>/dev/null || true
    die "slapd did not restart (see $dir/slapd.log)"
}

case $cmd in
    start) do_start ;;
    stop) do_stop ;;
    restart) do_restart ;;
    status) running_pid >/dev/null ;;
    *) usage ;;
esac
