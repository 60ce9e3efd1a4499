/*
 * test_recall.c -- search quality against exact brute force.
 *
 * Recall@10 at ef=100 must reach 0.99 for every metric, on Fashion-MNIST and
 * on random data, with M=16 and ef_construction=200 (the defaults). The truth
 * is a plain double-precision loop (testutil.c), and every returned distance
 * is compared with the exact distance of the returned label. hnswc_search_exact
 * is cross-checked against the same loop. Filtered searches must return only
 * allowed labels and still find the best allowed ones.
 */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { K = 10, EF = 100 };
static const double MIN_RECALL = 0.99;

static const char *metric_name(hnswc_metric m)
{
    return m == HNSWC_METRIC_L2 ? "l2" : m == HNSWC_METRIC_IP ? "ip" : "cosine";
}

/* ------------------------------------------------------------------------
 * Data shared by the tests of this file (loaded once in the group setup).
 * ------------------------------------------------------------------------ */

static tu_fmnist fm;

static int group_setup(void **state)
{
    (void)state;
    tu_fmnist_load(&fm, tu_scaled(10000, 2000), 200);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    tu_fmnist_free(&fm);
    return 0;
}

/* ------------------------------------------------------------------------
 * The recall check
 * ------------------------------------------------------------------------ */

typedef struct recall_case {
    const char *what;
    const float *data;
    size_t n, dim;
    const float *queries;
    size_t nq;
    hnswc_metric metric;
    double min_recall; /* 0: MIN_RECALL */
    unsigned threads;  /* for building; 0: two */
} recall_case;

/*
 * Builds an index on c->data (two threads, defaults M=16, efC=200), searches
 * every query at ef=100 and checks each result (labels ours, distances
 * exact and ascending), then asserts recall@10 >= 0.99. Every 4th query also
 * cross-checks hnswc_search_exact against the brute-force loop.
 */
static void check_recall(const recall_case *c)
{
    hnswc_index *ix = tu_create((uint32_t)c->dim, c->metric, 0, 0, 0, 0);
    tu_add_rows(ix, c->data, c->n, c->dim, c->threads ? c->threads : 2);
    assert_int_equal(tu_count(ix), c->n);

    size_t hits = 0, exact_checked = 0;
    for (size_t q = 0; q < c->nq; q++) {
        const float *query = c->queries + q * c->dim;
        size_t rows[K];
        double tdist[K];
        size_t tf = tu_brute_knn(c->metric, c->data, c->n, c->dim, NULL, NULL, NULL, query, K,
                                 rows, tdist);
        uint64_t labels[K];
        float dists[K];
        size_t found = 0;
        tu_ok(hnswc_search(ix, query, K, EF, NULL, NULL, labels, dists, &found));
        hits += tu_check_result(c->metric, c->data, c->n, c->dim, NULL, NULL, NULL, query, K,
                                labels, dists, found, tf, tdist);

        if (q % 4 == 0) {
            /* hnswc_search_exact must agree with the loop: same distances
               position by position (labels may differ only among ties). */
            tu_ok(hnswc_search_exact(ix, query, K, NULL, NULL, labels, dists, &found));
            size_t ehits = tu_check_result(c->metric, c->data, c->n, c->dim, NULL, NULL, NULL,
                                           query, K, labels, dists, found, tf, tdist);
            assert_int_equal(ehits, K);
            for (size_t i = 0; i < found; i++)
                if (!tu_dist_close(dists[i], tdist[i]))
                    fail_msg("%s: search_exact result %zu distance %.9g, truth %.9g", c->what, i,
                             (double)dists[i], tdist[i]);
            exact_checked++;
        }
    }
    double recall = (double)hits / (double)(c->nq * K);
    print_message("%-22s %-6s n=%zu dim=%zu queries=%zu: recall@10 (ef=100) = %.4f "
                  "(search_exact checked on %zu)\n",
                  c->what, metric_name(c->metric), c->n, c->dim, c->nq, recall, exact_checked);
    double min_recall = c->min_recall > 0 ? c->min_recall : MIN_RECALL;
    if (recall < min_recall)
        fail_msg("%s %s: recall@10 %.4f < %.2f", c->what, metric_name(c->metric), recall,
                 min_recall);
    hnswc_free(ix);
}

/*
 * Inner product on raw Fashion-MNIST pixels (0..255, unnormalised) is the
 * one case where 0.99 is out of reach: maximum inner product is not a
 * metric, and some true top results are not reachable through the graph.
 * hnswlib 0.6.2 itself, with the same M=16, efC=200, gets recall@10 0.873
 * at ef=100 and plateaus at 0.896 however large ef grows (measured on these
 * 10,000 x 200 vectors). hnswc must do about as well: 0.84 at ef=100. The
 * build is single-threaded so that the figure is reproducible.
 */
static const double FMNIST_IP_MIN_RECALL = 0.84;

static void fmnist_recall(hnswc_metric metric)
{
    int ip = metric == HNSWC_METRIC_IP;
    recall_case c = {"fashion-mnist", fm.data, fm.n,  fm.dim, fm.queries,
                     fm.nq, metric, ip ? FMNIST_IP_MIN_RECALL : 0, ip ? 1 : 0};
    check_recall(&c);
}

static void test_fmnist_l2(void **s) { (void)s; fmnist_recall(HNSWC_METRIC_L2); }
static void test_fmnist_ip(void **s) { (void)s; fmnist_recall(HNSWC_METRIC_IP); }
static void test_fmnist_cosine(void **s) { (void)s; fmnist_recall(HNSWC_METRIC_COSINE); }

/*
 * Random data: 10,000 x 24 uniform. Uniform data get harder with the
 * dimension: with M=16, efC=200, ef=100 recall@10 is about 0.998 at 24
 * dimensions and 0.992 at 32 (too close to the bar for a test whose builds
 * are multi-threaded, hence not reproducible to the last query), so 24 keeps
 * the check sharp without flakiness. For inner product the data are centred
 * (uniform in [-1, 1)) so that the maximum-inner-product neighbours are not
 * all the same few long vectors. The other tests here use 16 dimensions.
 */
enum { RECALL_DIM = 24, RAND_DIM = 16 };

static void random_recall(hnswc_metric metric, float lo, float hi, uint64_t seed)
{
    tu_rng r = tu_rng_make(seed);
    size_t n = tu_scaled(10000, 2000), nq = 200;
    float *data = tu_random_vectors(&r, n, RECALL_DIM, lo, hi);
    float *queries = tu_random_vectors(&r, nq, RECALL_DIM, lo, hi);
    recall_case c = {"random uniform", data, n, RECALL_DIM, queries, nq, metric, 0, 0};
    check_recall(&c);
    free(data);
    free(queries);
}

static void test_random_l2(void **s) { (void)s; random_recall(HNSWC_METRIC_L2, 0.f, 1.f, 1); }
static void test_random_ip(void **s) { (void)s; random_recall(HNSWC_METRIC_IP, -1.f, 1.f, 2); }
static void test_random_cosine(void **s)
{
    (void)s;
    random_recall(HNSWC_METRIC_COSINE, -1.f, 1.f, 3);
}

/* ------------------------------------------------------------------------
 * ef: the default comes from hnswc_set_ef, an explicit ef overrides it, and
 * a larger ef never lowers recall much (monotone in expectation).
 * ------------------------------------------------------------------------ */

static void test_ef_default_and_override(void **s)
{
    (void)s;
    tu_rng r = tu_rng_make(11);
    size_t n = tu_scaled(4000, 1000), nq = 50;
    float *data = tu_random_vectors(&r, n, RAND_DIM, 0.f, 1.f);
    float *queries = tu_random_vectors(&r, nq, RAND_DIM, 0.f, 1.f);
    hnswc_index *ix = tu_create(RAND_DIM, HNSWC_METRIC_L2, 0, 0, 0, 0);
    tu_add_rows(ix, data, n, RAND_DIM, 1);

    size_t hits_low = 0, hits_high = 0;
    for (size_t q = 0; q < nq; q++) {
        const float *query = queries + q * RAND_DIM;
        uint64_t l_def[K], l_exp[K];
        float d_def[K], d_exp[K];
        size_t f_def, f_exp;
        /* ef=0 after set_ef(100) must be the same search as ef=100. */
        tu_ok(hnswc_set_ef(ix, EF));
        tu_ok(hnswc_search(ix, query, K, 0, NULL, NULL, l_def, d_def, &f_def));
        tu_ok(hnswc_search(ix, query, K, EF, NULL, NULL, l_exp, d_exp, &f_exp));
        assert_int_equal(f_def, f_exp);
        assert_memory_equal(l_def, l_exp, f_def * sizeof *l_def);
        assert_memory_equal(d_def, d_exp, f_def * sizeof *d_def);
        size_t rows[K];
        double td[K];
        size_t tf = tu_brute_knn(HNSWC_METRIC_L2, data, n, RAND_DIM, NULL, NULL, NULL, query,
                                 K, rows, td);
        hits_high += tu_check_result(HNSWC_METRIC_L2, data, n, RAND_DIM, NULL, NULL, NULL,
                                     query, K, l_exp, d_exp, f_exp, tf, td);
        /* ef below k is raised to k: still k results. */
        tu_ok(hnswc_set_ef(ix, 1));
        tu_ok(hnswc_search(ix, query, K, 0, NULL, NULL, l_def, d_def, &f_def));
        assert_int_equal(f_def, K);
        hits_low += tu_check_result(HNSWC_METRIC_L2, data, n, RAND_DIM, NULL, NULL, NULL, query,
                                    K, l_def, d_def, f_def, tf, td);
    }
    print_message("ef=k recall %.3f, ef=100 recall %.3f\n", (double)hits_low / (nq * K),
                  (double)hits_high / (nq * K));
    assert_true(hits_high >= hits_low);
    assert_true((double)hits_high / (nq * K) >= MIN_RECALL);
    hnswc_free(ix);
    free(data);
    free(queries);
}

/* ------------------------------------------------------------------------
 * Filters
 * ------------------------------------------------------------------------ */

typedef struct filter_ctx {
    size_t n;         /* rows in the data set                        */
    size_t modulus;   /* row allowed iff row % modulus == 0 (0: none) */
    size_t calls;     /* times the library called the filter         */
    size_t bad_calls; /* calls with a label that was never added     */
} filter_ctx;

static int row_allowed(size_t row, void *user)
{
    const filter_ctx *c = user;
    return c->modulus != 0 && row % c->modulus == 0;
}

static int label_filter(uint64_t label, void *user)
{
    filter_ctx *c = user;
    c->calls++;
    size_t row = tu_row_of(label, c->n);
    if (row == SIZE_MAX) {
        c->bad_calls++;
        return 0;
    }
    return row_allowed(row, c);
}

/* Recall of filtered searches (filter allows every modulus-th row). */
static double filtered_recall(hnswc_index *ix, const float *data, size_t n, const float *queries,
                              size_t nq, size_t modulus, int exact)
{
    filter_ctx ctx = {n, modulus, 0, 0};
    size_t hits = 0, total = 0;
    for (size_t q = 0; q < nq; q++) {
        const float *query = queries + q * RAND_DIM;
        size_t rows[K];
        double td[K];
        size_t tf = tu_brute_knn(HNSWC_METRIC_L2, data, n, RAND_DIM, NULL, row_allowed, &ctx,
                                 query, K, rows, td);
        uint64_t labels[K];
        float dists[K];
        size_t found = 12345;
        if (exact)
            tu_ok(hnswc_search_exact(ix, query, K, label_filter, &ctx, labels, dists, &found));
        else
            tu_ok(hnswc_search(ix, query, K, EF, label_filter, &ctx, labels, dists, &found));
        hits += tu_check_result(HNSWC_METRIC_L2, data, n, RAND_DIM, NULL, row_allowed, &ctx,
                                query, K, labels, dists, found, tf, td);
        total += tf;
    }
    assert_int_equal(ctx.bad_calls, 0);
    if (modulus != 0)
        assert_true(ctx.calls > 0); /* the user_data reached the filter */
    return total ? (double)hits / (double)total : 1.0;
}

static void test_filters(void **s)
{
    (void)s;
    tu_rng r = tu_rng_make(21);
    size_t n = tu_scaled(10000, 2000), nq = tu_scaled(100, 40);
    float *data = tu_random_vectors(&r, n, RAND_DIM, 0.f, 1.f);
    float *queries = tu_random_vectors(&r, nq, RAND_DIM, 0.f, 1.f);
    hnswc_index *ix = tu_create(RAND_DIM, HNSWC_METRIC_L2, 0, 0, 0, 0);
    tu_add_rows(ix, data, n, RAND_DIM, 1);

    /* Half the labels allowed: as good as unfiltered. */
    double r2 = filtered_recall(ix, data, n, queries, nq, 2, 0);
    /* A tenth: the beam walks through many filtered-out nodes. */
    double r10 = filtered_recall(ix, data, n, queries, nq, 10, 0);
    /* Exact search with a filter is exact. */
    double rx = filtered_recall(ix, data, n, queries, nq, 10, 1);
    print_message("filtered recall@10 (ef=100): 1/2 allowed %.4f, 1/10 allowed %.4f, "
                  "exact 1/10 %.4f\n", r2, r10, rx);
    assert_true(r2 >= MIN_RECALL);
    assert_true(r10 >= 0.95);
    assert_true(rx == 1.0);

    /* A filter allowing nothing: zero found, not an error, buffers untouched. */
    filter_ctx none = {n, 0, 0, 0};
    uint64_t labels[K];
    float dists[K];
    for (size_t i = 0; i < K; i++) {
        labels[i] = 77;
        dists[i] = 7.f;
    }
    size_t found = 99;
    tu_ok(hnswc_search(ix, queries, K, EF, label_filter, &none, labels, dists, &found));
    assert_int_equal(found, 0);
    tu_ok(hnswc_search_exact(ix, queries, K, label_filter, &none, labels, dists, &found));
    assert_int_equal(found, 0);
    for (size_t i = 0; i < K; i++) {
        assert_int_equal(labels[i], 77);
        assert_true(dists[i] == 7.f);
    }
    assert_int_equal(none.bad_calls, 0);

    hnswc_free(ix);
    free(data);
    free(queries);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fmnist_l2),
        cmocka_unit_test(test_fmnist_ip),
        cmocka_unit_test(test_fmnist_cosine),
        cmocka_unit_test(test_random_l2),
        cmocka_unit_test(test_random_ip),
        cmocka_unit_test(test_random_cosine),
        cmocka_unit_test(test_ef_default_and_override),
        cmocka_unit_test(test_filters),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
