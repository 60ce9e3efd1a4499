"""Fixtures for the tests of the hnswc command-line tool.

The binary comes from $HNSWC_BIN (set by `make test-cli`), else build/hnswc.
"""
import json
import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def hnswc_bin():
    path = pathlib.Path(os.environ.get("HNSWC_BIN", ROOT / "build" / "hnswc"))
    if not path.is_file():
        pytest.fail(f"{path} does not exist: run 'make test-cli' (or set HNSWC_BIN)")
    return str(path)


class Runner:
    """Runs hnswc and checks the contract every invocation must keep."""

    def __init__(self, binary, cwd):
        self.binary = binary
        self.cwd = cwd

    def __call__(self, *args, input=None, expect=0):
        p = subprocess.run(
            [self.binary, *map(str, args)],
            input=input,
            capture_output=True,
            text=True,
            cwd=self.cwd,
            timeout=120,
        )
        assert p.returncode == expect, (
            f"hnswc {' '.join(map(str, args))}: exit {p.returncode}, expected {expect}\n"
            f"stdout: {p.stdout[-2000:]}\nstderr: {p.stderr[-2000:]}"
        )
        return p

    def fails(self, *args, expect=1, input=None, cmd=None):
        """A failure: the given status and exactly one line 'hnswc: <cmd>: ...'."""
        p = self(*args, input=input, expect=expect)
        lines = p.stderr.splitlines()
        assert len(lines) == 1, f"expected one line on stderr, got: {p.stderr!r}"
        prefix = "hnswc: " + (f"{cmd}: " if cmd else "")
        assert lines[0].startswith(prefix), lines[0]
        return lines[0]

    def json(self, *args, input=None):
        return json.loads(self(*args, input=input).stdout)


@pytest.fixture
def run(hnswc_bin, tmp_path):
    return Runner(hnswc_bin, tmp_path)
