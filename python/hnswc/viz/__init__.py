"""hnswc.viz -- pictures of the real graph and of a real search.

Everything drawn here is read out of an index through the library's own
calls (``Index.get_level``, ``Index.get_links``) or reported by its own
search (``Index.knn_query_trace``); nothing re-runs HNSW in Python.
Vectors of more than two dimensions are drawn by their PCA projection.

    import hnswc, hnswc.viz as viz
    p = hnswc.Index(space="l2", dim=2); p.init_index(100, M=4)
    p.add_items(points)
    viz.plot_layer(p, layer=0).fig.savefig("layer0.png")
    viz.plot_layers(p).fig.savefig("layers.png")
    drawing, trace = viz.plot_search(p, query, k=5, ef=8)
    viz.animate_search(trace, "search.gif", ef=8)
    viz.animate_build(points, "build.gif", M=4)
    viz.explorer(p, "explorer.html")

``python -m hnswc.viz demo --out DIR`` renders the classic set for a
learner (100 random 2-D points, M=4); ``python -m hnswc.viz explorer``
writes the explorer page. Needs matplotlib, and Pillow for the GIFs.
"""
from ._anim import BuildAnimation, SearchAnimation, animate_build, animate_search
from ._draw import (LayerDrawing, SearchDrawing, StackDrawing, draw_layer, draw_layers,
                    draw_search, plot_layer, plot_layers, plot_search)
from ._explorer import explorer, explorer_html
from ._model import KINDS, Graph, Projection, Step, Trace, trace_search, true_neighbours
from ._demo import demo

__all__ = [
    "Graph", "Projection", "Trace", "Step", "KINDS", "trace_search", "true_neighbours",
    "plot_layer", "plot_layers", "plot_search", "draw_layer", "draw_layers", "draw_search",
    "LayerDrawing", "StackDrawing", "SearchDrawing",
    "animate_build", "animate_search", "BuildAnimation", "SearchAnimation",
    "explorer", "explorer_html", "demo",
]
