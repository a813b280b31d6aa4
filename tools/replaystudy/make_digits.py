#!/usr/bin/python3
"""make_digits.py - the UCI 8x8 digits (scikit-learn's digits.csv.gz, 1797
images, 64 pixels 0..16, 10 classes) as .vec/.pairs files for replaystudy.

The images are split once by a seeded permutation into a train part (ids
0..n_train-1) and a test part (ids n_train..1796, id_base n_train), so test
pairs never touch a train image.  Features are the shared generator's "zl2"
(scaled, centred per vector, unit L2 norm) with the scale 16 instead of 255.
Pair sampling, the record layout and the writers are those of
../shared/data/make_pairs.py, imported from it (pass --make-pairs PATH).

usage: make_digits.py --csv digits.csv.gz --out-dir DIR
       [--make-pairs /work/shared/data/make_pairs.py] [--n-train 1297]
       [--train-pairs 20000] [--test-pairs 10000] [--seed 1]
"""
import argparse
import gzip
import importlib.util
import os

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--csv", required=True)
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--make-pairs", default="/work/shared/data/make_pairs.py")
    ap.add_argument("--n-train", type=int, default=1297)
    ap.add_argument("--train-pairs", type=int, default=20000)
    ap.add_argument("--test-pairs", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()

    spec = importlib.util.spec_from_file_location("make_pairs", a.make_pairs)
    mp = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mp)

    with gzip.open(a.csv, "rt") as f:
        m = np.loadtxt(f, delimiter=",", dtype=np.float64)
    pix, y = m[:, :64], m[:, 64].astype(np.uint8)
    perm = np.random.default_rng([a.seed, 99]).permutation(len(y))
    pix, y = pix[perm], y[perm]
    x = pix.astype(np.float32) / np.float32(16.0)
    x -= x.mean(axis=1, keepdims=True, dtype=np.float64).astype(np.float32)
    n = np.sqrt(np.einsum("ij,ij->i", x, x, dtype=np.float64))
    x /= np.maximum(n, 1e-12).astype(np.float32)[:, None]
    nt = a.n_train
    parts = [("train", 0, 0, nt, a.train_pairs), ("test", 1, nt, len(y), a.test_pairs)]
    for name, code, lo, hi, npairs in parts:
        vec = os.path.join(a.out_dir, "digits_%s.vec" % name)
        mp.write_vec(vec, x[lo:hi], y[lo:hi], id_base=lo, feature=1)
        rng = np.random.default_rng([a.seed, code])
        ia, ib, lab = mp.sample_pairs(y[lo:hi], npairs, 0.5, rng)
        rec = np.zeros(npairs, mp.PAIR_DTYPE)
        rec["a"], rec["b"], rec["label"] = ia + lo, ib + lo, lab
        rec[mp.PAIR_DTYPE.names[3]] = y[lo:hi][ia]
        rec[mp.PAIR_DTYPE.names[4]] = y[lo:hi][ib]
        out = os.path.join(a.out_dir, "digits_%s_n%d_p50_s%d.pairs" % (name, npairs, a.seed))
        mp.write_pairs(out, rec, 64, a.seed, code, lo, hi)
        print("wrote", vec, out, "rows", hi - lo, "pairs", npairs)


if __name__ == "__main__":
    main()
