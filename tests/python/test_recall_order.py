"""Recall at a high ef on small random data, against hnswlib, over many
data sets; and why it once fell short (issue 9).

At ef 400 on 5k x 32 random data, hnswc's recall@10 was 0.9995 in about half
of its multi-threaded builds where hnswlib's was 1.0: one true neighbour,
reachable, never found. The cause was the order of the inserts, not the
search: add_items on several threads handed each thread blocks of 64 rows,
so rows i and i + 64 were inserted side by side, and an HNSW graph depends
on its insertion order. On the data set that showed it, an outlier's
nearest neighbour (36.4 away, the outlier's only close node) ended with 32
closer, diverse links, so the heuristic dropped the link back to the
outlier; its only in-links came from nodes 50 and 59 away from the query,
beyond the beam's worst (47). hnswlib, given that same insertion order,
loses the same neighbour; given hnswlib's order (one row at a time per
thread), hnswc does not: 0 of 12 builds (7 of 12 before). Batches of adds
now start their rows one at a time, in order (src/threads.h).
"""
import numpy as np
import pytest

import hnswc

hnswlib = pytest.importorskip("hnswlib")

N, DIM, NQ, K, EF = 5000, 32, 100, 10, 400


def data_set(seed):
    rng = np.random.default_rng(seed)
    if seed % 2:
        make = lambda n: rng.standard_normal((n, DIM))      # noqa: E731
    else:
        make = lambda n: rng.random((n, DIM))               # noqa: E731
    data, queries = make(N).astype(np.float32), make(NQ).astype(np.float32)
    d = ((queries[:, None, :].astype(np.float64) - data[None]) ** 2).sum(-1)
    return data, queries, np.argsort(d, axis=1, kind="stable")[:, :K]


def misses(module, data, queries, truth, threads):
    p = module.Index(space="l2", dim=DIM)
    p.init_index(max_elements=N, M=16, ef_construction=200)
    p.add_items(data, np.arange(N), num_threads=threads)
    p.set_ef(EF)
    labels, _ = p.knn_query(queries, k=K)
    return sum(len(set(t) - set(f)) for f, t in zip(labels.tolist(), truth.tolist()))


def test_multithreaded_adds_insert_in_the_callers_order(rng):
    # get_ids_list lists labels in slot order, i.e. in the order the rows
    # were inserted. Blocks of 64 rows per thread displaced them by 38 on
    # average on 2 threads, by 102 on 4; one row at a time keeps them within
    # a few places (a thread descheduled mid-insert moves one row, and the
    # mean little).
    data = rng.random((3000, 8), dtype=np.float32)
    for threads in (2, 4):
        p = hnswc.Index("l2", 8)
        p.init_index(max_elements=3000, M=8, ef_construction=40)
        p.add_items(data, np.arange(3000), num_threads=threads)
        order = np.array(p.get_ids_list())
        assert sorted(order) == list(range(3000))
        assert np.abs(order - np.arange(3000)).mean() < 4, threads


def test_recall_at_ef_400_matches_hnswlib_over_many_data_sets():
    # Multi-threaded builds, as in the report (so not deterministic: bounds
    # with room). Expected: 0 or 1 miss per data set for either library.
    ours = theirs = 0
    per_set = []
    for seed in range(4):
        data, queries, truth = data_set(seed)
        a = misses(hnswc, data, queries, truth, threads=2)
        b = misses(hnswlib, data, queries, truth, threads=2)
        per_set.append((a, b))
        ours, theirs = ours + a, theirs + b
    total = 4 * NQ * K
    assert 1 - ours / total >= 0.999, per_set
    assert ours <= theirs + 3, per_set   # (hnswc, hnswlib) misses per data set
