#!/usr/bin/python3
"""torch_train.py - the PyTorch reference for simverify's one-pass training run.

Trains W (d_in x d_out) in ONE pass over a training pair stream, in arrival
order, with NTXentLoss in `batch` label mode (LOSSES.md 3.1: the two rows of a
same pair share a label, every other row of the batch is a negative), Adam, and
then scores an evaluation pair file with the cosine of normalize(W^T x).  It
prints raw-cosine and trained metrics (AUC, EER, TAR@FAR 1e-2 and 1e-3) so the
daemon's figures from the same files can be put beside them.

Files are the SIMVEC1 / SIMPAIR1 formats of ../shared/data/README.md.  Needs
Debian's python3-torch and python3-numpy (run with /usr/bin/python3).

  tools/torchref/torch_train.py --vec-train fmnist_train.vec \
      --pairs-train fmnist_train_n200000_p50_s1.pairs \
      --vec-eval fmnist_t10k.vec --pairs-eval fmnist_t10k_n20000_p50_s1.pairs \
      --temperature 0.2 --batch 256 --lr 1e-3 --d-out 64 [--json]

--init W0.npy starts from a given W (d_in x d_out float32, e.g. a fresh
daemon's `simverifyctl export-model W0.npy`) instead of torch's orthogonal
init with --seed, so both sides start from the same point.
"""
import argparse
import json
import struct
import sys
import time

import numpy as np
import torch

HDR = 64
PAIR_DT = np.dtype([("a", "<u4"), ("b", "<u4"), ("label", "u1"),
                    ("ca", "u1"), ("cb", "u1"), ("pad", "u1")])


def load_vec(path):
    with open(path, "rb") as f:
        h = f.read(HDR)
    if h[:8] != b"SIMVEC1\0":
        sys.exit("%s: not a SIMVEC1 file" % path)
    _ver, _hb, n, d, _dt, id_base = struct.unpack("<6I", h[8:32])
    data = np.memmap(path, "<f4", "r", offset=HDR, shape=(n, d))
    return np.asarray(data), id_base


def load_pairs(path):
    with open(path, "rb") as f:
        h = f.read(HDR)
    if h[:8] != b"SIMPAIR1":
        sys.exit("%s: not a SIMPAIR1 file" % path)
    n = struct.unpack("<I", h[16:20])[0]
    return np.fromfile(path, PAIR_DT, count=n, offset=HDR)


def roc_metrics(scores, labels):
    """Exact ROC (accept if score >= t, one point per distinct score)."""
    order = np.argsort(-scores, kind="mergesort")
    s, y = scores[order], labels[order].astype(np.int64)
    P, N = int(y.sum()), int(len(y) - y.sum())
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # end of each tie group
    tp = np.cumsum(y)[last]
    fp = np.cumsum(1 - y)[last]
    tpr = np.r_[0.0, tp / P]
    fpr = np.r_[0.0, fp / N]
    auc = float(np.sum((fpr[1:] - fpr[:-1]) * (tpr[1:] + tpr[:-1]) / 2))
    fnr = 1 - tpr
    k = int(np.flatnonzero(fpr >= fnr)[0])
    if k == 0:
        eer = float(fpr[0])
    else:
        d0, d1 = fnr[k - 1] - fpr[k - 1], fnr[k] - fpr[k]
        w = d0 / (d0 - d1) if d0 != d1 else 0.0
        eer = float(fpr[k - 1] + w * (fpr[k] - fpr[k - 1]))
    tar = {f: float(tpr[fpr <= f].max()) for f in (1e-2, 1e-3)}
    return dict(auc=auc, eer=eer, tar_far_1e2=tar[1e-2], tar_far_1e3=tar[1e-3])


def ntxent_batch(E, y, tau):
    """NTXentLoss in batch label mode, as PML computes it (LOSSES.md 5)."""
    n = len(y)
    S = E @ E.T / tau
    S.fill_diagonal_(float("-inf"))           # the diagonal is in neither list
    same = torch.nonzero(y).flatten()
    if len(same) == 0 or n < 2:
        return E.sum() * 0
    anchors = torch.cat([same, same + n])
    positives = torch.cat([same + n, same])
    lse = torch.logsumexp(S[anchors], dim=1)  # positive + every other row
    return (lse - S[anchors, positives]).mean()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vec-train", required=True)
    ap.add_argument("--pairs-train", required=True)
    ap.add_argument("--vec-eval", required=True)
    ap.add_argument("--pairs-eval", required=True)
    ap.add_argument("--d-out", type=int, default=64)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--temperature", type=float, default=0.2)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--init", metavar="W0.npy",
                    help="initial W (d_in x d_out float32) instead of orthogonal_")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)

    Xt, base_t = load_vec(a.vec_train)
    Xe, base_e = load_vec(a.vec_eval)
    pt, pe = load_pairs(a.pairs_train), load_pairs(a.pairs_eval)
    Xt, Xe = torch.from_numpy(np.array(Xt)), torch.from_numpy(np.array(Xe))
    ea, eb = pe["a"].astype(np.int64) - base_e, pe["b"].astype(np.int64) - base_e
    ye = pe["label"]

    def evaluate(W):
        with torch.no_grad():
            za, zb = Xe[ea], Xe[eb]
            if W is not None:
                za, zb = za @ W, zb @ W
            za = torch.nn.functional.normalize(za, dim=1)
            zb = torch.nn.functional.normalize(zb, dim=1)
            return roc_metrics((za * zb).sum(1).numpy().astype(np.float64), ye)

    before = evaluate(None)
    if a.init:
        W = torch.from_numpy(np.array(np.load(a.init), dtype=np.float32))
        if tuple(W.shape) != (Xt.shape[1], a.d_out):
            sys.exit("%s: W is %s, expected (%d, %d)" % (a.init, tuple(W.shape),
                                                         Xt.shape[1], a.d_out))
    else:
        W = torch.empty(Xt.shape[1], a.d_out)
        torch.nn.init.orthogonal_(W)
    W.requires_grad_(True)
    opt = torch.optim.Adam([W], lr=a.lr)
    ta = torch.from_numpy(pt["a"].astype(np.int64) - base_t)
    tb = torch.from_numpy(pt["b"].astype(np.int64) - base_t)
    ty = torch.from_numpy(pt["label"].astype(np.int64))
    t0 = time.perf_counter()
    steps = 0
    for s in range(0, len(pt), a.batch):
        X = torch.cat([Xt[ta[s:s + a.batch]], Xt[tb[s:s + a.batch]]])
        E = torch.nn.functional.normalize(X @ W, dim=1)
        loss = ntxent_batch(E, ty[s:s + a.batch], a.temperature)
        opt.zero_grad()
        loss.backward()
        opt.step()
        steps += 1
    secs = time.perf_counter() - t0
    after = evaluate(W.detach())
    out = dict(steps=steps, pairs=len(pt), train_seconds=secs,
               pairs_per_s=len(pt) / secs, before=before, after=after,
               temperature=a.temperature, batch=a.batch, lr=a.lr, d_out=a.d_out)
    if a.json:
        print(json.dumps(out))
    else:
        print("%d steps of %d pairs, %.0f pairs/s" % (steps, a.batch, out["pairs_per_s"]))
        for name, m in (("raw cosine", before), ("after one pass", after)):
            print("%-15s AUC %.4f  EER %.4f  TAR@FAR1e-2 %.4f  TAR@FAR1e-3 %.4f"
                  % (name, m["auc"], m["eer"], m["tar_far_1e2"], m["tar_far_1e3"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
