"""The Python package installs as any package does: from its sdist and its
wheel, with a plain `pip install` into a plain virtual environment.

What a user gets is checked end to end, the way they get it:

  1. `python -m build` makes the sdist from the checkout and the wheel from
     that sdist (so the sdist must carry every C source it compiles);
  2. the sdist is pip-installed into a fresh venv (no system packages), pip's
     build isolation fetching setuptools and NumPy from PyPI, and an example
     runs there; the same with the wheel in another fresh venv;
  3. the two failures a user can meet say what to do: no C compiler, and
     --no-build-isolation without NumPy.

It needs PyPI (and is skipped, saying so, only when PyPI cannot be reached).
Versions are pinned in requirements.txt, applied to the isolated builds
through PIP_CONSTRAINT; pip's download cache keeps reruns quick. Run with
`make test-packaging`.
"""
import glob
import os
import subprocess
import tarfile
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = Path(__file__).with_name("requirements.txt")
# The interpreter the venvs are made from: Debian's, not a pyenv one first on PATH.
PYTHON = os.environ.get("HNSWC_PY_SYS", "/usr/bin/python3")
INDEX = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple/")

EXAMPLE = r"""
import numpy as np
import hnswc, hnswc._hnswc as ext
assert "site-packages" in ext.__file__, ext.__file__   # the installed copy
rng = np.random.default_rng(1)
data = rng.random((2000, 16), dtype=np.float32)
p = hnswc.Index(space="l2", dim=16)
p.init_index(max_elements=2000, ef_construction=100, M=16)
p.add_items(data)
p.set_ef(100)
labels, dists = p.knn_query(data[:50], k=1)
assert (labels[:, 0] == np.arange(50)).all()
p.save_index("x.hnswc")
q = hnswc.Index(space="l2", dim=16)
q.load_index("x.hnswc")
assert q.max_elements == 2000 and q.element_count == 2000
print("ok", hnswc.__version__, hnswc.simd_name(), np.__version__)
"""


def run(cmd, cwd=None, env=None, check=True):
    full_env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_CONSTRAINT=str(REQUIREMENTS))
    full_env.pop("PYTHONPATH", None)
    full_env.update(env or {})
    r = subprocess.run([str(c) for c in cmd], cwd=cwd, env=full_env, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    if check and r.returncode != 0:
        pytest.fail("%s failed (%d):\n%s" % (" ".join(map(str, cmd)), r.returncode, r.stdout[-6000:]))
    return r


def venv(path):
    """A plain virtual environment: no system site packages."""
    run([PYTHON, "-m", "venv", path])
    return Path(path) / "bin" / "python"


def pypi_reachable():
    try:
        urllib.request.urlopen(INDEX.rstrip("/") + "/pip/", timeout=15).close()
        return True
    except Exception:  # noqa: BLE001 -- any failure means: cannot test here
        return False


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    if not pypi_reachable():
        pytest.skip("PyPI (%s) is unreachable: installing with build isolation fetches "
                    "setuptools and NumPy from it" % INDEX)
    return tmp_path_factory.mktemp("packaging")


@pytest.fixture(scope="module")
def tools(work):
    """A venv with the pinned build frontend, setuptools and NumPy."""
    py = venv(work / "tools")
    run([py, "-m", "pip", "install", "-q", "-r", REQUIREMENTS])
    return py


@pytest.fixture(scope="module")
def dists(work, tools):
    """(sdist, wheel), the wheel built from the unpacked sdist."""
    out = work / "dist"
    run([tools, "-m", "build", "--outdir", out, ROOT])
    sdists = glob.glob(str(out / "hnswc-*.tar.gz"))
    wheels = glob.glob(str(out / "hnswc-*.whl"))
    assert len(sdists) == 1 and len(wheels) == 1, os.listdir(out)
    return Path(sdists[0]), Path(wheels[0])


def test_sdist_carries_the_c_sources(dists):
    sdist, _ = dists
    with tarfile.open(sdist) as t:
        names = {n.split("/", 1)[1] for n in t.getnames() if "/" in n}
    for path in ["pyproject.toml", "setup.py", "include/hnswc.h", "python/ext/common.h",
                 "python/hnswc/__init__.py", "python/hnswc/_hnswc.pyi"]:
        assert path in names, path
    for folder in ["src", "python/ext"]:
        for f in glob.glob(str(ROOT / folder / "*.[ch]")):
            assert "%s/%s" % (folder, os.path.basename(f)) in names, f


@pytest.mark.parametrize("which", ["sdist", "wheel"])
def test_plain_pip_install_into_a_fresh_venv(work, dists, which):
    artefact = dists[0] if which == "sdist" else dists[1]
    py = venv(work / ("venv-" + which))
    run([py, "-m", "pip", "install", "-q", artefact])
    cwd = work / ("run-" + which)
    cwd.mkdir()
    r = run([py, "-c", EXAMPLE], cwd=cwd)
    assert r.stdout.startswith("ok "), r.stdout


def test_no_compiler_says_so(work, tools, dists):
    # --no-build-isolation: the tools venv has setuptools and NumPy; no
    # cache, so pip really builds
    r = run([tools, "-m", "pip", "install", "--no-build-isolation", "--no-deps", "--no-cache-dir",
             "--target", work / "nocc", dists[0]], env={"CC": "/nonexistent/cc"}, check=False)
    assert r.returncode != 0
    assert "no C compiler found" in r.stdout and "apt-get install gcc" in r.stdout, r.stdout[-3000:]


def test_no_build_isolation_without_numpy_says_so(work, dists):
    py = venv(work / "venv-nonumpy")
    run([py, "-m", "pip", "install", "-q", "setuptools"])  # the pinned one, but no NumPy
    r = run([py, "-m", "pip", "install", "--no-build-isolation", "--no-deps", "--no-cache-dir",
             dists[0]], check=False)
    assert r.returncode != 0
    assert "NumPy is not installed" in r.stdout and "ModuleNotFoundError" not in r.stdout, \
        r.stdout[-3000:]
