/*
 * test_range.c -- range search (hnswc_search_range): every element within
 * the radius, closest first, against brute force.
 *
 * Radii are put halfway between the k-th and (k+1)-th exact distances of a
 * query (k from 5 to 60), so the exact set is the k nearest and no element
 * sits on the boundary, where float and double could disagree.
 */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { DIM = 16 };

/* Exact distances of every row to q, sorted ascending, into d (n). */
static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* A radius holding exactly the k nearest non-gone rows (see above). */
static float radius_for(hnswc_metric m, const float *data, size_t n, const unsigned char *gone,
                        const float *q, size_t k, double *sorted)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        if (!gone || !gone[i])
            sorted[c++] = tu_exact_dist(m, data + i * DIM, q, DIM);
    qsort(sorted, c, sizeof *sorted, cmp_double);
    if (k >= c)
        return (float)(sorted[c - 1] + 1.0);
    return (float)((sorted[k - 1] + sorted[k]) / 2);
}

/* Checks a range result: labels ours, not gone, distinct, within radius
 * with exact distances, ascending. Returns how many of the `want` true
 * members were found. */
static size_t check_range(hnswc_metric m, const float *data, size_t n, const unsigned char *gone,
                          const float *q, float radius, const hnswc_range_result *res)
{
    unsigned char *seen = tu_xcalloc(n, 1);
    for (size_t i = 0; i < res->count; i++) {
        size_t row = tu_row_of(res->labels[i], n);
        if (row == SIZE_MAX || (gone && gone[row]) || seen[row])
            fail_msg("range result %zu: label %llu unknown, gone or repeated", i,
                     (unsigned long long)res->labels[i]);
        seen[row] = 1;
        double exact = tu_exact_dist(m, data + row * DIM, q, DIM);
        if (!tu_dist_close(res->distances[i], exact))
            fail_msg("range result %zu: distance %.7g, exact %.7g", i, (double)res->distances[i],
                     exact);
        if (res->distances[i] > radius)
            fail_msg("range result %zu: distance %.7g beyond radius %.7g", i,
                     (double)res->distances[i], (double)radius);
        if (i > 0 && res->distances[i] < res->distances[i - 1])
            fail_msg("range results out of order at %zu", i);
    }
    free(seen);
    return res->count;
}

/*
 * L2 and cosine: at ef >= the count the answer is exactly the true set; at
 * ef 32 and 64 nearly all of it (the recall is printed), never anything
 * outside the radius.
 */
static void test_range_vs_brute_force(void **s)
{
    (void)s;
    const hnswc_metric metrics[2] = {HNSWC_METRIC_L2, HNSWC_METRIC_COSINE};
    for (int mi = 0; mi < 2; mi++) {
        hnswc_metric m = metrics[mi];
        tu_rng r = tu_rng_make(200 + (uint64_t)mi);
        size_t n = tu_scaled(4000, 1500), nq = 60;
        float *data = tu_random_vectors(&r, n, DIM, -1.f, 1.f);
        double *sorted = tu_xmalloc(n * sizeof *sorted);
        hnswc_index *ix = tu_create(DIM, m, 0, 0, 0, 0);
        tu_add_rows(ix, data, n, DIM, 2);
        hnswc_range_result res = {0};
        const size_t efs[3] = {32, 64, 0};
        for (int e = 0; e < 3; e++) {
            size_t ef = efs[e] ? efs[e] : n;
            size_t found = 0, want = 0, exact_sets = 0;
            tu_rng qr = tu_rng_make(300);
            for (size_t t = 0; t < nq; t++) {
                float q[DIM];
                for (int i = 0; i < DIM; i++)
                    q[i] = (float)tu_uniform(&qr) * 2.f - 1.f;
                size_t k = 5 + t % 56;
                float radius = radius_for(m, data, n, NULL, q, k, sorted);
                tu_ok(hnswc_search_range(ix, q, radius, ef, NULL, NULL, &res));
                size_t f = check_range(m, data, n, NULL, q, radius, &res);
                found += f;
                want += k;
                exact_sets += f == k;
            }
            double recall = (double)found / (double)want;
            print_message("metric %d, ef %zu: range recall %.4f, %zu of %zu sets exact\n", (int)m,
                          ef, recall, exact_sets, nq);
            if (ef >= n)
                assert_int_equal(exact_sets, nq);
            else
                assert_true(recall >= (ef >= 64 ? 0.97 : 0.9));
        }
        hnswc_range_result_free(&res);
        assert_null(res.labels);
        free(sorted);
        free(data);
        hnswc_free(ix);
    }
}

/* Filters, tombstones and removed elements are never returned, but the ball
 * is still found through them. */
static int odd_rows(uint64_t label, void *user)
{
    size_t row = tu_row_of(label, *(size_t *)user);
    return row != SIZE_MAX && row % 2 == 1;
}

static void test_range_filter_and_gone(void **s)
{
    (void)s;
    tu_rng r = tu_rng_make(210);
    size_t n = tu_scaled(3000, 1200);
    float *data = tu_random_vectors(&r, n, DIM, -1.f, 1.f);
    double *sorted = tu_xmalloc(n * sizeof *sorted);
    unsigned char *gone = tu_xcalloc(n, 1);
    hnswc_index *ix = tu_create(DIM, HNSWC_METRIC_L2, 0, 0, 0, 0);
    tu_add_rows(ix, data, n, DIM, 2);
    uint64_t *labels = tu_xmalloc(n * sizeof *labels);
    size_t k = 0;
    for (size_t row = 0; row < n; row++) {
        double u = tu_uniform(&r);
        if (u < 0.2) {
            gone[row] = 1;
            labels[k++] = tu_label_of(row);
        } else if (u < 0.3) {
            gone[row] = 1;
            tu_ok(hnswc_mark_deleted(ix, tu_label_of(row)));
        }
    }
    tu_ok(hnswc_remove_batch(ix, labels, k, 2));
    hnswc_range_result res = {0};
    size_t found = 0, want = 0;
    for (int t = 0; t < 50; t++) {
        float q[DIM];
        for (int i = 0; i < DIM; i++)
            q[i] = (float)tu_uniform(&r) * 2.f - 1.f;
        float radius = radius_for(HNSWC_METRIC_L2, data, n, gone, q, 40, sorted);
        tu_ok(hnswc_search_range(ix, q, radius, 128, NULL, NULL, &res));
        found += check_range(HNSWC_METRIC_L2, data, n, gone, q, radius, &res);
        want += 40;
        /* with the filter: only odd rows, all of them inside the ball */
        tu_ok(hnswc_search_range(ix, q, radius, 128, odd_rows, &n, &res));
        check_range(HNSWC_METRIC_L2, data, n, gone, q, radius, &res);
        for (size_t i = 0; i < res.count; i++)
            assert_true(tu_row_of(res.labels[i], n) % 2 == 1);
    }
    assert_true((double)found / (double)want >= 0.97);
    hnswc_range_result_free(&res);
    free(labels);
    free(gone);
    free(sorted);
    free(data);
    hnswc_free(ix);
}

/* Edge radii: 0 finds exact duplicates only; a huge radius everything. */
static void test_range_edges(void **s)
{
    (void)s;
    tu_rng r = tu_rng_make(220);
    size_t n = 500;
    float *data = tu_random_vectors(&r, n, DIM, -1.f, 1.f);
    memcpy(data + 7 * DIM, data + 3 * DIM, DIM * sizeof *data); /* a duplicate */
    hnswc_index *ix = tu_create(DIM, HNSWC_METRIC_L2, 0, 0, 0, 0);
    hnswc_range_result res = {0};
    tu_ok(hnswc_search_range(ix, data, 1.f, 0, NULL, NULL, &res)); /* empty index */
    assert_int_equal(res.count, 0);
    tu_add_rows(ix, data, n, DIM, 1);
    tu_ok(hnswc_search_range(ix, data + 3 * DIM, 0.f, 0, NULL, NULL, &res));
    assert_int_equal(res.count, 2);
    assert_true(res.distances[0] == 0.f && res.distances[1] == 0.f);
    tu_ok(hnswc_search_range(ix, data, 1e9f, 16, NULL, NULL, &res));
    assert_int_equal(res.count, n);
    check_range(HNSWC_METRIC_L2, data, n, NULL, data, 1e9f, &res);
    /* a call that finds less reuses the buffers */
    uint64_t *before = res.labels;
    tu_ok(hnswc_search_range(ix, data, 0.f, 16, NULL, NULL, &res));
    assert_int_equal(res.count, 1);
    assert_ptr_equal(res.labels, before);
    hnswc_range_result_free(&res);
    hnswc_range_result_free(NULL);
    free(data);
    hnswc_free(ix);
}

static void test_range_bad_input(void **s)
{
    (void)s;
    hnswc_index *ix = tu_create(DIM, HNSWC_METRIC_L2, 0, 0, 0, 0);
    float q[DIM] = {0};
    hnswc_range_result res = {0};
    tu_expect_err(hnswc_search_range(NULL, q, 1.f, 0, NULL, NULL, &res), HNSWC_ERR_NULL);
    tu_expect_err(hnswc_search_range(ix, NULL, 1.f, 0, NULL, NULL, &res), HNSWC_ERR_NULL);
    tu_expect_err(hnswc_search_range(ix, q, 1.f, 0, NULL, NULL, NULL), HNSWC_ERR_NULL);
    tu_expect_err(hnswc_search_range(ix, q, -1.f, 0, NULL, NULL, &res), HNSWC_ERR_INVALID);
    tu_expect_err(hnswc_search_range(ix, q, NAN, 0, NULL, NULL, &res), HNSWC_ERR_INVALID);
    tu_expect_err(hnswc_search_range(ix, q, 1.f, (size_t)1 << 40, NULL, NULL, &res),
                  HNSWC_ERR_INVALID);
    q[3] = INFINITY;
    tu_expect_err(hnswc_search_range(ix, q, 1.f, 0, NULL, NULL, &res), HNSWC_ERR_NONFINITE);
    q[3] = 0;
    hnswc_range_result junk = {NULL, NULL, 5, 0};
    tu_expect_err(hnswc_search_range(ix, q, 1.f, 0, NULL, NULL, &junk), HNSWC_ERR_INVALID);
    assert_int_equal(junk.count, 0);
    tu_ok(hnswc_search_range(ix, q, INFINITY, 0, NULL, NULL, &res)); /* everything: none */
    assert_int_equal(res.count, 0);
    hnswc_range_result_free(&res);
    hnswc_free(ix);
}

/* A flat index answers exactly, ties by row, with filters and marks. */
static void test_range_flat(void **s)
{
    (void)s;
    const hnswc_metric metrics[2] = {HNSWC_METRIC_L2, HNSWC_METRIC_COSINE};
    for (int mi = 0; mi < 2; mi++) {
        hnswc_metric m = metrics[mi];
        tu_rng r = tu_rng_make(230 + (uint64_t)mi);
        size_t n = 800;
        float *data = tu_random_vectors(&r, n, DIM, -1.f, 1.f);
        double *sorted = tu_xmalloc(n * sizeof *sorted);
        unsigned char *gone = tu_xcalloc(n, 1);
        hnswc_options o = {0};
        o.dim = DIM;
        o.metric = m;
        o.kind = HNSWC_KIND_FLAT;
        hnswc_index *ix;
        tu_ok(hnswc_create(&o, &ix));
        tu_add_rows(ix, data, n, DIM, 1);
        for (size_t row = 0; row < n; row += 9) {
            tu_ok(hnswc_mark_deleted(ix, tu_label_of(row)));
            gone[row] = 1;
        }
        hnswc_range_result res = {0};
        for (int t = 0; t < 20; t++) {
            float q[DIM];
            for (int i = 0; i < DIM; i++)
                q[i] = (float)tu_uniform(&r) * 2.f - 1.f;
            size_t k = 3 + (size_t)t * 4;
            float radius = radius_for(m, data, n, gone, q, k, sorted);
            tu_ok(hnswc_search_range(ix, q, radius, 0, NULL, NULL, &res));
            assert_int_equal(check_range(m, data, n, gone, q, radius, &res), k);
            tu_ok(hnswc_search_range(ix, q, radius, 0, odd_rows, &n, &res));
            check_range(m, data, n, gone, q, radius, &res);
            for (size_t i = 0; i < res.count; i++)
                assert_true(tu_row_of(res.labels[i], n) % 2 == 1);
        }
        hnswc_range_result_free(&res);
        free(gone);
        free(sorted);
        free(data);
        hnswc_free(ix);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_range_vs_brute_force),
        cmocka_unit_test(test_range_filter_and_gone),
        cmocka_unit_test(test_range_edges),
        cmocka_unit_test(test_range_bad_input),
        cmocka_unit_test(test_range_flat),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
