"""The explorer page in a real browser (Debian's Chromium driven by
Playwright): a click places a query, k and ef are set, the search is
stepped through, and what the page displays at every step is compared with
the library's own trace of the same query (Index.knn_query_trace)."""
import json
import os
import pathlib
import shutil
import subprocess

import numpy as np
import pytest

from hnswc import viz
from hnswc.viz import KINDS

from conftest import raw_events

K = {name: i for i, name in enumerate(KINDS)}
ROOT = pathlib.Path(__file__).resolve().parents[2]
BROWSER = ROOT / "tests" / "browser"
CHROMIUM = os.environ.get("HNSWC_CHROMIUM", "/usr/bin/chromium")


def library_steps(ev):
    """Per expansion: (layer, label, visited on layer 0 so far or None)."""
    out, seen = [], set()
    for e in ev:
        k, layer = int(e["kind"]), int(e["layer"])
        if layer == 0 and k in (K["entry"], K["descend"], K["eval"]):
            seen.add(int(e["node"]))
        if k == K["expand"]:
            out.append([layer, int(e["node"]), None])
        if out and out[-1][0] == 0:
            out[-1][2] = len(seen)
    return [tuple(s) for s in out]


def drive(page, plan, tmp_path, shot=None):
    pw = os.environ.get("HNSWC_PLAYWRIGHT")
    if not pw or not os.path.isdir(pw):
        pytest.fail("playwright-core not installed: run 'make test-viz' (npm ci into build/browser)")
    if not shutil.which("node") or not os.path.exists(CHROMIUM):
        pytest.fail("node or %s missing: run 'make deps'" % CHROMIUM)
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    cmd = ["node", str(BROWSER / "drive_explorer.js"), str(page), str(tmp_path / "plan.json"),
           str(tmp_path / "out.json")] + ([str(shot)] if shot else [])
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads((tmp_path / "out.json").read_text())


def check_query(index, rec):
    k, ef = rec["plan"]["k"], rec["plan"]["ef"]
    q = np.array(rec["query"], dtype=np.float32)
    labels, dists, ev = raw_events(index, q, k, ef)
    lib = library_steps(ev)
    n = len(lib)
    assert rec["start"]["step"] == f"0 of {n}"
    assert len(rec["steps"]) == n
    for i, (shown, (layer, label, visited)) in enumerate(zip(rec["steps"], lib)):
        assert shown["step"] == f"{i + 1} of {n}"
        assert shown["layer"] == str(layer), (i, shown)
        assert shown["expanded"].split()[0] == str(label), (i, shown)
        if layer == 0 and i < n - 1:
            assert shown["visited"] == str(visited), (i, shown)
    stop = ev[ev["kind"] == K["stop"]][0]
    last = rec["steps"][-1]
    assert last["visited"].split()[0] == str(int(stop["count"]))
    assert ("exact scan" in last["visited"]) == bool((ev["kind"] == K["exact"]).any())
    assert last["results"].split() == [str(int(l)) for l in labels]
    assert rec["afterBack"]["step"] == f"{n - 1} of {n}"
    assert rec["afterRun"] == last
    assert rec["afterReset"]["step"] == f"0 of {n}"
    return n


def test_explorer_in_chromium(index, graph, out_dir, tmp_path):
    page = out_dir / "explorer.html"
    viz.explorer(index, str(page), k=5, ef=8)
    # click positions over the map (660 x 660 canvas)
    plan = {"queries": [{"x": 330, "y": 330, "k": 5, "ef": 8},
                        {"x": 120, "y": 560, "k": 3, "ef": 1},
                        {"x": 600, "y": 90, "k": 5, "ef": 32},
                        {"x": 45, "y": 40, "k": 1, "ef": 120}]}
    out = drive(page, plan, tmp_path, shot=out_dir / "explorer.png")
    assert out["errors"] == [] and out["requests"] == []
    assert out["title"].startswith("hnswc explorer")
    steps = [check_query(index, rec) for rec in out["queries"]]
    assert all(s > 1 for s in steps)
    # the clicks landed in different places
    assert len({tuple(r["query"]) for r in out["queries"]}) == 4


def test_explorer_pca(wide_index, out_dir, tmp_path):
    ix, x = wide_index
    page = out_dir / "explorer-wide.html"
    viz.explorer(ix, str(page), x, k=5, ef=10)
    plan = {"queries": [{"x": 300, "y": 300, "k": 5, "ef": 10},
                        {"x": 500, "y": 200, "k": 10, "ef": 40}]}
    out = drive(page, plan, tmp_path)
    assert out["errors"] == []
    for rec in out["queries"]:
        check_query(ix, rec)
