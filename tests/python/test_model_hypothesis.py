"""Property-based test: random sequences of add, update, mark/unmark deleted,
replace-deleted adds and queries keep hnswc.Index consistent with a
brute-force model (a dict of label -> vector, deleted flag)."""
import numpy as np
import pytest

import hnswc

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.stateful import (  # noqa: E402
    RuleBasedStateMachine, initialize, invariant, precondition, rule)

DIM = 4
LABELS = st.integers(min_value=0, max_value=40)
# Small integers keep every distance exact in float32, so the model and the
# index agree bit for bit and ties are real ties.
COMPONENT = st.integers(min_value=-8, max_value=8).map(float)
VECTOR = st.lists(COMPONENT, min_size=DIM, max_size=DIM)
MAX_ELEMENTS = 30


def model_distances(space, vectors, query):
    v = np.asarray(vectors, dtype=np.float64)
    q = np.asarray(query, dtype=np.float64)
    if space == "l2":
        return ((v - q) ** 2).sum(1)
    return 1.0 - v @ q


class IndexModel(RuleBasedStateMachine):
    @initialize(space=st.sampled_from(["l2", "ip"]), M=st.integers(2, 12),
                threads=st.sampled_from([1, 2]))
    def create(self, space, M, threads):
        self.space = space
        self.threads = threads
        self.index = hnswc.Index(space, DIM)
        self.index.init_index(MAX_ELEMENTS, M=M, ef_construction=50,
                              allow_replace_deleted=True)
        self.index.set_ef(1000)  # at least the element count: the search is exhaustive
        self.vectors = {}  # label -> np.float32 vector
        self.deleted = set()

    # ------------------------------------------------------------ rules

    @rule(batch=st.lists(st.tuples(LABELS, VECTOR), min_size=1, max_size=8))
    def add(self, batch):
        labels = [lab for lab, _ in batch]
        data = np.array([v for _, v in batch], dtype=np.float32)
        new = set(labels) - set(self.vectors)
        if len(self.vectors) + len(new) > MAX_ELEMENTS:
            with pytest.raises(RuntimeError, match="exceeds the specified limit"):
                self.index.add_items(data, labels, num_threads=self.threads)
            return
        # with repeated labels in one batch, the last vector wins on one thread
        self.index.add_items(data, labels, num_threads=1)
        for lab, v in zip(labels, data):
            self.vectors[lab] = v
            self.deleted.discard(lab)

    @rule(lab=LABELS, v=VECTOR)
    def add_replacing_deleted(self, lab, v):
        v = np.array(v, dtype=np.float32)
        if lab not in self.vectors and len(self.vectors) >= MAX_ELEMENTS and not self.deleted:
            with pytest.raises(RuntimeError):
                self.index.add_items(v, [lab], replace_deleted=True)
            return
        self.index.add_items(v, [lab], replace_deleted=True)
        if lab not in self.vectors and self.deleted:
            # a new label takes over the slot of some deleted element (which
            # one is unspecified, as in hnswlib): find out which
            gone = (set(self.vectors) | {lab}) - set(self.index.get_ids_list())
            assert len(gone) == 1 and gone <= self.deleted, gone
            (g,) = gone
            del self.vectors[g]
            self.deleted.discard(g)
        self.vectors[lab] = v
        self.deleted.discard(lab)

    @rule(lab=LABELS)
    def mark_deleted(self, lab):
        if lab not in self.vectors or lab in self.deleted:
            with pytest.raises(RuntimeError):
                self.index.mark_deleted(lab)
        else:
            self.index.mark_deleted(lab)
            self.deleted.add(lab)

    @rule(lab=LABELS)
    def unmark_deleted(self, lab):
        if lab not in self.deleted:
            with pytest.raises(RuntimeError):
                self.index.unmark_deleted(lab)
        else:
            self.index.unmark_deleted(lab)
            self.deleted.discard(lab)

    @precondition(lambda self: self.vectors)
    @rule(query=VECTOR, k=st.integers(1, 6), threads=st.sampled_from([1, 2]))
    def query(self, query, k, threads):
        live = sorted(set(self.vectors) - self.deleted)
        if k > len(live):
            with pytest.raises(RuntimeError):
                self.index.knn_query(query, k=k, num_threads=threads)
            return
        labels, dists = self.index.knn_query([query, query], k=k, num_threads=threads)
        want = model_distances(self.space, [self.vectors[lab] for lab in live], query)
        by_label = dict(zip(live, want))
        got_labels = labels[0].tolist()
        assert labels[1].tolist() == got_labels
        assert len(set(got_labels)) == k
        for lab, d in zip(got_labels, dists[0].tolist()):
            assert lab in by_label, f"label {lab} is deleted or unknown"
            assert d == pytest.approx(by_label[lab], abs=1e-4)
        # exhaustive search: exactly the k smallest distances (ties may pick
        # any of the tied labels)
        assert dists[0].tolist() == pytest.approx(sorted(want)[:k], abs=1e-4)

    @precondition(lambda self: self.vectors)
    @rule(data=st.data())
    def query_with_filter(self, data):
        allowed = data.draw(st.sets(st.sampled_from(sorted(self.vectors)), min_size=1))
        live_allowed = sorted(allowed - self.deleted)
        query = data.draw(VECTOR)
        form = data.draw(st.sampled_from(["ids", "mask", "callable"]))
        f = {"ids": np.array(sorted(allowed)),
             "mask": np.isin(np.arange(64), sorted(allowed)),
             "callable": lambda lab: lab in allowed}[form]
        if not live_allowed:
            with pytest.raises(RuntimeError):
                self.index.knn_query(query, k=1, filter=f)
            return
        labels, dists = self.index.knn_query(query, k=len(live_allowed), filter=f)
        assert sorted(labels[0].tolist()) == live_allowed

    # ------------------------------------------------------------ invariants

    @invariant()
    def counts_and_contents_agree(self):
        if not hasattr(self, "index"):
            return
        assert self.index.get_current_count() == len(self.vectors)
        assert self.index.element_count == len(self.vectors)
        assert self.index.deleted_count == len(self.deleted)
        assert self.index.live_count == len(self.vectors) - len(self.deleted)
        assert sorted(self.index.get_ids_list()) == sorted(self.vectors)
        live = sorted(set(self.vectors) - self.deleted)
        if live:
            np.testing.assert_array_equal(self.index.get_items(live),
                                          np.array([self.vectors[lab] for lab in live]))


IndexModel.TestCase.settings = settings(
    max_examples=60, stateful_step_count=30, deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow])
TestIndexModel = IndexModel.TestCase
