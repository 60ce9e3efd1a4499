"""Writers for every vector file format hnswc reads, and NumPy references.

The writers follow the formats' definitions directly (not through hnswc), so
a round trip through the tool checks its readers against an independent
implementation.
"""
import gzip
import struct

import numpy as np


# --------------------------------------------------------------------------
# Writers
# --------------------------------------------------------------------------

def write_vecs(path, x):
    """fvecs for float32 arrays, bvecs for uint8: int32 dim before each row."""
    x = np.asarray(x)
    n, d = x.shape
    dt = np.dtype("<f4") if x.dtype == np.float32 else np.dtype("u1")
    rows = np.empty(n, dtype=[("d", "<i4"), ("v", dt, (d,))])
    rows["d"] = d
    rows["v"] = x
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(rows.tobytes())


def write_idx(path, x, shape=None):
    """idx: 00 00 type ndims, big-endian uint32 dims, big-endian data."""
    x = np.asarray(x)
    shape = shape or x.shape
    code = {np.dtype("uint8"): 0x08, np.dtype("float32"): 0x0D}[x.dtype]
    header = bytes([0, 0, code, len(shape)]) + struct.pack(">%dI" % len(shape), *shape)
    data = x.astype(x.dtype.newbyteorder(">")).tobytes()
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(header + data)


def write_hdf5(path, train, test, metric="euclidean", neighbors=None):
    import h5py

    with h5py.File(path, "w") as f:
        f.create_dataset("train", data=train)
        f.create_dataset("test", data=test)
        if neighbors is not None:
            f.create_dataset("neighbors", data=neighbors.astype(np.int32))
        if metric is not None:
            f.attrs["distance"] = metric


def write_text(path, x):
    with open(path, "w") as f:
        f.write("# one vector per line\n")
        for row in x:
            f.write(" ".join(repr(float(v)) for v in row) + "\n")


# --------------------------------------------------------------------------
# References
# --------------------------------------------------------------------------

def distances(metric, queries, base):
    """hnswlib's distances, in float64: rows = queries, columns = base."""
    q = np.asarray(queries, dtype=np.float64)
    b = np.asarray(base, dtype=np.float64)
    if metric == "l2":
        return ((q[:, None, :] - b[None, :, :]) ** 2).sum(-1)
    if metric == "cosine":
        q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-30)
        b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-30)
    return 1.0 - q @ b.T


def brute_force(metric, queries, base, k, allowed=None):
    """Exact k nearest (labels, distances), ties broken by the smaller label."""
    d = distances(metric, queries, base)
    if allowed is not None:
        mask = np.full(d.shape[1], np.inf)
        mask[np.asarray(sorted(allowed), dtype=np.int64)] = 0
        d = d + mask
    order = np.lexsort((np.broadcast_to(np.arange(d.shape[1]), d.shape), d), axis=1)[:, :k]
    return order, np.take_along_axis(d, order, axis=1)


def recall(found_labels, exact_labels):
    hits = sum(len(set(f) & set(e)) for f, e in zip(found_labels, exact_labels))
    return hits / sum(len(e) for e in exact_labels)
