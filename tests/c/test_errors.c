/*
 * test_errors.c -- every bad input, one by one.
 *
 * The contract (hnswc.h): the library never crashes or aborts on bad input;
 * each failure returns its status code, sets a non-empty per-thread
 * hnswc_errmsg, and a call that fails validation leaves the index exactly as
 * it was. So each case below takes a snapshot of the index (info, a set of
 * search results, some stored vectors), makes the failing call, checks the
 * status and message, and compares a new snapshot with the old one.
 */
#include "testutil.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { DIM = 8, N = 300, NQ = 20, K = 5 };

/* ------------------------------------------------------------------------
 * Fixture: a small L2 index, with one element marked deleted.
 * ------------------------------------------------------------------------ */

typedef struct fixture {
    hnswc_index *ix;
    float *data;    /* N x DIM, rows added under tu_label_of(row) */
    float *queries; /* NQ x DIM */
    char *dir;      /* scratch directory */
    char *file;     /* a valid saved index in dir */
} fixture;

static int setup(void **state)
{
    fixture *f = tu_xcalloc(1, sizeof *f);
    tu_rng r = tu_rng_make(77);
    f->data = tu_random_vectors(&r, N, DIM, 0.f, 1.f);
    f->queries = tu_random_vectors(&r, NQ, DIM, 0.f, 1.f);
    f->ix = tu_create(DIM, HNSWC_METRIC_L2, 0, 0, 0, 0);
    tu_add_rows(f->ix, f->data, N, DIM, 1);
    tu_ok(hnswc_mark_deleted(f->ix, tu_label_of(N - 1)));
    f->dir = tu_mkdtemp();
    f->file = tu_path(f->dir, "ok.hnswc");
    tu_ok(hnswc_save(f->ix, f->file));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    hnswc_free(f->ix);
    free(f->data);
    free(f->queries);
    free(f->file);
    tu_rmdir(f->dir);
    free(f);
    return 0;
}

/* ------------------------------------------------------------------------
 * Snapshots
 * ------------------------------------------------------------------------ */

typedef struct snapshot {
    hnswc_info info;
    uint64_t labels[NQ * K];
    float dists[NQ * K];
    size_t found[NQ];
    float vectors[4][DIM]; /* rows 0, 1, N/2 and N-1 */
    int deleted[4];
} snapshot;

static const size_t SNAP_ROWS[4] = {0, 1, N / 2, N - 1};

static void take(const hnswc_index *ix, const float *queries, snapshot *s)
{
    memset(s, 0, sizeof *s);
    tu_ok(hnswc_get_info(ix, &s->info));
    for (size_t q = 0; q < NQ; q++)
        tu_ok(hnswc_search(ix, queries + q * DIM, K, 50, NULL, NULL, s->labels + q * K,
                           s->dists + q * K, &s->found[q]));
    for (int i = 0; i < 4; i++) {
        tu_ok(hnswc_get_vector(ix, tu_label_of(SNAP_ROWS[i]), s->vectors[i]));
        tu_ok(hnswc_is_deleted(ix, tu_label_of(SNAP_ROWS[i]), &s->deleted[i]));
    }
}

static void assert_unchanged(const snapshot *a, const snapshot *b, const char *what)
{
    const hnswc_info *x = &a->info, *y = &b->info;
    if (x->count != y->count || x->live_count != y->live_count ||
        x->deleted_count != y->deleted_count || x->max_level != y->max_level ||
        x->ef_search != y->ef_search || x->capacity != y->capacity || x->dim != y->dim ||
        x->M != y->M || x->metric != y->metric)
        fail_msg("%s changed the index info (count %llu -> %llu, ef %u -> %u, capacity %llu -> "
                 "%llu)",
                 what, (unsigned long long)x->count, (unsigned long long)y->count, x->ef_search,
                 y->ef_search, (unsigned long long)x->capacity, (unsigned long long)y->capacity);
    if (memcmp(a->found, b->found, sizeof a->found) ||
        memcmp(a->labels, b->labels, sizeof a->labels) ||
        memcmp(a->dists, b->dists, sizeof a->dists))
        fail_msg("%s changed search results", what);
    if (memcmp(a->vectors, b->vectors, sizeof a->vectors) ||
        memcmp(a->deleted, b->deleted, sizeof a->deleted))
        fail_msg("%s changed stored vectors or deleted marks", what);
}

/* The call fails with `expect`, says why, and changes nothing. */
#define FAILS(f, call, expect)                                                          \
    do {                                                                               \
        snapshot before_, after_;                                                      \
        take((f)->ix, (f)->queries, &before_);                                         \
        tu_expect_err(call, expect);                                                   \
        take((f)->ix, (f)->queries, &after_);                                          \
        assert_unchanged(&before_, &after_, #call);                                    \
    } while (0)

/* The call fails with one of two codes (where the contract allows either). */
#define FAILS2(f, call, e1, e2)                                                        \
    do {                                                                               \
        snapshot before_, after_;                                                      \
        take((f)->ix, (f)->queries, &before_);                                         \
        hnswc_status st2_ = (call);                                                    \
        if (st2_ != (e1) && st2_ != (e2))                                              \
            fail_msg("%s returned %d (%s), expected %s or %s", #call, (int)st2_,       \
                     hnswc_status_string(st2_), hnswc_status_string(e1),               \
                     hnswc_status_string(e2));                                         \
        assert_true(hnswc_errmsg(NULL)[0] != '\0');                                    \
        take((f)->ix, (f)->queries, &after_);                                          \
        assert_unchanged(&before_, &after_, #call);                                    \
    } while (0)

/* ------------------------------------------------------------------------
 * hnswc_create
 * ------------------------------------------------------------------------ */

static void create_fails(const hnswc_options *o, hnswc_status expect, const char *what)
{
    hnswc_index *out = (hnswc_index *)(uintptr_t)0x1; /* must be overwritten with NULL */
    hnswc_status st = hnswc_create(o, &out);
    if (st != expect)
        fail_msg("hnswc_create(%s) returned %s, expected %s", what, hnswc_status_string(st),
                 hnswc_status_string(expect));
    if (out != NULL)
        fail_msg("hnswc_create(%s) failed but left *out non-NULL", what);
    assert_true(hnswc_errmsg(NULL)[0] != '\0');
}

static void test_create(void **s)
{
    (void)s;
    hnswc_options o, bad;
    memset(&o, 0, sizeof o);
    o.dim = 4;
    hnswc_index *out = (hnswc_index *)(uintptr_t)0x1;
    tu_expect_err(hnswc_create(NULL, &out), HNSWC_ERR_NULL);
    assert_null(out);
    tu_expect_err(hnswc_create(&o, NULL), HNSWC_ERR_NULL);

    bad = o;
    bad.dim = 0;
    create_fails(&bad, HNSWC_ERR_INVALID, "dim 0");
    bad.dim = 65537;
    create_fails(&bad, HNSWC_ERR_INVALID, "dim 65537");
    bad = o;
    bad.M = 1;
    create_fails(&bad, HNSWC_ERR_INVALID, "M 1");
    bad.M = 2049;
    create_fails(&bad, HNSWC_ERR_INVALID, "M 2049");
    bad.M = UINT32_MAX;
    create_fails(&bad, HNSWC_ERR_INVALID, "M UINT32_MAX");
    bad = o;
    bad.metric = (hnswc_metric)3;
    create_fails(&bad, HNSWC_ERR_INVALID, "metric 3");
    bad.metric = (hnswc_metric)0x7fffffff;
    create_fails(&bad, HNSWC_ERR_INVALID, "metric 0x7fffffff");

    /* A huge capacity hint must fail cleanly or work; never crash. */
    bad = o;
    bad.capacity = UINT64_MAX;
    out = NULL;
    hnswc_status st = hnswc_create(&bad, &out);
    if (st == HNSWC_OK) {
        float v[4] = {1, 2, 3, 4};
        tu_ok(hnswc_add(out, 1, v, 0));
        hnswc_free(out);
    } else {
        assert_true(st == HNSWC_ERR_OVERFLOW || st == HNSWC_ERR_NOMEM ||
                    st == HNSWC_ERR_INVALID);
        assert_null(out);
        assert_true(hnswc_errmsg(NULL)[0] != '\0');
    }
    /* The largest dimension with a large capacity: the product overflows
       nothing on 64 bits but cannot be allocated. */
    bad = o;
    bad.dim = 65536;
    bad.capacity = (uint64_t)1 << 31;
    out = NULL;
    st = hnswc_create(&bad, &out);
    if (st == HNSWC_OK) /* allowed if memory is only reserved lazily */
        hnswc_free(out);
    else
        assert_true(st == HNSWC_ERR_OVERFLOW || st == HNSWC_ERR_NOMEM);

    hnswc_free(NULL); /* a no-op */
}

/* ------------------------------------------------------------------------
 * Adding
 * ------------------------------------------------------------------------ */

static void test_add(void **state)
{
    fixture *f = *state;
    float v[DIM];
    memcpy(v, f->data, sizeof v);
    FAILS(f, hnswc_add(NULL, 5, v, 0), HNSWC_ERR_NULL);
    FAILS(f, hnswc_add(f->ix, 5, NULL, 0), HNSWC_ERR_NULL);
    FAILS(f, hnswc_add(f->ix, 5, v, 2u), HNSWC_ERR_INVALID);
    FAILS(f, hnswc_add(f->ix, 5, v, 0x80000000u), HNSWC_ERR_INVALID);

    /* NaN and infinities anywhere, for a new label, an existing label (an
       update must not half-happen) and a deleted one with slot reuse. */
    const float bad[3] = {NAN, INFINITY, -INFINITY};
    const uint64_t targets[3] = {999999, tu_label_of(0), tu_label_of(N - 1)};
    for (int b = 0; b < 3; b++)
        for (int pos = 0; pos < DIM; pos += 3)
            for (int t = 0; t < 3; t++) {
                float w[DIM];
                memcpy(w, f->data + DIM, sizeof w);
                w[pos] = bad[b];
                FAILS(f, hnswc_add(f->ix, targets[t], w, 0), HNSWC_ERR_NONFINITE);
                FAILS(f, hnswc_add(f->ix, targets[t], w, HNSWC_ADD_REPLACE_DELETED),
                      HNSWC_ERR_NONFINITE);
            }
    float w[DIM];
    tu_expect_err(hnswc_get_vector(f->ix, 999999, w), HNSWC_ERR_NOT_FOUND);
}

static void test_add_batch(void **state)
{
    fixture *f = *state;
    enum { B = 50 };
    tu_rng r = tu_rng_make(9);
    float *vecs = tu_random_vectors(&r, B, DIM, 0.f, 1.f);
    uint64_t labels[B];
    for (size_t i = 0; i < B; i++)
        labels[i] = i % 2 ? 5000000 + i : tu_label_of(i); /* new and existing */
    size_t added = 123;

    FAILS(f, hnswc_add_batch(NULL, vecs, labels, B, 0, 1, &added), HNSWC_ERR_NULL);
    FAILS(f, hnswc_add_batch(f->ix, NULL, labels, B, 0, 1, &added), HNSWC_ERR_NULL);
    FAILS(f, hnswc_add_batch(f->ix, vecs, NULL, B, 0, 1, &added), HNSWC_ERR_NULL);
    FAILS(f, hnswc_add_batch(f->ix, vecs, labels, B, 4u, 1, &added), HNSWC_ERR_INVALID);

    /* One bad number anywhere rejects the whole batch, on any thread count. */
    const size_t where[] = {0, 7 * DIM + 3, B * DIM - 1};
    for (int wi = 0; wi < 3; wi++)
        for (unsigned threads = 1; threads <= 3; threads++) {
            float keep = vecs[where[wi]];
            vecs[where[wi]] = wi == 1 ? NAN : wi == 0 ? INFINITY : -INFINITY;
            added = 123;
            FAILS(f, hnswc_add_batch(f->ix, vecs, labels, B, 0, threads, &added),
                  HNSWC_ERR_NONFINITE);
            assert_int_equal(added, 0);
            vecs[where[wi]] = keep;
        }
    float w[DIM];
    for (size_t i = 1; i < B; i += 2)
        tu_expect_err(hnswc_get_vector(f->ix, labels[i], w), HNSWC_ERR_NOT_FOUND);
    free(vecs);
}

/* ------------------------------------------------------------------------
 * Searching
 * ------------------------------------------------------------------------ */

static void test_search(void **state)
{
    fixture *f = *state;
    const float *q = f->queries;
    uint64_t labels[K * NQ];
    float dists[K * NQ];
    size_t found = 77, nf[NQ];

    FAILS(f, hnswc_search(NULL, q, K, 0, NULL, NULL, labels, dists, &found), HNSWC_ERR_NULL);
    FAILS(f, hnswc_search(f->ix, NULL, K, 0, NULL, NULL, labels, dists, &found), HNSWC_ERR_NULL);
    FAILS(f, hnswc_search(f->ix, q, K, 0, NULL, NULL, NULL, dists, &found), HNSWC_ERR_NULL);
    FAILS(f, hnswc_search(f->ix, q, K, 0, NULL, NULL, labels, dists, NULL), HNSWC_ERR_NULL);
    FAILS(f, hnswc_search(f->ix, q, 0, 0, NULL, NULL, labels, dists, &found), HNSWC_ERR_INVALID);

    FAILS(f, hnswc_search_exact(NULL, q, K, NULL, NULL, labels, dists, &found), HNSWC_ERR_NULL);
    FAILS(f, hnswc_search_exact(f->ix, NULL, K, NULL, NULL, labels, dists, &found),
          HNSWC_ERR_NULL);
    FAILS(f, hnswc_search_exact(f->ix, q, K, NULL, NULL, NULL, dists, &found), HNSWC_ERR_NULL);
    FAILS(f, hnswc_search_exact(f->ix, q, K, NULL, NULL, labels, dists, NULL), HNSWC_ERR_NULL);
    FAILS(f, hnswc_search_exact(f->ix, q, 0, NULL, NULL, labels, dists, &found),
          HNSWC_ERR_INVALID);

    FAILS(f, hnswc_search_batch(NULL, q, NQ, K, 0, NULL, NULL, 1, labels, dists, nf),
          HNSWC_ERR_NULL);
    FAILS(f, hnswc_search_batch(f->ix, NULL, NQ, K, 0, NULL, NULL, 1, labels, dists, nf),
          HNSWC_ERR_NULL);
    FAILS(f, hnswc_search_batch(f->ix, q, NQ, K, 0, NULL, NULL, 1, NULL, dists, nf),
          HNSWC_ERR_NULL);
    FAILS(f, hnswc_search_batch(f->ix, q, NQ, K, 0, NULL, NULL, 1, labels, dists, NULL),
          HNSWC_ERR_NULL);
    FAILS(f, hnswc_search_batch(f->ix, q, NQ, 0, 0, NULL, NULL, 1, labels, dists, nf),
          HNSWC_ERR_INVALID);

    /* Non-finite queries. */
    float *bad = tu_xmalloc(NQ * DIM * sizeof *bad);
    const float values[3] = {NAN, INFINITY, -INFINITY};
    for (int b = 0; b < 3; b++)
        for (int pos = 0; pos < DIM; pos += 7) {
            memcpy(bad, q, NQ * DIM * sizeof *bad);
            bad[pos] = values[b];
            FAILS(f, hnswc_search(f->ix, bad, K, 0, NULL, NULL, labels, dists, &found),
                  HNSWC_ERR_NONFINITE);
            FAILS(f, hnswc_search_exact(f->ix, bad, K, NULL, NULL, labels, dists, &found),
                  HNSWC_ERR_NONFINITE);
            /* In the second and the last query of a batch: the batch fails
               whole, every output reads "nothing found" whatever ran, and
               the message names the first bad query, whichever thread met
               which first. */
            memcpy(bad, q, NQ * DIM * sizeof *bad);
            bad[1 * DIM + pos] = values[b];
            bad[(NQ - 1) * DIM + pos] = values[b];
            for (unsigned threads = 1; threads <= 4; threads += 3) {
                FAILS(f, hnswc_search_batch(f->ix, bad, NQ, K, 0, NULL, NULL, threads, labels,
                                            dists, nf),
                      HNSWC_ERR_NONFINITE);
                char want[96];
                snprintf(want, sizeof want, "vector 1, component %d is", pos);
                assert_non_null(strstr(hnswc_errmsg(NULL), want));
                for (size_t i = 0; i < NQ; i++) {
                    assert_int_equal(nf[i], 0);
                    for (size_t r = 0; r < K; r++)
                        assert_true(labels[i * K + r] == UINT64_MAX &&
                                    isinf(dists[i * K + r]) && dists[i * K + r] > 0);
                }
            }
        }
    free(bad);

    /* k larger than the index: all live elements, entries past n_found
       untouched. A NULL distances array is allowed. */
    enum { BIG = N + 10 };
    uint64_t *bl = tu_xmalloc(BIG * sizeof *bl);
    float *bd = tu_xmalloc(BIG * sizeof *bd);
    for (size_t i = 0; i < BIG; i++) {
        bl[i] = 4242;
        bd[i] = -1.f;
    }
    tu_ok(hnswc_search(f->ix, q, BIG, 0, NULL, NULL, bl, bd, &found));
    assert_int_equal(found, N - 1); /* one is deleted */
    for (size_t i = found; i < BIG; i++)
        assert_true(bl[i] == 4242 && bd[i] == -1.f);
    tu_ok(hnswc_search(f->ix, q, BIG, 0, NULL, NULL, bl, NULL, &found));
    assert_int_equal(found, N - 1);
    free(bl);
    free(bd);

    /* An absurd ef: fails cleanly or returns the exact answer. */
    size_t rows[K];
    double td[K];
    size_t tf = tu_brute_knn(HNSWC_METRIC_L2, f->data, N, DIM, NULL, NULL, NULL, q, K, rows, td);
    (void)tf;
    hnswc_status st = hnswc_search(f->ix, q, K, SIZE_MAX, NULL, NULL, labels, dists, &found);
    if (st == HNSWC_OK) {
        uint64_t el[K];
        float ed[K];
        size_t ef;
        tu_ok(hnswc_search_exact(f->ix, q, K, NULL, NULL, el, ed, &ef));
        assert_int_equal(found, ef);
        assert_memory_equal(dists, ed, ef * sizeof *ed);
    } else {
        assert_true(st == HNSWC_ERR_INVALID || st == HNSWC_ERR_NOMEM);
    }
}

/* ------------------------------------------------------------------------
 * By label, tombstones, parameters
 * ------------------------------------------------------------------------ */

static void test_by_label(void **state)
{
    fixture *f = *state;
    float v[DIM];
    int d;
    uint64_t labels[N];
    size_t n;
    FAILS(f, hnswc_get_vector(NULL, tu_label_of(0), v), HNSWC_ERR_NULL);
    FAILS(f, hnswc_get_vector(f->ix, tu_label_of(0), NULL), HNSWC_ERR_NULL);
    FAILS(f, hnswc_get_vector(f->ix, 12345, v), HNSWC_ERR_NOT_FOUND);
    FAILS(f, hnswc_get_vector(f->ix, UINT64_MAX, v), HNSWC_ERR_NOT_FOUND);
    FAILS(f, hnswc_is_deleted(NULL, tu_label_of(0), &d), HNSWC_ERR_NULL);
    FAILS(f, hnswc_is_deleted(f->ix, tu_label_of(0), NULL), HNSWC_ERR_NULL);
    FAILS(f, hnswc_is_deleted(f->ix, 12345, &d), HNSWC_ERR_NOT_FOUND);
    FAILS(f, hnswc_get_labels(NULL, labels, N, &n), HNSWC_ERR_NULL);
    FAILS(f, hnswc_get_labels(f->ix, NULL, N, &n), HNSWC_ERR_NULL);
    FAILS(f, hnswc_get_labels(f->ix, labels, N, NULL), HNSWC_ERR_NULL);
    FAILS(f, hnswc_get_labels(f->ix, labels, N - 1, &n), HNSWC_ERR_INVALID);
    assert_int_equal(n, N);

    FAILS(f, hnswc_mark_deleted(NULL, tu_label_of(0)), HNSWC_ERR_NULL);
    FAILS(f, hnswc_unmark_deleted(NULL, tu_label_of(N - 1)), HNSWC_ERR_NULL);
    FAILS(f, hnswc_mark_deleted(f->ix, 12345), HNSWC_ERR_NOT_FOUND);
    FAILS(f, hnswc_unmark_deleted(f->ix, 12345), HNSWC_ERR_NOT_FOUND);
    FAILS(f, hnswc_mark_deleted(f->ix, tu_label_of(N - 1)), HNSWC_ERR_DELETED);
    FAILS(f, hnswc_unmark_deleted(f->ix, tu_label_of(0)), HNSWC_ERR_DELETED);
}

static void test_parameters(void **state)
{
    fixture *f = *state;
    hnswc_info info;
    hnswc_graph_stats g;
    FAILS(f, hnswc_get_info(NULL, &info), HNSWC_ERR_NULL);
    FAILS(f, hnswc_get_info(f->ix, NULL), HNSWC_ERR_NULL);
    FAILS(f, hnswc_get_graph_stats(NULL, &g), HNSWC_ERR_NULL);
    FAILS(f, hnswc_get_graph_stats(f->ix, NULL), HNSWC_ERR_NULL);

    FAILS(f, hnswc_set_ef(NULL, 10), HNSWC_ERR_NULL);
    FAILS(f, hnswc_set_ef(f->ix, 0), HNSWC_ERR_INVALID);
    FAILS(f, hnswc_set_ef(f->ix, ((size_t)1 << 31) + 1), HNSWC_ERR_INVALID);
    FAILS(f, hnswc_set_ef(f->ix, SIZE_MAX), HNSWC_ERR_INVALID);

    FAILS(f, hnswc_reserve(NULL, 10), HNSWC_ERR_NULL);
    /* Sizes that cannot be: overflow (or, at worst, out of memory). */
    FAILS2(f, hnswc_reserve(f->ix, UINT64_MAX), HNSWC_ERR_OVERFLOW, HNSWC_ERR_NOMEM);
    FAILS2(f, hnswc_reserve(f->ix, UINT64_MAX / 2), HNSWC_ERR_OVERFLOW, HNSWC_ERR_NOMEM);
    FAILS2(f, hnswc_reserve(f->ix, (uint64_t)1 << 32), HNSWC_ERR_OVERFLOW, HNSWC_ERR_NOMEM);
    FAILS2(f, hnswc_reserve(f->ix, ((uint64_t)1 << 32) - 1), HNSWC_ERR_OVERFLOW,
           HNSWC_ERR_NOMEM);

    float a[3] = {1, 2, 3}, out;
    tu_expect_err(hnswc_distance(HNSWC_METRIC_L2, NULL, a, 3, &out), HNSWC_ERR_NULL);
    tu_expect_err(hnswc_distance(HNSWC_METRIC_L2, a, NULL, 3, &out), HNSWC_ERR_NULL);
    tu_expect_err(hnswc_distance(HNSWC_METRIC_L2, a, a, 3, NULL), HNSWC_ERR_NULL);
    tu_expect_err(hnswc_distance(HNSWC_METRIC_L2, a, a, 0, &out), HNSWC_ERR_INVALID);
    tu_expect_err(hnswc_distance((hnswc_metric)3, a, a, 3, &out), HNSWC_ERR_INVALID);
}

/* ------------------------------------------------------------------------
 * Persistence arguments (file contents: test_persist.c)
 * ------------------------------------------------------------------------ */

static void test_persistence_args(void **state)
{
    fixture *f = *state;
    hnswc_index *out = (hnswc_index *)(uintptr_t)0x1;
    void *buf = NULL;
    size_t size = 0;
    char *p = tu_path(f->dir, "x.hnswc");
    FAILS(f, hnswc_save(NULL, p), HNSWC_ERR_NULL);
    FAILS(f, hnswc_save(f->ix, NULL), HNSWC_ERR_NULL);
    assert_false(tu_exists(p));
    FAILS2(f, hnswc_save(f->ix, ""), HNSWC_ERR_IO, HNSWC_ERR_INVALID); /* either is fair */
    FAILS(f, hnswc_save(f->ix, f->dir), HNSWC_ERR_IO); /* a directory */

    tu_expect_err(hnswc_load(NULL, &out), HNSWC_ERR_NULL);
    assert_null(out);
    tu_expect_err(hnswc_load(f->file, NULL), HNSWC_ERR_NULL);
    out = (hnswc_index *)(uintptr_t)0x1;
    tu_expect_err(hnswc_load(p, &out), HNSWC_ERR_IO); /* does not exist */
    assert_null(out);
    tu_expect_err(hnswc_load("", &out), HNSWC_ERR_IO);

    FAILS(f, hnswc_serialize(NULL, &buf, &size), HNSWC_ERR_NULL);
    FAILS(f, hnswc_serialize(f->ix, NULL, &size), HNSWC_ERR_NULL);
    FAILS(f, hnswc_serialize(f->ix, &buf, NULL), HNSWC_ERR_NULL);
    hnswc_buffer_free(NULL); /* a no-op */

    tu_ok(hnswc_serialize(f->ix, &buf, &size));
    tu_expect_err(hnswc_deserialize(NULL, size, &out), HNSWC_ERR_NULL);
    tu_expect_err(hnswc_deserialize(buf, size, NULL), HNSWC_ERR_NULL);
    out = (hnswc_index *)(uintptr_t)0x1;
    tu_expect_err(hnswc_deserialize(buf, 0, &out), HNSWC_ERR_FORMAT);
    assert_null(out);
    hnswc_buffer_free(buf);

    tu_expect_err(hnswc_load_hnswlib(NULL, HNSWC_METRIC_L2, &out), HNSWC_ERR_NULL);
    tu_expect_err(hnswc_load_hnswlib(f->file, HNSWC_METRIC_L2, NULL), HNSWC_ERR_NULL);
    tu_expect_err(hnswc_load_hnswlib(f->file, (hnswc_metric)3, &out), HNSWC_ERR_INVALID);
    tu_expect_err(hnswc_load_hnswlib(p, HNSWC_METRIC_L2, &out), HNSWC_ERR_IO);
    /* Our own format is not hnswlib's. */
    out = (hnswc_index *)(uintptr_t)0x1;
    tu_expect_err(hnswc_load_hnswlib(f->file, HNSWC_METRIC_L2, &out), HNSWC_ERR_FORMAT);
    assert_null(out);
    free(p);
}

/* ------------------------------------------------------------------------
 * hnswc_errmsg is per thread
 * ------------------------------------------------------------------------ */

typedef struct thread_result {
    char before[256]; /* the fresh thread's message before any failure */
    char after[256];  /* its message after its own failure             */
} thread_result;

static void *other_thread(void *arg)
{
    thread_result *r = arg;
    snprintf(r->before, sizeof r->before, "%s", hnswc_errmsg(NULL));
    hnswc_options o;
    memset(&o, 0, sizeof o); /* dim 0 */
    hnswc_index *ix;
    (void)hnswc_create(&o, &ix);
    snprintf(r->after, sizeof r->after, "%s", hnswc_errmsg(NULL));
    return NULL;
}

static void test_errmsg_per_thread(void **state)
{
    fixture *f = *state;
    float v[DIM];
    tu_expect_err(hnswc_get_vector(f->ix, 31337, v), HNSWC_ERR_NOT_FOUND);
    char mine[256];
    snprintf(mine, sizeof mine, "%s", hnswc_errmsg(NULL));
    assert_string_equal(hnswc_errmsg(f->ix), mine); /* the index argument is optional */

    thread_result r;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, other_thread, &r), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_string_equal(r.before, "");      /* a new thread has no failure */
    assert_true(r.after[0] != '\0');        /* it got its own message...   */
    assert_string_not_equal(r.after, mine); /* ...which is not ours        */
    assert_string_equal(hnswc_errmsg(NULL), mine); /* and ours is intact */

    /* A success does not clear the message. */
    tu_ok(hnswc_get_vector(f->ix, tu_label_of(0), v));
    assert_string_equal(hnswc_errmsg(NULL), mine);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create),
        cmocka_unit_test_setup_teardown(test_add, setup, teardown),
        cmocka_unit_test_setup_teardown(test_add_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_search, setup, teardown),
        cmocka_unit_test_setup_teardown(test_by_label, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parameters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_persistence_args, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errmsg_per_thread, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
