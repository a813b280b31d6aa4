#!/bin/sh
# test_unit.sh UNIT DAEMON - the systemd unit passes `systemd-analyze verify`
# and `systemd-analyze security --offline=yes` rates its exposure <= 2.0.
# DAEMON replaces the ExecStart binary in a temp copy (verify checks that
# ExecStart is executable).  Exit 77 (skip) without systemd-analyze.
set -eu
unit=$1
daemon=$2
command -v systemd-analyze >/dev/null 2>&1 || { echo "no systemd-analyze: skip"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed "s|^ExecStart=[^ ]*|ExecStart=$daemon|" "$unit" >"$tmp/simverifyd.service"
cd "$tmp"
if ! systemd-analyze verify "$tmp/simverifyd.service" >"$tmp/verify.log" 2>&1; then
	echo "FAIL: systemd-analyze verify:"; cat "$tmp/verify.log"; exit 1
fi
if [ -s "$tmp/verify.log" ]; then
	echo "FAIL: systemd-analyze verify complained:"; cat "$tmp/verify.log"; exit 1
fi
systemd-analyze security --offline=yes --no-pager "$tmp/simverifyd.service" >"$tmp/sec.log" 2>&1 || true
level=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' "$tmp/sec.log")
if [ -z "$level" ]; then
	echo "FAIL: no exposure level in:"; cat "$tmp/sec.log"; exit 1
fi
echo "exposure level $level (limit 2.0)"
awk -v l="$level" 'BEGIN { exit !(l <= 2.0) }' || { grep '✗' "$tmp/sec.log" || true; echo "FAIL: exposure $level > 2.0"; exit 1; }
# A plain unit must rate far worse: proves the rating is read correctly.
printf '[Service]\nExecStart=%s\n' "$daemon" >"$tmp/plain.service"
plain=$(systemd-analyze security --offline=yes --no-pager "$tmp/plain.service" 2>&1 |
	sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
echo "plain unit exposure $plain"
awk -v l="$plain" 'BEGIN { exit !(l > 5.0) }' || { echo "FAIL: plain unit rated $plain"; exit 1; }
echo ok
