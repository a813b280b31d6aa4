#!/bin/sh
# test_ctl.sh SIMVERIFYD SIMVERIFYCTL SHARED_DIR SOURCE_ROOT
#
# simverifyctl against the real daemon (simverifyd --state-dir DIR in a temp
# dir): exit codes, status/metrics/admin verbs, items, score, topk, publish
# (acked, idempotent re-run, fire-and-forget, --items-first) and evaluate on
# Fashion-MNIST pairs made by ../shared/data/make_pairs.py (and by
# tools/scripts/make_pairs.py when present), export-model / import-model.
# Prints one line per check; exits 1 at the first failure, 77 (skip) when
# the daemon or the dataset is missing.
set -u
D=$1 CTL=$2 SHARED=$3 SRC=$4
PY=/usr/bin/python3

[ -x "$D" ] || { echo "SKIP: no simverifyd at $D"; exit 77; }
[ -x "$CTL" ] || { echo "SKIP: no simverifyctl at $CTL"; exit 77; }
[ -d /usr/share/datasets/fashion-mnist ] || { echo "SKIP: dataset-fashion-mnist not installed"; exit 77; }

T=$(mktemp -d /tmp/sv-ctl-test.XXXXXX)
PID=
cleanup() {
	if [ -n "$PID" ]; then
		kill "$PID" 2>/dev/null
		wait "$PID" 2>/dev/null
	fi
	rm -rf "$T"
}
trap cleanup EXIT INT TERM

fail() {
	echo "FAIL: $*"
	echo "--- daemon log (tail)"
	tail -n 30 "$T/daemon.log" 2>/dev/null
	exit 1
}
ok() { echo "ok: $*"; }

# expect CODE CMD... : run CMD, its exit code must be CODE.
expect() {
	want=$1
	shift
	"$@" >"$T/out" 2>"$T/err"
	got=$?
	[ "$got" -eq "$want" ] || {
		echo "stdout:"; cat "$T/out"; echo "stderr:"; cat "$T/err"
		fail "'$*' exited $got, expected $want"
	}
}

S="$T/state"
ROOT=
[ "$(id -u)" -eq 0 ] && ROOT=--allow-root
start_daemon() {
	"$D" --state-dir "$S" $ROOT -o train.batch_pairs=64 -o train.max_wait_ms=50ms \
		-o store.map_size=64MiB -o checkpoint.every_steps=0 >>"$T/daemon.log" 2>&1 &
	PID=$!
	i=0
	until "$CTL" --state-dir "$S" -t 0.5 status >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -lt 60 ] || fail "daemon did not answer status within 30 s"
		kill -0 "$PID" 2>/dev/null || fail "daemon exited"
		sleep 0.5
	done
}
C() { "$CTL" --state-dir "$S" "$@"; }

mkdir -p "$S" "$T/data"
start_daemon
ok "daemon up, status answers"

# ---- exit codes
expect 2 "$CTL" frobnicate
expect 2 "$CTL" topk
expect 0 "$CTL" --help
expect 3 "$CTL" --state-dir "$T/nowhere" status
grep -q "cannot reach daemon at ipc://$T/nowhere/admin.sock" "$T/err" || fail "no clear error for a missing socket"
expect 3 "$CTL" --admin tcp://127.0.0.1:9 -t 0.3 status
grep -q "cannot reach daemon at tcp://127.0.0.1:9 (timeout 0.3s)" "$T/err" || fail "no timeout message: $(cat "$T/err")"
expect 4 C item get no-such-item
grep -q "not_found" "$T/err" || fail "item get: no not_found on stderr"
ok "exit codes: usage 2, connection 3, refused 4"

# ---- finding the daemon: -c FILE, $SIMVERIFY_CONFIG, explicit endpoints
printf 'state_dir: "%s"\n' "$S" >"$T/daemon.yaml"
expect 0 "$CTL" -c "$T/daemon.yaml" status
SIMVERIFY_CONFIG="$T/daemon.yaml" expect 0 "$CTL" status
expect 0 "$CTL" --admin "ipc://$S/admin.sock" status
printf 'endpoints:\n  admin: "ipc://%s/elsewhere.sock"\n' "$T" >"$T/other.yaml"
expect 3 "$CTL" -c "$T/other.yaml" status
grep -q "elsewhere.sock" "$T/err" || fail "-c FILE: the config's endpoints.admin was not used"
ok "-c FILE, SIMVERIFY_CONFIG, --admin"

# ---- status / metrics / config
expect 0 C status --json
$PY -c "
import json, sys
j = json.load(open('$T/out'))
need = ['model_version', 'steps', 'pairs_seen', 'items', 'backlog', 'auc', 'eer', 'threshold']
missing = [k for k in need if k not in j]
assert not missing, missing
" || fail "status --json lacks keys"
expect 0 C status
grep -q "^model version" "$T/out" || fail "status: no model version line"
grep -q "^pairs/s  *[0-9]" "$T/out" || fail "status: no pairs/s: $(cat "$T/out")"
grep -q "^RSS  *[0-9]" "$T/out" || fail "status: no RSS of the local daemon: $(cat "$T/out")"
expect 0 C metrics
$PY - "$T/out" <<'EOF' || fail "metrics is not valid exposition text"
import re, sys
text = open(sys.argv[1]).read()
names = set()
for line in text.splitlines():
    if line.startswith('# TYPE '):
        _, _, name, typ = line.split(' ', 3)
        assert typ in ('counter', 'gauge', 'histogram'), line
        assert name.startswith('simverify_'), line
        if typ == 'counter':
            assert name.endswith('_total'), line
        names.add(name)
    elif line.startswith('#') or not line:
        continue
    else:
        assert re.match(r'^simverify_[a-zA-Z0-9_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? '
                        r'(-?[0-9.eE+-]+|NaN|\+Inf|-Inf)$', line), line
for need in ('simverify_pairs_total', 'simverify_steps_total', 'simverify_checkpoints_total',
             'simverify_model_version', 'simverify_resident_memory_bytes'):
    assert need in names, need
EOF
expect 0 C config show
grep -q "d_in" "$T/out" || fail "config show: no d_in"
expect 0 C config show --json
$PY -c "import json; j = json.load(open('$T/out')); assert j['model.d_in'] == 784, j" ||
	fail "config show --json"
printf 'train:\n  lr: -1\n' >"$T/bad.yaml"
expect 1 "$CTL" config check "$T/bad.yaml"
grep -q "bad.yaml:2" "$T/err" || fail "config check: no file:line"
ok "status, metrics, config show/check"

# ---- items, score, topk
$PY -c "
import numpy as np
rng = np.random.default_rng(3)
np.save('$T/v1.npy', rng.standard_normal(784).astype(np.float32))
np.save('$T/v2.npy', rng.standard_normal(784).astype(np.float32))
np.save('$T/bad.npy', np.ones(5, np.float32))
"
expect 0 C item put it1 @"$T/v1.npy"
expect 0 C item put it2 @"$T/v2.npy"
expect 0 C item get it1 -o "$T/got.npy"
$PY -c "
import numpy as np
assert (np.load('$T/got.npy').ravel() == np.load('$T/v1.npy')).all()
" || fail "item get returned another vector"
expect 0 C score it1 @"$T/v1.npy" --json
$PY -c "
import json
j = json.load(open('$T/out'))
assert abs(j['score'] - 1) < 1e-4 and j['match'] is True, j
" || fail "score of an item with its own vector is not 1"
expect 0 C score it1 - --json <"$T/v2.npy"
C topk @"$T/v2.npy" -k 2 --json >"$T/out" 2>"$T/err"
rc=$?
if [ $rc -eq 4 ] && grep -q "not available" "$T/err"; then
	echo "note: this daemon build has no TOPK: $(cat "$T/err")"
else
	[ $rc -eq 0 ] || fail "topk exited $rc: $(cat "$T/err")"
	$PY -c "
import json
j = json.load(open('$T/out'))
assert [h['id'] for h in j['hits']][0] == 'it2', j
" || fail "topk: it2 is not the best hit for its own vector"
fi
expect 4 C score it1 @"$T/bad.npy"
expect 4 C score it1 nope
expect 0 C item delete it2
expect 4 C item get it2
expect 1 C score it1 @"$T/missing.npy"
ok "item put/get/delete, score (ids, @file, stdin), topk"

# ---- publish and evaluate on make_pairs.py files
$PY "$SHARED/data/make_pairs.py" --split t10k --n-pairs 2000 --out-dir "$T/data" >/dev/null ||
	fail "make_pairs.py"
VEC=$T/data/fmnist_t10k.vec
PAIRS=$T/data/fmnist_t10k_n2000_p50_s1.pairs
expect 0 C evaluate "$VEC" "$PAIRS" --json
cp "$T/out" "$T/eval0.json"
# without --client-id the id names the two files and the seq is the record
# index: publishing them again stores nothing twice
expect 0 C publish "$VEC" "$PAIRS" --acked
grep -q "2000 committed, 0 duplicate, 0 rejected" "$T/out" || fail "publish --acked: $(cat "$T/out")"
expect 0 C publish "$VEC" "$PAIRS" --acked
grep -q "0 committed, 2000 duplicate" "$T/out" || fail "re-publish stored pairs twice: $(cat "$T/out")"
expect 0 C flush -t 120
expect 0 C status --json
$PY -c "
import json
j = json.load(open('$T/out'))
assert j['pairs_seen'] >= 2000 and j['backlog'] == 0, j
" || fail "after flush: not everything trained"
ok "publish --acked, idempotent re-run, flush"

expect 0 C evaluate "$VEC" "$PAIRS" --json --roc "$T/roc.svg"
$PY -c "
import json
a, b = json.load(open('$T/eval0.json')), json.load(open('$T/out'))
for j in (a, b):
    assert j['n_pos'] == 1000 and j['n_neg'] == 1000, j
    assert 0.5 < j['auc'] <= 1 and 0 <= j['eer'] < 0.5, j
    assert 0 <= j['accuracy'] <= 1 and set(j['tar_at_far']) == {'0.01', '0.001'}, j
assert b['model_version'] >= a['model_version'], (a, b)
print('AUC before %.4f after %.4f' % (a['auc'], b['auc']))
" || fail "evaluate --json"
grep -q "<svg" "$T/roc.svg" || fail "evaluate --roc wrote no SVG"
expect 0 C evaluate "$VEC" "$PAIRS"
grep -q "^AUC" "$T/out" && grep -q "^TAR@FAR=1e-3" "$T/out" || fail "evaluate text output"
# evaluate's AUC against an independent computation from the scores
$PY "$SHARED/data/make_pairs.py" --split t10k --n-pairs 50 --pos-frac 1.0 --seed 2 --no-vectors \
	--pairs-out "$T/data/pos_only.pairs" >/dev/null || fail "make_pairs.py (positives only)"
expect 1 C evaluate "$VEC" "$T/data/pos_only.pairs"
grep -q "need both" "$T/err" || fail "one class: no clear error ($(cat "$T/err"))"
ok "evaluate (json, text, --roc), one class is an error"

expect 0 C publish "$VEC" "$PAIRS" --limit 300 --batch 100 --client-id test-b -q
grep -q "sent 300 pairs" "$T/out" || fail "publish fire-and-forget: $(cat "$T/out")"
expect 0 C publish "$VEC" "$PAIRS" --acked --items-first --limit 200 --batch 50 --client-id test-c --rate 5000
grep -q "200 committed" "$T/out" || fail "publish --items-first: $(cat "$T/out")"
expect 0 C flush -t 120
ok "publish fire-and-forget, --items-first, --rate"

if [ -f "$SRC/tools/scripts/make_pairs.py" ]; then
	mkdir -p "$T/data2"
	$PY "$SRC/tools/scripts/make_pairs.py" --split t10k --n-pairs 500 --seed 5 --out-dir "$T/data2" >/dev/null ||
		fail "tools/scripts/make_pairs.py"
	P2=$(ls "$T"/data2/*.pairs)
	expect 0 C publish "$T/data2/fmnist_t10k.vec" "$P2" --acked
	grep -q "500 committed" "$T/out" || fail "publish of tools/scripts/make_pairs.py files: $(cat "$T/out")"
	expect 0 C evaluate "$T/data2/fmnist_t10k.vec" "$P2" --json
	ok "publish and evaluate read tools/scripts/make_pairs.py files"
fi

# ---- admin verbs
expect 0 C checkpoint
expect 0 C versions --json
V=$($PY -c "
import json
j = json.load(open('$T/out'))
vs = j['versions'] if isinstance(j, dict) else j
print(max(v['version'] for v in vs))
") || fail "versions --json"
expect 0 C pause
expect 0 C score it1 @"$T/v1.npy"
expect 0 C resume
expect 0 C rollback "$V"
expect 4 C rollback 999999
expect 0 C reload
expect 0 C backup "$T/backup"
[ -e "$T/backup" ] || fail "backup wrote nothing"
ok "checkpoint, versions, pause/resume, rollback, reload, backup"

# ---- export-model / import-model
expect 0 C export-model "$T/w.npy"
$PY -c "
import json, numpy as np
w = np.load('$T/w.npy')
side = json.load(open('$T/w.json'))
assert w.dtype == np.float32 and w.shape == (784, 64), w.shape
assert side['d_in'] == 784 and side['d_out'] == 64, side
for k in ('loss', 'mode', 'threshold', 'version'):
    assert k in side, k
np.save('$T/w2.npy', (w * 2).astype(np.float32))
np.save('$T/wbad.npy', np.ones((10, 64), np.float32))
" || fail "export-model output"
expect 4 C import-model "$T/wbad.npy"
expect 0 C import-model "$T/w2.npy"
expect 0 C export-model "$T/w3.npy"
$PY -c "
import json, numpy as np
assert np.allclose(np.load('$T/w3.npy'), np.load('$T/w2.npy'))
assert json.load(open('$T/w3.json'))['version'] > json.load(open('$T/w.json'))['version']
" || fail "import-model did not become the live model"
ok "export-model / import-model"

# ---- per-pair idempotency: re-publish with another --batch / --limit
$PY "$SHARED/data/make_pairs.py" --split t10k --n-pairs 2000 --seed 2 --out-dir "$T/data2" \
	>/dev/null || fail "make_pairs.py --seed 2"
PAIRS2=$T/data2/fmnist_t10k_n2000_p50_s2.pairs
expect 0 C publish "$VEC" "$PAIRS2" --acked --batch 100 --limit 1000
grep -q "1000 committed, 0 duplicate, 0 rejected" "$T/out" || fail "publish --batch 100: $(cat "$T/out")"
expect 0 C publish "$VEC" "$PAIRS2" --acked --batch 37 --limit 1000
grep -q "0 committed, 1000 duplicate, 0 rejected" "$T/out" || fail "--batch 37 re-run: $(cat "$T/out")"
expect 0 C publish "$VEC" "$PAIRS2" --acked --batch 64 --limit 1300
grep -q "300 committed, 1000 duplicate, 0 rejected" "$T/out" || fail "partial overlap: $(cat "$T/out")"
# ---- an explicit --client-id is a publisher: it goes on where the daemon has it
expect 0 C publish "$VEC" "$PAIRS2" --acked --client-id cam-r --limit 100
grep -q "100 committed, 0 duplicate" "$T/out" || fail "--client-id first run: $(cat "$T/out")"
expect 0 C publish "$VEC" "$PAIRS2" --acked --client-id cam-r --limit 100
grep -q "100 committed, 0 duplicate" "$T/out" || fail "--client-id resumed run: $(cat "$T/out")"
grep -q "goes on from seq 100" "$T/err" || fail "--client-id did not resume: $(cat "$T/err")"
ok "publish: per-pair keys, any --batch on a re-run, partial overlap, --client-id resumes"

# ---- STATUS fields of the daemon itself, and their Prometheus form
expect 0 C status --json
$PY -c "
import json
j = json.load(open('$T/out'))
for k in ('rss_bytes', 'store_bytes', 'uptime_seconds', 'pairs_per_second', 'threshold_policy'):
    assert k in j, k
assert j['rss_bytes'] > 1e6 and j['store_bytes'] > 0 and j['pairs_per_second'] >= 0, j
assert set(j['tar_at_far']) == {'1e-2', '1e-3'}, j['tar_at_far']
h = j['query_latency_seconds']
counts = list(h['buckets'].values())
assert list(h['buckets'])[-1] == '+Inf' and counts == sorted(counts), h
assert h['count'] == counts[-1] > 0 and h['sum'] > 0, h
" || fail "status --json: daemon fields: $(cat "$T/out")"
expect 0 C status
grep -q "^TAR@FAR=1e-2" "$T/out" || fail "status: no TAR@FAR: $(cat "$T/out")"
expect 0 C metrics
$PY - "$T/out" <<'EOF' || fail "metrics: histogram / labelled gauges"
import re, sys
lines = open(sys.argv[1]).read().splitlines()
assert '# TYPE simverify_query_latency_seconds histogram' in lines
# one histogram per query verb; score was queried above
b = [ln for ln in lines if ln.startswith('simverify_query_latency_seconds_bucket{verb="score",le="')]
v = [float(ln.rsplit(' ', 1)[1]) for ln in b]
assert len(b) >= 2 and b[-1].startswith(
    'simverify_query_latency_seconds_bucket{verb="score",le="+Inf"}'), b
assert v == sorted(v) and v[-1] > 0, v
cnt = [ln for ln in lines if ln.startswith('simverify_query_latency_seconds_count{verb="score"} ')]
assert len(cnt) == 1 and float(cnt[0].split()[1]) == v[-1], cnt
assert any(ln.startswith('simverify_query_latency_seconds_sum{verb="score"} ') for ln in lines)
for name in ('simverify_prequential_tar{far="1e-2"}', 'simverify_prequential_tar{far="1e-3"}',
             'simverify_resident_memory_bytes', 'simverify_store_bytes',
             'simverify_ingest_pairs_per_second', 'simverify_uptime_seconds'):
    assert any(ln.startswith(name + ' ') for ln in lines), name
for ln in lines:
    assert ln.startswith('#') or re.match(r'^simverify_\w+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? \S+$', ln), ln
EOF
ok "status --json / status / metrics: RSS, store size, pairs/s, TAR@FAR, query latency histogram"

# ---- export-model / import-model go over the wire: no local store needed
expect 0 "$CTL" --admin "ipc://$S/admin.sock" export-model "$T/wire.npy"
expect 0 "$CTL" --admin "ipc://$S/admin.sock" import-model "$T/wire.npy"
grep -q "model stored as v" "$T/out" || fail "import-model over the wire: $(cat "$T/out")"
$PY -c "
import json, numpy as np
assert np.load('$T/wire.npy').shape == (784, 64)
assert json.load(open('$T/wire.json'))['d_in'] == 784
" || fail "export-model over the wire"
ok "export-model / import-model with only --admin (MODEL_GET / MODEL_PUT)"

echo "all simverifyctl daemon checks passed"
exit 0
