/*
 * flat.c -- the exact (flat) index: rows of vectors, a label map, and a
 * search that scans every live row (flat.h has the record, the locking and
 * each function's contract).
 *
 * Rows are kept dense (0 .. count-1): hnswc_remove moves the last row into
 * the hole, as hnswlib's BruteforceSearch does, so a scan never walks over
 * removed rows and the label map stays the only index. Rows marked deleted
 * stay in place, skipped by the scan, until unmarked, updated, removed or
 * (with HNSWC_ADD_REPLACE_DELETED) taken over by a new label.
 *
 * The search is the same code for one query and for a batch: queries are
 * taken in groups, and the rows in tiles of about TILE_BYTES, so that one
 * tile, read from memory once, serves every query of the group from the
 * cache. One query at a time (as graph_search_exact does) reads every row
 * from memory for every query, which on Fashion-MNIST (188 MB of rows) is
 * memory-bound: measured on one core (CPU time, AVX-512), 46 queries/s one
 * at a time, 200 in groups of 16 and 225-245 in groups of 64 (tiles of 128
 * or 512 KiB made no difference), against 42 for hnswc_distance pair by
 * pair. Groups run on threads.c's parallel_for.
 */
#include "flat.h"

#include "distance.h"
#include "error.h"
#include "heap.h"
#include "index.h" /* HNSWC_MAX_ELEMENTS */
#include "threads.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define ROW_ALIGN 64u
#define GROUP_QUERIES 64u       /* queries scanned together, at most          */
#define TILE_BYTES (128u << 10) /* rows scanned by a group before moving on:
                                   well inside a core's L2 cache              */

static size_t row_bytes(const flat_index *fx) { return (size_t)fx->dim * sizeof(float); }

static float *row_at(const flat_index *fx, uint64_t row) {
    return fx->vectors + (size_t)row * fx->dim;
}

/* ========================================================================
 * Lifetime and room
 * ======================================================================== */

/*
 * Makes the row arrays hold exactly `cap` rows (>= count), copying the rows
 * in use. New arrays rather than realloc: realloc does not keep the 64-byte
 * alignment the kernels' loads like. Nothing changes on failure.
 */
static hnswc_status resize_rows(flat_index *fx, uint64_t cap) {
    size_t row = row_bytes(fx);
    if (cap > SIZE_MAX / row || cap > SIZE_MAX / sizeof(uint64_t) ||
        cap * row > SIZE_MAX - ROW_ALIGN)
        return hnswc_fail(HNSWC_ERR_NOMEM, "out of memory: %llu rows of %zu bytes",
                          (unsigned long long)cap, row);
    size_t vbytes = ((size_t)cap * row + ROW_ALIGN - 1) / ROW_ALIGN * ROW_ALIGN;
    float *v = aligned_alloc(ROW_ALIGN, vbytes ? vbytes : ROW_ALIGN);
    uint64_t *l = malloc(cap ? (size_t)cap * sizeof *l : 1);
    uint8_t *d = malloc(cap ? (size_t)cap : 1);
    if (!v || !l || !d) {
        free(v);
        free(l);
        free(d);
        return hnswc_fail(HNSWC_ERR_NOMEM, "out of memory for %llu rows of %zu bytes",
                          (unsigned long long)cap, row);
    }
    if (fx->count > 0) {
        memcpy(v, fx->vectors, (size_t)fx->count * row);
        memcpy(l, fx->labels, (size_t)fx->count * sizeof *l);
        memcpy(d, fx->deleted, (size_t)fx->count);
    }
    free(fx->vectors);
    free(fx->labels);
    free(fx->deleted);
    fx->vectors = v;
    fx->labels = l;
    fx->deleted = d;
    fx->capacity = cap;
    return HNSWC_OK;
}

/* Room for `need` rows: doubling (amortised adds), or exactly `need` if
 * the doubled size cannot be had. Write side held. */
static hnswc_status grow_rows(flat_index *fx, uint64_t need) {
    if (need <= fx->capacity)
        return HNSWC_OK;
    uint64_t cap = fx->capacity < 16 ? 16 : 2 * fx->capacity;
    if (cap > HNSWC_MAX_ELEMENTS)
        cap = HNSWC_MAX_ELEMENTS;
    if (cap > need && resize_rows(fx, cap) == HNSWC_OK)
        return HNSWC_OK;
    return resize_rows(fx, need);
}

hnswc_status flat_create(const hnswc_options *o, flat_index **out) {
    flat_index *fx = calloc(1, sizeof *fx);
    if (!fx)
        return hnswc_fail(HNSWC_ERR_NOMEM, "out of memory allocating an index");
    fx->kind = HNSWC_KIND_FLAT;
    fx->dim = o->dim;
    fx->metric = o->metric;
    fx->kernels = hnswc_kernels_get();
    parallel_rwlock_init(&fx->lock);
    hnswc_status st = resize_rows(fx, o->capacity);
    if (st != HNSWC_OK) {
        flat_destroy(fx);
        return st;
    }
    *out = fx;
    return HNSWC_OK;
}

void flat_destroy(flat_index *fx) {
    if (!fx)
        return;
    free(fx->vectors);
    free(fx->labels);
    free(fx->deleted);
    label_map_free(&fx->map);
    pthread_rwlock_destroy(&fx->lock);
    free(fx);
}

hnswc_status flat_reserve(flat_index *fx, uint64_t capacity) {
    pthread_rwlock_wrlock(&fx->lock);
    hnswc_status st = capacity > fx->capacity ? resize_rows(fx, capacity) : HNSWC_OK;
    pthread_rwlock_unlock(&fx->lock);
    return st;
}

/* ========================================================================
 * Adding, removing, marking
 * ======================================================================== */

static void write_row(flat_index *fx, uint64_t row, const float *v) {
    float *dst = row_at(fx, row);
    memcpy(dst, v, row_bytes(fx));
    if (fx->metric == HNSWC_METRIC_COSINE)
        hnswc_normalize(dst, fx->dim);
}

/* Rows marked deleted whose label is not in `batch`: those a replacing add
 * of the batch may take over (a deleted row whose label the batch updates
 * is revived instead). */
static uint64_t reusable_rows(const flat_index *fx, const label_map *batch) {
    uint64_t n = 0;
    uint32_t unused;
    for (uint64_t r = 0; r < fx->count && n < fx->deleted_count; r++)
        n += fx->deleted[r] && !label_map_find(batch, fx->labels[r], &unused);
    return n;
}

/*
 * All or nothing: the batch's distinct new labels are counted first, room
 * for them is made (rows and label map), and only then is anything
 * written, which cannot fail any more.
 */
hnswc_status flat_add(flat_index *fx, const float *vectors, const uint64_t *labels, size_t n,
                      unsigned flags) {
    label_map batch = {0};
    hnswc_status st = label_map_put_distinct(&batch, labels, n);
    if (st != HNSWC_OK)
        return st;

    pthread_rwlock_wrlock(&fx->lock);
    uint64_t fresh = label_map_count_missing(&batch, &fx->map);
    uint64_t reuse = 0;
    if ((flags & HNSWC_ADD_REPLACE_DELETED) && fx->deleted_count > 0 && fresh > 0) {
        reuse = reusable_rows(fx, &batch);
        reuse = reuse < fresh ? reuse : fresh;
    }
    uint64_t need = fx->count + fresh - reuse;
    if (need > HNSWC_MAX_ELEMENTS)
        st = hnswc_fail(HNSWC_ERR_OVERFLOW, "hnswc_add: more than %llu elements",
                        (unsigned long long)HNSWC_MAX_ELEMENTS);
    if (st == HNSWC_OK)
        st = grow_rows(fx, need);
    if (st == HNSWC_OK)
        st = label_map_reserve(&fx->map, (size_t)(fx->count + fresh));

    uint64_t cursor = 0; /* where the search for a reusable row goes on */
    for (size_t i = 0; st == HNSWC_OK && i < n; i++) {
        uint32_t row;
        uint64_t label = labels[i];
        if (label_map_find(&fx->map, label, &row)) {
            /* an update; a deleted element comes back */
            fx->deleted_count -= fx->deleted[row];
        } else if (reuse > 0) {
            uint32_t unused;
            while (!fx->deleted[cursor] || label_map_find(&batch, fx->labels[cursor], &unused))
                cursor++;
            row = (uint32_t)cursor;
            label_map_remove(&fx->map, fx->labels[row]);
            label_map_put(&fx->map, label, row); /* room reserved: cannot fail */
            fx->labels[row] = label;
            fx->deleted_count--;
            reuse--;
        } else {
            row = (uint32_t)fx->count++;
            fx->labels[row] = label;
            label_map_put(&fx->map, label, row); /* room reserved: cannot fail */
        }
        fx->deleted[row] = 0;
        write_row(fx, row, vectors + i * (size_t)fx->dim);
    }
    pthread_rwlock_unlock(&fx->lock);
    label_map_free(&batch);
    return st;
}

static hnswc_status not_found(const char *fn, uint64_t label) {
    return hnswc_fail(HNSWC_ERR_NOT_FOUND, "%s: no element has label %llu", fn,
                      (unsigned long long)label);
}

hnswc_status flat_remove(flat_index *fx, const char *fn, uint64_t label) {
    pthread_rwlock_wrlock(&fx->lock);
    uint32_t row;
    hnswc_status st = HNSWC_OK;
    if (!label_map_find(&fx->map, label, &row)) {
        st = not_found(fn, label);
    } else {
        uint64_t last = fx->count - 1;
        fx->deleted_count -= fx->deleted[row];
        label_map_remove(&fx->map, label);
        if (row != last) {
            memcpy(row_at(fx, row), row_at(fx, last), row_bytes(fx));
            fx->labels[row] = fx->labels[last];
            fx->deleted[row] = fx->deleted[last];
            label_map_update(&fx->map, fx->labels[row], row);
        }
        fx->count = last;
    }
    pthread_rwlock_unlock(&fx->lock);
    return st;
}

hnswc_status flat_set_deleted(flat_index *fx, const char *fn, uint64_t label, bool del) {
    pthread_rwlock_wrlock(&fx->lock);
    uint32_t row;
    hnswc_status st = HNSWC_OK;
    if (!label_map_find(&fx->map, label, &row))
        st = not_found(fn, label);
    else if ((bool)fx->deleted[row] == del)
        st = hnswc_fail(HNSWC_ERR_DELETED, "%s: label %llu is %s", fn, (unsigned long long)label,
                        del ? "already deleted" : "not deleted");
    else {
        fx->deleted[row] = del;
        if (del)
            fx->deleted_count++;
        else
            fx->deleted_count--;
    }
    pthread_rwlock_unlock(&fx->lock);
    return st;
}

/* ========================================================================
 * Removal in batches, compaction (hnswc_remove_batch, hnswc_compact)
 *
 * The graph's removal (remove.c) repairs links and reclaims slots; a flat
 * index has neither, so its rows are simply dropped, under the write side.
 * ======================================================================== */

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Drops row `row` (its label already out of the map): the last row moves
 * into its place, as in flat_remove. Write side held. */
static void drop_row(flat_index *fx, uint64_t row) {
    uint64_t last = fx->count - 1;
    fx->deleted_count -= fx->deleted[row];
    if (row != last) {
        memcpy(row_at(fx, row), row_at(fx, last), row_bytes(fx));
        fx->labels[row] = fx->labels[last];
        fx->deleted[row] = fx->deleted[last];
        label_map_update(&fx->map, fx->labels[row], (uint32_t)row);
    }
    fx->count = last;
}

/* All or nothing: every label present and none twice, checked (on a sorted
 * copy) before a row is touched. */
hnswc_status flat_remove_batch(flat_index *fx, const char *fn, const uint64_t *labels, size_t n) {
    if (n == 0)
        return HNSWC_OK;
    uint64_t *sorted = malloc(n * sizeof *sorted);
    if (!sorted)
        return hnswc_fail(HNSWC_ERR_NOMEM, "%s: out of memory for %zu labels", fn, n);
    memcpy(sorted, labels, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, cmp_u64);
    pthread_rwlock_wrlock(&fx->lock);
    hnswc_status st = HNSWC_OK;
    uint32_t row;
    for (size_t i = 0; i < n && st == HNSWC_OK; i++) {
        if (i > 0 && sorted[i] == sorted[i - 1])
            st = hnswc_fail(HNSWC_ERR_INVALID, "%s: label %llu is given twice; nothing was "
                            "removed", fn, (unsigned long long)sorted[i]);
        else if (!label_map_find(&fx->map, sorted[i], &row))
            st = hnswc_fail(HNSWC_ERR_NOT_FOUND, "%s: no element has label %llu (never added, "
                            "or removed already); nothing was removed", fn,
                            (unsigned long long)sorted[i]);
    }
    for (size_t i = 0; i < n && st == HNSWC_OK; i++) {
        label_map_find(&fx->map, labels[i], &row);
        label_map_remove(&fx->map, labels[i]);
        drop_row(fx, row);
    }
    pthread_rwlock_unlock(&fx->lock);
    free(sorted);
    return st;
}

/* Every row marked deleted goes; the others keep their order. */
hnswc_status flat_compact(flat_index *fx, size_t *n_removed) {
    pthread_rwlock_wrlock(&fx->lock);
    uint64_t w = 0;
    for (uint64_t r = 0; r < fx->count; r++) {
        if (fx->deleted[r]) {
            label_map_remove(&fx->map, fx->labels[r]);
            continue;
        }
        if (w != r) {
            memcpy(row_at(fx, w), row_at(fx, r), row_bytes(fx));
            fx->labels[w] = fx->labels[r];
            fx->deleted[w] = 0;
            label_map_update(&fx->map, fx->labels[w], (uint32_t)w);
        }
        w++;
    }
    *n_removed = (size_t)(fx->count - w);
    fx->count = w;
    fx->deleted_count = 0;
    pthread_rwlock_unlock(&fx->lock);
    return HNSWC_OK;
}

/* ========================================================================
 * Range search (hnswc_search_range): every live row within radius
 * ======================================================================== */

hnswc_status flat_search_range(const flat_index *fx, const float *query, float radius,
                               hnswc_filter_fn filter, void *user, hnswc_range_result *res) {
    bool cosine = fx->metric == HNSWC_METRIC_COSINE, l2 = fx->metric == HNSWC_METRIC_L2;
    float *qbuf = cosine ? malloc(row_bytes(fx)) : NULL;
    if (cosine && !qbuf)
        return hnswc_fail(HNSWC_ERR_NOMEM, "hnswc_search_range: out of memory");
    const float *q = query;
    if (cosine) {
        memcpy(qbuf, query, row_bytes(fx));
        hnswc_normalize(qbuf, fx->dim);
        q = qbuf;
    }
    hnswc_dist_fn kernel = l2 ? fx->kernels->l2 : fx->kernels->dot;
    heap_item *hits = NULL;
    size_t n = 0, cap = 0;
    hnswc_status st = HNSWC_OK;
    pthread_rwlock_rdlock((pthread_rwlock_t *)&fx->lock);
    for (uint64_t r = 0; r < fx->count && st == HNSWC_OK; r++) {
        if (fx->deleted[r])
            continue;
        float d = kernel(q, row_at(fx, r), fx->dim);
        if (!l2)
            d = 1.0f - d;
        if (!(d <= radius) || (filter && !filter(fx->labels[r], user)))
            continue;
        if (n == cap) {
            size_t nc = cap ? 2 * cap : 64;
            heap_item *p = realloc(hits, nc * sizeof *p);
            if (!p) {
                st = hnswc_fail(HNSWC_ERR_NOMEM, "hnswc_search_range: out of memory growing "
                                "the results");
                break;
            }
            hits = p;
            cap = nc;
        }
        hits[n++] = (heap_item){d, (uint32_t)r};
    }
    if (st == HNSWC_OK && n > res->capacity) {
        uint64_t *l = realloc(res->labels, n * sizeof *l);
        if (l)
            res->labels = l;
        float *dd = l ? realloc(res->distances, n * sizeof *dd) : NULL;
        if (dd)
            res->distances = dd;
        if (l && dd)
            res->capacity = n;
        else
            st = hnswc_fail(HNSWC_ERR_NOMEM, "hnswc_search_range: out of memory for %zu results",
                            n);
    }
    if (st == HNSWC_OK) {
        /* closest first; equal distances by row, as flat_search orders them */
        for (size_t i = 1; i < n; i++) {
            heap_item x = hits[i];
            size_t t = i;
            for (; t > 0 && (hits[t - 1].dist > x.dist ||
                             (hits[t - 1].dist == x.dist && hits[t - 1].id > x.id)); t--)
                hits[t] = hits[t - 1];
            hits[t] = x;
        }
        for (size_t i = 0; i < n; i++) {
            res->labels[i] = fx->labels[hits[i].id];
            res->distances[i] = hits[i].dist;
        }
        res->count = n;
    }
    pthread_rwlock_unlock((pthread_rwlock_t *)&fx->lock);
    free(hits);
    free(qbuf);
    return st;
}

/* ========================================================================
 * Search
 * ======================================================================== */

typedef struct scan_job {
    const flat_index *fx;
    const float *queries;
    size_t n, k, group;
    hnswc_filter_fn filter;
    void *user;
    uint64_t *labels;
    float *distances;
    size_t *n_found;
} scan_job;

/*
 * parallel_for item: queries [g*group, +group). Each query keeps a max-heap
 * of its k best (k + 1 items: push, then pop the worst). A row is compared
 * with the heap's worst before the filter is asked, so the filter is called
 * only for rows that would enter; a tie with the worst does not enter, so
 * of equal distances the earlier row wins, and the results are put in
 * (distance, row) order: the answer is the same whatever the threads.
 */
static hnswc_status scan_group(void *ctx, size_t g, unsigned slot) {
    (void)slot; /* a group's scratch is its own (malloc below) */
    const scan_job *j = ctx;
    const flat_index *fx = j->fx;
    size_t dim = fx->dim, k = j->k;
    size_t q0 = g * j->group, nq = j->n - q0 < j->group ? j->n - q0 : j->group;
    bool cosine = fx->metric == HNSWC_METRIC_COSINE, l2 = fx->metric == HNSWC_METRIC_L2;

    heap_item *heaps = malloc(nq * (k + 1) * sizeof *heaps);
    float *qbuf = cosine ? malloc(nq * dim * sizeof *qbuf) : NULL;
    if (!heaps || (cosine && !qbuf)) {
        free(heaps);
        free(qbuf);
        return hnswc_fail(HNSWC_ERR_NOMEM, "hnswc_search: out of memory for k = %zu", k);
    }
    const float *q[GROUP_QUERIES];
    size_t len[GROUP_QUERIES] = {0};
    for (size_t i = 0; i < nq; i++) {
        q[i] = j->queries + (q0 + i) * dim;
        if (cosine) {
            memcpy(qbuf + i * dim, q[i], dim * sizeof *qbuf);
            hnswc_normalize(qbuf + i * dim, fx->dim);
            q[i] = qbuf + i * dim;
        }
    }

    hnswc_dist_fn kernel = l2 ? fx->kernels->l2 : fx->kernels->dot;
    uint64_t count = fx->count;
    uint64_t tile = TILE_BYTES / row_bytes(fx);
    tile = tile < 1 ? 1 : tile;
    for (uint64_t r0 = 0; r0 < count; r0 += tile) {
        uint64_t r1 = count - r0 < tile ? count : r0 + tile;
        for (size_t i = 0; i < nq; i++) {
            heap_item *h = heaps + i * (k + 1);
            size_t *m = &len[i];
            for (uint64_t r = r0; r < r1; r++) {
                if (fx->deleted[r])
                    continue;
                float d = kernel(q[i], row_at(fx, r), dim);
                if (!l2)
                    d = 1.0f - d;
                if (*m == k && d >= h[0].dist)
                    continue;
                if (j->filter && !j->filter(fx->labels[r], j->user))
                    continue;
                max_heap_push(h, m, (heap_item){d, (uint32_t)r});
                if (*m > k)
                    max_heap_pop(h, m);
            }
        }
    }

    for (size_t i = 0; i < nq; i++) {
        heap_item *h = heaps + i * (k + 1);
        size_t found = len[i];
        max_heap_drain_sorted(h, &len[i], h);
        /* ascending distances already; equal ones by row (insertion sort:
         * it only moves items within runs of ties) */
        for (size_t r = 1; r < found; r++) {
            heap_item x = h[r];
            size_t t = r;
            for (; t > 0 && h[t - 1].dist == x.dist && h[t - 1].id > x.id; t--)
                h[t] = h[t - 1];
            h[t] = x;
        }
        uint64_t *labels = j->labels + (q0 + i) * k;
        float *dists = j->distances ? j->distances + (q0 + i) * k : NULL;
        for (size_t r = 0; r < found; r++) {
            labels[r] = fx->labels[h[r].id];
            if (dists)
                dists[r] = h[r].dist;
        }
        j->n_found[q0 + i] = found;
    }
    free(heaps);
    free(qbuf);
    return HNSWC_OK;
}

hnswc_status flat_search(const flat_index *fx, const float *queries, size_t n, size_t k,
                         hnswc_filter_fn filter, void *user, unsigned num_threads,
                         uint64_t *labels, float *distances, size_t *n_found) {
    if (n == 0)
        return HNSWC_OK;
    /* k + 1 heap items for each of up to GROUP_QUERIES queries */
    if (k >= SIZE_MAX / sizeof(heap_item) / GROUP_QUERIES)
        return hnswc_fail(HNSWC_ERR_NOMEM, "hnswc_search: out of memory for k = %zu", k);
    /* groups as large as GROUP_QUERIES, but at least one per thread */
    unsigned threads = num_threads ? num_threads : parallel_cpu_count();
    size_t group = (n + threads - 1) / threads;
    group = group > GROUP_QUERIES ? GROUP_QUERIES : group;
    scan_job j = {fx, queries, n, k, group, filter, user, labels, distances, n_found};
    pthread_rwlock_rdlock((pthread_rwlock_t *)&fx->lock);
    hnswc_status st = parallel_for((n + group - 1) / group, num_threads, scan_group, &j);
    pthread_rwlock_unlock((pthread_rwlock_t *)&fx->lock);
    return st;
}

/* ========================================================================
 * Elements by label, counts
 * ======================================================================== */

hnswc_status flat_lookup(const flat_index *fx, const char *fn, uint64_t label, float *vector,
                         int *is_deleted) {
    pthread_rwlock_rdlock((pthread_rwlock_t *)&fx->lock);
    uint32_t row;
    hnswc_status st = HNSWC_OK;
    if (!label_map_find(&fx->map, label, &row))
        st = not_found(fn, label);
    else if (vector)
        memcpy(vector, row_at(fx, row), row_bytes(fx));
    else
        *is_deleted = fx->deleted[row];
    pthread_rwlock_unlock((pthread_rwlock_t *)&fx->lock);
    return st;
}

hnswc_status flat_get_labels(const flat_index *fx, uint64_t *out, size_t capacity,
                             size_t *n_written) {
    pthread_rwlock_rdlock((pthread_rwlock_t *)&fx->lock);
    size_t need = (size_t)fx->count;
    hnswc_status st = HNSWC_OK;
    if (need > capacity)
        st = hnswc_fail(HNSWC_ERR_INVALID, "hnswc_get_labels: room for %zu labels, %zu needed",
                        capacity, need);
    else if (need > 0)
        memcpy(out, fx->labels, need * sizeof *out);
    pthread_rwlock_unlock((pthread_rwlock_t *)&fx->lock);
    *n_written = need;
    return st;
}

void flat_get_info(const flat_index *fx, hnswc_info *out) {
    memset(out, 0, sizeof *out);
    out->kind = HNSWC_KIND_FLAT;
    out->dim = fx->dim;
    out->metric = fx->metric;
    out->max_level = -1;
    out->simd = fx->kernels->name;
    pthread_rwlock_rdlock((pthread_rwlock_t *)&fx->lock);
    out->count = fx->count;
    out->deleted_count = fx->deleted_count;
    out->live_count = fx->count - fx->deleted_count;
    out->capacity = fx->capacity;
    out->memory_bytes = sizeof *fx + fx->capacity * (row_bytes(fx) + sizeof(uint64_t) + 1) +
                        label_map_bytes(&fx->map);
    pthread_rwlock_unlock((pthread_rwlock_t *)&fx->lock);
}

hnswc_status flat_count_new(const flat_index *fx, const uint64_t *labels, size_t n,
                            size_t *n_new) {
    label_map batch = {0};
    hnswc_status st = label_map_put_distinct(&batch, labels, n);
    if (st == HNSWC_OK) {
        pthread_rwlock_rdlock((pthread_rwlock_t *)&fx->lock);
        *n_new = label_map_count_missing(&batch, &fx->map);
        pthread_rwlock_unlock((pthread_rwlock_t *)&fx->lock);
    }
    label_map_free(&batch);
    return st;
}

/* ========================================================================
 * Loader helpers
 * ======================================================================== */

static hnswc_status load_err(const char *fn, const char *what, const char *msg) {
    return hnswc_fail(HNSWC_ERR_FORMAT, "%s: %s: %s", fn, what, msg);
}

hnswc_status flat_finish_load(flat_index *fx, uint64_t count, const char *fn, const char *what) {
    if (count > fx->capacity)
        return load_err(fn, what, "more rows than room was made for");
    hnswc_status st = label_map_reserve(&fx->map, (size_t)count);
    uint64_t deleted = 0;
    for (uint64_t r = 0; st == HNSWC_OK && r < count; r++) {
        uint32_t unused;
        if (fx->deleted[r] > 1)
            return load_err(fn, what, "an element has invalid flags");
        const float *v = row_at(fx, r);
        for (uint32_t d = 0; d < fx->dim; d++)
            if (!isfinite(v[d]))
                return load_err(fn, what, "a vector holds NaN or infinity");
        if (label_map_find(&fx->map, fx->labels[r], &unused))
            return load_err(fn, what, "two elements have the same label");
        st = label_map_put(&fx->map, fx->labels[r], (uint32_t)r);
        deleted += fx->deleted[r];
    }
    if (st == HNSWC_OK) {
        fx->count = count;
        fx->deleted_count = deleted;
    }
    return st;
}
