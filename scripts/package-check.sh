#!/usr/bin/env bash
# Builds the Debian package (scripts/package.sh) and checks what it holds, without
# installing it: the files and their modes (dpkg-deb -c), the control data (conffile,
# Depends, maintainer scripts), the libraries the packaged binary needs (ldd and its
# NEEDED entries: libldap, liblber, libsasl2 and libc, never a Swift or C++
# library), that it prints the source's version, the manual page, the completions, and
# `systemd-analyze verify` of the units. scripts/test.sh runs it last.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { echo "package-check: $*" >&2; }
failures=0
fail() { log "FAIL: $*"; failures=$((failures + 1)); }

deb=$(bash scripts/package.sh | tail -n 1)
[ -f "$deb" ] || { log "FAIL: scripts/package.sh made no package"; exit 1; }
version=$(sed -n 's/^ *[a-z]* *static let string = "\([^"]*\)".*/\1/p' Sources/TakeoverBridge/Version.swift)
case "$deb" in
    */takeover-bridge_"${version}"_"$(dpkg --print-architecture)".deb) ;;
    *) fail "package name $deb does not carry version $version" ;;
esac

work=$(mktemp -d /tmp/tb-package-check.XXXXXX)
trap 'rm -rf "$work"' EXIT

# --- contents and modes -----------------------------------------------------------------
dpkg-deb -c "$deb" > "$work/contents"
expect_file() {  # mode path
    grep -qE "^$1 root/root +[0-9]+ [0-9-]+ [0-9:]+ \./$2\$" "$work/contents" || fail "no $1 root/root ./$2 in the package"
}
expect_file '-rwxr-xr-x' 'usr/bin/takeover-bridge'
expect_file '-rw-r-----' 'etc/takeover-bridge/config\.toml'
expect_file '-rw-r--r--' 'usr/share/man/man1/takeover-bridge\.1\.gz'
expect_file '-rw-r--r--' 'usr/share/bash-completion/completions/takeover-bridge'
expect_file '-rw-r--r--' 'usr/share/zsh/vendor-completions/_takeover-bridge'
expect_file '-rw-r--r--' 'usr/share/fish/vendor_completions\.d/takeover-bridge\.fish'
expect_file '-rw-r--r--' 'usr/share/doc/takeover-bridge/config\.example\.toml'
expect_file '-rw-r--r--' 'usr/share/doc/takeover-bridge/copyright'
expect_file '-rw-r--r--' 'usr/share/takeover-bridge/schema/takeover-bridge\.schema'
expect_file '-rw-r--r--' 'usr/share/takeover-bridge/schema/takeover-bridge\.ldif'
expect_file '-rw-r--r--' 'usr/share/takeover-bridge/schema/report\.schema\.json'
expect_file '-rw-r--r--' 'lib/systemd/system/takeover-bridge\.service'
expect_file '-rw-r--r--' 'lib/systemd/system/takeover-bridge\.timer'
if grep -E '^-.{7}w' "$work/contents"; then fail "a world-writable file in the package"; fi

# --- control data ----------------------------------------------------------------------
dpkg-deb -e "$deb" "$work/DEBIAN"
grep -qx '/etc/takeover-bridge/config.toml' "$work/DEBIAN/conffiles" || fail "config.toml is not a conffile"
depends=$(dpkg-deb -f "$deb" Depends)
echo "$depends" | grep -q 'libldap' || fail "Depends lacks libldap: $depends"
if echo "$depends" | grep -qi 'swift'; then fail "Depends names a Swift package: $depends"; fi
[ "$(dpkg-deb -f "$deb" Version)" = "$version" ] || fail "control Version is not $version"
for script in postinst prerm postrm; do
    [ -x "$work/DEBIAN/$script" ] || fail "no executable $script"
    sh -n "$work/DEBIAN/$script" || fail "$script: syntax error"
done
grep -q 'adduser --system' "$work/DEBIAN/postinst" || fail "postinst creates no system user"
grep -q 'install -d -o "$user" -g "$user" -m 0700 "$state"' "$work/DEBIAN/postinst" || fail "postinst makes no 0700 state folder"

# --- the binary -------------------------------------------------------------------------
dpkg-deb -x "$deb" "$work/root"
binary="$work/root/usr/bin/takeover-bridge"
ldd "$binary" > "$work/ldd" || fail "ldd failed"
if grep -E 'not found|libswift|libFoundation|lib_Foundation|libdispatch|libBlocksRuntime|libicu' "$work/ldd"; then
    fail "the packaged binary needs a library it must not (see above)"
fi
readelf -d "$binary" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' > "$work/needed"
while read -r library; do
    case "$library" in
        libldap*.so.*|liblber*.so.*|libsasl2.so.*|libc.so.*|libm.so.*|libpthread.so.*|libdl.so.*|librt.so.*) ;;
        ld-linux*.so.*) ;;
        *) fail "the binary links $library" ;;
    esac
done < "$work/needed"
log "NEEDED: $(tr '\n' ' ' < "$work/needed")"
[ "$("$binary" --version)" = "$version" ] || fail "the packaged binary's --version is not $version"

# --- manual page, completions, units ---------------------------------------------------
zcat "$work/root/usr/share/man/man1/takeover-bridge.1.gz" > "$work/takeover-bridge.1"
for section in NAME SYNOPSIS DESCRIPTION ENVIRONMENT FILES '"?EXIT STATUS"?' 'SEE ALSO'; do
    grep -qE "^\.Sh $section\$" "$work/takeover-bridge.1" || fail "manual page: no $section section"
done
for code in 0 2 3 4 5 64 67 75 78; do
    grep -qx "\.It $code" "$work/takeover-bridge.1" || fail "manual page: exit code $code missing"
done
if command -v groff >/dev/null 2>&1; then
    warnings=$(groff -mandoc -ww -z "$work/takeover-bridge.1" 2>&1 || true)
    [ -z "$warnings" ] || fail "manual page: groff warns: $warnings"
fi
bash -n "$work/root/usr/share/bash-completion/completions/takeover-bridge" || fail "bash completion: syntax error"
grep -q '_takeover-bridge' "$work/root/usr/share/zsh/vendor-completions/_takeover-bridge" || fail "zsh completion is empty"
grep -q "^complete -c 'takeover-bridge'" "$work/root/usr/share/fish/vendor_completions.d/takeover-bridge.fish" || fail "fish completion is empty"

if command -v systemd-analyze >/dev/null 2>&1; then
    # The units as installed, but pointing at the extracted binary (nothing is installed).
    mkdir -p "$work/units"
    sed "s|/usr/bin/takeover-bridge|$binary|" "$work/root/lib/systemd/system/takeover-bridge.service" > "$work/units/takeover-bridge.service"
    cp "$work/root/lib/systemd/system/takeover-bridge.timer" "$work/units/"
    if ! SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no "$work/units/takeover-bridge.service" \
        "$work/units/takeover-bridge.timer" 2> "$work/verify"; then
        cat "$work/verify" >&2
        fail "systemd-analyze verify"
    fi
    if [ -s "$work/verify" ]; then cat "$work/verify" >&2; fail "systemd-analyze verify printed warnings"; fi
    grep -q '^ProtectSystem=strict$' "$work/units/takeover-bridge.service" || fail "service: no ProtectSystem=strict"
    grep -q '^NoNewPrivileges=yes$' "$work/units/takeover-bridge.service" || fail "service: no NoNewPrivileges=yes"
    grep -q '^StateDirectory=takeover-bridge$' "$work/units/takeover-bridge.service" || fail "service: no StateDirectory"
else
    fail "systemd-analyze is missing (apt-get install systemd)"
fi

if [ "$failures" -gt 0 ]; then
    log "$failures check(s) failed for $deb"
    exit 1
fi
log "ok: $deb ($(du -h "$deb" | cut -f1), Depends: $depends)"
