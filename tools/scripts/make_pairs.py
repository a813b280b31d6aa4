#!/usr/bin/python3
"""make_pairs.py - simverify's generator of .vec / .pairs files from Fashion-MNIST.

Writes the SIMVEC1 vectors file and the SIMPAIR1 pairs file described in
../shared/data/README.md (and in include/sv/pairfile.h, whose C reader is
the one simverify uses), with the sampling rules of that README:

  * exactly round(N * pos_frac) positives (Python's round), the rest negatives;
  * positive: a class from a stratified list (every class equally often, the
    remainder going to the lowest class numbers), shuffled; then two distinct
    images of that class, uniformly;
  * negative: an ordered class pair (c1 != c2) from a stratified list of all
    ordered pairs, shuffled; then one image of each class, uniformly;
  * no unordered pair {a, b} twice in a file (a repeat is drawn again);
  * positives and negatives interleaved by one random permutation;
  * RNG numpy.random.default_rng([seed, split_code]), split_code 0 train, 1 t10k.

Features: "zl2" (default, code 1) x = pix/255, x -= mean(x), x /= ||x||_2;
"l2" (code 2) without the centring.  Means and norms are taken in float64
and applied in float32.

Byte-identity with the reference ../shared/data/make_pairs.py: the .vec
files ARE byte-identical (same layout, same float32 arithmetic; the test
tests/python/test_make_pairs.py checks this).  The .pairs files are NOT:
the same rules are applied with a different order of random draws, so the
records differ; the header, counts and every invariant above agree.

Run with /usr/bin/python3 (numpy only).  Same flags as the reference:
  --split {train,t10k} --n-pairs N --pos-frac F --seed S --feature {zl2,l2}
  --src DIR --out-dir DIR --prefix P --pairs-out PATH --no-vectors
  --info FILE...
Output names: <prefix>[-<feature> if not zl2]_<split>.vec and
<prefix>_<split>_n<N>_p<round(100*F)>_s<S>.pairs.
"""
import argparse
import gzip
import os
import struct
import sys

import numpy as np

DEFAULT_SRC = "/usr/share/datasets/fashion-mnist"
# split -> (split code, first global id, idx image file, idx label file)
SPLIT_INFO = {
    "train": (0, 0, "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "t10k": (1, 60000, "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
FEATURE_CODE = {"zl2": 1, "l2": 2}
HEADER = 64
VEC_FMT = "<8s8I24x"     # magic, version, header_bytes, n_rows, dim, dtype,
                         # id_base, feature, n_classes, reserved
PAIR_FMT = "<8s10I16x"   # magic, version, header_bytes, n_pairs, n_pos, dim,
                         # record_bytes, seed, split, id_lo, id_hi, reserved
RECORD = np.dtype({"names": ["a", "b", "label", "class_a", "class_b", "reserved"],
                   "formats": ["<u4", "<u4", "u1", "u1", "u1", "u1"]})
assert struct.calcsize(VEC_FMT) == HEADER and struct.calcsize(PAIR_FMT) == HEADER
assert RECORD.itemsize == 12


def load_idx_gz(path):
    """A uint8 idx array (big-endian dims) from a gzip file."""
    with gzip.open(path, "rb") as fh:
        raw = fh.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError("%s: expected an unsigned-byte idx file" % path)
    shape = struct.unpack(">%dI" % ndim, raw[4:4 + 4 * ndim])
    arr = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(shape)):
        raise ValueError("%s: %d values, header says %s" % (path, arr.size, shape))
    return arr.reshape(shape)


def features(pixels, kind):
    """float32 rows of unit L2 norm (see the module docstring)."""
    x = pixels.reshape(pixels.shape[0], -1).astype(np.float32) / np.float32(255.0)
    if kind == "zl2":
        mu = np.mean(x, axis=1, dtype=np.float64)
        x -= mu.astype(np.float32)[:, None]
    sq = np.sum(x.astype(np.float64) ** 2, axis=1)
    norm = np.maximum(np.sqrt(sq), 1e-12).astype(np.float32)
    x /= norm[:, None]
    return np.ascontiguousarray(x, dtype="<f4")


def save_vec(path, rows, classes, id_base, feature_code):
    n_rows, dim = rows.shape
    n_classes = 0 if classes is None else int(classes.max()) + 1
    head = struct.pack(VEC_FMT, b"SIMVEC1\0", 1, HEADER, n_rows, dim, 1, id_base,
                       feature_code, n_classes)
    tmp = path + ".tmp"
    with open(tmp, "wb") as fh:
        fh.write(head)
        fh.write(np.ascontiguousarray(rows, dtype="<f4").tobytes())
        if classes is not None:
            fh.write(np.asarray(classes, dtype=np.uint8).tobytes())
    os.replace(tmp, path)


def save_pairs(path, records, dim, seed, split_code, id_lo, id_hi):
    head = struct.pack(PAIR_FMT, b"SIMPAIR1", 1, HEADER, len(records),
                       int(np.count_nonzero(records["label"])), dim, RECORD.itemsize,
                       seed, split_code, id_lo, id_hi)
    tmp = path + ".tmp"
    with open(tmp, "wb") as fh:
        fh.write(head)
        fh.write(records.tobytes())
    os.replace(tmp, path)


def stratified(n_kinds, count, rng):
    """count entries of 0..n_kinds-1, each kind equally often (the first
    count % n_kinds kinds once more), in random order."""
    plan = np.arange(count, dtype=np.int64) % n_kinds
    rng.shuffle(plan)
    return plan


class PairSampler:
    """Draws unordered-unique pairs of row indices from class members."""

    def __init__(self, labels, rng):
        self.rng = rng
        self.n = len(labels)
        self.n_classes = int(labels.max()) + 1
        order = np.argsort(labels, kind="stable")
        self.sizes = np.bincount(labels, minlength=self.n_classes).astype(np.int64)
        self.start = np.concatenate([[0], np.cumsum(self.sizes)[:-1]])
        self.members = order          # rows of class c: members[start[c]:start[c]+sizes[c]]
        self.used = set()             # keys min*n + max of pairs already drawn

    def _pick(self, cls, offset):
        return self.members[self.start[cls] + offset]

    def _draw(self, cls_a, cls_b, same):
        if same:
            i = self.rng.integers(0, self.sizes[cls_a])
            j = self.rng.integers(0, self.sizes[cls_a] - 1)
            j = np.where(j >= i, j + 1, j)
        else:
            i = self.rng.integers(0, self.sizes[cls_a])
            j = self.rng.integers(0, self.sizes[cls_b])
        return self._pick(cls_a, i), self._pick(cls_b, j)

    def sample(self, cls_a, cls_b, same):
        """One pair per (cls_a[k], cls_b[k]); repeats are drawn again."""
        out_a = np.empty(len(cls_a), dtype=np.int64)
        out_b = np.empty(len(cls_a), dtype=np.int64)
        pending = np.arange(len(cls_a))
        while pending.size:
            a, b = self._draw(cls_a[pending], cls_b[pending], same)
            keys = np.minimum(a, b) * self.n + np.maximum(a, b)
            retry = []
            for slot, key, ra, rb in zip(pending.tolist(), keys.tolist(), a.tolist(),
                                         b.tolist()):
                if key in self.used:
                    retry.append(slot)
                    continue
                self.used.add(key)
                out_a[slot] = ra
                out_b[slot] = rb
            pending = np.asarray(retry, dtype=np.int64)
        return out_a, out_b


def make_stream(labels, n_pairs, pos_frac, rng):
    """Row indices (a, b) and labels of n_pairs pairs in arrival order."""
    n_pos = int(round(n_pairs * pos_frac))
    n_neg = n_pairs - n_pos
    sampler = PairSampler(labels, rng)
    k = sampler.n_classes
    pos_cls = stratified(k, n_pos, rng)
    pa, pb = sampler.sample(pos_cls, pos_cls, True)
    ordered = np.array([(i, j) for i in range(k) for j in range(k) if i != j],
                       dtype=np.int64).reshape(-1, 2)
    neg_plan = stratified(len(ordered), n_neg, rng)
    na, nb = sampler.sample(ordered[neg_plan, 0], ordered[neg_plan, 1], False)
    a = np.concatenate([pa, na])
    b = np.concatenate([pb, nb])
    lab = np.concatenate([np.ones(n_pos, np.uint8), np.zeros(n_neg, np.uint8)])
    perm = rng.permutation(n_pairs)
    return a[perm], b[perm], lab[perm]


def show_info(path):
    with open(path, "rb") as fh:
        head = fh.read(HEADER)
    if head[:8] == b"SIMVEC1\0" and len(head) == HEADER:
        f = struct.unpack(VEC_FMT, head)
        names = ("version", "header_bytes", "n_rows", "dim", "dtype", "id_base", "feature",
                 "n_classes")
        print("%s: vectors %s" % (path, " ".join("%s=%d" % kv for kv in zip(names, f[1:]))))
    elif head[:8] == b"SIMPAIR1" and len(head) == HEADER:
        f = struct.unpack(PAIR_FMT, head)
        names = ("version", "header_bytes", "n_pairs", "n_pos", "dim", "record_bytes",
                 "seed", "split", "id_lo", "id_hi")
        print("%s: pairs %s" % (path, " ".join("%s=%d" % kv for kv in zip(names, f[1:]))))
        rec = np.fromfile(path, dtype=RECORD, count=min(3, f[3]), offset=HEADER)
        print("  first records:", [tuple(int(v) for v in r) for r in rec])
    else:
        raise SystemExit("%s: neither SIMVEC1 nor SIMPAIR1" % path)


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", choices=sorted(SPLIT_INFO), default="train")
    ap.add_argument("--n-pairs", type=int, default=200000)
    ap.add_argument("--pos-frac", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--feature", choices=sorted(FEATURE_CODE), default="zl2")
    ap.add_argument("--src", default=DEFAULT_SRC, help="directory of the idx .gz files")
    ap.add_argument("--out-dir", default=".")
    ap.add_argument("--prefix", default="fmnist")
    ap.add_argument("--pairs-out", help="path of the pairs file (overrides the name)")
    ap.add_argument("--no-vectors", action="store_true", help="write the pairs file only")
    ap.add_argument("--info", nargs="+", metavar="FILE", help="print file headers and exit")
    args = ap.parse_args(argv)
    if not args.info and (args.n_pairs <= 0 or not 0.0 <= args.pos_frac <= 1.0):
        ap.error("need --n-pairs > 0 and 0 <= --pos-frac <= 1")
    if not 0 <= args.seed < 2 ** 32:
        ap.error("--seed must fit in uint32")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.info:
        for path in args.info:
            show_info(path)
        return 0
    split_code, id_base, img_name, lab_name = SPLIT_INFO[args.split]
    pixels = load_idx_gz(os.path.join(args.src, img_name))
    labels = load_idx_gz(os.path.join(args.src, lab_name)).astype(np.uint8)
    n_rows = pixels.shape[0]
    dim = int(np.prod(pixels.shape[1:]))
    os.makedirs(args.out_dir, exist_ok=True)
    stem = args.prefix if args.feature == "zl2" else "%s-%s" % (args.prefix, args.feature)
    if not args.no_vectors:
        vec_path = os.path.join(args.out_dir, "%s_%s.vec" % (stem, args.split))
        save_vec(vec_path, features(pixels, args.feature), labels, id_base,
                 FEATURE_CODE[args.feature])
        print("wrote %s (%d bytes)" % (vec_path, os.path.getsize(vec_path)))

    rng = np.random.default_rng([args.seed, split_code])
    a, b, lab = make_stream(labels, args.n_pairs, args.pos_frac, rng)
    rec = np.zeros(args.n_pairs, dtype=RECORD)
    rec["a"] = a + id_base
    rec["b"] = b + id_base
    rec["label"] = lab
    rec["class_a"] = labels[a]
    rec["class_b"] = labels[b]
    if not np.array_equal(rec["class_a"] == rec["class_b"], lab == 1):
        raise SystemExit("internal error: labels disagree with classes")
    pairs_path = args.pairs_out or os.path.join(
        args.out_dir, "%s_%s_n%d_p%d_s%d.pairs" % (args.prefix, args.split, args.n_pairs,
                                                   round(100 * args.pos_frac), args.seed))
    save_pairs(pairs_path, rec, dim, args.seed, split_code, id_base, id_base + n_rows)
    print("wrote %s (%d bytes): n_pairs=%d n_pos=%d distinct images=%d"
          % (pairs_path, os.path.getsize(pairs_path), args.n_pairs, int(lab.sum()),
             np.unique(np.concatenate([a, b])).size))
    return 0


if __name__ == "__main__":
    sys.exit(main())
