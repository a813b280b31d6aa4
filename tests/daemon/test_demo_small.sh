#!/bin/bash
# test_demo_small.sh SOURCE_ROOT BUILD_ROOT SHARED_DIR
#
# tools/scripts/demo's whole path on small data, through a real simverifyd in a temp
# dir: 3000 training pairs (train split) and 3000 evaluation pairs (t10k),
# once with pair files from tools/scripts/make_pairs.py and once with pair files from
# ../shared/data/make_pairs.py (issue 7: publish and evaluate read files made
# by either).  Each run must: exit 0, publish every pair (12 steps: 11 full
# batches of 256 and one of 184), lift AUC by at least 0.05 over the initial
# model and over raw cosine (which the demo computes itself), write the
# before/after ROC SVG and both score files, and stop its daemon.  The second run reuses the first run's train .vec (the generators'
# .vec files are byte-identical, tests/python/test_make_pairs.py) and writes
# its own t10k .vec, which must equal the first run's byte for byte.  The
# generators draw the same pairs unless a duplicate pair is redrawn, so small
# files can be identical: 3000 t10k pairs (seed 1) is a size where the
# evaluation files differ, which the test checks; the 3000 train pairs may
# coincide.
# Prints one line per check; exits 1 at the first failure, 77 (skip) when the
# dataset or numpy is missing.
set -u
SRC=$1 BUILD=$2 SHARED=$3
DEMO=$SRC/tools/scripts/demo

[ -d /usr/share/datasets/fashion-mnist ] || { echo "SKIP: dataset-fashion-mnist not installed"; exit 77; }
/usr/bin/python3 -c 'import numpy' 2>/dev/null || { echo "SKIP: no python3-numpy"; exit 77; }
[ -f "$SHARED/data/make_pairs.py" ] || { echo "SKIP: no $SHARED/data/make_pairs.py"; exit 77; }

T=$(mktemp -d /tmp/sv-demo-test.XXXXXX)
trap 'rm -rf "$T"' EXIT

fail() {
	echo "FAIL: $*"
	echo "--- demo output"
	cat "$T/out" 2>/dev/null
	echo "--- daemon log (tail)"
	tail -n 20 "$1"/daemon.log 2>/dev/null
	exit 1
}

# run NAME GENERATOR [DEMO OPTIONS...]
run() {
	local name=$1 gen=$2 dir=$T/$1 pid t0
	shift 2
	t0=$(date +%s)
	"$DEMO" --no-setup --no-build --build "$BUILD" --dir "$dir" --generator "$gen" \
		--train-pairs 3000 --eval-pairs 3000 "$@" >"$T/out" 2>&1 ||
		fail "$dir" "tools/scripts/demo with $gen exited $?"
	grep -q "one pass over 3000 training pairs, 12 steps" "$T/out" ||
		fail "$dir" "$name: not 3000 pairs in 12 steps"
	grep -q "(11 full batches of 256 pairs and a last one of 184)" "$T/out" ||
		fail "$dir" "$name: batches were not 11 x 256 + 184"
	/usr/bin/python3 - "$dir" <<'EOF' || fail "$dir" "$name: results"
import json, sys
d = sys.argv[1]
b, a = (json.load(open("%s/%s.json" % (d, w))) for w in ("before", "after"))
assert b["n_pairs"] == a["n_pairs"] == 3000, (b["n_pairs"], a["n_pairs"])
assert a["model_version"] > b["model_version"], "no new version after training"
assert a["auc"] > b["auc"] + 0.05, "AUC %.4f -> %.4f" % (b["auc"], a["auc"])
assert a["eer"] < b["eer"], "EER %.4f -> %.4f" % (b["eer"], a["eer"])
r = json.load(open(d + "/raw_cosine.json"))
assert 0.7 < r["auc"] < a["auc"] - 0.05, "raw cosine AUC %.4f, after %.4f" % (r["auc"], a["auc"])
for w in ("before", "after"):
    lines = open("%s/scores_%s.txt" % (d, w)).read().split("\n")
    assert lines[0].startswith("# model v") and len(lines) == 3002 and lines[-1] == "", w
svg = open(d + "/roc.svg").read()
assert svg.count("<polyline") == 2 and "baseline model v" in svg, "SVG without two curves"
print("  AUC %.4f -> %.4f, EER %.4f -> %.4f" % (b["auc"], a["auc"], b["eer"], a["eer"]))
EOF
	grep -q "^ROC curves (before and after): $dir/roc.svg" "$T/out" || fail "$dir" "$name: SVG path not printed"
	pid=$(sed -n 's/.*stopping simverifyd (pid \([0-9]*\)).*/\1/p' "$T/out")
	[ -n "$pid" ] || fail "$dir" "$name: the demo did not say it stopped the daemon"
	! kill -0 "$pid" 2>/dev/null || fail "$dir" "$name: simverifyd (pid $pid) still running"
	grep -q "SV-MAIN-EXIT exit 0" "$dir/daemon.log" || fail "$dir" "$name: daemon did not exit cleanly"
	echo "ok: $name: publish and evaluate of $(basename "$(dirname "$gen")")/$(basename "$gen") files, $(($(date +%s) - t0)) s"
}

run tools "$SRC/tools/scripts/make_pairs.py" --keep
mkdir -p "$T/shared"
ln "$T/tools/fmnist_train.vec" "$T/shared/fmnist_train.vec"
run shared "$SHARED/data/make_pairs.py" --keep
cmp -s "$T/tools/fmnist_t10k_n3000_p50_s1.pairs" "$T/shared/fmnist_t10k_n3000_p50_s1.pairs" &&
	fail "$T/shared" "the two generators wrote the same pairs: the second run tested nothing new"
echo "ok: the generators' evaluation pair files differ (both were read)"
cmp -s "$T/tools/fmnist_t10k.vec" "$T/shared/fmnist_t10k.vec" ||
	fail "$T/shared" "the t10k .vec files of the two generators differ"
echo "ok: the generators' t10k .vec files are identical"
echo "PASS"
