"""Animated GIFs (Pillow): a build, node by node, and a search, step by step.

Frames are drawn with matplotlib on one reused figure, rasterised and
written with Pillow. A GIF has exactly one frame per step (per node added,
per expansion of the search); the last frame is simply held longer.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

import numpy as np

from . import _draw
from ._model import Graph, Trace

FRAME_MS = 450
LAST_MS = 2500


def _frame(fig):
    from PIL import Image

    fig.canvas.draw()
    img = Image.fromarray(np.asarray(fig.canvas.buffer_rgba())[..., :3])
    return img


def _save_gif(frames: List, path: str, ms: int, last_ms: int) -> int:
    from PIL import Image

    if not frames:
        raise ValueError("hnswc.viz: nothing to animate")
    # a palette per frame (GIF allows local colour tables): a shared one
    # taken from any single frame loses the colours only other frames use
    q = [f.quantize(colors=255, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
         for f in frames]
    durations = [ms] * (len(q) - 1) + [last_ms]
    q[0].save(path, save_all=True, append_images=q[1:], duration=durations, loop=0,
              optimize=False, disposal=1)
    return len(q)


# ---------------------------------------------------------------------------
# A build
# ---------------------------------------------------------------------------

@dataclass
class BuildAnimation:
    path: str
    frames: int
    added: List[int]        # per frame: the label that joined
    new_links: List[int]    # per frame: layer-0 links that appeared
    pruned_links: List[int]  # per frame: layer-0 links that disappeared


def animate_build(data: np.ndarray, path: str, *, M: int = 4, ef_construction: int = 32,
                  space: str = "l2", seed: int = 100, size: float = 6.0,
                  ms: int = FRAME_MS) -> BuildAnimation:
    """Builds an index over `data` one vector at a time (labels 0..n-1) and
    draws layer 0 after each add: the newcomer in red, the links it brought
    in green, the links the library pruned to make room dashed in red.
    Nodes are sized by their top layer. One frame per node."""
    from .. import Index

    plt = _draw._plt()
    from matplotlib.collections import LineCollection

    data = np.asarray(data, dtype=np.float32)
    n = data.shape[0]
    ix = Index(space=space, dim=data.shape[1])
    ix.init_index(max_elements=n, M=M, ef_construction=ef_construction, random_seed=seed)
    proj = None
    fig, ax = plt.subplots(figsize=(size, size), dpi=90)
    frames, added, new_l, pruned_l = [], [], [], []
    before = set()
    full = None
    for i in range(n):
        ix.add_items(data[i:i + 1], [i])
        if proj is None:
            from ._model import Projection
            proj = Projection(data)
            full = proj(data)
        g = Graph(ix, data, projection=proj)
        now = {(int(g.labels[a]), int(g.labels[b])) for a, b in g.links[0]}
        appeared, gone = now - before, before - now
        before = now
        ax.clear()
        # the vectors still to come, as faint dots, so the frame does not jump
        ax.scatter(full[i + 1:, 0], full[i + 1:, 1], s=6, c="#e5e9f0", zorder=0)
        d = _draw.draw_layer(g, 0, ax, title="", labels=False, faint=True, directions=False)
        xy = full
        if gone:
            seg = np.array([[xy[a], xy[b]] for a, b in gone])
            ax.add_collection(LineCollection(seg, colors="#d62728", linewidths=1.6,
                                             linestyles=(0, (3, 2)), zorder=4))
        if appeared:
            seg = np.array([[xy[a], xy[b]] for a, b in appeared])
            ax.add_collection(LineCollection(seg, colors="#2ca02c", linewidths=1.8, zorder=4))
        lv = g.levels
        big = lv > 0
        if big.any():
            ax.scatter(g.xy[big, 0], g.xy[big, 1], s=25 + 35 * lv[big], facecolors="none",
                       edgecolors="#5e81ac", linewidths=1.2, zorder=5)
        ax.scatter([xy[i, 0]], [xy[i, 1]], s=90, c="#d62728", edgecolors="black", zorder=6)
        _draw._square(ax, full)
        lvl = ix.get_level(i)
        out_ = sum(1 for a, _ in appeared if a == i)
        ax.set_title("node %d of %d joins, top layer %d: %d links out, %d back, %d pruned\n"
                     "layer 0, M=%d.  green: new links;  dashed red: links pruned;\n"
                     "rings: nodes on upper layers (larger = higher)"
                     % (i + 1, n, lvl, out_, len(appeared) - out_, len(gone), M), fontsize=9)
        del d
        frames.append(_frame(fig))
        added.append(i)
        new_l.append(len(appeared))
        pruned_l.append(len(gone))
    plt.close(fig)
    count = _save_gif(frames, path, ms, LAST_MS)
    return BuildAnimation(path, count, added, new_l, pruned_l)


# ---------------------------------------------------------------------------
# A search
# ---------------------------------------------------------------------------

@dataclass
class SearchAnimation:
    path: str
    frames: int
    steps: List[tuple]      # per frame: (layer, expanded label)


def animate_search(trace: Trace, path: str, *, ef: int, size: float = 6.4,
                   ms: int = FRAME_MS, true_rows: Optional[List[int]] = None) -> SearchAnimation:
    """One frame per step of the traced search (per node expanded). Each
    frame shows the layer being searched from above: nodes visited so far
    coloured by order of visit, the node being expanded ringed in black
    with the neighbours it evaluates joined to it (green: queued, grey:
    rejected), the path so far in red, and the query."""
    plt = _draw._plt()
    from matplotlib.collections import LineCollection

    g = trace.graph
    q2 = g.projection(trace.query)[0]
    fig, ax = plt.subplots(figsize=(size, size), dpi=90)
    fig.subplots_adjust(bottom=0.09)
    fig.text(0.5, 0.025, "colour: order of first visit (dark = late)   blue squares: the beam\n"
             "black ring: node expanded   green / grey: neighbour queued / rejected   "
             "red: greedy path", ha="center", fontsize=8, color="#4c566a")
    cmap = plt.get_cmap(_draw.VISIT_CMAP)
    n_vis = max(len(trace.visit_order), 1)
    frames, steps = [], []
    seen: dict = {}
    beam: set = set()
    for si, s in enumerate(trace.steps):
        path_so_far = [p for p, at in zip(trace.path, trace.path_step) if at <= si]
        if s.layer == 0:
            seen.setdefault(s.node, len(seen))
        for r, _, _ in s.evaluated:
            if s.layer == 0:
                seen.setdefault(r, len(seen))
        beam |= set(s.entered) if s.layer == 0 else set()
        beam -= set(s.left) if s.layer == 0 else set()
        ax.clear()
        _draw.draw_layer(g, s.layer, ax, title="", labels=False, faint=True,
                         node_colors=_draw.NODE_FAINT if s.layer == 0 else _draw.NODE,
                         directions=False)
        if seen:
            rows = np.array(list(seen))
            ax.scatter(g.xy[rows, 0], g.xy[rows, 1], s=55,
                       c=cmap(np.array([seen[r] for r in rows]) / max(n_vis - 1, 1)),
                       edgecolors="white", linewidths=0.5, zorder=5)
        if beam:
            b = np.array(sorted(beam))
            ax.scatter(g.xy[b, 0], g.xy[b, 1], s=140, marker="s", facecolors="none",
                       edgecolors="#1f5fbf", linewidths=1.0, zorder=5)
        if s.evaluated:
            ok = [(r, q) for r, _, q in s.evaluated]
            seg = np.array([[g.xy[s.node], g.xy[r]] for r, _ in ok])
            cols = ["#2ca02c" if q else "#9aa3b2" for _, q in ok]
            ax.add_collection(LineCollection(seg, colors=cols, linewidths=2.0, zorder=6))
        up = [(l, r) for l, r in path_so_far if l >= s.layer]
        for (la, ra), (lb, rb) in zip(up, up[1:]):
            if ra != rb:
                _draw._arrow(ax, g.xy[ra], g.xy[rb], _draw.PATH, 7, lw=1.6)
        ax.scatter([g.xy[s.node, 0]], [g.xy[s.node, 1]], s=190, facecolors="none",
                   edgecolors="black", linewidths=2.2, zorder=7)
        if si == len(trace.steps) - 1 and true_rows is not None:
            ax.scatter(g.xy[true_rows, 0], g.xy[true_rows, 1], s=300, facecolors="none",
                       edgecolors=_draw.TRUE_NN, linewidths=2.2, zorder=6)
        ax.scatter([q2[0]], [q2[1]], marker="*", s=300, c=_draw.QUERY, edgecolors="black",
                   zorder=8)
        _draw._square(ax, g.xy)
        what = ("greedy descent" if s.layer > 0 else "beam search, ef=%d" % ef)
        queued = sum(1 for _, _, q in s.evaluated if q)
        if s.layer == 0:
            detail = "%d neighbours evaluated, %d queued; visited %d" % (
                len(s.evaluated), queued, len(seen))
        else:
            detail = "%d neighbours evaluated, %s" % (
                len(s.evaluated), "moved to a closer one" if queued else "none closer: stay")
        ax.set_title("layer %d, %s: step %d of %d\nexpanding node %d (distance %.3g)\n%s"
                     % (s.layer, what, si + 1, len(trace.steps), int(g.labels[s.node]), s.dist,
                        detail), fontsize=9)
        frames.append(_frame(fig))
        steps.append((s.layer, int(g.labels[s.node])))
    plt.close(fig)
    count = _save_gif(frames, path, ms, LAST_MS)
    return SearchAnimation(path, count, steps)
