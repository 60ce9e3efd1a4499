/*
 * distance.c -- the distance kernels (squared L2 and dot product) and their
 * run-time dispatch.
 *
 * Every kernel for the target architecture is in this one file, each compiled
 * for its own instruction set with a per-function target attribute:
 *
 *   x86-64   avx512 (AVX-512F), avx2 (AVX2 + FMA), sse2 (the x86-64 baseline)
 *   aarch64  neon (the aarch64 baseline)
 *   all      scalar (the reference, accumulated in double)
 *
 * so one binary built without any -march flag runs everywhere and still uses
 * the widest unit the CPU has. The choice is made once, on first use, under
 * pthread_once, and can be lowered with HNSWC_SIMD (see detect() below).
 *
 * Kernel rules, which every set follows:
 *   - any dim >= 1; the tail that does not fill a vector register is done with
 *     a masked load (AVX-512, AVX2) or in scalar code, so nothing is ever read
 *     past a[dim-1] or b[dim-1];
 *   - unaligned loads only: vectors come from user memory and from the index's
 *     element blocks, neither of which promises alignment;
 *   - four independent accumulators in the main loop, so that consecutive
 *     FMAs (latency 4 cycles, 1-2 issued per cycle) do not wait on each other.
 *     784 floats (Fashion-MNIST, the main benchmark) is 12 x 64 + 16 for
 *     AVX-512 and 24 x 32 + 16 for AVX2.
 *
 * Thread safety: every function here is thread safe. Kernels are pure; the
 * dispatch state is written once under pthread_once and read-only afterwards.
 */
#include "distance.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hnswc.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HNSWC_X86 1
#include <immintrin.h>
#endif

#if defined(__aarch64__)
#define HNSWC_NEON 1
#include <arm_neon.h>
#endif

/* ------------------------------------------------------------------------
 * Scalar reference
 *
 * Accumulates in double: a float product is exact in double and the sum of
 * up to 65536 such terms loses almost nothing, so this is a good yardstick
 * for the tests of the SIMD kernels. It is also the fallback kernel on CPUs
 * without a SIMD set here, so it keeps four independent accumulators (which
 * the compiler may not reassociate or merge without -ffast-math) for some
 * instruction-level parallelism; the result is deterministic for a given dim.
 * ------------------------------------------------------------------------ */

static float l2_scalar(const float *a, const float *b, size_t dim)
{
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    size_t i = 0;
    for (; i + 4 <= dim; i += 4) {
        double d0 = (double)a[i] - (double)b[i];
        double d1 = (double)a[i + 1] - (double)b[i + 1];
        double d2 = (double)a[i + 2] - (double)b[i + 2];
        double d3 = (double)a[i + 3] - (double)b[i + 3];
        s0 += d0 * d0;
        s1 += d1 * d1;
        s2 += d2 * d2;
        s3 += d3 * d3;
    }
    for (; i < dim; i++) {
        double d = (double)a[i] - (double)b[i];
        s0 += d * d;
    }
    return (float)((s0 + s1) + (s2 + s3));
}

static float dot_scalar(const float *a, const float *b, size_t dim)
{
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    size_t i = 0;
    for (; i + 4 <= dim; i += 4) {
        s0 += (double)a[i] * (double)b[i];
        s1 += (double)a[i + 1] * (double)b[i + 1];
        s2 += (double)a[i + 2] * (double)b[i + 2];
        s3 += (double)a[i + 3] * (double)b[i + 3];
    }
    for (; i < dim; i++)
        s0 += (double)a[i] * (double)b[i];
    return (float)((s0 + s1) + (s2 + s3));
}

static float l2_bounded_scalar(const float *a, const float *b, size_t dim, float bound)
{
    (void)bound;
    return l2_scalar(a, b, dim);
}

static const hnswc_kernels k_scalar = {"scalar", l2_scalar, dot_scalar, l2_bounded_scalar};

/* ------------------------------------------------------------------------
 * x86-64: AVX-512F
 *
 * 64 floats per iteration in four 16-lane accumulators, then 16 at a time,
 * then one masked load for the last 1..15 (masked-off lanes are neither read
 * nor able to fault, and they load as zeros, which add nothing).
 *
 * Ranked above AVX2 although, on AMD Zen 4 (which splits 512-bit work into
 * two 256-bit halves), it measured about 5% slower than AVX2 on L1-resident
 * 784-dim vectors: both are bound by 64 bytes of loads per cycle there.
 * Intel server cores load two 512-bit vectors per cycle, where it should
 * gain up to 2x (not measured: no such CPU was at hand), and in an index the
 * vectors mostly come from L2, L3 or DRAM, where the two are about equal.
 * ------------------------------------------------------------------------ */
#ifdef HNSWC_X86

#define TARGET_AVX512 __attribute__((target("avx512f")))

/* Lanes 0 .. n-1 set, for 0 <= n < 16. */
TARGET_AVX512 static inline __mmask16 avx512_tail_mask(size_t n)
{
    return (__mmask16)((1u << n) - 1u);
}

/*
 * The L2 body, with `check` a compile-time constant: when set, the partial
 * sum is compared with `bound` every 256 dimensions and the kernel stops as
 * soon as it is above (the partial sums of squares only grow). The
 * accumulation is the same either way, so a result that is not cut short is
 * bit-identical to the plain kernel's.
 */
TARGET_AVX512 static inline __attribute__((always_inline)) float
l2_avx512_body(const float *a, const float *b, size_t dim, float bound, const int check)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    __m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 64 <= dim; i += 64) {
        if (check && i > 0 && (i & 255) == 0) {
            float part = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
            if (part > bound)
                return part;
        }
        __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16));
        __m512 d2 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32));
        __m512 d3 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48));
        s0 = _mm512_fmadd_ps(d0, d0, s0);
        s1 = _mm512_fmadd_ps(d1, d1, s1);
        s2 = _mm512_fmadd_ps(d2, d2, s2);
        s3 = _mm512_fmadd_ps(d3, d3, s3);
    }
    /* Rotate the 16-wide remainder over the accumulators: short chains. */
    for (; i + 16 <= dim; i += 16) {
        __m512 d = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        s0 = _mm512_fmadd_ps(d, d, s0);
        __m512 t = s0; s0 = s1; s1 = s2; s2 = s3; s3 = t;
    }
    if (i < dim) {
        __mmask16 m = avx512_tail_mask(dim - i);
        __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i));
        s0 = _mm512_fmadd_ps(d, d, s0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

TARGET_AVX512 static float l2_avx512(const float *a, const float *b, size_t dim)
{
    return l2_avx512_body(a, b, dim, 0.0f, 0);
}

TARGET_AVX512 static float l2_bounded_avx512(const float *a, const float *b, size_t dim, float bound)
{
    return l2_avx512_body(a, b, dim, bound, 1);
}

TARGET_AVX512 static float dot_avx512(const float *a, const float *b, size_t dim)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    __m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 64 <= dim; i += 64) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
        s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32), s2);
        s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48), s3);
    }
    for (; i + 16 <= dim; i += 16) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        __m512 t = s0; s0 = s1; s1 = s2; s2 = s3; s3 = t;
    }
    if (i < dim) {
        __mmask16 m = avx512_tail_mask(dim - i);
        s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

static const hnswc_kernels k_avx512 = {"avx512", l2_avx512, dot_avx512, l2_bounded_avx512};

/* ------------------------------------------------------------------------
 * x86-64: AVX2 + FMA
 *
 * As AVX-512 with 8 lanes. The last 1..7 floats are read with vmaskmovps,
 * whose masked-off lanes are not accessed (no fault past the end of the
 * array) and read as zero. The mask comes from a sliding window over a
 * constant table: eight -1s then eight 0s, starting at 8 - n.
 * ------------------------------------------------------------------------ */

#define TARGET_AVX2 __attribute__((target("avx2,fma")))

static const int32_t avx2_mask_table[16] = {-1, -1, -1, -1, -1, -1, -1, -1,
                                            0,  0,  0,  0,  0,  0,  0,  0};

/* Lanes 0 .. n-1 set, for 0 < n < 8. */
TARGET_AVX2 static inline __m256i avx2_tail_mask(size_t n)
{
    return _mm256_loadu_si256((const __m256i *)(const void *)(avx2_mask_table + 8 - n));
}

TARGET_AVX2 static inline float avx2_hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 0x55));
    return _mm_cvtss_f32(s);
}

/* The L2 body with an optional bound, as l2_avx512_body. */
TARGET_AVX2 static inline __attribute__((always_inline)) float
l2_avx2_body(const float *a, const float *b, size_t dim, float bound, const int check)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= dim; i += 32) {
        if (check && i > 0 && (i & 255) == 0) {
            float part = avx2_hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
            if (part > bound)
                return part;
        }
        __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
        __m256 d2 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16));
        __m256 d3 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24));
        s0 = _mm256_fmadd_ps(d0, d0, s0);
        s1 = _mm256_fmadd_ps(d1, d1, s1);
        s2 = _mm256_fmadd_ps(d2, d2, s2);
        s3 = _mm256_fmadd_ps(d3, d3, s3);
    }
    for (; i + 8 <= dim; i += 8) {
        __m256 d = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        s0 = _mm256_fmadd_ps(d, d, s0);
        __m256 t = s0; s0 = s1; s1 = s2; s2 = s3; s3 = t;
    }
    if (i < dim) {
        __m256i m = avx2_tail_mask(dim - i);
        __m256 d = _mm256_sub_ps(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m));
        s0 = _mm256_fmadd_ps(d, d, s0);
    }
    return avx2_hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

TARGET_AVX2 static float l2_avx2(const float *a, const float *b, size_t dim)
{
    return l2_avx2_body(a, b, dim, 0.0f, 0);
}

TARGET_AVX2 static float l2_bounded_avx2(const float *a, const float *b, size_t dim, float bound)
{
    return l2_avx2_body(a, b, dim, bound, 1);
}

TARGET_AVX2 static float dot_avx2(const float *a, const float *b, size_t dim)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= dim; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
    }
    for (; i + 8 <= dim; i += 8) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        __m256 t = s0; s0 = s1; s1 = s2; s2 = s3; s3 = t;
    }
    if (i < dim) {
        __m256i m = avx2_tail_mask(dim - i);
        s0 = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m), s0);
    }
    return avx2_hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

static const hnswc_kernels k_avx2 = {"avx2", l2_avx2, dot_avx2, l2_bounded_avx2};

/* ------------------------------------------------------------------------
 * x86-64: SSE2 (always present on x86-64)
 *
 * 4 lanes, no FMA (separate multiply and add), four accumulators; the last
 * 1..3 floats in scalar code, since SSE2 has no masked load.
 * ------------------------------------------------------------------------ */

static inline float sse2_hsum(__m128 v)
{
    __m128 s = _mm_add_ps(v, _mm_movehl_ps(v, v));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 0x55));
    return _mm_cvtss_f32(s);
}

static float l2_sse2(const float *a, const float *b, size_t dim)
{
    __m128 s0 = _mm_setzero_ps(), s1 = _mm_setzero_ps();
    __m128 s2 = _mm_setzero_ps(), s3 = _mm_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= dim; i += 16) {
        __m128 d0 = _mm_sub_ps(_mm_loadu_ps(a + i), _mm_loadu_ps(b + i));
        __m128 d1 = _mm_sub_ps(_mm_loadu_ps(a + i + 4), _mm_loadu_ps(b + i + 4));
        __m128 d2 = _mm_sub_ps(_mm_loadu_ps(a + i + 8), _mm_loadu_ps(b + i + 8));
        __m128 d3 = _mm_sub_ps(_mm_loadu_ps(a + i + 12), _mm_loadu_ps(b + i + 12));
        s0 = _mm_add_ps(s0, _mm_mul_ps(d0, d0));
        s1 = _mm_add_ps(s1, _mm_mul_ps(d1, d1));
        s2 = _mm_add_ps(s2, _mm_mul_ps(d2, d2));
        s3 = _mm_add_ps(s3, _mm_mul_ps(d3, d3));
    }
    for (; i + 4 <= dim; i += 4) {
        __m128 d = _mm_sub_ps(_mm_loadu_ps(a + i), _mm_loadu_ps(b + i));
        s0 = _mm_add_ps(s0, _mm_mul_ps(d, d));
        __m128 t = s0; s0 = s1; s1 = s2; s2 = s3; s3 = t;
    }
    float s = sse2_hsum(_mm_add_ps(_mm_add_ps(s0, s1), _mm_add_ps(s2, s3)));
    for (; i < dim; i++) {
        float d = a[i] - b[i];
        s += d * d;
    }
    return s;
}

static float dot_sse2(const float *a, const float *b, size_t dim)
{
    __m128 s0 = _mm_setzero_ps(), s1 = _mm_setzero_ps();
    __m128 s2 = _mm_setzero_ps(), s3 = _mm_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= dim; i += 16) {
        s0 = _mm_add_ps(s0, _mm_mul_ps(_mm_loadu_ps(a + i), _mm_loadu_ps(b + i)));
        s1 = _mm_add_ps(s1, _mm_mul_ps(_mm_loadu_ps(a + i + 4), _mm_loadu_ps(b + i + 4)));
        s2 = _mm_add_ps(s2, _mm_mul_ps(_mm_loadu_ps(a + i + 8), _mm_loadu_ps(b + i + 8)));
        s3 = _mm_add_ps(s3, _mm_mul_ps(_mm_loadu_ps(a + i + 12), _mm_loadu_ps(b + i + 12)));
    }
    for (; i + 4 <= dim; i += 4) {
        s0 = _mm_add_ps(s0, _mm_mul_ps(_mm_loadu_ps(a + i), _mm_loadu_ps(b + i)));
        __m128 t = s0; s0 = s1; s1 = s2; s2 = s3; s3 = t;
    }
    float s = sse2_hsum(_mm_add_ps(_mm_add_ps(s0, s1), _mm_add_ps(s2, s3)));
    for (; i < dim; i++)
        s += a[i] * b[i];
    return s;
}

static float l2_bounded_sse2(const float *a, const float *b, size_t dim, float bound)
{
    (void)bound; /* no early exit on the baseline sets: the full distance */
    return l2_sse2(a, b, dim);
}

static const hnswc_kernels k_sse2 = {"sse2", l2_sse2, dot_sse2, l2_bounded_sse2};

#endif /* HNSWC_X86 */

/* ------------------------------------------------------------------------
 * aarch64: NEON (always present on aarch64)
 *
 * 4 lanes with FMA, four accumulators, the last 1..3 floats in scalar code.
 * ------------------------------------------------------------------------ */
#ifdef HNSWC_NEON

static float l2_neon(const float *a, const float *b, size_t dim)
{
    float32x4_t s0 = vdupq_n_f32(0.0f), s1 = vdupq_n_f32(0.0f);
    float32x4_t s2 = vdupq_n_f32(0.0f), s3 = vdupq_n_f32(0.0f);
    size_t i = 0;
    for (; i + 16 <= dim; i += 16) {
        float32x4_t d0 = vsubq_f32(vld1q_f32(a + i), vld1q_f32(b + i));
        float32x4_t d1 = vsubq_f32(vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
        float32x4_t d2 = vsubq_f32(vld1q_f32(a + i + 8), vld1q_f32(b + i + 8));
        float32x4_t d3 = vsubq_f32(vld1q_f32(a + i + 12), vld1q_f32(b + i + 12));
        s0 = vfmaq_f32(s0, d0, d0);
        s1 = vfmaq_f32(s1, d1, d1);
        s2 = vfmaq_f32(s2, d2, d2);
        s3 = vfmaq_f32(s3, d3, d3);
    }
    for (; i + 4 <= dim; i += 4) {
        float32x4_t d = vsubq_f32(vld1q_f32(a + i), vld1q_f32(b + i));
        s0 = vfmaq_f32(s0, d, d);
        float32x4_t t = s0; s0 = s1; s1 = s2; s2 = s3; s3 = t;
    }
    float s = vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)));
    for (; i < dim; i++) {
        float d = a[i] - b[i];
        s += d * d;
    }
    return s;
}

static float dot_neon(const float *a, const float *b, size_t dim)
{
    float32x4_t s0 = vdupq_n_f32(0.0f), s1 = vdupq_n_f32(0.0f);
    float32x4_t s2 = vdupq_n_f32(0.0f), s3 = vdupq_n_f32(0.0f);
    size_t i = 0;
    for (; i + 16 <= dim; i += 16) {
        s0 = vfmaq_f32(s0, vld1q_f32(a + i), vld1q_f32(b + i));
        s1 = vfmaq_f32(s1, vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
        s2 = vfmaq_f32(s2, vld1q_f32(a + i + 8), vld1q_f32(b + i + 8));
        s3 = vfmaq_f32(s3, vld1q_f32(a + i + 12), vld1q_f32(b + i + 12));
    }
    for (; i + 4 <= dim; i += 4) {
        s0 = vfmaq_f32(s0, vld1q_f32(a + i), vld1q_f32(b + i));
        float32x4_t t = s0; s0 = s1; s1 = s2; s2 = s3; s3 = t;
    }
    float s = vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)));
    for (; i < dim; i++)
        s += a[i] * b[i];
    return s;
}

static float l2_bounded_neon(const float *a, const float *b, size_t dim, float bound)
{
    (void)bound;
    return l2_neon(a, b, dim);
}

static const hnswc_kernels k_neon = {"neon", l2_neon, dot_neon, l2_bounded_neon};

#endif /* HNSWC_NEON */

/* ------------------------------------------------------------------------
 * What this CPU supports, and the choice: both made once
 * ------------------------------------------------------------------------ */

/* Room for every set of any one architecture, scalar included. */
#define MAX_SETS 4

static pthread_once_t detect_once = PTHREAD_ONCE_INIT;
static const hnswc_kernels *supported[MAX_SETS]; /* best first, scalar last */
static size_t n_supported;
static const hnswc_kernels *chosen;

/*
 * Lists the sets this CPU runs, then picks the best one, or the one that
 * HNSWC_SIMD names if the CPU runs it. A name the CPU cannot run
 * (HNSWC_SIMD=avx512 on an AVX2 machine) or does not know is ignored
 * silently: the variable can only lower the choice, and the library never
 * prints.
 *
 * __builtin_cpu_supports also checks that the OS saves the wide registers
 * (XCR0), so "avx512f" is false under a kernel that does not enable ZMM state.
 */
static void detect(void)
{
    size_t n = 0;
#ifdef HNSWC_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f"))
        supported[n++] = &k_avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        supported[n++] = &k_avx2;
    supported[n++] = &k_sse2;
#endif
#ifdef HNSWC_NEON
    supported[n++] = &k_neon;
#endif
    supported[n++] = &k_scalar;
    n_supported = n;

    chosen = supported[0];
    const char *want = getenv("HNSWC_SIMD");
    if (want == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(want, supported[i]->name) == 0) {
            chosen = supported[i];
            return;
        }
    }
}

/* pthread_once orders the writes in detect() before every read after it. */
static void detect_once_only(void)
{
    (void)pthread_once(&detect_once, detect);
}

const hnswc_kernels *hnswc_kernels_get(void)
{
    detect_once_only();
    return chosen;
}

size_t hnswc_kernels_available(const hnswc_kernels **out, size_t max)
{
    detect_once_only();
    size_t n = n_supported < max ? n_supported : max;
    for (size_t i = 0; i < n; i++)
        out[i] = supported[i];
    return n;
}

const hnswc_kernels *hnswc_kernels_scalar(void)
{
    return &k_scalar;
}

HNSWC_API const char *hnswc_simd_name(void)
{
    return hnswc_kernels_get()->name;
}

/* ------------------------------------------------------------------------
 * Normalisation
 * ------------------------------------------------------------------------ */

/*
 * hnswlib's formula exactly (python_bindings normalize_vector):
 *     norm = 1 / (sqrtf(sum v_i^2) + 1e-30f);  v_i *= norm
 * with the sum taken in float in index order, as hnswlib's loop does. That
 * order makes the stored vectors of a cosine index bit-identical to what
 * hnswlib stores (and so to its get_items). The product and the addition
 * are separate statements so that no compiler fuses them into an FMA that
 * hnswlib's build does not use. A zero vector gives 0 * 1e30 = 0: unchanged.
 * (No early return on sum == 0: a vector of tiny components whose squares
 * underflow is scaled by 1e30 in hnswlib, and so it is here.)
 *
 * This is O(dim) once per added or queried vector, never in the search loop,
 * so the sequential sum costs nothing that matters.
 */
/* Thread safe for distinct v; v is read and written in place (dim floats). */
float hnswc_norm_scale(const float *v, size_t dim)
{
    float sum = 0.0f;
    for (size_t i = 0; i < dim; i++) {
        float sq = v[i] * v[i];
        sum += sq;
    }
    return 1.0f / (sqrtf(sum) + 1e-30f);
}

void hnswc_normalize(float *v, size_t dim)
{
    float inv = hnswc_norm_scale(v, dim);
    for (size_t i = 0; i < dim; i++)
        v[i] *= inv;
}
