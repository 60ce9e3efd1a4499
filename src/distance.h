/*
 * distance.h -- internal interface of the distance kernels (src/distance.c).
 *
 * One portable build carries every kernel; the best one the CPU supports is
 * chosen once at run time (hnswc_kernels_get). Kernels are compiled with
 * per-function target attributes, never with -march flags, so a binary built
 * here runs on any x86-64 (or arm64) CPU.
 */
#ifndef HNSWC_DISTANCE_H
#define HNSWC_DISTANCE_H

#include <stddef.h>

/* Squared L2 distance, or dot product, of two dim-vectors. dim >= 1. */
typedef float (*hnswc_dist_fn)(const float *a, const float *b, size_t dim);

/*
 * Squared L2 that may stop early: if the result is <= bound it is exactly
 * what the plain l2 kernel returns; otherwise it is some value > bound (a
 * partial sum), since partial sums of squares only grow. A search uses it
 * to reject a candidate without reading all of its vector.
 */
typedef float (*hnswc_bounded_fn)(const float *a, const float *b, size_t dim, float bound);

typedef struct hnswc_kernels {
    const char *name;   /* "avx512", "avx2", "sse2", "neon", "scalar" */
    hnswc_dist_fn l2;   /* sum (a_i - b_i)^2 */
    hnswc_dist_fn dot;  /* sum a_i * b_i     */
    hnswc_bounded_fn l2_bounded;
} hnswc_kernels;

/*
 * The kernels in use: the best the CPU supports, lowered by the environment
 * variable HNSWC_SIMD if set. Chosen once (thread safe), then constant.
 */
const hnswc_kernels *hnswc_kernels_get(void);

/*
 * Every kernel set this CPU can run, best first, the scalar reference last.
 * Writes up to max pointers into out and returns how many it wrote.
 * For the tests, which compare each against the scalar reference.
 */
size_t hnswc_kernels_available(const hnswc_kernels **out, size_t max);

/* The scalar reference set (always available). */
const hnswc_kernels *hnswc_kernels_scalar(void);

/* Scales v to unit length in place; a zero vector is left as it is. */
void hnswc_normalize(float *v, size_t dim);

/* The factor hnswc_normalize multiplies each component by (for code-only
 * storage, which encodes v * factor without normalising a copy). */
float hnswc_norm_scale(const float *v, size_t dim);

#endif /* HNSWC_DISTANCE_H */
