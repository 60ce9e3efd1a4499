"""hnswc.dask on this machine: the figures of docs/SCALING.md.

    build/venv/bin/python bench/dask_scaling.py [--n 60000] [--build-n 20000] ...
    (make bench-dask runs it and writes $(BUILD)/bench/dask_scaling.json)

Everything runs on LocalCluster(processes=True): separate worker processes,
data pickled between them, as on a real cluster but over loopback.

1. recall@10 of 1 (plain hnswc.Index, no Dask), 2 and 4 shards of the same
   Fashion-MNIST data at the same ef, against exact brute force (BFIndex).
2. build time and query throughput for (workers, shards) = (1, 1), (1, 2),
   (2, 2), each worker one thread. The machine is shared and noisy, so the
   configurations are interleaved round by round, the best of the rounds
   kept, and ratios reported.
3. latency of one query (p50, p99) for 1..8 shards on 2 workers: the
   per-shard cost of a fan-out through the Dask scheduler.
4. memory: each worker's RSS before and after holding its shards, and the
   shards' own memory_bytes.
"""
import argparse
import json
import logging
import os
import sys
import time

import numpy as np
from distributed import Client, LocalCluster

import hnswc
from hnswc.dask import ShardedIndex

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import FMNIST, read_idx  # noqa: E402


def recall(found, truth):
    return float(np.mean([len(set(f) & set(t)) / len(t)
                          for f, t in zip(found.tolist(), truth.tolist())]))


def cluster(n_workers):
    cl = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                      dashboard_address=":0", silence_logs=logging.CRITICAL,
                      memory_limit="6GiB")
    return cl, Client(cl, set_as_default=False)


def rss(client):
    import psutil  # noqa: F401  (a dependency of distributed)
    return client.run(lambda: __import__("psutil").Process().memory_info().rss)


def cpu(client):
    """CPU seconds (user + system) each worker process has used so far."""
    def used():
        t = __import__("psutil").Process().cpu_times()
        return t.user + t.system
    return client.run(used)


def delta(before, after):
    """(sum, max) over workers of the CPU seconds between two cpu() calls."""
    d = [after[w] - before[w] for w in before if w in after]
    return sum(d), max(d)


def build(client, data, n_shards, args, threads=1):
    idx = ShardedIndex("l2", data.shape[1], n_shards=n_shards, client=client)
    idx.init_index(max_elements=len(data), M=args.M, ef_construction=args.efc)
    idx.set_num_threads(threads)
    idx.add_items(data)
    return idx


def part_recall(base, queries, truth, args, out):
    print("== recall@10, %d base vectors, %d queries" % (len(base), len(queries)), flush=True)
    one = hnswc.Index("l2", base.shape[1])
    one.init_index(max_elements=len(base), M=args.M, ef_construction=args.efc)
    one.add_items(base, num_threads=2)
    cl, client = cluster(2)
    rows = []
    try:
        sharded = {s: build(client, base, s, args) for s in (2, 4)}
        for ef in args.ef:
            one.set_ef(ef)
            row = {"ef": ef, "1": recall(one.knn_query(queries, k=10)[0], truth)}
            for s, idx in sharded.items():
                idx.set_ef(ef)
                row[str(s)] = recall(idx.knn_query(queries, k=10)[0], truth)
            rows.append(row)
            print("ef %4d  one index %.4f  2 shards %.4f  4 shards %.4f"
                  % (ef, row["1"], row["2"], row["4"]), flush=True)
    finally:
        client.close()
        cl.close()
    out["recall"] = rows


CONFIGS = [(1, 1), (1, 2), (2, 2)]  # (workers, shards)


def part_scaling(base, queries, args, out):
    data = base[:args.build_n]
    print("== build and query, %d vectors, %d rounds, configurations (workers, shards) %s"
          % (len(data), args.rounds, CONFIGS), flush=True)
    clusters = {w: cluster(w) for w in sorted({w for w, _ in CONFIGS})}
    try:
        build_t = {c: [] for c in CONFIGS}
        query_t = {c: [] for c in CONFIGS}
        build_cpu = {c: [] for c in CONFIGS}
        query_cpu = {c: [] for c in CONFIGS}
        for r in range(args.rounds):
            for conf in CONFIGS:
                w, s = conf
                client = clusters[w][1]
                c0 = cpu(client)
                t = time.perf_counter()
                idx = build(client, data, s, args)
                build_t[conf].append(time.perf_counter() - t)
                build_cpu[conf].append(delta(c0, cpu(client)))
                idx.set_ef(args.query_ef)
                idx.knn_query(queries[:50], k=10)  # warm
                c0 = cpu(client)
                t = time.perf_counter()
                idx.knn_query(queries, k=10)
                query_t[conf].append(time.perf_counter() - t)
                query_cpu[conf].append(delta(c0, cpu(client)))
                idx.close()
            print("round %d: build %s  query %s" % (
                r, " ".join("%.2f" % build_t[c][-1] for c in CONFIGS),
                " ".join("%.3f" % query_t[c][-1] for c in CONFIGS)), flush=True)
        # plain hnswc.Index in this process, one thread: what Dask costs
        one = hnswc.Index("l2", data.shape[1])
        one.init_index(max_elements=len(data), M=args.M, ef_construction=args.efc)
        t = time.perf_counter()
        one.add_items(data, num_threads=1)
        plain_build = time.perf_counter() - t
        one.set_ef(args.query_ef)
        plain_q = []
        for _ in range(args.rounds):
            t = time.perf_counter()
            one.knn_query(queries, k=10, num_threads=1)
            plain_q.append(time.perf_counter() - t)
        base_b, base_q = min(build_t[(1, 1)]), min(query_t[(1, 1)])
        out["scaling"] = {
            "n": len(data), "nq": len(queries), "ef": args.query_ef, "rounds": args.rounds,
            "plain_index_build_s": plain_build, "plain_index_query_s": min(plain_q),
            "configs": [{
                "workers": w, "shards": s,
                "build_s_best": min(build_t[(w, s)]), "build_s_all": build_t[(w, s)],
                "build_speedup_vs_1x1": base_b / min(build_t[(w, s)]),
                "query_s_best": min(query_t[(w, s)]), "query_s_all": query_t[(w, s)],
                "qps_best": len(queries) / min(query_t[(w, s)]),
                "qps_ratio_vs_1x1": base_q / min(query_t[(w, s)]),
                # CPU seconds of the workers, (sum, busiest worker), min over rounds:
                # contention from other jobs inflates wall time far more than CPU time
                "build_cpu_sum_s": min(b[0] for b in build_cpu[(w, s)]),
                "build_cpu_max_worker_s": min(b[1] for b in build_cpu[(w, s)]),
                "query_cpu_sum_s": min(q[0] for q in query_cpu[(w, s)]),
                "query_cpu_max_worker_s": min(q[1] for q in query_cpu[(w, s)]),
            } for w, s in CONFIGS],
        }
        for c in out["scaling"]["configs"]:
            print("workers %d shards %d: build best %.2f s (x%.2f), query best %.3f s "
                  "(%.0f q/s, x%.2f)" % (c["workers"], c["shards"], c["build_s_best"],
                                         c["build_speedup_vs_1x1"], c["query_s_best"],
                                         c["qps_best"], c["qps_ratio_vs_1x1"]))
            print("    worker CPU: build %.2f s (busiest worker %.2f s), query %.3f s "
                  "(busiest %.3f s)" % (c["build_cpu_sum_s"], c["build_cpu_max_worker_s"],
                                        c["query_cpu_sum_s"], c["query_cpu_max_worker_s"]))
        print("plain hnswc.Index, 1 thread, no Dask: build %.2f s, query %.3f s"
              % (plain_build, min(plain_q)))

        # memory: a fresh cluster per configuration, so that no earlier
        # round's freed-but-kept heap is counted
        mem = []
        for w, s in CONFIGS:
            cl, client = cluster(w)
            try:
                idle = rss(client)
                idx = build(client, data, s, args)
                after = rss(client)
                info = idx.get_info()
                mem.append({"workers": w, "shards": s, "idle_rss": idle, "rss": after,
                            "shard_memory_bytes": [x["memory_bytes"] for x in info["shards"]]})
                idx.close()
            finally:
                client.close()
                cl.close()
        out["memory"] = mem
        for m in mem:
            print("workers %d shards %d: worker RSS idle %s MiB -> %s MiB; shards %s MiB" % (
                m["workers"], m["shards"],
                [round(v / 2 ** 20) for v in m["idle_rss"].values()],
                [round(v / 2 ** 20) for v in m["rss"].values()],
                [round(v / 2 ** 20) for v in m["shard_memory_bytes"]]))

        # latency of one query as the fan-out widens (2 workers)
        client = clusters[2][1]
        # built first, then measured interleaved (one query per index in turn),
        # so that the machine's load drifts over all of them alike
        shard_counts = (1, 2, 4, 8)
        idxs = {}
        for s in shard_counts:
            idxs[s] = build(client, data[:5000], s, args)
            idxs[s].set_ef(args.query_ef)
            for q in queries[:20]:
                idxs[s].knn_query(q, k=10)
        times = {s: [] for s in shard_counts}
        for q in queries[:args.latency_n]:
            for s in shard_counts:
                t = time.perf_counter()
                idxs[s].knn_query(q, k=10)
                times[s].append(time.perf_counter() - t)
        lat = []
        for s in shard_counts:
            idxs[s].close()
            ms = np.array(times[s]) * 1e3
            lat.append({"shards": s, "p50_ms": float(np.percentile(ms, 50)),
                        "p90_ms": float(np.percentile(ms, 90)),
                        "p99_ms": float(np.percentile(ms, 99)),
                        "samples_ms": ms.tolist()})
            print("one query, %d shards on 2 workers: p50 %.2f ms  p90 %.2f ms  p99 %.2f ms"
                  % (s, lat[-1]["p50_ms"], lat[-1]["p90_ms"], lat[-1]["p99_ms"]), flush=True)
        out["latency"] = lat
    finally:
        for cl, client in clusters.values():
            client.close()
            cl.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=60000, help="base vectors for the recall part")
    ap.add_argument("--nq", type=int, default=1000)
    ap.add_argument("--build-n", type=int, default=20000, help="base vectors for part 2")
    ap.add_argument("--M", type=int, default=16)
    ap.add_argument("--efc", type=int, default=100)
    ap.add_argument("--ef", type=int, nargs="+", default=[10, 16, 32, 64])
    ap.add_argument("--query-ef", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--latency-n", type=int, default=200)
    ap.add_argument("--skip-recall", action="store_true")
    ap.add_argument("--out", default="build/bench/dask_scaling.json")
    args = ap.parse_args()

    base = read_idx(os.path.join(FMNIST, "train-images-idx3-ubyte.gz"))[:args.n]
    queries = read_idx(os.path.join(FMNIST, "t10k-images-idx3-ubyte.gz"))[:args.nq]
    out = {"args": vars(args), "simd": hnswc.simd_name(), "cpus": os.cpu_count(),
           "loadavg_start": os.getloadavg()}
    if not args.skip_recall:
        bf = hnswc.BFIndex("l2", base.shape[1])
        bf.init_index(len(base))
        bf.add_items(base)
        truth = bf.knn_query(queries, k=10)[0]
        part_recall(base, queries, truth, args, out)
    part_scaling(base, queries, args, out)
    out["loadavg_end"] = os.getloadavg()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
