#!/usr/bin/env bash
# Builds the Debian package dist/takeover-bridge_<version>_<arch>.deb:
#   /usr/bin/takeover-bridge              release build, Swift runtime linked in statically
#   /usr/share/man/man1/takeover-bridge.1.gz   from the command's own help (swift-argument-
#                                         parser's generate-manual plugin) + packaging/man-extra.mdoc
#   bash, zsh and fish completions        from --generate-completion-script
#   /etc/takeover-bridge/config.toml      conffile, 0640 root:takeover-bridge (postinst)
#   /usr/share/doc/takeover-bridge/config.example.toml, /usr/share/takeover-bridge/schema/
#   /lib/systemd/system/takeover-bridge.{service,timer}
#   postinst: the system user takeover-bridge and /var/lib/takeover-bridge (0700)
# The version comes from Sources/TakeoverBridge/Version.swift (the binary's --version is
# checked against it); Depends from dpkg-shlibdeps on the binary.
#
# Usage: bash scripts/package.sh        (release build in .build-release: slow the first time)
# Env:   TB_RELEASE_SCRATCH  scratch path of the release build (default .build-release)
#        TB_DEBUG_SCRATCH    scratch path of the debug build the manual is generated from
#                            (default .build, which scripts/test.sh has built already)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)

log() { echo "package.sh: $*" >&2; }
die() { log "$*"; exit 1; }

for tool in dpkg-deb dpkg-shlibdeps gzip strip; do
    command -v "$tool" >/dev/null 2>&1 || die "needs $tool (apt-get install dpkg-dev binutils)"
done

version=$(sed -n 's/^ *[a-z]* *static let string = "\([^"]*\)".*/\1/p' Sources/TakeoverBridge/Version.swift)
[ -n "$version" ] || die "no version in Sources/TakeoverBridge/Version.swift"
arch=$(dpkg --print-architecture)
release_scratch=${TB_RELEASE_SCRATCH:-.build-release}
debug_scratch=${TB_DEBUG_SCRATCH:-.build}

# --- the binary -----------------------------------------------------------------------
log "release build (static Swift runtime) in $release_scratch"
# The Swift runtime is linked in statically (--static-swift-stdlib), and so are the C++
# runtime (TOMLKit's toml++ and the Swift runtime use it) and libgcc: the package then needs
# only libldap (with liblber and libsasl2) and libc. `-lstdc++` is on the link line twice
# (TOMLKit's C++ target, the static-stdlib arguments); a search folder holding only
# libstdc++.a, searched before the compiler's own, makes both resolve to the archive.
static_cxx="$release_scratch/static-cxx"
libstdcxx_a=$(gcc -print-file-name=libstdc++.a)
[ -f "$libstdcxx_a" ] || die "no libstdc++.a (apt-get install libstdc++-12-dev)"
mkdir -p "$static_cxx"
ln -sfn "$libstdcxx_a" "$static_cxx/libstdc++.a"
release=(-c release --static-swift-stdlib --scratch-path "$release_scratch"
         -Xlinker "-L$(cd "$static_cxx" && pwd)" -Xswiftc -Xclang-linker -Xswiftc -static-libgcc)
swift build "${release[@]}" --product takeover-bridge
binary="$(swift build "${release[@]}" --show-bin-path)/takeover-bridge"
built_version=$("$binary" --version)
[ "$built_version" = "$version" ] || die "the binary says $built_version, Version.swift says $version"

# --- the manual page ------------------------------------------------------------------
# generate-manual runs the (debug) command with --experimental-dump-help; the help is the
# same in every build. EXIT STATUS, FILES and ENVIRONMENT come from packaging/man-extra.mdoc.
log "manual page (swift package generate-manual)"
date=$(git log -1 --format=%cs 2>/dev/null || date -u +%F)
swift package --scratch-path "$debug_scratch" generate-manual --configuration debug --date "$date" --section 1 \
    --authors "takeover-bridge maintainers" >&2
generated="$debug_scratch/plugins/GenerateManual/outputs/takeover-bridge/takeover-bridge.1"
[ -s "$generated" ] || die "generate-manual wrote no $generated"

stage=$(mktemp -d /tmp/tb-package.XXXXXX)
trap 'rm -rf "$stage"' EXIT
pkg="$stage/takeover-bridge"

install -d -m 0755 "$pkg/DEBIAN" "$pkg/usr/bin" "$pkg/usr/share/man/man1" \
    "$pkg/usr/share/bash-completion/completions" "$pkg/usr/share/zsh/vendor-completions" \
    "$pkg/usr/share/fish/vendor_completions.d" "$pkg/usr/share/doc/takeover-bridge" \
    "$pkg/usr/share/takeover-bridge/schema" "$pkg/etc/takeover-bridge" "$pkg/lib/systemd/system"

install -m 0755 "$binary" "$pkg/usr/bin/takeover-bridge"
strip --strip-unneeded "$pkg/usr/bin/takeover-bridge"

# The generated EXIT STATUS section (only ".Ex -std") is replaced by ours.
awk -v extra="packaging/man-extra.mdoc" '
    /^\.Sh "?EXIT STATUS"?$/ { skipping = 1; while ((getline line < extra) > 0) print line; next }
    skipping && /^\.Sh / { skipping = 0 }
    !skipping { print }
' "$generated" > "$stage/takeover-bridge.1"
grep -q '^\.It 67$' "$stage/takeover-bridge.1" || die "the manual page has no exit status table"
gzip -9n < "$stage/takeover-bridge.1" > "$pkg/usr/share/man/man1/takeover-bridge.1.gz"
chmod 0644 "$pkg/usr/share/man/man1/takeover-bridge.1.gz"

# --- completions, config, schema, units -----------------------------------------------
"$pkg/usr/bin/takeover-bridge" --generate-completion-script bash > "$pkg/usr/share/bash-completion/completions/takeover-bridge"
"$pkg/usr/bin/takeover-bridge" --generate-completion-script zsh > "$pkg/usr/share/zsh/vendor-completions/_takeover-bridge"
"$pkg/usr/bin/takeover-bridge" --generate-completion-script fish > "$pkg/usr/share/fish/vendor_completions.d/takeover-bridge.fish"
chmod 0644 "$pkg/usr/share/bash-completion/completions/takeover-bridge" \
    "$pkg/usr/share/zsh/vendor-completions/_takeover-bridge" "$pkg/usr/share/fish/vendor_completions.d/takeover-bridge.fish"

install -m 0644 config.example.toml "$pkg/usr/share/doc/takeover-bridge/config.example.toml"
install -m 0640 config.example.toml "$pkg/etc/takeover-bridge/config.toml"
cat > "$pkg/usr/share/doc/takeover-bridge/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: takeover-bridge
Comment: Built from $(git rev-parse --short HEAD 2>/dev/null || echo "a source tree") by scripts/package.sh.
 The Swift runtime, swift-argument-parser, swift-log and TOMLKit (with toml++) are
 linked in statically; each is under the Apache License 2.0 (swift-*) or the MIT
 license (TOMLKit, toml++).
EOF
chmod 0644 "$pkg/usr/share/doc/takeover-bridge/copyright"
for file in schema/*; do
    [ -f "$file" ] && install -m 0644 "$file" "$pkg/usr/share/takeover-bridge/schema/"
done
install -m 0644 packaging/takeover-bridge.service packaging/takeover-bridge.timer "$pkg/lib/systemd/system/"

# --- control files --------------------------------------------------------------------
install -m 0755 packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm "$pkg/DEBIAN/"
echo "/etc/takeover-bridge/config.toml" > "$pkg/DEBIAN/conffiles"
mkdir -p "$stage/src/debian"
printf 'Source: takeover-bridge\n\nPackage: takeover-bridge\nArchitecture: any\n' > "$stage/src/debian/control"
depends=$(cd "$stage/src" && dpkg-shlibdeps -O "$pkg/usr/bin/takeover-bridge" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
[ -n "$depends" ] || die "dpkg-shlibdeps found no dependencies"
size=$(du -sk --exclude=DEBIAN "$pkg" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" -e "s/@DEPENDS@/$depends/" \
    packaging/debian/control.in > "$pkg/DEBIAN/control"
(cd "$pkg" && find . -type f ! -path './DEBIAN/*' ! -path './etc/*' -printf '%P\0' | sort -z | xargs -0 md5sum) \
    > "$pkg/DEBIAN/md5sums"
chmod 0644 "$pkg/DEBIAN/control" "$pkg/DEBIAN/conffiles" "$pkg/DEBIAN/md5sums"

mkdir -p dist
deb="dist/takeover-bridge_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$pkg" "$deb" >&2
log "built $deb (Depends: $depends, adduser)"
echo "$root/$deb"
