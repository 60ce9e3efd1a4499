/*
 * index.c -- the public facade: validation, locking and dispatch to the
 * modules below it (storage, labelmap, graph, threads for the HNSW kind;
 * flat for the flat kind, which locks for itself). Nothing below calls back
 * into this file.
 *
 * Every public function validates all of its input before it changes
 * anything, so a rejected call leaves the index exactly as it was. The
 * locking rules are stated at each function and gathered in
 * docs/ARCHITECTURE.md; in short (lock order, outermost first):
 *
 *   reclaim_lock (mutex)  the one reclamation of removed slots (remove.c)
 *   update_lock (rwlock)  read: searches, new-label adds, vector reads,
 *                               removals
 *                         write: adds that rewrite a record in place,
 *                                freeing removed slots
 *   meta_lock (mutex)     label map, slot allocation, growth, level RNG
 *   entry_lock (mutex)    an insert that raises the top level
 *   link lock (striped)   rewriting one node's link lists
 */
#include "distance.h"
#include "error.h"
#include "flat.h"
#include "graph.h"
#include "heap.h"
#include "index.h"
#include "labelmap.h"
#include "layout.h"
#include "remove.h"
#include "storage.h"
#include "threads.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DIM HNSWC_MAX_DIM
#define MAX_M HNSWC_MAX_M
#define MAX_EF ((size_t)HNSWC_MAX_EF)

/* ========================================================================
 * Helpers
 * ======================================================================== */

/* The answer of the graph-only calls on a flat index. */
static hnswc_status no_graph(const char *fn) {
    return hnswc_fail(HNSWC_ERR_INVALID, "%s: a flat index has no graph", fn);
}

/* The dimension of either kind of index (a constant of both records). */
static uint32_t index_dim(const hnswc_index *ix) {
    return index_kind(ix) == HNSWC_KIND_FLAT ? flat_of(ix)->dim : ix->dim;
}

/*
 * True if all n floats are finite: the exponent bits of a NaN or an
 * infinity are all ones. Written as an OR over whole blocks without an early
 * exit, so the compiler vectorises it with the baseline instruction set;
 * every search checks its query, and isfinite() one component at a time with
 * a branch each was ~2% of a Fashion-MNIST SQ8 search at recall 0.95.
 */
static bool all_finite(const float *v, size_t n) {
    uint32_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, v + i, sizeof bits);
        bad |= (uint32_t)((bits & 0x7f800000u) == 0x7f800000u);
    }
    return bad == 0;
}

/* HNSWC_OK if all n components are finite, else NONFINITE naming the first. */
static hnswc_status check_finite(const char *fn, const float *v, size_t n, size_t row) {
    if (all_finite(v, n))
        return HNSWC_OK;
    for (size_t i = 0; i < n; i++) { /* the rare failure: find and name it */
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

/* ========================================================================
 * Lifecycle
 * ======================================================================== */

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
    if ((unsigned)options->kind > HNSWC_KIND_FLAT)
        return hnswc_fail(HNSWC_ERR_INVALID, "hnswc_create: unknown index kind %d",
                          (int)options->kind);
    if (options->M != 0 && (options->M < 2 || options->M > MAX_M))
        return hnswc_fail(HNSWC_ERR_INVALID, "hnswc_create: M must be 2 .. %u, got %u", MAX_M,
                          options->M);
    if (options->ef_search > MAX_EF || options->ef_construction > MAX_EF)
        return hnswc_fail(HNSWC_ERR_INVALID, "hnswc_create: ef above 2^31");
    if ((unsigned)options->relayout > HNSWC_RELAYOUT_MANUAL)
        return hnswc_fail(HNSWC_ERR_INVALID, "hnswc_create: unknown relayout policy %d",
                          (int)options->relayout);
    if ((unsigned)options->storage > HNSWC_STORAGE_SQ8_ONLY)
        return hnswc_fail(HNSWC_ERR_INVALID, "hnswc_create: unknown storage %d",
                          (int)options->storage);
    /* a flat index is its f32 rows (SQ8 is accepted and means nothing to
     * it, as before); code-only would have to mean approximate exact
     * searches: refused rather than silently kept in f32 */
    if (options->kind == HNSWC_KIND_FLAT && options->storage == HNSWC_STORAGE_SQ8_ONLY)
        return hnswc_fail(HNSWC_ERR_INVALID, "hnswc_create: code-only storage (SQ8_ONLY) is "
                          "for HNSW indexes; a flat index keeps its vectors in f32");
    if (options->capacity > HNSWC_MAX_ELEMENTS)
        return hnswc_fail(HNSWC_ERR_OVERFLOW, "hnswc_create: capacity %llu above the maximum %llu",
                          (unsigned long long)options->capacity,
                          (unsigned long long)HNSWC_MAX_ELEMENTS);
    if (options->kind == HNSWC_KIND_FLAT && options->max_elements)
        return hnswc_fail(HNSWC_ERR_INVALID, "hnswc_create: max_elements is for HNSW indexes "
                          "(a flat index reserves exactly its capacity)");
    if (options->kind == HNSWC_KIND_FLAT)
        return flat_create(options, (flat_index **)(void *)out);
    return storage_create(options, out);
}

void hnswc_free(hnswc_index *ix) {
    if (!ix)
        return;
    if (index_kind(ix) == HNSWC_KIND_FLAT) {
        flat_destroy(flat_of(ix));
        return;
    }
    graph_pool_free(ix);
    storage_destroy(ix);
}

/* ========================================================================
 * Slots (meta_lock held)
 * ======================================================================== */

/*
 * A fresh slot for a new label: the graph draws its level, storage takes the
 * slot. Nothing changes if it fails, not even the level generator.
 *
 * The element limit is enforced here, the one place new slots come from.
 * `quota` (NULL for a single add) is the room a batch reserved for itself
 * (see hnswc_add_batch): a slot taken from it is already counted in
 * ix->reserved. Without one, a slot is free only if it leaves the room that
 * batches in flight hold: elements + reserved < max_elements. Elements are
 * the label map's entries, not the slots: a removed element's slot is free
 * (or about to be), and its room is the caller's again.
 */
static hnswc_status new_slot(hnswc_index *ix, uint64_t label, uint64_t *quota, node_id *id) {
    bool from_quota = quota && *quota > 0;
    if (ix->max_elements && !from_quota && ix->labels.len + ix->reserved >= ix->max_elements)
        return hnswc_fail(HNSWC_ERR_FULL, "hnswc_add: the index holds max_elements = %llu "
                          "elements (hnswc_set_max_elements raises the limit)",
                          (unsigned long long)ix->max_elements);
    uint64_t rng = ix->rng;
    hnswc_status st = storage_new_slot(ix, label, graph_random_level(ix), id);
    if (st != HNSWC_OK) {
        ix->rng = rng;
    } else if (from_quota) {
        (*quota)--;
        ix->reserved--;
    }
    return st;
}

/* ========================================================================
 * Adding
 * ======================================================================== */

/* The end of a batch: gives back the contexts its threads held (by
 * parallel_for slot; graph_ctx_take) and frees the array. */
static void release_held(const hnswc_index *ix, search_ctx **held, unsigned threads) {
    for (unsigned t = 0; t < threads; t++)
        if (held[t])
            graph_ctx_release(ix, held[t]);
    free(held);
}

/*
 * Adds or updates one element; vec is the caller's (unnormalised) vector,
 * already checked. Two phases: under the update lock's read side, a new
 * label takes a fresh slot and is linked concurrently with everything else;
 * if the label exists (or a deleted slot is to be reused), the call retries
 * under the write side, because it must rewrite a vector in place. `quota`
 * is the batch's reserved room (new_slot), NULL for a single add; `held`
 * the calling thread's search context in a batch (graph_ctx_take), NULL
 * for a single add.
 *
 * Everything that can fail (the search scratch, the slot, its storage, the
 * label map, the upper link lists) is allocated before the index changes;
 * once the element is stored, linking it cannot fail (graph_insert). So a
 * failed add leaves the index exactly as it was, byte for byte.
 */
static hnswc_status add_one(hnswc_index *ix, uint64_t label, const float *vec, unsigned flags,
                            uint64_t *quota, search_ctx **held) {
    search_ctx *sc = graph_ctx_take(ix, held, ix->ef_construction);
    if (!sc)
        return hnswc_fail(HNSWC_ERR_NOMEM, "hnswc_add: out of memory allocating search scratch");

    node_id id;
    hnswc_status st;

    /* phase 1: the common case, a new label. A loaded index counts its
     * in-degrees before its first link write (storage.c, "In-degrees"):
     * here, before anything changes, so that failing leaves it as it was;
     * phase 2 comes after it and finds them counted. */
    pthread_rwlock_rdlock(&ix->update_lock);
    if ((st = storage_ensure_indegrees(ix)) != HNSWC_OK) {
        pthread_rwlock_unlock(&ix->update_lock);
        graph_ctx_put(ix, held, sc);
        return st;
    }
    pthread_mutex_lock(&ix->meta_lock);
    bool exists = label_map_find(&ix->labels, label, &id);
    bool reuse = (flags & HNSWC_ADD_REPLACE_DELETED) && atomic_load(&ix->deleted_count) > 0;
    if (!exists && !reuse) {
        st = new_slot(ix, label, quota, &id);
        pthread_mutex_unlock(&ix->meta_lock);
        if (st == HNSWC_OK) {
            node_head *n = node_at(ix, id);
            storage_write_vector(ix, id, vec);
            /* or, not store: a concurrent mark_deleted may have set DELETED */
            atomic_fetch_or_explicit(&n->flags, NODE_READY, memory_order_release);
            graph_insert(ix, sc, id, false);
        }
        pthread_rwlock_unlock(&ix->update_lock);
        graph_ctx_put(ix, held, sc);
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
               storage_pop_deleted(ix, &id)) {
        node_head *n = node_at(ix, id);
        /* in this order: the map reads an entry's label from its record
         * (labelmap.h, owned maps) */
        label_map_remove(&ix->labels, n->label);
        n->label = label;
        label_map_put(&ix->labels, label, id); /* room reserved: cannot fail */
        atomic_fetch_and(&n->flags, ~NODE_DELETED);
        atomic_fetch_sub(&ix->deleted_count, 1);
    } else if (st == HNSWC_OK) { /* no deleted slot (left): a fresh one */
        st = new_slot(ix, label, quota, &id);
        relink = false;
    }
    pthread_mutex_unlock(&ix->meta_lock);
    if (st == HNSWC_OK) {
        node_head *n = node_at(ix, id);
        storage_write_vector(ix, id, vec);
        atomic_fetch_or_explicit(&n->flags, NODE_READY, memory_order_release);
        graph_insert(ix, sc, id, relink);
    }
    pthread_rwlock_unlock(&ix->update_lock);
    graph_ctx_put(ix, held, sc);
    return st;
}

/*
 * SQ8: trains the quantiser once the index would hold HNSWC_SQ8_TRAIN_MIN
 * vectors with the n about to be added (`vectors`, checked), on all of them
 * (hnswc.h, hnswc_storage). Takes the write side of update_lock for the
 * training and the coding of the stored nodes, once in the index's life; the
 * unlocked first test makes every later add pay one atomic load.
 */
static hnswc_status maybe_train_codes(hnswc_index *ix, const float *vectors, size_t n) {
    if (ix->storage == HNSWC_STORAGE_F32 || atomic_load_explicit(&ix->codes_ready, memory_order_acquire))
        return HNSWC_OK;
    if (atomic_load(&ix->count) + n < HNSWC_SQ8_TRAIN_MIN)
        return HNSWC_OK;
    hnswc_status st = HNSWC_OK;
    pthread_rwlock_wrlock(&ix->update_lock);
    if (!atomic_load(&ix->codes_ready))
        st = storage_train_codes(ix, vectors, n);
    pthread_rwlock_unlock(&ix->update_lock);
    return st;
}

hnswc_status hnswc_add(hnswc_index *ix, uint64_t label, const float *vector, unsigned flags) {
    if (!ix || !vector)
        return hnswc_fail(HNSWC_ERR_NULL, "hnswc_add: %s is NULL", ix ? "vector" : "index");
    if (flags & ~HNSWC_ADD_REPLACE_DELETED)
        return hnswc_fail(HNSWC_ERR_INVALID, "hnswc_add: unknown flags 0x%x", flags);
    hnswc_status st = check_finite("hnswc_add", vector, index_dim(ix), 0);
    if (st == HNSWC_OK && index_kind(ix) == HNSWC_KIND_FLAT)
        return flat_add(flat_of(ix), vector, &label, 1, flags);
    if (st == HNSWC_OK)
        st = maybe_train_codes(ix, vector, 1);
    return st != HNSWC_OK ? st : add_one(ix, label, vector, flags, NULL, NULL);
}

typedef struct add_batch_job {
    hnswc_index *ix;
    const float *vectors;
    const uint64_t *labels;
    unsigned flags;
    _Atomic size_t added;
    uint64_t quota; /* room still reserved for this batch; meta_lock */
    search_ctx **held; /* each thread's insert context, by slot (graph_ctx_take) */
} add_batch_job;

static hnswc_status add_batch_item(void *ctx, size_t i, unsigned slot) {
    add_batch_job *j = ctx;
    hnswc_status st = add_one(j->ix, j->labels[i], j->vectors + i * j->ix->dim, j->flags,
                              &j->quota, &j->held[slot]);
    if (st == HNSWC_OK)
        atomic_fetch_add_explicit(&j->added, 1, memory_order_relaxed);
    return st;
}

/*
 * The limit check of a batch, before anything is added: counts the room its
 * new labels need -- distinct labels not in the index (as
 * hnswc_count_new_labels counts them), less the deleted slots a replacing
 * batch may take over -- and, if it fits beside what the batches in flight
 * hold, reserves it for this batch in ix->reserved and *quota (given back
 * by release_room when the batch ends). Counting exactly matters: a batch
 * that only updates labels reserves nothing, so it never crowds out adds
 * running beside it (counting its rows did, in the Python binding: issue
 * 13). Without a limit: nothing to do.
 */
static hnswc_status reserve_room(hnswc_index *ix, const uint64_t *labels, size_t n,
                                 unsigned flags, uint64_t *quota) {
    *quota = 0;
    pthread_mutex_lock(&ix->meta_lock);
    bool limited = ix->max_elements != 0;
    pthread_mutex_unlock(&ix->meta_lock);
    if (!limited || n == 0)
        return HNSWC_OK;
    label_map batch = {0}; /* the distinct labels, built without the lock */
    hnswc_status st = label_map_put_distinct(&batch, labels, n);
    if (st != HNSWC_OK) {
        label_map_free(&batch);
        return st;
    }
    pthread_mutex_lock(&ix->meta_lock);
    uint64_t fresh = label_map_count_missing(&batch, &ix->labels);
    uint64_t reusable = (flags & HNSWC_ADD_REPLACE_DELETED) ? atomic_load(&ix->deleted_count) : 0;
    uint64_t need = fresh > reusable ? fresh - reusable : 0;
    uint64_t used = ix->labels.len + ix->reserved; /* elements, not slots: see new_slot */
    uint64_t room = ix->max_elements > used ? ix->max_elements - used : 0;
    if (ix->max_elements && need > room) {
        st = hnswc_fail(HNSWC_ERR_FULL, "hnswc_add_batch: %llu new elements do not fit: the "
                        "index holds %llu of max_elements = %llu%s (nothing was added)",
                        (unsigned long long)need, (unsigned long long)ix->labels.len,
                        (unsigned long long)ix->max_elements,
                        ix->reserved ? ", and adds in flight hold more" : "");
    } else if (ix->max_elements) {
        ix->reserved += need;
        *quota = need;
    }
    pthread_mutex_unlock(&ix->meta_lock);
    label_map_free(&batch);
    return st;
}

/* Gives back what a batch reserved and did not use (labels added meanwhile
 * by others, repeats, a failure): room for others again. */
static void release_room(hnswc_index *ix, uint64_t quota) {
    if (quota == 0)
        return;
    pthread_mutex_lock(&ix->meta_lock);
    ix->reserved -= quota;
    pthread_mutex_unlock(&ix->meta_lock);
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
    if (n > SIZE_MAX / sizeof(float) / index_dim(ix))
        return hnswc_fail(HNSWC_ERR_OVERFLOW, "hnswc_add_batch: %zu vectors overflow size_t", n);
    hnswc_status st = check_rows("hnswc_add_batch", vectors, n, index_dim(ix));
    if (st != HNSWC_OK)
        return st;
    if (index_kind(ix) == HNSWC_KIND_FLAT) {
        /* all or nothing, in the batch's order: threads would only contend */
        st = flat_add(flat_of(ix), vectors, labels, n, flags);
        if (n_added && st == HNSWC_OK)
            *n_added = n;
        return st;
    }
    unsigned threads = parallel_threads(n, num_threads);
    search_ctx **held = calloc(threads, sizeof *held);
    if (!held)
        return hnswc_fail(HNSWC_ERR_NOMEM, "hnswc_add_batch: out of memory");
    add_batch_job j = {ix, vectors, labels, flags, 0, 0, held};
    if ((st = reserve_room(ix, labels, n, flags, &j.quota)) != HNSWC_OK ||
        (st = maybe_train_codes(ix, vectors, n)) != HNSWC_OK) {
        release_room(ix, j.quota);
        free(held);
        return st;
    }
    /* threads.h: why one item at a time; on one thread that is the batch's
     * order, on the calling thread, and so determinism */
    st = parallel_for_each(n, num_threads, add_batch_item, &j);
    release_held(ix, held, threads);
    release_room(ix, j.quota);
    if (n_added)
        *n_added = atomic_load(&j.added);
    /* node order: amortised O(1) per element (layout.h); its failure is not
     * the batch's, the index keeps its order */
    if (st == HNSWC_OK)
        (void)layout_maybe_relayout(ix);
    return st;
}

hnswc_status hnswc_count_new_labels(const hnswc_index *ix, const uint64_t *labels, size_t n,
                                    size_t *n_new) {
    if (n_new)
        *n_new = 0;
    if (!ix || !n_new || (!labels && n > 0))
        return hnswc_fail(HNSWC_ERR_NULL, "hnswc_count_new_labels: %s is NULL",
                          !ix ? "index" : !n_new ? "n_new" : "labels");
    if (index_kind(ix) == HNSWC_KIND_FLAT)
        return flat_count_new(flat_of(ix), labels, n, n_new);
    /* the batch's distinct labels first, without a lock; then one pass
     * over them under meta_lock, which guards the label map. A label whose
     * element is still being added (not READY) has its slot already. */
    label_map batch = {0};
    hnswc_status st = label_map_put_distinct(&batch, labels, n);
    if (st == HNSWC_OK) {
        hnswc_index *mix = (hnswc_index *)ix;
        pthread_mutex_lock(&mix->meta_lock);
        *n_new = label_map_count_missing(&batch, &ix->labels);
        pthread_mutex_unlock(&mix->meta_lock);
    }
    label_map_free(&batch);
    return st;
}

/* ========================================================================
 * Searching
 * ======================================================================== */

#define RESULT_STACK_ITEMS 256

/* One search, arguments checked; writes n_found results. */
static hnswc_status search_one(const hnswc_index *ix, const float *query, size_t k, size_t ef,
                               hnswc_filter_fn filter, void *user, uint64_t *labels,
                               float *distances, size_t *n_found, bool exact,
                               const graph_trace *tr);

/*
 * The one validation of every search call (fn names the caller in
 * messages): n queries of dim floats, k results per query into labels, a
 * count per query into n_found. The arrays may be NULL only when n is 0 (an
 * empty batch); a single search passes n = 1 and batch = false, which names
 * the argument "query" rather than "queries". values: also check that every
 * component is finite (a search batch checks each query on the thread that
 * searches it instead). Writes nothing.
 */
static hnswc_status check_search(const char *fn, bool batch, bool values, const hnswc_index *ix,
                                 const float *queries, size_t n, size_t k, size_t ef,
                                 const uint64_t *labels, const size_t *n_found) {
    if (!ix || ((!queries || !labels || !n_found) && n > 0))
        return hnswc_fail(HNSWC_ERR_NULL, "%s: %s is NULL", fn,
                          !ix ? "index" : !queries ? (batch ? "queries" : "query")
                                        : !labels  ? "labels" : "n_found");
    if (k == 0)
        return hnswc_fail(HNSWC_ERR_INVALID, "%s: k must be at least 1", fn);
    if (k > MAX_EF || ef > MAX_EF)
        return hnswc_fail(HNSWC_ERR_INVALID, "%s: %s above 2^31", fn, k > MAX_EF ? "k" : "ef");
    uint32_t dim = index_dim(ix);
    if (n > SIZE_MAX / sizeof(float) / dim || n > SIZE_MAX / sizeof(uint64_t) / k)
        return hnswc_fail(HNSWC_ERR_OVERFLOW, "%s: %zu queries overflow size_t", fn, n);
    return values ? check_rows(fn, queries, n, dim) : HNSWC_OK;
}

hnswc_status hnswc_search(const hnswc_index *ix, const float *query, size_t k, size_t ef,
                          hnswc_filter_fn filter, void *user_data, uint64_t *labels,
                          float *distances, size_t *n_found) {
    if (n_found)
        *n_found = 0;
    hnswc_status st = check_search("hnswc_search", false, true, ix, query, 1, k, ef, labels, n_found);
    if (st != HNSWC_OK)
        return st;
    if (index_kind(ix) == HNSWC_KIND_FLAT)
        return flat_search(flat_of(ix), query, 1, k, filter, user_data, 1, labels, distances,
                           n_found);
    return search_one(ix, query, k, ef, filter, user_data, labels, distances, n_found, false,
                      NULL);
}

hnswc_status hnswc_search_traced(const hnswc_index *ix, const float *query, size_t k, size_t ef,
                                 hnswc_filter_fn filter, void *user_data, hnswc_trace_fn trace,
                                 void *trace_data, uint64_t *labels, float *distances,
                                 size_t *n_found) {
    if (n_found)
        *n_found = 0;
    hnswc_status st =
        check_search("hnswc_search_traced", false, true, ix, query, 1, k, ef, labels, n_found);
    if (st != HNSWC_OK)
        return st;
    if (index_kind(ix) == HNSWC_KIND_FLAT)
        return no_graph("hnswc_search_traced");
    graph_trace tr = {trace, trace_data};
    return search_one(ix, query, k, ef, filter, user_data, labels, distances, n_found, false,
                      trace ? &tr : NULL);
}

hnswc_status hnswc_search_exact(const hnswc_index *ix, const float *query, size_t k,
                                hnswc_filter_fn filter, void *user_data, uint64_t *labels,
                                float *distances, size_t *n_found) {
    if (n_found)
        *n_found = 0;
    hnswc_status st =
        check_search("hnswc_search_exact", false, true, ix, query, 1, k, 0, labels, n_found);
    if (st != HNSWC_OK)
        return st;
    if (index_kind(ix) == HNSWC_KIND_FLAT)
        return flat_search(flat_of(ix), query, 1, k, filter, user_data, 1, labels, distances,
                           n_found);
    return search_one(ix, query, k, 0, filter, user_data, labels, distances, n_found, true, NULL);
}

/*
 * One search, and the labels of its results. `start` (NODE_NONE, or where
 * an ordered batch's descent ended: graph_search_entry) and `lock` (false:
 * the caller already holds the update lock's read side, as an ordered batch
 * does) serve hnswc_search_batch; every other caller goes through
 * search_one.
 */
static hnswc_status search_one_from(const hnswc_index *ix, const float *query, size_t k,
                                    size_t ef, hnswc_filter_fn filter, void *user,
                                    uint64_t *labels, float *distances, size_t *n_found,
                                    bool exact, const graph_trace *tr, node_id start, bool lock,
                                    search_ctx **held) {
    /* A search finds at most the elements there are: a k beyond them (the
     * caller's arrays have room for it) must not cost its size here. An
     * element added while the search runs may be missed anyway. */
    uint64_t count = atomic_load(&ix->count);
    if (k > count)
        k = count ? (size_t)count : 1;
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
    if (lock)
        pthread_rwlock_rdlock((pthread_rwlock_t *)&ix->update_lock);
    if (exact && ix->storage == HNSWC_STORAGE_SQ8_ONLY) { /* a row to decode into */
        float *dbuf = malloc((size_t)ix->dim * sizeof *dbuf);
        if (dbuf)
            n = graph_search_exact(ix, q, k, filter, user, res, dbuf);
        else
            st = hnswc_fail(HNSWC_ERR_NOMEM, "hnswc_search_exact: out of memory");
        free(dbuf);
    } else if (exact)
        n = graph_search_exact(ix, q, k, filter, user, res, NULL);
    else if (tr)
        st = graph_search_traced(ix, q, k, ef ? ef : atomic_load(&ix->ef_search), filter, user, tr,
                                 res, &n);
    else
        st = graph_search(ix, q, k, ef ? ef : atomic_load(&ix->ef_search), filter, user, start,
                          held, res, &n);
    for (size_t i = 0; i < n; i++) {
        labels[i] = node_at(ix, res[i].id)->label;
        if (distances)
            distances[i] = res[i].dist;
    }
    if (lock)
        pthread_rwlock_unlock((pthread_rwlock_t *)&ix->update_lock);
    *n_found = n;
    free(owned_q);
    if (res != local)
        free(res);
    return st;
}

static hnswc_status search_one(const hnswc_index *ix, const float *query, size_t k, size_t ef,
                               hnswc_filter_fn filter, void *user, uint64_t *labels,
                               float *distances, size_t *n_found, bool exact,
                               const graph_trace *tr) {
    return search_one_from(ix, query, k, ef, filter, user, labels, distances, n_found, exact, tr,
                           NODE_NONE, true, NULL);
}

/* Every output of a batch reads "nothing found": label UINT64_MAX, distance
 * +infinity, count 0. Filled before a batch runs, so that queries a failure
 * stops before they start read so, as the header promises. */
static void fill_not_found(size_t n, size_t k, uint64_t *labels, float *distances,
                           size_t *n_found) {
    for (size_t i = 0; i < n; i++) {
        n_found[i] = 0;
        for (size_t r = 0; r < k; r++) {
            labels[i * k + r] = UINT64_MAX;
            if (distances)
                distances[i * k + r] = INFINITY;
        }
    }
}

typedef struct search_batch_job {
    const hnswc_index *ix;
    const float *queries;
    size_t n, k, ef;
    hnswc_filter_fn filter;
    void *user;
    uint64_t *labels;
    float *distances;
    size_t *n_found;
    /* an ordered batch (below): NULL, or each query's layer-0 start ... */
    node_id *start;
    /* ... and the queries in the order they are searched, as
     * (start << 32 | query) */
    uint64_t *order;
    /* each thread's search context, by parallel_for slot, kept from query
     * to query (graph.h, graph_ctx_take: why) and released by the batch at
     * its end */
    search_ctx **held;
} search_batch_job;

/* Query i of a batch (a search_batch_job), searched from j->start[i] when
 * the batch is ordered (the update lock's read side is then held by the
 * calling thread). */
static hnswc_status search_batch_item(void *ctx, size_t i, unsigned slot) {
    search_batch_job *j = ctx;
    size_t k = j->k;
    uint64_t *labels = j->labels + i * k;
    float *dists = j->distances ? j->distances + i * k : NULL;
    const float *query = j->queries + i * j->ix->dim;
    size_t found = 0;
    hnswc_status st = HNSWC_OK;
    if (!j->start) { /* an ordered batch checked its queries in its first pass */
        st = check_finite("hnswc_search_batch", query, j->ix->dim, i);
        if (st != HNSWC_OK)
            return st;
    }
    /* entries past `found` keep fill_not_found's "nothing found" */
    st = search_one_from(j->ix, query, k, j->ef, j->filter, j->user, labels, dists, &found,
                         false, NULL, j->start ? j->start[i] : NODE_NONE, !j->start,
                         &j->held[slot]);
    j->n_found[i] = found; /* never NULL: check_search */
    return st;
}

/* ------------------------------------------------------------------------
 * Ordered batches
 *
 * A batch of at least BATCH_ORDER_MIN queries is searched in two passes
 * under one hold of the update lock's read side: the first makes each
 * query's greedy descent (graph_search_entry), the queries are sorted by
 * the node of layer 0 where their walks begin, and the second runs the
 * walks in that order, handed out in blocks of consecutive queries (one
 * parallel_for_passes call: descents, sort, walks). Node ids follow the
 * node order (layout.c: breadth-first from the entry point), so queries
 * that begin near each other run one after the other on one thread and
 * find much of what the previous walk read still in its caches. Measured on Fashion-MNIST with SQ8 (bench/ab.py,
 * chunks of 500 queries, against the unordered batch of the same library;
 * docs/BENCHMARKS.md round 5): 1.11-1.16x queries per second at ef 10-40 on
 * one thread, 1.04-1.12x on two. Results are those of unordered searches:
 * each query's walk begins where its own descent led; only the order of
 * the walks changes. With two threads the blocks stay 15 walks wide, the
 * two threads walking neighbouring stretches of the order at once
 * (rejected, docs/BENCHMARKS.md round 7: one contiguous half of the order
 * per thread, 0.90-0.96x; blocks of about 62, 0.92-0.96x), and shrink
 * only at the end of the pass (threads.c, run_pass).
 *
 * The price: writers that need the write side (label updates, slot reuse,
 * freeing removed slots, a relayout) wait for the whole batch rather than
 * for one query -- the flat index's batches already work so. Holding it is
 * what keeps a start node's id meaning the same node between the passes.
 * (Not chosen: making each query's descent twice, once for the key and once
 * for its search, without holding the lock between: every descent paid
 * twice.)
 * ------------------------------------------------------------------------ */

#define BATCH_ORDER_MIN 32

static hnswc_status batch_entry_item(void *ctx, size_t i, unsigned slot) {
    search_batch_job *j = ctx;
    const float *query = j->queries + i * j->ix->dim;
    hnswc_status st = check_finite("hnswc_search_batch", query, j->ix->dim, i);
    if (st != HNSWC_OK)
        return st;
    float qbuf[QUERY_STACK_FLOATS];
    float *owned_q;
    const float *q = prepare_query(j->ix, query, qbuf, &owned_q);
    if (!q)
        return hnswc_fail(HNSWC_ERR_NOMEM, "hnswc_search_batch: out of memory");
    st = graph_search_entry(j->ix, q, &j->held[slot], &j->start[i]);
    free(owned_q);
    return st;
}

static hnswc_status batch_ordered_item(void *ctx, size_t pos, unsigned slot) {
    search_batch_job *j = ctx;
    return search_batch_item(j, (size_t)(j->order[pos] & UINT32_MAX), slot);
}

static int compare_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Between the passes, on one thread: the walks' order. */
static void batch_sort(void *ctx) {
    search_batch_job *j = ctx;
    for (size_t i = 0; i < j->n; i++)
        j->order[i] = (uint64_t)j->start[i] << 32 | i;
    qsort(j->order, j->n, sizeof *j->order, compare_u64);
}

/* The two passes; the caller has checked the batch and filled the outputs
 * with "nothing found". Returns false, having searched nothing, when the
 * batch cannot be ordered (too small, too large, no memory for the order):
 * the caller then searches it unordered. */
static bool search_batch_ordered(search_batch_job *j, unsigned num_threads, hnswc_status *st) {
    size_t n = j->n;
    if (n < BATCH_ORDER_MIN || n > UINT32_MAX)
        return false;
    j->start = malloc(n * sizeof *j->start);
    j->order = malloc(n * sizeof *j->order);
    bool ordered = j->start && j->order;
    if (ordered) {
        pthread_rwlock_rdlock((pthread_rwlock_t *)&j->ix->update_lock);
        *st = parallel_for_passes(n, num_threads, batch_entry_item, batch_sort, batch_ordered_item,
                                  j);
        pthread_rwlock_unlock((pthread_rwlock_t *)&j->ix->update_lock);
    }
    free(j->start);
    free(j->order);
    j->start = NULL;
    j->order = NULL; /* search_batch_item: unordered from here */
    return ordered;
}

hnswc_status hnswc_search_batch(const hnswc_index *ix, const float *queries, size_t n, size_t k,
                                size_t ef, hnswc_filter_fn filter, void *user_data,
                                unsigned num_threads, uint64_t *labels, float *distances,
                                size_t *n_found) {
    bool flat = ix && index_kind(ix) == HNSWC_KIND_FLAT;
    hnswc_status st =
        check_search("hnswc_search_batch", true, flat, ix, queries, n, k, ef, labels, n_found);
    if (st != HNSWC_OK)
        return st;
    fill_not_found(n, k, labels, distances, n_found);
    if (flat)
        return flat_search(flat_of(ix), queries, n, k, filter, user_data, num_threads, labels,
                           distances, n_found);
    /* Each query's values are checked on a worker thread, by the pass that
     * first reads it (an ordered batch's descents, batch_entry_item; or
     * search_batch_item), not all first on this thread: that was a serial
     * pass over the whole batch (in a profile of two-thread batches of 500
     * Fashion-MNIST queries, about 2% of the calling thread's time). The
     * header's promise holds: a batch with a bad query fails whole, every
     * output reading "nothing found", with the message naming the FIRST bad
     * query (the thread that failed may have met a later one). */
    unsigned threads = parallel_threads(n, num_threads);
    search_ctx **held = calloc(threads, sizeof *held);
    if (!held)
        return hnswc_fail(HNSWC_ERR_NOMEM, "hnswc_search_batch: out of memory");
    search_batch_job j = {.ix = ix,
                          .queries = queries,
                          .n = n,
                          .k = k,
                          .ef = ef,
                          .filter = filter,
                          .user = user_data,
                          .labels = labels,
                          .distances = distances,
                          .n_found = n_found,
                          .held = held};
    if (!search_batch_ordered(&j, num_threads, &st))
        st = parallel_for_each(n, num_threads, search_batch_item, &j); /* threads.h: why */
    release_held(ix, held, threads);
    if (st == HNSWC_ERR_NONFINITE) {
        fill_not_found(n, k, labels, distances, n_found);
        st = check_rows("hnswc_search_batch", queries, n, index_dim(ix));
    }
    return st;
}

/* ========================================================================
 * Range search (graph.c finds the ball; labels are read here, as in
 * search_one, under the update lock's read side)
 * ======================================================================== */

hnswc_status hnswc_search_range(const hnswc_index *ix, const float *query, float radius,
                                size_t ef, hnswc_filter_fn filter, void *user_data,
                                hnswc_range_result *result) {
    if (!ix || !query || !result) {
        if (result && result->count <= result->capacity)
            result->count = 0;
        return hnswc_fail(HNSWC_ERR_NULL, "hnswc_search_range: %s is NULL",
                          !ix ? "index" : !query ? "query" : "result");
    }
    if (result->count > result->capacity || (result->capacity && (!result->labels ||
                                                                  !result->distances))) {
        /* not ours to free or grow: garbage, or a struct from elsewhere */
        result->count = 0;
        return hnswc_fail(HNSWC_ERR_INVALID, "hnswc_search_range: result is not "
                          "zero-initialised nor from an earlier call");
    }
    result->count = 0;
    if (!(radius >= 0.f)) /* NaN too */
        return hnswc_fail(HNSWC_ERR_INVALID, "hnswc_search_range: radius must be a non-negative "
                          "number, got %g", (double)radius);
    if (ef > MAX_EF)
        return hnswc_fail(HNSWC_ERR_INVALID, "hnswc_search_range: ef above 2^31");
    hnswc_status st = check_finite("hnswc_search_range", query, index_dim(ix), 0);
    if (st != HNSWC_OK)
        return st;
    if (index_kind(ix) == HNSWC_KIND_FLAT) /* exact: a scan of every row */
        return flat_search_range(flat_of(ix), query, radius, filter, user_data, result);
    float qbuf[QUERY_STACK_FLOATS];
    float *owned_q;
    const float *q = prepare_query(ix, query, qbuf, &owned_q);
    if (!q)
        return hnswc_fail(HNSWC_ERR_NOMEM, "hnswc_search_range: out of memory");

    graph_hits hits = {0};
    pthread_rwlock_rdlock((pthread_rwlock_t *)&ix->update_lock);
    st = graph_search_range(ix, q, radius, ef ? ef : atomic_load(&ix->ef_search), filter,
                            user_data, &hits);
    if (st == HNSWC_OK && hits.n > result->capacity) {
        uint64_t *l = realloc(result->labels, hits.n * sizeof *l);
        if (l)
            result->labels = l;
        float *d = l ? realloc(result->distances, hits.n * sizeof *d) : NULL;
        if (d)
            result->distances = d;
        if (l && d)
            result->capacity = hits.n;
        else
            st = hnswc_fail(HNSWC_ERR_NOMEM, "hnswc_search_range: out of memory for %zu results",
                            hits.n);
    }
    if (st == HNSWC_OK) {
        for (size_t i = 0; i < hits.n; i++) {
            result->labels[i] = node_at(ix, hits.items[i].id)->label;
            result->distances[i] = hits.items[i].dist;
        }
        result->count = hits.n;
    }
    pthread_rwlock_unlock((pthread_rwlock_t *)&ix->update_lock);
    free(hits.items);
    free(owned_q);
    return st;
}

void hnswc_range_result_free(hnswc_range_result *result) {
    if (!result)
        return;
    free(result->labels);
    free(result->distances);
    memset(result, 0, sizeof *result);
}

/* ========================================================================
 * Elements by label
 * ======================================================================== */

/*
 * Finds a ready node by label; an element still being added (not READY) is
 * not found yet. Caller holds meta_lock, which guards the label map. The id
 * names the label's element while meta_lock is held, and after it is
 * released for as long as the caller holds the update lock (either side): a
 * slot changes label only under the write side (slot reuse in add_one).
 */
static hnswc_status find_label(const hnswc_index *ix, const char *fn, uint64_t label,
                               node_id *id) {
    if (!label_map_find(&ix->labels, label, id) ||
        !(atomic_load_explicit(&node_at(ix, *id)->flags, memory_order_acquire) & NODE_READY))
        return hnswc_fail(HNSWC_ERR_NOT_FOUND, "%s: no element has label %llu", fn,
                          (unsigned long long)label);
    return HNSWC_OK;
}

hnswc_status hnswc_get_vector(const hnswc_index *ix, uint64_t label, float *out) {
    if (!ix || !out)
        return hnswc_fail(HNSWC_ERR_NULL, "hnswc_get_vector: %s is NULL", ix ? "out" : "index");
    if (index_kind(ix) == HNSWC_KIND_FLAT)
        return flat_lookup(flat_of(ix), "hnswc_get_vector", label, out, NULL);
    hnswc_index *mix = (hnswc_index *)ix;
    /* the update lock keeps the vector (and the id's label) from changing
     * while it is copied; meta_lock is needed only for the lookup */
    pthread_rwlock_rdlock(&mix->update_lock);
    pthread_mutex_lock(&mix->meta_lock);
    node_id id;
    hnswc_status st = find_label(ix, "hnswc_get_vector", label, &id);
    pthread_mutex_unlock(&mix->meta_lock);
    if (st == HNSWC_OK && storage_has_vectors(ix))
        memcpy(out, node_vector(ix, id), (size_t)ix->dim * sizeof(float));
    else if (st == HNSWC_OK) /* code only: the decoded row (hnswc.h) */
        quant_sq8_decode(&ix->quant, node_codes(ix, node_at(ix, id)), out);
    pthread_rwlock_unlock(&mix->update_lock);
    return st;
}

hnswc_status hnswc_is_deleted(const hnswc_index *ix, uint64_t label, int *is_deleted) {
    if (!ix || !is_deleted)
        return hnswc_fail(HNSWC_ERR_NULL, "hnswc_is_deleted: %s is NULL",
                          ix ? "is_deleted" : "index");
    if (index_kind(ix) == HNSWC_KIND_FLAT)
        return flat_lookup(flat_of(ix), "hnswc_is_deleted", label, NULL, is_deleted);
    /* meta_lock alone: DELETED changes only under it, and holding it from the
     * lookup to the read keeps the slot from being reused for another label
     * in between. No vector is read, so the update lock is not needed. */
    hnswc_index *mix = (hnswc_index *)ix;
    pthread_mutex_lock(&mix->meta_lock);
    node_id id;
    hnswc_status st = find_label(ix, "hnswc_is_deleted", label, &id);
    if (st == HNSWC_OK)
        *is_deleted = (atomic_load(&node_at(ix, id)->flags) & NODE_DELETED) != 0;
    pthread_mutex_unlock(&mix->meta_lock);
    return st;
}

hnswc_status hnswc_get_labels(const hnswc_index *ix, uint64_t *out, size_t capacity,
                              size_t *n_written) {
    if (!ix || !n_written || (!out && capacity > 0))
        return hnswc_fail(HNSWC_ERR_NULL, "hnswc_get_labels: %s is NULL",
                          !ix ? "index" : !n_written ? "n_written" : "out");
    if (index_kind(ix) == HNSWC_KIND_FLAT)
        return flat_get_labels(flat_of(ix), out, capacity, n_written);
    hnswc_index *mix = (hnswc_index *)ix;
    pthread_rwlock_rdlock(&mix->update_lock);
    pthread_mutex_lock(&mix->meta_lock);
    /* every element's slot holds its label, set under meta_lock; removed
     * and free slots hold none, and the label map has one entry per element
     * (an element still being added is listed, as before it is READY) */
    size_t need = ix->labels.len;
    uint64_t count = atomic_load(&ix->count);
    hnswc_status st = HNSWC_OK;
    if (need > capacity) {
        st = hnswc_fail(HNSWC_ERR_INVALID, "hnswc_get_labels: room for %zu labels, %zu needed",
                        capacity, need);
    } else {
        size_t w = 0;
        for (uint64_t i = 0; i < count && w < need; i++)
            if (!(atomic_load(&node_at(ix, (node_id)i)->flags) & NODE_REMOVED))
                out[w++] = node_at(ix, (node_id)i)->label;
    }
    pthread_mutex_unlock(&mix->meta_lock);
    pthread_rwlock_unlock(&mix->update_lock);
    *n_written = need;
    return st;
}

/* ========================================================================
 * Looking inside: nodes and links
 *
 * All three are [reader]s. The update lock's read side keeps a slot's label,
 * level and upper link block from changing underneath (a slot is rewritten
 * in place, or freed after a removal, only under the write side; a freed
 * slot taken by an add is not READY until its record is complete); links
 * themselves are read with the atomics a search uses, without the link
 * locks. A flat index has no nodes.
 * ======================================================================== */

hnswc_status hnswc_node_id(const hnswc_index *ix, uint64_t label, uint32_t *id) {
    if (!ix || !id)
        return hnswc_fail(HNSWC_ERR_NULL, "hnswc_node_id: %s is NULL", ix ? "id" : "index");
    if (index_kind(ix) == HNSWC_KIND_FLAT)
        return no_graph("hnswc_node_id");
    hnswc_index *mix = (hnswc_index *)ix;
    pthread_mutex_lock(&mix->meta_lock);
    node_id found;
    hnswc_status st = find_label(ix, "hnswc_node_id", label, &found);
    pthread_mutex_unlock(&mix->meta_lock);
    if (st == HNSWC_OK)
        *id = found;
    return st;
}

/* The READY node `id` of an element, or NOT_FOUND: a removed element (its
 * label is gone) or a free slot is no node. Update lock held: a slot is
 * freed only under the write side, and an add makes it READY again only
 * once its new record is written. */
static hnswc_status ready_node(const hnswc_index *ix, const char *fn, uint32_t id,
                               node_head **out) {
    if ((uint64_t)id >= atomic_load_explicit(&ix->count, memory_order_acquire) ||
        !node_is_element(atomic_load_explicit(&node_at(ix, id)->flags, memory_order_acquire)))
        return hnswc_fail(HNSWC_ERR_NOT_FOUND, "%s: no node has id %u", fn, (unsigned)id);
    *out = node_at(ix, id);
    return HNSWC_OK;
}

hnswc_status hnswc_node_info(const hnswc_index *ix, uint32_t id, hnswc_node *out) {
    if (!ix || !out)
        return hnswc_fail(HNSWC_ERR_NULL, "hnswc_node_info: %s is NULL", ix ? "out" : "index");
    if (index_kind(ix) == HNSWC_KIND_FLAT)
        return no_graph("hnswc_node_info");
    hnswc_index *mix = (hnswc_index *)ix;
    pthread_rwlock_rdlock(&mix->update_lock);
    node_head *n = NULL;
    hnswc_status st = ready_node(ix, "hnswc_node_info", id, &n);
    if (st == HNSWC_OK) {
        out->label = n->label;
        out->level = node_level(n);
        out->deleted = (atomic_load(&n->flags) & NODE_DELETED) != 0;
    }
    pthread_rwlock_unlock(&mix->update_lock);
    return st;
}

hnswc_status hnswc_node_links(const hnswc_index *ix, uint32_t id, int layer, uint32_t *out,
                              size_t capacity, size_t *n_links) {
    if (!ix || !n_links || !out)
        return hnswc_fail(HNSWC_ERR_NULL, "hnswc_node_links: %s is NULL",
                          !ix ? "index" : !n_links ? "n_links" : "out");
    if (index_kind(ix) == HNSWC_KIND_FLAT)
        return no_graph("hnswc_node_links");
    hnswc_index *mix = (hnswc_index *)ix;
    pthread_rwlock_rdlock(&mix->update_lock);
    node_head *n = NULL;
    hnswc_status st = ready_node(ix, "hnswc_node_links", id, &n);
    if (st == HNSWC_OK && (layer < 0 || layer > node_level(n)))
        st = hnswc_fail(HNSWC_ERR_INVALID, "hnswc_node_links: node %u has layers 0 .. %d, not %d",
                        (unsigned)id, (int)node_level(n), layer);
    if (st == HNSWC_OK) {
        _Atomic uint32_t *links = node_links(ix, n, layer);
        uint32_t count = node_links_count(ix, links, layer);
        *n_links = count;
        if (count > capacity)
            st = hnswc_fail(HNSWC_ERR_INVALID, "hnswc_node_links: room for %zu ids, %u needed",
                            capacity, (unsigned)count);
        else
            for (uint32_t j = 0; j < count; j++)
                out[j] = atomic_load_explicit(&links[1 + j], memory_order_acquire);
    }
    pthread_rwlock_unlock(&mix->update_lock);
    return st;
}

/* ========================================================================
 * Tombstones
 * ======================================================================== */

static hnswc_status set_deleted(hnswc_index *ix, const char *fn, uint64_t label, bool del) {
    if (!ix)
        return hnswc_fail(HNSWC_ERR_NULL, "%s: index is NULL", fn);
    if (index_kind(ix) == HNSWC_KIND_FLAT)
        return flat_set_deleted(flat_of(ix), fn, label, del);
    pthread_mutex_lock(&ix->meta_lock);
    node_id id;
    hnswc_status st = find_label(ix, fn, label, &id);
    if (st == HNSWC_OK) {
        node_head *n = node_at(ix, id);
        bool is_del = atomic_load(&n->flags) & NODE_DELETED;
        if (is_del == del)
            st = hnswc_fail(HNSWC_ERR_DELETED, "%s: label %llu is %s", fn,
                            (unsigned long long)label, del ? "already deleted" : "not deleted");
        else if (del && (st = storage_push_deleted(ix, id)) == HNSWC_OK) {
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
 * Removal (remove.c does the work; see remove.h)
 * ======================================================================== */

hnswc_status hnswc_remove(hnswc_index *ix, uint64_t label) {
    if (!ix)
        return hnswc_fail(HNSWC_ERR_NULL, "hnswc_remove: index is NULL");
    if (index_kind(ix) == HNSWC_KIND_FLAT)
        return flat_remove(flat_of(ix), "hnswc_remove", label);
    return remove_labels(ix, "hnswc_remove", &label, 1, 1);
}

hnswc_status hnswc_remove_batch(hnswc_index *ix, const uint64_t *labels, size_t n,
                                unsigned num_threads) {
    if (!ix || (!labels && n > 0))
        return hnswc_fail(HNSWC_ERR_NULL, "hnswc_remove_batch: %s is NULL", ix ? "labels" : "index");
    if (n > HNSWC_MAX_ELEMENTS)
        return hnswc_fail(HNSWC_ERR_INVALID, "hnswc_remove_batch: %zu labels, more than an index "
                          "can hold", n);
    if (index_kind(ix) == HNSWC_KIND_FLAT)
        return flat_remove_batch(flat_of(ix), "hnswc_remove_batch", labels, n);
    return remove_labels(ix, "hnswc_remove_batch", labels, n, num_threads);
}

hnswc_status hnswc_compact(hnswc_index *ix, unsigned num_threads, size_t *n_removed) {
    if (n_removed)
        *n_removed = 0;
    if (!ix)
        return hnswc_fail(HNSWC_ERR_NULL, "hnswc_compact: index is NULL");
    if (index_kind(ix) == HNSWC_KIND_FLAT) {
        size_t removed = 0;
        hnswc_status st = flat_compact(flat_of(ix), &removed);
        if (n_removed)
            *n_removed = removed;
        return st;
    }
    return remove_compact(ix, num_threads, n_removed);
}

/* ========================================================================
 * Node order (layout.c does the work; see layout.h)
 * ======================================================================== */

hnswc_status hnswc_relayout(hnswc_index *ix) {
    if (!ix)
        return hnswc_fail(HNSWC_ERR_NULL, "hnswc_relayout: index is NULL");
    if (index_kind(ix) == HNSWC_KIND_FLAT)
        return HNSWC_OK; /* rows are dense and in order already */
    return layout_relayout(ix);
}

hnswc_status hnswc_set_relayout(hnswc_index *ix, hnswc_relayout_policy policy) {
    if (!ix)
        return hnswc_fail(HNSWC_ERR_NULL, "hnswc_set_relayout: index is NULL");
    if ((unsigned)policy > HNSWC_RELAYOUT_MANUAL)
        return hnswc_fail(HNSWC_ERR_INVALID, "hnswc_set_relayout: unknown policy %d", (int)policy);
    if (index_kind(ix) == HNSWC_KIND_FLAT)
        return HNSWC_OK;
    atomic_store(&ix->relayout_policy, (int)policy);
    return HNSWC_OK;
}

/* ========================================================================
 * Parameters, counts and statistics
 * ======================================================================== */

hnswc_status hnswc_get_info(const hnswc_index *ix, hnswc_info *out) {
    if (!ix || !out)
        return hnswc_fail(HNSWC_ERR_NULL, "hnswc_get_info: %s is NULL", ix ? "out" : "index");
    if (index_kind(ix) == HNSWC_KIND_FLAT) {
        flat_get_info(flat_of(ix), out);
        return HNSWC_OK;
    }
    hnswc_index *mix = (hnswc_index *)ix;
    memset(out, 0, sizeof *out);
    out->kind = HNSWC_KIND_HNSW;
    out->dim = ix->dim;
    out->metric = ix->metric;
    out->M = ix->M;
    out->ef_construction = ix->ef_construction;
    out->ef_search = atomic_load(&ix->ef_search);
    out->seed = ix->seed;
    pthread_mutex_lock(&mix->meta_lock);
    out->count = ix->labels.len; /* one label per stored element */
    out->deleted_count = atomic_load(&ix->deleted_count);
    out->max_elements = ix->max_elements;
    out->pending_slots = atomic_load(&ix->removed_pending);
    out->removed_slots = out->pending_slots + atomic_load(&ix->free_count);
    out->removed_total = atomic_load(&ix->removed_total);
    out->reused_total = atomic_load(&ix->reused_total);
    size_t side = label_map_bytes(&ix->labels) +
                  (ix->deleted_ids_cap + ix->limbo_cap + ix->free_cap) * sizeof(node_id);
    pthread_mutex_unlock(&mix->meta_lock);
    out->live_count = out->count - out->deleted_count;
    out->capacity = atomic_load(&ix->capacity);
    uint64_t e = atomic_load(&ix->entry);
    out->max_level = e == ENTRY_EMPTY ? -1 : entry_level(e);
    out->memory_bytes = atomic_load(&ix->memory_bytes) + side + graph_pool_bytes(ix);
    out->mapped_bytes = ix->map_bytes;
    out->simd = ix->kernels->name;
    out->storage = ix->storage;
    out->codes_trained = atomic_load(&ix->codes_ready) != 0;
    out->codes_clipped = atomic_load(&ix->codes_clipped);
    out->relayout = (hnswc_relayout_policy)atomic_load(&ix->relayout_policy);
    out->relayouts = atomic_load(&ix->relayouts);
    return HNSWC_OK;
}

hnswc_status hnswc_set_ef(hnswc_index *ix, size_t ef) {
    if (!ix)
        return hnswc_fail(HNSWC_ERR_NULL, "hnswc_set_ef: index is NULL");
    if (ef == 0 || ef > MAX_EF)
        return hnswc_fail(HNSWC_ERR_INVALID, "hnswc_set_ef: ef must be 1 .. 2^31, got %zu", ef);
    if (index_kind(ix) == HNSWC_KIND_FLAT)
        return HNSWC_OK; /* every search of a flat index is exact */
    atomic_store(&ix->ef_search, (uint32_t)ef);
    return HNSWC_OK;
}

hnswc_status hnswc_set_max_elements(hnswc_index *ix, uint64_t max_elements) {
    if (!ix)
        return hnswc_fail(HNSWC_ERR_NULL, "hnswc_set_max_elements: index is NULL");
    if (index_kind(ix) == HNSWC_KIND_FLAT)
        return hnswc_fail(HNSWC_ERR_INVALID, "hnswc_set_max_elements: a flat index has no "
                          "element limit (hnswc_reserve sets its capacity)");
    hnswc_status st = HNSWC_OK;
    pthread_mutex_lock(&ix->meta_lock);
    uint64_t count = ix->labels.len; /* elements (removed ones are not) */
    if (max_elements && max_elements < count)
        st = hnswc_fail(HNSWC_ERR_INVALID, "hnswc_set_max_elements: the index holds %llu "
                        "elements, more than %llu", (unsigned long long)count,
                        (unsigned long long)max_elements);
    else
        ix->max_elements = max_elements;
    pthread_mutex_unlock(&ix->meta_lock);
    return st;
}

hnswc_status hnswc_get_graph_stats(const hnswc_index *ix, hnswc_graph_stats *out) {
    if (!ix || !out)
        return hnswc_fail(HNSWC_ERR_NULL, "hnswc_get_graph_stats: %s is NULL",
                          ix ? "out" : "index");
    if (index_kind(ix) == HNSWC_KIND_FLAT)
        return no_graph("hnswc_get_graph_stats");
    return graph_stats(ix, out);
}

hnswc_status hnswc_reserve(hnswc_index *ix, uint64_t capacity) {
    if (!ix)
        return hnswc_fail(HNSWC_ERR_NULL, "hnswc_reserve: index is NULL");
    if (capacity > HNSWC_MAX_ELEMENTS)
        return hnswc_fail(HNSWC_ERR_OVERFLOW, "hnswc_reserve: capacity %llu above the maximum %llu",
                          (unsigned long long)capacity, (unsigned long long)HNSWC_MAX_ELEMENTS);
    if (index_kind(ix) == HNSWC_KIND_FLAT)
        return flat_reserve(flat_of(ix), capacity);
    pthread_mutex_lock(&ix->meta_lock);
    hnswc_status st = storage_reserve(ix, capacity);
    if (st == HNSWC_OK)
        st = label_map_reserve(&ix->labels, (size_t)capacity);
    pthread_mutex_unlock(&ix->meta_lock);
    return st;
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
