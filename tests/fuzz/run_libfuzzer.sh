#!/bin/sh
# run_libfuzzer.sh EXE SECONDS SEED_CORPUS WORKDIR - run one libFuzzer target
# for SECONDS from the seed corpus (read only) plus WORKDIR/corpus (where new
# inputs go); a crash leaves WORKDIR/crash-* and fails the test.  libFuzzer
# exits 77 on a crash by default, which meson reads as "skipped": ask for 1.
set -eu
exe=$1 secs=$2 seeds=$3 work=$4
mkdir -p "$work/corpus"
exec "$exe" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
	-error_exitcode=1 -timeout_exitcode=1 \
	-artifact_prefix="$work/" "$work/corpus" "$seeds"
