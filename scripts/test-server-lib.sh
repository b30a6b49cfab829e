# Helpers shared by the throwaway test servers (scripts/test-slapd.sh, scripts/test-389.sh,
# scripts/test-samba-ad.sh): sourced, never run. The caller sets `dir` (the server's
# folder, absolute) and `name` (used in messages) before calling them.

die() { echo "${name:-test-server}: $*" >&2; exit 1; }

# A TCP port nobody listens on (checked against /proc/net/tcp{,6}); a start retries
# with new ports if the server still fails to bind.
port_in_use() {
    local hex
    hex=$(printf '%04X' "$1")
    cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk -v p=":$hex" '$2 ~ p"$" { found=1 } END { exit !found }'
}
free_port() {
    local p ephemeral_low
    ephemeral_low=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
    [ "$ephemeral_low" -gt 21000 ] 2>/dev/null || ephemeral_low=32768
    for _ in $(seq 1 200); do
        # Below the kernel's ephemeral range (ip_local_port_range, 32768-60999 here): a
        # port there can be taken as the local end of any outgoing connection while a
        # killed server is being restarted on it.
        p=$(( 20000 + (RANDOM * 32768 + RANDOM) % (ephemeral_low - 20000) ))
        if ! port_in_use "$p"; then echo "$p"; return 0; fi
    done
    die "no free port found"
}

# Two different free ports for LDAP and LDAPS, in p1 and p2 and in DIR/port-ldap and
# DIR/port-ldaps; false when the two draws collide (draw again).
pick_ports() {
    p1=$(free_port); p2=$(free_port)
    [ "$p1" != "$p2" ] || return 1
    echo "$p1" > "$dir/port-ldap"
    echo "$p2" > "$dir/port-ldaps"
}

# Waits until something accepts TCP connections on ADDR:PORT, at most SECONDS; while
# PID (when given) is alive.
wait_tcp() { # addr port seconds [pid]
    local i tries=$(( $3 * 10 ))
    for (( i = 0; i < tries; i++ )); do
        (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0
        if [ -n "${4:-}" ] && ! alive "$4"; then return 1; fi
        sleep 0.1
    done
    return 1
}

# Alive = exists and is not a zombie (a daemon is reparented once its starter exits; in
# a container PID 1 may reap late, and kill -0 succeeds on zombies).
alive() {
    local state
    state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# The pid in FILE, when that process is alive.
pid_in_file() {
    local pid
    [ -f "$1" ] || return 1
    pid=$(cat "$1" 2>/dev/null) || return 1
    [ -n "$pid" ] && alive "$pid" && echo "$pid"
}

# Stops PID: SIGTERM, then SIGKILL after SECONDS (default 20).
stop_pid() { # pid [seconds]
    local pid=$1 i tries=$(( ${2:-20} * 20 ))
    alive "$pid" || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for (( i = 0; i < tries; i++ )); do
        alive "$pid" || return 0
        sleep 0.05
    done
    kill -KILL "$pid" 2>/dev/null || true
    for (( i = 0; i < 100; i++ )); do
        alive "$pid" || return 0
        sleep 0.05
    done
}

random_password() { # letters, digits, - and _ plus a fixed tail meeting AD's complexity rule
    printf '%sAa1-' "$(head -c 18 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
}

# A test CA, an unrelated "wrong" CA and a server certificate signed by the first, in
# DIR/tls: ca.crt, wrong-ca.crt, server.crt, server.key (EC P-256, two days).
# SAN is the subjectAltName list of the server certificate, e.g.
# "DNS:localhost,IP:127.0.0.1".
make_test_certs() { # cn san
    local t=$dir/tls cn=$1 san=$2
    command -v openssl >/dev/null 2>&1 || die "openssl is not installed (scripts/install-deps.sh installs it)"
    mkdir -p "$t"
    local ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
    local n
    for n in ca wrong-ca; do
        openssl req -x509 "${ec[@]}" -keyout "$t/$n.key" -out "$t/$n.crt" -days 2 \
            -subj "/O=takeover-bridge test/CN=Test ${n^^}" \
            -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null \
            || die "openssl could not make the $n certificate"
    done
    openssl req "${ec[@]}" -keyout "$t/server.key" -out "$t/server.csr" \
        -subj "/O=takeover-bridge test/CN=$cn" 2>/dev/null || die "openssl could not make the server key"
    printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
        "extendedKeyUsage=serverAuth" "subjectAltName=$san" > "$t/server.ext"
    openssl x509 -req -in "$t/server.csr" -CA "$t/ca.crt" -CAkey "$t/ca.key" -CAcreateserial \
        -out "$t/server.crt" -days 2 -extfile "$t/server.ext" 2>/dev/null || die "openssl could not sign the server certificate"
    chmod 600 "$t"/*.key
}

# The three random passwords (DIR/root.pw, bind.pw, reader.pw, mode 0600) and the test
# certificates (make_test_certs CN SAN). Call it under umask 077.
make_secrets() { # cn san
    local n
    for n in root bind reader; do random_password > "$dir/$n.pw"; done
    chmod 600 "$dir"/*.pw
    make_test_certs "$1" "$2"
}

# Checks DIR: absolute after creation, only safe characters (the env file is unquoted).
prepare_dir() {
    case $dir in
        *[!a-zA-Z0-9/._-]*) die "DIR must contain only letters, digits and / . _ - (got '$dir')" ;;
    esac
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
}

# The two service accounts every test tree has, below its services OU: sets bind_dn and
# reader_dn from base. The RDN words in the server's spelling: "cn ou", or "CN OU" on AD.
service_dns() { # cn_word ou_word
    bind_dn="$1=bridge,$2=services,$base"
    reader_dn="$1=reader,$2=services,$base"
}

# The organizational units every test tree has below base (people, devices, bindings,
# services), as LDIF entries. OU is the RDN word ("ou", or "OU" on AD); LINE, when given,
# follows each dn line (e.g. "changetype: add").
ou_entries() { # ou_word [line]
    local ou
    for ou in people devices bindings services; do
        printf 'dn: %s=%s,%s\n' "$1" "$ou" "$base"
        [ -z "${2:-}" ] || printf '%s\n' "$2"
        printf 'objectClass: top\nobjectClass: organizationalUnit\nou: %s\n\n' "$ou"
    done
}

# The env lines every test server writes with the same names and meanings (the caller
# sets base, root_dn, bind_dn, reader_dn; OU is "ou" or, on AD, "OU"; password files
# DIR/root.pw, bind.pw, reader.pw; CAs in DIR/tls).
common_env() { # ou
    cat <<EOF
TB_BASE=$base
TB_PEOPLE_BASE=$1=people,$base
TB_DEVICES_BASE=$1=devices,$base
TB_BINDINGS_BASE=$1=bindings,$base
TB_SERVICES_BASE=$1=services,$base
TB_ROOT_DN=$root_dn
TB_ROOT_PW_FILE=$dir/root.pw
TB_BIND_DN=$bind_dn
TB_BIND_PW_FILE=$dir/bind.pw
TB_READER_DN=$reader_dn
TB_READER_PW_FILE=$dir/reader.pw
TB_CA_CERT=$dir/tls/ca.crt
TB_WRONG_CA_CERT=$dir/tls/wrong-ca.crt
EOF
}

# The env lines that say where the server runs (389 DS and Samba AD; the TB_SLAPD_* names
# are kept for the suites that stop and restart "the" server).
server_env() { # pid log
    cat <<EOF
TB_SERVER_DIR=$dir
TB_SERVER_PID=$1
TB_SERVER_PIDFILE=$(pidfile)
TB_SERVER_LOG=$2
TB_SLAPD_DIR=$dir
TB_SLAPD_PID=$1
TB_SLAPD_PIDFILE=$(pidfile)
EOF
}
