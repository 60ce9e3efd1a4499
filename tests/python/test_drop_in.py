"""Code written for hnswlib 0.8 runs unchanged: the behaviours its users
rely on that hnswc once did differently (issue 9)."""
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
