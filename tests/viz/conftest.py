"""Fixtures of the hnswc.viz tests: the demo index (100 random 2-D points,
M=4, built one point at a time as the build GIF builds it), its graph, and
the folder where the pictures go ($HNSWC_VIZ_OUT, set by `make test-viz`
to build/viz; a temporary folder otherwise)."""
import os
import pathlib

import numpy as np
import pytest

import hnswc
from hnswc.viz import Graph
from hnswc.viz._demo import demo_index, demo_points


@pytest.fixture(scope="session")
def out_dir(tmp_path_factory):
    d = os.environ.get("HNSWC_VIZ_OUT")
    path = pathlib.Path(d) if d else tmp_path_factory.mktemp("viz")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def points():
    return demo_points(100, seed=7)


@pytest.fixture(scope="session")
def index(points):
    return demo_index(points, M=4)


@pytest.fixture(scope="session")
def graph(index, points):
    return Graph(index, points)


@pytest.fixture(scope="session")
def wide_index():
    """A higher-dimensional index, drawn through PCA."""
    rng = np.random.default_rng(11)
    centres = rng.normal(size=(6, 24)) * 4
    x = (centres[rng.integers(0, 6, 600)] + rng.normal(size=(600, 24))).astype(np.float32)
    ix = hnswc.Index(space="l2", dim=24)
    ix.init_index(max_elements=600, M=6, ef_construction=64, random_seed=5)
    ix.add_items(x, np.arange(600), num_threads=1)
    return ix, x


def raw_events(index, query, k, ef):
    """The library's own report, untouched by hnswc.viz."""
    return index.knn_query_trace(np.asarray(query, dtype=np.float32), k=k, ef=ef)
