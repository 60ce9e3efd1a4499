"""Index.load_index(path, mmap=True): an hnswc file opened in place.

The answers are the loaded index's, bit for bit; writes work as on a loaded
index and never reach the file; two processes mapping one file both answer;
hnswlib files and damaged files are refused with RuntimeError and the index
keeps what it held."""
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import hnswc
from conftest import SPACES

hnswlib = pytest.importorskip("hnswlib")

N, DIM = 2500, 20


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(5)
    return rng.standard_normal((N, DIM)).astype(np.float32), \
        rng.standard_normal((200, DIM)).astype(np.float32)


def saved(tmp_path, space, vectors, storage=None):
    p = hnswc.Index(space, DIM)
    kw = {} if storage is None else {"storage": storage}
    p.init_index(max_elements=N + 1000, M=10, ef_construction=80, **kw)
    p.add_items(vectors, np.arange(N) * 2)
    p.mark_deleted(4)
    p.set_ef(40)
    path = tmp_path / "ix.hnswc"
    p.save_index(str(path))
    return path


def opened(space, path, mmap):
    q = hnswc.Index(space, DIM)
    q.load_index(str(path), mmap=mmap)
    return q


@pytest.mark.parametrize("space", SPACES)
@pytest.mark.parametrize("storage", [None, "sq8"])
def test_mapped_answers_as_loaded(data, tmp_path, space, storage):
    vectors, queries = data
    path = saved(tmp_path, space, vectors, storage)
    loaded, mapped = opened(space, path, False), opened(space, path, True)
    assert loaded.get_info()["mapped_bytes"] == 0
    assert mapped.get_info()["mapped_bytes"] == N * DIM * 4
    assert mapped.get_info()["memory_bytes"] < loaded.get_info()["memory_bytes"]
    for k, threads in [(1, 1), (10, 2)]:
        l1, d1 = loaded.knn_query(queries, k=k, num_threads=threads)
        l2, d2 = mapped.knn_query(queries, k=k, num_threads=threads)
        np.testing.assert_array_equal(l1, l2)
        np.testing.assert_array_equal(d1, d2)  # bit for bit
    ids = np.arange(0, 2 * N, 14)
    np.testing.assert_array_equal(loaded.get_items(ids), mapped.get_items(ids))
    assert mapped.ef == 40 and mapped.element_count == N
    # a filter works the same
    f = lambda label: label % 3 == 0  # noqa: E731
    l1, _ = loaded.knn_query(queries[:20], k=5, filter=f)
    l2, _ = mapped.knn_query(queries[:20], k=5, filter=f)
    np.testing.assert_array_equal(l1, l2)
    # pickling a mapped index carries its contents
    back = pickle.loads(pickle.dumps(mapped))
    np.testing.assert_array_equal(back.knn_query(queries, k=5)[0], loaded.knn_query(queries, k=5)[0])


def test_writes_to_a_mapped_index_stay_private(data, tmp_path):
    vectors, queries = data
    path = saved(tmp_path, "l2", vectors)
    before = path.read_bytes()
    loaded, mapped = opened("l2", path, False), opened("l2", path, True)
    rng = np.random.default_rng(9)
    new = rng.standard_normal((700, DIM)).astype(np.float32)
    for p in (loaded, mapped):
        # one thread: the same graph on both (threads insert in any order)
        p.add_items(new[:300], np.arange(300) * 2, num_threads=1)  # updates of mapped vectors
        p.add_items(new[300:], np.arange(400) + 10 ** 6, num_threads=1)  # new labels
        p.mark_deleted(10)
    for a, b in zip(loaded.knn_query(queries, k=10), mapped.knn_query(queries, k=10)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(mapped.get_items([0, 2, 10 ** 6]),
                                  loaded.get_items([0, 2, 10 ** 6]))
    assert path.read_bytes() == before  # copy on write: the file is untouched
    # saving over its own file works, and the mapping keeps answering
    mapped.save_index(str(path))
    again = opened("l2", path, True)
    np.testing.assert_array_equal(again.knn_query(queries, k=10)[0],
                                  loaded.knn_query(queries, k=10)[0])
    np.testing.assert_array_equal(mapped.knn_query(queries, k=10)[0],
                                  loaded.knn_query(queries, k=10)[0])


def test_two_processes_map_one_file(data, tmp_path):
    vectors, queries = data
    path = saved(tmp_path, "ip", vectors)
    np.save(tmp_path / "q.npy", queries)
    want = opened("ip", path, False).knn_query(queries, k=5)[0]
    script = textwrap.dedent(f"""
        import numpy as np, hnswc
        p = hnswc.Index("ip", {DIM})
        p.load_index({str(path)!r}, mmap=True)
        assert p.get_info()["mapped_bytes"] > 0
        np.save({str(tmp_path)!r} + "/out%d.npy", p.knn_query(np.load({str(tmp_path)!r} + "/q.npy"), k=5)[0])
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script % i]) for i in range(2)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    for i in range(2):
        np.testing.assert_array_equal(np.load(tmp_path / f"out{i}.npy"), want)


def test_hnswlib_and_damaged_files_are_refused(data, tmp_path):
    vectors, queries = data
    h = hnswlib.Index("l2", DIM)
    h.init_index(max_elements=N, M=8)
    h.add_items(vectors[:200])
    h.save_index(str(tmp_path / "h.bin"))
    p = hnswc.Index("l2", DIM)
    p.init_index(max_elements=10)
    p.add_items(vectors[:3], [7, 8, 9])
    with pytest.raises(RuntimeError, match="hnswlib index, which cannot be mapped"):
        p.load_index(str(tmp_path / "h.bin"), mmap=True)
    path = saved(tmp_path, "l2", vectors)
    raw = path.read_bytes()
    for cut in (0, 30, len(raw) // 3, len(raw) - 1):
        (tmp_path / "cut.hnswc").write_bytes(raw[:cut])
        with pytest.raises(RuntimeError):
            p.load_index(str(tmp_path / "cut.hnswc"), mmap=True)
    with pytest.raises(RuntimeError):
        p.load_index(str(tmp_path / "missing.hnswc"), mmap=True)
    assert sorted(p.get_ids_list()) == [7, 8, 9]  # unchanged
    # the file of another dimension is refused after opening, as without mmap
    with pytest.raises(RuntimeError, match="dim"):
        hnswc.Index("l2", DIM + 1).load_index(str(path), mmap=True)
