#!/bin/sh
# check_deb.sh [SRC] - build the Debian package from a copy of SRC (default:
# this checkout) in a temp dir, without its tests (DEB_BUILD_OPTIONS=nocheck:
# CI has run them), unpack it with `dpkg -x` and check the layout:
#   - exactly the files of the expected list below (Debian paths);
#   - the config is a conffile; the unit is enabled by the maintainer scripts
#     (dh_installsystemd) and runs as its DynamicUser, created by no script;
#   - Depends comes from shlibs (libzmq, liblmdb, ...);
#   - lintian reports nothing (tags kept are explained in
#     debian/simverify.lintian-overrides).
# The copy keeps SRC's parent clean: dpkg-buildpackage writes ../*.deb.
# Exit 0 ok, 1 a check failed, 77 (skip) without dpkg-buildpackage.
set -eu
src=$(cd "${1:-$(dirname "$0")/../..}" && pwd)
command -v dpkg-buildpackage >/dev/null 2>&1 || { echo "no dpkg-buildpackage: skip"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }

mkdir -p "$tmp/src/simverify"
tar -C "$src" --exclude='./build*' --exclude=./.git --exclude=./obj-* --exclude=./debian/simverify \
	--exclude=./debian/.debhelper -cf - . | tar -C "$tmp/src/simverify" -xf -
if ! (cd "$tmp/src/simverify" && DEB_BUILD_OPTIONS=nocheck dpkg-buildpackage -us -uc -b) \
	>"$tmp/build.log" 2>&1; then
	tail -40 "$tmp/build.log"; echo "FAIL: dpkg-buildpackage"; exit 1
fi
deb=$(ls "$tmp"/src/simverify_*.deb)
echo "built $(basename "$deb")"

# 1. The layout.
dpkg -x "$deb" "$tmp/x"
(cd "$tmp/x" && find . -type f -o -type l) | sed 's|^\.||' | sort >"$tmp/got"
sort >"$tmp/want" <<'LIST'
/etc/simverify/simverifyd.yaml
/lib/systemd/system/simverifyd.service
/usr/bin/simverifyctl
/usr/sbin/simverifyd
/usr/share/bash-completion/completions/simverifyctl
/usr/share/doc/simverify/BAD_INPUT.md
/usr/share/doc/simverify/DAEMON.md
/usr/share/doc/simverify/PROTOCOL.md
/usr/share/doc/simverify/README.md
/usr/share/doc/simverify/RESULTS.md
/usr/share/doc/simverify/SECURITY.md
/usr/share/doc/simverify/changelog.gz
/usr/share/doc/simverify/copyright
/usr/share/doc/simverify/roc.svg
/usr/share/lintian/overrides/simverify
/usr/share/man/man1/simverifyctl.1.gz
/usr/share/man/man5/simverifyd.yaml.5.gz
/usr/share/man/man8/simverifyd.8.gz
LIST
if ! cmp -s "$tmp/want" "$tmp/got"; then
	bad "package files differ (- missing, + unexpected):"
	diff "$tmp/want" "$tmp/got" | sed -n 's/^</  -/p; s/^>/  +/p'
fi
unit=$tmp/x/lib/systemd/system/simverifyd.service
grep -q '^ExecStart=/usr/sbin/simverifyd -c /etc/simverify/simverifyd.yaml ' "$unit" ||
	bad "unit ExecStart: $(grep '^ExecStart=' "$unit")"
grep -q '^DynamicUser=yes$' "$unit" || bad "unit has no DynamicUser=yes"
grep -q '^Documentation=file:///usr/share/doc/simverify/PROTOCOL.md$' "$unit" ||
	bad "unit Documentation=: $(grep '^Documentation=' "$unit")"

# 2. Control data: conffile, unit enabled by the maintainer scripts, no user made.
dpkg-deb -e "$deb" "$tmp/ctl"
grep -qx /etc/simverify/simverifyd.yaml "$tmp/ctl/conffiles" 2>/dev/null ||
	bad "config is not a conffile"
grep -q 'deb-systemd-helper.* enable .*simverifyd.service' "$tmp/ctl/postinst" 2>/dev/null ||
	bad "postinst does not enable simverifyd.service"
if cat "$tmp/ctl/preinst" "$tmp/ctl/postinst" 2>/dev/null | grep -qE 'adduser|useradd'; then
	bad "a maintainer script creates a user (the unit's DynamicUser is the user)"
fi
depends=$(dpkg-deb -f "$deb" Depends)
for lib in libzmq5 liblmdb0 libyaml-0-2 libc6; do
	echo "$depends" | grep -q "$lib" || bad "Depends lacks $lib: $depends"
done

# 3. lintian, info and pedantic tags too: nothing left unexplained.
if command -v lintian >/dev/null 2>&1; then
	lintian --display-info --pedantic "$tmp"/src/simverify_*.changes >"$tmp/lintian.log" 2>&1 || true
	if grep -E '^[EWIPX]: ' "$tmp/lintian.log"; then
		bad "lintian tags above (fix them or explain each in debian/simverify.lintian-overrides)"
	fi
else
	echo "note: no lintian"
fi

[ "$fail" -eq 0 ] && echo ok
exit "$fail"
