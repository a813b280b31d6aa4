#!/usr/bin/python3
"""test_kill9.py SIMVERIFYD SV_FSCK [CYCLES] - SIGKILL under acknowledged load.

A publisher keeps a window of acked PAIR_BATCH messages in flight on the
acked ingest socket, each pair keyed (client "pub", 4 seq + row) and resent after every
restart until it is answered (OK, or DUPLICATE when its commit beat the
kill).  Meanwhile the daemon is SIGKILLed at random moments (uniform within
a cycle, so kills land in commits, training steps and checkpoints) and
restarted on the same state directory.  CYCLES kills: 60 by default, 10
when CI=true.  At the end:
  - every acked message's key is in the log exactly once, and the log holds
    exactly 4 pairs per message (sv_fsck --clients);
  - replay is on (idle rounds off): batches cut by max_wait_ms are filled
    with replayed pairs, logged as fill records, which recovery must
    apply exactly (test_replay.py kills during idle rounds);
  - after FLUSH everything logged is trained (applied_seq == last_seq), and
    one more SIGKILL brings back the same model by replay (scores equal bit
    for bit, same step count);
  - mdb_stat reads the environment and sv_fsck's invariants hold;
  - a BACKUP is started in every cycle, so kills land in backups too: every
    backup under its final name is whole (sv_fsck passes on it); a killed
    one is left as NAME.partial only.
Fixed seed; the kill moments come from it too."""
import os
import random
import shutil
import subprocess
import sys
import threading
import time

import zmq

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from svclient import Daemon, admin, item_put, pairs, parse_reply, status_until  # noqa

BIN, FSCK = sys.argv[1], sys.argv[2]
CI = os.environ.get('CI', '') == 'true'
CYCLES = int(sys.argv[3]) if len(sys.argv) > 3 else (10 if CI else 60)
D, N_ITEMS, PER_MSG, WINDOW = 8, 16, 4, 8
OPTS = ['model.d_in=%d' % D, 'model.d_out=4', 'train.batch_pairs=8', 'train.max_wait_ms=10ms',
        'checkpoint.every_steps=7', 'checkpoint.every_s=0', 'store.map_size=4MiB',
        'store.keep_versions=3', 'train.replay=on', 'train.replay_idle=1h']
rnd = random.Random(20261128)


def message(seq):
    rows = [(rnd.randrange(2), b'i%d' % rnd.randrange(N_ITEMS), b'i%d' % rnd.randrange(N_ITEMS))
            for _ in range(PER_MSG)]
    return pairs('PAIR_BATCH', rows, D, req_id=seq, client=(b'pub', seq * PER_MSG))


class Publisher:
    """Acked messages: sent, in flight, answered."""

    def __init__(self, d):
        self.d = d
        self.next_seq = 1
        self.unacked = {}   # seq -> frames
        self.acked = set()
        self.dups = 0
        self.sock = None

    def connect(self):
        if self.sock is not None:
            self.sock.close(0)
        self.sock = self.d.sock(zmq.DEALER, 'ingest-acked.sock')
        self.sock.setsockopt(zmq.RCVTIMEO, 200)
        for seq in sorted(self.unacked):   # resend what has no answer yet
            self.sock.send_multipart(self.unacked[seq])

    def pump(self, until):
        """Publish until the daemon dies or time passes `until`."""
        while time.monotonic() < until:
            while len(self.unacked) < WINDOW:
                seq = self.next_seq
                self.next_seq += 1
                self.unacked[seq] = message(seq)
                self.sock.send_multipart(self.unacked[seq])
            try:
                r = parse_reply(self.sock.recv_multipart())
            except zmq.Again:
                if self.d.proc.poll() is not None:
                    return
                continue
            assert r['status'] in ('OK', 'DUPLICATE'), r
            if r['status'] == 'OK':
                assert r['ack']['committed'] == PER_MSG, r
            else:
                self.dups += 1
            self.unacked.pop(r['req'], None)
            self.acked.add(r['req'])

    def drain(self, timeout=20.0):
        end = time.monotonic() + timeout
        while self.unacked and time.monotonic() < end:
            try:
                r = parse_reply(self.sock.recv_multipart())
            except zmq.Again:
                continue
            assert r['status'] in ('OK', 'DUPLICATE'), r
            self.unacked.pop(r['req'], None)
            self.acked.add(r['req'])
        assert not self.unacked, 'unanswered: %r' % sorted(self.unacked)


def scores(d, probe):
    r = d.request('query.sock', pairs('SCORE_BATCH', [(0, a, b) for a, b in probe], D, req_id=1))
    assert r['status'] == 'OK', r
    return [row['score'] for row in r['rows']]


def fsck(store, *extra):
    r = subprocess.run([FSCK, store] + list(extra), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr
    return r.stdout


def main():
    d = Daemon(BIN, opts=OPTS, abstract_notify=False)
    store = os.path.join(d.dir, 'store')
    try:
        d.start()
        s = d.sock(zmq.DEALER, 'ingest-acked.sock')
        for i in range(N_ITEMS):
            s.send_multipart(item_put(b'i%d' % i, [rnd.gauss(0, 1) for _ in range(D)], req_id=i))
        for _ in range(N_ITEMS):
            assert parse_reply(s.recv_multipart())['status'] == 'OK'
        s.close()
        pub = Publisher(d)
        pub.connect()
        t0 = time.monotonic()
        for cycle in range(CYCLES):
            # every other cycle the kill comes a few ms into the backup
            delay = rnd.uniform(0.02, 0.4) if cycle % 2 else rnd.uniform(0.001, 0.015)
            killer = threading.Timer(delay, d.proc.kill)
            bk = d.sock(zmq.DEALER, 'admin.sock')
            bk.send_multipart(admin('BACKUP', 1, 'bk-%d' % cycle))
            killer.start()
            pub.pump(time.monotonic() + delay + 5)
            killer.join()
            bk.close(0)
            d.proc.wait()
            d.proc = None
            d.log.close()
            d.start()
            pub.connect()
        pub.pump(time.monotonic() + 0.3)
        pub.drain()
        assert 'SV-RECOVER-REPLAY' in d.logtext()
        r = d.admin('FLUSH')
        assert r['status'] == 'OK', r
        st = d.status()
        msgs = pub.next_seq - 1
        assert sorted(pub.acked) == list(range(1, msgs + 1))
        logged = msgs * PER_MSG
        # FLUSH cuts the open batch with a control record: it may follow the last pair
        assert st['backlog'] == 0 and st['applied_seq'] >= st['last_seq'] - 1, st
        # one more kill: the model comes back by replay, bit for bit
        probe = [(b'i%d' % i, b'i%d' % ((i * 5 + 3) % N_ITEMS)) for i in range(N_ITEMS)]
        before = scores(d, probe)
        d.proc.kill()
        d.proc.wait()
        d.proc = None
        d.log.close()
        d.start()
        st2 = d.status()
        assert st2['steps'] == st['steps'] and st2['last_seq'] == st['last_seq'], (st, st2)
        assert st2['applied_seq'] >= st['applied_seq'], (st, st2)  # + a trailing cut record
        assert scores(d, probe) == before, 'W after replay differs'
        assert d.stop() == 0
        # the store: LMDB's view and ours
        if shutil.which('mdb_stat'):
            r = subprocess.run(['mdb_stat', '-a', '-e', store], capture_output=True, text=True)
            assert r.returncode == 0, r.stderr
        whole = 0
        for name in sorted(os.listdir(os.path.join(d.dir, 'backups'))):
            if not name.endswith('.partial'):
                fsck(os.path.join(d.dir, 'backups', name))  # complete, or not there
                whole += 1
        print('%d backups whole under their names, %d left as .partial by a kill' %
              (whole, sum(n.endswith('.partial')
                          for n in os.listdir(os.path.join(d.dir, 'backups')))))
        out = fsck(store, '--clients')
        lines = out.strip().split('\n')
        summary, rows = lines[-1], lines[:-1]
        keys = [int(ln.split()[1]) for ln in rows if ln.startswith(b'pub'.hex() + ' ')]
        # row i of message seq is keyed seq * PER_MSG + i
        assert sorted(keys) == list(range(PER_MSG, (msgs + 1) * PER_MSG)), 'each pair once'
        records, control = [int(x) for x in summary.split(':')[1].split(' records (')[0:1]] + \
            [int(summary.split('(')[1].split(' control')[0])]
        assert records - control == logged, (summary, logged)
        print('%d kills in %.1fs: %d messages (%d pairs) acked, %d answered DUPLICATE after a '
              'restart; %s' % (CYCLES, time.monotonic() - t0, msgs, logged, pub.dups, summary))
    finally:
        d.close()


if __name__ == '__main__':
    main()
