"""save_index / load_index: hnswc's own files, across processes, and files
written by hnswlib."""
import copy
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import hnswc
from conftest import SPACES, exact_knn, recall

hnswlib = pytest.importorskip("hnswlib")

N, DIM = 1500, 24


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(77)
    return rng.standard_normal((N, DIM)).astype(np.float32), \
        rng.standard_normal((100, DIM)).astype(np.float32)


def build(module, space, vectors, **kw):
    p = module.Index(space, DIM)
    p.init_index(max_elements=len(vectors) + 100, M=12, ef_construction=100, **kw)
    p.add_items(vectors, np.arange(len(vectors)) * 3)  # labels 0, 3, 6, ...
    return p


@pytest.mark.parametrize("space", SPACES)
def test_save_and_load_give_identical_results(data, space, tmp_path):
    vectors, queries = data
    p = build(hnswc, space, vectors)
    p.set_ef(64)
    p.mark_deleted(9)
    path = tmp_path / "index.hnswc"
    p.save_index(str(path))
    q = hnswc.Index(space, DIM)
    q.load_index(path)  # os.PathLike works too
    assert q.ef == 64, "ef is kept across save and load"
    assert (q.M, q.ef_construction, q.element_count) == (12, 100, N)
    assert (q.live_count, q.deleted_count) == (N - 1, 1)
    for a, b in zip(p.knn_query(queries, k=10), q.knn_query(queries, k=10)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(p.get_items([0, 3, 4497]), q.get_items([0, 3, 4497]))
    with pytest.raises(RuntimeError):
        q.get_items([9])  # still deleted
    q.unmark_deleted(9)
    # the label counter restarts at the element count, as in hnswlib
    q.add_items(np.zeros(DIM))
    assert N in q.get_ids_list()


def test_save_in_one_process_load_in_another(data, tmp_path):
    vectors, queries = data
    p = build(hnswc, "cosine", vectors)
    p.set_ef(50)
    path = tmp_path / "shared.hnswc"
    p.save_index(str(path))
    np.save(tmp_path / "q.npy", queries)
    labels, dists = p.knn_query(queries, k=5)
    child = textwrap.dedent(f"""
        import numpy as np, hnswc
        q = hnswc.Index("cosine", {DIM})
        q.load_index({str(path)!r})
        assert q.ef == 50, q.ef
        l, d = q.knn_query(np.load({str(tmp_path / "q.npy")!r}), k=5)
        np.save({str(tmp_path / "l.npy")!r}, l)
        np.save({str(tmp_path / "d.npy")!r}, d)
    """)
    subprocess.run([sys.executable, "-c", child], check=True)
    np.testing.assert_array_equal(np.load(tmp_path / "l.npy"), labels)
    np.testing.assert_array_equal(np.load(tmp_path / "d.npy"), dists)


@pytest.mark.parametrize("space", SPACES)
def test_index_saved_by_hnswlib_loads_with_identical_results(data, space, tmp_path):
    vectors, queries = data
    h = build(hnswlib, space, vectors)
    for lab in (0, 30, 300):
        h.mark_deleted(lab)
    path = tmp_path / "hnswlib.bin"
    h.save_index(str(path))
    c = hnswc.Index(space, DIM)
    c.load_index(str(path))
    assert c.element_count == N and c.deleted_count == 3
    assert c.M == 12 and c.ef_construction == 100
    assert c.ef == 10  # hnswlib files carry no ef: hnswlib's default, as hnswlib
    assert c.get_max_elements() == N + 100  # the limit recorded in the file
    assert sorted(c.get_ids_list()) == sorted(h.get_ids_list())
    for ef in (10, 100):
        h.set_ef(ef)
        c.set_ef(ef)
        hl, hd = h.knn_query(queries, k=10)
        cl, cd = c.knn_query(queries, k=10)
        np.testing.assert_array_equal(cl, hl)
        np.testing.assert_allclose(cd, hd, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(c.get_items([3, 6]), np.array(h.get_items([3, 6])), atol=1e-6)
    # the loaded index keeps working: adds, deletes, and hnswc's own save
    c.add_items(queries[:50], np.arange(50) + 10**6)
    c.mark_deleted(3)
    c.save_index(str(tmp_path / "converted.hnswc"))
    d = hnswc.Index(space, DIM)
    d.load_index(str(tmp_path / "converted.hnswc"))
    assert d.element_count == N + 50 and d.deleted_count == 4


def test_hnswlib_file_of_another_dimension_is_rejected(data, tmp_path):
    vectors, _ = data
    h = build(hnswlib, "l2", vectors)
    path = tmp_path / "h.bin"
    h.save_index(str(path))
    c = hnswc.Index("l2", DIM + 1)
    with pytest.raises(RuntimeError):
        c.load_index(str(path))


def test_hnswc_file_of_another_space_or_dim_is_rejected(data, tmp_path):
    vectors, _ = data
    p = build(hnswc, "ip", vectors[:100])
    path = tmp_path / "ip.hnswc"
    p.save_index(str(path))
    for space, dim in (("l2", DIM), ("ip", DIM + 1)):
        q = hnswc.Index(space, dim)
        with pytest.raises(RuntimeError, match="this Index is"):
            q.load_index(str(path))


def test_load_index_max_elements(data, tmp_path):
    vectors, _ = data
    p = build(hnswc, "l2", vectors[:100])  # limit 200
    path = tmp_path / "x.hnswc"
    p.save_index(str(path))
    q = hnswc.Index("l2", DIM)
    q.load_index(str(path), max_elements=500)
    assert q.get_max_elements() == 500
    q.add_items(vectors[100:400])
    with pytest.raises(RuntimeError):
        q.add_items(vectors[400:600])
    r = hnswc.Index("l2", DIM)
    r.load_index(str(path))  # 0: keep a limit of at least the count
    assert r.get_max_elements() >= 100


def test_load_replaces_an_initialised_index(data, tmp_path):
    vectors, _ = data
    a = build(hnswc, "l2", vectors[:50])
    a.save_index(str(tmp_path / "a.hnswc"))
    b = build(hnswc, "l2", vectors[50:90])
    b.load_index(str(tmp_path / "a.hnswc"))
    assert b.element_count == 50


def test_corrupted_file_is_rejected(data, tmp_path):
    vectors, _ = data
    p = build(hnswc, "l2", vectors[:200])
    path = tmp_path / "c.hnswc"
    p.save_index(str(path))
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    bad = tmp_path / "bad.hnswc"
    bad.write_bytes(bytes(raw))
    with pytest.raises(RuntimeError):
        hnswc.Index("l2", DIM).load_index(str(bad))
    bad.write_bytes(bytes(path.read_bytes()[:100]))
    with pytest.raises(RuntimeError):
        hnswc.Index("l2", DIM).load_index(str(bad))


# ---------------------------------------------------------------- pickling

@pytest.mark.parametrize("space", SPACES)
def test_pickle_round_trip(data, space):
    vectors, queries = data
    p = build(hnswc, space, vectors, allow_replace_deleted=True)
    p.set_ef(40)
    p.set_num_threads(1)
    p.mark_deleted(6)
    q = pickle.loads(pickle.dumps(p))
    assert type(q) is hnswc.Index
    assert (q.space, q.dim, q.ef, q.num_threads, q.max_elements) == (space, DIM, 40, 1, N + 100)
    assert q.allow_replace_deleted and q.deleted_count == 1
    for a, b in zip(p.knn_query(queries, k=7), q.knn_query(queries, k=7)):
        np.testing.assert_array_equal(a, b)
    # the running label counter survives too
    p.add_items(np.ones(DIM))
    q.add_items(np.ones(DIM))
    assert sorted(p.get_ids_list()) == sorted(q.get_ids_list())


def test_pickle_of_uninitialised_index_and_copies(data):
    vectors, queries = data
    p = hnswc.Index("ip", DIM)
    p.set_ef(25)
    q = pickle.loads(pickle.dumps(p, protocol=pickle.HIGHEST_PROTOCOL))
    assert q.ef == 25 and q.max_elements == 0
    q.init_index(10)
    assert q.ef == 25
    r = build(hnswc, "l2", vectors[:300])
    for c in (copy.copy(r), copy.deepcopy(r)):
        np.testing.assert_array_equal(c.knn_query(queries, k=3)[0], r.knn_query(queries, k=3)[0])


def test_pickled_index_recall(data):
    vectors, queries = data
    p = build(hnswc, "l2", vectors)
    p.set_ef(100)
    q = pickle.loads(pickle.dumps(p))
    truth, _ = exact_knn("l2", vectors, np.arange(N) * 3, queries, 10)
    assert recall(q.knn_query(queries, k=10)[0], truth) >= 0.95


def test_bad_pickle_state():
    p = hnswc.Index("l2", 4)
    with pytest.raises((ValueError, TypeError, RuntimeError)):
        p.__setstate__({"ser_version": 1})
    state = hnswc.Index("l2", 4).__getstate__()
    state["index"] = b"garbage"
    with pytest.raises(RuntimeError):
        p.__setstate__(state)
    state["ser_version"] = 99
    with pytest.raises(RuntimeError):
        p.__setstate__(state)
