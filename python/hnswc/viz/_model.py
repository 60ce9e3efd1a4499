"""What the pictures are made of: the graph read out of an index, a 2-D
projection of its vectors, and a traced search cut into steps.

Nothing here runs HNSW: the links come from ``Index.get_links``, the levels
from ``Index.get_level`` and the search from ``Index.knn_query_trace`` (the
library's own search, reporting what it does). This module only arranges
those facts for drawing.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

#: Names of the trace event kinds, indexed by the ``kind`` field of an event
#: (the values of ``hnswc_trace_kind`` in include/hnswc.h).
KINDS = ("entry", "expand", "eval", "enter", "leave", "descend", "stop", "exact")
ENTRY, EXPAND, EVAL, ENTER, LEAVE, DESCEND, STOP, EXACT = range(len(KINDS))
NO_NODE = np.iinfo(np.uint64).max
#: flags of an "eval" event: the neighbour was queued as a candidate (the
#: beam search) or became the current node (the greedy descent).
QUEUED = 1
#: flags of a "stop" event: the walk ran out of candidates.
EXHAUSTED = 1


# ---------------------------------------------------------------------------
# Projection to the plane
# ---------------------------------------------------------------------------

class Projection:
    """Maps vectors to 2-D: the identity for 2-D data (a 1-D point x is drawn
    at (x, 0)), else PCA onto the two directions of largest variance.

    ``inverse`` maps a point of the plane back into vector space (the point
    of the PCA plane it stands for), which is how the explorer turns a click
    into a query.
    """

    def __init__(self, vectors: np.ndarray):
        x = np.asarray(vectors, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] == 0:
            raise ValueError("hnswc.viz: need a non-empty 2-D array of vectors")
        self.dim = x.shape[1]
        self.mean = np.zeros(self.dim)
        if self.dim <= 2:
            self.components = np.eye(2, self.dim)  # identity (1-D: y = 0)
            self.kind = "identity"
            self.explained = 1.0
        else:
            self.mean = x.mean(axis=0)
            _, s, vt = np.linalg.svd(x - self.mean, full_matrices=False)
            self.components = vt[:2]
            total = float((s ** 2).sum())
            self.explained = float((s[:2] ** 2).sum() / total) if total > 0 else 1.0
            self.kind = "pca"

    def __call__(self, vectors: np.ndarray) -> np.ndarray:
        x = np.atleast_2d(np.asarray(vectors, dtype=np.float64))
        return (x - self.mean) @ self.components.T

    def inverse(self, points: np.ndarray) -> np.ndarray:
        p = np.atleast_2d(np.asarray(points, dtype=np.float64))
        return self.mean + p @ self.components

    def describe(self) -> str:
        if self.kind == "identity":
            return "the data itself (%d-D)" % self.dim
        return "PCA of %d-D data (%.0f%% of the variance)" % (self.dim, 100 * self.explained)


# ---------------------------------------------------------------------------
# The graph
# ---------------------------------------------------------------------------

class Graph:
    """A snapshot of an index's graph, read through the library's calls.

    ``labels[i]`` is the label of row i (rows follow ``get_ids_list()``),
    ``levels[i]`` its top layer and ``links[L]`` an (E, 2) array of row
    pairs (source, target): every link stored on layer L, in stored order.
    ``vectors`` are the stored vectors (normalised ones for cosine) and
    ``xy`` their 2-D positions.
    """

    def __init__(self, index, data: Optional[np.ndarray] = None,
                 projection: Optional[Projection] = None):
        labels = np.asarray(index.get_ids_list(), dtype=np.uint64)
        if labels.size == 0:
            raise ValueError("hnswc.viz: the index is empty")
        self.labels = labels
        self.row = {int(l): i for i, l in enumerate(labels)}
        self.levels = np.array([index.get_level(int(l)) for l in labels], dtype=np.int64)
        self.max_level = int(self.levels.max())
        # adj[L][row]: the rows row links to on layer L, in stored order
        # (empty for rows not on L); links[L]: the same as (source, target)
        self.adj: List[List[List[int]]] = [[[] for _ in labels] for _ in range(self.max_level + 1)]
        for i, lab in enumerate(labels):
            for layer in range(int(self.levels[i]) + 1):
                self.adj[layer][i] = [self.row[int(t)] for t in index.get_links(int(lab), layer)]
        self.links = [np.array([(i, t) for i, ts in enumerate(a) for t in ts],
                               dtype=np.int64).reshape(-1, 2) for a in self.adj]
        if data is None:
            self.vectors = np.asarray(index.get_items(labels.tolist()), dtype=np.float32)
        else:
            # data given by the caller: rows by label (data[label]) when the
            # labels are 0..n-1, which is how hnswlib users usually add them
            data = np.asarray(data, dtype=np.float32)
            if labels.max() >= data.shape[0]:
                raise ValueError("hnswc.viz: data has %d rows but the index holds label %d; "
                                 "pass data=None to read the stored vectors"
                                 % (data.shape[0], int(labels.max())))
            self.vectors = data[labels.astype(np.int64)]
        self.projection = projection or Projection(self.vectors)
        self.xy = self.projection(self.vectors)

    @property
    def n(self) -> int:
        return len(self.labels)

    def on_layer(self, layer: int) -> np.ndarray:
        """Rows of the nodes that are on `layer`."""
        return np.flatnonzero(self.levels >= layer)

    def split_links(self, layer: int) -> Tuple[np.ndarray, np.ndarray]:
        """The links of `layer` as (mutual pairs a < b, one-way links a -> b).
        2 * len(mutual) + len(one_way) == len(links[layer])."""
        edges = self.links[layer] if layer < len(self.links) else np.zeros((0, 2), np.int64)
        have = {(int(a), int(b)) for a, b in edges}
        mutual = sorted({(min(a, b), max(a, b)) for a, b in have if (b, a) in have})
        one_way = [(a, b) for a, b in have if (b, a) not in have]
        return (np.array(mutual, dtype=np.int64).reshape(-1, 2),
                np.array(sorted(one_way), dtype=np.int64).reshape(-1, 2))


# ---------------------------------------------------------------------------
# A traced search
# ---------------------------------------------------------------------------

@dataclass
class Step:
    """One expansion: the search reads `node`'s links on `layer`."""
    layer: int
    node: int                      # row of the expanded node
    dist: float
    evaluated: List[Tuple[int, float, bool]] = field(default_factory=list)  # (row, dist, queued)
    entered: List[int] = field(default_factory=list)   # rows that entered the beam
    left: List[int] = field(default_factory=list)      # rows pushed out of it
    visited: int = 0               # nodes visited on this layer after the step


class Trace:
    """The library's report of one search (``Index.knn_query_trace``),
    arranged for drawing.

    steps        one Step per expansion, in order (a GIF frame each);
    path         (layer, row) of the greedy walk: the entry point, each
                 node it moved to on the upper layers, and the entry into
                 layer 0;
    visit_order  row -> order in which the layer-0 search first reached it;
    visited      nodes the layer-0 search visited (the library's count);
    exact        True when the walk ran out of candidates early and the
                 library answered with an exact scan;
    labels, distances   the k results, closest first.
    """

    def __init__(self, graph: Graph, query: np.ndarray, labels, distances, events):
        self.graph = graph
        self.query = np.asarray(query, dtype=np.float32)
        self.labels = [int(l) for l in labels]
        self.distances = [float(d) for d in distances]
        self.events = events
        row = graph.row

        def r(label) -> int:
            return row[int(label)]

        self.steps: List[Step] = []
        self.path: List[Tuple[int, int]] = []
        self.path_step: List[int] = []     # per path entry: the step it happened in (-1: before)
        self.visit_order: Dict[int, int] = {}
        self.beam: List[int] = []          # rows in the layer-0 beam at the end
        self.visited = 0
        self.exact = False
        self.top_layer = -1
        beam = set()
        pending: List[int] = []
        for ev in events:
            kind, lev = int(ev["kind"]), int(ev["layer"])
            if kind == ENTRY:
                self.top_layer = lev
                self.path.append((lev, r(ev["node"])))
                self.path_step.append(len(self.steps) - 1)
                if lev == 0:  # the layer-0 search starts here: visited first
                    self.visit_order.setdefault(r(ev["node"]), 0)
            elif kind == DESCEND:
                self.path.append((lev, r(ev["node"])))
                self.path_step.append(len(self.steps) - 1)
                if lev == 0:
                    self.visit_order.setdefault(r(ev["node"]), 0)
            elif kind == EXPAND:
                self.steps.append(Step(lev, r(ev["node"]), float(ev["dist"])))
                # the beam entry of a layer's entry point comes before its
                # first expansion: it belongs to that first step
                self.steps[-1].entered.extend(pending)
                pending = []
            elif kind == EVAL:
                n = r(ev["node"])
                queued = bool(int(ev["flags"]) & QUEUED)
                if self.steps:
                    self.steps[-1].evaluated.append((n, float(ev["dist"]), queued))
                if lev == 0 and n not in self.visit_order:
                    self.visit_order[n] = len(self.visit_order)
                if lev > 0 and queued:   # the greedy walk moved
                    self.path.append((lev, n))
                    self.path_step.append(len(self.steps) - 1)
            elif kind == ENTER:
                n = r(ev["node"])
                if lev == 0:
                    beam.add(n)
                if self.steps and self.steps[-1].layer == lev:
                    self.steps[-1].entered.append(n)
                else:
                    pending.append(n)
            elif kind == LEAVE:
                n = r(ev["node"])
                if lev == 0:
                    beam.discard(n)
                if self.steps and self.steps[-1].layer == lev:
                    self.steps[-1].left.append(n)
            elif kind == STOP:
                if lev == 0:
                    self.visited = int(ev["count"])
            elif kind == EXACT:
                self.exact = True
            if self.steps and kind in (EXPAND, EVAL) and lev == 0:
                self.steps[-1].visited = len(self.visit_order)
        self.beam = sorted(beam)
        for s in self.steps:  # upper layers: count what the greedy walk touched
            if s.layer > 0:
                s.visited = 0

    @property
    def result_rows(self) -> List[int]:
        return [self.graph.row[l] for l in self.labels]

    def expanded(self, layer: Optional[int] = None) -> List[int]:
        return [s.node for s in self.steps if layer is None or s.layer == layer]


def trace_search(index, graph: Graph, query, k: int = 1, ef: int = 0) -> Trace:
    """Runs the library's traced search for one query and wraps the report."""
    q = np.asarray(query, dtype=np.float32).reshape(-1)
    labels, distances, events = index.knn_query_trace(q, k=k, ef=ef)
    return Trace(graph, q, labels, distances, events)


def true_neighbours(graph: Graph, query, k: int, space: str) -> List[int]:
    """Rows of the exact k nearest stored vectors, by hnswc's own exact index
    (BFIndex), so ties and distances follow the library's definitions."""
    from .. import BFIndex  # late: hnswc imports hnswc.viz lazily

    bf = BFIndex(space=space, dim=graph.vectors.shape[1])
    bf.init_index(max_elements=graph.n)
    bf.add_items(graph.vectors, np.arange(graph.n))
    rows, _ = bf.knn_query(np.asarray(query, dtype=np.float32).reshape(1, -1), k=min(k, graph.n))
    return [int(x) for x in rows[0]]


def sequence_str(rows: Sequence[int], graph: Graph) -> str:
    return " ".join(str(int(graph.labels[r])) for r in rows)
