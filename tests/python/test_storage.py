"""init_index(storage='sq8'): the walk on one-byte codes with an exact f32
re-rank, through the Python package (the C tests, tests/c/test_sq8.c, cover
the library in depth)."""
import numpy as np
import pytest

import hnswc
from conftest import SPACES, exact_distances, exact_knn, recall

N, DIM, K = 2500, 32, 10


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(5)
    return rng.standard_normal((N, DIM)).astype(np.float32), \
        rng.standard_normal((100, DIM)).astype(np.float32)


def build(space, vectors, storage):
    p = hnswc.Index(space, DIM)
    p.init_index(max_elements=len(vectors), M=16, ef_construction=100, storage=storage)
    p.add_items(vectors, np.arange(len(vectors)), num_threads=1)
    return p


@pytest.mark.parametrize("space", SPACES)
def test_sq8_recall_and_exact_distances(data, space):
    vectors, queries = data
    p = build(space, vectors, "sq8")
    p.set_ef(100)
    labels, dists = p.knn_query(queries, k=K)
    truth, tdist = exact_knn(space, vectors, np.arange(N), queries, K)
    assert recall(labels, truth) >= 0.97
    # the re-rank returns exact f32 distances of the returned labels
    exact = np.take_along_axis(exact_distances(space, vectors, queries),
                               labels.astype(np.int64), axis=1)
    np.testing.assert_allclose(dists, exact, rtol=1e-4, atol=1e-4)
    assert np.all(np.diff(dists, axis=1) >= 0)


def test_sq8_round_trip(data, tmp_path):
    vectors, queries = data
    p = build("l2", vectors, "sq8")
    p.set_ef(50)
    path = str(tmp_path / "sq8.hnswc")
    p.save_index(path)
    q = hnswc.Index("l2", DIM)
    q.load_index(path)
    q.set_ef(50)
    a, da = p.knn_query(queries, k=K)
    b, db = q.knn_query(queries, k=K)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(da, db)
    np.testing.assert_array_equal(q.get_items([5, 7]), vectors[[5, 7]])


def test_bad_storage():
    p = hnswc.Index("l2", 4)
    with pytest.raises(ValueError, match="storage"):
        p.init_index(max_elements=10, storage="pq4")
    with pytest.raises(TypeError):
        p.init_index(max_elements=10, storage=8)
