#!/usr/bin/python3
"""test_bad_input.py SIMVERIFYD [SV_FSCK] - every class of malformed input against the
real daemon (the table in docs/BAD_INPUT.md).

Each row sends one message to one socket and names what it must get: a
reply status (and MALFORMED reason) on the acked ingest, query and admin
sockets, or only a counted rejection on the fire-and-forget PUSH socket.  Valid messages are mixed in.
After the whole table the daemon must still serve, every reject counter
must equal the number of rows that expect it, and the store must hold
exactly the valid items and pairs.  Limits are lowered (64 KiB messages,
16 pairs, 32-byte ids, k 10) so the limit rows stay small."""
import os
import struct
import subprocess
import sys
from collections import Counter

import numpy as np
import zmq

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from svclient import Daemon, VERBS, item_put, item_get, pairs, admin, parse_reply, status_until, run_tests  # noqa

D = 8
MAX_MSG, MAX_BATCH, MAX_ID, MAX_K = 65536, 16, 32, 10
OPTS = ['model.d_in=%d' % D, 'model.d_out=4', 'train.batch_pairs=4', 'train.max_wait_ms=20ms',
        'store.map_size=8MiB', 'limits.max_msg_bytes=%d' % MAX_MSG,
        'limits.max_batch_pairs=%d' % MAX_BATCH, 'limits.max_id_bytes=%d' % MAX_ID,
        'limits.max_k=%d' % MAX_K, 'query.min_window_pairs=0']
BIN = sys.argv[1]
FSCK = sys.argv[2] if len(sys.argv) > 2 else None
ONES = np.ones(D, np.float32)


def hdr(verb, req=1, count=0, dim=0, arg=0, flags=0, magic=b'SV', version=1, status=0,
        reason=0, reserved=0):
    v = VERBS[verb] if isinstance(verb, str) else verb
    return struct.pack('<2sBBHHQIIIHH', magic, version, v, flags, status, req, count, dim, arg,
                       reason, reserved)


def row(label=1, fa=1, fb=1, la=0, lb=0):
    return struct.pack('<BBBBB3x', label, fa, fb, la, lb)


def id_pair(a=b'a', b=b'b', label=1, verb='PAIR', req=1):
    return [hdr(verb, req, 1, 0), row(label, 1, 1, len(a), len(b)), a + b, b'']


def vec_pair(va, vb, verb='PAIR', req=1, dim=D):
    return [hdr(verb, req, 1, dim), row(1, 2, 2), b'', np.concatenate([va, vb]).astype('<f4').tobytes()]


def nan_vec():
    v = ONES.copy()
    v[3] = np.nan
    return v


def inf_vec():
    v = ONES.copy()
    v[0] = -np.inf
    return v


def topk(k, req=1):
    return [hdr('TOPK', req, 1, 0, arg=k), struct.pack('<BBH', 1, 1, 0), b'a', b'']


# (name, socket, frames, expected) - expected: ('reply', STATUS, reason name or None)
# or ('count', reject name) for messages that get no reply.  Sockets: acked
# (ROUTER ingest), push (PULL ingest), query, admin.  'ok' rows are valid input.
TABLE = [
    ('valid items a..e', 'acked', None, ('valid-items',)),
    ('truncated header', 'acked', [b'SV\x01\x10'], ('reply', 'MALFORMED', 'truncated')),
    ('empty frame', 'acked', [b''], ('reply', 'MALFORMED', 'truncated')),
    ('wrong magic', 'acked', [hdr('PAIR', magic=b'XX', count=1)] + id_pair()[1:],
     ('reply', 'MALFORMED', 'bad_magic')),
    ('wrong version', 'acked', [hdr('PAIR', version=2, count=1)] + id_pair()[1:],
     ('reply', 'MALFORMED', 'bad_version')),
    ('unknown verb', 'acked', [hdr(0x7e)], ('reply', 'MALFORMED', 'unknown_verb')),
    ('reply flag on a request', 'acked', [hdr('PAIR', count=1, flags=1)] + id_pair()[1:],
     ('reply', 'MALFORMED', 'bad_flags')),
    ('reserved field set', 'acked', [hdr('PAIR', count=1, reserved=9)] + id_pair()[1:],
     ('reply', 'MALFORMED', 'reserved_nonzero')),
    ('missing frames', 'acked', id_pair()[:2], ('reply', 'MALFORMED', 'frame_count')),
    ('table too long', 'acked', [hdr('PAIR', 1, 1), row(1, 1, 1, 1, 1) + b'\0', b'ab', b''],
     ('reply', 'MALFORMED', 'frame_size')),
    ('wrong dim in header', 'acked', vec_pair(np.ones(3), np.ones(3), dim=3),
     ('reply', 'MALFORMED', 'wrong_dim')),
    ('vector frame short', 'acked', [hdr('PAIR', 1, 1, D), row(1, 2, 2), b'', b'\0' * (8 * D - 4)],
     ('reply', 'MALFORMED', 'wrong_dim')),
    ('NaN in a vector', 'acked', vec_pair(ONES, nan_vec()), ('reply', 'MALFORMED', 'nonfinite')),
    ('Inf in a vector', 'acked', vec_pair(inf_vec(), ONES), ('reply', 'MALFORMED', 'nonfinite')),
    ('NaN in an item', 'acked', item_put(b'z', nan_vec()), ('reply', 'MALFORMED', 'nonfinite')),
    ('empty id', 'acked', [hdr('PAIR', 1, 1), row(1, 1, 1, 0, 1), b'b', b''],
     ('reply', 'MALFORMED', 'empty_id')),
    ('over-long id', 'acked', id_pair(b'x' * (MAX_ID + 1)), ('reply', 'MALFORMED', 'id_too_long')),
    ('id with NUL', 'acked', id_pair(b'a\0'), ('reply', 'MALFORMED', 'bad_id')),
    ('label 2', 'acked', id_pair(label=2), ('reply', 'MALFORMED', 'bad_label')),
    ('side flags 0', 'acked', [hdr('PAIR', 1, 1), row(1, 0, 1, 0, 1), b'b', b''],
     ('reply', 'MALFORMED', 'bad_side')),
    ('count 0', 'acked', [hdr('PAIR_BATCH', 1, 0), b'', b'', b''], ('reply', 'MALFORMED', 'bad_count')),
    ('batch over max_batch_pairs', 'acked',
     pairs('PAIR_BATCH', [(1, b'a', b'b')] * (MAX_BATCH + 1), D), ('reply', 'MALFORMED', 'too_many')),
    ('message over max_msg_bytes', 'acked',
     [hdr('ITEM_PUT', 1, 1, D), b'big', ONES.tobytes() + b'\0' * MAX_MSG],
     ('reply', 'MALFORMED', 'oversize')),
    ('CLIENT flag with empty client id', 'acked',
     [hdr('PAIR', 1, 1, flags=2), row(1, 1, 1, 1, 1), b'ab', b'', struct.pack('<Q', 5)],
     ('reply', 'MALFORMED', 'empty_client')),
    ('too many frames', 'acked', id_pair() + [b''] * 16, ('reply', 'MALFORMED', 'frame_count',
                                                          'too_many_frames')),
    ('id-only pair naming a missing item', 'acked',
     pairs('PAIR_BATCH', [(1, b'a', b'nosuch'), (0, b'a', b'c')], D),
     ('reply', 'PARTIAL', None, 'unknown_item')),
    ('query verb on ingest', 'acked', pairs('SCORE', [(0, b'a', b'b')], D),
     ('reply', 'REFUSED', None, 'wrong_socket')),
    ('valid acked pairs with client id', 'acked',
     pairs('PAIR_BATCH', [(1, b'a', b'b'), (0, b'a', b'c'), (1, b'd', b'e')], D, client=(b'svc', 1)),
     ('reply', 'OK', None)),
    ('repeat of a committed client seq', 'acked',
     pairs('PAIR_BATCH', [(1, b'a', b'b'), (0, b'a', b'c'), (1, b'd', b'e')], D, client=(b'svc', 1)),
     ('reply', 'DUPLICATE', None)),
    # fire and forget: no reply, a counted rejection
    ('push: wrong magic', 'push', [hdr('PAIR', magic=b'QQ', count=1)] + id_pair()[1:],
     ('count', 'bad_magic')),
    ('push: NaN', 'push', vec_pair(nan_vec(), ONES), ('count', 'nonfinite')),
    ('push: label 7', 'push', id_pair(label=7), ('count', 'bad_label')),
    ('push: too many frames', 'push', [b'x'] * 20, ('count', 'too_many_frames')),
    ('push: missing item', 'push', id_pair(b'a', b'gone'), ('count', 'unknown_item')),
    ('push: valid pairs', 'push', pairs('PAIR_BATCH', [(1, b'b', b'c'), (0, b'c', b'e')], D),
     ('push-ok',)),
    # queries
    ('query: NaN', 'query', [hdr('SCORE', 1, 1, D), row(0, 2, 2), b'',
                             np.concatenate([ONES, nan_vec()]).astype('<f4').tobytes()],
     ('reply', 'MALFORMED', 'nonfinite')),
    ('query: label 1 in SCORE', 'query', id_pair(verb='SCORE', label=1),
     ('reply', 'MALFORMED', 'bad_label')),
    ('query: CLIENT flag on SCORE', 'query',
     [hdr('SCORE', 1, 1, flags=2), row(0, 1, 1, 1, 1), b'ab', b'', struct.pack('<Q', 1) + b'c'],
     ('reply', 'MALFORMED', 'bad_flags')),
    ('query: k 0', 'query', topk(0), ('reply', 'MALFORMED', 'bad_k')),
    ('query: k over max_k', 'query', topk(MAX_K + 1), ('reply', 'MALFORMED', 'bad_k')),
    ('query: missing item', 'query', id_pair(b'a', b'nosuch', 0, 'SCORE'), ('reply', 'NOT_FOUND', None)),
    ('query: ingest verb', 'query', id_pair(), ('reply', 'REFUSED', None, 'wrong_socket')),
    ('query: too many frames', 'query', [hdr('STATUS')] + [b''] * 20,
     ('reply', 'MALFORMED', 'frame_count', 'too_many_frames')),
    # admin
    ('admin: BACKUP path with NUL', 'admin', [hdr('BACKUP'), b'/tmp/a\0b'],
     ('reply', 'MALFORMED', 'bad_text')),
    ('admin: ROLLBACK to a missing version', 'admin', admin('ROLLBACK', 1, 999999),
     ('reply', 'NOT_FOUND', None)),
    ('admin: query verb', 'admin', id_pair(verb='SCORE', label=0),
     ('reply', 'REFUSED', None, 'wrong_socket')),
]

SOCK = dict(acked='ingest-acked.sock', query='query.sock', admin='admin.sock')
REASONS = ['none', 'no_frames', 'truncated', 'bad_magic', 'bad_version', 'unknown_verb',
           'bad_flags', 'reserved_nonzero', 'frame_count', 'frame_size', 'wrong_dim',
           'nonfinite', 'empty_id', 'id_too_long', 'bad_id', 'bad_label', 'bad_side',
           'oversize', 'too_many', 'bad_count', 'bad_k', 'bad_text', 'bad_status',
           'empty_client', 'too_large', 'seq_wrap']


def expected_rejects():
    c = Counter()
    for name, _, _, exp in TABLE:
        if exp[0] == 'count':
            c[exp[1]] += 1
        elif exp[0] == 'reply' and len(exp) > 3:  # counted under another name
            c[exp[3]] += 1
        elif exp[0] == 'reply' and exp[2] is not None:
            c[exp[2]] += 1
    return c


def send_table(d):
    """Run every row; returns the list of failures (name, why)."""
    bad = []
    rng = np.random.default_rng(11)
    push = d.sock(zmq.PUSH, 'ingest.sock')
    socks = {k: d.sock(zmq.DEALER, v) for k, v in SOCK.items()}
    for name, where, frames, exp in TABLE:
        if exp[0] == 'valid-items':
            for i, it in enumerate([b'a', b'b', b'c', b'd', b'e']):
                socks['acked'].send_multipart(item_put(it, rng.standard_normal(D), req_id=900 + i))
                r = parse_reply(socks['acked'].recv_multipart())
                if r['status'] != 'OK':
                    bad.append((name, r))
            continue
        if where == 'push':
            push.send_multipart(frames)
            continue
        s = socks[where]
        s.send_multipart(frames)
        if exp[0] == 'count':
            continue
        try:
            fr = s.recv_multipart()
            r = parse_reply(fr[1:] if fr and fr[0] == b'' else fr)
        except zmq.Again:
            bad.append((name, 'no reply'))
            socks[where] = d.sock(zmq.DEALER, SOCK[where])
            continue
        reason = REASONS[r['reason']] if r['reason'] < len(REASONS) else r['reason']
        if r['status'] != exp[1] or (exp[2] is not None and reason != exp[2]):
            bad.append((name, 'got %s/%s (%r), want %s/%s' % (r['status'], reason, r['msg'],
                                                              exp[1], exp[2])))
        elif exp[1] == 'MALFORMED' and not r['msg']:
            bad.append((name, 'MALFORMED without a message'))
    push.close()
    for s in socks.values():
        s.close()
    return bad


def test_table():
    d = Daemon(BIN, opts=OPTS)
    try:
        d.start()
        bad = send_table(d)
        assert not bad, '\n'.join('%s: %s' % b for b in bad)
        # valid: 5 items; pairs 1 (partial) + 3 (client batch) + 2 (push) = 6
        st = status_until(d, lambda j: j['counters']['pairs']['logged'] >= 6 and
                          sum(j['counters']['rejects'].values()) >= sum(expected_rejects().values()),
                          'table processed')
        got = Counter({k: v for k, v in st['counters']['rejects'].items() if v})
        want = expected_rejects()
        assert got == want, 'reject counters %r, want %r' % (dict(got), dict(want))
        assert st['items'] == 5, st
        assert st['counters']['pairs']['logged'] == 6, st['counters']
        # still serving: a query and an acked pair
        r = d.request('query.sock', pairs('SCORE', [(0, b'a', b'a')], D, req_id=3))
        assert r['status'] == 'OK' and abs(r['rows'][0]['score'] - 1) < 1e-5, r
        r = d.request('ingest-acked.sock', pairs('PAIR', [(1, b'a', b'e')], D, req_id=4))
        assert r['status'] == 'OK' and r['ack']['committed'] == 1, r
        assert d.proc.poll() is None
        assert d.stop() == 0
        if FSCK:  # the store itself: exactly the 7 valid pairs (plus batch-cut records)
            r = subprocess.run([FSCK, os.path.join(d.dir, 'store')], capture_output=True, text=True)
            assert r.returncode == 0, r
            n = int(r.stdout.split(': ')[1].split(' records')[0])
            ctl = int(r.stdout.split('(')[1].split(' control')[0])
            assert n - ctl == 7 and ', 5 items' in r.stdout, r.stdout
    finally:
        d.close()


def test_frame_over_transport_cap():
    """A frame over 2 x max_msg_bytes: ZeroMQ drops the connection before
    buffering it (ZMQ_MAXMSGSIZE); no reply, the daemon serves on."""
    d = Daemon(BIN, opts=OPTS)
    try:
        d.start()
        s = d.sock(zmq.DEALER, 'ingest-acked.sock')
        s.setsockopt(zmq.RCVTIMEO, 1000)
        s.send_multipart([hdr('ITEM_PUT', 1, 1, D), b'big', b'\0' * (3 * MAX_MSG)])
        try:
            s.recv_multipart()
            raise AssertionError('reply to a frame over the transport cap')
        except zmq.Again:
            pass
        s.close()
        r = d.request('ingest-acked.sock', item_put(b'ok', ONES, req_id=2))
        assert r['status'] == 'OK', r
        assert d.status()['items'] == 1
        assert d.stop() == 0
    finally:
        d.close()


TESTS = [test_table, test_frame_over_transport_cap]

if __name__ == '__main__':
    sys.exit(run_tests(TESTS))
