/*
 * test_distance.c -- the distance kernels (src/distance.c) against an
 * independent reference, for every kernel set this CPU can run.
 *
 *   - hand-computed cases, exact;
 *   - every dim 1..1024, at unaligned offsets, with integer-valued data whose
 *     sums are exact in float in any order: every set must agree with the
 *     reference bit for bit, so one dropped, repeated or stray element fails;
 *   - every dim 1..1024 with random real data, within a proven error bound;
 *   - no read outside [0, dim): the vectors sit at the very end of their
 *     allocation (ASan catches an over-read) and between NaN guards (a read
 *     of a guard turns the result into NaN, caught without ASan);
 *   - hnswc_normalize: hnswlib's formula bit for bit, unit norm, zero vector
 *     left alone;
 *   - dispatch: the list of sets, first use from several threads at once, and
 *     HNSWC_SIMD: checked in this process against the environment it was
 *     started with, and by re-running this binary (/proc/self/exe) with each
 *     value of HNSWC_SIMD.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "distance.h"
#include "hnswc.h"

#define MAX_DIM 1024
#define MAX_SETS 8
#define GUARD 16 /* NaN floats around a vector in the guarded layout */

/* ------------------------------------------------------------------------
 * Helpers: a fixed-seed generator, the reference, vector placement
 * ------------------------------------------------------------------------ */

/* splitmix64: deterministic across platforms and libcs, unlike rand(). */
static uint64_t rng_state = 0x5eed5eed12345678ull;

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [-1, 1). */
static float rng_unit(void)
{
    return (float)((double)(rng_next() >> 11) * 0x1.0p-53 * 2.0 - 1.0);
}

/*
 * The reference: one sequential loop in double, written independently of
 * the library's scalar set (which is tested against it like the others).
 * sumabs receives sum |term|, the scale of the rounding error bound.
 */
static double ref_l2(const float *a, const float *b, size_t dim, double *sumabs)
{
    double s = 0.0;
    for (size_t i = 0; i < dim; i++) {
        double d = (double)a[i] - (double)b[i];
        s += d * d;
    }
    if (sumabs)
        *sumabs = s;
    return s;
}

static double ref_dot(const float *a, const float *b, size_t dim, double *sumabs)
{
    double s = 0.0, abs_sum = 0.0;
    for (size_t i = 0; i < dim; i++) {
        double p = (double)a[i] * (double)b[i];
        s += p;
        abs_sum += fabs(p);
    }
    if (sumabs)
        *sumabs = abs_sum;
    return s;
}

/*
 * A vector placed for an out-of-bounds check. `guarded` = 0: the vector ends
 * exactly at the end of a malloc'd block, so ASan reports any read past it;
 * `off` NaNs come before it. `guarded` = 1: GUARD NaNs after it as well, so a
 * kernel that reads and uses a float outside the vector returns NaN.
 */
typedef struct placed {
    float *block;
    float *v;
} placed;

static placed place(const float *src, size_t dim, size_t off, int guarded)
{
    size_t after = guarded ? GUARD : 0;
    placed p;
    p.block = malloc((off + dim + after) * sizeof(float));
    assert_non_null(p.block);
    for (size_t i = 0; i < off + dim + after; i++)
        p.block[i] = NAN;
    p.v = p.block + off;
    memcpy(p.v, src, dim * sizeof(float));
    return p;
}

static size_t kernel_sets(const hnswc_kernels **sets)
{
    size_t n = hnswc_kernels_available(sets, MAX_SETS);
    assert_true(n >= 1);
    return n;
}

/* ------------------------------------------------------------------------
 * Dispatch
 * ------------------------------------------------------------------------ */

static void *first_use(void *arg)
{
    *(const hnswc_kernels **)arg = hnswc_kernels_get();
    return NULL;
}

/*
 * Runs first in the program, so that the threads race to make the choice:
 * they must all get the same set (and TSan must see no race).
 */
static void test_first_use_from_threads(void **state)
{
    (void)state;
    enum { T = 4 };
    pthread_t th[T];
    const hnswc_kernels *got[T];
    for (int i = 0; i < T; i++)
        assert_int_equal(pthread_create(&th[i], NULL, first_use, &got[i]), 0);
    for (int i = 0; i < T; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    for (int i = 0; i < T; i++)
        assert_ptr_equal(got[i], hnswc_kernels_get());
    assert_string_equal(hnswc_simd_name(), hnswc_kernels_get()->name);
}

/* Rank of a set name, best highest; -1 for an unknown name. */
static int rank_of(const char *name)
{
    static const char *const order[] = {"scalar", "sse2", "neon", "avx2", "avx512"};
    for (int i = 0; i < 5; i++)
        if (strcmp(name, order[i]) == 0)
            return i;
    return -1;
}

static void test_available_list(void **state)
{
    (void)state;
    const hnswc_kernels *sets[MAX_SETS];
    size_t n = kernel_sets(sets);

    assert_ptr_equal(sets[n - 1], hnswc_kernels_scalar());
    assert_string_equal(sets[n - 1]->name, "scalar");
    for (size_t i = 0; i < n; i++) {
        assert_non_null(sets[i]->l2);
        assert_non_null(sets[i]->dot);
        assert_true(rank_of(sets[i]->name) >= 0);
        if (i > 0) /* best first, no repeats */
            assert_true(rank_of(sets[i - 1]->name) > rank_of(sets[i]->name));
    }
    /* The baselines of the two architectures are always there. */
#if defined(__x86_64__)
    assert_true(n >= 2);
    assert_string_equal(sets[n - 2]->name, "sse2");
#elif defined(__aarch64__)
    assert_true(n >= 2);
    assert_string_equal(sets[n - 2]->name, "neon");
#endif

    /* max is respected. */
    const hnswc_kernels *one[1];
    assert_int_equal(hnswc_kernels_available(one, 1), 1);
    assert_ptr_equal(one[0], sets[0]);
    assert_int_equal(hnswc_kernels_available(one, 0), 0);
}

/*
 * The set HNSWC_SIMD=want must give: that set if this CPU runs it, else the
 * best one (unknown names and sets the CPU lacks are ignored).
 */
static const char *expected_choice(const char *want)
{
    const hnswc_kernels *sets[MAX_SETS];
    size_t n = kernel_sets(sets);
    if (want != NULL)
        for (size_t i = 0; i < n; i++)
            if (strcmp(want, sets[i]->name) == 0)
                return sets[i]->name;
    return sets[0]->name;
}

/* This process: whatever HNSWC_SIMD the test runner started us with. */
static void test_env_in_process(void **state)
{
    (void)state;
    assert_string_equal(hnswc_simd_name(), expected_choice(getenv("HNSWC_SIMD")));
}

/* Runs this binary with HNSWC_SIMD=value (NULL: unset) and returns what it
 * prints for --print-simd, in buf. */
static void run_child(const char *value, char *buf, size_t size)
{
    int fd[2];
    assert_int_equal(pipe(fd), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fd[0]);
        if (dup2(fd[1], STDOUT_FILENO) < 0)
            _exit(126);
        if (value)
            setenv("HNSWC_SIMD", value, 1);
        else
            unsetenv("HNSWC_SIMD");
        execl("/proc/self/exe", "test_distance", "--print-simd", (char *)NULL);
        _exit(127);
    }
    close(fd[1]);
    size_t len = 0;
    ssize_t r;
    while ((r = read(fd[0], buf + len, size - 1 - len)) > 0)
        len += (size_t)r;
    buf[len] = '\0';
    close(fd[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_env_lowering(void **state)
{
    (void)state;
    static const char *const values[] = {"avx512", "avx2", "sse2", "neon", "scalar",
                                         "AVX2", "bogus", "", NULL};
    char buf[64];
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        run_child(values[i], buf, sizeof buf);
        char expect[64];
        snprintf(expect, sizeof expect, "%s\n", expected_choice(values[i]));
        assert_string_equal(buf, expect);
    }
}

/* ------------------------------------------------------------------------
 * Hand-computed cases
 * ------------------------------------------------------------------------ */

static void test_hand_cases(void **state)
{
    (void)state;
    const hnswc_kernels *sets[MAX_SETS];
    size_t n = kernel_sets(sets);
    static float ones[784], zeros[784], ramp[784];
    for (size_t i = 0; i < 784; i++) {
        ones[i] = 1.0f;
        zeros[i] = 0.0f;
        ramp[i] = (float)i * 0.37f - 100.0f;
    }
    const float a[3] = {1, 2, 3}, b[3] = {4, 6, 8};
    const float c[1] = {3}, d[1] = {-1};

    for (size_t s = 0; s < n; s++) {
        const hnswc_kernels *k = sets[s];
        /* 9 + 16 + 25 and 4 + 12 + 24 */
        assert_true(k->l2(a, b, 3) == 50.0f);
        assert_true(k->dot(a, b, 3) == 40.0f);
        assert_true(k->l2(c, d, 1) == 16.0f);
        assert_true(k->dot(c, d, 1) == -3.0f);
        /* 784 = 12 x 64 + 16 (AVX-512), 24 x 32 + 16 (AVX2) */
        assert_true(k->l2(ones, zeros, 784) == 784.0f);
        assert_true(k->dot(ones, ones, 784) == 784.0f);
        assert_true(k->dot(ramp, zeros, 784) == 0.0f);
        /* x - x is exactly 0 in every lane, whatever the order of the sum. */
        assert_true(k->l2(ramp, ramp, 784) == 0.0f);
        for (size_t dim = 1; dim <= 784; dim += 13)
            assert_true(k->l2(ones, zeros, dim) == (float)dim);
    }
}

/* ------------------------------------------------------------------------
 * Every dim, exact: integer-valued data
 *
 * a_i odd in [-7, 7], b_i even and non-zero in [-6, 6]: every product and
 * every squared difference is a non-zero integer (a - b is odd), and every
 * partial sum is an integer below 1024 * 13^2 < 2^24, so it is exact in
 * float whatever the order of summation. Any kernel must therefore equal the
 * reference exactly, and dropping or repeating any element changes it.
 * ------------------------------------------------------------------------ */

static float int_a[MAX_DIM], int_b[MAX_DIM];

static void fill_integer_data(void)
{
    for (size_t i = 0; i < MAX_DIM; i++) {
        int odd = (int)(rng_next() % 8) * 2 - 7;  /* -7, -5, ..., 7 */
        int even = (int)(rng_next() % 6) * 2 - 6; /* -6, ..., 4 */
        if (even >= 0)
            even += 2;                            /* -6..-2, 2..6 */
        int_a[i] = (float)odd;
        int_b[i] = (float)even;
    }
}

static void test_all_dims_exact(void **state)
{
    (void)state;
    const hnswc_kernels *sets[MAX_SETS];
    size_t n = kernel_sets(sets);
    fill_integer_data();

    /* Offsets in floats: 0, and 1..3 (never 16-, 32- or 64-byte aligned),
     * with a and b misaligned differently. */
    static const size_t offs[][2] = {{0, 0}, {1, 3}, {3, 2}, {2, 1}};
    for (size_t dim = 1; dim <= MAX_DIM; dim++) {
        /* The vector is a window into the data, so tails differ per dim. */
        const float *sa = int_a + (MAX_DIM - dim);
        const float *sb = int_b;
        float want_l2 = (float)ref_l2(sa, sb, dim, NULL);
        float want_dot = (float)ref_dot(sa, sb, dim, NULL);
        for (size_t o = 0; o < sizeof offs / sizeof offs[0]; o++) {
            for (int guarded = 0; guarded <= 1; guarded++) {
                placed pa = place(sa, dim, offs[o][0], guarded);
                placed pb = place(sb, dim, offs[o][1], guarded);
                for (size_t s = 0; s < n; s++) {
                    float l2 = sets[s]->l2(pa.v, pb.v, dim);
                    float dot = sets[s]->dot(pa.v, pb.v, dim);
                    if (l2 != want_l2 || dot != want_dot)
                        fail_msg("%s dim %zu offsets %zu/%zu: l2 %.9g (want %.9g), dot %.9g "
                                 "(want %.9g)",
                                 sets[s]->name, dim, offs[o][0], offs[o][1], (double)l2,
                                 (double)want_l2, (double)dot, (double)want_dot);
                }
                free(pa.block);
                free(pb.block);
            }
        }
    }
}

/* ------------------------------------------------------------------------
 * Every dim, real data, within the rounding error bound
 *
 * Summing n terms in float in any order (any number of accumulators, any
 * reduction tree, FMA or not) errs by at most gamma_n * sum |term|, with
 * gamma_n = n u / (1 - n u) and u = 2^-24 (Higham, Accuracy and Stability of
 * Numerical Algorithms, 2nd ed., sec. 3.1). For L2, fl(a - b) and its square
 * add two more roundings per term; the reference's final rounding to float
 * adds one more u. Hence the tolerance gamma_(dim+4) * sum |term|: a proven
 * bound (no test can fail from legitimate reordering), yet at dim 1024 only
 * 6e-5 of sum |term|, far less than the error of dropping or repeating one
 * term (about 1/dim of it) or of a wrong sign.
 * ------------------------------------------------------------------------ */

static double tolerance(size_t dim, double sumabs)
{
    double nu = (double)(dim + 4) * 0x1.0p-24;
    return nu / (1.0 - nu) * sumabs;
}

static void test_all_dims_random(void **state)
{
    (void)state;
    const hnswc_kernels *sets[MAX_SETS];
    size_t n = kernel_sets(sets);
    static float ra[MAX_DIM], rb[MAX_DIM];

    for (size_t dim = 1; dim <= MAX_DIM; dim++) {
        /* Fresh data per dim, over a range of magnitudes. */
        float scale = (float)ldexp(1.0, (int)(rng_next() % 41) - 20);
        for (size_t i = 0; i < dim; i++) {
            ra[i] = rng_unit() * scale;
            rb[i] = rng_unit() * scale;
        }
        double abs_l2, abs_dot;
        double want_l2 = ref_l2(ra, rb, dim, &abs_l2);
        double want_dot = ref_dot(ra, rb, dim, &abs_dot);
        size_t off = dim % 4; /* unaligned most of the time */
        placed pa = place(ra, dim, off, 0);
        placed pb = place(rb, dim, (off + 1) % 4, 0);
        for (size_t s = 0; s < n; s++) {
            double l2 = sets[s]->l2(pa.v, pb.v, dim);
            double dot = sets[s]->dot(pa.v, pb.v, dim);
            if (!(fabs(l2 - want_l2) <= tolerance(dim, abs_l2)) ||
                !(fabs(dot - want_dot) <= tolerance(dim, abs_dot)))
                fail_msg("%s dim %zu: l2 %.9g (want %.9g), dot %.9g (want %.9g)",
                         sets[s]->name, dim, l2, want_l2, dot, want_dot);
        }
        free(pa.block);
        free(pb.block);
    }
}

/*
 * The bounded L2 kernel's contract, for every set and every dim: a result at
 * or below the bound is bit-identical to the plain kernel's; a result above
 * it is above the bound and no more than the full distance (partial sums of
 * squares only grow, and float addition of non-negative terms is monotone).
 */
static void test_l2_bounded(void **state)
{
    (void)state;
    const hnswc_kernels *sets[MAX_SETS];
    size_t n = kernel_sets(sets);
    static float ra[MAX_DIM], rb[MAX_DIM];
    size_t cut_short = 0;

    for (size_t dim = 1; dim <= MAX_DIM; dim++) {
        for (size_t i = 0; i < dim; i++) {
            ra[i] = rng_unit();
            rb[i] = rng_unit();
        }
        for (size_t s = 0; s < n; s++) {
            float full = sets[s]->l2(ra, rb, dim);
            const float bounds[] = {0.0f, full * 0.25f, full * 0.5f, full * 0.99f, full,
                                    full * 2.0f, INFINITY};
            for (size_t b = 0; b < sizeof bounds / sizeof *bounds; b++) {
                float got = sets[s]->l2_bounded(ra, rb, dim, bounds[b]);
                if (got <= bounds[b] ? got != full : !(got > bounds[b] && got <= full))
                    fail_msg("%s dim %zu bound %.9g: got %.9g, full %.9g", sets[s]->name, dim,
                             bounds[b], got, full);
                cut_short += got < full;
            }
        }
    }
    /* the SIMD sets must really stop early on long vectors */
    if (n > 1)
        assert_true(cut_short > 0);
}

/* ------------------------------------------------------------------------
 * Normalisation
 * ------------------------------------------------------------------------ */

static void test_normalize_hand(void **state)
{
    (void)state;
    /* 1 / (sqrtf(25) + 1e-30f) = 0.2f; 3 * 0.2f and 4 * 0.2f round to 0.6f, 0.8f. */
    float v[2] = {3.0f, 4.0f};
    hnswc_normalize(v, 2);
    assert_true(v[0] == 0.6f);
    assert_true(v[1] == 0.8f);

    float one[1] = {-5.0f};
    hnswc_normalize(one, 1);
    assert_true(one[0] == -1.0f);

    /* Zero vectors stay bit for bit (signs of zero included). */
    float z[7] = {0.0f, -0.0f, 0.0f, 0.0f, -0.0f, 0.0f, 0.0f};
    float zc[7];
    memcpy(zc, z, sizeof z);
    hnswc_normalize(z, 7);
    assert_memory_equal(z, zc, sizeof z);

    /* Squares that underflow to 0: hnswlib scales by 1 / 1e-30f all the same,
     * giving about 1; we must do the same for parity. */
    float tiny[2] = {1e-30f, 0.0f};
    hnswc_normalize(tiny, 2);
    assert_true(fabs((double)tiny[0] - 1.0) < 1e-6);
    assert_true(tiny[1] == 0.0f);
}

/*
 * hnswlib's normalize_vector (python bindings), restated: a float sum in
 * index order, then 1 / (sqrtf(sum) + 1e-30f). Cosine indexes must store
 * exactly what hnswlib stores, so the library's result must match this bit
 * for bit -- a guard against "optimising" it with a reordered SIMD sum.
 */
static void hnswlib_normalize(float *v, size_t dim)
{
    float norm = 0.0f;
    for (size_t i = 0; i < dim; i++) {
        float sq = v[i] * v[i];
        norm += sq;
    }
    norm = 1.0f / (sqrtf(norm) + 1e-30f);
    for (size_t i = 0; i < dim; i++)
        v[i] = v[i] * norm;
}

static void test_normalize_random(void **state)
{
    (void)state;
    static float v[MAX_DIM], w[MAX_DIM];
    for (size_t dim = 1; dim <= MAX_DIM; dim += (dim < 40 ? 1 : 37)) {
        float scale = (float)ldexp(1.0, (int)(rng_next() % 61) - 30);
        for (size_t i = 0; i < dim; i++)
            v[i] = w[i] = rng_unit() * scale;
        hnswc_normalize(v, dim);
        hnswlib_normalize(w, dim);
        assert_memory_equal(v, w, dim * sizeof(float));

        /* Unit length: the float sum of dim squares errs by gamma_dim, its
         * square root by half that, the scaling by a few u more. */
        double norm = sqrt(ref_dot(v, v, dim, NULL));
        assert_true(fabs(norm - 1.0) <= (double)(dim + 4) * 0x1.0p-24);
    }
}

/* ------------------------------------------------------------------------
 * main
 * ------------------------------------------------------------------------ */

int main(int argc, char **argv)
{
    /* Child mode for test_env_lowering: report the choice and stop. */
    if (argc == 2 && strcmp(argv[1], "--print-simd") == 0) {
        printf("%s\n", hnswc_simd_name());
        return 0;
    }

    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_use_from_threads), /* must stay first */
        cmocka_unit_test(test_available_list),
        cmocka_unit_test(test_env_in_process),
        cmocka_unit_test(test_env_lowering),
        cmocka_unit_test(test_hand_cases),
        cmocka_unit_test(test_all_dims_exact),
        cmocka_unit_test(test_all_dims_random),
        cmocka_unit_test(test_l2_bounded),
        cmocka_unit_test(test_normalize_hand),
        cmocka_unit_test(test_normalize_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
