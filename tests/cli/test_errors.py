"""Bad usage and bad input: every case must end with exactly one line
"hnswc: <command>: <message>" on stderr and exit status 2 (usage) or 1
(runtime), never a crash, a hang or a partial result.
"""
import gzip
import struct

import numpy as np
import pytest

from vecfiles import write_hdf5, write_idx, write_vecs

USAGE, RUNTIME = 2, 1


@pytest.fixture
def ix(run, tmp_path):
    """An index of 50 vectors of dimension 4, and matching queries."""
    rng = np.random.default_rng(1)
    np.save(tmp_path / "b.npy", rng.standard_normal((50, 4)).astype(np.float32))
    np.save(tmp_path / "q.npy", rng.standard_normal((3, 4)).astype(np.float32))
    run("build", "b.npy", "-o", "ix", "-q")
    return "ix"


# --------------------------------------------------------------------------
# Usage
# --------------------------------------------------------------------------

@pytest.mark.parametrize("args, cmd, needle", [
    ([], None, "missing command"),
    (["frobnicate"], None, "unknown command 'frobnicate'"),
    (["help", "frobnicate"], None, "unknown command"),
    (["build"], "build", "missing the INPUT file"),
    (["build", "b.npy"], "build", "missing -o"),
    (["build", "b.npy", "c.npy", "-o", "x"], "build", "unexpected argument 'c.npy'"),
    (["build", "b.npy", "-o"], "build", "needs a value"),
    (["build", "b.npy", "-o", "x", "-M", "1"], "build", "-M: expected a whole number from 2"),
    (["build", "b.npy", "-o", "x", "--metric", "hamming"], "build", "--metric"),
    (["build", "b.npy", "-o", "x", "--threads", "-1"], "build", "--threads"),
    (["build", "b.npy", "-o", "x", "--ef-construction", "1e3"], "build", "'1e3'"),
    (["build", "b.npy", "-o", "x", "--input-format", "parquet"], "build", "--input-format"),
    (["build", "b.npy", "-o", "x", "--bogus"], "build", "unknown option '--bogus'"),
    (["build", "b.npy", "-o", "x", "-Z"], "build", "unknown option '-Z'"),
    (["build", "b.npy", "-o", "x", "--quiet=yes"], "build", "takes no value"),
    (["search"], "search", "missing the INDEX file"),
    (["search", "ix", "q.npy", "--k", "-3"], "search", "--k: expected a whole number"),
    (["search", "ix", "q.npy", "--k", "abc"], "search", "got 'abc'"),
    (["search", "ix", "q.npy", "-k", "0"], "search", "from 1 to"),
    (["search", "ix", "q.npy", "-k", "99999999999999999999999"], "search", "--k"),
    (["search", "ix", "q.npy", "--k", ""], "search", "--k"),
    (["search", "ix", "q.npy", "--k", " 5"], "search", "--k"),
    (["search", "ix", "q.npy", "--ef", "ten"], "search", "--ef"),
    (["search", "ix", "q.npy", "--format", "xml"], "search", "--format"),
    (["search", "ix", "q.npy", "--hnswlib", "nope"], "search", "--metric"),
    (["search", "ix", "q.npy", "extra"], "search", "unexpected argument 'extra'"),
    (["info"], "info", "missing the INDEX file"),
    (["info", "ix", "--format", "csv"], "info", "not csv"),
    (["info", "ix", "ix"], "info", "unexpected argument"),
    (["bench"], "bench", "missing the BASE file"),
    (["bench", "b.npy"], "bench", "missing the QUERIES file"),
    (["bench", "b.npy", "q.npy", "--ef", "10,abc"], "bench", "--ef"),
    (["bench", "b.npy", "q.npy", "--ef", "10,,20"], "bench", "--ef"),
    (["bench", "b.npy", "q.npy", "--nq", "0"], "bench", "--nq"),
    (["bench", "b.npy", "q.npy", "-k", "-3"], "bench", "--k"),
])
def test_usage_errors(run, ix, args, cmd, needle):
    line = run.fails(*args, expect=USAGE, cmd=cmd)
    assert needle in line
    if cmd:
        assert line.endswith(f"(try 'hnswc {cmd} --help')")


# --------------------------------------------------------------------------
# Missing files
# --------------------------------------------------------------------------

@pytest.mark.parametrize("args, cmd", [
    (["build", "nope.fvecs", "-o", "x"], "build"),
    (["build", "nope.hdf5", "-o", "x"], "build"),
    (["build", "nope.unknown", "-o", "x"], "build"),
    (["search", "nope.hnswc", "q.npy"], "search"),
    (["search", "ix", "nope.npy"], "search"),
    (["search", "ix", "q.npy", "--filter", "nope.txt"], "search"),
    (["info", "nope.hnswc"], "info"),
    (["bench", "nope.npy", "q.npy"], "bench"),
    (["bench", "b.npy", "nope.npy"], "bench"),
])
def test_missing_files(run, ix, tmp_path, args, cmd):
    line = run.fails(*args, cmd=cmd)
    assert "nope" in line and "No such file" in line
    assert not (tmp_path / "x").exists()


def test_directory_as_input(run, tmp_path):
    (tmp_path / "d.npy").mkdir()
    assert "is a directory" in run.fails("build", "d.npy", "-o", "x", cmd="build")


def test_unwritable_output(run, ix):
    line = run.fails("build", "b.npy", "-o", "no/such/dir/ix", "-q", cmd="build")
    assert "no/such/dir/ix" in line


# --------------------------------------------------------------------------
# Malformed vector files
# --------------------------------------------------------------------------

def npy_bytes(header, data=b""):
    """A .npy v1 file with a hand-written header dict."""
    h = header.encode() + b" " * (-(len(header) + 11) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h + data


def fvecs_bytes(rows):
    return b"".join(struct.pack("<i", len(r)) + np.asarray(r, "<f4").tobytes() for r in rows)


def idx_bytes(code, dims, payload):
    return bytes([0, 0, code, len(dims)]) + struct.pack(">%dI" % len(dims), *dims) + payload


GOOD_FVECS = fvecs_bytes([[1, 2, 3, 4]] * 3)
GOOD_IDX = idx_bytes(8, [3, 2, 2], bytes(range(12)))

MALFORMED = {
    # name: (file name, contents, expected words in the message)
    "empty fvecs": ("e.fvecs", b"", "empty"),
    "empty bvecs": ("e.bvecs", b"", "empty"),
    "empty npy": ("e.npy", b"", "empty"),
    "empty idx": ("e-idx3-ubyte", b"", "empty"),
    "empty idx.gz": ("e-idx3-ubyte.gz", gzip.compress(b""), "empty"),
    "empty hdf5": ("e.hdf5", b"", "not an HDF5 file"),
    "empty text": ("e.txt", b"", "no vectors"),
    "comments-only text": ("e.txt", b"# nothing\n\n", "no vectors"),
    "fvecs cut mid-row": ("t.fvecs", GOOD_FVECS[:-3], "truncated (it ends inside row 2"),
    "fvecs cut in a header": ("t.fvecs", GOOD_FVECS + b"\x04\x00", "header of row 3"),
    "fvecs.gz cut mid-row": ("t.fvecs.gz", gzip.compress(GOOD_FVECS[:-3]), "truncated"),
    "gzip stream cut": ("t.fvecs.gz", gzip.compress(GOOD_FVECS)[:-12], "truncated"),
    "gzip garbage": ("t.fvecs.gz", b"\x1f\x8b" + b"\xff" * 40, ""),
    "fvecs rows of different dimensions": (
        "m.fvecs", fvecs_bytes([[1, 2, 3, 4], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]]),
        "row 1 has dimension 11 but row 0 has 4"),
    "fvecs.gz rows of different dimensions": (
        "m.fvecs.gz", gzip.compress(fvecs_bytes([[1, 2], [1, 2, 3]])), "row 1 has dimension 3"),
    "fvecs dimension 0": ("z.fvecs", struct.pack("<i", 0) * 4, "dimension 0"),
    "fvecs negative dimension": ("z.fvecs", struct.pack("<i", -5) + b"\0" * 20, "dimension -5"),
    "fvecs huge dimension": ("z.fvecs", struct.pack("<i", 1 << 30) + b"\0" * 8, "outside"),
    "fvecs with NaN": ("n.fvecs", fvecs_bytes([[1, 2], [3, float("nan")]]),
                       "vector 1, component 1 is NaN"),
    "fvecs with infinity": ("n.fvecs", fvecs_bytes([[float("inf"), 2]]), "infinite"),
    "bvecs cut": ("t.bvecs", (struct.pack("<i", 4) + b"abcd") * 2 + b"\x04\x00\x00\x00ab",
                  "truncated"),
    "npy bad magic": ("b.npy", b"\x93NUMPX\x01\x00" + b"\0" * 60, "bad magic"),
    "npy version 9": ("b.npy", b"\x93NUMPY\x09\x00" + b"\0" * 60, "version 9"),
    "npy float16": ("b.npy", npy_bytes("{'descr': '<f2', 'fortran_order': False, "
                                       "'shape': (2, 2), }", b"\0" * 8), "'<f2'"),
    "npy int32": ("b.npy", npy_bytes("{'descr': '<i4', 'fortran_order': False, "
                                     "'shape': (2, 2), }", b"\0" * 16), "'<i4'"),
    "npy structured": ("b.npy", npy_bytes("{'descr': [('a', '<f4')], 'fortran_order': False, "
                                          "'shape': (2,), }", b"\0" * 8), "structured"),
    "npy fortran order": ("b.npy", npy_bytes("{'descr': '<f4', 'fortran_order': True, "
                                             "'shape': (2, 2), }", b"\0" * 16), "Fortran"),
    "npy 1-D": ("b.npy", npy_bytes("{'descr': '<f4', 'fortran_order': False, "
                                   "'shape': (4,), }", b"\0" * 16), "1 dimensions"),
    "npy 3-D": ("b.npy", npy_bytes("{'descr': '<f4', 'fortran_order': False, "
                                   "'shape': (1, 2, 2), }", b"\0" * 16), "3 dimensions"),
    "npy no rows": ("b.npy", npy_bytes("{'descr': '<f4', 'fortran_order': False, "
                                       "'shape': (0, 4), }"), "no vectors"),
    "npy truncated": ("b.npy", npy_bytes("{'descr': '<f4', 'fortran_order': False, "
                                         "'shape': (3, 4), }", b"\0" * 40), "truncated"),
    "npy trailing bytes": ("b.npy", npy_bytes("{'descr': '<f4', 'fortran_order': False, "
                                              "'shape': (1, 4), }", b"\0" * 20),
                           "unexpected bytes"),
    "npy huge shape": ("b.npy", npy_bytes("{'descr': '<f4', 'fortran_order': False, "
                                          "'shape': (99999999999, 64), }", b"\0" * 16),
                       "truncated"),
    "npy garbage header": ("b.npy", npy_bytes("{garbage}", b"\0" * 16), "descr"),
    "npy header cut": ("b.npy", npy_bytes("{'descr': '<f4', 'fortran_order': False, "
                                          "'shape': (3, 4), }")[:30], "truncated"),
    "idx bad magic": ("b-idx3-ubyte", b"\x01\x02\x08\x03" + GOOD_IDX[4:], "bad magic"),
    "idx labels file": ("b-idx1-ubyte", idx_bytes(8, [5], bytes(5)), "one-dimensional"),
    "idx int32 elements": ("b-idx3-ubyte", idx_bytes(0x0C, [1, 2, 2], bytes(16)), "0x0c"),
    "idx truncated": ("b-idx3-ubyte", GOOD_IDX[:-1], "truncated"),
    "idx.gz truncated": ("b-idx3-ubyte.gz", gzip.compress(GOOD_IDX[:-1]), "truncated"),
    "idx.gz trailing data": ("b-idx3-ubyte.gz", gzip.compress(GOOD_IDX + b"x"), "unexpected"),
    "idx.gz huge header": ("b-idx3-ubyte.gz", gzip.compress(idx_bytes(8, [0xFFFFFFFF, 28, 28],
                                                                       bytes(100))),
                           "truncated"),
    "idx header cut": ("b-idx3-ubyte", GOOD_IDX[:9], "truncated"),
    "idx no rows": ("b-idx3-ubyte", idx_bytes(8, [0, 2, 2], b""), "no vectors"),
    "hdf5 garbage": ("g.hdf5", b"\x89HDF\r\n\x1a\n" + b"\xff" * 100, "not an HDF5 file"),
    "text bad number": ("t.txt", b"1 2 3\n4 abc 6\n", "line 2: 'abc' is not a number"),
    "text ragged": ("t.txt", b"1 2 3\n4 5\n", "line 2 has 2 numbers but the first vector has 3"),
    "text nan": ("t.txt", b"1 nan 3\n", "not a finite"),
    "text overflow": ("t.txt", b"1 1e99 3\n", "not a finite"),
    "text binary": ("t.txt", b"1 2\0 3\n", "NUL"),
    "unknown format": ("data.bin", b"\x05\x06\x07\x08" * 10, "cannot tell the format"),
}


@pytest.mark.parametrize("name", MALFORMED)
def test_malformed_vector_files(run, ix, tmp_path, name):
    fname, content, needle = MALFORMED[name]
    (tmp_path / fname).write_bytes(content)
    line = run.fails("build", fname, "-o", "out", "-q", cmd="build")
    assert fname in line and needle in line
    assert not (tmp_path / "out").exists()
    # the same reader serves search and bench
    run.fails("search", ix, fname, cmd="search")
    run.fails("bench", "b.npy", fname, "--no-gt-cache", "-q", cmd="bench")


def test_hdf5_problems(run, tmp_path):
    import h5py

    with h5py.File(tmp_path / "h.hdf5", "w") as f:
        f.create_dataset("train", data=np.zeros((4, 3), np.float32))
        f.create_dataset("flat", data=np.zeros(4, np.float32))
        f.create_dataset("ints", data=np.zeros((4, 3), np.int32))
        f.create_dataset("empty", data=np.zeros((0, 3), np.float32))
        f.create_group("grp")
    for name, needle in [("nope", "no dataset 'nope'"), ("a/b", "no dataset 'a/b'"),
                         ("flat", "1 dimensions"), ("ints", "neither floats nor uint8"),
                         ("empty", "no vectors"), ("grp", "not a dataset")]:
        line = run.fails("build", "h.hdf5", "--dataset", name, "-o", "x", cmd="build")
        assert needle in line
    # a truncated file
    write_hdf5(tmp_path / "full.hdf5", np.ones((100, 8), np.float32), np.ones((5, 8), np.float32))
    raw = (tmp_path / "full.hdf5").read_bytes()
    (tmp_path / "cut.hdf5").write_bytes(raw[: len(raw) // 2])
    run.fails("build", "cut.hdf5", "-o", "x", cmd="build")


def test_dimension_mismatch(run, ix, tmp_path):
    np.save(tmp_path / "q5.npy", np.zeros((2, 5), np.float32))
    line = run.fails("search", ix, "q5.npy", cmd="search")
    assert "the queries have dimension 5 but the index ix has dimension 4" in line
    line = run.fails("search", ix, input="1 2 3\n", cmd="search")
    assert "dimension 3" in line
    line = run.fails("bench", "b.npy", "q5.npy", "-q", cmd="bench")
    assert "dimension 5" in line and "4" in line


def test_empty_standard_input(run, ix):
    assert "standard input: no vectors" in run.fails("search", ix, input="", cmd="search")


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty", "foreign"])
def test_damaged_index_files(run, ix, tmp_path, damage):
    raw = (tmp_path / ix).read_bytes()
    if damage == "flip":
        bad = bytearray(raw)
        bad[len(bad) // 2] ^= 0x40
    elif damage == "truncate":
        bad = raw[: len(raw) - 100]
    elif damage == "empty":
        bad = b""
    else:
        bad = (tmp_path / "b.npy").read_bytes()
    (tmp_path / "bad").write_bytes(bytes(bad))
    assert "bad: cannot load the index" in run.fails("info", "bad", cmd="info")
    run.fails("search", "bad", "q.npy", cmd="search")
    run.fails("info", "bad", "--hnswlib", "l2", cmd="info")


def test_bad_filter_file(run, ix, tmp_path):
    for content in ["1\n2\nthree\n", "1 2\n", "-4\n", "18446744073709551616\n"]:
        (tmp_path / "f.txt").write_text(content)
        line = run.fails("search", ix, "q.npy", "--filter", "f.txt", cmd="search")
        assert "f.txt: line" in line


def test_multiline_text_never_leaks_into_the_message(run, tmp_path):
    """File names with a newline still give one line."""
    name = "a\nb.npy"
    line = run.fails("build", name, "-o", "x", cmd="build")
    assert "a b.npy" in line
