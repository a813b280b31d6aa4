#!/usr/bin/python3
"""make_cases.py - new loss and optimizer cases in the golden format, for
`sv-refcheck` to run on cases it has never seen.

The cases in ../shared/reference/golden came from pytorch-metric-learning
itself, at a few small shapes and seeds.  This writes more, at other seeds
and larger shapes (m = 2n rows above 128, where the loss's m x m passes run
in row parts), in the same format (LOSSES.md section 0), computed in float64
by an independent PyTorch formulation of batch mode: torch_step.py's
batch_loss (checked against the PML files with `torch_step.py --golden`),
autograd for dZ and dW, and torch.optim.Adam / SGD for the optimizer cases.
Batch mode only (the formulation has no pairs or graph mode).

usage: tools/torchref/make_cases.py DIR [--seed S]
then:  build/tools/sv-refcheck DIR
Uses Debian's python3-torch; not needed by any test.
"""
import argparse
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_step import batch_loss  # noqa: E402


def rnd(g, *shape, scale=1.0):
    """Inputs rounded to 6 decimals, so strtod of the text is the value used."""
    x = torch.randn(*shape, generator=g, dtype=torch.float64) * scale
    return torch.round(x * 1e6) / 1e6


def fmt(v):
    return "%.17g" % v


class Case:
    def __init__(self, name):
        self.lines = ["# make_cases.py: independent PyTorch float64 formulation (batch mode)",
                      "case " + name]

    def put(self, kind, key, val):
        self.lines.append(f"{kind} {key} {val}")

    def ivec(self, key, v):
        self.lines.append(f"ivec {key} {len(v)}")
        self.lines.append(" ".join(str(int(a)) for a in v))

    def mat(self, key, M, inputs=False):
        self.lines.append(f"mat {key} {M.shape[0]} {M.shape[1]}")
        for row in M.tolist():
            self.lines.append(" ".join(("%.6f" % a) if inputs else fmt(a) for a in row))

    def write(self, path):
        with open(path, "w") as f:
            f.write("\n".join(self.lines + ["end"]) + "\n")


def loss_params(c, kind, p):
    c.put("str", "loss_fn", kind)
    c.put("str", "mode", "batch")
    if kind == "ntxent":
        c.put("real", "temperature", repr(p["temperature"]))
    else:
        c.put("real", "pos_margin", repr(p["pos_margin"]))
        c.put("real", "neg_margin", repr(p["neg_margin"]))


def evaluate(X1, X2, y, W, kind, p):
    """loss, sub-losses and counts, E, dZ, dW in float64."""
    W = W.clone().requires_grad_(True)
    Z = torch.cat([X1, X2]) @ W
    Z.retain_grad()
    E = F.normalize(Z, dim=1)
    L = batch_loss(E, y, kind, p.get("temperature", 0.07), p.get("pos_margin", 0.0),
                   p.get("neg_margin", 1.0))
    L.backward()
    m, npos = E.shape[0], 2 * int(y.sum())
    out = dict(loss=float(L), E=E.detach(), dZ=Z.grad, dW=W.grad,
               n_pos_pairs=npos, n_neg_pairs=m * (m - 1) - npos)
    if kind == "contrastive":
        with torch.no_grad():
            S = E @ E.t()
            d = (2.0 - 2.0 * S).clamp_min(0.0).sqrt()
            pos = torch.zeros(m, m, dtype=torch.bool)
            idx = torch.nonzero(y.bool()).flatten()
            pos[idx, idx + m // 2] = True
            pos[idx + m // 2, idx] = True
            neg = ~(pos | torch.eye(m, dtype=torch.bool))
            lp = torch.relu(d - p["pos_margin"])[pos]
            ln = torch.relu(p["neg_margin"] - d)[neg]
            out["n_pos_active"] = int((lp > 0).sum())
            out["n_neg_active"] = int((ln > 0).sum())
            out["pos_loss"] = float(lp.sum() / (lp > 0).sum()) if out["n_pos_active"] else 0.0
            out["neg_loss"] = float(ln.sum() / (ln > 0).sum()) if out["n_neg_active"] else 0.0
    return out


def loss_case(dirname, name, g, kind, p, n, d_in, d_out):
    X1, X2 = rnd(g, n, d_in), rnd(g, n, d_in)
    y = (torch.rand(n, generator=g) < 0.5).long()
    W = rnd(g, d_in, d_out, scale=0.1)
    r = evaluate(X1, X2, y, W, kind, p)
    c = Case(name)
    c.put("str", "kind", "loss")
    loss_params(c, kind, p)
    for k, v in (("n", n), ("d_in", d_in), ("d_out", d_out)):
        c.put("int", k, v)
    c.mat("X1", X1, True)
    c.mat("X2", X2, True)
    c.ivec("y", y)
    c.mat("W", W, True)
    for k in ("n_pos_pairs", "n_neg_pairs", "n_pos_active", "n_neg_active"):
        if k in r:
            c.put("int", k, r[k])
    for k in ("pos_loss", "neg_loss", "loss"):
        if k in r:
            c.put("real", k, fmt(r[k]))
    c.mat("E", r["E"])
    c.mat("dZ", r["dZ"])
    c.mat("dW", r["dW"])
    c.write(os.path.join(dirname, name + ".txt"))


def optim_case(dirname, name, g, opt, kind, p, n, d_in, d_out, steps=3):
    W = rnd(g, d_in, d_out, scale=0.1)
    c = Case(name)
    c.put("str", "kind", "optimizer")
    c.put("str", "optimizer", opt)
    param = torch.nn.Parameter(W.clone())
    if opt == "adam":
        o = torch.optim.Adam([param], lr=1e-3)
        for k, v in (("lr", "0.001"), ("beta1", "0.9"), ("beta2", "0.999"), ("eps", "1e-08"),
                     ("weight_decay", "0.0")):
            c.put("real", k, v)
        c.put("int", "amsgrad", 0)
    else:
        o = torch.optim.SGD([param], lr=0.1, momentum=0.9)
        for k, v in (("lr", "0.1"), ("momentum", "0.9"), ("dampening", "0.0"),
                     ("weight_decay", "0.0")):
            c.put("real", k, v)
        c.put("int", "nesterov", 0)
    loss_params(c, kind, p)
    for k, v in (("steps", steps), ("n", n), ("d_in", d_in), ("d_out", d_out)):
        c.put("int", k, v)
    c.mat("W0", W, True)
    for t in range(1, steps + 1):
        X1, X2 = rnd(g, n, d_in), rnd(g, n, d_in)
        y = (torch.rand(n, generator=g) < 0.5).long()
        r = evaluate(X1, X2, y, param.detach(), kind, p)
        o.zero_grad()
        param.grad = r["dW"].clone()
        o.step()
        c.mat(f"s{t}.X1", X1, True)
        c.mat(f"s{t}.X2", X2, True)
        c.ivec(f"s{t}.y", y)
        c.put("real", f"s{t}.loss", fmt(r["loss"]))
        c.mat(f"s{t}.dW", r["dW"])
        c.mat(f"s{t}.W", param.detach())
    c.write(os.path.join(dirname, name + ".txt"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir")
    ap.add_argument("--seed", type=int, default=11)
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    g = torch.Generator().manual_seed(a.seed)
    nt = lambda t: dict(temperature=t)  # noqa: E731
    co = lambda pm, nm: dict(pos_margin=pm, neg_margin=nm)  # noqa: E731
    s = a.seed
    loss_case(a.dir, f"new{s}_ntxent_t0.1_n37", g, "ntxent", nt(0.1), 37, 20, 8)
    loss_case(a.dir, f"new{s}_ntxent_t0.07_n100", g, "ntxent", nt(0.07), 100, 50, 16)
    loss_case(a.dir, f"new{s}_ntxent_t0.5_n150", g, "ntxent", nt(0.5), 150, 64, 32)
    loss_case(a.dir, f"new{s}_contrastive_n100", g, "contrastive", co(0.0, 1.0), 100, 50, 16)
    loss_case(a.dir, f"new{s}_contrastive_m0.1_0.8_n150", g, "contrastive", co(0.1, 0.8),
              150, 64, 32)
    optim_case(a.dir, f"new{s}_optim_adam_ntxent_n100", g, "adam", "ntxent", nt(0.07), 100,
               40, 8)
    optim_case(a.dir, f"new{s}_optim_sgd_contrastive_n80", g, "sgd", "contrastive",
               co(0.0, 1.0), 80, 30, 8)
    print(f"wrote 7 cases to {a.dir}")


if __name__ == "__main__":
    main()
