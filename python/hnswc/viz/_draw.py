"""Still pictures with matplotlib: one layer, the layers stacked in
perspective, and a search.

Every function returns a small record of what it drew (the matplotlib
artists and which graph rows they stand for), so that tests can compare
the picture with the graph: the segments of a layer with its links, the
path drawn with the traced path.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np

from ._model import Graph, Trace

# ---------------------------------------------------------------------------
# Style
# ---------------------------------------------------------------------------

NODE = "#3b4252"          # plain node
NODE_FAINT = "#c9ced6"    # node the search never reached
LINK = "#8f9bb3"          # mutual link
ONE_WAY = "#e07b24"       # one-way link (arrow)
PATH = "#d62728"          # greedy path on the upper layers
QUERY = "#ffd500"         # the query (star)
TRUE_NN = "#2ca02c"       # exact nearest neighbours (rings)
FOUND = "#1f5fbf"         # what the search returned (squares)
PLANE = "#eef2f8"
PLANE_EDGE = "#aab4c8"
VISIT_CMAP = "plasma_r"   # early visits dark, late visits light


def _plt():
    """pyplot, imported late so that `import hnswc.viz` stays cheap. The
    backend is left to matplotlib (Agg where there is no display, or set
    MPLBACKEND=Agg); everything here draws on figures it closes itself."""
    import matplotlib.pyplot as plt

    return plt


def _new_ax(ax, size=(6.4, 6.4)):
    plt = _plt()
    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=size, dpi=100)
    return fig, ax


def _square(ax, xy: np.ndarray, pad: float = 0.06):
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    span = max(float((hi - lo).max()), 1e-9)
    c = (lo + hi) / 2
    half = span / 2 * (1 + 2 * pad)
    ax.set_xlim(c[0] - half, c[0] + half)
    ax.set_ylim(c[1] - half, c[1] + half)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    for s in ax.spines.values():
        s.set_color("#d0d5dd")


# ---------------------------------------------------------------------------
# One layer, seen from above
# ---------------------------------------------------------------------------

@dataclass
class LayerDrawing:
    fig: object
    ax: object
    layer: int
    nodes: np.ndarray              # rows drawn as nodes
    mutual: np.ndarray             # (P, 2) rows of each mutual segment
    one_way: np.ndarray            # (Q, 2) rows of each arrow, source -> target
    mutual_artist: object = None   # LineCollection, segment i <-> mutual[i]
    one_way_artist: object = None  # Quiver, arrow i <-> one_way[i] (a LineCollection
                                   # with directions=False)
    node_artist: object = None


def draw_layer(graph: Graph, layer: int = 0, ax=None, *, title: Optional[str] = None,
               labels: Optional[bool] = None, faint: bool = False,
               node_colors=None, directions: bool = True) -> LayerDrawing:
    """Draws the links of one layer: a mutual pair (a -> b and b -> a) as a
    plain line, a one-way link as an arrow from the node that holds it.
    Nodes not on the layer are left out. With directions=False (a backdrop
    for a search) one-way links are plain lines too, dashed."""
    from matplotlib.collections import LineCollection

    fig, ax = _new_ax(ax)
    xy = graph.xy
    nodes = graph.on_layer(layer)
    mutual, one_way = graph.split_links(layer)
    alpha = 0.35 if faint else 0.9
    lc = LineCollection(xy[mutual] if len(mutual) else np.zeros((0, 2, 2)),
                        colors=LINK, linewidths=1.0, alpha=alpha, zorder=1)
    lc.set_gid("mutual-links")
    ax.add_collection(lc)
    q = None
    if len(one_way) and not directions:
        q = LineCollection(xy[one_way], colors=LINK, linewidths=0.8, alpha=alpha,
                           linestyles=(0, (3, 2)), zorder=1)
        q.set_gid("one-way-links")
        ax.add_collection(q)
    elif len(one_way):
        a, b = xy[one_way[:, 0]], xy[one_way[:, 1]]
        q = ax.quiver(a[:, 0], a[:, 1], b[:, 0] - a[:, 0], b[:, 1] - a[:, 1], angles="xy",
                      scale_units="xy", scale=1, color=ONE_WAY, alpha=alpha, width=0.004,
                      headwidth=4.5, headlength=6, headaxislength=5.5, zorder=2)
        q.set_gid("one-way-links")
    col = NODE if node_colors is None else node_colors
    sc = ax.scatter(xy[nodes, 0], xy[nodes, 1], s=22 if graph.n <= 300 else 8, c=col,
                    zorder=3, edgecolors="white", linewidths=0.6)
    sc.set_gid("nodes")
    if labels is None:
        labels = len(nodes) <= 40
    if labels:
        for r in nodes:
            ax.annotate(str(int(graph.labels[r])), xy[r], xytext=(3, 3),
                        textcoords="offset points", fontsize=7, color="#4c566a", zorder=4)
    _square(ax, xy)
    if title is None:
        title = ("layer %d: %d nodes, %d links (%d mutual pairs, %d one-way)"
                 % (layer, len(nodes), len(graph.links[layer]) if layer < len(graph.links) else 0,
                    len(mutual), len(one_way)))
    if title:
        ax.set_title(title, fontsize=11)
    return LayerDrawing(fig, ax, layer, nodes, mutual, one_way, lc, q, sc)


def _layer_legend(ax, extra=()):
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=LINK, lw=1.2, label="mutual link (a\u2194b)"),
               Line2D([], [], color=ONE_WAY, lw=1.2, marker=">", markersize=5,
                      label="one-way link (a\u2192b only)")]
    handles += list(extra)
    ax.legend(handles=handles, loc="lower left", fontsize=8, framealpha=0.9)


def plot_layer(index, layer: int = 0, data=None, ax=None, **kw) -> LayerDrawing:
    """The graph of one layer of `index`, seen from above (PCA when the data
    has more than two dimensions). Returns a LayerDrawing."""
    g = index if isinstance(index, Graph) else Graph(index, data)
    d = draw_layer(g, layer, ax, **kw)
    _layer_legend(d.ax)
    return d


# ---------------------------------------------------------------------------
# The layers stacked in perspective
# ---------------------------------------------------------------------------

@dataclass
class StackDrawing:
    fig: object
    ax: object
    layer_nodes: Dict[int, np.ndarray]     # layer -> rows drawn on it
    layer_links: Dict[int, object]         # layer -> LineCollection
    verticals: np.ndarray                  # (V, 2): (row, layer) of each vertical joint
    path_segments: List[tuple] = field(default_factory=list)  # ((layer, row), (layer, row))
    to_screen: object = None


class _Perspective:
    """Places layer L's plane at height L * gap and shears it, so layers
    stack like maps seen at an angle."""

    def __init__(self, xy: np.ndarray, gap: float = 0.72):
        lo, hi = xy.min(axis=0), xy.max(axis=0)
        self.lo, self.span = lo, np.maximum(hi - lo, 1e-9)
        self.gap = gap

    def __call__(self, xy: np.ndarray, layer) -> np.ndarray:
        u = (np.atleast_2d(xy) - self.lo) / self.span
        layer = np.asarray(layer, dtype=float).reshape(-1, 1) if np.ndim(layer) else layer
        x = u[:, 0] + 0.55 * u[:, 1]
        y = 0.40 * u[:, 1] + np.ravel(layer * self.gap) if np.ndim(layer) else \
            0.40 * u[:, 1] + layer * self.gap
        return np.column_stack([x, y])

    def plane(self, layer: int, pad: float = 0.05) -> np.ndarray:
        c = np.array([[-pad, -pad], [1 + pad, -pad], [1 + pad, 1 + pad], [-pad, 1 + pad]])
        return self(self.lo + c * self.span, layer)


def draw_layers(graph: Graph, ax=None, *, faint: bool = False, max_layers: Optional[int] = None,
                title: Optional[str] = None) -> StackDrawing:
    from matplotlib.collections import LineCollection
    from matplotlib.patches import Polygon

    top = graph.max_level if max_layers is None else min(graph.max_level, max_layers - 1)
    fig, ax = _new_ax(ax, size=(8.0, 2.2 + 1.75 * (top + 1)))
    P = _Perspective(graph.xy)
    node_size = 16 if graph.n <= 300 else 5
    layer_nodes, layer_links = {}, {}
    # vertical joints first, under the planes: node r from layer L to L+1
    vert = [(r, L) for r in range(graph.n) for L in range(min(int(graph.levels[r]), top))]
    vert = np.array(vert, dtype=np.int64).reshape(-1, 2)
    for L in range(top + 1):
        z = 10 * L
        ax.add_patch(Polygon(P.plane(L), closed=True, facecolor=PLANE, edgecolor=PLANE_EDGE,
                             alpha=0.82, lw=1.0, zorder=z))
        edges = graph.links[L]
        # one segment per linked pair; the top view shows directions
        pairs = np.unique(np.sort(edges, axis=1), axis=0) if len(edges) else np.zeros((0, 2), int)
        segs = np.stack([P(graph.xy[pairs[:, 0]], L), P(graph.xy[pairs[:, 1]], L)], axis=1) \
            if len(pairs) else np.zeros((0, 2, 2))
        lc = LineCollection(segs, colors=LINK, linewidths=0.8 if L == 0 else 1.2,
                            alpha=0.45 if faint else 0.85, zorder=z + 1)
        lc.set_gid("links-%d" % L)
        ax.add_collection(lc)
        layer_links[L] = lc
        rows = graph.on_layer(L)
        layer_nodes[L] = rows
        pts = P(graph.xy[rows], L)
        s = ax.scatter(pts[:, 0], pts[:, 1], s=node_size if L == 0 else node_size * 1.6,
                       c=NODE_FAINT if faint else NODE, zorder=z + 3, edgecolors="white",
                       linewidths=0.5)
        s.set_gid("nodes-%d" % L)
        corner = P.plane(L)[0]
        ax.text(corner[0] - 0.04, corner[1] + 0.12, "layer %d" % L, ha="right", va="center",
                fontsize=10, fontweight="bold", color="#2e3440", zorder=z + 5)
        ax.text(corner[0] - 0.04, corner[1] + 0.02, "%d nodes\n%d links" % (len(rows), len(edges)),
                ha="right", va="top", fontsize=8, color="#4c566a", zorder=z + 5)
        # joints rising from this layer to the next, drawn between the planes
        up = vert[vert[:, 1] == L, 0] if len(vert) else np.zeros(0, int)
        if len(up):
            a, b = P(graph.xy[up], L), P(graph.xy[up], L + 1)
            vl = LineCollection(np.stack([a, b], axis=1), colors="#7a869a", linewidths=0.7,
                                linestyles=(0, (2, 2)), zorder=z + 2)
            vl.set_gid("joints-%d" % L)
            ax.add_collection(vl)
    allp = np.vstack([P.plane(L) for L in range(top + 1)])
    ax.set_xlim(allp[:, 0].min() - 0.45, allp[:, 0].max() + 0.05)
    ax.set_ylim(allp[:, 1].min() - 0.08, allp[:, 1].max() + 0.08)
    ax.set_aspect("equal")
    ax.axis("off")
    if title is None:
        title = "HNSW layers: %d nodes, each drawn on every layer it reaches" % graph.n
    if title:
        ax.set_title(title, fontsize=11)
    return StackDrawing(fig, ax, layer_nodes, layer_links, vert, to_screen=P)


def plot_layers(index, data=None, ax=None, **kw) -> StackDrawing:
    """The layers of `index` stacked in perspective: layer 0 (every node) at
    the bottom, the sparse upper layers above, each node drawn on every
    layer it belongs to and joined vertically."""
    g = index if isinstance(index, Graph) else Graph(index, data)
    return draw_layers(g, ax, **kw)


# ---------------------------------------------------------------------------
# A search
# ---------------------------------------------------------------------------

@dataclass
class SearchDrawing:
    fig: object
    stack: StackDrawing
    top: LayerDrawing
    path_rows: List[tuple]          # (layer, row) of the drawn greedy path
    visited_rows: np.ndarray        # rows coloured as visited on layer 0
    found_rows: List[int]
    true_rows: List[int]


def _arrow(ax, a, b, color, z, lw=1.8, style="-|>", ls="-"):
    from matplotlib.patches import FancyArrowPatch

    p = FancyArrowPatch(tuple(a), tuple(b), arrowstyle=style, mutation_scale=11, color=color,
                        lw=lw, linestyle=ls, zorder=z, shrinkA=3, shrinkB=3)
    ax.add_patch(p)
    return p


def draw_search(trace: Trace, true_rows: List[int], *, k: int, ef: int,
                fig=None) -> SearchDrawing:
    """Two panels: the layers in perspective with the greedy path drawn on
    the upper layers, and layer 0 from above with the beam search: nodes
    coloured by when they were first visited, expanded nodes outlined, the
    query, the exact and the found neighbours marked."""
    plt = _plt()
    from matplotlib import cm, colors
    from matplotlib.lines import Line2D

    g = trace.graph
    if fig is None:
        fig = plt.figure(figsize=(15.5, 7.2), dpi=100)
    ax0 = fig.add_axes([0.005, 0.04, 0.47, 0.86])
    ax1 = fig.add_axes([0.50, 0.04, 0.40, 0.86])
    cax = fig.add_axes([0.915, 0.20, 0.012, 0.55])

    order = np.full(g.n, -1)
    for r, o in trace.visit_order.items():
        order[r] = o
    visited = np.flatnonzero(order >= 0)
    nv = max(len(visited), 1)
    norm = colors.Normalize(0, nv - 1)
    cmap = plt.get_cmap(VISIT_CMAP)
    expanded0 = set(trace.expanded(0))

    # --- left: the stack, with the path -----------------------------------
    st = draw_layers(g, ax0, faint=True, title="")
    P = st.to_screen
    q2 = g.projection(trace.query)[0]
    path = trace.path
    for (la, ra), (lb, rb) in zip(path, path[1:]):
        a, b = P(g.xy[ra], la)[0], P(g.xy[rb], lb)[0]
        if la == lb:
            _arrow(ax0, a, b, PATH, 10 * la + 8)
        else:  # a descent: the same node one layer down
            _arrow(ax0, a, b, PATH, 10 * la + 8, lw=1.3, ls=(0, (3, 2)))
        st.path_segments.append(((la, ra), (lb, rb)))
    for la, ra in path:
        p = P(g.xy[ra], la)[0]
        ax0.scatter([p[0]], [p[1]], s=46, c=PATH, zorder=10 * la + 9, edgecolors="white",
                    linewidths=0.8)
    if len(visited):
        pv = P(g.xy[visited], 0)
        ax0.scatter(pv[:, 0], pv[:, 1], s=18, c=cmap(norm(order[visited])), zorder=7,
                    edgecolors="none")
    for L in range(g.max_level + 1):
        pq = P(q2[None, :], L)[0]
        ax0.scatter([pq[0]], [pq[1]], marker="*", s=150 if L == 0 else 90, c=QUERY,
                    edgecolors="black", linewidths=0.8, zorder=10 * L + 9.5)
    ax0.set_title("greedy descent on the upper layers (red), then a beam on layer 0",
                  fontsize=11)

    # --- right: layer 0 from above ----------------------------------------
    top = draw_layer(g, 0, ax1, title="", labels=False, faint=True,
                     node_colors=NODE_FAINT, directions=False)
    if len(visited):
        ex = np.array([r in expanded0 for r in visited])
        sc = ax1.scatter(g.xy[visited, 0], g.xy[visited, 1], s=np.where(ex, 70, 32),
                         c=order[visited], cmap=cmap, norm=norm, zorder=5,
                         edgecolors=np.where(ex, "black", "white").tolist(),
                         linewidths=np.where(ex, 1.1, 0.5))
        sc.set_gid("visited")
        cb = fig.colorbar(cm.ScalarMappable(norm=norm, cmap=cmap), cax=cax)
        cb.set_label("order of first visit on layer 0", fontsize=9)
        cb.ax.tick_params(labelsize=8)
    # the upper-layer path, seen from above
    upper = [(l, r) for l, r in path if l > 0]
    for (la, ra), (lb, rb) in zip(upper, upper[1:] + [path[-1]] if upper else []):
        if ra != rb:
            _arrow(ax1, g.xy[ra], g.xy[rb], PATH, 8, lw=1.6)
    if upper:
        ax1.scatter(g.xy[[r for _, r in upper], 0], g.xy[[r for _, r in upper], 1], s=55,
                    facecolors="none", edgecolors=PATH, linewidths=1.6, zorder=8)
    found = trace.result_rows
    ax1.scatter(g.xy[true_rows, 0], g.xy[true_rows, 1], s=260, facecolors="none",
                edgecolors=TRUE_NN, linewidths=2.2, zorder=6, label="exact %d nearest" % len(true_rows))
    ax1.scatter(g.xy[found, 0], g.xy[found, 1], s=120, marker="s", facecolors="none",
                edgecolors=FOUND, linewidths=1.8, zorder=7)
    ax1.scatter([q2[0]], [q2[1]], marker="*", s=320, c=QUERY, edgecolors="black",
                linewidths=1.0, zorder=9)
    hits = len(set(found) & set(true_rows))
    handles = [
        Line2D([], [], marker="*", ls="", markersize=14, markerfacecolor=QUERY,
               markeredgecolor="black", label="query"),
        Line2D([], [], marker="o", ls="", markersize=12, markerfacecolor="none",
               markeredgecolor=TRUE_NN, markeredgewidth=2, label="exact %d nearest" % len(true_rows)),
        Line2D([], [], marker="s", ls="", markersize=9, markerfacecolor="none",
               markeredgecolor=FOUND, markeredgewidth=1.8, label="returned by the search"),
        Line2D([], [], marker="o", ls="", markersize=8, markerfacecolor="#b83289",
               markeredgecolor="black", label="expanded (links read)"),
        Line2D([], [], marker="o", ls="", markersize=6, markerfacecolor=NODE_FAINT,
               markeredgecolor="white", label="never visited"),
        Line2D([], [], color=PATH, lw=1.8, marker=">", markersize=5,
               label="greedy path (upper layers)"),
    ]
    ax1.legend(handles=handles, loc="lower left", fontsize=8, framealpha=0.92)
    note = " (walk exhausted: exact scan)" if trace.exact else ""
    ax1.set_title("layer 0, ef=%d: visited %d of %d nodes, expanded %d%s\n"
                  "found %d of the exact %d nearest" % (ef, trace.visited, g.n, len(expanded0),
                                                        note, hits, len(true_rows)), fontsize=11)
    fig.suptitle("One HNSW search, as the library traced it (k=%d, ef=%d)" % (k, ef),
                 fontsize=13, y=0.985)
    return SearchDrawing(fig, st, top, list(path), visited, found, list(true_rows))


def plot_search(index, query, k: int = 5, ef: int = 10, data=None, graph: Optional[Graph] = None):
    """Runs the library's traced search for `query` and draws it
    (see draw_search). Returns (SearchDrawing, Trace)."""
    from ._model import trace_search, true_neighbours

    g = graph or Graph(index, data)
    tr = trace_search(index, g, query, k=k, ef=ef)
    truth = true_neighbours(g, query, k, index.space)
    return draw_search(tr, truth, k=k, ef=ef), tr
