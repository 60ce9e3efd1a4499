/*
 * bfindex.c -- hnswc.BFIndex: hnswlib's exact (brute-force) index over
 * libhnswc's flat index (HNSWC_KIND_FLAT).
 *
 * The object keeps what hnswlib keeps at the Python level (the space, the
 * dimension, the element limit, the running label counter, the default
 * thread count) and owns one flat hnswc_index once init_index or load_index
 * has run. Everything else -- storage, labels, normalisation for cosine,
 * finiteness checks, the exact scan on threads, files -- is the library's.
 *
 * Thread safety: methods may be called from several Python threads at once;
 * the library releases the GIL's worth of locking (common.h): the object's
 * rwlock keeps the hnswc_index alive and unreplaced while a call uses it
 * with the GIL released. add_items holds its write side, so that the
 * element limit is checked against the count the add then changes (adds of
 * one BFIndex run one at a time, as in hnswlib).
 *
 * Files: save_index writes hnswc's own format (a flat index: checksummed,
 * written to a temporary file and renamed). load_index reads that, the
 * files of hnswc 0.1's BFIndex (converted by the library), and hnswlib's
 * BruteforceSearch files. As in hnswlib, the label counter for ids=None
 * restarts at the element count after a load.
 */
#define NO_IMPORT_ARRAY
#include "common.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    hpy_base base;          /* lock, space, dim, limit, label counter...    */
    hnswc_index *ix;        /* a flat index; NULL until init_index/load_index */
} BFIndexObject;

#define BF_SER_VERSION 2    /* 1: hnswc 0.1, rows and labels as bytes       */

/* ------------------------------------------------------------------------
 * Small helpers
 * ------------------------------------------------------------------------ */

static int bf_need(BFIndexObject *self, const char *method)
{
    return hpy_need(&self->base, self->ix != NULL, method);
}

/* The index's counts (zeros when there is none); GIL held. */
static hnswc_info bf_info(const BFIndexObject *self)
{
    return hpy_info(self->ix);
}

/* Replaces the index by `fresh` (may be NULL); see hpy_install. */
static void bf_install(BFIndexObject *self, hnswc_index *fresh)
{
    hpy_install(&self->base.lock, &self->ix, fresh);
}

/* A new empty flat index of this object's space and dim with room for
 * `room` rows if that much can be had (hnswlib allocates max_elements rows
 * up front; here it is address space only until rows are written, and a
 * limit too large to reserve still works: the rows then grow as needed). */
static hnswc_index *bf_create(BFIndexObject *self, uint64_t room)
{
    hnswc_options o;
    memset(&o, 0, sizeof(o));
    o.kind = HNSWC_KIND_FLAT;
    o.dim = (uint32_t)self->base.dim;
    o.metric = self->base.metric;
    hnswc_index *ix = NULL;
    hnswc_status st = hnswc_create(&o, &ix);
    if (st != HNSWC_OK) {
        hpy_raise_status(st, "init_index");
        return NULL;
    }
    if (room > 0)
        hnswc_reserve(ix, room); /* best effort, see above */
    return ix;
}

/* ------------------------------------------------------------------------
 * Creation
 * ------------------------------------------------------------------------ */

static PyObject *BF_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    (void)args;
    (void)kwds;
    return hpy_base_new(type);
}

static void BF_dealloc(BFIndexObject *self)
{
    hnswc_free(self->ix);
    hpy_base_dealloc(&self->base);
}

static int BF_init(BFIndexObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"space", "dim", NULL};
    PyObject *space;
    long dim;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "Ol:BFIndex", kwlist, &space, &dim))
        return -1;
    hnswc_metric metric;
    if (hpy_parse_space(space, &metric) < 0)
        return -1;
    if (hpy_check_dim(dim) < 0)
        return -1;
    if (hpy_in_filter_of(self)) {
        hpy_reentry_error();
        return -1;
    }
    bf_install(self, NULL);
    self->base.metric = metric;
    self->base.dim = (int)dim;
    self->base.max_elements = self->base.next_label = 0;
    self->base.ready = 1;
    return 0;
}

PyDoc_STRVAR(bf_init_index_doc,
"init_index($self, /, max_elements)\n--\n\n"
"Creates the empty index; adding more than max_elements elements raises\n"
"RuntimeError, as in hnswlib. RuntimeError if already initialised.");

static PyObject *BF_init_index(BFIndexObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"max_elements", NULL};
    uint64_t max_elements;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O&:init_index", kwlist, hpy_conv_u64,
                                     &max_elements))
        return NULL;
    if (hpy_check_ready(&self->base) < 0)
        return NULL;
    if (hpy_in_filter_of(self))
        return hpy_reentry_error();
    if (self->ix != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "The index is already initiated.");
        return NULL;
    }
    hnswc_index *ix = bf_create(self, max_elements);
    if (ix == NULL)
        return NULL;
    bf_install(self, ix);
    self->base.max_elements = max_elements;
    self->base.next_label = 0;
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------------
 * add_items, delete_vector, knn_query
 * ------------------------------------------------------------------------ */

PyDoc_STRVAR(bf_add_items_doc,
"add_items($self, /, data, ids=None)\n--\n\n"
"Adds vectors (1-D or 2-D, any numeric dtype) under ids (default: a running\n"
"counter). An existing label has its vector replaced. RuntimeError past\n"
"max_elements (nothing is added), ValueError for NaN or infinity.");

static PyObject *BF_add_items(BFIndexObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"data", "ids", NULL};
    PyObject *data, *ids = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|O:add_items", kwlist, &data, &ids))
        return NULL;
    if (bf_need(self, "add_items") < 0)
        return NULL;
    size_t rows;
    PyArrayObject *vecs, *labels;
    if (hpy_add_arrays(&self->base, data, ids, &vecs, &labels, &rows) < 0)
        return NULL;
    const float *v = PyArray_DATA(vecs);
    const uint64_t *lab = PyArray_DATA(labels);
    hnswc_status st = HNSWC_OK;
    int over_limit = 0;
    hpy_lock_write(&self->base.lock);
    if (self->ix == NULL) { /* dropped by a concurrent __init__ meanwhile */
        hpy_unlock(&self->base.lock);
        Py_DECREF(vecs);
        Py_DECREF(labels);
        return hpy_not_initialised("BFIndex", "add_items");
    }
    uint64_t count = bf_info(self).count, max = self->base.max_elements;
    Py_BEGIN_ALLOW_THREADS
    if (count + rows > max) { /* maybe most of the batch updates: count exactly */
        size_t fresh = 0;
        st = hnswc_count_new_labels(self->ix, lab, rows, &fresh);
        over_limit = st == HNSWC_OK && count + fresh > max;
    }
    if (st == HNSWC_OK && !over_limit)
        st = hnswc_add_batch(self->ix, v, lab, rows, 0, 1, NULL);
    Py_END_ALLOW_THREADS
    hpy_unlock(&self->base.lock);
    Py_DECREF(vecs);
    Py_DECREF(labels);
    if (st != HNSWC_OK)
        return hpy_raise_status(st, "add_items");
    if (over_limit) {
        PyErr_SetString(PyExc_RuntimeError, "The number of elements exceeds the specified limit");
        return NULL;
    }
    self->base.next_label += rows;
    Py_RETURN_NONE;
}

PyDoc_STRVAR(bf_delete_vector_doc,
"delete_vector($self, /, label)\n--\n\n"
"Removes an element for good. An unknown label is ignored (as hnswlib 0.8).");

static PyObject *BF_delete_vector(BFIndexObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"label", NULL};
    uint64_t label;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O&:delete_vector", kwlist, hpy_conv_u64,
                                     &label))
        return NULL;
    if (bf_need(self, "delete_vector") < 0)
        return NULL;
    hnswc_status st;
    hpy_lock_read(&self->base.lock);
    Py_BEGIN_ALLOW_THREADS
    st = self->ix ? hnswc_remove(self->ix, label) : HNSWC_ERR_NOT_FOUND;
    Py_END_ALLOW_THREADS
    hpy_unlock(&self->base.lock);
    if (st != HNSWC_OK && st != HNSWC_ERR_NOT_FOUND)
        return hpy_raise_status(st, "delete_vector");
    Py_RETURN_NONE;
}

PyDoc_STRVAR(bf_knn_query_doc,
"knn_query($self, /, data, k=1, num_threads=-1, filter=None)\n--\n\n"
"Exact k nearest neighbours of each query, closest first: (labels,\n"
"distances) as uint64 and float32 arrays of shape (n, k). filter: as in\n"
"Index.knn_query. RuntimeError when fewer than k elements pass the filter.");

static PyObject *BF_knn_query(BFIndexObject *self, PyObject *args, PyObject *kwds)
{
    return hpy_knn_query(&self->base, &self->ix, args, kwds,
                         "Cannot return the results in a contiguous 2D array. "
                         "There are not enough elements.");
}

/* ------------------------------------------------------------------------
 * Persistence
 * ------------------------------------------------------------------------ */

PyDoc_STRVAR(bf_save_index_doc,
"save_index($self, /, path_to_index)\n--\n\n"
"Saves the index (hnswc's format, checksummed; written to a temporary file\n"
"and renamed). RuntimeError if it cannot be written.");

static PyObject *BF_save_index(BFIndexObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"path_to_index", NULL};
    PyObject *path = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O&:save_index", kwlist, PyUnicode_FSConverter,
                                     &path))
        return NULL;
    if (bf_need(self, "save_index") < 0) {
        Py_DECREF(path);
        return NULL;
    }
    return hpy_save(&self->base.lock, &self->ix, path, 0); /* saves alongside adds */
}

/*
 * Takes over a loaded index after checking that it is a flat index of this
 * object's space and dim; `from` names the source in messages. Returns 0,
 * or -1 with RuntimeError (ix freed).
 */
static int bf_adopt(BFIndexObject *self, hnswc_index *ix, const char *from)
{
    hnswc_info info;
    hnswc_get_info(ix, &info);
    if (info.kind != HNSWC_KIND_FLAT || info.dim != (uint32_t)self->base.dim ||
        info.metric != self->base.metric) {
        PyErr_Format(PyExc_RuntimeError,
                     "%s holds %s '%s' index of dim %u, but this BFIndex is '%s' with dim %d",
                     from, info.kind == HNSWC_KIND_FLAT ? "an exact" : "an HNSW",
                     hpy_space_name(info.metric), (unsigned)info.dim,
                     hpy_space_name(self->base.metric), self->base.dim);
        hnswc_free(ix);
        return -1;
    }
    bf_install(self, ix);
    return 0;
}

PyDoc_STRVAR(bf_load_index_doc,
"load_index($self, /, path_to_index, max_elements=0)\n--\n\n"
"Loads an index saved by BFIndex.save_index (this version's or hnswc\n"
"0.1's) or by hnswlib's BFIndex. The limit becomes the larger of\n"
"max_elements and the file's. RuntimeError if the file is missing,\n"
"corrupted, or of another space or dimension.");

static PyObject *BF_load_index(BFIndexObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"path_to_index", "max_elements", NULL};
    PyObject *path = NULL;
    uint64_t max_elements = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O&|O&:load_index", kwlist,
                                     PyUnicode_FSConverter, &path, hpy_conv_u64, &max_elements))
        return NULL;
    if (hpy_check_ready(&self->base) < 0 || (hpy_in_filter_of(self) && !hpy_reentry_error())) {
        Py_DECREF(path);
        return NULL;
    }
    const char *p = PyBytes_AS_STRING(path);
    hnswc_index *ix = NULL;
    hnswc_file_info probe;
    hnswc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = hnswc_probe_file(p, &probe);
    if (st == HNSWC_OK && probe.kind == HNSWC_FILE_HNSWC)
        st = hnswc_load(p, &ix);
    else if (st == HNSWC_OK && probe.kind == HNSWC_FILE_HNSWLIB)
        st = hnswc_load_hnswlib(p, self->base.metric, &ix);
    Py_END_ALLOW_THREADS
    if (st == HNSWC_OK && ix == NULL) {
        PyErr_Format(PyExc_RuntimeError,
                     "load_index: %s is neither an hnswc index nor an hnswlib BFIndex file", p);
        Py_DECREF(path);
        return NULL;
    }
    if (st != HNSWC_OK) {
        hpy_raise_status(st, "load_index");
        Py_DECREF(path);
        return NULL;
    }
    int rc = bf_adopt(self, ix, "load_index: the file");
    Py_DECREF(path);
    if (rc < 0)
        return NULL;
    hnswc_info info = bf_info(self);
    uint64_t limit = max_elements > info.capacity ? max_elements : info.capacity;
    self->base.max_elements = limit > info.count ? limit : info.count;
    self->base.next_label = info.count;
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------------
 * Reading elements back, counts
 * ------------------------------------------------------------------------ */

static PyObject *BF_get_max_elements(BFIndexObject *self, PyObject *unused)
{
    (void)unused;
    if (bf_need(self, "get_max_elements") < 0)
        return NULL;
    return PyLong_FromUnsignedLongLong(self->base.max_elements);
}

static PyObject *BF_get_current_count(BFIndexObject *self, PyObject *unused)
{
    (void)unused;
    if (bf_need(self, "get_current_count") < 0)
        return NULL;
    return PyLong_FromUnsignedLongLong(bf_info(self).count);
}

PyDoc_STRVAR(bf_get_items_doc,
"get_items($self, /, ids=None, return_type='numpy')\n--\n\n"
"hnswc extension: the stored vectors of labels (normalised for cosine).");

static PyObject *BF_get_items(BFIndexObject *self, PyObject *args, PyObject *kwds)
{
    PyObject *ids;
    int as_list;
    if (hpy_items_args(args, kwds, &ids, &as_list) < 0)
        return NULL;
    if (bf_need(self, "get_items") < 0)
        return NULL;
    PyArrayObject *lab, *out;
    size_t n;
    if (hpy_items_arrays(ids, self->base.dim, &lab, &out, &n) < 0)
        return NULL;
    size_t dim = (size_t)self->base.dim;
    hnswc_status st = HNSWC_OK;
    hpy_lock_read(&self->base.lock);
    Py_BEGIN_ALLOW_THREADS
    for (size_t i = 0; i < n && st == HNSWC_OK; i++)
        st = hnswc_get_vector(self->ix, ((const uint64_t *)PyArray_DATA(lab))[i],
                              (float *)PyArray_DATA(out) + i * dim);
    Py_END_ALLOW_THREADS
    hpy_unlock(&self->base.lock);
    Py_XDECREF(lab);
    if (st != HNSWC_OK) {
        Py_DECREF(out);
        return st == HNSWC_ERR_NOT_FOUND ? hpy_label_not_found() : hpy_raise_status(st, "get_items");
    }
    return hpy_items_result(out, as_list);
}

static PyObject *BF_get_ids_list(BFIndexObject *self, PyObject *unused)
{
    (void)unused;
    if (bf_need(self, "get_ids_list") < 0)
        return NULL;
    /* the write side: no add or delete_vector changes the count meanwhile */
    hpy_lock_write(&self->base.lock);
    size_t n = (size_t)bf_info(self).count, written = 0;
    uint64_t *labels = malloc(n ? n * sizeof(*labels) : 1);
    hnswc_status st = labels ? hnswc_get_labels(self->ix, labels, n, &written) : HNSWC_ERR_NOMEM;
    hpy_unlock(&self->base.lock);
    PyObject *list = st == HNSWC_OK ? PyList_New((Py_ssize_t)written) : NULL;
    for (size_t i = 0; list != NULL && i < written; i++) {
        PyObject *v = PyLong_FromUnsignedLongLong(labels[i]);
        if (v == NULL)
            Py_CLEAR(list);
        else
            PyList_SET_ITEM(list, (Py_ssize_t)i, v);
    }
    free(labels);
    if (st != HNSWC_OK)
        return st == HNSWC_ERR_NOMEM && !labels ? PyErr_NoMemory()
                                                : hpy_raise_status(st, "get_ids_list");
    return list;
}

/* ------------------------------------------------------------------------
 * Pickling: (BFIndex, (space, dim), state). The state holds the index in
 * hnswc's serialised format; version 1 states (hnswc 0.1: rows and labels
 * as bytes) are still read.
 * ------------------------------------------------------------------------ */

static PyObject *BF_getstate(BFIndexObject *self, PyObject *unused)
{
    (void)unused;
    if (hpy_check_ready(&self->base) < 0)
        return NULL;
    if (hpy_in_filter_of(self))
        return hpy_reentry_error();
    PyObject *blob = Py_None;
    Py_INCREF(blob);
    hpy_lock_read(&self->base.lock);
    if (self->ix != NULL) {
        void *buf = NULL;
        size_t size = 0;
        hnswc_status st;
        Py_BEGIN_ALLOW_THREADS
        st = hnswc_serialize(self->ix, &buf, &size);
        Py_END_ALLOW_THREADS
        Py_DECREF(blob);
        blob = st == HNSWC_OK ? PyBytes_FromStringAndSize(buf, (Py_ssize_t)size)
                              : hpy_raise_status(st, "pickle");
        hnswc_buffer_free(buf);
    }
    hpy_unlock(&self->base.lock);
    if (blob == NULL)
        return NULL;
    return Py_BuildValue("{s:i,s:O,s:K,s:K,s:i,s:N}", "ser_version", BF_SER_VERSION, "inited",
                         self->ix ? Py_True : Py_False, "max_elements",
                         (unsigned long long)self->base.max_elements, "cur_element_label",
                         (unsigned long long)self->base.next_label, "num_threads",
                         self->base.num_threads, "index", blob);
}

/* A version-1 state's rows (normalised already, for cosine) into a new
 * index; NULL with an exception. */
static hnswc_index *bf_from_rows(BFIndexObject *self, PyObject *v, PyObject *l)
{
    size_t dim = (size_t)self->base.dim;
    size_t count = (size_t)PyBytes_GET_SIZE(l) / sizeof(uint64_t);
    if ((size_t)PyBytes_GET_SIZE(l) != count * sizeof(uint64_t) ||
        (size_t)PyBytes_GET_SIZE(v) != count * dim * sizeof(float)) {
        PyErr_SetString(PyExc_RuntimeError, "Unpickle Error: inconsistent sizes");
        return NULL;
    }
    /* copies: bytes objects promise no alignment for floats */
    float *rows = malloc(count ? count * dim * sizeof(float) : 1);
    uint64_t *labels = malloc(count ? count * sizeof(uint64_t) : 1);
    hnswc_index *ix = rows && labels ? bf_create(self, count) : NULL;
    if (!rows || !labels)
        PyErr_NoMemory();
    hnswc_status st = HNSWC_OK;
    if (ix != NULL) {
        memcpy(rows, PyBytes_AS_STRING(v), count * dim * sizeof(float));
        memcpy(labels, PyBytes_AS_STRING(l), count * sizeof(uint64_t));
        st = hnswc_add_batch(ix, rows, labels, count, 0, 1, NULL);
    }
    free(rows);
    free(labels);
    if (st != HNSWC_OK) {
        hnswc_free(ix);
        hpy_raise_status(st, "Unpickle Error");
        return NULL;
    }
    return ix;
}

static PyObject *BF_setstate(BFIndexObject *self, PyObject *state)
{
    if (!PyDict_Check(state) || !self->base.ready) {
        PyErr_SetString(PyExc_RuntimeError, "Unpickle Error: Invalid state!");
        return NULL;
    }
    if (hpy_in_filter_of(self))
        return hpy_reentry_error();
    PyObject *inited = PyDict_GetItemString(state, "inited");
    PyObject *maxel = PyDict_GetItemString(state, "max_elements");
    PyObject *next = PyDict_GetItemString(state, "cur_element_label");
    PyObject *nt = PyDict_GetItemString(state, "num_threads");
    PyObject *blob = PyDict_GetItemString(state, "index");
    PyObject *v = PyDict_GetItemString(state, "vectors");
    PyObject *l = PyDict_GetItemString(state, "labels");
    int v1 = blob == NULL && v != NULL && l != NULL && PyBytes_Check(v) && PyBytes_Check(l);
    if (!inited || !maxel || !next || !nt || (!blob && !v1)) {
        PyErr_SetString(PyExc_RuntimeError, "Unpickle Error: Invalid state!");
        return NULL;
    }
    uint64_t max_elements, next_label;
    if (!hpy_conv_u64(maxel, &max_elements) || !hpy_conv_u64(next, &next_label))
        return NULL;
    long threads = PyLong_AsLong(nt);
    if (threads == -1 && PyErr_Occurred())
        return NULL;
    int is_inited = PyObject_IsTrue(inited);
    if (is_inited < 0)
        return NULL;
    hnswc_index *ix = NULL;
    if (v1 && is_inited) {
        if ((ix = bf_from_rows(self, v, l)) == NULL)
            return NULL;
    } else if (!v1 && blob != Py_None) {
        if (hpy_deserialize(blob, &ix) < 0)
            return NULL;
    }
    if (ix != NULL && bf_adopt(self, ix, "Unpickle Error: the state") < 0)
        return NULL;
    if (ix == NULL)
        bf_install(self, NULL);
    self->base.max_elements = max_elements;
    self->base.next_label = next_label;
    self->base.num_threads = (int)threads;
    Py_RETURN_NONE;
}

static PyObject *BF_reduce(BFIndexObject *self, PyObject *unused)
{
    (void)unused;
    return hpy_reduce(&self->base, BF_getstate(self, NULL));
}

/* ------------------------------------------------------------------------
 * Properties and the type
 * ------------------------------------------------------------------------ */

static PyObject *BF_get_space(BFIndexObject *self, void *c)
{
    (void)c;
    return PyUnicode_FromString(hpy_space_name(self->base.metric));
}

static PyObject *BF_get_max_elements_prop(BFIndexObject *self, void *c)
{
    (void)c;
    return PyLong_FromUnsignedLongLong(self->ix ? self->base.max_elements : 0);
}

static PyObject *BF_get_element_count(BFIndexObject *self, void *c)
{
    (void)c;
    return PyLong_FromUnsignedLongLong(bf_info(self).count);
}

static PyGetSetDef BF_getset[] = {
    {"space", (getter)BF_get_space, NULL, "The space: 'l2', 'ip' or 'cosine'.", NULL},
    {"dim", (getter)hpy_get_dim, NULL, "The vector dimension.", NULL},
    {"max_elements", (getter)BF_get_max_elements_prop, NULL, "The element limit.", NULL},
    {"element_count", (getter)BF_get_element_count, NULL, "Elements stored.", NULL},
    {"num_threads", (getter)hpy_get_num_threads, (setter)hpy_set_num_threads_prop,
     "Default number of threads of knn_query.", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

#define BF_KW(name, fn, doc) \
    {#name, (PyCFunction)(void (*)(void))fn, METH_VARARGS | METH_KEYWORDS, doc}

static PyMethodDef BF_methods[] = {
    BF_KW(init_index, BF_init_index, bf_init_index_doc),
    BF_KW(add_items, BF_add_items, bf_add_items_doc),
    BF_KW(delete_vector, BF_delete_vector, bf_delete_vector_doc),
    BF_KW(knn_query, BF_knn_query, bf_knn_query_doc),
    BF_KW(save_index, BF_save_index, bf_save_index_doc),
    BF_KW(load_index, BF_load_index, bf_load_index_doc),
    BF_KW(get_items, BF_get_items, bf_get_items_doc),
    BF_KW(set_num_threads, hpy_set_num_threads,
          "set_num_threads($self, /, num_threads)\n--\n\nDefault threads of knn_query."),
    {"get_max_elements", (PyCFunction)BF_get_max_elements, METH_NOARGS,
     "get_max_elements($self, /)\n--\n\nThe element limit."},
    {"get_current_count", (PyCFunction)BF_get_current_count, METH_NOARGS,
     "get_current_count($self, /)\n--\n\nElements stored."},
    {"get_ids_list", (PyCFunction)BF_get_ids_list, METH_NOARGS,
     "get_ids_list($self, /)\n--\n\nhnswc extension: the labels stored."},
    {"__getstate__", (PyCFunction)BF_getstate, METH_NOARGS, "The picklable state (a dict)."},
    {"__setstate__", (PyCFunction)BF_setstate, METH_O, "Restores a state from __getstate__."},
    {"__reduce__", (PyCFunction)BF_reduce, METH_NOARGS, "Pickle support."},
    {NULL, NULL, 0, NULL}};

PyDoc_STRVAR(BF_doc,
"BFIndex(space, dim)\n--\n\n"
"An exact (brute-force) index, a drop-in replacement for hnswlib.BFIndex:\n"
"every query is compared with every element. Distances are those of\n"
"hnswc.Index, so it serves as ground truth for it.");

PyTypeObject HnswcBFIndex_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "hnswc.BFIndex",
    .tp_basicsize = sizeof(BFIndexObject),
    .tp_dealloc = (destructor)BF_dealloc,
    .tp_repr = (reprfunc)hpy_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = BF_doc,
    .tp_methods = BF_methods,
    .tp_getset = BF_getset,
    .tp_init = (initproc)BF_init,
    .tp_new = BF_new,
};
