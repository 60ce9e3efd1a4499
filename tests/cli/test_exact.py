"""`hnswc build --exact`: the library's exact (flat) index from the command
line. `search` gives NumPy's exact neighbours with the true distances,
`info` describes it (no graph), hnswlib's BFIndex files load with
--hnswlib, the graph-only options and `export` are refused, and `bench`'s
ground truth (which now comes from the same exact index) still agrees with
NumPy.
"""
import hnswlib
import numpy as np
import pytest

from vecfiles import brute_force, distances

N, D, NQ, K = 300, 10, 20, 7


@pytest.fixture
def data(tmp_path):
    rng = np.random.default_rng(21)
    base = rng.standard_normal((N, D)).astype(np.float32)
    queries = rng.standard_normal((NQ, D)).astype(np.float32)
    np.save(tmp_path / "b.npy", base)
    np.save(tmp_path / "q.npy", queries)
    return base, queries


def check_exact(res, base, queries, metric, k=K):
    want, _ = brute_force(metric, queries, base, k, None)
    ref = distances(metric, queries, base)
    for i, r in enumerate(res["results"]):
        assert r["labels"] == [int(x) for x in want[i]], f"query {i}"
        np.testing.assert_allclose(r["distances"], ref[i, r["labels"]], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("metric", ["l2", "ip", "cosine"])
def test_build_search_info(run, data, metric):
    base, queries = data
    out = run("build", "--exact", "--metric", metric, "b.npy", "-o", "ex").stdout
    assert "exact index" in out and f"{N} vectors of dimension {D}" in out
    res = run.json("search", "ex", "q.npy", "-k", K, "--format", "json")
    check_exact(res, base, queries, metric)
    info = run.json("info", "ex", "--format", "json")
    assert info["kind"] == "exact" and info["graph"] is None and info["health"] == "ok"
    assert (info["dim"], info["metric"], info["count"], info["live"]) == (D, metric, N, N)
    assert "M" not in info and "max_level" not in info
    text = run("info", "ex").stdout
    assert "kind              exact" in text and f"elements          {N} (live {N}" in text


def test_filter_and_threads_give_the_same_exact_answer(run, data, tmp_path):
    base, queries = data
    run("build", "--exact", "b.npy", "-o", "ex", "-q")
    allowed = set(range(0, N, 3))
    (tmp_path / "allow.txt").write_text("\n".join(map(str, sorted(allowed))))
    one = run.json("search", "ex", "q.npy", "-k", K, "--threads", 1, "--filter", "allow.txt",
                   "--format", "json")
    many = run.json("search", "ex", "q.npy", "-k", K, "--threads", 3, "--filter", "allow.txt",
                    "--format", "json")
    assert one["results"] == many["results"]
    want, _ = brute_force("l2", queries, base, K, allowed)
    for i, r in enumerate(one["results"]):
        assert r["labels"] == [int(x) for x in want[i]]


def test_graph_options_and_export_are_refused(run, data):
    for opt in (["-M", 8], ["--ef-construction", 50], ["--ef-search", 20], ["--seed", 3]):
        line = run.fails("build", "--exact", *opt, "b.npy", "-o", "x", expect=2, cmd="build")
        assert "--exact" in line and str(opt[0]) in line
    run("build", "--exact", "b.npy", "-o", "ex", "-q")
    assert "exact index" in run.fails("export", "ex", cmd="export")


def test_hnswlib_bfindex_file(run, data, tmp_path):
    base, queries = data
    h = hnswlib.BFIndex(space="ip", dim=D)
    h.init_index(N + 50)
    h.add_items(base)
    h.save_index(str(tmp_path / "h.bf"))
    line = run.fails("search", "h.bf", "q.npy", cmd="search")
    assert "an hnswlib BFIndex (exact index) file" in line and "--hnswlib" in line
    res = run.json("search", "h.bf", "q.npy", "--hnswlib", "ip", "-k", K, "--format", "json")
    check_exact(res, base, queries, "ip")
    info = run.json("info", "h.bf", "--hnswlib", "ip", "--format", "json")
    assert info["kind"] == "exact" and info["capacity"] == N + 50


def test_bench_ground_truth_is_exact(run, data, tmp_path):
    """bench computes its ground truth with the exact index; its recall of
    an ef >= n search (exact by the library's contract) is 1.0, and the
    cached truth file holds NumPy's neighbours."""
    base, queries = data
    res = run.json("bench", "b.npy", "q.npy", "-k", K, "--ef", N, "--gt-cache", "gt",
                   "--json", "-", "-q")
    assert all(r["recall"] == 1.0 for r in res["results"])
    files = list((tmp_path / "gt").glob("gt-*.bin"))
    assert len(files) == 1
    raw = files[0].read_bytes()
    labels = np.frombuffer(raw[40:40 + NQ * K * 8], dtype="<u8").reshape(NQ, K)
    want, _ = brute_force("l2", queries, base, K, None)
    np.testing.assert_array_equal(labels, want)
