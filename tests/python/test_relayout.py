"""Node order through the Python package: init_index(relayout=...),
Index.relayout(), Index.set_relayout() and the automatic relayout of
add_items (the C tests, tests/c/test_layout.c, cover the library in depth).

A relayout renumbers the nodes; labels, vectors and search results stay
exactly what they were."""
import numpy as np
import pytest

import hnswc

N, DIM, K = 5000, 8, 10


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(9)
    return rng.standard_normal((N, DIM)).astype(np.float32), \
        rng.standard_normal((200, DIM)).astype(np.float32)


def build(vectors, relayout, storage="f32", chunks=1):
    p = hnswc.Index("l2", DIM)
    p.init_index(max_elements=len(vectors), M=8, ef_construction=60, storage=storage,
                 relayout=relayout)
    for part in np.array_split(np.arange(len(vectors)), chunks):
        p.add_items(vectors[part], part, num_threads=1)
    return p


def results(p, queries):
    out = []
    for ef in (10, 32, 100):
        p.set_ef(ef)
        out.append(p.knn_query(queries, k=K))
    return out


def same_results(a, b):
    for (la, da), (lb, db) in zip(a, b):
        np.testing.assert_array_equal(la, lb)
        np.testing.assert_array_equal(da, db)


def trace_nodes(p, q):
    """The nodes a traced search visits, in order (as labels: Python never
    shows internal ids)."""
    _, _, events = p.knn_query_trace(q, k=K, ef=16)
    return events["node"]


@pytest.mark.parametrize("storage", ["f32", "sq8"])
def test_add_items_relays_out_and_results_do_not_change(data, storage):
    vectors, queries = data
    auto = build(vectors, "auto", storage)
    manual = build(vectors, "manual", storage)
    assert auto.get_info()["relayouts"] == 1  # 5000 >= 4096, one batch
    assert auto.get_info()["relayout"] == "auto"
    assert manual.get_info()["relayouts"] == 0
    assert manual.get_info()["relayout"] == "manual"
    # the same build (one thread), another order: the same answers ...
    same_results(results(auto, queries), results(manual, queries))
    assert sorted(auto.get_ids_list()) == sorted(manual.get_ids_list())
    for label in range(0, N, 97):
        np.testing.assert_array_equal(auto.get_items([label]), manual.get_items([label]))
        assert auto.get_links(label) == manual.get_links(label)  # labels, in list order
    # ... by the same walk, step for step
    for q in queries[:5]:
        np.testing.assert_array_equal(trace_nodes(auto, q), trace_nodes(manual, q))
    manual.relayout()
    assert manual.get_info()["relayouts"] == 1
    same_results(results(auto, queries), results(manual, queries))


def test_save_load_after_relayout(data, tmp_path):
    vectors, queries = data
    p = build(vectors, "manual", "sq8")
    want = results(p, queries)
    p.relayout()
    same_results(results(p, queries), want)
    path = str(tmp_path / "ix.bin")
    p.save_index(path)
    q = hnswc.Index("l2", DIM)
    q.load_index(path)
    assert q.get_info()["relayout"] == "auto"  # not saved: the default
    assert q.get_info()["relayouts"] == 0
    same_results(results(q, queries), want)


def test_chunks_relay_out_when_doubled(data):
    vectors, _ = data
    p = build(vectors, "auto", chunks=10)  # 500 at a time: at 4500 only
    assert p.get_info()["relayouts"] == 1
    p.set_relayout("manual")
    extra = np.random.default_rng(1).standard_normal((5000, DIM)).astype(np.float32)
    p.resize_index(2 * N)
    p.add_items(extra, np.arange(N, 2 * N))
    assert p.get_info()["relayouts"] == 1
    assert p.get_info()["relayout"] == "manual"


def test_bad_arguments():
    p = hnswc.Index("l2", DIM)
    with pytest.raises(ValueError, match="relayout"):
        p.init_index(max_elements=10, relayout="sometimes")
    with pytest.raises(RuntimeError):
        p.relayout()  # no index yet
    p.init_index(max_elements=10)
    with pytest.raises(ValueError, match="relayout"):
        p.set_relayout("never")
    p.relayout()  # empty: nothing to do
    assert p.get_info()["relayouts"] == 1
