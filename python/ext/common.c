/*
 * common.c -- argument conversion, errors, locks and filters shared by
 * index.c and bfindex.c. See common.h for the contracts.
 */
#define NO_IMPORT_ARRAY
#include "common.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------------
 * Spaces
 * ------------------------------------------------------------------------ */

int hpy_parse_space(PyObject *space, hnswc_metric *metric)
{
    const char *s = PyUnicode_Check(space) ? PyUnicode_AsUTF8(space) : NULL;
    if (s == NULL) {
        PyErr_Clear();
    } else if (strcmp(s, "l2") == 0) {
        *metric = HNSWC_METRIC_L2;
        return 0;
    } else if (strcmp(s, "ip") == 0) {
        *metric = HNSWC_METRIC_IP;
        return 0;
    } else if (strcmp(s, "cosine") == 0) {
        *metric = HNSWC_METRIC_COSINE;
        return 0;
    }
    PyErr_SetString(PyExc_RuntimeError, "Space name must be one of l2, ip, or cosine.");
    return -1;
}

const char *hpy_space_name(hnswc_metric metric)
{
    switch (metric) {
    case HNSWC_METRIC_IP: return "ip";
    case HNSWC_METRIC_COSINE: return "cosine";
    case HNSWC_METRIC_L2: break;
    }
    return "l2";
}

/* ------------------------------------------------------------------------
 * Errors
 * ------------------------------------------------------------------------ */

PyObject *hpy_raise_status(hnswc_status status, const char *what)
{
    PyObject *type;
    switch (status) {
    case HNSWC_ERR_NOMEM:
        type = PyExc_MemoryError;
        break;
    case HNSWC_ERR_NULL:
    case HNSWC_ERR_INVALID:
    case HNSWC_ERR_NONFINITE:
        type = PyExc_ValueError;
        break;
    default:
        type = PyExc_RuntimeError;
        break;
    }
    const char *msg = hnswc_errmsg(NULL);
    if (msg == NULL || msg[0] == '\0')
        msg = hnswc_status_string(status);
    PyErr_Format(type, "%s: %s", what, msg);
    return NULL;
}

PyObject *hpy_not_initialised(const char *cls, const char *method)
{
    PyErr_Format(PyExc_RuntimeError,
                 "%s.%s: the index is not initialized; call init_index() or load_index() first",
                 cls, method);
    return NULL;
}

/* ------------------------------------------------------------------------
 * The part both index objects share
 * ------------------------------------------------------------------------ */

/* "Index" or "BFIndex": the class `b` is (or derives from), for messages. */
static const char *class_name(const hpy_base *b)
{
    return PyObject_TypeCheck((PyObject *)b, &HnswcBFIndex_Type) ? "BFIndex" : "Index";
}

PyObject *hpy_base_new(PyTypeObject *type)
{
    hpy_base *b = (hpy_base *)type->tp_alloc(type, 0);
    if (b == NULL)
        return NULL;
    if (pthread_rwlock_init(&b->lock, NULL) != 0) {
        Py_DECREF(b);
        return PyErr_NoMemory();
    }
    b->num_threads = (int)hpy_cpu_count();
    return (PyObject *)b;
}

void hpy_base_dealloc(hpy_base *b)
{
    pthread_rwlock_destroy(&b->lock);
    Py_TYPE(b)->tp_free((PyObject *)b);
}

int hpy_check_ready(hpy_base *b)
{
    if (!b->ready) {
        PyErr_Format(PyExc_RuntimeError, "hnswc.%s.__init__ was not called", class_name(b));
        return -1;
    }
    return 0;
}

int hpy_need(hpy_base *b, int has_state, const char *method)
{
    if (hpy_check_ready(b) < 0)
        return -1;
    if (hpy_in_filter_of(b)) {
        hpy_reentry_error();
        return -1;
    }
    if (!has_state) {
        hpy_not_initialised(class_name(b), method);
        return -1;
    }
    return 0;
}

int hpy_check_dim(long dim)
{
    if (dim < 1 || dim > 65536) {
        PyErr_Format(PyExc_ValueError, "dim must be between 1 and 65536, got %ld", dim);
        return -1;
    }
    return 0;
}

PyObject *hpy_repr(hpy_base *b)
{
    if (!b->ready)
        return PyUnicode_FromFormat("<hnswc.%s (uninitialised)>", class_name(b));
    return PyUnicode_FromFormat("<hnswc.%s(space='%s', dim=%d)>", class_name(b),
                                hpy_space_name(b->metric), b->dim);
}

PyObject *hpy_get_dim(hpy_base *b, void *closure)
{
    (void)closure;
    return PyLong_FromLong(b->dim);
}

PyObject *hpy_get_num_threads(hpy_base *b, void *closure)
{
    (void)closure;
    return PyLong_FromLong(b->num_threads);
}

int hpy_set_num_threads_prop(hpy_base *b, PyObject *value, void *closure)
{
    (void)closure;
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete num_threads");
        return -1;
    }
    long n = PyLong_AsLong(value);
    if (n == -1 && PyErr_Occurred())
        return -1;
    if (n > INT32_MAX || n < INT32_MIN) {
        PyErr_SetString(PyExc_OverflowError, "num_threads out of range");
        return -1;
    }
    b->num_threads = (int)n;
    return 0;
}

PyObject *hpy_set_num_threads(hpy_base *b, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"num_threads", NULL};
    int n;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "i:set_num_threads", kwlist, &n))
        return NULL;
    b->num_threads = n;
    Py_RETURN_NONE;
}

PyObject *hpy_reduce(hpy_base *b, PyObject *state)
{
    if (state == NULL)
        return NULL;
    /* (type, (space, dim), state): unpickling calls Type(space, dim), then
     * __setstate__(state). */
    return Py_BuildValue("(O(si)N)", (PyObject *)Py_TYPE(b), hpy_space_name(b->metric), b->dim,
                         state);
}

/* ------------------------------------------------------------------------
 * Argument conversion
 * ------------------------------------------------------------------------ */

int hpy_conv_u64(PyObject *obj, void *out)
{
    if (PyFloat_Check(obj) || !PyIndex_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "expected a non-negative integer, got %.100s",
                     Py_TYPE(obj)->tp_name);
        return 0;
    }
    PyObject *num = PyNumber_Index(obj);
    if (num == NULL)
        return 0;
    int overflow = 0;
    long long small = PyLong_AsLongLongAndOverflow(num, &overflow);
    if (small == -1 && PyErr_Occurred()) {
        Py_DECREF(num);
        return 0;
    }
    if (overflow < 0 || (overflow == 0 && small < 0)) {
        Py_DECREF(num);
        PyErr_SetString(PyExc_TypeError, "expected a non-negative integer, got a negative one");
        return 0;
    }
    unsigned long long v = PyLong_AsUnsignedLongLong(num);
    Py_DECREF(num);
    if (v == (unsigned long long)-1 && PyErr_Occurred())
        return 0;
    *(uint64_t *)out = (uint64_t)v;
    return 1;
}

int hpy_conv_size(PyObject *obj, void *out)
{
    uint64_t v;
    if (!hpy_conv_u64(obj, &v))
        return 0;
    if (v > (uint64_t)SIZE_MAX) {
        PyErr_SetString(PyExc_OverflowError, "integer too large");
        return 0;
    }
    *(size_t *)out = (size_t)v;
    return 1;
}

/*
 * `obj` as a fresh C-contiguous array of `type`, any shape: the form every
 * array argument takes here. FORCECAST: any numeric dtype converts, as
 * hnswlib's forcecast does; ENSURECOPY: the result is private to the call,
 * so it can be read with the GIL released while Python code runs.
 */
static PyArrayObject *private_array(PyObject *obj, int type)
{
    return (PyArrayObject *)PyArray_FROMANY(
        obj, type, 0, 0, NPY_ARRAY_CARRAY | NPY_ARRAY_FORCECAST | NPY_ARRAY_ENSURECOPY);
}

PyArrayObject *hpy_float_matrix(PyObject *data, int dim, const char *what, size_t *rows)
{
    PyArrayObject *arr = private_array(data, NPY_FLOAT32);
    if (arr == NULL)
        return NULL;
    int nd = PyArray_NDIM(arr);
    if (nd != 1 && nd != 2) {
        PyErr_Format(PyExc_RuntimeError,
                     "Input vector data wrong shape. Number of dimensions %d. "
                     "Data must be a 1D or 2D array.", nd);
        Py_DECREF(arr);
        return NULL;
    }
    npy_intp n = nd == 2 ? PyArray_DIM(arr, 0) : 1;
    npy_intp cols = PyArray_DIM(arr, nd - 1);
    if (cols != dim) {
        PyErr_Format(PyExc_RuntimeError,
                     "Wrong dimensionality of the %s: got %zd, the index has dim %d",
                     what, (Py_ssize_t)cols, dim);
        Py_DECREF(arr);
        return NULL;
    }
    *rows = (size_t)n;
    return arr;
}

PyArrayObject *hpy_label_array(PyObject *ids, size_t rows)
{
    PyArrayObject *arr = private_array(ids, NPY_UINT64);
    if (arr == NULL)
        return NULL;
    int nd = PyArray_NDIM(arr);
    int ok = (nd == 1 && (size_t)PyArray_DIM(arr, 0) == rows) || (nd == 0 && rows == 1);
    if (!ok) {
        PyErr_Format(PyExc_RuntimeError,
                     "The input label shape %d does not match the input data vector shape %zu",
                     nd, rows);
        Py_DECREF(arr);
        return NULL;
    }
    return arr;
}

int hpy_add_arrays(const hpy_base *b, PyObject *data, PyObject *ids, PyArrayObject **vecs,
                   PyArrayObject **labels, size_t *rows)
{
    *vecs = hpy_float_matrix(data, b->dim, "vectors", rows);
    if (*vecs == NULL)
        return -1;
    if (ids != Py_None) {
        *labels = hpy_label_array(ids, *rows);
    } else {
        npy_intp n = (npy_intp)*rows;
        *labels = (PyArrayObject *)PyArray_SimpleNew(1, &n, NPY_UINT64);
        if (*labels != NULL) {
            uint64_t *l = PyArray_DATA(*labels);
            for (size_t i = 0; i < *rows; i++)
                l[i] = b->next_label + i;
        }
    }
    if (*labels == NULL) {
        Py_CLEAR(*vecs);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * get_items' frame
 * ------------------------------------------------------------------------ */

int hpy_items_args(PyObject *args, PyObject *kwds, PyObject **ids, int *as_list)
{
    static char *kwlist[] = {"ids", "return_type", NULL};
    const char *rt = "numpy";
    *ids = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|Os:get_items", kwlist, ids, &rt))
        return -1;
    *as_list = strcmp(rt, "list") == 0;
    if (!*as_list && strcmp(rt, "numpy") != 0) {
        PyErr_SetString(PyExc_ValueError, "return_type should be \"numpy\" or \"list\"");
        return -1;
    }
    return 0;
}

int hpy_items_arrays(PyObject *ids, int dim, PyArrayObject **lab, PyArrayObject **out,
                     size_t *n)
{
    *lab = NULL;
    *n = 0;
    if (ids != Py_None) {
        *lab = private_array(ids, NPY_UINT64);
        if (*lab == NULL)
            return -1;
        /* A scalar is refused (hnswlib's ValueError). Any other shape is
         * read as its labels in C order: the (n, 1) array knn_query returns
         * gives n vectors, as in hnswlib. For (n, k > 1) hnswlib reads only
         * the first n labels of that order; we return all n * k (a
         * superset, so its first n rows are what hnswlib gives). The copy
         * is C-contiguous, so its buffer is the flat list. */
        if (PyArray_NDIM(*lab) == 0) {
            Py_CLEAR(*lab);
            PyErr_SetString(PyExc_ValueError,
                            "get_items accepts a list of indices and returns a list of vectors");
            return -1;
        }
        *n = (size_t)PyArray_SIZE(*lab);
    }
    npy_intp shape[2] = {(npy_intp)*n, dim};
    *out = (PyArrayObject *)PyArray_SimpleNew(2, shape, NPY_FLOAT32);
    if (*out == NULL) {
        Py_CLEAR(*lab);
        return -1;
    }
    return 0;
}

PyObject *hpy_items_result(PyArrayObject *out, int as_list)
{
    if (!as_list)
        return (PyObject *)out;
    PyObject *list = PyArray_ToList(out);
    Py_DECREF(out);
    return list;
}

PyObject *hpy_label_not_found(void)
{
    PyErr_SetString(PyExc_RuntimeError, "Label not found");
    return NULL;
}

unsigned hpy_cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1u;
}

unsigned hpy_batch_threads(int requested, int dflt, size_t rows)
{
    size_t t = requested > 0 ? (size_t)requested
               : dflt > 0    ? (size_t)dflt
                             : (size_t)hpy_cpu_count();
    if (rows <= t * 4)
        t = 1;
    if (t > rows)
        t = rows > 0 ? rows : 1;
    if (t > 4096)
        t = 4096; /* far beyond any useful count; keeps thread creation sane */
    return (unsigned)t;
}

/* ------------------------------------------------------------------------
 * The per-object reader/writer lock
 * ------------------------------------------------------------------------ */

void hpy_lock_read(pthread_rwlock_t *lock)
{
    if (pthread_rwlock_tryrdlock(lock) == 0)
        return;
    Py_BEGIN_ALLOW_THREADS
    pthread_rwlock_rdlock(lock);
    Py_END_ALLOW_THREADS
}

void hpy_lock_write(pthread_rwlock_t *lock)
{
    if (pthread_rwlock_trywrlock(lock) == 0)
        return;
    Py_BEGIN_ALLOW_THREADS
    pthread_rwlock_wrlock(lock);
    Py_END_ALLOW_THREADS
}

void hpy_unlock(pthread_rwlock_t *lock)
{
    pthread_rwlock_unlock(lock);
}

PyObject *hpy_save(pthread_rwlock_t *lock, hnswc_index **slot, PyObject *path, int exclusive)
{
    hnswc_status st;
    if (exclusive)
        hpy_lock_write(lock);
    else
        hpy_lock_read(lock);
    Py_BEGIN_ALLOW_THREADS
    st = hnswc_save(*slot, PyBytes_AS_STRING(path));
    Py_END_ALLOW_THREADS
    hpy_unlock(lock);
    Py_DECREF(path);
    if (st != HNSWC_OK)
        return hpy_raise_status(st, "save_index");
    Py_RETURN_NONE;
}

int hpy_deserialize(PyObject *blob, hnswc_index **out)
{
    Py_buffer view;
    if (PyObject_GetBuffer(blob, &view, PyBUF_SIMPLE) < 0)
        return -1;
    hnswc_status st;
    Py_BEGIN_ALLOW_THREADS
    st = hnswc_deserialize(view.buf, (size_t)view.len, out);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    if (st != HNSWC_OK) {
        hpy_raise_status(st, "Unpickle Error");
        return -1;
    }
    return 0;
}

hnswc_info hpy_info(const hnswc_index *ix)
{
    hnswc_info info;
    memset(&info, 0, sizeof(info));
    if (ix != NULL)
        hnswc_get_info(ix, &info);
    return info;
}

void hpy_install(pthread_rwlock_t *lock, hnswc_index **slot, hnswc_index *fresh)
{
    hpy_lock_write(lock);
    hnswc_index *old = *slot;
    *slot = fresh;
    hpy_unlock(lock);
    if (old != NULL) {
        Py_BEGIN_ALLOW_THREADS
        hnswc_free(old);
        Py_END_ALLOW_THREADS
    }
}

/* ------------------------------------------------------------------------
 * Search filters
 * ------------------------------------------------------------------------ */

/* The index whose Python filter this thread is running, if any. */
static _Thread_local const void *tls_filter_owner;

int hpy_in_filter_of(const void *owner)
{
    return owner != NULL && tls_filter_owner == owner;
}

PyObject *hpy_reentry_error(void)
{
    PyErr_SetString(PyExc_RuntimeError,
                    "a knn_query filter must not call methods of the index it filters");
    return NULL;
}

/* The C side of a Python callable filter. Runs on the thread that called
 * knn_query (see index.c), with the GIL released around it. */
static int filter_callable(uint64_t label, void *user_data)
{
    hpy_filter *f = user_data;
    if (f->failed)
        return 0;
    PyGILState_STATE gil = PyGILState_Ensure();
    const void *saved_owner = tls_filter_owner;
    tls_filter_owner = f->owner;
    int allowed = 0;
    PyObject *arg = PyLong_FromUnsignedLongLong(label);
    PyObject *res = arg != NULL ? PyObject_CallOneArg(f->callable, arg) : NULL;
    Py_XDECREF(arg);
    if (res != NULL) {
        allowed = PyObject_IsTrue(res);
        Py_DECREF(res);
    }
    tls_filter_owner = saved_owner;
    if (res == NULL || allowed < 0) {
        /* Keep the first exception; the search then sees "not allowed" for
         * every label and ends quickly, and knn_query re-raises it. */
        f->failed = 1;
        PyErr_Fetch(&f->exc_type, &f->exc_value, &f->exc_tb);
        allowed = 0;
    }
    PyGILState_Release(gil);
    return allowed;
}

static int filter_ids(uint64_t label, void *user_data)
{
    return hnswc_labelset_filter(label, &((hpy_filter *)user_data)->ids);
}

static int filter_mask(uint64_t label, void *user_data)
{
    const hpy_filter *f = user_data;
    return label < (uint64_t)f->mask_len && f->mask[label];
}

hnswc_filter_fn hpy_filter_fn(const hpy_filter *f)
{
    switch (f->kind) {
    case HPY_FILTER_CALLABLE: return filter_callable;
    case HPY_FILTER_IDS: return filter_ids;
    case HPY_FILTER_MASK: return filter_mask;
    case HPY_FILTER_NONE: break;
    }
    return NULL;
}

static int filter_type_error(void)
{
    PyErr_SetString(PyExc_TypeError,
                    "filter must be None, a callable taking a label, an array of allowed "
                    "labels (integers) or a boolean mask indexed by label");
    return -1;
}

/*
 * Fills *f from a knn_query `filter` argument (None, callable, ids, mask).
 * Returns 0, or -1 with TypeError/ValueError set. Release with
 * filter_release, on success or failure.
 */
static int filter_init(hpy_filter *f, PyObject *filter, const void *owner)
{
    memset(f, 0, sizeof(*f));
    f->owner = owner;
    if (filter == NULL || filter == Py_None)
        return 0;
    if (PyCallable_Check(filter)) {
        f->kind = HPY_FILTER_CALLABLE;
        f->callable = filter;
        return 0;
    }
    if (PyUnicode_Check(filter) || PyBytes_Check(filter))
        return filter_type_error();

    /* Sets have no order NumPy understands: list them first. */
    PyObject *src = filter;
    if (PyAnySet_Check(filter)) {
        src = PySequence_List(filter);
        if (src == NULL)
            return -1;
    } else {
        Py_INCREF(src);
    }
    PyArrayObject *raw = (PyArrayObject *)PyArray_FROMANY(src, NPY_NOTYPE, 0, 0, 0);
    Py_DECREF(src);
    if (raw == NULL) {
        PyErr_Clear();
        return filter_type_error();
    }
    if (PyArray_NDIM(raw) != 1) {
        Py_DECREF(raw);
        PyErr_SetString(PyExc_ValueError, "a filter array must be one-dimensional");
        return -1;
    }
    int type = PyArray_TYPE(raw);
    if (type == NPY_BOOL) {
        f->array = private_array((PyObject *)raw, NPY_BOOL);
        Py_DECREF(raw);
        if (f->array == NULL)
            return -1;
        f->kind = HPY_FILTER_MASK;
        f->mask = (const npy_bool *)PyArray_DATA(f->array);
        f->mask_len = (size_t)PyArray_DIM(f->array, 0);
        return 0;
    }
    if (!PyTypeNum_ISINTEGER(type) && PyArray_DIM(raw, 0) != 0) {
        Py_DECREF(raw);
        return filter_type_error();
    }
    /* Integer labels (an empty list of any type means: allow nothing). */
    f->array = private_array((PyObject *)raw, NPY_UINT64);
    Py_DECREF(raw);
    if (f->array == NULL)
        return -1;
    /* The copy is ours: the library sorts it in place into a set. */
    hnswc_status st = hnswc_labelset_init(&f->ids, (uint64_t *)PyArray_DATA(f->array),
                                          (size_t)PyArray_DIM(f->array, 0));
    if (st != HNSWC_OK) {
        hpy_raise_status(st, "knn_query filter");
        return -1;
    }
    f->kind = HPY_FILTER_IDS;
    return 0;
}

/* After a search: if the callable raised, restores its exception and
 * returns -1; else 0. Needs the GIL. */
static int filter_check(hpy_filter *f)
{
    if (!f->failed)
        return 0;
    PyErr_Restore(f->exc_type, f->exc_value, f->exc_tb);
    f->exc_type = f->exc_value = f->exc_tb = NULL;
    f->failed = 0;
    return -1;
}

/* Frees what filter_init took. Needs the GIL. */
static void filter_release(hpy_filter *f)
{
    Py_CLEAR(f->array);
    Py_CLEAR(f->exc_type);
    Py_CLEAR(f->exc_value);
    Py_CLEAR(f->exc_tb);
}

/* For searches outside knn_query's frame (range_query in removal.c). */
int hpy_filter_begin(hpy_filter *f, PyObject *filter, const void *owner)
{
    return filter_init(f, filter, owner);
}

int hpy_filter_end(hpy_filter *f)
{
    int rc = filter_check(f);
    filter_release(f);
    return rc;
}

/* ------------------------------------------------------------------------
 * knn_query's frame
 * ------------------------------------------------------------------------ */

int hpy_knn_args(PyObject *args, PyObject *kwds, PyObject **data, size_t *k, int *num_threads,
                 PyObject **filter)
{
    static char *kwlist[] = {"data", "k", "num_threads", "filter", NULL};
    *k = 1;
    *num_threads = -1;
    *filter = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|O&iO:knn_query", kwlist, data,
                                     hpy_conv_size, k, num_threads, filter))
        return -1;
    return 0;
}

int hpy_knn_begin(hpy_knn *q, PyArrayObject *queries, size_t rows, size_t k, PyObject *filter,
                  const void *owner)
{
    memset(q, 0, sizeof(*q));
    q->queries = queries;
    q->rows = rows;
    q->k = k;
    if (filter_init(&q->filter, filter, owner) < 0)
        return -1;
    if (k > 0 && rows > SIZE_MAX / sizeof(uint64_t) / k) {
        PyErr_NoMemory();
        return -1;
    }
    npy_intp shape[2] = {(npy_intp)rows, (npy_intp)k};
    q->labels = (PyArrayObject *)PyArray_SimpleNew(2, shape, NPY_UINT64);
    q->dists = (PyArrayObject *)PyArray_SimpleNew(2, shape, NPY_FLOAT32);
    q->found = malloc((rows > 0 ? rows : 1) * sizeof(*q->found));
    if (q->labels == NULL || q->dists == NULL || q->found == NULL) {
        if (q->found == NULL)
            PyErr_NoMemory();
        return -1;
    }
    return 0;
}

PyObject *hpy_knn_abort(hpy_knn *q)
{
    free(q->found);
    q->found = NULL;
    Py_CLEAR(q->labels);
    Py_CLEAR(q->dists);
    filter_release(&q->filter);
    Py_CLEAR(q->queries);
    return NULL;
}

PyObject *hpy_knn_query(hpy_base *base, hnswc_index *const *ixp, PyObject *args,
                        PyObject *kwds, const char *too_few)
{
    PyObject *data, *filter_obj;
    size_t k, rows;
    int num_threads;
    if (hpy_knn_args(args, kwds, &data, &k, &num_threads, &filter_obj) < 0)
        return NULL;
    if (hpy_need(base, *ixp != NULL, "knn_query") < 0)
        return NULL;
    PyArrayObject *queries = hpy_float_matrix(data, base->dim, "query vectors", &rows);
    if (queries == NULL)
        return NULL;
    hpy_knn q;
    if (hpy_knn_begin(&q, queries, rows, k, filter_obj, base) < 0)
        return hpy_knn_abort(&q);
    if (rows == 0 || k == 0)
        return hpy_knn_finish(&q, HNSWC_OK, too_few);

    const float *v = PyArray_DATA(queries);
    uint64_t *L = PyArray_DATA(q.labels);
    float *D = PyArray_DATA(q.dists);
    size_t dim = (size_t)base->dim;
    hnswc_filter_fn fn = hpy_filter_fn(&q.filter);
    hnswc_status st = HNSWC_OK;
    hpy_lock_read(&base->lock);
    hnswc_index *ix = *ixp;
    if (ix == NULL) { /* replaced while we waited for the lock */
        hpy_unlock(&base->lock);
        hpy_not_initialised(class_name(base), "knn_query");
        return hpy_knn_abort(&q);
    }
    if (q.filter.kind == HPY_FILTER_CALLABLE) {
        /* the callable takes the GIL back cheaply inside the filter, on
         * this thread */
        Py_BEGIN_ALLOW_THREADS
        for (size_t i = 0; i < rows && st == HNSWC_OK && !q.filter.failed; i++)
            st = hnswc_search(ix, v + i * dim, k, 0, fn, &q.filter, L + i * k, D + i * k,
                              &q.found[i]);
        Py_END_ALLOW_THREADS
    } else {
        unsigned threads = hpy_batch_threads(num_threads, base->num_threads, rows);
        Py_BEGIN_ALLOW_THREADS
        st = hnswc_search_batch(ix, v, rows, k, 0, fn, fn ? &q.filter : NULL, threads, L, D,
                                q.found);
        Py_END_ALLOW_THREADS
    }
    hpy_unlock(&base->lock);
    return hpy_knn_finish(&q, st, too_few);
}

PyObject *hpy_knn_finish(hpy_knn *q, hnswc_status st, const char *too_few)
{
    if (filter_check(&q->filter) < 0)
        return hpy_knn_abort(q);
    if (st != HNSWC_OK) {
        hpy_raise_status(st, "knn_query");
        return hpy_knn_abort(q);
    }
    for (size_t i = 0; q->k > 0 && i < q->rows; i++) {
        if (q->found[i] == (size_t)-1) {
            PyErr_NoMemory();
            return hpy_knn_abort(q);
        }
        if (q->found[i] != q->k) {
            PyErr_SetString(PyExc_RuntimeError, too_few);
            return hpy_knn_abort(q);
        }
    }
    PyArrayObject *labels = q->labels, *dists = q->dists;
    q->labels = q->dists = NULL;
    hpy_knn_abort(q); /* frees the rest */
    return Py_BuildValue("(NN)", labels, dists);
}
