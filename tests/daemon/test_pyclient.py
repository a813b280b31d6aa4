#!/usr/bin/python3
"""test_pyclient.py SIMVERIFYD SOURCE_ROOT - python/simverify (the package) against
the real daemon (simverifyd --state-dir DIR in a temp dir, small dims):
items, publish (fire-and-forget and acked, idempotent with a client id),
flush, score, score_batch, topk, status and the admin verbs, errors and
timeouts.  Exits 0 when every check passes, 77 (skip) without the daemon."""
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

BIN, SRC = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.join(SRC, "python"))
import simverify  # noqa: E402

D_IN, D_OUT = 16, 4


def main():
    if not os.access(BIN, os.X_OK):
        print("SKIP: no simverifyd at", BIN)
        return 77
    tmp = tempfile.TemporaryDirectory(prefix="sv-pyclient-")
    state = os.path.join(tmp.name, "state")
    args = [BIN, "--state-dir", state, "-o", "model.d_in=%d" % D_IN, "-o", "model.d_out=%d" % D_OUT,
            "-o", "train.batch_pairs=8", "-o", "train.max_wait_ms=50ms",
            "-o", "store.map_size=8MiB", "-o", "query.min_window_pairs=10"]
    if os.geteuid() == 0:
        args.append("--allow-root")
    log = open(os.path.join(tmp.name, "daemon.log"), "wb")
    proc = subprocess.Popen(args, stdout=log, stderr=log)
    try:
        run(state, proc)
        check_per_pair_keys(state)
        check_model_get_put(state)
    except BaseException:
        log.flush()
        with open(os.path.join(tmp.name, "daemon.log"), "rb") as f:
            sys.stderr.write("--- daemon log\n" + f.read().decode(errors="replace")[-3000:])
        raise
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        tmp.cleanup()
    print("all python client checks passed")
    return 0


def wait_up(state, proc):
    end = time.monotonic() + 30
    while time.monotonic() < end:
        assert proc.poll() is None, "daemon exited %s" % proc.returncode
        try:
            with simverify.Client(state, timeout=0.5) as c:
                return c.status()
        except (ConnectionError, TimeoutError):
            time.sleep(0.2)
    raise AssertionError("daemon did not answer within 30 s")


def run(state, proc):
    rng = np.random.default_rng(11)
    st = wait_up(state, proc)
    for k in ("model_version", "steps", "pairs_seen", "items", "backlog", "auc", "eer",
              "threshold"):
        assert k in st, k
    print("ok: status")

    with simverify.Client(state, client_id="pytest-1", timeout=10) as c:
        vecs = {("it%d" % i): rng.standard_normal(D_IN).astype(np.float32) for i in range(6)}
        for k, v in vecs.items():
            c.upsert(k, v)
        assert np.array_equal(c.get("it3"), vecs["it3"])
        c.delete("it5")
        try:
            c.get("it5")
            raise AssertionError("get of a deleted item succeeded")
        except simverify.SimverifyError as e:
            assert e.status == "not_found", e
        print("ok: upsert / get / delete")

        # acked with a client id: committed once, a repeat is a duplicate
        a = rng.standard_normal((20, D_IN)).astype(np.float32)
        b = rng.standard_normal((20, D_IN)).astype(np.float32)
        labels = np.arange(20) % 2
        ack = c.publish(a, b, labels, acked=True, client_seq=0)
        assert ack.committed == 20 and ack.rejected == 0, ack
        ack = c.publish(a, b, labels, acked=True, client_seq=0)
        assert ack.committed == 0 and ack.duplicate == 20, ack
        # ids, vectors and (id, vector) upserts mixed; an unknown id is rejected
        ack = c.publish(["it0", "it1", ("it9", vecs["it0"])], [vecs["it2"], "it3", "nope"],
                        [1, 0, 1], acked=True, client_seq=100)
        assert ack.n == 3 and ack.committed == 2 and ack.rejected == 1, ack
        assert ack.rows[2][0] == "rejected" and ack.rows[2][2] == "not_found", ack
        # fire and forget
        assert c.publish(a[:5], b[:5], labels[:5]) is None
        print("ok: publish (acked, duplicate, partial, fire-and-forget)")

        c.flush()
        s = wait_for(lambda: (lambda j: j if j["pairs_seen"] >= 27 and j["backlog"] == 0
                              else None)(c.status()), "27 pairs trained")
        assert s["steps"] >= 1, s
        print("ok: flush, pairs trained:", s["pairs_seen"])

        r = c.score("it1", vecs["it1"])
        assert abs(r.score - 1) < 1e-4 and r.match and r.status == "ok", r
        rs = c.score_batch(["it0", vecs["it2"]], ["it1", "it2"])
        assert len(rs) == 2 and abs(rs[1].score - 1) < 1e-4, rs
        try:
            c.score("it0", "nope")
            raise AssertionError("score of an unknown id succeeded")
        except simverify.SimverifyError as e:
            assert e.status == "not_found", e
        try:
            c.score("it0", np.ones(3, np.float32))
            raise AssertionError("score with a wrong dim succeeded")
        except simverify.SimverifyError as e:
            assert e.status == "malformed" and e.reason == 10, e
        print("ok: score, score_batch, errors")

        try:
            hits = c.topk(vecs["it4"], k=3)
            assert hits and hits[0][0] == "it4", hits
            print("ok: topk")
        except simverify.SimverifyError as e:
            assert e.status == "refused" and "not available" in e.message, e
            print("note: this daemon build has no TOPK")

        c.checkpoint()
        vs = c.versions()
        vs = vs["versions"] if isinstance(vs, dict) else vs
        assert vs, vs
        c.pause()
        c.score("it0", "it1")  # queries answer while paused
        c.resume()
        c.rollback(max(v["version"] for v in vs))
        cfg = c.config()
        assert cfg["model.d_in"] == str(D_IN) and "train.lr" in cfg, cfg
        c.reload()
        print("ok: checkpoint, versions, pause/resume, rollback, config, reload")

    with simverify.Client(admin="tcp://127.0.0.1:9", timeout=0.3) as c:
        t0 = time.monotonic()
        try:
            c.status()
            raise AssertionError("status of a missing daemon succeeded")
        except TimeoutError as e:
            assert "cannot reach daemon at tcp://127.0.0.1:9" in str(e), e
        assert time.monotonic() - t0 < 3
    print("ok: timeout")


def check_per_pair_keys(state):
    """Pair i of a message is keyed client_seq + i: overlapping re-sends in
    other batchings store only the new pairs."""
    rng = np.random.default_rng(7)
    a = rng.standard_normal((10, D_IN)).astype(np.float32)
    b = rng.standard_normal((10, D_IN)).astype(np.float32)
    lab = np.arange(10) % 2
    with simverify.Client(state, client_id="per-pair") as c:
        ack = c.publish(a[:6], b[:6], lab[:6], acked=True, client_seq=0)
        assert ack.committed == 6 and ack.duplicate == 0, ack
        ack = c.publish(a, b, lab, acked=True, client_seq=0)
        assert ack.committed == 4 and ack.duplicate == 6, ack
        assert [r[0] for r in ack.rows] == ["duplicate"] * 6 + ["committed"] * 4, ack
        ack = c.publish(a[3:], b[3:], lab[3:], acked=True, client_seq=3)
        assert ack.committed == 0 and ack.duplicate == 7, ack
    print("ok: per-pair idempotency keys (overlap, re-batching)")


def check_model_get_put(state):
    """MODEL_GET returns W and metadata; MODEL_PUT makes W live as a new
    version (dims checked)."""
    with simverify.Client(state) as c:
        w, meta = c.model_get()
        assert w.shape == (D_IN, D_OUT) and w.dtype == np.float32, w.shape
        assert meta["d_in"] == D_IN and meta["d_out"] == D_OUT, meta
        for k in ("loss", "mode", "threshold", "version", "steps"):
            assert k in meta, (k, meta)
        w2 = (w[:, ::-1] * 2).astype(np.float32)
        assert "model stored as v" in c.model_put(w2)
        w3, meta3 = c.model_get()
        assert np.array_equal(w3, w2) and meta3["version"] > meta["version"], meta3
        try:
            c.model_put(np.ones((D_IN - 1, D_OUT), np.float32))
            raise AssertionError("a W of the wrong shape was accepted")
        except simverify.SimverifyError as e:
            assert e.status == "malformed" and "d_in" in e.message, e
        assert np.array_equal(c.model_get()[0], w2)
    print("ok: model_get / model_put")


def wait_for(pred, what, timeout=20):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


if __name__ == "__main__":
    sys.exit(main())
