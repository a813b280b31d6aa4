#!/usr/bin/python3
"""test_http.py - the monitoring endpoint (daemon/http.h) against the real daemon:

- /metrics is valid exposition text (promtool check metrics), the same
  families as the admin verb METRICS, and a real Prometheus on loopback
  scrapes it: its query API returns simverify_pairs_total after pairs arrive;
- /livez and /readyz answer, with the reason in JSON when not ready;
- a table of bad HTTP requests: each gets its documented answer, and the
  daemon keeps serving HTTP and ZeroMQ afterwards;
- the status page renders in headless Chromium: title, charts drawn.

usage: test_http.py SIMVERIFYD [TEST ...]
Prometheus and Chromium parts skip (print SKIP) when the program is absent.
"""
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import svclient  # noqa: E402

BIN = sys.argv[1]
D_IN, D_OUT = 16, 4


def start(extra=()):
    d = svclient.Daemon(BIN, opts=['model.d_in=%d' % D_IN, 'model.d_out=%d' % D_OUT,
                                   'train.batch_pairs=64', 'train.max_wait_ms=50ms',
                                   'endpoints.http=127.0.0.1:0'] + list(extra))
    return d.start()


def http_addr(d):
    st = d.admin('STATUS')['json']
    host, port = st['http'].rsplit(':', 1)
    assert port.isdigit() and int(port) > 0, st['http']
    return host, int(port)


def get(addr, path, method='GET', body=None, headers=None):
    c = http.client.HTTPConnection(*addr, timeout=10)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, dict(r.getheaders()), data


def publish(d, n=512, seed=0):
    """n pairs of 5 separable classes, acked, then FLUSH (all trained)."""
    rng = np.random.default_rng(seed)
    cent = rng.normal(size=(5, D_IN)).astype(np.float32)
    rows = []
    for _ in range(n):
        ca = int(rng.integers(5))
        cb = ca if rng.random() < 0.5 else int((ca + rng.integers(1, 5)) % 5)
        rows.append((int(ca == cb), cent[ca] + 0.5 * rng.normal(size=D_IN).astype(np.float32),
                     cent[cb] + 0.5 * rng.normal(size=D_IN).astype(np.float32)))
    for i in range(0, n, 128):
        r = d.request('ingest-acked.sock',
                      svclient.pairs('PAIR_BATCH', rows[i:i + 128], D_IN, req_id=i + 1))
        assert r['status'] == 'OK', r
    assert d.admin('FLUSH')['status'] == 'OK'


def metric_names(text):
    return sorted(ln.split()[2] for ln in text.splitlines() if ln.startswith('# TYPE '))


def test_metrics_valid_and_one_implementation():
    d = start()
    try:
        publish(d)
        addr = http_addr(d)
        st, hdr, body = get(addr, '/metrics')
        assert st == 200 and hdr['Content-Type'].startswith('text/plain; version=0.0.4'), hdr
        text = body.decode()
        promtool = program('promtool')
        if promtool:
            r = subprocess.run([promtool, 'check', 'metrics'], input=body, capture_output=True)
            assert r.returncode == 0, r.stdout + r.stderr
        for need in ('simverify_pairs_total', 'simverify_zap_refusals_total',
                     'simverify_graph_contradictions_total', 'simverify_gradient_norm',
                     'simverify_checkpoint_age_seconds', 'simverify_store_headroom_bytes',
                     'simverify_query_latency_seconds'):
            assert '# TYPE %s ' % need in text, need
        assert 'simverify_pairs_total{outcome="logged"} 512' in text, text
        # the admin verb METRICS serves the same families (simverifyctl metrics prints it)
        r = d.admin('METRICS')
        assert r['status'] == 'OK', r
        assert metric_names(r['json']) == metric_names(text)
    finally:
        d.stop()
        d.close()


def program(name):
    """The program's path, or None after printing SKIP (not installed)."""
    path = shutil.which(name)
    if not path:
        print('SKIP %s (not installed)' % name)
    return path


def test_prometheus_scrapes_the_daemon():
    prom = program('prometheus')
    if not prom:
        return
    d = start()
    tmp = tempfile.TemporaryDirectory(prefix='svprom-')
    p = None
    try:
        host, port = http_addr(d)
        with socket.socket() as s:
            s.bind(('127.0.0.1', 0))
            pport = s.getsockname()[1]
        cfg = os.path.join(tmp.name, 'prometheus.yml')
        with open(cfg, 'w') as f:
            f.write('global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n'
                    'scrape_configs:\n  - job_name: simverifyd\n'
                    '    static_configs:\n      - targets: ["%s:%d"]\n' % (host, port))
        log = open(os.path.join(tmp.name, 'prometheus.log'), 'wb')
        p = subprocess.Popen([prom, '--config.file=' + cfg,
                              '--storage.tsdb.path=' + os.path.join(tmp.name, 'data'),
                              '--web.listen-address=127.0.0.1:%d' % pport],
                             stdout=log, stderr=log)
        publish(d, 256)
        q = ('http://127.0.0.1:%d/api/v1/query?query=simverify_pairs_total%%7Boutcome%%3D%%22'
             'logged%%22%%7D' % pport)
        end, got = time.monotonic() + 60, None
        while time.monotonic() < end:
            try:
                j = json.load(urllib.request.urlopen(q, timeout=5))
                res = j['data']['result']
                if res and float(res[0]['value'][1]) >= 256:
                    got = res[0]
                    break
            except OSError:
                pass
            time.sleep(0.5)
        assert got is not None, open(os.path.join(tmp.name, 'prometheus.log')).read()[-2000:]
        assert got['metric']['job'] == 'simverifyd', got
    finally:
        if p:
            p.terminate()
            p.wait(timeout=20)
        d.stop()
        d.close()
        tmp.cleanup()


def test_livez_readyz():
    d = start()
    try:
        addr = http_addr(d)
        st, _, body = get(addr, '/livez')
        assert st == 200 and body == b'ok\n', (st, body)
        st, hdr, body = get(addr, '/readyz')
        assert st == 200 and json.loads(body) == {'ready': True}, (st, body)
        assert hdr['Content-Type'] == 'application/json'
        st, _, body = get(addr, '/readyz', method='HEAD')
        assert st == 200 and body == b''
    finally:
        d.stop()
        d.close()


def raw(addr, data, read=True):
    """Send raw bytes; the status line answered, or '' when closed unanswered."""
    s = socket.create_connection(addr, timeout=15)  # > HTTP_TIMEOUT_S
    try:
        s.sendall(data)
        if not read:
            return ''
        out = b''
        while b'\r\n' not in out:
            chunk = s.recv(4096)
            if not chunk:
                break
            out += chunk
        return out.split(b'\r\n', 1)[0].decode('latin-1')
    except (ConnectionResetError, BrokenPipeError):
        return ''
    finally:
        s.close()


# (what, request bytes, the status line's code, or '' for "closed unanswered")
BAD_HTTP = [
    ('unknown path', b'GET /admin HTTP/1.1\r\nHost: x\r\n\r\n', '404'),
    ('POST', b'POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}', '405'),
    ('PUT', b'PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n', '405'),
    ('DELETE', b'DELETE /readyz HTTP/1.1\r\nHost: x\r\n\r\n', '405'),
    ('admin verb as a path', b'GET /rollback?version=1 HTTP/1.1\r\nHost: x\r\n\r\n', '404'),
    ('body over the cap', b'GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000'
     b'\r\n\r\n' + b'x' * 8192, '413'),
    ('request line over the memory limit', b'GET /' + b'a' * 40000 + b' HTTP/1.1\r\nHost: x'
     b'\r\n\r\n', '414'),
    ('headers over the memory limit', b'GET / HTTP/1.1\r\nHost: x\r\nX-Big: ' + b'b' * 40000 +
     b'\r\n\r\n', '431'),
    ('HTTP/1.1 without Host (served)', b'GET /livez HTTP/1.1\r\n\r\n', '200'),
    ('unknown method', b'BREW / HTTP/1.1\r\nHost: x\r\n\r\n', '405'),
    ('not HTTP at all: closed at the idle timeout', b'\x00\x01\x02garbage\r\n\r\n', ''),
    ('chunked body past the cap', b'GET /metrics HTTP/1.1\r\nHost: x\r\n'
     b'Transfer-Encoding: chunked\r\n\r\n2000\r\n' + b'x' * 8192 + b'\r\n', ''),
]


def test_bad_http_requests_answered_and_daemon_serves():
    d = start()
    try:
        addr = http_addr(d)
        for what, req, want in BAD_HTTP:
            line = raw(addr, req)
            got = line.split(' ')[1] if line.startswith('HTTP/1.') else ''
            assert got == want, (what, want, line)
            print('  %-36s -> %s' % (what, line or '(closed)'))
        # a client that connects and says nothing, and one that stops mid-header
        idle = socket.create_connection(addr)
        raw(addr, b'GET /metr', read=False)
        # more connections than HTTP_MAX_CONN (32): at most 32 are served at
        # once (keep-alive holds a slot), the rest wait in the listen queue
        flood = [socket.create_connection(addr) for _ in range(40)]
        for c in flood:
            c.sendall(b'GET /livez HTTP/1.1\r\nHost: x\r\n\r\n')
        time.sleep(1.5)
        answered = 0
        for c in flood:
            c.setblocking(False)
            try:
                answered += c.recv(64).startswith(b'HTTP/1.1 200')
            except BlockingIOError:
                pass
        assert 1 <= answered <= 32 - 1, answered  # the idle connection holds one slot
        for c in flood:
            c.close()
        time.sleep(0.3)
        # everything still answers: HTTP, and the ZeroMQ sockets
        st, _, _ = get(addr, '/metrics')
        assert st == 200
        publish(d, 128)
        assert d.admin('STATUS')['json']['counters']['pairs']['logged'] == 128
        idle.close()
    finally:
        d.stop()
        d.close()


def test_status_page_renders_in_chromium():
    chromium = program('chromium')
    if not chromium:
        return
    d = start()
    tmp = tempfile.TemporaryDirectory(prefix='svchr-')
    try:
        publish(d, 1024)
        time.sleep(1.2)  # the history keeps a sample every 10 s; the first at once
        host, port = http_addr(d)
        url = 'http://%s:%d/' % (host, port)
        flags = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
                 '--no-first-run', '--disable-background-networking',
                 '--disable-component-update', '--disable-sync',
                 '--user-data-dir=' + os.path.join(tmp.name, 'profile'),
                 '--window-size=1200,1600']
        shot = os.path.join(tmp.name, 'page.png')
        r = subprocess.run([chromium] + flags + ['--screenshot=' + shot, url],
                           capture_output=True, timeout=120)
        assert os.path.exists(shot) and os.path.getsize(shot) > 10000, r.stderr[-2000:]
        with open(shot, 'rb') as f:
            assert f.read(8) == b'\x89PNG\r\n\x1a\n'
        r = subprocess.run([chromium] + flags + ['--dump-dom', url], capture_output=True,
                           timeout=120)
        dom = r.stdout.decode()
        assert '<title>simverifyd status</title>' in dom, dom[:500]
        assert 'Ready.' in dom
        for fig in ('quality', 'roc', 'ingest', 'backlog', 'store'):
            start_i = dom.index('<figure id="%s"' % fig)
            part = dom[start_i:dom.index('</figure>', start_i)]
            assert '<svg' in part, (fig, part[:300])
        roc = dom[dom.index('<figure id="roc"'):]
        assert '<path' in roc[:roc.index('</figure>')] or \
            '<polyline' in roc[:roc.index('</figure>')], 'the ROC curve drew'
        q = dom[dom.index('<figure id="quality"'):]
        assert '<polyline' in q[:q.index('</figure>')], 'AUC over time drew'
        if os.environ.get('SV_KEEP_SCREENSHOT'):
            shutil.copy(shot, os.environ['SV_KEEP_SCREENSHOT'])
    finally:
        d.stop()
        d.close()
        tmp.cleanup()


if __name__ == '__main__':
    sys.exit(svclient.run_tests(
        [test_metrics_valid_and_one_implementation, test_livez_readyz,
         test_bad_http_requests_answered_and_daemon_serves, test_prometheus_scrapes_the_daemon,
         test_status_page_renders_in_chromium], sys.argv[2:]))
