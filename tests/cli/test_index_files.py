"""Index files of both kinds: `search` and `info` tell an hnswlib file from
an hnswc one (hnswc_probe_file) instead of saying "wrong magic number", ask
for --hnswlib METRIC when it is needed (hnswlib files do not record their
metric), and give hnswlib's own answers once it is given.
"""
import hnswlib
import numpy as np
import pytest

N, D = 500, 12


@pytest.fixture
def hnswlib_file(tmp_path):
    """An index saved by hnswlib itself (Debian's python3-hnswlib), its data
    and queries, and hnswlib's answers at ef = 60."""
    rng = np.random.default_rng(8)
    base = rng.standard_normal((N, D)).astype(np.float32)
    queries = rng.standard_normal((9, D)).astype(np.float32)
    p = hnswlib.Index(space="ip", dim=D)
    p.init_index(max_elements=N + 100, M=8, ef_construction=80, random_seed=3)
    p.set_num_threads(1)
    p.add_items(base, np.arange(N) * 2 + 1)
    p.set_ef(60)
    labels, dists = p.knn_query(queries, k=5)
    p.save_index(str(tmp_path / "h.bin"))
    np.save(tmp_path / "q.npy", queries)
    return "h.bin", labels, dists


def test_hnswlib_file_without_the_flag_says_what_it_is(run, hnswlib_file):
    path, _, _ = hnswlib_file
    for cmd, args in [("info", [path]), ("search", [path, "q.npy"])]:
        line = run.fails(cmd, *args, cmd=cmd)
        assert f"{path}: cannot load the index: an hnswlib index file (dimension {D}, " \
               f"{N} elements, M 8)" in line
        assert "--hnswlib l2, --hnswlib ip or --hnswlib cosine" in line
        assert "magic" not in line


def test_hnswlib_file_with_the_flag_gives_hnswlibs_answers(run, hnswlib_file):
    path, labels, dists = hnswlib_file
    info = run.json("info", path, "--hnswlib", "ip", "--format", "json")
    assert (info["dim"], info["count"], info["M"], info["metric"]) == (D, N, 8, "ip")
    res = run.json("search", path, "q.npy", "--hnswlib", "ip", "-k", 5, "--ef", 60,
                   "--format", "json")
    for i, r in enumerate(res["results"]):
        assert r["labels"] == labels[i].tolist()
        np.testing.assert_allclose(r["distances"], dists[i], rtol=1e-5, atol=1e-6)


def test_truncated_hnswlib_file_is_still_recognised(run, hnswlib_file, tmp_path):
    path, _, _ = hnswlib_file
    raw = (tmp_path / path).read_bytes()
    (tmp_path / "cut.bin").write_bytes(raw[: len(raw) // 2])
    assert "an hnswlib index file" in run.fails("info", "cut.bin", cmd="info")
    line = run.fails("info", "cut.bin", "--hnswlib", "ip", cmd="info")
    assert "cut.bin: cannot load the index" in line and "truncated" in line


def test_hnswc_file_with_the_flag(run, tmp_path):
    rng = np.random.default_rng(2)
    np.save(tmp_path / "b.npy", rng.standard_normal((100, 4)).astype(np.float32))
    run("build", "b.npy", "-o", "ix", "--metric", "cosine", "-q")
    # the same metric: --hnswlib is harmless, the file is read as hnswc's
    assert run.json("info", "ix", "--hnswlib", "cosine", "--format", "json")["metric"] == "cosine"
    # another metric: the user expects other distances than the file's
    line = run.fails("search", "ix", "b.npy", "--hnswlib", "l2", cmd="search")
    assert "ix: an hnswc index of metric cosine, not an hnswlib file of metric l2" in line
    assert "drop --hnswlib" in line


def test_neither_kind(run, tmp_path):
    (tmp_path / "x.bin").write_bytes(bytes(range(256)) * 4)
    line = run.fails("info", "x.bin", cmd="info")
    assert "x.bin: cannot load the index" in line and "not an hnswc index" in line
    assert "x.bin: cannot load the index" in run.fails("info", "x.bin", "--hnswlib", "l2",
                                                        cmd="info")


def test_make_install_puts_the_tool_in_prefix_bin(hnswc_bin, tmp_path):
    """`make install` installs the tool as $PREFIX/bin/hnswc, and it runs from
    there with no ldconfig or LD_LIBRARY_PATH (libhnswc is linked in)."""
    import os
    import pathlib
    import subprocess

    root = pathlib.Path(__file__).resolve().parents[2]
    build = pathlib.Path(hnswc_bin).parent
    dest = tmp_path / "dest"
    subprocess.run(["make", "-s", "-C", str(root), f"BUILD={build}", "PREFIX=/usr/local",
                    f"DESTDIR={dest}", "install"], check=True, capture_output=True)
    tool = dest / "usr" / "local" / "bin" / "hnswc"
    assert tool.is_file() and os.access(tool, os.X_OK)
    env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    out = subprocess.run([str(tool), "--version"], capture_output=True, text=True, env=env,
                         check=True).stdout
    assert out.startswith("hnswc ")
    libs = subprocess.run(["ldd", str(tool)], capture_output=True, text=True).stdout
    assert "libhnswc" not in libs
