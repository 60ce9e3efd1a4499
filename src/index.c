/*
 * index.c -- the public API: validation, locking and batches around graph.c.
 *
 * Every public function validates all of its input before it changes
 * anything, so a rejected call leaves the index exactly as it was. The
 * locking rules are stated at each function and gathered in
 * docs/ARCHITECTURE.md; in short (lock order, outermost first):
 *
 *   update_lock (rwlock)  read: searches, new-label adds, vector reads
 *                         write: adds that rewrite a record in place
 *   meta_lock (mutex)     label map, slot allocation, growth, level RNG
 *   entry_lock (mutex)    an insert that raises the top level
 *   link lock (striped)   rewriting one node's link lists
 */
#include "heap.h"
#include "index.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_M 16u
#define DEFAULT_EF_CONSTRUCTION 200u
#define DEFAULT_EF_SEARCH 10u
#define DEFAULT_SEED 100u
#define DEFAULT_CAPACITY 1024u
#define MAX_DIM 65536u
#define MAX_M 2048u
#define MAX_EF ((size_t)1 << 31)

/* ========================================================================
 * Helpers
 * ======================================================================== */

static size_t round_up(size_t x, size_t a) { return (x + a - 1) / a * a; }

/* HNSWC_OK if all n components are finite, else NONFINITE naming the first. */
static hnswc_status check_finite(const char *fn, const float *v, size_t n, size_t row) {
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(v[i]))
            return hnswc_fail(HNSWC_ERR_NONFINITE, "%s: vector %zu, component %zu is %s", fn, row,
                              i, isnan(v[i]) ? "NaN" : "infinite");
    }
    return HNSWC_OK;
}

static hnswc_status check_rows(const char *fn, const float *v, size_t rows, size_t dim) {
    for (size_t r = 0; r < rows; r++) {
        hnswc_status st = check_finite(fn, v + r * dim, dim, r);
        if (st != HNSWC_OK)
            return st;
    }
    return HNSWC_OK;
}

/*
 * A query in the form the graph compares: for cosine a normalised copy in
 * buf (or in a malloc'd block when dim is large), else the caller's vector.
 * *owned is set when the result must be freed.
 */
#define QUERY_STACK_FLOATS 2048
static const float *prepare_query(const hnswc_index *ix, const float *q, float *buf, float **owned) {
    *owned = NULL;
    if (ix->metric != HNSWC_METRIC_COSINE)
        return q;
    float *dst = buf;
    if (ix->dim > QUERY_STACK_FLOATS) {
        if (!(dst = *owned = malloc((size_t)ix->dim * sizeof(float))))
            return NULL;
    }
    memcpy(dst, q, (size_t)ix->dim * sizeof(float));
    hnswc_normalize(dst, ix->dim);
    return dst;
}

static void write_vector(hnswc_index *ix, node_head *n, const float *v) {
    float *dst = node_vector(ix, n);
    memcpy(dst, v, (size_t)ix->dim * sizeof(float));
    if (ix->metric == HNSWC_METRIC_COSINE)
        hnswc_normalize(dst, ix->dim);
}

/* ========================================================================
 * Lifecycle
 * ======================================================================== */

/* Allocates an index for validated options. Used by create and the loaders. */
hnswc_status index_new(const hnswc_options *o, hnswc_index **out) {
    hnswc_index *ix = calloc(1, sizeof *ix);
    if (!ix)
        return hnswc_fail(HNSWC_ERR_NOMEM, "out of memory allocating an index");
    ix->dim = o->dim;
    ix->metric = o->metric;
    ix->M = o->M ? o->M : DEFAULT_M;
    ix->M0 = 2 * ix->M;
    ix->ef_construction = o->ef_construction ? o->ef_construction : DEFAULT_EF_CONSTRUCTION;
    atomic_init(&ix->ef_search, o->ef_search ? o->ef_search : DEFAULT_EF_SEARCH);
    ix->seed = o->seed ? o->seed : DEFAULT_SEED;
    ix->rng = ix->seed;
    ix->level_mult = 1.0 / log((double)ix->M);
    ix->kernels = hnswc_kernels_get();
    ix->vector_offset = round_up(sizeof(node_head) + (1 + (size_t)ix->M0) * sizeof(uint32_t), 64);
    ix->node_size = ix->vector_offset + round_up((size_t)ix->dim * sizeof(float), 64);
    atomic_init(&ix->entry, ENTRY_EMPTY);
    atomic_init(&ix->memory_bytes, sizeof *ix);

    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
#if defined(__GLIBC__)
    /* glibc prefers readers by default, which would let a steady stream of
     * searches starve an in-place update forever */
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
#endif
    pthread_rwlock_init(&ix->update_lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    pthread_mutex_init(&ix->meta_lock, NULL);
    pthread_mutex_init(&ix->entry_lock, NULL);
    pthread_mutex_init(&ix->pool_lock, NULL);
    for (unsigned i = 0; i < LINK_LOCK_STRIPES; i++)
        pthread_mutex_init(&ix->link_locks[i], NULL);

    uint64_t cap = o->capacity ? o->capacity : DEFAULT_CAPACITY;
    hnswc_status st = storage_reserve(ix, cap);
    if (st == HNSWC_OK)
        st = label_map_reserve(&ix->labels, cap < ((size_t)1 << 20) ? (size_t)cap : (size_t)1 << 20);
    if (st != HNSWC_OK) {
        hnswc_free(ix);
        return st;
    }
    *out = ix;
    return HNSWC_OK;
}

hnswc_status hnswc_create(const hnswc_options *options, hnswc_index **out) {
    if (out)
        *out = NULL;
    if (!options || !out)
        return hnswc_fail(HNSWC_ERR_NULL, "hnswc_create: %s is NULL", options ? "out" : "options");
    if (options->dim == 0 || options->dim > MAX_DIM)
        return hnswc_fail(HNSWC_ERR_INVALID, "hnswc_create: dim must be 1 .. %u, got %u", MAX_DIM,
                          options->dim);
    if ((unsigned)options->metric > HNSWC_METRIC_COSINE)
        return hnswc_fail(HNSWC_ERR_INVALID, "hnswc_create: unknown metric %d",
                          (int)options->metric);
    if (options->M != 0 && (options->M < 2 || options->M > MAX_M))
        return hnswc_fail(HNSWC_ERR_INVALID, "hnswc_create: M must be 2 .. %u, got %u", MAX_M,
                          options->M);
    if (options->ef_search > MAX_EF || options->ef_construction > MAX_EF)
        return hnswc_fail(HNSWC_ERR_INVALID, "hnswc_create: ef above 2^31");
    if (options->capacity > HNSWC_MAX_ELEMENTS)
        return hnswc_fail(HNSWC_ERR_OVERFLOW, "hnswc_create: capacity %llu above the maximum %llu",
                          (unsigned long long)options->capacity,
                          (unsigned long long)HNSWC_MAX_ELEMENTS);
    return index_new(options, out);
}

void hnswc_free(hnswc_index *ix) {
    if (!ix)
        return;
    graph_pool_free(ix);
    storage_free(ix);
    pthread_rwlock_destroy(&ix->update_lock);
    pthread_mutex_destroy(&ix->meta_lock);
    pthread_mutex_destroy(&ix->entry_lock);
    pthread_mutex_destroy(&ix->pool_lock);
    for (unsigned i = 0; i < LINK_LOCK_STRIPES; i++)
        pthread_mutex_destroy(&ix->link_locks[i]);
    free(ix);
}

/* ========================================================================
 * Node allocation (meta_lock held)
 * ======================================================================== */

/*
 * Gives node `id` its header and upper link lists. For a fresh slot and for
 * loaders; the caller publishes it afterwards.
 */
hnswc_status index_init_node(hnswc_index *ix, node_id id, uint64_t label, int level) {
    _Atomic uint32_t *upper = NULL;
    if (level > 0) {
        size_t words = (size_t)level * (ix->M + 1);
        if (!(upper = calloc(words, sizeof *upper)))
            return hnswc_fail(HNSWC_ERR_NOMEM, "out of memory allocating links of level %d", level);
        atomic_fetch_add(&ix->memory_bytes, words * sizeof *upper);
    }
    node_head *n = node_at(ix, id);
    n->label = label;
    n->level = level;
    n->upper = upper;
    atomic_store_explicit(&n->flags, 0, memory_order_relaxed);
    atomic_store_explicit(&n->indeg0, 0, memory_order_relaxed);
    atomic_store_explicit(&n->l0[0], 0, memory_order_relaxed);
    return HNSWC_OK;
}

/*
 * Takes a fresh slot for `label` (which is not in the map) and publishes its
 * id in the count. Nothing changes if it fails. Caller holds meta_lock.
 */
static hnswc_status new_slot(hnswc_index *ix, uint64_t label, node_id *id_out) {
    uint64_t n = atomic_load(&ix->count);
    if (n >= HNSWC_MAX_ELEMENTS)
        return hnswc_fail(HNSWC_ERR_OVERFLOW, "hnswc_add: the index holds the maximum of %llu elements",
                          (unsigned long long)HNSWC_MAX_ELEMENTS);
    hnswc_status st = HNSWC_OK;
    if (n >= atomic_load(&ix->capacity) && (st = storage_reserve(ix, n + 1)) != HNSWC_OK)
        return st;
    if ((st = label_map_reserve(&ix->labels, ix->labels.len + 1)) != HNSWC_OK)
        return st;
    uint64_t rng = ix->rng;
    if ((st = index_init_node(ix, (node_id)n, label, graph_random_level(ix))) != HNSWC_OK) {
        ix->rng = rng; /* a failed call leaves even the level generator as it was */
        return st;
    }
    label_map_put(&ix->labels, label, (node_id)n); /* room reserved: cannot fail */
    /* publish last: a scan that sees the new count finds flags == 0 (not
     * ready) until the vector is written */
    atomic_store_explicit(&ix->count, n + 1, memory_order_release);
    *id_out = (node_id)n;
    return HNSWC_OK;
}

/* Pops a slot still marked deleted from the reuse list, if any. meta_lock. */
static bool pop_deleted(hnswc_index *ix, node_id *id) {
    while (ix->deleted_ids_len > 0) {
        node_id cand = ix->deleted_ids[--ix->deleted_ids_len];
        if (atomic_load(&node_at(ix, cand)->flags) & NODE_DELETED) {
            *id = cand;
            return true;
        }
    }
    return false;
}

/*
 * Appends a slot to the reuse list. Unmarking leaves a stale entry behind
 * (pop_deleted skips those), so the list is compacted -- stale entries and
 * duplicates dropped -- when it outgrows twice the deleted count; without
 * that, mark/unmark cycles would grow it without bound. meta_lock held.
 */
static hnswc_status push_deleted(hnswc_index *ix, node_id id) {
    if (ix->deleted_ids_len >= 2 * atomic_load(&ix->deleted_count) + 64) {
        size_t w = 0;
        for (size_t r = 0; r < ix->deleted_ids_len; r++) {
            node_head *n = node_at(ix, ix->deleted_ids[r]);
            uint32_t f = atomic_load(&n->flags);
            /* the COMPACT_MARK bit (never otherwise set) marks a kept entry */
            if ((f & NODE_DELETED) && !(f & NODE_COMPACT_MARK)) {
                atomic_fetch_or(&n->flags, NODE_COMPACT_MARK);
                ix->deleted_ids[w++] = ix->deleted_ids[r];
            }
        }
        for (size_t r = 0; r < w; r++)
            atomic_fetch_and(&node_at(ix, ix->deleted_ids[r])->flags, ~NODE_COMPACT_MARK);
        ix->deleted_ids_len = w;
    }
    if (ix->deleted_ids_len == ix->deleted_ids_cap) {
        size_t cap = ix->deleted_ids_cap ? 2 * ix->deleted_ids_cap : 64;
        node_id *p = realloc(ix->deleted_ids, cap * sizeof *p);
        if (!p)
            return hnswc_fail(HNSWC_ERR_NOMEM, "out of memory growing the deleted list");
        ix->deleted_ids = p;
        ix->deleted_ids_cap = cap;
    }
    ix->deleted_ids[ix->deleted_ids_len++] = id;
    return HNSWC_OK;
}

/*
 * For loaders: checks a stored link list of `count` ids (at most `max`) on
 * `level` -- each must name an existing node that lives on that layer -- and
 * copies it into dst, zero-filling the rest. `what` names the file.
 */
hnswc_status index_set_links(hnswc_index *ix, _Atomic uint32_t *dst, uint32_t count,
                             const uint32_t *ids, uint32_t max, int level, const char *what) {
    if (count > max)
        return hnswc_fail(HNSWC_ERR_FORMAT, "hnswc_load: %s: a link list on layer %d holds %u "
                          "links, more than its %u", what, level, count, max);
    uint64_t n = atomic_load(&ix->count);
    for (uint32_t j = 0; j < count; j++) {
        if (ids[j] >= n)
            return hnswc_fail(HNSWC_ERR_FORMAT, "hnswc_load: %s: a link points to element %u of %llu",
                              what, ids[j], (unsigned long long)n);
        if (node_at(ix, ids[j])->level < level)
            return hnswc_fail(HNSWC_ERR_FORMAT, "hnswc_load: %s: a link on layer %d points to an "
                              "element that is not on that layer", what, level);
    }
    atomic_store_explicit(&dst[0], count, memory_order_relaxed);
    for (uint32_t j = 0; j < max; j++)
        atomic_store_explicit(&dst[1 + j], j < count ? ids[j] : 0, memory_order_relaxed);
    return HNSWC_OK;
}

/*
 * After a loader has filled all nodes: builds the label map and the list of
 * deleted slots. Two elements with one label make the file invalid.
 */
hnswc_status index_finish_load(hnswc_index *ix) {
    uint64_t n = atomic_load(&ix->count);
    for (uint64_t i = 0; i < n; i++) { /* in-degrees are derived, not stored */
        node_head *h = node_at(ix, (node_id)i);
        uint32_t deg = links_count(ix, h->l0, 0);
        for (uint32_t j = 0; j < deg; j++)
            atomic_fetch_add_explicit(&node_at(ix, atomic_load(&h->l0[1 + j]))->indeg0, 1,
                                      memory_order_relaxed);
    }
    hnswc_status st = label_map_reserve(&ix->labels, (size_t)n);
    for (uint64_t i = 0; st == HNSWC_OK && i < n; i++) {
        node_head *h = node_at(ix, (node_id)i);
        node_id other;
        if (label_map_find(&ix->labels, h->label, &other))
            return hnswc_fail(HNSWC_ERR_FORMAT, "hnswc_load: elements %llu and %u have the same "
                              "label %llu", (unsigned long long)i, other,
                              (unsigned long long)h->label);
        st = label_map_put(&ix->labels, h->label, (node_id)i);
        if (st == HNSWC_OK && (atomic_load(&h->flags) & NODE_DELETED))
            st = push_deleted(ix, (node_id)i);
    }
    return st;
}

/* ========================================================================
 * Adding
 * ======================================================================== */

/*
 * If linking fails (out of memory in the middle of a search), the node is
 * stored but maybe unreachable: it becomes a tombstone under its label, so
 * the index stays consistent, a later add of the label or a replace_deleted
 * add can take the slot over, and the caller's error is honest.
 */
static void abandon_node(hnswc_index *ix, node_id id) {
    pthread_mutex_lock(&ix->meta_lock);
    node_head *n = node_at(ix, id);
    if (!(atomic_load(&n->flags) & NODE_DELETED) && push_deleted(ix, id) == HNSWC_OK) {
        atomic_fetch_or(&n->flags, NODE_DELETED);
        atomic_fetch_add(&ix->deleted_count, 1);
    }
    pthread_mutex_unlock(&ix->meta_lock);
}

/*
 * Adds or updates one element; vec is the caller's (unnormalised) vector,
 * already checked. Two phases: under the update lock's read side, a new
 * label takes a fresh slot and is linked concurrently with everything else;
 * if the label exists (or a deleted slot is to be reused), the call retries
 * under the write side, because it must rewrite a vector in place.
 */
static hnswc_status add_one(hnswc_index *ix, uint64_t label, const float *vec, unsigned flags) {
    search_ctx *sc = graph_ctx_acquire(ix, ix->ef_construction);
    if (!sc)
        return hnswc_fail(HNSWC_ERR_NOMEM, "hnswc_add: out of memory allocating search scratch");

    node_id id;
    hnswc_status st;

    /* phase 1: the common case, a new label */
    pthread_rwlock_rdlock(&ix->update_lock);
    pthread_mutex_lock(&ix->meta_lock);
    bool exists = label_map_find(&ix->labels, label, &id);
    bool reuse = (flags & HNSWC_ADD_REPLACE_DELETED) && atomic_load(&ix->deleted_count) > 0;
    if (!exists && !reuse) {
        st = new_slot(ix, label, &id);
        pthread_mutex_unlock(&ix->meta_lock);
        if (st == HNSWC_OK) {
            node_head *n = node_at(ix, id);
            write_vector(ix, n, vec);
            /* or, not store: a concurrent mark_deleted may have set DELETED */
            atomic_fetch_or_explicit(&n->flags, NODE_READY, memory_order_release);
            if ((st = graph_insert(ix, sc, id, false)) != HNSWC_OK)
                abandon_node(ix, id);
        }
        pthread_rwlock_unlock(&ix->update_lock);
        graph_ctx_release(ix, sc);
        return st;
    }
    pthread_mutex_unlock(&ix->meta_lock);
    pthread_rwlock_unlock(&ix->update_lock);

    /* phase 2: exclusive. The state may have changed in between: decide again */
    pthread_rwlock_wrlock(&ix->update_lock);
    pthread_mutex_lock(&ix->meta_lock);
    bool relink = true;
    st = HNSWC_OK;
    if (label_map_find(&ix->labels, label, &id)) {
        node_head *n = node_at(ix, id);
        if (atomic_fetch_and(&n->flags, ~NODE_DELETED) & NODE_DELETED)
            atomic_fetch_sub(&ix->deleted_count, 1);
    } else if ((flags & HNSWC_ADD_REPLACE_DELETED) &&
               (st = label_map_reserve(&ix->labels, ix->labels.len + 1)) == HNSWC_OK &&
               pop_deleted(ix, &id)) {
        node_head *n = node_at(ix, id);
        label_map_remove(&ix->labels, n->label);
        label_map_put(&ix->labels, label, id); /* room reserved: cannot fail */
        n->label = label;
        atomic_fetch_and(&n->flags, ~NODE_DELETED);
        atomic_fetch_sub(&ix->deleted_count, 1);
    } else if (st == HNSWC_OK) { /* no deleted slot (left): a fresh one */
        st = new_slot(ix, label, &id);
        relink = false;
    }
    pthread_mutex_unlock(&ix->meta_lock);
    if (st == HNSWC_OK) {
        node_head *n = node_at(ix, id);
        write_vector(ix, n, vec);
        atomic_fetch_or_explicit(&n->flags, NODE_READY, memory_order_release);
        if ((st = graph_insert(ix, sc, id, relink)) != HNSWC_OK)
            abandon_node(ix, id);
    }
    pthread_rwlock_unlock(&ix->update_lock);
    graph_ctx_release(ix, sc);
    return st;
}

hnswc_status hnswc_add(hnswc_index *ix, uint64_t label, const float *vector, unsigned flags) {
    if (!ix || !vector)
        return hnswc_fail(HNSWC_ERR_NULL, "hnswc_add: %s is NULL", ix ? "vector" : "index");
    if (flags & ~HNSWC_ADD_REPLACE_DELETED)
        return hnswc_fail(HNSWC_ERR_INVALID, "hnswc_add: unknown flags 0x%x", flags);
    hnswc_status st = check_finite("hnswc_add", vector, ix->dim, 0);
    return st != HNSWC_OK ? st : add_one(ix, label, vector, flags);
}

typedef struct add_batch_job {
    hnswc_index *ix;
    const float *vectors;
    const uint64_t *labels;
    unsigned flags;
    _Atomic size_t added;
} add_batch_job;

static hnswc_status add_batch_item(void *ctx, size_t i) {
    add_batch_job *j = ctx;
    hnswc_status st = add_one(j->ix, j->labels[i], j->vectors + i * j->ix->dim, j->flags);
    if (st == HNSWC_OK)
        atomic_fetch_add_explicit(&j->added, 1, memory_order_relaxed);
    return st;
}

hnswc_status hnswc_add_batch(hnswc_index *ix, const float *vectors, const uint64_t *labels,
                             size_t n, unsigned flags, unsigned num_threads, size_t *n_added) {
    if (n_added)
        *n_added = 0;
    if (!ix || ((!vectors || !labels) && n > 0))
        return hnswc_fail(HNSWC_ERR_NULL, "hnswc_add_batch: %s is NULL",
                          !ix ? "index" : !vectors ? "vectors" : "labels");
    if (flags & ~HNSWC_ADD_REPLACE_DELETED)
        return hnswc_fail(HNSWC_ERR_INVALID, "hnswc_add_batch: unknown flags 0x%x", flags);
    if (n > SIZE_MAX / sizeof(float) / ix->dim)
        return hnswc_fail(HNSWC_ERR_OVERFLOW, "hnswc_add_batch: %zu vectors overflow size_t", n);
    hnswc_status st = check_rows("hnswc_add_batch", vectors, n, ix->dim);
    if (st != HNSWC_OK)
        return st;
    add_batch_job j = {ix, vectors, labels, flags, 0};
    /* one thread keeps the order of the batch, and so determinism */
    if (num_threads == 1) {
        for (size_t i = 0; i < n && st == HNSWC_OK; i++)
            st = add_batch_item(&j, i);
    } else {
        st = parallel_for(n, num_threads, add_batch_item, &j);
    }
    if (n_added)
        *n_added = atomic_load(&j.added);
    return st;
}

/* ========================================================================
 * Searching
 * ======================================================================== */

#define RESULT_STACK_ITEMS 256

/* One search, arguments checked; writes n_found results. */
static hnswc_status search_one(const hnswc_index *ix, const float *query, size_t k, size_t ef,
                               hnswc_filter_fn filter, void *user, uint64_t *labels,
                               float *distances, size_t *n_found, bool exact);

/* The checks shared by hnswc_search and hnswc_search_exact (fn names the
 * caller in messages); also zeroes *n_found first. */
static hnswc_status check_search(const char *fn, const hnswc_index *ix, const float *query,
                                 size_t k, size_t ef, const uint64_t *labels, size_t *n_found) {
    if (n_found)
        *n_found = 0;
    if (!ix || !query || !labels || !n_found)
        return hnswc_fail(HNSWC_ERR_NULL, "%s: %s is NULL", fn,
                          !ix ? "index" : !query ? "query" : !labels ? "labels" : "n_found");
    if (k == 0)
        return hnswc_fail(HNSWC_ERR_INVALID, "%s: k must be at least 1", fn);
    if (k > MAX_EF || ef > MAX_EF)
        return hnswc_fail(HNSWC_ERR_INVALID, "%s: %s above 2^31", fn, k > MAX_EF ? "k" : "ef");
    return check_finite(fn, query, ix->dim, 0);
}

hnswc_status hnswc_search(const hnswc_index *ix, const float *query, size_t k, size_t ef,
                          hnswc_filter_fn filter, void *user_data, uint64_t *labels,
                          float *distances, size_t *n_found) {
    hnswc_status st = check_search("hnswc_search", ix, query, k, ef, labels, n_found);
    if (st != HNSWC_OK)
        return st;
    return search_one(ix, query, k, ef, filter, user_data, labels, distances, n_found, false);
}

hnswc_status hnswc_search_exact(const hnswc_index *ix, const float *query, size_t k,
                                hnswc_filter_fn filter, void *user_data, uint64_t *labels,
                                float *distances, size_t *n_found) {
    hnswc_status st = check_search("hnswc_search_exact", ix, query, k, 0, labels, n_found);
    if (st != HNSWC_OK)
        return st;
    return search_one(ix, query, k, 0, filter, user_data, labels, distances, n_found, true);
}

static hnswc_status search_one(const hnswc_index *ix, const float *query, size_t k, size_t ef,
                               hnswc_filter_fn filter, void *user, uint64_t *labels,
                               float *distances, size_t *n_found, bool exact) {
    float qbuf[QUERY_STACK_FLOATS];
    float *owned_q;
    const float *q = prepare_query(ix, query, qbuf, &owned_q);
    heap_item local[RESULT_STACK_ITEMS + 1];
    heap_item *res = k <= RESULT_STACK_ITEMS ? local : malloc((k + 1) * sizeof *res);
    if (!q || !res) {
        free(owned_q);
        if (res != local)
            free(res);
        return hnswc_fail(HNSWC_ERR_NOMEM, "hnswc_search: out of memory for k = %zu", k);
    }

    size_t n = 0;
    hnswc_status st = HNSWC_OK;
    pthread_rwlock_rdlock((pthread_rwlock_t *)&ix->update_lock);
    if (exact)
        n = graph_search_exact(ix, q, k, filter, user, res);
    else
        st = graph_search(ix, q, k, ef ? ef : atomic_load(&ix->ef_search), filter, user, res, &n);
    for (size_t i = 0; i < n; i++) {
        labels[i] = node_at(ix, res[i].id)->label;
        if (distances)
            distances[i] = res[i].dist;
    }
    pthread_rwlock_unlock((pthread_rwlock_t *)&ix->update_lock);
    *n_found = n;
    free(owned_q);
    if (res != local)
        free(res);
    return st;
}

typedef struct search_batch_job {
    const hnswc_index *ix;
    const float *queries;
    size_t k, ef;
    hnswc_filter_fn filter;
    void *user;
    uint64_t *labels;
    float *distances;
    size_t *n_found;
} search_batch_job;

static hnswc_status search_batch_item(void *ctx, size_t i) {
    search_batch_job *j = ctx;
    size_t k = j->k;
    uint64_t *labels = j->labels + i * k;
    float *dists = j->distances ? j->distances + i * k : NULL;
    size_t found = 0;
    hnswc_status st = search_one(j->ix, j->queries + i * j->ix->dim, k, j->ef, j->filter,
                                 j->user, labels, dists, &found, false);
    for (size_t r = found; r < k; r++) {
        labels[r] = UINT64_MAX;
        if (dists)
            dists[r] = INFINITY;
    }
    if (j->n_found)
        j->n_found[i] = found;
    return st;
}

hnswc_status hnswc_search_batch(const hnswc_index *ix, const float *queries, size_t n, size_t k,
                                size_t ef, hnswc_filter_fn filter, void *user_data,
                                unsigned num_threads, uint64_t *labels, float *distances,
                                size_t *n_found) {
    if (!ix || ((!queries || !labels || !n_found) && n > 0))
        return hnswc_fail(HNSWC_ERR_NULL, "hnswc_search_batch: %s is NULL",
                          !ix ? "index" : !queries ? "queries" : !labels ? "labels" : "n_found");
    if (k == 0)
        return hnswc_fail(HNSWC_ERR_INVALID, "hnswc_search_batch: k must be at least 1");
    if (ef > MAX_EF || k > MAX_EF)
        return hnswc_fail(HNSWC_ERR_INVALID, "hnswc_search_batch: k or ef above 2^31");
    if (n > SIZE_MAX / sizeof(float) / ix->dim || n > SIZE_MAX / sizeof(uint64_t) / k)
        return hnswc_fail(HNSWC_ERR_OVERFLOW, "hnswc_search_batch: %zu queries overflow size_t", n);
    hnswc_status st = check_rows("hnswc_search_batch", queries, n, ix->dim);
    if (st != HNSWC_OK)
        return st;
    /* fill every output first, so that queries a failure stops before they
     * start still read as "nothing found", as the header promises */
    for (size_t i = 0; i < n; i++) {
        n_found[i] = 0;
        for (size_t r = 0; r < k; r++) {
            labels[i * k + r] = UINT64_MAX;
            if (distances)
                distances[i * k + r] = INFINITY;
        }
    }
    search_batch_job j = {ix, queries, k, ef, filter, user_data, labels, distances, n_found};
    return parallel_for(n, num_threads, search_batch_item, &j);
}

/* ========================================================================
 * Elements by label
 * ======================================================================== */

/* Finds a ready node by label. Caller holds the update lock (either side). */
static hnswc_status find_label(const hnswc_index *ix, const char *fn, uint64_t label,
                               node_id *id) {
    hnswc_index *mix = (hnswc_index *)ix;
    pthread_mutex_lock(&mix->meta_lock);
    bool found = label_map_find(&ix->labels, label, id);
    pthread_mutex_unlock(&mix->meta_lock);
    if (!found || !(atomic_load_explicit(&node_at(ix, *id)->flags, memory_order_acquire) &
                    NODE_READY))
        return hnswc_fail(HNSWC_ERR_NOT_FOUND, "%s: no element has label %llu", fn,
                          (unsigned long long)label);
    return HNSWC_OK;
}

hnswc_status hnswc_get_vector(const hnswc_index *ix, uint64_t label, float *out) {
    if (!ix || !out)
        return hnswc_fail(HNSWC_ERR_NULL, "hnswc_get_vector: %s is NULL", ix ? "out" : "index");
    pthread_rwlock_rdlock((pthread_rwlock_t *)&ix->update_lock);
    node_id id;
    hnswc_status st = find_label(ix, "hnswc_get_vector", label, &id);
    if (st == HNSWC_OK)
        memcpy(out, node_vector(ix, node_at(ix, id)), (size_t)ix->dim * sizeof(float));
    pthread_rwlock_unlock((pthread_rwlock_t *)&ix->update_lock);
    return st;
}

hnswc_status hnswc_is_deleted(const hnswc_index *ix, uint64_t label, int *is_deleted) {
    if (!ix || !is_deleted)
        return hnswc_fail(HNSWC_ERR_NULL, "hnswc_is_deleted: %s is NULL",
                          ix ? "is_deleted" : "index");
    node_id id;
    hnswc_status st = find_label(ix, "hnswc_is_deleted", label, &id);
    if (st == HNSWC_OK)
        *is_deleted = (atomic_load(&node_at(ix, id)->flags) & NODE_DELETED) != 0;
    return st;
}

hnswc_status hnswc_get_labels(const hnswc_index *ix, uint64_t *out, size_t capacity,
                              size_t *n_written) {
    if (!ix || !n_written || (!out && capacity > 0))
        return hnswc_fail(HNSWC_ERR_NULL, "hnswc_get_labels: %s is NULL",
                          !ix ? "index" : !n_written ? "n_written" : "out");
    hnswc_index *mix = (hnswc_index *)ix;
    pthread_rwlock_rdlock(&mix->update_lock);
    pthread_mutex_lock(&mix->meta_lock);
    /* every slot holds exactly one label, set under meta_lock */
    size_t need = (size_t)atomic_load(&ix->count);
    hnswc_status st = HNSWC_OK;
    if (need > capacity)
        st = hnswc_fail(HNSWC_ERR_INVALID, "hnswc_get_labels: room for %zu labels, %zu needed",
                        capacity, need);
    else
        for (size_t i = 0; i < need; i++)
            out[i] = node_at(ix, (node_id)i)->label;
    pthread_mutex_unlock(&mix->meta_lock);
    pthread_rwlock_unlock(&mix->update_lock);
    *n_written = need;
    return st;
}

/* ========================================================================
 * Tombstones
 * ======================================================================== */

static hnswc_status set_deleted(hnswc_index *ix, const char *fn, uint64_t label, bool del) {
    if (!ix)
        return hnswc_fail(HNSWC_ERR_NULL, "%s: index is NULL", fn);
    pthread_mutex_lock(&ix->meta_lock);
    node_id id;
    hnswc_status st = HNSWC_OK;
    /* an element still being added is not found yet, as for find_label */
    if (!label_map_find(&ix->labels, label, &id) ||
        !(atomic_load(&node_at(ix, id)->flags) & NODE_READY)) {
        st = hnswc_fail(HNSWC_ERR_NOT_FOUND, "%s: no element has label %llu", fn,
                        (unsigned long long)label);
    } else {
        node_head *n = node_at(ix, id);
        bool is_del = atomic_load(&n->flags) & NODE_DELETED;
        if (is_del == del)
            st = hnswc_fail(HNSWC_ERR_DELETED, "%s: label %llu is %s", fn,
                            (unsigned long long)label, del ? "already deleted" : "not deleted");
        else if (del && (st = push_deleted(ix, id)) == HNSWC_OK) {
            atomic_fetch_or(&n->flags, NODE_DELETED);
            atomic_fetch_add(&ix->deleted_count, 1);
        } else if (!del) {
            atomic_fetch_and(&n->flags, ~NODE_DELETED);
            atomic_fetch_sub(&ix->deleted_count, 1);
        }
    }
    pthread_mutex_unlock(&ix->meta_lock);
    return st;
}

hnswc_status hnswc_mark_deleted(hnswc_index *ix, uint64_t label) {
    return set_deleted(ix, "hnswc_mark_deleted", label, true);
}

hnswc_status hnswc_unmark_deleted(hnswc_index *ix, uint64_t label) {
    return set_deleted(ix, "hnswc_unmark_deleted", label, false);
}

/* ========================================================================
 * Parameters, counts and statistics
 * ======================================================================== */

hnswc_status hnswc_get_info(const hnswc_index *ix, hnswc_info *out) {
    if (!ix || !out)
        return hnswc_fail(HNSWC_ERR_NULL, "hnswc_get_info: %s is NULL", ix ? "out" : "index");
    hnswc_index *mix = (hnswc_index *)ix;
    memset(out, 0, sizeof *out);
    out->dim = ix->dim;
    out->metric = ix->metric;
    out->M = ix->M;
    out->ef_construction = ix->ef_construction;
    out->ef_search = atomic_load(&ix->ef_search);
    out->seed = ix->seed;
    pthread_mutex_lock(&mix->meta_lock);
    out->count = atomic_load(&ix->count);
    out->deleted_count = atomic_load(&ix->deleted_count);
    size_t side = label_map_bytes(&ix->labels) + ix->deleted_ids_cap * sizeof(node_id);
    pthread_mutex_unlock(&mix->meta_lock);
    out->live_count = out->count - out->deleted_count;
    out->capacity = atomic_load(&ix->capacity);
    uint64_t e = atomic_load(&ix->entry);
    out->max_level = e == ENTRY_EMPTY ? -1 : entry_level(e);
    out->memory_bytes = atomic_load(&ix->memory_bytes) + side + graph_pool_bytes(ix);
    out->simd = ix->kernels->name;
    return HNSWC_OK;
}

hnswc_status hnswc_set_ef(hnswc_index *ix, size_t ef) {
    if (!ix)
        return hnswc_fail(HNSWC_ERR_NULL, "hnswc_set_ef: index is NULL");
    if (ef == 0 || ef > MAX_EF)
        return hnswc_fail(HNSWC_ERR_INVALID, "hnswc_set_ef: ef must be 1 .. 2^31, got %zu", ef);
    atomic_store(&ix->ef_search, (uint32_t)ef);
    return HNSWC_OK;
}

hnswc_status hnswc_reserve(hnswc_index *ix, uint64_t capacity) {
    if (!ix)
        return hnswc_fail(HNSWC_ERR_NULL, "hnswc_reserve: index is NULL");
    if (capacity > HNSWC_MAX_ELEMENTS)
        return hnswc_fail(HNSWC_ERR_OVERFLOW, "hnswc_reserve: capacity %llu above the maximum %llu",
                          (unsigned long long)capacity, (unsigned long long)HNSWC_MAX_ELEMENTS);
    pthread_mutex_lock(&ix->meta_lock);
    hnswc_status st = storage_reserve(ix, capacity);
    if (st == HNSWC_OK)
        st = label_map_reserve(&ix->labels, (size_t)capacity);
    pthread_mutex_unlock(&ix->meta_lock);
    return st;
}

hnswc_status hnswc_get_graph_stats(const hnswc_index *ix, hnswc_graph_stats *out) {
    if (!ix || !out)
        return hnswc_fail(HNSWC_ERR_NULL, "hnswc_get_graph_stats: %s is NULL",
                          ix ? "out" : "index");
    memset(out, 0, sizeof *out);
    uint64_t n = atomic_load(&ix->count);
    out->nodes = n;
    if (n == 0)
        return HNSWC_OK;
    uint8_t *seen = calloc((size_t)n, 1);
    node_id *queue = malloc((size_t)n * sizeof *queue);
    if (!seen || !queue) {
        free(seen);
        free(queue);
        return hnswc_fail(HNSWC_ERR_NOMEM, "hnswc_get_graph_stats: out of memory");
    }
    out->degree0_min = UINT32_MAX;
    for (uint64_t i = 0; i < n; i++) {
        node_head *h = node_at(ix, (node_id)i);
        out->level_counts[h->level]++;
        if ((uint32_t)h->level + 1 > out->levels)
            out->levels = (uint32_t)h->level + 1;
        uint32_t deg = links_count(ix, h->l0, 0);
        out->degree0_min = deg < out->degree0_min ? deg : out->degree0_min;
        out->degree0_max = deg > out->degree0_max ? deg : out->degree0_max;
        out->links_total += deg;
        for (uint32_t j = 0; j < deg; j++) {
            node_id b = atomic_load(&h->l0[1 + j]);
            node_head *bh = node_at(ix, b);
            uint32_t bdeg = links_count(ix, bh->l0, 0);
            bool back = false;
            for (uint32_t t = 0; t < bdeg && !back; t++)
                back = atomic_load(&bh->l0[1 + t]) == (node_id)i;
            out->one_way_links += !back;
        }
    }
    out->degree0_mean = (double)out->links_total / (double)n;

    /* breadth-first walk of layer 0 from the entry point */
    uint64_t e = atomic_load(&ix->entry);
    size_t head = 0, tail = 0, reached = 0;
    if (e != ENTRY_EMPTY) {
        queue[tail++] = (node_id)e;
        seen[(node_id)e] = 1;
    }
    while (head < tail) {
        node_head *h = node_at(ix, queue[head++]);
        reached++;
        uint32_t deg = links_count(ix, h->l0, 0);
        for (uint32_t j = 0; j < deg; j++) {
            node_id b = atomic_load(&h->l0[1 + j]);
            if (!seen[b]) {
                seen[b] = 1;
                queue[tail++] = b;
            }
        }
    }
    out->unreachable = n - reached;
    free(seen);
    free(queue);
    return HNSWC_OK;
}

/* ========================================================================
 * Distances
 * ======================================================================== */

hnswc_status hnswc_distance(hnswc_metric metric, const float *a, const float *b, size_t dim,
                            float *out) {
    if (!a || !b || !out)
        return hnswc_fail(HNSWC_ERR_NULL, "hnswc_distance: %s is NULL", !a ? "a" : !b ? "b" : "out");
    if (dim == 0)
        return hnswc_fail(HNSWC_ERR_INVALID, "hnswc_distance: dim must be at least 1");
    if ((unsigned)metric > HNSWC_METRIC_COSINE)
        return hnswc_fail(HNSWC_ERR_INVALID, "hnswc_distance: unknown metric %d", (int)metric);
    const hnswc_kernels *k = hnswc_kernels_get();
    if (metric == HNSWC_METRIC_L2) {
        *out = k->l2(a, b, dim);
    } else if (metric == HNSWC_METRIC_IP) {
        *out = 1.0f - k->dot(a, b, dim);
    } else {
        if (dim > SIZE_MAX / (2 * sizeof(float)))
            return hnswc_fail(HNSWC_ERR_OVERFLOW, "hnswc_distance: dim overflows");
        float *na = malloc(2 * dim * sizeof(float));
        if (!na)
            return hnswc_fail(HNSWC_ERR_NOMEM, "hnswc_distance: out of memory");
        float *nb = na + dim;
        memcpy(na, a, dim * sizeof(float));
        memcpy(nb, b, dim * sizeof(float));
        hnswc_normalize(na, dim);
        hnswc_normalize(nb, dim);
        *out = 1.0f - k->dot(na, nb, dim);
        free(na);
    }
    return HNSWC_OK;
}
