"""`hnswc search --mmap`: the index is opened in place (hnswc_open with
HNSWC_OPEN_MMAP) and answers exactly as when it is read; exact indexes are
read as before, hnswlib files are refused with a clear line, and a damaged
file is refused, never a crash.
"""
import hnswlib
import numpy as np
import pytest

N, D = 700, 10


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(21)
    np.save(tmp_path / "b.npy", rng.standard_normal((N, D)).astype(np.float32))
    np.save(tmp_path / "q.npy", rng.standard_normal((25, D)).astype(np.float32))
    return tmp_path


@pytest.mark.parametrize("extra", [["-M", 8], ["-M", 8, "--storage", "sq8"], ["--exact"],
                                   ["-M", 8, "--metric", "cosine"]])
def test_mmap_answers_exactly_as_loaded(run, files, extra):
    run("build", "b.npy", "-o", "ix.hnswc", "--threads", 1, "-q", *extra)
    for ef in (10, 80):
        args = ("search", "ix.hnswc", "q.npy", "-k", 7, "--ef", ef, "--format", "json")
        loaded = run(*args).stdout
        mapped = run(*args, "--mmap").stdout
        assert mapped == loaded  # labels and distances, printed alike
    res = run.json("search", "ix.hnswc", "q.npy", "--mmap", "--threads", 2, "--format", "json")
    assert res["queries"] == 25 and all(len(r["labels"]) == 10 for r in res["results"])


def test_mmap_refuses_an_hnswlib_file(run, files):
    p = hnswlib.Index(space="l2", dim=D)
    p.init_index(max_elements=N, M=8)
    p.add_items(np.load(files / "b.npy"))
    p.save_index(str(files / "h.bin"))
    line = run.fails("search", "h.bin", "q.npy", "--hnswlib", "l2", "--mmap", cmd="search")
    assert "h.bin: cannot load the index: an hnswlib file, which cannot be mapped" in line
    assert "drop --mmap" in line
    run("search", "h.bin", "q.npy", "--hnswlib", "l2")  # without --mmap it loads


def test_mmap_refuses_damaged_files(run, files):
    run("build", "b.npy", "-o", "ix.hnswc", "-M", 8, "--threads", 1, "-q")
    raw = (files / "ix.hnswc").read_bytes()
    (files / "cut.hnswc").write_bytes(raw[: len(raw) - 100])
    line = run.fails("search", "cut.hnswc", "q.npy", "--mmap", cmd="search")
    assert "cut.hnswc: cannot load the index" in line and "truncated" in line
    (files / "empty.hnswc").write_bytes(b"")
    line = run.fails("search", "empty.hnswc", "q.npy", "--mmap", cmd="search")
    assert "too short" in line
    line = run.fails("search", "missing.hnswc", "q.npy", "--mmap", cmd="search")
    assert "missing.hnswc" in line


def test_mmap_is_in_the_help(run):
    assert "--mmap" in run("search", "--help").stdout
