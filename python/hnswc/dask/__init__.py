"""hnswc.dask -- an hnswc index sharded over a dask.distributed cluster.

::

    from dask.distributed import Client
    from hnswc.dask import ShardedIndex

    client = Client("tcp://scheduler:8786")          # or the default client
    index = ShardedIndex("l2", dim=784, n_shards=4)   # one per worker by default
    index.init_index(max_elements=1_000_000, M=16, ef_construction=200)
    index.add_items(data, ids)                        # NumPy or dask.array
    index.set_ef(64)
    labels, distances = index.knn_query(queries, k=10)
    index.save_index("/shared/fmnist")                # one file per shard + manifest
    again = ShardedIndex.load("/shared/fmnist")       # on this or another cluster

Each label lives in one shard (``shard_of``), so updates and deletion marks
reach it; a query goes to every shard and the top-k answers are merged on
exact distances. A shard whose worker dies is reloaded from the last save on
another worker, or the call fails with ShardLostError naming it.
docs/SCALING.md has the design, how to run it on a multi-host cluster, and
measurements.

This module needs Dask's distributed scheduler (``pip install -r
python/requirements-dask.txt`` in the repository; ``make python-dask``
installs it into build/venv). ``import hnswc`` never imports it.
"""
try:
    import dask  # noqa: F401
    import distributed  # noqa: F401
except ImportError as _e:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        "hnswc.dask needs Dask's distributed scheduler, which is not installed (%s). "
        "Install the pinned versions with `pip install -r python/requirements-dask.txt` "
        "(from the hnswc repository; `make python-dask` does it for build/venv), or "
        "`pip install \"dask[distributed]\"`." % _e) from _e

from ._index import ShardedIndex, check_manifest, merge_topk
from ._routing import ROUTING, shard_of
from ._shard import ShardLostError

__all__ = ["ShardedIndex", "ShardLostError", "shard_of", "merge_topk", "check_manifest",
           "ROUTING"]
