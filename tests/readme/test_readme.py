"""Every example in README.md runs as pasted.

The README's fenced code blocks are extracted and run, each the way a reader
would run it:

  python  all the README's Python blocks in order, in one interpreter (one
          session, as the README says its examples continue each other);
  c       each compiled with -Wall -Wextra -Werror against the library and run;
  sh      each under `bash -euo pipefail`, from a scratch folder made to look
          like the checkout (a symlink to each of its top-level entries), so
          the commands find build/, the Makefile and the data as in a
          checkout while what they write lands in the scratch folder.

A block that must not run here is marked on the line just before its fence:

    <!-- readme-test: skip - why, and which test does its job instead -->

and the test reports those (they are few: installing into /usr/local, the
top-level make targets, pip from PyPI, a CMake fragment). Every other
block runs, so an example that cannot be pasted fails here.

Run by `make test-readme` after `make` and `make python`; HNSWC_BUILD names
the build folder (build/), HNSWC_README the file.
"""
import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = Path(os.environ.get("HNSWC_README", ROOT / "README.md"))
BUILD = Path(os.environ.get("HNSWC_BUILD", ROOT / "build"))
SKIP = re.compile(r"<!--\s*readme-test:\s*skip\s*-\s*(.+?)\s*-->")


def blocks(text):
    """(line, language, code, skip reason or None) of each fenced block."""
    out, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        m = re.match(r"^```(\w*)\s*$", lines[i])
        if not m:
            i += 1
            continue
        start, lang = i + 1, m.group(1)
        j = i + 1
        while j < len(lines) and not lines[j].startswith("```"):
            j += 1
        prev = lines[i - 1] if i > 0 else ""
        skip = SKIP.search(prev)
        out.append((start, lang, "\n".join(lines[i + 1:j]) + "\n", skip.group(1) if skip else None))
        i = j + 1
    return out


BLOCKS = blocks(README.read_text(encoding="utf-8"))


def ids(bs):
    return ["%s@line%d" % (lang, line) for line, lang, _, _ in bs]


def run(cmd, cwd, env=None, timeout=1800):
    r = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=timeout)
    return r.returncode, r.stdout


def test_every_block_runs_or_says_why_not():
    languages = {lang for _, lang, _, _ in BLOCKS}
    assert languages <= {"sh", "python", "c", "cmake"}, languages
    for line, lang, _, skip in BLOCKS:
        assert lang in ("sh", "python", "c") or skip, \
            "README line %d: a ```%s block can only be skipped, with a reason" % (line, lang)
    skipped = [(line, skip) for line, _, _, skip in BLOCKS if skip]
    # the skipped ones are listed by pytest -rs (the tests below skip them
    # with their reasons); a README that ran nothing would pass otherwise
    assert len(skipped) <= 5, skipped


def test_python_blocks_run_in_one_session(tmp_path):
    py = [(line, code) for line, lang, code, skip in BLOCKS if lang == "python" and not skip]
    assert py
    driver = tmp_path / "session.py"
    # each block is compiled with its README line numbers, so a traceback
    # points into the README
    driver.write_text(
        "import sys\nns = {'__name__': '__main__'}\n"
        "for line, code in %r:\n"
        "    print('--- README line', line, flush=True)\n"
        "    exec(compile('\\n' * (line - 1) + code, %r, 'exec'), ns)\n" % (py, str(README)))
    env = dict(os.environ, MPLBACKEND="Agg")
    rc, out = run([str(BUILD / "venv" / "bin" / "python"), str(driver)], tmp_path, env)
    assert rc == 0, out[-6000:]


def skip_if_marked(block):
    line, lang, _, skip = block
    if skip:
        pytest.skip("README line %d (%s): %s" % (line, lang, skip))


C_BLOCKS = [b for b in BLOCKS if b[1] == "c"]


@pytest.mark.parametrize("block", C_BLOCKS, ids=ids(C_BLOCKS))
def test_c_block_builds_and_runs(tmp_path, block):
    skip_if_marked(block)
    line, _, code, _ = block
    src = tmp_path / "example.c"
    src.write_text(code)
    cc = os.environ.get("CC", "cc")
    rc, out = run([cc, "-std=c11", "-Wall", "-Wextra", "-Werror", "-I", str(ROOT / "include"),
                   str(src), str(BUILD / "libhnswc.a"), "-pthread", "-lm", "-o",
                   str(tmp_path / "example")], tmp_path)
    assert rc == 0, "README line %d does not compile:\n%s" % (line, out)
    rc, out = run([str(tmp_path / "example")], tmp_path)
    assert rc == 0, "README line %d exits with %d:\n%s" % (line, rc, out)


def checkout_lookalike(where):
    """A folder whose entries are symlinks to the checkout's, with build/
    pointing at the build folder under test."""
    for entry in ROOT.iterdir():
        if entry.name not in (".git", "build"):
            (where / entry.name).symlink_to(entry)
    (where / "build").symlink_to(BUILD)
    return where


SH_BLOCKS = [b for b in BLOCKS if b[1] in ("sh", "cmake")]


@pytest.mark.parametrize("block", SH_BLOCKS, ids=ids(SH_BLOCKS))
def test_sh_block_runs(tmp_path, block):
    skip_if_marked(block)  # (a cmake fragment can only be skipped: checked above)
    line, _, code, _ = block
    cwd = checkout_lookalike(tmp_path)
    script = tmp_path / "block.sh"
    script.write_text(code)
    env = dict(os.environ, MPLBACKEND="Agg")
    env.pop("MAKEFLAGS", None)  # a nested make of the README runs on its own
    env.pop("MAKELEVEL", None)
    rc, out = run(["bash", "-euo", "pipefail", str(script)], cwd, env)
    assert rc == 0, "README line %d fails (exit %d):\n%s" % (line, rc, out[-6000:])
