"""knn_query's filter: a Python callable (hnswlib's form), an array of allowed
labels, or a boolean mask; the last two are evaluated in C without the GIL."""
import numpy as np
import pytest

import hnswc
from conftest import exact_knn, recall

N, DIM = 2000, 16


@pytest.fixture(scope="module")
def setup():
    rng = np.random.default_rng(5)
    data = rng.standard_normal((N, DIM)).astype(np.float32)
    labels = np.arange(N) * 10  # labels 0, 10, 20, ...
    p = hnswc.Index("l2", DIM)
    p.init_index(N, M=16, ef_construction=100)
    p.add_items(data, labels)
    p.set_ef(200)
    queries = rng.standard_normal((60, DIM)).astype(np.float32)
    return p, data, labels, queries


def allowed_truth(data, labels, queries, keep, k):
    return exact_knn("l2", data[keep], labels[keep], queries, k)


def forms(labels, keep):
    """The same filter in every accepted form."""
    allowed = labels[keep]
    mask = np.zeros(labels.max() + 1, dtype=bool)
    mask[allowed] = True
    allowed_set = set(allowed.tolist())
    return {
        "callable": lambda lab: lab in allowed_set,
        "ids array": allowed[::-1].copy(),          # order does not matter
        "ids list": allowed.tolist(),
        "ids set": allowed_set,
        "int32 ids": allowed.astype(np.int32),
        "bool mask": mask,
        "bool list": mask.tolist(),
    }


@pytest.mark.parametrize("form", ["callable", "ids array", "ids list", "ids set",
                                  "int32 ids", "bool mask", "bool list"])
def test_every_form_returns_only_allowed_labels(setup, form):
    p, data, labels, queries = setup
    keep = (np.arange(N) % 3) == 0
    f = forms(labels, keep)[form]
    got, dists = p.knn_query(queries, k=10, filter=f, num_threads=2)
    assert set(got.ravel().tolist()) <= set(labels[keep].tolist())
    truth, _ = allowed_truth(data, labels, queries, keep, 10)
    assert recall(got, truth) >= 0.95
    assert (np.diff(dists, axis=1) >= 0).all()


def test_forms_agree_exactly(setup):
    p, data, labels, queries = setup
    keep = (np.arange(N) % 7) < 3
    results = [p.knn_query(queries, k=5, filter=f) for f in forms(labels, keep).values()]
    for labs, dists in results[1:]:
        np.testing.assert_array_equal(labs, results[0][0])
        np.testing.assert_array_equal(dists, results[0][1])


def test_mask_shorter_than_labels_disallows_the_rest(setup):
    p, data, labels, queries = setup
    mask = np.ones(5000, dtype=bool)  # covers labels < 5000 only
    got, _ = p.knn_query(queries, k=10, filter=mask)
    assert got.max() < 5000


def test_callable_receives_labels_and_exceptions_propagate(setup):
    p, data, labels, queries = setup
    seen = set()

    def spy(lab):
        seen.add(lab)
        return True

    p.knn_query(queries[:3], k=3, filter=spy)
    assert seen and seen <= set(labels.tolist())
    assert all(isinstance(s, int) for s in seen)

    class Boom(Exception):
        pass

    def explode(lab):
        raise Boom(lab)

    with pytest.raises(Boom):
        p.knn_query(queries, k=3, filter=explode)
    with pytest.raises(ZeroDivisionError):
        p.knn_query(queries[0], k=3, filter=lambda lab: 1 / 0)
    # the index is unharmed
    assert p.knn_query(queries[0], k=3)[0].shape == (1, 3)


def test_too_selective_filter_raises_like_hnswlib(setup):
    p, data, labels, queries = setup
    few = labels[:2]
    with pytest.raises(RuntimeError, match="contiguous 2D array"):
        p.knn_query(queries[0], k=3, filter=few)
    with pytest.raises(RuntimeError):
        p.knn_query(queries[0], k=1, filter=lambda lab: False)
    with pytest.raises(RuntimeError):
        p.knn_query(queries[0], k=1, filter=[])
    got, _ = p.knn_query(queries[0], k=2, filter=few)
    assert sorted(got[0].tolist()) == sorted(few.tolist())


def test_filter_must_not_call_back_into_its_index(setup):
    p, data, labels, queries = setup

    def sneaky(lab):
        p.mark_deleted(int(lab))
        return True

    with pytest.raises(RuntimeError, match="must not call"):
        p.knn_query(queries[0], k=1, filter=sneaky)
    assert p.deleted_count == 0
    # another index may be used from a filter
    other = hnswc.Index("l2", DIM)
    other.init_index(10)
    other.add_items(data[:5])
    got, _ = p.knn_query(queries[0], k=1,
                         filter=lambda lab: other.knn_query(data[0], k=1)[0][0, 0] == 0)
    assert got.shape == (1, 1)


def test_filter_with_deleted_elements(setup):
    p, data, labels, queries = setup
    q = hnswc.Index(p)
    allowed = labels[:100]
    for lab in allowed[:50]:
        q.mark_deleted(int(lab))
    got, _ = q.knn_query(queries, k=10, filter=allowed)
    assert set(got.ravel().tolist()) <= set(allowed[50:].tolist())
