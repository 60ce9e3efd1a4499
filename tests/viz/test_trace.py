"""The library's inspection calls seen from Python: levels and links, and a
traced search that is the plain search (same results, same walk)."""
import numpy as np
import pytest

import hnswc
from hnswc.viz import KINDS

from conftest import raw_events

K = {name: i for i, name in enumerate(KINDS)}


def test_levels_and_links(index, points):
    info = index.get_info()
    labels = index.get_ids_list()
    levels = [index.get_level(l) for l in labels]
    assert max(levels) == info["max_level"]
    stats = index.graph_stats()
    total0, one_way = 0, 0
    links0 = {l: index.get_links(l, 0) for l in labels}
    for l in labels:
        total0 += len(links0[l])
        one_way += sum(l not in links0[t] for t in links0[l])
        for layer in range(levels[labels.index(l)] + 1):
            ts = index.get_links(l, layer)
            assert len(ts) <= (8 if layer == 0 else 4)
            assert all(levels[labels.index(t)] >= layer for t in ts)
            assert l not in ts
    assert total0 == stats["links_total"]
    assert one_way == stats["one_way_links"]


def test_inspection_errors(index):
    with pytest.raises(RuntimeError):
        index.get_level(10 ** 6)
    with pytest.raises(RuntimeError):
        index.get_links(10 ** 6, 0)
    lab = next(l for l in index.get_ids_list() if index.get_level(l) == 0)
    with pytest.raises(ValueError):
        index.get_links(lab, 1)
    with pytest.raises(ValueError):
        index.get_links(lab, -1)
    with pytest.raises(ValueError):
        index.knn_query_trace(np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError):
        index.knn_query_trace(np.zeros(2, np.float32), k=0)
    with pytest.raises(ValueError):
        index.knn_query_trace(np.array([np.nan, 0], np.float32))
    with pytest.raises(RuntimeError):
        index.knn_query_trace(np.zeros(3, np.float32))
    fresh = hnswc.Index(space="l2", dim=2)
    with pytest.raises(RuntimeError):
        fresh.get_level(0)


@pytest.mark.parametrize("ef", [1, 4, 16, 64, 200])
def test_traced_results_equal_plain(index, ef):
    rng = np.random.default_rng(ef)
    index.set_ef(ef)
    for q in rng.random((40, 2), dtype=np.float32):
        labels, dists, ev = raw_events(index, q, 5, ef)
        pl, pd = index.knn_query(q, k=5)
        assert labels.tolist() == pl[0].tolist()
        np.testing.assert_array_equal(dists, pd[0])
    index.set_ef(10)


def test_event_structure(index, points):
    rng = np.random.default_rng(1)
    top = index.get_info()["max_level"]
    for q in rng.random((30, 2), dtype=np.float32):
        labels, dists, ev = raw_events(index, q, 3, 6)
        kinds = ev["kind"].tolist()
        assert kinds[0] == K["entry"] and ev["layer"][0] == top
        # one descent per layer, in order, then layer 0 only
        desc = ev[ev["kind"] == K["descend"]]
        assert desc["layer"].tolist() == list(range(top - 1, -1, -1))
        stops = ev[ev["kind"] == K["stop"]]
        assert len(stops) == 1 and stops["layer"][0] == 0
        ev0 = ev[(ev["layer"] == 0) & (ev["kind"] == K["eval"])]
        # every layer-0 evaluation is a first visit, and the count adds up
        assert len(set(ev0["node"].tolist())) == len(ev0)
        assert stops["count"][0] == len(ev0) + 1
        # distances are exact: what hnswc.distance says
        for e in ev[ev["kind"] == K["eval"]][:20]:
            assert e["dist"] == pytest.approx(hnswc.distance("l2", q, points[e["node"]]), rel=1e-6)
        # the beam: what entered and did not leave is what the search kept
        beam = set()
        for e in ev:
            if e["layer"] == 0 and e["kind"] == K["enter"]:
                beam.add(int(e["node"]))
            if e["layer"] == 0 and e["kind"] == K["leave"]:
                beam.remove(int(e["node"]))
        assert len(beam) <= 6 or K["exact"] in kinds
        if K["exact"] not in kinds:
            assert set(labels.tolist()) <= beam


def test_plain_search_walks_the_traced_path(index):
    """A filter sees every node a plain search queues, in order (the entry
    into layer 0 first). An accept-all filter changes nothing, so the plain
    search must queue exactly the nodes the trace says it queued."""
    rng = np.random.default_rng(2)
    for ef in (2, 8, 30):
        index.set_ef(ef)
        for q in rng.random((20, 2), dtype=np.float32):
            seen = []
            index.knn_query(q, k=2, filter=lambda l: seen.append(l) or True)
            _, _, ev = raw_events(index, q, 2, ef)
            start = ev[(ev["layer"] == 0) & np.isin(ev["kind"], [K["entry"], K["descend"]])]
            queued = ev[(ev["layer"] == 0) & (ev["kind"] == K["eval"]) & (ev["flags"] & 1 == 1)]
            expected = [int(start["node"][0])] + queued["node"].tolist()
            if K["exact"] in ev["kind"]:  # then the exact scan consults the filter too
                assert seen[:len(expected)] == expected
            else:
                assert seen == expected
    index.set_ef(10)
