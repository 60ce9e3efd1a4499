# python/python.mk -- the Python package hnswc, included by the top-level Makefile.
#
#   make python        build/venv with hnswc installed (pip, no network)
#   make python-dask   adds Dask (pinned, from PyPI) to build/venv for hnswc.dask
#   make test-python   the pytest suite in tests/python against it
#   make test-packaging  sdist + wheel into fresh venvs (needs PyPI)
#
# The venv sees Debian's packages (--system-site-packages): NumPy, pytest,
# hypothesis and hnswlib, which the tests compare against. pip builds the
# package from the repository root (pyproject.toml, setup.py), compiling
# python/ext/*.c with src/*.c, with no build isolation and no index, so it
# works offline from a fresh clone after `make deps`. (A plain `pip install .`
# with build isolation is what users do; tests/packaging checks it.)
# A stamp file reinstalls only when a source changed.
#
# Dask comes from PyPI, pinned with everything it pulls in, in
# python/requirements-dask.txt (Debian's python3-distributed is years older).
# It is the one part that needs the network, once; the tests of hnswc.dask
# need it, the rest of the package does not.

PY_SYS      ?= /usr/bin/python3
PY_VENV      = $(BUILD)/venv
PY_STAMP     = $(PY_VENV)/.hnswc-installed
PY_SOURCES   = $(wildcard python/ext/*.c python/ext/*.h python/hnswc/*.py python/hnswc/*.pyi \
                 python/hnswc/viz/*.py python/hnswc/viz/*.html \
                 python/hnswc/dask/*.py) \
               setup.py pyproject.toml MANIFEST.in $(LIB_SRC) $(wildcard src/*.h) include/hnswc.h

TEST_TARGETS += test-python

PY_DASK_REQ   = python/requirements-dask.txt
PY_DASK_STAMP = $(PY_VENV)/.dask-installed

.PHONY: python python-dask test-python

python: $(PY_STAMP)

python-dask: $(PY_DASK_STAMP)

$(PY_DASK_STAMP): $(PY_VENV)/bin/python $(PY_DASK_REQ)
	$(PY_VENV)/bin/python -m pip install --disable-pip-version-check -q -r $(PY_DASK_REQ)
	@touch $@

$(PY_VENV)/bin/python:
	$(PY_SYS) -m venv --system-site-packages $(PY_VENV)

$(PY_STAMP): $(PY_VENV)/bin/python $(PY_SOURCES)
	$(PY_VENV)/bin/python -m pip install --no-build-isolation --no-index --no-deps \
	    --disable-pip-version-check -q .
	@touch $@

test-python: python python-dask
	$(PY_VENV)/bin/python -m pytest -q -p no:cacheprovider tests/python

# The sdist and the wheel, each pip-installed into a fresh plain venv with
# build isolation (from PyPI), plus the failure messages; see
# tests/packaging/test_packaging.py. Skips, saying so, without PyPI.
TEST_TARGETS += test-packaging
.PHONY: test-packaging
test-packaging:
	HNSWC_PY_SYS=$(PY_SYS) $(PY_SYS) -m pytest -q -p no:cacheprovider -rs tests/packaging
