/*
 * quant.h -- scalar quantisation of vectors to one byte per dimension (sq8)
 * and the integer distance kernels over those codes (src/quant.c).
 *
 * What a graph walk reads when the index stores codes: each component x_i
 * becomes the byte
 *
 *     c_i = clamp(round((x_i - lo_i) / step), 0, 255)
 *
 * with an offset lo_i per dimension and ONE step shared by all dimensions.
 * The shared step is what lets the distance between two code rows be a plain
 * integer sum, computed exactly by the SIMD kernels below:
 *
 *     ||a' - b'||^2 = step^2 * sum_i (ca_i - cb_i)^2
 *
 * (a per-dimension step -- faiss's QT_8bit -- would weigh each term by
 * step_i^2 and need float arithmetic per dimension; it was rejected because
 * it gives up the integer kernels for a gain only on data whose dimensions
 * have very different ranges, where the exact re-rank still repairs the
 * order.) On Fashion-MNIST, whose pixels are the integers 0..255, the step is
 * 1 and the codes are the data itself: traversal distances are exact.
 *
 * Values outside the trained range saturate to code 0 or 255; distances to
 * such vectors are then underestimated along the clipped dimensions. Search
 * results stay exact (the final candidates are re-ranked on f32 vectors);
 * only the walk is less precise for them. The caller counts saturated
 * components (quant_sq8_encode returns how many) and may retrain.
 *
 * Inner product and cosine use the decomposition
 *     a'.b' = lo.lo + step*(lo.ca) + step*(lo.cb) + step^2 * (ca.cb)
 * where step*(lo.c) is a per-row constant stored as a float after the codes
 * (quant_sq8_row_bytes), so again only ca.cb is computed per pair.
 *
 * Thread safety: a quantiser is written by quant_sq8_train and read-only
 * afterwards; the kernels are pure; the dispatch is chosen once under
 * pthread_once.
 */
#ifndef HNSWC_QUANT_H
#define HNSWC_QUANT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ========================================================================
 * Integer kernels over code rows
 * ======================================================================== */

/*
 * sum (a_i - b_i)^2 and sum a_i * b_i over dim bytes, exact. Each term is at
 * most 255^2, so for dim <= 65536 (hnswc's limit) the sum fits in uint32.
 * dim >= 1; nothing past a[dim-1] or b[dim-1] is read.
 */
typedef uint32_t (*quant_u8_fn)(const uint8_t *a, const uint8_t *b, size_t dim);

typedef struct quant_kernels {
    const char *name; /* "avx512vnni", "avx512bw", "avx2", "sse2", "neon", "scalar" */
    quant_u8_fn l2;
    quant_u8_fn dot;
} quant_kernels;

/* The best set this CPU runs, lowered by HNSWC_SIMD like the float kernels:
 * "avx512" allows both AVX-512 sets, "avx2", "sse2", "neon" and "scalar"
 * name one; an unknown or unsupported name is ignored. Chosen once. */
const quant_kernels *quant_kernels_get(void);

/* Every set this CPU runs, best first, the scalar reference last (for tests). */
size_t quant_kernels_available(const quant_kernels **out, size_t max);

const quant_kernels *quant_kernels_scalar(void);

/* ========================================================================
 * The sq8 quantiser
 * ======================================================================== */

#define QUANT_SQ8_LEVELS 255.0f

typedef struct quant_sq8 {
    uint32_t dim;
    bool with_bias; /* inner product / cosine: a float after each row     */
    bool trained;
    float step;     /* shared by all dimensions; > 0 once trained         */
    float inv_step;
    float *lo;      /* dim offsets, owned; NULL until quant_sq8_init      */
    float *hi;      /* dim maxima while training (quant_sq8_observe)      */
    size_t observed;
    float lo_dot_lo;
    /* step 1 and every offset an integer (of magnitude below 2^23): decoded
     * values are then integers, and for two rows that reproduce their f32
     * vectors (quant_sq8_reproduces) an L2 code distance below 2^24 is the
     * f32 kernels' distance bit for bit (graph.c, codes_are_distances) */
    bool integral;
} quant_sq8;

/* Allocates the offsets of a quantiser for dim (untrained). Returns false
 * when out of memory. with_bias: the metric is inner product or cosine. */
bool quant_sq8_init(quant_sq8 *q, uint32_t dim, bool with_bias);
void quant_sq8_free(quant_sq8 *q);

/* Bytes of one code row: dim codes, then a float bias when with_bias,
 * rounded up to 4 bytes so that the bias is aligned. */
size_t quant_sq8_row_bytes(const quant_sq8 *q);

/*
 * Fits offsets and step to the range of n rows of dim floats (row stride
 * `stride` floats): lo_i = min_i, step = max_i(max_i - min_i) / 255, or 1
 * when every dimension is constant. n >= 1; all values finite.
 */
void quant_sq8_train(quant_sq8 *q, const float *x, size_t n, size_t stride);

/* Training in steps, for data that is not one matrix: quant_sq8_observe
 * each row (dim floats), then quant_sq8_fit; the result is the same as
 * quant_sq8_train over those rows. At least one row must be observed. */
void quant_sq8_observe(quant_sq8 *q, const float *x);
void quant_sq8_fit(quant_sq8 *q);

/* Sets a trained state directly (loading a file); false if step is not a
 * positive finite number or an offset is not finite. */
bool quant_sq8_set(quant_sq8 *q, float step, const float *lo);

/* Encodes one vector into a row of quant_sq8_row_bytes bytes; returns the
 * number of components that fell outside the trained range and were
 * saturated. q must be trained. */
uint32_t quant_sq8_encode(const quant_sq8 *q, const float *x, uint8_t *row);

/* Encodes x * scale (component by component) as quant_sq8_encode encodes
 * a vector: with scale = hnswc_norm_scale(x), the row of the normalised
 * vector, bit for bit, without a buffer to normalise into (code-only
 * storage writes no f32 copy). */
uint32_t quant_sq8_encode_scaled(const quant_sq8 *q, const float *x, float scale, uint8_t *row);

/* Writes a row from its dim codes (as a code-only file stores them): the
 * codes, the padding and the bias, exactly as quant_sq8_encode wrote it.
 * codes may be row itself (codes already in place). */
void quant_sq8_set_codes(const quant_sq8 *q, const uint8_t *codes, uint8_t *row);

/* Decodes a row back to floats (lo_i + step * c_i). */
void quant_sq8_decode(const quant_sq8 *q, const uint8_t *row, float *x);

/* True if quant_sq8_decode of row gives x bit for bit: the code loses
 * nothing (data on the code's grid and inside its range, as small-integer
 * data such as pixels is with a step of 1). Lets an exact re-rank decode
 * the row the walk has just read instead of fetching the f32 copy
 * (graph.c, rerank; index.h, codes_inexact). */
bool quant_sq8_reproduces(const quant_sq8 *q, const uint8_t *row, const float *x);

/*
 * Approximate distances between two code rows, in the metric's own units:
 * quant_sq8_l2 is the squared L2 distance of the decoded vectors, and
 * quant_sq8_ip is 1 - their dot product (inner product and cosine, whose
 * rows carry the bias read by quant_sq8_bias).
 */
static inline float quant_sq8_bias(const quant_sq8 *q, const uint8_t *row)
{
    float b;
    const uint8_t *p = row + (((size_t)q->dim + 3u) & ~(size_t)3u);
    __builtin_memcpy(&b, p, sizeof b);
    return b;
}

static inline float quant_sq8_l2(const quant_sq8 *q, const quant_kernels *k, const uint8_t *a,
                                 const uint8_t *b)
{
    return q->step * q->step * (float)k->l2(a, b, q->dim);
}

/* 1 - a'.b' for two rows of a with_bias quantiser. */
static inline float quant_sq8_ip(const quant_sq8 *q, const quant_kernels *k, const uint8_t *a,
                                 const uint8_t *b)
{
    float dot = q->lo_dot_lo + quant_sq8_bias(q, a) + quant_sq8_bias(q, b) +
                q->step * q->step * (float)k->dot(a, b, q->dim);
    return 1.0f - dot;
}

#endif /* HNSWC_QUANT_H */
