#!/usr/bin/python3
"""test_curve.py SIMVERIFYD [SIMVERIFYCTL] - CURVE on tcp:// endpoints (docs/SECURITY.md).

The real daemon with query, admin and acked ingest on 127.0.0.1 and a CURVE
server key; per-socket allow-lists.  A listed key is admitted and served; an
unknown key, a key listed for another socket and a client without CURVE are
refused at the handshake (the client's monitor reports the ZAP status 400)
and never get a reply; the daemon logs and keeps serving.  Also: a tcp://
admin endpoint without CURVE is a config error, an unreadable key stops the
start, and (when given) `simverifyctl keygen` writes a usable key pair."""
import os
import socket
import stat
import subprocess
import sys
import tempfile
import time

import numpy as np
import zmq
import zmq.utils.monitor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from svclient import Daemon, item_put, pairs, admin, parse_reply, run_tests  # noqa

D_IN = 8
BASE = ['model.d_in=%d' % D_IN, 'model.d_out=4', 'train.batch_pairs=4', 'store.map_size=8MiB']
BIN = sys.argv[1]
CTL = sys.argv[2] if len(sys.argv) > 2 else None


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    p = s.getsockname()[1]
    s.close()
    return p


def write(path, text, mode=0o600):
    with open(path, 'w') as f:
        f.write(text)
    os.chmod(path, mode)
    return path


class Keys:
    def __init__(self, name):
        pub, sec = zmq.curve_keypair()
        self.name, self.pub, self.sec = name, pub, sec


def client(ctx, kind, ep, server_pub, keys=None, timeout_ms=1500):
    """A socket with CURVE client options (keys None: plain) and a monitor."""
    s = ctx.socket(kind)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.RCVTIMEO, timeout_ms)
    if keys is not None:
        s.curve_serverkey = server_pub
        s.curve_publickey = keys.pub
        s.curve_secretkey = keys.sec
    mon = s.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_HANDSHAKE_FAILED_AUTH |
                               zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL |
                               zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL)
    s.connect(ep)
    return s, mon


def first_event(mon, timeout=5.0):
    """The first handshake event: ('ok', None) or ('auth', status) or ('fail', value)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if mon.poll(100):
            ev = zmq.utils.monitor.recv_monitor_message(mon)
            if ev['event'] == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                return 'ok', None
            if ev['event'] == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
                return 'auth', ev['value']
            return 'fail', ev['value']
    return 'none', None


def ask(ctx, ep, server_pub, keys, frames):
    """(handshake outcome, reply or None)."""
    s, mon = client(ctx, zmq.DEALER, ep, server_pub, keys)
    try:
        s.send_multipart(frames)
        ev = first_event(mon)
        if ev[0] != 'ok':
            s.setsockopt(zmq.RCVTIMEO, 300)  # refused: no reply can come
        try:
            r = parse_reply(s.recv_multipart())
        except zmq.Again:
            r = None
        return ev, r
    finally:
        s.disable_monitor()
        mon.close(0)
        s.close(0)


def score_frames():
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal(D_IN), rng.standard_normal(D_IN)
    return pairs('SCORE', [(0, a, b)], D_IN, req_id=5)


def test_allow_lists():
    tmp = tempfile.TemporaryDirectory(prefix='svcurve-')
    server, alice, bob, mallory = Keys('server'), Keys('alice'), Keys('bob'), Keys('mallory')
    t = tmp.name
    key = write(os.path.join(t, 'server.key'), '# simverifyd secret key\n\n%s\n' % server.sec.decode())
    both = write(os.path.join(t, 'clients.allow'), '# everyone\n%s alice\n%s bob\n'
                 % (alice.pub.decode(), bob.pub.decode()), 0o644)
    q_only = write(os.path.join(t, 'query.allow'), '%s alice\n' % alice.pub.decode(), 0o644)
    a_only = write(os.path.join(t, 'admin.allow'), '%s\n' % bob.pub.decode(), 0o644)
    ports = [free_port() for _ in range(3)]
    ep_q, ep_a, ep_i = ['tcp://127.0.0.1:%d' % p for p in ports]
    opts = BASE + ['endpoints.query=' + ep_q, 'endpoints.admin=' + ep_a,
                   'endpoints.ingest_acked=' + ep_i, 'security.curve_server_key=' + key,
                   'security.curve_allow=' + both, 'security.curve_allow_query=' + q_only,
                   'security.curve_allow_admin=' + a_only]
    d = Daemon(BIN, opts=opts)
    ctx = zmq.Context()
    try:
        d.start()
        log = d.logtext()
        assert 'SV-CURVE-ON' in log and server.pub.decode() in log, log
        # query: alice listed, bob (admin only), mallory and a plain client refused
        ev, r = ask(ctx, ep_q, server.pub, alice, score_frames())
        assert ev == ('ok', None) and r is not None and r['status'] == 'OK', (ev, r)
        for who in (bob, mallory):
            ev, r = ask(ctx, ep_q, server.pub, who, score_frames())
            assert ev == ('auth', 400) and r is None, (who.name, ev, r)
        ev, r = ask(ctx, ep_q, server.pub, None, score_frames())
        assert ev[0] != 'ok' and r is None, ('plain client', ev, r)
        # a client that expects another server key fails the handshake
        ev, r = ask(ctx, ep_q, Keys('other').pub, alice, score_frames())
        assert ev[0] != 'ok' and r is None, ('wrong server key', ev, r)
        # admin: bob only
        ev, r = ask(ctx, ep_a, server.pub, bob, admin('STATUS', 3))
        assert ev == ('ok', None) and r['status'] == 'OK' and 'model_version' in r['json'], (ev, r)
        ev, r = ask(ctx, ep_a, server.pub, alice, admin('STATUS', 3))
        assert ev == ('auth', 400) and r is None, (ev, r)
        # acked ingest: the shared list (alice and bob), not mallory
        put = item_put(b'x1', np.ones(D_IN, np.float32), req_id=9)
        ev, r = ask(ctx, ep_i, server.pub, alice, put)
        assert ev == ('ok', None) and r['status'] == 'OK', (ev, r)
        ev, r = ask(ctx, ep_i, server.pub, mallory, item_put(b'x2', np.ones(D_IN, np.float32)))
        assert ev == ('auth', 400) and r is None, (ev, r)
        # the ipc:// ingest socket stays plain: a fire-and-forget item lands
        push = d.sock(zmq.PUSH, 'ingest.sock')
        push.send_multipart(item_put(b'x3', np.ones(D_IN, np.float32)))
        push.close()
        # the daemon logged the refusals and still serves; only x1 was stored
        assert 'SV-CURVE-DENIED' in d.logtext(), d.logtext()
        end = time.monotonic() + 10
        while True:
            ev, r = ask(ctx, ep_a, server.pub, bob, admin('STATUS', 4))
            if r['json']['items'] == 2 or time.monotonic() > end:
                break
            time.sleep(0.05)
        assert r['status'] == 'OK' and r['json']['items'] == 2, r
        if CTL is not None:  # simverifyctl as a CURVE client (env keys)
            write(os.path.join(t, 'server.pub'), '%s\n' % server.pub.decode(), 0o644)
            for who, ok in ((bob, True), (alice, False)):
                write(os.path.join(t, who.name + '.key'), '# key\n%s\n' % who.sec.decode())
                env = dict(os.environ, SIMVERIFY_CURVE_SERVER=os.path.join(t, 'server.pub'),
                           SIMVERIFY_CURVE_KEY=os.path.join(t, who.name + '.key'))
                r = subprocess.run([CTL, 'status', '--admin', ep_a, '-t', '1'], env=env,
                                   capture_output=True, text=True, timeout=30)
                assert (r.returncode == 0) == ok, (who.name, r)
        ev, r = ask(ctx, ep_q, server.pub, alice, pairs('SCORE', [(0, b'x1', b'x1')], D_IN))
        assert r['status'] == 'OK' and abs(r['rows'][0]['score'] - 1) < 1e-5, r
        assert d.stop() == 0
    finally:
        d.close()
        ctx.destroy(0)
        tmp.cleanup()


def test_config_rules():
    with tempfile.TemporaryDirectory(prefix='svcurve-') as t:
        ep = 'endpoints.admin=tcp://127.0.0.1:%d' % free_port()
        r = subprocess.run([BIN, '--check-config', '--state-dir', t, '-o', ep],
                           capture_output=True, text=True)
        assert r.returncode != 0 and 'allow_tcp_admin' in r.stderr, r
        r = subprocess.run([BIN, '--check-config', '--state-dir', t, '-o', ep, '-o',
                            'endpoints.allow_tcp_admin=true'], capture_output=True, text=True)
        assert r.returncode == 0, r
        # --check-config reads the key files as the start does (issue 13.11)
        r = subprocess.run([BIN, '--check-config', '--state-dir', t, '-o', ep, '-o',
                            'security.curve_server_key=/k', '-o', 'security.curve_allow_admin=/a'],
                           capture_output=True, text=True)
        assert r.returncode == 1 and 'cannot read server key /k' in r.stderr, r
        # a key file that is missing or not a key stops the start
        bad = write(os.path.join(t, 'bad.key'), 'not a key\n')
        for path, want in ((os.path.join(t, 'missing.key'), 'cannot read server key'),
                           (bad, 'no 40-character z85 secret key')):
            args = [BIN, '--state-dir', t, '-o', 'security.curve_server_key=' + path,
                    '-o', 'endpoints.query=tcp://127.0.0.1:%d' % free_port()] + \
                   sum((['-o', o] for o in BASE), [])
            if os.geteuid() == 0:
                args.append('--allow-root')
            r = subprocess.run(args, capture_output=True, text=True, timeout=30)
            assert r.returncode != 0 and 'SV-CURVE-KEY' in r.stderr and want in r.stderr, r


def test_keygen():
    if CTL is None:
        print('  (no simverifyctl given: skipped)')
        return
    with tempfile.TemporaryDirectory(prefix='svcurve-') as t:
        base = os.path.join(t, 'alice')
        r = subprocess.run([CTL, 'keygen', base], capture_output=True, text=True)
        assert r.returncode == 0, r
        assert stat.S_IMODE(os.stat(base + '.key').st_mode) == 0o600
        lines = lambda p: [ln for ln in open(p).read().split('\n') if ln and not ln.startswith('#')]
        sec, pub = lines(base + '.key')[0], lines(base + '.pub')[0]
        assert len(sec) == 40 and len(pub) == 40, (sec, pub)
        assert zmq.curve_public(sec.encode()) == pub.encode()
        r = subprocess.run([CTL, 'keygen', base], capture_output=True, text=True)
        assert r.returncode != 0, 'keygen must not overwrite a key'


def test_privileges():
    """The unit runs unprivileged, the daemon refuses root, admin is 0600."""
    unit = os.path.join(os.environ.get('SV_SOURCE_ROOT', os.path.join(os.path.dirname(
        os.path.abspath(__file__)), '..', '..')), 'conf', 'simverifyd.service.in')
    keys = {}
    for line in open(unit):
        if '=' in line and not line.startswith('#'):
            k, v = line.rstrip('\n').split('=', 1)
            keys.setdefault(k, []).append(v)
    assert keys.get('DynamicUser') == ['yes'] and keys.get('User'), keys.get('User')
    assert keys.get('CapabilityBoundingSet') == [''] and keys.get('AmbientCapabilities') == ['']
    assert keys.get('NoNewPrivileges') == ['yes']
    assert '--allow-root' not in keys['ExecStart'][0], keys['ExecStart']
    with tempfile.TemporaryDirectory(prefix='svcurve-') as t:
        if os.geteuid() == 0:
            r = subprocess.run([BIN, '--state-dir', t], capture_output=True, text=True, timeout=30)
            assert r.returncode != 0 and 'SV-MAIN-ROOT' in r.stderr, r
        d = Daemon(BIN, opts=BASE)
        try:
            d.start()
            mode = stat.S_IMODE(os.stat(os.path.join(d.dir, 'admin.sock')).st_mode)
            assert mode == 0o600, oct(mode)
            assert d.stop() == 0
        finally:
            d.close()


TESTS = [test_config_rules, test_allow_lists, test_keygen, test_privileges]

if __name__ == '__main__':
    if not zmq.has('curve'):
        print('libzmq without CURVE: skipped')
        sys.exit(77)
    sys.exit(run_tests(TESTS))
