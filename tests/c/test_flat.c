/*
 * test_flat.c -- the exact (flat) index, HNSWC_KIND_FLAT.
 *
 *  - Results are exact: the labels of a naive scan (one hnswc_distance per
 *    pair, sorted) and its distances bit for bit, for every metric, single
 *    and batch searches, one thread or many, groups of queries of every
 *    size the scan uses, k above the element count; and close to the
 *    double-precision brute force of testutil.
 *  - Filters, deletion marks, updates, removal (rows move), slot takeover
 *    with HNSWC_ADD_REPLACE_DELETED, hnswc_count_new_labels.
 *  - Files: save/load and serialize give the same bytes and the same
 *    index; every truncation and every single-byte change is rejected;
 *    impossible contents with valid checksums are rejected; hnswc 0.1's
 *    BFIndex files and hnswlib's BruteforceSearch files load as flat.
 *  - Every bad input fails with its status and a message and changes
 *    nothing.
 *  - Searches run while other threads add, update, remove and mark.
 */
#include "testutil.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { DIM = 12, N = 300, NQ = 40, K = 7 };

static const hnswc_metric METRICS[3] = {HNSWC_METRIC_L2, HNSWC_METRIC_IP, HNSWC_METRIC_COSINE};

/* ------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------ */

static hnswc_index *flat_create(uint32_t dim, hnswc_metric m, uint64_t capacity)
{
    hnswc_options o = {0};
    o.kind = HNSWC_KIND_FLAT;
    o.dim = dim;
    o.metric = m;
    o.capacity = capacity;
    hnswc_index *ix = NULL;
    tu_ok(hnswc_create(&o, &ix));
    return ix;
}

/* A flat index of rows [0, n) under tu_label_of(row). */
static hnswc_index *flat_with_rows(hnswc_metric m, const float *data, size_t n, uint32_t dim)
{
    hnswc_index *ix = flat_create(dim, m, 0);
    tu_add_rows(ix, data, n, dim, 0);
    return ix;
}

typedef struct naive_hit {
    float dist;
    size_t row;
} naive_hit;

static int hit_cmp(const void *a, const void *b)
{
    const naive_hit *x = a, *y = b;
    if (x->dist != y->dist)
        return x->dist < y->dist ? -1 : 1;
    return (x->row > y->row) - (x->row < y->row); /* of equal distances, the earlier row */
}

typedef int (*row_ok_fn)(size_t row, void *user);

/*
 * The naive scan: hnswc_distance of the query with every row that is live
 * (live == NULL or live[row]) and allowed, sorted. Returns the number of
 * such rows; h gets them all (room for n).
 */
static size_t naive_scan(hnswc_metric m, const float *data, size_t n, size_t dim,
                         const unsigned char *live, row_ok_fn ok, void *user, const float *q,
                         naive_hit *h)
{
    size_t c = 0;
    for (size_t r = 0; r < n; r++) {
        if ((live && !live[r]) || (ok && !ok(r, user)))
            continue;
        tu_ok(hnswc_distance(m, q, data + r * dim, dim, &h[c].dist));
        h[c++].row = r;
    }
    qsort(h, c, sizeof *h, hit_cmp);
    return c;
}

/*
 * Asserts one result (labels tu_label_of(row) of rows of data) is the
 * naive scan's: as many results, the same distances bit for bit, and each
 * label a distinct live, allowed row at exactly the distance reported.
 * (Elements at equal distance may come in either order; the data of some
 * tests holds duplicates.)
 */
static void expect_naive(hnswc_metric m, const float *data, size_t n, size_t dim,
                         const unsigned char *live, row_ok_fn ok, void *user, const float *q,
                         size_t k, const uint64_t *labels, const float *dists, size_t found)
{
    naive_hit *h = tu_xmalloc((n ? n : 1) * sizeof *h);
    float *by_row = tu_xmalloc((n ? n : 1) * sizeof *by_row);
    unsigned char *used = tu_xcalloc(n ? n : 1, 1);
    size_t c = naive_scan(m, data, n, dim, live, ok, user, q, h);
    for (size_t i = 0; i < n; i++)
        by_row[i] = NAN;
    for (size_t i = 0; i < c; i++)
        by_row[h[i].row] = h[i].dist;
    assert_int_equal(found, c < k ? c : k);
    for (size_t i = 0; i < found; i++) {
        size_t row = tu_row_of(labels[i], n);
        if (memcmp(&dists[i], &h[i].dist, sizeof(float)) != 0 || row == SIZE_MAX ||
            used[row] || isnan(by_row[row]) || memcmp(&by_row[row], &dists[i], sizeof(float)))
            fail_msg("result %zu: label %llu at %.9g; the naive scan has %llu at %.9g there", i,
                     (unsigned long long)labels[i], dists[i],
                     (unsigned long long)tu_label_of(h[i].row), h[i].dist);
        used[row] = 1;
    }
    free(h);
    free(by_row);
    free(used);
}

static int even_row(size_t row, void *user)
{
    (void)user;
    return row % 2 == 0;
}

static int even_label_filter(uint64_t label, void *user)
{
    size_t row = tu_row_of(label, *(size_t *)user);
    return row != SIZE_MAX && row % 2 == 0;
}

static int reject_all(uint64_t label, void *user)
{
    (void)label;
    (void)user;
    return 0;
}

/* ------------------------------------------------------------------------
 * Exact results
 * ------------------------------------------------------------------------ */

static void test_exact_vs_naive(void **s)
{
    (void)s;
    tu_rng r = tu_rng_make(11);
    float *data = tu_random_vectors(&r, N, DIM, -1.f, 1.f);
    float *queries = tu_random_vectors(&r, NQ, DIM, -1.f, 1.f);
    for (int mi = 0; mi < 3; mi++) {
        hnswc_metric m = METRICS[mi];
        hnswc_index *ix = flat_with_rows(m, data, N, DIM);
        hnswc_info info;
        tu_ok(hnswc_get_info(ix, &info));
        assert_int_equal(info.kind, HNSWC_KIND_FLAT);
        assert_int_equal(info.count, N);
        assert_int_equal(info.max_level, -1);
        uint64_t labels[K];
        float dists[K];
        for (size_t q = 0; q < NQ; q++) {
            size_t found = 99;
            tu_ok(hnswc_search(ix, queries + q * DIM, K, 0, NULL, NULL, labels, dists, &found));
            expect_naive(m, data, N, DIM, NULL, NULL, NULL, queries + q * DIM, K, labels, dists,
                         found);
            double td[K];
            size_t trow[K];
            size_t tf = tu_brute_knn(m, data, N, DIM, NULL, NULL, NULL, queries + q * DIM, K,
                                     trow, td);
            assert_int_equal(
                tu_check_result(m, data, N, DIM, NULL, NULL, NULL, queries + q * DIM, K, labels,
                                dists, found, tf, td),
                K);
            /* hnswc_search_exact is the same search */
            uint64_t l2[K];
            float d2[K];
            tu_ok(hnswc_search_exact(ix, queries + q * DIM, K, NULL, NULL, l2, d2, &found));
            assert_memory_equal(l2, labels, sizeof labels);
            assert_memory_equal(d2, dists, sizeof dists);
        }
        hnswc_free(ix);
    }
    free(data);
    free(queries);
}

/* Batches of every size the grouping sees (1, a partial group, several
 * groups), on 1 and 4 threads: the same as single searches, bit for bit. */
static void test_batch_equals_single(void **s)
{
    (void)s;
    tu_rng r = tu_rng_make(12);
    /* dim 700: a tile of the scan holds few rows, so tiles are many */
    enum { D = 700, NB = 260, QB = 70 };
    float *data = tu_random_vectors(&r, NB, D, -1.f, 1.f);
    float *queries = tu_random_vectors(&r, QB, D, -1.f, 1.f);
    for (int mi = 0; mi < 3; mi++) {
        hnswc_index *ix = flat_with_rows(METRICS[mi], data, NB, D);
        uint64_t *single_l = tu_xmalloc(QB * K * sizeof *single_l);
        float *single_d = tu_xmalloc(QB * K * sizeof *single_d);
        for (size_t q = 0; q < QB; q++) {
            size_t found;
            tu_ok(hnswc_search(ix, queries + q * D, K, 0, NULL, NULL, single_l + q * K,
                               single_d + q * K, &found));
            assert_int_equal(found, K);
            expect_naive(METRICS[mi], data, NB, D, NULL, NULL, NULL, queries + q * D, K,
                         single_l + q * K, single_d + q * K, found);
        }
        size_t sizes[] = {1, 2, 17, 63, 64, 65, QB};
        unsigned threads[] = {1, 4, 0};
        for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
            for (size_t ti = 0; ti < 3; ti++) {
                size_t n = sizes[si];
                uint64_t *l = tu_xmalloc(n * K * sizeof *l);
                float *d = tu_xmalloc(n * K * sizeof *d);
                size_t *found = tu_xmalloc(n * sizeof *found);
                tu_ok(hnswc_search_batch(ix, queries, n, K, 0, NULL, NULL, threads[ti], l, d,
                                         found));
                for (size_t q = 0; q < n; q++)
                    assert_int_equal(found[q], K);
                assert_memory_equal(l, single_l, n * K * sizeof *l);
                assert_memory_equal(d, single_d, n * K * sizeof *d);
                /* distances may be NULL */
                tu_ok(hnswc_search_batch(ix, queries, n, K, 0, NULL, NULL, threads[ti], l, NULL,
                                         found));
                assert_memory_equal(l, single_l, n * K * sizeof *l);
                free(l);
                free(d);
                free(found);
            }
        }
        free(single_l);
        free(single_d);
        hnswc_free(ix);
    }
    free(data);
    free(queries);
}

/* k above the number of live elements: all of them, the rest of a batch
 * row filled with UINT64_MAX and +inf; a single search leaves it alone. */
static void test_k_above_count(void **s)
{
    (void)s;
    tu_rng r = tu_rng_make(13);
    float *data = tu_random_vectors(&r, 5, DIM, -1.f, 1.f);
    hnswc_index *ix = flat_with_rows(HNSWC_METRIC_L2, data, 5, DIM);
    tu_ok(hnswc_mark_deleted(ix, tu_label_of(2)));
    enum { KK = 300 };
    uint64_t *l = tu_xmalloc(2 * KK * sizeof *l);
    float *d = tu_xmalloc(2 * KK * sizeof *d);
    size_t found[2];
    tu_ok(hnswc_search_batch(ix, data, 2, KK, 0, NULL, NULL, 2, l, d, found));
    for (int q = 0; q < 2; q++) {
        assert_int_equal(found[q], 4);
        unsigned char live[5] = {1, 1, 0, 1, 1};
        expect_naive(HNSWC_METRIC_L2, data, 5, DIM, live, NULL, NULL, data + q * DIM, KK,
                     l + q * KK, d + q * KK, found[q]);
        for (size_t i = 4; i < KK; i++) {
            assert_true(l[q * KK + i] == UINT64_MAX);
            assert_true(isinf(d[q * KK + i]));
        }
    }
    memset(l, 0xab, KK * sizeof *l);
    tu_ok(hnswc_search(ix, data, KK, 0, NULL, NULL, l, d, &found[0]));
    assert_int_equal(found[0], 4);
    assert_true(l[4] == 0xababababababababull); /* untouched */
    /* an empty index finds nothing */
    hnswc_index *empty = flat_create(DIM, HNSWC_METRIC_IP, 0);
    tu_ok(hnswc_search(empty, data, 3, 0, NULL, NULL, l, d, &found[0]));
    assert_int_equal(found[0], 0);
    hnswc_free(empty);
    hnswc_free(ix);
    free(l);
    free(d);
    free(data);
}

/* Equal distances: the element stored first wins a place and comes first,
 * on any number of threads. */
static void test_ties(void **s)
{
    (void)s;
    tu_rng r = tu_rng_make(25);
    float *data = tu_random_vectors(&r, 40, DIM, -1.f, 1.f);
    size_t twins[4] = {31, 7, 22, 3}; /* rows holding the same vector */
    for (int i = 1; i < 4; i++)
        memcpy(data + twins[i] * DIM, data + twins[0] * DIM, DIM * sizeof(float));
    hnswc_index *ix = flat_with_rows(HNSWC_METRIC_L2, data, 40, DIM);
    float *queries = tu_xmalloc(80 * DIM * sizeof *queries);
    for (int q = 0; q < 80; q++)
        memcpy(queries + q * DIM, data + twins[0] * DIM, DIM * sizeof(float));
    uint64_t l[80 * 3];
    float d[80 * 3];
    size_t found[80];
    for (unsigned threads = 1; threads <= 3; threads++) {
        tu_ok(hnswc_search_batch(ix, queries, 80, 3, 0, NULL, NULL, threads, l, d, found));
        for (int q = 0; q < 80; q++) {
            assert_int_equal(found[q], 3);
            assert_int_equal(l[q * 3 + 0], tu_label_of(3));
            assert_int_equal(l[q * 3 + 1], tu_label_of(7));
            assert_int_equal(l[q * 3 + 2], tu_label_of(22));
            assert_true(d[q * 3] == 0 && d[q * 3 + 2] == 0);
        }
    }
    hnswc_free(ix);
    free(queries);
    free(data);
}

/* ------------------------------------------------------------------------
 * Filters, deletion marks, updates, removal
 * ------------------------------------------------------------------------ */

static void test_filters(void **s)
{
    (void)s;
    tu_rng r = tu_rng_make(14);
    float *data = tu_random_vectors(&r, N, DIM, -1.f, 1.f);
    float *queries = tu_random_vectors(&r, NQ, DIM, -1.f, 1.f);
    size_t n = N;
    for (int mi = 0; mi < 3; mi++) {
        hnswc_index *ix = flat_with_rows(METRICS[mi], data, N, DIM);
        uint64_t *l = tu_xmalloc(NQ * K * sizeof *l);
        float *d = tu_xmalloc(NQ * K * sizeof *d);
        size_t found[NQ];
        tu_ok(hnswc_search_batch(ix, queries, NQ, K, 0, even_label_filter, &n, 3, l, d, found));
        for (size_t q = 0; q < NQ; q++)
            expect_naive(METRICS[mi], data, N, DIM, NULL, even_row, NULL, queries + q * DIM, K,
                         l + q * K, d + q * K, found[q]);
        tu_ok(hnswc_search(ix, queries, K, 0, reject_all, NULL, l, d, &found[0]));
        assert_int_equal(found[0], 0);
        free(l);
        free(d);
        hnswc_free(ix);
    }
    free(data);
    free(queries);
}

static void test_marks_updates_and_removal(void **s)
{
    (void)s;
    tu_rng r = tu_rng_make(15);
    float *data = tu_random_vectors(&r, N, DIM, -1.f, 1.f);
    float *queries = tu_random_vectors(&r, NQ, DIM, -1.f, 1.f);
    for (int mi = 0; mi < 3; mi++) {
        hnswc_metric m = METRICS[mi];
        /* the test's own copy of what the index should hold */
        float *want = tu_xmalloc(N * DIM * sizeof *want);
        memcpy(want, data, N * DIM * sizeof *want);
        unsigned char live[N];
        memset(live, 1, sizeof live);
        hnswc_index *ix = flat_with_rows(m, data, N, DIM);

        /* marks */
        for (size_t i = 0; i < N; i += 5) {
            tu_ok(hnswc_mark_deleted(ix, tu_label_of(i)));
            live[i] = 0;
        }
        tu_expect_err(hnswc_mark_deleted(ix, tu_label_of(0)), HNSWC_ERR_DELETED);
        tu_expect_err(hnswc_unmark_deleted(ix, tu_label_of(1)), HNSWC_ERR_DELETED);
        int del;
        tu_ok(hnswc_is_deleted(ix, tu_label_of(5), &del));
        assert_int_equal(del, 1);
        tu_ok(hnswc_is_deleted(ix, tu_label_of(6), &del));
        assert_int_equal(del, 0);
        tu_ok(hnswc_unmark_deleted(ix, tu_label_of(10)));
        live[10] = 1;
        /* a deleted element can still be read */
        float v[DIM], unit[DIM];
        tu_ok(hnswc_get_vector(ix, tu_label_of(5), v));

        /* updates: rows 1..20 get other vectors; a deleted one comes back */
        for (size_t i = 1; i <= 20; i++) {
            memcpy(want + i * DIM, data + (N - i) * DIM, DIM * sizeof(float));
            tu_ok(hnswc_add(ix, tu_label_of(i), want + i * DIM, 0));
            live[i] = 1;
        }
        tu_ok(hnswc_get_vector(ix, tu_label_of(3), v));
        memcpy(unit, want + 3 * DIM, sizeof unit);
        if (m == HNSWC_METRIC_COSINE) {
            double n2 = 0;
            for (int k = 0; k < DIM; k++)
                n2 += (double)unit[k] * unit[k];
            for (int k = 0; k < DIM; k++)
                assert_float_equal(v[k], unit[k] / sqrt(n2), 1e-6);
        } else {
            assert_memory_equal(v, unit, sizeof v);
        }
        hnswc_info info;
        tu_ok(hnswc_get_info(ix, &info));
        assert_int_equal(info.count, N);

        /* removal: every third row from the end, so rows move into holes */
        size_t removed = 0;
        for (size_t i = 2; i < N; i += 3) {
            tu_ok(hnswc_remove(ix, tu_label_of(i)));
            live[i] = 0;
            removed++;
        }
        tu_expect_err(hnswc_remove(ix, tu_label_of(2)), HNSWC_ERR_NOT_FOUND);
        tu_expect_err(hnswc_get_vector(ix, tu_label_of(2), v), HNSWC_ERR_NOT_FOUND);
        tu_ok(hnswc_get_info(ix, &info));
        assert_int_equal(info.count, N - removed);
        size_t live_n = 0, dead = 0;
        for (size_t i = 0; i < N; i++) {
            live_n += live[i];
            dead += !live[i] && i % 3 != 2;
        }
        assert_int_equal(info.live_count, live_n);
        assert_int_equal(info.deleted_count, dead);
        /* every label that is left has its own vector (moved rows kept theirs) */
        for (size_t i = 0; i < N; i++) {
            if (i % 3 == 2)
                continue;
            tu_ok(hnswc_get_vector(ix, tu_label_of(i), v));
            if (m != HNSWC_METRIC_COSINE) {
                assert_memory_equal(v, want + i * DIM, sizeof v);
            } else { /* stored normalised: the same direction */
                float d0;
                tu_ok(hnswc_distance(m, v, want + i * DIM, DIM, &d0));
                assert_true(fabsf(d0) < 1e-5f);
            }
        }
        /* the labels are those left, once each */
        uint64_t *labels = tu_xmalloc(N * sizeof *labels);
        size_t nl;
        tu_ok(hnswc_get_labels(ix, labels, N, &nl));
        assert_int_equal(nl, N - removed);
        unsigned char seen[N] = {0};
        for (size_t i = 0; i < nl; i++) {
            size_t row = tu_row_of(labels[i], N);
            if (row == SIZE_MAX || row % 3 == 2 || seen[row])
                fail_msg("label %llu should not be there", (unsigned long long)labels[i]);
            else
                seen[row] = 1;
        }
        free(labels);

        for (size_t q = 0; q < NQ; q++) {
            uint64_t l[K];
            float d[K];
            size_t found;
            tu_ok(hnswc_search(ix, queries + q * DIM, K, 0, NULL, NULL, l, d, &found));
            expect_naive(m, want, N, DIM, live, NULL, NULL, queries + q * DIM, K, l, d, found);
        }

        /* a removed label can be added again, as a new element */
        tu_ok(hnswc_add(ix, tu_label_of(2), want + 2 * DIM, 0));
        tu_ok(hnswc_get_info(ix, &info));
        assert_int_equal(info.count, N - removed + 1);
        /* removing a deleted element lowers the deleted count */
        tu_ok(hnswc_remove(ix, tu_label_of(0)));
        tu_ok(hnswc_get_info(ix, &info));
        assert_int_equal(info.deleted_count, dead - 1);

        /* remove everything, then refill */
        labels = tu_xmalloc(N * sizeof *labels);
        tu_ok(hnswc_get_labels(ix, labels, N, &nl));
        for (size_t i = 0; i < nl; i++)
            tu_ok(hnswc_remove(ix, labels[i]));
        free(labels);
        tu_ok(hnswc_get_info(ix, &info));
        assert_int_equal(info.count, 0);
        assert_int_equal(info.deleted_count, 0);
        tu_add_rows(ix, data, 10, DIM, 1);
        tu_ok(hnswc_get_info(ix, &info));
        assert_int_equal(info.count, 10);
        hnswc_free(ix);
        free(want);
    }
    free(data);
    free(queries);
}

/* Repeated labels in a batch end with their last vector; the batch is all
 * or nothing. */
static void test_batch_repeats(void **s)
{
    (void)s;
    tu_rng r = tu_rng_make(16);
    float *data = tu_random_vectors(&r, 6, DIM, -1.f, 1.f);
    hnswc_index *ix = flat_create(DIM, HNSWC_METRIC_L2, 0);
    uint64_t labels[6] = {7, 8, 7, 9, 8, 7};
    size_t added = 0;
    tu_ok(hnswc_add_batch(ix, data, labels, 6, 0, 4, &added));
    assert_int_equal(added, 6);
    hnswc_info info;
    tu_ok(hnswc_get_info(ix, &info));
    assert_int_equal(info.count, 3);
    float v[DIM];
    tu_ok(hnswc_get_vector(ix, 7, v));
    assert_memory_equal(v, data + 5 * DIM, sizeof v);
    tu_ok(hnswc_get_vector(ix, 8, v));
    assert_memory_equal(v, data + 4 * DIM, sizeof v);
    uint64_t out[3];
    size_t n;
    tu_ok(hnswc_get_labels(ix, out, 3, &n));
    assert_int_equal(out[0], 7); /* rows in the order labels first came */
    assert_int_equal(out[1], 8);
    assert_int_equal(out[2], 9);
    hnswc_free(ix);
    free(data);
}

static void test_replace_deleted(void **s)
{
    (void)s;
    tu_rng r = tu_rng_make(17);
    float *data = tu_random_vectors(&r, 20, DIM, -1.f, 1.f);
    hnswc_index *ix = flat_with_rows(HNSWC_METRIC_L2, data, 10, DIM);
    tu_ok(hnswc_mark_deleted(ix, tu_label_of(2)));
    tu_ok(hnswc_mark_deleted(ix, tu_label_of(5)));
    tu_ok(hnswc_mark_deleted(ix, tu_label_of(8)));
    /* a batch that revives label 5 (an update) and brings three new labels:
     * two take over rows 2 and 8, the third gets a new row */
    uint64_t labels[4] = {tu_label_of(10), tu_label_of(5), tu_label_of(11), tu_label_of(12)};
    tu_ok(hnswc_add_batch(ix, data + 10 * DIM, labels, 4, HNSWC_ADD_REPLACE_DELETED, 1, NULL));
    hnswc_info info;
    tu_ok(hnswc_get_info(ix, &info));
    assert_int_equal(info.count, 11);
    assert_int_equal(info.deleted_count, 0);
    float v[DIM];
    tu_expect_err(hnswc_get_vector(ix, tu_label_of(2), v), HNSWC_ERR_NOT_FOUND);
    tu_expect_err(hnswc_get_vector(ix, tu_label_of(8), v), HNSWC_ERR_NOT_FOUND);
    for (int i = 0; i < 4; i++) {
        tu_ok(hnswc_get_vector(ix, labels[i], v));
        assert_memory_equal(v, data + (10 + i) * DIM, sizeof v);
    }
    uint64_t out[11];
    size_t n;
    tu_ok(hnswc_get_labels(ix, out, 11, &n));
    assert_int_equal(out[2], tu_label_of(10));
    assert_int_equal(out[8], tu_label_of(11));
    assert_int_equal(out[10], tu_label_of(12));
    /* without the flag, a new label never takes a deleted row */
    tu_ok(hnswc_mark_deleted(ix, tu_label_of(0)));
    tu_ok(hnswc_add(ix, tu_label_of(13), data + 19 * DIM, 0));
    tu_ok(hnswc_get_info(ix, &info));
    assert_int_equal(info.count, 12);
    assert_int_equal(info.deleted_count, 1);
    hnswc_free(ix);
    free(data);
}

static void test_count_new_labels(void **s)
{
    (void)s;
    tu_rng r = tu_rng_make(18);
    float *data = tu_random_vectors(&r, 10, DIM, -1.f, 1.f);
    for (int kind = 0; kind < 2; kind++) {
        hnswc_index *ix = kind ? flat_with_rows(HNSWC_METRIC_L2, data, 10, DIM)
                               : tu_create(DIM, HNSWC_METRIC_L2, 0, 0, 0, 0);
        if (!kind)
            tu_add_rows(ix, data, 10, DIM, 1);
        tu_ok(hnswc_mark_deleted(ix, tu_label_of(3)));
        /* known (live or deleted) labels are not new; repeats count once */
        uint64_t labels[7] = {tu_label_of(0), 1, 2, 1, tu_label_of(3), 2, 3};
        size_t n_new = 99;
        tu_ok(hnswc_count_new_labels(ix, labels, 7, &n_new));
        assert_int_equal(n_new, 3);
        tu_ok(hnswc_count_new_labels(ix, NULL, 0, &n_new));
        assert_int_equal(n_new, 0);
        tu_expect_err(hnswc_count_new_labels(NULL, labels, 7, &n_new), HNSWC_ERR_NULL);
        tu_expect_err(hnswc_count_new_labels(ix, NULL, 7, &n_new), HNSWC_ERR_NULL);
        tu_expect_err(hnswc_count_new_labels(ix, labels, 7, NULL), HNSWC_ERR_NULL);
        hnswc_free(ix);
    }
    free(data);
}

/* ------------------------------------------------------------------------
 * Files
 * ------------------------------------------------------------------------ */

/* A flat index of n rows with every 4th marked deleted, room for cap. */
static hnswc_index *flat_sample(hnswc_metric m, size_t n, uint64_t cap, float **data_out)
{
    tu_rng r = tu_rng_make(19 + n);
    float *data = tu_random_vectors(&r, n, DIM, -1.f, 1.f);
    hnswc_index *ix = flat_create(DIM, m, cap);
    tu_add_rows(ix, data, n, DIM, 1);
    for (size_t i = 0; i < n; i += 4)
        tu_ok(hnswc_mark_deleted(ix, tu_label_of(i)));
    if (data_out)
        *data_out = data;
    else
        free(data);
    return ix;
}

static void expect_same(const hnswc_index *a, const hnswc_index *b, const float *queries,
                        size_t nq)
{
    hnswc_info ia, ib;
    tu_ok(hnswc_get_info(a, &ia));
    tu_ok(hnswc_get_info(b, &ib));
    assert_int_equal(ib.kind, HNSWC_KIND_FLAT);
    assert_int_equal(ia.dim, ib.dim);
    assert_int_equal(ia.metric, ib.metric);
    assert_int_equal(ia.count, ib.count);
    assert_int_equal(ia.deleted_count, ib.deleted_count);
    assert_int_equal(ia.capacity, ib.capacity);
    for (size_t q = 0; q < nq; q++) {
        uint64_t la[K], lb[K];
        float da[K], db[K];
        size_t fa, fb;
        tu_ok(hnswc_search(a, queries + q * DIM, K, 0, NULL, NULL, la, da, &fa));
        tu_ok(hnswc_search(b, queries + q * DIM, K, 0, NULL, NULL, lb, db, &fb));
        assert_int_equal(fa, fb);
        assert_memory_equal(la, lb, fa * sizeof *la);
        assert_memory_equal(da, db, fa * sizeof *da);
    }
}

static void test_round_trip(void **s)
{
    (void)s;
    char *dir = tu_mkdtemp();
    char *p1 = tu_path(dir, "a.hnswc"), *p2 = tu_path(dir, "b.hnswc");
    tu_rng r = tu_rng_make(20);
    float *queries = tu_random_vectors(&r, NQ, DIM, -1.f, 1.f);
    for (int mi = 0; mi < 3; mi++) {
        for (int empty = 0; empty < 2; empty++) {
            hnswc_index *ix = flat_sample(METRICS[mi], empty ? 0 : N, 1000, NULL);
            tu_ok(hnswc_save(ix, p1));
            tu_ok(hnswc_save(ix, p1)); /* over an existing file */
            size_t size1, size2, ssize;
            unsigned char *f1 = tu_read_file(p1, &size1);
            unsigned char *mem = tu_serialized(ix, &ssize);
            assert_int_equal(size1, ssize);
            assert_memory_equal(f1, mem, size1);

            hnswc_file_info fi;
            tu_ok(hnswc_probe_file(p1, &fi));
            assert_int_equal(fi.kind, HNSWC_FILE_HNSWC);
            hnswc_index *back = NULL;
            tu_ok(hnswc_load(p1, &back));
            expect_same(ix, back, queries, NQ);
            /* labels in the same order, the same vectors and marks */
            uint64_t *la = tu_xmalloc((N + 1) * sizeof *la), *lb = tu_xmalloc((N + 1) * sizeof *lb);
            size_t na, nb;
            tu_ok(hnswc_get_labels(ix, la, N, &na));
            tu_ok(hnswc_get_labels(back, lb, N, &nb));
            assert_int_equal(na, nb);
            assert_memory_equal(la, lb, na * sizeof *la);
            for (size_t i = 0; i < na; i++) {
                float va[DIM], vb[DIM];
                int da, db;
                tu_ok(hnswc_get_vector(ix, la[i], va));
                tu_ok(hnswc_get_vector(back, la[i], vb));
                assert_memory_equal(va, vb, sizeof va);
                tu_ok(hnswc_is_deleted(ix, la[i], &da));
                tu_ok(hnswc_is_deleted(back, la[i], &db));
                assert_int_equal(da, db);
            }
            /* saving the loaded index gives the same bytes */
            tu_ok(hnswc_save(back, p2));
            unsigned char *f2 = tu_read_file(p2, &size2);
            assert_int_equal(size1, size2);
            assert_memory_equal(f1, f2, size1);
            hnswc_index *fromm = NULL;
            tu_ok(hnswc_deserialize(mem, ssize, &fromm));
            expect_same(ix, fromm, queries, NQ);
            /* the loaded index goes on working */
            tu_ok(hnswc_add(back, 5, queries, 0));
            tu_ok(hnswc_remove(back, 5));

            hnswc_free(fromm);
            hnswc_free(back);
            hnswc_free(ix);
            free(la);
            free(lb);
            free(f1);
            free(f2);
            free(mem);
        }
    }
    /* a flat file and a graph file are told apart by hnswc_load */
    hnswc_index *g = tu_create(DIM, HNSWC_METRIC_L2, 0, 0, 0, 0);
    tu_ok(hnswc_save(g, p1));
    hnswc_free(g);
    tu_ok(hnswc_load(p1, &g));
    hnswc_info info;
    tu_ok(hnswc_get_info(g, &info));
    assert_int_equal(info.kind, HNSWC_KIND_HNSW);
    hnswc_free(g);
    free(queries);
    free(p1);
    free(p2);
    tu_rmdir(dir);
}

static void test_truncated_and_flipped(void **s)
{
    (void)s;
    char *dir = tu_mkdtemp();
    char *p = tu_path(dir, "t.hnswc");
    hnswc_index *ix = flat_sample(HNSWC_METRIC_COSINE, 9, 0, NULL);
    size_t size;
    unsigned char *b = tu_serialized(ix, &size);
    hnswc_free(ix);
    tu_expect_load(b, size, p, HNSWC_OK, "the intact file");
    for (size_t len = 0; len < size; len++) {
        unsigned char *cut = tu_xmalloc(len ? len : 1);
        memcpy(cut, b, len);
        char what[64];
        snprintf(what, sizeof what, "truncated to %zu of %zu bytes", len, size);
        tu_expect_load(cut, len, len % 4 == 0 ? p : NULL, HNSWC_ERR_FORMAT, what);
        free(cut);
    }
    unsigned char *longer = tu_xmalloc(size + 1);
    memcpy(longer, b, size);
    longer[size] = 0;
    tu_expect_load(longer, size + 1, p, HNSWC_ERR_FORMAT, "a trailing byte");
    free(longer);
    /* a single byte changed anywhere: a checksum or a check catches it */
    for (size_t pos = 0; pos < size; pos++) {
        unsigned char keep = b[pos];
        b[pos] ^= (unsigned char)(1u << (pos % 8));
        char what[64];
        snprintf(what, sizeof what, "bit %zu of byte %zu flipped", pos % 8, pos);
        tu_expect_load(b, size, pos % 7 == 0 ? p : NULL, HNSWC_ERR_FORMAT, what);
        b[pos] = keep;
    }
    free(b);
    free(p);
    tu_rmdir(dir);
}

/*
 * Flat layout, for the structural tests: sections FLAT, NODE, VECS.
 *   FLAT: u32 dim, metric, 0, 0; u64 count, deleted count, capacity.
 *   NODE: per row u64 label, i32 level (0), u32 flags (1: deleted).
 *   VECS: per row dim float32.
 */
static void put32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(unsigned char *p, uint64_t v) { memcpy(p, &v, 8); }

typedef struct mutation {
    const char *what;
    size_t section; /* 0 FLAT, 1 NODE, 2 VECS */
    size_t offset;
    int width;      /* 4 or 8 bytes, or 0 for a float */
    uint64_t value;
} mutation;

static void test_impossible_contents(void **s)
{
    (void)s;
    /* 6 rows, rows 0 and 4 deleted, capacity 10 */
    hnswc_index *ix = flat_sample(HNSWC_METRIC_L2, 6, 10, NULL);
    size_t size;
    unsigned char *b = tu_serialized(ix, &size);
    hnswc_free(ix);
    tu_section secs[8];
    size_t nsec = tu_parse_sections(b, size, secs, 8);
    assert_int_equal(nsec, 3);
    assert_string_equal(secs[0].tag, "FLAT");
    assert_string_equal(secs[1].tag, "NODE");
    assert_string_equal(secs[2].tag, "VECS");
    uint64_t first_label;
    memcpy(&first_label, b + secs[1].payload, 8);
    const mutation muts[] = {
        {"dim 0", 0, 0, 4, 0},
        {"dim above 65536", 0, 0, 4, 65537},
        {"unknown metric", 0, 4, 4, 3},
        {"reserved field set", 0, 8, 4, 1},
        {"second reserved field set", 0, 12, 4, 1},
        {"count above the rows", 0, 16, 8, 7},
        {"count below the rows", 0, 16, 8, 5},
        {"count huge", 0, 16, 8, (uint64_t)1 << 40},
        {"deleted count off", 0, 24, 8, 1},
        {"deleted count above count", 0, 24, 8, 7},
        {"capacity below count", 0, 32, 8, 5},
        {"capacity huge", 0, 32, 8, (uint64_t)1 << 40},
        {"level 1", 1, 16 + 8, 4, 1},
        {"level -1", 1, 8, 4, (uint32_t)-1},
        {"flags 2", 1, 16 + 12, 4, 2},
        {"a repeated label", 1, 16, 8, first_label},
        {"NaN in a vector", 2, 4 * DIM + 3 * 4, 0, 0},
        {"infinity in a vector", 2, 5 * 4, 0, 1},
    };
    char *dir = tu_mkdtemp();
    char *p = tu_path(dir, "m.hnswc");
    for (size_t i = 0; i < sizeof muts / sizeof *muts; i++) {
        unsigned char *m = tu_xmalloc(size);
        memcpy(m, b, size);
        unsigned char *at = m + secs[muts[i].section].payload + muts[i].offset;
        if (muts[i].width == 4)
            put32(at, (uint32_t)muts[i].value);
        else if (muts[i].width == 8)
            put64(at, muts[i].value);
        else {
            float f = muts[i].value ? INFINITY : NAN;
            memcpy(at, &f, 4);
        }
        tu_fix_crcs(m, secs, nsec);
        tu_expect_load(m, size, p, HNSWC_ERR_FORMAT, muts[i].what);
        free(m);
    }
    /* a FLAT section where the graph's PARM should be, and the reverse,
     * are caught by the section count in the header */
    unsigned char *m = tu_xmalloc(size);
    memcpy(m, b, size);
    put32(m + 16, 5);
    tu_fix_crcs(m, secs, nsec);
    tu_expect_load(m, size, p, HNSWC_ERR_FORMAT, "five sections announced");
    memcpy(m, b, size);
    memcpy(m + secs[0].head, "PARM", 4);
    tu_fix_crcs(m, secs, nsec);
    tu_expect_load(m, size, p, HNSWC_ERR_FORMAT, "a PARM tag on the FLAT section");
    free(m);
    free(b);
    free(p);
    tu_rmdir(dir);
}

/* hnswc 0.1's Python BFIndex files ("HNSWCBF1"), written here by hand. */
static unsigned char *legacy_file(hnswc_metric m, const float *vecs, const uint64_t *labels,
                                  size_t count, uint64_t max_elements, size_t *size)
{
    *size = 48 + count * (DIM * 4 + 8) + 4;
    unsigned char *b = tu_xcalloc(1, *size);
    memcpy(b, "HNSWCBF1", 8);
    put32(b + 8, 1);
    put32(b + 12, (uint32_t)m);
    put32(b + 16, DIM);
    put64(b + 24, count);
    put64(b + 32, max_elements);
    put64(b + 40, count + 3);
    memcpy(b + 48, vecs, count * DIM * 4);
    memcpy(b + 48 + count * DIM * 4, labels, count * 8);
    put32(b + *size - 4, tu_crc32_ieee(b, *size - 4));
    return b;
}

static void test_legacy_bfindex_files(void **s)
{
    (void)s;
    tu_rng r = tu_rng_make(21);
    enum { C = 30 };
    float *data = tu_random_vectors(&r, C, DIM, -1.f, 1.f);
    uint64_t labels[C];
    for (size_t i = 0; i < C; i++)
        labels[i] = tu_label_of(i);
    char *dir = tu_mkdtemp();
    char *p = tu_path(dir, "old.bf");
    size_t size;
    unsigned char *b = legacy_file(HNSWC_METRIC_IP, data, labels, C, 500, &size);
    tu_write_file(p, b, size);
    hnswc_file_info fi;
    tu_ok(hnswc_probe_file(p, &fi));
    assert_int_equal(fi.kind, HNSWC_FILE_HNSWC); /* hnswc_load reads it */
    hnswc_index *ix = NULL;
    tu_ok(hnswc_load(p, &ix));
    hnswc_info info;
    tu_ok(hnswc_get_info(ix, &info));
    assert_int_equal(info.kind, HNSWC_KIND_FLAT);
    assert_int_equal(info.metric, HNSWC_METRIC_IP);
    assert_int_equal(info.count, C);
    assert_int_equal(info.capacity, 500);
    for (size_t q = 0; q < 5; q++) {
        uint64_t l[K];
        float d[K];
        size_t found;
        tu_ok(hnswc_search(ix, data + q * DIM, K, 0, NULL, NULL, l, d, &found));
        expect_naive(HNSWC_METRIC_IP, data, C, DIM, NULL, NULL, NULL, data + q * DIM, K, l, d,
                     found);
    }
    hnswc_free(ix);
    tu_ok(hnswc_deserialize(b, size, &ix));
    hnswc_free(ix);
    /* damage: every truncation, a flipped bit, a repeated label */
    for (size_t len = 0; len < size; len += 7)
        tu_expect_load(b, len, NULL, HNSWC_ERR_FORMAT, "a truncated BFIndex file");
    b[100] ^= 4;
    tu_expect_load(b, size, p, HNSWC_ERR_FORMAT, "a BFIndex file with a flipped bit");
    free(b);
    labels[3] = labels[4];
    b = legacy_file(HNSWC_METRIC_IP, data, labels, C, 500, &size);
    tu_expect_load(b, size, p, HNSWC_ERR_FORMAT, "a BFIndex file repeating a label");
    free(b);
    free(data);
    free(p);
    tu_rmdir(dir);
}

/* hnswlib's BruteforceSearch files, written here by hand: u64 max,
 * u64 size per element (dim * 4 + 8), u64 count, max records. */
static unsigned char *bruteforce_file(const float *vecs, size_t count, size_t max, size_t *size)
{
    size_t per = DIM * 4 + 8;
    *size = 24 + max * per;
    unsigned char *b = tu_xcalloc(1, *size);
    put64(b, max);
    put64(b + 8, per);
    put64(b + 16, count);
    for (size_t i = 0; i < count; i++) {
        memcpy(b + 24 + i * per, vecs + i * DIM, DIM * 4);
        put64(b + 24 + i * per + DIM * 4, tu_label_of(i));
    }
    return b;
}

static void test_hnswlib_bruteforce_files(void **s)
{
    (void)s;
    tu_rng r = tu_rng_make(22);
    enum { C = 25, MAX = 40 };
    float *data = tu_random_vectors(&r, C, DIM, -1.f, 1.f);
    char *dir = tu_mkdtemp();
    char *p = tu_path(dir, "hnswlib.bf");
    size_t size;
    unsigned char *b = bruteforce_file(data, C, MAX, &size);
    tu_write_file(p, b, size);
    hnswc_file_info fi;
    tu_ok(hnswc_probe_file(p, &fi));
    assert_int_equal(fi.kind, HNSWC_FILE_HNSWLIB);
    assert_int_equal(fi.dim, DIM);
    assert_int_equal(fi.count, C);
    assert_int_equal(fi.max_elements, MAX);
    assert_int_equal(fi.M, 0); /* an exact index */
    hnswc_index *ix = NULL;
    tu_ok(hnswc_load_hnswlib(p, HNSWC_METRIC_L2, &ix));
    hnswc_info info;
    tu_ok(hnswc_get_info(ix, &info));
    assert_int_equal(info.kind, HNSWC_KIND_FLAT);
    assert_int_equal(info.dim, DIM);
    assert_int_equal(info.count, C);
    assert_int_equal(info.capacity, MAX);
    for (size_t q = 0; q < 5; q++) {
        uint64_t l[K];
        float d[K];
        size_t found;
        tu_ok(hnswc_search(ix, data + q * DIM, K, 0, NULL, NULL, l, d, &found));
        expect_naive(HNSWC_METRIC_L2, data, C, DIM, NULL, NULL, NULL, data + q * DIM, K, l, d,
                     found);
    }
    hnswc_free(ix);
    /* hnswc_load does not take it for one of its own */
    tu_expect_err(hnswc_load(p, &ix), HNSWC_ERR_FORMAT);
    /* one byte short, one too many, count above max, a NaN */
    const char *what[4] = {"one byte short", "one byte too many", "count above max", "NaN"};
    for (int i = 0; i < 4; i++) {
        size_t len = size + (i == 1) - (i == 0);
        unsigned char *m = tu_xcalloc(1, len + 1);
        memcpy(m, b, len < size ? len : size);
        if (i == 2)
            put64(m + 16, MAX + 1);
        if (i == 3) {
            float nan = NAN;
            memcpy(m + 24 + 4, &nan, 4);
        }
        tu_write_file(p, m, len);
        ix = (hnswc_index *)(uintptr_t)1;
        hnswc_status st = hnswc_load_hnswlib(p, HNSWC_METRIC_L2, &ix);
        if (st != HNSWC_ERR_FORMAT)
            fail_msg("%s: status %s", what[i], hnswc_status_string(st));
        assert_null(ix);
        free(m);
    }
    free(b);
    free(data);
    free(p);
    tu_rmdir(dir);
}

/* ------------------------------------------------------------------------
 * Bad input: each call fails with its status and a message, and the index
 * is as it was (same info, same results, same vectors).
 * ------------------------------------------------------------------------ */

typedef struct snapshot {
    hnswc_info info;
    uint64_t labels[K];
    float dists[K];
    size_t found;
    float vec[DIM];
} snapshot;

static void take_snapshot(const hnswc_index *ix, const float *q, snapshot *sn)
{
    memset(sn, 0, sizeof *sn);
    tu_ok(hnswc_get_info(ix, &sn->info));
    tu_ok(hnswc_search(ix, q, K, 0, NULL, NULL, sn->labels, sn->dists, &sn->found));
    tu_ok(hnswc_get_vector(ix, tu_label_of(3), sn->vec));
}

static void expect_unchanged(const hnswc_index *ix, const float *q, const snapshot *before)
{
    snapshot after;
    take_snapshot(ix, q, &after);
    assert_int_equal(after.info.count, before->info.count);
    assert_int_equal(after.info.deleted_count, before->info.deleted_count);
    assert_int_equal(after.info.capacity, before->info.capacity);
    assert_int_equal(after.found, before->found);
    assert_memory_equal(after.labels, before->labels, sizeof after.labels);
    assert_memory_equal(after.dists, before->dists, sizeof after.dists);
    assert_memory_equal(after.vec, before->vec, sizeof after.vec);
}

static void test_bad_input(void **s)
{
    (void)s;
    tu_rng r = tu_rng_make(23);
    float *data = tu_random_vectors(&r, 50, DIM, -1.f, 1.f);
    hnswc_index *ix = flat_with_rows(HNSWC_METRIC_L2, data, 40, DIM);
    tu_ok(hnswc_mark_deleted(ix, tu_label_of(7)));
    const float *q = data + 45 * DIM;
    snapshot before;
    take_snapshot(ix, q, &before);

    float nan_vec[DIM];
    memcpy(nan_vec, data, sizeof nan_vec);
    nan_vec[DIM - 1] = NAN;
    float *batch = tu_xmalloc(3 * DIM * sizeof *batch);
    memcpy(batch, data + 40 * DIM, 3 * DIM * sizeof *batch);
    batch[2 * DIM + 1] = INFINITY;
    uint64_t blabels[3] = {1000, tu_label_of(3), 1001};
    uint64_t l[K];
    float d[K];
    size_t found = 0, fb[2];
    size_t n;

    /* creation */
    hnswc_options o = {0};
    o.kind = HNSWC_KIND_FLAT;
    hnswc_index *bad = (hnswc_index *)(uintptr_t)1;
    tu_expect_err(hnswc_create(&o, &bad), HNSWC_ERR_INVALID); /* dim 0 */
    assert_null(bad);
    o.dim = DIM;
    o.kind = (hnswc_kind)2;
    tu_expect_err(hnswc_create(&o, &bad), HNSWC_ERR_INVALID);
    o.kind = HNSWC_KIND_FLAT;
    o.metric = (hnswc_metric)7;
    tu_expect_err(hnswc_create(&o, &bad), HNSWC_ERR_INVALID);
    o.metric = HNSWC_METRIC_L2;
    o.capacity = (uint64_t)1 << 40;
    tu_expect_err(hnswc_create(&o, &bad), HNSWC_ERR_OVERFLOW);
    o.capacity = 0;
    o.M = 1; /* graph parameters are checked on a flat index too */
    tu_expect_err(hnswc_create(&o, &bad), HNSWC_ERR_INVALID);

    /* adds */
    tu_expect_err(hnswc_add(ix, 5, NULL, 0), HNSWC_ERR_NULL);
    tu_expect_err(hnswc_add(NULL, 5, data, 0), HNSWC_ERR_NULL);
    tu_expect_err(hnswc_add(ix, 5, data, 0x8), HNSWC_ERR_INVALID);
    tu_expect_err(hnswc_add(ix, tu_label_of(3), nan_vec, 0), HNSWC_ERR_NONFINITE);
    tu_expect_err(hnswc_add_batch(ix, batch, blabels, 3, 0, 2, &n), HNSWC_ERR_NONFINITE);
    assert_int_equal(n, 0);
    tu_expect_err(hnswc_add_batch(ix, NULL, blabels, 3, 0, 2, &n), HNSWC_ERR_NULL);
    tu_expect_err(hnswc_add_batch(ix, batch, NULL, 3, 0, 2, &n), HNSWC_ERR_NULL);
    tu_expect_err(hnswc_add_batch(ix, batch, blabels, SIZE_MAX / 2, 0, 2, &n),
                  HNSWC_ERR_OVERFLOW);
    tu_expect_err(hnswc_add_batch(ix, batch, blabels, 3, 0x10, 2, &n), HNSWC_ERR_INVALID);
    tu_ok(hnswc_add_batch(ix, NULL, NULL, 0, 0, 2, &n)); /* an empty batch */
    expect_unchanged(ix, q, &before);

    /* searches */
    tu_expect_err(hnswc_search(ix, q, 0, 0, NULL, NULL, l, d, &found), HNSWC_ERR_INVALID);
    tu_expect_err(hnswc_search(ix, NULL, K, 0, NULL, NULL, l, d, &found), HNSWC_ERR_NULL);
    tu_expect_err(hnswc_search(ix, q, K, 0, NULL, NULL, NULL, d, &found), HNSWC_ERR_NULL);
    tu_expect_err(hnswc_search(ix, q, K, 0, NULL, NULL, l, d, NULL), HNSWC_ERR_NULL);
    tu_expect_err(hnswc_search(NULL, q, K, 0, NULL, NULL, l, d, &found), HNSWC_ERR_NULL);
    tu_expect_err(hnswc_search(ix, nan_vec, K, 0, NULL, NULL, l, d, &found),
                  HNSWC_ERR_NONFINITE);
    tu_expect_err(hnswc_search(ix, q, K, (size_t)1 << 32, NULL, NULL, l, d, &found),
                  HNSWC_ERR_INVALID);
    tu_expect_err(hnswc_search(ix, q, (size_t)1 << 32, 0, NULL, NULL, l, d, &found),
                  HNSWC_ERR_INVALID);
    tu_expect_err(hnswc_search_exact(ix, q, 0, NULL, NULL, l, d, &found), HNSWC_ERR_INVALID);
    tu_expect_err(hnswc_search_batch(ix, batch + DIM, 2, K, 0, NULL, NULL, 2, l, d, fb),
                  HNSWC_ERR_NONFINITE);
    tu_expect_err(hnswc_search_batch(ix, q, 1, K, 0, NULL, NULL, 2, l, d, NULL),
                  HNSWC_ERR_NULL);
    tu_expect_err(hnswc_search_batch(ix, q, SIZE_MAX / 4, K, 0, NULL, NULL, 2, l, d, fb),
                  HNSWC_ERR_OVERFLOW);

    /* labels */
    float v[DIM];
    int del;
    tu_expect_err(hnswc_get_vector(ix, 424242, v), HNSWC_ERR_NOT_FOUND);
    tu_expect_err(hnswc_get_vector(ix, tu_label_of(3), NULL), HNSWC_ERR_NULL);
    tu_expect_err(hnswc_is_deleted(ix, 424242, &del), HNSWC_ERR_NOT_FOUND);
    tu_expect_err(hnswc_is_deleted(ix, tu_label_of(3), NULL), HNSWC_ERR_NULL);
    uint64_t few[3];
    tu_expect_err(hnswc_get_labels(ix, few, 3, &n), HNSWC_ERR_INVALID);
    assert_int_equal(n, 40);
    tu_expect_err(hnswc_get_labels(ix, NULL, 3, &n), HNSWC_ERR_NULL);
    tu_expect_err(hnswc_mark_deleted(ix, 424242), HNSWC_ERR_NOT_FOUND);
    tu_expect_err(hnswc_mark_deleted(ix, tu_label_of(7)), HNSWC_ERR_DELETED);
    tu_expect_err(hnswc_unmark_deleted(ix, tu_label_of(8)), HNSWC_ERR_DELETED);
    tu_expect_err(hnswc_mark_deleted(NULL, 1), HNSWC_ERR_NULL);
    tu_expect_err(hnswc_remove(ix, 424242), HNSWC_ERR_NOT_FOUND);
    tu_expect_err(hnswc_remove(NULL, 1), HNSWC_ERR_NULL);

    /* the rest */
    hnswc_graph_stats gs;
    tu_expect_err(hnswc_get_graph_stats(ix, &gs), HNSWC_ERR_INVALID);
    uint32_t id, links[8];
    hnswc_node node;
    tu_expect_err(hnswc_node_id(ix, tu_label_of(3), &id), HNSWC_ERR_INVALID);
    tu_expect_err(hnswc_node_info(ix, 0, &node), HNSWC_ERR_INVALID);
    tu_expect_err(hnswc_node_links(ix, 0, 0, links, 8, &n), HNSWC_ERR_INVALID);
    tu_expect_err(hnswc_search_traced(ix, q, K, 0, NULL, NULL, NULL, NULL, l, d, &found),
                  HNSWC_ERR_INVALID);
    tu_expect_err(hnswc_set_ef(ix, 0), HNSWC_ERR_INVALID);
    tu_ok(hnswc_set_ef(ix, 50)); /* accepted, without effect */
    tu_expect_err(hnswc_reserve(ix, (uint64_t)1 << 40), HNSWC_ERR_OVERFLOW);
    tu_expect_err(hnswc_get_info(ix, NULL), HNSWC_ERR_NULL);
    tu_expect_err(hnswc_save(ix, ""), HNSWC_ERR_INVALID);
    tu_expect_err(hnswc_save(ix, "/nonexistent-dir/x.hnswc"), HNSWC_ERR_IO);
    expect_unchanged(ix, q, &before);

    /* room for more rows than any machine has (2^32 rows of 256 KiB):
     * NOMEM, and the index as it was */
    hnswc_index *wide = flat_create(65536, HNSWC_METRIC_L2, 0);
    tu_expect_err(hnswc_reserve(wide, (uint64_t)UINT32_MAX - 1), HNSWC_ERR_NOMEM);
    hnswc_info wi;
    tu_ok(hnswc_get_info(wide, &wi));
    assert_int_equal(wi.capacity, 0);
    hnswc_free(wide);

    /* an HNSW index removes too (tests/c/test_remove.c has the rest) */
    hnswc_index *g = tu_create(DIM, HNSWC_METRIC_L2, 0, 0, 0, 0);
    tu_add_rows(g, data, 5, DIM, 1);
    tu_ok(hnswc_remove(g, tu_label_of(1)));
    assert_int_equal(tu_count(g), 4);
    hnswc_free(g);

    free(batch);
    hnswc_free(ix);
    free(data);
}

/* ------------------------------------------------------------------------
 * Concurrency: searches while other threads write
 * ------------------------------------------------------------------------ */

typedef struct race {
    hnswc_index *ix;
    const float *data;
    size_t n;
    int writer;
    int failures;
} race;

static void *race_main(void *arg)
{
    race *rc = arg;
    uint64_t l[K];
    float d[K];
    size_t found;
    for (int round = 0; round < 150; round++) {
        size_t row = (size_t)(round * 7 + rc->writer * 13) % rc->n;
        hnswc_status st = HNSWC_OK;
        switch (rc->writer) {
        case 0: /* searches: results ascend, labels are ours */
            st = hnswc_search(rc->ix, rc->data + row * DIM, K, 0, NULL, NULL, l, d, &found);
            for (size_t i = 1; st == HNSWC_OK && i < found; i++)
                if (d[i] < d[i - 1] || tu_row_of(l[i], 2 * rc->n) == SIZE_MAX)
                    rc->failures++;
            break;
        case 1: /* adds and updates */
            st = hnswc_add(rc->ix, tu_label_of(rc->n + row % 20), rc->data + row * DIM, 0);
            break;
        case 2: /* removes and re-adds */
            st = hnswc_remove(rc->ix, tu_label_of(row));
            if (st == HNSWC_ERR_NOT_FOUND || st == HNSWC_OK)
                st = hnswc_add(rc->ix, tu_label_of(row), rc->data + row * DIM, 0);
            break;
        default: /* marks */
            st = hnswc_mark_deleted(rc->ix, tu_label_of(row));
            if (st == HNSWC_ERR_DELETED || st == HNSWC_OK)
                st = hnswc_unmark_deleted(rc->ix, tu_label_of(row));
            if (st == HNSWC_ERR_NOT_FOUND || st == HNSWC_ERR_DELETED)
                st = HNSWC_OK; /* removed meanwhile, or another mark won */
            break;
        }
        if (st != HNSWC_OK)
            rc->failures++;
    }
    return NULL;
}

static void test_concurrent_searches_and_writes(void **s)
{
    (void)s;
    tu_rng r = tu_rng_make(24);
    enum { CN = 200 };
    float *data = tu_random_vectors(&r, CN, DIM, -1.f, 1.f);
    hnswc_index *ix = flat_with_rows(HNSWC_METRIC_COSINE, data, CN, DIM);
    race rc[5];
    pthread_t t[5];
    for (int i = 0; i < 5; i++) {
        rc[i] = (race){ix, data, CN, i < 2 ? 0 : i - 1, 0};
        assert_int_equal(pthread_create(&t[i], NULL, race_main, &rc[i]), 0);
    }
    for (int i = 0; i < 5; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(rc[i].failures, 0);
    }
    /* every original label is there once, plus the writer's 20 */
    hnswc_info info;
    tu_ok(hnswc_get_info(ix, &info));
    assert_int_equal(info.count, CN + 20);
    uint64_t *labels = tu_xmalloc((CN + 20) * sizeof *labels);
    size_t n;
    tu_ok(hnswc_get_labels(ix, labels, CN + 20, &n));
    unsigned char seen[CN + 20] = {0};
    for (size_t i = 0; i < n; i++) {
        size_t row = tu_row_of(labels[i], CN + 20);
        if (row == SIZE_MAX || seen[row])
            fail_msg("label %llu is not ours or is there twice", (unsigned long long)labels[i]);
        else
            seen[row] = 1;
    }
    free(labels);
    hnswc_free(ix);
    free(data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_vs_naive),
        cmocka_unit_test(test_batch_equals_single),
        cmocka_unit_test(test_k_above_count),
        cmocka_unit_test(test_ties),
        cmocka_unit_test(test_filters),
        cmocka_unit_test(test_marks_updates_and_removal),
        cmocka_unit_test(test_batch_repeats),
        cmocka_unit_test(test_replace_deleted),
        cmocka_unit_test(test_count_new_labels),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_truncated_and_flipped),
        cmocka_unit_test(test_impossible_contents),
        cmocka_unit_test(test_legacy_bfindex_files),
        cmocka_unit_test(test_hnswlib_bruteforce_files),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_concurrent_searches_and_writes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
