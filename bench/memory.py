#!/usr/bin/env python3
"""memory.py -- bytes per element of an index: hnswc's storage modes and hnswlib.

For each system (--systems, the specs of bench/ab.py: hnswc, hnswc@DIR,
hnswc:storage=sq8, hnswc:storage=sq8-only, hnswlib) it builds the index on
the data in a fresh process, saves it, then loads the file in ANOTHER fresh
process and reports, per element:

  rss_load   the growth of the resident set across load_index (the memory of
             an index that serves searches: no build scratch, no data set);
  rss_build  the growth of the resident set across the build (the data set
             excluded; build scratch and allocator slack included);
  info       hnswc only: hnswc_info.memory_bytes (what the library
             allocated, including the unused tail of its last chunk, which
             is never touched and so not resident), after the load;
  file       the size of the saved file.

and hnswlib's own arithmetic for comparison (hnswlib 0.8, hnswalg.h):
size_data_per_element = M0*4 + 4 + dim*4 + 8 (links, vector, label) for
every element, plus the upper layers' links (M*4 + 4 per layer above 0,
1/(M-1) layers per element on average), a pointer, a level and a mutex per
element, and its label map -- see formula() below.

  build/bench-venv/bin/python bench/memory.py \\
      --systems hnswlib,hnswc,hnswc:storage=sq8,hnswc:storage=sq8-only
"""

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ab  # noqa: E402  (system specs)
import compare  # noqa: E402  (data loading, rss_bytes)


def formula(n, dim, M):
    """hnswlib 0.8's memory for n elements, from its source (bytes/element).
    The label map (std::unordered_map<labeltype, tableint>): a node of
    8 + 8 + 4 (+4 padding) bytes per entry plus a bucket pointer, about 40
    with malloc's header; the mutexes: 40 bytes each (glibc x86-64)."""
    M0 = 2 * M
    data = M0 * 4 + 4 + dim * 4 + 8
    upper = (M * 4 + 4) / (M - 1) + 8  # links above layer 0, linkLists_ pointer
    level = 4                          # element_levels_
    mutex = 40                         # link_list_locks_
    labels = 40                        # label_lookup_
    visited = 2                        # one visited list (unsigned short per element)
    return {"size_data_per_element": data,
            "total": data + upper + level + mutex + labels + visited}


def child(args):
    """One measurement in this (fresh) process: build or load."""
    spec, mode, path = args.child
    if mode == "build":
        base, _ = compare.load_data(args)
        s = ab.make_system(spec, base.shape[1], args.M, args.ef_construction, base.shape[0])
        gc.collect()
        r0 = compare.rss_bytes()
        s.build(base, args.threads or os.cpu_count())
        gc.collect()
        r1 = compare.rss_bytes()
        s.index.save_index(path)
        out = {"rss_build": r1 - r0, "n": int(base.shape[0]), "dim": int(base.shape[1])}
    else:
        n, dim = args.n_dim
        s = ab.make_system(spec, dim, args.M, args.ef_construction, n)
        gc.collect()
        r0 = compare.rss_bytes()
        s.index.load_index(path, **({"max_elements": n} if spec == "hnswlib" else {}))
        gc.collect()
        r1 = compare.rss_bytes()
        out = {"rss_load": r1 - r0}
        if hasattr(s.index, "get_info"):
            info = s.index.get_info()
            out["info"] = info["memory_bytes"]
            out["storage"] = info.get("storage")
            out["codes_trained"] = info.get("codes_trained")
    print("RESULT " + json.dumps(out), flush=True)


def run_child(argv_tail, spec, mode, path, extra=()):
    cmd = [sys.executable, os.path.abspath(__file__), *argv_tail, "--child", spec, mode, path,
           *extra]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"memory.py: {spec} {mode} failed:\n{p.stderr[-3000:]}")
    line = [x for x in p.stdout.splitlines() if x.startswith("RESULT ")][-1]
    return json.loads(line[7:])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", default=compare.DEFAULT_BASE)
    ap.add_argument("--queries", default=compare.DEFAULT_QUERIES)
    ap.add_argument("--n", type=int, default=0)
    ap.add_argument("--nq", type=int, default=1)
    ap.add_argument("--M", type=int, default=16)
    ap.add_argument("--ef-construction", type=int, default=200)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--systems", default="hnswlib,hnswc,hnswc:storage=sq8,hnswc:storage=sq8-only")
    ap.add_argument("--json", default="")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    ap.add_argument("--n-dim", nargs=2, type=int, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        return child(a)
    tail = ["--base", a.base, "--queries", a.queries, "--n", str(a.n), "--nq", str(a.nq),
            "--M", str(a.M), "--ef-construction", str(a.ef_construction),
            "--threads", str(a.threads)]
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, spec in enumerate(a.systems.split(",")):
            path = os.path.join(tmp, f"ix{i}.bin")
            t = time.perf_counter()
            b = run_child(tail, spec, "build", path)
            l = run_child(tail, spec, "load", path, ["--n-dim", str(b["n"]), str(b["dim"])])
            row = {**b, **l, "file": os.path.getsize(path)}
            rows[spec] = row
            print(f"{spec}: done in {time.perf_counter() - t:.0f} s", flush=True)
    n, dim = next(iter(rows.values()))["n"], next(iter(rows.values()))["dim"]
    f = formula(n, dim, a.M)
    ref = rows.get("hnswlib", {}).get("rss_load")
    print(f"\nn = {n}, dim = {dim}, M = {a.M}; bytes per element "
          f"(hnswlib's formula: {f['size_data_per_element']} + side tables = {f['total']:.0f})")
    print(f"{'system':<28} {'rss_load':>9} {'rss_build':>9} {'info':>9} {'file':>9}"
          f" {'load / hnswlib':>15}")
    for spec, r in rows.items():
        info = f"{r['info'] / n:9.0f}" if "info" in r else f"{'':>9}"
        ratio = f"{r['rss_load'] / ref:15.3f}" if ref else ""
        print(f"{spec:<28} {r['rss_load'] / n:9.0f} {r['rss_build'] / n:9.0f} {info}"
              f" {r['file'] / n:9.0f} {ratio}")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump({"args": vars(a), "n": n, "dim": dim, "hnswlib_formula": f,
                       "bytes": rows}, fh, indent=1)


if __name__ == "__main__":
    main()
