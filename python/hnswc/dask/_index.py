"""Client side of hnswc.dask: ShardedIndex, an hnswc.Index split into shards
held by the workers of a dask.distributed cluster.

How a call runs
---------------
The client keeps, per shard, a handle (owner worker, generation), the last
write submitted without waiting (``_tail``, so that later tasks on the shard
run after it: read-your-writes for ``compute=False``), and the number of
writes since the last save (``_dirty``). Every shard task is a Dask task with
a ``hnswc-<what>`` key, so it shows in the dashboard's task stream and in
``distributed.progress``.

A synchronous call submits its tasks, then takes results as they complete
(``_complete``). A task that fails with ShardLostError (its worker died, see
_shard.py) makes the client reload that shard from the last save onto a live
worker and submit the failed part again; the parts other shards already
answered are kept. A shard that cannot be reloaded (never saved, or changed
since its save) fails the call with ShardLostError naming it. A call never
returns an answer that lacks a shard.

Futures (``compute=False``) carry no recovery: a lost shard makes the future
fail with ShardLostError, after which ``recover()`` (or any synchronous call)
reloads it and the call can be made again.
"""
import json
import os
import time
import uuid

import numpy as np
from distributed import default_client, wait

import hnswc

from . import _shard
from ._routing import ROUTING, as_labels, shard_of
from ._shard import NO_LABEL, ShardHandle, ShardLostError

FORMAT = "hnswc-sharded-index"
FORMAT_VERSION = 1
SPACES = ("l2", "ip", "cosine")

#: Query batches up to this many bytes (times the shard count) travel inside
#: the tasks; larger ones are scattered to every worker once.
INLINE_BYTES = 4 << 20
#: How many times a call reloads lost shards before giving up.
MAX_RECOVERIES = 3


# ---------------------------------------------------------------------------
# Merging the shards' answers
# ---------------------------------------------------------------------------

def merge_topk(parts, k):
    """The k closest of the shards' answers for the same queries.

    parts: one (labels, distances, found) per shard, each (n, k) sorted
    closest first and padded with NO_LABEL/+inf past `found`. A label lives
    in one shard only, so there is nothing to deduplicate. Raises
    RuntimeError, as hnswc.Index does, when the shards together hold fewer
    than k matches for a query.

    A k-way merge of the sorted answers: k vectorised steps, each an argmin
    over the shards' next answers, O(n k S). A stable argsort of the
    n x kS concatenation gives the same result (ties go to the lower shard)
    and was measured several times slower at 100 shards (bench/dask_model.py).
    """
    found = np.sum([p[2] for p in parts], axis=0)
    if (found < k).any():
        raise RuntimeError("Cannot return the results in a contiguous 2D array. "
                           "Probably ef or M is too small")
    if len(parts) == 1:
        return parts[0][0], parts[0][1]
    labels = np.stack([p[0] for p in parts], axis=1)  # (n, S, k)
    # one +inf column past the end: a shard whose k answers are used up
    dists = np.concatenate([np.stack([p[1] for p in parts], axis=1),
                            np.full((len(found), len(parts), 1), np.inf, np.float32)], axis=2)
    n = dists.shape[0]
    rows = np.arange(n)
    heads = dists[:, :, 0].copy()                    # each shard's next answer
    pos = np.zeros(heads.shape, dtype=np.intp)
    out_l = np.empty((n, k), dtype=np.uint64)
    out_d = np.empty((n, k), dtype=np.float32)
    for j in range(k):
        best = heads.argmin(axis=1)
        at = pos[rows, best]
        out_d[:, j] = heads[rows, best]
        out_l[:, j] = labels[rows, best, at]
        pos[rows, best] = at + 1
        heads[rows, best] = dists[rows, best, at + 1]
    return out_l, out_d


def merge_chunks(k, n_shards, *parts):
    """merge_topk over query chunks: parts are chunk-major, n_shards per chunk.
    Runs as the final task of knn_query(compute=False)."""
    out = [merge_topk(parts[c:c + n_shards], k) for c in range(0, len(parts), n_shards)]
    return (np.concatenate([o[0] for o in out]), np.concatenate([o[1] for o in out]))


# ---------------------------------------------------------------------------
# Input checks (the same messages as hnswc.Index where it has one)
# ---------------------------------------------------------------------------

def _is_dask(x):
    try:
        from dask import is_dask_collection
    except ImportError:
        return False
    return is_dask_collection(x)


def _vectors(data, dim, what):
    arr = np.asarray(data)
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2:
        raise RuntimeError("Input vector data wrong shape. Number of dimensions %d. "
                           "Data must be a 1D or 2D array." % arr.ndim)
    if arr.shape[1] != dim:
        raise RuntimeError("Wrong dimensionality of the %s: got %d, the index has dim %d"
                           % (what, arr.shape[1], dim))
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError("%s must be real numbers, not %s" % (what, arr.dtype))
    return np.ascontiguousarray(arr, dtype=np.float32)


def _filter_parts(filt, n_shards):
    """The filter each shard gets: the callable or mask as is, an array of
    allowed labels cut down to the labels routed to that shard."""
    if filt is None or callable(filt):
        return [filt] * n_shards
    if isinstance(filt, (set, frozenset)):
        filt = list(filt)
    try:
        arr = np.asarray(filt)
    except Exception:
        arr = None
    if arr is None or arr.ndim != 1 or not (arr.dtype == np.bool_ or arr.size == 0
                                            or np.issubdtype(arr.dtype, np.integer)):
        raise TypeError("filter must be None, a callable taking a label, an array of allowed "
                        "labels (integers) or a boolean mask indexed by label")
    if arr.dtype == np.bool_:
        return [arr] * n_shards
    labels = as_labels(arr, "filter labels")
    where = shard_of(labels, n_shards)
    return [labels[where == s] for s in range(n_shards)]


def _count(value, what, low=0):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError("%s must be an integer" % what)
    if value < low:
        raise ValueError("%s must be at least %d" % (what, low))
    return int(value)


# ---------------------------------------------------------------------------
# ShardedIndex
# ---------------------------------------------------------------------------

class ShardedIndex:
    """An hnswc index split into shards held by the workers of a Dask cluster.

    ``ShardedIndex(space, dim, n_shards=None, client=None)`` then
    ``init_index(...)`` and ``add_items(...)`` as with hnswc.Index; or
    ``ShardedIndex.load(directory)``.

    space, dim: as in hnswc.Index ('l2', 'ip' or 'cosine').
    n_shards: how many shards; by default one per worker at init_index. A
      label's shard is fixed by the label (see shard_of), so the count is
      fixed for the life of the index, across save and load.
    client: a dask.distributed.Client; by default the current one.
    chunk_size: queries per task in knn_query; each shard answers a batch
      in chunks of this size, which the workers' threads run in parallel.

    Contract: one ShardedIndex is used by one thread at a time (its shard
    table is plain client state; tasks on the workers may run concurrently,
    which hnswc.Index supports). The shards belong to this object: close()
    (or the with-block's end) frees them on the workers; without it they
    live until their worker process ends.
    """

    def __init__(self, space, dim, n_shards=None, client=None, chunk_size=1024):
        if space not in SPACES:
            raise ValueError("space must be one of %s, not %r" % (", ".join(SPACES), space))
        self.space = space
        self.dim = _count(dim, "dim", 1)
        self.n_shards = None if n_shards is None else _count(n_shards, "n_shards", 1)
        self.chunk_size = _count(chunk_size, "chunk_size", 1)
        if client is None:
            try:
                client = default_client()
            except ValueError:
                raise ValueError("hnswc.dask: no dask.distributed Client: pass client= or "
                                 "create one first (Client(...))") from None
        self.client = client
        self._id = uuid.uuid4().hex
        self._handles = None       # [ShardHandle], once initialised
        self._tail = []            # per shard: last write future not waited for, or None
        self._dirty = []           # per shard: writes since the last save or load
        self._saved = None         # {"directory": str, "shards": [manifest entries]}
        self._params = None        # init_index parameters
        self._max_elements = 0
        self._ef = 10
        self._num_threads = -1
        self._nthreads = {}        # worker -> threads, as of the last placement
        self._mmap = None          # load's mmap: True, False, or None (see _use_mmap)
        #: How many times a shard was reloaded from a save after its worker was lost.
        self.recoveries = 0

    def __repr__(self):
        return "<hnswc.dask.ShardedIndex(space=%r, dim=%d, n_shards=%s)>" % (
            self.space, self.dim, self.n_shards)

    # -- placement ---------------------------------------------------------

    def _workers(self):
        nthreads = self.client.nthreads()
        if not nthreads:
            raise RuntimeError("hnswc.dask: the cluster has no workers")
        self._nthreads = dict(nthreads)
        return sorted(nthreads)

    def _least_loaded(self):
        workers = self._workers()
        load = {w: 0 for w in workers}
        for h in self._handles or []:
            if h.owner in load:
                load[h.owner] += 1
        return min(workers, key=lambda w: (load[w], w))

    def _threads(self, s, requested=-1, owner=None):
        """Threads for one shard's add/load: the owner's threads shared by its shards."""
        if requested is not None and requested > 0:
            return requested
        if self._num_threads > 0:
            return self._num_threads
        owner = owner or self._handles[s].owner
        # shard s itself, plus the other shards already there (a worker that
        # receives a recovered shard may hold none yet)
        sharing = 1 + sum(1 for h in self._handles if h.owner == owner and h.shard != s)
        return max(1, self._nthreads.get(owner, 1) // sharing)

    @property
    def placement(self):
        """{shard: worker address} as the client last knows it."""
        self._need()
        return {h.shard: h.owner for h in self._handles}

    # -- task plumbing -----------------------------------------------------

    def _submit(self, what, fn, handle, *args):
        return self.client.submit(fn, handle, *args, key="hnswc-%s-%s" % (what, uuid.uuid4().hex),
                                  workers=[handle.owner], allow_other_workers=True, pure=False)

    def _after(self, s):
        """The write shard s must wait for, dropping it once it is done."""
        t = self._tail[s]
        if t is not None and t.done():
            self._tail[s] = t = None
        return t

    def _need(self):
        if self._handles is None:
            raise RuntimeError("hnswc.dask: the index is not initialised: call init_index, "
                               "load_index or ShardedIndex.load first")

    def _complete(self, jobs, allow_loss=False):
        """Runs jobs to completion: {key: (shard, submit)} where submit(handle)
        returns a future. Returns {key: result}. A job whose shard is lost is
        submitted again after the shard is reloaded (or ShardLostError).

        Rounds: wait for every pending future (a task never hangs, see
        _shard.py), gather all the finished ones in one round trip, and
        resubmit those whose shard was lost. (Taking results as they
        complete, with as_completed, was measured: one gather per batch of
        completions cost two to three round trips per call instead of one.)
        A result can be lost after its task finished (its worker died
        before the client fetched it): Dask then computes it again,
        elsewhere, which fails with ShardLostError and is handled like a
        failure of the task itself.
        """
        pending = {}  # key -> (generation of the shard it was sent to, future)
        for key, (s, submit) in jobs.items():
            h = self._handles[s]
            pending[key] = (h.generation, submit(h))
        results = {}
        failures = {}
        try:
            while pending:
                with self.client.as_current():  # wait() asks default_client()
                    wait([f for _, f in pending.values()])
                done = dict(pending)
                pending = {}
                good = [k for k, (_, f) in done.items() if f.status == "finished"]
                try:
                    values = self.client.gather([done[k][1] for k in good])
                    results.update(zip(good, values))
                except Exception:
                    pass  # one was lost meanwhile: sort them out one by one below
                for key, (gen, fut) in done.items():
                    if key in results:
                        continue
                    try:
                        results[key] = fut.result()
                    except ShardLostError as exc:
                        failures[key] = failures.get(key, 0) + 1
                        if failures[key] > MAX_RECOVERIES:
                            raise
                        s = jobs[key][0]
                        self._recover(s, gen, exc, allow_loss)
                        h = self._handles[s]
                        pending[key] = (h.generation, jobs[key][1](h))
        finally:
            if pending:  # an error ended the call: do not leave work behind
                self.client.cancel([f for _, f in pending.values()])
        return results

    def _recover(self, s, failed_generation, exc=None, allow_loss=False):
        """Reloads shard s from the last save onto a live worker, unless an
        earlier failure of the same call already did (a newer generation)."""
        h = self._handles[s]
        if h.generation != failed_generation:
            return
        if self._saved is None:
            raise ShardLostError(s, h.owner, "it was never saved, so there is nothing to "
                                 "reload it from: build or load the index again")
        if self._dirty[s] and not allow_loss:
            raise ShardLostError(s, h.owner, "%d write(s) reached it after the last save in "
                                 "%s; index.recover(allow_loss=True) reloads that save without "
                                 "them" % (self._dirty[s], self._saved["directory"]))
        entry = self._saved["shards"][s]
        last = exc
        for _ in range(MAX_RECOVERIES):
            nh = ShardHandle(self._id, s, h.generation + 1, self._least_loaded())
            fut = self._submit("load", _shard.task_load, nh, self.space, self.dim,
                               self._saved["directory"], entry, self._ef,
                               self._threads(s, owner=nh.owner),
                               self._max_elements, self._allow_replace_deleted(),
                               self._use_mmap(nh.owner))
            try:
                fut.result()
            except ShardLostError as e:  # the new owner died too
                last, h = e, nh
                continue
            self._handles[s] = nh
            self._tail[s] = None
            self._dirty[s] = 0
            self.recoveries += 1
            return
        raise ShardLostError(s, h.owner, "reloading it from %s failed %d times: %s"
                             % (self._saved["directory"], MAX_RECOVERIES, last))

    def _allow_replace_deleted(self):
        return bool(self._params and self._params.get("allow_replace_deleted"))

    def _on_all(self, method, args=(), write=False, allow_loss=False):
        """task_call(method) on every shard; returns the results in shard order."""
        self._need()
        jobs = {s: (s, lambda h, s=s: self._submit(method.replace("_", ""), _shard.task_call, h,
                                                   method, args, self._after(s)))
                for s in range(len(self._handles))}
        res = self._complete(jobs, allow_loss)
        if write:
            for s in range(len(self._handles)):
                self._dirty[s] += 1
        return [res[s] for s in range(len(self._handles))]

    def _on_one(self, s, method, args, write):
        res = self._complete({0: (s, lambda h: self._submit(
            method.replace("_", ""), _shard.task_call, h, method, args, self._after(s)))})[0]
        if write:
            self._dirty[s] += 1
        return res[0]

    # -- creating ----------------------------------------------------------

    def init_index(self, max_elements, M=16, ef_construction=200, random_seed=100,
                   allow_replace_deleted=False, storage="f32"):
        """Creates the empty shards, placed round-robin on the workers.

        Parameters as in hnswc.Index.init_index. max_elements is the limit of
        the whole index; each shard gets it as its own limit (hash routing
        does not split exactly evenly, and an hnswc shard's memory grows
        with its elements, not with its limit), so the sum over shards is
        not enforced. Shard s seeds its level generator with random_seed + s.
        storage ('f32', 'sq8' or 'sq8-only') is each shard's; an sq8 or
        sq8-only shard trains its quantiser on the first vectors it receives,
        so each shard has its own. With 'sq8' distances stay exact, so the
        merge is unaffected; with 'sq8-only' each shard returns distances to
        its own decoded vectors (approximate, as hnswc.Index states), and the
        merge orders those: a true neighbour can lose its place to an
        element whose approximate distance is smaller.
        """
        if self._handles is not None:
            raise RuntimeError("The index is already initiated.")
        max_elements = _count(max_elements, "max_elements")
        params = {"max_elements": max_elements, "M": _count(M, "M", 2),
                  "ef_construction": _count(ef_construction, "ef_construction", 1),
                  "random_seed": _count(random_seed, "random_seed"),
                  "allow_replace_deleted": bool(allow_replace_deleted)}
        if storage not in ("f32", "sq8", "sq8-only"):
            raise ValueError("storage must be 'f32', 'sq8' or 'sq8-only', not %r" % (storage,))
        if storage != "f32":  # only passed when asked: files saved before it lack the key
            params["storage"] = storage
        workers = self._workers()
        n = self.n_shards or len(workers)
        handles = [ShardHandle(self._id, s, 1, workers[s % len(workers)]) for s in range(n)]
        self._handles = handles
        futures = []
        for s, h in enumerate(handles):
            p = dict(params, random_seed=params["random_seed"] + s)
            futures.append(self._submit("create", _shard.task_create, h, self.space, self.dim,
                                        p, self._ef, self._threads(s)))
        try:
            self.client.gather(futures)
        except BaseException:
            self._handles = None
            self.client.cancel(futures)
            raise
        self.n_shards = n
        self._params = params
        self._max_elements = max_elements
        self._tail = [None] * n
        self._dirty = [0] * n

    # -- writing -----------------------------------------------------------

    def add_items(self, data, ids=None, num_threads=-1, replace_deleted=False, compute=True):
        """Adds (or updates) vectors, each to the shard of its label.

        data: a NumPy array (or anything np.asarray takes) or a dask.array of
          shape (n, dim). A dask.array is never gathered on the client: each
          block is split by shard on the worker that computed it, and the
          pieces go to the shards' owners.
        ids: labels (array-like or dask.array); by default the running
          count, as in hnswc.Index.
        num_threads: threads per shard insert; -1 shares each worker's
          threads among the shards it holds.
        compute: False returns at once with a list of Dask futures (the last
          insert of each shard), for ``distributed.progress`` or ``wait``.

        An add is atomic per shard, not across shards: if one shard fails,
        the others keep what they added. NumPy input is checked (shape,
        finite values, labels) before anything is sent.
        """
        self._need()
        if _is_dask(data) or _is_dask(ids):
            pieces = self._pieces_dask(data, ids)
        else:
            pieces = self._pieces_numpy(data, ids)
        threads = {s: self._threads(s, num_threads) for s in range(self.n_shards)}
        replace = bool(replace_deleted)
        if not compute:
            out = []
            for s, plist in pieces.items():
                for piece in plist:
                    self._tail[s] = self._submit("add", _shard.task_add, self._handles[s], piece,
                                                 self._after(s), threads[s], replace)
                    self._dirty[s] += 1
                out.append(self._tail[s])
            return out
        jobs = {}
        for s, plist in pieces.items():
            for i, piece in enumerate(plist):
                jobs[(s, i)] = (s, lambda h, s=s, piece=piece: self._submit(
                    "add", _shard.task_add, h, piece, self._after(s), threads[s], replace))
        try:
            self._complete(jobs)
        finally:
            for s in pieces:
                self._dirty[s] += 1
        return None

    def _pieces_numpy(self, data, ids):
        arr = _vectors(data, self.dim, "vectors")
        if not np.isfinite(arr).all():
            raise ValueError("add_items: the vectors contain NaN or infinity; nothing was added")
        if ids is None:
            start = self.get_current_count()
            labels = np.arange(start, start + arr.shape[0], dtype=np.uint64)
        else:
            labels = as_labels(ids)
            if labels.shape[0] != arr.shape[0]:
                raise RuntimeError("The input label shape %d does not match the input data "
                                   "vector shape %d" % (labels.shape[0], arr.shape[0]))
        where = shard_of(labels, self.n_shards)
        pieces = {}
        for s in range(self.n_shards):
            rows = np.flatnonzero(where == s)
            if rows.size == 0:
                continue
            piece = (arr[rows], labels[rows])
            # To the owner only. Through the scheduler unless the client was
            # made with direct_to_workers=True (then straight to the worker).
            fut = self.client.scatter([piece], workers=[self._handles[s].owner], hash=False)[0]
            pieces[s] = [fut]
        return pieces

    def _pieces_dask(self, data, ids):
        import dask.array as da
        data = da.asarray(data)
        if data.ndim == 1:
            data = data.reshape(1, -1)
        if data.ndim != 2 or data.shape[1] != self.dim:
            raise RuntimeError("Wrong dimensionality of the vectors: got shape %s, the index has "
                               "dim %d" % (data.shape, self.dim))
        data = data.rechunk({1: -1})
        rows = data.chunks[0]
        starts = np.concatenate([[0], np.cumsum(rows)[:-1]]).astype(np.int64)
        blocks = self.client.compute(list(data.to_delayed().ravel()))
        if ids is None:
            base = self.get_current_count()
            id_parts = [None] * len(rows)
            starts = starts + base
        elif _is_dask(ids):
            ids = da.asarray(ids)
            if ids.shape != (data.shape[0],):
                raise RuntimeError("The input label shape %s does not match the input data "
                                   "vector shape %d" % (ids.shape, data.shape[0]))
            id_parts = self.client.compute(list(ids.rechunk((rows,)).to_delayed().ravel()))
        else:
            labels = as_labels(ids)
            if labels.shape[0] != data.shape[0]:
                raise RuntimeError("The input label shape %d does not match the input data "
                                   "vector shape %d" % (labels.shape[0], data.shape[0]))
            bounds = np.concatenate([[0], np.cumsum(rows)])
            id_parts = [labels[bounds[i]:bounds[i + 1]] for i in range(len(rows))]
        pieces = {s: [] for s in range(self.n_shards)}
        for b, block in enumerate(blocks):
            for s in range(self.n_shards):
                pieces[s].append(self.client.submit(
                    _route_block, block, id_parts[b], int(starts[b]), s, self.n_shards,
                    key="hnswc-route-%s" % uuid.uuid4().hex, pure=False))
        return pieces

    def mark_deleted(self, label):
        """Marks an element deleted, in its shard (RuntimeError if unknown)."""
        self._need()
        lab = as_labels(label, "label")
        if lab.size != 1:
            raise TypeError("label must be one integer")
        s = int(shard_of(lab, self.n_shards)[0])
        self._on_one(s, "mark_deleted", (int(lab[0]),), write=True)

    def unmark_deleted(self, label):
        """Makes a deleted element searchable again, in its shard."""
        self._need()
        lab = as_labels(label, "label")
        if lab.size != 1:
            raise TypeError("label must be one integer")
        s = int(shard_of(lab, self.n_shards)[0])
        self._on_one(s, "unmark_deleted", (int(lab[0]),), write=True)

    def resize_index(self, new_size):
        """Changes max_elements (RuntimeError below the number stored)."""
        new_size = _count(new_size, "new_size")
        if new_size < self.get_current_count():
            raise RuntimeError("Cannot resize, max element is less than the current number "
                               "of elements")
        self._on_all("resize_index", (new_size,))
        self._max_elements = new_size
        if self._params:
            self._params["max_elements"] = new_size

    def set_ef(self, ef):
        """Sets ef on every shard (kept in saves, applied to reloaded shards)."""
        ef = _count(ef, "ef")
        self._on_all("set_ef", (ef,))
        self._ef = ef

    @property
    def ef(self):
        return self._ef

    @ef.setter
    def ef(self, value):
        self.set_ef(value)

    def set_num_threads(self, num_threads):
        """Threads each shard uses for an insert; -1 (the default) shares each
        worker's threads among its shards. Queries use one thread per task."""
        self._num_threads = int(num_threads)

    # -- searching ---------------------------------------------------------

    def knn_query(self, data, k=1, num_threads=-1, filter=None, compute=True):
        """The k nearest elements of each query over all shards, closest first.

        Every shard answers every query (its own top k, with exact
        distances), in chunks of chunk_size queries, and the answers are
        merged. filter: as in hnswc.Index (a callable, shipped to the
        workers; an array of allowed labels, of which each shard gets its
        own; a boolean mask indexed by label).
        num_threads: threads per chunk task (default 1: the chunks run in
          parallel on the workers' threads).
        compute: False returns a Dask future of (labels, distances).

        Returns (labels, distances) of shape (n, k). RuntimeError when fewer
        than k elements match a query, as hnswc.Index. If a shard's worker is
        lost, the shard is reloaded from the last save and its part of the
        batch run again; if it cannot be, ShardLostError names the shard.
        """
        self._need()
        k = _count(k, "k")
        q = _vectors(data, self.dim, "query vectors")
        n = q.shape[0]
        if n == 0 or k == 0:
            return (np.zeros((n, k), dtype=np.uint64), np.zeros((n, k), dtype=np.float32))
        threads = num_threads if num_threads and num_threads > 0 else 1
        filters = _filter_parts(filter, self.n_shards)
        if q.nbytes * self.n_shards > INLINE_BYTES:
            qarg = self.client.scatter(q, broadcast=True, hash=False)
        else:
            qarg = None
        chunks = [(a, min(n, a + self.chunk_size)) for a in range(0, n, self.chunk_size)]

        def submit(s, a, b):
            def go(h):
                src, lo, hi = (qarg, a, b) if qarg is not None else (q[a:b], 0, b - a)
                return self._submit("query", _shard.task_query, h, src, lo, hi, k,
                                    filters[s], threads, self._after(s))
            return go

        if not compute:
            futures = [submit(s, a, b)(self._handles[s]) for a, b in chunks
                       for s in range(self.n_shards)]
            return self.client.submit(merge_chunks, k, self.n_shards, *futures,
                                      key="hnswc-merge-%s" % uuid.uuid4().hex, pure=False)
        jobs = {(c, s): (s, submit(s, a, b)) for c, (a, b) in enumerate(chunks)
                for s in range(self.n_shards)}
        res = self._complete(jobs)
        out = [merge_topk([res[(c, s)] for s in range(self.n_shards)], k)
               for c in range(len(chunks))]
        if len(out) == 1:
            return out[0]
        return np.concatenate([o[0] for o in out]), np.concatenate([o[1] for o in out])

    # -- reading -----------------------------------------------------------

    def get_items(self, ids, return_type="numpy"):
        """The stored vectors of labels `ids`, in that order, each read from
        its shard (RuntimeError 'Label not found' as in hnswc.Index)."""
        self._need()
        if return_type not in ("numpy", "list"):
            raise ValueError("return_type must be 'numpy' or 'list'")
        labels = as_labels(ids)
        where = shard_of(labels, self.n_shards)
        out = np.zeros((labels.shape[0], self.dim), dtype=np.float32)
        jobs = {}
        for s in np.unique(where).tolist():
            want = labels[where == s]
            jobs[s] = (s, lambda h, s=s, want=want: self._submit(
                "getitems", _shard.task_call, h, "get_items", (want,), self._after(s)))
        res = self._complete(jobs)
        for s, (vecs, _) in res.items():
            out[where == s] = vecs
        return out.tolist() if return_type == "list" else out

    def get_ids_list(self):
        """Every label in the index (live and deleted), shard after shard."""
        return [lab for ids, _ in self._on_all("get_ids_list") for lab in ids]

    def _totals(self):
        return [st for _, st in self._on_all("get_info")]

    def get_current_count(self):
        """Elements stored in all shards (live and deleted)."""
        return sum(st["element_count"] for st in self._totals())

    @property
    def element_count(self):
        return self.get_current_count()

    @property
    def live_count(self):
        return sum(st["live_count"] for st in self._totals())

    @property
    def deleted_count(self):
        return sum(st["deleted_count"] for st in self._totals())

    def get_max_elements(self):
        return self._max_elements

    @property
    def max_elements(self):
        return self._max_elements

    def get_info(self):
        """Per-shard hnswc.Index.get_info() dicts (with 'shard' and 'worker'),
        and the totals."""
        infos = []
        for s, (info, _) in enumerate(self._on_all("get_info")):
            infos.append(dict(info, shard=s, worker=self._handles[s].owner))
        return {"n_shards": self.n_shards, "element_count": sum(i["element_count"] for i in infos),
                "live_count": sum(i["live_count"] for i in infos),
                "memory_bytes": sum(i["memory_bytes"] for i in infos),
                "mapped_bytes": sum(i.get("mapped_bytes", 0) for i in infos), "shards": infos}

    @staticmethod
    def shard_of(labels, n_shards):
        """The shard of each label for an index of n_shards shards."""
        return shard_of(labels, n_shards)

    # -- losing workers ----------------------------------------------------

    def recover(self, allow_loss=False):
        """Checks every shard and reloads from the last save those whose
        worker is gone. Without allow_loss, a shard written to since that
        save raises ShardLostError (its newer writes would be lost)."""
        self._on_all("get_info", allow_loss=allow_loss)

    # -- saving and loading --------------------------------------------------

    def save_index(self, path):
        """Saves to directory `path`: one file per shard and manifest.json.

        The directory must be reachable by the workers under the same path
        (one host, or a shared file system); the client needs no access.
        Shard files carry a save id, and the manifest (with each file's size
        and SHA-256) is replaced atomically after all of them are written, so
        a crash mid-save leaves the previous save loadable; the files of the
        previous save are removed after. Lost shards are reloaded from the
        previous save first if they can be (see knn_query).
        """
        self._need()
        directory = os.path.abspath(os.fspath(path))
        save_id = uuid.uuid4().hex[:12]
        dirty = list(self._dirty)
        jobs = {}
        for s in range(self.n_shards):
            name = "shard-%05d-%s.hnswc" % (s, save_id)
            jobs[s] = (s, lambda h, s=s, name=name: self._submit(
                "save", _shard.task_save, h, directory, name, self._after(s)))
        res = self._complete(jobs)
        entries = [res[s] for s in range(self.n_shards)]
        manifest = {
            "format": FORMAT, "version": FORMAT_VERSION, "hnswc_version": hnswc.__version__,
            "save_id": save_id, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "space": self.space, "dim": self.dim, "params": self._params, "ef": self._ef,
            "max_elements": self._max_elements,
            "routing": {"function": ROUTING, "n_shards": self.n_shards},
            "shards": entries,
        }
        text = json.dumps(manifest, indent=1, sort_keys=True) + "\n"
        self.client.submit(_shard.task_write_manifest, directory, text,
                           [e["file"] for e in entries], key="hnswc-manifest-%s"
                           % uuid.uuid4().hex, pure=False).result()
        self._saved = {"directory": directory, "shards": entries}
        for s in range(self.n_shards):
            self._dirty[s] = max(0, self._dirty[s] - dirty[s])
        return manifest

    @classmethod
    def load(cls, path, client=None, max_elements=0, allow_replace_deleted=None, chunk_size=1024,
             mmap=None):
        """Opens an index saved by save_index, on this client's cluster
        (which may differ from the one that saved it, in size too).

        mmap: True opens every shard in place (hnswc.Index.load_index with
        mmap=True: the vectors stay in the file's pages, in the page cache
        of the worker's host); False reads them into the worker; None (the
        default) maps the shards of workers that share their host with
        another worker of the cluster, where one page cache serves them all
        and a shard reloaded on a neighbour after a worker died reopens from
        pages already there. Results are the same either way. The choice
        holds for the shards reloaded after a worker is lost, too."""
        client = client if client is not None else default_client()
        manifest = read_manifest(path, client)
        self = cls(manifest["space"], manifest["dim"], n_shards=manifest["routing"]["n_shards"],
                   client=client, chunk_size=chunk_size)
        self._mmap = mmap
        self._open(path, manifest, max_elements, allow_replace_deleted)
        return self

    def load_index(self, path_to_index, max_elements=0, allow_replace_deleted=None, mmap=None):
        """Loads a saved index into this (uninitialised) object; its space and
        dim must match the manifest's. mmap: as in load."""
        if self._handles is not None:
            raise RuntimeError("The index is already initiated.")
        manifest = read_manifest(path_to_index, self.client)
        if manifest["space"] != self.space or manifest["dim"] != self.dim:
            raise RuntimeError("hnswc.dask: %s holds a %s index of dim %d, not %s of dim %d"
                               % (path_to_index, manifest["space"], manifest["dim"],
                                  self.space, self.dim))
        self._mmap = mmap
        self._open(path_to_index, manifest, max_elements, allow_replace_deleted)

    def _use_mmap(self, owner):
        """Whether the shard loaded on worker `owner` is mapped (see load)."""
        if self._mmap is not None:
            return bool(self._mmap)
        workers = self.client.scheduler_info().get("workers", {})
        host = workers.get(owner, {}).get("host")
        return host is not None and sum(w.get("host") == host for w in workers.values()) > 1

    def _open(self, path, manifest, max_elements, allow_replace_deleted):
        directory = os.path.abspath(os.fspath(path))
        n = manifest["routing"]["n_shards"]
        self.n_shards = n
        self._params = dict(manifest["params"])
        if allow_replace_deleted is not None:
            self._params["allow_replace_deleted"] = bool(allow_replace_deleted)
        self._max_elements = max(_count(max_elements, "max_elements"), manifest["max_elements"])
        self._params["max_elements"] = self._max_elements
        self._ef = manifest["ef"]
        workers = self._workers()
        self._handles = [ShardHandle(self._id, s, 1, workers[s % len(workers)]) for s in range(n)]
        futures = []
        for s, h in enumerate(self._handles):
            futures.append(self._submit("load", _shard.task_load, h, self.space, self.dim,
                                        directory, manifest["shards"][s], self._ef,
                                        self._threads(s), self._max_elements,
                                        self._allow_replace_deleted(), self._use_mmap(h.owner)))
        try:
            self.client.gather(futures)
        except BaseException:
            self.client.cancel(futures)
            self._drop()
            self._handles = None
            raise
        self._tail = [None] * n
        self._dirty = [0] * n
        self._saved = {"directory": directory, "shards": list(manifest["shards"])}

    # -- freeing -------------------------------------------------------------

    def _drop(self):
        # Loose restrictions: a drop sent to a dead worker runs elsewhere as a
        # no-op (task_drop only forgets what its own worker holds), not never.
        futures = [self._submit("drop", _shard.task_drop, h) for h in self._handles or []]
        try:
            self.client.gather(futures)
        except Exception:
            pass  # best effort: a shard on a dead worker is gone anyway

    def close(self):
        """Frees the shards on the workers. The object is unusable after."""
        if self._handles is not None:
            self._drop()
            self._handles = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _route_block(block, ids, start, shard, n_shards):
    """Task: the rows of one dask.array block that go to `shard`, checked."""
    data, labels = _shard.take_rows(block, ids, start, shard, n_shards)
    if not np.isfinite(np.asarray(data, dtype=np.float32)).all():
        raise ValueError("add_items: a block of the dask array contains NaN or infinity")
    return np.ascontiguousarray(data, dtype=np.float32), labels


# ---------------------------------------------------------------------------
# The manifest
# ---------------------------------------------------------------------------

def read_manifest(path, client):
    """Reads and validates directory `path`'s manifest (through a worker)."""
    directory = os.path.abspath(os.fspath(path))
    text = client.submit(_shard.task_read_manifest, directory,
                         key="hnswc-manifest-%s" % uuid.uuid4().hex, pure=False).result()
    return check_manifest(text, directory)


def check_manifest(text, where="manifest"):
    """The manifest dict, after checking every field a loader relies on."""
    def bad(why):
        return RuntimeError("hnswc.dask: %s is not a valid sharded-index manifest: %s"
                            % (where, why))
    try:
        m = json.loads(text)
    except ValueError as e:
        raise bad("not JSON (%s)" % e) from None
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        raise bad("format is not %r" % FORMAT)
    if not isinstance(m.get("version"), int) or m["version"] > FORMAT_VERSION or m["version"] < 1:
        raise bad("version %r is not supported (this hnswc reads up to %d)"
                  % (m.get("version"), FORMAT_VERSION))
    if m.get("space") not in SPACES:
        raise bad("space %r" % m.get("space"))
    for key in ("dim", "ef", "max_elements"):
        if not isinstance(m.get(key), int) or isinstance(m.get(key), bool) or m[key] < 0:
            raise bad("%s %r" % (key, m.get(key)))
    if m["dim"] < 1:
        raise bad("dim 0")
    if not isinstance(m.get("params"), dict):
        raise bad("no params")
    routing = m.get("routing")
    if not isinstance(routing, dict) or routing.get("function") != ROUTING:
        raise bad("unknown routing %r (this hnswc knows %r)" % (routing, ROUTING))
    n = routing.get("n_shards")
    shards = m.get("shards")
    if not isinstance(n, int) or n < 1 or not isinstance(shards, list) or len(shards) != n:
        raise bad("n_shards %r does not match %d shard entries"
                  % (n, len(shards) if isinstance(shards, list) else 0))
    for s, e in enumerate(shards):
        if not isinstance(e, dict) or e.get("shard") != s:
            raise bad("shard entry %d is out of order" % s)
        if not isinstance(e.get("file"), str) or not _shard.SHARD_FILE.match(e["file"]):
            raise bad("shard %d: file name %r" % (s, e.get("file")))
        sha = e.get("sha256")
        if not isinstance(sha, str) or len(sha) != 64 or set(sha) - set("0123456789abcdef"):
            raise bad("shard %d: sha256 %r" % (s, sha))
        for key in ("bytes", "element_count", "live_count"):
            if not isinstance(e.get(key), int) or e[key] < 0:
                raise bad("shard %d: %s %r" % (s, key, e.get(key)))
    return m
