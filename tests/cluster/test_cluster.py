#!/usr/bin/python3
"""test_cluster.py SIMVERIFYD SV_FSCK NATS_CLUSTER_SH - two clustered trainers on a real
3-node nats-server cluster (127.0.0.1, a temp directory), driven through their ZeroMQ
gateways with acked PAIR_BATCH messages, as a publisher would (docs/SCALING.md).

Trainer a and trainer b (cluster.role trainer, R3, lease TTL 2 s; b's gateway acks with
cluster.ack committed, and its acks are checked against b's store position):
  1. fencing: a leads; its lease thread stalls in a model publish (the test knob
     SV_DEBUG_PUBLISH_DELAY_MS stands for a paused leader) past the TTL; b takes the
     lease and publishes a model; a's late write is refused by the models bucket's
     compare-and-set and a steps down.  a is restarted as a plain standby.  A third
     trainer with another train.lr refuses to start (lockstep settings).
  2. load: 1000 acked messages of 20 pairs (20k pairs, keyed client "pub", seq),
     sent to both gateways with a window in flight, resent when told BUSY (no
     JetStream ack) until answered OK or DUPLICATE.  Meanwhile the stream's Raft leader
     is killed -9 and restarted, and then the lease holder b is killed -9: a must take
     over (the failover time is printed), and b is restarted and follows again.
  3. two NATS nodes down: an acked message gets no ack (BUSY), and neither trainer
     applies any of it; with the nodes back, its resend is acked and applied whole, and
     a fire-and-forget item sent meanwhile, kept by the gateway, reaches both trainers.
At the end both trainers have applied the same stream sequence and hold the same W, bit
for bit (lockstep); two query replicas (the second bootstrapped from a backup of the first
mid-load) give identical SCORE_BATCH and TOPK answers at the same position; an item written
at the leader is found on a replica at once with flag POS, a future version gets BEHIND;
the Python client publishes through a gateway unchanged; every acked pair is in each store's log exactly once (sv_fsck
--clients), and the fsck invariants hold."""
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

import numpy as np
import zmq

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'daemon'))
from svclient import (Daemon, item_get, item_put, pairs, parse_reply, status_until, topk,  # noqa
                      wait_for, with_pos)

BIN, FSCK, NC = sys.argv[1:4]
D, N_ITEMS, PER_MSG, N_MSGS, WINDOW = 8, 64, 20, 1000, 16
TTL_S = 2.0


class Cluster:
    def __init__(self, root):
        self.dir = os.path.join(root, 'nats')
        os.makedirs(self.dir)
        out = subprocess.run(['sh', NC, 'start', self.dir], capture_output=True, text=True,
                             timeout=60)
        assert out.returncode == 0, out.stderr
        self.urls = out.stdout.strip().split('\n')[-1]
        with open(os.path.join(self.dir, 'http')) as f:
            self.http = [int(x) for x in f.read().split()]

    def api(self, subject, payload=b''):
        """One JetStream API request over the NATS protocol itself: its JSON reply."""
        host, port = self.urls.split(',')[0].split('//')[1].split(':')
        with socket.create_connection((host, int(port)), timeout=10) as c:
            f = c.makefile('rb')
            assert f.readline().startswith(b'INFO '), 'not a NATS server'
            c.sendall(b'CONNECT {"verbose":false,"headers":true,"no_responders":true}\r\n'
                      b'SUB _INBOX.svtest 1\r\nPUB %s _INBOX.svtest %d\r\n%s\r\n'
                      % (subject.encode(), len(payload), payload))
            while True:
                line = f.readline()
                assert line, 'the server closed the connection'
                if line.startswith(b'PING'):
                    c.sendall(b'PONG\r\n')
                elif line.startswith(b'MSG '):
                    body = f.read(int(line.split()[-1]) + 2)[:-2]
                    return json.loads(body)
                elif line.startswith(b'HMSG '):
                    raise AssertionError('no JetStream answer to %s: %r' % (subject, line))

    def run(self, *args):
        """nats-cluster.sh CMD DIR [N]: kill or restart node N."""
        r = subprocess.run(['sh', NC, args[0], self.dir] + [str(a) for a in args[1:]],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr

    def _leader_view(self, what, name, node=None):
        """The stream `name` in /jsz?<what>=true as its Raft leader reports it (a
        follower may be behind): from node, or the first of the three that knows."""
        for n in ([node] if node else [1, 2, 3]):
            try:
                url = 'http://127.0.0.1:%d/jsz?%s=true&leader_only=true' % (self.http[n - 1],
                                                                            what)
                with urllib.request.urlopen(url, timeout=2) as r:
                    j = json.load(r)
            except OSError:
                continue
            for acc in j.get('account_details', []):
                for s in acc.get('stream_detail', []):
                    if s['name'] == name:
                        return s
        return None

    def stream(self, name='SV_PAIRS', node=None):
        return self._leader_view('streams', name, node)

    def consumers(self):
        """Each durable's delivered and ack floor stream sequences and pending."""
        s = self._leader_view('consumers', 'SV_PAIRS')
        return s and {c['name']: (c['delivered']['stream_seq'], c['ack_floor']['stream_seq'],
                                  c['num_pending']) for c in s.get('consumer_detail', [])}

    def stream_leader(self):
        s = self.stream()
        return int(s['cluster']['leader'][1:]) if s and s.get('cluster', {}).get('leader') else 0


def opts(cl, name, role='trainer'):
    return ['model.d_in=%d' % D, 'model.d_out=4', 'train.batch_pairs=32',
            'train.max_wait_ms=50ms', 'checkpoint.every_steps=50', 'checkpoint.every_s=0',
            'endpoints.http=', 'store.map_size=64MiB', 'cluster.role=' + role,
            'cluster.urls=' + cl.urls, 'cluster.name=' + name, 'cluster.lease_ttl=2s',
            'cluster.timeout=3s', 'cluster.replicas=3', 'cluster.read_wait=2s']


def role(d):
    try:
        return d.status()['cluster']['role']
    except Exception:   # noqa: BLE001 - a daemon being killed or restarted
        return None


def start(d, env=None):
    saved = dict(os.environ)
    os.environ.update(env or {})
    try:
        d.start(90)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return d


def message(rnd, seq):
    rows = [(int(rnd.integers(2)), b'i%d' % rnd.integers(N_ITEMS), b'i%d' % rnd.integers(N_ITEMS))
            for _ in range(PER_MSG)]
    return pairs('PAIR_BATCH', rows, D, req_id=seq, client=(b'pub', (seq - 1) * PER_MSG + 1))


class Publisher:
    """Acked messages through the gateways, resent until answered."""

    def __init__(self, daemons):
        self.daemons = daemons
        self.socks = {}
        self.unacked = {}   # seq -> (frames, sent at)
        self.acked = set()
        self.busy = 0
        self.committed = None   # the gateway with cluster.ack committed
        self.checked = 0

    def sock(self, d):
        if d not in self.socks:
            s = d.sock(zmq.DEALER, 'ingest-acked.sock')
            s.setsockopt(zmq.RCVTIMEO, 0)
            self.socks[d] = s
        return self.socks[d]

    def send(self, seq, frames, d):
        self.unacked[seq] = (frames, time.monotonic(), d)
        self.sock(d).send_multipart(frames)

    def poll(self, alive):
        """Answers so far; BUSY ones and ones unanswered for 8 s go again to an alive gateway."""
        for d, s in list(self.socks.items()):
            while True:
                try:
                    r = parse_reply(s.recv_multipart(zmq.NOBLOCK))
                except zmq.Again:
                    break
                seq = r['req']
                if seq not in self.unacked:
                    continue
                if r['status'] in ('OK', 'DUPLICATE'):
                    if self.committed is d and seq % 10 == 1:   # cluster.ack committed
                        st = d.status()['cluster']
                        assert st['applied_stream_seq'] >= r['pos'][1], (st, r)
                        self.checked += 1
                    self.acked.add(seq)
                    del self.unacked[seq]
                else:
                    assert r['status'] == 'BUSY', r
                    self.busy += 1   # no JetStream ack (an election): again in 0.2 s
                    frames, _, _ = self.unacked[seq]
                    self.unacked[seq] = (frames, time.monotonic() - 7.8, None)
        now = time.monotonic()
        for seq, (frames, t, d) in list(self.unacked.items()):
            if now - t > 8 or (d is not None and d not in alive):
                self.send(seq, frames, alive[seq % len(alive)])

    def drop(self, d):
        s = self.socks.pop(d, None)
        if s is not None:
            s.close(0)


def fsck_clients(store):
    r = subprocess.run([FSCK, store, '--clients'], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    pub = b'pub'.hex()
    seqs = [int(line.split()[1]) for line in r.stdout.splitlines()[:-1]   # then a summary
            if line.split()[0] == pub]
    return seqs


def churn(rnd, d):
    """Item changes the replicas must follow: 8 updated, 6 new, 2 of them deleted
    (none that the pairs name: a pair naming a deleted item is rejected)."""
    s = d.sock(zmq.DEALER, 'ingest-acked.sock')
    s.setsockopt(zmq.RCVTIMEO, 20000)
    msgs = [item_put(b'i%d' % i, rnd.standard_normal(D).astype('<f4'), 100 + i)
            for i in range(8)]
    msgs += [item_put(b'n%d' % i, rnd.standard_normal(D).astype('<f4'), 300 + i)
             for i in range(6)]
    msgs += [item_get(b'n%d' % i, 200 + i, verb='ITEM_DEL') for i in (4, 5)]
    for m in msgs:
        while True:   # an election may answer BUSY: the same message again
            s.send_multipart(m)
            r = parse_reply(s.recv_multipart())
            if r['status'] == 'OK':
                break
            assert r['status'] == 'BUSY', r
            time.sleep(0.2)
    s.close(0)


def bootstrap(src, dst):
    """A second replica from a backup of the first, resuming from its sequence."""
    bk = os.path.join(src.dir, 'bk-r2')
    assert src.admin('BACKUP', bk)['status'] == 'OK'
    out = subprocess.run([BIN, '--restore', bk, '--state-dir', dst.dir] +
                         sum([['-o', o] for o in dst.opts], []) +
                         (['--allow-root'] if os.geteuid() == 0 else []),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    start(dst)
    log = dst.logtext()
    assert 'follows' in log and 'from stream sequence 0 ' not in log, log[-2000:]


def replica_answers(r, queries):
    """SCORE_BATCH and TOPK from a replica: (position, score rows, topk queries)."""
    s = r.sock(zmq.DEALER, 'query.sock')
    s.setsockopt(zmq.RCVTIMEO, 20000)
    s.send_multipart(pairs('SCORE_BATCH', [(0, x, y) for x, y in queries], D, req_id=1))
    sc = parse_reply(s.recv_multipart())
    s.send_multipart(topk([x for x, _ in queries], 5, D, req_id=2))
    tk = parse_reply(s.recv_multipart())
    s.close(0)
    assert sc['status'] in ('OK', 'PARTIAL') and tk['status'] == 'OK', (sc, tk)
    assert sc['pos'] == tk['pos'], (sc['pos'], tk['pos'])
    return sc['pos'], sc['rows'], tk['queries']


def failover(a, b, t_fail):
    """a leads after b's kill -9: print how long it took, restart b as a standby."""
    print('trainer b killed -9: a leads after %.2f s (lease TTL %.1f s)'
          % (time.monotonic() - t_fail, TTL_S))
    b.proc = None
    b.log.close()
    start(b)
    assert role(b) == 'standby'
    return 4


def test():
    root = tempfile.mkdtemp(prefix='svcl-')
    cl = Cluster(root)
    for n in ('a', 'b', 'r1', 'r2'):
        os.makedirs(os.path.join(root, n))
    a = Daemon(BIN, state_dir=os.path.join(root, 'a'), opts=opts(cl, 'a'))
    # b's gateway acks only once b's own LMDB commit holds the message
    b = Daemon(BIN, state_dir=os.path.join(root, 'b'), opts=opts(cl, 'b') + ['cluster.ack=committed'])
    r1 = Daemon(BIN, state_dir=os.path.join(root, 'r1'), opts=opts(cl, 'r1', 'replica'))
    r2 = Daemon(BIN, state_dir=os.path.join(root, 'r2'), opts=opts(cl, 'r2', 'replica'))
    rnd = np.random.default_rng(17)
    try:
        # ---- 1. fencing: a paused leader's late model write is refused ----
        start(a, {'SV_DEBUG_PUBLISH_DELAY_MS': '4500'})
        status_until(a, lambda st: st['cluster']['role'] == 'leader', 'a leads', 30)
        start(b)
        assert role(b) == 'standby'
        s = a.sock(zmq.DEALER, 'ingest-acked.sock')
        for i in range(N_ITEMS):
            s.send_multipart(item_put(b'i%d' % i, rnd.standard_normal(D).astype('<f4'), i))
            assert parse_reply(s.recv_multipart())['status'] == 'OK'
        s.close(0)
        assert a.admin('CHECKPOINT')['status'] == 'OK'   # a's lease thread now sleeps 4.5 s
        status_until(b, lambda st: st['cluster']['role'] == 'leader', 'b takes over', 15)
        assert b.admin('CHECKPOINT')['status'] == 'OK'
        status_until(b, lambda st: st['cluster']['model_puts'] >= 1, 'b publishes', 10)
        st = status_until(a, lambda st: st['cluster']['model_refused'] >= 1,
                          "a's stale write refused", 15)
        assert st['cluster']['role'] == 'standby' and st['cluster']['lease_lost'] >= 1, st
        assert st['cluster']['model_puts'] == 0, st
        print('fencing: a refused %d stale model write(s), b leads' %
              st['cluster']['model_refused'])
        assert a.stop() == 0
        start(a)
        assert role(a) == 'standby' and role(b) == 'leader'
        start(r1)   # a query replica: follows the items stream and the models bucket
        # ready only once it has both as they were when it started (nothing moves them here)
        st = status_until(r1, lambda st: st['ready'], 'r1 ready', 30)
        assert st['cluster']['model_rev'] > 0 and st['items'] == N_ITEMS, st
        assert st['cluster']['role'] == 'replica', st
        assert 'SV-CLUSTER-READY' in r1.logtext()
        # a replica that cannot install the cluster's model (another d_in) never gets ready
        os.makedirs(os.path.join(root, 'rbad'))
        bad = Daemon(BIN, state_dir=os.path.join(root, 'rbad'),
                     opts=['model.d_in=%d' % (D + 1)] + opts(cl, 'rbad', 'replica')[1:])
        try:
            start(bad)
            wait_for(lambda: 'cannot install model revision' in bad.logtext(), 15,
                     'the mismatched replica tries the model')
            st = bad.status()
            assert not st['ready'] and st['not_ready_reason'] == 'following', st
            assert bad.stop() == 0
        finally:
            bad.close()
        print('replicas: r1 ready once caught up; one with another d_in stays "following"')
        # a trainer with another learning rate than the leader's cannot train in lockstep:
        # it refuses at its start, naming the key and both values, before consuming anything
        os.makedirs(os.path.join(root, 'tbad'))
        tbad = Daemon(BIN, state_dir=os.path.join(root, 'tbad'),
                      opts=opts(cl, 'tbad') + ['train.lr=0.002'])
        try:
            try:
                start(tbad)
                raise AssertionError('a trainer with another train.lr started')
            except AssertionError as e:
                assert 'daemon exited 1' in str(e), e
            log = tbad.logtext()
            assert 'SV-CLUSTER-LOCKSTEP' in log and 'train.lr 0.002 here, 0.001 there' in log, log
        finally:
            tbad.close()
        assert role(b) == 'leader' and role(a) == 'standby'
        print('lockstep: a trainer with another train.lr refused to start')

        # ---- 2. 20k acked pairs; the stream leader and the trainer die ----
        pub = Publisher([a, b])
        pub.committed = b
        alive = [a, b]
        seq, phase, t_fail = 1, 0, None
        end = time.monotonic() + 240
        while (seq <= N_MSGS or pub.unacked) and time.monotonic() < end:
            while seq <= N_MSGS and len(pub.unacked) < WINDOW:
                pub.send(seq, message(rnd, seq), alive[seq % len(alive)])
                seq += 1
            pub.poll(alive)
            time.sleep(0.002)
            if phase == 0 and len(pub.acked) >= 300:
                victim = cl.stream_leader()
                assert victim, cl.stream()
                cl.run('kill', victim)
                t_kill = time.monotonic()
                phase = 1
            elif phase == 1 and time.monotonic() - t_kill > 3:
                cl.run('restart', victim)
                print('stream leader n%d killed -9 and restarted; %d acked so far'
                      % (victim, len(pub.acked)))
                phase = 2
            elif phase == 2 and len(pub.acked) >= 450 and r2.proc is None:
                churn(rnd, alive[0])
                bootstrap(r1, r2)
            elif phase == 2 and len(pub.acked) >= 600:
                b.proc.kill()
                b.proc.wait()
                t_fail = time.monotonic()
                alive = [a]
                pub.drop(b)
                phase = 3
            elif phase == 3 and role(a) == 'leader':
                phase = failover(a, b, t_fail)
                alive = [a, b]
        assert not pub.unacked and len(pub.acked) == N_MSGS, (len(pub.acked), len(pub.unacked))
        if phase == 3:   # every message was acked before a took over: gateways need no leader
            wait_for(lambda: role(a) == 'leader', 30, 'a takes over')
            phase = failover(a, b, t_fail)
        assert phase == 4, phase
        print('%d messages acked (%d BUSY answers resent); %d acks of the committed-mode '
              'gateway were already in its store' % (len(pub.acked), pub.busy, pub.checked))
        assert pub.checked > 0

        # ---- 3. two NATS nodes down: no ack, nothing applied ----
        last = cl.stream()['state']['last_seq']
        status_until(a, lambda st: st['cluster']['applied_stream_seq'] == last, 'a applied', 60)
        status_until(b, lambda st: st['cluster']['applied_stream_seq'] == last, 'b applied', 60)
        down = [n for n in (1, 2, 3)][:2]
        for n in down:
            cl.run('kill', n)
        extra = N_MSGS + 1
        frames = message(rnd, extra)
        s = a.sock(zmq.DEALER, 'ingest-acked.sock')
        s.setsockopt(zmq.RCVTIMEO, 20000)
        s.send_multipart(frames)
        r = parse_reply(s.recv_multipart())
        assert r['status'] == 'BUSY', r
        # a fire-and-forget item meanwhile: the gateway keeps it and tries again
        ff = a.sock(zmq.PUSH, 'ingest.sock')
        ff.send_multipart(item_put(b'ff-outage', rnd.standard_normal(D).astype('<f4')))
        ff.close(1000)
        time.sleep(1)
        for d in (a, b):
            assert d.status()['cluster']['applied_stream_seq'] == last
        for n in down:
            cl.run('restart', n)
        t0 = time.monotonic()
        while True:
            s.send_multipart(frames)
            r = parse_reply(s.recv_multipart())
            if r['status'] in ('OK', 'DUPLICATE'):
                break
            assert r['status'] == 'BUSY' and time.monotonic() - t0 < 60, r
            time.sleep(0.5)
        s.close(0)
        print('two NATS nodes down: BUSY, nothing applied; acked %.1f s after the restart'
              % (time.monotonic() - t0))

        # ---- the end state ----
        # the outage may have cost the leader its lease: whoever leads now cuts the batch
        lead = wait_for(lambda: next((d for d in (a, b) if role(d) == 'leader'), None), 30,
                        'a leader after the outage')
        assert lead.admin('FLUSH')['status'] == 'OK'

        def settled():
            last = cl.stream()['state']['last_seq']   # re-read: an unacked message may go
            sts = [d.status() for d in (a, b)]
            ok = all(st['cluster']['applied_stream_seq'] == last and
                     st['applied_seq'] == st['last_seq'] for st in sts)
            return (last, sts) if ok else None
        try:
            last, (sa, sb) = wait_for(settled, 60, 'both trainers applied the whole stream')
        except AssertionError as e:   # the state in the error: the tail of a log is kept
            raise AssertionError('%s: stream %r, consumers %r, trainers %r' % (
                e, cl.stream()['state'], cl.consumers(),
                [(d.status()['cluster'], d.status()['applied_seq']) for d in (a, b)]))
        assert sa['last_seq'] == sb['last_seq'] and sa['steps'] == sb['steps'], (sa, sb)
        for d in (a, b):   # the fire-and-forget item sent during the outage is there
            q = d.sock(zmq.DEALER, 'query.sock')
            q.setsockopt(zmq.RCVTIMEO, 20000)
            q.send_multipart(pairs('SCORE_BATCH', [(0, b'ff-outage', b'i0')], D, req_id=5))
            row = parse_reply(q.recv_multipart())['rows'][0]
            q.close(0)
            assert row['status'] == 'OK', (d.dir, row)
        wa, wb = a.admin('MODEL_GET')['W'], b.admin('MODEL_GET')['W']
        assert wa == wb, 'W differs between the trainers'
        print('lockstep: both at stream seq %d, log seq %d, %d steps, W identical'
              % (last, sa['last_seq'], sa['steps']))
        # the leader publishes a checkpoint to the models bucket; right after the outage
        # the lease bucket may still be electing, and the lease may move (a renew that
        # fails for 3/4 of the TTL): then the new leader is asked
        for attempt in range(4):
            lead = wait_for(lambda: next((d for d in (a, b) if role(d) == 'leader'), None),
                            30, 'a leader to checkpoint')
            r = lead.admin('CHECKPOINT')
            assert r['status'] == 'OK', r
            v = int(r['msg'].split('v')[-1])
            try:
                st = status_until(lead, lambda st: st['cluster']['model_version'] == v or
                                  st['cluster']['role'] != 'leader', 'the leader publishes', 20)
            except AssertionError:
                if attempt == 3:
                    raise
                continue
            if st['cluster']['model_version'] == v:
                break
            print('the lease moved before checkpoint %d was published: asking again' % v)
        assert st['cluster']['model_version'] == v and st['cluster']['model_rev'] > 0, st
        rev = st['cluster']['model_rev']
        print('models bucket: version %d published as revision %d' % (v, rev))

        # ---- the replicas: the same answers at the same position ----
        seen = []

        def caught_up():   # the leader published all; both replicas on one revision and
            cl_st = lead.status()['cluster']   # at the end of the items stream
            items = (cl.stream('SV_PAIRS_ITEMS') or {}).get('state', {}).get('last_seq')
            sts = [r.status() for r in (r1, r2)]
            want = sts[0]['cluster']['model_rev']
            ok = (cl_st['model_version'] == v and want >= cl_st['model_rev'] and
                  all(st['cluster']['model_rev'] == want and st['topk_cache']['version'] == want
                      and st['cluster']['applied_stream_seq'] == items for st in sts))
            seen.append(want if ok else None)
            return want if len(seen) > 10 and seen[-10:] == [want] * 10 else None
        try:
            rev = wait_for(caught_up, 30, 'the replicas at the latest model revision')
        except AssertionError as e:
            raise AssertionError('%s: items stream at %r, leader %r, replicas %r, seen %r' % (
                e, (cl.stream('SV_PAIRS_ITEMS') or {}).get('state'), lead.status()['cluster'],
                [(r.status()['cluster'], r.status()['topk_cache']) for r in (r1, r2)],
                seen[-12:]))
        queries = [(b'i%d' % i, b'n%d' % (i % 4)) for i in range(0, 60, 3)]
        pos1, rows1, tk1 = replica_answers(r1, queries)
        pos2, rows2, tk2 = replica_answers(r2, queries)
        assert pos1 == pos2 and pos1[0] == rev, (pos1, pos2, rev)
        assert rows1 == rows2 and tk1 == tk2, 'the replicas answer differently: %r' % (
            [(i, x, y) for i, (x, y) in enumerate(zip(rows1, rows2)) if x != y] +
            [(i, x, y) for i, (x, y) in enumerate(zip(tk1, tk2)) if x != y])
        assert all(q['version'] == rev for q in tk1) and all(x['version'] == rev for x in rows1)
        hit_ids = {h for q in tk1 for h, _ in q['hits']}
        assert b'n4' not in hit_ids and b'n5' not in hit_ids, 'a deleted item was found'
        print('replicas: identical SCORE and TOPK answers at (revision %d, items seq %d)'
              % pos1)

        # read-your-writes: an item written at the leader, asked of a replica at once
        s = lead.sock(zmq.DEALER, 'ingest-acked.sock')
        s.send_multipart(item_put(b'fresh', np.ones(D, '<f4'), 900))
        w = parse_reply(s.recv_multipart())
        s.close(0)
        assert w['status'] == 'OK' and w['pos'][1] > 0, w
        q = r2.sock(zmq.DEALER, 'query.sock')
        q.setsockopt(zmq.RCVTIMEO, 20000)
        # the replica has it once the leader's feed copied it: within cluster.read_wait
        # (2 s) on an idle machine; a loaded one may answer BEHIND, and the client asks again
        for attempt in range(5):
            q.send_multipart(with_pos(topk([np.ones(D, '<f4')], 3, D, req_id=3), rev,
                                      w['pos'][1]))
            ans = parse_reply(q.recv_multipart())
            if ans['status'] != 'BEHIND':
                break
            assert ans['pos'][1] < w['pos'][1], ans
        assert ans['status'] == 'OK' and ans['pos'][1] >= w['pos'][1], ans
        assert ans['queries'][0]['hits'][0][0] == b'fresh', ans   # its own vector, nearest
        q.send_multipart(with_pos(topk([b'fresh'], 3, D, req_id=4), rev + 1000, 0))
        t0 = time.monotonic()
        ans = parse_reply(q.recv_multipart())
        assert ans['status'] == 'BEHIND' and rev <= ans['pos'][0] < rev + 1000, ans
        assert 1.5 < time.monotonic() - t0 < 10, time.monotonic() - t0
        q.close(0)
        print('read-your-writes: the new item found at sequence %d; a future version BEHIND'
              % w['pos'][1])

        # a replica whose durable consumer vanished on the server: its feed delivers
        # nothing while the items stream moves on, and it follows the stream again
        r = cl.api('$JS.API.CONSUMER.DELETE.SV_PAIRS_ITEMS.sv-r2')
        assert r.get('success'), r
        s = lead.sock(zmq.DEALER, 'ingest-acked.sock')
        s.send_multipart(item_put(b'after-delete', rnd.standard_normal(D).astype('<f4'), 901))
        w = parse_reply(s.recv_multipart())
        s.close(0)
        assert w['status'] == 'OK', w
        status_until(r2, lambda st: st['cluster']['items_seq'] >= w['pos'][1],
                     'r2 follows the items stream again', 30)
        assert 'following it again' in r2.logtext()
        print('r2 followed the items stream again after its consumer was deleted')

        # the Python client, unchanged, through a gateway: CLIENT_STATE, then an acked publish
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..',
                                        'python'))
        import simverify   # noqa: E402 - the source tree's copy
        with simverify.Client(lead.dir, client_id='py-pub', timeout=20) as pc:
            xa = rnd.standard_normal((10, D)).astype('<f4')
            xb = rnd.standard_normal((10, D)).astype('<f4')
            ack = pc.publish(xa, xb, np.arange(10) % 2, acked=True)
            assert ack.committed == 10, ack
        print('the Python client published through the gateway: %r' % (ack,))
        # a graceful stop of the leader hands the lease over at once, not after its TTL
        cur = wait_for(lambda: next((d for d in (a, b) if role(d) == 'leader'), None), 30,
                       'a leader before the graceful stop')
        other = b if cur is a else a
        t0 = time.monotonic()
        assert cur.stop() == 0
        t_stopped = time.monotonic()
        assert 'the lease is released' in cur.logtext(), 'the stopping leader kept its lease'
        status_until(other, lambda st: st['cluster']['role'] == 'leader',
                     'the standby leads after a graceful stop', 10)
        print('graceful stop: the standby leads %.2f s after the leader stopped (stop took '
              '%.2f s; lease TTL %.1f s)' % (time.monotonic() - t_stopped, t_stopped - t0, TTL_S))
        assert time.monotonic() - t_stopped < TTL_S
        for d in (a, b):
            if d.proc is not None:
                assert d.stop() == 0
            seqs = fsck_clients(os.path.join(d.dir, 'store'))
            want = set(range(1, (N_MSGS + 1) * PER_MSG + 1))
            assert len(seqs) == len(set(seqs)), 'a client seq logged twice'
            assert set(seqs) == want, (len(set(seqs)), len(want))
        print('exactly once: %d acked pairs logged once on each trainer' % len(want))
        # a leader with other lockstep settings takes the lease (written here over the
        # NATS protocol, as a node of another configuration would hold it): the old
        # leader loses it, and both trainers stop with status 1, naming the key
        start(a)
        status_until(a, lambda st: st['cluster']['role'] == 'leader', 'a leads again', 30)
        start(b)
        assert role(b) == 'standby'
        ack = cl.api('$KV.SV_PAIRS_lease.trainer', b'intruder\ntrain.lr=0.5\n')
        assert 'seq' in ack, ack
        for d in (a, b):
            assert d.proc.wait(20) == 1
        for d in (a, b):
            assert d.stop() == 1   # already exited: its status, and the log checked
            log = d.logtext()
            assert 'SV-CLUSTER-LOCKSTEP' in log and 'train.lr 0.001 here, 0.5 there' in log, log
        print('lockstep: a leader with another train.lr stops both trainers (exit 1)')
    finally:
        for d in (a, b, r1, r2):
            if d.proc is not None:
                d.proc.kill()
                d.proc.wait()
            tail = d.logtext()[-12000:] if os.path.exists(d.log_path) else ''
            d.close()
            if sys.exc_info()[0] is not None:
                print('---- log of %s ----\n%s' % (d.dir, tail))
        subprocess.run(['sh', NC, 'stop', cl.dir], timeout=60)
        # a failed run's logs and stores stay for a look (any run's with SV_TEST_KEEP)
        if sys.exc_info()[0] is None and not os.environ.get('SV_TEST_KEEP'):
            subprocess.run(['rm', '-rf', root])
        else:
            print('kept', root)


if __name__ == '__main__':
    t0 = time.monotonic()
    test()
    print('PASS test_cluster (%.1f s)' % (time.monotonic() - t0))
