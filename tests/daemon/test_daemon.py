#!/usr/bin/python3
"""test_daemon.py SIMVERIFYD [C_CLIENT] [TEST...] - the real daemon on ipc://
in a temp dir: ingest (PUSH and acked DEALER, pyzmq and C clients), queries,
admin, malformed messages, SIGTERM, restart, replay after a kill, sd_notify,
SIGHUP.  Small dims (d_in 16, d_out 4) keep it fast.  Exit 0 when every test
passes."""
import os
import signal
import stat
import subprocess
import sys
import time

import numpy as np
import zmq

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from svclient import Daemon, item_put, item_get, pairs, header, parse_reply, status_until, topk, wait_for, run_tests  # noqa

D_IN, D_OUT = 16, 4
BASE = ['model.d_in=%d' % D_IN, 'model.d_out=%d' % D_OUT, 'train.batch_pairs=8',
        'train.max_wait_ms=50ms', 'store.map_size=8MiB', 'query.min_window_pairs=10']
BIN = sys.argv[1]
CCLIENT = sys.argv[2] if len(sys.argv) > 2 and not sys.argv[2].startswith('test_') else None
rng = np.random.default_rng(7)


def vec():
    return rng.standard_normal(D_IN).astype(np.float32)


def send_items(d, n, prefix=b'it'):
    s = d.sock(zmq.DEALER, 'ingest-acked.sock')
    for i in range(n):
        s.send_multipart(item_put(prefix + b'%d' % i, vec(), req_id=100 + i))
    got = [parse_reply(s.recv_multipart()) for _ in range(n)]
    s.close()
    assert all(r['status'] == 'OK' for r in got), got
    assert sorted(r['req'] for r in got) == list(range(100, 100 + n))


def score(d, a, b, req=1):
    r = d.request('query.sock', pairs('SCORE', [(0, a, b)], D_IN, req_id=req))
    return r


def test_ingest_query_restart():
    d = Daemon(BIN, opts=BASE, watchdog_usec=1000000)
    try:
        d.start()
        assert stat.S_IMODE(os.stat(os.path.join(d.dir, 'admin.sock')).st_mode) == 0o600
        send_items(d, 10)
        # fire and forget: 20 inline pairs in one PAIR_BATCH
        push = d.sock(zmq.PUSH, 'ingest.sock')
        push.send_multipart(pairs('PAIR_BATCH', [(i % 2, vec(), vec()) for i in range(20)], D_IN))
        # acked with a client id: committed, then a repeat is a duplicate
        s = d.sock(zmq.DEALER, 'ingest-acked.sock')
        batch = [(1, b'it%d' % i, b'it%d' % (i + 1)) for i in range(5)]
        s.send_multipart(pairs('PAIR_BATCH', batch, D_IN, req_id=11, client=(b'c1', 1)))
        r = parse_reply(s.recv_multipart())
        assert r['status'] == 'OK' and r['ack']['committed'] == 5 and r['req'] == 11, r
        s.send_multipart(pairs('PAIR_BATCH', batch, D_IN, req_id=12, client=(b'c1', 1)))
        r = parse_reply(s.recv_multipart())
        assert r['status'] == 'DUPLICATE' and r['req'] == 12, r
        # an unknown item: the row is rejected, the rest committed
        s.send_multipart(pairs('PAIR_BATCH', [(1, b'it1', b'nope'), (0, b'it1', b'it2')], D_IN,
                               req_id=13))
        r = parse_reply(s.recv_multipart())
        assert r['status'] == 'PARTIAL' and r['ack']['committed'] == 1 and \
            r['ack']['rejected'] == 1 and r['rows'][0][2] == 2, r
        # malformed: bad magic (acked gets a precise error), wrong dim (push)
        s.send_multipart([b'XX' + header('PAIR')[2:], b'', b'', b''])
        r = parse_reply(s.recv_multipart())
        assert r['status'] == 'MALFORMED' and r['reason'] == 3 and 'magic' in r['msg'], r
        push.send_multipart(pairs('PAIR', [(1, np.ones(3, np.float32), np.ones(3, np.float32))], 3))
        s.close()
        # the daemon trains everything (partial batch after max_wait_ms)
        st = status_until(d, lambda j: j['pairs_seen'] >= 26 and j['backlog'] == 0, '26 pairs trained')
        c = st['counters']
        assert c['pairs']['logged'] == 26 and c['pairs']['duplicate'] == 5, c
        assert c['rejects'].get('bad_magic') == 1 and c['rejects'].get('wrong_dim') == 1, c
        assert c['rejects'].get('unknown_item') == 1, c
        log = d.logtext()
        assert 'SV-INGEST-BADDIM' in log and 'dropping message' in log, log
        assert 'SV-INGEST-BADMAGIC' in log and 'SV-INGEST-NOITEM' in log, log
        for k in ('model_version', 'steps', 'items', 'backlog', 'auc', 'eer', 'threshold'):
            assert k in st, (k, st)
        assert st['steps'] >= 4, st
        # queries: pipelined on one DEALER, matched by request id
        q = d.sock(zmq.DEALER, 'query.sock')
        for i in range(3):
            q.send_multipart(pairs('SCORE', [(0, b'it%d' % i, b'it%d' % (i + 3))], D_IN, req_id=50 + i))
        q.send_multipart(pairs('SCORE', [(0, b'it1', b'missing')], D_IN, req_id=60))
        q.send_multipart(pairs('SCORE_BATCH', [(0, vec(), vec()), (0, b'it0', b'it0')], D_IN, req_id=61))
        q.send_multipart(pairs('PAIR', [(1, b'it0', b'it1')], D_IN, req_id=62))  # wrong socket
        reps = {}
        for _ in range(6):
            r = parse_reply(q.recv_multipart())
            reps[r['req']] = r
        for i in range(3):
            row = reps[50 + i]['rows'][0]
            assert reps[50 + i]['status'] == 'OK' and -1.0001 <= row['score'] <= 1.0001, reps[50 + i]
            assert row['version'] == st['model_version'] or row['version'] >= 0
        assert reps[60]['status'] == 'NOT_FOUND', reps[60]
        assert reps[61]['status'] == 'OK' and abs(reps[61]['rows'][1]['score'] - 1.0) < 1e-5, reps[61]
        assert reps[62]['status'] == 'REFUSED', reps[62]
        before = {i: reps[50 + i]['rows'][0]['score'] for i in range(3)}
        r = d.request('query.sock', item_get(b'it3', 5))
        assert r['status'] == 'OK' and r['vec'].shape == (D_IN,), r
        q.close()
        # sd_notify: STATUS= and WATCHDOG=1 arrive while the trainer runs
        d.wait_note('WATCHDOG=1', 5)
        n = d.wait_note('pairs/s', 5)
        assert 'pairs/s' in n and 'model v' in n and 'backlog' in n, n
        # SIGTERM: STOPPING=1, exit 0, checkpoint at shutdown
        after = len(d.notes)
        assert d.stop() == 0
        d.wait_note('STOPPING=1', 2, after)
        assert 'SV-CKPT-SAVED' in d.logtext() and '(shutdown)' in d.logtext()
        last_seq = st['last_seq']
        # restart: model, items and the log survived; training resumes after them
        d.start()
        st2 = d.status()
        assert st2['steps'] == st['steps'] and st2['items'] == st['items'], (st, st2)
        assert st2['pairs_seen'] == st['pairs_seen'], (st, st2)
        assert st2['applied_seq'] >= last_seq and st2['model_version'] > st['model_version'], (st, st2)
        for i in range(3):
            r = score(d, b'it%d' % i, b'it%d' % (i + 3))
            assert r['rows'][0]['score'] == before[i], (r, before[i])
        push = d.sock(zmq.PUSH, 'ingest.sock')
        push.send_multipart(pairs('PAIR_BATCH', [(1, b'it1', b'it2')] * 8, D_IN))
        st3 = status_until(d, lambda j: j['steps'] > st2['steps'], 'training after restart')
        assert st3['last_seq'] > st2['last_seq'] >= last_seq, (st2, st3)
        push.close()
        assert d.stop() == 0
    finally:
        d.close()


def test_topk_brute_force():
    """TOPK by id and by vector: k best stored items by cosine under the
    current model, best first, self excluded, inline pair vectors never
    returned; scores agree with SCORE."""
    d = Daemon(BIN, opts=BASE)
    try:
        d.start()
        send_items(d, 12)
        push = d.sock(zmq.PUSH, 'ingest.sock')
        msg = pairs('PAIR_BATCH', [(1, vec(), vec()) for _ in range(8)], D_IN)
        push.send_multipart(msg)
        n_items = status_until(d, lambda j: j['pairs_seen'] >= 8, 'pairs trained')['items']
        assert n_items == 12 + 16, n_items
        push.send_multipart(msg)   # the same inline vectors: stored once
        st = status_until(d, lambda j: j['pairs_seen'] >= 16, 'pairs trained')
        assert st['items'] == n_items, st
        push.close()
        # TOPK answers from the projection cache, which may lag the latest
        # step (docs/DAEMON.md): compare with SCORE once it has caught up
        # with the last step (no training happens after this point)
        status_until(d, lambda j: j['topk_cache']['rebuilds'] > 0 and
                     j['topk_cache']['steps'] == j['steps'], 'topk cache at the last step')
        r = d.request('query.sock', topk([b'it0', vec(), b'missing'], 5, D_IN, req_id=77))
        assert r['status'] == 'PARTIAL' and r['req'] == 77, r
        q0, q1, q2 = r['queries']
        assert q0['status'] == 'OK' and len(q0['hits']) == 5 and q2['status'] == 'NOT_FOUND', r
        assert len(q1['hits']) == 5
        ids0 = [h[0] for h in q0['hits']]
        assert b'it0' not in ids0 and all(i.startswith(b'it') for i in ids0), ids0
        sc = [h[1] for h in q0['hits']]
        assert sc == sorted(sc, reverse=True), sc
        for hid, s in q0['hits']:
            s2 = score(d, b'it0', hid)['rows'][0]['score']
            assert abs(s - s2) < 1e-5, (hid, s, s2)
        # the best is really the best among all 11 others
        allsc = sorted((score(d, b'it0', b'it%d' % i)['rows'][0]['score'] for i in range(1, 12)),
                       reverse=True)
        assert abs(allsc[0] - sc[0]) < 1e-5 and abs(allsc[4] - sc[4]) < 1e-5, (allsc, sc)
        # a deleted item is gone from ITEM_GET and TOPK; deleting it again is NOT_FOUND
        gone = ids0[0]
        r = d.request('ingest-acked.sock', item_get(gone, 5, verb='ITEM_DEL'))
        assert r['status'] == 'OK', r
        r = d.request('ingest-acked.sock', item_get(gone, 6, verb='ITEM_DEL'))
        assert r['status'] == 'NOT_FOUND', r
        assert d.request('query.sock', item_get(gone, 7))['status'] == 'NOT_FOUND'
        r = d.request('query.sock', topk([b'it0'], 20, D_IN))
        hits = [h[0] for h in r['queries'][0]['hits']]
        assert gone not in hits and len(hits) == 10, hits
        assert d.stop() == 0
    finally:
        d.close()


def test_rollback_and_flush():
    """ROLLBACK v brings back v's W (same scores) as a new version; the
    pairs trained after v are not trained again after a restart; FLUSH
    trains a partial batch at once."""
    d = Daemon(BIN, opts=BASE + ['train.max_wait_ms=60s'])
    try:
        d.start()
        send_items(d, 6)
        push = d.sock(zmq.PUSH, 'ingest.sock')
        push.send_multipart(pairs('PAIR_BATCH', [(i % 2, b'it%d' % i, b'it%d' % (5 - i))
                                                 for i in range(6)], D_IN))
        status_until(d, lambda j: j['backlog'] == 6, '6 pairs waiting (partial batch)')
        r = d.admin('FLUSH')
        assert r['status'] == 'OK', r
        st = status_until(d, lambda j: j['pairs_seen'] == 6 and j['backlog'] == 0, 'flush trained')
        r = d.admin('CHECKPOINT')
        assert r['status'] == 'OK', r
        v = d.status()['model_version']
        s_v = score(d, b'it0', b'it1')['rows'][0]['score']
        push.send_multipart(pairs('PAIR_BATCH', [(1, b'it0', b'it1')] * 16, D_IN))
        status_until(d, lambda j: j['steps'] >= st['steps'] + 2, 'more steps')
        assert score(d, b'it0', b'it1')['rows'][0]['score'] != s_v
        r = d.admin('ROLLBACK', v)
        assert r['status'] == 'OK', r
        st2 = d.status()
        assert st2['model_version'] > v, st2
        assert score(d, b'it0', b'it1')['rows'][0]['score'] == s_v
        push.close()
        assert d.stop() == 0
        d.start()
        assert score(d, b'it0', b'it1')['rows'][0]['score'] == s_v
        assert d.stop() == 0
    finally:
        d.close()


def test_notify_receiver_not_reading():
    """A NOTIFY_SOCKET nobody reads (its queue full of WATCHDOG=1 and
    STATUS=) must not stall the daemon: it still serves and stops on SIGTERM."""
    d = Daemon(BIN, opts=BASE, watchdog_usec=40000, notify_rcvbuf=1)
    try:
        d.start()
        time.sleep(1.5)          # pings every 20 ms: the tiny queue is full
        assert d.status()['paused'] is False
        t0 = time.monotonic()
        assert d.stop(timeout=10) == 0
        assert time.monotonic() - t0 < 8
    finally:
        d.close()


def test_c_client():
    if CCLIENT is None:
        print('  (no C client given: skipped)')
        return
    d = Daemon(BIN, opts=BASE)
    try:
        d.start()
        out = subprocess.run([CCLIENT, d.dir, str(D_IN)], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stdout + out.stderr
        st = status_until(d, lambda j: j['pairs_seen'] >= 40, 'C client pairs trained')
        assert st['counters']['pairs']['logged'] >= 40, st
        assert d.stop() == 0
    finally:
        d.close()


def test_replay_after_kill():
    """kill -9 before any checkpoint: the restart replays the log to the same W, and a
    start with another model.seed is refused (the store keeps the initial W's keys)."""
    opts = BASE + ['checkpoint.every_steps=0', 'checkpoint.every_s=0']
    d = Daemon(BIN, opts=opts, abstract_notify=False)
    try:
        d.start()
        send_items(d, 6)
        push = d.sock(zmq.PUSH, 'ingest.sock')
        for k in range(5):
            push.send_multipart(pairs('PAIR_BATCH', [(i % 2, b'it%d' % (i % 6), b'it%d' % ((i + k) % 6))
                                                     for i in range(8)], D_IN))
        push.close()
        st = status_until(d, lambda j: j['pairs_seen'] >= 40, '40 pairs trained')
        s1 = score(d, b'it0', b'it1')['rows'][0]['score']
        d.proc.kill()   # no shutdown checkpoint: recovery must replay the log
        d.proc.wait()
        d.proc = None
        d.log.close()
        # from another initial W the replay would give another model: refused
        args = [BIN, '--state-dir', d.dir] + sum((['-o', o] for o in opts + ['model.seed=7']), [])
        if os.geteuid() == 0:
            args.append('--allow-root')
        r = subprocess.run(args, capture_output=True, text=True, timeout=30)
        assert r.returncode == 1 and 'SV-RECOVER-INIT' in r.stderr and \
            'model.seed 0' in r.stderr and 'model.seed 7' in r.stderr, r.stderr
        d.start()
        st2 = d.status()
        s2 = score(d, b'it0', b'it1')['rows'][0]['score']
        assert st2['steps'] == st['steps'], (st, st2)
        assert s1 == s2, (s1, s2)
        assert 'SV-RECOVER-REPLAY replayed' in d.logtext()
        assert d.stop() == 0
    finally:
        d.close()


def test_sighup_and_admin():
    import tempfile
    cfgdir = tempfile.TemporaryDirectory()
    cfg = os.path.join(cfgdir.name, 'simverifyd.yaml')
    body = 'model:\n  d_in: %d\n  d_out: %d\ntrain:\n  lr: 0.001\n  batch_pairs: 8\n' % (D_IN, D_OUT)
    with open(cfg, 'w') as f:
        f.write(body)
    d = Daemon(BIN, config=cfg, opts=['store.map_size=8MiB'])
    try:
        d.start()
        r = d.admin('CONFIG')
        assert r['status'] == 'OK' and 'lr: 0.001' in str(r.get('json')), r
        with open(cfg, 'w') as f:
            f.write(body.replace('lr: 0.001', 'lr: 0.01').replace('d_out: %d' % D_OUT, 'd_out: 8'))
        after = len(d.notes)
        d.signal(signal.SIGHUP)
        n = d.wait_note('RELOADING=1', 5, after)
        assert 'MONOTONIC_USEC=' in n, n
        d.wait_note('READY=1', 5, after)
        wait_for(lambda: 'SV-RELOAD-TRAIN' in d.logtext(), what='live learning rate')
        log = d.logtext()
        assert "key 'train.lr': 0.001 -> 0.01" in log, log
        assert "SV-RELOAD-REFUSED key 'model.d_out'" in log, log
        assert 'learning rate 0.01' in log, log
        r = d.admin('CONFIG')
        assert 'lr: 0.01' in str(r['json']) and 'd_out: %d' % D_OUT in str(r['json']), r
        # admin verbs
        v0 = d.status()['model_version']
        r = d.admin('CHECKPOINT')
        assert r['status'] == 'OK' and d.status()['model_version'] > v0, r
        r = d.admin('VERSIONS')
        assert r['status'] == 'OK' and len(r['json']['versions']) >= 1, r
        assert d.admin('PAUSE')['status'] == 'OK' and d.status()['paused'] is True
        r = d.request('ingest-acked.sock', pairs('PAIR', [(1, vec(), vec())], D_IN, req_id=3))
        assert r['status'] == 'PAUSED' and r['req'] == 3, r
        assert d.admin('RESUME')['status'] == 'OK' and d.status()['paused'] is False
        r = d.admin('ROLLBACK', 9999)
        assert r['status'] == 'NOT_FOUND', r
        r = d.admin('BACKUP', os.path.join(d.dir, 'backup'))
        assert r['status'] == 'OK' and os.path.exists(os.path.join(d.dir, 'backup', 'data.mdb')), r
        r = d.request('admin.sock', pairs('SCORE', [(0, b'a', b'b')], D_IN))
        assert r['status'] == 'REFUSED', r
        assert d.stop() == 0
    finally:
        d.close()
        cfgdir.cleanup()


def test_command_line():
    import tempfile
    with tempfile.TemporaryDirectory() as t:
        bad = os.path.join(t, 'bad.yaml')
        with open(bad, 'w') as f:
            f.write('model:\n  d_in: -3\n  nonsense: 1\ntrain:\n  lr: abc\n')
        r = subprocess.run([BIN, '--check-config', '-c', bad], capture_output=True, text=True)
        assert r.returncode != 0, r
        for k in ('model.d_in', 'model.nonsense', 'train.lr'):
            assert k in r.stderr, (k, r.stderr)
        assert 'bad.yaml:' in r.stderr, r.stderr
        r = subprocess.run([BIN, '--check-config', '--state-dir', t, '-o', 'train.lr=0.5'],
                           capture_output=True, text=True)
        assert r.returncode == 0, r
        r = subprocess.run([BIN, '--check-config', '-o', 'no.such.key=1'], capture_output=True,
                           text=True)
        assert r.returncode != 0 and 'no.such.key' in r.stderr, r
        if os.geteuid() == 0:
            r = subprocess.run([BIN, '--state-dir', t], capture_output=True, text=True, timeout=10)
            assert r.returncode != 0 and 'SV-MAIN-ROOT' in r.stderr, r


def test_store_mismatch_and_journal():
    """A second daemon on the same state dir is refused; a store made with
    other dims is refused with both values named; under journald
    (JOURNAL_STREAM) lines carry <N> priority prefixes."""
    d = Daemon(BIN, opts=BASE)
    try:
        d.start()
        args = [BIN, '--state-dir', d.dir] + sum((['-o', o] for o in BASE), [])
        if os.geteuid() == 0:
            args.append('--allow-root')
        r = subprocess.run(args, capture_output=True, text=True, timeout=30)
        assert r.returncode == 1 and 'SV-MAIN-LOCK' in r.stderr and \
            str(d.proc.pid) in r.stderr, r.stderr
        assert d.status()['model_version'] == 0   # the first one still serves
        assert d.stop() == 0
        args = [BIN, '--state-dir', d.dir, '-o', 'model.d_in=32', '-o', 'model.d_out=4']
        if os.geteuid() == 0:
            args.append('--allow-root')
        r = subprocess.run(args, capture_output=True, text=True, timeout=30,
                           env=dict(os.environ, JOURNAL_STREAM='8:1234'))
        assert r.returncode == 1, r
        assert '<3>SV-STORE-OPEN' in r.stderr and '784' not in r.stderr and '32' in r.stderr, r.stderr
    finally:
        d.close()


def test_garbage_changes_nothing():
    """Random and truncated messages on every socket: each acked/query/admin
    one gets a reply; nothing is stored; the daemon keeps serving."""
    d = Daemon(BIN, opts=BASE)
    try:
        d.start()
        send_items(d, 2)
        st0 = d.status()
        g = np.random.default_rng(11)
        good = pairs('PAIR_BATCH', [(1, b'it0', b'it1')], D_IN)
        samples = [[b''], [b'SV'], [g.bytes(32)], [g.bytes(int(g.integers(1, 200)))] * 3,
                   [good[0], good[1]], [good[0][:31]] + good[1:], good + [b'x'] * 10,
                   [good[0], g.bytes(8), b'', b'']]
        for ep in ('ingest-acked.sock', 'query.sock', 'admin.sock'):
            s = d.sock(zmq.DEALER, ep)
            for m in samples:
                s.send_multipart(m)
                r = parse_reply(s.recv_multipart())
                assert r['status'] in ('MALFORMED', 'REFUSED', 'NOT_FOUND'), (ep, m[:2], r)
            s.close()
        push = d.sock(zmq.PUSH, 'ingest.sock')
        for m in samples:
            push.send_multipart(m)
        push.close()
        st = status_until(d, lambda j: sum(j['counters']['rejects'].values()) >= 3 * len(samples),
                          'rejects counted')
        assert st['last_seq'] == st0['last_seq'] and st['items'] == st0['items'], (st0, st)
        assert score(d, b'it0', b'it1')['status'] == 'OK'
        # a flood is logged at most SV_LOG_BURST (10) lines a second, then summed up
        push = d.sock(zmq.PUSH, 'ingest.sock')
        time.sleep(1.1)
        n0 = d.logtext().count('SV-INGEST-BADMAGIC')
        for _ in range(50):
            push.send_multipart([b'XX' + good[0][2:]] + good[1:])
        status_until(d, lambda j: j['counters']['rejects'].get('bad_magic', 0) >= 50, 'flood')
        time.sleep(1.1)
        push.send_multipart([b'XX' + good[0][2:]] + good[1:])
        push.close()
        wait_for(lambda: 'similar lines suppressed' in d.logtext(), what='suppression note')
        n = d.logtext().count('SV-INGEST-BADMAGIC') - n0
        assert 2 <= n <= 10 + 1, n
        assert d.stop() == 0
    finally:
        d.close()


def test_flush_drains_ingest():
    """FLUSH right after fire-and-forget pairs: they are all trained when it returns."""
    d = Daemon(BIN, opts=BASE + ['train.max_wait_ms=60s'])
    try:
        d.start()
        push = d.sock(zmq.PUSH, 'ingest.sock')
        n, rows = 0, [(i % 2, vec(), vec()) for i in range(100)]
        for m in range(100):   # enough that the trainer is still busy at the FLUSH
            push.send_multipart(pairs('PAIR_BATCH', rows[:51 + m % 50], D_IN))
            n += 51 + m % 50
        r = d.admin('FLUSH')
        assert r['status'] == 'OK', r
        st = d.status()
        assert st['pairs_seen'] == n and st['backlog'] == 0 and st['last_seq'] >= n, (n, st)
        push.close()
    finally:
        d.close()


def test_group_sees_its_own_items():
    """Rows of one PAIR_BATCH (one group) use items upserted by earlier rows
    before anything is committed, and an inline vector repeated in the group
    is stored once; the last upsert of an id wins."""
    d = Daemon(BIN, opts=BASE + ['train.max_wait_ms=60s'])
    try:
        d.start()
        v1, v2, v3, v4 = vec(), vec(), vec(), vec()
        rows = [(1, (b'new1', v1), v2),
                (0, b'new1', (b'new2', v3)),
                (1, b'new2', v2),
                (0, (b'new1', v4), b'new2'),
                (1, b'new1', v1)]
        r = d.request('ingest-acked.sock', pairs('PAIR_BATCH', rows, D_IN, req_id=5,
                                                 client=(b'grp', 1)))
        assert r['status'] == 'OK', r
        assert r['ack']['committed'] == 5 and r['ack']['rejected'] == 0, r
        st = d.status()
        # new1, new2 and the inline v2 (rows 0 and 2) and v1 (row 4)
        assert st['last_seq'] == 5 and st['items'] == 4, st
        g = d.request('query.sock', item_get(b'new1'))
        assert g['status'] == 'OK' and np.array_equal(g['vec'], v4), g
        r = d.admin('FLUSH')
        assert r['status'] == 'OK', r
        assert d.status()['pairs_seen'] == 5
    finally:
        d.close()


def test_group_store_reads_yield_to_its_changes():
    """A group reads an item from the store once however many of its pairs
    name it (ingest.c keeps the read), but a delete or an upsert later in
    the same group still wins: the pairs after a delete are refused, the
    pairs after an upsert are logged.  The messages wait out a PAUSE, so
    RESUME hands them to one group."""
    d = Daemon(BIN, opts=BASE + ['train.max_wait_ms=60s'])
    try:
        d.start()
        for i, (name, v) in enumerate([(b'X', vec()), (b'A', vec())]):
            r = d.request('ingest-acked.sock', item_put(name, v, req_id=10 + i))
            assert r['status'] == 'OK', r
        assert d.admin('PAUSE')['status'] == 'OK'
        push = d.sock(zmq.PUSH, 'ingest.sock')
        for m in ([pairs('PAIR_BATCH', [(1, b'X', b'A'), (0, b'A', b'X')], D_IN)],
                  [item_get(b'X', 20, verb='ITEM_DEL')],
                  [pairs('PAIR_BATCH', [(1, b'X', b'A')], D_IN)],
                  [item_put(b'X', vec(), req_id=21)],
                  [pairs('PAIR_BATCH', [(1, b'X', b'A'), (1, b'A', b'X')], D_IN)]):
            push.send_multipart(m[0])
        time.sleep(0.3)  # all five queued while paused
        commits = d.status()['counters']['commits']
        assert d.admin('RESUME')['status'] == 'OK'
        assert d.admin('FLUSH')['status'] == 'OK'
        st = d.status()
        assert st['counters']['pairs']['logged'] == 4, st['counters']
        assert st['counters']['rejects'].get('unknown_item') == 1, st['counters']
        assert st['counters']['commits'] == commits + 1, (commits, st['counters'])
        push.close()
    finally:
        d.close()


def test_backlog_counts_the_batch_in_training():
    """STATUS backlog is every logged pair not yet trained: the batch the
    step runner holds counts until its step is done."""
    d = Daemon(BIN, opts=BASE + ['train.max_wait_ms=60s'])
    os.environ['SV_DEBUG_STEP_DELAY_MS'] = '1500'
    try:
        d.start()
        push = d.sock(zmq.PUSH, 'ingest.sock')
        push.send_multipart(pairs('PAIR_BATCH', [(i % 2, vec(), vec()) for i in range(11)],
                                  D_IN))
        # 8 pairs handed to the runner (sleeping in its step), 3 in the next batch
        st = status_until(d, lambda j: j['backlog'] == 11, '11 pairs waiting or in training')
        assert st['pairs_seen'] == 0 and st['last_seq'] == 11, st
        st = status_until(d, lambda j: j['pairs_seen'] == 8, 'the step done', timeout=20)
        assert st['backlog'] == 3, st
        push.close()
    finally:
        os.environ.pop('SV_DEBUG_STEP_DELAY_MS', None)
        d.close()


def test_resent_pairs_change_nothing():
    """A resent message (same client id and seq) is acked as a duplicate and
    changes nothing: its row's item upsert is not applied again over a later
    ITEM_PUT of the same id."""
    d = Daemon(BIN, opts=BASE)
    try:
        d.start()
        v1, v2, later = vec(), vec(), vec()
        msg = pairs('PAIR_BATCH', [(1, (b'X', v1), v2)], D_IN, req_id=1, client=(b'rs', 5))
        r = d.request('ingest-acked.sock', msg)
        assert r['status'] == 'OK' and r['ack']['committed'] == 1, r
        r = d.request('ingest-acked.sock', item_put(b'X', later, req_id=2))
        assert r['status'] == 'OK', r
        r = d.request('ingest-acked.sock', msg)
        assert r['status'] == 'DUPLICATE', r
        g = d.request('query.sock', item_get(b'X'))
        assert g['status'] == 'OK' and np.array_equal(g['vec'], later), g
        assert d.status()['last_seq'] == 1
    finally:
        d.close()


TESTS = [test_command_line, test_store_mismatch_and_journal, test_ingest_query_restart, test_replay_after_kill,
         test_sighup_and_admin, test_garbage_changes_nothing, test_topk_brute_force,
         test_rollback_and_flush, test_notify_receiver_not_reading,
         test_c_client, test_flush_drains_ingest, test_group_sees_its_own_items,
         test_group_store_reads_yield_to_its_changes, test_backlog_counts_the_batch_in_training, test_resent_pairs_change_nothing]

if __name__ == '__main__':
    want = [a for a in sys.argv[2:] if a.startswith('test_')]
    sys.exit(run_tests(TESTS, want))
