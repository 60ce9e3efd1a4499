"""Input support added for issue 9: float64 .npy (NumPy's default dtype) and
HDF5 float64 datasets, converted to float32 with a clear error for values a
float32 cannot hold; and the tool built without its optional libraries
(HDF5, zlib), which must read every other format the same and refuse HDF5
and gzipped files with one clear line.
"""
import gzip
import os
import pathlib
import shutil
import subprocess

import numpy as np
import pytest

from conftest import ROOT, Runner
from vecfiles import brute_force, write_hdf5, write_idx, write_text, write_vecs

RUNTIME = 1


def data64(n=300, d=8, seed=11):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)), rng.standard_normal((7, d))


# --------------------------------------------------------------------------
# float64
# --------------------------------------------------------------------------

@pytest.mark.parametrize("order", ["<", ">"])
def test_float64_npy_is_read_as_float32(run, tmp_path, order):
    base, queries = data64()
    np.save(tmp_path / "b.npy", base.astype(order + "f8"))
    np.save(tmp_path / "q.npy", queries.astype(order + "f8"))
    p = run("build", "b.npy", "-o", "ix", "--threads", 1)
    assert "300 vectors of dimension 8 (float64 npy)" in p.stdout
    res = run.json("search", "ix", "q.npy", "-k", 5, "--ef", 300, "--format", "json")
    # The index holds the float32 rounding of the file's values: the exact
    # neighbours and distances are those of the rounded vectors.
    b32, q32 = base.astype(np.float32), queries.astype(np.float32)
    labels, dists = brute_force("l2", q32, b32, 5)
    for i, r in enumerate(res["results"]):
        assert r["labels"] == labels[i].tolist()
        np.testing.assert_allclose(r["distances"], dists[i], rtol=1e-5)
    # the same vectors saved as float32 give the same index, byte for byte
    np.save(tmp_path / "b32.npy", b32)
    run("build", "b32.npy", "-o", "ix32", "--threads", 1, "-q")
    assert (tmp_path / "ix").read_bytes() == (tmp_path / "ix32").read_bytes()


def test_float64_hdf5_is_read_as_float32(run, tmp_path):
    base, queries = data64()
    write_hdf5(tmp_path / "d.hdf5", base, queries)  # h5py keeps float64
    p = run("build", "d.hdf5", "-o", "ix", "--threads", 1)
    assert "(float64 hdf5)" in p.stdout
    np.save(tmp_path / "b32.npy", base.astype(np.float32))
    run("build", "b32.npy", "-o", "ix32", "--threads", 1, "-q")
    assert (tmp_path / "ix").read_bytes() == (tmp_path / "ix32").read_bytes()


@pytest.mark.parametrize("value, needle", [
    (1e39, "is 1e+39, outside the float32 range"),
    (-3.5e38, "is -3.5e+38, outside the float32 range"),
    (np.nan, "is NaN"),
    (np.inf, "is infinite"),
    (-np.inf, "is infinite"),
])
@pytest.mark.parametrize("fmt", ["npy", "npy-big-endian", "hdf5"])
def test_float64_values_a_float32_cannot_hold(run, tmp_path, value, needle, fmt):
    base, _ = data64(n=40, d=5)
    base[13, 2] = value
    if fmt == "hdf5":
        name = "d.hdf5"
        write_hdf5(tmp_path / name, base, base[:2])
    else:
        name = "d.npy"
        np.save(tmp_path / name, base.astype(">f8" if fmt == "npy-big-endian" else "<f8"))
    line = run.fails("build", name, "-o", "ix", cmd="build")
    assert name in line and "vector 13, component 2 " + needle in line
    assert not (tmp_path / "ix").exists()


def test_hdf5_integer_type_that_is_not_uint8(run, tmp_path):
    """A one-byte unsigned integer dataset whose type claims a precision of
    776 bits (found by the read_hdf5 fuzz harness: one byte changed in a
    uint8 file). libhdf5 converts its values to float as +inf; the reader
    took it for uint8, whose values it did not check for finiteness, and
    handed infinities to the index. It must be refused with one clear line."""
    write_hdf5(tmp_path / "u8.hdf5", np.full((4, 3), 255, np.uint8), np.zeros((2, 3), np.uint8))
    b = bytearray((tmp_path / "u8.hdf5").read_bytes())
    # the datatype message of a little-endian uint8: version 1, class 0
    # (fixed point), no flags, size 1, bit offset 0, precision 8 (u16 LE)
    pat = bytes([0x10, 0, 0, 0, 1, 0, 0, 0, 0, 0, 8, 0])
    at = b.find(pat)
    assert at >= 0
    while at >= 0:
        b[at + 11] = 3  # precision 0x0308 = 776 bits
        at = b.find(pat, at + 1)
    (tmp_path / "bad.hdf5").write_bytes(bytes(b))
    line = run.fails("build", "bad.hdf5", "-o", "ix", cmd="build")
    assert "bad.hdf5" in line and "neither floats nor uint8" in line
    assert not (tmp_path / "ix").exists()


def test_hdf5_float_type_of_absurd_size(hnswc_bin, tmp_path):
    """A float32 dataset whose type claims 4,294,508,548 bytes per value
    (found by the read_auto fuzz harness: two bytes changed). libhdf5
    converts whatever a type declares, and converting this one made it hold
    gigabytes for a 4 x 3 dataset. The reader must refuse the type before
    reading, with one clear line; the address space is capped at 2 GiB so
    that a regression fails here instead of swapping."""
    import resource
    write_hdf5(tmp_path / "f.hdf5", np.ones((4, 3), np.float32), np.ones((2, 3), np.float32))
    b = bytearray((tmp_path / "f.hdf5").read_bytes())
    # the datatype message of a little-endian IEEE float32: version 1,
    # class 1, sign at bit 31, size 4 (u32 LE at +4), offset 0, precision
    # 32, exponent at 23 of 8 bits, mantissa at 0 of 23 bits, bias 127
    pat = bytes([0x11, 0x20, 0x1f, 0, 4, 0, 0, 0, 0, 0, 0x20, 0, 0x17, 8, 0, 0x17, 0x7f, 0, 0, 0])
    at = b.find(pat)
    assert at >= 0
    b[at + 4:at + 8] = (0xFFF90004).to_bytes(4, "little")
    (tmp_path / "bad.hdf5").write_bytes(bytes(b))

    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))

    p = subprocess.run([hnswc_bin, "build", "bad.hdf5", "-o", "ix"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120, preexec_fn=cap)
    assert p.returncode == 1, p.stderr
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("hnswc: build: "), p.stderr
    assert "bad.hdf5" in lines[0] and "neither floats nor uint8" in lines[0], lines[0]
    assert not (tmp_path / "ix").exists()


# (libhdf5-open-*: files on which libhdf5's H5Fopen itself takes gigabytes
# before the reader can look at anything -- documented in
# docs/RELIABILITY.md, not something the tool can refuse sooner, and too
# heavy for make test.)
@pytest.mark.parametrize("name", sorted(
    p.name for p in (ROOT / "tests" / "fuzz" / "regressions" / "read_hdf5").iterdir()
    if not p.name.startswith("libhdf5-open-")))
def test_hostile_hdf5_files_of_the_fuzz_regressions(run, tmp_path, name):
    """The HDF5 inputs that once failed the read_hdf5 fuzz harness (see
    tests/fuzz/regressions/README), through the real tool: each is refused
    with one line and exit status 1 -- one of them made libhdf5 crash the
    tool (SIGSEGV), another hold 4.2 GB."""
    shutil.copy(ROOT / "tests" / "fuzz" / "regressions" / "read_hdf5" / name, tmp_path / "in")
    line = run.fails("build", "in", "-o", "ix", "--input-format", "hdf5", cmd="build")
    assert line.startswith("hnswc: build: in: "), line
    assert not (tmp_path / "ix").exists()


def test_float64_extremes_that_fit(run, tmp_path):
    """The largest float32 and values that round to zero are accepted."""
    base, _ = data64(n=30, d=4)
    base[0] = [np.finfo(np.float32).max, -np.finfo(np.float32).max, 1e-300, 0.0]
    base /= 1.0  # still float64
    np.save(tmp_path / "b.npy", base)
    run("build", "b.npy", "-o", "ix", "-q", "--metric", "cosine")


# --------------------------------------------------------------------------
# The build without HDF5 and zlib
# --------------------------------------------------------------------------

@pytest.fixture(scope="session")
def minimal_bin():
    path = os.environ.get("HNSWC_MINIMAL_BIN")
    if not path:
        root = pathlib.Path(__file__).resolve().parents[2]
        path = str(root / "build" / "hnswc-minimal")
    if not pathlib.Path(path).is_file():
        pytest.fail(f"{path} does not exist: run 'make test-cli' (or set HNSWC_MINIMAL_BIN)")
    return path


@pytest.fixture
def run_min(minimal_bin, tmp_path):
    return Runner(minimal_bin, tmp_path)


def test_minimal_build_has_neither_library(minimal_bin):
    out = subprocess.run([minimal_bin, "--version"], capture_output=True, text=True).stdout
    assert "built without HDF5 support" in out and "built without zlib support" in out
    ldd = shutil.which("ldd")
    if ldd:
        libs = subprocess.run([ldd, minimal_bin], capture_output=True, text=True).stdout
        assert "hdf5" not in libs and "libz." not in libs


def test_minimal_build_refuses_hdf5_with_a_clear_error(run_min, tmp_path):
    base, queries = data64()
    write_hdf5(tmp_path / "d.hdf5", base.astype(np.float32), queries.astype(np.float32))
    np.save(tmp_path / "b.npy", base.astype(np.float32))
    run_min("build", "b.npy", "-o", "ix", "-q")
    for args, cmd in [(["build", "d.hdf5", "-o", "x"], "build"),
                      (["build", "d.hdf5", "-o", "x", "--input-format", "hdf5"], "build"),
                      (["search", "ix", "d.hdf5"], "search"),
                      (["bench", "d.hdf5", "-q"], "bench"),
                      (["bench", "b.npy", "d.hdf5", "-q", "--no-gt-cache"], "bench")]:
        line = run_min.fails(*args, cmd=cmd)
        assert "d.hdf5: an HDF5 file, but this hnswc was built without HDF5 support" in line
    assert not (tmp_path / "x").exists()


def test_minimal_build_refuses_gzip_with_a_clear_error(run_min, tmp_path):
    base, _ = data64()
    write_vecs(tmp_path / "b.fvecs.gz", base.astype(np.float32))
    line = run_min.fails("build", "b.fvecs.gz", "-o", "x", cmd="build")
    assert "b.fvecs.gz: gzip-compressed, but this hnswc was built without zlib support" in line
    # a gzipped file under a plain name is caught by its magic number too
    (tmp_path / "b.fvecs").write_bytes((tmp_path / "b.fvecs.gz").read_bytes())
    assert "without zlib support" in run_min.fails("build", "b.fvecs", "-o", "x", cmd="build")
    (tmp_path / "t.txt.gz").write_bytes(gzip.compress(b"1 2 3\n"))
    assert "without zlib support" in run_min.fails("build", "t.txt.gz", "-o", "x", cmd="build")


@pytest.mark.parametrize("fmt", ["fvecs", "bvecs", "npy", "npy64", "idx", "text"])
def test_minimal_build_reads_the_other_formats_as_the_full_build(run, run_min, tmp_path, fmt):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((200, 6))
    u8 = rng.integers(0, 256, (200, 6), dtype=np.uint8)
    path = tmp_path / {"fvecs": "b.fvecs", "bvecs": "b.bvecs", "npy": "b.npy",
                       "npy64": "b.npy", "idx": "b-idx3-ubyte", "text": "b.txt"}[fmt]
    if fmt == "fvecs":
        write_vecs(path, x.astype(np.float32))
    elif fmt == "bvecs":
        write_vecs(path, u8)
    elif fmt == "npy":
        np.save(path, x.astype(np.float32))
    elif fmt == "npy64":
        np.save(path, x)
    elif fmt == "idx":
        write_idx(path, u8, (200, 2, 3))
    else:
        write_text(path, x.astype(np.float32))
    run("build", path.name, "-o", "full", "--threads", 1, "-q")
    run_min("build", path.name, "-o", "min", "--threads", 1, "-q")
    assert (tmp_path / "full").read_bytes() == (tmp_path / "min").read_bytes()
    # and the minimal tool searches it the same
    q = path.name
    assert run_min("search", "full", q, "-k", 3).stdout == run("search", "min", q, "-k", 3).stdout


@pytest.mark.parametrize("hdf5, zlib", [("0", "0"), ("1", "0"), ("0", "1"), ("1", "1")])
def test_make_variables_choose_the_optional_libraries(tmp_path, hdf5, zlib):
    """CLI_HDF5 / CLI_ZLIB reach the configuration the tool is compiled with
    (the minimal build above shows what a 0 does to the tool)."""
    root = pathlib.Path(__file__).resolve().parents[2]
    build = tmp_path / "b"
    header = build / "obj" / "cli" / "cli_config.h"
    subprocess.run(["make", "-s", "-C", str(root), f"BUILD={build}", f"CLI_HDF5={hdf5}",
                    f"CLI_ZLIB={zlib}", str(header)], check=True, capture_output=True)
    text = header.read_text()
    assert f"#define CLI_HAVE_HDF5 {hdf5}" in text and f"#define CLI_HAVE_ZLIB {zlib}" in text
