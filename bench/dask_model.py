"""The 10- and 100-worker model of docs/SCALING.md, from measured inputs.

    build/venv/bin/python bench/dask_model.py [build/bench/dask_scaling.json] [task_ms]

task_ms: the per-task fan-out cost to model with (default: the slope
measured in the JSON); distributed's documentation gives about 1 ms.

Inputs measured here (nothing is assumed that can be measured on one box):
  * the one-query latency samples of 1..8 shards on 2 workers (the JSON of
    bench/dask_scaling.py): per-task fan-out cost = slope of p50 against
    the shard count; the 1-shard samples are the response-time
    distribution of one shard;
  * the client-side merge of S answers of k=10 (merge_topk), timed here.
Assumptions (stated, not measured): shards answer independently with the
1-shard distribution (tail latency = the max of S draws); a dedicated
scheduler handles tasks one after another at the measured per-task cost;
the network moves 1.25 GB/s (10 Gb/s) per host; per-shard search cost at
a fixed ef does not depend on the shard's size (HNSW work is about
ef * M distances, with a log(n) term for the upper layers).
"""
import json
import sys
import time

import numpy as np

from hnswc.dask import merge_topk


def merge_cost(n_queries, n_shards, k=10, rounds=5):
    rng = np.random.default_rng(0)
    parts = [(rng.integers(0, 2 ** 40, (n_queries, k)).astype(np.uint64),
              np.sort(rng.random((n_queries, k), dtype=np.float32), axis=1),
              np.full(n_queries, k)) for _ in range(n_shards)]
    best = 1e9
    for _ in range(rounds):
        t = time.perf_counter()
        merge_topk(parts, k)
        best = min(best, time.perf_counter() - t)
    return best


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "build/bench/dask_scaling.json"
    task_ms = float(sys.argv[2]) if len(sys.argv) > 2 else None
    with open(path) as f:
        m = json.load(f)
    lat = {r["shards"]: r for r in m["latency"]}
    shards = sorted(lat)
    p50 = np.array([lat[s]["p50_ms"] for s in shards])
    slope, intercept = np.polyfit(shards, p50, 1)
    one = np.array(lat[1]["samples_ms"])
    print("measured: one-query p50 by shard count %s ms; fit %.2f ms + %.2f ms/shard"
          % (dict(zip(shards, np.round(p50, 2).tolist())), intercept, slope))
    print("measured: 1-shard one-query latency p50 %.2f ms, p99 %.2f ms (%d samples)"
          % (np.percentile(one, 50), np.percentile(one, 99), len(one)))
    if task_ms is not None:
        print("modelled with a per-task cost of %.2f ms instead of the measured %.2f ms"
              % (task_ms, slope))
        slope = task_ms
    rng = np.random.default_rng(1)
    print()
    print("| workers = shards | fan-out cost (tasks x slope) | merge, 1 query | "
          "merge, 10,000 queries | p50 one query | p99 one query |")
    print("|---|---|---|---|---|---|")
    for s in (2, 10, 100):
        fan = s * slope
        # the call ends with its slowest shard: max of s draws of one shard's time,
        # plus the per-task fan-out cost beyond the first task
        draws = rng.choice(one, size=(20000, s)).max(axis=1) + (s - 1) * slope
        print("| %d | %.1f ms | %.3f ms | %.0f ms | %.1f ms | %.1f ms |" % (
            s, fan, merge_cost(1, s) * 1e3, merge_cost(10000, s) * 1e3,
            np.percentile(draws, 50), np.percentile(draws, 99)))
    sc = m["scaling"]
    d = 784
    print()
    for s in (10, 100):
        b = 10000
        send = b * d * 4 * s / 1.25e9
        back = b * s * 10 * 12 / 1.25e9
        print("%d workers, batch of %d: queries out %.2f s, answers back %.2f s at 10 Gb/s "
              "from/to the client; %d tasks at chunk 1024" % (s, b, send, back,
                                                              s * -(-b // 1024)))
    print("batch measured here: %s" % ", ".join(
        "%d worker(s) %d shard(s): %.0f q/s" % (c["workers"], c["shards"], c["qps_best"])
        for c in sc["configs"]))


if __name__ == "__main__":
    main()
