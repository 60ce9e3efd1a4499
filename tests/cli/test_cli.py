"""Round trips through `hnswc build`, `search` and `info` on every file format,
checked against NumPy: the reported distances must be the true distances of
the reported labels, and the neighbours must be the exact ones (recall vs a
NumPy brute force). Bench and bad inputs have their own files.
"""
import csv
import io

import numpy as np
import pytest

from vecfiles import (brute_force, distances, recall, write_hdf5, write_idx, write_text,
                      write_vecs)

N, D, NQ, K = 400, 12, 25, 10

# Builds that must give exact results use one thread: the graph is then
# deterministic (and the same as hnswlib's), so an exhaustive search (ef >= n)
# reaches every node. Multi-threaded builds are exercised by
# test_progress_lines_when_not_a_terminal and by the bench tests.
ONE = ("--threads", 1)


def make_data(kind, seed=7):
    """Base vectors and queries; the first 5 queries are base rows."""
    rng = np.random.default_rng(seed)
    if kind == "f4":
        base = rng.standard_normal((N, D)).astype(np.float32)
        extra = rng.standard_normal((NQ - 5, D)).astype(np.float32)
    else:
        base = rng.integers(0, 256, (N, D), dtype=np.uint8)
        extra = rng.integers(0, 256, (NQ - 5, D), dtype=np.uint8)
    return base, np.concatenate([base[:5], extra])


def check_results(res, base, queries, metric="l2", k=K, exact=False, allowed=None,
                  min_recall=0.98):
    """The contract of `hnswc search --format json`, checked against NumPy."""
    assert res["k"] == k and res["queries"] == len(queries)
    ref = distances(metric, queries, base)
    want = min(k, len(allowed) if allowed is not None else len(base))
    exact_labels, _ = brute_force(metric, queries, base, want, allowed)
    found = []
    for i, r in enumerate(res["results"]):
        assert r["query"] == i
        labels = np.array(r["labels"], dtype=np.int64)
        dists = np.array(r["distances"], dtype=np.float64)
        assert len(labels) == want and len(set(labels.tolist())) == want
        assert np.all((labels >= 0) & (labels < len(base)))
        if allowed is not None:
            assert set(labels.tolist()) <= allowed
        assert np.all(np.diff(dists) >= 0), "results must come closest first"
        if exact:
            # uint8 data: every distance is an integer a float32 holds exactly.
            assert np.array_equal(dists, ref[i, labels])
        else:
            np.testing.assert_allclose(dists, ref[i, labels], rtol=1e-5, atol=1e-5)
        found.append(labels.tolist())
    assert recall(found, exact_labels) >= min_recall
    return found


# name: (element kind, writer, file suffix); "hdf5" puts both in one file.
FORMATS = {
    "fvecs": ("f4", write_vecs, ".fvecs"),
    "fvecs.gz": ("f4", write_vecs, ".fvecs.gz"),
    "bvecs": ("u1", write_vecs, ".bvecs"),
    "npy-float32": ("f4", np.save, ".npy"),
    "npy-uint8": ("u1", np.save, ".npy"),
    "idx": ("u1", lambda p, x: write_idx(p, x, (len(x), 3, 4)), "-idx3-ubyte"),
    "idx.gz": ("u1", lambda p, x: write_idx(p, x, (len(x), 3, 4)), "-idx3-ubyte.gz"),
    "idx-float32-2d": ("f4", write_idx, ".idx"),
    "hdf5-float32": ("f4", None, ".hdf5"),
    "hdf5-uint8": ("u1", None, ".h5"),
    "text": ("f4", write_text, ".txt"),
}


def write_pair(tmp_path, fmt, base, queries):
    kind, writer, suffix = FORMATS[fmt]
    if writer is None:
        path = tmp_path / ("data" + suffix)
        write_hdf5(path, base, queries)
        return path, path
    bpath, qpath = tmp_path / ("base" + suffix), tmp_path / ("queries" + suffix)
    writer(bpath, base)
    writer(qpath, queries)
    return bpath, qpath


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip(run, tmp_path, fmt):
    kind = FORMATS[fmt][0]
    base, queries = make_data(kind)
    bpath, qpath = write_pair(tmp_path, fmt, base, queries)

    p = run("build", bpath, "-o", "ix.hnswc", *ONE)
    assert f"built ix.hnswc: {N} vectors of dimension {D}" in p.stdout
    assert ("uint8" if kind == "u1" else "float32") in p.stdout

    info = run.json("info", "ix.hnswc", "--format", "json")
    assert (info["dim"], info["count"], info["live"], info["deleted"]) == (D, N, N, 0)
    assert info["metric"] == "l2" and info["M"] == 16 and info["ef_construction"] == 200
    assert sum(info["graph"]["level_counts"]) == N == info["graph"]["nodes"]
    assert info["memory_bytes"] > N * D * 4

    # ef >= n: the search is exhaustive over the graph, so the result is exact.
    res = run.json("search", "ix.hnswc", qpath, "-k", K, "--ef", N, "--format", "json")
    check_results(res, base, queries, exact=kind == "u1")
    for i in range(5):  # queries that are base rows find themselves at distance 0
        assert res["results"][i]["labels"][0] == i
        assert res["results"][i]["distances"][0] == 0


def test_build_options_reach_the_index(run, tmp_path):
    base, queries = make_data("f4")
    np.save(tmp_path / "b.npy", base)
    run("build", "b.npy", "-o", "ix", "-M", 5, "--ef-construction", 50, "--ef-search", 33,
        "--seed", 9, "--threads", 1, "-q")
    info = run.json("info", "ix", "--format", "json")
    assert (info["M"], info["ef_construction"], info["ef_search"], info["seed"]) == (5, 50, 33, 9)
    assert info["graph"]["degree0_max"] <= 2 * 5


def test_progress_lines_when_not_a_terminal(run, tmp_path):
    rng = np.random.default_rng(3)
    np.save(tmp_path / "b.npy", rng.standard_normal((3000, 4)).astype(np.float32))
    p = run("build", "b.npy", "-o", "ix")
    lines = p.stderr.splitlines()
    assert "\r" not in p.stderr
    assert len(lines) >= 3 and all(line.startswith("build: ") for line in lines)
    assert lines[-1].startswith("build: 100% (3000/3000)")
    assert run("build", "b.npy", "-o", "ix", "--quiet").stderr == ""


@pytest.mark.parametrize("metric", ["ip", "cosine"])
def test_metrics(run, tmp_path, metric):
    base, queries = make_data("f4", seed=5)
    np.save(tmp_path / "b.npy", base)
    np.save(tmp_path / "q.npy", queries)
    run("build", "b.npy", "-o", "ix", "--metric", metric, "-q", *ONE)
    assert run.json("info", "ix", "--format", "json")["metric"] == metric
    res = run.json("search", "ix", "q.npy", "-k", K, "--ef", N, "--format", "json")
    check_results(res, base, queries, metric=metric)


def test_hdf5_metric_attribute_and_dataset_choice(run, tmp_path):
    base, queries = make_data("f4")
    write_hdf5(tmp_path / "a.hdf5", base, queries, metric="angular")
    run("build", "a.hdf5", "-o", "ix", "-q", *ONE)
    info = run.json("info", "ix", "--format", "json")
    assert info["metric"] == "cosine" and info["count"] == N
    run("build", "a.hdf5", "--dataset", "test", "-o", "ix2", "--metric", "l2", "-q")
    info = run.json("info", "ix2", "--format", "json")
    assert info["metric"] == "l2" and info["count"] == NQ
    # search reads 'test' by default; --dataset train searches the base itself
    res = run.json("search", "ix", "a.hdf5", "--dataset", "train", "-k", 1, "--ef", N,
                   "--format", "json")
    assert [r["labels"][0] for r in res["results"]] == list(range(N))


def test_output_formats_agree(run, tmp_path):
    base, queries = make_data("f4")
    np.save(tmp_path / "b.npy", base)
    np.save(tmp_path / "q.npy", queries)
    run("build", "b.npy", "-o", "ix", "-q", *ONE)
    res = run.json("search", "ix", "q.npy", "-k", 4, "--format", "json")
    want = [(r["query"], rank + 1, label, dist)
            for r in res["results"]
            for rank, (label, dist) in enumerate(zip(r["labels"], r["distances"]))]
    assert len(want) == NQ * 4

    rows = list(csv.reader(io.StringIO(run("search", "ix", "q.npy", "-k", 4,
                                           "--format", "csv").stdout)))
    assert rows[0] == ["query", "rank", "label", "distance"]
    assert [(int(q), int(r), int(l), float(d)) for q, r, l, d in rows[1:]] == want

    lines = run("search", "ix", "q.npy", "-k", 4).stdout.splitlines()
    assert lines[0].split() == ["query", "rank", "label", "distance"]
    got = [line.split() for line in lines[1:]]
    assert [(int(q), int(r), int(l), float(d)) for q, r, l, d in got] == want


def test_queries_from_standard_input(run, tmp_path):
    base, queries = make_data("f4")
    np.save(tmp_path / "b.npy", base)
    np.save(tmp_path / "q.npy", queries)
    run("build", "b.npy", "-o", "ix", "-q")
    from_file = run.json("search", "ix", "q.npy", "-k", 5, "--format", "json")
    # commas, blanks, a comment and an empty line; repr() round-trips float32
    def line(row):
        return (", ".join(repr(float(v)) for v in row[:6]) + "  "
                + " ".join(repr(float(v)) for v in row[6:]))
    text = "# queries\n\n" + "\n".join(line(row) for row in queries) + "\n"
    assert run.json("search", "ix", "-k", 5, "--format", "json", input=text) == from_file
    assert run.json("search", "ix", "-", "-k", 5, "--format", "json", input=text) == from_file


def test_filter_of_allowed_labels(run, tmp_path):
    base, queries = make_data("f4")
    np.save(tmp_path / "b.npy", base)
    np.save(tmp_path / "q.npy", queries)
    run("build", "b.npy", "-o", "ix", "-q", *ONE)

    allowed = set(range(1, N, 3))
    lines = ["# every third label", ""] + [str(x) for x in sorted(allowed)] + ["  4  ", "4"]
    allowed.add(4)
    (tmp_path / "allow.txt").write_text("\n".join(lines) + "\n")
    res = run.json("search", "ix", "q.npy", "-k", K, "--ef", N, "--filter", "allow.txt",
                   "--format", "json")
    check_results(res, base, queries, allowed=allowed)

    # fewer allowed labels than k: exactly those come back
    (tmp_path / "two.txt").write_text("17\n5\n")
    res = run.json("search", "ix", "q.npy", "-k", K, "--ef", N, "--filter", "two.txt",
                   "--format", "json")
    check_results(res, base, queries, allowed={5, 17})

    (tmp_path / "none.txt").write_text("# nothing\n")
    res = run.json("search", "ix", "q.npy", "--filter", "none.txt", "--format", "json")
    assert all(r["labels"] == [] for r in res["results"])
    text = run("search", "ix", "q.npy", "--filter", "none.txt").stdout
    assert text.splitlines()[1:] == []


def test_info_text(run, tmp_path):
    base, _ = make_data("f4")
    np.save(tmp_path / "b.npy", base)
    run("build", "b.npy", "-o", "ix", "-q")
    text = run("info", "ix").stdout
    info = run.json("info", "ix", "--format", "json")
    assert f"elements          {N} (live {N}, deleted 0)" in text
    assert f"dimension         {D}" in text
    g = info["graph"]
    assert f"unreachable       {g['unreachable']} of {N} nodes" in text
    assert f"one-way links     {g['one_way_links']} of {g['links_total']}" in text
    assert 0 <= g["one_way_links"] <= g["links_total"]
    assert g["degree0_min"] <= g["degree0_mean"] <= g["degree0_max"] <= 32
    assert g["levels"] == info["max_level"] + 1 == len(g["level_counts"])


def test_help_everywhere(run):
    assert "usage: hnswc <command>" in run("--help").stdout
    for cmd in ["build", "search", "info", "bench"]:
        out = run(cmd, "--help").stdout
        assert out.startswith(f"usage: hnswc {cmd}")
        assert run("help", cmd).stdout == out
        assert run(cmd, "-h").stdout == out
    assert "hnswc_version" in run("bench", "--help").stdout
    assert run("--version").stdout.startswith("hnswc 0.1.0")


def test_info_explains_a_degraded_graph(run, tmp_path):
    """Tiny M and ef_construction leave nodes no search can reach: `info`
    says how many, what it means and what to change, in one sentence, and
    following the advice helps."""
    rng = np.random.default_rng(0)
    np.save(tmp_path / "b.npy", rng.standard_normal((2000, 16)).astype(np.float32))
    run("build", "b.npy", "-o", "ix", "-M", 2, "--ef-construction", 4, *ONE, "-q")
    info = run.json("info", "ix", "--format", "json")
    bad = info["graph"]["unreachable"]
    assert bad > 0 and info["health"] == "degraded"
    line = [x for x in run("info", "ix").stdout.splitlines() if x.startswith("health")]
    assert len(line) == 1
    pct = 100 * bad / 2000
    want = (f"health            DEGRADED: {bad} of 2000 nodes ({pct:.3g}%) cannot be reached "
            "from the entry point, so no search can return them; rebuild with more links per "
            "node or a wider build beam (now -M 2 --ef-construction 4, try -M 4 or "
            "--ef-construction 8)")
    assert line[0] == want
    assert info["health_advice"] == want.split("health            ")[1]
    assert line[0].count(". ") == 0  # one sentence
    for advice in (["-M", 4, "--ef-construction", 4], ["-M", 2, "--ef-construction", 8]):
        run("build", "b.npy", "-o", "better", *advice, *ONE, "-q")
        assert run.json("info", "better", "--format", "json")["graph"]["unreachable"] < bad
    # a healthy graph
    run("build", "b.npy", "-o", "good", *ONE, "-q")
    good = run.json("info", "good", "--format", "json")
    assert (good["graph"]["unreachable"], good["health"], good["health_advice"]) == (0, "ok", None)
    assert "health            ok: every node is reachable" in run("info", "good").stdout


def test_storage_sq8_only(run, tmp_path):
    """--storage sq8-only: trained past 1,000 vectors, it keeps the codes
    only (less memory than sq8), its file round-trips (loaded and mapped
    searches agree), and its distances are approximate but close."""
    rng = np.random.default_rng(3)
    base = rng.standard_normal((1500, D)).astype(np.float32)
    queries = rng.standard_normal((NQ, D)).astype(np.float32)
    np.save(tmp_path / "b.npy", base)
    np.save(tmp_path / "q.npy", queries)
    run("build", "b.npy", "-o", "sq8.hnswc", "--storage", "sq8", *ONE, "-q")
    run("build", "b.npy", "-o", "only.hnswc", "--storage", "sq8-only", *ONE, "-q")
    text = run("info", "only.hnswc").stdout
    assert "storage           sq8-only (trained: codes only, approximate distances)" in text
    only = run.json("info", "only.hnswc", "--format", "json")
    sq8 = run.json("info", "sq8.hnswc", "--format", "json")
    assert only["storage"] == "sq8-only" and only["codes_trained"] is True
    assert sq8["storage"] == "sq8"
    assert only["memory_bytes"] < sq8["memory_bytes"]
    # codes, not floats: CODE's rows are D bytes; format 4 pads sq8's VECS rows
    # of D floats (48 bytes) to 64 and starts them at a 64-byte file offset
    gap = sq8["file_bytes"] - only["file_bytes"] - 1500 * (64 - D)
    assert 0 <= gap < 64
    args = ("search", "only.hnswc", "q.npy", "-k", K, "--ef", 200, "--format", "json")
    loaded = run(*args).stdout
    assert run(*args, "--mmap").stdout == loaded
    res = run.json(*args)
    exact = distances("l2", queries, base)
    truth, _ = brute_force("l2", queries, base, K)
    found = [r["labels"] for r in res["results"]]
    assert recall(found, truth) >= 0.95
    got = np.array([r["distances"] for r in res["results"]])
    want = np.take_along_axis(exact, np.array(found), axis=1)
    step = (base.max(axis=0) - base.min(axis=0)).max() / 255.0
    assert np.all(np.abs(np.sqrt(got) - np.sqrt(want)) <= np.sqrt(D) * step / 2 + 1e-3)
    line = run.fails("build", "b.npy", "-o", "x", "--storage", "sq4", expect=2, cmd="build")
    assert "sq8-only" in line
