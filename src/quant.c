/*
 * quant.c -- the sq8 quantiser and the integer kernels over its codes.
 *
 * See quant.h for the code and why the step is shared. The kernels follow
 * the rules of distance.c: one portable build, each kernel compiled for its
 * instruction set with a target attribute, chosen once at run time.
 *
 *   x86-64   avx512vnni (AVX-512 VNNI: vpdpwssd fuses multiply and add),
 *            avx512bw (AVX-512BW: vpmaddwd + vpaddd), avx2, sse2
 *   aarch64  neon
 *   all      scalar (the reference)
 *
 * Every x86 kernel widens bytes to 16-bit lanes, subtracts (L2) and then
 * multiplies pairs of lanes into 32-bit sums (pmaddwd). Differences are in
 * -255..255 and products at most 65025, so pmaddwd never saturates, and a
 * 32-bit lane gathers at most dim/8 products (SSE) before the final sum:
 * 65536 / 8 * 2 * 65025 < 2^31, so no lane overflows for any dim hnswc
 * accepts. (vpdpbusd, the byte form of VNNI, was rejected: it multiplies an
 * unsigned by a SIGNED byte, and neither codes nor their differences fit a
 * signed byte.) The final horizontal sum is taken in uint32, which holds the
 * whole result (quant.h).
 *
 * Tails: AVX-512 reads the last dim % 32 bytes with a masked load (no access
 * past the end); AVX2 and SSE2 finish them in scalar code.
 */
#include "quant.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define QUANT_X86 1
#include <immintrin.h>
#endif

#if defined(__aarch64__)
#define QUANT_NEON 1
#include <arm_neon.h>
#endif

/* ========================================================================
 * Scalar reference
 * ======================================================================== */

static uint32_t l2_u8_scalar(const uint8_t *a, const uint8_t *b, size_t dim)
{
    uint32_t s = 0;
    for (size_t i = 0; i < dim; i++) {
        int32_t d = (int32_t)a[i] - (int32_t)b[i];
        s += (uint32_t)(d * d);
    }
    return s;
}

static uint32_t dot_u8_scalar(const uint8_t *a, const uint8_t *b, size_t dim)
{
    uint32_t s = 0;
    for (size_t i = 0; i < dim; i++)
        s += (uint32_t)a[i] * b[i];
    return s;
}

static const quant_kernels q_scalar = {"scalar", l2_u8_scalar, dot_u8_scalar};

#ifdef QUANT_X86

/* ========================================================================
 * x86-64: AVX-512BW and AVX-512 VNNI
 *
 * 32 codes per step: 32 bytes widened to 32 x int16 in one zmm. Two
 * accumulators over 64-byte steps (784 = 12 x 64 + 16: the 16 go through
 * the masked tail).
 * ======================================================================== */

#define TARGET_AVX512BW __attribute__((target("avx512f,avx512bw,avx512vl")))
#define TARGET_AVX512VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))

TARGET_AVX512BW static inline __m512i load32_avx512(const uint8_t *p)
{
    return _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)(const void *)p));
}

TARGET_AVX512BW static inline __m512i load32_tail_avx512(const uint8_t *p, size_t n)
{
    __mmask32 m = (__mmask32)((1ull << n) - 1u); /* 0 < n < 32 */
    return _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(m, p));
}

TARGET_AVX512BW static inline uint32_t hsum_epi32_avx512(__m512i v)
{
    /* lanes are non-negative and their sum fits uint32 (quant.h) */
    __m256i s = _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
    __m128i t = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0x4e));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0xb1));
    return (uint32_t)_mm_cvtsi128_si32(t);
}

/* One body for both AVX-512 sets: `vnni` selects vpdpwssd over
 * vpmaddwd + vpaddd; `l2` selects the difference over the plain product. */
#define AVX512_BODY(MAC)                                                                  \
    __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();                     \
    size_t i = 0;                                                                         \
    for (; i + 64 <= dim; i += 64) {                                                      \
        __m512i a0 = load32_avx512(a + i), b0 = load32_avx512(b + i);                     \
        __m512i a1 = load32_avx512(a + i + 32), b1 = load32_avx512(b + i + 32);           \
        s0 = MAC(s0, a0, b0);                                                             \
        s1 = MAC(s1, a1, b1);                                                             \
    }                                                                                     \
    if (i + 32 <= dim) {                                                                  \
        s0 = MAC(s0, load32_avx512(a + i), load32_avx512(b + i));                         \
        i += 32;                                                                          \
    }                                                                                     \
    if (i < dim)                                                                          \
        s1 = MAC(s1, load32_tail_avx512(a + i, dim - i), load32_tail_avx512(b + i, dim - i)); \
    return hsum_epi32_avx512(_mm512_add_epi32(s0, s1));

#define MAC_L2_BW(s, x, y) \
    _mm512_add_epi32((s), _mm512_madd_epi16(_mm512_sub_epi16((x), (y)), _mm512_sub_epi16((x), (y))))
#define MAC_DOT_BW(s, x, y) _mm512_add_epi32((s), _mm512_madd_epi16((x), (y)))
#define MAC_L2_VNNI(s, x, y) \
    _mm512_dpwssd_epi32((s), _mm512_sub_epi16((x), (y)), _mm512_sub_epi16((x), (y)))
#define MAC_DOT_VNNI(s, x, y) _mm512_dpwssd_epi32((s), (x), (y))

TARGET_AVX512BW static uint32_t l2_u8_avx512bw(const uint8_t *a, const uint8_t *b, size_t dim)
{
    AVX512_BODY(MAC_L2_BW)
}

TARGET_AVX512BW static uint32_t dot_u8_avx512bw(const uint8_t *a, const uint8_t *b, size_t dim)
{
    AVX512_BODY(MAC_DOT_BW)
}

TARGET_AVX512VNNI static uint32_t l2_u8_avx512vnni(const uint8_t *a, const uint8_t *b, size_t dim)
{
    AVX512_BODY(MAC_L2_VNNI)
}

TARGET_AVX512VNNI static uint32_t dot_u8_avx512vnni(const uint8_t *a, const uint8_t *b, size_t dim)
{
    AVX512_BODY(MAC_DOT_VNNI)
}

static const quant_kernels q_avx512vnni = {"avx512vnni", l2_u8_avx512vnni, dot_u8_avx512vnni};
static const quant_kernels q_avx512bw = {"avx512bw", l2_u8_avx512bw, dot_u8_avx512bw};

/* ========================================================================
 * x86-64: AVX2 (16 codes per ymm of int16)
 * ======================================================================== */

#define TARGET_AVX2 __attribute__((target("avx2")))

TARGET_AVX2 static inline __m256i load16_avx2(const uint8_t *p)
{
    return _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(const void *)p));
}

TARGET_AVX2 static inline uint32_t hsum_epi32_avx2(__m256i v)
{
    __m128i t = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0x4e));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0xb1));
    return (uint32_t)_mm_cvtsi128_si32(t);
}

TARGET_AVX2 static uint32_t l2_u8_avx2(const uint8_t *a, const uint8_t *b, size_t dim)
{
    __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 32 <= dim; i += 32) {
        __m256i d0 = _mm256_sub_epi16(load16_avx2(a + i), load16_avx2(b + i));
        __m256i d1 = _mm256_sub_epi16(load16_avx2(a + i + 16), load16_avx2(b + i + 16));
        s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(d0, d0));
        s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(d1, d1));
    }
    if (i + 16 <= dim) {
        __m256i d = _mm256_sub_epi16(load16_avx2(a + i), load16_avx2(b + i));
        s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(d, d));
        i += 16;
    }
    return hsum_epi32_avx2(_mm256_add_epi32(s0, s1)) + l2_u8_scalar(a + i, b + i, dim - i);
}

TARGET_AVX2 static uint32_t dot_u8_avx2(const uint8_t *a, const uint8_t *b, size_t dim)
{
    __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 32 <= dim; i += 32) {
        s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(load16_avx2(a + i), load16_avx2(b + i)));
        s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(load16_avx2(a + i + 16), load16_avx2(b + i + 16)));
    }
    if (i + 16 <= dim) {
        s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(load16_avx2(a + i), load16_avx2(b + i)));
        i += 16;
    }
    return hsum_epi32_avx2(_mm256_add_epi32(s0, s1)) + dot_u8_scalar(a + i, b + i, dim - i);
}

static const quant_kernels q_avx2 = {"avx2", l2_u8_avx2, dot_u8_avx2};

/* ========================================================================
 * x86-64: SSE2 (the baseline; 16 codes per step, unpacked to two int16 xmm)
 * ======================================================================== */

static inline uint32_t hsum_epi32_sse2(__m128i t)
{
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0x4e));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0xb1));
    return (uint32_t)_mm_cvtsi128_si32(t);
}

static uint32_t l2_u8_sse2(const uint8_t *a, const uint8_t *b, size_t dim)
{
    const __m128i z = _mm_setzero_si128();
    __m128i s0 = z, s1 = z;
    size_t i = 0;
    for (; i + 16 <= dim; i += 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(a + i));
        __m128i y = _mm_loadu_si128((const __m128i *)(const void *)(b + i));
        __m128i dl = _mm_sub_epi16(_mm_unpacklo_epi8(x, z), _mm_unpacklo_epi8(y, z));
        __m128i dh = _mm_sub_epi16(_mm_unpackhi_epi8(x, z), _mm_unpackhi_epi8(y, z));
        s0 = _mm_add_epi32(s0, _mm_madd_epi16(dl, dl));
        s1 = _mm_add_epi32(s1, _mm_madd_epi16(dh, dh));
    }
    return hsum_epi32_sse2(_mm_add_epi32(s0, s1)) + l2_u8_scalar(a + i, b + i, dim - i);
}

static uint32_t dot_u8_sse2(const uint8_t *a, const uint8_t *b, size_t dim)
{
    const __m128i z = _mm_setzero_si128();
    __m128i s0 = z, s1 = z;
    size_t i = 0;
    for (; i + 16 <= dim; i += 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(a + i));
        __m128i y = _mm_loadu_si128((const __m128i *)(const void *)(b + i));
        s0 = _mm_add_epi32(s0, _mm_madd_epi16(_mm_unpacklo_epi8(x, z), _mm_unpacklo_epi8(y, z)));
        s1 = _mm_add_epi32(s1, _mm_madd_epi16(_mm_unpackhi_epi8(x, z), _mm_unpackhi_epi8(y, z)));
    }
    return hsum_epi32_sse2(_mm_add_epi32(s0, s1)) + dot_u8_scalar(a + i, b + i, dim - i);
}

static const quant_kernels q_sse2 = {"sse2", l2_u8_sse2, dot_u8_sse2};

#endif /* QUANT_X86 */

#ifdef QUANT_NEON

/* ========================================================================
 * aarch64: NEON. |a - b| (vabd) and a * b both fit uint16 (<= 65025), so
 * vmull_u8 then vpadalq_u16 (pairwise add into uint32 lanes) is exact.
 * ======================================================================== */

static uint32_t l2_u8_neon(const uint8_t *a, const uint8_t *b, size_t dim)
{
    uint32x4_t s0 = vdupq_n_u32(0), s1 = vdupq_n_u32(0);
    size_t i = 0;
    for (; i + 16 <= dim; i += 16) {
        uint8x16_t d = vabdq_u8(vld1q_u8(a + i), vld1q_u8(b + i));
        s0 = vpadalq_u16(s0, vmull_u8(vget_low_u8(d), vget_low_u8(d)));
        s1 = vpadalq_u16(s1, vmull_high_u8(d, d));
    }
    return vaddvq_u32(vaddq_u32(s0, s1)) + l2_u8_scalar(a + i, b + i, dim - i);
}

static uint32_t dot_u8_neon(const uint8_t *a, const uint8_t *b, size_t dim)
{
    uint32x4_t s0 = vdupq_n_u32(0), s1 = vdupq_n_u32(0);
    size_t i = 0;
    for (; i + 16 <= dim; i += 16) {
        uint8x16_t x = vld1q_u8(a + i), y = vld1q_u8(b + i);
        s0 = vpadalq_u16(s0, vmull_u8(vget_low_u8(x), vget_low_u8(y)));
        s1 = vpadalq_u16(s1, vmull_high_u8(x, y));
    }
    return vaddvq_u32(vaddq_u32(s0, s1)) + dot_u8_scalar(a + i, b + i, dim - i);
}

static const quant_kernels q_neon = {"neon", l2_u8_neon, dot_u8_neon};

#endif /* QUANT_NEON */

/* ========================================================================
 * Dispatch: made once
 * ======================================================================== */

#define QUANT_MAX_SETS 5

static pthread_once_t q_once = PTHREAD_ONCE_INIT;
static const quant_kernels *q_supported[QUANT_MAX_SETS];
static size_t q_n_supported;
static const quant_kernels *q_chosen;

/* The float kernels' names for HNSWC_SIMD ("avx512", "avx2", "sse2",
 * "neon", "scalar") map onto these sets: "avx512" is either AVX-512 set. */
static bool q_name_matches(const char *want, const char *name)
{
    if (strcmp(want, name) == 0)
        return true;
    return strcmp(want, "avx512") == 0 && strncmp(name, "avx512", 6) == 0;
}

static void q_detect(void)
{
    size_t n = 0;
#ifdef QUANT_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl")) {
        if (__builtin_cpu_supports("avx512vnni"))
            q_supported[n++] = &q_avx512vnni;
        q_supported[n++] = &q_avx512bw;
    }
    if (__builtin_cpu_supports("avx2"))
        q_supported[n++] = &q_avx2;
    q_supported[n++] = &q_sse2;
#endif
#ifdef QUANT_NEON
    q_supported[n++] = &q_neon;
#endif
    q_supported[n++] = &q_scalar;
    q_n_supported = n;

    q_chosen = q_supported[0];
    const char *want = getenv("HNSWC_SIMD");
    if (want == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        if (q_name_matches(want, q_supported[i]->name)) {
            q_chosen = q_supported[i];
            return;
        }
    }
}

const quant_kernels *quant_kernels_get(void)
{
    (void)pthread_once(&q_once, q_detect);
    return q_chosen;
}

size_t quant_kernels_available(const quant_kernels **out, size_t max)
{
    (void)pthread_once(&q_once, q_detect);
    size_t n = q_n_supported < max ? q_n_supported : max;
    for (size_t i = 0; i < n; i++)
        out[i] = q_supported[i];
    return n;
}

const quant_kernels *quant_kernels_scalar(void)
{
    return &q_scalar;
}

/* ========================================================================
 * The quantiser
 * ======================================================================== */

bool quant_sq8_init(quant_sq8 *q, uint32_t dim, bool with_bias)
{
    memset(q, 0, sizeof *q);
    q->lo = calloc(dim ? dim : 1, sizeof *q->lo);
    q->hi = calloc(dim ? dim : 1, sizeof *q->hi);
    if (!q->lo || !q->hi) {
        quant_sq8_free(q);
        return false;
    }
    q->dim = dim;
    q->with_bias = with_bias;
    q->step = 1.0f;
    q->inv_step = 1.0f;
    q->integral = false;
    return true;
}

void quant_sq8_free(quant_sq8 *q)
{
    free(q->lo);
    free(q->hi);
    q->lo = q->hi = NULL;
    q->trained = false;
    q->integral = false;
}

size_t quant_sq8_row_bytes(const quant_sq8 *q)
{
    size_t codes = ((size_t)q->dim + 3u) & ~(size_t)3u;
    return q->with_bias ? codes + sizeof(float) : codes;
}

static void finish_training(quant_sq8 *q)
{
    q->inv_step = 1.0f / q->step;
    double s = 0.0;
    bool integral = q->step == 1.0f;
    for (uint32_t i = 0; i < q->dim; i++) {
        s += (double)q->lo[i] * q->lo[i];
        integral = integral && q->lo[i] == truncf(q->lo[i]) && fabsf(q->lo[i]) < 8388608.0f;
    }
    q->lo_dot_lo = (float)s;
    q->integral = integral;
    q->trained = true;
}

void quant_sq8_observe(quant_sq8 *q, const float *x)
{
    if (q->observed++ == 0) {
        memcpy(q->lo, x, (size_t)q->dim * sizeof *x);
        memcpy(q->hi, x, (size_t)q->dim * sizeof *x);
        return;
    }
    for (uint32_t i = 0; i < q->dim; i++) {
        q->lo[i] = x[i] < q->lo[i] ? x[i] : q->lo[i];
        q->hi[i] = x[i] > q->hi[i] ? x[i] : q->hi[i];
    }
}

void quant_sq8_fit(quant_sq8 *q)
{
    double range = 0.0;
    for (uint32_t i = 0; i < q->dim; i++) {
        /* in double: hi - lo of two huge floats may overflow float */
        double w = (double)q->hi[i] - (double)q->lo[i];
        range = w > range ? w : range;
    }
    double step = range / QUANT_SQ8_LEVELS;
    q->step = step > 0.0 && step < 3.0e38 ? (float)step : 1.0f;
    if (!(q->step > 0.0f) || !isfinite(1.0f / q->step))
        q->step = 1.0f; /* a range of subnormals: any step will do */
    q->observed = 0;
    finish_training(q);
}

void quant_sq8_train(quant_sq8 *q, const float *x, size_t n, size_t stride)
{
    q->observed = 0;
    for (size_t r = 0; r < n; r++)
        quant_sq8_observe(q, x + r * stride);
    quant_sq8_fit(q);
}

bool quant_sq8_set(quant_sq8 *q, float step, const float *lo)
{
    if (!(step > 0.0f) || !isfinite(step) || !isfinite(1.0f / step))
        return false;
    for (uint32_t i = 0; i < q->dim; i++)
        if (!isfinite(lo[i]))
            return false;
    memcpy(q->lo, lo, (size_t)q->dim * sizeof *lo);
    q->step = step;
    finish_training(q);
    return true;
}

/*
 * Every query of a walk on codes is encoded first, so this runs once per
 * search and must not cost much next to it. The code is round-to-nearest-
 * even of t = (x - lo) * inv_step clamped to [0, 255], exactly what lrintf
 * gave before (ties to even in the default rounding mode): after the clamp,
 * (t + 2^23) - 2^23 rounds t to an integer in float arithmetic (every float
 * in [2^23, 2^24) is an integer, and the addition rounds to nearest even),
 * and converting that integer is exact. A component saturates when t is
 * below -0.5 or above 255.5, as before (the comparisons also catch an
 * overflowed t, +-inf; t is never NaN because x and lo are finite).
 *
 * On x86-64 sixteen components at a time in SSE2, which every x86-64 CPU
 * has (no dispatch needed); the scalar loop does the tail and the other
 * targets. (Rejected: lrintf per component, a libm call that kept the loop
 * scalar and took about a tenth of a whole Fashion-MNIST search at recall
 * 0.95; leaving it to the auto-vectoriser, which gcc 12 declines for this
 * float-to-byte loop; an AVX-512 copy behind the dispatch, a few hundred
 * nanoseconds more per query for another kernel to test.)
 *
 * The bias (inner product / cosine only) is summed in double in a second
 * pass, in index order, as before, so stored rows are bit for bit the same.
 */
static inline uint8_t encode_one(float x, float lo, float inv, uint32_t *clipped)
{
    float t = (x - lo) * inv;
    *clipped += (uint32_t)(t < -0.5f) + (uint32_t)(t > QUANT_SQ8_LEVELS + 0.5f);
    float c = t > 0.0f ? t : 0.0f;
    c = c < QUANT_SQ8_LEVELS ? c : QUANT_SQ8_LEVELS;
    /* the cast rounds the sum to float even where float arithmetic is
     * carried in wider registers (x87: FLT_EVAL_METHOD 2; C11 casts drop
     * excess precision), which the trick needs */
    return (uint8_t)(int32_t)((float)(c + 0x1p23f) - 0x1p23f);
}

/* The bias of a row whose codes are written (inner product / cosine): summed
 * in double, in index order, so that a row rebuilt from its codes (a
 * code-only file, quant_sq8_set_codes) is bit for bit the encoded one. */
static void set_bias(const quant_sq8 *q, uint8_t *row)
{
    size_t codes = ((size_t)q->dim + 3u) & ~(size_t)3u;
    memset(row + q->dim, 0, codes - q->dim);
    if (q->with_bias) {
        double bias = 0.0;
        for (uint32_t j = 0; j < q->dim; j++)
            bias += (double)q->lo[j] * row[j];
        float b = (float)(bias * q->step);
        memcpy(row + codes, &b, sizeof b);
    }
}

/* x * scale, component by component, then encoded; scale 1 is
 * quant_sq8_encode (x * 1.0f == x exactly, and the compiler drops it). */
static inline uint32_t encode_scaled(const quant_sq8 *q, const float *x, float scale,
                                     uint8_t *row)
{
    const float *lo = q->lo;
    const float inv = q->inv_step;
    uint32_t clipped = 0, dim = q->dim, i = 0;
#if defined(__SSE2__)
    const __m128 vinv = _mm_set1_ps(inv), vscale = _mm_set1_ps(scale), zero = _mm_setzero_ps();
    const __m128 below = _mm_set1_ps(-0.5f), above = _mm_set1_ps(QUANT_SQ8_LEVELS + 0.5f);
    const __m128 top = _mm_set1_ps(QUANT_SQ8_LEVELS), magic = _mm_set1_ps(0x1p23f);
    __m128i nclip = _mm_setzero_si128(); /* minus the saturated count, per lane */
    for (; i + 16 <= dim; i += 16) {
        __m128i w[4];
        for (int k = 0; k < 4; k++) {
            __m128 xs = _mm_mul_ps(_mm_loadu_ps(x + i + 4 * k), vscale);
            __m128 t = _mm_mul_ps(_mm_sub_ps(xs, _mm_loadu_ps(lo + i + 4 * k)), vinv);
            __m128 out = _mm_or_ps(_mm_cmplt_ps(t, below), _mm_cmpgt_ps(t, above));
            nclip = _mm_add_epi32(nclip, _mm_castps_si128(out)); /* -1 where saturated */
            t = _mm_min_ps(_mm_max_ps(t, zero), top);
            w[k] = _mm_cvttps_epi32(_mm_sub_ps(_mm_add_ps(t, magic), magic));
        }
        __m128i b = _mm_packus_epi16(_mm_packs_epi32(w[0], w[1]), _mm_packs_epi32(w[2], w[3]));
        _mm_storeu_si128((__m128i *)(void *)(row + i), b);
    }
    int32_t lanes[4];
    _mm_storeu_si128((__m128i *)(void *)lanes, nclip);
    clipped = (uint32_t)-(lanes[0] + lanes[1] + lanes[2] + lanes[3]);
#endif
    for (; i < dim; i++)
        row[i] = encode_one(x[i] * scale, lo[i], inv, &clipped);
    set_bias(q, row);
    return clipped;
}

uint32_t quant_sq8_encode(const quant_sq8 *q, const float *x, uint8_t *row)
{
    return encode_scaled(q, x, 1.0f, row);
}

uint32_t quant_sq8_encode_scaled(const quant_sq8 *q, const float *x, float scale, uint8_t *row)
{
    return encode_scaled(q, x, scale, row);
}

void quant_sq8_set_codes(const quant_sq8 *q, const uint8_t *codes, uint8_t *row)
{
    if (row != codes) /* in place: the loader reads the codes into the row */
        memcpy(row, codes, q->dim);
    set_bias(q, row);
}

/* One decoded component. quant_sq8_decode and quant_sq8_reproduces share
 * it, so that "reproduces" means "quant_sq8_decode gives these bits". */
static inline float decode_one(const quant_sq8 *q, const uint8_t *row, uint32_t i)
{
    return q->lo[i] + q->step * (float)row[i];
}

void quant_sq8_decode(const quant_sq8 *q, const uint8_t *row, float *x)
{
    for (uint32_t i = 0; i < q->dim; i++)
        x[i] = decode_one(q, row, i);
}

bool quant_sq8_reproduces(const quant_sq8 *q, const uint8_t *row, const float *x)
{
    uint32_t diff = 0;
    for (uint32_t i = 0; i < q->dim; i++) {
        float d = decode_one(q, row, i);
        uint32_t a, b; /* bits, not ==: -0.0f and 0.0f differ here */
        memcpy(&a, &d, 4);
        memcpy(&b, &x[i], 4);
        diff |= a ^ b;
    }
    return diff == 0;
}
