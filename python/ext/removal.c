/*
 * removal.c -- hnswc extensions of hnswc.Index: true removal
 * (remove_items, compact) and range search (range_query).
 *
 * Thin by design: argument translation and a library call each
 * (hnswc_remove_batch, hnswc_compact, hnswc_search_range); all of the work
 * and its locking is in libhnswc. hnswlib has none of these, so code written
 * for hnswlib never meets them; mark_deleted keeps hnswlib's meaning.
 *
 * Locking: as every Index method, these hold the object's lock's read side
 * (hpy_index_acquire) and call the library with the GIL released. The
 * library calls are [writer]s (remove_items, compact) and a [reader]
 * (range_query), so they run beside adds and searches from other threads.
 */
#define NO_IMPORT_ARRAY
#include "common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------
 * Labels argument
 * ------------------------------------------------------------------------ */

/*
 * `labels` (an integer, or a 1-D array-like of integers) as a fresh
 * contiguous uint64 array. Negative or non-integer labels raise ValueError
 * or TypeError rather than being cast (a cast would turn -1 into another
 * label). Returns a new reference, or NULL with an exception.
 */
static PyArrayObject *label_list(PyObject *labels)
{
    PyArrayObject *raw = (PyArrayObject *)PyArray_FROMANY(labels, NPY_NOTYPE, 0, 1, 0);
    if (raw == NULL)
        return NULL;
    int type = PyArray_TYPE(raw);
    if (PyArray_SIZE(raw) > 0 && (!PyTypeNum_ISINTEGER(type) || PyTypeNum_ISBOOL(type))) {
        Py_DECREF(raw);
        PyErr_SetString(PyExc_TypeError, "labels must be integers");
        return NULL;
    }
    if (PyArray_SIZE(raw) > 0 && PyTypeNum_ISSIGNED(type)) {
        PyArrayObject *s = (PyArrayObject *)PyArray_FROMANY((PyObject *)raw, NPY_INT64, 0, 1,
                                                            NPY_ARRAY_C_CONTIGUOUS);
        if (s == NULL) {
            Py_DECREF(raw);
            return NULL;
        }
        const int64_t *v = PyArray_DATA(s);
        for (npy_intp i = 0; i < PyArray_SIZE(s); i++)
            if (v[i] < 0) {
                Py_DECREF(s);
                Py_DECREF(raw);
                return (PyArrayObject *)PyErr_Format(PyExc_ValueError,
                                                     "labels must not be negative (got %lld)",
                                                     (long long)v[i]);
            }
        Py_DECREF(s);
    }
    PyArrayObject *out = (PyArrayObject *)PyArray_FROMANY(
        (PyObject *)raw, NPY_UINT64, 0, 1,
        NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ENSURECOPY | NPY_ARRAY_FORCECAST); /* checked above */
    Py_DECREF(raw);
    return out;
}

/* ------------------------------------------------------------------------
 * remove_items, compact
 * ------------------------------------------------------------------------ */

const char hpy_remove_items_doc[] =
    "remove_items($self, /, labels, num_threads=-1)\n--\n\n"
    "hnswc extension: removes elements for good. Unlike mark_deleted, each\n"
    "element leaves the graph: the links that led to it are repaired from its\n"
    "neighbours, its label is free at once (and can be added again), and its\n"
    "slot is reused by later adds, so memory does not grow under churn and\n"
    "searches do not slow down. Marked-deleted labels can be removed too.\n\n"
    "labels: one label or a 1-D array-like of labels.\n"
    "num_threads: threads to repair a large batch with; -1 means the index's\n"
    "  num_threads.\n\n"
    "All or nothing: RuntimeError if any label is unknown (or removed\n"
    "already), ValueError if one is given twice; nothing is removed then.";

PyObject *hpy_index_remove_items(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"labels", "num_threads", NULL};
    PyObject *labels_obj;
    int num_threads = -1;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|i:remove_items", kwlist, &labels_obj,
                                     &num_threads))
        return NULL;
    PyArrayObject *labels = label_list(labels_obj);
    if (labels == NULL)
        return NULL;
    size_t n = (size_t)PyArray_SIZE(labels);
    hnswc_index *ix = hpy_index_acquire(self, "remove_items");
    if (ix == NULL) {
        Py_DECREF(labels);
        return NULL;
    }
    const hpy_base *b = (const hpy_base *)self;
    unsigned threads = hpy_batch_threads(num_threads, b->num_threads, n);
    const uint64_t *lab = PyArray_DATA(labels);
    hnswc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = hnswc_remove_batch(ix, lab, n, threads);
    Py_END_ALLOW_THREADS
    hpy_index_release(self);
    Py_DECREF(labels);
    if (st != HNSWC_OK)
        return hpy_raise_status(st, "remove_items");
    Py_RETURN_NONE;
}

const char hpy_compact_doc[] =
    "compact($self, /, num_threads=-1)\n--\n\n"
    "hnswc extension: removes every element marked deleted for good (see\n"
    "remove_items), repairing the graph in one pass, and reclaims every slot\n"
    "of removed elements now. An index saved afterwards is smaller. Returns\n"
    "the number of marked-deleted elements removed.";

PyObject *hpy_index_compact(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"num_threads", NULL};
    int num_threads = -1;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|i:compact", kwlist, &num_threads))
        return NULL;
    hnswc_index *ix = hpy_index_acquire(self, "compact");
    if (ix == NULL)
        return NULL;
    const hpy_base *b = (const hpy_base *)self;
    unsigned threads = hpy_batch_threads(num_threads, b->num_threads, SIZE_MAX);
    size_t removed = 0;
    hnswc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = hnswc_compact(ix, threads, &removed);
    Py_END_ALLOW_THREADS
    hpy_index_release(self);
    if (st != HNSWC_OK)
        return hpy_raise_status(st, "compact");
    return PyLong_FromSize_t(removed);
}

/* ------------------------------------------------------------------------
 * range_query
 * ------------------------------------------------------------------------ */

const char hpy_range_query_doc[] =
    "range_query($self, /, data, radius, ef=0, filter=None)\n--\n\n"
    "hnswc extension: every element within `radius` of each query, closest\n"
    "first.\n\n"
    "data: one query (1-D) or a batch (2-D) of any numeric dtype.\n"
    "radius: in the space's distance, as knn_query reports it (squared L2\n"
    "  for 'l2', 1 - cosine for 'cosine', 1 - inner product for 'ip').\n"
    "ef: beam width of the search that finds the ball (0: the index's ef).\n"
    "  Every neighbour of an element inside the ball is examined too, so the\n"
    "  whole ball is found once the search reaches it; ef at least the\n"
    "  element count gives the exact answer.\n"
    "filter: as in knn_query.\n\n"
    "Returns (labels, distances): two lists with one 1-D array per query\n"
    "(uint64 and float32; lengths differ from query to query).";

PyObject *hpy_index_range_query(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"data", "radius", "ef", "filter", NULL};
    PyObject *data, *filter_obj = Py_None;
    double radius;
    size_t ef = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "Od|O&O:range_query", kwlist, &data, &radius,
                                     hpy_conv_size, &ef, &filter_obj))
        return NULL;
    if (!(radius >= 0.0) || radius > 3.4e38) /* NaN too */
        return PyErr_Format(PyExc_ValueError, "radius must be a non-negative finite number, got %g",
                            radius);
    const hpy_base *b = (const hpy_base *)self;
    if (hpy_check_ready((hpy_base *)self) < 0)
        return NULL;
    size_t rows;
    PyArrayObject *queries = hpy_float_matrix(data, b->dim, "query vectors", &rows);
    if (queries == NULL)
        return NULL;
    hpy_filter filter;
    PyObject *labels_out = NULL, *dists_out = NULL;
    hnswc_range_result *res = calloc(rows ? rows : 1, sizeof *res);
    if (hpy_filter_begin(&filter, filter_obj, self) < 0 || res == NULL) {
        if (res == NULL)
            PyErr_NoMemory();
        goto done;
    }
    hnswc_index *ix = hpy_index_acquire(self, "range_query");
    if (ix == NULL)
        goto done;
    hnswc_filter_fn fn = hpy_filter_fn(&filter);
    const float *v = PyArray_DATA(queries);
    size_t dim = (size_t)b->dim;
    hnswc_status st = HNSWC_OK;
    /* one query after another on this thread: a callable filter needs the
     * GIL back inside, which only this thread may take while it waits */
    Py_BEGIN_ALLOW_THREADS
    for (size_t i = 0; i < rows && st == HNSWC_OK && !filter.failed; i++)
        st = hnswc_search_range(ix, v + i * dim, (float)radius, ef, fn, fn ? &filter : NULL,
                                &res[i]);
    Py_END_ALLOW_THREADS
    hpy_index_release(self);
    if (st != HNSWC_OK) {
        hpy_raise_status(st, "range_query");
        goto done;
    }
    labels_out = PyList_New((Py_ssize_t)rows);
    dists_out = PyList_New((Py_ssize_t)rows);
    for (size_t i = 0; labels_out && dists_out && i < rows; i++) {
        npy_intp n = (npy_intp)res[i].count;
        PyArrayObject *l = (PyArrayObject *)PyArray_SimpleNew(1, &n, NPY_UINT64);
        PyArrayObject *d = (PyArrayObject *)PyArray_SimpleNew(1, &n, NPY_FLOAT32);
        if (l == NULL || d == NULL) {
            Py_XDECREF(l);
            Py_XDECREF(d);
            Py_CLEAR(labels_out);
            Py_CLEAR(dists_out);
            break;
        }
        if (n > 0) {
            memcpy(PyArray_DATA(l), res[i].labels, (size_t)n * sizeof(uint64_t));
            memcpy(PyArray_DATA(d), res[i].distances, (size_t)n * sizeof(float));
        }
        PyList_SET_ITEM(labels_out, (Py_ssize_t)i, (PyObject *)l);
        PyList_SET_ITEM(dists_out, (Py_ssize_t)i, (PyObject *)d);
    }
done:
    if (hpy_filter_end(&filter) < 0) { /* the callable raised: that wins */
        Py_CLEAR(labels_out);
        Py_CLEAR(dists_out);
    }
    for (size_t i = 0; res && i < rows; i++)
        hnswc_range_result_free(&res[i]);
    free(res);
    Py_DECREF(queries);
    if (labels_out == NULL || dists_out == NULL) {
        Py_XDECREF(labels_out);
        Py_XDECREF(dists_out);
        return NULL;
    }
    return Py_BuildValue("(NN)", labels_out, dists_out);
}
