/*
 * test_labelset.c -- hnswc_labelset_init and hnswc_labelset_filter: the
 * set holds exactly the distinct labels given (checked against an
 * independent sort on random, sorted, reversed, constant and extreme
 * inputs of every small size and some large ones), the filter answers
 * membership for labels in, between and beyond them, bad arguments are
 * refused with a status, and a search filtered by a set returns exactly the
 * nearest allowed labels (against a brute force).
 */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The distinct values of a[0 .. n-1], sorted by the C library: the reference. */
static size_t reference_set(const uint64_t *a, size_t n, uint64_t *out)
{
    memcpy(out, a, n * sizeof *a);
    qsort(out, n, sizeof *out, cmp_u64);
    size_t u = 0;
    for (size_t i = 0; i < n; i++)
        if (u == 0 || out[u - 1] != out[i])
            out[u++] = out[i];
    return u;
}

/* Builds a set from a copy of a[0 .. n-1] and checks it against the
 * reference, then probes the filter in, between and around the labels. */
static void check_set(const uint64_t *a, size_t n)
{
    uint64_t *work = tu_xmalloc((n ? n : 1) * sizeof *work);
    uint64_t *ref = tu_xmalloc((n ? n : 1) * sizeof *ref);
    memcpy(work, a, n * sizeof *a);
    size_t nref = reference_set(a, n, ref);

    hnswc_labelset set;
    tu_ok(hnswc_labelset_init(&set, work, n));
    assert_ptr_equal(set.labels, work);
    assert_int_equal(set.n, nref);
    assert_memory_equal(set.labels, ref, nref * sizeof *ref);

    for (size_t i = 0; i < nref; i++) {
        assert_true(hnswc_labelset_filter(ref[i], &set));
        /* the values next to a member are members only if they are in ref */
        if (ref[i] > 0)
            assert_int_equal(hnswc_labelset_filter(ref[i] - 1, &set) != 0,
                             i > 0 && ref[i - 1] == ref[i] - 1);
        if (ref[i] < UINT64_MAX)
            assert_int_equal(hnswc_labelset_filter(ref[i] + 1, &set) != 0,
                             i + 1 < nref && ref[i + 1] == ref[i] + 1);
    }
    if (nref == 0) {
        assert_false(hnswc_labelset_filter(0, &set));
        assert_false(hnswc_labelset_filter(UINT64_MAX, &set));
    }
    free(work);
    free(ref);
}

static void test_sets_of_every_shape(void **state)
{
    (void)state;
    tu_rng r = tu_rng_make(17);
    enum { MAXN = 300 };
    uint64_t a[MAXN];
    for (size_t n = 0; n <= 80; n++) {
        for (size_t i = 0; i < n; i++) /* random, many duplicates */
            a[i] = tu_next(&r) % (n + 3);
        check_set(a, n);
        for (size_t i = 0; i < n; i++) /* random, full range */
            a[i] = tu_next(&r);
        check_set(a, n);
        for (size_t i = 0; i < n; i++) /* ascending */
            a[i] = i * 3;
        check_set(a, n);
        for (size_t i = 0; i < n; i++) /* descending */
            a[i] = (uint64_t)(n - i);
        check_set(a, n);
        for (size_t i = 0; i < n; i++) /* all equal */
            a[i] = 7;
        check_set(a, n);
        for (size_t i = 0; i < n; i++) /* the extremes */
            a[i] = i % 2 ? UINT64_MAX : 0;
        check_set(a, n);
        for (size_t i = 0; i < n; i++) /* organ pipe: hard for a naive quicksort */
            a[i] = i < n / 2 ? i : n - i;
        check_set(a, n);
    }
}

static void test_large_sets(void **state)
{
    (void)state;
    tu_rng r = tu_rng_make(5);
    size_t n = tu_scaled(200000, 5000);
    uint64_t *a = tu_xmalloc(n * sizeof *a);
    for (size_t i = 0; i < n; i++)
        a[i] = tu_next(&r) % (n / 2); /* about half duplicates */
    check_set(a, n);
    for (size_t i = 0; i < n; i++) /* already sorted then reversed halves */
        a[i] = i < n / 2 ? i : (uint64_t)(n - i) * 2;
    check_set(a, n);
    /* median-of-three killer-ish: many equal values around the pivots */
    for (size_t i = 0; i < n; i++)
        a[i] = (i * 7919) % 3;
    check_set(a, n);
    free(a);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    uint64_t a[3] = {3, 1, 2};
    hnswc_labelset set = {a, 99};
    tu_expect_err(hnswc_labelset_init(NULL, a, 3), HNSWC_ERR_NULL);
    tu_expect_err(hnswc_labelset_init(&set, NULL, 3), HNSWC_ERR_NULL);
    assert_int_equal(set.n, 0); /* left empty: allows nothing */
    assert_false(hnswc_labelset_filter(1, &set));
    assert_int_equal(a[0], 3); /* untouched */
    tu_ok(hnswc_labelset_init(&set, NULL, 0));
    assert_int_equal(set.n, 0);
    assert_false(hnswc_labelset_filter(0, &set));
    assert_false(hnswc_labelset_filter(0, NULL));
}

/* A search filtered by a set returns the nearest allowed labels exactly
 * (exhaustive ef on a small index), the same as a hand-written filter. */
static int is_multiple_of_7(uint64_t label, void *u)
{
    (void)u;
    return label % 7 == 0;
}

static void test_search_with_a_set(void **state)
{
    (void)state;
    enum { N = 700, DIM = 8, K = 10 };
    tu_rng r = tu_rng_make(3);
    float *data = tu_random_vectors(&r, N, DIM, -1, 1);
    hnswc_index *ix = tu_create(DIM, HNSWC_METRIC_L2, 8, 100, 1, N);
    uint64_t labels[N];
    for (size_t i = 0; i < N; i++)
        labels[i] = 1000 + i;
    tu_ok(hnswc_add_batch(ix, data, labels, N, 0, 1, NULL));

    /* The multiples of 7, shuffled, then some of them again. */
    uint64_t allowed[2 * N];
    size_t na = 0;
    for (uint64_t l = 1000; l < 1000 + N; l++)
        if (l % 7 == 0)
            allowed[na++] = l;
    for (size_t i = na - 1; i > 0; i--) {
        size_t j = (size_t)(tu_next(&r) % (i + 1));
        uint64_t t = allowed[i];
        allowed[i] = allowed[j];
        allowed[j] = t;
    }
    for (size_t i = 0, m = na; i < m; i += 3)
        allowed[na++] = allowed[i];
    hnswc_labelset set;
    tu_ok(hnswc_labelset_init(&set, allowed, na));

    float *q = tu_random_vectors(&r, 20, DIM, -1, 1);
    uint64_t got[K], want[K];
    float gd[K], wd[K];
    size_t ng, nw;
    for (size_t i = 0; i < 20; i++) {
        tu_ok(hnswc_search(ix, q + i * DIM, K, N, hnswc_labelset_filter, &set, got, gd, &ng));
        tu_ok(hnswc_search_exact(ix, q + i * DIM, K, is_multiple_of_7, NULL, want, wd, &nw));
        assert_int_equal(ng, nw);
        assert_memory_equal(got, want, nw * sizeof *got);
    }
    free(q);
    free(data);
    hnswc_free(ix);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sets_of_every_shape),
        cmocka_unit_test(test_large_sets),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_search_with_a_set),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
