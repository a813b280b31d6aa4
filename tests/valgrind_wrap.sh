#!/bin/sh
# valgrind_wrap.sh PROGRAM [ARGS...] - the exe_wrapper of `meson test
# --setup=valgrind`: memcheck PROGRAM and every process it forks or execs.
# Criterion runs each test in a child and does not fail a test whose child
# exits with valgrind's error code, so each process logs to its own file and
# any non-empty log (errors, definite leaks) fails the run, printed whole.
# Python, shells and the daemon are not traced (see --trace-children-skip).
set -u
here=$(cd "$(dirname "$0")" && pwd)
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
valgrind --quiet --error-exitcode=99 --leak-check=full --show-leak-kinds=definite \
	--errors-for-leak-kinds=definite \
	--trace-children=yes --trace-children-skip='*python*,*/sh,*/bash,*simverifyd*' \
	--suppressions="$here/valgrind.supp" --log-file="$logs/vg.%p" "$@"
rc=$?
bad=0
for f in "$logs"/vg.*; do
	[ -s "$f" ] || continue
	bad=1
	echo "valgrind: errors in process ${f##*.}:" >&2
	cat "$f" >&2
done
[ "$bad" -eq 0 ] || exit 99
exit "$rc"
