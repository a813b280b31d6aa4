"""simverify - the Python client for simverifyd (pyzmq + numpy).

Install: python3 -m venv --system-site-packages VENV (pyzmq and numpy from
Debian's python3-zmq and python3-numpy), then
VENV/bin/pip install --no-build-isolation ./python.

Speaks the wire protocol of docs/PROTOCOL.md (version 1): publish labeled
pairs (vectors or item ids, optionally acked and idempotent), upsert / get /
delete items, score pairs, top-k search, and the admin verbs (status, flush,
checkpoint, pause, resume, ...).

Example::

    import numpy as np
    from simverify import Client

    with Client(state_dir="/var/lib/simverify") as sv:   # or query=..., admin=...
        a = np.random.rand(784).astype(np.float32)
        b = np.random.rand(784).astype(np.float32)
        sv.upsert("alice", a)                       # store an item
        sv.publish([a], [b], [0])                   # one pair of vectors, label 0
        sv.publish(["alice"], [b], [1], acked=True) # id + vector, wait for the ack
        sv.flush()                                  # everything trained on
        r = sv.score("alice", b)                    # Score(score=..., match=..., ...)
        print(r.score, r.match, r.threshold)
        print(sv.topk(b, k=5))                      # [("alice", 0.93), ...]
        print(sv.status()["model_version"])

Thread safety: a Client is NOT thread-safe (its ZeroMQ sockets belong to
one thread at a time).  Use one Client per thread; they may share a
zmq.Context (context=...).

Vectors are float32 numpy arrays of the daemon's input dimension (d_in);
anything else is converted with np.asarray(x, dtype="<f4").  Item ids are
str (UTF-8, 1..255 bytes) or bytes.  Every request waits at most `timeout`
seconds; a daemon that does not answer in time raises TimeoutError, a
missing ipc:// socket file ConnectionError, and a refusal SimverifyError
with the daemon's status, reason and message (StoreFullError, a subclass,
when the daemon's store is full).

CURVE: for tcp:// endpoints of a daemon with security.curve_server_key, pass
curve_server_key (the daemon's public key) and curve_secret_key (this
client's secret key): each a file from `simverifyctl keygen` or the 40
Z85 characters; without them SIMVERIFY_CURVE_SERVER and SIMVERIFY_CURVE_KEY
are read, as simverifyctl does.

Left out: server-side concerns, asyncio, the config file (pass endpoints or
the daemon's --state-dir).
"""
import json
import itertools
import os
import random
import struct
import time
from collections import namedtuple

import numpy as np
import zmq

__all__ = ["Client", "Score", "Ack", "SimverifyError", "StoreFullError",
           "endpoints_for_state_dir"]

PROTO_VERSION = 1
_HDR = struct.Struct("<2sBBHHQIIIHH")      # 32 bytes
_SCORE_ROW = struct.Struct("<fffBBBxQ")    # 24 bytes
_TOPK_ROW = struct.Struct("<QIB3x")        # 16 bytes
_HIT_ROW = struct.Struct("<fB3x")          # 8 bytes
_ACK = struct.Struct("<QIIII")             # 24 bytes
_ACK_ROW = struct.Struct("<BBH")           # 4 bytes
assert _HDR.size == 32 and _SCORE_ROW.size == 24 and _TOPK_ROW.size == 16
assert _HIT_ROW.size == 8 and _ACK.size == 24 and _ACK_ROW.size == 4

FLAG_REPLY, FLAG_CLIENT, FLAG_POS = 0x0001, 0x0002, 0x0004
SIDE_ID, SIDE_VEC = 0x01, 0x02

VERBS = {
    "item_put": 0x01, "item_del": 0x02, "item_get": 0x03,
    "pair": 0x10, "pair_batch": 0x11, "client_state": 0x12,
    "score": 0x20, "score_batch": 0x21, "topk": 0x22,
    "status": 0x40, "checkpoint": 0x41, "versions": 0x42, "rollback": 0x43,
    "pause": 0x44, "resume": 0x45, "flush": 0x46, "backup": 0x47,
    "reload": 0x48, "config": 0x49, "model_get": 0x4A, "model_put": 0x4B,
}
STATUS_NAMES = ["ok", "malformed", "not_found", "duplicate", "paused", "busy",
                "refused", "internal", "partial", "store_full", "behind"]
OUTCOMES = ["committed", "duplicate", "rejected"]

Score = namedtuple("Score", "score threshold margin match policy status model_version")
Score.__doc__ = """One scored pair: cosine score, the threshold and policy the decision
used, match (score >= threshold), per-row status name and model version."""

Ack = namedtuple("Ack", "client_seq n committed duplicate rejected rows")
Ack.__doc__ = """The daemon's ack of a published batch: counts by outcome and per-row
(outcome name, reason code, status name) tuples."""


class SimverifyError(Exception):
    """The daemon refused a request, or broke the protocol.

    status is the reply status name ("not_found", "malformed", ...), reason
    the malformed-reason code (0 when not malformed), message the daemon's
    text."""

    def __init__(self, what, status, reason=0, message=""):
        self.status, self.reason, self.message = status, reason, message
        super().__init__(f"{what}: {status}" + (f" (reason {reason})" if reason else "")
                         + (f": {message}" if message else ""))


class StoreFullError(SimverifyError):
    """The daemon's store is full (store.max_map_size or store.min_free):
    nothing of the request was stored.  Retry later; the message names the
    limit to raise."""


def _z85_key(k):
    """A CURVE key: 40 Z85 characters, or a key file (a comment line and the
    key, as simverifyctl keygen writes)."""
    if isinstance(k, bytes):
        k = k.decode()
    if len(k) == 40 and not os.path.exists(k):
        return k.encode()
    with open(k) as f:
        lines = [ln.strip() for ln in f if ln.strip() and not ln.startswith("#")]
    if len(lines) != 1 or len(lines[0]) != 40:
        raise ValueError(f"{k}: not a CURVE key file (one 40-character Z85 key)")
    return lines[0].encode()


def endpoints_for_state_dir(state_dir):
    """The endpoints of a daemon started with --state-dir DIR (dict with
    keys admin, query, ingest, acked)."""
    return {
        "admin": f"ipc://{state_dir}/admin.sock",
        "query": f"ipc://{state_dir}/query.sock",
        "ingest": f"ipc://{state_dir}/ingest.sock",
        "acked": f"ipc://{state_dir}/ingest-acked.sock",
    }


def _as_id(x):
    if isinstance(x, str):
        x = x.encode("utf-8")
    if isinstance(x, (bytes, bytearray)):
        if not 1 <= len(x) <= 255 or b"\0" in x:
            raise ValueError(f"item id must be 1..255 bytes without NUL, got {bytes(x)!r}")
        return bytes(x)
    return None


def _as_vec(x):
    v = np.ascontiguousarray(np.asarray(x, dtype="<f4")).reshape(-1)
    if v.size == 0:
        raise ValueError("empty vector")
    if not np.isfinite(v).all():
        raise ValueError("vector holds NaN or Inf")
    return v


def _side(x):
    """(flags, id bytes, vector or None) for an id, a vector, or (id, vector)."""
    if isinstance(x, tuple) and len(x) == 2:
        i, v = _as_id(x[0]), _as_vec(x[1])
        if i is None:
            raise ValueError("a (id, vector) side needs a str/bytes id")
        return SIDE_ID | SIDE_VEC, i, v
    i = _as_id(x)
    if i is not None:
        return SIDE_ID, i, None
    return SIDE_VEC, b"", _as_vec(x)


def _header(verb, req_id, count=0, dim=0, arg=0, flags=0):
    return _HDR.pack(b"SV", PROTO_VERSION, verb, flags, 0, req_id, count, dim, arg, 0, 0)


def _pair_frames(sides_a, sides_b, labels):
    """Table, ids and vectors frames of the pair layout, and the dim."""
    n = len(labels)
    table = np.zeros((n, 8), np.uint8)
    ids, vecs, dim = [], [], 0
    for i in range(n):
        fa, ia, va = _side(sides_a[i])
        fb, ib, vb = _side(sides_b[i])
        table[i, 0] = int(labels[i])
        table[i, 1], table[i, 2] = fa, fb
        table[i, 3], table[i, 4] = len(ia), len(ib)
        ids.append(ia)
        ids.append(ib)
        for v in (va, vb):
            if v is not None:
                if dim and v.size != dim:
                    raise ValueError(f"vectors differ in length: {dim} and {v.size}")
                dim = v.size
                vecs.append(v)
    vbytes = np.concatenate(vecs).tobytes() if vecs else b""
    return table.tobytes(), b"".join(ids), vbytes, dim


class Client:
    """A connection to one simverifyd.

    Give the daemon's --state-dir, or the endpoints you need (query for
    score/topk/item get, admin for status and the admin verbs, ingest for
    fire-and-forget publish and item upserts, acked for acked publish).
    timeout is in seconds, per request.  client_id (str, 1..255 bytes)
    makes publish idempotent per pair: pair i of a message is keyed
    (client_id, seq + i) and the daemon stores each key only once.  The
    first publish asks the daemon where this client id left off
    (client_state) and goes on from there, so a restarted publisher that
    reuses its id never has new pairs taken for duplicates.
    Not thread-safe: use one Client per thread."""

    def __init__(self, state_dir=None, *, query=None, admin=None, ingest=None, acked=None,
                 timeout=5.0, client_id=None, context=None, curve_server_key=None,
                 curve_secret_key=None):
        eps = endpoints_for_state_dir(state_dir) if state_dir else {}
        self.endpoints = {
            "query": query or eps.get("query"),
            "admin": admin or eps.get("admin"),
            "ingest": ingest or eps.get("ingest"),
            "acked": acked or eps.get("acked"),
        }
        self.timeout = float(timeout)
        self.client_id = _as_id(client_id) if client_id is not None else None
        self._own_ctx = context is None
        self._ctx = context or zmq.Context()
        self._socks = {}
        self._ids = itertools.count(random.getrandbits(48) << 8)
        self._seq = None  # asked of the daemon at the first publish
        server = curve_server_key or os.environ.get("SIMVERIFY_CURVE_SERVER")
        secret = curve_secret_key or os.environ.get("SIMVERIFY_CURVE_KEY")
        if bool(server) != bool(secret):
            raise ValueError("CURVE needs both the server's public key and this client's "
                             "secret key")
        self._curve = (_z85_key(server), _z85_key(secret)) if server else None

    # -- plumbing ---------------------------------------------------------
    def close(self):
        """Close the sockets (and the context, when the Client made it)."""
        for s in self._socks.values():
            s.close(linger=0)
        self._socks.clear()
        if self._own_ctx:
            self._ctx.term()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _sock(self, which):
        s = self._socks.get(which)
        if s is not None:
            return s
        ep = self.endpoints.get(which)
        if not ep:
            raise ValueError(f"no {which} endpoint: pass {which}=... or state_dir=...")
        if ep.startswith("ipc://") and not ep.startswith("ipc://@") \
                and not os.path.exists(ep[6:]):
            raise ConnectionError(f"cannot reach daemon at {ep}: no such socket file")
        s = self._ctx.socket(zmq.PUSH if which == "ingest" else zmq.DEALER)
        if self._curve and ep.startswith("tcp://"):
            server, secret = self._curve
            s.curve_serverkey = server
            s.curve_secretkey = secret
            s.curve_publickey = zmq.curve_public(secret)
        s.setsockopt(zmq.LINGER, 0 if which != "ingest" else int(self.timeout * 1000))
        s.setsockopt(zmq.IMMEDIATE, 1)
        s.setsockopt(zmq.SNDTIMEO, int(self.timeout * 1000))
        s.connect(ep)
        self._socks[which] = s
        return s

    def _send(self, which, frames):
        try:
            self._sock(which).send_multipart(frames, copy=False)
        except zmq.Again:
            raise TimeoutError(f"cannot reach daemon at {self.endpoints[which]} "
                               f"(timeout {self.timeout:g}s)") from None

    def _recv(self, which, req_id, what):
        s = self._sock(which)
        deadline = time.monotonic() + self.timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not s.poll(int(left * 1000) + 1):
                raise TimeoutError(f"cannot reach daemon at {self.endpoints[which]} "
                                   f"(timeout {self.timeout:g}s)")
            frames = s.recv_multipart()
            if frames and len(frames[0]) == 0:
                frames = frames[1:]           # a REQ-style delimiter
            if not frames or len(frames[0]) != 32:
                raise SimverifyError(what, "bad_reply", 0, "reply header is not 32 bytes")
            (magic, ver, verb, flags, status, rid, count, dim, arg, reason,
             _res) = _HDR.unpack(frames[0])
            if rid != req_id:
                continue                      # a late reply to an abandoned request
            if magic != b"SV" or ver != PROTO_VERSION or not flags & FLAG_REPLY:
                raise SimverifyError(what, "bad_reply", 0, "not a version-1 reply")
            if flags & FLAG_POS and len(frames) > 2:
                frames = frames[:-1]          # a cluster node's position (PROTOCOL.md)
            msg = frames[1].decode("utf-8", "replace") if len(frames) > 1 else ""
            name = STATUS_NAMES[status] if status < len(STATUS_NAMES) else str(status)
            return name, reason, msg, count, dim, arg, frames[2:]

    def _call(self, which, frames, req_id, what, ok=("ok",)):
        self._send(which, frames)
        status, reason, msg, count, dim, arg, payload = self._recv(which, req_id, what)
        if status not in ok:
            raise (StoreFullError if status == "store_full" else SimverifyError)(
                what, status, reason, msg)
        return status, msg, count, dim, arg, payload

    def _admin(self, verb, body=None, what=None):
        rid = next(self._ids)
        frames = [_header(VERBS[verb], rid)] + ([body] if body is not None else [])
        _, msg, _, _, _, payload = self._call("admin", frames, rid, what or verb)
        return msg, (payload[0].decode("utf-8") if payload else "")

    def _admin_json(self, verb):
        import json
        _, text = self._admin(verb)
        return json.loads(text) if text else {}

    # -- items ------------------------------------------------------------
    def upsert(self, item_id, vec, acked=True):
        """Store (or replace) item item_id with vector vec.  With acked (the
        default) it goes to the acked endpoint and returns once stored; with
        acked=False it goes fire-and-forget through the ingest endpoint (in
        order with later publish() calls)."""
        i, v = _as_id(item_id), _as_vec(vec)
        if i is None:
            raise ValueError("item id must be str or bytes")
        rid = next(self._ids)
        frames = [_header(VERBS["item_put"], rid, 1, v.size), i, v.tobytes()]
        if acked:
            self._call("acked", frames, rid, f"upsert {item_id!r}")
        else:
            self._send("ingest", frames)

    def delete(self, item_id, acked=True):
        """Delete item item_id (NOT_FOUND raises SimverifyError when acked)."""
        i = _as_id(item_id)
        rid = next(self._ids)
        frames = [_header(VERBS["item_del"], rid, 1, 0), i]
        if acked:
            self._call("acked", frames, rid, f"delete {item_id!r}")
        else:
            self._send("ingest", frames)

    def get(self, item_id):
        """The stored vector of item_id (float32 array)."""
        i = _as_id(item_id)
        rid = next(self._ids)
        _, _, _, dim, _, payload = self._call(
            "query", [_header(VERBS["item_get"], rid, 1, 0), i], rid, f"get {item_id!r}")
        return np.frombuffer(payload[0], dtype="<f4", count=dim).copy()

    # -- ingest -----------------------------------------------------------
    def publish(self, a, b, labels, acked=False, client_seq=None):
        """Publish n labeled pairs (label 1 same, 0 different).

        a and b are sequences of n sides each: an item id (str/bytes), a
        vector, or an (id, vector) tuple (upsert the item, then use it); an
        n x d array works too.  With a client_id on the Client, the message
        carries (client_id, client_seq) and pair i is keyed client_seq + i:
        client_seq defaults to a running count of published pairs, so give
        the index of the first pair in your stream to make re-publishing
        after a crash idempotent, in batches of any size.  An Ack counts
        committed and duplicate pairs (all duplicates: status duplicate).
        acked=False sends fire-and-forget (returns None); acked=True waits
        for the daemon's durable ack and returns an Ack."""
        labels = np.asarray(labels, dtype=np.uint8).reshape(-1)
        n = labels.size
        if n == 0 or len(a) != n or len(b) != n:
            raise ValueError("a, b and labels must have the same non-zero length")
        table, ids, vecs, dim = _pair_frames(a, b, labels)
        rid = next(self._ids)
        verb = VERBS["pair"] if n == 1 else VERBS["pair_batch"]
        flags = 0
        frames = [None, table, ids, vecs]
        if client_seq is None and self._seq is None:
            self._seq = self.client_state()["next_seq"] if self.client_id is not None else 0
        seq = self._seq if client_seq is None else int(client_seq)
        if self.client_id is not None:
            flags = FLAG_CLIENT
            frames.append(struct.pack("<Q", seq) + self.client_id)
        self._seq = seq + n
        frames[0] = _header(verb, rid, n, dim, flags=flags)
        if not acked:
            self._send("ingest", frames)
            return None
        _, _, count, _, _, payload = self._call("acked", frames, rid, "publish",
                                                ok=("ok", "partial", "duplicate"))
        if len(payload) < 2:
            return Ack(seq, n, 0, n, 0, [("duplicate", 0, "duplicate")] * n)
        cseq, an, com, dup, rej = _ACK.unpack(payload[0])
        rows = [(OUTCOMES[o] if o < 3 else str(o), r,
                 STATUS_NAMES[s] if s < len(STATUS_NAMES) else str(s))
                for o, r, s in _ACK_ROW.iter_unpack(payload[1])]
        return Ack(cseq, an, com, dup, rej, rows)

    def publish_stream(self, a, b, labels, batch=256, window=16, tries=6):
        """Publish many labeled pairs, acked, as simverifyctl publish --acked
        does: batches of `batch` pairs, up to `window` of them in flight, and
        a batch without an answer within the timeout (or answered busy or
        paused) sent again with the same client seqs, up to `tries` times,
        so nothing is logged twice.  Needs a client_id.  Returns an Ack of
        the whole stream (rows: the rejected ones, as (index, reason,
        status)).  Raises StoreFullError when the store is full, TimeoutError
        when a batch went unanswered `tries` times."""
        if self.client_id is None:
            raise ValueError("publish_stream needs a client_id (resends are keyed by it)")
        labels = np.asarray(labels, dtype=np.uint8).reshape(-1)
        n = labels.size
        if n == 0 or len(a) != n or len(b) != n:
            raise ValueError("a, b and labels must have the same non-zero length")
        if self._seq is None:
            self._seq = self.client_state()["next_seq"]
        seq0, s = self._seq, self._sock("acked")
        todo = list(range(0, n, batch))
        flight = {}  # request id -> [first row, tries, deadline]
        committed = duplicate = rejected = 0
        bad = []
        while todo or flight:
            now = time.monotonic()
            while todo and len(flight) < window:
                first = todo.pop(0)
                flight[self._send_rows(a, b, labels, first, batch, seq0)] = [first, 1,
                                                                             now + self.timeout]
            for rid, (first, n_try, deadline) in list(flight.items()):
                if deadline <= now:
                    if n_try == tries:
                        raise TimeoutError(f"no ack for pairs {first}.. after {tries} tries "
                                           f"(timeout {self.timeout:g}s each)")
                    del flight[rid]
                    flight[self._send_rows(a, b, labels, first, batch, seq0)] = [
                        first, n_try + 1, now + self.timeout]
            wait = min(f[2] for f in flight.values()) - time.monotonic()
            if not s.poll(max(0, int(wait * 1000)) + 1):
                continue
            frames = s.recv_multipart()
            if frames and not frames[0]:
                frames = frames[1:]
            (_, _, _, _, status, rid, count, _, _, reason, _) = _HDR.unpack(frames[0])
            if rid not in flight:
                continue  # a late answer to a batch sent again
            first, n_try, _ = flight.pop(rid)
            name = STATUS_NAMES[status] if status < len(STATUS_NAMES) else str(status)
            m = min(batch, n - first)
            if name in ("busy", "paused"):
                if n_try == tries:
                    raise SimverifyError("publish_stream", name, reason,
                                         frames[1].decode("utf-8", "replace"))
                time.sleep(0.05 * (1 << n_try))
                flight[self._send_rows(a, b, labels, first, batch, seq0)] = [
                    first, n_try + 1, time.monotonic() + self.timeout]
            elif name == "duplicate":
                duplicate += m
            elif name in ("ok", "partial"):
                _, _, com, dup, rej = _ACK.unpack(frames[2])
                committed, duplicate, rejected = committed + com, duplicate + dup, rejected + rej
                for i, (o, r, st) in enumerate(_ACK_ROW.iter_unpack(frames[3])):
                    if o == 2:
                        bad.append((first + i, r, STATUS_NAMES[st] if st < len(STATUS_NAMES)
                                    else str(st)))
            else:
                raise (StoreFullError if name == "store_full" else SimverifyError)(
                    "publish_stream", name, reason, frames[1].decode("utf-8", "replace"))
        self._seq = seq0 + n
        return Ack(seq0, n, committed, duplicate, rejected, sorted(bad))

    def _send_rows(self, a, b, labels, first, batch, seq0):
        """Send rows [first, first + batch) as one acked PAIR_BATCH keyed
        (client_id, seq0 + first); its request id."""
        end = min(first + batch, labels.size)
        table, ids, vecs, dim = _pair_frames(a[first:end], b[first:end], labels[first:end])
        rid = next(self._ids)
        m = end - first
        verb = VERBS["pair"] if m == 1 else VERBS["pair_batch"]
        self._send("acked", [_header(verb, rid, m, dim, flags=FLAG_CLIENT), table, ids, vecs,
                             struct.pack("<Q", seq0 + first) + self.client_id])
        return rid

    def client_state(self, client_id=None):
        """Where a client id left off, as the daemon committed it: a dict
        with state ("known" or "none"), next_seq (the seq to go on from; 0
        for an unknown id), hwm (highest seq logged), depth (seqs below hwm
        still told apart from duplicates) and window_s (idle time after
        which the daemon forgets the id)."""
        cid = _as_id(client_id) if client_id is not None else self.client_id
        if cid is None:
            raise ValueError("client_state: no client id")
        rid = next(self._ids)
        _, _, _, _, _, payload = self._call(
            "acked", [_header(VERBS["client_state"], rid, 1), cid], rid, "client_state")
        return json.loads(payload[0].decode()) if payload else {}

    # -- queries ----------------------------------------------------------
    def score_batch(self, a, b):
        """Score n pairs (sides as in publish) in one request; a list of Score."""
        n = len(a)
        if n == 0 or len(b) != n:
            raise ValueError("a and b must have the same non-zero length")
        table, ids, vecs, dim = _pair_frames(a, b, np.zeros(n, np.uint8))
        rid = next(self._ids)
        verb = VERBS["score"] if n == 1 else VERBS["score_batch"]
        _, _, _, _, _, payload = self._call(
            "query", [_header(verb, rid, n, dim), table, ids, vecs], rid, "score",
            ok=("ok", "partial"))
        out = []
        for s, t, m, match, pol, st, ver in _SCORE_ROW.iter_unpack(payload[0]):
            out.append(Score(s, t, m, bool(match), pol,
                             STATUS_NAMES[st] if st < len(STATUS_NAMES) else str(st), ver))
        return out

    def score(self, a, b):
        """Score one pair: a Score.  Raises SimverifyError when a side names
        an unknown item."""
        r = self.score_batch([a], [b])[0]
        if r.status != "ok":
            raise SimverifyError("score", r.status)
        return r

    def topk(self, q, k=10):
        """The k stored items most similar to q (an id or a vector), best
        first: a list of (id str, score).  Raises SimverifyError when q
        names an unknown item."""
        hits, status = self.topk_batch([q], k)[0]
        if status != "ok":
            raise SimverifyError("topk", status)
        return hits

    def topk_batch(self, qs, k=10):
        """Top-k for many queries (ids or vectors) in one request: a list of
        (hits, status name) per query, hits as in topk ([] when the status
        is not ok, e.g. not_found)."""
        if len(qs) == 0:
            raise ValueError("topk_batch needs at least one query")
        sides = [_side(q) for q in qs]
        dims = {v.size for _, _, v in sides if v is not None}
        if len(dims) > 1:
            raise ValueError("query vectors of different lengths")
        rid = next(self._ids)
        table = b"".join(struct.pack("<BBH", f, len(i), 0) for f, i, _ in sides)
        frames = [_header(VERBS["topk"], rid, len(sides), dims.pop() if dims else 0, k), table,
                  b"".join(i for _, i, _ in sides),
                  b"".join(v.tobytes() for _, _, v in sides if v is not None)]
        _, _, _, _, _, payload = self._call("query", frames, rid, "topk",
                                            ok=("ok", "partial"))
        out, h, off = [], 0, 0
        hit_rows = list(_HIT_ROW.iter_unpack(payload[1]))
        for qi in range(len(sides)):
            ver, n_hits, st = _TOPK_ROW.unpack(payload[0][16 * qi:16 * qi + 16])
            hits = []
            for score, idlen in hit_rows[h:h + n_hits]:
                hits.append((payload[2][off:off + idlen].decode("utf-8", "replace"), score))
                off += idlen
            h += n_hits
            out.append((hits, STATUS_NAMES[st] if st < len(STATUS_NAMES) else str(st)))
        return out

    # -- admin ------------------------------------------------------------
    def status(self):
        """The daemon's status document (dict): model_version, steps,
        pairs_seen, items, backlog, auc, eer, threshold, ..."""
        return self._admin_json("status")

    def versions(self):
        """The stored model versions (the daemon's JSON document)."""
        return self._admin_json("versions")

    def config(self):
        """The daemon's running configuration: a dict of dotted key ->
        value text ({"train.lr": "0.001", "model.d_in": "784", ...}).  The
        daemon renders it as YAML (sections of scalars); raw text is kept in
        the "" key."""
        import json
        _, text = self._admin("config")
        if text.lstrip().startswith("{"):
            return json.loads(text)
        out, section = {"": text}, ""
        for line in text.splitlines():
            body = line.split(" #", 1)[0].rstrip()
            if not body.strip() or body.lstrip().startswith("#") or ":" not in body:
                continue
            key, _, val = body.strip().partition(":")
            val = val.strip()
            if not line.startswith(" ") and not val:
                section = key
                continue
            if len(val) >= 2 and val[0] == val[-1] and val[0] in "\"'":
                val = val[1:-1]
            out[(section + "." if line.startswith(" ") and section else "") + key] = val
        return out

    def flush(self):
        """Return once every pair the daemon received so far is trained on
        and committed (use a long timeout for a long backlog)."""
        return self._admin("flush")[0]

    def checkpoint(self):
        """Commit the model now as a new version; the daemon's message."""
        return self._admin("checkpoint")[0]

    def pause(self):
        """Stop learning (queries keep being answered)."""
        return self._admin("pause")[0]

    def resume(self):
        """Resume learning."""
        return self._admin("resume")[0]

    def rollback(self, version):
        """Make stored model version the live one."""
        return self._admin("rollback", struct.pack("<Q", int(version)))[0]

    def model_get(self):
        """The live W (d_in x d_out float32 array) and its metadata dict
        (d_in, d_out, loss, mode, threshold, threshold_policy, version,
        steps, applied_seq, train_loss)."""
        import json
        rid = next(self._ids)
        _, _, count, dim, _, payload = self._call(
            "admin", [_header(VERBS["model_get"], rid)], rid, "model_get")
        w = np.frombuffer(payload[1], dtype="<f4", count=dim * count).reshape(dim, count)
        return w.copy(), json.loads(payload[0].decode("utf-8"))

    def model_put(self, w):
        """Make W (a d_in x d_out array) the live model as a new version;
        returns the daemon's message ("model stored as vN")."""
        w = np.ascontiguousarray(w, dtype="<f4")
        if w.ndim != 2:
            raise ValueError("W must be a 2-D d_in x d_out array")
        rid = next(self._ids)
        frames = [_header(VERBS["model_put"], rid, w.shape[1], w.shape[0]), w.tobytes()]
        return self._call("admin", frames, rid, "model_put")[1]

    def reload(self):
        """Re-read the daemon's config file."""
        return self._admin("reload")[0]

    def backup(self, path):
        """Hot copy of the store to path (on the daemon's machine)."""
        return self._admin("backup", os.fsencode(path))[0]


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="print a simverifyd's status")
    ap.add_argument("--state-dir")
    ap.add_argument("--admin")
    ap.add_argument("--timeout", type=float, default=5.0)
    args = ap.parse_args()
    with Client(args.state_dir, admin=args.admin, timeout=args.timeout) as c:
        print(json.dumps(c.status(), indent=2))
