"""hnswlib 0.8's API surface and semantics, and hnswc's additions."""
import inspect

import numpy as np
import pytest

import hnswc
from conftest import exact_knn

hnswlib = pytest.importorskip("hnswlib")


def test_repr_and_properties():
    p = hnswc.Index(space="cosine", dim=16)
    assert repr(p) == "<hnswc.Index(space='cosine', dim=16)>"
    assert p.space == "cosine" and p.dim == 16
    p.init_index(max_elements=100, M=12, ef_construction=150, random_seed=7)
    assert (p.M, p.ef_construction, p.max_elements, p.element_count) == (12, 150, 100, 0)
    assert p.get_max_elements() == 100 and p.get_current_count() == 0
    b = hnswc.BFIndex("ip", 3)
    assert repr(b) == "<hnswc.BFIndex(space='ip', dim=3)>"
    assert b.space == "ip" and b.dim == 3


def test_default_ids_are_a_running_counter_like_hnswlib(rng):
    data = rng.random((10, 4), dtype=np.float32)
    for module in (hnswc, hnswlib):
        p = module.Index("l2", 4)
        p.init_index(20)
        p.add_items(data[:3])           # labels 0, 1, 2
        p.add_items(data[3:5], [50, 51])  # explicit ids still advance the counter
        p.add_items(data[5:7])          # labels 5, 6
        assert sorted(p.get_ids_list()) == [0, 1, 2, 5, 6, 50, 51], module.__name__


def test_existing_label_updates_its_vector(small_index):
    p, data = small_index
    count = p.get_current_count()
    new = np.full(8, 5.0, dtype=np.float32)
    p.add_items(new, [17])
    assert p.get_current_count() == count
    np.testing.assert_array_equal(p.get_items([17])[0], new)
    labels, dists = p.knn_query(new, k=1)
    assert labels[0, 0] == 17 and dists[0, 0] == 0.0


def test_updating_a_deleted_label_revives_it(small_index):
    p, data = small_index
    p.mark_deleted(3)
    assert 3 not in p.knn_query(data[3], k=5)[0]
    p.add_items(data[3], [3])
    assert p.knn_query(data[3], k=1)[0][0, 0] == 3
    assert p.deleted_count == 0


@pytest.mark.parametrize("dtype", [np.float64, np.float16, np.int32, np.uint8, np.int64, bool])
def test_any_numeric_dtype_is_converted_to_float32(dtype):
    raw = np.array([[0, 1, 2, 3], [4, 5, 6, 7], [1, 1, 1, 1]])
    data = raw.astype(dtype)
    p = hnswc.Index("l2", 4)
    p.init_index(3)
    p.add_items(data, [0, 1, 2])
    np.testing.assert_array_equal(p.get_items([0, 1, 2]), data.astype(np.float32))
    labels, _ = p.knn_query(data.astype(np.float32)[1], k=1)
    assert labels[0, 0] == 1


def test_lists_and_1d_input():
    p = hnswc.Index("l2", 3)
    p.init_index(10)
    p.add_items([1.0, 2.0, 3.0], 5)          # one vector, scalar id
    p.add_items([[0, 0, 1], [0, 1, 0]], np.array([6, 7], dtype=np.int8))
    labels, dists = p.knn_query([1, 2, 3], k=1)
    assert labels.shape == (1, 1) and labels[0, 0] == 5 and dists[0, 0] == 0
    # a Fortran-ordered or strided array works too
    q = np.asfortranarray(np.array([[0, 0, 1], [0, 1, 0]], dtype=np.float64))
    assert p.knn_query(q, k=1)[0].ravel().tolist() == [6, 7]
    assert p.knn_query(np.eye(3)[:, ::-1][::2], k=1)[0].shape == (2, 1)


def test_empty_batches_and_k_zero(small_index):
    p, _ = small_index
    p.add_items(np.zeros((0, 8), dtype=np.float32))
    labels, dists = p.knn_query(np.zeros((0, 8)), k=3)
    assert labels.shape == (0, 3) and dists.shape == (0, 3)
    labels, dists = p.knn_query(np.zeros(8), k=0)
    assert labels.shape == (1, 0) and labels.dtype == np.uint64


def test_results_are_sorted_and_exact_at_high_ef(small_index):
    p, data = small_index
    labels, dists = p.knn_query(data[:20], k=10)
    truth_l, truth_d = exact_knn("l2", data, np.arange(200), data[:20], 10)
    assert (np.diff(dists, axis=1) >= 0).all()
    np.testing.assert_allclose(dists, truth_d, rtol=1e-5, atol=1e-6)


def test_ef_property_and_set_ef():
    p = hnswc.Index("l2", 4)
    assert p.ef == 10
    p.set_ef(77)        # before init_index: remembered, as in hnswlib
    p.init_index(10)
    assert p.ef == 77
    p.ef = 33
    assert p.ef == 33
    p.set_ef(0)         # hnswlib accepts 0: a search then uses k
    assert p.ef == 0
    p.add_items(np.eye(4))
    assert p.knn_query(np.ones(4), k=4)[0].shape == (1, 4)


def test_num_threads_property():
    p = hnswc.Index("l2", 4)
    assert p.num_threads >= 1
    p.set_num_threads(3)
    assert p.num_threads == 3
    p.num_threads = 1
    assert p.num_threads == 1


def test_get_items_return_types(small_index):
    p, data = small_index
    arr = p.get_items([4, 2])
    assert isinstance(arr, np.ndarray) and arr.dtype == np.float32 and arr.shape == (2, 8)
    np.testing.assert_array_equal(arr, data[[4, 2]])
    lst = p.get_items([4, 2], return_type="list")
    assert isinstance(lst, list) and isinstance(lst[0], list)
    assert lst == data[[4, 2]].tolist()
    assert p.get_items().shape == (0, 8)
    assert p.get_items(np.array([], dtype=np.int64)).shape == (0, 8)


def test_get_ids_list_holds_deleted_labels_like_hnswlib(small_index):
    p, _ = small_index
    p.mark_deleted(10)
    ids = p.get_ids_list()
    assert isinstance(ids, list) and sorted(ids) == list(range(200))


def test_live_and_deleted_counts(small_index):
    p, _ = small_index
    for lab in (1, 2, 3):
        p.mark_deleted(lab)
    assert (p.element_count, p.live_count, p.deleted_count) == (200, 197, 3)
    p.unmark_deleted(2)
    assert (p.element_count, p.live_count, p.deleted_count) == (200, 198, 2)
    info = p.get_info()
    assert info["live_count"] == 198 and info["deleted_count"] == 2
    assert info["simd"] == hnswc.simd_name()


def test_deleted_elements_are_never_returned(small_index):
    p, data = small_index
    gone = set(range(0, 200, 3))
    for lab in gone:
        p.mark_deleted(lab)
    labels, _ = p.knn_query(data, k=10)
    assert not gone & set(labels.ravel().tolist())
    p.unmark_deleted(0)
    assert p.knn_query(data[0], k=1)[0][0, 0] == 0


def test_resize_index_moves_the_limit():
    p = hnswc.Index("l2", 2)
    p.init_index(2)
    p.add_items(np.eye(2))
    with pytest.raises(RuntimeError):
        p.add_items(np.ones(2))
    p.resize_index(3)
    assert p.get_max_elements() == 3 and p.max_elements == 3
    p.add_items(np.ones(2))
    assert p.get_current_count() == 3


def test_replace_deleted_reuses_slots():
    p = hnswc.Index("l2", 2)
    p.init_index(3, allow_replace_deleted=True)
    assert p.allow_replace_deleted
    p.add_items(np.array([[0, 0], [1, 0], [0, 1]]), [10, 11, 12])
    p.mark_deleted(11)
    # the index is full; replacing takes over the deleted slot
    with pytest.raises(RuntimeError):
        p.add_items([5, 5], [13])
    p.add_items([5, 5], [13], replace_deleted=True)
    assert p.get_current_count() == 3
    assert sorted(p.get_ids_list()) == [10, 12, 13]
    assert (p.live_count, p.deleted_count) == (3, 0)
    assert p.knn_query([5, 5], k=1)[0][0, 0] == 13
    with pytest.raises(RuntimeError):
        p.get_items([11])


def test_copy_constructor_and_params(small_index):
    p, data = small_index
    before = p.knn_query(data[:10], k=3)[0]
    q = hnswc.Index(p)
    r = hnswc.Index(index=p)
    s = hnswc.Index(params=p.__getstate__())
    p.resize_index(201)
    p.add_items(np.zeros(8), [999])  # the copies are independent
    assert p.get_current_count() == 201
    for c in (q, r, s):
        assert c.get_current_count() == 200 and c.ef == p.ef
        assert c.get_max_elements() == 200
        np.testing.assert_array_equal(c.knn_query(data[:10], k=3)[0], before)


def test_index_file_size_matches_the_file(small_index, tmp_path):
    p, _ = small_index
    path = tmp_path / "x.hnswc"
    p.save_index(str(path))
    assert p.index_file_size() == path.stat().st_size


def test_api_surface_covers_hnswlib():
    # every public name of hnswlib's classes exists in hnswc's
    for cls in ("Index", "BFIndex"):
        theirs = {n for n in dir(getattr(hnswlib, cls)) if not n.startswith("_")}
        ours = set(dir(getattr(hnswc, cls)))
        assert theirs <= ours, theirs - ours
    # and hnswlib 0.8's additions
    for name in ("get_items", "index_file_size", "load_index"):
        assert hasattr(hnswc.Index, name)
    for name in ("get_max_elements", "get_current_count", "set_num_threads", "num_threads"):
        assert hasattr(hnswc.BFIndex, name)


def test_signatures_and_docstrings_for_editors():
    sig = inspect.signature(hnswc.Index.knn_query)
    assert list(sig.parameters) == ["self", "data", "k", "num_threads", "filter"]
    assert sig.parameters["k"].default == 1
    sig = inspect.signature(hnswc.Index.init_index)
    assert [p.default for p in sig.parameters.values()][2:] == [16, 200, 100, False, "f32", "auto"]
    sig = inspect.signature(hnswc.Index.add_items)
    assert list(sig.parameters) == ["self", "data", "ids", "num_threads", "replace_deleted"]
    sig = inspect.signature(hnswc.Index.load_index)
    assert list(sig.parameters) == ["self", "path_to_index", "max_elements",
                                    "allow_replace_deleted", "mmap"]
    assert sig.parameters["mmap"].default is False
    for cls in (hnswc.Index, hnswc.BFIndex):
        assert cls.__doc__
        for name in dir(cls):
            if not name.startswith("_"):
                assert getattr(cls, name).__doc__, f"{cls.__name__}.{name} has no docstring"
    import importlib.resources
    assert (importlib.resources.files("hnswc") / "_hnswc.pyi").is_file()
    assert (importlib.resources.files("hnswc") / "py.typed").is_file()


def test_subclassing():
    class Mine(hnswc.Index):
        def __init__(self, dim):
            super().__init__("l2", dim)
            self.note = "mine"

    m = Mine(3)
    m.init_index(5)
    m.add_items(np.eye(3))
    assert m.note == "mine" and m.get_current_count() == 3
