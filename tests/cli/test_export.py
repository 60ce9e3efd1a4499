"""hnswc export: the links of one layer as Graphviz dot or JSON.

The export is checked against what `hnswc info` reports from the library's
own graph statistics (links on layer 0, one-way links, nodes per level), and
the dot and JSON outputs against each other.
"""
import json
import re

import numpy as np
import pytest

N, D = 400, 8


@pytest.fixture
def index(run, tmp_path):
    rng = np.random.default_rng(3)
    np.save(tmp_path / "b.npy", rng.random((N, D), dtype=np.float32))
    run("build", "b.npy", "-o", "ix", "-q", "-M", "6")
    return "ix"


def parse_dot(text):
    assert text.startswith("digraph hnswc_layer_")
    assert text.rstrip().endswith("}")
    nodes = dict(re.findall(r'^  "(\d+)" \[level=(\d+)', text, re.M))
    links = re.findall(r'^  "(\d+)" -> "(\d+)";$', text, re.M)
    return {int(k): int(v) for k, v in nodes.items()}, [(int(a), int(b)) for a, b in links]


def test_layer0_matches_info(run, index):
    info = run.json("info", index, "--format", "json")
    g = json.loads(run("export", index, "--format", "json").stdout)
    assert g["layer"] == 0 and g["max_level"] == info["max_level"]
    assert len(g["nodes"]) == N
    assert sorted(n["label"] for n in g["nodes"]) == list(range(N))
    links = [tuple(l) for l in g["links"]]
    assert len(links) == info["graph"]["links_total"]
    assert len(set(links)) == len(links)                    # no duplicate link
    have = set(links)
    one_way = sum((b, a) not in have for a, b in links)
    assert one_way == info["graph"]["one_way_links"]
    assert all(a != b for a, b in links)
    # levels: as many nodes reach each level as info counts
    levels = [n["level"] for n in g["nodes"]]
    counts = info["graph"]["level_counts"]
    assert [levels.count(L) for L in range(len(counts))] == counts


def test_every_layer_dot_equals_json(run, index):
    info = run.json("info", index, "--format", "json")
    counts = info["graph"]["level_counts"]
    for layer in range(info["max_level"] + 1):
        g = json.loads(run("export", index, "--layer", layer, "--format", "json").stdout)
        nodes, links = parse_dot(run("export", index, "--layer", layer).stdout)
        assert nodes == {n["label"]: n["level"] for n in g["nodes"]}
        assert links == [tuple(l) for l in g["links"]]
        assert len(nodes) == sum(counts[layer:])           # nodes at or above the layer
        assert all(nodes[a] >= layer and nodes[b] >= layer for a, b in links)
        per_node = {}
        for a, _ in links:
            per_node[a] = per_node.get(a, 0) + 1
        limit = 12 if layer == 0 else 6                     # 2M on layer 0, M above
        assert max(per_node.values(), default=0) <= limit


def test_errors(run, index):
    info = run.json("info", index, "--format", "json")
    top = info["max_level"]
    msg = run.fails("export", index, "--layer", top + 1, cmd="export")
    assert f"layers 0 .. {top}" in msg
    run.fails("export", index, "--format", "svg", cmd="export", expect=2)
    run.fails("export", index, "--layer", "-1", cmd="export", expect=2)
    run.fails("export", cmd="export", expect=2)
    run.fails("export", "no-such-file", cmd="export")
    assert run("export", "--help").stdout.startswith("usage: hnswc export")
    assert "export" in run("--help").stdout
