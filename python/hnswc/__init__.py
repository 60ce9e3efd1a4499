"""hnswc -- fast approximate nearest neighbour search (HNSW), in C.

A drop-in replacement for hnswlib's Python API::

    import hnswc as hnswlib

    p = hnswlib.Index(space="l2", dim=128)
    p.init_index(max_elements=10000, ef_construction=200, M=16)
    p.add_items(data, ids)
    p.set_ef(50)
    labels, distances = p.knn_query(queries, k=5)

Index is the HNSW index, BFIndex the exact (brute-force) one. Both have
hnswlib 0.8's methods, properties and exceptions; see their docstrings for
what hnswc adds (fast filters, live/deleted counts, get_info) and fixes.
"""
from ._hnswc import BFIndex, Index, __version__, distance, library_version, simd_name

__all__ = ["Index", "BFIndex", "distance", "simd_name", "library_version", "__version__"]
