#!/usr/bin/python3
"""test_reload.py - SIGHUP reload through the config table (issue 11.1, 13.12).

Every key the table marks live (simverifyd --help shows them as [live]) is
changed in the config file, one at a time, and the daemon reloaded: then
`config show` (the CONFIG verb) shows the new value and the daemon behaves
by it (a probe per key below: steps, control records, checkpoints, the log,
STATUS, and for limits.* a request the new limit refuses).  Then every other
key is changed at once: the reload refuses each one by name, and CONFIG
still shows the old values.  The test fails if a key is marked live without
a probe here, so the table and this test stay in step.

usage: test_reload.py SIMVERIFYD
"""
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import svclient  # noqa: E402

BIN = sys.argv[1]
D = 16

BASE = {
    'model.d_in': '16', 'model.d_out': '4', 'train.batch_pairs': '8',
    'train.max_wait_ms': '10s', 'checkpoint.every_steps': '0', 'checkpoint.every_s': '0',
    'query.min_window_pairs': '0', 'endpoints.http': '""',
}


def live_keys():
    out = subprocess.run([BIN, '--help'], capture_output=True, text=True).stdout
    return [ln.split()[0] for ln in out.splitlines() if ln.endswith('[live]')]


def all_keys():
    out = subprocess.run([BIN, '--help'], capture_output=True, text=True).stdout
    keys = out[out.index('\nkeys'):].splitlines()[1:]
    return [ln.split()[0] for ln in keys if ln.startswith('  ')]


class Box:
    """A daemon on a config file that the test rewrites and reloads."""

    def __init__(self):
        self.d = svclient.Daemon(BIN, opts=[])
        self.cfg = dict(BASE, state_dir='"%s"' % self.d.dir)
        self.path = os.path.join(self.d.dir, 'simverifyd.yaml')
        self.write()
        self.d.config = self.path
        self.d.start()
        self.reloads = 0
        self.rows = 0
        self.rng = np.random.default_rng(3)

    def write(self):
        lines = []
        for k, v in sorted(self.cfg.items()):
            if k == 'state_dir':
                lines.insert(0, 'state_dir: %s' % v)
                continue
            sec, name = k.split('.', 1)
            lines.append('%s:\n  %s: %s' % (sec, name, v))
        with open(self.path, 'w') as f:
            f.write('\n'.join(lines) + '\n')

    def reload(self, **kv):
        self.cfg.update(kv)
        self.write()
        self.reloads += 1
        self.d.signal(signal.SIGHUP)
        svclient.wait_for(lambda: self.d.logtext().count('SV-RELOAD-DONE') >= self.reloads,
                          10, 'reload %d' % self.reloads)

    def config(self):
        """CONFIG's YAML (sections of 'key: value' lines) as dotted keys."""
        r = self.d.admin('CONFIG')
        assert r['status'] == 'OK', r
        out, sec = {}, None
        for ln in r['json'].splitlines():
            if not ln.strip() or ln.lstrip().startswith('#'):
                continue
            k, _, v = ln.strip().partition(':')
            v = v.strip().strip('"')
            if not ln.startswith(' ') and v == '':
                sec = k
            else:
                out[('%s.%s' % (sec, k)) if ln.startswith(' ') else k] = v
        return out

    def shown(self, key):
        return self.config()[key]

    def pairs(self, n, req=None):
        rows = []
        for _ in range(n):
            c = int(self.rng.integers(3))
            same = self.rng.random() < 0.5
            a = self.rng.normal(size=D).astype(np.float32) + c
            b = self.rng.normal(size=D).astype(np.float32) + (c if same else c + 2)
            rows.append((int(same), a, b))
        self.rows += 1
        return self.d.request('ingest-acked.sock',
                              svclient.pairs('PAIR_BATCH', rows, D, req_id=req or self.rows))

    def status(self):
        return self.d.status()


def wait_status(b, cond, what, timeout=5):
    return svclient.status_until(b.d, cond, what, timeout)


def probe_batch_pairs(b):
    b.reload(**{'train.batch_pairs': '4'})
    s0 = b.status()['steps']
    assert b.pairs(4)['status'] == 'OK'
    wait_status(b, lambda s: s['steps'] == s0 + 1, 'a step after 4 pairs (B 4, max_wait 10 s)')


def probe_max_wait(b):
    b.reload(**{'train.max_wait_ms': '50ms'})
    s0 = b.status()['steps']
    assert b.pairs(1)['status'] == 'OK'
    wait_status(b, lambda s: s['steps'] == s0 + 1, 'one pair trained after max_wait_ms 50 ms')
    b.reload(**{'train.max_wait_ms': '10s'})


def probe_cut(key, value):
    """An optimizer key: the trainer logs a control record (last_seq + 1)."""
    def probe(b):
        s0 = b.status()
        b.reload(**{key: value})
        s = wait_status(b, lambda s: s['last_seq'] == s0['last_seq'] + 1,
                        'a control record for %s' % key)
        assert s['counters']['pairs']['logged'] == s0['counters']['pairs']['logged']
    return probe


def probe_every_steps(b):
    b.reload(**{'checkpoint.every_steps': '1'})
    c0 = b.status()['counters']['checkpoints']
    assert b.pairs(4)['status'] == 'OK'
    wait_status(b, lambda s: s['counters']['checkpoints'] > c0, 'a checkpoint after a step')
    b.reload(**{'checkpoint.every_steps': '0'})


def probe_every_s(b):
    b.reload(**{'checkpoint.every_s': '1s'})
    c0 = b.status()['counters']['checkpoints']
    assert b.pairs(4)['status'] == 'OK'
    wait_status(b, lambda s: s['counters']['checkpoints'] > c0, 'a checkpoint within 1 s', 5)
    b.reload(**{'checkpoint.every_s': '0'})


def probe_keep_versions(b):
    b.reload(**{'store.keep_versions': '2'})
    for _ in range(4):
        assert b.d.admin('CHECKPOINT')['status'] == 'OK'
    v = b.d.admin('VERSIONS')['json']['versions']
    assert len(v) == 2, v


def probe_log_level(b):
    b.reload(**{'log.level': 'debug'})
    n0 = b.d.logtext().count(' debug ')
    # a stored item, then a step: the top-k cache rebuild logs at debug
    put = b.d.request('ingest-acked.sock', svclient.item_put(b'dbg', np.ones(D), 1))
    assert put['status'] == 'OK', put
    assert b.pairs(4)['status'] == 'OK'
    svclient.wait_for(lambda: b.d.logtext().count(' debug ') > n0, 10, 'a debug line')
    b.reload(**{'log.level': 'info'})


def probe_policy(b):
    b.reload(**{'query.threshold_policy': 'fixed'})
    assert b.status()['threshold_policy'] == 'fixed'


def probe_threshold(b):
    b.reload(**{'query.threshold': '0.25'})
    wait_status(b, lambda s: abs(s['threshold'] - 0.25) < 1e-6, 'the fixed threshold 0.25')


def probe_target_far(b):
    for _ in range(8):
        assert b.pairs(8)['status'] == 'OK'
    b.reload(**{'query.threshold_policy': 'target_far', 'query.target_far': '0.001'})
    t1 = wait_status(b, lambda s: abs(s['threshold'] - 0.25) > 1e-6,
                     'the target_far threshold')['threshold']
    b.reload(**{'query.target_far': '0.5'})
    t2 = wait_status(b, lambda s: s['threshold'] != t1, 'a new target_far threshold')['threshold']
    assert t2 < t1, (t1, t2)


def probe_min_window(b):
    b.reload(**{'query.min_window_pairs': '20000', 'query.threshold': '0.125'})
    wait_status(b, lambda s: abs(s['threshold'] - 0.125) < 1e-6,
                'the initial threshold while the window is short of min_window_pairs')
    b.reload(**{'query.min_window_pairs': '0'})


def probe_window(b):
    assert b.status()['window_pairs'] > 8
    b.reload(**{'query.window_pairs': '8'})
    wait_status(b, lambda s: s['window_pairs'] == 8, 'a window of 8 pairs')


def probe_limit(key, value, request, reason, also=None):
    def probe(b):
        b.reload(**dict(also or {}, **{key: value}))
        r = request(b)
        assert r['status'] == 'MALFORMED' and svclient_reason(r) == reason, (key, r)
    return probe


REASONS = ['none', 'no_frames', 'truncated', 'bad_magic', 'bad_version', 'unknown_verb',
           'bad_flags', 'reserved_nonzero', 'frame_count', 'frame_size', 'wrong_dim',
           'nonfinite', 'empty_id', 'id_too_long', 'bad_id', 'bad_label', 'bad_side',
           'oversize', 'too_many', 'bad_count', 'bad_k', 'bad_text', 'bad_status', 'empty_client', 'too_large', 'seq_wrap',
           'seq_stale']


def svclient_reason(r):
    return REASONS[r['reason']] if r['reason'] < len(REASONS) else r['reason']


def topk50(b):
    put = b.d.request('ingest-acked.sock', svclient.item_put(b'it', np.ones(D), 1))
    assert put['status'] == 'OK', put
    return b.d.request('query.sock', svclient.topk([b'it'], 50, D, 2))


def probe_topk_refresh(b):
    put = b.d.request('ingest-acked.sock', svclient.item_put(b'tk', np.ones(D), 3))
    assert put['status'] == 'OK', put
    b.reload(**{'query.topk_refresh': '1h'})
    time.sleep(0.3)  # a rebuild that began before the reload may still finish
    base = b.status()['topk_cache']['steps']
    for _ in range(2):
        assert b.pairs(16)['status'] == 'OK'
    assert b.d.admin('FLUSH')['status'] == 'OK'
    time.sleep(1.0)
    st = b.status()
    assert st['steps'] > base and st['topk_cache']['steps'] == base, st  # stale, as allowed
    b.reload(**{'query.topk_refresh': '0s'})
    wait_status(b, lambda s: s['topk_cache']['steps'] == s['steps'], 'cache caught up')


def trained_and_checkpointed(b):
    assert b.d.admin('FLUSH')['status'] == 'OK'
    assert b.d.admin('CHECKPOINT')['status'] == 'OK'


def probe_retain_pairs(b):
    b.reload(**{'store.retain_pairs': '10'})
    for _ in range(3):
        assert b.pairs(10)['status'] == 'OK'
    trained_and_checkpointed(b)
    wait_status(b, lambda s: s['log_pairs'] <= 10 and s['log_first_seq'] > 1, 'log trimmed to 10')


def probe_retain_age(b):
    b.reload(**{'store.retain_pairs': '0', 'store.retain_age': '1s'})
    assert b.pairs(10)['status'] == 'OK'
    trained_and_checkpointed(b)
    wait_status(b, lambda s: s['log_pairs'] == 0, 'log rows older than 1s gone')


def probe_min_free(b):
    b.reload(**{'store.min_free': '1000TiB'})
    wait_status(b, lambda s: s['store_full'] == 'min_free' and not s['ready'], 'refusing')
    r = b.pairs(2)
    assert r['status'] == 'STORE_FULL' and 'store.min_free' in r['msg'], r
    b.reload(**{'store.min_free': '0'})
    wait_status(b, lambda s: s['store_full'] is None and s['ready'], 'room again')
    assert b.pairs(2)['status'] == 'OK'


def probe_max_map_size(b):
    b.reload(**{'store.max_map_size': '32GiB'})
    text = b.d.admin('METRICS')['json']
    assert '\nsimverify_store_max_map_bytes %d\n' % (32 << 30) in text, text


def client_state(b, client):
    r = b.d.request('ingest-acked.sock', svclient.item_get(client, 7, verb='CLIENT_STATE'))
    assert r['status'] == 'OK', r
    return r['json']


def probe_dedup_depth(b):
    b.reload(**{'ingest.dedup_depth': '16'})
    rows = [(1, np.ones(D, np.float32), np.ones(D, np.float32) * 2)]
    for seq in range(1, 41):
        r = b.d.request('ingest-acked.sock',
                        svclient.pairs('PAIR', rows, D, req_id=seq, client=(b'depth', seq)))
        assert r['status'] == 'OK', r
    r = b.d.request('ingest-acked.sock', svclient.pairs('PAIR', rows, D, req_id=99,
                                                        client=(b'depth', 24)))
    assert r['status'] == 'PARTIAL' and r['rows'][0][1] == 26, r  # seq_stale
    st = client_state(b, b'depth')
    assert st['hwm'] == 40 and st['depth'] == 16, st


def probe_dedup_window(b):
    b.reload(**{'ingest.dedup_window': '1min'})
    st = client_state(b, b'depth')
    assert st['window_s'] == 60, st
    assert client_state(b, b'nobody')['state'] == 'none'


PROBES = {
    'train.batch_pairs': probe_batch_pairs,
    'train.max_wait_ms': probe_max_wait,
    'train.lr': probe_cut('train.lr', '0.01'),
    'train.momentum': probe_cut('train.momentum', '0.5'),
    'train.dampening': probe_cut('train.dampening', '0'),  # after the dance below
    'train.nesterov': probe_cut('train.nesterov', 'true'),
    'train.weight_decay': probe_cut('train.weight_decay', '0.01'),
    'train.beta1': probe_cut('train.beta1', '0.8'),
    'train.beta2': probe_cut('train.beta2', '0.99'),
    'train.eps': probe_cut('train.eps', '1e-6'),
    'checkpoint.every_steps': probe_every_steps,
    'checkpoint.every_s': probe_every_s,
    'store.keep_versions': probe_keep_versions,
    'store.retain_pairs': probe_retain_pairs,
    'store.retain_age': probe_retain_age,
    'store.min_free': probe_min_free,
    'store.max_map_size': probe_max_map_size,
    'ingest.dedup_depth': probe_dedup_depth,
    'ingest.dedup_window': probe_dedup_window,
    'log.level': probe_log_level,
    'query.threshold_policy': probe_policy,
    'query.threshold': probe_threshold,
    'query.target_far': probe_target_far,
    'query.topk_refresh': probe_topk_refresh,
    'query.min_window_pairs': probe_min_window,  # before the window shrinks to 8
    'query.window_pairs': probe_window,
    'limits.max_topk_hits': probe_limit('limits.max_topk_hits', '40', topk50, 'too_many'),
    'limits.max_k': probe_limit('limits.max_k', '5', topk50, 'bad_k'),
    'limits.max_id_bytes': probe_limit(
        'limits.max_id_bytes', '4',
        lambda b: b.d.request('ingest-acked.sock', svclient.item_put(b'longer-id', np.ones(D), 3)),
        'id_too_long'),
    'limits.max_batch_pairs': probe_limit('limits.max_batch_pairs', '4', lambda b: b.pairs(5),
                                          'too_many'),
    'limits.max_msg_bytes': probe_limit('limits.max_msg_bytes', '1024', lambda b: b.pairs(20),
                                        'oversize', {'limits.max_batch_pairs': '4096'}),
}

# A value each restart-only key may take (valid, different from BASE and the
# defaults).
REFUSED = {
    'model.d_in': '17', 'model.d_out': '3', 'model.seed': '5', 'model.init': 'orthogonal',
    'train.loss': 'contrastive',
    'train.temperature': '0.1', 'train.pos_margin': '0.1', 'train.neg_margin': '0.9',
    'train.mode': 'graph', 'train.optimizer': 'sgd', 'train.threads': '2',
    'train.replay': 'on', 'train.replay_idle': '5s', 'train.replay_batch': '32',
    'train.replay_slice': '5', 'train.replay_max_rounds': '7', 'train.replay_patience': '2', 'train.replay_retries': '5',
    'train.replay_lr_decay': '0.5', 'train.replay_decay': 'round', 'train.replay_fill': '16', 'train.replay_fill_uses': '3',
    'train.replay_gate': 'off', 'train.replay_refit_share': '0.25',
    'store.path': '"@STATE@/store2"', 'store.backup_dir': '"@STATE@/bk2"', 'store.sync': 'none', 'store.map_size': '2GiB',
    'endpoints.ingest': '"ipc://@STATE@/i2.sock"',
    'endpoints.ingest_acked': '"ipc://@STATE@/a2.sock"', 'endpoints.query': '"ipc://@STATE@/q2.sock"',
    'endpoints.admin': '"ipc://@STATE@/adm2.sock"', 'endpoints.admin_mode': '0640',
    'endpoints.allow_tcp_admin': 'true', 'endpoints.http': '"127.0.0.1:1"', 'query.threads': '3',
    'limits.max_pending_pairs': '1000', 'limits.max_queued_replies': '7',
    'limits.max_paused_bytes': '1MiB', 'security.curve_server_key': '"@STATE@/srv.key"',
    'security.curve_allow': '"@STATE@/allow"', 'security.curve_allow_ingest': '"@STATE@/ai"',
    'security.curve_allow_query': '"@STATE@/aq"', 'security.curve_allow_admin': '"@STATE@/aa"',
    'cluster.role': 'replica', 'cluster.urls': '"nats://127.0.0.1:1"', 'cluster.name': 'n2',
    'cluster.stream': 'S2', 'cluster.replicas': '1', 'cluster.duplicate_window': '5min',
    'cluster.ack': 'committed', 'cluster.lease_ttl': '9s', 'cluster.timeout': '7s',
    'cluster.read_wait': '3s',
}


def test_every_live_key_applies_and_every_other_is_refused():
    live = live_keys()
    missing = [k for k in live if k not in PROBES]
    assert not missing, 'live keys without a probe in this test: %s' % missing
    b = Box()
    try:
        for k in PROBES:  # their order: some probes set up the next
            if k == 'train.dampening':  # dampening 0 is the base: go via 0.2
                probe_cut('train.dampening', '0.2')(b)
            PROBES[k](b)
            want = b.cfg[k].strip('"')
            got = str(b.shown(k))
            assert got == want or (got.replace('.0', '') == want.replace('.0', '')) or \
                _same_number(got, want), (k, got, want)
            print('  live   %-26s -> %s' % (k, got))
        # every other key at once: each refused by name, CONFIG unchanged
        others = [k for k in all_keys() if k not in live and k != 'state_dir']
        missing = [k for k in others if k not in REFUSED]
        assert not missing, 'restart-only keys without a value in this test: %s' % missing
        before = b.config()
        log0 = len(b.d.logtext())
        # (state_dir is left out: the daemon runs with --state-dir, which wins)
        b.reload(**{k: REFUSED[k] for k in others})
        log = b.d.logtext()[log0:]
        for k in others:
            assert re.search(r"SV-RELOAD-REFUSED key '%s' changed" % re.escape(k), log), (k, log)
        after = b.config()
        assert after == before, [k for k in after if after[k] != before.get(k)]
        print('  refused by name: %d keys' % len(others))
        assert b.pairs(2)['status'] == 'OK', 'still serving'
    finally:
        b.d.stop()
        b.d.close()


def _same_number(a, b):
    def num(x):
        m = re.match(r'^([0-9.e+-]+)\s*(ms|s|KiB|MiB|GiB)?$', x)
        if not m:
            return None
        v = float(m.group(1))
        return v * {'ms': 1, 's': 1000, 'KiB': 1024, 'MiB': 1 << 20, 'GiB': 1 << 30,
                    None: 1}[m.group(2)]
    try:
        return num(a) is not None and num(a) == num(b)
    except ValueError:
        return False


if __name__ == '__main__':
    sys.exit(svclient.run_tests([test_every_live_key_applies_and_every_other_is_refused],
                                sys.argv[2:]))
