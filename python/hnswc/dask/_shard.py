"""Worker side of hnswc.dask: the shards a worker process holds, and the
tasks that act on them.

Where a shard lives
-------------------
A shard is an ordinary hnswc.Index kept in a per-process table of the worker
(``_STORES``, keyed by the worker's address), not in Dask's data store. Tasks
reach it by a small ``ShardHandle`` (index id, shard number, generation,
owner address) and run on the owner because they are submitted with
``workers=[owner]``.

Rejected: the index as the *result* of a Dask task (a future). Dask treats
task results as immutable values it may copy, move, spill to disk or
recompute: work stealing or rebalancing would copy a 200 MiB graph to
another worker and leave two diverging copies after the next update, the
memory manager would pickle it to disk under pressure, and a lost worker
would make the scheduler recompute it from its lineage, i.e. silently bring
back the state of the build without the updates made since. Rejected too:
Dask actors. Their calls bypass the scheduler, so they appear in no task
stream or progress bar, cannot be the dependency of a task, and give the
caller no future it can gather or wait on.

Losing a worker
---------------
Tasks are submitted with *loose* restrictions (``allow_other_workers=True``).
Hard restrictions would leave a task bound to a dead worker waiting forever
in the scheduler's "no-worker" state. With loose ones the scheduler sends it
to another worker, where ``resolve`` finds no shard and decides:

* the owner is still in the cluster (the task was stolen for load balance):
  raise ``Reschedule`` and the scheduler places it again, on the owner;
* the owner is gone, or this *is* the owner's address but a new process
  (a restarted worker): raise ``ShardLostError`` naming the shard.

So a task never runs on the wrong copy, never hangs on a dead worker, and
never returns a partial answer: it answers from the shard or fails naming
it. The client (``_index.py``) then reloads the shard from the last save,
or raises.
"""
import hashlib
import os
import re
import threading
from dataclasses import dataclass

import numpy as np
from distributed import Reschedule, get_client, get_worker

import hnswc

# ---------------------------------------------------------------------------
# Errors and handles
# ---------------------------------------------------------------------------


class ShardLostError(RuntimeError):
    """A shard is not held by any live worker (its worker died or restarted).

    Attributes: ``shard`` (its number), ``worker`` (the address it was on),
    ``detail`` (what was tried or what to do).
    """

    def __init__(self, shard, worker, detail=""):
        self.shard = shard
        self.worker = worker
        self.detail = detail
        msg = "hnswc.dask: shard %d is lost (it was on worker %s)" % (shard, worker)
        super().__init__(msg + ("; " + detail if detail else ""))

    def __reduce__(self):  # travels from workers to the client
        return (self.__class__, (self.shard, self.worker, self.detail))


@dataclass(frozen=True)
class ShardHandle:
    """How a task names a shard. ``generation`` grows each time the shard is
    created or reloaded, so a task submitted for an older incarnation of the
    shard fails instead of acting on a newer one."""
    index_id: str
    shard: int
    generation: int
    owner: str


#: A label slot with no element (a shard returned fewer than k results).
NO_LABEL = np.iinfo(np.uint64).max

# ---------------------------------------------------------------------------
# The per-process table of shards
# ---------------------------------------------------------------------------

_LOCK = threading.Lock()
_STORES = {}  # worker address -> {(index_id, shard): (generation, hnswc.Index)}


def _table(address):
    with _LOCK:
        return _STORES.setdefault(address, {})


def _owner_alive(address):
    try:
        return address in get_client().nthreads()
    except Exception:  # no scheduler to ask: do not reschedule blindly
        return False


def resolve(handle):
    """The hnswc.Index of `handle` on this worker, or Reschedule/ShardLostError."""
    worker = get_worker()
    with _LOCK:
        entry = _STORES.get(worker.address, {}).get((handle.index_id, handle.shard))
    if entry is not None and entry[0] == handle.generation:
        return entry[1]
    if worker.address != handle.owner and _owner_alive(handle.owner):
        raise Reschedule()
    if worker.address == handle.owner:
        why = "its worker restarted and no longer holds it"
    else:
        why = "its worker left the cluster"
    raise ShardLostError(handle.shard, handle.owner, why)


def _place(handle, index):
    """Stores `index` as shard `handle` on this worker, which must be its owner."""
    worker = get_worker()
    if worker.address != handle.owner:
        if _owner_alive(handle.owner):
            raise Reschedule()
        raise ShardLostError(handle.shard, handle.owner,
                             "its worker left before the shard was created")
    with _LOCK:
        _STORES.setdefault(worker.address, {})[(handle.index_id, handle.shard)] = (
            handle.generation, index)


def stats(index):
    """Counts of one shard, as the client sums them."""
    return {"element_count": index.element_count, "live_count": index.live_count,
            "deleted_count": index.deleted_count, "max_elements": index.max_elements}

# ---------------------------------------------------------------------------
# Tasks (each runs on the shard's owner; `after` only orders it after the
# shard's previous write and is otherwise ignored)
# ---------------------------------------------------------------------------


def task_create(handle, space, dim, params, ef, num_threads):
    """Creates an empty shard (init_index with `params`)."""
    index = hnswc.Index(space=space, dim=dim)
    index.init_index(**params)
    index.set_ef(ef)
    index.set_num_threads(num_threads)
    _place(handle, index)
    return stats(index)


def task_add(handle, piece, after, num_threads, replace_deleted):
    """add_items of one piece (data, labels) routed to this shard."""
    index = resolve(handle)
    data, labels = piece
    if len(labels):
        index.add_items(data, labels, num_threads=num_threads, replace_deleted=replace_deleted)
    return stats(index)


def take_rows(block, ids, start, shard, n_shards):
    """The rows of one block of a dask.array that route to `shard`.

    `ids` is the block's labels, or None for the running labels start, start+1...
    """
    from ._routing import as_labels, shard_of
    block = np.asarray(block)
    if block.ndim == 1:
        block = block.reshape(1, -1)
    if ids is None:
        labels = np.arange(start, start + block.shape[0], dtype=np.uint64)
    else:
        labels = as_labels(ids)
        if labels.shape[0] != block.shape[0]:
            raise ValueError("ids has %d labels for %d rows" % (labels.shape[0], block.shape[0]))
    keep = shard_of(labels, n_shards) == shard
    return block[keep], labels[keep]


def _largest_fillable(index, q, k, num_threads, filt):
    """For one query the shard cannot fill k slots for: the largest k' < k it
    can, and its result, by bisection (success is monotone in k' when
    ef >= k; otherwise this still returns a k' the shard can fill)."""
    lo, hi, best = 0, k - 1, None  # invariant: best is the result for lo
    while lo < hi:
        mid = (lo + hi + 1) // 2
        try:
            best = index.knn_query(q, k=mid, num_threads=num_threads, filter=filt)
            lo = mid
        except RuntimeError:
            hi = mid - 1
    return lo, best


def task_query(handle, queries, start, stop, k, filt, num_threads, after):
    """Top-k of rows start:stop of `queries` in this shard, up to k of them.

    Returns (labels, distances, found): (n, k) arrays padded with NO_LABEL and
    +inf where the shard holds fewer than k matches, and found (n,) counts.
    The distances are the exact ones hnswc.Index returns, so shards compare.
    """
    index = resolve(handle)
    q = np.asarray(queries)[start:stop]
    n = q.shape[0]
    try:
        labels, dists = index.knn_query(q, k=k, num_threads=num_threads, filter=filt)
        return labels, dists, np.full(n, k, dtype=np.int64)
    except RuntimeError as e:
        if "Cannot return the results" not in str(e):
            raise
    # Some query has fewer than k matches in this shard (a small shard, or a
    # selective filter): that is normal here, the other shards may have them.
    labels = np.full((n, k), NO_LABEL, dtype=np.uint64)
    dists = np.full((n, k), np.inf, dtype=np.float32)
    found = np.zeros(n, dtype=np.int64)
    for i in range(n):
        try:
            lab, dis = index.knn_query(q[i:i + 1], k=k, num_threads=1, filter=filt)
            got = k
        except RuntimeError:
            got, res = _largest_fillable(index, q[i:i + 1], k, 1, filt)
            lab, dis = res if got else (None, None)
        if got:
            labels[i, :got] = lab[0]
            dists[i, :got] = dis[0]
        found[i] = got
    return labels, dists, found


#: The hnswc.Index methods `task_call` may run (it is reached by name).
_CALLS = {"mark_deleted", "unmark_deleted", "set_ef", "set_num_threads", "resize_index",
          "get_items", "get_ids_list", "get_info"}


def task_call(handle, method, args, after):
    """One hnswc.Index method on the shard; returns (its result, stats)."""
    if method not in _CALLS:
        raise ValueError("hnswc.dask: no shard method %r" % method)
    index = resolve(handle)
    result = getattr(index, method)(*args)
    return result, stats(index)


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def task_save(handle, directory, name, after):
    """Saves the shard as directory/name; returns its manifest entry."""
    index = resolve(handle)
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, name)
    index.save_index(path)  # atomic: written beside, fsynced, renamed
    st = stats(index)
    return {"shard": handle.shard, "file": name, "bytes": os.path.getsize(path),
            "sha256": file_sha256(path), "element_count": st["element_count"],
            "live_count": st["live_count"]}


def task_load(handle, space, dim, directory, entry, ef, num_threads, max_elements,
              allow_replace_deleted, mmap=False):
    """Loads shard `entry` of a saved index after checking its size and SHA-256;
    with mmap, opens it in place (hnswc.Index.load_index(mmap=True)): the
    vectors stay in the page cache, which the processes of one host share.
    The SHA-256 still reads the file once (it is what ties the file to the
    manifest); that read fills the page cache the mapping then uses."""
    path = os.path.join(directory, entry["file"])
    try:
        size = os.path.getsize(path)
    except OSError as e:
        raise RuntimeError("hnswc.dask: shard %d: cannot read %s: %s"
                           % (handle.shard, path, e.strerror)) from None
    if size != entry["bytes"] or file_sha256(path) != entry["sha256"]:
        raise RuntimeError("hnswc.dask: shard %d: %s does not match the manifest (size or "
                           "SHA-256 differs): the file was changed or belongs to another save"
                           % (handle.shard, path))
    index = hnswc.Index(space=space, dim=dim)
    index.load_index(path, max_elements=max_elements, allow_replace_deleted=allow_replace_deleted,
                     mmap=bool(mmap))
    if index.element_count != entry["element_count"]:
        raise RuntimeError("hnswc.dask: shard %d: %s holds %d elements, the manifest says %d"
                           % (handle.shard, path, index.element_count, entry["element_count"]))
    index.set_ef(ef)
    index.set_num_threads(num_threads)
    _place(handle, index)
    return stats(index)


def task_drop(handle):
    """Forgets the shard on this worker (frees its memory)."""
    worker = get_worker()
    with _LOCK:
        table = _STORES.get(worker.address, {})
        entry = table.get((handle.index_id, handle.shard))
        if entry is not None and entry[0] == handle.generation:
            del table[(handle.index_id, handle.shard)]
    return None

# ---------------------------------------------------------------------------
# The manifest file (read and written by a worker, so that the client needs
# no access to the directory, which is only shared by the workers)
# ---------------------------------------------------------------------------

MANIFEST = "manifest.json"
SHARD_FILE = re.compile(r"^shard-[0-9]{5}-[0-9a-f]{12}\.hnswc$")


def task_write_manifest(directory, text, keep):
    """Writes the manifest atomically, then removes shard files of older saves."""
    path = os.path.join(directory, MANIFEST)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    removed = []
    for name in os.listdir(directory):
        if SHARD_FILE.match(name) and name not in keep:
            try:
                os.remove(os.path.join(directory, name))
                removed.append(name)
            except OSError:
                pass  # another save's file, already gone
    return removed


def task_read_manifest(directory):
    path = os.path.join(directory, MANIFEST)
    try:
        with open(path, "r", encoding="utf-8") as f:
            return f.read(1 << 24)
    except OSError as e:
        raise RuntimeError("hnswc.dask: cannot read %s: %s" % (path, e.strerror)) from None
