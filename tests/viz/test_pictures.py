"""What is drawn is the graph: segments on a layer are its links, the path
drawn is the traced path, a GIF has one frame per step. The pictures are
written to the output folder (build/viz under `make test-viz`)."""
import numpy as np
import pytest
from PIL import Image

from hnswc import viz
from hnswc.viz import KINDS, Graph, _draw

from conftest import raw_events

K = {name: i for i, name in enumerate(KINDS)}


def rows_at(graph, pts):
    """Graph rows of drawn points, by exact position."""
    where = {tuple(np.round(p, 9)): r for r, p in enumerate(graph.xy)}
    return [where[tuple(np.round(p, 9))] for p in pts]


def links_from_index(index, graph, layer):
    """Every directed link of a layer, straight from the library."""
    out = set()
    for lab in index.get_ids_list():
        if index.get_level(lab) >= layer:
            for t in index.get_links(lab, layer):
                out.add((graph.row[lab], graph.row[t]))
    return out


@pytest.mark.parametrize("layer", [0, 1, 2])
def test_layer_segments_are_its_links(index, graph, out_dir, layer):
    d = viz.plot_layer(graph, layer)
    truth = links_from_index(index, graph, layer)
    drawn = set()
    segs = d.mutual_artist.get_segments()
    for s in segs:
        a, b = rows_at(graph, s)
        drawn |= {(a, b), (b, a)}
    arrows = 0
    if d.one_way_artist is not None:
        q = d.one_way_artist
        starts = np.column_stack([q.X, q.Y])
        ends = starts + np.column_stack([q.U, q.V])
        for a, b in zip(rows_at(graph, starts), rows_at(graph, ends)):
            assert (a, b) not in drawn
            drawn.add((a, b))
            arrows += 1
    assert 2 * len(segs) + arrows == len(truth)
    assert drawn == truth
    # the nodes drawn are those on the layer
    assert sorted(rows_at(graph, d.node_artist.get_offsets())) == \
        sorted(r for r in range(graph.n) if index.get_level(int(graph.labels[r])) >= layer)
    d.fig.savefig(out_dir / f"layer{layer}.png", bbox_inches="tight")


def test_stack_draws_each_node_on_its_layers(index, graph, out_dir):
    st = viz.plot_layers(graph)
    ax = st.ax
    by_gid = {c.get_gid(): c for c in ax.collections if c.get_gid()}
    top = graph.max_level
    for L in range(top + 1):
        on = [int(graph.labels[r]) for r in range(graph.n)]
        want = sum(index.get_level(l) >= L for l in on)
        assert len(by_gid[f"nodes-{L}"].get_offsets()) == want
        pairs = {tuple(sorted(p)) for p in links_from_index(index, graph, L)}
        assert len(by_gid[f"links-{L}"].get_segments()) == len(pairs)
    # a vertical joint for each node on each layer above 0 it reaches
    joints = sum(len(by_gid[g].get_segments()) for g in by_gid if g.startswith("joints-"))
    assert joints == int(sum(graph.levels))
    st.fig.savefig(out_dir / "layers.png", bbox_inches="tight")


def traced_path(ev, graph):
    """(layer, row) of the walk, read from the raw events: the entry, each
    move of the greedy descent, each descent."""
    path = []
    for e in ev:
        k = int(e["kind"])
        if k in (K["entry"], K["descend"]) or (k == K["eval"] and e["layer"] > 0 and e["flags"] & 1):
            path.append((int(e["layer"]), graph.row[int(e["node"])]))
    return path


@pytest.mark.parametrize("seed", [8, 21, 33])
def test_drawn_path_is_traced_path(index, graph, out_dir, seed):
    q = np.random.default_rng(seed).random(2, dtype=np.float32)
    d, tr = viz.plot_search(index, q, k=5, ef=8, graph=graph)
    labels, dists, ev = raw_events(index, q, 5, 8)
    path = traced_path(ev, graph)
    assert tr.path == path
    # the drawn arrows of the stack: one per consecutive pair of the path
    P = d.stack.to_screen
    arrows = [p for p in d.stack.ax.patches if type(p).__name__ == "FancyArrowPatch"]
    assert len(arrows) == len(path) - 1
    for arrow, (a, b) in zip(arrows, zip(path, path[1:])):
        pa, pb = arrow._posA_posB
        np.testing.assert_allclose(pa, P(graph.xy[a[1]], a[0])[0], atol=1e-9)
        np.testing.assert_allclose(pb, P(graph.xy[b[1]], b[0])[0], atol=1e-9)
    # layer 0: visited nodes coloured in the library's order of first visit
    sc = next(c for c in d.top.ax.collections if c.get_gid() == "visited")
    drawn = rows_at(graph, sc.get_offsets())
    order = sc.get_array()
    ev0 = ev[(ev["layer"] == 0) & (ev["kind"] == K["eval"])]
    start = ev[(ev["layer"] == 0) & np.isin(ev["kind"], [K["entry"], K["descend"]])]
    lib_order = [graph.row[int(start["node"][0])]] + [graph.row[int(n)] for n in ev0["node"]]
    assert [r for _, r in sorted(zip(order, drawn))] == lib_order
    stop = ev[ev["kind"] == K["stop"]][0]
    assert len(drawn) == stop["count"] == tr.visited
    assert d.found_rows == [graph.row[int(l)] for l in labels]
    if seed == 8:
        d.fig.savefig(out_dir / "search.png", bbox_inches="tight")


def test_search_gif_has_a_frame_per_step(index, graph, out_dir):
    q = np.random.default_rng(8).random(2, dtype=np.float32)
    tr = viz.trace_search(index, graph, q, k=5, ef=8)
    _, _, ev = raw_events(index, q, 5, 8)
    n_expand = int((ev["kind"] == K["expand"]).sum())
    a = viz.animate_search(tr, str(out_dir / "search.gif"), ef=8)
    with Image.open(a.path) as im:
        assert im.n_frames == n_expand == a.frames
    assert a.steps == [(int(e["layer"]), int(e["node"])) for e in ev if e["kind"] == K["expand"]]


def test_build_gif_has_a_frame_per_node(points, out_dir):
    n = 40
    a = viz.animate_build(points[:n], str(out_dir / "build.gif"), M=4)
    with Image.open(a.path) as im:
        assert im.n_frames == n == a.frames
    assert a.added == list(range(n))
    # the links seen appearing minus those seen pruned are the final graph's
    import hnswc
    ix = hnswc.Index(space="l2", dim=2)
    ix.init_index(n, M=4, ef_construction=32, random_seed=100)
    for i in range(n):
        ix.add_items(points[i:i + 1], [i])
    total = sum(len(ix.get_links(l, 0)) for l in range(n))
    assert sum(a.new_links) - sum(a.pruned_links) == total


def test_pca_for_wide_data(wide_index, out_dir):
    ix, x = wide_index
    g = Graph(ix, x)
    assert g.projection.kind == "pca"
    # a point of the plane maps back onto itself (the explorer relies on it)
    np.testing.assert_allclose(g.projection(g.projection.inverse(g.xy[:5])), g.xy[:5], atol=1e-9)
    d = viz.plot_layer(g, 0)
    assert len(d.mutual_artist.get_segments()) * 2 + \
        (len(d.one_way) if d.one_way_artist is not None else 0) == len(g.links[0])
    d.fig.savefig(out_dir / "wide-layer0.png", bbox_inches="tight")
    d, tr = viz.plot_search(ix, x[3] + 0.1, k=10, ef=20, graph=g)
    assert tr.labels[0] == 3
    d.fig.savefig(out_dir / "wide-search.png", bbox_inches="tight")
