"""Every error path: hnswc raises what hnswlib raises, where hnswlib raises;
and raises (instead of crashing or returning garbage) where hnswlib does not.
"""
import numpy as np
import pytest

import hnswc

hnswlib = pytest.importorskip("hnswlib")

DIM = 4


def fresh(module, n=5, allow_replace=False):
    """An index of `n` max elements holding labels 0, 1, 2."""
    p = module.Index("l2", DIM)
    p.init_index(n, M=4, ef_construction=20)
    p.add_items(np.arange(12, dtype=np.float32).reshape(3, DIM), [0, 1, 2])
    return p


# (name, action on an index from fresh(), exception type). Each runs against
# hnswlib 0.6.2 too, to check it raises the same type.
SHARED = [
    ("vectors of the wrong dimension", lambda p: p.add_items(np.zeros((2, 3))), RuntimeError),
    ("3-D data", lambda p: p.add_items(np.zeros((2, 3, DIM))), RuntimeError),
    ("more ids than rows", lambda p: p.add_items(np.zeros((2, DIM)), [5, 6, 7]), RuntimeError),
    ("2-D ids", lambda p: p.add_items(np.zeros((2, DIM)), [[5, 6]]), RuntimeError),
    ("string data", lambda p: p.add_items("abcd"), ValueError),
    ("string query", lambda p: p.knn_query("abcd"), ValueError),
    ("adding past max_elements", lambda p: p.add_items(np.ones((3, DIM)), [10, 11, 12]),
     RuntimeError),
    ("k above the element count", lambda p: p.knn_query(np.zeros(DIM), k=4), RuntimeError),
    ("init_index twice", lambda p: p.init_index(10), RuntimeError),
    ("mark_deleted of an unknown label", lambda p: p.mark_deleted(99), RuntimeError),
    ("unmark_deleted of an unknown label", lambda p: p.unmark_deleted(99), RuntimeError),
    ("unmark_deleted of a live label", lambda p: p.unmark_deleted(1), RuntimeError),
    ("mark_deleted twice", lambda p: (p.mark_deleted(1), p.mark_deleted(1)), RuntimeError),
    ("get_items of an unknown label", lambda p: p.get_items([99]), RuntimeError),
    ("get_items of a deleted label", lambda p: (p.mark_deleted(1), p.get_items([1])),
     RuntimeError),
    ("get_items with a scalar", lambda p: p.get_items(1), ValueError),
    ("resize below the count", lambda p: p.resize_index(2), RuntimeError),
    ("a negative k", lambda p: p.knn_query(np.zeros(DIM), k=-1), TypeError),
    ("a float k", lambda p: p.knn_query(np.zeros(DIM), k=1.5), TypeError),
    ("a negative label", lambda p: p.mark_deleted(-1), TypeError),
    ("a negative ef", lambda p: p.set_ef(-5), TypeError),
    ("a negative new size", lambda p: p.resize_index(-5), TypeError),
    ("deleting the space", lambda p: delattr(p, "space"), AttributeError),
    ("setting the dim", lambda p: setattr(p, "dim", 3), AttributeError),
]


@pytest.mark.parametrize("name,action,exc", SHARED, ids=[s[0] for s in SHARED])
def test_same_exception_as_hnswlib(name, action, exc):
    with pytest.raises(exc):
        action(fresh(hnswc))
    with pytest.raises(exc):
        action(fresh(hnswlib))


def test_a_failed_add_changes_nothing():
    p = fresh(hnswc)
    with pytest.raises(RuntimeError, match="exceeds the specified limit"):
        p.add_items(np.ones((3, DIM)), [10, 11, 12])
    assert p.get_current_count() == 3
    assert sorted(p.get_ids_list()) == [0, 1, 2]
    # updates of existing labels do not count against the limit
    p.add_items(np.ones((3, DIM)), [0, 1, 2])
    assert p.get_current_count() == 3
    # and two new ones still fit
    p.add_items(np.ones((2, DIM)), [10, 11])
    assert p.get_current_count() == 5


def test_unknown_space():
    with pytest.raises(RuntimeError, match="Space name must be one of l2, ip, or cosine"):
        hnswc.Index("euclid", 4)
    with pytest.raises(RuntimeError):
        hnswc.BFIndex("euclid", 4)
    with pytest.raises(RuntimeError):
        hnswlib.Index("euclid", 4)


@pytest.mark.parametrize("dim", [-1, 70000])
def test_bad_dimension_raises_at_construction(dim):
    # hnswlib accepts these and crashes later
    with pytest.raises(ValueError):
        hnswc.Index("l2", dim)
    with pytest.raises(ValueError):
        hnswc.BFIndex("l2", dim)


def test_zero_dimension_is_a_placeholder_for_index_only():
    # Index(space, 0) is hnswlib's placeholder for load_index
    # (test_drop_in.py); nothing else can use it
    with pytest.raises(ValueError, match="dim=0"):
        hnswc.Index("l2", 0).init_index(10)
    with pytest.raises(ValueError):
        hnswc.BFIndex("l2", 0)


def test_bad_constructor_arguments():
    with pytest.raises(TypeError):
        hnswc.Index("l2")
    with pytest.raises(TypeError):
        hnswc.Index("l2", "four")
    with pytest.raises(TypeError):
        hnswc.Index()


def test_replace_deleted_needs_permission():
    for module in (hnswc,):
        p = fresh(module)
        p.mark_deleted(0)
        with pytest.raises(RuntimeError, match="disabled"):
            p.add_items(np.ones(DIM), [7], replace_deleted=True)


@pytest.mark.parametrize("bad_M", [0, 1])
def test_M_out_of_range(bad_M):
    p = hnswc.Index("l2", DIM)
    with pytest.raises(ValueError):
        p.init_index(10, M=bad_M)
    p.init_index(10, M=2)  # the index is still usable after the failure


UNINITIALISED = [
    ("add_items", lambda p: p.add_items(np.zeros(DIM))),
    ("knn_query", lambda p: p.knn_query(np.zeros(DIM))),
    ("mark_deleted", lambda p: p.mark_deleted(0)),
    ("unmark_deleted", lambda p: p.unmark_deleted(0)),
    ("get_items", lambda p: p.get_items([0])),
    ("get_ids_list", lambda p: p.get_ids_list()),
    ("get_current_count", lambda p: p.get_current_count()),
    ("get_max_elements", lambda p: p.get_max_elements()),
    ("resize_index", lambda p: p.resize_index(10)),
    ("save_index", lambda p: p.save_index("/tmp/never-written.hnswc")),
    ("index_file_size", lambda p: p.index_file_size()),
]


@pytest.mark.parametrize("name,action", UNINITIALISED, ids=[u[0] for u in UNINITIALISED])
def test_uninitialised_index_raises_instead_of_crashing(name, action):
    p = hnswc.Index("l2", DIM)
    with pytest.raises(RuntimeError, match="not initialized"):
        action(p)


def test_uninitialised_properties_are_zero_like_hnswlib():
    ours, theirs = hnswc.Index("ip", 7), hnswlib.Index("ip", 7)
    for name in ["max_elements", "element_count", "M", "ef_construction", "ef", "dim", "space"]:
        assert getattr(ours, name) == getattr(theirs, name), name
    assert ours.live_count == 0 and ours.deleted_count == 0


@pytest.mark.parametrize("name,action", [
    ("add_items", lambda p: p.add_items(np.zeros(DIM))),
    ("knn_query", lambda p: p.knn_query(np.zeros(DIM))),
    ("delete_vector", lambda p: p.delete_vector(0)),
    ("save_index", lambda p: p.save_index("/tmp/never-written.bf")),
    ("get_max_elements", lambda p: p.get_max_elements()),
    ("get_current_count", lambda p: p.get_current_count()),
])
def test_uninitialised_bfindex_raises(name, action):
    with pytest.raises(RuntimeError, match="not initialized"):
        action(hnswc.BFIndex("l2", DIM))


def test_query_dimension_is_checked():
    # hnswlib reads past the query here and returns garbage
    p = fresh(hnswc)
    with pytest.raises(RuntimeError, match="dimensionality"):
        p.knn_query(np.zeros(DIM - 1))
    with pytest.raises(RuntimeError, match="dimensionality"):
        p.knn_query(np.zeros((2, DIM + 1)))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_vectors_are_rejected(bad):
    p = fresh(hnswc, n=10)
    v = np.ones((2, DIM), dtype=np.float32)
    v[1, 2] = bad
    with pytest.raises(ValueError):
        p.add_items(v, [5, 6])
    assert p.get_current_count() == 3  # nothing of the batch went in
    with pytest.raises(ValueError):
        p.knn_query(v)
    b = hnswc.BFIndex("l2", DIM)
    b.init_index(10)
    with pytest.raises(ValueError):
        b.add_items(v)
    assert b.get_current_count() == 0
    with pytest.raises(ValueError):
        b.knn_query(v)


def test_get_items_bad_return_type():
    with pytest.raises(ValueError, match="return_type"):
        fresh(hnswc).get_items([0], return_type="tuple")


def test_file_errors(tmp_path):
    p = fresh(hnswc)
    with pytest.raises(RuntimeError):
        p.save_index(str(tmp_path / "no" / "such" / "dir" / "x.bin"))
    with pytest.raises(RuntimeError):
        p.load_index(str(tmp_path / "missing.bin"))
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"this is not an index" * 10)
    with pytest.raises(RuntimeError, match="neither"):
        p.load_index(str(junk))
    # failed loads leave the index as it was
    assert sorted(p.get_ids_list()) == [0, 1, 2]
    b = hnswc.BFIndex("l2", DIM)
    with pytest.raises(RuntimeError):
        b.load_index(str(junk))
    with pytest.raises(RuntimeError):
        b.load_index(str(tmp_path / "missing.bin"))


def test_filter_of_the_wrong_type():
    p = fresh(hnswc)
    for bad in ["abc", 3.5, np.array([0.5, 1.5]), np.zeros((2, 2), dtype=bool)]:
        with pytest.raises((TypeError, ValueError)):
            p.knn_query(np.zeros(DIM), k=1, filter=bad)
