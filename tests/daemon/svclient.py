#!/usr/bin/python3
"""svclient.py - a minimal simverify client for tests: frames built by hand
from docs/PROTOCOL.md (struct + numpy), not from the C codec, so the tests
check the daemon against the written specification.

Also: Daemon, which runs build/daemon/simverifyd on ipc:// in a temp dir with
a test NOTIFY_SOCKET, and collects its sd_notify datagrams and stderr.
"""
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback

import numpy as np
import zmq

VERBS = dict(ITEM_PUT=0x01, ITEM_DEL=0x02, ITEM_GET=0x03, PAIR=0x10, PAIR_BATCH=0x11,
             CLIENT_STATE=0x12,
             SCORE=0x20, SCORE_BATCH=0x21, TOPK=0x22, STATUS=0x40, CHECKPOINT=0x41,
             VERSIONS=0x42, ROLLBACK=0x43, PAUSE=0x44, RESUME=0x45, FLUSH=0x46,
             BACKUP=0x47, RELOAD=0x48, CONFIG=0x49, MODEL_GET=0x4A, MODEL_PUT=0x4B,
             METRICS=0x4C)
STATUS = ['OK', 'MALFORMED', 'NOT_FOUND', 'DUPLICATE', 'PAUSED', 'BUSY', 'REFUSED',
          'INTERNAL', 'PARTIAL', 'STORE_FULL', 'BEHIND']
FLAG_REPLY, FLAG_CLIENT, FLAG_POS = 1, 2, 4
SIDE_ID, SIDE_VEC = 1, 2


def header(verb, req_id=0, count=0, dim=0, arg=0, flags=0):
    """Frame 0: magic, version, verb, flags, status, request id, count, dim, arg, reason."""
    return struct.pack('<2sBBHHQIIIHH', b'SV', 1, VERBS[verb], flags, 0, req_id, count, dim,
                       arg, 0, 0)


def parse_header(b):
    magic, ver, verb, flags, status, req, count, dim, arg, reason, _ = \
        struct.unpack('<2sBBHHQIIIHH', b)
    assert magic == b'SV' and ver == 1 and flags & FLAG_REPLY, (magic, ver, flags)
    return dict(verb=verb, status=STATUS[status], req=req, count=count, dim=dim, arg=arg,
                reason=reason, flags=flags)


def item_put(item_id, vec, req_id=0):
    vec = np.asarray(vec, '<f4')
    return [header('ITEM_PUT', req_id, 1, vec.size), item_id, vec.tobytes()]


def item_get(item_id, req_id=0, verb='ITEM_GET'):
    return [header(verb, req_id, 1, 0), item_id]


def pairs(verb, rows, dim, req_id=0, client=None):
    """rows: list of (label, a, b); a side is bytes (id), an array (vector) or
    (id, array) (upsert).  client: (client_id bytes, seq)."""
    table, ids, vecs = bytearray(), bytearray(), []
    for label, *sides in rows:
        flags, lens = [], []
        for s in sides:
            if isinstance(s, bytes):
                flags.append(SIDE_ID); lens.append(len(s)); ids += s
            elif isinstance(s, tuple):
                flags.append(SIDE_ID | SIDE_VEC); lens.append(len(s[0])); ids += s[0]
                vecs.append(np.asarray(s[1], '<f4'))
            else:
                flags.append(SIDE_VEC); lens.append(0); vecs.append(np.asarray(s, '<f4'))
        table += struct.pack('<BBBBB3x', label, flags[0], flags[1], lens[0], lens[1])
    v = np.concatenate(vecs).astype('<f4').tobytes() if vecs else b''
    frames = [header(verb, req_id, len(rows), dim if vecs else 0,
                     flags=FLAG_CLIENT if client else 0), bytes(table), bytes(ids), v]
    if client:
        frames.append(struct.pack('<Q', client[1]) + client[0])
    return frames


def topk(queries, k, dim, req_id=0):
    """queries: bytes (a stored item's id) or an array (a vector)."""
    table, ids, vecs = bytearray(), bytearray(), []
    for q in queries:
        if isinstance(q, bytes):
            table += struct.pack('<BBH', SIDE_ID, len(q), 0); ids += q
        else:
            table += struct.pack('<BBH', SIDE_VEC, 0, 0); vecs.append(np.asarray(q, '<f4'))
    v = np.concatenate(vecs).astype('<f4').tobytes() if vecs else b''
    return [header('TOPK', req_id, len(queries), dim if vecs else 0, arg=k), bytes(table),
            bytes(ids), v]


def admin(verb, req_id=0, arg=None):
    f = [header(verb, req_id)]
    if verb == 'ROLLBACK':
        f.append(struct.pack('<Q', arg))
    elif verb == 'BACKUP':
        f.append(arg.encode())
    return f


def with_pos(frames, version, seq):
    """A SCORE/SCORE_BATCH/TOPK request asking for (version, seq) or later (flag POS)."""
    h = bytearray(frames[0])
    struct.pack_into('<H', h, 4, struct.unpack_from('<H', h, 4)[0] | FLAG_POS)
    return [bytes(h)] + list(frames[1:]) + [struct.pack('<QQ', version, seq)]


def parse_reply(frames):
    h = parse_header(frames[0])
    if h['flags'] & FLAG_POS:   # the node's (model version, sequence): the last frame
        h['pos'] = struct.unpack('<QQ', frames[-1])
        frames = frames[:-1]
    r = dict(h, msg=frames[1].decode() if len(frames) > 1 else '')
    if h['status'] not in ('OK', 'PARTIAL'):
        return r
    verb = h['verb']
    if verb in (VERBS['SCORE'], VERBS['SCORE_BATCH']):
        rows = []
        for i in range(h['count']):
            sc, th, mg, match, pol, st, ver = struct.unpack_from('<fffBBBxQ', frames[2], 24 * i)
            rows.append(dict(score=sc, threshold=th, margin=mg, match=match, policy=pol,
                             status=STATUS[st], version=ver))
        r['rows'] = rows
    elif verb in (VERBS['PAIR'], VERBS['PAIR_BATCH']):
        cseq, n, c, d, rj = struct.unpack('<QIIII', frames[2])
        r['ack'] = dict(client_seq=cseq, n=n, committed=c, duplicate=d, rejected=rj)
        r['rows'] = [struct.unpack_from('<BBH', frames[3], 4 * i) for i in range(n)]
    elif verb == VERBS['TOPK']:
        qs, off, ioff = [], 0, 0
        for i in range(h['count']):
            ver, nh, st = struct.unpack_from('<QIB', frames[2], 16 * i)
            hits = []
            for _ in range(nh):
                sc, ln = struct.unpack_from('<fB', frames[3], 8 * off)
                hits.append((frames[4][ioff:ioff + ln], sc))
                off += 1
                ioff += ln
            qs.append(dict(version=ver, status=STATUS[st], hits=hits))
        r['queries'] = qs
    elif verb == VERBS['ITEM_GET']:
        r['vec'] = np.frombuffer(frames[2], '<f4')
    elif verb == VERBS['MODEL_GET'] and len(frames) > 3:
        r['json'] = json.loads(frames[2].decode())
        r['W'] = frames[3]
    elif (verb >= 0x40 or verb == VERBS['CLIENT_STATE']) and len(frames) > 2:
        r['json'] = json.loads(frames[2].decode()) if frames[2] and frames[2][:1] in b'{[' \
            else frames[2].decode()
    return r


class Daemon:
    """simverifyd in a temp state directory, with a NOTIFY_SOCKET to read."""

    def __init__(self, binary, state_dir=None, opts=(), abstract_notify=True, watchdog_usec=None,
                 config=None, notify_rcvbuf=None):
        self.binary = binary
        self.tmp = tempfile.TemporaryDirectory(prefix='svd-') if state_dir is None else None
        self.dir = state_dir or self.tmp.name
        self.opts = list(opts)
        self.config = config
        self.ctx = zmq.Context()
        self.notes = []
        self.nsock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if notify_rcvbuf:
            self.nsock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, notify_rcvbuf)
        if abstract_notify:
            name = 'svtest-%d-%d' % (os.getpid(), time.monotonic_ns())
            self.nsock.bind('\0' + name)
            self.notify_addr = '@' + name
        else:
            self.notify_addr = os.path.join(self.dir, 'notify.sock')
            self.nsock.bind(self.notify_addr)
        self.nsock.settimeout(0.05)
        self.watchdog_usec = watchdog_usec
        self.proc = None
        self.log_path = os.path.join(self.dir, 'daemon.log')

    def ep(self, name):
        return 'ipc://%s/%s' % (self.dir, name)

    def start(self, ready_timeout=30.0):
        env = dict(os.environ, NOTIFY_SOCKET=self.notify_addr)
        env.pop('JOURNAL_STREAM', None)
        if self.watchdog_usec:
            env['WATCHDOG_USEC'] = str(self.watchdog_usec)
        args = [self.binary, '--state-dir', self.dir]
        if self.config:
            args += ['-c', self.config]
        for o in self.opts:
            args += ['-o', o]
        if os.geteuid() == 0:
            args.append('--allow-root')
        self.log = open(self.log_path, 'ab')
        self.proc = subprocess.Popen(args, env=env, stderr=self.log, stdout=self.log)
        self.wait_note('READY=1', ready_timeout)
        return self

    def read_notes(self):
        while True:
            try:
                self.notes.append(self.nsock.recv(4096).decode())
            except (socket.timeout, BlockingIOError):
                return

    def wait_note(self, text, timeout=10.0, after=0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.read_notes()
            for n in self.notes[after:]:
                if text in n.split('\n') or text in n:
                    return n
            if self.proc and self.proc.poll() is not None:
                raise AssertionError('daemon exited %s before %r; log:\n%s'
                                     % (self.proc.returncode, text, self.logtext()))
        raise AssertionError('no %r from the daemon in %.0fs; notes %r; log:\n%s'
                             % (text, timeout, self.notes, self.logtext()))

    def logtext(self):
        with open(self.log_path, 'rb') as f:
            return f.read().decode(errors='replace')

    def sock(self, kind, ep, ident=None):
        s = self.ctx.socket(kind)
        # PUSH: unsent pairs must not be thrown away when the test closes it
        s.setsockopt(zmq.LINGER, 5000 if kind == zmq.PUSH else 0)
        s.setsockopt(zmq.RCVTIMEO, 10000)
        if ident:
            s.setsockopt(zmq.IDENTITY, ident)
        s.connect(self.ep(ep))
        return s

    def request(self, ep, frames):
        s = self.sock(zmq.DEALER, ep)
        s.send_multipart(frames)
        r = parse_reply(s.recv_multipart())
        s.close()
        return r

    def admin(self, verb, arg=None):
        return self.request('admin.sock', admin(verb, 7, arg))

    def status(self):
        r = self.admin('STATUS')
        assert r['status'] == 'OK', r
        return r['json']

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=30.0):
        if self.proc is None:
            return None
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.proc = None
        self.log.close()
        text = self.logtext()
        for bad in ('runtime error:', 'AddressSanitizer', 'LeakSanitizer'):
            assert bad not in text, 'sanitizer report in the daemon log:\n' + text
        return rc

    def close(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
        self.ctx.destroy(0)
        self.nsock.close()
        if self.tmp:
            self.tmp.cleanup()


def wait_for(pred, timeout=10.0, what='condition'):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.02)
    raise AssertionError('timed out waiting for ' + what)


def status_until(d, cond, what, timeout=10.0):
    """Poll STATUS until cond(status) holds; the last status in the error."""
    end = time.monotonic() + timeout
    while True:
        st = d.status()
        if cond(st):
            return st
        if time.monotonic() > end:
            raise AssertionError('timed out waiting for %s; last STATUS %r' % (what, st))
        time.sleep(0.02)


def run_tests(tests, want=()):
    """Run each test function (only those named in want, if any), printing
    PASS name (seconds) or FAIL name and its traceback; returns the exit
    status for sys.exit: 1 if any failed, else 0."""
    failed = 0
    for t in tests:
        if want and t.__name__ not in want:
            continue
        t0 = time.monotonic()
        try:
            t()
            print('PASS %s (%.1fs)' % (t.__name__, time.monotonic() - t0))
        except Exception:
            failed += 1
            print('FAIL %s' % t.__name__)
            traceback.print_exc()
        sys.stdout.flush()
    return 1 if failed else 0
