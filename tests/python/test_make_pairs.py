#!/usr/bin/python3
"""test_make_pairs.py - tools/scripts/make_pairs.py against the reference generator.

usage: test_make_pairs.py OUR_TOOL REFERENCE_TOOL PAIRFILE_CHECK

For small t10k cases, both generators' files must pass the C reader
(pairfile_check: full validation plus class/label consistency with the .vec)
and the sampling invariants of ../shared/data/README.md; our .vec must be
byte-identical to the reference's, and our output deterministic.
Exit 0 on success, 1 with a message per failure.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np

RECORD = np.dtype({"names": ["a", "b", "label", "ca", "cb", "pad"],
                   "formats": ["<u4", "<u4", "u1", "u1", "u1", "u1"]})
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def run(cmd):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        print(r.stdout)
        raise SystemExit("command failed: %s" % " ".join(cmd))
    return r.stdout


def invariants(tag, vec, pairs, n_pairs, pos_frac):
    head = np.fromfile(pairs, dtype="<u4", count=16)
    vh = np.fromfile(vec, dtype="<u4", count=16).tolist()
    n_rows, dim, id_base = vh[4], vh[5], vh[7]
    cls = np.fromfile(vec, dtype=np.uint8, count=n_rows, offset=64 + 4 * n_rows * dim)
    rec = np.fromfile(pairs, dtype=RECORD, offset=64)
    n_pos = int(round(n_pairs * pos_frac))
    check(len(rec) == n_pairs == head[4], "%s: n_pairs %d" % (tag, len(rec)))
    check(int(rec["label"].sum()) == n_pos == head[5], "%s: exact positive count" % tag)
    a = rec["a"].astype(np.int64)
    b = rec["b"].astype(np.int64)
    check(((a >= id_base) & (a < id_base + n_rows) & (b >= id_base) &
           (b < id_base + n_rows)).all(), "%s: ids in range" % tag)
    check((a != b).all(), "%s: a != b" % tag)
    ca, cb = cls[a - id_base], cls[b - id_base]
    check((rec["ca"] == ca).all() and (rec["cb"] == cb).all(), "%s: classes = class block" % tag)
    check(((ca == cb) == (rec["label"] == 1)).all(), "%s: label == same class" % tag)
    keys = np.minimum(a, b) * 100000 + np.maximum(a, b)
    check(np.unique(keys).size == n_pairs, "%s: unordered uniqueness" % tag)
    pos = rec["label"] == 1
    pc = np.bincount(ca[pos], minlength=10)
    check(pc.max() - pc.min() <= 1, "%s: positive classes stratified %s" % (tag, pc))
    nc = np.bincount((ca * 10 + cb)[~pos], minlength=100)
    off_diag = nc[[i * 10 + j for i in range(10) for j in range(10) if i != j]]
    check(nc[[i * 11 for i in range(10)]].sum() == 0, "%s: negatives cross classes" % tag)
    check(off_diag.max() - off_diag.min() <= 1, "%s: ordered negative pairs stratified" % tag)
    check((rec["pad"] == 0).all(), "%s: reserved byte zero" % tag)


def main():
    ours, ref, checker = sys.argv[1:4]
    with tempfile.TemporaryDirectory(prefix="sv-make-pairs-") as tmp:
        for n_pairs, pos_frac, seed in ((500, 0.5, 1), (333, 0.3, 7)):
            dirs = {}
            for tag, tool in (("ours", ours), ("ref", ref)):
                d = os.path.join(tmp, tag)
                run(["/usr/bin/python3", tool, "--split", "t10k", "--n-pairs", str(n_pairs),
                     "--pos-frac", str(pos_frac), "--seed", str(seed), "--out-dir", d])
                dirs[tag] = d
                vec = os.path.join(d, "fmnist_t10k.vec")
                pairs = os.path.join(d, "fmnist_t10k_n%d_p%d_s%d.pairs"
                                     % (n_pairs, round(100 * pos_frac), seed))
                out = run([checker, vec, pairs])
                check(out.startswith("ok ") and "n_pairs=%d " % n_pairs in out,
                      "%s: C reader: %s" % (tag, out.strip()))
                invariants("%s n=%d p=%g" % (tag, n_pairs, pos_frac), vec, pairs, n_pairs,
                           pos_frac)
            with open(os.path.join(dirs["ours"], "fmnist_t10k.vec"), "rb") as f1, \
                    open(os.path.join(dirs["ref"], "fmnist_t10k.vec"), "rb") as f2:
                check(f1.read() == f2.read(), ".vec byte-identical to the reference")
        # deterministic: the same arguments give the same pairs file
        p1 = os.path.join(tmp, "ours", "fmnist_t10k_n333_p30_s7.pairs")
        p2 = os.path.join(tmp, "again.pairs")
        run(["/usr/bin/python3", ours, "--split", "t10k", "--n-pairs", "333", "--pos-frac",
             "0.3", "--seed", "7", "--no-vectors", "--pairs-out", p2])
        with open(p1, "rb") as f1, open(p2, "rb") as f2:
            check(f1.read() == f2.read(), "ours deterministic")
        # the checker itself refuses a broken file
        with open(p2, "r+b") as f:
            f.write(b"SIMPAIRX")
        r = subprocess.run([checker, os.path.join(tmp, "ours", "fmnist_t10k.vec"), p2],
                           stdout=subprocess.PIPE, text=True)
        check(r.returncode == 1 and "bad magic" in r.stdout, "checker rejects bad magic")
    print("%d failure(s)" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
