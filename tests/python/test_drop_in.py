"""Code written for hnswlib 0.8 runs unchanged: the behaviours its users
rely on that hnswc once did differently (issue 9)."""
import pickle
import threading
import time

import numpy as np
import pytest

import hnswc

DIM = 8


@pytest.fixture
def index(rng):
    data = rng.random((300, DIM), dtype=np.float32)
    p = hnswc.Index("l2", DIM)
    p.init_index(max_elements=300, M=8, ef_construction=100)
    p.add_items(data)
    p.set_ef(300)
    return p, data


# ---------------------------------------------------------------------------
# get_items takes any array of labels
# ---------------------------------------------------------------------------

def test_get_items_takes_the_labels_knn_query_returns(index):
    p, data = index
    labels, _ = p.knn_query(data[:20], k=1)           # shape (20, 1), uint64
    assert labels.shape == (20, 1)
    items = p.get_items(labels)
    assert items.shape == (20, DIM)
    np.testing.assert_array_equal(items, data[labels[:, 0]])


@pytest.mark.parametrize("shape", [(6,), (6, 1), (1, 6), (2, 3), (3, 1, 2)])
def test_get_items_reads_any_shape_flat_in_c_order(index, shape):
    p, data = index
    ids = (np.arange(6) * 7 + 1).reshape(shape)
    items = p.get_items(ids)
    np.testing.assert_array_equal(items, data[ids.ravel()])
    # for (n, 1) that is exactly hnswlib's answer; for (n, k) hnswlib gives
    # the first n of these rows, so ours starts with its answer
    assert p.get_items(ids, return_type="list") == data[ids.ravel()].tolist()


@pytest.mark.parametrize("ids", [[3, 4], (3, 4), np.array([3, 4], dtype=np.int32),
                                 np.array([[3], [4]], dtype=np.int64), range(3, 5)])
def test_get_items_accepts_lists_tuples_and_any_integer_dtype(index, ids):
    p, data = index
    np.testing.assert_array_equal(p.get_items(ids), data[[3, 4]])


def test_get_items_still_refuses_a_scalar_and_unknown_labels(index):
    p, _ = index
    with pytest.raises(ValueError):
        p.get_items(5)
    with pytest.raises(ValueError):
        p.get_items(np.uint64(5))
    with pytest.raises(RuntimeError, match="Label not found"):
        p.get_items(np.array([[1], [999]]))


def test_bfindex_get_items_takes_the_same_arrays(rng):
    data = rng.random((50, DIM), dtype=np.float32)
    b = hnswc.BFIndex("l2", DIM)
    b.init_index(max_elements=50)
    b.add_items(data)
    labels, _ = b.knn_query(data[:5], k=1)
    np.testing.assert_array_equal(b.get_items(labels), data[:5])


# ---------------------------------------------------------------------------
# Index(space, dim=0): a placeholder that load_index fills
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("space", ["l2", "ip", "cosine"])
def test_dim_zero_placeholder_loads_a_file_and_takes_its_dimension(tmp_path, rng, space):
    data = rng.random((200, 12), dtype=np.float32)
    src = hnswc.Index(space, 12)
    src.init_index(max_elements=500, M=8)
    src.add_items(data)
    src.save_index(str(tmp_path / "a.hnswc"))

    p = hnswc.Index(space=space, dim=0)
    assert p.dim == 0 and p.max_elements == 0
    assert repr(p) == "<hnswc.Index(space='%s', dim=0)>" % space
    p.load_index(str(tmp_path / "a.hnswc"))
    assert p.dim == 12 and p.element_count == 200
    np.testing.assert_array_equal(p.knn_query(data[:10], k=3)[0], src.knn_query(data[:10], k=3)[0])
    p.add_items(rng.random((5, 12), dtype=np.float32))    # a usable index from here on
    assert p.element_count == 205


def test_dim_zero_placeholder_loads_an_hnswlib_file():
    # the fixture written by hnswlib; hnswlib files record the dimension
    import os
    path = os.path.join(os.path.dirname(__file__), "..", "data", "hnswlib-l2-d8.bin")
    p = hnswc.Index("l2", 0)
    p.load_index(path)
    assert p.dim == 8 and p.element_count > 0


def test_dim_zero_placeholder_cannot_be_used_before_a_load(rng):
    p = hnswc.Index("l2", 0)
    with pytest.raises(ValueError, match="dim=0"):
        p.init_index(max_elements=10)
    with pytest.raises(RuntimeError):
        p.add_items(rng.random((2, 4)))
    with pytest.raises(RuntimeError):
        p.knn_query(rng.random((1, 4)))
    # a failed load leaves the placeholder as it was
    with pytest.raises(RuntimeError):
        p.load_index("/nonexistent/index.bin")
    assert p.dim == 0


# ---------------------------------------------------------------------------
# max_elements: kept by save_index/load_index, enforced by the library
# ---------------------------------------------------------------------------

def test_save_load_add_keeps_max_elements(tmp_path, rng):
    # issue 9: load_index without max_elements used to come back with the
    # internal capacity (7168 for 10000), and the next add_items could fail
    data = rng.random((10000, 4), dtype=np.float32)
    p = hnswc.Index("l2", 4)
    p.init_index(max_elements=10000, M=8, ef_construction=40)
    p.add_items(data[:5000])
    p.save_index(str(tmp_path / "half.hnswc"))
    q = hnswc.Index("l2", 4)
    q.load_index(str(tmp_path / "half.hnswc"))
    assert q.max_elements == q.get_max_elements() == 10000
    assert q.get_info()["max_elements"] == 10000
    q.add_items(data[5000:])                        # labels 5000.. (the counter restarts at 5000)
    assert q.element_count == 10000
    with pytest.raises(RuntimeError, match="exceeds the specified limit"):
        q.add_items(data[:1], [10000])
    # pickling and copying agree with the file
    for r in (pickle.loads(pickle.dumps(q)), hnswc.Index(q)):
        assert r.max_elements == 10000
        with pytest.raises(RuntimeError, match="exceeds the specified limit"):
            r.add_items(data[:1], [10000])


def test_load_index_max_elements_argument(tmp_path, rng):
    data = rng.random((50, 4), dtype=np.float32)
    p = hnswc.Index("l2", 4)
    p.init_index(max_elements=100)
    p.add_items(data)
    p.save_index(str(tmp_path / "a.hnswc"))
    for arg, want in [(0, 100), (10, 100), (50, 50), (70, 70), (500, 500)]:
        q = hnswc.Index("l2", 4)
        q.load_index(str(tmp_path / "a.hnswc"), max_elements=arg)
        assert q.max_elements == want, arg    # below the count: the file's (hnswlib's rule)


def test_resize_index_moves_the_library_limit(rng):
    data = rng.random((30, 4), dtype=np.float32)
    p = hnswc.Index("l2", 4)
    p.init_index(max_elements=10)
    p.add_items(data[:10])
    with pytest.raises(RuntimeError, match="exceeds the specified limit"):
        p.add_items(data[10:11])
    with pytest.raises(RuntimeError, match="Cannot resize"):
        p.resize_index(9)
    p.resize_index(30)
    assert p.max_elements == 30 and p.get_info()["max_elements"] == 30
    p.add_items(data[10:30])
    assert p.element_count == 30


def test_max_elements_zero_takes_nothing_until_resized(rng):
    # hnswlib: init_index(max_elements=0) makes an index that is full
    p = hnswc.Index("l2", 4)
    p.init_index(max_elements=0)
    assert p.max_elements == 0
    with pytest.raises(RuntimeError, match="exceeds the specified limit"):
        p.add_items(rng.random((1, 4)))
    p.resize_index(2)
    p.add_items(rng.random((2, 4)))
    assert p.element_count == 2


def test_a_batch_past_the_limit_adds_nothing(rng):
    p = hnswc.Index("l2", 4)
    p.init_index(max_elements=10)
    p.add_items(rng.random((8, 4)))
    with pytest.raises(RuntimeError, match="exceeds the specified limit"):
        p.add_items(rng.random((3, 4)), [20, 21, 22])
    assert p.element_count == 8
    # but updates and repeats are counted as what they are
    p.add_items(rng.random((6, 4)), [0, 1, 2, 30, 31, 30])
    assert p.element_count == 10


def test_updates_in_another_thread_never_refuse_adds(rng):
    # issue 13, defect 3: with max_elements=5000 and 1000 elements, one thread
    # re-adding labels 0..499 in a loop and another adding 250 new labels at a
    # time got "exceeds the specified limit" at 3000 of 5000 (the binding
    # counted update-only batches against the limit while batches were in
    # flight). The library now counts what each batch really adds.
    data = rng.random((5250, 8), dtype=np.float32)
    p = hnswc.Index("l2", 8)
    p.init_index(max_elements=5000, M=8, ef_construction=40)
    p.add_items(data[:1000], np.arange(1000))
    stop = threading.Event()
    rounds = [0]
    errors = []

    def updater():
        try:
            while not stop.is_set():
                p.add_items(data[:500], np.arange(500), num_threads=1)
                rounds[0] += 1
        except Exception as e:  # noqa: BLE001 -- reported below
            errors.append(e)

    t = threading.Thread(target=updater)
    t.start()
    try:
        while rounds[0] == 0 and t.is_alive():
            time.sleep(0.001)
        for start in range(1000, 5000, 250):
            p.add_items(data[start:start + 250], np.arange(start, start + 250), num_threads=1)
        with pytest.raises(RuntimeError, match="exceeds the specified limit"):
            p.add_items(data[5000:], np.arange(5000, 5250), num_threads=1)
    finally:
        stop.set()
        t.join()
    assert not errors, errors
    assert p.element_count == 5000 and rounds[0] > 0
