"""Threads: multi-threaded add and query inside a call, Python threads using
one index at once, and the GIL released while the library works."""
import threading
import time

import numpy as np
import pytest

import hnswc
from conftest import exact_knn, recall

DIM = 16


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(99)
    return rng.standard_normal((4000, DIM)).astype(np.float32), \
        rng.standard_normal((300, DIM)).astype(np.float32)


@pytest.mark.parametrize("threads", [1, 2, 4])
def test_multithreaded_add_keeps_recall(data, threads):
    vectors, queries = data
    p = hnswc.Index("l2", DIM)
    p.init_index(len(vectors), M=16, ef_construction=100)
    p.add_items(vectors, num_threads=threads)
    assert p.get_current_count() == len(vectors)
    assert sorted(p.get_ids_list()) == list(range(len(vectors)))
    p.set_ef(100)
    truth, _ = exact_knn("l2", vectors, np.arange(len(vectors)), queries, 10)
    assert recall(p.knn_query(queries, k=10)[0], truth) >= 0.97


def test_multithreaded_build_is_as_good_as_single_threaded(data):
    """Threads change the insertion order, not the quality: every node stays
    reachable from the entry point, and recall at a generous ef is as high as
    a single-threaded build's. (hnswlib's 2-thread graphs of this data, loaded
    into hnswc, have no unreachable node in 18 of 18 builds.)"""
    vectors, queries = data
    vectors = vectors[:3000]
    truth, _ = exact_knn("l2", vectors, np.arange(len(vectors)), queries, 10)
    for threads in (1, 2, 2, 2):  # thread interleavings vary: try a few
        p = hnswc.Index("l2", DIM)
        p.init_index(len(vectors), M=16, ef_construction=200)
        p.add_items(vectors, num_threads=threads)
        p.set_ef(400)
        stats = p.graph_stats()
        assert stats["nodes"] == len(vectors)
        assert stats["unreachable"] == 0, f"{threads} threads: {stats}"
        assert recall(p.knn_query(queries, k=10)[0], truth) >= 0.999


def test_multithreaded_query_equals_single_threaded(data):
    vectors, queries = data
    p = hnswc.Index("ip", DIM)
    p.init_index(len(vectors))
    p.add_items(vectors)
    p.set_ef(50)
    one = p.knn_query(queries, k=10, num_threads=1)
    for threads in (2, 4, -1):
        many = p.knn_query(queries, k=10, num_threads=threads)
        np.testing.assert_array_equal(one[0], many[0])
        np.testing.assert_array_equal(one[1], many[1])


def test_python_threads_query_one_index_at_once(data):
    vectors, queries = data
    p = hnswc.Index("cosine", DIM)
    p.init_index(len(vectors))
    p.add_items(vectors)
    p.set_ef(64)
    expected = p.knn_query(queries, k=5, num_threads=1)
    errors, results = [], [None] * 6

    def worker(i):
        try:
            for _ in range(5):
                results[i] = p.knn_query(queries, k=5, num_threads=1 + i % 2)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors
    for r in results:
        np.testing.assert_array_equal(r[0], expected[0])


def test_concurrent_adds_queries_and_deletes(data):
    """Writers and readers from Python threads at once; afterwards the index
    holds exactly what was added and answers correctly.

    While adds run, a query may come back short ("Cannot return the results
    ..."): a search can start from nodes whose links are still being written.
    hnswlib does the same (in 15 of 15 runs of this workload), so it is
    tolerated here; any other error is not."""
    vectors, queries = data
    p = hnswc.Index("l2", DIM)
    p.init_index(len(vectors))
    p.set_ef(100)
    p.add_items(vectors[:500])
    chunks = np.array_split(np.arange(500, len(vectors)), 4)
    errors, short = [], []
    stop = threading.Event()

    def adder(ids):
        try:
            for part in np.array_split(ids, 5):
                p.add_items(vectors[part], part, num_threads=2)
        except Exception as exc:  # pragma: no cover
            errors.append(exc)

    def reader():
        try:
            while not stop.is_set():
                try:
                    labels, dists = p.knn_query(queries[:20], k=5)
                except RuntimeError as exc:
                    if "Cannot return the results" not in str(exc):
                        raise
                    short.append(exc)
                    continue
                assert (np.diff(dists, axis=1) >= 0).all()
                assert labels.max() < len(vectors)
        except Exception as exc:  # pragma: no cover
            errors.append(exc)

    def deleter():
        try:
            for lab in range(0, 100):
                p.mark_deleted(lab)
            for lab in range(0, 100, 2):
                p.unmark_deleted(lab)
        except Exception as exc:  # pragma: no cover
            errors.append(exc)

    readers = [threading.Thread(target=reader) for _ in range(2)]
    writers = [threading.Thread(target=adder, args=(c,)) for c in chunks]
    writers.append(threading.Thread(target=deleter))
    for t in readers + writers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    for t in readers:
        t.join()
    assert not errors, errors
    assert p.get_current_count() == len(vectors)
    assert (p.live_count, p.deleted_count) == (len(vectors) - 50, 50)
    assert sorted(p.get_ids_list()) == list(range(len(vectors)))
    live = np.array([i for i in range(len(vectors)) if not (i < 100 and i % 2)])
    truth, _ = exact_knn("l2", vectors[live], live, queries, 10)
    assert recall(p.knn_query(queries, k=10)[0], truth) >= 0.95


def _progress_while(call):
    """Runs call() in a thread and counts how often this thread got to run
    Python code while it was inside. If call() held the GIL, the count would
    stay near zero: the main thread could not run at all until it returned."""
    inside = threading.Event()
    done = threading.Event()

    def worker():
        inside.set()
        call()
        done.set()

    t = threading.Thread(target=worker)
    t.start()
    inside.wait()
    ticks = 0
    while not done.is_set():
        ticks += 1
        time.sleep(0.0005)
    t.join()
    return ticks


def test_gil_is_released_during_add_and_query(data):
    vectors, queries = data
    p = hnswc.Index("l2", DIM)
    p.init_index(len(vectors), M=16, ef_construction=200)
    ticks = _progress_while(lambda: p.add_items(vectors, num_threads=1))
    print("ticks during add:", ticks)
    assert ticks >= 20
    p.set_ef(400)
    many = np.tile(queries, (5, 1))
    ticks = _progress_while(lambda: p.knn_query(many, k=50, num_threads=1))
    print("ticks during query:", ticks)
    assert ticks >= 20


def _child_query(conn, index, queries):
    # runs in a forked child: the parent's worker threads do not exist here;
    # calls on 2, 3 and 4 threads, as many workers as the parent's pool has
    # or fewer
    results = [index.knn_query(queries[i * 10:(i + 1) * 10], k=5, num_threads=2 + i % 3)
               for i in range(20)]
    conn.send((np.concatenate([r[0] for r in results]), np.concatenate([r[1] for r in results])))
    conn.close()


def test_forked_child_queries_on_threads_of_its_own(data):
    """Batch calls keep worker threads between calls (src/threads.c). A
    process forked after one (multiprocessing's default start method on
    Linux) has none of them: its multi-threaded queries must start their
    own and answer as the parent does, not wait forever on the parent's."""
    import multiprocessing as mp
    vectors, queries = data
    p = hnswc.Index("l2", DIM)
    p.init_index(len(vectors), M=16, ef_construction=100)
    p.add_items(vectors, num_threads=8)  # the pool exists now, 7 workers
    p.set_ef(60)
    want = p.knn_query(queries[:200], k=5, num_threads=2)
    ctx = mp.get_context("fork")
    parent_end, child_end = ctx.Pipe()
    child = ctx.Process(target=_child_query, args=(child_end, p, queries))
    child.start()
    try:
        assert parent_end.poll(60), "the forked child's query did not answer in 60 s"
        labels, dists = parent_end.recv()
    finally:
        child.join(10)
        if child.is_alive():
            child.kill()
    assert child.exitcode == 0
    np.testing.assert_array_equal(labels, want[0])
    np.testing.assert_array_equal(dists, want[1])
    # and the parent's own pool still serves the parent
    again = p.knn_query(queries[:200], k=5, num_threads=2)
    np.testing.assert_array_equal(again[0], want[0])
