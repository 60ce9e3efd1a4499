"""True removal (Index.remove_items, Index.compact) and range search
(Index.range_query), against brute force in float64."""
import os
import pickle
import threading

import numpy as np
import pytest

import hnswc

from conftest import SPACES, exact_distances, exact_knn, recall


def build(space, data, labels=None, M=16, ef=200, max_elements=None):
    p = hnswc.Index(space=space, dim=data.shape[1])
    p.init_index(max_elements=max_elements or len(data), M=M, ef_construction=ef, random_seed=7)
    p.add_items(data, labels if labels is not None else np.arange(len(data)))
    return p


# ---------------------------------------------------------------------------
# remove_items
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("space", SPACES)
def test_remove_half_recall(space, rng):
    data = rng.standard_normal((2000, 16)).astype(np.float32)
    labels = np.arange(2000) * 3 + 5
    p = build(space, data, labels)
    gone = rng.choice(2000, 1000, replace=False)
    p.remove_items(labels[gone])
    keep = np.setdiff1d(np.arange(2000), gone)
    assert p.element_count == 1000
    assert p.get_current_count() == 1000
    assert sorted(p.get_ids_list()) == sorted(labels[keep].tolist())
    p.set_ef(64)
    queries = rng.standard_normal((100, 16)).astype(np.float32)
    found, dists = p.knn_query(queries, k=10)
    assert not np.isin(found, labels[gone]).any()
    truth, _ = exact_knn(space, data[keep], labels[keep], queries, 10)
    fresh = build(space, data[keep], labels[keep])
    fresh.set_ef(64)
    r_removed = recall(found, truth)
    r_fresh = recall(fresh.knn_query(queries, k=10)[0], truth)
    assert r_removed >= 0.9 and r_removed >= r_fresh - 0.02, (r_removed, r_fresh)
    # distances are the true ones
    exact = exact_distances(space, data, queries)
    row = {int(l): i for i, l in enumerate(labels)}
    for q in range(5):
        for l, d in zip(found[q], dists[q]):
            assert d == pytest.approx(exact[q, row[int(l)]], rel=1e-4, abs=1e-4)


def test_remove_single_and_readd(rng):
    data = rng.random((300, 8), dtype=np.float32)
    p = build("l2", data)
    p.remove_items(17)
    with pytest.raises(RuntimeError):
        p.get_items([17])
    with pytest.raises(RuntimeError):
        p.mark_deleted(17)
    with pytest.raises(RuntimeError, match="17"):
        p.remove_items([17])
    v = np.full(8, 9.0, dtype=np.float32)
    p.add_items(v, 17)  # the label is free again
    np.testing.assert_array_equal(p.get_items([17])[0], v)
    labels, dists = p.knn_query(v, k=1)
    assert labels[0, 0] == 17 and dists[0, 0] == 0


def test_remove_all_or_nothing(rng):
    data = rng.random((200, 8), dtype=np.float32)
    p = build("l2", data)
    with pytest.raises(RuntimeError, match="999"):
        p.remove_items([1, 2, 999, 3])
    with pytest.raises(ValueError, match="twice"):
        p.remove_items([1, 2, 1])
    with pytest.raises(ValueError, match="negative"):
        p.remove_items([1, -2])
    with pytest.raises(TypeError):
        p.remove_items([1.5])
    with pytest.raises(ValueError):
        p.remove_items([[1, 2], [3, 4]])  # not 1-D
    assert p.element_count == 200
    p.get_items([1, 2, 3])  # all still there
    p.remove_items([])  # nothing to do
    p.remove_items(np.array([1, 2, 3], dtype=np.uint32))
    assert p.element_count == 197


def test_remove_frees_room_under_max_elements(rng):
    data = rng.random((120, 8), dtype=np.float32)
    p = build("l2", data[:100], max_elements=100)
    with pytest.raises(RuntimeError, match="exceeds"):
        p.add_items(data[100:110], np.arange(100, 110))
    p.remove_items(np.arange(10))
    p.add_items(data[100:110], np.arange(100, 110))
    assert p.element_count == 100


def test_uninitialised_index():
    p = hnswc.Index(space="l2", dim=4)
    with pytest.raises(RuntimeError):
        p.remove_items([1])
    with pytest.raises(RuntimeError):
        p.compact()
    with pytest.raises(RuntimeError):
        p.range_query(np.zeros(4, dtype=np.float32), 1.0)


# ---------------------------------------------------------------------------
# compact, slots, files
# ---------------------------------------------------------------------------

def test_compact_and_files(rng, tmp_path):
    data = rng.standard_normal((1500, 16)).astype(np.float32)
    p = build("cosine", data)
    marked = rng.choice(1500, 450, replace=False)
    for l in marked:
        p.mark_deleted(int(l))
    before = p.index_file_size()
    assert p.compact() == 450
    info = p.get_info()
    assert info["deleted_count"] == 0 and info["element_count"] == 1050
    assert info["removed_slots"] == 450 and info["pending_slots"] == 0
    assert p.index_file_size() < before - 450 * 16 * 4
    assert p.compact() == 0
    # reuse: new elements take the freed slots
    p.add_items(rng.standard_normal((450, 16)).astype(np.float32), np.arange(5000, 5450))
    info = p.get_info()
    assert info["removed_slots"] == 0 and info["reused_total"] == 450
    # save/load and pickle give the same answers
    path = str(tmp_path / "x.bin")
    p.save_index(path)
    q = hnswc.Index(space="cosine", dim=16)
    q.load_index(path)
    r = pickle.loads(pickle.dumps(p))
    queries = rng.standard_normal((20, 16)).astype(np.float32)
    for other in (q, r):
        a, da = p.knn_query(queries, k=5)
        b, db = other.knn_query(queries, k=5)
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(da, db)
    assert os.path.getsize(path) == p.index_file_size()


# ---------------------------------------------------------------------------
# range_query
# ---------------------------------------------------------------------------

def radii_for(space, data, queries, ks):
    """Per query: a radius halfway between the k-th and (k+1)-th distance."""
    d = np.sort(exact_distances(space, data, queries), axis=1)
    return [(d[i, k - 1] + d[i, k]) / 2 for i, k in enumerate(ks)]


@pytest.mark.parametrize("space", ["l2", "cosine"])
def test_range_query_vs_exact(space, rng):
    data = rng.standard_normal((2000, 12)).astype(np.float32)
    labels = np.arange(2000) + 100
    p = build(space, data, labels)
    queries = rng.standard_normal((40, 12)).astype(np.float32)
    ks = [5 + (7 * i) % 60 for i in range(40)]
    radii = radii_for(space, data, queries, ks)
    exact = exact_distances(space, data, queries)
    found_total = 0
    for ef, want_exact in ((2000, True), (64, False)):
        found_total = 0
        for i, q in enumerate(queries):
            ls, ds = p.range_query(q, radii[i], ef=ef)
            assert len(ls) == 1 and ls[0].dtype == np.uint64 and ds[0].dtype == np.float32
            got = ls[0] - 100
            assert np.all(np.diff(ds[0]) >= 0)
            assert np.all(exact[i, got] <= radii[i] + 1e-5)
            np.testing.assert_allclose(ds[0], exact[i, got], rtol=1e-4, atol=1e-4)
            if want_exact:
                assert sorted(got.tolist()) == sorted(np.argsort(exact[i])[:ks[i]].tolist())
            found_total += len(got)
        if not want_exact:
            assert found_total / sum(ks) >= 0.97
    # a batch gives the same as one at a time
    ls, ds = p.range_query(queries[:5], float(np.mean(radii[:5])))
    assert len(ls) == 5
    for i in range(5):
        one, _ = p.range_query(queries[i], float(np.mean(radii[:5])))
        np.testing.assert_array_equal(ls[i], one[0])


def test_range_query_filter_and_errors(rng):
    data = rng.random((500, 8), dtype=np.float32)
    p = build("l2", data)
    q = data[0]
    everything, _ = p.range_query(q, 1e9, ef=500)
    assert len(everything[0]) == 500
    odd, _ = p.range_query(q, 1e9, ef=500, filter=lambda l: l % 2 == 1)
    assert sorted(odd[0].tolist()) == list(range(1, 500, 2))
    ids, _ = p.range_query(q, 1e9, ef=500, filter=np.array([3, 4, 5]))
    assert sorted(ids[0].tolist()) == [3, 4, 5]
    zero, d = p.range_query(q, 0.0)
    assert zero[0].tolist() == [0] and d[0].tolist() == [0.0]
    with pytest.raises(ValueError):
        p.range_query(q, -1.0)
    with pytest.raises(ValueError):
        p.range_query(q, float("nan"))
    with pytest.raises(RuntimeError):
        p.range_query(np.zeros(3, dtype=np.float32), 1.0)  # wrong dimension

    def bad(label):
        raise KeyError("from the filter")
    with pytest.raises(KeyError):
        p.range_query(q, 1.0, filter=bad)
    p.remove_items(np.arange(0, 500, 2))
    left, _ = p.range_query(q, 1e9, ef=500)
    assert sorted(left[0].tolist()) == list(range(1, 500, 2))


# ---------------------------------------------------------------------------
# threads
# ---------------------------------------------------------------------------

def test_remove_while_querying(rng):
    data = rng.random((3000, 8), dtype=np.float32)
    p = build("l2", data)
    p.set_ef(32)
    removed = set()
    lock = threading.Lock()
    errors = []

    def remover():
        try:
            for start in range(0, 1500, 50):
                batch = list(range(start, start + 50))
                p.remove_items(batch)
                with lock:
                    removed.update(batch)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    def searcher():
        try:
            for _ in range(60):
                with lock:
                    before = set(removed)
                labels, _ = p.knn_query(rng.random((8, 8), dtype=np.float32), k=5)
                assert not before & set(labels.ravel().tolist())
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=remover)] + [threading.Thread(target=searcher)
                                                    for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert p.element_count == 1500
