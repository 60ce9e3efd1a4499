#!/usr/bin/env python3
"""compare.py -- hnswc side by side with hnswlib and faiss (IndexHNSWFlat).

Runs every system on the same data with the same parameters (M,
ef_construction, k) and the same call pattern:

  * build: one add call with all vectors, on all cores (--threads);
  * search: for each ef, ONE batch call with all queries on ONE query thread
    (knn_query(..., num_threads=1); faiss.omp_set_num_threads(1)).

It reports recall@k, queries per second, build time and index memory for
each system, the QPS ratio of hnswc to each peer at recall 0.95 and 0.99
(interpolated on each curve), and writes compare.json and compare.png (recall
vs QPS on a log axis) into --out.

Each system runs in its own fresh process (multiprocessing "spawn"), so that
memory freed by one system cannot hide the memory of the next, and so that
OpenMP/BLAS thread pools of one library never touch another.

Usage (from the repository root, after `make python`):
  build/venv/bin/python bench/compare.py --out build/demo
  build/venv/bin/python bench/compare.py --n 20000 --nq 1000 --ef 10,20,40,80
"""

import argparse
import gzip
import hashlib
import json
import math
import multiprocessing
import os
import platform
import struct
import sys
import time

# Before NumPy loads OpenBLAS: one BLAS thread per call, since the ground
# truth runs one chunk of queries per core itself (see compute_ground_truth).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

SYSTEMS = ("hnswc", "hnswlib", "faiss")
FMNIST = "/usr/share/datasets/fashion-mnist"
DEFAULT_BASE = FMNIST + "/train-images-idx3-ubyte.gz"
DEFAULT_QUERIES = FMNIST + "/t10k-images-idx3-ubyte.gz"
DEFAULT_EF = "10,16,24,32,48,64,96,128,256"
RECALL_TARGETS = (0.95, 0.99)


# ---------------------------------------------------------------------------
# Data: the idx format of (Fashion-)MNIST
#
# Header: two zero bytes, a type byte (0x08 = uint8), the number of
# dimensions, then each dimension as a big-endian uint32; the data follows
# row-major. We flatten every item to one float32 vector.
# ---------------------------------------------------------------------------

def read_idx(path):
    """Reads an idx file (optionally gzipped) into an (n, d) float32 array."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise SystemExit(f"compare.py: {path}: not a uint8 idx file")
    ndim = raw[3]
    if ndim < 1:
        raise SystemExit(f"compare.py: {path}: idx file with no dimensions")
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    n = dims[0]
    d = int(np.prod(dims[1:])) if ndim > 1 else 1
    body = raw[4 + 4 * ndim:]
    if len(body) != n * d:
        raise SystemExit(f"compare.py: {path}: expected {n * d} data bytes, found {len(body)}")
    return np.frombuffer(body, dtype=np.uint8).reshape(n, d).astype(np.float32)


def load_data(args):
    for p in (args.base, args.queries):
        if not os.path.exists(p):
            raise SystemExit(f"compare.py: {p} not found (install dataset-fashion-mnist: make deps)")
    base = read_idx(args.base)
    queries = read_idx(args.queries)
    if args.n:
        base = base[:args.n]
    if args.nq:
        queries = queries[:args.nq]
    if base.shape[1] != queries.shape[1]:
        raise SystemExit("compare.py: base and queries differ in dimension")
    return np.ascontiguousarray(base), np.ascontiguousarray(queries)


def data_key(base, queries, k):
    """A hash of the exact data, so cached ground truth can never be stale."""
    h = hashlib.sha256()
    h.update(struct.pack("<qqqq", base.shape[0], base.shape[1], queries.shape[0], k))
    h.update(base.tobytes())
    h.update(queries.tobytes())
    return h.hexdigest()[:24]


# ---------------------------------------------------------------------------
# Exact ground truth
#
# A float32 matrix product (BLAS) ranks all base vectors per query and keeps a
# shortlist of 4k; the shortlist is then re-ranked with exact float64
# distances computed from differences. The float32 product only has to be
# good enough to keep the true top k inside the top 4k, which it is by many
# orders of magnitude; the final order and the k-th distance are exact.
# ---------------------------------------------------------------------------

def exact_sq_dist(base, queries, ids):
    """Exact squared L2 distances (float64) from each query to base[ids[i]]."""
    out = np.empty(ids.shape, dtype=np.float64)
    q64 = queries.astype(np.float64)
    for i0 in range(0, ids.shape[0], 512):
        i1 = min(i0 + 512, ids.shape[0])
        diff = base[ids[i0:i1]].astype(np.float64) - q64[i0:i1, None, :]
        out[i0:i1] = np.einsum("ijk,ijk->ij", diff, diff)
    return out


def _ground_truth_chunk(base, base_aug, queries, k, short):
    """Exact top k of a few queries; see the section comment."""
    q_aug = np.hstack([queries, np.ones((len(queries), 1), dtype=np.float32)])
    # [q, 1] . [-2x, ||x||^2] = ||x||^2 - 2 q.x, which ranks like ||q - x||^2
    approx = q_aug @ base_aug.T
    cand = np.argpartition(approx, short - 1, axis=1)[:, :short]
    d = exact_sq_dist(base, queries, cand)
    order = np.lexsort((cand, d), axis=1)[:, :k]  # by distance, then id
    return (np.take_along_axis(cand, order, axis=1),
            np.take_along_axis(d, order, axis=1)[:, k - 1])


def compute_ground_truth(base, queries, k):
    from concurrent.futures import ThreadPoolExecutor

    short = min(base.shape[0], 4 * k)
    base_aug = np.hstack([-2.0 * base, np.einsum("ij,ij->i", base, base)[:, None]])
    base_aug = base_aug.astype(np.float32)
    chunks = [queries[i:i + 256] for i in range(0, queries.shape[0], 256)]
    # NumPy releases the GIL in the matrix product and the partitions, so
    # chunks on all cores (OpenBLAS itself is limited to one thread per call
    # at the top of this file, so the cores are not oversubscribed).
    with ThreadPoolExecutor(max_workers=os.cpu_count()) as pool:
        parts = list(pool.map(lambda q: _ground_truth_chunk(base, base_aug, q, k, short), chunks))
    return (np.concatenate([p[0] for p in parts]).astype(np.int64),
            np.concatenate([p[1] for p in parts]))


def ground_truth(base, queries, k, cache_dir):
    """Exact k-NN of each query: (ids, distance of the k-th), cached on disk."""
    key = data_key(base, queries, k)
    path = os.path.join(cache_dir, f"gt-{key}.npz")
    if os.path.exists(path):
        with np.load(path) as z:
            return z["ids"], z["kth"], True
    ids, kth = compute_ground_truth(base, queries, k)
    os.makedirs(cache_dir, exist_ok=True)
    tmp = path + f".tmp{os.getpid()}.npz"
    np.savez(tmp, ids=ids, kth=kth)
    os.replace(tmp, path)
    return ids, kth, False


def recall_at_k(found, base, queries, kth, k):
    """Recall@k, ties counted as hits (as ann-benchmarks does).

    A returned id counts if its exact distance is not larger than the exact
    k-th nearest distance, so a system is not penalised for returning a
    different one of several equally distant vectors. Invalid ids (-1 from
    faiss when it finds fewer than k) never count."""
    found = np.asarray(found, dtype=np.int64)[:, :k]
    valid = (found >= 0) & (found < base.shape[0])
    d = exact_sq_dist(base, queries, np.where(valid, found, 0))
    tol = 1e-6 * np.maximum(kth, 1.0)
    hits = valid & (d <= (kth + tol)[:, None])
    return float(hits.sum()) / (found.shape[0] * k)


# ---------------------------------------------------------------------------
# Measuring one system (runs in its own process)
# ---------------------------------------------------------------------------

def rss_bytes():
    """Resident set size of this process, from /proc/self/statm."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def cpu_jiffies():
    """(busy, total) CPU time of the whole machine so far, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7]  # user nice system irq softirq steal
    return busy, busy + v[3] + v[4]                  # + idle iowait


def own_cpu_seconds():
    """CPU time of this process and its finished children (the workers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def other_load(start):
    """The share of the machine's CPU capacity that OTHER processes used
    since `start` (from cpu_jiffies, own_cpu_seconds): 0 on a quiet machine,
    0.5 when one of two cores was busy with something else all along."""
    busy0, total0, own0 = start
    busy1, total1 = cpu_jiffies()
    hz = os.sysconf("SC_CLK_TCK")
    if total1 <= total0:
        return 0.0
    other = (busy1 - busy0) / hz - (own_cpu_seconds() - own0)
    return max(0.0, other / ((total1 - total0) / hz))


def import_system(name):
    try:
        if name == "faiss":
            import faiss
            return faiss
        if name == "hnswlib":
            import hnswlib
            return hnswlib
        import hnswc
        return hnswc
    except ImportError as e:
        hint = {"hnswc": "run `make python` and use build/venv/bin/python",
                "hnswlib": "apt-get install python3-hnswlib (make deps)",
                "faiss": "apt-get install python3-faiss (make deps)"}[name]
        raise RuntimeError(f"cannot import {name}: {e} ({hint})") from None


def module_version(name, mod):
    # Debian's packages: the package version is the reliable one (Debian's
    # hnswlib 0.6.2 reports 0.6.1 in its Python metadata).
    if name != "hnswc" and getattr(mod, "__file__", "").startswith("/usr/lib/python3/"):
        try:
            import subprocess
            v = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "python3-" + name],
                               capture_output=True, text=True, check=True).stdout.strip()
            if v:
                return v.split("-")[0]
        except (OSError, subprocess.CalledProcessError):
            pass
    v = getattr(mod, "__version__", None)
    if v:
        return str(v)
    try:
        from importlib import metadata
        return metadata.version(name)
    except Exception:
        return "unknown"


class HnswlibLike:
    """hnswc and hnswlib share one API (hnswc is a drop-in for hnswlib)."""

    def __init__(self, mod, dim, n, M, efc, **kw):
        self.index = mod.Index(space="l2", dim=dim)
        self.index.init_index(max_elements=n, M=M, ef_construction=efc, **kw)

    def build(self, data, threads):
        self.index.add_items(data, np.arange(data.shape[0]), num_threads=threads)

    def search(self, queries, k, ef):
        self.index.set_ef(ef)
        labels, _ = self.index.knn_query(queries, k=k, num_threads=1)
        return labels


class Faiss:
    def __init__(self, mod, dim, n, M, efc):
        self.faiss = mod
        # IndexHNSWFlat(d, M): M links on upper layers, 2*M on layer 0, like
        # hnswlib, and the same level distribution (1/ln M).
        self.index = mod.IndexHNSWFlat(dim, M)
        self.index.hnsw.efConstruction = efc

    def build(self, data, threads):
        self.faiss.omp_set_num_threads(threads)
        self.index.add(data)

    def search(self, queries, k, ef):
        self.faiss.omp_set_num_threads(1)
        self.index.hnsw.efSearch = ef
        _, labels = self.index.search(queries, k)
        return labels


def worker_main(name, data_dir, params, conn):
    """One system's process: builds the index, reports, then answers search
    requests ("search", ef) with (seconds, labels) until ("quit", None).
    Any failure is sent back as ("error", message)."""
    try:
        base = np.load(os.path.join(data_dir, "base.npy"))
        queries = np.load(os.path.join(data_dir, "queries.npy"))
        mod = import_system(name)
        cls = Faiss if name == "faiss" else HnswlibLike
        n, dim = base.shape

        rss0 = rss_bytes()
        t0 = time.perf_counter()
        kw = {"storage": params["hnswc_storage"]} if name == "hnswc" and params.get("hnswc_storage") else {}
        index = cls(mod, dim, n, params["M"], params["ef_construction"], **kw)
        index.build(base, params["threads"])
        build_s = time.perf_counter() - t0
        rss1 = rss_bytes()

        info = {"version": module_version(name, mod),
                "debian": getattr(mod, "__file__", "").startswith("/usr/lib/python3/")}
        if name == "hnswc":
            for attr in ("simd", "simd_name"):
                v = getattr(mod, attr, None)
                if v is not None:
                    info["simd"] = v() if callable(v) else str(v)
                    break
        # Warm-up (untimed): touch the graph and the code once.
        index.search(queries[:min(100, len(queries))], params["k"], params["ef"][0])
        conn.send(("built", {"name": name, "build_s": build_s, "memory_bytes": rss1 - rss0,
                             "info": info}))
        while True:
            cmd, ef = conn.recv()
            if cmd != "search":
                break
            t = time.perf_counter()
            labels = index.search(queries, params["k"], ef)
            seconds = time.perf_counter() - t
            conn.send(("searched", seconds, np.asarray(labels, dtype=np.int64)))
    except Exception as e:  # reported to the parent, which fails the run
        conn.send(("error", f"{type(e).__name__}: {e}"))
    finally:
        conn.close()


class Worker:
    """The parent's handle on one system's process."""

    def __init__(self, ctx, name, data_dir, params):
        self.name = name
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=worker_main, args=(name, data_dir, params, child),
                                daemon=True)
        self.proc.start()
        child.close()

    def receive(self, expect):
        try:
            msg = self.conn.recv()
        except EOFError:
            self.proc.join()
            raise SystemExit(f"compare.py: {self.name}'s process died "
                             f"(exit code {self.proc.exitcode})") from None
        if msg[0] == "error":
            raise SystemExit(f"compare.py: {self.name} failed: {msg[1]}")
        assert msg[0] == expect, msg[0]
        return msg[1:]

    def search(self, ef):
        self.conn.send(("search", ef))
        return self.receive("searched")

    def close(self):
        try:
            self.conn.send(("quit", None))
        except OSError:
            pass
        self.proc.join(timeout=60)


def run_systems(names, data_dir, params):
    """Builds every system, one after another (each build has all cores),
    then sweeps ef with the systems interleaved: at each ef, each system
    makes its batch call in turn (and again per --repeat round), so a burst
    of load from other jobs hits all of them alike. Returns one result dict
    per system, with the labels found at each ef."""
    ctx = multiprocessing.get_context("spawn")
    workers, results = [], []
    try:
        for name in names:
            print(f"{name}: building ...", flush=True)
            w = Worker(ctx, name, data_dir, params)
            workers.append(w)
            (r,) = w.receive("built")
            r["sweep"] = [{"ef": ef, "seconds": math.inf, "labels": None} for ef in params["ef"]]
            results.append(r)
            print(f"{name}: built in {r['build_s']:.1f} s", flush=True)
        print("searching: " + ", ".join(names) + " in turn at each ef ...", flush=True)
        for i, ef in enumerate(params["ef"]):
            for _ in range(params["repeat"]):
                for w, r in zip(workers, results):
                    seconds, labels = w.search(ef)
                    pt = r["sweep"][i]
                    pt["seconds"] = min(pt["seconds"], seconds)
                    pt["labels"] = labels
    finally:
        for w in workers:
            w.close()
    for r in results:
        for pt in r["sweep"]:
            pt["qps"] = len(pt["labels"]) / pt["seconds"]
    return results


# ---------------------------------------------------------------------------
# Comparing curves
# ---------------------------------------------------------------------------

def pareto(points):
    """(recall, qps) points on the upper-right frontier, by recall ascending."""
    front = []
    for r, q in sorted(points, key=lambda p: (-p[0], -p[1])):
        if not front or q > front[-1][1]:
            front.append((r, q))
    return front[::-1]


def qps_at_recall(points, target):
    """QPS at `target` recall, interpolating log(QPS) linearly in recall
    between the two frontier points around it. None when the curve never
    reaches the target or when every point measured lies above it (no
    extrapolation).

    One case between: points were measured below the target, but each of
    them was slower than the first frontier point above it (on this noisy
    machine a setting of lower ef can time slower than the next one up), so
    the frontier starts above the target. The answer is then that first
    frontier point's QPS: the fastest setting measured that reaches the
    target, a lower bound of what the interpolation would give on a curve
    without the noise. (It used to be None, which printed "n/a" for a
    curve that plainly crosses the target.) bench_vs_hnswlib.cpp's
    qps_at_recall follows the same rule; check_results.py holds both to it.
    """
    front = pareto(points)
    for (r0, q0), (r1, q1) in zip(front, front[1:]):
        if r0 <= target <= r1:
            if r1 == r0:
                return max(q0, q1)
            t = (target - r0) / (r1 - r0)
            return math.exp(math.log(q0) + t * (math.log(q1) - math.log(q0)))
    if front and front[-1][0] == target:
        return front[-1][1]
    if front and front[0][0] > target and any(r < target for r, _ in points):
        return front[0][1]
    return None


# ---------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------

def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def print_tables(result):
    p = result["params"]
    print()
    print(f"Data: {p['dataset']}, {p['n']} base vectors, {p['nq']} queries, dim {p['dim']}, L2")
    print(f"Parameters: M={p['M']}, ef_construction={p['ef_construction']}, k={p['k']}; "
          f"build on {p['threads']} threads, search one batch call per ef on 1 thread")
    m = result["machine"]
    print(f"Machine: {m['cpu']}, {m['cores']} cores; other processes used "
          f"{100 * m['other_load']:.0f}% of its CPU capacity during the run")
    print(f"Index memory: {result['memory_method']}")
    print()
    print(f"{'system':<8} {'version':<10} {'build s':>8} {'memory MB':>10}")
    for s in result["systems"]:
        print(f"{s['name']:<8} {s['info']['version']:<10} {s['build_s']:>8.1f} "
              f"{s['memory_bytes'] / 2**20:>10.1f}")
    print()
    names = [s["name"] for s in result["systems"]]
    head = f"{'ef':>5}" + "".join(f"  {n + ' recall':>15} {n + ' QPS':>12}" for n in names)
    print(head)
    for i, ef in enumerate(p["ef"]):
        row = f"{ef:>5}"
        for s in result["systems"]:
            pt = s["sweep"][i]
            row += f"  {pt['recall']:>15.4f} {pt['qps']:>12.0f}"
        print(row)
    print()
    for target in RECALL_TARGETS:
        key = f"{target:.2f}"
        parts = []
        for s in result["systems"]:
            q = s["qps_at_recall"][key]
            parts.append(f"{s['name']} {q:.0f}" if q else f"{s['name']} n/a")
        line = f"QPS at recall {key}: " + ", ".join(parts)
        print(line)
    for peer, ratios in result["ratios"].items():
        txt = ", ".join(f"{r:.2f}x at recall {t}" if r else f"n/a at recall {t}"
                        for t, r in ratios.items())
        print(f"hnswc / {peer} QPS: {txt}")
    print()


def plot(result, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    p = result["params"]
    styles = {"hnswc": ("tab:red", "o"), "hnswlib": ("tab:blue", "s"),
              "faiss": ("tab:green", "^")}
    fig, ax = plt.subplots(figsize=(9, 6), dpi=110)
    for s in result["systems"]:
        color, marker = styles.get(s["name"], (None, "x"))
        rec = [pt["recall"] for pt in s["sweep"]]
        qps = [pt["qps"] for pt in s["sweep"]]
        origin = ("" if s["name"] == "hnswc" else
                  ", Debian package" if s["info"].get("debian") else ", from PyPI")
        if s["name"] == "hnswc" and p.get("hnswc_storage"):
            origin = f", storage={p['hnswc_storage']}"
        label = f"{s['name']} {s['info']['version']}{origin} (build {s['build_s']:.1f} s)"
        ax.plot(rec, qps, marker=marker, color=color, label=label, linewidth=1.8, markersize=6)
        if s["name"] == "hnswc":
            # Label the ef of hnswc's points, skipping those that would
            # overprint the previous label where the curve bunches up.
            last = None
            for pt in s["sweep"]:
                if last is not None and abs(pt["recall"] - last) < 0.003:
                    continue
                ax.annotate(f"ef={pt['ef']}", (pt["recall"], pt["qps"]), fontsize=7,
                            textcoords="offset points", xytext=(4, 4), color=color)
                last = pt["recall"]
    for t in RECALL_TARGETS:
        ax.axvline(t, color="gray", linestyle=":", linewidth=1)
    ax.set_yscale("log")
    ax.set_xlabel(f"recall@{p['k']}")
    ax.set_ylabel("queries per second, 1 thread (log scale)")
    ax.set_title(f"{p['dataset']} ({p['n']} x {p['dim']}, {p['nq']} queries, L2): "
                 f"M={p['M']}, ef_construction={p['ef_construction']}\n"
                 f"{result['machine']['cpu']}, {result['machine']['cores']} cores; one batch "
                 f"call per ef on 1 query thread; up and to the right is better", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------

def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", default=DEFAULT_BASE, help="base vectors, idx(.gz) file")
    ap.add_argument("--queries", default=DEFAULT_QUERIES, help="query vectors, idx(.gz) file")
    ap.add_argument("--n", type=int, default=0, help="use the first N base vectors (0 = all)")
    ap.add_argument("--nq", type=int, default=0, help="use the first NQ queries (0 = all)")
    ap.add_argument("--M", type=int, default=16)
    ap.add_argument("--ef-construction", type=int, default=200)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--ef", default=DEFAULT_EF, help="comma-separated ef values to sweep")
    ap.add_argument("--threads", type=int, default=0, help="build threads (0 = all cores)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="timed batch calls per ef; the fastest counts (default 1)")
    ap.add_argument("--hnswc-storage", default="", choices=("", "f32", "sq8"),
                    help="hnswc's init_index(storage=...) (default: the library's default)")
    ap.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated subset of "
                    + ",".join(SYSTEMS))
    ap.add_argument("--out", default="build/compare", help="folder for compare.json and compare.png")
    ap.add_argument("--cache", default="build/gt-cache", help="ground-truth cache folder")
    a = ap.parse_args(argv)
    try:
        a.ef = [int(x) for x in a.ef.split(",") if x.strip()]
    except ValueError:
        ap.error("--ef must be a comma-separated list of integers")
    if not a.ef or min(a.ef) < 1:
        ap.error("--ef needs at least one positive value")
    a.systems = [s.strip() for s in a.systems.split(",") if s.strip()]
    for s in a.systems:
        if s not in SYSTEMS:
            ap.error(f"unknown system {s!r} (choose from {', '.join(SYSTEMS)})")
    if a.k < 1 or a.M < 2 or a.ef_construction < 1 or a.repeat < 1 or a.threads < 0:
        ap.error("k, M, ef-construction and repeat must be positive")
    return a


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)

    # Fail early and clearly if a system cannot even be imported.
    for name in args.systems:
        try:
            import_system(name)
        except RuntimeError as e:
            raise SystemExit(f"compare.py: {e}")

    t_start = time.perf_counter()
    date = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    cpu_start = cpu_jiffies() + (own_cpu_seconds(),)  # other jobs skew timings
    base, queries = load_data(args)
    if args.n and args.n > base.shape[0] or args.nq and args.nq > queries.shape[0]:
        print(f"compare.py: note: only {base.shape[0]} base / {queries.shape[0]} queries available")
    if args.k > base.shape[0]:
        raise SystemExit("compare.py: k is larger than the number of base vectors")
    threads = args.threads or os.cpu_count()

    t = time.perf_counter()
    gt_ids, gt_kth, cached = ground_truth(base, queries, args.k, args.cache)
    print(f"ground truth: {'cached' if cached else 'computed'} in {time.perf_counter() - t:.1f} s")

    # The workers read the data from .npy files next to the ground truth.
    data_dir = os.path.join(args.cache, "data-" + data_key(base, queries, args.k))
    if not os.path.exists(os.path.join(data_dir, "queries.npy")):
        os.makedirs(data_dir, exist_ok=True)
        np.save(os.path.join(data_dir, "base.npy"), base)
        np.save(os.path.join(data_dir, "queries.npy"), queries)

    params = {"dataset": "Fashion-MNIST" if args.base == DEFAULT_BASE else os.path.basename(args.base),
              "n": int(base.shape[0]), "nq": int(queries.shape[0]), "dim": int(base.shape[1]),
              "M": args.M, "ef_construction": args.ef_construction, "k": args.k,
              "ef": args.ef, "threads": threads, "repeat": args.repeat,
              "hnswc_storage": args.hnswc_storage}

    systems = run_systems(args.systems, data_dir, params)
    for r in systems:
        for pt in r["sweep"]:
            pt["recall"] = recall_at_k(pt.pop("labels"), base, queries, gt_kth, args.k)
        pts = [(pt["recall"], pt["qps"]) for pt in r["sweep"]]
        r["qps_at_recall"] = {f"{t:.2f}": qps_at_recall(pts, t) for t in RECALL_TARGETS}

    ratios = {}
    hn = next((s for s in systems if s["name"] == "hnswc"), None)
    if hn:
        for s in systems:
            if s is hn:
                continue
            ratios[s["name"]] = {}
            for t in RECALL_TARGETS:
                key = f"{t:.2f}"
                a, b = hn["qps_at_recall"][key], s["qps_at_recall"][key]
                ratios[s["name"]][key] = (a / b) if a and b else None

    result = {
        "tool": "bench/compare.py",
        "date": date,
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(), "numpy": np.__version__,
                    "other_load": None},
        "params": params,
        "recall_definition": "a returned id counts if its exact distance <= the exact k-th "
                             "nearest distance (ties count)",
        "memory_method": "resident set size growth of a fresh process around the build "
                         "(/proc/self/statm), the same for every system; includes the "
                         "stored vectors",
        "qps_method": "one batch call with all queries per ef, one query thread; "
                      f"fastest of {args.repeat} call(s); systems interleaved at each ef",
        "systems": systems,
        "ratios": ratios,
        "ground_truth_cached": cached,
        "wall_s": None,
    }
    # After the workers have been joined, so that their CPU time is our own.
    result["machine"]["other_load"] = other_load(cpu_start)
    os.makedirs(args.out, exist_ok=True)
    png = os.path.join(args.out, "compare.png")
    plot(result, png)
    result["wall_s"] = time.perf_counter() - t_start
    with open(os.path.join(args.out, "compare.json"), "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    print_tables(result)
    print(f"wrote {os.path.join(args.out, 'compare.json')} and {png} "
          f"({result['wall_s']:.0f} s in all)")


if __name__ == "__main__":
    main()
