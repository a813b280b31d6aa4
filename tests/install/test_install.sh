#!/bin/sh
# test_install.sh BUILD EXPECTED SBIN_PATH BIN_PATH UNIT_PATH man|noman
# `meson install` of BUILD into a temp DESTDIR, then on what it installed:
#   - the file list is exactly EXPECTED (one absolute path a line);
#   - the unit's ExecStart, -c config and Documentation= name installed files,
#     and `systemd-analyze verify` passes on it with ExecStart pointed at the
#     DESTDIR copy of the daemon (verify checks the binary is executable);
#   - each man page renders with `man --warnings` and nothing on stderr, and
#     names every verb and option of `simverifyctl [VERB] --help`, every
#     option of `simverifyd --help` and every config key;
#   - the bash completion offers every verb of `simverifyctl --help`.
# Leaves out: the Debian package (tests/install/check_deb.sh).
set -eu
build=$1 expected=$2 sbin=$3 bin=$4 unit=$5 man=$6
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dest=$tmp/dest
fail=0
bad() { echo "FAIL: $*"; fail=1; }

meson install -C "$build" --no-rebuild --quiet --destdir "$dest" >"$tmp/install.log" 2>&1 ||
	{ cat "$tmp/install.log"; echo "FAIL: meson install"; exit 1; }

# 1. The file list.
if [ "$man" = man ]; then
	sort "$expected" >"$tmp/want"
else
	echo "note: man pages not built (-Dman=disabled, or no scdoc): not expected, not checked"
	grep -v '/man[0-9]/' "$expected" | sort >"$tmp/want"
fi
(cd "$dest" && find . -type f -o -type l) | sed 's|^\.||' | sort >"$tmp/got"
if ! cmp -s "$tmp/want" "$tmp/got"; then
	bad "installed files differ from $expected (- missing, + unexpected):"
	diff "$tmp/want" "$tmp/got" | sed -n 's/^</  -/p; s/^>/  +/p'
fi
[ -x "$dest$sbin" ] || bad "$sbin not executable"
[ -x "$dest$bin" ] || bad "$bin not executable"

# 2. The unit: its paths point into this install, and systemd accepts it.
exec_start=$(sed -n 's/^ExecStart=//p' "$dest$unit")
exe=${exec_start%% *}
[ "$exe" = "$sbin" ] || bad "unit ExecStart runs '$exe', not $sbin"
conf=$(echo "$exec_start" | sed -n 's/.* -c \([^ ]*\).*/\1/p')
[ -n "$conf" ] && [ -f "$dest$conf" ] || bad "unit's -c '$conf' is not an installed file"
doc=$(sed -n 's|^Documentation=file://||p' "$dest$unit")
[ -n "$doc" ] && [ -f "$dest$doc" ] || bad "unit's Documentation= '$doc' is not an installed file"
if grep -n '@[A-Z_]*@' "$dest$unit"; then
	bad "unit keeps unsubstituted @VARS@"
fi
if command -v systemd-analyze >/dev/null 2>&1; then
	sed "s|^ExecStart=$exe |ExecStart=$dest$exe |" "$dest$unit" >"$tmp/simverifyd.service"
	grep -q "^ExecStart=$dest$exe " "$tmp/simverifyd.service" || bad "ExecStart not rewritten"
	if ! (cd "$tmp" && systemd-analyze verify "$tmp/simverifyd.service") >"$tmp/verify.log" 2>&1 ||
		[ -s "$tmp/verify.log" ]; then
		bad "systemd-analyze verify on the installed unit:"; cat "$tmp/verify.log"
	fi
	# The check can fail: a unit whose daemon is not there is refused.
	sed "s|^ExecStart=$exe |ExecStart=$tmp/missing/simverifyd |" "$dest$unit" >"$tmp/broken.service"
	if (cd "$tmp" && systemd-analyze verify "$tmp/broken.service") >/dev/null 2>&1; then
		bad "systemd-analyze verify accepted a unit with a missing ExecStart binary"
	fi
else
	echo "note: no systemd-analyze: unit not verified"
fi

# 3. The man pages.
render() { LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings --nh --nj -l "$1"; }
has() { grep -qE -- "(^|[^a-z_.-])$2([^a-z_-]|\$)" "$1"; }
if [ "$man" = man ]; then
	mandir=$(dirname "$(dirname "$(grep '/man8/' "$expected")")")
	for page in man8/simverifyd.8 man1/simverifyctl.1 man5/simverifyd.yaml.5; do
		p=$dest$mandir/$page
		render "$p" >"$tmp/$(basename "$p").txt" 2>"$tmp/warn" || bad "man -l $page failed"
		if [ -s "$tmp/warn" ]; then
			bad "man -l $page warned:"; cat "$tmp/warn"
		fi
		[ "$(wc -l <"$tmp/$(basename "$p").txt")" -gt 20 ] || bad "$page renders almost empty"
	done
	ctl=$dest$bin d=$dest$sbin
	"$ctl" --help >"$tmp/ctl.help"
	sed -n '/^Verbs:/,/^$/s/^  \([a-z-]*\( [a-z]*\)\?\) .*/\1/p' "$tmp/ctl.help" |
		sed 's/ [A-Z].*//' >"$tmp/verbs"
	[ "$(wc -l <"$tmp/verbs")" -ge 20 ] || bad "too few verbs read from simverifyctl --help"
	while read -r verb; do
		has "$tmp/simverifyctl.1.txt" "$verb" || bad "simverifyctl.1 does not name verb '$verb'"
		# shellcheck disable=SC2086
		"$ctl" $verb --help >"$tmp/verb.help" 2>&1 || bad "simverifyctl $verb --help failed"
		for o in $(grep -oE -- '(^|[ ,])--?[a-z][a-z-]*' "$tmp/verb.help" | tr -d ' ,' | sort -u); do
			has "$tmp/simverifyctl.1.txt" "$o" || bad "simverifyctl.1 lacks '$o' ($verb --help)"
		done
	done <"$tmp/verbs"
	"$d" --help >"$tmp/d.help"
	for o in $(sed -n 1p "$tmp/d.help" | grep -oE -- '--?[a-z][a-z-]*' | sort -u) --help --version; do
		has "$tmp/simverifyd.8.txt" "$o" || bad "simverifyd.8 lacks '$o'"
	done
	for k in $(sed -n 's/^  \([a-z_]*\(\.[a-z_]*\)\?\) .*/\1/p' "$tmp/d.help"); do
		has "$tmp/simverifyd.yaml.5.txt" "$k" || bad "simverifyd.yaml.5 lacks key '$k'"
	done
	[ "$(sed -n 's/^  \([a-z_.]*\) .*/\1/p' "$tmp/d.help" | wc -l)" -ge 40 ] ||
		bad "too few keys read from simverifyd --help"
fi

# 4. The bash completion offers every verb of `simverifyctl --help`.
comp=$(grep '/simverifyctl$' "$expected" | grep -v "^$bin\$")
bc=/usr/share/bash-completion/bash_completion
if [ -f "$bc" ] && command -v bash >/dev/null 2>&1; then
	bash -c '. "$1"; . "$2"
		comp() { COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
			COMPREPLY=(); _simverifyctl
			printf "%s\n" "${COMPREPLY[@]}" | sort; }
		comp simverifyctl ""; echo ==; comp simverifyctl config ""; echo ==
		comp simverifyctl item ""; echo ==; comp simverifyctl publish --' \
		sh "$bc" "$dest$comp" >"$tmp/comp" 2>&1 || bad "completion script failed"
	"$dest$bin" --help | sed -n '/^Verbs:/,/^$/s/^  \([a-z-]*\).*/\1/p' | sort -u >"$tmp/top"
	sed -n '1,/^==$/p' "$tmp/comp" | grep -v '^==$' >"$tmp/comp.top"
	cmp -s "$tmp/top" "$tmp/comp.top" || { bad "completion verbs differ from --help:"; diff "$tmp/top" "$tmp/comp.top"; }
	[ "$(sed -n '/^==$/,$p' "$tmp/comp" | sed -n 2,3p | tr '\n' ' ')" = "check show " ] ||
		bad "completion of 'config': $(cat "$tmp/comp")"
	grep -qx -- '--items-first' "$tmp/comp" || bad "completion of 'publish --' lacks --items-first"
else
	echo "note: no bash-completion: completion not exercised"
fi

[ "$fail" -eq 0 ] && echo ok
exit "$fail"
