/*
 * common.h -- helpers shared by the parts of the hnswc._hnswc extension.
 *
 * The extension is written against the CPython C API and NumPy's C API
 * only (no pybind11, no Cython). It has five translation units:
 *
 *   module.c   the module object, imports NumPy's C API;
 *   index.c    hnswc.Index, the HNSW index (a wrapper of libhnswc);
 *   bfindex.c  hnswc.BFIndex, the exact (brute-force) index;
 *   inspect.c  Index's methods that look inside the graph (levels, links,
 *              traced searches) for hnswc.viz;
 *   removal.c  Index's remove_items, compact and range_query;
 *
 * and this header plus common.c for what they share: the start of both
 * objects (hpy_base) and the members that only use it, turning Python
 * arguments into C arrays, turning hnswc status codes into exceptions, the
 * per-object reader/writer lock, the search filters, and what add_items,
 * get_items and knn_query do around their own work.
 *
 * Locking rule, in one place: any code that may block (a C call that takes
 * library locks, waiting for our own rwlock) runs with the GIL released.
 * A search with a Python filter must take the GIL back inside the filter,
 * so a thread that held the GIL while it blocked could deadlock with it.
 */
#ifndef HNSWC_PY_COMMON_H
#define HNSWC_PY_COMMON_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* One NumPy API table for the whole extension; module.c imports it. */
#define PY_ARRAY_UNIQUE_SYMBOL hnswc_numpy_api
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "hnswc.h"

/* ------------------------------------------------------------------------
 * Types defined by index.c and bfindex.c, registered by module.c
 * ------------------------------------------------------------------------ */

extern PyTypeObject HnswcIndex_Type;
extern PyTypeObject HnswcBFIndex_Type;

/* ------------------------------------------------------------------------
 * The part both index objects share
 *
 * IndexObject and BFIndexObject start with an hpy_base (as every object
 * starts with a PyObject), so the helpers below serve both: a pointer to
 * either object is also a pointer to its hpy_base. Fields are only touched
 * with the GIL held; `lock` is described further down.
 * ------------------------------------------------------------------------ */

typedef struct hpy_base {
    PyObject_HEAD
    pthread_rwlock_t lock;      /* guards the C state (see below)             */
    int ready;                  /* __init__ ran: metric and dim are valid      */
    hnswc_metric metric;
    int dim;
    uint64_t max_elements;      /* BFIndex: hnswlib's limit (Index: the library's) */
    uint64_t next_label;        /* hnswlib's cur_l: labels for ids=None        */
    int num_threads;            /* default thread count; <= 0 means all cores  */
} hpy_base;

/*
 * tp_new of both types: allocates, initialises the lock, defaults
 * num_threads to every CPU. Returns NULL with MemoryError on failure.
 * hpy_base_dealloc ends their tp_dealloc, after they freed their C state.
 */
PyObject *hpy_base_new(PyTypeObject *type);
void hpy_base_dealloc(hpy_base *b);

/* RuntimeError "hnswc.<class>.__init__ was not called" unless __init__ ran;
 * 0 or -1. */
int hpy_check_ready(hpy_base *b);

/*
 * Entry check of methods that need the C state: __init__ ran, the call does
 * not come from this object's own search filter, and `has_state` (the index
 * was initialised by init_index or load_index). 0, or -1 with RuntimeError.
 */
int hpy_need(hpy_base *b, int has_state, const char *method);

/* ValueError unless 1 <= dim <= 65536; 0 or -1. */
int hpy_check_dim(long dim);

/* Shared members: repr, the dim and num_threads properties, the
 * set_num_threads method, and __reduce__ given the object's state dict
 * (which it steals). */
PyObject *hpy_repr(hpy_base *b);
PyObject *hpy_get_dim(hpy_base *b, void *closure);
PyObject *hpy_get_num_threads(hpy_base *b, void *closure);
int hpy_set_num_threads_prop(hpy_base *b, PyObject *value, void *closure);
PyObject *hpy_set_num_threads(hpy_base *b, PyObject *args, PyObject *kwds);
PyObject *hpy_reduce(hpy_base *b, PyObject *state);

/* ------------------------------------------------------------------------
 * Spaces
 * ------------------------------------------------------------------------ */

/*
 * Parses hnswlib's space names ("l2", "ip", "cosine") into *metric.
 * Raises RuntimeError (hnswlib's type for this) and returns -1 otherwise.
 */
int hpy_parse_space(PyObject *space, hnswc_metric *metric);

/* The hnswlib name of a metric: "l2", "ip" or "cosine". */
const char *hpy_space_name(hnswc_metric metric);

/* ------------------------------------------------------------------------
 * Errors
 * ------------------------------------------------------------------------ */

/*
 * Raises the exception for a failed hnswc call and returns NULL. Must run on
 * the thread that made the failed call (the library keeps messages per
 * thread). `what` prefixes the message ("add_items", "load_index"...).
 * Types: MemoryError for HNSWC_ERR_NOMEM; ValueError for bad arguments and
 * non-finite vectors; RuntimeError for the rest, as hnswlib does.
 */
PyObject *hpy_raise_status(hnswc_status status, const char *what);

/* The RuntimeError for a method called before init_index/load_index. */
PyObject *hpy_not_initialised(const char *cls, const char *method);

/* ------------------------------------------------------------------------
 * Argument conversion
 * ------------------------------------------------------------------------ */

/*
 * "O&" converters. hpy_conv_u64: a non-negative integer (anything with
 * __index__, not a float) into a uint64_t. Negative values and non-integers
 * raise TypeError, as hnswlib's size_t parameters do.
 * hpy_conv_size does the same into a size_t.
 */
int hpy_conv_u64(PyObject *obj, void *out);
int hpy_conv_size(PyObject *obj, void *out);

/*
 * Converts `data` (any array-like of any numeric dtype, 1-D for one vector
 * or 2-D for a batch) into a fresh C-contiguous float32 copy with `dim`
 * columns. Returns the new array (a new reference) and sets *rows, or
 * returns NULL with an exception: RuntimeError for a wrong number of
 * dimensions or columns (hnswlib's types), NumPy's own error when the data
 * is not numeric. The copy is ours, so it can be read with the GIL released.
 * `what` names the data in messages ("vectors", "query vectors").
 */
PyArrayObject *hpy_float_matrix(PyObject *data, int dim, const char *what, size_t *rows);

/*
 * Converts `ids` for a batch of `rows` vectors into a fresh contiguous
 * uint64 array (a new reference): a 1-D array of length rows, or a scalar
 * when rows == 1. Values are cast as NumPy casts to uint64 (as hnswlib
 * does). Wrong shape: RuntimeError.
 */
PyArrayObject *hpy_label_array(PyObject *ids, size_t rows);

/*
 * add_items' two arrays: `data` through hpy_float_matrix (b->dim columns,
 * "vectors"), and one label per row: `ids` through hpy_label_array or, for
 * ids=None, hnswlib's running counter b->next_label, b->next_label + 1...
 * (the caller advances it once the batch is taken). Returns 0 and two new
 * references, or -1 with an exception and none.
 */
int hpy_add_arrays(const hpy_base *b, PyObject *data, PyObject *ids, PyArrayObject **vecs,
                   PyArrayObject **labels, size_t *rows);

/* ------------------------------------------------------------------------
 * get_items' frame
 * ------------------------------------------------------------------------ */

/* Parses get_items(ids=None, return_type='numpy'): *as_list for 'list',
 * ValueError for anything but 'numpy' or 'list'. 0 or -1. */
int hpy_items_args(PyObject *args, PyObject *kwds, PyObject **ids, int *as_list);

/*
 * `ids` as a fresh C-contiguous uint64 array *lab of *n labels (NULL and
 * 0 for None; any shape, read flat in C order, so the (n, 1) labels of
 * knn_query work as in hnswlib), and an uninitialised (n, dim) float32
 * array *out for their vectors. Returns 0 and new references, or -1 with
 * an exception and none (ValueError for a scalar, as hnswlib).
 */
int hpy_items_arrays(PyObject *ids, int dim, PyArrayObject **lab, PyArrayObject **out,
                     size_t *n);

/* Returns `out` (stolen) as it is, or as a list of lists for as_list. */
PyObject *hpy_items_result(PyArrayObject *out, int as_list);

/* hnswlib's RuntimeError "Label not found"; returns NULL. */
PyObject *hpy_label_not_found(void);

/* Number of CPUs online (at least 1). */
unsigned hpy_cpu_count(void);

/*
 * The threads to use for a batch of `rows`: `requested` if > 0, else the
 * object's default `dflt` if > 0, else every CPU; and 1 when the batch is
 * too small for threads to pay off (rows <= 4 * threads, hnswlib's rule).
 * Never more than rows.
 */
unsigned hpy_batch_threads(int requested, int dflt, size_t rows);

/* ------------------------------------------------------------------------
 * The per-object reader/writer lock
 *
 * It guards the object's C state against being replaced or freed while a
 * call that released the GIL still uses it. Readers: every call that uses
 * the state (the library does its own locking between them). Writers: calls
 * that replace the state (load_index), or that the library says must not
 * overlap with writers (save, serialize). Both functions block with the GIL
 * released and return with it held.
 * ------------------------------------------------------------------------ */

void hpy_lock_read(pthread_rwlock_t *lock);
void hpy_lock_write(pthread_rwlock_t *lock);
void hpy_unlock(pthread_rwlock_t *lock);

/* The index's parameters and counts, or zeros when `ix` is NULL. Called with
 * the GIL held, which keeps the object's index from being replaced meanwhile. */
hnswc_info hpy_info(const hnswc_index *ix);

/* Puts `fresh` (may be NULL) in `*slot`, the object's index guarded by
 * `lock`, and frees the index it held once calls still using it are done
 * (taking the lock for writing waits for them); the free runs with the GIL
 * released. Index and BFIndex both replace their state this way. */
void hpy_install(pthread_rwlock_t *lock, hnswc_index **slot, hnswc_index *fresh);

/* save_index's shared tail: saves *slot (the object's index, guarded by
 * `lock`) to the file named by `path` (bytes from PyUnicode_FSConverter,
 * whose reference this consumes) with the GIL released, holding the lock
 * for writing when `exclusive` (the library allows no adds during a graph
 * index's save) and for reading otherwise (a flat index saves alongside
 * adds). Returns None, or NULL with RuntimeError. */
PyObject *hpy_save(pthread_rwlock_t *lock, hnswc_index **slot, PyObject *path, int exclusive);

/* A new index from `blob` (an object with the buffer protocol holding what
 * hnswc_serialize wrote; the GIL is released while it is parsed): 0 with
 * *out set, or -1 with a Python exception ("Unpickle Error: ..."). Used by
 * the __setstate__ of Index and BFIndex. */
int hpy_deserialize(PyObject *blob, hnswc_index **out);

/* ------------------------------------------------------------------------
 * Search filters
 *
 * knn_query's `filter` argument, in one of three forms:
 *   - a Python callable taking a label and returning truthy to allow it
 *     (hnswlib's form): called with the GIL, from the calling thread only;
 *   - an array-like of integers: the allowed labels (a library
 *     hnswc_labelset over a private copy, searched without the GIL);
 *   - an array-like of booleans: a mask indexed by label (labels beyond its
 *     end are not allowed), without the GIL.
 * ------------------------------------------------------------------------ */

typedef enum hpy_filter_kind {
    HPY_FILTER_NONE = 0,
    HPY_FILTER_CALLABLE,
    HPY_FILTER_IDS,
    HPY_FILTER_MASK
} hpy_filter_kind;

typedef struct hpy_filter {
    hpy_filter_kind kind;
    PyObject *callable;        /* borrowed from the caller's arguments      */
    PyArrayObject *array;      /* owned: the sorted ids or the mask         */
    hnswc_labelset ids;        /* HPY_FILTER_IDS: the allowed labels (in array) */
    const npy_bool *mask;      /* HPY_FILTER_MASK                           */
    size_t mask_len;
    const void *owner;         /* the index being searched (re-entry guard) */
    int failed;                /* the callable raised: it is not called again */
    PyObject *exc_type, *exc_value, *exc_tb; /* what it raised              */
} hpy_filter;

/* hpy_knn_begin below prepares an hpy_filter, hpy_knn_finish and
 * hpy_knn_abort release it. A search outside that frame (range_query) uses
 * hpy_filter_begin (0, or -1 with TypeError/ValueError; call
 * hpy_filter_end either way) and hpy_filter_end (re-raises what a filter
 * callable raised and returns -1, else 0; frees the filter). GIL held. */
int hpy_filter_begin(hpy_filter *f, PyObject *filter, const void *owner);
int hpy_filter_end(hpy_filter *f);

/* The C filter function for *f (NULL for HPY_FILTER_NONE); user data is f. */
hnswc_filter_fn hpy_filter_fn(const hpy_filter *f);

/*
 * Non-zero while the calling thread runs the Python filter of `owner`: the
 * library forbids calling back into an index from its own filter (an add
 * there would wait for the search that called it), so methods check this
 * and raise RuntimeError instead of deadlocking.
 */
int hpy_in_filter_of(const void *owner);
PyObject *hpy_reentry_error(void);

/* ------------------------------------------------------------------------
 * knn_query's frame
 *
 * What the knn_query of both types do around their own search: parse the
 * arguments, hold the queries and the filter, allocate the (rows, k) result
 * arrays, and check and return them afterwards. Needs the GIL throughout,
 * except that the search may fill labels, dists and found without it.
 * ------------------------------------------------------------------------ */

/* Parses knn_query(data, k=1, num_threads=-1, filter=None); 0 or -1. */
int hpy_knn_args(PyObject *args, PyObject *kwds, PyObject **data, size_t *k, int *num_threads,
                 PyObject **filter);

typedef struct hpy_knn {
    PyArrayObject *queries;  /* owned: rows x dim float32                   */
    size_t rows, k;
    hpy_filter filter;
    PyArrayObject *labels;   /* owned: rows x k uint64, closest first       */
    PyArrayObject *dists;    /* owned: rows x k float32                     */
    size_t *found;           /* owned: results written per query;
                                (size_t)-1 means the search ran out of memory */
} hpy_knn;

/*
 * Takes over `queries` (a new reference, `rows` of them, even on failure),
 * prepares `filter` for the index `owner` and allocates the results.
 * Returns 0, or -1 with an exception; either way *q must then go to
 * hpy_knn_finish or hpy_knn_abort.
 */
int hpy_knn_begin(hpy_knn *q, PyArrayObject *queries, size_t rows, size_t k, PyObject *filter,
                  const void *owner);

/*
 * After the search, whose status is `st` (HNSWC_OK where there is none):
 * re-raises what a filter callable raised, then raises for `st` (see
 * hpy_raise_status), MemoryError for a query marked (size_t)-1, and
 * RuntimeError `too_few` for one with fewer than k results (found is only
 * read when k > 0). Returns (labels, distances), or NULL; releases *q.
 */
PyObject *hpy_knn_finish(hpy_knn *q, hnswc_status st, const char *too_few);

/* Releases *q on an error path (the exception is already set); NULL. */
PyObject *hpy_knn_abort(hpy_knn *q);

/*
 * knn_query(data, k=1, num_threads=-1, filter=None) of both types, whole:
 * parses and checks the arguments, then searches every query against *ixp
 * (the object's index, read under base's lock for reading) at the index's
 * default ef. A filter callable needs the GIL, so its searches run on this
 * thread, one query at a time, stopping at the first the callable raised
 * in; other filters and none go to hnswc_search_batch on
 * hpy_batch_threads(num_threads) threads. Returns (labels, distances), or
 * NULL with an exception; `too_few` is the RuntimeError of a query with
 * fewer than k results (see hpy_knn_finish). GIL held; released around the
 * search.
 */
PyObject *hpy_knn_query(hpy_base *base, hnswc_index *const *ixp, PyObject *args,
                        PyObject *kwds, const char *too_few);

/* ------------------------------------------------------------------------
 * Looking inside an Index (inspect.c)
 * ------------------------------------------------------------------------ */

/*
 * The C index of an hnswc.Index `self`, with the object's lock's read side
 * held so that it is neither replaced nor freed until hpy_index_release.
 * NULL with RuntimeError when the object has no index yet (or the call
 * comes from its own filter). Defined in index.c, which owns the object.
 */
hnswc_index *hpy_index_acquire(PyObject *self, const char *method);
void hpy_index_release(PyObject *self);

/* Index.get_level, Index.get_links, Index.knn_query_trace (hnswc extensions). */
PyObject *hpy_index_get_level(PyObject *self, PyObject *args, PyObject *kwds);
PyObject *hpy_index_get_links(PyObject *self, PyObject *args, PyObject *kwds);
PyObject *hpy_index_knn_query_trace(PyObject *self, PyObject *args, PyObject *kwds);

/* ------------------------------------------------------------------------
 * True removal and range search (removal.c)
 * ------------------------------------------------------------------------ */

/* Index.remove_items, Index.compact, Index.range_query (hnswc extensions);
 * their docstrings are in removal.c (hpy_*_doc). */
PyObject *hpy_index_remove_items(PyObject *self, PyObject *args, PyObject *kwds);
PyObject *hpy_index_compact(PyObject *self, PyObject *args, PyObject *kwds);
PyObject *hpy_index_range_query(PyObject *self, PyObject *args, PyObject *kwds);
extern const char hpy_remove_items_doc[], hpy_compact_doc[], hpy_range_query_doc[];

#endif /* HNSWC_PY_COMMON_H */
