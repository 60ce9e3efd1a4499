"""`hnswc remove`, `hnswc compact`, `hnswc search --radius` and the removal
lines of `hnswc info`, checked against NumPy brute force."""
import json
import os

import numpy as np
import pytest

from vecfiles import brute_force, distances, recall

N, D = 600, 10
ONE = ("--threads", 1)


@pytest.fixture
def index(run, tmp_path):
    """An index of N random vectors (labels 0..N-1) and the vectors."""
    rng = np.random.default_rng(5)
    base = rng.standard_normal((N, D)).astype(np.float32)
    np.save(tmp_path / "base.npy", base)
    run("build", "base.npy", "-o", "idx.hnswc", "-q", *ONE)
    return base


def write_labels(path, labels, comment=True):
    with open(path, "w") as f:
        if comment:
            f.write("# labels to remove\n\n")
        f.write("\n".join(str(int(x)) for x in labels) + "\n")


def search_json(run, *args):
    return json.loads(run("search", "idx.hnswc", "q.npy", "--format", "json", *args).stdout)


def test_remove_then_search(run, tmp_path, index):
    rng = np.random.default_rng(6)
    gone = rng.choice(N, N // 2, replace=False)
    write_labels(tmp_path / "gone.txt", gone)
    size_before = os.path.getsize(tmp_path / "idx.hnswc")
    out = run("remove", "idx.hnswc", "--labels", "gone.txt").stdout
    assert f"removed {N // 2} elements" in out and f"{N - N // 2} left" in out
    assert os.path.getsize(tmp_path / "idx.hnswc") < size_before * 0.6
    info = run.json("info", "idx.hnswc", "--format", "json")
    assert info["count"] == N - N // 2 and info["graph"]["unreachable"] == 0
    assert info["removed_slots"] == 0  # a file holds no removed slots

    keep = np.setdiff1d(np.arange(N), gone)
    queries = rng.standard_normal((30, D)).astype(np.float32)
    np.save(tmp_path / "q.npy", queries)
    res = search_json(run, "-k", "10", "--ef", "64")
    exact, _ = brute_force("l2", queries, index[keep], 10)
    found = [r["labels"] for r in res["results"]]
    assert not set(sum(found, [])) & set(gone.tolist())
    assert recall(found, keep[exact].tolist()) >= 0.97


def test_remove_all_or_nothing(run, tmp_path, index):
    write_labels(tmp_path / "bad.txt", [1, 2, 100000])
    line = run.fails("remove", "idx.hnswc", "--labels", "bad.txt", cmd="remove")
    assert "100000" in line and "nothing" in line
    write_labels(tmp_path / "twice.txt", [1, 2, 1])
    line = run.fails("remove", "idx.hnswc", "--labels", "twice.txt", cmd="remove")
    assert "twice" in line
    (tmp_path / "junk.txt").write_text("1\nabc\n")
    line = run.fails("remove", "idx.hnswc", "--labels", "junk.txt", cmd="remove")
    assert "line 2" in line
    assert run.json("info", "idx.hnswc", "--format", "json")["count"] == N
    run.fails("remove", "idx.hnswc", cmd="remove", expect=2)  # no --labels
    run.fails("remove", "--labels", "bad.txt", cmd="remove", expect=2)  # no INDEX
    run.fails("remove", "missing.hnswc", "--labels", "bad.txt", cmd="remove")
    # removed once: a second time is an error that changes nothing
    write_labels(tmp_path / "one.txt", [7])
    run("remove", "idx.hnswc", "--labels", "one.txt", "-q")
    run.fails("remove", "idx.hnswc", "--labels", "one.txt", cmd="remove")
    assert run.json("info", "idx.hnswc", "--format", "json")["count"] == N - 1


def test_remove_to_output_and_from_stdin(run, tmp_path, index):
    p = run("remove", "idx.hnswc", "--labels", "-", "-o", "smaller.hnswc", "-q", input="3\n4\n")
    assert p.stdout == ""
    assert run.json("info", "smaller.hnswc", "--format", "json")["count"] == N - 2
    assert run.json("info", "idx.hnswc", "--format", "json")["count"] == N  # untouched


def hnswlib_file(path, base, deleted=()):
    """An hnswlib index file (Debian's python3-hnswlib, a test dependency)."""
    import hnswlib

    p = hnswlib.Index(space="l2", dim=D)
    p.init_index(max_elements=N, M=16, ef_construction=100)
    p.add_items(base, np.arange(N))
    for label in deleted:
        p.mark_deleted(int(label))
    p.save_index(str(path))


def test_remove_from_hnswlib_file_needs_output(run, tmp_path, index):
    hnswlib_file(tmp_path / "hl.bin", index)
    write_labels(tmp_path / "gone.txt", range(10))
    line = run.fails("remove", "hl.bin", "--hnswlib", "l2", "--labels", "gone.txt",
                     cmd="remove", expect=2)
    assert "--output" in line
    run("remove", "hl.bin", "--hnswlib", "l2", "--labels", "gone.txt", "-o", "out.hnswc", "-q")
    assert run.json("info", "out.hnswc", "--format", "json")["count"] == N - 10


def test_compact(run, tmp_path, index):
    marked = range(0, N, 3)
    hnswlib_file(tmp_path / "hl.bin", index, deleted=marked)
    # an hnswc file with the same tombstones: compact to itself
    run("remove", "hl.bin", "--hnswlib", "l2", "--labels", "-", "-o", "marked.hnswc", "-q",
        input="")
    info = run("info", "marked.hnswc").stdout
    assert f"'hnswc compact' would remove the {len(marked)} deleted" in info
    before = os.path.getsize(tmp_path / "marked.hnswc")
    out = run("compact", "marked.hnswc").stdout
    assert f"removed {len(marked)} elements" in out
    assert os.path.getsize(tmp_path / "marked.hnswc") < before
    j = run.json("info", "marked.hnswc", "--format", "json")
    assert j["deleted"] == 0 and j["count"] == N - len(marked)
    assert j["graph"]["unreachable"] == 0
    # compacting again removes nothing; straight from the hnswlib file works too
    assert "removed 0 elements" in run("compact", "marked.hnswc").stdout
    run("compact", "hl.bin", "--hnswlib", "l2", "-o", "direct.hnswc", "-q")
    assert run.json("info", "direct.hnswc", "--format", "json")["count"] == N - len(marked)
    assert "compact" in run("compact", "--help").stdout


def test_search_radius(run, tmp_path, index):
    rng = np.random.default_rng(8)
    queries = rng.standard_normal((20, D)).astype(np.float32)
    np.save(tmp_path / "q.npy", queries)
    d = np.sort(distances("l2", queries, index), axis=1)
    radius = float(np.median((d[:, 19] + d[:, 20]) / 2))
    res = search_json(run, "--radius", repr(radius), "--ef", str(N))
    assert res["radius"] == pytest.approx(radius) and res["queries"] == 20
    full = distances("l2", queries, index)
    for i, r in enumerate(res["results"]):
        want = sorted(np.nonzero(full[i] <= radius)[0].tolist())
        assert sorted(r["labels"]) == want
        assert r["distances"] == sorted(r["distances"])
        np.testing.assert_allclose(r["distances"], full[i, r["labels"]], rtol=1e-5, atol=1e-5)
    # text and csv list the same, and a filter applies
    csv = run("search", "idx.hnswc", "q.npy", "--radius", repr(radius), "--ef", str(N),
              "--format", "csv").stdout.splitlines()
    assert csv[0] == "query,rank,label,distance"
    assert len(csv) - 1 == sum(len(r["labels"]) for r in res["results"])
    write_labels(tmp_path / "even.txt", range(0, N, 2))
    res2 = search_json(run, "--radius", repr(radius), "--ef", str(N), "--filter", "even.txt")
    for a, b in zip(res["results"], res2["results"]):
        assert b["labels"] == [x for x in a["labels"] if x % 2 == 0]
    # bad input
    run.fails("search", "idx.hnswc", "q.npy", "--radius", "-1", cmd="search", expect=2)
    run.fails("search", "idx.hnswc", "q.npy", "--radius", "nan", cmd="search", expect=2)
    run.fails("search", "idx.hnswc", "q.npy", "--radius", "1", "-k", "3", cmd="search",
              expect=2)
