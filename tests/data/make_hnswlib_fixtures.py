#!/usr/bin/python3
"""Writes the hnswlib fixtures of tests/c/test_hnswlib.c (run once, committed).

For each space (l2, cosine): an index saved by hnswlib's save_index
(hnswlib-<space>-d8.bin) and what the C test checks it against
(hnswlib-<space>-d8.expect): the vectors added, the deleted marks, queries
and hnswlib's own knn_query answers at ef=50.

.expect layout, little endian: u32 n, dim, nq, k; n u64 labels;
n*dim f32 vectors (as given to add_items); n u8 deleted; nq*dim f32 queries;
nq*k u64 result labels; nq*k f32 result distances.

Uses Debian's python3-hnswlib (0.6.2): /usr/bin/python3 make_hnswlib_fixtures.py
"""
import os
import struct

import hnswlib
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
N, DIM, NQ, K = 300, 8, 20, 5

for space in ("l2", "cosine"):
    rng = np.random.default_rng(2024)
    data = rng.standard_normal((N, DIM)).astype(np.float32)
    labels = np.arange(N, dtype=np.uint64) * 3 + 11
    queries = rng.standard_normal((NQ, DIM)).astype(np.float32)
    p = hnswlib.Index(space=space, dim=DIM)
    # max_elements above the count: the file has room that is not used.
    p.init_index(max_elements=N + 50, M=8, ef_construction=100, random_seed=7)
    p.set_num_threads(1)
    p.add_items(data, labels)
    deleted = np.zeros(N, dtype=np.uint8)
    for i in range(0, N, 17):
        p.mark_deleted(int(labels[i]))
        deleted[i] = 1
    p.set_ef(50)
    res_labels, res_dists = p.knn_query(queries, k=K)
    p.save_index(os.path.join(HERE, "hnswlib-%s-d8.bin" % space))
    with open(os.path.join(HERE, "hnswlib-%s-d8.expect" % space), "wb") as f:
        f.write(struct.pack("<4I", N, DIM, NQ, K))
        f.write(labels.astype("<u8").tobytes())
        f.write(data.astype("<f4").tobytes())
        f.write(deleted.tobytes())
        f.write(queries.astype("<f4").tobytes())
        f.write(res_labels.astype("<u8").tobytes())
        f.write(res_dists.astype("<f4").tobytes())
