"""python -m hnswc.viz: the demo pictures, or an explorer page for an index.

    python -m hnswc.viz demo --out DIR
    python -m hnswc.viz explorer --out FILE [--index FILE --space S --dim D]
                                 [--n N --dim D --M M]
"""
from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hnswc.viz",
                                 description="Pictures of a real HNSW graph and search.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("demo", help="the classic set for a learner: 100 random 2-D points, M=4")
    d.add_argument("--out", required=True, help="directory for the pictures")
    d.add_argument("--n", type=int, default=100)
    d.add_argument("--M", type=int, default=4)
    d.add_argument("--ef", type=int, default=8)
    d.add_argument("--k", type=int, default=5)
    d.add_argument("--seed", type=int, default=7)
    d.add_argument("--no-gifs", action="store_true", help="skip the animations")
    d.add_argument("--small", action="store_true",
                   help="store the PNGs with a 256-colour palette (smaller files)")
    e = sub.add_parser("explorer", help="a self-contained HTML page to explore searches")
    e.add_argument("--out", required=True, help="the HTML file to write")
    e.add_argument("--index", help="an hnswc index file (hnswc.Index.save_index); "
                                   "default: random points")
    e.add_argument("--space", default="l2", help="space of --index (l2, ip, cosine)")
    e.add_argument("--dim", type=int, default=2, help="dimension of --index or of the points")
    e.add_argument("--n", type=int, default=300, help="random points when no --index")
    e.add_argument("--M", type=int, default=6)
    e.add_argument("--ef", type=int, default=10)
    e.add_argument("--k", type=int, default=5)
    e.add_argument("--seed", type=int, default=7)
    a = ap.parse_args(argv)

    from . import _demo, explorer

    if a.cmd == "demo":
        files = _demo.demo(a.out, n=a.n, M=a.M, k=a.k, ef=a.ef, seed=a.seed, gifs=not a.no_gifs,
                           small=a.small)
        for name in sorted(files):
            print(files[name])
        return 0
    if a.index:
        from .. import Index

        ix = Index(space=a.space, dim=a.dim)
        ix.load_index(a.index)
    else:
        import numpy as np

        pts = np.random.default_rng(a.seed).random((a.n, a.dim), dtype=np.float32)
        ix = _demo.demo_index(pts, M=a.M)
    print(explorer(ix, a.out, k=a.k, ef=a.ef))
    return 0


if __name__ == "__main__":
    sys.exit(main())
