/*
 * bfindex.c -- hnswc.BFIndex: hnswlib's exact (brute-force) index.
 *
 * libhnswc has no flat index, so this one lives here: a row-major float
 * matrix, a parallel label array and a label -> row hash table. Distances
 * come from libhnswc's own kernels (hnswc_distance), so they are exactly
 * those of hnswc.Index. As in hnswlib, cosine vectors are normalised once
 * when added (and queries once per query), then compared by inner product.
 *
 * Thread safety: knn_query (read lock, GIL released) may run on several
 * threads at once; add_items, delete_vector and load_index take the write
 * lock. Deleting swaps the last row into the hole, as hnswlib does.
 *
 * File format of save_index (little-endian, all fields native-aligned):
 *   "HNSWCBF1" | u32 version=1 | u32 metric | u32 dim | u32 0 |
 *   u64 count | u64 max_elements | u64 next_label |
 *   f32 vectors[count*dim] | u64 labels[count] | u32 CRC-32 of all before
 * load_index also reads hnswlib's BruteforceSearch files:
 *   u64 max_elements | u64 size_per_element (= dim*4+8) | u64 count |
 *   max_elements rows of (f32 vector[dim], u64 label)
 */
#define NO_IMPORT_ARRAY
#include "common.h"

#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------
 * Label -> row hash table (open addressing, linear probing)
 *
 * Any uint64 is a valid label (hnswlib wraps -1 to 2^64-1), so occupancy is
 * kept in its own byte array rather than in a sentinel key. Deletion shifts
 * later entries of the probe run back, so no tombstones are needed.
 * Not thread safe: used under the BFIndex write lock, or read under its
 * read lock.
 * ------------------------------------------------------------------------ */

typedef struct {
    uint64_t *keys;
    size_t *rows;
    unsigned char *used;
    size_t cap; /* power of two, or 0 */
    size_t n;
} lmap;

static size_t lmap_hash(uint64_t key, size_t cap)
{
    /* splitmix64's finaliser: labels are often consecutive integers */
    key ^= key >> 30;
    key *= 0xbf58476d1ce4e5b9ULL;
    key ^= key >> 27;
    key *= 0x94d049bb133111ebULL;
    key ^= key >> 31;
    return (size_t)key & (cap - 1);
}

static void lmap_free(lmap *m)
{
    free(m->keys);
    free(m->rows);
    free(m->used);
    memset(m, 0, sizeof(*m));
}

/* Finds key; returns 1 and sets *row, or 0. */
static int lmap_find(const lmap *m, uint64_t key, size_t *row)
{
    if (m->cap == 0)
        return 0;
    for (size_t i = lmap_hash(key, m->cap);; i = (i + 1) & (m->cap - 1)) {
        if (!m->used[i])
            return 0;
        if (m->keys[i] == key) {
            *row = m->rows[i];
            return 1;
        }
    }
}

/* Inserts or overwrites without growing; the table must have a free slot. */
static void lmap_set_nogrow(lmap *m, uint64_t key, size_t row)
{
    size_t i = lmap_hash(key, m->cap);
    while (m->used[i] && m->keys[i] != key)
        i = (i + 1) & (m->cap - 1);
    if (!m->used[i]) {
        m->used[i] = 1;
        m->keys[i] = key;
        m->n++;
    }
    m->rows[i] = row;
}

/* Makes room for `want` entries at load <= 1/2. Returns 0 or -1 (no memory,
 * table unchanged). */
static int lmap_reserve(lmap *m, size_t want)
{
    size_t cap = m->cap ? m->cap : 16;
    while (cap / 2 < want) {
        if (cap > SIZE_MAX / 4)
            return -1;
        cap *= 2;
    }
    if (cap == m->cap)
        return 0;
    lmap fresh = {0};
    fresh.keys = malloc(cap * sizeof(*fresh.keys));
    fresh.rows = malloc(cap * sizeof(*fresh.rows));
    fresh.used = calloc(cap, 1);
    fresh.cap = cap;
    if (fresh.keys == NULL || fresh.rows == NULL || fresh.used == NULL) {
        lmap_free(&fresh);
        return -1;
    }
    for (size_t i = 0; i < m->cap; i++)
        if (m->used[i])
            lmap_set_nogrow(&fresh, m->keys[i], m->rows[i]);
    lmap_free(m);
    *m = fresh;
    return 0;
}

static void lmap_delete(lmap *m, uint64_t key)
{
    if (m->cap == 0)
        return;
    size_t mask = m->cap - 1, i = lmap_hash(key, m->cap);
    while (m->used[i] && m->keys[i] != key)
        i = (i + 1) & mask;
    if (!m->used[i])
        return;
    /* Backward shift: move later members of the run into the hole when
     * their home slot does not lie (cyclically) after the hole. */
    size_t hole = i;
    for (size_t j = (i + 1) & mask; m->used[j]; j = (j + 1) & mask) {
        size_t home = lmap_hash(m->keys[j], m->cap);
        int movable = hole <= j ? (home <= hole || home > j) : (home <= hole && home > j);
        if (movable) {
            m->keys[hole] = m->keys[j];
            m->rows[hole] = m->rows[j];
            hole = j;
        }
    }
    m->used[hole] = 0;
    m->n--;
}

/* ------------------------------------------------------------------------
 * A minimal parallel for: items 0 .. n-1 handed out by an atomic counter
 * to `threads` threads (the caller's included). If a thread cannot be
 * started, the others simply take its share.
 * ------------------------------------------------------------------------ */

typedef struct {
    void (*fn)(void *ctx, size_t i);
    void *ctx;
    size_t n;
    atomic_size_t next;
} pfor;

static void *pfor_run(void *arg)
{
    pfor *p = arg;
    for (size_t i; (i = atomic_fetch_add(&p->next, 1)) < p->n;)
        p->fn(p->ctx, i);
    return NULL;
}

static void parallel_for(size_t n, unsigned threads, void (*fn)(void *, size_t), void *ctx)
{
    pfor p = {.fn = fn, .ctx = ctx, .n = n};
    atomic_init(&p.next, 0);
    pthread_t tid[64];
    unsigned started = 0;
    if (threads > 64)
        threads = 64;
    for (unsigned t = 1; t < threads; t++)
        if (pthread_create(&tid[started], NULL, pfor_run, &p) == 0)
            started++;
    pfor_run(&p);
    for (unsigned t = 0; t < started; t++)
        pthread_join(tid[t], NULL);
}

/* ------------------------------------------------------------------------
 * The object
 * ------------------------------------------------------------------------ */

typedef struct {
    hpy_base base;          /* lock, space, dim, limit, label counter...    */
    int inited;             /* init_index or load_index ran                 */
    float *vecs;            /* count rows of dim floats (normalised: cosine)*/
    uint64_t *labels;       /* label of each row                            */
    size_t count, cap;      /* rows used, rows allocated                    */
    lmap map;
} BFIndexObject;

/* The metric rows are compared with: cosine vectors are stored normalised. */
static hnswc_metric row_metric(const BFIndexObject *self)
{
    return self->base.metric == HNSWC_METRIC_COSINE ? HNSWC_METRIC_IP : self->base.metric;
}

/* Scales v to unit length; a zero vector stays zero (as in hnswc). */
static void normalise(float *v, size_t dim)
{
    double s = 0;
    for (size_t i = 0; i < dim; i++)
        s += (double)v[i] * v[i];
    if (s > 0) {
        float inv = (float)(1.0 / sqrt(s));
        for (size_t i = 0; i < dim; i++)
            v[i] *= inv;
    }
}

/* ValueError if any value is NaN or infinite (the same rule as hnswc.Index). */
static int check_finite(const float *v, size_t n, const char *what)
{
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(v[i])) {
            PyErr_Format(PyExc_ValueError, "%s: component %zu is not finite", what, i);
            return -1;
        }
    }
    return 0;
}

static int bf_need(BFIndexObject *self, const char *method)
{
    return hpy_need(&self->base, self->inited, method);
}

/* Grows the row arrays to hold `want` rows; 0 or -1 with MemoryError. */
static int bf_reserve(BFIndexObject *self, size_t want)
{
    if (want <= self->cap)
        return 0;
    size_t cap = self->cap ? self->cap : 64;
    while (cap < want)
        cap = cap > SIZE_MAX / 2 ? want : cap * 2;
    size_t dim = (size_t)self->base.dim;
    if (cap > SIZE_MAX / sizeof(float) / dim) {
        PyErr_NoMemory();
        return -1;
    }
    float *v = realloc(self->vecs, cap * dim * sizeof(float));
    if (v == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    self->vecs = v;
    uint64_t *l = realloc(self->labels, cap * sizeof(uint64_t));
    if (l == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    self->labels = l;
    self->cap = cap;
    return 0;
}

static void bf_clear(BFIndexObject *self)
{
    free(self->vecs);
    free(self->labels);
    lmap_free(&self->map);
    self->vecs = NULL;
    self->labels = NULL;
    self->count = self->cap = 0;
    self->inited = 0;
    self->base.max_elements = self->base.next_label = 0;
}

static PyObject *BF_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    (void)args;
    (void)kwds;
    return hpy_base_new(type);
}

static void BF_dealloc(BFIndexObject *self)
{
    bf_clear(self);
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
    hpy_lock_write(&self->base.lock);
    bf_clear(self);
    self->base.metric = metric;
    self->base.dim = (int)dim;
    self->base.ready = 1;
    hpy_unlock(&self->base.lock);
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
    if (self->inited) {
        PyErr_SetString(PyExc_RuntimeError, "The index is already initiated.");
        return NULL;
    }
    self->inited = 1;
    self->base.max_elements = max_elements;
    self->base.next_label = 0;
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------------
 * add_items, delete_vector
 * ------------------------------------------------------------------------ */

/* Stores rows (already normalised for cosine) under labels. Write lock held.
 * Returns 0, or -1 with an exception and nothing changed. */
static int bf_insert(BFIndexObject *self, const float *v, const uint64_t *lab, size_t rows)
{
    size_t dim = (size_t)self->base.dim;
    /* Count new distinct labels first, so a batch is all or nothing. */
    size_t fresh = 0;
    lmap seen = {0};
    if (lmap_reserve(&seen, rows) < 0) {
        PyErr_NoMemory();
        return -1;
    }
    for (size_t i = 0; i < rows; i++) {
        size_t r;
        if (!lmap_find(&self->map, lab[i], &r) && !lmap_find(&seen, lab[i], &r)) {
            lmap_set_nogrow(&seen, lab[i], 0);
            fresh++;
        }
    }
    lmap_free(&seen);
    if ((uint64_t)(self->count + fresh) > self->base.max_elements) {
        PyErr_SetString(PyExc_RuntimeError, "The number of elements exceeds the specified limit");
        return -1;
    }
    if (bf_reserve(self, self->count + fresh) < 0)
        return -1;
    if (lmap_reserve(&self->map, self->count + fresh) < 0) {
        PyErr_NoMemory();
        return -1;
    }
    for (size_t i = 0; i < rows; i++) {
        size_t r;
        if (!lmap_find(&self->map, lab[i], &r)) {
            r = self->count++;
            self->labels[r] = lab[i];
            lmap_set_nogrow(&self->map, lab[i], r);
        }
        memcpy(self->vecs + r * dim, v + i * dim, dim * sizeof(float));
    }
    return 0;
}

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
    float *v = PyArray_DATA(vecs);
    size_t dim = (size_t)self->base.dim;
    int rc = check_finite(v, rows * dim, "add_items");
    if (rc == 0 && self->base.metric == HNSWC_METRIC_COSINE)
        for (size_t i = 0; i < rows; i++)
            normalise(v + i * dim, dim);
    if (rc == 0) {
        hpy_lock_write(&self->base.lock);
        rc = bf_insert(self, v, PyArray_DATA(labels), rows);
        hpy_unlock(&self->base.lock);
    }
    if (rc == 0)
        self->base.next_label += rows;
    Py_DECREF(vecs);
    Py_DECREF(labels);
    if (rc < 0)
        return NULL;
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
    hpy_lock_write(&self->base.lock);
    size_t r;
    if (lmap_find(&self->map, label, &r)) {
        size_t last = self->count - 1, dim = (size_t)self->base.dim;
        lmap_delete(&self->map, label);
        if (r != last) {
            memcpy(self->vecs + r * dim, self->vecs + last * dim, dim * sizeof(float));
            self->labels[r] = self->labels[last];
            lmap_set_nogrow(&self->map, self->labels[r], r);
        }
        self->count--;
    }
    hpy_unlock(&self->base.lock);
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------------
 * knn_query
 * ------------------------------------------------------------------------ */

typedef struct {
    float d;
    uint64_t label;
} hit;

/* Ordering of hnswlib's std::pair<dist, label>: distance, then label. */
static int hit_less(hit a, hit b)
{
    return a.d < b.d || (a.d == b.d && a.label < b.label);
}

/* Max-heap on hit_less: h[0] is the worst of the best so far. */
static void heap_sift_down(hit *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && hit_less(h[m], h[l]))
            m = l;
        if (r < n && hit_less(h[m], h[r]))
            m = r;
        if (m == i)
            return;
        hit t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

static void heap_push(hit *h, size_t n, hit x)
{
    size_t i = n;
    h[i] = x;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!hit_less(h[p], h[i]))
            break;
        hit t = h[p];
        h[p] = h[i];
        h[i] = t;
        i = p;
    }
}

typedef struct {
    const BFIndexObject *self;
    const float *queries; /* normalised for cosine */
    size_t k;
    hnswc_filter_fn filter;
    void *filter_data;
    uint64_t *labels;     /* rows x k */
    float *dists;         /* rows x k */
    size_t *found;        /* per query; (size_t)-1 if out of memory */
} bf_search;

/* One query: scan all rows, keep the k best, write them closest first. */
static void bf_search_one(const bf_search *s, size_t q, hit *heap)
{
    const BFIndexObject *self = s->self;
    size_t dim = (size_t)self->base.dim, k = s->k, n = 0;
    const float *query = s->queries + q * dim;
    hnswc_metric metric = row_metric(self);
    for (size_t r = 0; r < self->count; r++) {
        if (s->filter != NULL && !s->filter(self->labels[r], s->filter_data))
            continue;
        float d = 0;
        hnswc_distance(metric, query, self->vecs + r * dim, dim, &d);
        hit x = {d, self->labels[r]};
        if (n < k) {
            heap_push(heap, n++, x);
        } else if (hit_less(x, heap[0])) {
            heap[0] = x;
            heap_sift_down(heap, n, 0);
        }
    }
    s->found[q] = n;
    /* Pop the worst into the last free slot until empty: ascending order. */
    for (size_t m = n; m > 0; m--) {
        s->labels[q * k + m - 1] = heap[0].label;
        s->dists[q * k + m - 1] = heap[0].d;
        heap[0] = heap[m - 1];
        heap_sift_down(heap, m - 1, 0);
    }
}

/* parallel_for body: each call allocates its own heap (k hits, small). */
static void bf_search_task(void *ctx, size_t q)
{
    const bf_search *s = ctx;
    hit small[64];
    hit *heap = s->k <= 64 ? small : malloc(s->k * sizeof(hit));
    if (heap == NULL) {
        s->found[q] = (size_t)-1; /* reported as MemoryError */
        return;
    }
    bf_search_one(s, q, heap);
    if (heap != small)
        free(heap);
}

PyDoc_STRVAR(bf_knn_query_doc,
"knn_query($self, /, data, k=1, num_threads=-1, filter=None)\n--\n\n"
"Exact k nearest neighbours of each query, closest first: (labels,\n"
"distances) as uint64 and float32 arrays of shape (n, k). filter: as in\n"
"Index.knn_query. RuntimeError when fewer than k elements pass the filter.");

static PyObject *BF_knn_query(BFIndexObject *self, PyObject *args, PyObject *kwds)
{
    PyObject *data, *filter_obj;
    size_t k;
    int num_threads;
    if (hpy_knn_args(args, kwds, &data, &k, &num_threads, &filter_obj) < 0)
        return NULL;
    if (bf_need(self, "knn_query") < 0)
        return NULL;
    size_t rows;
    PyArrayObject *queries = hpy_float_matrix(data, self->base.dim, "query vectors", &rows);
    if (queries == NULL)
        return NULL;
    size_t dim = (size_t)self->base.dim;
    float *v = PyArray_DATA(queries);
    if (check_finite(v, rows * dim, "knn_query") < 0) {
        Py_DECREF(queries);
        return NULL;
    }
    if (self->base.metric == HNSWC_METRIC_COSINE)
        for (size_t i = 0; i < rows; i++)
            normalise(v + i * dim, dim);
    hpy_knn q;
    if (hpy_knn_begin(&q, queries, rows, k, filter_obj, self) < 0)
        return hpy_knn_abort(&q);
    if (rows > 0 && k > 0) {
        bf_search s = {.self = self, .queries = v, .k = k, .filter = hpy_filter_fn(&q.filter),
                       .filter_data = &q.filter, .labels = PyArray_DATA(q.labels),
                       .dists = PyArray_DATA(q.dists), .found = q.found};
        unsigned threads = q.filter.kind == HPY_FILTER_CALLABLE
                               ? 1 /* the callable needs the GIL: stay on this thread */
                               : hpy_batch_threads(num_threads, self->base.num_threads, rows);
        hpy_lock_read(&self->base.lock);
        Py_BEGIN_ALLOW_THREADS
        parallel_for(rows, threads, bf_search_task, &s);
        Py_END_ALLOW_THREADS
        hpy_unlock(&self->base.lock);
    }
    return hpy_knn_finish(&q, HNSWC_OK,
                          "Cannot return the results in a contiguous 2D array. "
                          "There are not enough elements.");
}

/* ------------------------------------------------------------------------
 * Persistence
 * ------------------------------------------------------------------------ */

static const char BF_MAGIC[8] = {'H', 'N', 'S', 'W', 'C', 'B', 'F', '1'};

static int host_is_little_endian(void)
{
    const uint16_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

/* The files are little-endian and read by memcpy: other hosts refuse them. */
static PyObject *big_endian_error(const char *method)
{
    PyErr_Format(PyExc_RuntimeError, "%s: big-endian hosts are not supported", method);
    return NULL;
}

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int j = 0; j < 8; j++)
            c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

/* CRC-32 (IEEE), continued from `crc` (start with 0). */
static uint32_t crc32_update(uint32_t crc, const void *data, size_t n)
{
    pthread_once(&crc_once, crc_init);
    const unsigned char *p = data;
    crc = ~crc;
    for (size_t i = 0; i < n; i++)
        crc = crc_table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

typedef struct {
    FILE *f;
    uint32_t crc;
    int ok;
} wfile;

static void wput(wfile *w, const void *p, size_t n)
{
    if (w->ok && n > 0 && fwrite(p, 1, n, w->f) != n)
        w->ok = 0;
    w->crc = crc32_update(w->crc, p, n);
}

PyDoc_STRVAR(bf_save_index_doc,
"save_index($self, /, path_to_index)\n--\n\n"
"Saves the index (hnswc's brute-force format, checksummed; written to a\n"
"temporary file and renamed). RuntimeError if it cannot be written.");

static PyObject *BF_save_index(BFIndexObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"path_to_index", NULL};
    PyObject *path = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O&:save_index", kwlist, PyUnicode_FSConverter,
                                     &path))
        return NULL;
    if (bf_need(self, "save_index") < 0 ||
        (!host_is_little_endian() && !big_endian_error("save_index"))) {
        Py_DECREF(path);
        return NULL;
    }
    const char *p = PyBytes_AS_STRING(path);
    size_t plen = strlen(p);
    char *tmp = malloc(plen + 16);
    if (tmp == NULL) {
        Py_DECREF(path);
        return PyErr_NoMemory();
    }
    snprintf(tmp, plen + 16, "%s.tmp", p);
    int ok, err = 0;
    hpy_lock_read(&self->base.lock);
    Py_BEGIN_ALLOW_THREADS
    wfile w = {fopen(tmp, "wb"), 0, 1};
    ok = w.f != NULL;
    if (ok) {
        uint32_t head[4] = {1, (uint32_t)self->base.metric, (uint32_t)self->base.dim, 0};
        uint64_t sizes[3] = {self->count, self->base.max_elements, self->base.next_label};
        wput(&w, BF_MAGIC, sizeof(BF_MAGIC));
        wput(&w, head, sizeof(head));
        wput(&w, sizes, sizeof(sizes));
        wput(&w, self->vecs, self->count * (size_t)self->base.dim * sizeof(float));
        wput(&w, self->labels, self->count * sizeof(uint64_t));
        uint32_t crc = w.crc;
        wput(&w, &crc, sizeof(crc));
        ok = w.ok;
        if (fclose(w.f) != 0)
            ok = 0;
        if (ok && rename(tmp, p) != 0)
            ok = 0;
    }
    if (!ok) {
        err = errno;
        remove(tmp);
    }
    Py_END_ALLOW_THREADS
    hpy_unlock(&self->base.lock);
    free(tmp);
    if (!ok) {
        PyErr_Format(PyExc_RuntimeError, "save_index: cannot write %s: %s", p, strerror(err));
        Py_DECREF(path);
        return NULL;
    }
    Py_DECREF(path);
    Py_RETURN_NONE;
}

/* What load_index read, before it replaces the object's contents. */
typedef struct {
    float *vecs;
    uint64_t *labels;
    size_t count;
    uint64_t max_elements, next_label;
    const char *error; /* static message on failure */
} bf_loaded;

/* Reads the whole file into memory (GIL released by the caller). */
static unsigned char *slurp(const char *path, size_t *size, int *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        *err = errno;
        return NULL;
    }
    unsigned char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 1 << 16;
            unsigned char *nb = realloc(buf, ncap);
            if (nb == NULL) {
                free(buf);
                fclose(f);
                *err = ENOMEM;
                return NULL;
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        *err = EIO;
        return NULL;
    }
    *size = n;
    return buf;
}

/* Parses either format. Returns 0 and fills *out, or -1 with out->error. */
static int bf_parse(const unsigned char *b, size_t n, hnswc_metric metric, size_t dim,
                    bf_loaded *out)
{
    memset(out, 0, sizeof(*out));
    size_t row_bytes = dim * sizeof(float);
    if (n >= 48 && memcmp(b, BF_MAGIC, 8) == 0) {
        uint32_t head[4];
        uint64_t sizes[3];
        memcpy(head, b + 8, sizeof(head));
        memcpy(sizes, b + 24, sizeof(sizes));
        if (head[0] != 1) {
            out->error = "unsupported BFIndex file version";
            return -1;
        }
        if (head[1] != (uint32_t)metric || head[2] != dim) {
            out->error = "the file holds an index of another space or dimension";
            return -1;
        }
        uint64_t count = sizes[0];
        if (count > (n - 52) / (row_bytes + 8) ||
            n != 48 + count * (row_bytes + 8) + 4) {
            out->error = "the file is truncated or corrupted";
            return -1;
        }
        uint32_t crc;
        memcpy(&crc, b + n - 4, 4);
        if (crc32_update(0, b, n - 4) != crc) {
            out->error = "checksum mismatch: the file is corrupted";
            return -1;
        }
        out->count = (size_t)count;
        out->max_elements = sizes[1];
        out->next_label = sizes[2];
        out->vecs = malloc(count ? count * row_bytes : 1);
        out->labels = malloc(count ? count * 8 : 1);
        if (out->vecs == NULL || out->labels == NULL) {
            out->error = "out of memory";
            return -1;
        }
        memcpy(out->vecs, b + 48, count * row_bytes);
        memcpy(out->labels, b + 48 + count * row_bytes, count * 8);
        return 0;
    }
    /* hnswlib: u64 max, u64 size_per_element, u64 count, max rows. */
    if (n < 24) {
        out->error = "not a BFIndex file (too short)";
        return -1;
    }
    uint64_t maxel, per, count;
    memcpy(&maxel, b, 8);
    memcpy(&per, b + 8, 8);
    memcpy(&count, b + 16, 8);
    if (per != row_bytes + 8) {
        out->error = "not a BFIndex file of this dimension";
        return -1;
    }
    if (maxel > (n - 24) / per || n != 24 + maxel * per || count > maxel) {
        out->error = "not a BFIndex file, or truncated";
        return -1;
    }
    out->count = (size_t)count;
    out->max_elements = maxel;
    out->next_label = count;
    out->vecs = malloc(count ? count * row_bytes : 1);
    out->labels = malloc(count ? count * 8 : 1);
    if (out->vecs == NULL || out->labels == NULL) {
        out->error = "out of memory";
        return -1;
    }
    for (size_t i = 0; i < count; i++) {
        const unsigned char *row = b + 24 + i * per;
        memcpy(out->vecs + i * dim, row, row_bytes);
        memcpy(out->labels + i, row + row_bytes, 8);
    }
    return 0;
}

/* Replaces the object's rows by loaded ones (write lock taken here). */
static int bf_install(BFIndexObject *self, bf_loaded *ld, uint64_t max_elements)
{
    lmap map = {0};
    if (lmap_reserve(&map, ld->count) < 0) {
        PyErr_NoMemory();
        return -1;
    }
    for (size_t i = 0; i < ld->count; i++) {
        size_t r;
        if (lmap_find(&map, ld->labels[i], &r)) {
            lmap_free(&map);
            PyErr_SetString(PyExc_RuntimeError, "load_index: the file repeats a label");
            return -1;
        }
        lmap_set_nogrow(&map, ld->labels[i], i);
    }
    hpy_lock_write(&self->base.lock);
    bf_clear(self);
    self->vecs = ld->vecs;
    self->labels = ld->labels;
    self->count = self->cap = ld->count;
    self->map = map;
    self->inited = 1;
    uint64_t limit = max_elements > ld->max_elements ? max_elements : ld->max_elements;
    self->base.max_elements = limit > ld->count ? limit : ld->count;
    self->base.next_label = ld->next_label;
    hpy_unlock(&self->base.lock);
    ld->vecs = NULL;
    ld->labels = NULL;
    return 0;
}

PyDoc_STRVAR(bf_load_index_doc,
"load_index($self, /, path_to_index, max_elements=0)\n--\n\n"
"Loads an index saved by BFIndex.save_index, hnswc's or hnswlib's. The limit\n"
"becomes the larger of max_elements and the file's. RuntimeError if the\n"
"file is missing, corrupted, or of another dimension.");

static PyObject *BF_load_index(BFIndexObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"path_to_index", "max_elements", NULL};
    PyObject *path = NULL;
    uint64_t max_elements = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O&|O&:load_index", kwlist,
                                     PyUnicode_FSConverter, &path, hpy_conv_u64, &max_elements))
        return NULL;
    /* (A filter of this index can only run once __init__ has.) */
    if (hpy_check_ready(&self->base) < 0 || (hpy_in_filter_of(self) && !hpy_reentry_error()) ||
        (!host_is_little_endian() && !big_endian_error("load_index"))) {
        Py_DECREF(path);
        return NULL;
    }
    const char *p = PyBytes_AS_STRING(path);
    size_t n = 0;
    int err = 0, rc = -1;
    bf_loaded ld;
    memset(&ld, 0, sizeof(ld));
    Py_BEGIN_ALLOW_THREADS
    unsigned char *buf = slurp(p, &n, &err);
    if (buf != NULL) {
        rc = bf_parse(buf, n, self->base.metric, (size_t)self->base.dim, &ld);
        free(buf);
    }
    Py_END_ALLOW_THREADS
    if (rc < 0) {
        if (err != 0)
            PyErr_Format(PyExc_RuntimeError, "load_index: cannot read %s: %s", p, strerror(err));
        else
            PyErr_Format(PyExc_RuntimeError, "load_index: %s: %s", p, ld.error);
        free(ld.vecs);
        free(ld.labels);
        Py_DECREF(path);
        return NULL;
    }
    Py_DECREF(path);
    rc = bf_install(self, &ld, max_elements);
    free(ld.vecs);
    free(ld.labels);
    if (rc < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------------
 * Small accessors
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
    return PyLong_FromSize_t(self->count);
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
    int missing = 0;
    hpy_lock_read(&self->base.lock);
    for (size_t i = 0; i < n && !missing; i++) {
        size_t r;
        if (lmap_find(&self->map, ((const uint64_t *)PyArray_DATA(lab))[i], &r))
            memcpy((float *)PyArray_DATA(out) + i * dim, self->vecs + r * dim,
                   dim * sizeof(float));
        else
            missing = 1;
    }
    hpy_unlock(&self->base.lock);
    Py_XDECREF(lab);
    if (missing) {
        Py_DECREF(out);
        return hpy_label_not_found();
    }
    return hpy_items_result(out, as_list);
}

static PyObject *BF_get_ids_list(BFIndexObject *self, PyObject *unused)
{
    (void)unused;
    if (bf_need(self, "get_ids_list") < 0)
        return NULL;
    hpy_lock_read(&self->base.lock);
    PyObject *list = PyList_New((Py_ssize_t)self->count);
    for (size_t i = 0; list != NULL && i < self->count; i++) {
        PyObject *v = PyLong_FromUnsignedLongLong(self->labels[i]);
        if (v == NULL) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, v);
    }
    hpy_unlock(&self->base.lock);
    return list;
}

/* Pickling: (BFIndex, (space, dim), state) with the rows as bytes. */
static PyObject *BF_getstate(BFIndexObject *self, PyObject *unused)
{
    (void)unused;
    if (hpy_check_ready(&self->base) < 0)
        return NULL;
    hpy_lock_read(&self->base.lock);
    size_t dim = (size_t)self->base.dim;
    PyObject *v = PyBytes_FromStringAndSize((const char *)self->vecs,
                                            (Py_ssize_t)(self->count * dim * sizeof(float)));
    PyObject *l = PyBytes_FromStringAndSize((const char *)self->labels,
                                            (Py_ssize_t)(self->count * sizeof(uint64_t)));
    PyObject *st = NULL;
    if (v != NULL && l != NULL)
        st = Py_BuildValue("{s:i,s:O,s:K,s:K,s:i,s:O,s:O}", "ser_version", 1, "inited",
                           self->inited ? Py_True : Py_False, "max_elements",
                           (unsigned long long)self->base.max_elements, "cur_element_label",
                           (unsigned long long)self->base.next_label, "num_threads",
                           self->base.num_threads, "vectors", v, "labels", l);
    hpy_unlock(&self->base.lock);
    Py_XDECREF(v);
    Py_XDECREF(l);
    return st;
}

static PyObject *BF_setstate(BFIndexObject *self, PyObject *state)
{
    if (!PyDict_Check(state) || !self->base.ready) {
        PyErr_SetString(PyExc_RuntimeError, "Unpickle Error: Invalid state!");
        return NULL;
    }
    PyObject *inited = PyDict_GetItemString(state, "inited");
    PyObject *maxel = PyDict_GetItemString(state, "max_elements");
    PyObject *next = PyDict_GetItemString(state, "cur_element_label");
    PyObject *nt = PyDict_GetItemString(state, "num_threads");
    PyObject *v = PyDict_GetItemString(state, "vectors");
    PyObject *l = PyDict_GetItemString(state, "labels");
    if (!inited || !maxel || !next || !nt || !v || !l || !PyBytes_Check(v) || !PyBytes_Check(l)) {
        PyErr_SetString(PyExc_RuntimeError, "Unpickle Error: Invalid state!");
        return NULL;
    }
    bf_loaded ld;
    memset(&ld, 0, sizeof(ld));
    size_t dim = (size_t)self->base.dim;
    size_t count = (size_t)PyBytes_GET_SIZE(l) / sizeof(uint64_t);
    if ((size_t)PyBytes_GET_SIZE(l) != count * sizeof(uint64_t) ||
        (size_t)PyBytes_GET_SIZE(v) != count * dim * sizeof(float)) {
        PyErr_SetString(PyExc_RuntimeError, "Unpickle Error: inconsistent sizes");
        return NULL;
    }
    if (!hpy_conv_u64(maxel, &ld.max_elements) || !hpy_conv_u64(next, &ld.next_label))
        return NULL;
    long threads = PyLong_AsLong(nt);
    if (threads == -1 && PyErr_Occurred())
        return NULL;
    ld.count = count;
    ld.vecs = malloc(count ? count * dim * sizeof(float) : 1);
    ld.labels = malloc(count ? count * sizeof(uint64_t) : 1);
    if (ld.vecs == NULL || ld.labels == NULL) {
        free(ld.vecs);
        free(ld.labels);
        return PyErr_NoMemory();
    }
    memcpy(ld.vecs, PyBytes_AS_STRING(v), count * dim * sizeof(float));
    memcpy(ld.labels, PyBytes_AS_STRING(l), count * sizeof(uint64_t));
    int rc = bf_install(self, &ld, 0);
    free(ld.vecs);
    free(ld.labels);
    if (rc < 0)
        return NULL;
    self->inited = PyObject_IsTrue(inited) == 1;
    self->base.num_threads = (int)threads;
    Py_RETURN_NONE;
}

static PyObject *BF_reduce(BFIndexObject *self, PyObject *unused)
{
    (void)unused;
    return hpy_reduce(&self->base, BF_getstate(self, NULL));
}

static PyObject *BF_get_space(BFIndexObject *self, void *c)
{
    (void)c;
    return PyUnicode_FromString(hpy_space_name(self->base.metric));
}

static PyObject *BF_get_max_elements_prop(BFIndexObject *self, void *c)
{
    (void)c;
    return PyLong_FromUnsignedLongLong(self->inited ? self->base.max_elements : 0);
}

static PyObject *BF_get_element_count(BFIndexObject *self, void *c)
{
    (void)c;
    return PyLong_FromSize_t(self->count);
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
