#!/bin/sh
# compare_train.sh - simverify's training step against PyTorch's, as a
# markdown table.
#
# Runs `sv-bench train --json` and tools/bench/torch_step.py --json with the
# same flags for a fixed set of shapes and prints one table row per shape:
# our pairs/s, our step / GEMM-only ratio (both measured in the same run),
# torch's pairs/s and the ratio ours / torch.  Each program is run in turn,
# never both at once.
#
# usage: tools/bench/compare_train.sh [SV_BENCH] [THREADS] [STEPS]
#   SV_BENCH defaults to build/tools/sv-bench, THREADS to 2, STEPS to 40.
set -eu
here=$(dirname "$0")
svb=${1:-build/tools/sv-bench}
threads=${2:-2}
steps=${3:-40}
torch="$here/torch_step.py"

[ -x "$svb" ] || { echo "compare_train.sh: $svb not built" >&2; exit 2; }

echo "| loss | d_in->d_out | batch (pairs) | ours pairs/s | ours step/GEMM-only | torch pairs/s | torch step/GEMM-only | ours/torch |"
echo "|---|---|---|---:|---:|---:|---:|---:|"
for cfg in "ntxent 784 64 256" "contrastive 784 64 256" "ntxent 128 64 256" "ntxent 768 128 1024"; do
	set -- $cfg
	args="--loss $1 --d-in $2 --d-out $3 --batch $4 --mode batch --steps $steps --threads $threads --json"
	ours=$("$svb" train $args)
	theirs=$("$torch" $args)
	/usr/bin/python3 - "$ours" "$theirs" <<'EOF'
import json, sys
o, t = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"| {o['loss']} | {o['d_in']}->{o['d_out']} | {o['batch']} | {o['pairs_per_s']:,.0f} | "
      f"{o['ratio_step_gemm']:.2f} | {t['pairs_per_s']:,.0f} | {t['ratio_step_gemm']:.2f} | "
      f"{o['pairs_per_s'] / t['pairs_per_s']:.2f} |")
EOF
done
echo
echo "threads $threads, median of $steps steps after warmup; batch mode; Adam."
