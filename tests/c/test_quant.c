/*
 * test_quant.c -- the sq8 quantiser and its integer kernels (src/quant.c).
 *
 *   - every kernel set this CPU runs against an independent reference, for
 *     every dim 1..1024, at every byte offset 0..3, with random codes and
 *     with the extremes (all 0 against all 255: the largest terms);
 *   - no read outside [0, dim): rows sit at the very end of their
 *     allocation, so ASan (make test-c-asan) catches an over-read;
 *   - the largest dim hnswc accepts (65536) at the extremes does not
 *     overflow;
 *   - the quantiser: integer data in 0..255 (Fashion-MNIST's kind) is coded
 *     exactly (quant_sq8_reproduces says so, and not for a component off
 *     the grid, outside the range or a -0.0f); random data round-trips
 *     within half a step; values outside
 *     the trained range saturate and are counted; the code distances of L2
 *     and inner product match the decoded vectors' float distances;
 *     degenerate training (constant data, one row) gives a usable step;
 *   - the (SIMD) encoder against a plain lrintf reference, ties included.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "quant.h"

#define MAX_DIM 1024
#define MAX_SETS 8

static uint64_t rng_state = 0x0123456789abcdefull;

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* The reference, in 64-bit and written apart from the library's scalar set. */
static uint64_t ref_l2(const uint8_t *a, const uint8_t *b, size_t dim)
{
    uint64_t s = 0;
    for (size_t i = 0; i < dim; i++)
        s += (uint64_t)((int)a[i] - (int)b[i]) * (uint64_t)((int)a[i] - (int)b[i]);
    return s;
}

static uint64_t ref_dot(const uint8_t *a, const uint8_t *b, size_t dim)
{
    uint64_t s = 0;
    for (size_t i = 0; i < dim; i++)
        s += (uint64_t)a[i] * b[i];
    return s;
}

/* ------------------------------------------------------------------------
 * Kernels
 * ------------------------------------------------------------------------ */

static void test_sets_listed(void **state)
{
    (void)state;
    const quant_kernels *sets[MAX_SETS];
    size_t n = quant_kernels_available(sets, MAX_SETS);
    assert_true(n >= 1);
    assert_ptr_equal(sets[n - 1], quant_kernels_scalar());
    const quant_kernels *chosen = quant_kernels_get();
    int found = 0;
    for (size_t i = 0; i < n; i++)
        found |= sets[i] == chosen;
    assert_true(found);
}

static void check_all_dims(const quant_kernels *k, int extremes)
{
    uint8_t *bufa = malloc(MAX_DIM + 3), *bufb = malloc(MAX_DIM + 3);
    assert_non_null(bufa);
    assert_non_null(bufb);
    for (size_t dim = 1; dim <= MAX_DIM; dim++) {
        for (size_t off = 0; off < 4; off++) {
            /* b ends exactly at the end of its buffer; a is `off` bytes
             * earlier, so the two rows sit at every relative alignment */
            uint8_t *a = bufa + (MAX_DIM + 3) - dim - off;
            uint8_t *b = bufb + (MAX_DIM + 3) - dim;
            for (size_t i = 0; i < dim; i++) {
                uint64_t r = rng_next();
                a[i] = extremes ? 0 : (uint8_t)r;
                b[i] = extremes ? 255 : (uint8_t)(r >> 8);
            }
            uint32_t l2 = k->l2(a, b, dim), dot = k->dot(a, b, dim);
            if (l2 != ref_l2(a, b, dim) || dot != ref_dot(a, b, dim))
                fail_msg("%s: dim %zu offset %zu: l2 %u (want %llu), dot %u (want %llu)", k->name,
                         dim, off, l2, (unsigned long long)ref_l2(a, b, dim), dot,
                         (unsigned long long)ref_dot(a, b, dim));
            /* symmetric, and the extremes both ways round */
            assert_int_equal(k->l2(b, a, dim), l2);
            assert_int_equal(k->dot(b, a, dim), dot);
        }
    }
    free(bufa);
    free(bufb);
}

static void test_all_dims_random(void **state)
{
    (void)state;
    const quant_kernels *sets[MAX_SETS];
    size_t n = quant_kernels_available(sets, MAX_SETS);
    for (size_t s = 0; s < n; s++)
        check_all_dims(sets[s], 0);
}

static void test_all_dims_extremes(void **state)
{
    (void)state;
    const quant_kernels *sets[MAX_SETS];
    size_t n = quant_kernels_available(sets, MAX_SETS);
    for (size_t s = 0; s < n; s++)
        check_all_dims(sets[s], 1);
}

static void test_largest_dim(void **state)
{
    (void)state;
    const size_t dim = 65536;
    uint8_t *a = malloc(dim), *b = malloc(dim);
    assert_non_null(a);
    assert_non_null(b);
    memset(a, 0, dim);
    memset(b, 255, dim);
    const quant_kernels *sets[MAX_SETS];
    size_t n = quant_kernels_available(sets, MAX_SETS);
    for (size_t s = 0; s < n; s++) {
        assert_int_equal(sets[s]->l2(a, b, dim), (uint32_t)(65536ull * 65025ull));
        assert_int_equal(sets[s]->dot(b, b, dim), (uint32_t)(65536ull * 65025ull));
        assert_int_equal(sets[s]->dot(a, b, dim), 0);
    }
    free(a);
    free(b);
}

/* ------------------------------------------------------------------------
 * The quantiser
 * ------------------------------------------------------------------------ */

/* Fills x (n rows of d) with random integers 0..255, rows 0 and 1 all 0 and
 * all 255 (so every column spans the full range, like pixels), and trains q
 * on them: its step is then 1 and every code is exact. */
static void train_on_pixels(quant_sq8 *q, float *x, size_t n, size_t d)
{
    for (size_t i = 0; i < n * d; i++)
        x[i] = (float)(rng_next() % 256);
    for (size_t i = 0; i < d; i++) {
        x[i] = 0.0f;
        x[d + i] = 255.0f;
    }
    assert_true(quant_sq8_init(q, d, false));
    quant_sq8_train(q, x, n, d);
}

static void test_integer_data_exact(void **state)
{
    (void)state;
    enum { N = 50, D = 37 };
    float x[N * D], back[D];
    quant_sq8 q;
    train_on_pixels(&q, x, N, D);
    assert_true(q.trained);
    assert_true(q.step == 1.0f);
    uint8_t row[D + 3];
    for (size_t r = 0; r < N; r++) {
        assert_int_equal(quant_sq8_encode(&q, x + r * D, row), 0);
        quant_sq8_decode(&q, row, back);
        assert_memory_equal(back, x + r * D, sizeof back);
    }
    quant_sq8_free(&q);
}

/* quant_sq8_reproduces: true exactly when decoding gives the row's bits */
static void test_reproduces(void **state)
{
    (void)state;
    enum { N = 20, D = 33 };
    float x[N * D], y[D];
    quant_sq8 q;
    train_on_pixels(&q, x, N, D);
    uint8_t *row = malloc(quant_sq8_row_bytes(&q));
    assert_non_null(row);
    for (size_t r = 0; r < N; r++) {
        quant_sq8_encode(&q, x + r * D, row);
        assert_true(quant_sq8_reproduces(&q, row, x + r * D));
    }
    for (size_t i = 0; i < D; i++) { /* one component changed at a time */
        float bad[3] = {0.5f, 300.0f, -0.0f};
        for (size_t b = 0; b < 3; b++) {
            memcpy(y, x + 2 * D, sizeof y);
            y[i] = b == 2 ? (x[i] == 0.0f ? -0.0f : x[i] + 0.5f) : (b ? bad[b] : y[i] + bad[b]);
            quant_sq8_encode(&q, y, row);
            assert_false(quant_sq8_reproduces(&q, row, y));
        }
    }
    free(row);
    quant_sq8_free(&q);
}

static void test_random_round_trip_and_clipping(void **state)
{
    (void)state;
    enum { N = 200, D = 100 };
    float *x = malloc(sizeof(float) * N * D), back[D], y[D];
    assert_non_null(x);
    for (size_t i = 0; i < N * D; i++)
        x[i] = (float)((double)(rng_next() >> 11) * 0x1.0p-53 * 20.0 - 7.0) * (float)(1 + i % D % 3);
    quant_sq8 q;
    assert_true(quant_sq8_init(&q, D, false));
    quant_sq8_train(&q, x, N, D);
    uint8_t *row = malloc(quant_sq8_row_bytes(&q));
    assert_non_null(row);
    for (size_t r = 0; r < N; r++) {
        assert_int_equal(quant_sq8_encode(&q, x + r * D, row), 0);
        quant_sq8_decode(&q, row, back);
        for (size_t i = 0; i < D; i++)
            assert_true(fabsf(back[i] - x[r * D + i]) <= 0.5f * q.step * 1.0001f + 1e-6f);
    }
    /* outside the range: saturated, counted, still decodes to the edge */
    for (size_t i = 0; i < D; i++)
        y[i] = i % 2 ? 1e6f : -1e6f;
    y[0] = x[0];
    assert_int_equal(quant_sq8_encode(&q, y, row), D - 1);
    for (size_t i = 1; i < D; i++)
        assert_int_equal(row[i], i % 2 ? 255 : 0);
    /* infinities of an overflowing (x - lo) / step saturate too */
    for (size_t i = 0; i < D; i++)
        y[i] = i % 2 ? 3e38f : -3e38f;
    assert_int_equal(quant_sq8_encode(&q, y, row), D);
    free(row);
    free(x);
    quant_sq8_free(&q);
}

static void test_code_distances_match_decoded(void **state)
{
    (void)state;
    enum { N = 64, D = 53 };
    float *x = malloc(sizeof(float) * N * D);
    assert_non_null(x);
    for (size_t i = 0; i < N * D; i++)
        x[i] = (float)((double)(rng_next() >> 11) * 0x1.0p-53 * 2.0 - 0.3);
    const quant_kernels *k = quant_kernels_get();
    for (int ip = 0; ip < 2; ip++) {
        quant_sq8 q;
        assert_true(quant_sq8_init(&q, D, ip));
        quant_sq8_train(&q, x, N, D);
        size_t rb = quant_sq8_row_bytes(&q);
        assert_int_equal(rb, ip ? 56 + 4 : 56);
        uint8_t *rows = malloc(rb * N);
        assert_non_null(rows);
        for (size_t r = 0; r < N; r++)
            quant_sq8_encode(&q, x + r * D, rows + r * rb);
        float da[D], db[D];
        for (size_t r = 0; r + 1 < N; r++) {
            quant_sq8_decode(&q, rows + r * rb, da);
            quant_sq8_decode(&q, rows + (r + 1) * rb, db);
            double ref = 0.0, scale = 0.0;
            for (size_t i = 0; i < D; i++) {
                ref += ip ? (double)da[i] * db[i] : ((double)da[i] - db[i]) * ((double)da[i] - db[i]);
                scale += fabs((double)da[i] * db[i]) + (double)da[i] * da[i] + (double)db[i] * db[i];
            }
            if (ip)
                ref = 1.0 - ref;
            float got = ip ? quant_sq8_ip(&q, k, rows + r * rb, rows + (r + 1) * rb)
                           : quant_sq8_l2(&q, k, rows + r * rb, rows + (r + 1) * rb);
            if (fabs(got - ref) > 1e-5 * (scale + 1.0))
                fail_msg("%s row %zu: %g vs decoded %g", ip ? "ip" : "l2", r, got, ref);
        }
        free(rows);
        quant_sq8_free(&q);
    }
    free(x);
}

/* The encoder against the rule it implements, written the plain way:
 * lrintf (ties to even) of (x - lo) / step, saturated to 0..255, counted
 * when below -0.5 or above 255.5; the bias summed in double. Every dim
 * 1..100 (the SIMD body and every tail length), values placed on exact
 * ties (k + 0.5 steps), just inside and outside the range, and far
 * outside (an overflowing x - lo). */
static uint32_t ref_encode(const quant_sq8 *q, const float *x, uint8_t *row, float *bias)
{
    uint32_t clipped = 0;
    double b = 0.0;
    for (uint32_t i = 0; i < q->dim; i++) {
        float t = (x[i] - q->lo[i]) * q->inv_step;
        long r = t < -0.5f ? (clipped++, 0) : t > 255.5f ? (clipped++, 255) : lrintf(t);
        row[i] = (uint8_t)(r < 0 ? 0 : r > 255 ? 255 : r);
        b += (double)q->lo[i] * row[i];
    }
    *bias = (float)(b * q->step);
    return clipped;
}

static void test_encode_matches_reference(void **state)
{
    (void)state;
    enum { MAXD = 100 };
    float x[MAXD], lo[MAXD];
    uint8_t want[MAXD], got[MAXD + 8];
    for (uint32_t dim = 1; dim <= MAXD; dim++) {
        for (int ip = 0; ip < 2; ip++) {
            quant_sq8 q;
            assert_true(quant_sq8_init(&q, dim, ip));
            for (uint32_t i = 0; i < dim; i++)
                lo[i] = (float)((int)(rng_next() % 200) - 100) * 0.25f;
            assert_true(quant_sq8_set(&q, 0.5f, lo));
            for (int trial = 0; trial < 8; trial++) {
                for (uint32_t i = 0; i < dim; i++) {
                    uint64_t r = rng_next();
                    float k = (float)(r % 300) - 20.0f; /* steps: -20..279 */
                    switch ((r >> 16) % 6) {
                    case 0: x[i] = lo[i] + (k + 0.5f) * q.step; break;  /* a tie */
                    case 1: x[i] = lo[i] + k * q.step; break;           /* exact */
                    case 2: x[i] = lo[i] + (k + 0.3f) * q.step; break;
                    case 3: x[i] = lo[i] + (r >> 32 & 1 ? 255.5f : -0.5f) * q.step; break;
                    case 4: x[i] = r >> 32 & 1 ? 3e38f : -3e38f; break; /* overflows */
                    default: x[i] = lo[i] + (float)((double)(r >> 11) * 0x1.0p-53 * 256.0); break;
                    }
                }
                float want_bias;
                uint32_t want_clip = ref_encode(&q, x, want, &want_bias);
                memset(got, 0xa5, sizeof got);
                assert_int_equal(quant_sq8_encode(&q, x, got), want_clip);
                assert_memory_equal(got, want, dim);
                for (uint32_t i = dim; i < ((dim + 3u) & ~3u); i++)
                    assert_int_equal(got[i], 0); /* padding zeroed */
                if (ip) {
                    float b = quant_sq8_bias(&q, got);
                    assert_memory_equal(&b, &want_bias, sizeof b);
                }
            }
            quant_sq8_free(&q);
        }
    }
}

static void test_degenerate_training(void **state)
{
    (void)state;
    float x[3 * 4] = {2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2};
    quant_sq8 q;
    assert_true(quant_sq8_init(&q, 4, false));
    quant_sq8_train(&q, x, 3, 4); /* constant data */
    assert_true(q.step > 0.0f && isfinite(q.step));
    uint8_t row[4];
    assert_int_equal(quant_sq8_encode(&q, x, row), 0);
    quant_sq8_train(&q, x, 1, 4); /* a single row */
    assert_true(q.step > 0.0f && isfinite(q.step));
    float lo[4] = {0, 0, 0, 0};
    assert_false(quant_sq8_set(&q, 0.0f, lo));
    assert_false(quant_sq8_set(&q, NAN, lo));
    lo[2] = INFINITY;
    assert_false(quant_sq8_set(&q, 1.0f, lo));
    lo[2] = 0;
    assert_true(quant_sq8_set(&q, 0.5f, lo));
    assert_true(q.inv_step == 2.0f);
    quant_sq8_free(&q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sets_listed),
        cmocka_unit_test(test_all_dims_random),
        cmocka_unit_test(test_all_dims_extremes),
        cmocka_unit_test(test_largest_dim),
        cmocka_unit_test(test_integer_data_exact),
        cmocka_unit_test(test_reproduces),
        cmocka_unit_test(test_random_round_trip_and_clipping),
        cmocka_unit_test(test_code_distances_match_decoded),
        cmocka_unit_test(test_degenerate_training),
        cmocka_unit_test(test_encode_matches_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
