# tests/readme/readme.mk -- every example in README.md runs as pasted
# (included by the top-level Makefile).
#
#   make test-readme   extracts the README's code blocks and runs them:
#                      Python in one session in build/venv, C against
#                      build/libhnswc.a, shell from a scratch folder that
#                      looks like the checkout (tests/readme/test_readme.py)
#
# The shell examples build Fashion-MNIST with the CLI (a minute or two on two
# cores) and render the viz demo.

TEST_TARGETS += test-readme
.PHONY: test-readme

test-readme: all python
	HNSWC_BUILD=$(abspath $(BUILD)) CC=$(CC) $(PY_VENV)/bin/python -m pytest -q -p no:cacheprovider -rs \
	    tests/readme
