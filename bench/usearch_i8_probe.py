#!/usr/bin/env python3
"""usearch_i8_probe.py -- why usearch's i8 index loses recall on L2 data.

usearch (2.21, bench/requirements.txt) turns f32 input into i8 codes by
scaling each vector to unit length and multiplying by 127: a code keeps the
vector's direction and drops its norm, which suits the cosine metric and
not l2sq. This script shows it on the first --n Fashion-MNIST images
(scaled by 1/255 into [0, 1], as bench/ab.py does): the codes usearch
stores match round(127 x / |x|), not round(127 x); usearch f32/f16/i8
recall@10 at two ef; and the recall of an exact scan over plain
per-component codes round(127 x), to show that one byte per dimension is
not the limit.

  build/bench-venv/bin/python bench/usearch_i8_probe.py
"""

import argparse
import os
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--nq", type=int, default=300)
    ap.add_argument("--cache", default="build/gt-cache")
    a = ap.parse_args()
    from usearch.index import Index
    a.base, a.queries = compare.DEFAULT_BASE, compare.DEFAULT_QUERIES
    base, q = compare.load_data(a)
    _, kth, _ = compare.ground_truth(base, q, 10, a.cache)
    scale = np.float32(1.0 / np.abs(base).max())
    x, xq = base * scale, q * scale

    ix = Index(ndim=x.shape[1], metric="l2sq", dtype="i8")
    ix.add(np.arange(100), x[:100])
    stored = np.asarray(ix.get(np.arange(100))).astype(np.float32)
    unit = np.clip(np.rint(x[:100] / np.linalg.norm(x[:100], axis=1, keepdims=True) * 127), -127, 127)
    plain = np.clip(np.rint(x[:100] * 127), -127, 127)
    print(f"stored i8 codes vs round(127 x/|x|): max difference {np.abs(stored - unit).max():.0f}; "
          f"vs round(127 x): {np.abs(stored - plain).max():.0f}")

    for dtype in ("f32", "f16", "i8"):
        ix = Index(ndim=x.shape[1], metric="l2sq", dtype=dtype, connectivity=16, expansion_add=200)
        ix.add(np.arange(len(x)), x, threads=1)
        for ef in (16, 64):
            ix.expansion_search = ef
            lab = ix.search(xq, 10, threads=1).keys
            print(f"usearch {dtype} l2sq ef {ef}: recall@10 "
                  f"{compare.recall_at_k(lab, base, q, kth, 10):.4f}")

    codes = np.clip(np.rint(x * 127), -127, 127).astype(np.float32)
    qc = np.clip(np.rint(xq * 127), -127, 127).astype(np.float32)
    d = (qc * qc).sum(1)[:, None] - 2 * qc @ codes.T + (codes * codes).sum(1)[None, :]
    lab = np.argsort(d, axis=1)[:, :10]
    print(f"exact scan over round(127 x) codes: recall@10 "
          f"{compare.recall_at_k(lab, base, q, kth, 10):.4f}")


if __name__ == "__main__":
    main()
