/*
 * inspect.c -- hnswc extensions of hnswc.Index that look inside the graph:
 * get_level, get_links and knn_query_trace, which hnswc.viz draws from.
 *
 * Thin by design: each method is a few library calls (hnswc_node_id,
 * hnswc_node_info, hnswc_node_links, hnswc_search_traced) plus the
 * translation of the library's internal node ids into labels, which is
 * what Python users know elements by. Nothing of the search is done here.
 *
 * Locking: as every Index method, these hold the object's lock's read side
 * (through hpy_index_acquire) and call the library with the GIL released.
 * The library calls are [reader]s, so they may run beside adds; the graph
 * they report is then a snapshot that may already be out of date.
 */
#define NO_IMPORT_ARRAY
#include "common.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------ */

/* label -> (id, node), with the lock held and the GIL released by the caller. */
static hnswc_status node_of_label(hnswc_index *ix, uint64_t label, uint32_t *id, hnswc_node *node)
{
    hnswc_status st = hnswc_node_id(ix, label, id);
    return st == HNSWC_OK ? hnswc_node_info(ix, *id, node) : st;
}

static PyObject *raise_node_status(hnswc_status st, const char *method)
{
    if (st == HNSWC_ERR_NOT_FOUND)
        return hpy_label_not_found();
    return hpy_raise_status(st, method);
}

/* ------------------------------------------------------------------------
 * get_level, get_links
 * ------------------------------------------------------------------------ */

PyObject *hpy_index_get_level(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"label", NULL};
    uint64_t label;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O&:get_level", kwlist, hpy_conv_u64, &label))
        return NULL;
    hnswc_index *ix = hpy_index_acquire(self, "get_level");
    if (ix == NULL)
        return NULL;
    uint32_t id;
    hnswc_node node;
    hnswc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = node_of_label(ix, label, &id, &node);
    Py_END_ALLOW_THREADS
    hpy_index_release(self);
    if (st != HNSWC_OK)
        return raise_node_status(st, "get_level");
    return PyLong_FromLong((long)node.level);
}

PyObject *hpy_index_get_links(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"label", "layer", NULL};
    uint64_t label;
    int layer = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O&|i:get_links", kwlist, hpy_conv_u64, &label,
                                     &layer))
        return NULL;
    hnswc_index *ix = hpy_index_acquire(self, "get_links");
    if (ix == NULL)
        return NULL;
    hnswc_info info;
    uint32_t id;
    hnswc_node node;
    hnswc_status st;
    uint32_t *ids = NULL;
    uint64_t *labels = NULL;
    size_t n = 0;
    int too_high = 0;
    Py_BEGIN_ALLOW_THREADS
    st = hnswc_get_info(ix, &info);
    if (st == HNSWC_OK)
        st = node_of_label(ix, label, &id, &node);
    if (st == HNSWC_OK && (layer < 0 || layer > node.level)) {
        too_high = 1;
    } else if (st == HNSWC_OK) {
        size_t cap = 2 * (size_t)info.M; /* the most any layer holds */
        ids = malloc(cap * sizeof *ids);
        labels = malloc(cap * sizeof *labels);
        if (ids == NULL || labels == NULL)
            st = HNSWC_ERR_NOMEM;
        else
            st = hnswc_node_links(ix, id, layer, ids, cap, &n);
        for (size_t i = 0; st == HNSWC_OK && i < n; i++) {
            hnswc_node t;
            st = hnswc_node_info(ix, ids[i], &t);
            labels[i] = t.label;
        }
    }
    Py_END_ALLOW_THREADS
    hpy_index_release(self);
    PyObject *res = NULL;
    if (too_high) {
        PyErr_Format(PyExc_ValueError, "get_links: layer %d is not in 0 .. %d, the layers of "
                     "label %llu", layer, (int)node.level, (unsigned long long)label);
    } else if (st == HNSWC_ERR_NOMEM) {
        PyErr_NoMemory();
    } else if (st != HNSWC_OK) {
        raise_node_status(st, "get_links");
    } else if ((res = PyList_New((Py_ssize_t)n)) != NULL) {
        for (size_t i = 0; i < n; i++) {
            PyObject *v = PyLong_FromUnsignedLongLong(labels[i]);
            if (v == NULL) {
                Py_CLEAR(res);
                break;
            }
            PyList_SET_ITEM(res, (Py_ssize_t)i, v);
        }
    }
    free(ids);
    free(labels);
    return res;
}

/* ------------------------------------------------------------------------
 * knn_query_trace
 * ------------------------------------------------------------------------ */

/* One row of the structured array returned to Python (dtype built from
 * offsetof below, so the layout is whatever the compiler chose). */
typedef struct py_event {
    uint64_t node;   /* label, or 2^64 - 1 for none */
    uint64_t source; /* label of the node whose links were read (eval) */
    uint64_t count;
    float dist;
    int32_t layer;
    uint32_t flags;
    uint8_t kind;
} py_event;

/* The events as the callback collects them (internal ids). */
typedef struct event_log {
    hnswc_trace_event *ev;
    size_t n, cap;
    int nomem;
} event_log;

static void collect(const hnswc_trace_event *e, void *user)
{
    event_log *log = user;
    if (log->nomem)
        return;
    if (log->n == log->cap) {
        size_t cap = log->cap ? 2 * log->cap : 256;
        hnswc_trace_event *p = realloc(log->ev, cap * sizeof *p);
        if (p == NULL) {
            log->nomem = 1;
            return;
        }
        log->ev = p;
        log->cap = cap;
    }
    log->ev[log->n++] = *e;
}

static PyArray_Descr *event_dtype(void)
{
    PyObject *spec = Py_BuildValue(
        "{s:[sssssss],s:[sssssss],s:[nnnnnnn],s:n}",
        "names", "kind", "layer", "node", "source", "dist", "flags", "count",
        "formats", "u1", "i4", "u8", "u8", "f4", "u4", "u8",
        "offsets", (Py_ssize_t)offsetof(py_event, kind), (Py_ssize_t)offsetof(py_event, layer),
        (Py_ssize_t)offsetof(py_event, node), (Py_ssize_t)offsetof(py_event, source),
        (Py_ssize_t)offsetof(py_event, dist), (Py_ssize_t)offsetof(py_event, flags),
        (Py_ssize_t)offsetof(py_event, count),
        "itemsize", (Py_ssize_t)sizeof(py_event));
    if (spec == NULL)
        return NULL;
    PyArray_Descr *d = NULL;
    int ok = PyArray_DescrConverter(spec, &d);
    Py_DECREF(spec);
    return ok ? d : NULL;
}

PyObject *hpy_index_knn_query_trace(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"data", "k", "ef", NULL};
    PyObject *data;
    size_t k = 1, ef = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|O&O&:knn_query_trace", kwlist, &data,
                                     hpy_conv_size, &k, hpy_conv_size, &ef))
        return NULL;
    if (k == 0) {
        PyErr_SetString(PyExc_ValueError, "knn_query_trace: k must be at least 1");
        return NULL;
    }
    if (ef > ((size_t)1 << 31)) {
        PyErr_SetString(PyExc_ValueError, "knn_query_trace: ef must be at most 2^31");
        return NULL;
    }
    size_t rows = 0;
    PyArrayObject *q = hpy_float_matrix(data, ((hpy_base *)self)->dim, "query vector", &rows);
    if (q == NULL)
        return NULL;
    if (rows != 1) {
        Py_DECREF(q);
        PyErr_SetString(PyExc_ValueError, "knn_query_trace: one query vector at a time");
        return NULL;
    }
    uint64_t *labels = malloc(k * sizeof *labels);
    float *dists = malloc(k * sizeof *dists);
    if (labels == NULL || dists == NULL) {
        free(labels);
        free(dists);
        Py_DECREF(q);
        return PyErr_NoMemory();
    }
    hnswc_index *ix = hpy_index_acquire(self, "knn_query_trace");
    if (ix == NULL) {
        free(labels);
        free(dists);
        Py_DECREF(q);
        return NULL;
    }
    event_log log = {NULL, 0, 0, 0};
    py_event *rows_out = NULL;
    size_t found = 0;
    hnswc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = hnswc_search_traced(ix, PyArray_DATA(q), k, ef, NULL, NULL, collect, &log, labels, dists,
                             &found);
    if (st == HNSWC_OK && log.nomem)
        st = HNSWC_ERR_NOMEM;
    if (st == HNSWC_OK && log.n > 0 && (rows_out = calloc(log.n, sizeof *rows_out)) == NULL)
        st = HNSWC_ERR_NOMEM;
    /* ids -> labels, while the lock still keeps the index as it was */
    for (size_t i = 0; st == HNSWC_OK && i < log.n; i++) {
        const hnswc_trace_event *e = &log.ev[i];
        py_event *r = &rows_out[i];
        hnswc_node nd;
        r->kind = (uint8_t)e->kind;
        r->layer = e->layer;
        r->dist = e->dist;
        r->flags = e->flags;
        r->count = e->count;
        r->node = r->source = UINT64_MAX;
        if (e->node != HNSWC_NO_NODE && (st = hnswc_node_info(ix, e->node, &nd)) == HNSWC_OK)
            r->node = nd.label;
        if (st == HNSWC_OK && e->from != HNSWC_NO_NODE &&
            (st = hnswc_node_info(ix, e->from, &nd)) == HNSWC_OK)
            r->source = nd.label;
    }
    Py_END_ALLOW_THREADS
    hpy_index_release(self);
    Py_DECREF(q);
    free(log.ev);

    PyObject *res = NULL;
    if (st != HNSWC_OK) {
        if (st == HNSWC_ERR_NOMEM)
            PyErr_NoMemory();
        else
            hpy_raise_status(st, "knn_query_trace");
        goto done;
    }
    npy_intp nf = (npy_intp)found, ne = (npy_intp)log.n;
    PyArrayObject *l = (PyArrayObject *)PyArray_SimpleNew(1, &nf, NPY_UINT64);
    PyArrayObject *d = (PyArrayObject *)PyArray_SimpleNew(1, &nf, NPY_FLOAT32);
    PyArray_Descr *descr = event_dtype();
    PyArrayObject *ev = descr == NULL ? NULL
                                      : (PyArrayObject *)PyArray_NewFromDescr(
                                            &PyArray_Type, descr, 1, &ne, NULL, NULL, 0, NULL);
    if (l && d && ev) {
        memcpy(PyArray_DATA(l), labels, found * sizeof *labels);
        memcpy(PyArray_DATA(d), dists, found * sizeof *dists);
        if (log.n)
            memcpy(PyArray_DATA(ev), rows_out, log.n * sizeof *rows_out);
        res = Py_BuildValue("(NNN)", l, d, ev);
    } else {
        Py_XDECREF(l);
        Py_XDECREF(d);
        Py_XDECREF(ev);
    }
done:
    free(rows_out);
    free(labels);
    free(dists);
    return res;
}
