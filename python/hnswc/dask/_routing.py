"""Label -> shard routing of hnswc.dask.

A label always lives in one shard, chosen from the label alone, so that an
update, a mark_deleted or (once it exists) a removal reaches the shard that
holds the element, from any client, on any cluster, after a save and a load.

The shard is ``splitmix64(label) mod n_shards``. splitmix64's finaliser
scrambles every input bit into every output bit, so labels that follow a
pattern (multiples of the shard count, timestamps, ids from another
sharded system) still spread evenly. ``label mod n_shards`` was rejected
for exactly that: labels 0, 4, 8, ... would all land on shard 0 of 4.
Consistent hashing (rings, rendezvous) was rejected too: it only pays when
the shard count changes without moving data, and resharding an HNSW graph
means rebuilding it anyway.

The function is part of the saved format: the manifest names it
(``ROUTING``) and a loader refuses a name it does not know. Changing it
means a new name, never new behaviour under the old one.
"""
import numpy as np

#: The routing function's name as written in manifests.
ROUTING = "splitmix64-mod"

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MUL1 = np.uint64(0xBF58476D1CE4E5B9)
_MUL2 = np.uint64(0x94D049BB133111EB)


def as_labels(ids, what="ids"):
    """ids (any integer array-like, or a scalar) as a 1-D uint64 array.

    Raises ValueError for non-integers and negative values, as hnswc.Index
    does; a label is an unsigned 64-bit integer.
    """
    arr = ids if isinstance(ids, np.ndarray) else np.asarray(ids)
    if arr.dtype.kind == "f" and not isinstance(ids, np.ndarray):
        # Python ints of 2**63 and more make NumPy choose float64: go exact.
        arr = np.asarray(ids, dtype=object)
    if arr.dtype == object:
        vals = arr.ravel().tolist()
        if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in vals):
            raise ValueError("%s must be integers (labels)" % what)
        if any(v < 0 or v >= 1 << 64 for v in vals):
            raise ValueError("%s must be in 0 .. 2**64-1" % what)
        return np.array([int(v) for v in vals], dtype=np.uint64)
    if arr.dtype == np.bool_ or not (np.issubdtype(arr.dtype, np.integer) or arr.size == 0):
        raise ValueError("%s must be integers (labels), not %s" % (what, arr.dtype))
    if arr.size and np.issubdtype(arr.dtype, np.signedinteger) and arr.min() < 0:
        raise ValueError("%s must not be negative" % what)
    return arr.astype(np.uint64, copy=False).ravel()


def shard_of(labels, n_shards):
    """The shard (an int64 array, 0 .. n_shards-1) of each label."""
    if n_shards < 1:
        raise ValueError("n_shards must be at least 1")
    z = as_labels(labels, "labels") + _GAMMA          # wraps modulo 2**64
    z = (z ^ (z >> np.uint64(30))) * _MUL1
    z = (z ^ (z >> np.uint64(27))) * _MUL2
    z = z ^ (z >> np.uint64(31))
    return (z % np.uint64(n_shards)).astype(np.int64)
