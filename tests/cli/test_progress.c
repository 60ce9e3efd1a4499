/*
 * test_progress.c -- the estimate of the time left (cli/progress.c), fed
 * synthetic and recorded progress histories: it must be exact for constant
 * and logarithmically growing costs, close on a real build, and never the
 * 2-5x underestimate that "units left / mean rate so far" gave; the
 * history kept by a progress must stay bounded without losing the estimate.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "progress.h"

/* The estimate the tool used to make: units left / mean rate so far. */
static double naive_eta(const progress_sample *s, size_t n, double total)
{
    const progress_sample *last = &s[n - 1];
    return (total - last->done) * last->t / last->done;
}

/* A history of `steps` equal steps to `total` units, each taking the
 * integral of cost(u) over it (midpoint rule on 64 sub-steps). */
static progress_sample *history(double total, size_t steps, double (*cost)(double))
{
    progress_sample *s = malloc((steps + 1) * sizeof *s);
    assert_non_null(s);
    s[0] = (progress_sample){0, 0};
    double t = 0, h = total / (double)steps / 64;
    for (size_t i = 1; i <= steps; i++) {
        double u0 = total * (double)(i - 1) / (double)steps;
        for (int j = 0; j < 64; j++)
            t += cost(u0 + (j + 0.5) * h) * h;
        s[i] = (progress_sample){total * (double)i / (double)steps, t};
    }
    return s;
}

static double constant_cost(double u)
{
    (void)u;
    return 2e-3;
}

static double log_cost(double u)
{
    return 1e-4 * (1 + 0.8 * log(1 + u)); /* HNSW's regime: growth slowing down */
}

static double linear_cost(double u)
{
    return 1e-6 * u; /* a graph small enough that every insert visits all nodes */
}

static double shrinking_cost(double u)
{
    return 1e-3 / (1 + u / 1000); /* a warm-up: the estimate may not extrapolate it */
}

/* ------------------------------------------------------------------------
 * Synthetic histories
 * ------------------------------------------------------------------------ */

static void test_constant_cost_is_exact(void **state)
{
    (void)state;
    progress_sample *s = history(10000, 100, constant_cost);
    for (size_t k = 3; k < 100; k++) {
        double want = s[100].t - s[k].t;
        assert_float_equal(progress_eta(s, k + 1, 10000), want, 1e-9 * s[100].t);
    }
    free(s);
}

static void test_logarithmic_growth(void **state)
{
    (void)state;
    enum { STEPS = 100 };
    const double total = 1e6;
    progress_sample *s = history(total, STEPS, log_cost);
    for (size_t k = 5; k < STEPS; k++) {
        double truth = s[STEPS].t - s[k].t;
        double eta = progress_eta(s, k + 1, total);
        /* the model's own shape: within 2% from 5% of the way on */
        assert_true(fabs(eta / truth - 1) < 0.02);
    }
    free(s);
}

static void test_linear_growth_is_underestimated_less_than_by_the_mean_rate(void **state)
{
    (void)state;
    /* Cost growing linearly all the way (a build's first few percent at
     * most): the logarithmic model cannot follow it and stays low (0.32x of
     * the truth at 10%, 0.89x at 90%), but it never overestimates, and it
     * is at least 1.8 times closer than the mean rate (0.09x at 10%). */
    enum { STEPS = 100 };
    progress_sample *s = history(1e5, STEPS, linear_cost);
    for (size_t k = 10; k < STEPS; k += 10) {
        double truth = s[STEPS].t - s[k].t;
        double eta = progress_eta(s, k + 1, 1e5);
        double naive = naive_eta(s, k + 1, 1e5);
        assert_true(eta <= truth * 1.0001);
        assert_true(eta > 1.8 * naive);
        assert_true(eta / truth > 0.3);
    }
    free(s);
}

static void test_falling_cost_is_taken_as_constant(void **state)
{
    (void)state;
    progress_sample *s = history(1e5, 100, shrinking_cost);
    for (size_t k = 10; k < 100; k += 10) {
        double x = s[k].done;
        double recent = (s[k].t - s[k / 2].t) / (x - s[k / 2].done);
        assert_float_equal(progress_eta(s, k + 1, 1e5), recent * (1e5 - x),
                           1e-9 * s[100].t);
    }
    free(s);
}

static void test_edge_cases(void **state)
{
    (void)state;
    progress_sample s[5] = {{0, 0}, {10, 1}, {20, 2}, {30, 3}, {40, 4}};
    assert_true(progress_eta(s, 0, 100) < 0);      /* nothing known */
    assert_true(progress_eta(s, 3, 100) < 0);      /* too few samples */
    assert_float_equal(progress_eta(s, 5, 40), 0, 0);
    assert_float_equal(progress_eta(s, 5, 30), 0, 0); /* past the total */
    assert_float_equal(progress_eta(s, 5, 100), 6.0, 1e-9);
    progress_sample z[4] = {{0, 0}, {10, 0}, {20, 0}, {30, 0}};
    assert_true(progress_eta(z, 4, 100) < 0);      /* no time measured yet */
    assert_float_equal(progress_recent_rate(s, 5), 10.0, 1e-9);
    assert_float_equal(progress_recent_rate(s, 1), 0, 0);
}

/* ------------------------------------------------------------------------
 * A recorded history: `hnswc`'s library building Fashion-MNIST (60,000 x
 * 784, M 16, ef_construction 200, 2 threads) in chunks of 600, CPU seconds
 * at the end of each chunk (measured on the team machine at b227555).
 * ------------------------------------------------------------------------ */

static const double fmnist_cpu_seconds[100] = {
    0.060,  0.165,  0.269,  0.421,  0.605,  0.817,  1.044,  1.300,  1.529,  1.778,
    2.038,  2.330,  2.625,  2.946,  3.266,  3.592,  3.885,  4.227,  4.627,  5.031,
    5.420,  5.799,  6.149,  6.536,  6.947,  7.352,  7.780,  8.219,  8.646,  9.092,
    9.550,  10.027, 10.482, 10.966, 11.449, 11.934, 12.431, 12.917, 13.422, 13.931,
    14.443, 14.933, 15.437, 15.944, 16.446, 16.983, 17.508, 18.084, 18.629, 19.147,
    19.682, 20.237, 20.787, 21.352, 21.912, 22.451, 22.988, 23.540, 24.061, 24.596,
    25.099, 25.605, 26.030, 26.483, 26.952, 27.457, 27.991, 28.526, 29.102, 29.676,
    30.252, 30.863, 31.446, 32.021, 32.572, 33.118, 33.680, 34.274, 34.853, 35.434,
    36.009, 36.578, 37.161, 37.783, 38.393, 39.009, 39.634, 40.256, 40.879, 41.481,
    42.087, 42.732, 43.365, 43.945, 44.547, 45.166, 45.798, 46.461, 47.086, 47.760,
};

static void test_recorded_fashion_mnist_build(void **state)
{
    (void)state;
    progress_sample s[101] = {{0, 0}};
    for (size_t i = 0; i < 100; i++)
        s[i + 1] = (progress_sample){600.0 * (double)(i + 1), fmnist_cpu_seconds[i]};
    double end = s[100].t;
    double lo = 1e9, hi = 0, naive_hi = 0;
    for (size_t k = 5; k <= 95; k++) {
        double truth = end - s[k].t;
        double r = progress_eta(s, k + 1, 60000) / truth;
        lo = r < lo ? r : lo;
        hi = r > hi ? r : hi;
        double nr = naive_eta(s, k + 1, 60000) / truth;
        naive_hi = nr > naive_hi ? nr : naive_hi;
        if (k >= 20)
            assert_true(r > 0.9 && r < 1.12);
    }
    assert_true(lo > 0.6 && hi < 1.12);
    assert_true(naive_hi < 0.75); /* what the tool used to print */
}

/* ------------------------------------------------------------------------
 * The history a progress keeps
 * ------------------------------------------------------------------------ */

static void test_history_stays_bounded_and_keeps_the_estimate(void **state)
{
    (void)state;
    enum { STEPS = 20000 };
    const double total = 2e6;
    progress_sample *full = history(total, STEPS, log_cost);
    progress *p = malloc(sizeof *p);
    assert_non_null(p);
    progress_start(p, "test", "units", (uint64_t)total, 0);
    for (size_t i = 1; i <= STEPS / 2; i++) {
        progress_record(p, (uint64_t)full[i].done, full[i].t);
        progress_record(p, (uint64_t)full[i].done, full[i].t + 1); /* no progress: ignored */
        assert_true(p->n_hist <= PROGRESS_HISTORY);
        /* the newest sample is always there: the estimate sees "now" */
        assert_float_equal(p->hist[p->n_hist - 1].done, full[i].done, 0);
    }
    /* evenly thinned: no gap between kept samples is much wider than the
     * mean one (the oldest part is not lost) */
    double mean_gap = p->hist[p->n_hist - 1].done / (double)(p->n_hist - 1);
    for (size_t i = 1; i < p->n_hist; i++)
        assert_true(p->hist[i].done - p->hist[i - 1].done < 2.5 * mean_gap);
    assert_true(p->n_hist > PROGRESS_HISTORY / 2 - 1);
    assert_float_equal(p->hist[0].done, 0, 0); /* the start is never dropped */
    assert_float_equal(p->hist[p->n_hist - 1].done, full[STEPS / 2].done, 0);
    for (size_t i = 1; i < p->n_hist; i++)
        assert_true(p->hist[i].done > p->hist[i - 1].done && p->hist[i].t >= p->hist[i - 1].t);
    double kept = progress_eta(p->hist, p->n_hist, total);
    double all = progress_eta(full, STEPS / 2 + 1, total);
    assert_true(fabs(kept / all - 1) < 0.01);
    free(p);
    free(full);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_constant_cost_is_exact),
        cmocka_unit_test(test_logarithmic_growth),
        cmocka_unit_test(test_linear_growth_is_underestimated_less_than_by_the_mean_rate),
        cmocka_unit_test(test_falling_cost_is_taken_as_constant),
        cmocka_unit_test(test_edge_cases),
        cmocka_unit_test(test_recorded_fashion_mnist_build),
        cmocka_unit_test(test_history_stays_bounded_and_keeps_the_estimate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
