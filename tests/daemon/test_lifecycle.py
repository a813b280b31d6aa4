#!/usr/bin/python3
"""test_lifecycle.py SIMVERIFYD SIMVERIFYCTL SOURCE_ROOT - a store that runs for a
year (issue 12), against the real daemon:

- publishers resume: two processes with the same client id, 100 different
  pairs each, and all 200 are logged (the Python client and simverifyctl);
  resending what was not acked never logs it twice;
- a full store refuses instead of dropping: fire-and-forget publishers block,
  acked ones get STORE_FULL (simverifyctl exits 4 naming the limit), queries
  keep answering, STATUS and readiness say why; a reloaded
  store.max_map_size resumes ingest by itself and every pair is logged;
- retention bounds the file: 200k unique inline pairs at d_in 64 with
  store.retain_pairs 20000, and data.mdb stays within 1.25x of its size at
  40k pairs (the plateau is printed beside the live data size).
"""
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import zmq

BIN, CTL, SRC = sys.argv[1], sys.argv[2], sys.argv[3]
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(SRC, 'python'))
import svclient  # noqa: E402

D = 16


def daemon(opts, d=D, yaml=None):
    """A daemon on -o options; yaml (text) goes in a config file it reloads."""
    base = ['model.d_in=%d' % d, 'model.d_out=4', 'train.batch_pairs=64',
            'train.max_wait_ms=50ms', 'store.sync=none', 'query.min_window_pairs=10',
            'endpoints.http=']
    x = svclient.Daemon(BIN, opts=base + opts)
    if yaml is not None:
        x.config = os.path.join(x.dir, 'simverifyd.yaml')
        with open(x.config, 'w') as f:
            f.write(yaml)
    x.start()
    return x


PUBLISHER = r'''
import sys, numpy as np
sys.path.insert(0, sys.argv[1])
import simverify
rng = np.random.default_rng(int(sys.argv[3]))
with simverify.Client(sys.argv[2], client_id="camera-7") as c:
    for k in range(10):
        a = rng.normal(size=(10, %d)).astype(np.float32)
        b = rng.normal(size=(10, %d)).astype(np.float32)
        ack = c.publish(a, b, rng.integers(0, 2, 10), acked=True)
        assert ack.committed == 10, ack
''' % (D, D)


def logged(x):
    """Pairs committed to the log (log_pairs counts the trainer's control
    records too)."""
    x.admin('FLUSH')
    return x.status()['counters']['pairs']['logged']


def test_publishers_resume():
    x = daemon([])
    try:
        for seed in (1, 2):  # two processes, one client id, different pairs
            subprocess.run(['/usr/bin/python3', '-c', PUBLISHER, os.path.join(SRC, 'python'),
                            x.dir, str(seed)], check=True, timeout=60)
        assert logged(x) == 200, x.status()
        import simverify
        with simverify.Client(x.dir, client_id='camera-7') as c:
            st = c.client_state()
            assert st['state'] == 'known' and st['next_seq'] == 200, st
            # what was sent but not acked is sent again with its own seqs:
            # nothing is logged twice
            a = np.ones((5, D), np.float32)
            ack = c.publish(a, a * 2, [1] * 5, acked=True, client_seq=150)
            assert ack.duplicate == 5 and ack.committed == 0, ack
            assert c.client_state('nobody')['state'] == 'none'
        assert logged(x) == 200
        # simverifyctl publish --client-id, twice, different files: all kept
        vec = os.path.join(x.dir, 'v.vec')
        rng = np.random.default_rng(5)
        write_vec(vec, rng.normal(size=(40, D)).astype(np.float32))
        for k, name in enumerate(('p1.pairs', 'p2.pairs')):
            path = os.path.join(x.dir, name)
            write_pairs(path, [(2 * i + k, 2 * i + k + 1, i % 2) for i in range(15)], 40, D)
            out = subprocess.run([CTL, '--state-dir', x.dir, 'publish', vec, path, '--acked',
                                  '--client-id', 'ctl-9', '-q'], capture_output=True, text=True,
                                 timeout=60)
            assert out.returncode == 0, out.stdout + out.stderr
            assert '15 committed' in out.stdout, out.stdout
        assert logged(x) == 230
    finally:
        x.stop()
        x.close()


def write_vec(path, X):
    """A SIMVEC1 file (shared/data/README.md): 64-byte header, float32 rows."""
    import struct
    with open(path, 'wb') as f:
        f.write(struct.pack('<8s8I24x', b'SIMVEC1\0', 1, 64, X.shape[0], X.shape[1], 1, 0, 0, 0))
        f.write(np.asarray(X, '<f4').tobytes())


def write_pairs(path, recs, n_rows, dim):
    """A SIMPAIR1 file of (a, b, label) records over global ids 0..n_rows-1."""
    import struct
    with open(path, 'wb') as f:
        f.write(struct.pack('<8s10I16x', b'SIMPAIR1', 1, 64, len(recs),
                            sum(y for _, _, y in recs), dim, 12, 0, 0, 0, n_rows))
        for a, b, y in recs:
            f.write(struct.pack('<IIB3x', a, b, y))


def test_full_store_refuses_and_resumes():
    d = 64
    x = daemon(['store.map_size=1MiB', 'store.retain_pairs=0', 'store.retain_age=0',
                'limits.max_pending_pairs=6400'], d, yaml='store:\n  max_map_size: 2MiB\n')
    rng = np.random.default_rng(9)
    n_msgs, per = 3000, 8
    sent = [0]
    stop = threading.Event()
    ctx = zmq.Context()

    def pusher():
        s = ctx.socket(zmq.PUSH)
        s.setsockopt(zmq.SNDHWM, 10)
        s.setsockopt(zmq.SNDTIMEO, 200)
        s.connect(x.ep('ingest.sock'))
        k = 0
        while k < n_msgs and not stop.is_set():
            rows = [(j % 2, rng.normal(size=d).astype(np.float32),
                     rng.normal(size=d).astype(np.float32)) for j in range(per)]
            msg = svclient.pairs('PAIR_BATCH', rows, d, client=(b'pusher', k * per))
            while not stop.is_set():
                try:
                    s.send_multipart(msg)
                    break
                except zmq.Again:
                    continue
            k += 1
            sent[0] = k
        s.close(linger=5000)

    t = threading.Thread(target=pusher)
    t.start()
    try:
        st = svclient.status_until(x, lambda s: s['store_full'] == 'max_map_size', 'full', 60)
        assert not st['ready'] and st['not_ready_reason'] == 'store_full', st
        # the pusher blocks: what it sent stops growing (once the queues and
        # the socket buffers between it and the unread PULL socket are full)
        t0, s0 = time.monotonic(), -1
        while sent[0] != s0 and time.monotonic() - t0 < 30:
            s0 = sent[0]
            time.sleep(2.0)
        assert sent[0] == s0 < n_msgs, (s0, sent[0])
        # acked ingest is refused with a distinct status, nothing stored
        r = x.request('ingest-acked.sock', svclient.pairs(
            'PAIR_BATCH', [(1, np.ones(d, np.float32), np.ones(d, np.float32))], d, req_id=5,
            client=(b'acked', 0)))
        assert r['status'] == 'STORE_FULL' and 'store.max_map_size' in r['msg'], r
        vec = os.path.join(x.dir, 'v.vec')
        write_vec(vec, rng.normal(size=(8, d)).astype(np.float32))
        pairs = os.path.join(x.dir, 'p.pairs')
        write_pairs(pairs, [(0, 1, 1), (2, 3, 0)], 8, d)
        out = subprocess.run([CTL, '--state-dir', x.dir, 'publish', vec, pairs, '--acked', '-q'],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 4 and 'store.max_map_size' in out.stderr, out
        # queries keep answering
        q = x.request('query.sock', svclient.pairs(
            'SCORE', [(0, np.ones(d, np.float32), np.ones(d, np.float32))], d, req_id=6))
        assert q['status'] == 'OK', q
        m = x.admin('METRICS')['json']
        assert 'simverify_store_full{limit="max_map_size"} 1' in m
        # more room: ingest goes on by itself, nothing was dropped
        with open(x.config, 'w') as f:
            f.write('store:\n  max_map_size: 256MiB\n')
        x.signal(signal.SIGHUP)
        t.join(120)
        assert not t.is_alive() and sent[0] == n_msgs, sent
        st = svclient.status_until(
            x, lambda s: s['counters']['pairs']['logged'] == n_msgs * per,
            'every pushed pair logged', 60)
        assert st['store_full'] is None and st['ready'], st
        r = x.request('ingest-acked.sock', svclient.pairs(
            'PAIR_BATCH', [(1, np.ones(d, np.float32), np.ones(d, np.float32))], d, req_id=7,
            client=(b'acked', 0)))
        assert r['status'] == 'OK', r
        assert logged(x) == n_msgs * per + 1
    finally:
        stop.set()
        t.join(10)
        ctx.term()
        x.stop()
        x.close()


def test_retention_plateau():
    d = 64
    x = daemon(['store.retain_pairs=20000', 'checkpoint.every_steps=10', 'train.batch_pairs=256',
                'store.map_size=64MiB'], d)
    rng = np.random.default_rng(11)
    s = x.sock(zmq.DEALER, 'ingest-acked.sock')
    data = os.path.join(x.dir, 'store', 'data.mdb')
    sizes = []
    try:
        # stored items too: the top-k cache rebuilds read them while ingest goes on
        for i in range(500):
            s.send_multipart(svclient.item_put(b'item%d' % i, rng.normal(size=d), 1000 + i))
            assert svclient.parse_reply(s.recv_multipart())['status'] == 'OK'
        total, batch = 200000, 500
        for k in range(total // batch):
            A = rng.normal(size=(batch, d)).astype(np.float32)
            B = rng.normal(size=(batch, d)).astype(np.float32)
            rows = [(j % 2, A[j], B[j]) for j in range(batch)]
            s.send_multipart(svclient.pairs('PAIR_BATCH', rows, d, req_id=k + 1,
                                            client=(b'plateau', k * batch)))
            r = svclient.parse_reply(s.recv_multipart())
            assert r['status'] == 'OK', r
            done = (k + 1) * batch
            if done % 20000 == 0:
                sizes.append((done, os.path.getsize(data), x.status()))
        at40 = [sz for n, sz, _ in sizes if n == 40000][0]
        top = max(sz for _, sz, _ in sizes)
        last = sizes[-1][2]
        print('  data.mdb at 40k pairs %.1f MB, largest after %.1f MB (%.2fx); live data '
              '%.1f MB, %d log rows kept, %d free pages' %
              (at40 / 1e6, top / 1e6, top / at40, last['store_used_bytes'] / 1e6,
               last['log_pairs'], last['store_free_pages']))
        for n, sz, st in sizes:
            print('    %6d pairs: file %.1f MB, live %.1f MB, log %d rows' %
                  (n, sz / 1e6, st['store_used_bytes'] / 1e6, st['log_pairs']))
        assert top <= 1.25 * at40, sizes
        assert last['log_pairs'] <= 20000 + 2 * 2560, last
        assert last['log_first_seq'] > 150000, last
    finally:
        x.stop()
        x.close()


def test_purge_erases_an_item_and_its_rows():
    x = daemon([])
    rng = np.random.default_rng(13)
    try:
        for name in (b'alice', b'bob', b'carol'):
            r = x.request('ingest-acked.sock', svclient.item_put(name, rng.normal(size=D), 1))
            assert r['status'] == 'OK', r
        only_alice = rng.normal(size=D).astype(np.float32)  # an inline vector
        rows = [(1, b'alice', b'bob')] * 5 + [(0, b'carol', b'bob')] * 5 + \
            [(1, b'alice', only_alice)] * 3
        r = x.request('ingest-acked.sock', svclient.pairs('PAIR_BATCH', rows, D, req_id=2))
        assert r['status'] == 'OK', r
        before = x.status()
        out = subprocess.run([CTL, '--state-dir', x.dir, 'item', 'delete', '--purge', 'alice'],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0 and '8 log rows' in out.stdout, out
        st = x.status()
        assert st['items'] == before['items'] - 2, (before['items'], st['items'])
        q = x.request('query.sock', svclient.pairs('SCORE', [(0, b'alice', b'bob')], D, req_id=3))
        assert q['status'] == 'NOT_FOUND' or q['rows'][0]['status'] == 'NOT_FOUND', q
        out = subprocess.run([CTL, '--state-dir', x.dir, 'item', 'delete', '--purge', 'nobody'],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 4 and 'not_found' in out.stderr, out
        # a backup made afterwards holds nothing of alice
        bk = os.path.join(x.dir, 'after-purge')
        assert x.admin('BACKUP', bk)['status'] == 'OK'
        dump = subprocess.run(['mdb_dump', '-a', '-p', bk], capture_output=True, timeout=60)
        assert dump.returncode == 0, dump.stderr
        assert b'alice' not in dump.stdout and b'carol' in dump.stdout
        # the daemon recovers after the purge: the checkpoint covers the rows
        x.stop()
        x.start()
        assert x.status()['ready']
    finally:
        x.stop()
        x.close()


def test_backup_off_the_admin_thread_and_restore():
    d = 256
    opts = ['model.d_in=%d' % d, 'model.d_out=8', 'train.batch_pairs=256',
            'store.sync=none', 'endpoints.http=']
    x = svclient.Daemon(BIN, opts=opts)
    x.start()
    rng = np.random.default_rng(17)
    new = svclient.Daemon(BIN, opts=opts)
    try:
        for i in range(50):
            r = x.request('ingest-acked.sock', svclient.item_put(b'it%d' % i, rng.normal(size=d), i))
            assert r['status'] == 'OK', r
        push = x.sock(zmq.PUSH, 'ingest.sock')
        for k in range(40):  # 40k unique inline pairs: a copy that takes a while
            A = rng.normal(size=(1000, d)).astype(np.float32)
            push.send_multipart(svclient.pairs('PAIR_BATCH', [(j % 2, A[j], A[j][::-1].copy())
                                                              for j in range(1000)], d))
        svclient.status_until(x, lambda s: s['counters']['pairs']['logged'] == 40000, 'logged', 60)
        assert x.admin('FLUSH')['status'] == 'OK' and x.admin('CHECKPOINT')['status'] == 'OK'
        want = x.status()
        queries = [(0, b'it%d' % i, b'it%d' % (i + 1)) for i in range(10)]
        scores = x.request('query.sock', svclient.pairs('SCORE_BATCH', queries, d, req_id=4))
        # BACKUP (a name: under store.backup_dir) while STATUS keeps answering
        b = x.sock(zmq.DEALER, 'admin.sock')
        b.send_multipart(svclient.admin('BACKUP', 11, 'nightly'))
        running, t0 = 0, time.monotonic()
        while not b.poll(0):
            st = x.status()
            running += st['backup'] is not None and st['backup']['state'] == 'running'
            assert time.monotonic() - t0 < 60
        r = svclient.parse_reply(b.recv_multipart())
        assert r['status'] == 'OK', r
        print('  STATUS answered %d times while the backup ran (%.2f s)' %
              (running, x.status()['backup']['seconds']))
        assert running > 0, 'no STATUS reply saw the backup running'
        bk = os.path.join(x.dir, 'backups', 'nightly')
        assert os.path.exists(os.path.join(bk, 'data.mdb'))
        assert not os.path.exists(bk + '.partial')
        assert x.status()['backup']['state'] == 'done'
        # restore into a new state directory, start there: the same model
        x.stop()
        out = subprocess.run([BIN, '--restore', bk, '--state-dir', new.dir] +
                             sum([['-o', o] for o in opts], []) +
                             (['--allow-root'] if os.geteuid() == 0 else []),
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stdout + out.stderr
        print('  ' + out.stdout.strip())
        again = subprocess.run([BIN, '--restore', bk, '--state-dir', new.dir] +
                               sum([['-o', o] for o in opts], []) +
                               (['--allow-root'] if os.geteuid() == 0 else []),
                               capture_output=True, text=True, timeout=120)
        assert again.returncode == 1 and 'already holds a store' in again.stderr, again
        new.start()
        got = new.status()
        assert (got['model_version'], got['applied_seq']) == \
            (want['model_version'], want['applied_seq']), (got, want)
        again = new.request('query.sock', svclient.pairs('SCORE_BATCH', queries, d, req_id=4))
        assert [r['score'] for r in again['rows']] == [r['score'] for r in scores['rows']]
    finally:
        x.stop()
        x.close()
        new.stop()
        new.close()


def test_status_never_waits():
    """STATUS answers while the trainer works through a slow FLUSH and CHECKPOINT."""
    os.environ['SV_DEBUG_STEP_DELAY_MS'] = '400'
    try:
        x = daemon(['train.batch_pairs=8', 'train.max_wait_ms=10s'])
    finally:
        del os.environ['SV_DEBUG_STEP_DELAY_MS']
    try:
        rows = [(i % 2, np.ones(D, np.float32) * i, np.ones(D, np.float32)) for i in range(40)]
        r = x.request('ingest-acked.sock', svclient.pairs('PAIR_BATCH', rows, D, req_id=1))
        assert r['status'] == 'OK', r
        slow = x.sock(zmq.DEALER, 'admin.sock')
        slow.send_multipart(svclient.admin('FLUSH', 21))   # 5 steps of 400 ms
        slow.send_multipart(svclient.admin('CHECKPOINT', 22))
        answered, worst = 0, 0.0
        while not slow.poll(0):
            t0 = time.monotonic()
            x.status()
            worst = max(worst, time.monotonic() - t0)
            answered += 1
        got = [svclient.parse_reply(slow.recv_multipart()) for _ in range(2)]
        assert [g['req'] for g in got] == [21, 22] and all(g['status'] == 'OK' for g in got), got
        print('  %d STATUS replies during FLUSH + CHECKPOINT, the slowest %.0f ms' %
              (answered, worst * 1e3))
        assert answered >= 5 and worst < 0.3, (answered, worst)
    finally:
        x.stop()
        x.close()


if __name__ == '__main__':
    sys.exit(svclient.run_tests([test_publishers_resume, test_full_store_refuses_and_resumes,
                                 test_retention_plateau, test_purge_erases_an_item_and_its_rows,
                                 test_backup_off_the_admin_thread_and_restore,
                                 test_status_never_waits],
                                sys.argv[4:]))
