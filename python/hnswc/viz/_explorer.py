"""The self-contained HTML explorer: one file with the graph, the vectors
and a small script; no network, no server.

The page replays the library's search on the exported graph so that a
click anywhere can be searched at once (see the comment in explorer.html);
tests/viz/test_explorer.py drives it in Chromium and checks each step, the
visited count and the results against ``Index.knn_query_trace``.
"""
from __future__ import annotations

import base64
import json
import os
from typing import Optional

import numpy as np

from ._model import ENTRY, Graph

#: Past this many nodes the page gets slow to draw and heavy to load.
MAX_NODES = 20000


def explorer_html(index, data=None, *, k: int = 5, ef: Optional[int] = None,
                  title: Optional[str] = None, graph: Optional[Graph] = None) -> str:
    """The explorer page for `index` as a string (see ``explorer``)."""
    g = graph or Graph(index, data)
    if g.n > MAX_NODES:
        raise ValueError("hnswc.viz.explorer: %d nodes; the page handles up to %d"
                         % (g.n, MAX_NODES))
    if getattr(index, "deleted_count", 0):
        raise ValueError("hnswc.viz.explorer: the index has deleted elements, which the "
                         "page does not model; use an index without tombstones")
    # the entry point, as the library reports it at the start of any search
    _, _, ev = index.knn_query_trace(g.vectors[0], k=1, ef=1)
    first = ev[ev["kind"] == ENTRY][0]
    info = index.get_info() if hasattr(index, "get_info") else {}
    payload = {
        "labels": [int(x) for x in g.labels],
        "levels": [int(x) for x in g.levels],
        "max_level": g.max_level,
        "entry": g.row[int(first["node"])],
        "links": g.adj,
        "layer_sizes": [int((g.levels >= L).sum()) for L in range(g.max_level + 1)],
        "layer_links": [int(len(e)) for e in g.links],
        "dim": int(g.vectors.shape[1]),
        "metric": index.space,
        "M": int(info.get("M", getattr(index, "M", 0))),
        "vectors": base64.b64encode(np.ascontiguousarray(g.vectors, dtype="<f4").tobytes())
                         .decode("ascii"),
        "xy": [[float(a), float(b)] for a, b in g.xy],
        "proj": {"mean": [float(x) for x in g.projection.mean],
                 "components": [[float(x) for x in c] for c in g.projection.components]},
        "projection": g.projection.describe(),
        "deleted": [],
        "k": int(k),
        "ef": int(ef if ef else index.ef),
    }
    with open(os.path.join(os.path.dirname(__file__), "explorer.html"), encoding="utf-8") as f:
        page = f.read()
    data_json = json.dumps(payload, separators=(",", ":")).replace("</", "<\\/")
    page = page.replace("__TITLE__", title or "%d nodes" % g.n)
    page = page.replace("__K__", str(int(k))).replace("__EF__", str(payload["ef"]))
    return page.replace("__DATA__", data_json)


def explorer(index, path: str, data=None, *, k: int = 5, ef: Optional[int] = None,
             title: Optional[str] = None) -> str:
    """Writes the explorer page for `index` to `path` and returns the path.

    Open it in a browser: click to place a query, set k and ef, and step
    through the search layer by layer (the visited count, the node being
    expanded and its neighbours, the beam). `data` as for the pictures
    (rows by label; default: the vectors stored in the index).
    """
    html = explorer_html(index, data, k=k, ef=ef, title=title)
    with open(path, "w", encoding="utf-8") as f:
        f.write(html)
    return path
