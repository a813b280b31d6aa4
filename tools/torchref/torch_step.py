#!/usr/bin/python3
"""torch_step.py - the PyTorch reference for `sv-bench train`.

Times the same training step in PyTorch (float32): gather B random pairs from
an in-memory dataset, Z = X W, row-normalize, the loss of LOSSES.md in batch
mode computed the efficient way (one similarity matrix; a diagonal-masked
log-softmax for NT-Xent; masked distance means for Contrastive), autograd,
torch.optim.Adam.  Beside it, in the same run and interleaved step by step,
it times the four matrix products of that step with torch.mm (same shapes,
same threads), as sv-bench does with raw OpenBLAS.  Same flags and --json
keys as `sv-bench train`.

--golden FILE evaluates the loss and dL/dW on a golden case from
../shared/reference/golden (batch mode) in float64 and float32 and prints
the absolute errors, to show this reference computes the same loss.

Only batch mode is implemented (pairs/graph are refused).  Uses Debian's
python3-torch; not needed by any test.
"""
import argparse
import json
import statistics
import sys
import time

import torch
import torch.nn.functional as F

N_ROWS = 8192
N_CLASS = 10


def batch_loss(E, y, kind, temperature=0.07, pos_margin=0.0, neg_margin=1.0):
    """LOSSES.md batch mode on normalized rows E (2n x d), labels y (n, 0/1)."""
    m = E.shape[0]
    n = m // 2
    eye = torch.eye(m, dtype=torch.bool, device=E.device)
    same = y.bool()
    S = E @ E.t()
    if kind == "ntxent":
        # anchors: both rows of each y=1 pair; candidates: every other row
        # (its partner is the positive, the rest are its negatives).
        if not bool(same.any()) or m < 3:
            return (E * 0).sum()
        logits = (S / temperature).masked_fill(eye, float("-inf"))
        lsm = torch.log_softmax(logits, dim=1)
        partner = (torch.arange(m, device=E.device) + n) % m
        per_row = -lsm[torch.arange(m, device=E.device), partner]
        return per_row[same.repeat(2)].mean()
    # contrastive: direct-style distance on unit rows, gradient 0 at d = 0
    d2 = (2.0 - 2.0 * S).clamp_min(0.0)
    pos = torch.zeros(m, m, dtype=torch.bool, device=E.device)
    idx = torch.nonzero(same).flatten()
    pos[idx, idx + n] = True
    pos[idx + n, idx] = True
    neg = ~(pos | eye)
    nz = d2 > 0
    d = torch.where(nz, torch.sqrt(torch.where(nz, d2, torch.ones_like(d2))),
                    torch.zeros_like(d2))
    lp = torch.relu(d - pos_margin)[pos]
    ln = torch.relu(neg_margin - d)[neg]
    zero = (E * 0).sum()
    pos_loss = lp.sum() / (lp > 0).sum() if bool((lp > 0).any()) else zero
    neg_loss = ln.sum() / (ln > 0).sum() if bool((ln > 0).any()) else zero
    return pos_loss + neg_loss


def read_golden(path):
    vals, lines = {}, open(path).read().split("\n")
    i = 0
    while i < len(lines):
        tok = lines[i].split()
        i += 1
        if not tok or tok[0].startswith("#"):
            continue
        if tok[0] == "case":
            vals["case"] = tok[1]
        elif tok[0] in ("str", "int", "real"):
            vals[tok[1]] = {"str": str, "int": int, "real": float}[tok[0]](tok[2])
        elif tok[0] == "ivec":
            vals[tok[1]] = [int(v) for v in lines[i].split()]
            i += 1
        elif tok[0] == "mat":
            r = int(tok[2])
            vals[tok[1]] = [[float(v) for v in lines[i + k].split()] for k in range(r)]
            i += r
    return vals


def check_golden(path):
    g = read_golden(path)
    if g.get("kind") != "loss" or g.get("mode") != "batch":
        print(f"{path}: not a batch-mode loss case", file=sys.stderr)
        return 2
    worst = 0.0
    for dtype in (torch.float64, torch.float32):
        X = torch.cat([torch.tensor(g["X1"], dtype=dtype), torch.tensor(g["X2"], dtype=dtype)])
        W = torch.tensor(g["W"], dtype=dtype, requires_grad=True)
        y = torch.tensor(g["y"])
        E = F.normalize(X @ W, dim=1)
        L = batch_loss(E, y, g["loss_fn"], g.get("temperature", 0.07),
                       g.get("pos_margin", 0.0), g.get("neg_margin", 1.0))
        L.backward()
        dW_ref = torch.tensor(g["dW"], dtype=torch.float64)
        el = abs(float(L) - g["loss"])
        ew = float((W.grad.double() - dW_ref).abs().max())
        scale = max(1.0, float(dW_ref.abs().max()))
        print(f"{g['case']} {str(dtype).split('.')[-1]}: loss {float(L):.10g} "
              f"golden {g['loss']:.10g} abs err {el:.3g}, max |dW err| {ew:.3g}")
        if dtype == torch.float32:
            worst = max(worst, el / max(1.0, abs(g["loss"])), ew / scale)
    return 0 if worst <= 1e-5 else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--d-in", type=int, default=784)
    ap.add_argument("--d-out", type=int, default=64)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--loss", choices=["ntxent", "contrastive"], default="ntxent")
    ap.add_argument("--mode", choices=["batch", "pairs", "graph"], default="batch")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--golden", metavar="FILE", nargs="+",
                    help="check the loss against golden case files and exit")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.golden:
        return max([check_golden(p) for p in a.golden])
    if a.mode != "batch":
        print("torch_step.py: only --mode batch is implemented", file=sys.stderr)
        return 2

    gen = torch.Generator().manual_seed(0x5eed)
    B, m, di, do = a.batch, 2 * a.batch, a.d_in, a.d_out
    data = torch.rand(N_ROWS, di, generator=gen) * 2 - 1
    W = torch.nn.Parameter(torch.linalg.qr(torch.randn(di, do, generator=gen))[0]
                           if do <= di else torch.randn(di, do, generator=gen) * 0.1)
    opt = torch.optim.Adam([W])
    gtimes = {}

    def step():
        t0 = time.perf_counter()
        a_idx = torch.randint(0, N_ROWS, (B,), generator=gen)
        y = torch.randint(0, 2, (B,), generator=gen)
        off = torch.randint(1, N_ROWS // N_CLASS, (B,), generator=gen)
        other = torch.randint(1, N_CLASS, (B,), generator=gen)
        b_idx = torch.where(y.bool(), (a_idx + N_CLASS * off) % (N_ROWS - N_ROWS % N_CLASS),
                            (a_idx + other) % N_ROWS)
        X = torch.cat([data[a_idx], data[b_idx]])
        gtimes["gather"] = time.perf_counter() - t0
        opt.zero_grad(set_to_none=True)
        E = F.normalize(X @ W, dim=1)
        with torch.no_grad():
            scores = (E[:B] * E[B:]).sum(1)  # pre-step scores, as the C trainer reports
        L = batch_loss(E, y, a.loss)
        L.backward()
        opt.step()
        return scores

    Xr = torch.rand(m, di, generator=gen)
    Wr = torch.rand(di, do, generator=gen)

    def gemms():
        Z = torch.mm(Xr, Wr)
        S = torch.mm(Z, Z.t())
        G = torch.mm(S, Z)
        return torch.mm(Xr.t(), G)

    warm = 2 if a.steps < 5 else 5
    for _ in range(warm):
        step()
        gemms()
    ts, tg, tgather = [], [], []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        step()
        ts.append(time.perf_counter() - t0)
        tgather.append(gtimes["gather"])
        t0 = time.perf_counter()
        gemms()
        tg.append(time.perf_counter() - t0)
    step_s, gemm_s = statistics.median(ts), statistics.median(tg)
    gather_s = statistics.median(tgather)
    flops = 2.0 * (2.0 * m * di * do + 2.0 * m * m * do)
    if a.json:
        print(json.dumps({
            "bench": "train", "impl": "torch", "loss": a.loss, "mode": a.mode,
            "d_in": di, "d_out": do, "batch": B, "threads": a.threads, "steps": a.steps,
            "step_ms": step_s * 1e3, "gather_ms": gather_s * 1e3,
            "pairs_per_s": B / step_s, "step_gflops": flops / step_s * 1e-9,
            "gemm_ms": gemm_s * 1e3, "gemm_gflops": flops / gemm_s * 1e-9,
            "ratio_step_gemm": step_s / gemm_s}))
    else:
        print(f"torch {torch.__version__} train {a.loss}/{a.mode} {di}->{do} batch {B} pairs, "
              f"{a.threads} threads, median of {a.steps} steps")
        print(f"  step (gather+fwd+loss+bwd+adam) {step_s * 1e3:9.3f} ms  {B / step_s:10.0f} pairs/s"
              f"  {flops / step_s * 1e-9:7.2f} GFLOP/s  (gather {gather_s * 1e3:.3f} ms)")
        print(f"  torch.mm GEMMs only             {gemm_s * 1e3:9.3f} ms  {B / gemm_s:10.0f} pairs/s"
              f"  {flops / gemm_s * 1e-9:7.2f} GFLOP/s")
        print(f"  ratio step / GEMM-only          {step_s / gemm_s:9.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
