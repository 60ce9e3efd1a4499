"""The classic set of pictures for a learner, in one go."""
from __future__ import annotations

import os
from typing import Dict

import numpy as np


def demo_points(n: int = 100, seed: int = 7) -> np.ndarray:
    """n random points in the unit square (float32), the usual first picture."""
    return np.random.default_rng(seed).random((n, 2), dtype=np.float32)


def demo_index(points: np.ndarray, M: int = 4, ef_construction: int = 32, seed: int = 100):
    from .. import Index

    ix = Index(space="l2", dim=points.shape[1])
    ix.init_index(max_elements=len(points), M=M, ef_construction=ef_construction,
                  random_seed=seed)
    for i, p in enumerate(points):  # one by one, in label order, as the build GIF does
        ix.add_items(p[None, :], [i])
    return ix


def demo(out: str, *, n: int = 100, M: int = 4, k: int = 5, ef: int = 8, seed: int = 7,
         gifs: bool = True, small: bool = False) -> Dict[str, str]:
    """Renders into directory `out`: layer0.png and layer1.png (one layer from
    above), layers.png (the stack in perspective), search.png (a search),
    search.gif and build.gif (animations, if `gifs`), explorer.html. Returns
    {name: path}."""
    from . import _anim, _draw
    from ._explorer import explorer
    from ._model import Graph, trace_search, true_neighbours

    plt = _draw._plt()
    os.makedirs(out, exist_ok=True)
    pts = demo_points(n, seed)
    ix = demo_index(pts, M=M)
    g = Graph(ix, pts)
    files = {}

    def save(fig, name):
        path = os.path.join(out, name)
        fig.savefig(path, dpi=fig.dpi, bbox_inches="tight")
        plt.close(fig)
        if small:
            from PIL import Image

            with Image.open(path) as im:
                im = im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
            im.save(path, optimize=True)
        files[name] = path

    for layer in (0, 1):
        if layer <= g.max_level:
            d = _draw.draw_layer(g, layer)
            _draw._layer_legend(d.ax)
            save(d.fig, "layer%d.png" % layer)
    save(_draw.draw_layers(g).fig, "layers.png")
    query = np.random.default_rng(seed + 1).random(2, dtype=np.float32)
    tr = trace_search(ix, g, query, k=k, ef=ef)
    truth = true_neighbours(g, query, k, "l2")
    save(_draw.draw_search(tr, truth, k=k, ef=ef).fig, "search.png")
    if gifs:
        files["search.gif"] = _anim.animate_search(
            tr, os.path.join(out, "search.gif"), ef=ef, true_rows=truth).path
        files["build.gif"] = _anim.animate_build(pts, os.path.join(out, "build.gif"), M=M).path
    files["explorer.html"] = explorer(ix, os.path.join(out, "explorer.html"), k=k, ef=ef,
                                      title="100 random points" if n == 100 else None)
    return files
