#!/usr/bin/env python3
"""ab.py -- hnswc against its peers in ONE process, searches interleaved.

The quick instrument behind the figures in docs/BENCHMARKS.md and issue 7:
every system is built in this process, then for each ef the queries are cut
into chunks and, round after round, each chunk is searched by every system in
turn (the order rotating each round and, by default, reversed every other
round: --order). Per system and chunk the fastest round
counts; a system's time at an ef is the sum over chunks of those minima. A
burst of load from other jobs on this shared machine therefore hits every
system alike and is mostly filtered out by the minimum. A chunk is one
search call, or (--calls-per-chunk C) C calls back to back of chunk/C
queries each, so that each system's calls can be timed as a caller that
searches batch after batch meets them -- with its own data in the caches
and its threads awake -- rather than each right after another system's call.

Systems (--systems, comma separated):
  hnswc            hnswc, f32 traversal           (hnswc:KEY=VAL,KEY=VAL passes
                                                  keywords to init_index:
                                                  hnswc:storage=sq8 walks on
                                                  codes with an exact re-rank,
                                                  hnswc:storage=sq8-only keeps
                                                  the codes only; its recall
                                                  is measured on the ids it
                                                  returns, as for every system;
                                                  hnswc:relayout=manual turns
                                                  the automatic relayout off)
  hnswc@DIR        another build of hnswc, the package installed in folder DIR
                   (pip install --target DIR), imported beside the first under
                   another name: two versions A/B in one process, e.g.
                   hnswc@/tmp/base-site:storage=sq8
  hnswlib          hnswlib as imported (pip's build in build/bench-venv)
  faiss-flat       faiss IndexHNSWFlat(d, M)
  faiss-sq8        faiss IndexHNSWSQ(d, QT_8bit, M) + IndexRefineFlat (exact
                   re-rank of k_factor * k; k_factor swept with ef)
  usearch-f32      usearch Index(metric l2sq, dtype f32, connectivity M)
  usearch-i8       usearch with dtype i8

Prints recall@k and QPS per ef and the QPS ratio of the first system to each
other at recall 0.95 and 0.99 (log-QPS interpolated between the points that
bracket it). --json writes everything.

Data: Fashion-MNIST (--base/--queries, idx files) or --synthetic N,D[,C[,R]]:
a seeded Gaussian mixture (see synthetic_mixture), its exact ground truth
computed by brute force and cached like Fashion-MNIST's.

Build speed (--build-rounds R): instead of the search sweep, R rounds of
whole builds, the systems alternating (the order rotating each round), each
build a fresh index from nothing; per system the fastest round's wall time
(and its process CPU time) counts, and every graph built is searched once at
each --ef (one query thread) for its recall@k, so a faster build is seen
together with the quality of what it built.

  build/bench-venv/bin/python bench/ab.py --systems hnswc,hnswlib
"""

import argparse
import json
import math
import os
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402  (data loading, ground truth, recall, interpolation)


QUERY_THREADS = 1  # threads of a search call unless the system says (at_threads)
CLOCK = time.perf_counter  # --clock: wall (perf_counter) or cpu (thread_time)

# ---------------------------------------------------------------------------
# Systems: build(data, threads); search(queries, k, ef) -> labels (n, k)
# ---------------------------------------------------------------------------

class HnswlibLike:
    threads = 0  # query threads of this view (at_threads); 0: QUERY_THREADS

    def __init__(self, mod, dim, M, efc, n, **kw):
        self.index = mod.Index(space="l2", dim=dim)
        self.index.init_index(max_elements=n, M=M, ef_construction=efc, **kw)

    def build(self, data, threads):
        self.index.add_items(data, np.arange(data.shape[0]), num_threads=threads)

    def set_ef(self, ef):
        self.index.set_ef(ef)

    def search(self, q, k):
        return self.index.knn_query(q, k=k, num_threads=self.threads or QUERY_THREADS)[0]


class FaissHNSW:
    threads = 0  # query threads of this view (at_threads); 0: QUERY_THREADS

    def __init__(self, faiss, dim, M, efc, n, sq=False):
        self.faiss = faiss
        if sq:
            self.base = faiss.IndexHNSWSQ(dim, faiss.ScalarQuantizer.QT_8bit, M)
            self.index = faiss.IndexRefineFlat(self.base)
        else:
            self.base = faiss.IndexHNSWFlat(dim, M)
            self.index = self.base
        self.base.hnsw.efConstruction = efc
        self.sq = sq

    def build(self, data, threads):
        self.faiss.omp_set_num_threads(threads)
        if self.sq:
            self.index.train(data)
        self.index.add(data)

    def set_ef(self, ef):
        self.ef = ef

    def search(self, q, k):
        self.faiss.omp_set_num_threads(self.threads or QUERY_THREADS)
        if self.sq:
            p = self.faiss.IndexRefineSearchParameters()
            p.k_factor = max(1.0, self.ef / k)
            hp = self.faiss.SearchParametersHNSW()
            hp.efSearch = self.ef
            p.base_index_params = hp
            return self.index.search(q, k, params=p)[1]
        self.base.hnsw.efSearch = self.ef
        return self.index.search(q, k)[1]


class USearch:
    """For i8, data and queries are divided by the largest absolute base value
    (into [-1, 1], a uniform scale: the same neighbours), as a user would.
    That does not rescue it on L2 data: usearch 2.21 makes an i8 code by
    scaling each vector to unit length, then x 127 (bench/usearch_i8_probe.py
    shows it), so codes lose the norms and l2sq over them ranks directions;
    recall@10 on Fashion-MNIST stays near 0.5 at any ef."""

    threads = 0  # query threads of this view (at_threads); 0: QUERY_THREADS

    def __init__(self, dim, M, efc, n, dtype):
        from usearch.index import Index
        self.index = Index(ndim=dim, metric="l2sq", dtype=dtype, connectivity=M,
                           expansion_add=efc)
        self.scale = None if dtype != "i8" else 1.0

    def build(self, data, threads):
        if self.scale is not None:
            self.scale = np.float32(1.0 / max(float(np.abs(data).max()), 1e-30))
            data = data * self.scale
        self.index.add(np.arange(data.shape[0]), data, threads=threads)

    def set_ef(self, ef):
        self.index.expansion_search = ef

    def search(self, q, k):
        if self.scale is not None:
            q = q * self.scale
        return self.index.search(q, k, threads=self.threads or QUERY_THREADS).keys


def import_hnswc_from(folder):
    """The hnswc package in `folder` as a module of its own (hnswc_at_N): its
    extension is loaded privately (RTLD_LOCAL, hidden symbols), so it and the
    installed hnswc do not share any code."""
    import importlib.util
    alias = f"hnswc_at_{abs(hash(folder))}"
    if alias in sys.modules:
        return sys.modules[alias]
    init = os.path.join(folder, "hnswc", "__init__.py")
    spec = importlib.util.spec_from_file_location(
        alias, init, submodule_search_locations=[os.path.dirname(init)])
    if spec is None:
        raise SystemExit(f"ab.py: no hnswc package in {folder!r}")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[alias] = mod
    spec.loader.exec_module(mod)
    return mod


def at_threads(system, threads):
    """A view of a built system whose searches use `threads` query threads:
    the same index (a shallow copy), so --query-threads 1,2 times one index
    at both thread counts, interleaved with the others."""
    import copy
    view = copy.copy(system)
    view.threads = threads
    return view


def ratio_pairs(names, counts):
    """(first, other) pairs whose QPS ratio is reported: with one thread
    count the first system against each other; with several (names grouped
    by count, as main() lists them) the first of each group against the
    others of that group, so every ratio compares one thread count."""
    per = len(names) // counts
    return [(names[g * per], n) for g in range(counts) for n in names[g * per + 1:(g + 1) * per]]


def split_systems(text):
    """The --systems list: comma separated, where a part KEY=VAL with no ':'
    is one more keyword of the system before it, so that a system can take
    several: hnswc:storage=sq8,relayout=manual,hnswlib."""
    specs = []
    for part in filter(None, text.split(",")):
        if specs and "=" in part and ":" not in part and "@" not in part:
            specs[-1] += "," + part
        else:
            specs.append(part)
    return specs


def make_system(spec, dim, M, efc, n):
    name, _, kwtext = spec.partition(":")
    name, _, folder = name.partition("@")
    kw = {}
    for part in filter(None, kwtext.split(",")):
        key, _, val = part.partition("=")
        kw[key] = int(val) if val.lstrip("-").isdigit() else val
    if name == "hnswc":
        import hnswc
        return HnswlibLike(import_hnswc_from(folder) if folder else hnswc, dim, M, efc, n, **kw)
    if name == "hnswlib":
        import hnswlib
        return HnswlibLike(hnswlib, dim, M, efc, n)
    if name in ("faiss-flat", "faiss-sq8"):
        import faiss
        return FaissHNSW(faiss, dim, M, efc, n, sq=name == "faiss-sq8")
    if name in ("usearch-f32", "usearch-i8"):
        return USearch(dim, M, efc, n, name.split("-")[1])
    raise SystemExit(f"ab.py: unknown system {name!r}")


# ---------------------------------------------------------------------------
# Synthetic data: a seeded Gaussian mixture
#
# C components in D dimensions. Component c has a mean m_c ~ N(0, I_D) and a
# covariance of low rank plus noise: x = m_c + A_c z + e, z ~ N(0, I_R),
# A_c a D x R Gaussian matrix scaled so each coordinate of A_c z has standard
# deviation SPREAD, e ~ N(0, NOISE^2 I_D). Real embeddings are clustered and
# of low intrinsic dimension; an isotropic Gaussian per component (rank D)
# would make every method fail alike, the graph having nothing to exploit,
# and well separated components with no noise would make neighbours trivial.
# The default rank D/4 (32 for D = 128) was picked in a trial at 50,000 x 128:
# rank D/8 let hnswlib reach recall 0.99 at ef 24 already, rank D/4 needs
# ef 16 for 0.95 and ef 32 for 0.99 there (more at 500k, like SIFT1M).
# Components are picked uniformly. Base and queries are drawn from the same
# mixture (queries after the base, from the same generator), float32, so the
# same (N, D, C, R, seed) always gives the same bytes and the ground truth
# cache (keyed by a hash of the data) is reused across runs.
# ---------------------------------------------------------------------------

SYNTH_SPREAD = 0.6
SYNTH_NOISE = 0.1


def parse_synthetic(text):
    """'N,D[,C[,R]]' -> (N, D, C, R); C defaults to 100, R to max(1, D // 4)."""
    try:
        parts = [int(x) for x in text.split(",")]
    except ValueError:
        raise SystemExit(f"ab.py: --synthetic wants N,D[,C[,R]] integers, got {text!r}")
    if not 2 <= len(parts) <= 4 or min(parts) < 1:
        raise SystemExit(f"ab.py: --synthetic wants N,D[,C[,R]] (positive), got {text!r}")
    n, d = parts[:2]
    c = parts[2] if len(parts) > 2 else 100
    r = parts[3] if len(parts) > 3 else max(1, d // 4)
    return n, d, c, min(r, d)


def synthetic_mixture(n, nq, d, clusters, rank, seed):
    """(base (n, d), queries (nq, d)) float32: see the section comment."""
    rng = np.random.default_rng(seed)
    means = rng.standard_normal((clusters, d)).astype(np.float32)
    bases = (rng.standard_normal((clusters, d, rank)) * (SYNTH_SPREAD / math.sqrt(rank))
             ).astype(np.float32)

    def draw(count):
        comp = rng.integers(0, clusters, count)
        z = rng.standard_normal((count, rank), dtype=np.float32)
        out = rng.standard_normal((count, d), dtype=np.float32)
        out *= np.float32(SYNTH_NOISE)
        out += means[comp]
        for c in range(clusters):
            idx = np.flatnonzero(comp == c)
            out[idx] += z[idx] @ bases[c].T
        return out

    base = draw(n)
    queries = draw(nq)
    return np.ascontiguousarray(base), np.ascontiguousarray(queries)


# ---------------------------------------------------------------------------
# Interleaved timing
# ---------------------------------------------------------------------------

def round_order(items, r, mode):
    """The order of round r. "rotate": the list rotated by r, so each item
    leads in turn -- but each always follows the same one (the rotation of
    a cycle keeps its neighbours: with --query-threads 1,2 hnswc's
    two-thread calls always came right after hnswlib's one-thread calls,
    with the second CPU idle since hnswlib's previous two-thread call).
    "balanced": the same on even rounds, and on odd ones the reversed list
    rotated, so each item follows both its neighbours in turn (with two
    items the two modes are the same)."""
    if mode == "balanced":
        turn = items[::-1] if r % 2 else items
        k = (r // 2) % len(items)
    else:
        turn, k = items, r % len(items)
    return turn[k:] + turn[:k]


def sweep(systems, queries, k, efs, chunk, rounds, threads_q=1, calls=1, order_mode="balanced"):
    """{name: [(ef, seconds, labels)]}: see the module docstring."""
    out = {name: [] for name, _ in systems}
    chunks = [(i, min(i + chunk, len(queries))) for i in range(0, len(queries), chunk)]
    for ef in efs:
        for _, s in systems:
            s.set_ef(ef)
        best = {name: [math.inf] * len(chunks) for name, _ in systems}
        labels = {name: [None] * len(chunks) for name, _ in systems}
        for r in range(rounds):
            order = round_order(systems, r, order_mode)
            for ci, (a, b) in enumerate(chunks):
                q = queries[a:b]
                step = -(-len(q) // calls)
                for name, s in order:
                    t = CLOCK()
                    labs = [s.search(q[o:o + step], k) for o in range(0, len(q), step)]
                    dt = CLOCK() - t
                    if dt < best[name][ci]:
                        best[name][ci] = dt
                    labels[name][ci] = np.vstack(labs) if len(labs) > 1 else labs[0]
        for name, _ in systems:
            out[name].append((ef, sum(best[name]),
                              np.vstack([np.asarray(x, dtype=np.int64) for x in labels[name]])))
    return out


def build_rounds(specs, base, queries, a, threads, gt_kth, efs):
    """--build-rounds: see the module docstring. Returns {spec: {...}} with
    every round's wall and CPU seconds and its graph's recall at each ef."""
    global QUERY_THREADS
    import gc
    out = {spec: {"wall_s": [], "cpu_s": [], "recall": [], "load": []} for spec in specs}
    saved_qt, QUERY_THREADS = QUERY_THREADS, threads  # recall only: not timed
    try:
        for r in range(a.build_rounds):
            order = round_order(specs, r, "rotate")
            for spec in order:
                gc.collect()
                t, c = time.perf_counter(), time.process_time()
                s = make_system(spec, base.shape[1], a.M, a.ef_construction, base.shape[0])
                s.build(base, threads)
                wall, cpu = time.perf_counter() - t, time.process_time() - c
                rec = {}
                for ef in efs:
                    s.set_ef(ef)
                    rec[str(ef)] = compare.recall_at_k(s.search(queries, a.k), base, queries,
                                                       gt_kth, a.k)
                del s
                o = out[spec]
                o["wall_s"].append(wall)
                o["cpu_s"].append(cpu)
                o["recall"].append(rec)
                o["load"].append(os.getloadavg()[0])
                print(f"round {r + 1} {spec}: {wall:.1f} s wall, {cpu:.1f} s CPU, recall@{a.k} "
                      + ", ".join(f"ef {ef} {v:.4f}" for ef, v in rec.items())
                      + f" (load {o['load'][-1]:.1f})", flush=True)
    finally:
        QUERY_THREADS = saved_qt
    for spec, o in out.items():
        i = min(range(len(o["wall_s"])), key=o["wall_s"].__getitem__)
        o["fastest"] = i
    return out


def print_builds(builds, first):
    f = builds[first]
    for spec, o in builds.items():
        i = o["fastest"]
        line = (f"{spec}: fastest {o['wall_s'][i]:.1f} s wall ({o['cpu_s'][i]:.1f} s CPU); "
                f"recall of that graph " + ", ".join(f"ef {ef} {v:.4f}"
                                                    for ef, v in o["recall"][i].items()))
        if spec != first:
            line += (f"; {first} faster by {o['wall_s'][i] / f['wall_s'][f['fastest']]:.2f}x wall, "
                     f"{min(o['cpu_s']) / min(f['cpu_s']):.2f}x least CPU")
        print(line)


def data_label(args, shape):
    if args.get("synthetic"):
        n, d, c, r = parse_synthetic(args["synthetic"])
        return (f"synthetic Gaussian mixture ({shape[0]} x {shape[1]}, {c} components of rank "
                f"{r}, seed {args['seed']})")
    return (f"{'rotated ' if args.get('rotate') else ''}{os.path.basename(args['base'])} "
            f"({shape[0]} x {shape[1]})")


def write_markdown(res, path):
    """The tables of one result (the dict --json writes) as Markdown; also
    run from a saved JSON by --md-from."""
    a = res["args"]
    shape = res["shape"]
    lines = []
    if "builds" in res:
        builds = res["builds"]
        names = list(builds)
        first = builds[names[0]]
        efs = list(first["recall"][0])
        lines += [f"Data: {data_label(a, shape)}, {res['nq']} queries, k={a['k']}, M={a['M']}, "
                  f"ef_construction={a['ef_construction']}; {res['build_threads']} build "
                  f"threads; {a['build_rounds']} rounds of whole builds, systems alternating "
                  f"(order rotating), fastest wall time per system (bench/ab.py "
                  f"--build-rounds); load average {res['load'][0]:.1f} at the start, "
                  f"{res['load'][1]:.1f} at the end.", "",
                  "| system | fastest build s (wall) | its CPU s | every round, wall s | "
                  + " | ".join(f"recall@{a['k']} ef {ef} (fastest graph; all rounds)" for ef in efs)
                  + f" | {names[0]} faster (wall) |",
                  "|:---|---:|---:|:---|" + "---:|" * len(efs) + "---:|"]
        fw = first["wall_s"][first["fastest"]]
        for n in names:
            o = builds[n]
            i = o["fastest"]
            cells = [f"{o['wall_s'][i]:.1f}", f"{o['cpu_s'][i]:.1f}",
                     ", ".join(f"{w:.1f}" for w in o["wall_s"])]
            for ef in efs:
                allr = [r[ef] for r in o["recall"]]
                cells.append(f"{o['recall'][i][ef]:.4f} ({min(allr):.4f}-{max(allr):.4f})")
            cells.append(f"{o['wall_s'][i] / fw:.2f}x")
            lines.append(f"| {n} | " + " | ".join(cells) + " |")
    else:
        table, summary, builds = res["table"], res["qps_at_recall"], res["build_s"]
        names = list(table)
        load = res.get("load")
        lines += [f"Data: {data_label(a, shape)}, {res['nq']} queries, k={a['k']}, M={a['M']}, "
                  f"ef_construction={a['ef_construction']}; query threads {a['query_threads']}"
                  f"; chunks of {a['chunk']} queries"
                  + (f" searched in {a['calls_per_chunk']} calls back to back"
                     if a.get('calls_per_chunk', 1) > 1 else "")
                  + f", fastest of {a['rounds']} rounds per chunk"
                  + (f" (order: {a['order']})" if a.get('order') else "")
                  + f", systems interleaved in one process (bench/ab.py), {a['clock']} "
                  "clock" + (f"; load average {load[0]:.1f} at the start, {load[1]:.1f} at "
                             "the end." if load else "."), "",
                  "| ef | " + " | ".join(f"{n} recall | {n} QPS" for n in names) + " |",
                  "|---:|" + "---:|---:|" * len(names)]
        for i, pt in enumerate(table[names[0]]):
            lines.append(f"| {pt['ef']} | " + " | ".join(
                f"{table[n][i]['recall']:.4f} | {table[n][i]['qps']:.0f}" for n in names) + " |")
        lines.append("")
        pairs = ratio_pairs(names, len(str(a["query_threads"]).split(",")))
        for t, q in summary.items():
            parts = [f"{f} / {n}: {q[f] / q[n]:.2f}x" if q[f] and q[n] else f"{f} / {n}: n/a"
                     for f, n in pairs]
            lines.append(f"* recall {t}: " + "; ".join(parts))
        for f, n in pairs:
            lines.append(f"* {f} / {n} at equal ef: " + ", ".join(
                f"{p0['ef']}: {p0['qps'] / p1['qps']:.2f}x" for p0, p1 in zip(table[f], table[n])))
        lines.append("* build seconds: " + ", ".join(f"{n} {b:.0f}" for n, b in builds.items()))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", default=compare.DEFAULT_BASE)
    ap.add_argument("--queries", default=compare.DEFAULT_QUERIES)
    ap.add_argument("--synthetic", default="", metavar="N,D[,C[,R]]",
                    help="instead of --base/--queries: N base vectors of D dimensions from a "
                         "Gaussian mixture of C components (default 100) of rank R (default "
                         "D/4), and --nq queries (default 10000) from the same mixture")
    ap.add_argument("--seed", type=int, default=20261201, help="seed of --synthetic")
    ap.add_argument("--n", type=int, default=0)
    ap.add_argument("--nq", type=int, default=0)
    ap.add_argument("--rotate", action="store_true",
                    help="apply a fixed random orthogonal rotation (seed 7) to base and queries")
    ap.add_argument("--M", type=int, default=16)
    ap.add_argument("--ef-construction", type=int, default=200)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--ef", default="10,12,16,20,24,32,40,48,64,96")
    ap.add_argument("--chunk", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--order", choices=("balanced", "rotate"), default="balanced",
                    help="order of the systems from round to round (see round_order); "
                         "'rotate' is what rounds 1-7 of docs/BENCHMARKS.md used")
    ap.add_argument("--calls-per-chunk", type=int, default=1, metavar="C",
                    help="search each chunk in C calls back to back (chunk/C queries each) "
                         "before the next system's turn (default 1: one call a chunk)")
    ap.add_argument("--build-rounds", type=int, default=0, metavar="R",
                    help="measure build speed instead of search: R rounds of whole builds "
                         "(see the module docstring); --ef is then where each graph's recall "
                         "is measured")
    ap.add_argument("--threads", type=int, default=0, help="build threads (0 = all)")
    ap.add_argument("--query-threads", default="1", metavar="T[,T...]",
                    help="threads of each search call (default 1); a list (1,2) times every "
                         "system at each count, all interleaved in the same sweep, and gives "
                         "the first system's ratio to the others at each count")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="what a chunk's time is: wall time, or the CPU time of the calling "
                         "thread (time.thread_time; one query thread only). On a machine "
                         "loaded beyond its cores, wall time counts the moments the process "
                         "was not running at all; CPU time does not (it still counts memory "
                         "stalls, and caches shared with other jobs still slow every system)")
    ap.add_argument("--systems", default="hnswc,hnswlib")
    ap.add_argument("--cache", default="build/gt-cache")
    ap.add_argument("--json", default="")
    ap.add_argument("--md", default="", help="also write the tables as Markdown to this file")
    ap.add_argument("--md-from", default="", metavar="JSON",
                    help="only write --md (default: stdout) from a saved --json result")
    ap.add_argument("--peer-cache", default="",
                    help="folder where hnswlib's built index is saved and reloaded on later runs "
                         "with the same data and parameters (hnswc is always built)")
    a = ap.parse_args(argv)
    if a.md_from:
        with open(a.md_from) as f:
            write_markdown(json.load(f), a.md or "/dev/stdout")
        return
    efs = [int(x) for x in a.ef.split(",")]
    if not 1 <= a.calls_per_chunk <= a.chunk:
        ap.error("--calls-per-chunk: between 1 and --chunk")
    global QUERY_THREADS, CLOCK
    try:
        qthreads = [int(x) for x in a.query_threads.split(",")]
    except ValueError:
        ap.error(f"--query-threads: {a.query_threads!r} is not a list of thread counts")
    if not qthreads or min(qthreads) < 1 or len(set(qthreads)) != len(qthreads):
        ap.error("--query-threads: distinct counts of at least 1")
    QUERY_THREADS = qthreads[0]
    if a.clock == "cpu":
        if qthreads != [1]:
            ap.error("--clock cpu measures the calling thread: it needs --query-threads 1")
        CLOCK = time.thread_time
    load0 = os.getloadavg()[0]
    if a.synthetic:
        n, d, c, r = parse_synthetic(a.synthetic)
        t = time.perf_counter()
        base, queries = synthetic_mixture(n, a.nq or 10000, d, c, r, a.seed)
        print(f"synthetic {n} x {d}, {c} components of rank {r}, {len(queries)} queries: "
              f"{time.perf_counter() - t:.1f} s", flush=True)
    else:
        base, queries = compare.load_data(a)
    if a.rotate:
        rng = np.random.default_rng(7)
        qm, _ = np.linalg.qr(rng.standard_normal((base.shape[1], base.shape[1])))
        base = np.ascontiguousarray(base @ qm.astype(np.float32))
        queries = np.ascontiguousarray(queries @ qm.astype(np.float32))
    t = time.perf_counter()
    gt_ids, gt_kth, cached = compare.ground_truth(base, queries, a.k, a.cache)
    print(f"ground truth: {'cached' if cached else f'{time.perf_counter() - t:.1f} s'}", flush=True)
    threads = a.threads or os.cpu_count()
    result = {"args": vars(a), "shape": list(base.shape), "nq": len(queries),
              "build_threads": threads, "commit": git_describe()}

    if a.build_rounds:
        specs = a.systems.split(",")
        builds = build_rounds(specs, base, queries, a, threads, gt_kth, efs)
        print()
        print_builds(builds, specs[0])
        result.update(builds=builds, load=[load0, os.getloadavg()[0]])
        finish(a, result)
        return

    systems, builds, memory = [], {}, {}
    key = compare.data_key(base, queries, a.k) + f"-M{a.M}-efc{a.ef_construction}"
    for spec in split_systems(a.systems):
        s = make_system(spec, base.shape[1], a.M, a.ef_construction, base.shape[0])
        cached = os.path.join(a.peer_cache, f"{spec}-{key}.bin") if a.peer_cache else ""
        t = time.perf_counter()
        if spec == "hnswlib" and cached and os.path.exists(cached):
            s.index.load_index(cached, max_elements=base.shape[0])
            print(f"{spec}: loaded {cached}")
        else:
            s.build(base, threads)
            if spec == "hnswlib" and cached:
                os.makedirs(a.peer_cache, exist_ok=True)
                s.index.save_index(cached)
        builds[spec] = time.perf_counter() - t
        if hasattr(s.index, "get_info"):  # hnswc: what the library allocated
            memory[spec] = s.index.get_info()["memory_bytes"]
            print(f"{spec}: {memory[spec] / base.shape[0]:.0f} bytes per element "
                  f"(hnswc_info.memory_bytes)")
        print(f"{spec}: built in {builds[spec]:.1f} s (load {os.getloadavg()[0]:.1f})", flush=True)
        s.set_ef(efs[0])
        s.search(queries[:200], a.k)  # warm-up
        systems.append((spec, s))
    if len(qthreads) > 1:  # every system at every count, the first system first in each
        systems = [(f"{spec} ({t}t)", at_threads(s, t)) for t in qthreads for spec, s in systems]

    load1 = os.getloadavg()[0]
    res = sweep(systems, queries, a.k, efs, a.chunk, a.rounds, calls=a.calls_per_chunk,
                order_mode=a.order)
    table = {}
    for name, pts in res.items():
        table[name] = [{"ef": ef, "qps": len(queries) / sec,
                        "recall": compare.recall_at_k(lab, base, queries, gt_kth, a.k)}
                       for ef, sec, lab in pts]
    names = list(table)
    print(f"\n{'ef':>4} " + " ".join(f"{n[:22]:>22} {'':>8}" for n in names))
    for i, ef in enumerate(efs):
        print(f"{ef:>4} " + " ".join(f"{table[n][i]['recall']:>22.4f} {table[n][i]['qps']:>8.0f}"
                                     for n in names))
    pairs = ratio_pairs(names, len(qthreads))
    summary = {}
    for t in (0.95, 0.99):
        q = {n: compare.qps_at_recall([(p["recall"], p["qps"]) for p in table[n]], t) for n in names}
        summary[t] = q
        ratios = ", ".join(f"{f} / {n} {q[f] / q[n]:.2f}x" if q[f] and q[n] else f"{f} / {n} n/a"
                           for f, n in pairs)
        print(f"recall {t}: " + ", ".join(f"{n} {q[n]:.0f}" if q[n] else f"{n} n/a" for n in names)
              + f"   {ratios}")
    # the ratio at each ef: both systems searched the same chunks at the same
    # moments, so this is the least noisy figure; the interpolation above
    # compares points of different ef, timed minutes apart
    for f, n in pairs:
        print(f"{f} / {n} at equal ef: " + ", ".join(
            f"ef {p0['ef']} {p0['qps'] / p1['qps']:.2f}x" for p0, p1 in zip(table[f], table[n])))
    result.update(build_s=builds, memory_bytes=memory, table=table,
                  qps_at_recall={str(t): v for t, v in summary.items()},
                  load=[load1, os.getloadavg()[0]])
    print(f"load average: {load0:.1f} before the builds, {load1:.1f} at the start of the "
          f"sweep, {os.getloadavg()[0]:.1f} at its end")
    finish(a, result)


def git_describe():
    import subprocess
    try:
        return subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True,
                              text=True, cwd=os.path.dirname(os.path.abspath(__file__)),
                              timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def finish(a, result):
    if a.md:
        write_markdown(result, a.md)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
