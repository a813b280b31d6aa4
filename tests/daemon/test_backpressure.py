#!/usr/bin/python3
"""test_backpressure.py SIMVERIFYD SV_FSCK - training slower than ingest.

The daemon runs with SV_DEBUG_STEP_DELAY_MS (every step sleeps) and a small
ingest queue (limits.max_pending_pairs, which sets the ingest sockets'
receive high-water mark).  Then:
  1. PUSH: a publisher sends as fast as it can with blocking sends.  Once
     the queues are full its sends block (each waits for room) instead of
     failing or dropping: over the second half of the run its rate is the
     training rate, and at the end every message it sent was logged (pairs
     logged == pairs sent).  The daemon's RSS, sampled
     every 100 ms, stays within a bound of its starting value.
  2. Acked: acks come after the commit, not after training: with training
     far behind, the daemon is SIGKILLed right after a run of acks, and
     every acked message's (client, seq) is in the store (sv_fsck --clients).
"""
import os
import subprocess
import sys
import time

import numpy as np
import zmq

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from svclient import Daemon, pairs, parse_reply, status_until  # noqa

BIN, FSCK = sys.argv[1], sys.argv[2]
SANITIZED = os.environ.get('SV_SANITIZED') == '1'
D, PER_MSG, DELAY_MS, HWM, SECONDS = 64, 8, 20, 4, 6.0
OPTS = ['model.d_in=%d' % D, 'model.d_out=8', 'train.batch_pairs=8', 'train.max_wait_ms=20ms',
        'store.map_size=64MiB', 'limits.max_pending_pairs=64', 'checkpoint.every_steps=0',
        'checkpoint.every_s=0']
rng = np.random.default_rng(5)


def rss_kib(pid):
    """Anonymous resident memory (heap, stacks): RssAnon, not VmRSS, which
    also counts the LMDB map's file pages and so grows with the store."""
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith('RssAnon:'):
                return int(line.split()[1])
    return 0


def batch(req=0, client=None):
    rows = [(i % 2, rng.standard_normal(D), rng.standard_normal(D)) for i in range(PER_MSG)]
    return pairs('PAIR_BATCH', rows, D, req_id=req, client=client)


def test_push_blocks_and_loses_nothing(d):
    push = d.ctx.socket(zmq.PUSH)
    push.setsockopt(zmq.SNDHWM, HWM)
    push.setsockopt(zmq.SNDBUF, 65536)
    push.setsockopt(zmq.SNDTIMEO, 100)
    push.setsockopt(zmq.LINGER, 10000)
    push.connect(d.ep('ingest.sock'))
    msgs = [batch() for _ in range(8)]
    sent = blocked = 0
    stamps = []
    rss = [rss_kib(d.proc.pid)]
    t0 = last = time.monotonic()
    while time.monotonic() - t0 < SECONDS:
        try:
            push.send_multipart(msgs[sent % len(msgs)])
            sent += 1
            stamps.append(time.monotonic() - t0)
        except zmq.Again:
            blocked += 1          # no room: the send waited 100 ms; try again
        if time.monotonic() - last >= 0.1:
            rss.append(rss_kib(d.proc.pid))
            last = time.monotonic()
    elapsed = time.monotonic() - t0
    push.close()   # linger: what is queued is delivered, nothing dropped
    # once the queues are full the publisher runs at the training rate:
    # one PER_MSG-pair step per DELAY_MS at most
    capacity = 1000.0 / DELAY_MS
    late = [t for t in stamps if t >= SECONDS / 2]
    rate = len(late) / (SECONDS / 2)
    # queued at most: both high-water marks plus the kernel's socket buffers
    # (a few hundred 4 KiB messages); everything else had to wait for training
    buffered = sent - capacity * elapsed
    st = status_until(d, lambda j: j['counters']['pairs']['logged'] >= sent * PER_MSG,
                      'all sent pairs logged', timeout=60)
    logged = st['counters']['pairs']['logged']
    assert logged == sent * PER_MSG, (logged, sent)
    assert blocked > 0, 'the publisher never waited'
    assert buffered <= 400, ('publisher outran training', sent, capacity * elapsed)
    assert rate <= 2 * capacity, ('not throttled to the training rate', rate, capacity)
    base, peak = rss[0], max(rss)
    third = max(1, len(rss) // 3)
    r_early, r_late = max(rss[:third]), max(rss[-third:])
    if not SANITIZED:  # ASan's quarantine keeps freed memory resident
        assert peak - base < 64 * 1024, ('RSS grew', base, peak)
        assert r_late - r_early < 16 * 1024, ('RSS keeps growing', r_early, r_late)
    print('  push: %d messages (%d pairs) in %.1fs, %d blocked sends of 100 ms; second half '
          '%.0f messages/s against a training capacity of %.0f; RssAnon %d -> peak %d KiB '
          '(early %d, late %d)' % (sent, logged, elapsed, blocked, rate, capacity, base, peak,
                                   r_early, r_late))


def test_acks_mean_committed(d):
    s = d.sock(zmq.DEALER, 'ingest-acked.sock')
    s.setsockopt(zmq.RCVTIMEO, 200)
    acked, seq, t0 = set(), 0, time.monotonic()
    inflight = 0
    # at least 2 s of acked traffic, and at least 4 acks: the trainer may first
    # have to work off the PUSH backlog of the test above (slowed on purpose)
    while time.monotonic() - t0 < 2.0 or (len(acked) < 4 and time.monotonic() - t0 < 60.0):
        while inflight < 4:
            seq += 1
            s.send_multipart(batch(req=seq, client=(b'bp', seq * PER_MSG)))  # row i: +i
            inflight += 1
        try:
            r = parse_reply(s.recv_multipart())
        except zmq.Again:
            continue
        inflight -= 1
        assert r['status'] == 'OK' and r['ack']['committed'] == PER_MSG, r
        acked.add(r['req'])
    st = d.status()
    behind = st['last_seq'] - st['applied_seq']
    d.proc.kill()   # at once, with training behind: what was acked must be stored
    d.proc.wait()
    d.proc = None
    d.log.close()
    out = subprocess.run([FSCK, os.path.join(d.dir, 'store'), '--clients'],
                                       capture_output=True, text=True)
    assert out.returncode == 0, out
    have = {int(ln.split()[1]) // PER_MSG for ln in out.stdout.split('\n')
            if ln.startswith(b'bp'.hex() + ' ')}
    missing = acked - have
    assert acked and not missing, ('acked but not stored', sorted(missing)[:10])
    print('  acked: %d messages acked, training %d pairs behind at the kill, all stored'
          % (len(acked), behind))


def main():
    d = Daemon(BIN, opts=OPTS)
    os.environ['SV_DEBUG_STEP_DELAY_MS'] = str(DELAY_MS)
    try:
        d.start()
        test_push_blocks_and_loses_nothing(d)
        test_acks_mean_committed(d)
        print('PASS')
    finally:
        os.environ.pop('SV_DEBUG_STEP_DELAY_MS', None)
        d.close()


if __name__ == '__main__':
    main()
