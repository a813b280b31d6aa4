#!/bin/sh
# compare_train.sh - simverify's training step against PyTorch's, as a
# markdown table.
#
# Runs `sv-bench train --json` and tools/torchref/torch_step.py --json with the
# same flags for a fixed set of shapes and prints one table row per shape:
# our pairs/s, our step / GEMM-only ratio (OpenBLAS threading the step's
# GEMMs, measured in the same run), our step / the same GEMMs split across
# the threads by sv_blas (the step's own overhead),
# torch's pairs/s and step / torch.mm-only ratio, and the ratio ours / torch.
# The two programs run in turn, never at once, ROUNDS times alternately; for
# each side the run with the most pairs/s is kept (the least disturbed one on
# a shared machine; each run's figure is itself a median over STEPS steps).
#
# usage: tools/torchref/compare_train.sh [SV_BENCH] [THREADS] [STEPS] [ROUNDS]
#   SV_BENCH defaults to build/tools/sv-bench, THREADS to 2, STEPS to 40,
#   ROUNDS to 3.
set -eu
here=$(dirname "$0")
svb=${1:-build/tools/sv-bench}
threads=${2:-2}
steps=${3:-40}
rounds=${4:-3}
torch="$here/torch_step.py"
nl='
'

[ -x "$svb" ] || { echo "compare_train.sh: $svb not built" >&2; exit 2; }

echo "| loss | d_in->d_out | batch (pairs) | ours pairs/s | ours step/GEMM-only | ours step/split GEMMs | torch pairs/s | torch step/GEMM-only | ours/torch |"
echo "|---|---|---|---:|---:|---:|---:|---:|---:|"
for cfg in "ntxent 784 64 256" "contrastive 784 64 256" "ntxent 128 64 256" "ntxent 768 128 1024"; do
	set -- $cfg
	args="--loss $1 --d-in $2 --d-out $3 --batch $4 --mode batch --steps $steps --threads $threads --json"
	ours=""
	theirs=""
	r=0
	while [ "$r" -lt "$rounds" ]; do
		ours="$ours$("$svb" train $args)$nl"
		theirs="$theirs$("$torch" $args)$nl"
		r=$((r + 1))
	done
	/usr/bin/python3 -c '
import json, sys
def best(text):
    runs = [json.loads(l) for l in text.split("\n") if l.strip()]
    return max(runs, key=lambda r: r["pairs_per_s"])
o, t = best(sys.argv[1]), best(sys.argv[2])
print("| {} | {}->{} | {} | {:,.0f} | {:.2f} | {:.2f} | {:,.0f} | {:.2f} | {:.2f} |".format(
    o["loss"], o["d_in"], o["d_out"], o["batch"], o["pairs_per_s"], o["ratio_step_gemm"],
    o["ratio_step_split_gemm"], t["pairs_per_s"], t["ratio_step_gemm"], o["pairs_per_s"] / t["pairs_per_s"]))
' "$ours" "$theirs"
done
echo
echo "threads $threads; each figure the median of $steps steps after warmup, best of $rounds alternating runs; batch mode; Adam."
