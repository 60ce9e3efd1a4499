"""hnswc.BFIndex: exact search with hnswlib's BFIndex API."""
import pickle

import numpy as np
import pytest

import hnswc
from conftest import SPACES, exact_knn

hnswlib = pytest.importorskip("hnswlib")

DIM = 12


@pytest.fixture
def vectors(rng):
    return rng.standard_normal((400, DIM)).astype(np.float32)


@pytest.mark.parametrize("space", SPACES)
def test_exact_results(vectors, space, rng):
    b = hnswc.BFIndex(space, DIM)
    b.init_index(500)
    b.add_items(vectors, np.arange(400) + 1000)
    queries = rng.standard_normal((30, DIM)).astype(np.float32)
    labels, dists = b.knn_query(queries, k=8, num_threads=2)
    tl, td = exact_knn(space, vectors, np.arange(400) + 1000, queries, 8)
    np.testing.assert_array_equal(labels, tl)
    np.testing.assert_allclose(dists, td, rtol=1e-5, atol=1e-5)
    assert labels.dtype == np.uint64 and dists.dtype == np.float32


def test_delete_vector_update_and_limits(vectors):
    b = hnswc.BFIndex("l2", DIM)
    b.init_index(3)
    b.add_items(vectors[:3], [7, 8, 9])
    with pytest.raises(RuntimeError, match="exceeds the specified limit"):
        b.add_items(vectors[3], [10])
    assert b.get_current_count() == 3 and b.get_max_elements() == 3
    b.add_items(vectors[5], [8])  # update in place
    np.testing.assert_array_equal(b.get_items([8])[0], vectors[5])
    b.delete_vector(7)
    b.delete_vector(12345)  # unknown: ignored, as hnswlib 0.8
    assert b.get_current_count() == 2 and sorted(b.get_ids_list()) == [8, 9]
    labels, _ = b.knn_query(vectors[0], k=2)
    assert 7 not in labels
    with pytest.raises(RuntimeError, match="not enough elements"):
        b.knn_query(vectors[0], k=3)
    b.add_items(vectors[3], [10])  # the freed slot is usable
    assert b.knn_query(vectors[3], k=1)[0][0, 0] == 10
    with pytest.raises(RuntimeError):
        b.init_index(10)


def test_delete_everything_then_refill(vectors):
    b = hnswc.BFIndex("ip", DIM)
    b.init_index(100)
    b.add_items(vectors[:100])
    for lab in np.random.default_rng(3).permutation(100):
        b.delete_vector(int(lab))
    assert b.get_current_count() == 0
    b.add_items(vectors[:50], np.arange(50) * 2)
    assert sorted(b.get_ids_list()) == list(range(0, 100, 2))
    tl, _ = exact_knn("ip", vectors[:50], np.arange(50) * 2, vectors[60:70], 5)
    np.testing.assert_array_equal(b.knn_query(vectors[60:70], k=5)[0], tl)


@pytest.mark.parametrize("space", SPACES)
def test_save_load_and_hnswlib_files(vectors, space, tmp_path):
    b = hnswc.BFIndex(space, DIM)
    b.init_index(1000)
    b.add_items(vectors)
    b.delete_vector(5)
    b.save_index(str(tmp_path / "bf.hnswc"))
    c = hnswc.BFIndex(space, DIM)
    c.load_index(str(tmp_path / "bf.hnswc"))
    assert c.get_max_elements() == 1000 and c.get_current_count() == 399
    for x, y in zip(b.knn_query(vectors[:20], k=5), c.knn_query(vectors[:20], k=5)):
        np.testing.assert_array_equal(x, y)
    # a BFIndex saved by hnswlib
    h = hnswlib.BFIndex(space, DIM)
    h.init_index(450)
    h.add_items(vectors)
    h.save_index(str(tmp_path / "bf.hnswlib"))
    d = hnswc.BFIndex(space, DIM)
    d.load_index(str(tmp_path / "bf.hnswlib"))
    assert d.get_current_count() == 400 and d.get_max_elements() == 450
    tl, td = exact_knn(space, vectors, np.arange(400), vectors[:20], 5)
    dl, dd = d.knn_query(vectors[:20], k=5)
    np.testing.assert_array_equal(dl, tl)
    np.testing.assert_allclose(dd, td, rtol=1e-5, atol=1e-5)
    # a file of another dimension is refused
    with pytest.raises(RuntimeError):
        hnswc.BFIndex(space, DIM + 1).load_index(str(tmp_path / "bf.hnswlib"))
    with pytest.raises(RuntimeError):
        hnswc.BFIndex(space, DIM + 1).load_index(str(tmp_path / "bf.hnswc"))


def test_corrupted_bf_file(vectors, tmp_path):
    b = hnswc.BFIndex("l2", DIM)
    b.init_index(100)
    b.add_items(vectors[:100])
    path = tmp_path / "bf"
    b.save_index(str(path))
    raw = bytearray(path.read_bytes())
    raw[200] ^= 1
    path.write_bytes(bytes(raw))
    with pytest.raises(RuntimeError, match="checksum"):
        hnswc.BFIndex("l2", DIM).load_index(str(path))


def test_bf_pickle(vectors):
    b = hnswc.BFIndex("cosine", DIM)
    b.init_index(450)
    b.add_items(vectors)
    b.num_threads = 1
    c = pickle.loads(pickle.dumps(b))
    assert c.num_threads == 1 and c.get_max_elements() == 450
    for x, y in zip(b.knn_query(vectors[:10], k=4), c.knn_query(vectors[:10], k=4)):
        np.testing.assert_array_equal(x, y)
    u = pickle.loads(pickle.dumps(hnswc.BFIndex("l2", 3)))
    with pytest.raises(RuntimeError):
        u.get_current_count()


def test_bf_filter(vectors):
    b = hnswc.BFIndex("l2", DIM)
    b.init_index(400)
    b.add_items(vectors)
    even = np.arange(0, 400, 2)
    for f in (lambda lab: lab % 2 == 0, even, np.arange(400) % 2 == 0):
        labels, dists = b.knn_query(vectors[:10], k=5, filter=f)
        tl, td = exact_knn("l2", vectors[even], even, vectors[:10], 5)
        np.testing.assert_array_equal(labels, tl)
