/*
 * index.c -- hnswc.Index: hnswlib's Index API over libhnswc.
 *
 * The object keeps what hnswlib keeps at the Python level (the space, the
 * dimension, the running label counter, the default ef and thread count)
 * and owns one hnswc_index once init_index or load_index has run. The
 * element limit (max_elements) is the library's (hnswc_options.max_elements):
 * it counts, reserves room for concurrent batches and saves it in files. Every behaviour that hnswlib 0.8 documents is reproduced,
 * including its exception types and messages; what hnswlib gets wrong
 * (crashes on an uninitialised index, no query dimension check, ef lost on
 * save/load, partial batches) is fixed without changing what correct code
 * sees.
 *
 * Thread safety: methods may be called from several Python threads at once.
 * add_items and knn_query release the GIL while the library works; the
 * object's rwlock (common.h) keeps the hnswc_index alive and unreplaced
 * while they do. Fields other than `ix` are only touched with the GIL held.
 */
#define NO_IMPORT_ARRAY
#include "common.h"

#include <stdlib.h>
#include <string.h>

#define DEFAULT_EF 10
#define HNSWC_EF_MAX ((size_t)1 << 31)

typedef struct {
    hpy_base base;              /* lock, space, dim, limit, label counter...    */
    hnswc_index *ix;            /* NULL until init_index/load_index             */
    int full;                   /* max_elements is 0: hnswlib's index that takes
                                   nothing (the library's 0 means "no limit"),
                                   only ever set while ix holds no element     */
    size_t ef;                  /* default ef, also before init_index           */
    int allow_replace_deleted;
    uint64_t seed;
} IndexObject;

#define SER_VERSION 1

/* What an index can hold at most (hnswc.h: "2^32 - 2"): the limit reported
 * for an index without one (a file of format 1 or 2, max_elements 0 in
 * formats 3 and 4, or made in C). */
#define NO_LIMIT ((uint64_t)UINT32_MAX - 1)

/* ------------------------------------------------------------------------
 * Small helpers
 * ------------------------------------------------------------------------ */

/* The ef given to the library: it wants 1 .. 2^31; 0 would mean "default".
 * hnswlib searches with max(ef, k), and so does hnswc, so clamping up to 1
 * changes nothing. */
static size_t lib_ef(size_t ef)
{
    if (ef < 1)
        return 1;
    return ef > HNSWC_EF_MAX ? HNSWC_EF_MAX : ef;
}

static int check_ready(IndexObject *self)
{
    return hpy_check_ready(&self->base);
}

/* Entry check for methods that need the C index. */
static int need_index(IndexObject *self, const char *method)
{
    return hpy_need(&self->base, self->ix != NULL, method);
}

/* common.h: the C index for inspect.c, read lock held until release. */
hnswc_index *hpy_index_acquire(PyObject *obj, const char *method)
{
    IndexObject *self = (IndexObject *)obj;
    if (need_index(self, method) < 0)
        return NULL;
    hpy_lock_read(&self->base.lock);
    if (self->ix == NULL) { /* replaced while we waited for the lock */
        hpy_unlock(&self->base.lock);
        hpy_not_initialised("Index", method);
        return NULL;
    }
    return self->ix;
}

void hpy_index_release(PyObject *obj)
{
    hpy_unlock(&((IndexObject *)obj)->base.lock);
}

/* The C index's parameters and counts (zeros when there is none); GIL held. */
static hnswc_info index_info(const IndexObject *self)
{
    return hpy_info(self->ix);
}

/* Replaces the C index by `fresh` (may be NULL); see hpy_install. */
static void install_index(IndexObject *self, hnswc_index *fresh)
{
    hpy_install(&self->base.lock, &self->ix, fresh);
}

/* The max_elements hnswlib would report (0 before init_index). */
static uint64_t reported_limit(const IndexObject *self)
{
    if (self->ix == NULL || self->full)
        return 0;
    uint64_t m = index_info(self).max_elements;
    return m ? m : NO_LIMIT;
}

/*
 * Sets max_elements to n, as resize_index does: RuntimeError (hnswlib's
 * message) if the index holds more. 0 is kept as "full" here, since the
 * library reads 0 as no limit; it is only valid on an empty index. GIL held.
 */
static int set_limit(IndexObject *self, uint64_t n)
{
    hnswc_info info = index_info(self);
    hnswc_status st = n == 0 ? (info.count == 0 ? HNSWC_OK : HNSWC_ERR_INVALID)
                             : hnswc_set_max_elements(self->ix, n);
    if (st == HNSWC_ERR_INVALID) {
        PyErr_SetString(PyExc_RuntimeError,
                        "Cannot resize, max element is less than the current number of elements");
        return -1;
    }
    if (st != HNSWC_OK) {
        hpy_raise_status(st, "resize_index");
        return -1;
    }
    self->full = n == 0;
    return 0;
}

/* ------------------------------------------------------------------------
 * Creation: Index(space, dim), Index(index), Index(params)
 * ------------------------------------------------------------------------ */

static PyObject *Index_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    (void)args;
    (void)kwds;
    IndexObject *self = (IndexObject *)hpy_base_new(type);
    if (self == NULL)
        return NULL;
    self->ef = DEFAULT_EF;
    self->seed = 100;
    return (PyObject *)self;
}

static void Index_dealloc(IndexObject *self)
{
    if (self->ix != NULL)
        hnswc_free(self->ix);
    hpy_base_dealloc(&self->base);
}

static PyObject *Index_setstate(IndexObject *self, PyObject *state);
static PyObject *Index_getstate(IndexObject *self, PyObject *unused);

/* Sets space and dim and drops any previous C index (re-running __init__). */
static int init_space_dim(IndexObject *self, PyObject *space, PyObject *dim_obj)
{
    hnswc_metric metric;
    if (hpy_parse_space(space, &metric) < 0)
        return -1;
    if (!PyLong_Check(dim_obj) && !PyIndex_Check(dim_obj)) {
        PyErr_SetString(PyExc_TypeError, "dim must be an integer");
        return -1;
    }
    long dim = PyLong_AsLong(dim_obj);
    if (dim == -1 && PyErr_Occurred())
        return -1;
    /* dim=0 is hnswlib's placeholder: an Index that only load_index fills
     * (it takes the file's dimension); init_index refuses it. */
    if (dim != 0 && hpy_check_dim(dim) < 0)
        return -1;
    install_index(self, NULL);
    self->full = 0;
    self->base.metric = metric;
    self->base.dim = (int)dim;
    self->base.next_label = 0;
    self->ef = DEFAULT_EF;
    self->base.num_threads = (int)hpy_cpu_count();
    self->allow_replace_deleted = 0;
    self->seed = 100;
    self->base.ready = 1;
    return 0;
}

static int init_from_params(IndexObject *self, PyObject *params)
{
    PyObject *space = PyDict_GetItemString(params, "space");
    PyObject *dim = PyDict_GetItemString(params, "dim");
    if (space == NULL || dim == NULL) {
        PyErr_SetString(PyExc_ValueError, "params must hold 'space' and 'dim'");
        return -1;
    }
    if (init_space_dim(self, space, dim) < 0)
        return -1;
    PyObject *r = Index_setstate(self, params);
    if (r == NULL)
        return -1;
    Py_DECREF(r);
    return 0;
}

static int Index_init(IndexObject *self, PyObject *args, PyObject *kwds)
{
    Py_ssize_t nargs = PyTuple_GET_SIZE(args) + (kwds ? PyDict_GET_SIZE(kwds) : 0);
    if (hpy_in_filter_of(self)) {
        hpy_reentry_error();
        return -1;
    }
    if (nargs == 1) {
        /* Index(index) copies; Index(params) rebuilds from __getstate__'s dict. */
        static char *kwlist_index[] = {"index", NULL};
        static char *kwlist_params[] = {"params", NULL};
        PyObject *arg = NULL;
        if (PyTuple_GET_SIZE(args) == 1)
            arg = PyTuple_GET_ITEM(args, 0);
        else if (kwds && PyDict_GetItemString(kwds, "index"))
            PyArg_ParseTupleAndKeywords(args, kwds, "O:Index", kwlist_index, &arg);
        else if (kwds && PyDict_GetItemString(kwds, "params"))
            PyArg_ParseTupleAndKeywords(args, kwds, "O:Index", kwlist_params, &arg);
        if (arg != NULL && PyObject_TypeCheck(arg, &HnswcIndex_Type)) {
            if ((PyObject *)self == arg) {
                PyErr_SetString(PyExc_ValueError, "an Index cannot be initialised from itself");
                return -1;
            }
            PyObject *state = Index_getstate((IndexObject *)arg, NULL);
            if (state == NULL)
                return -1;
            int rc = init_from_params(self, state);
            Py_DECREF(state);
            return rc;
        }
        if (arg != NULL && PyDict_Check(arg))
            return init_from_params(self, arg);
        if (PyErr_Occurred())
            return -1;
    }
    static char *kwlist[] = {"space", "dim", NULL};
    PyObject *space, *dim;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO:Index", kwlist, &space, &dim))
        return -1;
    return init_space_dim(self, space, dim);
}

/* ------------------------------------------------------------------------
 * init_index
 * ------------------------------------------------------------------------ */

/* 'auto' or 'manual' (hnswc_relayout_policy); ValueError otherwise. */
static int relayout_parse(const char *s, const char *fn, hnswc_relayout_policy *out)
{
    if (strcmp(s, "auto") == 0) {
        *out = HNSWC_RELAYOUT_AUTO;
    } else if (strcmp(s, "manual") == 0) {
        *out = HNSWC_RELAYOUT_MANUAL;
    } else {
        PyErr_Format(PyExc_ValueError, "%s: relayout must be 'auto' or 'manual', got '%s'", fn, s);
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(init_index_doc,
"init_index($self, /, max_elements, M=16, ef_construction=200, random_seed=100,\n"
"           allow_replace_deleted=False, storage='f32', relayout='auto')\n--\n\n"
"Creates the empty index.\n\n"
"max_elements: how many elements (live and deleted) add_items accepts before\n"
"  it raises RuntimeError, as in hnswlib; resize_index moves the limit and\n"
"  save_index keeps it. The memory grows as elements arrive, so a generous\n"
"  limit costs nothing.\n"
"M: links per node (2*M on the bottom layer); 2 .. 2048.\n"
"ef_construction: beam width while building; larger is slower and better.\n"
"random_seed: seed of the level generator.\n"
"allow_replace_deleted: lets add_items(..., replace_deleted=True) reuse the\n"
"  slots of elements marked deleted.\n"
"storage: what the search walk reads (hnswc only; hnswlib has no such\n"
"  argument): 'f32' (the vectors) or 'sq8' (one byte per dimension, trained\n"
"  on the first 1,000 vectors added, with the vectors kept apart for an exact\n"
"  re-rank of the ef best: distances stay exact; faster search), or\n"
"  'sq8-only' (code-only, the smallest memory: as 'sq8', but once trained\n"
"  the f32 vectors are freed and none is kept, about a quarter of 'sq8's\n"
"  memory. APPROXIMATE: knn_query then returns distances to the DECODED\n"
"  vectors, not the exact ones, and get_items returns the decoded vectors;\n"
"  each component is within half a quantisation step of the original\n"
"  (hnswc.h, hnswc_storage). Exact until the first 1,000 vectors.)\n"
"relayout: when the nodes are renumbered in locality order for faster\n"
"  searches (hnswc only): 'auto' (an add_items call that leaves the index\n"
"  at least twice as large as at its last relayout, and at least 4,096\n"
"  elements, ends with one) or 'manual' (only by the relayout() method).\n"
"  Labels and results never change; internal ids (get_links, traces) do.\n\n"
"Raises RuntimeError if the index is already initialised, ValueError for an\n"
"M or ef_construction out of range.");

static PyObject *Index_init_index(IndexObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"max_elements", "M", "ef_construction", "random_seed",
                             "allow_replace_deleted", "storage", "relayout", NULL};
    uint64_t max_elements, M = 16, efc = 200, seed = 100;
    int allow = 0;
    const char *storage = "f32", *relayout = "auto";
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O&|O&O&O&pss:init_index", kwlist,
                                     hpy_conv_u64, &max_elements, hpy_conv_u64, &M,
                                     hpy_conv_u64, &efc, hpy_conv_u64, &seed, &allow, &storage,
                                     &relayout))
        return NULL;
    hnswc_relayout_policy relayout_policy;
    if (relayout_parse(relayout, "init_index", &relayout_policy) < 0)
        return NULL;
    hnswc_storage storage_mode;
    if (strcmp(storage, "f32") == 0) {
        storage_mode = HNSWC_STORAGE_F32;
    } else if (strcmp(storage, "sq8") == 0) {
        storage_mode = HNSWC_STORAGE_SQ8;
    } else if (strcmp(storage, "sq8-only") == 0) {
        storage_mode = HNSWC_STORAGE_SQ8_ONLY;
    } else {
        PyErr_Format(PyExc_ValueError,
                     "init_index: storage must be 'f32', 'sq8' or 'sq8-only', got '%s'", storage);
        return NULL;
    }
    if (check_ready(self) < 0)
        return NULL;
    if (hpy_in_filter_of(self))
        return hpy_reentry_error();
    if (self->ix != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "The index is already initiated.");
        return NULL;
    }
    if (self->base.dim == 0) {
        PyErr_SetString(PyExc_ValueError,
                        "init_index: this Index has dim=0, a placeholder that only load_index "
                        "fills; create it as Index(space, dim) with the vectors' dimension");
        return NULL;
    }
    if (M == 0) { /* the library reads 0 as "default"; here it is a mistake */
        PyErr_SetString(PyExc_ValueError, "init_index: M must be at least 2");
        return NULL;
    }
    if (M > UINT32_MAX || efc > UINT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "M and ef_construction must fit in 32 bits");
        return NULL;
    }
    hnswc_options o;
    memset(&o, 0, sizeof(o));
    o.dim = (uint32_t)self->base.dim;
    o.metric = self->base.metric;
    o.M = (uint32_t)M;
    o.ef_construction = efc > 0 ? (uint32_t)efc : 1; /* 0 would mean "default" */
    o.ef_search = (uint32_t)lib_ef(self->ef);
    o.seed = seed;
    o.storage = storage_mode;
    o.relayout = relayout_policy;
    /* A capacity hint only: the index grows by itself, so a huge
     * max_elements allocates nothing. */
    o.capacity = max_elements < 4096 ? max_elements : 4096;
    if (o.capacity == 0)
        o.capacity = 1;
    o.max_elements = max_elements; /* 0 ("no limit" there): see self->full */
    hnswc_index *ix = NULL;
    hnswc_status st = hnswc_create(&o, &ix);
    if (st != HNSWC_OK)
        return hpy_raise_status(st, "init_index");
    install_index(self, ix);
    self->full = max_elements == 0;
    self->base.next_label = 0;
    self->allow_replace_deleted = allow;
    self->seed = seed;
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------------
 * add_items
 * ------------------------------------------------------------------------ */

PyDoc_STRVAR(add_items_doc,
"add_items($self, /, data, ids=None, num_threads=-1, replace_deleted=False)\n--\n\n"
"Adds vectors to the index.\n\n"
"data: one vector (1-D) or a batch (2-D, one row per vector) of any numeric\n"
"  dtype; it is converted to float32. NaN or infinity raises ValueError and\n"
"  adds nothing.\n"
"ids: one label per row (integers); by default a running counter, as in\n"
"  hnswlib. A label already in the index has its vector replaced (and is\n"
"  undeleted if it was marked deleted).\n"
"num_threads: threads to use; -1 means the index's num_threads.\n"
"replace_deleted: new labels may take over slots of deleted elements\n"
"  (needs init_index(..., allow_replace_deleted=True)).\n\n"
"The GIL is released while the vectors are inserted. If the batch would\n"
"take the index past max_elements, RuntimeError is raised and nothing is\n"
"added.");

static PyObject *Index_add_items(IndexObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"data", "ids", "num_threads", "replace_deleted", NULL};
    PyObject *data, *ids = Py_None;
    int num_threads = -1, replace = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|Oip:add_items", kwlist, &data, &ids,
                                     &num_threads, &replace))
        return NULL;
    if (need_index(self, "add_items") < 0)
        return NULL;

    size_t rows;
    PyArrayObject *vecs, *labels;
    if (hpy_add_arrays(&self->base, data, ids, &vecs, &labels, &rows) < 0)
        return NULL;
    if (replace && !self->allow_replace_deleted) {
        PyErr_SetString(PyExc_RuntimeError,
                        "Replacement of deleted elements is disabled in constructor");
        goto fail;
    }
    if (rows == 0)
        goto done;

    if (self->full) { /* init_index(max_elements=0): hnswlib takes nothing */
        PyErr_SetString(PyExc_RuntimeError, "The number of elements exceeds the specified limit");
        goto fail;
    }

    hpy_lock_read(&self->base.lock);
    if (self->ix == NULL) { /* replaced by a concurrent call meanwhile */
        hpy_unlock(&self->base.lock);
        hpy_not_initialised("Index", "add_items");
        goto fail;
    }
    /* The library checks max_elements: it counts the batch's new labels and
     * holds that room while the batch runs, so a batch that does not fit is
     * refused whole and updates never count against the limit. */
    /* hnswlib advances its counter on every batch that went in; doing it
     * before the GIL is released keeps a concurrent ids=None batch from
     * taking the same labels, and a refused batch gives them back below */
    uint64_t label_before = self->base.next_label;
    self->base.next_label += rows;
    unsigned threads = hpy_batch_threads(num_threads, self->base.num_threads, rows);
    unsigned flags = replace ? HNSWC_ADD_REPLACE_DELETED : 0;
    const float *v = PyArray_DATA(vecs);
    const uint64_t *lab = PyArray_DATA(labels);
    hnswc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = hnswc_add_batch(self->ix, v, lab, rows, flags, threads, NULL);
    Py_END_ALLOW_THREADS
    hpy_unlock(&self->base.lock);
    if (st == HNSWC_ERR_FULL && self->base.next_label == label_before + rows)
        self->base.next_label = label_before; /* nothing was added */
    if (st == HNSWC_ERR_FULL) {
        PyErr_SetString(PyExc_RuntimeError, "The number of elements exceeds the specified limit");
        goto fail;
    }
    if (st != HNSWC_OK) {
        hpy_raise_status(st, "add_items");
        goto fail;
    }
done:
    Py_DECREF(vecs);
    Py_DECREF(labels);
    Py_RETURN_NONE;
fail:
    Py_DECREF(vecs);
    Py_DECREF(labels);
    return NULL;
}

/* ------------------------------------------------------------------------
 * knn_query
 * ------------------------------------------------------------------------ */

PyDoc_STRVAR(knn_query_doc,
"knn_query($self, /, data, k=1, num_threads=-1, filter=None)\n--\n\n"
"Finds the k nearest elements of each query, closest first.\n\n"
"data: one query (1-D) or a batch (2-D) of any numeric dtype.\n"
"k: neighbours per query. The beam width is max(ef, k).\n"
"num_threads: threads to use; -1 means the index's num_threads.\n"
"filter: restricts the results to some labels. Either a callable taking a\n"
"  label and returning True to allow it (hnswlib's form; called with the GIL\n"
"  on the calling thread, so the search runs on one thread), or, much\n"
"  faster and evaluated in C without the GIL, an array of allowed labels or\n"
"  a boolean mask indexed by label.\n\n"
"Returns (labels, distances): uint64 and float32 arrays of shape (n, k).\n"
"The distances are exact, except with storage='sq8-only' (once trained):\n"
"then they are APPROXIMATE, distances to the decoded vectors.\n"
"Raises RuntimeError when fewer than k elements can be returned for a query\n"
"(as hnswlib does), and when the query dimension is wrong.");

static PyObject *Index_knn_query(IndexObject *self, PyObject *args, PyObject *kwds)
{
    return hpy_knn_query(&self->base, &self->ix, args, kwds,
                         "Cannot return the results in a contiguous 2D array. "
                         "Probably ef or M is too small");
}

/* ------------------------------------------------------------------------
 * Deletion marks, ef, threads, limits
 * ------------------------------------------------------------------------ */

/* Runs fn(ix, label) with the GIL released under the read lock. */
static hnswc_status label_call(IndexObject *self, hnswc_status (*fn)(hnswc_index *, uint64_t),
                               uint64_t label)
{
    hnswc_status st;
    hpy_lock_read(&self->base.lock);
    if (self->ix == NULL) {
        hpy_unlock(&self->base.lock);
        return HNSWC_ERR_NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    st = fn(self->ix, label);
    Py_END_ALLOW_THREADS
    hpy_unlock(&self->base.lock);
    return st;
}

/*
 * mark_deleted and unmark_deleted: `method` with `fn` (hnswc_mark_deleted
 * or hnswc_unmark_deleted); `same_state` is hnswlib's message for a label
 * that already is as requested.
 */
static PyObject *deletion_mark(IndexObject *self, PyObject *args, PyObject *kwds,
                               const char *method, hnswc_status (*fn)(hnswc_index *, uint64_t),
                               const char *same_state)
{
    static char *kwlist[] = {"label", NULL};
    char format[32];
    snprintf(format, sizeof(format), "O&:%s", method);
    uint64_t label;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, format, kwlist, hpy_conv_u64, &label))
        return NULL;
    if (need_index(self, method) < 0)
        return NULL;
    hnswc_status st = label_call(self, fn, label);
    switch (st) {
    case HNSWC_OK: Py_RETURN_NONE;
    case HNSWC_ERR_NOT_FOUND: return hpy_label_not_found();
    case HNSWC_ERR_DELETED: PyErr_SetString(PyExc_RuntimeError, same_state); return NULL;
    case HNSWC_ERR_NULL: return hpy_not_initialised("Index", method);
    default: return hpy_raise_status(st, method);
    }
}

PyDoc_STRVAR(mark_deleted_doc,
"mark_deleted($self, /, label)\n--\n\n"
"Marks an element deleted: searches skip it, but it stays in the graph (and\n"
"counts towards max_elements) until a replace_deleted add takes its slot.\n"
"RuntimeError if the label is unknown or already deleted.");

static PyObject *Index_mark_deleted(IndexObject *self, PyObject *args, PyObject *kwds)
{
    return deletion_mark(self, args, kwds, "mark_deleted", hnswc_mark_deleted,
                         "The requested to delete element is already deleted");
}

PyDoc_STRVAR(unmark_deleted_doc,
"unmark_deleted($self, /, label)\n--\n\n"
"Makes a deleted element searchable again. RuntimeError if the label is\n"
"unknown or not deleted.");

static PyObject *Index_unmark_deleted(IndexObject *self, PyObject *args, PyObject *kwds)
{
    return deletion_mark(self, args, kwds, "unmark_deleted", hnswc_unmark_deleted,
                         "The requested to undelete element is not deleted");
}

/* Sets the default ef, also on the C index (where save_index keeps it). */
static int apply_ef(IndexObject *self, size_t ef)
{
    self->ef = ef;
    if (self->ix == NULL)
        return 0;
    hnswc_status st;
    hpy_lock_read(&self->base.lock);
    if (self->ix == NULL) {
        hpy_unlock(&self->base.lock);
        return 0;
    }
    Py_BEGIN_ALLOW_THREADS
    st = hnswc_set_ef(self->ix, lib_ef(ef));
    Py_END_ALLOW_THREADS
    hpy_unlock(&self->base.lock);
    if (st != HNSWC_OK) {
        hpy_raise_status(st, "set_ef");
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(set_ef_doc,
"set_ef($self, /, ef)\n--\n\n"
"Sets the beam width of searches (default 10). Larger ef: higher recall,\n"
"slower queries. A search uses max(ef, k). Kept by save_index and pickling.");

static PyObject *Index_set_ef(IndexObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"ef", NULL};
    size_t ef;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O&:set_ef", kwlist, hpy_conv_size, &ef))
        return NULL;
    if (check_ready(self) < 0)
        return NULL;
    if (hpy_in_filter_of(self))
        return hpy_reentry_error();
    if (apply_ef(self, ef) < 0)
        return NULL;
    Py_RETURN_NONE;
}

PyDoc_STRVAR(set_num_threads_doc,
"set_num_threads($self, /, num_threads)\n--\n\n"
"Sets the default number of threads of add_items and knn_query\n"
"(default: every CPU; a value <= 0 also means every CPU).");


PyDoc_STRVAR(resize_index_doc,
"resize_index($self, /, new_size)\n--\n\n"
"Changes max_elements. RuntimeError if new_size is below the number of\n"
"elements stored. (The memory grows on its own; this only moves the limit.)");

static PyObject *Index_resize_index(IndexObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"new_size", NULL};
    uint64_t n;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O&:resize_index", kwlist, hpy_conv_u64, &n))
        return NULL;
    if (need_index(self, "resize_index") < 0)
        return NULL;
    if (hpy_in_filter_of(self))
        return hpy_reentry_error();
    if (set_limit(self, n) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------------
 * Persistence
 * ------------------------------------------------------------------------ */

PyDoc_STRVAR(save_index_doc,
"save_index($self, /, path_to_index)\n--\n\n"
"Saves the index in hnswc's own file format (checksummed; the file is\n"
"replaced atomically). load_index reads it back, ef included. RuntimeError\n"
"if the file cannot be written.");

static PyObject *Index_save_index(IndexObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"path_to_index", NULL};
    PyObject *path = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O&:save_index", kwlist, PyUnicode_FSConverter,
                                     &path))
        return NULL;
    if (need_index(self, "save_index") < 0) {
        Py_DECREF(path);
        return NULL;
    }
    return hpy_save(&self->base.lock, &self->ix, path, 1); /* the library: no adds during a save */
}

PyDoc_STRVAR(load_index_doc,
"load_index($self, /, path_to_index, max_elements=0, allow_replace_deleted=False,\n"
"           mmap=False)\n--\n\n"
"Loads an index saved by save_index, or by hnswlib's save_index (versions\n"
"0.6 to 0.8: the file must match this Index's space and dim, which hnswlib\n"
"files do not record). Replaces the current contents only on success.\n\n"
"max_elements: the new limit; 0 (the default) or a value below the number\n"
"  of stored elements keeps the limit saved in the file (hnswlib's rule;\n"
"  hnswc and hnswlib files both record it). The label counter for\n"
"  ids=None restarts at the element count, as in hnswlib.\n"
"allow_replace_deleted: as in init_index.\n"
"mmap: hnswc extension. True opens an hnswc file in place (hnswc_open with\n"
"  HNSWC_OPEN_MMAP): only the metadata is read (parameters, labels, links;\n"
"  checked as always), the vectors are searched where they are in the\n"
"  file, in the page cache that every process opening it shares. Results\n"
"  are identical; everything else works as on a loaded index (a write to\n"
"  a mapped page copies it; the file never changes). The vectors' checksum\n"
"  is not verified at open. hnswlib files cannot be mapped (RuntimeError).\n"
"  The file must not be truncated or rewritten in place while it is open\n"
"  (save_index never does: it renames a new file over it).\n"
"  get_info()['mapped_bytes'] says how much is mapped.\n\n"
"Files saved by hnswc keep their ef; hnswlib files start at ef=10, as in\n"
"hnswlib. RuntimeError if the file is missing, corrupted, or of another\n"
"space or dimension.");

static PyObject *Index_load_index(IndexObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"path_to_index", "max_elements", "allow_replace_deleted", "mmap",
                             NULL};
    PyObject *path = NULL;
    uint64_t max_elements = 0;
    int allow = 0, mmap = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O&|O&pp:load_index", kwlist,
                                     PyUnicode_FSConverter, &path, hpy_conv_u64, &max_elements,
                                     &allow, &mmap))
        return NULL;
    if (check_ready(self) < 0 || (hpy_in_filter_of(self) && !hpy_reentry_error())) {
        Py_DECREF(path);
        return NULL;
    }
    const char *p = PyBytes_AS_STRING(path);
    hnswc_index *ix = NULL;
    hnswc_status st, st2 = HNSWC_OK;
    int from_hnswlib = 0, hnswlib_mapped = 0;
    char first_msg[512] = "";
    Py_BEGIN_ALLOW_THREADS
    st = hnswc_open(p, mmap ? HNSWC_OPEN_MMAP : 0, &ix);
    if (st == HNSWC_ERR_FORMAT && mmap) {
        /* hnswlib's files have no vector section to map: say so rather
         * than load it another way than asked */
        hnswc_file_info fi;
        hnswlib_mapped = hnswc_probe_file(p, &fi) == HNSWC_OK && fi.kind == HNSWC_FILE_HNSWLIB;
    } else if (st == HNSWC_ERR_FORMAT) {
        /* Not hnswc's format: maybe hnswlib's. Keep the first message in
         * case it is neither. */
        snprintf(first_msg, sizeof(first_msg), "%s", hnswc_errmsg(NULL));
        st2 = hnswc_load_hnswlib(p, self->base.metric, &ix);
        from_hnswlib = st2 == HNSWC_OK;
    }
    Py_END_ALLOW_THREADS
    if (hnswlib_mapped) {
        PyErr_Format(PyExc_RuntimeError, "load_index: %s is an hnswlib index, which cannot be "
                     "mapped: load it with mmap=False", p);
        Py_DECREF(path);
        return NULL;
    }
    if (st != HNSWC_OK && !from_hnswlib) {
        if (st == HNSWC_ERR_FORMAT && mmap) {
            hpy_raise_status(st, "load_index");
        } else if (st == HNSWC_ERR_FORMAT) {
            PyErr_Format(PyExc_RuntimeError,
                         "load_index: %s is neither an hnswc index (%s) nor an hnswlib "
                         "index (%s)", p, first_msg, hnswc_errmsg(NULL));
            (void)st2;
        } else {
            hpy_raise_status(st, "load_index");
        }
        Py_DECREF(path);
        return NULL;
    }
    hnswc_info info;
    hnswc_get_info(ix, &info);
    /* An Index made with dim=0 takes the file's dimension (hnswlib's
     * placeholder); otherwise both must match. */
    if (info.kind != HNSWC_KIND_HNSW ||
        (self->base.dim != 0 && info.dim != (uint32_t)self->base.dim) ||
        info.metric != self->base.metric) {
        PyErr_Format(PyExc_RuntimeError,
                     "load_index: %s holds %s '%s' index of dim %u, but this Index is '%s' "
                     "with dim %d", p, info.kind == HNSWC_KIND_HNSW ? "an HNSW" : "an exact",
                     hpy_space_name(info.metric), (unsigned)info.dim,
                     hpy_space_name(self->base.metric), self->base.dim);
        hnswc_free(ix);
        Py_DECREF(path);
        return NULL;
    }
    Py_DECREF(path);
    /* The file's limit stays unless max_elements says otherwise (it cannot
     * fail: max_elements is at least the count here) */
    if (max_elements != 0 && max_elements >= info.count)
        hnswc_set_max_elements(ix, max_elements);

    install_index(self, ix);
    self->full = 0;
    self->base.dim = (int)info.dim;
    self->base.next_label = info.count;
    self->ef = info.ef_search;
    self->allow_replace_deleted = allow;
    self->seed = info.seed;
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------------
 * Reading elements back
 * ------------------------------------------------------------------------ */

PyDoc_STRVAR(get_items_doc,
"get_items($self, /, ids=None, return_type='numpy')\n--\n\n"
"Returns the stored vectors of the given labels: a float32 array of shape\n"
"(n, dim) for return_type='numpy', a list of lists for 'list'. For the\n"
"cosine space these are the normalised vectors, as in hnswlib. With\n"
"storage='sq8-only' (once trained) they are the DECODED vectors, an\n"
"approximation of those added (no f32 copy is kept).\n\n"
"ids: any array-like of labels, read flat in C order (n = ids.size): the\n"
"  (n, 1) labels that knn_query returns give n vectors, as in hnswlib.\n\n"
"RuntimeError 'Label not found' for an unknown or deleted label;\n"
"ValueError for a scalar ids or an unknown return_type.");

static PyObject *Index_get_items(IndexObject *self, PyObject *args, PyObject *kwds)
{
    PyObject *ids;
    int as_list;
    if (hpy_items_args(args, kwds, &ids, &as_list) < 0)
        return NULL;
    if (need_index(self, "get_items") < 0)
        return NULL;
    PyArrayObject *lab, *out;
    size_t n;
    if (hpy_items_arrays(ids, self->base.dim, &lab, &out, &n) < 0)
        return NULL;
    if (n > 0) {
        const uint64_t *l = PyArray_DATA(lab);
        float *o = PyArray_DATA(out);
        size_t dim = (size_t)self->base.dim;
        hnswc_status st = HNSWC_OK;
        int deleted = 0;
        hpy_lock_read(&self->base.lock);
        Py_BEGIN_ALLOW_THREADS
        for (size_t i = 0; i < n && st == HNSWC_OK && !deleted; i++) {
            st = hnswc_is_deleted(self->ix, l[i], &deleted);
            if (st == HNSWC_OK && !deleted)
                st = hnswc_get_vector(self->ix, l[i], o + i * dim);
        }
        Py_END_ALLOW_THREADS
        hpy_unlock(&self->base.lock);
        if (st != HNSWC_OK || deleted) {
            Py_DECREF(lab);
            Py_DECREF(out);
            if (st == HNSWC_OK || st == HNSWC_ERR_NOT_FOUND)
                return hpy_label_not_found();
            return hpy_raise_status(st, "get_items");
        }
    }
    Py_XDECREF(lab);
    return hpy_items_result(out, as_list);
}

/* All labels, live and deleted, as a new uint64 array; NULL with an error. */
static PyArrayObject *all_labels(IndexObject *self)
{
    for (;;) {
        hnswc_info info = index_info(self);
        npy_intp n = (npy_intp)info.count;
        PyArrayObject *arr = (PyArrayObject *)PyArray_SimpleNew(1, &n, NPY_UINT64);
        if (arr == NULL)
            return NULL;
        size_t written = 0;
        hnswc_status st;
        hpy_lock_read(&self->base.lock);
        Py_BEGIN_ALLOW_THREADS
        st = hnswc_get_labels(self->ix, PyArray_DATA(arr), (size_t)n, &written);
        Py_END_ALLOW_THREADS
        hpy_unlock(&self->base.lock);
        if (st == HNSWC_ERR_INVALID) { /* grew meanwhile: try again */
            Py_DECREF(arr);
            continue;
        }
        if (st != HNSWC_OK) {
            Py_DECREF(arr);
            return (PyArrayObject *)hpy_raise_status(st, "get_ids_list");
        }
        if ((npy_intp)written < n) {
            PyArray_Dims d = {&n, 1};
            n = (npy_intp)written;
            PyObject *r = PyArray_Resize(arr, &d, 0, NPY_CORDER);
            if (r == NULL) {
                Py_DECREF(arr);
                return NULL;
            }
            Py_DECREF(r);
        }
        return arr;
    }
}

PyDoc_STRVAR(get_ids_list_doc,
"get_ids_list($self, /)\n--\n\n"
"Returns the labels of all elements, deleted ones included (as hnswlib).");

static PyObject *Index_get_ids_list(IndexObject *self, PyObject *unused)
{
    (void)unused;
    if (need_index(self, "get_ids_list") < 0)
        return NULL;
    PyArrayObject *arr = all_labels(self);
    if (arr == NULL)
        return NULL;
    PyObject *list = PyArray_ToList(arr);
    Py_DECREF(arr);
    return list;
}

PyDoc_STRVAR(get_current_count_doc,
"get_current_count($self, /)\n--\n\n"
"Number of elements stored, deleted ones included (as hnswlib).");

static PyObject *Index_get_current_count(IndexObject *self, PyObject *unused)
{
    (void)unused;
    if (need_index(self, "get_current_count") < 0)
        return NULL;
    return PyLong_FromUnsignedLongLong(index_info(self).count);
}

PyDoc_STRVAR(get_max_elements_doc,
"get_max_elements($self, /)\n--\n\n"
"The element limit (see init_index and resize_index).");

static PyObject *Index_get_max_elements(IndexObject *self, PyObject *unused)
{
    (void)unused;
    if (need_index(self, "get_max_elements") < 0)
        return NULL;
    return PyLong_FromUnsignedLongLong(reported_limit(self));
}

PyDoc_STRVAR(index_file_size_doc,
"index_file_size($self, /)\n--\n\n"
"Size in bytes of the file save_index would write now.");

/* Serialises the index (write lock: the library wants no adds meanwhile). */
static hnswc_status serialize(IndexObject *self, void **buf, size_t *size)
{
    hnswc_status st;
    hpy_lock_write(&self->base.lock);
    Py_BEGIN_ALLOW_THREADS
    st = hnswc_serialize(self->ix, buf, size);
    Py_END_ALLOW_THREADS
    hpy_unlock(&self->base.lock);
    return st;
}

static PyObject *Index_index_file_size(IndexObject *self, PyObject *unused)
{
    (void)unused;
    if (need_index(self, "index_file_size") < 0)
        return NULL;
    void *buf = NULL;
    size_t size = 0;
    hnswc_status st = serialize(self, &buf, &size);
    if (st != HNSWC_OK)
        return hpy_raise_status(st, "index_file_size");
    hnswc_buffer_free(buf);
    return PyLong_FromSize_t(size);
}

PyDoc_STRVAR(get_info_doc,
"get_info($self, /)\n--\n\n"
"hnswc extension: a dict describing the index (counts, parameters, graph\n"
"levels, memory, the bytes of a file mapped by load_index(mmap=True), the\n"
"SIMD kernels in use, the storage -- 'f32', 'sq8' or 'sq8-only' -- and\n"
"whether its codes are trained).");

static PyObject *Index_get_info(IndexObject *self, PyObject *unused)
{
    (void)unused;
    if (need_index(self, "get_info") < 0)
        return NULL;
    hnswc_info i = index_info(self);
    PyObject *d = Py_BuildValue(
        "{s:s,s:I,s:I,s:I,s:I,s:K,s:K,s:K,s:K,s:K,s:K,s:i,s:K,s:s}", "space",
        hpy_space_name(i.metric), "dim", (unsigned)i.dim, "M", (unsigned)i.M,
        "ef_construction", (unsigned)i.ef_construction, "ef", (unsigned)i.ef_search, "seed",
        (unsigned long long)i.seed, "element_count", (unsigned long long)i.count, "live_count",
        (unsigned long long)i.live_count, "deleted_count", (unsigned long long)i.deleted_count,
        "capacity", (unsigned long long)i.capacity, "max_elements",
        (unsigned long long)reported_limit(self), "max_level", (int)i.max_level, "memory_bytes",
        (unsigned long long)i.memory_bytes, "simd", i.simd ? i.simd : "");
    /* removal (remove_items, compact): slots and counts; a mapped file */
    const char *storage = i.storage == HNSWC_STORAGE_SQ8        ? "sq8"
                          : i.storage == HNSWC_STORAGE_SQ8_ONLY ? "sq8-only"
                                                                : "f32";
    PyObject *r = d ? Py_BuildValue("{s:K,s:K,s:K,s:K,s:K,s:s,s:N,s:s,s:K}", "removed_slots",
                                    (unsigned long long)i.removed_slots, "pending_slots",
                                    (unsigned long long)i.pending_slots, "removed_total",
                                    (unsigned long long)i.removed_total, "reused_total",
                                    (unsigned long long)i.reused_total, "mapped_bytes",
                                    (unsigned long long)i.mapped_bytes, "storage", storage,
                                    "codes_trained", PyBool_FromLong(i.codes_trained),
                                    "relayout",
                                    i.relayout == HNSWC_RELAYOUT_MANUAL ? "manual" : "auto",
                                    "relayouts", (unsigned long long)i.relayouts)
                    : NULL;
    if (r == NULL || PyDict_Update(d, r) < 0) {
        Py_XDECREF(r);
        Py_XDECREF(d);
        return NULL;
    }
    Py_DECREF(r);
    return d;
}

PyDoc_STRVAR(relayout_doc,
"relayout($self, /)\n--\n\n"
"hnswc extension: renumbers the nodes in locality order (breadth-first from\n"
"the entry point), so that searches read memory closer together and answer\n"
"more queries per second. Labels, vectors and search results do not change;\n"
"internal ids (get_links, knn_query_trace, the order of get_ids_list) do.\n"
"add_items does this by itself when the index has doubled (see init_index's\n"
"relayout); call it after loading an index saved by an older version, or with\n"
"relayout='manual'. Waits for running searches and adds; O(elements).");

static PyObject *Index_relayout(IndexObject *self, PyObject *unused)
{
    (void)unused;
    hnswc_index *ix = hpy_index_acquire((PyObject *)self, "relayout");
    if (ix == NULL)
        return NULL;
    hnswc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = hnswc_relayout(ix);
    Py_END_ALLOW_THREADS
    hpy_index_release((PyObject *)self);
    if (st != HNSWC_OK)
        return hpy_raise_status(st, "relayout");
    Py_RETURN_NONE;
}

PyDoc_STRVAR(set_relayout_doc,
"set_relayout($self, /, mode)\n--\n\n"
"hnswc extension: 'auto' or 'manual', as init_index's relayout. Not saved\n"
"with the index: a loaded index starts 'auto'.");

static PyObject *Index_set_relayout(IndexObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"mode", NULL};
    const char *mode;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "s:set_relayout", kwlist, &mode))
        return NULL;
    hnswc_relayout_policy policy;
    if (relayout_parse(mode, "set_relayout", &policy) < 0)
        return NULL;
    hnswc_index *ix = hpy_index_acquire((PyObject *)self, "set_relayout");
    if (ix == NULL)
        return NULL;
    hnswc_status st = hnswc_set_relayout(ix, policy);
    hpy_index_release((PyObject *)self);
    if (st != HNSWC_OK)
        return hpy_raise_status(st, "set_relayout");
    Py_RETURN_NONE;
}

PyDoc_STRVAR(graph_stats_doc,
"graph_stats($self, /)\n--\n\n"
"hnswc extension: the shape and health of the graph (a dict): nodes per\n"
"level, layer-0 degrees, nodes unreachable from the entry point, one-way\n"
"links. Walks the whole graph; waits for running adds.");

static PyObject *Index_graph_stats(IndexObject *self, PyObject *unused)
{
    (void)unused;
    if (need_index(self, "graph_stats") < 0)
        return NULL;
    hnswc_graph_stats g;
    hnswc_status st;
    hpy_lock_write(&self->base.lock); /* the library: exclusive with writers */
    Py_BEGIN_ALLOW_THREADS
    st = hnswc_get_graph_stats(self->ix, &g);
    Py_END_ALLOW_THREADS
    hpy_unlock(&self->base.lock);
    if (st != HNSWC_OK)
        return hpy_raise_status(st, "graph_stats");
    uint32_t levels = g.levels < HNSWC_MAX_LEVELS ? g.levels : HNSWC_MAX_LEVELS;
    PyObject *per_level = PyList_New(levels);
    if (per_level == NULL)
        return NULL;
    for (uint32_t i = 0; i < levels; i++) {
        PyObject *v = PyLong_FromUnsignedLongLong(g.level_counts[i]);
        if (v == NULL) {
            Py_DECREF(per_level);
            return NULL;
        }
        PyList_SET_ITEM(per_level, i, v);
    }
    return Py_BuildValue("{s:K,s:N,s:I,s:I,s:I,s:d,s:K,s:K,s:K}", "nodes",
                         (unsigned long long)g.nodes, "level_counts", per_level, "levels",
                         (unsigned)g.levels, "degree0_min", (unsigned)g.degree0_min,
                         "degree0_max", (unsigned)g.degree0_max, "degree0_mean", g.degree0_mean,
                         "unreachable", (unsigned long long)g.unreachable, "one_way_links",
                         (unsigned long long)g.one_way_links, "links_total",
                         (unsigned long long)g.links_total);
}

/* ------------------------------------------------------------------------
 * Pickling and copying
 *
 * The state is a dict: the Python-level settings plus the index in hnswc's
 * serialised format (bytes), or None before init_index. Index(params=state)
 * rebuilds from it, and Index(index) copies through it.
 * ------------------------------------------------------------------------ */

static PyObject *Index_getstate(IndexObject *self, PyObject *unused)
{
    (void)unused;
    if (check_ready(self) < 0)
        return NULL;
    if (hpy_in_filter_of(self))
        return hpy_reentry_error();
    PyObject *blob = Py_None;
    Py_INCREF(blob);
    if (self->ix != NULL) {
        void *buf = NULL;
        size_t size = 0;
        hnswc_status st = serialize(self, &buf, &size);
        if (st != HNSWC_OK) {
            Py_DECREF(blob);
            return hpy_raise_status(st, "pickle");
        }
        Py_DECREF(blob);
        blob = PyBytes_FromStringAndSize(buf, (Py_ssize_t)size);
        hnswc_buffer_free(buf);
        if (blob == NULL)
            return NULL;
    }
    hpy_base *b = &self->base;
    return Py_BuildValue("{s:i,s:s,s:i,s:K,s:K,s:n,s:i,s:O,s:K,s:N}", "ser_version", SER_VERSION,
                         "space", hpy_space_name(b->metric), "dim", b->dim, "max_elements",
                         (unsigned long long)reported_limit(self), "cur_element_label",
                         (unsigned long long)b->next_label, "ef", (Py_ssize_t)self->ef,
                         "num_threads", b->num_threads, "allow_replace_deleted",
                         self->allow_replace_deleted ? Py_True : Py_False, "seed",
                         (unsigned long long)self->seed, "index", blob);
}

/* Reads an integer field of the state dict; returns 0 or -1 with an error. */
static int state_u64(PyObject *state, const char *key, uint64_t *out)
{
    PyObject *v = PyDict_GetItemString(state, key);
    if (v == NULL) {
        PyErr_Format(PyExc_ValueError, "Unpickle Error: missing '%s'", key);
        return -1;
    }
    return hpy_conv_u64(v, out) ? 0 : -1;
}

static PyObject *Index_setstate(IndexObject *self, PyObject *state)
{
    if (!PyDict_Check(state)) {
        PyErr_SetString(PyExc_TypeError, "Unpickle Error: the state must be a dict");
        return NULL;
    }
    if (check_ready(self) < 0)
        return NULL;
    if (hpy_in_filter_of(self))
        return hpy_reentry_error();
    uint64_t ver, max_elements, next_label, ef, seed;
    if (state_u64(state, "ser_version", &ver) < 0 ||
        state_u64(state, "max_elements", &max_elements) < 0 ||
        state_u64(state, "cur_element_label", &next_label) < 0 ||
        state_u64(state, "ef", &ef) < 0 || state_u64(state, "seed", &seed) < 0)
        return NULL;
    if (ver > SER_VERSION) {
        PyErr_SetString(PyExc_RuntimeError, "Unpickle Error: Invalid serialization version!");
        return NULL;
    }
    PyObject *nt = PyDict_GetItemString(state, "num_threads");
    PyObject *ard = PyDict_GetItemString(state, "allow_replace_deleted");
    PyObject *blob = PyDict_GetItemString(state, "index");
    if (nt == NULL || ard == NULL || blob == NULL) {
        PyErr_SetString(PyExc_ValueError, "Unpickle Error: incomplete state");
        return NULL;
    }
    int num_threads = PyLong_AsLong(nt);
    if (num_threads == -1 && PyErr_Occurred())
        return NULL;
    int allow = PyObject_IsTrue(ard);
    if (allow < 0)
        return NULL;
    hnswc_index *ix = NULL;
    if (blob != Py_None) {
        if (hpy_deserialize(blob, &ix) < 0)
            return NULL;
        hnswc_info info;
        hnswc_get_info(ix, &info);
        if (info.kind != HNSWC_KIND_HNSW || info.dim != (uint32_t)self->base.dim ||
            info.metric != self->base.metric) {
            hnswc_free(ix);
            PyErr_SetString(PyExc_RuntimeError,
                            "Unpickle Error: the index does not match the space and dim");
            return NULL;
        }
        /* the blob holds the limit too; the state's value wins, as the
         * binding's own record (0 is "full", on an empty index only) */
        if (max_elements == 0 ? info.count != 0
                              : hnswc_set_max_elements(ix, max_elements) != HNSWC_OK) {
            hnswc_free(ix);
            PyErr_SetString(PyExc_RuntimeError,
                            "Unpickle Error: max_elements is below the element count");
            return NULL;
        }
    }
    install_index(self, ix);
    self->full = ix != NULL && max_elements == 0;
    self->base.next_label = next_label;
    self->base.num_threads = num_threads;
    self->allow_replace_deleted = allow;
    self->seed = seed;
    if (apply_ef(self, (size_t)ef) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *Index_reduce(IndexObject *self, PyObject *unused)
{
    (void)unused;
    return hpy_reduce(&self->base, Index_getstate(self, NULL));
}

/* ------------------------------------------------------------------------
 * Properties
 * ------------------------------------------------------------------------ */

static PyObject *get_space(IndexObject *self, void *c)
{
    (void)c;
    if (check_ready(self) < 0)
        return NULL;
    return PyUnicode_FromString(hpy_space_name(self->base.metric));
}

/* Properties that read one field of a fresh hnswc_info (zeros before
 * init_index). The getset closure is the field's offset, INFO_FIELD(name). */
#define INFO_FIELD(name) ((void *)offsetof(hnswc_info, name))

static PyObject *get_info_u32(IndexObject *self, void *field)
{
    hnswc_info info = index_info(self);
    uint32_t v;
    memcpy(&v, (const char *)&info + (uintptr_t)field, sizeof(v));
    return PyLong_FromUnsignedLong(v);
}

static PyObject *get_info_u64(IndexObject *self, void *field)
{
    hnswc_info info = index_info(self);
    uint64_t v;
    memcpy(&v, (const char *)&info + (uintptr_t)field, sizeof(v));
    return PyLong_FromUnsignedLongLong(v);
}

static PyObject *get_max_elements(IndexObject *self, void *c)
{
    (void)c;
    return PyLong_FromUnsignedLongLong(reported_limit(self));
}

static PyObject *get_allow_replace_deleted(IndexObject *self, void *c)
{
    (void)c;
    return PyBool_FromLong(self->allow_replace_deleted);
}

static PyObject *get_ef(IndexObject *self, void *c)
{
    (void)c;
    return PyLong_FromSize_t(self->ef);
}

static int set_ef_prop(IndexObject *self, PyObject *value, void *c)
{
    (void)c;
    size_t ef;
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete ef");
        return -1;
    }
    if (!hpy_conv_size(value, &ef))
        return -1;
    if (hpy_in_filter_of(self)) {
        hpy_reentry_error();
        return -1;
    }
    return apply_ef(self, ef);
}

static PyGetSetDef Index_getset[] = {
    {"space", (getter)get_space, NULL, "The space: 'l2', 'ip' or 'cosine'.", NULL},
    {"dim", (getter)hpy_get_dim, NULL, "The vector dimension.", NULL},
    {"M", (getter)get_info_u32, NULL, "Links per node (0 before init_index).", INFO_FIELD(M)},
    {"ef_construction", (getter)get_info_u32, NULL,
     "Beam width while building (0 before init_index).", INFO_FIELD(ef_construction)},
    {"max_elements", (getter)get_max_elements, NULL,
     "The element limit (0 before init_index).", NULL},
    {"element_count", (getter)get_info_u64, NULL,
     "Elements stored, deleted ones included (0 before init_index).", INFO_FIELD(count)},
    {"live_count", (getter)get_info_u64, NULL, "hnswc extension: elements a search can return.",
     INFO_FIELD(live_count)},
    {"deleted_count", (getter)get_info_u64, NULL, "hnswc extension: elements marked deleted.",
     INFO_FIELD(deleted_count)},
    {"allow_replace_deleted", (getter)get_allow_replace_deleted, NULL,
     "hnswc extension: whether replace_deleted adds are allowed.", NULL},
    {"ef", (getter)get_ef, (setter)set_ef_prop, "The beam width of searches (see set_ef).",
     NULL},
    {"num_threads", (getter)hpy_get_num_threads, (setter)hpy_set_num_threads_prop,
     "Default number of threads of add_items and knn_query.", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

#define METH_KW(name, doc) \
    {#name, (PyCFunction)(void (*)(void))Index_##name, METH_VARARGS | METH_KEYWORDS, doc}

static PyMethodDef Index_methods[] = {
    METH_KW(init_index, init_index_doc),
    METH_KW(add_items, add_items_doc),
    METH_KW(knn_query, knn_query_doc),
    METH_KW(mark_deleted, mark_deleted_doc),
    METH_KW(unmark_deleted, unmark_deleted_doc),
    METH_KW(set_ef, set_ef_doc),
    {"set_num_threads", (PyCFunction)(void (*)(void))hpy_set_num_threads,
     METH_VARARGS | METH_KEYWORDS, set_num_threads_doc},
    METH_KW(resize_index, resize_index_doc),
    METH_KW(save_index, save_index_doc),
    METH_KW(load_index, load_index_doc),
    METH_KW(get_items, get_items_doc),
    {"get_ids_list", (PyCFunction)Index_get_ids_list, METH_NOARGS, get_ids_list_doc},
    {"get_current_count", (PyCFunction)Index_get_current_count, METH_NOARGS,
     get_current_count_doc},
    {"get_max_elements", (PyCFunction)Index_get_max_elements, METH_NOARGS,
     get_max_elements_doc},
    {"index_file_size", (PyCFunction)Index_index_file_size, METH_NOARGS, index_file_size_doc},
    {"get_info", (PyCFunction)Index_get_info, METH_NOARGS, get_info_doc},
    {"get_level", (PyCFunction)(void (*)(void))hpy_index_get_level, METH_VARARGS | METH_KEYWORDS,
     "get_level($self, /, label)\n--\n\n"
     "hnswc extension: the top layer of the element `label` (it has links on\n"
     "layers 0 .. level). RuntimeError if the label is unknown."},
    {"get_links", (PyCFunction)(void (*)(void))hpy_index_get_links, METH_VARARGS | METH_KEYWORDS,
     "get_links($self, /, label, layer=0)\n--\n\n"
     "hnswc extension: the labels `label` links to on `layer`, in stored order\n"
     "(links are directed: b in get_links(a) does not imply a in get_links(b)).\n"
     "ValueError if the element is not on that layer."},
    {"knn_query_trace", (PyCFunction)(void (*)(void))hpy_index_knn_query_trace,
     METH_VARARGS | METH_KEYWORDS,
     "knn_query_trace($self, /, data, k=1, ef=0)\n--\n\n"
     "hnswc extension: searches one query as knn_query does (same results) and\n"
     "returns (labels, distances, events): up to k labels and distances,\n"
     "closest first, and what the search did, one row per event of a numpy\n"
     "structured array with fields kind (0 entry, 1 expand, 2 eval, 3 enter,\n"
     "4 leave, 5 descend, 6 stop, 7 exact; see hnswc_trace_kind in hnswc.h),\n"
     "layer, node and source (labels; 2**64-1 for none), dist, flags and\n"
     "count. ef=0 uses the index's ef. hnswc.viz draws from it."},
    /* removal.c: true removal and range search */
    {"remove_items", (PyCFunction)(void (*)(void))hpy_index_remove_items,
     METH_VARARGS | METH_KEYWORDS, hpy_remove_items_doc},
    {"compact", (PyCFunction)(void (*)(void))hpy_index_compact, METH_VARARGS | METH_KEYWORDS,
     hpy_compact_doc},
    {"range_query", (PyCFunction)(void (*)(void))hpy_index_range_query,
     METH_VARARGS | METH_KEYWORDS, hpy_range_query_doc},
    {"graph_stats", (PyCFunction)Index_graph_stats, METH_NOARGS, graph_stats_doc},
    {"relayout", (PyCFunction)Index_relayout, METH_NOARGS, relayout_doc},
    {"set_relayout", (PyCFunction)(void (*)(void))Index_set_relayout, METH_VARARGS | METH_KEYWORDS,
     set_relayout_doc},
    {"__getstate__", (PyCFunction)Index_getstate, METH_NOARGS, "The picklable state (a dict)."},
    {"__setstate__", (PyCFunction)Index_setstate, METH_O, "Restores a state from __getstate__."},
    {"__reduce__", (PyCFunction)Index_reduce, METH_NOARGS, "Pickle support."},
    {NULL, NULL, 0, NULL}};

PyDoc_STRVAR(Index_doc,
"Index(space, dim)\n--\n\n"
"An HNSW index: approximate k-nearest-neighbour search, a drop-in\n"
"replacement for hnswlib.Index.\n\n"
"space: 'l2' (squared Euclidean distance), 'ip' (1 - inner product) or\n"
"  'cosine' (1 - cosine similarity).\n"
"dim: the vector dimension; 0 makes a placeholder that only load_index can\n"
"  fill (it takes the file's dimension), as in hnswlib.\n\n"
"Index(index) makes a copy of another Index; Index(params) rebuilds one from\n"
"the dict given by index.__getstate__(). Call init_index() or load_index()\n"
"before anything else.");

PyTypeObject HnswcIndex_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "hnswc.Index",
    .tp_basicsize = sizeof(IndexObject),
    .tp_dealloc = (destructor)Index_dealloc,
    .tp_repr = (reprfunc)hpy_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = Index_doc,
    .tp_methods = Index_methods,
    .tp_getset = Index_getset,
    .tp_init = (initproc)Index_init,
    .tp_new = Index_new,
};
