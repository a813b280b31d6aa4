#!/usr/bin/python3
"""test_queries.py SIMVERIFYD WDUMP [TEST...] - match queries of the real
daemon on ipc:// in a temp dir (issue 5):

  - SCORE / SCORE_BATCH agree with a float64 computation from W read out of
    the store (sv_test_wdump) for the version the replies name;
  - TOPK agrees with brute force (SCORE_BATCH of the query against every
    item, another code path), after deletes and upserts, and while a cache
    rebuild is held in flight (SV_TOPK_TEST_DELAY_MS): answers come from the
    old cache, labeled with its version, and see item changes at once;
  - the threshold policy follows the prequential window (a float64 reference
    of the histogram ROC of docs/sv/metrics.h), and ROLLBACK restores the
    threshold of the version rolled back to, also across a restart.
Exit 0 when every test passes."""
import os
import struct
import subprocess
import sys
import time

import numpy as np
import zmq

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from svclient import Daemon, header, item_put, pairs, parse_reply, status_until, topk, wait_for, run_tests  # noqa

D_IN, D_OUT = 32, 8
BASE = ['model.d_in=%d' % D_IN, 'model.d_out=%d' % D_OUT, 'train.batch_pairs=16',
        'train.max_wait_ms=60s', 'store.map_size=16MiB', 'checkpoint.every_steps=0',
        'checkpoint.every_s=0']
BIN, WDUMP = sys.argv[1], sys.argv[2]
BINS = 2048
rng = np.random.default_rng(5)


def vecs(n):
    return rng.standard_normal((n, D_IN)).astype(np.float32)


def put_items(d, items):
    """items: dict id -> vector, stored through the acked socket."""
    s = d.sock(zmq.DEALER, 'ingest-acked.sock')
    for i, (k, v) in enumerate(items.items()):
        s.send_multipart(item_put(k, v, req_id=i + 1))
    got = [parse_reply(s.recv_multipart()) for _ in items]
    s.close()
    assert all(r['status'] == 'OK' for r in got), got


def acked(d, frames):
    s = d.sock(zmq.DEALER, 'ingest-acked.sock')
    s.send_multipart(frames)
    r = parse_reply(s.recv_multipart())
    s.close()
    return r


def score_batch(d, rows, req=5):
    r = d.request('query.sock', pairs('SCORE_BATCH', [(0, a, b) for a, b in rows], D_IN,
                                      req_id=req))
    assert r['status'] == 'OK' and r['req'] == req, r
    return r['rows']


def read_w(d, version):
    out = subprocess.run([WDUMP, os.path.join(d.dir, 'store'), str(version)],
                         capture_output=True, timeout=30)
    assert out.returncode == 0, out.stderr
    v, step, din, dout = struct.unpack_from('<QQII', out.stdout)
    W = np.frombuffer(out.stdout, '<f4', offset=24).reshape(din, dout)
    assert v == version and (din, dout) == (D_IN, D_OUT), (v, din, dout)
    return W.astype(np.float64)


def embed(X, W):
    Z = np.asarray(X, np.float64) @ W
    return Z / np.maximum(np.linalg.norm(Z, axis=1, keepdims=True), 1e-12)


def train(d, rows):
    """Log labeled pairs (acked) and train them all (FLUSH for the rest)."""
    st0 = d.status()
    for i in range(0, len(rows), 64):
        r = acked(d, pairs('PAIR_BATCH', rows[i:i + 64], D_IN, req_id=900 + i))
        assert r['status'] == 'OK', r
    r = d.admin('FLUSH')
    assert r['status'] == 'OK', r
    return status_until(d, lambda j: j['pairs_seen'] >= st0['pairs_seen'] + len(rows) and
                        j['backlog'] == 0, 'pairs trained')


def checkpoint(d):
    r = d.admin('CHECKPOINT')
    assert r['status'] == 'OK', r
    return d.status()['model_version']


# ---- SCORE ---------------------------------------------------------------

def test_score_float64():
    d = Daemon(BIN, opts=BASE)
    try:
        d.start()
        X = vecs(20)
        items = {b'it%d' % i: X[i] for i in range(20)}
        put_items(d, items)
        train(d, [(i % 2, b'it%d' % (i % 20), b'it%d' % ((i * 7 + 3) % 20)) for i in range(40)])
        v = checkpoint(d)
        Y = vecs(30)
        rows, ref = [], []
        for i in range(30):  # id-id, vec-vec, id-vec, vec-id
            a, b = i % 20, (i * 3 + 1) % 20
            kind = i % 4
            sa = b'it%d' % a if kind in (0, 2) else Y[i]
            sb = b'it%d' % b if kind in (0, 3) else Y[(i + 5) % 30]
            rows.append((sa, sb))
            ref.append((X[a] if kind in (0, 2) else Y[i], X[b] if kind in (0, 3) else Y[(i + 5) % 30]))
        got = score_batch(d, rows)
        one = d.request('query.sock', pairs('SCORE', [(0, b'it1', b'it2')], D_IN, req_id=9))
        assert one['status'] == 'OK' and len(one['rows']) == 1, one
        miss = d.request('query.sock', pairs('SCORE_BATCH', [(0, b'it1', b'nope'), (0, b'it1', b'it3')],
                                             D_IN, req_id=10))
        assert miss['status'] == 'PARTIAL' and miss['rows'][0]['status'] == 'NOT_FOUND' and \
            miss['rows'][1]['status'] == 'OK', miss
        assert d.stop() == 0
        W = read_w(d, v)
        A = embed([a for a, _ in ref], W)
        B = embed([b for _, b in ref], W)
        want = np.sum(A * B, axis=1)
        for g, w in zip(got + one['rows'], list(want) + [float(np.sum(embed(X[1:3], W)[0] * embed(X[1:3], W)[1]))]):
            assert g['version'] == v and g['status'] == 'OK', (g, v)
            assert abs(g['score'] - w) < 2e-5, (g, w)
            assert g['match'] == (g['score'] >= g['threshold']), g
            assert abs(g['margin'] - (g['score'] - g['threshold'])) < 1e-6, g
        assert abs(miss['rows'][1]['score'] - float(np.sum(embed(X[[1]], W) * embed(X[[3]], W)))) < 2e-5
    finally:
        d.close()


# ---- TOPK ----------------------------------------------------------------

def brute(d, q, ids, k, self_id=None):
    """The k best (id, score) by SCORE_BATCH of q against every id."""
    cand = [i for i in ids if i != self_id]
    rows = score_batch(d, [(q, i) for i in cand], req=77)
    sc = sorted(((r['score'], i, r['version']) for r, i in zip(rows, cand)), key=lambda t: -t[0])
    vers = {r['version'] for r in rows}
    assert len(vers) == 1, vers
    return [(i, s) for s, i, _ in sc[:k]], sc, vers.pop()


def same_topk(hits, ref, allsc, k):
    """hits equal the brute force up to float32 rounding: same scores in
    order, and every returned id's own brute-force score matches."""
    assert len(hits) == min(k, len(allsc)), (hits, ref)
    own = {i: s for s, i, _ in allsc}
    for (hid, hs), (_, rs) in zip(hits, ref):
        assert abs(hs - rs) < 2e-5, (hits, ref)
        assert abs(own[hid] - hs) < 2e-5, (hid, hs, own[hid])
    assert len({h[0] for h in hits}) == len(hits), hits


def wait_cache(d, version, steps=None, timeout=10.0):
    return status_until(d, lambda j: j['topk_cache']['rebuilds'] > 0 and
                        j['topk_cache']['version'] == version and
                        (steps is None or j['topk_cache']['steps'] == steps),
                        'topk cache of v%s' % version, timeout)


def tk(d, queries, k, req=3):
    r = d.request('query.sock', topk(queries, k, D_IN, req_id=req))
    assert r['status'] in ('OK', 'PARTIAL') and r['req'] == req, r
    return r


def test_topk_brute_force():
    d = Daemon(BIN, opts=BASE)
    try:
        d.start()
        X = vecs(300)
        ids = [b'n%03d' % i for i in range(300)]
        put_items(d, dict(zip(ids, X)))
        train(d, [(i % 2, ids[i], ids[(i * 11 + 1) % 300]) for i in range(48)])
        v = checkpoint(d)
        st = wait_cache(d, v, d.status()['steps'])
        assert st['topk_cache']['rebuilds'] >= 1, st
        Q = vecs(3)
        k = 10
        # batched: three vectors and two ids, one message
        r = tk(d, [Q[0], ids[5], Q[1], ids[17], Q[2]], k)
        for qi, q in enumerate([Q[0], ids[5], Q[1], ids[17], Q[2]]):
            got = r['queries'][qi]
            assert got['status'] == 'OK' and got['version'] == v, got
            self_id = q if isinstance(q, bytes) else None
            ref, allsc, bv = brute(d, q, ids, k, self_id)
            assert bv == v
            same_topk(got['hits'], ref, allsc, k)
            assert self_id not in [h[0] for h in got['hits']]
        # single queries give the batched answers
        for qi, q in enumerate([Q[0], ids[5]]):
            # (same ids; scores may differ in the last bits: BLAS takes
            # another kernel for one query row than for five)
            one = tk(d, [q], k, req=40 + qi)['queries'][0]['hits']
            many = r['queries'][qi]['hits']
            assert [h[0] for h in one] == [h[0] for h in many], (qi, one, many)
            assert max(abs(a[1] - b[1]) for a, b in zip(one, many)) < 1e-6, (one, many)
        # 1000 queries in one request: more work than the query front
        # takes on itself (query.c, FRONT_TOPK_WORK), so a worker answers
        # it; the same hits as the batch above
        big = tk(d, [Q[0], ids[5]] * 500, k, req=45)
        assert len(big['queries']) == 1000, len(big['queries'])
        for qi in (0, 1, 998, 999):
            assert ([h[0] for h in big['queries'][qi]['hits']] ==
                    [h[0] for h in r['queries'][qi % 2]['hits']]), qi
        # STATUS counts the products over the cache by their queries (64: that many or
        # more): the five-query request was one, the single ones two, the big one one
        prods = dict(d.status()['topk_cache']['products'])
        assert prods.get(5, 0) >= 1 and prods.get(1, 0) >= 2 and prods.get(64, 0) >= 1, prods
        top = [h[0] for h in r['queries'][0]['hits']]
        for j, gone in enumerate(top[:3]):
            a = acked(d, del_msg(gone, 50 + j))
            assert a['status'] == 'OK', a
            got = tk(d, [Q[0]], k, req=60 + j)['queries'][0]
            assert gone not in [h[0] for h in got['hits']], (gone, got)
            ids.remove(gone)
            ref, allsc, _ = brute(d, Q[0], ids, k)
            same_topk(got['hits'], ref, allsc, k)
        # an upsert (new vector for an existing id) too: Q[1] itself scores 1
        a = acked(d, item_put(ids[100], Q[1], req_id=70))
        assert a['status'] == 'OK', a
        got = tk(d, [Q[1]], k, req=71)['queries'][0]
        assert got['hits'][0][0] == ids[100] and abs(got['hits'][0][1] - 1.0) < 1e-5, got
        ref, allsc, _ = brute(d, Q[1], ids, k)
        same_topk(got['hits'], ref, allsc, k)
        # unknown id: NOT_FOUND for that query, PARTIAL overall; k > N: all items
        r = tk(d, [b'nope', Q[2]], 1000, req=72)
        assert r['status'] == 'PARTIAL' and r['queries'][0]['status'] == 'NOT_FOUND', r
        assert len(r['queries'][1]['hits']) == len(ids), len(r['queries'][1]['hits'])
        # inline pair vectors are not items anyone looks for
        assert all(not h[0].startswith(b'~v') for h in r['queries'][1]['hits'])
        assert d.stop() == 0
    finally:
        d.close()


def del_msg(item_id, req):
    return [header('ITEM_DEL', req, 1, 0), item_id]


DELAY = 3  # s: every rebuild of test_topk_during_rebuild is held this long


def test_topk_during_rebuild():
    """A rebuild held in flight for DELAY s: TOPK keeps answering from the old
    cache (old version label, old W's scores), sees deletes and upserts made
    meanwhile, and the new cache, once published, has them too."""
    os.environ['SV_TOPK_TEST_DELAY_MS'] = '%d' % (DELAY * 1000)
    d = Daemon(BIN, opts=BASE)
    try:
        d.start()
        os.environ.pop('SV_TOPK_TEST_DELAY_MS')
        X = vecs(200)
        ids = [b'r%03d' % i for i in range(200)]
        put_items(d, dict(zip(ids, X)))
        va = checkpoint(d)
        wait_cache(d, va)
        q, k = vecs(1)[0], 8
        ref_a, all_a, bv = brute(d, q, ids, k)
        assert bv == va
        got = tk(d, [q], k)['queries'][0]
        assert got['version'] == va
        same_topk(got['hits'], ref_a, all_a, k)
        # train (W changes) and checkpoint: new snapshots, a rebuild starts
        # (held DELAY s) at the first of them
        t0 = time.monotonic()
        train(d, [(i % 2, ids[i], ids[(i * 7 + 2) % 200]) for i in range(32)])
        vb = checkpoint(d)
        gone = ref_a[0][0]
        assert acked(d, del_msg(gone, 80))['status'] == 'OK'
        assert acked(d, item_put(b'fresh', q, req_id=81))['status'] == 'OK'
        got = tk(d, [q], k, req=82)['queries'][0]
        held = time.monotonic() - t0 < DELAY - 0.5
        if held:  # still the old cache: old W, changes already applied
            assert got['version'] == va, got
            hits = dict(got['hits'])
            assert gone not in hits and abs(hits[b'fresh'] - 1.0) < 1e-5, got
            own_a = {i: s for s, i, _ in all_a}
            for hid, hs in got['hits']:
                if hid != b'fresh':
                    assert abs(own_a[hid] - hs) < 2e-5, (hid, hs, own_a[hid])
        st = d.status()
        if held:
            assert st['topk_cache']['version'] == va, st
        wait_cache(d, vb, timeout=8 * DELAY)
        ids.remove(gone)
        ids.append(b'fresh')
        ref_b, all_b, bv = brute(d, q, ids, k)
        assert bv == vb
        got = tk(d, [q], k, req=83)['queries'][0]
        assert got['version'] == vb, got
        same_topk(got['hits'], ref_b, all_b, k)
        assert gone not in dict(got['hits']) and got['hits'][0][0] == b'fresh', got
        assert held, 'the first query came after the held rebuild (machine too slow?)'
        rc = d.stop()
        assert rc == 0, (rc, d.logtext()[-3000:])
    finally:
        os.environ.pop('SV_TOPK_TEST_DELAY_MS', None)
        d.close()


# ---- threshold policy ----------------------------------------------------

def hist_roc(scores, labels):
    s = np.clip(np.asarray(scores, np.float64), -1, 1)
    b = np.minimum(np.floor((s + 1) / 2 * BINS).astype(int), BINS - 1)
    lab = np.asarray(labels)
    pos = np.bincount(b[lab == 1], minlength=BINS)
    neg = np.bincount(b[lab == 0], minlength=BINS)
    P, N = pos.sum(), neg.sum()
    pts, tp, fp = [], 0, 0
    for i in range(BINS - 1, -1, -1):
        if pos[i] + neg[i]:
            tp += pos[i]
            fp += neg[i]
            pts.append((np.float32(-1 + 2 * i / BINS), tp / P, fp / N, tp, fp))
    origin = (np.nextafter(pts[0][0], np.float32(np.inf)), 0.0, 0.0, 0, 0)
    return [origin] + pts, P, N


def ref_threshold(scores, labels, policy, far=None):
    """Candidate thresholds the policy may pick (sv/metrics.h's rules)."""
    seq, P, N = hist_roc(scores, labels)
    if policy == 'eer':
        for k in range(1, len(seq)):
            fpr, fnr = seq[k][2], 1 - seq[k][1]
            if fpr >= fnr:
                p = seq[k - 1]
                num = (1 - p[1]) - p[2]
                den = (seq[k][2] - p[2]) - ((1 - seq[k][1]) - (1 - p[1]))
                t = num / den if den else 0.0
                if abs(t - 0.5) < 1e-9:
                    return {p[0], seq[k][0]}
                return {p[0] if t < 0.5 else seq[k][0]}
    if policy == 'target_far':
        ok = [p for p in seq if p[2] <= far]
        best = max(p[1] for p in ok)
        return {min(p[0] for p in ok if p[1] == best)}
    if policy == 'max_accuracy':
        acc = [(p[3] + N - p[4]) / (P + N) for p in seq]
        m = max(acc)
        return {max(p[0] for p, a in zip(seq, acc) if a == m)}
    raise ValueError(policy)


def labeled(d, ids, n, cut, req):
    """n pairs of stored items, labeled 1 when their current score plus noise
    passes cut; returns the rows and their (pre-step) scores."""
    cand = [(ids[int(a)], ids[int(b)]) for a, b in rng.integers(0, len(ids), (n, 2)) if a != b]
    cand = cand[:n]
    sc = np.array([r['score'] for r in score_batch(d, cand, req=req)])
    lab = (sc + rng.normal(0, 0.15, len(sc)) > cut).astype(int)
    return [(int(l), a, b) for l, (a, b) in zip(lab, cand)], sc, lab


def current(d):
    r = d.request('query.sock', pairs('SCORE', [(0, b't0', b't1')], D_IN, req_id=3))['rows'][0]
    return r['threshold'], r['policy'], r['version']


def test_threshold_follows_window():
    """With lr tiny (W fixed), the window holds exactly the scores the test
    computes first; after each phase the threshold is the policy's threshold
    on the last window_pairs of them, before min_window_pairs the initial."""
    policies = [('eer', None, 2), ('target_far', 0.1, 1), ('max_accuracy', None, 3),
                ('fixed', None, 0)]
    for name, far, code in policies:
        opts = BASE + ['train.lr=1e-12', 'query.window_pairs=64', 'query.min_window_pairs=40',
                       'query.threshold=0.75', 'query.threshold_policy=' + name]
        if far:
            opts.append('query.target_far=%g' % far)
        d = Daemon(BIN, opts=opts)
        try:
            d.start()
            ids = [b't%d' % i for i in range(40)]
            put_items(d, dict(zip(ids, vecs(40))))
            rows, sc, lab = labeled(d, ids, 32, 0.1, 11)
            train(d, rows)  # 32 < min_window_pairs: the initial threshold
            th, pol, _ = current(d)
            assert pol == code and abs(th - 0.75) < 1e-7, (name, th, pol)
            win_s, win_l = list(sc), list(lab)
            for phase, cut in enumerate((0.2, -0.4)):
                rows, sc, lab = labeled(d, ids, 64, cut, 20 + phase)
                train(d, rows)
                win_s = (win_s + list(sc))[-64:]
                win_l = (win_l + list(lab))[-64:]
                th, pol, _ = current(d)
                st = d.status()
                assert abs(st['threshold'] - th) < 1e-6, (st, th)
                seq, _, _ = hist_roc(win_s, win_l)
                for e in (2, 3):  # STATUS shows TAR@FAR 1e-2, 1e-3 on the window
                    tar = max(p[1] for p in seq if p[2] <= 10.0 ** -e)
                    assert abs(st['tar_at_far']['1e-%d' % e] - tar) < 1e-5, (st, e, tar)
                if name == 'fixed':
                    assert abs(th - 0.75) < 1e-7, th
                    continue
                want = ref_threshold(win_s, win_l, name, far)
                assert any(abs(th - w) < 1e-6 for w in want), (name, phase, th, want)
            assert d.stop() == 0
        finally:
            d.close()


def test_policy_reload():
    """SIGHUP with another query.threshold_policy: the next SCORE already
    carries the new policy's threshold on the same window."""
    import signal
    import tempfile
    cfgdir = tempfile.TemporaryDirectory()
    cfg = os.path.join(cfgdir.name, 'simverifyd.yaml')
    body = ('query:\n  threshold_policy: fixed\n  threshold: 0.75\n  window_pairs: 64\n'
            '  min_window_pairs: 32\n')
    with open(cfg, 'w') as f:
        f.write(body)
    d = Daemon(BIN, config=cfg, opts=BASE + ['train.lr=1e-12'])
    try:
        d.start()
        ids = [b't%d' % i for i in range(40)]
        put_items(d, dict(zip(ids, vecs(40))))
        rows, sc, lab = labeled(d, ids, 64, 0.1, 11)
        train(d, rows)
        th, pol, _ = current(d)
        assert pol == 0 and abs(th - 0.75) < 1e-7, (th, pol)
        for name, code in (('eer', 2), ('max_accuracy', 3), ('fixed', 0)):
            with open(cfg, 'w') as f:
                f.write(body.replace('fixed', name))
            after = len(d.notes)
            d.signal(signal.SIGHUP)
            d.wait_note('READY=1', 5, after)
            wait_for(lambda: current(d)[1] == code, what='policy %s in force' % name)
            th, _, _ = current(d)
            want = {np.float32(0.75)} if name == 'fixed' else ref_threshold(sc, lab, name)
            assert any(abs(th - w) < 1e-6 for w in want), (name, th, want)
        assert d.stop() == 0
    finally:
        d.close()
        cfgdir.cleanup()


def test_rollback_restores_threshold():
    opts = BASE + ['query.window_pairs=64', 'query.min_window_pairs=32',
                   'query.threshold_policy=eer', 'train.lr=1e-12']
    d = Daemon(BIN, opts=opts)
    try:
        d.start()
        ids = [b't%d' % i for i in range(40)]
        put_items(d, dict(zip(ids, vecs(40))))
        rows, _, _ = labeled(d, ids, 64, 0.3, 11)
        train(d, rows)
        va = checkpoint(d)
        tha, _, v = current(d)
        assert v == va
        st_a = d.status()
        rows, _, _ = labeled(d, ids, 64, -0.5, 12)
        train(d, rows)
        thb, _, _ = current(d)
        assert abs(thb - tha) > 0.05, (tha, thb)
        r = d.admin('ROLLBACK', va)
        assert r['status'] == 'OK', r
        th, _, v = current(d)
        st = d.status()
        assert v > va and th == tha and st['threshold'] == st_a['threshold'], (th, tha, st)
        assert st['auc'] == st_a['auc'] and st['eer'] == st_a['eer'], (st, st_a)
        assert d.stop() == 0
        d.start()  # the rollback's own checkpoint carries the window
        th2, _, v2 = current(d)
        assert th2 == tha and v2 >= v, (th2, tha, v2, v)
        assert d.stop() == 0
    finally:
        d.close()


TESTS = [test_score_float64, test_topk_brute_force, test_topk_during_rebuild,
         test_threshold_follows_window, test_policy_reload, test_rollback_restores_threshold]

if __name__ == '__main__':
    want = [a for a in sys.argv[3:] if a.startswith('test_')]
    sys.exit(run_tests(TESTS, want))
