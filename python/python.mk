# python/python.mk -- the Python package hnswc, included by the top-level Makefile.
#
#   make python        build/venv with hnswc installed (pip, no network)
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

PY_SYS      ?= /usr/bin/python3
PY_VENV      = $(BUILD)/venv
PY_STAMP     = $(PY_VENV)/.hnswc-installed
PY_SOURCES   = $(wildcard python/ext/*.c python/ext/*.h python/hnswc/*.py python/hnswc/*.pyi \
                 python/hnswc/viz/*.py python/hnswc/viz/*.html) \
               setup.py pyproject.toml MANIFEST.in $(LIB_SRC) $(wildcard src/*.h) include/hnswc.h

TEST_TARGETS += test-python

.PHONY: python test-python

python: $(PY_STAMP)

$(PY_VENV)/bin/python:
	$(PY_SYS) -m venv --system-site-packages $(PY_VENV)

$(PY_STAMP): $(PY_VENV)/bin/python $(PY_SOURCES)
	$(PY_VENV)/bin/python -m pip install --no-build-isolation --no-index --no-deps \
	    --disable-pip-version-check -q .
	@touch $@

test-python: python
	$(PY_VENV)/bin/python -m pytest -q -p no:cacheprovider tests/python

# The sdist and the wheel, each pip-installed into a fresh plain venv with
# build isolation (from PyPI), plus the failure messages; see
# tests/packaging/test_packaging.py. Skips, saying so, without PyPI.
TEST_TARGETS += test-packaging
.PHONY: test-packaging
test-packaging:
	HNSWC_PY_SYS=$(PY_SYS) $(PY_SYS) -m pytest -q -p no:cacheprovider -rs tests/packaging
