"""pytest: the simverify Python package against the real daemon.

Run by tests/python/run_pytest.sh from a venv the package was pip-installed
into (SV_EXPECT_INSTALLED=1: the import must come from that venv, not the
source tree).  Each test starts simverifyd (SV_BUILD_ROOT/daemon/simverifyd)
in a temp state directory with small dims.  Covers: items, acked and
fire-and-forget publish, batched SCORE and TOPK, the windowed acked stream
riding out a PAUSE, resuming a client id's seq, StoreFullError, typed
errors, CURVE over tcp://.
"""
import os
import socket
import sys
import threading
import time

import numpy as np
import pytest
import zmq

import simverify
from simverify import Client, SimverifyError, StoreFullError

SRC = os.environ.get("SV_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.path.join(os.environ.get("SV_BUILD_ROOT", os.path.join(SRC, "build")), "daemon",
                   "simverifyd")
sys.path.insert(0, os.path.join(SRC, "tests", "daemon"))
import svclient  # noqa: E402  (starts and stops the daemon; not the package under test)

D = 16
BASE = ["model.d_in=%d" % D, "model.d_out=4", "train.batch_pairs=8", "train.max_wait_ms=50ms",
        "store.sync=none", "query.min_window_pairs=10", "endpoints.http="]


@pytest.fixture
def daemon(request):
    """A started daemon; parametrize with extra -o options via indirect."""
    extra = getattr(request, "param", [])
    d = svclient.Daemon(BIN, opts=BASE + list(extra))
    d.start()
    yield d
    d.stop()
    d.close()


def vecs(n, seed=0):
    return np.random.default_rng(seed).normal(size=(n, D)).astype(np.float32)


def test_the_installed_package_is_the_one_imported():
    if os.environ.get("SV_EXPECT_INSTALLED") != "1":
        pytest.skip("not run from the install venv")
    here = os.path.realpath(os.path.join(SRC, "python"))
    assert not os.path.realpath(simverify.__file__).startswith(here), simverify.__file__
    assert "site-packages" in simverify.__file__


def test_items_publish_score_and_topk_batched(daemon):
    X = vecs(6)
    with Client(daemon.dir, client_id="t-batch") as c:
        for i in range(4):
            c.upsert("it%d" % i, X[i])
        ack = c.publish(["it0", "it1", "it2"], ["it1", "it2", "it3"], [1, 0, 1], acked=True)
        assert isinstance(ack, simverify.Ack) and ack.committed == 3
        assert c.publish([X[4]], [X[5]], [0]) is None  # fire and forget
        c.flush()
        rows = c.score_batch(["it0", "it1", "nobody"], ["it1", X[5], "it2"])
        assert [r.status for r in rows] == ["ok", "ok", "not_found"]
        assert isinstance(rows[0], simverify.Score) and -1 <= rows[0].score <= 1
        assert rows[0].model_version == rows[1].model_version
        res = c.topk_batch(["it0", X[5], "nobody"], k=2)
        assert [st for _, st in res] == ["ok", "ok", "not_found"]
        assert len(res[0][0]) == 2 and res[2][0] == []
        assert c.topk("it0", k=3)[0][0] in {"it0", "it1", "it2", "it3"}
        with pytest.raises(SimverifyError) as e:
            c.score("nobody", "it0")
        assert e.value.status == "not_found"
        with pytest.raises(SimverifyError) as e:
            c.upsert("short", np.ones(D + 1, np.float32))
        assert e.value.status == "malformed"


def test_stream_rides_out_a_pause_and_logs_nothing_twice(daemon):
    n = 600
    A, B = vecs(n, 1), vecs(n, 2)
    labels = np.arange(n) % 2
    with Client(daemon.dir) as admin:
        admin.pause()
        # resumed by another thread (its own Client: one per thread)
        def resume():
            with Client(daemon.dir) as other:
                other.resume()

        later = threading.Timer(0.6, resume)
        later.start()
        with Client(daemon.dir, client_id="t-stream", timeout=2.0) as c:
            ack = c.publish_stream(A, B, labels, batch=50, window=4)
        later.join()
        assert (ack.n, ack.committed, ack.duplicate, ack.rejected) == (n, n, 0, 0), ack
        admin.flush()
        assert admin.status()["counters"]["pairs"]["logged"] == n


def test_a_restarted_publisher_goes_on_from_its_seq(daemon):
    for k in range(2):  # two Clients in turn, one client id, different pairs
        with Client(daemon.dir, client_id="camera-1") as c:
            ack = c.publish(vecs(10, 10 + k), vecs(10, 20 + k), [1] * 10, acked=True)
            assert ack.committed == 10 and ack.client_seq == 10 * k, ack
    with Client(daemon.dir, client_id="camera-1") as c:
        st = c.client_state()
        assert (st["state"], st["next_seq"]) == ("known", 20), st
        assert c.client_state("nobody")["state"] == "none"
        again = c.publish(vecs(10, 10), vecs(10, 20), [1] * 10, acked=True, client_seq=0)
        assert again.duplicate == 10 and again.committed == 0


@pytest.mark.parametrize("daemon", [["store.min_free=1000TiB"]], indirect=True)
def test_a_full_store_raises_store_full(daemon):
    with Client(daemon.dir, client_id="t-full") as c:
        with pytest.raises(StoreFullError) as e:
            c.publish(vecs(2), vecs(2, 1), [1, 0], acked=True)
        assert e.value.status == "store_full" and "store.min_free" in e.value.message
        with pytest.raises(StoreFullError):
            c.publish_stream(vecs(20), vecs(20, 1), [1] * 20, batch=10)
        assert c.status()["store_full"] == "min_free"
        assert c.score_batch([vecs(1)[0]], [vecs(1, 1)[0]])[0].status == "ok"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_curve_over_tcp(tmp_path):
    srv_pub, srv_sec = zmq.curve_keypair()
    cli_pub, cli_sec = zmq.curve_keypair()
    key = tmp_path / "server.key"
    key.write_text("# simverify CURVE secret key\n%s\n" % srv_sec.decode())
    key.chmod(0o600)
    pub = tmp_path / "server.pub"
    pub.write_text("# simverify CURVE public key\n%s\n" % srv_pub.decode())
    mine = tmp_path / "client.key"
    mine.write_text("# simverify CURVE secret key\n%s\n" % cli_sec.decode())
    q, a = ["tcp://127.0.0.1:%d" % free_port() for _ in range(2)]
    d = svclient.Daemon(BIN, opts=BASE + ["endpoints.query=" + q, "endpoints.ingest_acked=" + a,
                                         "security.curve_server_key=%s" % key])
    d.start()
    try:
        with Client(query=q, acked=a, client_id="t-curve", curve_server_key=str(pub),
                    curve_secret_key=str(mine)) as c:
            assert c.publish(vecs(3), vecs(3, 1), [1, 0, 1], acked=True).committed == 3
            assert c.score_batch([vecs(1)[0]], [vecs(1, 1)[0]])[0].status == "ok"
        with Client(query=q, timeout=1.0) as plain:  # no keys: never answered
            with pytest.raises(TimeoutError):
                plain.score_batch([vecs(1)[0]], [vecs(1, 1)[0]])
    finally:
        d.stop()
        d.close()
