"""Same data, same answers: hnswc against Debian's hnswlib and exact search."""
import numpy as np
import pytest

import hnswc
from conftest import SPACES, exact_distances, exact_knn, recall

hnswlib = pytest.importorskip("hnswlib")

N, DIM, NQ, K = 3000, 32, 200, 10


@pytest.fixture(scope="module")
def dataset():
    rng = np.random.default_rng(2024)
    data = rng.standard_normal((N, DIM)).astype(np.float32)
    queries = rng.standard_normal((NQ, DIM)).astype(np.float32)
    return data, queries


def build(module, space, data, ef):
    p = module.Index(space=space, dim=DIM)
    p.init_index(max_elements=len(data), M=16, ef_construction=200, random_seed=100)
    p.add_items(data, np.arange(len(data)), num_threads=1)  # deterministic graphs
    p.set_ef(ef)
    return p


@pytest.mark.parametrize("space", SPACES)
def test_same_neighbours_and_distances_as_hnswlib(dataset, space):
    data, queries = dataset
    # ef where both are at their best recall on this data (checked below)
    ef = 400
    ours = build(hnswc, space, data, ef)
    theirs = build(hnswlib, space, data, ef)
    ol, od = ours.knn_query(queries, k=K)
    tl, td = theirs.knn_query(queries, k=K)
    assert ol.dtype == tl.dtype == np.uint64
    assert od.dtype == td.dtype == np.float32
    assert ol.shape == tl.shape == (NQ, K)

    truth_l, truth_d = exact_knn(space, data, np.arange(N), queries, K)
    assert recall(ol, truth_l) >= 0.99
    assert recall(tl, truth_l) >= 0.99

    overlap = recall(ol, tl)
    assert overlap >= 0.99, f"label overlap with hnswlib {overlap}"

    # The same label gets the same distance from both, to float precision.
    compared = 0
    for i in range(NQ):
        theirs_d = dict(zip(tl[i].tolist(), td[i].tolist()))
        for lab, d in zip(ol[i].tolist(), od[i].tolist()):
            if lab in theirs_d:
                assert d == pytest.approx(theirs_d[lab], rel=1e-5, abs=1e-5)
                compared += 1
    assert compared >= 0.99 * NQ * K
    # And the distances are the exact ones.
    exact = np.take_along_axis(exact_distances(space, data, queries), ol.astype(np.int64), axis=1)
    assert np.allclose(od, exact, rtol=1e-5, atol=1e-5)


def unit_rows_if_cosine(space, x):
    """hnswlib 0.6.2's BFIndex forgets to normalise cosine queries (0.8 fixed
    it); hand it unit queries so that its answers are the correct ones."""
    if space != "cosine":
        return x
    x = np.atleast_2d(np.asarray(x, dtype=np.float32))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("space", SPACES)
def test_bfindex_matches_hnswlib_bfindex(dataset, space):
    data, queries = dataset
    data, queries = data[:1000], queries[:50]
    ours = hnswc.BFIndex(space, DIM)
    ours.init_index(len(data))
    ours.add_items(data)
    theirs = hnswlib.BFIndex(space, DIM)
    theirs.init_index(len(data))
    theirs.add_items(data)
    ol, od = ours.knn_query(queries, k=K)
    tl, td = theirs.knn_query(unit_rows_if_cosine(space, queries), k=K)
    assert recall(ol, tl) >= 0.999
    assert np.allclose(od, td, rtol=1e-5, atol=1e-5)
    truth_l, truth_d = exact_knn(space, data, np.arange(len(data)), queries, K)
    assert recall(ol, truth_l) == 1.0
    assert np.allclose(od, truth_d, rtol=1e-5, atol=1e-5)


# Hand-made inputs with distances worked out on paper.
#   rows: a = (1, 0), b = (0, 2), c = (3, 4), query q = (1, 1)
ROWS = np.array([[1, 0], [0, 2], [3, 4]], dtype=np.float32)
QUERY = np.array([1, 1], dtype=np.float32)
GOLDEN = {
    # squared L2: |q-a|^2 = 1, |q-b|^2 = 1 + 1 = 2, |q-c|^2 = 4 + 9 = 13
    "l2": {0: 1.0, 1: 2.0, 2: 13.0},
    # 1 - <q, x>: 1 - 1 = 0, 1 - 2 = -1, 1 - 7 = -6
    "ip": {0: 0.0, 1: -1.0, 2: -6.0},
    # 1 - cos: cos(q,a) = 1/sqrt2, cos(q,b) = 1/sqrt2, cos(q,c) = 7/(5 sqrt2)
    "cosine": {0: 1 - 2 ** -0.5, 1: 1 - 2 ** -0.5, 2: 1 - 7 / (5 * 2 ** 0.5)},
}


@pytest.mark.parametrize("space", SPACES)
@pytest.mark.parametrize("cls", ["Index", "BFIndex"])
def test_golden_distances(space, cls):
    index = getattr(hnswc, cls)(space, 2)
    if cls == "Index":
        index.init_index(max_elements=10)
    else:
        index.init_index(10)
    index.add_items(ROWS, [0, 1, 2])
    labels, dists = index.knn_query(QUERY, k=3)
    got = dict(zip(labels[0].tolist(), dists[0].tolist()))
    assert set(got) == {0, 1, 2}
    for lab, want in GOLDEN[space].items():
        assert got[lab] == pytest.approx(want, abs=1e-6)
        assert hnswc.distance(space, QUERY, ROWS[lab]) == pytest.approx(want, abs=1e-6)
    assert list(dists[0]) == sorted(dists[0])
    # hnswlib agrees on the same input
    h = getattr(hnswlib, cls)(space, 2)
    h.init_index(10)
    h.add_items(ROWS, [0, 1, 2])
    hl, hd = h.knn_query(unit_rows_if_cosine(space, QUERY) if cls == "BFIndex" else QUERY, k=3)
    for lab, d in zip(hl[0].tolist(), hd[0].tolist()):
        assert got[lab] == pytest.approx(d, abs=1e-6)


def test_cosine_stores_normalised_vectors_like_hnswlib():
    v = np.array([[3.0, 4.0], [0.0, 0.0]], dtype=np.float32)
    ours = hnswc.Index("cosine", 2)
    ours.init_index(4)
    ours.add_items(v, [1, 2])
    theirs = hnswlib.Index("cosine", 2)
    theirs.init_index(4)
    theirs.add_items(v, [1, 2])
    np.testing.assert_allclose(ours.get_items([1, 2]), np.array(theirs.get_items([1, 2])),
                               atol=1e-6)
    np.testing.assert_allclose(ours.get_items([1])[0], [0.6, 0.8], atol=1e-6)
