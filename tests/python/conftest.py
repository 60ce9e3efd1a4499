"""Shared helpers of the hnswc Python tests.

The tests run against the installed package (`make python` installs it into
build/venv) and compare it with Debian's python3-hnswlib (0.6.2) and with
exact brute-force answers computed here in float64.
"""
import numpy as np
import pytest

import hnswc

SPACES = ["l2", "ip", "cosine"]


def exact_distances(space, data, queries):
    """Distances of every query to every row, in float64, hnswlib's formulas."""
    data = np.asarray(data, dtype=np.float64)
    queries = np.atleast_2d(np.asarray(queries, dtype=np.float64))
    if space == "l2":
        return ((queries[:, None, :] - data[None, :, :]) ** 2).sum(-1)
    if space == "cosine":
        def unit(x):
            n = np.linalg.norm(x, axis=1, keepdims=True)
            return x / np.where(n > 0, n, 1)
        data, queries = unit(data), unit(queries)
    return 1.0 - queries @ data.T


def exact_knn(space, data, labels, queries, k):
    """(labels, distances) of the k exact nearest rows of each query."""
    d = exact_distances(space, data, queries)
    order = np.argsort(d, axis=1, kind="stable")[:, :k]
    return np.asarray(labels)[order], np.take_along_axis(d, order, axis=1)


def recall(found, truth):
    """Fraction of the true neighbours found, over all queries."""
    hits = sum(len(set(f) & set(t)) for f, t in zip(found.tolist(), truth.tolist()))
    return hits / truth.size


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture
def small_index(rng):
    """An l2 index of 200 random 8-d vectors labelled 0..199."""
    data = rng.random((200, 8), dtype=np.float32)
    p = hnswc.Index("l2", 8)
    p.init_index(max_elements=200, M=8, ef_construction=100)
    p.add_items(data)
    p.set_ef(200)
    return p, data
